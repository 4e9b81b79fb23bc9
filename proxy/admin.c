/* admin.c: see admin.h.
 *
 *  one admin connection:
 *    READ --(request complete)--> WRITE --(written, keep-alive)--> READ
 *                                   |--(written, close)--> LINGER --(EOF | 2 s)--> closed
 *    READ --(bad request)--> WRITE (error response, close)
 *    any state --(timeout | I/O error | admin_stop)--> closed (last close callback frees it)
 *
 * Reading stops while a response is written, so a client pipelining requests without
 * reading the answers holds at most one read of input here and one response. */
#include "admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "http_req.h"
#include "log.h"

#define ADMIN_BACKLOG   128
#define ADMIN_LINGER_MS 2000
#define ADMIN_RBUF_SIZE 16384

enum aconn_state { AC_READ = 0, AC_WRITE, AC_LINGER, AC_CLOSED };

struct aconn {
    struct admin *a;           /* borrowed: the server outlives its connections */
    struct aconn *next, *prev; /* a->conns */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t sd;
    int handles; /* initialised handles not yet closed */
    enum aconn_state state;
    bool partial;         /* part of the next request was parsed: request timeout runs */
    bool close_after;     /* the response being written ends the connection */
    struct http_req *req; /* owned */
    struct bytes in;      /* input after a complete request (pipelining), not yet parsed */
    struct bytes body;    /* owned; the response body while it is written */
    char head[512];       /* the response's status line and header fields */
};

struct admin {
    uv_loop_t *loop; /* borrowed */
    uv_tcp_t server;
    struct admin_ops ops;
    void *arg;
    struct admin_limits lim;
    struct aconn *conns;
    unsigned nconns; /* in a->conns */
    unsigned live;   /* the server handle + every connection or refused socket not yet freed */
    bool stopping;
    void (*done)(void *arg);
    void *done_arg;
    char rbuf[ADMIN_RBUF_SIZE]; /* every read on this server; processed before the next one */
};

/* A socket refused at max_conns: a static 503, then closed. */
struct refused {
    uv_tcp_t tcp;
    struct admin *a;
};

static const char refused_503[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 21\r\n"
                                  "Connection: close\r\n"
                                  "\r\n"
                                  "too many connections\n";

static void release(struct admin *a)
{
    XTP_ASSERT(a->live > 0);
    if (--a->live > 0 || !a->stopping)
        return;
    if (a->done != NULL)
        a->done(a->done_arg);
    free(a);
}

static void server_closed_cb(uv_handle_t *h)
{
    release(h->data);
}

/* ---- one connection -------------------------------------------------------------------- */

static void conn_closed_cb(uv_handle_t *h)
{
    struct aconn *c = h->data;
    struct admin *a = c->a;

    if (--c->handles > 0)
        return;
    http_req_free(c->req);
    bytes_cleanup(&c->in);
    bytes_cleanup(&c->body);
    free(c);
    release(a);
}

/* The one way a connection ends. Idempotent. */
static void conn_close(struct aconn *c)
{
    struct admin *a = c->a;

    if (c->state == AC_CLOSED)
        return;
    c->state = AC_CLOSED;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a->nconns--;
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
    uv_close((uv_handle_t *)&c->timer, conn_closed_cb);
}

static void timeout_cb(uv_timer_t *t)
{
    struct aconn *c = t->data;

    log_msg(LOG_DEBUG, "admin: connection closed: %s timeout",
            c->state == AC_READ    ? (c->partial ? "request" : "idle")
            : c->state == AC_WRITE ? "write"
                                   : "linger");
    conn_close(c);
}

static void arm(struct aconn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, timeout_cb, ms, 0);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct aconn *c = h->data;

    buf->base = c->a->rbuf;
    buf->len = sizeof(c->a->rbuf);
}

static void linger_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0)
        conn_close(s->data);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct aconn *c = req->data;

    if (status < 0)
        conn_close(c);
}

/* After a response that ends the connection: FIN first, then discard input until the peer
 * closes, so our close does not turn into a reset that destroys the response. */
static void linger(struct aconn *c)
{
    c->state = AC_LINGER;
    c->sd.data = c;
    if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, shutdown_cb) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, linger_read_cb) != 0) {
        conn_close(c);
        return;
    }
    arm(c, ADMIN_LINGER_MS);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void parse(struct aconn *c, const uint8_t *data, size_t len);

