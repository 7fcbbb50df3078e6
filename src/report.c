/*
 * report.c -- the aggregation pipeline and the result message.
 *
 * The database does the counting: one $match on the requested phones and
 * one $group with the bucket and price expressions.  Durations are
 * (end_date - start_date) / 1000 seconds, prices duration * price.
 * Buckets are half-open: < 10, [10, 30), >= 30; the sum is over
 * durations strictly above 15 s.
 *
 * Every figure a result carries is finite and below RD_REPORT_MAX_FIGURE
 * in magnitude: a row with anything else (an absurd record, a price that
 * overflowed) is refused with an error naming the phone and the figure,
 * which the caller answers with an Error result.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "report.h"

double
rd_round2(double v)
{
    double r;

    if (!isfinite(v) || fabs(v) >= 0x1p52)
        return v;                        /* already whole; v * 100 may overflow */
    r = round(v * 100.0) / 100.0;
    return r == 0.0 ? 0.0 : r;           /* no "-0" */
}

/*
 * The pipeline, as the MongoDB documentation would write it:
 *
 *   { $match:     { phone: { $in: [ phones ] } } },
 *   { $project:   { _id: 0, phone: 1, dur: { $divide: [ { $subtract: [ "$end_date", "$start_date" ] }, 1000 ] } } },
 *   { $addFields: { price: { $multiply: [ "$dur", price_per_second ] } } },
 *   { $group:     { _id: "$phone", cnt_all: { $sum: 1 }, cnt_10: ..., min_price: { $min: "$price" }, ... } }
 */
bson_t *
rd_report_pipeline(const int64_t *phones, size_t n, double price_per_second)
{
    bson_t      in = BSON_INITIALIZER, *p;
    char        key[24];
    const char *k;
    size_t      i;

    for (i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t) i, &k, key, sizeof(key));
        BSON_APPEND_INT64(&in, k, phones[i]);
    }
    p = BCON_NEW(
        "0", "{", "$match", "{", "phone", "{", "$in", BCON_ARRAY(&in), "}", "}", "}",
        "1", "{", "$project", "{",
            "_id", BCON_INT32(0),
            "phone", BCON_INT32(1),
            "dur", "{", "$divide", "[",
                "{", "$subtract", "[", BCON_UTF8("$end_date"), BCON_UTF8("$start_date"), "]", "}",
                BCON_DOUBLE(1000.0),
            "]", "}",
        "}", "}",
        "2", "{", "$addFields", "{",
            "price", "{", "$multiply", "[", BCON_UTF8("$dur"), BCON_DOUBLE(price_per_second), "]", "}",
        "}", "}",
        "3", "{", "$group", "{",
            "_id", BCON_UTF8("$phone"),
            "cnt_all", "{", "$sum", BCON_INT32(1), "}",
            "cnt_10", "{", "$sum", "{", "$cond", "[",
                "{", "$lt", "[", BCON_UTF8("$dur"), BCON_DOUBLE(10), "]", "}",
                BCON_INT32(1), BCON_INT32(0),
            "]", "}", "}",
            "cnt_10_30", "{", "$sum", "{", "$cond", "[",
                "{", "$and", "[",
                    "{", "$gte", "[", BCON_UTF8("$dur"), BCON_DOUBLE(10), "]", "}",
                    "{", "$lt", "[", BCON_UTF8("$dur"), BCON_DOUBLE(30), "]", "}",
                "]", "}",
                BCON_INT32(1), BCON_INT32(0),
            "]", "}", "}",
            "cnt_30", "{", "$sum", "{", "$cond", "[",
                "{", "$gte", "[", BCON_UTF8("$dur"), BCON_DOUBLE(30), "]", "}",
                BCON_INT32(1), BCON_INT32(0),
            "]", "}", "}",
            "sum_price_over_15", "{", "$sum", "{", "$cond", "[",
                "{", "$gt", "[", BCON_UTF8("$dur"), BCON_DOUBLE(15), "]", "}",
                BCON_UTF8("$price"), BCON_INT32(0),
            "]", "}", "}",
            "min_price", "{", "$min", BCON_UTF8("$price"), "}",
            "max_price", "{", "$max", BCON_UTF8("$price"), "}",
            "avg_dur", "{", "$avg", BCON_UTF8("$dur"), "}",
        "}", "}");
    bson_destroy(&in);
    return p;
}

