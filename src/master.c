/*
 * master.c -- the master's cycle.
 *
 * Signal handlers only set flags.  The signals stay blocked except inside
 * ppoll(), where the master sleeps between events while also watching
 * the workers' channels, so a flag is never missed and never raced.
 *
 * Children sit in a slot table, used up to a high-water mark (nginx's
 * ngx_last_process), each with the function it runs, its name and, for a
 * worker, its generation.  A reload loads the whole new configuration
 * first; only if all of it is valid does a new generation start, and
 * the old one is asked to stop (as QUIT) once every new worker has
 * reported that it consumes.  A worker of the current generation that
 * dies unasked is replaced as respawn.h says: throttled in a crash loop,
 * slowly after a fatal problem.
 *
 * Until a new generation is ready, the serving one keeps its own
 * configuration, and its workers that die are replaced like any others:
 * a reload that never gets ready does not drain the capacity.
 * The reason of a fatal exit is shown on /healthz until the child serves
 * again.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "charges.h"
#include "folder.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "notify.h"
#include "process.h"
#include "respawn.h"
#include "status.h"
#include "util.h"
#include "worker.h"

#define MAX_SLOTS          4096
_Static_assert(RD_METRICS_WORKERS >= MAX_SLOTS, "a metrics entry for every slot");
#define FAST_STOP_KILL_MS  1000
#define SPAWN_RETRY_MS     1000     /* after a failed fork() or socketpair() */

struct gen;

/* What a child runs after fork; returns its exit status.  chan is its end
 * of the channel to the master. */
typedef int (*child_proc)(const struct gen *g, int chan);

struct slot {
    pid_t       pid;            /* 0: free */
    child_proc  proc;
    const char *name;           /* "worker", "status process" */
    int         fd;             /* master's end of the channel, -1 when closed */
    int         generation;     /* 0 for the status process */
    int         index;          /* position within its generation */
    int         ready;          /* reported RD_CHAN_CONSUMING */
    int         worked;         /* reported RD_CHAN_WORKED: not a crash loop */
    int         exiting;        /* asked to stop */
    int64_t     started_ms;
    int64_t     kill_at_ms;     /* SIGKILL then, 0: never */
};

/* A generation's configuration and one respawn entry per worker. */
struct gen {
    int             number;     /* 0: none */
    struct rd_conf *conf;
    struct rd_respawn *respawn;
};

struct master {
    const char     *conf_path;
    int             pidfd;
    struct slot     slots[MAX_SLOTS];
    int             last;       /* slots[last..] are all free */
    struct gen      cur;        /* the newest generation */
    struct gen      old;        /* the serving one while cur is not ready */
    struct rd_respawn  status;     /* the status process */
    struct rd_respawn  folder;     /* the rollup folder (report.mode: rollup) */
    int             serving;    /* the generation taking tasks */
    int             stopping;   /* 0, or SIGQUIT / SIGTERM */
};

static volatile sig_atomic_t m_child, m_terminate, m_quit, m_reload, m_reopen;

static void
on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD: m_child = 1; break;
    case SIGTERM:
    case SIGINT:  m_terminate = 1; break;
    case SIGQUIT: m_quit = 1; break;
    case SIGHUP:  m_reload = 1; break;
    case SIGUSR1: m_reopen = 1; break;
    }
}

static void
setup_signals(sigset_t *waitmask)
{
    static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 };
    struct sigaction sa;
    sigset_t         block;
    size_t           i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&block, sigs[i]);
    }
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigprocmask(SIG_BLOCK, &block, waitmask);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigdelset(waitmask, sigs[i]);
}

static int
worker_process(const struct gen *g, int chan)
{
    return rd_worker_main(g->conf, chan, g->number);
}

static int
status_process(const struct gen *g, int chan)
{
    close(chan);
    return rd_status_main(g->conf);
}

static int
folder_process(const struct gen *g, int chan)
{
    return rd_folder_main(g->conf, chan);
}

static int
is_worker(const struct slot *s)
{
    return s->pid != 0 && s->proc == worker_process;
}

static int
is_status(const struct slot *s)
{
    return s->pid != 0 && s->proc == status_process;
}

