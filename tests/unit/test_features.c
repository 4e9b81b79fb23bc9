/* test_features.c: the <stream:features/> rewriter (proxy/features.c) on blocks captured from
 * jabberd2 2.7.0 and Prosody 0.12 (tests/unit/data/, see its README.md) and on synthetic ones:
 * <starttls/> and <compression/> go, <address/> is rewritten, every other byte stays. */
#include "features.h"

#include <errno.h>

#include "bytes.h"
#include "err.h"
#include "test.h"
#include "xmpp_in.h"

#define FEATURES  XMPP_NS_STREAMS "|features"
#define ADDR_OPEN "<address xmlns='http://affinix.com/jabber/address'>"
#define HDR                                                                                        \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' "                                             \
    "xmlns:tls='urn:ietf:params:xml:ns:xmpp-tls' from='example.test' version='1.0'>"

static const char *const record[] = {FEATURES, NULL};

/* Parses a server stream and rewrites each features element found in it. */
struct run {
    const uint8_t *data; /* the stream: offsets index it directly (no reset) */
    const char *peer;
    struct bytes out; /* rewritten features elements, one after the other */
    struct bytes hdr; /* the stream header's start tag, to parse the output again */
    int rc;           /* first features_rewrite() result other than 0 */
    int features;
    bool truncated;
};

static int open_cb(void *arg, const struct xmpp_hdr *h)
{
    struct run *r = arg;

    bytes_append(&r->hdr, r->data + h->start, (size_t)(h->end - h->start));
    return 0;
}

static int elem_cb(void *arg, const struct xmpp_elem *e)
{
    struct run *r = arg;
    int rc;

    if (strcmp(e->name, FEATURES) != 0)
        return 0;
    r->features++;
    r->truncated = e->children_truncated;
    rc = features_rewrite(e, r->data + e->start, r->peer, &r->out);
    if (rc != 0 && r->rc == 0)
        r->rc = rc;
    return 0;
}

static int close_cb(void *arg, uint64_t end)
{
    return 0;
}

static const struct xmpp_in_ops ops = {open_cb, elem_cb, close_cb};

static int run_stream(struct run *r, const uint8_t *data, size_t len, const char *peer)
{
    struct xmpp_in *in;
    size_t used;
    int rc;

    memset(r, 0, sizeof(*r));
    r->data = data;
    r->peer = peer;
    in = xmpp_in_new(&ops, r, 1 << 20, record);
    if (in == NULL)
        return -ENOMEM;
    rc = xmpp_in_feed(in, data, len, &used);
    xmpp_in_free(in);
    return rc;
}

static void run_cleanup(struct run *r)
{
    bytes_cleanup(&r->out);
    bytes_cleanup(&r->hdr);
}

/* The output must itself be a features element that our parser accepts under the same
 * stream header (prefixes declared there included), without the dropped children. */
struct reparse {
    int elems;
    size_t nchildren;
    bool dropped_seen;
};

static int re_open(void *arg, const struct xmpp_hdr *h)
{
    return 0;
}

static int re_elem(void *arg, const struct xmpp_elem *e)
{
    struct reparse *p = arg;

    p->elems++;
    p->nchildren = e->nchildren;
    for (size_t i = 0; i < e->nchildren; i++)
        if (strcmp(e->children[i].name, XMPP_NS_TLS "|starttls") == 0 ||
            strcmp(e->children[i].name, XMPP_NS_COMPRESS_FEATURE "|compression") == 0)
            p->dropped_seen = true;
    return 0;
}

static const struct xmpp_in_ops re_ops = {re_open, re_elem, close_cb};

static void expect_reparses(const struct run *r, const char *what)
{
    struct reparse p = {0, 0, false};
    struct xmpp_in *in = xmpp_in_new(&re_ops, &p, 1 << 20, record);
    size_t used;

    EXPECT_EQ_MSG(0, xmpp_in_feed(in, bytes_data(&r->hdr), bytes_len(&r->hdr), &used), "%s", what);
    EXPECT_EQ_MSG(0, xmpp_in_feed(in, bytes_data(&r->out), bytes_len(&r->out), &used), "%s", what);
    EXPECT_EQ_MSG(1, p.elems, "%s", what);
    EXPECT_MSG(!p.dropped_seen, "%s", what);
    xmpp_in_free(in);
}

