/*
 * conf_table.c -- the declarative option table: every key of
 * reporterd.yaml, its type, its place in struct rd_conf, its range and its
 * default.  Defaults, parsing, rd_conf_free() and rd_conf_dump() are all
 * driven by it; adding a key is adding a row here (and a field in conf.h).
 */

#include <string.h>

#include "conf_impl.h"

#ifndef RD_DEFAULT_PID
#define RD_DEFAULT_PID  "/usr/local/var/run/reporterd.pid"
#endif

static const char *const rd_conf_queue_types[] = { "classic", "quorum", NULL };

/* error_log values that name no file. */
static const char *const rd_conf_log_targets[] = { "stderr", NULL };

#define RD_SECTION(name)  { name, RD_CONF_SECTION, 0, 0, 0, NULL, 0, NULL }

const struct rd_conf_opt  rd_conf_opts[] = {
    { "daemon", RD_CONF_BOOL, RD_OFF(daemon), 0, 0, "off", 0, NULL },
    { "worker_processes", RD_CONF_INT, RD_OFF(worker_processes),
      1, 1024, "2", RD_CONF_AUTO, NULL },
    { "pid", RD_CONF_STR, RD_OFF(pid), 1, 0, RD_DEFAULT_PID, RD_CONF_PATH,
      NULL },
    { "error_log", RD_CONF_STR, RD_OFF(error_log), 1, 0, "stderr",
      RD_CONF_PATH, rd_conf_log_targets },
    { "log_level", RD_CONF_ENUM, RD_OFF(log_level), 0, 0, "info", 0,
      rd_log_levels },
    { "user", RD_CONF_STR, RD_OFF(user), 1, 0, NULL, 0, NULL },
    { "worker_shutdown_timeout", RD_CONF_DURATION,
      RD_OFF(worker_shutdown_timeout_ms), 0, 3600000, "30s", 0, NULL },

    RD_SECTION("rabbitmq"),
    { "rabbitmq.host", RD_CONF_STR, RD_OFF(rabbitmq.host),
      1, 0, "127.0.0.1", 0, NULL },
    { "rabbitmq.port", RD_CONF_INT, RD_OFF(rabbitmq.port),
      1, 65535, NULL, 0, NULL },
    { "rabbitmq.user", RD_CONF_STR, RD_OFF(rabbitmq.user),
      1, 0, "guest", 0, NULL },
    { "rabbitmq.password", RD_CONF_STR, RD_OFF(rabbitmq.password),
      0, 0, "guest", RD_CONF_SECRET, NULL },
    { "rabbitmq.password_file", RD_CONF_STR, RD_OFF(rabbitmq.password_file),
      1, 0, NULL, RD_CONF_PATH, NULL },
    { "rabbitmq.vhost", RD_CONF_STR, RD_OFF(rabbitmq.vhost),
      1, 0, "/", 0, NULL },
    { "rabbitmq.task_queue", RD_CONF_STR, RD_OFF(rabbitmq.task_queue),
      1, 255, "reports.tasks", 0, NULL },
    { "rabbitmq.result_queue", RD_CONF_STR, RD_OFF(rabbitmq.result_queue),
      1, 255, "reports.results", 0, NULL },
    { "rabbitmq.dead_letter_queue", RD_CONF_STR,
      RD_OFF(rabbitmq.dead_letter_queue), 1, 255, NULL, 0, NULL },
    { "rabbitmq.queue_type", RD_CONF_ENUM, RD_OFF(rabbitmq.queue_type),
      0, 0, "classic", 0, rd_conf_queue_types },
    { "rabbitmq.prefetch", RD_CONF_INT, RD_OFF(rabbitmq.prefetch),
      1, 65535, "1", 0, NULL },
    { "rabbitmq.heartbeat", RD_CONF_DURATION, RD_OFF(rabbitmq.heartbeat),
      0, 3600, "30s", RD_CONF_SECONDS, NULL },
    { "rabbitmq.max_redeliveries", RD_CONF_INT,
      RD_OFF(rabbitmq.max_redeliveries), 0, 1000, "5", 0, NULL },
    { "rabbitmq.connect_timeout_ms", RD_CONF_INT,
      RD_OFF(rabbitmq.connect_timeout_ms), 1, 3600000, "5000", 0, NULL },
    { "rabbitmq.confirm_timeout_ms", RD_CONF_INT,
      RD_OFF(rabbitmq.confirm_timeout_ms), 1, 3600000, "5000", 0, NULL },
    { "rabbitmq.tls", RD_CONF_BOOL, RD_OFF(rabbitmq.tls),
      0, 0, "off", 0, NULL },
    { "rabbitmq.tls_ca_file", RD_CONF_STR, RD_OFF(rabbitmq.tls_ca_file),
      1, 0, NULL, RD_CONF_PATH, NULL },
    { "rabbitmq.tls_cert_file", RD_CONF_STR, RD_OFF(rabbitmq.tls_cert_file),
      1, 0, NULL, RD_CONF_PATH, NULL },
    { "rabbitmq.tls_key_file", RD_CONF_STR, RD_OFF(rabbitmq.tls_key_file),
      1, 0, NULL, RD_CONF_PATH, NULL },
    { "rabbitmq.tls_verify", RD_CONF_BOOL, RD_OFF(rabbitmq.tls_verify),
      0, 0, "on", 0, NULL },

    RD_SECTION("mongodb"),
    { "mongodb.uri", RD_CONF_STR, RD_OFF(mongodb.uri),
      1, 0, NULL, RD_CONF_URI, NULL },
    { "mongodb.host", RD_CONF_STR, RD_OFF(mongodb.host),
      1, 0, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.port", RD_CONF_INT, RD_OFF(mongodb.port),
      1, 65535, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.user", RD_CONF_STR, RD_OFF(mongodb.user),
      1, 0, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.password", RD_CONF_STR, RD_OFF(mongodb.password),
      0, 0, NULL, RD_CONF_FOLDED | RD_CONF_SECRET, NULL },
    { "mongodb.password_file", RD_CONF_STR, RD_OFF(mongodb.password_file),
      1, 0, NULL, RD_CONF_FOLDED | RD_CONF_PATH, NULL },
    { "mongodb.auth_source", RD_CONF_STR, RD_OFF(mongodb.auth_source),
      1, 0, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.database", RD_CONF_STR, RD_OFF(mongodb.database),
      1, 0, "calls", 0, NULL },
    { "mongodb.collection", RD_CONF_STR, RD_OFF(mongodb.collection),
      1, 0, "calls", 0, NULL },
    { "mongodb.max_time_ms", RD_CONF_INT, RD_OFF(mongodb.max_time_ms),
      1, 3600000, "20000", 0, NULL },
    { "mongodb.connect_timeout_ms", RD_CONF_INT,
      RD_OFF(mongodb.connect_timeout_ms), 1, 3600000, "5000", RD_CONF_FOLDED,
      NULL },

    RD_SECTION("task"),
    { "task.max_phones", RD_CONF_INT, RD_OFF(task.max_phones),
      1, 100000, "100", 0, NULL },
    { "task.max_message_size", RD_CONF_SIZE, RD_OFF(task.max_message_size),
      64, 67108864, "1m", 0, NULL },
    { "task.max_depth", RD_CONF_INT, RD_OFF(task.max_depth),
      2, 1000, "16", 0, NULL },

    RD_SECTION("report"),
    /* At most 10^6 a second: every figure of a result stays far below
     * RD_REPORT_MAX_FIGURE for any sane record. */
    { "report.price_per_second", RD_CONF_DOUBLE,
      RD_OFF(report.price_per_second), 0, 1000000, "10", 0, NULL },

    RD_SECTION("status"),
    { "status.listen", RD_CONF_STR, RD_OFF(status.listen),
      1, 0, NULL, 0, NULL },
};

const size_t  rd_conf_nopts = sizeof(rd_conf_opts) / sizeof(rd_conf_opts[0]);


/* A linear search: the table is short and a file is read once per reload. */
const struct rd_conf_opt *
rd_conf_find(const char *name)
{
    size_t  i;

    for (i = 0; i < rd_conf_nopts; i++) {
        if (strcmp(rd_conf_opts[i].name, name) == 0)
            return &rd_conf_opts[i];
    }
    return NULL;
}


void *
rd_conf_field(const struct rd_conf *conf, const struct rd_conf_opt *opt)
{
    return (char *) conf + opt->offset;
}
