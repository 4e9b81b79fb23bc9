/* xmpp_in.c: incremental XMPP stream parser over expat; see xmpp_in.h.
 *
 * Offsets. expat counts bytes from the start of the current document; we add base, the stream
 * offset at which that document began (xmpp_in_new() or the last xmpp_in_reset()). A start
 * handler sees its tag at XML_GetCurrentByteIndex() with XML_GetCurrentByteCount() bytes. An
 * end handler sees its end tag the same way, so the element ends at index + count. For an
 * empty element <x/> (measured on expat 2.5.0) expat moves the index to the end of the tag
 * before the end handler and reports a count of 0, so index + count is right there too.
 *
 * Memory. The parser allocates nothing per stanza: the attributes, the direct text and the
 * recorded children of the open depth-1 element live in fixed arenas (struct xin_work).
 * expat itself buffers the bytes of the pending unit, which the size limit keeps below
 * max_stanza + XMPP_IN_SLICE. Between stanzas xmpp_in_trim() frees expat and the arenas; what
 * stays is struct xmpp_in and a copy of the stream header (a few hundred bytes), from which
 * the next feed rebuilds the parser. The caller decides when (conn.c: idle sessions only, so
 * that a busy stream never pays for the rebuild). */
#include "xmpp_in.h"

#include <errno.h>
#include <expat.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "region.h"

#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"

/* expat gets at most this many bytes per XML_Parse() call, so that the size limit is checked
 * on bytes fed at least every XMPP_IN_SLICE bytes: expat reports nothing while a huge tag is
 * pending and would otherwise buffer a whole feed of it. */
#define XMPP_IN_SLICE 4096

#define ATTR_ARENA 4096 /* names and values of the depth-1 element's attributes */
#define TEXT_MAX   1024 /* its direct text, NUL included */
#define NAME_ARENA 2048 /* expanded names of its recorded children */
#define HDR_MAX    2048 /* the stream header's bytes are kept up to this size */

/* expat keeps every distinct element and attribute name it has seen in its DTD tables for
 * the life of the document (about 100 bytes each, measured on 2.5.0), so a stream of stanzas
 * with ever new names grows the parser without bound while each stanza stays under
 * max_stanza. Past EXPAT_MAX(max_stanza) bytes, the parser is rebuilt from the saved header
 * at the next depth-1 boundary, which empties those tables; the stream goes on unchanged.
 * The bound leaves room for expat's buffer holding one max_stanza unit twice over. */
#define EXPAT_MAX(max_stanza) (3 * (max_stanza) + 64 * 1024)

/* A parser's work area and expat's blocks share one region (region.h), so that a trim or a
 * rebuild gives all of it back at once instead of leaving holes in the heap between the
 * sessions' long-lived blocks. Room for EXPAT_MAX twice over; past it, blocks go to the heap. */
#define REGION_RESERVE(max_stanza) (2 * EXPAT_MAX(max_stanza) + sizeof(struct xin_work))

/* What parsing needs only while bytes flow: expat and the open depth-1 element's arenas
 * (about 8.5 KB here and 8 to 20 KB inside expat). Allocated on demand; xmpp_in_trim() gives
 * it back between stanzas, and the next feed rebuilds it from the saved stream header. */
struct xin_work {
    XML_Parser parser; /* owned */
    uint64_t elem_start;
    bool recording;       /* its name is in record: its children are recorded */
    bool text_full;       /* text reached TEXT_MAX - 1 bytes: the rest is not kept */
    bool attrs_truncated; /* an attribute did not fit */
    bool children_truncated;
    int open_child; /* index in children of the open depth-2 child, or -1 */
    size_t nattrs, nchildren, text_len, attr_used, name_used;
    struct xmpp_attr attrs[XMPP_IN_MAX_ATTRS];
    struct xmpp_child children[XMPP_IN_MAX_CHILDREN];
    char text[TEXT_MAX];
    char attr_arena[ATTR_ARENA]; /* also holds the root's default namespace */
    char name_arena[NAME_ARENA];
    const char *default_ns; /* in attr_arena, or NULL; valid until the root's start tag */
};

