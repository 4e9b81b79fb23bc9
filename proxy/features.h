/* features.h: rewrite the backend's <stream:features/> before the peer sees it (design.md §2
 * step 6). Drops <starttls/> (urn:ietf:params:xml:ns:xmpp-tls: the backend's own, possibly weak
 * TLS) and XEP-0138 <compression/> (http://jabber.org/features/compress: it would blind us);
 * rewrites the text of jabberd2's <address xmlns='http://affinix.com/jabber/address'/> (which
 * behind us says 127.0.0.1) to the real peer address. Everything else is kept byte for byte.
 * A leaf: no loop, no logging. tests: test_features.c, fuzz: fuzz_xmpp_in.c */
#ifndef XTP_FEATURES_H
#define XTP_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "xmpp_in.h"

/* elem: the whole element's bytes, which start at stream offset e->start; e->children are
 * its recorded children. peer_addr: text for <address/>, or NULL to leave it as it is.
 * Appends the result to out, or nothing on failure. Returns 0, -ENOMEM, or XTP_EBADFORMAT
 * when the children were not all recorded (too many to rewrite exactly: we fail closed) or
 * when cutting a child out would join the text around it into "]]>" (not well-formed). */
int features_rewrite(const struct xmpp_elem *e, const uint8_t *elem, const char *peer_addr,
                     struct bytes *out);

#endif
