/* Point and polygon validation for plant locations and boundaries (see
 * geo.h). The self-intersection test compares every pair of edges, which
 * GEO_RING_MAX keeps bounded (half a million pairs at most). */
#include "records/geo.h"

#include <glib.h>
#include <math.h>
#include <string.h>

struct pt {
    double x, y;
};

bool geo_in_china(double lon, double lat)
{
    return isfinite(lon) && isfinite(lat) && lon >= GEO_LON_MIN && lon <= GEO_LON_MAX &&
           lat >= GEO_LAT_MIN && lat <= GEO_LAT_MAX;
}

/* Reads a GeoJSON position [lon, lat] or [lon, lat, alt]. */
static bool position(const json_t *v, struct pt *out)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!json_is_number(json_array_get(v, i)))
            return false;
    out->x = json_number_value(json_array_get(v, 0));
    out->y = json_number_value(json_array_get(v, 1));
    return true;
}

static bool type_is(const json_t *v, const char *type)
{
    return json_is_object(v) && g_strcmp0(json_string_value(json_object_get(v, "type")), type) == 0;
}

bool geo_point_valid(const json_t *v, const char **why)
{
    struct pt p;
    if (!type_is(v, "Point") || !position(json_object_get(v, "coordinates"), &p)) {
        *why = "must be a GeoJSON Point {\"type\":\"Point\",\"coordinates\":[lon,lat]}";
        return false;
    }
    if (!geo_in_china(p.x, p.y)) {
        *why = "must lie inside China (longitude 73.4..135.1, latitude 3.8..53.6)";
        return false;
    }
    return true;
}

/* Sign of the turn a -> b -> c: 1 left, -1 right, 0 collinear. */
static int orient(struct pt a, struct pt b, struct pt c)
{
    double v = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
    return v > 0 ? 1 : v < 0 ? -1 : 0;
}

/* True if c, collinear with a-b, lies within the segment's box. */
static bool on_segment(struct pt a, struct pt b, struct pt c)
{
    return c.x >= fmin(a.x, b.x) && c.x <= fmax(a.x, b.x) && c.y >= fmin(a.y, b.y) &&
           c.y <= fmax(a.y, b.y);
}

/* True if segments p1-p2 and q1-q2 share any point (touching counts). */
static bool segments_meet(struct pt p1, struct pt p2, struct pt q1, struct pt q2)
{
    int o1 = orient(p1, p2, q1), o2 = orient(p1, p2, q2);
    int o3 = orient(q1, q2, p1), o4 = orient(q1, q2, p2);
    if (o1 * o2 < 0 && o3 * o4 < 0)
        return true;
    return (o1 == 0 && on_segment(p1, p2, q1)) || (o2 == 0 && on_segment(p1, p2, q2)) ||
           (o3 == 0 && on_segment(q1, q2, p1)) || (o4 == 0 && on_segment(q1, q2, p2));
}

static bool same(struct pt a, struct pt b)
{
    return a.x == b.x && a.y == b.y;
}

/* Checks a ring of n positions (the last equal to the first). */
static bool ring_valid(const struct pt *p, size_t n, const char **why)
{
    size_t edges = n - 1;
    double area2 = 0;
    for (size_t i = 0; i < edges; i++) {
        if (same(p[i], p[i + 1])) {
            *why = "boundary has a repeated position (zero-length edge)";
            return false;
        }
        area2 += p[i].x * p[i + 1].y - p[i + 1].x * p[i].y;
    }
    for (size_t i = 0; i < edges; i++) {
        /* adjacent edges share a vertex; they must not fold back on each other */
        struct pt a = p[i], b = p[i + 1], c = p[(i + 2) % n == 0 ? 1 : i + 2];
        if (orient(a, b, c) == 0 && (b.x - a.x) * (c.x - b.x) + (b.y - a.y) * (c.y - b.y) < 0) {
            *why = "boundary folds back on itself (spike)";
            return false;
        }
        for (size_t j = i + 2; j < edges; j++) {
            if (i == 0 && j == edges - 1)
                continue; /* the first and last edges meet at the closing vertex */
            if (segments_meet(p[i], p[i + 1], p[j], p[j + 1])) {
                *why = "boundary intersects itself";
                return false;
            }
        }
    }
    if (area2 == 0) {
        *why = "boundary has no area";
        return false;
    }
    return true;
}

bool geo_polygon_valid(const json_t *v, const char **why)
{
    if (!type_is(v, "Polygon") || !json_is_array(json_object_get(v, "coordinates"))) {
        *why = "must be a GeoJSON Polygon {\"type\":\"Polygon\",\"coordinates\":[[[lon,lat],…]]}";
        return false;
    }
    const json_t *rings = json_object_get(v, "coordinates");
    if (json_array_size(rings) != 1) {
        *why = "boundary must be exactly one ring (no holes)";
        return false;
    }
    const json_t *ring = json_array_get(rings, 0);
    size_t n = json_array_size(ring);
    if (!json_is_array(ring) || n < 4 || n > GEO_RING_MAX) {
        *why = "boundary ring must have 4 to 1000 positions";
        return false;
    }
    struct pt *p = g_new(struct pt, n);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (!position(json_array_get(ring, i), &p[i])) {
            *why = "a position must be [lon, lat] numbers";
            ok = false;
        } else if (!geo_in_china(p[i].x, p[i].y)) {
            *why = "boundary must lie inside China (longitude 73.4..135.1, latitude 3.8..53.6)";
            ok = false;
        }
    }
    if (ok && !same(p[0], p[n - 1])) {
        *why = "boundary ring is not closed (first and last positions differ)";
        ok = false;
    }
    if (ok)
        ok = ring_valid(p, n, why);
    g_free(p);
    return ok;
}
