/* The error log: the line's form, levels, one line whatever the message
 * holds, reopening after a rename, and startup failures on stderr too. */
#include "harness.h"

#include "server/errlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path)
{
    static char buf[65536];
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void temp_path(char path[24])
{
    strcpy(path, "/tmp/eddy-errlog-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

static void levels_parse(void **state)
{
    (void)state;
    assert_int_equal(errlog_level_parse("error"), ERRLOG_ERROR);
    assert_int_equal(errlog_level_parse("warn"), ERRLOG_WARN);
    assert_int_equal(errlog_level_parse("info"), ERRLOG_INFO);
    assert_int_equal(errlog_level_parse("debug"), ERRLOG_DEBUG);
    assert_int_equal(errlog_level_parse("warning"), -1);
    assert_int_equal(errlog_level_parse(""), -1);
}

static void lines_and_levels(void **state)
{
    (void)state;
    char path[24];
    temp_path(path);
    assert_int_equal(errlog_open(path, ERRLOG_WARN), 0);
    errlog(ERRLOG_ERROR, "one %d", 1);
    errlog(ERRLOG_WARN, "two");
    errlog(ERRLOG_INFO, "dropped");
    errlog(ERRLOG_DEBUG, "dropped too");
    errlog_set_level(ERRLOG_DEBUG);
    errlog(ERRLOG_DEBUG, "a quoted\nline\x1b[31m");
    const char *log = slurp(path);
    assert_int_equal(count_of(log, "\n"), 3);
    assert_int_equal(count_of(log, "dropped"), 0);
    /* 2026-12-05T03:14:05Z [error] eddy: one 1 */
    assert_int_equal(strlen(log) > 21 && log[4] == '-' && log[10] == 'T' && log[19] == 'Z', 1);
    assert_non_null(strstr(log, "Z [error] eddy: one 1\n"));
    assert_non_null(strstr(log, "Z [warn] eddy: two\n"));
    assert_non_null(strstr(log, "Z [debug] eddy: a quoted?line?[31m\n"));
    errlog_close();
    unlink(path);
}

static void long_messages_are_cut_to_one_line(void **state)
{
    (void)state;
    char path[24];
    temp_path(path);
    assert_int_equal(errlog_open(path, ERRLOG_INFO), 0);
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = 0;
    errlog(ERRLOG_INFO, "%s", big);
    free(big);
    const char *log = slurp(path);
    assert_int_equal(count_of(log, "\n"), 1);
    assert_int_equal(strlen(log), ERRLOG_LINE_MAX - 1);
    errlog_close();
    unlink(path);
}

static void reopen_after_a_rename(void **state)
{
    (void)state;
    char path[24], old[40];
    temp_path(path);
    snprintf(old, sizeof(old), "%s.1", path);
    assert_int_equal(errlog_open(path, ERRLOG_INFO), 0);
    errlog(ERRLOG_INFO, "before");
    assert_int_equal(rename(path, old), 0);
    errlog(ERRLOG_INFO, "renamed, not reopened yet");
    assert_int_equal(errlog_reopen(), 0);
    errlog(ERRLOG_INFO, "after");
    const char *log = slurp(old);
    assert_int_equal(count_of(log, "\n"), 2);
    assert_non_null(strstr(log, "before"));
    log = slurp(path);
    assert_int_equal(count_of(log, "\n"), 1);
    assert_non_null(strstr(log, "eddy: after\n"));
    errlog_close();
    unlink(path);
    unlink(old);
}

static void unopenable_path(void **state)
{
    (void)state;
    assert_int_equal(errlog_open("/nonexistent-dir/error.log", ERRLOG_INFO), -ENOENT);
    assert_int_equal(errlog_reopen(), 0); /* stderr: nothing to reopen */
}

/* Why eddy did not start goes to stderr as "eddy: ..." (one line), and to
 * the error log file as well. */
static void failures_reach_stderr_too(void **state)
{
    (void)state;
    char path[24], err_path[24];
    temp_path(path);
    temp_path(err_path);
    int saved = dup(STDERR_FILENO);
    int fd = open(err_path, O_WRONLY | O_APPEND);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    assert_int_equal(errlog_open(path, ERRLOG_ERROR), 0);
    errlog_fail("cannot listen on %s: %s", "x", "Address in use");
    errlog_close();
    errlog_fail("stderr alone: %s", "y");
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_string_equal(slurp(err_path), "eddy: cannot listen on x: Address in use\n"
                                         "eddy: stderr alone: y\n");
    const char *log = slurp(path);
    assert_int_equal(count_of(log, "\n"), 1);
    assert_non_null(strstr(log, "Z [error] eddy: cannot listen on x: Address in use\n"));
    unlink(path);
    unlink(err_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels_parse),
        cmocka_unit_test(lines_and_levels),
        cmocka_unit_test(long_messages_are_cut_to_one_line),
        cmocka_unit_test(reopen_after_a_rename),
        cmocka_unit_test(unopenable_path),
        cmocka_unit_test(failures_reach_stderr_too),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
