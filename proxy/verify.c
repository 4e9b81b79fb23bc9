/* verify.c: peer certificate identity and trust for an XMPP domain (verify.h has the rules).
 * Includes mbedTLS's X.509, ASN.1 and hash headers only: the TLS session stays in tls.c.
 * tests: test_verify.c, fuzz_verify.c */
#include "verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include "err.h"

/* Flags we do not hold against a certificate: the CN check (names are ours to judge) and the
 * purpose checks. RFC 6120 §13.7.2.1 and XEP-0178 let a server present its server certificate
 * as a client on s2s; CAs have stopped issuing clientAuth (Let's Encrypt since 2026). */
#define FLAGS_IGNORED                                                                              \
    (MBEDTLS_X509_BADCERT_CN_MISMATCH | MBEDTLS_X509_BADCERT_KEY_USAGE |                           \
     MBEDTLS_X509_BADCERT_EXT_KEY_USAGE | MBEDTLS_X509_BADCERT_NS_CERT_TYPE)
#define FLAGS_DATES (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)
#define FLAGS_NONE  UINT32_MAX /* mbedtls_ssl_get_verify_result() before any verification */

#define MAX_CHAIN    16  /* certificates of a presented chain we look at for DANE */
#define MAX_DNS_NAME 253 /* RFC 1035 §2.3.4, in presentation form without the final dot */

/* id-on-xmppAddr (RFC 6120 §13.7.1.4) and id-on-dnsSRV (RFC 4985), DER contents. */
static const uint8_t oid_xmppaddr[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05};
static const uint8_t oid_dnssrv[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07};

/* ------------------------------------------------------------------ text helpers */

/* A bounded string builder that never overflows and marks truncation with "...". */
struct text {
    char *buf;
    size_t cap, len;
    bool full;
};

static void text_init(struct text *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    t->full = false;
    buf[0] = '\0';
}

/* Appends n bytes; bytes outside printable ASCII become '?', so certificate contents cannot
 * forge log lines. */
