/* test_dialback.c: XEP-0185 keys and the secret file. Known answers: the XEP-0185 §3 example,
 * and one computed independently with Python:
 *   k = hashlib.sha256(b'correct horse battery staple').hexdigest()
 *   hmac.new(k.encode(), b'other.test example.test 3Jq8aZk-Lw', hashlib.sha256).hexdigest() */
#include "dialback.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "test.h"

#define XEP_KEY "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"

static char dir[64];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        TEST_FAIL_("cannot write %s", path);
    if (fd >= 0) {
        fchmod(fd, mode);
        close(fd);
    }
}

TEST(setup)
{
    snprintf(dir, sizeof(dir), "/tmp/xtp-dialback-XXXXXX");
    EXPECT(mkdtemp(dir) != NULL);
}

TEST(known_answers)
{
    struct dialback d;
    char key[DIALBACK_KEY_LEN + 1];

    dialback_init(&d, "s3cr3tf0rd14lb4ck", strlen("s3cr3tf0rd14lb4ck"));
    EXPECT_MEM("a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc", 64, d.k, 64);
    dialback_key(&d, "xmpp.example.com", "example.org", "D60000229F", key);
    EXPECT_STR(XEP_KEY, key);

    dialback_init(&d, "correct horse battery staple", strlen("correct horse battery staple"));
    dialback_key(&d, "other.test", "example.test", "3Jq8aZk-Lw", key);
    EXPECT_STR("4e9161fb800c3d379b8542602061f8c7a317464cafe82e432681e0062782ad7c", key);
}

TEST(check)
{
    struct dialback d;
    char bad[DIALBACK_KEY_LEN + 2];

    dialback_init(&d, "s3cr3tf0rd14lb4ck", strlen("s3cr3tf0rd14lb4ck"));
    EXPECT(dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F", XEP_KEY));
    /* Roles swapped, another stream, another receiving server. */
    EXPECT(!dialback_check(&d, "example.org", "xmpp.example.com", "D60000229F", XEP_KEY));
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229G", XEP_KEY));
    EXPECT(!dialback_check(&d, "example.com", "example.org", "D60000229F", XEP_KEY));
    /* The separators matter: "ab" + "c" is not "a" + "bc". */
    {
        char k1[DIALBACK_KEY_LEN + 1], k2[DIALBACK_KEY_LEN + 1];

        dialback_key(&d, "a.test", "b.test", "xy", k1);
        dialback_key(&d, "a.test", "b.testx", "y", k2);
        EXPECT(strcmp(k1, k2) != 0);
    }
    /* One wrong digit, at either end. */
    memcpy(bad, XEP_KEY, sizeof(XEP_KEY));
    bad[0] = '4';
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F", bad));
    memcpy(bad, XEP_KEY, sizeof(XEP_KEY));
    bad[63] = '4';
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F", bad));
    /* Wrong lengths, upper case, NULL. */
    memcpy(bad, XEP_KEY, sizeof(XEP_KEY));
    bad[63] = '\0';
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F", bad));
    memcpy(bad, XEP_KEY, sizeof(XEP_KEY));
    bad[64] = '0';
    bad[65] = '\0';
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F", bad));
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F", ""));
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F", NULL));
    EXPECT(!dialback_check(&d, "xmpp.example.com", "example.org", "D60000229F",
                           "37C69B1CF07A3F67C04A5EF5902FA5114F2C76FE4A2686482BA5B89323075643"));
}

TEST(load_existing)
{
    static const char *const texts[] = {"s3cr3tf0rd14lb4ck\n", "s3cr3tf0rd14lb4ck",
                                        "s3cr3tf0rd14lb4ck\r\n"};
    char path[128], err[256], key[DIALBACK_KEY_LEN + 1];
    struct dialback d;

    path_of(path, sizeof(path), "existing");
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        write_file(path, texts[i], 0600);
        memset(&d, 0, sizeof(d));
        EXPECT_EQ_MSG(0, dialback_load(&d, path, err, sizeof(err)), "%zu: %s", i, err);
        dialback_key(&d, "xmpp.example.com", "example.org", "D60000229F", key);
        EXPECT_STR_MSG(XEP_KEY, key, "text %zu", i);
    }
    /* Only one newline goes: a secret may itself end in blank lines. */
    write_file(path, "s3cr3tf0rd14lb4ck\n\n", 0400);
    EXPECT_EQ(0, dialback_load(&d, path, err, sizeof(err)));
    dialback_key(&d, "xmpp.example.com", "example.org", "D60000229F", key);
    EXPECT(strcmp(XEP_KEY, key) != 0);
    unlink(path);
}

