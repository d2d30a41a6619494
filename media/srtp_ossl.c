/* SRTP's ciphers and its HMAC on OpenSSL, under libsrtp2 (see srtp_ossl.h).
 *
 * Each implementation fills libsrtp2's type table (srtp2/cipher.h,
 * srtp2/auth.h): libsrtp2 allocates an instance per session key, gives it
 * the key once (init), then per packet an IV (set_iv), the associated data
 * (set_aad, AEAD only), the payload in place (encrypt/decrypt) and, for
 * GCM, the tag (get_tag). */
#include "media/srtp_ossl.h"

#include <glib.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <srtp2/auth.h>
#include <srtp2/cipher.h>
#include <srtp2/crypto_types.h>
#include <srtp2/srtp.h>
#include <string.h>

/* ---- instances ---------------------------------------------------------- */

/* AES-ICM (RFC 3711 4.1.1): AES-CTR whose 128-bit counter starts at
 * (salt || 0x0000) XOR the packet's IV. */
struct icm {
    EVP_CIPHER_CTX *ctx;
    int key_size;
    uint8_t offset[16];
};

/* AES-GCM (RFC 7714): the key schedule is made once; each packet sets its
 * 12-byte IV and direction. */
struct gcm {
    EVP_CIPHER_CTX *ctx;
    int key_size, tag_len;
    srtp_cipher_direction_t dir;
};

/* HMAC-SHA1 (RFC 2104) with the inner and outer pads hashed once per key:
 * a packet copies the inner state, hashes, and finishes with the outer. */
struct hmac {
    EVP_MD_CTX *inner, *outer, *work;
};

#define SHA1_LEN 20
#define SHA1_BLOCK 64

static const srtp_cipher_type_t icm_128_type, icm_256_type, gcm_128_type, gcm_256_type;

static gint live;

int srtp_ossl_live(void)
{
    return g_atomic_int_get(&live);
}
static const srtp_auth_type_t hmac_type;

/* An instance: libsrtp2's record, our state (freed with it on failure)
 * and its OpenSSL context. */
static srtp_err_status_t cipher_new(srtp_cipher_t **cp, const srtp_cipher_type_t *type, int key_len,
                                    void *state, EVP_CIPHER_CTX **ctx)
{
    if (!(*ctx = EVP_CIPHER_CTX_new())) {
        g_free(state);
        return srtp_err_status_alloc_fail;
    }
    srtp_cipher_t *c = g_new0(srtp_cipher_t, 1);
    c->type = type;
    c->state = state;
    c->key_len = key_len;
    c->algorithm = (int)type->id;
    g_atomic_int_inc(&live);
    *cp = c;
    return srtp_err_status_ok;
}

/* Frees an instance, its key material wiped. */
static srtp_err_status_t cipher_free(srtp_cipher_t *c, EVP_CIPHER_CTX *ctx, size_t state_size)
{
    g_atomic_int_add(&live, -1);
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(c->state, state_size);
    g_free(c->state);
    g_free(c);
    return srtp_err_status_ok;
}

/* ---- AES-ICM ------------------------------------------------------------ */

static srtp_err_status_t icm_alloc(srtp_cipher_t **cp, int key_len, int tag_len)
{
    (void)tag_len;
    const srtp_cipher_type_t *type;
    switch (key_len) {
    case SRTP_AES_ICM_128_KEY_LEN_WSALT:
        type = &icm_128_type;
        break;
    case SRTP_AES_ICM_256_KEY_LEN_WSALT:
        type = &icm_256_type;
        break;
    default:
        return srtp_err_status_bad_param;
    }
    struct icm *s = g_new0(struct icm, 1);
    s->key_size = key_len - SRTP_SALT_LEN;
    return cipher_new(cp, type, key_len, s, &s->ctx);
}

static srtp_err_status_t icm_dealloc(srtp_cipher_t *c)
{
    return cipher_free(c, ((struct icm *)c->state)->ctx, sizeof(struct icm));
}

/* The key is the AES key followed by the 14-byte salt. */
static srtp_err_status_t icm_init(void *state, const uint8_t *key)
{
    struct icm *s = state;
    memset(s->offset, 0, sizeof(s->offset));
    memcpy(s->offset, key + s->key_size, SRTP_SALT_LEN);
    const EVP_CIPHER *aes =
        s->key_size == SRTP_AES_128_KEY_LEN ? EVP_aes_128_ctr() : EVP_aes_256_ctr();
    if (EVP_EncryptInit_ex(s->ctx, aes, NULL, key, NULL) != 1)
        return srtp_err_status_init_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t icm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t dir)
{
    (void)dir;
    struct icm *s = state;
    uint8_t counter[16];
    for (size_t i = 0; i < sizeof(counter); i++)
        counter[i] = s->offset[i] ^ iv[i];
    int ok = EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, counter) == 1;
    OPENSSL_cleanse(counter, sizeof(counter));
    return ok ? srtp_err_status_ok : srtp_err_status_cipher_fail;
}

