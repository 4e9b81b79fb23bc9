/* load_tls_mbedtls.c: xtp-load's TLS client on mbedTLS 3.6 (load_tls.h). The BIO callbacks
 * read and write the socket directly. mbedTLS cannot say whether a handshake resumed, so with a
 * CA file the verify callback tells: only a full handshake has a certificate to verify. */
#include "load_tls.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

struct mconf {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config full, resume; /* resume differs only with psk_only */
    mbedtls_x509_crt ca;
    bool have_ca;
    uint16_t groups[3];
    const char *domain;         /* borrowed from the options */
    mbedtls_ssl_session ticket; /* the primer's session */
    bool have_ticket;
};

struct msess {
    struct mconf *conf; /* borrowed */
    int fd;             /* borrowed */
    enum load_tls_role role;
    mbedtls_ssl_context ssl;
    bool recv_eagain; /* the last BIO read found the socket empty */
    bool verified;    /* the verify callback saw a certificate: a full handshake */
    char err[192];
};

static void set_err(char *err, size_t errlen, const char *what, int rc)
{
    char msg[96];

    mbedtls_strerror(rc, msg, sizeof(msg));
    snprintf(err, errlen, "%s: -0x%04x %s", what, (unsigned)-rc, msg);
}

static int conf_one(struct mconf *m, const struct load_tls_opts *o, mbedtls_ssl_config *c,
                    bool for_resume)
{
    static const char *alpn[] = {"xmpp-client", NULL};
    int rc;

    mbedtls_ssl_config_init(c);
    rc = mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0)
        return rc;
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &m->drbg);
    mbedtls_ssl_conf_min_tls_version(c, o->version == 13 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                         : MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(c, o->version == 12 ? MBEDTLS_SSL_VERSION_TLS1_2
                                                         : MBEDTLS_SSL_VERSION_TLS1_3);
    if (m->have_ca) {
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(c, &m->ca, NULL);
    } else {
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_NONE);
    }
    mbedtls_ssl_conf_groups(c, m->groups);
    if (o->alpn && (rc = mbedtls_ssl_conf_alpn_protocols(c, alpn)) != 0)
        return rc;
    mbedtls_ssl_conf_session_tickets(c, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    if (o->tickets)
        mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
            c, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
    if (for_resume && o->psk_only)
        mbedtls_ssl_conf_tls13_key_exchange_modes(c, MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK);
    return 0;
}

static void conf_free(void *conf)
{
    struct mconf *m = conf;

    if (m == NULL)
        return;
    mbedtls_ssl_config_free(&m->full);
    mbedtls_ssl_config_free(&m->resume);
    mbedtls_x509_crt_free(&m->ca);
    mbedtls_ssl_session_free(&m->ticket);
    mbedtls_ctr_drbg_free(&m->drbg);
    mbedtls_entropy_free(&m->entropy);
    free(m);
}

