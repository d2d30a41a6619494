/*
 * yjt-load: WebSocket connection load generator for yjtd (main.c).
 *
 * It opens many WebSocket connections (subprotocol "yjt.v1") to a yjtd
 * instance on the loopback interface, logs each one in, keeps them all idle
 * for a while and reports how fast they connected and logged in and, when
 * given the server's pid, how much resident memory the server used for them.
 *
 * The work is split over several forked worker processes (each with its own
 * libwebsockets context and at most ~19,000 sockets, because a process may
 * hold only 20,000 open files) and over several loopback source addresses
 * 127.0.0.2 .. 127.0.0.(1+S) so the ephemeral port range of a single source
 * address is never the limit.  The parent process drives the phases
 * (connect, hold, close), reads the server's RSS at the start and the end of
 * the hold, and merges the workers' results, which come back as one JSON line
 * per worker over a pipe.  It prints one JSON line on stdout and a readable
 * summary on stderr, and exits 0 only if every connection succeeded.
 *
 * Only loopback targets are accepted.  Run with --help for the options.
 *
 * This file is the parent process: option parsing, the loopback and limit
 * checks, planning how many processes and source addresses to use, forking
 * the workers (worker.c, also once for --token-from-login) and driving the
 * phases.  Reading the workers' pipes, the server's RSS and the final report
 * are in report.c; what the files share is in load.h.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "cli.h"
#include "load.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char load_source_names[MAX_SOURCES][24];

/* ------------------------------------------------------------------------ */
/* parent process: forking the workers and driving the phases                */

static void tell_children_to_close(struct load_child *kids, int n)
{
    for (int i = 0; i < n; i++) {
        if (kids[i].down_fd >= 0) {
            if (write(kids[i].down_fd, "C", 1) != 1) {
                /* the worker is gone already; its pipe closing says the same */
            }
            close(kids[i].down_fd);
            kids[i].down_fd = -1;
        }
    }
}

/*
 * --token-from-login: one worker process logs one connection in with the
 * username and password and hands back the session token of the reply.
 */
static char *fetch_token(const struct load_config *cfg, uint64_t deadline)
{
    struct load_config one = *cfg;
    struct load_child ch;
    int up[2], down[2];
    char *token = NULL;
    pid_t pid;

    one.token = NULL;
    one.conns = 1;
    if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
        perror("yjt-load: pipe");
        return NULL;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        perror("yjt-load: fork");
        return NULL;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_IGN);
        close(up[0]);
        close(down[1]);
        fcntl(down[0], F_SETFL, fcntl(down[0], F_GETFL) | O_NONBLOCK);
        _exit(load_run_worker(&one, -1, 0, 1, deadline, deadline, up[1], down[0]));
    }
    close(up[1]);
    close(down[0]);
    memset(&ch, 0, sizeof(ch));
    ch.pid = pid;
    ch.up_fd = up[0];
    ch.down_fd = down[1];
    while (!ch.eof) {
        struct pollfd pfd = {.fd = ch.up_fd, .events = POLLIN};

        if (load_mono_ns() >= deadline + NS_PER_S) {
            kill(pid, SIGKILL);
            break;
        }
        if ((ch.settled || cli_interrupted) && ch.down_fd >= 0)
            tell_children_to_close(&ch, 1);
        if (poll(&pfd, 1, 100) > 0)
            load_child_read(&ch);
    }
    if (ch.down_fd >= 0)
        close(ch.down_fd);
    if (ch.up_fd >= 0)
        close(ch.up_fd);
    waitpid(pid, NULL, 0);

    if (ch.report && json_string_value(json_object_get(ch.report, "token"))) {
        token = strdup(json_string_value(json_object_get(ch.report, "token")));
    } else {
        const char *key;
        json_t *val;
        fprintf(stderr, "yjt-load: --token-from-login: the login gave no token\n");
        json_object_foreach(json_object_get(ch.report, "errors"), key, val)
        {
            fprintf(stderr, "  %s\n", key);
        }
    }
    json_decref(ch.report);
    free(ch.buf);
    return token;
}

