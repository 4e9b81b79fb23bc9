/* test_cfg.c: cfg.c, through its public API (cfg.h). Configurations are loaded from memory
 * with a temporary folder as base_dir, where the tests create the certificate files that the
 * readability check looks for. */
#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "test.h"

/* ---- a temporary folder, removed at exit ------------------------------------------------ */

static char tmp_dir[256];
static char tmp_paths[32][512]; /* files first, then folders, removed in reverse order */
static size_t tmp_npaths;

static void tmp_cleanup(void)
{
    while (tmp_npaths > 0) {
        const char *p = tmp_paths[--tmp_npaths];

        if (remove(p) != 0)
            fprintf(stderr, "cannot remove %s: %s\n", p, strerror(errno));
    }
}

static const char *tmp_path(const char *rel)
{
    static char buf[4][512];
    static unsigned next;
    char *p = buf[next++ % 4];

    snprintf(p, sizeof(buf[0]), "%s/%s", tmp_dir, rel);
    return p;
}

static void tmp_remember(const char *path)
{
    if (tmp_npaths == ARRAY_SIZE(tmp_paths)) {
        fprintf(stderr, "too many temporary files\n");
        exit(2);
    }
    snprintf(tmp_paths[tmp_npaths++], sizeof(tmp_paths[0]), "%s", path);
}

static void tmp_mkdir(const char *rel)
{
    const char *p = tmp_path(rel);

    if (mkdir(p, 0700) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", p, strerror(errno));
        exit(2);
    }
    tmp_remember(p);
}

static void tmp_write(const char *rel, const char *text)
{
    const char *p = tmp_path(rel);
    FILE *f = fopen(p, "wb");

    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "write %s: %s\n", p, strerror(errno));
        exit(2);
    }
    tmp_remember(p);
}

/* Called by every test; creates the folder once:
 *   a.pem a.key   certs/b.pem   conf/proxy.yaml conf/certs/c.pem   adir/   noread.pem */
static void setup(void)
{
    const char *base = getenv("TMPDIR");

    if (tmp_dir[0] != '\0')
        return;
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/test_cfg.XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(tmp_dir) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        exit(2);
    }
    tmp_remember(tmp_dir);
    atexit(tmp_cleanup);
    tmp_mkdir("certs");
    tmp_mkdir("conf");
    tmp_mkdir("conf/certs");
    tmp_mkdir("adir");
    tmp_write("a.pem", "not parsed by cfg.c\n");
    tmp_write("a.key", "not parsed by cfg.c\n");
    tmp_write("certs/b.pem", "x\n");
    tmp_write("conf/certs/c.pem", "x\n");
    tmp_write("noread.pem", "x\n");
    chmod(tmp_path("noread.pem"), 0);
}

static char err[1024];

static struct cfg *load(const char *yaml)
{
    setup();
    return cfg_load_mem("t.yaml", tmp_dir, yaml, strlen(yaml), err, sizeof(err));
}

/* The two sections every valid file needs, on lines 1-4 and 5-6 (or 1-2 and 3-6). */
#define DOM                                                                                        \
    "domains:\n"                                                                                   \
    "  example.test:\n"                                                                            \
    "    cert: a.pem\n"                                                                            \
    "    backend: { c2s: \"127.0.0.1:15222\", s2s: \"127.0.0.1:15269\" }\n"
#define LIS                                                                                        \
    "listeners:\n"                                                                                 \
    "  - { name: c2s, listen: \"[::]:5222\", kind: c2s }\n"

/* ---- value parsers ---------------------------------------------------------------------- */

static const struct {
    const char *in;
    bool ok;
    size_t want;
} size_rows[] = {
    {"4096", true, 4096},
    {"0", true, 0},
    {"256KiB", true, 256 * 1024},
    {"1MiB", true, 1024 * 1024},
    {"64KB", true, 64000},
    {"2MB", true, 2000000},
    {"1GiB", true, 1024ULL * 1024 * 1024},
    {"3GB", true, 3000000000ULL},
    {"512B", true, 512},
    {"", false, 0},
    {"KiB", false, 0},
    {"-1", false, 0},
    {"+5", false, 0},
    {" 5", false, 0},
    {"5 KiB", false, 0},
    {"5kib", false, 0},
    {"5k", false, 0},
    {"1.5MiB", false, 0},
    {"5KiBx", false, 0},
    {"0x10", false, 0},
    {"18446744073709551615", true, SIZE_MAX}, /* SIZE_MAX itself still fits */
    {"18446744073709551616", false, 0},       /* strtoull overflow */
    {"18014398509481984KiB", false, 0},       /* 2^54 KiB = 2^64: overflow in the multiply */
    {"17179869184GiB", false, 0},
};

TEST(parse_size)
{
    for (size_t i = 0; i < ARRAY_SIZE(size_rows); i++) {
        size_t got = 12345;
        int rc = cfg_parse_size(size_rows[i].in, &got);

        EXPECT_EQ_MSG(size_rows[i].ok ? 0 : XTP_ECONFIG, rc, "row %zu '%s'", i, size_rows[i].in);
        if (size_rows[i].ok && rc == 0)
            EXPECT_EQ_MSG(size_rows[i].want, got, "row %zu '%s'", i, size_rows[i].in);
    }
    EXPECT_EQ(XTP_ECONFIG, cfg_parse_size(NULL, &(size_t){0}));
}

static const struct {
    const char *in;
    bool ok;
    uint64_t want;
} duration_rows[] = {
    {"500ms", true, 500},
    {"10s", true, 10000},
    {"2m", true, 120000},
    {"1h", true, 3600000},
    {"0s", true, 0},
    {"18446744073709551615ms", true, UINT64_MAX},
    {"10", false, 0}, /* a bare number is ambiguous */
    {"0", false, 0},
    {"", false, 0},
    {"s", false, 0},
    {"-1s", false, 0},
    {"+1s", false, 0},
    {" 1s", false, 0},
    {"1 s", false, 0},
    {"1.5s", false, 0},
    {"1d", false, 0},
    {"1S", false, 0},
    {"1sec", false, 0},
    {"10ms5", false, 0},
    {"18446744073709551616ms", false, 0},
    {"5124095576030432h", false, 0}, /* * 3600000 overflows uint64 */
};

TEST(parse_duration)
{
    for (size_t i = 0; i < ARRAY_SIZE(duration_rows); i++) {
        uint64_t got = 12345;
        int rc = cfg_parse_duration(duration_rows[i].in, &got);

        EXPECT_EQ_MSG(duration_rows[i].ok ? 0 : XTP_ECONFIG, rc, "row %zu '%s'", i,
                      duration_rows[i].in);
        if (duration_rows[i].ok && rc == 0)
            EXPECT_EQ_MSG(duration_rows[i].want, got, "row %zu '%s'", i, duration_rows[i].in);
    }
}

