/* s2s_out.c: the backend's outbound server-to-server streams (conn.h has the state diagram).
 *
 * The backend (jabberd2) connects here in plaintext over loopback, as it would to a remote
 * server. The proxy answers its stream itself, learns the remote domain from the first
 * <db:result to=…/> (jabberd2's header names none), finds the remote (resolve.static, else
 * DNS SRV _xmpps-server/_xmpp-server, XEP-0368, RFC 6120 §3.2), and sets up the remote stream:
 * always STARTTLS even when not advertised (RFC 7590 §3.1; plaintext only for remotes with
 * tls: opportunistic that refuse it), SNI = the XMPP domain, the certificate verified for the
 * XMPP domain (RFC 6125/RFC 6120 §13.7.2, DANE with DNSSEC), our own certificate presented;
 * SASL EXTERNAL when offered (XEP-0178), else dialback with the proxy's key (XEP-0220,
 * XEP-0185), whose callback the proxy answers on s2s-in. Only then does the backend hear
 * <db:result type='valid'/> and its stanzas flow. The backend's own dialback key never leaves
 * loopback, and its <db:verify/> requests are answered here, never forwarded. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "conn-t.h"
#include "dialback.h"
#include "dns.h"
#include "err.h"
#include "relay.h"
#include "s2s-t.h"
#include "s2s.h"
#include "snap.h"
#include "tls.h"
#include "verify.h"
#include "worker.h"
#include "xmpp_in.h"
#include "xmpp_out.h"

/* <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h> clash with glibc's
 * <netinet/in.h>; the option numbers are kernel ABI. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#define IP6T_SO_ORIGINAL_DST 80

/* The remote's <stream:features/> (we need to see its children) and <stream:error/> (its
 * condition, for the log). */
static const char *const features_name[] = {XMPP_NS_STREAMS "|features", XMPP_NS_STREAMS "|error",
                                            NULL};

static int back_open(void *arg, const struct xmpp_hdr *h);
static int back_element(void *arg, const struct xmpp_elem *e);
static int back_close(void *arg, uint64_t end);
static int remote_open(void *arg, const struct xmpp_hdr *h);
static int remote_element(void *arg, const struct xmpp_elem *e);
static int remote_close(void *arg, uint64_t end);

static const struct xmpp_in_ops back_ops = {back_open, back_element, back_close};
static const struct xmpp_in_ops remote_ops = {remote_open, remote_element, remote_close};

static void connect_next(struct conn *c);
static void start_resolve(struct conn *c);

static int fail(struct conn *c, enum conn_end why, int cond_err, int log_err)
{
    conn_fail_stream(c, why, cond_err, log_err);
    return -ECANCELED;
}

static int send_back(struct conn *c, struct bytes *out, int rc)
{
    if (rc == 0)
        rc = relay_to_backend(c, bytes_data(out), bytes_len(out));
    bytes_cleanup(out);
    return rc;
}

static int send_remote(struct conn *c, struct bytes *out, int rc)
{
    if (rc == 0)
        rc = relay_to_peer(c, bytes_data(out), bytes_len(out));
    bytes_cleanup(out);
    return rc;
}

static void handshake_timeout_cb(uv_timer_t *t)
{
    struct conn *c = t->data;

    conn_set_detail(c, "limits.handshake_timeout=%llums",
                    (unsigned long long)c->snap->cfg->handshake_timeout_ms);
    conn_fail_stream(c, c->state == CONN_OUT_BACKEND ? CONN_END_TIMEOUT : CONN_END_REMOTE,
                     UV_ETIMEDOUT, UV_ETIMEDOUT);
}

/* Transparent mode: with an iptables REDIRECT (or TPROXY-less NAT) of the backend's outbound
 * tcp/5269 to this listener, the kernel still knows the address the backend wanted. */
static void original_dst(struct conn *c)
{
    struct s2s *s = c->s2s;
    struct sockaddr_storage here;
    socklen_t len = sizeof(s->orig);
    int herelen = sizeof(here);
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->back.tcp, &fd) != 0 ||
        uv_tcp_getsockname(&c->back.tcp, (struct sockaddr *)&here, &herelen) != 0)
        return;
    if (here.ss_family == AF_INET6)
        s->have_orig = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &s->orig, &len) == 0;
    else
        s->have_orig = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &s->orig, &len) == 0;
    /* Without a REDIRECT the "original" destination is this listener itself. */
    if (s->have_orig && len <= sizeof(here) && here.ss_family == s->orig.ss_family &&
        memcmp(&here, &s->orig,
               here.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                          : sizeof(struct sockaddr_in)) == 0)
        s->have_orig = false;
    if (s->have_orig) {
        /* Where the session will go instead of resolve.static or DNS: say so. */
        char ip[64] = "?";
        unsigned port;

        if (s->orig.ss_family == AF_INET6) {
            uv_ip6_name((const struct sockaddr_in6 *)&s->orig, ip, sizeof(ip));
            port = ntohs(((const struct sockaddr_in6 *)&s->orig)->sin6_port);
        } else {
            uv_ip4_name((const struct sockaddr_in *)&s->orig, ip, sizeof(ip));
            port = ntohs(((const struct sockaddr_in *)&s->orig)->sin_port);
        }
        conn_log(c, LOG_DEBUG, "transparent: the backend connected to %s port %u (SO_ORIGINAL_DST)",
                 ip, port);
    }
}

