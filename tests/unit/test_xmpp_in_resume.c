/* test_xmpp_in_resume.c: the parser rebuilt from its saved stream header. xmpp_in_resume(),
 * which s2s-in uses to hold a remote's input after an authentication element and continue
 * exactly there later; and xmpp_in_trim(), which idle sessions use to give the parser's memory
 * back between stanzas. (A file of its own: test_xmpp_in.c has its 24 tests.) */
#include "xmpp_in.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "test.h"

struct log {
    char names[16][64];
    uint64_t ends[16];
    size_t n;
    int pause_at; /* pause after this element index, or -1 */
    unsigned opens;
};

static int open_cb(void *arg, const struct xmpp_hdr *h)
{
    struct log *l = arg;

    l->opens++;
    return 0;
}

static int elem_cb(void *arg, const struct xmpp_elem *e)
{
    struct log *l = arg;
    size_t i = l->n;

    if (i < 16) {
        snprintf(l->names[i], sizeof(l->names[i]), "%s", e->name);
        l->ends[i] = e->end;
        l->n++;
    }
    return (int)i == l->pause_at ? XMPP_IN_PAUSE : 0;
}

static int close_cb(void *arg, uint64_t end)
{
    return 0;
}

static const struct xmpp_in_ops ops = {open_cb, elem_cb, close_cb};

static const char stream[] =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='a.test' version='1.0'>"
    "<db:result from='b.test' to='a.test'>key</db:result>"
    "<message from='x@b.test' to='y@a.test'><body>1</body></message>"
    "<db:verify from='b.test' to='a.test' id='i'>k</db:verify>"
    "<message from='x@b.test' to='y@a.test'><body>2</body></message></stream:stream>";

/* Pause after each element in turn, resume, and see the same events and offsets as an
 * uninterrupted parse; fed whole and fed in two parts at every split. */
TEST(resume_continues_exactly)
{
    size_t len = strlen(stream);
    struct log ref = {.pause_at = -1};
    struct xmpp_in *in = xmpp_in_new(&ops, &ref, 65536, NULL);
    size_t used;

    EXPECT_EQ(0, xmpp_in_feed(in, stream, len, &used));
    EXPECT_EQ(4, ref.n);
    xmpp_in_free(in);

    for (int p = 0; p < 4; p++)
        for (size_t cut = 1; cut < len; cut += 7) {
            struct log l = {.pause_at = p};
            size_t pos = 0;
            int rc;

            in = xmpp_in_new(&ops, &l, 65536, NULL);
            xmpp_in_set_resumable(in);
            /* Two feeds (split at cut); after the pause, resume and feed the rest. */
            while (pos < len) {
                size_t chunk = pos < cut ? cut - pos : len - pos;

                rc = xmpp_in_feed(in, stream + pos, chunk, &used);
                pos += used;
                if (rc == XMPP_IN_PAUSED) {
                    EXPECT(xmpp_in_paused(in));
                    EXPECT_EQ(xmpp_in_offset(in), pos);
                    EXPECT_EQ(0, xmpp_in_resume(in));
                    EXPECT(!xmpp_in_paused(in));
                    EXPECT_EQ(pos, xmpp_in_offset(in));
                    EXPECT_EQ(pos, xmpp_in_safe(in));
                    continue;
                }
                EXPECT_EQ_MSG(0, rc, "pause %d cut %zu", p, cut);
                if (rc != 0)
                    break;
            }
            EXPECT_EQ_MSG(ref.n, l.n, "pause %d cut %zu", p, cut);
            EXPECT_EQ(1, l.opens); /* the replayed header is not reported again */
            for (size_t i = 0; i < ref.n && i < l.n; i++) {
                EXPECT_STR(ref.names[i], l.names[i]);
                EXPECT_EQ(ref.ends[i], l.ends[i]);
            }
            xmpp_in_free(in);
        }
}

/* Not resumable, or paused inside a stanza's children: refused; and resume is a no-op on a
 * parser that is not paused. A header over 2048 bytes cannot be kept: XTP_ETOOBIG. */