static const struct {
    const char *in;
    int family; /* 0: must be rejected */
    const char *host;
    unsigned port;
} addr_rows[] = {
    {"127.0.0.1:5222", AF_INET, "127.0.0.1", 5222},
    {"0.0.0.0:5222", AF_INET, "0.0.0.0", 5222},
    {"[::1]:5222", AF_INET6, "::1", 5222},
    {"[::]:5222", AF_INET6, "::", 5222},
    {"[2001:db8::1]:1", AF_INET6, "2001:db8::1", 1},
    {"[::ffff:192.0.2.1]:65535", AF_INET6, "::ffff:192.0.2.1", 65535},
    {"10.1.2.3:05269", AF_INET, "10.1.2.3", 5269},
    {"", 0, NULL, 0},
    {"localhost:5222", 0, NULL, 0},
    {"example.test:5222", 0, NULL, 0},
    {"127.0.0.1", 0, NULL, 0},
    {"127.0.0.1:", 0, NULL, 0},
    {":5222", 0, NULL, 0},
    {"127.0.0.1:0", 0, NULL, 0},
    {"127.0.0.1:65536", 0, NULL, 0},
    {"127.0.0.1:-1", 0, NULL, 0},
    {"127.0.0.1:+22", 0, NULL, 0},
    {"127.0.0.1: 22", 0, NULL, 0},
    {"127.0.0.1:22x", 0, NULL, 0},
    {"127.0.0.1:999999", 0, NULL, 0},
    {"127.0.0.1:xmpp", 0, NULL, 0},
    {"256.0.0.1:5222", 0, NULL, 0},
    {"1.2.3:5222", 0, NULL, 0},
    {"::1:5222", 0, NULL, 0},
    {"[::1]", 0, NULL, 0},
    {"[::1]5222", 0, NULL, 0},
    {"[::1:5222", 0, NULL, 0},
    {"[127.0.0.1]:5222", 0, NULL, 0},
    {"[fe80::1%eth0]:5222", 0, NULL, 0},
    {"[]:5222", 0, NULL, 0},
    {"[1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18:19:20:21:22:23:24:25]:5222", 0, NULL, 0},
};

TEST(parse_addr)
{
    for (size_t i = 0; i < ARRAY_SIZE(addr_rows); i++) {
        struct cfg_addr a;
        char host[INET6_ADDRSTRLEN] = "";
        int rc;

        memset(&a, 0xa5, sizeof(a));
        rc = cfg_parse_addr(addr_rows[i].in, &a);
        EXPECT_EQ_MSG(addr_rows[i].family ? 0 : XTP_ECONFIG, rc, "row %zu '%s'", i,
                      addr_rows[i].in);
        if (rc != 0 || addr_rows[i].family == 0)
            continue;
        EXPECT_EQ_MSG(addr_rows[i].family, a.ss.ss_family, "row %zu", i);
        EXPECT_STR_MSG(addr_rows[i].in, a.text, "row %zu", i);
        if (a.ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)&a.ss;

            EXPECT_EQ_MSG(sizeof(*sin), a.len, "row %zu", i);
            EXPECT_EQ_MSG(addr_rows[i].port, ntohs(sin->sin_port), "row %zu", i);
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        } else {
            const struct sockaddr_in6 *sin6 = (const void *)&a.ss;

            EXPECT_EQ_MSG(sizeof(*sin6), a.len, "row %zu", i);
            EXPECT_EQ_MSG(addr_rows[i].port, ntohs(sin6->sin6_port), "row %zu", i);
            EXPECT_EQ_MSG(0, sin6->sin6_flowinfo, "row %zu", i);
            EXPECT_EQ_MSG(0, sin6->sin6_scope_id, "row %zu", i);
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        }
        EXPECT_STR_MSG(addr_rows[i].host, host, "row %zu", i);
    }
}

/* ---- whole files ------------------------------------------------------------------------ */

static int addr_port(const struct cfg_addr *a)
{
    return a->ss.ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)&a->ss)->sin_port)
                                      : ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

TEST(minimal_and_defaults)
{
    struct cfg *c = load("domains:\n"
                         "  Example.TEST:\n"
                         "    cert: a.pem\n"
                         "    backend: { c2s: \"127.0.0.1:15222\" }\n"
                         "listeners:\n"
                         "  - { name: c2s, listen: \"[::]:5222\", kind: c2s }\n");
    const struct cfg_domain *d;

    EXPECT_MSG(c != NULL, "%s", err);
    if (c == NULL)
        return;
    EXPECT_STR("", err);
    EXPECT_EQ(1, c->refs);
    EXPECT_STR("t.yaml", c->path);
    EXPECT_EQ(LOG_INFO, c->log_level);
    EXPECT_EQ(LOG_FORMAT_TEXT, c->log_format);
    EXPECT_EQ(12, c->tls_min_version);
    EXPECT_STR("/etc/ssl/certs/ca-certificates.crt", c->ca_file);
    EXPECT_EQ(0, c->ca_file_line);
    EXPECT_EQ(256 * 1024, c->max_stanza);
    EXPECT_EQ(10000, c->handshake_timeout_ms);
    EXPECT_EQ(20000, c->max_connections);

    EXPECT_EQ(1, c->ndomains);
    d = &c->domains[0];
    EXPECT_STR("example.test", d->name); /* stored lower-case */
    EXPECT_EQ(2, d->line);
    EXPECT_STR(tmp_path("a.pem"), d->cert);
    EXPECT_STR(tmp_path("a.pem"), d->key); /* key defaults to cert */
    EXPECT_EQ(3, d->cert_line);
    EXPECT_EQ(3, d->key_line);
    EXPECT(d->has_backend_c2s);
    EXPECT(!d->has_backend_s2s);
    EXPECT_STR("127.0.0.1:15222", d->backend_c2s.text);
    EXPECT_EQ(15222, addr_port(&d->backend_c2s));

    EXPECT_EQ(1, c->nlisteners);
    EXPECT_STR("c2s", c->listeners[0].name);
    EXPECT_EQ(CFG_KIND_C2S, c->listeners[0].kind);
    EXPECT_EQ(CFG_TLS_STARTTLS, c->listeners[0].tls); /* default */
    EXPECT_EQ(AF_INET6, c->listeners[0].listen.ss.ss_family);
    EXPECT_EQ(5222, addr_port(&c->listeners[0].listen));
    EXPECT_EQ(6, c->listeners[0].line);
    cfg_unref(c);
}

static const char full_yaml[] =             /* line numbers are checked below */
    "# every key\n"                         /* 1 */
    "log: { level: debug, format: json }\n" /* 2 */
    "tls:\n"                                /* 3 */
    "  min_version: 1.3\n"                  /* 4 */
    "  ca_file: certs/ca.pem\n"             /* 5 */
    "domains:\n"                            /* 6 */
    "  example.test:\n"                     /* 7 */
    "    cert: certs/b.pem\n"               /* 8 */
    "    key: a.key\n"                      /* 9 */
    "    backend:\n"                        /* 10 */
    "      c2s: \"127.0.0.1:15222\"\n"      /* 11 */
    "      s2s: \"[::1]:15269\"\n"          /* 12 */
    "  \"other.test\":\n"                   /* 13 */
    "    cert: a.pem\n"                     /* 14 */
    "    backend: { c2s: \"127.0.0.2:15222\", s2s: \"127.0.0.2:15269\" }\n"     /* 15 */
    "listeners:\n"                                                              /* 16 */
    "  - { name: c2s, listen: \"[::]:5222\", kind: c2s, tls: starttls }\n"      /* 17 */
    "  - { name: c2s-direct, listen: \"[::]:5223\", kind: c2s, tls: direct }\n" /* 18 */
    "  - name: s2s\n"                                                           /* 19 */
    "    listen: \"0.0.0.0:5269\"\n"                                            /* 20 */
    "    kind: s2s\n"                                                           /* 21 */
    "  - { name: s2s-out, listen: \"127.0.0.1:5270\", kind: s2s-out }\n"        /* 22 */
    "limits:\n"                                                                 /* 23 */
    "  max_stanza: 64KiB\n"                                                     /* 24 */
    "  handshake_timeout: 1500ms\n"                                             /* 25 */
    "  max_connections: 100\n";                                                 /* 26 */

