/* TLS to Redis through an in-process tunnel (see redis_tls.h). */
#include "records/redis_tls.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 5000
#define POLL_MS 200 /* how often a pump looks at the stop flag */
#define CHUNK 16384

struct tunnel {
    char *key; /* "host:port|ca|cert|key" */
    char *host, *ca, *cert, *keyfile;
    int port;
    char *dir, *path; /* the private directory and the socket in it */
    int listen_fd;
    SSL_CTX *ctx;
    GThread *acceptor;
    GPtrArray *pumps; /* struct pump*: those running, and those ended but not yet joined */
};

static GMutex registry_lock;
static GPtrArray *tunnels; /* struct tunnel* */
static volatile gint stopping;

struct pump {
    struct tunnel *t;
    int ufd;
    GThread *thread;
    gint ended; /* set by the pump's thread as its last act */
};

static int tcp_connect(const char *host, int port)
{
    char service[16];
    g_snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof(err);
            rc = poll(&p, 1, CONNECT_TIMEOUT_MS) == 1 &&
                         getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0
                     ? 0
                     : -1;
        }
        if (rc < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Waits until fd is ready for what the last SSL call wanted; false on
 * timeout or stop. */
static bool wait_for(int fd, int ssl_err, int ms)
{
    struct pollfd p = {fd, ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
    return !g_atomic_int_get(&stopping) && poll(&p, 1, ms) == 1;
}

/* Writes all of buf to the TLS side. */
static bool ssl_write_all(SSL *ssl, int fd, const char *buf, size_t n)
{
    while (n > 0) {
        int w = SSL_write(ssl, buf, (int)n);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
            continue;
        }
        int e = SSL_get_error(ssl, w);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
            !wait_for(fd, e, CONNECT_TIMEOUT_MS))
            return false;
    }
    return true;
}

static bool fd_write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1 || g_atomic_int_get(&stopping))
                return false;
        } else if (!(w < 0 && errno == EINTR)) {
            return false;
        }
    }
    return true;
}

/* One client connection: TLS to the server, then bytes both ways until
 * either side closes. */
static gpointer pump_main(gpointer data)
{
    struct pump *p = data;
    struct tunnel *t = p->t;
    int tfd = tcp_connect(t->host, t->port);
    SSL *ssl = tfd >= 0 ? SSL_new(t->ctx) : NULL;
    bool ok = ssl != NULL;
    if (ok) {
        SSL_set_fd(ssl, tfd);
        SSL_set_tlsext_host_name(ssl, t->host);
        SSL_set1_host(ssl, t->host);
        int rc;
        while ((rc = SSL_connect(ssl)) != 1) {
            int e = SSL_get_error(ssl, rc);
            if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
                !wait_for(tfd, e, CONNECT_TIMEOUT_MS)) {
                ok = false;
                break;
            }
        }
        if (!ok)
            log_warn("redis", "TLS handshake with %s:%d failed: %s (verify: %s)", t->host, t->port,
                     ERR_reason_error_string(ERR_peek_last_error()),
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
    } else {
        log_warn("redis", "TLS tunnel: cannot connect to %s:%d", t->host, t->port);
    }
    char *buf = g_malloc(CHUNK);
    g_unix_set_fd_nonblocking(p->ufd, TRUE, NULL);
    while (ok && !g_atomic_int_get(&stopping)) {
        struct pollfd fds[2] = {{p->ufd, POLLIN, 0}, {tfd, POLLIN, 0}};
        int n = SSL_pending(ssl) > 0 ? 1 : poll(fds, 2, POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(p->ufd, buf, CHUNK);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (r > 0 && !ssl_write_all(ssl, tfd, buf, (size_t)r))
                break;
        }
        if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) || SSL_pending(ssl) > 0) {
            int r = SSL_read(ssl, buf, CHUNK);
            if (r > 0) {
                if (!fd_write_all(p->ufd, buf, (size_t)r))
                    break;
            } else {
                int e = SSL_get_error(ssl, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    break; /* closed, or broken */
            }
        }
    }
    g_free(buf);
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (tfd >= 0)
        close(tfd);
    close(p->ufd);
    ERR_clear_error();
    OPENSSL_thread_stop();
    g_atomic_int_set(&p->ended, 1);
    return NULL;
}

/* Joins the pumps that have ended (all of them when all is set, after
 * stopping), so that a link reconnecting for hours leaves no threads. */
static void reap(struct tunnel *t, bool all)
{
    for (guint i = t->pumps->len; i-- > 0;) {
        struct pump *p = g_ptr_array_index(t->pumps, i);
        if (!all && !g_atomic_int_get(&p->ended))
            continue;
        g_thread_join(p->thread);
        g_free(p);
        g_ptr_array_remove_index_fast(t->pumps, i);
    }
}

