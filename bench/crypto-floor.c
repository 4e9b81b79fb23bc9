/* crypto-floor.c: what the asymmetric work of one TLS 1.3 handshake costs in mbedTLS on this
 * machine, measured with the calls mbedTLS 3.6 itself makes (bench/c2s.sh compares the proxy's
 * CPU per handshake with this floor).
 *
 * A full TLS 1.3 server handshake with an ECDSA certificate does, besides hashing and AEAD:
 *   - one signature for CertificateVerify (RFC 8446 §4.4.3): mbedtls_pk_sign_ext() with the
 *     server key, here ECDSA P-256 with SHA-256 (deterministic ECDSA, RFC 6979, as Debian's
 *     build enables MBEDTLS_ECDSA_DETERMINISTIC);
 *   - the server side of the (EC)DHE key exchange: an ephemeral key pair (psa_generate_key() +
 *     psa_export_public_key()) and the shared secret (psa_raw_key_agreement()), which is how
 *     mbedTLS 3.6 does TLS 1.3 key exchange, for X25519 or secp256r1.
 * So the floor per handshake is sign + keygen + shared secret, for each group. ECDSA verify is
 * printed too: a client pays it for CertificateVerify and again for the certificate chain.
 *
 *   crypto-floor --key tests/certs/example.test.key [-n ITERATIONS] [--lib mbedtls|openssl]
 *
 * --lib openssl (when built with OpenSSL) measures the same operations the way OpenSSL 3's
 * libssl makes them (floor_openssl.c): the floor of stunnel, HAProxy and jabberd2.
 *
 * Times are CPU time of this thread (CLOCK_THREAD_CPUTIME_ID) per operation, after a short
 * warm-up. Output: a table on stdout, then one "RESULT key=value ..." line for scripts. Exit
 * status 0, or 1 when an operation fails, 2 on bad usage. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <psa/crypto.h>

#include "floor_openssl.h"

#define WARMUP 10

struct timer {
    uint64_t ns; /* accumulated CPU time */
    unsigned ops;
};

static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double per_op_us(const struct timer *t)
{
    return t->ops ? (double)t->ns / 1e3 / t->ops : 0;
}

static void row(const char *what, double us)
{
    printf("  %-44s %9.1f us %9.0f /s\n", what, us, us > 0 ? 1e6 / us : 0);
}

/* The table and the RESULT line, the same for both libraries. */
static void print_times(const char *lib, const char *version, unsigned long n,
                        const struct floor_times *t)
{
    double floor_x = t->sign_us + t->x25519_gen_us + t->x25519_dh_us;
    double floor_p = t->sign_us + t->p256_gen_us + t->p256_dh_us;

    printf("crypto-floor: %s %s, %lu iterations each, CPU time per operation\n", lib, version, n);
    row("ECDSA P-256 sign (SHA-256, server key)", t->sign_us);
    row("ECDSA P-256 verify (client side)", t->verify_us);
    row("X25519 key generation + public key", t->x25519_gen_us);
    row("X25519 shared secret", t->x25519_dh_us);
    row("secp256r1 key generation + public key", t->p256_gen_us);
    row("secp256r1 shared secret", t->p256_dh_us);
    printf("  floor per full TLS 1.3 server handshake (sign + key exchange):\n");
    printf("    x25519    %9.1f us = %6.0f handshakes/s per core\n", floor_x, 1e6 / floor_x);
    printf("    secp256r1 %9.1f us = %6.0f handshakes/s per core\n", floor_p, 1e6 / floor_p);
    /* The version has no spaces in the RESULT line (OpenSSL's text has some). */
    printf("RESULT lib=%s version=", lib);
    for (const char *c = version; *c; c++)
        putchar(*c == ' ' ? '_' : *c);
    printf(" n=%lu sign_us=%.1f verify_us=%.1f x25519_gen_us=%.1f x25519_dh_us=%.1f "
           "p256_gen_us=%.1f p256_dh_us=%.1f floor_x25519_us=%.1f floor_p256_us=%.1f\n",
           n, t->sign_us, t->verify_us, t->x25519_gen_us, t->x25519_dh_us, t->p256_gen_us,
           t->p256_dh_us, floor_x, floor_p);
}