TEST(full)
{
    struct cfg *c = load(full_yaml);
    const struct cfg_domain *d;
    const struct cfg_listener *l;

    EXPECT_MSG(c != NULL, "%s", err);
    if (c == NULL)
        return;
    EXPECT_EQ(LOG_DEBUG, c->log_level);
    EXPECT_EQ(LOG_FORMAT_JSON, c->log_format);
    EXPECT_EQ(13, c->tls_min_version);
    EXPECT_STR(tmp_path("certs/ca.pem"), c->ca_file); /* relative; not checked by cfg.c */
    EXPECT_EQ(5, c->ca_file_line);
    EXPECT_EQ(64 * 1024, c->max_stanza);
    EXPECT_EQ(1500, c->handshake_timeout_ms);
    EXPECT_EQ(100, c->max_connections);

    EXPECT_EQ(2, c->ndomains);
    if (c->ndomains != 2)
        goto out;
    d = &c->domains[0];
    EXPECT_STR("example.test", d->name);
    EXPECT_EQ(7, d->line);
    EXPECT_STR(tmp_path("certs/b.pem"), d->cert);
    EXPECT_EQ(8, d->cert_line);
    EXPECT_STR(tmp_path("a.key"), d->key);
    EXPECT_EQ(9, d->key_line);
    EXPECT(d->has_backend_c2s);
    EXPECT(d->has_backend_s2s);
    EXPECT_STR("127.0.0.1:15222", d->backend_c2s.text);
    EXPECT_STR("[::1]:15269", d->backend_s2s.text);
    EXPECT_EQ(AF_INET6, d->backend_s2s.ss.ss_family);
    EXPECT_EQ(15269, addr_port(&d->backend_s2s));
    d = &c->domains[1];
    EXPECT_STR("other.test", d->name);
    EXPECT_EQ(13, d->line);
    EXPECT_STR(tmp_path("a.pem"), d->cert);
    EXPECT_STR(tmp_path("a.pem"), d->key);
    EXPECT_EQ(14, d->key_line);
    EXPECT_STR("127.0.0.2:15269", d->backend_s2s.text);

    EXPECT_EQ(4, c->nlisteners);
    if (c->nlisteners != 4)
        goto out;
    static const struct {
        const char *name, *listen;
        enum cfg_kind kind;
        enum cfg_tls tls;
        int line;
    } want[] = {
        {"c2s", "[::]:5222", CFG_KIND_C2S, CFG_TLS_STARTTLS, 17},
        {"c2s-direct", "[::]:5223", CFG_KIND_C2S, CFG_TLS_DIRECT, 18},
        {"s2s", "0.0.0.0:5269", CFG_KIND_S2S, CFG_TLS_STARTTLS, 19},
        {"s2s-out", "127.0.0.1:5270", CFG_KIND_S2S_OUT, CFG_TLS_NONE, 22},
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        l = &c->listeners[i];
        EXPECT_STR_MSG(want[i].name, l->name, "listener %zu", i);
        EXPECT_STR_MSG(want[i].listen, l->listen.text, "listener %zu", i);
        EXPECT_EQ_MSG(want[i].kind, l->kind, "listener %zu", i);
        EXPECT_EQ_MSG(want[i].tls, l->tls, "listener %zu", i);
        EXPECT_EQ_MSG(want[i].line, l->line, "listener %zu", i);
    }
out:
    cfg_unref(c);
}

