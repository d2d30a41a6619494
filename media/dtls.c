/* DTLS-SRTP over OpenSSL (see dtls.h).
 *
 * OpenSSL reads the peer's datagrams from a memory BIO, one datagram at a
 * time, and writes its own through a small BIO of ours that hands each
 * write (one datagram: the MTU is set and never queried) to the send
 * callback. Peer certificates are self-signed by design (WebRTC): any is
 * accepted during the handshake, and the connection counts only once the
 * certificate's digest equals the fingerprint of the peer's SDP. */
#include "media/dtls.h"

#include <glib.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

#define EXPORTER_LABEL "EXTRACTOR-dtls_srtp"
/* Longest fingerprint text: SHA-512, 64 bytes as "XX:" each. */
#define FP_TEXT_MAX (64 * 3)

struct dtls_cert {
    SSL_CTX *ctx;
    char fingerprint[FP_TEXT_MAX];
};

struct dtls {
    SSL *ssl;
    BIO *in;
    enum dtls_role role;
    enum dtls_state state;
    const EVP_MD *peer_md;
    char peer_fp[FP_TEXT_MAX];
    const char *error;
    dtls_send_cb send;
    void *ud;
    bool have_keys;
    struct media_srtp_keys keys;
};

/* ---- the output BIO: each write is one datagram ---- */

static BIO_METHOD *out_method;

static int out_write(BIO *b, const char *data, int len)
{
    struct dtls *d = BIO_get_data(b);
    if (len > 0 && d && d->send)
        d->send((const uint8_t *)data, (size_t)len, d->ud);
    return len;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return DTLS_MTU;
    default:
        return 0;
    }
}

static int out_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int out_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    return 1;
}

static gpointer make_out_method(gpointer unused)
{
    (void)unused;
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "yjt-dtls-out");
    if (m) {
        BIO_meth_set_write(m, out_write);
        BIO_meth_set_ctrl(m, out_ctrl);
        BIO_meth_set_create(m, out_create);
        BIO_meth_set_destroy(m, out_destroy);
    }
    return m;
}

static BIO_METHOD *the_out_method(void)
{
    static GOnce once = G_ONCE_INIT;
    out_method = g_once(&once, make_out_method, NULL);
    return out_method;
}

/* Retransmission timer: a lost flight is sent again after 250 ms, then
 * after twice as long each time, up to 8 s (OpenSSL gives up after a dozen
 * tries). OpenSSL's own first wait, a full second, is long for a call. */
static unsigned int next_timeout_us(SSL *ssl, unsigned int last_us)
{
    (void)ssl;
    if (last_us == 0)
        return 250000;
    return last_us >= 4000000 ? 8000000 : last_us * 2;
}

/* ---- certificates ---- */

static void fp_text(const unsigned char *md, unsigned n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    char *p = out;
    for (unsigned i = 0; i < n; i++) {
        if (i)
            *p++ = ':';
        *p++ = hex[md[i] >> 4];
        *p++ = hex[md[i] & 15];
    }
    *p = '\0';
}

/* Self-signed certificates are the rule in WebRTC: the fingerprint check
 * after the handshake is what authenticates the peer. */
static int accept_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    uint64_t serial = 0;
    if (!x || RAND_bytes((unsigned char *)&serial, sizeof(serial)) != 1)
        goto err;
    serial >>= 1; /* a positive serial */
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_set_version(x, 2) || !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) || !X509_set_pubkey(x, key) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"yjt", -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) || !X509_sign(x, key, EVP_sha256()))
        goto err;
    return x;
err:
    X509_free(x);
    return NULL;
}

struct dtls_cert *dtls_cert_new(void)
{
    struct dtls_cert *c = g_new0(struct dtls_cert, 1);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key ? self_signed(key) : NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    c->ctx = x ? SSL_CTX_new(DTLS_method()) : NULL;
    if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, DTLS1_2_VERSION) ||
        SSL_CTX_use_certificate(c->ctx, x) != 1 || SSL_CTX_use_PrivateKey(c->ctx, key) != 1 ||
        SSL_CTX_check_private_key(c->ctx) != 1 ||
        /* 0 means success for this one */
        SSL_CTX_set_tlsext_use_srtp(c->ctx, media_srtp_profiles_offered()) != 0 ||
        X509_digest(x, EVP_sha256(), md, &n) != 1)
        goto err;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_QUERY_MTU);
    SSL_CTX_set_read_ahead(c->ctx, 1);
    fp_text(md, n, c->fingerprint);
    X509_free(x);
    EVP_PKEY_free(key);
    return c;
