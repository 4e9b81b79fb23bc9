/* http_req.c: see http_req.h. llhttp does the syntax (strict mode: no lenient flags); this
 * file adds the bounds and the subset the admin listener accepts, and stops llhttp at the end
 * of each request (HPE_PAUSED from on_message_complete) so pipelined requests are answered
 * one at a time. */
#include "http_req.h"

#include <llhttp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

struct http_req {
    llhttp_t p;
    enum http_req_result state;
    size_t head;        /* bytes given to llhttp for the current request */
    unsigned nheaders;  /* header fields seen */
    unsigned nhost;     /* Host fields seen */
    bool method_done;   /* llhttp knows the method */
    bool url_done;      /* the request target is complete */
    bool version_done;  /* llhttp accepted the version */
    bool keep_alive;    /* valid after DONE */
    int minor;          /* valid after DONE */
    int status;         /* the error status our callbacks chose; 0 when llhttp failed */
    const char *error;  /* static text */
    char field[5];      /* the start of the current field name: is it "Host"? */
    size_t field_len;   /* sizeof(field) means "longer than Host" */
    char version[4];    /* "1.1" as sent, to tell 505 from 400 */
    size_t version_len; /* sizeof(version) means "longer than D.D" */
    size_t url_len;
    char url[HTTP_REQ_MAX_URL + 1]; /* the target; after DONE, the path, NUL-terminated */
};

static struct http_req *req_of(llhttp_t *p)
{
    return p->data;
}

/* Records why the request is refused. Returns -1, which stops llhttp with an HPE_CB_* code
 * (or HPE_USER from data callbacks); http_req_feed() then reports our status, not llhttp's. */
static int refuse(struct http_req *r, int status, const char *why)
{
    r->status = status;
    r->error = why;
    return -1;
}

static int method_complete_cb(llhttp_t *p)
{
    struct http_req *r = req_of(p);

    r->method_done = true;
    /* RFC 9110 §15.5.6: 405 carries Allow; the admin endpoints are read-only. */
    if (llhttp_get_method(p) != HTTP_GET)
        return refuse(r, 405, "method not allowed");
    return 0;
}

static int url_cb(llhttp_t *p, const char *at, size_t len)
{
    struct http_req *r = req_of(p);

    if (len > HTTP_REQ_MAX_URL - r->url_len)
        return refuse(r, 414, "request target too long");
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    return 0;
}

static int url_complete_cb(llhttp_t *p)
{
    req_of(p)->url_done = true;
    return 0;
}

static int version_cb(llhttp_t *p, const char *at, size_t len)
{
    struct http_req *r = req_of(p);

    if (len > sizeof(r->version) - r->version_len) {
        r->version_len = sizeof(r->version);
        return 0;
    }
    memcpy(r->version + r->version_len, at, len);
    r->version_len += len;
    return 0;
}

static int version_complete_cb(llhttp_t *p)
{
    req_of(p)->version_done = true;
    return 0;
}

static int header_field_cb(llhttp_t *p, const char *at, size_t len)
{
    struct http_req *r = req_of(p);

    if (len > sizeof(r->field) - r->field_len) {
        r->field_len = sizeof(r->field);
        return 0;
    }
    memcpy(r->field + r->field_len, at, len);
    r->field_len += len;
    return 0;
}

static int header_field_complete_cb(llhttp_t *p)
{
    struct http_req *r = req_of(p);

    if (++r->nheaders > HTTP_REQ_MAX_HEADERS)
        return refuse(r, 431, "too many header fields");
    if (r->field_len == 4 && strncasecmp(r->field, "host", 4) == 0)
        r->nhost++;
    r->field_len = 0;
    return 0;
}

static int headers_complete_cb(llhttp_t *p)
{
    struct http_req *r = req_of(p);

    /* llhttp parses "HTTP/0.9" and "HTTP/2.0" request lines; we speak 1.x only. */
    if (p->http_major != 1)
        return refuse(r, 505, "HTTP version not supported");
    /* RFC 9112 §3.2: exactly one Host in 1.1; never more than one. */
    if (r->nhost > 1 || (p->http_minor == 1 && r->nhost != 1))
        return refuse(r, 400, "missing or repeated Host");
    if ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0))
        return refuse(r, 413, "request content not allowed");
    return 0;
}

static int message_complete_cb(llhttp_t *p)
{
    struct http_req *r = req_of(p);

    r->keep_alive = llhttp_should_keep_alive(p) != 0;
    r->minor = p->http_minor;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_url = url_cb,
    .on_version = version_cb,
    .on_header_field = header_field_cb,
    .on_headers_complete = headers_complete_cb,
    .on_message_complete = message_complete_cb,
    .on_url_complete = url_complete_cb,
    .on_method_complete = method_complete_cb,
    .on_version_complete = version_complete_cb,
    .on_header_field_complete = header_field_complete_cb,
};

