/* load_tls_openssl.c: xtp-load's TLS client on OpenSSL 3 (load_tls.h), built only when CMake
 * finds OpenSSL. SSL_set_fd() on the non-blocking socket; the session cache is client-side and
 * external: the new-session callback keeps the primer's first ticket, and resumed sessions
 * offer it with SSL_set_session(). */
#include "load_tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct oconf {
    SSL_CTX *ctx;
    const char *domain; /* borrowed from the options */
    bool alpn, verify, psk_only;
    SSL_SESSION *ticket; /* the primer's session, owned */
};

struct osess {
    struct oconf *conf; /* borrowed */
    enum load_tls_role role;
    SSL *ssl;
    char err[160];
};

static int sess_idx = -1; /* SSL ex_data slot: the struct osess of an SSL */

/* The first error on OpenSSL's queue (or what SSL_get_error() said), then clears the queue. */
static void set_err(char *err, size_t errlen, const char *what, int ssl_error)
{
    unsigned long e = ERR_get_error();
    char msg[120];

    if (e != 0)
        ERR_error_string_n(e, msg, sizeof(msg));
    else
        snprintf(msg, sizeof(msg), "SSL_get_error() = %d", ssl_error);
    snprintf(err, errlen, "%s: %s", what, msg);
    ERR_clear_error();
}

/* SSL_CTX_sess_set_new_cb(): keeps the primer's first session. Returns 1 when it took the
 * reference, 0 to let OpenSSL free the session. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct osess *s = SSL_get_ex_data(ssl, sess_idx);

    if (s == NULL || s->role != LOAD_TLS_PRIMER || s->conf->ticket != NULL)
        return 0;
    s->conf->ticket = sess;
    return 1;
}

static void conf_free(void *conf)
{
    struct oconf *c = conf;

    if (c == NULL)
        return;
    SSL_SESSION_free(c->ticket);
    SSL_CTX_free(c->ctx);
    free(c);
}

static void *conf_new(const struct load_tls_opts *o, char *err, size_t errlen)
{
    struct oconf *c = calloc(1, sizeof(*c));
    /* TLS 1.3: the one group offered gets the key share (no HelloRetryRequest). TLS 1.2
     * (RFC 8422 §5.1): supported_groups also limits the certificate's curve, P-256 here. */
    const char *groups = o->secp256r1 ? "P-256" : o->version == 12 ? "X25519:P-256" : "X25519";

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (sess_idx < 0)
        sess_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    c->domain = o->domain;
    c->alpn = o->alpn;
    c->verify = o->ca != NULL;
    c->psk_only = o->psk_only;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL || sess_idx < 0 ||
        !SSL_CTX_set_min_proto_version(c->ctx,
                                       o->version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(c->ctx,
                                       o->version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION) ||
        !SSL_CTX_set1_groups_list(c->ctx, groups)) {
        set_err(err, errlen, "SSL_CTX setup", 0);
        conf_free(c);
        return NULL;
    }
    if (o->ca != NULL) {
        if (!SSL_CTX_load_verify_locations(c->ctx, o->ca, NULL)) {
            set_err(err, errlen, o->ca, 0);
            conf_free(c);
            return NULL;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }
    /* Sessions go to new_session_cb only; OpenSSL keeps no cache of its own. */
    SSL_CTX_set_session_cache_mode(c->ctx, o->tickets ? SSL_SESS_CACHE_CLIENT |
                                                            SSL_SESS_CACHE_NO_INTERNAL_STORE
                                                      : SSL_SESS_CACHE_OFF);
    if (o->tickets)
        SSL_CTX_sess_set_new_cb(c->ctx, new_session_cb);
    /* xtp-load's output buffer can grow (move) between a WANT_WRITE and the retry, and it
     * accepts partial writes; idle sessions give their record buffers back. */
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_RELEASE_BUFFERS);
    return c;
}

static bool have_ticket(void *conf)
{
    return ((struct oconf *)conf)->ticket != NULL;
}

static void sess_free(void *sess)
{
    struct osess *s = sess;

    if (s == NULL)
        return;
    SSL_free(s->ssl);
    free(s);
}

