/* eddy's request rules over single characters and values: the fast forms
 * must agree with the RFC's character classes for every byte. */
#include "harness.h"

#include "http/rules.h"

#include <string.h>

static bool value_byte_allowed(unsigned char ch)
{
    /* field-vchar = VCHAR / obs-text, plus SP and HTAB (RFC 9110 §5.5). */
    return ch == ' ' || ch == '\t' || (ch >= 0x21 && ch <= 0x7e) || ch >= 0x80;
}

static void field_value_every_byte_at_every_position(void **state)
{
    (void)state;
    /* Lengths around the 8-byte steps, each byte value at each position,
     * amid bytes that are fine (some of them tabs, which flag a word). */
    for (size_t len = 1; len <= 19; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (int ch = 0; ch < 256; ch++) {
                char v[19];
                for (size_t i = 0; i < len; i++)
                    v[i] = i % 5 == 4 ? '\t' : (char)('a' + i);
                v[pos] = (char)ch;
                assert_int_equal(field_value_ok(v, len), value_byte_allowed((unsigned char)ch));
            }
        }
    }
    assert_true(field_value_ok("", 0));
    assert_true(field_value_ok("caf\xc3\xa9 \xff\x80 ok", 11));
    assert_false(field_value_ok("a\r\n b", 5)); /* obs-fold */
}

static void host_characters(void **state)
{
    (void)state;
    const char *ok[] = {"example.com", "127.0.0.1:8080", "[::1]:80", "a-b_c~d!$&'()*+,;=",
                        "%41.example", "", "host:", "[v1.x]"};
    const char *bad[] = {"exa mple", "a/b", "a@b", "a:8x", "%4", "%zz", "[::1", "[]",
                         "a\"b", "a{b", "x:1:2"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(rules_host_ok(ok[i], strlen(ok[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rules_host_ok(bad[i], strlen(bad[i])));
    /* Every byte as a one-character host: letters, digits and the RFC 3986
     * unreserved and sub-delims only ('%' needs two hex digits after it). */
    for (int ch = 0; ch < 256; ch++) {
        char h = (char)ch;
        bool want = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || (ch && strchr("-._~!$&'()*+,;=", ch));
        assert_int_equal(rules_host_ok(&h, 1), want || ch == ':');
    }
}

/* A token of a comma-separated list, whatever the case and the spaces
 * around it; never part of a longer one. */
static void list_has_its_tokens_only(void **state)
{
    (void)state;
    const char *v = "keep-alive, Upgrade ,\tX-Drop,,";
    assert_true(field_list_has(v, strlen(v), "upgrade", 7));
    assert_true(field_list_has(v, strlen(v), "keep-alive", 10));
    assert_true(field_list_has(v, strlen(v), "x-drop", 6));
    assert_false(field_list_has(v, strlen(v), "up", 2));
    assert_false(field_list_has(v, strlen(v), "upgrades", 8));
    assert_false(field_list_has(v, strlen(v), "", 0));
    assert_false(field_list_has("", 0, "upgrade", 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(field_value_every_byte_at_every_position),
        cmocka_unit_test(list_has_its_tokens_only),
        cmocka_unit_test(host_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