void s2s_out_start(struct conn *c)
{
    struct s2s *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    c->s2s = s;
    original_dst(c);
    c->back.xin = xmpp_in_new(&back_ops, c, c->snap->cfg->max_stanza, NULL);
    if (c->back.xin == NULL) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    conn_set_state(c, CONN_OUT_BACKEND);
    uv_timer_start(&c->timer, handshake_timeout_cb, c->snap->cfg->handshake_timeout_ms, 0);
    relay_update_reading(c);
}

/* Callbacks have no listener; this one names them in logs. */
static const struct cfg_listener verify_listener = {
    .name = (char *)"dialback-callback",
    .kind = CFG_KIND_S2S_OUT,
    .tls = CFG_TLS_NONE,
};

void s2s_out_verify(struct worker *w, uint64_t origin, const char *local, const char *remote,
                    const char *id, const char *key)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct s2s *s = calloc(1, sizeof(*s));

    if (c == NULL || s == NULL || uv_timer_init(w->loop, &c->timer) != 0) {
        free(c);
        free(s);
        s2s_in_callback_done(w, origin, local, remote, false, "out of memory");
        return;
    }
    c->w = w;
    c->snap = snap_ref(w->snap);
    c->lst = &verify_listener;
    c->lst_idx = -1; /* not a configured listener: no xtp_sessions sample */
    c->dom = cfg_domain_find(c->snap->cfg, local);
    c->id = (w->next_id += w->nworkers);
    c->t_start = uv_now(w->loop);
    c->timer.data = c;
    c->live_handles = 1;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->live++;
    __atomic_add_fetch(w->total_live, 1, __ATOMIC_RELAXED);
    snprintf(c->peer_addr, sizeof(c->peer_addr), "-");
    c->s2s = s;
    s->verify_only = true;
    s->origin = origin;
    s->t_first_byte = c->t_start;
    snprintf(s->local, sizeof(s->local), "%s", local);
    snprintf(s->remote, sizeof(s->remote), "%s", remote);
    snprintf(s->db_id, sizeof(s->db_id), "%s", id);
    snprintf(s->db_key, sizeof(s->db_key), "%s", key);
    conn_log(c, LOG_DEBUG, "dialback callback to %s for session %llu", remote,
             (unsigned long long)origin);
    conn_set_state(c, CONN_OUT_BACKEND);
    start_resolve(c);
}

/* ---- resumption tickets, per loop ------------------------------------------------------------ */

static struct worker_ticket *ticket_slot(struct worker *w, const char *local, const char *remote)
{
    for (size_t i = 0; i < WORKER_TICKETS; i++)
        if (w->tickets[i].ticket != NULL && strcmp(w->tickets[i].local, local) == 0 &&
            strcmp(w->tickets[i].remote, remote) == 0)
            return &w->tickets[i];
    return NULL;
}

void s2s_out_keep_ticket(struct conn *c)
{
    struct s2s *s = c->s2s;
    struct tls_ticket *k = tls_ticket_take(c->tls);
    struct worker_ticket *slot;

    if (k == NULL)
        return;
    slot = ticket_slot(c->w, s->local, s->remote);
    if (slot == NULL) {
        slot = &c->w->tickets[c->w->ticket_next++ % WORKER_TICKETS];
        snprintf(slot->local, sizeof(slot->local), "%s", s->local);
        snprintf(slot->remote, sizeof(slot->remote), "%s", s->remote);
    }
    tls_ticket_free(slot->ticket);
    slot->ticket = k;
    conn_log(c, LOG_DEBUG, "kept a TLS session ticket for %s -> %s", s->local, s->remote);
}

/* ---- the backend's stream ------------------------------------------------------------------ */

static int back_open(void *arg, const struct xmpp_hdr *h)
{
    struct conn *c = arg;
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;
    char id[32];
    bool v1 = xmpp_in_version_ok(h);
    int rc = xmpp_in_check_ns(h, XMPP_NS_SERVER);

    s->t_first_byte = c->t_start;
    if (rc != 0)
        return rc;
    relay_skip(&c->back, h->end);
    /* RFC 6120 §4.7.5: answer with the lower version; jabberd2 sends none, and then expects
     * no features, only our header and id. A 1.0 backend gets the dialback feature. */
    rc = xmpp_out_stream_id(id, sizeof(id));
    if (rc == 0)
        rc = xmpp_out_header(&out, XMPP_NS_SERVER, h->to, h->from, id, v1 ? "1.0" : NULL, NULL);
    if (rc == 0 && v1)
        rc = xmpp_out_s2s_features(&out, false, true);
    rc = send_back(c, &out, rc);
    s->back_answered = true;
    return rc;
}

/* XEP-0220 §2.2: the backend checks a key it was given on s2s-in (it calls "back" to the
 * remote it thinks sent it). The key can only be ours, given for a pair the proxy
 * authenticated: recompute it (XEP-0185). */
