/* Unit tests for srv.c: SRV/TLSA rdata, names as text, the lookup plan and RFC 2782 order. */
#include "srv.h"

#include <errno.h>

#include "test.h"

/* Wire form helpers: rdata is written as C strings with explicit escapes. */
/* clang-format off */
#define NAME_XMPP "\x04xmpp\x07" "example\x04test\x00"

static const struct {
    const char *wire;
    size_t len;
    bool host;
    int rc;
    const char *text;
    size_t used;
} names[] = {
    {NAME_XMPP, 19, true, 0, "xmpp.example.test", 19},
    {"\x04XMPP\x02" "Ex\x00", 9, true, 0, "xmpp.ex", 9}, /* lower-cased */
    {"\x00", 1, false, 0, "", 1},                       /* the root */
    {"\x00", 1, true, -EINVAL, NULL, 0},                /* the root is no host */
    {"\x05_xmpp\x04test\x00", 12, false, 0, "_xmpp.test", 12},
    {"\x05_xmpp\x04test\x00", 12, true, -EINVAL, NULL, 0},
    {"\x03" "a.b\x04test\x00", 10, false, -EINVAL, NULL, 0},   /* a dot inside a label */
    {"\x03" "a b\x04test\x00", 10, false, -EINVAL, NULL, 0},   /* a space */
    {"\x03" "a\x00" "b\x04test\x00", 10, false, -EINVAL, NULL, 0}, /* NUL */
    {"\x03" "a\xc3\xa9\x04test\x00", 10, false, -EINVAL, NULL, 0}, /* UTF-8 */
    {"\x04-abc\x04test\x00", 11, true, -EINVAL, NULL, 0},      /* leading hyphen */
    {"\x04" "abc-\x04test\x00", 11, true, -EINVAL, NULL, 0},   /* trailing hyphen */
    {"\x04" "abc-\x04test\x00", 11, false, 0, "abc-.test", 11}, /* fine outside hosts */
    {"\x03" "192\x01" "0\x01" "2\x01" "1\x00", 11, true, -EINVAL, NULL, 0}, /* IPv4-like */
    {"\x03" "192\x01" "0\x01" "2\x02" "x1\x00", 12, true, 0, "192.0.2.x1", 12},
    {"\x04xmpp\xc0\x0c", 7, false, -EBADMSG, NULL, 0},        /* compression pointer */
    {"\x04xmpp\x40\x00", 7, false, -EBADMSG, NULL, 0},        /* extended label type */
    {"\x04xmp", 4, false, -EBADMSG, NULL, 0},                 /* truncated label */
    {"\x04xmpp", 5, false, -EBADMSG, NULL, 0},                /* no final zero */
    {"", 0, false, -EBADMSG, NULL, 0},
    {"\x03" "a b\x04" "te", 7, false, -EBADMSG, NULL, 0},     /* truncation beats bad bytes */
    {NAME_XMPP "trailing", 27, true, 0, "xmpp.example.test", 19}, /* used stops at the end */
};
/* clang-format on */

TEST(name_text)
{
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        char out[SRV_NAME_MAX + 1] = "unchanged";
        size_t used = 999;
        int rc = srv_name_text((const uint8_t *)names[i].wire, names[i].len, &used, out,
                               sizeof(out), names[i].host);

        EXPECT_EQ_MSG(names[i].rc, rc, "row %zu", i);
        if (rc == 0 && names[i].rc == 0) {
            EXPECT_STR_MSG(names[i].text, out, "row %zu", i);
            EXPECT_EQ_MSG(names[i].used, used, "row %zu", i);
        }
    }
}

