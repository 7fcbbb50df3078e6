/*
 * report.h -- the report itself, apart from any broker or database:
 * the aggregation pipeline MongoDB runs for a task (BSON), the reading of
 * its output rows into integer sums, and the result message (JSON) whose
 * figures are computed from those integers exactly.  Pure functions, unit
 * tested without a server.
 */
#ifndef RD_REPORT_H
#define RD_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>

#include "task.h"

/* The integer aggregate of one phone's records; durations in ms.  The field
 * names of the database rows and of rollup documents are the same words:
 * cnt, cnt_10, cnt_10_30, cnt_30, sum_ms, sum_ms_over_15, min_ms, max_ms, invalid. */
struct rd_phone_sums {
    int64_t phone;
    int64_t cnt;              /* valid records */
    int64_t cnt_10, cnt_10_30, cnt_30;   /* ms < 10000, 10000 <= ms < 30000, ms >= 30000 */
    int64_t sum_ms;
    int64_t sum_ms_over_15;   /* sum of ms over records with ms > 15000 */
    int64_t min_ms, max_ms;   /* meaningful when cnt > 0 */
    int64_t invalid;          /* records of this phone left out of every figure */
};

/* The bound on every figure of a result (prices, average duration), in
 * magnitude and in its own units (not cents): 10^15, sixteen digits before
 * the point.  A figure this large comes from an absurd record or price;
 * refusing it (an Error result naming the phone and the figure) keeps the
 * result of a bounded size. */
#define RD_REPORT_MAX_FIGURE  INT64_C(1000000000000000)

/* Append to pipeline p, from array index *i on (updated), the stages that turn records
 * {phone, start_date, end_date} into one row per phone value: {_id: <phone as stored>,
 * n, c0, c10, c30, sum_ms, sum_ms_over_15, min_ms, max_ms}, read by rd_report_parse_row. */
void    rd_report_append_group(bson_t *p, uint32_t *i);
/* Live mode: {$match: {phone: {$in: phones}}} then rd_report_append_group. */
bson_t *rd_report_pipeline(const int64_t *phones, size_t n);
/* Read a row of rd_report_append_group into *s: the counts from n, c0, c10 and c30
 * (RD_ERROR when no set of records gives them), the sums and extremes as they are;
 * RD_DECLINED as rd_report_parse_sums. */
int     rd_report_parse_row(const bson_t *row, struct rd_phone_sums *s, char *err, size_t errlen);
/* Read a rollup document (its fields cnt, cnt_10, ..., invalid, min_ms, max_ms) into *s.
 * RD_DECLINED (err says why) when _id is not an integral number within int64 (a phone
 * that is not an integer: such records match no requested phone); RD_ERROR on a missing
 * or non-integer field (a sum that came back as a double = overflow in the database). */
int     rd_report_parse_sums(const bson_t *doc, struct rd_phone_sums *s, char *err, size_t errlen);
/* A row's _id as a phone: any number equal to an integer within int64
 * (int32, int64, double, Decimal128: MongoDB's equality); RD_DECLINED
 * (err says why) for anything else -- a fraction, a string, an array. */
int     rd_report_parse_phone(const bson_t *doc, int64_t *phone, char *err, size_t errlen);
/* The same figures: every count and sum, and the extremes when cnt > 0. */
int     rd_report_sums_equal(const struct rd_phone_sums *a, const struct rd_phone_sums *b);
/* into += from (counts and sums added, extremes merged; overflow -> RD_ERROR with err). */
int     rd_report_sums_add(struct rd_phone_sums *into, const struct rd_phone_sums *from,
                           char *err, size_t errlen);
void    rd_report_init(struct rd_phone_sums *stats, const struct rd_task *task);  /* sorted by phone */
struct rd_phone_sums *rd_report_find(struct rd_phone_sums *stats, size_t n, int64_t phone);
/* parse + find + add; a phone not asked for -> RD_ERROR; a row whose _id
 * is not a phone (an array of phones, which $in matches) is left out */
/* The counts and sums of struct rd_phone_sums (all but the phone and the
 * extremes), by their field name in rows and rollup documents. */
struct rd_report_field {
    const char *key;
    size_t      off;            /* offsetof(struct rd_phone_sums, ...) */
};
#define RD_REPORT_NSUMS  7
extern const struct rd_report_field rd_report_sums[RD_REPORT_NSUMS];

int     rd_report_add_row(const bson_t *row, struct rd_phone_sums *stats, size_t n, char *err, size_t errlen);

/* Result messages; malloc'ed NUL-terminated JSON, NULL on out of memory.
 * The Complete result lists the phones in the task's order, its figures
 * computed from stats[] with price_e4 = price_per_second in ten-thousandths;
 * should a figure reach RD_REPORT_MAX_FIGURE, it is an Error result instead. */
/* rd_report_add_row() as a callback of rd_store_aggregate(): arg is a
 * struct rd_report_rows; non-zero stops the aggregation. */
struct rd_report_rows {
    struct rd_phone_sums *stats;
    size_t                n;
};
int     rd_report_rows_add(const bson_t *row, void *arg, char *err, size_t errlen);

char   *rd_report_complete_json(const struct rd_task *task, const struct rd_phone_sums *stats,
                                int64_t price_e4, const char *task_received, double total_duration);
char   *rd_report_error_json(const struct rd_task *task, const char *error,
                             const char *task_received, double total_duration);

#endif
