/*
 * test_report.c -- the report pipeline document, the reading of its rows
 * and the result message: rounding, nulls, ids of both types, figures
 * out of range, request order, and rows matched fast for 100,000 phones.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "report.h"
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

static bson_t *
figures_row(int64_t phone, double min, double max, double avg, double sum)
{
    return BCON_NEW("_id", BCON_INT64(phone), "cnt_all", BCON_INT32(1),
                    "cnt_10", BCON_INT32(0), "cnt_10_30", BCON_INT32(0),
                    "cnt_30", BCON_INT32(1), "sum_price_over_15", BCON_DOUBLE(sum),
                    "min_price", BCON_DOUBLE(min), "max_price", BCON_DOUBLE(max),
                    "avg_dur", BCON_DOUBLE(avg));
}

/* A row with one figure set to v: refused, with the figure named. */
static void
refused(double v, const char *what)
{
    int64_t                phones[] = { 5 };
    struct rd_task         t = { 0 };
    struct rd_phone_stats  st[1];
    bson_t                *row;
    char                   err[256] = "";

    t.phones = phones;
    t.nphones = 1;
    rd_report_init(st, &t);
    row = figures_row(5, 1, v, 1, 1);
    is_int(rd_report_add_row(row, st, 1, err, sizeof(err)), -1, "max_price %s is refused", what);
    like(err, "phone 5: max_price is", "  the error names the phone and the figure");
    bson_destroy(row);
}

