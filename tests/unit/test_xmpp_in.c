/* test_xmpp_in.c: the stream parser (proxy/xmpp_in.c) through its public API: header fields,
 * event offsets under every way of cutting a real jabberd2 stream into reads, pause and restart
 * at exact bytes, every rejection class, the size and depth limits, whitespace keepalives. */
#include "xmpp_in.h"

#include <errno.h>
#include <stdarg.h>

#include "bytes.h"
#include "err.h"
#include "test.h"

#define HDR_C_TAG                                                                                  \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "        \
    "to='example.test' version='1.0'>"
#define HDR_C        "<?xml version='1.0'?>" HDR_C_TAG
#define SASL_SUCCESS XMPP_NS_SASL "|success"
#define TLS_STARTTLS XMPP_NS_TLS "|starttls"

static const char *const record_features[] = {XMPP_NS_STREAMS "|features", NULL};

/* ---- an event recorder ---------------------------------------------------------------- */

struct rec {
    struct xmpp_in *in;
    struct bytes log;      /* one line per event, for comparing runs */
    const uint8_t *stream; /* every byte of the stream, offset 0 first, to check ranges */
    size_t stream_len;
    const char *pause_on; /* pause after the depth-1 element of this name */
    bool pause_on_open;   /* pause after the stream header */
    int fail_with;        /* return this from the element callback */
    int opens, elems, closes;
    uint64_t last_safe;
    struct xmpp_hdr hdr; /* the last header, its strings copied into hdr_buf */
    char hdr_buf[1024];
    char last_name[128];
    size_t last_nattrs, last_nchildren;
    bool last_attrs_truncated, last_children_truncated;
    char last_text[1024];
    struct xmpp_child last_children[XMPP_IN_MAX_CHILDREN];
    char child_names[XMPP_IN_MAX_CHILDREN][64];
    uint64_t last_start, last_end, close_end;
};

static void logf_(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct rec *r, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    bytes_append(&r->log, line, (size_t)n);
}

/* The log as a C string: a NUL kept after the data, outside its length. */
static const char *log_text(struct rec *r)
{
    size_t got;
    uint8_t *p = bytes_reserve(&r->log, 1, &got);

    if (p == NULL)
        return "";
    *p = '\0';
    return (const char *)bytes_data(&r->log);
}

/* The recorded range must be an element: '<' first, '>' last, inside the bytes fed. */
static void check_range(struct rec *r, uint64_t start, uint64_t end, const char *what)
{
    EXPECT_MSG(start < end, "%s [%" PRIu64 ",%" PRIu64 ")", what, start, end);
    if (r->stream == NULL || end > r->stream_len || start >= end) {
        EXPECT_MSG(r->stream == NULL, "%s end %" PRIu64 " beyond the stream", what, end);
        return;
    }
    EXPECT_MSG(r->stream[start] == '<', "%s starts with '%c'", what, r->stream[start]);
    EXPECT_MSG(r->stream[end - 1] == '>', "%s ends with '%c'", what, r->stream[end - 1]);
}

static char *keep(char **at, char *limit, const char *s)
{
    char *dst = *at;
    size_t n;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    if (n > (size_t)(limit - dst))
        return NULL;
    memcpy(dst, s, n);
    *at += n;
    return dst;
}

static int open_cb(void *arg, const struct xmpp_hdr *h)
{
    struct rec *r = arg;
    char *at = r->hdr_buf, *limit = r->hdr_buf + sizeof(r->hdr_buf);

    r->opens++;
    check_range(r, h->start, h->end, "header");
    EXPECT_EQ(h->end, xmpp_in_safe(r->in));
    r->hdr = *h;
    r->hdr.name = keep(&at, limit, h->name);
    r->hdr.default_ns = keep(&at, limit, h->default_ns);
    r->hdr.to = keep(&at, limit, h->to);
    r->hdr.from = keep(&at, limit, h->from);
    r->hdr.id = keep(&at, limit, h->id);
    r->hdr.version = keep(&at, limit, h->version);
    r->hdr.lang = keep(&at, limit, h->lang);
    logf_(r, "open %s ns=%s to=%s from=%s ver=%s lang=%s [%" PRIu64 ",%" PRIu64 ")\n", h->name,
          h->default_ns ? h->default_ns : "-", h->to ? h->to : "-", h->from ? h->from : "-",
          h->version ? h->version : "-", h->lang ? h->lang : "-", h->start, h->end);
    return r->pause_on_open ? XMPP_IN_PAUSE : 0;
}

static int elem_cb(void *arg, const struct xmpp_elem *e)
{
    struct rec *r = arg;

    r->elems++;
    check_range(r, e->start, e->end, e->name);
    EXPECT_EQ(e->end, xmpp_in_safe(r->in));
    EXPECT_MSG(e->nchildren <= XMPP_IN_MAX_CHILDREN, "%zu", e->nchildren);
    logf_(r, "elem %s [%" PRIu64 ",%" PRIu64 ") text=%s%s%s", e->name, e->start, e->end, e->text,
          e->attrs_truncated ? " attrs-truncated" : "",
          e->children_truncated ? " children-truncated" : "");
    for (size_t i = 0; i < e->nattrs; i++)
        logf_(r, " @%s=%s", e->attrs[i].name, e->attrs[i].value);
    for (size_t i = 0; i < e->nchildren; i++) {
        const struct xmpp_child *c = &e->children[i];

        check_range(r, c->start, c->end, c->name);
        EXPECT_MSG(c->start > e->start && c->end < e->end, "child %zu outside", i);
        EXPECT_MSG(i == 0 || c->start >= e->children[i - 1].end, "child %zu overlaps", i);
        logf_(r, " <%s [%" PRIu64 ",%" PRIu64 ")", c->name, c->start, c->end);
        snprintf(r->child_names[i], sizeof(r->child_names[i]), "%s", c->name);
        r->last_children[i] = *c;
        r->last_children[i].name = r->child_names[i];
    }
    logf_(r, "\n");
    snprintf(r->last_name, sizeof(r->last_name), "%s", e->name);
    snprintf(r->last_text, sizeof(r->last_text), "%s", e->text);
    r->last_nattrs = e->nattrs;
    r->last_nchildren = e->nchildren;
    r->last_attrs_truncated = e->attrs_truncated;
    r->last_children_truncated = e->children_truncated;
    r->last_start = e->start;
    r->last_end = e->end;
    if (r->fail_with != 0)
        return r->fail_with;
    if (r->pause_on != NULL && strcmp(e->name, r->pause_on) == 0)
        return XMPP_IN_PAUSE;
    return 0;
}

static int close_cb(void *arg, uint64_t end)
{
    struct rec *r = arg;

    r->closes++;
    r->close_end = end;
    EXPECT_EQ(end, xmpp_in_safe(r->in));
    if (r->stream != NULL) {
        EXPECT_MSG(end > 0 && end <= r->stream_len, "close at %" PRIu64, end);
        if (end > 0 && end <= r->stream_len)
            EXPECT_MSG(r->stream[end - 1] == '>', "close at %" PRIu64, end);
    }
    logf_(r, "close %" PRIu64 "\n", end);
    return 0;
}

