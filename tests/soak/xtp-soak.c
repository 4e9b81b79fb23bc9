/* xtp-soak.c: the soak client (scripts/soak.sh runs it; `make soak`, and the short variant in
 * tests/integration/t40-soak-short.sh).
 *
 * One thread, one libuv loop, non-blocking sockets watched with uv_poll and mbedTLS 3.6 as the
 * TLS client, reading and writing the socket directly (as bench/xtp-load.c does). It keeps
 * --sessions XMPP c2s sessions logged in through the proxy, in pairs, for --duration seconds,
 * with continuous connect/disconnect churn, and checks every message end to end.
 *
 * A session: TCP connect to the proxy's STARTTLS or Direct TLS listener (chosen per session),
 * TLS 1.2 or 1.3 (chosen per session; a full handshake or, with --resume, resumption with a
 * ticket an earlier session got), the stream, SASL PLAIN as PREFIX<account>/PASSWORD, the
 * stream restart, resource binding to the resource "c<cid>" and initial presence
 * (RFC 6120 §5-§7, RFC 6121 §4.2, XEP-0368). cid is the connection id: 1, 2, 3, ... for every
 * session this process opens, never reused, so every connection has its own full JID.
 *
 * Pairs: slots 2k and 2k+1 form pair k. A pair logs in two fresh sessions (on two accounts
 * not in use), lives for a random lifetime in [--life-min, --life-max] seconds during which
 * each side sends the other --rate messages per second, then leaves, and the pair slot logs
 * in two new sessions (bounded by --churn logins per second, --ramp during the initial ramp,
 * and --concurrency sessions in setup at a time). By default the lifetimes average
 * 1.25 * sessions / churn seconds, so logins run at about 80% of --churn.
 *
 * A message is <message to='PARTNER_JID' type='chat'><body>BODY</body></message>, where BODY
 * is "soak F=<sender cid> T=<receiver cid> N=<seq> P=<payload> C=<crc>": seq counts 1, 2, 3...
 * per sending connection (it restarts with every connection), the payload is 16 bytes to
 * --max-body bytes of letters and digits (90% up to 512 bytes, 9% up to 4 KiB, 1% larger:
 * those span TLS records), and crc is the CRC-32 (IEEE 802.3) of everything before " C=", in
 * 8 hex digits. The receiver checks, for every message: the checksum (else bad_checksum); that
 * F is its partner's cid, T its own cid, the stanza's from its partner's full JID and N at most
 * what the partner sent (else misrouted); that N was not received before (else dup); that no
 * higher N from the same sender arrived before it (else reordered). A <message type='error'/>
 * is a bounce; a message not in this format is foreign. Each of these counts is a violation.
 *
 * The leaving rule, which makes "lost" exact even with churn: a pair leaves in three steps.
 *  1. Quiesce: both sides stop sending. Both stay connected until each has received every
 *     message the other sent (the counts are compared inside this process: this is the
 *     acknowledgement), or --drain seconds have passed.
 *  2. One side, chosen at random, leaves in one of three ways (chosen at random):
 *       graceful (60%): 1 to --burst more messages, </stream:stream> and TLS close_notify
 *                       right behind them, then it waits for the server to close;
 *       fin (25%):      1 to --burst more messages, then close() at once, no stream end and
 *                       no close_notify (a client that vanishes; the FIN follows the data);
 *       rst (15%):      close() with SO_LINGER 0: a TCP RST, no final messages.
 *     The other side stays connected until it has received every final message, or --drain
 *     seconds have passed.
 *  3. The other side ends its stream gracefully.
 * So no message is ever sent to a session that is leaving or gone, and every message was
 * sent while its receiver was connected and stayed connected until it arrived or the drain
 * deadline passed. A message counts as lost when its sender's pair has ended and the receiver
 * never got it. The messages a leaver sends right before its </stream:stream> or FIN count
 * like any other: the proxy received them before the end of the stream and must deliver them.
 * jabberd2 never holds a message for later: scripts/soak.sh runs it with offline storage off
 * (<dropmessages/>), and nothing is addressed to a resource that is gone.
 * If a session of a pair fails (connect, TLS, stream error, unexpected EOF, timeout: each is
 * an error, and a violation), the pair is aborted: the undelivered messages of that pair are
 * counted as excused, not lost, since the failure is already reported. One failure is not
 * the proxy's and is counted apart: jabberd2 2.7 ending a login with <internal-server-error/>
 * when it reuses the descriptor of a session that has just ended (login_stream_error()
 * explains it; --plain-port shows it without the proxy). It happens only before the pair is
 * up, so no message is involved; more than --max-refused percent of the logins is a violation.
 *
 * Accounting at the end: sent = received + lost + excused, and sessions opened = closed.
 *
 * Everything is bounded: --timeout for the whole run (then every session is cut and counted
 * as a timeout), --handshake-timeout per login, --drain per leaving step, 10 s for the server
 * to close a stream we ended. Loopback only: --host must be in 127.0.0.0/8.
 *
 * Output: a status line on stderr every --status seconds; at the end a report on stdout whose
 * last line is "SOAK key=value ..." for scripts. --ready-file is written when every pair has
 * been up once (the ramp is over), --teardown-file when the run starts its final teardown.
 * Exit status: 0 when nothing was lost, duplicated, reordered, corrupted or misrouted and no
 * session failed; 1 otherwise; 2 on bad usage or when the run could not start. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#define ARRAY_SIZE(a)      (sizeof(a) / sizeof((a)[0]))
#define NS_PER_S           1000000000ull
#define SWEEP_MS           20 /* timeouts, pair steps and logins are checked this often */
#define CLOSE_WAIT_NS      (10 * NS_PER_S) /* for the server to close a stream we ended */
#define READ_CHUNK         (16 * 1024 + 512)
#define MAX_ERROR_MESSAGES 20 /* the first failures are printed, the rest only counted */
#define TICKET_REFRESH_NS  (30 * NS_PER_S) /* how often a saved ticket is replaced */
#define MIN_BODY           16

/* RFC 6120 §4.7: our stream header; a macro so that printf checks the format. */
#define STREAM_HEADER                                                                              \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"
static const char FEATURES_END[] = "</stream:features>";
static const char STREAM_END[] = "</stream:stream>";
static const char STARTTLS[] = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

enum mode {
    MODE_STARTTLS = 0,
    MODE_DIRECT,
    MODE_PLAIN, /* --plain-port: no TLS, straight to the backend (the baseline) */
};
static const char *const mode_names[] = {"starttls", "direct", "plain"};

enum tlsv {
    TLSV_12 = 0,
    TLSV_13,
};

/* How the leaving side of a pair goes (the rule in the header comment). */
enum leave {
    LEAVE_GRACEFUL = 0,
    LEAVE_FIN,
    LEAVE_RST,
};
static const char *const leave_names[] = {"graceful", "fin", "rst"};

struct opts {
    const char *host;
    int starttls_port, direct_port; /* 0: that listener is not used */
    int plain_port;                 /* the backend itself: a run without the proxy */
    const char *domain;
    unsigned tls_mask; /* bit TLSV_12, bit TLSV_13 */
    unsigned sessions, concurrency, accounts, first_account;
    double duration, rate, churn, ramp, life_min, life_max, drain, resume;
    double timeout, hs_timeout, status;
    unsigned burst, max_body;
    double max_refused; /* percent of logins the backend may refuse (see E_BACKEND_REFUSED) */
    const char *ca, *user_prefix, *password, *ready_file, *teardown_file;
    unsigned long seed;
};

/* One session slot. States, in order; a session skips those its mode does not use:
 *   FREE -> CONNECT -> [PRE_FEAT -> PROCEED] -> HANDSHAKE -> FEAT -> AUTH -> AUTH_FEAT -> BIND
 *        -> UP -> CLOSING -> DONE -> FREE
 * Any error, EOF or timeout leads to DONE; the last close callback makes the slot FREE. */
enum sstate {
    S_FREE = 0,
    S_CONNECT,   /* TCP connect in progress */
    S_PRE_FEAT,  /* STARTTLS: waiting for the plaintext </stream:features> */
    S_PROCEED,   /* STARTTLS: <starttls/> sent, waiting for <proceed/> */
    S_HANDSHAKE, /* TLS handshake */
    S_FEAT,      /* header sent over TLS, waiting for </stream:features> */
    S_AUTH,      /* SASL PLAIN sent, waiting for <success/> */
    S_AUTH_FEAT, /* stream restarted after SASL, waiting for </stream:features> */
    S_BIND,      /* resource binding iq sent */
    S_UP,        /* logged in, initial presence sent */
    S_CLOSING,   /* our </stream:stream> is out; reading until the server closes */
    S_DONE,      /* handles closing */
};

enum err_kind {
    E_CONNECT = 0,
    E_TLS,
    E_STREAM, /* stream error, unexpected element */
    E_AUTH,   /* SASL or bind refused */
    E_TIMEOUT,
    E_EOF,           /* the server closed the connection before we ended our stream */
    E_CLOSE_TIMEOUT, /* the server did not close within 10 s of our </stream:stream> */
    E__COUNT,
};
static const char *const err_names[] = {
    "connect", "tls", "stream", "auth", "timeout", "eof", "close_timeout",
};

struct buf {
    char *p;
    size_t len, cap; /* data is p[0..len): consuming moves the rest to the front */
};

struct soak;
struct pair;

struct sess {
    struct soak *sk;   /* borrowed */
    struct pair *pair; /* borrowed: the pair of this slot */
    unsigned slot;
    enum sstate st;
    int fd;
    enum mode mode;
    enum tlsv tlsv;
    uint64_t cid;  /* connection id, 0 before the first connection of the slot */
    unsigned acct; /* account number: PREFIX<acct> */
    bool ssl_init, hs_done, verified, resuming, ticket_saved;
    bool want_write, recv_eagain;
    bool shut_pending; /* graceful close: close_notify and FIN once out is flushed */
    bool fin_pending;  /* LEAVE_FIN: close() once out is flushed */
    bool failed;       /* an error ended this connection */
    int events;        /* what poll watches now */
    int handles;       /* open libuv handles */
    uv_poll_t poll;
    uv_timer_t tick; /* message sending */
    bool tick_init;
    mbedtls_ssl_context ssl;
    struct buf in, out; /* plaintext */
    size_t tls_pend;    /* length of the mbedtls_ssl_write() to repeat after WANT_WRITE */
    uint64_t t_start, t_close;
    /* Sending: messages queued to the partner; the last seq used. */
    uint64_t sent;
    /* Receiving from the partner: a bit per seq, distinct seqs received, the highest one. */
    uint8_t *seen;
    size_t seen_bytes;
    uint64_t got, max_seq;
};