/* Every class of error: the exact line and a fragment of the message. */
static const struct {
    const char *yaml;
    int line; /* 0: a file-level message without a line */
    const char *msg;
} error_rows[] = {
    /* the file as a whole */
    {"", 0, "the configuration is empty"},
    {"# nothing\n", 0, "the configuration is empty"},
    {"---\n", 0, "the configuration is empty"},
    {"- a\n- b\n", 1, "must be a mapping of sections"},
    {"just text\n", 1, "must be a mapping of sections"},
    {"log: { level: info }\n", 1, "missing required section 'domains'"},
    {LIS, 1, "missing required section 'domains'"},
    {"\n" DOM, 2, "missing required section 'listeners'"},
    {DOM LIS "bogus: 1\n", 7, "unknown key 'bogus' in the top level"},
    {DOM LIS "metrics: { listen: \"127.0.0.1:9480\" }\n", 7,
     "unknown key 'metrics' in the top level"},
    {DOM LIS "domains: {}\n", 7, "duplicate key 'domains' in the top level (first on line 1)"},
    {DOM LIS "? [a]\n: b\n", 7, "keys in the top level must be plain names"},
    /* YAML itself */
    {DOM LIS "log: { level: info\n", 8, "YAML: "},
    {DOM LIS "log:\n\tlevel: info\n", 8, "YAML: found character that cannot start any token"},
    {DOM LIS "log:\n  level: info\n bad: 1\n", 9, "YAML: "},
    {DOM LIS "log: *ref\n", 7, "YAML aliases are not supported"},
    {DOM LIS "log: &ref { level: info }\n", 7, "YAML aliases are not supported"},
    {"domains:\n  example.test: &d\n    cert: a.pem\n", 2, "YAML aliases are not supported"},
    {DOM LIS "---\nlog: {}\n", 7, "only one YAML document is allowed"},
    {DOM LIS "log: { level: \"in\\0fo\" }\n", 7, "log.level contains a NUL byte"},
    {DOM LIS "log: { level: \"\xff\" }\n", 7, "YAML: "},
    /* log */
    {DOM LIS "log: { level: loud }\n", 7,
     "log.level must be error, warn, info or debug, not 'loud'"},
    {DOM LIS "log: { level: INFO }\n", 7, "log.level must be error"},
    {DOM LIS "log: { format: xml }\n", 7, "log.format must be text or json, not 'xml'"},
    {DOM LIS "log: { colour: red }\n", 7, "unknown key 'colour' in log"},
    {DOM LIS "log: info\n", 7, "log must be a mapping"},
    {DOM LIS "log:\n", 7, "log must be a mapping"},
    {DOM LIS "log:\n  level: info\n  level: debug\n", 9,
     "duplicate key 'level' in log (first on line 8)"},
    {DOM LIS "log:\n  level:\n  format: text\n", 8, "log.level must not be empty"},
    {DOM LIS "log:\n  level: ~\n", 8, "log.level must not be empty"},
    {DOM LIS "log:\n  level: [a, b]\n", 8, "log.level must be a single value"},
    /* tls */
    {DOM LIS "tls: { min_version: 1.1 }\n", 7,
     "tls.min_version must be \"1.2\" or \"1.3\", not '1.1'"},
    {DOM LIS "tls: { min_version: 1.20 }\n", 7, "tls.min_version must be"},
    {DOM LIS "tls: { min_version: 12 }\n", 7, "tls.min_version must be"},
    {DOM LIS "tls: { ca_file: '' }\n", 7, "tls.ca_file must not be empty"},
    {DOM LIS "tls:\n  ca_file: [a]\n", 8, "tls.ca_file must be a single value"},
    {DOM LIS "tls: { verify: required }\n", 7, "unknown key 'verify' in tls"},
    {DOM LIS "tls: [1.2]\n", 7, "tls must be a mapping"},
    /* limits */
    {DOM LIS "limits: { max_stanza: 1KiB }\n", 7, "limits.max_stanza must be from 4KiB to 16MiB"},
    {DOM LIS "limits: { max_stanza: 17MiB }\n", 7, "limits.max_stanza must be from 4KiB to 16MiB"},
    {DOM LIS "limits: { max_stanza: -5 }\n", 7, "limits.max_stanza: '-5' is not a size"},
    {DOM LIS "limits: { max_stanza: 12 apples }\n", 7, "is not a size"},
    {DOM LIS "limits: { max_stanza: 99999999999999999999999 }\n", 7, "too large"},
    {DOM LIS "limits: { handshake_timeout: 10 }\n", 7, "a unit is required"},
    {DOM LIS "limits: { handshake_timeout: 50ms }\n", 7, "from 100ms to 10m"},
    {DOM LIS "limits: { handshake_timeout: 11m }\n", 7, "from 100ms to 10m"},
    {DOM LIS "limits: { handshake_timeout: 1.5s }\n", 7, "is not a duration"},
    {DOM LIS "limits: { max_connections: 0 }\n", 7, "from 1 to 1000000"},
    {DOM LIS "limits: { max_connections: 1000001 }\n", 7, "from 1 to 1000000"},
    {DOM LIS "limits: { max_connections: 99999999999999999999999 }\n", 7, "from 1 to 1000000"},
    {DOM LIS "limits: { max_connections: 12k }\n", 7, "must be a whole number"},
    {DOM LIS "limits: { max_connections: -1 }\n", 7, "must be a whole number"},
    {DOM LIS "limits:\n  max_stanza: 64KiB\n  timeout: 5s\n", 9, "unknown key 'timeout' in limits"},
    /* listeners */
    {DOM "listeners: { name: c2s }\n", 5, "listeners must be a sequence"},
    {DOM "listeners: []\n", 5, "listeners must list at least one listener"},
    {DOM "listeners:\n  - c2s\n", 6, "listeners[0] must be a mapping"},
    {DOM "listeners:\n  - { listen: \"[::]:5222\", kind: c2s }\n", 6,
     "listeners[0]: missing required key 'name'"},
    {DOM "listeners:\n  - { name: a, kind: c2s }\n", 6,
     "listeners[0]: missing required key 'listen'"},
    {DOM "listeners:\n  - { name: a, listen: \"[::]:5222\" }\n", 6,
     "listeners[0]: missing required key 'kind'"},
    {DOM "listeners:\n  - { name: a, listen: \"[::]:5222\", kind: xmpp }\n", 6,
     "listeners[0].kind must be c2s, s2s or s2s-out, not 'xmpp'"},
    {DOM "listeners:\n  - { name: a, listen: \"[::]:5222\", kind: c2s, tls: none }\n", 6,
     "listeners[0].tls must be starttls or direct, not 'none'"},
    {DOM "listeners:\n  - { name: a, listen: \"[::]:5222\", kind: c2s, port: 1 }\n", 6,
     "unknown key 'port' in listeners[0]"},
    {DOM "listeners:\n  - { name: c2s main, listen: \"[::]:5222\", kind: c2s }\n", 6,
     "listeners[0].name must be 1 to 63 letters"},
    {DOM "listeners:\n"
         "  - name: out\n"
         "    listen: \"127.0.0.1:5270\"\n"
         "    tls: direct\n"
         "    kind: s2s-out\n",
     8, "listeners[0].tls is not allowed for kind s2s-out"},
    {DOM "listeners:\n  - { name: a, listen: \"localhost:5222\", kind: c2s }\n", 6,
     "listeners[0].listen: 'localhost:5222': host names are not supported: use a numeric "
     "address"},
    {DOM "listeners:\n  - { name: a, listen: \"[::1]\", kind: c2s }\n", 6, "missing ':port'"},
    {DOM "listeners:\n  - { name: a, listen: \"::1:5222\", kind: c2s }\n", 6,
     "an IPv6 address needs brackets"},
    {DOM "listeners:\n  - { name: a, listen: \"127.0.0.1:0\", kind: c2s }\n", 6,
     "the port must be a number from 1 to 65535"},
    {DOM "listeners:\n  - { name: a, listen: \"127.0.0.1:65536\", kind: c2s }\n", 6,
     "the port must be a number from 1 to 65535"},
    {DOM "listeners:\n  - { name: a, listen: 5222, kind: c2s }\n", 6, "missing ':port'"},
    {DOM "listeners:\n"
         "  - { name: c2s, listen: \"[::]:5222\", kind: c2s }\n"
         "  - { name: c2s, listen: \"[::]:5223\", kind: c2s }\n",
     7, "duplicate listener name 'c2s' (first on line 6)"},
    {DOM "listeners:\n"
         "  - { name: a, listen: \"[::]:5222\", kind: c2s }\n"
         "  - name: b\n"
         "    kind: s2s\n"
         "    listen: \"[::]:5222\"\n",
     9,
     "listener 'b' on [::]:5222 would share its address with listener 'a' on [::]:5222 (line 6)"},
    {DOM "listeners:\n"
         "  - { name: a, listen: \"0.0.0.0:5222\", kind: c2s }\n"
         "  - { name: b, listen: \"127.0.0.1:5222\", kind: c2s }\n",
     7, "would share its address with listener 'a'"},
    {DOM "listeners:\n"
         "  - { name: a, listen: \"127.0.0.1:5222\", kind: c2s }\n"
         "  - { name: b, listen: \"[::]:5222\", kind: c2s }\n",
     7, "would share its address with listener 'a'"},
    {DOM "listeners:\n"
         "  - { name: a, listen: \"[::1]:5222\", kind: c2s }\n"
         "  - { name: b, listen: \"[::]:5222\", kind: c2s }\n",
     7, "would share its address with listener 'a'"},
    /* domains */
    {LIS "domains: {}\n", 3, "domains must list at least one domain"},
    {LIS "domains: [a]\n", 3, "domains must be a mapping"},
    {LIS "domains:\n  example.test:\n    backend: { c2s: \"127.0.0.1:1\" }\n", 4,
     "domains.example.test: missing required key 'cert'"},
    {LIS "domains:\n  example.test:\n    cert:\n", 5,
     "domains.example.test.cert must not be empty"},
    {LIS "domains:\n  example.test: a.pem\n", 4, "domains.example.test must be a mapping"},
    {LIS "domains:\n  ex_ample.test:\n    cert: a.pem\n", 4,
     "'ex_ample.test' is not a domain name"},
    {LIS "domains:\n  \"\":\n    cert: a.pem\n", 4, "a domain name must not be empty"},
    {LIS "domains:\n  example.test:\n    cert: a.pem\n    chain: b.pem\n", 6,
     "unknown key 'chain' in domains.example.test"},
    {LIS "domains:\n  example.test:\n    cert: a.pem\n    cert: a.pem\n", 6,
     "duplicate key 'cert' in domains.example.test (first on line 5)"},
    {LIS "domains:\n  example.test:\n    cert: a.pem\n    backend: 127.0.0.1:1\n", 6,
     "domains.example.test.backend must be a mapping"},
    {LIS "domains:\n  example.test:\n    cert: a.pem\n    backend: { xmpp: \"127.0.0.1:1\" }\n", 6,
     "unknown key 'xmpp' in domains.example.test.backend"},
    {LIS
     "domains:\n  example.test:\n    cert: a.pem\n    backend:\n      c2s: \"localhost:15222\"\n",
     7, "domains.example.test.backend.c2s: 'localhost:15222': host names are not supported"},
    {LIS "domains:\n"
         "  example.test:\n"
         "    cert: a.pem\n"
         "    backend: { c2s: \"127.0.0.1:15222\" }\n"
         "  other.test:\n"
         "    cert: a.pem\n"
         "    backend: { c2s: \"127.0.0.1:15222\" }\n"
         "  Example.Test:\n"
         "    cert: a.pem\n",
     10, "duplicate domain 'example.test' (first on line 4)"},
    {LIS "domains:\n"
         "  b.test: { cert: a.pem }\n"
         "  a.test: { cert: a.pem }\n"
         "  B.TEST: { cert: a.pem }\n"
         "  A.test: { cert: a.pem }\n"
         "  a.TEST: { cert: a.pem }\n",
     6, "duplicate domain 'b.test' (first on line 4)"}, /* the earliest repeat, not the first in
                                                           sort order */
    /* checks that need the whole file */
    {LIS "domains:\n"
         "  example.test:\n"
         "    cert: a.pem\n"
         "    backend: { c2s: \"127.0.0.1:15222\" }\n"
         "  other.test:\n"
         "    cert: a.pem\n"
         "    backend: { s2s: \"127.0.0.1:15269\" }\n",
     7, "domain 'other.test' has no backend.c2s but listener 'c2s' needs one"},
    {DOM "listeners:\n"
         "  - { name: in, listen: \"[::]:5269\", kind: s2s }\n"
         "domains:\n", /* a second `domains:` is an error before the backend check */
     7, "duplicate key 'domains'"},
    {"domains:\n"
     "  example.test:\n"
     "    cert: a.pem\n"
     "    backend: { c2s: \"127.0.0.1:15222\" }\n"
     "listeners:\n"
     "  - { name: c2s, listen: \"[::]:5222\", kind: c2s }\n"
     "  - { name: fed, listen: \"[::]:5269\", kind: s2s }\n",
     2, "domain 'example.test' has no backend.s2s but listener 'fed' needs one"},
    {LIS
     "domains:\n  example.test:\n    cert: missing.pem\n    backend: { c2s: \"127.0.0.1:1\" }\n",
     5, "domains.example.test.cert: cannot read '"},
    {LIS "domains:\n  example.test:\n    cert: a.pem\n    key: missing.key\n"
         "    backend: { c2s: \"127.0.0.1:1\" }\n",
     6, "missing.key': no such file or directory"},
    {LIS "domains:\n  example.test:\n    cert: adir\n    backend: { c2s: \"127.0.0.1:1\" }\n", 5,
     "adir': not a regular file"},
    {LIS "domains:\n  example.test:\n    cert: a.pem/x\n    backend: { c2s: \"127.0.0.1:1\" }\n", 5,
     "a.pem/x': not a directory"},
    /* s2s:, resolve:, admin: */
    {DOM LIS "s2s: { verify: maybe }\n", 7, "s2s.verify must be required or optional, not 'maybe'"},
    {DOM LIS "s2s: { tls: never }\n", 7, "s2s.tls must be required or opportunistic, not 'never'"},
    {DOM LIS "s2s: { remotes: { a.test: { pin: yes } } }\n", 7,
     "s2s.remotes.a.test.pin must be true or false, not 'yes'"},
    {DOM LIS "s2s: { remotes: { a_b.test: { pin: true } } }\n", 7, "'a_b.test' is not a domain"},
    {DOM LIS "s2s: { remotes: { example.test: { pin: true } } }\n", 7,
     "remote 'example.test' is one of our own domains"},
    {DOM LIS "s2s: { remotes: { a.test: { trust: all } } }\n", 7,
     "unknown key 'trust' in s2s.remotes.a.test"},
    {DOM LIS "s2s: { connect_timeout: 1ms }\n", 7, "s2s.connect_timeout must be from 100ms"},
    {DOM LIS "resolve: { static: { a.test: \"a.test:5269\" } }\n", 7,
     "resolve.static.a.test: 'a.test:5269': host names are not supported"},
    {DOM LIS "resolve: { nameservers: [] }\n", 7, "resolve.nameservers must list 1 to 8"},
    {DOM LIS "resolve: { unbound_options: [\"local-zone test. transparent\"] }\n", 7,
     "resolve.unbound_options[0]: 'local-zone test. transparent' is not \"name: value\""},
    {DOM LIS "resolve: { dnssec: no }\n", 7, "resolve.dnssec must be true or false"},
    {DOM LIS "limits: { drain_timeout: 2h }\n", 7, "limits.drain_timeout must be from 0s to 1h"},
    {DOM LIS "user: Root\n", 7, "user: 'Root' is not a user or group name"},
    {DOM
     "listeners:\n  - { name: o, listen: \"127.0.0.1:1\", kind: s2s-out, proxy_protocol: true }\n",
     6, "listeners[0].proxy_protocol is not allowed for kind s2s-out"},
    {DOM LIS "resolve: { nameservers: [\"127.0.0.1\"] }\n", 7, "resolve.nameservers[0]: "},
    {DOM LIS "admin: { listen: \"[::]:5222\" }\n", 7, "admin.listen [::]:5222 would share"},
    {DOM "listeners:\n  - { name: out, listen: \"0.0.0.0:5270\", kind: s2s-out }\n", 6,
     "is not a loopback address"},
    {DOM "listeners:\n  - { name: in, listen: \"[::]:5269\", kind: s2s, allow_nonlocal: true }\n",
     6, "listeners[0].allow_nonlocal is only for kind s2s-out"},
};