static const struct xmpp_in_ops ops = {open_cb, elem_cb, close_cb};

static void rec_init(struct rec *r, const void *stream, size_t len, size_t max_stanza)
{
    memset(r, 0, sizeof(*r));
    r->stream = stream;
    r->stream_len = len;
    r->in = xmpp_in_new(&ops, r, max_stanza, record_features);
    EXPECT(r->in != NULL);
}

static void rec_cleanup(struct rec *r)
{
    xmpp_in_free(r->in);
    bytes_cleanup(&r->log);
}

/* Feeds data[0..len) in pieces cut at the given offsets. A pause resets the parser and goes on
 * with the byte after the event (a stream restart); with stop_at_pause it returns instead.
 * Returns the first code other than 0. */
static int feed_cuts(struct rec *r, const uint8_t *data, size_t len, const size_t *cuts,
                     size_t ncuts, bool stop_at_pause)
{
    size_t from = 0;

    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;

        while (from < to) {
            size_t used = 12345;
            int rc = xmpp_in_feed(r->in, data + from, to - from, &used);

            EXPECT_MSG(used <= to - from, "used %zu of %zu", used, to - from);
            if (rc == XMPP_IN_PAUSED && !stop_at_pause) {
                EXPECT_EQ(from + used, xmpp_in_offset(r->in));
                EXPECT_EQ(0, xmpp_in_reset(r->in));
                from += used;
                continue;
            }
            if (rc != 0)
                return rc;
            EXPECT_EQ(to - from, used);
            from = to;
        }
    }
    return 0;
}

static int feed_all(struct rec *r, const void *data, size_t len)
{
    return feed_cuts(r, data, len, NULL, 0, true);
}

static int feed_str(struct rec *r, const char *s)
{
    return feed_all(r, s, strlen(s));
}

/* Offset of the n-th (0-based) occurrence of needle in hay, or -1. */
static long find_nth(const uint8_t *hay, size_t len, const char *needle, int nth)
{
    size_t nl = strlen(needle);

    for (size_t i = 0; i + nl <= len; i++)
        if (memcmp(hay + i, needle, nl) == 0 && nth-- == 0)
            return (long)i;
    return -1;
}

/* ---- stream headers ------------------------------------------------------------------- */

static const struct {
    const char *in;
    const char *name, *default_ns, *to, *from, *id, *version, *lang;
    size_t start; /* the header's start tag begins here; it ends at strlen(in) */
} headers[] = {
    {HDR_C, XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "example.test", NULL, NULL, "1.0", NULL, 21},
    /* jabberd2's outbound s2s header: no to, from or version (design.md §5) */
    {"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
     "xmlns='jabber:server' xmlns:db='jabber:server:dialback'>",
     XMPP_NS_STREAMS "|stream", XMPP_NS_SERVER, NULL, NULL, NULL, NULL, NULL, 21},
    /* Prosody's answer: every attribute, xml:lang in its namespace */
    {"<?xml version='1.0'?><stream:stream version='1.0' xmlns='jabber:client' "
     "xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' id='429efa98' "
     "from='example.test'>",
     XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, NULL, "example.test", "429efa98", "1.0", "en", 21},
    /* the stream prefix bound to another namespace: reported, the caller refuses it */
    {"<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client' to='a'>", "urn:wrong|stream",
     XMPP_NS_CLIENT, "a", NULL, NULL, NULL, NULL, 0},
    /* no prefix at all: the default namespace is the streams one */
    {"<stream xmlns='http://etherx.jabber.org/streams' version='1.0'>", XMPP_NS_STREAMS "|stream",
     XMPP_NS_STREAMS, NULL, NULL, NULL, "1.0", NULL, 0},
    /* no default namespace; a root in no namespace; a pre-1.0 stream (no version) */
    {"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='a'>",
     XMPP_NS_STREAMS "|stream", NULL, "a", NULL, NULL, NULL, NULL, 0},
    {"<stream to='a'>", "stream", NULL, "a", NULL, NULL, NULL, NULL, 0},
    /* references are decoded; a prefixed 'to' is another attribute */
    {"\n <stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:x' "
     "x:to='evil' to='a&amp;b&#x41;' version=\"1.0\">",
     XMPP_NS_STREAMS "|stream", NULL, "a&bA", NULL, NULL, "1.0", NULL, 2},
    /* encoding= cannot switch away from UTF-8: the é below is UTF-8, not two Latin-1 bytes */
    {"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream "
     "xmlns:stream='http://etherx.jabber.org/streams' to='caf\xc3\xa9.example'>",
     XMPP_NS_STREAMS "|stream", NULL, "caf\xc3\xa9.example", NULL, NULL, NULL, NULL, 43},
    /* a UTF-8 byte order mark is allowed before the declaration */
    {"\xef\xbb\xbf<?xml version='1.0'?><stream:stream "
     "xmlns:stream='http://etherx.jabber.org/streams'>",
     XMPP_NS_STREAMS "|stream", NULL, NULL, NULL, NULL, NULL, NULL, 24},
};

TEST(header_fields)
{
    for (size_t i = 0; i < ARRAY_SIZE(headers); i++) {
        struct rec r;
        size_t len = strlen(headers[i].in);

        rec_init(&r, headers[i].in, len, 4096);
        EXPECT_EQ_MSG(0, feed_all(&r, headers[i].in, len), "row %zu", i);
        EXPECT_EQ_MSG(1, r.opens, "row %zu", i);
        if (r.opens == 1) {
            EXPECT_STR_MSG(headers[i].name, r.hdr.name, "row %zu", i);
            EXPECT_STR_MSG(headers[i].default_ns, r.hdr.default_ns, "row %zu", i);
            EXPECT_STR_MSG(headers[i].to, r.hdr.to, "row %zu", i);
            EXPECT_STR_MSG(headers[i].from, r.hdr.from, "row %zu", i);
            EXPECT_STR_MSG(headers[i].id, r.hdr.id, "row %zu", i);
            EXPECT_STR_MSG(headers[i].version, r.hdr.version, "row %zu", i);
            EXPECT_STR_MSG(headers[i].lang, r.hdr.lang, "row %zu", i);
            EXPECT_EQ_MSG(headers[i].start, r.hdr.start, "row %zu", i);
            EXPECT_EQ_MSG(len, r.hdr.end, "row %zu", i);
        }
        EXPECT_EQ_MSG(len, xmpp_in_safe(r.in), "row %zu", i);
        EXPECT_EQ_MSG(len, xmpp_in_offset(r.in), "row %zu", i);
        rec_cleanup(&r);
    }
}

/* Before its '>' the header is not reported, and nothing is safe yet. */
TEST(header_pending)
{
    struct rec r;
    const char *hdr = HDR_C;
    size_t len = strlen(hdr);

    rec_init(&r, hdr, len, 4096);
    EXPECT_EQ(0, feed_all(&r, hdr, len - 1));
    EXPECT_EQ(0, r.opens);
    EXPECT_EQ(0, xmpp_in_safe(r.in));
    EXPECT_EQ(len - 1, xmpp_in_offset(r.in));
    EXPECT_EQ(0, feed_all(&r, hdr + len - 1, 1));
    EXPECT_EQ(1, r.opens);
    EXPECT_EQ(len, xmpp_in_safe(r.in));
    rec_cleanup(&r);
}