/* Successive calls continue the key stream (libsrtp2 relies on it). */
static srtp_err_status_t icm_crypt(void *state, uint8_t *buf, unsigned int *len)
{
    struct icm *s = state;
    int out = 0;
    if (*len > INT_MAX / 2)
        return srtp_err_status_bad_param;
    if (EVP_EncryptUpdate(s->ctx, buf, &out, buf, (int)*len) != 1 || out != (int)*len)
        return srtp_err_status_cipher_fail;
    return srtp_err_status_ok;
}

/* ---- AES-GCM ------------------------------------------------------------ */

static srtp_err_status_t gcm_alloc(srtp_cipher_t **cp, int key_len, int tag_len)
{
    const srtp_cipher_type_t *type;
    switch (key_len) {
    case SRTP_AES_GCM_128_KEY_LEN_WSALT:
        type = &gcm_128_type;
        break;
    case SRTP_AES_GCM_256_KEY_LEN_WSALT:
        type = &gcm_256_type;
        break;
    default:
        return srtp_err_status_bad_param;
    }
    if (tag_len != 8 && tag_len != 16)
        return srtp_err_status_bad_param;
    struct gcm *s = g_new0(struct gcm, 1);
    s->key_size = key_len - SRTP_AEAD_SALT_LEN;
    s->tag_len = tag_len;
    s->dir = srtp_direction_any;
    return cipher_new(cp, type, key_len, s, &s->ctx);
}

static srtp_err_status_t gcm_dealloc(srtp_cipher_t *c)
{
    return cipher_free(c, ((struct gcm *)c->state)->ctx, sizeof(struct gcm));
}

/* The key is the AES key (the salt after it is libsrtp2's to use). */
static srtp_err_status_t gcm_init(void *state, const uint8_t *key)
{
    struct gcm *s = state;
    const EVP_CIPHER *aes =
        s->key_size == SRTP_AES_128_KEY_LEN ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
    s->dir = srtp_direction_any;
    if (EVP_CipherInit_ex(s->ctx, aes, NULL, key, NULL, 1) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1)
        return srtp_err_status_init_fail;
    return srtp_err_status_ok;
}

/* Starts a packet: its 12-byte IV, and whether it is sealed or opened
 * (the key schedule stays). */
static srtp_err_status_t gcm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t dir)
{
    struct gcm *s = state;
    if (dir != srtp_direction_encrypt && dir != srtp_direction_decrypt)
        return srtp_err_status_bad_param;
    s->dir = dir;
    if (EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, iv, dir == srtp_direction_encrypt) != 1)
        return srtp_err_status_cipher_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t gcm_set_aad(void *state, const uint8_t *aad, uint32_t len)
{
    struct gcm *s = state;
    int out = 0;
    if (s->dir == srtp_direction_any || len > INT_MAX / 2)
        return srtp_err_status_bad_param;
    if (EVP_CipherUpdate(s->ctx, NULL, &out, aad, (int)len) != 1)
        return srtp_err_status_algo_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t gcm_encrypt(void *state, uint8_t *buf, unsigned int *len)
{
    struct gcm *s = state;
    int out = 0;
    if (s->dir != srtp_direction_encrypt || *len > INT_MAX / 2)
        return srtp_err_status_bad_param;
    if (EVP_CipherUpdate(s->ctx, buf, &out, buf, (int)*len) != 1 || out != (int)*len)
        return srtp_err_status_cipher_fail;
    return srtp_err_status_ok;
}

/* After encrypt: finishes the packet and writes its tag. */
static srtp_err_status_t gcm_get_tag(void *state, uint8_t *tag, uint32_t *len)
{
    struct gcm *s = state;
    uint8_t none[16];
    int out = 0;
    if (s->dir != srtp_direction_encrypt)
        return srtp_err_status_bad_param;
    if (EVP_CipherFinal_ex(s->ctx, none, &out) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, s->tag_len, tag) != 1)
        return srtp_err_status_cipher_fail;
    *len = (uint32_t)s->tag_len;
    return srtp_err_status_ok;
}

