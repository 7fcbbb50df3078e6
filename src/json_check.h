/*
 * json_check.h -- strict JSON validation of untrusted bytes, and one member
 * of an object found without parsing the rest.
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

#endif
