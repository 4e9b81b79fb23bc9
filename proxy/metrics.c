/* metrics.c: see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define CACHE_LINE 64

struct tls_pair {
    char version[16];
    char cipher[64];
    uint64_t count;
};

/* One worker's counters. Aligned and padded to cache lines so that two workers never write
 * the same line. */
struct metrics {
    const struct metrics_reg *reg; /* borrowed: the registry owns the shard */
    unsigned npairs;               /* published with a release store after the entry is set */
    struct tls_pair pairs[METRICS_TLS_PAIRS];
    uint64_t v[]; /* the counters, laid out by the registry's off_* fields */
};

struct metrics_reg {
    char **listener_names, **listener_kinds; /* owned */
    size_t nlisteners;
    char **end_reasons; /* owned */
    size_t nend_reasons;
    char **tls_failures; /* owned */
    size_t ntls_failures;
    char **domains; /* owned */
    size_t ndomains;
    int64_t *expiry; /* owned; per domain, written with relaxed stores */
    /* Offsets into struct metrics.v. */
    size_t off_live, off_total, off_end, off_fail, off_auth, off_bytes, off_changes, off_other;
    size_t nv;
    struct metrics **shards; /* owned */
    size_t nshards;
};

static const char *const auth_methods[METRICS_AUTH__COUNT] = {"pkix", "dane", "dialback"};
static const char *const auth_results[METRICS_AUTH_RESULT__COUNT] = {"ok", "fail"};
static const char *const dirs[METRICS_DIR__COUNT] = {"from-peer", "to-peer", "from-backend",
                                                     "to-backend"};

/* A single writer per shard: a relaxed load and store make the update atomic for readers
 * (never torn, never a data race) without a locked instruction. */
static inline void add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static void free_table(char **t, size_t n)
{
    for (size_t i = 0; t != NULL && i < n; i++)
        free(t[i]);
    free(t);
}

static char **dup_table(const char *const *src, size_t n)
{
    char **t = calloc(n ? n : 1, sizeof(*t));

    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        t[i] = strdup(src[i]);
        if (t[i] == NULL) {
            free_table(t, i);
            return NULL;
        }
    }
    return t;
}

void metrics_reg_free(struct metrics_reg *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; r->shards != NULL && i < r->nshards; i++)
        free(r->shards[i]);
    free(r->shards);
    free_table(r->listener_names, r->nlisteners);
    free_table(r->listener_kinds, r->nlisteners);
    free_table(r->end_reasons, r->nend_reasons);
    free_table(r->tls_failures, r->ntls_failures);
    free_table(r->domains, r->ndomains);
    free(r->expiry);
    free(r);
}

struct metrics_reg *metrics_reg_new(const struct metrics_labels *l, size_t nshards)
{
    struct metrics_reg *r;
    size_t size;

    if (nshards == 0)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->nlisteners = l->nlisteners;
    r->nend_reasons = l->nend_reasons;
    r->ntls_failures = l->ntls_failures;
    r->ndomains = l->ndomains;
    r->nshards = nshards;
    r->listener_names = dup_table(l->listener_names, l->nlisteners);
    r->listener_kinds = dup_table(l->listener_kinds, l->nlisteners);
    r->end_reasons = dup_table(l->end_reasons, l->nend_reasons);
    r->tls_failures = dup_table(l->tls_failures, l->ntls_failures);
    r->domains = dup_table(l->domains, l->ndomains);
    r->expiry = malloc((l->ndomains ? l->ndomains : 1) * sizeof(*r->expiry));
    r->shards = calloc(nshards, sizeof(*r->shards));
    if (r->listener_names == NULL || r->listener_kinds == NULL || r->end_reasons == NULL ||
        r->tls_failures == NULL || r->domains == NULL || r->expiry == NULL || r->shards == NULL)
        goto fail_free;
    for (size_t i = 0; i < l->ndomains; i++)
        r->expiry[i] = METRICS_NO_EXPIRY;

    r->off_live = 0;
    r->off_total = r->off_live + r->nlisteners;
    r->off_end = r->off_total + r->nlisteners;
    r->off_fail = r->off_end + r->nend_reasons;
    r->off_auth = r->off_fail + r->ntls_failures;
    r->off_bytes = r->off_auth + METRICS_AUTH__COUNT * METRICS_AUTH_RESULT__COUNT;
    r->off_changes = r->off_bytes + METRICS_DIR__COUNT;
    r->off_other = r->off_changes + 1;
    r->nv = r->off_other + 1;

    size = sizeof(struct metrics) + r->nv * sizeof(uint64_t);
    size = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    for (size_t i = 0; i < nshards; i++) {
        r->shards[i] = aligned_alloc(CACHE_LINE, size);
        if (r->shards[i] == NULL)
            goto fail_free;
        memset(r->shards[i], 0, size);
        r->shards[i]->reg = r;
    }
    return r;

fail_free:
    metrics_reg_free(r);
    return NULL;
}

struct metrics *metrics_reg_shard(struct metrics_reg *r, size_t i)
{
    XTP_ASSERT(i < r->nshards);
    return r->shards[i];
}

