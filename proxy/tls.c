/* tls.c: mbedTLS 3.6 sessions over memory (style.md §6): servers for c2s/s2s-in, clients for
 * s2s-out. Every mbedTLS code is translated here and its text kept for tls_last_error(); the
 * certificate judgement lives in verify.c. Never logs, never touches the loop.
 * tests: test_tls.c */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include "bytes.h"
#include "cfg.h"
#include "err.h"

/* Ticket keys live in memory only. The ticket module makes a new key once the active one is
 * older than this lifetime and keeps the previous one to decrypt, so a key lives at most two
 * hours and a ticket is honoured for at most one hour: short enough to keep forward secrecy
 * meaningful (RFC 8446 §4.6.1 allows up to 7 days; RFC 9325 §3.4 asks for short-lived keys). */
#define TICKET_LIFETIME_S 3600

#define MIN_RSA_BITS 2048 /* RFC 9325 §4.5 / BSI: no RSA under 2048 bits */

/* RFC 9325 §4.2: AEAD suites only. TLS 1.3 suites first; for TLS 1.2 only ECDHE (forward
 * secrecy) with AES-GCM or ChaCha20-Poly1305: no CBC, no static RSA, no finite-field DHE. */
static const int ciphersuites[] = {
    MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
    MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
    MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

/* RFC 9325 §4.2.1 / RFC 8446 §9.1: x25519 first, then the NIST curves. No finite-field groups,
 * which mbedTLS would otherwise offer in TLS 1.3. In TLS 1.3 this order does not choose: an
 * mbedTLS 3.6 server takes the client's first key share whose group is in this list, and asks
 * for the client's first listed group in a HelloRetryRequest (ssl_tls13_server.c). It chooses
 * the TLS 1.2 ECDHE curve and the key share of our s2s-out ClientHello. Measured per full TLS
 * 1.3 session (callgrind, bench/README.md "mbedTLS profile"): Debian's build 21.7M
 * instructions with x25519, 17.3M with secp256r1; the XTP_MBEDTLS_PROFILE build (Everest)
 * 7.3M with x25519, 16.8M with secp256r1. x25519 stays first: 2.3x cheaper in the profile,
 * 20% dearer in Debian's build. */
static const uint16_t groups[] = {
    MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};

/* Signature algorithms we accept from peers and may use ourselves: ECDSA on P-256/P-384,
 * RSA-PSS, and PKCS#1 v1.5 with SHA-2, which TLS 1.2 needs and TLS 1.3 only allows in
 * certificates (RFC 8446 §4.2.3; mbedTLS applies that rule itself). No SHA-1. */
static const uint16_t sig_algs[] = {
    MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256,
    MBEDTLS_TLS1_3_SIG_ECDSA_SECP384R1_SHA384,
    MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA256,
    MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA384,
    MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA512,
    MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA256,
    MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA384,
    MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA512,
    MBEDTLS_TLS1_3_SIG_NONE,
};

/* XEP-0368 ALPN protocol ids, one per role. The tables must outlive the configs. */
static const char *alpn_c2s[] = {"xmpp-client", NULL};
static const char *alpn_s2s[] = {"xmpp-server", NULL};

struct tls_domain {
    char *name;             /* owned, lower-case as in the cfg */
    mbedtls_x509_crt chain; /* leaf first */
    mbedtls_pk_context key;
    mbedtls_ssl_config client; /* s2s-out from this domain: presents chain/key */
};

/* A client session saved for resumption (RFC 5077 ticket or TLS 1.3 PSK). */
struct tls_ticket {
    mbedtls_ssl_session sess;
};

struct tls_server {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg; /* shared by all sessions; has its own mutex (THREADING_C) */
    /* One ticket context per role, so that a c2s ticket never resumes on an s2s listener. */
    mbedtls_ssl_ticket_context tickets[2];
    mbedtls_ssl_config conf[2]; /* [TLS_ROLE_C2S], [TLS_ROLE_S2S] */
    mbedtls_x509_crt ca;        /* tls.ca_file, for s2s peer certificates */
    bool have_ca;
    struct tls_domain *domains; /* owned array, in cfg order */
    size_t ndomains;
};

/* What our own handshake records said, for tls_resumed(): mbedTLS has no public "was this
 * session resumed" call on the server side, so we watch the plaintext handshake messages we
 * send. RFC 8446 §4.2.11: a TLS 1.3 ServerHello carries pre_shared_key iff the server accepted
 * a PSK (here: a ticket). RFC 5077 §3.1 / RFC 5246 §7.3: an abbreviated TLS 1.2 handshake has
 * no server Certificate, and every TLS 1.2 suite we allow sends one in a full handshake. */
struct hs_watch {
    uint8_t rec_hdr[5];
    size_t rec_hdr_len;
    size_t rec_left;
    uint8_t msg_hdr[4];
    size_t msg_hdr_len;
    size_t msg_left;
    uint8_t sh[256]; /* ServerHello body: ours is under 200 bytes */
    size_t sh_len;
    bool sh_overflow;
    bool seen_sh; /* a ServerHello that is not a HelloRetryRequest */
    bool tls13;   /* ... with supported_versions: TLS 1.3 */
    bool psk;     /* ... with pre_shared_key */
    bool cert;    /* a plaintext Certificate message (TLS 1.2 full handshake) */
    bool done;    /* nothing more to learn: records are encrypted from here on */
};

struct tls {
    mbedtls_ssl_context ssl;
    struct tls_server *srv;       /* borrowed: outlives the session */
    const struct tls_domain *sni; /* borrowed: the domain the client named with SNI, or NULL */
    tls_send_fn *send;
    void *send_arg;
    const uint8_t *feed; /* borrowed from the caller between tls_feed() and tls_feed_end() */
    size_t feed_len;
    int feed_err;
    struct bytes in; /* owned: ciphertext left over from earlier feeds, read before feed */
    int send_rc;     /* first failure of the send callback */
    bool hs_done;
    bool client;                       /* s2s-out: we sent the ClientHello */
    struct tls_ticket *ticket;         /* client: the last TLS 1.3 NewSessionTicket, owned */
    struct hs_watch watch;             /* server: our records; client: the peer's */
    bool trimmed;                      /* tls_trim() released the buffers' pages: untrim() first */
    uint8_t keep_in[16], keep_out[16]; /* the buffers' first bytes (counters) meanwhile */
    char why[96];                      /* detail found in a callback, added to err */
    char err[288];                     /* tls_last_error(): what + library text + why */
};

/* ---- process-wide ---------------------------------------------------------------------- */

#if defined(MBEDTLS_PLATFORM_MEMORY)
/* Builds that let us choose (the project's mbedTLS profile) get the record buffers, the only
 * blocks of a page or more that live as long as a session, on page boundaries: then
 * tls_trim() can give back every page of an idle session's buffers, the first included. */
#define TLS_PAGE_BLOCK 4096

static void *page_calloc(size_t n, size_t size)
{
    size_t total;
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    total = n * size;
    if (total < TLS_PAGE_BLOCK)
        return calloc(n, size);
    if (posix_memalign(&p, TLS_PAGE_BLOCK, total) != 0)
        return NULL;
    return memset(p, 0, total);
}
#endif

int tls_global_init(void)
{
#if defined(MBEDTLS_PLATFORM_MEMORY)
    mbedtls_platform_set_calloc_free(page_calloc, free);
#endif
    /* TLS 1.3 in mbedTLS 3.6 always goes through PSA for its key schedule and ECDHE. */
    return psa_crypto_init() == PSA_SUCCESS ? 0 : XTP_ETLS;
}

static char lib_version[48];
static pthread_once_t lib_version_once = PTHREAD_ONCE_INIT;

static void lib_version_init(void)
{
    char v[18]; /* mbedtls_version_get_string() writes at most 9 bytes */

    mbedtls_version_get_string(v);
    snprintf(lib_version, sizeof(lib_version), "mbedTLS %s", v);
}

const char *tls_lib_version(void)
{
    pthread_once(&lib_version_once, lib_version_init);
    return lib_version;
}

/* ---- errors ---------------------------------------------------------------------------- */

/* Records the failure of `what` with mbedTLS code rc for tls_last_error(); returns XTP_ETLS. */
static int fail(struct tls *t, const char *what, int rc)
{
    char lib[160];

    if (t->send_rc != 0)
        snprintf(lib, sizeof(lib), "send callback failed: %s", xtp_strerror(t->send_rc));
    else
        mbedtls_strerror(rc, lib, sizeof(lib));
    snprintf(t->err, sizeof(t->err), "%s: %s (-0x%04x)%s%s", what, lib, (unsigned)-rc,
             t->why[0] ? "; " : "", t->why);
    return XTP_ETLS;
}

/* "CFG:LINE: " + message (just "CFG: " without a line), into err. */
static void __attribute__((format(printf, 5, 6)))
cfg_fail(char *err, size_t errlen, const struct cfg *cfg, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (errlen == 0)
        return;
    if (line > 0)
        n = snprintf(err, errlen, "%s:%d: ", cfg->path ? cfg->path : "(config)", line);
    else
        n = snprintf(err, errlen, "%s: ", cfg->path ? cfg->path : "(config)");
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- memory BIO ------------------------------------------------------------------------ */

static size_t input_len(const struct tls *t)
{
    return bytes_len(&t->in) + t->feed_len;
}

static void watch_server_hello(struct hs_watch *w)
{
    /* RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello with this random. */
    static const uint8_t hrr_random[32] = {
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C,
        0x02, 0x1E, 0x65, 0xB8, 0x91, 0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB,
        0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    };
    const uint8_t *p = w->sh, *end = w->sh + w->sh_len;
    size_t ext_len;

    if (w->sh_overflow || w->sh_len < 35 || memcmp(p + 2, hrr_random, 32) == 0)
        return;
    p += 34;         /* legacy_version, random */
    p += 1 + p[0];   /* legacy_session_id_echo */
    if (end - p < 3) /* cipher_suite, legacy_compression_method */
        return;
    p += 3;
    w->seen_sh = true;
    if (end - p < 2)
        return; /* no extensions: TLS 1.2 without any */
    ext_len = (size_t)p[0] << 8 | p[1];
    p += 2;
    if ((size_t)(end - p) < ext_len)
        return;
    end = p + ext_len;
    while (end - p >= 4) {
        unsigned type = (unsigned)p[0] << 8 | p[1];
        size_t len = (size_t)p[2] << 8 | p[3];

        p += 4;
        if ((size_t)(end - p) < len)
            break;
        if (type == 43) /* supported_versions: only a TLS 1.3 ServerHello has it */
            w->tls13 = true;
        else if (type == 41) /* pre_shared_key */
            w->psk = true;
        p += len;
    }
    if (w->tls13)
        w->done = true; /* everything after the TLS 1.3 ServerHello is encrypted */
}

/* Feeds plaintext handshake-layer bytes (several messages, or part of one). */
static void watch_handshake(struct hs_watch *w, const uint8_t *p, size_t n)
{
    while (n > 0 && !w->done) {
        if (w->msg_hdr_len < 4) {
            size_t take = 4 - w->msg_hdr_len < n ? 4 - w->msg_hdr_len : n;

            memcpy(w->msg_hdr + w->msg_hdr_len, p, take);
            w->msg_hdr_len += take;
            p += take;
            n -= take;
            if (w->msg_hdr_len < 4)
                break;
            w->msg_left = (size_t)w->msg_hdr[1] << 16 | (size_t)w->msg_hdr[2] << 8 | w->msg_hdr[3];
            w->sh_len = 0;
            w->sh_overflow = false;
            if (w->msg_hdr[0] == 11) /* Certificate */
                w->cert = true;
        } else {
            size_t take = w->msg_left < n ? w->msg_left : n;

            if (w->msg_hdr[0] == 2) { /* ServerHello */
                if (take <= sizeof(w->sh) - w->sh_len) {
                    memcpy(w->sh + w->sh_len, p, take);
                    w->sh_len += take;
                } else {
                    w->sh_overflow = true;
                }
            }
            w->msg_left -= take;
            p += take;
            n -= take;
        }
        if (w->msg_hdr_len == 4 && w->msg_left == 0) {
            if (w->msg_hdr[0] == 2)
                watch_server_hello(w);
            w->msg_hdr_len = 0;
        }
    }
}

/* Splits our outgoing byte stream into records (RFC 8446 §5.1) while the handshake runs. */
static void watch_records(struct hs_watch *w, const uint8_t *p, size_t n)
{
    while (n > 0 && !w->done) {
        if (w->rec_hdr_len < 5) {
            size_t take = 5 - w->rec_hdr_len < n ? 5 - w->rec_hdr_len : n;

            memcpy(w->rec_hdr + w->rec_hdr_len, p, take);
            w->rec_hdr_len += take;
            p += take;
            n -= take;
            if (w->rec_hdr_len == 5)
                w->rec_left = (size_t)w->rec_hdr[3] << 8 | w->rec_hdr[4];
        } else {
            size_t take = w->rec_left < n ? w->rec_left : n;

            switch (w->rec_hdr[0]) {
            case 22: /* handshake */
                watch_handshake(w, p, take);
                break;
            case 20: /* change_cipher_spec: in TLS 1.2, our next records are encrypted. In
                      * TLS 1.3 compatibility mode it may follow a HelloRetryRequest. */
                if (w->seen_sh && !w->tls13)
                    w->done = true;
                break;
            case 23: /* application_data: encrypted from here on */
                w->done = true;
                break;
            default:
                break;
            }
            w->rec_left -= take;
            p += take;
            n -= take;
        }
        if (w->rec_hdr_len == 5 && w->rec_left == 0)
            w->rec_hdr_len = 0;
    }
}

/* mbedTLS output: hand every record to the caller at once. Taking everything means
 * mbedtls_ssl_write() never stops halfway, which sidesteps its same-arguments retry rule. */
static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
    struct tls *t = arg;
    int rc;

    if (!t->hs_done && !t->client)
        watch_records(&t->watch, buf, len);
    rc = t->send(t->send_arg, buf, len);
    if (rc < 0) {
        if (t->send_rc == 0)
            t->send_rc = rc;
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    }
    return len > INT_MAX ? INT_MAX : (int)len;
}

/* mbedTLS input: leftovers from earlier feeds first, then the slice lent by tls_feed(). */
static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
    struct tls *t = arg;
    size_t n = 0, take;

    if (len > INT_MAX)
        len = INT_MAX;
    take = bytes_len(&t->in) < len ? bytes_len(&t->in) : len;
    if (take > 0) {
        memcpy(buf, bytes_data(&t->in), take);
        bytes_consume(&t->in, take);
        n = take;
    }
    take = t->feed_len < len - n ? t->feed_len : len - n;
    if (take > 0) {
        memcpy(buf + n, t->feed, take);
        t->feed += take;
        t->feed_len -= take;
        n += take;
    }
    if (n > 0 && !t->hs_done && t->client)
        watch_records(&t->watch, buf, n); /* the server's ServerHello and Certificate */
    return n == 0 ? MBEDTLS_ERR_SSL_WANT_READ : (int)n;
}

