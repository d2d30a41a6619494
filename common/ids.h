/* Random ids and URL-safe base64, built on OpenSSL's CSPRNG and GLib's
 * base64 so nothing here is hand-rolled. */
#ifndef YJT_IDS_H
#define YJT_IDS_H

#include <stddef.h>

/* Returns a new id: prefix followed by 20 lowercase hex characters from the
 * CSPRNG. The caller frees it with g_free(). */
char *id_new(const char *prefix);
/* Like id_new(), but the 20 characters are the time in milliseconds (12
 * hex digits) then 8 from the CSPRNG, rising within the process: records
 * made one after another then sit next to each other in the store's
 * B-trees, so a batch of new records dirties few pages instead of one
 * each. For record ids, which are not secrets; never for tokens. */
char *id_new_sorted(const char *prefix);
/* Fills buf with n random bytes; returns 0, or -1 if the CSPRNG failed. */
int id_random_bytes(unsigned char *buf, size_t n);
/* URL-safe base64 without padding. The caller frees with g_free(). */
char *b64url_encode(const unsigned char *data, size_t len);
/* Decodes URL-safe base64 (padding optional). Returns NULL on bad input;
 * *out_len gets the decoded length. The caller frees with g_free(). */
unsigned char *b64url_decode(const char *text, size_t *out_len);

#endif
