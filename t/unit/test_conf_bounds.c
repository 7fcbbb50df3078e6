/*
 * test_conf_bounds.c -- the limits and defaults of reporterd.yaml, on both
 * sides of every bound.
 *
 * Generated from the option table (conf.c): every bounded key loads at
 * its lower and its upper bound and is refused one step past each
 * ("KEY: VALUE is out of range (MIN..MAX)"; a string one byte over its
 * length limit: "is longer than N bytes"), written in the unit the key
 * is kept in.  The defaults: an empty file's effective configuration
 * (rd_conf_dump()) against the values reporterd.yaml(5) documents, written
 * out below by hand, and every key of the table is in that dump.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_fixture.h"
#include "conf_impl.h"

/* What reporterd.yaml(5) says an empty file means (the pid file's path
 * comes from configure's prefix). */
static const char documented[] =
    "daemon: off\n"
    "worker_processes: 2\n"
    "pid: " RD_DEFAULT_PID "\n"
    "error_log: stderr\n"
    "log_level: info\n"
    "user: ~\n"
    "worker_shutdown_timeout: 30s\n"
    "rabbitmq:\n"
    "  host: 127.0.0.1\n"
    "  port: 5672\n"
    "  user: guest\n"
    "  password: \"********\"\n"
    "  password_file: ~\n"
    "  vhost: /\n"
    "  task_queue: reports.tasks\n"
    "  result_queue: reports.results\n"
    "  dead_letter_queue: reports.tasks.dead\n"
    "  queue_type: classic\n"
    "  prefetch: 1\n"
    "  heartbeat: 30s\n"
    "  max_redeliveries: 5\n"
    "  connect_timeout_ms: 5000\n"
    "  confirm_timeout_ms: 5000\n"
    "  tls: off\n"
    "  tls_ca_file: ~\n"
    "  tls_cert_file: ~\n"
    "  tls_key_file: ~\n"
    "  tls_verify: on\n"
    "mongodb:\n"
    "  uri: mongodb://127.0.0.1:27017/\n"
    "  database: calls\n"
    "  collection: calls\n"
    "  max_time_ms: 20000\n"
    "task:\n"
    "  max_phones: 100\n"
    "  max_message_size: 1048576\n"
    "  max_depth: 16\n"
    "report:\n"
    "  price_per_second: 10\n"
    "  mode: live\n"
    "rollup:\n"
    "  collection: calls_rollup\n"
    "  batch: 10000\n"
    "  interval: 1s\n"
    "  lease: 30s\n"
    "  verify_rate: 10000\n"
    "status:\n"
    "  listen: ~\n"
    "  tasks: off\n"
    "journal:\n"
    "  enabled: off\n"
    "  collection: reports_journal\n"
    "  retention: 604800s\n";

/* The ranges reporterd.yaml(5) documents, in the unit each key is kept in
 * (durations in ms, or in s for heartbeat and retention; sizes in bytes;
 * the price in whole units; strings: bytes, max only).  The table's own
 * bounds must be these: the tests below derive the values they try from
 * the table, so a bound changed there is caught here. */
static const struct {
    const char *key;
    long long   min, max;
} documented_ranges[] = {
    { "worker_processes", 1, 1024 },
    { "worker_shutdown_timeout", 0, 3600000 },
    { "rabbitmq.port", 1, 65535 },
    { "rabbitmq.task_queue", 1, 255 },
    { "rabbitmq.result_queue", 1, 255 },
    { "rabbitmq.dead_letter_queue", 1, 255 },
    { "rabbitmq.prefetch", 1, 65535 },
    { "rabbitmq.heartbeat", 0, 3600 },
    { "rabbitmq.max_redeliveries", 0, 1000 },
    { "rabbitmq.connect_timeout_ms", 1, 3600000 },
    { "rabbitmq.confirm_timeout_ms", 1, 3600000 },
    { "mongodb.port", 1, 65535 },
    { "mongodb.max_time_ms", 1, 3600000 },
    { "mongodb.connect_timeout_ms", 1, 3600000 },
    { "task.max_phones", 1, 100000 },
    { "task.max_message_size", 64, 67108864 },
    { "task.max_depth", 2, 1000 },
    { "report.price_per_second", 0, 1000000 },
    { "rollup.collection", 1, 200 },
    { "rollup.batch", 1, 100000 },
    { "rollup.interval", 10, 3600000 },
    { "rollup.lease", 1000, 3600000 },
    { "rollup.verify_rate", 0, 100000000 },
    { "journal.retention", 60, 315360000 },
};

