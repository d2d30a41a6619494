/* A connection to Redis that finds its way back, on hiredis's
 * asynchronous context (redisAsyncContext).
 *
 * On the main loop, commands are deferred: sent at once, their replies
 * told to callbacks when the caller that watches redis_link_fd() calls
 * redis_link_poll(). Commands that wait for their reply (redis_link_run,
 * _pipeline, _drain) drive the same connection until it comes: at
 * start-up, in the command-line tool and in reader threads (each with a
 * link of its own), and counted when they hold the main loop
 * (redis_link_loop_waits).
 *
 * redis_url_parse() reads the addresses yjtd accepts:
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]
 *   rediss://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]   (TLS, redis_tls.h)
 *   redis+unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET[?OPTIONS]
 *   redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB][?OPTIONS]
 *   rediss-sentinel://...   (as redis-sentinel://, TLS to the sentinels and the master)
 * with OPTIONS db=N, wait=N (each write must reach N replicas, checked
 * with WAIT, or it fails) and wait_ms=N (1000), and for rediss:// and
 * rediss-sentinel://
 * tls_ca=FILE (CAs to trust instead of the system's), tls_cert=FILE and
 * tls_key=FILE (a client certificate, for servers that ask for one)
 * (a Sentinel address names the sentinels and the master's name: the link
 * asks them where the master is at every connect, so a failover is
 * followed at the next reconnect).
 *
 * A link connects lazily, sends AUTH and SELECT, and after any I/O error
 * drops the connection and reconnects at the next command, waiting longer
 * after each failure (100 ms doubling to 2 s) so that a dead server is not
 * hammered: meanwhile commands fail at once. A connection that gives no
 * reply for timeout_ms while one is awaited is dropped. Scripts are sent
 * by SHA-1 and loaded when the server does not know them (after a
 * restart, say). */
#ifndef YJT_REDIS_LINK_H
#define YJT_REDIS_LINK_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_MAX_SENTINELS 8

struct redis_url {
    char *host; /* NULL with a socket path */
    int port;
    char *socket;
    char *user, *password; /* NULL when not given */
    int db;
    /* Replicas each write must reach before it is done (WAIT), and how
     * long to wait for them: ?wait=N&wait_ms=M. 0: the primary alone. */
    int wait_replicas, wait_ms;
    /* Sentinel: hosts and ports of the sentinels, and the master's name. */
    int n_sentinels;
    char *sentinel_host[REDIS_MAX_SENTINELS];
    int sentinel_port[REDIS_MAX_SENTINELS];
    char *master;
    /* rediss://: the server (host and port are then NULL and 0, and socket
     * is the tunnel's), the files named in the options. rediss-sentinel://:
     * tls is set, tls_host NULL; each sentinel and each master they name
     * is reached through a tunnel of its own. */
    bool tls;
    char *tls_host;
    int tls_port;
    char *tls_ca, *tls_cert, *tls_key;
};

/* 0, or -1 with *err set (free with g_free). */
int redis_url_parse(const char *url, struct redis_url *out, char **err);
void redis_url_clear(struct redis_url *u);
/* The address without its password, for logs. */
char *redis_url_describe(const struct redis_url *u);

/* A command's words: borrowed strings or bytes, or owned numbers. */
struct redis_cmd {
    int n, cap;
    const char **v;
    size_t *len;
    char **owned; /* what rcmd_* allocated, freed by redis_cmd_clear */
    int n_owned;
};

void redis_cmd_init(struct redis_cmd *c);
void redis_cmd_str(struct redis_cmd *c, const char *s);
void redis_cmd_bin(struct redis_cmd *c, const void *p, size_t n);
void redis_cmd_i64(struct redis_cmd *c, int64_t v);
/* Appends prefix followed by the bytes of s (an owned word). */
void redis_cmd_cat(struct redis_cmd *c, const char *prefix, const char *s);
void redis_cmd_clear(struct redis_cmd *c);

/* Appends "verb script 0" and then the words of args (borrowed): a script
 * call with no keys, by SHA-1 (EVALSHA) or by body (EVAL). */
void redis_cmd_script(struct redis_cmd *c, const char *verb, const char *script,
                      const struct redis_cmd *args);

struct redis_script {
    const char *body;
    char sha[41];
};
/* Fills sha from body. */
void redis_script_init(struct redis_script *s);

struct redis_link;

struct redis_link *redis_link_new(const struct redis_url *u, int timeout_ms);
void redis_link_free(struct redis_link *l);
/* Connects now (a first check at start-up): 0, or -1 with the reason in
 * redis_link_error(). */