/* A pair's life: IDLE -> LOGIN -> RUN -> QUIESCE -> FINAL -> CLOSE -> REAP -> IDLE; an abort
 * (a session failed) goes to REAP from any state. Accounting happens on the way to IDLE. */
enum pstate {
    P_IDLE = 0,
    P_LOGIN,   /* both sessions are logging in */
    P_RUN,     /* both up, exchanging messages until the lifetime ends */
    P_QUIESCE, /* no more sends; waiting until each has received all the other sent */
    P_FINAL,   /* the leaver has gone; the stayer waits for its final messages */
    P_REAP,    /* waiting for both slots to be free */
};

struct pair {
    struct sess *s[2]; /* borrowed: slots 2k and 2k+1 */
    enum pstate st;
    uint64_t t_life_end, t_deadline;
    unsigned leaver; /* index in s[] */
    enum leave kind;
    bool aborted;
    bool ever_run; /* this slot pair has been up once: counts for the ramp */
};

enum phase {
    PH_RAMP = 0, /* the first logins of every pair */
    PH_STEADY,   /* churn */
    PH_TEARDOWN, /* no new logins; every pair leaves */
    PH_END,
};
static const char *const phase_names[] = {"ramp", "steady", "teardown", "end"};

struct soak {
    struct opts o;
    uv_loop_t *loop;
    uv_timer_t sweep;
    struct sockaddr_in addr[3]; /* per mode */
    unsigned modes[3];
    unsigned nmodes;
    struct sess *s; /* o.sessions slots, owned */
    struct pair *p; /* o.sessions / 2, owned */
    unsigned npairs, next_pair;
    unsigned *accts; /* ring of free account numbers, owned */
    unsigned acct_head, acct_count;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf[2][2]; /* [mode][tlsv] */
    bool conf_init[2][2];
    mbedtls_x509_crt ca;
    bool have_ca;
    mbedtls_ssl_session saved[2][2];
    bool have_saved[2][2];
    uint64_t t_saved[2][2];
    enum phase phase;
    bool deadline_hit;
    uint64_t t0, t_ramp_done, t_teardown, t_status, t_tokens;
    double tokens;
    unsigned in_setup, open, up, ramp_left;
    uint64_t next_cid, rng;
    char *msgbuf; /* one message under construction, owned */
    size_t msgcap;
    uint32_t crc_table[256];
    /* Counters. */
    uint64_t opened, closed, logins, sent, received, lost, dup, reordered, bad_checksum;
    uint64_t misrouted, bounced, foreign, excused, resumed, full, pairs_done, pairs_aborted;
    uint64_t by_mode[3], by_tls[2], by_leave[3], bytes_sent;
    uint64_t backend_refused; /* logins jabberd2 ended with <internal-server-error/> */
    unsigned errs[E__COUNT];
    unsigned err_msgs;
};

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* xorshift64*: fast, good enough to pick sizes, modes and lifetimes. */
static uint64_t rnd(struct soak *sk)
{
    uint64_t x = sk->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sk->rng = x;
    return x * 2685821657736338717ull;
}

/* A uniform double in [0, 1). */
static double rnd01(struct soak *sk)
{
    return (double)(rnd(sk) >> 11) / (double)(1ull << 53);
}

/* A uniform integer in [lo, hi]. */
static uint64_t rnd_range(struct soak *sk, uint64_t lo, uint64_t hi)
{
    return lo + rnd(sk) % (hi - lo + 1);
}

static void crc_init(struct soak *sk)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        sk->crc_table[i] = c;
    }
}

