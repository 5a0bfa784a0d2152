/* What the program does for whoever runs it as a service: the sockets it
 * is handed (systemd's socket activation, or the eddy it replaces), the
 * notifications systemd waits for, the user it runs as, the descriptor
 * limit, and handing its own sockets to a new binary (upgrade). */
#ifndef EDDY_SERVER_SERVICE_H
#define EDDY_SERVER_SERVICE_H

#include "server/cli.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Most sockets taken over: every worker's, for each address. */
#define SERVICE_MAX_INHERITED (CLI_MAX_WORKERS * 4)
/* How long an upgrade waits for the new process to listen. */
#define SERVICE_UPGRADE_READY_MS 30000
/* Descriptors beside the connections: listeners, the file cache, logs,
 * the loops' own. */
#define SERVICE_FD_RESERVE 256

/* Listening sockets handed to this process (LISTEN_FDS), each taken by the
 * listen or listen-tls address it is bound to. */
typedef struct inherited {
    int fd[SERVICE_MAX_INHERITED];
    bool taken[SERVICE_MAX_INHERITED];
    unsigned n;
    int ready_fd; /* an upgrading eddy waits on it for our "ready"; -1: none */
} inherited;

/* Reads LISTEN_FDS (checked against LISTEN_PID, then unset so nothing
 * started later sees them).  0, or -1 with a line in err. */
int service_inherited(inherited *in, char *err, size_t err_len);
/* The inherited sockets bound to addr ("HOST:PORT"; port 0 takes any
 * port of that host): how many, their descriptors in fds (marked taken). */
unsigned service_match(inherited *in, const char *addr, int *fds, unsigned max);
/* An inherited socket no address took: 0, or -1 with a line in err. */
int service_all_taken(const inherited *in, char *err, size_t err_len);
/* Closes the inherited sockets (after every worker took its own copies). */
void service_inherited_close(inherited *in);

/* As root, without --user, a port below 1024 is refused here, before
 * anything is bound (a socket handed over matches one of these addresses,
 * so it is covered too).  0, or -1 with a line in err. */
int service_check_user(const cli_options *opt, char *err, size_t err_len);
/* Runs as --user (and its groups) from now on; nothing when not given.
 * 0, or -1 with a line in err. */
int service_drop_user(const cli_options *opt, char *err, size_t err_len);

/* Raises the soft descriptor limit to what --max-conns on every worker
 * needs (the hard limit when there is no --max-conns); one warning line
 * on stderr when the hard limit is lower than that. */
void service_raise_fd_limit(const cli_options *opt);

/* systemd's notifications (nothing without NOTIFY_SOCKET). */
void service_ready(inherited *in);
void service_reloading(void);
void service_reloaded(void);
void service_stopping(void);

/* Starts argv again from the binary's path with the n listening sockets in
 * fds handed over, and waits for it to listen.  The new process's PID,
 * or -1 with a line in err (this process then goes on serving). */
pid_t service_upgrade(char **argv, const int *fds, unsigned n, char *err, size_t err_len);
/* Remembers the binary's path, before anything could change the working
 * directory or replace the file. */
void service_remember_binary(const char *argv0);

#endif
