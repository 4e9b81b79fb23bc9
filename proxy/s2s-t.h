/* s2s-t.h: helpers shared by s2s.c, s2s_in.c and s2s_out.c. Nothing else includes it. */
#ifndef XTP_S2S_T_H
#define XTP_S2S_T_H

#include <stdbool.h>
#include <stddef.h>

#include "s2s.h"

struct conn;

/* Copies a domain name lower-cased into dst (S2S_DOMAIN_MAX bytes) when it is one: labels of
 * letters, digits and '-', 1 to 63 bytes, 253 in all. false otherwise (dst undefined). */
bool s2s_domain_copy(char *dst, const char *src);

/* The domainpart of a JID (RFC 7622 §3.2), lower-cased into out; false when there is none. */
bool s2s_jid_domain(const char *jid, char *out);

struct s2s_pair *s2s_pair_find(struct s2s *s, const char *local, const char *remote);

/* Remembers (local, remote) as authenticated by how; the existing entry when known. NULL when
 * the stream already carries S2S_MAX_PAIRS pairs. */
struct s2s_pair *s2s_pair_add(struct s2s *s, const char *local, const char *remote,
                              enum s2s_auth how);

/* Judges the peer's certificate on c's TLS session for domain (verify.c; with DNSSEC-validated
 * TLSA records, DANE decides: *how says PKIX or DANE), then checks it
 * against the remote certificate memory (s2s.state_file): a change is logged as a warning with
 * both fingerprints, and refused with XTP_EPINNED when the remote has pin: true. srv_targets:
 * DNSSEC-validated SRV targets (RFC 7673), or none. Returns 0 or the verify_cert() code, with
 * one line saying why in why. */
struct verify_tlsa_rr;
int s2s_judge_peer(struct conn *c, const char *domain, const char *const *srv_targets,
                   size_t ntargets, const struct verify_tlsa_rr *tlsa, size_t ntlsa,
                   enum s2s_auth *how, char *why, size_t whylen);

/* s2s_out.c: keeps the session's TLS ticket in its worker for the next connection. */
void s2s_out_keep_ticket(struct conn *c);

#endif