static void text_add(struct text *t, const void *data, size_t n)
{
    const unsigned char *s = data;

    for (size_t i = 0; i < n && !t->full; i++) {
        if (t->len + 1 >= t->cap) {
            t->full = true;
            if (t->cap >= 4)
                memcpy(t->buf + t->cap - 4, "...", 4);
            return;
        }
        t->buf[t->len++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
        t->buf[t->len] = '\0';
    }
}

static void text_str(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static void set_why(struct verify_res *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_why(struct verify_res *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out->why, sizeof(out->why), fmt, ap);
    va_end(ap);
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive equality of two byte strings. */
static bool ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* Length without one trailing dot (the absolute and the relative form name the same host). */
static size_t strip_dot(const char *s, size_t len)
{
    return len > 0 && s[len - 1] == '.' ? len - 1 : len;
}

/* A DNS name in presentation form: labels of letters, digits, '-' and '_' (SRV labels),
 * none empty, none over 63 bytes, the whole at most 253. */
static bool dns_name_ok(const char *s, size_t len)
{
    size_t label = 0;

    if (len == 0 || len > MAX_DNS_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

/* ------------------------------------------------------------------ identifiers */

bool verify_dns_id(const char *presented, const char *reference)
{
    size_t plen = strip_dot(presented, strlen(presented));
    size_t rlen = strip_dot(reference, strlen(reference));
    const char *dot;

    if (!dns_name_ok(reference, rlen))
        return false;
    if (plen >= 2 && presented[0] == '*' && presented[1] == '.') {
        /* RFC 9525 §6.3: "*" is the whole left-most label and stands for exactly one label
         * of the reference. We also want two labels after it: "*.org" is no one's name. */
        const char *base = presented + 2;
        size_t blen = plen - 2;

        if (!dns_name_ok(base, blen) || memchr(base, '.', blen) == NULL)
            return false;
        dot = memchr(reference, '.', rlen);
        if (dot == NULL || dot == reference)
            return false;
        return ieq(dot + 1, rlen - (size_t)(dot + 1 - reference), base, blen);
    }
    return dns_name_ok(presented, plen) && ieq(presented, plen, reference, rlen);
}

enum verify_id verify_general_name(int tag, const uint8_t *p, size_t len, const uint8_t **val,
                                   size_t *vlen)
{
    /* mbedtls_asn1_get_tag() takes a non-const cursor but only reads through it. */
    unsigned char *q = (unsigned char *)p, *end = q + len;
    const uint8_t *oid;
    size_t oidlen, n;
    int want;

    if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME)) {
        *val = p;
        *vlen = len;
        return len > 0 ? VERIFY_ID_DNS : VERIFY_ID_NONE;
    }
    if (tag !=
        (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_X509_SAN_OTHER_NAME))
        return VERIFY_ID_NONE;
    /* OtherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
     * (RFC 5280 §4.2.1.6); mbedTLS hands us the SEQUENCE's contents. */
    if (mbedtls_asn1_get_tag(&q, end, &oidlen, MBEDTLS_ASN1_OID) != 0)
        return VERIFY_ID_NONE;
    oid = q;
    q += oidlen;
    if (oidlen == sizeof(oid_xmppaddr) && memcmp(oid, oid_xmppaddr, oidlen) == 0)
        want = MBEDTLS_ASN1_UTF8_STRING;
    else if (oidlen == sizeof(oid_dnssrv) && memcmp(oid, oid_dnssrv, oidlen) == 0)
        want = MBEDTLS_ASN1_IA5_STRING;
    else
        return VERIFY_ID_NONE;
    if (mbedtls_asn1_get_tag(&q, end, &n,
                             MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0) != 0 ||
        n != (size_t)(end - q))
        return VERIFY_ID_NONE;
    if (mbedtls_asn1_get_tag(&q, end, &n, want) != 0 || n != (size_t)(end - q) || n == 0)
        return VERIFY_ID_NONE;
    *val = q;
    *vlen = n;
    return want == MBEDTLS_ASN1_UTF8_STRING ? VERIFY_ID_XMPP : VERIFY_ID_SRV;
}

/* SRV-ID "_xmpp-server.DOMAIN" or "_xmpps-server.DOMAIN" (RFC 6120 §13.7.1.2, XEP-0368 for
 * the second), compared label-wise without wildcards (RFC 6125 §6.5.1). */
static bool srv_id_matches(const char *v, size_t n, const char *domain)
{
    static const char *const services[] = {"_xmpp-server.", "_xmpps-server."};
    size_t dlen = strip_dot(domain, strlen(domain));

    n = strip_dot(v, n);
    if (!dns_name_ok(v, n) || !dns_name_ok(domain, dlen))
        return false;
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
        size_t slen = strlen(services[i]);

        if (n > slen && ieq(v, slen, services[i], slen) && ieq(v + slen, n - slen, domain, dlen))
            return true;
    }
    return false;
}

/* XmppAddr: a JID whose whole text is the domain, no localpart or resource. Bytes are
 * compared ASCII case-insensitively; an internationalised domain matches only in the same
 * form (we do no IDNA mapping). */
static bool xmpp_addr_matches(const char *v, size_t n, const char *domain)
{
    size_t dlen = strip_dot(domain, strlen(domain));

    n = strip_dot(v, n);
    return dlen > 0 && memchr(v, '\0', n) == NULL && ieq(v, n, domain, dlen);
}

/* Walks the leaf's subjectAltName: writes out->sans and names (for a mismatch message) and
 * says whether an identifier covers r->domain or one of r->srv_targets; what matched goes to
 * match (for the success message). */
static bool names_match(const mbedtls_x509_crt *crt, const struct verify_req *r,
                        struct verify_res *out, struct text *names, char *match, size_t matchcap)
{
    static const char *const prefix[] = {"", "DNS:", "SRV:", "XMPP:"};
    static const char *const label[] = {"", "DNS-ID", "SRV-ID", "XmppAddr"};
    struct text sans;
    bool found = false;

    text_init(&sans, out->sans, sizeof(out->sans));
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL; s = s->next) {
        const uint8_t *v;
        size_t n;
        enum verify_id kind;
        char buf[MAX_DNS_NAME + 2];
        const char *hit = NULL;

        if (s->buf.p == NULL)
            continue; /* an empty list is one zeroed entry */
        kind = verify_general_name(s->buf.tag, s->buf.p, s->buf.len, &v, &n);
        if (kind == VERIFY_ID_NONE)
            continue;
        if (sans.len > 0)
            text_str(&sans, ", ");
        text_str(&sans, prefix[kind]);
        text_add(&sans, v, n);
        if (names->len > 0)
            text_str(names, ", ");
        text_add(names, v, n);
        if (found)
            continue;
        switch (kind) {
        case VERIFY_ID_DNS:
            if (n >= sizeof(buf) || memchr(v, '\0', n) != NULL)
                break;
            memcpy(buf, v, n);
            buf[n] = '\0';
            if (verify_dns_id(buf, r->domain))
                hit = r->domain;
            for (size_t i = 0; hit == NULL && i < r->nsrv_targets; i++)
                if (verify_dns_id(buf, r->srv_targets[i]))
                    hit = r->srv_targets[i];
            break;
        case VERIFY_ID_SRV:
            if (srv_id_matches((const char *)v, n, r->domain))
                hit = r->domain;
            break;
        case VERIFY_ID_XMPP:
            if (xmpp_addr_matches((const char *)v, n, r->domain))
                hit = r->domain;
            break;
        case VERIFY_ID_NONE:
            break;
        }
        if (hit != NULL) {
            struct text m;

            found = true;
            text_init(&m, match, matchcap);
            text_str(&m, label[kind]);
            text_str(&m, " ");
            text_add(&m, v, n);
            text_str(&m, hit == r->domain ? " covers " : " covers SRV target ");
            text_str(&m, hit);
        }
    }
    return found;
}

/* ------------------------------------------------------------------ chain flags */

static const struct {
    uint32_t flag;
    const char *text;
} flag_text[] = {
    {MBEDTLS_X509_BADCERT_NOT_TRUSTED, "not issued by a trusted CA"},
    {MBEDTLS_X509_BADCERT_REVOKED, "revoked"},
    {MBEDTLS_X509_BADCERT_BAD_MD, "signed with an unacceptable hash"},
    {MBEDTLS_X509_BADCERT_BAD_PK, "signed with an unacceptable algorithm"},
    {MBEDTLS_X509_BADCERT_BAD_KEY, "unacceptable key (curve or RSA size)"},
    {MBEDTLS_X509_BADCERT_MISSING, "certificate missing"},
    {MBEDTLS_X509_BADCERT_SKIP_VERIFY, "verification skipped"},
    {MBEDTLS_X509_BADCERT_OTHER, "rejected"},
    {MBEDTLS_X509_BADCRL_NOT_TRUSTED | MBEDTLS_X509_BADCRL_EXPIRED | MBEDTLS_X509_BADCRL_FUTURE |
         MBEDTLS_X509_BADCRL_BAD_MD | MBEDTLS_X509_BADCRL_BAD_PK | MBEDTLS_X509_BADCRL_BAD_KEY,
     "unusable CRL"},
};

/* The verdict of the handshake's chain check: 0, XTP_EUNTRUSTED or XTP_EEXPIRED, with why. */
static int chain_verdict(uint32_t flags, const mbedtls_x509_crt *leaf, struct verify_res *out)
{
    const mbedtls_x509_time *t;
    struct text why;
    uint32_t left;

    if (flags == FLAGS_NONE) {
        set_why(out, "certificate chain not verified (no verification result)");
        return XTP_EUNTRUSTED;
    }
    flags &= ~(uint32_t)FLAGS_IGNORED;
    if (flags == 0)
        return 0;
    if ((flags & ~(uint32_t)FLAGS_DATES) != 0) {
        const char *sep = "";

        text_init(&why, out->why, sizeof(out->why));
        text_str(&why, "untrusted certificate chain: ");
        left = flags & ~(uint32_t)FLAGS_DATES;
        for (size_t i = 0; i < sizeof(flag_text) / sizeof(flag_text[0]); i++) {
            if ((left & flag_text[i].flag) == 0)
                continue;
            text_str(&why, sep);
            text_str(&why, flag_text[i].text);
            left &= ~flag_text[i].flag;
            sep = ", ";
        }
        if (left != 0) {
            char hex[40];

            snprintf(hex, sizeof(hex), "%sflags 0x%x", sep, (unsigned)left);
            text_str(&why, hex);
        }
        if (flags & FLAGS_DATES)
            text_str(&why, ", and out of its validity period");
        return XTP_EUNTRUSTED;
    }
    /* Dates only. Say which end when it is the leaf's own; else an issuer's. */
    if (mbedtls_x509_time_is_past(&leaf->valid_to)) {
        t = &leaf->valid_to;
        set_why(out, "certificate expired on %04d-%02d-%02d %02d:%02d:%02d UTC", t->year, t->mon,
                t->day, t->hour, t->min, t->sec);
    } else if (mbedtls_x509_time_is_future(&leaf->valid_from)) {
        t = &leaf->valid_from;
        set_why(out, "certificate not valid before %04d-%02d-%02d %02d:%02d:%02d UTC", t->year,
                t->mon, t->day, t->hour, t->min, t->sec);
    } else {
        set_why(out, "an issuer certificate of the chain is expired or not yet valid");
    }
    return XTP_EEXPIRED;
}

/* ------------------------------------------------------------------ DANE */

/* Parses one DER certificate into an empty crt, without copying: der must outlive crt.
 * mbedTLS ignores bytes after the certificate's SEQUENCE; we do not, so that a digest of the
 * input is a digest of the certificate. */
static bool parse_exact(mbedtls_x509_crt *crt, const uint8_t *der, size_t len)
{
    return mbedtls_x509_crt_parse_der_nocopy(crt, der, len) == 0 && crt->raw.len == len;
}

bool verify_tlsa_usable(const struct verify_tlsa_rr *rr)
{
    if (rr->usage > 3 || rr->selector > 1 || rr->data == NULL)
        return false;
    switch (rr->mtype) {
    case 0:
        return rr->len > 0;
    case 1:
        return rr->len == 32;
    case 2:
        return rr->len == 64;
    default:
        return false;
    }
}

/* Does rr's association data match this certificate (full DER) or its key (SPKI DER)? */
static bool tlsa_matches(const struct verify_tlsa_rr *rr, const mbedtls_x509_crt *crt)
{
    const uint8_t *d = rr->selector == 0 ? crt->raw.p : crt->pk_raw.p;
    size_t n = rr->selector == 0 ? crt->raw.len : crt->pk_raw.len;
    uint8_t h[64];

    if (d == NULL || n == 0)
        return false;
    switch (rr->mtype) {
    case 0:
        return rr->len == n && memcmp(rr->data, d, n) == 0;
    case 1:
        if (mbedtls_sha256(d, n, h, 0) != 0)
            return false;
        return memcmp(rr->data, h, 32) == 0;
    case 2:
        if (mbedtls_sha512(d, n, h, 0) != 0)
            return false;
        return memcmp(rr->data, h, 64) == 0;
    default:
        return false;
    }
}

/* Whether the presented chain leads from the leaf to ta, checked by mbedTLS with ta as the
 * only trust anchor (signatures, dates, basic constraints, key sizes of the default profile).
 * The other presented certificates serve as intermediates. */
static bool chain_reaches(const struct verify_der *chain, size_t n, const uint8_t *ta_der,
                          size_t ta_len)
{
    mbedtls_x509_crt ta, path;
    uint32_t flags = 0;
    bool ok = false;

    /* A leaf is not its own anchor: that would be DANE-EE without the name checks' point. */
    if (ta_len == chain[0].len && memcmp(ta_der, chain[0].der, ta_len) == 0)
        return false;
    mbedtls_x509_crt_init(&ta);
    mbedtls_x509_crt_init(&path);
    if (mbedtls_x509_crt_parse_der_nocopy(&ta, ta_der, ta_len) != 0 ||
        mbedtls_x509_crt_parse_der_nocopy(&path, chain[0].der, chain[0].len) != 0)
        goto done;
    for (size_t i = 1; i < n; i++)
        (void)mbedtls_x509_crt_parse_der_nocopy(&path, chain[i].der, chain[i].len);
    ok = mbedtls_x509_crt_verify(&path, &ta, NULL, NULL, &flags, NULL, NULL) == 0 && flags == 0;
done:
    mbedtls_x509_crt_free(&path);
    mbedtls_x509_crt_free(&ta);
    return ok;
}

int verify_tlsa(const struct verify_der *chain, size_t nchain, uint32_t flags,
                const struct verify_tlsa_rr *rr, size_t nrr)
{
    mbedtls_x509_crt crt[MAX_CHAIN];
    bool parsed[MAX_CHAIN];
    bool pkix_ok = flags != FLAGS_NONE && (flags & ~(uint32_t)FLAGS_IGNORED) == 0;
    size_t n = nchain < MAX_CHAIN ? nchain : MAX_CHAIN;
    int best = XTP_EDANE;

    for (size_t i = 0; i < n; i++) {
        mbedtls_x509_crt_init(&crt[i]);
        parsed[i] = chain[i].der != NULL && parse_exact(&crt[i], chain[i].der, chain[i].len);
    }
    if (n == 0 || !parsed[0])
        goto done;
    for (size_t k = 0; k < nrr && best < 3; k++) {
        const struct verify_tlsa_rr *t = &rr[k];

        if (!verify_tlsa_usable(t) || t->usage <= best)
            continue;
        switch (t->usage) {
        case 3: /* DANE-EE */
        case 1: /* PKIX-EE */
            if ((t->usage == 3 || pkix_ok) && tlsa_matches(t, &crt[0]))
                best = t->usage;
            break;
        case 2: /* DANE-TA: a presented issuer, or the record itself as the anchor */
            for (size_t i = 1; i < n && best < 2; i++)
                if (parsed[i] && tlsa_matches(t, &crt[i]) &&
                    chain_reaches(chain, n, chain[i].der, chain[i].len))
                    best = 2;
            if (best < 2 && t->selector == 0 && t->mtype == 0 &&
                chain_reaches(chain, n, t->data, t->len))
                best = 2;
            break;
        case 0: /* PKIX-TA */
            for (size_t i = 1; i < n && pkix_ok && best < 0; i++)
                if (parsed[i] && tlsa_matches(t, &crt[i]))
                    best = 0;
            break;
        }
    }
done:
    for (size_t i = 0; i < n; i++)
        mbedtls_x509_crt_free(&crt[i]);
    return best;
}

/* ------------------------------------------------------------------ the verdict */

void verify_fingerprint(const uint8_t *der, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[32];

    if (mbedtls_sha256(der, len, h, 0) != 0) {
        out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[64] = '\0';
}

static long long unix_time(const mbedtls_x509_time *t)
{
    struct tm tm = {
        .tm_year = t->year - 1900,
        .tm_mon = t->mon - 1,
        .tm_mday = t->day,
        .tm_hour = t->hour,
        .tm_min = t->min,
        .tm_sec = t->sec,
    };

    return (long long)timegm(&tm);
}

/* "certificate for NAMES does not cover DOMAIN": the names are cut short, never the domain
 * (itself cut at 64 bytes), so the line always says what was asked for. */
static void why_mismatch(struct verify_res *out, const struct verify_req *r, const char *names)
{
    char tail[120];
    struct text t, w;
    size_t room, n = strlen(names);

    text_init(&t, tail, sizeof(tail));
    text_str(&t, " does not cover ");
    text_add(&t, r->domain, strnlen(r->domain, 64));
    if (r->nsrv_targets > 0)
        text_str(&t, " or its SRV targets");
    text_init(&w, out->why, sizeof(out->why));
    if (n == 0) {
        text_str(&w, "certificate has no DNS-ID, SRV-ID or XmppAddr;");
        text_str(&w, tail);
        return;
    }
    text_str(&w, "certificate for ");
    room = sizeof(out->why) - 1 - w.len - t.len;
    if (n > room) {
        text_add(&w, names, room - 3);
        text_str(&w, "...");
    } else {
        text_add(&w, names, n);
    }
    text_str(&w, tail);
}

static const char *const usage_name[] = {"PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE"};

int verify_cert(const struct verify_req *r, struct verify_res *out)
{
    mbedtls_x509_crt crt;
    char subject[512], names_buf[sizeof(out->why)], match[sizeof(out->why)];
    struct text names, subj;
    size_t usable = 0;
    bool named;
    int rc, dn;

    XTP_ASSERT(r->domain != NULL);
    memset(out, 0, sizeof(*out));
    if (r->nchain == 0 || r->chain == NULL || r->chain[0].der == NULL || r->chain[0].len == 0) {
        set_why(out, "no certificate");
        return out->err = XTP_ENOCERT;
    }
    verify_fingerprint(r->chain[0].der, r->chain[0].len, out->fp_sha256);
    mbedtls_x509_crt_init(&crt);
    if (!parse_exact(&crt, r->chain[0].der, r->chain[0].len)) {
        set_why(out, "malformed certificate");
        rc = XTP_EUNTRUSTED;
        goto done;
    }
    dn = mbedtls_x509_dn_gets(subject, sizeof(subject), &crt.subject);
    text_init(&subj, out->subject, sizeof(out->subject));
    text_add(&subj, subject, dn > 0 ? (size_t)dn : 0);
    out->not_after = unix_time(&crt.valid_to);
    text_init(&names, names_buf, sizeof(names_buf));
    match[0] = '\0';
    named = names_match(&crt, r, out, &names, match, sizeof(match));

    for (size_t i = 0; i < r->ntlsa; i++)
        usable += verify_tlsa_usable(&r->tlsa[i]);
    if (usable > 0) {
        /* RFC 6698 §4.1: with usable records, one of them must match; PKIX alone is not
         * enough, and DANE-EE needs nothing more (RFC 7671 §5.1). */
        int u = verify_tlsa(r->chain, r->nchain, r->flags, r->tlsa, r->ntlsa);

        if (u < 0) {
            set_why(out, "no TLSA record matches the certificate chain (%zu usable)", usable);
            rc = XTP_EDANE;
            goto done;
        }
        out->how = usage_name[u];
        if (u == 3) {
            set_why(out, "TLSA DANE-EE record matches the certificate");
            rc = 0;
            goto done;
        }
    } else {
        rc = chain_verdict(r->flags, &crt, out);
        if (rc != 0)
            goto done;
        out->how = "PKIX";
    }
    if (!named) {
        out->how = NULL;
        why_mismatch(out, r, names_buf);
        rc = XTP_EVERIFY;
        goto done;
    }
    set_why(out, "%s", match);
    rc = 0;
done:
    mbedtls_x509_crt_free(&crt);
    return out->err = rc;
}
