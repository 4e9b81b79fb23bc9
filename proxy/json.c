/* json.c: see json.h. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Length of the well-formed UTF-8 sequence at s (1 to 4 bytes, Unicode §3.9 table 3-7), or 0
 * when s starts an ill-formed one; *bad then receives the length of its maximal subpart (at
 * least 1), the bytes one U+FFFD stands for. n >= 1. */
static size_t utf8_len(const uint8_t *s, size_t n, size_t *bad)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* ---- writer ---------------------------------------------------------------------------- */

static void put(struct json *j, const void *p, size_t n)
{
    if (j->err == 0)
        j->err = bytes_append(j->out, p, n);
}

static void puts_(struct json *j, const char *s)
{
    put(j, s, strlen(s));
}

void json_init(struct json *j, struct bytes *out)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
}

/* Called before every value: the comma between elements, and the key rule in objects. */
static void before_value(struct json *j)
{
    uint32_t bit = 1u << j->depth;

    if (j->object & bit) {
        XTP_ASSERT(j->key); /* a member needs json_key() first */
        j->key = false;
        return;
    }
    XTP_ASSERT(j->depth > 0 || !(j->comma & 1u)); /* one value at the top */
    if (j->comma & bit)
        put(j, ",", 1);
    j->comma |= bit;
}

static void open_(struct json *j, bool object)
{
    before_value(j);
    XTP_ASSERT(j->depth + 1 < JSON_MAX_DEPTH);
    j->depth++;
    j->comma &= ~(1u << j->depth);
    if (object)
        j->object |= 1u << j->depth;
    else
        j->object &= ~(1u << j->depth);
    put(j, object ? "{" : "[", 1);
}

static void close_(struct json *j, bool object)
{
    XTP_ASSERT(j->depth > 0);
    XTP_ASSERT(!!(j->object & (1u << j->depth)) == object);
    XTP_ASSERT(!j->key);
    j->depth--;
    put(j, object ? "}" : "]", 1);
}

void json_object_begin(struct json *j)
{
    open_(j, true);
}

void json_object_end(struct json *j)
{
    close_(j, true);
}

void json_array_begin(struct json *j)
{
    open_(j, false);
}

void json_array_end(struct json *j)
{
    close_(j, false);
}

/* RFC 8259 §7: '"', '\\' and U+0000..U+001F must be escaped; DEL is escaped too, so that
 * the output is safe to print on a terminal. */
static void put_quoted(struct json *j, const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t run = 0, i = 0;

    put(j, "\"", 1);
    while (i < len) {
        uint8_t c = s[i];
        char esc[8];
        size_t n, bad;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7F) {
            i++;
            run++;
            continue;
        }
        if (c >= 0x80 && (n = utf8_len(s + i, len - i, &bad)) > 0) {
            i += n;
            run += n;
            continue;
        }
        put(j, s + i - run, run);
        run = 0;
        if (c >= 0x80) {
            put(j, replacement, 3);
            i += bad;
            continue;
        }
        switch (c) {
        case '"':
            puts_(j, "\\\"");
            break;
        case '\\':
            puts_(j, "\\\\");
            break;
        case '\b':
            puts_(j, "\\b");
            break;
        case '\f':
            puts_(j, "\\f");
            break;
        case '\n':
            puts_(j, "\\n");
            break;
        case '\r':
            puts_(j, "\\r");
            break;
        case '\t':
            puts_(j, "\\t");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            puts_(j, esc);
            break;
        }
        i++;
    }
    put(j, s + i - run, run);
    put(j, "\"", 1);
}

void json_key(struct json *j, const char *key)
{
    uint32_t bit = 1u << j->depth;

    XTP_ASSERT(j->object & bit);
    XTP_ASSERT(!j->key);
    if (j->comma & bit)
        put(j, ",", 1);
    j->comma |= bit;
    put_quoted(j, key, strlen(key));
    put(j, ":", 1);
    j->key = true;
}

void json_string_n(struct json *j, const char *s, size_t len)
{
    before_value(j);
    put_quoted(j, s, len);
}