void metrics_set_cert_expiry(struct metrics_reg *r, size_t domain, int64_t not_after)
{
    XTP_ASSERT(domain < r->ndomains);
    __atomic_store_n(&r->expiry[domain], not_after, __ATOMIC_RELAXED);
}

void metrics_session_open(struct metrics *m, size_t listener)
{
    XTP_ASSERT(listener < m->reg->nlisteners);
    add(&m->v[m->reg->off_live + listener], 1);
    add(&m->v[m->reg->off_total + listener], 1);
}

void metrics_session_close(struct metrics *m, size_t listener, size_t reason)
{
    XTP_ASSERT(listener < m->reg->nlisteners && reason < m->reg->nend_reasons);
    add(&m->v[m->reg->off_live + listener], UINT64_MAX); /* -1, modulo 2^64 */
    add(&m->v[m->reg->off_end + reason], 1);
}

void metrics_tls_handshake(struct metrics *m, const char *version, const char *cipher)
{
    size_t vlen = strlen(version), clen = strlen(cipher);
    struct tls_pair *p;
    unsigned n = m->npairs; /* only this thread writes it */

    for (unsigned i = 0; i < n; i++) {
        p = &m->pairs[i];
        if (strcmp(p->version, version) == 0 && strcmp(p->cipher, cipher) == 0) {
            add(&p->count, 1);
            return;
        }
    }
    if (n == METRICS_TLS_PAIRS || vlen >= sizeof(p->version) || clen >= sizeof(p->cipher)) {
        add(&m->v[m->reg->off_other], 1);
        return;
    }
    p = &m->pairs[n];
    memcpy(p->version, version, vlen + 1);
    memcpy(p->cipher, cipher, clen + 1);
    p->count = 1;
    /* Readers load npairs with acquire: they see the entry complete or not at all. */
    __atomic_store_n(&m->npairs, n + 1, __ATOMIC_RELEASE);
}

void metrics_tls_failure(struct metrics *m, size_t reason)
{
    XTP_ASSERT(reason < m->reg->ntls_failures);
    add(&m->v[m->reg->off_fail + reason], 1);
}

void metrics_peer_auth(struct metrics *m, enum metrics_auth_method method,
                       enum metrics_auth_result result)
{
    XTP_ASSERT((unsigned)method < METRICS_AUTH__COUNT);
    XTP_ASSERT((unsigned)result < METRICS_AUTH_RESULT__COUNT);
    add(&m->v[m->reg->off_auth + (size_t)method * METRICS_AUTH_RESULT__COUNT + result], 1);
}

void metrics_bytes(struct metrics *m, enum metrics_dir dir, uint64_t n)
{
    XTP_ASSERT((unsigned)dir < METRICS_DIR__COUNT);
    add(&m->v[m->reg->off_bytes + dir], n);
}

void metrics_remote_cert_change(struct metrics *m)
{
    add(&m->v[m->reg->off_changes], 1);
}

/* ---- rendering ------------------------------------------------------------------------- */

struct out {
    struct bytes *b;
    int err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->err == 0)
        o->err = bytes_append(o->b, s, n);
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

int metrics_escape_label(struct bytes *out, const char *value)
{
    const char *run = value, *s;
    int err = 0;

    for (s = value; *s != '\0' && err == 0; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;

        if (esc == NULL)
            continue;
        err = bytes_append(out, run, (size_t)(s - run));
        if (err == 0)
            err = bytes_append(out, esc, 2);
        run = s + 1;
    }
    if (err == 0)
        err = bytes_append(out, run, (size_t)(s - run));
    return err;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    puts_(o, "# HELP ");
    puts_(o, name);
    puts_(o, " ");
    puts_(o, help);
    puts_(o, "\n# TYPE ");
    puts_(o, name);
    puts_(o, " ");
    puts_(o, type);
    puts_(o, "\n");
}

/* name{k1="v1",k2="v2"} value: up to two labels (k2 may be NULL), and the value as text. */
static void sample(struct out *o, const char *name, const char *k1, const char *v1, const char *k2,
                   const char *v2, const char *value)
{
    puts_(o, name);
    if (k1 != NULL) {
        puts_(o, "{");
        puts_(o, k1);
        puts_(o, "=\"");
        if (o->err == 0)
            o->err = metrics_escape_label(o->b, v1);
        if (k2 != NULL) {
            puts_(o, "\",");
            puts_(o, k2);
            puts_(o, "=\"");
            if (o->err == 0)
                o->err = metrics_escape_label(o->b, v2);
        }
        puts_(o, "\"}");
    }
    puts_(o, " ");
    puts_(o, value);
    puts_(o, "\n");
}

static void sample_u(struct out *o, const char *name, const char *k1, const char *v1,
                     const char *k2, const char *v2, uint64_t value)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRIu64, value);
    sample(o, name, k1, v1, k2, v2, buf);
}

static void sample_i(struct out *o, const char *name, const char *k1, const char *v1,
                     const char *k2, const char *v2, int64_t value)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, value);
    sample(o, name, k1, v1, k2, v2, buf);
}

