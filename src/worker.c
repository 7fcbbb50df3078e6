/*
 * worker.c -- the worker cycle.
 *
 * A worker owns one broker connection and one database client, both made
 * after fork.  It takes one task at a time (prefetch), has MongoDB run the
 * report pipeline, publishes the result with a publisher confirm and only
 * then acks the task: at-least-once, never lost.  Signals only set flags;
 * the cycle checks them between tasks and at least once a second while
 * waiting for a message.
 *
 *   QUIT, channel EOF, master death:  stop consuming, finish what was
 *                                     delivered, close, exit 0
 *   TERM, INT:                        drop everything unacked, exit 0
 *   USR1:                             reopen the log
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "broker.h"
#include "channel.h"
#include "charges.h"
#include "log.h"
#include "metrics.h"
#include "process.h"
#include "report.h"
#include "store.h"
#include "task.h"
#include "util.h"
#include "worker.h"

#define WAIT_MS         1000        /* longest wait before checking flags */
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  30000
#define IDLE_PING_MS    5000        /* an idle worker checks the database */
#define STEADY_MS       5000        /* consuming this long: the connection is good */

static volatile sig_atomic_t w_quit, w_terminate, w_reopen;
static volatile sig_atomic_t w_stop;        /* set with either of the first two */

struct worker {
    const struct rd_conf *conf;
    int                   chan;
    struct rd_broker     *broker;
    struct rd_store      *store;
    int                   consuming;
    int                   store_ok;
    int64_t               backoff_ms;
    int64_t               test_delay_ms;
    int64_t               test_crash_phone;
    int64_t               db_seen_ms;   /* last time the database answered */
    int64_t               consuming_ms; /* when the consumer started */
    int                   worked;       /* told the master it finished a task */
};

/* What handling one delivery did to the connections.  BROKER_REFUSED: the
 * broker nacked or returned a publish; reconnect after a backoff. */
enum outcome { DONE, BROKER_LOST, BROKER_REFUSED, STORE_LOST, STOP_NOW };

static void
on_signal(int sig)
{
    switch (sig) {
    case SIGQUIT: w_quit = w_stop = 1; break;
    case SIGTERM:
    case SIGINT:  w_terminate = w_stop = 1; break;
    case SIGUSR1: w_reopen = 1; break;
    }
}