/* Seen with OpenSSL 3.0: when several connections share one SSL_SESSION, only the first
 * resumes; a client that got new tickets on a resumed connection takes the old session out of
 * use (client tickets are meant for one use, RFC 8446 §C.4). So every resumed session offers
 * its own copy of the primer's session. */
static bool offer_ticket(struct osess *s)
{
    SSL_SESSION *copy = s->conf->ticket != NULL ? SSL_SESSION_dup(s->conf->ticket) : NULL;
    bool ok = copy != NULL && SSL_set_session(s->ssl, copy);

    SSL_SESSION_free(copy); /* SSL_set_session() took its own reference */
    return ok;
}

static void *sess_new(void *conf, int fd, enum load_tls_role role, char *err, size_t errlen)
{
    static const unsigned char alpn[] = "\x0bxmpp-client";
    struct oconf *c = conf;
    struct osess *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->conf = c;
    s->role = role;
    ERR_clear_error();
    s->ssl = SSL_new(c->ctx);
    if (s->ssl == NULL || !SSL_set_ex_data(s->ssl, sess_idx, s) || !SSL_set_fd(s->ssl, fd) ||
        !SSL_set_tlsext_host_name(s->ssl, c->domain) ||
        (c->verify && !SSL_set1_host(s->ssl, c->domain)) ||
        (c->alpn && SSL_set_alpn_protos(s->ssl, alpn, sizeof(alpn) - 1) != 0) ||
        (role == LOAD_TLS_RESUME && !offer_ticket(s))) {
        set_err(err, errlen, "SSL setup", 0);
        sess_free(s);
        return NULL;
    }
    /* RFC 8446 §4.2.9: psk_ke alone, without (EC)DHE. OpenSSL's client offers psk_ke next to
     * psk_dhe_ke once this is set; a server that allows it picks it. */
    if (role == LOAD_TLS_RESUME && c->psk_only)
        SSL_set_options(s->ssl, SSL_OP_ALLOW_NO_DHE_KEX);
    SSL_set_connect_state(s->ssl);
    return s;
}

static int status(struct osess *s, const char *what, int rc)
{
    int e = SSL_get_error(s->ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return LOAD_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return LOAD_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(s->err, sizeof(s->err), "%s: the server sent close_notify", what);
        return LOAD_TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) { /* EOF or a socket error without TLS alert */
            snprintf(s->err, sizeof(s->err), "%s: the server closed the connection", what);
            return LOAD_TLS_CLOSED;
        }
        break;
    default:
        break;
    }
    set_err(s->err, sizeof(s->err), what, e);
    return LOAD_TLS_FAILED;
}

static int handshake(void *sess)
{
    struct osess *s = sess;
    int rc;

    ERR_clear_error();
    rc = SSL_do_handshake(s->ssl);
    return rc == 1 ? 0 : status(s, "handshake", rc);
}

static int tls_read(void *sess, void *buf, size_t len)
{
    struct osess *s = sess;
    int rc;

    ERR_clear_error();
    rc = SSL_read(s->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return rc > 0 ? rc : status(s, "read", rc);
}

static int tls_write(void *sess, const void *buf, size_t len)
{
    struct osess *s = sess;
    int rc;

    ERR_clear_error();
    rc = SSL_write(s->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return rc > 0 ? rc : status(s, "write", rc);
}

static void close_notify(void *sess)
{
    struct osess *s = sess;

    ERR_clear_error();
    (void)SSL_shutdown(s->ssl);
    ERR_clear_error();
}

static int resumed(void *sess)
{
    return SSL_session_reused(((struct osess *)sess)->ssl) ? 1 : 0;
}

static const char *version(void *sess)
{
    return SSL_get_version(((struct osess *)sess)->ssl);
}

static const char *cipher(void *sess)
{
    return SSL_get_cipher_name(((struct osess *)sess)->ssl);
}

static const char *error(void *sess)
{
    return ((struct osess *)sess)->err;
}

const struct load_tls_lib load_tls_openssl = {
    .name = "openssl",
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
