/*
 * yjt-callbench: call set-up benchmark for yjtd (callbench.c, the parent).
 *
 * P pairs of WebSocket connections log in as users <prefix>g<i> (a gov
 * user: the caller) and <prefix>c<i> (a corp user of an enterprise in that
 * user's division: the callee); each pair runs invite -> incoming -> accept
 * -> accepted, holds the call hold_s seconds, hangs up and is used again.
 * A pacer starts set-ups at --rate per second in total, so about rate x
 * hold_s calls are up at any time (--concurrent sets hold_s that way).
 * Set-ups started in the first --warmup seconds (the calls building up to
 * that number) are not measured; those of the next --duration seconds are.
 *
 * This file parses the options, forks the worker processes (callworker.c;
 * one by default, which leaves the other core of a small machine to the
 * server), starts them at the same instant once all are logged in, reads
 * the server's CPU time, RSS and disk writes and the machine's CPU time
 * from /proc around the measured window, merges
 * the workers' samples and prints one JSON line on stdout (and a summary on
 * stderr).  Exit status 0 if every pair logged in and every measured
 * set-up succeeded, 1 otherwise, 2 on bad usage.  Only loopback targets.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "callbench.h"
#include "cli.h"
#include "load.h" /* struct load_child, load_child_read, load_read_rss_kib */

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

char cb_source_names[CB_MAX_SOURCES][24];

static void print_usage(void)
{
    fputs("usage: yjt-callbench --port PORT [options]\n"
          "\n"
          "Call set-ups through yjtd at a paced rate: callers <prefix>g<i> invite callees\n"
          "<prefix>c<i> (i = 0 .. pairs-1, all with one password), the callee accepts,\n"
          "the call stays up for the hold time, then the caller hangs up. Prints one\n"
          "JSON line: set-ups/s, latency percentiles, failures by reason.\n"
          "\n"
          "  --host HOST          loopback target (127.x.x.x or localhost; default 127.0.0.1)\n"
          "  --port PORT          target port (required)\n"
          "  --callee-port PORT   callees connect to this port instead (another node of\n"
          "                       a cluster sharing the store: every call crosses nodes)\n"
          "  --path PATH          WebSocket path (default /ws)\n"
          "  --rate R             set-ups per second, all workers (default 500)\n"
          "  --concurrent C       established calls to hold: the hold time is C/R\n"
          "                       (default 1000)\n"
          "  --hold S             hold time in seconds instead of C/R\n"
          "  --pairs P            caller/callee pairs (default: enough for R x (hold +\n"
          "                       0.25 s) with 10% to spare)\n"
          "  --warmup S           set-ups not measured at the start (default hold + 1)\n"
          "  --duration S         measured seconds after the warm-up (default 30)\n"
          "  --setup-timeout S    a set-up not done by then failed (default 5)\n"
          "  --user-prefix X      user name prefix (default cb)\n"
          "  --password PW        password of every user (required)\n"
          "  --offer-bytes N      SDP offer size (default 4500)\n"
          "  --answer-bytes N     SDP answer size (default 3000)\n"
          "  --procs N            worker processes (default 1)\n"
          "  --sources S          source addresses 127.0.0.2 .. 127.0.0.(1+S) (default 1)\n"
          "  --server-pid PID     report the server's CPU and RSS from /proc\n"
          "  --timeout S          hard limit for the whole run (default: enough)\n"
          "  -v, --verbose        libwebsockets warnings (twice: notices)\n"
          "  -h, --help           this text\n",
          stdout);
}

static const char *token_arg(const char *opt, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CB_MAX_STRING)
        cli_die_usage("%s must be 1-%d characters", opt, CB_MAX_STRING);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20)
            cli_die_usage("%s may not contain quotes, backslashes or control characters", opt);
    return s;
}

