/* test_xmpp_out.c: what the proxy writes itself (proxy/xmpp_out.c): exact bytes, escaping,
 * the RFC 6120 §4.9.3 condition table, stream ids; and that our own parser accepts it all. */
#include "xmpp_out.h"

#include <errno.h>

#include "bytes.h"
#include "err.h"
#include "test.h"
#include "xmpp_in.h"

#define DECL      "<?xml version='1.0'?>"
#define STREAM_NS "xmlns:stream='http://etherx.jabber.org/streams'"

static const struct {
    const char *ns, *from, *to, *id, *version, *lang;
    const char *want;
} headers[] = {
    {"jabber:client", "example.test", NULL, "abc", "1.0", "en",
     DECL "<stream:stream xmlns='jabber:client' " STREAM_NS
          " from='example.test' id='abc' version='1.0' xml:lang='en'>"},
    {"jabber:client", NULL, NULL, NULL, NULL, NULL,
     DECL "<stream:stream xmlns='jabber:client' " STREAM_NS ">"},
    /* a server stream declares the dialback prefix (XEP-0220) */
    {"jabber:server", "a.example", "b.example", NULL, "1.0", NULL,
     DECL "<stream:stream xmlns='jabber:server' " STREAM_NS
          " xmlns:db='jabber:server:dialback' from='a.example' to='b.example' version='1.0'>"},
    /* every attribute value is escaped */
    {"jabber:client", "a'b", "<x>&\"", "i'd", NULL, "e\"n",
     DECL "<stream:stream xmlns='jabber:client' " STREAM_NS
          " from='a&apos;b' to='&lt;x&gt;&amp;&quot;' id='i&apos;d' xml:lang='e&quot;n'>"},
};

TEST(header)
{
    for (size_t i = 0; i < ARRAY_SIZE(headers); i++) {
        struct bytes b = BYTES_INIT;

        EXPECT_EQ_MSG(0,
                      xmpp_out_header(&b, headers[i].ns, headers[i].from, headers[i].to,
                                      headers[i].id, headers[i].version, headers[i].lang),
                      "row %zu", i);
        EXPECT_MEM(headers[i].want, strlen(headers[i].want), bytes_data(&b), bytes_len(&b));
        bytes_cleanup(&b);
    }
}

TEST(fixed_elements)
{
    struct bytes b = BYTES_INIT;
    const char *want = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                       "<required/></starttls></stream:features>"
                       "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                       "</stream:stream>";

    EXPECT_EQ(0, xmpp_out_starttls_features(&b));
    EXPECT_EQ(0, xmpp_out_proceed(&b));
    EXPECT_EQ(0, xmpp_out_close(&b));
    EXPECT_MEM(want, strlen(want), bytes_data(&b), bytes_len(&b));
    bytes_cleanup(&b);
}

static const struct {
    const char *condition, *text;
    int rc;
    const char *want;
} errors[] = {
    {"host-unknown", NULL, 0,
     "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
     "</stream:error></stream:stream>"},
    {"policy-violation", "stanza > 256 KiB & <more>", 0,
     "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
     "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>stanza &gt; 256 KiB &amp; "
     "&lt;more&gt;</text></stream:error></stream:stream>"},
    {"", NULL, -EINVAL, ""},
    {"bad'format", NULL, -EINVAL, ""},
    {"x/><iq", NULL, -EINVAL, ""},
};

TEST(error)
{
    for (size_t i = 0; i < ARRAY_SIZE(errors); i++) {
        struct bytes b = BYTES_INIT;

        bytes_append(&b, "<before/>", 9); /* appended after it, or nothing on failure */
        EXPECT_EQ_MSG(errors[i].rc, xmpp_out_error(&b, errors[i].condition, errors[i].text),
                      "row %zu", i);
        EXPECT_EQ_MSG(9 + strlen(errors[i].want), bytes_len(&b), "row %zu", i);
        EXPECT_MEM(errors[i].want, strlen(errors[i].want), bytes_data(&b) + 9, bytes_len(&b) - 9);
        bytes_cleanup(&b);
    }
    EXPECT_EQ(-EINVAL, xmpp_out_error(&(struct bytes)BYTES_INIT, NULL, NULL));
}

