/* verify.h: is a peer's certificate good for an XMPP domain? RFC 6120 §13.7.1.2 and §13.7.2.1,
 * RFC 6125 as updated by RFC 9525 (DNS-ID and SRV-ID, no CN fallback), XEP-0178, XmppAddr
 * (RFC 6120 §13.7.1.4), and DANE TLSA (RFC 6698, RFC 7671, RFC 7673).
 *
 * mbedTLS checks the chain during the handshake (authmode VERIFY_OPTIONAL); tls.c hands us its
 * verdict (mbedtls_ssl_get_verify_result()) and the DER certificates the peer sent. We judge
 * the names ourselves, because mbedTLS knows neither SRV-ID nor XmppAddr. Pure functions of
 * their arguments: no state, no logging, thread-safe. tests: test_verify.c, fuzz_verify.c */
#ifndef XTP_VERIFY_H
#define XTP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One DER certificate, borrowed. */
struct verify_der {
    const uint8_t *der;
    size_t len;
};

/* One TLSA record (RFC 6698 §2.1) from a DNSSEC-validated answer; data is borrowed. */
struct verify_tlsa_rr {
    uint8_t usage;    /* 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218 names) */
    uint8_t selector; /* 0 full certificate, 1 SubjectPublicKeyInfo */
    uint8_t mtype;    /* 0 exact, 1 SHA-256, 2 SHA-512 */
    const uint8_t *data;
    size_t len;
};

struct verify_req {
    const struct verify_der *chain; /* as the peer sent it, leaf first; borrowed */
    size_t nchain;                  /* 0: the peer sent no certificate */
    uint32_t flags;                 /* mbedtls_ssl_get_verify_result(); UINT32_MAX = none */
    const char *domain;             /* the reference identity: an XMPP domain, lower case */
    /* Host names learned from DNSSEC-validated SRV records of domain: also accepted as DNS-ID
     * references (RFC 7673; RFC 7525 §6.1 forbids this for insecurely learned names). */
    const char *const *srv_targets;
    size_t nsrv_targets;
    /* DNSSEC-validated TLSA records for the endpoint (RFC 7673 §3: at the SRV target and
     * port). None, or none usable: PKIX decides. Usable ones decide alone (see verify_cert). */
    const struct verify_tlsa_rr *tlsa;
    size_t ntlsa;
};

struct verify_res {
    int err;             /* what verify_cert() returned */
    const char *how;     /* on success: "PKIX", "DANE-EE", "DANE-TA", "PKIX-EE" or "PKIX-TA" */
    char why[160];       /* one line for the log: what matched, or what is wrong */
    char fp_sha256[65];  /* of the leaf's DER, lower-case hex; "" when there is no leaf */
    char subject[128];   /* the leaf's subject DN, printable ASCII */
    char sans[256];      /* "DNS:a.test, SRV:_xmpp-server.a.test, XMPP:a.test, ..." */
    long long not_after; /* the leaf's notAfter as Unix time; 0 when unknown */
};

/* Judges the peer's certificate for r->domain and fills *out (always, as far as the leaf
 * parses). Returns 0 when it is valid for the domain, else:
 *   XTP_ENOCERT     no certificate was sent;
 *   XTP_EUNTRUSTED  the leaf does not parse, or the chain does not lead to a trusted CA, a
 *                   signature or key is unacceptable, or it is revoked;
 *   XTP_EEXPIRED    a certificate of the chain is expired or not yet valid (the chain is
 *                   trusted otherwise);
 *   XTP_EVERIFY     the chain is fine but no identifier covers the domain (RFC 6125 §6);
 *   XTP_EDANE       usable TLSA records exist but none matches (RFC 6698 §4.1: no PKIX fallback).
 * Flags ignored: MBEDTLS_X509_BADCERT_CN_MISMATCH (we check names here), KEY_USAGE,
 * EXT_KEY_USAGE and NS_CERT_TYPE: a serverAuth-only certificate (Let's Encrypt since 2026)
 * must authenticate an inbound s2s peer (XEP-0178). Every other flag fails.
 * Identifiers: dNSName (verify_dns_id()), SRV-ID _xmpp-server.DOMAIN or _xmpps-server.DOMAIN
 * (RFC 4985 SRVName, RFC 6120 §13.7.1.2), XmppAddr equal to DOMAIN. The subject CN is never
 * used (RFC 9525 removed the CN-ID). With usable TLSA records (see verify_tlsa()): DANE-EE alone
 * suffices, names and dates are not checked (RFC 7671 §5.1); DANE-TA, PKIX-TA and PKIX-EE still
 * need a name match. */
