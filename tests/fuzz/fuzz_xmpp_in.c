/* fuzz_xmpp_in.c: the stream parser (proxy/xmpp_in.c) and the features rewriter
 * (proxy/features.c) together, as the relay drives them.
 *
 * Input: byte 0 and 1 choose where the stream is cut into two feeds (so parser state must
 * carry over), byte 2 chooses max_stanza; the rest is the stream. As in a session, a pause
 * after SASL <success/> or TLS <proceed/> resets the parser at the exact byte after it
 * (a stream restart) and feeding goes on; every <stream:features/> is rewritten.
 *
 * Checked (abort() on failure, so libFuzzer and the replayer both notice):
 * - every reported range lies in the bytes fed, starts with '<' and ends with '>'; children
 *   lie inside their element, in order; the safe offset never goes back and equals the end of
 *   the event being reported; *used never exceeds the feed;
 * - the events of the two-feed run and of a one-feed run agree: equal when both succeed, and
 *   otherwise one is a prefix of the other (a feed can fail earlier on the size limit);
 * - a rewritten features element parses again under the same stream header, holds no
 *   <starttls/> or <compression/> child, and the rewrite fails only for the documented reasons.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "features.h"
#include "xmpp_in.h"

#define PREFIX    3
#define FEATURES  XMPP_NS_STREAMS "|features"
#define PEER_ADDR "203.0.113.7"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const size_t max_stanzas[] = {64, 300, 4096, 65536};
static const char *const record[] = {FEATURES, NULL};

struct run {
    const uint8_t *s; /* the whole stream: offsets index it (resets keep counting) */
    size_t len;
    struct xmpp_in *in;
    struct bytes log; /* events, to compare the two runs */
    struct bytes hdr; /* start tag of the current stream header */
    uint64_t safe;    /* last xmpp_in_safe() seen */
};

static void log_event(struct run *r, const char *kind, const char *name, uint64_t start,
                      uint64_t end)
{
    char line[96];
    int n = snprintf(line, sizeof(line), "%s %llu %llu ", kind, (unsigned long long)start,
                     (unsigned long long)end);

    CHECK(bytes_append(&r->log, line, (size_t)n) == 0);
    CHECK(bytes_append(&r->log, name, strlen(name) + 1) == 0); /* names may hold anything */
}

static void check_range(struct run *r, uint64_t start, uint64_t end)
{
    CHECK(start < end && end <= r->len);
    CHECK(r->s[start] == '<' && r->s[end - 1] == '>');
}

static void check_safe(struct run *r, uint64_t end)
{
    uint64_t safe = xmpp_in_safe(r->in);

    CHECK(safe == end && safe >= r->safe);
    r->safe = safe;
}

static int open_cb(void *arg, const struct xmpp_hdr *h)
{
    struct run *r = arg;

    check_range(r, h->start, h->end);
    check_safe(r, h->end);
    log_event(r, "open", h->name, h->start, h->end);
    if (h->default_ns)
        log_event(r, "ns", h->default_ns, 0, 1);
    if (h->to)
        log_event(r, "to", h->to, 0, 1);
    bytes_cleanup(&r->hdr);
    CHECK(bytes_append(&r->hdr, r->s + h->start, (size_t)(h->end - h->start)) == 0);
    return 0;
}

struct reparse {
    int elems;
    bool bad_child;
};

static int re_open(void *arg, const struct xmpp_hdr *h)
{
    return 0;
}

static bool dropped(const char *name)
{
    return strcmp(name, XMPP_NS_TLS "|starttls") == 0 ||
           strcmp(name, XMPP_NS_COMPRESS_FEATURE "|compression") == 0;
}

static int re_elem(void *arg, const struct xmpp_elem *e)
{
    struct reparse *p = arg;

    p->elems++;
    CHECK(strcmp(e->name, FEATURES) == 0);
    for (size_t i = 0; i < e->nchildren; i++)
        if (dropped(e->children[i].name))
            p->bad_child = true;
    return 0;
}

static int re_close(void *arg, uint64_t end)
{
    return 0;
}