TEST(load_creates)
{
    char path[128], err[256], text[80] = "";
    struct dialback a, b, c;
    struct stat st;
    FILE *f;

    path_of(path, sizeof(path), "created");
    EXPECT_EQ(0, dialback_load(&a, path, err, sizeof(err)));
    EXPECT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    f = fopen(path, "r");
    EXPECT(f != NULL && fgets(text, sizeof(text), f) != NULL);
    if (f != NULL)
        fclose(f);
    EXPECT_EQ(65, strlen(text));
    EXPECT_EQ(64, strspn(text, "0123456789abcdef"));
    EXPECT(text[64] == '\n');
    /* A second load, as another instance would do, reads the same secret. */
    EXPECT_EQ(0, dialback_load(&b, path, err, sizeof(err)));
    EXPECT(memcmp(a.k, b.k, sizeof(a.k)) == 0);
    /* And the secret is what the file says. */
    text[64] = '\0';
    dialback_init(&c, text, 64);
    EXPECT(memcmp(a.k, c.k, sizeof(a.k)) == 0);
    unlink(path);
    /* A new file gets a new secret. */
    EXPECT_EQ(0, dialback_load(&c, path, err, sizeof(err)));
    EXPECT(memcmp(a.k, c.k, sizeof(a.k)) != 0);
    unlink(path);
}

TEST(load_refuses)
{
    static const struct {
        const char *text;
        mode_t mode;
        const char *msg; /* after "PATH: " */
    } rows[] = {
        {"secret\n", 0644, "mode 0644, must not be readable or writable by group or others"},
        {"secret\n", 0640, "mode 0640, must not be readable or writable by group or others"},
        {"secret\n", 0604, "mode 0604, must not be readable or writable by group or others"},
        {"secret\n", 0620, "mode 0620, must not be readable or writable by group or others"},
        {"", 0600, "empty secret"},
        {"\n", 0600, "empty secret"},
        {"\r\n", 0600, "empty secret"},
    };
    char path[128], err[256], want[512];
    struct dialback d;

    path_of(path, sizeof(path), "refused");
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        write_file(path, rows[i].text, rows[i].mode);
        err[0] = '\0';
        EXPECT_EQ_MSG(XTP_ECONFIG, dialback_load(&d, path, err, sizeof(err)), "row %zu", i);
        snprintf(want, sizeof(want), "%s: %s", path, rows[i].msg);
        EXPECT_STR_MSG(want, err, "row %zu", i);
    }
    /* Too long. */
    {
        static char big[5000];

        memset(big, 'x', sizeof(big) - 1);
        write_file(path, big, 0600);
        EXPECT_EQ(XTP_ECONFIG, dialback_load(&d, path, err, sizeof(err)));
        snprintf(want, sizeof(want), "%s: longer than 4096 bytes", path);
        EXPECT_STR(want, err);
        big[4096] = '\0'; /* exactly the limit is fine */
        write_file(path, big, 0600);
        EXPECT_EQ(0, dialback_load(&d, path, err, sizeof(err)));
    }
    unlink(path);
    /* A folder that does not exist: the error names the file. */
    path_of(path, sizeof(path), "no/such/secret");
    EXPECT_EQ(-ENOENT, dialback_load(&d, path, err, sizeof(err)));
    EXPECT(strncmp(err, path, strlen(path)) == 0);
    /* A folder is not a secret. */
    EXPECT_EQ(XTP_ECONFIG, dialback_load(&d, dir, err, sizeof(err)));
}

/* Several instances creating the secret at once agree on one. */
#define RACERS 8
static pthread_barrier_t start;
static char race_path[128];
static struct dialback raced[RACERS];
static int race_rc[RACERS];

static void *racer(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    char err[256];

    pthread_barrier_wait(&start);
    race_rc[i] = dialback_load(&raced[i], race_path, err, sizeof(err));
    return NULL;
}

TEST(concurrent_create)
{
    pthread_t t[RACERS];

    path_of(race_path, sizeof(race_path), "raced");
    pthread_barrier_init(&start, NULL, RACERS);
    for (size_t i = 0; i < RACERS; i++)
        pthread_create(&t[i], NULL, racer, (void *)(uintptr_t)i);
    for (size_t i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (size_t i = 0; i < RACERS; i++) {
        EXPECT_EQ_MSG(0, race_rc[i], "racer %zu", i);
        EXPECT_MSG(memcmp(raced[0].k, raced[i].k, sizeof(raced[0].k)) == 0, "racer %zu", i);
    }
    unlink(race_path);
}

TEST(teardown)
{
    /* Every test removed its files; a leftover temporary file would make this fail. */
    EXPECT_EQ(0, rmdir(dir));
}

TEST_MAIN(setup, known_answers, check, load_existing, load_creates, load_refuses, concurrent_create,
          teardown)
