/* A room of the SFU: participants, their SDP and lifecycle (see room.h;
 * the packet path is in room_fwd.c). */
#include "media/room_int.h"

#include <stdlib.h>
#include <string.h>

#define REMB_EVERY_MS 1000
#define DEFAULT_MAX_BITRATE 2000000

/* ---------- transport events ---------- */

static gboolean report_state(gpointer data)
{
    struct media_peer *p = data;
    p->idle = 0;
    if (p->reported == p->state)
        return G_SOURCE_REMOVE;
    p->reported = p->state;
    /* A receiver that connects again needs a key frame to start; one that
     * connects the first time asks when its first packet is forwarded. */
    for (unsigned i = 0; p->state == MEDIA_TRANSPORT_CONNECTED && i < p->n_out; i++) {
        struct media_peer *src = p->out[i].kind == K_VIDEO && p->out[i].source
                                     ? room_peer_by_id(p->room, p->out[i].source)
                                     : NULL;
        if (src)
            room_request_keyframe(src);
    }
    if (p->room->cb.state)
        p->room->cb.state(p, p->state, p->why, p->room->ud);
    return G_SOURCE_REMOVE;
}

static void on_state(enum media_transport_state s, const char *why, void *ud)
{
    struct media_peer *p = ud;
    p->state = s;
    g_free(p->why);
    p->why = g_strdup(why);
    if (!p->idle) {
        GSource *src = g_idle_source_new();
        g_source_set_callback(src, report_state, p, NULL);
        p->idle = g_source_attach(src, p->room->cfg.ctx);
        g_source_unref(src);
    }
}

static void on_candidate(const char *cand, void *ud)
{
    struct media_peer *p = ud;
    if (!cand)
        return;
    if (p->gathering)
        g_ptr_array_add(p->cands, g_strdup(cand));
    else if (p->room->cb.candidate)
        p->room->cb.candidate(p, cand, p->room->ud);
}

/* ---------- participants ---------- */

/* The server's offer of p's sections (p->secs), with its credentials,
 * certificate and candidates. */
static char *peer_offer(struct media_peer *p)
{
    struct sdp_offer_params op = {.ice_ufrag = media_transport_ufrag(p->t),
                                  .ice_pwd = media_transport_pwd(p->t),
                                  .fingerprint = dtls_cert_fingerprint(p->room->cfg.cert),
                                  .candidates = p->cands,
                                  .session_id = g_random_int(),
                                  .sections = p->secs,
                                  .n_sections = p->n_secs + p->pending};
    return sdp_offer(&op);
}

static struct media_peer *peer_new(struct media_room *r)
{
    struct media_peer *p = g_new0(struct media_peer, 1);
    p->room = r;
    p->id = ++r->next_id;
    p->cands = g_ptr_array_new_with_free_func(g_free);
    p->state = p->reported = MEDIA_TRANSPORT_CONNECTING;
    for (int k = 0; k < K_N; k++)
        p->in[k].pt = p->in[k].rtx_pt = -1;
    const struct media_transport_callbacks cb = {on_candidate, on_state, room_on_rtp, room_on_rtcp,
                                                 NULL};
    p->t = media_transport_new(r->cfg.ctx, MEDIA_TRANSPORT_SERVER, r->cfg.cert, r->cfg.addresses,
                               r->cfg.ice_tcp, &cb, p);
    if (!p->t) {
        g_ptr_array_free(p->cands, TRUE);
        g_free(p);
        return NULL;
    }
    g_ptr_array_add(r->peers, p);
    media_room_stats.peers++;
    return p;
}

/* Gathers the local candidates known at once (host candidates) for the
 * SDP; later ones go through the room's candidate callback. */
