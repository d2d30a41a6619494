/* ICE over libnice (see ice_agent.h). */
#include "media/ice_agent.h"

#include <agent.h>
#include <errno.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define COMPONENT 1
/* The longest candidate line taken from a peer, and its most fields. */
#define CANDIDATE_MAX 1024
#define CANDIDATE_FIELDS 64

struct ice_agent {
    NiceAgent *agent;
    guint stream;
    char *ufrag, *pwd;
    struct ice_agent_callbacks cb;
    void *ud;
    enum ice_agent_state reported;
    bool connected;
    enum ice_agent_tcp tcp;
    /* The selected pair when it is plain UDP (not through TURN): its
     * socket and the peer's address, so that media is sent with one
     * sendto() instead of through libnice's layers (its locks, its
     * GSocket, a GObject type check and a message vector per packet). */
    GSocket *direct;
    int direct_fd;
    struct sockaddr_storage direct_to;
    socklen_t direct_len;
};

static void direct_clear(struct ice_agent *a)
{
    g_clear_object(&a->direct);
    a->direct_fd = -1;
    a->direct_len = 0;
}

static void direct_update(struct ice_agent *a)
{
    direct_clear(a);
    NiceCandidate *local = NULL, *remote = NULL;
    if (!nice_agent_get_selected_pair(a->agent, a->stream, COMPONENT, &local, &remote) || !local ||
        !remote || local->transport != NICE_CANDIDATE_TRANSPORT_UDP ||
        local->type == NICE_CANDIDATE_TYPE_RELAYED)
        return;
    GSocket *s = nice_agent_get_selected_socket(a->agent, a->stream, COMPONENT);
    if (!s)
        return;
    int family = nice_address_ip_version(&remote->addr) == 6 ? AF_INET6 : AF_INET;
    if (g_socket_get_socket_type(s) != G_SOCKET_TYPE_DATAGRAM ||
        g_socket_get_family(s) != (GSocketFamily)family) {
        g_object_unref(s);
        return;
    }
    memset(&a->direct_to, 0, sizeof(a->direct_to));
    nice_address_copy_to_sockaddr(&remote->addr, (struct sockaddr *)&a->direct_to);
    a->direct_len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    a->direct = s;
    a->direct_fd = g_socket_get_fd(s);
}

static void on_selected(NiceAgent *agent, guint stream, guint component, NiceCandidate *local,
                        NiceCandidate *remote, gpointer data)
{
    (void)agent;
    (void)local;
    (void)remote;
    struct ice_agent *a = data;
    if (stream == a->stream && component == COMPONENT)
        direct_update(a);
}

/* The TCP candidates this agent announces (its own) and takes (the
 * peer's): passive and active ones for an agent that accepts, the other
 * way round for one that connects. */
static NiceCandidateTransport own_tcp(const struct ice_agent *a)
{
    return a->tcp == ICE_AGENT_TCP_ACCEPT ? NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE
                                          : NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE;
}

static NiceCandidateTransport peer_tcp(const struct ice_agent *a)
{
    return a->tcp == ICE_AGENT_TCP_ACCEPT ? NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE
                                          : NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE;
}

/* Whether a candidate of that transport is used, given the side it is
 * from. */
static bool wanted(const struct ice_agent *a, NiceCandidateTransport t, bool own)
{
    if (t == NICE_CANDIDATE_TRANSPORT_UDP)
        return true;
    return a->tcp != ICE_AGENT_TCP_OFF && t == (own ? own_tcp(a) : peer_tcp(a));
}

static void on_candidate(NiceAgent *agent, NiceCandidate *cand, gpointer data)
{
    struct ice_agent *a = data;
    if (cand->stream_id != a->stream || !a->cb.candidate || !wanted(a, cand->transport, true))
        return;
    gchar *sdp = nice_agent_generate_local_candidate_sdp(agent, cand);
    if (sdp) {
        a->cb.candidate(g_str_has_prefix(sdp, "a=") ? sdp + 2 : sdp, a->ud);
        g_free(sdp);
    }
}

static void on_gathered(NiceAgent *agent, guint stream, gpointer data)
{
    (void)agent;
    struct ice_agent *a = data;
    if (stream == a->stream && a->cb.candidate)
        a->cb.candidate(NULL, a->ud);
}

static void report(struct ice_agent *a, enum ice_agent_state s)
{
    if (a->reported == s)
        return;
    a->reported = s;
    if (a->cb.state)
        a->cb.state(s, a->ud);
}

