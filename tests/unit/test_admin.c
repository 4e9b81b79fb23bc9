/* Unit tests for admin.c and status_cli.c: a real admin server on 127.0.0.1 (port 0) on its
 * own uv loop in a second thread, and blocking client sockets in the test thread. */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_req.h"
#include "json.h"
#include "metrics.h"
#include "status_cli.h"
#include "test.h"

/* ---- the server under test ------------------------------------------------------------- */

struct srv {
    uv_loop_t loop;
    uv_async_t stop;
    struct admin *a;
    pthread_t th;
    int port;
    struct metrics_reg *reg;
    int healthy;     /* read on the loop thread: atomics */
    int fail_status; /* render_status returns -EIO */
    int done;        /* admin_stop()'s callback ran */
};

static int render_metrics(void *arg, struct bytes *out)
{
    struct srv *s = arg;

    return metrics_render(s->reg, out);
}

static const char *const sans[] = {"other.test", "xmpp.other.test"};

static const struct status_session sessions[] = {
    {7, "c2s", "c2s", "192.0.2.1:40000", "example.test", NULL, "TLSv1.3",
     "TLS1-3-AES-128-GCM-SHA256", "none", false, NULL, NULL, 0, NULL, 0, 1234, 567890, 75},
    {3, "s2s", "s2s", "[2001:db8::1]:5269", "example.test", "other.test", "TLSv1.2",
     "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "pkix", true, "CN=other.test", sans, 2, "ab:cd",
     1798761600, 0, 0, 90061},
};

static int render_status(void *arg, struct bytes *out)
{
    struct srv *s = arg;
    struct json j;

    if (__atomic_load_n(&s->fail_status, __ATOMIC_SEQ_CST))
        return -EIO;
    json_init(&j, out);
    status_cli_begin(&j);
    for (size_t i = 0; i < ARRAY_SIZE(sessions); i++)
        status_cli_session(&j, &sessions[i]);
    return status_cli_end(&j);
}

static bool healthy(void *arg)
{
    struct srv *s = arg;

    return __atomic_load_n(&s->healthy, __ATOMIC_SEQ_CST) != 0;
}

static const struct admin_ops ops = {render_metrics, render_status, healthy};