/* ---- the same events however the stream is cut -------------------------------------- */

static const char *const server_files[] = {
    "jabberd2-c2s-server-stream.xml", /* with a restart after <success/> */
    "jabberd2-c2s-client-stream.xml", /* the client side of the same session */
};

/* The events of one feed are the reference; every cut into two feeds must give the same
 * lines, offsets included. The restart after <success/> is part of the run. */
TEST(every_split_same_events)
{
    for (size_t f = 0; f < ARRAY_SIZE(server_files); f++) {
        size_t len;
        uint8_t *data = test_read_data(server_files[f], &len);
        struct rec ref;

        if (data == NULL)
            continue;
        rec_init(&ref, data, len, 65536);
        ref.pause_on = f == 0 ? SASL_SUCCESS : XMPP_NS_SASL "|auth";
        EXPECT_EQ(0, feed_cuts(&ref, data, len, NULL, 0, false));
        EXPECT_EQ_MSG(2, ref.opens, "%s", server_files[f]);
        EXPECT_EQ_MSG(1, ref.closes, "%s", server_files[f]);
        EXPECT_EQ(len, ref.close_end);
        for (size_t cut = 0; cut <= len; cut++) {
            struct rec r;

            rec_init(&r, data, len, 65536);
            r.pause_on = ref.pause_on;
            EXPECT_EQ_MSG(0, feed_cuts(&r, data, len, &cut, 1, false), "cut %zu", cut);
            EXPECT_MEM(bytes_data(&ref.log), bytes_len(&ref.log), bytes_data(&r.log),
                       bytes_len(&r.log));
            EXPECT_EQ_MSG(len, xmpp_in_offset(r.in), "cut %zu", cut);
            EXPECT_EQ_MSG(len, xmpp_in_safe(r.in), "cut %zu", cut);
            rec_cleanup(&r);
        }
        rec_cleanup(&ref);
        free(data);
    }
}

TEST(byte_by_byte)
{
    const char *files[] = {"jabberd2-c2s-server-stream.xml", "prosody-c2s-post.xml",
                           "jabberd2-c2s-tls-zlib-pre.xml"};

    for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
        size_t len;
        uint8_t *data = test_read_data(files[f], &len);
        size_t *cuts;
        struct rec ref, r;

        if (data == NULL)
            continue;
        cuts = malloc(len * sizeof(*cuts));
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        rec_init(&ref, data, len, 65536);
        rec_init(&r, data, len, 65536);
        ref.pause_on = r.pause_on = SASL_SUCCESS;
        EXPECT_EQ(0, feed_cuts(&ref, data, len, NULL, 0, false));
        EXPECT_EQ(0, feed_cuts(&r, data, len, cuts, len, false));
        EXPECT(r.elems >= 1);
        EXPECT_MEM(bytes_data(&ref.log), bytes_len(&ref.log), bytes_data(&r.log),
                   bytes_len(&r.log));
        rec_cleanup(&ref);
        rec_cleanup(&r);
        free(cuts);
        free(data);
    }
}

/* The event offsets match the byte positions found by plain string search. */
TEST(offsets_real_stream)
{
    size_t len;
    uint8_t *d = test_read_data("jabberd2-c2s-server-stream.xml", &len);
    struct rec r;
    const char *lines;

    if (d == NULL)
        return;
    rec_init(&r, d, len, 65536);
    r.pause_on = SASL_SUCCESS;
    EXPECT_EQ(0, feed_cuts(&r, d, len, NULL, 0, false));
    lines = log_text(&r);
    {
        long h1 = find_nth(d, len, "<stream:stream", 0), f1 = find_nth(d, len, "<stream:f", 0);
        long f1e = find_nth(d, len, "</stream:features>", 0) + 18;
        long s = find_nth(d, len, "<success", 0), se = find_nth(d, len, "</success>", 0) + 10;
        long h2 = find_nth(d, len, "<stream:stream", 1), f2 = find_nth(d, len, "<stream:f", 1);
        long f2e = find_nth(d, len, "</stream:features>", 1) + 18;
        char want[256];

        snprintf(want, sizeof(want), "[%ld,%ld)\n", h1, f1);
        EXPECT_MSG(strstr(lines, want) != NULL, "%s not in\n%s", want, lines);
        snprintf(want, sizeof(want), "elem " XMPP_NS_STREAMS "|features [%ld,%ld)", f1, f1e);
        EXPECT_MSG(strstr(lines, want) != NULL, "%s not in\n%s", want, lines);
        snprintf(want, sizeof(want), "elem " SASL_SUCCESS " [%ld,%ld)", s, se);
        EXPECT_MSG(strstr(lines, want) != NULL, "%s not in\n%s", want, lines);
        snprintf(want, sizeof(want), "[%ld,%ld)\n", h2, f2);
        EXPECT_MSG(strstr(lines, want) != NULL, "%s not in\n%s", want, lines);
        snprintf(want, sizeof(want), "elem " XMPP_NS_STREAMS "|features [%ld,%ld)", f2, f2e);
        EXPECT_MSG(strstr(lines, want) != NULL, "%s not in\n%s", want, lines);
        /* jabberd2's post-auth <ack:ack/> uses a prefix declared on the stream header */
        EXPECT_MSG(strstr(lines, " <http://www.xmpp.org/extensions/xep-0198.html#ns|ack [") != NULL,
                   "%s", lines);
        /* the <success/> restart: the second header is a fresh document */
        EXPECT_EQ(se, h2 - 21); /* just its XML declaration in between */
    }
    rec_cleanup(&r);
    free(d);
}

/* ---- pause: STARTTLS and restarts ----------------------------------------------------- */

static const char *const injections[] = {
    /* CVE-2011-0411 class: a command pipelined after <starttls/> in the same read */
    "<iq type='set' id='x'><query xmlns='jabber:iq:auth'><username>a</username></query></iq>",
    /* what would be an error if parsed: never looked at */
    "<<<&&&\x01\xff</stream:stream>",
    "\x16\x03\x01\x02\x31\x01\x02\x03\xfc\x03\x03", /* a TLS ClientHello sent early */
};

static const char *const starttls_forms[] = {
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>",
    "<tls:starttls xmlns:tls='urn:ietf:params:xml:ns:xmpp-tls'/>",
};