TEST(name_text_limits)
{
    uint8_t wire[300];
    char out[SRV_NAME_MAX + 1];
    size_t used, o = 0;

    /* 63 is the longest label; 64 does not fit the length octet's 6 bits. */
    wire[0] = 63;
    memset(wire + 1, 'a', 63);
    wire[64] = 0;
    EXPECT_EQ(0, srv_name_text(wire, 65, &used, out, sizeof(out), true));
    EXPECT_EQ(63, strlen(out));
    wire[0] = 64;
    EXPECT_EQ(-EBADMSG, srv_name_text(wire, 65, &used, out, sizeof(out), true));

    /* 255 octets in wire form is the most: 4 labels of 63 = 256 octets is one too many, and
     * 3 of 63 plus one of 61 = 254 octets (253 characters of text) just fits. */
    for (int l = 0; l < 4; l++) {
        wire[o++] = 63;
        memset(wire + o, 'b', 63);
        o += 63;
    }
    wire[o++] = 0;
    EXPECT_EQ(-EBADMSG, srv_name_text(wire, o, &used, out, sizeof(out), true));
    wire[3 * 64] = 61;
    wire[3 * 64 + 62] = 0;
    EXPECT_EQ(0, srv_name_text(wire, 3 * 64 + 63, &used, out, sizeof(out), true));
    EXPECT_EQ(SRV_NAME_MAX, strlen(out));
    EXPECT_EQ(3 * 64 + 63, used);

    /* A buffer too small is reported, never overrun. */
    EXPECT_EQ(-ENOBUFS, srv_name_text((const uint8_t *)NAME_XMPP, 19, &used, out, 17, true));
    EXPECT_EQ(0, srv_name_text((const uint8_t *)NAME_XMPP, 19, &used, out, 18, true));
    EXPECT_EQ(-ENOBUFS, srv_name_text((const uint8_t *)"\x00", 1, &used, out, 0, false));
}

TEST(host_check)
{
    static const struct {
        const char *text;
        int rc;
    } rows[] = {
        {"example.test", 0},           {"Example.TEST", 0},   {"a", 0},
        {"xn--bcher-kva.test", 0},     {"a-b.c-d", 0},        {"", -EINVAL},
        {"example.test.", -EINVAL},    {".example", -EINVAL}, {"a..b", -EINVAL},
        {"-a.test", -EINVAL},          {"a-.test", -EINVAL},  {"_xmpp.test", -EINVAL},
        {"192.0.2.1", -EINVAL},        {"[::1]", -EINVAL},    {"a b.test", -EINVAL},
        {"caf\xc3\xa9.test", -EINVAL},
    };
    char longest[300];

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        EXPECT_EQ_MSG(rows[i].rc, srv_host_check(rows[i].text), "row %zu (%s)", i, rows[i].text);
    /* 4 labels of 63 with 3 dots is 255 characters: too long; 3 of 63 and one of 61 is 253. */
    memset(longest, 'a', sizeof(longest));
    longest[63] = longest[127] = longest[191] = '.';
    longest[255] = '\0';
    EXPECT_EQ(-EINVAL, srv_host_check(longest));
    longest[253] = '\0';
    EXPECT_EQ(0, srv_host_check(longest));
    longest[63] = 'a'; /* a 127-character label */
    EXPECT_EQ(-EINVAL, srv_host_check(longest));
}

TEST(srv_parse_good)
{
    static const uint8_t rd[] = "\x00\x05\x00\x0a\x14\x95" NAME_XMPP;
    struct srv_rec r;

    EXPECT_EQ(0, srv_parse(rd, 6 + 19, &r));
    EXPECT_EQ(5, r.priority);
    EXPECT_EQ(10, r.weight);
    EXPECT_EQ(5269, r.port);
    EXPECT_STR("xmpp.example.test", r.target);
    EXPECT(!r.direct_tls);

    /* "0 0 0 ." as libunbound returns it: 7 octets. */
    EXPECT_EQ(0, srv_parse((const uint8_t *)"\x00\x00\x00\x00\x00\x00\x00", 7, &r));
    EXPECT_STR("", r.target);
    EXPECT_EQ(0, r.port);
}

TEST(srv_parse_bad)
{
    /* clang-format off */
    static const struct {
        const char *rd;
        size_t len;
        int rc;
    } rows[] = {
        {"", 0, -EBADMSG},
        {"\x00\x05\x00\x0a\x14\x95", 6, -EBADMSG},                  /* no target */
        {"\x00\x05\x00\x0a\x14\x95" NAME_XMPP "x", 26, -EBADMSG},   /* trailing byte */
        {"\x00\x00\x00\x00\x00\x00\x00\x00", 8, -EBADMSG},          /* "." then junk */
        {"\x00\x05\x00\x0a\x14\x95\x04xmpp\xc0\x0c", 13, -EBADMSG}, /* compressed */
        {"\x00\x05\x00\x0a\x14\x95\x04xm_p\x00", 12, -EINVAL},      /* not a host */
        {"\x00\x05\x00\x0a\x14\x95\x04xmpp\x00", 12, 0},            /* a one-label host is fine */
    };
    /* clang-format on */
    struct srv_rec r;

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        EXPECT_EQ_MSG(rows[i].rc, srv_parse((const uint8_t *)rows[i].rd, rows[i].len, &r),
                      "row %zu", i);
}

