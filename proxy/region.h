/* region.h: one private mapping for the many small blocks of one owner (an XML parser):
 * bump allocation, all given back at once. Pages become resident only when written, and
 * region_free() returns every one of them to the kernel: a short-lived owner among
 * long-lived sessions leaves no holes in the process heap (measured: bench/README.md,
 * "Memory per idle session"). Blocks are 16-byte aligned. A block freed or grown other than
 * the last one allocated stays used until region_free(), so an owner with churn must watch
 * region_used() and start over. Not thread-safe (one owner, one thread).
 * tests: test_region.c */
#ifndef XTP_REGION_H
#define XTP_REGION_H

#include <stddef.h>

struct region;

/* Reserves reserve bytes of address space (rounded up to pages; nothing is resident yet).
 * NULL when the mapping fails (address space, vm.max_map_count): callers fall back to malloc. */
struct region *region_new(size_t reserve);
void region_free(struct region *r); /* NULL is fine; every block is gone with it */

/* n bytes (16-byte aligned), zeroed on first use of the pages only as the kernel zeroes them:
 * contents are unspecified when a released tail is reused. NULL when the region is full. */
void *region_alloc(struct region *r, size_t n);

/* Grows or shrinks p (old bytes) to n: in place when p is the last block, else a new block
 * with the first min(old, n) bytes copied. NULL when full (p is then untouched). */
void *region_realloc(struct region *r, void *p, size_t old, size_t n);

/* Gives p (n bytes) back when it is the last block; otherwise it stays used. */
void region_release(struct region *r, void *p, size_t n);

/* Bytes used, released tails excluded, dead blocks included; and the reserve. */
size_t region_used(const struct region *r);
size_t region_size(const struct region *r);

/* True when p lies inside r's mapping. */
int region_owns(const struct region *r, const void *p);

#endif
