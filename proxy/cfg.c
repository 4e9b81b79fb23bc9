/* cfg.c: the YAML configuration file -> an immutable, reference-counted struct cfg
 * (design.md §4; the keys are listed in docs/config.md).
 *
 * The text is read twice. First the libyaml event parser runs over it alone, to report syntax
 * errors with their line and to refuse what the document loader would accept silently: anchors
 * and aliases (an alias is a pointer into the tree, so a few hundred bytes can describe a tree
 * of billions of nodes), more than one document, and absurd nesting. Then yaml_parser_load()
 * builds the node tree, which the key tables below walk: every key has a fixed node type and a
 * parser, every other key is an error, and every error names FILE:LINE (libyaml counts lines
 * from 0, operators from 1). Checks that need the whole file (required sections, backends the
 * listeners need, certificate files) run last. PEM contents are left to tls.c.
 * tests: test_cfg.c, fuzz: fuzz_cfg.c */
#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "err.h"

#define CFG_MAX_INPUT       (1024 * 1024) /* bytes of YAML we accept at all */
#define CFG_MAX_DEPTH       32            /* nested collections; our schema needs 4 */
#define CFG_MAX_LISTENERS   256           /* each one is a bound socket per worker */
#define CFG_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define CFG_MAX_REMOTES     10000 /* s2s.remotes + resolve.static entries */
#define CFG_PATH_MAX        512   /* "domains.<253 bytes>.backend.c2s" and the like */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct cfg_ctx {
    const char *name;     /* borrowed: the file name used in messages */
    const char *base_dir; /* borrowed: relative paths start here; NULL = current folder */
    char *err;            /* borrowed: the caller's message buffer */
    size_t errlen;
    yaml_document_t *doc; /* borrowed: the loaded tree */
    struct cfg *c;        /* owned until load() returns it */
};

/* A value parser: node val belongs to key (for its line); obj is the struct being filled. */
typedef int cfg_parse_fn(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                         void *obj);

struct cfg_key {
    const char *name;
    yaml_node_type_t type; /* checked before parse() is called */
    cfg_parse_fn *parse;
};

/* A listener while its mapping is read: which keys were given, and where. */
struct listener_state {
    struct cfg_listener *l; /* borrowed: an element of cfg->listeners */
    int tls_line;           /* 0 when `tls:` is absent */
    int name_line;
    int listen_line;
    int allow_line; /* 0 when `allow_nonlocal:` is absent */
    int pp_line;    /* 0 when `proxy_protocol:` is absent */
};

/* The 1-based line where node starts. */
static int node_line(const yaml_node_t *n)
{
    return n->start_mark.line >= (size_t)INT_MAX ? INT_MAX : (int)n->start_mark.line + 1;
}

/* Writes "NAME:LINE: message" (or "NAME: message" when line is 0) into the caller's buffer and
 * returns XTP_ECONFIG, so that callers can `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(struct cfg_ctx *cx, int line, const char *fmt,
                                                      ...)
{
    va_list ap;
    int n;

    if (cx->err == NULL || cx->errlen == 0)
        return XTP_ECONFIG;
    if (line > 0)
        n = snprintf(cx->err, cx->errlen, "%s:%d: ", cx->name, line);
    else
        n = snprintf(cx->err, cx->errlen, "%s: ", cx->name);
    if (n < 0)
        n = 0;
    if ((size_t)n < cx->errlen) {
        va_start(ap, fmt);
        vsnprintf(cx->err + n, cx->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return XTP_ECONFIG;
}

/* Copies s into buf (cap >= 4) for a message: control bytes become '?' so that a value from
 * the file cannot drive the operator's terminal, and long values end in "...". */
static const char *shown(char *buf, size_t cap, const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < cap; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    if (s[i] != '\0')
        memcpy(buf + cap - 4, "...", 4);
    return buf;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!is_digit(*s))
            return false;
    return true;
}

/* ---- value syntax: sizes, durations, addresses ------------------------------------------ */

/* Each returns NULL on success or why s is wrong. strtoull() alone would accept leading
 * blanks and signs ("-1" wraps around), so the first byte must be a digit. */
static const char *size_parse(const char *s, size_t *out)
{
    static const struct {
        const char *unit;
        unsigned long long mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000ULL},
        {"KiB", 1ULL << 10},
        {"MB", 1000ULL * 1000},
        {"MiB", 1ULL << 20},
        {"GB", 1000ULL * 1000 * 1000},
        {"GiB", 1ULL << 30},
    };
    unsigned long long v;
    char *end;

    if (!is_digit(s[0]))
        return "a size starts with a digit";
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return "too large";
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        if (v > SIZE_MAX / units[i].mult)
            return "too large";
        *out = (size_t)(v * units[i].mult);
        return NULL;
    }
    return "the unit must be B, KB, KiB, MB, MiB, GB or GiB";
}

static const char *duration_parse(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
    unsigned long long v;
    char *end;

    if (!is_digit(s[0]))
        return "a duration starts with a digit";
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return "too large";
    if (*end == '\0')
        return "a unit is required (ms, s, m or h)";
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        if (v > UINT64_MAX / units[i].mult)
            return "too large";
        *ms = v * units[i].mult;
        return NULL;
    }
    return "the unit must be ms, s, m or h";
}

static bool has_letter(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))
            return true;
    return false;
}

/* "a.b.c.d:port" or "[v6]:port", numeric only: a name would need DNS at load time, and an
 * IPv6 address without brackets cannot be told from its port. */
static const char *addr_parse(const char *s, struct cfg_addr *out)
{
    struct cfg_addr a;
    const char *host, *port;
    size_t hostlen, n = strlen(s);
    char hostbuf[INET6_ADDRSTRLEN];
    long p;
    char *end;

    memset(&a, 0, sizeof(a));
    if (n == 0)
        return "empty";
    if (n >= sizeof(a.text))
        return "too long for a numeric address";
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL)
            return "missing ']' after the IPv6 address";
        if (close[1] != ':')
            return "missing ':port' after ']'";
        host = s + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');

        if (colon == NULL)
            return "missing ':port'";
        host = s;
        hostlen = (size_t)(colon - s);
        port = colon + 1;
        if (memchr(host, ':', hostlen) != NULL)
            return "an IPv6 address needs brackets, as in [::1]:5222";
    }
    if (hostlen == 0)
        return "missing address before ':port' (0.0.0.0 or [::] means every address)";
    if (hostlen >= sizeof(hostbuf))
        return "not a numeric address";
    memcpy(hostbuf, host, hostlen);
    hostbuf[hostlen] = '\0';

    if (!all_digits(port) || strlen(port) > 5)
        return "the port must be a number from 1 to 65535";
    errno = 0;
    p = strtol(port, &end, 10);
    if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
        return "the port must be a number from 1 to 65535";

    if (s[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

        if (inet_pton(AF_INET6, hostbuf, &sin6->sin6_addr) != 1)
            return "not a numeric IPv6 address";
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)p);
        a.len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

        if (inet_pton(AF_INET, hostbuf, &sin->sin_addr) != 1)
            return has_letter(hostbuf, hostlen)
                       ? "host names are not supported: use a numeric address such as "
                         "127.0.0.1:5222 or [::1]:5222"
                       : "not a numeric IPv4 address";
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)p);
        a.len = sizeof(*sin);
    }
    memcpy(a.text, s, n + 1);
    *out = a;
    return NULL;
}

int cfg_parse_size(const char *s, size_t *out)
{
    return s != NULL && size_parse(s, out) == NULL ? 0 : XTP_ECONFIG;
}

int cfg_parse_duration(const char *s, uint64_t *ms)
{
    return s != NULL && duration_parse(s, ms) == NULL ? 0 : XTP_ECONFIG;
}

int cfg_parse_addr(const char *s, struct cfg_addr *out)
{
    return s != NULL && addr_parse(s, out) == NULL ? 0 : XTP_ECONFIG;
}

