/* libFuzzer target: SRTP and SRTCP opening of arbitrary datagrams, with
 * the OpenSSL ciphers and HMAC (media/srtp_ossl.c) under libsrtp2.
 *
 * The first byte picks the profile; the rest is opened as SRTP and as
 * SRTCP by a receiving session. Anything opened must be shorter than what
 * came in. Then the bytes, made into an RTP packet (version 2, a
 * sequence number of their own), are sealed by a sending session and
 * opened by its peer: they must come out as they went in. */
#include "media/srtp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { N_PROFILES = 3, BUF = 4096 + MEDIA_SRTP_OVERHEAD };

static struct media_srtp *rx[N_PROFILES], *tx[N_PROFILES], *peer[N_PROFILES];

static void keys(enum media_srtp_profile p, struct media_srtp_keys *a, struct media_srtp_keys *b)
{
    memset(a, 0, sizeof(*a));
    media_srtp_profile_info(p, NULL, &a->key_len, &a->salt_len);
    a->profile = p;
    for (size_t i = 0; i < MEDIA_SRTP_KEY_MAX; i++) {
        a->local_key[i] = (uint8_t)(i + 1);
        a->remote_key[i] = (uint8_t)(i * 3 + 7);
    }
    for (size_t i = 0; i < MEDIA_SRTP_SALT_MAX; i++) {
        a->local_salt[i] = (uint8_t)(0x40 + i);
        a->remote_salt[i] = (uint8_t)(0x90 - i);
    }
    *b = *a;
    memcpy(b->local_key, a->remote_key, sizeof(b->local_key));
    memcpy(b->remote_key, a->local_key, sizeof(b->remote_key));
    memcpy(b->local_salt, a->remote_salt, sizeof(b->local_salt));
    memcpy(b->remote_salt, a->local_salt, sizeof(b->remote_salt));
}

static void init(void)
{
    if (media_srtp_init() != 0)
        abort();
    for (int p = 0; p < N_PROFILES; p++) {
        struct media_srtp_keys a, b;
        keys((enum media_srtp_profile)p, &a, &b);
        rx[p] = media_srtp_new(&a);
        tx[p] = media_srtp_new(&a);
        peer[p] = media_srtp_new(&b);
        if (!rx[p] || !tx[p] || !peer[p])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static uint16_t seq[N_PROFILES]; /* each profile's sessions their own */
    if (!ready) {
        init();
        ready = 1;
    }
    if (size < 1 || size > 4096)
        return 0;
    int p = data[0] % N_PROFILES;
    data++, size--;
    static uint8_t buf[BUF], plain[BUF];

    size_t len = size;
    memcpy(buf, data, size);
    if (media_srtp_unprotect(rx[p], buf, &len) == 0 && len >= size)
        abort();
    len = size;
    memcpy(buf, data, size);
    if (media_srtp_unprotect_rtcp(rx[p], buf, &len) == 0 && len >= size)
        abort();

    if (size < 12)
        return 0;
    memcpy(plain, data, size);
    plain[0] = (uint8_t)(0x80 | (plain[0] & 0x3f)); /* version 2 */
    plain[0] &= (uint8_t)~0x20;                     /* no padding */
    seq[p]++;
    plain[2] = (uint8_t)(seq[p] >> 8), plain[3] = (uint8_t)seq[p];
    memcpy(plain + 8, "\x5e\xed\x00\x01", 4); /* one stream */
    memcpy(buf, plain, size);
    len = size;
    if (media_srtp_protect(tx[p], buf, &len, sizeof(buf)) != 0)
        return 0; /* e.g. a header extension longer than the packet */
    if (media_srtp_unprotect(peer[p], buf, &len) != 0 || len != size ||
        memcmp(buf, plain, size) != 0)
        abort();
    return 0;
}