static const struct {
    int err;
    const char *condition;
} conditions[] = {
    {XTP_EXML, "not-well-formed"},
    {XTP_ERESTRICTED, "restricted-xml"},
    {XTP_ENAMESPACE, "invalid-namespace"},
    {XTP_EBADFORMAT, "bad-format"},
    {XTP_EPREFIX, "bad-namespace-prefix"},
    {XTP_EHOST, "host-unknown"},
    {XTP_EVERSION, "unsupported-version"},
    {XTP_EPOLICY, "policy-violation"},
    {XTP_ETOOBIG, "policy-violation"},
    {XTP_EDEPTH, "policy-violation"},
    {XTP_EBACKEND, "remote-connection-failed"},
    {-ETIMEDOUT, "connection-timeout"},
    {XTP_ESHUTDOWN, "system-shutdown"},
    {XTP_ELIMIT, "resource-constraint"},
    {-ENOMEM, "resource-constraint"},
    {XTP_ETLS, "internal-server-error"},
    {XTP_EVERIFY, "not-authorized"},
    {XTP_EAUTH, "not-authorized"},
    {XTP_EUNTRUSTED, "not-authorized"},
    {XTP_EEXPIRED, "not-authorized"},
    {XTP_ENOCERT, "not-authorized"},
    {XTP_EPINNED, "not-authorized"},
    {XTP_EDANE, "not-authorized"},
    {XTP_EFROM, "invalid-from"},
    {XTP_EDNS, "remote-connection-failed"},
    {XTP_ENXDOMAIN, "remote-connection-failed"},
    {XTP_ENOTLS, "remote-connection-failed"},
    {XTP_EREMOTE, "remote-connection-failed"},
    {-ECONNRESET, "internal-server-error"},
    {0, "internal-server-error"},
    {12345, "internal-server-error"},
};

TEST(condition)
{
    for (size_t i = 0; i < ARRAY_SIZE(conditions); i++)
        EXPECT_STR_MSG(conditions[i].condition, xmpp_out_condition(conditions[i].err), "%s",
                       xtp_err_name(conditions[i].err));
}

