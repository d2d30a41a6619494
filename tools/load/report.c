/*
 * report.c: the parent's side of yjt-load's results.
 *
 * main.c forks the workers (worker.c) and polls their up pipes; each read
 * lands here in load_child_read(), which splits the stream into lines: "S
 * <ready>" when a worker's connections have all settled, and finally the
 * worker's JSON report.  load_read_rss_kib() reads the server's resident
 * memory at the start and end of the hold.  When the run is over,
 * load_report() merges the workers' reports (counts, handshake and login
 * time samples and their percentiles, errors), prints the one JSON line on
 * stdout and the readable summary on stderr, and says whether every
 * connection succeeded.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "load.h"

#include <jansson.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* reading the workers' pipes and the server's RSS                           */

long long load_read_rss_kib(long pid)
{
    char path[64], line[256];
    long long kib = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kib = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static void child_take_line(struct load_child *ch, char *line)
{
    if (line[0] == 'S' && line[1] == ' ') {
        ch->settled = true;
        ch->ready_at_settle = atoi(line + 2);
    } else if (line[0] == '{') {
        json_error_t jerr;
        json_decref(ch->report);
        ch->report = json_loads(line, 0, &jerr);
        ch->settled = true;
        if (!ch->report)
            fprintf(stderr, "yjt-load: bad report from worker %d: %s\n", (int)ch->pid, jerr.text);
    }
}

void load_child_read(struct load_child *ch)
{
    char chunk[65536];
    ssize_t n = read(ch->up_fd, chunk, sizeof(chunk));
    char *nl;

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        ch->eof = true;
        ch->settled = true;
        close(ch->up_fd);
        ch->up_fd = -1;
        return;
    }
    if (ch->len + (size_t)n + 1 > ch->cap) {
        size_t cap = ch->cap ? ch->cap : 65536;
        while (cap < ch->len + (size_t)n + 1)
            cap *= 2;
        char *grown = realloc(ch->buf, cap);
        if (!grown) {
            fprintf(stderr, "yjt-load: out of memory\n");
            exit(1);
        }
        ch->buf = grown;
        ch->cap = cap;
    }
    memcpy(ch->buf + ch->len, chunk, (size_t)n);
    ch->len += (size_t)n;
    ch->buf[ch->len] = '\0';
    while ((nl = memchr(ch->buf, '\n', ch->len)) != NULL) {
        size_t used = (size_t)(nl - ch->buf) + 1;
        *nl = '\0';
        child_take_line(ch, ch->buf);
        memmove(ch->buf, ch->buf + used, ch->len - used);
        ch->len -= used;
        ch->buf[ch->len] = '\0';
    }
}

/* ------------------------------------------------------------------------ */
/* aggregation: samples, percentiles and the final report                    */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

struct samples {
    uint32_t *v;
    size_t n;
    size_t cap;
};

static void samples_add_array(struct samples *s, json_t *arr)
{
    size_t i;
    json_t *item;

    if (!json_is_array(arr))
        return;
    if (s->n + json_array_size(arr) > s->cap) {
        size_t cap = s->n + json_array_size(arr);
        uint32_t *grown = realloc(s->v, cap * sizeof(*s->v));
        if (!grown)
            return;
        s->v = grown;
        s->cap = cap;
    }
    json_array_foreach(arr, i, item)
    {
        s->v[s->n++] = (uint32_t)json_integer_value(item);
    }
}

/* Nearest-rank percentile (pct in 1..100) of sorted samples, in milliseconds. */
static double percentile_value_ms(const struct samples *s, unsigned pct)
{
    size_t rank = (s->n * pct + 99) / 100;

    if (rank < 1)
        rank = 1;
    return (double)s->v[rank - 1] / 1000.0;
}

static json_t *percentile_ms(const struct samples *s, unsigned pct)
{
    return s->n ? json_real(percentile_value_ms(s, pct)) : json_null();
}

static json_t *rate_or_null(long count, double seconds)
{
    if (count <= 0 || seconds <= 0)
        return json_null();
    return json_real((double)count / seconds);
}

