/* conn.c: sessions from accept to the last close callback (state diagrams in conn.h): the
 * sockets, TLS plumbing and the one close path for every kind, and the whole c2s-in protocol.
 * The proxy answers the pre-TLS stream itself (RFC 6120 §5, RFC 7590), runs TLS, and only then
 * opens the plaintext loopback stream to the backend; relay.c moves the bytes. s2s_in.c and
 * s2s_out.c take over where the kinds differ. */
#include "conn.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cfg.h"
#include "conn-t.h"
#include "err.h"
#include "features.h"
#include "json.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "relay.h"
#include "s2s.h"
#include "snap.h"
#include "status_cli.h"
#include "tls.h"
#include "worker.h"
#include "xmpp_in.h"
#include "xmpp_out.h"

#define LINGER_MS 2000 /* how long a closing session may take to flush and see the peer's FIN */

static const char *const state_names[] = {
    "NEW",          "PLAIN_STREAM", "TLS_HANDSHAKE", "PEER_STREAM", "S2S_AUTH",   "BACKEND_CONNECT",
    "S2S_DIALBACK", "OUT_BACKEND",  "OUT_RESOLVE",   "OUT_CONNECT", "OUT_STREAM", "OUT_AUTH",
    "RELAY",        "CLOSING",
};

#define XX(name, token) token,
static const char *const end_names[] = {CONN_END_MAP(XX)};
#undef XX

/* The backend's <stream:features/> is the one element whose children we need. */
static const char *const features_name[] = {XMPP_NS_STREAMS "|features", NULL};

static int peer_stream_open(void *arg, const struct xmpp_hdr *h);
static int peer_element(void *arg, const struct xmpp_elem *e);
static int peer_stream_close(void *arg, uint64_t end);
static int back_stream_open(void *arg, const struct xmpp_hdr *h);
static int back_element(void *arg, const struct xmpp_elem *e);
static int back_stream_close(void *arg, uint64_t end);

static const struct xmpp_in_ops peer_ops = {peer_stream_open, peer_element, peer_stream_close};
static const struct xmpp_in_ops back_ops = {back_stream_open, back_element, back_stream_close};

const char *conn_state_name(enum conn_state s)
{
    return s <= CONN_CLOSING ? state_names[s] : "?";
}

const char *conn_end_str(enum conn_end e)
{
    return e < CONN_END__COUNT ? end_names[e] : "?";
}

void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(level, "conn=%llu listener=%s peer=%s state=%s %s", (unsigned long long)c->id,
            c->lst->name, c->peer_addr, conn_state_name(c->state), msg);
}

/* Says what conn_close()'s line should add to the end reason: every session ends with one log
 * line, so the code that finds the cause records it here instead of logging it. */
void conn_set_detail(struct conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
    /* The close line quotes it: detail="..." must stay one field for log parsers. */
    for (char *p = c->detail; *p != '\0'; p++)
        if (*p == '"')
            *p = '\'';
}

void conn_set_state(struct conn *c, enum conn_state next)
{
    /* Forward only; s2s-out may go back to OUT_CONNECT to try the next remote address. */
    XTP_ASSERT(next > c->state || (c->lst->kind == CFG_KIND_S2S_OUT && next == CONN_OUT_CONNECT &&
                                   c->state > CONN_OUT_CONNECT && c->state < CONN_RELAY));
    conn_log(c, LOG_DEBUG, "-> %s", conn_state_name(next));
    c->state = next;
}

/* s2s listeners ask for the peer's certificate and speak ALPN xmpp-server. */
static enum tls_role tls_role(const struct conn *c)
{
    return c->lst->kind == CFG_KIND_S2S ? TLS_ROLE_S2S : TLS_ROLE_C2S;
}

static const char *content_ns(const struct conn *c)
{
    return c->lst->kind == CFG_KIND_C2S ? XMPP_NS_CLIENT : XMPP_NS_SERVER;
}

/* ---- closing: one way out ---------------------------------------------------------------- */

void conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->live_handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->w->live--;
    __atomic_sub_fetch(c->w->total_live, 1, __ATOMIC_RELAXED);
    free(c->s2s);
    tls_free(c->tls);
    xmpp_in_free(c->peer.xin);
    xmpp_in_free(c->back.xin);
    bytes_cleanup(&c->peer.in);
    bytes_cleanup(&c->back.in);
    bytes_cleanup(&c->back_hdr);
    snap_unref(c->snap);
    free(c);
}

