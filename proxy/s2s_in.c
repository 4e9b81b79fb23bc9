/* s2s_in.c: inbound server-to-server streams after TLS (conn.h has the state diagram).
 *
 * The remote proves its domain to the proxy, never to the backend: by certificate, through
 * SASL EXTERNAL (XEP-0178) or a <db:result/> the certificate already covers (XEP-0344 §2.4),
 * or, where s2s.verify is optional, by dialback. Only then does the proxy open the loopback
 * stream and give the backend a dialback key of its own (XEP-0185), which the backend checks by
 * calling back through s2s-out, where the proxy answers it. Every pair and every stanza's
 * from/to must belong to a pair the proxy authenticated (RFC 6120 §13.7.1.4, XEP-0220 §2.3).
 *
 * From the moment a pair is authenticated until the backend accepted our key for it (and
 * while a dialback callback runs), the remote's stanzas wait in s->held, up to S2S_HELD_MAX
 * bytes, so that the backend never sees a stanza for a pair it does not know yet. The
 * remote's input keeps being read and parsed meanwhile: a <db:verify/> it sends must be
 * answered at once, or two servers that check each other's dialback on each other's streams
 * wait for each other forever. Past S2S_HELD_MAX the parser pauses (c->hold_peer) and TCP
 * pushes back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "conn-t.h"
#include "dialback.h"
#include "err.h"
#include "metrics.h"
#include "relay.h"
#include "s2s-t.h"
#include "s2s.h"
#include "snap.h"
#include "tls.h"
#include "worker.h"
#include "xmpp_in.h"
#include "xmpp_out.h"

#define S2S_HELD_MAX (256 * 1024)

static int back_open(void *arg, const struct xmpp_hdr *h);
static int back_element(void *arg, const struct xmpp_elem *e);
static int back_close(void *arg, uint64_t end);
static const struct xmpp_in_ops back_ops = {back_open, back_element, back_close};

static int send_peer(struct conn *c, struct bytes *out, int rc)
{
    if (rc == 0)
        rc = relay_to_peer(c, bytes_data(out), bytes_len(out));
    bytes_cleanup(out);
    return rc;
}

static int fail(struct conn *c, enum conn_end why, int cond_err, int log_err)
{
    conn_fail_stream(c, why, cond_err, log_err);
    return -ECANCELED;
}

/* Judges the certificate for remote (once per domain per stream for the first remote). */
static int judge(struct conn *c, const char *remote, char *why, size_t whylen)
{
    struct s2s *s = c->s2s;

    if (s->remote[0] != '\0' && strcmp(remote, s->remote) == 0 && s->cert_why[0] != '\0') {
        snprintf(why, whylen, "%s", s->cert_why);
        return s->cert_err;
    }
    return s2s_judge_peer(c, remote, NULL, 0, NULL, 0, NULL, why, whylen);
}

/* ---- the remote's stream header ------------------------------------------------------------ */