static void parse_args(int argc, char **argv, struct cb_config *cfg)
{
    enum {
        OPT_HOST = 256,
        OPT_PORT,
        OPT_CALLEE_PORT,
        OPT_PATH,
        OPT_RATE,
        OPT_CONC,
        OPT_HOLD,
        OPT_PAIRS,
        OPT_WARMUP,
        OPT_DURATION,
        OPT_SETUP_TIMEOUT,
        OPT_PREFIX,
        OPT_PASSWORD,
        OPT_OFFER,
        OPT_ANSWER,
        OPT_PROCS,
        OPT_SOURCES,
        OPT_SERVER_PID,
        OPT_TIMEOUT,
    };
    static const struct option options[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"callee-port", required_argument, NULL, OPT_CALLEE_PORT},
        {"path", required_argument, NULL, OPT_PATH},
        {"rate", required_argument, NULL, OPT_RATE},
        {"concurrent", required_argument, NULL, OPT_CONC},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"pairs", required_argument, NULL, OPT_PAIRS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"setup-timeout", required_argument, NULL, OPT_SETUP_TIMEOUT},
        {"user-prefix", required_argument, NULL, OPT_PREFIX},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"offer-bytes", required_argument, NULL, OPT_OFFER},
        {"answer-bytes", required_argument, NULL, OPT_ANSWER},
        {"procs", required_argument, NULL, OPT_PROCS},
        {"sources", required_argument, NULL, OPT_SOURCES},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct in_addr a4;
    int opt;

    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->path = "/ws";
    cfg->rate = 500;
    cfg->concurrent = 1000;
    cfg->hold_s = -1;
    cfg->warmup_s = -1;
    cfg->duration_s = 30;
    cfg->setup_timeout_s = 5;
    cfg->prefix = "cb";
    cfg->offer_bytes = 4500;
    cfg->answer_bytes = 3000;
    cfg->procs = 1;
    cfg->sources = 1;

    while ((opt = getopt_long(argc, argv, "vh", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST:
            cfg->host = token_arg("--host", optarg);
            break;
        case OPT_PORT:
            cfg->port = (int)cli_number("--port", optarg, 1, 65535);
            break;
        case OPT_CALLEE_PORT:
            cfg->callee_port = (int)cli_number("--callee-port", optarg, 1, 65535);
            break;
        case OPT_PATH:
            cfg->path = token_arg("--path", optarg);
            break;
        case OPT_RATE:
            cfg->rate = cli_number("--rate", optarg, 0.1, 100000);
            break;
        case OPT_CONC:
            cfg->concurrent = cli_number("--concurrent", optarg, 1, 100000);
            break;
        case OPT_HOLD:
            cfg->hold_s = cli_number("--hold", optarg, 0, 3600);
            break;
        case OPT_PAIRS:
            cfg->pairs = (int)cli_number("--pairs", optarg, 1, CB_MAX_PAIRS * CB_MAX_PROCS);
            break;
        case OPT_WARMUP:
            cfg->warmup_s = cli_number("--warmup", optarg, 0, 3600);
            break;
        case OPT_DURATION:
            cfg->duration_s = cli_number("--duration", optarg, 0.1, 86400);
            break;
        case OPT_SETUP_TIMEOUT:
            cfg->setup_timeout_s = cli_number("--setup-timeout", optarg, 0.1, 600);
            break;
        case OPT_PREFIX:
            cfg->prefix = token_arg("--user-prefix", optarg);
            break;
        case OPT_PASSWORD:
            cfg->password = token_arg("--password", optarg);
            break;
        case OPT_OFFER:
            cfg->offer_bytes = (int)cli_number("--offer-bytes", optarg, 0, 60000);
            break;
        case OPT_ANSWER:
            cfg->answer_bytes = (int)cli_number("--answer-bytes", optarg, 0, 60000);
            break;
        case OPT_PROCS:
            cfg->procs = (int)cli_number("--procs", optarg, 1, CB_MAX_PROCS);
            break;
        case OPT_SOURCES:
            cfg->sources = (int)cli_number("--sources", optarg, 0, CB_MAX_SOURCES);
            break;
        case OPT_SERVER_PID:
            cfg->server_pid = (long)cli_number("--server-pid", optarg, 1, 1e9);
            break;
        case OPT_TIMEOUT:
            cfg->timeout_s = cli_number("--timeout", optarg, 1, 86400);
            break;
        case 'v':
            cfg->verbose++;
            break;
        case 'h':
            print_usage();
            exit(0);
        default:
            cli_die_usage("bad option");
        }
    }
    if (optind < argc)
        cli_die_usage("unexpected argument '%s'", argv[optind]);
    if (!cfg->port)
        cli_die_usage("--port is required");
    if (!cfg->callee_port)
        cfg->callee_port = cfg->port;
    if (!cfg->password)
        cli_die_usage("--password is required");
    if (cfg->path[0] != '/')
        cli_die_usage("--path must start with /");
    if (!strcmp(cfg->host, "localhost"))
        snprintf(cfg->address, sizeof(cfg->address), "127.0.0.1");
    else if (inet_pton(AF_INET, cfg->host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127)
        snprintf(cfg->address, sizeof(cfg->address), "%s", cfg->host);
    else
        cli_die_usage("refusing non-loopback target %s (only 127.x.x.x and localhost)", cfg->host);

    if (cfg->hold_s < 0)
        cfg->hold_s = cfg->concurrent / cfg->rate;
    if (cfg->warmup_s < 0)
        cfg->warmup_s = cfg->hold_s + 1;
    if (!cfg->pairs)
        cfg->pairs = (int)ceil(cfg->rate * (cfg->hold_s + 0.25) * 1.1);
    if (cfg->procs > cfg->pairs)
        cfg->procs = cfg->pairs;
    if ((cfg->pairs + cfg->procs - 1) / cfg->procs > CB_MAX_PAIRS)
        cli_die_usage("%d pairs need more than %d per process: use --procs %d or more", cfg->pairs,
                      CB_MAX_PAIRS, (cfg->pairs + CB_MAX_PAIRS - 1) / CB_MAX_PAIRS);
    if (!cfg->timeout_s)
        cfg->timeout_s = 90 + cfg->pairs / 50.0 + cfg->warmup_s + cfg->duration_s +
                         cfg->setup_timeout_s + cfg->hold_s;
    for (int i = 0; i < cfg->sources; i++)
        snprintf(cb_source_names[i], sizeof(cb_source_names[i]), "127.0.0.%d", i + 2);
}

/* ------------------------------------------------------------------------ */
/* merging the workers' reports                                              */

struct sampleset {
    uint32_t *v;
    size_t n;
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void gather(struct sampleset *s, const struct load_child *kids, int n, const char *key)
{
    size_t total = 0, i;
    json_t *item;

    for (int p = 0; p < n; p++)
        total += json_array_size(json_object_get(kids[p].report, key));
    s->v = malloc((total ? total : 1) * sizeof(*s->v));
    s->n = 0;
    for (int p = 0; p < n && s->v; p++)
        json_array_foreach(json_object_get(kids[p].report, key), i, item)
        {
            s->v[s->n++] = (uint32_t)json_integer_value(item);
        }
    if (s->n)
        qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
}

/* Nearest-rank percentile in milliseconds. */
static double pct_ms(const struct sampleset *s, unsigned pct)
{
    size_t rank = (s->n * pct + 99) / 100;
    return (double)s->v[rank < 1 ? 0 : rank - 1] / 1000.0;
}

static json_t *summary(const struct sampleset *s)
{
    double sum = 0;
    if (!s->n)
        return json_null();
    for (size_t i = 0; i < s->n; i++)
        sum += s->v[i];
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)s->n, "p50", pct_ms(s, 50),
                     "p90", pct_ms(s, 90), "p99", pct_ms(s, 99), "max",
                     (double)s->v[s->n - 1] / 1000.0, "mean", sum / (double)s->n / 1000.0);
}