static int
is_folder(const struct slot *s)
{
    return s->pid != 0 && s->proc == folder_process;
}

/* The processes one per master, apart from the generations of workers. */
static struct rd_respawn *
single_respawn(struct master *m, const struct slot *s)
{
    return is_status(s) ? &m->status : is_folder(s) ? &m->folder : NULL;
}

/* Children still running, of every kind. */
static int
live_processes(const struct master *m)
{
    int i, n = 0;

    for (i = 0; i < m->last; i++)
        if (m->slots[i].pid != 0)
            n++;
    return n;
}

static int
live_workers(const struct master *m)
{
    int i, n = 0;

    for (i = 0; i < m->last; i++)
        if (is_worker(&m->slots[i]))
            n++;
    return n;
}

/* Free a slot, and lower the high-water mark past the free ones. */
static void
slot_free(struct master *m, struct slot *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    while (m->last > 0 && m->slots[m->last - 1].pid == 0)
        m->last--;
}

static void
gen_free(struct gen *g)
{
    free(g->respawn);
    rd_conf_free(g->conf);
    memset(g, 0, sizeof(*g));
}

static struct gen *
gen_of(struct master *m, int generation)
{
    return m->old.number != 0 && generation == m->old.number ? &m->old : &m->cur;
}

/* Fork a child running proc with generation g's configuration; r is the
 * respawn entry it stands for (ngx_spawn_process()'s shape). */
static void
spawn(struct master *m, child_proc proc, const char *name, struct gen *g, int index,
      struct rd_respawn *r)
{
    struct slot *s;
    int          fds[2], i, slot;
    pid_t        pid;

