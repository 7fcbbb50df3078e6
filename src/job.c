/*
 * job.c -- one task delivery, from its charges to its ack: decide what to
 * do with it (pure), then do it (the one place that talks to the broker).
 *
 * Deliveries that crashed a worker more often than allowed, and unreadable
 * ones, go to the dead-letter queue; invalid tasks get an Error result;
 * the rest are aggregated.  A database that is away puts the task back,
 * uncounted; a query that runs out of time puts it back a bounded number
 * of times, then answers it with an Error result.  The journal, the
 * metrics and the log record the outcome the result message says, which
 * is an Error when a Complete result's figures were out of range.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "broker.h"
#include "charges.h"
#include "job.h"
#include "json_check.h"
#include "log.h"
#include "metrics.h"
#include "report.h"
#include "rollup.h"
#include "store.h"
#include "task.h"
#include "util.h"

static void
decide(struct rd_job_decision *dec, enum rd_job_verb verb, int level)
{
    dec->verb = verb;
    dec->kind = RD_OUT_ERROR;
    dec->after = RD_JOB_DONE;
    dec->text[0] = '\0';
    dec->level = level;
    dec->log[0] = '\0';
}

/* The delivery's name for a log line, whatever its state. */
static const char *
job_name(const struct rd_job_facts *f)
{
    if (f->parsed != RD_TASK_UNREADABLE)
        return f->task->id_text;
    return f->d->correlation_id[0] ? f->d->correlation_id : "(unreadable)";
}

void
rd_job_decide_before(const struct rd_job_facts *f, struct rd_job_decision *dec)
{
    const struct rd_delivery *d = f->d;

    /* Deliveries that crashed a worker more often than allowed go to the
     * dead-letter queue instead of cycling. */
    if (f->charges > f->max_redeliveries) {
        decide(dec, RD_JOB_DEAD_LETTER, RD_LOG_ERROR);
        snprintf(dec->text, sizeof(dec->text), "crashed a worker %lld times "
                 "(rabbitmq.max_redeliveries %d)", (long long) f->charges,
                 f->max_redeliveries);
        snprintf(dec->log, sizeof(dec->log), "task %s: dead-lettered: %s; %zu bytes, "
                 "delivery tag %llu", job_name(f), dec->text, d->len,
                 (unsigned long long) d->tag);
        return;
    }
    switch (f->parsed) {
    case RD_TASK_UNREADABLE:
        decide(dec, RD_JOB_DEAD_LETTER, RD_LOG_WARN);
        snprintf(dec->text, sizeof(dec->text), "unreadable: %s", f->parse_err);
        snprintf(dec->log, sizeof(dec->log), "moving an unreadable message (%zu bytes, "
                 "delivery tag %llu) to the dead-letter queue: %s", d->len,
                 (unsigned long long) d->tag, f->parse_err);
        return;
    case RD_TASK_INVALID:
        decide(dec, RD_JOB_ANSWER, RD_LOG_WARN);
        snprintf(dec->text, sizeof(dec->text), "%s", f->parse_err);
        snprintf(dec->log, sizeof(dec->log), "task %s: invalid: %s", f->task->id_text,
                 f->parse_err);
        return;
    default:
        decide(dec, RD_JOB_RUN, RD_LOG_DEBUG);
        snprintf(dec->log, sizeof(dec->log), "task %s: %zu phones", f->task->id_text,
                 f->task->nphones);
        return;
    }
}

