/* Turning a URL path into a path relative to the root that cannot leave it. */
#ifndef EDDY_FILES_PATH_H
#define EDDY_FILES_PATH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct resolved_path {
    char rel[4096];      /* relative to the root, no leading '/'; "." for the root */
    bool trailing_slash; /* the URL named a directory */
} resolved_path;

/* Turns a decoded path (core/path.h: escapes and dot segments already
 * resolved) into one relative to the root, never above it.  Returns 0, 400
 * for a NUL, 404 for a path too long to be a file here or, unless
 * allow_dotfiles, one with a segment starting with '.'. */
int path_resolve(const char *path, size_t len, bool allow_dotfiles, resolved_path *out);

#endif