/* Make t a task for the one phone *phone with id 1, stats s ready. */
static void
one_phone_task(struct rd_task *t, int64_t *phone, struct rd_phone_stats *s)
{
    t->phones = phone;
    t->nphones = 1;
    t->id_is_string = 0;
    t->id_int = 1;
    snprintf(t->id_text, sizeof(t->id_text), "1");
    rd_report_init(s, t);
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define D(x) "{ \"$numberDouble\" : \"" x "\" }"
#define I(x) "{ \"$numberInt\" : \"" x "\" }"
#define L(x) "{ \"$numberLong\" : \"" x "\" }"
#define BUCKET(key, cond, then) \
    "\"" key "\" : { \"$sum\" : { \"$cond\" : [ " cond ", " then ", " I("0") " ] } }"
#define CMP(op, v) "{ \"" op "\" : [ \"$dur\", " D(v) " ] }"
static const char PIPELINE_789_AT_10[] =
    "{ \"0\" : { \"$match\" : { \"phone\" : { \"$in\" : [ " L("7") ", " L("8") ", " L("9") " ] } } }, "
    "\"1\" : { \"$project\" : { \"_id\" : " I("0") ", \"phone\" : " I("1") ", "
    "\"dur\" : { \"$divide\" : [ { \"$subtract\" : [ \"$end_date\", \"$start_date\" ] }, " D("1000.0") " ] } } }, "
    "\"2\" : { \"$addFields\" : { \"price\" : { \"$multiply\" : [ \"$dur\", " D("10.0") " ] } } }, "
    "\"3\" : { \"$group\" : { \"_id\" : \"$phone\", \"cnt_all\" : { \"$sum\" : " I("1") " }, "
    BUCKET("cnt_10", CMP("$lt", "10.0"), I("1")) ", "
    BUCKET("cnt_10_30", "{ \"$and\" : [ " CMP("$gte", "10.0") ", " CMP("$lt", "30.0") " ] }", I("1")) ", "
    BUCKET("cnt_30", CMP("$gte", "30.0"), I("1")) ", "
    BUCKET("sum_price_over_15", CMP("$gt", "15.0"), "\"$price\"") ", "
    "\"min_price\" : { \"$min\" : \"$price\" }, \"max_price\" : { \"$max\" : \"$price\" }, "
    "\"avg_dur\" : { \"$avg\" : \"$dur\" } } } }";

int
main(void)
{
    int64_t                phones[] = { 7, 8, 9 };
    struct rd_task         t = { 0 };
    struct rd_phone_stats  st[3];
    struct json_object    *o, *e;
    bson_t                *p;
    bson_iter_t            it, sub;
    char                  *json, *pj, err[256];

    /* rounding */
    is_dbl(rd_round2(2765.594), 2765.59, "round down");
    is_dbl(rd_round2(46.705), 46.71, "round half away from zero");
    /* fabs(g - w) cannot tell -0 from 0: test the sign bit itself */
    ok(rd_round2(-0.001) == 0.0 && !signbit(rd_round2(-0.001)), "no negative zero: -0.001 rounds to +0");
    ok(rd_round2(-0.0) == 0.0 && !signbit(rd_round2(-0.0)), "no negative zero: -0 becomes +0");

    /* pipeline */
    p = rd_report_pipeline(phones, 3, 10.0);
    pj = bson_as_relaxed_extended_json(p, NULL);
    ok(strstr(pj, "\"$match\" : { \"phone\" : { \"$in\" : [ 7, 8, 9 ] } }") != NULL,
       "first stage matches the phones with $in");
    like(pj, "\"$group\"", "a $group stage");
    like(pj, "\"$subtract\" : [ \"$end_date\", \"$start_date\" ]", "duration from the dates");
    like(pj, "\"$multiply\" : [ \"$dur\", 10.0 ]", "price = duration * price_per_second");
    like(pj, "\"cnt_10\" : { \"$sum\" : { \"$cond\" : [ { \"$lt\" : [ \"$dur\", 10.0 ] }, 1, 0 ] } }",
         "10_sec bucket is duration < 10");
    like(pj, "{ \"$gte\" : [ \"$dur\", 10.0 ] }, { \"$lt\" : [ \"$dur\", 30.0 ] }",
         "10_30_sec bucket is 10 <= duration < 30");
    like(pj, "\"cnt_30\" : { \"$sum\" : { \"$cond\" : [ { \"$gte\" : [ \"$dur\", 30.0 ] }, 1, 0 ] } }",
         "30_sec bucket is duration >= 30");
    like(pj, "{ \"$gt\" : [ \"$dur\", 15.0 ] }, \"$price\", 0", "sum over strictly > 15 s");
    ok(bson_iter_init(&it, p) && bson_iter_next(&it) && bson_iter_next(&it)
       && bson_iter_next(&it) && bson_iter_next(&it) && !bson_iter_next(&it),
       "four stages, nothing computed in C");
    (void) sub;
    bson_free(pj);
    bson_destroy(p);

    /* The whole document, types included, as the BSON_APPEND_* builder it
     * replaced produced it (checked byte for byte against that builder
     * before it was deleted). */
    p = rd_report_pipeline(phones, 3, 10.0);
    pj = bson_as_canonical_extended_json(p, NULL);
    is_str(pj, PIPELINE_789_AT_10, "the pipeline, every type exact (3 phones, 10/s)");
    bson_free(pj);
    bson_destroy(p);
    p = rd_report_pipeline(NULL, 0, 0.5);
    pj = bson_as_canonical_extended_json(p, NULL);
    ok(strstr(pj, "{ \"0\" : { \"$match\" : { \"phone\" : { \"$in\" : [  ] } } }") == pj
       && strstr(pj, "\"$multiply\" : [ \"$dur\", { \"$numberDouble\" : \"0.5\" } ]") != NULL,
       "no phones: an empty $in; the price per second as a double");
    bson_free(pj);
    bson_destroy(p);

    /* rows */
    t.id_int = 13242421424214LL;
    snprintf(t.id_text, sizeof(t.id_text), "13242421424214");
    t.phones = phones;
    t.nphones = 3;
    rd_report_init(st, &t);
    {
        bson_t *row = BCON_NEW("_id", BCON_INT64(8), "cnt_all", BCON_INT32(3),
                               "cnt_10", BCON_INT32(1), "cnt_10_30", BCON_INT32(1),
                               "cnt_30", BCON_INT64(1), "sum_price_over_15", BCON_DOUBLE(500.004),
                               "min_price", BCON_INT32(30), "max_price", BCON_DOUBLE(1500.0),
                               "avg_dur", BCON_DOUBLE(46.666666));
        bson_t *bad = BCON_NEW("_id", BCON_INT64(99), "cnt_all", BCON_INT32(1));
        bson_t *partial = BCON_NEW("_id", BCON_INT64(7), "cnt_all", BCON_UTF8("x"));

        is_int(rd_report_add_row(row, st, 3, err, sizeof(err)), 0, "a row is read");
        is_int(rd_report_add_row(bad, st, 3, err, sizeof(err)), -1, "a row for another phone is refused");
        like(err, "not asked for", "says why");
        is_int(rd_report_add_row(partial, st, 3, err, sizeof(err)), -1, "a non-numeric field is refused");
        bson_destroy(row);
        bson_destroy(bad);
        bson_destroy(partial);
    }

    json = rd_report_complete_json(&t, st, "2023-05-09 02:27:03.049772", 0.0123456);
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
    like(json, "{\"phone\":8,\"cnt_all_attempts\":3,\"cnt_att_dur\":{\"10_sec\":1,\"10_30_sec\":1,"
         "\"30_sec\":1},\"min_price_att\":30,\"max_price_att\":1500,\"avg_dur_att\":46.67,"
         "\"sum_price_att_over_15\":500}", "figures rounded to 2 decimals, whole numbers plain");
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

    /* A figure that rounds to zero from below prints 0, never "-0". */
    {
        int64_t                one[] = { 5 };
        struct rd_phone_stats  s1[1];
        bson_t                *row;

        one_phone_task(&t, one, s1);
        row = figures_row(5, -0.004, -0.0, -0.001, -0.0049);
        is_int(rd_report_add_row(row, s1, 1, err, sizeof(err)), 0, "a row of negative near-zero figures is read");
        json = rd_report_complete_json(&t, s1, "t", 0.5);
        like(json, "\"min_price_att\":0,\"max_price_att\":0,\"avg_dur_att\":0,\"sum_price_att_over_15\":0}",
             "  every one printed as 0");
        ok(strstr(json, "-0") == NULL, "  no \"-0\" in the result");
        free(json);
        bson_destroy(row);
    }

    /* Figures out of range: refused with the figure named, never printed. */
    is_dbl(rd_round2(1e306), 1e306, "rounding a huge value does not overflow");
    ok(rd_round2(DBL_MAX) == DBL_MAX, "rounding DBL_MAX gives DBL_MAX, not inf");
    refused(1e60, "1e60 (overflowed the 64-byte buffer)");
    refused(1e306, "1e306 (printed inf)");
    refused(-1e60, "-1e60");
    refused(RD_REPORT_MAX_FIGURE, "at the bound");
    refused(INFINITY, "inf");
    refused(NAN, "nan");
    {
        int64_t                one[] = { 5 };
        struct rd_phone_stats  s1[1];
        double                 big = 999999999999999.9;   /* just below 1e15 */
        bson_t                *row, *dbl;

        one_phone_task(&t, one, s1);
        row = figures_row(5, -big, big, 0.125, 1234.005);
        is_int(rd_report_add_row(row, s1, 1, err, sizeof(err)), 0, "figures just below the bound are read");
        json = rd_report_complete_json(&t, s1, "t", 0.5);
        o = parse(json);
        ok(o != NULL, "the result with the largest figures is JSON");
        is_str(json_object_get_string(get(o, "status")), "Complete", "  and Complete");
        is_dbl(json_object_get_double(get(o, "data.0.max_price_att")), big, "  max_price_att printed in full");
        is_dbl(json_object_get_double(get(o, "data.0.min_price_att")), -big, "  min_price_att printed in full");
        like(json, "\"avg_dur_att\":0.13,", "  avg rounded half away from zero");
        json_object_put(o);
        free(json);
        bson_destroy(row);

        /* stats that never went through a row: an Error result, still JSON */
        s1[0].cnt_all = 1;
        s1[0].max_price = 1e300;
        json = rd_report_complete_json(&t, s1, "t", 0.5);
        o = parse(json);
        ok(o != NULL, "a result over out-of-range stats is JSON");
        is_str(json_object_get_string(get(o, "status")), "Error", "  an Error result");
        like(json_object_get_string(get(o, "error")), "max_price", "  naming the figure");
        ok(strstr(json, "inf") == NULL, "  no inf in it");
        json_object_put(o);
        free(json);

        /* counts must be integers: a double count is range-checked first */
        rd_report_init(s1, &t);
        dbl = BCON_NEW("_id", BCON_INT64(5), "cnt_all", BCON_DOUBLE(1e300));
        is_int(rd_report_add_row(dbl, s1, 1, err, sizeof(err)), -1, "a count of 1e300 is refused");
        like(err, "cnt_all", "  naming the count");
        bson_destroy(dbl);
        dbl = BCON_NEW("_id", BCON_DOUBLE(5.0), "cnt_all", BCON_DOUBLE(3.0),
                       "cnt_10", BCON_INT32(3), "cnt_10_30", BCON_INT32(0),
                       "cnt_30", BCON_INT32(0), "sum_price_over_15", BCON_INT32(0),
                       "min_price", BCON_INT32(1), "max_price", BCON_INT32(2),
                       "avg_dur", BCON_INT32(1));
        is_int(rd_report_add_row(dbl, s1, 1, err, sizeof(err)), 0, "an integral double count is read");
        is_int(s1[0].cnt_all, 3, "  as 3");
        bson_destroy(dbl);
    }

    /* Rows are matched to phones whatever their order; data keeps the task's order. */
    {
        int64_t                four[] = { 900, -3, 42, 7 };
        struct rd_phone_stats  s4[4];
        bson_t                *row;

        t.phones = four;
        t.nphones = 4;
        rd_report_init(s4, &t);
        row = figures_row(42, 4, 4, 4, 4);
        is_int(rd_report_add_row(row, s4, 4, err, sizeof(err)), 0, "a row for the third phone");
        bson_destroy(row);
        row = figures_row(-3, 2, 2, 2, 2);
        is_int(rd_report_add_row(row, s4, 4, err, sizeof(err)), 0, "a row for the second phone");
        bson_destroy(row);
        json = rd_report_complete_json(&t, s4, "t", 0.5);
        o = parse(json);
        is_int(json_object_get_int64(get(o, "data.0.phone")), 900, "data in request order: 900");
        is_int(json_object_get_int64(get(o, "data.1.phone")), -3, "  -3");
        is_int(json_object_get_int64(get(o, "data.2.phone")), 42, "  42");
        is_int(json_object_get_int64(get(o, "data.3.phone")), 7, "  7");
        is_dbl(json_object_get_double(get(o, "data.1.max_price_att")), 2, "  -3 has its own figures");
        is_dbl(json_object_get_double(get(o, "data.2.max_price_att")), 4, "  42 has its own figures");
        like(json, "{\"phone\":900,\"cnt_all_attempts\":0,", "  900 has no records");
        json_object_put(o);
        free(json);
    }

    /* 100,000 phones, a row for each: matched in O(n log n). */
    {
        enum { N = 100000 };
        int64_t               *many = malloc(N * sizeof(*many));
        struct rd_phone_stats *sn = malloc(N * sizeof(*sn));
        struct json_object    *d;
        double                 t0;
        size_t                 i, bad = 0;
        bson_t                *row;

        for (i = 0; i < N; i++)
            many[i] = (int64_t) ((i * 7919) % N) * 1000003;   /* distinct, scrambled */
        t.phones = many;
        t.nphones = N;
        t0 = now();
        rd_report_init(sn, &t);
        for (i = 0; i < N && bad == 0; i++) {
            row = figures_row(many[N - 1 - i], (double) (N - 1 - i), 1, 1, 1);
            bad += rd_report_add_row(row, sn, N, err, sizeof(err)) != 0;
            bson_destroy(row);
        }
        json = rd_report_complete_json(&t, sn, "t", 0.5);
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
