/* xmpp_out.h: the XML the proxy writes itself (RFC 6120 §4.7, §4.9, §5.4). Attribute values
 * are escaped. Everything is appended to a struct bytes. A leaf: no loop, no logging.
 * tests: test_xmpp_out.c */
#ifndef XTP_XMPP_OUT_H
#define XTP_XMPP_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "bytes.h"

/* <?xml version='1.0'?><stream:stream xmlns='content_ns' xmlns:stream='...' ...>. Any of
 * from, to, id, version, lang may be NULL to leave that attribute out. 0 or -ENOMEM.
 * Attributes come in this order: xmlns, xmlns:stream, xmlns:db='jabber:server:dialback' (only
 * when content_ns is jabber:server, XEP-0220), from, to, id, version, xml:lang. */
int xmpp_out_header(struct bytes *out, const char *content_ns, const char *from, const char *to,
                    const char *id, const char *version, const char *lang);

/* <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>
 * </stream:features> */
int xmpp_out_starttls_features(struct bytes *out);

/* <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> */
int xmpp_out_proceed(struct bytes *out);

/* <stream:error><CONDITION xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>[<text>]</stream:error>
 * </stream:stream>. text may be NULL. */
int xmpp_out_error(struct bytes *out, const char *condition, const char *text);

/* s2s-in features after TLS: <stream:features>[<mechanisms xmlns=sasl><mechanism>EXTERNAL
 * </mechanism></mechanisms>][<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>]
 * </stream:features> */
int xmpp_out_s2s_features(struct bytes *out, bool external, bool dialback);

/* XEP-0220: <db:ELEM from to id type>KEY</db:ELEM>, or an empty element when key is NULL.
 * elem is "result" or "verify" (else -EINVAL); NULL attributes are left out. */
int xmpp_out_db(struct bytes *out, const char *elem, const char *from, const char *to,
                const char *id, const char *type, const char *key);

/* <success xmlns=sasl/> or <failure xmlns=sasl><not-authorized/></failure> */
int xmpp_out_sasl(struct bytes *out, bool success);

/* <auth xmlns=sasl mechanism='EXTERNAL'>base64(authzid)</auth> ("=" for an empty one) */
int xmpp_out_auth_external(struct bytes *out, const char *authzid);

/* RFC 4648 base64 of the string in, NUL-terminated into out. 0 or -ENOSPC. */
int xmpp_out_base64(const char *in, char *out, size_t cap);

/* <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> */
int xmpp_out_starttls(struct bytes *out);

/* </stream:stream> */
int xmpp_out_close(struct bytes *out);

/* The RFC 6120 §4.9.3 condition for one of our error codes ("not-well-formed",
 * "restricted-xml", "host-unknown", "invalid-namespace", "unsupported-version",
 * "policy-violation", "bad-format", "remote-connection-failed", "connection-timeout",
 * "internal-server-error", ...). Never NULL. */
const char *xmpp_out_condition(int err);

/* A fresh random stream id: 16 bytes from getrandom(), base64url, NUL-terminated (needs 23
 * bytes). 0 or a negative errno. */
int xmpp_out_stream_id(char *buf, size_t len);

#endif