static int peer_gather(struct media_peer *p)
{
    p->gathering = true;
    int rc = media_transport_gather(p->t);
    p->gathering = false;
    /* Behind a 1:1 NAT the devices reach the server at its public
     * address, on the same port: each host candidate, UDP or passive
     * TCP, is also announced there (its own foundation, a slightly lower
     * priority, the same tcptype). */
    const char *pub = p->room->cfg.public_ip;
    for (guint i = 0, n = p->cands->len; pub && i < n; i++) {
        char **f = g_strsplit(g_ptr_array_index(p->cands, i), " ", -1);
        if (g_strv_length(f) >= 8 && strcmp(f[6], "typ") == 0 && strcmp(f[7], "host") == 0) {
            char *found = g_strdup_printf("%sn", f[0]);
            unsigned long prio = strtoul(f[3], NULL, 10);
            char *prio_s = g_strdup_printf("%lu", prio > 1 ? prio - 1 : prio);
            g_free(f[0]);
            g_free(f[3]);
            g_free(f[4]);
            f[0] = found;
            f[3] = prio_s;
            f[4] = g_strdup(pub);
            g_ptr_array_add(p->cands, g_strjoinv(" ", f));
        }
        g_strfreev(f);
    }
    return rc;
}

static void source_drop(GMainContext *ctx, guint id)
{
    GSource *s = id ? g_main_context_find_source_by_id(ctx, id) : NULL;
    if (s)
        g_source_destroy(s);
}

static void peer_free(struct media_peer *p)
{
    source_drop(p->room->cfg.ctx, p->idle);
    for (int k = 0; k < K_N; k++)
        media_recorder_close(p->in[k].rec);
    media_transport_free(p->t);
    for (unsigned i = 0; i < p->n_out; i++)
        g_free(p->out[i].ring);
    g_ptr_array_free(p->cands, TRUE);
    g_free(p->why);
    g_free(p);
    media_room_stats.peers--;
}

void media_peer_remove(struct media_peer *p)
{
    struct media_room *r = p->room;
    g_ptr_array_remove(r->peers, p);
    /* Its receivers take the next publisher that is heard. */
    for (guint i = 0; i < r->peers->len; i++) {
        struct media_peer *q = g_ptr_array_index(r->peers, i);
        for (unsigned k = 0; k < q->n_out; k++)
            if (q->out[k].source == p->id)
                q->out[k].source = 0;
    }
    peer_free(p);
}

static uint32_t new_ssrc(void)
{
    uint32_t s;
    do
        s = g_random_int();
    while (s == 0);
    return s;
}

/* A new out track of kind for p (NULL when it has OUT_MAX). */
static struct out_track *out_add(struct media_peer *p, int kind)
{
    if (p->n_out >= OUT_MAX)
        return NULL;
    struct out_track *o = &p->out[p->n_out++];
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->pt = -1;
    o->ssrc = new_ssrc();
    return o;
}

/* What the server announces for out track o of p: the n-th track of each
 * kind share a stream (a=msid), since the first publisher heard fills the
 * first of each. */
static void set_send(struct sdp_send *s, const struct media_peer *p, const struct out_track *o)
{
    unsigned nth = 0;
    for (const struct out_track *x = p->out; x < o; x++)
        if (x->kind == o->kind)
            nth++;
    s->ssrc = o->ssrc;
    g_snprintf(s->stream, sizeof(s->stream), "yjt-%u-%u", p->id, nth);
    g_snprintf(s->track, sizeof(s->track), "yjt-%u-%u-%s", p->id, nth,
               o->kind == K_AUDIO ? "a" : "v");
}

static int ext_id(const struct sdp_media *m, int which)
{
    const char *const *uris;
    sdp_kept_extmaps(&uris);
    return sdp_extmap_id(m, uris[which]);
}

/* K_AUDIO or K_VIDEO for a section, or -1. */
static int kind_of(const struct sdp_media *m)
{
    return m->kind == SDP_AUDIO ? K_AUDIO : m->kind == SDP_VIDEO ? K_VIDEO : -1;
}

