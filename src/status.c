/*
 * status.c -- the status process and its endpoints: /metrics, the probes
 * /livez (the master and this process run), /readyz (a worker can take a
 * task: JSON saying what is missing when none can) and /healthz (kept for
 * existing checks: /readyz as text), and, with status.tasks on,
 * /tasks/<correlation_id> (status_tasks.h).
 *
 * Idle or slow clients cannot lock the probes out: up to CONNECTIONS
 * connections (half of them from one address), each closed after
 * IDLE_TIMEOUT_S without a byte; a /tasks lookup waits a bounded time for
 * a database client (status_tasks.c).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "json_check.h"
#include "log.h"
#include "metrics.h"
#include "process.h"
#include "procstat.h"
#include "status.h"
#include "status_tasks.h"
#include "util.h"

#define CONNECTIONS     1000        /* at most (less when the fd limit is lower) */
#define IDLE_TIMEOUT_S  3           /* a connection that sends nothing this long goes */

static volatile sig_atomic_t s_stop, s_reopen;

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        s_reopen = 1;
    else
        s_stop = 1;
}

struct buf {
    char   *p;
    size_t  len, cap;
};

static void
put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int     n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->len + n < b->cap) {
            b->len += n;
            return;
        }
        char *p = realloc(b->p, b->cap * 2 + n);
        if (p == NULL)
            return;
        b->p = p;
        b->cap = b->cap * 2 + n;
    }
}

static uint64_t
load(const uint64_t *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static void
histogram(struct buf *b, const char *name, const char *help, const struct rd_histogram *h)
{
    uint64_t acc = 0;
    int      i;

    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (i = 0; i < RD_METRICS_BUCKETS; i++) {
        acc += load(&h->buckets[i]);
        put(b, "%s_bucket{le=\"%g\"} %llu\n", name, rd_metrics_bounds[i], (unsigned long long) acc);
    }
    acc += load(&h->buckets[RD_METRICS_BUCKETS]);
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long) acc);
    put(b, "%s_sum %.6f\n%s_count %llu\n", name, load(&h->sum_us) / 1e6, name,
        (unsigned long long) load(&h->count));
}

static void
counter(struct buf *b, const char *name, const char *help, const uint64_t *v)
{
    put(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
        (unsigned long long) load(v));
}