/* The tag is the last tag_len bytes of buf; *len loses them. A tag that
 * does not match is an authentication failure. */
static srtp_err_status_t gcm_decrypt(void *state, uint8_t *buf, unsigned int *len)
{
    struct gcm *s = state;
    uint8_t none[16];
    int out = 0;
    if (s->dir != srtp_direction_decrypt || *len < (unsigned)s->tag_len || *len > INT_MAX / 2)
        return srtp_err_status_bad_param;
    int n = (int)*len - s->tag_len;
    if (EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_TAG, s->tag_len, buf + n) != 1 ||
        EVP_CipherUpdate(s->ctx, buf, &out, buf, n) != 1 || out != n)
        return srtp_err_status_cipher_fail;
    if (EVP_CipherFinal_ex(s->ctx, none, &out) != 1)
        return srtp_err_status_auth_fail;
    *len = (unsigned)n;
    return srtp_err_status_ok;
}

/* ---- HMAC-SHA1 ---------------------------------------------------------- */

static srtp_err_status_t hmac_dealloc(srtp_auth_t *a)
{
    struct hmac *s = a->state;
    EVP_MD_CTX_free(s->inner);
    EVP_MD_CTX_free(s->outer);
    EVP_MD_CTX_free(s->work);
    g_free(s);
    g_free(a);
    g_atomic_int_add(&live, -1);
    return srtp_err_status_ok;
}

static srtp_err_status_t hmac_alloc(srtp_auth_t **ap, int key_len, int out_len)
{
    if (key_len < 0 || key_len > SHA1_BLOCK || out_len < 0 || out_len > SHA1_LEN)
        return srtp_err_status_bad_param;
    struct hmac *s = g_new0(struct hmac, 1);
    srtp_auth_t *a = g_new0(srtp_auth_t, 1);
    a->type = &hmac_type;
    a->state = s;
    a->out_len = out_len;
    a->key_len = key_len;
    a->prefix_len = 0;
    g_atomic_int_inc(&live);
    if (!(s->inner = EVP_MD_CTX_new()) || !(s->outer = EVP_MD_CTX_new()) ||
        !(s->work = EVP_MD_CTX_new())) {
        hmac_dealloc(a);
        return srtp_err_status_alloc_fail;
    }
    *ap = a;
    return srtp_err_status_ok;
}