/* The codec of m that matches the room's codec of its kind, or NULL. */
static const struct sdp_codec *room_codec_in(const struct media_room *r, const struct sdp_media *m,
                                             int kind)
{
    for (guint i = 0; i < m->codecs->len; i++) {
        const struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, i);
        if (g_ascii_strcasecmp(c->name, r->codec[kind].name) == 0 &&
            c->clock == r->codec[kind].clock)
            return c;
    }
    return NULL;
}

/* Takes what a section of the participant's SDP says it publishes (the
 * first such section of each kind, if it may publish), with its payload
 * type and extension ids. */
static void take_publish(struct media_peer *p, const struct sdp_media *m, int kind,
                         const struct sdp_codec *c)
{
    if (p->in[kind].pt >= 0 || !(m->dir == SDP_SENDRECV || m->dir == SDP_SENDONLY))
        return;
    p->in[kind].pt = c->pt;
    for (guint i = 0; kind == K_VIDEO && i < m->codecs->len; i++) {
        const struct sdp_codec *x = &g_array_index(m->codecs, struct sdp_codec, i);
        if (x->apt == c->pt && g_ascii_strcasecmp(x->name, "rtx") == 0)
            p->in[kind].rtx_pt = x->pt; /* it may repair losses with RTX */
    }
    p->in[kind].ext_mid = ext_id(m, 0);
    p->in[kind].ext_abs = ext_id(m, 1);
}

/* Makes o carry what the section says the participant receives. */
static void take_receive(struct out_track *o, const struct sdp_media *m, const struct sdp_codec *c)
{
    o->pt = c->pt;
    o->ext_mid = ext_id(m, 0);
    o->ext_abs = ext_id(m, 1);
}

/* The server's side of a direction the peer wrote. */
static enum sdp_dir server_dir(enum sdp_dir peer, bool no_receive)
{
    enum sdp_dir d = peer == SDP_SENDONLY   ? SDP_RECVONLY
                     : peer == SDP_RECVONLY ? SDP_SENDONLY
                                            : peer;
    if (no_receive)
        d = d == SDP_SENDRECV ? SDP_SENDONLY : d == SDP_RECVONLY ? SDP_INACTIVE : d;
    return d;
}

/* Notes section m of p's SDP (c: the codec taken, NULL: rejected) as the
 * server would offer it again. */
static void sec_note(struct media_peer *p, const struct sdp_media *m, int kind,
                     const struct sdp_codec *c, enum sdp_dir dir, const struct sdp_send *send)
{
    if (!c || kind < 0 || p->n_secs >= G_N_ELEMENTS(p->secs)) {
        p->renegotiable = false;
        return;
    }
    struct sdp_offer_section *sec = &p->secs[p->n_secs++];
    memset(sec, 0, sizeof(*sec));
    sec->kind = kind == K_AUDIO ? SDP_AUDIO : SDP_VIDEO;
    g_strlcpy(sec->mid, m->mid, sizeof(sec->mid));
    sec->dir = dir;
    sec->codec = *c;
    sec->codec.apt = -1;
    for (int e = 0; e < SDP_KEPT_EXTMAPS; e++)
        sec->extmap_ids[e] = ext_id(m, e);
    if (send)
        sec->send = *send;
}

static bool remote_of(const struct sdp *s, const struct sdp_media **first)
{
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        if (m->port && *m->ice_ufrag && *m->ice_pwd && *m->fp) {
            *first = m;
            return true;
        }
    }
    return false;
}

/* Candidates a peer wrote in its SDP (most trickle them instead; some
 * stacks gather first and write them in). */
static void sdp_candidates(struct media_peer *p, const char *text, size_t len)
{
    char *copy = g_strndup(text, len);
    char **lines = g_strsplit(copy, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_strchomp(*l);
        if (g_str_has_prefix(*l, "a=candidate:"))
            media_transport_add_remote_candidate(p->t, *l + 2);
    }
    g_strfreev(lines);
    g_free(copy);
}

