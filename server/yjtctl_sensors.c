/* yjtctl apikey and import sensors (see yjtctl_sensors.h).
 *
 * The import writes in batches of IMPORT_BATCH sensors per transaction
 * (the store's batching mode), so that hundreds of thousands of sensors
 * import in seconds rather than one disk flush each. A running yjtd picks
 * the imported sensors up through its periodic sensor_poll(). */
#include "server/yjtctl_sensors.h"

#include "common/jsonx.h"
#include "common/log.h"
#include "records/apikey.h"
#include "records/audit.h"
#include "records/sensor.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_SENSORS_MAX_BYTES (512 * 1024 * 1024)
#define IMPORT_SENSORS_MAX_ROWS 2000000
#define IMPORT_BATCH 2000
#define IMPORT_ERRORS_LISTED 1000

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "yjtctl: %s: %s\n", what, why);
    return 1;
}

static bool print_key(const char *id, json_t *doc, void *ud)
{
    (void)id, (void)ud;
    char *line = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", line);
    free(line);
    return true;
}

int yjtctl_apikey(struct store *st, const char *verb, const char *enterprise, const char *label,
                  const char *id)
{
    if (strcmp(verb, "create") == 0 && enterprise) {
        char *key = NULL, *kid = NULL;
        int rc = apikey_create(st, enterprise, label, "yjtctl", &key, &kid);
        if (rc == STORE_ENOTFOUND)
            return fail("apikey create", "no such enterprise");
        if (rc != STORE_OK)
            return fail("apikey create", "store error (is the data directory writable?)");
        printf("%s\n", key);
        fprintf(stderr, "yjtctl: key id %s for enterprise %s (shown once; store it now)\n", kid,
                enterprise);
        g_free(key);
        g_free(kid);
        return 0;
    }
    if (strcmp(verb, "list") == 0)
        return apikey_each(st, enterprise, print_key, NULL) == STORE_OK
                   ? 0
                   : fail("apikey list", "store error");
    if (strcmp(verb, "revoke") == 0 && id) {
        /* the whole key works too: its id is the 16 hex digits after yjk_ */
        char kid[17];
        if (g_str_has_prefix(id, "yjk_") && strlen(id) > 20) {
            memcpy(kid, id + 4, 16);
            kid[16] = '\0';
            id = kid;
        }
        int rc = apikey_revoke(st, id, "yjtctl");
        if (rc == STORE_ENOTFOUND)
            return fail("apikey revoke", "no such key");
        if (rc != STORE_OK)
            return fail("apikey revoke", "store error");
        fprintf(stderr, "yjtctl: key %s revoked\n", id);
        return 0;
    }
    fputs("usage: yjtctl apikey create --enterprise ID [--label TEXT] | list [--enterprise ID]"
          " | revoke --id KEYID\n",
          stderr);
    return 2;
}

int yjtctl_import_sensors(struct store *st, const char *file, bool dry_run)
{
    gchar *text = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(file, &text, &len, &gerr)) {
        int rc = fail("import sensors", gerr->message);
        g_error_free(gerr);
        return rc;
    }
    if (len > IMPORT_SENSORS_MAX_BYTES) {
        g_free(text);
        return fail("import sensors", "file larger than 512 MiB");
    }
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    g_free(text);
    json_t *rows = json_is_array(doc) ? doc : json_object_get(doc, "sensors");
    if (!json_is_array(rows)) {
        json_decref(doc);
        return fail("import sensors", "the file must hold a JSON array of sensors");
    }
    if (json_array_size(rows) > IMPORT_SENSORS_MAX_ROWS) {
        json_decref(doc);
        return fail("import sensors", "more than 2000000 sensors in one file");
    }
    store_set_batching(st, true, NULL, NULL);
    /* one line per sensor would drown the report: the report says it all */
    enum log_level level = log_get_level();
    if (level < LOG_WARN)
        log_set_level(LOG_WARN);
    json_t *errors = json_array();
    size_t accepted = 0, rejected = 0, i;
    json_t *row;
    int rc = STORE_OK;
    json_array_foreach(rows, i, row)
    {
        const char *id = jx_str(row, "id");
        const char *why = NULL;
        enum err_code e;
        if (!id) {
            e = ERR_BAD_REQUEST;
            why = "id must be a string";
        } else if (dry_run) {
            e = sensor_id_valid(id) ? ERR_NONE : ERR_BAD_REQUEST;
            why = "invalid id";
        } else {
            e = sensor_put(st, id, row, "yjtctl", NULL, &why);
        }
        if (e == ERR_NONE) {
            accepted++;
        } else {
            rejected++;
            if (json_array_size(errors) < IMPORT_ERRORS_LISTED)
                json_array_append_new(errors,
                                      json_pack("{s:i, s:s?, s:s, s:s}", "index", (int)i, "id", id,
                                                "code", err_name(e), "message", why ? why : ""));
        }
        if ((i + 1) % IMPORT_BATCH == 0 && (rc = store_commit(st)) != STORE_OK)
            break;
    }
    if (rc == STORE_OK)
        rc = store_commit(st);
    store_set_batching(st, false, NULL, NULL);
    log_set_level(level);
    json_decref(doc);
    if (rc != STORE_OK) {
        json_decref(errors);
        return fail("import sensors", "store error: the last batch was not written");
    }
    json_t *report =
        json_pack("{s:I, s:I, s:I, s:b, s:o}", "total", (json_int_t)(accepted + rejected),
                  "accepted", (json_int_t)accepted, "rejected", (json_int_t)rejected, "dry_run",
                  dry_run, "errors", errors);
    char *out = json_dumps(report, JSON_INDENT(2));
    printf("%s\n", out);
    free(out);
    json_decref(report);
    if (!dry_run) {
        char *what = g_strdup_printf("%s: %zu accepted, %zu rejected", file, accepted, rejected);
        audit_log(st, "yjtctl", "sensor.import", what, rejected ? "partial" : "ok", NULL);
        g_free(what);
    }
    return rejected ? 1 : 0;
}
