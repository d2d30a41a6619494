/*
 * calls.h: what the two halves of a yjt-callbench worker share.
 *
 * calls.c is the call flow of a caller/callee pair (the requests it sends,
 * the replies and events it takes, its timers and the samples it records);
 * callworker.c is the worker process around it (libwebsockets on libuv,
 * connecting and logging in, the pacer, the end of the run and the report
 * to the parent).  Both work on the one struct worker of the process.
 */

#ifndef YJT_CALLS_H
#define YJT_CALLS_H

#include "callbench.h"
#include "load.h" /* load_mono_ns, NS_PER_S */

#include <jansson.h>
#include <libwebsockets.h>
#include <uv.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* limits and timings */
#define SUBPROTOCOL "yjt.v1"
#define RX_BUFFER_SIZE 8192
#define MAX_MESSAGE (256 * 1024)
#define TX_CAP (LWS_PRE + 64 * 1024)
#define CONNECT_INFLIGHT 128
#define ERR_SLOTS 32
#define ID_LEN 64
#define COOLDOWN_MS 2000
#define HANGUP_TIMEOUT_MS 5000
#define DRAIN_EXTRA_NS (6 * NS_PER_S)
#define ORPHAN_WAIT_NS (30 * NS_PER_S)

enum op { OP_NONE, OP_LOGIN, OP_INVITE, OP_ACCEPT, OP_HANGUP };
#define OP_BITS 3 /* request id = seq << OP_BITS | op */

enum conn_state { C_IDLE, C_CONNECTING, C_LOGIN, C_READY, C_DEAD };

struct pair;

/* One WebSocket connection: a pair's caller or callee. */
struct conn {
    struct lws *wsi;
    struct pair *pair;
    char *rx; /* a message arriving in pieces */
    uint32_t rx_len, rx_cap;
    uint8_t ops[4]; /* requests waiting for WRITEABLE */
    uint8_t op_head, op_n;
    uint8_t state;
    bool is_callee;
    bool peer_closed;
};

enum pair_state { P_LOGIN, P_FREE, P_SETUP, P_UP, P_HANGUP, P_COOLDOWN, P_DEAD };

/* What has happened in a pair's current set-up (struct pair.flags). */
enum {
    F_INVITE_SENT = 1 << 0,
    F_REPLY = 1 << 1,
    F_INCOMING = 1 << 2,
    F_ACCEPT_SENT = 1 << 3,
    F_ACCEPT_OK = 1 << 4,
    F_ACCEPTED = 1 << 5,
    F_HANGUP_OK = 1 << 6,
    F_CALLER_ENDED = 1 << 7,
    F_CALLEE_ENDED = 1 << 8,
};

/* A caller and a callee, and their current call. */
struct pair {
    struct conn caller, callee;
    uv_timer_t timer; /* set-up timeout, hold, hang-up timeout or cool-down */
    int global;       /* user names <prefix>g<global> and <prefix>c<global> */
    uint32_t seq;     /* set-up attempt, in request ids */
    uint8_t state;
    bool measured; /* started inside the measured window */
    uint16_t flags;
    char call_id[ID_LEN];
    char callee_id[ID_LEN];
    uint64_t t_sched, t_invite, t_incoming, t_reply, t_accept, t_hangup;
};

struct samples {
    uint32_t *v;
    size_t n, cap;
};

struct err_slot {
    char text[112];
    unsigned count;
};

enum phase { PH_CONNECT, PH_WAIT_GO, PH_RUN, PH_DRAIN, PH_DONE };

/* Everything one worker process has: there is one, W. */
struct worker {
    const struct cb_config *cfg;
    int proc;
    int first;
    int count;
    double rate;
    struct pair *pairs;
    uv_loop_t loop;
    struct lws_context *ctx;
    uv_poll_t down_watch;
    uv_timer_t tick;  /* connecting, then draining */
    uv_timer_t pacer; /* the next set-up */
    uv_timer_t sampler;
    int up_fd, down_fd;
    char down_buf[64];
    size_t down_len;
    enum phase phase;
    bool hurry; /* stopped early: hang up at once */
    int exit_code;
    /* connect phase */
    int next_conn, inflight, conns_settled, conns_ready, ready_pairs;
    uint64_t connect_deadline;
    /* run */
    int *free_q; /* ring of pair indexes */
    int free_head, free_n;
    uint64_t t0, t_measure, t_end, drain_deadline, interval_ns;
    uint64_t next_k;
    int up_now, setup_now;
    uint64_t conc_n, conc_sum;
    int conc_min, conc_max;
    double cpu_start, cpu_end;
    uint64_t t_cpu_start, t_cpu_end;
    /* counts: measured window, and all set-ups of the run */
    long started, ok, failed, started_all, ok_all, failed_all;
    long stray, starved;
    struct samples setup, incoming, reply, accept, hangup, lag;
    struct err_slot errs[ERR_SLOTS];
    unsigned err_other;
    char *tx; /* one outgoing message at a time, LWS_PRE in front */
};

extern struct worker W;

/* calls.c */
void cb_error(const char *text); /* counts an error under its text */
void calls_push(struct conn *c, enum op op);
void calls_start(struct pair *p, uint64_t sched);
void calls_hang_up(struct pair *p);
void calls_take_message(struct conn *c, const char *data, size_t len);
int calls_write_next(struct conn *c, struct lws *wsi); /* from WRITEABLE */
void calls_conn_lost(struct conn *c, const char *why);

/* callworker.c */
void worker_pacer_kick(void);    /* starts the set-ups that are due */
void worker_check_drained(void); /* ends the run once no call is open */

#endif /* YJT_CALLS_H */