TEST(stream_id)
{
    char a[23], b[64], small[22];

    memset(a, '?', sizeof(a));
    EXPECT_EQ(0, xmpp_out_stream_id(a, sizeof(a)));
    EXPECT_EQ(0, xmpp_out_stream_id(b, sizeof(b)));
    EXPECT_EQ(22, strlen(a));
    EXPECT_EQ(22, strlen(b));
    EXPECT_MSG(strcmp(a, b) != 0, "%s twice", a);
    EXPECT_EQ(22, strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"));
    /* 128 bits: the last character carries 2 bits, so it is one of A, Q, g, w */
    EXPECT_MSG(strchr("AQgw", a[21]) != NULL, "%s", a);
    EXPECT_EQ(-ENOSPC, xmpp_out_stream_id(small, sizeof(small)));
    {
        /* Each of the first 21 characters carries 6 random bits: over 256 ids each position
         * shows most of the 64 characters (about 63 expected; fewer than 48 has a
         * probability below 1e-9), so no bit is lost or stuck in the encoding. */
        static bool seen[21][256];
        int distinct[21] = {0};

        for (int i = 0; i < 256; i++) {
            EXPECT_EQ(0, xmpp_out_stream_id(b, sizeof(b)));
            for (int k = 0; k < 21; k++)
                seen[k][(unsigned char)b[k]] = true;
        }
        for (int k = 0; k < 21; k++) {
            for (int c = 0; c < 256; c++)
                distinct[k] += seen[k][c];
            EXPECT_MSG(distinct[k] >= 48 && distinct[k] <= 64, "position %d: %d", k, distinct[k]);
        }
    }
}

/* Everything we write parses with our own parser, attributes decoded back. */
struct seen {
    int opens, elems;
    char from[64], to[64], lang[16], names[512];
};

static int open_cb(void *arg, const struct xmpp_hdr *h)
{
    struct seen *s = arg;

    s->opens++;
    snprintf(s->from, sizeof(s->from), "%s", h->from ? h->from : "");
    snprintf(s->to, sizeof(s->to), "%s", h->to ? h->to : "");
    snprintf(s->lang, sizeof(s->lang), "%s", h->lang ? h->lang : "");
    return 0;
}

static int elem_cb(void *arg, const struct xmpp_elem *e)
{
    struct seen *s = arg;
    size_t n = strlen(s->names);

    s->elems++;
    snprintf(s->names + n, sizeof(s->names) - n, "%s%s", n ? " " : "", e->name);
    return 0;
}

static int close_cb(void *arg, uint64_t end)
{
    return 0;
}

TEST(output_parses)
{
    static const struct xmpp_in_ops ops = {open_cb, elem_cb, close_cb};
    struct seen s;
    struct bytes b = BYTES_INIT;
    struct xmpp_in *in;
    size_t used;

    memset(&s, 0, sizeof(s));
    in = xmpp_in_new(&ops, &s, 65536, NULL);
    EXPECT_EQ(0, xmpp_out_header(&b, "jabber:server", "a'<b", "c&\"d", "x", "1.0", "fr"));
    EXPECT_EQ(0, xmpp_out_starttls_features(&b));
    EXPECT_EQ(0, xmpp_out_proceed(&b));
    bytes_append(&b, "<db:result from='a' to='b'>k</db:result>", 40); /* the db prefix */
    EXPECT_EQ(0, xmpp_out_error(&b, "host-unknown", "<&'\">"));
    EXPECT_EQ(0, xmpp_in_feed(in, bytes_data(&b), bytes_len(&b), &used));
    EXPECT_EQ(1, s.opens);
    EXPECT_STR("a'<b", s.from);
    EXPECT_STR("c&\"d", s.to);
    EXPECT_STR("fr", s.lang);
    EXPECT_STR(XMPP_NS_STREAMS "|features " XMPP_NS_TLS "|proceed " XMPP_NS_DIALBACK
                               "|result " XMPP_NS_STREAMS "|error",
               s.names);
    xmpp_in_free(in);
    bytes_cleanup(&b);
}

/* The s2s elements (XEP-0220, XEP-0178, RFC 6120 §5/§6), byte for byte. */
TEST(s2s_elements)
{
    struct bytes b = BYTES_INIT;

#define CHECK(call, want)                                                                          \
    do {                                                                                           \
        bytes_cleanup(&b);                                                                         \
        EXPECT_EQ(0, call);                                                                        \
        EXPECT_EQ(strlen(want), bytes_len(&b));                                                    \
        EXPECT(bytes_len(&b) == strlen(want) && memcmp(bytes_data(&b), want, strlen(want)) == 0);  \
    } while (0)
    CHECK(xmpp_out_s2s_features(&b, true, true),
          "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>"
          "EXTERNAL</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'><errors/>"
          "</dialback></stream:features>");
    CHECK(xmpp_out_s2s_features(&b, false, false), "<stream:features></stream:features>");
    CHECK(xmpp_out_db(&b, "result", "a.test", "b.test", NULL, NULL, "k&y"),
          "<db:result from='a.test' to='b.test'>k&amp;y</db:result>");
    CHECK(xmpp_out_db(&b, "verify", "a.test", "b.test", "i'd", "valid", NULL),
          "<db:verify from='a.test' to='b.test' id='i&apos;d' type='valid'/>");
    CHECK(xmpp_out_sasl(&b, true), "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    CHECK(xmpp_out_sasl(&b, false),
          "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
    /* RFC 4648 test vectors: "f" "fo" "foo" "foob". */
    CHECK(xmpp_out_auth_external(&b, "f"),
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>Zg==</auth>");
    CHECK(xmpp_out_auth_external(&b, "fo"),
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>Zm8=</auth>");
    CHECK(xmpp_out_auth_external(&b, "foob"),
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>Zm9vYg==</auth>");
    CHECK(xmpp_out_auth_external(&b, "example.test"),
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>ZXhhbXBsZS50ZXN0"
          "</auth>");
    CHECK(xmpp_out_auth_external(&b, ""),
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
    CHECK(xmpp_out_starttls(&b), "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
#undef CHECK
    bytes_cleanup(&b);
    EXPECT_EQ(-EINVAL, xmpp_out_db(&b, "bogus", "a", "b", NULL, NULL, NULL));
    EXPECT_EQ(0, bytes_len(&b));
}

TEST_MAIN(header, fixed_elements, error, condition, stream_id, output_parses, s2s_elements)