/* True if binding a and b at once would collide or silently share traffic (workers bind with
 * SO_REUSEPORT, so the kernel would not refuse it): the same port, and the same address or a
 * wildcard covering the other. A [::] socket also receives IPv4 unless IPV6_V6ONLY is set. */
static bool addr_overlap(const struct cfg_addr *a, const struct cfg_addr *b)
{
    const struct cfg_addr *v6 = a, *other = b;

    if (a->ss.ss_family == AF_INET && b->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;

        return x->sin_port == y->sin_port &&
               (x->sin_addr.s_addr == y->sin_addr.s_addr ||
                x->sin_addr.s_addr == htonl(INADDR_ANY) || y->sin_addr.s_addr == htonl(INADDR_ANY));
    }
    if (a->ss.ss_family == AF_INET) {
        v6 = b;
        other = a;
    }
    const struct sockaddr_in6 *x = (const void *)&v6->ss;
    if (other->ss.ss_family == AF_INET) {
        const struct sockaddr_in *y = (const void *)&other->ss;

        return x->sin6_port == y->sin_port && IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr);
    }
    const struct sockaddr_in6 *y = (const void *)&other->ss;
    return x->sin6_port == y->sin6_port &&
           (IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr) ||
            IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
}

/* ---- names and paths ------------------------------------------------------------------- */

static void ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* RFC 1035 §2.3.1 / RFC 1123 §2.1 host names (the only domainparts we can hold certificates
 * for): labels of 1-63 [a-z0-9-] not starting or ending with '-', 253 bytes in all.
 * s is already lower-case. */
static bool domain_name_ok(const char *s)
{
    size_t label = 0, n = strlen(s);

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];

        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || is_digit(ch) || ch == '-'))
            return false;
        if (label == 0 && ch == '-')
            return false;
        label++;
    }
    return true;
}

/* Listener names show up in logs and metric labels: keep them to a plain token. */
static bool listener_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || is_digit(*s) || *s == '-' ||
              *s == '_' || *s == '.'))
            return false;
    return true;
}

/* path as given, or base_dir/path when path is relative and a base folder is known. Heap. */
static char *resolve(const char *base_dir, const char *path)
{
    size_t blen, plen;
    char *out;

    if (path[0] == '/' || base_dir == NULL || base_dir[0] == '\0')
        return strdup(path);
    blen = strlen(base_dir);
    plen = strlen(path);
    out = malloc(blen + plen + 2);
    if (out == NULL)
        return NULL;
    memcpy(out, base_dir, blen);
    if (base_dir[blen - 1] != '/')
        out[blen++] = '/';
    memcpy(out + blen, path, plen + 1);
    return out;
}

/* ---- the node tree --------------------------------------------------------------------- */

static const char *type_name(yaml_node_type_t t)
{
    switch (t) {
    case YAML_SCALAR_NODE:
        return "a single value";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "a YAML node";
    }
}

static yaml_node_t *get_node(struct cfg_ctx *cx, int index)
{
    return yaml_document_get_node(cx->doc, index);
}

/* The text of the scalar node n, the value of key (NULL when n is itself a key): no NUL inside
 * (the rest of the program uses C strings), and not empty or null, which in a config file is a
 * value left out by mistake. Errors name the key's line: an empty value has no place of its
 * own (libyaml marks it wherever the next token starts). */
static int get_text(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *n,
                    const char **out)
{
    int line = node_line(key != NULL ? key : n);
    const char *s = NULL;

    if (n->type != YAML_SCALAR_NODE)
        return fail(cx, line, "%s must be %s", path, type_name(YAML_SCALAR_NODE));
    s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length)
        return fail(cx, line, "%s contains a NUL byte", path);
    if (s[0] == '\0' || (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                         (strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
                          strcmp(s, "NULL") == 0)))
        return fail(cx, line, "%s must not be empty", path);
    *out = s;
    return 0;
}

/* true | false (YAML 1.1's yes/no/on/off are refused: they surprise people). */
static int get_bool(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                    bool *out)
{
    const char *s = NULL;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0)
        *out = false;
    else
        return fail(cx, node_line(val), "%s must be true or false, not '%s'", path,
                    shown(q, sizeof(q), s));
    return 0;
}

/* One of two words: *out = 0 for a, 1 for b. */
static int get_choice(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                      const char *a, const char *b, int *out)
{
    const char *s = NULL;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (strcmp(s, a) == 0)
        *out = 0;
    else if (strcmp(s, b) == 0)
        *out = 1;
    else
        return fail(cx, node_line(val), "%s must be %s or %s, not '%s'", path, a, b,
                    shown(q, sizeof(q), s));
    return 0;
}

/* A file path, resolved against the config file's folder, replacing *dst. */
static int get_path(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                    char **dst)
{
    const char *s = NULL;
    char *p;
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if ((p = resolve(cx->base_dir, s)) == NULL)
        return fail(cx, 0, "out of memory");
    free(*dst);
    *dst = p;
    return 0;
}

/* Walks the mapping map with the key table keys[0..nkeys): each key must be a scalar listed
 * there and given once, with a value of the listed node type, which keys[i].parse() reads into
 * obj. section names the mapping in messages (NULL: the top level). seen[i] receives the line
 * of keys[i], or stays 0 if absent; the caller zeroes it and checks required keys. */
static int parse_map(struct cfg_ctx *cx, const char *section, yaml_node_t *map,
                     const struct cfg_key *keys, size_t nkeys, void *obj, int *seen)
{
    const char *where = section != NULL ? section : "the top level";

    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = get_node(cx, p->key), *v = get_node(cx, p->value);
        char path[CFG_PATH_MAX], q[80];
        const char *name;
        size_t i;
        int rc;

        if (k == NULL || v == NULL)
            return fail(cx, node_line(map), "YAML: broken document in %s", where);
        if (k->type != YAML_SCALAR_NODE)
            return fail(cx, node_line(k), "keys in %s must be plain names", where);
        if ((rc = get_text(cx, "a key", NULL, k, &name)) != 0)
            return rc;
        for (i = 0; i < nkeys && strcmp(keys[i].name, name) != 0; i++)
            ;
        if (i == nkeys)
            return fail(cx, node_line(k), "unknown key '%s' in %s", shown(q, sizeof(q), name),
                        where);
        if (seen[i] != 0)
            return fail(cx, node_line(k), "duplicate key '%s' in %s (first on line %d)", name,
                        where, seen[i]);
        seen[i] = node_line(k);
        snprintf(path, sizeof(path), "%s%s%s", section ? section : "", section ? "." : "", name);
        if (v->type != keys[i].type)
            return fail(cx, node_line(k), "%s must be %s", path, type_name(keys[i].type));
        if ((rc = keys[i].parse(cx, path, k, v, obj)) != 0)
            return rc;
    }
    return 0;
}

/* ---- log: ------------------------------------------------------------------------------- */

static int parse_log_level(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                           void *obj)
{
    struct cfg *c = obj;
    const char *s = NULL;
    char q[80];
    int rc, level;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    level = log_level_parse(s);
    if (level < 0)
        return fail(cx, node_line(val), "%s must be error, warn, info or debug, not '%s'", path,
                    shown(q, sizeof(q), s));
    c->log_level = (enum log_level)level;
    return 0;
}

static int parse_log_format(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    const char *s = NULL;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (strcmp(s, "text") == 0)
        c->log_format = LOG_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        c->log_format = LOG_FORMAT_JSON;
    else
        return fail(cx, node_line(val), "%s must be text or json, not '%s'", path,
                    shown(q, sizeof(q), s));
    return 0;
}

static const struct cfg_key log_keys[] = {
    {"level", YAML_SCALAR_NODE, parse_log_level},
    {"format", YAML_SCALAR_NODE, parse_log_format},
};

static int parse_log(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                     void *obj)
{
    int seen[ARRAY_SIZE(log_keys)] = {0};

    return parse_map(cx, path, val, log_keys, ARRAY_SIZE(log_keys), obj, seen);
}

