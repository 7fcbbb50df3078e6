/*
 * test_report.c -- the report pipeline document, the reading of its rows
 * and the result message: rounding, nulls, ids of both types.
 */
#include <stdlib.h>
#include <string.h>

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

int
main(void)
{
    int64_t                phones[] = { 7, 8, 9 };
    struct rd_task         t = { 0 };
    struct rd_phone_stats  st[3];
    struct json_object    *o;
    bson_t                *p;
    bson_iter_t            it, sub;
    char                  *json, *pj, err[256];

    /* rounding */
    is_dbl(rd_round2(2765.594), 2765.59, "round down");
    is_dbl(rd_round2(46.705), 46.71, "round half away from zero");
    is_dbl(rd_round2(-0.001), 0.0, "no negative zero");

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
    return done_testing();
}
