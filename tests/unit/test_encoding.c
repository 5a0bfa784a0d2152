/* Accept-Encoding negotiation: q-values, "*", identity, malformed
 * elements, and which precompressed variants exist. */
#include "harness.h"
#include "files/encoding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID CODING_IDENTITY
#define GZ CODING_GZIP
#define BR CODING_BR

/* One header value and the pick for each set of variants on disk. */
typedef struct ae_case {
    const char *value; /* NULL: no Accept-Encoding field */
    enum content_coding both, br_only, gzip_only;
} ae_case;

static const char *coding_name(enum content_coding c)
{
    return c == BR ? "br" : c == GZ ? "gzip" : "identity";
}

static void check(const char *value, size_t len, bool br, bool gz, enum content_coding want,
                  const char *label)
{
    enum content_coding got = encoding_pick(value, len, br, gz);
    if (got != want)
        fail_msg("'%s' (br %d, gzip %d): %s, wanted %s", label, br, gz, coding_name(got),
                 coding_name(want));
}

static void run_table(const ae_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = cases[i].value;
        size_t len = v ? strlen(v) : 0;
        const char *label = v ? v : "(absent)";
        check(v, len, true, true, cases[i].both, label);
        check(v, len, true, false, cases[i].br_only, label);
        check(v, len, false, true, cases[i].gzip_only, label);
        check(v, len, false, false, ID, label); /* nothing precompressed */
    }
}

#define RUN(table) run_table(table, sizeof(table) / sizeof(table[0]))

static void basics(void **state)
{
    (void)state;
    static const ae_case cases[] = {
        /* value                       both br-only gzip-only */
        {NULL, ID, ID, ID},
        {"", ID, ID, ID}, /* an empty field wants no coding */
        {"gzip", GZ, ID, GZ},
        {"br", BR, BR, ID},
        {"gzip, br", BR, BR, GZ},
        {"br, gzip", BR, BR, GZ},
        {"gzip, deflate, br, zstd", BR, BR, GZ},
        {"deflate", ID, ID, ID},
        {"identity", ID, ID, ID},
        {"x-gzip", GZ, ID, GZ},
        {"GZIP", GZ, ID, GZ},
        {"Br", BR, BR, ID},
        {"X-GZip", GZ, ID, GZ},
        {"gzip2, brotli, xgzip", ID, ID, ID}, /* names match whole */
    };
    RUN(cases);
}

static void q_values(void **state)
{
    (void)state;
    static const ae_case cases[] = {
        {"br;q=0.5, gzip;q=0.8", GZ, BR, GZ},
        {"br;q=0.8, gzip;q=0.5", BR, BR, GZ},
        {"br;q=0.5, gzip;q=0.5", BR, BR, GZ}, /* equal: br */
        {"br;q=1.0", BR, BR, ID},
        {"br;q=1.000, gzip;q=1", BR, BR, GZ},
        {"br;Q=0.9, gzip;q=0.3", BR, BR, GZ}, /* "q" is case-insensitive */
        {"gzip;q=0", ID, ID, ID},
        {"gzip;q=0.000", ID, ID, ID},
        {"gzip;q=0, br", BR, BR, ID},
        {"br;q=0, gzip", GZ, ID, GZ},
        {"br;q=0, gzip;q=0", ID, ID, ID},
        {"gzip;q=0.001", GZ, ID, GZ}, /* the smallest q still accepts */
        {"gzip;q=1.", GZ, ID, GZ},
        {"gzip;q=0.", ID, ID, ID},
        /* Listed twice: the higher q counts, in either order. */
        {"gzip;q=0, gzip", GZ, ID, GZ},
        {"gzip, gzip;q=0", GZ, ID, GZ},
        {"gzip;q=0.2, x-gzip;q=0.9, br;q=0.5", GZ, BR, GZ},
    };
    RUN(cases);
}

static void bad_q_values_skip_the_element(void **state)
{
    (void)state;
    static const ae_case cases[] = {
        {"gzip;q=2", ID, ID, ID},
        {"gzip;q=abc", ID, ID, ID},
        {"gzip;q=0.1234", ID, ID, ID},
        {"gzip;q=1.001", ID, ID, ID},
        {"gzip;q=1.5", ID, ID, ID},
        {"gzip;q=-1", ID, ID, ID},
        {"gzip;q=.5", ID, ID, ID},
        {"gzip;q=", ID, ID, ID},
        {"gzip;q", ID, ID, ID},
        {"gzip;", ID, ID, ID},
        {"gzip;q=0.5x", ID, ID, ID},
        {"gzip;q=0.5;q=1", ID, ID, ID},
        {"gzip;level=9", ID, ID, ID},
        {"gzip q=0.5", ID, ID, ID},
        {"gzip;q = 0.5", ID, ID, ID}, /* no whitespace around "=" */
        {"gzip;q=2, br", BR, BR, ID}, /* only the bad element goes */
        {"br;q=0.1234, gzip;q=0.1", GZ, ID, GZ},
        {"\"gzip\"", ID, ID, ID},
        {"gzip;x=\"a,b\", br", BR, BR, ID},
        {"gz(ip), br", BR, BR, ID},
        {";q=1", ID, ID, ID},
    };
    RUN(cases);
}