/* ---- tls: ------------------------------------------------------------------------------- */

static int parse_tls_min_version(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                 yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    const char *s = NULL;
    char q[80];
    int rc;

    /* Written 1.2 without quotes, YAML 1.1 reads a float; the scalar text is the same. */
    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (strcmp(s, "1.2") == 0)
        c->tls_min_version = 12;
    else if (strcmp(s, "1.3") == 0)
        c->tls_min_version = 13;
    else
        return fail(cx, node_line(val), "%s must be \"1.2\" or \"1.3\", not '%s'", path,
                    shown(q, sizeof(q), s));
    return 0;
}

static int parse_tls_ca_file(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                             yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    const char *s = NULL;
    char *p;
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if ((p = resolve(cx->base_dir, s)) == NULL)
        return fail(cx, 0, "out of memory");
    free(c->ca_file);
    c->ca_file = p;
    c->ca_file_line = node_line(key);
    return 0;
}

static int parse_tls_ticket_key_file(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                     yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;

    c->ticket_key_line = node_line(key);
    return get_path(cx, path, key, val, &c->ticket_key_file);
}

static const struct cfg_key tls_keys[] = {
    {"min_version", YAML_SCALAR_NODE, parse_tls_min_version},
    {"ca_file", YAML_SCALAR_NODE, parse_tls_ca_file},
    {"ticket_key_file", YAML_SCALAR_NODE, parse_tls_ticket_key_file},
};

static int parse_tls(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                     void *obj)
{
    int seen[ARRAY_SIZE(tls_keys)] = {0};

    return parse_map(cx, path, val, tls_keys, ARRAY_SIZE(tls_keys), obj, seen);
}

/* ---- domains: --------------------------------------------------------------------------- */

static int parse_domain_path(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                             yaml_node_t *val, char **dst, int *line)
{
    const char *s = NULL;
    char *p;
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if ((p = resolve(cx->base_dir, s)) == NULL)
        return fail(cx, 0, "out of memory");
    *dst = p;
    *line = node_line(key);
    return 0;
}

static int parse_domain_cert(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                             yaml_node_t *val, void *obj)
{
    struct cfg_domain *d = obj;

    return parse_domain_path(cx, path, key, val, &d->cert, &d->cert_line);
}

static int parse_domain_key(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, void *obj)
{
    struct cfg_domain *d = obj;

    return parse_domain_path(cx, path, key, val, &d->key, &d->key_line);
}

static int parse_addr_value(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, struct cfg_addr *dst)
{
    const char *s, *why;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if ((why = addr_parse(s, dst)) != NULL)
        return fail(cx, node_line(val), "%s: '%s': %s", path, shown(q, sizeof(q), s), why);
    return 0;
}

static int parse_backend_c2s(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                             yaml_node_t *val, void *obj)
{
    struct cfg_domain *d = obj;

    d->has_backend_c2s = true;
    return parse_addr_value(cx, path, key, val, &d->backend_c2s);
}

static int parse_backend_s2s(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                             yaml_node_t *val, void *obj)
{
    struct cfg_domain *d = obj;

    d->has_backend_s2s = true;
    return parse_addr_value(cx, path, key, val, &d->backend_s2s);
}

static const struct cfg_key backend_keys[] = {
    {"c2s", YAML_SCALAR_NODE, parse_backend_c2s},
    {"s2s", YAML_SCALAR_NODE, parse_backend_s2s},
};

static int parse_domain_backend(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                yaml_node_t *val, void *obj)
{
    int seen[ARRAY_SIZE(backend_keys)] = {0};

    return parse_map(cx, path, val, backend_keys, ARRAY_SIZE(backend_keys), obj, seen);
}

enum { DOMAIN_CERT = 0, DOMAIN_KEY, DOMAIN_BACKEND };
static const struct cfg_key domain_keys[] = {
    [DOMAIN_CERT] = {"cert", YAML_SCALAR_NODE, parse_domain_cert},
    [DOMAIN_KEY] = {"key", YAML_SCALAR_NODE, parse_domain_key},
    [DOMAIN_BACKEND] = {"backend", YAML_MAPPING_NODE, parse_domain_backend},
};

static int domain_order(const void *a, const void *b)
{
    const struct cfg_domain *x = *(const struct cfg_domain *const *)a;
    const struct cfg_domain *y = *(const struct cfg_domain *const *)b;
    int r = strcmp(x->name, y->name);

    return r != 0 ? r : (x->line > y->line) - (x->line < y->line);
}

/* Names are stored lower-case, so a duplicate differing only in case is equal here. Sorting
 * keeps this O(n log n) for hosting setups with many domains; the message names the earliest
 * repeated entry in the file. */
static int check_duplicate_domains(struct cfg_ctx *cx, struct cfg *c)
{
    const struct cfg_domain **v, *first = NULL, *again = NULL;

    if (c->ndomains < 2)
        return 0;
    if ((v = calloc(c->ndomains, sizeof(*v))) == NULL)
        return fail(cx, 0, "out of memory");
    for (size_t i = 0; i < c->ndomains; i++)
        v[i] = &c->domains[i];
    qsort(v, c->ndomains, sizeof(*v), domain_order);
    for (size_t i = 1; i < c->ndomains; i++) {
        /* v[i - 1] is the first of its group when the one before it has another name. */
        bool group_start = i == 1 || strcmp(v[i - 2]->name, v[i - 1]->name) != 0;

        if (group_start && strcmp(v[i - 1]->name, v[i]->name) == 0 &&
            (again == NULL || v[i]->line < again->line)) {
            first = v[i - 1];
            again = v[i];
        }
    }
    free(v);
    if (again != NULL)
        return fail(cx, again->line, "duplicate domain '%s' (first on line %d)", again->name,
                    first->line);
    return 0;
}

static int parse_domains(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                         void *obj)
{
    struct cfg *c = obj;
    size_t n = (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
    int rc;

    if (n == 0)
        return fail(cx, node_line(key), "domains must list at least one domain");
    if ((c->domains = calloc(n, sizeof(*c->domains))) == NULL)
        return fail(cx, 0, "out of memory");
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = get_node(cx, p->key), *v = get_node(cx, p->value);
        int seen[ARRAY_SIZE(domain_keys)] = {0};
        char section[CFG_PATH_MAX], q[80];
        struct cfg_domain *d;
        const char *raw;

        if (k == NULL || v == NULL)
            return fail(cx, node_line(val), "YAML: broken document in domains");
        if (k->type != YAML_SCALAR_NODE)
            return fail(cx, node_line(k), "keys in domains must be domain names");
        if ((rc = get_text(cx, "a domain name", NULL, k, &raw)) != 0)
            return rc;
        d = &c->domains[c->ndomains++];
        d->line = node_line(k);
        if ((d->name = strdup(raw)) == NULL)
            return fail(cx, 0, "out of memory");
        ascii_lower(d->name);
        if (!domain_name_ok(d->name))
            return fail(cx, d->line,
                        "'%s' is not a domain name (labels of a-z, 0-9 and '-', 1 to 63 "
                        "characters, no '-' first or last; at most 253 characters in all)",
                        shown(q, sizeof(q), raw));
        snprintf(section, sizeof(section), "domains.%s", d->name);
        if (v->type != YAML_MAPPING_NODE)
            return fail(cx, d->line, "%s must be a mapping", section);
        if ((rc = parse_map(cx, section, v, domain_keys, ARRAY_SIZE(domain_keys), d, seen)) != 0)
            return rc;
        if (seen[DOMAIN_CERT] == 0)
            return fail(cx, d->line, "%s: missing required key 'cert'", section);
        if (seen[DOMAIN_KEY] == 0) {
            /* A PEM file may hold the chain and the key together. */
            if ((d->key = strdup(d->cert)) == NULL)
                return fail(cx, 0, "out of memory");
            d->key_line = d->cert_line;
        }
    }
    return check_duplicate_domains(cx, c);
}

