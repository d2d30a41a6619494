/* Recordings written from RTP packets and read back byte by byte: VP8 in
 * IVF (frames rebuilt from several packets, reordering undone, a loss
 * dropping everything up to the next key frame, which is asked for; the
 * header's duration kept up to date, so a file whose writer died without
 * closing it still says how long it is), Opus in Ogg (headers, one packet
 * a page, granule positions, page CRCs), H.264 in Annex-B (single NAL
 * units, STAP-A and FU-A). */
#include "media/record.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = g_dir_make_tmp("yjt-rec-XXXXXX", NULL);
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, n, NULL);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(dir);
    g_free(dir);
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* An RTP packet: header, then payload. */
static size_t rtp(uint8_t *buf, uint8_t pt, uint16_t seq, uint32_t ts, bool marker,
                  const uint8_t *payload, size_t n)
{
    buf[0] = 0x80;
    buf[1] = (uint8_t)(pt | (marker ? 0x80 : 0));
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    buf[4] = (uint8_t)(ts >> 24);
    buf[5] = (uint8_t)(ts >> 16);
    buf[6] = (uint8_t)(ts >> 8);
    buf[7] = (uint8_t)ts;
    memset(buf + 8, 0x11, 4);
    memcpy(buf + 12, payload, n);
    return 12 + n;
}

static void feed(struct media_recorder *r, const uint8_t *pkt, size_t len)
{
    struct rtp_header h;
    assert_int_equal(rtp_parse(pkt, len, &h), 0);
    media_recorder_packet(r, pkt, len, &h);
}

/* VP8 frame i (key or not) as two packets: descriptor with S on the
 * first, marker on the second. Its bytes: a 10-byte frame header then i. */
static void vp8_frame(uint8_t pkts[2][64], size_t lens[2], int i, bool key, uint16_t seq)
{
    uint8_t first[1 + 10], second[1 + 4];
    first[0] = 0x10; /* S, partition 0 */
    uint8_t tag[10] = {key ? 0x00 : 0x01, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00};
    memcpy(first + 1, tag, 10);
    second[0] = 0x00;
    memset(second + 1, i, 4);
    uint32_t ts = 1000u + 3000u * (uint32_t)i;
    lens[0] = rtp(pkts[0], 96, seq, ts, false, first, sizeof(first));
    lens[1] = rtp(pkts[1], 96, (uint16_t)(seq + 1), ts, true, second, sizeof(second));
}

/* The IVF frames of a file: their pts and their last byte (the frame
 * number). */
static int ivf_read(const char *path, uint32_t *duration, uint64_t *pts, int *num, int max)
{
    gchar *data;
    gsize len;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    const uint8_t *p = (const uint8_t *)data;
    assert_true(len >= 32);
    assert_memory_equal(p, "DKIF", 4);
    assert_memory_equal(p + 8, "VP80", 4);
    assert_int_equal(p[12] | p[13] << 8, 320); /* from the key frame */
    assert_int_equal(p[14] | p[15] << 8, 240);
    assert_int_equal(rd32(p + 16), 1000);
    *duration = rd32(p + 24);
    int n = 0;
    for (size_t off = 32; off + 12 <= len && n < max; n++) {
        uint32_t size = rd32(p + off);
        assert_true(off + 12 + size <= len);
        pts[n] = rd64(p + off + 4);
        num[n] = p[off + 12 + size - 1];
        off += 12 + size;
    }
    g_free(data);
    return n;
}

static void test_vp8_ivf_reorder_and_loss(void **state)
{
    (void)state;
    char *path = g_build_filename(dir, "v.ivf", NULL);
    const char *why = NULL;
    struct media_recorder *r = media_recorder_open(path, MEDIA_REC_VP8, &why);
    assert_non_null(r);
    assert_null(media_recorder_open(path, MEDIA_REC_VP8, &why)); /* never overwritten */
    assert_true(media_recorder_take_keyframe_request(r));        /* it starts with one */
    uint8_t pk[2][64];
    size_t ln[2];
    /* An interframe before any key frame: not written. */
    vp8_frame(pk, ln, 99, false, 60000);
    feed(r, pk[0], ln[0]);
    feed(r, pk[1], ln[1]);
    /* Frames 0..39, key at 0 and 20; frame 3's packets swapped; frame 10's
     * second packet lost. */
    uint16_t seq = 60002;
    for (int i = 0; i < 40; i++, seq += 2) {
        vp8_frame(pk, ln, i, i == 0 || i == 20, seq);
        if (i == 3) {
            feed(r, pk[1], ln[1]);
            feed(r, pk[0], ln[0]);
        } else {
            feed(r, pk[0], ln[0]);
            if (i != 10)
                feed(r, pk[1], ln[1]);
        }
    }
    media_recorder_close(r);
    uint32_t duration;
    uint64_t pts[64];
    int num[64];
    int n = ivf_read(path, &duration, pts, num, 64);
    /* 0..9 (the loss broke 10; 11..19 refer to it), then 20..39. */
    assert_int_equal(n, 30);
    for (int k = 0; k < n; k++) {
        int want = k < 10 ? k : k + 10;
        assert_int_equal(num[k], want);
        assert_int_equal(pts[k], (uint64_t)want * 3000 / 90); /* ms from the first */
    }
    assert_int_equal(duration, 39 * 3000 / 90 + 33);
    g_free(path);
}

