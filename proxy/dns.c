/* dns.c: s2s-out's remote lookup on libunbound, driven by the loop. See dns.h.
 *
 *  A lookup (struct dns_query) goes through three phases; each sends its libunbound queries
 *  in parallel and the next starts when the last answer of the previous one is in:
 *    SRV:   _xmpps-server._tcp.D and _xmpp-server._tcp.D
 *    ADDR:  AAAA and A of every distinct target (on fallback: of D itself)
 *    TLSA:  _PORT._tcp.TARGET of every endpoint whose SRV and address answers are secure
 *           (RFC 7673 §3.2 forbids asking when they are not); started per target as soon as
 *           that target's addresses are in
 *  then the candidates are built (finish) and the query moves to the ready list, whose
 *  callbacks run once ub_process() has returned. One uv_timer_t serves every deadline: all
 *  lookups share one timeout, so the pending list, kept in start order, is in deadline order.
 *  A second timer at 0 ms ("kick") delivers results that are known at once (a bad domain,
 *  a failed send, dns_close()) on the next loop turn, never inside the call that found them. */
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>
#include <unistd.h>

#include "err.h"

#define RR_A           1
#define RR_AAAA        28
#define RR_SRV         33
#define RR_TLSA        52
#define RCODE_SERVFAIL 2

enum phase { PHASE_SRV, PHASE_ADDR, PHASE_DONE };

enum sub_kind { SUB_SRV_DIRECT, SUB_SRV_STARTTLS, SUB_AAAA, SUB_A, SUB_TLSA };

/* One libunbound query. Lives inside its dns_query; libunbound holds it as mydata. */
struct sub {
    struct dns_query *q;
    int id; /* libunbound's async id while pending */
    bool pending;
    uint8_t kind; /* enum sub_kind */
    uint16_t idx; /* target (AAAA, A) or endpoint (TLSA) index */
};

struct target {
    char name[SRV_NAME_MAX + 1];
    struct sub aaaa, a;
    uint8_t v6[DNS_MAX_ADDRS][16], v4[DNS_MAX_ADDRS][4];
    size_t n6, n4;
    bool sec6, sec4; /* that RRset validated (and non-empty) */
    bool bogus;      /* an address answer was bogus: never connect here */
    bool incomplete; /* an address answer never came (timeout) */
};

/* One SRV record (or the fallback) with its TLSA answer. */
struct endpoint {
    struct srv_rec rec;
    size_t target;
    bool srv_secure; /* the SRV answer it came from validated */
    struct sub tlsa_q;
    bool tlsa_failed;      /* bogus or SERVFAIL: never connect here (RFC 7673 §3.4) */
    struct srv_tlsa *tlsa; /* owned, with the data in tlsa_data */
    size_t ntlsa;
    uint8_t *tlsa_data; /* owned */
};

struct list {
    struct dns_query *head, *tail;
};

struct dns_query {
    struct dns *d;   /* borrowed; NULL once delivered */
    struct list *on; /* the list it is on: &d->pending or &d->ready */
    struct dns_query *prev, *next;
    uint64_t deadline; /* uv_now() + timeout */
    dns_done_fn *cb;
    void *arg;
    char domain[SRV_NAME_MAX + 1];
    enum phase phase;
    unsigned outstanding; /* subs pending */
    struct sub srv[2];    /* [0] _xmpps-server, [1] _xmpp-server */
    enum srv_set set[2];
    bool set_secure[2];
    struct srv_rec recs[2 * DNS_MAX_SRV]; /* per service, then merged: Direct TLS first */
    size_t ngot[2];                       /* records per service, at recs + i * DNS_MAX_SRV */
    size_t nrecs;                         /* merged */
    struct target *targets;               /* owned */
    size_t ntargets;
    struct endpoint *eps; /* owned */
    size_t neps;
    struct dns_result res; /* handed to the callback; res.cand owned */
};

