/* The ACME client's state directory (--state-dir): the account's key and
 * URL, and for each certificate its chain and key.  Each file is replaced
 * atomically (written beside itself, synced, renamed over, the directory
 * synced), so a crash leaves the old file or the new one, never half of
 * either; keys are 0600 and directories 0700 from the start. */
#ifndef EDDY_ACME_STATE_H
#define EDDY_ACME_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The default state directory: as root ACME_STATE_ROOT_DIR; otherwise
 * $XDG_STATE_HOME/eddy, or $HOME/.local/state/eddy (xdg and home: those
 * variables, NULL when unset).  0, or -ENAMETOOLONG / -ENOENT (no home). */
#define ACME_STATE_ROOT_DIR "/var/lib/eddy"
int acme_state_default_dir(bool root, const char *xdg, const char *home, char *buf, size_t len);

/* Makes dir and any missing parents, 0700; 0 or -errno (an existing
 * directory is fine, whatever its mode). */
int acme_state_mkdir(const char *dir);

/* Replaces dir/name with len bytes of data, created with mode; 0 or -errno. */
int acme_state_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode);

/* Reads dir/name whole into *data (malloc'd, NUL-terminated, *len bytes);
 * 0, -ENOENT when it does not exist, or -errno. */
int acme_state_read(const char *dir, const char *name, char **data, size_t *len);

#endif
