/* http_req.h: one HTTP/1.1 request at a time, parsed by llhttp, for the admin listener.
 *
 * The admin endpoints take no content, so the accepted subset is small: method GET, a request
 * line plus headers of at most HTTP_REQ_MAX_HEAD bytes, at most HTTP_REQ_MAX_HEADERS header
 * fields, exactly one Host in HTTP/1.1 (RFC 9112 §3.2), no body. Everything else is an error
 * that names the status of the response to send before closing the connection:
 *
 *   400  malformed (llhttp's strict mode; missing or repeated Host; unknown method token)
 *   405  a method other than GET (send "Allow: GET", RFC 9110 §15.5.6)
 *   413  a body announced (Content-Length > 0 or Transfer-Encoding: chunked)
 *   414  a request target longer than HTTP_REQ_MAX_URL
 *   431  request line + headers over HTTP_REQ_MAX_HEAD, or over HTTP_REQ_MAX_HEADERS fields
 *   505  an HTTP version other than 1.x
 *
 * A target that is both too long and malformed gets 414 or 400 depending on where the reads
 * ended (llhttp reports the target in pieces); every other outcome is the same however the
 * bytes are split.
 * Leaf module: no libuv, no logging. Pipelined requests are supported: http_req_feed() stops
 * at the end of each complete request and says how many bytes it used.
 * tests: test_http_req.c, fuzz: fuzz_http.c */
#ifndef XTP_HTTP_REQ_H
#define XTP_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_REQ_MAX_HEAD    8192 /* request line + header fields + the empty line */
#define HTTP_REQ_MAX_HEADERS 64
#define HTTP_REQ_MAX_URL     2048 /* the request target as sent, query included */

enum http_req_result {
    HTTP_REQ_MORE = 0,  /* every byte was used; the request is not complete yet */
    HTTP_REQ_DONE = 1,  /* a request is complete: read it, then http_req_next() */
    HTTP_REQ_ERROR = 2, /* answer with http_req_status() and close; the parser is spent */
};

struct http_req;

/* A parser ready for the first request, or NULL (out of memory). */
struct http_req *http_req_new(void);
void http_req_free(struct http_req *r); /* NULL is fine */

/* Parses up to len bytes. *used receives how many were consumed: all of them for
 * HTTP_REQ_MORE; up to the end of the request for HTTP_REQ_DONE (the rest belongs to the next,
 * pipelined, request); up to the offending byte for HTTP_REQ_ERROR. After DONE or ERROR
 * further calls return the same result with *used = 0 until http_req_next(). */
enum http_req_result http_req_feed(struct http_req *r, const void *data, size_t len, size_t *used);

/* After HTTP_REQ_DONE: forget the request and get ready for the next one on the same
 * connection. Must not be called after HTTP_REQ_ERROR. */
void http_req_next(struct http_req *r);

/* After HTTP_REQ_DONE: the request's path, NUL-terminated, as sent (no percent-decoding) and
 * without the query or fragment. An absolute-form target ("http://host/metrics") gives its
 * path; an empty path gives "/". Valid until http_req_next() or http_req_free(). */
const char *http_req_path(const struct http_req *r);

/* The method name as parsed ("GET", "POST", ...) once the method is known, else "". */
const char *http_req_method(const struct http_req *r);

/* After HTTP_REQ_DONE: whether the connection may stay open (HTTP/1.1 without
 * "Connection: close", or HTTP/1.0 with "Connection: keep-alive"). */
bool http_req_keep_alive(const struct http_req *r);

/* After HTTP_REQ_DONE: the minor version of HTTP/1.x (0 or 1). An HTTP/1.0 client that keeps
 * the connection open needs "Connection: keep-alive" in the response. */
int http_req_minor(const struct http_req *r);

/* After HTTP_REQ_ERROR: the status to answer with (400, 405, 413, 414, 431 or 505), and a
 * short reason for the log (llhttp's own text for syntax errors). Both 0 / "" otherwise. */
int http_req_status(const struct http_req *r);
const char *http_req_error(const struct http_req *r);

#endif
