/*
 * worker.c -- the worker cycle.
 *
 * A worker owns one broker connection and one database client, both made
 * after fork.  It takes one task at a time (prefetch) and hands it to
 * job.c, which has MongoDB run the report pipeline, publishes the result
 * with a publisher confirm and only then acks the task: at-least-once,
 * never lost.  The cycle acts on what that did to the connections.
 * Signals only set flags; the cycle checks them between tasks and at least
 * once a second while waiting for a message.
 *
 *   QUIT, channel EOF, master death:  stop consuming, finish the task in
 *                                     hand, give back what was delivered
 *                                     but not begun, close, exit 0
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
#include "job.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "process.h"
#include "rollup.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define WAIT_MS         1000        /* longest wait before checking flags */
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  30000
#define IDLE_PING_MS    5000        /* an idle worker checks the database */
#define STEADY_MS       5000        /* consuming this long: the connection is good */

static volatile sig_atomic_t w_terminate, w_reopen;
static volatile sig_atomic_t w_stop;        /* any stop: QUIT, TERM, INT, the master gone */

struct worker {
    const struct rd_conf *conf;
    int                   chan;
    struct rd_broker     *broker;
    struct rd_store      *store;
    struct rd_rollup     *rollup;       /* report.mode: rollup */
    struct rd_journal    *journal;      /* NULL: journal off */
    int                   journal_ready; /* its indexes checked */
    int                   consuming;
    int                   store_ok;
    int64_t               backoff_ms;
    int64_t               test_delay_ms;
    int64_t               test_crash_phone;
    int64_t               db_seen_ms;   /* last time the database answered */
    int64_t               consuming_ms; /* when the consumer started */
    int                   worked;       /* told the master it finished a task */
    int                   connected;    /* it had a broker connection before */
    int                   node;         /* rabbitmq.host entry to try first */
};

static void
on_signal(int sig)
{
    switch (sig) {
    case SIGQUIT: w_stop = 1; break;
    case SIGTERM:
    case SIGINT:  w_terminate = w_stop = 1; break;
    case SIGUSR1: w_reopen = 1; break;
    }
}

