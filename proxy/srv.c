/* srv.c: SRV and TLSA rdata, names as text, RFC 2782 ordering. See srv.h. */
#include "srv.h"

#include <errno.h>
#include <string.h>

static bool is_ldh(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static char lower(uint8_t c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* Checks one label's bytes. last: it is the name's final label. 0 or -EINVAL. */
static int check_label(const uint8_t *p, size_t n, bool host, bool last)
{
    bool digits = true;

    if (n == 0 || n > 63)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!is_ldh(p[i]) && (host || p[i] != '_'))
            return -EINVAL;
        if (p[i] < '0' || p[i] > '9')
            digits = false;
    }
    if (host && (p[0] == '-' || p[n - 1] == '-'))
        return -EINVAL; /* RFC 1123 §2.1, RFC 952 */
    if (host && last && digits)
        return -EINVAL; /* RFC 3696 §2: would read as an IPv4 literal */
    return 0;
}

int srv_name_text(const uint8_t *wire, size_t len, size_t *used, char *out, size_t outlen,
                  bool host)
{
    size_t i = 0, o = 0;
    int bad = 0; /* -EINVAL is reported only once the wire form is known to be sound */

    for (;;) {
        size_t n;

        if (i >= len)
            return -EBADMSG;
        n = wire[i];
        if (n > 63)
            return -EBADMSG; /* 0xC0 compression pointers, 0x40 extended labels */
        if (i + 1 + n > 255)
            return -EBADMSG; /* RFC 1035 §2.3.4: 255 octets, the final zero included */
        if (n == 0)
            break;
        if (i + 1 + n > len)
            return -EBADMSG;
        if (bad == 0) {
            /* The last label is the one followed by the zero octet. */
            bool last = i + 1 + n < len && wire[i + 1 + n] == 0;

            bad = check_label(wire + i + 1, n, host, last);
        }
        if (bad == 0) {
            if (o + n + 1 + (o > 0) > outlen)
                bad = -ENOBUFS;
            else {
                if (o > 0)
                    out[o++] = '.';
                for (size_t k = 0; k < n; k++)
                    out[o++] = lower(wire[i + 1 + k]);
            }
        }
        i += 1 + n;
    }
    if (bad == 0 && host && o == 0)
        bad = -EINVAL; /* the root is not a host */
    if (bad == 0 && outlen == 0)
        bad = -ENOBUFS;
    if (bad != 0)
        return bad;
    out[o] = '\0';
    *used = i + 1;
    return 0;
}

int srv_host_check(const char *text)
{
    size_t len = strlen(text), start = 0;

    if (len == 0 || len > SRV_NAME_MAX)
        return -EINVAL;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '.')
            continue;
        if (check_label((const uint8_t *)text + start, i - start, true, i == len) != 0)
            return -EINVAL; /* also catches empty labels: "a..b", ".a", "a." */
        start = i + 1;
    }
    return 0;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

int srv_parse(const uint8_t *rdata, size_t len, struct srv_rec *out)
{
    size_t used;
    int rc;

    if (len < 7)
        return -EBADMSG; /* 6 octets of numbers and at least the root name */
    out->priority = be16(rdata);
    out->weight = be16(rdata + 2);
    out->port = be16(rdata + 4);
    out->direct_tls = false;
    if (rdata[6] == 0) {
        used = 1;
        out->target[0] = '\0';
    } else {
        rc = srv_name_text(rdata + 6, len - 6, &used, out->target, sizeof(out->target), true);
        if (rc != 0)
            return rc;
    }
    if (6 + used != len)
        return -EBADMSG; /* RFC 2782: the target is the last field */
    return 0;
}

int srv_tlsa_parse(const uint8_t *rdata, size_t len, struct srv_tlsa *out)
{
    if (len < 4)
        return -EBADMSG;
    if ((rdata[2] == 1 && len - 3 != 32) || (rdata[2] == 2 && len - 3 != 64))
        return -EBADMSG; /* RFC 6698 §2.1.3: SHA2-256 and SHA2-512 digests */
    out->usage = rdata[0];
    out->selector = rdata[1];
    out->mtype = rdata[2];
    out->data = rdata + 3;
    out->len = len - 3;
    return 0;
}

