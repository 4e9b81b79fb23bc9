/* fuzz_http.c: http_req_feed() on arbitrary bytes, split at fuzzer-chosen points.
 *
 * Input layout: byte 0 gives the number of cuts (0-7, low three bits), then two bytes per cut
 * (little-endian offsets, taken modulo the stream length), then the byte stream a client
 * would send. The stream is parsed twice, whole and in the pieces the cuts make, the way
 * admin.c does it (after each complete request, http_req_next() and the remaining bytes);
 * both runs must describe the same requests and the same final error. Each outcome is
 * checked against what http_req.h promises: a GET with a path without query or fragment and
 * at most HTTP_REQ_MAX_URL bytes, at most HTTP_REQ_MAX_HEAD bytes per request, an error
 * status from the documented set, and never more bytes used than given. */
#include "http_req.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: invariant failed: %s\n", #cond);                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_CUTS 7

/* A digest of the outcome, to compare the two runs without storing every path. */
struct outcome {
    unsigned requests;
    uint64_t hash; /* FNV-1a over method, path, keep-alive and version of each request */
    int status;    /* the final error status, 0 if none */
    size_t used;   /* bytes consumed in total */
};

static void mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ull;
    }
}

static void check_request(const struct http_req *r, struct outcome *o, size_t req_bytes)
{
    const char *path = http_req_path(r);
    size_t plen = strlen(path);
    uint8_t ka = http_req_keep_alive(r), minor = (uint8_t)http_req_minor(r);

    CHECK(strcmp(http_req_method(r), "GET") == 0);
    CHECK(plen >= 1 && plen <= HTTP_REQ_MAX_URL);
    CHECK(strpbrk(path, "?#") == NULL);
    CHECK(minor <= 1);
    CHECK(req_bytes <= HTTP_REQ_MAX_HEAD);
    CHECK(http_req_status(r) == 0);
    o->requests++;
    mix(&o->hash, path, plen + 1);
    mix(&o->hash, &ka, 1);
    mix(&o->hash, &minor, 1);
}

static void run(const uint8_t *s, size_t len, const size_t *cuts, size_t ncuts, struct outcome *o)
{
    struct http_req *r = http_req_new();
    size_t start = 0, req_bytes = 0;

    CHECK(r != NULL);
    memset(o, 0, sizeof(*o));
    o->hash = 0xcbf29ce484222325ull;
    for (size_t k = 0; k <= ncuts && o->status == 0; k++) {
        size_t end = k < ncuts ? cuts[k] : len;

        while (start < end) {
            size_t used;
            enum http_req_result res = http_req_feed(r, s + start, end - start, &used);

            CHECK(used <= end - start);
            start += used;
            req_bytes += used;
            if (res == HTTP_REQ_MORE) {
                CHECK(start == end);
                break;
            }
            if (res == HTTP_REQ_ERROR) {
                int st = http_req_status(r);

                CHECK(st == 400 || st == 405 || st == 413 || st == 414 || st == 431 || st == 505);
                CHECK(http_req_error(r)[0] != '\0');
                /* The parser is spent: nothing more is consumed. */
                CHECK(http_req_feed(r, "GET", 3, &used) == HTTP_REQ_ERROR && used == 0);
                o->status = st;
                break;
            }
            CHECK(res == HTTP_REQ_DONE);
            check_request(r, o, req_bytes);
            CHECK(http_req_feed(r, "G", 1, &used) == HTTP_REQ_DONE && used == 0);
            http_req_next(r);
            req_bytes = 0;
        }
    }
    o->used = start;
    http_req_free(r);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t ncuts, cuts[MAX_CUTS], len;
    const uint8_t *s;
    struct outcome whole, split;

    if (size < 1)
        return 0;
    ncuts = data[0] & 7u;
    if (size < 1 + 2 * ncuts)
        return 0;
    s = data + 1 + 2 * ncuts;
    len = size - 1 - 2 * ncuts;
    for (size_t k = 0; k < ncuts; k++)
        cuts[k] = (size_t)(data[1 + 2 * k] | data[2 + 2 * k] << 8) % (len + 1);
    qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);

    run(s, len, NULL, 0, &whole);
    run(s, len, cuts, ncuts, &split);
    CHECK(whole.requests == split.requests);
    CHECK(whole.hash == split.hash);
    /* llhttp hands the target over when a piece ends or the target does: a target both too
     * long and malformed is a 414 if a piece ended inside it past the limit, else a 400. */
    CHECK(whole.status == split.status ||
          (whole.status + split.status == 400 + 414 && whole.status * split.status != 0));
    /* Where an error is noticed may depend on the pieces (llhttp reports a long target when a
     * piece ends), so the bytes used only agree when there was none. */
    CHECK(whole.status != 0 || whole.used == split.used);
    return 0;
}