/* CRC-32 as in IEEE 802.3 (and zlib): reflected, initial and final XOR 0xFFFFFFFF. */
static uint32_t crc32_of(const struct soak *sk, const char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;

    for (size_t i = 0; i < n; i++)
        c = sk->crc_table[(c ^ (uint8_t)p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static int buf_append(struct buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;

        while (cap < b->len + n)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

static void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static struct sess *peer_of(struct sess *s)
{
    struct pair *p = s->pair;

    return p->s[0] == s ? p->s[1] : p->s[0];
}

static bool in_setup_state(enum sstate st)
{
    return st >= S_CONNECT && st < S_UP;
}

/* ---- errors and closing ----------------------------------------------------------------- */

static void pair_step(struct pair *p);
static void update_poll(struct sess *s);
static void process(struct sess *s);

/* The last handle of a slot closed: the socket and TLS state go, the slot is free again. The
 * receive bitmap and the counters stay until the pair is accounted for (pair_step). */
static void closed_cb(uv_handle_t *h)
{
    struct sess *s = h->data;
    struct soak *sk = s->sk;

    if (--s->handles > 0)
        return;
    close(s->fd);
    s->fd = -1;
    if (s->ssl_init)
        mbedtls_ssl_free(&s->ssl);
    s->ssl_init = false;
    buf_free(&s->in);
    buf_free(&s->out);
    s->st = S_FREE;
    sk->open--;
    sk->closed++;
    /* The account is free again; the least recently used one is taken next. */
    sk->accts[(sk->acct_head + sk->acct_count) % sk->o.accounts] = s->acct;
    sk->acct_count++;
    pair_step(s->pair);
}

/* Releases the session: stops its handles; the last close callback frees the rest.
 * Idempotent. rst: end with a TCP RST (SO_LINGER 0) instead of a FIN. */
static void sess_close(struct sess *s, bool rst)
{
    struct soak *sk = s->sk;

    if (s->st == S_DONE || s->st == S_FREE)
        return;
    if (in_setup_state(s->st))
        sk->in_setup--;
    if (s->st == S_UP || s->st == S_CLOSING)
        sk->up--;
    s->st = S_DONE;
    if (rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        (void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (s->tick_init) {
        uv_timer_stop(&s->tick);
        uv_close((uv_handle_t *)&s->tick, closed_cb);
        s->tick_init = false;
    }
    uv_close((uv_handle_t *)&s->poll, closed_cb);
}

/* An error on a connection that has not ended its stream: counted, the first few printed,
 * the pair aborted. On a connection that has (CLOSING), whatever happens is not an error. */
__attribute__((format(printf, 3, 4))) static void sess_fail(struct sess *s, enum err_kind kind,
                                                            const char *fmt, ...)
{
    struct soak *sk = s->sk;
    va_list ap;

    if (s->st == S_DONE || s->st == S_FREE)
        return;
    if (s->st == S_CLOSING) {
        sess_close(s, false);
        return;
    }
    sk->errs[kind]++;
    s->failed = true;
    s->pair->aborted = true;
    if (sk->err_msgs++ < MAX_ERROR_MESSAGES) {
        fprintf(stderr, "xtp-soak: cid %" PRIu64 " (%s%u, %s, state %d): %s: ", s->cid,
                sk->o.user_prefix, s->acct, mode_names[s->mode], s->st, err_names[kind]);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    sess_close(s, false);
}

static void tls_fail(struct sess *s, const char *what, int rc)
{
    char msg[128];

    mbedtls_strerror(rc, msg, sizeof(msg));
    sess_fail(s, E_TLS, "%s: -0x%04x %s", what, (unsigned)-rc, msg);
}

/* ---- output ----------------------------------------------------------------------------- */

static int out_str(struct sess *s, const char *str, size_t len)
{
    if (buf_append(&s->out, str, len) != 0) {
        sess_fail(s, E_STREAM, "out of memory");
        return -1;
    }
    return 0;
}

__attribute__((format(printf, 2, 3))) static int out_fmt(struct sess *s, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        sess_fail(s, E_STREAM, "output too long");
        return -1;
    }
    return out_str(s, tmp, (size_t)n);
}

/* LEAVE_FIN: everything is written; close without a stream end or close_notify. Whatever
 * sits unread in our receive queue is read first, because close() with unread data sends a
 * RST, which may destroy the data the proxy has not read yet. */
static void fin_now(struct sess *s)
{
    char tmp[4096];

    while (recv(s->fd, tmp, sizeof(tmp), 0) > 0)
        ;
    sess_close(s, false);
}

/* Writes what is queued in out, through TLS once it is up. Returns 0 (possibly with data left
 * and UV_WRITABLE watched) or -1 after the session ended. */
static int flush(struct sess *s)
{
    while (s->out.len > 0) {
        size_t len = s->out.len;
        ssize_t n;

        if (s->hs_done) {
            /* mbedTLS: after WANT_WRITE, call again with the same length. */
            if (s->tls_pend)
                len = s->tls_pend;
            else if (len > 16384)
                len = 16384;
            s->want_write = false;
            n = mbedtls_ssl_write(&s->ssl, (const unsigned char *)s->out.p, len);
            if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ) {
                s->tls_pend = len;
                break;
            }
            if (n < 0) {
                tls_fail(s, "write", (int)n);
                return -1;
            }
            s->tls_pend = 0;
        } else {
            n = send(s->fd, s->out.p, len, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                s->want_write = true;
                break;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                sess_fail(s, E_EOF, "send: %s", strerror(errno));
                return -1;
            }
            s->want_write = false;
        }
        buf_consume(&s->out, (size_t)n);
    }
    if (s->out.len == 0 && s->fin_pending) {
        fin_now(s);
        return -1;
    }
    if (s->out.len == 0 && s->shut_pending) {
        s->shut_pending = false;
        if (s->hs_done)
            (void)mbedtls_ssl_close_notify(&s->ssl); /* best effort: the FIN follows anyway */
        shutdown(s->fd, SHUT_WR);
    }
    update_poll(s);
    return 0;
}

/* Ends our stream (RFC 6120 §4.4) after what is queued; then reads until the server closes,
 * CLOSE_WAIT_NS at most. A session still in setup is just closed. */
static void sess_end_stream(struct sess *s)
{
    if (s->st >= S_CLOSING || s->st == S_FREE)
        return;
    if (s->st < S_UP) {
        sess_close(s, false);
        return;
    }
    s->st = S_CLOSING;
    s->t_close = now_ns();
    if (s->tick_init)
        uv_timer_stop(&s->tick);
    s->shut_pending = true;
    if (out_str(s, STREAM_END, sizeof(STREAM_END) - 1) == 0)
        (void)flush(s);
}

/* ---- TLS -------------------------------------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct sess *s = ctx;
    ssize_t n;

    do
        n = send(s->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->want_write = true;
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct sess *s = ctx;
    ssize_t n;

    do
        n = recv(s->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return (int)n;
    if (n == 0)
        return MBEDTLS_ERR_SSL_CONN_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->recv_eagain = true;
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* Called for each certificate of the server's chain: only a full handshake has one. */
static int verify_cb(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct sess *s = arg;

    s->verified = true;
    return 0; /* keep mbedTLS's verdict in *flags */
}

/* Keeps this connection's session (with its ticket) for later resumptions, at most once per
 * connection and only when the saved one is older than TICKET_REFRESH_NS. */
static void save_ticket(struct sess *s)
{
    struct soak *sk = s->sk;
    mbedtls_ssl_session *sv = &sk->saved[s->mode][s->tlsv];
    uint64_t now = now_ns();
    int rc;

    if (sk->o.resume <= 0 || s->ticket_saved)
        return;
    s->ticket_saved = true;
    if (sk->have_saved[s->mode][s->tlsv] && now - sk->t_saved[s->mode][s->tlsv] < TICKET_REFRESH_NS)
        return;
    mbedtls_ssl_session_free(sv);
    mbedtls_ssl_session_init(sv);
    sk->have_saved[s->mode][s->tlsv] = false;
    rc = mbedtls_ssl_get_session(&s->ssl, sv);
    if (rc != 0) {
        tls_fail(s, "mbedtls_ssl_get_session", rc);
        return;
    }
    sk->have_saved[s->mode][s->tlsv] = true;
    sk->t_saved[s->mode][s->tlsv] = now;
}

/* Decrypts everything available into s->in. Returns 0, or -1 after the session ended. */
static int tls_read_all(struct sess *s)
{
    unsigned char tmp[READ_CHUNK];
    unsigned idle = 0; /* WANT_READs in a row that did not reach the socket */

    for (;;) {
        int n;

        s->recv_eagain = false;
        n = mbedtls_ssl_read(&s->ssl, tmp, sizeof(tmp));
        if (n > 0) {
            idle = 0;
            if (buf_append(&s->in, tmp, (size_t)n) != 0) {
                sess_fail(s, E_STREAM, "out of memory");
                return -1;
            }
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            save_ticket(s);
            if (s->st == S_DONE)
                return -1;
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) {
            /* A post-handshake message (NewSessionTicket) also ends in WANT_READ while more
             * records may be buffered: go on until the socket itself is empty (design.md §5). */
            if (!s->recv_eagain && n == MBEDTLS_ERR_SSL_WANT_READ && ++idle < 64)
                continue;
            return 0;
        }
        if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || n == MBEDTLS_ERR_SSL_CONN_EOF) {
            /* Input decrypted before the end still counts: the messages in it arrived. */
            process(s);
            if (s->st == S_DONE || s->st == S_FREE)
                return -1;
            if (s->st == S_CLOSING)
                sess_close(s, false);
            else
                sess_fail(s, E_EOF, "the server closed the TLS stream");
            return -1;
        }
        tls_fail(s, "read", n);
        return -1;
    }
}

static void tls_step(struct sess *s)
{
    struct soak *sk = s->sk;
    int rc;

    s->want_write = false;
    rc = mbedtls_ssl_handshake(&s->ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        update_poll(s);
        return;
    }
    if (rc != 0) {
        tls_fail(s, "handshake", rc);
        return;
    }
    s->hs_done = true;
    if (s->verified || !sk->have_ca)
        sk->full++;
    else
        sk->resumed++;
    if (mbedtls_ssl_get_version_number(&s->ssl) == MBEDTLS_SSL_VERSION_TLS1_2)
        save_ticket(s); /* TLS 1.2: the ticket came inside the handshake (RFC 5077) */
    if (s->st == S_DONE)
        return;
    s->st = S_FEAT; /* RFC 6120 §5.4.3.3: a new stream over TLS */
    if (out_fmt(s, STREAM_HEADER, sk->o.domain) != 0 || flush(s) != 0)
        return;
    if (tls_read_all(s) != 0) /* records may already sit in mbedTLS's buffer */
        return;
    process(s);
}

static void tls_start(struct sess *s)
{
    struct soak *sk = s->sk;
    int rc;

    mbedtls_ssl_init(&s->ssl);
    s->ssl_init = true;
    rc = mbedtls_ssl_setup(&s->ssl, &sk->conf[s->mode][s->tlsv]);
    if (rc == 0)
        rc = mbedtls_ssl_set_hostname(&s->ssl, sk->o.domain); /* SNI and the name check */
    if (rc == 0 && sk->o.resume > 0 && sk->have_saved[s->mode][s->tlsv] &&
        rnd01(sk) < sk->o.resume) {
        s->resuming = true;
        rc = mbedtls_ssl_set_session(&s->ssl, &sk->saved[s->mode][s->tlsv]);
    }
    if (rc != 0) {
        tls_fail(s, "setup", rc);
        return;
    }
    if (sk->have_ca)
        mbedtls_ssl_set_verify(&s->ssl, verify_cb, s);
    mbedtls_ssl_set_bio(&s->ssl, s, bio_send, bio_recv, NULL);
    s->st = S_HANDSHAKE;
    tls_step(s);
}

/* ---- XMPP ------------------------------------------------------------------------------- */

/* If s->in starts (after whitespace) with a complete top-level element, stores its offset and
 * length and its name (up to namecap - 1 bytes) and returns 1; returns 0 while it is
 * incomplete and -1 for the end of the stream. None of the elements we read nests an element
 * of its own name, and bodies hold only letters, digits, spaces, '=' and hex digits. */
static int next_elem(struct sess *s, size_t *start, size_t *len, char *name, size_t namecap)
{
    const char *b, *e, *p, *gt, *close;
    char endtag[40];
    size_t n = 0;
    int m;

    if (s->in.len == 0 || s->in.p == NULL)
        return 0;
    b = p = s->in.p;
    e = s->in.p + s->in.len;

    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p == e)
        return 0;
    if (*p == '<' && p + 1 < e && p[1] == '/')
        return -1;
    for (const char *q = p + 1; q < e && n + 1 < namecap; q++) {
        if (*q == ' ' || *q == '>' || *q == '/' || *q == '\t' || *q == '\r' || *q == '\n')
            break;
        name[n++] = *q;
    }
    name[n] = '\0';
    gt = memchr(p, '>', (size_t)(e - p));
    if (gt == NULL)
        return 0;
    *start = (size_t)(p - b);
    if (gt[-1] == '/') {
        *len = (size_t)(gt + 1 - p);
        return 1;
    }
    m = snprintf(endtag, sizeof(endtag), "</%s>", name);
    if (m < 0 || (size_t)m >= sizeof(endtag))
        return -1;
    close = memmem(gt, (size_t)(e - gt), endtag, (size_t)m);
    if (close == NULL)
        return 0;
    *len = (size_t)(close + m - p);
    return 1;
}

/* A complete <stream:error/> (at p, len bytes) ended a login. jabberd2 2.7's c2s keys its
 * sessions by descriptor number (c2s/c2s.c: sprintf(sess->skey, "%d", fd->fd)), so a late
 * reply of the sm for a session that has just ended reaches the next connection c2s accepts
 * on the same descriptor, and c2s kills that one with <internal-server-error/> (its "route
 * errors" branch). With churn this hits about 1% of logins, with or without the proxy (run
 * --plain-port to see it without). That is the backend refusing a login, not the proxy
 * failing: it counts as backend_refused, bounded by --max-refused, and the pair is aborted
 * before any message was sent. Any other stream error is an error of the given kind. */
static void login_stream_error(struct sess *s, enum err_kind kind, const char *p, size_t len)
{
    struct soak *sk = s->sk;

    if (memmem(p, len, "<internal-server-error", 22) != NULL) {
        sk->backend_refused++;
        s->failed = true;
        s->pair->aborted = true;
        sess_close(s, false);
        return;
    }
    sess_fail(s, kind, "stream error: %.*s", (int)(len > 300 ? 300 : len), p);
}

/* Waits for the end of <stream:features>; consumes everything up to it. 1: found, 0: not yet,
 * -1: the session ended (a stream error). */
static int take_features(struct sess *s)
{
    const char *b = s->in.p, *end, *err;
    size_t len = s->in.len;

    if (b == NULL || len == 0)
        return 0;
    err = memmem(b, len, "<stream:error", 13);
    if (err != NULL) {
        const char *eend = memmem(err, (size_t)(b + len - err), "</stream:error>", 15);

        if (eend == NULL)
            return 0; /* judged once it is complete */
        login_stream_error(s, E_STREAM, err, (size_t)(eend + 15 - err));
        return -1;
    }
    end = memmem(b, len, FEATURES_END, sizeof(FEATURES_END) - 1);
    if (end == NULL)
        return 0;
    buf_consume(&s->in, (size_t)(end - b) + sizeof(FEATURES_END) - 1);
    return 1;
}

/* The value of attribute NAME in the start tag at m (up to its '>'), or NULL; *vlen is set. */
static const char *attr_value(const char *m, size_t len, const char *name, size_t *vlen)
{
    const char *gt = memchr(m, '>', len), *p = m, *end;
    size_t nlen = strlen(name);

    if (gt == NULL)
        return NULL;
    while (p < gt) {
        const char *hit = memmem(p, (size_t)(gt - p), name, nlen);
        char q;

        if (hit == NULL)
            return NULL;
        p = hit + nlen;
        if (hit[-1] != ' ' || p + 1 >= gt || p[0] != '=' || (p[1] != '\'' && p[1] != '"'))
            continue;
        q = p[1];
        end = memchr(p + 2, q, (size_t)(gt - p - 2));
        if (end == NULL)
            return NULL;
        *vlen = (size_t)(end - p - 2);
        return p + 2;
    }
    return NULL;
}

/* Parses "KEY=<decimal>" at *p (which must start with key); advances *p past the digits. */
static bool take_num(const char **p, const char *end, const char *key, uint64_t *v)
{
    size_t klen = strlen(key);
    uint64_t x = 0;
    const char *q;

    if ((size_t)(end - *p) < klen || memcmp(*p, key, klen) != 0)
        return false;
    q = *p + klen;
    if (q >= end || *q < '0' || *q > '9')
        return false;
    while (q < end && *q >= '0' && *q <= '9') {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*q - '0');
        q++;
    }
    *v = x;
    *p = q;
    return true;
}

/* Marks seq as received from the partner; returns true when it was new. */
static bool seen_mark(struct sess *s, uint64_t seq)
{
    size_t byte = (size_t)(seq / 8);

    if (byte >= s->seen_bytes) {
        size_t nb = s->seen_bytes ? s->seen_bytes : 64;
        uint8_t *p;

        while (nb <= byte)
            nb *= 2;
        p = realloc(s->seen, nb);
        if (p == NULL) {
            fprintf(stderr, "xtp-soak: out of memory\n");
            exit(2);
        }
        memset(p + s->seen_bytes, 0, nb - s->seen_bytes);
        s->seen = p;
        s->seen_bytes = nb;
    }
    if (s->seen[byte] & (1u << (seq % 8)))
        return false;
    s->seen[byte] |= (uint8_t)(1u << (seq % 8));
    return true;
}

/* Checks one <message/> that arrived on s (the rules in the header comment). */
static void on_message(struct sess *s, const char *m, size_t len)
{
    struct soak *sk = s->sk;
    struct sess *peer = peer_of(s);
    const char *body, *bend, *p, *cpos = NULL, *from;
    uint64_t f, t, n;
    size_t flen = 0;
    char want[256], hex[9];
    int wl;

    if (memmem(m, len, "type='error'", 12) != NULL || memmem(m, len, "type=\"error\"", 12)) {
        sk->bounced++;
        if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr, "xtp-soak: cid %" PRIu64 ": bounce: %.*s\n", s->cid,
                    (int)(len > 400 ? 400 : len), m);
        return;
    }
    body = memmem(m, len, "<body>", 6);
    bend = body ? memmem(body, (size_t)(m + len - body), "</body>", 7) : NULL;
    if (body == NULL || bend == NULL || bend - body < 6 + 5 || memcmp(body + 6, "soak ", 5) != 0) {
        sk->foreign++;
        if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr, "xtp-soak: cid %" PRIu64 ": foreign message: %.*s\n", s->cid,
                    (int)(len > 400 ? 400 : len), m);
        return;
    }
    body += 6;
    /* The checksum first: nothing else in a corrupted body can be trusted. */
    for (p = body; p + 3 <= bend; p++)
        if (memcmp(p, " C=", 3) == 0)
            cpos = p;
    if (cpos == NULL || bend - cpos != 3 + 8) {
        sk->bad_checksum++;
        return;
    }
    snprintf(hex, sizeof(hex), "%08x", (unsigned)crc32_of(sk, body, (size_t)(cpos - body)));
    if (memcmp(hex, cpos + 3, 8) != 0) {
        sk->bad_checksum++;
        if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr, "xtp-soak: cid %" PRIu64 ": bad checksum (want %s): %.*s\n", s->cid,
                    hex, (int)(len > 400 ? 400 : len), m);
        return;
    }
    p = body + 5;
    if (!take_num(&p, cpos, "F=", &f) || p >= cpos || *p++ != ' ' ||
        !take_num(&p, cpos, "T=", &t) || p >= cpos || *p++ != ' ' ||
        !take_num(&p, cpos, "N=", &n)) {
        sk->bad_checksum++; /* a valid checksum over a malformed body: ours never are */
        return;
    }
    from = attr_value(m, len, "from", &flen);
    wl = snprintf(want, sizeof(want), "%s%u@%s/c%" PRIu64, sk->o.user_prefix, peer->acct,
                  sk->o.domain, peer->cid);
    if (f != peer->cid || t != s->cid || n == 0 || n > peer->sent || from == NULL || wl < 0 ||
        flen != (size_t)wl || memcmp(from, want, flen) != 0) {
        sk->misrouted++;
        if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr,
                    "xtp-soak: cid %" PRIu64 ": misrouted (partner cid %" PRIu64 " sent %" PRIu64
                    "): %.*s\n",
                    s->cid, peer->cid, peer->sent, (int)(len > 400 ? 400 : len), m);
        return;
    }
    if (!seen_mark(s, n)) {
        sk->dup++;
        if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr,
                    "xtp-soak: cid %" PRIu64 ": duplicate N=%" PRIu64 " from cid %" PRIu64 "\n",
                    s->cid, n, f);
        return;
    }
    s->got++;
    sk->received++;
    if (n < s->max_seq) {
        sk->reordered++;
        if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr,
                    "xtp-soak: cid %" PRIu64 ": N=%" PRIu64 " from cid %" PRIu64 " after N=%" PRIu64
                    "\n",
                    s->cid, n, f, s->max_seq);
    } else {
        s->max_seq = n;
    }
}