int s2s_in_stream_open(struct conn *c, const struct xmpp_hdr *h)
{
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;
    bool external;
    int rc;

    if (s == NULL) {
        if ((s = c->s2s = calloc(1, sizeof(*s))) == NULL) {
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return -ECANCELED;
        }
        snprintf(s->local, sizeof(s->local), "%s", c->dom->name);
    }
    if (s->sasl_done) {
        /* RFC 6120 §6.4.6: the restart after <success/>; nothing left to negotiate. */
        if (strcasecmp(c->dom->name, s->local) != 0)
            return fail(c, CONN_END_PEER_PROTOCOL, XTP_EHOST, XTP_EHOST);
        rc = xmpp_out_stream_id(s->our_id, sizeof(s->our_id));
        if (rc == 0)
            rc = xmpp_out_header(&out, XMPP_NS_SERVER, s->local, s->remote, s->our_id, "1.0", NULL);
        if (rc == 0)
            rc = xmpp_out_s2s_features(&out, false, false);
        if (send_peer(c, &out, rc) != 0) {
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return -ECANCELED;
        }
        c->peer_hdr_sent = true;
        conn_start_backend(c, (const struct sockaddr *)&c->dom->backend_s2s.ss,
                           c->dom->backend_s2s.text);
        return c->state == CONN_CLOSING ? -ECANCELED : 0;
    }

    /* The first stream over TLS. RFC 6120 §4.7.1: `from` SHOULD be there; without it only
     * dialback (which names the domain in each <db:result/>) can authenticate. */
    if (h->from != NULL && h->from[0] != '\0') {
        if (!s2s_domain_copy(s->remote, h->from)) {
            conn_set_detail(c, "stream from is not a domain");
            return fail(c, CONN_END_PEER_PROTOCOL, XTP_EFROM, XTP_EFROM);
        }
        if (cfg_domain_find(c->snap->cfg, s->remote) != NULL) {
            conn_set_detail(c, "stream from one of our own domains");
            return fail(c, CONN_END_PEER_PROTOCOL, XTP_EFROM, XTP_EFROM);
        }
        s->cert_err =
            s2s_judge_peer(c, s->remote, NULL, 0, NULL, 0, NULL, s->cert_why, sizeof(s->cert_why));
    } else {
        s->cert_err = XTP_EAUTH;
        snprintf(s->cert_why, sizeof(s->cert_why), "the stream header names no domain");
    }
    external = s->remote[0] != '\0' && s->cert_err == 0;
    rc = xmpp_out_stream_id(s->our_id, sizeof(s->our_id));
    if (rc == 0)
        rc = xmpp_out_header(&out, XMPP_NS_SERVER, s->local, s->remote[0] ? s->remote : NULL,
                             s->our_id, "1.0", NULL);
    /* Dialback stays on offer even with EXTERNAL: a remote may piggyback more domains, and
     * verification requests (<db:verify/>) arrive on such streams too. */
    if (rc == 0)
        rc = xmpp_out_s2s_features(&out, external, true);
    if (send_peer(c, &out, rc) != 0) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return -ECANCELED;
    }
    c->peer_hdr_sent = true;
    conn_set_state(c, CONN_S2S_AUTH);
    conn_log(c, LOG_DEBUG, "s2s stream from %s: certificate %s (%s)",
             s->remote[0] ? s->remote : "(none)", external ? "valid" : "not valid", s->cert_why);
    return 0;
}

/* ---- authentication ------------------------------------------------------------------------- */

/* A pair is authenticated: from now on the backend must learn it before more input flows. */
static int pair_authenticated(struct conn *c, const char *local, const char *remote,
                              enum s2s_auth how)
{
    struct s2s *s = c->s2s;
    struct s2s_pair *p = s2s_pair_add(s, local, remote, how);
    struct bytes out = BYTES_INIT;
    char key[DIALBACK_KEY_LEN + 1];
    int rc;

    if (p == NULL) {
        conn_set_detail(c, "more than %d domain pairs on one stream", S2S_MAX_PAIRS);
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_ELIMIT, XTP_ELIMIT);
    }
    if (s->remote[0] == '\0')
        snprintf(s->remote, sizeof(s->remote), "%s", remote);
    if (c->state == CONN_S2S_AUTH) {
        conn_start_backend(c, (const struct sockaddr *)&c->dom->backend_s2s.ss,
                           c->dom->backend_s2s.text);
        return c->state == CONN_CLOSING ? -ECANCELED : 0;
    }
    if (s->their_id[0] != '\0') { /* piggybacking on a stream the backend already knows */
        dialback_key(c->w->dialback, local, remote, s->their_id, key);
        rc = xmpp_out_db(&out, "result", remote, local, NULL, NULL, key);
        if (rc == 0)
            rc = relay_to_backend(c, bytes_data(&out), bytes_len(&out));
        bytes_cleanup(&out);
        if (rc != 0)
            return rc;
        s->pending_result = true;
    }
    return 0;
}

/* XEP-0178: <auth mechanism='EXTERNAL'>; the certificate must already cover the stream's
 * from, and an authorization identity, if any, must be that domain. */