TEST(errors)
{
    for (size_t i = 0; i < ARRAY_SIZE(error_rows); i++) {
        struct cfg *c = load(error_rows[i].yaml);
        char prefix[32];

        EXPECT_MSG(c == NULL, "row %zu loaded", i);
        cfg_unref(c);
        if (error_rows[i].line > 0)
            snprintf(prefix, sizeof(prefix), "t.yaml:%d: ", error_rows[i].line);
        else
            snprintf(prefix, sizeof(prefix), "t.yaml: ");
        EXPECT_MSG(strncmp(err, prefix, strlen(prefix)) == 0, "row %zu: want prefix '%s', got '%s'",
                   i, prefix, err);
        EXPECT_MSG(strstr(err, error_rows[i].msg) != NULL, "row %zu: want '%s' in '%s'", i,
                   error_rows[i].msg, err);
    }
}

/* The same YAML with one key changed loads, so each error row above fails for its reason. */
TEST(error_rows_have_valid_twins)
{
    static const char *const ok[] = {
        DOM LIS "log: { level: warn }\n",
        DOM LIS "log:\n  level: info\n  format: text\n",
        DOM LIS "tls: { min_version: \"1.2\" }\n",
        DOM LIS "limits: { max_stanza: 4KiB }\n",
        DOM LIS "limits: { max_stanza: 16MiB }\n",
        DOM LIS "limits: { handshake_timeout: 100ms }\n",
        DOM LIS "limits: { handshake_timeout: 10m }\n",
        DOM LIS "limits: { max_connections: 1 }\n",
        DOM LIS "limits: { max_connections: 1000000 }\n",
        DOM "listeners:\n  - { name: out, listen: \"127.0.0.1:5270\", kind: s2s-out }\n",
        DOM "listeners:\n  - { name: out, listen: \"0.0.0.0:5270\", kind: s2s-out, "
            "allow_nonlocal: true }\n",
        DOM LIS "s2s: { verify: optional, tls: opportunistic }\n",
        DOM LIS "s2s: { remotes: { a.test: { pin: true } } }\n",
        DOM LIS "admin: { listen: \"[::1]:9480\" }\n",
        DOM LIS
        "resolve: { dnssec: false, unbound_options: [\"local-zone: test. transparent\"] }\n",
        DOM LIS "limits: { drain_timeout: 0s }\nuser: nobody\ngroup: nogroup\n",
        DOM
        "listeners:\n  - { name: c, listen: \"127.0.0.1:1\", kind: c2s, proxy_protocol: true }\n",
        DOM "listeners:\n"
            "  - { name: a, listen: \"127.0.0.1:5222\", kind: c2s }\n"
            "  - { name: b, listen: \"127.0.0.2:5222\", kind: c2s }\n"
            "  - { name: c, listen: \"127.0.0.1:5223\", kind: c2s }\n"
            "  - { name: d, listen: \"[::1]:5223\", kind: c2s }\n",
        LIS "domains:\n  example.test:\n    cert: a.pem\n    key: a.key\n"
            "    backend: { c2s: \"127.0.0.1:1\" }\n",
        /* s2s-out alone needs no backend at all */
        "domains:\n  example.test: { cert: a.pem }\n"
        "listeners:\n  - { name: out, listen: \"127.0.0.1:5270\", kind: s2s-out }\n",
        /* a second document marker with nothing after it is still one document */
        "---\n" DOM LIS "...\n",
    };

    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        struct cfg *c = load(ok[i]);

        EXPECT_MSG(c != NULL, "row %zu: %s", i, err);
        cfg_unref(c);
    }
}