static void check_features(struct run *r, const struct xmpp_elem *e)
{
    static const struct xmpp_in_ops ops = {re_open, re_elem, re_close};
    struct bytes out = BYTES_INIT;
    struct reparse p = {0, false};
    struct xmpp_in *in;
    size_t used;
    int rc = features_rewrite(e, r->s + e->start, PEER_ADDR, &out);

    if (e->children_truncated) {
        CHECK(rc == XTP_EBADFORMAT);
        CHECK(bytes_len(&out) == 0);
        return;
    }
    if (rc == XTP_EBADFORMAT) { /* only when a cut would have joined text into "]]>" */
        CHECK(bytes_len(&out) == 0);
        return;
    }
    CHECK(rc == 0);
    in = xmpp_in_new(&ops, &p, (size_t)1 << 30, record);
    CHECK(in != NULL);
    CHECK(xmpp_in_feed(in, bytes_data(&r->hdr), bytes_len(&r->hdr), &used) == 0);
    CHECK(xmpp_in_feed(in, bytes_data(&out), bytes_len(&out), &used) == 0);
    CHECK(p.elems == 1 && !p.bad_child);
    xmpp_in_free(in);
    bytes_cleanup(&out);
}

static int elem_cb(void *arg, const struct xmpp_elem *e)
{
    struct run *r = arg;
    uint64_t prev;

    check_range(r, e->start, e->end);
    check_safe(r, e->end);
    CHECK(e->nattrs <= XMPP_IN_MAX_ATTRS && e->nchildren <= XMPP_IN_MAX_CHILDREN);
    CHECK(strlen(e->text) <= 1023);
    prev = e->start;
    for (size_t i = 0; i < e->nchildren; i++) {
        const struct xmpp_child *c = &e->children[i];

        check_range(r, c->start, c->end);
        CHECK(c->start > e->start && c->start >= prev && c->end < e->end);
        prev = c->end;
    }
    log_event(r, "elem", e->name, e->start, e->end);
    log_event(r, "text", e->text, e->nattrs, e->nchildren + 1);
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
    struct run *r = arg;

    CHECK(end > 0 && end <= r->len && r->s[end - 1] == '>');
    check_safe(r, end);
    log_event(r, "close", "", 0, end);
    return 0;
}

static const struct xmpp_in_ops ops = {open_cb, elem_cb, close_cb};

/* Feeds s[0..len) cut at cut; returns the first code other than 0 and fills r->log. */
static int run_feeds(struct run *r, const uint8_t *s, size_t len, size_t cut, size_t max)
{
    size_t bounds[2] = {cut, len}, from = 0;
    int rc = 0;

    memset(r, 0, sizeof(*r));
    r->s = s;
    r->len = len;
    r->in = xmpp_in_new(&ops, r, max, record);
    CHECK(r->in != NULL);
    for (size_t b = 0; b < 2 && rc == 0; b++) {
        while (from < bounds[b]) {
            size_t used = (size_t)-1;

            rc = xmpp_in_feed(r->in, s + from, bounds[b] - from, &used);
            CHECK(used <= bounds[b] - from);
            if (rc == XMPP_IN_PAUSED) {
                from += used;
                CHECK(xmpp_in_offset(r->in) == from);
                CHECK(xmpp_in_reset(r->in) == 0);
                r->safe = from;
                rc = 0;
                continue;
            }
            if (rc != 0)
                break;
            CHECK(used == bounds[b] - from);
            from = bounds[b];
            CHECK(xmpp_in_offset(r->in) == from);
            CHECK(xmpp_in_safe(r->in) <= from);
        }
    }
    xmpp_in_free(r->in);
    r->in = NULL;
    return rc;
}

static bool is_prefix(const struct bytes *a, const struct bytes *b)
{
    return bytes_len(a) <= bytes_len(b) &&
           (bytes_len(a) == 0 || memcmp(bytes_data(a), bytes_data(b), bytes_len(a)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run two, one;
    const uint8_t *s = data + PREFIX;
    size_t len, cut, max;
    int rc2, rc1;

    if (size < PREFIX)
        return 0;
    len = size - PREFIX;
    cut = ((size_t)data[0] << 8 | data[1]) % (len + 1);
    max = max_stanzas[data[2] % (sizeof(max_stanzas) / sizeof(max_stanzas[0]))];

    rc2 = run_feeds(&two, s, len, cut, max);
    rc1 = run_feeds(&one, s, len, len, max);
    if (rc1 == 0 && rc2 == 0)
        CHECK(bytes_len(&one.log) == bytes_len(&two.log) && is_prefix(&one.log, &two.log));
    else
        CHECK(is_prefix(&one.log, &two.log) || is_prefix(&two.log, &one.log));
    CHECK(rc1 <= 0 && rc2 <= 0);
    bytes_cleanup(&two.log);
    bytes_cleanup(&two.hdr);
    bytes_cleanup(&one.log);
    bytes_cleanup(&one.hdr);
    return 0;
}
