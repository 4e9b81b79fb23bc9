/* conn.h: sessions, from accept to the last close callback: c2s-in and s2s-in (this file and
 * s2s_in.c), s2s-out (s2s_out.c). conn.c owns the sockets, TLS plumbing and the one close path;
 * the kinds differ after the post-TLS stream header (inbound) or from the start (s2s-out).
 *
 *  c2s-in session (RFC 6120 §4-§6, RFC 7590, XEP-0368):
 *    STARTTLS:   NEW -> PLAIN_STREAM -> TLS_HANDSHAKE
 *    direct TLS: NEW ----------------> TLS_HANDSHAKE
 *    then:       TLS_HANDSHAKE -> PEER_STREAM -> BACKEND_CONNECT -> RELAY
 *    any state --(error | timeout | EOF)--> CLOSING --(last close callback)--> freed
 *
 *  s2s-in session (RFC 6120, XEP-0178, XEP-0220, design.md §2):
 *    as c2s-in up to PEER_STREAM, then
 *    PEER_STREAM -> S2S_AUTH -> BACKEND_CONNECT -> S2S_DIALBACK -> RELAY
 *    (S2S_AUTH: SASL EXTERNAL or dialback with the remote; S2S_DIALBACK: the backend checks
 *    the key the proxy gave it, calling back through s2s-out)
 *
 *  s2s-out session (the backend's outbound stream; the "peer" side is the remote server):
 *    NEW -> OUT_BACKEND -> OUT_RESOLVE -> OUT_CONNECT -> OUT_STREAM -> OUT_AUTH -> RELAY
 *    (OUT_STREAM covers STARTTLS and the TLS handshake; Direct TLS starts the handshake at
 *    once; OUT_AUTH is SASL EXTERNAL or dialback over TLS)
 *
 * The proxy answers the pre-TLS stream itself and offers only <starttls><required/>; the
 * backend is contacted only after TLS, a valid post-TLS stream header and, for s2s, an
 * authenticated remote domain. */
#ifndef XTP_CONN_H
#define XTP_CONN_H

#include <stdint.h>
#include <uv.h>

#include "log.h"

struct cfg_listener;
struct conn;
struct worker;

enum conn_state {
    CONN_NEW = 0,
    CONN_PLAIN_STREAM,    /* pre-TLS stream: we offer <starttls><required/></starttls> */
    CONN_TLS_HANDSHAKE,   /* every byte after <starttls/> was discarded */
    CONN_PEER_STREAM,     /* waiting for the peer's stream header over TLS */
    CONN_S2S_AUTH,        /* s2s-in: the remote proves its domain (SASL EXTERNAL, dialback) */
    CONN_BACKEND_CONNECT, /* plaintext connect to the backend; peer input is held */
    CONN_S2S_DIALBACK,    /* s2s-in: the backend verifies our key; peer input is held */
    CONN_OUT_BACKEND,     /* s2s-out: the backend's stream is open; waiting for <db:result> */
    CONN_OUT_RESOLVE,     /* s2s-out: DNS (or resolve.static) for the remote domain */
    CONN_OUT_CONNECT,     /* s2s-out: TCP connect to one candidate address */
    CONN_OUT_STREAM,      /* s2s-out: stream with the remote up to and through TLS */
    CONN_OUT_AUTH,        /* s2s-out: over TLS: SASL EXTERNAL or dialback */
    CONN_RELAY,           /* bytes flow both ways; only <stream:features> is rewritten */
    CONN_CLOSING,
};