TEST(tlsa_parse)
{
    uint8_t rd[3 + 64];
    struct srv_tlsa t;

    memset(rd, 0xab, sizeof(rd));
    rd[0] = 3, rd[1] = 1, rd[2] = 1;
    EXPECT_EQ(0, srv_tlsa_parse(rd, 3 + 32, &t));
    EXPECT_EQ(3, t.usage);
    EXPECT_EQ(1, t.selector);
    EXPECT_EQ(1, t.mtype);
    EXPECT_EQ(32, t.len);
    EXPECT(t.data == rd + 3); /* borrowed, not copied */
    EXPECT_EQ(-EBADMSG, srv_tlsa_parse(rd, 3 + 31, &t));
    EXPECT_EQ(-EBADMSG, srv_tlsa_parse(rd, 3 + 33, &t));
    rd[2] = 2;
    EXPECT_EQ(0, srv_tlsa_parse(rd, 3 + 64, &t));
    EXPECT_EQ(-EBADMSG, srv_tlsa_parse(rd, 3 + 32, &t));
    rd[2] = 0; /* a full certificate or key: any length */
    EXPECT_EQ(0, srv_tlsa_parse(rd, 4, &t));
    EXPECT_EQ(1, t.len);
    EXPECT_EQ(-EBADMSG, srv_tlsa_parse(rd, 3, &t));
    rd[0] = 200, rd[2] = 77; /* unknown values parse: the verifier calls them unusable */
    EXPECT_EQ(0, srv_tlsa_parse(rd, 10, &t));
    EXPECT_EQ(200, t.usage);
    EXPECT_EQ(-EBADMSG, srv_tlsa_parse(rd, 0, &t));
}

/* Builds a NULL-terminated rdata list from (rdata, len) pairs. */
struct set {
    char *data[8];
    int len[8];
};

static void set_add(struct set *s, size_t *n, const char *rd, int len)
{
    s->data[*n] = (char *)rd;
    s->len[*n] = len;
    (*n)++;
    s->data[*n] = NULL;
}

/* clang-format off */
#define RD_A "\x00\x0a\x00\x00\x14\x95\x01" "a\x04test\x00" /* 10 0 5269 a.test */
#define RD_B "\x00\x14\x00\x05\x14\x96\x01" "b\x04test\x00" /* 20 5 5270 b.test */
#define RD_DOT "\x00\x00\x00\x00\x00\x00\x00"
#define RD_PORT0 "\x00\x0a\x00\x00\x00\x00\x01" "c\x04test\x00"
#define RD_BAD "\x00\x0a\x00\x00\x14\x95\x01" "_\x04test\x00"
/* clang-format on */

TEST(parse_set)
{
    struct srv_rec out[4];
    struct set s = {{NULL}, {0}};
    size_t n = 0, nout = 0;

    s.data[0] = NULL;
    EXPECT_EQ(SRV_SET_EMPTY, srv_parse_set(s.data, s.len, true, out, 4, &nout));
    EXPECT_EQ(0, nout);

    set_add(&s, &n, RD_DOT, 7);
    EXPECT_EQ(SRV_SET_DECLINED, srv_parse_set(s.data, s.len, true, out, 4, &nout));
    EXPECT_EQ(0, nout);

    /* A "." next to real records is skipped, not a refusal. */
    set_add(&s, &n, RD_A, 14);
    EXPECT_EQ(SRV_SET_RECORDS, srv_parse_set(s.data, s.len, true, out, 4, &nout));
    EXPECT_EQ(1, nout);
    EXPECT_STR("a.test", out[0].target);
    EXPECT(out[0].direct_tls);

    /* Appends after what is there; the max bounds the total. */
    set_add(&s, &n, RD_B, 14);
    set_add(&s, &n, RD_PORT0, 14);
    set_add(&s, &n, RD_BAD, 14);
    EXPECT_EQ(SRV_SET_RECORDS, srv_parse_set(s.data, s.len, false, out, 2, &nout));
    EXPECT_EQ(2, nout);
    EXPECT_STR("a.test", out[1].target);
    EXPECT(!out[1].direct_tls);

    /* Only unusable records: the lookup failed (no fallback, no service). */
    n = 0;
    nout = 0;
    set_add(&s, &n, RD_PORT0, 14);
    set_add(&s, &n, RD_BAD, 14);
    set_add(&s, &n, RD_A, 13); /* truncated */
    EXPECT_EQ(SRV_SET_FAILED, srv_parse_set(s.data, s.len, false, out, 4, &nout));
    EXPECT_EQ(0, nout);
    n = 0;
    set_add(&s, &n, RD_BAD, 14);
    EXPECT_EQ(SRV_SET_FAILED, srv_parse_set(s.data, s.len, false, out, 4, &nout));
}

