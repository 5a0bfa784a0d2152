#include "files/conditional.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ entity tags -- */

size_t etag_make(char out[ETAG_MAX], uint64_t size, int64_t mtime_sec, long mtime_nsec,
                 uint64_t ino)
{
    /* A struct timespec from stat always has nsec in [0, 1e9); anything else
     * names the same instant as a normalised pair, so fold it in rather than
     * let two spellings of one time give two tags.  Unsigned arithmetic:
     * wrapping is defined and keeps the mapping one-to-one. */
    long carry = mtime_nsec / 1000000000L;
    long nsec = mtime_nsec % 1000000000L;
    if (nsec < 0) {
        nsec += 1000000000L;
        carry--;
    }
    uint64_t sec = (uint64_t)mtime_sec + (uint64_t)(int64_t)carry;
    /* The nanoseconds are a fixed 8 hex digits after the seconds (1e9 - 1 <
     * 16^8), so the pair reads back unambiguously and the middle field is one
     * number, as in "<size>-<mtime>-<ino>".  Longest: 2 quotes + 16 + 1 +
     * 16 + 8 + 1 + 16 = 60 chars, which leaves room for the NUL. */
    int n = snprintf(out, ETAG_MAX, "\"%" PRIx64 "-%" PRIx64 "%08" PRIx32 "-%" PRIx64 "\"", size,
                     sec, (uint32_t)nsec, ino);
    return n > 0 ? (size_t)n : 0;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Field values may reach us with OWS still around them. */
static void trim_ows(const char **v, size_t *len)
{
    while (*len > 0 && is_ows((*v)[0])) {
        (*v)++;
        (*len)--;
    }
    while (*len > 0 && is_ows((*v)[*len - 1]))
        (*len)--;
}

typedef struct etag_ref {
    const char *opaque; /* the quoted string, quotes included */
    size_t len;
    bool weak;
} etag_ref;

/* etagc = %x21 / %x23-7E / obs-text: visible characters but DQUOTE.  No
 * backslash escapes either: an opaque-tag is not a quoted-string. */
static bool is_etagc(unsigned char ch)
{
    return ch == 0x21 || (ch >= 0x23 && ch <= 0x7e) || ch >= 0x80;
}

/* Reads one entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE at s[*i].  "W/" is
 * case-sensitive (%s"W/" in RFC 9110 §8.8.3). */
static bool etag_scan(const char *s, size_t len, size_t *i, etag_ref *out)
{
    size_t j = *i;
    out->weak = false;
    if (len - j >= 2 && s[j] == 'W' && s[j + 1] == '/') {
        out->weak = true;
        j += 2;
    }
    if (j >= len || s[j] != '"')
        return false;
    size_t start = j++;
    while (j < len && is_etagc((unsigned char)s[j]))
        j++;
    if (j >= len || s[j] != '"')
        return false;
    j++;
    out->opaque = s + start;
    out->len = j - start;
    *i = j;
    return true;
}

/* A value that is exactly one entity-tag (after OWS). */
static bool etag_whole(const char *s, size_t len, etag_ref *out)
{
    size_t i = 0;
    trim_ows(&s, &len);
    return etag_scan(s, len, &i, out) && i == len;
}

/* RFC 9110 §8.8.3.2: strong comparison needs both tags strong; weak
 * comparison ignores W/ on either side.  Both then compare octets. */
static bool etag_eq(const etag_ref *a, const etag_ref *b, bool strong)
{
    if (strong && (a->weak || b->weak))
        return false;
    return a->len == b->len && memcmp(a->opaque, b->opaque, a->len) == 0;
}

/* If-Match / If-None-Match = "*" / #entity-tag.  The list syntax allows empty
 * elements and OWS around commas.  The whole value is checked before a match
 * counts: a malformed list means nothing, so it never matches. */
static bool etag_list_matches(const char *v, size_t len, const char *cur, size_t cur_len,
                              bool strong)
{
    trim_ows(&v, &len);
    if (len == 1 && v[0] == '*')
        return true; /* the resource exists: cond_evaluate's premise */
    etag_ref mine;
    if (!etag_whole(cur, cur_len, &mine))
        return false;
    bool found = false;
    size_t i = 0;
    for (;;) {
        while (i < len && is_ows(v[i]))
            i++;
        if (i == len)
            break;
        if (v[i] == ',') {
            i++;
            continue;
        }
        etag_ref t;
        if (!etag_scan(v, len, &i, &t))
            return false;
        if (etag_eq(&t, &mine, strong))
            found = true;
        while (i < len && is_ows(v[i]))
            i++;
        if (i < len && v[i] != ',')
            return false;
    }
    return found;
}


/* ---------------------------------------------------------- preconditions -- */

/* A date-valued precondition field; false when it is not a valid HTTP-date
 * (including a list of dates), which the RFC says to ignore. */
static bool field_date(const char *v, size_t len, time_t *out)
{
    trim_ows(&v, &len);
    return http_date_parse(v, len, out) == 0;
}

enum cond_result cond_evaluate(const cond_fields *f, bool get_or_head, const char *etag,
                               size_t etag_len, time_t last_modified)
{
    time_t d;
    if (!f)
        return COND_PROCEED;
    /* Step 1 and 2: the state-changing guards.  If-Unmodified-Since is the
     * fallback for clients without an entity tag, so If-Match overrides it. */
    if (f->if_match) {
        if (!etag_list_matches(f->if_match, f->if_match_len, etag, etag_len, true))
            return COND_PRECONDITION_FAILED;
    } else if (f->if_unmodified_since) {
        if (field_date(f->if_unmodified_since, f->if_unmodified_since_len, &d) &&
            last_modified > d)
            return COND_PRECONDITION_FAILED;
    }
    /* Step 3 and 4: cache validation.  Likewise the entity tag wins over the
     * date; a present If-None-Match, even malformed, silences the date. */
    if (f->if_none_match) {
        if (etag_list_matches(f->if_none_match, f->if_none_match_len, etag, etag_len, false))
            return get_or_head ? COND_NOT_MODIFIED : COND_PRECONDITION_FAILED;
    } else if (get_or_head && f->if_modified_since) {
        if (field_date(f->if_modified_since, f->if_modified_since_len, &d) &&
            last_modified <= d)
            return COND_NOT_MODIFIED;
    }
    return COND_PROCEED;
}

bool cond_if_range(const char *v, size_t len, const char *etag, size_t etag_len,
                   time_t last_modified)
{
    trim_ows(&v, &len);
    /* §13.1.5: an entity-tag starts with DQUOTE within its first three
     * characters (W/"); an HTTP-date never does. */
    if ((len >= 1 && v[0] == '"') || (len >= 3 && v[0] == 'W' && v[1] == '/' && v[2] == '"')) {
        etag_ref theirs, mine;
        return etag_whole(v, len, &theirs) && etag_whole(etag, etag_len, &mine) &&
               etag_eq(&theirs, &mine, true);
    }
    time_t d;
    return field_date(v, len, &d) && d == last_modified;
}
