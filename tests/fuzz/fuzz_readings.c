/* libFuzzer target: a readings batch (the body of POST /api/v1/readings
 * and of readings.post) on arbitrary bytes, against a loaded sensor table.
 * Whatever the rows hold, the report must count every row once, the
 * store must take the batch, and the latest values must stay finite. The
 * flusher runs after each batch, so later rows also meet stored chunks. */
#include "common/clock.h"
#include "records/org.h"
#include "records/reading.h"
#include "records/sensor.h"

#include <glib.h>
#include <math.h>
#include <stdint.h>

#define NOW_MS 1790000000000LL

static struct store *st;
static int listener_calls;

static void on_reading(const struct sensor *s, bool had_prev, double prev, void *ud)
{
    (void)ud;
    if (!s->has_value || !isfinite(s->value) || (had_prev && !isfinite(prev)))
        __builtin_trap();
    listener_calls++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *dir = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)
                    ? g_mkdtemp(g_strdup("/dev/shm/yjt-fuzz-readings-XXXXXX"))
                    : g_dir_make_tmp("yjt-fuzz-readings-XXXXXX", NULL);
    char *err = NULL;
    st = store_open_sqlite(dir, &err);
    if (!st || org_init(st) != STORE_OK)
        __builtin_trap();
    store_set_batching(st, true, NULL, NULL);
    const char *why;
    org_enterprise_add(st, "e1", "Plant", "440106", true, &why);
    org_enterprise_add(st, "e2", "Other", "440113", true, &why);
    if (sensor_init(st) != STORE_OK)
        __builtin_trap();
    static const char *const ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        json_t *rec = json_pack("{s:s, s:s, s:s, s:b}", "enterprise", i == 2 ? "e2" : "e1", "kind",
                                "level", "unit", "m", "enabled", i != 1);
        if (sensor_put(st, ids[i], rec, "fuzz", NULL, &why) != ERR_NONE)
            __builtin_trap();
        json_decref(rec);
    }
    store_commit(st);
    struct reading_config cfg = {.retention_days = 3650,
                                 .max_rows = 100,
                                 .errors_max = 10,
                                 .future_skew_s = 300,
                                 .trim_per_tick = 10,
                                 .query_max_points = 100,
                                 .query_max_scan = 1000,
                                 .flush_points = 4,
                                 .flush_age_s = 60,
                                 .buffer_max_mb = 1,
                                 .chunks_per_tick = 10};
    reading_init(st, &cfg);
    if (reading_start() != STORE_OK)
        __builtin_trap();
    sensor_on_reading(on_reading, NULL);
    g_free(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    json_t *report = NULL;
    const char *why = NULL;
    enum err_code e = reading_ingest(data[0] & 1 ? "e1" : NULL, body, NOW_MS, &report, &why);
    reading_flush_tick(NOW_MS); /* chunks, so later inputs also meet stored points */
    if (e == ERR_NONE) {
        json_int_t acc = json_integer_value(json_object_get(report, "accepted"));
        json_int_t rej = json_integer_value(json_object_get(report, "rejected"));
        json_int_t late = json_integer_value(json_object_get(report, "late"));
        size_t rows = json_array_size(json_object_get(body, "readings"));
        if (acc < 0 || rej < 0 || late > acc || (size_t)(acc + rej) != rows ||
            json_array_size(json_object_get(report, "errors")) > 10)
            __builtin_trap();
        json_decref(report);
    } else if (e != ERR_BAD_REQUEST && e != ERR_TOO_LARGE) {
        __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
    if (store_commit(st) != STORE_OK)
        __builtin_trap();
    const struct sensor *s = sensor_get("a");
    if (!s || (s->has_value && !isfinite(s->value)))
        __builtin_trap();
    json_decref(body);
    return 0;
}
