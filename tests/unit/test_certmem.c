/* test_certmem.c: the remote certificate memory and its state file. */
#include "certmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define FP_C "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char dir[64];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) < 0)
        TEST_FAIL_("cannot write %s", path);
    if (f != NULL)
        fclose(f);
}

/* The file's whole text, or "" (static buffer). */
static const char *read_file(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = 0;

    if (f != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

TEST(setup)
{
    snprintf(dir, sizeof(dir), "/tmp/xtp-certmem-XXXXXX");
    EXPECT(mkdtemp(dir) != NULL);
}

TEST(seen_changed_pinned)
{
    char path[128], err[256], old[65];
    struct certmem *m;

    path_of(path, sizeof(path), "state");
    m = certmem_open(path, err, sizeof(err));
    EXPECT_MSG(m != NULL, "%s", err);
    if (m == NULL)
        return;
    EXPECT_EQ(0, certmem_count(m));
    EXPECT_EQ(CERTMEM_NEW, certmem_check(m, "other.test", FP_A, true, old));
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "other.test", FP_A, true, old));
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "Other.TEST", FP_A, true, old));
    /* A change, remembered. */
    EXPECT_EQ(CERTMEM_CHANGED, certmem_check(m, "other.test", FP_B, true, old));
    EXPECT_STR(FP_A, old);
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "other.test", FP_B, true, NULL));
    /* A change, pinned: the old one stays. */
    EXPECT_EQ(CERTMEM_CHANGED, certmem_check(m, "other.test", FP_C, false, old));
    EXPECT_STR(FP_B, old);
    EXPECT_EQ(CERTMEM_CHANGED, certmem_check(m, "other.test", FP_C, false, NULL));
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "other.test", FP_B, false, NULL));
    EXPECT_EQ(CERTMEM_NEW, certmem_check(m, "a.test", FP_C, false, NULL));
    EXPECT_EQ(2, certmem_count(m));
    certmem_free(m);
    /* Nothing was flushed: the file does not exist. */
    EXPECT(access(path, F_OK) != 0);
}

TEST(flush_and_reload)
{
    char path[128], err[256];
    struct certmem *m;
    struct stat st1, st2;

    path_of(path, sizeof(path), "state");
    m = certmem_open(path, err, sizeof(err));
    if (m == NULL) {
        TEST_FAIL_("%s", err);
        return;
    }
    EXPECT_EQ(CERTMEM_NEW, certmem_check(m, "zed.test", FP_A, true, NULL));
    EXPECT_EQ(CERTMEM_NEW, certmem_check(m, "Alpha.test", FP_B, true, NULL));
    EXPECT_EQ(0, certmem_flush(m));
    EXPECT_STR("alpha.test " FP_B "\nzed.test " FP_A "\n", read_file(path));
    EXPECT(stat(path, &st1) == 0 && (st1.st_mode & 0777) == 0600);
    /* Clean: no new file. */
    EXPECT_EQ(0, certmem_flush(m));
    EXPECT(stat(path, &st2) == 0 && st1.st_ino == st2.st_ino);
    /* Unchanged checks and pinned changes leave it clean. */
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "zed.test", FP_A, true, NULL));
    EXPECT_EQ(CERTMEM_CHANGED, certmem_check(m, "zed.test", FP_C, false, NULL));
    EXPECT_EQ(0, certmem_flush(m));
    EXPECT(stat(path, &st2) == 0 && st1.st_ino == st2.st_ino);
    EXPECT_EQ(CERTMEM_CHANGED, certmem_check(m, "zed.test", FP_C, true, NULL));
    EXPECT_EQ(0, certmem_flush(m));
    EXPECT_STR("alpha.test " FP_B "\nzed.test " FP_C "\n", read_file(path));
    certmem_free(m);

    m = certmem_open(path, err, sizeof(err));
    EXPECT_MSG(m != NULL, "%s", err);
    if (m == NULL)
        return;
    EXPECT_EQ(2, certmem_count(m));
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "zed.test", FP_C, true, NULL));
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "alpha.test", FP_B, true, NULL));
    certmem_free(m);
    unlink(path);
}

