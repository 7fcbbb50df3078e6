/*
 * metrics.h -- counters shared by the master, the workers and the status
 * process: one anonymous shared mapping made by the master before it
 * forks anything.  Writers use atomic adds and stores; the status process
 * only reads.
 */
#ifndef RD_METRICS_H
#define RD_METRICS_H

#include <stdint.h>
#include <sys/types.h>


enum rd_outcome {
    RD_OUT_COMPLETE = 0,        /* a Complete result was confirmed */
    RD_OUT_ERROR,               /* an Error result was confirmed */
    RD_OUT_REQUEUED,            /* returned to the queue (database away, redelivery count) */
    RD_OUT_DEAD_LETTERED,       /* rejected to the dead-letter queue */
    RD_OUT_MAX
};

#define RD_METRICS_BUCKETS 12   /* plus +Inf */
#define RD_METRICS_WORKERS 4096 /* indexed like the master's slot table */

struct rd_histogram {
    uint64_t buckets[RD_METRICS_BUCKETS + 1];
    uint64_t count;
    uint64_t sum_us;
};

struct rd_metrics_worker {
    pid_t    pid;               /* 0: free */
    int      generation;
    int      number;            /* its place in the generation, 0..worker_processes-1 */
    char     node[272];         /* the broker node it uses, "host:port" ("" none) */
    int      broker_up;
    int      db_up;
    char     problem[256];      /* why it exits with RD_WORKER_EXIT_FATAL */
};

/* Written by the rollup folder (folder.c); pid cleared by the master. */
struct rd_metrics_folder {
    pid_t    pid;               /* 0: no folder */
    int      spawned;           /* 1: the master has spawned one (set once) */
    int      lease;             /* 1: it holds the folders' lease */
    int64_t  unfolded;          /* records not folded yet */
    int64_t  behind_s;          /* age of the oldest of them */
    uint64_t batches;           /* batches folded */
    uint64_t records;           /* records folded */
    uint64_t invalid;           /* folded records left out of the figures */
    uint64_t bad_phone;         /* folded records whose phone is not an integer */
    uint64_t new_epochs;        /* epochs it saw begin: batches lost or restored */
    uint64_t overflowed;        /* batches that met a phone past 64 bits */
    uint64_t verified_phones;   /* phones the verification recounted */
    uint64_t verified_records;  /* records it read doing so */
    uint64_t drift;             /* rollups it found wrong and rewrote */
    uint64_t verify_cycles;     /* cycles over every phone it finished */
    int64_t  verify_cycle_ms;   /* the length of the last one */
    int      refused;           /* 1: rollup mode refused (a TTL index) */
    int      following;         /* 1: the records' change stream is open */
    uint64_t change_events;     /* deletes, updates, replaces it read */
    uint64_t change_corrected;  /* rollups they made differ, rewritten */
    uint64_t change_unknown;    /* events without a pre-image */
    uint64_t change_lost;       /* saved tokens that could not be resumed from */
    int64_t  change_lag_ms;     /* now - the wallTime of the last event read */
};

struct rd_metrics {
    uint64_t                 tasks[RD_OUT_MAX];
    struct rd_histogram      task_seconds;
    struct rd_histogram      db_seconds;
    uint64_t                 worker_restarts;
    uint64_t                 reloads;
    uint64_t                 invalid_records;   /* left out of reports' figures */
    uint64_t                 journal_writes;        /* journal.h upserts done */
    uint64_t                 journal_write_errors;  /* and failed */
    uint64_t                 broker_reconnects;     /* connections a worker made again */
    uint64_t                 db_errors;             /* report queries that failed */
    uint64_t                 confirm_timeouts;      /* publishes without a confirm in time */
    uint64_t                 reload_failures;       /* reloads that kept the old configuration */
    int                      live_workers;
    /* Written by the master only: a problem outside the configuration
     * file that keeps workers from starting ("" when none), and how many
     * worker places wait on it. */
    char                     problem[512];
    int                      problem_workers;
    struct rd_metrics_folder folder;
    struct rd_metrics_worker workers[RD_METRICS_WORKERS];
};

extern const double rd_metrics_bounds[RD_METRICS_BUCKETS];

/* The mapping, made once by the master (NULL when unavailable: every
 * recording function then does nothing). */
extern struct rd_metrics *rd_metrics;
int  rd_metrics_init(void);

/* This process's worker entry (set in the worker after fork). */
extern struct rd_metrics_worker *rd_metrics_self;

void rd_metrics_task(enum rd_outcome outcome, double seconds);
void rd_metrics_db(double seconds);
void rd_metrics_invalid(uint64_t records);
void rd_metrics_journal(int ok);
void rd_metrics_state(int broker_up, int db_up);
/* The broker node this worker is connected to ("host:port"). */
void rd_metrics_node(const char *node);
void rd_metrics_add(uint64_t *counter, uint64_t n);
/* One more of a counter of the mapping: RD_METRIC(db_errors). */
#define RD_METRIC(field) \
    do { if (rd_metrics != NULL) rd_metrics_add(&rd_metrics->field, 1); } while (0)

/* In a worker about to exit with RD_WORKER_EXIT_FATAL: say why, for the
 * master's log and /healthz. */
void rd_metrics_problem(const char *why);

#endif