static const struct {
    const char *name;
    bool ok;
} domain_rows[] = {
    {"example.test", true},
    {"EXAMPLE.Test", true},
    {"localhost", true},
    {"a-b.c-d.test", true},
    {"xn--bcher-kva.example", true},
    {"0.test", true},
    {"ex_ample.test", false},
    {"-bad.test", false},
    {"bad-.test", false},
    {"a..test", false},
    {".test", false},
    {"example.test.", false},
    {"exa mple.test", false},
    {"b\xc3\xbc"
     "cher.test",
     false},
    {"user@example.test", false},
    {"example.test/res", false},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", true},   /* 63 */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", false}, /* 64 */
};

TEST(domain_names)
{
    char yaml[1024], name[300];

    for (size_t i = 0; i < ARRAY_SIZE(domain_rows); i++) {
        struct cfg *c;

        snprintf(yaml, sizeof(yaml),
                 LIS "domains:\n  \"%s\":\n    cert: a.pem\n"
                     "    backend: { c2s: \"127.0.0.1:1\" }\n",
                 domain_rows[i].name);
        c = load(yaml);
        EXPECT_MSG((c != NULL) == domain_rows[i].ok, "row %zu '%s': %s", i, domain_rows[i].name,
                   err);
        if (!domain_rows[i].ok)
            EXPECT_MSG(strstr(err, "t.yaml:4: ") == err && strstr(err, "is not a domain name"),
                       "row %zu: %s", i, err);
        cfg_unref(c);
    }
    /* 253 characters in all is the limit: 63+1+63+1+63+1+61 = 253. */
    memset(name, 'a', 253);
    name[63] = name[127] = name[191] = '.';
    for (size_t total = 253; total <= 254; total++) {
        struct cfg *c;

        name[total] = '\0';
        if (total == 254)
            name[253] = 'a';
        snprintf(yaml, sizeof(yaml),
                 LIS "domains:\n  %s: { cert: a.pem, backend: { c2s: "
                     "\"127.0.0.1:1\" } }\n",
                 name);
        c = load(yaml);
        EXPECT_MSG((c != NULL) == (total == 253), "length %zu: %s", total, err);
        cfg_unref(c);
    }
}

TEST(relative_paths)
{
    char path[600];
    struct cfg *c;

    setup();
    /* cfg_load: relative paths start at the config file's folder. */
    snprintf(path, sizeof(path), "%s/conf/proxy.yaml", tmp_dir);
    {
        char yaml[1024];

        snprintf(yaml, sizeof(yaml),
                 "tls: { ca_file: ca/roots.pem }\n"
                 "domains:\n"
                 "  example.test:\n"
                 "    cert: certs/c.pem\n"
                 "    key: %s\n"
                 "    backend: { c2s: \"127.0.0.1:15222\" }\n" LIS,
                 tmp_path("a.key"));
        tmp_write("conf/proxy.yaml", yaml);
    }
    c = cfg_load(path, err, sizeof(err));
    EXPECT_MSG(c != NULL, "%s", err);
    if (c != NULL) {
        EXPECT_STR(path, c->path);
        EXPECT_STR(tmp_path("conf/certs/c.pem"), c->domains[0].cert);
        EXPECT_STR(tmp_path("a.key"), c->domains[0].key); /* absolute: unchanged */
        EXPECT_STR(tmp_path("conf/ca/roots.pem"), c->ca_file);
        EXPECT_EQ(1, c->ca_file_line);
        EXPECT_EQ(4, c->domains[0].cert_line);
        EXPECT_EQ(5, c->domains[0].key_line);
    }
    cfg_unref(c);

    /* cfg_load_mem with base_dir NULL (or ""): relative paths stay relative to the cwd. */
    {
        char yaml[1024];

        snprintf(yaml, sizeof(yaml),
                 "tls: { ca_file: ca/roots.pem }\n"
                 "domains:\n"
                 "  example.test: { cert: %s, backend: { c2s: \"127.0.0.1:1\" } }\n" LIS,
                 tmp_path("a.pem"));
        c = cfg_load_mem("mem", NULL, yaml, strlen(yaml), err, sizeof(err));
        EXPECT_MSG(c != NULL, "%s", err);
        if (c != NULL) {
            EXPECT_STR("ca/roots.pem", c->ca_file);
            EXPECT_STR(tmp_path("a.pem"), c->domains[0].cert);
            EXPECT_STR("mem", c->path);
        }
        cfg_unref(c);
        c = cfg_load_mem("mem", "", yaml, strlen(yaml), err, sizeof(err));
        EXPECT_MSG(c != NULL, "%s", err);
        if (c != NULL)
            EXPECT_STR("ca/roots.pem", c->ca_file);
        cfg_unref(c);
    }

    /* A base_dir that ends in '/' gets no second one. */
    {
        char base[300];
        static const char yaml[] = DOM LIS;

        snprintf(base, sizeof(base), "%s/", tmp_dir);
        c = cfg_load_mem("t.yaml", base, yaml, strlen(yaml), err, sizeof(err));
        EXPECT_MSG(c != NULL, "%s", err);
        if (c != NULL)
            EXPECT_STR(tmp_path("a.pem"), c->domains[0].cert);
        cfg_unref(c);
    }
}

