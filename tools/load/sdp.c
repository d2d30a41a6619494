/*
 * sdp.c: SDP texts for yjt-callbench's call.invite and call.accept.
 *
 * yjtd relays SDP without parsing it, so any text would do, but its size is
 * what the server copies, stores and forwards, so the benchmark sends what
 * a browser sends: a Chrome-style BUNDLE offer with an audio section (Opus
 * and friends) and a video section whose codec list (VP8, VP9, H264
 * profiles, AV1, each with RTX) grows until the text reaches the wanted
 * size, with per-call ICE credentials, DTLS fingerprint, stream ids and
 * SSRCs.  Every placeholder has a fixed width, so the size does not depend
 * on the seed.  The text comes out already escaped for a JSON string.
 */

#include "callbench.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Placeholders: $S session id, $U ice-ufrag, $P ice-pwd, $F fingerprint,
 * $M stream id, $A audio track, $V video track, $a $v $r SSRCs, $C cname,
 * $R the setup role, $T the video payload types. */

static const char *const head[] = {
    "v=0",
    "o=- $S 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS $M",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:$U",
    "a=ice-pwd:$P",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 $F",
    "a=setup:$R",
    "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendrecv",
    "a=msid:$M $A",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:$a cname:$C",
    "a=ssrc:$a msid:$M $A",
    "m=video 9 UDP/TLS/RTP/SAVPF$T",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:$U",
    "a=ice-pwd:$P",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 $F",
    "a=setup:$R",
    "a=mid:1",
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:13 urn:3gpp:video-orientation",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
    "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendrecv",
    "a=msid:$M $V",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    NULL,
};

static const char *const tail[] = {
    "a=ssrc-group:FID $v $r", "a=ssrc:$v cname:$C",   "a=ssrc:$v msid:$M $V",
    "a=ssrc:$r cname:$C",     "a=ssrc:$r msid:$M $V", NULL,
};

/* One video codec with its RTX companion. */
struct codec {
    int pt;
    const char *name;
    const char *fmtp; /* NULL: none */
};