static int on_back_verify(struct conn *c, const struct xmpp_elem *e)
{
    const char *from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    const char *to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    const char *id = xmpp_attr_get(e->attrs, e->nattrs, "id");
    struct bytes out = BYTES_INIT;
    bool valid = from != NULL && to != NULL && id != NULL &&
                 dialback_check(c->w->dialback, from, to, id, e->text);
    int rc;

    if (c->state == CONN_RELAY)
        relay_forward(c, &c->back, e->start);
    relay_skip(&c->back, e->end);
    rc = xmpp_out_db(&out, "verify", to, from, id, valid ? "valid" : "invalid", NULL);
    conn_log(c, valid ? LOG_DEBUG : LOG_WARN, "answered the backend's dialback check %s->%s: %s",
             to ? to : "?", from ? from : "?", valid ? "valid" : "invalid");
    return send_back(c, &out, rc);
}

static int answer_back_result(struct conn *c, const char *local, const char *remote,
                              const char *type)
{
    struct bytes out = BYTES_INIT;

    return send_back(c, &out, xmpp_out_db(&out, "result", remote, local, NULL, type, NULL));
}

/* The backend wants to send from local to remote (XEP-0220 §2.1.1): its key is dropped. */
static int on_back_result(struct conn *c, const struct xmpp_elem *e)
{
    struct s2s *s = c->s2s;
    const char *from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    const char *to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    char local[S2S_DOMAIN_MAX], remote[S2S_DOMAIN_MAX];
    const struct cfg_domain *dom;

    if (c->state == CONN_RELAY)
        relay_forward(c, &c->back, e->start);
    relay_skip(&c->back, e->end);
    if (!s2s_domain_copy(local, from) || !s2s_domain_copy(remote, to) ||
        xmpp_attr_get(e->attrs, e->nattrs, "type") != NULL) {
        conn_set_detail(c, "malformed <db:result/> from the backend");
        return fail(c, CONN_END_BACKEND_PROTOCOL, XTP_EFROM, XTP_EFROM);
    }
    dom = cfg_domain_find(c->snap->cfg, local);
    if (dom == NULL || cfg_domain_find(c->snap->cfg, remote) != NULL) {
        conn_set_detail(c, "the backend asked for %s->%s", local, remote);
        return fail(c, CONN_END_BACKEND_PROTOCOL, XTP_EFROM, XTP_EFROM);
    }
    if (c->state == CONN_OUT_BACKEND) {
        snprintf(s->local, sizeof(s->local), "%s", local);
        snprintf(s->remote, sizeof(s->remote), "%s", remote);
        c->dom = dom;
        start_resolve(c);
        return c->state == CONN_CLOSING ? -ECANCELED : 0;
    }
    /* The same pair again is answered as before; one remote and one local domain per stream
     * (jabberd2 with <out-conn-reuse/> off opens one stream per pair). */
    if (strcmp(local, s->local) == 0 && strcmp(remote, s->remote) == 0) {
        if (c->state == CONN_RELAY)
            return answer_back_result(c, local, remote, "valid");
        return 0; /* answered once the remote is ready */
    }
    conn_log(c, LOG_WARN,
             "the backend asked for %s->%s on the stream for %s->%s: refused (one pair per "
             "stream; disable jabberd2's <out-conn-reuse/>)",
             local, remote, s->local, s->remote);
    return answer_back_result(c, local, remote, "invalid");
}

static int back_element(void *arg, const struct xmpp_elem *e)
{
    struct conn *c = arg;
    struct s2s *s = c->s2s;
    const char *from, *to;
    char fd[S2S_DOMAIN_MAX], td[S2S_DOMAIN_MAX];

    if (strcmp(e->name, XMPP_NS_DIALBACK "|verify") == 0)
        return on_back_verify(c, e);
    if (strcmp(e->name, XMPP_NS_DIALBACK "|result") == 0)
        return on_back_result(c, e);
    if (c->state != CONN_RELAY ||
        strncmp(e->name, XMPP_NS_SERVER "|", strlen(XMPP_NS_SERVER) + 1) != 0) {
        conn_set_detail(c, "<%s> from the backend before the remote was ready", e->name);
        return fail(c, CONN_END_BACKEND_PROTOCOL, XTP_EPOLICY, XTP_EPOLICY);
    }
    /* RFC 6120 §8.1.1.1: a stanza on this stream is from our domain to the remote one. */
    from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    if (!s2s_jid_domain(from, fd) || !s2s_jid_domain(to, td) || strcmp(fd, s->local) != 0 ||
        strcmp(td, s->remote) != 0) {
        conn_set_detail(c, "backend stanza outside %s->%s", s->local, s->remote);
        return fail(c, CONN_END_BACKEND_PROTOCOL, XTP_EFROM, XTP_EFROM);
    }
    return 0; /* forwarded once complete */
}

static int back_close(void *arg, uint64_t end)
{
    struct conn *c = arg;

    c->back.stream_closed = true;
    return 0; /* relayed in RELAY; else the session ends in conn_back_read_cb */
}

/* ---- finding the remote ---------------------------------------------------------------------- */

static void dns_done(void *arg, struct dns_result *r)
{
    struct conn *c = arg;
    struct s2s *s = c->s2s;

    s->q = NULL;
    if (r->err != 0) {
        conn_set_detail(c, "%s: %s", s->remote, r->why);
        fail(c, CONN_END_REMOTE, r->err, r->err);
        dns_result_free(r);
        return;
    }
    s->res = r;
    s->ncand = r->ncand;
    s->cur = 0;
    conn_log(c, LOG_DEBUG, "%s: %zu address(es)%s%s%s", s->remote, r->ncand,
             r->srv_secure ? ", DNSSEC" : "", r->why[0] ? ": " : "", r->why);
    connect_next(c);
}

