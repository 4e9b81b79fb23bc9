/* fuzz_s2s.c: the s2s element handling that decides authentication (issue 6): the remote's
 * stream parsed by xmpp_in, and for each element the checks s2s_in.c and s2s_out.c apply —
 * domain syntax of <db:result/>/<db:verify/> from/to (s2s_domain_copy), stanza addresses
 * (s2s_jid_domain), dialback keys (dialback_check against dialback_key), the SASL EXTERNAL
 * authorization identity (xmpp_out_base64). Invariants:
 *   - an accepted domain is lower case LDH, 1..253 bytes, no empty label, and accepting it
 *     again gives itself;
 *   - a JID's domain is accepted only if it is a valid domain and appears in the JID;
 *   - dialback_check() accepts exactly the key dialback_key() makes for the same triple;
 *   - base64 of a domain is 4 * ceil(n / 3) bytes.
 * The first byte picks whether the input gets a valid s2s stream header in front. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dialback.h"
#include "s2s-t.h"
#include "s2s.h"
#include "xmpp_in.h"
#include "xmpp_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dialback db;

static void check_domain(const char *s)
{
    char out[S2S_DOMAIN_MAX], again[S2S_DOMAIN_MAX];
    size_t n;

    if (s == NULL || !s2s_domain_copy(out, s))
        return;
    n = strlen(out);
    if (n == 0 || n > 253 || out[0] == '.' || out[n - 1] == '.' || strstr(out, "..") != NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= '0' && out[i] <= '9') ||
              out[i] == '-' || out[i] == '.'))
            abort();
    if (strcasecmp(out, s) != 0 || !s2s_domain_copy(again, out) || strcmp(again, out) != 0)
        abort();
}

static void check_jid(const char *jid)
{
    char d[S2S_DOMAIN_MAX];

    if (jid == NULL || !s2s_jid_domain(jid, d))
        return;
    check_domain(d);
    if (strcasestr(jid, d) == NULL)
        abort();
}

static void check_dialback(const struct xmpp_elem *e)
{
    const char *from = xmpp_attr_get(e->attrs, e->nattrs, "from");
    const char *to = xmpp_attr_get(e->attrs, e->nattrs, "to");
    const char *id = xmpp_attr_get(e->attrs, e->nattrs, "id");
    char key[DIALBACK_KEY_LEN + 1];

    check_domain(from);
    check_domain(to);
    if (from == NULL || to == NULL)
        return;
    if (id == NULL)
        id = "";
    dialback_key(&db, from, to, id, key);
    if (dialback_check(&db, from, to, id, e->text) != (strcmp(key, e->text) == 0))
        abort();
    if (!dialback_check(&db, from, to, id, key))
        abort();
}

static void check_auth(const struct xmpp_elem *e)
{
    char enc[344];
    size_t n = strlen(e->text);

    if (n > 253)
        return;
    if (xmpp_out_base64(e->text, enc, sizeof(enc)) != 0 || strlen(enc) != (n + 2) / 3 * 4)
        abort();
}

static int open_cb(void *arg, const struct xmpp_hdr *h)
{
    check_domain(h->from);
    check_domain(h->to);
    return 0;
}

static int elem_cb(void *arg, const struct xmpp_elem *e)
{
    if (strcmp(e->name, XMPP_NS_DIALBACK "|result") == 0 ||
        strcmp(e->name, XMPP_NS_DIALBACK "|verify") == 0)
        check_dialback(e);
    else if (strcmp(e->name, XMPP_NS_SASL "|auth") == 0)
        check_auth(e);
    else {
        check_jid(xmpp_attr_get(e->attrs, e->nattrs, "from"));
        check_jid(xmpp_attr_get(e->attrs, e->nattrs, "to"));
    }
    return 0;
}

static int close_cb(void *arg, uint64_t end)
{
    return 0;
}

static const struct xmpp_in_ops ops = {open_cb, elem_cb, close_cb};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char hdr[] = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                              "xmlns:stream='http://etherx.jabber.org/streams' "
                              "xmlns:db='jabber:server:dialback' from='a.test' to='b.test' "
                              "version='1.0'>";
    static int ready;
    struct xmpp_in *in;
    size_t used;

    if (!ready) {
        dialback_init(&db, "fuzz-secret", 11);
        ready = 1;
    }
    if (size == 0)
        return 0;
    in = xmpp_in_new(&ops, NULL, 65536, NULL);
    if (in == NULL)
        return 0;
    if (data[0] & 1)
        (void)xmpp_in_feed(in, hdr, sizeof(hdr) - 1, &used);
    (void)xmpp_in_feed(in, data + 1, size - 1, &used);
    xmpp_in_free(in);
    return 0;
}
