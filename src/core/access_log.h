/* The access log: one line per response, in the combined log format that
 * log tools read (nginx's and Apache's default) or as JSON (access_json.h).
 * Lines are buffered per server and written whole, so workers sharing one
 * file (O_APPEND) never interleave inside a line; a line reaches the file
 * within a second.  Reopening (log rotation) loses none. */
#ifndef EDDY_CORE_ACCESS_LOG_H
#define EDDY_CORE_ACCESS_LOG_H

#include "eddy.h"
#include "core/response.h"
#include <stdint.h>

/* Buffered lines are written when this much has gathered, or after
 * ACCESS_LOG_FLUSH_MS, or when the server is freed. */
#define ACCESS_LOG_BUFFER 16384
#define ACCESS_LOG_FLUSH_MS 1000

typedef struct access_log access_log;

/* Opens path for appending (created 0644 if missing); "-" is stdout.
 * Returns 0 or -errno. */
int access_log_open(eddy_loop *loop, const char *path, enum eddy_log_format format,
                    access_log **out);
/* Writes what is buffered to the file open now, then opens the path again
 * (it may name a new file since).  0 (stdout: nothing to do), or -errno
 * with the file open now kept. */
int access_log_reopen(access_log *log);
/* Writes what is buffered and closes. */
void access_log_close(access_log *log);
/* Logs the response to r: status, and body bytes (< 0: none). */
void access_log_response(access_log *log, const request *r, int status, int64_t body_bytes);
/* Writes what is buffered now. */
void access_log_flush(access_log *log);

#endif
