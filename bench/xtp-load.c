/* xtp-load.c: an XMPP c2s load generator for the benchmarks (bench/c2s.sh, bench/compare.sh).
 *
 * One thread, one libuv loop; every session is a non-blocking socket watched with uv_poll. The TLS
 * client is mbedTLS 3.6 or, with --tls-lib openssl, OpenSSL 3 (load_tls.h: both read and write
 * the socket directly). A session is:
 *
 *   starttls: plaintext header -> </stream:features> -> <starttls/> -> <proceed/> -> TLS
 *             handshake -> header over TLS -> </stream:features>          (RFC 6120 §5)
 *   direct:   TLS handshake (SNI, ALPN xmpp-client) -> header -> </stream:features> (XEP-0368)
 *   plain:    header -> </stream:features>, no TLS (straight to the backend: the floor)
 *
 * then, with --login, SASL PLAIN as PREFIX<i>/PASSWORD, the stream restart, resource binding
 * and initial presence (RFC 6120 §6-7, RFC 6121 §4.2). The run opens --sessions sessions with at
 * most --concurrency in setup at a time, and with --arrival-rate at most that many new sessions
 * per second (an open loop, so setup latencies include the server's queueing). Without --login,
 * --rate or --hold a session ends its stream as soon as it is set up (handshake rate);
 * otherwise all stay open until every one is set up, then exchange messages (--rate per session
 * and second, for --duration seconds, between sessions 2k and 2k+1) and/or stay idle for --hold
 * seconds, then end their streams.
 *
 * Each message body carries its send time (CLOCK_MONOTONIC, this process), so the receiver
 * measures the exact one-way latency. With --b-port, every other pair connects to a second
 * target (B, e.g. the proxy in front of the backend that A reaches directly): both groups run
 * at once, under the same load, and the report gives each group's latency (bench/stanza.sh).
 * Everything is bounded: --timeout for the whole run, --handshake-timeout per setup, 3 s to
 * drain messages, 2 s for a stream to close.
 *
 * Output: a readable report on stdout, then one "RESULT key=value ..." line for scripts.
 * Exit status: 0 when every session was set up and every message arrived, 1 otherwise (errors
 * are counted by kind), 2 on bad usage or when the run could not start. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
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

#include "load_tls.h"

#define ARRAY_SIZE(a)      (sizeof(a) / sizeof((a)[0]))
#define SWEEP_MS           50 /* timeouts and phase changes are checked this often */
#define CLOSE_WAIT_NS      (2 * NS_PER_S)
#define DRAIN_NS           (3 * NS_PER_S)
#define NS_PER_S           1000000000ull
#define READ_CHUNK         (16 * 1024 + 512)
#define MAX_ERROR_MESSAGES 10 /* the first few failures are printed, the rest only counted */

/* RFC 6120 §4.7: our stream header; a macro so that printf checks the format. */
#define STREAM_HEADER                                                                              \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"
static const char FEATURES_END[] = "</stream:features>";
static const char STREAM_END[] = "</stream:stream>";

enum mode {
    MODE_STARTTLS = 0,
    MODE_DIRECT,
    MODE_PLAIN,
};
static const char *const mode_names[] = {"starttls", "direct", "plain"};

struct opts {
    const char *host;
    int port;
    const char *domain;
    enum mode mode;
    unsigned sessions;
    unsigned concurrency;
    double arrival_rate; /* sessions started per second (open loop); 0: as fast as -c allows */
    const struct load_tls_lib *lib; /* the TLS client library */
    bool resume;                    /* reuse the ticket a first (uncounted) session received */
    bool psk_only;                  /* resumed TLS 1.3 handshakes offer psk_ke only (no ECDHE) */
    int tls;                        /* 0: 1.2 or 1.3, 12: 1.2 only, 13: 1.3 only */
    bool secp256r1;                 /* the TLS 1.3 key share group, else x25519 */
    const char *ca;
    bool login;
    const char *user_prefix;
    const char *password;
    double rate;     /* messages per second and session */
    double duration; /* seconds of message exchange */
    unsigned msg_size;
    double hold; /* seconds idle once every session is up */
    const char *ready_file;
    const char *done_file; /* written once the messages are drained, before the streams end */
    double settle;         /* idle seconds after --ready-file and after --done-file (profilers) */
    int b_port;            /* --b-port: the odd pairs' target (0: none), for A/B in one run */
    enum mode b_mode;
    const char *latency_log;
    const char *port_log; /* one line per session: index, local TCP port, A or B group */
    double timeout;
    double hs_timeout;
};

/* One session. Setup states run in this order; a session skips those its mode does not use.
 *   NEW -> CONNECT -> [PRE_FEAT -> PROCEED] -> [HANDSHAKE] -> FEAT
 *       -> [AUTH -> AUTH_FEAT -> BIND] -> UP -> CLOSING -> DONE
 * Any error, EOF or timeout leads to DONE (the handles close, then the resources are freed). */
enum sstate {
    S_NEW = 0,
    S_CONNECT,   /* TCP connect in progress */
    S_PRE_FEAT,  /* STARTTLS: waiting for the plaintext </stream:features> */
    S_PROCEED,   /* STARTTLS: <starttls/> sent, waiting for <proceed/> */
    S_HANDSHAKE, /* TLS handshake */
    S_FEAT,      /* header sent (after TLS, or plain), waiting for </stream:features> */
    S_AUTH,      /* SASL PLAIN sent, waiting for <success/> */
    S_AUTH_FEAT, /* stream restarted after SASL, waiting for </stream:features> */
    S_BIND,      /* resource binding iq sent */
    S_UP,        /* set up (and logged in with --login, initial presence sent) */
    S_CLOSING,   /* our </stream:stream> is out; discarding input until EOF */
    S_DONE,
};

enum err_kind {
    E_CONNECT = 0,
    E_TLS,
    E_STREAM, /* stream error, unexpected element, <failure/> */
    E_AUTH,   /* SASL or bind refused */
    E_TIMEOUT,
    E_EOF,     /* the server closed the connection before we did */
    E_LOST,    /* messages sent but never received */
    E_BOUNCED, /* messages that came back with type='error' */
    E__COUNT,
};
static const char *const err_names[] = {"connect", "tls", "stream", "auth",
                                        "timeout", "eof", "lost",   "bounced"};

struct buf {
    char *p;
    size_t len, cap; /* data is p[0..len): consuming moves the rest to the front */
};

struct lat {
    uint32_t *v; /* microseconds */
    size_t n, cap;
};

struct load;

