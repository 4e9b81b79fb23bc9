/* xmpp_out.c: the XML the proxy writes itself; see xmpp_out.h. Single quotes throughout, as
 * jabberd2 and Prosody write them. Each function appends all of its output or none of it. */
#include "xmpp_out.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "err.h"
#include "xmpp_in.h"

/* Appends pieces in order; on failure puts out back as it was. */
struct writer {
    struct bytes *out;
    size_t len0; /* bytes_len(out) before we started */
    int err;
};

static void w_raw(struct writer *w, const char *s)
{
    if (w->err == 0)
        w->err = bytes_append(w->out, s, strlen(s));
}

/* XML 1.0 §2.4 and §3.1: escape the five special characters, so the value fits in either
 * quoting style and in text. */
static void w_escaped(struct writer *w, const char *s)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *e;

        switch (*s) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '\'':
            e = "&apos;";
            break;
        case '"':
            e = "&quot;";
            break;
        default:
            continue;
        }
        if (w->err == 0 && s > run)
            w->err = bytes_append(w->out, run, (size_t)(s - run));
        w_raw(w, e);
        run = s + 1;
    }
    if (w->err == 0 && s > run)
        w->err = bytes_append(w->out, run, (size_t)(s - run));
}

static void w_attr(struct writer *w, const char *name, const char *value)
{
    if (value == NULL)
        return;
    w_raw(w, " ");
    w_raw(w, name);
    w_raw(w, "='");
    w_escaped(w, value);
    w_raw(w, "'");
}

static int w_done(struct writer *w)
{
    if (w->err != 0 && w->out->len > w->len0)
        w->out->len = w->len0; /* drop the partial output */
    return w->err;
}

int xmpp_out_header(struct bytes *out, const char *content_ns, const char *from, const char *to,
                    const char *id, const char *version, const char *lang)
{
    struct writer w = {out, bytes_len(out), 0};

    w_raw(&w, "<?xml version='1.0'?><stream:stream");
    w_attr(&w, "xmlns", content_ns);
    w_attr(&w, "xmlns:stream", XMPP_NS_STREAMS);
    /* XEP-0220 §2.1: a server stream declares the dialback prefix, since <db:result/> and
     * <db:verify/> use it. */
    if (content_ns != NULL && strcmp(content_ns, XMPP_NS_SERVER) == 0)
        w_attr(&w, "xmlns:db", XMPP_NS_DIALBACK);
    w_attr(&w, "from", from);
    w_attr(&w, "to", to);
    w_attr(&w, "id", id);
    w_attr(&w, "version", version);
    w_attr(&w, "xml:lang", lang);
    w_raw(&w, ">");
    return w_done(&w);
}

int xmpp_out_starttls_features(struct bytes *out)
{
    struct writer w = {out, bytes_len(out), 0};

    /* RFC 6120 §5.3.1: mandatory-to-negotiate, so <required/>. */
    w_raw(&w, "<stream:features><starttls xmlns='" XMPP_NS_TLS "'><required/></starttls>"
              "</stream:features>");
    return w_done(&w);
}

int xmpp_out_proceed(struct bytes *out)
{
    struct writer w = {out, bytes_len(out), 0};

    w_raw(&w, "<proceed xmlns='" XMPP_NS_TLS "'/>");
    return w_done(&w);
}

/* A condition is an element name from RFC 6120 §4.9.3: lowercase letters and hyphens. */
static bool valid_condition(const char *c)
{
    if (*c == '\0')
        return false;
    for (; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '-'))
            return false;
    return true;
}

int xmpp_out_error(struct bytes *out, const char *condition, const char *text)
{
    struct writer w = {out, bytes_len(out), 0};

    if (condition == NULL || !valid_condition(condition))
        return -EINVAL;
    /* RFC 6120 §4.9.1.1: the error, then the closing stream tag. */
    w_raw(&w, "<stream:error><");
    w_raw(&w, condition);
    w_raw(&w, " xmlns='" XMPP_NS_STREAM_ERRORS "'/>");
    if (text != NULL) {
        w_raw(&w, "<text xmlns='" XMPP_NS_STREAM_ERRORS "'>");
        w_escaped(&w, text);
        w_raw(&w, "</text>");
    }
    w_raw(&w, "</stream:error></stream:stream>");
    return w_done(&w);
}

int xmpp_out_s2s_features(struct bytes *out, bool external, bool dialback)
{
    struct writer w = {out, bytes_len(out), 0};

    w_raw(&w, "<stream:features>");
    /* XEP-0178 §3: EXTERNAL only when the certificate already proved the domain. */
    if (external)
        w_raw(&w, "<mechanisms xmlns='" XMPP_NS_SASL "'><mechanism>EXTERNAL</mechanism>"
                  "</mechanisms>");
    /* XEP-0220 §2.4: the dialback stream feature, with error support. */
    if (dialback)
        w_raw(&w, "<dialback xmlns='" XMPP_NS_DIALBACK_FEATURE "'><errors/></dialback>");
    w_raw(&w, "</stream:features>");
    return w_done(&w);
}