/* Queues one numbered, checksummed message to the partner (the format in the header). */
static int msg_send(struct sess *s)
{
    struct soak *sk = s->sk;
    struct sess *peer = peer_of(s);
    uint64_t r = rnd(sk) % 1000, plen, seq = s->sent + 1;
    char *b = sk->msgbuf;
    size_t cap = sk->msgcap, n, bstart;
    int k;

    /* 90% short, 9% up to 4 KiB, 1% up to --max-body: those span several TLS records. */
    if (r < 900 || sk->o.max_body <= 512)
        plen = rnd_range(sk, MIN_BODY, sk->o.max_body < 512 ? sk->o.max_body : 512);
    else if (r < 990 || sk->o.max_body <= 4096)
        plen = rnd_range(sk, 513, sk->o.max_body < 4096 ? sk->o.max_body : 4096);
    else
        plen = rnd_range(sk, 4097, sk->o.max_body);
    k = snprintf(b, cap,
                 "<message to='%s%u@%s/c%" PRIu64 "' type='chat' id='%" PRIu64 "-%" PRIu64
                 "'><body>",
                 sk->o.user_prefix, peer->acct, sk->o.domain, peer->cid, s->cid, seq);
    if (k < 0 || (size_t)k >= cap)
        return -1;
    bstart = (size_t)k;
    k = snprintf(b + bstart, cap - bstart,
                 "soak F=%" PRIu64 " T=%" PRIu64 " N=%" PRIu64 " P=", s->cid, peer->cid, seq);
    if (k < 0 || (size_t)k >= cap - bstart)
        return -1;
    n = bstart + (size_t)k;
    if (n + plen + 64 > cap)
        return -1;
    for (uint64_t i = 0; i < plen; i++) {
        static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

        b[n++] = set[rnd(sk) % (sizeof(set) - 1)];
    }
    k = snprintf(b + n, cap - n, " C=%08x</body></message>",
                 (unsigned)crc32_of(sk, b + bstart, n - bstart));
    if (k < 0 || (size_t)k >= cap - n)
        return -1;
    n += (size_t)k;
    if (out_str(s, b, n) != 0)
        return -1;
    s->sent = seq;
    sk->sent++;
    sk->bytes_sent += n;
    return 0;
}

static void tick_cb(uv_timer_t *t)
{
    struct sess *s = t->data;

    if (s->st != S_UP || s->pair->st != P_RUN)
        return;
    if (msg_send(s) == 0)
        (void)flush(s);
}

static void send_auth(struct sess *s)
{
    const struct opts *o = &s->sk->o;
    unsigned char raw[256], b64[400];
    size_t rawlen, b64len, plen = strlen(o->password);
    int n;

    /* RFC 4616: [authzid] NUL authcid NUL passwd. */
    n = snprintf((char *)raw + 1, sizeof(raw) - 1, "%s%u", o->user_prefix, s->acct);
    if (n < 0 || (size_t)n + plen + 2 > sizeof(raw)) {
        sess_fail(s, E_AUTH, "user name or password too long");
        return;
    }
    raw[0] = '\0';
    rawlen = 1 + (size_t)n;
    raw[rawlen++] = '\0';
    memcpy(raw + rawlen, o->password, plen);
    rawlen += plen;
    if (mbedtls_base64_encode(b64, sizeof(b64), &b64len, raw, rawlen) != 0) {
        sess_fail(s, E_AUTH, "base64");
        return;
    }
    if (out_fmt(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
                (const char *)b64) == 0)
        s->st = S_AUTH;
}

static void sess_up(struct sess *s)
{
    struct soak *sk = s->sk;

    s->st = S_UP;
    sk->in_setup--;
    sk->up++;
    sk->logins++;
    pair_step(s->pair);
}