/* ---- listeners: ------------------------------------------------------------------------- */

static int parse_listener_name(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                               yaml_node_t *val, void *obj)
{
    struct listener_state *st = obj;
    const char *s = NULL;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (!listener_name_ok(s))
        return fail(cx, node_line(val),
                    "%s must be 1 to 63 letters, digits, '-', '_' or '.', not '%s'", path,
                    shown(q, sizeof(q), s));
    if ((st->l->name = strdup(s)) == NULL)
        return fail(cx, 0, "out of memory");
    st->name_line = node_line(key);
    return 0;
}

static int parse_listener_listen(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                 yaml_node_t *val, void *obj)
{
    struct listener_state *st = obj;

    st->listen_line = node_line(key);
    return parse_addr_value(cx, path, key, val, &st->l->listen);
}

static int parse_listener_kind(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                               yaml_node_t *val, void *obj)
{
    struct listener_state *st = obj;
    const char *s = NULL;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (strcmp(s, "c2s") == 0)
        st->l->kind = CFG_KIND_C2S;
    else if (strcmp(s, "s2s") == 0)
        st->l->kind = CFG_KIND_S2S;
    else if (strcmp(s, "s2s-out") == 0)
        st->l->kind = CFG_KIND_S2S_OUT;
    else
        return fail(cx, node_line(val), "%s must be c2s, s2s or s2s-out, not '%s'", path,
                    shown(q, sizeof(q), s));
    return 0;
}

static int parse_listener_tls(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                              yaml_node_t *val, void *obj)
{
    struct listener_state *st = obj;
    const char *s = NULL;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (strcmp(s, "starttls") == 0)
        st->l->tls = CFG_TLS_STARTTLS;
    else if (strcmp(s, "direct") == 0)
        st->l->tls = CFG_TLS_DIRECT;
    else
        return fail(cx, node_line(val), "%s must be starttls or direct, not '%s'", path,
                    shown(q, sizeof(q), s));
    st->tls_line = node_line(key);
    return 0;
}

static int parse_listener_allow_nonlocal(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                         yaml_node_t *val, void *obj)
{
    struct listener_state *st = obj;

    st->allow_line = node_line(key);
    return get_bool(cx, path, key, val, &st->l->allow_nonlocal);
}

static int parse_listener_proxy_protocol(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                         yaml_node_t *val, void *obj)
{
    struct listener_state *st = obj;

    st->pp_line = node_line(key);
    return get_bool(cx, path, key, val, &st->l->proxy_protocol);
}

enum {
    LISTENER_NAME = 0,
    LISTENER_LISTEN,
    LISTENER_KIND,
    LISTENER_TLS,
    LISTENER_ALLOW,
    LISTENER_PROXY_PROTOCOL
};
static const struct cfg_key listener_keys[] = {
    [LISTENER_NAME] = {"name", YAML_SCALAR_NODE, parse_listener_name},
    [LISTENER_LISTEN] = {"listen", YAML_SCALAR_NODE, parse_listener_listen},
    [LISTENER_KIND] = {"kind", YAML_SCALAR_NODE, parse_listener_kind},
    [LISTENER_TLS] = {"tls", YAML_SCALAR_NODE, parse_listener_tls},
    [LISTENER_ALLOW] = {"allow_nonlocal", YAML_SCALAR_NODE, parse_listener_allow_nonlocal},
    [LISTENER_PROXY_PROTOCOL] = {"proxy_protocol", YAML_SCALAR_NODE, parse_listener_proxy_protocol},
};

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static bool addr_is_loopback(const struct cfg_addr *a)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(v6) || (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
    }
    return false;
}

/* Completes listener i once its mapping is read: required keys, the tls default, and
 * uniqueness against listeners 0..i-1 (at most CFG_MAX_LISTENERS, so pairwise is cheap). */
static int finish_listener(struct cfg_ctx *cx, size_t i, struct listener_state *st, const int *seen)
{
    struct cfg_listener *l = st->l;
    const struct cfg_listener *all = cx->c->listeners;

    for (size_t k = 0; k <= LISTENER_KIND; k++)
        if (seen[k] == 0)
            return fail(cx, l->line, "listeners[%zu]: missing required key '%s'", i,
                        listener_keys[k].name);
    if (l->kind == CFG_KIND_S2S_OUT) {
        /* The backend reaches s2s-out in plaintext over loopback; TLS is on the remote leg. */
        if (st->tls_line != 0)
            return fail(cx, st->tls_line,
                        "listeners[%zu].tls is not allowed for kind s2s-out (the backend "
                        "connects in plaintext; the remote side always uses TLS)",
                        i);
        l->tls = CFG_TLS_NONE;
        if (st->pp_line != 0)
            return fail(cx, st->pp_line,
                        "listeners[%zu].proxy_protocol is not allowed for kind s2s-out (the "
                        "backend connects directly)",
                        i);
        /* It answers the backend's dialback: anyone who can reach it could impersonate. */
        if (!l->allow_nonlocal && !addr_is_loopback(&l->listen))
            return fail(cx, st->listen_line,
                        "listener '%s' (s2s-out) on %s is not a loopback address: the backend's "
                        "plaintext dialback must not be reachable from outside (set "
                        "allow_nonlocal: true if a private network makes this safe)",
                        l->name, l->listen.text);
    } else {
        if (st->allow_line != 0)
            return fail(cx, st->allow_line,
                        "listeners[%zu].allow_nonlocal is only for kind s2s-out", i);
        if (st->tls_line == 0)
            l->tls = CFG_TLS_STARTTLS;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(all[j].name, l->name) == 0)
            return fail(cx, st->name_line, "duplicate listener name '%s' (first on line %d)",
                        l->name, all[j].line);
        if (addr_overlap(&all[j].listen, &l->listen))
            return fail(cx, st->listen_line,
                        "listener '%s' on %s would share its address with listener '%s' on "
                        "%s (line %d)",
                        l->name, l->listen.text, all[j].name, all[j].listen.text, all[j].line);
    }
    return 0;
}

static int parse_listeners(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                           void *obj)
{
    struct cfg *c = obj;
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    int rc;

    if (n == 0)
        return fail(cx, node_line(key), "listeners must list at least one listener");
    if (n > CFG_MAX_LISTENERS)
        return fail(cx, node_line(key), "listeners: more than %d listeners", CFG_MAX_LISTENERS);
    if ((c->listeners = calloc(n, sizeof(*c->listeners))) == NULL)
        return fail(cx, 0, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = get_node(cx, val->data.sequence.items.start[i]);
        int seen[ARRAY_SIZE(listener_keys)] = {0};
        struct listener_state st = {0};
        char section[32];

        if (item == NULL)
            return fail(cx, node_line(val), "YAML: broken document in listeners");
        snprintf(section, sizeof(section), "listeners[%zu]", i);
        if (item->type != YAML_MAPPING_NODE)
            return fail(cx, node_line(item), "%s must be a mapping", section);
        st.l = &c->listeners[c->nlisteners++];
        st.l->line = node_line(item);
        rc = parse_map(cx, section, item, listener_keys, ARRAY_SIZE(listener_keys), &st, seen);
        if (rc != 0 || (rc = finish_listener(cx, i, &st, seen)) != 0)
            return rc;
    }
    return 0;
}

/* ---- limits: ---------------------------------------------------------------------------- */

static int parse_max_stanza(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    const char *s, *why;
    char q[80];
    size_t v;
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if ((why = size_parse(s, &v)) != NULL)
        return fail(cx, node_line(val), "%s: '%s' is not a size like 256KiB: %s", path,
                    shown(q, sizeof(q), s), why);
    if (v < 4 * 1024 || v > 16 * 1024 * 1024)
        return fail(cx, node_line(val), "%s must be from 4KiB to 16MiB, not %s", path,
                    shown(q, sizeof(q), s));
    c->max_stanza = v;
    return 0;
}

