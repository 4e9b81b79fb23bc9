/* s2s.c: what s2s-in and s2s-out share: certificate judgement of the peer through verify.c and
 * the remote certificate memory, authenticated pairs, JID domains. See s2s.h. */
#include "s2s.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "certmem.h"
#include "cfg.h"
#include "conn-t.h"
#include "dns.h"
#include "err.h"
#include "metrics.h"
#include "s2s-t.h"
#include "snap.h"
#include "tls.h"
#include "verify.h"
#include "worker.h"

const char *s2s_auth_name(enum s2s_auth a)
{
    switch (a) {
    case S2S_AUTH_PKIX:
        return "pkix";
    case S2S_AUTH_DANE:
        return "dane";
    case S2S_AUTH_DIALBACK:
        return "dialback";
    default:
        return "none";
    }
}

bool s2s_domain_copy(char *dst, const char *src)
{
    size_t n = 0, label = 0;

    if (src == NULL)
        return false;
    for (; src[n] != '\0'; n++) {
        char ch = src[n];

        if (n + 1 >= S2S_DOMAIN_MAX)
            return false;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        dst[n] = ch;
    }
    dst[n] = '\0';
    return n > 0 && label > 0;
}

bool s2s_jid_domain(const char *jid, char *out)
{
    const char *slash, *at, *start = jid;
    char buf[S2S_DOMAIN_MAX];
    size_t n;

    if (jid == NULL)
        return false;
    /* RFC 7622 §3.1: the first '/' starts the resourcepart; an '@' before it ends the
     * localpart. */
    slash = strchr(jid, '/');
    at = strchr(jid, '@');
    if (at != NULL && (slash == NULL || at < slash))
        start = at + 1;
    n = slash != NULL ? (size_t)(slash - start) : strlen(start);
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, start, n);
    buf[n] = '\0';
    return s2s_domain_copy(out, buf);
}

struct s2s_pair *s2s_pair_find(struct s2s *s, const char *local, const char *remote)
{
    for (size_t i = 0; i < s->npairs; i++)
        if (strcasecmp(s->pairs[i].local, local) == 0 &&
            strcasecmp(s->pairs[i].remote, remote) == 0)
            return &s->pairs[i];
    return NULL;
}

struct s2s_pair *s2s_pair_add(struct s2s *s, const char *local, const char *remote,
                              enum s2s_auth how)
{
    struct s2s_pair *p = s2s_pair_find(s, local, remote);

    if (p != NULL)
        return p;
    if (s->npairs == S2S_MAX_PAIRS)
        return NULL;
    p = &s->pairs[s->npairs++];
    memset(p, 0, sizeof(*p));
    snprintf(p->local, sizeof(p->local), "%s", local);
    snprintf(p->remote, sizeof(p->remote), "%s", remote);
    p->how = how;
    if (s->auth == S2S_AUTH_NONE)
        s->auth = how;
    return p;
}

int s2s_judge_peer(struct conn *c, const char *domain, const char *const *srv_targets,
                   size_t ntargets, const struct verify_tlsa_rr *tlsa, size_t ntlsa,
                   enum s2s_auth *how, char *why, size_t whylen)
{
    struct s2s *s = c->s2s;
    const uint8_t *der[8];
    size_t len[8], n = tls_peer_chain(c->tls, der, len, 8);
    struct verify_der chain[8];
    struct verify_req r = {0};
    struct verify_res res;
    char old[65];
    int err, seen;

    for (size_t i = 0; i < n; i++) {
        chain[i].der = der[i];
        chain[i].len = len[i];
    }
    r.chain = chain;
    r.nchain = n;
    r.flags = tls_peer_flags(c->tls);
    r.domain = domain;
    r.srv_targets = srv_targets;
    r.nsrv_targets = ntargets;
    r.tlsa = tlsa;
    r.ntlsa = ntlsa;
    err = verify_cert(&r, &res);
    if (how != NULL)
        *how = err == 0 && strncmp(res.how ? res.how : "", "DANE", 4) == 0 ? S2S_AUTH_DANE
                                                                           : S2S_AUTH_PKIX;
    snprintf(why, whylen, "%s", res.why);
    snprintf(s->cert_fp, sizeof(s->cert_fp), "%s", res.fp_sha256);
    snprintf(s->cert_subject, sizeof(s->cert_subject), "%s", res.subject);
    snprintf(s->cert_sans, sizeof(s->cert_sans), "%s", res.sans);
    s->cert_not_after = res.not_after;
    metrics_peer_auth(c->w->metrics,
                      err == 0 && how != NULL && *how == S2S_AUTH_DANE ? METRICS_AUTH_DANE
                                                                       : METRICS_AUTH_PKIX,
                      err == 0 ? METRICS_AUTH_OK : METRICS_AUTH_FAIL);
    if (err != 0 || c->w->certmem == NULL)
        return err;

    /* RFC 7590 §3.7: tell the operator when a remote's certificate changes; pin: refuse. */
    {
        const struct cfg_remote *rem = cfg_remote_find(c->snap->cfg, domain);
        bool pin = rem != NULL && rem->pin;

        seen = certmem_check(c->w->certmem, domain, res.fp_sha256, !pin, old);
        if (seen == CERTMEM_CHANGED) {
            metrics_remote_cert_change(c->w->metrics);
            conn_log(c, pin ? LOG_ERROR : LOG_WARN,
                     "remote certificate for %s changed: was sha256=%s now sha256=%s "
                     "(subject %s, SANs %s)%s",
                     domain, old, res.fp_sha256, res.subject, res.sans,
                     pin ? "; refused: pin is true for this remote" : "");
            if (pin) {
                /* The close line's detail holds 159 bytes: two whole fingerprints (128) and
                 * the rest would be cut mid-hex. They are both whole in the line above. */
                snprintf(why, whylen,
                         "certificate for %s changed (sha256 %.16s..., pinned %.16s...)", domain,
                         res.fp_sha256, old);
                return XTP_EPINNED;
            }
        }
        /* New or changed: write it now (a small file; rare). A failure retries next time. */
        if ((seen == CERTMEM_NEW || (seen == CERTMEM_CHANGED && !pin)) &&
            (seen = certmem_flush(c->w->certmem)) != 0)
            conn_log(c, LOG_WARN, "cannot update s2s.state_file: %s", xtp_strerror(seen));
    }
    return 0;
}

void s2s_close(struct conn *c)
{
    struct s2s *s = c->s2s;

    if (s->q != NULL) {
        dns_cancel(s->q);
        s->q = NULL;
    }
    dns_result_free(s->res);
    s->res = NULL;
    bytes_cleanup(&s->held);
    if (s->verify_only && !s->reported) {
        s->reported = true;
        s2s_in_callback_done(c->w, s->origin, s->local, s->remote, false,
                             c->detail[0] ? c->detail : "the callback failed");
    }
    /* A finished TLS session to a remote: keep it so the next connection resumes. */
    if (c->lst->kind == CFG_KIND_S2S_OUT && c->tls != NULL && c->tls_up)
        s2s_out_keep_ticket(c);
}
