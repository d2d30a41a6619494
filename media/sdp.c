/* SDP offers and answers (see sdp.h). */
#include "media/sdp.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 4096

/* Header extensions the server reads or writes. Transport-wide congestion
 * control is not among them: the server does not send its feedback, and a
 * sender that negotiated it and hears nothing may stall; senders adapt to
 * the REMB the server relays instead. */
static const char *const kept_extmaps[] = {
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
};
G_STATIC_ASSERT(G_N_ELEMENTS(kept_extmaps) == SDP_KEPT_EXTMAPS);

static void media_free(gpointer p)
{
    struct sdp_media *m = p;
    g_array_free(m->codecs, TRUE);
    g_array_free(m->extmaps, TRUE);
    g_array_free(m->ssrcs, TRUE);
    g_free(m);
}

void sdp_free(struct sdp *s)
{
    if (!s)
        return;
    g_ptr_array_free(s->media, TRUE);
    g_free(s);
}

/* Copies a token into a fixed field; false if it does not fit. */
static bool take(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

/* A whole decimal number in [min, max] from s (up to its end). */
static bool number(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    if (!*s || !g_ascii_isdigit(*s))
        return false;
    long v = strtol(s, &end, 10);
    if (*end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static struct sdp_codec *codec_of(struct sdp_media *m, long pt)
{
    for (guint i = 0; i < m->codecs->len; i++) {
        struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, i);
        if (c->pt == pt)
            return c;
    }
    return NULL;
}

/* "m=video 9 UDP/TLS/RTP/SAVPF 96 97 ..." */
static const char *media_line(struct sdp *s, char *v)
{
    if (s->media->len >= SDP_MAX_MEDIA)
        return "too many media sections";
    gchar **f = g_strsplit(v, " ", 0);
    const char *why = NULL;
    guint n = g_strv_length(f);
    long port = 0;
    if (n < 3 || !number(f[1], 0, 65535, &port)) {
        why = "bad m= line";
        goto out;
    }
    struct sdp_media *m = g_new0(struct sdp_media, 1);
    m->codecs = g_array_new(FALSE, TRUE, sizeof(struct sdp_codec));
    m->extmaps = g_array_new(FALSE, TRUE, sizeof(struct sdp_extmap));
    m->ssrcs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    m->kind = strcmp(f[0], "audio") == 0   ? SDP_AUDIO
              : strcmp(f[0], "video") == 0 ? SDP_VIDEO
                                           : SDP_OTHER;
    m->port = (int)port;
    m->dir = SDP_SENDRECV;
    g_ptr_array_add(s->media, m);
    if (!take(m->name, sizeof(m->name), f[0], strlen(f[0])) ||
        !take(m->proto, sizeof(m->proto), f[2], strlen(f[2])) ||
        (n > 3 && !take(m->fmt0, sizeof(m->fmt0), f[3], strlen(f[3])))) {
        why = "bad m= line";
        goto out;
    }
    bool rtp = strstr(f[2], "RTP/") != NULL;
    for (guint i = 3; rtp && i < n; i++) {
        long pt = 0;
        if (!number(f[i], 0, 127, &pt)) {
            why = "bad payload type";
            goto out;
        }
        if (m->codecs->len >= SDP_MAX_CODECS) {
            why = "too many payload types";
            goto out;
        }
        if (codec_of(m, pt))
            continue;
        struct sdp_codec c = {.pt = (int)pt, .apt = -1};
        g_array_append_val(m->codecs, c);
    }
out:
    g_strfreev(f);
    return why;
}

/* The payload type that begins an attribute's value ("96 VP8/90000") and
 * the text after its space; rtcp-fb's "*" (every type) gives -1. */
static bool lead_pt(const char *v, long *pt, const char **rest)
{
    const char *sp = strchr(v, ' ');
    char text[8];
    if (!sp)
        return false;
    *rest = sp + 1;
    if (sp - v == 1 && v[0] == '*') {
        *pt = -1;
        return true;
    }
    return take(text, sizeof(text), v, (size_t)(sp - v)) && number(text, 0, 127, pt);
}

/* "a=rtpmap:96 VP8/90000" or "opus/48000/2". */
static const char *rtpmap(struct sdp_media *m, const char *v)
{
    const char *rest;
    long pt = 0;
    if (!lead_pt(v, &pt, &rest) || pt < 0)
        return "bad rtpmap";
    struct sdp_codec *c = codec_of(m, pt);
    if (!c)
        return NULL; /* not on the m= line: ignored */
    gchar **f = g_strsplit(rest, "/", 4);
    guint n = g_strv_length(f);
    long clock = 0, channels = 1;
    const char *why = NULL;
    if (n < 2 || !take(c->name, sizeof(c->name), f[0], strlen(f[0])) ||
        !number(f[1], 1, 10000000, &clock) || (n >= 3 && !number(f[2], 1, 16, &channels)))
        why = "bad rtpmap";
    c->clock = (int)clock;
    c->channels = (int)channels;
    g_strfreev(f);
    return why;
}

static const char *fmtp(struct sdp_media *m, const char *v)
{
    const char *rest;
    long pt = 0;
    if (!lead_pt(v, &pt, &rest) || pt < 0)
        return "bad fmtp";
    struct sdp_codec *c = codec_of(m, pt);
    if (!c)
        return NULL;
    if (!take(c->fmtp, sizeof(c->fmtp), rest, strlen(rest)))
        return "fmtp too long";
    const char *apt = strstr(c->fmtp, "apt=");
    long a = 0;
    char num[8];
    if (apt) {
        size_t k = strspn(apt + 4, "0123456789");
        if (take(num, sizeof(num), apt + 4, k) && number(num, 0, 127, &a))
            c->apt = (int)a;
    }
    return NULL;
}

static const char *rtcp_fb(struct sdp_media *m, const char *v)
{
    const char *kind;
    long pt = 0;
    if (!lead_pt(v, &pt, &kind))
        return "bad rtcp-fb";
    unsigned bit = strcmp(kind, "nack") == 0           ? SDP_FB_NACK
                   : strcmp(kind, "nack pli") == 0     ? SDP_FB_PLI
                   : strcmp(kind, "ccm fir") == 0      ? SDP_FB_FIR
                   : strcmp(kind, "goog-remb") == 0    ? SDP_FB_REMB
                   : strcmp(kind, "transport-cc") == 0 ? SDP_FB_TWCC
                                                       : 0;
    for (guint i = 0; i < m->codecs->len; i++) {
        struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, i);
        if (pt < 0 || c->pt == pt)
            c->fb |= bit;
    }
    return NULL;
}

static const char *extmap(struct sdp_media *m, const char *v)
{
    const char *sp = strchr(v, ' ');
    char id_text[16];
    long id = 0;
    if (!sp || !take(id_text, sizeof(id_text), v, (size_t)(sp - v)))
        return "bad extmap";
    char *slash = strchr(id_text, '/'); /* "1/sendonly" */
    if (slash)
        *slash = '\0';
    if (!number(id_text, 1, 255, &id))
        return "bad extmap";
    if (m->extmaps->len >= SDP_MAX_EXTMAPS)
        return "too many extmaps";
    struct sdp_extmap e = {.id = (int)id};
    const char *uri = sp + 1;
    size_t n = strcspn(uri, " ");
    if (!take(e.uri, sizeof(e.uri), uri, n))
        return "extmap too long";
    g_array_append_val(m->extmaps, e);
    return NULL;
}

static const char *ssrc(struct sdp_media *m, const char *v)
{
    char num[16];
    size_t n = strspn(v, "0123456789");
    long long s = 0;
    if (!take(num, sizeof(num), v, n) || n == 0 || (s = strtoll(num, NULL, 10)) > UINT32_MAX)
        return "bad ssrc";
    for (guint i = 0; i < m->ssrcs->len; i++)
        if (g_array_index(m->ssrcs, uint32_t, i) == (uint32_t)s)
            return NULL;
    if (m->ssrcs->len >= SDP_MAX_SSRCS)
        return "too many ssrcs";
    uint32_t u = (uint32_t)s;
    g_array_append_val(m->ssrcs, u);
    return NULL;
}

/* "a=fingerprint:sha-256 AB:CD..." into alg and value fields. */
static const char *fingerprint(char *alg, size_t alg_cap, char *fp, size_t fp_cap, const char *v)
{
    const char *sp = strchr(v, ' ');
    if (!sp || !take(alg, alg_cap, v, (size_t)(sp - v)) ||
        !take(fp, fp_cap, sp + 1, strlen(sp + 1)))
        return "bad fingerprint";
    return NULL;
}

/* One attribute, at session level (m NULL) or in media section m. */
static const char *attribute(struct sdp *s, struct sdp_media *m, const char *a)
{
    const char *colon = strchr(a, ':');
    size_t nlen = colon ? (size_t)(colon - a) : strlen(a);
    const char *v = colon ? colon + 1 : "";
    char name[32];
    if (!take(name, sizeof(name), a, nlen))
        return NULL; /* an attribute we do not know: ignored */
    char *ufrag = m ? m->ice_ufrag : s->ice_ufrag, *pwd = m ? m->ice_pwd : s->ice_pwd;
    char *alg = m ? m->fp_alg : s->fp_alg, *fp = m ? m->fp : s->fp;
    char *setup = m ? m->setup : s->setup;
    if (strcmp(name, "ice-ufrag") == 0)
        return take(ufrag, SDP_TOKEN_MAX, v, strlen(v)) ? NULL : "ice-ufrag too long";
    if (strcmp(name, "ice-pwd") == 0)
        return take(pwd, SDP_TOKEN_MAX, v, strlen(v)) ? NULL : "ice-pwd too long";
    if (strcmp(name, "fingerprint") == 0)
        return fingerprint(alg, 16, fp, SDP_TOKEN_MAX, v);
    if (strcmp(name, "setup") == 0)
        return take(setup, 16, v, strlen(v)) ? NULL : "bad setup";
    if (strcmp(name, "group") == 0) {
        if (g_str_has_prefix(v, "BUNDLE"))
            s->bundle = true;
        return NULL;
    }
    if (!m)
        return NULL;
    if (strcmp(name, "mid") == 0)
        return take(m->mid, sizeof(m->mid), v, strlen(v)) ? NULL : "mid too long";
    if (strcmp(name, "rtcp-mux") == 0)
        m->rtcp_mux = true;
    else if (strcmp(name, "sendrecv") == 0)
        m->dir = SDP_SENDRECV;
    else if (strcmp(name, "sendonly") == 0)
        m->dir = SDP_SENDONLY;
    else if (strcmp(name, "recvonly") == 0)
        m->dir = SDP_RECVONLY;
    else if (strcmp(name, "inactive") == 0)
        m->dir = SDP_INACTIVE;
    else if (strcmp(name, "rtpmap") == 0)
        return rtpmap(m, v);
    else if (strcmp(name, "fmtp") == 0)
        return fmtp(m, v);
    else if (strcmp(name, "rtcp-fb") == 0)
        return rtcp_fb(m, v);
    else if (strcmp(name, "extmap") == 0)
        return extmap(m, v);
    else if (strcmp(name, "ssrc") == 0)
        return ssrc(m, v);
    return NULL;
}

struct sdp *sdp_parse(const char *text, size_t len, const char **why)
{
    *why = NULL;
    if (!text || len == 0 || len > SDP_MAX_BYTES || memchr(text, '\0', len)) {
        *why = "SDP missing, too long or not text";
        return NULL;
    }
    struct sdp *s = g_new0(struct sdp, 1);
    s->media = g_ptr_array_new_with_free_func(media_free);
    char line[LINE_MAX_BYTES];
    size_t pos = 0;
    bool first = true;
    while (pos < len && !*why) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        size_t next = pos + n + (nl ? 1 : 0);
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        if (n >= sizeof(line)) {
            *why = "SDP line too long";
            break;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = next;
        if (n == 0)
            continue;
        if (n < 2 || line[1] != '=') {
            *why = "not an SDP line";
            break;
        }
        if (first && line[0] != 'v') {
            *why = "SDP must start with v=";
            break;
        }
        first = false;
        struct sdp_media *m = s->media->len ? g_ptr_array_index(s->media, s->media->len - 1) : NULL;
        if (line[0] == 'm')
            *why = media_line(s, line + 2);
        else if (line[0] == 'a')
            *why = attribute(s, m, line + 2);
    }
    if (!*why && first)
        *why = "empty SDP";
    if (*why) {
        sdp_free(s);
        return NULL;
    }
    /* Sections inherit what the session level says. */
    for (guint i = 0; i < s->media->len; i++) {
        struct sdp_media *m = g_ptr_array_index(s->media, i);
        if (!*m->ice_ufrag)
            g_strlcpy(m->ice_ufrag, s->ice_ufrag, sizeof(m->ice_ufrag));
        if (!*m->ice_pwd)
            g_strlcpy(m->ice_pwd, s->ice_pwd, sizeof(m->ice_pwd));
        if (!*m->fp) {
            g_strlcpy(m->fp_alg, s->fp_alg, sizeof(m->fp_alg));
            g_strlcpy(m->fp, s->fp, sizeof(m->fp));
        }
        if (!*m->setup)
            g_strlcpy(m->setup, s->setup, sizeof(m->setup));
    }
    return s;
}

/* The value of key in an fmtp ("a=1;b=2"), copied into out. */
static bool fmtp_value(const char *fmtp, const char *key, char *out, size_t cap)
{
    size_t k = strlen(key);
    for (const char *p = fmtp; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > k && strncmp(p, key, k) == 0 && p[k] == '=')
            return take(out, cap, p + k + 1, n - k - 1);
        p = end;
    }
    return false;
}