/* A duration value from min_ms to max_ms (both in the message as written in the schema). */
static int get_duration(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                        uint64_t min_ms, uint64_t max_ms, const char *range, uint64_t *out)
{
    const char *s, *why;
    char q[80];
    uint64_t ms;
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if ((why = duration_parse(s, &ms)) != NULL)
        return fail(cx, node_line(val), "%s: '%s' is not a duration like 10s: %s", path,
                    shown(q, sizeof(q), s), why);
    if (ms < min_ms || ms > max_ms)
        return fail(cx, node_line(val), "%s must be from %s, not %s", path, range,
                    shown(q, sizeof(q), s));
    *out = ms;
    return 0;
}

static int parse_handshake_timeout(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                   yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;

    return get_duration(cx, path, key, val, 100, 10 * 60 * 1000, "100ms to 10m",
                        &c->handshake_timeout_ms);
}

static int parse_max_connections(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                 yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    const char *s = NULL;
    char q[80], *end;
    unsigned long v;
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (!all_digits(s))
        return fail(cx, node_line(val), "%s must be a whole number, not '%s'", path,
                    shown(q, sizeof(q), s));
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 1000000)
        return fail(cx, node_line(val), "%s must be from 1 to 1000000, not %s", path,
                    shown(q, sizeof(q), s));
    c->max_connections = (unsigned)v;
    return 0;
}

static int parse_drain_timeout(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                               yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;

    return get_duration(cx, path, key, val, 0, 60 * 60 * 1000, "0s to 1h", &c->drain_timeout_ms);
}

static const struct cfg_key limits_keys[] = {
    {"max_stanza", YAML_SCALAR_NODE, parse_max_stanza},
    {"handshake_timeout", YAML_SCALAR_NODE, parse_handshake_timeout},
    {"drain_timeout", YAML_SCALAR_NODE, parse_drain_timeout},
    {"max_connections", YAML_SCALAR_NODE, parse_max_connections},
};

static int parse_limits(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                        void *obj)
{
    int seen[ARRAY_SIZE(limits_keys)] = {0};

    return parse_map(cx, path, val, limits_keys, ARRAY_SIZE(limits_keys), obj, seen);
}

/* ---- s2s: and resolve: ----------------------------------------------------------------- */

/* The entry for remote domain raw (s2s.remotes or resolve.static), created at first mention. */
static int get_remote(struct cfg_ctx *cx, yaml_node_t *k, const char *raw, struct cfg_remote **out)
{
    struct cfg *c = cx->c;
    struct cfg_remote *r;
    char name[256], q[80];
    size_t n = strlen(raw);

    if (n >= sizeof(name))
        n = sizeof(name) - 1;
    memcpy(name, raw, n);
    name[n] = '\0';
    ascii_lower(name);
    if (strlen(raw) >= sizeof(name) || !domain_name_ok(name))
        return fail(cx, node_line(k), "'%s' is not a domain name", shown(q, sizeof(q), raw));
    for (size_t i = 0; i < c->nremotes; i++)
        if (strcmp(c->remotes[i].name, name) == 0) {
            *out = &c->remotes[i];
            return 0;
        }
    if (c->nremotes >= CFG_MAX_REMOTES)
        return fail(cx, node_line(k), "more than %d remote domains", CFG_MAX_REMOTES);
    r = realloc(c->remotes, (c->nremotes + 1) * sizeof(*r));
    if (r == NULL)
        return fail(cx, 0, "out of memory");
    c->remotes = r;
    r = &c->remotes[c->nremotes];
    memset(r, 0, sizeof(*r));
    if ((r->name = strdup(name)) == NULL)
        return fail(cx, 0, "out of memory");
    c->nremotes++;
    r->line = node_line(k);
    *out = r;
    return 0;
}

static int parse_remote_verify(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                               yaml_node_t *val, void *obj)
{
    struct cfg_remote *r = obj;
    int v, rc;

    if ((rc = get_choice(cx, path, key, val, "required", "optional", &v)) != 0)
        return rc;
    r->verify = v ? CFG_VERIFY_OPTIONAL : CFG_VERIFY_REQUIRED;
    r->verify_line = node_line(key);
    return 0;
}

static int parse_remote_tls(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, void *obj)
{
    struct cfg_remote *r = obj;
    int v, rc;

    if ((rc = get_choice(cx, path, key, val, "required", "opportunistic", &v)) != 0)
        return rc;
    r->tls = v ? CFG_S2S_TLS_OPPORTUNISTIC : CFG_S2S_TLS_REQUIRED;
    r->tls_line = node_line(key);
    return 0;
}

static int parse_remote_pin(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, void *obj)
{
    struct cfg_remote *r = obj;

    return get_bool(cx, path, key, val, &r->pin);
}

static const struct cfg_key remote_keys[] = {
    {"verify", YAML_SCALAR_NODE, parse_remote_verify},
    {"tls", YAML_SCALAR_NODE, parse_remote_tls},
    {"pin", YAML_SCALAR_NODE, parse_remote_pin},
};

/* Calls each(cx, section, key node, name, value node, obj) for every pair of a mapping whose
 * keys are domain names. */
typedef int domain_pair_fn(struct cfg_ctx *cx, const char *path, yaml_node_t *k, const char *name,
                           yaml_node_t *v);

static int each_domain_pair(struct cfg_ctx *cx, const char *path, yaml_node_t *map,
                            domain_pair_fn *each)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = get_node(cx, p->key), *v = get_node(cx, p->value);
        const char *raw;
        int rc;

        if (k == NULL || v == NULL)
            return fail(cx, node_line(map), "YAML: broken document in %s", path);
        if (k->type != YAML_SCALAR_NODE)
            return fail(cx, node_line(k), "keys in %s must be domain names", path);
        if ((rc = get_text(cx, "a domain name", NULL, k, &raw)) != 0)
            return rc;
        if ((rc = each(cx, path, k, raw, v)) != 0)
            return rc;
    }
    return 0;
}

static int remote_entry(struct cfg_ctx *cx, const char *path, yaml_node_t *k, const char *raw,
                        yaml_node_t *v)
{
    int seen[ARRAY_SIZE(remote_keys)] = {0};
    char section[CFG_PATH_MAX];
    struct cfg_remote *r;
    int rc;

    if ((rc = get_remote(cx, k, raw, &r)) != 0)
        return rc;
    snprintf(section, sizeof(section), "%s.%s", path, r->name);
    if (v->type != YAML_MAPPING_NODE)
        return fail(cx, node_line(k), "%s must be a mapping", section);
    if (r->verify_line != 0 || r->tls_line != 0 || r->pin)
        return fail(cx, node_line(k), "duplicate remote '%s'", r->name);
    return parse_map(cx, section, v, remote_keys, ARRAY_SIZE(remote_keys), r, seen);
}

static int parse_s2s_remotes(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                             yaml_node_t *val, void *obj)
{
    return each_domain_pair(cx, path, val, remote_entry);
}

static int parse_s2s_verify(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    int v, rc;

    if ((rc = get_choice(cx, path, key, val, "required", "optional", &v)) != 0)
        return rc;
    c->s2s_verify = v ? CFG_VERIFY_OPTIONAL : CFG_VERIFY_REQUIRED;
    return 0;
}

static int parse_s2s_tls(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                         void *obj)
{
    struct cfg *c = obj;
    int v, rc;

    if ((rc = get_choice(cx, path, key, val, "required", "opportunistic", &v)) != 0)
        return rc;
    c->s2s_tls = v ? CFG_S2S_TLS_OPPORTUNISTIC : CFG_S2S_TLS_REQUIRED;
    return 0;
}

static int parse_s2s_state_file(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                yaml_node_t *val, void *obj)
{
    return get_path(cx, path, key, val, &((struct cfg *)obj)->state_file);
}

