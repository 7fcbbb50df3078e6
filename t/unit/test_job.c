/*
 * test_job.c -- what the worker does with a delivery, decided without a
 * broker or a database: crashed-too-often and unreadable deliveries are
 * dead-lettered, invalid tasks answered with an Error, a database that is
 * away puts the task back, timeouts are counted up to a bound and then
 * answered, other database errors answered; every log line's text.  And
 * the outcome a result message says it is, which the journal, the metrics
 * and the log record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "log.h"
#include "report.h"
#include "tap.h"

#define MAX_REDELIVERIES 2
#define MAX_TIME_MS      1000

static struct rd_conf_task limits = { 100, 1048576, 16 };

static const char *good = "{\"correlation_id\": 42, \"phones\": [7, 8, 7]}";
static const char *invalid = "{\"correlation_id\": 5, \"phones\": [1, \"2\"]}";
static const char *unreadable = "{\"correlation_id\": 3, \"phones\": [1,";

struct fixture {
    struct rd_delivery     d;
    struct rd_task         t;
    char                   err[512];
    struct rd_job_facts    f;
    struct rd_job_decision dec;
};

/* The facts as the executor gathers them before the query. */
static void
setup(struct fixture *x, const char *body, const char *property, int64_t charges)
{
    memset(x, 0, sizeof(*x));
    x->d.body = (char *) body;
    x->d.len = strlen(body);
    x->d.tag = 7;
    snprintf(x->d.correlation_id, sizeof(x->d.correlation_id), "%s", property);
    x->f.d = &x->d;
    x->f.charges = charges;
    x->f.parsed = rd_task_parse(body, x->d.len, &limits, &x->t, x->err, sizeof(x->err));
    x->f.task = &x->t;
    x->f.parse_err = x->err;
    x->f.max_redeliveries = MAX_REDELIVERIES;
    x->f.max_time_ms = MAX_TIME_MS;
}

/* The decision after a query of the good task that ended with `failed`. */
static void
queried(struct fixture *x, int failed, double ms, uint64_t timeouts)
{
    setup(x, good, "", 0);
    x->f.failed = failed;
    x->f.query_err = failed ? "boom" : NULL;
    x->f.query_ms = ms;
    x->f.timeouts = timeouts;
    rd_job_decide_after(&x->f, &x->dec);
    rd_task_free(&x->t);
}

static void
before(void)
{
    struct fixture x;
    char           want[1024];

    setup(&x, good, "", 0);
    is_int(x.f.parsed, RD_TASK_OK, "the good task parses");
    rd_job_decide_before(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_RUN, "a good task, never charged: run the query");
    is_int(x.dec.level, RD_LOG_DEBUG, "  logged at debug");
    is_str(x.dec.log, "task 42: 2 phones", "  the distinct phones counted");
    rd_task_free(&x.t);

    setup(&x, good, "", MAX_REDELIVERIES);
    rd_job_decide_before(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_RUN, "charged max_redeliveries times: still run");
    rd_task_free(&x.t);

    setup(&x, good, "", MAX_REDELIVERIES + 1);
    rd_job_decide_before(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_DEAD_LETTER, "charged once more than max_redeliveries: dead-letter");
    is_str(x.dec.text, "crashed a worker 3 times (rabbitmq.max_redeliveries 2)", "  the reason");
    is_int(x.dec.level, RD_LOG_ERROR, "  logged as an error");
    snprintf(want, sizeof(want), "task 42: dead-lettered: crashed a worker 3 times "
             "(rabbitmq.max_redeliveries 2); %zu bytes, delivery tag 7", strlen(good));
    is_str(x.dec.log, want, "  the log line names the task, its size and delivery tag");
    rd_task_free(&x.t);

    setup(&x, invalid, "", 4);
    rd_job_decide_before(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_DEAD_LETTER, "an invalid task charged too often: dead-letter, no answer");
    like(x.dec.log, "task 5: dead-lettered: crashed a worker 4 times", "  named by its correlation_id");
    rd_task_free(&x.t);

    setup(&x, unreadable, "corr-9", 3);
    rd_job_decide_before(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_DEAD_LETTER, "an unreadable body charged too often: dead-letter");
    like(x.dec.log, "task corr-9: dead-lettered: crashed a worker 3 times",
         "  named by its correlation_id property");
    is_str(x.dec.text, "crashed a worker 3 times (rabbitmq.max_redeliveries 2)",
           "  the reason is the charges, not the body");
    rd_task_free(&x.t);

    setup(&x, unreadable, "", 3);
    rd_job_decide_before(&x.f, &x.dec);
    like(x.dec.log, "task (unreadable): dead-lettered:", "  without the property: (unreadable)");
    rd_task_free(&x.t);

    setup(&x, unreadable, "corr-9", 0);
    is_int(x.f.parsed, RD_TASK_UNREADABLE, "the truncated body is unreadable");
    ok(x.err[0] != '\0', "  with a reason from the parser");
    rd_job_decide_before(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_DEAD_LETTER, "unreadable: dead-letter");
    snprintf(want, sizeof(want), "unreadable: %s", x.err);
    is_str(x.dec.text, want, "  reason \"unreadable: <the parser's error>\"");
    is_int(x.dec.level, RD_LOG_WARN, "  logged as a warning");
    snprintf(want, sizeof(want), "moving an unreadable message (%zu bytes, delivery tag 7) "
             "to the dead-letter queue: %s", strlen(unreadable), x.err);
    is_str(x.dec.log, want, "  the log line");
    rd_task_free(&x.t);

    setup(&x, invalid, "", 0);
    is_int(x.f.parsed, RD_TASK_INVALID, "the task with a string phone is invalid");
    rd_job_decide_before(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_ANSWER, "invalid: answer, no query");
    is_int(x.dec.kind, RD_OUT_ERROR, "  with an Error result");
    is_str(x.dec.text, x.err, "  whose message is the parser's reason");
    like(x.dec.text, "phones[1] must be an integer", "  (which names the phone)");
    is_int(x.dec.level, RD_LOG_WARN, "  logged as a warning");
    snprintf(want, sizeof(want), "task 5: invalid: %s", x.err);
    is_str(x.dec.log, want, "  the log line");
    rd_task_free(&x.t);
}

