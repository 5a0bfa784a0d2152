/* The open-file cache: hits, changes in place, replacement and deletion
 * within the revalidation interval, eviction while a file is in use. */
#include "harness.h"
#include "files/file_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct croot {
    char dir[64];
    int fd;
} croot;

static void croot_open(croot *r)
{
    snprintf(r->dir, sizeof(r->dir), "/tmp/eddy-cache-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    r->fd = open(r->dir, O_PATH | O_DIRECTORY);
    assert_true(r->fd >= 0);
}

static void write_at(croot *r, const char *name, const char *data)
{
    int fd = openat(r->fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

static void croot_close(croot *r)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
    close(r->fd);
}

static void hits_share_one_descriptor(void **state)
{
    (void)state;
    croot r;
    croot_open(&r);
    write_at(&r, "a.txt", "hello");
    file_cache *fc = file_cache_new(r.fd, 4);
    cached_file *a, *b;
    assert_int_equal(file_cache_get(fc, "a.txt", 0, &a), 0);
    assert_int_equal(file_cache_get(fc, "a.txt", 10, &b), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(a->st.st_size, 5);
    write_at(&r, "a.txt", "hello, world"); /* rewritten in place */
    file_cache_release(b);
    assert_int_equal(file_cache_get(fc, "a.txt", 20, &b), 0);
    assert_int_equal(b->st.st_size, 12); /* seen at once */
    file_cache_release(a);
    file_cache_release(b);
    file_cache_free(fc);
    croot_close(&r);
}

static void deletion_and_replacement_noticed_after_interval(void **state)
{
    (void)state;
    croot r;
    croot_open(&r);
    write_at(&r, "a.txt", "one");
    file_cache *fc = file_cache_new(r.fd, 4);
    cached_file *a, *b;
    assert_int_equal(file_cache_get(fc, "a.txt", 0, &a), 0);
    assert_int_equal(unlinkat(r.fd, "a.txt", 0), 0);
    /* Within the interval the open descriptor still serves. */
    assert_int_equal(file_cache_get(fc, "a.txt", FILE_CACHE_REVALIDATE_MS - 1, &b), 0);
    file_cache_release(b);
    assert_int_equal(file_cache_get(fc, "a.txt", FILE_CACHE_REVALIDATE_MS, &b), -ENOENT);
    /* The request still holding the old entry keeps a valid descriptor. */
    char buf[8];
    assert_int_equal(pread(a->body.fd, buf, sizeof(buf), 0), 3);
    file_cache_release(a);
    write_at(&r, "a.txt", "replacement");
    /* Negative answers are remembered for the interval too. */
    assert_int_equal(file_cache_get(fc, "a.txt", FILE_CACHE_REVALIDATE_MS + 1, &b), -ENOENT);
    assert_int_equal(file_cache_get(fc, "a.txt", 2 * FILE_CACHE_REVALIDATE_MS, &b), 0);
    assert_int_equal(b->st.st_size, 11);
    file_cache_release(b);
    file_cache_free(fc);
    croot_close(&r);
}

static void directories_and_escapes_are_refused(void **state)
{
    (void)state;
    croot r;
    croot_open(&r);
    assert_int_equal(mkdirat(r.fd, "d", 0755), 0);
    assert_int_equal(symlinkat("/etc/passwd", r.fd, "out"), 0);
    file_cache *fc = file_cache_new(r.fd, 4);
    cached_file *f;
    assert_int_equal(file_cache_get(fc, "d", 0, &f), -EISDIR);
    assert_int_equal(file_cache_get(fc, "out", 0, &f), -EXDEV);
    assert_int_equal(file_cache_get(fc, "../etc/passwd", 0, &f), -EXDEV);
    file_cache_free(fc);
    croot_close(&r);
}

static void eviction_keeps_files_in_use(void **state)
{
    (void)state;
    croot r;
    croot_open(&r);
    char name[16];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        write_at(&r, name, name);
    }
    file_cache *fc = file_cache_new(r.fd, 2);
    cached_file *held;
    assert_int_equal(file_cache_get(fc, "f0", 0, &held), 0);
    for (int i = 1; i < 6; i++) { /* push f0 out of the table */
        cached_file *f;
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(file_cache_get(fc, name, 0, &f), 0);
        file_cache_release(f);
    }
    char buf[4];
    assert_int_equal(pread(held->body.fd, buf, sizeof(buf), 0), 2);
    assert_memory_equal(buf, "f0", 2);
    file_cache_release(held);
    file_cache_free(fc);
    croot_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hits_share_one_descriptor),
        cmocka_unit_test(deletion_and_replacement_noticed_after_interval),
        cmocka_unit_test(directories_and_escapes_are_refused),
        cmocka_unit_test(eviction_keeps_files_in_use),
    };
    return cmocka_run_group_tests_name("file_cache", tests, NULL, NULL);
}
