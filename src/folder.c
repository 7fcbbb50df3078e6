/*
 * folder.c -- the rollup folder process (report.mode: rollup), forked and
 * supervised by the master like nginx's cache manager: it holds the
 * folders' lease and folds batches of records into the rollups
 * (rollup_fold.c) back to back while there are any, then every
 * rollup.interval; between steps it recounts phones at rollup.verify_rate
 * records per second to follow deletes and corrections (rollup_verify.c),
 * and on a replica set it follows the records' change stream, reading it
 * while idle (rollup_follow.c);
 * while the records have a TTL index it folds nothing and keeps no
 * rollups, so that reports read their records whole; it publishes its lag
 * and its work on /metrics.
 *
 *   QUIT, channel EOF, master death:  finish the current step, give the
 *                                     lease up, exit 0
 *   TERM, INT:                        exit at once (a batch left open is
 *                                     finished by the next folder)
 *   USR1:                             reopen the log
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "channel.h"
#include "folder.h"
#include "log.h"
#include "metrics.h"
#include "process.h"
#include "rollup.h"
#include "store.h"
#include "util.h"

#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  30000
#define LAG_BUSY_MS     10000       /* how often a busy folder measures its lag */
#define VERIFY_CREDIT_S 10          /* verification budget saved up at most, seconds */
#define FOLLOW_WAIT_MS  200         /* a change stream's getMore waits this long at most */
#define FOLLOW_BUSY_MS  5000        /* a busy folder reads the stream this often */
#define VERIFY_STEP_MS  2000        /* one verification call's time, at most */

static volatile sig_atomic_t f_stop, f_terminate, f_reopen;

static void
on_signal(int sig)
{
    switch (sig) {
    case SIGQUIT: f_stop = 1; break;
    case SIGTERM:
    case SIGINT:  f_terminate = f_stop = 1; break;
    case SIGUSR1: f_reopen = 1; break;
    }
}

#ifdef RD_TEST_HOOKS
/* REPORTERD_TEST_FOLDER_KILL=<file>: when that file holds the name of the
 * step just passed, remove it and SIGKILL this process, as kill -9 would
 * at the worst moment; "stop:<step>" SIGSTOPs it instead, as a stalled
 * machine would, until the test sends SIGCONT.  A test arms one by writing
 * the file. */
