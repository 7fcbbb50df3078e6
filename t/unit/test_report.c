/*
 * test_report.c -- the report pipeline document, the reading of its rows
 * into integer sums, their merging, and the result message computed from
 * them: decimal ties, extremes, overflow, nulls, ids of both types, request
 * order, and rows matched fast for 100,000 phones.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "report.h"
#include "util.h"
#include "tap.h"

static struct json_object *
parse(const char *s)
{
    return json_tokener_parse(s);
}

static struct json_object *
get(struct json_object *o, const char *path)
{
    char  buf[256], *tok, *save;
    struct json_object *cur = o;

    snprintf(buf, sizeof(buf), "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok != NULL && cur != NULL;
         tok = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(cur, json_type_array))
            cur = json_object_array_get_idx(cur, atoi(tok));
        else if (!json_object_object_get_ex(cur, tok, &cur))
            cur = NULL;
    }
    return cur;
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A row of one phone with cnt records, all of ms, plus `invalid` left out. */
/* The row the pipeline's $group gives for cnt records of ms each and
 * `invalid` others: n, and per threshold above - (n - above). */
static bson_t *
group_row(int64_t phone, int64_t cnt, int64_t ms, int64_t invalid)
{
    int64_t n = cnt + invalid;

    bson_t *row = BCON_NEW("_id", BCON_INT64(phone), "n", BCON_INT64(n), "c0", BCON_INT64(2 * cnt - n),
                           "c10", BCON_INT64(2 * (ms >= 10000 ? cnt : 0) - n),
                           "c30", BCON_INT64(2 * (ms >= 30000 ? cnt : 0) - n),
                           "sum_ms", BCON_INT64(cnt * ms), "sum_ms_over_15", BCON_INT64(ms > 15000 ? cnt * ms : 0));

    if (cnt > 0) {
        BSON_APPEND_INT64(row, "min_ms", ms);
        BSON_APPEND_INT64(row, "max_ms", ms);
    } else {
        BSON_APPEND_NULL(row, "min_ms");
        BSON_APPEND_NULL(row, "max_ms");
    }
    return row;
}

/* Make t a task for the one phone *phone with id 1, stats s ready. */
static void
one_phone_task(struct rd_task *t, int64_t *phone, struct rd_phone_sums *s)
{
    t->phones = phone;
    t->nphones = 1;
    t->id_is_string = 0;
    t->id_int = 1;
    snprintf(t->id_text, sizeof(t->id_text), "1");
    rd_report_init(s, t);
}

/* The result of one phone with sums s at price_e4, as JSON text (freed by the caller). */
static char *
result_of(const struct rd_phone_sums *s, int64_t price_e4)
{
    struct rd_task        t = { 0 };
    struct rd_phone_sums  st[1];
    int64_t               phone = s->phone;

    one_phone_task(&t, &phone, st);
    st[0] = *s;
    return rd_report_complete_json(&t, st, price_e4, "t", 0.5);
}

/* The figure `key` of a one-phone result, as printed ("" when absent, "Error: ..." on an Error). */
static const char *
figure_text(const struct rd_phone_sums *s, int64_t price_e4, const char *key)
{
    static char         out[256];
    char               *json = result_of(s, price_e4);
    struct json_object *o = parse(json), *v;
    char                path[64];

    out[0] = '\0';
    if (strcmp(json_object_get_string(get(o, "status")), "Error") == 0) {
        snprintf(out, sizeof(out), "Error: %s", json_object_get_string(get(o, "error")));
    } else {
        snprintf(path, sizeof(path), "data.0.%s", key);
        v = get(o, path);
        snprintf(out, sizeof(out), "%s", v == NULL ? "null" : json_object_to_json_string(v));
    }
    json_object_put(o);
    free(json);
    return out;
}

static struct rd_phone_sums
one(int64_t cnt, int64_t sum_ms, int64_t min_ms, int64_t max_ms)
{
    struct rd_phone_sums s = { 0 };

    s.phone = 5;
    s.cnt = cnt;
    s.sum_ms = s.sum_ms_over_15 = sum_ms;
    s.min_ms = min_ms;
    s.max_ms = max_ms;
    return s;
}