TEST(file_errors)
{
    char path[600];
    struct cfg *c;
    char *big;

    setup();
    snprintf(path, sizeof(path), "%s/none.yaml", tmp_dir);
    c = cfg_load(path, err, sizeof(err));
    EXPECT(c == NULL);
    EXPECT_MSG(strncmp(err, path, strlen(path)) == 0 && strstr(err, ": cannot read: no such file"),
               "%s", err);
    cfg_unref(c);

    c = cfg_load(tmp_path("adir"), err, sizeof(err));
    EXPECT(c == NULL);
    EXPECT_MSG(strstr(err, "adir: cannot read") != NULL, "%s", err);
    cfg_unref(c);

    /* A relative cert in a file-level error names the folder of the config file. */
    tmp_write("conf/bad.yaml", LIS "domains:\n  example.test:\n    cert: nope.pem\n"
                                   "    backend: { c2s: \"127.0.0.1:1\" }\n");
    snprintf(path, sizeof(path), "%s/conf/bad.yaml", tmp_dir);
    c = cfg_load(path, err, sizeof(err));
    EXPECT(c == NULL);
    {
        char want[1024];

        snprintf(want, sizeof(want),
                 "%s:5: domains.example.test.cert: cannot read '%s/conf/nope.pem': no such file "
                 "or directory",
                 path, tmp_dir);
        EXPECT_STR(want, err);
    }
    cfg_unref(c);

    /* 1 MiB is the cap, in memory and in files; a comment is enough to reach it. */
    big = malloc(1024 * 1024 + 2);
    if (big == NULL)
        return;
    memset(big, '#', 1024 * 1024 + 1);
    big[1024 * 1024 + 1] = '\0';
    c = cfg_load_mem("big.yaml", tmp_dir, big, 1024 * 1024 + 1, err, sizeof(err));
    EXPECT(c == NULL);
    EXPECT_STR("big.yaml: larger than 1 MiB", err);
    tmp_write("big.yaml", big);
    c = cfg_load(tmp_path("big.yaml"), err, sizeof(err));
    EXPECT(c == NULL);
    EXPECT_MSG(strstr(err, "big.yaml: larger than 1 MiB") != NULL, "%s", err);
    /* Exactly 1 MiB is read (and is empty: all comment). */
    c = cfg_load_mem("big.yaml", tmp_dir, big, 1024 * 1024, err, sizeof(err));
    EXPECT(c == NULL);
    EXPECT_STR("big.yaml: the configuration is empty", err);
    free(big);

    /* Small or absent message buffers are fine. */
    c = cfg_load_mem("t.yaml", tmp_dir, "x: 1\n", 5, err, 8);
    EXPECT(c == NULL);
    EXPECT_STR("t.yaml:", err);
    c = cfg_load_mem("t.yaml", tmp_dir, "x: 1\n", 5, NULL, 0);
    EXPECT(c == NULL);
}

TEST(unreadable_cert)
{
    static const char yaml[] = LIS
        "domains:\n  example.test:\n    cert: noread.pem\n    backend: { c2s: \"127.0.0.1:1\" }\n";
    bool was_root = geteuid() == 0;
    struct cfg *c;

    setup();
    /* access(R_OK) lets root read a mode-0 file: as root, check as nobody (the saved uid
     * stays 0 so that we can come back), with the folder opened up for the duration. */
    if (was_root) {
        EXPECT_EQ(0, chmod(tmp_dir, 0711));
        if (setresuid(65534, 65534, 0) != 0) {
            EXPECT_MSG(0, "setresuid: %s", strerror(errno));
            chmod(tmp_dir, 0700);
            return;
        }
    }
    c = load(yaml);
    if (was_root && (setresuid(0, 0, 0) != 0 || chmod(tmp_dir, 0700) != 0)) {
        fprintf(stderr, "cannot return to root: %s\n", strerror(errno));
        exit(2);
    }
    EXPECT(c == NULL);
    EXPECT_MSG(strstr(err, "t.yaml:5: domains.example.test.cert: cannot read '") == err &&
                   strstr(err, "noread.pem': permission denied") != NULL,
               "%s", err);
    cfg_unref(c);
}

TEST(deep_nesting)
{
    char yaml[256];
    struct cfg *c;
    size_t n = 0;

    n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "x: ");
    for (int i = 0; i < 40; i++)
        yaml[n++] = '[';
    for (int i = 0; i < 40; i++)
        yaml[n++] = ']';
    yaml[n] = '\0';
    c = load(yaml);
    EXPECT(c == NULL);
    EXPECT_MSG(strstr(err, "t.yaml:1: YAML nesting deeper than 32 levels") == err, "%s", err);
}

TEST(refcount_and_find)
{
    struct cfg *c = load(full_yaml);

    EXPECT_MSG(c != NULL, "%s", err);
    if (c == NULL)
        return;
    EXPECT(cfg_ref(c) == c);
    EXPECT_EQ(2, c->refs);
    cfg_unref(c);
    EXPECT_EQ(1, c->refs);
    EXPECT(cfg_domain_find(c, "example.test") == &c->domains[0]);
    EXPECT(cfg_domain_find(c, "EXAMPLE.test") == &c->domains[0]);
    EXPECT(cfg_domain_find(c, "Other.Test") == &c->domains[1]);
    EXPECT(cfg_domain_find(c, "example") == NULL);
    EXPECT(cfg_domain_find(c, "example.test.") == NULL);
    EXPECT(cfg_domain_find(c, "") == NULL);
    EXPECT(cfg_domain_find(c, NULL) == NULL);
    EXPECT(cfg_domain_find(NULL, "example.test") == NULL);
    cfg_unref(c); /* frees: ASan/valgrind report a leak or double free otherwise */
    cfg_unref(NULL);
    EXPECT(cfg_ref(NULL) == NULL);
}

