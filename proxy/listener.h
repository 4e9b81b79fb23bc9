/* listener.h: one listening socket per configured listener; accepted connections become
 * sessions (conn.c). */
#ifndef XTP_LISTENER_H
#define XTP_LISTENER_H

struct cfg_listener;
struct listener;
struct worker;

/* Binds and listens on cl->listen for worker w; cl is one of w->snap->cfg->listeners, and
 * sessions get the listener at the same index of whatever snapshot w holds when they arrive
 * (a reload keeps the listeners as they are, see main.c). Returns 0 with *out set, or a negative
 * code (UV_EADDRINUSE, UV_EACCES, ...) after logging which listener failed and why. */
int listener_start(struct worker *w, const struct cfg_listener *cl, struct listener **out);

/* Stops accepting; the memory goes in the close callback. NULL is fine. */
void listener_stop(struct listener *l);

#endif
