/* relay.c: moving bytes between the two sides of a session (see relay.h). */
#include "relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "conn-t.h"
#include "metrics.h"
#include "tls.h"
#include "worker.h"
#include "xmpp_in.h"

/* A write the socket did not take at once: owns a copy of the bytes. */
struct wreq {
    uv_write_t req;
    struct side *side;
    size_t len;
    uint8_t data[];
};

static struct conn *side_conn(struct side *s)
{
    return s->tcp.data;
}

/* Before RELAY, is everything s sent handled (answered or skipped) by the session itself?
 * Not for c2s/s2s-in peer input after the stream header: those stanzas wait to be forwarded. */
static bool consumed_here(const struct conn *c, const struct side *s)
{
    switch (c->state) {
    case CONN_PLAIN_STREAM: /* pre-TLS, every kind */
    case CONN_S2S_AUTH:     /* s2s-in: negotiation; stanzas wait in s2s->held */
    case CONN_S2S_DIALBACK:
        return s == &c->peer;
    case CONN_BACKEND_CONNECT:
        return s == &c->peer && c->lst->kind == CFG_KIND_S2S;
    case CONN_OUT_BACKEND: /* s2s-out: the backend's dialback, the remote's negotiation */
    case CONN_OUT_RESOLVE:
    case CONN_OUT_CONNECT:
    case CONN_OUT_STREAM:
    case CONN_OUT_AUTH:
        return true;
    default:
        return false;
    }
}

int relay_input(struct conn *c, struct side *s, const uint8_t *data, size_t n)
{
    bool own = bytes_len(&s->in) > 0;
    size_t pos, used, tail_at;
    int rc;

    /* Invariant: s->in holds exactly the bytes from offset s->fwd that were received but not
     * forwarded. Parse in place when it is empty (the common case: no copy), else append. */
    if (n == 0 && !own)
        return 0; /* a flush with nothing held */
    if (own) {
        if (n > 0 && bytes_append(&s->in, data, n) != 0)
            return -ENOMEM;
        s->w = bytes_data(&s->in);
        s->w_len = bytes_len(&s->in);
        own = true;
    } else {
        s->w = data;
        s->w_len = n;
    }
    s->w_off = s->fwd;
    pos = (size_t)(xmpp_in_offset(s->xin) - s->w_off);

    while (pos < s->w_len) {
        rc = xmpp_in_feed(s->xin, s->w + pos, s->w_len - pos, &used);
        pos += used;
        if (c->state == CONN_CLOSING)
            return -ECANCELED;
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        rc = conn_on_pause(c, s, s->w_len - pos);
        if (rc < 0)
            return rc;
        if (rc == 2)
            break;     /* held: the rest waits in s->in; relay_input(c, s, NULL, 0) resumes */
        if (rc == 1) { /* the rest is dropped unparsed: not one byte of it is looked at */
            bytes_cleanup(&s->in);
            s->w = NULL;
            return 0;
        }
    }

    if (c->state == CONN_RELAY)
        relay_forward(c, s, xmpp_in_safe(s->xin));
    else if (consumed_here(c, s))
        /* Streams the proxy answers itself and never forwards: what the parser accepted
         * (whitespace keepalives between elements) is consumed, or an unauthenticated peer
         * could make us hold every space it sends. */
        relay_skip(s, xmpp_in_safe(s->xin));
    if (c->state == CONN_CLOSING)
        return -ECANCELED;

    /* Keep what was not forwarded for the next round. */
    tail_at = (size_t)(s->fwd - s->w_off);
    if (own)
        bytes_consume(&s->in, tail_at);
    else if (tail_at < s->w_len && bytes_append(&s->in, s->w + tail_at, s->w_len - tail_at) != 0)
        return -ENOMEM;
    s->w = NULL;
    return 0;
}