/* H.264 the server forwards: constrained baseline (profile-level-id
 * 42e0xx or 42c0xx), packetization-mode 1. */
static bool h264_ok(const struct sdp_codec *c)
{
    char mode[8] = "", plid[16] = "";
    if (!fmtp_value(c->fmtp, "packetization-mode", mode, sizeof(mode)) || strcmp(mode, "1") != 0)
        return false;
    if (!fmtp_value(c->fmtp, "profile-level-id", plid, sizeof(plid)) || strlen(plid) != 6)
        return false;
    return g_ascii_strncasecmp(plid, "42e0", 4) == 0 || g_ascii_strncasecmp(plid, "42c0", 4) == 0;
}

const struct sdp_codec *sdp_pick_codec(const struct sdp_media *m)
{
    const struct sdp_codec *h264 = NULL;
    for (guint i = 0; i < m->codecs->len; i++) {
        const struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, i);
        if (m->kind == SDP_AUDIO && g_ascii_strcasecmp(c->name, "opus") == 0 && c->clock == 48000 &&
            c->channels == 2)
            return c;
        if (m->kind == SDP_VIDEO && g_ascii_strcasecmp(c->name, "VP8") == 0 && c->clock == 90000)
            return c;
        if (m->kind == SDP_VIDEO && !h264 && g_ascii_strcasecmp(c->name, "H264") == 0 &&
            c->clock == 90000 && h264_ok(c))
            h264 = c;
    }
    return h264;
}