static void reset(struct http_req *r)
{
    r->state = HTTP_REQ_MORE;
    r->head = 0;
    r->nheaders = r->nhost = 0;
    r->method_done = r->url_done = r->version_done = r->keep_alive = false;
    r->minor = 0;
    r->status = 0;
    r->error = "";
    r->field_len = r->version_len = r->url_len = 0;
    r->url[0] = '\0';
}

struct http_req *http_req_new(void)
{
    struct http_req *r = malloc(sizeof(*r));

    if (r == NULL)
        return NULL;
    llhttp_init(&r->p, HTTP_REQUEST, &settings);
    r->p.data = r;
    reset(r);
    return r;
}

void http_req_free(struct http_req *r)
{
    free(r);
}

/* Turns the target into its path, in place: RFC 9112 §3.2.2 absolute-form loses its scheme
 * and authority; the query and fragment go. */
static void make_path(struct http_req *r)
{
    char *s = r->url, *end;
    size_t n;

    r->url[r->url_len] = '\0';
    if (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0) {
        s = strstr(s, "//") + 2;
        s += strcspn(s, "/?#");
    }
    end = s + strcspn(s, "?#");
    n = (size_t)(end - s);
    memmove(r->url, s, n);
    r->url[n] = '\0';
    if (n == 0) {
        r->url[0] = '/';
        r->url[1] = '\0';
    }
}

static bool version_looks_valid(const struct http_req *r)
{
    const char *v = r->version;

    return r->version_len == 3 && v[0] >= '0' && v[0] <= '9' && v[1] == '.' && v[2] >= '0' &&
           v[2] <= '9';
}

static enum http_req_result fail(struct http_req *r, llhttp_errno_t e)
{
    r->state = HTTP_REQ_ERROR;
    if (r->status != 0)
        return r->state;
    /* llhttp reports an unknown "HTTP/3.0" and a malformed version line with the same code;
     * only the first deserves 505 (RFC 9110 §15.6.6). */
    if (e == HPE_INVALID_VERSION && !r->version_done && version_looks_valid(r)) {
        r->status = 505;
        r->error = "HTTP version not supported";
    } else {
        r->status = 400;
        r->error = llhttp_get_error_reason(&r->p);
        if (r->error == NULL)
            r->error = llhttp_errno_name(e);
    }
    return r->state;
}

enum http_req_result http_req_feed(struct http_req *r, const void *data, size_t len, size_t *used)
{
    const char *d = data;
    size_t off = 0;

    *used = 0;
    while (r->state == HTTP_REQ_MORE) {
        size_t room = HTTP_REQ_MAX_HEAD - r->head;
        size_t n = len - off < room ? len - off : room;
        llhttp_errno_t e;
        size_t took;

        if (n == 0) {
            if (off < len || r->head == HTTP_REQ_MAX_HEAD) {
                r->status = r->url_done ? 431 : 414;
                r->error =
                    r->url_done ? "request header section too large" : "request target too long";
                r->state = HTTP_REQ_ERROR;
            }
            break;
        }
        e = llhttp_execute(&r->p, d + off, n);
        took = e == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&r->p) - (d + off));
        off += took;
        r->head += took;
        switch (e) {
        case HPE_OK:
            /* Loops once more: stops on the head limit, or at the end of the input. */
            break;
        case HPE_PAUSED:
            make_path(r);
            r->state = HTTP_REQ_DONE;
            break;
        case HPE_PAUSED_UPGRADE:
            /* The previous request asked for an upgrade, which we ignore (RFC 9110 §7.8:
             * a server may). Parse what follows as the next request. */
            llhttp_resume_after_upgrade(&r->p);
            break;
        default:
            fail(r, e);
            break;
        }
    }
    *used = off;
    return r->state;
}

void http_req_next(struct http_req *r)
{
    XTP_ASSERT(r->state == HTTP_REQ_DONE);
    llhttp_resume(&r->p);
    reset(r);
}

const char *http_req_path(const struct http_req *r)
{
    return r->state == HTTP_REQ_DONE ? r->url : "";
}

const char *http_req_method(const struct http_req *r)
{
    return r->method_done ? llhttp_method_name((llhttp_method_t)r->p.method) : "";
}

bool http_req_keep_alive(const struct http_req *r)
{
    return r->state == HTTP_REQ_DONE && r->keep_alive;
}

int http_req_minor(const struct http_req *r)
{
    return r->minor;
}

int http_req_status(const struct http_req *r)
{
    return r->state == HTTP_REQ_ERROR ? r->status : 0;
}

const char *http_req_error(const struct http_req *r)
{
    return r->state == HTTP_REQ_ERROR ? r->error : "";
}
