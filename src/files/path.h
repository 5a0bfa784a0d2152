/* Turning a URL path into a path relative to the root that cannot leave it. */
#ifndef EDDY_FILES_PATH_H
#define EDDY_FILES_PATH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct resolved_path {
    char rel[4096];      /* relative to the root, no leading '/'; "." for the root */
    bool trailing_slash; /* the URL named a directory */
} resolved_path;

/* Percent-decodes url_path and removes dot segments (never above the
 * root).  Returns 0, 400 for a malformed escape or an encoded NUL, 404 for
 * a path too long to be a file here or, unless allow_dotfiles, one with a
 * segment starting with '.'. */
int path_resolve(const char *url_path, size_t len, bool allow_dotfiles, resolved_path *out);

/* The value of one hex digit of a %XX escape, or -1. */
int path_hex_value(char ch);

#endif