static int
cmp_phone(const void *a, const void *b)
{
    int64_t x = ((const struct rd_phone_stats *) a)->phone;
    int64_t y = ((const struct rd_phone_stats *) b)->phone;

    return x < y ? -1 : x > y;
}

/* stats[] is sorted by phone, so rows and phones are matched by bsearch. */
static struct rd_phone_stats *
find(const struct rd_phone_stats *stats, size_t n, int64_t phone)
{
    struct rd_phone_stats key;

    key.phone = phone;
    return bsearch(&key, stats, n, sizeof(*stats), cmp_phone);
}

void
rd_report_init(struct rd_phone_stats *stats, const struct rd_task *task)
{
    size_t i;

    for (i = 0; i < task->nphones; i++) {
        memset(&stats[i], 0, sizeof(stats[i]));
        stats[i].phone = task->phones[i];
    }
    qsort(stats, task->nphones, sizeof(*stats), cmp_phone);
}

/* Doubles are range-checked before any conversion to an integer. */
static int
num(const bson_t *row, const char *key, double *d, int64_t *i, char *err, size_t errlen)
{
    bson_iter_t it;
    double      v;

    if (!bson_iter_init_find(&it, row, key) || !BSON_ITER_HOLDS_NUMBER(&it)) {
        snprintf(err, errlen, "aggregation row lacks a numeric %s", key);
        return -1;
    }
    v = bson_iter_as_double(&it);
    if (d != NULL)
        *d = v;
    if (i != NULL) {
        if (BSON_ITER_HOLDS_DOUBLE(&it)
            && !(v > -0x1p63 && v < 0x1p63 && v == floor(v))) {
            snprintf(err, errlen, "aggregation row has %s %g, not a 64-bit integer", key, v);
            return -1;
        }
        *i = bson_iter_as_int64(&it);
    }
    return 0;
}

static int
figure_ok(const struct rd_phone_stats *s, char *err, size_t errlen)
{
    const struct {
        const char *name;
        double      v;
    } f[] = {
        { "min_price", s->min_price }, { "max_price", s->max_price },
        { "avg_dur", s->avg_dur }, { "sum_price_over_15", s->sum_price_over_15 }
    };
    size_t i;

    for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (!isfinite(f[i].v) || fabs(f[i].v) >= RD_REPORT_MAX_FIGURE) {
            snprintf(err, errlen, "phone %lld: %s is %g, outside the range a result "
                     "carries (below %g in magnitude)", (long long) s->phone, f[i].name,
                     f[i].v, RD_REPORT_MAX_FIGURE);
            return 0;
        }
    }
    return 1;
}

int
rd_report_add_row(const bson_t *row, struct rd_phone_stats *stats, size_t n,
                  char *err, size_t errlen)
{
    struct rd_phone_stats *s;
    int64_t                phone;

    if (num(row, "_id", NULL, &phone, err, errlen) != 0)
        return -1;
    s = find(stats, n, phone);
    if (s == NULL) {
        snprintf(err, errlen, "aggregation returned phone %lld, which was not asked for",
                 (long long) phone);
        return -1;
    }
    if (num(row, "cnt_all", NULL, &s->cnt_all, err, errlen) != 0
        || num(row, "cnt_10", NULL, &s->cnt_10, err, errlen) != 0
        || num(row, "cnt_10_30", NULL, &s->cnt_10_30, err, errlen) != 0
        || num(row, "cnt_30", NULL, &s->cnt_30, err, errlen) != 0
        || num(row, "sum_price_over_15", &s->sum_price_over_15, NULL, err, errlen) != 0
        || num(row, "min_price", &s->min_price, NULL, err, errlen) != 0
        || num(row, "max_price", &s->max_price, NULL, err, errlen) != 0
        || num(row, "avg_dur", &s->avg_dur, NULL, err, errlen) != 0
        || !figure_ok(s, err, errlen))
        return -1;
    return 0;
}

