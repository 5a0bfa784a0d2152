/* The access log's JSON format: one object per line, built from what
 * access_log.c gathers of a response.  Apart so each file has one job. */
#ifndef EDDY_CORE_ACCESS_JSON_H
#define EDDY_CORE_ACCESS_JSON_H

#include "eddy.h"
#include <stddef.h>
#include <stdint.h>

typedef struct access_entry {
    const char *time_sec;   /* "2026-12-05T03:14:05", UTC */
    unsigned time_ms;       /* 0..999 */
    const char *client;
    eddy_str method, path, host, referer, user_agent; /* ptr NULL: null */
    int status;
    int64_t bytes;
    uint64_t duration_us;
    const char *protocol;   /* "HTTP/1.1", "HTTP/2"; NULL: null */
    const char *tls;        /* "TLSv1.3"; NULL: null (plain TCP) */
} access_entry;

/* Longest output a field may take (quotes and escapes included); the
 * User-Agent gets what is left of the line. */
#define ACCESS_JSON_METHOD_MAX 64
#define ACCESS_JSON_PATH_MAX 1536
#define ACCESS_JSON_HOST_MAX 256
#define ACCESS_JSON_REFERER_MAX 1024

/* Writes e as one JSON object and a newline into line (cap bytes, at
 * least 1024): long strings are cut, never the line.  Strings escape '"',
 * '\' and controls; bytes that are not well-formed UTF-8 each become
 * \ufffd, so any input makes valid JSON.  Returns the bytes written. */
size_t access_json_line(char *line, size_t cap, const access_entry *e);

#endif