static int fail_mbedtls(const char *what, int rc)
{
    char msg[128];

    mbedtls_strerror(rc, msg, sizeof(msg));
    fprintf(stderr, "crypto-floor: %s: -0x%04x %s\n", what, (unsigned)-rc, msg);
    return 1;
}

static int fail_psa(const char *what, psa_status_t st)
{
    fprintf(stderr, "crypto-floor: %s: PSA status %d\n", what, (int)st);
    return 1;
}

/* Ephemeral ECDH as TLS 1.3 does it for one group: n times (plus warm-up) generate a key pair
 * and export its public key (timed into gen), derive the secret with a fixed peer (into dh). */
static int bench_ecdh(psa_ecc_family_t family, size_t bits, unsigned n, struct timer *gen,
                      struct timer *dh)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_key_id_t peer = 0;
    uint8_t peer_pub[PSA_EXPORT_PUBLIC_KEY_MAX_SIZE], pub[PSA_EXPORT_PUBLIC_KEY_MAX_SIZE];
    uint8_t secret[PSA_RAW_KEY_AGREEMENT_OUTPUT_MAX_SIZE];
    size_t peer_len, pub_len, secret_len;
    psa_status_t st;

    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_DERIVE);
    psa_set_key_algorithm(&attr, PSA_ALG_ECDH);
    psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_KEY_PAIR(family));
    psa_set_key_bits(&attr, bits);
    st = psa_generate_key(&attr, &peer);
    if (st == PSA_SUCCESS)
        st = psa_export_public_key(peer, peer_pub, sizeof(peer_pub), &peer_len);
    if (st != PSA_SUCCESS)
        return fail_psa("peer key", st);
    for (unsigned i = 0; i < n + WARMUP; i++) {
        psa_key_id_t key = 0;
        uint64_t t0, t1, t2;

        t0 = cpu_ns();
        st = psa_generate_key(&attr, &key);
        if (st == PSA_SUCCESS)
            st = psa_export_public_key(key, pub, sizeof(pub), &pub_len);
        t1 = cpu_ns();
        if (st == PSA_SUCCESS)
            st = psa_raw_key_agreement(PSA_ALG_ECDH, key, peer_pub, peer_len, secret,
                                       sizeof(secret), &secret_len);
        (void)psa_destroy_key(key);
        t2 = cpu_ns();
        if (st != PSA_SUCCESS) {
            psa_destroy_key(peer);
            return fail_psa("key exchange", st);
        }
        if (i >= WARMUP) {
            gen->ns += t1 - t0, gen->ops++;
            dh->ns += t2 - t1, dh->ops++;
        }
    }
    psa_destroy_key(peer);
    return 0;
}

/* n signatures over a SHA-256 value with the key, as TLS 1.3's CertificateVerify makes them,
 * and n verifications of one of them. */
static int bench_ecdsa(mbedtls_pk_context *pk, mbedtls_ctr_drbg_context *drbg, unsigned n,
                       struct timer *sign, struct timer *verify)
{
    unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    int rc;

    for (size_t i = 0; i < sizeof(hash); i++)
        hash[i] = (unsigned char)(i * 7 + 1);
    for (unsigned i = 0; i < n + WARMUP; i++) {
        uint64_t t0 = cpu_ns();

        hash[0] = (unsigned char)i; /* a new message each time, as in a real handshake */
        rc = mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig,
                                 sizeof(sig), &sig_len, mbedtls_ctr_drbg_random, drbg);
        if (rc != 0)
            return fail_mbedtls("mbedtls_pk_sign_ext", rc);
        if (i >= WARMUP)
            sign->ns += cpu_ns() - t0, sign->ops++;
    }
    for (unsigned i = 0; i < n + WARMUP; i++) {
        uint64_t t0 = cpu_ns();

        rc = mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, sig_len);
        if (rc != 0)
            return fail_mbedtls("mbedtls_pk_verify", rc);
        if (i >= WARMUP)
            verify->ns += cpu_ns() - t0, verify->ops++;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: crypto-floor --key FILE [-n ITERATIONS] [--lib mbedtls|openssl]\n"
               "  --key FILE   the server's private key (PEM; ECDSA P-256 for the TLS 1.3 floor)\n"
               "  -n N         iterations of each operation (default 1000)\n"
               "  --lib L      mbedtls (default)"