static const struct codec codecs[] = {
    {96, "VP8", NULL},
    {98, "VP9", "profile-id=0"},
    {100, "VP9", "profile-id=2"},
    {102, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},
    {104, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
    {106, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"},
    {108, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"},
    {45, "AV1", "level-idx=5;profile=0;tier=0"},
    {112, "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"},
    {114, "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"},
    {116, "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f"},
    {118, "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=64001f"},
};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* Per-call values, each of a fixed width. */
struct vals {
    char session[20], ufrag[5], pwd[25], fp[96], stream[37], atrack[37], vtrack[37];
    char ssrc_a[11], ssrc_v[11], ssrc_r[11], cname[17];
    const char *role;
    char pts[NCODECS * 8 + 1];
};

/* Writer: counts plain bytes, and copies escaped text while room is left. */
struct out {
    char *buf;
    size_t cap, len, plain;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n, size_t plain)
{
    o->plain += plain;
    if (!o->buf || o->overflow)
        return;
    if (o->len + n >= o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_line(struct out *o, const char *tmpl, const struct vals *v)
{
    for (const char *p = tmpl; *p; p++) {
        const char *s = NULL;
        if (*p == '$' && p[1]) {
            switch (*++p) {
            case 'S':
                s = v->session;
                break;
            case 'U':
                s = v->ufrag;
                break;
            case 'P':
                s = v->pwd;
                break;
            case 'F':
                s = v->fp;
                break;
            case 'M':
                s = v->stream;
                break;
            case 'A':
                s = v->atrack;
                break;
            case 'V':
                s = v->vtrack;
                break;
            case 'a':
                s = v->ssrc_a;
                break;
            case 'v':
                s = v->ssrc_v;
                break;
            case 'r':
                s = v->ssrc_r;
                break;
            case 'C':
                s = v->cname;
                break;
            case 'R':
                s = v->role;
                break;
            case 'T':
                s = v->pts;
                break;
            default:
                s = "";
            }
            put(o, s, strlen(s), strlen(s));
        } else {
            put(o, p, 1, 1);
        }
    }
    put(o, "\\r\\n", 4, 2); /* CRLF, escaped for JSON */
}

static void put_codec(struct out *o, const struct codec *c, const struct vals *v)
{
    static const char *const fb[] = {"goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"};
    char line[160];

    snprintf(line, sizeof(line), "a=rtpmap:%d %s/90000", c->pt, c->name);
    put_line(o, line, v);
    for (size_t i = 0; i < sizeof(fb) / sizeof(fb[0]); i++) {
        snprintf(line, sizeof(line), "a=rtcp-fb:%d %s", c->pt, fb[i]);
        put_line(o, line, v);
    }
    if (c->fmtp) {
        snprintf(line, sizeof(line), "a=fmtp:%d %s", c->pt, c->fmtp);
        put_line(o, line, v);
    }
    snprintf(line, sizeof(line), "a=rtpmap:%d rtx/90000", c->pt + 1);
    put_line(o, line, v);
    snprintf(line, sizeof(line), "a=fmtp:%d apt=%d", c->pt + 1, c->pt);
    put_line(o, line, v);
}

static uint64_t next_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rand_chars(char *dst, size_t n, uint64_t *s)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i++)
        dst[i] = alnum[next_rand(s) % 64];
    dst[n] = '\0';
}

static void rand_uuid(char *dst, uint64_t *s)
{
    uint64_t a = next_rand(s), b = next_rand(s);
    snprintf(dst, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffffu, (unsigned)a & 0xfffu,
             0x8000u | ((unsigned)(b >> 48) & 0x3fffu),
             (unsigned long long)(b & 0xffffffffffffull));
}

static void rand_ssrc(char *dst, uint64_t *s)
{
    /* ten digits whatever the draw */
    snprintf(dst, 11, "%lu", 1000000000ul + (unsigned long)(next_rand(s) % 3000000000ul));
}

static void fill_vals(struct vals *v, bool offer, uint64_t seed)
{
    uint64_t s = seed;
    char *p = v->fp;

    snprintf(v->session, sizeof(v->session), "%019llu",
             (unsigned long long)(next_rand(&s) % 9000000000000000000ull) + 1000000000000000000ull);
    rand_chars(v->ufrag, 4, &s);
    rand_chars(v->pwd, 24, &s);
    for (int i = 0; i < 32; i++)
        p += sprintf(p, i ? ":%02X" : "%02X", (unsigned)(next_rand(&s) & 0xff));
    rand_uuid(v->stream, &s);
    rand_uuid(v->atrack, &s);
    rand_uuid(v->vtrack, &s);
    rand_ssrc(v->ssrc_a, &s);
    rand_ssrc(v->ssrc_v, &s);
    rand_ssrc(v->ssrc_r, &s);
    rand_chars(v->cname, 16, &s);
    v->role = offer ? "actpass" : "active";
}

/* Writes the SDP with the first ncodecs video codecs. */
static void build(struct out *o, const struct vals *v0, size_t ncodecs)
{
    struct vals v = *v0;
    char *p = v.pts;

    for (size_t i = 0; i < ncodecs; i++)
        p += sprintf(p, " %d %d", codecs[i].pt, codecs[i].pt + 1);
    for (size_t i = 0; head[i]; i++)
        put_line(o, head[i], &v);
    for (size_t i = 0; i < ncodecs; i++)
        put_codec(o, &codecs[i], &v);
    for (size_t i = 0; tail[i]; i++)
        put_line(o, tail[i], &v);
}

/* How many video codecs bring the text closest to target without going
 * under it (all of them if even that is short); plain size in *plain. */
static size_t codecs_for(bool offer, int target, size_t *plain)
{
    struct vals v;
    size_t n;

    fill_vals(&v, offer, 1);
    for (n = 1; n <= NCODECS; n++) {
        struct out o = {0};
        build(&o, &v, n);
        *plain = o.plain;
        if ((long)o.plain >= target)
            break;
    }
    return n > NCODECS ? NCODECS : n;
}

size_t cb_sdp_plain_len(bool offer, int target)
{
    size_t plain = 0;
    codecs_for(offer, target, &plain);
    return plain;
}

size_t cb_sdp_json(char *out, size_t cap, bool offer, int target, uint64_t seed)
{
    static int cached_target[2] = {-1, -1};
    static size_t cached_n[2];
    struct vals v;
    struct out o = {.buf = out, .cap = cap};
    size_t plain;

    if (cached_target[offer] != target) {
        cached_n[offer] = codecs_for(offer, target, &plain);
        cached_target[offer] = target;
    }
    fill_vals(&v, offer, seed);
    build(&o, &v, cached_n[offer]);
    if (o.overflow || !out)
        return 0;
    out[o.len] = '\0';
    return o.len;
}