static void start_resolve(struct conn *c)
{
    struct s2s *s = c->s2s;
    const struct cfg_remote *r = cfg_remote_find(c->snap->cfg, s->remote);

    conn_set_state(c, CONN_OUT_RESOLVE);
    uv_timer_stop(&c->timer);
    if (s->have_orig || (r != NULL && r->has_static)) {
        s->ncand = 1;
        s->cur = 0;
        connect_next(c);
        return;
    }
    if (c->w->dns == NULL) {
        conn_set_detail(c, "%s: no resolver (s2s-out needs DNS or resolve.static)", s->remote);
        fail(c, CONN_END_REMOTE, XTP_EDNS, XTP_EDNS);
        return;
    }
    s->q = dns_lookup(c->w->dns, s->remote, dns_done, c);
    if (s->q == NULL)
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
}

/* Candidate i: its address, whether it is Direct TLS, its host name and DNSSEC data. */
static const struct sockaddr *cand_addr(const struct conn *c, size_t i, bool *direct,
                                        const char **host)
{
    const struct s2s *s = c->s2s;
    const struct cfg_remote *r;

    if (s->res != NULL) {
        *direct = s->res->cand[i].direct_tls;
        *host = s->res->cand[i].host;
        return (const struct sockaddr *)&s->res->cand[i].addr;
    }
    *direct = false;
    if (s->have_orig) {
        *host = "original destination";
        return (const struct sockaddr *)&s->orig;
    }
    r = cfg_remote_find(c->snap->cfg, s->remote);
    *host = r->static_addr.text;
    return (const struct sockaddr *)&r->static_addr.ss;
}

static void remote_failed(struct conn *c, const char *what, int err);

static void connect_timeout_cb(uv_timer_t *t)
{
    struct conn *c = t->data;

    if (c->state == CONN_OUT_CONNECT)
        remote_failed(c, "connect timed out", UV_ETIMEDOUT);
    else
        handshake_timeout_cb(t);
}

static void retry_closed_cb(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (c->state == CONN_CLOSING) {
        conn_handle_closed(h);
        return;
    }
    c->live_handles--;
    c->peer.tcp.data = NULL;
    connect_next(c);
}

/* Tears the failed attempt down, on a loop turn of its own: remote_failed() may run inside the
 * parser or TLS, which must not lose their state under their feet. */
static void retry_timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct s2s *s = c->s2s;

    tls_free(c->tls);
    c->tls = NULL;
    c->tls_up = false;
    xmpp_in_free(c->peer.xin);
    c->peer.xin = NULL;
    bytes_cleanup(&c->peer.in);
    c->peer.connected = false;
    c->peer.failed = 0; /* a write error of the attempt that failed */
    c->fail_pending = false;
    c->peer.reading = false;
    c->peer.eof = false;
    c->peer.stream_closed = false;
    c->peer.fwd = 0;
    c->peer_hdr_sent = false;
    c->peer_restart = false;
    s->remote_features = s->starttls_sent = s->proceed = s->external = false;
    if (c->peer.tcp.data == c && !uv_is_closing((uv_handle_t *)&c->peer.tcp))
        uv_close((uv_handle_t *)&c->peer.tcp, retry_closed_cb);
    else
        connect_next(c);
}

/* The current candidate failed before the remote was ready: try the next one (or the same
 * one again without STARTTLS, for an opportunistic remote that refused TLS). Inside a parser
 * callback, return XMPP_IN_PAUSE after it: the rest of that input is dropped. */
static void remote_failed(struct conn *c, const char *what, int err)
{
    struct s2s *s = c->s2s;
    bool direct;
    const char *host;
    const struct sockaddr *sa = cand_addr(c, s->cur, &direct, &host);
    char ip[64] = "?";
    size_t n = strlen(s->tried);

    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof(ip));
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof(ip));
    if (n < sizeof(s->tried) - 1)
        snprintf(s->tried + n, sizeof(s->tried) - n, "%s%s [%s]: %s%s%s", n ? "; " : "", host, ip,
                 what, err ? " " : "", err ? xtp_err_name(err) : "");
    if (!s->retry_same) {
        s->cur++;
        s->retry_plain = false; /* the next address starts with TLS again */
    }
    s->retry_same = false;
    if (c->state != CONN_OUT_CONNECT)
        conn_set_state(c, CONN_OUT_CONNECT); /* the connect phase again, for another try */
    relay_update_reading(c);                 /* nothing more is read from this attempt */
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, retry_timer_cb, 0, 0);
}

static int send_header(struct conn *c)
{
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;
    int rc = xmpp_out_header(&out, XMPP_NS_SERVER, s->local, s->remote, NULL, "1.0", NULL);

    c->peer_hdr_sent = true;
    return send_remote(c, &out, rc);
}