static int parse_s2s_secret(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                            yaml_node_t *val, void *obj)
{
    return get_path(cx, path, key, val, &((struct cfg *)obj)->dialback_secret_file);
}

static int parse_s2s_connect_timeout(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                     yaml_node_t *val, void *obj)
{
    return get_duration(cx, path, key, val, 100, 10 * 60 * 1000, "100ms to 10m",
                        &((struct cfg *)obj)->s2s_connect_timeout_ms);
}

static const struct cfg_key s2s_keys[] = {
    {"verify", YAML_SCALAR_NODE, parse_s2s_verify},
    {"tls", YAML_SCALAR_NODE, parse_s2s_tls},
    {"remotes", YAML_MAPPING_NODE, parse_s2s_remotes},
    {"state_file", YAML_SCALAR_NODE, parse_s2s_state_file},
    {"dialback_secret_file", YAML_SCALAR_NODE, parse_s2s_secret},
    {"connect_timeout", YAML_SCALAR_NODE, parse_s2s_connect_timeout},
};

static int parse_s2s(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                     void *obj)
{
    int seen[ARRAY_SIZE(s2s_keys)] = {0};

    return parse_map(cx, path, val, s2s_keys, ARRAY_SIZE(s2s_keys), obj, seen);
}

static int static_entry(struct cfg_ctx *cx, const char *path, yaml_node_t *k, const char *raw,
                        yaml_node_t *v)
{
    char section[CFG_PATH_MAX];
    struct cfg_remote *r;
    int rc;

    if ((rc = get_remote(cx, k, raw, &r)) != 0)
        return rc;
    snprintf(section, sizeof(section), "%s.%s", path, r->name);
    if (r->has_static)
        return fail(cx, node_line(k), "duplicate domain '%s' in %s", r->name, path);
    r->has_static = true;
    return parse_addr_value(cx, section, k, v, &r->static_addr);
}

static int parse_resolve_static(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                yaml_node_t *val, void *obj)
{
    return each_domain_pair(cx, path, val, static_entry);
}

static int parse_resolve_nameservers(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                     yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    char item[CFG_PATH_MAX];
    int rc;

    if (n == 0 || n > 8)
        return fail(cx, node_line(key), "%s must list 1 to 8 addresses", path);
    if ((c->nameservers = calloc(n, sizeof(*c->nameservers))) == NULL)
        return fail(cx, 0, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *v = get_node(cx, val->data.sequence.items.start[i]);

        snprintf(item, sizeof(item), "%s[%zu]", path, i);
        if (v == NULL)
            return fail(cx, node_line(val), "YAML: broken document in %s", path);
        if ((rc = parse_addr_value(cx, item, v, v, &c->nameservers[i])) != 0)
            return rc;
        c->nnameservers++;
    }
    return 0;
}

static int parse_resolve_trust_anchor(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                      yaml_node_t *val, void *obj)
{
    return get_path(cx, path, key, val, &((struct cfg *)obj)->trust_anchor_file);
}

static int parse_resolve_timeout(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                 yaml_node_t *val, void *obj)
{
    return get_duration(cx, path, key, val, 100, 5 * 60 * 1000, "100ms to 5m",
                        &((struct cfg *)obj)->resolve_timeout_ms);
}

static int parse_resolve_dnssec(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                yaml_node_t *val, void *obj)
{
    return get_bool(cx, path, key, val, &((struct cfg *)obj)->dnssec);
}

/* "name: value" pairs for ub_ctx_set_option() (libunbound's own syntax), for test zones and
 * experts, e.g. "local-zone: test. transparent" (RFC 6761 names are refused by default). */
static int parse_resolve_unbound(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                                 yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    char item[CFG_PATH_MAX], q[80];
    const char *s, *colon;
    int rc;

    if (n > 64)
        return fail(cx, node_line(key), "%s: at most 64 options", path);
    if ((c->unbound_options = calloc(n + 1, sizeof(char *))) == NULL)
        return fail(cx, 0, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *v = get_node(cx, val->data.sequence.items.start[i]);

        snprintf(item, sizeof(item), "%s[%zu]", path, i);
        if (v == NULL)
            return fail(cx, node_line(val), "YAML: broken document in %s", path);
        if ((rc = get_text(cx, item, v, v, &s)) != 0)
            return rc;
        colon = strstr(s, ": ");
        if (colon == NULL || colon == s)
            return fail(cx, node_line(v), "%s: '%s' is not \"name: value\"", item,
                        shown(q, sizeof(q), s));
        if ((c->unbound_options[i] = strdup(s)) == NULL)
            return fail(cx, 0, "out of memory");
        c->nunbound_options++;
    }
    return 0;
}

static const struct cfg_key resolve_keys[] = {
    {"static", YAML_MAPPING_NODE, parse_resolve_static},
    {"dnssec", YAML_SCALAR_NODE, parse_resolve_dnssec},
    {"unbound_options", YAML_SEQUENCE_NODE, parse_resolve_unbound},
    {"nameservers", YAML_SEQUENCE_NODE, parse_resolve_nameservers},
    {"trust_anchor_file", YAML_SCALAR_NODE, parse_resolve_trust_anchor},
    {"timeout", YAML_SCALAR_NODE, parse_resolve_timeout},
};

static int parse_resolve(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                         void *obj)
{
    int seen[ARRAY_SIZE(resolve_keys)] = {0};

    return parse_map(cx, path, val, resolve_keys, ARRAY_SIZE(resolve_keys), obj, seen);
}

/* ---- admin: ------------------------------------------------------------------------------ */

static int parse_admin_listen(struct cfg_ctx *cx, const char *path, yaml_node_t *key,
                              yaml_node_t *val, void *obj)
{
    struct cfg *c = obj;

    c->has_admin = true;
    return parse_addr_value(cx, path, key, val, &c->admin_listen);
}

static const struct cfg_key admin_keys[] = {
    {"listen", YAML_SCALAR_NODE, parse_admin_listen},
};

static int parse_admin(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                       void *obj)
{
    int seen[ARRAY_SIZE(admin_keys)] = {0};

    return parse_map(cx, path, val, admin_keys, ARRAY_SIZE(admin_keys), obj, seen);
}

/* ---- user:, group: ------------------------------------------------------------------------ */

/* A user or group name as useradd(8) allows: [a-z_][a-z0-9_-]*, at most 32 bytes. */
static int get_account(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                       char **dst, int *line)
{
    const char *s;
    char q[80];
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    for (size_t i = 0; s[i] != '\0'; i++)
        if (i >= 32 || !((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' ||
                         (i > 0 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '-'))))
            return fail(cx, node_line(val), "%s: '%s' is not a user or group name", path,
                        shown(q, sizeof(q), s));
    free(*dst);
    if ((*dst = strdup(s)) == NULL)
        return fail(cx, 0, "out of memory");
    *line = node_line(key);
    return 0;
}

/* workers: N (1..64) or auto (one per online CPU, at most 64). */
static int parse_workers(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                         void *obj)
{
    struct cfg *c = obj;
    const char *s;
    char q[80];
    long n;
    int rc;

    if ((rc = get_text(cx, path, key, val, &s)) != 0)
        return rc;
    if (strcmp(s, "auto") == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
        return 0;
    }
    if (!all_digits(s) || strlen(s) > 2 || (n = strtol(s, NULL, 10)) < 1 || n > 64)
        return fail(cx, node_line(val), "%s must be auto or a number from 1 to 64, not '%s'", path,
                    shown(q, sizeof(q), s));
    c->workers = (unsigned)n;
    return 0;
}

static int parse_user(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                      void *obj)
{
    struct cfg *c = obj;

    return get_account(cx, path, key, val, &c->user, &c->user_line);
}

static int parse_group(struct cfg_ctx *cx, const char *path, yaml_node_t *key, yaml_node_t *val,
                       void *obj)
{
    struct cfg *c = obj;

    return get_account(cx, path, key, val, &c->group, &c->group_line);
}

