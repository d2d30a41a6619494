/* Regulators' monthly self-evaluations (see selfeval.h). */
#include "records/selfeval.h"

#include "common/bizdate.h"
#include "common/jsonx.h"
#include "records/jurisdiction.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

int selfeval_init(struct store *st)
{
    int rc = store_index_define(st, "selfeval_filings", "period", false);
    return rc == STORE_OK ? store_index_define(st, "selfeval_filings", "division", false) : rc;
}

/* "YYYY-MM" of the month before period. */
static void month_before(const char *period, char out[8])
{
    int y = atoi(period), m = atoi(period + 5) - 1;
    if (m == 0) {
        m = 12;
        y--;
    }
    g_snprintf(out, 8, "%04d-%02d", y, m);
}

int selfeval_file(struct store *st, const char *user_id, const char *division, const char *summary,
                  int64_t now_ms, json_t **out, const char **why)
{
    char div[8];
    if (!summary || !*summary || strlen(summary) > SELFEVAL_SUMMARY_MAX) {
        *why = "summary must be a non-empty string of at most 8000 bytes";
        return STORE_EINVAL;
    }
    if (!division_normalize(division, div, sizeof(div))) {
        *why = "your account has no valid division";
        return STORE_EINVAL;
    }
    char date[BIZDATE_LEN], period[8], covers[8];
    bizdate_of(now_ms, date);
    g_strlcpy(period, date, sizeof(period));
    month_before(period, covers);
    char *id = g_strconcat(user_id, "/", period, NULL);
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "user", user_id, "division", div, "period",
                  period, "covers", covers, "summary", summary, "filed_at", (json_int_t)now_ms);
    int rc = store_doc_put(st, "selfeval_filings", id, doc, false);
    g_free(id);
    if (rc == STORE_OK)
        *out = doc;
    else
        json_decref(doc);
    return rc;
}

struct scan {
    const char *division;
    json_t *out;
};

static bool pick(const char *id, json_t *doc, void *ud)
{
    (void)id;
    struct scan *s = ud;
    const char *div = jx_str(doc, "division");
    if (div && division_covers(s->division, div))
        json_object_set(s->out, jx_str(doc, "user"), doc);
    return true;
}

int selfeval_of_period(struct store *st, const char *period, const char *division, json_t **out)
{
    struct scan s = {division, json_object()};
    int rc = store_index_find(st, "selfeval_filings", "period", period, false, pick, &s);
    if (rc != STORE_OK) {
        json_decref(s.out);
        return rc;
    }
    *out = s.out;
    return STORE_OK;
}
