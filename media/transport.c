/* One participant's transport: ICE, DTLS, SRTP (see transport.h). */
#include "media/transport.h"

#include "media/ctxmux.h"
#include "media/ice_agent.h"
#include "media/rtp.h"
#include "media/srtp.h"

#include <string.h>

/* How often a handshake in progress looks at its retransmission timer. */
#define DTLS_TICK_MS 20
/* The largest packet sent or received: a datagram's worth. */
#define PACKET_MAX 1500

struct media_transport {
    GMainContext *ctx;
    struct ctxmux *mux; /* ctx is a member of it */
    enum media_transport_role role;
    bool dtls_passive; /* the DTLS server (the role's default unless set) */
    struct dtls_cert *cert;
    struct ice_agent *ice;
    struct dtls *dtls;
    struct media_srtp *srtp;
    enum media_transport_state state;
    bool ice_up, dtls_started;
    GSource *tick;
    struct media_transport_callbacks cb;
    void *ud;
};

static void set_state(struct media_transport *t, enum media_transport_state s, const char *why)
{
    if (t->state == s || t->state == MEDIA_TRANSPORT_FAILED || t->state == MEDIA_TRANSPORT_CLOSED)
        return;
    t->state = s;
    if (s != MEDIA_TRANSPORT_CONNECTING && t->tick) {
        g_source_destroy(t->tick);
        g_source_unref(t->tick);
        t->tick = NULL;
    }
    if (t->cb.state)
        t->cb.state(s, why, t->ud);
}

/* After DTLS reports: keys into SRTP once connected. */
static void after_dtls(struct media_transport *t, enum dtls_state ds)
{
    if (ds == DTLS_FAILED) {
        set_state(t, MEDIA_TRANSPORT_FAILED, dtls_error(t->dtls));
    } else if (ds == DTLS_CLOSED) {
        set_state(t, MEDIA_TRANSPORT_CLOSED, "the peer closed the connection");
    } else if (ds == DTLS_CONNECTED && !t->srtp) {
        struct media_srtp_keys k;
        t->srtp = dtls_srtp_keys(t->dtls, &k) ? media_srtp_new(&k) : NULL;
        memset(&k, 0, sizeof(k));
        if (!t->srtp)
            set_state(t, MEDIA_TRANSPORT_FAILED, "SRTP session could not be made");
        else
            set_state(t, MEDIA_TRANSPORT_CONNECTED, NULL);
    }
}

static gboolean on_tick(gpointer data)
{
    struct media_transport *t = data;
    if (t->dtls && t->dtls_started && dtls_timeout_ms(t->dtls) == 0)
        after_dtls(t, dtls_handle_timeout(t->dtls));
    return G_SOURCE_CONTINUE;
}

static void dtls_out(const uint8_t *data, size_t len, void *ud)
{
    struct media_transport *t = ud;
    ice_agent_send(t->ice, data, len);
}

static void on_candidate(const char *cand, void *ud)
{
    struct media_transport *t = ud;
    if (t->cb.candidate)
        t->cb.candidate(cand, t->ud);
}

static void on_ice_state(enum ice_agent_state s, void *ud)
{
    struct media_transport *t = ud;
    if (s == ICE_AGENT_FAILED) {
        set_state(t, MEDIA_TRANSPORT_FAILED, "ICE failed (no path to the peer, or consent lost)");
        return;
    }
    if (s == ICE_AGENT_CONNECTED && !t->ice_up && t->dtls) {
        t->ice_up = true;
        t->dtls_started = true;
        after_dtls(t, dtls_start(t->dtls)); /* the client's ClientHello */
    }
}

static void on_datagram(const uint8_t *data, size_t len, void *ud)
{
    struct media_transport *t = ud;
    switch (media_demux(data, len)) {
    case DEMUX_DTLS:
        if (!t->dtls)
            return;
        t->dtls_started = true;
        after_dtls(t, dtls_input(t->dtls, data, len));
        break;
    case DEMUX_RTP: {
        if (!t->srtp || len > PACKET_MAX)
            return;
        if (t->cb.srtp_unchecked && !rtp_is_rtcp(data, len)) {
            t->cb.srtp_unchecked(data, len, t->ud);
            return;
        }
        uint8_t buf[PACKET_MAX];
        size_t n = len;
        memcpy(buf, data, len);
        bool rtcp = rtp_is_rtcp(buf, n);
        if (rtcp ? media_srtp_unprotect_rtcp(t->srtp, buf, &n) != 0
                 : media_srtp_unprotect(t->srtp, buf, &n) != 0)
            return; /* forged, replayed or broken: dropped */
        if (rtcp && t->cb.rtcp)
            t->cb.rtcp(buf, n, t->ud);
        else if (!rtcp && t->cb.rtp)
            t->cb.rtp(buf, n, t->ud);
        break;
    }
    default:
        break; /* STUN stays in libnice; anything else is dropped */
    }
}

static struct ctxmux *default_mux;

void media_transport_use_mux(struct ctxmux *m)
{
    default_mux = m;
}