static void
after(void)
{
    struct fixture x;
    const char    *gave_up = "the report did not finish within mongodb.max_time_ms "
                             "(1000 ms), 3 times: boom";

    queried(&x, 0, 5, 0);
    is_int(x.dec.verb, RD_JOB_ANSWER, "the rows are in: answer");
    is_int(x.dec.kind, RD_OUT_COMPLETE, "  Complete");
    is_int(x.dec.level, -1, "  nothing logged before publishing");

    queried(&x, RD_JOB_NO_MEMORY, 0, 0);
    is_int(x.dec.verb, RD_JOB_PUT_BACK, "no memory for the figures: put back");
    is_int(x.dec.after, RD_JOB_BROKER_REFUSED, "  then back off (not a lost database)");
    is_int(x.dec.level, RD_LOG_ERROR, "  logged as an error");
    is_str(x.dec.log, "task 42: out of memory for 2 phones; requeueing it", "  the log line");

    setup(&x, good, "", 0);
    x.f.stopping = 1;
    rd_job_decide_after(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_LEAVE, "a fast stop during the query: leave it unacked");
    is_int(x.dec.level, -1, "  silently");
    x.f.failed = RD_STORE_TRANSIENT;
    x.f.query_err = "boom";
    rd_job_decide_after(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_LEAVE, "  also when the database failed meanwhile");
    rd_task_free(&x.t);

    queried(&x, RD_STORE_TIMEOUT, 10, 0);
    is_int(x.dec.verb, RD_JOB_COUNT_TIMEOUT, "MaxTimeMSExpired, not yet counted: count it");
    queried(&x, RD_STORE_TIMEOUT, 10, 1);
    is_int(x.dec.verb, RD_JOB_PUT_BACK, "  first timeout: put back");
    is_int(x.dec.after, RD_JOB_DONE, "  and go on without pausing");
    is_int(x.dec.level, RD_LOG_WARN, "  logged as a warning");
    is_str(x.dec.log, "task 42: the query ran out of time (1 of at most 3 times); returning "
           "the task to the queue: boom", "  the log line");
    queried(&x, RD_STORE_TIMEOUT, 10, MAX_REDELIVERIES);
    is_int(x.dec.verb, RD_JOB_PUT_BACK, "  timeout number max_redeliveries: still put back");
    like(x.dec.log, "(2 of at most 3 times)", "  counted in the log");
    queried(&x, RD_STORE_TIMEOUT, 10, MAX_REDELIVERIES + 1);
    is_int(x.dec.verb, RD_JOB_ANSWER, "  one more: answer");
    is_int(x.dec.kind, RD_OUT_ERROR, "  with an Error result");
    is_str(x.dec.text, gave_up, "  which says so");
    is_int(x.dec.level, RD_LOG_ERROR, "  logged as an error");
    is_str(x.dec.log, "task 42: the report did not finish within mongodb.max_time_ms "
           "(1000 ms), 3 times: boom", "  the log line");
    queried(&x, RD_STORE_TIMEOUT, 10, UINT64_MAX);
    is_int(x.dec.verb, RD_JOB_ANSWER, "  nothing could count it (no charges table): answer");

    setup(&x, good, "", 0);
    x.f.max_redeliveries = 0;
    x.f.failed = RD_STORE_TIMEOUT;
    x.f.query_err = "boom";
    x.f.timeouts = 1;
    rd_job_decide_after(&x.f, &x.dec);
    is_int(x.dec.verb, RD_JOB_ANSWER, "max_redeliveries 0: the first timeout is answered");
    is_str(x.dec.text, "the report did not finish within mongodb.max_time_ms (1000 ms), "
           "1 times: boom", "  \"1 times\"");
    rd_task_free(&x.t);

    queried(&x, RD_STORE_TRANSIENT, MAX_TIME_MS, 0);
    is_int(x.dec.verb, RD_JOB_COUNT_TIMEOUT, "a network error after max_time_ms: a timeout, count it");
    queried(&x, RD_STORE_TRANSIENT, MAX_TIME_MS, 1);
    is_int(x.dec.verb, RD_JOB_PUT_BACK, "  first one: put back");
    is_int(x.dec.after, RD_JOB_STORE_LOST, "  and pause for the database");
    like(x.dec.log, "task 42: the query ran out of time (1 of at most 3 times)", "  logged as a timeout");
    queried(&x, RD_STORE_TRANSIENT, MAX_TIME_MS * 5, MAX_REDELIVERIES + 1);
    is_int(x.dec.verb, RD_JOB_ANSWER, "  past the bound: answer");
    is_str(x.dec.text, gave_up, "  with the same Error");

    queried(&x, RD_STORE_TRANSIENT, MAX_TIME_MS - 0.5, 0);
    is_int(x.dec.verb, RD_JOB_PUT_BACK, "a transient error before max_time_ms: put back, uncounted");
    is_int(x.dec.after, RD_JOB_STORE_LOST, "  and pause for the database");
    is_int(x.dec.level, RD_LOG_WARN, "  logged as a warning");
    is_str(x.dec.log, "task 42: database unavailable, returning the task to the queue: boom",
           "  the log line");

    queried(&x, RD_STORE_PERMANENT, MAX_TIME_MS * 5, 0);
    is_int(x.dec.verb, RD_JOB_ANSWER, "a permanent error (however long it took): answer");
    is_int(x.dec.kind, RD_OUT_ERROR, "  with an Error result");
    is_str(x.dec.text, "database error: boom", "  \"database error: <the error>\"");
    is_int(x.dec.level, RD_LOG_ERROR, "  logged as an error");
    is_str(x.dec.log, "task 42: the database could not answer: database error: boom",
           "  the log line");
}

