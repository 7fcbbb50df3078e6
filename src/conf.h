/*
 * conf.h -- reporterd.yaml as a typed, validated object.
 *
 * rd_conf_load() reads one YAML file with libyaml's document API, expands
 * ${VAR} and ${VAR:-default} in scalars, checks every key against a
 * declarative option table (type, range, default) and returns a complete
 * object or nothing: a reload either gets a whole new configuration or
 * keeps the old one.  Errors name the file, line, column and key:
 *
 *     /etc/reporterd/reporterd.yaml:7:9: rabbitmq.port: 70000 is out of range (1..65535)
 *
 * The loader never logs; it returns the message to the caller.
 */
#ifndef RD_CONF_H
#define RD_CONF_H

#include <stddef.h>
#include <stdio.h>

#include "log.h"             /* enum rd_log_level */

enum rd_queue_type {
    RD_QUEUE_CLASSIC = 0,
    RD_QUEUE_QUORUM
};

struct rd_conf_amqp {
    char   *host;               /* "127.0.0.1" */
    int     port;               /* 5672 (5671 when tls is on and port unset) */
    char   *user;               /* "guest" */
    char   *password;           /* "guest", or read from password_file */
    char   *password_file;      /* NULL unless set */
    char   *vhost;              /* "/" */
    char   *task_queue;         /* "reports.tasks" */
    char   *result_queue;       /* "reports.results" */
    char   *dead_letter_queue;  /* default "<task_queue>.dead" */
    int     queue_type;         /* enum rd_queue_type, "classic" */
    int     prefetch;           /* 1 (1..65535) */
    int     heartbeat;          /* seconds, 30s (0 = off, 0..3600) */
    int     max_redeliveries;   /* 5 (0..1000) */
    int     connect_timeout_ms; /* ms, 5000 (a duration: 5s) */
    int     confirm_timeout_ms; /* ms, 5000 */
    int     tls;                /* off */
    char   *tls_ca_file;        /* NULL; required when tls is on */
    char   *tls_cert_file;      /* NULL */
    char   *tls_key_file;       /* NULL */
    int     tls_verify;         /* on */
};

/* At most this many entries in rabbitmq.host. */
#define RD_CONF_AMQP_NODES  64

/*
 * rabbitmq.host as the list of broker nodes it may name: "h", "h:port",
 * "[v6]" or "[v6]:port", separated by commas (a YAML sequence is joined so
 * at load).  An entry without a port takes rabbitmq.port.  Returns the
 * number of entries, and with 0 <= i < that number the i-th one's host
 * (NUL-terminated) and port; -1 with err when the list is malformed
 * (rd_conf_load() has refused such a list already).
 */
int rd_conf_amqp_node(const struct rd_conf_amqp *a, int i, char *host, size_t hostlen,
                      int *port, char *err, size_t errlen);

/* socketTimeoutMS is mongodb.max_time_ms plus this, unless the uri sets it:
 * room for the reply to travel once the server's own limit fired. */
#define RD_CONF_SOCKET_SLACK_MS  5000

/*
 * The libmongoc options that bound how long one call can block, as the
 * worker's client runs them: the uri's own values when it sets them, else
 * ours.  Derived at load (conf_check.c); rd_store_open() hands every one
 * to the driver and rd_conf_budget() adds them up, so the two cannot
 * disagree.
 */
struct rd_conf_mongo_limits {
    int     connect_timeout_ms;          /* connectTimeoutMS:
                                            mongodb.connect_timeout_ms */
    int     server_selection_timeout_ms; /* serverSelectionTimeoutMS: the same */
    int     server_selection_try_once;   /* serverSelectionTryOnce: true */
    int     socket_timeout_ms;           /* socketTimeoutMS: max_time_ms +
                                            RD_CONF_SOCKET_SLACK_MS */
    int     retry_reads;                 /* retryReads: false; the worker
                                            retries by requeueing the task */
    const char *read_preference;         /* readPreference as the uri
                                            spells it: "primary" unless it
                                            says otherwise */
};

struct rd_conf_mongo {
    char   *uri;                /* effective URI (built from host/port/... if
                                   uri was not given) */
    char   *host;               /* NULL unless given */
    int     port;               /* 0 unless given */
    char   *user;               /* NULL unless given */
    char   *password;           /* NULL unless given or password_file */
    char   *password_file;      /* NULL unless set */
    char   *auth_source;        /* NULL unless given */
    char   *database;           /* "calls" */
    char   *collection;         /* "calls" */
    int     max_time_ms;        /* ms, 20000 (1..3600000; a duration) */
    int     connect_timeout_ms; /* ms, 5000 (1..3600000), folded like host */
    struct rd_conf_mongo_limits limits;  /* derived */
};

struct rd_conf_task {
    int     max_phones;         /* 100 (1..100000) */
    int     max_message_size;   /* 1048576 bytes (64..67108864) */
    int     max_depth;          /* 16 JSON nesting levels (2..1000) */
};

enum rd_report_mode {
    RD_REPORT_LIVE = 0,         /* every report aggregates the records */
    RD_REPORT_ROLLUP            /* rollups plus the tail (rollup.h) */
};

