/* cfg.h: the YAML configuration as an immutable, reference-counted snapshot (design.md §4).
 * cfg_load() validates everything it can without TLS (keys, types, addresses, files exist);
 * certificates and keys are loaded by tls_server_new(), which reports problems with the
 * line numbers kept here. A reload builds a new snapshot; sessions keep the one they hold.
 * tests: test_cfg.c, fuzz: fuzz_cfg.c */
#ifndef XTP_CFG_H
#define XTP_CFG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"

/* A parsed "host:port" / "[v6]:port" (numeric addresses only; no DNS at load time). */
struct cfg_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64]; /* as written in the file, for logs */
};

struct cfg_domain {
    char *name;           /* lower-case XMPP domain, the key under `domains:` */
    char *cert;           /* PEM chain path, resolved against the config file's folder */
    char *key;            /* PEM key path, resolved likewise; may equal cert */
    int cert_line;        /* 1-based line of `cert:`, for errors found later */
    int key_line;         /* 1-based line of `key:` (of `cert:` when key is absent) */
    bool has_backend_c2s; /* backend.c2s given */
    struct cfg_addr backend_c2s;
    bool has_backend_s2s; /* backend.s2s given */
    struct cfg_addr backend_s2s;
    int line;
};

enum cfg_kind { CFG_KIND_C2S = 0, CFG_KIND_S2S, CFG_KIND_S2S_OUT };
enum cfg_tls { CFG_TLS_STARTTLS = 0, CFG_TLS_DIRECT, CFG_TLS_NONE };

struct cfg_listener {
    char *name; /* unique */
    struct cfg_addr listen;
    enum cfg_kind kind;
    enum cfg_tls tls; /* CFG_TLS_NONE only for s2s-out */
    int line;
};

struct cfg {
    int refs;                   /* see cfg_ref(); atomic */
    char *path;                 /* the file as given */
    enum log_level log_level;   /* log.level, default info */
    enum log_format log_format; /* log.format, default text */
    int tls_min_version;        /* tls.min_version: 12 ("1.2", default) or 13 ("1.3") */
    char *ca_file;              /* tls.ca_file, default /etc/ssl/certs/ca-certificates.crt */
    int ca_file_line;
    struct cfg_domain *domains; /* in file order; domains[0] is the default (no SNI) */
    size_t ndomains;            /* >= 1 */
    struct cfg_listener *listeners;
    size_t nlisteners;             /* >= 1 */
    size_t max_stanza;             /* limits.max_stanza, bytes, default 256KiB */
    uint64_t handshake_timeout_ms; /* limits.handshake_timeout, default 10s */
    unsigned max_connections;      /* limits.max_connections, default 20000 */
};

/* Loads and validates path. Returns a snapshot with one reference, or NULL with a message
 * "FILE:LINE: what is wrong" (or "FILE: ..." for file-level problems) in err. */
struct cfg *cfg_load(const char *path, char *err, size_t errlen);

/* The same from memory; name is used in messages and relative paths resolve against base_dir
 * (NULL: the current folder). For tests and the fuzzer. */
struct cfg *cfg_load_mem(const char *name, const char *base_dir, const void *data, size_t len,
                         char *err, size_t errlen);

struct cfg *cfg_ref(struct cfg *c);
void cfg_unref(struct cfg *c); /* NULL is fine */

/* The domain named name (case-insensitive), or NULL. */
const struct cfg_domain *cfg_domain_find(const struct cfg *c, const char *name);

/* Parsers shared with the tests: return 0 or XTP_ECONFIG. */
int cfg_parse_size(const char *s, size_t *out);          /* "256KiB", "1MiB", "4096", "64KB" */
int cfg_parse_duration(const char *s, uint64_t *ms);     /* "10s", "500ms", "2m", "1h" */
int cfg_parse_addr(const char *s, struct cfg_addr *out); /* "127.0.0.1:5222", "[::]:5222" */

const char *cfg_kind_name(enum cfg_kind k); /* "c2s" | "s2s" | "s2s-out" */
const char *cfg_tls_name(enum cfg_tls t);   /* "starttls" | "direct" | "none" */

#endif
