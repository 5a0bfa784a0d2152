#include "core/host.h"

#include <string.h>

size_t host_without_port(const char *h, size_t len)
{
    if (len && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        return close ? (size_t)(close - h) + 1 : len;
    }
    const char *colon = memchr(h, ':', len);
    return colon ? (size_t)(colon - h) : len;
}

/* RFC 3986 reg-name characters eddy takes in a host: letters, digits,
 * '-', '.', '_' (seen in the wild); percent-encoding and sub-delims are
 * refused (no server name uses them). */
static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

int host_normalize(const char *in, size_t len, char *out)
{
    size_t hl = host_without_port(in, len);
    /* The port, when there is one: digits only (an empty one is allowed,
     * RFC 3986 §3.2.3). */
    if (hl < len) {
        if (in[hl] != ':')
            return -1;
        for (size_t i = hl + 1; i < len; i++)
            if (in[i] < '0' || in[i] > '9')
                return -1;
    }
    if (hl == 0 || hl > HOST_MAX)
        return -1;
    if (in[0] == '[') {
        /* An IPv6 literal: hex digits, colons and dots inside brackets. */
        if (hl < 3 || in[hl - 1] != ']')
            return -1;
        for (size_t i = 1; i + 1 < hl; i++) {
            unsigned char c = (unsigned char)in[i];
            bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            if (!hex && c != ':' && c != '.')
                return -1;
            out[i] = (char)(c >= 'A' && c <= 'F' ? c + 32 : c);
        }
        out[0] = '[';
        out[hl - 1] = ']';
        out[hl] = 0;
        return (int)hl;
    }
    if (hl > 1 && in[hl - 1] == '.')
        hl--; /* "example.com." is example.com */
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!name_char(c) || (c == '.' && (i == 0 || in[i - 1] == '.')))
            return -1;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (out[hl - 1] == '.')
        return -1; /* "." alone, or a name that ended in ".." */
    out[hl] = 0;
    return (int)hl;
}

bool host_name_matches(const char *name, const char *host, size_t len)
{
    size_t nl = strlen(name);
    if (nl >= 2 && name[0] == '*' && name[1] == '.') {
        /* ".example.com" must end the host, with at least one label before. */
        size_t sl = nl - 1;
        return len > sl && memcmp(host + len - sl, name + 1, sl) == 0;
    }
    return nl == len && memcmp(name, host, len) == 0;
}
