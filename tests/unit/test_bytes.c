/* Unit tests for bytes.c and err.c: the buffer every session's unforwarded input sits in. */
#include "bytes.h"
#include "err.h"

#include <errno.h>
#include <uv.h>

#include "test.h"

TEST(bytes_append_consume)
{
    struct bytes b = BYTES_INIT;

    EXPECT_EQ(0, bytes_len(&b));
    EXPECT_EQ(0, bytes_append(&b, "hello ", 6));
    EXPECT_EQ(0, bytes_append(&b, "world", 5));
    EXPECT_MEM("hello world", 11, bytes_data(&b), bytes_len(&b));
    bytes_consume(&b, 6);
    EXPECT_MEM("world", 5, bytes_data(&b), bytes_len(&b));
    bytes_consume(&b, 5);
    EXPECT_EQ(0, bytes_len(&b));
    EXPECT(b.buf == NULL); /* idle buffers hold no memory */
    bytes_cleanup(&b);
}

TEST(bytes_reserve_slides_before_growing)
{
    struct bytes b = BYTES_INIT;
    size_t got, cap;
    uint8_t *p;

    for (int i = 0; i < 1000; i++)
        EXPECT_EQ(0, bytes_append(&b, "x", 1));
    cap = b.cap;
    bytes_consume(&b, 900);
    p = bytes_reserve(&b, cap - 100, &got);
    EXPECT(p != NULL);
    EXPECT(got >= cap - 100);
    EXPECT_EQ(cap, b.cap); /* moved to the front instead of growing */
    EXPECT_EQ(0, b.off);
    memset(p, 'y', 3);
    bytes_commit(&b, 3);
    EXPECT_EQ(103, bytes_len(&b));
    EXPECT_EQ('y', bytes_data(&b)[102]);
    bytes_cleanup(&b);
}

TEST(bytes_large)
{
    struct bytes b = BYTES_INIT;
    static uint8_t blob[300000];

    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 7);
    EXPECT_EQ(0, bytes_append(&b, blob, sizeof(blob)));
    EXPECT_EQ(0, bytes_append(&b, blob, 10));
    EXPECT_EQ(sizeof(blob) + 10, bytes_len(&b));
    EXPECT(memcmp(bytes_data(&b), blob, sizeof(blob)) == 0);
    bytes_cleanup(&b);
    EXPECT_EQ(0, bytes_len(&b));
}

TEST(err_names)
{
    EXPECT_STR("EXML", xtp_err_name(XTP_EXML));
    EXPECT_STR("ECONFIG", xtp_err_name(XTP_ECONFIG));
    EXPECT_STR("ENOMEM", xtp_err_name(-ENOMEM));
    EXPECT_STR("ECONNREFUSED", xtp_err_name(UV_ECONNREFUSED));
    EXPECT_STR("OK", xtp_err_name(0));
    EXPECT_STR("malformed XML on the stream", xtp_strerror(XTP_EXML));
    EXPECT(strlen(xtp_strerror(XTP_ESTREAM)) > 0);
    /* Our codes never collide with libuv's. */
    EXPECT((int)XTP__EBASE < (int)UV_EOF && (int)XTP__EBASE < (int)UV_ECHARSET);
}

TEST_MAIN(bytes_append_consume, bytes_reserve_slides_before_growing, bytes_large, err_names)