void json_string(struct json *j, const char *s)
{
    if (s == NULL)
        json_null(j);
    else
        json_string_n(j, s, strlen(s));
}

void json_int(struct json *j, int64_t v)
{
    char buf[24];

    before_value(j);
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    puts_(j, buf);
}

void json_uint(struct json *j, uint64_t v)
{
    char buf[24];

    before_value(j);
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    puts_(j, buf);
}

void json_bool(struct json *j, bool v)
{
    before_value(j);
    puts_(j, v ? "true" : "false");
}

void json_null(struct json *j)
{
    before_value(j);
    puts_(j, "null");
}

int json_finish(const struct json *j)
{
    if (j->err != 0)
        return j->err;
    XTP_ASSERT(j->depth == 0 && (j->comma & 1u));
    return 0;
}

/* ---- parser ---------------------------------------------------------------------------- */

struct parser {
    const uint8_t *s;
    size_t len, pos;
    int err; /* -EBADMSG or -ENOMEM once failed */
    char *msg;
    size_t msglen;
};

static int syntax(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int syntax(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->err != 0)
        return p->err;
    p->err = -EBADMSG;
    if (p->msglen == 0)
        return p->err;
    n = snprintf(p->msg, p->msglen, "offset %zu: ", p->pos);
    if (n >= 0 && (size_t)n < p->msglen) {
        va_start(ap, fmt);
        vsnprintf(p->msg + n, p->msglen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return p->err;
}

static int nomem(struct parser *p)
{
    if (p->err == 0)
        p->err = -ENOMEM;
    return p->err;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return syntax(p, "unexpected character");
    p->pos += n;
    return 0;
}

static int hex4(struct parser *p, unsigned *out)
{
    unsigned v = 0;

    if (p->len - p->pos < 4)
        return syntax(p, "truncated \\u escape");
    for (int k = 0; k < 4; k++) {
        uint8_t c = p->s[p->pos++];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return syntax(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* At the opening quote. The decoded string is never longer than its source text, so one
 * allocation of that size is enough. */
static int parse_string(struct parser *p, char **out, size_t *outlen)
{
    size_t start = ++p->pos, end = start, n = 0;
    char *o;

    while (end < p->len && p->s[end] != '"')
        end += p->s[end] == '\\' && end + 1 < p->len ? 2 : 1;
    if (end >= p->len)
        return syntax(p, "unterminated string");
    o = malloc(end - start + 1);
    if (o == NULL)
        return nomem(p);
    while (p->pos < end) {
        uint8_t c = p->s[p->pos];
        size_t bad, k;
        unsigned cp, lo;

        if (c < 0x20) {
            free(o);
            return syntax(p, "control character in string");
        }
        if (c >= 0x80) {
            k = utf8_len(p->s + p->pos, end - p->pos, &bad);
            if (k == 0) {
                free(o);
                return syntax(p, "ill-formed UTF-8");
            }
            memcpy(o + n, p->s + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        if (c != '\\') {
            o[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        switch (p->s[p->pos++]) {
        case '"':
            o[n++] = '"';
            break;
        case '\\':
            o[n++] = '\\';
            break;
        case '/':
            o[n++] = '/';
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'u':
            if (hex4(p, &cp) != 0)
                break;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                syntax(p, "unpaired surrogate");
                break;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* RFC 8259 §7: a character outside the BMP is a surrogate pair. */
                if (end - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    syntax(p, "unpaired surrogate");
                    break;
                }
                p->pos += 2;
                if (hex4(p, &lo) != 0)
                    break;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    syntax(p, "unpaired surrogate");
                    break;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(o + n, cp);
            break;
        default:
            p->pos--;
            syntax(p, "bad escape");
            break;
        }
        if (p->err != 0) {
            free(o);
            return p->err;
        }
    }
    p->pos = end + 1;
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return 0;
}

static int parse_number(struct parser *p, struct json_value *v)
{
    size_t start = p->pos;
    bool integer = true;
    char buf[64], *end;
    const uint8_t *s = p->s;

#define DIGIT(i) ((i) < p->len && s[i] >= '0' && s[i] <= '9')
    if (p->pos < p->len && s[p->pos] == '-')
        p->pos++;
    if (!DIGIT(p->pos))
        return syntax(p, "bad number");
    if (s[p->pos] == '0')
        p->pos++;
    else
        while (DIGIT(p->pos))
            p->pos++;
    if (p->pos < p->len && s[p->pos] == '.') {
        integer = false;
        p->pos++;
        if (!DIGIT(p->pos))
            return syntax(p, "bad number");
        while (DIGIT(p->pos))
            p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        integer = false;
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-'))
            p->pos++;
        if (!DIGIT(p->pos))
            return syntax(p, "bad number");
        while (DIGIT(p->pos))
            p->pos++;
    }
#undef DIGIT
    if (p->pos - start >= sizeof(buf))
        return syntax(p, "number too long");
    memcpy(buf, s + start, p->pos - start);
    buf[p->pos - start] = '\0';
    v->type = JSON_NUMBER;
    v->d = strtod(buf, NULL);
    if (integer) {
        errno = 0;
        v->i = strtoll(buf, &end, 10);
        v->is_int = errno == 0 && *end == '\0';
    }
    return 0;
}

static int parse_value(struct parser *p, struct json_value *v, unsigned depth);

/* At '[' or '{'. */
static int parse_container(struct parser *p, struct json_value *v, unsigned depth)
{
    bool object = p->s[p->pos] == '{';
    char close = object ? '}' : ']';
    size_t cap = 0;

    if (depth >= JSON_MAX_DEPTH)
        return syntax(p, "nested deeper than %d", JSON_MAX_DEPTH);
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        struct json_value *item;
        size_t klen;

        if (v->len == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct json_value *n = realloc(v->items, ncap * sizeof(*n));

            if (n == NULL)
                return nomem(p);
            v->items = n;
            cap = ncap;
        }
        item = &v->items[v->len];
        memset(item, 0, sizeof(*item));
        v->len++;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return syntax(p, "expected a member name");
            if (parse_string(p, &item->key, &klen) != 0)
                return p->err;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return syntax(p, "expected ':'");
            p->pos++;
        }
        if (parse_value(p, item, depth + 1) != 0)
            return p->err;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return syntax(p, "expected ',' or '%c'", close);
    }
}

static int parse_value(struct parser *p, struct json_value *v, unsigned depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return syntax(p, "unexpected end");
    switch (p->s[p->pos]) {
    case '{':
    case '[':
        return parse_container(p, v, depth);
    case '"':
        v->type = JSON_STRING;
        return parse_string(p, &v->s, &v->len);
    case 't':
        v->type = JSON_BOOL;
        v->b = true;
        return literal(p, "true");
    case 'f':
        v->type = JSON_BOOL;
        return literal(p, "false");
    case 'n':
        v->type = JSON_NULL;
        return literal(p, "null");
    default:
        return parse_number(p, v);
    }
}

static void value_cleanup(struct json_value *v)
{
    for (size_t i = 0; v->items != NULL && i < v->len; i++)
        value_cleanup(&v->items[i]);
    free(v->items);
    free(v->key);
    free(v->s);
}

void json_value_free(struct json_value *v)
{
    if (v == NULL)
        return;
    value_cleanup(v);
    free(v);
}

int json_parse(const void *text, size_t len, struct json_value **out, char *err, size_t errlen)
{
    struct parser p = {text, len, 0, 0, err, errlen};
    struct json_value *v = calloc(1, sizeof(*v));

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (v == NULL)
        return -ENOMEM;
    if (parse_value(&p, v, 0) == 0) {
        skip_ws(&p);
        if (p.pos != p.len)
            syntax(&p, "data after the value");
    }
    if (p.err != 0) {
        if (p.err == -ENOMEM && errlen > 0)
            snprintf(err, errlen, "out of memory");
        json_value_free(v);
        return p.err;
    }
    *out = v;
    return 0;
}

const struct json_value *json_get(const struct json_value *v, const char *key)
{
    if (v == NULL || v->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->items[i].key, key) == 0)
            return &v->items[i];
    return NULL;
}