int sdp_extmap_id(const struct sdp_media *m, const char *uri)
{
    for (guint i = 0; i < m->extmaps->len; i++) {
        const struct sdp_extmap *e = &g_array_index(m->extmaps, struct sdp_extmap, i);
        if (strcmp(e->uri, uri) == 0)
            return e->id;
    }
    return 0;
}

/* The codec of m with payload type pt, or NULL. */
static const struct sdp_codec *codec_by_pt(const struct sdp_media *m, int pt)
{
    for (guint i = 0; pt >= 0 && i < m->codecs->len; i++) {
        const struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, i);
        if (c->pt == pt)
            return c;
    }
    return NULL;
}

static const char *const dir_names[] = {"sendrecv", "sendonly", "recvonly", "inactive"};

static enum sdp_dir mirrored(enum sdp_dir d)
{
    return d == SDP_SENDONLY ? SDP_RECVONLY : d == SDP_RECVONLY ? SDP_SENDONLY : d;
}

/* The rtx payload type repairing pt, or -1. */
static int rtx_for(const struct sdp_media *m, int pt)
{
    for (guint i = 0; i < m->codecs->len; i++) {
        const struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, i);
        if (c->apt == pt && g_ascii_strcasecmp(c->name, "rtx") == 0)
            return c->pt;
    }
    return -1;
}