struct media_transport *media_transport_new(GMainContext *ctx, enum media_transport_role role,
                                            struct dtls_cert *cert, const char *const *addresses,
                                            bool ice_tcp,
                                            const struct media_transport_callbacks *cb, void *ud)
{
    if (!cert)
        return NULL;
    struct media_transport *t = g_new0(struct media_transport, 1);
    if (!ctx && default_mux) {
        t->mux = default_mux;
        t->ctx = ctxmux_add(t->mux);
    } else {
        t->ctx = ctx ? g_main_context_ref(ctx) : NULL;
    }
    t->role = role;
    t->dtls_passive = role == MEDIA_TRANSPORT_SERVER;
    t->cert = cert;
    t->cb = *cb;
    t->ud = ud;
    t->state = MEDIA_TRANSPORT_CONNECTING;
    const struct ice_agent_callbacks icb = {on_candidate, on_ice_state, on_datagram};
    enum ice_agent_tcp tcp = !ice_tcp                         ? ICE_AGENT_TCP_OFF
                             : role == MEDIA_TRANSPORT_SERVER ? ICE_AGENT_TCP_ACCEPT
                                                              : ICE_AGENT_TCP_CONNECT;
    t->ice = ice_agent_new(t->ctx, role == MEDIA_TRANSPORT_CLIENT, addresses, tcp, &icb, t);
    if (!t->ice) {
        media_transport_free(t);
        return NULL;
    }
    t->tick = g_timeout_source_new(DTLS_TICK_MS);
    g_source_set_callback(t->tick, on_tick, t, NULL);
    g_source_attach(t->tick, t->ctx);
    return t;
}

int media_transport_set_remote(struct media_transport *t, const char *ufrag, const char *pwd,
                               const char *fp_alg, const char *fp, const char **why)
{
    if (t->dtls) {
        *why = "the peer's credentials are already set";
        return -1;
    }
    struct dtls *d =
        dtls_new(t->cert, t->dtls_passive ? DTLS_PASSIVE : DTLS_ACTIVE, fp_alg, fp, dtls_out, t);
    if (!d) {
        *why = "a sha-256, sha-384 or sha-512 fingerprint of the peer is needed";
        return -1;
    }
    if (ice_agent_set_remote(t->ice, ufrag, pwd) != 0) {
        dtls_free(d);
        *why = "the peer's ICE ufrag and pwd are needed";
        return -1;
    }
    t->dtls = d;
    return 0;
}

void media_transport_set_dtls_passive(struct media_transport *t, bool passive)
{
    t->dtls_passive = passive;
}

void media_transport_set_ice_controlling(struct media_transport *t, bool controlling)
{
    ice_agent_set_controlling(t->ice, controlling);
}

int media_transport_ice_restart(struct media_transport *t, const char *ufrag, const char *pwd)
{
    if (t->state == MEDIA_TRANSPORT_FAILED || t->state == MEDIA_TRANSPORT_CLOSED)
        return -1;
    return ice_agent_restart(t->ice, ufrag, pwd);
}

void media_transport_free(struct media_transport *t)
{
    if (!t)
        return;
    if (t->tick) {
        g_source_destroy(t->tick);
        g_source_unref(t->tick);
    }
    ice_agent_free(t->ice);
    dtls_free(t->dtls);
    media_srtp_free(t->srtp);
    if (t->mux)
        ctxmux_remove(t->mux, t->ctx); /* it drains what libnice left, then lets go */
    else if (t->ctx)
        g_main_context_unref(t->ctx);
    g_free(t);
}

const char *media_transport_ufrag(const struct media_transport *t)
{
    return ice_agent_ufrag(t->ice);
}

const char *media_transport_pwd(const struct media_transport *t)
{
    return ice_agent_pwd(t->ice);
}

enum media_transport_state media_transport_state(const struct media_transport *t)
{
    return t->state;
}

bool media_transport_direct(const struct media_transport *t)
{
    return ice_agent_direct(t->ice);
}

const char *media_transport_path(const struct media_transport *t)
{
    return ice_agent_path(t->ice);
}

int media_transport_gather(struct media_transport *t)
{
    return ice_agent_gather(t->ice);
}

int media_transport_add_remote_candidate(struct media_transport *t, const char *candidate)
{
    return ice_agent_add_remote_candidate(t->ice, candidate);
}

void media_transport_remote_done(struct media_transport *t)
{
    ice_agent_remote_done(t->ice);
}

static int send_protected(struct media_transport *t, const uint8_t *pkt, size_t len, bool rtcp)
{
    if (t->state != MEDIA_TRANSPORT_CONNECTED || len > PACKET_MAX)
        return -1;
    uint8_t buf[PACKET_MAX + MEDIA_SRTP_OVERHEAD];
    memcpy(buf, pkt, len);
    size_t n = len;
    if ((rtcp ? media_srtp_protect_rtcp(t->srtp, buf, &n, sizeof(buf))
              : media_srtp_protect(t->srtp, buf, &n, sizeof(buf))) != 0)
        return -1;
    return ice_agent_send(t->ice, buf, n);
}

int media_transport_send_rtp(struct media_transport *t, const uint8_t *pkt, size_t len)
{
    return send_protected(t, pkt, len, false);
}

int media_transport_send_rtcp(struct media_transport *t, const uint8_t *pkt, size_t len)
{
    return send_protected(t, pkt, len, true);
}
