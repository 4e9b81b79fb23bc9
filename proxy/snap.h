/* snap.h: an immutable configuration together with the TLS state built from it. */
#ifndef XTP_SNAP_H
#define XTP_SNAP_H

struct cfg;
struct tls_server;

/* An immutable configuration with its TLS state. Sessions hold a reference; a reload makes a
 * new one (issue: operating it) and the old one goes away with its last session. */
struct snap {
    int refs;               /* atomic */
    struct cfg *cfg;        /* owned (one cfg reference) */
    struct tls_server *tls; /* owned */
};

struct snap *snap_new(struct cfg *cfg, struct tls_server *tls); /* takes both; NULL on ENOMEM */
struct snap *snap_ref(struct snap *s);
void snap_unref(struct snap *s); /* NULL is fine */

#endif
