/* test_tls.c: real handshakes in memory between a tls.c server session and an mbedTLS client
 * set up here (tests may include mbedTLS; the proxy's other modules may not). Certificates come
 * from tests/certs (found through $XTP_SRC, else ../certs from tests/unit). */
#include "tls.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include "bytes.h"
#include "cfg.h"
#include "err.h"
#include "test.h"

/* ---- fixtures -------------------------------------------------------------------------- */

static char certdir[512];
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_x509_crt ca;
static bool fixtures_ready;

static void fixtures_free(void)
{
    mbedtls_x509_crt_free(&ca);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_psa_crypto_free();
}

static const char *cert_path(char *buf, size_t len, const char *file)
{
    snprintf(buf, len, "%s/%s", certdir, file);
    return buf;
}

static void fixtures(void)
{
    const char *src = getenv("XTP_SRC");
    char path[600];

    if (fixtures_ready)
        return;
    fixtures_ready = true;
    if (src != NULL)
        snprintf(certdir, sizeof(certdir), "%s/tests/certs", src);
    else
        snprintf(certdir, sizeof(certdir), "../certs");
    if (tls_global_init() != 0) {
        fprintf(stderr, "tls_global_init failed\n");
        exit(1);
    }
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&ca);
    atexit(fixtures_free);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) != 0 ||
        mbedtls_x509_crt_parse_file(&ca, cert_path(path, sizeof(path), "ca.crt")) != 0) {
        fprintf(stderr, "cannot set up the test client (certificates in %s?)\n", certdir);
        exit(1);
    }
}

struct dom {
    const char *name, *cert, *key; /* cert and key: file names in tests/certs */
};

static const struct dom two_domains[] = {
    {"example.test", "example.test.crt", "example.test.key"},
    {"example.org", "example.org.crt", "example.org.key"},
};

/* A cfg as cfg.c would build it: domain i's lines are 10i+1 (name), 10i+2 (cert), 10i+3 (key);
 * tls.ca_file is on line 5 when ca_line says so. Returns the server or NULL with err. */
static struct tls_server *server_new_ca(const struct dom *doms, size_t n, int min_version,
                                        const char *ca_file, int ca_line, char *err, size_t errlen)
{
    struct cfg c = {0};
    struct cfg_domain d[4] = {{0}};
    char certs[4][600], keys[4][600], ca_path[600];
    char cfg_path[] = "test.yaml";
    struct tls_server *s;

    fixtures();
    c.path = cfg_path;
    c.tls_min_version = min_version;
    c.ca_file = ca_file ? (ca_file[0] == '/' ? (char *)ca_file
                                             : (char *)cert_path(ca_path, sizeof(ca_path), ca_file))
                        : NULL;
    c.ca_file_line = ca_line;
    for (size_t i = 0; i < n && i < 4; i++) {
        d[i].name = (char *)doms[i].name;
        d[i].cert = doms[i].cert[0] == '/' ? (char *)doms[i].cert
                                           : (char *)cert_path(certs[i], 600, doms[i].cert);
        d[i].key = doms[i].key[0] == '/' ? (char *)doms[i].key
                                         : (char *)cert_path(keys[i], 600, doms[i].key);
        d[i].line = 10 * (int)i + 1;
        d[i].cert_line = 10 * (int)i + 2;
        d[i].key_line = 10 * (int)i + 3;
    }
    c.domains = d;
    c.ndomains = n;
    s = tls_server_new(&c, err, errlen);
    return s;
}

static struct tls_server *server_new(const struct dom *doms, size_t n, int min_version)
{
    char err[512];
    struct tls_server *s = server_new_ca(doms, n, min_version, "ca.crt", 0, err, sizeof(err));

    if (s == NULL)
        fprintf(stderr, "tls_server_new: %s\n", err);
    return s;
}

/* ---- a client and a server joined by two byte queues ----------------------------------- */

struct client_opts {
    int min_version, max_version; /* 0: 1.2 / 1.3 */
    const uint16_t *groups;       /* NULL: mbedTLS defaults */
    bool renegotiation;
    const int *suites;    /* NULL: mbedTLS defaults */
    const char *hostname; /* also the SNI; NULL: none sent, name not checked */
    const char **alpn;
    const mbedtls_ssl_session *resume;
    const char *cert, *key; /* client certificate (s2s) */
};

struct pair {
    struct tls *srv;
    struct bytes s2c, c2s;
    int send_fail;     /* nonzero: the server's send callback fails with it */
    bool cert_request; /* the server sent a plaintext CertificateRequest (TLS 1.2) */
    unsigned kx_group; /* the named group of its ServerKeyExchange (TLS 1.2) */
    mbedtls_ssl_config cconf;
    mbedtls_ssl_context cli;
    mbedtls_x509_crt ccert;
    mbedtls_pk_context ckey;
    mbedtls_ssl_session ticket; /* the last session the client got */
    bool have_ticket;
};

static int srv_send(void *arg, const void *data, size_t len)
{
    struct pair *p = arg;

    const uint8_t *d = data;

    if (p->send_fail)
        return p->send_fail;
    /* mbedTLS writes each handshake message into a record of its own. */
    if (len > 5 && d[0] == 22 && d[5] == 13)
        p->cert_request = true;
    /* ServerKeyExchange: ECParameters = named_curve (3), then the group (RFC 8422 §5.4). */
    if (len > 12 && d[0] == 22 && d[5] == 12 && d[9] == 3)
        p->kx_group = (unsigned)d[10] << 8 | d[11];
    return bytes_append(&p->s2c, data, len);
}

