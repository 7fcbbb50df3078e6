/*
 * task.c -- parsing and validating a task body (json-c, strict mode).
 *
 * Every body is hostile: the size is capped before parsing, the tokener
 * runs strict with UTF-8 validation and a depth limit, trailing bytes are
 * rejected, and integers must be json ints inside int64 without having
 * been clamped by json-c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "task.h"

/*
 * json-c's strict mode still takes single quotes, NaN, Infinity and raw
 * control characters in strings, so the body is first checked against the
 * RFC 8259 grammar.  The recursion is bounded by the
 * depth limit; it only answers "valid or not, and where".
 */
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

/* 0 when body is one strict JSON value; else -1 and the offset. */
static int
strict_json(const char *body, size_t len, int max_depth, size_t *offset)
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

/* json-c clamps integers out of range: positive ones above INT64_MAX are
 * kept as uint64 (and clamped to UINT64_MAX), negative ones clamped to
 * INT64_MIN.  So a value is exact when its uint64 view agrees (positive) or
 * it is above INT64_MIN (negative): the accepted range is
 * INT64_MIN + 1 .. INT64_MAX. */
static int
get_int64(struct json_object *v, int64_t *out)
{
    int64_t n;

    if (!json_object_is_type(v, json_type_int))
        return -1;
    n = json_object_get_int64(v);
    if (n == INT64_MIN)
        return -1;
    if (n >= 0 && json_object_get_uint64(v) != (uint64_t) n)
        return -1;
    *out = n;
    return 0;
}

static const char *
type_name(struct json_object *v)
{
    return v == NULL ? "null" : json_type_to_name(json_object_get_type(v));
}

static int
read_id(struct json_object *root, struct rd_task *task, char *err, size_t errlen)
{
    struct json_object *id;
    const char         *s;
    int                 len;

    if (!json_object_object_get_ex(root, "correlation_id", &id)) {
        snprintf(err, errlen, "correlation_id is missing");
        return -1;
    }
    if (json_object_is_type(id, json_type_string)) {
        s = json_object_get_string(id);
        len = json_object_get_string_len(id);
        if (len == 0 || len > RD_CORRELATION_ID_MAX || memchr(s, '\0', len)) {
            snprintf(err, errlen, "correlation_id must be a string of 1 to %d bytes "
                     "without NUL", RD_CORRELATION_ID_MAX);
            return -1;
        }
        memcpy(task->id_text, s, len);
        task->id_text[len] = '\0';
        task->id_is_string = 1;
        return 0;
    }
    if (json_object_is_type(id, json_type_int)) {
        if (get_int64(id, &task->id_int) != 0) {
            snprintf(err, errlen, "correlation_id is outside the 64-bit integer range");
            return -1;
        }
        snprintf(task->id_text, sizeof(task->id_text), "%lld", (long long) task->id_int);
        return 0;
    }
    snprintf(err, errlen, "correlation_id must be an integer or a string, not %s",
             type_name(id));
    return -1;
}

static int
read_phones(struct json_object *root, const struct rd_conf_task *limits,
            struct rd_task *task, char *err, size_t errlen)
{
    struct json_object *phones, *v;
    size_t              n, i, j;
    int64_t             p;

    if (!json_object_object_get_ex(root, "phones", &phones)) {
        snprintf(err, errlen, "phones is missing");
        return -1;
    }
    if (!json_object_is_type(phones, json_type_array)) {
        snprintf(err, errlen, "phones must be an array of integers, not %s",
                 type_name(phones));
        return -1;
    }
    n = json_object_array_length(phones);
    if (n == 0) {
        snprintf(err, errlen, "phones is empty");
        return -1;
    }
    if (n > (size_t) limits->max_phones) {
        snprintf(err, errlen, "phones has %zu entries, more than the maximum of %d",
                 n, limits->max_phones);
        return -1;
    }
    task->phones = malloc(n * sizeof(*task->phones));
    if (task->phones == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        v = json_object_array_get_idx(phones, i);
        if (!json_object_is_type(v, json_type_int)) {
            snprintf(err, errlen, "phones[%zu] must be an integer, not %s", i, type_name(v));
            return -1;
        }
        if (get_int64(v, &p) != 0) {
            snprintf(err, errlen, "phones[%zu] is outside the 64-bit integer range", i);
            return -1;
        }
        for (j = 0; j < task->nphones && task->phones[j] != p; j++)
            ;
        if (j == task->nphones)
            task->phones[task->nphones++] = p;
    }
    return 0;
}

int
rd_task_parse(const char *body, size_t len, const struct rd_conf_task *limits,
              struct rd_task *task, char *err, size_t errlen)
{
    struct json_tokener *tok;
    struct json_object  *root = NULL;
    enum json_tokener_error jerr;
    char                *copy;
    int                  rc = RD_TASK_UNREADABLE;

    size_t               offset;

    memset(task, 0, sizeof(*task));
    if (len > (size_t) limits->max_message_size) {
        snprintf(err, errlen, "message of %zu bytes exceeds max_message_size %d",
                 len, limits->max_message_size);
        return RD_TASK_UNREADABLE;
    }
    if (strict_json(body, len, limits->max_depth, &offset) != 0) {
        snprintf(err, errlen, "not JSON: invalid or nested deeper than %d at offset %zu",
                 limits->max_depth, offset);
        return RD_TASK_UNREADABLE;
    }
    /* AMQP bodies are not NUL-terminated; the tokener wants the NUL. */
    copy = malloc(len + 1);
    tok = json_tokener_new_ex(limits->max_depth);
    if (copy == NULL || tok == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    memcpy(copy, body, len);
    copy[len] = '\0';
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, copy, (int) len + 1);
    jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        if (memchr(body, '\0', len) != NULL)
            snprintf(err, errlen, "not JSON: the body contains a NUL byte");
        else
            snprintf(err, errlen, "not JSON: %s at offset %zu",
                     json_tokener_error_desc(jerr == json_tokener_success
                                             ? json_tokener_error_parse_eof : jerr),
                     json_tokener_get_parse_end(tok));
        goto done;
    }
    if (json_tokener_get_parse_end(tok) < len) {
        snprintf(err, errlen, "not JSON: trailing data at offset %zu",
                 json_tokener_get_parse_end(tok));
        goto done;
    }
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "the task must be a JSON object, not %s", type_name(root));
        goto done;
    }
    if (read_id(root, task, err, errlen) != 0)
        goto done;
    rc = RD_TASK_INVALID;
    if (read_phones(root, limits, task, err, errlen) != 0)
        goto done;
    rc = RD_TASK_OK;

done:
    if (rc != RD_TASK_OK) {
        free(task->phones);
        task->phones = NULL;
        task->nphones = 0;
    }
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    free(copy);
    return rc;
}

void
rd_task_free(struct rd_task *task)
{
    free(task->phones);
    task->phones = NULL;
    task->nphones = 0;
}
