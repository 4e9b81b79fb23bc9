/* srv.h: the DNS data s2s-out works with, taken apart with strict bounds: SRV rdata (RFC 2782),
 * TLSA rdata (RFC 6698), domain names in wire form as text, and the order in which SRV targets
 * are tried (RFC 2782 priority and weight, XEP-0368 mixing of _xmpps-server and _xmpp-server).
 * Rdata is what libunbound hands over in ub_result->data[i]: the record's RDATA without the
 * 16-bit RDLENGTH in front, names uncompressed. A leaf: no loop, no logging, no allocation.
 * tests: test_srv.c, fuzz_dns.c */
#ifndef XTP_SRV_H
#define XTP_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_NAME_MAX         253  /* a name's text form, without the final dot (RFC 1035 §2.3.4) */
#define SRV_PORT_XMPP_SERVER 5269 /* the A/AAAA fallback port (RFC 6120 §3.2.2) */

/* One SRV record. */
struct srv_rec {
    uint16_t priority;
    uint16_t weight;
    uint16_t port;
    bool direct_tls;               /* from _xmpps-server (XEP-0368); set by srv_parse_set() */
    char target[SRV_NAME_MAX + 1]; /* lower-case host name without the final dot; "" is "." */
};

/* One TLSA record (RFC 6698 §2.1). Parsing does not judge usage, selector or matching type
 * (RFC 7671 §4: unknown values make a record unusable, which is the verifier's call), but a
 * SHA2-256 or SHA2-512 association of the wrong length is refused. */
struct srv_tlsa {
    uint8_t usage;
    uint8_t selector;
    uint8_t mtype;
    const uint8_t *data; /* borrowed: points into the rdata given to srv_tlsa_parse() */
    size_t len;          /* >= 1 */
};

/* Converts the uncompressed wire-form name at wire[0..len) to lower-case text without the final
 * dot ("" for the root). *used gets the bytes the name took, its final zero octet included.
 * Labels may hold only letters, digits, '-' and, unless host is set, '_'; anything else (dots,
 * spaces, NUL, bytes >= 0x80) is refused rather than escaped, because these names end up in
 * logs, in further queries and in TLS. With host set the name must also be a host name
 * (RFC 1123 §2.1: no label starts or ends with '-'; RFC 3696 §2: the last label is not all
 * digits) and not the root.
 * Returns 0, -EBADMSG for malformed wire form (a label over 63 octets, a compression pointer,
 * a name over 255 octets, truncation), -EINVAL for a forbidden byte or a name that is not a
 * host name, -ENOBUFS when out (outlen bytes) cannot hold the text and its NUL. */
int srv_name_text(const uint8_t *wire, size_t len, size_t *used, char *out, size_t outlen,
                  bool host);

/* Checks that text (any letter case, no final dot) is a host name by the rules above, at most
 * SRV_NAME_MAX characters. 0 or -EINVAL. An IPv4 literal fails (its last label is numeric). */
int srv_host_check(const char *text);

/* Parses SRV rdata: priority, weight, port (network order) and the target, which must be the
 * root or a host name. Nothing may follow the target. 0, or -EBADMSG / -EINVAL as for
 * srv_name_text(). out->direct_tls is set to false. */
int srv_parse(const uint8_t *rdata, size_t len, struct srv_rec *out);

/* Parses TLSA rdata: usage, selector, matching type, then at least one octet of association
 * data (exactly 32 for matching type 1, 64 for type 2). 0 or -EBADMSG. */
int srv_tlsa_parse(const uint8_t *rdata, size_t len, struct srv_tlsa *out);

/* What one SRV answer says about its service. */
enum srv_set {
    SRV_SET_EMPTY,    /* no records (NODATA or NXDOMAIN: the caller says which it got) */
    SRV_SET_RECORDS,  /* at least one usable record */
    SRV_SET_DECLINED, /* a single record with target "." (RFC 2782): service not offered */
    SRV_SET_FAILED,   /* records, none usable (malformed, not a host name, port 0) */
};

/* Parses the records of one SRV RRset as libunbound gives them: data[] is NULL-terminated and
 * len[i] is the length of data[i]. Usable records are appended to out[*nout], at most max in
 * all (further ones are ignored), each with direct_tls set as given. A "." record among other
 * records is skipped, as are unusable ones. Returns what the set says (above). */
enum srv_set srv_parse_set(char *const *data, const int *len, bool direct_tls, struct srv_rec *out,
                           size_t max, size_t *nout);

/* What to do with the two SRV answers of one domain. */
enum srv_plan {
    SRV_PLAN_RECORDS,   /* connect to the SRV targets */
    SRV_PLAN_FALLBACK,  /* no SRV at all: A/AAAA of the domain, port 5269, STARTTLS */
    SRV_PLAN_NOSERVICE, /* "." said no, and nothing else offered: XTP_ENXDOMAIN */
    SRV_PLAN_FAILED,    /* a lookup failed and nothing else offered: XTP_EDNS */
};

/* Combines the _xmpps-server (direct) and _xmpp-server (starttls) answers. Any usable record
 * wins. Otherwise a failed lookup (bogus, SERVFAIL, timeout, unusable records) fails the whole:
 * RFC 7673 §3.1 says to abort rather than fall back, and falling back would let whoever broke
 * the answer pick the port. Otherwise a "." answer means no service: XEP-0368 §5 forbids the
 * A/AAAA fallback once the domain uses SRV. Only two empty answers fall back (RFC 6120
 * §3.2.2). */
enum srv_plan srv_plan(enum srv_set direct, enum srv_set starttls);

/* A uniform random number in [0, n), n >= 1. Tests inject fixed sequences. */
typedef uint32_t srv_rand_fn(void *arg, uint32_t n);

#define SRV_ORDER_PREFER_DIRECT 1u /* within a priority, Direct TLS records go first */

/* Orders recs[0..n) for connection attempts (RFC 2782, "Usage rules"): ascending priority;
 * within a priority, repeatedly pick one record at random with probability proportional to its
 * weight, zero-weight records placed first so that they have only a small chance while others
 * weigh more (with all weights zero, the order is kept). XEP-0368 §3 says both services' records
 * SHOULD be mixed as one set and lets a client prefer one kind: SRV_ORDER_PREFER_DIRECT does the
 * weighted pick among the Direct TLS records of a priority before its STARTTLS ones. The sort is
 * stable; n may be 0. rnd gets at most 65535 * n + 1, so n must stay below 65536. */
void srv_order(struct srv_rec *recs, size_t n, unsigned flags, srv_rand_fn *rnd, void *arg);

#endif