static void start_client_tls(struct conn *c)
{
    struct s2s *s = c->s2s;
    struct worker_ticket *k = ticket_slot(c->w, s->local, s->remote);
    struct tls *t = tls_new_client(c->snap->tls, s->local, s->remote, k ? k->ticket : NULL,
                                   conn_tls_send_cb, c);

    s->offered_ticket = k != NULL;
    if (t == NULL) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    conn_start_tls(c, t);
}

bool s2s_out_remote_lost(struct conn *c, const char *what, int err)
{
    if (c->s2s == NULL ||
        (c->state != CONN_OUT_CONNECT && c->state != CONN_OUT_STREAM && c->state != CONN_OUT_AUTH))
        return false;
    remote_failed(c, what, err);
    return true;
}

bool s2s_out_tls_failed(struct conn *c)
{
    struct s2s *s = c->s2s;
    struct worker_ticket *k;

    if (s == NULL || !s->offered_ticket)
        return false;
    /* Some servers abort a resumption they cannot honour instead of falling back to a full
     * handshake (e.g. OpenSSL with client verification and no session id context): forget
     * the ticket and try the same address once more without it. */
    k = ticket_slot(c->w, s->local, s->remote);
    if (k != NULL) {
        tls_ticket_free(k->ticket);
        k->ticket = NULL;
    }
    conn_log(c, LOG_INFO, "%s refused to resume the TLS session (%s): a full handshake instead",
             s->remote, tls_last_error(c->tls));
    s->offered_ticket = false;
    s->retry_same = true;
    remote_failed(c, "resumption refused", 0);
    return true;
}

static void remote_connect_cb(uv_connect_t *req, int status)
{
    struct conn *c = req->handle->data;
    struct s2s *s = c->s2s;
    bool direct;
    const char *host;

    if (status == UV_ECANCELED || c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        remote_failed(c, "connect", status);
        return;
    }
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, handshake_timeout_cb, c->snap->cfg->handshake_timeout_ms, 0);
    c->peer.connected = true;
    uv_tcp_nodelay(&c->peer.tcp, 1);
    c->peer.xin = xmpp_in_new(&remote_ops, c, c->snap->cfg->max_stanza, features_name);
    if (c->peer.xin == NULL) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    c->peer.fwd = xmpp_in_offset(c->peer.xin);
    conn_set_state(c, CONN_OUT_STREAM);
    relay_update_reading(c);
    cand_addr(c, s->cur, &direct, &host);
    if (direct && !s->retry_plain) {
        start_client_tls(c); /* XEP-0368: TLS from the first byte */
        return;
    }
    if (send_header(c) != 0)
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
}

static void connect_next(struct conn *c)
{
    struct s2s *s = c->s2s;
    bool direct;
    const char *host;
    const struct sockaddr *sa;
    int r;

    if (c->state == CONN_CLOSING)
        return;
    if (s->cur >= s->ncand) {
        conn_set_detail(c, "%s: %s", s->remote, s->tried[0] ? s->tried : "no address");
        fail(c, CONN_END_REMOTE, XTP_EREMOTE, XTP_EREMOTE);
        return;
    }
    if (c->state != CONN_OUT_CONNECT)
        conn_set_state(c, CONN_OUT_CONNECT);
    sa = cand_addr(c, s->cur, &direct, &host);
    r = uv_tcp_init(c->w->loop, &c->peer.tcp);
    if (r < 0) {
        conn_close(c, CONN_END_NOMEM, r);
        return;
    }
    c->peer.tcp.data = c;
    c->live_handles++;
    conn_log(c, LOG_DEBUG, "connecting to %s (%s) for %s%s", host,
             direct && !s->retry_plain ? "direct TLS" : "STARTTLS", s->remote,
             s->retry_plain ? ", plaintext" : "");
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, connect_timeout_cb, c->snap->cfg->s2s_connect_timeout_ms, 0);
    r = uv_tcp_connect(&c->connect_req, &c->peer.tcp, sa, remote_connect_cb);
    if (r < 0)
        remote_failed(c, "connect", r);
}

/* ---- the remote's stream ------------------------------------------------------------------- */

/* The remote accepted us: the backend hears valid and its stanzas flow. */
static int go_relay(struct conn *c, enum s2s_auth us)
{
    struct s2s *s = c->s2s;
    int rc;

    s->authenticated = true;
    uv_timer_stop(&c->timer);
    conn_set_state(c, CONN_RELAY);
    rc = answer_back_result(c, s->local, s->remote, "valid");
    conn_log(c, LOG_INFO,
             "open domain=%s remote=%s auth=%s as=%s tls=%s cipher=%s resumed=%s cert_sha256=%s "
             "setup_ms=%llu",
             s->local, s->remote, s2s_auth_name(s->auth),
             us == S2S_AUTH_PKIX ? "sasl-external" : "dialback",
             c->tls ? tls_version(c->tls) : "none", c->tls ? tls_cipher(c->tls) : "none",
             c->tls && tls_resumed(c->tls) ? "yes" : "no", s->cert_fp[0] ? s->cert_fp : "-",
             (unsigned long long)(uv_now(c->w->loop) - s->t_first_byte));
    if (c->tls != NULL)
        s2s_out_keep_ticket(c); /* for the next stream to this remote */
    relay_update_reading(c);
    return rc;
}

