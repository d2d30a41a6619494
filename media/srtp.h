/* SRTP and SRTCP for one media transport, over libsrtp2.
 *
 * A transport has two libsrtp sessions: one protects what the server sends
 * (with its own key and salt), one checks and decrypts what the peer sends
 * (with the peer's). The keys come from the DTLS handshake (dtls.h). The
 * profiles are those the server offers in the handshake, best first. */
#ifndef YJT_MEDIA_SRTP_H
#define YJT_MEDIA_SRTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum media_srtp_profile {
    MEDIA_SRTP_AEAD_AES_256_GCM,
    MEDIA_SRTP_AEAD_AES_128_GCM,
    MEDIA_SRTP_AES128_CM_SHA1_80,
};

/* The most a protected packet grows (authentication tag, SRTCP index). */
#define MEDIA_SRTP_OVERHEAD 148

#define MEDIA_SRTP_KEY_MAX 32
#define MEDIA_SRTP_SALT_MAX 14

struct media_srtp_keys {
    enum media_srtp_profile profile;
    size_t key_len, salt_len;
    uint8_t local_key[MEDIA_SRTP_KEY_MAX], local_salt[MEDIA_SRTP_SALT_MAX];
    uint8_t remote_key[MEDIA_SRTP_KEY_MAX], remote_salt[MEDIA_SRTP_SALT_MAX];
};

/* The profile's name in the DTLS use_srtp extension, and its key and salt
 * lengths; false for an unknown profile. */
bool media_srtp_profile_info(enum media_srtp_profile p, const char **name, size_t *key_len,
                             size_t *salt_len);
/* The OpenSSL profile list the server offers, best first. */
const char *media_srtp_profiles_offered(void);

/* Initialises libsrtp once per process (0, or -1), with its ciphers and
 * HMAC on OpenSSL (srtp_ossl.h). */
int media_srtp_init(void);
/* Whose ciphers protect packets: "OpenSSL", or a phrase saying some are
 * libsrtp2's own. */
const char *media_srtp_engine(void);
void media_srtp_shutdown(void);

struct media_srtp;

/* The two sessions of a transport, or NULL. */
struct media_srtp *media_srtp_new(const struct media_srtp_keys *keys);
void media_srtp_free(struct media_srtp *s);

/* In place: *len is the packet's length before and after; the buffer must
 * have room for MEDIA_SRTP_OVERHEAD more bytes (cap is its size). 0, or -1
 * (the packet is to be dropped: bad, forged, replayed, or no room). */
int media_srtp_protect(struct media_srtp *s, uint8_t *buf, size_t *len, size_t cap);
int media_srtp_unprotect(struct media_srtp *s, uint8_t *buf, size_t *len);
int media_srtp_protect_rtcp(struct media_srtp *s, uint8_t *buf, size_t *len, size_t cap);
int media_srtp_unprotect_rtcp(struct media_srtp *s, uint8_t *buf, size_t *len);

#endif