TEST(pause_starttls_injection)
{
    for (size_t s = 0; s < ARRAY_SIZE(starttls_forms); s++)
        for (size_t i = 0; i < ARRAY_SIZE(injections); i++) {
            char buf[1024];
            struct rec r;
            size_t used = 0, hl = strlen(HDR_C), sl = strlen(starttls_forms[s]);
            int n = snprintf(buf, sizeof(buf), "%s %s%s", HDR_C, starttls_forms[s], injections[i]);
            int rc;

            rec_init(&r, buf, (size_t)n, 4096);
            r.pause_on = TLS_STARTTLS;
            rc = xmpp_in_feed(r.in, buf, (size_t)n, &used);
            EXPECT_EQ_MSG(XMPP_IN_PAUSED, rc, "form %zu injection %zu", s, i);
            EXPECT_EQ_MSG(hl + 1 + sl, used, "form %zu injection %zu", s, i);
            EXPECT_EQ(hl + 1 + sl, xmpp_in_offset(r.in));
            EXPECT_EQ(hl + 1 + sl, xmpp_in_safe(r.in));
            EXPECT_EQ(1, r.elems);
            EXPECT_STR(TLS_STARTTLS, r.last_name);
            /* a paused parser only resets or frees */
            EXPECT_EQ(-EINVAL, xmpp_in_feed(r.in, "<a/>", 4, &used));
            EXPECT_EQ(0, used);
            /* After TLS: a new stream at the next offset, the injected bytes dropped. */
            EXPECT_EQ(0, xmpp_in_reset(r.in));
            r.stream = NULL;
            EXPECT_EQ(0, feed_str(&r, HDR_C));
            EXPECT_EQ(2, r.opens);
            EXPECT_EQ(hl + 1 + sl + 21, r.hdr.start);
            EXPECT_EQ(hl + 1 + sl + hl, xmpp_in_safe(r.in));
            rec_cleanup(&r);
        }
}

/* Pausing on the header: *used ends at its '>'. */
TEST(pause_on_header)
{
    const char *s = HDR_C "<presence/>";
    struct rec r;
    size_t used;

    rec_init(&r, s, strlen(s), 4096);
    r.pause_on_open = true;
    EXPECT_EQ(XMPP_IN_PAUSED, xmpp_in_feed(r.in, s, strlen(s), &used));
    EXPECT_EQ(strlen(HDR_C), used);
    EXPECT_EQ(0, r.elems);
    rec_cleanup(&r);
}

/* SASL success and the restarted stream in one read: reset at the exact byte after
 * <success/>, offsets go on, and the new stream may start with an XML declaration. */
TEST(restart_after_success)
{
    static const char *const successes[] = {
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybmI=</success>",
    };

    for (size_t i = 0; i < ARRAY_SIZE(successes); i++) {
        char buf[2048];
        struct rec r;
        size_t used, hl = strlen(HDR_C), sl = strlen(successes[i]);
        int n =
            snprintf(buf, sizeof(buf), "%s%s%s<iq type='get' id='1'/>", HDR_C, successes[i], HDR_C);

        rec_init(&r, buf, (size_t)n, 4096);
        r.pause_on = SASL_SUCCESS;
        EXPECT_EQ(XMPP_IN_PAUSED, xmpp_in_feed(r.in, buf, (size_t)n, &used));
        EXPECT_EQ_MSG(hl + sl, used, "row %zu", i);
        EXPECT_EQ(0, xmpp_in_reset(r.in));
        EXPECT_EQ(hl + sl, xmpp_in_offset(r.in));
        EXPECT_EQ(hl + sl, xmpp_in_safe(r.in));
        EXPECT_EQ(0, feed_all(&r, buf + used, (size_t)n - used));
        EXPECT_EQ(2, r.opens);
        EXPECT_EQ(hl + sl + 21, r.hdr.start);
        EXPECT_EQ(hl + sl + hl, r.hdr.end);
        EXPECT_EQ(2, r.elems);
        EXPECT_STR(XMPP_NS_CLIENT "|iq", r.last_name);
        EXPECT_EQ(hl + sl + hl, r.last_start);
        EXPECT_EQ((size_t)n, r.last_end);
        rec_cleanup(&r);
    }
}

/* ---- rejections ------------------------------------------------------------------------ */

static char deep[2048], deep_empty[2048];

static const struct {
    const char *what, *in;
    size_t len; /* 0: strlen(in) */
    int err;
    int elems; /* depth-1 elements reported before the error (and none after it) */
} rejects[] = {
    {"unclosed attribute quote", HDR_C "<message to='a>hi</message>", 0, XTP_EXML, 0},
    {"mismatched end tag", HDR_C "<message></iq>", 0, XTP_EXML, 0},
    {"undefined entity", HDR_C "<message>&nbsp;</message>", 0, XTP_EXML, 0},
    {"XML declaration inside", HDR_C "<?xml version='1.0'?>", 0, XTP_EXML, 0},
    {"second root after close", HDR_C "</stream:stream><stream:stream>", 0, XTP_EXML, 0},
    {"empty element too deep", NULL, 0, XTP_EDEPTH, 0}, /* deep_empty */
    {"DOCTYPE", "<?xml version='1.0'?><!DOCTYPE stream:stream>" HDR_C, 0, XTP_ERESTRICTED, 0},
    /* entity declarations only occur inside a DOCTYPE: refused at the DOCTYPE already */
    {"entity declaration (billion laughs)",
     "<!DOCTYPE s [<!ENTITY a 'aaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]><s>&b;</s>", 0,
     XTP_ERESTRICTED, 0},
    {"processing instruction in prolog", "<?xml version='1.0'?><?pi data?>" HDR_C, 0,
     XTP_ERESTRICTED, 0},
    {"processing instruction in stanza", HDR_C "<message><?pi x?></message>", 0, XTP_ERESTRICTED,
     0},
    {"comment in prolog", "<!-- hi -->" HDR_C, 0, XTP_ERESTRICTED, 0},
    {"comment at depth 1", HDR_C "<!-- keepalive -->", 0, XTP_ERESTRICTED, 0},
    {"comment in stanza", HDR_C "<message><body>a<!-- x --></body></message>", 0, XTP_ERESTRICTED,
     0},
    {"undeclared element prefix", HDR_C "<db:result to='a' from='b'>k</db:result>", 0, XTP_EPREFIX,
     0},
    {"undeclared attribute prefix", HDR_C "<message x:to='a'/>", 0, XTP_EPREFIX, 0},
    {"undeclared prefix on the header", "<stream:stream xmlns='jabber:client' to='a'>", 0,
     XTP_EPREFIX, 0},
    {"invalid UTF-8 (lone continuation)", HDR_C "<message><body>\x80</body></message>", 0, XTP_EXML,
     0},
    {"invalid UTF-8 (overlong)", HDR_C "<message><body>\xc0\xaf</body></message>", 0, XTP_EXML, 0},
    {"invalid UTF-8 (surrogate)", HDR_C "<message><body>\xed\xa0\x80</body></message>", 0, XTP_EXML,
     0},
    {"invalid UTF-8 in a name", HDR_C "<m\xff/>", 0, XTP_EXML, 0},
    {"UTF-16LE byte order mark", "\xff\xfe<\0s\0>\0", 8, XTP_EXML, 0},
    {"UTF-16BE byte order mark", "\xfe\xff\0<\0s\0>", 8, XTP_EXML, 0},
    /* expat detects these even when told UTF-8 (found by fuzz_xmpp_in) */
    {"UTF-16LE without a byte order mark", "<\0s\0/\0>\0", 8, XTP_EXML, 0},
    {"UTF-16BE without a byte order mark", "\0<\0s\0/\0>", 8, XTP_EXML, 0},
    {"NUL byte in text", HDR_C "<message><body>a\0b</body></message>",
     sizeof(HDR_C "<message><body>a\0b</body></message>") - 1, XTP_EXML, 0},
    {"NUL byte between stanzas", HDR_C "\0", sizeof(HDR_C "\0") - 1, XTP_EXML, 0},
    {"control character reference", HDR_C "<message><body>&#1;</body></message>", 0, XTP_EXML, 0},
    {"text at depth 1", HDR_C "hello", 0, XTP_EBADFORMAT, 0},
    {"text at depth 1 after a stanza", HDR_C "<presence/> \nx", 0, XTP_EBADFORMAT, 1},
    {"character reference at depth 1", HDR_C "&#65;", 0, XTP_EBADFORMAT, 0},
    {"CDATA at depth 1", HDR_C "<![CDATA[x]]>", 0, XTP_EBADFORMAT, 0},
    {"nested stream header", HDR_C HDR_C_TAG, 0, XTP_EBADFORMAT, 0},
    {"nested stream, other prefix", HDR_C "<s:stream xmlns:s='http://etherx.jabber.org/streams'/>",
     0, XTP_EBADFORMAT, 0},
    {"too deep", deep, 0, XTP_EDEPTH, 0},
};

