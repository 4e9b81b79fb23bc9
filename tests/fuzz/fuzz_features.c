/* fuzz_features.c: the <stream:features/> rewriter (proxy/features.c) behind the stream parser
 * (proxy/xmpp_in.c, recording the children of features), on a stream cut into up to eight
 * feeds at places the input chooses, checked against a reference model of the rewrite.
 *
 * Input: byte 0 says how many cuts (bits 0-2), whether the stream gets a canned jabber:client
 * header in front (bit 3: the fuzzer then spends its time on features, not on headers), which
 * peer address replaces jabberd2's <address/> (bits 4-5: none, IPv4, IPv6, one that needs
 * escaping) and max_stanza (bit 6). Then two bytes per cut (big-endian, taken modulo the
 * stream length, sorted); the rest is the stream. As in a session, a pause after SASL
 * <success/> or TLS <proceed/> resets the parser at that byte and feeding goes on.
 *
 * Checked (abort() on failure, so libFuzzer and the replayer both notice), for every features
 * element the parser reports:
 * - the reference (the element's bytes without its <starttls/> and <compression/> children,
 *   <address/> replaced by the escaped peer address) parses under the stream's header exactly
 *   when features_rewrite() succeeds, and then it is byte for byte the rewriter's output;
 *   a failure leaves the output untouched and is XTP_EBADFORMAT;
 * - that output parses again into one features element whose children are the kept ones, in
 *   order, with no <starttls/> or <compression/> among them (the proxy relays it as it is);
 * - rewriting the output once more changes nothing (a second proxy in front is harmless);
 * - the rewritten elements of the cut run and of a one-feed run are the same (one may stop
 *   earlier than the other only on the size limit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "features.h"
#include "xmpp_in.h"

#define FEATURES XMPP_NS_STREAMS "|features"
#define ADDRESS  XMPP_NS_AFFINIX_ADDRESS "|address"
#define MAX_CUTS 7
#define CANNED                                                                                     \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' from='example.test' id='f1' version='1.0'>"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const peer_addrs[] = {NULL, "203.0.113.7", "2001:db8::7", "<&'\">"};
static const char *const record[] = {FEATURES, NULL};

struct run {
    const uint8_t *s; /* the whole stream: offsets index it (resets keep counting) */
    size_t len;
    const char *peer;
    struct bytes hdr;  /* start tag of the current stream header */
    struct bytes outs; /* every rewrite result: "ok"|"bad", length, bytes; compared by runs */
};

static bool dropped(const char *name)
{
    return strcmp(name, XMPP_NS_TLS "|starttls") == 0 ||
           strcmp(name, XMPP_NS_COMPRESS_FEATURE "|compression") == 0;
}

static bool replaced(const char *name, const char *peer)
{
    return peer != NULL && strcmp(name, ADDRESS) == 0;
}

/* ---- the reference model ------------------------------------------------------------------ */

static void append(struct bytes *b, const void *p, size_t n)
{
    CHECK(bytes_append(b, p, n) == 0);
}

static void append_escaped(struct bytes *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            append(b, "&amp;", 5);
            break;
        case '<':
            append(b, "&lt;", 4);
            break;
        case '>':
            append(b, "&gt;", 4);
            break;
        case '\'':
            append(b, "&apos;", 6);
            break;
        case '"':
            append(b, "&quot;", 6);
            break;
        default:
            append(b, s, 1);
        }
    }
}

/* The element with the dropped children cut out and <address/> replaced, naively. */
static void reference(const struct xmpp_elem *e, const uint8_t *elem, const char *peer,
                      struct bytes *ref)
{
    uint64_t at = e->start;

    for (size_t i = 0; i < e->nchildren; i++) {
        const struct xmpp_child *c = &e->children[i];

        if (!dropped(c->name) && !replaced(c->name, peer))
            continue;
        append(ref, elem + (at - e->start), (size_t)(c->start - at));
        if (replaced(c->name, peer)) {
            static const char open[] = "<address xmlns='" XMPP_NS_AFFINIX_ADDRESS "'>";

            append(ref, open, sizeof(open) - 1);
            append_escaped(ref, peer);
            append(ref, "</address>", 10);
        }
        at = c->end;
    }
    append(ref, elem + (at - e->start), (size_t)(e->end - at));
}

/* ---- parsing the output again -------------------------------------------------------------- */