static void close_handle(struct conn *c, uv_handle_t *h)
{
    if (h->data == c && !uv_is_closing(h))
        uv_close(h, conn_handle_closed);
    /* The timer outlives the sockets only to bound the linger. */
    if ((c->peer.tcp.data != c || uv_is_closing((uv_handle_t *)&c->peer.tcp)) &&
        (c->back.tcp.data != c || uv_is_closing((uv_handle_t *)&c->back.tcp)) &&
        !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void linger_cb(uv_timer_t *t)
{
    struct conn *c = t->data;

    close_handle(c, (uv_handle_t *)&c->peer.tcp);
    close_handle(c, (uv_handle_t *)&c->back.tcp);
}

/* After our FIN, read and drop whatever the peer still sends until its FIN: closing a socket
 * with unread input makes the kernel send RST, which can destroy our stream error in flight. */
static void drain_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;

    if (nread < 0)
        close_handle(c, (uv_handle_t *)st);
}

static void peer_shut_cb(uv_shutdown_t *req, int status)
{
    struct conn *c = req->handle->data;

    if (status < 0 || c->peer.eof)
        close_handle(c, (uv_handle_t *)req->handle);
}

static void back_shut_cb(uv_shutdown_t *req, int status)
{
    close_handle(req->handle->data, (uv_handle_t *)req->handle);
}

void conn_close(struct conn *c, enum conn_end why, int err)
{
    enum conn_state prev = c->state;
    char errtext[512] = "";
    uint64_t ms;

    if (prev == CONN_CLOSING)
        return;
    if (c->s2s != NULL)
        s2s_close(c);
    c->end = why;
    c->end_err = err;
    c->state = CONN_CLOSING;
    if (c->lst_idx >= 0) {
        metrics_session_close(c->w->metrics, (size_t)c->lst_idx, why);
        /* A TLS session that never came up: count why (xtp_tls_handshake_failures_total). */
        if (c->tls != NULL && !c->tls_up)
            metrics_tls_failure(c->w->metrics, why == CONN_END_TLS || why == CONN_END_REMOTE ? 0
                                               : why == CONN_END_TIMEOUT                     ? 1
                                               : why == CONN_END_PEER_EOF || why == CONN_END_PEER_IO
                                                   ? 2
                                                   : 3);
    }
    ms = uv_now(c->w->loop) - c->t_start;
    if (err != 0)
        snprintf(errtext, sizeof(errtext), " error=%s (%s%s%s)", xtp_err_name(err),
                 xtp_strerror(err), c->tls && *tls_last_error(c->tls) ? ": " : "",
                 c->tls ? tls_last_error(c->tls) : "");
    conn_log(c,
             why == CONN_END_NOMEM                                                 ? LOG_ERROR
             : why >= CONN_END_BACKEND_CONNECT && why <= CONN_END_BACKEND_PROTOCOL ? LOG_WARN
                                                                                   : LOG_INFO,
             "close reason=%s%s%s%s%s from=%s domain=%s%s%s%s%s tls=%s cipher=%s bytes_in=%llu "
             "bytes_out=%llu duration_ms=%llu",
             conn_end_str(why), errtext, *c->detail ? " detail=\"" : "", c->detail,
             *c->detail ? "\"" : "", conn_state_name(prev), c->dom ? c->dom->name : "-",
             c->s2s && c->s2s->remote[0] ? " remote=" : "", c->s2s ? c->s2s->remote : "",
             c->s2s ? " auth=" : "", c->s2s ? s2s_auth_name(c->s2s->auth) : "",
             c->tls ? tls_version(c->tls) : "none", c->tls ? tls_cipher(c->tls) : "none",
             (unsigned long long)c->peer.rx, (unsigned long long)c->peer.tx,
             (unsigned long long)ms);

    /* RFC 8446 §6.1: say goodbye properly so the peer can tell truncation from the end. */
    /* Not after a TLS failure: close_notify would tell the peer the stream ended cleanly. */
    if (c->tls != NULL && c->tls_up && !c->peer.failed && why != CONN_END_TLS)
        tls_close_notify(c->tls);
    relay_uncork(c); /* what was gathered, close_notify included, goes before the FIN */

    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, linger_cb, LINGER_MS, 0);

    if (c->peer.tcp.data == c) {
        if (c->peer.reading)
            uv_read_stop((uv_stream_t *)&c->peer.tcp);
        c->peer.reading = false;
        c->peer.shut = true;
        if (!c->peer.connected || c->peer.failed ||
            uv_shutdown(&c->peer_shut, (uv_stream_t *)&c->peer.tcp, peer_shut_cb) != 0 ||
            (!c->peer.eof &&
             uv_read_start((uv_stream_t *)&c->peer.tcp, conn_alloc_cb, drain_read_cb) != 0))
            close_handle(c, (uv_handle_t *)&c->peer.tcp);
    }

    if (c->back.tcp.data == c) {
        if (c->back.reading)
            uv_read_stop((uv_stream_t *)&c->back.tcp);
        c->back.reading = false;
        c->back.shut = true;
        if (!c->back.connected || c->back.failed ||
            uv_shutdown(&c->back_shut, (uv_stream_t *)&c->back.tcp, back_shut_cb) != 0)
            close_handle(c, (uv_handle_t *)&c->back.tcp);
    }
}

/* Sends <stream:error/> to the peer, preceded by our own stream header when the peer has none
 * on this stream (RFC 6120 §4.9.1.2), then closes. cond_err picks the condition, log_err is
 * what the close line reports. Only in states where the peer speaks XML with us. */
void conn_fail_stream(struct conn *c, enum conn_end why, int cond_err, int log_err)
{
    struct bytes out = BYTES_INIT;
    char id[32];

    if (c->state == CONN_CLOSING)
        return;
    /* s2s-out: the backend hears why its stream ends, in the terms of its own stream. */
    if (c->lst->kind == CFG_KIND_S2S_OUT && c->s2s != NULL && c->s2s->back_answered &&
        xmpp_out_error(&out, xmpp_out_condition(cond_err), NULL) == 0)
        relay_to_backend(c, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
    /* The peer speaks XML with us: the stream is plaintext or its TLS is up. */
    if (c->state != CONN_NEW && c->state != CONN_TLS_HANDSHAKE && c->peer.connected &&
        (c->tls == NULL || c->tls_up)) {
        if (!c->peer_hdr_sent && xmpp_out_stream_id(id, sizeof(id)) == 0)
            xmpp_out_header(&out, content_ns(c), c->dom ? c->dom->name : NULL, NULL, id, "1.0",
                            NULL);
        if (xmpp_out_error(&out, xmpp_out_condition(cond_err), NULL) == 0)
            relay_to_peer(c, bytes_data(&out), bytes_len(&out));
        bytes_cleanup(&out);
    }
    conn_close(c, why, log_err);
}

static void fail_stream(struct conn *c, enum conn_end why, int err)
{
    conn_fail_stream(c, why, err, err);
}

static void fail_later_cb(uv_timer_t *t)
{
    struct conn *c = t->data;

    if (c->peer.failed && c->lst->kind == CFG_KIND_S2S_OUT &&
        s2s_out_remote_lost(c, "write failed", c->peer.failed))
        return; /* s2s_out.c tries the next address */
    if (c->peer.failed)
        conn_close(c, CONN_END_PEER_IO, c->peer.failed);
    else
        conn_close(c, CONN_END_BACKEND_IO, c->back.failed);
}

void conn_fail_later(struct conn *c, struct side *s, int err)
{
    if (!s->failed)
        s->failed = err;
    if (c->state == CONN_CLOSING || c->fail_pending)
        return;
    c->fail_pending = true;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, fail_later_cb, 0, 0);
}

