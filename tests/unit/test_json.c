/* Unit tests for json.c: the writer behind /status and the parser the status subcommand
 * reads it with. */
#include "json.h"

#include <errno.h>

#include "test.h"

/* Writes one string value and returns the JSON text (static buffer). */
static const char *quoted(const char *s, size_t len)
{
    static char out[1024];
    struct bytes b = BYTES_INIT;
    struct json j;

    json_init(&j, &b);
    json_string_n(&j, s, len);
    EXPECT_EQ(0, json_finish(&j));
    snprintf(out, sizeof(out), "%.*s", (int)bytes_len(&b), (const char *)bytes_data(&b));
    bytes_cleanup(&b);
    return out;
}

TEST(json_writer_structure)
{
    struct bytes b = BYTES_INIT;
    struct json j;
    static const char want[] =
        "{\"a\":1,\"b\":[true,false,null,\"x\",{},[]],\"c\":{\"d\":-9223372036854775808,"
        "\"e\":18446744073709551615},\"f\":null}";

    json_init(&j, &b);
    json_object_begin(&j);
    json_key(&j, "a");
    json_int(&j, 1);
    json_key(&j, "b");
    json_array_begin(&j);
    json_bool(&j, true);
    json_bool(&j, false);
    json_null(&j);
    json_string(&j, "x");
    json_object_begin(&j);
    json_object_end(&j);
    json_array_begin(&j);
    json_array_end(&j);
    json_array_end(&j);
    json_key(&j, "c");
    json_object_begin(&j);
    json_key(&j, "d");
    json_int(&j, INT64_MIN);
    json_key(&j, "e");
    json_uint(&j, UINT64_MAX);
    json_object_end(&j);
    json_key(&j, "f");
    json_string(&j, NULL);
    json_object_end(&j);
    EXPECT_EQ(0, json_finish(&j));
    EXPECT_MEM(want, sizeof(want) - 1, bytes_data(&b), bytes_len(&b));
    bytes_cleanup(&b);
}