static int feed_rejected(const char *in, size_t len, size_t step, int *elems)
{
    struct rec r;
    int rc = 0;

    rec_init(&r, NULL, 0, 1 << 20);
    for (size_t at = 0; at < len && rc == 0; at += step) {
        size_t used, n = len - at < step ? len - at : step;

        rc = xmpp_in_feed(r.in, in + at, n, &used);
    }
    *elems = r.elems;
    if (rc != 0) {
        size_t used = 99;

        /* the parser is dead: the same code again, nothing consumed */
        EXPECT_EQ(rc, xmpp_in_feed(r.in, "<a/>", 4, &used));
        EXPECT_EQ(0, used);
    }
    rec_cleanup(&r);
    return rc;
}

TEST(rejections)
{
    size_t n = (size_t)snprintf(deep, sizeof(deep), "%s", HDR_C);

    for (int i = 0; i < XMPP_IN_MAX_DEPTH + 1; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "<a>");
    /* the same depth reached by an empty element, then more elements that must not count */
    n = (size_t)snprintf(deep_empty, sizeof(deep_empty), "%s", HDR_C);
    for (int i = 0; i < XMPP_IN_MAX_DEPTH; i++)
        n += (size_t)snprintf(deep_empty + n, sizeof(deep_empty) - n, "<a>");
    n += (size_t)snprintf(deep_empty + n, sizeof(deep_empty) - n, "<b/>");
    for (int i = 0; i < XMPP_IN_MAX_DEPTH; i++)
        n += (size_t)snprintf(deep_empty + n, sizeof(deep_empty) - n, "</a>");
    snprintf(deep_empty + n, sizeof(deep_empty) - n, "<c/>");
    for (size_t i = 0; i < ARRAY_SIZE(rejects); i++) {
        const char *in = rejects[i].in ? rejects[i].in : deep_empty;
        size_t len = rejects[i].len ? rejects[i].len : strlen(in);
        static const size_t steps[] = {(size_t)-1, 1, 7};

        for (size_t s = 0; s < ARRAY_SIZE(steps); s++) {
            int elems;
            int rc = feed_rejected(in, len, steps[s] == (size_t)-1 ? len : steps[s], &elems);

            EXPECT_STR_MSG(xtp_err_name(rejects[i].err), xtp_err_name(rc), "%s, step %zu",
                           rejects[i].what, steps[s]);
            EXPECT_EQ_MSG(rejects[i].elems, elems, "%s, step %zu", rejects[i].what, steps[s]);
        }
    }
}

/* The deepest nesting allowed passes; one more level fails. Levels count from the stream
 * element (level 0) down, so XMPP_IN_MAX_DEPTH levels below it are fine. */
TEST(depth_limit)
{
    for (int extra = 0; extra <= 1; extra++) {
        struct bytes b = BYTES_INIT;
        int levels = XMPP_IN_MAX_DEPTH + extra;
        struct rec r;

        bytes_append(&b, HDR_C, strlen(HDR_C));
        for (int i = 0; i < levels; i++)
            bytes_append(&b, "<a>", 3);
        for (int i = 0; i < levels; i++)
            bytes_append(&b, "</a>", 4);
        rec_init(&r, bytes_data(&b), bytes_len(&b), 1 << 20);
        EXPECT_EQ_MSG(extra ? XTP_EDEPTH : 0, feed_all(&r, bytes_data(&b), bytes_len(&b)),
                      "levels %d", levels);
        EXPECT_EQ_MSG(extra ? 0 : 1, r.elems, "levels %d", levels);
        rec_cleanup(&r);
        bytes_cleanup(&b);
    }
}

/* ---- the size limit -------------------------------------------------------------------- */

/* An element of exactly max_stanza bytes passes, one byte more fails, wherever the reads
 * are cut: the limit is checked on complete elements and on bytes fed. */
TEST(too_big_boundary)
{
    enum { MAX = 300 };

    for (int extra = 0; extra <= 1; extra++) {
        char buf[1024];
        size_t hl = strlen(HDR_C), n;
        char body[MAX];
        size_t fixed = strlen("<message><body></body></message>");

        memset(body, 'x', sizeof(body));
        n = (size_t)snprintf(buf, sizeof(buf), "%s<message><body>%.*s</body></message>", HDR_C,
                             (int)(MAX - fixed + (size_t)extra), body);
        EXPECT_EQ(hl + MAX + (size_t)extra, n);
        for (size_t cut = hl; cut <= n; cut++) {
            struct rec r;
            int rc;

            rec_init(&r, buf, n, MAX);
            rc = feed_cuts(&r, (const uint8_t *)buf, n, &cut, 1, true);
            EXPECT_EQ_MSG(extra ? XTP_ETOOBIG : 0, rc, "cut %zu", cut);
            EXPECT_EQ_MSG(extra ? 0 : 1, r.elems, "cut %zu", cut);
            rec_cleanup(&r);
        }
    }
}

/* expat reports nothing while a tag is open; the limit still holds on bytes fed, to the
 * byte, whether they come at once or one at a time. */
