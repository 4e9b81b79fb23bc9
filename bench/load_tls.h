/* load_tls.h: the TLS client of xtp-load behind one interface, with two implementations:
 * mbedTLS 3.6 (load_tls_mbedtls.c, always built) and OpenSSL 3 (load_tls_openssl.c, built when
 * CMake finds OpenSSL; XTP_LOAD_OPENSSL is then defined). Both drive a connected non-blocking
 * socket directly: no memory BIO, no event loop here (xtp-load watches the socket).
 *
 * Why two: a full TLS 1.3 handshake costs an mbedTLS client about 3 ms of CPU on our 2-vCPU VM
 * (X25519 in generic bignum code plus two ECDSA verifications), more than the proxy's server side
 * costs, so an mbedTLS client cannot saturate a server; OpenSSL's client costs about a tenth of
 * that. bench/compare.sh uses OpenSSL when it is there; bench/c2s.sh keeps mbedTLS.
 *
 * Every call returns at once. Error text (the library's own) is kept per session and read with
 * error(); a session's calls are only ever made from one thread. */
#ifndef XTP_BENCH_LOAD_TLS_H
#define XTP_BENCH_LOAD_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* Return values of handshake(), read() and write() besides success (0, or a byte count). */
enum load_tls_status {
    LOAD_TLS_WANT_READ = -1,  /* wait until the socket is readable, then call again */
    LOAD_TLS_WANT_WRITE = -2, /* wait until the socket is writable, then call again */
    LOAD_TLS_CLOSED = -3,     /* the server closed the connection or sent close_notify */
    LOAD_TLS_FAILED = -4,     /* anything else: error() says what */
};

/* How a session uses tickets (RFC 8446 §4.6.1, RFC 5077). */
enum load_tls_role {
    LOAD_TLS_FRESH = 0, /* a full handshake; any ticket received is ignored */
    LOAD_TLS_PRIMER,    /* a full handshake whose first ticket the conf keeps */
    LOAD_TLS_RESUME,    /* offers the ticket the conf keeps */
};

struct load_tls_opts {
    const char *domain; /* SNI; with ca, also the name the certificate must match */
    const char *ca;     /* PEM file of trusted CAs; NULL: the certificate is not verified */
    int version;        /* 0: TLS 1.2 or 1.3, 12: 1.2 only, 13: 1.3 only */
    bool secp256r1;     /* the TLS 1.3 key share group: secp256r1, else x25519 */
    bool alpn;          /* offer ALPN "xmpp-client" (XEP-0368 Direct TLS) */
    bool tickets;       /* ask for session tickets (for LOAD_TLS_PRIMER and LOAD_TLS_RESUME) */
    bool psk_only;      /* resumed TLS 1.3 handshakes offer psk_ke only (no (EC)DHE) */
};

/* One implementation. conf and session objects are opaque to the caller. */
struct load_tls_lib {
    const char *name; /* "mbedtls", "openssl" */
    /* The shared client configuration. Returns NULL and writes err on failure. */
    void *(*conf_new)(const struct load_tls_opts *o, char *err, size_t errlen);
    void (*conf_free)(void *conf); /* after every session is freed; NULL is fine */
    /* True once a LOAD_TLS_PRIMER session's ticket is kept. */
    bool (*have_ticket)(void *conf);
    /* A session on fd (connected, non-blocking; not owned: the caller closes it). Returns
     * NULL and writes err on failure. */
    void *(*sess_new)(void *conf, int fd, enum load_tls_role role, char *err, size_t errlen);
    void (*sess_free)(void *s); /* NULL is fine */
    /* Advances the handshake: 0 when it is done, else a load_tls_status. */
    int (*handshake)(void *s);
    /* Decrypted bytes (> 0) or a load_tls_status. LOAD_TLS_WANT_READ means the socket is
     * empty: post-handshake messages (tickets) are consumed on the way. */
    int (*read)(void *s, void *buf, size_t len);
    /* Bytes taken (> 0, maybe fewer than len) or a load_tls_status. After WANT_* call again
     * with the same len; the buffer may have moved. */
    int (*write)(void *s, const void *buf, size_t len);
    /* Sends close_notify, best effort (RFC 8446 §6.1). */
    void (*close_notify)(void *s);
    /* After the handshake: 1 resumed, 0 full, -1 unknown (mbedTLS can only tell with ca). */
    int (*resumed)(void *s);
    /* After the handshake: the protocol version and cipher suite names. */
    const char *(*version)(void *s);
    const char *(*cipher)(void *s);
    /* The text of the last failure. */
    const char *(*error)(void *s);
};

extern const struct load_tls_lib load_tls_mbedtls;
#ifdef XTP_LOAD_OPENSSL
extern const struct load_tls_lib load_tls_openssl;
#endif

#endif
