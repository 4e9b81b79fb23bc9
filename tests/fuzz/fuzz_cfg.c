/* fuzz_cfg.c: cfg_load_mem() on arbitrary bytes, then the value parsers on the first line.
 *
 * Relative paths in the input resolve against a private folder made once with mkdtemp(),
 * holding one readable file, cert.pem, so inputs that name it get through the readability
 * check and the whole loader runs. cfg.c only calls access(2) and stat(2) on the paths it is
 * given (never open or write), and this target writes nothing but that folder, which it
 * removes at exit. Every snapshot is checked against the invariants cfg.h promises and
 * freed: a leak is a failure under ASan. */
#include "cfg.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char cert[300];

static void cleanup(void)
{
    unlink(cert);
    rmdir(dir);
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    FILE *f;

    if (dir[0] != '\0')
        return;
    snprintf(dir, sizeof(dir), "%s/fuzz_cfg.XXXXXX", base && base[0] ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        abort();
    }
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    f = fopen(cert, "w");
    if (f == NULL || fputs("not parsed by cfg.c\n", f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "%s: %s\n", cert, strerror(errno));
        abort();
    }
    atexit(cleanup);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_cfg: invariant failed: %s\n", #cond);                            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* What cfg.h promises about any snapshot cfg_load_mem() returns. */
static void check_snapshot(struct cfg *c)
{
    CHECK(c->refs == 1);
    CHECK(c->ndomains >= 1 && c->domains != NULL);
    CHECK(c->nlisteners >= 1 && c->listeners != NULL);
    CHECK(c->tls_min_version == 12 || c->tls_min_version == 13);
    CHECK(c->ca_file != NULL && c->ca_file[0] != '\0');
    CHECK(c->max_stanza >= 4096 && c->max_stanza <= 16 * 1024 * 1024);
    CHECK(c->handshake_timeout_ms >= 100 && c->handshake_timeout_ms <= 600000);
    CHECK(c->max_connections >= 1 && c->max_connections <= 1000000);
    for (size_t i = 0; i < c->ndomains; i++) {
        const struct cfg_domain *d = &c->domains[i];
        char upper[256];
        size_t n = strlen(d->name);

        CHECK(n >= 1 && n <= 253);
        CHECK(d->cert != NULL && d->key != NULL && d->cert_line > 0 && d->key_line > 0);
        for (size_t k = 0; k <= n; k++)
            upper[k] =
                (d->name[k] >= 'a' && d->name[k] <= 'z') ? (char)(d->name[k] - 32) : d->name[k];
        CHECK(strcasecmp(upper, d->name) == 0);
        CHECK(cfg_domain_find(c, upper) == d); /* names are unique */
    }
    for (size_t i = 0; i < c->nlisteners; i++) {
        const struct cfg_listener *l = &c->listeners[i];

        CHECK(l->name != NULL && l->line > 0);
        CHECK((l->tls == CFG_TLS_NONE) == (l->kind == CFG_KIND_S2S_OUT));
        CHECK(strcmp(cfg_kind_name(l->kind), "?") != 0);
        CHECK(strcmp(cfg_tls_name(l->tls), "?") != 0);
        CHECK(l->listen.len > 0 && l->listen.text[0] != '\0');
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(c->listeners[j].name, l->name) != 0);
        if (l->kind != CFG_KIND_S2S_OUT)
            for (size_t k = 0; k < c->ndomains; k++)
                CHECK(l->kind == CFG_KIND_C2S ? c->domains[k].has_backend_c2s
                                              : c->domains[k].has_backend_s2s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], line[129];
    struct cfg *c;
    size_t n = 0;

    setup();
    err[0] = 'x';
    c = cfg_load_mem("fuzz.yaml", dir, data, size, err, sizeof(err));
    if (c != NULL) {
        CHECK(err[0] == '\0');
        check_snapshot(c);
        CHECK(cfg_ref(c) == c);
        cfg_unref(c);
        cfg_unref(c);
    } else {
        CHECK(strncmp(err, "fuzz.yaml:", 10) == 0);
    }

    /* The first line, as a value for each parser. */
    while (n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n] != '\0') {
        line[n] = (char)data[n];
        n++;
    }
    line[n] = '\0';
    {
        struct cfg_addr a;
        uint64_t ms;
        size_t sz;

        if (cfg_parse_addr(line, &a) == 0)
            CHECK(strcmp(a.text, line) == 0 && a.len > 0);
        (void)cfg_parse_size(line, &sz);
        if (cfg_parse_duration(line, &ms) == 0)
            CHECK(n > 0);
    }
    return 0;
}