/* Runs the session's protocol on what s->in holds; returns when it needs more input. */
static void process(struct sess *s)
{
    struct soak *sk = s->sk;
    char name[32];
    size_t off, len;
    int r;

    for (;;) {
        switch (s->st) {
        case S_PRE_FEAT:
            if ((r = take_features(s)) <= 0)
                goto out;
            if (out_str(s, STARTTLS, sizeof(STARTTLS) - 1) != 0)
                return;
            s->st = S_PROCEED;
            break;
        case S_PROCEED:
            if ((r = next_elem(s, &off, &len, name, sizeof(name))) == 0)
                goto out;
            if (r < 0 || strcmp(name, "proceed") != 0) {
                sess_fail(s, E_STREAM, "expected <proceed/>, got <%s>", r < 0 ? "/" : name);
                return;
            }
            /* RFC 6120 §5.4.3.3: nothing may follow <proceed/> before the handshake. */
            buf_consume(&s->in, s->in.len);
            if (flush(s) != 0)
                return;
            tls_start(s);
            return;
        case S_FEAT:
            if ((r = take_features(s)) <= 0)
                goto out;
            send_auth(s);
            break;
        case S_AUTH:
            if ((r = next_elem(s, &off, &len, name, sizeof(name))) == 0)
                goto out;
            if (r > 0 && strcmp(name, "stream:error") == 0) {
                login_stream_error(s, E_AUTH, s->in.p + off, len);
                return;
            }
            if (r < 0 || strcmp(name, "success") != 0) {
                sess_fail(s, E_AUTH, "SASL PLAIN as %s%u: %.*s", sk->o.user_prefix, s->acct,
                          (int)(s->in.len > 300 ? 300 : s->in.len), s->in.p);
                return;
            }
            buf_consume(&s->in, off + len);
            /* RFC 6120 §6.4.6: the stream restarts after <success/>. */
            if (out_fmt(s, STREAM_HEADER, sk->o.domain) != 0)
                return;
            s->st = S_AUTH_FEAT;
            break;
        case S_AUTH_FEAT:
            if ((r = take_features(s)) <= 0)
                goto out;
            if (out_fmt(s,
                        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                        "<resource>c%" PRIu64 "</resource></bind></iq>",
                        s->cid) != 0)
                return;
            s->st = S_BIND;
            break;
        case S_BIND:
            if ((r = next_elem(s, &off, &len, name, sizeof(name))) == 0)
                goto out;
            if (r > 0 && strcmp(name, "stream:error") == 0) {
                login_stream_error(s, E_AUTH, s->in.p + off, len);
                return;
            }
            if (r < 0 || strcmp(name, "iq") != 0 ||
                (memmem(s->in.p + off, len, "type='result'", 13) == NULL &&
                 memmem(s->in.p + off, len, "type=\"result\"", 13) == NULL)) {
                sess_fail(s, E_AUTH, "resource binding failed: %.*s", (int)(len > 200 ? 200 : len),
                          s->in.p + off);
                return;
            }
            buf_consume(&s->in, off + len);
            /* RFC 6121 §4.2: initial presence makes the resource available. */
            if (out_str(s, "<presence/>", 11) != 0)
                return;
            sess_up(s);
            break;
        case S_UP:
        case S_CLOSING:
            /* After our </stream:stream> we still read: a message arriving now is checked
             * like any other (a duplicate would show here). */
            if ((r = next_elem(s, &off, &len, name, sizeof(name))) == 0)
                goto out;
            if (r < 0) {
                if (s->st == S_UP) {
                    sess_fail(s, E_EOF, "the server ended the stream");
                    return;
                }
                buf_consume(&s->in, s->in.len); /* its </stream:stream>: EOF follows */
                goto out;
            }
            if (strcmp(name, "stream:error") == 0 && s->st == S_UP) {
                sess_fail(s, E_STREAM, "stream error: %.*s", (int)(len > 300 ? 300 : len),
                          s->in.p + off);
                return;
            }
            if (strcmp(name, "message") == 0)
                on_message(s, s->in.p + off, len);
            buf_consume(&s->in, off + len);
            break;
        default:
            goto out;
        }
        if (s->st == S_DONE || s->st == S_FREE)
            return;
    }
out:
    if (s->st != S_DONE && s->st != S_FREE)
        (void)flush(s);
}

/* ---- socket events ---------------------------------------------------------------------- */

static void poll_cb(uv_poll_t *h, int status, int events);

static void update_poll(struct sess *s)
{
    int ev;

    if (s->st == S_DONE || s->st == S_FREE)
        return;
    if (s->st == S_CONNECT)
        ev = UV_WRITABLE;
    else
        ev = UV_READABLE | (s->want_write || s->out.len > 0 ? UV_WRITABLE : 0);
    if (ev != s->events) {
        s->events = ev;
        uv_poll_start(&s->poll, ev, poll_cb);
    }
}

static void on_connected(struct sess *s)
{
    struct soak *sk = s->sk;
    int err = 0;
    socklen_t elen = sizeof(err);

    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        err = errno;
    if (err != 0) {
        sess_fail(s, E_CONNECT, "connect: %s", strerror(err));
        return;
    }
    if (s->mode == MODE_DIRECT) {
        tls_start(s);
        return;
    }
    s->st = s->mode == MODE_PLAIN ? S_FEAT : S_PRE_FEAT;
    if (out_fmt(s, STREAM_HEADER, sk->o.domain) == 0)
        (void)flush(s);
}

static void on_readable(struct sess *s)
{
    char tmp[READ_CHUNK];

    if (s->st == S_HANDSHAKE) {
        tls_step(s);
        return;
    }
    if (s->hs_done) {
        if (tls_read_all(s) == 0)
            process(s);
        return;
    }
    for (;;) {
        ssize_t n = recv(s->fd, tmp, sizeof(tmp), 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            int err = errno;

            /* What arrived before the end still counts: the messages in it arrived. */
            process(s);
            if (s->st == S_DONE || s->st == S_FREE)
                return;
            if (s->st == S_CLOSING)
                sess_close(s, false);
            else if (n == 0)
                sess_fail(s, E_EOF, "the server closed the connection");
            else
                sess_fail(s, E_EOF, "recv: %s", strerror(err));
            return;
        }
        if (buf_append(&s->in, tmp, (size_t)n) != 0) {
            sess_fail(s, E_STREAM, "out of memory");
            return;
        }
    }
    process(s);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct sess *s = h->data;

    if (s->st == S_DONE || s->st == S_FREE)
        return;
    if (status < 0) {
        /* libuv reports POLLERR as UV_EBADF: the socket knows the real reason. */
        int err = 0;
        socklen_t elen = sizeof(err);

        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err == 0)
            err = -status;
        sess_fail(s, s->st == S_CONNECT ? E_CONNECT : E_EOF, "%s", strerror(err));
        return;
    }
    if (s->st == S_CONNECT) {
        if (events & UV_WRITABLE)
            on_connected(s);
        return;
    }
    if (events & UV_WRITABLE) {
        if (s->st == S_HANDSHAKE) {
            tls_step(s);
            if (s->st == S_DONE)
                return;
        } else if (flush(s) != 0) {
            return;
        }
    }
    if ((events & UV_READABLE) && s->st != S_DONE && s->st != S_FREE)
        on_readable(s);
}

/* Opens a new connection in slot s on account acct. Returns 0, or -1 when the process is out
 * of descriptors (the slot stays free and the error is counted). */
static int sess_start(struct sess *s, unsigned acct)
{
    struct soak *sk = s->sk;
    int one = 1, rc;

    /* What the previous connection of this slot left: its counters were accounted for. */
    free(s->seen);
    s->seen = NULL;
    s->seen_bytes = 0;
    s->got = s->max_seq = s->sent = 0;
    s->ssl_init = s->hs_done = s->verified = s->resuming = s->ticket_saved = false;
    s->want_write = s->recv_eagain = s->shut_pending = s->fin_pending = s->failed = false;
    s->events = 0;
    s->tls_pend = 0;
    s->cid = ++sk->next_cid;
    s->acct = acct;
    s->mode = sk->modes[rnd(sk) % sk->nmodes];
    s->tlsv =
        sk->o.tls_mask == 3 ? (enum tlsv)(rnd(sk) % 2) : (sk->o.tls_mask & 1 ? TLSV_12 : TLSV_13);
    s->t_start = now_ns();
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        sk->errs[E_CONNECT]++;
        if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr, "xtp-soak: socket: %s\n", strerror(errno));
        return -1;
    }
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->poll.data = s;
    rc = uv_poll_init_socket(sk->loop, &s->poll, s->fd);
    if (rc != 0) {
        fprintf(stderr, "xtp-soak: uv_poll_init_socket: %s\n", uv_strerror(rc));
        exit(2);
    }
    s->handles = 1;
    s->tick.data = s;
    uv_timer_init(sk->loop, &s->tick);
    s->tick_init = true;
    s->handles++;
    s->st = S_CONNECT;
    sk->open++;
    sk->opened++;
    sk->in_setup++;
    sk->by_mode[s->mode]++;
    if (s->mode != MODE_PLAIN)
        sk->by_tls[s->tlsv]++;
    if (connect(s->fd, (const struct sockaddr *)&sk->addr[s->mode], sizeof(sk->addr[0])) != 0 &&
        errno != EINPROGRESS) {
        sess_fail(s, E_CONNECT, "connect: %s", strerror(errno));
        return 0;
    }
    update_poll(s);
    return 0;
}

/* ---- pairs ------------------------------------------------------------------------------ */

static uint64_t secs_ns(double s)
{
    return (uint64_t)(s * (double)NS_PER_S);
}

static bool slot_gone(const struct sess *s)
{
    return s->st == S_FREE || s->st == S_DONE;
}

/* Counts what the ended pair's receivers never got: lost, or excused after a failure. */
static void pair_account(struct pair *p)
{
    struct soak *sk = p->s[0]->sk;

    for (unsigned i = 0; i < 2; i++) {
        struct sess *a = p->s[i], *b = p->s[1 - i];
        uint64_t missing = a->sent > b->got ? a->sent - b->got : 0;

        if (p->aborted)
            sk->excused += missing;
        else
            sk->lost += missing;
        if (missing > 0 && !p->aborted && sk->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr,
                    "xtp-soak: lost: cid %" PRIu64 " sent %" PRIu64 ", cid %" PRIu64
                    " received %" PRIu64 " of them (leaver cid %" PRIu64 ", %s)\n",
                    a->cid, a->sent, b->cid, b->got, p->s[p->leaver]->cid, leave_names[p->kind]);
    }
    sk->pairs_done++;
    if (p->aborted)
        sk->pairs_aborted++;
}

/* Starts the pair's ticks: each side sends --rate messages per second, the first one at a
 * random point of the first period so that the pairs do not send in step. */
static void pair_run(struct pair *p, uint64_t now)
{
    struct soak *sk = p->s[0]->sk;
    uint64_t period = (uint64_t)(1000.0 / sk->o.rate + 0.5);

    p->st = P_RUN;
    if (!p->ever_run) {
        p->ever_run = true;
        sk->ramp_left--;
    }
    p->t_life_end = now + secs_ns(sk->o.life_min + rnd01(sk) * (sk->o.life_max - sk->o.life_min));
    if (period == 0)
        period = 1;
    for (unsigned i = 0; i < 2; i++)
        uv_timer_start(&p->s[i]->tick, tick_cb, rnd(sk) % period, period);
}

