/* conn-t.h: the session structure, shared by conn.c (lifecycle, state machine) and relay.c
 * (moving bytes). Nothing else includes it. */
#ifndef XTP_CONN_T_H
#define XTP_CONN_T_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "bytes.h"
#include "conn.h"

/* One side of a session: the peer (Internet, TLS) or the backend (loopback, plaintext). */
struct side {
    uv_tcp_t tcp;        /* .data == the conn once initialised */
    struct xmpp_in *xin; /* owned: parses what this side sends */
    struct bytes in;     /* received, parsed or not, not yet forwarded: starts at offset fwd */
    uint64_t fwd;        /* stream offset: everything before it was forwarded or consumed */
    const uint8_t *w;    /* during relay_input(): the window being parsed ... */
    uint64_t w_off;      /* ... its first byte's stream offset ... */
    size_t w_len;        /* ... and its length */
    size_t wpending;     /* bytes queued in uv_write requests towards this side */
    uint64_t rx, tx;     /* bytes read from / written to the socket */
    bool reading;        /* uv_read_start() in effect */
    bool stream_closed;  /* this side sent </stream:stream> */
    bool connected;      /* backend: connect completed */
    bool shut;           /* shutdown requested: nothing more may be written */
    bool eof;            /* the socket reported EOF */
    int failed;          /* first hard write error (negative), or 0 */
};

struct s2s; /* s2s.h: the state of an s2s session; NULL for c2s */

struct conn {
    struct conn *next, *prev;       /* in worker->conns */
    struct worker *w;               /* borrowed */
    struct snap *snap;              /* shared (ref) */
    const struct cfg_listener *lst; /* borrowed from snap->cfg */
    const struct cfg_domain *dom;   /* borrowed from snap->cfg; NULL until known */
    struct tls *tls;                /* owned; NULL before STARTTLS */
    struct s2s *s2s;                /* owned; s2s-in and s2s-out only */
    uint64_t id;
    long lst_idx; /* index of lst in snap->cfg->listeners for metrics; -1: internal session */
    enum conn_state state;
    enum conn_end end;
    int end_err;
    int live_handles; /* +1 per uv_*_init(); freed when it drops to 0 */
    struct side peer, back;
    uv_timer_t timer; /* handshake_timeout, then the close linger */
    uv_connect_t connect_req;
    uv_shutdown_t peer_shut, back_shut;
    struct bytes back_hdr; /* the stream header for the backend, until connected */
    const char *back_text; /* the backend address for logs (borrowed from the cfg) */
    uint64_t t_start;      /* uv_now() at accept, ms */
    uint64_t t_active;     /* uv_now() at the last read on either side, ms */
    bool trimmed;          /* idle: parsers and TLS buffers given back (conn_sweep_start) */
    bool restart;          /* backend sent SASL <success/>: both streams restart */
    bool pumping;          /* inside conn_pump_peer(): no re-entry */
    bool fail_pending;     /* a write failed; closing on the next loop turn */
    bool peer_hdr_sent;    /* a stream header went to the peer on this stream */
    bool tls_up;           /* the TLS handshake is complete: peer bytes are records */
    bool back_opened;      /* c2s: the backend's first stream header arrived */
    bool pp_wait;          /* proxy_protocol: the balancer's PROXY header has not come yet */
    bool peer_restart;     /* s2s: the peer's stream restarts right after this element */
    bool hold_peer;        /* s2s: parse no more peer input until the session releases it */
    char detail[256];      /* what the close line adds to the end reason (set_detail()) */
    char peer_addr[64];    /* "ip:port" for logs */
    char peer_ip[48];      /* "ip" for jabberd2's <address/> */
};

/* Called by relay_input() when a parser callback paused the feed: returns 0 to go on feeding
 * what follows, 1 to drop the rest of the input (STARTTLS command injection), 2 to keep the
 * rest unparsed until the session resumes it (s2s: held input), or a negative code to fail.
 * Defined in conn.c. */
int conn_on_pause(struct conn *c, struct side *s, size_t rest);

/* libuv callbacks of conn.c that relay.c installs when reading resumes. */
void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
void conn_peer_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
void conn_back_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* ---- for the session kinds (s2s_in.c, s2s_out.c) ------------------------------------------ */

void conn_set_state(struct conn *c, enum conn_state next);

/* The close callback of every session handle: frees the session after the last one. */
void conn_handle_closed(uv_handle_t *h);
void conn_set_detail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends <stream:error/> (condition from cond_err) to the peer, with our header first when the
 * peer has none from us on this stream, then closes with why and log_err. */
void conn_fail_stream(struct conn *c, enum conn_end why, int cond_err, int log_err);

/* Opens the plaintext loopback stream to addr; conn.c calls the kind's connected hook. */
void conn_start_backend(struct conn *c, const struct sockaddr *addr, const char *text);

/* Starts the TLS handshake on the peer side with t (owned from now on). */
void conn_start_tls(struct conn *c, struct tls *t);

/* The send callback for TLS on the peer side. */
int conn_tls_send_cb(void *arg, const void *data, size_t len);

/* Releases held peer input (c->hold_peer was cleared): parses what is buffered, then reads on. */
void conn_resume_peer(struct conn *c);

/* Decrypts and relays what TLS holds for the peer; called when peer input may flow again. */
void conn_pump_peer(struct conn *c);

/* A write failed deep inside a call chain: close on the next loop turn (never re-entrantly,
 * since we may be inside mbedTLS or expat). */
void conn_fail_later(struct conn *c, struct side *s, int err);

#endif