static json_t *int_or_null(long long v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

bool load_report(const struct load_config *cfg, const struct load_child *kids,
                 const struct load_outcome *run)
{
    long connected = 0, ready = 0, failed = 0, dropped = 0, closed_clean = 0, reports = 0;
    uint64_t t_begin = 0, t_last_open = 0, t_last_login = 0;
    struct samples hs = {0}, login = {0};
    json_t *errors = json_object();

    for (int p = 0; p < cfg->procs; p++) {
        json_t *r = kids[p].report;
        int count = cfg->conns / cfg->procs + (p < cfg->conns % cfg->procs ? 1 : 0);
        const char *key;
        json_t *val;

        if (!r) {
            char why[64];
            failed += count;
            snprintf(why, sizeof(why), "worker %d gave no report", p);
            json_object_set_new(errors, why, json_integer(count));
            continue;
        }
        reports++;
        connected += (long)json_integer_value(json_object_get(r, "connected"));
        ready += (long)json_integer_value(json_object_get(r, "ready"));
        failed += (long)json_integer_value(json_object_get(r, "failed"));
        dropped += (long)json_integer_value(json_object_get(r, "dropped"));
        closed_clean += (long)json_integer_value(json_object_get(r, "closed_clean"));
        uint64_t tb = (uint64_t)json_integer_value(json_object_get(r, "t_begin_ns"));
        uint64_t to = (uint64_t)json_integer_value(json_object_get(r, "t_last_open_ns"));
        uint64_t tl = (uint64_t)json_integer_value(json_object_get(r, "t_last_login_ns"));
        if (tb && (!t_begin || tb < t_begin))
            t_begin = tb;
        if (to > t_last_open)
            t_last_open = to;
        if (tl > t_last_login)
            t_last_login = tl;
        samples_add_array(&hs, json_object_get(r, "hs_us"));
        samples_add_array(&login, json_object_get(r, "login_us"));
        json_object_foreach(json_object_get(r, "errors"), key, val)
        {
            json_int_t prev = json_integer_value(json_object_get(errors, key));
            json_object_set_new(errors, key, json_integer(prev + json_integer_value(val)));
        }
    }
    if (hs.n)
        qsort(hs.v, hs.n, sizeof(*hs.v), cmp_u32);
    if (login.n)
        qsort(login.v, login.n, sizeof(*login.v), cmp_u32);

    double connect_s =
        (t_begin && t_last_open > t_begin) ? (double)(t_last_open - t_begin) / 1e9 : 0;
    double login_s =
        (t_begin && t_last_login > t_begin) ? (double)(t_last_login - t_begin) / 1e9 : 0;
    long logged_in = cfg->no_auth ? 0 : ready;
    json_t *rss_per_conn = json_null();
    if (cfg->baseline_rss_kib >= 0 && run->rss_after >= 0 && connected > 0) {
        double per = (double)(run->rss_after - cfg->baseline_rss_kib) * 1024.0 / (double)connected;
        rss_per_conn = json_integer((json_int_t)(per < 0 ? per - 0.5 : per + 0.5));
    }

    json_t *out = json_object();
    json_object_set_new(out, "conns", json_integer(cfg->conns));
    json_object_set_new(out, "procs", json_integer(cfg->procs));
    json_object_set_new(out, "sources", json_integer(cfg->sources));
    json_object_set_new(out, "auth",
                        json_string(cfg->no_auth            ? "none"
                                    : cfg->token_from_login ? "token-from-login"
                                    : cfg->token            ? "token"
                                                            : "login"));
    json_object_set_new(out, "tls", json_boolean(cfg->tls));
    json_object_set_new(out, "connected", json_integer(connected));
    json_object_set_new(out, "logged_in", json_integer(logged_in));
    json_object_set_new(out, "failed", json_integer(failed));
    json_object_set_new(out, "dropped", json_integer(dropped));
    json_object_set_new(out, "closed_clean", json_integer(closed_clean));
    json_object_set_new(out, "connect_s", connected ? json_real(connect_s) : json_null());
    json_object_set_new(out, "connect_rate", rate_or_null(connected, connect_s));
    json_object_set_new(out, "handshake_p50_ms", percentile_ms(&hs, 50));
    json_object_set_new(out, "handshake_p99_ms", percentile_ms(&hs, 99));
    json_object_set_new(out, "login_s", logged_in ? json_real(login_s) : json_null());
    json_object_set_new(out, "login_rate",
                        cfg->no_auth ? json_null() : rate_or_null(logged_in, login_s));
    json_object_set_new(out, "login_p50_ms", percentile_ms(&login, 50));
    json_object_set_new(out, "login_p99_ms", percentile_ms(&login, 99));
    json_object_set_new(out, "hold_s",
                        json_real(run->hold_start && run->hold_end >= run->hold_start
                                      ? (double)(run->hold_end - run->hold_start) / 1e9
                                      : 0));
    json_object_set_new(out, "server_rss_kib_before", int_or_null(run->rss_before));
    json_object_set_new(out, "server_rss_kib_after", int_or_null(run->rss_after));
    json_object_set_new(out, "baseline_rss_kib", int_or_null(cfg->baseline_rss_kib));
    json_object_set_new(out, "rss_per_conn_bytes", rss_per_conn);
    json_object_set_new(out, "timed_out", json_boolean(run->killed));
    json_object_set_new(out, "interrupted", json_boolean(run->interrupted));
    json_object_set_new(out, "errors", errors);

    char *line = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (line) {
        printf("%s\n", line);
        fflush(stdout);
        free(line);
    }

    fprintf(stderr,
            "yjt-load: %d conns over %d procs / %d sources to %s:%d%s (%s%s)\n"
            "  connected  %ld   logged in %ld   failed %ld   dropped %ld   closed cleanly %ld\n",
            cfg->conns, cfg->procs, cfg->sources, cfg->address, cfg->port,
            cfg->nports > 1 ? " and the other ports in turn" : "", cfg->tls ? "wss, " : "",
            cfg->no_auth            ? "no auth"
            : cfg->token_from_login ? "token auth, token from one password login"
            : cfg->token            ? "token auth"
                                    : "password auth",
            connected, logged_in, failed, dropped, closed_clean);
    if (hs.n)
        fprintf(stderr, "  connect    %.2f s, %.0f conn/s, handshake p50 %.2f ms p99 %.2f ms\n",
                connect_s, connect_s > 0 ? (double)connected / connect_s : 0,
                percentile_value_ms(&hs, 50), percentile_value_ms(&hs, 99));
    if (login.n)
        fprintf(stderr, "  login      %.2f s, %.0f login/s, p50 %.2f ms p99 %.2f ms\n", login_s,
                login_s > 0 ? (double)logged_in / login_s : 0, percentile_value_ms(&login, 50),
                percentile_value_ms(&login, 99));
    if (run->rss_before >= 0 || run->rss_after >= 0)
        fprintf(stderr, "  server RSS %lld KiB at hold start, %lld KiB at hold end\n",
                run->rss_before, run->rss_after);
    else if (cfg->server_pid)
        fprintf(stderr, "  server RSS could not be read from /proc/%ld/status\n", cfg->server_pid);
    if (json_is_integer(rss_per_conn))
        fprintf(stderr, "  RSS per connection %lld bytes (baseline %lld KiB)\n",
                (long long)json_integer_value(rss_per_conn), cfg->baseline_rss_kib);
    if (run->hold_truncated)
        fprintf(stderr, "  note: hold shortened to fit --timeout\n");
    {
        const char *key;
        json_t *val;
        json_object_foreach(errors, key, val)
        {
            fprintf(stderr, "  error x%lld: %s\n", (long long)json_integer_value(val), key);
        }
    }

    bool ok = !run->killed && !run->interrupted && reports == cfg->procs && failed == 0 &&
              dropped == 0 && ready == cfg->conns;
    json_decref(out);
    free(hs.v);
    free(login.v);
    return ok;
}
