/*
 * json_check.h -- strict JSON validation of untrusted bytes, one member of
 * an object found without parsing the rest, and any bytes as a valid JSON
 * string.
 */
#ifndef RD_JSON_CHECK_H
#define RD_JSON_CHECK_H

#include <stddef.h>

/* 0 when body[0..len) is one strict JSON value nested at most max_depth
 * deep; -1 otherwise, with *offset at the first byte that is wrong. */
int rd_json_check(const char *body, size_t len, int max_depth, size_t *offset);

/* How deep the members before the one rd_json_member() looks for may nest. */
#define RD_JSON_MEMBER_DEPTH  64

/* Member `key` of the JSON object body[0..len), found by scanning the
 * members before it and no further, so a large object costs what its
 * first members do.  0 with val[0..*vlen) its value's text (a string's
 * quotes and escapes included); -1 when body is not an object, has no
 * such member, or is not strict JSON up to it.  key is compared with each
 * member's name as written, byte for byte: escaped names never match. */
int rd_json_member(const char *body, size_t len, const char *key, const char **val,
                   size_t *vlen);

/* The length of the UTF-8 sequence at p (before end): 1 for ASCII, 0 when
 * the bytes there are not valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, nothing cut short). */
size_t rd_utf8_seq(const char *p, const char *end);

/* s[0..len) as a JSON string, quotes included, malloc'ed (NULL when memory
 * ran out): quotes, backslashes, control characters and DEL escaped, and
 * each byte that is not part of valid UTF-8 (a message cut in the middle
 * of a character) replaced by U+FFFD, so the text is valid JSON whatever
 * bytes it was given. */
char *rd_json_quote(const char *s, size_t len);

#endif
