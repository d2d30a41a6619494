/* yjtctl's sensor commands: gateway API keys and the sensor import (see
 * yjtctl.c for the command line). Each returns yjtctl's exit status. */
#ifndef YJT_YJTCTL_SENSORS_H
#define YJT_YJTCTL_SENSORS_H

#include "records/store.h"

#include <stdbool.h>

/* apikey create (enterprise, label), list (enterprise or NULL), revoke (id). */
int yjtctl_apikey(struct store *st, const char *verb, const char *enterprise, const char *label,
                  const char *id);
/* Imports sensors from a JSON file: an array of sensor records (each with
 * "id" and the fields of PUT /api/v1/sensors/{id}), or {"sensors":[...]}. */
int yjtctl_import_sensors(struct store *st, const char *file, bool dry_run);

#endif