static int cli_send(void *arg, const unsigned char *buf, size_t len)
{
    struct pair *p = arg;

    if (bytes_append(&p->c2s, buf, len) != 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    return (int)len;
}

static int cli_recv(void *arg, unsigned char *buf, size_t len)
{
    struct pair *p = arg;
    size_t n = bytes_len(&p->s2c) < len ? bytes_len(&p->s2c) : len;

    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    memcpy(buf, bytes_data(&p->s2c), n);
    bytes_consume(&p->s2c, n);
    return (int)n;
}

/* Sets up both ends; false (with a test failure) if anything is off. */
static bool pair_init(struct pair *p, struct tls_server *s, enum tls_role role, const char *domain,
                      const struct client_opts *o)
{
    char path[600];

    memset(p, 0, sizeof(*p));
    mbedtls_ssl_config_init(&p->cconf);
    mbedtls_ssl_init(&p->cli);
    mbedtls_x509_crt_init(&p->ccert);
    mbedtls_pk_init(&p->ckey);
    mbedtls_ssl_session_init(&p->ticket);
    if (s == NULL)
        return false;
    p->srv = tls_new(s, role, domain, srv_send, p);
    EXPECT(p->srv != NULL);
    if (p->srv == NULL)
        return false;
    EXPECT_EQ(0, mbedtls_ssl_config_defaults(&p->cconf, MBEDTLS_SSL_IS_CLIENT,
                                             MBEDTLS_SSL_TRANSPORT_STREAM,
                                             MBEDTLS_SSL_PRESET_DEFAULT));
    mbedtls_ssl_conf_rng(&p->cconf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_authmode(&p->cconf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&p->cconf, &ca, NULL);
    mbedtls_ssl_conf_min_tls_version(&p->cconf,
                                     o->min_version ? o->min_version : MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(&p->cconf,
                                     o->max_version ? o->max_version : MBEDTLS_SSL_VERSION_TLS1_3);
    if (o->suites)
        mbedtls_ssl_conf_ciphersuites(&p->cconf, o->suites);
    if (o->groups)
        mbedtls_ssl_conf_groups(&p->cconf, o->groups);
    if (o->renegotiation)
        mbedtls_ssl_conf_renegotiation(&p->cconf, MBEDTLS_SSL_RENEGOTIATION_ENABLED);
    if (o->alpn)
        EXPECT_EQ(0, mbedtls_ssl_conf_alpn_protocols(&p->cconf, o->alpn));
    mbedtls_ssl_conf_session_tickets(&p->cconf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
        &p->cconf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
    if (o->cert) {
        EXPECT_EQ(0,
                  mbedtls_x509_crt_parse_file(&p->ccert, cert_path(path, sizeof(path), o->cert)));
        EXPECT_EQ(0, mbedtls_pk_parse_keyfile(&p->ckey, cert_path(path, sizeof(path), o->key), NULL,
                                              mbedtls_ctr_drbg_random, &drbg));
        EXPECT_EQ(0, mbedtls_ssl_conf_own_cert(&p->cconf, &p->ccert, &p->ckey));
    }
    EXPECT_EQ(0, mbedtls_ssl_setup(&p->cli, &p->cconf));
    /* NULL explicitly: no SNI and no name check (the chain is still verified). */
    EXPECT_EQ(0, mbedtls_ssl_set_hostname(&p->cli, o->hostname));
    mbedtls_ssl_set_bio(&p->cli, p, cli_send, cli_recv, NULL);
    if (o->resume)
        EXPECT_EQ(0, mbedtls_ssl_set_session(&p->cli, o->resume));
    return true;
}

static void pair_free(struct pair *p)
{
    tls_free(p->srv);
    mbedtls_ssl_free(&p->cli);
    mbedtls_ssl_config_free(&p->cconf);
    mbedtls_x509_crt_free(&p->ccert);
    mbedtls_pk_free(&p->ckey);
    mbedtls_ssl_session_free(&p->ticket);
    bytes_cleanup(&p->s2c);
    bytes_cleanup(&p->c2s);
}

/* Lends everything the client wrote to the server, one_byte at a time if asked, and runs
 * step (tls_handshake or a read) after each lend. */
static int feed_server(struct pair *p, bool one_byte, int (*step)(struct pair *p))
{
    int rc = -EAGAIN;

    while (bytes_len(&p->c2s) > 0) {
        size_t n = one_byte ? 1 : bytes_len(&p->c2s);

        tls_feed(p->srv, bytes_data(&p->c2s), n);
        rc = step(p);
        EXPECT_EQ(0, tls_feed_end(p->srv));
        bytes_consume(&p->c2s, n);
        if (rc != -EAGAIN && rc != 0)
            break;
    }
    return rc;
}

static int step_handshake(struct pair *p)
{
    return tls_handshake(p->srv);
}

/* Drives both handshakes. Returns the server's result; *cli_rc gets the client's last one. */
static int handshake(struct pair *p, bool one_byte, int *cli_rc)
{
    int src = -EAGAIN, crc = MBEDTLS_ERR_SSL_WANT_READ;

    for (int i = 0; i < 20; i++) {
        if (crc == MBEDTLS_ERR_SSL_WANT_READ || crc == MBEDTLS_ERR_SSL_WANT_WRITE)
            crc = mbedtls_ssl_handshake(&p->cli);
        if (bytes_len(&p->c2s) > 0)
            src = feed_server(p, one_byte, step_handshake);
        if (src != -EAGAIN && src != 0)
            break;
        if (src == 0 && crc == 0)
            break;
        if (crc != 0 && crc != MBEDTLS_ERR_SSL_WANT_READ && crc != MBEDTLS_ERR_SSL_WANT_WRITE &&
            bytes_len(&p->c2s) == 0)
            break;
    }
    if (cli_rc)
        *cli_rc = crc;
    return src;
}

/* Reads whatever the server sent, keeping any session ticket. Returns bytes read into buf, or
 * the client's error. mbedTLS trap: after parsing a TLS 1.3 NewSessionTicket, the client's
 * mbedtls_ssl_read() returns WANT_READ and reports RECEIVED_NEW_SESSION_TICKET only on the next
 * call, so one more call is made once the input has run dry. */
static int client_read(struct pair *p, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    bool retried = false;

    while (got < cap) {
        int rc = mbedtls_ssl_read(&p->cli, buf + got, cap - got);

        if (rc == MBEDTLS_ERR_SSL_WANT_READ && bytes_len(&p->s2c) == 0 && !retried) {
            retried = true;
            continue;
        }
        retried = false;

        if (rc > 0) {
            got += (size_t)rc;
        } else if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            mbedtls_ssl_session_free(&p->ticket);
            mbedtls_ssl_session_init(&p->ticket);
            EXPECT_EQ(0, mbedtls_ssl_get_session(&p->cli, &p->ticket));
            p->have_ticket = true;
        } else if (rc == MBEDTLS_ERR_SSL_WANT_READ && bytes_len(&p->s2c) == 0) {
            break;
        } else if (rc != MBEDTLS_ERR_SSL_WANT_READ) {
            return got > 0 ? (int)got : rc;
        }
    }
    return (int)got;
}

static bool has_alert(const struct bytes *b, int description)
{
    const uint8_t *d = bytes_data(b);
    size_t n = bytes_len(b);

    /* A plaintext alert record: type 21, version, length 2, level, description. */
    for (size_t i = 0; i + 7 <= n; i++)
        if (d[i] == 21 && d[i + 1] == 3 && d[i + 3] == 0 && d[i + 4] == 2 &&
            d[i + 6] == description)
            return true;
    return false;
}

static void peer_subject(struct pair *p, char *buf, size_t len)
{
    const mbedtls_x509_crt *c = mbedtls_ssl_get_peer_cert(&p->cli);

    buf[0] = '\0';
    if (c != NULL)
        mbedtls_x509_dn_gets(buf, len, &c->subject);
}

/* ---- handshakes ------------------------------------------------------------------------ */

TEST(tls13_by_default)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct client_opts o = {.hostname = "example.test"};
    struct pair p;
    int crc;

    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        EXPECT_STR("none", tls_version(p.srv));
        EXPECT_STR("none", tls_cipher(p.srv));
        EXPECT(tls_sni(p.srv) == NULL);
        EXPECT(tls_alpn(p.srv) == NULL);
        EXPECT(!tls_resumed(p.srv));
        EXPECT_STR("", tls_last_error(p.srv));
        EXPECT_EQ(-EAGAIN, tls_handshake(p.srv)); /* nothing fed yet */
        EXPECT_EQ(0, handshake(&p, false, &crc));
        EXPECT_EQ(0, crc);
        EXPECT_STR("TLSv1.3", tls_version(p.srv));
        /* mbedTLS's TLS 1.3 server takes the client's first suite among ours. */
        EXPECT_MSG(strcmp(tls_cipher(p.srv), "TLS1-3-AES-128-GCM-SHA256") == 0 ||
                       strcmp(tls_cipher(p.srv), "TLS1-3-AES-256-GCM-SHA384") == 0 ||
                       strcmp(tls_cipher(p.srv), "TLS1-3-CHACHA20-POLY1305-SHA256") == 0,
                   "%s", tls_cipher(p.srv));
        EXPECT_STR("example.test", tls_sni(p.srv));
        EXPECT(!tls_resumed(p.srv));
        EXPECT_STR("", tls_last_error(p.srv));
        EXPECT_EQ(0, tls_handshake(p.srv)); /* done stays done */
    }
    pair_free(&p);
    tls_server_free(s);
}

TEST(tls13_suites)
{
    static const int aes128[] = {MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 0};
    static const int aes256[] = {MBEDTLS_TLS1_3_AES_256_GCM_SHA384, 0};
    static const int chacha[] = {MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, 0};
    static const int ccm[] = {MBEDTLS_TLS1_3_AES_128_CCM_SHA256,
                              MBEDTLS_TLS1_3_AES_128_CCM_8_SHA256, 0};
    const struct {
        const int *offer;
        const char *want; /* NULL: refused */
    } rows[] = {
        {aes128, "TLS1-3-AES-128-GCM-SHA256"},
        {aes256, "TLS1-3-AES-256-GCM-SHA384"},
        {chacha, "TLS1-3-CHACHA20-POLY1305-SHA256"},
        {ccm, NULL}, /* not in our list */
    };
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct pair p;

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct client_opts o = {.hostname = "example.test",
                                .min_version = MBEDTLS_SSL_VERSION_TLS1_3,
                                .suites = rows[i].offer};

        if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
            EXPECT_EQ_MSG(rows[i].want ? 0 : XTP_ETLS, handshake(&p, false, NULL), "row %zu", i);
            if (rows[i].want)
                EXPECT_STR_MSG(rows[i].want, tls_cipher(p.srv), "row %zu", i);
        }
        pair_free(&p);
    }
    tls_server_free(s);
}

