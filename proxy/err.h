/* err.h: the project's error codes. Functions return 0 or a negative code: a -errno / UV_E*
 * value (equal on Unix) or one of the XTP_E* values below, which sit below all of them.
 * Foreign library codes (mbedTLS, expat, libyaml) never cross a module boundary: the module
 * that calls the library translates them here.  tests: test_err.c */
#ifndef XTP_ERR_H
#define XTP_ERR_H

/* XX(name, description). Order is ABI for nobody: names are the stable tokens. */
#define XTP_ERRNO_MAP(XX)                                                                          \
    XX(EXML, "malformed XML on the stream")                                                        \
    XX(ERESTRICTED, "restricted XML (DTD, entity, comment or processing instruction)")             \
    XX(ENAMESPACE, "wrong stream or content namespace")                                            \
    XX(EBADFORMAT, "XML that is not an XMPP stream")                                               \
    XX(EHOST, "stream addressed to a domain we do not serve")                                      \
    XX(EVERSION, "stream version cannot negotiate TLS")                                            \
    XX(EPOLICY, "element not allowed in this stream state")                                        \
    XX(ETOOBIG, "stanza larger than limits.max_stanza")                                            \
    XX(EDEPTH, "XML nesting deeper than allowed")                                                  \
    XX(ETLS, "TLS failure")                                                                        \
    XX(EVERIFY, "peer certificate does not match the expected XMPP domain")                        \
    XX(ECLOSED, "peer closed the TLS session (close_notify)")                                      \
    XX(EPREFIX, "undeclared namespace prefix")                                                     \
    XX(EBACKEND, "backend connection failed")                                                      \
    XX(ESHUTDOWN, "proxy shutting down")                                                           \
    XX(ELIMIT, "connection limit reached")                                                         \
    XX(ECONFIG, "invalid configuration")                                                           \
    XX(EKEY, "unusable certificate or private key")                                                \
    XX(ESTREAM, "XMPP stream error")                                                               \
    XX(EAUTH, "remote domain not authenticated")                                                   \
    XX(EFROM, "from/to pair the proxy has not authenticated")                                      \
    XX(EUNTRUSTED, "peer certificate chain not trusted")                                           \
    XX(EEXPIRED, "peer certificate expired or not yet valid")                                      \
    XX(ENOCERT, "peer presented no certificate")                                                   \
    XX(EPINNED, "remote certificate differs from the pinned one")                                  \
    XX(EDANE, "certificate does not match the DNSSEC-validated TLSA records")                      \
    XX(EDNS, "DNS resolution failed")                                                              \
    XX(ENXDOMAIN, "the remote domain does not exist or offers no XMPP service")                    \
    XX(ENOTLS, "the remote does not offer TLS")                                                    \
    XX(EREMOTE, "the remote server refused or closed the stream")

enum xtp_errno {
    XTP__EBASE = -10000, /* below every -errno and UV_E* value */
#define XX(code, _) XTP_##code,
    XTP_ERRNO_MAP(XX)
#undef XX
        XTP__ELAST
};

/* For invariants, never for input; stays on in release builds. */
#define XTP_ASSERT(expr) ((expr) ? (void)0 : xtp_assert_fail(#expr, __FILE__, __LINE__))
void xtp_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/* Human text for any code we return: XTP_E*, -errno or UV_E*. Never NULL. */
const char *xtp_strerror(int err);

/* A stable token for logs and metric labels: "EXML", "ECONNREFUSED", ... Never NULL. */
const char *xtp_err_name(int err);

#endif
