/* Directory listings: escaping of hostile names, href encoding, order,
 * dotfiles, sizes and times, and errors. */
#include "harness.h"
#include "files/autoindex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOSTILE "a<b>&\"c'.txt"
#define UTF8 "h\xC3\xA9llo-\xE6\x97\xA5\xE6\x9C\xAC.txt" /* "héllo-日本.txt" */

typedef struct dir_fixture {
    char root[64];
    int fd;
} dir_fixture;

static void make_file(const dir_fixture *df, const char *name, size_t size, time_t mtime)
{
    int fd = openat(df->fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    char zero[256] = {0};
    for (size_t left = size; left;) {
        size_t n = left < sizeof(zero) ? left : sizeof(zero);
        assert_int_equal(write(fd, zero, n), (ssize_t)n);
        left -= n;
    }
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
}

static int setup(void **state)
{
    dir_fixture *df = calloc(1, sizeof(*df));
    assert_non_null(df);
    snprintf(df->root, sizeof(df->root), "/tmp/eddy-autoindex-XXXXXX");
    assert_non_null(mkdtemp(df->root));
    df->fd = open(df->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(df->fd >= 0);
    /* 2021-02-03 04:05:06 UTC */
    make_file(df, HOSTILE, 1234, 1612325106);
    make_file(df, "space name", 0, 1612325106);
    make_file(df, "%percent", 7, 1612325106);
    make_file(df, UTF8, 3, 1612325106);
    make_file(df, ".hidden", 1, 1612325106);
    make_file(df, "Zeta", 1, 1612325106);
    make_file(df, "javascript:alert(1)", 1, 1612325106);
    make_file(df, "line\nbreak", 1, 1612325106);
    assert_int_equal(mkdirat(df->fd, "subdir", 0755), 0);
    assert_int_equal(mkdirat(df->fd, "a dir", 0755), 0);
    assert_int_equal(mkdirat(df->fd, ".git", 0755), 0);
    /* Links: to a file, to a directory, dangling; and a FIFO. */
    assert_int_equal(symlinkat("Zeta", df->fd, "link-to-file"), 0);
    assert_int_equal(symlinkat("subdir", df->fd, "link-to-dir"), 0);
    assert_int_equal(symlinkat("nowhere", df->fd, "dangling"), 0);
    assert_int_equal(mkfifoat(df->fd, "fifo", 0644), 0);
    *state = df;
    return 0;
}

static int teardown(void **state)
{
    dir_fixture *df = *state;
    close(df->fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", df->root);
    assert_int_equal(system(cmd), 0);
    free(df);
    return 0;
}

static char *render(int fd, const char *url, bool dotfiles)
{
    char *out = NULL;
    size_t len = 0;
    int rc = autoindex_render(fd, url, dotfiles, &out, &len);
    if (rc != 0)
        fail_msg("autoindex_render: %s", strerror(-rc));
    assert_non_null(out);
    assert_int_equal(strlen(out), len); /* NUL-terminated, no NUL inside */
    return out;
}

/* Position of needle in page, failing when absent. */
static size_t at(const char *page, const char *needle)
{
    const char *p = strstr(page, needle);
    if (!p)
        fail_msg("missing: %s\n--- page ---\n%s", needle, page);
    return (size_t)(p - page);
}

static void absent(const char *page, const char *needle)
{
    if (strstr(page, needle))
        fail_msg("unexpected: %s\n--- page ---\n%s", needle, page);
}

static void names_are_escaped(void **state)
{
    dir_fixture *df = *state;
    char *page = render(df->fd, "/files/", false);
    at(page, "<a href=\"a%3Cb%3E%26%22c%27.txt\">a&lt;b&gt;&amp;&quot;c&#39;.txt</a>");
    absent(page, "a<b");
    absent(page, "&\"c");
    /* Every '<' in the page opens one of our own tags. */
    for (const char *p = strchr(page, '<'); p; p = strchr(p + 1, '<'))
        if (!strchr("!/ahmts", p[1]))
            fail_msg("stray '<' at: %.20s", p);
    at(page, "<a href=\"space%20name\">space name</a>");
    at(page, "<a href=\"%25percent\">%percent</a>");
    at(page, "<a href=\"h%C3%A9llo-%E6%97%A5%E6%9C%AC.txt\">" UTF8 "</a>");
    /* A colon cannot turn a name into a scheme. */
    at(page, "<a href=\"javascript%3Aalert%281%29\">javascript:alert(1)</a>");
    /* A control character shows as U+FFFD. */
    at(page, "<a href=\"line%0Abreak\">line\xEF\xBF\xBD" "break</a>");
    free(page);
}

static void order_kinds_and_dotfiles(void **state)
{
    dir_fixture *df = *state;
    char *page = render(df->fd, "/files/", false);
    /* Parent first, then directories, then files, each bytewise by name. */
    size_t parent = at(page, "<a href=\"../\">../</a>");
    size_t adir = at(page, "<a href=\"a%20dir/\">a dir/</a>");
    size_t ldir = at(page, "<a href=\"link-to-dir/\">link-to-dir/</a>");
    size_t sub = at(page, "<a href=\"subdir/\">subdir/</a>");
    size_t pct = at(page, ">%percent</a>");
    size_t zeta = at(page, ">Zeta</a>");
    size_t hostile = at(page, ">a&lt;b");
    size_t utf8 = at(page, ">" UTF8 "<");
    size_t js = at(page, ">javascript:");
    size_t lfile = at(page, ">link-to-file</a>");
    size_t space = at(page, ">space name</a>");
    assert_true(parent < adir && adir < ldir && ldir < sub && sub < pct);
    assert_true(pct < zeta && zeta < hostile && hostile < utf8 && utf8 < js);
    assert_true(js < lfile && lfile < space);
    absent(page, "hidden");
    absent(page, ".git");
    absent(page, "dangling");
    absent(page, "fifo");
    assert_int_equal(count_of(page, "<tr>"), 1 + 1 + 3 + 8); /* head, parent, dirs, files */
    free(page);

    page = render(df->fd, "/files/", true);
    size_t git = at(page, "<a href=\".git/\">.git/</a>");
    size_t hidden = at(page, "<a href=\".hidden\">.hidden</a>");
    assert_true(git < at(page, ">a dir/<"));
    assert_true(at(page, ">%percent<") < hidden && hidden < at(page, ">Zeta<")); /* bytewise */
    absent(page, "href=\"./\"");
    assert_int_equal(count_of(page, "<a href=\"../\">"), 1);
    assert_int_equal(count_of(page, "<tr>"), 1 + 1 + 4 + 9);
    free(page);
}

static void sizes_and_times(void **state)
{
    dir_fixture *df = *state;
    char *page = render(df->fd, "/files/", false);
    at(page, ">a&lt;b&gt;&amp;&quot;c&#39;.txt</a></td>"
             "<td>1234</td><td>2021-02-03 04:05</td></tr>");
    at(page, ">space name</a></td><td>0</td><td>2021-02-03 04:05</td></tr>");
    /* A link shows its target's size; a directory shows none. */
    at(page, ">link-to-file</a></td><td>1</td><td>2021-02-03 04:05</td></tr>");
    at(page, ">subdir/</a></td><td></td><td>");
    free(page);
}

static void page_structure_and_title(void **state)
{
    dir_fixture *df = *state;
    char *page = render(df->fd, "/", false);
    assert_int_equal(at(page, "<!doctype html>\n"), 0);
    at(page, "<meta charset=\"utf-8\">");
    at(page, "<title>Index of /</title>");
    at(page, "<h1>Index of /</h1>");
    at(page, "<table>");
    at(page, "</table>\n");
    absent(page, "../");
    free(page);

    /* The title shows the path decoded, and escaped: it comes from the
     * client. */
    page = render(df->fd, "/my%20dir/%3Cscript%3E/<b>/", false);
    at(page, "<title>Index of /my dir/&lt;script&gt;/&lt;b&gt;/</title>");
    absent(page, "<script");
    absent(page, "<b>");
    at(page, "<a href=\"../\">../</a>");
    free(page);

    page = render(df->fd, "/bad%zz%4/%00/%", false);
    at(page, "<title>Index of /bad%zz%4/\xEF\xBF\xBD/%</title>");
    free(page);

    page = render(df->fd, "//", false);
    absent(page, "../");
    free(page);
}

static void empty_directory(void **state)
{
    dir_fixture *df = *state;
    assert_int_equal(mkdirat(df->fd, "subdir/empty", 0755), 0);
    int fd = openat(df->fd, "subdir/empty", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    char *page = render(fd, "/subdir/empty/", true);
    assert_int_equal(count_of(page, "<tr>"), 2); /* head and parent */
    free(page);
    close(fd);
    assert_int_equal(unlinkat(df->fd, "subdir/empty", AT_REMOVEDIR), 0);
}

/* dirfd's own offset is untouched, and an O_PATH descriptor works. */
static void leaves_dirfd_alone(void **state)
{
    dir_fixture *df = *state;
    char *a = render(df->fd, "/", false);
    char *b = render(df->fd, "/", false);
    assert_string_equal(a, b);
    free(b);
    int pfd = open(df->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(pfd >= 0);
    b = render(pfd, "/", false);
    assert_string_equal(a, b);
    close(pfd);
    free(b);
    free(a);
}

static void errors(void **state)
{
    dir_fixture *df = *state;
    char *out = (char *)"untouched";
    size_t len = 99;
    assert_int_equal(autoindex_render(-1, "/", false, &out, &len), -EBADF);
    int fd = openat(df->fd, "Zeta", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(autoindex_render(fd, "/", false, &out, &len), -ENOTDIR);
    close(fd);
    assert_string_equal(out, "untouched");
    assert_int_equal(len, 99);
}

/* Enough entries to grow every buffer several times. */
static void many_entries(void **state)
{
    dir_fixture *df = *state;
    assert_int_equal(mkdirat(df->fd, "many", 0755), 0);
    int fd = openat(df->fd, "many", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    dir_fixture sub = {.fd = fd};
    char name[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "f%04d-<&>", 999 - i);
        make_file(&sub, name, (size_t)i % 3, 0);
    }
    char *page = render(fd, "/many/", false);
    assert_int_equal(count_of(page, "<tr>"), 1002);
    size_t first = at(page, ">f0000-&lt;&amp;&gt;</a></td><td>0</td><td>1970-01-01 00:00</td>");
    assert_true(first < at(page, ">f0999-&lt;"));
    absent(page, "-<");
    free(page);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(names_are_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(order_kinds_and_dotfiles, setup, teardown),
        cmocka_unit_test_setup_teardown(sizes_and_times, setup, teardown),
        cmocka_unit_test_setup_teardown(page_structure_and_title, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(leaves_dirfd_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(errors, setup, teardown),
        cmocka_unit_test_setup_teardown(many_entries, setup, teardown),
    };
    return cmocka_run_group_tests_name("autoindex", tests, NULL, NULL);
}
