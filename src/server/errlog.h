/* The error log: every line eddy has for an operator (startup failures,
 * signals, reloads, the servers' and ACME's events), one per call, each
 * with its time and level, on stderr or appended to a file that SIGUSR1
 * reopens.  Safe from any thread: a line is one write(2). */
#ifndef EDDY_SERVER_ERRLOG_H
#define EDDY_SERVER_ERRLOG_H

#include <stdbool.h>

/* Most important first: a level keeps itself and those before it. */
enum errlog_level { ERRLOG_ERROR, ERRLOG_WARN, ERRLOG_INFO, ERRLOG_DEBUG };
#define ERRLOG_LEVELS "error|warn|info|debug"

/* Longest line written (longer messages are cut). */
#define ERRLOG_LINE_MAX 2048

/* The level a name ("warn") stands for, or -1. */
int errlog_level_parse(const char *name);
/* Lines from now on go to path (NULL or "-": stderr, the default),
 * appended; those of a level past `level` are dropped.  From the main
 * thread before others log.  0, or -errno with stderr kept. */
int errlog_open(const char *path, enum errlog_level level);
void errlog_set_level(enum errlog_level level);
bool errlog_wants(enum errlog_level level);
/* Opens the file again by its path (after logrotate renamed it); lines
 * never go nowhere: until it opens they go to the old one.  0 or -errno. */
int errlog_reopen(void);
/* Back to stderr, closing the file. */
void errlog_close(void);

/* "2026-12-05T03:14:05Z [warn] eddy: MESSAGE\n", if level is wanted. */
void errlog(enum errlog_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Why eddy cannot start: "eddy: MESSAGE" on stderr whatever the error log
 * is (a terminal, systemd's journal and tests read it there), and an
 * error line in the error log when that is a file. */
void errlog_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