/* A JSON number rounded to 2 decimals, printed without trailing zeros.
 * figure_ok() has bounded v; should anything else come here, the length
 * snprintf reports is checked before it indexes the buffer. */
static struct json_object *
money(double v)
{
    char buf[64];
    int  n;

    if (!isfinite(v))
        return NULL;
    n = snprintf(buf, sizeof(buf), "%.2f", rd_round2(v));
    if (n <= 0 || (size_t) n >= sizeof(buf))
        return NULL;
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
    return json_object_new_double_s(rd_round2(v), buf);
}

static struct json_object *
envelope(const struct rd_task *task, const char *status, const char *task_received)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "correlation_id", task->id_is_string
                           ? json_object_new_string(task->id_text)
                           : json_object_new_int64(task->id_int));
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "task_received", json_object_new_string(task_received));
    json_object_object_add(o, "from", json_object_new_string("report_service"));
    json_object_object_add(o, "to", json_object_new_string("client"));
    return o;
}

static char *
finish(struct json_object *o, double total_duration)
{
    char  buf[32];
    char *out;

    snprintf(buf, sizeof(buf), "%.6f", total_duration);
    json_object_object_add(o, "total_duration",
                           json_object_new_double_s(total_duration, buf));
    out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN
                                                | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

char *
rd_report_complete_json(const struct rd_task *task, const struct rd_phone_stats *stats,
                        const char *task_received, double total_duration)
{
    struct json_object *o, *data, *e, *dur;
    const struct rd_phone_stats *s;
    char   err[256];
    size_t i;

    for (i = 0; i < task->nphones; i++)
        if (!figure_ok(&stats[i], err, sizeof(err)))
            return rd_report_error_json(task, err, task_received, total_duration);

    o = envelope(task, "Complete", task_received);
    data = json_object_new_array();
    for (i = 0; i < task->nphones; i++) {
        s = find(stats, task->nphones, task->phones[i]);
        e = json_object_new_object();
        json_object_object_add(e, "phone", json_object_new_int64(s->phone));
        json_object_object_add(e, "cnt_all_attempts", json_object_new_int64(s->cnt_all));
        dur = json_object_new_object();
        json_object_object_add(dur, "10_sec", json_object_new_int64(s->cnt_10));
        json_object_object_add(dur, "10_30_sec", json_object_new_int64(s->cnt_10_30));
        json_object_object_add(dur, "30_sec", json_object_new_int64(s->cnt_30));
        json_object_object_add(e, "cnt_att_dur", dur);
        if (s->cnt_all > 0) {
            json_object_object_add(e, "min_price_att", money(s->min_price));
            json_object_object_add(e, "max_price_att", money(s->max_price));
            json_object_object_add(e, "avg_dur_att", money(s->avg_dur));
        } else {
            json_object_object_add(e, "min_price_att", NULL);
            json_object_object_add(e, "max_price_att", NULL);
            json_object_object_add(e, "avg_dur_att", NULL);
        }
        json_object_object_add(e, "sum_price_att_over_15", money(s->sum_price_over_15));
        json_object_array_add(data, e);
    }
    json_object_object_add(o, "data", data);
    return finish(o, total_duration);
}

char *
rd_report_error_json(const struct rd_task *task, const char *error,
                     const char *task_received, double total_duration)
{
    struct json_object *o = envelope(task, "Error", task_received);

    json_object_object_add(o, "error", json_object_new_string(error));
    json_object_object_add(o, "data", json_object_new_array());
    return finish(o, total_duration);
}
