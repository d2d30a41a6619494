/* SRTP and SRTCP over libsrtp2 (see srtp.h). */
#include "media/srtp.h"

#include "media/srtp_ossl.h"

#include <glib.h>
#include <limits.h>
#include <srtp2/srtp.h>
#include <string.h>

/* Packets received out of order by up to this many are still accepted
 * (libsrtp's replay window; its default is 128, too few for video bursts
 * reordered by a mobile network). */
#define REPLAY_WINDOW 1024

struct media_srtp {
    srtp_t out, in;
};

static const struct {
    const char *name;
    size_t key_len, salt_len;
} profiles[] = {
    [MEDIA_SRTP_AEAD_AES_256_GCM] = {"SRTP_AEAD_AES_256_GCM", 32, 12},
    [MEDIA_SRTP_AEAD_AES_128_GCM] = {"SRTP_AEAD_AES_128_GCM", 16, 12},
    [MEDIA_SRTP_AES128_CM_SHA1_80] = {"SRTP_AES128_CM_SHA1_80", 16, 14},
};

bool media_srtp_profile_info(enum media_srtp_profile p, const char **name, size_t *key_len,
                             size_t *salt_len)
{
    if ((unsigned)p >= G_N_ELEMENTS(profiles))
        return false;
    if (name)
        *name = profiles[p].name;
    if (key_len)
        *key_len = profiles[p].key_len;
    if (salt_len)
        *salt_len = profiles[p].salt_len;
    return true;
}

const char *media_srtp_profiles_offered(void)
{
    return "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";
}

static gint init_count;
static const char *engine = "none";

int media_srtp_init(void)
{
    if (g_atomic_int_add(&init_count, 1) > 0)
        return 0;
    if (srtp_init() != srtp_err_status_ok) {
        g_atomic_int_add(&init_count, -1);
        return -1;
    }
    engine = srtp_ossl_install() == 0 ? "OpenSSL"
                                      : "libsrtp2's own for some (an OpenSSL self-test failed)";
    return 0;
}

const char *media_srtp_engine(void)
{
    return engine;
}

void media_srtp_shutdown(void)
{
    if (g_atomic_int_dec_and_test(&init_count))
        srtp_shutdown();
}

/* One session: key and salt (as libsrtp wants them, concatenated), for
 * what we send (outbound) or what we receive. */
static srtp_t session(enum media_srtp_profile p, const uint8_t *key, const uint8_t *salt,
                      bool outbound)
{
    srtp_policy_t pol;
    memset(&pol, 0, sizeof(pol));
    switch (p) {
    case MEDIA_SRTP_AEAD_AES_256_GCM:
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&pol.rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&pol.rtcp);
        break;
    case MEDIA_SRTP_AEAD_AES_128_GCM:
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtcp);
        break;
    case MEDIA_SRTP_AES128_CM_SHA1_80:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtcp);
        break;
    }
    uint8_t master[MEDIA_SRTP_KEY_MAX + MEDIA_SRTP_SALT_MAX];
    memcpy(master, key, profiles[p].key_len);
    memcpy(master + profiles[p].key_len, salt, profiles[p].salt_len);
    pol.key = master;
    pol.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    pol.window_size = REPLAY_WINDOW;
    /* A NACKed packet is sent again as it was. */
    pol.allow_repeat_tx = outbound ? 1 : 0;
    srtp_t s = NULL;
    srtp_err_status_t rc = srtp_create(&s, &pol);
    memset(master, 0, sizeof(master));
    return rc == srtp_err_status_ok ? s : NULL;
}

struct media_srtp *media_srtp_new(const struct media_srtp_keys *k)
{
    size_t key_len, salt_len;
    if (!k || !media_srtp_profile_info(k->profile, NULL, &key_len, &salt_len) ||
        k->key_len != key_len || k->salt_len != salt_len)
        return NULL;
    struct media_srtp *s = g_new0(struct media_srtp, 1);
    s->out = session(k->profile, k->local_key, k->local_salt, true);
    s->in = session(k->profile, k->remote_key, k->remote_salt, false);
    if (!s->out || !s->in) {
        media_srtp_free(s);
        return NULL;
    }
    return s;
}

void media_srtp_free(struct media_srtp *s)
{
    if (!s)
        return;
    if (s->out)
        srtp_dealloc(s->out);
    if (s->in)
        srtp_dealloc(s->in);
    g_free(s);
}

typedef srtp_err_status_t (*srtp_fn)(srtp_t, void *, int *);

static int run(srtp_fn fn, srtp_t ctx, uint8_t *buf, size_t *len, size_t cap)
{
    if (*len > cap || cap - *len < MEDIA_SRTP_OVERHEAD || *len > INT_MAX - MEDIA_SRTP_OVERHEAD)
        return -1;
    int n = (int)*len;
    if (fn(ctx, buf, &n) != srtp_err_status_ok)
        return -1;
    *len = (size_t)n;
    return 0;
}

static int check(srtp_fn fn, srtp_t ctx, uint8_t *buf, size_t *len)
{
    if (*len > INT_MAX)
        return -1;
    int n = (int)*len;
    if (fn(ctx, buf, &n) != srtp_err_status_ok)
        return -1;
    *len = (size_t)n;
    return 0;
}

int media_srtp_protect(struct media_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
    return run(srtp_protect, s->out, buf, len, cap);
}

int media_srtp_unprotect(struct media_srtp *s, uint8_t *buf, size_t *len)
{
    return check(srtp_unprotect, s->in, buf, len);
}

int media_srtp_protect_rtcp(struct media_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
    return run(srtp_protect_rtcp, s->out, buf, len, cap);
}

int media_srtp_unprotect_rtcp(struct media_srtp *s, uint8_t *buf, size_t *len)
{
    return check(srtp_unprotect_rtcp, s->in, buf, len);
}