static void write_codec(GString *o, const struct sdp_codec *c, bool video)
{
    if (c->channels > 1)
        g_string_append_printf(o, "a=rtpmap:%d %s/%d/%d\r\n", c->pt, c->name, c->clock,
                               c->channels);
    else
        g_string_append_printf(o, "a=rtpmap:%d %s/%d\r\n", c->pt, c->name, c->clock);
    if (*c->fmtp)
        g_string_append_printf(o, "a=fmtp:%d %s\r\n", c->pt, c->fmtp);
    static const struct {
        unsigned bit;
        const char *text;
    } fbs[] = {{SDP_FB_NACK, "nack"},
               {SDP_FB_PLI, "nack pli"},
               {SDP_FB_FIR, "ccm fir"},
               {SDP_FB_REMB, "goog-remb"}};
    for (size_t i = 0; i < G_N_ELEMENTS(fbs); i++) {
        /* The server answers NACKs and PLIs for video and relays REMB. */
        if (video && (c->fb & fbs[i].bit))
            g_string_append_printf(o, "a=rtcp-fb:%d %s\r\n", c->pt, fbs[i].text);
    }
}

/* One accepted audio or video section, as the server writes it in an
 * offer or an answer. */
struct section {
    enum sdp_kind kind;
    const char *mid;
    enum sdp_dir dir;
    const char *setup;
    const struct sdp_codec *codec;
    int rtx; /* or -1 */
    const struct sdp_extmap *extmaps;
    size_t n_extmaps;
    const struct sdp_send *send; /* may be NULL */
};