static void
setup_signals(void)
{
    struct sigaction sa;
    sigset_t         all;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

static void
check_flags(struct worker *w)
{
    char err[256];

    if (w_reopen) {
        w_reopen = 0;
        if (rd_log_reopen(err, sizeof(err)) != 0)
            rd_error("reopening the log failed: %s", err);
        else
            rd_info("log reopened");
    }
    if (w->chan >= 0 && rd_channel_recv(w->chan) < 0) {
        rd_warn("the master is gone (channel closed): stopping");
        close(w->chan);
        w->chan = -1;
        w_quit = w_stop = 1;
    }
}

static int
stopping(void)
{
    return w_stop;
}

/* Tell the master (readiness) and the status page (health). */
static void
set_state(struct worker *w, enum rd_channel_msg msg)
{
    rd_channel_send(w->chan, msg);
    rd_metrics_state(msg == RD_CHAN_CONSUMING,
                     msg == RD_CHAN_CONSUMING || (msg == RD_CHAN_BROKER_DOWN && w->store_ok));
}

/* Give a delivery back to the queue, uncounted; `out` on success. */
static enum outcome
put_back(struct worker *w, const struct rd_delivery *d, enum outcome out)
{
    if (rd_broker_reject(w->broker, d->tag, 1) != RD_OK)
        return BROKER_LOST;
    rd_metrics_task(RD_OUT_REQUEUED, 0);
    return out;
}

static void
drop_broker(struct worker *w, int graceful)
{
    rd_broker_close(w->broker, graceful);
    w->broker = NULL;
    w->consuming = 0;
}

static void
backoff(struct worker *w, const char *what, const char *err)
{
    w->backoff_ms = rd_backoff_next(w->backoff_ms, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    rd_warn("%s: %s; retrying in %lld ms", what, err, (long long) w->backoff_ms);
    rd_sleep_ms(w->backoff_ms, &w_stop);
}

/* A problem only an operator can fix: say it where the master and
 * /healthz see it, and exit with RD_WORKER_EXIT_FATAL. */
static int
fatal(const char *err)
{
    rd_error("%s", err);
    rd_metrics_problem(err);
    return RD_ERROR;
}

/* Make sure we have a database, a broker connection and a consumer.
 * RD_OK when consuming, RD_AGAIN after a failed attempt, RD_ERROR when the
 * configuration cannot work (exit with RD_WORKER_EXIT_FATAL). */
static int
connect_all(struct worker *w)
{
    const struct rd_conf *c = w->conf;
    char                  err[512], name[64];
    int                   is_fatal, klass;

    if (w->store == NULL) {
        snprintf(name, sizeof(name), "reporterd worker %ld", (long) getpid());
        w->store = rd_store_new(&c->mongodb, name, &klass, err, sizeof(err));
        if (w->store == NULL) {
            if (klass != RD_STORE_TRANSIENT)
                return fatal(err);
            set_state(w, RD_CHAN_STORE_DOWN);       /* a mongodb+srv:// lookup failed */
            backoff(w, "database unreachable", err);
            return RD_AGAIN;
        }
    }
    if (!w->store_ok) {
        if (rd_store_ping(w->store, &klass, err, sizeof(err)) != RD_OK) {
            set_state(w, RD_CHAN_STORE_DOWN);
            backoff(w, "database unreachable", err);
            return RD_AGAIN;
        }
        w->store_ok = 1;
        rd_info("database %s reachable", c->mongodb.database);
    }
    if (w->broker == NULL) {
        snprintf(name, sizeof(name), "reporterd worker %ld", (long) getpid());
        w->broker = rd_broker_open(&c->rabbitmq, name, &is_fatal, err, sizeof(err));
        if (w->broker == NULL) {
            if (is_fatal)
                return fatal(err);
            set_state(w, RD_CHAN_BROKER_DOWN);
            backoff(w, "broker unreachable", err);
            return RD_AGAIN;
        }
        if (rd_broker_declare(w->broker, &is_fatal, err, sizeof(err)) != RD_OK) {
            drop_broker(w, 0);
            if (is_fatal)
                return fatal(err);
            backoff(w, "declaring queues failed", err);
            return RD_AGAIN;
        }
    }
    if (!w->consuming) {
        if (rd_broker_consume(w->broker, c->rabbitmq.task_queue, c->rabbitmq.prefetch,
                              err, sizeof(err)) != RD_OK) {
            drop_broker(w, 0);
            backoff(w, "consuming failed", err);
            return RD_AGAIN;
        }
        w->consuming = 1;
        w->consuming_ms = rd_now_ms();
        rd_info("consuming from \"%s\" (prefetch %d), results to \"%s\"",
                c->rabbitmq.task_queue, c->rabbitmq.prefetch, c->rabbitmq.result_queue);
        set_state(w, RD_CHAN_CONSUMING);
    }
    return RD_OK;
}

/* A stable id for a result, the same for every delivery of the same task. */
static void
message_id(const struct rd_task *t, const char *body, size_t len, char *out, size_t size)
{
    snprintf(out, size, "%.200s-%016llx", t->id_text,
             (unsigned long long) rd_charge_fingerprint(body, len));
}

struct rows {
    struct rd_phone_stats *stats;
    size_t                 n;
};

static int
add_row(const bson_t *row, void *arg, char *err, size_t errlen)
{
    struct rows *r = arg;

    return rd_report_add_row(row, r->stats, r->n, err, errlen);
}

/* Publish a result and ack its task once the broker confirmed it. */
static enum outcome
answer(struct worker *w, const struct rd_delivery *d, const struct rd_task *t,
       const char *json, enum rd_outcome o, double t0)
{
    const struct rd_conf_amqp *c = &w->conf->rabbitmq;
    struct rd_publish          p = { 0 };
    char                       mid[256], err[512];
    int                        rc;

    message_id(t, d->body, d->len, mid, sizeof(mid));
    p.correlation_id = t->id_text;
    p.message_id = mid;
    rc = rd_broker_publish(w->broker, c->result_queue, json, strlen(json), &p,
                           err, sizeof(err));
    if (rc == RD_ERROR) {
        rd_warn("task %s: publishing the result failed, the task will be redelivered: %s",
                t->id_text, err);
        return BROKER_LOST;
    }
    if (rc == RD_DECLINED) {
        /* Returned (the result queue is gone) or nacked: put the task back
         * and reconnect, which declares the queues again. */
        rd_warn("task %s: the result was not accepted, requeueing the task and "
                "reconnecting: %s", t->id_text, err);
        return put_back(w, d, BROKER_REFUSED);
    }
    if (rd_broker_ack(w->broker, d->tag) != RD_OK)
        return BROKER_LOST;
    rd_metrics_task(o, rd_now_sec() - t0);
    return DONE;
}

/* Publish a delivery to the dead-letter queue with all its properties and
 * headers and the reason, then ack it: dead-lettering needs no queue
 * arguments, so it works on queues declared by anyone. */
static enum outcome
dead_letter(struct worker *w, const struct rd_delivery *d, int64_t attempts,
            const char *reason, double t0)
{
    const struct rd_conf_amqp *c = &w->conf->rabbitmq;
    struct rd_publish          p = { 0 };
    char                       err[512];
    int                        rc;

    p.like = d;
    p.reason = reason;
    p.attempts = attempts;
    rc = rd_broker_publish(w->broker, c->dead_letter_queue, d->body, d->len, &p,
                           err, sizeof(err));
    if (rc == RD_ERROR) {
        rd_warn("dead-lettering a message failed, it will be redelivered: %s", err);
        return BROKER_LOST;
    }
    if (rc == RD_DECLINED) {
        rd_warn("the dead-letter queue refused a message, requeueing it and reconnecting: %s",
                err);
        return put_back(w, d, BROKER_REFUSED);
    }
    if (rd_broker_ack(w->broker, d->tag) != RD_OK)
        return BROKER_LOST;
    rd_metrics_task(RD_OUT_DEAD_LETTERED, rd_now_sec() - t0);
    return DONE;
}

/* The correlation_id of a delivery for a log line, whatever its state. */
static const char *
task_name(const struct rd_delivery *d, const struct rd_conf_task *limits, char *buf, size_t len)
{
    struct rd_task t;
    char           err[256];

    if (rd_task_parse(d->body, d->len, limits, &t, err, sizeof(err)) != RD_TASK_UNREADABLE)
        snprintf(buf, len, "%s", t.id_text);
    else
        snprintf(buf, len, "%s", d->correlation_id[0] ? d->correlation_id : "(unreadable)");
    rd_task_free(&t);
    return buf;
}

/* One delivery, from its charges (charges.h) to its ack. */
static enum outcome
handle_task(struct worker *w, struct rd_delivery *d, uint64_t fp, int64_t attempts)
{
    const struct rd_conf  *c = w->conf;
    struct rd_task         t;
    struct rd_phone_stats *stats = NULL;
    struct rows            rows;
    bson_t                *pipeline;
    char                   received[40], err[512], msg[700], *json = NULL;
    double                 t0 = rd_now_sec(), t1;
    int                    rc, klass;
    enum outcome           out;

    rd_format_wall_time(received, sizeof(received));

    /* Deliveries that crashed a worker, or ran out of time, more often
     * than allowed go to the dead-letter queue instead of cycling. */
    if (attempts > c->rabbitmq.max_redeliveries) {
        char why[160];

        snprintf(why, sizeof(why), "crashed a worker %lld times "
                 "(rabbitmq.max_redeliveries %d)", (long long) attempts,
                 c->rabbitmq.max_redeliveries);
        rd_error("task %s: dead-lettered: %s; %zu bytes, delivery tag %llu",
                 task_name(d, &c->task, err, sizeof(err)), why, d->len,
                 (unsigned long long) d->tag);
        return dead_letter(w, d, attempts, why, t0);
    }

    rc = rd_task_parse(d->body, d->len, &c->task, &t, err, sizeof(err));
    if (rc == RD_TASK_UNREADABLE) {
        char why[600];

        rd_warn("moving an unreadable message (%zu bytes, delivery tag %llu) to the "
                "dead-letter queue: %s", d->len, (unsigned long long) d->tag, err);
        snprintf(why, sizeof(why), "unreadable: %s", err);
        return dead_letter(w, d, attempts, why, t0);
    }
    if (rc == RD_TASK_INVALID) {
        rd_warn("task %s: invalid: %s", t.id_text, err);
        json = rd_report_error_json(&t, err, received, rd_now_sec() - t0);
        goto publish;
    }

    rd_debug("task %s: %zu phones", t.id_text, t.nphones);
#ifdef RD_TEST_HOOKS
    /* A task that kills its worker, for the poison-message tests. */
    for (size_t i = 0; i < t.nphones; i++)
        if (t.phones[i] == w->test_crash_phone)
            raise(SIGKILL);
#endif
    stats = calloc(t.nphones, sizeof(*stats));
    if (stats == NULL) {
        rd_error("task %s: out of memory for %zu phones; requeueing it", t.id_text, t.nphones);
        rd_task_free(&t);
        return put_back(w, d, BROKER_REFUSED);
    }
    rd_report_init(stats, &t);
    rows.stats = stats;
    rows.n = t.nphones;
    pipeline = rd_report_pipeline(t.phones, t.nphones, c->report.price_per_second);
    t1 = rd_now_sec();
    rc = rd_store_aggregate(w->store, pipeline, c->mongodb.max_time_ms, add_row, &rows,
                            &klass, err, sizeof(err));
    rd_metrics_db(rd_now_sec() - t1);
    bson_destroy(pipeline);
    if (w->test_delay_ms > 0)
        rd_sleep_ms(w->test_delay_ms, NULL);
    if (w_terminate) {
        out = STOP_NOW;                 /* fast stop: leave it unacked */
        goto done;
    }
    if (rc != RD_OK && (klass == RD_STORE_TIMEOUT
                        || (klass == RD_STORE_TRANSIENT
                            && (rd_now_sec() - t1) * 1000 >= c->mongodb.max_time_ms))) {
        /* The query ran out of time (the server stopped it, or it never
         * answered): maybe the load, maybe the task.  Try again a bounded
         * number of times, then answer. */
        uint64_t n = rd_charge_timeout(fp);

        if (n <= (uint64_t) c->rabbitmq.max_redeliveries) {
            rd_warn("task %s: the query ran out of time (%llu of at most %d times); "
                    "returning the task to the queue: %s", t.id_text, (unsigned long long) n,
                    c->rabbitmq.max_redeliveries + 1, err);
            out = put_back(w, d, klass == RD_STORE_TIMEOUT ? DONE : STORE_LOST);
            goto done;
        }
        snprintf(msg, sizeof(msg), "the report did not finish within mongodb.max_time_ms "
                 "(%d ms), %d times: %s", c->mongodb.max_time_ms,
                 c->rabbitmq.max_redeliveries + 1, err);
        rd_error("task %s: %s", t.id_text, msg);
        json = rd_report_error_json(&t, msg, received, rd_now_sec() - t0);
        goto publish;
    }
    if (rc != RD_OK && klass == RD_STORE_TRANSIENT) {
        rd_warn("task %s: database unavailable, returning the task to the queue: %s",
                t.id_text, err);
        out = put_back(w, d, STORE_LOST);
        goto done;
    }
    if (rc != RD_OK) {
        snprintf(msg, sizeof(msg), "database error: %s", err);
        rd_error("task %s: the database could not answer: %s", t.id_text, msg);
        json = rd_report_error_json(&t, msg, received, rd_now_sec() - t0);
    } else {
        json = rd_report_complete_json(&t, stats, received, rd_now_sec() - t0);
    }

publish:
    if (json == NULL) {
        rd_error("task %s: out of memory building the result; requeueing it", t.id_text);
        out = put_back(w, d, BROKER_REFUSED);
        goto done;
    }
    out = answer(w, d, &t, json, rc == RD_OK ? RD_OUT_COMPLETE : RD_OUT_ERROR, t0);
    if (out == DONE)
        rd_info("task %s: %s, %zu phones, %.3f s", t.id_text,
                rc == RD_OK ? "complete" : "error result", t.nphones,
                rd_now_sec() - t0);

done:
    free(json);
    free(stats);
    rd_task_free(&t);
    return out;
}

static enum outcome
handle(struct worker *w, struct rd_delivery *d)
{
    uint64_t     fp = rd_charge_fingerprint(d->body, d->len);
    int64_t      attempts = (int64_t) rd_charge_begin(fp);
    enum outcome out = handle_task(w, d, fp, attempts);

    rd_charge_end(fp);
    return out;
}

/* The connection is gone or refused us: reconnect, at once if it had been
 * consuming for a while, after a growing backoff if it keeps failing. */
static void
lost_broker(struct worker *w, int refused, const char *what, const char *err)
{
    int steady = w->consuming && rd_now_ms() - w->consuming_ms >= STEADY_MS;

    set_state(w, RD_CHAN_BROKER_DOWN);
    drop_broker(w, 0);
    if (steady && !refused) {
        w->backoff_ms = 0;
        rd_warn("%s: %s; reconnecting", what, err);
        return;
    }
    backoff(w, what, err);
}

/* Cancel the consumer and deal with what the broker had already sent:
 * finish it (graceful stop) or put it back uncounted (database away). */
static enum outcome
release_consumer(struct worker *w, int put_back_all)
{
    struct rd_delivery d;
    enum outcome       out = DONE;
    char               err[512];

    if (rd_broker_cancel(w->broker, err, sizeof(err)) != RD_OK) {
        rd_warn("cancelling the consumer failed: %s", err);
        return BROKER_LOST;
    }
    w->consuming = 0;
    while (out == DONE && !w_terminate
           && rd_broker_next(w->broker, &d, 0, err, sizeof(err)) == RD_OK) {
        out = put_back_all ? put_back(w, &d, DONE) : handle(w, &d);
        rd_delivery_free(&d);
    }
    return out == STORE_LOST || out == BROKER_REFUSED ? DONE : out;
}

/* The database is away: give back what the broker sent us and close the
 * connection too.  While the worker backs off it makes no calls into
 * rabbitmq-c, which would leave heartbeats unanswered; connect_all()
 * reconnects once the database answers again. */
static void
pause_for_store(struct worker *w)
{
    int graceful = release_consumer(w, 1) == DONE;

    w->store_ok = 0;
    set_state(w, RD_CHAN_STORE_DOWN);
    drop_broker(w, graceful);
}

/* An idle worker still notices a database outage, so health reports the
 * truth and the first task after it is not the one to find out. */
static void
idle_check(struct worker *w)
{
    char err[512];
    int  klass;

    if (rd_now_ms() - w->db_seen_ms < IDLE_PING_MS)
        return;
    w->db_seen_ms = rd_now_ms();
    if (rd_store_ping(w->store, &klass, err, sizeof(err)) == RD_OK)
        return;
    rd_warn("database unreachable while idle: %s; pausing consumption", err);
    pause_for_store(w);
}

int
rd_worker_main(const struct rd_conf *conf, int chan, int generation)
{
    struct worker      w;
    struct rd_delivery d;
    char               err[512];
    int                rc, status = RD_WORKER_EXIT_OK;

    memset(&w, 0, sizeof(w));
    w.conf = conf;
    w.chan = chan;
    w_quit = w_terminate = w_reopen = w_stop = 0;
    rd_log_set_role("worker");
    rd_log_set_level(conf->log_level);
    rd_proctitle_set("reporterd: worker process (generation %d)", generation);
    setup_signals();
    if (conf->user != NULL && rd_drop_privileges(conf->user, err, sizeof(err)) != 0) {
        fatal(err);
        return RD_WORKER_EXIT_FATAL;
    }
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (chan >= 0 && getppid() != rd_master_pid)
        w_quit = w_stop = 1;            /* the master died before the prctl */
#ifdef RD_TEST_HOOKS
    {
        const char *v = getenv("REPORTERD_TEST_TASK_DELAY_MS");
        const char *x = getenv("REPORTERD_TEST_WORKER_EXIT");

        const char *c = getenv("REPORTERD_TEST_CRASH_PHONE");

        w.test_delay_ms = v != NULL ? atoll(v) : 0;
        w.test_crash_phone = c != NULL ? atoll(c) : -1;
        if (x != NULL)
            return atoi(x);
    }
#endif
    rd_info("worker started (generation %d)", generation);

    while (!stopping()) {
        check_flags(&w);
        if (stopping())
            break;
        rc = connect_all(&w);
        if (rc == RD_ERROR) {
            status = RD_WORKER_EXIT_FATAL;
            break;
        }
        if (rc == RD_AGAIN)
            continue;
        rc = rd_broker_next(w.broker, &d, WAIT_MS, err, sizeof(err));
        if (rc == RD_AGAIN) {
            idle_check(&w);
            continue;
        }
        w.db_seen_ms = rd_now_ms();
        if (rc == RD_ERROR) {
            lost_broker(&w, 0, "lost the broker", err);
            continue;
        }
        switch (handle(&w, &d)) {
        case DONE:
            w.backoff_ms = 0;
            if (!w.worked) {
                w.worked = 1;
                rd_channel_send(w.chan, RD_CHAN_WORKED);
            }
            break;
        case BROKER_LOST:
            lost_broker(&w, 0, "lost the broker", "see above");
            break;
        case BROKER_REFUSED:
            lost_broker(&w, 1, "reconnecting", "the broker refused a message (see above)");
            break;
        case STORE_LOST:
            /* Pause: take no tasks until the database answers again. */
            pause_for_store(&w);
            break;
        case STOP_NOW:
            break;
        }
        rd_delivery_free(&d);
    }

    set_state(&w, RD_CHAN_STOPPING);
    if (w.broker != NULL && !w_terminate && w.consuming
        && release_consumer(&w, 0) != DONE)
        drop_broker(&w, 0);
    if (w.broker != NULL)
        drop_broker(&w, !w_terminate);
    rd_store_close(w.store);
    rd_info("worker exiting (%s)", w_terminate ? "fast stop" : status ? "fatal error"
                                                                       : "graceful stop");
    return status;
}