#ifdef XTP_FLOOR_OPENSSL
               " or openssl"
#else
               " (openssl: not built in)"
#endif
               "\n");
}

int main(int argc, char **argv)
{
    const char *key_path = NULL;
    unsigned long n = 1000;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context pk;
    struct timer sign = {0}, verify = {0}, xgen = {0}, xdh = {0}, pgen = {0}, pdh = {0};
    struct floor_times ft;
    char version[32];
    bool openssl = false;
    int rc, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key_path = argv[++i];
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            char *end;

            errno = 0;
            n = strtoul(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || argv[i][0] == '-' || n < 1 || n > 1000000) {
                fprintf(stderr, "crypto-floor: -n wants 1..1000000, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc) {
            i++;
            openssl = strcmp(argv[i], "openssl") == 0;
            if (!openssl && strcmp(argv[i], "mbedtls") != 0) {
                fprintf(stderr, "crypto-floor: --lib wants mbedtls or openssl, not '%s'\n",
                        argv[i]);
                return 2;
            }
#ifndef XTP_FLOOR_OPENSSL
            if (openssl) {
                fprintf(stderr, "crypto-floor: built without OpenSSL: no --lib openssl\n");
                return 2;
            }
#endif
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (key_path == NULL) {
        usage(stderr);
        return 2;
    }
#ifdef XTP_FLOOR_OPENSSL
    if (openssl) {
        const char *ov;

        rc = floor_openssl_run(key_path, (unsigned)n, &ft, &ov);
        if (rc == 0)
            print_times("OpenSSL", ov, n, &ft);
        return rc;
    }
#endif
    if (psa_crypto_init() != PSA_SUCCESS) {
        fprintf(stderr, "crypto-floor: psa_crypto_init failed\n");
        return 1;
    }
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&pk);
    rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                               (const unsigned char *)"crypto-floor", 12);
    if (rc != 0) {
        status = fail_mbedtls("mbedtls_ctr_drbg_seed", rc);
        goto done;
    }
    rc = mbedtls_pk_parse_keyfile(&pk, key_path, NULL, mbedtls_ctr_drbg_random, &drbg);
    if (rc != 0) {
        status = fail_mbedtls(key_path, rc);
        goto done;
    }
    if (!mbedtls_pk_can_do(&pk, MBEDTLS_PK_ECDSA) || mbedtls_pk_get_bitlen(&pk) != 256) {
        fprintf(stderr, "crypto-floor: %s is not an ECDSA P-256 key\n", key_path);
        status = 2;
        goto done;
    }
    if (bench_ecdsa(&pk, &drbg, (unsigned)n, &sign, &verify) != 0 ||
        bench_ecdh(PSA_ECC_FAMILY_MONTGOMERY, 255, (unsigned)n, &xgen, &xdh) != 0 ||
        bench_ecdh(PSA_ECC_FAMILY_SECP_R1, 256, (unsigned)n, &pgen, &pdh) != 0) {
        status = 1;
        goto done;
    }

    mbedtls_version_get_string(version);
    ft = (struct floor_times){
        .sign_us = per_op_us(&sign),
        .verify_us = per_op_us(&verify),
        .x25519_gen_us = per_op_us(&xgen),
        .x25519_dh_us = per_op_us(&xdh),
        .p256_gen_us = per_op_us(&pgen),
        .p256_dh_us = per_op_us(&pdh),
    };
    print_times("mbedTLS", version, n, &ft);
    status = 0;
done:
    mbedtls_pk_free(&pk);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_psa_crypto_free();
    return status;
}