/* Removes the one occurrence of cut from s (a C string, edited in place); fails the test
 * when cut does not occur exactly once. */
static void cut_once(char *s, const char *cut, const char *what)
{
    char *at = strstr(s, cut);

    EXPECT_MSG(at != NULL, "%s: [%s] not in the capture", what, cut);
    if (at == NULL)
        return;
    EXPECT_MSG(strstr(at + 1, cut) == NULL, "%s: [%s] twice", what, cut);
    memmove(at, at + strlen(cut), strlen(at + strlen(cut)) + 1);
}

/* ---- real blocks ------------------------------------------------------------------------ */

#define JD2_ADDR ADDR_OPEN "127.0.0.1</address>"
#define JD2_ZLIB                                                                                   \
    "<compression xmlns='http://jabber.org/features/compress'><method>zlib</method>"               \
    "</compression>"

static const struct {
    const char *file, *peer;
    const char *cuts[3]; /* exact bytes that must go, as found in the capture */
    const char *addr;    /* the new address text, when the old one must be replaced */
} captured[] = {
    {"jabberd2-c2s-pre.xml", "203.0.113.7", {NULL}, "203.0.113.7"},
    {"jabberd2-c2s-pre.xml", NULL, {NULL}, NULL}, /* no peer address: left as it is */
    {"jabberd2-c2s-post.xml", "203.0.113.7", {NULL}, NULL},
    {"jabberd2-c2s-tls-zlib-pre.xml",
     "2001:db8::1",
     {JD2_ZLIB, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>", NULL},
     "2001:db8::1"},
    {"jabberd2-c2s-tls-zlib-post.xml", "2001:db8::1", {JD2_ZLIB, NULL}, NULL},
    {"prosody-c2s-pre.xml",
     "203.0.113.7",
     {"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", NULL},
     NULL},
    {"prosody-c2s-post.xml",
     "203.0.113.7",
     {"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", NULL},
     NULL},
};

TEST(captured_blocks)
{
    for (size_t i = 0; i < ARRAY_SIZE(captured); i++) {
        size_t len;
        uint8_t *data = test_read_data(captured[i].file, &len);
        char *want, *start, *end;
        struct run r;

        if (data == NULL)
            continue;
        /* The expected output, by plain string surgery on the captured bytes. */
        start = strstr((char *)data, "<stream:features");
        end = strstr((char *)data, "</stream:features>");
        EXPECT_MSG(start != NULL && end != NULL, "%s", captured[i].file);
        if (start == NULL || end == NULL) {
            free(data);
            continue;
        }
        end += strlen("</stream:features>");
        size_t cap = (size_t)(end - start) + 256;

        want = calloc(1, cap);
        memcpy(want, start, (size_t)(end - start));
        for (size_t c = 0; captured[i].cuts[c] != NULL; c++)
            cut_once(want, captured[i].cuts[c], captured[i].file);
        if (captured[i].addr != NULL) {
            char *at = strstr(want, JD2_ADDR), tail[1024];

            EXPECT_MSG(at != NULL, "%s", captured[i].file);
            if (at != NULL) {
                snprintf(tail, sizeof(tail), "%s", at + strlen(JD2_ADDR));
                snprintf(at, cap - (size_t)(at - want), "%s%s</address>%s", ADDR_OPEN,
                         captured[i].addr, tail);
            }
        }

        EXPECT_EQ_MSG(0, run_stream(&r, data, len, captured[i].peer), "%s", captured[i].file);
        EXPECT_EQ_MSG(1, r.features, "%s", captured[i].file);
        EXPECT_EQ_MSG(0, r.rc, "%s", captured[i].file);
        EXPECT_MEM(want, strlen(want), bytes_data(&r.out), bytes_len(&r.out));
        EXPECT_MSG(
            memmem(bytes_data(&r.out), bytes_len(&r.out), XMPP_NS_TLS, strlen(XMPP_NS_TLS)) == NULL,
            "%s", captured[i].file);
        EXPECT_MSG(memmem(bytes_data(&r.out), bytes_len(&r.out), XMPP_NS_COMPRESS_FEATURE,
                          strlen(XMPP_NS_COMPRESS_FEATURE)) == NULL,
                   "%s", captured[i].file);
        expect_reparses(&r, captured[i].file);
        run_cleanup(&r);
        free(want);
        free(data);
    }
}

/* ---- synthetic blocks -------------------------------------------------------------------- */

static const struct {
    const char *what, *in, *peer, *want;
} synthetic[] = {
    {"children with their own prefixes, one declared on the header",
     "<stream:features><tls:starttls><tls:required/></tls:starttls>"
     "<c:compression xmlns:c='http://jabber.org/features/compress'><c:method>zlib</c:method>"
     "</c:compression><x:mechanisms xmlns:x='urn:ietf:params:xml:ns:xmpp-sasl'>"
     "<x:mechanism>PLAIN</x:mechanism></x:mechanisms>"
     "<a:address xmlns:a='http://affinix.com/jabber/address'>127.0.0.1</a:address>"
     "</stream:features>",
     "198.51.100.2",
     "<stream:features><x:mechanisms xmlns:x='urn:ietf:params:xml:ns:xmpp-sasl'>"
     "<x:mechanism>PLAIN</x:mechanism></x:mechanisms>" ADDR_OPEN
     "198.51.100.2</address></stream:features>"},
    {"features under another prefix, whitespace kept",
     "<f:features xmlns:f='http://etherx.jabber.org/streams'>\n  "
     "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\n  "
     "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\n</f:features>",
     NULL,
     "<f:features xmlns:f='http://etherx.jabber.org/streams'>\n  \n  "
     "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\n</f:features>"},
    {"features in the default namespace, children inheriting none of it",
     "<features xmlns='http://etherx.jabber.org/streams'><tls:starttls/><b xmlns='urn:b'/>"
     "</features>",
     NULL, "<features xmlns='http://etherx.jabber.org/streams'><b xmlns='urn:b'/></features>"},
    {"look-alikes stay: other namespaces, the compression protocol namespace, depth 3",
     "<stream:features><starttls xmlns='urn:example:not-tls'/>"
     "<compression xmlns='http://jabber.org/protocol/compress'/>"
     "<x xmlns='urn:x'><tls:starttls/><compression "
     "xmlns='http://jabber.org/features/compress'/></x>"
     "<address xmlns='urn:other'>10.0.0.1</address><tls:proceed/></stream:features>",
     "198.51.100.2",
     "<stream:features><starttls xmlns='urn:example:not-tls'/>"
     "<compression xmlns='http://jabber.org/protocol/compress'/>"
     "<x xmlns='urn:x'><tls:starttls/><compression "
     "xmlns='http://jabber.org/features/compress'/></x>"
     "<address xmlns='urn:other'>10.0.0.1</address><tls:proceed/></stream:features>"},
    {"peer address escaped; an empty <address/> replaced",
     "<stream:features><address xmlns='http://affinix.com/jabber/address'/></stream:features>",
     "a<b>&'\"",
     "<stream:features>" ADDR_OPEN "a&lt;b&gt;&amp;&apos;&quot;</address>"
     "</stream:features>"},
    {"nothing left but the element", "<stream:features><tls:starttls/></stream:features>", NULL,
     "<stream:features></stream:features>"},
    {"two starttls, adjacent", "<stream:features><tls:starttls/><tls:starttls/></stream:features>",
     NULL, "<stream:features></stream:features>"},
    {"an empty features element", "<stream:features/>", "198.51.100.2", "<stream:features/>"},
    {"references, CDATA and attributes kept as written",
     "<stream:features a='&amp;&#x41;' b=\"'\"><x xmlns='urn:x' y='&lt;'>&gt;&#65;"
     "<![CDATA[<tls:starttls/>]]></x><tls:starttls/></stream:features>",
     NULL,
     "<stream:features a='&amp;&#x41;' b=\"'\"><x xmlns='urn:x' y='&lt;'>&gt;&#65;"
     "<![CDATA[<tls:starttls/>]]></x></stream:features>"},
    {"multi-byte UTF-8 around the cuts",
     "<stream:features>\xc3\xa9<tls:starttls/>\xe2\x82\xac<v xmlns='urn:\xc3\xa9'/>"
     "</stream:features>",
     NULL, "<stream:features>\xc3\xa9\xe2\x82\xac<v xmlns='urn:\xc3\xa9'/></stream:features>"},
};

TEST(synthetic_blocks)
{
    for (size_t i = 0; i < ARRAY_SIZE(synthetic); i++) {
        char buf[4096];
        int n = snprintf(buf, sizeof(buf), "%s%s", HDR, synthetic[i].in);
        struct run r;

        EXPECT_EQ_MSG(0, run_stream(&r, (const uint8_t *)buf, (size_t)n, synthetic[i].peer), "%s",
                      synthetic[i].what);
        EXPECT_EQ_MSG(1, r.features, "%s", synthetic[i].what);
        EXPECT_EQ_MSG(0, r.rc, "%s", synthetic[i].what);
        EXPECT_MEM(synthetic[i].want, strlen(synthetic[i].want), bytes_data(&r.out),
                   bytes_len(&r.out));
        expect_reparses(&r, synthetic[i].what);
        run_cleanup(&r);
    }
}

/* XML 1.0 §2.4: cutting a child out joins the text around it; it must not spell "]]>". */
static const struct {
    const char *in;
    int rc;
    const char *want; /* when rc is 0 */
} joins[] = {
    {"<stream:features>]]<tls:starttls/>></stream:features>", XTP_EBADFORMAT, NULL},
    {"<stream:features>]<tls:starttls/>]><b xmlns='urn:b'/></stream:features>", XTP_EBADFORMAT,
     NULL},
    /* over two cuts in a row */
    {"<stream:features>]<tls:starttls/>]<tls:starttls/>></stream:features>", XTP_EBADFORMAT, NULL},
    {"<stream:features>]]<tls:starttls/><tls:starttls/>></stream:features>", XTP_EBADFORMAT, NULL},
    /* harmless neighbours */
    {"<stream:features>]]<tls:starttls/>&gt;</stream:features>", 0,
     "<stream:features>]]&gt;</stream:features>"},
    {"<stream:features><![CDATA[x]]><tls:starttls/>></stream:features>", 0,
     "<stream:features><![CDATA[x]]>></stream:features>"},
    {"<stream:features>]]<tls:starttls/> ></stream:features>", 0,
     "<stream:features>]] ></stream:features>"},
    {"<stream:features>]]<address xmlns='http://affinix.com/jabber/address'/>></stream:features>",
     0, "<stream:features>]]" ADDR_OPEN "x</address>></stream:features>"},
};

TEST(joins_never_spell_cdata_end)
{
    for (size_t i = 0; i < ARRAY_SIZE(joins); i++) {
        char buf[1024];
        int n = snprintf(buf, sizeof(buf), "%s%s", HDR, joins[i].in);
        struct run r;

        EXPECT_EQ_MSG(0, run_stream(&r, (const uint8_t *)buf, (size_t)n, "x"), "row %zu", i);
        EXPECT_EQ_MSG(joins[i].rc, r.rc, "row %zu", i);
        if (joins[i].rc == 0) {
            EXPECT_MEM(joins[i].want, strlen(joins[i].want), bytes_data(&r.out), bytes_len(&r.out));
            expect_reparses(&r, joins[i].in);
        } else {
            EXPECT_EQ_MSG(0, bytes_len(&r.out), "row %zu", i);
        }
        run_cleanup(&r);
    }
}

/* More children than the parser records: we cannot know what we missed, so we refuse. */
TEST(truncated_children)
{
    static const struct {
        int children;
        int rc;
    } rows[] = {
        {XMPP_IN_MAX_CHILDREN - 1, 0}, /* with the starttls: all recorded */
        {XMPP_IN_MAX_CHILDREN, XTP_EBADFORMAT},
        {XMPP_IN_MAX_CHILDREN + 40, XTP_EBADFORMAT},
    };

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct bytes in = BYTES_INIT;
        struct run r;
        int rc;

        bytes_append(&in, HDR "<stream:features>", strlen(HDR "<stream:features>"));
        for (int c = 0; c < rows[i].children; c++)
            bytes_append(&in, "<b xmlns='urn:b'/>", 18);
        /* the starttls comes last, past the children the parser can record */
        bytes_append(&in, "<tls:starttls/></stream:features>", 33);
        rc = run_stream(&r, bytes_data(&in), bytes_len(&in), NULL);
        EXPECT_EQ_MSG(0, rc, "row %zu", i);
        EXPECT_EQ_MSG(rows[i].rc != 0, r.truncated, "row %zu", i);
        EXPECT_EQ_MSG(rows[i].rc, r.rc, "row %zu", i);
        if (rows[i].rc != 0)
            EXPECT_EQ_MSG(0, bytes_len(&r.out), "row %zu: output on failure", i);
        else /* everything but the 15 bytes of <tls:starttls/> */
            EXPECT_EQ_MSG(bytes_len(&in) - strlen(HDR) - 15, bytes_len(&r.out), "row %zu", i);
        run_cleanup(&r);
        bytes_cleanup(&in);
    }
}

