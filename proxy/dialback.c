/* dialback.c: XEP-0185 dialback keys from one secret file. tests: test_dialback.c */
#include "dialback.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "err.h"

#define SECRET_MAX    4096 /* bytes of secret file we accept */
#define SECRET_RANDOM 32   /* random bytes in a secret we create */
#define SHA256_BLOCK  64   /* HMAC block size B of RFC 2104 */

static const char hex[] = "0123456789abcdef";

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
}

void dialback_init(struct dialback *d, const void *secret, size_t len)
{
    uint8_t h[32];

    mbedtls_sha256(secret, len, h, 0);
    to_hex(h, sizeof(h), d->k);
    explicit_bzero(h, sizeof(h));
}

/* HMAC-SHA256 (RFC 2104) over "receiving originating id". The key is always the 64 hex
 * digits of d->k, exactly one SHA-256 block, so it needs neither hashing nor padding. Written
 * on the SHA-256 context, rather than mbedtls_md's HMAC, because that allocates and so could
 * fail; this cannot. */
void dialback_key(const struct dialback *d, const char *receiving, const char *originating,
                  const char *id, char out[DIALBACK_KEY_LEN + 1])
{
    mbedtls_sha256_context c;
    uint8_t pad[SHA256_BLOCK], inner[32], mac[32];

    mbedtls_sha256_init(&c);
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = (uint8_t)d->k[i] ^ 0x36;
    mbedtls_sha256_starts(&c, 0);
    mbedtls_sha256_update(&c, pad, sizeof(pad));
    mbedtls_sha256_update(&c, (const uint8_t *)receiving, strlen(receiving));
    mbedtls_sha256_update(&c, (const uint8_t *)" ", 1);
    mbedtls_sha256_update(&c, (const uint8_t *)originating, strlen(originating));
    mbedtls_sha256_update(&c, (const uint8_t *)" ", 1);
    mbedtls_sha256_update(&c, (const uint8_t *)id, strlen(id));
    mbedtls_sha256_finish(&c, inner);
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = (uint8_t)d->k[i] ^ 0x5c;
    mbedtls_sha256_starts(&c, 0);
    mbedtls_sha256_update(&c, pad, sizeof(pad));
    mbedtls_sha256_update(&c, inner, sizeof(inner));
    mbedtls_sha256_finish(&c, mac);
    mbedtls_sha256_free(&c);
    to_hex(mac, sizeof(mac), out);
    out[DIALBACK_KEY_LEN] = '\0';
    explicit_bzero(pad, sizeof(pad));
    explicit_bzero(inner, sizeof(inner));
}

bool dialback_check(const struct dialback *d, const char *receiving, const char *originating,
                    const char *id, const char *key)
{
    char want[DIALBACK_KEY_LEN + 1];
    unsigned char diff = 0;

    if (key == NULL || strnlen(key, DIALBACK_KEY_LEN + 1) != DIALBACK_KEY_LEN)
        return false;
    dialback_key(d, receiving, originating, id, want);
    for (size_t i = 0; i < DIALBACK_KEY_LEN; i++)
        diff |= (unsigned char)(want[i] ^ key[i]);
    return diff == 0;
}

/* Creates path with a fresh random secret, atomically: the content is complete before the
 * name appears, and when another process linked its own first we keep theirs. */
static int create_secret(const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX], text[2 * SECRET_RANDOM + 1];
    uint8_t raw[SECRET_RANDOM];
    size_t got = 0, off = 0;
    int fd, rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return XTP_ECONFIG;
    }
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: getrandom: %s", path, strerror(errno));
            return rc;
        }
        got += (size_t)n;
    }
    to_hex(raw, sizeof(raw), text);
    text[2 * SECRET_RANDOM] = '\n';
    explicit_bzero(raw, sizeof(raw));
    fd = mkstemp(tmp); /* mode 0600, O_EXCL */
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    while (off < sizeof(text)) {
        ssize_t n = write(fd, text + off, sizeof(text) - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    /* link() fails with EEXIST when another instance got there first: theirs stands. */
    if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST)
        rc = -errno;
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot write a new secret: %s", path, strerror(-rc));
    unlink(tmp);
out:
    explicit_bzero(text, sizeof(text));
    return rc;
}

int dialback_load(struct dialback *d, const char *path, char *err, size_t errlen)
{
    char buf[SECRET_MAX + 1];
    size_t len = 0;
    struct stat st;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        rc = create_secret(path, err, errlen);
        if (rc != 0)
            return rc;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        rc = XTP_ECONFIG;
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        snprintf(err, errlen, "%s: mode %04o, must not be readable or writable by group or others",
                 path, (unsigned)(st.st_mode & 07777));
        rc = XTP_ECONFIG;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof(buf)) {
            snprintf(err, errlen, "%s: longer than %d bytes", path, SECRET_MAX);
            rc = XTP_ECONFIG;
            goto out;
        }
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    if (len == 0) {
        snprintf(err, errlen, "%s: empty secret", path);
        rc = XTP_ECONFIG;
        goto out;
    }
    dialback_init(d, buf, len);
out:
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return rc;
}