struct rd_conf_report {
    int64_t price_e4;           /* report.price_per_second in ten-thousandths:
                                   100000 (0..10^10; at most 4 decimals) */
    int     mode;               /* enum rd_report_mode, "live" */
};

struct rd_conf_rollup {
    char   *collection;         /* "<mongodb.collection>_rollup" */
    int     batch;              /* records per batch, 10000 (1..100000) */
    int     interval_ms;        /* idle folder's pause, 1s */
    int     lease_ms;           /* the folders' lease, 30s */
    int     verify_rate;        /* records per second the folder recounts to
                                   follow deletes and corrections, 10000
                                   (0..10^8; 0: off) */
};

struct rd_conf_status {
    char   *listen;             /* NULL = off; "127.0.0.1:9187" */
    int     tasks;              /* off: GET /tasks/<id> (journal.h) */
};

struct rd_conf_journal {
    int     enabled;            /* off */
    char   *collection;         /* "reports_journal", in mongodb.database */
    int     retention;          /* seconds, 7d: the TTL index */
};

/* One journal write (journal.h) blocks a worker at most: finding a server
 * (connectTimeoutMS, then one rescan), then the upsert's socket limit,
 * which covers its maxTimeMS.  Fixed and short: the result is out before
 * it starts, and the task is acked whatever it did. */
#define RD_JOURNAL_CONNECT_MS   1000
#define RD_JOURNAL_MAX_TIME_MS  1000
#define RD_JOURNAL_SOCKET_MS    (RD_JOURNAL_MAX_TIME_MS + 1000)

struct rd_conf {
    char   *path;               /* the file it was read from */
    int     daemon;             /* off */
    int     worker_processes;   /* 2; "auto" resolves to the CPU count */
    int     worker_processes_auto;  /* 1 when "auto" was written */
    char   *pid;                /* RD_DEFAULT_PID */
    char   *error_log;          /* "stderr" or a path */
    int     log_level;          /* enum rd_log_level, info */
    char   *user;               /* NULL = do not switch user */
    int     worker_shutdown_timeout_ms; /* 30000 */

    struct rd_conf_amqp   rabbitmq;
    struct rd_conf_mongo  mongodb;
    struct rd_conf_task   task;
    struct rd_conf_report report;
    struct rd_conf_rollup rollup;
    struct rd_conf_status status;
    struct rd_conf_journal journal;

    int     world_readable_secret; /* set when the file is readable by
                                      others and holds a password */
};

/*
 * The longest one task can keep a worker inside blocking calls, part by
 * part, in ms.  rabbitmq-c services AMQP heartbeats only between calls,
 * so the total must stay below twice rabbitmq.heartbeat or the broker
 * drops the connection; every load checks it (reporterd -t too).
 */
struct rd_conf_budget {
    long long   select_ms;      /* finding a server: one scan, bounded by
                                   connectTimeoutMS, after at most 500 ms
                                   (or serverSelectionTimeoutMS without
                                   serverSelectionTryOnce); twice with
                                   retryReads */
    long long   query_ms;       /* the aggregation: socketTimeoutMS, which
                                   covers max_time_ms; twice with retryReads.
                                   Rollup mode reads the rollups first, a
                                   find given half of max_time_ms (the
                                   tail is not started once that is
                                   spent): plus max_time_ms / 2 */
    long long   publish_ms;     /* the result's publish and its confirm */
    long long   dead_letter_ms; /* a dead-letter publish and its confirm */
    long long   journal_ms;     /* the journal's upsert, when journal.enabled */
    long long   total_ms;
    long long   limit_ms;       /* twice the heartbeat; 0: heartbeats off,
                                   no limit */
};

void rd_conf_budget(const struct rd_conf *conf, struct rd_conf_budget *b);

/* What a valid configuration will do that its writer may not expect, one
 * line for `reporterd -t` (no "reporterd:" prefix): 1 with the line in
 * out, 0 when there is nothing to say.  Today: a readPreference other than
 * primary in rollup mode, which keeps its rollups, marks and tail on the
 * primary. */
int rd_conf_notice(const struct rd_conf *conf, char *out, size_t size);

/* Load and validate; on failure return NULL and put one line in err. */
struct rd_conf *rd_conf_load(const char *path, char *err, size_t errlen);

void rd_conf_free(struct rd_conf *conf);

/*
 * The keys a reload cannot change (the pid file, daemon) whose values
 * differ between the running and the new configuration, one at a time:
 * pass NULL for the first, then the key last returned.  NULL when no
 * more differ.
 */
const char *rd_conf_reload_change(const struct rd_conf *old,
    const struct rd_conf *new, const char *after);

/* Print the effective configuration as YAML, passwords masked ("********"). */
void rd_conf_dump(const struct rd_conf *conf, FILE *out);

/* Read a password_file: at most 64 KiB, no NUL byte, one trailing newline
 * dropped.  malloc'ed, or NULL with err.  Workers call it on every
 * connect, so a rotated password needs no reload. */
char *rd_conf_read_secret(const char *path, char *err, size_t errlen);

/* Parse "HOST:PORT" ("127.0.0.1:9187", "[::1]:9187", "*:9187"); 0 or -1. */
struct sockaddr_storage;
int rd_conf_parse_listen(const char *listen, struct sockaddr_storage *ss,
                         char *err, size_t errlen);

#endif