void relay_forward(struct conn *c, struct side *s, uint64_t upto)
{
    const uint8_t *p;
    size_t len;

    if (upto <= s->fwd)
        return;
    p = s->w + (s->fwd - s->w_off);
    len = (size_t)(upto - s->fwd);
    s->fwd = upto;
    if (s == &c->peer)
        relay_to_backend(c, p, len);
    else
        relay_to_peer(c, p, len);
}

void relay_skip(struct side *s, uint64_t upto)
{
    if (upto > s->fwd)
        s->fwd = upto;
}

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *wr = (struct wreq *)req;
    struct side *s = wr->side;
    struct conn *c = side_conn(s);
    bool was_reading;

    s->wpending -= wr->len;
    free(wr);
    if (status == UV_ECANCELED)
        return; /* we closed the handle (the session ends, or s2s-out tries another address) */
    if (status < 0) {
        conn_fail_later(c, s, status);
        return;
    }
    was_reading = c->peer.reading;
    relay_update_reading(c);
    /* Reading resumed: TLS may hold records that arrived before we stopped. */
    if (!was_reading && c->peer.reading && c->tls != NULL)
        conn_pump_peer(c);
}

static int write_now(struct conn *c, struct side *s, const void *data, size_t len);

void relay_cork(struct conn *c)
{
    if (c->w->cork_owner == NULL) {
        c->w->cork_owner = c;
        c->w->cork_len = 0;
    }
}

void relay_uncork(struct conn *c)
{
    struct worker *w = c->w;

    if (w->cork_owner != c)
        return;
    w->cork_owner = NULL;
    if (w->cork_len > 0)
        write_now(c, &c->peer, w->cork, w->cork_len); /* a failure closes on the next turn */
    w->cork_len = 0;
}

int relay_write(struct conn *c, struct side *s, const void *data, size_t len)
{
    struct worker *w = c->w;

    if (s == &c->peer && w->cork_owner == c && !s->failed && !s->shut) {
        if (len <= sizeof(w->cork) - w->cork_len) {
            memcpy(w->cork + w->cork_len, data, len);
            w->cork_len += len;
            return 0;
        }
        if (w->cork_len > 0) { /* full: what is gathered goes first, then this */
            write_now(c, s, w->cork, w->cork_len);
            w->cork_len = 0;
        }
    }
    return write_now(c, s, data, len);
}

static int write_now(struct conn *c, struct side *s, const void *data, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    struct wreq *wr;
    int r;

    if (s->failed)
        return s->failed;
    if (s->shut)
        return UV_EPIPE;
    if (len == 0)
        return 0;
    if (s->wpending == 0) {
        r = uv_try_write((uv_stream_t *)&s->tcp, &buf, 1);
        if (r == UV_EAGAIN || r == UV_ENOSYS)
            r = 0;
        if (r < 0) {
            conn_fail_later(c, s, r);
            return r;
        }
        s->tx += (size_t)r;
        metrics_bytes(c->w->metrics, s == &c->peer ? METRICS_TO_PEER : METRICS_TO_BACKEND,
                      (uint64_t)r);
        if ((size_t)r == len)
            return 0;
        data = (const uint8_t *)data + r;
        len -= (size_t)r;
    }
    wr = malloc(sizeof(*wr) + len);
    if (wr == NULL) {
        conn_fail_later(c, s, -ENOMEM);
        return -ENOMEM;
    }
    wr->side = s;
    wr->len = len;
    memcpy(wr->data, data, len);
    buf = uv_buf_init((char *)wr->data, (unsigned)len);
    r = uv_write(&wr->req, (uv_stream_t *)&s->tcp, &buf, 1, write_cb);
    if (r < 0) {
        free(wr);
        conn_fail_later(c, s, r);
        return r;
    }
    s->wpending += len;
    s->tx += len;
    metrics_bytes(c->w->metrics, s == &c->peer ? METRICS_TO_PEER : METRICS_TO_BACKEND, len);
    if (s->wpending > RELAY_HIGH_WATER)
        relay_update_reading(c);
    return 0;
}