static void pair_quiesce(struct pair *p, uint64_t now)
{
    struct soak *sk = p->s[0]->sk;

    p->st = P_QUIESCE;
    p->t_deadline = now + secs_ns(sk->o.drain);
    for (unsigned i = 0; i < 2; i++)
        uv_timer_stop(&p->s[i]->tick);
}

/* Step 2 of leaving: the leaver goes, in the way chosen for this pair. */
static void pair_leave(struct pair *p, uint64_t now)
{
    struct soak *sk = p->s[0]->sk;
    struct sess *l;
    double r = rnd01(sk);
    unsigned k;

    p->st = P_FINAL;
    p->t_deadline = now + secs_ns(sk->o.drain);
    p->leaver = (unsigned)(rnd(sk) % 2);
    p->kind = r < 0.60 ? LEAVE_GRACEFUL : r < 0.85 ? LEAVE_FIN : LEAVE_RST;
    sk->by_leave[p->kind]++;
    l = p->s[p->leaver];
    if (p->kind == LEAVE_RST) {
        sess_close(l, true);
        return;
    }
    k = (unsigned)rnd_range(sk, 1, sk->o.burst);
    for (unsigned i = 0; i < k; i++)
        if (msg_send(l) != 0)
            return;
    if (p->kind == LEAVE_GRACEFUL) {
        sess_end_stream(l);
        return;
    }
    l->fin_pending = true;
    (void)flush(l);
}

/* Moves the pair along (the rule in the header comment). Called after every event that may
 * change what it waits for, and from the sweep timer for the deadlines. */
static void pair_step(struct pair *p)
{
    struct soak *sk = p->s[0]->sk;
    struct sess *a = p->s[0], *b = p->s[1];
    uint64_t now = now_ns();

    if (p->aborted && p->st != P_IDLE && p->st != P_REAP) {
        for (unsigned i = 0; i < 2; i++)
            sess_end_stream(p->s[i]);
        p->st = P_REAP;
    }
    switch (p->st) {
    case P_IDLE:
        return;
    case P_LOGIN:
        if (a->st != S_UP || b->st != S_UP)
            return;
        pair_run(p, now);
        if (sk->phase >= PH_TEARDOWN)
            pair_quiesce(p, now);
        return;
    case P_RUN:
        if (now >= p->t_life_end || sk->phase >= PH_TEARDOWN)
            pair_quiesce(p, now);
        return;
    case P_QUIESCE:
        if ((b->got == a->sent && a->got == b->sent) || now >= p->t_deadline)
            pair_leave(p, now);
        return;
    case P_FINAL: {
        struct sess *l = p->s[p->leaver], *st = p->s[1 - p->leaver];

        if (st->got == l->sent || now >= p->t_deadline) {
            sess_end_stream(st);
            p->st = P_REAP;
        }
        return;
    }
    case P_REAP:
        if (a->st != S_FREE || b->st != S_FREE)
            return;
        pair_account(p);
        p->st = P_IDLE;
        return;
    }
}

/* Logs a new pair in on the two least recently used free accounts. */
static void pair_start(struct pair *p)
{
    struct soak *sk = p->s[0]->sk;

    p->aborted = false;
    p->st = P_LOGIN;
    for (unsigned i = 0; i < 2; i++) {
        unsigned acct = sk->accts[sk->acct_head];

        sk->acct_head = (sk->acct_head + 1) % sk->o.accounts;
        sk->acct_count--;
        if (sess_start(p->s[i], acct) != 0) {
            /* No socket: the account goes back, the pair is aborted. */
            sk->accts[(sk->acct_head + sk->acct_count) % sk->o.accounts] = acct;
            sk->acct_count++;
            p->aborted = true;
        }
    }
    pair_step(p);
}

/* ---- the run ---------------------------------------------------------------------------- */

/* Writes "<seconds since the epoch> WHAT" to path (when given): scripts/soak.sh places its
 * RSS windows by these times. */
static void write_file(const char *path, const char *what)
{
    struct timespec ts;
    FILE *f;

    if (path == NULL)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "xtp-soak: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "%lld.%03ld %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000000, what);
    fclose(f);
}

static unsigned total_errors(const struct soak *sk)
{
    unsigned n = 0;

    for (size_t i = 0; i < E__COUNT; i++)
        n += sk->errs[i];
    return n;
}

static void status_line(struct soak *sk, uint64_t now)
{
    unsigned running = 0;

    for (unsigned i = 0; i < sk->npairs; i++)
        running += sk->p[i].st == P_RUN;
    fprintf(stderr,
            "xtp-soak: t=%.0fs phase=%s up=%u setup=%u open=%u pairs_running=%u opened=%" PRIu64
            " closed=%" PRIu64 " sent=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
            " dup=%" PRIu64 " reordered=%" PRIu64 " bad_checksum=%" PRIu64 " misrouted=%" PRIu64
            " errors=%u\n",
            (double)(now - sk->t0) / 1e9, phase_names[sk->phase], sk->up, sk->in_setup, sk->open,
            running, sk->opened, sk->closed, sk->sent, sk->received, sk->lost, sk->dup,
            sk->reordered, sk->bad_checksum, sk->misrouted, total_errors(sk));
}

/* --timeout: every session still open is cut; those not yet closing count as timeouts. */
static void cut_all(struct soak *sk)
{
    for (unsigned i = 0; i < sk->o.sessions; i++) {
        struct sess *s = &sk->s[i];

        if (slot_gone(s))
            continue;
        if (s->st != S_CLOSING)
            sess_fail(s, E_TIMEOUT, "--timeout reached (state %d)", s->st);
        else
            sess_close(s, false);
    }
}

static void start_logins(struct soak *sk, uint64_t now)
{
    double rate = sk->phase == PH_RAMP ? sk->o.ramp : sk->o.churn;
    double cap = rate * 0.1 > 2 ? rate * 0.1 : 2; /* a burst of 100 ms at most */

    sk->tokens += rate * (double)(now - sk->t_tokens) / 1e9;
    if (sk->tokens > cap)
        sk->tokens = cap;
    sk->t_tokens = now;
    for (unsigned n = 0; n < sk->npairs; n++) {
        struct pair *p = &sk->p[sk->next_pair];

        if (sk->tokens < 2 || sk->in_setup + 2 > sk->o.concurrency || sk->acct_count < 2)
            return;
        if (p->st == P_IDLE && p->s[0]->st == S_FREE && p->s[1]->st == S_FREE) {
            sk->tokens -= 2;
            pair_start(p);
        }
        sk->next_pair = (sk->next_pair + 1) % sk->npairs;
    }
}

static void sweep_cb(uv_timer_t *t)
{
    struct soak *sk = t->data;
    const struct opts *o = &sk->o;
    uint64_t now = now_ns();
    uint64_t hs_limit = secs_ns(o->hs_timeout);
    bool all_idle = true;

    if (sk->phase != PH_END && now - sk->t0 > secs_ns(o->timeout)) {
        if (!sk->deadline_hit)
            fprintf(stderr, "xtp-soak: --timeout %.0f s reached: cutting every session\n",
                    o->timeout);
        sk->deadline_hit = true;
        if (sk->phase < PH_TEARDOWN) {
            sk->phase = PH_TEARDOWN;
            sk->t_teardown = now;
        }
        cut_all(sk);
    }
    for (unsigned i = 0; i < o->sessions; i++) {
        struct sess *s = &sk->s[i];

        if (in_setup_state(s->st) && now - s->t_start > hs_limit)
            sess_fail(s, E_TIMEOUT, "login took longer than %.1f s", o->hs_timeout);
        else if (s->st == S_CLOSING && now - s->t_close > CLOSE_WAIT_NS) {
            sk->errs[E_CLOSE_TIMEOUT]++;
            if (sk->err_msgs++ < MAX_ERROR_MESSAGES)
                fprintf(stderr,
                        "xtp-soak: cid %" PRIu64 ": the server did not close within %llu s of "
                        "our </stream:stream>\n",
                        s->cid, CLOSE_WAIT_NS / NS_PER_S);
            sess_close(s, false);
        }
    }
    if (sk->phase == PH_STEADY && now - sk->t0 >= secs_ns(o->duration)) {
        sk->phase = PH_TEARDOWN;
        sk->t_teardown = now;
        write_file(o->teardown_file, "teardown");
        status_line(sk, now);
    }
    for (unsigned i = 0; i < sk->npairs; i++) {
        pair_step(&sk->p[i]);
        all_idle = all_idle && sk->p[i].st == P_IDLE;
    }
    if (sk->phase == PH_RAMP && sk->ramp_left == 0) {
        sk->phase = PH_STEADY;
        sk->t_ramp_done = now;
        write_file(o->ready_file, "ramp done");
        fprintf(stderr, "xtp-soak: ramp done in %.1f s: %u sessions up\n",
                (double)(now - sk->t0) / 1e9, sk->up);
    }
    if (sk->phase == PH_RAMP && now - sk->t0 >= secs_ns(o->duration)) {
        /* The ramp never finished within the run: end it all the same (reported). */
        sk->phase = PH_TEARDOWN;
        sk->t_teardown = now;
        write_file(o->teardown_file, "teardown");
    }
    if (sk->phase < PH_TEARDOWN)
        start_logins(sk, now);
    if (sk->phase == PH_TEARDOWN && all_idle) {
        sk->phase = PH_END;
        uv_close((uv_handle_t *)&sk->sweep, NULL);
        return;
    }
    if (now - sk->t_status >= secs_ns(o->status)) {
        sk->t_status = now;
        status_line(sk, now);
    }
}

/* ---- setup and report ------------------------------------------------------------------- */

