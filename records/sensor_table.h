/* The parts of the sensor table that only the records layer's own files
 * use: mutable look-ups and the reading listeners' dispatch, for the
 * ingestion path (records/reading.c). Everyone else reads sensor.h. */
#ifndef YJT_SENSOR_TABLE_H
#define YJT_SENSOR_TABLE_H

#include "records/sensor.h"

/* The sensor with this id, or the one whose history key is key; NULL if
 * none (or the table is not loaded, as in yjtctl). */
struct sensor *sensor_table_get(const char *id);
struct sensor *sensor_table_by_key(int64_t key);
/* Calls every reading listener for s, which just became its latest. */
void sensor_table_fire_reading(const struct sensor *s, bool had_prev, double prev);

#endif