/* ---- GET /status ---------------------------------------------------------------------------- */

void conn_status_sessions(struct worker *w, struct json *j)
{
    uint64_t now = uv_now(w->loop);

    for (const struct conn *c = w->conns; c != NULL; c = c->next) {
        const struct s2s *s = c->s2s;
        struct status_session ss = {
            .id = c->id,
            .listener = c->lst->name,
            .kind = cfg_kind_name(c->lst->kind),
            /* The Internet side: the peer, or on s2s-out the remote (the peer side). */
            .peer = c->peer_addr,
            .domain = c->dom ? c->dom->name : NULL,
            .remote_domain = s && s->remote[0] ? s->remote : NULL,
            .tls_version = c->tls && c->tls_up ? tls_version(c->tls) : NULL,
            .cipher = c->tls && c->tls_up ? tls_cipher(c->tls) : NULL,
            .peer_auth = s ? s2s_auth_name(s->auth) : "none",
            .bytes_in = c->peer.rx,
            .bytes_out = c->peer.tx,
            .age_s = (now - c->t_start) / 1000,
        };
        char sans[sizeof(s->cert_sans)], *save = NULL, *tok;
        const char *list[16];
        size_t n = 0;

        if (s != NULL && s->cert_fp[0] != '\0') {
            snprintf(sans, sizeof(sans), "%s", s->cert_sans);
            for (tok = strtok_r(sans, ",", &save); tok != NULL && n < 16;
                 tok = strtok_r(NULL, ",", &save))
                list[n++] = tok + strspn(tok, " ");
            ss.has_peer_cert = true;
            ss.cert_subject = s->cert_subject;
            ss.cert_sans = list;
            ss.ncert_sans = n;
            ss.cert_sha256 = s->cert_fp;
            ss.cert_not_after = s->cert_not_after;
        }
        status_cli_session(j, &ss);
    }
}

int conn_status_json(struct worker *w, struct bytes *out, const struct bytes *more)
{
    struct json j;

    json_init(&j, out);
    /* The process first: an operator sees at once when it still runs as root (issue 4). */
    json_object_begin(&j);
    json_key(&j, "process");
    json_object_begin(&j);
    json_key(&j, "pid");
    json_int(&j, (int64_t)getpid());
    json_key(&j, "uid");
    json_int(&j, (int64_t)geteuid());
    json_key(&j, "running_as_root");
    json_bool(&j, geteuid() == 0);
    json_key(&j, "stopping");
    json_bool(&j, w->stopping);
    json_key(&j, "workers");
    json_int(&j, (int64_t)w->nworkers);
    json_object_end(&j);
    json_key(&j, "sessions");
    json_array_begin(&j);
    conn_status_sessions(w, &j);
    json_array_end(&j);
    json_object_end(&j);
    if (json_finish(&j) != 0)
        return -ENOMEM;
    /* Other workers' sessions: comma-separated objects, spliced in before the final "]}". */
    if (more != NULL && bytes_len(more) > 0) {
        size_t len = bytes_len(out);
        bool empty = len >= 4 && memcmp((const char *)bytes_data(out) + len - 3, "[]}", 3) == 0;
        struct bytes tail = BYTES_INIT;

        if (bytes_append(&tail, "]}", 2) != 0)
            return -ENOMEM;
        out->len = len - 2;
        if ((!empty && bytes_append(out, ",", 1) != 0) ||
            bytes_append(out, bytes_data(more), bytes_len(more)) != 0 ||
            bytes_append(out, bytes_data(&tail), 2) != 0) {
            bytes_cleanup(&tail);
            return -ENOMEM;
        }
        bytes_cleanup(&tail);
    }
    return 0;
}

void conn_count_live(struct worker *w)
{
    for (const struct conn *c = w->conns; c != NULL; c = c->next)
        if (c->lst_idx >= 0 && c->state != CONN_CLOSING)
            metrics_session_open(w->metrics, (size_t)c->lst_idx);
}

/* ---- idle sessions ------------------------------------------------------------------------- */

unsigned conn_trim_idle(struct worker *w, uint64_t idle_ms)
{
    uint64_t now = uv_now(w->loop);
    unsigned n = 0;
    size_t tls_bytes = 0;

    for (struct conn *c = w->conns; c != NULL; c = c->next) {
        if (c->trimmed || c->state != CONN_RELAY || now - c->t_active < idle_ms)
            continue;
        c->trimmed = true;
        /* A parser with a unit pending (a stanza cut by the network) keeps its state. */
        if (c->peer.xin != NULL)
            xmpp_in_trim(c->peer.xin);
        if (c->back.xin != NULL)
            xmpp_in_trim(c->back.xin);
        if (c->tls != NULL && c->tls_up)
            tls_bytes += tls_trim(c->tls);
        n++;
    }
    if (n > 0) {
        /* The parsers' memory is now free holes between live sessions' blocks; only this
         * hands their whole pages back to the kernel. */
        malloc_trim(0);
        log_msg(LOG_DEBUG, "worker %u: trimmed %u idle sessions (%zu KB of TLS buffers)", w->index,
                n, tls_bytes / 1024);
    }
    return n;
}

static void sweep_cb(uv_timer_t *t)
{
    conn_trim_idle(t->data, CONN_IDLE_TRIM_MS);
}

void conn_sweep_start(struct worker *w)
{
    uv_timer_init(w->loop, &w->sweep);
    w->sweep.data = w;
    uv_timer_start(&w->sweep, sweep_cb, CONN_SWEEP_MS, CONN_SWEEP_MS);
}

