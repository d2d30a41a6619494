/* Geometry of enterprise records: the plant's location (a GeoJSON Point)
 * and its boundary (a GeoJSON Polygon), both WGS-84 longitude/latitude.
 * A boundary is one ring (no holes) of 4 to GEO_RING_MAX positions that is
 * closed (first position = last), has no zero-length edge, no spike, no
 * self-intersection and a non-zero area; every position, and the location,
 * lies inside China's bounding box (longitude 73.4..135.1, latitude
 * 3.8..53.6). */
#ifndef YJT_GEO_H
#define YJT_GEO_H

#include <jansson.h>
#include <stdbool.h>

#define GEO_RING_MAX 1000
#define GEO_LON_MIN 73.4
#define GEO_LON_MAX 135.1
#define GEO_LAT_MIN 3.8
#define GEO_LAT_MAX 53.6

/* True if (lon, lat) is finite and inside China's bounding box. */
bool geo_in_china(double lon, double lat);
/* True if v is {"type":"Point","coordinates":[lon,lat]} inside the box;
 * otherwise *why gets the reason (static text). */
bool geo_point_valid(const json_t *v, const char **why);
/* True if v is a valid boundary polygon as described above; otherwise
 * *why gets the reason (static text). */
bool geo_polygon_valid(const json_t *v, const char **why);

#endif
