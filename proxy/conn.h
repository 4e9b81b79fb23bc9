/* conn.h: inbound sessions (c2s-in; s2s-in later), from accept to the last close callback.
 *
 *  c2s-in session (RFC 6120 §4-§6, RFC 7590, XEP-0368):
 *    STARTTLS:   NEW -> PLAIN_STREAM -> TLS_HANDSHAKE
 *    direct TLS: NEW ----------------> TLS_HANDSHAKE
 *    then:       TLS_HANDSHAKE -> PEER_STREAM -> BACKEND_CONNECT -> RELAY
 *    any state --(error | timeout | EOF)--> CLOSING --(last close callback)--> freed
 *
 * The proxy answers the pre-TLS stream itself and offers only <starttls><required/>; the
 * backend is contacted only after TLS and a valid post-TLS stream header. */
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
    CONN_BACKEND_CONNECT, /* plaintext connect to the backend; peer input is held */
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

/* Closes every session of w with <system-shutdown/> (SIGTERM/SIGINT). */
void conn_close_all(struct worker *w);

#endif