void
rd_job_decide_after(const struct rd_job_facts *f, struct rd_job_decision *dec)
{
    const char *id = f->task->id_text;
    int         timed_out;

    if (f->failed == RD_JOB_NO_MEMORY) {
        /* Not the database's fault: back off, do not pause for it. */
        decide(dec, RD_JOB_PUT_BACK, RD_LOG_ERROR);
        dec->after = RD_JOB_BROKER_REFUSED;
        snprintf(dec->log, sizeof(dec->log), "task %s: out of memory for %zu phones; "
                 "requeueing it", id, f->task->nphones);
        return;
    }
    if (f->stopping) {
        decide(dec, RD_JOB_LEAVE, -1);
        return;
    }

    /* The query ran out of time (the server stopped it, or it never
     * answered): maybe the load, maybe the task.  Try again a bounded
     * number of times, then answer. */
    timed_out = f->failed == RD_STORE_TIMEOUT
                || (f->failed == RD_STORE_TRANSIENT && f->query_ms >= f->max_time_ms);
    if (timed_out && f->timeouts == 0) {
        decide(dec, RD_JOB_COUNT_TIMEOUT, -1);
        return;
    }
    if (timed_out && f->timeouts <= (uint64_t) f->max_redeliveries) {
        decide(dec, RD_JOB_PUT_BACK, RD_LOG_WARN);
        dec->after = f->failed == RD_STORE_TIMEOUT ? RD_JOB_DONE : RD_JOB_STORE_LOST;
        snprintf(dec->log, sizeof(dec->log), "task %s: the query ran out of time (%llu of at "
                 "most %d times); returning the task to the queue: %s", id,
                 (unsigned long long) f->timeouts, f->max_redeliveries + 1, f->query_err);
        return;
    }
    if (timed_out) {
        decide(dec, RD_JOB_ANSWER, RD_LOG_ERROR);
        snprintf(dec->text, sizeof(dec->text), "the report did not finish within "
                 "mongodb.max_time_ms (%d ms), %d times: %s", f->max_time_ms,
                 f->max_redeliveries + 1, f->query_err);
        snprintf(dec->log, sizeof(dec->log), "task %s: %s", id, dec->text);
        return;
    }
    if (f->failed == RD_STORE_TRANSIENT) {
        decide(dec, RD_JOB_PUT_BACK, RD_LOG_WARN);
        dec->after = RD_JOB_STORE_LOST;
        snprintf(dec->log, sizeof(dec->log), "task %s: database unavailable, returning the "
                 "task to the queue: %s", id, f->query_err);
        return;
    }
    if (f->failed != 0) {
        decide(dec, RD_JOB_ANSWER, RD_LOG_ERROR);
        snprintf(dec->text, sizeof(dec->text), "database error: %s", f->query_err);
        snprintf(dec->log, sizeof(dec->log), "task %s: the database could not answer: %s",
                 id, dec->text);
        return;
    }
    decide(dec, RD_JOB_ANSWER, -1);
    dec->kind = RD_OUT_COMPLETE;
}

enum rd_outcome
rd_job_result_kind(const char *json, size_t len, char *reason, size_t size)
{
    static const char   complete[] = "\"Complete\"";
    const char         *v;
    size_t              n;
    char               *text;
    struct json_object *o;

    reason[0] = '\0';
    if (rd_json_member(json, len, "status", &v, &n) == 0 && n == sizeof(complete) - 1
        && memcmp(v, complete, n) == 0)
        return RD_OUT_COMPLETE;
    /* An Error result is small: its text is read with json-c. */
    if (rd_json_member(json, len, "error", &v, &n) == 0 && v[0] == '"'
        && (text = strndup(v, n)) != NULL) {
        o = json_tokener_parse(text);
        if (json_object_is_type(o, json_type_string))
            snprintf(reason, size, "%s", json_object_get_string(o));
        json_object_put(o);
        free(text);
    }
    return RD_OUT_ERROR;
}

/* The executor. */

enum rd_job_outcome
rd_job_put_back(struct rd_broker *b, const struct rd_delivery *d, enum rd_job_outcome out)
{
    if (rd_broker_reject(b, d->tag, 1) != RD_OK)
        return RD_JOB_BROKER_LOST;
    rd_metrics_task(RD_OUT_REQUEUED, 0);
    return out;
}

/* A stable id for a result, the same for every delivery of the same task. */
static void
message_id(const struct rd_task *t, uint64_t fp, char *out, size_t size)
{
    snprintf(out, size, "%.200s-%016llx", t->id_text, (unsigned long long) fp);
}

/* The outcome is final: its result or dead letter is confirmed and its
 * delivery not yet acked (a kill now replays it; the upsert is
 * idempotent).  The journal never fails a task: a write that failed is
 * counted on /metrics, logged, and the task acked anyway. */
static void
journal(const struct rd_job_env *env, struct rd_journal_entry *e, uint64_t fp, double t0)
{
    char err[512];

    if (env->journal == NULL)
        return;
    e->attempts = (int64_t) rd_charge_attempts(fp);
    e->total_duration = rd_now_sec() - t0;
    e->answered_ms = rd_wall_ms();
    e->received_ms = e->answered_ms - (int64_t) (e->total_duration * 1000);
    if (rd_journal_write(env->journal, e, err, sizeof(err)) != RD_OK)
        rd_warn("%s: writing the journal failed, acking the task anyway: %s", e->message_id,
                err);
}