int redis_link_connect(struct redis_link *l);
/* The reply (free with freeReplyObject), or NULL when the server could not
 * be reached or the connection broke; an error reply is a reply. */
redisReply *redis_link_run(struct redis_link *l, const struct redis_cmd *c);
/* redis_link_run() for callers that only want a result: clears c, and
 * returns NULL for an error reply too (redis_link_error() says why). */
redisReply *redis_link_call(struct redis_link *l, struct redis_cmd *c);
/* EVALSHA s with no keys and the words of args. */
redisReply *redis_link_script(struct redis_link *l, const struct redis_script *s,
                              const struct redis_cmd *args);
/* Where to connect now, asking the sentinels for a Sentinel address:
 * either *host (g_free) and *port, or (*host NULL) the Unix socket *path
 * (g_free): the address's own, or the TLS tunnel's. 0 or -1. */
int redis_link_address(struct redis_link *l, char **host, int *port, char **path);
const struct redis_url *redis_link_url(const struct redis_link *l);
/* After a write, with ?wait=N: 0 once N replicas have it (WAIT), -1 if
 * they did not within wait_ms (the write is then not to be counted on).
 * 0 at once without replicas to wait for. */
int redis_link_wait(struct redis_link *l);
/* Runs the n commands as one pipeline (one round trip): replies[i] gets
 * command i's reply (free each with freeReplyObject; an error reply is a
 * reply), or NULL for every command after the connection broke. 0, or -1
 * if any reply is missing. */
int redis_link_pipeline(struct redis_link *l, const struct redis_cmd *cmds, int n,
                        redisReply **replies);
/* Deferred writes, for a caller that batches (a server's store): the
 * command is sent now and its reply read later, by the next command's
 * call (replies come in order) or by redis_link_drain(). -1 (nothing
 * sent) if the server cannot be reached now. */
int redis_link_defer(struct redis_link *l, const struct redis_cmd *c);
/* A deferred command that is not a write (a script that counts, say):
 * sent now like redis_link_defer()'s, and cb gets its reply (borrowed;
 * an error reply is a reply) or NULL when it is lost with the connection.
 * cb runs inside whichever call of the link reads the reply (a later
 * command's, redis_link_poll(), redis_link_free()): it must not use the
 * link. Its error does not count as a failed write. 0, or -1 (nothing
 * sent, cb never called) if the server cannot be reached now. */
typedef void (*redis_call_cb)(redisReply *reply, void *ud);
int redis_link_defer_call(struct redis_link *l, const struct redis_cmd *c, redis_call_cb cb,
                          void *ud);
/* The same for a deferred write whose caller wants its reply (a script
 * that appends and says where): a write like redis_link_defer()'s (its
 * error, or its loss, fails the drain; a drain waits for the replicas),
 * and cb gets its reply as above. */
int redis_link_defer_write_call(struct redis_link *l, const struct redis_cmd *c, redis_call_cb cb,
                                void *ud);
/* Reads every deferred reply and, with ?wait=N, waits for the replicas:
 * 0 if every write deferred since the last drain was applied, -1 if any
 * failed or was lost with the connection (it may have been applied). */
int redis_link_drain(struct redis_link *l);
/* Deferred writes are numbered from 1 in the order they are sent; cb
 * (if set) hears of each as its reply is read, by any call of the link, or
 * as it is lost with the connection (ok false: it may have been applied).
 * redis_link_sent() is the number of the last one sent,
 * redis_link_done() of the last one told to cb. */
typedef void (*redis_reply_cb)(uint64_t n, bool ok, void *ud);
void redis_link_on_reply(struct redis_link *l, redis_reply_cb cb, void *ud);
uint64_t redis_link_sent(const struct redis_link *l);
uint64_t redis_link_done(const struct redis_link *l);
/* The connection's socket while deferred replies are awaited, else -1:
 * for a caller that watches it to call redis_link_poll(). */
int redis_link_fd(const struct redis_link *l);
/* Reads the deferred replies that have arrived, without waiting; when
 * none came for the link's timeout, drops the connection (the writes
 * still awaited are then lost, as told to the callback). */
void redis_link_poll(struct redis_link *l);
/* How many times, in this process, the thread that runs GLib's default
 * main loop waited for Redis (a command, a pipeline, or the replies of
 * deferred writes read at a commit), and for how long in all (*seconds,
 * may be NULL). */
uint64_t redis_link_loop_waits(double *seconds);
/* Why the last command failed (a static description or the server's). */
const char *redis_link_error(const struct redis_link *l);

#endif