/* ---- the whole file --------------------------------------------------------------------- */

enum {
    ROOT_LOG = 0,
    ROOT_TLS,
    ROOT_DOMAINS,
    ROOT_LISTENERS,
    ROOT_LIMITS,
    ROOT_S2S,
    ROOT_RESOLVE,
    ROOT_ADMIN,
    ROOT_USER,
    ROOT_GROUP,
    ROOT_WORKERS
};
static const struct cfg_key root_keys[] = {
    [ROOT_LOG] = {"log", YAML_MAPPING_NODE, parse_log},
    [ROOT_TLS] = {"tls", YAML_MAPPING_NODE, parse_tls},
    [ROOT_DOMAINS] = {"domains", YAML_MAPPING_NODE, parse_domains},
    [ROOT_LISTENERS] = {"listeners", YAML_SEQUENCE_NODE, parse_listeners},
    [ROOT_LIMITS] = {"limits", YAML_MAPPING_NODE, parse_limits},
    [ROOT_S2S] = {"s2s", YAML_MAPPING_NODE, parse_s2s},
    [ROOT_RESOLVE] = {"resolve", YAML_MAPPING_NODE, parse_resolve},
    [ROOT_ADMIN] = {"admin", YAML_MAPPING_NODE, parse_admin},
    [ROOT_USER] = {"user", YAML_SCALAR_NODE, parse_user},
    [ROOT_GROUP] = {"group", YAML_SCALAR_NODE, parse_group},
    [ROOT_WORKERS] = {"workers", YAML_SCALAR_NODE, parse_workers},
};

/* path must name a readable regular file. Only access(2) and stat(2): tls.c parses PEM. */
static int check_file(struct cfg_ctx *cx, int line, const char *domain, const char *what,
                      const char *path)
{
    struct stat st;
    char q[256];

    if (access(path, R_OK) != 0 || stat(path, &st) != 0) {
        int e = errno;

        return fail(cx, line, "domains.%s.%s: cannot read '%s': %s", domain, what,
                    shown(q, sizeof(q), path), xtp_strerror(-e));
    }
    if (!S_ISREG(st.st_mode))
        return fail(cx, line, "domains.%s.%s: cannot read '%s': not a regular file", domain, what,
                    shown(q, sizeof(q), path));
    return 0;
}

static int remote_order(const void *a, const void *b)
{
    return strcmp(((const struct cfg_remote *)a)->name, ((const struct cfg_remote *)b)->name);
}

/* Checks that need the whole file, in a fixed order. */
static int check_whole(struct cfg_ctx *cx, yaml_node_t *root, const int *seen)
{
    static const struct {
        enum cfg_kind kind;
        const char *backend;
    } needs[] = {{CFG_KIND_C2S, "c2s"}, {CFG_KIND_S2S, "s2s"}};
    struct cfg *c = cx->c;
    int rc;

    if (seen[ROOT_DOMAINS] == 0)
        return fail(cx, node_line(root), "missing required section 'domains'");
    if (seen[ROOT_LISTENERS] == 0)
        return fail(cx, node_line(root), "missing required section 'listeners'");
    for (size_t n = 0; n < ARRAY_SIZE(needs); n++) {
        const struct cfg_listener *l = NULL;

        for (size_t i = 0; i < c->nlisteners && l == NULL; i++)
            if (c->listeners[i].kind == needs[n].kind)
                l = &c->listeners[i];
        if (l == NULL)
            continue;
        for (size_t i = 0; i < c->ndomains; i++) {
            const struct cfg_domain *d = &c->domains[i];
            bool has = needs[n].kind == CFG_KIND_C2S ? d->has_backend_c2s : d->has_backend_s2s;

            if (!has)
                return fail(cx, d->line,
                            "domain '%s' has no backend.%s but listener '%s' needs one", d->name,
                            needs[n].backend, l->name);
        }
    }
    for (size_t i = 0; i < c->nremotes; i++) {
        struct cfg_remote *r = &c->remotes[i];

        if (r->verify_line == 0)
            r->verify = c->s2s_verify;
        if (r->tls_line == 0)
            r->tls = c->s2s_tls;
        if (cfg_domain_find(c, r->name) != NULL)
            return fail(cx, r->line, "remote '%s' is one of our own domains", r->name);
    }
    if (c->nremotes > 1)
        qsort(c->remotes, c->nremotes, sizeof(*c->remotes), remote_order);
    for (size_t i = 0; c->has_admin && i < c->nlisteners; i++)
        if (addr_overlap(&c->listeners[i].listen, &c->admin_listen))
            return fail(cx, seen[ROOT_ADMIN],
                        "admin.listen %s would share its address with "
                        "listener '%s' (line %d)",
                        c->admin_listen.text, c->listeners[i].name, c->listeners[i].line);
    for (size_t i = 0; i < c->ndomains; i++) {
        const struct cfg_domain *d = &c->domains[i];

        if ((rc = check_file(cx, d->cert_line, d->name, "cert", d->cert)) != 0)
            return rc;
        if (strcmp(d->key, d->cert) != 0 &&
            (rc = check_file(cx, d->key_line, d->name, "key", d->key)) != 0)
            return rc;
    }
    return 0;
}

/* Line of a libyaml error: the reader reports a byte offset, the scanner and parser a mark. */
static int yaml_error(struct cfg_ctx *cx, const yaml_parser_t *p, const unsigned char *data,
                      size_t len)
{
    const char *problem = p->problem != NULL ? p->problem : "syntax error";
    int line = 1;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return fail(cx, 0, "out of memory");
    case YAML_READER_ERROR:
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += data[i] == '\n' && line < INT_MAX;
        return fail(cx, line, "YAML: %s", problem);
    default:
        line = p->problem_mark.line >= (size_t)INT_MAX ? INT_MAX : (int)p->problem_mark.line + 1;
        if (p->context != NULL)
            return fail(cx, line, "YAML: %s (%s on line %zu)", problem, p->context,
                        p->context_mark.line + 1);
        return fail(cx, line, "YAML: %s", problem);
    }
}

/* Pass one: events only. Refuses anchors and aliases (the loader would share nodes, letting a
 * short file stand for an exponential tree), a second document, and deep nesting. */