/* The outcome of results built by report.h, read back from the message. */
static void
result_kind(void)
{
    struct rd_task        t;
    struct rd_phone_sums  st[2];
    int64_t               phones[2] = { 7, 8 };
    char                  reason[700], *json;
    const char           *odd;

    memset(&t, 0, sizeof(t));
    t.phones = phones;
    t.nphones = 2;
    t.id_is_string = 1;
    /* an id that looks like the members read */
    snprintf(t.id_text, sizeof(t.id_text), "\"status\":\"Error\",\"error\":\"no\"");
    rd_report_init(st, &t);
    st[0].cnt = st[0].cnt_30 = 1;
    st[0].sum_ms = st[0].sum_ms_over_15 = st[0].min_ms = st[0].max_ms = 40000;

    json = rd_report_complete_json(&t, st, 100000, "t", 0.5);
    is_int(rd_job_result_kind(json, strlen(json), reason, sizeof(reason)), RD_OUT_COMPLETE,
           "a Complete result is complete");
    is_str(reason, "", "  with no reason");
    free(json);

    /* 4e15 ms at 1000 per second: a price of 4e15, past RD_REPORT_MAX_FIGURE */
    st[1].cnt = st[1].cnt_30 = 1;
    st[1].sum_ms = st[1].sum_ms_over_15 = st[1].min_ms = st[1].max_ms = INT64_C(4000000000000000);
    json = rd_report_complete_json(&t, st, 10000000, "t", 0.5);
    like(json, "\"status\":\"Error\"", "figures out of range: the Complete result is built as an Error");
    is_int(rd_job_result_kind(json, strlen(json), reason, sizeof(reason)), RD_OUT_ERROR,
           "  and its outcome is an error");
    is_str(reason, "phone 8: min_price_att is 1000000000000000 or more in magnitude, outside "
           "the range a result carries", "  the Error's text is the reason");
    free(json);

    json = rd_report_error_json(&t, "quote \" backslash \\ tab \t \xc3\xa9", "t", 0.5);
    is_int(rd_job_result_kind(json, strlen(json), reason, sizeof(reason)), RD_OUT_ERROR,
           "an Error result is an error");
    is_str(reason, "quote \" backslash \\ tab \t \xc3\xa9", "  its text unescaped");
    free(json);

    odd = "{\"status\":\"Complete\"";
    is_int(rd_job_result_kind(odd, strlen(odd), reason, sizeof(reason)), RD_OUT_COMPLETE,
           "only the members up to status are read");
    odd = "{\"status\":\"Completed\",\"error\":1}";
    is_int(rd_job_result_kind(odd, strlen(odd), reason, sizeof(reason)), RD_OUT_ERROR,
           "any other status is an error");
    is_str(reason, "", "  with no reason when error is not a string");
    odd = "[\"status\",\"Complete\"]";
    is_int(rd_job_result_kind(odd, strlen(odd), reason, sizeof(reason)), RD_OUT_ERROR,
           "not an object: an error");
}

int
main(void)
{
    before();
    after();
    result_kind();
    return done_testing();
}