TEST(malformed_files)
{
    static const struct {
        const char *text, *msg; /* msg after "PATH" */
    } rows[] = {
        {"a.test " FP_A "\nb.test\n", ":2: expected \"DOMAIN SHA256HEX\""},
        {"a.test  " FP_A "\n", ":1: expected \"DOMAIN SHA256HEX\""},
        {"a.test " FP_A " \n", ":1: expected \"DOMAIN SHA256HEX\""},
        {"a.test " FP_A "a\n", ":1: expected \"DOMAIN SHA256HEX\""},
        {"a.test AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
         ":1: expected \"DOMAIN SHA256HEX\""},
        {"a.test " FP_A "\n\n", ":2: expected \"DOMAIN SHA256HEX\""},
        {" " FP_A "\n", ":1: expected \"DOMAIN SHA256HEX\""},
        {"a\ttest " FP_A "\n", ":1: expected \"DOMAIN SHA256HEX\""},
        {"a.test " FP_A "\nA.TEST " FP_B "\n", ":2: A.TEST listed twice"},
    };
    char path[128], err[256], want[512];

    path_of(path, sizeof(path), "bad");
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct certmem *m;

        write_file(path, rows[i].text);
        err[0] = '\0';
        m = certmem_open(path, err, sizeof(err));
        EXPECT_MSG(m == NULL, "row %zu", i);
        certmem_free(m);
        snprintf(want, sizeof(want), "%s%s", path, rows[i].msg);
        EXPECT_STR_MSG(want, err, "row %zu", i);
    }
    /* A line longer than any valid one. */
    {
        char text[600];

        memset(text, 'a', sizeof(text) - 2);
        text[sizeof(text) - 2] = '\n';
        text[sizeof(text) - 1] = '\0';
        write_file(path, text);
        EXPECT(certmem_open(path, err, sizeof(err)) == NULL);
        snprintf(want, sizeof(want), "%s:1: line too long", path);
        EXPECT_STR(want, err);
    }
    /* The longest domain is fine; a last line without its newline too. */
    {
        char text[400];
        struct certmem *m;

        memset(text, 'd', CERTMEM_DOMAIN_MAX);
        snprintf(text + CERTMEM_DOMAIN_MAX, sizeof(text) - CERTMEM_DOMAIN_MAX, " %s", FP_A);
        write_file(path, text);
        m = certmem_open(path, err, sizeof(err));
        EXPECT_MSG(m != NULL, "%s", err);
        if (m != NULL)
            EXPECT_EQ(1, certmem_count(m));
        certmem_free(m);
    }
    unlink(path);
    /* A folder we cannot write to (here: one that does not exist). */
    path_of(path, sizeof(path), "nowhere/state");
    EXPECT(certmem_open(path, err, sizeof(err)) == NULL);
    EXPECT(strstr(err, "is not writable") != NULL);
}

TEST(bad_arguments)
{
    char path[128], err[256], longname[CERTMEM_DOMAIN_MAX + 2];
    struct certmem *m;

    path_of(path, sizeof(path), "args");
    m = certmem_open(path, err, sizeof(err));
    if (m == NULL) {
        TEST_FAIL_("%s", err);
        return;
    }
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    EXPECT_EQ(-EINVAL, certmem_check(m, "", FP_A, true, NULL));
    EXPECT_EQ(-EINVAL, certmem_check(m, longname, FP_A, true, NULL));
    EXPECT_EQ(-EINVAL, certmem_check(m, "a b", FP_A, true, NULL));
    EXPECT_EQ(-EINVAL, certmem_check(m, "a\n", FP_A, true, NULL));
    EXPECT_EQ(-EINVAL, certmem_check(m, "a.test", "abc", true, NULL));
    EXPECT_EQ(-EINVAL, certmem_check(m, "a.test", FP_A "0", true, NULL));
    EXPECT_EQ(-EINVAL,
              certmem_check(m, "a.test",
                            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                            true, NULL));
    EXPECT_EQ(0, certmem_count(m));
    longname[CERTMEM_DOMAIN_MAX] = '\0';
    EXPECT_EQ(CERTMEM_NEW, certmem_check(m, longname, FP_A, true, NULL));
    certmem_free(m);
}

