/* region.c: bump allocation in one private anonymous mapping; see region.h. */
#include "region.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

/* Under AddressSanitizer the mapping starts poisoned; each block is unpoisoned when handed
 * out and poisoned again when released, with a poisoned gap after it, so overflows and uses
 * after release are still caught as they are for malloc's blocks. */
#if defined(__SANITIZE_ADDRESS__)
#define XTP_REGION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XTP_REGION_ASAN 1
#endif
#endif
#ifdef XTP_REGION_ASAN
#include <sanitizer/asan_interface.h>
#define REDZONE        32
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define REDZONE        0
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 16

struct region {
    size_t size; /* bytes mapped, this header included */
    size_t top;  /* offset of the first free byte */
    size_t last; /* offset of the last block allocated (0: none) */
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* The header's own bytes, rounded so that blocks stay aligned. */
#define HEAD ((sizeof(struct region) + ALIGN - 1) / ALIGN * ALIGN)

struct region *region_new(size_t reserve)
{
    long page = sysconf(_SC_PAGESIZE);
    struct region *r;
    size_t size;

    if (page <= 0 || reserve > SIZE_MAX / 2)
        return NULL;
    size = round_up(reserve + HEAD, (size_t)page);
    r = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
             0);
    if (r == MAP_FAILED)
        return NULL;
    r->size = size;
    r->top = HEAD;
    r->last = 0;
    POISON((char *)r + HEAD, size - HEAD);
    return r;
}

void region_free(struct region *r)
{
    size_t size;

    if (r == NULL)
        return;
    size = r->size;
    UNPOISON(r, size); /* the shadow must be clean for whatever is mapped here next */
    munmap(r, size);
}

/* Bytes a block of n takes, its gap under ASan included. */
static size_t span(size_t n)
{
    return round_up((n == 0 ? 1 : n) + REDZONE, ALIGN);
}

void *region_alloc(struct region *r, size_t n)
{
    size_t need;

    if (n > r->size)
        return NULL;
    need = span(n);
    if (need > r->size - r->top)
        return NULL;
    r->last = r->top;
    r->top += need;
    UNPOISON((char *)r + r->last, n);
    return (char *)r + r->last;
}

int region_owns(const struct region *r, const void *p)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)r + HEAD, hi = (uintptr_t)r + r->size;

    return a >= lo && a < hi;
}

static int is_last(const struct region *r, const void *p)
{
    return r->last != 0 && (const char *)p == (const char *)r + r->last;
}

void *region_realloc(struct region *r, void *p, size_t old, size_t n)
{
    void *q;

    if (p == NULL)
        return region_alloc(r, n);
    if (is_last(r, p)) {
        if (n > r->size || span(n) > r->size - r->last)
            return NULL;
        POISON(p, r->top - r->last);
        r->top = r->last + span(n);
        UNPOISON(p, n);
        return p;
    }
    q = region_alloc(r, n);
    if (q != NULL) {
        memcpy(q, p, old < n ? old : n);
        POISON(p, old); /* dead until region_free() */
    }
    return q;
}

void region_release(struct region *r, void *p, size_t n)
{
    if (p == NULL)
        return;
    POISON(p, n);
    if (is_last(r, p)) {
        r->top = r->last;
        r->last = 0; /* the block before is not known: only one step back */
    }
}

size_t region_used(const struct region *r)
{
    return r->top - HEAD;
}

size_t region_size(const struct region *r)
{
    return r->size - HEAD;
}
