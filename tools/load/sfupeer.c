/*
 * yjt-sfupeer: many WebRTC endpoints in one process, for the SFU
 * benchmark (tools/bench-sfu.py). Each endpoint is a client transport of
 * yjt's own media layer (libnice ICE, OpenSSL DTLS, libsrtp2) with one
 * VP8 video section; the driver does the signaling with the server and
 * hands SDPs in and out through this process's stdin and stdout, one JSON
 * object a line:
 *
 *   {"op":"offer","id":N,"send":true}       -> {"id":N,"sdp":"<offer>"}
 *       an endpoint that offers (sendrecv when send, else recvonly)
 *   {"op":"remote","id":N,"sdp":"<answer>"} -> {"id":N,"ok":true}
 *       the server's answer to that offer
 *   {"op":"answer","id":N,"sdp":"<offer>"}  -> {"id":N,"sdp":"<answer>"}
 *       an endpoint that answers an offer of the server (recvonly)
 *   {"op":"start","kbps":K}                  -> {"ok":true}
 *       every sending endpoint sends K kbit/s of VP8-like RTP (1,200-byte
 *       packets, a frame every 33 ms, a key frame when asked by PLI)
 *   {"op":"stats"}                           -> {"peers":[{"id","state",
 *       "sent","received","lost","nacks","plis"}...]}
 *   {"op":"clear"}                           -> {"ok":true}
 *       every endpoint closed and freed (between benchmark steps)
 *   {"op":"quit"}
 *
 * Endpoints gather on the addresses of argv[1] (comma-separated; default
 * 127.0.0.1). Losses are counted from gaps in each receiver's sequence
 * numbers. With argv[2] = K > 1, only every K-th receiving endpoint (by id)
 * checks and decrypts what it gets; the others count packets by their
 * clear RTP header, which costs this process far less than the server's
 * work per stream, so that the server saturates first. The
 * media is not real video: the server forwards it without decoding, and
 * what is measured is the server's work per forwarded stream.
 *
 * Each endpoint's transport has a context of its own, driven over epoll
 * (media/ctxmux.h), as in yjtd.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "media/ctxmux.h"
#include "media/dtls.h"
#include "media/rtp.h"
#include "media/sdp.h"
#include "media/srtp.h"
#include "media/transport.h"

#include <glib-unix.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PKT 1200
#define PT 96

/* The addresses endpoints gather on: argv[1] (comma-separated), else
 * 127.0.0.1. */
static char **addrs;
/* Receiving endpoints whose id is a multiple of it decrypt (argv[2]). */
static int check_every = 1;

struct endpoint {
    int id;
    bool send;
    struct media_transport *t;
    enum media_transport_state state;
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts;
    uint64_t sent, received, lost, nacks, plis;
    bool check; /* decrypts what it receives (else counts headers) */
    bool seq_started;
    uint16_t max_seq;
};

static struct dtls_cert *cert;
static GHashTable *endpoints; /* id -> struct endpoint* */
static bool running = true;
/* Pause between two passes of the loop: each pass costs GLib some work per
 * socket, and with hundreds of sockets that each get a packet now and then,
 * a pass per packet would make this process the first to saturate. The
 * packets wait for the next pass in their sockets' buffers. */
#define PASS_PAUSE_US 3000
static double kbps;
static guint pacer;

static void reply(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(s);
}

static void on_candidate(const char *cand, void *ud)
{
    (void)cand;
    (void)ud; /* host candidates are in the SDP; later ones are not needed on loopback */
}

static void on_state(enum media_transport_state s, const char *why, void *ud)
{
    struct endpoint *e = ud;
    e->state = s;
    if (s != MEDIA_TRANSPORT_CONNECTED)
        fprintf(stderr, "sfupeer: endpoint %d state %d %s\n", e->id, s, why ? why : "");
}

