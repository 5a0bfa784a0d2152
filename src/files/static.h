/* Serving files under the server's root: methods, paths, directories. */
#ifndef EDDY_FILES_STATIC_H
#define EDDY_FILES_STATIC_H

#include "http/conn.h"

/* Answers req from the file its path names (the default handler). */
void static_serve(eddy_request *req);
/* Opens rel under dirfd; the kernel refuses any resolution that would
 * leave dirfd.  Returns the fd or a negative errno (-EXDEV: it leads out). */
int static_open_beneath(int dirfd, const char *rel);
/* The same where openat2 is missing (ENOSYS): an ordinary open, then a
 * check in /proc/self/fd that the file it reached lies under dirfd.
 * Links that stay inside are followed, absolute ones included. */
int static_open_checked(int dirfd, const char *rel);

#endif
