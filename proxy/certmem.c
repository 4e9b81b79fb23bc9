/* certmem.c: the remote certificate memory (certmem.h). An open-addressing hash table of
 * domain -> fingerprint under one mutex; writes rebuild the whole file atomically under a
 * second mutex, so checks never wait for the disk. tests: test_certmem.c */
#include "certmem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

#define FP_LEN       64
#define LINE_MAX_LEN (CERTMEM_DOMAIN_MAX + 1 + FP_LEN + 1)

struct entry {
    char fp[FP_LEN + 1];
    char domain[]; /* lower case, NUL-terminated */
};

struct certmem {
    pthread_mutex_t lock;       /* guards everything below but path */
    pthread_mutex_t write_lock; /* one certmem_flush() at a time, so renames stay in order */
    char *path;                 /* owned */
    struct entry **slot;        /* owned, cap entries, NULL = free */
    size_t cap, count;
    uint64_t version, written; /* changes made / the version the file holds */
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A domain as we store it: 1..253 bytes, no space, control character or DEL. Bytes >= 0x80
 * pass: an internationalised domain may come in UTF-8. */
static bool domain_ok(const char *s, size_t len)
{
    if (len == 0 || len > CERTMEM_DOMAIN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool fp_ok(const char *s, size_t len)
{
    if (len != FP_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* FNV-1a over the lower-cased domain. */
static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)lower(s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding domain, or the free slot where it would go. cap is a power of two and the
 * table is never more than half full, so the probe ends. */
static struct entry **find(struct certmem *m, const char *d, size_t len)
{
    size_t i = (size_t)hash(d, len) & (m->cap - 1);

    for (;; i = (i + 1) & (m->cap - 1)) {
        struct entry *e = m->slot[i];
        size_t k;

        if (e == NULL)
            return &m->slot[i];
        for (k = 0; k < len && e->domain[k] != '\0' && e->domain[k] == lower(d[k]); k++)
            ;
        if (k == len && e->domain[k] == '\0')
            return &m->slot[i];
    }
}

static int grow(struct certmem *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    struct entry **ns = calloc(ncap, sizeof(*ns)), **old = m->slot;
    size_t ocap = m->cap;

    if (ns == NULL)
        return -ENOMEM;
    m->slot = ns;
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] != NULL)
            *find(m, old[i]->domain, strlen(old[i]->domain)) = old[i];
    free(old);
    return 0;
}

/* Adds a domain known to be absent. */
static int insert(struct certmem *m, const char *d, size_t len, const char *fp)
{
    struct entry *e;

    if (m->count >= CERTMEM_MAX)
        return -ENOSPC;
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return -ENOMEM;
    e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return -ENOMEM;
    memcpy(e->fp, fp, FP_LEN);
    e->fp[FP_LEN] = '\0';
    for (size_t i = 0; i < len; i++)
        e->domain[i] = lower(d[i]);
    e->domain[len] = '\0';
    *find(m, d, len) = e;
    m->count++;
    return 0;
}

/* The folder of path, for the writability check and the fsync after rename. */
static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

static int load(struct certmem *m, FILE *f, char *err, size_t errlen)
{
    char line[LINE_MAX_LEN + 2];
    unsigned long lineno = 0;

    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        char *sp;

        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        else if (!feof(f)) {
            snprintf(err, errlen, "%s:%lu: line too long", m->path, lineno);
            return XTP_ECONFIG;
        }
        sp = memchr(line, ' ', len);
        if (sp == NULL || !domain_ok(line, (size_t)(sp - line)) ||
            !fp_ok(sp + 1, len - (size_t)(sp + 1 - line))) {
            snprintf(err, errlen, "%s:%lu: expected \"DOMAIN SHA256HEX\"", m->path, lineno);
            return XTP_ECONFIG;
        }
        if (*find(m, line, (size_t)(sp - line)) != NULL) {
            snprintf(err, errlen, "%s:%lu: %.*s listed twice", m->path, lineno, (int)(sp - line),
                     line);
            return XTP_ECONFIG;
        }
        if (insert(m, line, (size_t)(sp - line), sp + 1) != 0) {
            snprintf(err, errlen, "%s:%lu: more than %d domains, or out of memory", m->path, lineno,
                     CERTMEM_MAX);
            return XTP_ECONFIG;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: %s", m->path, strerror(errno));
        return XTP_ECONFIG;
    }
    return 0;
}

struct certmem *certmem_open(const char *path, char *err, size_t errlen)
{
    struct certmem *m = calloc(1, sizeof(*m));
    char dir[PATH_MAX];
    FILE *f;

    if (m == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->write_lock, NULL);
    if ((m->path = strdup(path)) == NULL || grow(m) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    f = fopen(path, "re");
    if (f == NULL && errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (f != NULL) {
        int rc = load(m, f, err, errlen);

        fclose(f);
        if (rc != 0)
            goto fail;
    }
    dir_of(path, dir, sizeof(dir));
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "%s: folder %s is not writable: %s", path, dir, strerror(errno));
        goto fail;
    }
    return m;
fail:
    certmem_free(m);
    return NULL;
}

void certmem_free(struct certmem *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slot[i]);
    free(m->slot);
    free(m->path);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->write_lock);
    free(m);
}

int certmem_check(struct certmem *m, const char *domain, const char *fp, bool replace,
                  char old_fp[65])
{
    size_t len = strlen(domain);
    struct entry **slot, *e;
    int rc;

    if (!domain_ok(domain, len) || !fp_ok(fp, strlen(fp)))
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    slot = find(m, domain, len);
    e = *slot;
    if (e == NULL) {
        rc = insert(m, domain, len, fp);
        if (rc == 0) {
            m->version++;
            rc = CERTMEM_NEW;
        }
    } else if (memcmp(e->fp, fp, FP_LEN) == 0) {
        rc = CERTMEM_SAME;
    } else {
        if (old_fp != NULL)
            memcpy(old_fp, e->fp, FP_LEN + 1);
        if (replace) {
            memcpy(e->fp, fp, FP_LEN);
            m->version++;
        }
        rc = CERTMEM_CHANGED;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

size_t certmem_count(struct certmem *m)
{
    size_t n;

    pthread_mutex_lock(&m->lock);
    n = m->count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

static int by_domain(const void *a, const void *b)
{
    return strcmp((*(const struct entry *const *)a)->domain,
                  (*(const struct entry *const *)b)->domain);
}

/* Serialises the table under the lock: a malloc'ed, sorted text and its length. */
static char *snapshot(struct certmem *m, size_t *len, uint64_t *version)
{
    const struct entry **all;
    char *buf = NULL, *p;
    size_t n = 0, size = 1;

    pthread_mutex_lock(&m->lock);
    all = malloc((m->count ? m->count : 1) * sizeof(*all));
    if (all == NULL)
        goto out;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i] != NULL) {
            all[n++] = m->slot[i];
            size += strlen(m->slot[i]->domain) + 1 + FP_LEN + 1;
        }
    *version = m->version;
    pthread_mutex_unlock(&m->lock);
    /* Sort without holding up certmem_check(): entries are never freed or moved while m
     * lives and domains never change. Fingerprints are rewritten in place, so they are
     * copied under the lock again; one changed meanwhile is newer than *version, harmless. */
    qsort(all, n, sizeof(*all), by_domain);
    buf = malloc(size);
    if (buf == NULL) {
        free(all);
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    p = buf;
    for (size_t i = 0; i < n; i++) {
        size_t dl = strlen(all[i]->domain);

        memcpy(p, all[i]->domain, dl);
        p += dl;
        *p++ = ' ';
        memcpy(p, all[i]->fp, FP_LEN);
        p += FP_LEN;
        *p++ = '\n';
    }
    *len = (size_t)(p - buf);
out:
    pthread_mutex_unlock(&m->lock);
    free(all);
    return buf;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int certmem_flush(struct certmem *m)
{
    char tmp[PATH_MAX], dir[PATH_MAX], *text = NULL;
    size_t len = 0;
    uint64_t version = 0;
    int fd, dfd, rc = 0;
    bool clean;

    pthread_mutex_lock(&m->write_lock);
    pthread_mutex_lock(&m->lock);
    clean = m->version == m->written;
    pthread_mutex_unlock(&m->lock);
    if (clean)
        goto out;
    text = snapshot(m, &len, &version);
    if (text == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", m->path) >= (int)sizeof(tmp)) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all(fd, text, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, m->path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        goto out;
    }
    /* The rename is durable once the folder is synced; a failure here loses nothing now. */
    dir_of(m->path, dir, sizeof(dir));
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    pthread_mutex_lock(&m->lock);
    m->written = version;
    pthread_mutex_unlock(&m->lock);
out:
    pthread_mutex_unlock(&m->write_lock);
    free(text);
    return rc;
}