static void count(struct endpoint *e, const uint8_t *pkt, size_t len)
{
    struct rtp_header h;
    if (rtp_parse(pkt, len, &h) != 0)
        return;
    e->received++;
    if (!e->seq_started) {
        e->seq_started = true;
        e->max_seq = h.seq;
        return;
    }
    int16_t d = (int16_t)(uint16_t)(h.seq - e->max_seq);
    if (d > 0) {
        e->lost += (uint64_t)(d - 1);
        e->max_seq = h.seq;
    } else if (e->lost) {
        e->lost--; /* a late one, counted lost before */
    }
}

static void on_rtp(uint8_t *pkt, size_t len, void *ud)
{
    count(ud, pkt, len);
}

static void on_srtp(const uint8_t *pkt, size_t len, void *ud)
{
    count(ud, pkt, len);
}

static void on_rtcp(uint8_t *pkt, size_t len, void *ud)
{
    struct endpoint *e = ud;
    size_t off = 0;
    struct rtcp_packet p;
    while (rtcp_next(pkt, len, &off, &p)) {
        if (p.type == RTCP_RTPFB && p.fmt == RTCP_FMT_NACK)
            e->nacks++;
        else if (p.type == RTCP_PSFB && (p.fmt == RTCP_FMT_PLI || p.fmt == RTCP_FMT_FIR))
            e->plis++;
    }
}

static const struct media_transport_callbacks cbs = {on_candidate, on_state, on_rtp, on_rtcp, NULL};
static const struct media_transport_callbacks cbs_count = {on_candidate, on_state, on_rtp, on_rtcp,
                                                           on_srtp};

static struct endpoint *endpoint_new(int id, bool send)
{
    struct endpoint *e = g_new0(struct endpoint, 1);
    e->id = id;
    e->send = send;
    e->ssrc = g_random_int() | 1;
    e->check = send || check_every <= 1 || id % check_every == 0;
    e->t = media_transport_new(NULL, MEDIA_TRANSPORT_CLIENT, cert, (const char *const *)addrs,
                               false, e->check ? &cbs : &cbs_count, e);
    if (!e->t) {
        g_free(e);
        return NULL;
    }
    g_hash_table_insert(endpoints, GINT_TO_POINTER(id), e);
    return e;
}

static void endpoint_free(gpointer p)
{
    struct endpoint *e = p;
    media_transport_free(e->t);
    g_free(e);
}

/* The endpoint's SDP: one VP8 section (as an offer, or made an answer). */
static char *endpoint_sdp(struct endpoint *e, const char *mid, enum sdp_dir dir, bool answer)
{
    struct sdp_offer_section sec = {
        .kind = SDP_VIDEO,
        .dir = dir,
        .codec = {.pt = PT,
                  .name = "VP8",
                  .clock = 90000,
                  .channels = 1,
                  .fb = SDP_FB_NACK | SDP_FB_PLI,
                  .apt = -1},
        .send = {.ssrc = dir == SDP_SENDRECV || dir == SDP_SENDONLY ? e->ssrc : 0,
                 .stream = "bench",
                 .track = "v"},
    };
    g_strlcpy(sec.mid, mid, sizeof(sec.mid));
    GPtrArray *none = g_ptr_array_new();
    struct sdp_offer_params p = {.ice_ufrag = media_transport_ufrag(e->t),
                                 .ice_pwd = media_transport_pwd(e->t),
                                 .fingerprint = dtls_cert_fingerprint(cert),
                                 .candidates = none,
                                 .session_id = (uint64_t)e->id,
                                 .sections = &sec,
                                 .n_sections = 1};
    char *text = sdp_offer(&p);
    g_ptr_array_free(none, TRUE);
    if (!answer)
        return text;
    GString *g = g_string_new(text);
    g_free(text);
    g_string_replace(g, "a=setup:actpass", "a=setup:active", 0);
    return g_string_free(g, FALSE);
}