/* ---- SNI ------------------------------------------------------------------------------- */

static const struct tls_domain *find_domain(const struct tls_server *s, const char *name,
                                            size_t len)
{
    for (size_t i = 0; i < s->ndomains; i++)
        if (strlen(s->domains[i].name) == len && strncasecmp(s->domains[i].name, name, len) == 0)
            return &s->domains[i];
    return NULL;
}

/* RFC 6066 §3: the client names the host it wants; DNS names compare case-insensitively.
 * A name we do not serve ends the handshake with unrecognized_name (mbedTLS sends it). */
static int sni_cb(void *arg, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
    struct tls *t = mbedtls_ssl_get_user_data_p(ssl);
    const struct tls_domain *d = find_domain(arg, (const char *)name, len);
    size_t i, n = 0;

    if (d == NULL) {
        n = (size_t)snprintf(t->why, sizeof(t->why), "SNI names a domain we do not serve: ");
        for (i = 0; i < len && n + 4 < sizeof(t->why); i++) {
            unsigned char c = name[i];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';

            t->why[n++] = ok ? (char)c : '?';
        }
        t->why[n] = '\0';
        return -1;
    }
    /* Replace the default certificate set in tls_new(): the list is per handshake and
     * mbedtls_ssl_set_hs_own_cert() appends, so clear it first (NULL clears). */
    if (mbedtls_ssl_set_hs_own_cert(ssl, NULL, NULL) != 0 ||
        mbedtls_ssl_set_hs_own_cert(ssl, (mbedtls_x509_crt *)&d->chain,
                                    (mbedtls_pk_context *)&d->key) != 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    t->sni = d;
    return 0;
}

/* ---- tls_server ------------------------------------------------------------------------ */

/* Refuses keys we would not use: RSA under MIN_RSA_BITS, EC keys on curves our signature
 * algorithms do not cover, anything else. Returns NULL or a reason. */
static const char *key_problem(const mbedtls_pk_context *pk, char *buf, size_t len)
{
    switch (mbedtls_pk_get_type(pk)) {
    case MBEDTLS_PK_RSA:
        if (mbedtls_pk_get_bitlen(pk) < MIN_RSA_BITS) {
            snprintf(buf, len, "RSA key of %zu bits is too small (at least %d)",
                     mbedtls_pk_get_bitlen(pk), MIN_RSA_BITS);
            return buf;
        }
        return NULL;
    case MBEDTLS_PK_ECKEY:
    case MBEDTLS_PK_ECDSA:
        switch (mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(*pk))) {
        case MBEDTLS_ECP_DP_SECP256R1:
        case MBEDTLS_ECP_DP_SECP384R1:
            return NULL;
        default:
            return "EC key on an unsupported curve (use P-256 or P-384)";
        }
    default:
        return "unsupported key type (use ECDSA P-256/P-384 or RSA >= 2048 bits)";
    }
}

