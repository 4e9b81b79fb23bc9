/* floor_openssl.c: the asymmetric work of one TLS 1.3 server handshake, done the way OpenSSL
 * 3.0's libssl does it (floor_openssl.h), so that stunnel, HAProxy and jabberd2 can be held
 * against their own library's floor as the proxy is held against mbedTLS's:
 *   - CertificateVerify: a fresh EVP_PKEY_CTX, EVP_PKEY_sign() of a SHA-256 value (libssl signs
 *     with EVP_DigestSign*, whose hashing of 130 bytes is negligible next to the signature);
 *   - the key share: EVP_PKEY_keygen() of the group and EVP_PKEY_get1_encoded_public_key();
 *   - the shared secret: the client's encoded public key imported into a new EVP_PKEY, then
 *     EVP_PKEY_derive() (libssl: ssl_generate_param_group() + set1_encoded_public_key()). */
#include "floor_openssl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#define WARMUP 10

static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[160] = "";

    if (e != 0)
        ERR_error_string_n(e, msg, sizeof(msg));
    fprintf(stderr, "crypto-floor: openssl: %s failed %s\n", what, msg);
    ERR_clear_error();
    return 1;
}

/* A fresh ephemeral key of the group ("X25519", or "EC" with group "P-256"). */
static EVP_PKEY *keygen(bool x25519)
{
    return x25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519")
                  : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* The peer's key from its encoded public key (RFC 8446 §4.2.8.2 / RFC 7748 §6.1 formats). */
static EVP_PKEY *import_peer(bool x25519, const unsigned char *pub, size_t len)
{
    EVP_PKEY_CTX *pc;
    EVP_PKEY *p = NULL;

    if (x25519)
        return EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, len);
    pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (pc != NULL && EVP_PKEY_paramgen_init(pc) > 0 &&
        EVP_PKEY_CTX_set_group_name(pc, "P-256") > 0 && EVP_PKEY_paramgen(pc, &p) > 0 &&
        EVP_PKEY_set1_encoded_public_key(p, pub, len) <= 0) {
        EVP_PKEY_free(p);
        p = NULL;
    }
    EVP_PKEY_CTX_free(pc);
    return p;
}

static int bench_ecdh(bool x25519, unsigned n, double *gen_us, double *dh_us)
{
    EVP_PKEY *peer = keygen(x25519);
    unsigned char *peer_pub = NULL;
    size_t peer_len = 0;
    uint64_t gen = 0, dh = 0;
    int rc = 0;

    if (peer == NULL || (peer_len = EVP_PKEY_get1_encoded_public_key(peer, &peer_pub)) == 0) {
        EVP_PKEY_free(peer);
        return fail("peer key");
    }
    for (unsigned i = 0; i < n + WARMUP && rc == 0; i++) {
        unsigned char *pub = NULL, secret[64];
        size_t secret_len = sizeof(secret);
        EVP_PKEY *key, *pk = NULL;
        EVP_PKEY_CTX *dc = NULL;
        uint64_t t0, t1, t2;

        t0 = cpu_ns();
        key = keygen(x25519);
        if (key == NULL || EVP_PKEY_get1_encoded_public_key(key, &pub) == 0)
            rc = fail("key generation");
        t1 = cpu_ns();
        if (rc == 0 && ((pk = import_peer(x25519, peer_pub, peer_len)) == NULL ||
                        (dc = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
                        EVP_PKEY_derive_init(dc) <= 0 || EVP_PKEY_derive_set_peer(dc, pk) <= 0 ||
                        EVP_PKEY_derive(dc, secret, &secret_len) <= 0))
            rc = fail("key agreement");
        EVP_PKEY_CTX_free(dc);
        EVP_PKEY_free(pk);
        t2 = cpu_ns();
        OPENSSL_free(pub);
        EVP_PKEY_free(key);
        if (i >= WARMUP)
            gen += t1 - t0, dh += t2 - t1;
    }
    OPENSSL_free(peer_pub);
    EVP_PKEY_free(peer);
    *gen_us = (double)gen / 1e3 / n;
    *dh_us = (double)dh / 1e3 / n;
    return rc;
}

static int bench_ecdsa(EVP_PKEY *key, unsigned n, double *sign_us, double *verify_us)
{
    unsigned char hash[32], sig[80];
    size_t sig_len = 0;
    uint64_t sign = 0, verify = 0;

    for (size_t i = 0; i < sizeof(hash); i++)
        hash[i] = (unsigned char)(i * 7 + 1);
    for (unsigned i = 0; i < n + WARMUP; i++) {
        EVP_PKEY_CTX *c;
        uint64_t t0 = cpu_ns();
        int ok;

        hash[0] = (unsigned char)i; /* a new message each time, as in a real handshake */
        sig_len = sizeof(sig);
        c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        ok = c != NULL && EVP_PKEY_sign_init(c) > 0 &&
             EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) > 0 &&
             EVP_PKEY_sign(c, sig, &sig_len, hash, sizeof(hash)) > 0;
        EVP_PKEY_CTX_free(c);
        if (!ok)
            return fail("ECDSA sign");
        if (i >= WARMUP)
            sign += cpu_ns() - t0;
    }
    for (unsigned i = 0; i < n + WARMUP; i++) {
        EVP_PKEY_CTX *c;
        uint64_t t0 = cpu_ns();
        int ok;

        c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        ok = c != NULL && EVP_PKEY_verify_init(c) > 0 &&
             EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) > 0 &&
             EVP_PKEY_verify(c, sig, sig_len, hash, sizeof(hash)) == 1;
        EVP_PKEY_CTX_free(c);
        if (!ok)
            return fail("ECDSA verify");
        if (i >= WARMUP)
            verify += cpu_ns() - t0;
    }
    *sign_us = (double)sign / 1e3 / n;
    *verify_us = (double)verify / 1e3 / n;
    return 0;
}

int floor_openssl_run(const char *key_path, unsigned n, struct floor_times *out,
                      const char **version)
{
    FILE *f = fopen(key_path, "r");
    EVP_PKEY *key;
    int rc;

    *version = OpenSSL_version(OPENSSL_VERSION);
    if (f == NULL) {
        perror(key_path);
        return 1;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (key == NULL)
        return fail(key_path);
    if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256) {
        fprintf(stderr, "crypto-floor: %s is not an ECDSA P-256 key\n", key_path);
        EVP_PKEY_free(key);
        return 2;
    }
    rc = bench_ecdsa(key, n, &out->sign_us, &out->verify_us);
    if (rc == 0)
        rc = bench_ecdh(true, n, &out->x25519_gen_us, &out->x25519_dh_us);
    if (rc == 0)
        rc = bench_ecdh(false, n, &out->p256_gen_us, &out->p256_dh_us);
    EVP_PKEY_free(key);
    return rc;
}
