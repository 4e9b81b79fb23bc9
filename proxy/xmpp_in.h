/* xmpp_in.h: incremental XMPP stream parser over expat (RFC 6120 §4, §11).
 * Depth 0 is <stream:stream>; each depth-1 element (stanza, <stream:features/>, SASL/TLS
 * negotiation element) is reported once complete, with its byte offsets in the stream, so the
 * caller can forward the original bytes (never re-serialised). Offsets count every byte fed
 * since xmpp_in_new() and continue across xmpp_in_reset().
 *
 * Rejected (the feed stops with the code): malformed XML, invalid UTF-8, NUL (XTP_EXML);
 * DOCTYPE, entity declarations, comments, processing instructions (XTP_ERESTRICTED);
 * non-whitespace text at depth 1, a nested <stream:stream> (XTP_EBADFORMAT); more than
 * max_stanza bytes since the last complete top-level unit (XTP_ETOOBIG), checked on bytes
 * fed, not in handlers, since expat reports nothing while a huge tag is pending; nesting
 * deeper than XMPP_IN_MAX_DEPTH (XTP_EDEPTH). The encoding is forced to UTF-8.
 * tests: test_xmpp_in.c, fuzz: fuzz_xmpp_in.c */
#ifndef XTP_XMPP_IN_H
#define XTP_XMPP_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XMPP_NS_STREAMS          "http://etherx.jabber.org/streams"
#define XMPP_NS_CLIENT           "jabber:client"
#define XMPP_NS_SERVER           "jabber:server"
#define XMPP_NS_TLS              "urn:ietf:params:xml:ns:xmpp-tls"
#define XMPP_NS_SASL             "urn:ietf:params:xml:ns:xmpp-sasl"
#define XMPP_NS_STREAM_ERRORS    "urn:ietf:params:xml:ns:xmpp-streams"
#define XMPP_NS_COMPRESS_FEATURE "http://jabber.org/features/compress"
#define XMPP_NS_DIALBACK         "jabber:server:dialback"
#define XMPP_NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"
#define XMPP_NS_AFFINIX_ADDRESS  "http://affinix.com/jabber/address"

#define XMPP_IN_MAX_DEPTH    64 /* stanzas nest a few levels; RFC 6120 sets no number */
#define XMPP_IN_MAX_CHILDREN 32 /* children recorded per element (features) */
#define XMPP_IN_MAX_ATTRS    8  /* depth-1 attributes kept for the element event */

/* Returned by an event callback: stop right after this event (xmpp_in_feed returns
 * XMPP_IN_PAUSED), e.g. to reset the parser at a stream restart or to discard what follows
 * <starttls/> (STARTTLS command injection, CVE-2011-0411). */
#define XMPP_IN_PAUSE  1
#define XMPP_IN_PAUSED 1

/* Expanded names are "namespace-URI|local" (expat's form with '|' as separator), or just
 * "local" for an element in no namespace. */

struct xmpp_hdr {
    const char *name;       /* expanded name of the root element */
    const char *default_ns; /* default namespace declared on it (xmlns='...'), or NULL */
    const char *to, *from, *id, *version, *lang; /* attributes, or NULL when absent */
    uint64_t start, end; /* offsets of the start tag: [start, end); bytes before start are
                            the XML declaration and whitespace */
};

struct xmpp_attr {
    const char *name; /* expanded attribute name ("to", "type", ...) */
    const char *value;
};

struct xmpp_child {
    const char *name;    /* expanded name; valid during the event only */
    uint64_t start, end; /* stream offsets of the whole child element */
};

struct xmpp_elem {
    const char *name;              /* expanded name */
    uint64_t start, end;           /* stream offsets of the whole element */
    const struct xmpp_attr *attrs; /* first XMPP_IN_MAX_ATTRS attributes of its start tag */
    size_t nattrs;
    bool attrs_truncated; /* an attribute was left out (too many, or too long for the
                             parser's fixed arena); values are never cut short */
    const char *text;     /* its direct character data (first 1023 bytes), "" if none */
    const struct xmpp_child *children; /* depth-2 children, for names in the record list */
    size_t nchildren;
    bool children_truncated; /* more than XMPP_IN_MAX_CHILDREN children */
};

