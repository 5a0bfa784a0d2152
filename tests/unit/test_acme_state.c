/* The ACME state directory: the default per user, directories made 0700
 * with their parents, files replaced whole with their mode from the
 * start, read back, and the errors a bad directory gives. */
#include "harness.h"
#include "acme/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/eddy-acme-state-XXXXXX";

static int setup(void **state)
{
    (void)state;
    strcpy(base, "/tmp/eddy-acme-state-XXXXXX");
    return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void default_dir_per_user(void **state)
{
    (void)state;
    char buf[256];
    assert_int_equal(acme_state_default_dir(true, "/x", "/home/u", buf, sizeof(buf)), 0);
    assert_string_equal(buf, ACME_STATE_ROOT_DIR);
    assert_int_equal(acme_state_default_dir(false, "/run/st", "/home/u", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/st/eddy");
    /* A relative XDG_STATE_HOME is to be ignored (XDG base directory spec). */
    assert_int_equal(acme_state_default_dir(false, "rel", "/home/u", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/home/u/.local/state/eddy");
    assert_int_equal(acme_state_default_dir(false, NULL, "/home/u", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/home/u/.local/state/eddy");
    assert_int_equal(acme_state_default_dir(false, NULL, NULL, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(acme_state_default_dir(false, NULL, "/home/u", buf, 10), -ENAMETOOLONG);
}

static void mkdir_with_parents_0700(void **state)
{
    (void)state;
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/a/b/c", base);
    mode_t old = umask(0);
    assert_int_equal(acme_state_mkdir(dir), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(dir, sizeof(dir), "%s/a", base);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Again: fine.  A file in the way: not a directory. */
    snprintf(dir, sizeof(dir), "%s/a/b/c", base);
    assert_int_equal(acme_state_mkdir(dir), 0);
    assert_int_equal(acme_state_write(base, "f", "x", 1, 0600), 0);
    snprintf(dir, sizeof(dir), "%s/f", base);
    assert_int_equal(acme_state_mkdir(dir), -ENOTDIR);
    snprintf(dir, sizeof(dir), "%s/f/g", base);
    assert_int_equal(acme_state_mkdir(dir), -ENOTDIR);
}

/* Written, read back, replaced; each file has the mode asked whatever
 * the umask; no temp file stays. */
static void write_read_replace(void **state)
{
    (void)state;
    mode_t old = umask(0077);
    assert_int_equal(acme_state_write(base, "account.key", "KEY-1", 5, 0600), 0);
    assert_int_equal(acme_state_write(base, "cert.pem", "CHAIN", 5, 0644), 0);
    umask(old);
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/account.key", base);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/cert.pem", base);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char *data;
    size_t len;
    assert_int_equal(acme_state_read(base, "account.key", &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "KEY-1");
    free(data);
    assert_int_equal(acme_state_write(base, "account.key", "KEY-TWO", 7, 0600), 0);
    assert_int_equal(acme_state_read(base, "account.key", &data, &len), 0);
    assert_string_equal(data, "KEY-TWO");
    free(data);
    /* Nothing but the two files. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 2", base);
    assert_int_equal(system(cmd), 0);
    /* Empty files are files too. */
    assert_int_equal(acme_state_write(base, "empty", "", 0, 0600), 0);
    assert_int_equal(acme_state_read(base, "empty", &data, &len), 0);
    assert_int_equal(len, 0);
    free(data);
}

static void errors(void **state)
{
    (void)state;
    char *data;
    size_t len;
    assert_int_equal(acme_state_read(base, "missing", &data, &len), -ENOENT);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/nope", base);
    assert_int_equal(acme_state_write(dir, "k", "x", 1, 0600), -ENOENT);
    /* A directory where a file is read. */
    snprintf(dir, sizeof(dir), "%s/sub", base);
    assert_int_equal(acme_state_mkdir(dir), 0);
    assert_int_equal(acme_state_read(base, "sub", &data, &len), -EINVAL);
    /* A name too long for a path. */
    char name[5000];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    assert_int_equal(acme_state_write(base, name, "x", 1, 0600), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_dir_per_user),
        cmocka_unit_test_setup_teardown(mkdir_with_parents_0700, setup, teardown),
        cmocka_unit_test_setup_teardown(write_read_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
