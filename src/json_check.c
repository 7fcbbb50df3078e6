/*
 * json_check.c -- is a message one strict JSON value (RFC 8259, UTF-8 per
 * RFC 3629), nested no deeper than a limit?  json-c's strict mode still
 * takes single quotes, NaN, Infinity, raw control characters and invalid
 * UTF-8, so task bodies pass this check before json-c parses them.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"

struct scan {
    const char *p, *end;
    int         depth, max_depth;
};

static void
skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int scan_value(struct scan *s);

static int
scan_literal(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t) (s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* Length of the UTF-8 sequence at p, or 0 if it is not valid UTF-8 (RFC
 * 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 * json-c's JSON_TOKENER_VALIDATE_UTF8 lets all three through, and they
 * would be echoed into the result. */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t        n, i;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, lo = p[0] == 0xE0 ? 0xA0 : 0x80, hi = p[0] == 0xED ? 0x9F : 0xBF;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, lo = p[0] == 0xF0 ? 0x90 : 0x80, hi = p[0] == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if ((size_t) (end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static int
scan_string(struct scan *s)
{
    int    i;
    size_t n;

    s->p++;                                   /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = (unsigned char) *s->p++;

        if (c == '"')
            return 0;
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            n = utf8_seq((const unsigned char *) s->p - 1, (const unsigned char *) s->end);
            if (n == 0) {
                s->p--;
                return -1;
            }
            s->p += n - 1;
            continue;
        }
        if (c == '\\') {
            if (s->p >= s->end)
                return -1;
            c = (unsigned char) *s->p++;
            if (c == 'u') {
                for (i = 0; i < 4; i++, s->p++)
                    if (s->p >= s->end || !isxdigit((unsigned char) *s->p))
                        return -1;
            } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
                return -1;
            }
        }
    }
    return -1;
}

static int
scan_number(struct scan *s)
{
    const char *start;

    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end || !isdigit((unsigned char) *s->p))
        return -1;
    if (*s->p == '0')
        s->p++;
    else
        while (s->p < s->end && isdigit((unsigned char) *s->p))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        start = ++s->p;
        while (s->p < s->end && isdigit((unsigned char) *s->p))
            s->p++;
        if (s->p == start)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        start = s->p;
        while (s->p < s->end && isdigit((unsigned char) *s->p))
            s->p++;
        if (s->p == start)
            return -1;
    }
    return 0;
}

static int
scan_container(struct scan *s, char close)
{
    if (++s->depth > s->max_depth)
        return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(s);
        if (close == '}') {
            if (s->p >= s->end || *s->p != '"' || scan_string(s) != 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p++ != ':')
                return -1;
        }
        if (scan_value(s) != 0)
            return -1;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p++ != close)
            return -1;
        s->depth--;
        return 0;
    }
}

static int
scan_value(struct scan *s)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{': return scan_container(s, '}');
    case '[': return scan_container(s, ']');
    case '"': return scan_string(s);
    case 't': return scan_literal(s, "true");
    case 'f': return scan_literal(s, "false");
    case 'n': return scan_literal(s, "null");
    default:  return scan_number(s);
    }
}

int
rd_json_check(const char *body, size_t len, int max_depth, size_t *offset)
{
    struct scan s = { body, body + len, 0, max_depth };

    if (scan_value(&s) == 0) {
        skip_ws(&s);
        if (s.p == s.end)
            return 0;
    }
    *offset = (size_t) (s.p - body);
    return -1;
}


int
rd_json_member(const char *body, size_t len, const char *key, const char **val, size_t *vlen)
{
    struct scan s = { body, body + len, 1, RD_JSON_MEMBER_DEPTH };
    size_t      klen = strlen(key);
    const char *name;
    size_t      nlen;

    skip_ws(&s);
    if (s.p >= s.end || *s.p++ != '{')
        return -1;
    for (;;) {
        skip_ws(&s);
        name = s.p;
        if (s.p >= s.end || *s.p != '"' || scan_string(&s) != 0)
            return -1;
        nlen = (size_t) (s.p - name);       /* the quotes included */
        skip_ws(&s);
        if (s.p >= s.end || *s.p++ != ':')
            return -1;
        skip_ws(&s);
        *val = s.p;
        if (scan_value(&s) != 0)
            return -1;
        if (nlen == klen + 2 && memcmp(name + 1, key, klen) == 0) {
            *vlen = (size_t) (s.p - *val);
            return 0;
        }
        skip_ws(&s);
        if (s.p >= s.end || *s.p++ != ',')
            return -1;
    }
}

size_t
rd_utf8_seq(const char *p, const char *end)
{
    return p < end ? utf8_seq((const unsigned char *) p, (const unsigned char *) end) : 0;
}

char *
rd_json_quote(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    char       *out, *o;
    size_t      n;

    out = malloc(len * 6 + 3);
    if (out == NULL)
        return NULL;
    o = out;
    *o++ = '"';
    while (p < end) {
        unsigned char c = (unsigned char) *p;

        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char) c;
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            o += sprintf(o, "\\u%04x", c);
            p++;
        } else if ((n = rd_utf8_seq(p, end)) == 0) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}