static void
check_flags(struct worker *w)
{
    if (w_reopen) {
        w_reopen = 0;
        rd_log_reopen();
    }
    if (w->chan >= 0 && rd_channel_recv(w->chan) < 0) {
        rd_warn("the master is gone (channel closed): stopping");
        close(w->chan);
        w->chan = -1;
        w_stop = 1;
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
        if (c->report.mode == RD_REPORT_ROLLUP) {
            w->rollup = rd_rollup_new(w->store, c, name);
            if (w->rollup == NULL)
                return fatal("out of memory");
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
    if (c->journal.enabled && w->journal == NULL) {
        snprintf(name, sizeof(name), "reporterd journal %ld", (long) getpid());
        w->journal = rd_journal_new(c, name, err, sizeof(err));
        if (w->journal == NULL)
            return fatal(err);
    }
    if (w->journal != NULL && !w->journal_ready) {
        int64_t was;

        /* Once per worker; a failure costs only the index, not the
         * journal: say so and try again at the next connection. */
        w->journal_ready = 1;
        if (rd_journal_prepare(w->journal, &was, err, sizeof(err)) != RD_OK)
            rd_warn("journal \"%s\": checking its indexes failed, will try again after the "
                    "next reconnection: %s", c->journal.collection, err);
        else if (was >= 0)
            rd_info("journal \"%s\": retention changed from %lld s to %d s (collMod on "
                      "index %s; documents already written expire by the new value)",
                      c->journal.collection, (long long) was, c->journal.retention,
                      RD_JOURNAL_TTL_INDEX);
    }
    if (w->broker == NULL) {
        snprintf(name, sizeof(name), "reporterd worker %ld", (long) getpid());
        w->broker = rd_broker_open(&c->rabbitmq, &w->node, name, &is_fatal, err, sizeof(err));
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
        if (w->connected++)
            RD_METRIC(broker_reconnects);
        rd_metrics_node(rd_broker_node(w->broker));
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
        rd_info("consuming from \"%s\" (prefetch %d), results to \"%s\", broker %s",
                c->rabbitmq.task_queue, c->rabbitmq.prefetch, c->rabbitmq.result_queue,
                rd_broker_node(w->broker));
        set_state(w, RD_CHAN_CONSUMING);
    }
    return RD_OK;
}

/* One delivery, from its charges to its ack (job.h). */
static enum rd_job_outcome
handle(struct worker *w, const struct rd_delivery *d)
{
    struct rd_job_env env;

    env.conf = w->conf;
    env.broker = w->broker;
    env.store = w->store;
    env.rollup = w->rollup;
    env.journal = w->journal;
    env.terminate = &w_terminate;
    env.test_delay_ms = w->test_delay_ms;
    env.test_crash_phone = w->test_crash_phone;
    return rd_job_handle(&env, d);
}

/* The connection is gone or refused us: reconnect, at once if it had been
 * consuming for a while, after a growing backoff if it keeps failing. */
static void
lost_broker(struct worker *w, int refused, const char *what, const char *err)
{
    int steady = w->consuming && rd_now_ms() - w->consuming_ms >= STEADY_MS;

    w->node++;                          /* the next node of rabbitmq.host first */
    set_state(w, RD_CHAN_BROKER_DOWN);
    drop_broker(w, 0);
    if (steady && !refused) {
        w->backoff_ms = 0;
        rd_warn("%s: %s; reconnecting", what, err);
        return;
    }
    backoff(w, what, err);
}

/* Cancel the consumer and give back what the broker had already sent.
 * A stopping worker begins no task: after a reload it would answer from
 * the old generation's configuration (its rollup collection, whose folder
 * has stopped following changes), and the new generation is consuming. */
static enum rd_job_outcome
release_consumer(struct worker *w)
{
    struct rd_delivery  d;
    enum rd_job_outcome out = RD_JOB_DONE;
    char                err[512];

    if (rd_broker_cancel(w->broker, err, sizeof(err)) != RD_OK) {
        rd_warn("cancelling the consumer failed: %s", err);
        return RD_JOB_BROKER_LOST;
    }
    w->consuming = 0;
    while (out == RD_JOB_DONE && !w_terminate
           && rd_broker_next(w->broker, &d, 0, err, sizeof(err)) == RD_OK) {
        out = rd_job_put_back(w->broker, &d, RD_JOB_DONE);
        rd_delivery_free(&d);
    }
    return out == RD_JOB_STORE_LOST || out == RD_JOB_BROKER_REFUSED ? RD_JOB_DONE : out;
}

/* The database is away: give back what the broker sent us and close the
 * connection too.  While the worker backs off it makes no calls into
 * rabbitmq-c, which would leave heartbeats unanswered; connect_all()
 * reconnects once the database answers again. */
static void
pause_for_store(struct worker *w)
{
    int graceful = release_consumer(w) == RD_JOB_DONE;

    w->store_ok = 0;
    w->journal_ready = 0;
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
    w_terminate = w_reopen = w_stop = 0;
    rd_log_set_role("worker");
    rd_log_set_level(conf->log_level);
    rd_proctitle_set("reporterd: worker process (generation %d)", generation);
    rd_child_signals(on_signal);
    if (conf->user != NULL && rd_drop_privileges(conf->user, err, sizeof(err)) != 0) {
        fatal(err);
        return RD_WORKER_EXIT_FATAL;
    }
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (chan >= 0 && getppid() != rd_master_pid)
        w_stop = 1;                     /* the master died before the prctl */
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
    /* workers spread over the nodes of rabbitmq.host by their place */
    w.node = rd_metrics_self != NULL ? rd_metrics_self->number : 0;
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
        if (stopping()) {               /* signalled while it arrived */
            if (rd_job_put_back(w.broker, &d, RD_JOB_DONE) != RD_JOB_DONE)
                drop_broker(&w, 0);
            rd_delivery_free(&d);
            break;
        }
        switch (handle(&w, &d)) {
        case RD_JOB_DONE:
            w.backoff_ms = 0;
            if (!w.worked) {
                w.worked = 1;
                rd_channel_send(w.chan, RD_CHAN_WORKED);
            }
            break;
        case RD_JOB_BROKER_LOST:
            lost_broker(&w, 0, "lost the broker", "see above");
            break;
        case RD_JOB_BROKER_REFUSED:
            lost_broker(&w, 1, "reconnecting", "the broker refused a message (see above)");
            break;
        case RD_JOB_STORE_LOST:
            /* Pause: take no tasks until the database answers again. */
            pause_for_store(&w);
            break;
        case RD_JOB_STOP_NOW:
            break;
        }
        rd_delivery_free(&d);
    }

    set_state(&w, RD_CHAN_STOPPING);
    if (w.broker != NULL && !w_terminate && w.consuming
        && release_consumer(&w) != RD_JOB_DONE)
        drop_broker(&w, 0);
    if (w.broker != NULL)
        drop_broker(&w, !w_terminate);
    rd_rollup_free(w.rollup);
    rd_journal_close(w.journal);
    rd_store_close(w.store);
    rd_info("worker exiting (%s)", w_terminate ? "fast stop" : status ? "fatal error"
                                                                       : "graceful stop");
    return status;
}