static int conf_setup(struct soak *sk, mbedtls_ssl_config *c, enum mode mode, enum tlsv v)
{
    static const char *alpn[] = {"xmpp-client", NULL};
    int rc;

    mbedtls_ssl_config_init(c);
    rc = mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0)
        return rc;
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &sk->drbg);
    mbedtls_ssl_conf_min_tls_version(c, v == TLSV_13 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                     : MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(c, v == TLSV_12 ? MBEDTLS_SSL_VERSION_TLS1_2
                                                     : MBEDTLS_SSL_VERSION_TLS1_3);
    if (sk->have_ca) {
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(c, &sk->ca, NULL);
    } else {
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_NONE);
    }
    /* XEP-0368: Direct TLS names the protocol with ALPN. */
    if (mode == MODE_DIRECT && (rc = mbedtls_ssl_conf_alpn_protocols(c, alpn)) != 0)
        return rc;
    mbedtls_ssl_conf_session_tickets(c, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    if (sk->o.resume > 0)
        mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
            c, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xtp-soak --starttls-port N --direct-port N [options]\n"
            "       xtp-soak --plain-port N [options]\n"
            "  (either TLS port may be 0 to use only the other listener; --plain-port talks\n"
            "  to the backend itself, without TLS: the same run without the proxy)\n"
            "  --host A             IPv4 loopback address of the proxy (127.0.0.1)\n"
            "  --domain D           stream 'to', SNI and certificate name (example.test)\n"
            "  --ca FILE            verify the proxy's certificate against FILE (default: none)\n"
            "  --tls 1.2|1.3|mix    TLS version per session (mix: either, at random)\n"
            "  --resume R           share of handshakes that resume a ticket (0.3)\n"
            "  -n, --sessions N     sessions kept logged in, an even number (2000)\n"
            "  -c, --concurrency C  sessions in login at a time (32)\n"
            "  --accounts A         accounts PREFIX<first>..PREFIX<first+A-1> (sessions*5/4)\n"
            "  --first-account F    (1)   --user-prefix P (u)   --password P (p)\n"
            "  --duration S         seconds from the start to the teardown (1800)\n"
            "  --rate R             messages per second and session (0.5)\n"
            "  --ramp R             logins per second until every pair was up once (50)\n"
            "  --churn R            logins per second after the ramp (10)\n"
            "  --life-min S, --life-max S  pair lifetime once up (default: mean\n"
            "                       1.25*sessions/churn, from 0.1x to 1.9x the mean)\n"
            "  --drain S            bound on each leaving step (30)\n"
            "  --burst K            at most K messages right before a leave (8)\n"
            "  --max-refused P      percent of logins the backend may refuse with\n"
            "                       <internal-server-error/> (jabberd2's descriptor reuse) (5)\n"
            "  --max-body B         largest message payload in bytes (24000)\n"
            "  --status S           seconds between status lines on stderr (10)\n"
            "  --ready-file F       written when every pair has been up once\n"
            "  --teardown-file F    written when the teardown starts\n"
            "  --timeout S          bound on the whole run (duration + 120)\n"
            "  --handshake-timeout S  bound on one login (20)\n"
            "  --seed N             random seed (time)\n");
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    double life_min = -1, life_max = -1, timeout = -1;
    unsigned sport = UINT_MAX, dport = UINT_MAX, pport = 0, seed = 0;
    bool have_seed = false;

    *o = (struct opts){
        .host = "127.0.0.1",
        .domain = "example.test",
        .tls_mask = 3,
        .resume = 0.3,
        .sessions = 2000,
        .concurrency = 32,
        .first_account = 1,
        .user_prefix = "u",
        .password = "p",
        .duration = 1800,
        .rate = 0.5,
        .ramp = 50,
        .churn = 10,
        .drain = 30,
        .burst = 8,
        .max_body = 24000,
        .max_refused = 5,
        .status = 10,
        .hs_timeout = 20,
    };
    /* Every option but --help takes a value. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (v == NULL) {
            fprintf(stderr, "xtp-soak: %s needs a value (or is unknown)\n", a);
            return -1;
        } else if (strcmp(a, "--starttls-port") == 0) {
            ok = parse_uint(v, 0, 65535, &sport);
        } else if (strcmp(a, "--direct-port") == 0) {
            ok = parse_uint(v, 0, 65535, &dport);
        } else if (strcmp(a, "--plain-port") == 0) {
            ok = parse_uint(v, 1, 65535, &pport);
        } else if (strcmp(a, "--max-refused") == 0) {
            ok = parse_double(v, 0, 100, &o->max_refused);
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--domain") == 0) {
            o->domain = v;
        } else if (strcmp(a, "--ca") == 0) {
            o->ca = v;
        } else if (strcmp(a, "--tls") == 0) {
            ok = strcmp(v, "1.2") == 0 || strcmp(v, "1.3") == 0 || strcmp(v, "mix") == 0;
            o->tls_mask = strcmp(v, "1.2") == 0 ? 1u : strcmp(v, "1.3") == 0 ? 2u : 3u;
        } else if (strcmp(a, "--resume") == 0) {
            ok = parse_double(v, 0, 1, &o->resume);
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--sessions") == 0) {
            ok = parse_uint(v, 2, 100000, &o->sessions) && o->sessions % 2 == 0;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--concurrency") == 0) {
            ok = parse_uint(v, 2, 100000, &o->concurrency);
        } else if (strcmp(a, "--accounts") == 0) {
            ok = parse_uint(v, 2, 1000000, &o->accounts);
        } else if (strcmp(a, "--first-account") == 0) {
            ok = parse_uint(v, 0, 1000000, &o->first_account);
        } else if (strcmp(a, "--user-prefix") == 0) {
            o->user_prefix = v;
        } else if (strcmp(a, "--password") == 0) {
            o->password = v;
        } else if (strcmp(a, "--duration") == 0) {
            ok = parse_double(v, 1, 86400, &o->duration);
        } else if (strcmp(a, "--rate") == 0) {
            ok = parse_double(v, 0.01, 100, &o->rate);
        } else if (strcmp(a, "--ramp") == 0) {
            ok = parse_double(v, 0.1, 10000, &o->ramp);
        } else if (strcmp(a, "--churn") == 0) {
            ok = parse_double(v, 0.1, 10000, &o->churn);
        } else if (strcmp(a, "--life-min") == 0) {
            ok = parse_double(v, 0, 86400, &life_min);
        } else if (strcmp(a, "--life-max") == 0) {
            ok = parse_double(v, 0, 86400, &life_max);
        } else if (strcmp(a, "--drain") == 0) {
            ok = parse_double(v, 0.1, 600, &o->drain);
        } else if (strcmp(a, "--burst") == 0) {
            ok = parse_uint(v, 1, 1000, &o->burst);
        } else if (strcmp(a, "--max-body") == 0) {
            ok = parse_uint(v, MIN_BODY, 60000, &o->max_body);
        } else if (strcmp(a, "--status") == 0) {
            ok = parse_double(v, 0.1, 3600, &o->status);
        } else if (strcmp(a, "--ready-file") == 0) {
            o->ready_file = v;
        } else if (strcmp(a, "--teardown-file") == 0) {
            o->teardown_file = v;
        } else if (strcmp(a, "--timeout") == 0) {
            ok = parse_double(v, 1, 90000, &timeout);
        } else if (strcmp(a, "--handshake-timeout") == 0) {
            ok = parse_double(v, 0.1, 600, &o->hs_timeout);
        } else if (strcmp(a, "--seed") == 0) {
            ok = parse_uint(v, 0, UINT_MAX, &seed);
            have_seed = true;
        } else {
            fprintf(stderr, "xtp-soak: unknown option %s\n", a);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "xtp-soak: bad value for %s: '%s'\n", a, v);
            return -1;
        }
    }
    if (pport != 0) {
        if (sport != UINT_MAX || dport != UINT_MAX) {
            fprintf(stderr, "xtp-soak: --plain-port excludes the TLS ports\n");
            return -1;
        }
        sport = dport = 0;
    } else if (sport == UINT_MAX || dport == UINT_MAX || (sport == 0 && dport == 0)) {
        fprintf(stderr, "xtp-soak: --starttls-port and --direct-port are required (one may "
                        "be 0), or --plain-port\n");
        return -1;
    }
    o->starttls_port = (int)sport;
    o->direct_port = (int)dport;
    o->plain_port = (int)pport;
    if (o->accounts == 0)
        o->accounts = o->sessions + o->sessions / 4;
    if (o->accounts < o->sessions) {
        fprintf(stderr, "xtp-soak: --accounts must be at least --sessions\n");
        return -1;
    }
    if (life_min < 0 && life_max < 0) {
        /* Pairs then end at 80% of the rate --churn lets new ones in: a freed slot logs in
         * again within about a second and the run stays near --sessions. At 100% the backlog
         * of waiting slots would be a random walk and the sessions up would drift down. */
        double mean = 1.25 * o->sessions / o->churn;

        life_min = 0.1 * mean;
        life_max = 1.9 * mean;
    } else if (life_min < 0 || life_max < 0 || life_max < life_min) {
        fprintf(stderr, "xtp-soak: give both --life-min and --life-max, min <= max\n");
        return -1;
    }
    o->life_min = life_min;
    o->life_max = life_max;
    o->timeout = timeout > 0 ? timeout : o->duration + 120;
    o->seed = have_seed ? seed : (unsigned long)uv_hrtime() ^ (unsigned long)getpid();
    if (o->concurrency > o->sessions)
        o->concurrency = o->sessions;
    return 0;
}

static int raise_nofile(unsigned need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 64) {
        fprintf(stderr, "xtp-soak: %u sessions need %u descriptors; ulimit -n is %llu\n", need,
                need + 64, (unsigned long long)rl.rlim_cur);
        return -EMFILE;
    }
    return 0;
}

static bool too_many_refused(const struct soak *sk)
{
    return (double)sk->backend_refused * 100.0 > sk->o.max_refused * (double)sk->opened;
}

/* Every rule of the header comment; true when one is broken. */
static bool violations(const struct soak *sk)
{
    return sk->lost || sk->dup || sk->reordered || sk->bad_checksum || sk->misrouted ||
           sk->bounced || sk->foreign || total_errors(sk) || sk->opened != sk->closed ||
           sk->sent != sk->received + sk->lost + sk->excused || sk->deadline_hit ||
           sk->t_ramp_done == 0 || too_many_refused(sk);
}