err:
    X509_free(x);
    EVP_PKEY_free(key);
    dtls_cert_free(c);
    ERR_clear_error();
    return NULL;
}

void dtls_cert_free(struct dtls_cert *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    g_free(c);
}

const char *dtls_cert_fingerprint(const struct dtls_cert *c)
{
    return c->fingerprint;
}

/* ---- endpoints ---- */

static const EVP_MD *md_of(const char *alg)
{
    if (!alg)
        return NULL;
    if (g_ascii_strcasecmp(alg, "sha-256") == 0)
        return EVP_sha256();
    if (g_ascii_strcasecmp(alg, "sha-384") == 0)
        return EVP_sha384();
    if (g_ascii_strcasecmp(alg, "sha-512") == 0)
        return EVP_sha512();
    return NULL;
}

struct dtls *dtls_new(struct dtls_cert *cert, enum dtls_role role, const char *peer_alg,
                      const char *peer_fp, dtls_send_cb send, void *ud)
{
    const EVP_MD *md = md_of(peer_alg);
    if (!cert || !md || !peer_fp || strlen(peer_fp) >= FP_TEXT_MAX || !send)
        return NULL;
    BIO_METHOD *om = the_out_method();
    if (!om)
        return NULL;
    struct dtls *d = g_new0(struct dtls, 1);
    d->role = role;
    d->peer_md = md;
    g_strlcpy(d->peer_fp, peer_fp, sizeof(d->peer_fp));
    d->send = send;
    d->ud = ud;
    d->ssl = SSL_new(cert->ctx);
    d->in = BIO_new(BIO_s_mem());
    BIO *out = BIO_new(om);
    if (!d->ssl || !d->in || !out) {
        BIO_free(d->in);
        BIO_free(out);
        d->in = NULL;
        dtls_free(d);
        return NULL;
    }
    BIO_set_mem_eof_return(d->in, -1); /* empty: "try again", not end of file */
    BIO_set_data(out, d);
    BIO_up_ref(d->in); /* ours and the SSL's */
    SSL_set_bio(d->ssl, d->in, out);
    SSL_set_mtu(d->ssl, DTLS_MTU);
    DTLS_set_timer_cb(d->ssl, next_timeout_us);
    DTLS_set_link_mtu(d->ssl, DTLS_MTU);
    if (role == DTLS_PASSIVE)
        SSL_set_accept_state(d->ssl);
    else
        SSL_set_connect_state(d->ssl);
    return d;
}

void dtls_free(struct dtls *d)
{
    if (!d)
        return;
    if (d->ssl) {
        BIO *out = SSL_get_wbio(d->ssl);
        if (out)
            BIO_set_data(out, NULL); /* nothing is sent while freeing */
        SSL_free(d->ssl);
    }
    BIO_free(d->in);
    memset(&d->keys, 0, sizeof(d->keys));
    g_free(d);
}

static enum dtls_state fail(struct dtls *d, const char *why)
{
    d->state = DTLS_FAILED;
    d->error = why;
    ERR_clear_error();
    return d->state;
}

