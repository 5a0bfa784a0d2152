#include "acme/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A state file never needs more: certificate chains are a few KiB. */
#define ACME_STATE_FILE_MAX (1 << 20)

int acme_state_default_dir(bool root, const char *xdg, const char *home, char *buf, size_t len)
{
    int n;
    if (root)
        n = snprintf(buf, len, "%s", ACME_STATE_ROOT_DIR);
    else if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "%s/eddy", xdg);
    else if (home && home[0] == '/')
        n = snprintf(buf, len, "%s/.local/state/eddy", home);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int acme_state_mkdir(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    /* Each prefix ending at a slash, then the whole. */
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != 0)
            continue;
        char c = path[i];
        path[i] = 0;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int path_of(char *buf, size_t len, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(buf, len, "%s/%s%s", dir, name, suffix);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int acme_state_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
    char final[4096], tmp[4096];
    char suffix[32];
    snprintf(suffix, sizeof(suffix), ".tmp%ld", (long)getpid());
    int rc = path_of(final, sizeof(final), dir, name, "");
    if (rc == 0)
        rc = path_of(tmp, sizeof(tmp), dir, name, suffix);
    if (rc < 0)
        return rc;
    /* O_EXCL with the final mode: a key is never readable by others, not
     * even for a moment (a stale temp file from a crash is replaced). */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    rc = write_all(fd, data, len);
    if (rc == 0 && fchmod(fd, mode) < 0) /* the umask may have narrowed it */
        rc = -errno;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, final) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself survives a crash */
        close(dfd);
    }
    return 0;
}

int acme_state_read(const char *dir, const char *name, char **data, size_t *len)
{
    char path[4096];
    int rc = path_of(path, sizeof(path), dir, name, "");
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_size > ACME_STATE_FILE_MAX)
        rc = -EFBIG;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf)
        return -ENOMEM;
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}