static void report(struct soak *sk)
{
    const struct opts *o = &sk->o;
    uint64_t now = now_ns();
    double wall = (double)(now - sk->t0) / 1e9;
    struct rusage ru;
    double cpu;

    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
          ru.ru_stime.tv_usec / 1e6;
    printf("xtp-soak %s starttls:%d direct:%d plain:%d domain=%s sessions=%u rate=%.2f/s "
           "churn=%.1f/s life=%.0f-%.0fs duration=%.0fs seed=%lu\n",
           o->host, o->starttls_port, o->direct_port, o->plain_port, o->domain, o->sessions,
           o->rate, o->churn, o->life_min, o->life_max, o->duration, o->seed);
    printf("  sessions: %" PRIu64 " opened, %" PRIu64 " closed, %" PRIu64 " logged in, %" PRIu64
           " refused by the backend (%s); starttls %" PRIu64 ", direct %" PRIu64 ", plain %" PRIu64
           "; TLS 1.2 %" PRIu64 ", TLS 1.3 %" PRIu64 "; handshakes full %" PRIu64
           ", resumed %" PRIu64 "\n",
           sk->opened, sk->closed, sk->logins, sk->backend_refused,
           too_many_refused(sk) ? "OVER --max-refused" : "within --max-refused",
           sk->by_mode[MODE_STARTTLS], sk->by_mode[MODE_DIRECT], sk->by_mode[MODE_PLAIN],
           sk->by_tls[TLSV_12], sk->by_tls[TLSV_13], sk->full, sk->resumed);
    printf("  pairs:    %" PRIu64 " ended (%" PRIu64 " aborted); leaves graceful %" PRIu64
           ", fin %" PRIu64 ", rst %" PRIu64 "; ramp %s\n",
           sk->pairs_done, sk->pairs_aborted, sk->by_leave[LEAVE_GRACEFUL], sk->by_leave[LEAVE_FIN],
           sk->by_leave[LEAVE_RST],
           sk->t_ramp_done ? "done" : "NEVER FINISHED (raise --duration or --ramp)");
    printf("  messages: %" PRIu64 " sent (%.1f MB), %" PRIu64 " received, %" PRIu64
           " lost, %" PRIu64 " excused; dup %" PRIu64 ", reordered %" PRIu64
           ", bad checksum %" PRIu64 ", misrouted %" PRIu64 ", bounced %" PRIu64
           ", foreign %" PRIu64 "\n",
           sk->sent, (double)sk->bytes_sent / 1e6, sk->received, sk->lost, sk->excused, sk->dup,
           sk->reordered, sk->bad_checksum, sk->misrouted, sk->bounced, sk->foreign);
    printf("  errors:   %u", total_errors(sk));
    for (size_t i = 0; i < E__COUNT; i++)
        if (sk->errs[i])
            printf(" %s=%u", err_names[i], sk->errs[i]);
    printf("%s\n", sk->deadline_hit ? " (--timeout reached)" : "");
    printf("  own CPU:  %.1f s in %.1f s wall\n", cpu, wall);
    printf("SOAK verdict=%s wall_s=%.1f ramp_s=%.1f sessions_opened=%" PRIu64
           " sessions_closed=%" PRIu64 " logins=%" PRIu64 " sent=%" PRIu64 " received=%" PRIu64
           " lost=%" PRIu64 " dup=%" PRIu64 " reordered=%" PRIu64 " bad_checksum=%" PRIu64
           " misrouted=%" PRIu64 " bounced=%" PRIu64 " foreign=%" PRIu64 " excused=%" PRIu64
           " errors=%u backend_refused=%" PRIu64 " pairs=%" PRIu64 " leave_graceful=%" PRIu64
           " leave_fin=%" PRIu64 " leave_rst=%" PRIu64 " resumed=%" PRIu64 " full=%" PRIu64
           " cpu_s=%.1f\n",
           violations(sk) ? "FAIL" : "PASS", wall,
           sk->t_ramp_done ? (double)(sk->t_ramp_done - sk->t0) / 1e9 : -1.0, sk->opened,
           sk->closed, sk->logins, sk->sent, sk->received, sk->lost, sk->dup, sk->reordered,
           sk->bad_checksum, sk->misrouted, sk->bounced, sk->foreign, sk->excused, total_errors(sk),
           sk->backend_refused, sk->pairs_done, sk->by_leave[LEAVE_GRACEFUL],
           sk->by_leave[LEAVE_FIN], sk->by_leave[LEAVE_RST], sk->resumed, sk->full, cpu);
    fflush(stdout);
}

static int setup_tls(struct soak *sk)
{
    int rc;

    if (psa_crypto_init() != PSA_SUCCESS) { /* TLS 1.3 in mbedTLS 3.6 needs PSA */
        fprintf(stderr, "xtp-soak: psa_crypto_init failed\n");
        return -1;
    }
    mbedtls_entropy_init(&sk->entropy);
    mbedtls_ctr_drbg_init(&sk->drbg);
    mbedtls_x509_crt_init(&sk->ca);
    rc = mbedtls_ctr_drbg_seed(&sk->drbg, mbedtls_entropy_func, &sk->entropy,
                               (const unsigned char *)"xtp-soak", 8);
    if (rc == 0 && sk->o.ca != NULL) {
        rc = mbedtls_x509_crt_parse_file(&sk->ca, sk->o.ca);
        sk->have_ca = rc == 0;
    }
    for (unsigned m = 0; m < 2 && rc == 0; m++)
        for (unsigned v = 0; v < 2 && rc == 0; v++) {
            rc = conf_setup(sk, &sk->conf[m][v], (enum mode)m, (enum tlsv)v);
            sk->conf_init[m][v] = true;
            mbedtls_ssl_session_init(&sk->saved[m][v]);
        }
    if (rc != 0) {
        char msg[128];

        mbedtls_strerror(rc, msg, sizeof(msg));
        fprintf(stderr, "xtp-soak: TLS setup: %s\n", msg);
        return -1;
    }
    return 0;
}

static void cleanup(struct soak *sk)
{
    for (unsigned m = 0; m < 2; m++)
        for (unsigned v = 0; v < 2; v++) {
            if (sk->conf_init[m][v])
                mbedtls_ssl_config_free(&sk->conf[m][v]);
            mbedtls_ssl_session_free(&sk->saved[m][v]);
        }
    mbedtls_x509_crt_free(&sk->ca);
    mbedtls_ctr_drbg_free(&sk->drbg);
    mbedtls_entropy_free(&sk->entropy);
    mbedtls_psa_crypto_free();
    for (unsigned i = 0; i < sk->o.sessions; i++)
        free(sk->s[i].seen);
    free(sk->s);
    free(sk->p);
    free(sk->accts);
    free(sk->msgbuf);
}

int main(int argc, char **argv)
{
    static struct soak soak;
    struct soak *sk = &soak;
    const struct opts *o = &sk->o;
    struct in_addr host;
    bool bad;

    if (parse_args(argc, argv, &sk->o) != 0) {
        usage(stderr);
        return 2;
    }
    /* Loopback only: a soak never leaves the machine. */
    if (inet_pton(AF_INET, o->host, &host) != 1 || (ntohl(host.s_addr) >> 24) != 127) {
        fprintf(stderr, "xtp-soak: --host must be an IPv4 loopback address: %s\n", o->host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (raise_nofile(o->sessions) != 0)
        return 2;
    if (o->starttls_port)
        sk->modes[sk->nmodes++] = MODE_STARTTLS;
    if (o->direct_port)
        sk->modes[sk->nmodes++] = MODE_DIRECT;
    if (o->plain_port)
        sk->modes[sk->nmodes++] = MODE_PLAIN;
    for (unsigned m = 0; m < 3; m++) {
        int port = m == MODE_STARTTLS ? o->starttls_port
                   : m == MODE_DIRECT ? o->direct_port
                                      : o->plain_port;

        sk->addr[m].sin_family = AF_INET;
        sk->addr[m].sin_addr = host;
        sk->addr[m].sin_port = htons((uint16_t)port);
    }
    sk->rng = o->seed * 0x9E3779B97F4A7C15ull + 1;
    crc_init(sk);
    sk->npairs = o->sessions / 2;
    sk->ramp_left = sk->npairs;
    sk->s = calloc(o->sessions, sizeof(*sk->s));
    sk->p = calloc(sk->npairs, sizeof(*sk->p));
    sk->accts = calloc(o->accounts, sizeof(*sk->accts));
    sk->msgcap = o->max_body + 1024;
    sk->msgbuf = malloc(sk->msgcap);
    if (sk->s == NULL || sk->p == NULL || sk->accts == NULL || sk->msgbuf == NULL) {
        fprintf(stderr, "xtp-soak: out of memory\n");
        return 2;
    }
    for (unsigned i = 0; i < o->sessions; i++) {
        sk->s[i].sk = sk;
        sk->s[i].slot = i;
        sk->s[i].fd = -1;
        sk->s[i].pair = &sk->p[i / 2];
        sk->p[i / 2].s[i % 2] = &sk->s[i];
    }
    for (unsigned i = 0; i < o->accounts; i++)
        sk->accts[i] = o->first_account + i;
    sk->acct_count = o->accounts;
    if (setup_tls(sk) != 0)
        return 2;

    sk->loop = uv_default_loop();
    sk->t0 = sk->t_status = sk->t_tokens = now_ns();
    sk->sweep.data = sk;
    uv_timer_init(sk->loop, &sk->sweep);
    uv_timer_start(&sk->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    fprintf(stderr,
            "xtp-soak: %u sessions, %.2f msg/s each, ramp %.0f/s, churn %.1f/s, pair life "
            "%.0f-%.0f s, %.0f s run, seed %lu\n",
            o->sessions, o->rate, o->ramp, o->churn, o->life_min, o->life_max, o->duration,
            o->seed);
    uv_run(sk->loop, UV_RUN_DEFAULT);
    status_line(sk, now_ns());
    report(sk);
    bad = violations(sk);
    uv_loop_close(sk->loop);
    cleanup(sk);
    return bad ? 1 : 0;
}
