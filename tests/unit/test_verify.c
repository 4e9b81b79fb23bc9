/* test_verify.c: verify.c against the certificates in tests/certs (found through $XTP_SRC,
 * else ../certs from tests/unit). Verification flags come from mbedtls_x509_crt_verify() with
 * ca.crt as the trust anchor, as the handshake would compute them. Fingerprints and SPKI
 * digests written here were computed with openssl, not with the code under test:
 *   openssl x509 -in X.crt -noout -fingerprint -sha256
 *   openssl x509 -in X.crt -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum */
#include "verify.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include "err.h"
#include "test.h"

static char certdir[1024];

/* Parses tests/certs/NAME.crt into c (init'ed here; the caller frees), or ends the run. */
static void load(mbedtls_x509_crt *c, const char *name)
{
    char path[1200];

    mbedtls_x509_crt_init(c);
    snprintf(path, sizeof(path), "%s/%s.crt", certdir, name);
    if (mbedtls_x509_crt_parse_file(c, path) != 0) {
        /* Every later expectation would fail for this one reason: stop here. */
        fprintf(stderr, "%s: cannot parse %s (set XTP_SRC)\n", test_current, path);
        exit(1);
    }
}

/* What the handshake would report: the chain verified against ca.crt, no name given. */
static uint32_t flags_of(mbedtls_x509_crt *leaf)
{
    mbedtls_x509_crt ca;
    uint32_t flags = 0;

    load(&ca, "ca");
    (void)mbedtls_x509_crt_verify(leaf, &ca, NULL, NULL, &flags, NULL, NULL);
    mbedtls_x509_crt_free(&ca);
    return flags;
}