/* Ranges that a parser could never report are refused, not followed out of the buffer. */
TEST(inconsistent_ranges)
{
    static const uint8_t elem[] = "<f><a/><b/></f>"; /* stream offsets 100..115 */
    static const struct {
        uint64_t a0, a1, b0, b1;
    } rows[] = {
        {103, 107, 107, 111}, /* consistent */
        {103, 107, 105, 111}, /* overlapping */
        {107, 111, 103, 107}, /* out of order */
        {103, 107, 107, 130}, /* past the element's end */
        {90, 107, 107, 111},  /* before its start */
        {107, 103, 107, 111}, /* end before start */
    };

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct xmpp_child kids[2] = {
            {XMPP_NS_TLS "|starttls", rows[i].a0, rows[i].a1},
            {"urn:x|b", rows[i].b0, rows[i].b1},
        };
        struct xmpp_elem e = {
            .name = XMPP_NS_STREAMS "|features",
            .start = 100,
            .end = 115,
            .text = "",
            .children = kids,
            .nchildren = 2,
        };
        struct bytes out = BYTES_INIT;
        int rc = features_rewrite(&e, elem, "x", &out);

        EXPECT_EQ_MSG(i == 0 ? 0 : XTP_EBADFORMAT, rc, "row %zu", i);
        if (i == 0)
            EXPECT_MEM("<f><b/></f>", 11, bytes_data(&out), bytes_len(&out));
        else
            EXPECT_EQ_MSG(0, bytes_len(&out), "row %zu", i);
        bytes_cleanup(&out);
    }
}

/* The result is appended: what the buffer held stays in front. */
TEST(appends)
{
    static const uint8_t elem[] = "<f><s/><a/></f>";
    struct xmpp_child kids[] = {
        {XMPP_NS_TLS "|starttls", 3, 7},
        {XMPP_NS_AFFINIX_ADDRESS "|address", 7, 11},
    };
    struct xmpp_elem e = {.name = XMPP_NS_STREAMS "|features",
                          .start = 0,
                          .end = 15,
                          .text = "",
                          .children = kids,
                          .nchildren = 2};
    struct bytes out = BYTES_INIT;
    const char *want = "<before/><f>" ADDR_OPEN "1.2.3.4</address></f>";

    bytes_append(&out, "<before/>", 9);
    EXPECT_EQ(0, features_rewrite(&e, elem, "1.2.3.4", &out));
    EXPECT_MEM(want, strlen(want), bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
}

TEST_MAIN(captured_blocks, synthetic_blocks, joins_never_spell_cdata_end, truncated_children,
          inconsistent_ranges, appends)
