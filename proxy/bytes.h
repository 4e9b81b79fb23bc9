/* bytes.h: a contiguous byte buffer with a read offset, for data waiting to be parsed or
 * forwarded. Memory is given back when the buffer drains, so idle sessions hold none.
 * Not for data a pending uv_write() points at: appending may move the storage.
 * tests: test_bytes.c */
#ifndef XTP_BYTES_H
#define XTP_BYTES_H

#include <stddef.h>
#include <stdint.h>

struct bytes {
    uint8_t *buf; /* owned; NULL when empty and released */
    size_t off;   /* first unread byte */
    size_t len;   /* unread bytes, starting at buf + off */
    size_t cap;   /* allocated size of buf */
};

#define BYTES_INIT                                                                                 \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* Frees the storage; the buffer is empty and reusable afterwards. */
void bytes_cleanup(struct bytes *b);

static inline const uint8_t *bytes_data(const struct bytes *b)
{
    return b->buf + b->off;
}

static inline size_t bytes_len(const struct bytes *b)
{
    return b->len;
}

/* Appends len bytes. Returns 0 or -ENOMEM. */
int bytes_append(struct bytes *b, const void *data, size_t len);

/* Returns a pointer to at least want writable bytes after the data, or NULL (-ENOMEM).
 * *got receives the writable size (>= want). Follow with bytes_commit(). */
uint8_t *bytes_reserve(struct bytes *b, size_t want, size_t *got);

/* Marks n bytes written after a bytes_reserve() as data. */
void bytes_commit(struct bytes *b, size_t n);

/* Drops n bytes from the front (n <= len). Frees the storage once empty. */
void bytes_consume(struct bytes *b, size_t n);

#endif
