/*
 * fuzz_row.c -- libFuzzer target for the reading of aggregation rows
 * (rd_report_add_row): any BSON document either folds into the entry of
 * the phone it names, with exactly the counts its n, c0, c10 and c30 say
 * (half of n + c0 valid, and so on: figured here in 128 bits) and its
 * integer sums, or is left out
 * when its _id is no phone, or is refused with one line; no other entry
 * ever changes, and a result built from what
 * was accepted is strict JSON: Complete, or an Error when a figure reaches
 * RD_REPORT_MAX_FIGURE.  Inputs that are not valid BSON are skipped:
 * libbson checks that before a row reaches us.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>
#include <json-c/json.h>

#include "report.h"
#include "task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The task's phones: int32 and int64 ones, negative, and the ends of the
 * range the task parser accepts. */
static int64_t phones[] = {
    1000, 1001, 79160000000, -1, 0, INT64_MAX, INT64_MIN + 1, 4503599627370497
};
#define NPHONES (sizeof(phones) / sizeof(phones[0]))


/* A Decimal128's text as the int64 it equals: digits with the point
 * removed, shifted by the exponent; 0 when it is no integer in range. */
static int
decimal_phone(const bson_decimal128_t *d, int64_t *phone)
{
    char              text[BSON_DECIMAL128_STRING], digits[96];
    char             *p = text, *e;
    size_t            nd = 0, i;
    long              exp = 0, frac = 0, shift;
    int               neg, point = 0;
    unsigned __int128 v = 0, lim = (unsigned __int128) 1 << 63;

    bson_decimal128_to_string(d, text);
    neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
        if (*p == '.') {
            point = 1;
            continue;
        }
        if (nd == sizeof(digits))
            return 0;
        digits[nd++] = *p;
        frac += point;
    }
    if (*p == 'E') {
        exp = strtol(p + 1, &e, 10);
        p = e;
    }
    if (*p != '\0' || nd == 0)
        return 0;                       /* NaN, Infinity */
    shift = exp - frac;
    for (i = 0; i < nd; i++) {
        if ((long) i >= (long) nd + shift) {
            if (digits[i] != '0')
                return 0;
        } else if ((v = v * 10 + (unsigned) (digits[i] - '0')) > lim) {
            return 0;
        }
    }
    for (; v != 0 && shift > 0; shift--)
        if ((v *= 10) > lim)
            return 0;
    if (v == lim && !neg)
        return 0;
    *phone = neg ? (int64_t) (0 - (uint64_t) v) : (int64_t) v;
    return 1;
}

/* The phone a row names, read independently of report.c: the int64 value
 * of a numeric _id that is a whole number in range (MongoDB's equality:
 * int32, int64, double, Decimal128).  0 when there is none. */
static int
row_phone(const bson_t *row, int64_t *phone)
{
    bson_iter_t       it;
    bson_decimal128_t dec;
    double            v;

    if (!bson_iter_init_find(&it, row, "_id"))
        return 0;
    if (BSON_ITER_HOLDS_DECIMAL128(&it))
        return bson_iter_decimal128(&it, &dec) && decimal_phone(&dec, phone);
    if (!BSON_ITER_HOLDS_NUMBER(&it))
        return 0;
    if (BSON_ITER_HOLDS_DOUBLE(&it)) {
        v = bson_iter_double(&it);
        if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != (double) (int64_t) v)
            return 0;
    }
    *phone = bson_iter_as_int64(&it);
    return 1;
}

/* An accepted field is an int32 or an int64 (or, for the extremes of a
 * phone without valid records, null or absent: 0). */
static int64_t
row_int(const bson_t *row, const char *key, int may_be_null)
{
    bson_iter_t it;

    if (!bson_iter_init_find(&it, row, key))
        return may_be_null ? 0 : (abort(), 0);
    if (BSON_ITER_HOLDS_INT32(&it))
        return bson_iter_int32(&it);
    if (BSON_ITER_HOLDS_INT64(&it))
        return bson_iter_int64(&it);
    if (may_be_null && BSON_ITER_HOLDS_NULL(&it))
        return 0;
    abort();
}