TEST(resume_refusals)
{
    struct log l = {.pause_at = 0};
    struct xmpp_in *in = xmpp_in_new(&ops, &l, 65536, NULL);
    char big[4096];
    size_t used;
    int n;

    EXPECT_EQ(XMPP_IN_PAUSED, xmpp_in_feed(in, stream, strlen(stream), &used));
    EXPECT_EQ(-EINVAL, xmpp_in_resume(in)); /* not resumable */
    xmpp_in_free(in);

    in = xmpp_in_new(&ops, &l, 65536, NULL);
    xmpp_in_set_resumable(in);
    EXPECT_EQ(0, xmpp_in_resume(in)); /* not paused: nothing to do */
    n = snprintf(big, sizeof(big),
                 "<stream:stream xmlns='jabber:server' "
                 "xmlns:stream='http://etherx.jabber.org/streams' x='%03000d'>",
                 0);
    EXPECT_EQ(XTP_ETOOBIG, xmpp_in_feed(in, big, (size_t)n, &used));
    xmpp_in_free(in);
}

/* Trimmed after every feed, wherever the feeds were cut: the same events and offsets as an
 * uninterrupted parse, prefixes (db:) included. A trim succeeds exactly when the cut falls
 * between top-level units, and the rebuilt parser is not reported a second stream. */
TEST(trim_after_every_feed)
{
    size_t len = strlen(stream);
    struct log ref = {.pause_at = -1};
    struct xmpp_in *in = xmpp_in_new(&ops, &ref, 65536, NULL);
    size_t used, trims_total = 0;

    EXPECT_EQ(0, xmpp_in_feed(in, stream, len, &used));
    xmpp_in_free(in);

    for (size_t step = 1; step < 200; step += 13) {
        struct log l = {.pause_at = -1};
        size_t pos = 0;

        in = xmpp_in_new(&ops, &l, 65536, NULL);
        EXPECT(!xmpp_in_trim(in)); /* no header yet */
        while (pos < len) {
            size_t chunk = len - pos < step ? len - pos : step;
            bool between = false;

            EXPECT_EQ_MSG(0, xmpp_in_feed(in, stream + pos, chunk, &used), "step %zu", step);
            pos += used;
            /* Between units: right after the header or after an element's end tag. */
            for (size_t i = 0; i < l.n; i++)
                between |= l.ends[i] == pos;
            between |= pos == (size_t)(strstr(stream, "<db:result") - stream);
            between &= pos < len - strlen("</stream:stream>") + 1;
            if (xmpp_in_trim(in)) {
                EXPECT_MSG(between, "trimmed at %zu (step %zu)", pos, step);
                EXPECT(xmpp_in_trimmed(in));
                EXPECT(!xmpp_in_trim(in));
                EXPECT_EQ(pos, xmpp_in_offset(in));
                trims_total++;
            } else if (pos < len) {
                EXPECT_MSG(!between, "not trimmed at %zu (step %zu)", pos, step);
            }
        }
        EXPECT_EQ_MSG(ref.n, l.n, "step %zu", step);
        EXPECT_EQ(1, l.opens);
        for (size_t i = 0; i < ref.n && i < l.n; i++) {
            EXPECT_STR(ref.names[i], l.names[i]);
            EXPECT_EQ(ref.ends[i], l.ends[i]);
        }
        xmpp_in_free(in);
    }
    EXPECT(trims_total >= 5); /* step 1 alone meets all five boundaries */
}

/* What a trimmed parser still enforces: the size limit on the next unit, the restricted XML,
 * a stream restart (reset) on a trimmed parser, and an oversized header (not kept: parsing
 * goes on, only never trimmed). */