struct xmpp_in_ops {
    /* Return 0, XMPP_IN_PAUSE, or a negative code to fail the feed with it. */
    int (*stream_open)(void *arg, const struct xmpp_hdr *h);
    int (*element)(void *arg, const struct xmpp_elem *e);
    int (*stream_close)(void *arg, uint64_t end); /* </stream:stream> ends at offset end */
};

struct xmpp_in;

/* record_children: NULL-terminated expanded names of depth-1 elements whose children to
 * record (e.g. XMPP_NS_STREAMS "|features"); borrowed, must outlive the parser. */
struct xmpp_in *xmpp_in_new(const struct xmpp_in_ops *ops, void *arg, size_t max_stanza,
                            const char *const *record_children);
void xmpp_in_free(struct xmpp_in *in); /* NULL is fine */

/* Makes in able to continue after a pause (xmpp_in_resume()): it keeps a copy of each stream
 * header, at most 2048 bytes (a longer header fails with XTP_ETOOBIG). For s2s-in, which holds
 * a remote's input until the backend knows the pair it just authenticated. */
void xmpp_in_set_resumable(struct xmpp_in *in);

/* True when a callback paused the parser and it was neither reset nor resumed since. */
bool xmpp_in_paused(const struct xmpp_in *in);

/* Continues a paused stream where the pause was: a fresh expat parser re-reads the stream
 * header (no event) and the next xmpp_in_feed() takes the bytes after the paused event. Only
 * for a resumable parser paused between depth-1 elements. 0, -EINVAL when it cannot resume,
 * or the parser's error. A parser that is not paused is left alone (0 or its error). */
int xmpp_in_resume(struct xmpp_in *in);

/* Frees the expat parser and the element arenas (about 20 KB) when in stands between depth-1
 * elements with nothing pending: offset == safe, no error, no pause, a stream header of at
 * most 2048 bytes. The next xmpp_in_feed() (or xmpp_in_reset()) builds a fresh parser that
 * re-reads the saved header without events, so parsing goes on as if nothing happened. True
 * when it freed them. For idle sessions: a rebuild costs an allocation and the header's parse. */
bool xmpp_in_trim(struct xmpp_in *in);

/* True while in holds no parser (trimmed and not fed since). */
bool xmpp_in_trimmed(const struct xmpp_in *in);

/* Bytes the parser holds for in right now (0 while trimmed). Past 3 * max_stanza + 64 KiB the
 * parser is rebuilt at the next depth-1 boundary (expat keeps every distinct element and
 * attribute name for the life of a document), so it stays below about twice that. */
size_t xmpp_in_memory(const struct xmpp_in *in);

/* Starts a new stream at the current offset (after TLS, after SASL success). 0 or -ENOMEM. */
int xmpp_in_reset(struct xmpp_in *in);

/* Parses len more bytes. Returns 0 when all were consumed, XMPP_IN_PAUSED when a callback asked
 * to pause (then *used says how many bytes of data were consumed, up to the end of that event),
 * or a negative code (the parser is then dead; only free it). *used is set in every case. */
int xmpp_in_feed(struct xmpp_in *in, const void *data, size_t len, size_t *used);

/* Offset of the next byte to feed. */
uint64_t xmpp_in_offset(const struct xmpp_in *in);

/* Every byte before this offset belongs to complete top-level units (the stream header,
 * whole depth-1 elements, whitespace between them, the stream end): safe to forward. */
uint64_t xmpp_in_safe(const struct xmpp_in *in);

/* 0-based line/column of the last error, for debug logs. */
void xmpp_in_error_pos(const struct xmpp_in *in, unsigned long *line, unsigned long *col);

/* RFC 6120 §4.7, §4.9.3.10: 0 when h's root is {http://etherx.jabber.org/streams}stream and its
 * default namespace is content_ns ("jabber:client" or "jabber:server"); XTP_EBADFORMAT when
 * the root is not named "stream"; XTP_ENAMESPACE for any other namespace. */
int xmpp_in_check_ns(const struct xmpp_hdr *h, const char *content_ns);

/* RFC 6120 §4.7.5: true when h->version is "major.minor" with major >= 1, i.e. the stream has
 * features and so can negotiate STARTTLS; false when absent (pre-1.0) or malformed. */
bool xmpp_in_version_ok(const struct xmpp_hdr *h);

/* Value of attribute name in attrs, or NULL. */
const char *xmpp_attr_get(const struct xmpp_attr *attrs, size_t n, const char *name);

#endif