int relay_to_peer(struct conn *c, const void *data, size_t len)
{
    if (c->tls != NULL && c->tls_up)
        return tls_write(c->tls, data, len);
    return relay_write(c, &c->peer, data, len);
}

int relay_to_backend(struct conn *c, const void *data, size_t len)
{
    return relay_write(c, &c->back, data, len);
}

int relay_peer_blocked(const struct conn *c)
{
    if (c->hold_peer)
        return 1;
    switch (c->state) {
    case CONN_PLAIN_STREAM:
    case CONN_TLS_HANDSHAKE:
    case CONN_PEER_STREAM:
    case CONN_S2S_AUTH:
    case CONN_OUT_STREAM:
    case CONN_OUT_AUTH:
        return c->peer.wpending > RELAY_HIGH_WATER;
    case CONN_RELAY:
        return c->back.wpending > RELAY_HIGH_WATER || c->peer.wpending > RELAY_HIGH_WATER;
    case CONN_BACKEND_CONNECT:
    case CONN_S2S_DIALBACK:
        /* s2s-in keeps reading (s2s_in.c: <db:verify/> must be answered); c2s holds. */
        return c->lst->kind != CFG_KIND_S2S || c->peer.wpending > RELAY_HIGH_WATER;
    default:
        return 1;
    }
}

/* Hysteresis: stop above the high-water mark, start again only below the low one. */
static int want_read(const struct side *producer_target, bool reading)
{
    if (reading)
        return producer_target->wpending <= RELAY_HIGH_WATER;
    return producer_target->wpending <= RELAY_LOW_WATER;
}

static void set_reading(struct side *s, bool on, uv_read_cb cb)
{
    if (on == s->reading)
        return;
    if (on ? uv_read_start((uv_stream_t *)&s->tcp, conn_alloc_cb, cb) == 0
           : uv_read_stop((uv_stream_t *)&s->tcp) == 0)
        s->reading = on;
}

void relay_update_reading(struct conn *c)
{
    bool peer_on = false, back_on = false;

    switch (c->state) {
    case CONN_PLAIN_STREAM:
    case CONN_TLS_HANDSHAKE:
    case CONN_PEER_STREAM:
    case CONN_S2S_AUTH:
        peer_on = want_read(&c->peer, c->peer.reading);
        break;
    case CONN_S2S_DIALBACK: /* the backend's answer to our key; the remote's <db:verify/> */
        peer_on = want_read(&c->peer, c->peer.reading);
        back_on = want_read(&c->peer, c->back.reading);
        break;
    case CONN_BACKEND_CONNECT:
        peer_on = c->lst->kind == CFG_KIND_S2S && want_read(&c->peer, c->peer.reading);
        break;
    case CONN_OUT_BACKEND: /* s2s-out: the backend's dialback, before any remote */
    case CONN_OUT_RESOLVE:
    case CONN_OUT_CONNECT:
        back_on = want_read(&c->peer, c->back.reading);
        break;
    case CONN_OUT_STREAM:
    case CONN_OUT_AUTH:
        peer_on = want_read(&c->peer, c->peer.reading);
        back_on = want_read(&c->peer, c->back.reading);
        break;
    case CONN_RELAY:
        /* Peer input goes to the backend; our TLS output to the peer must drain too. */
        peer_on = want_read(&c->back, c->peer.reading) && want_read(&c->peer, c->peer.reading);
        back_on = want_read(&c->peer, c->back.reading);
        break;
    default: /* NEW, BACKEND_CONNECT (peer input is held), CLOSING */
        break;
    }
    if (c->state == CONN_CLOSING)
        return; /* conn_close() owns the handles now */
    if (c->peer.connected)
        set_reading(&c->peer, peer_on, conn_peer_read_cb);
    if (c->back.connected)
        set_reading(&c->back, back_on, conn_back_read_cb);
}
