/* Unit tests for http_req.c: the admin listener's request parser (llhttp plus bounds). */
#include "http_req.h"

#include <stdbool.h>

#include "test.h"

/* Feeds in pieces ending at cuts[] (then the rest), the way a connection does: after each
 * complete request, http_req_next() and the remaining bytes. Describes the outcome as
 * "METHOD PATH ka=K v=1.M;" per request and "E<status>" on an error. */
static void describe(const char *in, size_t len, const size_t *cuts, size_t ncuts, char *out,
                     size_t outlen)
{
    struct http_req *r = http_req_new();
    size_t start = 0, o = 0;

    out[0] = '\0';
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len, used;

        while (start < end) {
            enum http_req_result res = http_req_feed(r, in + start, end - start, &used);

            if (used > end - start) {
                o += (size_t)snprintf(out + o, outlen - o, "OVERRUN");
                goto done;
            }
            start += used;
            if (res == HTTP_REQ_MORE) {
                if (start != end)
                    o += (size_t)snprintf(out + o, outlen - o, "SHORT");
                break;
            }
            if (res == HTTP_REQ_ERROR) {
                o += (size_t)snprintf(out + o, outlen - o, "E%d", http_req_status(r));
                goto done;
            }
            o += (size_t)snprintf(out + o, outlen - o, "%s %s ka=%d v=1.%d;", http_req_method(r),
                                  http_req_path(r), http_req_keep_alive(r), http_req_minor(r));
            http_req_next(r);
        }
    }
done:
    http_req_free(r);
}

static void one_shot(const char *in, char *out, size_t outlen)
{
    describe(in, strlen(in), NULL, 0, out, outlen);
}

#define H "Host: x\r\n"

static const struct {
    const char *in;
    const char *want;
} rows[] = {
    {"GET /metrics HTTP/1.1\r\n" H "\r\n", "GET /metrics ka=1 v=1.1;"},
    {"GET /status?x=1&y#frag HTTP/1.1\r\n" H "\r\n", "GET /status ka=1 v=1.1;"},
    {"GET /a#f HTTP/1.1\r\n" H "\r\n", "GET /a ka=1 v=1.1;"},
    {"GET http://h:9480/healthz?q HTTP/1.1\r\n" H "\r\n", "GET /healthz ka=1 v=1.1;"},
    {"GET HTTPS://h HTTP/1.1\r\n" H "\r\n", "GET / ka=1 v=1.1;"},
    {"GET /a HTTP/1.1\r\n" H "Connection: close\r\n\r\n", "GET /a ka=0 v=1.1;"},
    {"GET /a HTTP/1.0\r\n\r\n", "GET /a ka=0 v=1.0;"},
    {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET /a ka=1 v=1.0;"},
    {"GET /a HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n", "GET /a ka=1 v=1.1;"},
    {"GET /a HTTP/1.1\r\nhOsT: x\r\n\r\n", "GET /a ka=1 v=1.1;"},
    /* Pipelining, with the CRLF some clients put between requests. */
    {"GET /a HTTP/1.1\r\n" H "\r\nGET /b HTTP/1.1\r\n" H "\r\n",
     "GET /a ka=1 v=1.1;GET /b ka=1 v=1.1;"},
    {"GET /a HTTP/1.1\r\n" H "\r\n\r\nGET /b HTTP/1.1\r\n" H "Connection: close\r\n\r\n",
     "GET /a ka=1 v=1.1;GET /b ka=0 v=1.1;"},
    /* An upgrade request is answered as a plain one; what follows is the next request. */
    {"GET /a HTTP/1.1\r\n" H "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"
     "GET /b HTTP/1.1\r\n" H "\r\n",
     "GET /a ka=1 v=1.1;GET /b ka=1 v=1.1;"},
    /* Errors. */
    {"POST /a HTTP/1.1\r\n" H "\r\n", "E405"},
    {"HEAD /a HTTP/1.1\r\n" H "\r\n", "E405"},
    {"PUT /a HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\nabc", "E405"},
    {"CONNECT h:1 HTTP/1.1\r\n" H "\r\n", "E405"},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "E405"},
    {"BREW /pot HTTP/1.1\r\n" H "\r\n", "E400"},
    {"GET /a HTTP/1.1\r\n" H "Content-Length: 1\r\n\r\nx", "E413"},
    {"GET /a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "E413"},
    {"GET /a HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", "E400"},
    {"GET /a HTTP/1.1\r\n" H "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "E400"},
    {"GET /a HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", "E400"},
    {"GET /a HTTP/1.1\r\n\r\n", "E400"},
    {"GET /a HTTP/1.1\r\n" H H "\r\n", "E400"},
    {"GET /a HTTP/1.0\r\n" H H "\r\n", "E400"},
    {"GET /a HTTP/1.1\n" H "\n", "E400"},
    {"GET /a HTTP/1.1\r\nBad Header: x\r\n\r\n", "E400"},
    {"GET /a HTTP/1.1\r\n" H " folded\r\n\r\n", "E400"},
    {"GET /a\x01 HTTP/1.1\r\n" H "\r\n", "E400"},
    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "E400"},
    {"GET /a HTTP/2.0\r\n\r\n", "E505"},
    {"GET /a HTTP/0.9\r\n\r\n", "E505"},
    {"GET /a HTTP/1.2\r\n" H "\r\n", "E505"},
    {"GET /a HTTP/3.0\r\n" H "\r\n", "E505"},
    {"GET /a HTTP/12.0\r\n" H "\r\n", "E400"},
    {"GET /a HTTQ/1.1\r\n" H "\r\n", "E400"},
    /* An error ends the connection: the second request is never parsed. */
    {"POST /a HTTP/1.1\r\n" H "\r\nGET /b HTTP/1.1\r\n" H "\r\n", "E405"},
    {"GET /a HTTP/1.1\r\n" H "\r\nDELETE /b HTTP/1.1\r\n" H "\r\n", "GET /a ka=1 v=1.1;E405"},
    /* Data after "Connection: close" is a protocol error, not a second request. */
    {"GET /a HTTP/1.1\r\n" H "Connection: close\r\n\r\nGET /b HTTP/1.1\r\n" H "\r\n",
     "GET /a ka=0 v=1.1;E400"},
};

TEST(http_req_table)
{
    char got[512];

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        one_shot(rows[i].in, got, sizeof(got));
        EXPECT_STR_MSG(rows[i].want, got, "row %zu", i);
    }
}

