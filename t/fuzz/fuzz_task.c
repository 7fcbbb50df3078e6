/*
 * fuzz_task.c -- libFuzzer target for the task parser and validator: every
 * body ends in exactly one of task.h's three outcomes, and each outcome
 * keeps its promises, checked against an independent reading of the body;
 * the result built from an accepted task, and writing that task back
 * (rd_task_to_json must give a body that parses to the same task).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "report.h"
#include "task.h"

#define MAX_PHONES 100

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An error is one non-empty line that fits its buffer. */
static void
check_err(const char *err, size_t errlen)
{
    size_t n = strnlen(err, errlen);

    if (n == 0 || n == errlen || strchr(err, '\n') != NULL)
        abort();
}

/* id_text is 1..255 bytes; an integer id prints as id_text, and neither
 * clamped end of json-c's range is ever taken for a value. */
static void
check_id(const struct rd_task *t)
{
    char   buf[32];
    size_t n = strnlen(t->id_text, sizeof(t->id_text));

    if (n == 0 || n > RD_CORRELATION_ID_MAX)
        abort();
    if (!t->id_is_string) {
        if (t->id_int == INT64_MIN)
            abort();
        snprintf(buf, sizeof(buf), "%lld", (long long) t->id_int);
        if (strcmp(buf, t->id_text) != 0)
            abort();
    }
}

/* The body, read again by json-c without our parser (it accepted the body
 * as strict JSON, so the default tokener reads the same tree): the id and
 * the phones, first occurrences in request order, are what we got. */
static void
check_against_body(const uint8_t *data, size_t size, const struct rd_task *t)
{
    struct json_object *root, *id, *phones, *v;
    char               *copy;
    size_t              i, j, k, m = 0, len;

    copy = malloc(size + 1);
    if (copy == NULL)
        return;
    memcpy(copy, data, size);
    copy[size] = '\0';
    root = json_tokener_parse(copy);
    free(copy);
    if (root == NULL
        || !json_object_object_get_ex(root, "correlation_id", &id)
        || !json_object_object_get_ex(root, "phones", &phones)
        || !json_object_is_type(phones, json_type_array))
        abort();
    if (t->id_is_string) {
        if (!json_object_is_type(id, json_type_string)
            || (size_t) json_object_get_string_len(id) != strlen(t->id_text)
            || memcmp(json_object_get_string(id), t->id_text, strlen(t->id_text)) != 0)
            abort();
    } else if (!json_object_is_type(id, json_type_int)
               || json_object_get_int64(id) != t->id_int) {
        abort();
    }
    len = json_object_array_length(phones);
    if (len < 1 || len > MAX_PHONES || t->nphones > len)
        abort();
    for (i = 0; i < len; i++) {
        int64_t p;

        v = json_object_array_get_idx(phones, i);
        if (!json_object_is_type(v, json_type_int))
            abort();
        p = json_object_get_int64(v);
        for (j = 0; j < i; j++)
            if (json_object_get_int64(json_object_array_get_idx(phones, j)) == p)
                break;
        if (j < i)
            continue;                   /* a repeat: folded */
        if (m >= t->nphones || t->phones[m] != p)
            abort();
        m++;
    }
    if (m != t->nphones)
        abort();
    for (k = 0; k < t->nphones; k++)
        if (t->phones[k] == INT64_MIN)
            abort();
    json_object_put(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct rd_conf_task limits = { MAX_PHONES, 65536, 16 };
    struct rd_phone_sums  stats[MAX_PHONES];
    struct rd_task        t;
    char                  err[512], *json;
    size_t                i, j;
    char                 *body;
    int                   rc;

    /* rd_task_parse() wants the NUL after the body that deliveries have. */
    body = malloc(size + 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    memset(err, 0, sizeof(err));
    rc = rd_task_parse(body, size, &limits, &t, err, sizeof(err));
    free(body);
    if (rc == RD_TASK_OK) {
        struct rd_task again;

        /* 1..max_phones phones, all distinct, and what the body says */
        if (t.phones == NULL || t.nphones < 1 || t.nphones > MAX_PHONES)
            abort();
        for (i = 0; i < t.nphones; i++)
            for (j = i + 1; j < t.nphones; j++)
                if (t.phones[i] == t.phones[j])
                    abort();
        check_id(&t);
        check_against_body(data, size, &t);

        json = rd_task_to_json(&t);
        if (json == NULL
            || rd_task_parse(json, strlen(json), &limits, &again, err, sizeof(err)) != RD_TASK_OK
            || again.nphones != t.nphones || again.id_is_string != t.id_is_string
            || again.id_int != t.id_int
            || strcmp(again.id_text, t.id_text) != 0
            || memcmp(again.phones, t.phones, t.nphones * sizeof(*t.phones)) != 0)
            abort();
        rd_task_free(&again);
        free(json);
        rd_report_init(stats, &t);
        json = rd_report_complete_json(&t, stats, 100000, "2023-05-09 02:27:03.049772", 0.5);
        free(json);
    } else if (rc == RD_TASK_INVALID) {
        /* an Error result needs an id to go back to; no task is kept */
        check_err(err, sizeof(err));
        check_id(&t);
        if (t.phones != NULL || t.nphones != 0)
            abort();
        json = rd_report_error_json(&t, err, "2023-05-09 02:27:03.049772", 0.5);
        free(json);
    } else if (rc == RD_TASK_UNREADABLE) {
        /* nothing to answer, nothing allocated */
        check_err(err, sizeof(err));
        if (t.phones != NULL || t.nphones != 0)
            abort();
    } else {
        abort();
    }
    rd_task_free(&t);
    return 0;
}