static int load_domain(struct tls_server *s, struct tls_domain *d, const struct cfg *cfg,
                       const struct cfg_domain *cd, char *err, size_t errlen)
{
    char lib[200], why[96];
    const char *problem;
    size_t chain_len;
    FILE *f;
    int rc;

    d->name = strdup(cd->name);
    if (d->name == NULL) {
        cfg_fail(err, errlen, cfg, cd->line, "domains.%s: out of memory", cd->name);
        return -ENOMEM;
    }

    f = fopen(cd->cert, "rb");
    if (f == NULL) {
        cfg_fail(err, errlen, cfg, cd->cert_line, "domains.%s.cert: cannot read %s (%s)", cd->name,
                 cd->cert, xtp_strerror(-errno));
        return XTP_EKEY;
    }
    fclose(f);
    rc = mbedtls_x509_crt_parse_file(&d->chain, cd->cert);
    if (rc != 0) {
        if (rc > 0)
            snprintf(lib, sizeof(lib), "%d certificate(s) could not be parsed", rc);
        else
            mbedtls_strerror(rc, lib, sizeof(lib));
        cfg_fail(err, errlen, cfg, cd->cert_line,
                 "domains.%s.cert: no valid PEM certificate chain in %s (%s)", cd->name, cd->cert,
                 lib);
        return XTP_EKEY;
    }
    problem = key_problem(&d->chain.pk, why, sizeof(why));
    if (problem != NULL) {
        cfg_fail(err, errlen, cfg, cd->cert_line, "domains.%s.cert: %s: %s", cd->name, cd->cert,
                 problem);
        return XTP_EKEY;
    }
    /* mbedTLS sends the Certificate message in one record and does not fragment handshake
     * messages (3.6): a chain longer than this build's output record (16 KiB, or 4 KiB in the
     * project's mbedTLS profile) would fail every handshake. TLS 1.3 sizes, the larger. */
    chain_len = 4 + 1 + 3;
    for (const mbedtls_x509_crt *c = &d->chain; c != NULL && c->raw.len > 0; c = c->next)
        chain_len += 3 + c->raw.len + 2;
    if (chain_len > MBEDTLS_SSL_OUT_CONTENT_LEN) {
        cfg_fail(err, errlen, cfg, cd->cert_line,
                 "domains.%s.cert: %s: the chain needs a %zu-byte TLS Certificate message, more "
                 "than this build's %d-byte records (MBEDTLS_SSL_OUT_CONTENT_LEN); leave out "
                 "what clients do not need (the root, cross-signed copies)",
                 cd->name, cd->cert, chain_len, (int)MBEDTLS_SSL_OUT_CONTENT_LEN);
        return XTP_EKEY;
    }

    f = fopen(cd->key, "rb");
    if (f == NULL) {
        cfg_fail(err, errlen, cfg, cd->key_line, "domains.%s.key: cannot read %s (%s)", cd->name,
                 cd->key, xtp_strerror(-errno));
        return XTP_EKEY;
    }
    fclose(f);
    rc = mbedtls_pk_parse_keyfile(&d->key, cd->key, NULL, mbedtls_ctr_drbg_random, &s->drbg);
    if (rc != 0) {
        mbedtls_strerror(rc, lib, sizeof(lib));
        cfg_fail(err, errlen, cfg, cd->key_line,
                 "domains.%s.key: no usable unencrypted private key in %s (%s)", cd->name, cd->key,
                 lib);
        return XTP_EKEY;
    }
    problem = key_problem(&d->key, why, sizeof(why));
    if (problem != NULL) {
        cfg_fail(err, errlen, cfg, cd->key_line, "domains.%s.key: %s: %s", cd->name, cd->key,
                 problem);
        return XTP_EKEY;
    }
    rc = mbedtls_pk_check_pair(&d->chain.pk, &d->key, mbedtls_ctr_drbg_random, &s->drbg);
    if (rc != 0) {
        mbedtls_strerror(rc, lib, sizeof(lib));
        cfg_fail(err, errlen, cfg, cd->key_line,
                 "domains.%s.key: the key in %s does not match the certificate in %s (%s)",
                 cd->name, cd->key, cd->cert, lib);
        return XTP_EKEY;
    }
    return 0;
}

