/*
 * rawrx.c: reading logged-in connections' WebSocket frames without lws (see
 * rawrx.h).
 *
 * The descriptors are in one epoll set of our own, and the loop watches
 * only that set's descriptor: a turn reads each ready socket once (level
 * triggered, so what is left is read at the next) into one buffer and walks
 * its frames there. The bytes of a frame cut by the end of a read wait in a
 * buffer of the connection's own until the rest comes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "rawrx.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BYTES (256 * 1024)
#define EVENTS 256
#define PASSES 16                     /* epoll rounds per turn at most: the loop's timers run too */
#define FRAME_MAX (16u * 1024 * 1024) /* a longer one is taken as garbage */

struct rx_conn {
    void *conn;          /* NULL: the slot is free */
    unsigned char *tail; /* the start of a frame not wholly read yet */
    size_t tail_len;
    bool closing;  /* our close frame is sent: the server closes the socket */
    unsigned code; /* the code of the server's close frame */
};

struct rawrx {
    uv_poll_t poll;
    int ep;
    struct rx_conn *by_fd; /* indexed by descriptor */
    int nfds;
    rawrx_text_cb on_text;
    rawrx_gone_cb on_gone;
    void *ud;
    unsigned skipped;
    unsigned char *buf; /* READ_BYTES, then room for a tail in front */
};

/* Writes a masked control frame (a client's frames are masked) of op with
 * payload p[0..n), n <= 125; a full socket drops it (a pong missed is a
 * ping the server repeats). */
static void send_control(int fd, unsigned op, const unsigned char *p, size_t n)
{
    unsigned char f[2 + 4 + 125];
    uint32_t mask = (uint32_t)random();
    f[0] = (unsigned char)(0x80 | op);
    f[1] = (unsigned char)(0x80 | n);
    memcpy(f + 2, &mask, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = p[i] ^ f[2 + i % 4];
    ssize_t w = send(fd, f, 6 + n, MSG_NOSIGNAL); /* a peer gone: seen at the next read */
    (void)w;
}

static void forget(struct rawrx *r, int fd)
{
    struct rx_conn *c = &r->by_fd[fd];
    epoll_ctl(r->ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(c->tail);
    memset(c, 0, sizeof(*c));
}

static void gone(struct rawrx *r, int fd, unsigned code)
{
    void *conn = r->by_fd[fd].conn;
    forget(r, fd);
    r->on_gone(conn, code, r->ud);
}

/* Walks the frames in p[0..n) of fd. Returns how many bytes were used (the
 * rest is an unfinished frame), or -1 once the connection is gone. */
static long walk(struct rawrx *r, int fd, unsigned char *p, size_t n)
{
    size_t at = 0;
    while (n - at >= 2) {
        unsigned char *h = p + at;
        unsigned op = h[0] & 0x0f;
        size_t hdr = 2;
        uint64_t len = h[1] & 0x7f;
        if (h[1] & 0x80) { /* a server's frames are never masked */
            gone(r, fd, 0);
            return -1;
        }
        if (len == 126) {
            if (n - at < 4)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
            hdr = 4;
        } else if (len == 127) {
            if (n - at < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hdr = 10;
        }
        if (len > FRAME_MAX) {
            gone(r, fd, 0);
            return -1;
        }
        if (n - at - hdr < len)
            break;
        unsigned char *payload = h + hdr;
        at += hdr + (size_t)len;
        if (op == 0x1 && (h[0] & 0x80)) {
            r->on_text(r->by_fd[fd].conn, (const char *)payload, (size_t)len, r->ud);
            if (!r->by_fd[fd].conn)
                return -1;      /* dropped by the callback */
        } else if (op == 0x8) {
            struct rx_conn *c = &r->by_fd[fd];
            c->code = len >= 2 ? (unsigned)(payload[0] << 8 | payload[1]) : 0;
            if (c->closing) /* the answer to ours: the server closes next */
                continue;
            send_control(fd, 0x8, payload, len >= 2 ? 2 : 0);
            gone(r, fd, c->code);
            return -1;
        } else if (op == 0x9) {
            send_control(fd, 0xA, payload, len <= 125 ? (size_t)len : 0);
        } else if (op != 0xA) {
            r->skipped++;
        }
    }
    return (long)at;
}

/* Reads fd once and handles the frames completed. */
static void read_one(struct rawrx *r, int fd)
{
    struct rx_conn *c = &r->by_fd[fd];
    /* a tail goes in front of what is read, so the frame it starts is
     * whole in one place */
    unsigned char *start = r->buf + FRAME_MAX + 14 - c->tail_len;
    ssize_t got = read(fd, r->buf + FRAME_MAX + 14, READ_BYTES);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        gone(r, fd, c->code);
        return;
    }
    if (got < 0)
        return;
    if (c->tail_len)
        memcpy(start, c->tail, c->tail_len);
    size_t n = c->tail_len + (size_t)got;
    long used = walk(r, fd, start, n);
    if (used < 0)
        return;
    c = &r->by_fd[fd]; /* the table may have grown in a callback */
    size_t left = n - (size_t)used;
    if (left) {
        unsigned char *t = realloc(c->tail, left);
        if (!t) {
            gone(r, fd, 0);
            return;
        }
        memmove(t, start + used, left);
        c->tail = t;
    } else {
        free(c->tail);
        c->tail = NULL;
    }
    c->tail_len = left;
}

static void on_ready(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct rawrx *r = h->data;
    struct epoll_event ev[EVENTS];
    int n, passes = 0;
    do {
        n = epoll_wait(r->ep, ev, EVENTS, 0);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd >= 0 && fd < r->nfds && r->by_fd[fd].conn)
                read_one(r, fd);
        }
    } while (n == EVENTS && ++passes < PASSES);
}