/* Build the result, publish it and ack its task once the broker confirmed it. */
static enum rd_job_outcome
answer(const struct rd_job_env *env, const struct rd_delivery *d, const struct rd_task *t,
       const struct rd_phone_sums *stats, const struct rd_job_decision *dec, uint64_t fp,
       const char *received, double t0)
{
    struct rd_publish p = { 0 };
    char              mid[256], err[512], reason[sizeof(dec->text)], *json;
    size_t            len;
    enum rd_outcome   kind;
    int               rc;

    if (dec->kind == RD_OUT_COMPLETE)
        json = rd_report_complete_json(t, stats, env->conf->report.price_e4, received, rd_now_sec() - t0);
    else
        json = rd_report_error_json(t, dec->text, received, rd_now_sec() - t0);
    if (json == NULL) {
        rd_error("task %s: out of memory building the result; requeueing it", t->id_text);
        return rd_job_put_back(env->broker, d, RD_JOB_BROKER_REFUSED);
    }
    /* From here on the outcome is what the message says: a Complete
     * result whose figures are out of range was built as an Error. */
    len = strlen(json);
    kind = rd_job_result_kind(json, len, reason, sizeof(reason));
    if (kind != dec->kind)
        rd_warn("task %s: the result is an Error: %s", t->id_text, reason);
    message_id(t, fp, mid, sizeof(mid));
    p.correlation_id = t->id_text;
    p.message_id = mid;
    rc = rd_broker_publish(env->broker, env->conf->rabbitmq.result_queue, json, len,
                           &p, err, sizeof(err));
    if (rc == RD_OK) {
        struct rd_journal_entry e = { 0 };

        e.message_id = mid;
        e.task = t;
        e.outcome = kind;
        e.reason = kind == RD_OUT_COMPLETE ? NULL : reason;
        e.result = json;
        e.result_len = len;
        journal(env, &e, fp, t0);
    }
    free(json);
    if (rc == RD_ERROR) {
        rd_warn("task %s: publishing the result failed, the task will be redelivered: %s",
                t->id_text, err);
        return RD_JOB_BROKER_LOST;
    }
    if (rc == RD_DECLINED) {
        /* Returned (the result queue is gone) or nacked: put the task back
         * and reconnect, which declares the queues again. */
        rd_warn("task %s: the result was not accepted, requeueing the task and "
                "reconnecting: %s", t->id_text, err);
        return rd_job_put_back(env->broker, d, RD_JOB_BROKER_REFUSED);
    }
    if (rd_broker_ack(env->broker, d->tag) != RD_OK)
        return RD_JOB_BROKER_LOST;
    rd_metrics_task(kind, rd_now_sec() - t0);
    rd_info("task %s: %s, %zu phones, %.3f s", t->id_text,
            kind == RD_OUT_COMPLETE ? "complete" : "error result", t->nphones,
            rd_now_sec() - t0);
    return RD_JOB_DONE;
}

/* Publish a delivery to the dead-letter queue with all its properties and
 * headers and the reason, then ack it: dead-lettering needs no queue
 * arguments, so it works on queues declared by anyone. */
static enum rd_job_outcome
dead_letter(const struct rd_job_env *env, const struct rd_delivery *d, const struct rd_job_facts *f,
            const char *reason, uint64_t fp, double t0)
{
    struct rd_publish p = { 0 };
    char              err[512];
    int               rc;
    int64_t           attempts = f->charges;

    p.like = d;
    p.reason = reason;
    p.attempts = attempts;
    rc = rd_broker_publish(env->broker, env->conf->rabbitmq.dead_letter_queue, d->body, d->len,
                           &p, err, sizeof(err));
    if (rc == RD_ERROR) {
        rd_warn("dead-lettering a message failed, it will be redelivered: %s", err);
        return RD_JOB_BROKER_LOST;
    }
    if (rc == RD_DECLINED) {
        rd_warn("the dead-letter queue refused a message, requeueing it and reconnecting: %s",
                err);
        return rd_job_put_back(env->broker, d, RD_JOB_BROKER_REFUSED);
    }
    if (env->journal != NULL) {
        struct rd_journal_entry e = { 0 };
        char                    mid[256];

        /* A task with a usable id keeps the id its answer would have had. */
        if (f->parsed != RD_TASK_UNREADABLE) {
            message_id(f->task, fp, mid, sizeof(mid));
            e.task = f->task;
        } else {
            rd_journal_dead_letter_id(d->message_id, fp, mid, sizeof(mid));
        }
        e.message_id = mid;
        e.outcome = RD_OUT_DEAD_LETTERED;
        e.reason = reason;
        e.body = d->body;
        e.body_len = d->len;
        e.amqp_correlation_id = d->correlation_id;
        journal(env, &e, fp, t0);
    }
    if (rd_broker_ack(env->broker, d->tag) != RD_OK)
        return RD_JOB_BROKER_LOST;
    rd_metrics_task(RD_OUT_DEAD_LETTERED, rd_now_sec() - t0);
    return RD_JOB_DONE;
}

/* Have the database aggregate the task; fills f's query facts.  The
 * figures (NULL when memory ran out), for the caller to free. */