int
main(void)
{
    int64_t                phones[] = { 7, 8, 9 };
    struct rd_task         t = { 0 };
    struct rd_phone_sums   st[3], s, a, b;
    struct json_object    *o, *e;
    bson_t                *p, *row;
    bson_iter_t            it;
    char                  *json, *pj, err[256];
    int                    n;

    /* pipeline */
    p = rd_report_pipeline(phones, 3);
    pj = bson_as_relaxed_extended_json(p, NULL);
    ok(strstr(pj, "{ \"0\" : { \"$match\" : { \"phone\" : { \"$in\" : [ 7, 8, 9 ] } } }") == pj,
       "first stage matches the phones with $in");
    like(pj, "\"vars\" : { \"d\" : { \"$cond\" : [ { \"$and\" : [ { \"$gte\" : [ \"$start_date\", -4503599627370496 ] }, "
             "{ \"$lte\" : [ \"$end_date\", 4503599627370496 ] }, { \"$gte\" : [ \"$end_date\", \"$start_date\" ] } ] }, "
             "{ \"$subtract\" : [ \"$end_date\", \"$start_date\" ] }",
         "numbers: within 2^52 and in order (by MongoDB's type order these hold for numbers only), d = end - start");
    like(pj, "{ \"$eq\" : [ { \"$type\" : \"$start_date\" }, \"date\" ] }, { \"$eq\" : [ { \"$type\" : \"$end_date\" }, \"date\" ] }, "
             "{ \"$gte\" : [ \"$start_date\", { \"$date\" : { \"$numberLong\" : \"-4503599627370496\" } } ] }, "
             "{ \"$lte\" : [ \"$end_date\", { \"$date\" : \"144683-05-23T16:29:30.496Z\" } ] }, "
             "{ \"$gte\" : [ \"$end_date\", \"$start_date\" ] } ] }",
         "or both dates, within 2^52 ms and in order");
    like(pj, "\"in\" : { \"$cond\" : [ { \"$in\" : [ { \"$type\" : \"$$d\" }, [ \"int\", \"long\", \"null\" ] ] }, \"$$d\", ",
         "int and long differences are whole; null is an invalid record");
    like(pj, "{ \"$eq\" : [ { \"$type\" : \"$$d\" }, \"double\" ] }, { \"$eq\" : [ \"$start_date\", { \"$trunc\" : [ \"$start_date\" ] } ] }, "
             "{ \"$eq\" : [ \"$end_date\", { \"$trunc\" : [ \"$end_date\" ] } ] } ] }, { \"$toLong\" : \"$$d\" }, null ]",
         "a double only when both are whole, as a long; a decimal never");
    like(pj, "\"n\" : { \"$sum\" : 1 }, \"c0\" : { \"$sum\" : { \"$cmp\" : [ \"$ms\", -0.5 ] } }, "
             "\"c10\" : { \"$sum\" : { \"$cmp\" : [ \"$ms\", 9999.5 ] } }, \"c30\" : { \"$sum\" : { \"$cmp\" : [ \"$ms\", 29999.5 ] } }",
         "records, and per threshold above minus below (null below)");
    like(pj, "\"sum_ms\" : { \"$sum\" : \"$ms\" }, \"min_ms\" : { \"$min\" : \"$ms\" }, \"max_ms\" : { \"$max\" : \"$ms\" }",
         "sum and extremes of ms");
    like(pj, "\"sum_ms_over_15\" : { \"$sum\" : { \"$cond\" : [ { \"$gt\" : [ \"$ms\", 15000 ] }, \"$ms\", 0 ] } }",
         "sum over strictly > 15 s");
    ok(strstr(pj, "$divide") == NULL && strstr(pj, "$multiply") == NULL && strstr(pj, "$avg") == NULL,
       "no division, product or average in the database");
    for (n = 0, bson_iter_init(&it, p); bson_iter_next(&it); n++)
        ;
    is_int(n, 3, "$match, $project, $group");
    bson_free(pj);
    bson_destroy(p);
    p = rd_report_pipeline(NULL, 0);
    pj = bson_as_canonical_extended_json(p, NULL);
    ok(strstr(pj, "{ \"0\" : { \"$match\" : { \"phone\" : { \"$in\" : [  ] } } }") == pj, "no phones: an empty $in");
    ok(strstr(pj, "{ \"$numberDouble\" : \"-0.5\" }") != NULL, "doubles only as the thresholds between integers");
    bson_free(pj);
    bson_destroy(p);
    {
        uint32_t i = 3;

        p = bson_new();
        rd_report_append_group(p, &i);
        is_int(i, 5, "append_group appends 2 stages from the index given");
        ok(bson_iter_init_find(&it, p, "4") && bson_iter_init_find(&it, p, "3")
           && !bson_iter_init_find(&it, p, "0"), "  keyed \"3\" and \"4\"");
        bson_destroy(p);
    }

    /* parse_sums */
    row = BCON_NEW("_id", BCON_INT32(8), "cnt", BCON_INT32(3), "cnt_10", BCON_INT32(1),
                   "cnt_10_30", BCON_INT32(1), "cnt_30", BCON_INT64(1), "sum_ms", BCON_INT64(140000),
                   "sum_ms_over_15", BCON_INT64(130000), "min_ms", BCON_INT32(5000),
                   "max_ms", BCON_INT64(100000), "invalid", BCON_INT32(2), "last_batch", BCON_UTF8("x"));
    is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), RD_OK, "an int32 _id and mixed int32/int64 fields");
    ok(s.phone == 8 && s.cnt == 3 && s.cnt_10 == 1 && s.cnt_10_30 == 1 && s.cnt_30 == 1
       && s.sum_ms == 140000 && s.sum_ms_over_15 == 130000 && s.min_ms == 5000 && s.max_ms == 100000
       && s.invalid == 2, "  every field read; other fields ignored");
    bson_destroy(row);
    {
        static const struct {
            const char *json;
            int         rc;
            int64_t     phone;
            const char *what;
        } ids[] = {
            { "{\"_id\": {\"$numberLong\": \"-9223372036854775808\"}}", RD_OK, INT64_MIN, "an int64 _id" },
            { "{\"_id\": {\"$numberDouble\": \"5.0\"}}", RD_OK, 5, "an integral double _id" },
            { "{\"_id\": {\"$numberDouble\": \"-9223372036854775808\"}}", RD_OK, INT64_MIN, "a double _id of -2^63" },
            { "{\"_id\": {\"$numberDouble\": \"2.5\"}}", RD_DECLINED, 0, "a 2.5 _id is declined" },
            { "{\"_id\": {\"$numberDouble\": \"9223372036854775808\"}}", RD_DECLINED, 0, "a double _id of 2^63 is declined" },
            { "{\"_id\": {\"$numberDouble\": \"NaN\"}}", RD_DECLINED, 0, "a NaN _id is declined" },
            { "{\"_id\": \"5\"}", RD_DECLINED, 0, "a string _id is declined" },
            { "{\"_id\": null}", RD_DECLINED, 0, "a null _id is declined" },
            { "{\"_id\": {\"$numberDecimal\": \"8\"}}", RD_OK, 8, "a Decimal128 8" },
            { "{\"_id\": {\"$numberDecimal\": \"8.00\"}}", RD_OK, 8, "a Decimal128 8.00" },
            { "{\"_id\": {\"$numberDecimal\": \"8E+3\"}}", RD_OK, 8000, "a Decimal128 8E+3" },
            { "{\"_id\": {\"$numberDecimal\": \"-0.000\"}}", RD_OK, 0, "a Decimal128 -0.000" },
            { "{\"_id\": {\"$numberDecimal\": \"79000000000.0\"}}", RD_OK, 79000000000LL, "a Decimal128 79000000000.0" },
            { "{\"_id\": {\"$numberDecimal\": \"-9223372036854775808\"}}", RD_OK, INT64_MIN, "a Decimal128 of -2^63" },
            { "{\"_id\": {\"$numberDecimal\": \"9223372036854775807.0\"}}", RD_OK, INT64_MAX, "a Decimal128 of 2^63 - 1" },
            { "{\"_id\": {\"$numberDecimal\": \"9223372036854775808\"}}", RD_DECLINED, 0, "a Decimal128 of 2^63 is declined" },
            { "{\"_id\": {\"$numberDecimal\": \"8.5\"}}", RD_DECLINED, 0, "a Decimal128 8.5 is declined" },
            { "{\"_id\": {\"$numberDecimal\": \"80E-1\"}}", RD_OK, 8, "a Decimal128 80E-1" },
            { "{\"_id\": {\"$numberDecimal\": \"81E-1\"}}", RD_DECLINED, 0, "a Decimal128 81E-1 is declined" },
            { "{\"_id\": {\"$numberDecimal\": \"1E+30\"}}", RD_DECLINED, 0, "a Decimal128 1E+30 is declined" },
            { "{\"_id\": {\"$numberDecimal\": \"NaN\"}}", RD_DECLINED, 0, "a Decimal128 NaN is declined" },
            { "{\"_id\": {\"$numberDecimal\": \"-Infinity\"}}", RD_DECLINED, 0, "a Decimal128 -Infinity is declined" },
            { "{\"_id\": [8, 9]}", RD_DECLINED, 0, "an array _id is declined" },
        };
        const char *rest = "\"cnt\": 1, \"cnt_10\": 1, \"cnt_10_30\": 0, \"cnt_30\": 0, \"sum_ms\": 7, "
                           "\"sum_ms_over_15\": 0, \"min_ms\": 7, \"max_ms\": 7, \"invalid\": 0}";
        char        doc[512];
        size_t      k;

        for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
            snprintf(doc, sizeof(doc), "%.*s, %s", (int) strlen(ids[k].json) - 1, ids[k].json, rest);
            row = bson_new_from_json((const uint8_t *) doc, -1, NULL);
            err[0] = '\0';
            is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), ids[k].rc, "%s", ids[k].what);
            if (ids[k].rc == RD_OK)
                ok(s.phone == ids[k].phone && s.cnt == 1 && s.min_ms == 7, "  phone %" PRId64, s.phone);
            else
                ok(err[0] != '\0', "  with a reason: %s", err);
            bson_destroy(row);
        }
    }
    row = BCON_NEW("_id", BCON_INT64(5), "cnt", BCON_INT32(1), "cnt_10", BCON_INT32(1),
                   "cnt_10_30", BCON_INT32(0), "cnt_30", BCON_INT32(0),
                   "sum_ms", BCON_DOUBLE(9.3e18), "sum_ms_over_15", BCON_INT32(0),
                   "min_ms", BCON_INT32(1), "max_ms", BCON_INT32(1), "invalid", BCON_INT32(0));
    is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), RD_ERROR, "a sum that came back as a double is an error");
    like(err, "phone 5: row has sum_ms", "  naming the phone and the field");
    like(err, "overflowed", "  saying why");
    bson_destroy(row);
    row = BCON_NEW("_id", BCON_INT64(5), "cnt", BCON_DOUBLE(1.0), "cnt_10", BCON_INT32(1),
                   "cnt_10_30", BCON_INT32(0), "cnt_30", BCON_INT32(0),
                   "sum_ms", BCON_INT32(1), "sum_ms_over_15", BCON_INT32(0),
                   "min_ms", BCON_INT32(1), "max_ms", BCON_INT32(1), "invalid", BCON_INT32(0));
    is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), RD_ERROR, "even an integral double count");
    bson_destroy(row);
    row = BCON_NEW("_id", BCON_INT64(5), "cnt", BCON_INT32(1));
    is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), RD_ERROR, "a missing field is an error");
    like(err, "lacks cnt_10", "  naming it");
    bson_destroy(row);
    row = BCON_NEW("_id", BCON_INT64(5), "cnt", BCON_INT32(0), "cnt_10", BCON_INT32(0),
                   "cnt_10_30", BCON_INT32(0), "cnt_30", BCON_INT32(0),
                   "sum_ms", BCON_INT32(0), "sum_ms_over_15", BCON_INT32(0),
                   "min_ms", BCON_NULL, "max_ms", BCON_NULL, "invalid", BCON_INT32(4));
    is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), RD_OK, "no valid record: null extremes are read");
    ok(s.cnt == 0 && s.min_ms == 0 && s.max_ms == 0 && s.invalid == 4, "  as 0, with 4 invalid");
    bson_destroy(row);
    row = BCON_NEW("_id", BCON_INT64(5), "cnt", BCON_INT32(1), "cnt_10", BCON_INT32(1),
                   "cnt_10_30", BCON_INT32(0), "cnt_30", BCON_INT32(0),
                   "sum_ms", BCON_INT32(1), "sum_ms_over_15", BCON_INT32(0),
                   "min_ms", BCON_NULL, "max_ms", BCON_INT32(1), "invalid", BCON_INT32(0));
    is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), RD_ERROR, "a null extreme with records is an error");
    bson_destroy(row);
    row = BCON_NEW("_id", BCON_INT64(5), "cnt", BCON_INT32(-1), "cnt_10", BCON_INT32(1),
                   "cnt_10_30", BCON_INT32(0), "cnt_30", BCON_INT32(0),
                   "sum_ms", BCON_INT32(1), "sum_ms_over_15", BCON_INT32(0),
                   "min_ms", BCON_INT32(1), "max_ms", BCON_INT32(1), "invalid", BCON_INT32(0));
    is_int(rd_report_parse_sums(row, &s, err, sizeof(err)), RD_ERROR, "a negative count is an error");
    bson_destroy(row);

    /* sums_add: counts and sums added, extremes merged, a side with cnt 0 has no extremes */
    memset(&a, 0, sizeof(a));
    a.phone = 5;
    a.invalid = 1;
    b = one(2, 14, 5, 9);
    b.cnt_10 = 2;
    b.invalid = 3;
    is_int(rd_report_sums_add(&a, &b, err, sizeof(err)), RD_OK, "adding to an empty aggregate");
    ok(a.cnt == 2 && a.cnt_10 == 2 && a.sum_ms == 14 && a.min_ms == 5 && a.max_ms == 9 && a.invalid == 4,
       "  takes the other's extremes (not min(0, 5))");
    memset(&b, 0, sizeof(b));
    b.invalid = 2;
    is_int(rd_report_sums_add(&a, &b, err, sizeof(err)), RD_OK, "adding an aggregate without valid records");
    ok(a.cnt == 2 && a.min_ms == 5 && a.max_ms == 9 && a.invalid == 6 && a.phone == 5, "  keeps the extremes");
    b = one(1, 3, 3, 4);
    is_int(rd_report_sums_add(&a, &b, err, sizeof(err)), RD_OK, "adding a third");
    ok(a.cnt == 3 && a.sum_ms == 17 && a.min_ms == 3 && a.max_ms == 9, "  min 3, max 9");
    b = one(1, 12, 12, 12);
    is_int(rd_report_sums_add(&a, &b, err, sizeof(err)), RD_OK, "and a fourth");
    ok(a.min_ms == 3 && a.max_ms == 12, "  max 12");
    s = a;
    b = one(1, INT64_MAX - 29, 1, 1);
    is_int(rd_report_sums_add(&a, &b, err, sizeof(err)), RD_OK, "sum_ms up to INT64_MAX");
    is_int(a.sum_ms, INT64_MAX, "  exactly");
    a = s;
    b = one(1, INT64_MAX - 29, 1, 1);
    b.sum_ms_over_15 = 0;
    a.sum_ms += 1;
    is_int(rd_report_sums_add(&a, &b, err, sizeof(err)), RD_ERROR, "sum_ms past INT64_MAX: an error");
    like(err, "phone 5: sum_ms overflows", "  naming the phone and the sum");
    ok(a.sum_ms == s.sum_ms + 1 && a.cnt == s.cnt, "  and the aggregate unchanged");
    a = one(INT64_MAX, 1, 1, 1);
    b = one(1, 1, 1, 1);
    is_int(rd_report_sums_add(&a, &b, err, sizeof(err)), RD_ERROR, "cnt past INT64_MAX: an error");

    /* add_row: parse, find, add */
    t.id_int = 13242421424214LL;
    snprintf(t.id_text, sizeof(t.id_text), "13242421424214");
    t.phones = phones;
    t.nphones = 3;
    rd_report_init(st, &t);
    /* 3 valid records, one per bucket, and 2 invalid: n 5, c0 = 3 - 2,
     * c10 = 2 - 3, c30 = 1 - 4 */
    row = BCON_NEW("_id", BCON_INT64(8), "n", BCON_INT32(5), "c0", BCON_INT32(1),
                   "c10", BCON_INT64(-1), "c30", BCON_INT32(-3), "sum_ms", BCON_INT64(140000),
                   "sum_ms_over_15", BCON_INT64(130000), "min_ms", BCON_INT32(3000),
                   "max_ms", BCON_INT64(150000));
    is_int(rd_report_add_row(row, st, 3, err, sizeof(err)), RD_OK, "a row is read");
    bson_destroy(row);
    {
        struct rd_phone_sums *g = rd_report_find(st, 3, 8);

        ok(g && g->cnt == 3 && g->cnt_10 == 1 && g->cnt_10_30 == 1 && g->cnt_30 == 1 && g->invalid == 2,
           "  its counts: 3 valid, one per bucket, 2 invalid");
    }
    {
        /* counts no set of records gives: each is refused, naming the phone */
        static const int64_t bad[][4] = {
            { 5, 1, 3, -3 },    /* c10 above c0 */
            { 5, 6, -1, -3 },   /* c0 above n */
            { 5, 1, -1, -7 },   /* c30 below -n */
            { 5, 2, -1, -3 },   /* c0 of the other parity */
            { -1, -1, -1, -1 }, /* n below 0 */
            { INT64_MAX, INT64_MAX, 2, -INT64_MAX }, /* c10 of the other parity, at the edge */
            { 5, 1, -1, -2 },   /* c30 of the other parity */
        };
        struct rd_phone_sums x;
        size_t               k;

        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            row = BCON_NEW("_id", BCON_INT64(8), "n", BCON_INT64(bad[k][0]), "c0", BCON_INT64(bad[k][1]),
                           "c10", BCON_INT64(bad[k][2]), "c30", BCON_INT64(bad[k][3]), "sum_ms", BCON_INT64(0),
                           "sum_ms_over_15", BCON_INT64(0), "min_ms", BCON_NULL, "max_ms", BCON_NULL);
            is_int(rd_report_parse_row(row, &x, err, sizeof(err)), RD_ERROR, "impossible counts #%zu refused", k);
            like(err, "phone 8: row has counts", "  saying so");
            bson_destroy(row);
        }
        row = BCON_NEW("_id", BCON_INT64(8), "n", BCON_INT64(INT64_MAX), "c0", BCON_INT64(-INT64_MAX),
                       "c10", BCON_INT64(-INT64_MAX), "c30", BCON_INT64(-INT64_MAX), "sum_ms", BCON_INT64(0),
                       "sum_ms_over_15", BCON_INT64(0), "min_ms", BCON_NULL, "max_ms", BCON_NULL);
        is_int(rd_report_parse_row(row, &x, err, sizeof(err)), RD_OK, "INT64_MAX invalid records: read exactly");
        ok(x.invalid == INT64_MAX && x.cnt == 0, "  all invalid, none valid");
        bson_destroy(row);
        row = BCON_NEW("_id", BCON_INT64(8), "n", BCON_INT64(2), "c0", BCON_INT64(2), "c10", BCON_DOUBLE(2.0),
                       "c30", BCON_INT64(0), "sum_ms", BCON_INT64(80000), "sum_ms_over_15", BCON_INT64(80000),
                       "min_ms", BCON_INT64(40000), "max_ms", BCON_INT64(40000));
        is_int(rd_report_parse_row(row, &x, err, sizeof(err)), RD_ERROR, "a count as a double is refused");
        bson_destroy(row);
    }
    row = group_row(99, 1, 1, 0);
    is_int(rd_report_add_row(row, st, 3, err, sizeof(err)), RD_ERROR, "a row for another phone is refused");
    like(err, "not asked for", "  says why");
    bson_destroy(row);
    {
        struct rd_phone_sums before[3];

        memcpy(before, st, sizeof(before));
        row = BCON_NEW("_id", BCON_DOUBLE(7.5), "n", BCON_INT32(1));
        is_int(rd_report_add_row(row, st, 3, err, sizeof(err)), RD_OK,
               "a row whose _id is no phone (7.5) is left out");
        bson_destroy(row);
        row = BCON_NEW("_id", "[", BCON_INT64(8), BCON_INT64(9), "]", "n", BCON_INT32(1));
        is_int(rd_report_add_row(row, st, 3, err, sizeof(err)), RD_OK,
               "a row of an array of phones ($in matches arrays) is left out");
        bson_destroy(row);
        ok(memcmp(before, st, sizeof(before)) == 0, "  and neither changes any phone's figures");
    }
    row = BCON_NEW("_id", BCON_INT64(7), "n", BCON_UTF8("x"));
    is_int(rd_report_add_row(row, st, 3, err, sizeof(err)), RD_ERROR, "a non-numeric field is refused");
    bson_destroy(row);

    json = rd_report_complete_json(&t, st, 100000, "2023-05-09 02:27:03.049772", 0.0123456);
    o = parse(json);
    ok(o != NULL, "the result is JSON");
    like(json, "\"correlation_id\":13242421424214,", "integer id echoed as an integer");
    is_str(json_object_get_string(get(o, "status")), "Complete", "status");
    is_str(json_object_get_string(get(o, "task_received")), "2023-05-09 02:27:03.049772", "task_received");
    is_str(json_object_get_string(get(o, "from")), "report_service", "from");
    is_str(json_object_get_string(get(o, "to")), "client", "to");
    is_int(json_object_array_length(get(o, "data")), 3, "one entry per phone");
    is_int(json_object_get_int64(get(o, "data.0.phone")), 7, "request order: 7 first");
    is_int(json_object_get_int64(get(o, "data.1.phone")), 8, "then 8");
    like(json, "{\"phone\":7,\"cnt_all_attempts\":0,\"cnt_att_dur\":{\"10_sec\":0,\"10_30_sec\":0,"
         "\"30_sec\":0},\"min_price_att\":null,\"max_price_att\":null,\"avg_dur_att\":null,"
         "\"sum_price_att_over_15\":0}", "a phone without records: zeros and nulls");
    /* at 10/s: 3 s = 30, 150 s = 1500, 140 s / 3 = 46.666.. s, 130 s = 1300 */
    like(json, "{\"phone\":8,\"cnt_all_attempts\":3,\"cnt_att_dur\":{\"10_sec\":1,\"10_30_sec\":1,"
         "\"30_sec\":1},\"min_price_att\":30,\"max_price_att\":1500,\"avg_dur_att\":46.67,"
         "\"sum_price_att_over_15\":1300}", "figures from the integers, 2 decimals, whole numbers plain");
    ok(strstr(json, "invalid") == NULL, "the invalid count is not in the result");
    like(json, "\"total_duration\":0.012346", "total_duration in seconds");
    ok(strstr(json, "\\/") == NULL, "no escaped slashes");
    json_object_put(o);
    free(json);

    t.id_is_string = 1;
    snprintf(t.id_text, sizeof(t.id_text), "req/42 \"q\"");
    json = rd_report_error_json(&t, "phones is empty", "2023-05-09 02:27:03.049772", 0.5);
    o = parse(json);
    ok(o != NULL, "the error result is JSON");
    is_str(json_object_get_string(get(o, "correlation_id")), "req/42 \"q\"", "string id echoed as a string");
    is_str(json_object_get_string(get(o, "status")), "Error", "status Error");
    is_str(json_object_get_string(get(o, "error")), "phones is empty", "error message");
    is_int(json_object_array_length(get(o, "data")), 0, "empty data");
    json_object_put(o);
    free(json);

    t.id_is_string = 0;
    t.id_int = -9223372036854775807LL;
    json = rd_report_error_json(&t, "x", "t", 0);
    like(json, "\"correlation_id\":-9223372036854775807,", "extreme ids survive");
    free(json);

    /* Decimal ties, half away from zero (binary doubles got these wrong). */
    s = one(1, 1005, 1005, 1005);
    is_str(figure_text(&s, 100000, "avg_dur_att"), "1.01", "average 1.005 s prints 1.01");
    s = one(1, 145, 145, 145);
    is_str(figure_text(&s, 100000, "avg_dur_att"), "0.15", "average 0.145 s prints 0.15");
    s = one(3, 3015, 1000, 1015);
    is_str(figure_text(&s, 100000, "avg_dur_att"), "1.01", "average 3.015 s / 3 prints 1.01");
    s = one(2, 3, 1, 2);
    is_str(figure_text(&s, 100000, "avg_dur_att"), "0", "average 1.5 ms prints 0");
    s = one(1, 5, 5, 5);
    is_str(figure_text(&s, 100000, "avg_dur_att"), "0.01", "average 5 ms (0.005 s) prints 0.01");
    s = one(1, 4, 4, 4);
    is_str(figure_text(&s, 100000, "avg_dur_att"), "0", "average 4 ms prints 0");
    s = one(1, 1100, 1100, 1100);
    is_str(figure_text(&s, 100000, "avg_dur_att"), "1.1", "no trailing zero: 1.1");
    s = one(1, 50, 50, 150);
    is_str(figure_text(&s, 7000, "min_price_att"), "0.04", "0.05 s at 0.7/s = 0.035 prints 0.04");
    is_str(figure_text(&s, 7000, "max_price_att"), "0.11", "0.15 s at 0.7/s = 0.105 prints 0.11");
    s = one(1, 49, 49, 49);
    is_str(figure_text(&s, 7000, "min_price_att"), "0.03", "0.049 s at 0.7/s = 0.0343 prints 0.03");
    s = one(1, 10000, 10000, 10000);
    is_str(figure_text(&s, 12345, "max_price_att"), "12.35", "10 s at 1.2345/s = 12.345 prints 12.35");
    is_str(figure_text(&s, 12345, "sum_price_att_over_15"), "12.35", "  sum_price_att_over_15 from sum_ms_over_15");
    s = one(1, 9999, 9999, 9999);
    is_str(figure_text(&s, 12345, "max_price_att"), "12.34", "9.999 s at 1.2345/s = 12.3437655 prints 12.34");
    s = one(1, 1, 1, 1);
    is_str(figure_text(&s, 1, "max_price_att"), "0", "1 ms at 0.0001/s prints 0");
    is_str(figure_text(&s, 0, "max_price_att"), "0", "a price of 0: 0");
    s = one(0, 0, 0, 0);
    s.invalid = 5;
    is_str(figure_text(&s, 100000, "cnt_all_attempts"), "0", "only invalid records: no attempts");
    is_str(figure_text(&s, 100000, "min_price_att"), "null", "  and null extremes");

    /* Extremes and the bound: 10^15 units (10^17 hundredths) and more is an Error. */
    s = one(1, 0, INT64_MAX, INT64_MAX);
    is_str(figure_text(&s, 1, "max_price_att"), "922337203685.48",
           "INT64_MAX ms at 0.0001/s: 922337203685.47758.. prints exactly");
    s = one(1, 0, 999999999999, 999999999999);
    is_str(figure_text(&s, 10000000000, "max_price_att"), "999999999999000",
           "10^12 - 1 ms at 10^6/s: 999999999999000, below the bound");
    s = one(1, 0, 1000000000000, 1000000000000);
    like(figure_text(&s, 10000000000, "max_price_att"), "Error: phone 5: min_price_att is",
         "10^12 ms at 10^6/s = 10^15: an Error naming phone and figure");
    s = one(1, 0, INT64_MAX, INT64_MAX);
    like(figure_text(&s, 10000000000, "min_price_att"), "Error: phone 5: min_price_att",
         "INT64_MAX ms at 10^6/s: an Error, no overflow");
    s = one(1, INT64_MAX, 1, 1);
    like(figure_text(&s, 10000000000, "sum_price_att_over_15"), "Error: phone 5: avg_dur_att",
         "sum_ms INT64_MAX over 1 record: the average is an Error");
    s = one(INT64_MAX, INT64_MAX, 1, 1);
    s.sum_ms_over_15 = 0;
    is_str(figure_text(&s, 100000, "avg_dur_att"), "0", "INT64_MAX ms over INT64_MAX records: 1 ms, prints 0");
    s = one(1, INT64_C(999999999999999994), 1, 1);
    s.sum_ms_over_15 = 0;
    is_str(figure_text(&s, 100000, "avg_dur_att"), "999999999999999.99", "an average just below 10^15 s");
    s.sum_ms = INT64_C(999999999999999995);
    like(figure_text(&s, 100000, "avg_dur_att"), "Error: phone 5: avg_dur_att",
         "  rounding up to 10^15 s: an Error");
    s = one(1, INT64_C(9999999999999999), 1, 1);
    is_str(figure_text(&s, 100000, "sum_price_att_over_15"), "99999999999999.99",
           "a sum of prices in full: 9999999999999.999 s at 10/s");
    {
        char *j = NULL;

        s = one(1, 0, 1000000000000, 1000000000000);
        j = result_of(&s, 10000000000);
        ok(strstr(j, "inf") == NULL && strstr(j, "e+") == NULL, "the Error result has no inf and no exponent");
        free(j);
    }

    /* Rows are matched to phones whatever their order; data keeps the task's order. */
    {
        int64_t               four[] = { 900, -3, 42, 7 };
        struct rd_phone_sums  s4[4];

        t.phones = four;
        t.nphones = 4;
        rd_report_init(s4, &t);
        row = group_row(42, 1, 4000, 0);
        is_int(rd_report_add_row(row, s4, 4, err, sizeof(err)), 0, "a row for the third phone");
        bson_destroy(row);
        row = group_row(-3, 1, 2000, 0);
        is_int(rd_report_add_row(row, s4, 4, err, sizeof(err)), 0, "a row for the second phone");
        bson_destroy(row);
        json = rd_report_complete_json(&t, s4, 10000, "t", 0.5);
        o = parse(json);
        is_int(json_object_get_int64(get(o, "data.0.phone")), 900, "data in request order: 900");
        is_int(json_object_get_int64(get(o, "data.1.phone")), -3, "  -3");
        is_int(json_object_get_int64(get(o, "data.2.phone")), 42, "  42");
        is_int(json_object_get_int64(get(o, "data.3.phone")), 7, "  7");
        is_str(json_object_to_json_string(get(o, "data.1.max_price_att")), "2", "  -3 has its own figures");
        is_str(json_object_to_json_string(get(o, "data.2.max_price_att")), "4", "  42 has its own figures");
        like(json, "{\"phone\":900,\"cnt_all_attempts\":0,", "  900 has no records");
        json_object_put(o);
        free(json);
    }

    /* 100,000 phones, a row for each: matched in O(n log n). */
    {
        enum { N = 100000 };
        int64_t               *many = malloc(N * sizeof(*many));
        struct rd_phone_sums  *sn = malloc(N * sizeof(*sn));
        struct json_object    *d;
        double                 t0;
        size_t                 i, bad = 0;

        for (i = 0; i < N; i++)
            many[i] = (int64_t) ((i * 7919) % N) * 1000003;   /* distinct, scrambled */
        t.phones = many;
        t.nphones = N;
        t0 = now();
        rd_report_init(sn, &t);
        for (i = 0; i < N && bad == 0; i++) {
            row = group_row(many[N - 1 - i], 1, (int64_t) (N - 1 - i) * 1000, 0);
            bad += rd_report_add_row(row, sn, N, err, sizeof(err)) != 0;
            bson_destroy(row);
        }
        json = rd_report_complete_json(&t, sn, 10000, "t", 0.5);
        printf("# 100000 phones: init, 100000 rows and the result in %.3f s\n", now() - t0);
        is_int(bad, 0, "100000 rows matched");
        o = parse(json);
        d = get(o, "data");
        is_int(d ? json_object_array_length(d) : 0, N, "100000 entries");
        for (i = 0; d != NULL && i < N; i++) {
            e = json_object_array_get_idx(d, i);
            if (json_object_get_int64(get(e, "phone")) != many[i]
                || json_object_get_double(get(e, "min_price_att")) != (double) i)
                bad++;
        }
        is_int(bad, 0, "each entry in request order with its own row");
        json_object_put(o);
        free(json);
        free(sn);
        free(many);
    }
    return done_testing();
}
