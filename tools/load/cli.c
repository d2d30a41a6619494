/*
 * cli.c: the command-line and process plumbing yjt-load and yjt-callbench
 * share (see cli.h): both parse options the same way, run as a parent that
 * forks worker processes talking to it over a pair of pipes each, and stop
 * cleanly on SIGINT/SIGTERM.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "cli.h"
#include "load.h" /* struct load_child */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_prog = "yjt-load";
volatile sig_atomic_t cli_interrupted;

void cli_die_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

double cli_number(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        cli_die_usage("bad value for %s: '%s'", opt, s);
    return v;
}

rlim_t cli_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;

    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_fork_workers(struct load_child *kids, int procs, int total,
                     int (*run)(void *ud, int proc, int first, int count, int up_fd, int down_fd),
                     void *ud)
{
    int first = 0;

    fflush(stdout);
    fflush(stderr);
    memset(kids, 0, sizeof(*kids) * (size_t)procs);
    for (int p = 0; p < procs; p++) {
        int up[2], down[2];
        int count = total / procs + (p < total % procs ? 1 : 0);
        pid_t pid;

        if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
            fprintf(stderr, "%s: pipe: %s\n", cli_prog, strerror(errno));
            return -1;
        }
        pid = fork();
        if (pid < 0) {
            fprintf(stderr, "%s: fork: %s\n", cli_prog, strerror(errno));
            return -1;
        }
        if (pid == 0) {
            signal(SIGINT, SIG_IGN);
            signal(SIGTERM, SIG_DFL);
            for (int q = 0; q < p; q++) {
                close(kids[q].up_fd);
                close(kids[q].down_fd);
            }
            close(up[0]);
            close(down[1]);
            fcntl(down[0], F_SETFL, fcntl(down[0], F_GETFL) | O_NONBLOCK);
            _exit(run(ud, p, first, count, up[1], down[0]));
        }
        close(up[1]);
        close(down[0]);
        kids[p].pid = pid;
        kids[p].up_fd = up[0];
        kids[p].down_fd = down[1];
        first += count;
    }
    return 0;
}

void cli_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}