static int on_auth(struct conn *c, const struct xmpp_elem *e)
{
    struct s2s *s = c->s2s;
    const char *mech = xmpp_attr_get(e->attrs, e->nattrs, "mechanism");
    struct bytes out = BYTES_INIT;
    bool ok = c->state == CONN_S2S_AUTH && !s->sasl_done && s->cert_err == 0 &&
              s->remote[0] != '\0' && mech != NULL && strcmp(mech, "EXTERNAL") == 0;
    char want[344];
    int rc;

    relay_skip(&c->peer, e->end);
    /* An authorization identity, if given, is the stream's from: compare base64 forms (the
     * domain was lower-cased; a remote that sent it in capitals gets a failure, not a risk). */
    if (ok && e->text[0] != '\0' && strcmp(e->text, "=") != 0)
        ok = xmpp_out_base64(s->remote, want, sizeof(want)) == 0 && strcmp(want, e->text) == 0;
    rc = xmpp_out_sasl(&out, ok);
    if (send_peer(c, &out, rc) != 0)
        return -ENOMEM;
    if (!ok) {
        conn_log(c, LOG_INFO, "SASL %s refused for %s: %s", mech ? mech : "(none)",
                 s->remote[0] ? s->remote : "(no domain)",
                 s->cert_err ? s->cert_why : "mechanism or identity not acceptable");
        return 0; /* RFC 6120 §6.4.5: the remote may try again or fall back to dialback */
    }
    s->sasl_done = true;
    if (s2s_pair_add(s, s->local, s->remote, S2S_AUTH_PKIX) == NULL)
        return -ENOMEM;
    c->peer_restart = true; /* the remote's new stream starts right after </auth> */
    return XMPP_IN_PAUSE;
}

/* XEP-0220 §2.1.1: the remote asks us to accept remote→local. */
static int on_result(struct conn *c, const struct xmpp_elem *e)
{
    struct s2s *s = c->s2s;
    const char *from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    const char *to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    const struct cfg_domain *dom;
    struct bytes out = BYTES_INIT;
    char remote[S2S_DOMAIN_MAX], why[160];
    int err, rc;

    if (xmpp_attr_get(e->attrs, e->nattrs, "type") != NULL || !s2s_domain_copy(remote, from)) {
        conn_set_detail(c, "malformed <db:result/>");
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EFROM, XTP_EFROM);
    }
    dom = to != NULL ? cfg_domain_find(c->snap->cfg, to) : NULL;
    if (dom == NULL || dom != c->dom) {
        /* Our other domains have their own backend: they need their own stream. */
        conn_set_detail(c, "<db:result/> to %s", dom ? dom->name : "a domain we do not serve");
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EHOST, XTP_EHOST);
    }
    if (s2s_pair_find(s, dom->name, remote) != NULL)
        err = 0;
    else
        err = judge(c, remote, why, sizeof(why));
    if (err != 0 && cfg_remote_verify(c->snap->cfg, remote) == CFG_VERIFY_OPTIONAL &&
        err != XTP_EPINNED) {
        /* XEP-0220 §2.1.2: the certificate cannot prove the domain, policy allows dialback:
         * ask the remote's authoritative server whether it issued this key. The remote waits
         * for our answer; its further input waits too. */
        if (s->callback || e->text[0] == '\0' || strlen(e->text) >= sizeof(s->db_key)) {
            conn_set_detail(c, "%s",
                            s->callback ? "a second dialback request while one is "
                                          "pending"
                                        : "<db:result/> without a usable key");
            return fail(c, CONN_END_PEER_PROTOCOL, XTP_EPOLICY, XTP_EPOLICY);
        }
        relay_skip(&c->peer, e->end);
        s->callback = true;
        snprintf(s->cb_remote, sizeof(s->cb_remote), "%s", remote);
        snprintf(s->db_key, sizeof(s->db_key), "%s", e->text);
        conn_log(c, LOG_INFO,
                 "%s: certificate not valid (%s); s2s.verify optional: dialback "
                 "callback",
                 remote, why);
        s2s_out_verify(c->w, c->id, dom->name, remote, s->our_id, s->db_key);
        return c->state == CONN_CLOSING ? -ECANCELED : 0;
    }
    if (err != 0) {
        conn_set_detail(c, "%s: %s (s2s.verify %s for %s)", remote, why,
                        cfg_verify_name(cfg_remote_verify(c->snap->cfg, remote)), remote);
        return fail(c, CONN_END_AUTH, err, err);
    }
    relay_skip(&c->peer, e->end);
    rc = xmpp_out_db(&out, "result", dom->name, remote, NULL, "valid", NULL);
    if (send_peer(c, &out, rc) != 0)
        return -ENOMEM;
    return pair_authenticated(c, dom->name, remote, S2S_AUTH_PKIX);
}