/* A writer that dies without closing leaves a playable file: every whole
 * frame is there and the header says how long the first second-steps
 * were. */
static void test_ivf_after_a_crash(void **state)
{
    (void)state;
    char *path = g_build_filename(dir, "crash.ivf", NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *why = NULL;
        struct media_recorder *r = media_recorder_open(path, MEDIA_REC_VP8, &why);
        uint8_t pk[2][64];
        size_t ln[2];
        for (int i = 0; i < 100; i++) { /* 3.3 s */
            vp8_frame(pk, ln, i, i % 50 == 0, (uint16_t)(2 * i));
            feed(r, pk[0], ln[0]);
            feed(r, pk[1], ln[1]);
        }
        _exit(0); /* no close */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    uint32_t duration;
    uint64_t pts[128];
    int num[128];
    int n = ivf_read(path, &duration, pts, num, 128);
    assert_int_equal(n, 100);
    assert_true(duration >= 3000 && duration <= 3400);
    g_free(path);
}

static void test_opus_ogg(void **state)
{
    (void)state;
    char *path = g_build_filename(dir, "a.ogg", NULL);
    const char *why = NULL;
    struct media_recorder *r = media_recorder_open(path, MEDIA_REC_OPUS, &why);
    assert_false(media_recorder_take_keyframe_request(r));
    uint8_t buf[64];
    uint8_t payload[8] = {0xfc, 1, 2, 3, 4, 5, 6, 7}; /* CELT FB 20 ms, stereo, one frame */
    for (int i = 0; i < 50; i++) {
        if (i == 7)
            continue; /* lost */
        payload[1] = (uint8_t)i;
        size_t n = rtp(buf, 111, (uint16_t)(65500 + i), 5000u + 960u * (uint32_t)i, false, payload,
                       sizeof(payload));
        feed(r, buf, n);
    }
    uint64_t frames, ms;
    media_recorder_progress(r, &frames, &ms);
    media_recorder_close(r);
    assert_int_equal(frames, 49);
    assert_int_equal(ms, 49 * 20);
    gchar *data;
    gsize len;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    const uint8_t *p = (const uint8_t *)data;
    int pages = 0;
    uint64_t last_granule = 0;
    for (size_t off = 0; off < len; pages++) {
        assert_memory_equal(p + off, "OggS", 4);
        unsigned segs = p[off + 26];
        size_t body = 0;
        for (unsigned k = 0; k < segs; k++)
            body += p[off + 27 + k];
        uint64_t granule = rd64(p + off + 6);
        if (pages == 0) {
            assert_int_equal(p[off + 5], 0x02); /* beginning of stream */
            assert_memory_equal(p + off + 27 + segs, "OpusHead", 8);
        } else if (pages == 1) {
            assert_memory_equal(p + off + 27 + segs, "OpusTags", 8);
        } else {
            int i = p[off + 27 + segs + 1];
            assert_int_equal(granule, 960u * (uint64_t)(i + 1));
            assert_true(granule > last_granule);
            last_granule = granule;
        }
        assert_int_equal(rd32(p + off + 18), (uint32_t)pages); /* page numbers */
        off += 27 + segs + body;
        assert_true(off <= len);
    }
    assert_int_equal(pages, 2 + 49);
    assert_int_equal(last_granule, 960u * 50);
    g_free(data);
    g_free(path);
}

static void test_h264_annexb(void **state)
{
    (void)state;
    char *path = g_build_filename(dir, "v.h264", NULL);
    const char *why = NULL;
    struct media_recorder *r = media_recorder_open(path, MEDIA_REC_H264, &why);
    uint8_t buf[128];
    /* Access unit 1: STAP-A with SPS and PPS, then an IDR in two FU-A. */
    const uint8_t stap[] = {0x18, 0, 3, 0x67, 0xaa, 0xbb, 0, 2, 0x68, 0xcc};
    const uint8_t fu1[] = {0x7c, 0x85, 1, 2, 3}, fu2[] = {0x7c, 0x45, 4, 5};
    feed(r, buf, rtp(buf, 102, 1, 90000, false, stap, sizeof(stap)));
    feed(r, buf, rtp(buf, 102, 2, 90000, false, fu1, sizeof(fu1)));
    feed(r, buf, rtp(buf, 102, 3, 90000, true, fu2, sizeof(fu2)));
    /* Access unit 2: one non-IDR slice. */
    const uint8_t slice[] = {0x41, 9, 9};
    feed(r, buf, rtp(buf, 102, 4, 93000, true, slice, sizeof(slice)));
    media_recorder_close(r);
    gchar *data;
    gsize len;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    static const uint8_t want[] = {0, 0, 0,    1, 0x67, 0xaa, 0xbb, 0, 0, 0, 1, 0x68, 0xcc, 0, 0,
                                   0, 1, 0x65, 1, 2,    3,    4,    5, 0, 0, 0, 1,    0x41, 9, 9};
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(data, want, sizeof(want));
    g_free(data);
    g_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vp8_ivf_reorder_and_loss),
        cmocka_unit_test(test_ivf_after_a_crash),
        cmocka_unit_test(test_opus_ogg),
        cmocka_unit_test(test_h264_annexb),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
