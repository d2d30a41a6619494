/* Static files for the duty console.
 *
 * yjtd serves the directory web_root at "/" so that a browser needs
 * nothing but the server it already talks to. The files are small plain
 * ES modules, HTML and CSS, read whole on each request (the console loads
 * a few dozen of them once), bounded by STATIC_MAX_FILE.
 *
 * A request path is trusted for nothing: it must be made of plain
 * segments (letters, digits, "-", "_", "." and "/"), no segment may
 * start with "." (so neither ".." nor hidden files), and the resolved
 * file must still lie inside the served directory after symlinks are
 * followed. Only regular files with a known extension are served, each
 * with its content type; everything else is not found. */
#include "server/static_files.h"

#include "common/log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *root; /* realpath of the served directory, or NULL */

struct ctype {
    const char *ext;
    const char *type;
};

static const struct ctype ctypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".ico", "image/x-icon"},
    {".webmanifest", "application/manifest+json"},
};

/* The directory the running binary lives in (newly allocated), or NULL. */
static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return g_path_get_dirname(buf);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void static_init(const char *web_root)
{
    static_shutdown();
    char *chosen = NULL;
    if (web_root && web_root[0]) {
        chosen = g_strdup(web_root);
    } else {
        char *dir = exe_dir();
        const char *rel[] = {"../web", "../share/yjt/web", "../../web"};
        for (size_t i = 0; dir && i < G_N_ELEMENTS(rel) && !chosen; i++) {
            char *cand = g_build_filename(dir, rel[i], NULL);
            char *index = g_build_filename(cand, "index.html", NULL);
            if (g_file_test(index, G_FILE_TEST_IS_REGULAR))
                chosen = g_steal_pointer(&cand);
            g_free(index);
            g_free(cand);
        }
        g_free(dir);
    }
    if (!chosen) {
        log_info("static", "no web_root found: the console is not served");
        return;
    }
    char *real = realpath(chosen, NULL);
    if (!real || !is_dir(real)) {
        log_warn("static", "web_root %s is not a directory (%s): the console is not served", chosen,
                 real ? "not a directory" : g_strerror(errno));
        free(real);
        g_free(chosen);
        return;
    }
    root = g_strdup(real);
    free(real);
    g_free(chosen);
    log_info("static", "serving the console from %s", root);
}

void static_shutdown(void)
{
    g_clear_pointer(&root, g_free);
}

const char *static_root(void)
{
    return root;
}

/* True when path is "/" followed by plain segments, none starting with a
 * dot, none empty. */
static bool path_is_plain(const char *path)
{
    if (path[0] != '/')
        return false;
    bool seg_start = true;
    for (const char *p = path + 1; *p; p++) {
        char c = *p;
        if (c == '/') {
            if (seg_start)
                return false; /* "//" */
            seg_start = true;
            continue;
        }
        if (seg_start && c == '.')
            return false;
        seg_start = false;
        if (!g_ascii_isalnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/'))
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(ctypes); i++)
        if (g_ascii_strcasecmp(dot, ctypes[i].ext) == 0)
            return ctypes[i].type;
    return NULL;
}

enum static_result static_lookup(const char *path, struct static_file *f)
{
    memset(f, 0, sizeof(*f));
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    if (!path_is_plain(path))
        return STATIC_REFUSED;
    if (!root)
        return STATIC_NOT_FOUND;
    const char *t = type_of(path);
    if (!t)
        return STATIC_NOT_FOUND;
    char *full = g_strconcat(root, path, NULL);
    char *real = realpath(full, NULL);
    g_free(full);
    if (!real)
        return STATIC_NOT_FOUND;
    size_t rl = strlen(root);
    enum static_result res = STATIC_NOT_FOUND;
    struct stat st;
    if (strncmp(real, root, rl) != 0 || real[rl] != '/') {
        log_warn("static", "refusing %s: it resolves outside web_root", path);
        res = STATIC_REFUSED;
        goto out;
    }
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_FILE)
        goto out;
    gchar *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(real, &data, &len, NULL) || len > STATIC_MAX_FILE) {
        g_free(data);
        goto out;
    }
    f->body = g_bytes_new_take(data, len);
    f->type = t;
    /* The files carry no version in their names: a browser may keep them
     * but must check with the server (If-None-Match) before using them
     * again. */
    f->cache = "no-cache";
    g_snprintf(f->etag, sizeof(f->etag), "\"%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x\"",
               (gint64)len, (gint64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    res = STATIC_OK;
out:
    free(real);
    return res;
}
