/* dns.h: where s2s-out connects for a remote XMPP domain. One lookup asks, in parallel,
 * _xmpps-server._tcp.DOMAIN (Direct TLS, XEP-0368) and _xmpp-server._tcp.DOMAIN (STARTTLS,
 * RFC 6120 §3.2.1) for SRV, orders the records (RFC 2782, srv.h), resolves every target's AAAA
 * and A, and, where DNSSEC validated the SRV answer and the addresses, the endpoint's TLSA
 * records (RFC 7673). Without any SRV record it falls back to the domain's AAAA/A on port 5269
 * with STARTTLS (RFC 6120 §3.2.2). The result is a list of candidates to try in order.
 *
 * libunbound does the resolving and validating, one struct ub_ctx per loop, driven from the
 * loop through ub_fd() (a uv_poll_t) and ub_process(). The ctx runs its resolver in a thread
 * (ub_ctx_async(ctx, 1)), not in the forked process libunbound defaults to: a forked child
 * would inherit every listening socket, session and private key of the proxy, would be
 * forked from a process whose other threads may hold locks, and answers would cross a process
 * boundary for nothing; with a thread, ub_cancel() is a flag and ub_ctx_delete() joins it.
 *
 * Security of answers: an answer DNSSEC calls bogus (or any failure other than "no such
 * record") never falls back to something weaker: a bogus or failed SRV answer gives no A
 * fallback; a bogus address answer drops its target; a bogus or failed TLSA answer drops its
 * endpoint (RFC 7673 §3.1, §3.2, §3.4; RFC 6698 §4.1). Insecure answers are used and flagged.
 *
 * The lead's s2s-out session owns the resolve.static overrides: they never reach this module.
 * tests: test_dns.c */
#ifndef XTP_DNS_H
#define XTP_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "srv.h"

#define DNS_DEFAULT_TIMEOUT_MS   10000
#define DNS_DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key" /* Debian's dns-root-data */
#define DNS_MAX_SRV              16                        /* records used per SRV name */
#define DNS_MAX_TARGETS          16 /* distinct SRV targets resolved per lookup */
#define DNS_MAX_ADDRS            8  /* addresses used per target and family */
#define DNS_MAX_TLSA             8  /* TLSA records kept per endpoint */
#define DNS_MAX_CAND             32 /* candidates per result */

struct dns_opts {
    /* Upstream resolvers as "ADDR" or "ADDR@PORT" (IPv4 or IPv6), NULL-terminated. NULL: the
     * nameservers of /etc/resolv.conf. An empty list: no forwarding, libunbound recurses from
     * the root itself (the best place for DNSSEC). With forwarders, loopback ones are allowed
     * (do-not-query-localhost: no), since 127.0.0.53-style local resolvers are common. */
    const char *const *forwarders;
    /* DNSSEC trust anchors in a file (DS or DNSKEY lines, read only). NULL: the file named by
     * DNS_DEFAULT_TRUST_ANCHOR if it is readable, else no validation. "": no validation. A
     * forwarder that strips RRSIGs turns every answer bogus once an anchor is set. */
    const char *trust_anchor_file;
    uint64_t timeout_ms;    /* per lookup, all queries included; 0: DNS_DEFAULT_TIMEOUT_MS */
    bool prefer_direct_tls; /* SRV_ORDER_PREFER_DIRECT; default off: XEP-0368 §3 mixes both */
    /* Extra ub_ctx_set_option() pairs, NULL-terminated: {"local-zone:", "test. static",
     * "local-data:", "a.test. A 127.0.0.1", NULL}. For tests and experts. */
    const char *const *ub_options;
    const char *ub_config; /* an unbound.conf read before everything else (tests: auth-zone) */
};

/* One address to try. */
struct dns_cand {
    struct sockaddr_storage addr; /* AF_INET6 or AF_INET, port set */
    socklen_t addrlen;
    bool direct_tls;  /* TLS from the first byte (an _xmpps-server record); else STARTTLS */
    bool secure;      /* DNSSEC validated the SRV answer (or on fallback the absence of SRV
                         records) and this address's RRset */
    const char *host; /* the SRV target (on fallback the domain): lower case, no final dot.
                         For logs and DANE; SNI and the certificate check use the XMPP domain
                         (design.md, s2s-out) */
    const struct srv_tlsa *tlsa; /* the validated TLSA RRset of _PORT._tcp.HOST (RFC 7673
                                    §3.3); ntlsa == 0: none, or not secure: use PKIX */
    size_t ntlsa;
};

/* The outcome of one lookup. Owned by the callback's receiver: dns_result_free() it. */
struct dns_result {
    /* 0 (ncand >= 1); XTP_ENXDOMAIN: the domain has no XMPP service (NXDOMAIN, "." SRV
     * targets, or targets without addresses); XTP_EDNS: a lookup failed (timeout, SERVFAIL,
     * bogus, unusable records: why says which); XTP_ESHUTDOWN: dns_close() ran first;
     * -EINVAL: the domain is not a host name (IP literals included); -ENOMEM. */
    int err;
    char why[192];         /* for the log; with err == 0 it names what was dropped, if anything */
    bool srv_secure;       /* both SRV answers (records or their absence) validated by DNSSEC */
    bool fallback;         /* no SRV records: the candidates are the domain's own addresses */
    struct dns_cand *cand; /* in the order to try; within a target AAAA and A alternate,
                              IPv6 first (RFC 8305 §4), so a broken IPv6 path costs one try */
    size_t ncand;
};

struct dns;
struct dns_query;

/* Receives a lookup's outcome and owns r from then on. Runs from the loop, never inside
 * dns_lookup() or dns_cancel(). The query handle is gone when this runs. */
typedef void dns_done_fn(void *arg, struct dns_result *r);

/* Called once dns_close() has released everything. */
typedef void dns_closed_fn(void *arg);

/* Creates the resolver of one loop. Returns NULL with a message in err (errlen bytes) when
 * libunbound refuses the options (a bad forwarder, an unreadable trust anchor, ...). */
struct dns *dns_new(uv_loop_t *loop, const struct dns_opts *o, char *err, size_t errlen);

/* Shuts the resolver down: lookups still in flight complete with XTP_ESHUTDOWN (from the loop,
 * before cb), then the handles close, the libunbound thread is joined and cb(arg) runs. The
 * loop must keep running until then. No dns_lookup() after this. d == NULL, or a second call:
 * nothing. */
void dns_close(struct dns *d, dns_closed_fn *cb, void *arg);

/* Starts a lookup for an XMPP domain (a host name, any case, no final dot). Returns the
 * handle, or NULL when memory ran out (cb will not run). Every other failure, an invalid
 * domain too, comes through cb, which runs exactly once unless dns_cancel() comes first. */
struct dns_query *dns_lookup(struct dns *d, const char *domain, dns_done_fn *cb, void *arg);

/* Abandons a lookup whose callback has not run yet: cb will not run and everything, pending
 * libunbound queries included, is released. q == NULL: nothing. Never call it after cb. */
void dns_cancel(struct dns_query *q);

/* Frees a result and everything it points to. r == NULL: nothing. */
void dns_result_free(struct dns_result *r);

#endif