void conn_sweep_stop(struct worker *w)
{
    uv_handle_t *h = (uv_handle_t *)&w->sweep;

    if (h->type == UV_TIMER && !uv_is_closing(h))
        uv_close(h, NULL);
}

void conn_close_all(struct worker *w)
{
    for (struct conn *c = w->conns; c != NULL; c = c->next)
        fail_stream(c, CONN_END_SHUTDOWN, XTP_ESHUTDOWN);
}

/* ---- stream headers (RFC 6120 §4.7, §4.9.3) ------------------------------------------------ */

/* Checks a stream header from the peer; sets *dom to the served domain it names. */
static int check_header(const struct conn *c, const struct xmpp_hdr *h,
                        const struct cfg_domain **dom)
{
    int err = xmpp_in_check_ns(h, content_ns(c));

    *dom = NULL;
    if (err != 0)
        return err;
    if (h->to != NULL)
        *dom = cfg_domain_find(c->snap->cfg, h->to);
    if (*dom == NULL)
        return XTP_EHOST;
    /* A pre-1.0 stream has no features, so it cannot negotiate STARTTLS. Over direct TLS the
     * channel is already secure and jabberd 1.4-era clients are welcome (XEP-0368). */
    if (!xmpp_in_version_ok(h) && c->lst->tls != CFG_TLS_DIRECT)
        return XTP_EVERSION;
    return 0;
}

/* ---- TLS --------------------------------------------------------------------------------- */

int conn_tls_send_cb(void *arg, const void *data, size_t len)
{
    struct conn *c = arg;

    return relay_write(c, &c->peer, data, len);
}

static void peer_input_failed(struct conn *c, int err)
{
    if (c->state == CONN_CLOSING)
        return;
    if (err == -ENOMEM)
        conn_close(c, CONN_END_NOMEM, err);
    else
        fail_stream(c, CONN_END_PEER_PROTOCOL, err);
}

static void handshake_step(struct conn *c)
{
    int rc = tls_handshake(c->tls);

    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        if (c->lst->kind == CFG_KIND_S2S_OUT && !c->peer.failed && s2s_out_tls_failed(c))
            return; /* s2s_out.c tries again */
        if (c->lst->kind == CFG_KIND_S2S_OUT) {
            char what[128];

            snprintf(what, sizeof(what), "TLS handshake: %s", tls_last_error(c->tls));
            if (s2s_out_remote_lost(
                    c, c->peer.failed ? "connection failed in the TLS handshake" : what,
                    c->peer.failed ? c->peer.failed : rc))
                return; /* s2s_out.c tries the next address */
        }
        if (c->peer.failed) /* the peer hung up: not a TLS failure */
            conn_close(c, c->lst->kind == CFG_KIND_S2S_OUT ? CONN_END_REMOTE : CONN_END_PEER_IO,
                       c->peer.failed);
        else
            conn_close(c, c->lst->kind == CFG_KIND_S2S_OUT ? CONN_END_REMOTE : CONN_END_TLS, rc);
        return;
    }
    c->tls_up = true;
    metrics_tls_handshake(c->w->metrics, tls_version(c->tls), tls_cipher(c->tls));
    if (c->lst->kind == CFG_KIND_S2S_OUT) {
        s2s_out_tls_done(c);
        return;
    }
    /* RFC 6120 §5.4.3.3: a fresh stream starts over TLS; nothing from before survives. */
    bytes_cleanup(&c->peer.in);
    if (xmpp_in_reset(c->peer.xin) != 0) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    c->peer.fwd = xmpp_in_offset(c->peer.xin);
    c->peer_hdr_sent = false;
    conn_set_state(c, CONN_PEER_STREAM);
    conn_log(c, LOG_DEBUG, "TLS established: %s %s resumed=%s sni=%s alpn=%s", tls_version(c->tls),
             tls_cipher(c->tls), tls_resumed(c->tls) ? "yes" : "no",
             tls_sni(c->tls) ? tls_sni(c->tls) : "-", tls_alpn(c->tls) ? tls_alpn(c->tls) : "-");
}

void conn_pump_peer(struct conn *c)
{
    int n, err;

    if (c->pumping)
        return;
    c->pumping = true;
    while (c->tls_up && c->state != CONN_CLOSING && !relay_peer_blocked(c)) {
        n = tls_read(c->tls, c->w->pbuf, sizeof(c->w->pbuf));
        if (n == -EAGAIN)
            break;
        if (n == XTP_ECLOSED) {
            conn_close(c, c->peer.stream_closed ? CONN_END_DONE : CONN_END_PEER_EOF, 0);
            break;
        }
        if (n < 0) {
            conn_close(c, c->peer.failed ? CONN_END_PEER_IO : CONN_END_TLS,
                       c->peer.failed ? c->peer.failed : n);
            break;
        }
        err = relay_input(c, &c->peer, c->w->pbuf, (size_t)n);
        if (err < 0) {
            peer_input_failed(c, err);
            break;
        }
    }
    c->pumping = false;
}

/* ---- sockets ------------------------------------------------------------------------------ */

void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;

    /* Reads are handled before the next one starts, so the loop's buffer serves them all. */
    *buf = uv_buf_init((char *)c->w->rbuf, sizeof(c->w->rbuf));
}

static void peer_data(struct conn *c, const uint8_t *data, size_t n);
static void addr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen, char *full,
                      size_t fulllen);

/* listeners with proxy_protocol: true. The balancer's PROXY header comes first: take the
 * client's address from it (logs, /status) and pass on what follows. Anything that is not a
 * valid header closes the connection: a client must not reach such a listener directly. */
