/* Outgoing HTTP POSTs for the push gateway (push/gateway.c decides what to
 * post; this file only carries it).
 *
 * Why libwebsockets' HTTP client on the server's own lws context, rather
 * than a worker thread with a blocking client: the POST then lives on the
 * one event loop like every other socket (no thread, no queue between
 * threads, no library to add), any number of posts can be in flight at
 * once, and a gateway that hangs costs one idle socket per post until the
 * timeout. lws resolves host names with a blocking getaddrinfo(), so a
 * name is first resolved by GLib's GResolver (on its own threads, result
 * back on the main loop) and lws is given the address. Each request has a
 * GLib timer; whatever ends first (answer, error, timeout) answers the
 * caller, exactly once, never from inside gateway_client_post(). */
#include "server/gateway_client.h"

#include "common/log.h"
#include "server/server.h"

#include <gio/gio.h>
#include <libwebsockets.h>
#include <string.h>

#define URL_MAX 1024

struct req {
    uint64_t serial;
    char *body; /* LWS_PRE bytes of headroom, then body_len bytes */
    size_t body_len;
    char *host;
    char *path;
    int port;
    bool tls;
    int status;
    struct lws *wsi;
    guint timer;
    gateway_done_fn done;
    void *ctx;
};

static GHashTable *reqs; /* serial -> struct req*, requests not yet answered */
static uint64_t next_serial = 1;

void gateway_client_init(void)
{
    reqs = g_hash_table_new(g_int64_hash, g_int64_equal);
}

static void req_free(struct req *r)
{
    g_free(r->body);
    g_free(r->host);
    g_free(r->path);
    g_free(r);
}

/* Answers the caller and forgets the request; the lws connection, if any,
 * is cut loose (and killed when it is still open). */
static void finish(struct req *r, int status, const char *error)
{
    g_hash_table_remove(reqs, &r->serial);
    if (r->timer)
        g_source_remove(r->timer);
    if (r->wsi) {
        lws_set_opaque_user_data(r->wsi, NULL);
        if (error)
            lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    r->done(status, error, r->ctx);
    req_free(r);
}

static gboolean on_timeout(gpointer data)
{
    struct req *r = data;
    r->timer = 0;
    finish(r, 0, "timeout");
    return G_SOURCE_REMOVE;
}

static void connect_to(struct req *r, const char *address)
{
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = server.lws;
    i.address = address;
    i.port = r->port;
    i.path = r->path;
    i.host = r->host;
    i.origin = r->host;
    i.method = "POST";
    i.ssl_connection = r->tls ? LCCSCF_USE_SSL : 0;
    i.local_protocol_name = GATEWAY_CLIENT_PROTOCOL;
    i.protocol = GATEWAY_CLIENT_PROTOCOL;
    i.alpn = "http/1.1";
    i.opaque_user_data = r;
    i.pwsi = &r->wsi;
    uint64_t serial = r->serial;
    if (!lws_client_connect_via_info(&i)) {
        /* lws may have reported the error through the callback already */
        struct req *still = g_hash_table_lookup(reqs, &serial);
        if (still) {
            still->wsi = NULL;
            finish(still, 0, "cannot connect");
        }
    }
}

static void resolved(GObject *src, GAsyncResult *res, gpointer data)
{
    uint64_t serial = (uint64_t)(uintptr_t)data;
    GError *err = NULL;
    GList *addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(src), res, &err);
    struct req *r = reqs ? g_hash_table_lookup(reqs, &serial) : NULL;
    if (r && addrs) {
        /* IPv4 first: "localhost" often lists ::1 first, where a service
         * bound to 127.0.0.1 is not. */
        GInetAddress *pick = addrs->data;
        for (GList *l = addrs; l; l = l->next)
            if (g_inet_address_get_family(l->data) == G_SOCKET_FAMILY_IPV4) {
                pick = l->data;
                break;
            }
        char *a = g_inet_address_to_string(pick);
        connect_to(r, a);
        g_free(a);
    } else if (r) {
        finish(r, 0, "cannot resolve the gateway host");
    }
    if (addrs)
        g_resolver_free_addresses(addrs);
    g_clear_error(&err);
}

