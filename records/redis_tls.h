/* TLS to Redis (rediss://) through an in-process tunnel.
 *
 * Debian 12's hiredis (0.14) speaks plain TCP only. For a rediss://
 * address yjtd starts, once per server address, a tunnel: a Unix socket
 * in a private temporary directory (mode 0700: only this user may connect)
 * that hiredis connects to, and for each connection a thread that opens
 * TCP to the server, completes a TLS handshake (TLS 1.2 or later; the
 * server's certificate checked against tls_ca, or the system's CAs, and
 * its name against the host; a client certificate when given) and then
 * carries bytes both ways. The links and the bus see a Unix socket and
 * keep their own reconnection: a broken TLS connection is a broken
 * connection. */
#ifndef YJT_REDIS_TLS_H
#define YJT_REDIS_TLS_H

struct redis_tls_opts {
    const char *host;
    int port;
    const char *ca;   /* PEM file of CAs to trust, or NULL for the system's */
    const char *cert; /* client certificate chain (PEM), or NULL */
    const char *key;  /* its private key (PEM; NULL: in cert's file) */
};

/* The tunnel to that server with those settings, started if need be:
 * 0 with *path (g_free) the socket to connect to, or -1 with *err. */
int redis_tls_tunnel(const struct redis_tls_opts *o, char **path, char **err);
/* Stops every tunnel and joins its threads (at exit, after the links are
 * closed). */
void redis_tls_stop_all(void);

#endif