struct dns {
    uv_loop_t *loop;
    struct ub_ctx *ctx; /* owned; deleted after the handles closed */
    uv_poll_t poll;     /* on ub_fd() */
    uv_timer_t timer;   /* the earliest deadline */
    uv_timer_t kick;    /* delivers the ready list on the next turn */
    uint64_t timeout_ms;
    unsigned order_flags;
    struct list pending, ready;
    bool delivering;
    bool closing;
    bool broken; /* the result pipe failed: every lookup fails at once */
    char broken_why[96];
    int handles; /* initialised handles not yet closed */
    dns_closed_fn *closed_cb;
    void *closed_arg;
};

static void list_push(struct list *l, struct dns_query *q)
{
    q->on = l;
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
}

static void list_remove(struct dns_query *q)
{
    struct list *l = q->on;

    if (l == NULL)
        return;
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    q->on = NULL;
    q->prev = q->next = NULL;
}

/* Appends a note to res.why: "; "-separated, silently cut when full. */
static void __attribute__((format(printf, 2, 3))) note(struct dns_query *q, const char *fmt, ...)
{
    size_t used = strlen(q->res.why);
    va_list ap;

    if (used + 3 >= sizeof(q->res.why))
        return;
    if (used > 0) {
        memcpy(q->res.why + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(q->res.why + used, sizeof(q->res.why) - used, fmt, ap);
    va_end(ap);
}

static void timer_cb(uv_timer_t *h);

/* Points the timer at the earliest deadline, or stops it. */
static void rearm(struct dns *d)
{
    uint64_t now = uv_now(d->loop);
    struct dns_query *head = d->pending.head;

    if (d->closing)
        return;
    if (head == NULL)
        uv_timer_stop(&d->timer);
    else
        uv_timer_start(&d->timer, timer_cb, head->deadline > now ? head->deadline - now : 0, 0);
}

/* ---- libunbound queries ---- */

static void answer_cb(void *mydata, int err, struct ub_result *r);

/* Sends one query. On failure the sub is left not pending and the reason noted. */
static void send_sub(struct dns_query *q, struct sub *s, enum sub_kind kind, size_t idx,
                     const char *name, int rrtype)
{
    int rc;

    s->q = q;
    s->kind = (uint8_t)kind;
    s->idx = (uint16_t)idx;
    s->pending = false;
    rc = ub_resolve_async(q->d->ctx, name, rrtype, 1 /* IN */, s, answer_cb, &s->id);
    if (rc != 0) {
        note(q, "%s: %s", name, ub_strerror(rc));
        return;
    }
    s->pending = true;
    q->outstanding++;
}

static void cancel_sub(struct dns_query *q, struct sub *s)
{
    if (!s->pending)
        return;
    /* With the threaded ctx this only flags the query; an answer already on its way is
     * dropped by ub_process() without calling answer_cb (libunbound.c, process_answer). */
    (void)ub_cancel(q->d->ctx, s->id);
    s->pending = false;
    q->outstanding--;
}

/* Cancels what is still pending and remembers what it leaves unknown. */
static void cancel_all(struct dns_query *q)
{
    cancel_sub(q, &q->srv[0]);
    cancel_sub(q, &q->srv[1]);
    for (size_t i = 0; i < q->ntargets; i++) {
        struct target *t = &q->targets[i];

        t->incomplete = t->aaaa.pending || t->a.pending;
        cancel_sub(q, &t->aaaa);
        cancel_sub(q, &t->a);
    }
    for (size_t i = 0; i < q->neps; i++) {
        if (q->eps[i].tlsa_q.pending)
            q->eps[i].tlsa_failed = true; /* DANE may apply: unknown is not "no" */
        cancel_sub(q, &q->eps[i].tlsa_q);
    }
}

/* What an answer is, whatever was asked. */
enum verdict { V_DATA, V_EMPTY, V_FAILED };

static enum verdict judge(struct dns_query *q, const char *what, int err, struct ub_result *r)
{
    if (err != 0) {
        note(q, "%s: %s", what, ub_strerror(err));
        return V_FAILED;
    }
    if (r->bogus) {
        note(q, "%s: DNSSEC bogus (%s)", what, r->why_bogus ? r->why_bogus : "no reason given");
        return V_FAILED;
    }
    if (r->havedata)
        return V_DATA;
    if (r->nxdomain || r->rcode == 0)
        return V_EMPTY;
    if (r->rcode == RCODE_SERVFAIL)
        note(q, "%s: SERVFAIL", what);
    else
        note(q, "%s: rcode %d", what, r->rcode);
    return V_FAILED;
}

static void finish(struct dns_query *q);
static void start_tlsa(struct dns_query *q, size_t t);

static void srv_answer(struct dns_query *q, struct sub *s, int err, struct ub_result *r)
{
    int i = s->kind == SUB_SRV_DIRECT ? 0 : 1;
    const char *what = i == 0 ? "_xmpps-server SRV" : "_xmpp-server SRV";

    switch (judge(q, what, err, r)) {
    case V_FAILED:
        q->set[i] = SRV_SET_FAILED;
        return;
    case V_EMPTY:
        q->set[i] = SRV_SET_EMPTY;
        break;
    case V_DATA:
        q->set[i] = srv_parse_set(r->data, r->len, i == 0, q->recs + i * DNS_MAX_SRV, DNS_MAX_SRV,
                                  &q->ngot[i]);
        if (q->set[i] == SRV_SET_FAILED)
            note(q, "%s: no usable record", what);
        break;
    }
    q->set_secure[i] = r->secure != 0;
}

/* Parses the addresses of one answer into the target. */
static void addr_answer(struct dns_query *q, struct sub *s, int err, struct ub_result *r)
{
    struct target *t = &q->targets[s->idx];
    bool v6 = s->kind == SUB_AAAA;
    char what[SRV_NAME_MAX + 8];

    snprintf(what, sizeof(what), "%s %s", t->name, v6 ? "AAAA" : "A");
    switch (judge(q, what, err, r)) {
    case V_FAILED:
        if (err == 0 && r->bogus)
            t->bogus = true; /* RFC 7673 §3.2: MUST NOT connect to this target */
        return;
    case V_EMPTY:
        return;
    case V_DATA:
        break;
    }
    for (size_t i = 0; r->data[i] != NULL; i++) {
        size_t want = v6 ? 16 : 4;

        if (r->len[i] != (int)want)
            continue;
        if (v6 && t->n6 < DNS_MAX_ADDRS)
            memcpy(t->v6[t->n6++], r->data[i], 16);
        else if (!v6 && t->n4 < DNS_MAX_ADDRS)
            memcpy(t->v4[t->n4++], r->data[i], 4);
    }
    if (v6)
        t->sec6 = r->secure && t->n6 > 0;
    else
        t->sec4 = r->secure && t->n4 > 0;
}

static void tlsa_answer(struct dns_query *q, struct sub *s, int err, struct ub_result *r)
{
    struct endpoint *e = &q->eps[s->idx];
    char what[SRV_NAME_MAX + 24];
    size_t n = 0, total = 0, off = 0;

    snprintf(what, sizeof(what), "_%u._tcp.%s TLSA", e->rec.port, e->rec.target);
    switch (judge(q, what, err, r)) {
    case V_FAILED:
        e->tlsa_failed = true; /* RFC 7673 §3.4, RFC 6698 §4.1 */
        return;
    case V_EMPTY:
        return;
    case V_DATA:
        break;
    }
    if (!r->secure)
        return; /* RFC 7673 §3.4: insecure TLSA records are as good as none */
    for (size_t i = 0; r->data[i] != NULL && n < DNS_MAX_TLSA; i++) {
        struct srv_tlsa t;

        if (r->len[i] >= 0 && srv_tlsa_parse((uint8_t *)r->data[i], (size_t)r->len[i], &t) == 0) {
            total += t.len;
            n++;
        }
    }
    if (n == 0) {
        note(q, "%s: no well-formed record", what);
        return;
    }
    e->tlsa = calloc(n, sizeof(*e->tlsa));
    e->tlsa_data = malloc(total);
    if (e->tlsa == NULL || e->tlsa_data == NULL) {
        note(q, "%s: out of memory", what);
        e->tlsa_failed = true;
        return;
    }
    for (size_t i = 0; r->data[i] != NULL && e->ntlsa < n; i++) {
        struct srv_tlsa t;

        if (r->len[i] < 0 || srv_tlsa_parse((uint8_t *)r->data[i], (size_t)r->len[i], &t) != 0)
            continue;
        memcpy(e->tlsa_data + off, t.data, t.len);
        t.data = e->tlsa_data + off;
        off += t.len;
        e->tlsa[e->ntlsa++] = t;
    }
}

static uint32_t random_below(void *arg, uint32_t n)
{
    return arc4random_uniform(n); /* weights are no secret; this just avoids a seed */
}

/* Both SRV answers are in: decide, and start the address queries. */
static void after_srv(struct dns_query *q)
{
    enum srv_plan plan = srv_plan(q->set[0], q->set[1]);
    char name[SRV_NAME_MAX + 1];

    q->res.srv_secure = q->set_secure[0] && q->set_secure[1];
    /* Merge in a fixed order, whichever answer came first, so that records srv_order() has no
     * reason to reorder (all weights 0) stay in a predictable one: Direct TLS first. */
    memmove(q->recs + q->ngot[0], q->recs + DNS_MAX_SRV, q->ngot[1] * sizeof(*q->recs));
    q->nrecs = q->ngot[0] + q->ngot[1];
    switch (plan) {
    case SRV_PLAN_FAILED:
        q->res.err = XTP_EDNS;
        return;
    case SRV_PLAN_NOSERVICE:
        q->res.err = XTP_ENXDOMAIN;
        note(q, "SRV target \".\": no XMPP service");
        return;
    case SRV_PLAN_FALLBACK:
        q->res.fallback = true;
        q->nrecs = 1;
        memset(&q->recs[0], 0, sizeof(q->recs[0]));
        q->recs[0].port = SRV_PORT_XMPP_SERVER;
        snprintf(q->recs[0].target, sizeof(q->recs[0].target), "%s", q->domain);
        break;
    case SRV_PLAN_RECORDS:
        srv_order(q->recs, q->nrecs, q->d->order_flags, random_below, NULL);
        break;
    }

    q->eps = calloc(q->nrecs, sizeof(*q->eps));
    q->targets =
        calloc(q->nrecs < DNS_MAX_TARGETS ? q->nrecs : DNS_MAX_TARGETS, sizeof(*q->targets));
    if (q->eps == NULL || q->targets == NULL) {
        q->res.err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < q->nrecs; i++) {
        struct endpoint *e = &q->eps[q->neps];
        size_t t;

        for (t = 0; t < q->ntargets; t++)
            if (strcmp(q->targets[t].name, q->recs[i].target) == 0)
                break;
        if (t == q->ntargets) {
            if (q->ntargets == DNS_MAX_TARGETS) {
                note(q, "%s: more than %d targets", q->recs[i].target, DNS_MAX_TARGETS);
                continue;
            }
            snprintf(q->targets[t].name, sizeof(q->targets[t].name), "%s", q->recs[i].target);
            q->ntargets++;
        }
        e->rec = q->recs[i];
        e->target = t;
        e->srv_secure = plan == SRV_PLAN_FALLBACK ? q->res.srv_secure
                                                  : q->set_secure[e->rec.direct_tls ? 0 : 1];
        q->neps++;
    }
    q->phase = PHASE_ADDR;
    for (size_t t = 0; t < q->ntargets; t++) {
        snprintf(name, sizeof(name), "%s", q->targets[t].name);
        send_sub(q, &q->targets[t].aaaa, SUB_AAAA, t, name, RR_AAAA);
        send_sub(q, &q->targets[t].a, SUB_A, t, name, RR_A);
        if (!q->targets[t].aaaa.pending && !q->targets[t].a.pending)
            start_tlsa(q, t);
    }
}

/* A target's addresses are in: ask TLSA for its endpoints where RFC 7673 §3.2 allows. */
static void start_tlsa(struct dns_query *q, size_t t)
{
    struct target *tg = &q->targets[t];
    char name[SRV_NAME_MAX + 16];

    if (tg->bogus || !(tg->sec6 || tg->sec4))
        return;
    for (size_t i = 0; i < q->neps; i++) {
        struct endpoint *e = &q->eps[i];

        if (e->target != t || !e->srv_secure)
            continue;
        if (snprintf(name, sizeof(name), "_%u._tcp.%s", e->rec.port, tg->name) >=
            (int)sizeof(name)) {
            /* Too long a name for TLSA: unknown whether DANE applies, so do not connect. */
            note(q, "%s: TLSA name too long", tg->name);
            e->tlsa_failed = true;
            continue;
        }
        send_sub(q, &e->tlsa_q, SUB_TLSA, i, name, RR_TLSA);
        if (!e->tlsa_q.pending)
            e->tlsa_failed = true;
    }
}

/* Moves q to the ready list with its outcome settled. */
static void complete(struct dns_query *q)
{
    struct dns *d = q->d;

    cancel_all(q);
    if (q->phase != PHASE_DONE)
        finish(q);
    list_remove(q);
    list_push(&d->ready, q);
    rearm(d);
}

static void answer_cb(void *mydata, int err, struct ub_result *r)
{
    struct sub *s = mydata;
    struct dns_query *q = s->q;

    s->pending = false;
    q->outstanding--;
    switch (s->kind) {
    case SUB_SRV_DIRECT:
    case SUB_SRV_STARTTLS:
        srv_answer(q, s, err, r);
        if (q->outstanding == 0)
            after_srv(q);
        break;
    case SUB_AAAA:
    case SUB_A:
        addr_answer(q, s, err, r);
        if (!q->targets[s->idx].aaaa.pending && !q->targets[s->idx].a.pending)
            start_tlsa(q, s->idx);
        break;
    case SUB_TLSA:
        tlsa_answer(q, s, err, r);
        break;
    }
    ub_resolve_free(r);
    if (q->outstanding == 0 || q->res.err != 0)
        complete(q);
}

/* ---- building the result ---- */

static void put_cand(struct dns_query *q, const struct endpoint *e, const uint8_t *ip, bool v6,
                     bool sec)
{
    struct dns_cand *c = &q->res.cand[q->res.ncand++];

    memset(c, 0, sizeof(*c));
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->addr;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(e->rec.port);
        memcpy(&s6->sin6_addr, ip, 16);
        c->addrlen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addr;

        s4->sin_family = AF_INET;
        s4->sin_port = htons(e->rec.port);
        memcpy(&s4->sin_addr, ip, 4);
        c->addrlen = sizeof(*s4);
    }
    c->direct_tls = e->rec.direct_tls;
    c->secure = e->srv_secure && sec;
    c->host = q->targets[e->target].name;
    c->tlsa = e->tlsa;
    c->ntlsa = e->ntlsa;
}

/* Settles res from what arrived; pending answers count as failed. */
static void finish(struct dns_query *q)
{
    bool failed = false;

    if (q->res.err != 0)
        goto done;
    if (q->phase == PHASE_SRV) {
        q->res.err = XTP_EDNS; /* only a timeout or dns_close() ends this phase early */
        goto done;
    }
    q->res.cand = calloc(DNS_MAX_CAND, sizeof(*q->res.cand));
    if (q->res.cand == NULL) {
        q->res.err = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < q->neps && q->res.ncand < DNS_MAX_CAND; i++) {
        const struct endpoint *e = &q->eps[i];
        const struct target *t = &q->targets[e->target];

        if (t->bogus || e->tlsa_failed) {
            failed = true;
            continue;
        }
        if (t->incomplete && e->srv_secure) {
            /* Some addresses are in, but TLSA was never asked: DANE may apply. */
            note(q, "%s: addresses incomplete, TLSA unknown", t->name);
            failed = true;
            continue;
        }
        /* RFC 8305 §4: alternate the families, IPv6 first. */
        for (size_t k = 0; k < DNS_MAX_ADDRS && q->res.ncand < DNS_MAX_CAND; k++) {
            if (k < t->n6)
                put_cand(q, e, t->v6[k], true, t->sec6);
            if (k < t->n4 && q->res.ncand < DNS_MAX_CAND)
                put_cand(q, e, t->v4[k], false, t->sec4);
        }
    }
    if (q->res.ncand == 0)
        q->res.err = failed || q->res.why[0] != '\0' ? XTP_EDNS : XTP_ENXDOMAIN;
    if (q->res.err == XTP_ENXDOMAIN && q->res.why[0] == '\0')
        note(q,
             q->res.fallback ? "no SRV records and no address for %s"
                             : "no SRV target of %s has an address",
             q->domain);
done:
    q->phase = PHASE_DONE;
}

/* ---- delivery, timers, the poll ---- */

static void close_handles(struct dns *d);

static void deliver(struct dns *d)
{
    struct dns_query *q;

    if (d->delivering)
        return; /* a callback called something that delivers: the outer loop goes on */
    d->delivering = true;
    while ((q = d->ready.head) != NULL) {
        list_remove(q);
        q->d = NULL;
        q->cb(q->arg, &q->res);
    }
    d->delivering = false;
    if (d->closing && d->pending.head == NULL)
        close_handles(d);
}

static void fail_all(struct dns *d, int err, const char *why)
{
    struct dns_query *q;

    while ((q = d->pending.head) != NULL) {
        q->res.err = err;
        note(q, "%s", why);
        complete(q);
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct dns *d = h->data;
    int rc = status < 0 ? 0 : ub_process(d->ctx);

    if (status < 0 || rc != 0) {
        /* The result pipe is gone: libunbound cannot answer anything any more. */
        snprintf(d->broken_why, sizeof(d->broken_why), "resolver failed: %s",
                 status < 0 ? uv_strerror(status) : ub_strerror(rc));
        d->broken = true;
        uv_poll_stop(&d->poll);
        fail_all(d, XTP_EDNS, d->broken_why);
    }
    deliver(d);
}

/* Names the first query still pending, for the timeout note. */
static const char *waiting_for(const struct dns_query *q)
{
    if (q->srv[0].pending)
        return "_xmpps-server SRV";
    if (q->srv[1].pending)
        return "_xmpp-server SRV";
    for (size_t i = 0; i < q->ntargets; i++)
        if (q->targets[i].aaaa.pending || q->targets[i].a.pending)
            return q->targets[i].name;
    return "TLSA";
}

static void timer_cb(uv_timer_t *h)
{
    struct dns *d = h->data;
    uint64_t now = uv_now(d->loop);
    struct dns_query *q;

    while ((q = d->pending.head) != NULL && q->deadline <= now) {
        note(q, "timeout after %llu ms waiting for %s", (unsigned long long)d->timeout_ms,
             waiting_for(q));
        complete(q);
    }
    rearm(d);
    deliver(d);
}

static void kick_cb(uv_timer_t *h)
{
    deliver(h->data);
}

static void closed_cb(uv_handle_t *h)
{
    struct dns *d = h->data;

    if (--d->handles > 0)
        return;
    /* Deleting the ctx closes ub_fd(), which is why the poll handle had to go first. */
    ub_ctx_delete(d->ctx);
    if (d->closed_cb != NULL)
        d->closed_cb(d->closed_arg);
    free(d);
}

static void close_handles(struct dns *d)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&d->poll, (uv_handle_t *)&d->timer,
                         (uv_handle_t *)&d->kick};

    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], closed_cb);
}