static gboolean fail_later(gpointer data)
{
    struct req *r = data;
    finish(r, 0, "bad gateway url");
    return G_SOURCE_REMOVE;
}

void gateway_client_post(const char *url, const char *body, int timeout_ms, gateway_done_fn done,
                         void *ctx)
{
    struct req *r = g_new0(struct req, 1);
    r->serial = next_serial++;
    r->done = done;
    r->ctx = ctx;
    r->body_len = strlen(body);
    r->body = g_malloc(LWS_PRE + r->body_len + 1);
    memcpy(r->body + LWS_PRE, body, r->body_len + 1);
    g_hash_table_insert(reqs, &r->serial, r);

    char buf[URL_MAX];
    const char *prot = NULL, *ads = NULL, *path = NULL;
    int port = 0;
    g_strlcpy(buf, url, sizeof(buf));
    if (strlen(url) >= sizeof(buf) || lws_parse_uri(buf, &prot, &ads, &port, &path) ||
        (strcmp(prot, "http") != 0 && strcmp(prot, "https") != 0) || !*ads) {
        g_idle_add(fail_later, r); /* never answer from inside the call */
        return;
    }
    r->tls = strcmp(prot, "https") == 0;
    r->port = port;
    r->host = g_strdup(ads);
    r->path = g_strconcat("/", path, NULL);
    r->timer = g_timeout_add((guint)timeout_ms, on_timeout, r);
    if (g_hostname_is_ip_address(r->host)) {
        connect_to(r, r->host);
    } else {
        GResolver *res = g_resolver_get_default();
        g_resolver_lookup_by_name_async(res, r->host, NULL, resolved,
                                        (gpointer)(uintptr_t)r->serial);
        g_object_unref(res);
    }
}

int gateway_client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
{
    struct req *r = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!r)
            return -1;
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        char cl[24];
        int n = g_snprintf(cl, sizeof(cl), "%zu", r->body_len);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)"application/json", 16, p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         (const unsigned char *)cl, n, p, end))
            return -1;
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        if (!r)
            return -1;
        lws_client_http_body_pending(wsi, 0);
        if (lws_write(wsi, (unsigned char *)r->body + LWS_PRE, r->body_len, LWS_WRITE_HTTP_FINAL) !=
            (int)r->body_len)
            return -1;
        return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (r)
            r->status = (int)lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 1024];
        char *px = buf + LWS_PRE;
        int lenx = (int)sizeof(buf) - LWS_PRE;
        return lws_http_client_read(wsi, &px, &lenx) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return 0; /* the gateway's answer body is not used */
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r) {
            r->wsi = wsi;
            finish(r, r->status, NULL);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (r) {
            r->wsi = NULL; /* lws closes it */
            lws_set_opaque_user_data(wsi, NULL);
            finish(r, 0, in && len ? (const char *)in : "connection error");
        }
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (r) {
            r->wsi = NULL;
            lws_set_opaque_user_data(wsi, NULL);
            finish(r, r->status, r->status ? NULL : "connection closed");
        }
        return 0;
    default:
        (void)user;
        return 0;
    }
}

void gateway_client_shutdown(void)
{
    if (!reqs)
        return;
    /* Whatever is still open is answered "shutting down"; the deadline of
     * each post is stored, so they are posted again after a restart. */
    GList *left = g_hash_table_get_values(reqs);
    for (GList *l = left; l; l = l->next) {
        struct req *r = l->data;
        r->wsi = NULL; /* the lws context is gone */
        finish(r, 0, "shutting down");
    }
    g_list_free(left);
    g_clear_pointer(&reqs, g_hash_table_destroy);
}