struct xmpp_in {
    struct xin_work *wk;           /* owned; NULL after xmpp_in_trim() until the next feed */
    struct region *rg;             /* owned with wk: holds wk and expat's blocks; NULL when
                                      the mapping failed (then both use the heap) */
    const struct xmpp_in_ops *ops; /* borrowed */
    void *arg;                     /* borrowed, passed to ops */
    const char *const *record;     /* borrowed: names whose children we record */
    size_t max_stanza;

    uint64_t base;      /* stream offset of the current document's first byte */
    uint64_t offset;    /* stream offset of the next byte to feed */
    uint64_t safe;      /* see xmpp_in_safe() */
    uint64_t pause_end; /* end of the event that asked to pause */
    size_t heap_bytes;  /* expat's blocks on the heap (outside rg), counted by xin_malloc */
    bool renew;         /* footprint() passed EXPAT_MAX at a boundary: rebuild there */
    int err;            /* first error of this document, XMPP_IN_PAUSED, or 0 */
    bool stopped;       /* XML_StopParser() called: ignore every later handler */
    unsigned depth;     /* open elements; 1 while inside <stream:stream> only */
    unsigned long err_line, err_col;

    /* The bytes of this document up to the end of its stream header, replayed into a fresh
     * expat parser after a trim or a pause (xmpp_in_resume()). Kept at their exact size once
     * the header is complete. */
    bool resumable; /* xmpp_in_set_resumable(): a header longer than HDR_MAX is an error */
    bool replaying; /* feeding hdr back: no events, no accounting */
    bool hdr_lost;  /* the header outgrew HDR_MAX: this document cannot be trimmed */
    uint8_t *hdr;   /* owned; NULL until the first byte of a document */
    size_t hdr_len; /* bytes captured since the document's first byte ... */
    size_t hdr_end; /* ... and where its stream header ends (0: not yet) */
};

static uint64_t here(const struct xmpp_in *in)
{
    return in->base + (uint64_t)XML_GetCurrentByteIndex(in->wk->parser);
}

static uint64_t here_end(const struct xmpp_in *in)
{
    return here(in) + (uint64_t)XML_GetCurrentByteCount(in->wk->parser);
}

/* Stops the parser for good with err (a negative code). Called from handlers. */
static void fail(struct xmpp_in *in, int err)
{
    if (in->stopped)
        return;
    in->stopped = true;
    in->err = err;
    in->err_line = XML_GetCurrentLineNumber(in->wk->parser);
    in->err_col = XML_GetCurrentColumnNumber(in->wk->parser);
    XML_StopParser(in->wk->parser, XML_FALSE);
}

/* Acts on an event callback's answer; end is the offset right after the event. */
static void answer(struct xmpp_in *in, int rc, uint64_t end)
{
    if (rc < 0) {
        fail(in, rc);
    } else if (rc == XMPP_IN_PAUSE) {
        in->stopped = true;
        in->err = XMPP_IN_PAUSED;
        in->pause_end = end;
        XML_StopParser(in->wk->parser, XML_FALSE);
    }
}

/* Copies s (len bytes) and a NUL into arena; NULL when it does not fit. */
static const char *arena_copy(char *arena, size_t size, size_t *used, const char *s, size_t len)
{
    char *dst;

    if (len >= size - *used)
        return NULL;
    dst = arena + *used;
    memcpy(dst, s, len);
    dst[len] = '\0';
    *used += len + 1;
    return dst;
}