/* The result: strict JSON, Complete with one entry a phone, or an Error. */
static void
check_result(const struct rd_task *task, const struct rd_phone_sums *stats)
{
    struct json_tokener *tok;
    struct json_object  *root, *v, *d;
    const char          *status;
    char                *json;

    json = rd_report_complete_json(task, stats, 100000, "2023-05-09 02:27:03.049772", 0.5);
    if (json == NULL)
        return;                         /* out of memory */
    tok = json_tokener_new();
    if (tok == NULL) {
        free(json);
        return;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, json, (int) strlen(json) + 1);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success
        || !json_object_object_get_ex(root, "status", &v)
        || !json_object_object_get_ex(root, "data", &d))
        abort();
    status = json_object_get_string(v);
    if (strcmp(status, "Complete") == 0) {
        if (json_object_array_length(d) != task->nphones)
            abort();
    } else if (strcmp(status, "Error") != 0 || json_object_array_length(d) != 0
               || strstr(json, "_att") == NULL) {
        abort();                        /* an Error names the figure */
    }
    if (strstr(json, "inf") != NULL || strstr(json, "nan") != NULL || strstr(json, "e+") != NULL)
        abort();
    json_object_put(root);
    json_tokener_free(tok);
    free(json);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd_phone_sums stats[NPHONES], before[NPHONES];
    struct rd_task       task;
    bson_t               row;
    size_t               i, k, hit = NPHONES, off;
    int64_t              phone;
    char                 err[512];
    int                  rc, named;

    if (size < 5 || !bson_init_static(&row, data, size)
        || !bson_validate(&row, BSON_VALIDATE_NONE, &off))
        return 0;

    memset(&task, 0, sizeof(task));
    task.id_int = 1;
    strcpy(task.id_text, "1");
    task.phones = phones;
    task.nphones = NPHONES;
    rd_report_init(stats, &task);
    memcpy(before, stats, sizeof(stats));

    named = row_phone(&row, &phone);
    if (named)
        for (i = 0; i < NPHONES; i++)
            if (stats[i].phone == phone)
                hit = i;

    memset(err, 0, sizeof(err));
    rc = rd_report_add_row(&row, stats, NPHONES, err, sizeof(err));

    /* whatever happened, only the named phone's entry may have changed */
    for (i = 0; i < NPHONES; i++)
        if (i != hit && memcmp(&stats[i], &before[i], sizeof(stats[i])) != 0)
            abort();

    if (rc != 0) {
        size_t n = strnlen(err, sizeof(err));

        if (rc != -1 || n == 0 || n == sizeof(err) || strchr(err, '\n') != NULL
            || (hit != NPHONES && memcmp(&stats[hit], &before[hit], sizeof(stats[hit])) != 0))
            abort();
        return 0;
    }

    /* accepted with no phone named: left out, nothing changed (checked
     * above: hit is NPHONES) */
    if (!named)
        return 0;
    /* accepted: a phone of the task, and exactly the row's sums */
    if (hit == NPHONES || stats[hit].phone != phone)
        abort();
    {
        /* a row is accepted only if some records give it: n records, each
         * c = above - (n - above) for 0 <= above <= n, fewer above the
         * higher thresholds; then each count is a half, exactly */
        __int128 n = row_int(&row, "n", 0), c0 = row_int(&row, "c0", 0);
        __int128 c10 = row_int(&row, "c10", 0), c30 = row_int(&row, "c30", 0);
        __int128 want[5];
        const int64_t got[] = { stats[hit].cnt, stats[hit].cnt_10, stats[hit].cnt_10_30,
                                stats[hit].cnt_30, stats[hit].invalid };

        if (!(n >= 0 && n >= c0 && c0 >= c10 && c10 >= c30 && c30 >= -n)
            || (n + c0) % 2 != 0 || (n + c10) % 2 != 0 || (n + c30) % 2 != 0)
            abort();
        want[0] = (n + c0) / 2;
        want[1] = (c0 - c10) / 2;
        want[2] = (c10 - c30) / 2;
        want[3] = (n + c30) / 2;
        want[4] = (n - c0) / 2;
        for (k = 0; k < 5; k++)
            if ((__int128) got[k] != want[k] || got[k] < 0)
                abort();
        if (stats[hit].sum_ms != row_int(&row, "sum_ms", 0) || stats[hit].sum_ms < 0
            || stats[hit].sum_ms_over_15 != row_int(&row, "sum_ms_over_15", 0)
            || stats[hit].sum_ms_over_15 < 0)
            abort();
        if (stats[hit].cnt > 0
            && (stats[hit].min_ms != row_int(&row, "min_ms", 0)
                || stats[hit].max_ms != row_int(&row, "max_ms", 0)))
            abort();
    }
    check_result(&task, stats);
    return 0;
}