/* The server's answer to p's offer s: its credentials, certificate and
 * candidates, what it sends and the payload types, by section. */
static char *peer_answer(struct media_peer *p, const struct sdp *s, const struct sdp_send *send,
                         const int *pts, const char **why)
{
    struct sdp_answer_params ap = {.ice_ufrag = media_transport_ufrag(p->t),
                                   .ice_pwd = media_transport_pwd(p->t),
                                   .fingerprint = dtls_cert_fingerprint(p->room->cfg.cert),
                                   .candidates = p->cands,
                                   .session_id = g_random_int(),
                                   .send = send,
                                   .n_send = s->media->len,
                                   .pts = pts,
                                   .no_receive = !p->publish};
    return sdp_answer(s, &ap, why);
}

struct media_peer *media_room_answer(struct media_room *r, const char *offer, size_t len,
                                     bool publish, char **answer, const char **why)
{
    *answer = NULL;
    struct sdp *s = sdp_parse(offer, len, why);
    if (!s)
        return NULL;
    const struct sdp_media *first = NULL;
    if (!remote_of(s, &first)) {
        *why = "the offer has no ICE credentials or fingerprint";
        sdp_free(s);
        return NULL;
    }
    struct media_peer *p = peer_new(r);
    if (!p) {
        *why = "no media transport could be made";
        sdp_free(s);
        return NULL;
    }
    struct sdp_send *send = g_new0(struct sdp_send, s->media->len);
    int *pts = g_new(int, s->media->len);
    bool taken[K_N] = {false, false};
    bool room_had = r->have_codecs;
    p->renegotiable = true;
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        int kind = kind_of(m);
        pts[i] = -1;
        const struct sdp_codec *c = kind < 0 || !m->port      ? NULL
                                    : room_had || taken[kind] ? room_codec_in(r, m, kind)
                                                              : sdp_pick_codec(m);
        if (!c) {
            sec_note(p, m, kind, NULL, SDP_INACTIVE, NULL);
            continue;
        }
        pts[i] = c->pt;
        if (publish)
            take_publish(p, m, kind, c);
        struct out_track *o =
            m->dir == SDP_SENDRECV || m->dir == SDP_RECVONLY ? out_add(p, kind) : NULL;
        if (o) {
            take_receive(o, m, c);
            set_send(&send[i], p, o);
        }
        sec_note(p, m, kind, c, server_dir(m->dir, !publish), o ? &send[i] : NULL);
        if (!room_had && !taken[kind]) {
            r->codec[kind] = *c;
            r->codec[kind].apt = -1;
            for (int e = 0; e < SDP_KEPT_EXTMAPS; e++)
                if (!r->ext_ids[e])
                    r->ext_ids[e] = ext_id(m, e);
        }
        taken[kind] = true;
    }
    if (!taken[K_AUDIO] && !taken[K_VIDEO]) {
        *why = room_had ? "the offer has none of the call's codecs"
                        : "no audio or video the server can take (Opus, VP8 or H.264 constrained"
                          " baseline with packetization-mode 1)";
        goto fail;
    }
    if (!room_had)
        r->have_codecs = true;
    if (media_transport_set_remote(p->t, first->ice_ufrag, first->ice_pwd, first->fp_alg, first->fp,
                                   why) != 0 ||
        peer_gather(p) != 0) {
        if (!*why)
            *why = "ICE could not gather candidates";
        goto fail;
    }
    p->have_remote = true;
    sdp_candidates(p, offer, len);
    p->publish = publish;
    p->n_sections = s->media->len;
    g_strlcpy(p->remote_ufrag, first->ice_ufrag, sizeof(p->remote_ufrag));
    g_strlcpy(p->remote_fp, first->fp, sizeof(p->remote_fp));
    *answer = peer_answer(p, s, send, pts, why);
    if (!*answer)
        goto fail;
    g_free(send);
    g_free(pts);
    sdp_free(s);
    return p;