struct reparse {
    const uint8_t *s; /* header + element, as fed */
    int elems;
    int kept; /* children: each must be the next kept child of the original */
    bool bad;
    const struct xmpp_elem *orig;
    const char *peer;
    struct bytes again; /* the rewrite of the reparsed element */
    int again_rc;
};

static int re_open(void *arg, const struct xmpp_hdr *h)
{
    return 0;
}

static int re_close(void *arg, uint64_t end)
{
    return 0;
}

static int re_elem(void *arg, const struct xmpp_elem *e)
{
    struct reparse *p = arg;
    size_t k = 0;

    p->elems++;
    if (strcmp(e->name, FEATURES) != 0 || e->children_truncated) {
        p->bad = true;
        return 0;
    }
    /* The children left are the original's kept (or replaced) ones, in the same order. */
    for (size_t i = 0; i < p->orig->nchildren; i++) {
        const char *name = p->orig->children[i].name;

        if (dropped(name))
            continue;
        if (k >= e->nchildren || strcmp(e->children[k].name, name) != 0)
            p->bad = true;
        k++;
    }
    if (k != e->nchildren)
        p->bad = true;
    for (size_t i = 0; i < e->nchildren; i++)
        if (dropped(e->children[i].name))
            p->bad = true;
    p->kept = (int)e->nchildren;
    p->again_rc = features_rewrite(e, p->s + e->start, p->peer, &p->again);
    return 0;
}

/* Parses hdr + out with a fresh parser. Returns the feed's result; fills p. */
static int reparse(const struct bytes *hdr, const struct bytes *out, struct reparse *p)
{
    static const struct xmpp_in_ops ops = {re_open, re_elem, re_close};
    struct bytes all = BYTES_INIT;
    struct xmpp_in *in = xmpp_in_new(&ops, p, (size_t)1 << 30, record);
    size_t used;
    int rc;

    CHECK(in != NULL);
    append(&all, bytes_data(hdr), bytes_len(hdr));
    append(&all, bytes_data(out), bytes_len(out));
    p->s = bytes_data(&all);
    rc = xmpp_in_feed(in, bytes_data(&all), bytes_len(&all), &used);
    xmpp_in_free(in);
    bytes_cleanup(&all);
    return rc;
}

/* ---- the run under test ------------------------------------------------------------------- */

static void check_features(struct run *r, const struct xmpp_elem *e)
{
    struct bytes out = BYTES_INIT, ref = BYTES_INIT;
    struct reparse p = {.orig = e, .peer = r->peer};
    struct reparse pr = {.orig = e, .peer = r->peer};
    const uint8_t *elem = r->s + e->start;
    int rc = features_rewrite(e, elem, r->peer, &out);
    uint32_t n;

    if (e->children_truncated) { /* a child we did not see could be a <starttls/> */
        CHECK(rc == XTP_EBADFORMAT && bytes_len(&out) == 0);
        append(&r->outs, "trunc", 5);
        return;
    }
    reference(e, elem, r->peer, &ref);
    if (rc != 0) {
        CHECK(rc == XTP_EBADFORMAT && bytes_len(&out) == 0);
        /* Refused only when the naive cut is not well-formed ("]]>" joined in the text). */
        CHECK(reparse(&r->hdr, &ref, &pr) != 0 || pr.elems != 1);
        bytes_cleanup(&pr.again);
        append(&r->outs, "bad", 3);
        bytes_cleanup(&ref);
        return;
    }
    CHECK(bytes_len(&out) == bytes_len(&ref) &&
          memcmp(bytes_data(&out), bytes_data(&ref), bytes_len(&ref)) == 0);
    CHECK(reparse(&r->hdr, &out, &p) == 0);
    CHECK(p.elems == 1 && !p.bad);
    /* Idempotent: nothing left to drop, and the address already says peer. */
    CHECK(p.again_rc == 0);
    CHECK(bytes_len(&p.again) == bytes_len(&out) &&
          memcmp(bytes_data(&p.again), bytes_data(&out), bytes_len(&out)) == 0);

    n = (uint32_t)bytes_len(&out);
    append(&r->outs, "ok", 2);
    append(&r->outs, &n, sizeof(n));
    append(&r->outs, bytes_data(&out), bytes_len(&out));
    bytes_cleanup(&p.again);
    bytes_cleanup(&out);
    bytes_cleanup(&ref);
}