enum srv_set srv_parse_set(char *const *data, const int *len, bool direct_tls, struct srv_rec *out,
                           size_t max, size_t *nout)
{
    size_t n = 0, usable = 0;
    struct srv_rec r;

    while (data[n] != NULL)
        n++;
    if (n == 0)
        return SRV_SET_EMPTY;
    for (size_t i = 0; i < n; i++) {
        if (len[i] < 0 || srv_parse((const uint8_t *)data[i], (size_t)len[i], &r) != 0)
            continue;
        if (r.target[0] == '\0') {
            if (n == 1)
                return SRV_SET_DECLINED; /* RFC 2782: "decidedly not available" */
            continue;
        }
        if (r.port == 0)
            continue;
        usable++;
        if (*nout < max) {
            r.direct_tls = direct_tls;
            out[(*nout)++] = r;
        }
    }
    return usable > 0 ? SRV_SET_RECORDS : SRV_SET_FAILED;
}

enum srv_plan srv_plan(enum srv_set direct, enum srv_set starttls)
{
    if (direct == SRV_SET_RECORDS || starttls == SRV_SET_RECORDS)
        return SRV_PLAN_RECORDS;
    if (direct == SRV_SET_FAILED || starttls == SRV_SET_FAILED)
        return SRV_PLAN_FAILED;
    if (direct == SRV_SET_DECLINED || starttls == SRV_SET_DECLINED)
        return SRV_PLAN_NOSERVICE;
    return SRV_PLAN_FALLBACK;
}

/* The sort key of a record: priority, then (when preferring) Direct TLS before STARTTLS. */
static uint32_t group_key(const struct srv_rec *r, unsigned flags)
{
    uint32_t k = (uint32_t)r->priority << 1;

    if (flags & SRV_ORDER_PREFER_DIRECT)
        k |= r->direct_tls ? 0u : 1u;
    return k;
}

/* Moves recs[j] to position i (i <= j), shifting recs[i..j) up by one: keeps the rest stable. */
static void move_to(struct srv_rec *recs, size_t i, size_t j)
{
    struct srv_rec t;

    if (i == j)
        return;
    t = recs[j];
    memmove(&recs[i + 1], &recs[i], (j - i) * sizeof(*recs));
    recs[i] = t;
}

/* RFC 2782 weighted selection within recs[0..n), all of one group. */
static void order_group(struct srv_rec *recs, size_t n, srv_rand_fn *rnd, void *arg)
{
    size_t zeros = 0;

    /* Zero-weight records first, keeping their order. */
    for (size_t j = 0; j < n; j++)
        if (recs[j].weight == 0)
            move_to(recs, zeros++, j);
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t sum = 0, pick, run = 0;
        size_t j;

        for (j = i; j < n; j++)
            sum += recs[j].weight;
        pick = rnd(arg, sum + 1); /* "between 0 and the sum ... (inclusive)" */
        if (pick > sum)
            pick = sum; /* a broken rnd must not walk past the end */
        for (j = i; j < n; j++) {
            run += recs[j].weight;
            if (run >= pick)
                break;
        }
        move_to(recs, i, j);
    }
}

void srv_order(struct srv_rec *recs, size_t n, unsigned flags, srv_rand_fn *rnd, void *arg)
{
    /* Stable insertion sort by group key: n is small (dns.c caps it at 64). */
    for (size_t i = 1; i < n; i++) {
        size_t j = i;

        while (j > 0 && group_key(&recs[j - 1], flags) > group_key(&recs[i], flags))
            j--;
        move_to(recs, j, i);
    }
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;

        while (j < n && group_key(&recs[j], flags) == group_key(&recs[i], flags))
            j++;
        order_group(recs + i, j - i, rnd, arg);
        i = j;
    }
}