static void write_section(GString *o, const struct section *sec, const char *ufrag, const char *pwd,
                          const char *fingerprint, const GPtrArray *candidates)
{
    const struct sdp_codec *c = sec->codec;
    g_string_append_printf(o, "m=%s 9 UDP/TLS/RTP/SAVPF %d",
                           sec->kind == SDP_AUDIO ? "audio" : "video", c->pt);
    if (sec->rtx >= 0)
        g_string_append_printf(o, " %d", sec->rtx);
    g_string_append_printf(o,
                           "\r\nc=IN IP4 0.0.0.0\r\na=mid:%s\r\na=%s\r\na=rtcp-mux\r\n"
                           "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
                           "a=fingerprint:sha-256 %s\r\na=setup:%s\r\n",
                           sec->mid, dir_names[sec->dir], ufrag, pwd, fingerprint, sec->setup);
    for (size_t k = 0; k < sec->n_extmaps; k++)
        g_string_append_printf(o, "a=extmap:%d %s\r\n", sec->extmaps[k].id, sec->extmaps[k].uri);
    write_codec(o, c, sec->kind == SDP_VIDEO);
    if (sec->rtx >= 0)
        g_string_append_printf(o, "a=rtpmap:%d rtx/90000\r\na=fmtp:%d apt=%d\r\n", sec->rtx,
                               sec->rtx, c->pt);
    bool sends = sec->dir == SDP_SENDRECV || sec->dir == SDP_SENDONLY;
    if (sends && sec->send && sec->send->ssrc) {
        g_string_append_printf(o, "a=msid:%s %s\r\n", sec->send->stream, sec->send->track);
        g_string_append_printf(o, "a=ssrc:%" PRIu32 " cname:%s\r\n", sec->send->ssrc,
                               sec->send->stream);
        g_string_append_printf(o, "a=ssrc:%" PRIu32 " msid:%s %s\r\n", sec->send->ssrc,
                               sec->send->stream, sec->send->track);
    }
    for (guint k = 0; candidates && k < candidates->len; k++)
        g_string_append_printf(o, "a=%s\r\n", (const char *)g_ptr_array_index(candidates, k));
    if (candidates)
        g_string_append(o, "a=end-of-candidates\r\n");
}

static void session_header(GString *o, uint64_t session_id)
{
    g_string_append_printf(o, "v=0\r\no=yjt %" PRIu64 " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
                           session_id);
}

