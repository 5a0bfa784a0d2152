#include "core/fields.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

bool field_is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    switch (ch) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

static bool value_byte_ok(unsigned char ch) { return (ch >= 0x20 || ch == '\t') && ch != 0x7f; }

bool field_value_ok(const char *v, size_t len)
{
    /* Eight bytes per step: every header value of every request passes
     * here.  A word is flagged when a byte may be below 0x20 or be DEL
     * (never missed; a tab, which is allowed, flags it too), and only a
     * flagged word is looked at byte by byte. */
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, v + i, 8);
        uint64_t del = x ^ (ones * 0x7f);
        if ((((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) & highs) {
            for (size_t j = i; j < i + 8; j++)
                if (!value_byte_ok((unsigned char)v[j]))
                    return false;
        }
    }
    for (; i < len; i++)
        if (!value_byte_ok((unsigned char)v[i]))
            return false;
    return true;
}

bool field_list_has(const char *v, size_t len, const char *token, size_t token_len)
{
    size_t k = 0;
    while (k < len) {
        while (k < len && (v[k] == ',' || v[k] == ' ' || v[k] == '\t'))
            k++;
        size_t start = k;
        while (k < len && v[k] != ',' && v[k] != ' ' && v[k] != '\t')
            k++;
        if (k - start == token_len && token_len && strncasecmp(v + start, token, token_len) == 0)
            return true;
    }
    return false;
}
