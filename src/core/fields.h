/* Field syntax (RFC 9110 §5): what a field name and value may hold, for
 * the fields a request brings and those a handler adds to a response. */
#ifndef EDDY_CORE_FIELDS_H
#define EDDY_CORE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

/* tchar (RFC 9110 §5.6.2): a field name is one or more of them. */
bool field_is_tchar(unsigned char ch);
/* A field value: VCHAR, obs-text, SP and HTAB only — no NUL, CR, LF
 * (obs-fold), DEL or other controls (RFC 9110 §5.5). */
bool field_value_ok(const char *v, size_t len);
/* Whether a comma-separated list value (Connection, RFC 9110 §5.6.1)
 * holds token, compared without case. */
bool field_list_has(const char *v, size_t len, const char *token, size_t token_len);

#endif