void s2s_out_tls_done(struct conn *c)
{
    struct s2s *s = c->s2s;
    const struct dns_cand *dc = s->res != NULL ? &s->res->cand[s->cur] : NULL;
    struct verify_tlsa_rr rr[DNS_MAX_TLSA];
    const char *targets[1];
    size_t nrr = 0, ntargets = 0;
    enum s2s_auth how = S2S_AUTH_PKIX;
    char why[160];
    int err;

    /* RFC 7673: with DNSSEC, the SRV target is a reference identity too, and TLSA rules. */
    if (dc != NULL && dc->secure) {
        targets[ntargets++] = dc->host;
        for (size_t i = 0; i < dc->ntlsa && nrr < DNS_MAX_TLSA; i++, nrr++) {
            rr[nrr].usage = dc->tlsa[i].usage;
            rr[nrr].selector = dc->tlsa[i].selector;
            rr[nrr].mtype = dc->tlsa[i].mtype;
            rr[nrr].data = dc->tlsa[i].data;
            rr[nrr].len = dc->tlsa[i].len;
        }
    }
    err = s2s_judge_peer(c, s->remote, targets, ntargets, rr, nrr, &how, why, sizeof(why));
    s->cert_err = err;
    snprintf(s->cert_why, sizeof(s->cert_why), "%s", why);
    if (err == 0) {
        s->auth = how;
    } else if (err == XTP_EPINNED || err == XTP_EDANE ||
               cfg_remote_verify(c->snap->cfg, s->remote) == CFG_VERIFY_REQUIRED) {
        conn_set_detail(c, "%s (s2s.verify %s for %s)", why,
                        err == XTP_EPINNED || err == XTP_EDANE ? "cannot be relaxed" : "required",
                        s->remote);
        /* RFC 6120 §5.4.3.3: TLS began a new stream, on which we, the initiating entity,
         * speak first. The header sent before TLS does not count: without a new one the
         * remote gets a bare <stream:error/> and sees only not-well-formed XML. */
        c->peer_hdr_sent = false;
        if (send_header(c) != 0) {
            conn_close(c, CONN_END_NOMEM, -ENOMEM);
            return;
        }
        fail(c, CONN_END_AUTH, err, err);
        return;
    } else {
        s->auth = S2S_AUTH_DIALBACK; /* only DNS and the callback vouch for the remote */
        conn_log(c, LOG_WARN, "%s: certificate not valid (%s); s2s.verify optional: dialback",
                 s->remote, why);
    }
    /* RFC 6120 §5.4.3.3: a new stream over TLS; nothing from before survives. */
    bytes_cleanup(&c->peer.in);
    if (xmpp_in_reset(c->peer.xin) != 0) {
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
        return;
    }
    c->peer.fwd = xmpp_in_offset(c->peer.xin);
    s->remote_features = false;
    conn_set_state(c, CONN_OUT_AUTH);
    if (send_header(c) != 0)
        conn_close(c, CONN_END_NOMEM, -ENOMEM);
}

/* Opportunistic and without TLS: dialback in the clear (XEP-0220), the remote unverified; a
 * dialback callback sends its <db:verify/> in the clear. */
static int plain_dialback(struct conn *c)
{
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;
    char key[DIALBACK_KEY_LEN + 1];
    int rc;

    if (s->verify_only) {
        /* A dialback callback asks its question (XEP-0220 §2.2.1), as on_features() does
         * over TLS; it has no domain of its own to prove. */
        conn_set_state(c, CONN_OUT_AUTH);
        conn_log(c, LOG_WARN, "%s: no TLS (s2s.tls opportunistic for it): plaintext callback",
                 s->remote);
        rc = xmpp_out_db(&out, "verify", s->local, s->remote, s->db_id, NULL, s->db_key);
        return send_remote(c, &out, rc);
    }
    if (s->their_id[0] == '\0') {
        conn_set_detail(c, "%s gave no stream id: dialback impossible", s->remote);
        return fail(c, CONN_END_REMOTE, XTP_EBADFORMAT, XTP_EBADFORMAT);
    }
    conn_set_state(c, CONN_OUT_AUTH);
    s->auth = S2S_AUTH_DIALBACK;
    conn_log(c, LOG_WARN, "%s: no TLS (s2s.tls opportunistic for it): plaintext dialback",
             s->remote);
    dialback_key(c->w->dialback, s->remote, s->local, s->their_id, key);
    return send_remote(c, &out, xmpp_out_db(&out, "result", s->local, s->remote, NULL, NULL, key));
}

static int remote_open(void *arg, const struct xmpp_hdr *h)
{
    struct conn *c = arg;
    struct s2s *s = c->s2s;
    int rc = xmpp_in_check_ns(h, XMPP_NS_SERVER);

    relay_skip(&c->peer, h->end);
    /* We are the initiating entity: the remote's header always answers ours. conn_on_pause()
     * clears peer_hdr_sent at the SASL restart (right after send_header() set it, as it must
     * for s2s-in, where the remote speaks first); without this a later stream error would go
     * out behind a second header of ours, which the remote rejects as not-well-formed. */
    c->peer_hdr_sent = true;
    if (rc != 0) {
        conn_set_detail(c, "the remote's stream header");
        return fail(c, CONN_END_REMOTE, rc, rc);
    }
    s->remote_features = false;
    if (h->id == NULL || strlen(h->id) >= sizeof(s->their_id))
        s->their_id[0] = '\0';
    else
        snprintf(s->their_id, sizeof(s->their_id), "%s", h->id);
    if (!xmpp_in_version_ok(h) && c->tls == NULL) {
        /* A pre-1.0 server has no features and no TLS (RFC 6120 §4.7.5). */
        if (cfg_remote_tls(c->snap->cfg, s->remote) != CFG_S2S_TLS_OPPORTUNISTIC) {
            conn_set_detail(c, "%s speaks a pre-1.0 stream: no TLS", s->remote);
            return fail(c, CONN_END_REMOTE, XTP_ENOTLS, XTP_ENOTLS);
        }
        s->retry_plain = true;
        return plain_dialback(c); /* no features will come */
    }
    return 0;
}

