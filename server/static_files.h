/* The duty console's files (web/) served over plain HTTP GET from one
 * directory, web_root. See static_files.c. */
#ifndef YJT_STATIC_FILES_H
#define YJT_STATIC_FILES_H

#include <glib.h>
#include <stdbool.h>

/* The largest file served; anything bigger is answered not_found. */
#define STATIC_MAX_FILE (4 * 1024 * 1024)

/* What static_lookup found. */
enum static_result { STATIC_OK, STATIC_NOT_FOUND, STATIC_REFUSED };

/* Resolves the directory to serve: web_root when set, else the first of
 * <dir of the binary>/../web, <dir of the binary>/../share/yjt/web,
 * <dir of the binary>/../../web that exists. Without one, nothing is
 * served (every path is not found) and the reason is logged once. */
void static_init(const char *web_root);
void static_shutdown(void);

/* The directory being served, or NULL. */
const char *static_root(void);

/* A file found: its bytes (free with g_bytes_unref), Content-Type,
 * Cache-Control value and validator (a quoted ETag made of its size and
 * modification time). */
struct static_file {
    GBytes *body;
    const char *type;
    const char *cache;
    char etag[48];
};

/* Looks up the file for a request path ("/" is "/index.html") and fills
 * *f on STATIC_OK. A path that tries to leave the directory, names a
 * hidden file or holds odd bytes is STATIC_REFUSED. */
enum static_result static_lookup(const char *path, struct static_file *f);

#endif