struct sess {
    struct load *ld; /* borrowed */
    unsigned idx;
    enum mode mode; /* o.mode, or o.b_mode for the B group */
    bool b;         /* in the B group: pair idx / 2 is odd and --b-port is set */
    int fd;
    enum sstate st;
    bool primer;  /* the session that fetches a ticket for --resume; not counted */
    bool counted; /* setup finished (up or failed) and counted */
    bool hs_done; /* TLS is up: reads and writes go through tls */
    bool want_write;
    bool shut_pending; /* closing: shut down our side once out is flushed */
    int events;        /* what poll watches now */
    int handles;       /* open libuv handles */
    uv_poll_t poll;
    uv_timer_t tick; /* message sending */
    bool tick_init;
    void *tls;          /* owned: the ld->o.lib session */
    struct buf in, out; /* plaintext */
    size_t tls_pend;    /* length of the TLS write to repeat after WANT_WRITE */
    uint64_t t_start, t_tls, t_tls_done, t_feat, t_close;
    uint32_t seq;
};

enum phase {
    P_PRIME = 0, /* --resume: one uncounted session fetches a ticket */
    P_SETUP,     /* sessions are being opened */
    P_SETTLE,    /* --settle: every session is up, the ready file is out; idle */
    P_RUN,       /* every session is up: messages and/or hold */
    P_DRAIN,     /* no more sends; waiting for messages in flight */
    P_LINGER,    /* --settle: the messages have drained, the done file is out; idle */
    P_CLOSE,     /* streams are ending */
    P_END,
};

struct load {
    struct opts o;
    uv_loop_t *loop;
    uv_timer_t sweep;
    struct sockaddr_in addr, b_addr;
    struct sess *s;    /* o.sessions entries */
    struct sess prm;   /* the primer */
    uv_timer_t arrive; /* --arrival-rate: starts the next sessions on time */
    void *tls_conf;    /* owned: the ld->o.lib configuration */
    enum phase phase;
    bool keep; /* sessions stay open once up */
    unsigned next, in_setup, open, up, failed;
    unsigned resumed, full;
    unsigned errs[E__COUNT];
    unsigned err_msgs;
    bool deadline_hit, fatal;
    uint64_t t0, t_setup0, t_setup_end, t_phase_end;
    uint64_t msgs_sent, msgs_rcvd;
    uint64_t b_msgs_sent, b_msgs_rcvd;        /* the B group's share of the two above */
    struct lat setup, tls, login, msg, b_msg; /* msg: the A group (all without --b-port) */
    FILE *latency_log; /* --latency-log: one line per session set up, owned */
    FILE *port_log;    /* --port-log, owned */
    char tls_version[32], cipher[64];
};

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ---- small helpers ---------------------------------------------------------------------- */

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
    /* What stays is at most a partial element or record: a few bytes to move. */
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