/* The policy both ends share: versions, suites, groups, signatures, no renegotiation. */
static int setup_policy(struct tls_server *s, mbedtls_ssl_config *c, int endpoint,
                        const struct cfg *cfg)
{
    int rc = mbedtls_ssl_config_defaults(c, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);

    if (rc != 0)
        return rc;
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &s->drbg);
    /* RFC 9325 §3.1.1, RFC 7590 §3.2: TLS 1.2 or 1.3, nothing older. */
    mbedtls_ssl_conf_min_tls_version(c, cfg->tls_min_version == 13 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                                   : MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(c, MBEDTLS_SSL_VERSION_TLS1_3);
    mbedtls_ssl_conf_ciphersuites(c, ciphersuites);
    mbedtls_ssl_conf_groups(c, groups);
    mbedtls_ssl_conf_sig_algs(c, sig_algs);
    /* RFC 9325 §3.5: no renegotiation (mbedTLS answers a request with no_renegotiation). */
    mbedtls_ssl_conf_renegotiation(c, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    /* Resumption only with (EC)DHE in TLS 1.3 (RFC 8446 §2.2: psk_ke has no forward secrecy). */
    mbedtls_ssl_conf_tls13_key_exchange_modes(c,
                                              MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ALL);
    return 0;
}

/* s2s-out from domain d: we present d's certificate (XEP-0178 SASL EXTERNAL, and so that
 * remotes with s2s_secure_auth accept us) and ask for ALPN xmpp-server (XEP-0368). The
 * server's certificate is verified against tls.ca_file but never fails the handshake here:
 * the caller judges it with verify.c for the XMPP domain (RFC 6120 §13.7.2), which knows
 * SRV-ID, XmppAddr and DANE, and applies the remote's policy. */
static int setup_client_conf(struct tls_server *s, struct tls_domain *d, const struct cfg *cfg)
{
    mbedtls_ssl_config *c = &d->client;
    int rc = setup_policy(s, c, MBEDTLS_SSL_IS_CLIENT, cfg);

    if (rc != 0)
        return rc;
    mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_OPTIONAL);
    if (s->have_ca)
        mbedtls_ssl_conf_ca_chain(c, &s->ca, NULL);
    mbedtls_ssl_conf_session_tickets(c, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    /* TLS 1.3 clients drop NewSessionTicket unless asked to keep it: tls_read() saves it. */
    mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
        c, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
    rc = mbedtls_ssl_conf_alpn_protocols(c, alpn_s2s);
    if (rc != 0)
        return rc;
    return mbedtls_ssl_conf_own_cert(c, &d->chain, &d->key);
}

static int setup_conf(struct tls_server *s, enum tls_role role, const struct cfg *cfg)
{
    mbedtls_ssl_config *c = &s->conf[role];
    int rc = setup_policy(s, c, MBEDTLS_SSL_IS_SERVER, cfg);

    if (rc != 0)
        return rc;
    /* s2s-in resumes nothing: mbedTLS 3.6 does not keep the client's certificate in a TLS 1.3
     * ticket (measured: a resumed session has no peer chain), and s2s authentication needs
     * it on every stream (XEP-0178). s2s streams live long, so the full handshake is rare. */
    if (role == TLS_ROLE_C2S)
        mbedtls_ssl_conf_session_tickets_cb(c, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                            &s->tickets[role]);
    else
        mbedtls_ssl_conf_new_session_tickets(c, 0);
    mbedtls_ssl_conf_sni(c, sni_cb, s);
    /* XEP-0368: offer the protocol id; a client that sends no ALPN is served all the same. */
    rc = mbedtls_ssl_conf_alpn_protocols(c, role == TLS_ROLE_C2S ? alpn_c2s : alpn_s2s);
    if (rc != 0)
        return rc;
    if (role == TLS_ROLE_S2S) {
        /* Ask for the peer's certificate but never fail on it: s2s judges the verify flags
         * itself (a serverAuth-only certificate is fine for s2s; dialback may still follow).
         * No CA names in the CertificateRequest: a full system bundle would not fit. */
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_OPTIONAL);
        if (s->have_ca)
            mbedtls_ssl_conf_ca_chain(c, &s->ca, NULL);
        mbedtls_ssl_conf_cert_req_ca_list(c, MBEDTLS_SSL_CERT_REQ_CA_LIST_DISABLED);
    } else {
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_NONE);
    }
    return 0;
}

