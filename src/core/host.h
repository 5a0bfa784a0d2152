/* Host names as a request gives them (Host, :authority, SNI) and as sites
 * name themselves, compared the one way: case-insensitive, without a
 * port, without a trailing dot (RFC 9110 §4.2.3, RFC 1034 §3.1). */
#ifndef EDDY_CORE_HOST_H
#define EDDY_CORE_HOST_H

#include <stdbool.h>
#include <stddef.h>

/* The longest name eddy compares (a DNS name is at most 253 bytes; an
 * IPv6 literal with brackets fits too). */
#define HOST_MAX 255

/* The length of h without its ":port" (an IPv6 literal keeps its brackets). */
size_t host_without_port(const char *h, size_t len);

/* Writes the host of a Host value (or :authority, or an SNI name) into out
 * (HOST_MAX + 1 bytes), as names are compared: lowercase, no port, no
 * trailing dot.  Its length, or -1 for what is not a host: empty, too
 * long, a character outside RFC 3986's reg-name and IP-literal ones, a
 * port that is not digits, an empty label. */
int host_normalize(const char *in, size_t len, char *out);

/* Whether a site's name (normalized: "example.com", or "*.example.com"
 * for every name below example.com, at any depth, but not example.com
 * itself) covers a normalized host. */
bool host_name_matches(const char *name, const char *host, size_t len);

#endif