static void star_and_identity(void **state)
{
    (void)state;
    static const ae_case cases[] = {
        {"*", BR, BR, GZ},
        {"*;q=0", ID, ID, ID},
        {"*;q=0, identity", ID, ID, ID},
        {"*;q=0, gzip", GZ, ID, GZ},
        {"gzip, *;q=0", GZ, ID, GZ},
        {"br;q=0, *", GZ, ID, GZ},   /* "*" covers only what is not listed */
        {"gzip;q=0, *", BR, BR, ID},
        {"*;q=0.5, gzip", GZ, BR, GZ},
        {"*, gzip;q=0.1", BR, BR, ID}, /* identity, through "*", beats q=0.1 */
        /* Identity named with a higher q than the codings wins. */
        {"gzip;q=0.5, identity", ID, ID, ID},
        {"gzip;q=0.5, identity;q=0.5", GZ, ID, GZ},
        {"br;q=0.4, identity;q=0.6, gzip;q=0.8", GZ, ID, GZ},
        {"br;q=0.5, *", GZ, ID, GZ}, /* "*" gives identity q=1 too */
        {"identity;q=0", ID, ID, ID}, /* refused, but nothing else asked for */
        {"identity;q=0, gzip;q=0.1", GZ, ID, GZ},
        /* Unnamed identity ranks below any coding asked for. */
        {"gzip;q=0.1", GZ, ID, GZ},
    };
    RUN(cases);
}

static void whitespace_and_empty_elements(void **state)
{
    (void)state;
    static const ae_case cases[] = {
        {"  gzip  ", GZ, ID, GZ},
        {"\tgzip\t", GZ, ID, GZ},
        {"gzip ;q=0.5", GZ, ID, GZ},
        {"gzip; q=0.5", GZ, ID, GZ},
        {"gzip \t ; \t q=0.5 , br;q=0.2", GZ, BR, GZ},
        {"gzip,br", BR, BR, GZ},
        {"br;q=0.5,gzip;q=0.8", GZ, BR, GZ},
        {" , ,gzip,, ", GZ, ID, GZ},
        {",", ID, ID, ID},
        {" ", ID, ID, ID},
        {"gzip\r\n", ID, ID, ID}, /* not OWS: the element is garbage */
    };
    RUN(cases);
}

/* The length bounds the value: bytes after it are never read. */
static void honours_len(void **state)
{
    (void)state;
    const char v[] = "gzip, br";
    check(v, 4, true, true, GZ, "gzip|, br");
    check(v, 0, true, true, ID, "|gzip, br");
    check("br;q=0.5, gzip;q=0", 8, true, true, BR, "br;q=0.5|");
    check("br;q=0.5", 7, true, true, ID, "br;q=0.|5"); /* "br;q=0." */
    /* A value that is not NUL-terminated at all. */
    char *heap = malloc(4);
    assert_non_null(heap);
    memcpy(heap, "gzip", 4);
    check(heap, 4, true, true, GZ, "gzip (unterminated)");
    free(heap);
    /* A NUL inside the value makes that element garbage. */
    check("gz\0ip, br", 9, true, true, BR, "gz\\0ip, br");
}

static void very_long_values(void **state)
{
    (void)state;
    /* 100,000 unknown codings, then br: linear, no limit on elements. */
    size_t n = 100000, cap = n * 12 + 32, len = 0;
    char *v = malloc(cap);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(v + len, cap - len, "x%zu;q=0.5, ", i % 1000);
    len += (size_t)snprintf(v + len, cap - len, "br;q=0.9");
    check(v, len, true, true, BR, "(long list, then br)");
    check(v, len, false, true, ID, "(long list, then br)");
    /* One name 1 MB long. */
    free(v);
    len = 1 << 20;
    v = malloc(len + 16);
    assert_non_null(v);
    memset(v, 'a', len);
    memcpy(v + len, ", gzip;q=0.3", 12);
    check(v, len + 12, true, true, GZ, "(1 MB name, gzip)");
    /* Whitespace running on for 1 MB around an element. */
    memset(v, ' ', len);
    memcpy(v + len / 2, "br", 2);
    check(v, len, true, true, BR, "(1 MB of spaces around br)");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basics),
        cmocka_unit_test(q_values),
        cmocka_unit_test(bad_q_values_skip_the_element),
        cmocka_unit_test(star_and_identity),
        cmocka_unit_test(whitespace_and_empty_elements),
        cmocka_unit_test(honours_len),
        cmocka_unit_test(very_long_values),
    };
    return cmocka_run_group_tests_name("encoding", tests, NULL, NULL);
}