TEST(tls12_when_client_max_is_12)
{
    static const struct dom rsa[] = {
        {"example.test", "rsa2048.example.test.crt", "rsa2048.example.test.key"}};
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct tls_server *srsa = server_new(rsa, 1, 12);
    struct client_opts o = {.hostname = "example.test", .max_version = MBEDTLS_SSL_VERSION_TLS1_2};
    struct client_opts o13 = {.hostname = "example.test"};
    struct pair p;
    int crc;

    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        EXPECT_EQ(0, handshake(&p, false, &crc));
        EXPECT_EQ(0, crc);
        EXPECT_STR("TLSv1.2", tls_version(p.srv));
        EXPECT_STR("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", tls_cipher(p.srv));
    }
    pair_free(&p);
    /* An RSA 2048 certificate: ECDHE-RSA in TLS 1.2, RSA-PSS in TLS 1.3. */
    if (pair_init(&p, srsa, TLS_ROLE_C2S, NULL, &o)) {
        EXPECT_EQ(0, handshake(&p, false, &crc));
        EXPECT_EQ(0, crc);
        EXPECT_STR("TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256", tls_cipher(p.srv));
    }
    pair_free(&p);
    if (pair_init(&p, srsa, TLS_ROLE_C2S, NULL, &o13)) {
        EXPECT_EQ(0, handshake(&p, false, &crc));
        EXPECT_EQ(0, crc);
        EXPECT_STR("TLSv1.3", tls_version(p.srv));
    }
    pair_free(&p);
    tls_server_free(s);
    tls_server_free(srsa);
}

TEST(groups_restricted)
{
    static const uint16_t p256[] = {MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0};
    static const uint16_t p384[] = {MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, 0};
    static const uint16_t x25519[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519, 0};
    static const uint16_t p521[] = {MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1, 0};
    static const uint16_t ffdhe[] = {MBEDTLS_SSL_IANA_TLS_GROUP_FFDHE2048, 0};
    /* TLS 1.2: the client's groups also bound the curve of our ECDSA P-256 certificate
     * (RFC 8422 §5.1), so P-256 is always offered and we watch which group the server picks
     * for ECDHE in its ServerKeyExchange. */
    static const uint16_t p521_p256[] = {MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1,
                                         MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0};
    static const uint16_t p384_p256[] = {MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
                                         MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0};
    static const uint16_t x25519_p256[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
                                           MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0};
    const struct {
        int version;
        const uint16_t *groups;
        int want;      /* 0 or XTP_ETLS */
        unsigned kx12; /* TLS 1.2: the group in ServerKeyExchange */
    } rows[] = {
        {MBEDTLS_SSL_VERSION_TLS1_3, p256, 0, 0},
        {MBEDTLS_SSL_VERSION_TLS1_3, p384, 0, 0},
        {MBEDTLS_SSL_VERSION_TLS1_3, x25519, 0, 0},
        {MBEDTLS_SSL_VERSION_TLS1_3, p521, XTP_ETLS, 0},
        {MBEDTLS_SSL_VERSION_TLS1_3, ffdhe, XTP_ETLS, 0},
        {MBEDTLS_SSL_VERSION_TLS1_3, p521_p256, 0, 0}, /* HelloRetryRequest for P-256 */
        {MBEDTLS_SSL_VERSION_TLS1_2, p256, 0, 23},
        {MBEDTLS_SSL_VERSION_TLS1_2, p521_p256, 0, 23},
        {MBEDTLS_SSL_VERSION_TLS1_2, p384_p256, 0, 23}, /* our order: P-256 before P-384 */
        {MBEDTLS_SSL_VERSION_TLS1_2, x25519_p256, 0, 29},
        {MBEDTLS_SSL_VERSION_TLS1_2, p521, XTP_ETLS, 0},
    };
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct pair p;

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct client_opts o = {.hostname = "example.test",
                                .min_version = rows[i].version,
                                .max_version = rows[i].version,
                                .groups = rows[i].groups};

        if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
            EXPECT_EQ_MSG(rows[i].want, handshake(&p, false, NULL), "row %zu: %s", i,
                          tls_last_error(p.srv));
            if (rows[i].kx12)
                EXPECT_EQ_MSG(rows[i].kx12, p.kx_group, "row %zu", i);
        }
        pair_free(&p);
    }
    tls_server_free(s);
}

TEST(tls12_cbc_only_client_refused)
{
    static const int cbc[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
                              MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, 0};
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct client_opts o = {
        .hostname = "example.test", .max_version = MBEDTLS_SSL_VERSION_TLS1_2, .suites = cbc};
    struct pair p;
    int crc;

    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        EXPECT_EQ(XTP_ETLS, handshake(&p, false, &crc));
        EXPECT(strstr(tls_last_error(p.srv), "handshake: ") == tls_last_error(p.srv));
        EXPECT_STR("none", tls_version(p.srv));
        crc = mbedtls_ssl_handshake(&p.cli); /* the client learns from the alert */
        EXPECT(crc != 0 && crc != MBEDTLS_ERR_SSL_WANT_READ);
    }
    pair_free(&p);
    tls_server_free(s);
}

