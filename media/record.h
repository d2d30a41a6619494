/* Recording one forwarded stream to a file ordinary tools play: VP8 to
 * IVF, H.264 to an Annex-B byte stream, Opus to Ogg (RFC 7845).
 *
 * Packets are put back in order (a window of 64 packets or 300 ms) before
 * they are written; a loss is skipped, and for video the frame it broke is
 * dropped and nothing is written until the next key frame (the recorder
 * asks for one). Each frame or page goes to the file as soon as it is
 * whole, and the IVF header's duration is brought up to date every second
 * of media, so a recording cut short by a crash plays up to the crash. */
#ifndef YJT_MEDIA_RECORD_H
#define YJT_MEDIA_RECORD_H

#include "media/rtp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum media_rec_codec { MEDIA_REC_VP8, MEDIA_REC_H264, MEDIA_REC_OPUS };

struct media_recorder;

/* The codec of an SDP codec name ("VP8", "H264", "opus"), or -1. */
int media_rec_codec_of(const char *name);
/* The file extension for a codec: "ivf", "h264" or "ogg". */
const char *media_rec_ext(enum media_rec_codec c);

/* Creates path (it must not exist). NULL with *why (static text). */
struct media_recorder *media_recorder_open(const char *path, enum media_rec_codec codec,
                                           const char **why);
/* The same on an open file (closed by media_recorder_close). */
struct media_recorder *media_recorder_open_fd(int fd, enum media_rec_codec codec);
/* One RTP packet of the stream (rtp_parse() accepted it). */
void media_recorder_packet(struct media_recorder *r, const uint8_t *pkt, size_t len,
                           const struct rtp_header *h);
/* True once after a loss broke a video frame: a key frame is needed. */
bool media_recorder_take_keyframe_request(struct media_recorder *r);
/* What was written: frames (or Opus packets), and the time they span in
 * milliseconds. */
void media_recorder_progress(const struct media_recorder *r, uint64_t *frames, uint64_t *ms);
/* Writes what is held, finishes the file and frees r. */
void media_recorder_close(struct media_recorder *r);

#endif