int xmpp_out_db(struct bytes *out, const char *elem, const char *from, const char *to,
                const char *id, const char *type, const char *key)
{
    struct writer w = {out, bytes_len(out), 0};

    if (strcmp(elem, "result") != 0 && strcmp(elem, "verify") != 0)
        return -EINVAL;
    w_raw(&w, "<db:");
    w_raw(&w, elem);
    w_attr(&w, "from", from);
    w_attr(&w, "to", to);
    w_attr(&w, "id", id);
    w_attr(&w, "type", type);
    if (key != NULL) {
        w_raw(&w, ">");
        w_escaped(&w, key);
        w_raw(&w, "</db:");
        w_raw(&w, elem);
        w_raw(&w, ">");
    } else {
        w_raw(&w, "/>");
    }
    return w_done(&w);
}

int xmpp_out_sasl(struct bytes *out, bool success)
{
    struct writer w = {out, bytes_len(out), 0};

    /* RFC 6120 §6.4.5, §6.4.6. */
    w_raw(&w, success ? "<success xmlns='" XMPP_NS_SASL "'/>"
                      : "<failure xmlns='" XMPP_NS_SASL "'><not-authorized/></failure>");
    return w_done(&w);
}

int xmpp_out_base64(const char *in, char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)in;
    size_t n = strlen(in), o = 0;

    if (cap < (n + 2) / 3 * 4 + 1)
        return -ENOSPC;
    for (; n > 0; p += 3, n = n > 3 ? n - 3 : 0) {
        unsigned v = (unsigned)p[0] << 16 | (n > 1 ? (unsigned)p[1] << 8 : 0) | (n > 2 ? p[2] : 0);

        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = n > 1 ? b64[v >> 6 & 63] : '=';
        out[o++] = n > 2 ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return 0;
}

int xmpp_out_auth_external(struct bytes *out, const char *authzid)
{
    struct writer w = {out, bytes_len(out), 0};
    char enc[344]; /* a domain of 253 bytes: 340 */

    if (xmpp_out_base64(authzid, enc, sizeof(enc)) != 0)
        return -EINVAL;
    /* XEP-0178 §3 step 7: the authorization identity is our domain, base64 (RFC 4648). */
    w_raw(&w, "<auth xmlns='" XMPP_NS_SASL "' mechanism='EXTERNAL'>");
    w_raw(&w, enc[0] != '\0' ? enc : "=");
    w_raw(&w, "</auth>");
    return w_done(&w);
}

int xmpp_out_starttls(struct bytes *out)
{
    struct writer w = {out, bytes_len(out), 0};

    w_raw(&w, "<starttls xmlns='" XMPP_NS_TLS "'/>");
    return w_done(&w);
}

int xmpp_out_close(struct bytes *out)
{
    struct writer w = {out, bytes_len(out), 0};

    w_raw(&w, "</stream:stream>");
    return w_done(&w);
}

const char *xmpp_out_condition(int err)
{
    switch (err) {
    case XTP_EXML:
        return "not-well-formed";
    case XTP_ERESTRICTED:
        return "restricted-xml"; /* RFC 6120 §11.1 */
    case XTP_ENAMESPACE:
        return "invalid-namespace";
    case XTP_EBADFORMAT:
        return "bad-format";
    case XTP_EPREFIX:
        return "bad-namespace-prefix";
    case XTP_EHOST:
        return "host-unknown";
    case XTP_EVERSION:
        return "unsupported-version";
    case XTP_EPOLICY:
    case XTP_ETOOBIG: /* RFC 6120 §4.9.3.14: "a stanza exceeds a configured size limit" */
    case XTP_EDEPTH:
        return "policy-violation";
    case XTP_EBACKEND:
    case XTP_EDNS:
    case XTP_ENXDOMAIN:
    case XTP_ENOTLS:
    case XTP_EREMOTE:
        return "remote-connection-failed";
    case XTP_EAUTH:
    case XTP_EUNTRUSTED:
    case XTP_EEXPIRED:
    case XTP_ENOCERT:
    case XTP_EPINNED:
    case XTP_EDANE:
    case XTP_EVERIFY:
        return "not-authorized"; /* RFC 6120 §4.9.3.12 */
    case XTP_EFROM:
        return "invalid-from"; /* RFC 6120 §4.9.3.9 */
    case -ETIMEDOUT:           /* UV_ETIMEDOUT on Unix */
        return "connection-timeout";
    case XTP_ESHUTDOWN:
        return "system-shutdown";
    case XTP_ELIMIT:
    case -ENOMEM:
        return "resource-constraint";
    default:
        return "internal-server-error";
    }
}

int xmpp_out_stream_id(char *buf, size_t len)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[16];
    size_t got = 0, o = 0;

    if (len < 23)
        return -ENOSPC;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    /* RFC 4648 §5, unpadded: 5 groups of 3 bytes make 20 characters, the last byte 2. */
    for (size_t i = 0; i + 3 <= sizeof(raw); i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];

        buf[o++] = b64url[(v >> 18) & 63];
        buf[o++] = b64url[(v >> 12) & 63];
        buf[o++] = b64url[(v >> 6) & 63];
        buf[o++] = b64url[v & 63];
    }
    buf[o++] = b64url[raw[15] >> 2];
    buf[o++] = b64url[(raw[15] & 3) << 4];
    buf[o] = '\0';
    return 0;
}