/* s2s:, resolve: and admin: (issue 3, issue 4): values, defaults and per-remote policy. */
TEST(s2s_resolve_admin)
{
    struct cfg *c = load(DOM LIS "s2s:\n"                                    /* 6 */
                                 "  verify: optional\n"                      /* 7 */
                                 "  state_file: state/certs\n"               /* 8 */
                                 "  dialback_secret_file: /etc/xtp/secret\n" /* 9 */
                                 "  connect_timeout: 3s\n"                   /* 10 */
                                 "  remotes:\n"                              /* 11 */
                                 "    Legacy.Example: { verify: required, tls: opportunistic }\n"
                                 "    pinned.test: { pin: true }\n" /* 13 */
                                 "resolve:\n"                       /* 14 */
                                 "  static: { other.test: \"127.0.0.1:25269\", pinned.test: "
                                 "\"[::1]:5269\" }\n"
                                 "  nameservers: [\"127.0.0.1:5353\"]\n"
                                 "  timeout: 2s\n"
                                 "admin: { listen: \"127.0.0.1:9480\" }\n");
    const struct cfg_remote *r;

    EXPECT_MSG(c != NULL, "%s", err);
    if (c == NULL)
        return;
    EXPECT_EQ(CFG_VERIFY_OPTIONAL, c->s2s_verify);
    EXPECT_EQ(CFG_S2S_TLS_REQUIRED, c->s2s_tls);
    EXPECT_STR(tmp_path("state/certs"), c->state_file);
    EXPECT_STR("/etc/xtp/secret", c->dialback_secret_file);
    EXPECT_EQ(3000, c->s2s_connect_timeout_ms);
    EXPECT_EQ(2000, c->resolve_timeout_ms);
    EXPECT_EQ(1, c->nnameservers);
    EXPECT_STR("127.0.0.1:5353", c->nameservers[0].text);
    EXPECT(c->has_admin);
    EXPECT_STR("127.0.0.1:9480", c->admin_listen.text);
    EXPECT_EQ(3, c->nremotes);
    r = cfg_remote_find(c, "LEGACY.example");
    EXPECT(r != NULL && r->verify == CFG_VERIFY_REQUIRED && r->tls == CFG_S2S_TLS_OPPORTUNISTIC &&
           !r->pin && !r->has_static);
    r = cfg_remote_find(c, "pinned.test");
    EXPECT(r != NULL && r->pin && r->has_static && r->verify == CFG_VERIFY_OPTIONAL);
    EXPECT(r != NULL && strcmp(r->static_addr.text, "[::1]:5269") == 0);
    r = cfg_remote_find(c, "other.test");
    EXPECT(r != NULL && r->has_static && r->tls == CFG_S2S_TLS_REQUIRED && !r->pin);
    EXPECT(cfg_remote_find(c, "nowhere.test") == NULL);
    EXPECT_EQ(CFG_VERIFY_OPTIONAL, cfg_remote_verify(c, "nowhere.test"));
    EXPECT_EQ(CFG_VERIFY_REQUIRED, cfg_remote_verify(c, "legacy.example"));
    EXPECT_EQ(CFG_S2S_TLS_OPPORTUNISTIC, cfg_remote_tls(c, "legacy.example"));
    cfg_unref(c);

    /* Defaults: verify and TLS required; no admin; the packaged paths. */
    c = load(DOM LIS);
    EXPECT(c != NULL);
    if (c != NULL) {
        EXPECT_EQ(CFG_VERIFY_REQUIRED, c->s2s_verify);
        EXPECT_EQ(CFG_S2S_TLS_REQUIRED, cfg_remote_tls(c, "any.test"));
        EXPECT(!c->has_admin);
        EXPECT_STR(CFG_DEFAULT_DIALBACK_SECRET, c->dialback_secret_file);
        EXPECT_STR(CFG_DEFAULT_STATE_FILE, c->state_file);
        EXPECT(c->trust_anchor_file == NULL);
        EXPECT_EQ(10000, c->s2s_connect_timeout_ms);
    }
    cfg_unref(c);
}

TEST(names)
{
    EXPECT_STR("c2s", cfg_kind_name(CFG_KIND_C2S));
    EXPECT_STR("s2s", cfg_kind_name(CFG_KIND_S2S));
    EXPECT_STR("s2s-out", cfg_kind_name(CFG_KIND_S2S_OUT));
    EXPECT_STR("starttls", cfg_tls_name(CFG_TLS_STARTTLS));
    EXPECT_STR("direct", cfg_tls_name(CFG_TLS_DIRECT));
    EXPECT_STR("none", cfg_tls_name(CFG_TLS_NONE));
}

/* config/example.yaml must load. Its certificate paths are relative, so it is loaded from
 * memory with the temporary folder as base, where the files it names are created first. */
TEST(example_config)
{
    const char *src = getenv("XTP_SRC");
    char path[1024];
    struct cfg *c;
    FILE *f;
    char *text;
    long n;

    setup();
    snprintf(path, sizeof(path), "%s/config/example.yaml", src != NULL ? src : "../..");
    f = fopen(path, "rb");
    EXPECT_MSG(f != NULL, "%s: %s (set XTP_SRC to the source folder)", path, strerror(errno));
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = malloc((size_t)n + 1);
    if (text == NULL || fread(text, 1, (size_t)n, f) != (size_t)n) {
        EXPECT_MSG(0, "cannot read %s", path);
        free(text);
        fclose(f);
        return;
    }
    fclose(f);
    text[n] = '\0';
    tmp_mkdir("certs/example.test");
    tmp_mkdir("certs/other.test");
    tmp_write("certs/example.test/fullchain.pem", "x\n");
    tmp_write("certs/example.test/privkey.pem", "x\n");
    tmp_write("certs/other.test/combined.pem", "x\n");
    c = cfg_load_mem(path, tmp_dir, text, (size_t)n, err, sizeof(err));
    EXPECT_MSG(c != NULL, "%s", err);
    if (c != NULL) {
        EXPECT_EQ(2, c->ndomains);
        EXPECT_EQ(5, c->nlisteners);
        EXPECT_EQ(CFG_KIND_S2S_OUT, c->listeners[4].kind);
        EXPECT_EQ(CFG_VERIFY_OPTIONAL, cfg_remote_verify(c, "legacy.example"));
        EXPECT(c->has_admin);
        EXPECT_STR("xmpp-tls-proxy", c->user ? c->user : "(none)");
        EXPECT_STR("example.test", c->domains[0].name);
        EXPECT_STR(tmp_path("certs/example.test/privkey.pem"), c->domains[0].key);
        EXPECT_STR(c->domains[1].cert, c->domains[1].key);
    }
    cfg_unref(c);
    free(text);
}

TEST_MAIN(parse_size, parse_duration, parse_addr, minimal_and_defaults, full, errors,
          error_rows_have_valid_twins, domain_names, relative_paths, file_errors, unreadable_cert,
          deep_nesting, refcount_and_find, s2s_resolve_admin, names, example_config)