static int open_cb(void *arg, const struct xmpp_hdr *h)
{
    struct run *r = arg;

    CHECK(h->start < h->end && h->end <= r->len);
    bytes_cleanup(&r->hdr);
    append(&r->hdr, r->s + h->start, (size_t)(h->end - h->start));
    return 0;
}

static int elem_cb(void *arg, const struct xmpp_elem *e)
{
    struct run *r = arg;

    CHECK(e->start < e->end && e->end <= r->len);
    if (strcmp(e->name, FEATURES) == 0)
        check_features(r, e);
    /* The stream restarts right after these (RFC 6120 §5.4.3.3, §6.4.6). */
    if (strcmp(e->name, XMPP_NS_SASL "|success") == 0 ||
        strcmp(e->name, XMPP_NS_TLS "|proceed") == 0)
        return XMPP_IN_PAUSE;
    return 0;
}

static int close_cb(void *arg, uint64_t end)
{
    return 0;
}

static const struct xmpp_in_ops ops = {open_cb, elem_cb, close_cb};

/* Feeds s[0..len) in pieces ending at bounds[0..n) (sorted, the last is len); returns the first
 * code other than 0 and fills r->outs. */
static int run_feeds(struct run *r, const uint8_t *s, size_t len, const size_t *bounds, size_t n,
                     size_t max, const char *peer)
{
    struct xmpp_in *in;
    size_t from = 0;
    int rc = 0;

    memset(r, 0, sizeof(*r));
    r->s = s;
    r->len = len;
    r->peer = peer;
    in = xmpp_in_new(&ops, r, max, record);
    CHECK(in != NULL);
    for (size_t b = 0; b < n && rc == 0; b++) {
        while (from < bounds[b]) {
            size_t used = (size_t)-1;

            rc = xmpp_in_feed(in, s + from, bounds[b] - from, &used);
            CHECK(used <= bounds[b] - from);
            if (rc == XMPP_IN_PAUSED) {
                from += used;
                CHECK(xmpp_in_offset(in) == from);
                CHECK(xmpp_in_reset(in) == 0);
                rc = 0;
                continue;
            }
            if (rc != 0)
                break;
            from = bounds[b];
        }
    }
    xmpp_in_free(in);
    bytes_cleanup(&r->hdr);
    return rc;
}

static bool is_prefix(const struct bytes *a, const struct bytes *b)
{
    return bytes_len(a) <= bytes_len(b) &&
           (bytes_len(a) == 0 || memcmp(bytes_data(a), bytes_data(b), bytes_len(a)) == 0);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run cut, one;
    struct bytes stream = BYTES_INIT;
    size_t bounds[MAX_CUTS + 1], ncuts, head, len, max;
    const char *peer;
    int rc_cut, rc_one;

    if (size < 1)
        return 0;
    ncuts = data[0] & 7;
    head = 1 + 2 * ncuts;
    if (size < head)
        return 0;
    peer = peer_addrs[(data[0] >> 4) & 3];
    max = data[0] & 0x40 ? 4096 : 65536;
    if (data[0] & 8)
        append(&stream, CANNED, sizeof(CANNED) - 1);
    append(&stream, data + head, size - head);
    len = bytes_len(&stream);
    if (len == 0)
        return 0; /* bytes_data() of an empty buffer is NULL + 0 */

    for (size_t i = 0; i < ncuts; i++)
        bounds[i] = ((size_t)data[1 + 2 * i] << 8 | data[2 + 2 * i]) % (len + 1);
    qsort(bounds, ncuts, sizeof(bounds[0]), cmp_size);
    bounds[ncuts] = len;

    rc_cut = run_feeds(&cut, bytes_data(&stream), len, bounds, ncuts + 1, max, peer);
    rc_one = run_feeds(&one, bytes_data(&stream), len, &len, 1, max, peer);
    CHECK(rc_cut <= 0 && rc_one <= 0);
    if (rc_cut == 0 && rc_one == 0)
        CHECK(bytes_len(&cut.outs) == bytes_len(&one.outs) && is_prefix(&cut.outs, &one.outs));
    else
        CHECK(is_prefix(&cut.outs, &one.outs) || is_prefix(&one.outs, &cut.outs));
    bytes_cleanup(&cut.outs);
    bytes_cleanup(&one.outs);
    bytes_cleanup(&stream);
    return 0;
}