fail:
    g_free(send);
    g_free(pts);
    sdp_free(s);
    media_peer_remove(p);
    return NULL;
}

struct media_peer *media_room_offer(struct media_room *r, char **offer, const char **why)
{
    *offer = NULL;
    if (!r->have_codecs) {
        *why = "the call has no media yet";
        return NULL;
    }
    struct media_peer *p = peer_new(r);
    if (!p) {
        *why = "no media transport could be made";
        return NULL;
    }
    p->offered = true;
    media_transport_set_ice_controlling(p->t, true);
    if (peer_gather(p) != 0) {
        *why = "ICE could not gather candidates";
        media_peer_remove(p);
        return NULL;
    }
    struct sdp_offer_section sec[K_N];
    size_t n = 0;
    for (int k = 0; k < K_N; k++) {
        if (!r->codec[k].name[0])
            continue;
        struct sdp_offer_section *os = &sec[n];
        memset(os, 0, sizeof(*os));
        os->kind = k == K_AUDIO ? SDP_AUDIO : SDP_VIDEO;
        g_snprintf(os->mid, sizeof(os->mid), "%zu", n);
        os->dir = SDP_SENDRECV;
        os->codec = r->codec[k];
        memcpy(os->extmap_ids, r->ext_ids, sizeof(os->extmap_ids));
        set_send(&os->send, p, out_add(p, k)); /* it receives once it answers */
        n++;
    }
    memcpy(p->secs, sec, n * sizeof(sec[0]));
    p->n_secs = n;
    p->renegotiable = true;
    *offer = peer_offer(p);
    return p;
}

int media_peer_set_answer(struct media_peer *p, const char *answer, size_t len, const char **why)
{
    if (!p->offered || p->have_remote) {
        *why = "no offer of the server is waiting for an answer";
        return -1;
    }
    struct sdp *s = sdp_parse(answer, len, why);
    if (!s)
        return -1;
    struct media_room *r = p->room;
    const struct sdp_media *first = NULL;
    int rc = -1;
    if (!remote_of(s, &first)) {
        *why = "the answer has no ICE credentials or fingerprint";
        goto out;
    }
    if (strcmp(first->setup, "active") != 0) {
        *why = "the answer must take setup:active (the server is the DTLS server)";
        goto out;
    }
    bool any = false;
    bool taken[K_N] = {false, false};
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        int kind = kind_of(m);
        if (kind < 0 || taken[kind] || !m->port)
            continue;
        const struct sdp_codec *c = room_codec_in(r, m, kind);
        if (!c || c->pt != r->codec[kind].pt)
            continue; /* an answer keeps the offer's payload types */
        taken[kind] = true;
        /* The server's offer was sendrecv: the answer's direction is the
         * participant's own. */
        take_publish(p, m, kind, c);
        if (m->dir == SDP_SENDRECV || m->dir == SDP_RECVONLY) {
            for (unsigned k = 0; k < p->n_out; k++)
                if (p->out[k].kind == kind)
                    take_receive(&p->out[k], m, c);
        }
        for (unsigned k = 0; k < p->n_secs; k++)
            if (strcmp(p->secs[k].mid, m->mid) == 0)
                p->secs[k].dir = server_dir(m->dir, false);
        any = true;
    }
    if (!any) {
        *why = "the answer accepts none of the offered media";
        goto out;
    }
    if (media_transport_set_remote(p->t, first->ice_ufrag, first->ice_pwd, first->fp_alg, first->fp,
                                   why) != 0)
        goto out;
    p->have_remote = true;
    sdp_candidates(p, answer, len);
    p->publish = true;
    p->n_sections = s->media->len;
    g_strlcpy(p->remote_ufrag, first->ice_ufrag, sizeof(p->remote_ufrag));
    g_strlcpy(p->remote_fp, first->fp, sizeof(p->remote_fp));
    rc = 0;
out:
    sdp_free(s);
    return rc;
}