/* Whether the <mechanisms/> child lists EXTERNAL: its text is in the bytes we were given. */
static bool offers_external(const struct conn *c, const struct xmpp_elem *e)
{
    for (size_t i = 0; i < e->nchildren; i++) {
        const struct xmpp_child *ch = &e->children[i];
        const char *p;
        size_t len;

        if (strcmp(ch->name, XMPP_NS_SASL "|mechanisms") != 0)
            continue;
        p = (const char *)c->peer.w + (ch->start - c->peer.w_off);
        len = (size_t)(ch->end - ch->start);
        /* <mechanism>EXTERNAL</mechanism>: mechanism names are uppercase tokens (RFC 4422
         * §3.1), the only text inside; a match needs both delimiters. */
        for (const char *q = p; q + 10 <= p + len; q++)
            if (q[0] == '>' && memcmp(q + 1, "EXTERNAL", 8) == 0 && q[9] == '<')
                return true;
    }
    return false;
}

static int on_features(struct conn *c, const struct xmpp_elem *e)
{
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;
    char key[DIALBACK_KEY_LEN + 1];
    int rc;

    relay_skip(&c->peer, e->end);
    s->remote_features = true;
    if (c->tls == NULL && s->retry_plain)
        return plain_dialback(c);
    if (c->tls == NULL) {
        if (e->children_truncated) {
            conn_set_detail(c, "too many stream features from %s", s->remote);
            return fail(c, CONN_END_REMOTE, XTP_EBADFORMAT, XTP_EBADFORMAT);
        }
        /* RFC 7590 §3.1: ask for TLS whether or not it is offered; a man in the middle that
         * strips <starttls/> from the features gains nothing. */
        s->starttls_sent = true;
        return send_remote(c, &out, xmpp_out_starttls(&out));
    }
    if (s->verify_only) {
        /* XEP-0220 §2.2.1: the verification request needs no authentication of our own. */
        rc = xmpp_out_db(&out, "verify", s->local, s->remote, s->db_id, NULL, s->db_key);
        return send_remote(c, &out, rc);
    }
    if (s->external) /* the features after the SASL restart: we are in */
        return go_relay(c, S2S_AUTH_PKIX);
    if (offers_external(c, e)) {
        s->external = true;
        return send_remote(c, &out, xmpp_out_auth_external(&out, s->local));
    }
    /* XEP-0220: dialback with our own key, bound to the id the remote gave this stream. A
     * server that does not advertise the feature (pre-XEP-0220 §2.4) may still do it. */
    if (s->their_id[0] == '\0') {
        conn_set_detail(c, "%s gave no stream id: dialback impossible", s->remote);
        return fail(c, CONN_END_REMOTE, XTP_EBADFORMAT, XTP_EBADFORMAT);
    }
    dialback_key(c->w->dialback, s->remote, s->local, s->their_id, key);
    rc = xmpp_out_db(&out, "result", s->local, s->remote, NULL, NULL, key);
    return send_remote(c, &out, rc);
}

/* The defined condition of a <stream:error/> (RFC 6120 §4.9.3): the local name of its child in
 * the stream-errors namespace other than <text/>, or "undefined-condition" without one. */
static const char *stream_error_condition(const struct xmpp_elem *e)
{
    static const char prefix[] = XMPP_NS_STREAM_ERRORS "|";

    for (size_t i = 0; i < e->nchildren; i++) {
        const char *n = e->children[i].name;

        if (strncmp(n, prefix, sizeof(prefix) - 1) == 0 && strcmp(n + sizeof(prefix) - 1, "text"))
            return n + sizeof(prefix) - 1;
    }
    return "undefined-condition";
}