/* Why a session ended: one per session, logged once. XX(name, token) */
#define CONN_END_MAP(XX)                                                                           \
    XX(DONE, "done")                       /* both streams closed cleanly */                       \
    XX(PEER_EOF, "peer-eof")               /* peer closed TCP or TLS without </stream> */          \
    XX(PEER_IO, "peer-io-error")           /* read/write error on the peer socket */               \
    XX(PEER_PROTOCOL, "peer-protocol")     /* the peer broke XMPP rules; stream error sent */      \
    XX(TLS, "tls-error")                   /* handshake or record failure */                       \
    XX(TIMEOUT, "timeout")                 /* limits.handshake_timeout */                          \
    XX(BACKEND_CONNECT, "backend-connect") /* backend unreachable */                               \
    XX(BACKEND_EOF, "backend-eof")         /* backend closed without </stream> */                  \
    XX(BACKEND_IO, "backend-io-error")                                                             \
    XX(BACKEND_PROTOCOL, "backend-protocol") /* backend sent what we cannot relay */               \
    XX(LIMIT, "limit")                       /* refused: limits.max_connections */                 \
    XX(AUTH, "not-authenticated")            /* s2s: the remote domain failed authentication */    \
    XX(REMOTE, "remote-failed")              /* s2s-out: DNS, connect, TLS or stream to remote */  \
    XX(SHUTDOWN, "shutdown")                                                                       \
    XX(NOMEM, "no-memory")

enum conn_end {
#define XX(name, _) CONN_END_##name,
    CONN_END_MAP(XX)
#undef XX
        CONN_END__COUNT
};

const char *conn_state_name(enum conn_state s);
const char *conn_end_str(enum conn_end e);

/* Accepts one pending connection on server for listener lst (borrowed from w->snap->cfg).
 * Refuses it at once when w is at limits.max_connections or stopping. Never fails loudly:
 * problems are logged and counted. */
void conn_accept(struct worker *w, uv_stream_t *server, const struct cfg_listener *lst);

/* Ends the session: sets the end reason once, logs the close line, flushes what is queued
 * (close_notify included) and closes every handle; memory goes in the last close callback.
 * err: the code behind it (0 if none), for the log. Idempotent; callers return right after. */
void conn_close(struct conn *c, enum conn_end why, int err);

/* A log line prefixed "conn=ID listener=NAME peer=IP:PORT state=STATE". */
void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The TLS handshake failure reasons of xtp_tls_handshake_failures_total{reason}, in the
 * order metrics_tls_failure() takes them. */
#define CONN_TLS_FAILURES                                                                          \
    {                                                                                              \
        "protocol", "timeout", "peer-closed", "other"                                              \
    }

/* Appends the JSON body of GET /status (admin.c, status_cli.h): the process, then w's sessions
 * and, when more is not empty, the session objects it holds (comma-separated, from
 * conn_status_sessions() of the other workers). 0 or -ENOMEM. */
struct bytes;
struct json;
int conn_status_json(struct worker *w, struct bytes *out, const struct bytes *more);

/* Writes one JSON object per session of w into an open array (the loop's own thread). */
void conn_status_sessions(struct worker *w, struct json *j);

/* Counts w's live sessions into w->metrics as opened (a new metrics registry after a reload:
 * they will close into it). */
void conn_count_live(struct worker *w);

/* Idle sessions (RELAY, nothing read on either side for CONN_IDLE_TRIM_MS) give back what
 * only moving bytes need: both parsers (xmpp_in_trim) and the pages of the TLS record
 * buffers (tls_trim), then the heap's free pages go back to the kernel (malloc_trim). A
 * session is trimmed once per idle spell; its next read rebuilds what it needs. Busy
 * sessions never pay for it: the stanza path allocates nothing. Checked every
 * CONN_SWEEP_MS by a timer on w's loop; conn_sweep_stop() closes it (at stop). */
#define CONN_IDLE_TRIM_MS 5000
#define CONN_SWEEP_MS     2000
void conn_sweep_start(struct worker *w);
void conn_sweep_stop(struct worker *w);

/* Trims w's sessions idle for idle_ms or more now; returns how many (conn_sweep_start's
 * timer calls it with CONN_IDLE_TRIM_MS). */
unsigned conn_trim_idle(struct worker *w, uint64_t idle_ms);

/* Closes every session of w with <system-shutdown/> (SIGTERM/SIGINT). */
void conn_close_all(struct worker *w);

#endif