TEST(too_big_pending_tag)
{
    enum { MAX = 1000 };
    size_t hl = strlen(HDR_C);
    size_t len = hl + 5000;
    char *buf = malloc(len);

    memcpy(buf, HDR_C, hl);
    memcpy(buf + hl, "<message to='", 13);
    memset(buf + hl + 13, 'a', len - hl - 13);
    {
        struct rec r;
        size_t used;

        rec_init(&r, buf, len, MAX);
        EXPECT_EQ(XTP_ETOOBIG, xmpp_in_feed(r.in, buf, len, &used));
        EXPECT_EQ(0, r.elems);
        EXPECT(used <= len);
        rec_cleanup(&r);
    }
    {
        struct rec r;
        size_t used, at;
        int rc = 0;

        rec_init(&r, buf, len, MAX);
        for (at = 0; at < len && rc == 0; at++)
            rc = xmpp_in_feed(r.in, buf + at, 1, &used);
        EXPECT_EQ(XTP_ETOOBIG, rc);
        EXPECT_EQ(hl + MAX + 1, at); /* the first byte past the limit */
        rec_cleanup(&r);
    }
    {
        /* One huge read: the parser stops taking bytes soon after the limit (it feeds expat
         * in slices of at most 4096 bytes), instead of buffering the whole read in expat. */
        size_t big = 1 << 20;
        char *huge = malloc(big);
        struct rec r;
        size_t used;

        memcpy(huge, buf, hl + 13);
        memset(huge + hl + 13, 'a', big - hl - 13);
        rec_init(&r, NULL, 0, MAX);
        EXPECT_EQ(XTP_ETOOBIG, xmpp_in_feed(r.in, huge, big, &used));
        EXPECT_MSG(used > hl + MAX && used <= hl + MAX + 4096, "used %zu", used);
        rec_cleanup(&r);
        free(huge);
    }
    {
        /* Whitespace before the header counts too: the prolog is not a complete unit. */
        struct rec r;
        char *ws = malloc(MAX + 1);
        size_t used;

        memset(ws, ' ', MAX + 1);
        rec_init(&r, ws, MAX + 1, MAX);
        EXPECT_EQ(0, xmpp_in_feed(r.in, ws, MAX, &used));
        EXPECT_EQ(XTP_ETOOBIG, xmpp_in_feed(r.in, ws + MAX, 1, &used));
        rec_cleanup(&r);
        free(ws);
    }
    free(buf);
}

/* The stream header and the closing tag are units too. */
TEST(too_big_header_and_close)
{
    static char big_hdr[1200], big_close[1200], long_ns[6000];
    size_t n = (size_t)snprintf(big_hdr, sizeof(big_hdr), "%s", HDR_C);

    big_hdr[n - 1] = ' '; /* the header's '>' becomes whitespace inside the tag */
    while (n < sizeof(big_hdr) - 2)
        big_hdr[n++] = ' ';
    big_hdr[n] = '>';
    n = (size_t)snprintf(big_close, sizeof(big_close), "%s</stream:stream", HDR_C);
    while (n < sizeof(big_close) - 2)
        big_close[n++] = '\n';
    big_close[n] = '>';
    n = (size_t)snprintf(long_ns, sizeof(long_ns), "<stream xmlns='urn:");
    while (n < sizeof(long_ns) - 4)
        long_ns[n++] = 'x';
    memcpy(long_ns + n, "'/>", 3);
    {
        static const struct {
            const char *in;
            size_t max;
            int rc, opens, closes;
        } rows[] = {
            {big_hdr, 1198, XTP_ETOOBIG, 0, 0}, /* 1199 bytes */
            {big_hdr, 1199, 0, 1, 0},
            {big_close, 1000, XTP_ETOOBIG, 1, 0},
            {big_close, 1100, 0, 1, 1},
            /* a default namespace longer than the parser keeps: no namespace we serve */
            {long_ns, 1 << 20, XTP_ENAMESPACE, 0, 0},
        };

        for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
            struct rec r;

            rec_init(&r, rows[i].in, strlen(rows[i].in), rows[i].max);
            EXPECT_EQ_MSG(rows[i].rc, feed_str(&r, rows[i].in), "row %zu", i);
            EXPECT_EQ_MSG(rows[i].opens, r.opens, "row %zu", i);
            EXPECT_EQ_MSG(rows[i].closes, r.closes, "row %zu", i);
            rec_cleanup(&r);
        }
    }
}

/* ---- whitespace, empty elements, children, attributes, text ----------------------------- */

TEST(whitespace_keepalive)
{
    static const struct {
        const char *feed;
        bool advances; /* safe moves to the end of this feed */
    } steps[] = {
        {" ", true},     {"\n", true},     {"\t \n", true},  {"\r", false}, /* expat keeps a
                                                                               trailing CR until it
                                                                               sees the next byte
                                                                               (CRLF) */
        {"\n", true},    {"<pres", false}, {"ence/>", true}, {"  ", true},  {"<iq>", false},
        {" ", false}, /* inside a stanza: not a keepalive */
        {"</iq>", true},
    };
    struct rec r;
    size_t hl = strlen(HDR_C);
    uint64_t safe = hl;

    rec_init(&r, NULL, 0, 200);
    EXPECT_EQ(0, feed_str(&r, HDR_C));
    EXPECT_EQ(hl, xmpp_in_safe(r.in));
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        EXPECT_EQ_MSG(0, feed_str(&r, steps[i].feed), "step %zu", i);
        if (steps[i].advances)
            safe = xmpp_in_offset(r.in);
        EXPECT_EQ_MSG(safe, xmpp_in_safe(r.in), "step %zu", i);
    }
    /* Keepalives never add up to a stanza: 1000 spaces under a limit of 200. */
    for (int i = 0; i < 1000; i++)
        EXPECT_EQ(0, feed_str(&r, " "));
    EXPECT_EQ(xmpp_in_offset(r.in), xmpp_in_safe(r.in));
    EXPECT_EQ(2, r.elems);
    rec_cleanup(&r);
}

TEST(empty_element_offsets)
{
    static const char *const elems[] = {
        "<a/>",
        "<b x='1'/>",
        "<c></c>",
        "<d  />",
        "<e\n/>",
        "<f><g/></f>",
        "<h><i/><j></j><k a='&amp;'/></h>",
    };

    for (size_t i = 0; i < ARRAY_SIZE(elems); i++) {
        char buf[512];
        size_t hl = strlen(HDR_C);
        int n = snprintf(buf, sizeof(buf), "%s%s%s", HDR_C, elems[i], elems[i]);
        struct rec r;

        rec_init(&r, buf, (size_t)n, 4096);
        EXPECT_EQ(0, feed_all(&r, buf, (size_t)n));
        EXPECT_EQ_MSG(2, r.elems, "%s", elems[i]);
        EXPECT_EQ_MSG(hl + strlen(elems[i]), r.last_start, "%s", elems[i]);
        EXPECT_EQ_MSG((uint64_t)n, r.last_end, "%s", elems[i]);
        rec_cleanup(&r);
    }
    {
        /* children of a recorded element: empty ones too */
        const char *s =
            HDR_C "<stream:features><x/><y a='1'></y><z><w/></z> <q\n/></stream:features>";
        struct rec r;
        const char *names[] = {"jabber:client|x", "jabber:client|y", "jabber:client|z",
                               "jabber:client|q"};
        const char *texts[] = {"<x/>", "<y a='1'></y>", "<z><w/></z>", "<q\n/>"};

        rec_init(&r, s, strlen(s), 4096);
        EXPECT_EQ(0, feed_str(&r, s));
        EXPECT_EQ(4, r.last_nchildren);
        for (size_t i = 0; i < 4 && i < r.last_nchildren; i++) {
            long at = find_nth((const uint8_t *)s, strlen(s), texts[i], 0);

            EXPECT_STR(names[i], r.last_children[i].name);
            EXPECT_EQ_MSG(at, r.last_children[i].start, "%s", texts[i]);
            EXPECT_EQ_MSG(at + (long)strlen(texts[i]), r.last_children[i].end, "%s", texts[i]);
        }
        rec_cleanup(&r);
    }
}

