/*
 * json_check.h -- strict JSON validation of untrusted bytes.
 */
#ifndef RD_JSON_CHECK_H
#define RD_JSON_CHECK_H

#include <stddef.h>

/* 0 when body[0..len) is one strict JSON value nested at most max_depth
 * deep; -1 otherwise, with *offset at the first byte that is wrong. */
int rd_json_check(const char *body, size_t len, int max_depth, size_t *offset);

#endif