static void print_usage(void)
{
    fputs("usage: yjt-load --port PORT [options]\n"
          "\n"
          "Opens many WebSocket connections to ws://HOST:PORT/ws (subprotocol yjt.v1),\n"
          "logs them in, holds them idle and reports one JSON line on stdout.\n"
          "\n"
          "  --host HOST          target, loopback only (127.x.x.x, ::1, localhost;\n"
          "                       default 127.0.0.1)\n"
          "  --port PORT          target port (required); repeat it for several nodes\n"
          "                       of a cluster: connection i goes to the (i mod n)-th\n"
          "  --path PATH          WebSocket path (default /ws)\n"
          "  --tls                use wss:// and accept a self-signed certificate\n"
          "  -n, --conns N        connections in total (default 100)\n"
          "  --procs P            worker processes (default: enough for <= 19000 each,\n"
          "                       9500 with --raw-rx)\n"
          "  --sources S          source addresses 127.0.0.2 .. 127.0.0.(1+S)\n"
          "                       (default: enough for the ephemeral port range;\n"
          "                       0 = let the kernel choose, the only choice for ::1)\n"
          "  --rate R             connection attempts per second per process (0 = no\n"
          "                       limit; default 0)\n"
          "  --inflight K         max connections per process still in handshake or\n"
          "                       waiting for the login reply (default 256)\n"
          "  --user U --password PW   log in with auth.login\n"
          "  --token T            log in with auth.token instead\n"
          "  --token-from-login   with --user/--password: log in once, then use the\n"
          "                       token from that reply for every connection\n"
          "  --no-auth            only connect, send nothing\n"
          "  --users N            with --user U: connection i logs in as U<i mod N>\n"
          "                       (accounts U0 .. U<N-1>, one password)\n"
          "  --push-log PREFIX    write \"created_at received_us\" of every push event\n"
          "                       to PREFIX.<worker> at the end (with --feed: \"ts\n"
          "                       received_us\" of the first sensor of every feed.delta)\n"
          "  --raw-rx             once its login is written, read each connection's frames\n"
          "                       without lws (far less CPU per message; plain\n"
          "                       WebSocket, not with --feed)\n"
          "  --feed ENTERPRISE    after login, feed.subscribe to the enterprise\n"
          "  --feed-hz HZ         max_hz of that feed (default 10)\n"
          "  --hold SECONDS       idle time once everything settled (default 10)\n"
          "  --timeout SECONDS    hard limit for the whole run (default 120)\n"
          "  --server-pid PID     read the server's VmRSS at start and end of the hold\n"
          "  --baseline-rss KIB   server RSS before any connection; adds\n"
          "                       rss_per_conn_bytes to the report\n"
          "  -v, --verbose        libwebsockets warnings (twice: notices)\n"
          "  -h, --help           this text\n"
          "\n"
          "Exit status: 0 if every connection opened, logged in and stayed up until\n"
          "the end of the hold; 1 otherwise; 2 on bad usage.\n",
          stdout);
}

static const char *checked_string(const char *opt, const char *s)
{
    if (strlen(s) > MAX_ARG_STRING)
        cli_die_usage("%s is longer than %d characters", opt, MAX_ARG_STRING);
    return s;
}

/* Accepts only loopback targets and fills cfg->address / cfg->ipv6. */
static void resolve_loopback(struct load_config *cfg)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (!strcmp(cfg->host, "localhost")) {
        snprintf(cfg->address, sizeof(cfg->address), "127.0.0.1");
        return;
    }
    if (inet_pton(AF_INET, cfg->host, &a4) == 1) {
        if ((ntohl(a4.s_addr) >> 24) != 127)
            cli_die_usage("refusing non-loopback target %s", cfg->host);
        snprintf(cfg->address, sizeof(cfg->address), "%s", cfg->host);
        return;
    }
    if (inet_pton(AF_INET6, cfg->host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6)) {
        snprintf(cfg->address, sizeof(cfg->address), "::1");
        cfg->ipv6 = true;
        return;
    }
    cli_die_usage("refusing non-loopback target %s (only 127.x.x.x, ::1, localhost)", cfg->host);
}

static int ephemeral_port_count(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int lo = 32768, hi = 60999;

    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }
        fclose(f);
    }
    return hi > lo ? hi - lo + 1 : 1;
}

/* Checks that every source address can be bound before forking workers. */
static void check_sources(int sources)
{
    for (int i = 0; i < sources; i++) {
        struct sockaddr_in sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int rc;

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = 0;
        inet_pton(AF_INET, load_source_names[i], &sa.sin_addr);
        rc = fd >= 0 ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
        if (rc < 0) {
            fprintf(stderr, "yjt-load: cannot bind source address %s: %s\n", load_source_names[i],
                    strerror(errno));
            exit(2);
        }
        close(fd);
    }
}

