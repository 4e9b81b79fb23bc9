/* bytes.c: see bytes.h. */
#include "bytes.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void bytes_cleanup(struct bytes *b)
{
    free(b->buf);
    b->buf = NULL;
    b->off = b->len = b->cap = 0;
}

uint8_t *bytes_reserve(struct bytes *b, size_t want, size_t *got)
{
    size_t need, cap;
    uint8_t *nb;

    if (b->cap - b->off - b->len >= want)
        goto done;
    /* Slide the data to the front first: reading in place avoids growing. */
    if (b->off > 0) {
        memmove(b->buf, b->buf + b->off, b->len);
        b->off = 0;
        if (b->cap - b->len >= want)
            goto done;
    }
    need = b->len + want;
    if (need < b->len || need > SIZE_MAX / 2)
        return NULL;
    cap = b->cap ? b->cap : 1024;
    while (cap < need)
        cap *= 2;
    nb = realloc(b->buf, cap);
    if (nb == NULL)
        return NULL;
    b->buf = nb;
    b->cap = cap;
done:
    *got = b->cap - b->off - b->len;
    return b->buf + b->off + b->len;
}

void bytes_commit(struct bytes *b, size_t n)
{
    b->len += n;
}

int bytes_append(struct bytes *b, const void *data, size_t len)
{
    size_t got;
    uint8_t *p;

    if (len == 0)
        return 0;
    p = bytes_reserve(b, len, &got);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, data, len);
    bytes_commit(b, len);
    return 0;
}

void bytes_consume(struct bytes *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        bytes_cleanup(b);
}
