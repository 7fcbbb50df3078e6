/*
 * task.c -- the task body: parsing and validating one (json-c, strict
 * mode), and writing one for reporterctl.
 *
 * Every body is hostile: the size is capped first, the bytes must be one
 * strict JSON value within the depth limit (json_check.c), json-c then
 * parses them with trailing bytes rejected, and integers must be json ints
 * inside int64 that json-c did not clamp.  Duplicate phones are folded in
 * O(n log n), keeping each phone's first position.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_check.h"
#include "task.h"

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

struct slot {
    int64_t phone;
    size_t  pos;
};

static int
cmp_slot(const void *a, const void *b)
{
    const struct slot *x = a, *y = b;

    if (x->phone != y->phone)
        return x->phone < y->phone ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Keep the first occurrence of each phone, in request order: sort a copy
 * by (phone, position), mark the first of each run, compact. */
static int
fold_duplicates(struct rd_task *task)
{
    struct slot   *s;
    unsigned char *keep;
    size_t         i, n = task->nphones, m = 0;

    s = malloc(n * sizeof(*s));
    keep = calloc(n, 1);
    if (s == NULL || keep == NULL) {
        free(s);
        free(keep);
        return -1;
    }
    for (i = 0; i < n; i++) {
        s[i].phone = task->phones[i];
        s[i].pos = i;
    }
    qsort(s, n, sizeof(*s), cmp_slot);
    for (i = 0; i < n; i++)
        if (i == 0 || s[i].phone != s[i - 1].phone)
            keep[s[i].pos] = 1;
    for (i = 0; i < n; i++)
        if (keep[i])
            task->phones[m++] = task->phones[i];
    task->nphones = m;
    free(s);
    free(keep);
    return 0;
}

static int
read_phones(struct json_object *root, const struct rd_conf_task *limits,
            struct rd_task *task, char *err, size_t errlen)
{
    struct json_object *phones, *v;
    size_t              n, i;
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
        task->phones[task->nphones++] = p;
    }
    if (fold_duplicates(task) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
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
    int                  rc = RD_TASK_UNREADABLE;
    size_t               offset;

    memset(task, 0, sizeof(*task));
    if (len > (size_t) limits->max_message_size) {
        snprintf(err, errlen, "message of %zu bytes exceeds max_message_size %d",
                 len, limits->max_message_size);
        return RD_TASK_UNREADABLE;
    }
    if (rd_json_check(body, len, limits->max_depth, &offset) != 0) {
        snprintf(err, errlen, "not JSON: invalid or nested deeper than %d at offset %zu",
                 limits->max_depth, offset);
        return RD_TASK_UNREADABLE;
    }
    /* json-c's limit counts one more level than ours (its depth d admits
     * d - 1 nested containers); rd_json_check() enforced ours already. */
    tok = json_tokener_new_ex(limits->max_depth + 1);
    if (tok == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    /* The tokener needs the terminating NUL to end a bare number. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, body, (int) len + 1);
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
    return rc;
}

void
rd_task_free(struct rd_task *task)
{
    free(task->phones);
    task->phones = NULL;
    task->nphones = 0;
}

char *
rd_task_to_json(const struct rd_task *task)
{
    struct json_object *o, *phones;
    char               *out = NULL;
    size_t              i;

    o = json_object_new_object();
    phones = json_object_new_array_ext((int) task->nphones);
    if (o == NULL || phones == NULL) {
        json_object_put(o);
        json_object_put(phones);
        return NULL;
    }
    json_object_object_add(o, "correlation_id", task->id_is_string
                           ? json_object_new_string(task->id_text)
                           : json_object_new_int64(task->id_int));
    for (i = 0; i < task->nphones; i++)
        if (json_object_array_add(phones, json_object_new_int64(task->phones[i])) != 0)
            goto done;
    json_object_object_add(o, "phones", phones);
    phones = NULL;
    out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN
                                                | JSON_C_TO_STRING_NOSLASHESCAPE));
done:
    json_object_put(phones);
    json_object_put(o);
    return out;
}