/* ---- shared ticket keys (tls.ticket_key_file) ------------------------------------------- */

#define TICKET_SECRET_MIN 32   /* bytes of secret the file must hold at least */
#define TICKET_SECRET_MAX 4096 /* and at most */

/* Several instances behind one name must resume each other's tickets (issue 4, scale-out):
 * they derive the same key from one shared secret file. Per role (c2s, s2s), so that a c2s
 * ticket never resumes on an s2s listener:
 *   name = HMAC-SHA256(secret, "xmpp-tls-proxy ticket name " ROLE)[0..4)
 *   key  = HMAC-SHA256(secret, "xmpp-tls-proxy ticket key " ROLE)
 * An operator rotates by writing a new secret; each instance picks it up at its next
 * tls_server_rotate() (a reload, or main.c's periodic check), and mbedTLS keeps the previous
 * key for tickets issued under it. */
static int ticket_keys_from_file(struct tls_server *s, const struct cfg *cfg, char *err,
                                 size_t errlen)
{
    static const char *const roles[2] = {"c2s", "s2s"};
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    unsigned char secret[TICKET_SECRET_MAX + 1], name[32], key[32];
    char label[64];
    size_t n;
    FILE *f = fopen(cfg->ticket_key_file, "rb");
    int rc = 0;

    if (f == NULL) {
        cfg_fail(err, errlen, cfg, cfg->ticket_key_line, "tls.ticket_key_file: cannot read %s: %s",
                 cfg->ticket_key_file, strerror(errno));
        return XTP_ECONFIG;
    }
    n = fread(secret, 1, sizeof(secret), f);
    fclose(f);
    while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
        n--;
    if (n < TICKET_SECRET_MIN || n > TICKET_SECRET_MAX) {
        cfg_fail(err, errlen, cfg, cfg->ticket_key_line,
                 "tls.ticket_key_file: %s must hold %d to %d bytes of secret (e.g. `openssl rand "
                 "-hex 32 > FILE`), not %zu",
                 cfg->ticket_key_file, TICKET_SECRET_MIN, TICKET_SECRET_MAX, n);
        mbedtls_platform_zeroize(secret, sizeof(secret));
        return XTP_ECONFIG;
    }
    for (int r = 0; r < 2 && rc == 0; r++) {
        snprintf(label, sizeof(label), "xmpp-tls-proxy ticket name %s", roles[r]);
        rc = mbedtls_md_hmac(md, secret, n, (const unsigned char *)label, strlen(label), name);
        snprintf(label, sizeof(label), "xmpp-tls-proxy ticket key %s", roles[r]);
        if (rc == 0)
            rc = mbedtls_md_hmac(md, secret, n, (const unsigned char *)label, strlen(label), key);
        if (rc == 0)
            rc = mbedtls_ssl_ticket_rotate(&s->tickets[r], name, 4, key, sizeof(key),
                                           TICKET_LIFETIME_S);
    }
    mbedtls_platform_zeroize(secret, sizeof(secret));
    mbedtls_platform_zeroize(key, sizeof(key));
    if (rc != 0) {
        char lib[120];

        mbedtls_strerror(rc, lib, sizeof(lib));
        cfg_fail(err, errlen, cfg, cfg->ticket_key_line, "tls.ticket_key_file: %s", lib);
        return XTP_ETLS;
    }
    return 0;
}

int tls_server_rotate(struct tls_server *s, const struct cfg *cfg, char *err, size_t errlen)
{
    if (cfg->ticket_key_file == NULL)
        return 0; /* the ticket module rotates its own random keys */
    return ticket_keys_from_file(s, cfg, err, errlen);
}

struct tls_server *tls_server_new(const struct cfg *cfg, char *err, size_t errlen)
{
    static const char pers[] = "xmpp-tls-proxy tls_server";
    struct tls_server *s;
    char lib[200];
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto fail_nomem;
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    for (int r = 0; r < 2; r++) {
        mbedtls_ssl_ticket_init(&s->tickets[r]);
        mbedtls_ssl_config_init(&s->conf[r]);
    }
    mbedtls_x509_crt_init(&s->ca);

