/* test.h: a minimal unit-test harness. Each test file defines TEST(name) functions and ends
 * with TEST_MAIN(name, name, ...). EXPECT_* print both values with file:line and keep going;
 * the binary exits 1 if any expectation failed. */
#ifndef XTP_TEST_H
#define XTP_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int test_failures;
static const char *test_current;

#define TEST(name) static void test_##name(void)

#define TEST_FAIL_(fmt, ...)                                                                       \
    do {                                                                                           \
        test_failures++;                                                                           \
        fprintf(stderr, "%s:%d: %s: " fmt "\n", __FILE__, __LINE__, test_current, __VA_ARGS__);    \
    } while (0)

#define EXPECT_MSG(cond, fmt, ...)                                                                 \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TEST_FAIL_("expected %s: " fmt, #cond, __VA_ARGS__);                                   \
    } while (0)
#define EXPECT(cond) EXPECT_MSG(cond, "%s", "")

#define EXPECT_EQ_MSG(want, got, fmt, ...)                                                         \
    do {                                                                                           \
        long long w_ = (long long)(want), g_ = (long long)(got);                                   \
        if (w_ != g_)                                                                              \
            TEST_FAIL_("%s == %s: want %lld, got %lld; " fmt, #want, #got, w_, g_, __VA_ARGS__);   \
    } while (0)
#define EXPECT_EQ(want, got) EXPECT_EQ_MSG(want, got, "%s", "")

#define EXPECT_STR_MSG(want, got, fmt, ...)                                                        \
    do {                                                                                           \
        const char *w_ = (want), *g_ = (got);                                                      \
        if ((w_ == NULL) != (g_ == NULL) || (w_ && strcmp(w_, g_) != 0))                           \
            TEST_FAIL_("%s == %s: want \"%s\", got \"%s\"; " fmt, #want, #got, w_ ? w_ : "(null)", \
                       g_ ? g_ : "(null)", __VA_ARGS__);                                           \
    } while (0)
#define EXPECT_STR(want, got) EXPECT_STR_MSG(want, got, "%s", "")

/* Memory compare with both sides printed as text (they are XML in our tests). */
#define EXPECT_MEM(want, wlen, got, glen)                                                          \
    do {                                                                                           \
        size_t wl_ = (wlen), gl_ = (glen);                                                         \
        if (wl_ != gl_ || memcmp((want), (got), wl_) != 0)                                         \
            TEST_FAIL_("bytes differ:\n  want [%.*s]\n  got  [%.*s]", (int)wl_,                    \
                       (const char *)(want), (int)gl_, (const char *)(got));                       \
    } while (0)

/* Reads tests/unit/data/NAME (from $XTP_SRC, else relative to tests/unit, where ctest runs the
 * tests) into a malloc'ed, NUL-terminated buffer; *len gets its size. NULL, and a test
 * failure, when it cannot. */
static inline uint8_t *test_read_data(const char *name, size_t *len)
{
    const char *src = getenv("XTP_SRC");
    char path[1024];
    uint8_t *buf = NULL;
    long n;
    FILE *f;

    if (src != NULL)
        snprintf(path, sizeof(path), "%s/tests/unit/data/%s", src, name);
    else
        snprintf(path, sizeof(path), "data/%s", name);
    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        TEST_FAIL_("cannot read %s", path);
        free(buf);
        buf = NULL;
        n = 0;
    }
    if (f != NULL)
        fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

#define TEST_RUN_(name)                                                                            \
    do {                                                                                           \
        int before_ = test_failures;                                                               \
        test_current = #name;                                                                      \
        test_##name();                                                                             \
        printf("%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #name);                      \
    } while (0)

#define TEST_MAIN(...)                                                                             \
    int main(void)                                                                                 \
    {                                                                                              \
        TEST_RUN_LIST_(__VA_ARGS__);                                                               \
        printf("%d failure(s)\n", test_failures);                                                  \
        return test_failures ? 1 : 0;                                                              \
    }

/* Up to 24 tests per file. */
#define TEST_RUN_LIST_(...)                                                                        \
    TEST_FE_(__VA_ARGS__, TEST_FE24_, TEST_FE23_, TEST_FE22_, TEST_FE21_, TEST_FE20_, TEST_FE19_,  \
             TEST_FE18_, TEST_FE17_, TEST_FE16_, TEST_FE15_, TEST_FE14_, TEST_FE13_, TEST_FE12_,   \
             TEST_FE11_, TEST_FE10_, TEST_FE9_, TEST_FE8_, TEST_FE7_, TEST_FE6_, TEST_FE5_,        \
             TEST_FE4_, TEST_FE3_, TEST_FE2_, TEST_FE1_)                                           \
    (__VA_ARGS__)
#define TEST_FE_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18,  \
                 _19, _20, _21, _22, _23, _24, N, ...)                                             \
    N
#define TEST_FE1_(a) TEST_RUN_(a)
#define TEST_FE2_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE1_(__VA_ARGS__)
#define TEST_FE3_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE2_(__VA_ARGS__)
#define TEST_FE4_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE3_(__VA_ARGS__)
#define TEST_FE5_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE4_(__VA_ARGS__)
#define TEST_FE6_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE5_(__VA_ARGS__)
#define TEST_FE7_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE6_(__VA_ARGS__)
#define TEST_FE8_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE7_(__VA_ARGS__)
#define TEST_FE9_(a, ...)                                                                          \
    TEST_RUN_(a);                                                                                  \
    TEST_FE8_(__VA_ARGS__)
#define TEST_FE10_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE9_(__VA_ARGS__)
#define TEST_FE11_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE10_(__VA_ARGS__)
#define TEST_FE12_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE11_(__VA_ARGS__)
#define TEST_FE13_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE12_(__VA_ARGS__)
#define TEST_FE14_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE13_(__VA_ARGS__)
#define TEST_FE15_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE14_(__VA_ARGS__)
#define TEST_FE16_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE15_(__VA_ARGS__)
#define TEST_FE17_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE16_(__VA_ARGS__)
#define TEST_FE18_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE17_(__VA_ARGS__)
#define TEST_FE19_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE18_(__VA_ARGS__)
#define TEST_FE20_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE19_(__VA_ARGS__)
#define TEST_FE21_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE20_(__VA_ARGS__)
#define TEST_FE22_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE21_(__VA_ARGS__)
#define TEST_FE23_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE22_(__VA_ARGS__)
#define TEST_FE24_(a, ...)                                                                         \
    TEST_RUN_(a);                                                                                  \
    TEST_FE23_(__VA_ARGS__)

#endif
