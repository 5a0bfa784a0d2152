/* Host names compared the one way: Host values, :authority and SNI names
 * normalized (case, port, trailing dot, IPv6 literals, what is refused),
 * and site names matched exactly or by "*." for every name below. */
#include "harness.h"
#include "core/host.h"

#include <string.h>

static void normalized(const char *in, const char *want)
{
    char out[HOST_MAX + 1];
    int n = host_normalize(in, strlen(in), out);
    if (!want) {
        if (n >= 0)
            fail_msg("'%s' taken as '%s'", in, out);
        return;
    }
    if (n < 0)
        fail_msg("'%s' refused, wanted '%s'", in, want);
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
}

static void normalize(void **state)
{
    (void)state;
    normalized("example.com", "example.com");
    normalized("Example.COM", "example.com");
    normalized("example.com:8080", "example.com");
    normalized("example.com.", "example.com");
    normalized("EXAMPLE.com.:443", "example.com");
    normalized("example.com:", "example.com"); /* an empty port (RFC 3986 §3.2.3) */
    normalized("127.0.0.1:7878", "127.0.0.1");
    normalized("[::1]:8443", "[::1]");
    normalized("[2001:DB8::A]", "[2001:db8::a]");
    normalized("a_b.test", "a_b.test");
    normalized("localhost", "localhost");
    /* Refused. */
    const char *bad[] = {"", ":80", ".", "..", "a..b", ".a", "a.b..", "a b", "a/b", "a@b",
                         "a%2eb", "example.com:8o", "example.com:80:1", "[::1", "[]", "[g::1]",
                         "[::1]x", "é.test", "a\tb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        normalized(bad[i], NULL);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    normalized(longname, NULL);
    longname[HOST_MAX] = 0;
    normalized(longname, longname);
    /* Only the bytes given count: no NUL needed. */
    char out[HOST_MAX + 1];
    assert_int_equal(host_normalize("a.test:80garbage", 9, out), 6);
    assert_string_equal(out, "a.test");
}

static void without_port(void **state)
{
    (void)state;
    assert_int_equal(host_without_port("h:80", 4), 1);
    assert_int_equal(host_without_port("h", 1), 1);
    assert_int_equal(host_without_port("[::1]:80", 8), 5);
    assert_int_equal(host_without_port("[::1", 4), 4);
}

static void names_match(void **state)
{
    (void)state;
    assert_true(host_name_matches("example.com", "example.com", 11));
    assert_false(host_name_matches("example.com", "www.example.com", 15));
    assert_false(host_name_matches("example.com", "example.co", 10));
    assert_true(host_name_matches("*.example.com", "www.example.com", 15));
    assert_true(host_name_matches("*.example.com", "a.b.example.com", 15));
    assert_false(host_name_matches("*.example.com", "example.com", 11));
    assert_false(host_name_matches("*.example.com", "wwwexample.com", 14));
    assert_true(host_name_matches("[::1]", "[::1]", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize),
        cmocka_unit_test(without_port),
        cmocka_unit_test(names_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
