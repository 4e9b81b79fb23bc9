/* fuzz_proxy_proto.c: proxy_proto_parse() on arbitrary bytes, whole and as every prefix of a
 * fuzzer-chosen length: the answer for a prefix must agree with the whole (need more / the
 * same header length / refusal), and a parsed header never claims more bytes than given. */
#include "proxy_proto.h"

#include <stdint.h>
#include <stdlib.h>

#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_proto pp;
    int whole = proxy_proto_parse(data, size, &pp);

    if (whole > 0 && (size_t)whole > size)
        abort();
    if (whole == 0 && size >= PROXY_PROTO_MAX)
        abort(); /* must decide once it has the maximum */
    for (size_t n = 0; n < size && n < PROXY_PROTO_MAX; n++) {
        int part = proxy_proto_parse(data, n, &pp);

        if (part > 0 && part != whole)
            abort(); /* a complete header is complete whatever follows */
        if (part == XTP_EBADFORMAT && whole != XTP_EBADFORMAT)
            abort(); /* a refused prefix cannot become valid */
        if (part != XTP_EBADFORMAT && part != 0 && part <= 0)
            abort();
    }
    return 0;
}