static void proxy_header(struct conn *c, const uint8_t *data, size_t n)
{
    struct proxy_proto pp;
    const uint8_t *p = data;
    size_t len = n;
    uint8_t *rest;
    int used;

    if (bytes_len(&c->peer.in) > 0 || n < PROXY_PROTO_MAX) {
        if (bytes_append(&c->peer.in, data, n) != 0) {
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return;
        }
        p = bytes_data(&c->peer.in);
        len = bytes_len(&c->peer.in);
    }
    used = proxy_proto_parse(p, len, &pp);
    if (used == 0 && len < PROXY_PROTO_MAX)
        return; /* more to come (the handshake timeout bounds the wait) */
    if (used <= 0) {
        conn_set_detail(c, "no valid PROXY protocol header (proxy_protocol: true)");
        conn_close(c, CONN_END_PEER_PROTOCOL, XTP_EBADFORMAT);
        return;
    }
    c->pp_wait = false;
    if (pp.has_src) {
        char was[64];

        snprintf(was, sizeof(was), "%s", c->peer_addr);
        addr_text(&pp.src, c->peer_ip, sizeof(c->peer_ip), c->peer_addr, sizeof(c->peer_addr));
        conn_log(c, LOG_DEBUG, "PROXY header from %s", was);
    }
    len -= (size_t)used;
    rest = len > 0 ? malloc(len) : NULL;
    if (len > 0 && rest == NULL) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    if (len > 0)
        memcpy(rest, p + used, len);
    bytes_cleanup(&c->peer.in);
    if (len > 0)
        peer_data(c, rest, len);
    free(rest);
}

void conn_peer_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        c->peer.eof = true;
        if (c->lst->kind == CFG_KIND_S2S_OUT &&
            s2s_out_remote_lost(c, nread == UV_EOF ? "closed the connection" : "connection failed",
                                nread == UV_EOF ? 0 : (int)nread))
            return; /* s2s_out.c tries the next address */
        if (nread != UV_EOF)
            conn_close(c, CONN_END_PEER_IO, (int)nread);
        else
            conn_close(c, c->peer.stream_closed ? CONN_END_DONE : CONN_END_PEER_EOF, 0);
        return;
    }
    c->peer.rx += (uint64_t)nread;
    c->t_active = uv_now(c->w->loop);
    c->trimmed = false;
    metrics_bytes(c->w->metrics, METRICS_FROM_PEER, (uint64_t)nread);
    if (c->state == CONN_CLOSING)
        return;
    if (c->pp_wait)
        proxy_header(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        peer_data(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void peer_bytes(struct conn *c, const uint8_t *data, size_t n);

/* Peer input, with what it makes us send to the peer gathered into one write (relay_cork).
 * Not for s2s-out: a failed handshake there moves the session to a new socket. */
static void peer_data(struct conn *c, const uint8_t *data, size_t n)
{
    if (c->lst->kind == CFG_KIND_S2S_OUT) {
        peer_bytes(c, data, n);
        return;
    }
    relay_cork(c);
    peer_bytes(c, data, n);
    relay_uncork(c);
}

static void peer_bytes(struct conn *c, const uint8_t *data, size_t n)
{
    int err;

    if (c->tls == NULL && c->state == CONN_TLS_HANDSHAKE && c->lst->tls == CFG_TLS_DIRECT) {
        c->tls = tls_new(c->snap->tls, tls_role(c), NULL, conn_tls_send_cb, c);
        if (c->tls == NULL) {
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return;
        }
    }
    if (c->tls == NULL) { /* before STARTTLS (or a plaintext s2s-out stream) */
        err = relay_input(c, &c->peer, data, n);
        if (err < 0)
            peer_input_failed(c, err);
        return;
    }
    tls_feed(c->tls, data, n);
    if (!c->tls_up)
        handshake_step(c);
    conn_pump_peer(c);
    /* The session may have ended inside; c->tls lives until the last close callback. */
    if (tls_feed_end(c->tls) != 0)
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
}

void conn_start_tls(struct conn *c, struct tls *t)
{
    c->tls = t;
    handshake_step(c); /* a client speaks first */
}

void conn_back_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    int err;

    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->back.stream_closed)
            conn_close(c, CONN_END_DONE, 0);
        else if (nread == UV_EOF)
            fail_stream(c, CONN_END_BACKEND_EOF, XTP_EBACKEND); /* jabberd2 died or closed */
        else
            conn_fail_stream(c, CONN_END_BACKEND_IO, XTP_EBACKEND, (int)nread);
        return;
    }
    c->back.rx += (uint64_t)nread;
    c->t_active = uv_now(c->w->loop);
    c->trimmed = false;
    metrics_bytes(c->w->metrics, METRICS_FROM_BACKEND, (uint64_t)nread);
    err = relay_input(c, &c->back, (const uint8_t *)buf->base, (size_t)nread);
    if (err < 0 && c->state != CONN_CLOSING) {
        conn_set_detail(c, "the backend sent what we cannot relay");
        conn_fail_stream(c, err == -ENOMEM ? CONN_END_NOMEM : CONN_END_BACKEND_PROTOCOL,
                         -ENOMEM == err ? err : XTP_EBACKEND, err);
        return;
    }
    /* The backend ended its stream and we relayed </stream:stream>: we are done. */
    if (c->back.stream_closed)
        conn_close(c, CONN_END_DONE, 0);
}

static void timeout_cb(uv_timer_t *t);