void s2s_in_callback_done(struct worker *w, uint64_t origin, const char *local, const char *remote,
                          bool valid, const char *why)
{
    struct conn *c = w->conns;
    struct bytes out = BYTES_INIT;
    struct s2s *s;
    int rc;

    while (c != NULL && c->id != origin)
        c = c->next;
    if (c == NULL || c->state == CONN_CLOSING || (s = c->s2s) == NULL || !s->callback)
        return;
    s->callback = false;
    metrics_peer_auth(w->metrics, METRICS_AUTH_DIALBACK,
                      valid ? METRICS_AUTH_OK : METRICS_AUTH_FAIL);
    rc = xmpp_out_db(&out, "result", local, remote, NULL, valid ? "valid" : "invalid", NULL);
    if (rc == 0)
        rc = relay_to_peer(c, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
    if (rc != 0)
        return; /* the write failure closes the session */
    if (!valid) {
        conn_set_detail(c, "dialback for %s failed: %s", remote, why);
        conn_fail_stream(c, CONN_END_AUTH, XTP_EAUTH, XTP_EAUTH);
        return;
    }
    conn_log(c, LOG_INFO, "%s authenticated by dialback", remote);
    rc = pair_authenticated(c, local, remote, S2S_AUTH_DIALBACK);
    if (rc < 0 && rc != -ECANCELED)
        conn_close(c, CONN_END_NOMEM, rc);
}

/* XEP-0220 §2.2: the remote, as receiving server of our own dialback on s2s-out, asks whether
 * the key is ours. Stateless (XEP-0185): recompute it. Never reaches the backend. */
static int on_verify(struct conn *c, const struct xmpp_elem *e)
{
    const char *from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    const char *to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    const char *id = xmpp_attr_get(e->attrs, e->nattrs, "id");
    struct bytes out = BYTES_INIT;
    char remote[S2S_DOMAIN_MAX];
    const struct cfg_domain *dom;
    bool valid;
    int rc;

    if (!s2s_domain_copy(remote, from) || to == NULL || id == NULL ||
        xmpp_attr_get(e->attrs, e->nattrs, "type") != NULL) {
        conn_set_detail(c, "malformed <db:verify/>");
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EFROM, XTP_EFROM);
    }
    dom = cfg_domain_find(c->snap->cfg, to);
    if (dom == NULL) {
        conn_set_detail(c, "<db:verify/> to a domain we do not serve");
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EHOST, XTP_EHOST);
    }
    valid = dialback_check(c->w->dialback, remote, dom->name, id, e->text);
    relay_forward(c, &c->peer, e->start);
    relay_skip(&c->peer, e->end);
    rc = xmpp_out_db(&out, "verify", dom->name, remote, id, valid ? "valid" : "invalid", NULL);
    conn_log(c, valid ? LOG_INFO : LOG_WARN, "dialback verify from %s for %s: %s", remote,
             dom->name, valid ? "valid" : "invalid key");
    return send_peer(c, &out, rc);
}

/* RFC 6120 §8.1.1, §13.7.1.4: a stanza's from and to must fall in an authenticated pair. */
static int check_stanza(struct conn *c, const struct xmpp_elem *e)
{
    const char *from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    const char *to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    char fd[S2S_DOMAIN_MAX], td[S2S_DOMAIN_MAX];
    const struct s2s_pair *p;

    if (!s2s_jid_domain(to, td) || cfg_domain_find(c->snap->cfg, td) == NULL) {
        conn_set_detail(c, "<%s/> to a domain we do not serve", e->name);
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EHOST, XTP_EHOST);
    }
    p = s2s_jid_domain(from, fd) ? s2s_pair_find(c->s2s, td, fd) : NULL;
    if (p == NULL || !p->backend_ok) {
        conn_set_detail(c, "<%s/> from a domain not authenticated on this stream", e->name);
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EFROM, XTP_EFROM);
    }
    return 0;
}

