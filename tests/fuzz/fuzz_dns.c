/* fuzz_dns.c: srv.c on arbitrary bytes, i.e. what a hostile or broken DNS server can put into
 * the SRV and TLSA answers of s2s-out lookups.
 *
 * The whole input goes to srv_name_text() (both modes), srv_parse() and srv_tlsa_parse(). Then
 * it is cut into an RRset: byte 0 holds flags (bit 0: Direct TLS, bit 1: prefer Direct TLS
 * when ordering, bits 2-7: how many records), each record is a length byte and that many
 * bytes, copied into its own heap block so that ASan sees any read past it, and whatever is
 * left feeds the random source of srv_order(). Every result is checked against what srv.h
 * promises; a broken promise aborts. */
#include "srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_dns: invariant failed: %s\n", #cond);                            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Text srv_name_text() may produce: lower-case letters, digits, '-', '_' and dots between
 * labels of 1..63 characters, at most 253 characters. */
static void check_text(const char *t, bool host)
{
    size_t n = strlen(t), label = 0;

    CHECK(n <= SRV_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = t[i];

        if (c == '.') {
            CHECK(label >= 1 && label <= 63);
            label = 0;
            continue;
        }
        label++;
        CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (!host && c == '_'));
    }
    CHECK(n == 0 || (label >= 1 && label <= 63));
    if (host)
        CHECK(srv_host_check(t) == 0);
}

struct rnd {
    const uint8_t *p;
    size_t n;
};

/* Four input bytes per number while they last, then zeros; deliberately not reduced below n,
 * so srv_order() must cope with an out-of-range pick. */
static uint32_t input_rand(void *arg, uint32_t n)
{
    struct rnd *r = arg;
    uint32_t v = 0;

    CHECK(n >= 1);
    for (int i = 0; i < 4 && r->n > 0; i++, r->p++, r->n--)
        v = v << 8 | *r->p;
    return v;
}

static void check_single(const uint8_t *data, size_t size)
{
    char text[SRV_NAME_MAX + 1];
    struct srv_rec rec;
    struct srv_tlsa tlsa;
    size_t used;

    for (int host = 0; host <= 1; host++) {
        if (srv_name_text(data, size, &used, text, sizeof(text), host) == 0) {
            CHECK(used >= 1 && used <= size && used <= 255);
            check_text(text, host);
        }
    }
    if (srv_parse(data, size, &rec) == 0) {
        CHECK(!rec.direct_tls);
        if (rec.target[0] != '\0')
            check_text(rec.target, true);
    }
    if (srv_tlsa_parse(data, size, &tlsa) == 0) {
        CHECK(tlsa.len >= 1 && tlsa.data == data + 3 && tlsa.len == size - 3);
        CHECK(tlsa.mtype != 1 || tlsa.len == 32);
        CHECK(tlsa.mtype != 2 || tlsa.len == 64);
    }
}

#define MAX_RECS 63

static bool same(const struct srv_rec *a, const struct srv_rec *b)
{
    return a->priority == b->priority && a->weight == b->weight && a->port == b->port &&
           a->direct_tls == b->direct_tls && strcmp(a->target, b->target) == 0;
}

static void check_set(const uint8_t *data, size_t size)
{
    char *rd[MAX_RECS + 1];
    int len[MAX_RECS + 1] = {0};
    struct srv_rec out[MAX_RECS], copy[MAX_RECS];
    size_t n = 0, off = 1, nout = 0, max;
    bool direct, prefer;
    enum srv_set set;
    struct rnd r;

    if (size == 0)
        return;
    direct = data[0] & 1;
    prefer = data[0] & 2;
    max = data[0] >> 2; /* 0..63: also exercises a full output array */
    while (n < MAX_RECS && off < size) {
        size_t l = data[off++];

        if (l > size - off)
            l = size - off;
        rd[n] = malloc(l ? l : 1);
        CHECK(rd[n] != NULL);
        memcpy(rd[n], data + off, l);
        len[n++] = (int)l;
        off += l;
    }
    rd[n] = NULL;

    set = srv_parse_set(rd, len, direct, out, max, &nout);
    CHECK(nout <= max);
    CHECK(set != SRV_SET_EMPTY || n == 0);
    CHECK(set == SRV_SET_RECORDS || nout == 0);
    CHECK(set != SRV_SET_DECLINED || n == 1);
    for (size_t i = 0; i < nout; i++) {
        CHECK(out[i].direct_tls == direct && out[i].port != 0);
        check_text(out[i].target, true);
    }
    for (int a = SRV_SET_EMPTY; a <= SRV_SET_FAILED; a++)
        CHECK(srv_plan(set, (enum srv_set)a) == srv_plan((enum srv_set)a, set));

    /* Order a mix of both services (the flag byte's bit 0 flips per record). */
    for (size_t i = 0; i < nout; i++)
        out[i].direct_tls = (i & 1) ? !direct : direct;
    memcpy(copy, out, nout * sizeof(*out));
    r.p = data + off;
    r.n = size - off;
    srv_order(out, nout, prefer ? SRV_ORDER_PREFER_DIRECT : 0, input_rand, &r);
    for (size_t i = 1; i < nout; i++) {
        CHECK(out[i - 1].priority <= out[i].priority);
        if (prefer && out[i - 1].priority == out[i].priority)
            CHECK(out[i - 1].direct_tls || !out[i].direct_tls);
    }
    /* A permutation: every record is still there exactly once (targets with multiplicity). */
    for (size_t i = 0; i < nout; i++) {
        size_t want = 0, got = 0;

        for (size_t j = 0; j < nout; j++) {
            want += same(&copy[j], &copy[i]);
            got += same(&out[j], &copy[i]);
        }
        CHECK(want == got);
    }
    for (size_t i = 0; i < n; i++)
        free(rd[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_single(data, size);
    check_set(data, size);
    return 0;
}