TEST(flush_failure_retried)
{
    char path[128], err[256];
    struct certmem *m;

    path_of(path, sizeof(path), "blocked");
    m = certmem_open(path, err, sizeof(err));
    if (m == NULL) {
        TEST_FAIL_("%s", err);
        return;
    }
    EXPECT_EQ(CERTMEM_NEW, certmem_check(m, "a.test", FP_A, true, NULL));
    /* A folder in the file's place: rename() cannot replace it. */
    EXPECT(mkdir(path, 0700) == 0);
    EXPECT(certmem_flush(m) < 0);
    EXPECT(rmdir(path) == 0);
    /* Still dirty: the next flush writes. */
    EXPECT_EQ(0, certmem_flush(m));
    EXPECT_STR("a.test " FP_A "\n", read_file(path));
    certmem_free(m);
    unlink(path);
}

TEST(limit)
{
    char path[128], err[256], name[32];
    struct certmem *m;
    int rc = 0;

    path_of(path, sizeof(path), "full");
    m = certmem_open(path, err, sizeof(err));
    if (m == NULL) {
        TEST_FAIL_("%s", err);
        return;
    }
    for (int i = 0; i < CERTMEM_MAX && rc == 0; i++) {
        snprintf(name, sizeof(name), "d%d.test", i);
        rc = certmem_check(m, name, FP_A, true, NULL);
    }
    EXPECT_EQ(CERTMEM_NEW, rc);
    EXPECT_EQ(CERTMEM_MAX, certmem_count(m));
    EXPECT_EQ(-ENOSPC, certmem_check(m, "one-more.test", FP_A, true, NULL));
    EXPECT_EQ(CERTMEM_SAME, certmem_check(m, "d77.test", FP_A, true, NULL));
    EXPECT_EQ(CERTMEM_CHANGED, certmem_check(m, "d99999.test", FP_B, true, NULL));
    certmem_free(m);
}

#define THREADS    4
#define PER_THREAD 500
static struct certmem *shared;
static int thread_errors;

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    char name[32];

    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(name, sizeof(name), "t%d-%d.test", t, i);
        if (certmem_check(shared, name, FP_A, true, NULL) != CERTMEM_NEW ||
            certmem_check(shared, "common.test", i % 2 ? FP_A : FP_B, true, NULL) < 0)
            __atomic_add_fetch(&thread_errors, 1, __ATOMIC_RELAXED);
        if (i % 100 == 0 && certmem_flush(shared) != 0)
            __atomic_add_fetch(&thread_errors, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

TEST(threads)
{
    char path[128], err[256];
    pthread_t th[THREADS];
    struct certmem *m;

    path_of(path, sizeof(path), "shared");
    shared = certmem_open(path, err, sizeof(err));
    if (shared == NULL) {
        TEST_FAIL_("%s", err);
        return;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    EXPECT_EQ(0, thread_errors);
    EXPECT_EQ(THREADS * PER_THREAD + 1, certmem_count(shared));
    EXPECT_EQ(0, certmem_flush(shared));
    certmem_free(shared);
    m = certmem_open(path, err, sizeof(err));
    EXPECT_MSG(m != NULL, "%s", err);
    if (m != NULL)
        EXPECT_EQ(THREADS * PER_THREAD + 1, certmem_count(m));
    certmem_free(m);
    unlink(path);
}

TEST(teardown)
{
    /* Every test removed its files; a leftover temporary file would make this fail. */
    EXPECT_EQ(0, rmdir(dir));
}

TEST_MAIN(setup, seen_changed_pinned, flush_and_reload, malformed_files, bad_arguments,
          flush_failure_retried, limit, threads, teardown)