TEST(min_version_13_refuses_12_client)
{
    struct tls_server *s = server_new(two_domains, 2, 13);
    struct client_opts o12 = {.hostname = "example.test",
                              .max_version = MBEDTLS_SSL_VERSION_TLS1_2};
    struct client_opts o13 = {.hostname = "example.test"};
    struct pair p;

    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o12)) {
        EXPECT_EQ(XTP_ETLS, handshake(&p, false, NULL));
        EXPECT(has_alert(&p.s2c, MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION));
    }
    pair_free(&p);
    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o13)) /* 1.3 still works */
        EXPECT_EQ(0, handshake(&p, false, NULL));
    pair_free(&p);
    tls_server_free(s);
}

/* mbedTLS 3.6 cannot speak TLS 1.1 any more, so the client is a hand-made ClientHello. */
TEST(tls11_client_refused)
{
    static const uint8_t hello_hdr[] = {
        22, 3, 1, 0,  63, /* record: handshake, TLS 1.0, 63 bytes */
        1,  0, 0, 59,     /* ClientHello, 59 bytes */
        3,  2,            /* client_version TLS 1.1 */
    };
    static const uint8_t hello_tail[] = {
        0,                                    /* session_id */
        0, 4,  0xc0, 0x09, 0xc0, 0x13,        /* ECDHE-ECDSA/RSA-AES128-SHA */
        1, 0,                                 /* compression: null */
        0, 14,                                /* extensions */
        0, 10, 0,    4,    0,    2,    0, 23, /* supported_groups: secp256r1 */
        0, 11, 0,    2,    1,    0,           /* ec_point_formats: uncompressed */
    };
    uint8_t hello[sizeof(hello_hdr) + 32 + sizeof(hello_tail)];
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct pair p;
    struct client_opts o = {.hostname = "example.test"};

    memcpy(hello, hello_hdr, sizeof(hello_hdr));
    memset(hello + sizeof(hello_hdr), 0x5a, 32); /* random */
    memcpy(hello + sizeof(hello_hdr) + 32, hello_tail, sizeof(hello_tail));
    EXPECT_EQ(63, sizeof(hello) - 5);
    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        tls_feed(p.srv, hello, sizeof(hello));
        EXPECT_EQ(XTP_ETLS, tls_handshake(p.srv));
        EXPECT_EQ(0, tls_feed_end(p.srv));
        EXPECT(has_alert(&p.s2c, MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION));
        EXPECT(strlen(tls_last_error(p.srv)) > 0);
    }
    pair_free(&p);
    tls_server_free(s);
}

TEST(garbage_and_failing_send)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct client_opts o = {.hostname = "example.test"};
    struct pair p;

    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        tls_feed(p.srv, http, sizeof(http) - 1);
        EXPECT_EQ(XTP_ETLS, tls_handshake(p.srv));
        EXPECT_EQ(0, tls_feed_end(p.srv));
        EXPECT(strlen(tls_last_error(p.srv)) > 0);
    }
    pair_free(&p);
    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        p.send_fail = -ENOBUFS;
        EXPECT_EQ(XTP_ETLS, handshake(&p, false, NULL));
        EXPECT_MSG(strstr(tls_last_error(p.srv), "send callback failed") != NULL, "%s",
                   tls_last_error(p.srv));
    }
    pair_free(&p);
    tls_server_free(s);
}

/* ---- SNI and ALPN ---------------------------------------------------------------------- */

TEST(sni_selects_certificate)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    const char *names[] = {"example.org", "EXAMPLE.Org", "example.test"};
    const char *want[] = {"CN=example.org", "CN=example.org", "CN=example.test"};
    struct pair p;
    char subject[128];

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        struct client_opts o = {.hostname = names[i]};
        int crc;

        /* tls_new() names the other domain: SNI must win. */
        if (pair_init(&p, s, TLS_ROLE_C2S, i == 2 ? "example.org" : "example.test", &o)) {
            EXPECT_EQ_MSG(0, handshake(&p, false, &crc), "%s", names[i]);
            EXPECT_EQ_MSG(0, crc, "%s", names[i]);
            peer_subject(&p, subject, sizeof(subject));
            EXPECT_STR_MSG(want[i], subject, "%s", names[i]);
            EXPECT_STR_MSG(want[i] + 3, tls_sni(p.srv), "%s", names[i]); /* lower-case */
        }
        pair_free(&p);
    }
    tls_server_free(s);
}

TEST(sni_unknown_fails)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    const int versions[] = {MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_SSL_VERSION_TLS1_2};
    struct pair p;

    for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
        struct client_opts o = {.hostname = "unknown.test", .max_version = versions[i]};

        if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
            EXPECT_EQ_MSG(XTP_ETLS, handshake(&p, false, NULL), "version %x", versions[i]);
            EXPECT_MSG(has_alert(&p.s2c, MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME), "version %x",
                       versions[i]);
            EXPECT_MSG(strstr(tls_last_error(p.srv), "unknown.test") != NULL, "%s",
                       tls_last_error(p.srv));
            EXPECT(tls_sni(p.srv) == NULL);
        }
        pair_free(&p);
    }
    tls_server_free(s);
}

TEST(no_sni_presents_tls_new_domain)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    const char *domains[] = {"example.org", NULL, "Example.Test"};
    const char *want[] = {"CN=example.org", "CN=example.test", "CN=example.test"};
    struct client_opts o = {.hostname = NULL};
    struct pair p;
    char subject[128];

    for (size_t i = 0; i < ARRAY_SIZE(domains); i++) {
        int crc;

        if (pair_init(&p, s, TLS_ROLE_C2S, domains[i], &o)) {
            EXPECT_EQ_MSG(0, handshake(&p, false, &crc), "row %zu", i);
            EXPECT_EQ_MSG(0, crc, "row %zu", i);
            peer_subject(&p, subject, sizeof(subject));
            EXPECT_STR_MSG(want[i], subject, "row %zu", i);
            EXPECT_MSG(tls_sni(p.srv) == NULL, "row %zu", i);
        }
        pair_free(&p);
    }
    if (s != NULL) /* a domain we do not serve is a caller bug: no session */
        EXPECT(tls_new(s, TLS_ROLE_C2S, "nope.test", srv_send, NULL) == NULL);
    tls_server_free(s);
}

TEST(alpn)
{
    static const char *client[] = {"xmpp-client", NULL};
    static const char *server[] = {"xmpp-server", NULL};
    static const char *both[] = {"h2", "xmpp-server", "xmpp-client", NULL};
    struct tls_server *s = server_new(two_domains, 2, 12);
    const struct {
        enum tls_role role;
        const char **offer;
        const char *want;
    } rows[] = {
        {TLS_ROLE_C2S, client, "xmpp-client"},
        {TLS_ROLE_S2S, server, "xmpp-server"},
        {TLS_ROLE_C2S, both, "xmpp-client"},
        {TLS_ROLE_S2S, both, "xmpp-server"},
        {TLS_ROLE_C2S, NULL, NULL}, /* no ALPN at all: still served */
        {TLS_ROLE_S2S, NULL, NULL},
    };
    struct pair p;

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct client_opts o = {.hostname = "example.test", .alpn = rows[i].offer};
        int crc;

        if (pair_init(&p, s, rows[i].role, NULL, &o)) {
            EXPECT_EQ_MSG(0, handshake(&p, false, &crc), "row %zu", i);
            EXPECT_EQ_MSG(0, crc, "row %zu", i);
            EXPECT_STR_MSG(rows[i].want, tls_alpn(p.srv), "row %zu", i);
            EXPECT_STR_MSG(rows[i].want, mbedtls_ssl_get_alpn_protocol(&p.cli), "row %zu", i);
        }
        pair_free(&p);
    }
    tls_server_free(s);
}