static void
gauge(struct buf *b, const char *name, const char *help, long long v)
{
    put(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

/* A gauge of seconds kept in milliseconds, or of bytes and seconds read
 * as doubles. */
static void
gauge_f(struct buf *b, const char *name, const char *help, const char *type, double v)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n%s %.3f\n", name, help, name, type, name, v);
}

#define LOAD_INT(x) ((long long) __atomic_load_n(&(x), __ATOMIC_RELAXED))

/* One gauge per live worker, read from the int at offset in its entry,
 * labelled by its place in its generation (stable across restarts). */
static void
worker_gauge(struct buf *b, const char *name, const char *help, size_t offset)
{
    const struct rd_metrics_worker *w;
    int                             i;

    put(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    for (i = 0; i < RD_METRICS_WORKERS; i++) {
        w = &rd_metrics->workers[i];
        if (__atomic_load_n(&w->pid, __ATOMIC_RELAXED) != 0)
            put(b, "%s{worker=\"%d\",generation=\"%d\"} %d\n", name, w->number,
                w->generation, __atomic_load_n((const int *) ((const char *) w + offset),
                                               __ATOMIC_RELAXED));
    }
}

/* Which broker node each connected worker uses (rabbitmq.host may list a
 * cluster's nodes).  The label is copied byte by byte while the worker may
 * rewrite it: anything but a host:port character is dropped. */
static void
worker_nodes(struct buf *b)
{
    const struct rd_metrics_worker *w;
    char                            node[sizeof(w->node)];
    size_t                          i, o;
    int                             k;

    put(b, "# HELP reporterd_worker_broker_node The broker node a connected worker uses "
        "(one of rabbitmq.host).\n# TYPE reporterd_worker_broker_node gauge\n");
    for (k = 0; k < RD_METRICS_WORKERS; k++) {
        w = &rd_metrics->workers[k];
        if (__atomic_load_n(&w->pid, __ATOMIC_RELAXED) == 0
            || !__atomic_load_n(&w->broker_up, __ATOMIC_RELAXED))
            continue;
        for (i = o = 0; i < sizeof(node) - 1 && w->node[i] != '\0'; i++) {
            char c = w->node[i];

            if (isalnum((unsigned char) c) || strchr(".-_:[]%", c) != NULL)
                node[o++] = c;
        }
        node[o] = '\0';
        if (o > 0)
            put(b, "reporterd_worker_broker_node{worker=\"%d\",generation=\"%d\",node=\"%s\"} 1\n",
                w->number, w->generation, node);
    }
}

/* Rollup mode's folder: its lag and its work, shown from the first time
 * the master spawned one, with their last values while it is down. */
static void
folder_metrics(struct buf *b, const struct rd_metrics_folder *f)
{
    gauge(b, "reporterd_rollup_folder_up", "The rollup folder process runs (0: down or "
          "restarting; the other rollup metrics keep their last values).",
          LOAD_INT(f->pid) != 0);
    gauge(b, "reporterd_rollup_unfolded_records", "Call records not folded into the rollups yet.",
          LOAD_INT(f->unfolded));
    gauge(b, "reporterd_rollup_behind_seconds", "Age of the oldest record not folded yet "
          "(from its ObjectId).", LOAD_INT(f->behind_s));
    gauge(b, "reporterd_rollup_lease_held", "This host's folder holds the folders' lease.",
          LOAD_INT(f->lease));
    counter(b, "reporterd_rollup_batches_total", "Batches folded by this host.", &f->batches);
    counter(b, "reporterd_rollup_records_folded_total", "Records folded by this host.", &f->records);
    counter(b, "reporterd_rollup_invalid_records_total", "Folded records left out of the figures "
            "(dates missing, not integers or dates, mixed, out of range or reversed), each "
            "counted once, when it is folded.", &f->invalid);
    counter(b, "reporterd_rollup_bad_phone_records_total", "Folded records whose phone is not "
            "an integer (no report can ask for them).", &f->bad_phone);
    counter(b, "reporterd_rollup_new_epochs_total", "Epochs this host's folder saw begin (the "
            "batches collection dropped, replaced or restored from an older backup): every record "
            "is folded again.", &f->new_epochs);
    counter(b, "reporterd_rollup_overflowed_phones_total", "Batches that met a phone whose sums "
            "pass 64 bits (reports on it answer Error).", &f->overflowed);
    counter(b, "reporterd_rollup_verified_phones_total", "Phones the folder's verification "
            "recounted from their records.", &f->verified_phones);
    counter(b, "reporterd_rollup_verified_records_total", "Records the folder's verification "
            "read.", &f->verified_records);
    counter(b, "reporterd_rollup_drift_total", "Rollups the verification found different from "
            "their records (a record deleted, corrected or replaced after it was folded) and "
            "rewrote.", &f->drift);
    counter(b, "reporterd_rollup_verify_cycles_total", "Verification cycles over every phone "
            "finished.", &f->verify_cycles);
    gauge_f(b, "reporterd_rollup_verify_cycle_seconds", "How long the last verification cycle "
            "took: the delay after which a delete or a correction is in every report.", "gauge",
            (double) LOAD_INT(f->verify_cycle_ms) / 1000.0);
    gauge(b, "reporterd_rollup_change_stream_open", "The folder follows the records' change "
          "stream (a replica set with pre-images).", LOAD_INT(f->following));
    counter(b, "reporterd_rollup_change_events_total", "Deletes, updates and replaces of records "
            "the folder read from the change stream.", &f->change_events);
    counter(b, "reporterd_rollup_change_corrections_total", "Rollups the change stream's events "
            "made differ from their records, rewritten.", &f->change_corrected);
    counter(b, "reporterd_rollup_change_events_without_preimage_total", "Change events whose record "
            "before the change was not available (left to the verification).", &f->change_unknown);
    counter(b, "reporterd_rollup_change_stream_lost_total", "Saved resume tokens the server could not "
            "resume from (what changed meanwhile is left to the verification).", &f->change_lost);
    gauge_f(b, "reporterd_rollup_change_lag_seconds", "Age of the last change event when the folder "
            "read it.", "gauge", (double) LOAD_INT(f->change_lag_ms) / 1000.0);
    gauge(b, "reporterd_rollup_refused", "Rollup mode is refused (a TTL index on the records): "
          "nothing is folded and reports read their records whole.", LOAD_INT(f->refused));
}

/* The master's standard process figures (it is this process's parent). */
static void
process_metrics(struct buf *b)
{
    struct rd_procstat ps;

    if (rd_procstat_read(rd_master_pid, &ps) != 0)
        return;
    gauge_f(b, "process_cpu_seconds_total", "The master's user and system CPU time, seconds.",
            "counter", ps.cpu_seconds);
    gauge_f(b, "process_start_time_seconds", "When the master started, seconds since the epoch.",
            "gauge", ps.start_time);
    gauge_f(b, "process_resident_memory_bytes", "The master's resident memory, bytes.", "gauge",
            ps.resident_bytes);
    gauge_f(b, "process_virtual_memory_bytes", "The master's virtual memory, bytes.", "gauge",
            ps.virtual_bytes);
    if (ps.open_fds >= 0)
        gauge(b, "process_open_fds", "The master's open file descriptors.", ps.open_fds);
    if (ps.max_fds >= 0)
        gauge(b, "process_max_fds", "The master's limit on open file descriptors.", ps.max_fds);
}

static char *
render_metrics(size_t *len)
{
    static const char *outcomes[RD_OUT_MAX] = { "complete", "error", "requeued", "dead_lettered" };
    const struct rd_metrics *m = rd_metrics;
    struct buf               b = { malloc(16384), 0, 16384 };
    int                      i;

    if (b.p == NULL)
        return NULL;
    b.p[0] = '\0';
    put(&b, "# HELP reporterd_build_info Build information.\n# TYPE reporterd_build_info gauge\n"
        "reporterd_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
    put(&b, "# HELP reporterd_tasks_total Tasks handled, by outcome (requeued: kept for "
        "existing dashboards, the same count as reporterd_task_requeues_total).\n"
        "# TYPE reporterd_tasks_total counter\n");
    for (i = 0; i < RD_OUT_MAX; i++)
        put(&b, "reporterd_tasks_total{outcome=\"%s\"} %llu\n", outcomes[i],
            (unsigned long long) load(&m->tasks[i]));
    counter(&b, "reporterd_task_requeues_total", "Deliveries given back to the queue unanswered "
            "(the database away, a stopping worker); the task is answered later.",
            &m->tasks[RD_OUT_REQUEUED]);
    histogram(&b, "reporterd_task_duration_seconds",
              "Time from taking a task to its confirmed result.", &m->task_seconds);
    histogram(&b, "reporterd_db_query_duration_seconds",
              "Time of one report aggregation in MongoDB.", &m->db_seconds);
    gauge(&b, "reporterd_workers", "Live worker processes.", LOAD_INT(m->live_workers));
    counter(&b, "reporterd_worker_restarts_total", "Workers replaced after dying unasked.",
            &m->worker_restarts);
    counter(&b, "reporterd_invalid_records_total", "Call records of requested phones left out "
            "of reports' figures (dates missing, not integers or dates, mixed, out of range or "
            "reversed), counted in each report that reads them.", &m->invalid_records);
    counter(&b, "reporterd_reloads_total", "Configuration reloads applied.", &m->reloads);
    counter(&b, "reporterd_reload_failures_total", "Reloads refused (the file did not load, the "
            "log could not be opened): the running configuration was kept.", &m->reload_failures);
    counter(&b, "reporterd_broker_reconnects_total", "Broker connections a worker opened again "
            "after it lost or dropped one.", &m->broker_reconnects);
    counter(&b, "reporterd_db_errors_total", "Report queries that failed in MongoDB (an outage, "
            "a timeout or an error it answered).", &m->db_errors);
    counter(&b, "reporterd_confirm_timeouts_total", "Results the broker did not confirm within "
            "rabbitmq.confirm_timeout (the task is not acked and comes back).", &m->confirm_timeouts);
    if (__atomic_load_n(&m->folder.spawned, __ATOMIC_RELAXED) != 0)
        folder_metrics(&b, &m->folder);
    counter(&b, "reporterd_journal_writes_total", "Task outcomes written to the journal.",
            &m->journal_writes);
    counter(&b, "reporterd_journal_write_errors_total", "Journal writes that failed (the "
            "task was answered and acked anyway).", &m->journal_write_errors);
    worker_gauge(&b, "reporterd_worker_broker_connected",
                 "Worker connected to RabbitMQ and consuming.",
                 offsetof(struct rd_metrics_worker, broker_up));
    worker_gauge(&b, "reporterd_worker_db_connected", "Worker reached MongoDB.",
                 offsetof(struct rd_metrics_worker, db_up));
    worker_nodes(&b);
    process_metrics(&b);
    *len = b.len;
    return b.p;
}

static char *text(const char *s, size_t *len);

/* The master's problem for a text/plain body: a byte that is not part of
 * valid UTF-8 (a message cut in the middle of a character, or read while
 * the master rewrites it) or a control character becomes '?'. */
static void
problem_text(char *out, size_t size)
{
    const char *p = rd_metrics->problem, *end;
    size_t      n, o = 0;

    end = memchr(p, '\0', sizeof(rd_metrics->problem));
    if (end == NULL)
        end = p + sizeof(rd_metrics->problem);
    while (p < end && o + 4 < size) {
        n = rd_utf8_seq(p, end);
        if (n == 0 || (unsigned char) *p < 0x20 || *p == 0x7f) {
            out[o++] = '?';
            p++;
        } else {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
    }
    out[o] = '\0';
}

/* The workers, and how many reach the broker, the database, and both. */
struct readiness {
    int workers, broker, db, both;
};

static void
readiness(struct readiness *r)
{
    int i;

    memset(r, 0, sizeof(*r));
    for (i = 0; i < RD_METRICS_WORKERS; i++) {
        const struct rd_metrics_worker *w = &rd_metrics->workers[i];
        int b, d;

        if (__atomic_load_n(&w->pid, __ATOMIC_RELAXED) == 0)
            continue;
        b = __atomic_load_n(&w->broker_up, __ATOMIC_RELAXED);
        d = __atomic_load_n(&w->db_up, __ATOMIC_RELAXED);
        r->workers++;
        r->broker += b;
        r->db += d;
        r->both += b && d;
    }
}

/* /livez: the master runs (this process is its child) and this one
 * answers.  A database or broker outage is not a reason to restart. */
static char *
render_live(unsigned *code, size_t *len)
{
    char buf[160];

    if (getppid() == rd_master_pid) {
        *code = MHD_HTTP_OK;
        snprintf(buf, sizeof(buf), "ok: the master (pid %ld) and the status process run\n",
                 (long) rd_master_pid);
    } else {
        *code = MHD_HTTP_SERVICE_UNAVAILABLE;
        snprintf(buf, sizeof(buf), "unavailable: the master (pid %ld) is gone\n",
                 (long) rd_master_pid);
    }
    return text(buf, len);
}

/* /readyz: 200 when at least one worker can take a task; else 503 with
 * what is missing.  JSON. */
static char *
render_ready(unsigned *code, size_t *len)
{
    struct readiness r;
    char             problem[sizeof(rd_metrics->problem)], esc[2 * sizeof(problem)];
    char            *out = malloc(3 * sizeof(problem) + 512), missing[128];
    int              n, waiting;
    size_t           i, o = 0;

    if (out == NULL)
        return NULL;
    readiness(&r);
    *code = r.both > 0 ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    waiting = __atomic_load_n(&rd_metrics->problem_workers, __ATOMIC_RELAXED);
    problem[0] = '\0';
    if (waiting > 0)
        problem_text(problem, sizeof(problem));
    for (i = 0; problem[i] != '\0' && o + 2 < sizeof(esc); i++) {
        if (problem[i] == '"' || problem[i] == '\\')
            esc[o++] = '\\';
        esc[o++] = problem[i];
    }
    esc[o] = '\0';
    /* what no worker has: the workers themselves, the broker, the database;
     * when each is reached by some worker but none has both, "both" */
    missing[0] = '\0';
    if (r.both == 0) {
        if (r.workers == 0)
            strcat(missing, "\"workers\"");
        if (r.workers > 0 && r.broker == 0)
            strcat(missing, "\"broker\"");
        if (r.workers > 0 && r.db == 0)
            strcat(missing, missing[0] ? ", \"database\"" : "\"database\"");
        if (missing[0] == '\0')
            strcat(missing, "\"a worker with both the broker and the database\"");
    }
    n = snprintf(out, 3 * sizeof(problem) + 512,
                 "{\"ready\": %s, \"workers\": %d, \"workers_ready\": %d, "
                 "\"workers_with_broker\": %d, \"workers_with_database\": %d, "
                 "\"missing\": [%s]%s%s%s}\n",
                 r.both > 0 ? "true" : "false", r.workers, r.both, r.broker, r.db, missing,
                 waiting > 0 ? ", \"problem\": \"" : "", waiting > 0 ? esc : "",
                 waiting > 0 ? "\"" : "");
    if (n < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t) n;
    return out;
}

static char *
render_health(unsigned *code, size_t *len)
{
    struct readiness rd;
    int              n, more, waiting;
    char            *out = malloc(1024), problem[sizeof(rd_metrics->problem)];

    readiness(&rd);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    *code = rd.both > 0 ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    if (rd.both > 0)
        n = snprintf(out, 1024, "ok: %d of %d workers connected to the broker "
                     "and the database\n", rd.both, rd.workers);
    else
        n = snprintf(out, 1024, "unavailable: no worker is connected to both the "
                     "broker and the database (%d workers, %d with the broker, "
                     "%d with the database)\n", rd.workers, rd.broker, rd.db);
    waiting = __atomic_load_n(&rd_metrics->problem_workers, __ATOMIC_RELAXED);
    if (waiting > 0 && n > 0 && n < 1024) {
        problem_text(problem, sizeof(problem));
        more = snprintf(out + n, 1024 - n, "problem: %d process(es) cannot start: %s\n",
                        waiting, problem);
        n = more < 0 ? n : n + more;
    }
    if (n < 0) {
        free(out);
        return NULL;
    }
    *len = n >= 1024 ? 1023 : (size_t) n;
    return out;
}

/* A fixed body and its length. */
static char *
text(const char *s, size_t *len)
{
    char *out = strdup(s);

    *len = out != NULL ? strlen(out) : 0;
    return out;
}

/* MHD's own unescaping, except that %00 becomes a byte no UTF-8 text
 * holds (0xFF) instead of ending the string, so that /tasks/x%00y is not
 * taken for /tasks/x. */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
    size_t n = MHD_http_unescape(s), i;

    (void) cls; (void) c;
    for (i = 0; i < n; i++)
        if (s[i] == '\0')
            s[i] = (char) 0xff;
    return n;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **state)
{
    struct MHD_Response *r;
    enum MHD_Result      ret;
    unsigned             code = MHD_HTTP_OK;
    const char          *type = "text/plain; charset=utf-8";
    char                *body = NULL;
    size_t               len = 0;

    const struct rd_conf *conf = cls;

    (void) version; (void) upload; (void) upload_size; (void) state;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = text("only GET\n", &len);
    } else if (strcmp(url, "/metrics") == 0) {
        body = render_metrics(&len);
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(url, "/healthz") == 0) {
        body = render_health(&code, &len);
    } else if (strcmp(url, "/livez") == 0) {
        body = render_live(&code, &len);
    } else if (strcmp(url, "/readyz") == 0) {
        body = render_ready(&code, &len);
        type = "application/json";
    } else if (conf->status.tasks && strncmp(url, "/tasks/", 7) == 0) {
        /* on this connection's own thread: a slow database waits here */
        body = rd_status_tasks_get(url + 7, &code, &len);
        type = "application/json";
    } else {
        code = MHD_HTTP_NOT_FOUND;
        body = text("not found: try /metrics or /healthz (or /livez, /readyz)\n", &len);
    }
    /* Every body above is written whole and its length given: no buffer
     * goes out beyond what was written into it. */
    if (body == NULL)
        return MHD_NO;
    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* Bound and listening before the privileges go, so a port below 1024
 * works with `user:`. */
static int
listen_on(const struct sockaddr_storage *ss, char *err, size_t errlen)
{
    socklen_t len;
    int       fd, on = 1;

    len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket() failed: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (const struct sockaddr *) ss, len) != 0) {
        snprintf(err, errlen, "bind() failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "listen() failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
rd_status_main(const struct rd_conf *conf)
{
    struct sockaddr_storage ss;
    struct MHD_Daemon      *d;
    struct sigaction        sa;
    sigset_t                none;
    char                    err[256];
    struct rlimit           nofile;
    unsigned                limit = CONNECTIONS;
    int                     fd;

    rd_log_set_role("status");
    rd_log_set_level(conf->log_level);
    rd_proctitle_set("reporterd: status process %s", conf->status.listen);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    /* Blocked here and in the server's thread; taken only in sigsuspend. */
    sigemptyset(&none);
    sigaddset(&none, SIGTERM);
    sigaddset(&none, SIGINT);
    sigaddset(&none, SIGQUIT);
    sigaddset(&none, SIGUSR1);
    sigprocmask(SIG_BLOCK, &none, NULL);
    sigemptyset(&none);
    if (rd_conf_parse_listen(conf->status.listen, &ss, err, sizeof(err)) != 0) {
        rd_error("%s", err);
        rd_metrics_problem(err);
        return RD_WORKER_EXIT_FATAL;
    }
    fd = listen_on(&ss, err, sizeof(err));
    if (fd < 0) {
        rd_error("cannot serve status on %s: %s", conf->status.listen, err);
        return 1;
    }
    if (conf->user != NULL && rd_drop_privileges(conf->user, err, sizeof(err)) != 0) {
        rd_error("%s", err);
        rd_metrics_problem(err);
        return RD_WORKER_EXIT_FATAL;
    }
    /* After the drop, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != rd_master_pid)
        return 0;
    if (conf->status.tasks && rd_status_tasks_open(conf, err, sizeof(err)) != RD_OK) {
        rd_error("status.tasks: %s", err);
        rd_metrics_problem(err);
        return RD_WORKER_EXIT_FATAL;
    }
    /* With lookups on, a thread per connection: one waiting on the
     * database holds back no other request. */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY
        && nofile.rlim_cur < CONNECTIONS + 64)
        limit = nofile.rlim_cur > 96 ? (unsigned) nofile.rlim_cur - 64 : 32;
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL
                         | (conf->status.tasks ? MHD_USE_THREAD_PER_CONNECTION : 0),
                         0, NULL, NULL, handle, (void *) conf,
                         MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) IDLE_TIMEOUT_S,
                         MHD_OPTION_CONNECTION_LIMIT, limit,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, limit / 2,
                         MHD_OPTION_END);
    if (d == NULL) {
        rd_error("cannot serve status on %s: MHD_start_daemon() failed: %s",
                 conf->status.listen, strerror(errno));
        rd_status_tasks_close();
        return 1;
    }
    rd_info("serving /metrics and /healthz%s on %s (and the probes /livez, /readyz)",
            conf->status.tasks ? " and /tasks/<correlation_id>" : "", conf->status.listen);
    while (!s_stop) {
        sigsuspend(&none);
        if (s_reopen) {
            s_reopen = 0;
            rd_log_reopen();
        }
    }
    MHD_stop_daemon(d);
    rd_status_tasks_close();
    return 0;
}
