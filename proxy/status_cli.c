/* status_cli.c: see status_cli.h. */
#include "status_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <llhttp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "cfg.h"

/* ---- writing --------------------------------------------------------------------------- */

void status_cli_begin(struct json *j)
{
    json_object_begin(j);
    json_key(j, "sessions");
    json_array_begin(j);
}

static void key_string(struct json *j, const char *key, const char *value)
{
    json_key(j, key);
    json_string(j, value);
}

void status_cli_session(struct json *j, const struct status_session *s)
{
    json_object_begin(j);
    json_key(j, "id");
    json_uint(j, s->id);
    key_string(j, "listener", s->listener);
    key_string(j, "kind", s->kind);
    key_string(j, "peer", s->peer);
    key_string(j, "domain", s->domain);
    key_string(j, "remote_domain", s->remote_domain);
    key_string(j, "tls_version", s->tls_version);
    key_string(j, "cipher", s->cipher);
    key_string(j, "peer_auth", s->peer_auth);
    json_key(j, "peer_cert");
    if (s->has_peer_cert) {
        time_t t = (time_t)s->cert_not_after;
        char when[32];
        struct tm tm;

        json_object_begin(j);
        key_string(j, "subject", s->cert_subject);
        json_key(j, "sans");
        json_array_begin(j);
        for (size_t i = 0; i < s->ncert_sans; i++)
            json_string(j, s->cert_sans[i]);
        json_array_end(j);
        key_string(j, "sha256", s->cert_sha256);
        /* RFC 3339, UTC. */
        if (gmtime_r(&t, &tm) != NULL && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
            key_string(j, "not_after", when);
        else
            key_string(j, "not_after", NULL);
        json_object_end(j);
    } else {
        json_null(j);
    }
    json_key(j, "bytes");
    json_object_begin(j);
    json_key(j, "in");
    json_uint(j, s->bytes_in);
    json_key(j, "out");
    json_uint(j, s->bytes_out);
    json_object_end(j);
    json_key(j, "age");
    json_uint(j, s->age_s);
    json_object_end(j);
}

int status_cli_end(struct json *j)
{
    json_array_end(j);
    json_object_end(j);
    return json_finish(j);
}

/* ---- the table ------------------------------------------------------------------------- */

enum col {
    C_ID,
    C_LISTENER,
    C_KIND,
    C_PEER,
    C_DOMAIN,
    C_REMOTE,
    C_TLS,
    C_CIPHER,
    C_AUTH,
    C_AGE,
    C_BYTES,
    C__COUNT
};

static const char *const headers[C__COUNT] = {"ID",  "LISTENER", "KIND", "PEER", "DOMAIN", "REMOTE",
                                              "TLS", "CIPHER",   "AUTH", "AGE",  "BYTES"};

#define CELL 96 /* longer values are cut, on a character boundary */

struct row {
    uint64_t id;
    char cell[C__COUNT][CELL];
};

/* Copies a value for the terminal: C0 and C1 controls and DEL become '?', so a hostile
 * certificate subject or domain cannot move the cursor; the cut keeps UTF-8 whole. */
static void cell_set(char *dst, const char *src)
{
    const unsigned char *s = (const unsigned char *)(src != NULL ? src : "-");
    size_t n = 0;

    while (*s != '\0') {
        size_t k = *s < 0x80 ? 1 : *s >= 0xF0 ? 4 : *s >= 0xE0 ? 3 : 2;

        if (n + k >= CELL)
            break;
        if (*s < 0x20 || *s == 0x7F || (*s == 0xC2 && s[1] >= 0x80 && s[1] <= 0x9F)) {
            dst[n++] = '?';
            s += *s == 0xC2 ? 2 : 1;
            continue;
        }
        for (size_t i = 0; i < k && *s != '\0'; i++)
            dst[n++] = (char)*s++;
    }
    dst[n] = '\0';
}

static const char *str_of(const struct json_value *o, const char *key)
{
    const struct json_value *v = json_get(o, key);

    return v != NULL && v->type == JSON_STRING ? v->s : NULL;
}

static bool uint_of(const struct json_value *o, const char *key, uint64_t *out)
{
    const struct json_value *v = json_get(o, key);

    if (v == NULL || v->type != JSON_NUMBER || !v->is_int || v->i < 0)
        return false;
    *out = (uint64_t)v->i;
    return true;
}

static void human_age(char *out, uint64_t s)
{
    if (s < 60)
        snprintf(out, CELL, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(out, CELL, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, CELL, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(out, CELL, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

static void human_bytes(char *out, size_t len, uint64_t n)
{
    static const char units[] = "KMGTPE";
    double v = (double)n;
    int u = -1;

    if (n < 1024) {
        snprintf(out, len, "%" PRIu64, n);
        return;
    }
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (v < 10)
        snprintf(out, len, "%.1f%c", v, units[u]);
    else
        snprintf(out, len, "%.0f%c", v, units[u]);
}

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    return x->id < y->id ? -1 : x->id > y->id;
}

static void fill_row(struct row *r, const struct json_value *s)
{
    const struct json_value *bytes = json_get(s, "bytes");
    uint64_t in = 0, out = 0, age;
    char a[24], b[24];

    if (!uint_of(s, "id", &r->id))
        r->id = UINT64_MAX;
    if (r->id == UINT64_MAX)
        cell_set(r->cell[C_ID], "-");
    else
        snprintf(r->cell[C_ID], CELL, "%" PRIu64, r->id);
    cell_set(r->cell[C_LISTENER], str_of(s, "listener"));
    cell_set(r->cell[C_KIND], str_of(s, "kind"));
    cell_set(r->cell[C_PEER], str_of(s, "peer"));
    cell_set(r->cell[C_DOMAIN], str_of(s, "domain"));
    cell_set(r->cell[C_REMOTE], str_of(s, "remote_domain"));
    cell_set(r->cell[C_TLS], str_of(s, "tls_version"));
    cell_set(r->cell[C_CIPHER], str_of(s, "cipher"));
    cell_set(r->cell[C_AUTH], str_of(s, "peer_auth"));
    if (uint_of(s, "age", &age))
        human_age(r->cell[C_AGE], age);
    else
        cell_set(r->cell[C_AGE], "-");
    if (uint_of(bytes, "in", &in) && uint_of(bytes, "out", &out)) {
        human_bytes(a, sizeof(a), in);
        human_bytes(b, sizeof(b), out);
        snprintf(r->cell[C_BYTES], CELL, "%s/%s", a, b);
    } else {
        cell_set(r->cell[C_BYTES], "-");
    }
}

/* Display width of a UTF-8 cell: one column per character (good enough for domains). */
static size_t width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void print_cell(FILE *out, const char *s, size_t w, bool last)
{
    fputs(s, out);
    if (last)
        return;
    for (size_t k = width(s); k < w + 2; k++)
        fputc(' ', out);
}

int status_cli_print(const char *text, size_t len, FILE *out, char *err, size_t errlen)
{
    struct json_value *doc;
    const struct json_value *list;
    struct row *rows;
    size_t w[C__COUNT];
    int rc = json_parse(text, len, &doc, err, errlen);

    if (rc != 0)
        return rc;
    list = json_get(doc, "sessions");
    if (list == NULL || list->type != JSON_ARRAY) {
        snprintf(err, errlen, "no \"sessions\" array in the response");
        json_value_free(doc);
        return -EBADMSG;
    }
    rows = calloc(list->len ? list->len : 1, sizeof(*rows));
    if (rows == NULL) {
        json_value_free(doc);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < list->len; i++) {
        if (list->items[i].type != JSON_OBJECT) {
            snprintf(err, errlen, "session %zu is not an object", i);
            free(rows);
            json_value_free(doc);
            return -EBADMSG;
        }
        fill_row(&rows[i], &list->items[i]);
    }
    qsort(rows, list->len, sizeof(*rows), row_cmp);
    for (int c = 0; c < C__COUNT; c++) {
        w[c] = strlen(headers[c]);
        for (size_t i = 0; i < list->len; i++)
            if (width(rows[i].cell[c]) > w[c])
                w[c] = width(rows[i].cell[c]);
    }
    for (int c = 0; c < C__COUNT; c++)
        print_cell(out, headers[c], w[c], c == C__COUNT - 1);
    fputc('\n', out);
    for (size_t i = 0; i < list->len; i++) {
        for (int c = 0; c < C__COUNT; c++)
            print_cell(out, rows[i].cell[c], w[c], c == C__COUNT - 1);
        fputc('\n', out);
    }
    free(rows);
    json_value_free(doc);
    return 0;
}

/* ---- the client ------------------------------------------------------------------------ */

/* Waits for events on fd. Returns 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    do
        n = poll(&p, 1, STATUS_CLI_TIMEOUT_MS);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == 0 ? -ETIMEDOUT : 0;
}

static int connect_to(const struct cfg_addr *a, int *out)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int soerr = 0, rc;
    socklen_t sl = sizeof(soerr);

    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail_close;
        }
        rc = wait_fd(fd, POLLOUT);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            rc = -errno;
        if (rc == 0 && soerr != 0)
            rc = -soerr;
        if (rc != 0)
            goto fail_close;
    }
    *out = fd;
    return 0;

fail_close:
    close(fd);
    return rc;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        int rc;

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            if ((rc = wait_fd(fd, POLLOUT)) != 0)
                return rc;
            continue;
        }
        if (k < 0)
            return -errno;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

struct response {
    struct bytes body;
    bool complete;
    bool too_big;
};

static int body_cb(llhttp_t *p, const char *at, size_t len)
{
    struct response *r = p->data;

    if (bytes_len(&r->body) + len > STATUS_CLI_MAX_BODY) {
        r->too_big = true;
        return -1;
    }
    return bytes_append(&r->body, at, len) == 0 ? 0 : -1;
}

static int complete_cb(llhttp_t *p)
{
    ((struct response *)p->data)->complete = true;
    return 0;
}

/* Reads the response to EOF through llhttp. Returns 0 or -errno / -EBADMSG (msg says). */
static int read_response(int fd, struct response *r, int *status, char *msg, size_t msglen)
{
    static const llhttp_settings_t settings = {.on_body = body_cb,
                                               .on_message_complete = complete_cb};
    llhttp_t p;
    char buf[16384];
    int rc;

    llhttp_init(&p, HTTP_RESPONSE, &settings);
    p.data = r;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        llhttp_errno_t e;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if ((rc = wait_fd(fd, POLLIN)) != 0)
                return rc;
            continue;
        }
        if (n < 0)
            return -errno;
        e = n == 0 ? llhttp_finish(&p) : llhttp_execute(&p, buf, (size_t)n);
        if (e != HPE_OK) {
            snprintf(msg, msglen, "%s",
                     r->too_big ? "response larger than 64 MiB"
                     : n == 0   ? "response cut short"
                                : llhttp_get_error_reason(&p));
            return -EBADMSG;
        }
        if (r->complete || n == 0)
            break;
    }
    if (!r->complete) {
        snprintf(msg, msglen, "response cut short");
        return -EBADMSG;
    }
    *status = p.status_code;
    return 0;
}

int status_cli_run(const char *host_port, FILE *out)
{
    struct cfg_addr addr;
    struct response resp = {BYTES_INIT, false, false};
    char req[512], msg[256] = "";
    int fd = -1, rc, status = 0, n;

    if (cfg_parse_addr(host_port, &addr) != 0) {
        fprintf(stderr, "xmpp-tls-proxy status: %s: not an IP:PORT address\n", host_port);
        return 1;
    }
    rc = connect_to(&addr, &fd);
    if (rc != 0) {
        fprintf(stderr, "xmpp-tls-proxy status: cannot connect to %s: %s%s\n", host_port,
                strerror(-rc),
                rc == -ECONNREFUSED ? " (is admin.listen set and the proxy running?)" : "");
        return 1;
    }
    n = snprintf(req, sizeof(req),
                 "GET /status HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                 "User-Agent: xmpp-tls-proxy-status\r\nConnection: close\r\n\r\n",
                 host_port);
    rc = send_all(fd, req, (size_t)n);
    if (rc == 0)
        rc = read_response(fd, &resp, &status, msg, sizeof(msg));
    close(fd);
    if (rc == 0 && status != 200) {
        snprintf(msg, sizeof(msg), "HTTP status %d", status);
        rc = -EBADMSG;
    }
    if (rc == 0)
        rc = status_cli_print(bytes_len(&resp.body) ? (const char *)bytes_data(&resp.body) : "",
                              bytes_len(&resp.body), out, msg, sizeof(msg));
    bytes_cleanup(&resp.body);
    if (rc != 0) {
        fprintf(stderr, "xmpp-tls-proxy status: %s: %s\n", host_port,
                rc == -EBADMSG ? msg : strerror(-rc));
        return 1;
    }
    return fflush(out) == 0 ? 0 : 1;
}