static uint64_t sum(const struct metrics_reg *r, size_t idx)
{
    uint64_t s = 0;

    for (size_t i = 0; i < r->nshards; i++)
        s += __atomic_load_n(&r->shards[i]->v[idx], __ATOMIC_RELAXED);
    return s;
}

static int pair_cmp(const void *a, const void *b)
{
    const struct tls_pair *x = a, *y = b;
    int c = strcmp(x->version, y->version);

    return c != 0 ? c : strcmp(x->cipher, y->cipher);
}

/* xtp_tls_handshakes_total: the shards' pair tables merged, sorted for a stable output. */
static void render_handshakes(struct out *o, const struct metrics_reg *r)
{
    static const char name[] = "xtp_tls_handshakes_total";
    struct tls_pair *all = calloc(r->nshards * METRICS_TLS_PAIRS, sizeof(*all));
    size_t n = 0;
    uint64_t other = sum(r, r->off_other);

    family(o, name, "counter", "Completed TLS handshakes by protocol version and cipher suite.");
    if (all == NULL) {
        o->err = -ENOMEM;
        return;
    }
    for (size_t s = 0; s < r->nshards; s++) {
        const struct metrics *m = r->shards[s];
        unsigned np = __atomic_load_n(&m->npairs, __ATOMIC_ACQUIRE);

        for (unsigned i = 0; i < np; i++) {
            const struct tls_pair *p = &m->pairs[i];
            size_t k;

            for (k = 0; k < n; k++)
                if (strcmp(all[k].version, p->version) == 0 &&
                    strcmp(all[k].cipher, p->cipher) == 0)
                    break;
            if (k == n) {
                memcpy(all[n].version, p->version, sizeof(p->version));
                memcpy(all[n].cipher, p->cipher, sizeof(p->cipher));
                n++;
            }
            all[k].count += __atomic_load_n(&p->count, __ATOMIC_RELAXED);
        }
    }
    qsort(all, n, sizeof(*all), pair_cmp);
    for (size_t k = 0; k < n; k++)
        sample_u(o, name, "version", all[k].version, "cipher", all[k].cipher, all[k].count);
    if (other > 0)
        sample_u(o, name, "version", "other", "cipher", "other", other);
    free(all);
}

int metrics_render(const struct metrics_reg *r, struct bytes *out)
{
    struct out o = {out, 0};
    const char *name;

    name = "xtp_sessions";
    family(&o, name, "gauge", "Live sessions by listener and kind.");
    for (size_t i = 0; i < r->nlisteners; i++)
        sample_i(&o, name, "listener", r->listener_names[i], "kind", r->listener_kinds[i],
                 (int64_t)sum(r, r->off_live + i));

    name = "xtp_sessions_total";
    family(&o, name, "counter", "Sessions accepted by listener and kind.");
    for (size_t i = 0; i < r->nlisteners; i++)
        sample_u(&o, name, "listener", r->listener_names[i], "kind", r->listener_kinds[i],
                 sum(r, r->off_total + i));

    name = "xtp_session_end_total";
    family(&o, name, "counter", "Sessions ended, by end reason.");
    for (size_t i = 0; i < r->nend_reasons; i++)
        sample_u(&o, name, "reason", r->end_reasons[i], NULL, NULL, sum(r, r->off_end + i));

    render_handshakes(&o, r);

    name = "xtp_tls_handshake_failures_total";
    family(&o, name, "counter", "Failed TLS handshakes by reason.");
    for (size_t i = 0; i < r->ntls_failures; i++)
        sample_u(&o, name, "reason", r->tls_failures[i], NULL, NULL, sum(r, r->off_fail + i));

    name = "xtp_peer_auth_total";
    family(&o, name, "counter", "Remote domain authentications by method and result.");
    for (size_t m = 0; m < METRICS_AUTH__COUNT; m++)
        for (size_t k = 0; k < METRICS_AUTH_RESULT__COUNT; k++)
            sample_u(&o, name, "method", auth_methods[m], "result", auth_results[k],
                     sum(r, r->off_auth + m * METRICS_AUTH_RESULT__COUNT + k));

    name = "xtp_bytes_total";
    family(&o, name, "counter", "Bytes read from and written to sockets, by direction.");
    for (size_t d = 0; d < METRICS_DIR__COUNT; d++)
        sample_u(&o, name, "direction", dirs[d], NULL, NULL, sum(r, r->off_bytes + d));

    name = "xtp_cert_expiry_seconds";
    family(&o, name, "gauge", "Unix time at which the domain's certificate expires (notAfter).");
    for (size_t i = 0; i < r->ndomains; i++) {
        int64_t t = __atomic_load_n(&r->expiry[i], __ATOMIC_RELAXED);

        if (t != METRICS_NO_EXPIRY)
            sample_i(&o, name, "domain", r->domains[i], NULL, NULL, t);
    }

    name = "xtp_remote_cert_changes_total";
    family(&o, name, "counter", "Remote domains seen with a certificate other than the last one.");
    sample_u(&o, name, NULL, NULL, NULL, NULL, sum(r, r->off_changes));
    return o.err;
}
