/* floor_openssl.h: crypto-floor's measurement of OpenSSL 3 (crypto-floor --lib openssl), the
 * library under stunnel, HAProxy and jabberd2. Built only with OpenSSL (XTP_FLOOR_OPENSSL). */
#ifndef XTP_BENCH_FLOOR_OPENSSL_H
#define XTP_BENCH_FLOOR_OPENSSL_H

/* CPU time per operation in microseconds (CLOCK_THREAD_CPUTIME_ID), as in crypto-floor.c. */
struct floor_times {
    double sign_us, verify_us;          /* ECDSA P-256 with SHA-256, the server key */
    double x25519_gen_us, x25519_dh_us; /* ephemeral key pair + encoded public key; secret */
    double p256_gen_us, p256_dh_us;
};

/* Measures n operations of each kind (after a warm-up) with the PEM key at key_path, which
 * must be ECDSA P-256. Returns 0, or 1 after printing what failed to stderr (2: not a P-256
 * key). version gets OpenSSL's version text. */
int floor_openssl_run(const char *key_path, unsigned n, struct floor_times *out,
                      const char **version);

#endif