char *sdp_answer(const struct sdp *offer, const struct sdp_answer_params *p, const char **why)
{
    *why = NULL;
    GString *o = g_string_sized_new(2048);
    session_header(o, p->session_id);
    GString *bundle = g_string_new("a=group:BUNDLE");
    GString *body = g_string_sized_new(2048);
    int accepted = 0;
    for (guint i = 0; i < offer->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(offer->media, i);
        const struct sdp_codec *c = m->kind == SDP_OTHER ? NULL
                                    : p->pts             ? codec_by_pt(m, p->pts[i])
                                                         : sdp_pick_codec(m);
        if (!c || !*m->mid || !m->rtcp_mux || !*m->ice_ufrag || !*m->ice_pwd || !*m->fp ||
            g_ascii_strcasecmp(m->fp_alg, "sha-256") != 0 || m->port == 0) {
            /* Rejected: port 0, with the offer's media, protocol and
             * format (RFC 8829 5.3.1). */
            g_string_append_printf(body, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n", m->name, m->proto,
                                   *m->fmt0 ? m->fmt0 : "0");
            if (*m->mid)
                g_string_append_printf(body, "a=mid:%s\r\n", m->mid);
            g_string_append(body, "a=inactive\r\n");
            continue;
        }
        struct sdp_extmap ext[G_N_ELEMENTS(kept_extmaps)];
        size_t n_ext = 0;
        for (size_t k = 0; k < G_N_ELEMENTS(kept_extmaps); k++) {
            int id = sdp_extmap_id(m, kept_extmaps[k]);
            if (id) {
                ext[n_ext].id = id;
                g_strlcpy(ext[n_ext].uri, kept_extmaps[k], sizeof(ext[n_ext].uri));
                n_ext++;
            }
        }
        enum sdp_dir dir = mirrored(m->dir);
        if (p->no_receive)
            dir = dir == SDP_SENDRECV ? SDP_SENDONLY : dir == SDP_RECVONLY ? SDP_INACTIVE : dir;
        struct section sec = {m->kind,   m->mid, dir,
                              "passive", c,      m->kind == SDP_VIDEO ? rtx_for(m, c->pt) : -1,
                              ext,       n_ext,  p->send && i < p->n_send ? &p->send[i] : NULL};
        write_section(body, &sec, p->ice_ufrag, p->ice_pwd, p->fingerprint, p->candidates);
        g_string_append_printf(bundle, " %s", m->mid);
        accepted++;
    }
    char *out = NULL;
    if (!accepted) {
        *why = "no audio or video the server can take (Opus, VP8 or H.264 constrained baseline"
               " with rtcp-mux, ICE credentials and a sha-256 fingerprint)";
    } else {
        if (offer->bundle)
            g_string_append_printf(o, "%s\r\n", bundle->str);
        g_string_append(o, "a=msid-semantic: WMS\r\n");
        g_string_append(o, body->str);
        out = g_strdup(o->str);
    }
    g_string_free(o, TRUE);
    g_string_free(bundle, TRUE);
    g_string_free(body, TRUE);
    return out;
}

char *sdp_offer(const struct sdp_offer_params *p)
{
    GString *o = g_string_sized_new(2048);
    session_header(o, p->session_id);
    g_string_append(o, "a=group:BUNDLE");
    for (size_t i = 0; i < p->n_sections; i++)
        g_string_append_printf(o, " %s", p->sections[i].mid);
    g_string_append(o, "\r\na=msid-semantic: WMS\r\n");
    for (size_t i = 0; i < p->n_sections; i++) {
        const struct sdp_offer_section *os = &p->sections[i];
        struct sdp_extmap ext[G_N_ELEMENTS(kept_extmaps)];
        size_t n_ext = 0;
        for (size_t k = 0; k < G_N_ELEMENTS(kept_extmaps); k++) {
            if (os->extmap_ids[k]) {
                ext[n_ext].id = os->extmap_ids[k];
                g_strlcpy(ext[n_ext].uri, kept_extmaps[k], sizeof(ext[n_ext].uri));
                n_ext++;
            }
        }
        struct section sec = {os->kind, os->mid, os->dir, "actpass", &os->codec,
                              -1,       ext,     n_ext,   &os->send};
        write_section(o, &sec, p->ice_ufrag, p->ice_pwd, p->fingerprint, p->candidates);
    }
    return g_string_free(o, FALSE);
}

size_t sdp_kept_extmaps(const char *const **uris)
{
    *uris = kept_extmaps;
    return G_N_ELEMENTS(kept_extmaps);
}