int verify_cert(const struct verify_req *r, struct verify_res *out);

/* RFC 6125 §6.4 / RFC 9525 §6.3 DNS-ID match, ASCII case-insensitive, one trailing dot
 * ignored on either side. A wildcard must be the whole left-most label ("*.example.org"),
 * stands for exactly one non-empty label, never matches the bare parent, and is ignored
 * unless at least two labels follow it ("*.org" matches nothing). Presented names with
 * characters outside letters, digits, '-', '_', '.' (and the one '*') match nothing. */
bool verify_dns_id(const char *presented, const char *reference);

/* The kinds of subjectAltName entry we use. */
enum verify_id {
    VERIFY_ID_NONE = 0, /* malformed, or a kind we do not use (IP, URI, other otherNames) */
    VERIFY_ID_DNS,      /* dNSName */
    VERIFY_ID_SRV,      /* otherName id-on-dnsSRV 1.3.6.1.5.5.7.8.7, IA5String (RFC 4985) */
    VERIFY_ID_XMPP,     /* otherName id-on-xmppAddr 1.3.6.1.5.5.7.8.5, UTF8String */
};

/* Decodes one GeneralName as mbedTLS keeps it in mbedtls_x509_crt.subject_alt_names: tag is
 * the GeneralName's tag byte, p/len its contents. On success *val and *vlen point into p at the
 * identifier's bytes (not NUL-terminated, not checked for NUL). Strict DER bounds: trailing
 * bytes anywhere make the entry VERIFY_ID_NONE. */
enum verify_id verify_general_name(int tag, const uint8_t *p, size_t len, const uint8_t **val,
                                   size_t *vlen);

/* SHA-256 of der as 64 lower-case hex digits and a NUL. */
void verify_fingerprint(const uint8_t *der, size_t len, char out[65]);

/* DANE (RFC 6698 §2.1, RFC 7671): does an usable record authenticate the chain? chain[0] is
 * the leaf. Per usage:
 *   3 DANE-EE  matches the leaf; nothing else is checked (RFC 7671 §5.1).
 *   2 DANE-TA  matches chain[1..] (or is itself a full certificate, selector 0 mtype 0, when
 *              the peer left its trust anchor out, RFC 7671 §5.2); then the leaf must chain
 *              up to that anchor, signatures and dates checked by mbedTLS with the anchor as
 *              the only trusted certificate. A leaf is never its own trust anchor.
 *   1 PKIX-EE  matches the leaf, and flags (from the handshake) must be clean as for PKIX.
 *   0 PKIX-TA  matches chain[1..], and flags must be clean. A root that the peer did not send
 *              is not seen: such records cannot match.
 * Records with an unknown usage, selector or matching type, or a digest of the wrong length,
 * are unusable and skipped (RFC 6698 §4.1). Names are not checked here. Returns the usage of
 * the strongest record that authenticates (3 > 2 > 1 > 0), XTP_EDANE if none does. */
int verify_tlsa(const struct verify_der *chain, size_t nchain, uint32_t flags,
                const struct verify_tlsa_rr *rr, size_t nrr);

/* Whether a TLSA record has parameters verify_tlsa() understands. */
bool verify_tlsa_usable(const struct verify_tlsa_rr *rr);

#endif
