/* test_proxy_proto.c: proxy_proto.c through proxy_proto.h, against the examples and rules of
 * haproxy.org's proxy-protocol.txt (v1 §2.1, v2 §2.2). */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "err.h"
#include "test.h"

static const char *ip_of(const struct sockaddr_storage *ss, char *buf, size_t len, int *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        *port = ntohs(s->sin_port);
        return inet_ntop(AF_INET, &s->sin_addr, buf, (socklen_t)len);
    }
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    *port = ntohs(s6->sin6_port);
    return inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
}

TEST(v1)
{
    static const char tcp4[] = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 5223\r\n<?xml";
    static const char tcp6[] = "PROXY TCP6 2001:db8::7 2001:db8::1 4000 5222\r\n";
    struct proxy_proto pp;
    char ip[64];
    int port;

    EXPECT_EQ((int)strlen(tcp4) - 5, proxy_proto_parse((const uint8_t *)tcp4, strlen(tcp4), &pp));
    EXPECT(pp.has_src);
    EXPECT_STR("192.0.2.7", ip_of(&pp.src, ip, sizeof(ip), &port));
    EXPECT_EQ(56324, port);
    EXPECT_STR("198.51.100.1", ip_of(&pp.dst, ip, sizeof(ip), &port));
    EXPECT_EQ(5223, port);
    EXPECT_EQ((int)strlen(tcp6), proxy_proto_parse((const uint8_t *)tcp6, strlen(tcp6), &pp));
    EXPECT_STR("2001:db8::7", ip_of(&pp.src, ip, sizeof(ip), &port));
    EXPECT_EQ(4000, port);
    EXPECT_EQ(15, proxy_proto_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15, &pp));
    EXPECT(!pp.has_src);
    /* Every strict prefix of a valid header needs more bytes. */
    for (size_t n = 1; n < strlen(tcp6); n++)
        EXPECT_EQ_MSG(0, proxy_proto_parse((const uint8_t *)tcp6, n, &pp), "prefix %zu", n);
}

TEST(v1_refused)
{
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",   /* a field missing */
        "PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",    /* two spaces */
        "PROXY TCP4 192.0.2.777 198.51.100.1 1 2\r\n",   /* not an address */
        "PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",   /* family mismatch */
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n", /* port range */
        "PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n",    /* leading zero */
        "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",     /* not TCP */
        "PROXY TCP4 192.0.2.7 198.51.100.1 1 2 \r\n",    /* trailing space */
        "proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",     /* case */
        "<?xml version='1.0'?>",                         /* no header at all */
        "\x16\x03\x01\x02\x00",                          /* a TLS ClientHello */
    };
    char longline[200];
    struct proxy_proto pp;

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        EXPECT_EQ_MSG(XTP_EBADFORMAT,
                      proxy_proto_parse((const uint8_t *)bad[i], strlen(bad[i]), &pp), "row %zu",
                      i);
    memset(longline, 'A', sizeof(longline));
    memcpy(longline, "PROXY TCP4 ", 11);
    EXPECT_EQ(XTP_EBADFORMAT, proxy_proto_parse((const uint8_t *)longline, sizeof(longline), &pp));
}

TEST(v2)
{
    uint8_t h[64] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,     0x0A, 0x51, 0x55, 0x49,
        0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C + 7, /* PROXY, TCP4, 12 bytes + a 7-byte TLV */
        192,  0,    2,    9,    198,  51,       100,  1,    0xDB, 0xF0,
        0x14, 0x67, 0x04, 0x00, 0x04, 'a',      'b',  'c',  'd'};
    struct proxy_proto pp;
    char ip[64];
    int port;

    EXPECT_EQ(16 + 12 + 7, proxy_proto_parse(h, 40, &pp));
    EXPECT(pp.has_src);
    EXPECT_STR("192.0.2.9", ip_of(&pp.src, ip, sizeof(ip), &port));
    EXPECT_EQ(0xDBF0, port);
    for (size_t n = 1; n < 35; n++)
        EXPECT_EQ_MSG(0, proxy_proto_parse(h, n, &pp), "prefix %zu", n);
    h[12] = 0x20; /* LOCAL: a health check; no address */
    EXPECT_EQ(35, proxy_proto_parse(h, 35, &pp));
    EXPECT(!pp.has_src);
    h[12] = 0x31; /* version 3 */
    EXPECT_EQ(XTP_EBADFORMAT, proxy_proto_parse(h, 35, &pp));
    h[12] = 0x21;
    h[13] = 0x12; /* UDP */
    EXPECT_EQ(XTP_EBADFORMAT, proxy_proto_parse(h, 35, &pp));
    h[13] = 0x11;
    h[14] = 0x02; /* 0x02xx bytes: over PROXY_PROTO_MAX */
    EXPECT_EQ(XTP_EBADFORMAT, proxy_proto_parse(h, 35, &pp));
    h[14] = 0x00;
    h[15] = 8; /* too short for two IPv4 addresses and ports */
    EXPECT_EQ(XTP_EBADFORMAT, proxy_proto_parse(h, 35, &pp));
}

TEST_MAIN(v1, v1_refused, v2)