static gpointer acceptor_main(gpointer data)
{
    struct tunnel *t = data;
    while (!g_atomic_int_get(&stopping)) {
        reap(t, false);
        struct pollfd pfd = {t->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, POLL_MS) != 1)
            continue;
        int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct pump *p = g_new0(struct pump, 1);
        p->t = t;
        p->ufd = fd;
        p->thread = g_thread_new("redis-tls", pump_main, p);
        g_ptr_array_add(t->pumps, p);
    }
    return NULL;
}

static void tunnel_free(struct tunnel *t)
{
    if (t->listen_fd >= 0)
        close(t->listen_fd);
    if (t->path)
        g_unlink(t->path);
    if (t->dir)
        g_rmdir(t->dir);
    SSL_CTX_free(t->ctx);
    if (t->pumps)
        g_ptr_array_free(t->pumps, TRUE);
    g_free(t->key);
    g_free(t->host);
    g_free(t->ca);
    g_free(t->cert);
    g_free(t->keyfile);
    g_free(t->path);
    g_free(t->dir);
    g_free(t);
}

static SSL_CTX *make_ctx(const struct tunnel *t, char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *err = g_strdup("TLS to Redis: no TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = t->ca ? SSL_CTX_load_verify_locations(ctx, t->ca, NULL)
                   : SSL_CTX_set_default_verify_paths(ctx);
    const char *what = "the CA certificates (tls_ca)";
    if (ok && t->cert) {
        what = "the client certificate or key (tls_cert, tls_key)";
        ok = SSL_CTX_use_certificate_chain_file(ctx, t->cert) == 1 &&
             SSL_CTX_use_PrivateKey_file(ctx, t->keyfile ? t->keyfile : t->cert,
                                         SSL_FILETYPE_PEM) == 1 &&
             SSL_CTX_check_private_key(ctx) == 1;
    }
    if (!ok) {
        *err = g_strdup_printf("TLS to Redis: cannot load %s", what);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    return ctx;
}

static struct tunnel *tunnel_start(const struct redis_tls_opts *o, const char *key, char **err)
{
    struct tunnel *t = g_new0(struct tunnel, 1);
    t->listen_fd = -1;
    t->key = g_strdup(key);
    t->host = g_strdup(o->host);
    t->port = o->port;
    t->ca = g_strdup(o->ca);
    t->cert = g_strdup(o->cert);
    t->keyfile = g_strdup(o->key);
    t->pumps = g_ptr_array_new();
    if (!(t->ctx = make_ctx(t, err))) {
        tunnel_free(t);
        return NULL;
    }
    /* The socket is in a directory only this user may enter. */
    t->dir = g_dir_make_tmp("yjt-redis-tls-XXXXXX", NULL);
    t->path = t->dir ? g_build_filename(t->dir, "s", NULL) : NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!t->path || strlen(t->path) >= sizeof(sa.sun_path)) {
        *err = g_strdup("TLS to Redis: no private directory for the tunnel's socket");
        tunnel_free(t);
        return NULL;
    }
    g_strlcpy(sa.sun_path, t->path, sizeof(sa.sun_path));
    t->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->listen_fd < 0 || bind(t->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(t->listen_fd, 16) != 0) {
        *err = g_strdup_printf("TLS to Redis: cannot listen on the tunnel's socket: %s",
                               g_strerror(errno));
        tunnel_free(t);
        return NULL;
    }
    t->acceptor = g_thread_new("redis-tls-accept", acceptor_main, t);
    return t;
}

int redis_tls_tunnel(const struct redis_tls_opts *o, char **path, char **err)
{
    char *key = g_strdup_printf("%s:%d|%s|%s|%s", o->host, o->port, o->ca ? o->ca : "",
                                o->cert ? o->cert : "", o->key ? o->key : "");
    g_mutex_lock(&registry_lock);
    g_atomic_int_set(&stopping, 0);
    if (!tunnels)
        tunnels = g_ptr_array_new();
    struct tunnel *t = NULL;
    for (guint i = 0; i < tunnels->len && !t; i++) {
        struct tunnel *x = g_ptr_array_index(tunnels, i);
        if (strcmp(x->key, key) == 0)
            t = x;
    }
    if (!t && (t = tunnel_start(o, key, err)) != NULL)
        g_ptr_array_add(tunnels, t);
    g_mutex_unlock(&registry_lock);
    g_free(key);
    if (!t)
        return -1;
    *path = g_strdup(t->path);
    return 0;
}

void redis_tls_stop_all(void)
{
    g_mutex_lock(&registry_lock);
    g_atomic_int_set(&stopping, 1);
    for (guint i = 0; tunnels && i < tunnels->len; i++) {
        struct tunnel *t = g_ptr_array_index(tunnels, i);
        g_thread_join(t->acceptor); /* after it, the pumps array is ours */
        reap(t, true);
        tunnel_free(t);
    }
    if (tunnels)
        g_ptr_array_free(tunnels, TRUE);
    tunnels = NULL;
    g_mutex_unlock(&registry_lock);
}
