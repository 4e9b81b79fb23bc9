/* admin.h: the admin listener (`admin.listen`), a small HTTP/1.1 server on the loop:
 *
 *   GET /metrics  200, Prometheus text (Content-Type: text/plain; version=0.0.4; charset=utf-8)
 *   GET /status   200, JSON (application/json): the live sessions
 *   GET /healthz  200 "ok\n" when ops->healthy(), else 503
 *   other paths   404;  other methods 405 with "Allow: GET";  bad requests 400/413/414/431/505
 *                 (http_req.h); a render callback failing: 500
 *
 * Every response has Content-Length. Connections are persistent (HTTP/1.1 keep-alive,
 * pipelining answered in order) until the client sends "Connection: close", an error response
 * is sent, the connection idles for idle_timeout_ms, or a request takes longer than
 * request_timeout_ms from its first byte to its end (slow clients). Connections beyond
 * max_conns get a 503 and are closed. After a response that ends the connection, the write
 * side is shut down and unread input is discarded for up to two seconds before closing, so
 * that a TCP reset does not destroy the response.
 *
 * The address is bound as given: whether a non-loopback address is acceptable is the
 * configuration's decision. Loop module: single-threaded, like everything on one uv loop.
 * tests: test_admin.c */
#ifndef XTP_ADMIN_H
#define XTP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "bytes.h"

#define ADMIN_MAX_CONNS       64
#define ADMIN_IDLE_TIMEOUT_MS 10000
#define ADMIN_REQ_TIMEOUT_MS  5000

/* Called on the loop's thread, once per request. render_* append the body to out (empty on
 * entry) and return 0, or a negative code for a 500 response. */
struct admin_ops {
    int (*render_metrics)(void *arg, struct bytes *out);
    int (*render_status)(void *arg, struct bytes *out);
    bool (*healthy)(void *arg);
};

struct admin_limits {
    unsigned max_conns;          /* open admin connections; default ADMIN_MAX_CONNS */
    uint64_t idle_timeout_ms;    /* keep-alive idle time, and the time a response may take to
                                    leave; default ADMIN_IDLE_TIMEOUT_MS */
    uint64_t request_timeout_ms; /* first byte to end of a request; default ADMIN_REQ_TIMEOUT_MS */
};

struct admin;

/* Binds addr (port 0 picks one: see admin_address()) and listens on loop. ops is copied;
 * arg is passed to every callback. Returns the server, or NULL with a message naming the
 * address in err (the memory then goes on the loop's next iteration). */
struct admin *admin_start(uv_loop_t *loop, const struct sockaddr *addr, const struct admin_ops *ops,
                          void *arg, char *err, size_t errlen);

/* Replaces the limits (zero fields keep their value); connections opened later get them. */
void admin_set_limits(struct admin *a, const struct admin_limits *l);

/* The bound address. Returns 0 or a UV_E* code. */
int admin_address(const struct admin *a, struct sockaddr_storage *ss);

/* Stops listening and closes every admin connection (responses in flight are dropped). Once
 * every handle is closed, calls done(arg) (from a close callback, never from admin_stop()
 * itself; done may be NULL) and frees a. */
void admin_stop(struct admin *a, void (*done)(void *arg), void *arg);

#endif