static void on_state(NiceAgent *agent, guint stream, guint component, guint state, gpointer data)
{
    (void)agent;
    struct ice_agent *a = data;
    if (stream != a->stream || component != COMPONENT)
        return;
    if (state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) {
        a->connected = true;
        report(a, ICE_AGENT_CONNECTED);
    } else if (state == NICE_COMPONENT_STATE_FAILED) {
        a->connected = false;
        direct_clear(a);
        report(a, ICE_AGENT_FAILED);
    }
}

static void on_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *buf,
                    gpointer data)
{
    (void)agent;
    (void)stream;
    (void)component;
    struct ice_agent *a = data;
    if (a->cb.recv && len > 0)
        a->cb.recv((const uint8_t *)buf, len, a->ud);
}

struct ice_agent *ice_agent_new(GMainContext *ctx, bool controlling, const char *const *addresses,
                                enum ice_agent_tcp tcp, const struct ice_agent_callbacks *cb,
                                void *ud)
{
    struct ice_agent *a = g_new0(struct ice_agent, 1);
    a->cb = *cb;
    a->ud = ud;
    a->tcp = tcp;
    a->reported = ICE_AGENT_CHECKING;
    a->direct_fd = -1;
    a->agent =
        nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245,
                            NICE_AGENT_OPTION_ICE_TRICKLE | NICE_AGENT_OPTION_CONSENT_FRESHNESS);
    if (!a->agent)
        goto err;
    g_object_set(a->agent, "controlling-mode", controlling, "ice-tcp", tcp != ICE_AGENT_TCP_OFF,
                 "ice-udp", TRUE, "upnp", FALSE, NULL);
    for (size_t i = 0; addresses && addresses[i]; i++) {
        NiceAddress addr;
        nice_address_init(&addr);
        if (!nice_address_set_from_string(&addr, addresses[i]) ||
            !nice_agent_add_local_address(a->agent, &addr))
            goto err;
    }
    a->stream = nice_agent_add_stream(a->agent, 1);
    if (!a->stream)
        goto err;
    g_signal_connect(a->agent, "new-candidate-full", G_CALLBACK(on_candidate), a);
    g_signal_connect(a->agent, "candidate-gathering-done", G_CALLBACK(on_gathered), a);
    g_signal_connect(a->agent, "component-state-changed", G_CALLBACK(on_state), a);
    g_signal_connect(a->agent, "new-selected-pair-full", G_CALLBACK(on_selected), a);
    if (!nice_agent_attach_recv(a->agent, a->stream, COMPONENT, ctx, on_recv, a) ||
        !nice_agent_get_local_credentials(a->agent, a->stream, &a->ufrag, &a->pwd))
        goto err;
    return a;
err:
    ice_agent_free(a);
    return NULL;
}

void ice_agent_free(struct ice_agent *a)
{
    if (!a)
        return;
    if (a->agent) {
        g_signal_handlers_disconnect_by_data(a->agent, a);
        if (a->stream) {
            nice_agent_attach_recv(a->agent, a->stream, COMPONENT, NULL, NULL, NULL);
            nice_agent_remove_stream(a->agent, a->stream);
        }
        g_object_unref(a->agent);
    }
    direct_clear(a);
    g_free(a->ufrag);
    g_free(a->pwd);
    g_free(a);
}

void ice_agent_set_controlling(struct ice_agent *a, bool controlling)
{
    g_object_set(a->agent, "controlling-mode", controlling, NULL);
}

const char *ice_agent_ufrag(const struct ice_agent *a)
{
    return a->ufrag;
}

const char *ice_agent_pwd(const struct ice_agent *a)
{
    return a->pwd;
}

int ice_agent_gather(struct ice_agent *a)
{
    return nice_agent_gather_candidates(a->agent, a->stream) ? 0 : -1;
}

int ice_agent_set_remote(struct ice_agent *a, const char *ufrag, const char *pwd)
{
    if (!ufrag || !pwd || !*ufrag || !*pwd)
        return -1;
    return nice_agent_set_remote_credentials(a->agent, a->stream, ufrag, pwd) ? 0 : -1;
}

int ice_agent_restart(struct ice_agent *a, const char *ufrag, const char *pwd)
{
    if (!ufrag || !pwd || !*ufrag || !*pwd || !nice_agent_restart_stream(a->agent, a->stream))
        return -1;
    direct_clear(a); /* libnice sends until a new pair is selected */
    g_free(a->ufrag);
    g_free(a->pwd);
    a->ufrag = a->pwd = NULL;
    if (!nice_agent_get_local_credentials(a->agent, a->stream, &a->ufrag, &a->pwd))
        return -1;
    a->reported = ICE_AGENT_CHECKING;
    return ice_agent_set_remote(a, ufrag, pwd);
}

