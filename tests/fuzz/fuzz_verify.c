/* fuzz_verify.c: verify.c on arbitrary bytes.
 *
 * The whole input is a DER certificate for verify_cert() (flags 0, domain other.test, one SRV
 * target), then the same with a DANE-EE record naming exactly these bytes, which must match
 * whenever the certificate parses; verify_tlsa() also gets records that cannot match. The
 * input is also read as one GeneralName (first byte the tag, the rest its contents) for
 * verify_general_name(), and as "presented\nreference" for verify_dns_id(). Every result is
 * checked against what verify.h promises. Seeds: the DER of tests/certs leaves, cuts of them,
 * and GeneralNames. */
#include "verify.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_verify: invariant failed: %s\n", #cond);                         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated field of printable ASCII only. */
static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);

    CHECK(n < cap);
    for (size_t i = 0; i < n; i++)
        CHECK(s[i] >= 0x20 && s[i] < 0x7f);
}

static void check_res(int rc, const struct verify_res *res)
{
    CHECK(rc == res->err);
    CHECK(rc == 0 || rc == XTP_ENOCERT || rc == XTP_EUNTRUSTED || rc == XTP_EEXPIRED ||
          rc == XTP_EVERIFY || rc == XTP_EDANE);
    CHECK((rc == 0) == (res->how != NULL));
    CHECK(res->why[0] != '\0');
    check_text(res->why, sizeof(res->why));
    check_text(res->subject, sizeof(res->subject));
    check_text(res->sans, sizeof(res->sans));
    CHECK(strnlen(res->fp_sha256, sizeof(res->fp_sha256)) == 64 || rc == XTP_ENOCERT);
}

static void fuzz_cert(const uint8_t *data, size_t size)
{
    static const char *const targets[] = {"xmpp.other.test"};
    static const uint8_t zeros[64];
    struct verify_der d = {data, size};
    struct verify_req r = {.chain = &d, .nchain = 1, .domain = "other.test"};
    struct verify_tlsa_rr rr[4] = {
        {0, 0, 1, zeros, 32},
        {1, 1, 2, zeros, 64},
        {2, 1, 1, zeros, 32},
        {3, 0, 0, data, size},
    };
    struct verify_res plain, dane;
    bool parsed;
    int rc;

    r.srv_targets = targets;
    r.nsrv_targets = 1;
    rc = verify_cert(&r, &plain);
    check_res(rc, &plain);
    parsed = rc != XTP_ENOCERT && strcmp(plain.why, "malformed certificate") != 0;

    /* DANE-EE on these very bytes: matches exactly when they parse (RFC 7671 §5.1). */
    r.tlsa = rr;
    r.ntlsa = 4;
    rc = verify_cert(&r, &dane);
    check_res(rc, &dane);
    CHECK((rc == 0) == parsed);
    CHECK(strcmp(plain.fp_sha256, dane.fp_sha256) == 0);
    CHECK(verify_tlsa(&d, 1, 0, rr, 3) == XTP_EDANE);

    /* A two-certificate chain of the same bytes: the leaf is never its own anchor. */
    {
        struct verify_der two[2] = {{data, size}, {data, size}};
        struct verify_tlsa_rr ta = {2, 0, 0, data, size};

        CHECK(verify_tlsa(two, size > 0 ? 2 : 0, 0, &ta, 1) == XTP_EDANE);
    }
}

static void fuzz_general_name(const uint8_t *data, size_t size)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    enum verify_id id;

    if (size == 0)
        return;
    id = verify_general_name(data[0], data + 1, size - 1, &v, &n);
    if (id != VERIFY_ID_NONE) {
        CHECK(n > 0 && v >= data + 1 && v + n <= data + size);
        if (id != VERIFY_ID_DNS)
            CHECK(v + n == data + size); /* strict DER: nothing may trail */
    }
}

static void fuzz_dns_id(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char *nl;

    if (buf == NULL)
        return;
    memcpy(buf, data, size);
    buf[size] = '\0';
    nl = strchr(buf, '\n');
    if (nl != NULL) {
        *nl = '\0';
        if (verify_dns_id(buf, nl + 1)) {
            /* A reference never holds a wildcard. */
            CHECK(strchr(nl + 1, '*') == NULL);
        }
    }
    (void)verify_dns_id(buf, buf);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cert(data, size);
    fuzz_general_name(data, size);
    fuzz_dns_id(data, size);
    return 0;
}
