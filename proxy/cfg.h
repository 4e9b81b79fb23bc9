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
    enum cfg_tls tls;    /* CFG_TLS_NONE only for s2s-out */
    bool allow_nonlocal; /* s2s-out only: may listen on a non-loopback address */
    bool proxy_protocol; /* a PROXY v1/v2 header from a load balancer precedes every stream */
    int line;
};

/* s2s.verify: how a remote domain must prove who it is (both directions). */
enum cfg_verify {
    CFG_VERIFY_REQUIRED = 0, /* a certificate valid for the domain (PKIX or DANE) */
    CFG_VERIFY_OPTIONAL,     /* else Server Dialback (XEP-0220), carried out by the proxy */
};

/* s2s.tls: outbound only; inbound streams are always TLS. */
enum cfg_s2s_tls {
    CFG_S2S_TLS_REQUIRED = 0,  /* never plaintext (RFC 7590) */
    CFG_S2S_TLS_OPPORTUNISTIC, /* plaintext when the remote cannot do TLS */
};

/* Policy for one remote domain: s2s.remotes.<domain> and/or resolve.static.<domain>. Fields
 * not given there hold the s2s.* defaults after loading. */
struct cfg_remote {
    char *name; /* lower-case */
    enum cfg_verify verify;
    enum cfg_s2s_tls tls;
    bool pin;        /* refuse a certificate whose fingerprint differs from the remembered one */
    bool has_static; /* resolve.static gave an address: no DNS for this domain */
    struct cfg_addr static_addr;
    int line;
    int verify_line, tls_line; /* 0 when the default applies */
};

struct cfg {
    int refs;                   /* see cfg_ref(); atomic */
    char *path;                 /* the file as given */
    enum log_level log_level;   /* log.level, default info */
    enum log_format log_format; /* log.format, default text */
    int tls_min_version;        /* tls.min_version: 12 ("1.2", default) or 13 ("1.3") */
    char *ca_file;              /* tls.ca_file, default /etc/ssl/certs/ca-certificates.crt */
    int ca_file_line;
    char *ticket_key_file; /* tls.ticket_key_file: shared ticket keys; NULL: per process */
    int ticket_key_line;
    struct cfg_domain *domains; /* in file order; domains[0] is the default (no SNI) */
    size_t ndomains;            /* >= 1 */
    struct cfg_listener *listeners;
    size_t nlisteners;             /* >= 1 */
    size_t max_stanza;             /* limits.max_stanza, bytes, default 256KiB */
    uint64_t handshake_timeout_ms; /* limits.handshake_timeout, default 10s */
    uint64_t drain_timeout_ms;     /* limits.drain_timeout, default 30s: SIGTERM grace */
    char *user, *group;            /* drop to these after binding and reading keys; NULL: no */
    unsigned workers;              /* workers: event loops (threads), 1..64; default 1 */
    int user_line, group_line;
    unsigned max_connections; /* limits.max_connections, default 20000 */

    /* s2s: (issue 3) */
    enum cfg_verify s2s_verify;      /* s2s.verify, default required */
    enum cfg_s2s_tls s2s_tls;        /* s2s.tls, default required */
    char *state_file;                /* s2s.state_file: remote certificate memory */
    char *dialback_secret_file;      /* s2s.dialback_secret_file: created when missing */
    uint64_t s2s_connect_timeout_ms; /* s2s.connect_timeout, default 10s, per remote address */
    struct cfg_remote *remotes;      /* s2s.remotes and resolve.static, sorted by name */
    size_t nremotes;

    /* resolve: */
    struct cfg_addr *nameservers; /* resolve.nameservers; none: the system's resolv.conf */
    size_t nnameservers;
    char *trust_anchor_file; /* resolve.trust_anchor_file; NULL: the default, if present */
    bool dnssec;             /* resolve.dnssec, default true: validate when an anchor exists */
    char **unbound_options;  /* resolve.unbound_options: "name: value" for libunbound */
    size_t nunbound_options;
    uint64_t resolve_timeout_ms; /* resolve.timeout, default 10s, per lookup */

    /* admin: */
    bool has_admin; /* admin.listen given */
    struct cfg_addr admin_listen;
};

#define CFG_DEFAULT_STATE_FILE        "/var/lib/xmpp-tls-proxy/remote-certs"
#define CFG_DEFAULT_DIALBACK_SECRET   "/var/lib/xmpp-tls-proxy/dialback.secret"
#define CFG_DEFAULT_TRUST_ANCHOR_FILE "/usr/share/dns/root.key"

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

/* The policy for remote domain name: its s2s.remotes / resolve.static entry, or NULL when it
 * has none (then c->s2s_verify and c->s2s_tls apply, without pinning). */
const struct cfg_remote *cfg_remote_find(const struct cfg *c, const char *name);
enum cfg_verify cfg_remote_verify(const struct cfg *c, const char *name);
enum cfg_s2s_tls cfg_remote_tls(const struct cfg *c, const char *name);

/* True when some listener has kind k. */
bool cfg_has_kind(const struct cfg *c, enum cfg_kind k);

/* Parsers shared with the tests: return 0 or XTP_ECONFIG. */
int cfg_parse_size(const char *s, size_t *out);          /* "256KiB", "1MiB", "4096", "64KB" */
int cfg_parse_duration(const char *s, uint64_t *ms);     /* "10s", "500ms", "2m", "1h" */
int cfg_parse_addr(const char *s, struct cfg_addr *out); /* "127.0.0.1:5222", "[::]:5222" */

const char *cfg_kind_name(enum cfg_kind k);     /* "c2s" | "s2s" | "s2s-out" */
const char *cfg_tls_name(enum cfg_tls t);       /* "starttls" | "direct" | "none" */
const char *cfg_verify_name(enum cfg_verify v); /* "required" | "optional" */

#endif
