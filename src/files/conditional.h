/* Validators and conditional requests for static files (RFC 9110 §8.8, §13):
 * entity tags, HTTP-dates, and the precondition evaluation order. */
#ifndef EDDY_FILES_CONDITIONAL_H
#define EDDY_FILES_CONDITIONAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "core/date.h"

#define ETAG_MAX 64

/* A strong entity tag for a file from its size, modification time and inode,
 * written as "\"<size>-<mtime>-<ino>\"" in hex (quotes included,
 * NUL-terminated); returns its length (at most 60).  Distinct inputs give
 * distinct tags; mtime_nsec is expected in [0, 1e9) and is normalised into
 * mtime_sec when it is not. */
size_t etag_make(char out[ETAG_MAX], uint64_t size, int64_t mtime_sec, long mtime_nsec,
                 uint64_t ino);

/* A request's conditional fields: ptr NULL when the field is absent.  Values
 * are not NUL-terminated; leading and trailing OWS is tolerated. */
typedef struct cond_fields {
    const char *if_match, *if_none_match, *if_modified_since, *if_unmodified_since;
    size_t if_match_len, if_none_match_len, if_modified_since_len, if_unmodified_since_len;
} cond_fields;

enum cond_result { COND_PROCEED = 0, COND_NOT_MODIFIED = 304, COND_PRECONDITION_FAILED = 412 };

/* Evaluates the preconditions in RFC 9110 §13.2.2 order for a resource that
 * exists, whose current validators are etag (quoted, normally strong) and
 * last_modified (whole seconds):
 *  1. If-Match, strong comparison, "*" matches: false -> 412.
 *  2. else If-Unmodified-Since (ignored when not a valid date): modified after
 *     it -> 412.
 *  3. If-None-Match, weak comparison, "*" matches: a match -> 304 for GET and
 *     HEAD, 412 for other methods.
 *  4. else, for GET and HEAD only, If-Modified-Since (ignored when not a valid
 *     date): not modified after it -> 304.
 * A malformed entity-tag list never matches (so it fails If-Match and passes
 * If-None-Match); an empty list matches nothing. */
enum cond_result cond_evaluate(const cond_fields *f, bool get_or_head, const char *etag,
                               size_t etag_len, time_t last_modified);

/* If-Range (RFC 9110 §13.1.5): true when the Range may be honoured.  The value
 * is either one entity tag, which must equal etag by strong comparison (a weak
 * tag never does), or an HTTP-date exactly equal to last_modified.  Anything
 * else is false. */
bool cond_if_range(const char *v, size_t len, const char *etag, size_t etag_len,
                   time_t last_modified);

#endif