/* A stanza that must wait for the backend (or for the dialback callback of its domain): its
 * addresses are checked now, its bytes kept in s->held and written once the backend accepted
 * every pair (back_element()). */
static int hold_stanza(struct conn *c, const struct xmpp_elem *e)
{
    struct s2s *s = c->s2s;
    const char *from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    const char *to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    char fd[S2S_DOMAIN_MAX], td[S2S_DOMAIN_MAX];
    bool known;

    if (!s2s_jid_domain(to, td) || cfg_domain_find(c->snap->cfg, td) == NULL) {
        conn_set_detail(c, "<%s/> to a domain we do not serve", e->name);
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EHOST, XTP_EHOST);
    }
    known = s2s_jid_domain(from, fd) &&
            (s2s_pair_find(s, td, fd) != NULL ||
             (s->callback && strcmp(fd, s->cb_remote) == 0 && strcmp(td, s->local) == 0));
    if (!known) {
        conn_set_detail(c, "<%s/> from a domain not authenticated on this stream", e->name);
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EFROM, XTP_EFROM);
    }
    if (bytes_append(&s->held, c->peer.w + (e->start - c->peer.w_off),
                     (size_t)(e->end - e->start)) != 0)
        return -ENOMEM;
    relay_skip(&c->peer, e->end);
    if (bytes_len(&s->held) <= S2S_HELD_MAX)
        return 0;
    c->hold_peer = true; /* enough: stop parsing until the backend is ready */
    return XMPP_IN_PAUSE;
}

/* Stanzas wait while the backend does not know every pair yet, or a callback runs. */
static bool waiting(const struct conn *c)
{
    return c->state != CONN_RELAY || c->s2s->pending_result || c->s2s->callback;
}

int s2s_in_peer_element(struct conn *c, const struct xmpp_elem *e)
{
    if (strcmp(e->name, XMPP_NS_SASL "|auth") == 0)
        return on_auth(c, e);
    if (strcmp(e->name, XMPP_NS_DIALBACK "|result") == 0) {
        if (c->state == CONN_RELAY)
            relay_forward(c, &c->peer, e->start); /* the stanzas before it go first */
        return on_result(c, e);
    }
    if (strcmp(e->name, XMPP_NS_DIALBACK "|verify") == 0)
        return on_verify(c, e);
    if (strncmp(e->name, XMPP_NS_SERVER "|", strlen(XMPP_NS_SERVER) + 1) != 0) {
        /* Negotiation is over (TLS, SASL) or never ours (compression): nothing else may pass. */
        conn_set_detail(c, "<%s> on an s2s stream", e->name);
        return fail(c, CONN_END_PEER_PROTOCOL, XTP_EPOLICY, XTP_EPOLICY);
    }
    if (c->s2s->npairs == 0 && !c->s2s->callback) {
        conn_set_detail(c, "<%s/> before the remote authenticated", e->name);
        return fail(c, CONN_END_AUTH, XTP_EAUTH, XTP_EAUTH);
    }
    if (waiting(c))
        return hold_stanza(c, e);
    return check_stanza(c, e);
}

/* ---- the backend leg ------------------------------------------------------------------------- */

static void dialback_timeout_cb(uv_timer_t *t)
{
    struct conn *c = t->data;

    conn_set_detail(c, "the backend did not answer our dialback within %llums",
                    (unsigned long long)c->snap->cfg->handshake_timeout_ms);
    conn_fail_stream(c, CONN_END_BACKEND_PROTOCOL, XTP_EBACKEND, UV_ETIMEDOUT);
}

