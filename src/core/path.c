#include "core/path.h"

#include <string.h>

int path_hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

bool path_is_normal(const char *in, size_t len)
{
    if (memchr(in, '%', len) || memchr(in, '\0', len) || memmem(in, len, "//", 2))
        return false;
    /* A dot segment is a '.' right after a '/' followed by '/', '.' or the end. */
    for (const char *p = in, *end = in + len; (p = memchr(p, '.', (size_t)(end - p))); p++) {
        if (p == in || p[-1] != '/')
            continue;
        if (p + 1 == end || p[1] == '/')
            return false;
        if (p[1] == '.' && (p + 2 == end || p[2] == '/'))
            return false;
    }
    return true;
}

int path_normalize(const char *in, size_t len, char *out, size_t *out_len)
{
    size_t n = 0; /* bytes in out; out always starts with '/' once written */
    size_t i = 0;
    bool absolute = len > 0 && in[0] == '/';
    if (absolute)
        i = 1;
    out[n++] = '/';
    /* One segment at a time: decode it into place after the last '/',
     * then keep, drop (".") or pop (".."). */
    for (;;) {
        size_t seg = n;
        bool ended_by_slash = false;
        while (i < len) {
            char ch = in[i];
            if (ch == '/') {
                i++;
                ended_by_slash = true;
                break;
            }
            if (ch == '%') {
                int hi = i + 2 < len ? path_hex_value(in[i + 1]) : -1;
                int lo = i + 2 < len ? path_hex_value(in[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return 400;
                ch = (char)(hi << 4 | lo);
                i += 3;
                if (ch == '/') {
                    ended_by_slash = true; /* an encoded slash separates like a slash */
                    break;
                }
            } else {
                i++;
            }
            if (ch == '\0')
                return 400;
            out[n++] = ch;
        }
        size_t sl = n - seg;
        if (sl == 0) {
            /* an empty segment: "//" merges into one slash */
        } else if (sl == 1 && out[seg] == '.') {
            n = seg; /* "." : dropped, the '/' before it stays */
        } else if (sl == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            /* "..": pop the segment before it; at "/" there is none. */
            n = seg - 1;
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n == 0)
                n = 1;
        } else if (ended_by_slash) {
            out[n++] = '/';
        }
        if (!ended_by_slash)
            break;
    }
    out[n] = '\0';
    *out_len = n;
    return 0;
}