static struct rd_phone_sums *
query(const struct rd_job_env *env, const struct rd_task *t, struct rd_job_facts *f,
      char *err, size_t errlen)
{
    const struct rd_conf  *c = env->conf;
    struct rd_phone_sums *stats;
    struct rd_report_rows  rows;
    bson_t                *pipeline;
    double                 t1;
    int                    rc, klass;

#ifdef RD_TEST_HOOKS
    /* A task that kills its worker, for the poison-message tests. */
    for (size_t i = 0; i < t->nphones; i++)
        if (t->phones[i] == env->test_crash_phone)
            raise(SIGKILL);
#endif
    stats = calloc(t->nphones, sizeof(*stats));
    if (stats == NULL) {
        f->failed = RD_JOB_NO_MEMORY;
        return NULL;
    }
    rd_report_init(stats, t);
    rows.stats = stats;
    rows.n = t->nphones;
    t1 = rd_now_sec();
    if (env->rollup != NULL) {
        rc = rd_rollup_report(env->rollup, stats, t->nphones, c->mongodb.max_time_ms,
                              &klass, err, errlen);
    } else {
        pipeline = rd_report_pipeline(t->phones, t->nphones);
        rc = rd_store_aggregate(env->store, pipeline, c->mongodb.max_time_ms, rd_report_rows_add, &rows,
                                &klass, err, errlen);
        bson_destroy(pipeline);
    }
    rd_metrics_db(rd_now_sec() - t1);
    if (rc != RD_OK)
        RD_METRIC(db_errors);
    if (env->test_delay_ms > 0)
        rd_sleep_ms(env->test_delay_ms, NULL);
    if (rc == RD_OK)
        for (size_t i = 0; i < t->nphones; i++)
            rd_metrics_invalid((uint64_t) stats[i].invalid);
    f->stopping = *env->terminate != 0;
    f->failed = rc == RD_OK ? 0 : klass;
    f->query_err = err;
    f->query_ms = (rd_now_sec() - t1) * 1000;   /* a test delay counts */
    return stats;
}

static enum rd_job_outcome
act(const struct rd_job_env *env, const struct rd_delivery *d, const struct rd_job_facts *f,
    const struct rd_phone_sums *stats, const struct rd_job_decision *dec, uint64_t fp,
    const char *received, double t0)
{
    switch (dec->verb) {
    case RD_JOB_ANSWER:
        return answer(env, d, f->task, stats, dec, fp, received, t0);
    case RD_JOB_PUT_BACK:
        return rd_job_put_back(env->broker, d, dec->after);
    case RD_JOB_DEAD_LETTER:
        return dead_letter(env, d, f, dec->text, fp, t0);
    case RD_JOB_LEAVE:
        return RD_JOB_STOP_NOW;
    case RD_JOB_RUN:
    case RD_JOB_COUNT_TIMEOUT:
        break;                  /* decided before: never the last word */
    }
    return rd_job_put_back(env->broker, d, RD_JOB_DONE);
}

static void
say(const struct rd_job_decision *dec)
{
    if (dec->level >= 0)
        rd_log(dec->level, "%s", dec->log);
}

enum rd_job_outcome
rd_job_handle(const struct rd_job_env *env, const struct rd_delivery *d)
{
    const struct rd_conf   *c = env->conf;
    struct rd_job_facts     f;
    struct rd_job_decision  dec;
    struct rd_task          t;
    struct rd_phone_sums  *stats = NULL;
    char                    received[40], perr[512] = "", qerr[512] = "";
    uint64_t                fp = rd_charge_fingerprint(d->body, d->len);
    double                  t0;
    enum rd_job_outcome     out;

    memset(&f, 0, sizeof(f));
    f.d = d;
    f.charges = (int64_t) rd_charge_begin(fp);
    t0 = rd_now_sec();
    rd_format_wall_time(received, sizeof(received));
    f.parsed = rd_task_parse(d->body, d->len, &c->task, &t, perr, sizeof(perr));
    f.task = &t;
    f.parse_err = perr;
    f.max_redeliveries = c->rabbitmq.max_redeliveries;
    f.max_time_ms = c->mongodb.max_time_ms;

    rd_job_decide_before(&f, &dec);
    say(&dec);
    if (dec.verb == RD_JOB_RUN) {
        stats = query(env, &t, &f, qerr, sizeof(qerr));
        rd_job_decide_after(&f, &dec);
        if (dec.verb == RD_JOB_COUNT_TIMEOUT) {
            f.timeouts = rd_charge_timeout(fp);
            rd_job_decide_after(&f, &dec);
        }
        say(&dec);
    }
    out = act(env, d, &f, stats, &dec, fp, received, t0);

    free(stats);
    rd_task_free(&t);
    /* Answered or dead-lettered and acked: the task's story is over, so a
     * copy sent again (a dead letter moved back) starts afresh. */
    if (out == RD_JOB_DONE && (dec.verb == RD_JOB_ANSWER || dec.verb == RD_JOB_DEAD_LETTER))
        rd_charge_settle(fp, (uint64_t) f.charges);
    else
        rd_charge_end(fp);
    return out;
}