static long long sum_int(const struct load_child *kids, int n, const char *key)
{
    long long t = 0;
    for (int p = 0; p < n; p++)
        t += json_integer_value(json_object_get(kids[p].report, key));
    return t;
}

/* utime + stime of a process in clock ticks, or -1. */
static long long cpu_ticks(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    FILE *f;
    size_t n;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* Busy clock ticks of the whole machine (all CPUs), or -1. */
static long long machine_busy_ticks(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (!f)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return -1;
    /* user nice system [idle iowait] irq softirq steal */
    return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

/* Bytes the process caused to be written to storage (/proc/PID/io), or -1. */
static long long io_write_bytes(long pid)
{
    char path[64], line[128];
    long long v = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/io", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "write_bytes: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

struct window {
    long long srv_ticks0, srv_ticks1;
    long long all_ticks0, all_ticks1;
    long long wbytes0, wbytes1;
    uint64_t t0, t1;
    long long rss0, rss1;
    bool killed;
};

static bool report(const struct cb_config *cfg, const struct load_child *kids,
                   const struct window *win)
{
    static const char *const keys[] = {"setup_us",  "incoming_us", "reply_us",
                                       "accept_us", "hangup_us",   "lag_us"};
    static const char *const names[] = {"setup_ms",        "incoming_ms",
                                        "invite_reply_ms", "accept_to_accepted_ms",
                                        "hangup_ms",       "pacer_lag_ms"};
    struct sampleset s[6];
    json_t *out = json_object(), *errors = json_object();
    long long ready = sum_int(kids, cfg->procs, "ready_pairs");
    long long started = sum_int(kids, cfg->procs, "started");
    long long ok = sum_int(kids, cfg->procs, "ok"), failed = sum_int(kids, cfg->procs, "failed");
    long long conc_n = sum_int(kids, cfg->procs, "conc_n") / cfg->procs;
    double cpu = 0, cpu_window = 0;
    int reports = 0;

    for (int p = 0; p < cfg->procs; p++) {
        const char *key;
        json_t *val;
        if (!kids[p].report) {
            json_object_set_new(errors, "a worker gave no report", json_integer(1));
            continue;
        }
        reports++;
        cpu += json_real_value(json_object_get(kids[p].report, "cpu_s"));
        if (json_real_value(json_object_get(kids[p].report, "cpu_window_s")) > cpu_window)
            cpu_window = json_real_value(json_object_get(kids[p].report, "cpu_window_s"));
        json_object_foreach(json_object_get(kids[p].report, "errors"), key, val)
        {
            json_int_t prev = json_integer_value(json_object_get(errors, key));
            json_object_set_new(errors, key, json_integer(prev + json_integer_value(val)));
        }
    }
    for (int i = 0; i < 6; i++)
        gather(&s[i], kids, cfg->procs, keys[i]);

    json_object_set_new(out, "mode", json_string("calls"));
    json_object_set_new(out, "pairs", json_integer(cfg->pairs));
    json_object_set_new(out, "cross_node", json_boolean(cfg->callee_port != cfg->port));
    json_object_set_new(out, "ready_pairs", json_integer(ready));
    json_object_set_new(out, "procs", json_integer(cfg->procs));
    json_object_set_new(out, "sources", json_integer(cfg->sources));
    json_object_set_new(out, "offer_sdp_bytes",
                        json_integer((json_int_t)cb_sdp_plain_len(true, cfg->offer_bytes)));
    json_object_set_new(out, "answer_sdp_bytes",
                        json_integer((json_int_t)cb_sdp_plain_len(false, cfg->answer_bytes)));
    json_object_set_new(out, "rate_target", json_real(cfg->rate));
    json_object_set_new(out, "hold_s", json_real(cfg->hold_s));
    json_object_set_new(out, "warmup_s", json_real(cfg->warmup_s));
    json_object_set_new(out, "duration_s", json_real(cfg->duration_s));
    json_object_set_new(out, "setups_started", json_integer(started));
    json_object_set_new(out, "setups_ok", json_integer(ok));
    json_object_set_new(out, "setups_failed", json_integer(failed));
    json_object_set_new(out, "setups_per_s", json_real((double)ok / cfg->duration_s));
    json_object_set_new(out, "setups_incl_warmup",
                        json_pack("{s:I, s:I, s:I}", "started",
                                  (json_int_t)sum_int(kids, cfg->procs, "started_all"), "ok",
                                  (json_int_t)sum_int(kids, cfg->procs, "ok_all"), "failed",
                                  (json_int_t)sum_int(kids, cfg->procs, "failed_all")));
    for (int i = 0; i < 6; i++)
        json_object_set_new(out, names[i], summary(&s[i]));
    {
        long long cmin = 0, cmax = 0, csum = sum_int(kids, cfg->procs, "conc_sum");
        for (int p = 0; p < cfg->procs; p++) {
            cmin += json_integer_value(json_object_get(kids[p].report, "conc_min"));
            cmax += json_integer_value(json_object_get(kids[p].report, "conc_max"));
        }
        /* per-worker extremes added up: exact for one worker, a bound otherwise */
        json_object_set_new(out, "concurrent_calls",
                            conc_n ? json_pack("{s:f, s:I, s:I}", "avg", (double)csum / conc_n,
                                               "min", (json_int_t)cmin, "max", (json_int_t)cmax)
                                   : json_null());
    }
    json_object_set_new(out, "client_cpu_pct",
                        cpu_window > 0 ? json_real(100.0 * cpu / cpu_window) : json_null());
    if (win->srv_ticks0 >= 0 && win->srv_ticks1 >= win->srv_ticks0 && win->t1 > win->t0)
        json_object_set_new(out, "server_cpu_pct",
                            json_real(100.0 * (double)(win->srv_ticks1 - win->srv_ticks0) /
                                      (double)sysconf(_SC_CLK_TCK) /
                                      ((double)(win->t1 - win->t0) / 1e9)));
    else
        json_object_set_new(out, "server_cpu_pct", json_null());
    /* what the rest of the machine did meanwhile: a busy neighbour skews
     * latency on a small machine */
    if (win->all_ticks0 >= 0 && win->all_ticks1 >= win->all_ticks0 && win->t1 > win->t0) {
        double all = 100.0 * (double)(win->all_ticks1 - win->all_ticks0) /
                     (double)sysconf(_SC_CLK_TCK) / ((double)(win->t1 - win->t0) / 1e9);
        json_t *srv = json_object_get(out, "server_cpu_pct");
        json_t *cli = json_object_get(out, "client_cpu_pct");
        double others = all - (json_is_real(srv) ? json_real_value(srv) : 0) -
                        (json_is_real(cli) ? json_real_value(cli) : 0);
        json_object_set_new(out, "machine_cpu_pct", json_real(all));
        json_object_set_new(out, "others_cpu_pct", json_real(others > 0 ? others : 0));
        json_object_set_new(out, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    }
    /* storage writes of the server in the window (its store), per set-up */
    if (win->wbytes0 >= 0 && win->wbytes1 >= win->wbytes0) {
        json_object_set_new(out, "server_disk_written_mib",
                            json_real((double)(win->wbytes1 - win->wbytes0) / 1048576.0));
        json_object_set_new(
            out, "server_disk_written_kib_per_setup",
            ok ? json_real((double)(win->wbytes1 - win->wbytes0) / 1024.0 / (double)ok)
               : json_null());
    }
    json_object_set_new(out, "server_rss_kib_start",
                        win->rss0 >= 0 ? json_integer(win->rss0) : json_null());
    json_object_set_new(out, "server_rss_kib_end",
                        win->rss1 >= 0 ? json_integer(win->rss1) : json_null());
    json_object_set_new(out, "stray_events", json_integer(sum_int(kids, cfg->procs, "stray")));
    json_object_set_new(out, "pacer_starved", json_integer(sum_int(kids, cfg->procs, "starved")));
    json_object_set_new(out, "timed_out", json_boolean(win->killed));
    json_object_set_new(out, "cli_interrupted", json_boolean(cli_interrupted));
    json_object_set_new(out, "errors", errors);

    char *line = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (line) {
        printf("%s\n", line);
        fflush(stdout);
        free(line);
    }
    fprintf(stderr,
            "yjt-callbench: %lld/%d pairs ready, %.0f set-ups/s target, hold %.2fs\n"
            "  measured %.0fs: started %lld, ok %lld, failed %lld -> %.1f set-ups/s\n",
            ready, cfg->pairs, cfg->rate, cfg->hold_s, cfg->duration_s, started, ok, failed,
            (double)ok / cfg->duration_s);
    {
        json_t *srv = json_object_get(out, "server_cpu_pct");
        json_t *cli = json_object_get(out, "client_cpu_pct");
        json_t *oth = json_object_get(out, "others_cpu_pct");
        fprintf(stderr,
                "  CPU, %% of one core: server %.0f, yjt-callbench %.0f, other processes %.0f\n",
                json_real_value(srv), json_real_value(cli), json_real_value(oth));
    }
    for (int i = 0; i < 6; i++)
        if (s[i].n)
            fprintf(stderr, "  %-22s p50 %7.2f  p90 %7.2f  p99 %7.2f  max %7.2f ms\n", names[i],
                    pct_ms(&s[i], 50), pct_ms(&s[i], 90), pct_ms(&s[i], 99),
                    (double)s[i].v[s[i].n - 1] / 1000.0);
    {
        const char *key;
        json_t *val;
        json_object_foreach(errors, key, val)
        {
            fprintf(stderr, "  error x%lld: %s\n", (long long)json_integer_value(val), key);
        }
    }
    bool good = !win->killed && !cli_interrupted && reports == cfg->procs && ready == cfg->pairs &&
                failed == 0 && started > 0 && ok == started;
    for (int i = 0; i < 6; i++)
        free(s[i].v);
    json_decref(out);
    return good;
}

/* ------------------------------------------------------------------------ */

static void tell(struct load_child *kids, int n, const char *msg, bool close_after)
{
    for (int p = 0; p < n; p++) {
        if (kids[p].down_fd < 0)
            continue;
        if (write(kids[p].down_fd, msg, strlen(msg)) < 0) {
            /* the worker is gone; its up pipe says so too */
        }
        if (close_after) {
            close(kids[p].down_fd);
            kids[p].down_fd = -1;
        }
    }
}

static int run_worker(void *ud, int proc, int first, int count, int up_fd, int down_fd)
{
    const struct cb_config *cfg = ud;
    return cb_run_worker(cfg, proc, first, count, cfg->rate / cfg->procs, up_fd, down_fd);
}

int main(int argc, char **argv)
{
    struct cb_config cfg;
    struct load_child kids[CB_MAX_PROCS];
    struct window win = {.srv_ticks0 = -1,
                         .srv_ticks1 = -1,
                         .all_ticks0 = -1,
                         .all_ticks1 = -1,
                         .wbytes0 = -1,
                         .wbytes1 = -1,
                         .rss0 = -1,
                         .rss1 = -1};
    rlim_t nofile;
    uint64_t t_start, hard_deadline, go_at = 0, t_measure = 0, t_end = 0;
    bool started = false, stop_sent = false;

    cli_prog = "yjt-callbench";
    parse_args(argc, argv, &cfg);
    nofile = cli_raise_nofile();
    if ((rlim_t)(2 * ((cfg.pairs + cfg.procs - 1) / cfg.procs) + 100) > nofile)
        cli_die_usage("%d pairs over %d processes need more open files than the limit %lu",
                      cfg.pairs, cfg.procs, (unsigned long)nofile);

    cli_catch_signals();

    fprintf(stderr,
            "yjt-callbench: %d pairs (%d connections) in %d process(es), %.0f set-ups/s, "
            "hold %.2fs, warm-up %.1fs, measured %.1fs\n",
            cfg.pairs, 2 * cfg.pairs, cfg.procs, cfg.rate, cfg.hold_s, cfg.warmup_s,
            cfg.duration_s);
    t_start = load_mono_ns();
    hard_deadline = t_start + (uint64_t)(cfg.timeout_s * 1e9);
    if (cli_fork_workers(kids, cfg.procs, cfg.pairs, run_worker, &cfg) < 0)
        return 1;

    for (;;) {
        struct pollfd pfd[CB_MAX_PROCS];
        int map[CB_MAX_PROCS], npfd = 0, settled = 0;
        uint64_t now = load_mono_ns();

        for (int p = 0; p < cfg.procs; p++) {
            settled += kids[p].settled;
            if (!kids[p].eof) {
                pfd[npfd].fd = kids[p].up_fd;
                pfd[npfd].events = POLLIN;
                map[npfd++] = p;
            }
        }
        if (!npfd)
            break;
        if (now >= hard_deadline) {
            for (int p = 0; p < cfg.procs; p++)
                if (!kids[p].eof)
                    kill(kids[p].pid, SIGKILL);
            win.killed = true;
            fprintf(stderr, "yjt-callbench: --timeout reached, workers killed\n");
            break;
        }
        if (cli_interrupted && !stop_sent) {
            tell(kids, cfg.procs, "C\n", true);
            stop_sent = true;
        }
        if (!started && settled == cfg.procs && !stop_sent) {
            char line[48];
            int ready = 0;
            for (int p = 0; p < cfg.procs; p++)
                ready += kids[p].ready_at_settle;
            if (!ready) {
                fprintf(stderr, "yjt-callbench: no pair could log in\n");
                tell(kids, cfg.procs, "C\n", true);
                stop_sent = true;
                continue;
            }
            started = true;
            go_at = now + 200 * 1000000ull; /* every worker has the line by then */
            t_measure = go_at + (uint64_t)(cfg.warmup_s * 1e9);
            t_end = t_measure + (uint64_t)(cfg.duration_s * 1e9);
            snprintf(line, sizeof(line), "G %llu\n", (unsigned long long)go_at);
            tell(kids, cfg.procs, line, false);
            fprintf(stderr, "yjt-callbench: logged in after %.1fs; calling\n",
                    (double)(now - t_start) / 1e9);
        }
        if (started && !win.t0 && now >= t_measure) {
            win.t0 = now;
            win.srv_ticks0 = cpu_ticks(cfg.server_pid);
            win.all_ticks0 = machine_busy_ticks();
            win.wbytes0 = io_write_bytes(cfg.server_pid);
            win.rss0 = load_read_rss_kib(cfg.server_pid);
        }
        if (started && !win.t1 && now >= t_end) {
            win.t1 = now;
            win.srv_ticks1 = cpu_ticks(cfg.server_pid);
            win.all_ticks1 = machine_busy_ticks();
            win.wbytes1 = io_write_bytes(cfg.server_pid);
            win.rss1 = load_read_rss_kib(cfg.server_pid);
        }
        int timeout_ms = 100;
        if (started && !win.t0 && t_measure > now && (t_measure - now) / 1000000 < 100)
            timeout_ms = (int)((t_measure - now) / 1000000);
        if (started && !win.t1 && t_end > now && (t_end - now) / 1000000 < 100)
            timeout_ms = (int)((t_end - now) / 1000000);
        if (poll(pfd, (nfds_t)npfd, timeout_ms) < 0 && errno != EINTR) {
            perror("yjt-callbench: poll");
            break;
        }
        for (int i = 0; i < npfd; i++)
            if (pfd[i].revents)
                load_child_read(&kids[map[i]]);
    }
    tell(kids, cfg.procs, "", true);
    for (int p = 0; p < cfg.procs; p++)
        waitpid(kids[p].pid, NULL, 0);

    bool good = report(&cfg, kids, &win);
    for (int p = 0; p < cfg.procs; p++) {
        json_decref(kids[p].report);
        free(kids[p].buf);
    }
    return good ? 0 : 1;
}
