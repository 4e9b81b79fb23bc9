/* test_region.c: bump allocation in one mapping (region.c), as xmpp_in uses it for expat. */
#include "region.h"

#include <stdint.h>
#include <string.h>

#include "test.h"

TEST(alloc_aligned_and_bounded)
{
    struct region *r = region_new(10000);
    size_t cap;
    char *a, *b;

    EXPECT(r != NULL);
    cap = region_size(r);
    EXPECT(cap >= 10000);
    EXPECT_EQ(0, region_used(r));
    a = region_alloc(r, 1);
    b = region_alloc(r, 100);
    EXPECT(a != NULL && b != NULL && b > a);
    EXPECT_EQ(0, (uintptr_t)a % 16);
    EXPECT_EQ(0, (uintptr_t)b % 16);
    EXPECT(region_owns(r, a) && region_owns(r, b + 99));
    EXPECT(!region_owns(r, r) && !region_owns(r, (char *)r + cap + 4096));
    memset(b, 0x5a, 100);
    EXPECT(region_used(r) >= 116);
    EXPECT(region_alloc(r, cap) == NULL); /* too big: NULL, nothing used */
    while (region_alloc(r, 1000) != NULL)
        ;
    EXPECT(region_used(r) <= cap);
    EXPECT(region_used(r) + 1100 > cap);
    EXPECT(b[99] == 0x5a);
    region_free(r);
    region_free(NULL);
}

TEST(realloc_in_place_or_copied)
{
    struct region *r = region_new(1 << 16);
    char *a, *b, *c, *d;
    size_t used;

    a = region_alloc(r, 64);
    memset(a, 'a', 64);
    b = region_realloc(r, a, 64, 4000); /* last block: grows in place */
    EXPECT(b == a);
    EXPECT(b[63] == 'a');
    used = region_used(r);
    b = region_realloc(r, b, 4000, 32); /* and shrinks in place */
    EXPECT(b == a);
    EXPECT(region_used(r) < used);
    c = region_alloc(r, 16);
    d = region_realloc(r, b, 32, 200); /* not last: a new block with the old bytes */
    EXPECT(d != b && d > c);
    EXPECT(memcmp(d, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 32) == 0);
    EXPECT(region_realloc(r, d, 200, (size_t)1 << 20) == NULL); /* full: p untouched */
    EXPECT(d[0] == 'a');
    EXPECT(region_realloc(r, NULL, 0, 8) != NULL); /* NULL: an allocation */
    region_free(r);
}

TEST(release_last_only)
{
    struct region *r = region_new(4096);
    char *a = region_alloc(r, 100), *b;
    size_t used = region_used(r);

    b = region_alloc(r, 100);
    region_release(r, b, 100); /* last: gone */
    EXPECT_EQ(used, region_used(r));
    EXPECT(region_alloc(r, 100) == b); /* reused */
    region_release(r, a, 100);         /* not last: stays used */
    EXPECT(region_used(r) > used);
    region_release(r, NULL, 0);
    region_free(r);
    EXPECT(region_new(SIZE_MAX) == NULL);
}

TEST_MAIN(alloc_aligned_and_bounded, realloc_in_place_or_copied, release_last_only)
