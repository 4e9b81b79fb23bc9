/* relay.h: moves bytes between a session's two sides. Input is parsed (xmpp_in) and only
 * complete top-level units are forwarded, as their original bytes: the backend never sees a
 * partial or malformed stanza, and our own stream errors can always be appended cleanly.
 * Writes try the socket first (uv_try_write) and copy only what it did not take; past
 * RELAY_HIGH_WATER queued bytes the producing side stops reading until the queue drains, so
 * memory per session stays bounded whatever the peers do. */
#ifndef XTP_RELAY_H
#define XTP_RELAY_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_HIGH_WATER (128 * 1024)
#define RELAY_LOW_WATER  (32 * 1024)

struct conn;
struct side;

/* Parses n more bytes that side s sent and forwards what is complete (in RELAY). The parser
 * callbacks run inside (conn.c). Returns 0, or a negative code after which the caller closes
 * (the session may already be closing). */
int relay_input(struct conn *c, struct side *s, const uint8_t *data, size_t n);

/* Forwards s's bytes [s->fwd, upto) to the other side; upto lies within the current window. */
void relay_forward(struct conn *c, struct side *s, uint64_t upto);

/* Marks s's bytes before upto as consumed without forwarding them. */
void relay_skip(struct side *s, uint64_t upto);

/* Writes to the peer (through TLS once it is up) or to the backend. 0 or a negative code. */
int relay_to_peer(struct conn *c, const void *data, size_t len);
int relay_to_backend(struct conn *c, const void *data, size_t len);

/* Raw socket write towards s (the TLS send callback uses it). 0 or a negative code. While c is
 * corked, bytes for its peer are gathered instead (a later failure closes the session). */
int relay_write(struct conn *c, struct side *s, const void *data, size_t len);

/* Between relay_cork(c) and relay_uncork(c), what goes to c's peer is gathered in the loop's
 * cork buffer and leaves in one write: a TLS 1.3 server flight is five or six records
 * (ServerHello ... Finished), each its own system call otherwise. One session per loop at a
 * time (a second relay_cork() is a no-op). relay_uncork() before anything that ends the
 * socket; conn_close() does it. */
void relay_cork(struct conn *c);
void relay_uncork(struct conn *c);

/* Starts or stops reading on each side from the state and the write queues. */
void relay_update_reading(struct conn *c);

/* True when peer input must wait (backend queue above the high-water mark, or not RELAY). */
int relay_peer_blocked(const struct conn *c);

#endif