/* Every row gives the same outcome however the bytes are split: at every single position,
 * at every pair of positions, and one byte at a time. */
TEST(http_req_split_everywhere)
{
    char got[512];

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        size_t len = strlen(rows[i].in), cuts[2];
        size_t *each = malloc(len * sizeof(*each));

        for (size_t a = 0; a <= len; a++) {
            cuts[0] = a;
            describe(rows[i].in, len, cuts, 1, got, sizeof(got));
            EXPECT_STR_MSG(rows[i].want, got, "row %zu split at %zu", i, a);
            for (size_t b = a; b <= len; b++) {
                cuts[1] = b;
                describe(rows[i].in, len, cuts, 2, got, sizeof(got));
                if (strcmp(rows[i].want, got) != 0) {
                    EXPECT_STR_MSG(rows[i].want, got, "row %zu split at %zu,%zu", i, a, b);
                    break;
                }
            }
        }
        for (size_t k = 0; k < len; k++)
            each[k] = k + 1;
        describe(rows[i].in, len, each, len, got, sizeof(got));
        EXPECT_STR_MSG(rows[i].want, got, "row %zu byte by byte", i);
        free(each);
    }
}

TEST(http_req_incomplete_and_sticky)
{
    static const char req[] = "GET /a HTTP/1.1\r\n" H "\r\nGET /b";
    struct http_req *r = http_req_new();
    size_t used;

    EXPECT_EQ(HTTP_REQ_MORE, http_req_feed(r, req, 10, &used));
    EXPECT_EQ(10, used);
    EXPECT_STR("GET", http_req_method(r));
    EXPECT_STR("", http_req_path(r)); /* not before DONE */
    EXPECT_EQ(HTTP_REQ_DONE, http_req_feed(r, req + 10, sizeof(req) - 1 - 10, &used));
    EXPECT_EQ(strlen("GET /a HTTP/1.1\r\n" H "\r\n") - 10, used);
    /* Until http_req_next(), the request stays and nothing is consumed. */
    EXPECT_EQ(HTTP_REQ_DONE, http_req_feed(r, "GET", 3, &used));
    EXPECT_EQ(0, used);
    EXPECT_STR("/a", http_req_path(r));
    http_req_next(r);
    EXPECT_EQ(HTTP_REQ_MORE, http_req_feed(r, "GET /b", 6, &used));
    EXPECT_EQ(6, used);
    EXPECT_EQ(0, http_req_status(r));
    EXPECT_EQ(HTTP_REQ_ERROR, http_req_feed(r, " HTTP/1.1\r\nX\r\n", 14, &used));
    EXPECT_EQ(400, http_req_status(r));
    EXPECT(http_req_error(r)[0] != '\0');
    EXPECT(!http_req_keep_alive(r));
    EXPECT_EQ(HTTP_REQ_ERROR, http_req_feed(r, "GET / HTTP/1.1\r\n\r\n", 18, &used));
    EXPECT_EQ(0, used);
    http_req_free(r);
    http_req_free(NULL);
}