TEST(children_recorded_only_when_asked)
{
    const char *s = HDR_C "<message><body>x</body></message>"
                          "<stream:features><a/><b/></stream:features>";
    struct rec r;
    static const char *const none[] = {NULL};

    rec_init(&r, s, strlen(s), 4096);
    EXPECT_EQ(0, feed_str(&r, s));
    EXPECT_EQ(2, r.last_nchildren);
    EXPECT(strstr(log_text(&r), "|message [") != NULL);
    EXPECT(strstr(log_text(&r), "|body [") == NULL);
    rec_cleanup(&r);

    /* an empty list records nothing */
    memset(&r, 0, sizeof(r));
    r.in = xmpp_in_new(&ops, &r, 4096, none);
    EXPECT_EQ(0, feed_str(&r, s));
    EXPECT_EQ(0, r.last_nchildren);
    rec_cleanup(&r);
}

TEST(children_truncated)
{
    static const struct {
        int n;
        size_t name_len; /* local name length of each child */
        bool truncated;
        size_t recorded;
    } rows[] = {
        {XMPP_IN_MAX_CHILDREN, 1, false, XMPP_IN_MAX_CHILDREN},
        {XMPP_IN_MAX_CHILDREN + 1, 1, true, XMPP_IN_MAX_CHILDREN},
        {3, 900, true, 2}, /* names fill the parser's fixed name arena */
    };

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct bytes b = BYTES_INIT;
        char name[1024];
        struct rec r;

        memset(name, 'n', rows[i].name_len);
        name[rows[i].name_len] = '\0';
        bytes_append(&b, HDR_C "<stream:features>", strlen(HDR_C "<stream:features>"));
        for (int c = 0; c < rows[i].n; c++) {
            bytes_append(&b, "<", 1);
            bytes_append(&b, name, strlen(name));
            bytes_append(&b, "/>", 2);
        }
        bytes_append(&b, "</stream:features>", 18);
        rec_init(&r, bytes_data(&b), bytes_len(&b), 1 << 20);
        EXPECT_EQ(0, feed_all(&r, bytes_data(&b), bytes_len(&b)));
        EXPECT_EQ_MSG(rows[i].truncated, r.last_children_truncated, "row %zu", i);
        EXPECT_EQ_MSG(rows[i].recorded, r.last_nchildren, "row %zu", i);
        rec_cleanup(&r);
        bytes_cleanup(&b);
    }
}

TEST(attributes_and_text)
{
    static char long_value[5000], long_text[1100], utf8_text[1100];
    static const struct {
        const char *in;
        size_t nattrs;
        bool truncated;
        const char *text; /* NULL: not checked */
    } rows[] = {
        {"<message to='a@b/c' from='d@e' type='chat' xml:lang='en' id='1'><body>hi</body>"
         "</message>",
         5, false, ""},
        {"<db:result xmlns:db='jabber:server:dialback' to='a' from='b'>key&amp;1</db:result>", 2,
         false, "key&1"},
        {"<a a1='1' a2='2' a3='3' a4='4' a5='5' a6='6' a7='7' a8='8' a9='9'/>", 8, true, ""},
        {"<a to='x' big='" /* long_value */, 1, true, NULL},
        {"<a>x<b>not mine</b>y<![CDATA[<z>]]></a>", 0, false, "xy<z>"},
    };
    char buf[8192];

    memset(long_value, 'v', sizeof(long_value) - 1);
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct rec r;
        int n;

        if (i == 3)
            n = snprintf(buf, sizeof(buf), "%s%s%s'/>", HDR_C, rows[i].in, long_value);
        else
            n = snprintf(buf, sizeof(buf), "%s%s", HDR_C, rows[i].in);
        rec_init(&r, buf, (size_t)n, 1 << 20);
        EXPECT_EQ_MSG(0, feed_all(&r, buf, (size_t)n), "row %zu", i);
        EXPECT_EQ_MSG(rows[i].nattrs, r.last_nattrs, "row %zu", i);
        EXPECT_EQ_MSG(rows[i].truncated, r.last_attrs_truncated, "row %zu", i);
        if (rows[i].text != NULL)
            EXPECT_STR_MSG(rows[i].text, r.last_text, "row %zu", i);
        rec_cleanup(&r);
    }
    {
        /* attribute lookup on the element itself, expanded names */
        const char *s = HDR_C "<message to='a@b' xml:lang='en' type='chat'/>";
        struct rec r;

        rec_init(&r, s, strlen(s), 4096);
        EXPECT_EQ(0, feed_str(&r, s));
        EXPECT(strstr(log_text(&r),
                      " @to=a@b @http://www.w3.org/XML/1998/namespace|lang=en @type=chat\n") !=
               NULL);
        rec_cleanup(&r);
    }
    {
        /* text: the first 1023 bytes, whole UTF-8 characters only, wherever the reads cut */
        size_t hl = strlen(HDR_C);
        int n;

        memset(long_text, 't', sizeof(long_text) - 1);
        /* "a" and then two-byte characters: "xa" leaves an odd 1021 bytes for them */
        utf8_text[0] = 'a';
        for (size_t i = 1; i + 2 < sizeof(utf8_text); i += 2)
            memcpy(utf8_text + i, "\xc3\xa9", 2);
        for (int u = 0; u < 2; u++) {
            const char *t = u ? utf8_text : long_text;

            n = snprintf(buf, sizeof(buf), "%s<message>x%s</message>", HDR_C, t);
            for (size_t cut = hl; cut < (size_t)n; cut += 97) {
                struct rec r;

                rec_init(&r, buf, (size_t)n, 1 << 20);
                EXPECT_EQ(0, feed_cuts(&r, (const uint8_t *)buf, (size_t)n, &cut, 1, true));
                EXPECT_EQ_MSG(u ? 1022 : 1023, strlen(r.last_text), "utf8 %d cut %zu", u, cut);
                EXPECT_EQ(0, memcmp(r.last_text + 1, t, strlen(r.last_text) - 1));
                rec_cleanup(&r);
            }
        }
    }
}

TEST(attr_get)
{
    static const struct xmpp_attr attrs[] = {{"to", "a"}, {"from", "b"}, {"x|to", "c"}};

    EXPECT_STR("a", xmpp_attr_get(attrs, 3, "to"));
    EXPECT_STR("b", xmpp_attr_get(attrs, 3, "from"));
    EXPECT_STR("c", xmpp_attr_get(attrs, 3, "x|to"));
    EXPECT_STR(NULL, xmpp_attr_get(attrs, 3, "type"));
    EXPECT_STR(NULL, xmpp_attr_get(attrs, 1, "from"));
    EXPECT_STR(NULL, xmpp_attr_get(NULL, 0, "to"));
}