/* Applies the server's SDP: credentials, fingerprint, candidates. */
static int take_remote(struct endpoint *e, const char *text, const char **why)
{
    struct sdp *s = sdp_parse(text, strlen(text), why);
    if (!s)
        return -1;
    int rc = -1;
    struct sdp_media *m = s->media->len ? g_ptr_array_index(s->media, 0) : NULL;
    /* An answer that takes setup:active (Janus does) leaves us passive. */
    if (m && strcmp(m->setup, "active") == 0)
        media_transport_set_dtls_passive(e->t, true);
    if (m && media_transport_set_remote(e->t, m->ice_ufrag, m->ice_pwd, m->fp_alg, m->fp, why) == 0)
        rc = 0;
    sdp_free(s);
    if (rc != 0)
        return rc;
    char **lines = g_strsplit(text, "\r\n", -1);
    for (char **l = lines; *l; l++)
        if (g_str_has_prefix(*l, "a=candidate:"))
            media_transport_add_remote_candidate(e->t, *l + 2);
    g_strfreev(lines);
    media_transport_remote_done(e->t);
    return media_transport_gather(e->t);
}

/* The first mid and the first VP8 payload type of the server's offer. */
static bool offer_video(const char *text, char *mid, size_t cap)
{
    const char *why;
    struct sdp *s = sdp_parse(text, strlen(text), &why);
    if (!s)
        return false;
    bool ok = false;
    for (guint i = 0; i < s->media->len && !ok; i++) {
        struct sdp_media *m = g_ptr_array_index(s->media, i);
        if (m->kind == SDP_VIDEO) {
            g_strlcpy(mid, m->mid, cap);
            ok = true;
        }
    }
    sdp_free(s);
    return ok;
}

static gboolean pace(gpointer data)
{
    (void)data;
    /* Every 10 ms, kbps * 10 / 8 bytes per sender in whole packets, by
     * the time elapsed: a late turn sends what is due, so a busy process
     * does not lower the rate. */
    static double credit;
    static gint64 last;
    gint64 now = g_get_monotonic_time();
    double ms = last ? MIN((now - last) / 1000.0, 100.0) : 10.0;
    last = now;
    credit += kbps * ms / 8.0 / PKT;
    int n = (int)credit;
    credit -= n;
    static uint8_t buf[PKT];
    GHashTableIter it;
    gpointer v;
    static unsigned tick;
    tick++;
    g_hash_table_iter_init(&it, endpoints);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct endpoint *e = v;
        if (!e->send || e->state != MEDIA_TRANSPORT_CONNECTED)
            continue;
        if (tick % 3 == 0)
            e->ts += 2970; /* a frame every 30 ms (of turns) */
        for (int i = 0; i < n; i++) {
            memset(buf, 0, 12);
            buf[0] = 0x80;
            buf[1] = (uint8_t)(PT | (i == n - 1 ? 0x80 : 0));
            rtp_set_seq(buf, e->seq++);
            rtp_set_ts(buf, e->ts);
            rtp_set_ssrc(buf, e->ssrc);
            buf[12] = i == 0 ? 0x10 : 0x00; /* VP8 descriptor: S on the first */
            if (media_transport_send_rtp(e->t, buf, PKT) == 0)
                e->sent++;
        }
    }
    return G_SOURCE_CONTINUE;
}

static json_t *stats(void)
{
    json_t *arr = json_array();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, endpoints);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct endpoint *e = v;
        json_array_append_new(arr, json_pack("{s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:b}", "id",
                                             e->id, "state", e->state, "sent", (json_int_t)e->sent,
                                             "received", (json_int_t)e->received, "lost",
                                             (json_int_t)e->lost, "nacks", (json_int_t)e->nacks,
                                             "plis", (json_int_t)e->plis, "checked", e->check));
    }
    return json_pack("{s:o}", "peers", arr);
}