/* A request of "GET /" + padding: total bytes len, header section exactly as long. */
static char *sized_request(size_t len)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    char *s = malloc(len + 1);
    size_t pad = len - (sizeof(head) - 1) - 4;

    memcpy(s, head, sizeof(head) - 1);
    memset(s + sizeof(head) - 1, 'p', pad);
    memcpy(s + len - 4, "\r\n\r\n", 4);
    s[len] = '\0';
    return s;
}

TEST(http_req_head_limit_exact)
{
    char got[64];
    char *at = sized_request(HTTP_REQ_MAX_HEAD), *over = sized_request(HTTP_REQ_MAX_HEAD + 1);
    size_t cut = HTTP_REQ_MAX_HEAD - 2;

    one_shot(at, got, sizeof(got));
    EXPECT_STR("GET / ka=1 v=1.1;", got);
    one_shot(over, got, sizeof(got));
    EXPECT_STR("E431", got);
    describe(over, strlen(over), &cut, 1, got, sizeof(got));
    EXPECT_STR("E431", got);
    free(at);
    free(over);
}

TEST(http_req_header_count_limit)
{
    char buf[4096], got[64];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n" H);

    for (int i = 1; i < HTTP_REQ_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
    snprintf(buf + n, sizeof(buf) - n, "\r\n");
    one_shot(buf, got, sizeof(got));
    EXPECT_STR("GET / ka=1 v=1.1;", got); /* exactly 64 fields */
    snprintf(buf + n, sizeof(buf) - n, "X-last: v\r\n\r\n");
    one_shot(buf, got, sizeof(got));
    EXPECT_STR("E431", got);
}

TEST(http_req_url_limit)
{
    char *buf = malloc(HTTP_REQ_MAX_URL + 64), got[HTTP_REQ_MAX_URL + 64];

    /* A target of exactly HTTP_REQ_MAX_URL bytes, then one byte longer. */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'u', HTTP_REQ_MAX_URL - 1);
    snprintf(buf + 4 + HTTP_REQ_MAX_URL, 64, " HTTP/1.1\r\n" H "\r\n");
    one_shot(buf, got, sizeof(got));
    EXPECT(strncmp(got, "GET /uuu", 8) == 0);
    EXPECT_EQ(strlen("GET  ka=1 v=1.1;") + HTTP_REQ_MAX_URL, strlen(got));
    memset(buf + 5, 'u', HTTP_REQ_MAX_URL);
    snprintf(buf + 5 + HTTP_REQ_MAX_URL, 64, " HTTP/1.1\r\n" H "\r\n");
    one_shot(buf, got, sizeof(got));
    EXPECT_STR("E414", got);
    free(buf);
}

/* A target that never ends runs into the head limit inside the URL: 414, not 431. */
TEST(http_req_endless_target)
{
    struct http_req *r = http_req_new();
    char chunk[1024];
    size_t used;
    enum http_req_result res = HTTP_REQ_MORE;

    memset(chunk, 'a', sizeof(chunk));
    res = http_req_feed(r, "GET /", 5, &used);
    for (int i = 0; i < 20 && res == HTTP_REQ_MORE; i++)
        res = http_req_feed(r, chunk, sizeof(chunk), &used);
    EXPECT_EQ(HTTP_REQ_ERROR, res);
    EXPECT_EQ(414, http_req_status(r));
    http_req_free(r);
}

/* Many keep-alive requests on one parser: state must not leak from one to the next. */
TEST(http_req_many_requests)
{
    struct http_req *r = http_req_new();
    char buf[128];
    size_t used;
    int ok = 0;

    for (int i = 0; i < 1000; i++) {
        int n = snprintf(buf, sizeof(buf), "GET /r%d?q=%d HTTP/1.1\r\nHost: h\r\n\r\n", i, i);
        char want[32];

        snprintf(want, sizeof(want), "/r%d", i);
        if (http_req_feed(r, buf, (size_t)n, &used) != HTTP_REQ_DONE)
            break;
        if (used == (size_t)n && strcmp(http_req_path(r), want) == 0)
            ok++;
        http_req_next(r);
    }
    EXPECT_EQ(1000, ok);
    http_req_free(r);
}

TEST_MAIN(http_req_table, http_req_split_everywhere, http_req_incomplete_and_sticky,
          http_req_head_limit_exact, http_req_header_count_limit, http_req_url_limit,
          http_req_endless_target, http_req_many_requests)