static int lat_push(struct lat *l, uint64_t ns)
{
    uint64_t us = ns / 1000;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        uint32_t *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The p-th percentile (0 < p <= 100) by the nearest-rank method; 0 for no samples. Sorts. */
static uint32_t lat_pct(struct lat *l, double p)
{
    size_t rank;

    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
    rank = (size_t)ceil(p / 100.0 * (double)l->n);
    if (rank < 1)
        rank = 1;
    return l->v[rank - 1];
}

static uint32_t lat_max(struct lat *l)
{
    return lat_pct(l, 100.0);
}

/* ---- errors and closing ----------------------------------------------------------------- */

static void pump(struct load *ld);
static void update_poll(struct sess *s);
static void on_readable(struct sess *s);

static void closed_cb(uv_handle_t *h)
{
    struct sess *s = h->data;

    if (--s->handles > 0)
        return;
    close(s->fd);
    s->fd = -1;
    s->ld->o.lib->sess_free(s->tls);
    s->tls = NULL;
    buf_free(&s->in);
    buf_free(&s->out);
    s->ld->open--;
    pump(s->ld);
}

/* Releases the session: stops its handles; the last close callback frees the rest. The
 * struct itself lives in ld->s until the end of the run. Idempotent. */
static void sess_close(struct sess *s)
{
    if (s->st == S_DONE)
        return;
    s->st = S_DONE;
    if (s->tick_init) {
        uv_timer_stop(&s->tick);
        uv_close((uv_handle_t *)&s->tick, closed_cb);
    }
    uv_close((uv_handle_t *)&s->poll, closed_cb);
}

/* Marks the session's setup as finished, successfully or not, once. */
static void count_setup(struct sess *s, bool ok)
{
    struct load *ld = s->ld;

    if (s->counted || s->primer)
        return;
    s->counted = true;
    ld->in_setup--;
    if (ok)
        ld->up++;
    else
        ld->failed++;
}

__attribute__((format(printf, 3, 4))) static void sess_fail(struct sess *s, enum err_kind kind,
                                                            const char *fmt, ...)
{
    struct load *ld = s->ld;
    va_list ap;

    if (s->st == S_DONE)
        return;
    if (s->st == S_CLOSING) { /* our stream had ended: whatever happens now is not an error */
        sess_close(s);
        return;
    }
    ld->errs[kind]++;
    if (ld->err_msgs++ < MAX_ERROR_MESSAGES) {
        fprintf(stderr, "xtp-load: session %u%s: %s: ", s->idx, s->primer ? " (primer)" : "",
                err_names[kind]);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    if (s->primer)
        ld->fatal = true; /* --resume cannot run without a ticket */
    count_setup(s, false);
    sess_close(s);
}

/* Fails the session after a TLS call returned LOAD_TLS_CLOSED or LOAD_TLS_FAILED: a closed
 * connection counts as kind closed, anything else as E_TLS. */
static void tls_fail(struct sess *s, enum err_kind closed, int rc)
{
    sess_fail(s, rc == LOAD_TLS_CLOSED ? closed : E_TLS, "%s (state %d)",
              s->ld->o.lib->error(s->tls), s->st);
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

static void shut_our_side(struct sess *s)
{
    s->shut_pending = false;
    if (s->hs_done)
        s->ld->o.lib->close_notify(s->tls); /* best effort: the FIN follows anyway */
    shutdown(s->fd, SHUT_WR);
}

/* Writes what is queued in out, through TLS once it is up. Returns 0 (possibly with data left
 * and UV_WRITABLE watched) or -1 after failing the session. */
static int flush(struct sess *s)
{
    while (s->out.len > 0) {
        size_t len = s->out.len;
        ssize_t n;

        if (s->hs_done) {
            /* After WANT_WRITE, call again with the same length (load_tls.h). */
            if (s->tls_pend)
                len = s->tls_pend;
            else if (len > 16384)
                len = 16384;
            s->want_write = false;
            n = s->ld->o.lib->write(s->tls, s->out.p, len);
            if (n == LOAD_TLS_WANT_WRITE || n == LOAD_TLS_WANT_READ) {
                s->want_write = n == LOAD_TLS_WANT_WRITE;
                s->tls_pend = len;
                break;
            }
            if (n < 0) {
                tls_fail(s, E_EOF, (int)n);
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
    if (s->out.len == 0 && s->shut_pending)
        shut_our_side(s);
    update_poll(s);
    return 0;
}

/* Ends our stream (RFC 6120 §4.4) and waits, bounded, for the server to close. */
static void sess_end_stream(struct sess *s)
{
    if (s->st >= S_CLOSING)
        return;
    if (s->st == S_CONNECT) {
        sess_close(s);
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

static void process(struct sess *s);

/* Decrypts everything available into s->in. Returns 0, or -1 after closing the session. */
static int tls_read_all(struct sess *s)
{
    const struct load_tls_lib *lib = s->ld->o.lib;
    char tmp[READ_CHUNK];

    for (;;) {
        int n = lib->read(s->tls, tmp, sizeof(tmp));

        if (n > 0) {
            if (buf_append(&s->in, tmp, (size_t)n) != 0) {
                sess_fail(s, E_STREAM, "out of memory");
                return -1;
            }
            continue;
        }
        if (n == LOAD_TLS_WANT_READ)
            return 0;
        if (n == LOAD_TLS_WANT_WRITE) { /* a post-handshake reply is waiting for the socket */
            s->want_write = true;
            update_poll(s);
            return 0;
        }
        tls_fail(s, E_EOF, n);
        return -1;
    }
}

static void tls_step(struct sess *s)
{
    struct load *ld = s->ld;
    const struct load_tls_lib *lib = ld->o.lib;
    int rc, resumed;

    s->want_write = false;
    rc = lib->handshake(s->tls);
    if (rc == LOAD_TLS_WANT_READ || rc == LOAD_TLS_WANT_WRITE) {
        s->want_write = rc == LOAD_TLS_WANT_WRITE;
        update_poll(s);
        return;
    }
    if (rc != 0) {
        tls_fail(s, E_TLS, rc);
        return;
    }
    s->hs_done = true;
    s->t_tls_done = now_ns();
    if (ld->tls_version[0] == '\0') {
        snprintf(ld->tls_version, sizeof(ld->tls_version), "%s", lib->version(s->tls));
        snprintf(ld->cipher, sizeof(ld->cipher), "%s", lib->cipher(s->tls));
    }
    if (!s->primer) {
        resumed = lib->resumed(s->tls);
        if (resumed == 1)
            ld->resumed++;
        else if (resumed == 0)
            ld->full++;
        (void)lat_push(&ld->tls, s->t_tls_done - s->t_tls);
        if (ld->latency_log != NULL)
            fprintf(ld->latency_log, "%u %.6f %.3f\n", s->idx,
                    (double)(s->t_tls - ld->t_setup0) / 1e9,
                    (double)(s->t_tls_done - s->t_tls) / 1e6);
    }
    s->st = S_FEAT; /* RFC 6120 §5.4.3.3: a new stream over TLS */
    if (out_fmt(s, STREAM_HEADER, ld->o.domain) != 0 || flush(s) != 0)
        return;
    if (tls_read_all(s) != 0) /* records may already sit in the library's buffer */
        return;
    process(s);
}

static void tls_start(struct sess *s)
{
    struct load *ld = s->ld;
    char err[160];
    enum load_tls_role role = s->primer      ? LOAD_TLS_PRIMER
                              : ld->o.resume ? LOAD_TLS_RESUME
                                             : LOAD_TLS_FRESH;

    s->tls = ld->o.lib->sess_new(ld->tls_conf, s->fd, role, err, sizeof(err));
    if (s->tls == NULL) {
        sess_fail(s, E_TLS, "%s", err);
        return;
    }
    s->st = S_HANDSHAKE;
    s->t_tls = now_ns();
    tls_step(s);
}

/* ---- XMPP ------------------------------------------------------------------------------- */

/* If s->in starts (after whitespace) with a complete top-level element, stores its offset and
 * length and its name (up to 31 bytes) and returns 1; returns 0 while it is incomplete and -1
 * for the end of the stream. Our elements never nest an element of their own name. */
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

/* Waits for the end of <stream:features>; consumes everything up to it. 1: found, 0: not yet,
 * -1: the session failed (a stream error). */
static int take_features(struct sess *s)
{
    const char *b = s->in.p, *end;
    size_t len = s->in.len;

    if (b == NULL || len == 0)
        return 0;

    if (memmem(b, len, "<stream:error", 13) != NULL) {
        sess_fail(s, E_STREAM, "stream error: %.*s", (int)(len > 300 ? 300 : len), b);
        return -1;
    }
    end = memmem(b, len, FEATURES_END, sizeof(FEATURES_END) - 1);
    if (end == NULL)
        return 0;
    buf_consume(&s->in, (size_t)(end - b) + sizeof(FEATURES_END) - 1);
    return 1;
}

/* The body of our messages starts with "T=<send time in ns> ": the one-way latency. */
static void on_message(struct sess *s, const char *m, size_t len)
{
    struct load *ld = s->ld;
    const char *t = memmem(m, len, "<body>T=", 8);
    uint64_t now = now_ns(), sent;

    if (memmem(m, len, "type='error'", 12) != NULL || memmem(m, len, "type=\"error\"", 12)) {
        ld->errs[E_BOUNCED]++;
        return;
    }
    if (t == NULL)
        return; /* not one of ours */
    sent = strtoull(t + 8, NULL, 10);
    ld->msgs_rcvd++;
    ld->b_msgs_rcvd += s->b;
    if (sent > 0 && sent <= now)
        (void)lat_push(s->b ? &ld->b_msg : &ld->msg, now - sent);
}

static void sess_up(struct sess *s)
{
    struct load *ld = s->ld;
    uint64_t now = now_ns();

    s->st = S_UP;
    if (s->primer) {
        if (!ld->o.lib->have_ticket(ld->tls_conf)) {
            sess_fail(s, E_TLS, "the server sent no session ticket: cannot --resume");
            return;
        }
        sess_end_stream(s);
        pump(ld);
        return;
    }
    if (ld->o.login)
        (void)lat_push(&ld->login, now - s->t_feat);
    count_setup(s, true);
    if (!ld->keep)
        sess_end_stream(s);
    pump(ld);
}

static void send_auth(struct sess *s)
{
    const struct opts *o = &s->ld->o;
    unsigned char raw[256], b64[400];
    size_t rawlen, b64len;
    int n;

    /* RFC 4616: [authzid] NUL authcid NUL passwd. */
    n = snprintf((char *)raw + 1, sizeof(raw) - 1, "%s%u", o->user_prefix, s->idx);
    if (n < 0 || (size_t)n + strlen(o->password) + 2 > sizeof(raw)) {
        sess_fail(s, E_AUTH, "user name or password too long");
        return;
    }
    raw[0] = '\0';
    rawlen = 1 + (size_t)n;
    raw[rawlen++] = '\0';
    memcpy(raw + rawlen, o->password, strlen(o->password));
    rawlen += strlen(o->password);
    if (mbedtls_base64_encode(b64, sizeof(b64), &b64len, raw, rawlen) != 0) {
        sess_fail(s, E_AUTH, "base64");
        return;
    }
    if (out_fmt(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
                (const char *)b64) == 0)
        s->st = S_AUTH;
}

/* Runs the session's protocol on what s->in holds; returns when it needs more input. */
static void process(struct sess *s)
{
    struct load *ld = s->ld;
    char name[32];
    size_t off, len;
    int r;

    for (;;) {
        switch (s->st) {
        case S_PRE_FEAT:
            if ((r = take_features(s)) <= 0)
                goto out;
            if (out_str(s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", 51) != 0)
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
            s->t_feat = now_ns();
            if (!s->primer)
                (void)lat_push(&ld->setup, s->t_feat - s->t_start);
            if (!ld->o.login || s->primer) {
                sess_up(s);
                goto out;
            }
            send_auth(s);
            break;
        case S_AUTH:
            if ((r = next_elem(s, &off, &len, name, sizeof(name))) == 0)
                goto out;
            if (r < 0 || strcmp(name, "success") != 0) {
                sess_fail(s, E_AUTH, "SASL PLAIN as %s%u: <%s>", ld->o.user_prefix, s->idx,
                          r < 0 ? "/" : name);
                return;
            }
            buf_consume(&s->in, off + len);
            /* RFC 6120 §6.4.6: the stream restarts after <success/>. */
            if (out_fmt(s, STREAM_HEADER, ld->o.domain) != 0)
                return;
            s->st = S_AUTH_FEAT;
            break;
        case S_AUTH_FEAT:
            if ((r = take_features(s)) <= 0)
                goto out;
            if (out_str(s,
                        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                        "<resource>load</resource></bind></iq>",
                        110) != 0)
                return;
            s->st = S_BIND;
            break;
        case S_BIND:
            if ((r = next_elem(s, &off, &len, name, sizeof(name))) == 0)
                goto out;
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
            if ((r = next_elem(s, &off, &len, name, sizeof(name))) == 0)
                goto out;
            if (r < 0) {
                sess_fail(s, E_EOF, "the server ended the stream");
                return;
            }
            if (strcmp(name, "stream:error") == 0) {
                sess_fail(s, E_STREAM, "stream error: %.*s", (int)(len > 300 ? 300 : len),
                          s->in.p + off);
                return;
            }
            if (strcmp(name, "message") == 0)
                on_message(s, s->in.p + off, len);
            buf_consume(&s->in, off + len);
            break;
        case S_CLOSING:
            buf_consume(&s->in, s->in.len);
            goto out;
        default:
            goto out;
        }
        if (s->st == S_DONE)
            return;
    }
out:
    if (s->st != S_DONE)
        (void)flush(s);
}

/* ---- socket events ---------------------------------------------------------------------- */

static void poll_cb(uv_poll_t *h, int status, int events);

static void update_poll(struct sess *s)
{
    int ev;

    if (s->st == S_DONE)
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
    struct load *ld = s->ld;
    int err = 0;
    socklen_t elen = sizeof(err);

    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        err = errno;
    if (err != 0) {
        sess_fail(s, E_CONNECT, "connect: %s", strerror(err));
        return;
    }
    if (ld->port_log != NULL && !s->primer) {
        struct sockaddr_in me;
        socklen_t mlen = sizeof(me);

        if (getsockname(s->fd, (struct sockaddr *)&me, &mlen) == 0)
            fprintf(ld->port_log, "%u %u %c\n", s->idx, ntohs(me.sin_port), s->b ? 'B' : 'A');
    }
    if (s->mode == MODE_DIRECT) {
        tls_start(s);
        return;
    }
    s->st = s->mode == MODE_STARTTLS ? S_PRE_FEAT : S_FEAT;
    if (out_fmt(s, STREAM_HEADER, ld->o.domain) == 0)
        (void)flush(s);
}

static void on_readable(struct sess *s)
{
    char tmp[READ_CHUNK];

    if (s->st == S_HANDSHAKE) {
        tls_step(s);
        return;
    }
    if (s->hs_done && s->st != S_CLOSING) {
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
            if (s->st == S_CLOSING)
                sess_close(s);
            else if (n == 0)
                sess_fail(s, E_EOF, "the server closed the connection in state %d", s->st);
            else
                sess_fail(s, E_EOF, "recv: %s", strerror(errno));
            return;
        }
        if (s->st == S_CLOSING)
            continue; /* ciphertext or not, nothing after our end of stream matters */
        if (buf_append(&s->in, tmp, (size_t)n) != 0) {
            sess_fail(s, E_STREAM, "out of memory");
            return;
        }
    }
    if (s->st != S_CLOSING)
        process(s);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct sess *s = h->data;

    if (s->st == S_DONE)
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
    if ((events & UV_READABLE) && s->st != S_DONE)
        on_readable(s);
}

static void sess_start(struct load *ld, struct sess *s, unsigned idx, bool primer)
{
    int one = 1, rc;

    memset(s, 0, sizeof(*s));
    s->ld = ld;
    s->idx = idx;
    s->primer = primer;
    /* --b-port: pairs (2k, 2k+1) with k odd go to the B target, so that both targets see the
     * same load at the same time and their latencies can be compared sample by sample. */
    s->b = !primer && ld->o.b_port != 0 && (idx / 2) % 2 == 1;
    s->mode = s->b ? ld->o.b_mode : ld->o.mode;
    s->t_start = now_ns();
    ld->open++;
    if (!primer)
        ld->in_setup++;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        /* No handle yet: account for it by hand. */
        s->st = S_DONE;
        ld->errs[E_CONNECT]++;
        if (ld->err_msgs++ < MAX_ERROR_MESSAGES)
            fprintf(stderr, "xtp-load: session %u: socket: %s\n", idx, strerror(errno));
        if (primer)
            ld->fatal = true;
        else {
            s->counted = true;
            ld->in_setup--;
            ld->failed++;
        }
        ld->open--;
        return;
    }
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->poll.data = s;
    rc = uv_poll_init_socket(ld->loop, &s->poll, s->fd);
    if (rc != 0) {
        fprintf(stderr, "xtp-load: uv_poll_init: %s\n", uv_strerror(rc));
        exit(2);
    }
    s->handles = 1;
    s->st = S_CONNECT;
    if (connect(s->fd, (const struct sockaddr *)(s->b ? &ld->b_addr : &ld->addr),
                sizeof(ld->addr)) != 0 &&
        errno != EINPROGRESS) {
        sess_fail(s, E_CONNECT, "connect: %s", strerror(errno));
        return;
    }
    update_poll(s);
}

/* ---- phases ----------------------------------------------------------------------------- */

static void tick_cb(uv_timer_t *t)
{
    struct sess *s = t->data;
    struct load *ld = s->ld;
    const struct opts *o = &ld->o;
    char msg[4096];
    size_t tail = sizeof("</body></message>") - 1;
    int n;

    if (s->st != S_UP || ld->phase != P_RUN)
        return;
    n = snprintf(msg, sizeof(msg),
                 "<message to='%s%u@%s/load' type='chat' id='m%u'><body>T=%" PRIu64 " S=%u ",
                 o->user_prefix, s->idx ^ 1u, o->domain, s->seq, now_ns(), s->seq);
    if (n < 0 || (size_t)n + tail >= sizeof(msg))
        return;
    while ((size_t)n + tail < o->msg_size && (size_t)n + tail < sizeof(msg) - 1)
        msg[n++] = 'x';
    memcpy(msg + n, "</body></message>", tail);
    s->seq++;
    ld->msgs_sent++;
    ld->b_msgs_sent += s->b;
    if (out_str(s, msg, (size_t)n + tail) == 0)
        (void)flush(s);
}

/* --ready-file and --done-file: a line for the scripts that sample servers' CPU around the
 * message phase (written when it starts and when its messages have drained). */
static void write_mark(const char *path, const char *what, uint64_t n)
{
    FILE *f;

    if (path == NULL)
        return;
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "xtp-load: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "%" PRIu64 " %s\n", n, what);
    fclose(f);
}

static void write_ready_file(struct load *ld)
{
    write_mark(ld->o.ready_file, "sessions up", ld->up);
}

static void close_all(struct load *ld)
{
    ld->phase = P_CLOSE;
    for (unsigned i = 0; i < ld->o.sessions; i++) {
        struct sess *s = &ld->s[i];

        if (s->st == S_NEW || s->st == S_DONE)
            continue;
        if (s->st == S_UP)
            sess_end_stream(s);
        else if (s->st != S_CLOSING)
            sess_fail(s, E_TIMEOUT, "still in setup (state %d) when the run ended", s->st);
    }
}

static void start_run(struct load *ld)
{
    const struct opts *o = &ld->o;
    uint64_t now = now_ns();

    if (ld->phase == P_SETUP) {
        ld->t_setup_end = now;
        write_ready_file(ld);
        if (o->settle > 0) {
            ld->phase = P_SETTLE;
            ld->t_phase_end = now + (uint64_t)(o->settle * NS_PER_S);
            return;
        }
    }
    ld->phase = P_RUN;
    if (o->rate > 0) {
        uint64_t period = (uint64_t)(1000.0 / o->rate + 0.5);

        if (period == 0)
            period = 1;
        for (unsigned i = 0; i < o->sessions; i++) {
            struct sess *s = &ld->s[i];

            if (s->st != S_UP)
                continue;
            s->tick.data = s;
            uv_timer_init(ld->loop, &s->tick);
            s->tick_init = true;
            s->handles++;
            /* Spread the first sends over one period so they do not all leave at once. */
            uv_timer_start(&s->tick, tick_cb, (uint64_t)rand() % period, period);
        }
        ld->t_phase_end = now + (uint64_t)(o->duration * NS_PER_S);
    } else {
        ld->t_phase_end = now + (uint64_t)(o->hold * NS_PER_S);
    }
}

static void arrive_cb(uv_timer_t *t)
{
    pump(t->data);
}

/* The setup phase starts now; with --arrival-rate, a timer paces the session starts. */
static void setup_begin(struct load *ld)
{
    double period_ms = ld->o.arrival_rate > 0 ? 1000.0 / ld->o.arrival_rate : 0;

    ld->phase = P_SETUP;
    ld->t_setup0 = now_ns();
    if (period_ms > 0)
        uv_timer_start(&ld->arrive, arrive_cb, 0, period_ms < 1 ? 1 : (uint64_t)period_ms);
}

/* With --arrival-rate R, session i may start at t_setup0 + i / R: the schedule does not slow
 * down when the server does (open loop), so the latencies include the queueing. */
static bool arrival_due(const struct load *ld)
{
    double elapsed;

    if (ld->o.arrival_rate <= 0)
        return true;
    elapsed = (double)(now_ns() - ld->t_setup0) / 1e9;
    return (double)ld->next <= elapsed * ld->o.arrival_rate;
}

/* Starts what may start and moves to the next phase when the current one is over. */
static void pump(struct load *ld)
{
    const struct opts *o = &ld->o;

    if (ld->fatal && ld->phase < P_CLOSE) {
        close_all(ld);
        return;
    }
    if (ld->phase == P_PRIME) {
        if (!ld->o.lib->have_ticket(ld->tls_conf) || ld->prm.st != S_DONE)
            return;
        setup_begin(ld);
    }
    switch (ld->phase) {
    case P_SETUP:
        while (ld->next < o->sessions && ld->in_setup < o->concurrency && arrival_due(ld)) {
            unsigned i = ld->next++;

            sess_start(ld, &ld->s[i], i, false);
        }
        if (ld->next == o->sessions)
            uv_timer_stop(&ld->arrive);
        if (ld->up + ld->failed < o->sessions)
            return;
        if (!ld->keep) {
            ld->t_setup_end = ld->t_setup_end ? ld->t_setup_end : now_ns();
            if (ld->open == 0)
                ld->phase = P_END;
            return;
        }
        if (ld->up == 0) {
            ld->t_setup_end = now_ns();
            close_all(ld);
            return;
        }
        start_run(ld);
        return;
    case P_CLOSE:
        if (ld->open == 0)
            ld->phase = P_END;
        return;
    default:
        return;
    }
}

static void sweep_cb(uv_timer_t *t)
{
    struct load *ld = t->data;
    const struct opts *o = &ld->o;
    uint64_t now = now_ns();
    uint64_t hs_limit = (uint64_t)(o->hs_timeout * NS_PER_S);

    if (ld->phase != P_END && now - ld->t0 > (uint64_t)(o->timeout * NS_PER_S)) {
        if (!ld->deadline_hit)
            fprintf(stderr, "xtp-load: --timeout %.0f s reached: ending the run\n", o->timeout);
        ld->deadline_hit = true;
        if (ld->phase < P_CLOSE)
            close_all(ld);
        if (ld->prm.st != S_NEW && ld->prm.st < S_CLOSING)
            sess_fail(&ld->prm, E_TIMEOUT, "--timeout reached");
        /* Streams that do not close in time are cut. */
        for (unsigned i = 0; i < o->sessions; i++)
            if (ld->s[i].st == S_CLOSING && now - ld->s[i].t_close > CLOSE_WAIT_NS)
                sess_close(&ld->s[i]);
    }
    for (unsigned i = 0; i <= o->sessions; i++) {
        struct sess *s = i < o->sessions ? &ld->s[i] : &ld->prm;

        if (s->st == S_NEW || s->st == S_DONE)
            continue;
        if (s->st < S_UP && now - s->t_start > hs_limit)
            sess_fail(s, E_TIMEOUT, "setup took longer than %.1f s (state %d)", o->hs_timeout,
                      s->st);
        else if (s->st == S_CLOSING && now - s->t_close > CLOSE_WAIT_NS)
            sess_close(s);
    }
    if (ld->phase == P_RUN && now >= ld->t_phase_end) {
        if (o->rate > 0) {
            for (unsigned i = 0; i < o->sessions; i++)
                if (ld->s[i].tick_init)
                    uv_timer_stop(&ld->s[i].tick);
            ld->phase = P_DRAIN;
            ld->t_phase_end = now + DRAIN_NS;
        } else {
            close_all(ld);
        }
    }
    if (ld->phase == P_SETTLE && now >= ld->t_phase_end)
        start_run(ld);
    if (ld->phase == P_DRAIN &&
        (ld->msgs_rcvd + ld->errs[E_BOUNCED] >= ld->msgs_sent || now >= ld->t_phase_end)) {
        write_mark(ld->o.done_file, "messages received", ld->msgs_rcvd);
        ld->phase = P_LINGER;
        ld->t_phase_end = now + (uint64_t)(o->settle * NS_PER_S);
    }
    if (ld->phase == P_LINGER && now >= ld->t_phase_end)
        close_all(ld);
    pump(ld);
    if (ld->phase == P_END) {
        uv_close((uv_handle_t *)&ld->sweep, NULL);
        uv_close((uv_handle_t *)&ld->arrive, NULL);
    }
}

/* ---- setup and report ------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xtp-load --port N --mode starttls|direct|plain [options]\n"
            "  --host A            IPv4 address to connect to (127.0.0.1)\n"
            "  --domain D          stream 'to', SNI and certificate name (example.test)\n"
            "  -n, --sessions N    sessions to open (100)\n"
            "  -c, --concurrency C sessions in setup at a time (10)\n"
            "  --arrival-rate R    start R sessions per second (open loop; -c still caps\n"
            "                      the sessions in setup); default: as fast as -c allows\n"
            "  --tls-lib L         the client's TLS library: mbedtls (default)%s\n"
            "  --resume            resume TLS with the ticket a first, uncounted session got\n"
            "  --psk-only          with --resume: TLS 1.3 psk_ke (no ECDHE) instead of psk_dhe_ke\n"
            "                      (openssl: psk_ke next to psk_dhe_ke)\n"
            "  --tls 1.2|1.3       only this TLS version (default: 1.2 or 1.3)\n"
            "  --group G           x25519 (default) or secp256r1: the only group offered\n"
            "  --ca FILE           verify the server's certificate against FILE (mbedtls needs\n"
            "                      it to tell resumed from full handshakes); default: none\n"
            "  --login             SASL PLAIN as PREFIX<i>/PASSWORD, bind, initial presence\n"
            "  --user-prefix P     (user)   --password P (secret)\n"
            "  --rate R            messages per second and session once all are up (0)\n"
            "  --duration S        seconds of message exchange (10)\n"
            "  --msg-size B        bytes per <message/> (200)\n"
            "  --hold S            seconds to stay idle once all are up, without --rate (0)\n"
            "  --ready-file F      written once every session is up (hold or messages)\n"
            "  --done-file F       written once the messages are drained, before the streams end\n"
            "  --settle S          stay idle S seconds after the ready file and after the done\n"
            "                      file (0), so that a profiler can be switched in between\n"
            "  --b-port N          A/B in one run: pairs (2k, 2k+1) with k odd connect to port N\n"
            "                      (the B group), the others to --port; the report gives the\n"
            "                      message latency of each group\n"
            "  --b-mode M          the B group's mode (default: --mode)\n"
            "  --latency-log F     per TLS handshake: session, start (s since the setup began),\n"
            "                      handshake latency (ms); to see when the slow ones happen\n"
            "  --port-log F        per session: index, local TCP port, group (A or B), to match\n"
            "                      a packet capture to the sessions\n"
            "  --timeout S         bound on the whole run (120)\n"
            "  --handshake-timeout S  bound on one session's setup (10)\n",
#ifdef XTP_LOAD_OPENSSL
            " or openssl"
#else
            " (openssl: not built in)"
#endif
    );
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

/* True when some session of the run speaks TLS (A or B group). */
static bool uses_tls(const struct opts *o)
{
    return o->mode != MODE_PLAIN || (o->b_port != 0 && o->b_mode != MODE_PLAIN);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){
        .host = "127.0.0.1",
        .domain = "example.test",
        .mode = MODE_STARTTLS,
        .sessions = 100,
        .concurrency = 10,
        .lib = &load_tls_mbedtls,
        .user_prefix = "user",
        .password = "secret",
        .duration = 10,
        .msg_size = 200,
        .timeout = 120,
        .hs_timeout = 10,
    };
    bool have_mode = false, have_b_mode = false;
    unsigned port = 0, b_port = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--resume") == 0) {
            o->resume = true, takes = false;
        } else if (strcmp(a, "--psk-only") == 0) {
            o->psk_only = true, takes = false;
        } else if (strcmp(a, "--login") == 0) {
            o->login = true, takes = false;
        } else if (v == NULL) {
            fprintf(stderr, "xtp-load: %s needs a value (or is unknown)\n", a);
            return -1;
        } else if (strcmp(a, "--port") == 0) {
            ok = parse_uint(v, 1, 65535, &port);
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--domain") == 0) {
            o->domain = v;
        } else if (strcmp(a, "--mode") == 0) {
            ok = false;
            for (size_t m = 0; m < ARRAY_SIZE(mode_names); m++)
                if (strcmp(v, mode_names[m]) == 0)
                    o->mode = (enum mode)m, ok = have_mode = true;
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--sessions") == 0) {
            ok = parse_uint(v, 1, 1000000, &o->sessions);
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--concurrency") == 0) {
            ok = parse_uint(v, 1, 100000, &o->concurrency);
        } else if (strcmp(a, "--tls") == 0) {
            ok = strcmp(v, "1.2") == 0 || strcmp(v, "1.3") == 0;
            o->tls = strcmp(v, "1.2") == 0 ? 12 : 13;
        } else if (strcmp(a, "--group") == 0) {
            ok = strcmp(v, "x25519") == 0 || strcmp(v, "secp256r1") == 0;
            o->secp256r1 = strcmp(v, "secp256r1") == 0;
        } else if (strcmp(a, "--tls-lib") == 0) {
            ok = strcmp(v, "mbedtls") == 0;
            o->lib = &load_tls_mbedtls;
#ifdef XTP_LOAD_OPENSSL
            if (strcmp(v, "openssl") == 0)
                o->lib = &load_tls_openssl, ok = true;
#endif
        } else if (strcmp(a, "--arrival-rate") == 0) {
            ok = parse_double(v, 0, 100000, &o->arrival_rate);
        } else if (strcmp(a, "--ca") == 0) {
            o->ca = v;
        } else if (strcmp(a, "--user-prefix") == 0) {
            o->user_prefix = v;
        } else if (strcmp(a, "--password") == 0) {
            o->password = v;
        } else if (strcmp(a, "--rate") == 0) {
            ok = parse_double(v, 0, 1000, &o->rate);
        } else if (strcmp(a, "--duration") == 0) {
            ok = parse_double(v, 0.1, 3600, &o->duration);
        } else if (strcmp(a, "--msg-size") == 0) {
            ok = parse_uint(v, 160, 4000, &o->msg_size);
        } else if (strcmp(a, "--hold") == 0) {
            ok = parse_double(v, 0, 3600, &o->hold);
        } else if (strcmp(a, "--ready-file") == 0) {
            o->ready_file = v;
        } else if (strcmp(a, "--done-file") == 0) {
            o->done_file = v;
        } else if (strcmp(a, "--settle") == 0) {
            ok = parse_double(v, 0, 60, &o->settle);
        } else if (strcmp(a, "--b-port") == 0) {
            ok = parse_uint(v, 1, 65535, &b_port);
        } else if (strcmp(a, "--b-mode") == 0) {
            ok = false;
            for (size_t m = 0; m < ARRAY_SIZE(mode_names); m++)
                if (strcmp(v, mode_names[m]) == 0)
                    o->b_mode = (enum mode)m, ok = have_b_mode = true;
        } else if (strcmp(a, "--latency-log") == 0) {
            o->latency_log = v;
        } else if (strcmp(a, "--port-log") == 0) {
            o->port_log = v;
        } else if (strcmp(a, "--timeout") == 0) {
            ok = parse_double(v, 1, 7200, &o->timeout);
        } else if (strcmp(a, "--handshake-timeout") == 0) {
            ok = parse_double(v, 0.1, 600, &o->hs_timeout);
        } else {
            fprintf(stderr, "xtp-load: unknown option %s\n", a);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "xtp-load: bad value for %s: '%s'\n", a, v);
            return -1;
        }
        if (takes)
            i++;
    }
    if (port == 0 || !have_mode) {
        fprintf(stderr, "xtp-load: --port and --mode are required\n");
        return -1;
    }
    o->port = (int)port;
    o->b_port = (int)b_port;
    if (!have_b_mode)
        o->b_mode = o->mode;
    if (have_b_mode && b_port == 0) {
        fprintf(stderr, "xtp-load: --b-mode needs --b-port\n");
        return -1;
    }
    if (b_port != 0 && (o->resume || o->sessions % 4 != 0)) {
        fprintf(stderr, "xtp-load: --b-port needs a multiple of 4 sessions, without --resume\n");
        return -1;
    }
    if (!uses_tls(o) && (o->resume || o->ca != NULL)) {
        fprintf(stderr, "xtp-load: --resume and --ca need TLS (not --mode plain)\n");
        return -1;
    }
    if (o->psk_only && !o->resume) {
        fprintf(stderr, "xtp-load: --psk-only needs --resume\n");
        return -1;
    }
    if (o->rate > 0 && (!o->login || o->sessions % 2 != 0)) {
        fprintf(stderr, "xtp-load: --rate needs --login and an even number of sessions\n");
        return -1;
    }
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
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 32) {
        fprintf(stderr, "xtp-load: %u sessions need %u descriptors; ulimit -n is %llu\n", need,
                need + 32, (unsigned long long)rl.rlim_cur);
        return -EMFILE;
    }
    return 0;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static unsigned total_errors(const struct load *ld)
{
    unsigned n = 0;

    for (size_t i = 0; i < E__COUNT; i++)
        n += ld->errs[i];
    return n;
}

static void report(struct load *ld)
{
    const struct opts *o = &ld->o;
    struct rusage ru;
    double setup_s = (double)(ld->t_setup_end - ld->t_setup0) / 1e9;
    double rate = setup_s > 0 ? ld->up / setup_s : 0;
    double cpu_s, resumed_pct;
    uint32_t s50, s90, s99, t50, t90, t99, l50, l99, m50, m90, m99, mmax, b50, b90, b99, bmax;
    unsigned errors;

    if (ld->msgs_sent > ld->msgs_rcvd + ld->errs[E_BOUNCED])
        ld->errs[E_LOST] = (unsigned)(ld->msgs_sent - ld->msgs_rcvd - ld->errs[E_BOUNCED]);
    errors = total_errors(ld);
    getrusage(RUSAGE_SELF, &ru);
    cpu_s = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    s50 = lat_pct(&ld->setup, 50), s90 = lat_pct(&ld->setup, 90), s99 = lat_pct(&ld->setup, 99);
    t50 = lat_pct(&ld->tls, 50), t90 = lat_pct(&ld->tls, 90), t99 = lat_pct(&ld->tls, 99);
    l50 = lat_pct(&ld->login, 50), l99 = lat_pct(&ld->login, 99);
    m50 = lat_pct(&ld->msg, 50), m90 = lat_pct(&ld->msg, 90), m99 = lat_pct(&ld->msg, 99);
    mmax = lat_max(&ld->msg);
    b50 = lat_pct(&ld->b_msg, 50), b90 = lat_pct(&ld->b_msg, 90), b99 = lat_pct(&ld->b_msg, 99);
    bmax = lat_max(&ld->b_msg);
    resumed_pct = ld->resumed + ld->full ? 100.0 * ld->resumed / (ld->resumed + ld->full) : 0;

    printf("xtp-load %s %s:%d domain=%s sessions=%u concurrency=%u", mode_names[o->mode], o->host,
           o->port, o->domain, o->sessions, o->concurrency);
    if (o->arrival_rate > 0)
        printf(" arrival-rate=%g/s", o->arrival_rate);
    printf("%s%s%s%s%s\n",
           o->mode == MODE_PLAIN ? "" : " tls-lib=", o->mode == MODE_PLAIN ? "" : o->lib->name,
           o->resume ? (o->psk_only ? " resume=psk_ke" : " resume=psk_dhe_ke") : "",
           o->login ? " login" : "",
           o->mode == MODE_PLAIN ? ""
           : o->secp256r1        ? " group=secp256r1"
                                 : " group=x25519");
    if (o->b_port != 0)
        printf("  A/B:      pairs 2k, 2k+1 with k even: %s port %d (A); k odd: %s port %d (B)\n",
               mode_names[o->mode], o->port, mode_names[o->b_mode], o->b_port);
    if (uses_tls(o))
        printf("  tls:      %s %s\n", ld->tls_version[0] ? ld->tls_version : "-",
               ld->cipher[0] ? ld->cipher : "-");
    if (uses_tls(o) && ld->resumed + ld->full > 0)
        printf("            %u of %u handshakes resumed (%.1f%%)\n", ld->resumed,
               ld->resumed + ld->full, resumed_pct);
    else if (uses_tls(o))
        printf("            resumed or not: unknown (%s needs --ca to tell)\n", o->lib->name);
    printf("  setup:    %u up, %u failed", ld->up, ld->failed);
    if (ld->up + ld->failed < o->sessions)
        printf(", %u never started", o->sessions - ld->up - ld->failed);
    printf(" in %.3f s = %.1f sessions/s\n", setup_s, rate);
    printf("  latency:  connect to stream ready p50 %.3f ms  p90 %.3f ms  p99 %.3f ms\n", s50 / 1e3,
           s90 / 1e3, s99 / 1e3);
    if (uses_tls(o))
        printf("            TLS handshake         p50 %.3f ms  p90 %.3f ms  p99 %.3f ms\n",
               t50 / 1e3, t90 / 1e3, t99 / 1e3);
    if (o->login)
        printf("            login (SASL, bind)    p50 %.3f ms  p99 %.3f ms\n", l50 / 1e3,
               l99 / 1e3);
    if (o->rate > 0)
        printf("  messages: %" PRIu64 " sent, %" PRIu64 " received, one-way latency p50 %u us  "
               "p90 %u us  p99 %u us  max %u us\n",
               ld->msgs_sent, ld->msgs_rcvd, m50, m90, m99, mmax);
    if (o->rate > 0 && o->b_port != 0)
        printf("            A group: %" PRIu64
               " received, p50 %u us  p90 %u us  p99 %u us  max %u us\n"
               "            B group: %" PRIu64
               " received, p50 %u us  p90 %u us  p99 %u us  max %u us\n",
               ld->msgs_rcvd - ld->b_msgs_rcvd, m50, m90, m99, mmax, ld->b_msgs_rcvd, b50, b90, b99,
               bmax);
    printf("  errors:   %u", errors);
    for (size_t i = 0; i < E__COUNT; i++)
        if (ld->errs[i])
            printf(" %s=%u", err_names[i], ld->errs[i]);
    printf("%s\n", ld->deadline_hit ? " (--timeout reached)" : "");
    printf("  own CPU:  %.3f s user+sys (%.1f%% of %.3f s wall), %.3f ms per session\n", cpu_s,
           100.0 * cpu_s / ((double)(now_ns() - ld->t0) / 1e9), (double)(now_ns() - ld->t0) / 1e9,
           ld->up ? 1e3 * cpu_s / ld->up : 0.0);
    printf("RESULT mode=%s sessions=%u up=%u failed=%u errors=%u setup_s=%.3f rate=%.1f "
           "setup_p50_us=%u setup_p90_us=%u setup_p99_us=%u tls_p50_us=%u tls_p90_us=%u "
           "tls_p99_us=%u login_p50_us=%u resumed=%u full=%u tls_version=%s cipher=%s "
           "msgs_sent=%" PRIu64 " msgs_rcvd=%" PRIu64 " msg_p50_us=%u msg_p90_us=%u "
           "msg_p99_us=%u msg_max_us=%u cpu_s=%.3f tls_lib=%s b_msgs_sent=%" PRIu64
           " b_msgs_rcvd=%" PRIu64 " b_msg_p50_us=%u b_msg_p90_us=%u b_msg_p99_us=%u "
           "b_msg_max_us=%u\n",
           mode_names[o->mode], o->sessions, ld->up, ld->failed, errors, setup_s, rate, s50, s90,
           s99, t50, t90, t99, l50, ld->resumed, ld->full,
           ld->tls_version[0] ? ld->tls_version : "none", ld->cipher[0] ? ld->cipher : "none",
           ld->msgs_sent, ld->msgs_rcvd, m50, m90, m99, mmax, cpu_s,
           uses_tls(o) ? o->lib->name : "none", ld->b_msgs_sent, ld->b_msgs_rcvd, b50, b90, b99,
           bmax);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct load load;
    struct load *ld = &load;
    const struct opts *o = &ld->o;

    if (parse_args(argc, argv, &ld->o) != 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (raise_nofile(o->sessions + 1) != 0)
        return 2;
    ld->addr.sin_family = AF_INET;
    ld->addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &ld->addr.sin_addr) != 1) {
        fprintf(stderr, "xtp-load: --host must be an IPv4 address: %s\n", o->host);
        return 2;
    }
    ld->b_addr = ld->addr;
    ld->b_addr.sin_port = htons((uint16_t)o->b_port);
    ld->s = calloc(o->sessions, sizeof(*ld->s));
    if (ld->s == NULL) {
        fprintf(stderr, "xtp-load: out of memory\n");
        return 2;
    }
    ld->keep = o->login || o->rate > 0 || o->hold > 0;
    if (o->latency_log != NULL && (ld->latency_log = fopen(o->latency_log, "w")) == NULL) {
        fprintf(stderr, "xtp-load: %s: %s\n", o->latency_log, strerror(errno));
        return 2;
    }
    if (o->port_log != NULL && (ld->port_log = fopen(o->port_log, "w")) == NULL) {
        fprintf(stderr, "xtp-load: %s: %s\n", o->port_log, strerror(errno));
        return 2;
    }
    srand((unsigned)now_ns());

    if (uses_tls(o)) {
        struct load_tls_opts to = {
            .domain = o->domain,
            .ca = o->ca,
            .version = o->tls,
            .secp256r1 = o->secp256r1,
            /* One configuration serves both groups: ALPN when either is Direct TLS. */
            .alpn = o->mode == MODE_DIRECT || (o->b_port != 0 && o->b_mode == MODE_DIRECT),
            .tickets = o->resume,
            .psk_only = o->psk_only,
        };
        char err[160];

        ld->tls_conf = o->lib->conf_new(&to, err, sizeof(err));
        if (ld->tls_conf == NULL) {
            fprintf(stderr, "xtp-load: TLS setup (%s): %s\n", o->lib->name, err);
            return 2;
        }
    }

    ld->loop = uv_default_loop();
    ld->t0 = now_ns();
    ld->sweep.data = ld;
    uv_timer_init(ld->loop, &ld->sweep);
    uv_timer_start(&ld->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    ld->arrive.data = ld;
    uv_timer_init(ld->loop, &ld->arrive);
    if (o->resume) {
        ld->phase = P_PRIME;
        sess_start(ld, &ld->prm, UINT_MAX, true);
    } else {
        setup_begin(ld);
        pump(ld);
    }
    uv_run(ld->loop, UV_RUN_DEFAULT);
    if (ld->tls_conf != NULL)
        o->lib->conf_free(ld->tls_conf);
    if (ld->latency_log != NULL)
        fclose(ld->latency_log);
    if (ld->port_log != NULL)
        fclose(ld->port_log);
    if (ld->t_setup_end == 0)
        ld->t_setup_end = now_ns();
    report(ld);
    if (ld->fatal && ld->up == 0)
        return 2;
    return total_errors(ld) == 0 && ld->up == o->sessions ? 0 : 1;
}