/* ---- public ---- */

static int setopt(struct ub_ctx *ctx, const char *opt, const char *val, char *err, size_t errlen)
{
    int rc = ub_ctx_set_option(ctx, opt, val);

    if (rc != 0)
        snprintf(err, errlen, "resolver option %s %s: %s", opt, val, ub_strerror(rc));
    return rc;
}

static struct ub_ctx *make_ctx(const struct dns_opts *o, char *err, size_t errlen)
{
    struct ub_ctx *ctx = ub_ctx_create();
    const char *ta = o->trust_anchor_file;
    int rc;

    if (ctx == NULL) {
        snprintf(err, errlen, "resolver: cannot create a libunbound context");
        return NULL;
    }
    if ((rc = ub_ctx_async(ctx, 1)) != 0) {
        snprintf(err, errlen, "resolver threads: %s", ub_strerror(rc));
        goto fail;
    }
    if (o->ub_config != NULL && (rc = ub_ctx_config(ctx, o->ub_config)) != 0) {
        snprintf(err, errlen, "resolver config %s: %s", o->ub_config, ub_strerror(rc));
        goto fail;
    }
    if (o->forwarders == NULL) {
        if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
            snprintf(err, errlen, "resolver: /etc/resolv.conf: %s", ub_strerror(rc));
            goto fail;
        }
    }
    for (size_t i = 0; o->forwarders != NULL && o->forwarders[i] != NULL; i++) {
        if ((rc = ub_ctx_set_fwd(ctx, o->forwarders[i])) != 0) {
            snprintf(err, errlen, "resolver forwarder %s: %s", o->forwarders[i], ub_strerror(rc));
            goto fail;
        }
    }
    /* A forwarder on loopback (systemd-resolved, a sidecar, tests) is what we were told to
     * use. Not when recursing: then it would let any zone point us at local services. */
    if ((o->forwarders == NULL || o->forwarders[0] != NULL) &&
        setopt(ctx, "do-not-query-localhost:", "no", err, errlen) != 0)
        goto fail;
    for (size_t i = 0; o->ub_options != NULL && o->ub_options[i] != NULL; i += 2) {
        if (o->ub_options[i + 1] == NULL) {
            snprintf(err, errlen, "resolver option %s: no value", o->ub_options[i]);
            goto fail;
        }
        if (setopt(ctx, o->ub_options[i], o->ub_options[i + 1], err, errlen) != 0)
            goto fail;
    }
    if (ta == NULL && access(DNS_DEFAULT_TRUST_ANCHOR, R_OK) == 0)
        ta = DNS_DEFAULT_TRUST_ANCHOR;
    if (ta != NULL && ta[0] != '\0') {
        if (access(ta, R_OK) != 0) {
            snprintf(err, errlen, "resolver trust anchor %s: %s", ta, strerror(errno));
            goto fail;
        }
        if ((rc = ub_ctx_add_ta_file(ctx, ta)) != 0) {
            snprintf(err, errlen, "resolver trust anchor %s: %s", ta, ub_strerror(rc));
            goto fail;
        }
    }
    /* libunbound applies its settings (and reads trust anchors) only when a first query
     * finalises the context. Removing a zone that was never added finalises it now, so a bad
     * setting fails here, at startup, rather than every lookup later. */
    if ((rc = ub_ctx_zone_remove(ctx, "xtp-finalize.invalid.")) != 0) {
        snprintf(err, errlen, "resolver settings: %s", ub_strerror(rc));
        goto fail;
    }
    return ctx;