/* Keys whose bound needs another key to pass the checks across keys. */
static const struct {
    const char *key;
    const char *with;
} companions[] = {
    /* a confirm wait of an hour is longer than the heartbeat allows */
    { "rabbitmq.confirm_timeout_ms", "rabbitmq:\n  heartbeat: 0s\n" },
    { "rabbitmq.connect_timeout_ms", "rabbitmq:\n  heartbeat: 0s\n" },
    { "mongodb.max_time_ms", "rabbitmq:\n  heartbeat: 0s\n" },
    { "mongodb.connect_timeout_ms", "rabbitmq:\n  heartbeat: 0s\n" },
    /* "<task_queue>.dead" must fit in 255 bytes too */
    { "rabbitmq.task_queue", "rabbitmq:\n  dead_letter_queue: dlq\n" },
};

static void
test_defaults(void)
{
    struct rd_conf *c;
    char           *dump = NULL, line[300];
    size_t          len = 0, i;
    FILE           *f;

    c = load("");
    if (!ok(c != NULL, "an empty file loads (%s)", err))
        return;
    f = open_memstream(&dump, &len);
    rd_conf_dump(c, f);
    fclose(f);
    is_str(dump, documented, "an empty file's configuration is the documented defaults");
    /* every key of the table is in the dump (the folded mongodb parts
     * are in the uri), so the comparison above covers every default */
    for (i = 0; i < rd_conf_nopts; i++) {
        const struct rd_conf_opt *o = &rd_conf_opts[i];
        const char               *dot = strchr(o->name, '.');

        if (o->flags & RD_CONF_FOLDED)
            continue;
        snprintf(line, sizeof(line), "\n%s%s:", dot ? "  " : "", dot ? dot + 1 : o->name);
        ok(strstr(dump, line) != NULL || strncmp(dump, line + 1, strlen(line + 1)) == 0,
           "%s is in the dump of the defaults", o->name);
    }
    free(dump);
    rd_conf_free(c);
}

/* "section:\n  key: value\n" (or "key: value\n") plus a companion */
static void
yaml_for(const struct rd_conf_opt *o, const char *value, char *out, size_t size)
{
    const char *dot = strchr(o->name, '.');
    const char *with = "";
    size_t      i;

    for (i = 0; i < sizeof(companions) / sizeof(companions[0]); i++)
        if (strcmp(companions[i].key, o->name) == 0)
            with = companions[i].with;
    if (dot == NULL) {
        snprintf(out, size, "%s%s: %s\n", with, o->name, value);
    } else if (strncmp(with, o->name, (size_t) (dot - o->name)) == 0) {
        /* the companion is in the same section: one mapping */
        snprintf(out, size, "%s  %s: %s\n", with, dot + 1, value);
    } else {
        snprintf(out, size, "%s%.*s:\n  %s: %s\n", with, (int) (dot - o->name), o->name, dot + 1,
                 value);
    }
}

/* VALUE as written in the key's unit */
static void
written(const struct rd_conf_opt *o, long long v, int e4, char *out, size_t size)
{
    if (o->type == RD_CONF_DURATION)
        snprintf(out, size, "%lld%s", v, (o->flags & RD_CONF_SECONDS) ? "s" : "ms");
    else if (o->type == RD_CONF_DECIMAL && e4 != 0)
        snprintf(out, size, "%s%lld.%04d", v < 0 || (v == 0 && e4 < 0) ? "-" : "",
                 v < 0 ? -v : v, e4 < 0 ? -e4 : e4);
    else
        snprintf(out, size, "%lld", v);
}

static void
at(const struct rd_conf_opt *o, long long v, int e4, int good, const char *range)
{
    char            value[64], yaml[512], want[256];
    struct rd_conf *c;

    written(o, v, e4, value, sizeof(value));
    yaml_for(o, value, yaml, sizeof(yaml));
    c = load(yaml);
    if (good) {
        ok(c != NULL, "%s: %s (a bound) loads%s%s", o->name, value, c ? "" : ": ", c ? "" : err);
    } else {
        ok(c == NULL, "%s: %s (one past a bound) is refused", o->name, value);
        snprintf(want, sizeof(want), "%s: %s is out of range (%s)", o->name, value, range);
        like(err, want, "%s: %s: the documented message", o->name, value);
    }
    rd_conf_free(c);
}