static bool peer_matches(struct dtls *d)
{
    X509 *peer = SSL_get1_peer_certificate(d->ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char text[FP_TEXT_MAX];
    bool ok = peer && X509_digest(peer, d->peer_md, md, &n) == 1;
    X509_free(peer);
    if (!ok)
        return false;
    fp_text(md, n, text);
    return g_ascii_strcasecmp(text, d->peer_fp) == 0;
}

static bool export_keys(struct dtls *d)
{
    const SRTP_PROTECTION_PROFILE *sp = SSL_get_selected_srtp_profile(d->ssl);
    if (!sp)
        return false;
    struct media_srtp_keys *k = &d->keys;
    switch (sp->id) {
    case SRTP_AEAD_AES_256_GCM:
        k->profile = MEDIA_SRTP_AEAD_AES_256_GCM;
        break;
    case SRTP_AEAD_AES_128_GCM:
        k->profile = MEDIA_SRTP_AEAD_AES_128_GCM;
        break;
    case SRTP_AES128_CM_SHA1_80:
        k->profile = MEDIA_SRTP_AES128_CM_SHA1_80;
        break;
    default:
        return false;
    }
    media_srtp_profile_info(k->profile, NULL, &k->key_len, &k->salt_len);
    /* RFC 5764 4.2: client key, server key, client salt, server salt. */
    uint8_t m[2 * (MEDIA_SRTP_KEY_MAX + MEDIA_SRTP_SALT_MAX)];
    size_t kl = k->key_len, sl = k->salt_len;
    if (SSL_export_keying_material(d->ssl, m, 2 * (kl + sl), EXPORTER_LABEL, strlen(EXPORTER_LABEL),
                                   NULL, 0, 0) != 1)
        return false;
    const uint8_t *ck = m, *sk = m + kl, *cs = m + 2 * kl, *ss = m + 2 * kl + sl;
    bool server = d->role == DTLS_PASSIVE;
    memcpy(k->local_key, server ? sk : ck, kl);
    memcpy(k->remote_key, server ? ck : sk, kl);
    memcpy(k->local_salt, server ? ss : cs, sl);
    memcpy(k->remote_salt, server ? cs : ss, sl);
    memset(m, 0, sizeof(m));
    d->have_keys = true;
    return true;
}

/* Runs the handshake as far as the datagrams so far allow. */
static enum dtls_state handshake(struct dtls *d)
{
    int r = SSL_do_handshake(d->ssl);
    if (r == 1) {
        if (!peer_matches(d))
            return fail(d, "the peer's certificate does not match its SDP fingerprint");
        if (!export_keys(d))
            return fail(d, "no SRTP profile agreed");
        d->state = DTLS_CONNECTED;
        return d->state;
    }
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return DTLS_HANDSHAKING;
    return fail(d, "handshake failed");
}

enum dtls_state dtls_start(struct dtls *d)
{
    if (d->state != DTLS_HANDSHAKING || d->role != DTLS_ACTIVE)
        return d->state;
    return handshake(d);
}

enum dtls_state dtls_input(struct dtls *d, const uint8_t *data, size_t len)
{
    if (d->state == DTLS_FAILED || d->state == DTLS_CLOSED)
        return d->state;
    if (len == 0 || len > 65536 || media_demux(data, len) != DEMUX_DTLS)
        return d->state;    /* not for us: dropped */
    (void)BIO_reset(d->in); /* one datagram at a time */
    if (BIO_write(d->in, data, (int)len) != (int)len)
        return d->state;
    if (d->state == DTLS_HANDSHAKING)
        return handshake(d);
    /* Connected: no application data is expected, but reading lets OpenSSL
     * answer a retransmitted last flight and see a close_notify. */
    uint8_t sink[2048];
    int r;
    while ((r = SSL_read(d->ssl, sink, sizeof(sink))) > 0)
        ;
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
        d->state = DTLS_CLOSED;
    ERR_clear_error();
    return d->state;
}

enum dtls_state dtls_state(const struct dtls *d)
{
    return d->state;
}

int dtls_timeout_ms(struct dtls *d)
{
    struct timeval tv;
    if (d->state != DTLS_HANDSHAKING || DTLSv1_get_timeout(d->ssl, &tv) != 1)
        return -1;
    long ms = tv.tv_sec * 1000L + tv.tv_usec / 1000;
    return ms > G_MAXINT ? G_MAXINT : (int)ms;
}

enum dtls_state dtls_handle_timeout(struct dtls *d)
{
    if (d->state != DTLS_HANDSHAKING)
        return d->state;
    if (DTLSv1_handle_timeout(d->ssl) < 0)
        return fail(d, "no answer from the peer (handshake timed out)");
    return d->state;
}

const char *dtls_error(const struct dtls *d)
{
    return d->error;
}

bool dtls_srtp_keys(const struct dtls *d, struct media_srtp_keys *out)
{
    if (!d->have_keys || d->state != DTLS_CONNECTED)
        return false;
    *out = d->keys;
    return true;
}

enum media_demux media_demux(const uint8_t *data, size_t len)
{
    if (len == 0)
        return DEMUX_OTHER;
    uint8_t b = data[0];
    if (b <= 3)
        return DEMUX_STUN;
    if (b >= 20 && b <= 63)
        return DEMUX_DTLS;
    if (b >= 128 && b <= 191)
        return DEMUX_RTP;
    return DEMUX_OTHER;
}