char *media_peer_renegotiate(struct media_peer *p, const char *offer, size_t len, bool *restart,
                             const char **why)
{
    *restart = false;
    if (!p->have_remote) {
        *why = "the participant has no media connection yet";
        return NULL;
    }
    struct sdp *s = sdp_parse(offer, len, why);
    if (!s)
        return NULL;
    struct media_room *r = p->room;
    const struct sdp_media *first = NULL;
    char *answer = NULL;
    struct sdp_send *send = NULL;
    int *pts = NULL;
    if (!remote_of(s, &first)) {
        *why = "the offer has no ICE credentials or fingerprint";
        goto out;
    }
    if (p->pending) {
        *why = "an offer of the server is waiting for its answer: answer it first";
        goto out;
    }
    if (s->media->len != p->n_sections) {
        *why = "adding or removing media sections through the server is not supported";
        goto out;
    }
    if (g_ascii_strcasecmp(first->fp, p->remote_fp) != 0) {
        *why = "the certificate cannot change within a call";
        goto out;
    }
    /* The same sections as before: the n-th receiving one still carries
     * the n-th out track. */
    send = g_new0(struct sdp_send, s->media->len);
    pts = g_new(int, s->media->len);
    unsigned next_out = 0;
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        int kind = kind_of(m);
        const struct sdp_codec *c = kind >= 0 && m->port ? room_codec_in(r, m, kind) : NULL;
        pts[i] = c ? c->pt : -1;
        bool receives = m->dir == SDP_SENDRECV || m->dir == SDP_RECVONLY;
        if (c && receives && next_out < p->n_out && p->out[next_out].kind == kind)
            set_send(&send[i], p, &p->out[next_out++]);
    }
    if (strcmp(first->ice_ufrag, p->remote_ufrag) != 0) {
        if (media_transport_ice_restart(p->t, first->ice_ufrag, first->ice_pwd) != 0) {
            *why = "the ICE restart failed";
            goto out;
        }
        g_strlcpy(p->remote_ufrag, first->ice_ufrag, sizeof(p->remote_ufrag));
        *restart = true;
    }
    answer = peer_answer(p, s, send, pts, why);
out:
    g_free(send);
    g_free(pts);
    sdp_free(s);
    return answer;
}

char *media_peer_offer_more(struct media_peer *p, const char **why)
{
    struct media_room *r = p->room;
    if (!p->have_remote || !p->renegotiable) {
        *why = "its SDP has sections the server cannot offer again";
        return NULL;
    }
    if (p->pending) {
        *why = "an offer of the server is waiting for its answer";
        return NULL;
    }
    for (int k = 0; k < K_N; k++) {
        if (!r->codec[k].name[0] || p->n_secs + p->pending >= G_N_ELEMENTS(p->secs))
            continue;
        struct out_track *o = out_add(p, k);
        if (!o)
            break;
        struct sdp_offer_section *sec = &p->secs[p->n_secs + p->pending];
        memset(sec, 0, sizeof(*sec));
        sec->kind = k == K_AUDIO ? SDP_AUDIO : SDP_VIDEO;
        g_snprintf(sec->mid, sizeof(sec->mid), "y%u", p->n_secs + p->pending);
        sec->dir = SDP_SENDONLY;
        sec->codec = r->codec[k];
        memcpy(sec->extmap_ids, r->ext_ids, sizeof(sec->extmap_ids));
        /* The payload type and extension ids the peer already uses. */
        for (unsigned i = 0; i < p->n_secs; i++) {
            if (p->secs[i].kind == sec->kind) {
                sec->codec = p->secs[i].codec;
                memcpy(sec->extmap_ids, p->secs[i].extmap_ids, sizeof(sec->extmap_ids));
                break;
            }
        }
        set_send(&sec->send, p, o);
        p->pending++;
    }
    if (!p->pending) {
        *why = "no room for more sections";
        return NULL;
    }
    return peer_offer(p);
}