/* s2s asks for a client certificate and never fails on it: verify.c judges it later. */
TEST(s2s_client_certificates)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    const char *certs[][2] = {
        {"serverauth-only.other.test.crt", "serverauth-only.other.test.key"}, /* no clientAuth */
        {"other.test.crt", "other.test.key"},
        {"untrusted.example.test.crt", "untrusted.example.test.key"},
        {"expired.example.test.crt", "expired.example.test.key"},
        {NULL, NULL},
    };
    const int versions[] = {MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_SSL_VERSION_TLS1_2};
    struct pair p;

    for (size_t v = 0; v < ARRAY_SIZE(versions); v++)
        for (size_t i = 0; i < ARRAY_SIZE(certs); i++) {
            struct client_opts o = {.hostname = "example.test",
                                    .max_version = versions[v],
                                    .cert = certs[i][0],
                                    .key = certs[i][1]};
            int crc;

            if (pair_init(&p, s, TLS_ROLE_S2S, NULL, &o)) {
                EXPECT_EQ_MSG(0, handshake(&p, false, &crc), "%s v%x: %s", certs[i][0], versions[v],
                              tls_last_error(p.srv));
                EXPECT_EQ_MSG(0, crc, "%s v%x", certs[i][0], versions[v]);
                if (versions[v] == MBEDTLS_SSL_VERSION_TLS1_2)
                    EXPECT(p.cert_request);
            }
            pair_free(&p);
        }
    tls_server_free(s);

    /* Without any CA (tls.ca_file left at a default that is missing) nothing changes either. */
    s = server_new_ca(two_domains, 2, 12, "missing-ca.crt", 0, NULL, 0);
    EXPECT(s != NULL);
    for (size_t v = 0; s != NULL && v < ARRAY_SIZE(versions); v++) {
        struct client_opts o = {.hostname = "example.test",
                                .max_version = versions[v],
                                .cert = "other.test.crt",
                                .key = "other.test.key"};

        if (pair_init(&p, s, TLS_ROLE_S2S, NULL, &o))
            EXPECT_EQ_MSG(0, handshake(&p, false, NULL), "v%x: %s", versions[v],
                          tls_last_error(p.srv));
        pair_free(&p);
    }
    tls_server_free(s);
}

/* ---- our own client (s2s-out) against our own server (s2s-in) ---------------------------- */

struct duo {
    struct tls *c, *s;
    struct bytes c2s, s2c;
};

static int duo_c_send(void *arg, const void *data, size_t len)
{
    return bytes_append(&((struct duo *)arg)->c2s, data, len);
}

static int duo_s_send(void *arg, const void *data, size_t len)
{
    return bytes_append(&((struct duo *)arg)->s2c, data, len);
}

/* Moves bytes both ways until both handshakes are done or nothing moves; then lets each side
 * read once so that post-handshake messages (TLS 1.3 tickets) are processed. 0 or an error. */
static int duo_run(struct duo *d)
{
    uint8_t buf[256];
    int rc_c = -EAGAIN, rc_s = -EAGAIN;

    for (int turn = 0; turn < 50; turn++) {
        rc_c = tls_handshake(d->c);
        if (rc_c != 0 && rc_c != -EAGAIN)
            return rc_c;
        tls_feed(d->s, bytes_data(&d->c2s), bytes_len(&d->c2s));
        rc_s = tls_handshake(d->s);
        while (rc_s == 0 && tls_read(d->s, buf, sizeof(buf)) > 0)
            ;
        bytes_cleanup(&d->c2s);
        if (tls_feed_end(d->s) != 0 || (rc_s != 0 && rc_s != -EAGAIN))
            return rc_s != 0 ? rc_s : -ENOMEM;
        tls_feed(d->c, bytes_data(&d->s2c), bytes_len(&d->s2c));
        rc_c = tls_handshake(d->c);
        while (rc_c == 0 && tls_read(d->c, buf, sizeof(buf)) > 0)
            ;
        bytes_cleanup(&d->s2c);
        if (tls_feed_end(d->c) != 0 || (rc_c != 0 && rc_c != -EAGAIN))
            return rc_c != 0 ? rc_c : -ENOMEM;
        if (rc_c == 0 && rc_s == 0)
            return 0;
    }
    return -ETIMEDOUT;
}

TEST(client_mode)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct tls_ticket *ticket = NULL;
    const uint8_t *der[4];
    size_t len[4];

    if (s == NULL)
        return;
    for (int round = 0; round < 2; round++) {
        struct duo d = {0};
        char out[32] = "ping";
        uint8_t in[32];
        int n = 0;

        d.c = tls_new_client(s, "example.org", "example.test", ticket, duo_c_send, &d);
        d.s = tls_new(s, TLS_ROLE_S2S, NULL, duo_s_send, &d);
        EXPECT(d.c != NULL && d.s != NULL);
        if (d.c != NULL && d.s != NULL) {
            EXPECT_EQ_MSG(0, duo_run(&d), "client: %s / server: %s", tls_last_error(d.c),
                          tls_last_error(d.s));
            EXPECT_STR("TLSv1.3", tls_version(d.c));
            EXPECT_STR("xmpp-server", tls_alpn(d.c) ? tls_alpn(d.c) : "(none)");
            EXPECT_STR("example.test", tls_sni(d.s) ? tls_sni(d.s) : "(none)"); /* SNI = domain */
            /* Our s2s servers issue no tickets (tls.c: no client certificate in a resumed
             * TLS 1.3 session), so the client has none to offer the second time. */
            EXPECT(!tls_resumed(d.c));
            EXPECT(!tls_resumed(d.s));
            /* Both chains verify against the test CA; names are verify.c's business. */
            EXPECT_EQ(0, tls_peer_flags(d.c));
            EXPECT(tls_peer_chain(d.c, der, len, 4) >= 1);
            if (round == 0) {
                EXPECT_EQ(0, tls_peer_flags(d.s) & ~(uint32_t)MBEDTLS_X509_BADCERT_EXT_KEY_USAGE);
                EXPECT(tls_peer_chain(d.s, der, len, 4) >= 1);
            }
            /* Application data flows from the client too. */
            EXPECT_EQ(0, tls_write(d.c, out, 4));
            tls_feed(d.s, bytes_data(&d.c2s), bytes_len(&d.c2s));
            n = tls_read(d.s, in, sizeof(in));
            EXPECT_EQ(0, tls_feed_end(d.s));
            EXPECT(n == 4 && memcmp(in, "ping", 4) == 0);
            if (round == 0) {
                ticket = tls_ticket_take(d.c);
                EXPECT(ticket == NULL);
            }
        }
        tls_free(d.c);
        tls_free(d.s);
        bytes_cleanup(&d.c2s);
        bytes_cleanup(&d.s2c);
    }
    tls_ticket_free(ticket);
    EXPECT(tls_new_client(s, "not-ours.test", "example.test", NULL, duo_c_send, NULL) == NULL);
    tls_server_free(s);
}

