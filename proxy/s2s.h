/* s2s.h: what s2s-in (s2s_in.c) and s2s-out (s2s_out.c) sessions keep beyond struct conn, and
 * the hooks conn.c calls for them. The proxy is the authority for s2s on both sides
 * (design.md §2): it authenticates every remote domain itself and answers the backend's
 * dialback on loopback, where it is the only party the backend talks to.
 *
 * Dialback keys are stateless (XEP-0185, dialback.h): any <db:verify/>, from the backend on
 * s2s-out or from a remote on s2s-in, is answered by recomputing the key, so no table is shared
 * between sessions, threads or proxy instances. */
#ifndef XTP_S2S_H
#define XTP_S2S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bytes.h"
#include "xmpp_in.h"

struct conn;
struct worker;
struct dns_query;
struct dns_result;

#define S2S_DOMAIN_MAX 254 /* 253 + NUL */
#define S2S_MAX_PAIRS  8   /* authenticated (local, remote) pairs per stream (piggybacking) */
#define S2S_MAX_CANDS  16  /* remote addresses tried per s2s-out session */

/* How the remote domain proved itself (also the `peer_auth` of /status). */
enum s2s_auth {
    S2S_AUTH_NONE = 0,
    S2S_AUTH_PKIX,     /* certificate chain + RFC 6125 identity */
    S2S_AUTH_DANE,     /* DNSSEC-validated TLSA (RFC 7673) */
    S2S_AUTH_DIALBACK, /* XEP-0220, carried out by the proxy */
};

struct s2s_pair {
    char local[S2S_DOMAIN_MAX];
    char remote[S2S_DOMAIN_MAX];
    enum s2s_auth how;
    bool backend_ok; /* s2s-in: the backend said type='valid' for it */
};

struct s2s {
    char local[S2S_DOMAIN_MAX];  /* our domain on this stream */
    char remote[S2S_DOMAIN_MAX]; /* the remote domain of the first pair */
    char our_id[32];             /* s2s-in: the id we gave the remote on this stream */
    char their_id[96];           /* the id the backend (s2s-in leg) or remote (s2s-out) gave */
    enum s2s_auth auth;          /* of the first pair */
    int cert_err;                /* verify result of the peer certificate for `remote` */
    char cert_why[160];
    char cert_fp[65]; /* of the peer's certificate, as judged (for /status) */
    char cert_subject[128];
    char cert_sans[256];
    long long cert_not_after;
    struct s2s_pair pairs[S2S_MAX_PAIRS];
    size_t npairs;
    bool sasl_done;      /* s2s-in: EXTERNAL succeeded; the next header is a restart */
    bool pending_result; /* s2s-in: a <db:result/> went to the backend, no answer yet */
    bool callback;       /* s2s-in: a dialback callback for the remote is in flight */
    bool verify_only;    /* s2s-out: a dialback callback for s2s-in, no backend at all */
    bool reported;       /* s2s-out verify_only: the answer went to the origin session */
    uint64_t origin;     /* s2s-out verify_only: the s2s-in session that asked */
    char db_key[72];     /* s2s-in: the key of the pending <db:result/>; verify_only: it */
    char db_id[40];      /* verify_only: the stream id the key is bound to */
    char cb_remote[S2S_DOMAIN_MAX]; /* s2s-in: the domain the callback is about */
    struct bytes held;              /* s2s-in: stanzas waiting until the backend knows their pair */
    bool back_answered;             /* s2s-out: we answered the backend's stream header */
    bool remote_features;   /* s2s-out: the remote's features on the current stream arrived */
    bool starttls_sent;     /* s2s-out */
    bool plaintext;         /* s2s-out: tls: opportunistic and the remote has no TLS */
    bool external;          /* s2s-out: authenticating with SASL EXTERNAL */
    bool restart_pending;   /* s2s-out: after <proceed/> or SASL <success/> */
    bool retry_plain;       /* s2s-out: reconnect to the same address without STARTTLS */
    bool offered_ticket;    /* s2s-out: this attempt tried to resume a TLS session */
    bool retry_same;        /* s2s-out: the next attempt goes to the same address */
    bool proceed;           /* s2s-out: the remote said <proceed/>: TLS starts */
    bool authenticated;     /* s2s-out: the remote accepted us (SASL EXTERNAL or dialback) */
    struct dns_query *q;    /* s2s-out: lookup in flight, or NULL */
    struct dns_result *res; /* s2s-out: candidates from DNS (owned), NULL with resolve.static */
    size_t ncand, cur;      /* s2s-out: candidates, and the one being tried */
    char tried[160];        /* s2s-out: what went wrong with the candidates so far */
    uint64_t t_first_byte;  /* s2s-out: uv_now() when the backend's first byte arrived */
    bool have_orig;         /* s2s-out: an iptables REDIRECT told us where the backend went */
    struct sockaddr_storage orig; /* ... that address (SO_ORIGINAL_DST) */
};

const char *s2s_auth_name(enum s2s_auth a); /* "none" | "pkix" | "dane" | "dialback" */

/* ---- s2s-in (s2s_in.c) ----------------------------------------------------------------------- */

/* The remote's stream header over TLS (the first, or the restart after SASL <success/>). h was
 * checked by conn.c (namespace, `to` is ours). Returns 0 or -ECANCELED once closing. */
int s2s_in_stream_open(struct conn *c, const struct xmpp_hdr *h);

/* A complete element from the remote in S2S_AUTH, BACKEND_CONNECT, S2S_DIALBACK or RELAY.
 * Returns 0 (forward it when relaying), XMPP_IN_PAUSE, or a negative code / -ECANCELED. */
int s2s_in_peer_element(struct conn *c, const struct xmpp_elem *e);

/* The backend leg connected: send our header; the dialback follows its header. */
void s2s_in_backend_connected(struct conn *c);

/* The answer of a dialback callback started for session origin (XEP-0220 §2.1.2). The session
 * may be gone: then nothing happens. why: for the log when not valid. */
void s2s_in_callback_done(struct worker *w, uint64_t origin, const char *local, const char *remote,
                          bool valid, const char *why);

/* ---- s2s-out (s2s_out.c) --------------------------------------------------------------------- */

/* Starts a dialback callback (XEP-0220 §2.2): a TLS stream to remote's authoritative server
 * that asks <db:verify from=local to=remote id=id>key</db:verify> and reports the answer with
 * s2s_in_callback_done(). It has no backend; it always ends with exactly one report. */
void s2s_out_verify(struct worker *w, uint64_t origin, const char *local, const char *remote,
                    const char *id, const char *key);

/* A backend connection was accepted on an s2s-out listener (c->back is set up). */
void s2s_out_start(struct conn *c);

/* The TLS handshake with the remote completed (conn.c calls it from the peer read path). */
void s2s_out_tls_done(struct conn *c);

/* The TLS handshake with the remote failed. Returns true when the session tries again (a
 * resumption the remote refused: once more without the ticket), false to let conn.c close. */
bool s2s_out_tls_failed(struct conn *c);

/* The remote's connection failed (err < 0), was closed (err 0) or its TLS handshake failed
 * (err: the TLS code); what says which. Before the stream to the remote is ready this is one
 * candidate failing: the next one is tried, and when none is left the backend hears
 * <remote-connection-failed/> (RFC 6120 §3.2.1). Returns true when s2s_out.c took over, false
 * to let conn.c close (the stream was ready, or the session is not s2s-out). */
bool s2s_out_remote_lost(struct conn *c, const char *what, int err);

/* conn_close() is ending the session: cancel what is in flight (DNS). */
void s2s_close(struct conn *c);

#endif
