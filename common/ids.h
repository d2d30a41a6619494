/* Random ids and URL-safe base64, built on OpenSSL's CSPRNG and GLib's
 * base64 so nothing here is hand-rolled. */
#ifndef YJT_IDS_H
#define YJT_IDS_H

#include <stddef.h>

/* Returns a new id: prefix followed by 20 lowercase hex characters from the
 * CSPRNG. The caller frees it with g_free(). */
char *id_new(const char *prefix);
/* Fills buf with n random bytes; returns 0, or -1 if the CSPRNG failed. */
int id_random_bytes(unsigned char *buf, size_t n);
/* URL-safe base64 without padding. The caller frees with g_free(). */
char *b64url_encode(const unsigned char *data, size_t len);
/* Decodes URL-safe base64 (padding optional). Returns NULL on bad input;
 * *out_len gets the decoded length. The caller frees with g_free(). */
unsigned char *b64url_decode(const char *text, size_t *out_len);

#endif