static void connect_cb(uv_connect_t *req, int status)
{
    struct conn *c = req->handle->data;
    int err;

    if (status == UV_ECANCELED || c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_set_detail(c, "backend %s", c->back_text);
        conn_fail_stream(c, CONN_END_BACKEND_CONNECT, XTP_EBACKEND, status);
        return;
    }
    c->back.connected = true;
    uv_tcp_nodelay(&c->back.tcp, 1);
    if (c->lst->kind == CFG_KIND_S2S) {
        uv_timer_stop(&c->timer);
        s2s_in_backend_connected(c);
        return;
    }
    c->back.xin = xmpp_in_new(&back_ops, c, c->snap->cfg->max_stanza, features_name);
    if (c->back.xin == NULL) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    /* The handshake timer runs on until the backend's <stream:features/> (or its header, for
     * a pre-1.0 stream): a backend that accepts and then says nothing must not hold the client
     * for ever. */
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, timeout_cb, c->snap->cfg->handshake_timeout_ms, 0);
    conn_set_state(c, CONN_RELAY);
    relay_to_backend(c, bytes_data(&c->back_hdr), bytes_len(&c->back_hdr));
    bytes_cleanup(&c->back_hdr);
    conn_log(c, LOG_INFO, "open domain=%s tls=%s cipher=%s resumed=%s sni=%s alpn=%s backend=%s",
             c->dom->name, tls_version(c->tls), tls_cipher(c->tls),
             tls_resumed(c->tls) ? "yes" : "no", tls_sni(c->tls) ? tls_sni(c->tls) : "-",
             tls_alpn(c->tls) ? tls_alpn(c->tls) : "-", c->dom->backend_c2s.text);

    /* What the peer sent after its header while we connected goes first, then the rest. */
    err = relay_input(c, &c->peer, NULL, 0);
    if (err < 0) {
        peer_input_failed(c, err);
        return;
    }
    relay_update_reading(c);
    conn_pump_peer(c);
}

void conn_start_backend(struct conn *c, const struct sockaddr *addr, const char *text)
{
    int r;

    c->back_text = text;
    conn_set_state(c, CONN_BACKEND_CONNECT);
    relay_update_reading(c); /* peer input waits until the backend stream is open */
    r = uv_tcp_init(c->w->loop, &c->back.tcp);
    if (r < 0) {
        conn_fail_stream(c, CONN_END_BACKEND_CONNECT, XTP_EBACKEND, r);
        return;
    }
    c->back.tcp.data = c;
    c->live_handles++;
    r = uv_tcp_connect(&c->connect_req, &c->back.tcp, addr, connect_cb);
    if (r < 0) {
        conn_set_detail(c, "backend %s", text);
        conn_fail_stream(c, CONN_END_BACKEND_CONNECT, XTP_EBACKEND, r);
    }
}

/* ---- the peer's stream --------------------------------------------------------------------- */

