/* err.c: text for the error table in err.h. */
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define XX(code, text) [XTP_##code - XTP__EBASE - 1] = text,
static const char *const texts[] = {XTP_ERRNO_MAP(XX)};
#undef XX
#define XX(code, _) [XTP_##code - XTP__EBASE - 1] = #code,
static const char *const names[] = {XTP_ERRNO_MAP(XX)};
#undef XX

static int is_xtp(int err)
{
    return err > XTP__EBASE && err < XTP__ELAST;
}

const char *xtp_strerror(int err)
{
    if (err == 0)
        return "success";
    if (is_xtp(err))
        return texts[err - XTP__EBASE - 1];
    return uv_strerror(err); /* -errno and UV_E*; "Unknown system error" otherwise */
}

const char *xtp_err_name(int err)
{
    if (err == 0)
        return "OK";
    if (is_xtp(err))
        return names[err - XTP__EBASE - 1];
    return uv_err_name(err);
}

void xtp_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
