/* proxy_proto.h: the PROXY protocol header a TCP load balancer (HAProxy, AWS NLB, Kubernetes
 * ingress) puts before the client's bytes, so that logs and limits see the real client
 * address (haproxy.org proxy-protocol.txt, versions 1 and 2). Only on listeners with
 * `proxy_protocol: true`: a client could forge it anywhere else. A leaf: no loop, no logging.
 * tests: test_proxy_proto.c, fuzz: fuzz_proxy_proto.c */
#ifndef XTP_PROXY_PROTO_H
#define XTP_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_PROTO_MAX 536 /* v2: 16-byte header + 520 (addresses + TLVs we skip) */

struct proxy_proto {
    bool has_src;                /* false for v1 UNKNOWN, v2 LOCAL or a non-IP family */
    struct sockaddr_storage src; /* the client as the balancer saw it */
    struct sockaddr_storage dst; /* the address it connected to */
};

/* Parses the header at the start of p[0..len). Returns the header's length (> 0) once it is
 * complete, 0 when more bytes are needed (len < PROXY_PROTO_MAX), or XTP_EBADFORMAT when p
 * does not start with a valid v1 or v2 header (or one longer than PROXY_PROTO_MAX). */
int proxy_proto_parse(const uint8_t *p, size_t len, struct proxy_proto *out);

#endif
