/* Content types: built-ins, parsing a mime.types file, the web essentials
 * that a file cannot change, and the system's own file. */
#include "harness.h"
#include "files/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OCTET "application/octet-stream"

static void expect(const mime_table *t, const char *name, const char *type)
{
    const char *got = mime_table_lookup(t, name);
    if (strcmp(got, type) != 0)
        fail_msg("%s: '%s', wanted '%s'", name, got, type);
}

/* Writes data (len bytes, NULs allowed) to a fresh temporary file whose
 * path is left in path. */
static void write_temp(char path[64], const char *data, size_t len)
{
    snprintf(path, 64, "/tmp/eddy-mime-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* The web essentials, with the types browsers insist on. */
static void expect_essentials(const mime_table *t)
{
    expect(t, "index.html", "text/html; charset=utf-8");
    expect(t, "old.htm", "text/html; charset=utf-8");
    expect(t, "app.js", "text/javascript; charset=utf-8");
    expect(t, "mod.mjs", "text/javascript; charset=utf-8");
    expect(t, "site.css", "text/css; charset=utf-8");
    expect(t, "logo.svg", "image/svg+xml");
    expect(t, "data.json", "application/json; charset=utf-8");
    expect(t, "app.js.map", "application/json; charset=utf-8");
    expect(t, "m.wasm", "application/wasm");
    expect(t, "a.png", "image/png");
    expect(t, "a.jpg", "image/jpeg");
    expect(t, "a.jpeg", "image/jpeg");
    expect(t, "a.gif", "image/gif");
    expect(t, "a.webp", "image/webp");
    expect(t, "a.avif", "image/avif");
    expect(t, "favicon.ico", "image/vnd.microsoft.icon");
    expect(t, "f.woff", "font/woff");
    expect(t, "f.woff2", "font/woff2");
    expect(t, "robots.txt", "text/plain; charset=utf-8");
    expect(t, "doc.pdf", "application/pdf");
    expect(t, "feed.xml", "application/xml; charset=utf-8");
}

static void builtins_when_file_absent(void **state)
{
    (void)state;
    mime_table *t = mime_table_load("/nonexistent/eddy/mime.types");
    assert_non_null(t);
    expect_essentials(t);
    /* Fallbacks for files a system without mime.types still serves. */
    expect(t, "clip.mp4", "video/mp4");
    expect(t, "README.md", "text/markdown; charset=utf-8");
    expect(t, "site.webmanifest", "application/manifest+json; charset=utf-8");
    expect(t, "x.tar.gz", "application/gzip");
    expect(t, "pkg.deb", OCTET);
    mime_table_free(t);

    t = mime_table_load(NULL);
    assert_non_null(t);
    expect_essentials(t);
    mime_table_free(t);
}

static void names_and_extensions(void **state)
{
    (void)state;
    mime_table *t = mime_table_load("/nonexistent");
    assert_non_null(t);
    expect(t, "INDEX.HTML", "text/html; charset=utf-8");
    expect(t, "a.Js", "text/javascript; charset=utf-8");
    expect(t, "dir/sub/page.html", "text/html; charset=utf-8");
    expect(t, "dir.html/file", OCTET);      /* a dot in a directory is not an extension */
    expect(t, "archive.html.gz", "application/gzip"); /* the last extension counts */
    expect(t, "Makefile", OCTET);
    expect(t, "trailing.", OCTET);
    expect(t, ".htaccess", OCTET);          /* a hidden file, not a type */
    expect(t, ".js", OCTET);
    expect(t, "dir/.css", OCTET);
    expect(t, "..css", "text/css; charset=utf-8");
    expect(t, "", OCTET);
    expect(t, "/", OCTET);
    expect(t, "x.unknownext", OCTET);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    longname[10] = '.';
    expect(t, longname, OCTET);             /* a 288-byte extension */
    mime_table_free(t);
}

/* Without a table, lookups answer as a table of only the built-ins. */
static void no_table_matches_builtins(void **state)
{
    (void)state;
    static const char *const names[] = {
        "a.html", "a.HTM", "a.js",  "a.mjs", "a.css", "a.svg",  "a.json", "a.map",  "a.wasm",
        "a.png",  "a.jpg", "a.gif", "a.ico", "a.woff", "a.woff2", "a.txt", "a.pdf", "a.xml",
        "a.mp4",  "a.md",  "a",     ".js",   "a.deb", "d.x/a",  "a.",
    };
    mime_table *t = mime_table_load(NULL);
    assert_non_null(t);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(mime_table_lookup(NULL, names[i]), mime_table_lookup(t, names[i]));
    mime_table_free(t);
}

static const char sample[] =
    "# a comment line\n"
    "   # an indented comment\n"
    "\n"
    "   \t  \n"
    "text/x-foo   foo\tFOO2\t\t  \n"
    "application/x-bar bar # baz is in a comment\n"
    "application/x-hash bar2#inline\n"
    "image/x-dup dup\n"
    "image/x-dup2 dup dup3\n"
    /* Essentials stay; other extensions of such lines still count. */
    "text/html htmlx html\n"
    "application/x-evil js css json svg wasm map woff2\n"
    "text/plain    js\n"
    /* The file wins over fallbacks. */
    "video/x-mine mp4\n"
    /* Charset follows the type, whatever its case. */
    "application/json jsonld\n"
    "APPLICATION/JSON jsonx\n"
    "application/javascript jsx\n"
    "application/manifest+json webmanifest\n"
    "application/xml xsl\n"
    "Text/Markdown md\n"
    "application/xhtml+xml xhtml\n"
    "image/svg+xml svgz\n"
    /* Malformed types: the whole line is skipped. */
    "bad-type nope\n"
    "/empty e1\n"
    "empty/ e2\n"
    "a/b/c abc\n"
    "type/with;param semi\n"
    "type/with\"quote quo\n"
    /* Extensions that a last-extension lookup never sees are skipped. */
    "application/x-dotted tar.gz ok1\n"
    "application/x-crlf crlf\r\n"
    "text/plain\n"
    "\tapplication/x-tabbed\ttabbed\n"
    "application/x-nul nul1\0nul2\n"
    "application/x-last last";

static char *long_line(void)
{
    /* 5000 extensions on one line (about 40 KB), then one 65-byte and one
     * 64-byte extension. */
    size_t cap = 5000 * 8 + 256;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = (size_t)snprintf(s, cap, "application/x-many");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(s + n, cap - n, " m%d", i);
    s[n++] = ' ';
    memset(s + n, 'e', 65);
    n += 65;
    s[n++] = ' ';
    memset(s + n, 'f', 64);
    n += 64;
    s[n++] = '\n';
    s[n] = '\0';
    return s;
}

static void parses_a_mime_types_file(void **state)
{
    (void)state;
    char *many = long_line();
    size_t len = sizeof(sample) - 1 + strlen(many) + 1;
    char *data = malloc(len);
    assert_non_null(data);
    memcpy(data, many, strlen(many));
    memcpy(data + strlen(many), sample, sizeof(sample) - 1);
    data[len - 1] = '\n';
    char path[64];
    write_temp(path, data, len - 1); /* the last line has no newline */
    mime_table *t = mime_table_load(path);
    unlink(path);
    assert_non_null(t);

    expect(t, "a.foo", "text/x-foo; charset=utf-8");
    expect(t, "a.foo2", "text/x-foo; charset=utf-8");
    expect(t, "a.FOO2", "text/x-foo; charset=utf-8");
    expect(t, "a.bar", "application/x-bar");
    expect(t, "a.baz", OCTET);
    expect(t, "a.bar2", "application/x-hash");
    expect(t, "a.inline", OCTET);
    expect(t, "a.dup", "image/x-dup2"); /* the later line wins */
    expect(t, "a.dup3", "image/x-dup2");
    expect(t, "a.htmlx", "text/html; charset=utf-8");
    expect_essentials(t);
    expect(t, "a.mp4", "video/x-mine");
    expect(t, "a.jsonld", "application/json; charset=utf-8");
    expect(t, "a.jsonx", "APPLICATION/JSON; charset=utf-8");
    expect(t, "a.jsx", "application/javascript; charset=utf-8");
    expect(t, "a.webmanifest", "application/manifest+json; charset=utf-8");
    expect(t, "a.xsl", "application/xml; charset=utf-8");
    expect(t, "a.md", "Text/Markdown; charset=utf-8");
    expect(t, "a.xhtml", "application/xhtml+xml");
    expect(t, "a.svgz", "image/svg+xml");
    static const char *const skipped[] = {"a.nope", "a.e1", "a.e2", "a.abc", "a.semi", "a.quo",
                                          "a.inline", "a.nul2"};
    for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
        expect(t, skipped[i], OCTET);
    expect(t, "a.tar.gz", "application/gzip");
    expect(t, "a.ok1", "application/x-dotted");
    expect(t, "a.crlf", "application/x-crlf");
    expect(t, "a.tabbed", "application/x-tabbed");
    expect(t, "a.nul1", "application/x-nul");
    expect(t, "a.last", "application/x-last");

    expect(t, "a.m0", "application/x-many");
    expect(t, "a.m2500", "application/x-many");
    expect(t, "a.M4999", "application/x-many");
    expect(t, "a.m5000", OCTET);
    char name[80] = "a.";
    memset(name + 2, 'e', 65);
    name[67] = '\0';
    expect(t, name, OCTET); /* longer than any extension kept */
    memset(name + 2, 'f', 64);
    name[66] = '\0';
    expect(t, name, "application/x-many");

    mime_table_free(t);
    free(data);
    free(many);
}

/* A path that opens but cannot be read is as good as absent. */
static void unreadable_file_gives_builtins(void **state)
{
    (void)state;
    mime_table *t = mime_table_load("/tmp");
    assert_non_null(t);
    expect_essentials(t);
    expect(t, "a.mp4", "video/mp4");
    mime_table_free(t);

    char path[64];
    write_temp(path, "", 0);
    t = mime_table_load(path);
    unlink(path);
    assert_non_null(t);
    expect_essentials(t);
    mime_table_free(t);
}

/* Debian's media-types file, when this machine has it. */
static void system_mime_types(void **state)
{
    (void)state;
    if (access("/etc/mime.types", R_OK) != 0)
        skip();
    mime_table *t = mime_table_load("/etc/mime.types");
    assert_non_null(t);
    expect_essentials(t);
    expect(t, "a.csv", "text/csv; charset=utf-8");
    expect(t, "a.deb", "application/vnd.debian.binary-package");
    expect(t, "a.xhtml", "application/xhtml+xml");
    expect(t, "a.webm", "video/webm");
    expect(t, "a.mp4", "video/mp4");
    expect(t, "a.ttf", "font/ttf");
    expect(t, "a.no-such-extension", OCTET);
    /* Reading it twice gives two independent tables. */
    mime_table *u = mime_table_load("/etc/mime.types");
    assert_non_null(u);
    assert_string_equal(mime_table_lookup(t, "a.tgz"), mime_table_lookup(u, "a.tgz"));
    mime_table_free(u);
    mime_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builtins_when_file_absent),
        cmocka_unit_test(names_and_extensions),
        cmocka_unit_test(no_table_matches_builtins),
        cmocka_unit_test(parses_a_mime_types_file),
        cmocka_unit_test(unreadable_file_gives_builtins),
        cmocka_unit_test(system_mime_types),
    };
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
