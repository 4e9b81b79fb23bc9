/* json.h: a small JSON (RFC 8259) writer into struct bytes, and a bounded strict parser for
 * what the proxy reads back (the `status` subcommand reads /status).
 *
 * The writer always produces valid JSON text: strings escape '"', '\\' and every control
 * character, keep well-formed UTF-8 as it is, and write U+FFFD for each ill-formed sequence
 * (Unicode §3.9 "maximal subpart" substitution), so certificate subjects or domains sent by
 * peers cannot break the document. Misuse (a value without a key in an object, unbalanced
 * ends, nesting beyond JSON_MAX_DEPTH) is a programming error and asserts.
 *
 * Leaf module: no libuv, no logging.  tests: test_json.c */
#ifndef XTP_JSON_H
#define XTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define JSON_MAX_DEPTH 32 /* writer and parser */

struct json {
    struct bytes *out; /* borrowed */
    int err;           /* first error (-ENOMEM); every later call does nothing */
    unsigned depth;    /* open objects and arrays */
    uint32_t comma;    /* bit d: a member or element was written at depth d */
    uint32_t object;   /* bit d: depth d is an object */
    bool key;          /* a key was written at this depth; its value comes next */
};

/* Starts a document appended to out. */
void json_init(struct json *j, struct bytes *out);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);

/* The next member's name, inside an object; escaped like a string. */
void json_key(struct json *j, const char *key);

/* A string value. json_string(j, NULL) writes null. */
void json_string(struct json *j, const char *s);
void json_string_n(struct json *j, const char *s, size_t len);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/* 0 once the document is complete (every object and array closed), else the first error
 * (-ENOMEM). */
int json_finish(const struct json *j);

/* Parsed values. Strings are decoded to UTF-8 and NUL-terminated (len excludes the NUL and
 * may count embedded NULs from "\u0000"). */
enum json_type { JSON_NULL = 0, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
    enum json_type type;
    char *key;   /* owned; the member name when the parent is an object, else NULL */
    bool b;      /* JSON_BOOL */
    bool is_int; /* JSON_NUMBER: an integer that fits i (no fraction or exponent) */
    int64_t i;   /* JSON_NUMBER when is_int */
    double d;    /* JSON_NUMBER, always */
    char *s;     /* owned; JSON_STRING */
    size_t len;  /* JSON_STRING: bytes in s; JSON_ARRAY / JSON_OBJECT: entries in items */
    struct json_value *items; /* owned; elements or members in document order */
};

/* Parses one JSON text (RFC 8259: any value, surrounding whitespace, nothing else; strict:
 * no comments, no trailing commas, raw UTF-8 must be well-formed, escaped surrogates must
 * pair). Nesting is limited to JSON_MAX_DEPTH. Returns 0 with *out (free with
 * json_value_free()), -EBADMSG with "offset N: what" in err, or -ENOMEM. */
int json_parse(const void *text, size_t len, struct json_value **out, char *err, size_t errlen);

void json_value_free(struct json_value *v); /* NULL is fine */

/* The first member named key of an object, or NULL (also when v is not an object). */
const struct json_value *json_get(const struct json_value *v, const char *key);

#endif