static void
test_bounds(void)
{
    size_t i;
    int    n = 0;

    for (i = 0; i < rd_conf_nopts; i++) {
        const struct rd_conf_opt *o = &rd_conf_opts[i];
        char                      range[64], yaml[1024], value[600], want[128];
        const char               *unit = "";
        struct rd_conf           *c;

        if (o->type == RD_CONF_STR && o->max > 0) {
            /* the length limit: max bytes load, max + 1 are refused */
            memset(value, 'q', (size_t) o->max + 1);
            value[o->max] = '\0';
            yaml_for(o, value, yaml, sizeof(yaml));
            c = load(yaml);
            ok(c != NULL, "%s: %lld bytes (the limit) load%s%s", o->name, o->max, c ? "" : ": ",
               c ? "" : err);
            rd_conf_free(c);
            value[o->max] = 'q';
            value[o->max + 1] = '\0';
            yaml_for(o, value, yaml, sizeof(yaml));
            c = load(yaml);
            ok(c == NULL, "%s: %lld bytes (one over) are refused", o->name, o->max + 1);
            snprintf(want, sizeof(want), "%s: is longer than %lld bytes", o->name, o->max);
            like(err, want, "%s: the documented message", o->name);
            rd_conf_free(c);
            n++;
            continue;
        }
        if (o->type != RD_CONF_INT && o->type != RD_CONF_DURATION && o->type != RD_CONF_SIZE
            && o->type != RD_CONF_DECIMAL)
            continue;
        if (o->type == RD_CONF_DURATION)
            unit = (o->flags & RD_CONF_SECONDS) ? "s" : "ms";
        snprintf(range, sizeof(range), "%lld..%lld%s", o->min, o->max, unit);
        at(o, o->min, 0, 1, range);
        at(o, o->max, 0, 1, range);
        if (o->type == RD_CONF_DECIMAL) {
            /* one step of its resolution (10^-4) past each bound */
            at(o, o->min == 0 ? 0 : o->min - 1, o->min == 0 ? -1 : 9999, 0, range);
            at(o, o->max, 1, 0, range);
        } else {
            at(o, o->min - 1, 0, 0, range);
            at(o, o->max + 1, 0, 0, range);
        }
        n++;
    }
    ok(n >= 20, "%d bounded keys tested", n);
    /* every bounded key's range is the documented one, and every
     * documented range belongs to a bounded key */
    for (i = 0; i < sizeof(documented_ranges) / sizeof(documented_ranges[0]); i++) {
        const struct rd_conf_opt *o = NULL;
        size_t                    k;

        for (k = 0; k < rd_conf_nopts; k++)
            if (strcmp(rd_conf_opts[k].name, documented_ranges[i].key) == 0)
                o = &rd_conf_opts[k];
        ok(o != NULL && o->min == documented_ranges[i].min && o->max == documented_ranges[i].max,
           "%s: the range is the documented %lld..%lld (the table says %lld..%lld)",
           documented_ranges[i].key, documented_ranges[i].min, documented_ranges[i].max,
           o ? o->min : -1, o ? o->max : -1);
    }
    for (i = 0; i < rd_conf_nopts; i++) {
        const struct rd_conf_opt *o = &rd_conf_opts[i];
        size_t                    k;
        int                       found = 0;

        if (!((o->type == RD_CONF_STR && o->max > 0) || o->type == RD_CONF_INT
              || o->type == RD_CONF_DURATION || o->type == RD_CONF_SIZE || o->type == RD_CONF_DECIMAL))
            continue;
        for (k = 0; k < sizeof(documented_ranges) / sizeof(documented_ranges[0]); k++)
            found |= strcmp(documented_ranges[k].key, o->name) == 0;
        ok(found, "%s: its range is in the documented list", o->name);
    }
    /* the rows of the mutation audit, by name */
    fails("task:\n  max_phones: 100001\n", "2:15: task.max_phones: 100001 is out of range (1..100000)",
          "task.max_phones: 100001");
}

int
main(void)
{
    int rc = fixture_open();

    if (rc != 0)
        return rc;
    test_defaults();
    test_bounds();
    unlink(path);
    return done_testing();
}