static int scan_events(struct cfg_ctx *cx, const unsigned char *data, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int depth = 0, docs = 0, rc = 0;

    if (!yaml_parser_initialize(&p))
        return fail(cx, 0, "out of memory");
    yaml_parser_set_input_string(&p, data, len);
    for (;;) {
        yaml_event_type_t type;
        const yaml_char_t *anchor = NULL;
        int line;

        if (!yaml_parser_parse(&p, &ev)) {
            rc = yaml_error(cx, &p, data, len);
            break;
        }
        type = ev.type;
        line = ev.start_mark.line >= (size_t)INT_MAX ? INT_MAX : (int)ev.start_mark.line + 1;
        switch (type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = fail(cx, line, "only one YAML document is allowed");
            break;
        case YAML_ALIAS_EVENT:
            rc = fail(cx, line, "YAML aliases are not supported");
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            break;
        case YAML_SEQUENCE_START_EVENT:
            anchor = ev.data.sequence_start.anchor;
            depth++;
            break;
        case YAML_MAPPING_START_EVENT:
            anchor = ev.data.mapping_start.anchor;
            depth++;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        if (rc == 0 && anchor != NULL)
            rc = fail(cx, line, "YAML aliases are not supported (anchor '&%.40s')",
                      (const char *)anchor);
        if (rc == 0 && depth > CFG_MAX_DEPTH)
            rc = fail(cx, line, "YAML nesting deeper than %d levels", CFG_MAX_DEPTH);
        yaml_event_delete(&ev);
        if (rc != 0 || type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    return rc;
}

static void cfg_free(struct cfg *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->ndomains; i++) {
        free(c->domains[i].name);
        free(c->domains[i].cert);
        free(c->domains[i].key);
    }
    free(c->domains);
    for (size_t i = 0; i < c->nlisteners; i++)
        free(c->listeners[i].name);
    free(c->listeners);
    for (size_t i = 0; i < c->nremotes; i++)
        free(c->remotes[i].name);
    free(c->remotes);
    free(c->nameservers);
    free(c->state_file);
    free(c->dialback_secret_file);
    free(c->trust_anchor_file);
    for (size_t i = 0; i < c->nunbound_options; i++)
        free(c->unbound_options[i]);
    free(c->unbound_options);
    free(c->user);
    free(c->group);
    free(c->ticket_key_file);
    free(c->ca_file);
    free(c->path);
    free(c);
}

static struct cfg *cfg_new(const char *name)
{
    struct cfg *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->refs = 1;
    c->log_level = LOG_INFO;
    c->log_format = LOG_FORMAT_TEXT;
    c->tls_min_version = 12;
    c->ca_file_line = 0;
    c->max_stanza = 256 * 1024;
    c->handshake_timeout_ms = 10 * 1000;
    c->max_connections = 20000;
    c->s2s_connect_timeout_ms = 10 * 1000;
    c->drain_timeout_ms = 30 * 1000;
    c->dnssec = true;
    c->workers = 1;
    c->resolve_timeout_ms = 10 * 1000;
    c->path = strdup(name);
    c->ca_file = strdup(CFG_DEFAULT_CA_FILE);
    c->state_file = strdup(CFG_DEFAULT_STATE_FILE);
    c->dialback_secret_file = strdup(CFG_DEFAULT_DIALBACK_SECRET);
    if (c->path == NULL || c->ca_file == NULL || c->state_file == NULL ||
        c->dialback_secret_file == NULL) {
        cfg_free(c);
        return NULL;
    }
    return c;
}

/* Pass two on a text that passed scan_events(): load the tree and walk it into cx->c. */
static int load_tree(struct cfg_ctx *cx, const unsigned char *data, size_t len)
{
    int seen[ARRAY_SIZE(root_keys)] = {0};
    yaml_parser_t p;
    yaml_document_t doc;
    yaml_node_t *root;
    int rc;

    if (!yaml_parser_initialize(&p))
        return fail(cx, 0, "out of memory");
    yaml_parser_set_input_string(&p, data, len);
    if (!yaml_parser_load(&p, &doc)) { /* the document is already freed */
        rc = yaml_error(cx, &p, data, len);
        yaml_parser_delete(&p);
        return rc;
    }
    yaml_parser_delete(&p);
    cx->doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        rc = fail(cx, 0, "the configuration is empty");
    else if (root->type != YAML_MAPPING_NODE)
        rc = fail(cx, node_line(root),
                  "the configuration must be a mapping of sections (log, tls, domains, "
                  "listeners, limits, s2s, resolve, admin)");
    else if ((rc = parse_map(cx, NULL, root, root_keys, ARRAY_SIZE(root_keys), cx->c, seen)) == 0)
        rc = check_whole(cx, root, seen);
    cx->doc = NULL;
    yaml_document_delete(&doc);
    return rc;
}

struct cfg *cfg_load_mem(const char *name, const char *base_dir, const void *data, size_t len,
                         char *err, size_t errlen)
{
    struct cfg_ctx cx = {
        .name = name != NULL ? name : "(config)",
        .base_dir = base_dir,
        .err = err,
        .errlen = err != NULL ? errlen : 0,
    };
    int rc;

    if (cx.errlen > 0)
        err[0] = '\0';
    if (len > CFG_MAX_INPUT) {
        fail(&cx, 0, "larger than 1 MiB");
        return NULL;
    }
    if (data == NULL)
        data = "";
    if ((rc = scan_events(&cx, data, len)) != 0)
        return NULL;
    if ((cx.c = cfg_new(cx.name)) == NULL) {
        fail(&cx, 0, "out of memory");
        return NULL;
    }
    if ((rc = load_tree(&cx, data, len)) != 0) {
        cfg_free(cx.c);
        return NULL;
    }
    return cx.c;
}

struct cfg *cfg_load(const char *path, char *err, size_t errlen)
{
    struct cfg_ctx cx = {.name = path, .err = err, .errlen = err != NULL ? errlen : 0};
    const char *slash = strrchr(path, '/');
    char *base = NULL, *data = NULL;
    struct cfg *c = NULL;
    struct stat st;
    size_t len;
    FILE *f;

    if (cx.errlen > 0)
        err[0] = '\0';
    if ((f = fopen(path, "rb")) == NULL) {
        fail(&cx, 0, "cannot read: %s", xtp_strerror(-errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(&cx, 0, "cannot read: not a regular file");
        goto out;
    }
    if ((data = malloc(CFG_MAX_INPUT + 1)) == NULL) {
        fail(&cx, 0, "out of memory");
        goto out;
    }
    len = fread(data, 1, CFG_MAX_INPUT + 1, f);
    if (ferror(f)) {
        fail(&cx, 0, "cannot read: %s", xtp_strerror(-EIO));
        goto out;
    }
    if (len > CFG_MAX_INPUT) {
        fail(&cx, 0, "larger than 1 MiB");
        goto out;
    }
    /* Relative paths in the file start at the file's folder, not at the current one. */
    if (slash != NULL) {
        size_t blen = slash == path ? 1 : (size_t)(slash - path);

        if ((base = strndup(path, blen)) == NULL) {
            fail(&cx, 0, "out of memory");
            goto out;
        }
    }
    c = cfg_load_mem(path, base, data, len, err, errlen);
out:
    free(base);
    free(data);
    fclose(f);
    return c;
}

struct cfg *cfg_ref(struct cfg *c)
{
    if (c != NULL)
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void cfg_unref(struct cfg *c)
{
    /* Release/acquire: every write a thread made before dropping its reference happens
     * before the free in the thread that drops the last one. */
    if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        cfg_free(c);
}

const struct cfg_domain *cfg_domain_find(const struct cfg *c, const char *name)
{
    if (c == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < c->ndomains; i++)
        if (strcasecmp(c->domains[i].name, name) == 0)
            return &c->domains[i];
    return NULL;
}

const char *cfg_kind_name(enum cfg_kind k)
{
    switch (k) {
    case CFG_KIND_C2S:
        return "c2s";
    case CFG_KIND_S2S:
        return "s2s";
    case CFG_KIND_S2S_OUT:
        return "s2s-out";
    }
    return "?";
}

const char *cfg_tls_name(enum cfg_tls t)
{
    switch (t) {
    case CFG_TLS_STARTTLS:
        return "starttls";
    case CFG_TLS_DIRECT:
        return "direct";
    case CFG_TLS_NONE:
        return "none";
    }
    return "?";
}

static int remote_key_order(const void *key, const void *elem)
{
    return strcasecmp(key, ((const struct cfg_remote *)elem)->name);
}

const struct cfg_remote *cfg_remote_find(const struct cfg *c, const char *name)
{
    if (c->nremotes == 0 || name == NULL)
        return NULL;
    return bsearch(name, c->remotes, c->nremotes, sizeof(*c->remotes), remote_key_order);
}

enum cfg_verify cfg_remote_verify(const struct cfg *c, const char *name)
{
    const struct cfg_remote *r = cfg_remote_find(c, name);

    return r != NULL ? r->verify : c->s2s_verify;
}

enum cfg_s2s_tls cfg_remote_tls(const struct cfg *c, const char *name)
{
    const struct cfg_remote *r = cfg_remote_find(c, name);

    return r != NULL ? r->tls : c->s2s_tls;
}

bool cfg_has_kind(const struct cfg *c, enum cfg_kind k)
{
    for (size_t i = 0; i < c->nlisteners; i++)
        if (c->listeners[i].kind == k)
            return true;
    return false;
}

const char *cfg_verify_name(enum cfg_verify v)
{
    return v == CFG_VERIFY_OPTIONAL ? "optional" : "required";
}