    rc = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
                               (const unsigned char *)pers, sizeof(pers) - 1);
    if (rc != 0)
        goto fail_lib;

    s->domains = calloc(cfg->ndomains, sizeof(*s->domains));
    if (s->domains == NULL && cfg->ndomains > 0)
        goto fail_nomem;
    for (size_t i = 0; i < cfg->ndomains; i++) {
        mbedtls_x509_crt_init(&s->domains[i].chain);
        mbedtls_pk_init(&s->domains[i].key);
        mbedtls_ssl_config_init(&s->domains[i].client);
        s->ndomains = i + 1;
        if (load_domain(s, &s->domains[i], cfg, &cfg->domains[i], err, errlen) != 0)
            goto fail_free;
    }
    if (s->ndomains == 0) {
        cfg_fail(err, errlen, cfg, 0, "no domains to serve");
        goto fail_free;
    }

    if (cfg->ca_file != NULL) {
        /* A bundle may hold certificates mbedTLS cannot parse (rc > 0): keep the others. */
        rc = mbedtls_x509_crt_parse_file(&s->ca, cfg->ca_file);
        s->have_ca = rc >= 0 && s->ca.raw.p != NULL;
        if (!s->have_ca && cfg->ca_file_line != 0) {
            if (rc > 0)
                snprintf(lib, sizeof(lib), "%d certificate(s) could not be parsed", rc);
            else
                mbedtls_strerror(rc, lib, sizeof(lib));
            cfg_fail(err, errlen, cfg, cfg->ca_file_line,
                     "tls.ca_file: no usable CA certificate in %s (%s)", cfg->ca_file, lib);
            goto fail_free;
        }
    }

    for (int r = 0; r < 2; r++) {
        rc = mbedtls_ssl_ticket_setup(&s->tickets[r], mbedtls_ctr_drbg_random, &s->drbg,
                                      MBEDTLS_CIPHER_AES_256_GCM, TICKET_LIFETIME_S);
        if (rc != 0)
            goto fail_lib;
        rc = setup_conf(s, (enum tls_role)r, cfg);
        if (rc != 0)
            goto fail_lib;
    }
    for (size_t i = 0; i < s->ndomains; i++) {
        rc = setup_client_conf(s, &s->domains[i], cfg);
        if (rc != 0)
            goto fail_lib;
    }
    if (tls_server_rotate(s, cfg, err, errlen) != 0)
        goto fail_free;
    return s;

fail_lib:
    mbedtls_strerror(rc, lib, sizeof(lib));
    cfg_fail(err, errlen, cfg, 0, "TLS setup failed (%s)", lib);
    goto fail_free;
fail_nomem:
    cfg_fail(err, errlen, cfg, 0, "TLS setup failed (out of memory)");
fail_free:
    tls_server_free(s);
    return NULL;
}

void tls_server_free(struct tls_server *s)
{
    if (s == NULL)
        return;
    for (int r = 0; r < 2; r++) {
        mbedtls_ssl_config_free(&s->conf[r]);
        mbedtls_ssl_ticket_free(&s->tickets[r]);
    }
    for (size_t i = 0; i < s->ndomains; i++) {
        mbedtls_ssl_config_free(&s->domains[i].client);
        mbedtls_x509_crt_free(&s->domains[i].chain);
        mbedtls_pk_free(&s->domains[i].key);
        free(s->domains[i].name);
    }
    free(s->domains);
    mbedtls_x509_crt_free(&s->ca);
    mbedtls_ctr_drbg_free(&s->drbg);
    mbedtls_entropy_free(&s->entropy);
    free(s);
}

long long tls_server_cert_expiry(const struct tls_server *s, const char *domain)
{
    const struct tls_domain *d = find_domain(s, domain, strlen(domain));
    const mbedtls_x509_time *to;
    struct tm tm = {0};
    time_t end;

    if (d == NULL)
        return 0;
    to = &d->chain.valid_to;
    tm.tm_year = to->year - 1900;
    tm.tm_mon = to->mon - 1;
    tm.tm_mday = to->day;
    tm.tm_hour = to->hour;
    tm.tm_min = to->min;
    tm.tm_sec = to->sec;
    end = timegm(&tm);
    if (end == (time_t)-1)
        return 0;
    return (long long)end - (long long)time(NULL);
}

/* ---- sessions -------------------------------------------------------------------------- */

struct tls *tls_new(struct tls_server *s, enum tls_role role, const char *domain, tls_send_fn *send,
                    void *send_arg)
{
    const struct tls_domain *d = domain ? find_domain(s, domain, strlen(domain)) : s->domains;
    struct tls *t;

    if (d == NULL || (role != TLS_ROLE_C2S && role != TLS_ROLE_S2S))
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->srv = s;
    t->send = send;
    t->send_arg = send_arg;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &s->conf[role]) != 0)
        goto fail_free;
    mbedtls_ssl_set_user_data_p(&t->ssl, t);
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    /* The certificate for a client that sends no SNI. mbedtls_ssl_setup() has allocated the
     * handshake parameters this writes to, and the handshake prefers them to the config's
     * own certificates; sni_cb() replaces them. */
    if (mbedtls_ssl_set_hs_own_cert(&t->ssl, (mbedtls_x509_crt *)&d->chain,
                                    (mbedtls_pk_context *)&d->key) != 0)
        goto fail_free;
    return t;

fail_free:
    mbedtls_ssl_free(&t->ssl);
    free(t);
    return NULL;
}

struct tls *tls_new_client(struct tls_server *s, const char *domain, const char *remote,
                           const struct tls_ticket *resume, tls_send_fn *send, void *send_arg)
{
    const struct tls_domain *d = find_domain(s, domain, strlen(domain));
    struct tls *t;

    if (d == NULL)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->srv = s;
    t->send = send;
    t->send_arg = send_arg;
    t->client = true;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &d->client) != 0)
        goto fail_free;
    mbedtls_ssl_set_user_data_p(&t->ssl, t);
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    /* RFC 7590 §3.1, XEP-0368: SNI is the XMPP domain, never the SRV target. */
    if (mbedtls_ssl_set_hostname(&t->ssl, remote) != 0)
        goto fail_free;
    /* A stale or foreign ticket only costs a full handshake, so a failure here is ignored. */
    if (resume != NULL)
        (void)mbedtls_ssl_set_session(&t->ssl, &resume->sess);
    return t;