static void parse_args(int argc, char **argv, struct load_config *cfg)
{
    enum {
        OPT_HOST = 256,
        OPT_PORT,
        OPT_PATH,
        OPT_TLS,
        OPT_PROCS,
        OPT_SOURCES,
        OPT_RATE,
        OPT_INFLIGHT,
        OPT_USER,
        OPT_PASSWORD,
        OPT_TOKEN,
        OPT_NO_AUTH,
        OPT_USERS,
        OPT_PUSH_LOG,
        OPT_FEED,
        OPT_FEED_HZ,
        OPT_TOKEN_FROM_LOGIN,
        OPT_RAW_RX,
        OPT_HOLD,
        OPT_TIMEOUT,
        OPT_SERVER_PID,
        OPT_BASELINE_RSS,
    };
    static const struct option options[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"path", required_argument, NULL, OPT_PATH},
        {"tls", no_argument, NULL, OPT_TLS},
        {"conns", required_argument, NULL, 'n'},
        {"procs", required_argument, NULL, OPT_PROCS},
        {"sources", required_argument, NULL, OPT_SOURCES},
        {"rate", required_argument, NULL, OPT_RATE},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"user", required_argument, NULL, OPT_USER},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"no-auth", no_argument, NULL, OPT_NO_AUTH},
        {"users", required_argument, NULL, OPT_USERS},
        {"push-log", required_argument, NULL, OPT_PUSH_LOG},
        {"feed", required_argument, NULL, OPT_FEED},
        {"feed-hz", required_argument, NULL, OPT_FEED_HZ},
        {"token-from-login", no_argument, NULL, OPT_TOKEN_FROM_LOGIN},
        {"raw-rx", no_argument, NULL, OPT_RAW_RX},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"baseline-rss", required_argument, NULL, OPT_BASELINE_RSS},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->path = "/ws";
    cfg->conns = 100;
    cfg->procs = 0;
    cfg->sources = -1;
    cfg->inflight = 256;
    cfg->hold_s = 10;
    cfg->timeout_s = 120;
    cfg->baseline_rss_kib = -1;

    while ((opt = getopt_long(argc, argv, "n:vh", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST:
            cfg->host = checked_string("--host", optarg);
            break;
        case OPT_PORT:
            if (cfg->nports == MAX_PORTS)
                cli_die_usage("at most %d --port", MAX_PORTS);
            cfg->ports[cfg->nports++] = (int)cli_number("--port", optarg, 1, 65535);
            cfg->port = cfg->ports[0];
            break;
        case OPT_PATH:
            cfg->path = checked_string("--path", optarg);
            if (cfg->path[0] != '/')
                cli_die_usage("--path must start with /");
            break;
        case OPT_TLS:
            cfg->tls = true;
            break;
        case 'n':
            cfg->conns = (int)cli_number("--conns", optarg, 1, MAX_PROCS * MAX_CONNS_PER_PROC);
            break;
        case OPT_PROCS:
            cfg->procs = (int)cli_number("--procs", optarg, 1, MAX_PROCS);
            break;
        case OPT_SOURCES:
            cfg->sources = (int)cli_number("--sources", optarg, 0, MAX_SOURCES);
            break;
        case OPT_RATE:
            cfg->rate = cli_number("--rate", optarg, 0, 1e7);
            break;
        case OPT_INFLIGHT:
            cfg->inflight = (int)cli_number("--inflight", optarg, 1, MAX_CONNS_PER_PROC);
            break;
        case OPT_USER:
            cfg->user = checked_string("--user", optarg);
            break;
        case OPT_USERS:
            cfg->users = (int)cli_number("--users", optarg, 1, 10000000);
            break;
        case OPT_PUSH_LOG:
            cfg->push_log = checked_string("--push-log", optarg);
            break;
        case OPT_RAW_RX:
            cfg->raw_rx = true;
            break;
        case OPT_FEED:
            cfg->feed = checked_string("--feed", optarg);
            break;
        case OPT_FEED_HZ:
            cfg->feed_hz = cli_number("--feed-hz", optarg, 1, 100);
            break;
        case OPT_PASSWORD:
            cfg->password = checked_string("--password", optarg);
            break;
        case OPT_TOKEN:
            cfg->token = checked_string("--token", optarg);
            break;
        case OPT_NO_AUTH:
            cfg->no_auth = true;
            break;
        case OPT_TOKEN_FROM_LOGIN:
            cfg->token_from_login = true;
            break;
        case OPT_HOLD:
            cfg->hold_s = cli_number("--hold", optarg, 0, 86400);
            break;
        case OPT_TIMEOUT:
            cfg->timeout_s = cli_number("--timeout", optarg, 1, 86400);
            break;
        case OPT_SERVER_PID:
            cfg->server_pid = (long)cli_number("--server-pid", optarg, 1, 1e9);
            break;
        case OPT_BASELINE_RSS:
            cfg->baseline_rss_kib = (long long)cli_number("--baseline-rss", optarg, 0, 1e12);
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
    resolve_loopback(cfg);

    if (cfg->no_auth && (cfg->token || cfg->user || cfg->password))
        cli_die_usage("--no-auth excludes --user/--password/--token");
    if (cfg->token && (cfg->user || cfg->password))
        cli_die_usage("use either --token or --user/--password");
    if (!cfg->no_auth && !cfg->token && (!cfg->user || !cfg->password))
        cli_die_usage("give --user and --password, or --token, or --no-auth");
    if (cfg->raw_rx && (cfg->tls || cfg->feed || cfg->no_auth))
        cli_die_usage("--raw-rx reads plain WebSocket connections that log in, without --feed");
    if (cfg->token_from_login && (!cfg->user || !cfg->password || cfg->token))
        cli_die_usage("--token-from-login needs --user and --password and excludes --token");
}

/* Works out process and source counts and checks them against the limits. */
static void plan_layout(struct load_config *cfg, rlim_t nofile)
{
    long per_proc_limit = MAX_CONNS_PER_PROC;
    int ports = ephemeral_port_count();
    long per_source = (long)ports * 9 / 10;

    if ((long)nofile - FD_HEADROOM < per_proc_limit)
        per_proc_limit = (long)nofile - FD_HEADROOM;
    if (cfg->raw_rx) /* a second descriptor per connection: rawrx.c */
        per_proc_limit /= 2;
    if (per_proc_limit < 1)
        cli_die_usage("open file limit %lu is too low", (unsigned long)nofile);

    if (!cfg->procs)
        cfg->procs = (int)((cfg->conns + per_proc_limit - 1) / per_proc_limit);
    if (cfg->procs > cfg->conns)
        cfg->procs = cfg->conns;
    if (cfg->procs > MAX_PROCS)
        cli_die_usage("%d connections would need more than %d processes", cfg->conns, MAX_PROCS);
    if ((cfg->conns + cfg->procs - 1) / cfg->procs > per_proc_limit)
        cli_die_usage("%d connections over %d processes exceeds %ld per process (open file "
                      "limit %lu); use --procs %ld or more",
                      cfg->conns, cfg->procs, per_proc_limit, (unsigned long)nofile,
                      (cfg->conns + per_proc_limit - 1) / per_proc_limit);

    if (cfg->ipv6) {
        if (cfg->sources > 0)
            cli_die_usage("--sources uses 127.0.0.x addresses and cannot reach ::1");
        cfg->sources = 0;
    } else if (cfg->sources < 0) {
        cfg->sources = (int)((cfg->conns + per_source - 1) / per_source);
        if (cfg->sources > MAX_SOURCES)
            cli_die_usage("too many connections for %d source addresses", MAX_SOURCES);
    }
    if (cfg->sources == 0 && cfg->conns > per_source)
        fprintf(stderr,
                "yjt-load: warning: %d connections from one source address may run out "
                "of the %d ephemeral ports\n",
                cfg->conns, ports);
    if (cfg->sources > 0 && (cfg->conns + cfg->sources - 1) / cfg->sources > per_source)
        fprintf(stderr,
                "yjt-load: warning: %d connections per source address may run out of the "
                "%d ephemeral ports; use more --sources\n",
                (cfg->conns + cfg->sources - 1) / cfg->sources, ports);
    for (int i = 0; i < cfg->sources; i++)
        snprintf(load_source_names[i], sizeof(load_source_names[i]), "127.0.0.%d", i + 2);
}

/* What every worker process is started with (cli_fork_workers). */
struct worker_args {
    const struct load_config *cfg;
    uint64_t connect_deadline, final_deadline;
};

static int run_worker(void *ud, int proc, int first, int count, int up_fd, int down_fd)
{
    const struct worker_args *wa = ud;
    return load_run_worker(wa->cfg, proc, first, count, wa->connect_deadline, wa->final_deadline,
                           up_fd, down_fd);
}

int main(int argc, char **argv)
{
    struct load_config cfg;
    struct load_child kids[MAX_PROCS];
    rlim_t nofile;
    uint64_t t0, hard_deadline, connect_deadline, final_deadline, latest_hold_end, reserve;
    uint64_t hold_end = 0, hold_start = 0;
    long long rss_before = -1, rss_after = -1;
    enum { PP_CONNECT, PP_HOLD, PP_CLOSE } phase = PP_CONNECT;
    bool killed = false, hold_truncated = false;
    char *fetched_token = NULL;
    struct load_outcome outcome;
    bool ok;

    cli_prog = "yjt-load";
    parse_args(argc, argv, &cfg);
    nofile = cli_raise_nofile();
    plan_layout(&cfg, nofile);
    check_sources(cfg.sources);

    cli_catch_signals();

    t0 = load_mono_ns();
    hard_deadline = t0 + (uint64_t)(cfg.timeout_s * 1e9);
    if (cfg.token_from_login) {
        uint64_t budget = (uint64_t)(cfg.timeout_s * 1e9) / 4;
        fetched_token = fetch_token(&cfg, t0 + (budget < 30 * NS_PER_S ? budget : 30 * NS_PER_S));
        if (!fetched_token)
            return 1;
        cfg.token = fetched_token;
    }
    /*
     * Time budget: connecting may take until connect_deadline, the hold may
     * last until latest_hold_end, the workers' clean close must be over by
     * final_deadline, and at hard_deadline whatever is left is killed.
     */
    reserve = (uint64_t)(cfg.timeout_s * 1e9) / 4;
    if (reserve > CLOSE_GRACE_NS + 3 * NS_PER_S)
        reserve = CLOSE_GRACE_NS + 3 * NS_PER_S;
    connect_deadline = hard_deadline - reserve;
    latest_hold_end = hard_deadline - reserve / 2;
    final_deadline = hard_deadline - reserve / 8;

    struct worker_args wa = {&cfg, connect_deadline, final_deadline};
    if (cli_fork_workers(kids, cfg.procs, cfg.conns, run_worker, &wa) < 0)
        return 1;

    for (;;) {
        struct pollfd pfd[MAX_PROCS];
        int map[MAX_PROCS], npfd = 0, all_settled = 1, alive = 0, ready_now = 0;
        uint64_t now = load_mono_ns(), wake;
        int timeout_ms;

        for (int p = 0; p < cfg.procs; p++) {
            if (!kids[p].settled)
                all_settled = 0;
            ready_now += kids[p].ready_at_settle;
            if (!kids[p].eof) {
                alive++;
                pfd[npfd].fd = kids[p].up_fd;
                pfd[npfd].events = POLLIN;
                map[npfd++] = p;
            }
        }
        if (!alive)
            break;
        if (now >= hard_deadline) {
            for (int p = 0; p < cfg.procs; p++)
                if (!kids[p].eof)
                    kill(kids[p].pid, SIGKILL);
            killed = true;
            fprintf(stderr, "yjt-load: --timeout reached, workers killed\n");
            break;
        }
        if (phase == PP_CONNECT && (all_settled || cli_interrupted)) {
            double hold_s = cfg.hold_s;
            hold_start = now;
            rss_before = load_read_rss_kib(cfg.server_pid);
            hold_end = now + (uint64_t)(hold_s * 1e9);
            if (cli_interrupted || ready_now == 0) {
                hold_end = now; /* nothing to hold */
            } else if (hold_end > latest_hold_end) {
                hold_end = latest_hold_end > now ? latest_hold_end : now;
                hold_truncated = true;
            }
            phase = PP_HOLD;
            fprintf(stderr, "yjt-load: all workers settled after %.2fs, holding %.1fs\n",
                    (double)(now - t0) / 1e9, (double)(hold_end - now) / 1e9);
        }
        if (phase == PP_HOLD && (now >= hold_end || cli_interrupted)) {
            rss_after = load_read_rss_kib(cfg.server_pid);
            hold_end = now;
            tell_children_to_close(kids, cfg.procs);
            phase = PP_CLOSE;
        }

        wake = hard_deadline;
        if (phase == PP_HOLD && hold_end < wake)
            wake = hold_end;
        timeout_ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
        if (timeout_ms > 250)
            timeout_ms = 250;
        if (poll(pfd, (nfds_t)npfd, timeout_ms) < 0) {
            if (errno == EINTR)
                continue;
            perror("yjt-load: poll");
            break;
        }
        for (int i = 0; i < npfd; i++)
            if (pfd[i].revents)
                load_child_read(&kids[map[i]]);
    }
    if (phase != PP_CLOSE)
        tell_children_to_close(kids, cfg.procs);
    for (int p = 0; p < cfg.procs; p++)
        waitpid(kids[p].pid, NULL, 0);

    outcome.hold_start = hold_start;
    outcome.hold_end = hold_end;
    outcome.rss_before = rss_before;
    outcome.rss_after = rss_after;
    outcome.killed = killed;
    outcome.interrupted = cli_interrupted;
    outcome.hold_truncated = hold_truncated;
    ok = load_report(&cfg, kids, &outcome);

    for (int p = 0; p < cfg.procs; p++) {
        json_decref(kids[p].report);
        free(kids[p].buf);
    }
    free(fetched_token);
    return ok ? 0 : 1;
}
