#include "http/rules.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>


static bool is_unreserved_or_sub_delim(unsigned char ch)
{
    if ((unsigned)((ch | 0x20) - 'a') < 26 || (unsigned)(ch - '0') < 10 || ch == '.')
        return true;
    switch (ch) {
    case '-': case '.': case '_': case '~':                         /* unreserved */
    case '!': case '$': case '&': case '\'': case '(': case ')':    /* sub-delims */
    case '*': case '+': case ',': case ';': case '=':
    case '%':                                                       /* pct-encoded */
        return true;
    default:
        return false;
    }
}

static bool is_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

bool rules_host_ok(const char *v, size_t len)
{
    size_t i = 0;
    if (len && v[0] == '[') {
        /* IP-literal: IPv6address or IPvFuture, checked loosely for charset. */
        for (i = 1; i < len && v[i] != ']'; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (!is_hex(ch) && ch != ':' && ch != '.' && ch != 'v' && ch != 'V' &&
                !is_unreserved_or_sub_delim(ch))
                return false;
        }
        if (i == len || i == 1)
            return false;
        i++; /* past ']' */
    } else {
        while (i < len && v[i] != ':') {
            unsigned char ch = (unsigned char)v[i];
            if ((unsigned)((ch | 0x20) - 'a') < 26 || (unsigned)(ch - '0') < 10 || ch == '.') {
                i++; /* what names and addresses are made of, decided at once */
                continue;
            }
            if (!is_unreserved_or_sub_delim(ch))
                return false;
            if (ch == '%' && (i + 2 >= len || !is_hex((unsigned char)v[i + 1]) ||
                              !is_hex((unsigned char)v[i + 2])))
                return false;
            i++;
        }
    }
    if (i == len)
        return true;
    if (v[i] != ':')
        return false;
    for (i++; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

void rules_transfer_encoding(const char *v, size_t len, te_summary *te)
{
    size_t i = 0;
    while (i <= len) {
        /* One list element: OWS token [params] OWS, up to ',' or the end. */
        while (i < len && is_ows(v[i]))
            i++;
        size_t start = i;
        while (i < len && field_is_tchar((unsigned char)v[i]))
            i++;
        size_t tok_len = i - start;
        bool params = false;
        while (i < len && v[i] != ',') {
            if (v[i] == ';')
                params = true;
            else if (!is_ows(v[i]) && !params)
                te->malformed = true;
            i++;
        }
        if (tok_len) {
            if (te->chunked)
                te->chunked_not_last = true;
            if (tok_len == 7 && strncasecmp(v + start, "chunked", 7) == 0 && !params)
                te->chunked++;
            else
                te->other = true;
        }
        i++; /* past ',' (or past the end) */
    }
}

int rules_te_status(const te_summary *te)
{
    if (te->malformed || te->chunked != 1 || te->chunked_not_last)
        return 400;
    if (te->other)
        return 501;
    return 0;
}
