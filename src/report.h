/*
 * report.h -- the report itself, apart from any broker or database:
 * the aggregation pipeline MongoDB runs for a task (BSON), the reading of
 * its output rows, and the result message (JSON).  Pure functions, unit
 * tested without a server.
 */
#ifndef RD_REPORT_H
#define RD_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>

#include "task.h"

struct rd_phone_stats {
    int64_t phone;
    int64_t cnt_all;
    int64_t cnt_10, cnt_10_30, cnt_30;
    double  min_price, max_price, avg_dur, sum_price_over_15;
};

/* The bound on every figure of a result (prices, average duration), in
 * magnitude: 10^15, sixteen digits before the point.  Past 2^53 / 100 a
 * double no longer holds cents, so nothing meaningful is lost; a figure
 * this large comes from an absurd record, and refusing it keeps the
 * result valid JSON of a bounded size. */
#define RD_REPORT_MAX_FIGURE  1e15

/* $match {phone: {$in: phones}} then one $group computing every figure. */
bson_t *rd_report_pipeline(const int64_t *phones, size_t n, double price_per_second);

/* Fold one output row of that pipeline into the matching entry of stats[]
 * (as rd_report_init() left it).  -1 with err on a malformed row, a phone
 * not asked for, or a figure that is not finite or not below
 * RD_REPORT_MAX_FIGURE in magnitude: answer the task with an Error result. */
int     rd_report_add_row(const bson_t *row, struct rd_phone_stats *stats, size_t n,
                          char *err, size_t errlen);

/* Initialise stats[] for the task's (distinct) phones: all zero, no
 * records, sorted by phone so that rows are matched in O(log n). */
void    rd_report_init(struct rd_phone_stats *stats, const struct rd_task *task);

/* Result messages; malloc'ed NUL-terminated JSON, NULL on out of memory.
 * The Complete result lists the phones in the task's order; should a
 * figure in stats[] be out of range, it is an Error result instead. */
char   *rd_report_complete_json(const struct rd_task *task,
                                const struct rd_phone_stats *stats,
                                const char *task_received, double total_duration);
char   *rd_report_error_json(const struct rd_task *task, const char *error,
                             const char *task_received, double total_duration);

/* Round to 2 decimals, half away from zero; any double, never an overflow
 * (values of 2^52 and more are whole already and come back unchanged). */
double  rd_round2(double v);

#endif
