/*
 * job.h -- one delivery, from its charges (charges.h) to its ack.
 *
 * What to do with a delivery is decided by two pure functions over the
 * facts gathered about it (no I/O, no globals, no clocks), and done by one
 * executor, the only code here that talks to the broker and the database:
 *
 *   rd_job_decide_before()  charges, parse outcome  -> DEAD_LETTER | ANSWER
 *                                                      (an Error) | RUN
 *   rd_job_decide_after()   the query's outcome     -> ANSWER | PUT_BACK |
 *                                                      COUNT_TIMEOUT | LEAVE
 *
 * COUNT_TIMEOUT asks the executor to count one more timeout of the task
 * (rd_charge_timeout()) and decide again with that count.
 */
#ifndef RD_JOB_H
#define RD_JOB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "conf.h"
#include "journal.h"
#include "metrics.h"
#include "store.h"
#include "task.h"

/* What handling a delivery did to the connections; the worker's cycle
 * acts on it. */
enum rd_job_outcome {
    RD_JOB_DONE,            /* handled: take the next delivery */
    RD_JOB_BROKER_LOST,     /* the connection is unusable: reconnect */
    RD_JOB_BROKER_REFUSED,  /* the broker nacked or returned a publish, or
                               memory ran out: the delivery is back in the
                               queue; reconnect after a backoff */
    RD_JOB_STORE_LOST,      /* the database is away: pause until it answers */
    RD_JOB_STOP_NOW         /* a fast stop: the delivery was left unacked */
};

enum rd_job_verb {
    RD_JOB_RUN,             /* have the database aggregate the task */
    RD_JOB_ANSWER,          /* publish a result of `kind`, then ack */
    RD_JOB_PUT_BACK,        /* requeue uncounted, then return `after` */
    RD_JOB_DEAD_LETTER,     /* publish to the dead-letter queue with `text`
                               as the reason, then ack */
    RD_JOB_COUNT_TIMEOUT,   /* count one more timeout, then decide again */
    RD_JOB_LEAVE            /* leave it unacked: RD_JOB_STOP_NOW */
};

struct rd_job_decision {
    enum rd_job_verb     verb;
    enum rd_outcome      kind;      /* ANSWER: RD_OUT_COMPLETE or RD_OUT_ERROR */
    enum rd_job_outcome  after;     /* PUT_BACK: once the delivery is back */
    char                 text[700]; /* ANSWER an Error: its message;
                                       DEAD_LETTER: the reason */
    int                  level;     /* RD_LOG_* of the line to log before
                                       acting; -1: none */
    char                 log[1024];
};

/* `failed` when memory for the task's figures ran out: no query ran. */
#define RD_JOB_NO_MEMORY  (-1)

struct rd_job_facts {
    const struct rd_delivery *d;
    int64_t               charges;      /* left behind by workers that died
                                           on it (rd_charge_begin()) */
    int                   parsed;       /* rd_task_parse()'s outcome */
    const struct rd_task *task;
    const char           *parse_err;    /* unless RD_TASK_OK */
    int                   max_redeliveries; /* rabbitmq.max_redeliveries */
    int                   max_time_ms;      /* mongodb.max_time_ms */

    /* After the query, for rd_job_decide_after() */
    int                   failed;       /* 0: the rows are in; an
                                           RD_STORE_* class; RD_JOB_NO_MEMORY */
    const char           *query_err;
    double                query_ms;     /* how long the query took */
    int                   stopping;     /* a fast stop came meanwhile */
    uint64_t              timeouts;     /* 0: not counted yet; else
                                           rd_charge_timeout()'s count */
};

void rd_job_decide_before(const struct rd_job_facts *f, struct rd_job_decision *dec);
void rd_job_decide_after(const struct rd_job_facts *f, struct rd_job_decision *dec);

struct rd_rollup;

/* What the executor works with; the worker's cycle owns all of it. */
struct rd_job_env {
    const struct rd_conf              *conf;
    struct rd_broker                  *broker;
    struct rd_store                   *store;
    struct rd_rollup                  *rollup;      /* rollup mode, else NULL */
    struct rd_journal                 *journal;     /* NULL: journal off */
    const volatile sig_atomic_t       *terminate;   /* fast stop ordered */
    int64_t                            test_delay_ms;    /* after each query */
    int64_t                            test_crash_phone; /* RD_TEST_HOOKS */
};

/* What a result message says it is: RD_OUT_COMPLETE, or RD_OUT_ERROR with
 * its error's text in reason ("" when it has none).  A Complete result
 * whose figures are out of range is built as an Error (report.h), so the
 * journal, the metrics and the log take the outcome from here, the
 * message the client receives.  Only the members up to "status" are read
 * of a Complete result. */
enum rd_outcome rd_job_result_kind(const char *json, size_t len, char *reason, size_t size);

/* Handle one delivery: charge it, decide, act, take the charge back. */
enum rd_job_outcome rd_job_handle(const struct rd_job_env *env, const struct rd_delivery *d);

/* Give a delivery back to the queue, uncounted: `out` once it is back,
 * RD_JOB_BROKER_LOST if the broker could not be told. */
enum rd_job_outcome rd_job_put_back(struct rd_broker *b, const struct rd_delivery *d,
                                    enum rd_job_outcome out);

#endif
