/* xtp-mbedtls-config.h: the mbedTLS 3.6 profile of xmpp-tls-proxy (XTP_MBEDTLS_PROFILE=ON).
 *
 * scripts/mbedtls-profile.sh copies this file into the source tree as
 * include/mbedtls/xtp-mbedtls-config.h and makes the default include/mbedtls/mbedtls_config.h
 * name it as MBEDTLS_USER_CONFIG_FILE. build_info.h includes it right after the default
 * configuration, in the library and in every program built against the installed headers, so
 * the proxy always sees the configuration the library was built with (struct layouts depend on
 * it: MBEDTLS_PLATFORM_MEMORY, for one, changes what the library calls to allocate).
 *
 * What stays: everything the proxy uses. TLS 1.2 and 1.3, session tickets, ECDSA and RSA
 * (PKCS#1 v1.5 and PSS) for our certificates and for s2s peers, X.509 parsing and verification,
 * PSA, HMAC and SHA-256 (dialback.c, certmem.c, tls.c's ticket keys). This file only adds and
 * tunes; it removes no feature. bench/README.md ("mbedTLS profile") has the measurement of
 * every knob below.
 */
#ifndef XTP_MBEDTLS_CONFIG_H
#define XTP_MBEDTLS_CONFIG_H

/* ---- What Debian's package sets (debian/rules runs scripts/config.py with these) ---------- */
#define MBEDTLS_DEPRECATED_WARNING
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD
#define MBEDTLS_CMAC_C
#define MBEDTLS_SSL_DTLS_SRTP

/* ---- secp256r1: p256-m left out, by measurement ----------------------------------------- */
/* MBEDTLS_PSA_P256M_DRIVER_ENABLED (3rdparty/p256-m, with MBEDTLS_USE_PSA_CRYPTO and without
 * MBEDTLS_ECDSA_DETERMINISTIC, because p256-m signs only randomized ECDSA) made every P-256
 * operation 3 to 16 times SLOWER on x86-64 than mbedTLS's own code (crypto-floor medians: key
 * generation 232 -> 3580 us, ECDH 653 -> 1793 us, ECDSA sign 281 -> 1932 us). p256-m is
 * written for code size on 32-bit Cortex-M; the bignum code with its precomputed comb tables
 * and NIST fast reduction wins on a 64-bit CPU. bench/README.md has the numbers. */

/* ---- X25519 -------------------------------------------------------------------------------- */
/* HACL*'s verified Curve25519 (3rdparty/everest). In 3.6 PSA's key agreement goes through
 * mbedtls_ecdh_get_params()/mbedtls_ecdh_calc_secret() (library/psa_crypto_ecp.c), which use
 * Everest when this is set: the X25519 shared secret gets about 5 times faster. The ephemeral
 * key's public half (psa_export_public_key) would still be computed by ecp.c's Montgomery
 * ladder; cmake/mbedtls/patches/01-everest-x25519-public-key.patch makes it use Everest too,
 * under this same option. */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED

/* ---- ECP tuning (the bignum code: P-256, P-384, ECDSA) ---------------------------------- */
/* The defaults, measured and kept (bench/README.md): FIXED_POINT_OPTIM 0 makes ECDSA signing
 * and P-256 key generation 2.4 to 2.7 times slower; WINDOW_SIZE (other points than the base
 * point: ECDH, verify) 2 costs 10% on P-256 ECDH, 6 is within noise of 4. Stated here so the
 * profile does not depend on upstream defaults. */
#undef MBEDTLS_ECP_WINDOW_SIZE
#define MBEDTLS_ECP_WINDOW_SIZE 4
#undef MBEDTLS_ECP_FIXED_POINT_OPTIM
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 1
#define MBEDTLS_ECP_NIST_OPTIM

/* ---- Record buffers ------------------------------------------------------------------------ */
/* Not MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH: with an output size below 16 KiB it shrinks the
 * TLS 1.2 input buffer after the handshake to that size although no max_fragment_length was
 * negotiated, and a standard client's full-size record then ends the session (found by
 * tests/integration/t24-tls-records.sh run against this profile). Idle sessions give their
 * buffers back through tls_trim() instead. */

/* Let the proxy choose mbedTLS's allocator (tls.c, page_calloc()): the record buffers then
 * start on page boundaries, so that tls_trim() can give back every page of an idle session's
 * buffers, the first one included (bench/README.md, "Memory per idle session"). Anything
 * smaller than a page still comes from calloc. */
#define MBEDTLS_PLATFORM_MEMORY
/* Outgoing records: 11.85 KB less RSS per idle session (79.25 -> 67.4 KB). One
 * mbedtls_ssl_write() takes at most this much, and tls_write() loops over the rest. The limit
 * is also the largest handshake message mbedTLS can send (it does not fragment TLS handshake
 * messages): our Certificate message, i.e. the configured chain, must fit in it. 4096 takes
 * a P-256 or RSA-2048 leaf with one or two intermediates (Let's Encrypt chains are 2 to 3.5 KB
 * in DER; three RSA-4096 certificates, 4.0 KB, still work). A longer chain loads, but every
 * handshake fails with MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL (tested with 5.4 KB). Incoming records
 * stay at 16384: RFC 8446 §5.1 lets peers send that much and we cannot make them send less
 * (no max_fragment_length or record_size_limit from clients). */
#undef MBEDTLS_SSL_OUT_CONTENT_LEN
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096

#endif /* XTP_MBEDTLS_CONFIG_H */