TEST(trim_keeps_the_rules)
{
    static const char hdr[] = "<stream:stream xmlns='jabber:client' "
                              "xmlns:stream='http://etherx.jabber.org/streams' to='a.test'>";
    struct log l = {.pause_at = -1};
    struct xmpp_in *in = xmpp_in_new(&ops, &l, 100, NULL);
    char big[4096], msg[160];
    size_t used;
    int n;

    EXPECT_EQ(0, xmpp_in_feed(in, hdr, strlen(hdr), &used));
    EXPECT(xmpp_in_trim(in));
    n = snprintf(msg, sizeof(msg), "<message><body>%090d</body></message>", 0);
    EXPECT_EQ(XTP_ETOOBIG, xmpp_in_feed(in, msg, (size_t)n, &used));
    EXPECT(!xmpp_in_trim(in)); /* failed */
    xmpp_in_free(in);

    in = xmpp_in_new(&ops, &l, 65536, NULL);
    EXPECT_EQ(0, xmpp_in_feed(in, hdr, strlen(hdr), &used));
    EXPECT(xmpp_in_trim(in));
    EXPECT_EQ(XTP_ERESTRICTED, xmpp_in_feed(in, "<!-- c -->", 10, &used));
    xmpp_in_free(in);

    l = (struct log){.pause_at = -1};
    in = xmpp_in_new(&ops, &l, 65536, NULL);
    EXPECT_EQ(0, xmpp_in_feed(in, hdr, strlen(hdr), &used));
    EXPECT(xmpp_in_trim(in));
    EXPECT_EQ(0, xmpp_in_reset(in)); /* e.g. after SASL success */
    EXPECT(!xmpp_in_trimmed(in));
    EXPECT_EQ(0, xmpp_in_feed(in, hdr, strlen(hdr), &used));
    EXPECT_EQ(0, xmpp_in_feed(in, "<presence/>", 11, &used));
    EXPECT_EQ(2, l.opens);
    EXPECT_EQ(1, l.n);
    EXPECT_STR("jabber:client|presence", l.names[0]);
    xmpp_in_free(in);

    in = xmpp_in_new(&ops, &l, 65536, NULL);
    n = snprintf(big, sizeof(big),
                 "<stream:stream xmlns='jabber:server' "
                 "xmlns:stream='http://etherx.jabber.org/streams' x='%03000d'>",
                 0);
    EXPECT_EQ(0, xmpp_in_feed(in, big, (size_t)n, &used));
    EXPECT(!xmpp_in_trim(in));
    EXPECT_EQ(0, xmpp_in_feed(in, "<presence/>", 11, &used));
    xmpp_in_free(in);
}

/* A stream of stanzas full of new element names (expat keeps each one for the life of the
 * document): the parser is rebuilt at boundaries, so its memory stays bounded (without the
 * rebuilds it would pass 10 MB here), and the stream goes on with continuous offsets,
 * whatever the feed sizes. */
TEST(distinct_names_stay_bounded)
{
    static const char hdr[] = "<stream:stream xmlns='jabber:client' "
                              "xmlns:stream='http://etherx.jabber.org/streams' to='a.test'>";
    static char buf[16384];
    /* EXPAT_MAX, plus what one stanza can add before its end tag (about 3 bytes per byte),
     * plus the work area (8.5 KB) and, under ASan, the regions' red zones */
    const size_t max_stanza = 16384, bound = 6 * max_stanza + 96 * 1024;
    const size_t steps[] = {sizeof(buf), 1000, 4096};

    for (size_t t = 0; t < ARRAY_SIZE(steps); t++) {
        struct log l = {.pause_at = -1};
        struct xmpp_in *in = xmpp_in_new(&ops, &l, max_stanza, NULL);
        size_t used, peak = 0, fresh;
        uint64_t ends = 0;
        int bad = 0;

        EXPECT_EQ(0, xmpp_in_feed(in, hdr, strlen(hdr), &used));
        fresh = xmpp_in_memory(in);
        EXPECT(fresh > 0);
        for (int s = 0; s < 300 && !bad; s++) {
            size_t n = (size_t)snprintf(buf, sizeof(buf), "<message>");

            for (int k = 0; k < 400; k++)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "<n%d_%d/>", s, k);
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "</message>");
            ends += n;
            for (size_t pos = 0; pos < n && !bad; pos += used) {
                size_t chunk = n - pos < steps[t] ? n - pos : steps[t];

                bad = xmpp_in_feed(in, buf + pos, chunk, &used) != 0;
                if (xmpp_in_memory(in) > peak)
                    peak = xmpp_in_memory(in);
            }
        }
        EXPECT_MSG(!bad, "step %zu", steps[t]);
        EXPECT_MSG(peak < bound, "peak %zu, bound %zu (step %zu)", peak, bound, steps[t]);
        EXPECT_EQ(1, l.opens);
        EXPECT_EQ(strlen(hdr) + ends, xmpp_in_offset(in));
        EXPECT_EQ(xmpp_in_offset(in), xmpp_in_safe(in));
        xmpp_in_free(in);
    }
}

TEST_MAIN(resume_continues_exactly, resume_refusals, trim_after_every_feed, trim_keeps_the_rules,
          distinct_names_stay_bounded)