struct rawrx *rawrx_new(uv_loop_t *loop, rawrx_text_cb on_text, rawrx_gone_cb on_gone, void *ud)
{
    struct rawrx *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->on_text = on_text;
    r->on_gone = on_gone;
    r->ud = ud;
    /* room for the longest tail (a frame's header and FRAME_MAX) before the
     * bytes read */
    r->buf = malloc(FRAME_MAX + 14 + READ_BYTES);
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!r->buf || r->ep < 0 || uv_poll_init(loop, &r->poll, r->ep) != 0) {
        if (r->ep >= 0)
            close(r->ep);
        free(r->buf);
        free(r);
        return NULL;
    }
    r->poll.data = r;
    uv_poll_start(&r->poll, UV_READABLE, on_ready);
    return r;
}

int rawrx_take(struct rawrx *r, int fd, void *conn)
{
    if (fd < 0)
        return -1;
    if (fd >= r->nfds) {
        int n = fd + 1024;
        struct rx_conn *t = realloc(r->by_fd, (size_t)n * sizeof(*t));
        if (!t) {
            close(fd);
            return -1;
        }
        memset(t + r->nfds, 0, (size_t)(n - r->nfds) * sizeof(*t));
        r->by_fd = t;
        r->nfds = n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    r->by_fd[fd] = (struct rx_conn){.conn = conn};
    return 0;
}

void rawrx_drop(struct rawrx *r, int fd)
{
    if (fd >= 0 && fd < r->nfds && r->by_fd[fd].conn)
        forget(r, fd);
}

void rawrx_close(struct rawrx *r, int fd)
{
    if (fd < 0 || fd >= r->nfds || !r->by_fd[fd].conn || r->by_fd[fd].closing)
        return;
    static const unsigned char normal[2] = {0x03, 0xe8}; /* 1000 */
    r->by_fd[fd].closing = true;
    send_control(fd, 0x8, normal, sizeof(normal));
}

unsigned rawrx_skipped(const struct rawrx *r)
{
    return r ? r->skipped : 0;
}

static void on_closed(uv_handle_t *h)
{
    struct rawrx *r = h->data;
    close(r->ep);
    free(r->by_fd);
    free(r->buf);
    free(r);
}

void rawrx_free(struct rawrx *r)
{
    if (!r)
        return;
    for (int fd = 0; fd < r->nfds; fd++)
        rawrx_drop(r, fd);
    uv_close((uv_handle_t *)&r->poll, on_closed);
}
