#include "files/path.h"

#include <string.h>

int path_resolve(const char *in, size_t len, bool allow_dotfiles, resolved_path *out)
{
    char *rel = out->rel;
    size_t cap = sizeof(out->rel);
    size_t n = 0;          /* bytes in rel */
    size_t i = 0;
    out->trailing_slash = len == 0 || in[len - 1] == '/';
    /* Walk the segments; dot segments are gone already, but ".." is still
     * popped here so no input, however it came, can climb out. */
    while (i <= len) {
        char seg[256];
        size_t sl = 0;
        while (i < len && in[i] != '/') {
            char ch = in[i++];
            if (ch == '\0')
                return 400;
            if (sl + 1 >= sizeof(seg))
                return 404; /* NAME_MAX is 255 */
            seg[sl++] = ch;
        }
        if (i < len && in[i] == '/')
            i++;
        else if (i >= len)
            i = len + 1; /* last segment */
        if (sl == 0 || (sl == 1 && seg[0] == '.'))
            continue;
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            /* Pop the last segment; at the root there is nothing to pop. */
            while (n > 0 && rel[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
            continue;
        }
        if (seg[0] == '.' && !allow_dotfiles)
            return 404; /* dotfiles (.git, .env) are not served */
        if (n + sl + 2 >= cap)
            return 404;
        if (n)
            rel[n++] = '/';
        memcpy(rel + n, seg, sl);
        n += sl;
    }
    if (n == 0)
        rel[n++] = '.';
    rel[n] = '\0';
    return 0;
}