TEST(plan)
{
    static const struct {
        enum srv_set direct, starttls;
        enum srv_plan plan;
    } rows[] = {
        {SRV_SET_EMPTY, SRV_SET_EMPTY, SRV_PLAN_FALLBACK},
        {SRV_SET_RECORDS, SRV_SET_EMPTY, SRV_PLAN_RECORDS},
        {SRV_SET_EMPTY, SRV_SET_RECORDS, SRV_PLAN_RECORDS},
        {SRV_SET_DECLINED, SRV_SET_RECORDS, SRV_PLAN_RECORDS}, /* no Direct TLS, STARTTLS */
        {SRV_SET_RECORDS, SRV_SET_DECLINED, SRV_PLAN_RECORDS},
        {SRV_SET_FAILED, SRV_SET_RECORDS, SRV_PLAN_RECORDS},   /* use what answered */
        {SRV_SET_DECLINED, SRV_SET_EMPTY, SRV_PLAN_NOSERVICE}, /* XEP-0368: no A fallback */
        {SRV_SET_EMPTY, SRV_SET_DECLINED, SRV_PLAN_NOSERVICE},
        {SRV_SET_DECLINED, SRV_SET_DECLINED, SRV_PLAN_NOSERVICE},
        {SRV_SET_FAILED, SRV_SET_EMPTY, SRV_PLAN_FAILED}, /* RFC 7673 §3.1: abort */
        {SRV_SET_EMPTY, SRV_SET_FAILED, SRV_PLAN_FAILED},
        {SRV_SET_FAILED, SRV_SET_DECLINED, SRV_PLAN_FAILED},
        {SRV_SET_FAILED, SRV_SET_FAILED, SRV_PLAN_FAILED},
    };

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        EXPECT_EQ_MSG(rows[i].plan, srv_plan(rows[i].direct, rows[i].starttls), "row %zu", i);
}

/* A scripted random source: returns the next value, and checks the bound it was given. */
struct script {
    const uint32_t *vals;
    size_t n, next;
    uint32_t bounds[16];
};

static uint32_t scripted(void *arg, uint32_t n)
{
    struct script *s = arg;
    uint32_t v = s->next < s->n ? s->vals[s->next] : 0;

    if (s->next < ARRAY_SIZE(s->bounds))
        s->bounds[s->next] = n;
    s->next++;
    return v;
}

static struct srv_rec rec(uint16_t prio, uint16_t weight, bool direct, const char *name)
{
    struct srv_rec r = {.priority = prio, .weight = weight, .port = 5269, .direct_tls = direct};

    snprintf(r.target, sizeof(r.target), "%s", name);
    return r;
}

static void expect_order(const struct srv_rec *r, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        EXPECT_STR_MSG(want[i], r[i].target, "position %zu", i);
}

TEST(order_priority_then_weight)
{
    struct srv_rec r[] = {
        rec(20, 0, false, "p20"), rec(10, 30, false, "a30"), rec(10, 10, false, "b10"),
        rec(10, 0, false, "z0"),  rec(5, 0, false, "p5"),
    };
    /* Priority 10 group, zero weight first: [z0 a30 b10], running sums 0 30 40.
     * pick 35 of [0,40] -> b10; then [z0 a30], sums 0 30: pick 0 -> z0; a30 is left. */
    static const uint32_t vals[] = {35, 0};
    struct script s = {vals, 2, 0, {0}};
    static const char *const want[] = {"p5", "b10", "z0", "a30", "p20"};

    srv_order(r, ARRAY_SIZE(r), 0, scripted, &s);
    expect_order(r, want, ARRAY_SIZE(want));
    EXPECT_EQ(2, s.next);       /* one pick per choice among two or more */
    EXPECT_EQ(41, s.bounds[0]); /* sum 40, inclusive */
    EXPECT_EQ(31, s.bounds[1]);
}

