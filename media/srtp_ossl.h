/* SRTP's ciphers and its HMAC on OpenSSL, under libsrtp2.
 *
 * Debian builds libsrtp2 on NSS: every packet it protects opens and
 * closes a PKCS#11 context, which costs more than the encryption itself.
 * libsrtp2 lets a program replace the implementation behind a cipher or
 * authentication id (srtp_replace_cipher_type/auth_type) while it keeps the
 * SRTP processing (key derivation, indexes, replay windows, packet layout).
 * These implementations keep one OpenSSL context per session key, with
 * its key schedule made once, so a packet costs one IV and the cipher
 * pass.
 *
 * Replaced: AES-ICM 128 and 256 (SRTP_AES128_CM_SHA1_80's cipher, and the
 * key derivation of every profile), AES-GCM 128 and 256 (the AEAD
 * profiles) and HMAC-SHA1. libsrtp2 runs each replacement's known-answer
 * tests before it takes it; one that fails leaves libsrtp2's own in place.
 * Sessions made before keep the implementation they were made with. */
#ifndef YJT_MEDIA_SRTP_OSSL_H
#define YJT_MEDIA_SRTP_OSSL_H

/* After srtp_init(). 0 when all were replaced, -1 when any was not (those
 * keep libsrtp2's own). */
int srtp_ossl_install(void);

/* Instances (ciphers and MACs) allocated and not yet freed. */
int srtp_ossl_live(void);

#endif
