/* metrics.h: the counters behind GET /metrics, rendered in the Prometheus text exposition
 * format 0.0.4 (# HELP, # TYPE, one sample per line, names prefixed xtp_).
 *
 * One registry (struct metrics_reg) holds the label tables and one shard (struct metrics) per
 * worker. A shard is written only by its worker's thread, without locks or atomic
 * read-modify-write: each update is a relaxed load and a relaxed store of the same 64-bit
 * word, which costs what a plain increment costs. metrics_render() may run on any thread; it
 * reads every shard with relaxed loads and sums them. Sums are not a consistent snapshot (a
 * session may show as ended in one counter and not yet in another for the duration of a
 * render), which is fine for monitoring; no value is ever torn or lost.
 *
 * Every label set is bounded: listeners, end reasons, handshake failure reasons and domains
 * are the tables given to metrics_reg_new() and are addressed by index; auth methods, results
 * and byte directions are the enums below; TLS version/cipher pairs go into a table of
 * METRICS_TLS_PAIRS entries per shard, and further pairs count as version="other",
 * cipher="other". Leaf module: no libuv, no logging.  tests: test_metrics.c */
#ifndef XTP_METRICS_H
#define XTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define METRICS_TLS_PAIRS 32
#define METRICS_NO_EXPIRY INT64_MIN /* metrics_set_cert_expiry(): no sample for the domain */

/* xtp_peer_auth_total{method}: how a remote domain was authenticated. */
enum metrics_auth_method {
    METRICS_AUTH_PKIX = 0, /* certificate chain + RFC 6125 identity (SASL EXTERNAL, XEP-0178) */
    METRICS_AUTH_DANE,     /* certificate matched DNSSEC-validated TLSA records (RFC 7673) */
    METRICS_AUTH_DIALBACK, /* XEP-0220 */
    METRICS_AUTH__COUNT
};

/* xtp_peer_auth_total{result}. */
enum metrics_auth_result { METRICS_AUTH_OK = 0, METRICS_AUTH_FAIL, METRICS_AUTH_RESULT__COUNT };

/* xtp_bytes_total{direction}: bytes on the sockets, as read and written (TLS records
 * included on the peer side). */
enum metrics_dir {
    METRICS_FROM_PEER = 0, /* "from-peer" */
    METRICS_TO_PEER,       /* "to-peer" */
    METRICS_FROM_BACKEND,  /* "from-backend" */
    METRICS_TO_BACKEND,    /* "to-backend" */
    METRICS_DIR__COUNT
};

/* The label values, by index; the strings are copied by metrics_reg_new(). */
struct metrics_labels {
    const char *const *listener_names; /* xtp_sessions*{listener} */
    const char *const *listener_kinds; /* xtp_sessions*{kind}, per listener: "c2s", ... */
    size_t nlisteners;
    const char *const *end_reasons; /* xtp_session_end_total{reason}: conn_end_str() order */
    size_t nend_reasons;
    const char *const *tls_failures; /* xtp_tls_handshake_failures_total{reason} */
    size_t ntls_failures;
    const char *const *domains; /* xtp_cert_expiry_seconds{domain} */
    size_t ndomains;
};

struct metrics_reg;
struct metrics;

/* A registry with nshards zeroed shards (one per worker). Returns NULL when out of memory or
 * when nshards is 0. */
struct metrics_reg *metrics_reg_new(const struct metrics_labels *labels, size_t nshards);

/* Frees the registry and its shards; no worker may use a shard any more. NULL is fine. */
void metrics_reg_free(struct metrics_reg *r);

/* Shard i (< nshards), to be used by one thread only. */
struct metrics *metrics_reg_shard(struct metrics_reg *r, size_t i);

/* xtp_cert_expiry_seconds{domain}: the Unix time of the certificate's notAfter (compare with
 * time() in alert rules), or METRICS_NO_EXPIRY to omit the sample. Any thread; the config
 * loader calls it for each domain after loading certificates. */
void metrics_set_cert_expiry(struct metrics_reg *r, size_t domain, int64_t not_after);

/* Session accepted on listener (index into labels.listener_names): xtp_sessions +1 and
 * xtp_sessions_total +1. */
void metrics_session_open(struct metrics *m, size_t listener);

/* Session ended: xtp_sessions -1 for listener and xtp_session_end_total{reason} +1. Call
 * exactly once per metrics_session_open(), with the same listener. */
void metrics_session_close(struct metrics *m, size_t listener, size_t reason);

/* A completed TLS handshake: xtp_tls_handshakes_total{version,cipher} +1. The strings are
 * copied on first use (up to 15 and 63 bytes; longer ones count as "other"). */
void metrics_tls_handshake(struct metrics *m, const char *version, const char *cipher);

/* A failed TLS handshake: xtp_tls_handshake_failures_total{reason} +1 (index into
 * labels.tls_failures). */
void metrics_tls_failure(struct metrics *m, size_t reason);

/* xtp_peer_auth_total{method,result} +1. */
void metrics_peer_auth(struct metrics *m, enum metrics_auth_method method,
                       enum metrics_auth_result result);

/* xtp_bytes_total{direction} += n. */
void metrics_bytes(struct metrics *m, enum metrics_dir dir, uint64_t n);

/* xtp_remote_cert_changes_total +1: a remote domain presented a certificate other than the
 * one remembered for it (RFC 7590 §3.7). */
void metrics_remote_cert_change(struct metrics *m);

/* Appends the exposition (Content-Type "text/plain; version=0.0.4; charset=utf-8") to out,
 * summing every shard. Any thread. Returns 0 or -ENOMEM. */
int metrics_render(const struct metrics_reg *r, struct bytes *out);

/* Label value escaping of the exposition format: '\\' -> "\\\\", '"' -> "\\\"", newline ->
 * "\\n". Appends to out; returns 0 or -ENOMEM. */
int metrics_escape_label(struct bytes *out, const char *value);

#endif