TEST(order_weight_boundaries)
{
    /* pick == running sum selects that record (">="); pick 0 selects the zero-weight one. */
    static const struct {
        uint32_t pick;
        const char *first;
    } rows[] = {{0, "z"}, {1, "a"}, {30, "a"}, {31, "b"}, {40, "b"}, {1000, "b"}};

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct srv_rec r[] = {rec(1, 30, false, "a"), rec(1, 10, false, "b"),
                              rec(1, 0, false, "z")};
        uint32_t vals[] = {rows[i].pick, 0};
        struct script s = {vals, 2, 0, {0}};

        srv_order(r, 3, 0, scripted, &s);
        EXPECT_STR_MSG(rows[i].first, r[0].target, "row %zu", i);
    }
}

TEST(order_all_zero_keeps_order)
{
    struct srv_rec r[] = {rec(0, 0, false, "a"), rec(0, 0, true, "b"), rec(0, 0, false, "c")};
    struct script s = {NULL, 0, 0, {0}};
    static const char *const want[] = {"a", "b", "c"};

    srv_order(r, 3, 0, scripted, &s);
    expect_order(r, want, 3);
    srv_order(r, 0, 0, scripted, &s); /* nothing to order */
}

TEST(order_mixes_services)
{
    /* XEP-0368 §3: both services' records are one set; the weights decide. */
    struct srv_rec r[] = {rec(0, 10, false, "starttls"), rec(0, 10, true, "direct")};
    static const uint32_t vals[] = {5};
    struct script s = {vals, 1, 0, {0}};
    static const char *const want[] = {"starttls", "direct"};

    srv_order(r, 2, 0, scripted, &s);
    expect_order(r, want, 2);
}

TEST(order_prefer_direct)
{
    /* Preferring Direct TLS splits each priority: Direct TLS records first (weighted among
     * themselves), then STARTTLS; a lower priority still wins over the preference. */
    struct srv_rec r[] = {rec(1, 10, false, "s1"), rec(1, 10, true, "d1"), rec(0, 0, false, "s0"),
                          rec(1, 50, true, "d2"), rec(2, 0, true, "d3")};
    static const uint32_t vals[] = {60, 0};
    struct script s = {vals, 2, 0, {0}};
    static const char *const want[] = {"s0", "d2", "d1", "s1", "d3"};

    srv_order(r, ARRAY_SIZE(r), SRV_ORDER_PREFER_DIRECT, scripted, &s);
    expect_order(r, want, ARRAY_SIZE(want));
}

/* Over many seeded runs the first pick follows the weights (RFC 2782's intent), within a wide
 * margin: a sanity check that the running-sum walk is not off by one record. */
static uint32_t lcg(void *arg, uint32_t n)
{
    uint64_t *x = arg;

    *x = *x * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)((*x >> 33) % n);
}

TEST(order_distribution)
{
    uint64_t seed = 42;
    unsigned first[3] = {0, 0, 0};

    for (int i = 0; i < 30000; i++) {
        struct srv_rec r[] = {rec(0, 60, false, "0"), rec(0, 30, false, "1"),
                              rec(0, 10, false, "2")};

        srv_order(r, 3, 0, lcg, &seed);
        first[r[0].target[0] - '0']++;
    }
    EXPECT_MSG(first[0] > 17000 && first[0] < 19000, "%u", first[0]);
    EXPECT_MSG(first[1] > 8000 && first[1] < 10000, "%u", first[1]);
    EXPECT_MSG(first[2] > 2400 && first[2] < 3600, "%u", first[2]);
}

TEST_MAIN(name_text, name_text_limits, host_check, srv_parse_good, srv_parse_bad, tlsa_parse,
          parse_set, plan, order_priority_then_weight, order_weight_boundaries,
          order_all_zero_keeps_order, order_mixes_services, order_prefer_direct, order_distribution)