static int remote_element(void *arg, const struct xmpp_elem *e)
{
    struct conn *c = arg;
    struct s2s *s = c->s2s;
    struct bytes out = BYTES_INIT;
    const char *type;

    if (strcmp(e->name, XMPP_NS_STREAMS "|features") == 0 && c->state != CONN_RELAY)
        return on_features(c, e);
    relay_skip(&c->peer, e->end); /* nothing from the remote reaches the backend */
    if (strcmp(e->name, XMPP_NS_STREAMS "|error") == 0) {
        const char *cond = stream_error_condition(e);

        if (c->state == CONN_OUT_STREAM && s->starttls_sent && c->tls == NULL) {
            /* A server without TLS may answer <starttls/> with a stream error (Prosody
             * without mod_tls: <unsupported-stanza-type/>) rather than <failure/>. */
            if (cfg_remote_tls(c->snap->cfg, s->remote) == CFG_S2S_TLS_OPPORTUNISTIC) {
                s->retry_plain = s->retry_same = true;
                remote_failed(c, "refused STARTTLS", 0);
                return XMPP_IN_PAUSE;
            }
            conn_set_detail(c, "%s has no TLS: <starttls/> answered with <%s/> (s2s.tls required)",
                            s->remote, cond);
            return fail(c, CONN_END_REMOTE, XTP_ENOTLS, XTP_ENOTLS);
        }
        conn_set_detail(c, "%s sent a stream error: <%s/>", s->remote, cond);
        return fail(c, CONN_END_REMOTE, XTP_EREMOTE, XTP_EREMOTE);
    }
    if (c->state == CONN_OUT_STREAM && strcmp(e->name, XMPP_NS_TLS "|proceed") == 0 &&
        s->starttls_sent && c->tls == NULL) {
        s->proceed = true;
        start_client_tls(c);
        return c->state == CONN_CLOSING ? -ECANCELED : XMPP_IN_PAUSE;
    }
    if (c->state == CONN_OUT_STREAM && strcmp(e->name, XMPP_NS_TLS "|failure") == 0) {
        if (cfg_remote_tls(c->snap->cfg, s->remote) == CFG_S2S_TLS_OPPORTUNISTIC) {
            s->retry_plain = s->retry_same = true;
            remote_failed(c, "refused STARTTLS", 0);
            return XMPP_IN_PAUSE;
        }
        conn_set_detail(c, "%s refused STARTTLS (s2s.tls required)", s->remote);
        return fail(c, CONN_END_REMOTE, XTP_ENOTLS, XTP_ENOTLS);
    }
    if (c->state == CONN_OUT_AUTH && strcmp(e->name, XMPP_NS_SASL "|success") == 0 && s->external) {
        /* RFC 6120 §6.4.6: both sides restart the stream; the remote's next header follows
         * right after </success>. */
        c->peer_restart = true;
        if (send_header(c) != 0)
            return -ENOMEM;
        return XMPP_IN_PAUSE;
    }
    if (c->state == CONN_OUT_AUTH && strcmp(e->name, XMPP_NS_SASL "|failure") == 0 && s->external) {
        char key[DIALBACK_KEY_LEN + 1];

        /* XEP-0178 §3: EXTERNAL refused; dialback may still work. */
        conn_log(c, LOG_INFO, "%s refused SASL EXTERNAL for %s: trying dialback", s->remote,
                 s->local);
        s->external = false;
        dialback_key(c->w->dialback, s->remote, s->local, s->their_id, key);
        return send_remote(c, &out,
                           xmpp_out_db(&out, "result", s->local, s->remote, NULL, NULL, key));
    }
    if (c->state == CONN_OUT_AUTH && s->verify_only &&
        strcmp(e->name, XMPP_NS_DIALBACK "|verify") == 0) {
        const char *id = xmpp_attr_get(e->attrs, e->nattrs, "id");
        bool valid;

        type = xmpp_attr_get(e->attrs, e->nattrs, "type");
        valid =
            type != NULL && strcmp(type, "valid") == 0 && id != NULL && strcmp(id, s->db_id) == 0;
        s->reported = true;
        conn_set_detail(c, "%s says the key is %s", s->remote, valid ? "valid" : "not valid");
        s2s_in_callback_done(c->w, s->origin, s->local, s->remote, valid, c->detail);
        if (xmpp_out_close(&out) == 0)
            relay_to_peer(c, bytes_data(&out), bytes_len(&out));
        bytes_cleanup(&out);
        conn_close(c, CONN_END_DONE, 0);
        return -ECANCELED;
    }
    if (c->state == CONN_OUT_AUTH && strcmp(e->name, XMPP_NS_DIALBACK "|result") == 0) {
        type = xmpp_attr_get(e->attrs, e->nattrs, "type");
        if (type != NULL && strcmp(type, "valid") == 0)
            return go_relay(c, S2S_AUTH_DIALBACK);
        conn_set_detail(c, "%s answered our dialback with type=%s", s->remote,
                        type ? type : "(none)");
        return fail(c, CONN_END_AUTH, XTP_EAUTH, XTP_EAUTH);
    }
    if (c->state == CONN_RELAY)
        return 0; /* whatever the remote says on our outbound stream is not for the backend */
    conn_set_detail(c, "unexpected <%s> from %s", e->name, s->remote);
    return fail(c, CONN_END_REMOTE, XTP_EPOLICY, XTP_EPOLICY);
}

static int remote_close(void *arg, uint64_t end)
{
    struct conn *c = arg;
    struct bytes out = BYTES_INIT;

    relay_skip(&c->peer, end);
    c->peer.stream_closed = true;
    if (c->state != CONN_RELAY) {
        conn_set_detail(c, "%s closed the stream", c->s2s->remote);
        return fail(c, CONN_END_REMOTE, XTP_EREMOTE, XTP_EREMOTE);
    }
    /* The remote ends our outbound stream: so does the backend's, cleanly. */
    if (xmpp_out_close(&out) == 0)
        relay_to_backend(c, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&out);
    conn_close(c, CONN_END_DONE, 0);
    return -ECANCELED;
}