static void *loop_main(void *arg)
{
    struct srv *s = arg;

    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void done_cb(void *arg)
{
    struct srv *s = arg;

    __atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
}

static void stop_cb(uv_async_t *h)
{
    struct srv *s = h->data;

    admin_stop(s->a, done_cb, s);
    uv_close((uv_handle_t *)h, NULL);
}

static void srv_start(struct srv *s, const struct admin_limits *lim)
{
    static const char *const names[] = {"c2s"}, *const kinds[] = {"c2s"};
    static const char *const reasons[] = {"done"};
    struct metrics_labels labels = {names, kinds, 1, reasons, 1, NULL, 0, NULL, 0};
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    char err[256];

    memset(s, 0, sizeof(*s));
    s->healthy = 1;
    s->reg = metrics_reg_new(&labels, 1);
    metrics_session_open(metrics_reg_shard(s->reg, 0), 0);
    uv_loop_init(&s->loop);
    uv_ip4_addr("127.0.0.1", 0, &sin);
    s->a = admin_start(&s->loop, (const struct sockaddr *)&sin, &ops, s, err, sizeof(err));
    if (s->a == NULL) {
        TEST_FAIL_("admin_start: %s", err);
        abort();
    }
    EXPECT_STR("", err);
    if (lim != NULL)
        admin_set_limits(s->a, lim);
    EXPECT_EQ(0, admin_address(s->a, &ss));
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    EXPECT(s->port > 0);
    uv_async_init(&s->loop, &s->stop, stop_cb);
    s->stop.data = s;
    pthread_create(&s->th, NULL, loop_main, s);
}

/* Stops the server from its own thread and checks that every handle was closed. */
static void srv_stop(struct srv *s)
{
    uv_async_send(&s->stop);
    pthread_join(s->th, NULL);
    EXPECT_EQ(1, s->done);
    EXPECT_EQ(0, uv_loop_close(&s->loop));
    metrics_reg_free(s->reg);
}

/* ---- a blocking client ----------------------------------------------------------------- */

struct client {
    int fd;
    size_t len;
    char buf[1 << 16];
};

struct resp {
    int status;
    char head[2048];
    char body[8192];
    size_t body_len;
};

static void cli_open(struct client *c, int port)
{
    struct sockaddr_in sin;
    struct timeval tv = {3, 0};

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    uv_ip4_addr("127.0.0.1", port, &sin);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        TEST_FAIL_("connect: %s", strerror(errno));
        return;
    }
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void cli_close(struct client *c)
{
    close(c->fd);
    c->fd = -1;
}

static void cli_send(struct client *c, const char *s, size_t n)
{
    if (send(c->fd, s, n, MSG_NOSIGNAL) != (ssize_t)n)
        TEST_FAIL_("send: %s", strerror(errno));
}

#define SEND(c, s) cli_send((c), (s), strlen(s))

/* Reads one response (headers + Content-Length body). Returns 0, or -1 at EOF / reset /
 * timeout before a whole response. */
static int cli_read(struct client *c, struct resp *r)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4), *cl;
        size_t head, body;
        ssize_t n;

        if (end != NULL) {
            head = (size_t)(end - c->buf) + 4;
            snprintf(r->head, sizeof(r->head), "%.*s", (int)head, c->buf);
            cl = strcasestr(r->head, "\r\nContent-Length: ");
            body = cl != NULL ? strtoul(cl + 18, NULL, 10) : 0;
            if (c->len >= head + body) {
                r->status = atoi(c->buf + 9);
                r->body_len = body < sizeof(r->body) ? body : sizeof(r->body) - 1;
                memcpy(r->body, c->buf + head, r->body_len);
                r->body[r->body_len] = '\0';
                memmove(c->buf, c->buf + head + body, c->len - head - body);
                c->len -= head + body;
                return 0;
            }
        }
        if (c->len == sizeof(c->buf))
            return -1;
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
}

