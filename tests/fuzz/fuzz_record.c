/* libFuzzer target: the recorder's depacketizers (VP8 descriptors, H.264
 * single NAL units, STAP-A and FU-A, Opus TOCs) and its reordering, on
 * arbitrary packet sequences. The first byte picks the codec; then each
 * packet is a 16-bit length and that many bytes, given to the recorder
 * when it parses as RTP. Output goes to /dev/null. */
#include "media/record.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        abort();
    struct media_recorder *r = media_recorder_open_fd(fd, (enum media_rec_codec)(data[0] % 3));
    size_t off = 1;
    while (off + 2 <= size) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        struct rtp_header h;
        if (rtp_parse(data + off, len, &h) == 0)
            media_recorder_packet(r, data + off, len, &h);
        media_recorder_take_keyframe_request(r);
        off += len;
    }
    uint64_t frames, ms;
    media_recorder_progress(r, &frames, &ms);
    media_recorder_close(r);
    return 0;
}
