/* Bulk import of enterprise records from CSV or JSON, with a report of
 * every row: created, updated, or rejected and why. Rows become approved
 * records (enterprise_put_approved) with a history entry whose source is
 * "import"; a row never half-applies. Both yjtctl and the REST route use
 * this; the caller says which divisions the importer may write to.
 *
 * CSV: a header row naming the columns (any order; unknown columns are
 * refused): id, name, credit_code, division, park, address, lon, lat,
 * principal_name, principal_phone, safety_managers ("name:phone;..."),
 * licence, processes ("name;name"), key (true/false/1/0), boundary
 * (GeoJSON text). An empty cell means absent. RFC 4180 quoting.
 * JSON: an array of objects, or {"enterprises": [...]}, each with "id"
 * and the record fields as in the REST API. */
#ifndef YJT_ENTERPRISE_IMPORT_H
#define YJT_ENTERPRISE_IMPORT_H

#include "records/store.h"

#include <stdbool.h>
#include <stddef.h>

#define IMPORT_MAX_ROWS 5000

/* May the importer write a record in division (and, when updating, the
 * record's current division existing, else NULL)? */
typedef bool (*import_allow_fn)(const char *division, const char *existing, void *ud);

/* Parses CSV text into an array of row objects in the JSON shape, or NULL
 * with *why (static) when the text is not CSV with a known header. */
json_t *import_csv_rows(const char *text, size_t len, const char **why);
/* Extracts the rows of a JSON import document, or NULL with *why. */
json_t *import_json_rows(const json_t *doc, const char **why);

/* Applies rows (validating only, with dry_run) and returns the report
 * {"total","accepted","rejected","dry_run","rows":[…]}. Rows over
 * IMPORT_MAX_ROWS are refused by the caller. */
json_t *import_apply(struct store *st, const json_t *rows, const char *actor, bool dry_run,
                     import_allow_fn allow, void *ud);

#endif