static bool is_xml_space(const XML_Char *s, int len)
{
    for (int i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static const char *find_attr(const XML_Char **atts, const char *name)
{
    for (size_t i = 0; atts[i] != NULL; i += 2)
        if (strcmp(atts[i], name) == 0)
            return atts[i + 1];
    return NULL;
}

/* Once the header is complete, keeps just its bytes (they are all a trim needs). */
static void shrink_hdr(struct xmpp_in *in)
{
    uint8_t *h = realloc(in->hdr, in->hdr_end);

    if (h != NULL) /* on failure the larger block simply stays */
        in->hdr = h;
    in->hdr_len = in->hdr_end;
}

static void open_stream(struct xmpp_in *in, const XML_Char *name, const XML_Char **atts)
{
    struct xmpp_hdr h = {
        .name = name,
        .default_ns = in->wk->default_ns,
        .to = find_attr(atts, "to"),
        .from = find_attr(atts, "from"),
        .id = find_attr(atts, "id"),
        .version = find_attr(atts, "version"),
        .lang = find_attr(atts, XML_NS_XML "|lang"),
        .start = here(in),
        .end = here_end(in),
    };

    if (h.end - in->safe > in->max_stanza) {
        fail(in, XTP_ETOOBIG);
        return;
    }
    in->safe = h.end;
    if (in->replaying)
        return; /* xmpp_in_resume() re-reads a header that was reported already */
    if (h.end - in->base <= in->hdr_len) {
        in->hdr_end = (size_t)(h.end - in->base);
        shrink_hdr(in);
    } else if (in->resumable) {
        fail(in, XTP_ETOOBIG); /* a header longer than HDR_MAX: not resumable */
        return;
    } else {
        in->hdr_lost = true; /* parsed as usual, only never trimmed */
        free(in->hdr);
        in->hdr = NULL;
        in->hdr_len = 0;
    }
    answer(in, in->ops->stream_open(in->arg, &h), h.end);
}

static void open_elem(struct xmpp_in *in, const XML_Char *name, const XML_Char **atts)
{
    /* RFC 6120 §4.2: one stream per connection direction; a nested one is not XMPP. */
    if (strcmp(name, XMPP_NS_STREAMS "|stream") == 0) {
        fail(in, XTP_EBADFORMAT);
        return;
    }
    in->wk->elem_start = here(in);
    in->wk->nattrs = in->wk->nchildren = in->wk->text_len = in->wk->attr_used = in->wk->name_used =
        0;
    in->wk->text[0] = '\0';
    in->wk->text_full = in->wk->attrs_truncated = in->wk->children_truncated = false;
    in->wk->open_child = -1;
    in->wk->recording = false;
    for (size_t i = 0; in->record != NULL && in->record[i] != NULL; i++)
        if (strcmp(in->record[i], name) == 0)
            in->wk->recording = true;

    for (size_t i = 0; atts[i] != NULL; i += 2) {
        const char *n, *v;

        if (in->wk->nattrs == XMPP_IN_MAX_ATTRS) {
            in->wk->attrs_truncated = true;
            break;
        }
        n = arena_copy(in->wk->attr_arena, ATTR_ARENA, &in->wk->attr_used, atts[i],
                       strlen(atts[i]));
        v = n ? arena_copy(in->wk->attr_arena, ATTR_ARENA, &in->wk->attr_used, atts[i + 1],
                           strlen(atts[i + 1]))
              : NULL;
        if (v == NULL) {
            /* Dropped, never cut: a shortened 'to' would name another domain. */
            in->wk->attrs_truncated = true;
            continue;
        }
        in->wk->attrs[in->wk->nattrs].name = n;
        in->wk->attrs[in->wk->nattrs].value = v;
        in->wk->nattrs++;
    }
}

static void open_child(struct xmpp_in *in, const XML_Char *name)
{
    const char *copy;

    if (in->wk->nchildren == XMPP_IN_MAX_CHILDREN) {
        in->wk->children_truncated = true;
        return;
    }
    copy = arena_copy(in->wk->name_arena, NAME_ARENA, &in->wk->name_used, name, strlen(name));
    if (copy == NULL) {
        in->wk->children_truncated = true;
        return;
    }
    in->wk->children[in->wk->nchildren].name = copy;
    in->wk->children[in->wk->nchildren].start = here(in);
    in->wk->children[in->wk->nchildren].end = here(in); /* set by the end handler */
    in->wk->open_child = (int)in->wk->nchildren++;
}

static void XMLCALL start_cb(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct xmpp_in *in = ud;
    unsigned level = in->depth;

    if (in->stopped)
        return;
    if (level > XMPP_IN_MAX_DEPTH) {
        fail(in, XTP_EDEPTH);
        return;
    }
    in->depth++;
    if (level == 0)
        open_stream(in, name, atts);
    else if (level == 1)
        open_elem(in, name, atts);
    else if (level == 2 && in->wk->recording)
        open_child(in, name);
}

/* What the parser costs: its region's used bytes (dead blocks included) and its heap blocks. */
static size_t footprint(const struct xmpp_in *in)
{
    return (in->rg != NULL ? region_used(in->rg) : 0) + in->heap_bytes;
}

static void close_elem(struct xmpp_in *in, const XML_Char *name, uint64_t end)
{
    struct xmpp_elem e = {
        .name = name,
        .start = in->wk->elem_start,
        .end = end,
        .attrs = in->wk->attrs,
        .nattrs = in->wk->nattrs,
        .attrs_truncated = in->wk->attrs_truncated,
        .text = in->wk->text,
        .children = in->wk->children,
        .nchildren = in->wk->nchildren,
        .children_truncated = in->wk->children_truncated,
    };

    /* Checked here as well as on bytes fed, so that the limit does not depend on how the
     * stream was cut into reads: an element of max_stanza + 1 bytes fails either way. */
    if (end - in->safe > in->max_stanza) {
        fail(in, XTP_ETOOBIG);
        return;
    }
    in->safe = end;
    answer(in, in->ops->element(in->arg, &e), end);
    if (footprint(in) > EXPAT_MAX(in->max_stanza) && !in->stopped) {
        if (in->hdr_end == 0 || in->hdr_lost) {
            fail(in, XTP_ETOOBIG); /* cannot be rebuilt: end the stream instead */
            return;
        }
        in->stopped = true;
        in->renew = true;
        in->pause_end = end;
        XML_StopParser(in->wk->parser, XML_FALSE);
    }
}

static void XMLCALL end_cb(void *ud, const XML_Char *name)
{
    struct xmpp_in *in = ud;
    uint64_t end;

    if (in->stopped)
        return;
    end = here_end(in);
    in->depth--;
    if (in->depth == 0) {
        if (end - in->safe > in->max_stanza) {
            fail(in, XTP_ETOOBIG);
            return;
        }
        in->safe = end;
        answer(in, in->ops->stream_close(in->arg, end), end);
    } else if (in->depth == 1) {
        close_elem(in, name, end);
    } else if (in->depth == 2 && in->wk->open_child >= 0) {
        in->wk->children[in->wk->open_child].end = end;
        in->wk->open_child = -1;
    }
}

/* Keeps whole UTF-8 characters only: expat hands us valid UTF-8, possibly in pieces, so a
 * character is cut only where the buffer is full, and then nothing more is appended. */
static void keep_text(struct xmpp_in *in, const XML_Char *s, size_t len)
{
    size_t room = TEXT_MAX - 1 - in->wk->text_len;

    if (in->wk->text_full)
        return;
    if (len > room) {
        len = room;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--; /* s[len] continues a character that would be cut */
        in->wk->text_full = true;
    }
    memcpy(in->wk->text + in->wk->text_len, s, len);
    in->wk->text_len += len;
    in->wk->text[in->wk->text_len] = '\0';
}

static void XMLCALL chars_cb(void *ud, const XML_Char *s, int len)
{
    struct xmpp_in *in = ud;

    if (in->stopped)
        return;
    if (in->depth == 1) {
        /* RFC 6120 §4.6.1: only whitespace (keepalives) may sit between top-level elements.
         * Each whitespace character is a complete unit, so it never counts against the
         * size limit. */
        if (!is_xml_space(s, len)) {
            fail(in, XTP_EBADFORMAT);
            return;
        }
        in->safe = here_end(in);
    } else if (in->depth == 2) {
        keep_text(in, s, (size_t)len);
    }
}

static void XMLCALL ns_start_cb(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    struct xmpp_in *in = ud;

    if (in->stopped || in->depth != 0 || prefix != NULL || uri == NULL)
        return;
    /* Copied: expat does not promise that uri lives until the start handler. */
    in->wk->attr_used = 0;
    in->wk->default_ns =
        arena_copy(in->wk->attr_arena, ATTR_ARENA, &in->wk->attr_used, uri, strlen(uri));
    if (in->wk->default_ns == NULL)
        fail(in, XTP_ENAMESPACE); /* longer than any namespace we could accept */
}

/* RFC 6120 §11.1: no DTD, no entity declarations, no comments, no processing instructions. */
static void XMLCALL doctype_cb(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    fail(ud, XTP_ERESTRICTED);
}

static void XMLCALL entity_cb(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    fail(ud, XTP_ERESTRICTED);
}

static void XMLCALL comment_cb(void *ud, const XML_Char *data)
{
    fail(ud, XTP_ERESTRICTED);
}

static void XMLCALL pi_cb(void *ud, const XML_Char *target, const XML_Char *data)
{
    fail(ud, XTP_ERESTRICTED);
}

/* Handlers and options, for a new parser and after XML_ParserReset(), which clears them. */
static void setup(struct xmpp_in *in)
{
    XML_Parser p = in->wk->parser;

    XML_SetUserData(p, in);
    XML_SetElementHandler(p, start_cb, end_cb);
    XML_SetCharacterDataHandler(p, chars_cb);
    XML_SetStartNamespaceDeclHandler(p, ns_start_cb);
    XML_SetStartDoctypeDeclHandler(p, doctype_cb);
    XML_SetEntityDeclHandler(p, entity_cb);
    XML_SetCommentHandler(p, comment_cb);
    XML_SetProcessingInstructionHandler(p, pi_cb);
#ifdef XTP_HAVE_REPARSE_DEFERRAL
    /* expat 2.6 (backported to Debian's 2.5.0) may hold back a token split across feeds
     * until more data comes: on a stream that is a deadlock. */
    XML_SetReparseDeferralEnabled(p, XML_FALSE);
#endif

    in->base = in->safe = in->offset;
    in->err = 0;
    in->stopped = false;
    in->depth = 0;
    in->wk->default_ns = NULL;
    in->wk->attr_used = 0;
    in->err_line = in->err_col = 0;
    in->hdr_len = in->hdr_end = 0;
    in->hdr_lost = false;
}

/* ---- expat's memory, counted per parser ----------------------------------------------- */

/* Every block expat allocates starts with this header, naming the parser that pays for it. */
struct xin_block {
    _Alignas(max_align_t) struct xmpp_in *owner;
    size_t size;
};

/* The parser on whose behalf expat runs on this thread: set around every expat call that may
 * allocate (create, parse, reset). Blocks remember their owner, so free needs no context. */
static _Thread_local struct xmpp_in *xin_payer;

static bool in_region(const struct xin_block *b)
{
    return b->owner != NULL && b->owner->rg != NULL && region_owns(b->owner->rg, b);
}

static void *xin_malloc(size_t n)
{
    struct xmpp_in *owner = xin_payer;
    struct xin_block *b = NULL;

    if (n > SIZE_MAX - sizeof(*b))
        return NULL;
    if (owner != NULL && owner->rg != NULL)
        b = region_alloc(owner->rg, sizeof(*b) + n);
    if (b == NULL) {
        b = malloc(sizeof(*b) + n);
        if (b == NULL)
            return NULL;
        if (owner != NULL)
            owner->heap_bytes += n;
    }
    b->owner = owner;
    b->size = n;
    return b + 1;
}

static void xin_free(void *p)
{
    struct xin_block *b;

    if (p == NULL)
        return;
    b = (struct xin_block *)p - 1;
    if (in_region(b)) {
        region_release(b->owner->rg, b, sizeof(*b) + b->size);
        return;
    }
    if (b->owner != NULL)
        b->owner->heap_bytes -= b->size;
    free(b);
}

static void *xin_realloc(void *p, size_t n)
{
    struct xin_block *b, *nb;
    struct xmpp_in *owner;
    size_t old;

    if (p == NULL)
        return xin_malloc(n);
    b = (struct xin_block *)p - 1;
    owner = b->owner;
    old = b->size;
    if (n > SIZE_MAX - sizeof(*b))
        return NULL;
    if (in_region(b)) {
        nb = region_realloc(owner->rg, b, sizeof(*b) + old, sizeof(*b) + n);
        if (nb == NULL) { /* the region is full: move to the heap */
            nb = malloc(sizeof(*b) + n);
            if (nb == NULL)
                return NULL;
            memcpy(nb, b, sizeof(*b) + (old < n ? old : n));
            region_release(owner->rg, b, sizeof(*b) + old);
            owner->heap_bytes += n;
            nb->size = n;
            return nb + 1;
        }
    } else {
        nb = realloc(b, sizeof(*b) + n);
        if (nb == NULL)
            return NULL;
        if (owner != NULL)
            owner->heap_bytes = owner->heap_bytes - old + n;
    }
    nb->size = n;
    return nb + 1;
}

static const XML_Memory_Handling_Suite xin_memsuite = {xin_malloc, xin_realloc, xin_free};

/* Gives in a work area with a fresh expat parser, both in a new region. 0 or -ENOMEM. */
static int work_new(struct xmpp_in *in)
{
    struct xin_work *wk = NULL;

    in->rg = region_new(REGION_RESERVE(in->max_stanza));
    if (in->rg != NULL)
        wk = region_alloc(in->rg, sizeof(*wk));
    if (wk == NULL)
        wk = malloc(sizeof(*wk));
    if (wk == NULL) {
        region_free(in->rg);
        in->rg = NULL;
        return -ENOMEM;
    }
    /* RFC 6120 §11.6: UTF-8 only. Naming the encoding here makes expat ignore an encoding=
     * declaration; what still makes it switch to UTF-16 is refused in xmpp_in_feed(). */
    xin_payer = in;
    wk->parser = XML_ParserCreate_MM("UTF-8", &xin_memsuite, "|");
    xin_payer = NULL;
    if (wk->parser == NULL) {
        if (in->rg == NULL || !region_owns(in->rg, wk))
            free(wk);
        region_free(in->rg);
        in->rg = NULL;
        return -ENOMEM;
    }
    in->wk = wk;
    return 0;
}

/* Frees in's parser, work area and region (NULL-safe). */
static void work_free(struct xmpp_in *in)
{
    if (in->wk == NULL)
        return;
    XML_ParserFree(in->wk->parser);
    if (in->rg == NULL || !region_owns(in->rg, in->wk))
        free(in->wk);
    region_free(in->rg);
    in->rg = NULL;
    in->wk = NULL;
}

struct xmpp_in *xmpp_in_new(const struct xmpp_in_ops *ops, void *arg, size_t max_stanza,
                            const char *const *record_children)
{
    struct xmpp_in *in = calloc(1, sizeof(*in));

    if (in == NULL)
        return NULL;
    in->ops = ops;
    in->arg = arg;
    in->record = record_children;
    in->max_stanza = max_stanza;
    if (work_new(in) != 0) {
        free(in);
        return NULL;
    }
    setup(in);
    return in;
}

void xmpp_in_free(struct xmpp_in *in)
{
    if (in == NULL)
        return;
    work_free(in);
    free(in->hdr);
    free(in);
}

void xmpp_in_set_resumable(struct xmpp_in *in)
{
    in->resumable = true;
}

bool xmpp_in_paused(const struct xmpp_in *in)
{
    return in->err == XMPP_IN_PAUSED;
}

/* Re-reads this document's stream header into in->wk's parser (fresh or reset) so that it
 * stands between depth-1 elements at offset at, where the header's bytes end... shifted: the
 * new document's byte indexes count from the replayed header's first byte, so offsets go on
 * exactly where they were. 0 or the parser's error. */
static int replay_header(struct xmpp_in *in, uint64_t at)
{
    size_t hdr_end = in->hdr_end;
    uint8_t *hdr = in->hdr;
    enum XML_Status st;

    in->offset = at - hdr_end;
    in->hdr = NULL; /* setup() starts a new capture; this copy is the one to keep */
    setup(in);
    in->hdr = hdr;
    in->replaying = true;
    xin_payer = in;
    st = XML_Parse(in->wk->parser, (const char *)hdr, (int)hdr_end, XML_FALSE);
    xin_payer = NULL;
    in->replaying = false;
    in->offset = at;
    in->hdr_end = in->hdr_len = hdr_end;
    if (st != XML_STATUS_OK || in->err != 0 || in->depth != 1) {
        in->err = in->err != 0 ? in->err : XTP_EXML;
        return in->err;
    }
    in->safe = at;
    return 0;
}

static bool parser_reset(struct xmpp_in *in)
{
    XML_Bool ok;

    xin_payer = in;
    ok = XML_ParserReset(in->wk->parser, "UTF-8");
    xin_payer = NULL;
    return ok == XML_TRUE;
}

int xmpp_in_resume(struct xmpp_in *in)
{
    if (in->err != XMPP_IN_PAUSED)
        return in->err;
    if (!in->resumable || in->hdr_end == 0 || in->depth != 1)
        return -EINVAL; /* paused inside the header, or an element: cannot continue */
    if (!parser_reset(in))
        return -ENOMEM;
    return replay_header(in, in->pause_end);
}

bool xmpp_in_trim(struct xmpp_in *in)
{
    if (in->wk == NULL || in->err != 0 || in->depth != 1 || in->offset != in->safe ||
        in->hdr_end == 0 || in->hdr_lost)
        return false;
    work_free(in);
    return true;
}

size_t xmpp_in_memory(const struct xmpp_in *in)
{
    return in->wk == NULL ? 0 : footprint(in) + (in->rg == NULL ? sizeof(*in->wk) : 0);
}

bool xmpp_in_trimmed(const struct xmpp_in *in)
{
    return in->wk == NULL;
}

/* After a trim: a new parser, standing where the old one stood. 0 or a negative code. */
static int rebuild(struct xmpp_in *in)
{
    if (work_new(in) != 0)
        return -ENOMEM;
    return replay_header(in, in->offset);
}

int xmpp_in_reset(struct xmpp_in *in)
{
    /* XML_ParserReset fails only for expat's child parsers (external entities), which we never
     * create. A trimmed parser gets a fresh one. */
    if (in->wk == NULL) {
        if (work_new(in) != 0)
            return -ENOMEM;
    } else if (!parser_reset(in)) {
        return -ENOMEM;
    }
    free(in->hdr);
    in->hdr = NULL;
    setup(in);
    return 0;
}

static int expat_error(struct xmpp_in *in)
{
    enum XML_Error e = XML_GetErrorCode(in->wk->parser);

    in->err_line = XML_GetCurrentLineNumber(in->wk->parser);
    in->err_col = XML_GetCurrentColumnNumber(in->wk->parser);
    switch (e) {
    case XML_ERROR_NO_MEMORY:
        return -ENOMEM;
    case XML_ERROR_UNBOUND_PREFIX:
        return XTP_EPREFIX;
    default:
        return XTP_EXML;
    }
}

int xmpp_in_feed(struct xmpp_in *in, const void *data, size_t len, size_t *used)
{
    const uint8_t *p = data;
    uint64_t first = in->offset;
    size_t done = 0;

    *used = 0;
    if (in->err == XMPP_IN_PAUSED)
        return -EINVAL; /* a paused parser is only reset or freed */
    if (in->err != 0)
        return in->err;
    if (in->wk == NULL && len > 0 && (in->err = rebuild(in)) != 0)
        return in->err;
    /* expat 2.5.0 picks UTF-16 from a document's first two bytes (FF FE, FE FF, 3C 00,
     * 00 3C) even when told UTF-8 (measured). None of 00, FE, FF can appear in UTF-8 XML. */
    for (size_t i = 0; i < len && in->offset + i - in->base < 2; i++)
        if (p[i] == 0x00 || p[i] == 0xFE || p[i] == 0xFF) {
            in->err = XTP_EXML;
            return in->err;
        }
    while (done < len) {
        size_t n = len - done < XMPP_IN_SLICE ? len - done : XMPP_IN_SLICE;
        enum XML_Status st;

        if (in->hdr_end == 0 && !in->hdr_lost && in->hdr_len < HDR_MAX) {
            size_t take = n < HDR_MAX - in->hdr_len ? n : HDR_MAX - in->hdr_len;

            if (in->hdr == NULL && (in->hdr = malloc(HDR_MAX)) == NULL) {
                in->err = -ENOMEM;
                return in->err;
            }
            memcpy(in->hdr + in->hdr_len, p + done, take);
            in->hdr_len += take;
        }
        xin_payer = in;
        st = XML_Parse(in->wk->parser, (const char *)p + done, (int)n, XML_FALSE);
        xin_payer = NULL;

        if (in->renew) {
            /* Stopped at a depth-1 boundary, over EXPAT_MAX: a fresh parser takes the rest
             * of this slice from there. */
            size_t took = (size_t)(in->pause_end - in->offset);

            in->renew = false;
            in->stopped = false;
            in->offset = in->pause_end;
            work_free(in);
            if ((in->err = rebuild(in)) != 0)
                return in->err;
            done += took;
            *used = done;
            continue;
        }

        if (in->err == XMPP_IN_PAUSED) {
            *used = (size_t)(in->pause_end - first);
            in->offset = in->pause_end;
            return XMPP_IN_PAUSED;
        }
        done += n;
        *used = done;
        in->offset += n;
        if (in->err != 0)
            return in->err;
        if (st != XML_STATUS_OK) {
            in->err = expat_error(in);
            return in->err;
        }
        if (in->offset - in->safe > in->max_stanza) {
            in->err = XTP_ETOOBIG;
            in->err_line = XML_GetCurrentLineNumber(in->wk->parser);
            in->err_col = XML_GetCurrentColumnNumber(in->wk->parser);
            return in->err;
        }
    }
    return 0;
}

uint64_t xmpp_in_offset(const struct xmpp_in *in)
{
    return in->offset;
}

uint64_t xmpp_in_safe(const struct xmpp_in *in)
{
    return in->safe;
}

void xmpp_in_error_pos(const struct xmpp_in *in, unsigned long *line, unsigned long *col)
{
    /* expat counts lines from 1 and columns from 0. */
    *line = in->err_line > 0 ? in->err_line - 1 : 0;
    *col = in->err_col;
}

const char *xmpp_attr_get(const struct xmpp_attr *attrs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(attrs[i].name, name) == 0)
            return attrs[i].value;
    return NULL;
}

int xmpp_in_check_ns(const struct xmpp_hdr *h, const char *content_ns)
{
    const char *bar = strrchr(h->name, '|');
    const char *local = bar ? bar + 1 : h->name;
    size_t nslen = bar ? (size_t)(bar - h->name) : 0;

    if (strcmp(local, "stream") != 0)
        return XTP_EBADFORMAT;
    if (nslen != strlen(XMPP_NS_STREAMS) || strncmp(h->name, XMPP_NS_STREAMS, nslen) != 0)
        return XTP_ENAMESPACE;
    if (h->default_ns == NULL || strcmp(h->default_ns, content_ns) != 0)
        return XTP_ENAMESPACE;
    return 0;
}

bool xmpp_in_version_ok(const struct xmpp_hdr *h)
{
    const char *v = h->version;
    char *end;
    long major;

    if (v == NULL || *v < '0' || *v > '9')
        return false;
    errno = 0;
    major = strtol(v, &end, 10);
    return errno == 0 && *end == '.' && end[1] >= '0' && end[1] <= '9' && major >= 1;
}