fail_free:
    mbedtls_ssl_free(&t->ssl);
    free(t);
    return NULL;
}

static struct tls_ticket *session_copy(const struct tls *t)
{
    struct tls_ticket *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return NULL;
    mbedtls_ssl_session_init(&k->sess);
    if (mbedtls_ssl_get_session(&t->ssl, &k->sess) != 0) {
        tls_ticket_free(k);
        return NULL;
    }
    return k;
}

struct tls_ticket *tls_ticket_take(struct tls *t)
{
    struct tls_ticket *k = t->ticket;

    if (!t->client || !t->hs_done)
        return NULL;
    t->ticket = NULL;
    /* TLS 1.2 (RFC 5077): the ticket came within the handshake. */
    if (k == NULL && mbedtls_ssl_get_version_number(&t->ssl) == MBEDTLS_SSL_VERSION_TLS1_2)
        k = session_copy(t);
    return k;
}

void tls_ticket_free(struct tls_ticket *k)
{
    if (k == NULL)
        return;
    mbedtls_ssl_session_free(&k->sess);
    free(k);
}

uint32_t tls_peer_flags(const struct tls *t)
{
    return t->hs_done ? mbedtls_ssl_get_verify_result(&t->ssl) : UINT32_MAX;
}

size_t tls_peer_chain(const struct tls *t, const uint8_t **der, size_t *len, size_t max)
{
    const mbedtls_x509_crt *c = t->hs_done ? mbedtls_ssl_get_peer_cert(&t->ssl) : NULL;
    size_t n = 0;

    for (; c != NULL && c->raw.p != NULL && n < max; c = c->next, n++) {
        der[n] = c->raw.p;
        len[n] = c->raw.len;
    }
    return n;
}

void tls_free(struct tls *t)
{
    if (t == NULL)
        return;
    mbedtls_ssl_free(&t->ssl);
    bytes_cleanup(&t->in);
    tls_ticket_free(t->ticket);
    free(t);
}

void tls_feed(struct tls *t, const void *data, size_t len)
{
    if (t->feed_len > 0 && t->feed_err == 0) /* the previous slice was not ended: keep it */
        t->feed_err = bytes_append(&t->in, t->feed, t->feed_len);
    t->feed = data;
    t->feed_len = len;
}

int tls_feed_end(struct tls *t)
{
    int rc = 0;

    if (t->feed_len > 0)
        rc = bytes_append(&t->in, t->feed, t->feed_len);
    t->feed = NULL;
    t->feed_len = 0;
    if (t->feed_err != 0) {
        rc = t->feed_err;
        t->feed_err = 0;
    }
    return rc;
}

/* Names two failures that mbedTLS reports with generic codes, for the close line (the
 * message or record that caused them is still in mbedTLS's input buffer, whose fields are
 * private: reading them is the only way to tell).
 * - RFC 8446 §4.6.3: a TLS 1.3 peer may send KeyUpdate at any time; mbedTLS 3.6 cannot
 *   process one and fails with UNEXPECTED_MESSAGE (design.md §5). Not an attack: say so.
 * - RFC 8446 §5.1/§5.2, RFC 5246 §6.2: a record longer than 2^14 + 256 bytes. mbedTLS fails
 *   with INVALID_RECORD or BAD_INPUT_DATA ("Bad input parameters to function") and sends no
 *   alert; we send record_overflow, as the RFCs require. */
static void name_failure(struct tls *t, int rc)
{
    mbedtls_ssl_context *s = &t->ssl;
    const unsigned char *hdr = s->MBEDTLS_PRIVATE(in_hdr);
    size_t len;

    if (rc == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE && t->hs_done &&
        mbedtls_ssl_get_version_number(s) == MBEDTLS_SSL_VERSION_TLS1_3 &&
        s->MBEDTLS_PRIVATE(in_msgtype) == MBEDTLS_SSL_MSG_HANDSHAKE &&
        s->MBEDTLS_PRIVATE(in_msg) != NULL &&
        s->MBEDTLS_PRIVATE(in_msg)[0] == 24 /* key_update, RFC 8446 §4 */) {
        snprintf(t->why, sizeof(t->why),
                 "the peer sent a TLS 1.3 KeyUpdate, which mbedTLS 3.6 cannot process");
        return;
    }
    if ((rc == MBEDTLS_ERR_SSL_INVALID_RECORD || rc == MBEDTLS_ERR_SSL_BAD_INPUT_DATA) &&
        hdr != NULL) {
        len = (size_t)hdr[3] << 8 | hdr[4];
        if (len > 16384 + 256) {
            snprintf(t->why, sizeof(t->why),
                     "a record of %zu bytes, over the TLS limit of 16640 (RFC 8446 §5.2)", len);
            mbedtls_ssl_send_alert_message(s, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                           MBEDTLS_SSL_ALERT_MSG_RECORD_OVERFLOW);
        }
    }
}

/* Puts back the buffers' first bytes after a trim, before mbedTLS touches them again. */
static void untrim(struct tls *t)
{
#if MBEDTLS_VERSION_MAJOR == 3
    if (!t->trimmed)
        return;
    t->trimmed = false;
    memcpy(t->ssl.MBEDTLS_PRIVATE(in_buf), t->keep_in, sizeof(t->keep_in));
    memcpy(t->ssl.MBEDTLS_PRIVATE(out_buf), t->keep_out, sizeof(t->keep_out));
#else
    (void)t;
#endif
}

int tls_handshake(struct tls *t)
{
    int rc;

    untrim(t);
    if (t->hs_done)
        return 0;
    rc = mbedtls_ssl_handshake(&t->ssl);
    switch (rc) {
    case 0:
        t->hs_done = true;
        return 0;
    case MBEDTLS_ERR_SSL_WANT_READ:
    case MBEDTLS_ERR_SSL_WANT_WRITE:
        return -EAGAIN;
    default:
        name_failure(t, rc);
        return fail(t, "handshake", rc);
    }
}

/* The whole pages in [buf + keep, buf + len), given back with MADV_DONTNEED (anonymous
 * private memory then reads as zeros). Returns their size, or 0. */
