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

struct conn {
    struct conn *next, *prev;       /* in worker->conns */
    struct worker *w;               /* borrowed */
    struct snap *snap;              /* shared (ref) */
    const struct cfg_listener *lst; /* borrowed from snap->cfg */
    const struct cfg_domain *dom;   /* borrowed from snap->cfg; NULL until known */
    struct tls *tls;                /* owned; NULL before STARTTLS */
    uint64_t id;
    enum conn_state state;
    enum conn_end end;
    int end_err;
    int live_handles; /* +1 per uv_*_init(); freed when it drops to 0 */
    struct side peer, back;
    uv_timer_t timer; /* handshake_timeout, then the close linger */
    uv_connect_t connect_req;
    uv_shutdown_t peer_shut, back_shut;
    struct bytes back_hdr; /* the stream header for the backend, until connected */
    uint64_t t_start;      /* uv_now() at accept, ms */
    bool restart;          /* backend sent SASL <success/>: both streams restart */
    bool pumping;          /* inside conn_pump_peer(): no re-entry */
    bool fail_pending;     /* a write failed; closing on the next loop turn */
    bool peer_hdr_sent;    /* a stream header went to the peer on this stream */
    char detail[160];      /* what the close line adds to the end reason (set_detail()) */
    char peer_addr[64];    /* "ip:port" for logs */
    char peer_ip[48];      /* "ip" for jabberd2's <address/> */
};

/* Called by relay_input() when a parser callback paused the feed: returns 0 to go on feeding
 * what follows, 1 to drop the rest of the input (STARTTLS command injection), or a negative
 * code to fail. Defined in conn.c. */
int conn_on_pause(struct conn *c, struct side *s, size_t rest);

/* libuv callbacks of conn.c that relay.c installs when reading resumes. */
void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
void conn_peer_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
void conn_back_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Decrypts and relays what TLS holds for the peer; called when peer input may flow again. */
void conn_pump_peer(struct conn *c);

/* A write failed deep inside a call chain: close on the next loop turn (never re-entrantly,
 * since we may be inside mbedTLS or expat). */
void conn_fail_later(struct conn *c, struct side *s, int err);

#endif