static void
test_point(const char *step)
{
    const char *path = getenv("REPORTERD_TEST_FOLDER_KILL");
    char        buf[32];
    size_t      n;
    FILE       *f;

    if (path == NULL || (f = fopen(path, "r")) == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (strncmp(buf, "stop:", 5) == 0 && strcmp(buf + 5, step) == 0 && unlink(path) == 0) {
        rd_info("test hook: stopping the folder after \"%s\"", step);
        raise(SIGSTOP);
        rd_info("test hook: the folder goes on after \"%s\"", step);
        return;
    }
    if (strcmp(buf, step) != 0 || unlink(path) != 0)
        return;
    rd_info("test hook: killing the folder after \"%s\"", step);
    raise(SIGKILL);
}
#endif

static void
check_flags(int *chan)
{
    if (f_reopen) {
        f_reopen = 0;
        rd_log_reopen();
    }
    if (*chan >= 0 && rd_channel_recv(*chan) < 0) {
        rd_warn("the master is gone (channel closed): stopping");
        close(*chan);
        *chan = -1;
        f_stop = 1;
    }
}

static void
publish_lag(struct rd_rollup *r)
{
    int64_t unfolded, behind;
    char    err[512];
    int     klass;

    if (rd_metrics == NULL)
        return;
    if (rd_rollup_lag(r, &unfolded, &behind, &klass, err, sizeof(err)) != RD_OK) {
        rd_debug("folder: cannot measure the lag: %s", err);
        return;
    }
    __atomic_store_n(&rd_metrics->folder.unfolded, unfolded, __ATOMIC_RELAXED);
    __atomic_store_n(&rd_metrics->folder.behind_s, behind, __ATOMIC_RELAXED);
}

static void
set_refused(int refused)
{
    if (rd_metrics != NULL)
        __atomic_store_n(&rd_metrics->folder.refused, refused, __ATOMIC_RELAXED);
}

/* A TTL index on the records: rollup mode is refused while it exists.
 * RD_OK: fold; RD_DECLINED: refused (the rollups deleted); RD_ERROR. */
static int
check_ttl(struct rd_rollup *r, int *refused, int *klass, char *err, size_t errlen)
{
    char    why[512];
    int64_t removed;
    int     rc = rd_rollup_ttl(r, why, sizeof(why), klass, err, errlen);

    if (rc == RD_ERROR)
        return rc;
    if (rc == RD_OK) {
        if (*refused)
            rd_info("folder: the records have no TTL index any more: folding again");
        *refused = 0;
        set_refused(0);
        return RD_OK;
    }
    if (rd_rollup_clear(r, &removed, klass, err, errlen) != RD_OK)
        return RD_ERROR;
    if (!*refused || removed > 0) {
        rd_error("folder: rollup mode refused: %s; %lld rollup(s) deleted: every report reads "
                 "its phones' records whole (exact, at live mode's speed) until the index is "
                 "dropped", why, (long long) removed);
    }
    *refused = 1;
    set_refused(1);
    return RD_DECLINED;
}

static int64_t drift_first, drift_n;

static void
on_drift(int64_t phone)
{
    if (drift_n++ == 0)
        drift_first = phone;
}

static int follow_declined;

/* How long one read of the change stream waits when nothing comes. */
static int
follow_wait(const struct rd_conf *conf)
{
    return conf->rollup.interval_ms < FOLLOW_WAIT_MS ? conf->rollup.interval_ms : FOLLOW_WAIT_MS;
}

/* Read the records' change stream (rollup_follow.c): what came, or
 * (nothing came) after waiting up to the stream's wait.  The events read. */
static int64_t
follow(struct rd_rollup *r, const struct rd_conf *conf)
{
    int                       wait_ms = follow_wait(conf);
    struct rd_rollup_followed f;
    char                      why[512], err[512];
    int                       klass, rc;

    rc = rd_rollup_follow(r, wait_ms, &f, why, sizeof(why), &klass, err, sizeof(err));
    if (f.lost) {
        rd_warn("folder: the change stream could not resume from its saved token: what "
                "changed meanwhile is left to the verification");
        if (rd_metrics != NULL)
            rd_metrics_add(&rd_metrics->folder.change_lost, 1);
    }
    if (rc == RD_DECLINED) {
        if (!follow_declined)
            rd_info("folder: not following the change stream (%s): the verification alone "
                    "follows deletes and corrections", why);
        follow_declined = 1;
    } else if (rc == RD_ERROR) {
        rd_warn("folder: change stream: %s", err);
    }
    if (rd_metrics != NULL)
        __atomic_store_n(&rd_metrics->folder.following, rd_rollup_following(r), __ATOMIC_RELAXED);
    if (rc != RD_OK)
        return 0;
    follow_declined = 0;
    if (f.opened)
        rd_info("folder: following the change stream of the records (%s)",
                f.resumed ? "from its saved token" : "from now");
    if (f.invalidated)
        rd_warn("folder: the records collection was dropped or renamed: %lld rollup(s) deleted "
                "(reports read the records left); the change stream starts again",
                (long long) f.cleared);
    if (f.corrected > 0)
        rd_info("folder: change stream: %lld rollup(s) recomputed after a delete or a "
                "correction of a folded record", (long long) f.corrected);
    if (rd_metrics == NULL)
        return f.events;
    rd_metrics_add(&rd_metrics->folder.change_events, (uint64_t) f.events);
    rd_metrics_add(&rd_metrics->folder.change_corrected, (uint64_t) f.corrected);
    rd_metrics_add(&rd_metrics->folder.change_unknown, (uint64_t) f.unknown);
    if (f.events > 0)
        __atomic_store_n(&rd_metrics->folder.change_lag_ms, f.lag_ms, __ATOMIC_RELAXED);
    return f.events;
}

/* An idle folder's pause: spent reading the change stream when there is
 * one, so that a change is applied as it comes. */
static void
idle(struct rd_rollup *r, const struct rd_conf *conf)
{
    int64_t until = rd_now_ms() + conf->rollup.interval_ms, left, t0, took;
    int64_t wait = follow_wait(conf);

    while (!f_stop && (left = until - rd_now_ms()) > 0) {
        t0 = rd_now_ms();
        if (follow(r, conf) > 0)
            continue;
        /* nothing came: a stream that did not wait (closed, refused, none)
         * must not make this a busy loop */
        took = rd_now_ms() - t0;
        if (took < wait)
            rd_sleep_ms(left < wait - took ? left : wait - took, &f_stop);
    }
}

/* Recount phones for the credit saved up since the last call (kept in
 * record-milliseconds, so that no fraction is lost). */
static void
verify(struct rd_rollup *r, const struct rd_conf *conf, int64_t *credit, int64_t *at)
{
    struct rd_rollup_verify v;
    int64_t                 now = rd_now_ms(), rate = conf->rollup.verify_rate, elapsed;
    int64_t                 cap = rate * VERIFY_CREDIT_S * 1000;
    char                    err[512];
    int                     klass, rc;

    if (rate == 0)
        return;
    elapsed = now - *at;
    if (elapsed > VERIFY_CREDIT_S * 1000)
        elapsed = VERIFY_CREDIT_S * 1000;
    *at = now;
    *credit += rate * elapsed;
    if (*credit > cap)
        *credit = cap;
    if (*credit < 1000)
        return;
    drift_n = 0;
    rc = rd_rollup_verify(r, *credit / 1000, rd_now_ms() + VERIFY_STEP_MS, &v, on_drift, &klass,
                          err, sizeof(err));
    *credit -= v.cost * 1000;
    if (rc != RD_OK)
        rd_warn("folder: verification: %s", err);
    if (drift_n > 0)
        rd_info("folder: verification: %lld rollup(s) differed from their records (a record "
                  "deleted, corrected or replaced after it was folded; the first: phone %lld) "
                  "and were rewritten", (long long) drift_n, (long long) drift_first);
    if (v.cycles > 0)
        rd_debug("folder: verification cycle done in %lld ms", (long long) v.cycle_ms);
    if (rd_metrics == NULL)
        return;
    rd_metrics_add(&rd_metrics->folder.verified_phones, (uint64_t) v.phones);
    rd_metrics_add(&rd_metrics->folder.verified_records, (uint64_t) v.records);
    rd_metrics_add(&rd_metrics->folder.drift, (uint64_t) v.drifted);
    if (v.cycles > 0) {
        rd_metrics_add(&rd_metrics->folder.verify_cycles, (uint64_t) v.cycles);
        __atomic_store_n(&rd_metrics->folder.verify_cycle_ms, v.cycle_ms, __ATOMIC_RELAXED);
    }
}

static void
set_lease(int held)
{
    if (rd_metrics != NULL)
        __atomic_store_n(&rd_metrics->folder.lease, held, __ATOMIC_RELAXED);
}

int
rd_folder_main(const struct rd_conf *conf, int chan)
{
    struct rd_store      *st = NULL;
    struct rd_rollup     *r = NULL;
    struct rd_rollup_step step;
    char                  err[512], owner[128], host[64];
    int64_t               backoff = 0, lag_at = 0, ttl_at = 0, credit = 0, verified_at, now;
    int64_t               followed_at = 0;
    int                   klass, rc, indexed = 0, held = 0, worked = 0, waiting = 0;
    int                   refused = 0;

    f_stop = f_terminate = f_reopen = 0;
    rd_log_set_role("folder");
    rd_log_set_level(conf->log_level);
    rd_proctitle_set("reporterd: rollup folder");
    rd_child_signals(on_signal);
    if (conf->user != NULL && rd_drop_privileges(conf->user, err, sizeof(err)) != 0) {
        rd_error("%s", err);
        rd_metrics_problem(err);
        return RD_WORKER_EXIT_FATAL;
    }
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (chan >= 0 && getppid() != rd_master_pid)
        return 0;                       /* the master died before the prctl */
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    /* The daemon's name, not the process's: a folder the master respawns
     * takes its predecessor's lease over at once. */
    snprintf(owner, sizeof(owner), "%s:%ld", host, (long) (chan >= 0 ? rd_master_pid : getpid()));
    if (rd_metrics != NULL)
        __atomic_store_n(&rd_metrics->folder.pid, getpid(), __ATOMIC_RELAXED);
    rd_info("rollup folder started (%s into %s.%s, batches of %d)", conf->mongodb.collection,
            conf->mongodb.database, conf->rollup.collection, conf->rollup.batch);
    verified_at = rd_now_ms();

    while (!f_stop) {
        check_flags(&chan);
        if (f_stop)
            break;
        if (backoff > 0) {
            rd_sleep_ms(backoff, &f_stop);
            if (f_stop)
                break;
        }
        if (st == NULL) {
            st = rd_store_new(&conf->mongodb, "reporterd folder", &klass, err, sizeof(err));
            if (st == NULL) {
                if (klass != RD_STORE_TRANSIENT) {
                    rd_error("%s", err);
                    rd_metrics_problem(err);
                    return RD_WORKER_EXIT_FATAL;
                }
                backoff = rd_backoff_next(backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
                rd_warn("folder: database unreachable, retrying in %lld ms: %s",
                        (long long) backoff, err);
                continue;
            }
            r = rd_rollup_new(st, conf, owner);
            if (r == NULL) {
                rd_alert("folder: out of memory");
                rd_store_close(st);
                return 1;
            }
#ifdef RD_TEST_HOOKS
            rd_rollup_set_hook(r, test_point);
#endif
        }
        if (!indexed) {
            if (rd_rollup_indexes(r, &klass, err, sizeof(err)) != RD_OK) {
                backoff = rd_backoff_next(backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
                rd_warn("folder: cannot create the indexes rollup mode needs, retrying "
                        "in %lld ms: %s", (long long) backoff, err);
                continue;
            }
            indexed = 1;
        }
        rc = rd_rollup_lease(r, conf->rollup.lease_ms, &klass, err, sizeof(err));
        if (rc != RD_OK) {
            if (rc == RD_DECLINED) {
                if (held || !waiting)
                    rd_info("folder: waiting: %s", err);
                held = 0;
                waiting = 1;
                backoff = 0;
                set_lease(0);
                rd_sleep_ms(conf->rollup.interval_ms, &f_stop);
            } else {
                backoff = rd_backoff_next(backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
                rd_warn("folder: lease: %s; retrying in %lld ms", err, (long long) backoff);
            }
            continue;
        }
        if (!held)
            rd_info("folder: holding the lease (%s)", owner);
        held = 1;
        waiting = 0;
        set_lease(1);
        if (refused || rd_now_ms() >= ttl_at) {
            rc = check_ttl(r, &refused, &klass, err, sizeof(err));
            if (rc == RD_ERROR) {
                /* nothing is folded until a check has said there is no
                 * TTL index: the next round checks again */
                backoff = rd_backoff_next(backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
                rd_warn("folder: %s (nothing is folded until the records collection's "
                        "indexes can be read); retrying in %lld ms", err, (long long) backoff);
                continue;
            }
            ttl_at = rd_now_ms() + conf->rollup.interval_ms;
            if (rc == RD_DECLINED) {
                backoff = 0;
                rd_sleep_ms(conf->rollup.interval_ms, &f_stop);
                continue;
            }
        }
        /* The stream opens before anything is folded in the epoch, so that
         * no change to a record folded in it comes before the stream. */
        if (!rd_rollup_following(r) && !follow_declined) {
            follow(r, conf);
            followed_at = rd_now_ms();
        }
        rc = rd_rollup_fold(r, &step, &klass, err, sizeof(err));
        now = rd_now_ms();
        if (rc == RD_ERROR) {
            backoff = rd_backoff_next(backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
            rd_warn("folder: %s; retrying in %lld ms", err, (long long) backoff);
            indexed = 0;        /* a dropped index: make it again */
            continue;
        }
        backoff = 0;
        if (rc == RD_OK && !worked) {
            worked = 1;                 /* not a crash loop, for the master */
            rd_channel_send(chan, RD_CHAN_WORKED);
            rd_info("folder: folded batch %lld%s", (long long) step.batch,
                    step.resumed ? ", which a folder had left open" : "");
        }
        if (step.new_epoch && rd_metrics != NULL)
            rd_metrics_add(&rd_metrics->folder.new_epochs, 1);
        if (step.new_epoch)
            rd_warn("folder: a new epoch %s (the batches collection was dropped, replaced or "
                    "restored from an older backup, or rollup.collection is new): every record "
                    "is folded again", step.epoch);
        if (rc == RD_OK && step.overflowed > 0)
            rd_warn("folder: batch %lld: the sums of %lld phone(s) overflow 64-bit integers; "
                    "reports on them answer Error", (long long) step.batch,
                    (long long) step.overflowed);
        if (rc == RD_OK) {
            rd_debug("folder: batch %lld%s: %lld records, %lld phones, %lld invalid, "
                     "%lld with a phone that is not an integer", (long long) step.batch,
                     step.resumed ? " (left open by a folder)" : "",
                     (long long) step.records, (long long) step.phones,
                     (long long) step.invalid, (long long) step.bad_phone);
            if (rd_metrics != NULL) {
                rd_metrics_add(&rd_metrics->folder.batches, 1);
                rd_metrics_add(&rd_metrics->folder.records, (uint64_t) step.records);
                rd_metrics_add(&rd_metrics->folder.invalid, (uint64_t) step.invalid);
                rd_metrics_add(&rd_metrics->folder.bad_phone, (uint64_t) step.bad_phone);
                rd_metrics_add(&rd_metrics->folder.overflowed, (uint64_t) step.overflowed);
            }
        }
        /* Counting the unfolded records reads their index keys: while a
         * backlog is being folded, once every LAG_BUSY_MS is plenty. */
        if (rc == RD_AGAIN || now >= lag_at) {
            publish_lag(r);
            lag_at = now + (rc == RD_AGAIN || conf->rollup.interval_ms > LAG_BUSY_MS
                            ? conf->rollup.interval_ms : LAG_BUSY_MS);
        }
        verify(r, conf, &credit, &verified_at);
        if (rc == RD_AGAIN) {
            idle(r, conf);
            followed_at = rd_now_ms();
        } else if (rd_now_ms() - followed_at >= FOLLOW_BUSY_MS) {
            follow(r, conf);
            followed_at = rd_now_ms();
        }
    }
    if (r != NULL && held && !f_terminate)
        rd_rollup_release(r);
    set_lease(0);
    rd_rollup_free(r);
    rd_store_close(st);
    rd_info("rollup folder exiting (%s)", f_terminate ? "fast stop" : "graceful stop");
    return 0;
}