static size_t release_pages(unsigned char *buf, size_t len, size_t keep)
{
    static long page_size;
    uintptr_t page, lo, hi;

    if (page_size <= 0)
        page_size = sysconf(_SC_PAGESIZE);
    if (page_size <= 0 || len <= keep)
        return 0;
    page = (uintptr_t)page_size;
    lo = ((uintptr_t)buf + keep + page - 1) & ~(page - 1);
    hi = ((uintptr_t)buf + len) & ~(page - 1);
    if (hi <= lo || madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0)
        return 0;
    return hi - lo;
}

/* mbedTLS 3.x keeps, for TLS (not DTLS), the incoming record counter in in_buf[0..8) with the
 * record header right after it, and the outgoing one likewise in out_buf (ssl_msg.c,
 * mbedtls_ssl_reset_in_pointers / _out_pointers). Everything past the first record header
 * is scratch once a record has been consumed or sent. The fields are private: they are read
 * only where the layout matches what was checked, else nothing is trimmed. */
size_t tls_trim(struct tls *t)
{
#if MBEDTLS_VERSION_MAJOR == 3
    mbedtls_ssl_context *ssl = &t->ssl;
    unsigned char *in = ssl->MBEDTLS_PRIVATE(in_buf), *out = ssl->MBEDTLS_PRIVATE(out_buf);
    size_t in_len = 0, out_len = 0;

    if (!t->hs_done || t->feed != NULL || bytes_len(&t->in) > 0 || in == NULL || out == NULL ||
        mbedtls_ssl_check_pending(ssl) != 0 || ssl->MBEDTLS_PRIVATE(in_left) != 0 ||
        ssl->MBEDTLS_PRIVATE(in_msglen) != 0 || ssl->MBEDTLS_PRIVATE(out_left) != 0 ||
        ssl->MBEDTLS_PRIVATE(keep_current_message) != 0)
        return 0;
    if (ssl->MBEDTLS_PRIVATE(in_ctr) != in || ssl->MBEDTLS_PRIVATE(in_hdr) != in + 8 ||
        ssl->MBEDTLS_PRIVATE(out_ctr) != out || ssl->MBEDTLS_PRIVATE(out_hdr) != out + 8)
        return 0;
#if defined(MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH)
    in_len = ssl->MBEDTLS_PRIVATE(in_buf_len);
    out_len = ssl->MBEDTLS_PRIVATE(out_buf_len);
#else
    /* libc made them: its calloc, or page_calloc()'s posix_memalign() (MBEDTLS_PLATFORM_MEMORY
     * is only ever set by our profile, and tls_global_init() installs page_calloc). */
    in_len = malloc_usable_size(in);
    out_len = malloc_usable_size(out);
#endif /* The incoming record counter is kept aside: with page-aligned buffers (page_calloc)       \
        * the first page goes too. The outgoing one is copied in for each record (cur_out_ctr),    \
        * but costs nothing to keep as well. */
    if (!t->trimmed) {
        memcpy(t->keep_in, in, sizeof(t->keep_in));
        memcpy(t->keep_out, out, sizeof(t->keep_out));
        t->trimmed = true;
    }
    return release_pages(in, in_len, 0) + release_pages(out, out_len, 0);
#else
    (void)t;
    return 0;
#endif
}

int tls_read(struct tls *t, void *buf, size_t cap)
{
    untrim(t);
    if (cap == 0) /* mbedtls_ssl_read() would return 0, which means EOF */
        return -EINVAL;
    /* Each turn consumes input or buffered records, so this ends; the cap is a backstop. */
    for (int turns = 0; turns < 4096; turns++) {
        int rc = mbedtls_ssl_read(&t->ssl, buf, cap > INT_MAX ? INT_MAX : cap);

        if (rc > 0)
            return rc;
        switch (rc) {
        case 0: /* transport EOF in mbedTLS terms; our BIO has none, but be safe */
        case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
            return XTP_ECLOSED;
        case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
            /* Client only; the ticket is readable until the next mbedtls_ssl_read(). */
            tls_ticket_free(t->ticket);
            t->ticket = session_copy(t);
            continue;
        case MBEDTLS_ERR_SSL_WANT_READ:
        case MBEDTLS_ERR_SSL_WANT_WRITE:
            /* A post-handshake message (TLS 1.3 NewSessionTicket, a refused renegotiation)
             * is reported as WANT_READ although records may still be waiting behind it. */
            if (mbedtls_ssl_check_pending(&t->ssl) || input_len(t) > 0)
                continue;
            return -EAGAIN;
        default:
            name_failure(t, rc);
            return fail(t, "read", rc);
        }
    }
    return -EAGAIN;
}

int tls_write(struct tls *t, const void *data, size_t len)
{
    const unsigned char *p = data;

    untrim(t);
    if (!t->hs_done) {
        snprintf(t->err, sizeof(t->err), "write: the handshake is not complete");
        return XTP_ETLS;
    }
    while (len > 0) {
        int rc = mbedtls_ssl_write(&t->ssl, p, len);

        if (rc < 0) /* WANT_* cannot happen: bio_send takes everything */
            return fail(t, "write", rc);
        p += rc;
        len -= (size_t)rc;
    }
    return 0;
}

int tls_close_notify(struct tls *t)
{
    int rc;

    untrim(t);
    rc = mbedtls_ssl_close_notify(&t->ssl);
    return rc == 0 ? 0 : fail(t, "close_notify", rc);
}

const char *tls_version(const struct tls *t)
{
    return t->hs_done ? mbedtls_ssl_get_version(&t->ssl) : "none";
}

const char *tls_cipher(const struct tls *t)
{
    const char *c = t->hs_done ? mbedtls_ssl_get_ciphersuite(&t->ssl) : NULL;

    return c ? c : "none";
}

const char *tls_sni(const struct tls *t)
{
    return t->hs_done && t->sni ? t->sni->name : NULL;
}

const char *tls_alpn(const struct tls *t)
{
    return t->hs_done ? mbedtls_ssl_get_alpn_protocol(&t->ssl) : NULL;
}

bool tls_resumed(const struct tls *t)
{
    const struct hs_watch *w = &t->watch;

    if (!t->hs_done || !w->seen_sh)
        return false;
    return w->tls13 ? w->psk : !w->cert;
}

const char *tls_last_error(const struct tls *t)
{
    return t->err;
}