fail:
    ub_ctx_delete(ctx);
    return NULL;
}

struct dns *dns_new(uv_loop_t *loop, const struct dns_opts *o, char *err, size_t errlen)
{
    struct dns *d = calloc(1, sizeof(*d));
    int rc;

    if (d == NULL) {
        snprintf(err, errlen, "resolver: out of memory");
        return NULL;
    }
    d->loop = loop;
    d->timeout_ms = o->timeout_ms ? o->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    d->order_flags = o->prefer_direct_tls ? SRV_ORDER_PREFER_DIRECT : 0;
    d->ctx = make_ctx(o, err, errlen);
    if (d->ctx == NULL)
        goto fail_free;
    /* uv_poll_init() leaves nothing behind when it fails; the timers cannot fail. */
    if ((rc = uv_poll_init(loop, &d->poll, ub_fd(d->ctx))) != 0) {
        snprintf(err, errlen, "resolver poll: %s", uv_strerror(rc));
        goto fail_ctx;
    }
    uv_timer_init(loop, &d->timer);
    uv_timer_init(loop, &d->kick);
    d->poll.data = d->timer.data = d->kick.data = d;
    d->handles = 3;
    if ((rc = uv_poll_start(&d->poll, UV_READABLE, poll_cb)) != 0) {
        snprintf(err, errlen, "resolver poll: %s", uv_strerror(rc));
        d->closing = true;
        close_handles(d); /* closed_cb deletes the ctx and frees d */
        return NULL;
    }
    return d;
fail_ctx:
    ub_ctx_delete(d->ctx);
fail_free:
    free(d);
    return NULL;
}

