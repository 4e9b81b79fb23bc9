/* proxy_proto.c: PROXY protocol v1 and v2 headers (see proxy_proto.h). */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define V1_MAX 107 /* "PROXY TCP6 " + two 39-char addresses + ports + CRLF (spec §2.1) */

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A decimal port 0..65535 without sign, blanks or leading zeros. */
static bool parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;

    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 5)
        return false;
    for (const char *q = s; *q; q++) {
        if (*q < '0' || *q > '9')
            return false;
        v = v * 10 + (unsigned long)(*q - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool make_addr(int family, const char *ip, const char *port, struct sockaddr_storage *ss)
{
    uint16_t p;

    memset(ss, 0, sizeof(*ss));
    if (!parse_port(port, &p))
        return false;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(p);
        return inet_pton(AF_INET, ip, &sin->sin_addr) == 1;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(p);
    return inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1;
}

/* "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n" (spec §2.1): single spaces, CRLF. */
static int parse_v1(const uint8_t *p, size_t len, struct proxy_proto *out)
{
    char line[V1_MAX + 1], *f[7], *save = NULL;
    size_t n = 0, i;
    const uint8_t *crlf = NULL;

    for (i = 0; i + 1 < len && i + 1 < V1_MAX; i++)
        if (p[i] == '\r' && p[i + 1] == '\n') {
            crlf = p + i;
            break;
        }
    if (crlf == NULL)
        return len >= V1_MAX ? XTP_EBADFORMAT : 0;
    memcpy(line, p, i);
    line[i] = '\0';
    for (size_t k = 0; k < i; k++)
        if (line[k] == '\0' || (line[k] == ' ' && (k == 0 || k + 1 == i || line[k - 1] == ' ')))
            return XTP_EBADFORMAT; /* NUL, or an empty field (leading, double, trailing space) */
    for (char *t = strtok_r(line, " ", &save); t != NULL && n < 7; t = strtok_r(NULL, " ", &save))
        f[n++] = t;
    memset(out, 0, sizeof(*out));
    if (n >= 2 && strcmp(f[0], "PROXY") == 0 && strcmp(f[1], "UNKNOWN") == 0)
        return (int)(i + 2); /* the balancer does not know: keep the socket's address */
    if (n != 6 || strcmp(f[0], "PROXY") != 0)
        return XTP_EBADFORMAT;
    if (strcmp(f[1], "TCP4") == 0) {
        if (!make_addr(AF_INET, f[2], f[4], &out->src) ||
            !make_addr(AF_INET, f[3], f[5], &out->dst))
            return XTP_EBADFORMAT;
    } else if (strcmp(f[1], "TCP6") == 0) {
        if (!make_addr(AF_INET6, f[2], f[4], &out->src) ||
            !make_addr(AF_INET6, f[3], f[5], &out->dst))
            return XTP_EBADFORMAT;
    } else {
        return XTP_EBADFORMAT;
    }
    out->has_src = true;
    return (int)(i + 2);
}

/* The binary header (spec §2.2): signature, version 2 + command, family + protocol, length. */
static int parse_v2(const uint8_t *p, size_t len, struct proxy_proto *out)
{
    size_t body, total;
    uint8_t cmd, fam;

    if (len < 16)
        return 0;
    cmd = p[12];
    fam = p[13];
    body = (size_t)p[14] << 8 | p[15];
    total = 16 + body;
    if ((cmd & 0xF0) != 0x20 || (cmd & 0x0F) > 1 || total > PROXY_PROTO_MAX)
        return XTP_EBADFORMAT;
    if (len < total)
        return 0;
    memset(out, 0, sizeof(*out));
    if ((cmd & 0x0F) == 0) /* LOCAL: the balancer's own health check */
        return (int)total;
    if (fam == 0x11) { /* TCP over IPv4 */
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src,
                           *d = (struct sockaddr_in *)&out->dst;

        if (body < 12)
            return XTP_EBADFORMAT;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p + 16, 4);
        memcpy(&d->sin_addr, p + 20, 4);
        memcpy(&s->sin_port, p + 24, 2);
        memcpy(&d->sin_port, p + 26, 2);
        out->has_src = true;
    } else if (fam == 0x21) { /* TCP over IPv6 */
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src,
                            *d = (struct sockaddr_in6 *)&out->dst;

        if (body < 36)
            return XTP_EBADFORMAT;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p + 16, 16);
        memcpy(&d->sin6_addr, p + 32, 16);
        memcpy(&s->sin6_port, p + 48, 2);
        memcpy(&d->sin6_port, p + 50, 2);
        out->has_src = true;
    } else if ((fam & 0x0F) != 0x01 && fam != 0x00) {
        return XTP_EBADFORMAT; /* UDP or an unknown protocol on a TCP listener */
    }
    return (int)total; /* TLVs skipped */
}

int proxy_proto_parse(const uint8_t *p, size_t len, struct proxy_proto *out)
{
    size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

    if (len == 0)
        return 0;
    if (memcmp(p, v2_sig, n) == 0)
        return n < sizeof(v2_sig) ? 0 : parse_v2(p, len, out);
    n = len < 6 ? len : 6;
    if (memcmp(p, "PROXY ", n) == 0)
        return n < 6 ? 0 : parse_v1(p, len, out);
    return XTP_EBADFORMAT;
}