/* Back to reading: first what was already received after the last request. */
static void resume_reading(struct aconn *c)
{
    struct bytes pending = c->in;

    c->state = AC_READ;
    c->in = (struct bytes)BYTES_INIT;
    c->partial = false;
    arm(c, c->a->lim.idle_timeout_ms);
    if (bytes_len(&pending) > 0)
        parse(c, bytes_data(&pending), bytes_len(&pending));
    bytes_cleanup(&pending);
    if (c->state == AC_READ && uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

static void write_cb(uv_write_t *req, int status)
{
    struct aconn *c = req->data;

    bytes_cleanup(&c->body);
    if (c->state != AC_WRITE)
        return; /* closed meanwhile */
    if (status < 0) {
        log_msg(LOG_DEBUG, "admin: write: %s", uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->close_after)
        linger(c);
    else
        resume_reading(c);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* Sends status with c->body (already filled) and the header fields the request calls for;
 * then keeps reading or lingers, per c->close_after. */
static void send_response(struct aconn *c, int status, const char *ctype, int minor)
{
    char date[64];
    struct tm tm;
    time_t now = time(NULL);
    uv_buf_t bufs[2];
    int n;

    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->a->stopping)
        c->close_after = true;
    /* RFC 9110 §6.6.1: an origin server with a clock sends Date. */
    if (gmtime_r(&now, &tm) == NULL ||
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        date[0] = '\0';
    n = snprintf(c->head, sizeof(c->head),
                 "HTTP/1.1 %d %s\r\n"
                 "Date: %s\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s%s\r\n",
                 status, reason_phrase(status), date, ctype, bytes_len(&c->body),
                 status == 405 ? "Allow: GET\r\n" : "",
                 c->close_after ? "Connection: close\r\n"
                 : minor == 0   ? "Connection: keep-alive\r\n"
                                : "");
    XTP_ASSERT(n > 0 && (size_t)n < sizeof(c->head));
    bufs[0] = uv_buf_init(c->head, (unsigned)n);
    if (bytes_len(&c->body) > 0)
        bufs[1] = uv_buf_init((char *)bytes_data(&c->body), (unsigned)bytes_len(&c->body));
    c->state = AC_WRITE;
    c->wr.data = c;
    arm(c, c->a->lim.idle_timeout_ms);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, bufs, bytes_len(&c->body) > 0 ? 2 : 1, write_cb) !=
        0)
        conn_close(c);
}

static void send_text(struct aconn *c, int status, const char *text, int minor)
{
    bytes_cleanup(&c->body);
    if (bytes_append(&c->body, text, strlen(text)) != 0) {
        conn_close(c);
        return;
    }
    send_response(c, status, "text/plain; charset=utf-8", minor);
}

/* A complete request: route it. */
static void respond(struct aconn *c)
{
    struct admin *a = c->a;
    const char *path = http_req_path(c->req);
    int minor = http_req_minor(c->req);
    int (*render)(void *, struct bytes *) = NULL;
    const char *ctype = NULL;
    int err;

    c->close_after = !http_req_keep_alive(c->req);
    if (strcmp(path, "/metrics") == 0) {
        render = a->ops.render_metrics;
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(path, "/status") == 0) {
        render = a->ops.render_status;
        ctype = "application/json";
    } else if (strcmp(path, "/healthz") == 0) {
        bool ok = a->ops.healthy(a->arg);

        log_msg(LOG_DEBUG, "admin: GET %s %d", path, ok ? 200 : 503);
        send_text(c, ok ? 200 : 503, ok ? "ok\n" : "unavailable\n", minor);
        return;
    } else {
        log_msg(LOG_DEBUG, "admin: GET %.100s 404", path);
        send_text(c, 404, "not found\n", minor);
        return;
    }
    bytes_cleanup(&c->body);
    err = render(a->arg, &c->body);
    if (err != 0) {
        log_msg(LOG_WARN, "admin: GET %s: %s", path, xtp_strerror(err));
        send_text(c, 500, "internal error\n", minor);
        return;
    }
    log_msg(LOG_DEBUG, "admin: GET %s 200 %zu bytes", path, bytes_len(&c->body));
    send_response(c, 200, ctype, minor);
}

/* Feeds input in READ state: answers a complete request, or an error. */
static void parse(struct aconn *c, const uint8_t *data, size_t len)
{
    size_t used;
    enum http_req_result r = http_req_feed(c->req, data, len, &used);
    int status;

    switch (r) {
    case HTTP_REQ_MORE:
        if (len > 0 && !c->partial) {
            c->partial = true; /* from now on the request must complete in time */
            arm(c, c->a->lim.request_timeout_ms);
        }
        return;
    case HTTP_REQ_DONE:
        if (bytes_append(&c->in, data + used, len - used) != 0) {
            conn_close(c);
            return;
        }
        respond(c);
        http_req_next(c->req);
        return;
    case HTTP_REQ_ERROR:
        status = http_req_status(c->req);
        log_msg(LOG_DEBUG, "admin: bad request: %d %s", status, http_req_error(c->req));
        c->close_after = true;
        send_text(c, status, status == 405 ? "method not allowed\n" : "bad request\n", 1);
        return;
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct aconn *c = s->data;

    if (nread < 0) {
        if (nread != UV_EOF)
            log_msg(LOG_DEBUG, "admin: read: %s", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (nread > 0)
        parse(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- the server ------------------------------------------------------------------------ */

static void refused_closed_cb(uv_handle_t *h)
{
    struct refused *r = h->data;
    struct admin *a = r->a;

    free(r);
    release(a);
}

static void refuse(struct admin *a)
{
    struct refused *r = malloc(sizeof(*r));
    uv_buf_t b = uv_buf_init((char *)refused_503, sizeof(refused_503) - 1);

    if (r == NULL || uv_tcp_init(a->loop, &r->tcp) != 0) {
        free(r);
        return;
    }
    r->a = a;
    r->tcp.data = r;
    a->live++;
    if (uv_accept((uv_stream_t *)&a->server, (uv_stream_t *)&r->tcp) == 0)
        (void)uv_try_write((uv_stream_t *)&r->tcp, &b, 1); /* best effort: the socket is new */
    uv_close((uv_handle_t *)&r->tcp, refused_closed_cb);
}

static void connection_cb(uv_stream_t *server, int status)
{
    struct admin *a = server->data;
    struct aconn *c;

    if (status < 0) {
        log_msg(LOG_WARN, "admin: accept: %s", uv_strerror(status));
        return;
    }
    if (a->nconns >= a->lim.max_conns) {
        log_msg(LOG_WARN, "admin: %u connections open, refusing one more", a->nconns);
        refuse(a);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->req = http_req_new();
    if (c == NULL || c->req == NULL || uv_tcp_init(a->loop, &c->tcp) != 0) {
        /* The pending socket must still be accepted, or libuv stops accepting. */
        if (c != NULL)
            http_req_free(c->req);
        free(c);
        refuse(a);
        return;
    }
    c->a = a;
    c->tcp.data = c;
    c->handles = 1;
    XTP_ASSERT(uv_timer_init(a->loop, &c->timer) == 0); /* cannot fail on Unix */
    c->timer.data = c;
    c->handles = 2;
    a->live++;
    a->nconns++;
    c->next = a->conns;
    if (a->conns != NULL)
        a->conns->prev = c;
    a->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    c->state = AC_WRITE; /* resume_reading() starts from a response just written */
    resume_reading(c);
}

static void format_addr(const struct sockaddr *addr, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)addr;

        uv_ip6_name(s6, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)addr;

        uv_ip4_name(s4, ip, sizeof(ip));
        snprintf(out, len, "%s:%u", ip, ntohs(s4->sin_port));
    }
}

struct admin *admin_start(uv_loop_t *loop, const struct sockaddr *addr, const struct admin_ops *ops,
                          void *arg, char *err, size_t errlen)
{
    struct admin *a;
    char where[INET6_ADDRSTRLEN + 16];
    int r;

    XTP_ASSERT(ops->render_metrics != NULL && ops->render_status != NULL && ops->healthy != NULL);
    format_addr(addr, where, sizeof(where));
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "admin listener %s: %s", where, strerror(ENOMEM));
        return NULL;
    }
    a->loop = loop;
    a->ops = *ops;
    a->arg = arg;
    a->lim.max_conns = ADMIN_MAX_CONNS;
    a->lim.idle_timeout_ms = ADMIN_IDLE_TIMEOUT_MS;
    a->lim.request_timeout_ms = ADMIN_REQ_TIMEOUT_MS;
    r = uv_tcp_init(loop, &a->server);
    if (r != 0) {
        snprintf(err, errlen, "admin listener %s: %s", where, uv_strerror(r));
        free(a);
        return NULL;
    }
    a->server.data = a;
    a->live = 1;
    r = uv_tcp_bind(&a->server, addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&a->server, ADMIN_BACKLOG, connection_cb);
    if (r != 0) {
        snprintf(err, errlen, "admin listener: cannot listen on %s: %s", where, uv_strerror(r));
        a->stopping = true;
        uv_close((uv_handle_t *)&a->server, server_closed_cb);
        return NULL;
    }
    if (errlen > 0)
        err[0] = '\0';
    return a;
}

void admin_set_limits(struct admin *a, const struct admin_limits *l)
{
    if (l->max_conns > 0)
        a->lim.max_conns = l->max_conns;
    if (l->idle_timeout_ms > 0)
        a->lim.idle_timeout_ms = l->idle_timeout_ms;
    if (l->request_timeout_ms > 0)
        a->lim.request_timeout_ms = l->request_timeout_ms;
}

int admin_address(const struct admin *a, struct sockaddr_storage *ss)
{
    int len = (int)sizeof(*ss);

    return uv_tcp_getsockname(&a->server, (struct sockaddr *)ss, &len);
}

void admin_stop(struct admin *a, void (*done)(void *arg), void *arg)
{
    XTP_ASSERT(!a->stopping);
    a->stopping = true;
    a->done = done;
    a->done_arg = arg;
    while (a->conns != NULL)
        conn_close(a->conns);
    uv_close((uv_handle_t *)&a->server, server_closed_cb);
}
