/* HTTP range requests (RFC 9110 §14): parsing the Range field against a
 * representation's size, and framing multipart/byteranges bodies. */
#ifndef EDDY_FILES_RANGE_H
#define EDDY_FILES_RANGE_H

#include <stddef.h>
#include <stdint.h>

/* A Range field naming more ranges than this is ignored (served as 200): a
 * defence against range floods.  Empty list elements do not count. */
#define RANGE_MAX_PARTS 16

/* Inclusive: first <= last < size. */
typedef struct byte_range {
    uint64_t first, last;
} byte_range;

static inline uint64_t byte_range_len(const byte_range *r) { return r->last - r->first + 1; }

enum range_result {
    RANGE_IGNORE,        /* serve the whole representation (200) */
    RANGE_OK,            /* serve the ranges (206) */
    RANGE_UNSATISFIABLE, /* 416; its Content-Range gives only the size */
};

/* Parses a Range field value (v, len; not NUL-terminated, may hold any
 * byte) against a representation of `size` bytes.
 * RANGE_IGNORE: malformed (any invalid range-spec poisons the whole field,
 *   including first > last), a unit other than "bytes", more than
 *   RANGE_MAX_PARTS range-specs, or more than `max` ranges left after
 *   coalescing.
 * RANGE_OK: *n (1..max) satisfiable ranges in out[], in request order, with
 *   overlapping or adjacent ranges coalesced into the position of the first
 *   of them (RFC 9110 §14.1.1 allows it; it defeats overlapping-range
 *   amplification).  Last positions beyond the end are clamped to size - 1.
 * RANGE_UNSATISFIABLE: well-formed but no range is satisfiable (every
 *   first-pos >= size, suffixes of 0, or size 0).
 * *n is 0 unless RANGE_OK. */
enum range_result range_parse(const char *v, size_t len, uint64_t size, byte_range *out, size_t max,
                              size_t *n);

/* multipart/byteranges (RFC 9110 §14.6).  The body is, for each range, a
 * part head then the range's bytes, and after the last part the tail.  The
 * first head's leading CRLF is preamble as far as the multipart grammar is
 * concerned, so every head has the same shape.
 *
 * The writers behave like snprintf: they write at most cap - 1 bytes and a
 * NUL (when cap > 0) and return the full length, so a return >= cap means
 * the output was cut short.  buf may be NULL when cap is 0. */

/* "\r\n--BOUNDARY\r\nContent-Type: TYPE\r\nContent-Range: bytes F-L/SIZE\r\n\r\n";
 * type may be NULL, leaving out the Content-Type line (for a representation
 * that has none). */
size_t range_part_head(char *buf, size_t cap, const char *boundary, const char *type,
                       const byte_range *r, uint64_t size);
/* "\r\n--BOUNDARY--\r\n" */
size_t range_multipart_tail(char *buf, size_t cap, const char *boundary);
/* Body length of the whole response, for its Content-Length: exactly the
 * bytes the two writers produce plus the ranges' bytes.  Saturates at
 * UINT64_MAX (only reachable with ranges not produced by range_parse). */
uint64_t range_multipart_length(const char *boundary, const char *type, const byte_range *r,
                                size_t n, uint64_t size);

#endif