static srtp_err_status_t hmac_init(void *state, const uint8_t *key, int key_len)
{
    struct hmac *s = state;
    uint8_t ipad[SHA1_BLOCK], opad[SHA1_BLOCK];
    if (key_len < 0 || key_len > SHA1_BLOCK)
        return srtp_err_status_bad_param;
    memset(ipad, 0x36, sizeof(ipad));
    memset(opad, 0x5c, sizeof(opad));
    for (int i = 0; i < key_len; i++) {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    int ok = EVP_DigestInit_ex(s->inner, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(s->inner, ipad, sizeof(ipad)) == 1 &&
             EVP_DigestInit_ex(s->outer, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(s->outer, opad, sizeof(opad)) == 1;
    OPENSSL_cleanse(ipad, sizeof(ipad));
    OPENSSL_cleanse(opad, sizeof(opad));
    return ok ? srtp_err_status_ok : srtp_err_status_init_fail;
}

static srtp_err_status_t hmac_start(void *state)
{
    struct hmac *s = state;
    return EVP_MD_CTX_copy_ex(s->work, s->inner) == 1 ? srtp_err_status_ok
                                                      : srtp_err_status_auth_fail;
}

static srtp_err_status_t hmac_update(void *state, const uint8_t *buf, int len)
{
    struct hmac *s = state;
    if (len < 0)
        return srtp_err_status_bad_param;
    return EVP_DigestUpdate(s->work, buf, (size_t)len) == 1 ? srtp_err_status_ok
                                                            : srtp_err_status_auth_fail;
}

/* Hashes the last bytes of the message and writes the first tag_len bytes
 * of the MAC. */
static srtp_err_status_t hmac_compute(void *state, const uint8_t *buf, int len, int tag_len,
                                      uint8_t *tag)
{
    struct hmac *s = state;
    uint8_t inner[SHA1_LEN], mac[SHA1_LEN];
    if (len < 0 || tag_len < 0 || tag_len > SHA1_LEN)
        return srtp_err_status_bad_param;
    int ok = EVP_DigestUpdate(s->work, buf, (size_t)len) == 1 &&
             EVP_DigestFinal_ex(s->work, inner, NULL) == 1 &&
             EVP_MD_CTX_copy_ex(s->work, s->outer) == 1 &&
             EVP_DigestUpdate(s->work, inner, sizeof(inner)) == 1 &&
             EVP_DigestFinal_ex(s->work, mac, NULL) == 1;
    if (ok)
        memcpy(tag, mac, (size_t)tag_len);
    OPENSSL_cleanse(inner, sizeof(inner));
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok ? srtp_err_status_ok : srtp_err_status_auth_fail;
}

/* ---- known answers -------------------------------------------------------
 *
 * libsrtp2 runs a replacement's test cases before it takes it. These were
 * made with libsrtp2's own implementations (on NSS) from the inputs that
 * fill_inputs() writes. */

static uint8_t kat_key[48], kat_iv[16], kat_text[48], kat_aad[12];

static void fill_inputs(void)
{
    for (size_t i = 0; i < sizeof(kat_key); i++)
        kat_key[i] = (uint8_t)(0x30 + i * 7);
    for (size_t i = 0; i < sizeof(kat_iv); i++)
        kat_iv[i] = (uint8_t)(0xa0 ^ (i * 13));
    for (size_t i = 0; i < sizeof(kat_text); i++)
        kat_text[i] = (uint8_t)(i * 29 + 3);
    for (size_t i = 0; i < sizeof(kat_aad); i++)
        kat_aad[i] = (uint8_t)(0x80 + i);
}

#define KAT_LEN 45

static const uint8_t icm_128_out[KAT_LEN] = {
    0xa2, 0xa7, 0x73, 0x21, 0x0f, 0xd0, 0xe2, 0x8d, 0xb6, 0x48, 0x15, 0xff, 0x48, 0xa5, 0x00,
    0x84, 0x56, 0x2f, 0xb3, 0xd4, 0x60, 0xb4, 0xed, 0xd2, 0x2b, 0xa1, 0x93, 0x9b, 0xc3, 0x91,
    0x71, 0x99, 0xac, 0x38, 0xe1, 0x7e, 0xaa, 0x4b, 0x42, 0x63, 0x1e, 0xbd, 0xbe, 0x75, 0xe8};
static const uint8_t icm_256_out[KAT_LEN] = {
    0x59, 0x30, 0xa6, 0x47, 0x58, 0x7b, 0xe7, 0x6c, 0x8f, 0x62, 0xf3, 0xbf, 0x91, 0x1d, 0x64,
    0xe2, 0xa8, 0x5c, 0x00, 0xa6, 0x39, 0xff, 0x65, 0xde, 0xd0, 0x4c, 0x82, 0x16, 0x6a, 0x75,
    0x51, 0x2a, 0x66, 0xa8, 0x6b, 0x4e, 0x14, 0xfb, 0x15, 0x6d, 0x46, 0x4b, 0x6b, 0x4e, 0x4b};
/* The ciphertext, then the 16-byte tag. */
static const uint8_t gcm_128_out[KAT_LEN + 16] = {
    0x8e, 0x41, 0x21, 0x85, 0xb3, 0xc1, 0xa8, 0x14, 0x1e, 0xad, 0x36, 0x0c, 0xef, 0x3c, 0x46, 0xc4,
    0x81, 0x0d, 0xe6, 0x49, 0xae, 0xd5, 0x3a, 0x69, 0x9a, 0x20, 0x19, 0x10, 0x05, 0xc7, 0xcf, 0x97,
    0x56, 0x38, 0x83, 0x3b, 0x9f, 0x1f, 0x9a, 0x92, 0x3e, 0x63, 0x27, 0xdf, 0xa4, 0x17, 0x7e, 0xbf,
    0x38, 0x98, 0xe6, 0x38, 0xd3, 0x2d, 0xba, 0xf2, 0x2b, 0x8a, 0x01, 0xee, 0x71};
static const uint8_t gcm_256_out[KAT_LEN + 16] = {
    0x8c, 0xa4, 0x6d, 0xa6, 0xc0, 0x8e, 0xf6, 0x93, 0x59, 0xb3, 0x64, 0xf8, 0x41, 0xaf, 0x2b, 0x86,
    0xca, 0x7f, 0x54, 0x03, 0xf1, 0xe5, 0xb7, 0x15, 0xbd, 0xfa, 0x11, 0x58, 0x24, 0x9d, 0x4c, 0x10,
    0x74, 0xbb, 0xf3, 0x75, 0xdc, 0xe9, 0x09, 0xab, 0x4c, 0xde, 0x54, 0x5c, 0x3e, 0x73, 0xba, 0x56,
    0xc1, 0x4c, 0x71, 0xbc, 0x30, 0x25, 0xff, 0xfa, 0xaa, 0x20, 0x08, 0x16, 0x7f};
/* HMAC-SHA1 of the 45 text bytes under the first 20 key bytes, cut to 80
 * bits as SRTP sends it. */
static const uint8_t hmac_out[10] = {0x99, 0xee, 0x4f, 0xcb, 0xaa, 0xce, 0xca, 0xb1, 0xca, 0x80};

static const srtp_cipher_test_case_t icm_128_kat = {SRTP_AES_ICM_128_KEY_LEN_WSALT,
                                                    kat_key,
                                                    kat_iv,
                                                    KAT_LEN,
                                                    kat_text,
                                                    KAT_LEN,
                                                    icm_128_out,
                                                    0,
                                                    NULL,
                                                    0,
                                                    NULL};
static const srtp_cipher_test_case_t icm_256_kat = {SRTP_AES_ICM_256_KEY_LEN_WSALT,
                                                    kat_key,
                                                    kat_iv,
                                                    KAT_LEN,
                                                    kat_text,
                                                    KAT_LEN,
                                                    icm_256_out,
                                                    0,
                                                    NULL,
                                                    0,
                                                    NULL};
static const srtp_cipher_test_case_t gcm_128_kat = {SRTP_AES_GCM_128_KEY_LEN_WSALT,
                                                    kat_key,
                                                    kat_iv,
                                                    KAT_LEN,
                                                    kat_text,
                                                    KAT_LEN + 16,
                                                    gcm_128_out,
                                                    sizeof(kat_aad),
                                                    kat_aad,
                                                    16,
                                                    NULL};
static const srtp_cipher_test_case_t gcm_256_kat = {SRTP_AES_GCM_256_KEY_LEN_WSALT,
                                                    kat_key,
                                                    kat_iv,
                                                    KAT_LEN,
                                                    kat_text,
                                                    KAT_LEN + 16,
                                                    gcm_256_out,
                                                    sizeof(kat_aad),
                                                    kat_aad,
                                                    16,
                                                    NULL};
static const srtp_auth_test_case_t hmac_kat = {SHA1_LEN,         kat_key,  KAT_LEN, kat_text,
                                               sizeof(hmac_out), hmac_out, NULL};

/* ---- the types ---------------------------------------------------------- */

#define ICM_TYPE(bits)                                                                             \
    {                                                                                              \
        .alloc = icm_alloc, .dealloc = icm_dealloc, .init = icm_init, .encrypt = icm_crypt,        \
        .decrypt = icm_crypt, .set_iv = icm_set_iv, .description = "AES-" #bits " ICM (OpenSSL)",  \
        .test_data = &icm_##bits##_kat, .id = SRTP_AES_ICM_##bits                                  \
    }
#define GCM_TYPE(bits)                                                                             \
    {                                                                                              \
        .alloc = gcm_alloc, .dealloc = gcm_dealloc, .init = gcm_init, .set_aad = gcm_set_aad,      \
        .encrypt = gcm_encrypt, .decrypt = gcm_decrypt, .set_iv = gcm_set_iv,                      \
        .get_tag = gcm_get_tag, .description = "AES-" #bits " GCM (OpenSSL)",                      \
        .test_data = &gcm_##bits##_kat, .id = SRTP_AES_GCM_##bits                                  \
    }

static const srtp_cipher_type_t icm_128_type = ICM_TYPE(128), icm_256_type = ICM_TYPE(256);
static const srtp_cipher_type_t gcm_128_type = GCM_TYPE(128), gcm_256_type = GCM_TYPE(256);
static const srtp_auth_type_t hmac_type = {.alloc = hmac_alloc,
                                           .dealloc = hmac_dealloc,
                                           .init = hmac_init,
                                           .compute = hmac_compute,
                                           .update = hmac_update,
                                           .start = hmac_start,
                                           .description = "HMAC-SHA1 (OpenSSL)",
                                           .test_data = &hmac_kat,
                                           .id = SRTP_HMAC_SHA1};

int srtp_ossl_install(void)
{
    fill_inputs();
    const srtp_cipher_type_t *ciphers[] = {&icm_128_type, &icm_256_type, &gcm_128_type,
                                           &gcm_256_type};
    int failed = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(ciphers); i++)
        if (srtp_replace_cipher_type(ciphers[i], ciphers[i]->id) != srtp_err_status_ok)
            failed++;
    if (srtp_replace_auth_type(&hmac_type, hmac_type.id) != srtp_err_status_ok)
        failed++;
    return failed ? -1 : 0;
}
