/*
 * rawrx.h: reading connections' WebSocket frames without lws, from their
 * login on.
 *
 * lws's client parser takes every received byte through its state machine
 * one at a time: at a few hundred thousand pushes a second that was most of
 * a core, on the machine the measured server shares with its clients. With
 * --raw-rx a worker hands each connection to this reader once its login is
 * written (lws keeps the connection, with its reading turned off, and closes it
 * at the end): frames are found from their headers, text messages passed
 * on whole, pings answered, and a close or hang-up reported.
 */
#ifndef YJT_LOAD_RAWRX_H
#define YJT_LOAD_RAWRX_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct rawrx;

/* A whole text message of conn. */
typedef void (*rawrx_text_cb)(void *conn, const char *data, size_t len, void *ud);
/* conn's reading ended: the server closed (the code of its close frame,
 * or 0 if none), after rawrx_close() or on its own, or the socket failed.
 * Its descriptor is closed already. */
typedef void (*rawrx_gone_cb)(void *conn, unsigned code, void *ud);

struct rawrx *rawrx_new(uv_loop_t *loop, rawrx_text_cb on_text, rawrx_gone_cb on_gone, void *ud);
/* Reads fd (a descriptor of its own, which it closes) for conn from now on.
 * -1 if it cannot (fd is closed then too). */
int rawrx_take(struct rawrx *r, int fd, void *conn);
/* Starts the closing handshake: a close frame goes out, and on_gone is
 * told once the server has answered and closed the socket (it closes
 * first, so the wait before its address can be used again is its own). */
void rawrx_close(struct rawrx *r, int fd);
/* Stops reading fd and closes it. */
void rawrx_drop(struct rawrx *r, int fd);
/* Frames passed over (fragments, binary): nothing the server sends. */
unsigned rawrx_skipped(const struct rawrx *r);
/* Drops every descriptor still read; the handle closes with the loop's next
 * turn. */
void rawrx_free(struct rawrx *r);

#endif