/* Whether the server closes the connection within ms (EOF or reset, with nothing unread). */
static bool cli_closed_within(struct client *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    char b[256];
    ssize_t n;

    if (poll(&p, 1, ms) != 1)
        return false;
    n = recv(c->fd, b, sizeof(b), 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- tests ----------------------------------------------------------------------------- */

/* The three endpoints and a 404, one after the other on one keep-alive connection. */
TEST(admin_endpoints)
{
    struct srv s;
    struct client c;
    struct resp r;
    struct bytes want = BYTES_INIT;
    struct json_value *doc = NULL;
    char err[128];

    srv_start(&s, NULL);
    cli_open(&c, s.port);

    SEND(&c, GET("/metrics"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    EXPECT(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    EXPECT(strstr(r.head, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    EXPECT(strstr(r.head, "\r\nDate: ") != NULL);
    EXPECT(strstr(r.head, "Connection:") == NULL);
    metrics_render(s.reg, &want);
    EXPECT_MEM(bytes_data(&want), bytes_len(&want), r.body, r.body_len);
    EXPECT(strstr(r.body, "xtp_sessions{listener=\"c2s\",kind=\"c2s\"} 1\n") != NULL);
    bytes_cleanup(&want);

    SEND(&c, GET("/status"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    EXPECT(strstr(r.head, "\r\nContent-Type: application/json\r\n") != NULL);
    EXPECT_EQ(0, json_parse(r.body, r.body_len, &doc, err, sizeof(err)));
    EXPECT_EQ(2, json_get(doc, "sessions")->len);
    if (doc != NULL) {
        const struct json_value *s0 = &json_get(doc, "sessions")->items[0];
        const struct json_value *s1 = &json_get(doc, "sessions")->items[1];
        const struct json_value *cert = json_get(s1, "peer_cert");

        EXPECT_EQ(7, json_get(s0, "id")->i);
        EXPECT_EQ(JSON_NULL, json_get(s0, "remote_domain")->type);
        EXPECT_EQ(JSON_NULL, json_get(s0, "peer_cert")->type);
        EXPECT_EQ(567890, json_get(json_get(s0, "bytes"), "out")->i);
        EXPECT_EQ(75, json_get(s0, "age")->i);
        EXPECT_STR("other.test", json_get(s1, "remote_domain")->s);
        EXPECT_STR("pkix", json_get(s1, "peer_auth")->s);
        EXPECT_STR("CN=other.test", json_get(cert, "subject")->s);
        EXPECT_EQ(2, json_get(cert, "sans")->len);
        EXPECT_STR("xmpp.other.test", json_get(cert, "sans")->items[1].s);
        EXPECT_STR("ab:cd", json_get(cert, "sha256")->s);
        EXPECT_STR("2027-01-01T00:00:00Z", json_get(cert, "not_after")->s);
    }
    json_value_free(doc);

    SEND(&c, GET("/healthz"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    EXPECT_STR("ok\n", r.body);

    __atomic_store_n(&s.healthy, 0, __ATOMIC_SEQ_CST);
    SEND(&c, GET("/healthz"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(503, r.status);

    SEND(&c, GET("/nope"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(404, r.status);
    SEND(&c, GET("/metrics/"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(404, r.status);
    SEND(&c, GET("/metrics?name=x"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    EXPECT(!cli_closed_within(&c, 50)); /* still open */
    cli_close(&c);
    srv_stop(&s);
}

TEST(admin_pipelined)
{
    struct srv s;
    struct client c;
    struct resp r;

    srv_start(&s, NULL);
    cli_open(&c, s.port);
    SEND(&c, GET("/healthz") GET("/nope") GET("/metrics") GET("/healthz"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    EXPECT_STR("ok\n", r.body);
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(404, r.status);
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    EXPECT(strstr(r.body, "# TYPE xtp_sessions gauge") != NULL);
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_STR("ok\n", r.body);
    cli_close(&c);
    srv_stop(&s);
}

TEST(admin_method_not_allowed)
{
    struct srv s;
    struct client c;
    struct resp r;

    srv_start(&s, NULL);
    cli_open(&c, s.port);
    SEND(&c, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(405, r.status);
    EXPECT(strstr(r.head, "\r\nAllow: GET\r\n") != NULL);
    EXPECT(strstr(r.head, "\r\nConnection: close\r\n") != NULL);
    EXPECT(cli_closed_within(&c, 2000));
    cli_close(&c);
    srv_stop(&s);
}

TEST(admin_oversized_request)
{
    struct srv s;
    struct client c;
    struct resp r;
    static char big[HTTP_REQ_MAX_HEAD + 100];

    srv_start(&s, NULL);
    cli_open(&c, s.port);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nHost: t\r\nX: ", 28);
    cli_send(&c, big, sizeof(big)); /* no end of headers in sight */
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(431, r.status);
    EXPECT(strstr(r.head, "\r\nConnection: close\r\n") != NULL);
    EXPECT(cli_closed_within(&c, 3000));
    cli_close(&c);

    cli_open(&c, s.port);
    SEND(&c, "GET / HTTP/2.0\r\n\r\n");
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(505, r.status);
    cli_close(&c);
    srv_stop(&s);
}

TEST(admin_connection_close)
{
    struct srv s;
    struct client c;
    struct resp r;

    srv_start(&s, NULL);
    cli_open(&c, s.port);
    SEND(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    EXPECT(strstr(r.head, "\r\nConnection: close\r\n") != NULL);
    EXPECT(cli_closed_within(&c, 2000));
    cli_close(&c);

    /* HTTP/1.0: closed by default, kept with "Connection: keep-alive". */
    cli_open(&c, s.port);
    SEND(&c, "GET /healthz HTTP/1.0\r\n\r\n");
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT(strstr(r.head, "\r\nConnection: close\r\n") != NULL);
    EXPECT(cli_closed_within(&c, 2000));
    cli_close(&c);
    cli_open(&c, s.port);
    SEND(&c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT(strstr(r.head, "\r\nConnection: keep-alive\r\n") != NULL);
    SEND(&c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    cli_close(&c);
    srv_stop(&s);
}

TEST(admin_idle_timeout)
{
    struct admin_limits lim = {0, 300, 0};
    struct srv s;
    struct client c;
    struct resp r;
    long long t0;

    srv_start(&s, &lim);
    cli_open(&c, s.port);
    t0 = now_ms();
    EXPECT(cli_closed_within(&c, 3000));
    EXPECT(now_ms() - t0 >= 250);
    cli_close(&c);

    /* The idle time counts again after each response. */
    cli_open(&c, s.port);
    usleep(200 * 1000);
    SEND(&c, GET("/healthz"));
    EXPECT_EQ(0, cli_read(&c, &r));
    t0 = now_ms();
    EXPECT(cli_closed_within(&c, 3000));
    EXPECT(now_ms() - t0 >= 250);
    cli_close(&c);
    srv_stop(&s);
}

/* A request dribbling in must complete within request_timeout_ms of its first byte. */
TEST(admin_slow_request)
{
    struct admin_limits lim = {0, 5000, 300};
    struct srv s;
    struct client c;
    long long t0;

    srv_start(&s, &lim);
    cli_open(&c, s.port);
    t0 = now_ms();
    SEND(&c, "GET /metr");
    usleep(150 * 1000);
    SEND(&c, "ics HTTP/1.1\r\n");
    EXPECT(cli_closed_within(&c, 3000));
    EXPECT(now_ms() - t0 >= 250);
    EXPECT(now_ms() - t0 < 3000);
    cli_close(&c);
    srv_stop(&s);
}

TEST(admin_connection_cap)
{
    struct admin_limits lim = {2, 0, 0};
    struct srv s;
    struct client c[3];
    struct resp r;

    srv_start(&s, &lim);
    for (int i = 0; i < 2; i++) {
        cli_open(&c[i], s.port);
        SEND(&c[i], GET("/healthz"));
        EXPECT_EQ(0, cli_read(&c[i], &r));
        EXPECT_EQ(200, r.status);
    }
    cli_open(&c[2], s.port);
    EXPECT_EQ(0, cli_read(&c[2], &r));
    EXPECT_EQ(503, r.status);
    EXPECT(cli_closed_within(&c[2], 2000));
    cli_close(&c[2]);

    /* A slot frees up once the server has seen a connection end. */
    cli_close(&c[0]);
    for (int tries = 0; tries < 100; tries++) {
        cli_open(&c[2], s.port);
        SEND(&c[2], GET("/healthz"));
        r.status = 0;
        (void)cli_read(&c[2], &r);
        cli_close(&c[2]);
        if (r.status != 503)
            break;
        usleep(20 * 1000);
    }
    EXPECT_EQ(200, r.status);
    cli_close(&c[1]);
    srv_stop(&s);
}

TEST(admin_render_failure)
{
    struct srv s;
    struct client c;
    struct resp r;

    srv_start(&s, NULL);
    __atomic_store_n(&s.fail_status, 1, __ATOMIC_SEQ_CST);
    cli_open(&c, s.port);
    SEND(&c, GET("/status"));
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(500, r.status);
    SEND(&c, GET("/healthz")); /* the connection survives */
    EXPECT_EQ(0, cli_read(&c, &r));
    EXPECT_EQ(200, r.status);
    cli_close(&c);
    srv_stop(&s);
}

/* admin_stop() with connections open, one mid-request: everything closes, done runs. */
TEST(admin_stop_with_clients)
{
    struct srv s;
    struct client c[2];
    struct resp r;

    srv_start(&s, NULL);
    cli_open(&c[0], s.port);
    cli_open(&c[1], s.port);
    SEND(&c[0], GET("/healthz"));
    EXPECT_EQ(0, cli_read(&c[0], &r));
    SEND(&c[1], "GET /hea");
    usleep(50 * 1000);
    srv_stop(&s); /* checks done and that the loop has no handle left */
    EXPECT(cli_closed_within(&c[0], 2000));
    EXPECT(cli_closed_within(&c[1], 2000));
    cli_close(&c[0]);
    cli_close(&c[1]);
}

TEST(admin_bind_error)
{
    struct srv s;
    uv_loop_t loop;
    struct sockaddr_in sin;
    char err[256];

    srv_start(&s, NULL);
    uv_loop_init(&loop);
    uv_ip4_addr("127.0.0.1", s.port, &sin);
    EXPECT(admin_start(&loop, (const struct sockaddr *)&sin, &ops, NULL, err, sizeof(err)) == NULL);
    EXPECT(strstr(err, "127.0.0.1:") != NULL);
    EXPECT(strstr(err, "address already in use") != NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* frees the failed server */
    EXPECT_EQ(0, uv_loop_close(&loop));
    srv_stop(&s);
}

/* ---- the status subcommand ------------------------------------------------------------- */

static const char want_table[] =
    "ID  LISTENER  KIND  PEER                DOMAIN        REMOTE      TLS      CIPHER        "
    "                           AUTH  AGE    BYTES\n"
    "3   s2s       s2s   [2001:db8::1]:5269  example.test  other.test  TLSv1.2  TLS-ECDHE-ECDS"
    "A-WITH-AES-128-GCM-SHA256  pkix  1d01h  0/0\n"
    "7   c2s       c2s   192.0.2.1:40000     example.test  -           TLSv1.3  TLS1-3-AES-128"
    "-GCM-SHA256                none  1m15s  1.2K/555K\n";

/* Runs fn with stdout-like output and stderr captured into the two buffers. */
static int run_captured(const char *host_port, char *out, size_t outlen, char *errbuf,
                        size_t errlen)
{
    FILE *o = tmpfile(), *e = tmpfile();
    int saved = dup(2), rc;
    size_t n;

    fflush(stderr);
    dup2(fileno(e), 2);
    rc = status_cli_run(host_port, o);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(o);
    rewind(e);
    n = fread(out, 1, outlen - 1, o);
    out[n] = '\0';
    n = fread(errbuf, 1, errlen - 1, e);
    errbuf[n] = '\0';
    fclose(o);
    fclose(e);
    return rc;
}

TEST(status_cli_against_server)
{
    struct srv s;
    char hp[64], out[4096], err[512];

    srv_start(&s, NULL);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", s.port);
    EXPECT_EQ(0, run_captured(hp, out, sizeof(out), err, sizeof(err)));
    EXPECT_STR(want_table, out);
    EXPECT_STR("", err);

    __atomic_store_n(&s.fail_status, 1, __ATOMIC_SEQ_CST);
    EXPECT_EQ(1, run_captured(hp, out, sizeof(out), err, sizeof(err)));
    EXPECT_STR("", out);
    EXPECT(strstr(err, "HTTP status 500") != NULL);
    srv_stop(&s);
}

TEST(status_cli_refused)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char hp[64], out[256], err[512];

    /* A port that was just free: bound, never listened on. */
    uv_ip4_addr("127.0.0.1", 0, &sin);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", ntohs(sin.sin_port));
    EXPECT_EQ(1, run_captured(hp, out, sizeof(out), err, sizeof(err)));
    close(fd);
    EXPECT(strstr(err, "Connection refused") != NULL);
    EXPECT(strstr(err, "(is admin.listen set and the proxy running?)") != NULL);
    EXPECT_STR("", out);

    EXPECT_EQ(1, run_captured("localhost:9480", out, sizeof(out), err, sizeof(err)));
    EXPECT(strstr(err, "not an IP:PORT address") != NULL);
}

/* A server that answers anything with a fixed text, to feed the client bad responses. */
struct canned {
    int fd;
    const char *reply;
    pthread_t th;
};

static void *canned_main(void *arg)
{
    struct canned *k = arg;
    int c = accept(k->fd, NULL, NULL);
    char buf[1024];

    if (c < 0)
        return NULL;
    (void)recv(c, buf, sizeof(buf), 0);
    (void)send(c, k->reply, strlen(k->reply), MSG_NOSIGNAL);
    close(c);
    return NULL;
}

static int canned_start(struct canned *k, const char *reply)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    k->reply = reply;
    k->fd = socket(AF_INET, SOCK_STREAM, 0);
    uv_ip4_addr("127.0.0.1", 0, &sin);
    bind(k->fd, (struct sockaddr *)&sin, sizeof(sin));
    listen(k->fd, 1);
    getsockname(k->fd, (struct sockaddr *)&sin, &sl);
    pthread_create(&k->th, NULL, canned_main, k);
    return ntohs(sin.sin_port);
}

static void canned_stop(struct canned *k)
{
    pthread_join(k->th, NULL);
    close(k->fd);
}

TEST(status_cli_bad_responses)
{
    static const struct {
        const char *reply;
        const char *want_err;
    } rows[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[1,2]", "no \"sessions\" array"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"sessi", "response cut short"},
        {"HTTP/1.1 200 OK\r\n\r\n{\"sessions\":[1]}", "session 0 is not an object"},
        {"HTTP/1.1 200 OK\r\n\r\n{\"sessions\":[],}", "offset 15"},
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "HTTP status 404"},
        {"SSH-2.0-OpenSSH\r\n", ": "},
        {"", "response cut short"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct canned k;
        char hp[64], out[256], err[512];
        int port = canned_start(&k, rows[i].reply);

        snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
        EXPECT_EQ_MSG(1, run_captured(hp, out, sizeof(out), err, sizeof(err)), "row %zu", i);
        EXPECT_MSG(strstr(err, rows[i].want_err) != NULL, "row %zu: %s", i, err);
        EXPECT_MSG(strncmp(err, "xmpp-tls-proxy status: ", 23) == 0, "row %zu: %s", i, err);
        canned_stop(&k);
    }
}

TEST(status_cli_print_table)
{
    static const char doc[] =
        "{\"sessions\":[{\"id\":2,\"listener\":\"c\\u001b[2Jx\",\"kind\":\"c2s\","
        "\"peer\":\"\\u0085p\",\"domain\":\"d\\u00e9\",\"age\":3600,"
        "\"bytes\":{\"in\":1048576,\"out\":10240}},{\"id\":1,\"extra\":[1,{}]}],\"more\":1}";
    static const char want[] =
        "ID  LISTENER  KIND  PEER  DOMAIN  REMOTE  TLS  CIPHER  AUTH  AGE    BYTES\n"
        "1   -         -     -     -       -       -    -       -     -      -\n"
        "2   c?[2Jx    c2s   ?p    d\xc3\xa9      -       -    -       -     1h00m  1.0M/10K\n";
    char out[1024], err[128];
    FILE *f = tmpfile();
    size_t n;

    EXPECT_EQ(0, status_cli_print(doc, sizeof(doc) - 1, f, err, sizeof(err)));
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    EXPECT_STR(want, out);
    fclose(f);

    f = tmpfile();
    EXPECT_EQ(0, status_cli_print("{\"sessions\":[]}", 15, f, err, sizeof(err)));
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    EXPECT_STR("ID  LISTENER  KIND  PEER  DOMAIN  REMOTE  TLS  CIPHER  AUTH  AGE  BYTES\n", out);
    EXPECT_EQ(-EBADMSG, status_cli_print("{\"sessions\":{}}", 15, f, err, sizeof(err)));
    EXPECT_EQ(-EBADMSG, status_cli_print("nope", 4, f, err, sizeof(err)));
    fclose(f);
}

TEST_MAIN(admin_endpoints, admin_pipelined, admin_method_not_allowed, admin_oversized_request,
          admin_connection_close, admin_idle_timeout, admin_slow_request, admin_connection_cap,
          admin_render_failure, admin_stop_with_clients, admin_bind_error,
          status_cli_against_server, status_cli_refused, status_cli_bad_responses,
          status_cli_print_table)
