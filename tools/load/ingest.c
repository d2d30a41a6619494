/*
 * yjt-ingest: the readings ingestion benchmark for yjtd.
 *
 * It posts batches of readings to POST /api/v1/readings with a gateway API
 * key, over several keep-alive HTTP/1.1 connections (one thread each,
 * blocking sockets: the server is one event loop, so a handful of
 * connections keeps it busy), for sensors PREFIX000000 .. PREFIX<N-1>
 * (zero-padded to six digits) that the caller has configured. Connection c
 * of C walks the sensors i with i % C == c in turn, 1,000 (--batch) per
 * request; every full pass over its sensors advances the readings' ts by
 * one millisecond, so each reading is its sensor's new latest (the
 * expensive path: history plus latest upsert plus listeners).
 *
 * Every second the main thread samples the readings accepted so far (as
 * counted from each reply's "accepted") and after --warmup seconds keeps
 * --seconds samples; it prints one JSON line with the median, min and max
 * per-second rate, the totals, rejected rows and failed requests, and the
 * batch latency percentiles. Exit 1 if any request failed or any row was
 * rejected.
 *
 *   yjt-ingest --port 8080 --key yjk_... --sensors 440000 [--prefix s]
 *              [--conns 4] [--batch 1000] [--warmup 2] [--seconds 10]
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_SECONDS 600
#define ROW_MAX 96
#define LAT_MAX 1000000

struct opts {
    const char *host;
    int port;
    const char *key;
    const char *prefix;
    long sensors;
    int conns;
    int batch;
    int warmup;
    int seconds;
};

static struct opts o = {"127.0.0.1", 8080, NULL, "s", 440000, 4, 1000, 2, 10};
static atomic_long accepted, rejected, failed, requests;
static atomic_bool stop;
static int64_t t0_ms;

/* Batch latencies (ms), shared by the threads. */
static pthread_mutex_t lat_mu = PTHREAD_MUTEX_INITIALIZER;
static double *lat;
static size_t n_lat;
static atomic_bool measuring;

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    if (inet_pton(AF_INET, o.host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads one response (headers + Content-Length body) into buf; returns
 * the status, or -1. *body points at the body within buf. */
static int read_response(int fd, char *buf, size_t cap, char **body)
{
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have + 1 >= cap)
            return -1;
        ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "content-length:");
    size_t len = cl && cl < end ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    size_t head = (size_t)(end + 4 - buf);
    if (head + len + 1 > cap)
        return -1;
    while (have < head + len) {
        ssize_t r = recv(fd, buf + have, head + len - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    buf[head + len] = '\0';
    *body = buf + head;
    return status;
}

static long field(const char *body, const char *name)
{
    const char *p = strstr(body, name);
    return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

/* One connection: builds and posts batches until told to stop. */
static void *conn_main(void *arg)
{
    int c = (int)(intptr_t)arg;
    size_t body_cap = (size_t)o.batch * ROW_MAX + 64;
    size_t req_cap = body_cap + 512;
    char *body = malloc(body_cap), *req = malloc(req_cap), *resp = malloc(65536);
    long mine = (o.sensors - c + o.conns - 1) / o.conns; /* sensors of this connection */
    long next = 0, pass = 0;
    int fd = -1;
    while (!atomic_load(&stop) && mine > 0) {
        size_t n = (size_t)snprintf(body, body_cap, "{\"readings\":[");
        for (int i = 0; i < o.batch; i++) {
            long sensor = c + next * o.conns;
            n += (size_t)snprintf(body + n, body_cap - n,
                                  "%s{\"sensor\":\"%s%06ld\",\"value\":%ld.%02ld,\"ts\":%lld}",
                                  i ? "," : "", o.prefix, sensor, (sensor + pass) % 100,
                                  (sensor * 7 + pass) % 100, (long long)(t0_ms + pass));
            if (++next == mine) {
                next = 0;
                pass++;
            }
        }
        n += (size_t)snprintf(body + n, body_cap - n, "]}");
        size_t rn = (size_t)snprintf(req, req_cap,
                                     "POST /api/v1/readings HTTP/1.1\r\nHost: %s\r\n"
                                     "X-Api-Key: %s\r\nContent-Type: application/json\r\n"
                                     "Content-Length: %zu\r\n\r\n",
                                     o.host, o.key, n);
        memcpy(req + rn, body, n);
        rn += n;
        if (fd < 0 && (fd = dial()) < 0) {
            atomic_fetch_add(&failed, 1);
            sleep(1);
            continue;
        }
        double t = mono_s();
        char *rb = NULL;
        int status = send_all(fd, req, rn) ? read_response(fd, resp, 65536, &rb) : -1;
        double dt = mono_s() - t;
        atomic_fetch_add(&requests, 1);
        if (status != 200) {
            if (status > 0 && rb)
                fprintf(stderr, "yjt-ingest: HTTP %d: %.300s\n", status, rb);
            atomic_fetch_add(&failed, 1);
            close(fd);
            fd = -1;
            continue;
        }
        atomic_fetch_add(&accepted, field(rb, "\"accepted\":"));
        atomic_fetch_add(&rejected, field(rb, "\"rejected\":"));
        if (atomic_load(&measuring)) {
            pthread_mutex_lock(&lat_mu);
            if (n_lat < LAT_MAX)
                lat[n_lat++] = dt * 1000;
            pthread_mutex_unlock(&lat_mu);
        }
    }
    if (fd >= 0)
        close(fd);
    free(body);
    free(req);
    free(resp);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    return n ? v[(size_t)(p * (double)(n - 1))] : 0;
}

static int usage(void)
{
    fputs("usage: yjt-ingest --key KEY [--host 127.0.0.1] [--port 8080] [--sensors 440000]\n"
          "                  [--prefix s] [--conns 4] [--batch 1000] [--warmup 2] [--seconds 10]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--host"))
            o.host = v;
        else if (!strcmp(k, "--port"))
            o.port = atoi(v);
        else if (!strcmp(k, "--key"))
            o.key = v;
        else if (!strcmp(k, "--prefix"))
            o.prefix = v;
        else if (!strcmp(k, "--sensors"))
            o.sensors = atol(v);
        else if (!strcmp(k, "--conns"))
            o.conns = atoi(v);
        else if (!strcmp(k, "--batch"))
            o.batch = atoi(v);
        else if (!strcmp(k, "--warmup"))
            o.warmup = atoi(v);
        else if (!strcmp(k, "--seconds"))
            o.seconds = atoi(v);
        else
            return usage();
    }
    if (!o.key || o.conns < 1 || o.conns > MAX_CONNS || o.batch < 1 || o.batch > 100000 ||
        o.sensors < 1 || o.sensors > 9999999 || o.seconds < 1 || o.seconds > MAX_SECONDS ||
        o.warmup < 0 || strlen(o.prefix) > 32 || strcmp(o.host, "127.0.0.1") != 0)
        return usage(); /* loopback only */
    lat = malloc(sizeof(double) * LAT_MAX);
    t0_ms = now_ms() - 1000;
    pthread_t th[MAX_CONNS];
    for (int c = 0; c < o.conns; c++)
        pthread_create(&th[c], NULL, conn_main, (void *)(intptr_t)c);
    double rates[MAX_SECONDS];
    int n_rates = 0;
    long last = 0;
    struct timespec tick = {1, 0};
    for (int s = 0; s < o.warmup + o.seconds; s++) {
        if (s == o.warmup) {
            last = atomic_load(&accepted);
            atomic_store(&measuring, true);
        }
        nanosleep(&tick, NULL);
        long now = atomic_load(&accepted);
        if (s >= o.warmup)
            rates[n_rates++] = (double)(now - last);
        last = now;
    }
    atomic_store(&stop, true);
    for (int c = 0; c < o.conns; c++)
        pthread_join(th[c], NULL);
    double sorted[MAX_SECONDS];
    memcpy(sorted, rates, sizeof(double) * (size_t)n_rates);
    qsort(sorted, (size_t)n_rates, sizeof(double), cmp_double);
    qsort(lat, n_lat, sizeof(double), cmp_double);
    printf("{\"readings_per_s_median\":%.0f,\"readings_per_s_min\":%.0f,"
           "\"readings_per_s_max\":%.0f,\"seconds\":%d,\"conns\":%d,\"batch\":%d,"
           "\"sensors\":%ld,\"accepted\":%ld,\"rejected\":%ld,\"requests\":%ld,\"failed\":%ld,"
           "\"batch_ms_p50\":%.2f,\"batch_ms_p99\":%.2f,\"per_second\":[",
           pct(sorted, (size_t)n_rates, 0.5), sorted[0], sorted[n_rates - 1], o.seconds, o.conns,
           o.batch, o.sensors, atomic_load(&accepted), atomic_load(&rejected),
           atomic_load(&requests), atomic_load(&failed), pct(lat, n_lat, 0.5),
           pct(lat, n_lat, 0.99));
    for (int i = 0; i < n_rates; i++)
        printf("%s%.0f", i ? "," : "", rates[i]);
    printf("]}\n");
    free(lat);
    return atomic_load(&failed) || atomic_load(&rejected) ? 1 : 0;
}