/* Checks the shape of a peer's candidate before libnice parses it:
 * "candidate:F C PROTO PRIORITY ADDRESS PORT typ TYPE", then names and
 * values in pairs (RFC 8839 5.1). libnice takes some malformed lines
 * (a port of 99999) and logs a GLib critical for others (TCP without
 * tcptype). Returns 0 with the candidate's transport, or -1. */
static int candidate_shape(const char *value, NiceCandidateTransport *transport)
{
    gchar **f = g_strsplit(value, " ", CANDIDATE_FIELDS + 1);
    guint n = g_strv_length(f);
    int rc = -1;
    if (n < 8 || n > CANDIDATE_FIELDS || (n - 8) % 2 != 0 || strcmp(f[6], "typ") != 0)
        goto out;
    for (guint i = 0; i < n; i++) {
        if (!*f[i])
            goto out;
    }
    size_t digits = strspn(f[5], "0123456789");
    if (digits == 0 || digits > 5 || f[5][digits] || strtol(f[5], NULL, 10) > 65535)
        goto out;
    if (g_ascii_strcasecmp(f[2], "udp") == 0) {
        *transport = NICE_CANDIDATE_TRANSPORT_UDP;
        rc = 0;
    } else if (g_ascii_strcasecmp(f[2], "tcp") == 0) {
        for (guint i = 8; i < n; i += 2) {
            if (strcmp(f[i], "tcptype") != 0)
                continue;
            rc = 0;
            if (strcmp(f[i + 1], "active") == 0)
                *transport = NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE;
            else if (strcmp(f[i + 1], "passive") == 0)
                *transport = NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE;
            else if (strcmp(f[i + 1], "so") == 0)
                *transport = NICE_CANDIDATE_TRANSPORT_TCP_SO;
            else
                rc = -1;
            break;
        }
    }
out:
    g_strfreev(f);
    return rc;
}

int ice_agent_add_remote_candidate(struct ice_agent *a, const char *candidate)
{
    if (!candidate || strlen(candidate) > CANDIDATE_MAX)
        return -1;
    const char *value = g_str_has_prefix(candidate, "a=") ? candidate + 2 : candidate;
    NiceCandidateTransport transport;
    if (!g_str_has_prefix(value, "candidate:") || candidate_shape(value, &transport) != 0)
        return -1;
    if (!wanted(a, transport, false))
        return 0;
    char *line = g_strconcat("a=", value, NULL);
    NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(a->agent, a->stream, line);
    g_free(line);
    if (!c)
        return -1;
    /* One component: RTP and RTCP are muxed, candidates of component 2
     * are not needed. */
    int rc = -1;
    if (c->component_id == COMPONENT) {
        GSList *list = g_slist_append(NULL, c);
        rc = nice_agent_set_remote_candidates(a->agent, a->stream, COMPONENT, list) >= 0 ? 0 : -1;
        g_slist_free(list);
    }
    nice_candidate_free(c);
    return rc;
}

void ice_agent_remote_done(struct ice_agent *a)
{
    nice_agent_peer_candidate_gathering_done(a->agent, a->stream);
}

int ice_agent_send(struct ice_agent *a, const uint8_t *data, size_t len)
{
    /* libnice sends once a pair is selected, which may be just before the
     * component reports itself connected (the peer's first DTLS flight
     * can arrive then): it refuses, with -1, while there is none. */
    if (len == 0 || len > 65535)
        return -1;
    if (a->direct_fd >= 0) {
        ssize_t n;
        do
            n = sendto(a->direct_fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (const struct sockaddr *)&a->direct_to, a->direct_len);
        while (n < 0 && errno == EINTR);
        return n == (ssize_t)len ? 0 : -1;
    }
    return nice_agent_send(a->agent, a->stream, COMPONENT, (guint)len, (const gchar *)data) ==
                   (gint)len
               ? 0
               : -1;
}

bool ice_agent_direct(const struct ice_agent *a)
{
    return a->direct_fd >= 0;
}

const char *ice_agent_path(struct ice_agent *a)
{
    NiceCandidate *local = NULL, *remote = NULL;
    if (!nice_agent_get_selected_pair(a->agent, a->stream, COMPONENT, &local, &remote) || !local)
        return NULL;
    return local->transport == NICE_CANDIDATE_TRANSPORT_UDP ? "udp" : "tcp";
}