/* ---- callbacks, stream end, errors ----------------------------------------------------- */

TEST(callback_error_stops)
{
    const char *s = HDR_C "<presence/><message/>";
    struct rec r;
    size_t used;

    rec_init(&r, s, strlen(s), 4096);
    r.fail_with = XTP_EPOLICY;
    EXPECT_EQ(XTP_EPOLICY, xmpp_in_feed(r.in, s, strlen(s), &used));
    EXPECT_EQ(1, r.elems);
    EXPECT_EQ(XTP_EPOLICY, xmpp_in_feed(r.in, "<a/>", 4, &used));
    rec_cleanup(&r);
}

TEST(stream_close)
{
    static const struct {
        const char *in;
        int elems;
    } rows[] = {
        {HDR_C "<presence/></stream:stream>", 1},
        {HDR_C "</stream:stream>  \n", 0}, /* whitespace after the end is fine */
        {"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", 0},
    };

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct rec r;
        const char *end = strstr(rows[i].in, "</stream:stream>");
        size_t close_at = end ? (size_t)(end - rows[i].in) + 16 : strlen(rows[i].in);

        rec_init(&r, end ? rows[i].in : NULL, strlen(rows[i].in), 4096);
        EXPECT_EQ_MSG(0, feed_str(&r, rows[i].in), "row %zu", i);
        EXPECT_EQ_MSG(1, r.opens, "row %zu", i);
        EXPECT_EQ_MSG(rows[i].elems, r.elems, "row %zu", i);
        EXPECT_EQ_MSG(1, r.closes, "row %zu", i);
        EXPECT_EQ_MSG(close_at, r.close_end, "row %zu", i);
        rec_cleanup(&r);
    }
}

TEST(error_position)
{
    const char *s = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>\n"
                    "<message>\n  <body>&bad;</body></message>";
    struct rec r;
    unsigned long line = 99, col = 99;

    rec_init(&r, NULL, 0, 4096);
    EXPECT_EQ(XTP_EXML, feed_str(&r, s));
    xmpp_in_error_pos(r.in, &line, &col);
    EXPECT_EQ(2, line); /* 0-based: the third line */
    EXPECT_EQ(8, col);  /* the '&' */
    rec_cleanup(&r);
}

TEST(free_null_and_reset_offsets)
{
    struct rec r;
    size_t hl = strlen(HDR_C);

    xmpp_in_free(NULL);
    rec_init(&r, NULL, 0, 4096);
    EXPECT_EQ(0, xmpp_in_offset(r.in));
    EXPECT_EQ(0, feed_str(&r, HDR_C "<presence/>"));
    /* a reset in the middle of a stream (after TLS) starts over at the current offset */
    EXPECT_EQ(0, xmpp_in_reset(r.in));
    EXPECT_EQ(hl + 11, xmpp_in_safe(r.in));
    EXPECT_EQ(0, feed_str(&r, HDR_C "<presence/>"));
    EXPECT_EQ(hl + 11 + 21, r.hdr.start);
    EXPECT_EQ(2 * (hl + 11), r.last_end);
    /* a reset also revives a parser that failed */
    EXPECT_EQ(XTP_EBADFORMAT, feed_str(&r, "junk"));
    EXPECT_EQ(0, xmpp_in_reset(r.in));
    EXPECT_EQ(0, feed_str(&r, HDR_C));
    EXPECT_EQ(3, r.opens);
    /* after a reset the encoding is still forced to UTF-8 */
    EXPECT_EQ(0, xmpp_in_reset(r.in));
    EXPECT_EQ(0, feed_str(&r, "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream "
                              "xmlns:stream='http://etherx.jabber.org/streams' "
                              "to='caf\xc3\xa9'>"));
    EXPECT_STR("caf\xc3\xa9", r.hdr.to);
    EXPECT_EQ(0, xmpp_in_reset(r.in));
    EXPECT_EQ(0, feed_all(&r, "<", 1)); /* the second byte decides, in the next read */
    EXPECT_EQ(XTP_EXML, feed_all(&r, "\0s\0/\0>\0", 7));
    rec_cleanup(&r);
}

/* The stream-header checks conn.c applies to every header a peer sends (RFC 6120 §4.7). */
static const struct {
    const char *name, *default_ns, *version;
    int ns_err;
    bool version_ok;
} header_rows[] = {
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "1.0", 0, true},
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "1.1", 0, true}, /* a later minor version */
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "2.0", 0, true}, /* we answer with 1.0 */
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, NULL, 0, false}, /* pre-1.0: no features */
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "0.9", 0, false},
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "1", 0, false}, /* not major.minor */
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "", 0, false},
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "1.x", 0, false},
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "-1.0", 0, false},
    {XMPP_NS_STREAMS "|stream", XMPP_NS_CLIENT, "99999999999999999999.0", 0, false},
    {XMPP_NS_STREAMS "|stream", XMPP_NS_SERVER, "1.0", XTP_ENAMESPACE, true}, /* s2s on c2s */
    {XMPP_NS_STREAMS "|stream", NULL, "1.0", XTP_ENAMESPACE, true}, /* no default namespace */
    {"http://etherx.jabber.org/streamsX|stream", XMPP_NS_CLIENT, "1.0", XTP_ENAMESPACE, true},
    {"urn:other|stream", XMPP_NS_CLIENT, "1.0", XTP_ENAMESPACE, true},
    {"stream", XMPP_NS_CLIENT, "1.0", XTP_ENAMESPACE, true}, /* no namespace at all */
    {XMPP_NS_STREAMS "|features", XMPP_NS_CLIENT, "1.0", XTP_EBADFORMAT, true},
    {"http://www.w3.org/1999/xhtml|html", XMPP_NS_CLIENT, "1.0", XTP_EBADFORMAT, true},
};

TEST(header_checks)
{
    for (size_t i = 0; i < ARRAY_SIZE(header_rows); i++) {
        struct xmpp_hdr h = {0};

        h.name = header_rows[i].name;
        h.default_ns = header_rows[i].default_ns;
        h.version = header_rows[i].version;
        EXPECT_EQ_MSG(header_rows[i].ns_err, xmpp_in_check_ns(&h, XMPP_NS_CLIENT), "row %zu", i);
        EXPECT_EQ_MSG(header_rows[i].version_ok, xmpp_in_version_ok(&h), "row %zu", i);
    }
}

TEST_MAIN(header_fields, header_pending, every_split_same_events, byte_by_byte, offsets_real_stream,
          pause_starttls_injection, pause_on_header, restart_after_success, rejections, depth_limit,
          too_big_boundary, too_big_pending_tag, too_big_header_and_close, whitespace_keepalive,
          empty_element_offsets, children_recorded_only_when_asked, children_truncated,
          attributes_and_text, attr_get, callback_error_stops, stream_close, error_position,
          free_null_and_reset_offsets, header_checks)