/* ---- application data ------------------------------------------------------------------ */

static uint8_t read_buf[100000];
static size_t read_len;
static size_t read_cap = 1000;

static int step_read(struct pair *p)
{
    for (;;) {
        int rc = tls_read(p->srv, read_buf + read_len,
                          read_cap < sizeof(read_buf) - read_len ? read_cap
                                                                 : sizeof(read_buf) - read_len);

        if (rc <= 0)
            return rc;
        read_len += (size_t)rc;
    }
}

/* mbedtls_ssl_write() takes at most one record's worth per call. */
static size_t client_write(struct pair *p, const uint8_t *b, size_t n)
{
    size_t done = 0;

    while (done < n) {
        int rc = mbedtls_ssl_write(&p->cli, b + done, n - done);

        if (rc <= 0)
            break;
        done += (size_t)rc;
    }
    return done;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((i * 31 + seed) ^ (i >> 8));
}

TEST(application_data_both_ways)
{
    static uint8_t out[40000], in[40000];
    struct tls_server *s = server_new(two_domains, 2, 12);
    const int versions[] = {MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_SSL_VERSION_TLS1_2};
    struct pair p;

    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct client_opts o = {.hostname = "example.test", .max_version = versions[v]};

        if (!pair_init(&p, s, TLS_ROLE_C2S, NULL, &o) || handshake(&p, false, NULL) != 0) {
            EXPECT_MSG(false, "handshake v%x", versions[v]);
            pair_free(&p);
            continue;
        }
        EXPECT_EQ(-EAGAIN, tls_read(p.srv, read_buf, sizeof(read_buf))); /* nothing yet */
        EXPECT_EQ(-EINVAL, tls_read(p.srv, read_buf, 0));

        /* Server to client, more than one record (16 KiB each). */
        fill(out, sizeof(out), (unsigned)v);
        EXPECT_EQ(0, tls_write(p.srv, out, sizeof(out)));
        EXPECT(bytes_len(&p.s2c) > sizeof(out));
        EXPECT_EQ(sizeof(out), client_read(&p, in, sizeof(in)));
        EXPECT(memcmp(out, in, sizeof(out)) == 0);

        /* Client to server, lent one byte at a time, read 1000 bytes at most per call. */
        fill(out, sizeof(out), 7 + (unsigned)v);
        EXPECT_EQ(sizeof(out), client_write(&p, out, sizeof(out)));
        read_len = 0;
        read_cap = 1000;
        EXPECT_EQ(-EAGAIN, feed_server(&p, true, step_read));
        EXPECT_EQ(sizeof(out), read_len);
        EXPECT(memcmp(out, read_buf, sizeof(out)) == 0);

        /* Idle: the record buffers' pages go back (with Debian's build at least 3 of each
         * buffer's 4 whole pages; with the project's profile, whose output buffer is 4 KiB,
         * all 4 of the input buffer's and 1 of the output's), and the session goes on both
         * ways (below). */
        EXPECT(tls_trim(p.srv) >= 4 * 4096);
        fill(out, sizeof(out), 11 + (unsigned)v);
        EXPECT_EQ(0, tls_write(p.srv, out, sizeof(out)));
        EXPECT_EQ(sizeof(out), client_read(&p, in, sizeof(in)));
        EXPECT(memcmp(out, in, sizeof(out)) == 0);
        EXPECT(tls_trim(p.srv) >= 4 * 4096);

        /* Several records in one lend, read with a cap of 100: the rest waits in the
         * session's own buffer after tls_feed_end() and is read without a new lend. While
         * it waits, nothing is trimmed. */
        EXPECT_EQ(3000, client_write(&p, out, 3000));
        EXPECT_EQ(5, mbedtls_ssl_write(&p.cli, (const uint8_t *)"hello", 5));
        tls_feed(p.srv, bytes_data(&p.c2s), bytes_len(&p.c2s));
        EXPECT_EQ(100, tls_read(p.srv, read_buf, 100));
        EXPECT_EQ(0, tls_trim(p.srv));
        EXPECT_EQ(0, tls_feed_end(p.srv));
        EXPECT_EQ(0, tls_trim(p.srv));
        bytes_consume(&p.c2s, bytes_len(&p.c2s));
        read_len = 100;
        read_cap = 100;
        EXPECT_EQ(-EAGAIN, step_read(&p));
        EXPECT_EQ(3005, read_len);
        EXPECT(memcmp(out, read_buf, 3000) == 0 && memcmp(read_buf + 3000, "hello", 5) == 0);

        /* An empty record, then data, in one lend: data must come out now. */
        EXPECT_EQ(0, mbedtls_ssl_write(&p.cli, out, 0));
        EXPECT_EQ(4, mbedtls_ssl_write(&p.cli, (const uint8_t *)"ping", 4));
        read_len = 0;
        read_cap = 1000;
        EXPECT_EQ(-EAGAIN, feed_server(&p, false, step_read));
        EXPECT_EQ(4, read_len);
        pair_free(&p);
    }
    tls_server_free(s);
}

TEST(handshake_fed_byte_by_byte)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    const int versions[] = {MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_SSL_VERSION_TLS1_2};
    struct pair p;

    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct client_opts o = {.hostname = "example.org", .max_version = versions[v]};
        int crc;

        if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
            EXPECT_EQ_MSG(0, handshake(&p, true, &crc), "v%x", versions[v]);
            EXPECT_EQ_MSG(0, crc, "v%x", versions[v]);
            EXPECT_STR("example.org", tls_sni(p.srv));
        }
        pair_free(&p);
    }
    tls_server_free(s);
}

TEST(close_notify)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    const int versions[] = {MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_SSL_VERSION_TLS1_2};
    struct pair p;
    uint8_t buf[64];

    for (size_t v = 0; v < ARRAY_SIZE(versions); v++) {
        struct client_opts o = {.hostname = "example.test", .max_version = versions[v]};

        if (!pair_init(&p, s, TLS_ROLE_C2S, NULL, &o) || handshake(&p, false, NULL) != 0) {
            EXPECT_MSG(false, "handshake v%x", versions[v]);
            pair_free(&p);
            continue;
        }
        client_read(&p, buf, sizeof(buf)); /* the TLS 1.3 ticket */
        /* Data and then close_notify in one lend: first the data, then XTP_ECLOSED. */
        EXPECT_EQ(3, mbedtls_ssl_write(&p.cli, (const uint8_t *)"bye", 3));
        EXPECT_EQ(0, mbedtls_ssl_close_notify(&p.cli));
        tls_feed(p.srv, bytes_data(&p.c2s), bytes_len(&p.c2s));
        EXPECT_EQ(3, tls_read(p.srv, buf, sizeof(buf)));
        EXPECT_EQ(XTP_ECLOSED, tls_read(p.srv, buf, sizeof(buf)));
        EXPECT_EQ(0, tls_feed_end(p.srv));
        bytes_consume(&p.c2s, bytes_len(&p.c2s));
        /* Ours reaches the client. */
        EXPECT_EQ(0, tls_close_notify(p.srv));
        EXPECT_EQ(MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY, client_read(&p, buf, sizeof(buf)));
        pair_free(&p);
    }
    tls_server_free(s);
}