static const struct {
    const char *in;
    size_t len; /* 0: strlen */
    const char *want;
} escapes[] = {
    {"plain", 0, "\"plain\""},
    {"", 0, "\"\""},
    {"q\"b\\s/", 0, "\"q\\\"b\\\\s/\""},
    {"\b\f\n\r\t", 0, "\"\\b\\f\\n\\r\\t\""},
    {"\x01\x1f\x7f", 0, "\"\\u0001\\u001f\\u007f\""},
    {"a\0b", 3, "\"a\\u0000b\""},
    {"\x1b[31mred", 0, "\"\\u001b[31mred\""},
    /* Well-formed UTF-8 stays as it is. */
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92 \xef\xbf\xbd", 0,
     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92 \xef\xbf\xbd\""},
    {"\xe2\x80\xa8", 0, "\"\xe2\x80\xa8\""},
    /* Ill-formed: one U+FFFD per maximal subpart (Unicode §3.9). */
    {"\xff", 0, "\"\xef\xbf\xbd\""},
    {"a\x80z", 0, "\"a\xef\xbf\xbdz\""},
    {"\xc3", 0, "\"\xef\xbf\xbd\""},
    {"\xc3(", 0, "\"\xef\xbf\xbd(\""},
    {"\xc0\xaf", 0, "\"\xef\xbf\xbd\xef\xbf\xbd\""}, /* overlong '/' */
    {"\xe0\x80\xaf", 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
    {"\xed\xa0\x80", 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* a surrogate */
    {"\xe2\x82", 0, "\"\xef\xbf\xbd\""},                             /* truncated, one subpart */
    {"\xe2\x82x", 0, "\"\xef\xbf\xbdx\""},
    {"\xf0\x9f\x94", 0, "\"\xef\xbf\xbd\""},
    {"\xf4\x90\x80\x80", 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
    {"\xf5\x80", 0, "\"\xef\xbf\xbd\xef\xbf\xbd\""},
    {"\xc3\"", 0, "\"\xef\xbf\xbd\\\"\""},
};

TEST(json_string_escapes)
{
    for (size_t i = 0; i < ARRAY_SIZE(escapes); i++) {
        size_t len = escapes[i].len ? escapes[i].len : strlen(escapes[i].in);

        EXPECT_STR_MSG(escapes[i].want, quoted(escapes[i].in, len), "row %zu", i);
    }
}

TEST(json_key_escaped)
{
    struct bytes b = BYTES_INIT;
    struct json j;
    static const char want[] = "{\"a\\\"b\\n\":0}";

    json_init(&j, &b);
    json_object_begin(&j);
    json_key(&j, "a\"b\n");
    json_int(&j, 0);
    json_object_end(&j);
    EXPECT_EQ(0, json_finish(&j));
    EXPECT_MEM(want, sizeof(want) - 1, bytes_data(&b), bytes_len(&b));
    bytes_cleanup(&b);
}

/* Whatever bytes go in, the writer's output parses, and well-formed input comes back equal. */
TEST(json_writer_output_always_parses)
{
    uint32_t seed = 12345;
    int parsed = 0, equal = 0, wellformed = 0;

    for (int round = 0; round < 5000; round++) {
        uint8_t in[48];
        size_t len = round % 48;
        struct bytes b = BYTES_INIT;
        struct json j;
        struct json_value *v = NULL;
        char err[128];
        bool valid;

        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            /* Mostly high bytes and controls: the interesting ones. */
            in[k] = (uint8_t)((seed >> 16) % 4 == 0 ? 'a' + (seed >> 20) % 26 : (seed >> 8));
        }
        json_init(&j, &b);
        json_array_begin(&j);
        json_string_n(&j, (const char *)in, len);
        json_array_end(&j);
        EXPECT_EQ(0, json_finish(&j));
        if (json_parse(bytes_data(&b), bytes_len(&b), &v, err, sizeof(err)) == 0) {
            parsed++;
            /* Valid iff the writer did not substitute U+FFFD (the random input has none of
             * its own unless it happens to be well-formed; then equality still holds). */
            valid = v->len == 1 && v->items[0].len == len && memcmp(v->items[0].s, in, len) == 0;
            equal += valid;
            wellformed += memmem(bytes_data(&b), bytes_len(&b), "\xef\xbf\xbd", 3) == NULL;
        } else {
            EXPECT_MSG(0, "round %d: %s", round, err);
        }
        json_value_free(v);
        bytes_cleanup(&b);
    }
    EXPECT_EQ(5000, parsed);
    EXPECT_EQ(wellformed, equal); /* no substitution <=> the string came back unchanged */
    EXPECT(wellformed > 10);
}

TEST(json_parse_values)
{
    static const char doc[] =
        " {\"s\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\udd12\\u0000z\","
        "\"n\":[0,-1,9223372036854775807,9223372036854775808,1.5,-2e3,1E+2,0.0],"
        "\"t\":true,\"f\":false,\"z\":null,\"o\":{\"k\":{}},\"e\":[],\"u\":\"caf\xc3\xa9\"} ";
    struct json_value *v;
    const struct json_value *n, *s;
    char err[128];

    EXPECT_EQ(0, json_parse(doc, sizeof(doc) - 1, &v, err, sizeof(err)));
    if (v == NULL)
        return;
    EXPECT_EQ(JSON_OBJECT, v->type);
    EXPECT_EQ(8, v->len);
    s = json_get(v, "s");
    EXPECT(s != NULL && s->type == JSON_STRING);
    EXPECT_MEM("a\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92\0z", 20, s->s, s->len);
    n = json_get(v, "n");
    EXPECT(n != NULL && n->type == JSON_ARRAY && n->len == 8);
    EXPECT(n->items[0].is_int && n->items[0].i == 0);
    EXPECT(n->items[1].is_int && n->items[1].i == -1);
    EXPECT(n->items[2].is_int && n->items[2].i == INT64_MAX);
    EXPECT(!n->items[3].is_int && n->items[3].d > 9.2e18);
    EXPECT(!n->items[4].is_int && n->items[4].d == 1.5);
    EXPECT(!n->items[5].is_int && n->items[5].d == -2000);
    EXPECT(!n->items[6].is_int && n->items[6].d == 100);
    EXPECT_EQ(JSON_BOOL, json_get(v, "t")->type);
    EXPECT(json_get(v, "t")->b);
    EXPECT(!json_get(v, "f")->b);
    EXPECT_EQ(JSON_NULL, json_get(v, "z")->type);
    EXPECT_EQ(JSON_OBJECT, json_get(json_get(v, "o"), "k")->type);
    EXPECT_EQ(0, json_get(v, "e")->len);
    EXPECT_STR("caf\xc3\xa9", json_get(v, "u")->s);
    EXPECT(json_get(v, "missing") == NULL);
    EXPECT(json_get(n, "s") == NULL); /* not an object */
    json_value_free(v);
    json_value_free(NULL);
}

static const char *const bad_docs[] = {
    "",
    " ",
    "{",
    "[1,]",
    "{\"a\":1,}",
    "{\"a\" 1}",
    "{a:1}",
    "[01]",
    "[1.]",
    "[.5]",
    "[-]",
    "[1e]",
    "[+1]",
    "tru",
    "nul",
    "[true false]",
    "\"unterminated",
    "\"ctl\x01\"",
    "\"tab\there\"",
    "\"bad\\x\"",
    "\"\\u12\"",
    "\"\\uZZZZ\"",
    "\"\\ud800\"",
    "\"\\ud800\\u0041\"",
    "\"\\udc00\"",
    "\"\xff\"",
    "\"\xc0\xaf\"",
    "\"\xed\xa0\x80\"",
    "1 2",
    "{} x",
    "// comment\n{}",
    "'single'",
    "[NaN]",
    "[Infinity]",
    "\"\\",
};

TEST(json_parse_rejects)
{
    for (size_t i = 0; i < ARRAY_SIZE(bad_docs); i++) {
        struct json_value *v = (struct json_value *)1;
        char err[128] = "";

        EXPECT_EQ_MSG(-EBADMSG, json_parse(bad_docs[i], strlen(bad_docs[i]), &v, err, sizeof(err)),
                      "doc %zu", i);
        EXPECT_MSG(v == NULL, "doc %zu", i);
        EXPECT_MSG(strncmp(err, "offset ", 7) == 0, "doc %zu: %s", i, err);
    }
}

TEST(json_parse_depth_limit)
{
    char doc[2 * JSON_MAX_DEPTH + 8];
    struct json_value *v;
    char err[128];
    size_t n;

    for (n = 0; n < JSON_MAX_DEPTH; n++)
        doc[n] = '[';
    for (size_t k = 0; k < JSON_MAX_DEPTH; k++)
        doc[n++] = ']';
    EXPECT_EQ(0, json_parse(doc, n, &v, err, sizeof(err)));
    json_value_free(v);
    memmove(doc + 1, doc, n);
    doc[0] = '[';
    doc[++n] = ']';
    n++;
    EXPECT_EQ(-EBADMSG, json_parse(doc, n, &v, err, sizeof(err)));
    EXPECT(strstr(err, "deeper") != NULL);
}

/* Big arrays grow; every element is freed (ASan checks). */
TEST(json_parse_large)
{
    struct bytes b = BYTES_INIT;
    struct json j;
    struct json_value *v;
    char err[64];

    json_init(&j, &b);
    json_array_begin(&j);
    for (int i = 0; i < 20000; i++) {
        json_object_begin(&j);
        json_key(&j, "i");
        json_int(&j, i);
        json_key(&j, "s");
        json_string(&j, "value");
        json_object_end(&j);
    }
    json_array_end(&j);
    EXPECT_EQ(0, json_finish(&j));
    EXPECT_EQ(0, json_parse(bytes_data(&b), bytes_len(&b), &v, err, sizeof(err)));
    EXPECT_EQ(20000, v->len);
    EXPECT_EQ(19999, json_get(&v->items[19999], "i")->i);
    json_value_free(v);
    bytes_cleanup(&b);
}

TEST_MAIN(json_writer_structure, json_string_escapes, json_key_escaped,
          json_writer_output_always_parses, json_parse_values, json_parse_rejects,
          json_parse_depth_limit, json_parse_large)