int media_peer_take_answer(struct media_peer *p, const char *answer, size_t len, const char **why)
{
    if (!p->pending) {
        *why = "no offer of the server is waiting for an answer";
        return -1;
    }
    struct sdp *s = sdp_parse(answer, len, why);
    if (!s)
        return -1;
    const struct sdp_media *first = NULL;
    int rc = -1;
    if (!remote_of(s, &first) || strcmp(first->ice_ufrag, p->remote_ufrag) != 0 ||
        g_ascii_strcasecmp(first->fp, p->remote_fp) != 0) {
        *why = "the answer must keep the connection's ICE credentials and certificate";
        goto out;
    }
    /* The new sections come to life as the answer accepts them. */
    for (unsigned j = p->n_secs; j < p->n_secs + p->pending; j++) {
        struct sdp_offer_section *sec = &p->secs[j];
        struct out_track *o = room_out_by_ssrc(p, sec->send.ssrc);
        for (guint i = 0; o && i < s->media->len; i++) {
            const struct sdp_media *m = g_ptr_array_index(s->media, i);
            if (strcmp(m->mid, sec->mid) != 0 || !m->port ||
                !(m->dir == SDP_RECVONLY || m->dir == SDP_SENDRECV))
                continue;
            for (guint k = 0; k < m->codecs->len; k++) {
                const struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, k);
                if (c->pt == sec->codec.pt)
                    take_receive(o, m, c);
            }
        }
    }
    p->n_secs += p->pending;
    p->n_sections = p->n_secs;
    rc = 0;
out:
    p->pending = rc == 0 ? 0 : p->pending;
    sdp_free(s);
    return rc;
}

int media_peer_add_candidate(struct media_peer *p, const char *candidate)
{
    if (!p->have_remote)
        return -1;
    if (!candidate) {
        media_transport_remote_done(p->t);
        return 0;
    }
    return media_transport_add_remote_candidate(p->t, candidate);
}

void media_peer_set_data(struct media_peer *p, void *data)
{
    p->data = data;
}

void *media_peer_data(const struct media_peer *p)
{
    return p->data;
}

enum media_transport_state media_peer_state(const struct media_peer *p)
{
    return p->state;
}

const char *media_peer_path(const struct media_peer *p)
{
    return media_transport_path(p->t);
}

/* ---------- rooms ---------- */

struct media_room *media_room_new(const struct media_room_config *config,
                                  const struct media_room_callbacks *cb, void *ud)
{
    if (!config->cert)
        return NULL;
    struct media_room *r = g_new0(struct media_room, 1);
    r->cfg = *config;
    r->cfg.record_dir = config->record_dir ? g_strdup(config->record_dir) : NULL;
    r->cfg.record_prefix = g_strdup(config->record_prefix ? config->record_prefix : "rec");
    r->cfg.public_ip = config->public_ip && *config->public_ip ? g_strdup(config->public_ip) : NULL;
    if (!r->cfg.max_bitrate)
        r->cfg.max_bitrate = DEFAULT_MAX_BITRATE;
    r->cb = *cb;
    r->ud = ud;
    r->peers = g_ptr_array_new();
    GSource *t = g_timeout_source_new(REMB_EVERY_MS);
    g_source_set_callback(t, room_remb_tick, r, NULL);
    r->remb_timer = g_source_attach(t, r->cfg.ctx);
    g_source_unref(t);
    return r;
}

void media_room_free(struct media_room *r)
{
    if (!r)
        return;
    source_drop(r->cfg.ctx, r->remb_timer);
    while (r->peers->len)
        media_peer_remove(g_ptr_array_index(r->peers, r->peers->len - 1));
    g_ptr_array_free(r->peers, TRUE);
    g_free((char *)r->cfg.record_dir);
    g_free((char *)r->cfg.record_prefix);
    g_free((char *)r->cfg.public_ip);
    g_free(r);
}

unsigned media_room_size(const struct media_room *r)
{
    return r->peers->len;
}