static void hex2bin(const char *hex, uint8_t *out)
{
    for (size_t i = 0; hex[2 * i] != '\0'; i++) {
        unsigned v;

        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static const struct {
    const char *presented, *reference;
    bool match;
} dns_rows[] = {
    {"example.org", "example.org", true},
    {"EXAMPLE.org", "example.ORG", true},  /* ASCII case-insensitive */
    {"example.org.", "example.org", true}, /* one trailing dot ignored */
    {"example.org", "example.org.", true}, /* on either side */
    {"example.org", "example.com", false},
    {"example.org", "xexample.org", false},
    {"xexample.org", "example.org", false},
    {"*.example.org", "chat.example.org", true},
    {"*.EXAMPLE.org", "Chat.example.org", true},
    {"*.example.org", "a.b.example.org", false},   /* a wildcard spans one label */
    {"*.example.org", "example.org", false},       /* never the bare parent */
    {"*.example.org", ".example.org", false},      /* never an empty label */
    {"c*.example.org", "chat.example.org", false}, /* whole-label wildcards only */
    {"*c.example.org", "chat.example.org", false},
    {"ch*t.example.org", "chat.example.org", false},
    {"chat.*.org", "chat.example.org", false}, /* only the left-most label */
    {"*.*.org", "a.b.org", false},
    {"**.example.org", "a.example.org", false},
    {"*", "org", false},
    {"*.org", "example.org", false}, /* too few labels behind the wildcard */
    {"*.", "example.", false},
    {"", "", false},
    {"example.org", "", false},
    {"exa mple.org", "exa mple.org", false}, /* not a host name */
    {"example..org", "example..org", false},
    {"xn--bcher-kva.example", "xn--bcher-kva.example", true},
    {"*.example.org", "*.example.org", false}, /* a reference never holds a wildcard */
    {"_xmpp-server.example.org", "_xmpp-server.example.org", true},
};

TEST(dns_id)
{
    for (size_t i = 0; i < ARRAY_SIZE(dns_rows); i++)
        EXPECT_EQ_MSG(dns_rows[i].match,
                      verify_dns_id(dns_rows[i].presented, dns_rows[i].reference),
                      "row %zu: %s vs %s", i, dns_rows[i].presented, dns_rows[i].reference);
}

/* GeneralName contents as mbedTLS keeps them (after the outer tag and length). */
#define OID_XMPP 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05
#define OID_SRV  0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07
static const uint8_t gn_xmpp[] = {OID_XMPP, 0xa0, 0x04, 0x0c, 0x02, 'a', 'b'};
static const uint8_t gn_srv[] = {OID_SRV, 0xa0, 0x04, 0x16, 0x02, 'a', 'b'};
static const uint8_t gn_srv_utf8[] = {OID_SRV, 0xa0, 0x04, 0x0c, 0x02, 'a', 'b'};
static const uint8_t gn_xmpp_ia5[] = {OID_XMPP, 0xa0, 0x04, 0x16, 0x02, 'a', 'b'};
static const uint8_t gn_inner_tail[] = {OID_XMPP, 0xa0, 0x05, 0x0c, 0x02, 'a', 'b', 0};
static const uint8_t gn_outer_tail[] = {OID_XMPP, 0xa0, 0x04, 0x0c, 0x02, 'a', 'b', 0};
static const uint8_t gn_long_len[] = {OID_XMPP, 0xa0, 0x04, 0x0c, 0x09, 'a', 'b'};
static const uint8_t gn_short[] = {OID_XMPP, 0xa0, 0x09, 0x0c, 0x02, 'a', 'b'};
static const uint8_t gn_empty[] = {OID_XMPP, 0xa0, 0x02, 0x0c, 0x00};
static const uint8_t gn_other_oid[] = {0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07,
                                       0x08, 0x04, 0xa0, 0x04, 0x0c, 0x02, 'a',  'b'};
static const uint8_t gn_no_oid[] = {0x0c, 0x02, 'a', 'b'};
static const uint8_t gn_prim0[] = {OID_XMPP, 0x80, 0x04, 0x0c, 0x02, 'a', 'b'};
static const uint8_t gn_dns[] = {'a', '.', 't'};

static const struct {
    int tag;
    const uint8_t *p;
    size_t len;
    enum verify_id want;
} gn_rows[] = {
    {0xa0, gn_xmpp, sizeof(gn_xmpp), VERIFY_ID_XMPP},
    {0xa0, gn_srv, sizeof(gn_srv), VERIFY_ID_SRV},
    {0xa0, gn_srv_utf8, sizeof(gn_srv_utf8), VERIFY_ID_NONE}, /* SRVName is IA5String */
    {0xa0, gn_xmpp_ia5, sizeof(gn_xmpp_ia5), VERIFY_ID_NONE}, /* XmppAddr is UTF8String */
    {0xa0, gn_inner_tail, sizeof(gn_inner_tail), VERIFY_ID_NONE},
    {0xa0, gn_outer_tail, sizeof(gn_outer_tail), VERIFY_ID_NONE},
    {0xa0, gn_long_len, sizeof(gn_long_len), VERIFY_ID_NONE},
    {0xa0, gn_short, sizeof(gn_short), VERIFY_ID_NONE},
    {0xa0, gn_empty, sizeof(gn_empty), VERIFY_ID_NONE},
    {0xa0, gn_other_oid, sizeof(gn_other_oid), VERIFY_ID_NONE}, /* HardwareModuleName */
    {0xa0, gn_no_oid, sizeof(gn_no_oid), VERIFY_ID_NONE},
    {0xa0, gn_prim0, sizeof(gn_prim0), VERIFY_ID_NONE},
    {0xa0, gn_xmpp, 0, VERIFY_ID_NONE},
    {0xa0, gn_xmpp, 3, VERIFY_ID_NONE}, /* cut inside the OID */
    {0x82, gn_dns, sizeof(gn_dns), VERIFY_ID_DNS},
    {0x82, gn_dns, 0, VERIFY_ID_NONE},
    {0x87, gn_dns, sizeof(gn_dns), VERIFY_ID_NONE}, /* iPAddress */
    {0x86, gn_dns, sizeof(gn_dns), VERIFY_ID_NONE}, /* URI */
};

TEST(general_name)
{
    for (size_t i = 0; i < ARRAY_SIZE(gn_rows); i++) {
        const uint8_t *v = NULL;
        size_t n = 0;
        enum verify_id got =
            verify_general_name(gn_rows[i].tag, gn_rows[i].p, gn_rows[i].len, &v, &n);

        EXPECT_EQ_MSG(gn_rows[i].want, got, "row %zu", i);
        if (got == VERIFY_ID_XMPP || got == VERIFY_ID_SRV)
            EXPECT_MSG(n == 2 && memcmp(v, "ab", 2) == 0, "row %zu: value", i);
    }
}

/* One certificate judged for one domain, with the flags the handshake would give plus extra
 * ones the TLS layer adds (name and purpose checks), which verify_cert() must ignore. */
static const struct {
    const char *cert, *domain;
    uint32_t extra;
    int want;
} cert_rows[] = {
    {"example.test", "example.test", 0, 0},
    {"example.test", "chat.example.test", 0, 0},
    {"example.test", "a.b.example.test", 0, XTP_EVERIFY},
    {"example.test", "evil.test", 0, XTP_EVERIFY},
    {"example.test", "example.test", MBEDTLS_X509_BADCERT_CN_MISMATCH, 0},
    {"other.test", "other.test", 0, 0},
    {"other.test", "example.test", 0, XTP_EVERIFY},
    {"xmpp-ids.other.test", "other.test", 0, 0},
    {"xmpp-ids.other.test", "OTHER.test", 0, 0},
    {"xmpp-ids.other.test", "a.other.test", 0, XTP_EVERIFY}, /* otherNames: no wildcards */
    {"srv-id.other.test", "other.test", 0, 0},
    {"srv-id.other.test", "example.test", 0, XTP_EVERIFY},
    {"xmppaddr.other.test", "other.test", 0, 0},
    {"xmppaddr.other.test", "example.test", 0, XTP_EVERIFY},
    {"near-miss.other.test", "other.test", 0, XTP_EVERIFY}, /* CN, client SRV-ID, user JID */
    {"wildcard.wild.test", "a.wild.test", 0, 0},
    {"wildcard.wild.test", "wild.test", 0, XTP_EVERIFY}, /* nor does its CN count */
    {"wildcard.wild.test", "a.b.wild.test", 0, XTP_EVERIFY},
    {"serverauth-only.other.test", "other.test",
     MBEDTLS_X509_BADCERT_EXT_KEY_USAGE | MBEDTLS_X509_BADCERT_NS_CERT_TYPE, 0},
    {"other.test", "other.test", MBEDTLS_X509_BADCERT_KEY_USAGE, 0},
    {"wrong-name", "example.test", 0, XTP_EVERIFY},
    {"expired.example.test", "example.test", 0, XTP_EEXPIRED},
    {"expired.example.test", "evil.test", 0, XTP_EEXPIRED}, /* dates before names */
    {"untrusted.example.test", "example.test", 0, XTP_EUNTRUSTED},
    {"untrusted.example.test", "evil.test", 0, XTP_EUNTRUSTED},
    {"rsa1024", "example.test", 0, XTP_EUNTRUSTED}, /* BADCERT_BAD_KEY */
    {"rsa2048.example.test", "example.test", 0, 0},
    {"example.test", "example.test", MBEDTLS_X509_BADCERT_REVOKED, XTP_EUNTRUSTED},
    {"example.test", "example.test", MBEDTLS_X509_BADCERT_OTHER, XTP_EUNTRUSTED},
    {"example.test", "example.test", MBEDTLS_X509_BADCERT_FUTURE, XTP_EEXPIRED},
};

TEST(cert_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(cert_rows); i++) {
        mbedtls_x509_crt c;
        struct verify_der d;
        struct verify_req r = {0};
        struct verify_res res;
        int got;

        load(&c, cert_rows[i].cert);
        d = (struct verify_der){c.raw.p, c.raw.len};
        r.chain = &d;
        r.nchain = 1;
        r.flags = flags_of(&c) | cert_rows[i].extra;
        r.domain = cert_rows[i].domain;
        got = verify_cert(&r, &res);
        EXPECT_EQ_MSG(cert_rows[i].want, got, "row %zu: %s for %s: %s", i, cert_rows[i].cert,
                      cert_rows[i].domain, res.why);
        EXPECT_EQ_MSG(got, res.err, "row %zu", i);
        EXPECT_MSG((got == 0) == (res.how != NULL), "row %zu: how", i);
        EXPECT_MSG(res.why[0] != '\0' && strlen(res.fp_sha256) == 64, "row %zu", i);
        mbedtls_x509_crt_free(&c);
    }
}

/* Runs one certificate through verify_cert() with the real flags. */
static int judge(const char *cert, const char *domain, const char *const *targets, size_t nt,
                 struct verify_res *res)
{
    mbedtls_x509_crt c;
    struct verify_der d;
    struct verify_req r = {0};
    int rc;

    load(&c, cert);
    d = (struct verify_der){c.raw.p, c.raw.len};
    r.chain = &d;
    r.nchain = 1;
    r.flags = flags_of(&c);
    r.domain = domain;
    r.srv_targets = targets;
    r.nsrv_targets = nt;
    rc = verify_cert(&r, res);
    mbedtls_x509_crt_free(&c);
    return rc;
}

TEST(result_fields)
{
    struct verify_res res;

    EXPECT_EQ(0, judge("example.test", "example.test", NULL, 0, &res));
    EXPECT_STR("4da543ddd223ed3e76b7b8321ae50fd927e73f914d607d606998a68282c5c6d3", res.fp_sha256);
    EXPECT_STR("CN=example.test", res.subject);
    EXPECT_STR("DNS:example.test, DNS:*.example.test", res.sans);
    EXPECT_EQ(2426093086LL, res.not_after); /* date -u -d 'Nov 17 18:44:46 2046 GMT' +%s */
    EXPECT_STR("PKIX", res.how);
    EXPECT_STR("DNS-ID example.test covers example.test", res.why);

    EXPECT_EQ(0, judge("xmpp-ids.other.test", "other.test", NULL, 0, &res));
    EXPECT_STR("SRV:_xmpp-server.other.test, XMPP:other.test", res.sans);
    EXPECT_STR("SRV-ID _xmpp-server.other.test covers other.test", res.why);
    EXPECT_EQ(0, judge("xmppaddr.other.test", "other.test", NULL, 0, &res));
    EXPECT_STR("XmppAddr other.test covers other.test", res.why);
}

TEST(why_lines)
{
    struct verify_res res;

    judge("other.test", "evil.test", NULL, 0, &res);
    EXPECT_STR("certificate for other.test, *.other.test does not cover evil.test", res.why);
    judge("near-miss.other.test", "other.test", NULL, 0, &res);
    EXPECT_STR("certificate for unrelated.invalid, _xmpp-client.other.test, user@other.test "
               "does not cover other.test",
               res.why);
    /* A long domain and SRV targets: the names give way, the domain (cut at 64 bytes) does
     * not; the line fills all 159 characters. */
    {
        static const char *const targets[] = {"xmpp.elsewhere.test"};
        const char *dom = "a-very-long-label-that-goes-on-and-on-and-on.example.invalid.test";

        judge("near-miss.other.test", dom, targets, 1, &res);
        EXPECT_STR("certificate for unrelated.invalid, _xmpp-client.other.tes... does not cover "
                   "a-very-long-label-that-goes-on-and-on-and-on.example.invalid.tes or its SRV "
                   "targets",
                   res.why);
    }
    judge("expired.example.test", "example.test", NULL, 0, &res);
    EXPECT_STR("certificate expired on 2021-01-01 00:00:00 UTC", res.why);
    EXPECT(res.how == NULL);
    judge("untrusted.example.test", "example.test", NULL, 0, &res);
    EXPECT_STR("untrusted certificate chain: not issued by a trusted CA", res.why);
    judge("rsa1024", "example.test", NULL, 0, &res);
    EXPECT_STR("untrusted certificate chain: unacceptable key (curve or RSA size)", res.why);
}

TEST(no_certificate)
{
    struct verify_req r = {.domain = "other.test"};
    struct verify_der empty = {NULL, 0};
    struct verify_res res;

    EXPECT_EQ(XTP_ENOCERT, verify_cert(&r, &res));
    EXPECT_STR("no certificate", res.why);
    EXPECT_STR("", res.fp_sha256);
    r.chain = &empty;
    r.nchain = 1;
    EXPECT_EQ(XTP_ENOCERT, verify_cert(&r, &res));
}

TEST(malformed)
{
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    struct verify_der d = {junk, sizeof(junk)};
    struct verify_req r = {.chain = &d, .nchain = 1, .domain = "other.test"};
    struct verify_res res;
    mbedtls_x509_crt c;

    EXPECT_EQ(XTP_EUNTRUSTED, verify_cert(&r, &res));
    EXPECT_STR("malformed certificate", res.why);
    EXPECT_EQ(64, strlen(res.fp_sha256));
    /* A real certificate cut short. */
    load(&c, "other.test");
    for (size_t cut = 1; cut < c.raw.len; cut += 37) {
        d = (struct verify_der){c.raw.p, cut};
        EXPECT_EQ_MSG(XTP_EUNTRUSTED, verify_cert(&r, &res), "cut %zu", cut);
    }
    /* One byte too many: mbedTLS would ignore it, we do not. */
    {
        uint8_t *longer = malloc(c.raw.len + 1);

        memcpy(longer, c.raw.p, c.raw.len);
        longer[c.raw.len] = 0;
        d = (struct verify_der){longer, c.raw.len + 1};
        EXPECT_EQ(XTP_EUNTRUSTED, verify_cert(&r, &res));
        EXPECT_STR("malformed certificate", res.why);
        d = (struct verify_der){longer, c.raw.len};
        EXPECT_EQ(0, verify_cert(&r, &res));
        free(longer);
    }
    mbedtls_x509_crt_free(&c);
}

TEST(flags_unknown)
{
    mbedtls_x509_crt c;
    struct verify_der d;
    struct verify_req r = {.nchain = 1, .domain = "example.test", .flags = UINT32_MAX};
    struct verify_res res;

    load(&c, "example.test");
    d = (struct verify_der){c.raw.p, c.raw.len};
    r.chain = &d;
    EXPECT_EQ(XTP_EUNTRUSTED, verify_cert(&r, &res));
    mbedtls_x509_crt_free(&c);
}

TEST(srv_targets)
{
    static const char *const good[] = {"nothing.invalid", "xmpp.other.test"};
    static const char *const bad[] = {"xmpp.elsewhere.test"};
    static const char *const as_target[] = {"other.test"};
    struct verify_res res;

    /* RFC 7673: a DNSSEC-validated SRV target is a DNS-ID reference too. */
    EXPECT_EQ(0, judge("other.test", "evil.test", good, 2, &res));
    EXPECT_STR("DNS-ID *.other.test covers SRV target xmpp.other.test", res.why);
    EXPECT_EQ(XTP_EVERIFY, judge("other.test", "evil.test", bad, 1, &res));
    EXPECT_STR("certificate for other.test, *.other.test does not cover evil.test or its SRV "
               "targets",
               res.why);
    /* ... but only for DNS-IDs: SRV-IDs and XmppAddrs name the source domain. */
    EXPECT_EQ(XTP_EVERIFY, judge("xmpp-ids.other.test", "evil.test", as_target, 1, &res));
}

TEST(fingerprint)
{
    char fp[65];

    verify_fingerprint((const uint8_t *)"abc", 3, fp);
    EXPECT_STR("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", fp);
}

/* DANE fixtures: a chain and its verify_der view. */
struct chain {
    mbedtls_x509_crt c[2];
    struct verify_der d[2];
    size_t n;
};

static void chain_load(struct chain *ch, const char *leaf, const char *issuer)
{
    ch->n = 0;
    load(&ch->c[0], leaf);
    ch->d[ch->n++] = (struct verify_der){ch->c[0].raw.p, ch->c[0].raw.len};
    if (issuer != NULL) {
        load(&ch->c[1], issuer);
        ch->d[ch->n++] = (struct verify_der){ch->c[1].raw.p, ch->c[1].raw.len};
    }
}

static void chain_free(struct chain *ch)
{
    for (size_t i = 0; i < ch->n; i++)
        mbedtls_x509_crt_free(&ch->c[i]);
}

static int judge_dane(struct chain *ch, const char *domain, const struct verify_tlsa_rr *rr,
                      size_t nrr, struct verify_res *res)
{
    struct verify_req r = {.chain = ch->d, .nchain = ch->n, .domain = domain};

    r.flags = flags_of(&ch->c[0]);
    r.tlsa = rr;
    r.ntlsa = nrr;
    return verify_cert(&r, res);
}

TEST(dane_ee)
{
    uint8_t spki[32], full[32], sha512[64], wrong[32];
    struct chain ch;
    struct verify_res res;
    struct verify_tlsa_rr rr = {3, 1, 1, spki, 32};

    /* untrusted.example.test: a CA no one trusts; DANE-EE does not care (RFC 7671 §5.1). */
    hex2bin("9d9d2bc897b047e846d648308792ee05dfa67ad64e6c5fc6a80e52e4e49d0d7b", spki);
    chain_load(&ch, "untrusted.example.test", NULL);
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    EXPECT_STR("DANE-EE", res.how);
    EXPECT_EQ(0, judge_dane(&ch, "evil.test", &rr, 1, &res)); /* names are not checked */
    memcpy(wrong, spki, 32);
    wrong[31] ^= 1;
    rr.data = wrong;
    EXPECT_EQ(XTP_EDANE, judge_dane(&ch, "example.test", &rr, 1, &res));
    EXPECT_STR("no TLSA record matches the certificate chain (1 usable)", res.why);
    EXPECT(res.how == NULL);
    /* 3 0 0 (the whole certificate), 3 0 1, 3 1 2. */
    rr = (struct verify_tlsa_rr){3, 0, 0, ch.d[0].der, ch.d[0].len};
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    mbedtls_sha256(ch.d[0].der, ch.d[0].len, full, 0);
    rr = (struct verify_tlsa_rr){3, 0, 1, full, 32};
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    mbedtls_sha512(ch.c[0].pk_raw.p, ch.c[0].pk_raw.len, sha512, 0);
    rr = (struct verify_tlsa_rr){3, 1, 2, sha512, 64};
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    chain_free(&ch);

    /* Expired, but DANE-EE ignores dates. */
    chain_load(&ch, "expired.example.test", NULL);
    rr = (struct verify_tlsa_rr){3, 0, 0, ch.d[0].der, ch.d[0].len};
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    chain_free(&ch);
}

TEST(dane_ta)
{
    uint8_t ta[32];
    struct chain ch;
    struct verify_res res;
    struct verify_tlsa_rr rr = {2, 0, 1, ta, 32};

    /* The untrusted CA, sent in the chain, named by a DANE-TA record. */
    chain_load(&ch, "untrusted.example.test", "untrusted-ca");
    mbedtls_sha256(ch.d[1].der, ch.d[1].len, ta, 0);
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    EXPECT_STR("DANE-TA", res.how);
    EXPECT_EQ(XTP_EVERIFY, judge_dane(&ch, "evil.test", &rr, 1, &res)); /* names still count */
    /* The leaf is not its own trust anchor. */
    mbedtls_sha256(ch.d[0].der, ch.d[0].len, ta, 0);
    EXPECT_EQ(XTP_EDANE, judge_dane(&ch, "example.test", &rr, 1, &res));
    chain_free(&ch);

    /* Anchor left out of the chain: a 2 0 0 record carries it. */
    chain_load(&ch, "untrusted.example.test", NULL);
    {
        mbedtls_x509_crt ca;

        load(&ca, "untrusted-ca");
        rr = (struct verify_tlsa_rr){2, 0, 0, ca.raw.p, ca.raw.len};
        EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
        /* The wrong anchor: the leaf does not chain to the trusted test CA. */
        mbedtls_x509_crt_free(&ca);
        load(&ca, "ca");
        rr = (struct verify_tlsa_rr){2, 0, 0, ca.raw.p, ca.raw.len};
        EXPECT_EQ(XTP_EDANE, judge_dane(&ch, "example.test", &rr, 1, &res));
        mbedtls_x509_crt_free(&ca);
    }
    chain_free(&ch);

    /* Not even a self-signed one, which mbedTLS would accept as locally trusted. */
    chain_load(&ch, "ca", NULL);
    rr = (struct verify_tlsa_rr){2, 0, 0, ch.d[0].der, ch.d[0].len};
    EXPECT_EQ(XTP_EDANE, verify_tlsa(ch.d, ch.n, 0, &rr, 1));
    chain_free(&ch);

    /* A matching anchor does not excuse an expired leaf. */
    chain_load(&ch, "expired.example.test", "ca");
    rr = (struct verify_tlsa_rr){2, 0, 1, ta, 32};
    mbedtls_sha256(ch.d[1].der, ch.d[1].len, ta, 0);
    EXPECT_EQ(XTP_EDANE, judge_dane(&ch, "example.test", &rr, 1, &res));
    chain_free(&ch);

    /* Anchor matched by its key (selector 1). */
    chain_load(&ch, "example.test", "ca");
    mbedtls_sha256(ch.c[1].pk_raw.p, ch.c[1].pk_raw.len, ta, 0);
    rr = (struct verify_tlsa_rr){2, 1, 1, ta, 32};
    EXPECT_EQ(0, judge_dane(&ch, "chat.example.test", &rr, 1, &res));
    chain_free(&ch);
}

TEST(dane_pkix)
{
    uint8_t h[32];
    struct chain ch;
    struct verify_res res;
    struct verify_tlsa_rr rr = {1, 1, 1, h, 32};

    /* PKIX-EE: the SPKI digest computed with openssl. */
    hex2bin("d68f0bd4e9c2f09ca425ac30c88500a027fa44e568db49494b209f31c88d5fed", h);
    chain_load(&ch, "example.test", "ca");
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    EXPECT_STR("PKIX-EE", res.how);
    EXPECT_EQ(XTP_EVERIFY, judge_dane(&ch, "evil.test", &rr, 1, &res));
    /* PKIX-TA names the CA we were sent. */
    mbedtls_sha256(ch.d[1].der, ch.d[1].len, h, 0);
    rr = (struct verify_tlsa_rr){0, 0, 1, h, 32};
    EXPECT_EQ(0, judge_dane(&ch, "example.test", &rr, 1, &res));
    EXPECT_STR("PKIX-TA", res.how);
    chain_free(&ch);
    /* ... but not one we were not sent, */
    chain_load(&ch, "example.test", NULL);
    EXPECT_EQ(XTP_EDANE, judge_dane(&ch, "example.test", &rr, 1, &res));
    chain_free(&ch);
    /* and PKIX usages need a PKIX-valid chain. */
    chain_load(&ch, "untrusted.example.test", "untrusted-ca");
    mbedtls_sha256(ch.d[1].der, ch.d[1].len, h, 0);
    EXPECT_EQ(XTP_EDANE, judge_dane(&ch, "example.test", &rr, 1, &res));
    mbedtls_sha256(ch.d[0].der, ch.d[0].len, h, 0);
    rr = (struct verify_tlsa_rr){1, 0, 1, h, 32};
    EXPECT_EQ(XTP_EDANE, judge_dane(&ch, "example.test", &rr, 1, &res));
    chain_free(&ch);
}

TEST(dane_unusable)
{
    static const uint8_t d32[32], d64[64];
    static const struct verify_tlsa_rr bad[] = {
        {4, 0, 1, d32, 32}, /* unknown usage */
        {3, 2, 1, d32, 32}, /* unknown selector */
        {3, 0, 3, d32, 32}, /* unknown matching type */
        {3, 0, 1, d64, 64}, /* SHA-256 of the wrong length */
        {3, 0, 2, d32, 32}, /* SHA-512 of the wrong length */
        {3, 0, 0, d32, 0},  /* empty */
    };
    struct chain ch;
    struct verify_res res;

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        EXPECT_MSG(!verify_tlsa_usable(&bad[i]), "row %zu", i);
    /* Only unusable records: as if there were none (RFC 6698 §4.1), PKIX decides. */
    chain_load(&ch, "example.test", NULL);
    EXPECT_EQ(0, judge_dane(&ch, "example.test", bad, ARRAY_SIZE(bad), &res));
    EXPECT_STR("PKIX", res.how);
    chain_free(&ch);
    chain_load(&ch, "untrusted.example.test", NULL);
    EXPECT_EQ(XTP_EUNTRUSTED, judge_dane(&ch, "example.test", bad, ARRAY_SIZE(bad), &res));
    chain_free(&ch);
}

TEST(tlsa_strongest)
{
    uint8_t ee[32], ta[32];
    struct chain ch;
    struct verify_tlsa_rr rr[3];

    chain_load(&ch, "example.test", "ca");
    mbedtls_sha256(ch.d[0].der, ch.d[0].len, ee, 0);
    mbedtls_sha256(ch.d[1].der, ch.d[1].len, ta, 0);
    rr[0] = (struct verify_tlsa_rr){0, 0, 1, ta, 32};
    rr[1] = (struct verify_tlsa_rr){2, 0, 1, ta, 32};
    rr[2] = (struct verify_tlsa_rr){3, 0, 1, ee, 32};
    EXPECT_EQ(3, verify_tlsa(ch.d, ch.n, 0, rr, 3));
    EXPECT_EQ(2, verify_tlsa(ch.d, ch.n, 0, rr, 2));
    EXPECT_EQ(0, verify_tlsa(ch.d, ch.n, 0, rr, 1));
    EXPECT_EQ(XTP_EDANE, verify_tlsa(ch.d, ch.n, MBEDTLS_X509_BADCERT_NOT_TRUSTED, rr, 1));
    EXPECT_EQ(XTP_EDANE, verify_tlsa(ch.d, 0, 0, rr, 3));
    EXPECT_EQ(XTP_EDANE, verify_tlsa(ch.d, ch.n, 0, rr, 0));
    chain_free(&ch);
}

static void setup(void)
{
    const char *src = getenv("XTP_SRC");

    if (src != NULL)
        snprintf(certdir, sizeof(certdir), "%s/tests/certs", src);
    else
        snprintf(certdir, sizeof(certdir), "../certs");
}

TEST(setup_certdir)
{
    mbedtls_x509_crt c;

    setup();
    load(&c, "ca");
    mbedtls_x509_crt_free(&c);
}

TEST_MAIN(setup_certdir, dns_id, general_name, cert_table, result_fields, why_lines, no_certificate,
          malformed, flags_unknown, srv_targets, fingerprint, dane_ee, dane_ta, dane_pkix,
          dane_unusable, tlsa_strongest)
