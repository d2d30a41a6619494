/* yjt-srtp-bench: what sealing one forwarded packet costs, with libsrtp2's
 * own ciphers (NSS on Debian) and with yjt's OpenSSL ones (media/srtp_ossl.c),
 * in one process.
 *
 * Sessions of each kind are made (the stock ones before the replacements
 * are installed, so they keep libsrtp2's own), then rounds alternate
 * between the two: each round protects PACKETS RTP packets of SIZE bytes
 * with every profile. Prints, per profile and kind, the median of the
 * rounds in nanoseconds per packet, and their ratio.
 *
 *   yjt-srtp-bench [--packets N] [--size BYTES] [--rounds R]
 */
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "media/srtp.h"
#include "media/srtp_ossl.h"

enum { N_PROFILES = 3, MAX_ROUNDS = 99 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct media_srtp *session(enum media_srtp_profile p)
{
    struct media_srtp_keys k;
    memset(&k, 0, sizeof(k));
    media_srtp_profile_info(p, NULL, &k.key_len, &k.salt_len);
    k.profile = p;
    for (size_t i = 0; i < MEDIA_SRTP_KEY_MAX; i++)
        k.local_key[i] = k.remote_key[i] = (uint8_t)(i * 11 + 1);
    for (size_t i = 0; i < MEDIA_SRTP_SALT_MAX; i++)
        k.local_salt[i] = k.remote_salt[i] = (uint8_t)(i * 5 + 2);
    return media_srtp_new(&k);
}

/* ns per packet over n packets; seq continues from *seq. */
static double round_ns(struct media_srtp *s, int n, size_t size, uint16_t *seq)
{
    uint8_t buf[2048];
    double t0 = now();
    for (int i = 0; i < n; i++) {
        memset(buf, 0x5a, size);
        buf[0] = 0x80, buf[1] = 96;
        buf[2] = (uint8_t)(*seq >> 8), buf[3] = (uint8_t)*seq;
        buf[8] = 0x12, buf[9] = 0x34, buf[10] = 0x56, buf[11] = 0x78;
        (*seq)++;
        size_t len = size;
        if (media_srtp_protect(s, buf, &len, sizeof(buf)) != 0) {
            fprintf(stderr, "protect failed\n");
            exit(1);
        }
    }
    return (now() - t0) * 1e9 / n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int packets = 100000, rounds = 7;
    size_t size = 1200;
    cli_prog = "yjt-srtp-bench";
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 == argc)
            cli_die_usage("%s needs a value", argv[i]);
        if (!strcmp(argv[i], "--packets"))
            packets = (int)cli_number("--packets", argv[i + 1], 1, 100000000);
        else if (!strcmp(argv[i], "--size"))
            size = (size_t)cli_number("--size", argv[i + 1], 12, 2048 - MEDIA_SRTP_OVERHEAD);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = (int)cli_number("--rounds", argv[i + 1], 1, MAX_ROUNDS);
        else
            cli_die_usage("unknown option %s (--packets N, --size 12..%d, --rounds 1..%d)", argv[i],
                          2048 - MEDIA_SRTP_OVERHEAD, MAX_ROUNDS);
    }
    if (srtp_init() != srtp_err_status_ok)
        return 1;
    struct media_srtp *stock[N_PROFILES], *ours[N_PROFILES];
    for (int p = 0; p < N_PROFILES; p++)
        stock[p] = session((enum media_srtp_profile)p);
    if (srtp_ossl_install() != 0) {
        fprintf(stderr, "the OpenSSL implementations failed their self-test\n");
        return 1;
    }
    for (int p = 0; p < N_PROFILES; p++)
        ours[p] = session((enum media_srtp_profile)p);

    static double t[N_PROFILES][2][MAX_ROUNDS];
    uint16_t seq[N_PROFILES][2] = {{0}};
    for (int r = 0; r < rounds; r++)
        for (int p = 0; p < N_PROFILES; p++) {
            t[p][0][r] = round_ns(stock[p], packets, size, &seq[p][0]);
            t[p][1][r] = round_ns(ours[p], packets, size, &seq[p][1]);
        }
    printf("%zu-byte RTP packets, %d per round, median of %d rounds (ns per packet)\n", size,
           packets, rounds);
    printf("%-24s %12s %12s %8s\n", "profile", "libsrtp2", "OpenSSL", "ratio");
    for (int p = 0; p < N_PROFILES; p++) {
        const char *name;
        media_srtp_profile_info((enum media_srtp_profile)p, &name, NULL, NULL);
        double a = median(t[p][0], rounds), b = median(t[p][1], rounds);
        printf("%-24s %12.0f %12.0f %8.2f\n", name, a, b, b / a);
        media_srtp_free(stock[p]);
        media_srtp_free(ours[p]);
    }
    srtp_shutdown();
    return 0;
}