static void *conf_new(const struct load_tls_opts *o, char *err, size_t errlen)
{
    struct mconf *m;
    int rc;

    if (psa_crypto_init() != PSA_SUCCESS) { /* TLS 1.3 in mbedTLS 3.6 needs PSA */
        snprintf(err, errlen, "psa_crypto_init failed");
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mbedtls_entropy_init(&m->entropy);
    mbedtls_ctr_drbg_init(&m->drbg);
    mbedtls_x509_crt_init(&m->ca);
    mbedtls_ssl_session_init(&m->ticket);
    mbedtls_ssl_config_init(&m->full);
    mbedtls_ssl_config_init(&m->resume);
    /* TLS 1.3: the one group offered gets the key share, so the server uses it without a
     * HelloRetryRequest. TLS 1.2 (RFC 8422 §5.1): supported_groups also limits the curve of
     * the server's ECDSA certificate, P-256 here, so secp256r1 must be in the list as well. */
    m->groups[0] =
        o->secp256r1 ? MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1 : MBEDTLS_SSL_IANA_TLS_GROUP_X25519;
    m->groups[1] = o->version == 12 && !o->secp256r1 ? MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1
                                                     : MBEDTLS_SSL_IANA_TLS_GROUP_NONE;
    m->groups[2] = MBEDTLS_SSL_IANA_TLS_GROUP_NONE;
    m->domain = o->domain;
    rc = mbedtls_ctr_drbg_seed(&m->drbg, mbedtls_entropy_func, &m->entropy,
                               (const unsigned char *)"xtp-load", 8);
    if (rc == 0 && o->ca != NULL) {
        rc = mbedtls_x509_crt_parse_file(&m->ca, o->ca);
        m->have_ca = rc == 0;
    }
    if (rc == 0)
        rc = conf_one(m, o, &m->full, false);
    if (rc == 0)
        rc = conf_one(m, o, &m->resume, true);
    if (rc != 0) {
        set_err(err, errlen, "TLS setup", rc);
        conf_free(m);
        return NULL;
    }
    return m;
}

static bool have_ticket(void *conf)
{
    return ((struct mconf *)conf)->have_ticket;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct msess *s = ctx;
    ssize_t n;

    do
        n = send(s->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct msess *s = ctx;
    ssize_t n;

    do
        n = recv(s->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return (int)n;
    if (n == 0)
        return MBEDTLS_ERR_SSL_CONN_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->recv_eagain = true;
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* Called for each certificate of the server's chain: only a full handshake has one. */
static int verify_cb(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct msess *s = arg;

    s->verified = true;
    return 0; /* keep mbedTLS's verdict in *flags */
}

static void sess_free(void *sess)
{
    struct msess *s = sess;

    if (s == NULL)
        return;
    mbedtls_ssl_free(&s->ssl);
    free(s);
}

static void *sess_new(void *conf, int fd, enum load_tls_role role, char *err, size_t errlen)
{
    struct mconf *m = conf;
    struct msess *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->conf = m;
    s->fd = fd;
    s->role = role;
    mbedtls_ssl_init(&s->ssl);
    rc = mbedtls_ssl_setup(&s->ssl, role == LOAD_TLS_RESUME ? &m->resume : &m->full);
    if (rc == 0)
        rc = mbedtls_ssl_set_hostname(&s->ssl, m->domain); /* SNI and the name check */
    if (rc == 0 && role == LOAD_TLS_RESUME)
        rc = mbedtls_ssl_set_session(&s->ssl, &m->ticket);
    if (rc != 0) {
        set_err(err, errlen, "setup", rc);
        sess_free(s);
        return NULL;
    }
    if (m->have_ca)
        mbedtls_ssl_set_verify(&s->ssl, verify_cb, s);
    mbedtls_ssl_set_bio(&s->ssl, s, bio_send, bio_recv, NULL);
    return s;
}

/* Keeps the primer's session (its ticket) for the resumed sessions, once. */
static int save_ticket(struct msess *s)
{
    int rc;

    if (s->role != LOAD_TLS_PRIMER || s->conf->have_ticket)
        return 0;
    rc = mbedtls_ssl_get_session(&s->ssl, &s->conf->ticket);
    if (rc != 0) {
        set_err(s->err, sizeof(s->err), "mbedtls_ssl_get_session", rc);
        return LOAD_TLS_FAILED;
    }
    s->conf->have_ticket = true;
    return 0;
}

static int status(struct msess *s, const char *what, int rc)
{
    if (rc == MBEDTLS_ERR_SSL_WANT_READ)
        return LOAD_TLS_WANT_READ;
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return LOAD_TLS_WANT_WRITE;
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == MBEDTLS_ERR_SSL_CONN_EOF) {
        snprintf(s->err, sizeof(s->err), "%s: the server closed the connection", what);
        return LOAD_TLS_CLOSED;
    }
    set_err(s->err, sizeof(s->err), what, rc);
    return LOAD_TLS_FAILED;
}

static int handshake(void *sess)
{
    struct msess *s = sess;
    int rc = mbedtls_ssl_handshake(&s->ssl);

    if (rc != 0)
        return status(s, "handshake", rc);
    /* TLS 1.2: the ticket came inside the handshake (RFC 5077 §3.3). */
    if (mbedtls_ssl_get_version_number(&s->ssl) == MBEDTLS_SSL_VERSION_TLS1_2)
        return save_ticket(s);
    return 0;
}

static int tls_read(void *sess, void *buf, size_t len)
{
    struct msess *s = sess;
    unsigned idle = 0; /* WANT_READs in a row that did not reach the socket */

    for (;;) {
        int n;

        s->recv_eagain = false;
        n = mbedtls_ssl_read(&s->ssl, buf, len);
        if (n > 0)
            return n;
        if (n == 0) {
            snprintf(s->err, sizeof(s->err), "read: the server closed the connection");
            return LOAD_TLS_CLOSED;
        }
        if (n == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            if (save_ticket(s) != 0)
                return LOAD_TLS_FAILED;
            continue;
        }
        /* A post-handshake message (NewSessionTicket) also ends in WANT_READ while more
         * records may be buffered: go on until the socket itself is empty. */
        if (n == MBEDTLS_ERR_SSL_WANT_READ && !s->recv_eagain && ++idle < 64)
            continue;
        return status(s, "read", n);
    }
}

static int tls_write(void *sess, const void *buf, size_t len)
{
    struct msess *s = sess;
    int n = mbedtls_ssl_write(&s->ssl, buf, len);

    return n >= 0 ? n : status(s, "write", n);
}

static void close_notify(void *sess)
{
    (void)mbedtls_ssl_close_notify(&((struct msess *)sess)->ssl);
}

static int resumed(void *sess)
{
    struct msess *s = sess;

    return s->conf->have_ca ? !s->verified : -1;
}

static const char *version(void *sess)
{
    return mbedtls_ssl_get_version(&((struct msess *)sess)->ssl);
}

static const char *cipher(void *sess)
{
    return mbedtls_ssl_get_ciphersuite(&((struct msess *)sess)->ssl);
}

static const char *error(void *sess)
{
    return ((struct msess *)sess)->err;
}

const struct load_tls_lib load_tls_mbedtls = {
    .name = "mbedtls",
    .conf_new = conf_new,
    .conf_free = conf_free,
    .have_ticket = have_ticket,
    .sess_new = sess_new,
    .sess_free = sess_free,
    .handshake = handshake,
    .read = tls_read,
    .write = tls_write,
    .close_notify = close_notify,
    .resumed = resumed,
    .version = version,
    .cipher = cipher,
    .error = error,
};
