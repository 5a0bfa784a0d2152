/* Directory listings (--autoindex): a small HTML5 page with a table. */
#ifndef EDDY_FILES_AUTOINDEX_H
#define EDDY_FILES_AUTOINDEX_H

#include <stdbool.h>
#include <stddef.h>

/* Renders an HTML listing of the directory open at dirfd for the URL path
 * url_path (percent-encoded, ends with '/'; shown decoded and escaped in the
 * title).  The directory is read through its own open file description, so
 * dirfd's offset is untouched and dirfd may be O_PATH.
 *
 * Entries are sorted by name (bytewise, not by locale), directories first
 * with a trailing '/'; dotfiles are omitted unless show_dotfiles; a "../"
 * link comes first unless url_path is "/".  Symbolic links are listed as
 * what they point to (a dangling one is left out), and only directories
 * and regular files are listed: nothing else could be served.  Each name is
 * HTML-escaped in text (control characters shown as U+FFFD) and
 * percent-encoded in its relative href (all but unreserved characters, so a
 * name like "javascript:x" stays a relative link), with its size in bytes
 * (files only) and modification time (UTC, YYYY-MM-DD HH:MM).
 *
 * Returns 0 with a malloc'd page in *out, *len bytes long (followed by a NUL
 * not counted in *len), or a negative errno (-ENOTDIR, -EACCES, -ENOMEM, ...)
 * with *out untouched. */
int autoindex_render(int dirfd, const char *url_path, bool show_dotfiles, char **out,
                     size_t *len);

#endif
