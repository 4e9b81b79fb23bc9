/* tls.h: mbedTLS sessions behind two opaque structs (verify.c, dialback.c use only X.509/hashes).
 * A session's TLS runs over memory: ciphertext comes in through tls_feed() and leaves through
 * the send callback given to tls_new(), so this module never touches sockets or the loop.
 *
 * Policy (RFC 9325, RFC 7590): TLS 1.3 and 1.2 only; 1.2 suites ECDHE + AES-GCM or
 * ChaCha20-Poly1305 only; groups x25519, secp256r1, secp384r1; no renegotiation; session
 * tickets whose keys rotate in memory. tests: test_tls.c */
#ifndef XTP_TLS_H
#define XTP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct tls_ticket; /* a client session saved for resumption */
struct tls;        /* one TLS session */
struct tls_server; /* certificates, policy, tickets, RNG: shared by the sessions of one cfg */

/* Once per process, before anything else here (PSA crypto, which TLS 1.3 needs). 0 or XTP_ETLS. */
int tls_global_init(void);

/* Version strings of the library, for --version. */
const char *tls_lib_version(void);

/* Loads every domain's certificate chain and key, checks that they match, refuses RSA keys
 * under 2048 bits, loads tls.ca_file if readable, and builds the server configurations.
 * Returns NULL with "FILE:LINE: message" in err (lines from cfg). Does not keep cfg. */
struct tls_server *tls_server_new(const struct cfg *cfg, char *err, size_t errlen);
void tls_server_free(struct tls_server *s); /* NULL is fine; no session may still use it */

/* With tls.ticket_key_file: (re)derives the c2s and s2s ticket keys from the file, so that
 * instances sharing it resume each other's sessions; the previous key keeps decrypting.
 * Call it at least every TICKET_LIFETIME (1 h), or the ticket module makes a random key of its
 * own. Without the key file: nothing. 0 or XTP_ECONFIG/XTP_ETLS with "FILE:LINE: ..." in err. */
int tls_server_rotate(struct tls_server *s, const struct cfg *cfg, char *err, size_t errlen);

/* Seconds until the certificate of domain expires (negative once expired), or 0 when unknown. */
long long tls_server_cert_expiry(const struct tls_server *s, const char *domain);

enum tls_role {
    TLS_ROLE_C2S = 0, /* ALPN "xmpp-client" (XEP-0368) */
    TLS_ROLE_S2S,     /* ALPN "xmpp-server" */
};

/* Ciphertext output: must take all len bytes (queue them) and return 0, or return a negative
 * code, which fails the TLS call in progress with XTP_ETLS. */
typedef int tls_send_fn(void *arg, const void *data, size_t len);

/* A server-side session. domain: the certificate to present when the client sends no SNI
 * (NULL: the first domain of the cfg). SNI naming another served domain selects its
 * certificate; SNI naming a domain we do not serve fails the handshake. NULL on ENOMEM, or
 * when domain is not one of the cfg's domains. */
struct tls *tls_new(struct tls_server *s, enum tls_role role, const char *domain, tls_send_fn *send,
                    void *send_arg);
void tls_free(struct tls *t); /* NULL is fine */

/* A client session for s2s-out from our domain to remote: presents domain's certificate, sends
 * SNI = remote (the XMPP domain, RFC 7590 §3.1), ALPN xmpp-server, and resumes resume when
 * given (borrowed; copied). The server certificate is checked against tls.ca_file but never
 * fails the handshake: judge tls_peer_flags() and tls_peer_chain() with verify.c. NULL on
 * ENOMEM or when domain is not ours. */
struct tls *tls_new_client(struct tls_server *s, const char *domain, const char *remote,
                           const struct tls_ticket *resume, tls_send_fn *send, void *send_arg);

/* The ticket of a finished client handshake, for resuming the next one to the same remote:
 * TLS 1.3's latest NewSessionTicket (it arrives after the handshake, through tls_read()) or the
 * TLS 1.2 session. The caller owns it (free with tls_ticket_free()); NULL when there is none. */
struct tls_ticket *tls_ticket_take(struct tls *t);
void tls_ticket_free(struct tls_ticket *k); /* NULL is fine */

/* After the handshake: mbedTLS's verification flags for the peer's chain (0: trusted, valid
 * dates; UINT32_MAX before the handshake), and the peer's certificates as DER, leaf first (at
 * most max; returns how many, 0 when it sent none). The pointers live as long as the session. */
uint32_t tls_peer_flags(const struct tls *t);
size_t tls_peer_chain(const struct tls *t, const uint8_t **der, size_t *len, size_t max);

/* Lends ciphertext to the session for the tls_* calls that follow. Before returning to the
 * loop the caller calls tls_feed_end(), which copies what was not consumed (0 or -ENOMEM). */
void tls_feed(struct tls *t, const void *data, size_t len);
int tls_feed_end(struct tls *t);

/* Advances the handshake. 0: done; -EAGAIN: needs more input; XTP_ETLS: failed (the alert, if
 * any, has been sent through the send callback; tls_last_error() says why). */
int tls_handshake(struct tls *t);

/* Decrypts into buf. Returns bytes (> 0), -EAGAIN when no whole record is buffered,
 * XTP_ECLOSED after the peer's close_notify, or XTP_ETLS. Call until it returns <= 0:
 * a TLS 1.3 NewSessionTicket or KeyUpdate can hide data behind a WANT_READ. */
int tls_read(struct tls *t, void *buf, size_t cap);

/* Encrypts all len bytes and hands the records to the send callback. 0 or XTP_ETLS. */
int tls_write(struct tls *t, const void *data, size_t len);

/* For idle sessions: gives the kernel back the pages inside mbedTLS's two record buffers
 * (16 KiB each, allocated for the session's life by mbedtls_ssl_setup()) when nothing is
 * buffered in them: handshake done, no input waiting here or in mbedTLS, no output pending.
 * The first page of each stays, which holds the record sequence numbers; the others read
 * back as zeros and cost a page fault when the next record arrives. Returns the bytes given
 * back (0 when the session is busy, or when this mbedTLS's layout is not the one checked
 * for). The decrypted state (keys, counters) is untouched: the session goes on as before.
 * TLS 1.2 has mbedtls_ssl_context_save() for this, but 3.6 supports it for DTLS only; this
 * works for 1.2 and 1.3 alike. */
size_t tls_trim(struct tls *t);

/* Sends close_notify. 0 or XTP_ETLS. */
int tls_close_notify(struct tls *t);

/* After the handshake: "TLSv1.3", "TLS1-3-AES-128-GCM-SHA256", the served domain the client
 * asked for with SNI (NULL: no SNI), the negotiated ALPN protocol (NULL: none), whether the
 * session was resumed. Before the handshake: "none" / NULL / false. */
const char *tls_version(const struct tls *t);
const char *tls_cipher(const struct tls *t);
const char *tls_sni(const struct tls *t);
const char *tls_alpn(const struct tls *t);
bool tls_resumed(const struct tls *t);

/* The library's text for the last failure of this session ("" if none), for the caller's log. */
const char *tls_last_error(const struct tls *t);

#endif