void s2s_in_backend_connected(struct conn *c)
{
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;

    c->back.xin = xmpp_in_new(&back_ops, c, c->snap->cfg->max_stanza, NULL);
    if (c->back.xin == NULL ||
        xmpp_out_header(&out, XMPP_NS_SERVER, s->remote, s->local, NULL, "1.0", NULL) != 0) {
        bytes_cleanup(&out);
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    conn_set_state(c, CONN_S2S_DIALBACK);
    relay_to_backend(c, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
    uv_timer_start(&c->timer, dialback_timeout_cb, c->snap->cfg->handshake_timeout_ms, 0);
    relay_update_reading(c);
}

/* The backend's header gives the stream id our keys are bound to (XEP-0185 §3). */
static int back_open(void *arg, const struct xmpp_hdr *h)
{
    struct conn *c = arg;
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;
    char key[DIALBACK_KEY_LEN + 1];
    int rc = 0;

    relay_skip(&c->back, h->end); /* the remote has our header, not the backend's */
    if (h->id == NULL || h->id[0] == '\0' || strlen(h->id) >= sizeof(s->their_id)) {
        conn_set_detail(c, "the backend's s2s stream header has no usable id");
        return XTP_EBACKEND;
    }
    snprintf(s->their_id, sizeof(s->their_id), "%s", h->id);
    for (size_t i = 0; i < s->npairs && rc == 0; i++) {
        dialback_key(c->w->dialback, s->pairs[i].local, s->pairs[i].remote, s->their_id, key);
        rc = xmpp_out_db(&out, "result", s->pairs[i].remote, s->pairs[i].local, NULL, NULL, key);
    }
    if (rc == 0)
        rc = relay_to_backend(c, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
    s->pending_result = true;
    return rc;
}

static int back_element(void *arg, const struct xmpp_elem *e)
{
    struct conn *c = arg;
    struct s2s *s = c->s2s;
    const char *type, *from, *to;
    struct s2s_pair *p;
    char fd[S2S_DOMAIN_MAX], td[S2S_DOMAIN_MAX];
    bool all = true;

    relay_forward(c, &c->back, e->start); /* whitespace keepalives only */
    relay_skip(&c->back, e->end);
    if (strcmp(e->name, XMPP_NS_DIALBACK "|result") != 0)
        return 0; /* its features, or anything else: for us, not for the remote */
    type = xmpp_attr_get(e->attrs, e->nattrs, "type");
    from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    p = s2s_domain_copy(fd, from) && s2s_domain_copy(td, to) ? s2s_pair_find(s, fd, td) : NULL;
    if (p == NULL || type == NULL || strcmp(type, "valid") != 0) {
        conn_set_detail(c, "the backend answered our dialback for %s->%s with type=%s",
                        to ? to : "?", from ? from : "?", type ? type : "(none)");
        return XTP_EBACKEND;
    }
    p->backend_ok = true;
    for (size_t i = 0; i < s->npairs; i++)
        all = all && s->pairs[i].backend_ok;
    if (!all)
        return 0;
    s->pending_result = false;
    if (c->state == CONN_S2S_DIALBACK) {
        uv_timer_stop(&c->timer);
        conn_set_state(c, CONN_RELAY);
        conn_log(c, LOG_INFO,
                 "open domain=%s remote=%s auth=%s tls=%s cipher=%s resumed=%s cert_sha256=%s "
                 "backend=%s",
                 s->local, s->remote, s2s_auth_name(s->auth), tls_version(c->tls),
                 tls_cipher(c->tls), tls_resumed(c->tls) ? "yes" : "no",
                 s->cert_fp[0] ? s->cert_fp : "-", c->back_text);
    }
    if (s->callback)
        return 0; /* a callback for another pair still runs */
    /* The stanzas that waited go now, in their order, after the backend's own answer. */
    if (bytes_len(&s->held) > 0 &&
        relay_to_backend(c, bytes_data(&s->held), bytes_len(&s->held)) != 0)
        return XTP_EBACKEND;
    bytes_cleanup(&s->held);
    if (!c->hold_peer)
        return 0;
    c->hold_peer = false;
    return XMPP_IN_PAUSE; /* conn_on_pause() resumes the paused parser once this read is done */
}

static int back_close(void *arg, uint64_t end)
{
    struct conn *c = arg;

    c->back.stream_closed = true;
    return 0;
}
