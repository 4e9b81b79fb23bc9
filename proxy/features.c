/* features.c: rewrite the backend's <stream:features/>; see features.h.
 * The output is the element's own bytes with some child ranges cut out or replaced, so
 * prefixes, namespace declarations, whitespace and unknown features pass unchanged. */
#include "features.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "err.h"

#define ADDRESS_OPEN  "<address xmlns='" XMPP_NS_AFFINIX_ADDRESS "'>"
#define ADDRESS_CLOSE "</address>"

enum action { KEEP, DROP, REPLACE };

static enum action child_action(const struct xmpp_child *c, const char *peer_addr)
{
    /* RFC 6120 §5.4.1: the backend's STARTTLS is its own business, not the peer's. */
    if (strcmp(c->name, XMPP_NS_TLS "|starttls") == 0)
        return DROP;
    /* XEP-0138: compression under our TLS would hide the stanzas from us. */
    if (strcmp(c->name, XMPP_NS_COMPRESS_FEATURE "|compression") == 0)
        return DROP;
    if (peer_addr != NULL && strcmp(c->name, XMPP_NS_AFFINIX_ADDRESS "|address") == 0)
        return REPLACE;
    return KEEP;
}

static const char *escape(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '\'':
        return "&apos;";
    case '"':
        return "&quot;";
    default:
        return NULL;
    }
}

/* Writes the escaped text s to dst (when not NULL) and returns its length. */
static size_t put_escaped(uint8_t *dst, const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        const char *e = escape(*s);
        size_t l = e ? strlen(e) : 1;

        if (dst != NULL)
            memcpy(dst + n, e ? e : s, l);
        n += l;
    }
    return n;
}

/* Copies len bytes to dst + at (when dst is not NULL), keeps the last two bytes written in
 * tail and returns len. */
static size_t put(uint8_t *dst, size_t at, const void *src, size_t len, uint8_t tail[2])
{
    const uint8_t *p = src;

    if (dst != NULL)
        memcpy(dst + at, src, len);
    if (len >= 2) {
        tail[0] = p[len - 2];
        tail[1] = p[len - 1];
    } else if (len == 1) {
        tail[0] = tail[1];
        tail[1] = p[0];
    }
    return len;
}

/* XML 1.0 §2.4: "]]>" may not appear in character data. Text on both sides of a dropped
 * child is joined; would the join spell it? (Each side alone cannot: the input parsed.) */
static bool joins_cdata_end(const uint8_t tail[2], const uint8_t *next, size_t len)
{
    uint8_t w[4] = {tail[0], tail[1], len > 0 ? next[0] : 0, len > 1 ? next[1] : 0};

    return memmem(w, 2 + (len < 2 ? len : 2), "]]>", 3) != NULL;
}

/* One pass over the element: measures the output when dst is NULL, else writes it.
 * Returns the output length, or SIZE_MAX when a join would make the output malformed. */
static size_t build(const struct xmpp_elem *e, const uint8_t *elem, const char *peer_addr,
                    uint8_t *dst)
{
    size_t n = 0, at = 0; /* at: next element byte not yet copied (relative to e->start) */
    uint8_t tail[2] = {0, 0};
    bool joined = false; /* the next bytes copied follow a dropped child */

    for (size_t i = 0; i <= e->nchildren; i++) {
        const struct xmpp_child *c = i < e->nchildren ? &e->children[i] : NULL;
        enum action a = c ? child_action(c, peer_addr) : KEEP;
        size_t upto = c ? (size_t)(c->start - e->start) : (size_t)(e->end - e->start);

        if (c != NULL && a == KEEP)
            continue;
        if (joined && upto > at && joins_cdata_end(tail, elem + at, upto - at))
            return SIZE_MAX;
        n += put(dst, n, elem + at, upto - at, tail);
        if (c == NULL)
            break;
        if (a == REPLACE) {
            n += put(dst, n, ADDRESS_OPEN, strlen(ADDRESS_OPEN), tail);
            n += put_escaped(dst ? dst + n : NULL, peer_addr);
            n += put(dst, n, ADDRESS_CLOSE, strlen(ADDRESS_CLOSE), tail);
        }
        joined = a == DROP;
        at = (size_t)(c->end - e->start);
    }
    return n;
}

int features_rewrite(const struct xmpp_elem *e, const uint8_t *elem, const char *peer_addr,
                     struct bytes *out)
{
    uint64_t prev = e->start;
    size_t need, got;
    uint8_t *dst;

    /* A child we did not see could be a <starttls/> that must go: fail closed. */
    if (e->children_truncated || e->end < e->start)
        return XTP_EBADFORMAT;
    /* The parser records children in order and inside the element; check it anyway, since
     * a wrong range here would copy memory outside elem. */
    for (size_t i = 0; i < e->nchildren; i++) {
        const struct xmpp_child *c = &e->children[i];

        if (c->start < prev || c->end < c->start || c->end > e->end)
            return XTP_EBADFORMAT;
        prev = c->end;
    }
    /* Measure, then write into one reservation: out is untouched on failure. */
    need = build(e, elem, peer_addr, NULL);
    if (need == SIZE_MAX)
        return XTP_EBADFORMAT;
    if (need == 0)
        return 0;
    dst = bytes_reserve(out, need, &got);
    if (dst == NULL)
        return -ENOMEM;
    build(e, elem, peer_addr, dst);
    bytes_commit(out, need);
    return 0;
}