static void command(json_t *cmd)
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    int id = (int)json_integer_value(json_object_get(cmd, "id"));
    const char *sdp = json_string_value(json_object_get(cmd, "sdp"));
    const char *why = "bad command";
    struct endpoint *e = g_hash_table_lookup(endpoints, GINT_TO_POINTER(id));
    if (!op) {
    } else if (strcmp(op, "offer") == 0 && !e) {
        bool send = json_is_true(json_object_get(cmd, "send"));
        e = endpoint_new(id, send);
        if (e) {
            char *text = endpoint_sdp(e, "0", send ? SDP_SENDRECV : SDP_RECVONLY, false);
            reply(json_pack("{s:i, s:s}", "id", id, "sdp", text));
            g_free(text);
            return;
        }
        why = "no transport";
    } else if (strcmp(op, "remote") == 0 && e && sdp) {
        if (take_remote(e, sdp, &why) == 0) {
            reply(json_pack("{s:i, s:b}", "id", id, "ok", 1));
            return;
        }
    } else if (strcmp(op, "answer") == 0 && !e && sdp) {
        char mid[64];
        e = offer_video(sdp, mid, sizeof(mid)) ? endpoint_new(id, false) : NULL;
        if (e) {
            /* The server's offer makes it ICE-controlling. */
            media_transport_set_ice_controlling(e->t, false);
            char *text = endpoint_sdp(e, mid, SDP_RECVONLY, true);
            if (take_remote(e, sdp, &why) == 0) {
                reply(json_pack("{s:i, s:s}", "id", id, "sdp", text));
                g_free(text);
                return;
            }
            g_free(text);
        }
    } else if (strcmp(op, "start") == 0) {
        kbps = json_number_value(json_object_get(cmd, "kbps"));
        if (!pacer)
            pacer = g_timeout_add(10, pace, NULL);
        reply(json_pack("{s:b}", "ok", 1));
        return;
    } else if (strcmp(op, "stats") == 0) {
        reply(stats());
        return;
    } else if (strcmp(op, "clear") == 0) {
        kbps = 0;
        g_hash_table_remove_all(endpoints);
        reply(json_pack("{s:b}", "ok", 1));
        return;
    } else if (strcmp(op, "quit") == 0) {
        running = false;
        return;
    }
    reply(json_pack("{s:i, s:s}", "id", id, "error", why));
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data)
{
    (void)fd;
    (void)cond;
    static GString *buf;
    if (!buf)
        buf = g_string_new(NULL);
    char chunk[65536];
    ssize_t n = read(0, chunk, sizeof(chunk));
    if (n <= 0) {
        running = false;
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(buf, chunk, n);
    char *nl;
    while ((nl = memchr(buf->str, '\n', buf->len))) {
        *nl = '\0';
        json_t *cmd = json_loads(buf->str, 0, NULL);
        if (cmd) {
            command(cmd);
            json_decref(cmd);
        }
        g_string_erase(buf, 0, nl - buf->str + 1);
    }
    (void)data;
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    addrs = g_strsplit(argc > 1 ? argv[1] : "127.0.0.1", ",", -1);
    if (argc > 2)
        check_every = atoi(argv[2]);
    if (media_srtp_init() != 0 || !(cert = dtls_cert_new())) {
        fprintf(stderr, "sfupeer: no SRTP or certificate\n");
        return 1;
    }
    struct ctxmux *mux = ctxmux_new(NULL);
    media_transport_use_mux(mux);
    endpoints = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, endpoint_free);
    g_unix_fd_add(0, G_IO_IN | G_IO_HUP, on_stdin, NULL);
    while (running) {
        g_main_context_iteration(NULL, TRUE);
        g_usleep(PASS_PAUSE_US);
    }
    g_hash_table_destroy(endpoints);
    media_transport_use_mux(NULL);
    ctxmux_free(mux);
    dtls_cert_free(cert);
    media_srtp_shutdown();
    g_strfreev(addrs);
    return 0;
}