/* RFC 9325 §3.5: a TLS 1.2 renegotiation request is refused with a no_renegotiation warning
 * (one small encrypted alert record, no new handshake), and the session goes on. */
TEST(renegotiation_refused)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct client_opts o = {.hostname = "example.test",
                            .max_version = MBEDTLS_SSL_VERSION_TLS1_2,
                            .renegotiation = true};
    struct pair p;
    int rc;

    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o) && handshake(&p, false, NULL) == 0) {
        EXPECT_EQ(1, client_write(&p, (const uint8_t *)"a", 1));
        rc = mbedtls_ssl_renegotiate(&p.cli); /* sends a ClientHello, waits for ServerHello */
        EXPECT_MSG(rc == MBEDTLS_ERR_SSL_WANT_READ, "-0x%x", (unsigned)-rc);
        read_len = 0;
        read_cap = 1000;
        EXPECT_EQ(-EAGAIN, feed_server(&p, false, step_read));
        EXPECT_EQ(1, read_len);
        EXPECT_STR("", tls_last_error(p.srv));
        /* 5 header + 8 explicit nonce + 2 alert + 16 tag: an AES-GCM alert record. */
        EXPECT_EQ(31, bytes_len(&p.s2c));
        /* The client may send more; the session is intact. */
        bytes_consume(&p.s2c, bytes_len(&p.s2c));
        EXPECT_EQ(0, tls_write(p.srv, "b", 1));
        EXPECT(bytes_len(&p.s2c) > 0);
    }
    pair_free(&p);
    tls_server_free(s);
}

TEST(write_before_handshake_fails)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct client_opts o = {.hostname = "example.test"};
    struct pair p;

    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        EXPECT_EQ(XTP_ETLS, tls_write(p.srv, "x", 1));
        EXPECT_EQ(0, bytes_len(&p.s2c));
    }
    pair_free(&p);
    tls_server_free(s);
}

/* ---- resumption ------------------------------------------------------------------------ */

static void resumption(int version, const char *cipher_prefix)
{
    struct tls_server *s = server_new(two_domains, 2, 12);
    struct client_opts o = {.hostname = "example.org", .max_version = version};
    mbedtls_ssl_session saved;
    struct pair p;
    uint8_t buf[64];
    bool have = false;

    mbedtls_ssl_session_init(&saved);
    if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &o) && handshake(&p, false, NULL) == 0) {
        EXPECT(!tls_resumed(p.srv));
        EXPECT(strncmp(tls_cipher(p.srv), cipher_prefix, strlen(cipher_prefix)) == 0);
        if (version == MBEDTLS_SSL_VERSION_TLS1_3) {
            EXPECT_EQ(0, client_read(&p, buf, sizeof(buf))); /* NewSessionTicket */
            EXPECT(p.have_ticket);
            if (p.have_ticket) { /* move it out of the pair */
                saved = p.ticket;
                mbedtls_ssl_session_init(&p.ticket);
                have = true;
            }
        } else {
            have = mbedtls_ssl_get_session(&p.cli, &saved) == 0;
        }
    }
    pair_free(&p);
    EXPECT(have);

    o.resume = have ? &saved : NULL;
    if (have && pair_init(&p, s, TLS_ROLE_C2S, NULL, &o)) {
        int crc;

        EXPECT_EQ(0, handshake(&p, false, &crc));
        EXPECT_EQ(0, crc);
        EXPECT(tls_resumed(p.srv));
        EXPECT_STR("example.org", tls_sni(p.srv));
        EXPECT(strncmp(tls_cipher(p.srv), cipher_prefix, strlen(cipher_prefix)) == 0);
    }
    if (have)
        pair_free(&p);
    /* TLS 1.3 with a HelloRetryRequest first: the client's first key share is for P-521. */
    if (have && version == MBEDTLS_SSL_VERSION_TLS1_3) {
        static const uint16_t p521_p256[] = {MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1,
                                             MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0};
        struct client_opts hrr = o;

        hrr.groups = p521_p256;
        if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &hrr)) {
            EXPECT_EQ(0, handshake(&p, false, NULL));
            EXPECT(tls_resumed(p.srv));
            EXPECT_STR("example.org", tls_sni(p.srv));
        }
        pair_free(&p);
        hrr.resume = NULL;
        if (pair_init(&p, s, TLS_ROLE_C2S, NULL, &hrr)) {
            EXPECT_EQ(0, handshake(&p, false, NULL));
            EXPECT(!tls_resumed(p.srv));
            EXPECT_STR("example.org", tls_sni(p.srv));
        }
        pair_free(&p);
    }

    /* A ticket from another tls_server (another process, or before a restart) or from the
     * other role's listener is no good: a full handshake instead. */
    if (have) {
        struct tls_server *s2 = server_new(two_domains, 2, 12);

        if (pair_init(&p, s2, TLS_ROLE_C2S, NULL, &o)) {
            EXPECT_EQ(0, handshake(&p, false, NULL));
            EXPECT(!tls_resumed(p.srv));
        }
        pair_free(&p);
        if (pair_init(&p, s, TLS_ROLE_S2S, NULL, &o)) {
            EXPECT_EQ(0, handshake(&p, false, NULL));
            EXPECT(!tls_resumed(p.srv));
        }
        pair_free(&p);
        tls_server_free(s2);
    }
    mbedtls_ssl_session_free(&saved);
    tls_server_free(s);
}

TEST(resumption_tls13)
{
    resumption(MBEDTLS_SSL_VERSION_TLS1_3, "TLS1-3-");
}

TEST(resumption_tls12)
{
    resumption(MBEDTLS_SSL_VERSION_TLS1_2, "TLS-ECDHE-ECDSA-WITH-AES-128-GCM");
}

/* ---- tls_server_new -------------------------------------------------------------------- */

static char tmpdir[128];