    for (slot = 0; slot < m->last && m->slots[slot].pid != 0; slot++)
        ;
    if (slot == MAX_SLOTS) {
        rd_alert("no free slot while spawning \"%s\"", name);
        r->at_ms = rd_now_ms() + SPAWN_RETRY_MS;
        return;
    }
    s = &m->slots[slot];
    if (rd_channel_open(fds) != 0) {
        rd_error("socketpair() failed while spawning \"%s\": %s", name, strerror(errno));
        r->at_ms = rd_now_ms() + SPAWN_RETRY_MS;
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        rd_error("fork() failed while spawning \"%s\": %s", name, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        r->at_ms = rd_now_ms() + SPAWN_RETRY_MS;
        return;
    }
    if (pid == 0) {
        /* The child keeps nothing of the master's but its config. */
        for (i = 0; i < m->last; i++)
            if (m->slots[i].pid != 0 && m->slots[i].fd >= 0)
                close(m->slots[i].fd);
        close(fds[0]);
        if (m->pidfd >= 0)
            close(m->pidfd);
        if (rd_metrics != NULL) {
            rd_metrics_self = &rd_metrics->workers[slot];
            rd_metrics_self->number = index;        /* the parent writes it too */
            rd_metrics_self->node[0] = '\0';
        }
        exit(proc(g, fds[1]));
    }
    close(fds[1]);
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->proc = proc;
    s->name = name;
    s->fd = fds[0];
    s->generation = proc == worker_process ? g->number : 0;
    s->index = index;
    s->started_ms = rd_now_ms();
    if (slot == m->last)
        m->last++;
    r->at_ms = 0;
    if (proc == status_process) {
        rd_info("spawned %s %ld (%s)", name, (long) pid, g->conf->status.listen);
        return;
    }
    if (proc == folder_process) {
        if (rd_metrics != NULL)
            __atomic_store_n(&rd_metrics->folder.spawned, 1, __ATOMIC_RELAXED);
        rd_info("spawned %s %ld", name, (long) pid);
        return;
    }
    if (rd_metrics != NULL) {
        rd_metrics->workers[slot].generation = g->number;
        rd_metrics->workers[slot].number = index;
        __atomic_store_n(&rd_metrics->workers[slot].pid, pid, __ATOMIC_RELAXED);
    }
    rd_info("spawned %s %ld (generation %d, #%d)", name, (long) pid, g->number, index);
}

/* Generation `number` of conf, which g owns from here on (freed on
 * failure); -1 when out of memory. */
static int
gen_init(struct gen *g, struct rd_conf *conf, int number)
{
    memset(g, 0, sizeof(*g));
    g->respawn = calloc(conf->worker_processes, sizeof(*g->respawn));
    if (g->respawn == NULL) {
        rd_conf_free(conf);
        return -1;
    }
    g->conf = conf;
    g->number = number;
    return 0;
}

/* Start every worker of the newest generation.  A worker that cannot be
 * forked now is retried by its respawn entry's timer. */
static void
spawn_generation(struct master *m)
{
    int i;

    for (i = 0; i < m->cur.conf->worker_processes; i++)
        spawn(m, worker_process, "worker", &m->cur, i, &m->cur.respawn[i]);
}

static void
signal_slot(struct slot *s, int sig, int64_t kill_after_ms)
{
    int64_t kill_at = rd_now_ms() + kill_after_ms;

    if (kill(s->pid, sig) != 0 && errno != ESRCH)
        rd_error("kill(%ld, %d) failed: %s", (long) s->pid, sig, strerror(errno));
    s->exiting = 1;
    if (s->kill_at_ms == 0 || kill_at < s->kill_at_ms)
        s->kill_at_ms = kill_at;
}

/* Stop every worker matching (generation == 0: all; else older than it). */
static void
stop_workers(struct master *m, int sig, int older_than)
{
    int64_t grace = sig == SIGQUIT ? m->cur.conf->worker_shutdown_timeout_ms : FAST_STOP_KILL_MS;
    int     i;

    for (i = 0; i < m->last; i++) {
        struct slot *s = &m->slots[i];

        if (s->pid == 0
            || (older_than != 0 && (!is_worker(s) || s->generation >= older_than)))
            continue;
        if (s->exiting && sig == SIGQUIT)
            continue;
        signal_slot(s, sig, grace);
    }
}

/* /healthz names the problem that keeps workers from starting. */
static void
publish_problem(struct master *m)
{
    struct rd_respawn *r = NULL;
    int             i, n = 0;

    if (rd_metrics == NULL)
        return;
    for (i = 0; i < m->cur.conf->worker_processes; i++)
        if (m->cur.respawn[i].fatal_ms != 0 && n++ == 0)
            r = &m->cur.respawn[i];
    if (m->status.fatal_ms != 0 && n++ == 0)
        r = &m->status;
    if (m->folder.fatal_ms != 0 && n++ == 0)
        r = &m->folder;
    if (r != NULL)
        snprintf(rd_metrics->problem, sizeof(rd_metrics->problem), "%s (next attempt in "
                 "at most %lld s)", r->problem, (long long) r->fatal_ms / 1000);
    __atomic_store_n(&rd_metrics->problem_workers, n, __ATOMIC_RELAXED);
}

static void
reap(struct master *m)
{
    int      status, i, fatal;
    pid_t    pid;
    int64_t  now = rd_now_ms(), lived;
    char     how[64], problem[256];

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct slot *s = NULL;

        for (i = 0; i < m->last && s == NULL; i++)
            if (m->slots[i].pid == pid)
                s = &m->slots[i];
        if (WIFSIGNALED(status))
            snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
        else
            snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
        if (s == NULL) {
            rd_info("process %ld %s", (long) pid, how);
            continue;
        }
        if (s->fd >= 0)
            close(s->fd);
        lived = now - s->started_ms;
        fatal = WIFEXITED(status) && WEXITSTATUS(status) == RD_WORKER_EXIT_FATAL;
        problem[0] = '\0';
        if (rd_metrics != NULL) {
            struct rd_metrics_worker *w = &rd_metrics->workers[s - m->slots];

            snprintf(problem, sizeof(problem), "%s", w->problem);
            memset(w, 0, sizeof(*w));
        }
        if (single_respawn(m, s) != NULL) {
            rd_info("%s %ld %s", s->name, (long) pid, how);
            if (is_folder(s) && rd_metrics != NULL) {
                /* Only if it is still this folder's: after a reload the
                 * new folder has put its own pid there already. */
                pid_t was = pid;

                __atomic_compare_exchange_n(&rd_metrics->folder.pid, &was, 0, 0,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            }
            if (!s->exiting && !m->stopping)
                rd_respawn_schedule(single_respawn(m, s), s->name, pid, how, lived, s->worked,
                         fatal ? problem : NULL, now);
        } else if (s->exiting || m->stopping
                   || (s->generation != m->cur.number && s->generation != m->old.number)) {
            rd_info("%s %ld %s", s->name, (long) pid, how);
        } else {
            rd_respawn_schedule(&gen_of(m, s->generation)->respawn[s->index], s->name, pid, how, lived,
                     s->worked, fatal ? problem : NULL, now);
            if (rd_metrics != NULL)
                rd_metrics_add(&rd_metrics->worker_restarts, 1);
        }
        publish_problem(m);
        slot_free(m, s);
    }
}

static void
read_channels(struct master *m, struct pollfd *pfd, int n)
{
    int i, j, msg;

    for (i = 0; i < n; i++) {
        struct slot *s = NULL;

        if (pfd[i].revents == 0)
            continue;
        for (j = 0; j < m->last && s == NULL; j++)
            if (m->slots[j].pid != 0 && m->slots[j].fd == pfd[i].fd)
                s = &m->slots[j];
        if (s == NULL)
            continue;
        while ((msg = rd_channel_recv(s->fd)) > 0) {
            if (msg == RD_CHAN_CONSUMING && !s->ready) {
                struct rd_respawn *r = &gen_of(m, s->generation)->respawn[s->index];

                s->ready = 1;
                rd_debug("worker %ld is consuming", (long) s->pid);
                if (s->generation == gen_of(m, s->generation)->number
                    && rd_respawn_recovered(r)) {
                    rd_info("worker %ld is consuming again: the problem is gone", (long) s->pid);
                    publish_problem(m);
                }
            } else if (msg == RD_CHAN_BROKER_DOWN || msg == RD_CHAN_STORE_DOWN) {
                s->ready = 0;
            } else if (msg == RD_CHAN_WORKED) {
                s->worked = 1;
            }
        }
        if (msg < 0) {           /* the worker is exiting: reap will follow */
            close(s->fd);
            s->fd = -1;
        }
    }
}

/* Once every worker of the newest generation consumes, retire the rest. */
static void
check_generation(struct master *m)
{
    int i, ready = 0;

    if (m->serving == m->cur.number)
        return;
    for (i = 0; i < m->last; i++)
        if (is_worker(&m->slots[i]) && m->slots[i].generation == m->cur.number
            && m->slots[i].ready)
            ready++;
    if (ready < m->cur.conf->worker_processes)
        return;
    rd_info("generation %d: all %d workers consuming; stopping older generations gracefully",
            m->cur.number, ready);
    rd_notify_ready("serving the new generation");
    stop_workers(m, SIGQUIT, m->cur.number);
    m->serving = m->cur.number;
    gen_free(&m->old);
}

static void
reload(struct master *m)
{
    struct rd_conf *conf;
    const char     *key;
    struct gen      next;
    char            err[1024];
    int             i;

    rd_info("reloading configuration from %s", m->conf_path);
    rd_notify_reloading();
    conf = rd_conf_load(m->conf_path, err, sizeof(err));
    if (conf == NULL) {
        rd_error("reload failed, keeping the running configuration: %s", err);
        rd_notify_ready("reload failed; running the previous configuration");
        RD_METRIC(reload_failures);
        return;
    }
    /* All that can fail comes before the first change to what runs. */
    if (gen_init(&next, conf, m->cur.number + 1) != 0) {
        rd_error("reload failed, keeping the running configuration: out of memory");
        rd_notify_ready("reload failed; running the previous configuration");
        RD_METRIC(reload_failures);
        return;
    }
    for (key = rd_conf_reload_change(m->cur.conf, conf, NULL); key != NULL;
         key = rd_conf_reload_change(m->cur.conf, conf, key))
        rd_warn("a new %s takes effect only after a restart", key);
    if (strcmp(conf->error_log, m->cur.conf->error_log) != 0
        || conf->log_level != m->cur.conf->log_level) {
        if (rd_log_open(conf->error_log, conf->log_level, err, sizeof(err)) != 0) {
            rd_error("reload failed, keeping the running configuration: %s", err);
            rd_notify_ready("reload failed; running the previous configuration");
            RD_METRIC(reload_failures);
            gen_free(&next);
            return;
        }
    }
    if (conf->world_readable_secret)
        rd_warn("%s holds a password and is readable by other users", m->conf_path);
    /* Generations started by earlier reloads that never got ready. */
    for (i = 0; i < m->last; i++)
        if (is_worker(&m->slots[i]) && m->slots[i].generation > m->serving
            && !m->slots[i].exiting)
            signal_slot(&m->slots[i], SIGQUIT, m->cur.conf->worker_shutdown_timeout_ms);
    if ((conf->status.listen == NULL) != (m->cur.conf->status.listen == NULL)
        || (conf->status.listen != NULL
            && strcmp(conf->status.listen, m->cur.conf->status.listen) != 0))
        for (i = 0; i < m->last; i++)
            if (is_status(&m->slots[i]))
                signal_slot(&m->slots[i], SIGTERM, FAST_STOP_KILL_MS);
    memset(&m->status, 0, sizeof(m->status));
    /* The folder starts again with the new configuration; the old one
     * finishes its step and gives the lease up. */
    for (i = 0; i < m->last; i++)
        if (is_folder(&m->slots[i]) && !m->slots[i].exiting)
            signal_slot(&m->slots[i], SIGQUIT, m->cur.conf->worker_shutdown_timeout_ms);
    memset(&m->folder, 0, sizeof(m->folder));
    /* The serving generation keeps its configuration until the new one
     * is ready; one that never got ready is dropped. */
    if (m->serving == m->cur.number)
        m->old = m->cur;
    else
        gen_free(&m->cur);
    m->cur = next;
    if (rd_metrics != NULL)
        rd_metrics_add(&rd_metrics->reloads, 1);
    rd_info("starting generation %d with %d workers", m->cur.number, conf->worker_processes);
    spawn_generation(m);
    publish_problem(m);
    rd_notify_ready("reloaded; the new generation is starting");
}

static void
respawn_due(struct master *m, struct gen *g, int64_t now)
{
    int i;

    for (i = 0; g->number != 0 && i < g->conf->worker_processes; i++)
        if (g->respawn[i].at_ms != 0 && now >= g->respawn[i].at_ms)
            spawn(m, worker_process, "worker", g, i, &g->respawn[i]);
}

static int64_t
gen_next(const struct gen *g, int64_t next)
{
    int i;

    for (i = 0; g->number != 0 && i < g->conf->worker_processes; i++)
        if (g->respawn[i].at_ms != 0 && g->respawn[i].at_ms < next)
            next = g->respawn[i].at_ms;
    return next;
}

/* A process of that kind runs (and, unless exiting counts, is not on
 * its way out: an old folder finishing its step is no reason to wait). */
static int
running(const struct master *m, int (*is)(const struct slot *), int exiting)
{
    int i;

    for (i = 0; i < m->last; i++)
        if (is(&m->slots[i]) && (exiting || !m->slots[i].exiting))
            return 1;
    return 0;
}

static void
run_timers(struct master *m, int64_t now)
{
    int i;

    for (i = 0; i < m->last; i++) {
        struct slot *s = &m->slots[i];

        if (s->pid != 0 && s->kill_at_ms != 0 && now >= s->kill_at_ms) {
            rd_warn("%s %ld did not exit in time; sending SIGKILL", s->name, (long) s->pid);
            kill(s->pid, SIGKILL);
            s->kill_at_ms = 0;
        }
    }
    if (m->stopping)
        return;
    respawn_due(m, &m->cur, now);
    respawn_due(m, &m->old, now);
    /* One status process whenever status.listen is set (once the old one
     * let the address go), one folder in rollup mode. */
    if (m->cur.conf->status.listen != NULL && now >= m->status.at_ms
        && !running(m, is_status, 1))
        spawn(m, status_process, "status process", &m->cur, 0, &m->status);
    if (m->cur.conf->report.mode == RD_REPORT_ROLLUP && now >= m->folder.at_ms
        && !running(m, is_folder, 0))
        spawn(m, folder_process, "rollup folder", &m->cur, 0, &m->folder);
}

static int64_t
next_timer(struct master *m, int64_t now)
{
    int64_t next = now + 1000;
    int     i;

    for (i = 0; i < m->last; i++)
        if (m->slots[i].pid != 0 && m->slots[i].kill_at_ms != 0 && m->slots[i].kill_at_ms < next)
            next = m->slots[i].kill_at_ms;
    if (!m->stopping) {
        next = gen_next(&m->old, gen_next(&m->cur, next));
        if (m->status.at_ms != 0 && m->status.at_ms < next)
            next = m->status.at_ms;
        if (m->folder.at_ms != 0 && m->folder.at_ms < next)
            next = m->folder.at_ms;
    }
    return next > now ? next - now : 0;
}

int
rd_master_run(struct rd_conf *conf, const char *conf_path, int pidfd)
{
    static struct master m;
    struct pollfd        pfd[MAX_SLOTS];
    struct timespec      ts;
    sigset_t             waitmask;
    int64_t              wait_ms;
    int                  i, n;

    memset(&m, 0, sizeof(m));
    for (i = 0; i < MAX_SLOTS; i++)
        m.slots[i].fd = -1;
    m.conf_path = conf_path;
    m.pidfd = pidfd;
    m.serving = 1;
    rd_master_pid = getpid();
    setup_signals(&waitmask);
    if (rd_metrics_init() != 0)
        rd_warn("mmap() failed: no shared metrics: %s", strerror(errno));
    if (rd_charges_init() != 0)
        rd_warn("mmap() failed: crashes cannot be counted: %s", strerror(errno));
    rd_info("master started: %d workers, config %s", conf->worker_processes, conf_path);
    if (gen_init(&m.cur, conf, 1) != 0) {
        rd_alert("out of memory");
        return 1;
    }
    spawn_generation(&m);
    rd_notify_ready("started");

    for (;;) {
        n = 0;
        for (i = 0; i < m.last; i++)
            if (m.slots[i].pid != 0 && m.slots[i].fd >= 0) {
                pfd[n].fd = m.slots[i].fd;
                pfd[n].events = POLLIN;
                pfd[n].revents = 0;
                n++;
            }
        wait_ms = next_timer(&m, rd_now_ms());
        ts.tv_sec = wait_ms / 1000;
        ts.tv_nsec = (wait_ms % 1000) * 1000000;
        if (ppoll(pfd, n, &ts, &waitmask) < 0 && errno != EINTR)
            rd_error("ppoll() failed: %s", strerror(errno));

        if (m_child) {
            m_child = 0;
            reap(&m);
        }
        if (m_terminate) {
            m_terminate = 0;
            if (m.stopping != SIGTERM)
                rd_info("fast stop requested%s", m.stopping ? " during a graceful stop" : "");
            m.stopping = SIGTERM;
            rd_notify_stopping();
            stop_workers(&m, SIGTERM, 0);
        }
        if (m_quit) {
            m_quit = 0;
            if (!m.stopping) {
                rd_info("graceful stop requested");
                m.stopping = SIGQUIT;
                rd_notify_stopping();
                stop_workers(&m, SIGQUIT, 0);
            }
        }
        if (m_reload) {
            m_reload = 0;
            if (!m.stopping)
                reload(&m);
        }
        if (m_reopen) {
            m_reopen = 0;
            if (rd_log_reopen() == 0)
                rd_chown_to_user(m.cur.conf->error_log, m.cur.conf->user);
            for (i = 0; i < m.last; i++)
                if (m.slots[i].pid != 0)
                    kill(m.slots[i].pid, SIGUSR1);
        }
        read_channels(&m, pfd, n);
        check_generation(&m);
        run_timers(&m, rd_now_ms());
        if (rd_metrics != NULL)
            __atomic_store_n(&rd_metrics->live_workers, live_workers(&m), __ATOMIC_RELAXED);
        if (m.stopping && live_processes(&m) == 0)
            break;
    }
    rd_info("all workers gone; master exiting");
    rd_notify_stopping();
    gen_free(&m.old);
    gen_free(&m.cur);
    return 0;
}