void dns_close(struct dns *d, dns_closed_fn *cb, void *arg)
{
    if (d == NULL || d->closing)
        return;
    d->closed_cb = cb;
    d->closed_arg = arg;
    fail_all(d, XTP_ESHUTDOWN, "resolver shutting down");
    d->closing = true;
    uv_poll_stop(&d->poll);
    uv_timer_stop(&d->timer);
    uv_timer_start(&d->kick, kick_cb, 0, 0); /* deliver() then closes the handles */
}

struct dns_query *dns_lookup(struct dns *d, const char *domain, dns_done_fn *cb, void *arg)
{
    struct dns_query *q;
    char name[SRV_NAME_MAX + 32];

    XTP_ASSERT(!d->closing);
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->d = d;
    q->cb = cb;
    q->arg = arg;
    q->deadline = uv_now(d->loop) + d->timeout_ms;
    list_push(&d->pending, q);
    if (srv_host_check(domain) != 0) {
        q->res.err = -EINVAL;
        note(q, "not a host name: %.64s", domain);
    } else if (d->broken) {
        q->res.err = XTP_EDNS;
        note(q, "%s", d->broken_why);
    } else {
        for (size_t i = 0; domain[i] != '\0'; i++)
            q->domain[i] =
                (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] + 32 : domain[i]);
        snprintf(name, sizeof(name), "_xmpps-server._tcp.%s", q->domain);
        send_sub(q, &q->srv[0], SUB_SRV_DIRECT, 0, name, RR_SRV);
        snprintf(name, sizeof(name), "_xmpp-server._tcp.%s", q->domain);
        send_sub(q, &q->srv[1], SUB_SRV_STARTTLS, 0, name, RR_SRV);
        if (q->outstanding == 2) {
            rearm(d);
            return q;
        }
        q->res.err = XTP_EDNS; /* the reason is noted; a half-sent pair is no lookup */
    }
    complete(q);
    uv_timer_start(&d->kick, kick_cb, 0, 0);
    return q;
}

static void query_free(struct dns_query *q)
{
    for (size_t i = 0; i < q->neps; i++) {
        free(q->eps[i].tlsa);
        free(q->eps[i].tlsa_data);
    }
    free(q->eps);
    free(q->targets);
    free(q->res.cand);
    free(q);
}

void dns_cancel(struct dns_query *q)
{
    struct dns *d;

    if (q == NULL)
        return;
    d = q->d;
    XTP_ASSERT(d != NULL); /* a delivered query is the receiver's result now */
    cancel_all(q);
    list_remove(q);
    rearm(d);
    query_free(q);
}

void dns_result_free(struct dns_result *r)
{
    if (r == NULL)
        return;
    query_free((struct dns_query *)((char *)r - offsetof(struct dns_query, res)));
}
