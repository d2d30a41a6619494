/* Deadline summaries and confirmation reminders as pushes (see
 * commitment_remind.h). */
#include "server/commitment_remind.h"

#include "common/bizdate.h"
#include "common/log.h"
#include "records/commitment_due.h"

#include <glib.h>

/* The summary text: counts, then the missing enterprises by name. */
static char *summary_body(json_t *s)
{
    GString *b = g_string_new(NULL);
    g_string_append_printf(b, "应报 %lld，已报 %lld，迟报 %lld，未报 %zu",
                           (long long)json_integer_value(json_object_get(s, "should_file")),
                           (long long)json_integer_value(json_object_get(s, "filed")),
                           (long long)json_integer_value(json_object_get(s, "late")),
                           json_array_size(json_object_get(s, "missing")));
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(s, "missing"), i, m)
    {
        if (b->len > 3500) { /* the inbox takes 4000 bytes of body */
            g_string_append(b, "…");
            break;
        }
        g_string_append(b, i ? "、" : "：");
        g_string_append(b, json_string_value(json_object_get(m, "name")));
    }
    return g_string_free(b, FALSE);
}

int commitment_remind_summary(struct store *st, const char *date, int deadline_min,
                              remind_push_fn push)
{
    json_t *sums = NULL;
    int rc = commitment_due_summaries(st, date, deadline_min, &sums);
    if (rc != STORE_OK) {
        log_error("remind", "commitment summary of %s: store error %d", date, rc);
        return rc;
    }
    int sent = 0;
    size_t i;
    json_t *s;
    json_array_foreach(sums, i, s)
    {
        json_t *users = json_object_get(s, "users");
        const char *div = json_string_value(json_object_get(s, "division"));
        size_t n = json_array_size(users);
        if (n == 0) {
            log_warn("remind", "commitment summary of %s: no duty regulator for division %s", date,
                     div);
            continue;
        }
        const char **ids = g_new(const char *, n);
        for (size_t j = 0; j < n; j++)
            ids[j] = json_string_value(json_array_get(users, j));
        char *title = g_strdup_printf("%s 承诺公告报送情况 (%s)", date, div);
        char *body = summary_body(s);
        json_t *payload =
            json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:O}", "type", "commitment.summary", "date",
                      date, "division", div, "should_file", json_object_get(s, "should_file"),
                      "filed", json_object_get(s, "filed"), "late", json_object_get(s, "late"),
                      "missing", json_object_get(s, "missing"));
        rc = push(ids, (int)n, "reminder", "normal", REMIND_TTL_S, title, body, payload, NULL);
        if (rc == 0) {
            sent++;
            log_info("remind", "commitment summary of %s for division %s to %zu regulators", date,
                     div, n);
        } else {
            log_error("remind", "commitment summary of %s for division %s not stored (%d)", date,
                      div, rc);
        }
        json_decref(payload);
        g_free(body);
        g_free(title);
        g_free(ids);
    }
    json_decref(sums);
    return sent;
}

int commitment_remind_confirm(struct store *st, int64_t now_ms, remind_push_fn push)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    json_t *ents = NULL;
    int rc = enterprise_unconfirmed_recipients(st, now_ms, ids, &ents);
    char date[BIZDATE_LEN];
    bizdate_of(now_ms, date);
    date[7] = '\0'; /* the month */
    if (rc != STORE_OK) {
        log_error("remind", "confirmation reminder of %s: store error %d", date, rc);
    } else if (ids->len > 0) {
        json_t *payload = json_pack("{s:s, s:s, s:O}", "type", "enterprise.confirm", "month", date,
                                    "enterprises", ents);
        rc =
            push((const char *const *)ids->pdata, (int)ids->len, "reminder", "normal", REMIND_TTL_S,
                 "请确认本月企业档案", "本月企业档案尚未确认，请核对后提交审核。", payload, NULL);
        json_decref(payload);
        if (rc == 0)
            log_info("remind", "confirmation reminder of %s to %u users of %zu enterprises", date,
                     ids->len, json_array_size(ents));
        rc = rc == 0 ? 1 : rc;
    }
    json_decref(ents);
    g_ptr_array_unref(ids);
    return rc;
}