static int peer_stream_open(void *arg, const struct xmpp_hdr *h)
{
    struct conn *c = arg;
    const struct cfg_domain *dom;
    struct bytes out = BYTES_INIT;
    char id[32];
    int err = check_header(c, h, &dom);

    if (c->state == CONN_PLAIN_STREAM) {
        if (err != 0) {
            fail_stream(c, CONN_END_PEER_PROTOCOL, err);
            return -ECANCELED;
        }
        c->dom = dom;
        relay_skip(&c->peer, h->end);
        /* RFC 6120 §5.3.1: TLS is mandatory here, so it is the only feature we offer. */
        if (xmpp_out_stream_id(id, sizeof(id)) != 0 ||
            xmpp_out_header(&out, content_ns(c), dom->name, NULL, id, "1.0", NULL) != 0 ||
            xmpp_out_starttls_features(&out) != 0) {
            bytes_cleanup(&out);
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return -ECANCELED;
        }
        relay_to_peer(c, bytes_data(&out), bytes_len(&out));
        bytes_cleanup(&out);
        c->peer_hdr_sent = true;
        return 0;
    }

    /* Over TLS: the first stream, or a restart after SASL <success/> (RFC 6120 §6.4.6). */
    c->peer_hdr_sent = false;
    if (err == 0 && c->dom != NULL && dom != c->dom)
        err = XTP_EHOST; /* the same domain as before STARTTLS or before the restart */
    if (err == 0 && tls_sni(c->tls) != NULL && strcasecmp(tls_sni(c->tls), dom->name) != 0)
        err = XTP_EHOST; /* the certificate we showed was for another domain */
    if (err != 0) {
        fail_stream(c, CONN_END_PEER_PROTOCOL, err);
        return -ECANCELED;
    }
    c->dom = dom;
    relay_skip(&c->peer, h->end); /* the backend gets a header we write, not the peer's bytes */
    if (c->lst->kind == CFG_KIND_S2S)
        return s2s_in_stream_open(c, h);
    if (xmpp_out_header(&out, content_ns(c), h->from, dom->name, NULL, h->version, h->lang) != 0) {
        bytes_cleanup(&out);
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return -ECANCELED;
    }
    if (c->state == CONN_PEER_STREAM) {
        bytes_cleanup(&c->back_hdr);
        c->back_hdr = out;
        conn_start_backend(c, (const struct sockaddr *)&dom->backend_c2s.ss, dom->backend_c2s.text);
        return c->state == CONN_CLOSING ? -ECANCELED : 0;
    }
    relay_to_backend(c, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
    return 0;
}

static int peer_element(void *arg, const struct xmpp_elem *e)
{
    struct conn *c = arg;
    struct bytes out = BYTES_INIT;

    switch (c->state) {
    case CONN_PLAIN_STREAM:
        /* RFC 6120 §5.3.1: with TLS required, nothing but <starttls/> is acceptable. */
        if (strcmp(e->name, XMPP_NS_TLS "|starttls") != 0) {
            conn_set_detail(c, "<%s> before TLS", e->name);
            fail_stream(c, CONN_END_PEER_PROTOCOL, XTP_EPOLICY);
            return -ECANCELED;
        }
        relay_skip(&c->peer, e->end);
        if (xmpp_out_proceed(&out) != 0) {
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return -ECANCELED;
        }
        relay_to_peer(c, bytes_data(&out), bytes_len(&out));
        bytes_cleanup(&out);
        c->tls = tls_new(c->snap->tls, tls_role(c), c->dom->name, conn_tls_send_cb, c);
        if (c->tls == NULL) {
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return -ECANCELED;
        }
        conn_set_state(c, CONN_TLS_HANDSHAKE);
        /* Stop here: whatever follows <starttls/> in this read is dropped unparsed
         * (STARTTLS command injection, CVE-2011-0411); see conn_on_pause(). */
        return XMPP_IN_PAUSE;
    case CONN_S2S_AUTH:
    case CONN_S2S_DIALBACK:
        return s2s_in_peer_element(c, e);
    case CONN_BACKEND_CONNECT:
    case CONN_RELAY:
        if (c->lst->kind == CFG_KIND_S2S)
            return s2s_in_peer_element(c, e);
        /* We stripped both from the backend's features; a second TLS layer or compression
         * (XEP-0138) negotiated behind our back would blind the proxy. */
        if (strcmp(e->name, XMPP_NS_TLS "|starttls") == 0 ||
            strcmp(e->name, "http://jabber.org/protocol/compress|compress") == 0) {
            conn_set_detail(c, "<%s> over TLS", e->name);
            fail_stream(c, CONN_END_PEER_PROTOCOL, XTP_EPOLICY);
            return -ECANCELED;
        }
        return 0; /* relay_input() forwards it once complete */
    default:
        return XTP_EPOLICY;
    }
}

static int peer_stream_close(void *arg, uint64_t end)
{
    struct conn *c = arg;
    struct bytes out = BYTES_INIT;

    c->peer.stream_closed = true;
    if (c->state == CONN_RELAY)
        return 0; /* forwarded; the backend answers with its own </stream:stream> */
    if (c->peer_hdr_sent && xmpp_out_close(&out) == 0)
        relay_to_peer(c, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
    conn_close(c, CONN_END_DONE, 0);
    return -ECANCELED;
}

void conn_resume_peer(struct conn *c)
{
    int err;

    if (c->state == CONN_CLOSING || c->hold_peer)
        return;
    err = xmpp_in_resume(c->peer.xin); /* where the hold paused it, if it did */
    if (err == 0)
        err = relay_input(c, &c->peer, NULL, 0);
    if (err < 0) {
        peer_input_failed(c, err);
        return;
    }
    relay_update_reading(c);
    if (c->tls_up)
        conn_pump_peer(c);
}

int conn_on_pause(struct conn *c, struct side *s, size_t rest)
{
    if (s == &c->peer && c->peer_restart) {
        /* s2s: RFC 6120 §6.4.6, the stream restarts at this exact byte. On s2s-out we sent our
         * new header already (we initiate), so the remote's next error needs none. */
        c->peer_restart = false;
        if (c->lst->kind != CFG_KIND_S2S_OUT)
            c->peer_hdr_sent = false;
        if (xmpp_in_reset(c->peer.xin) != 0)
            return -ENOMEM;
        return c->hold_peer ? 2 : 0;
    }
    if (s == &c->peer && c->hold_peer)
        return 2;
    /* s2s-out: <proceed/> started TLS, or this attempt failed and another one follows: what
     * the remote sent after it is not looked at (STARTTLS command injection, CVE-2011-0411). */
    if (s == &c->peer && c->lst->kind == CFG_KIND_S2S_OUT &&
        ((c->tls != NULL && !c->tls_up) || c->state == CONN_OUT_CONNECT))
        return 1;
    if (s == &c->back && c->lst->kind != CFG_KIND_C2S) {
        /* s2s: the backend's answer may release the peer's held input. */
        if (!c->hold_peer && c->lst->kind == CFG_KIND_S2S)
            conn_resume_peer(c);
        return c->state == CONN_CLOSING ? -ECANCELED : 0;
    }
    if (s == &c->peer && c->state == CONN_TLS_HANDSHAKE) {
        if (rest > 0)
            conn_log(c, LOG_WARN,
                     "discarded %zu bytes pipelined after <starttls/> (RFC 6120 §5.4.3.3)", rest);
        return 1;
    }
    if (s == &c->back && c->restart) {
        c->restart = false;
        /* RFC 6120 §6.4.6: after <success/> both sides start new streams at this exact
         * byte. The peer must not have sent part of anything since its last element. */
        if (bytes_len(&c->peer.in) > 0 || xmpp_in_offset(c->peer.xin) != c->peer.fwd) {
            conn_set_detail(c, "data across the SASL stream restart");
            fail_stream(c, CONN_END_PEER_PROTOCOL, XTP_EPOLICY);
            return -ECANCELED;
        }
        if (xmpp_in_reset(c->back.xin) != 0 || xmpp_in_reset(c->peer.xin) != 0)
            return -ENOMEM;
        c->peer_hdr_sent = false;
        return 0;
    }
    return XTP_EPOLICY;
}

/* ---- the backend's stream ------------------------------------------------------------------ */

static int back_stream_open(void *arg, const struct xmpp_hdr *h)
{
    struct conn *c = arg;

    c->peer_hdr_sent = true; /* the backend's header is relayed as it is (its id matters) */
    /* A pre-1.0 stream has no features (RFC 6120 §4.7.5): its header is all we get. */
    if (!c->back_opened && !xmpp_in_version_ok(h) && !c->fail_pending && c->state == CONN_RELAY)
        uv_timer_stop(&c->timer);
    c->back_opened = true;
    return 0;
}

static int back_element(void *arg, const struct xmpp_elem *e)
{
    struct conn *c = arg;
    struct bytes out = BYTES_INIT;
    int err;

    if (strcmp(e->name, XMPP_NS_STREAMS "|features") == 0) {
        /* The backend's stream works: connect_cb()'s handshake timer is done. */
        if (c->state == CONN_RELAY && !c->fail_pending)
            uv_timer_stop(&c->timer);
        relay_forward(c, &c->back, e->start);
        err = features_rewrite(e, c->back.w + (e->start - c->back.w_off), c->peer_ip, &out);
        if (err != 0) {
            bytes_cleanup(&out);
            return err;
        }
        relay_skip(&c->back, e->end);
        relay_to_peer(c, bytes_data(&out), bytes_len(&out));
        conn_log(c, LOG_DEBUG, "backend features rewritten: %llu -> %zu bytes",
                 (unsigned long long)(e->end - e->start), bytes_len(&out));
        bytes_cleanup(&out);
        return 0;
    }
    if (strcmp(e->name, XMPP_NS_SASL "|success") == 0) {
        relay_forward(c, &c->back, e->end);
        c->restart = true;
        return XMPP_IN_PAUSE;
    }
    return 0;
}

static int back_stream_close(void *arg, uint64_t end)
{
    struct conn *c = arg;

    c->back.stream_closed = true;
    return 0;
}

/* ---- accept -------------------------------------------------------------------------------- */

static void timeout_cb(uv_timer_t *t)
{
    struct conn *c = t->data;

    conn_set_detail(c, "limits.handshake_timeout=%llums",
                    (unsigned long long)c->snap->cfg->handshake_timeout_ms);
    if (c->state == CONN_BACKEND_CONNECT)
        conn_fail_stream(c, CONN_END_BACKEND_CONNECT, XTP_EBACKEND, UV_ETIMEDOUT);
    else if (c->state == CONN_RELAY) { /* c2s: connected, but no stream header from it */
        conn_set_detail(c,
                        "backend %s sent no stream features within "
                        "limits.handshake_timeout=%llums",
                        c->back_text, (unsigned long long)c->snap->cfg->handshake_timeout_ms);
        conn_fail_stream(c, CONN_END_BACKEND_PROTOCOL, XTP_EBACKEND, UV_ETIMEDOUT);
    } else
        fail_stream(c, CONN_END_TIMEOUT, UV_ETIMEDOUT);
}

static void addr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen, char *full,
                      size_t fulllen)
{
    int port = 0;

    ip[0] = '\0';
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        uv_ip4_name(sin, ip, iplen);
        port = ntohs(sin->sin_port);
        snprintf(full, fulllen, "%s:%d", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(sin6, ip, iplen);
        port = ntohs(sin6->sin6_port);
        snprintf(full, fulllen, "[%s]:%d", ip, port);
    } else {
        snprintf(ip, iplen, "?");
        snprintf(full, fulllen, "?");
    }
}

void conn_accept(struct worker *w, uv_stream_t *server, const struct cfg_listener *lst)
{
    static uint64_t last_limit_log;
    const struct cfg *cfg = w->snap->cfg;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct conn *c = calloc(1, sizeof(*c));
    struct side *acc; /* the accepted socket: the peer, or the backend on s2s-out */

    if (c == NULL) {
        log_msg(LOG_ERROR, "listener=%s accept: out of memory", lst->name);
        return;
    }
    acc = lst->kind == CFG_KIND_S2S_OUT ? &c->back : &c->peer;
    if (uv_tcp_init(w->loop, &acc->tcp) != 0 || uv_timer_init(w->loop, &c->timer) != 0) {
        /* uv_tcp_init cannot fail on Linux; a failed timer init leaves nothing to close. */
        log_msg(LOG_ERROR, "listener=%s accept: cannot initialise handles", lst->name);
        free(c);
        return;
    }
    c->w = w;
    c->snap = snap_ref(w->snap);
    c->lst = lst;
    c->id = (w->next_id += w->nworkers);
    c->lst_idx = lst - cfg->listeners;
    c->t_start = c->t_active = uv_now(w->loop);
    metrics_session_open(w->metrics, (size_t)c->lst_idx);
    acc->tcp.data = c;
    acc->connected = true;
    c->timer.data = c;
    c->live_handles = 2;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->live++;
    __atomic_add_fetch(w->total_live, 1, __ATOMIC_RELAXED);
    snprintf(c->peer_addr, sizeof(c->peer_addr), "?");

    if (uv_accept(server, (uv_stream_t *)&acc->tcp) != 0) {
        conn_close(c, CONN_END_PEER_IO, UV_ECONNABORTED);
        return;
    }
    if (uv_tcp_getpeername(&acc->tcp, (struct sockaddr *)&ss, &sslen) == 0)
        addr_text(&ss, c->peer_ip, sizeof(c->peer_ip), c->peer_addr, sizeof(c->peer_addr));

    if (w->stopping || __atomic_load_n(w->total_live, __ATOMIC_RELAXED) > cfg->max_connections) {
        /* Refused fast and logged at most once a second: a flood must not flood the log. */
        if (uv_now(w->loop) - last_limit_log >= 1000) {
            last_limit_log = uv_now(w->loop);
            log_msg(LOG_WARN, "listener=%s refusing connections: %s (limits.max_connections=%u)",
                    lst->name, w->stopping ? "shutting down" : "at the limit",
                    cfg->max_connections);
        }
        acc->failed = XTP_ELIMIT; /* no flush: just close */
        c->state = CONN_CLOSING;
        c->end = w->stopping ? CONN_END_SHUTDOWN : CONN_END_LIMIT;
        close_handle(c, (uv_handle_t *)&acc->tcp);
        return;
    }

    uv_tcp_nodelay(&acc->tcp, 1);
    if (lst->kind == CFG_KIND_S2S_OUT) {
        conn_log(c, LOG_DEBUG, "accepted from the backend");
        s2s_out_start(c);
        return;
    }
    c->peer.xin = xmpp_in_new(&peer_ops, c, cfg->max_stanza, NULL);
    if (c->peer.xin == NULL) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    if (lst->kind == CFG_KIND_S2S)
        xmpp_in_set_resumable(c->peer.xin); /* s2s_in.c holds input while the backend learns */
    conn_log(c, LOG_DEBUG, "accepted");
    c->pp_wait = lst->proxy_protocol;
    if (lst->tls == CFG_TLS_DIRECT) {
        /* The TLS session (its two 16 KiB record buffers) comes with the first byte: a
         * connection that sends nothing costs a third as much (peer_data()). */
        conn_set_state(c, CONN_TLS_HANDSHAKE);
    } else {
        conn_set_state(c, CONN_PLAIN_STREAM);
    }
    uv_timer_start(&c->timer, timeout_cb, cfg->handshake_timeout_ms, 0);
    relay_update_reading(c);
}