static const char *tmp_file(char *buf, size_t len, const char *name, const char *text)
{
    FILE *f;

    if (snprintf(buf, len, "%s/%s", tmpdir, name) >= (int)len)
        return buf; /* too long: the fopen below fails and so does the test */
    f = fopen(buf, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    return buf;
}

TEST(server_new_errors)
{
    char garbage[128], empty[128], enc[128], huge[128], err[512];
    const struct {
        struct dom d[2];
        size_t n;
        const char *want[3]; /* substrings of the message */
    } rows[] = {
        {{{"example.test", "missing.crt", "example.test.key"}},
         1,
         {"test.yaml:2: domains.example.test.cert: cannot read ", "missing.crt",
          "such file or directory"}},
        {{{"example.test", "example.test.crt", "missing.key"}},
         1,
         {"test.yaml:3: domains.example.test.key: cannot read ", "missing.key", NULL}},
        {{{"example.test", garbage, "example.test.key"}},
         1,
         {"test.yaml:2: domains.example.test.cert: no valid PEM certificate chain in ",
          "garbage.pem", "(PEM - "}},
        {{{"example.test", empty, "example.test.key"}},
         1,
         {"test.yaml:2: domains.example.test.cert: ", "empty.pem", NULL}},
        {{{"example.test", "example.test.crt", garbage}},
         1,
         {"test.yaml:3: domains.example.test.key: no usable unencrypted private key in ",
          "garbage.pem", "(PK - "}},
        {{{"example.test", "example.test.crt", enc}},
         1,
         {"test.yaml:3: domains.example.test.key: ", "enc.key", "password"}},
        {{{"example.test", "example.test.crt", "example.test.key"},
          {"example.org", "example.org.crt", "example.test.key"}}, /* mismatched key */
         2,
         {"test.yaml:13: domains.example.org.key: the key in ",
          "does not match the certificate in ", "example.org.crt ("}},
        {{{"example.test", "rsa2048.example.test.crt", "example.test.key"}},
         1,
         {"test.yaml:3: domains.example.test.key: ", "does not match", NULL}},
        {{{"example.test", "rsa1024.crt", "rsa1024.key"}},
         1,
         {"test.yaml:2: domains.example.test.cert: ", "rsa1024.crt",
          "RSA key of 1024 bits is too small"}},
        {{{"example.test", huge, "example.test.key"}}, /* leaf + 50 CA copies > 16 KiB */
         1,
         {"test.yaml:2: domains.example.test.cert: ", "huge.pem",
          "-byte records (MBEDTLS_SSL_OUT_CONTENT_LEN)"}},
    };
    static char chain[80000];
    size_t chain_n = 0;

    snprintf(tmpdir, sizeof(tmpdir), "%s/test_tls.XXXXXX",
             getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 100 ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        EXPECT_MSG(false, "mkdtemp: %s", strerror(errno));
        return;
    }
    tmp_file(garbage, sizeof(garbage), "garbage.pem",
             "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
    tmp_file(empty, sizeof(empty), "empty.pem", "");
    fixtures(); /* certdir */
    for (int k = 0; k <= 50; k++) {
        char path[600];
        FILE *f = fopen(cert_path(path, sizeof(path), k == 0 ? "example.test.crt" : "ca.crt"), "r");

        if (f != NULL) {
            chain_n += fread(chain + chain_n, 1, sizeof(chain) - 1 - chain_n, f);
            fclose(f);
        }
    }
    chain[chain_n] = '\0';
    EXPECT(chain_n > 50 * 500); /* about 21 KB of DER */
    tmp_file(huge, sizeof(huge), "huge.pem", chain);
    /* An encrypted key (passphrase "secret"): we have no passphrase to give. */
    tmp_file(enc, sizeof(enc), "enc.key",
             "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
             "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAj6EjadTl1UOwICCAAw\n"
             "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEOI37BPujpnIQQ1zNU6vPakEgZDN\n"
             "Pim9uabMM2eiNB1pokxuVykLK6n4EK8fC5R5uxNkRv32SQZBG1LfKuBq6q5txNYn\n"
             "U1JF8jeAYcoKw6THoWIELEqv3x3j6tGx7HgrCm3+EtYz+zdvaX7EA6e8R2lijuWs\n"
             "ey/Mg9rgevnU2bxOPsBLCfa1WyOjlNLD0+IifoTgnBcK/eY3hh3PA+bunLGDeQI=\n"
             "-----END ENCRYPTED PRIVATE KEY-----\n");

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct tls_server *s =
            server_new_ca(rows[i].d, rows[i].n, 12, "ca.crt", 5, err, sizeof(err));

        EXPECT_MSG(s == NULL, "row %zu", i);
        for (size_t k = 0; k < 3 && rows[i].want[k]; k++)
            EXPECT_MSG(strstr(err, rows[i].want[k]) != NULL, "row %zu: \"%s\" not in \"%s\"", i,
                       rows[i].want[k], err);
        tls_server_free(s);
    }

    /* tls.ca_file: an error only when the file names it (line != 0). */
    {
        struct tls_server *s =
            server_new_ca(two_domains, 1, 12, "missing-ca.crt", 5, err, sizeof(err));

        EXPECT(s == NULL);
        EXPECT_MSG(strstr(err, "test.yaml:5: tls.ca_file: ") == err, "%s", err);
        tls_server_free(s);
        s = server_new_ca(two_domains, 1, 12, garbage, 5, err, sizeof(err));
        EXPECT(s == NULL);
        EXPECT_MSG(strstr(err, "test.yaml:5: tls.ca_file: ") == err, "%s", err);
        tls_server_free(s);
        s = server_new_ca(two_domains, 1, 12, "missing-ca.crt", 0, err, sizeof(err));
        EXPECT_MSG(s != NULL, "%s", err);
        tls_server_free(s);
        s = server_new_ca(two_domains, 1, 12, NULL, 0, err, sizeof(err));
        EXPECT_MSG(s != NULL, "%s", err);
        tls_server_free(s);
    }

    unlink(garbage);
    unlink(empty);
    unlink(enc);
    unlink(huge);
    rmdir(tmpdir);
}

TEST(server_new_accepts_and_expiry)
{
    static const struct dom doms[] = {
        {"example.test", "rsa2048.example.test.crt", "rsa2048.example.test.key"},
        {"other.test", "xmpp-ids.other.test.crt", "xmpp-ids.other.test.key"}, /* otherName SANs */
        {"expired.test", "expired.example.test.crt", "expired.example.test.key"},
        {"example.org", "example.org.crt", "example.org.key"},
    };
    struct tls_server *s = server_new(doms, ARRAY_SIZE(doms), 12);
    const long long year = 365LL * 86400;

    EXPECT(s != NULL);
    if (s == NULL)
        return;
    EXPECT_MSG(tls_server_cert_expiry(s, "example.org") > 15 * year, "%lld",
               tls_server_cert_expiry(s, "example.org"));
    EXPECT(tls_server_cert_expiry(s, "EXAMPLE.org") < 21 * year);
    EXPECT(tls_server_cert_expiry(s, "other.test") > 15 * year);
    /* Expired on 2021-01-01: how long ago depends on today, but it is in the past. */
    EXPECT_MSG(tls_server_cert_expiry(s, "expired.test") < -year, "%lld",
               tls_server_cert_expiry(s, "expired.test"));
    EXPECT_EQ(0, tls_server_cert_expiry(s, "unknown.test"));
    tls_server_free(s);
    tls_server_free(NULL);
    tls_free(NULL);
}

TEST(lib_version)
{
    EXPECT_MSG(strncmp(tls_lib_version(), "mbedTLS 3.6.", 12) == 0, "%s", tls_lib_version());
    EXPECT(tls_lib_version() == tls_lib_version());
}

TEST_MAIN(tls13_by_default, tls13_suites, groups_restricted, tls12_when_client_max_is_12,
          tls12_cbc_only_client_refused, min_version_13_refuses_12_client, tls11_client_refused,
          garbage_and_failing_send, sni_selects_certificate, sni_unknown_fails,
          no_sni_presents_tls_new_domain, alpn, s2s_client_certificates, application_data_both_ways,
          handshake_fed_byte_by_byte, close_notify, renegotiation_refused,
          write_before_handshake_fails, resumption_tls13, resumption_tls12, server_new_errors,
          server_new_accepts_and_expiry, client_mode, lib_version)
