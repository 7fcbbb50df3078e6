/*
 * test_conf.c -- reporterd.yaml loading: defaults, every type, environment
 * expansion, paths made absolute, the checks across keys, file:line:col
 * errors and the dump.
 *
 * Each case writes its YAML to one temp file; error messages are matched
 * as "PATH:LINE:COL: KEY: message".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

#ifndef RD_DEFAULT_PID
#define RD_DEFAULT_PID  "/usr/local/var/run/reporterd.pid"
#endif

static char  path[] = "/tmp/test_conf_XXXXXX";
static char  secret[] = "/tmp/test_conf_secret_XXXXXX";
static char  err[1024];

static const char  example[] =
    "# reporterd.yaml\n"
    "daemon: off\n"
    "worker_processes: 2\n"
    "pid: /usr/local/var/run/reporterd.pid\n"
    "error_log: stderr\n"
    "log_level: info\n"
    "rabbitmq:\n"
    "  host: 127.0.0.1\n"
    "  port: 5672\n"
    "  user: guest\n"
    "  password: guest\n"
    "  vhost: /\n"
    "  task_queue: reports.tasks\n"
    "  result_queue: reports.results\n"
    "  prefetch: 1\n"
    "mongodb:\n"
    "  uri: mongodb://127.0.0.1:27017/\n"
    "  database: calls\n"
    "  collection: calls\n";


static void
spew(const char *file, const char *text, size_t len)
{
    FILE  *f;

    f = fopen(file, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        perror(file);
        exit(2);
    }
}


static struct rd_conf *
load(const char *yaml)
{
    spew(path, yaml, strlen(yaml));
    err[0] = '\0';
    return rd_conf_load(path, err, sizeof(err));
}


/* The load fails and the message contains "PATH:" + where. */
static void
fails(const char *yaml, const char *where, const char *name)
{
    struct rd_conf  *conf;
    char             want[1024];

    conf = load(yaml);
    snprintf(want, sizeof(want), "%s:%s", path, where);
    if (!ok(conf == NULL, "%s: rejected", name))
        rd_conf_free(conf);
    like(err, want, "%s: message", name);
}


static char *
dump(const struct rd_conf *conf)
{
    char    *buf;
    size_t   size;
    FILE    *f;

    f = open_memstream(&buf, &size);
    if (f == NULL)
        exit(2);
    rd_conf_dump(conf, f);
    fclose(f);
    return buf;
}


/* Load, dump, load the dump, dump again: the two dumps are equal. */
static void
round_trip(const char *yaml, const char *name)
{
    struct rd_conf  *a, *b;
    char            *da, *db;

    a = load(yaml);
    ok(a != NULL, "%s: loads (%s)", name, err);
    if (a == NULL)
        return;
    da = dump(a);
    b = load(da);
    ok(b != NULL, "%s: its dump loads (%s)", name, err);
    if (b != NULL) {
        db = dump(b);
        is_str(db, da, "%s: the dump of the dump is the same", name);
        free(db);
    }
    free(da);
    rd_conf_free(a);
    rd_conf_free(b);
}


static void
test_example(void)
{
    struct rd_conf  *c;

    c = load(example);
    ok(c != NULL, "example loads (%s)", err);
    if (c == NULL)
        return;

    is_str(c->path, path, "path");
    is_int(c->daemon, 0, "daemon");
    is_int(c->worker_processes, 2, "worker_processes");
    is_int(c->worker_processes_auto, 0, "worker_processes_auto");
    is_str(c->pid, "/usr/local/var/run/reporterd.pid", "pid");
    is_str(c->error_log, "stderr", "error_log");
    is_int(c->log_level, RD_LOG_INFO, "log_level");
    is_str(c->user, NULL, "user");
    is_int(c->worker_shutdown_timeout_ms, 30000, "worker_shutdown_timeout");

    is_str(c->rabbitmq.host, "127.0.0.1", "rabbitmq.host");
    is_int(c->rabbitmq.port, 5672, "rabbitmq.port");
    is_str(c->rabbitmq.user, "guest", "rabbitmq.user");
    is_str(c->rabbitmq.password, "guest", "rabbitmq.password");
    is_str(c->rabbitmq.password_file, NULL, "rabbitmq.password_file");
    is_str(c->rabbitmq.vhost, "/", "rabbitmq.vhost");
    is_str(c->rabbitmq.task_queue, "reports.tasks", "rabbitmq.task_queue");
    is_str(c->rabbitmq.result_queue, "reports.results",
           "rabbitmq.result_queue");
    is_str(c->rabbitmq.dead_letter_queue, "reports.tasks.dead",
           "rabbitmq.dead_letter_queue derived from task_queue");
    is_int(c->rabbitmq.queue_type, RD_QUEUE_CLASSIC, "rabbitmq.queue_type");
    is_int(c->rabbitmq.prefetch, 1, "rabbitmq.prefetch");
    is_int(c->rabbitmq.heartbeat, 30, "rabbitmq.heartbeat");
    is_int(c->rabbitmq.max_redeliveries, 5, "rabbitmq.max_redeliveries");
    is_int(c->rabbitmq.connect_timeout_ms, 5000, "connect_timeout_ms");
    is_int(c->rabbitmq.confirm_timeout_ms, 5000, "confirm_timeout_ms");
    is_int(c->rabbitmq.tls, 0, "rabbitmq.tls");
    is_int(c->rabbitmq.tls_verify, 1, "rabbitmq.tls_verify");
    is_str(c->rabbitmq.tls_ca_file, NULL, "rabbitmq.tls_ca_file");

    is_str(c->mongodb.uri, "mongodb://127.0.0.1:27017/", "mongodb.uri");
    is_str(c->mongodb.host, NULL, "mongodb.host");
    is_int(c->mongodb.port, 0, "mongodb.port");
    is_str(c->mongodb.database, "calls", "mongodb.database");
    is_str(c->mongodb.collection, "calls", "mongodb.collection");
    is_int(c->mongodb.max_time_ms, 20000, "mongodb.max_time_ms");

    is_int(c->task.max_phones, 100, "task.max_phones");
    is_int(c->task.max_message_size, 1048576, "task.max_message_size");
    is_int(c->task.max_depth, 16, "task.max_depth");
    is_int(c->report.price_e4, 100000, "report.price_per_second");
    is_str(c->status.listen, NULL, "status.listen");
    is_int(c->world_readable_secret, 0, "a 0600 file is not world readable");

    rd_conf_free(c);
}


static void
test_empty(void)
{
    static const char *const  docs[] = {
        "", "# only a comment\n\n   # and another\n", "---\n", "---\n...\n",
        "rabbitmq:\nmongodb:\n  # nothing here\n"
    };
    struct rd_conf           *c;
    size_t                    i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        c = load(docs[i]);
        ok(c != NULL, "empty document %zu loads (%s)", i, err);
        if (c == NULL)
            continue;
        is_str(c->pid, RD_DEFAULT_PID, "empty %zu: pid default", i);
        is_int(c->worker_processes, 2, "empty %zu: worker_processes", i);
        is_str(c->rabbitmq.password, "guest", "empty %zu: password", i);
        is_int(c->rabbitmq.port, 5672, "empty %zu: port", i);
        is_str(c->rabbitmq.dead_letter_queue, "reports.tasks.dead",
               "empty %zu: dead_letter_queue", i);
        is_str(c->mongodb.uri, "mongodb://127.0.0.1:27017/",
               "empty %zu: mongodb.uri built from defaults", i);
        rd_conf_free(c);
    }
}


static void
test_syntax(void)
{
    struct rd_conf  *c;
    char             want[256];

    c = rd_conf_load("/nonexistent/reporterd.yaml", err, sizeof(err));
    ok(c == NULL, "missing file is an error");
    is_str(err, "/nonexistent/reporterd.yaml: cannot open: "
           "No such file or directory", "missing file message");

    c = rd_conf_load("/tmp", err, sizeof(err));
    ok(c == NULL, "a directory is an error");
    like(err, "/tmp: cannot read: Is a directory", "directory message");

    fails("daemon: on\n  bad: x\n", "2:6: mapping values are not allowed",
          "syntax error");
    fails("rabbitmq:\n  host: [x\n", "3:1: ", "unclosed flow sequence");
    fails("daemon: on\npid: \"ab\xff\"\n", "2:9: invalid leading UTF-8 octet",
          "reader error is positioned from problem_offset");
    fails("daemon: on\n---\ndaemon: off\n",
          "2:1: only one YAML document is allowed", "two documents");
    fails("- a\n- b\n", "1:1: the top level must be a mapping",
          "root sequence");
    fails("hello\n", "1:1: the top level must be a mapping", "root scalar");
    fails("pid: *nowhere\n", "1:6: found undefined alias", "undefined alias");

    /* errlen 0 and a short buffer are safe */
    c = rd_conf_load("/nonexistent", err, 0);
    ok(c == NULL, "errlen 0");
    c = rd_conf_load("/nonexistent/reporterd.yaml", want, 8);
    ok(c == NULL && strlen(want) == 7, "message truncated to the buffer");
}


/* The first key is first_key; the last alias stands for 9^9 "lol"s. */
static void
laughs(char *doc, size_t size, const char *first_key)
{
    int  i, n;

    n = snprintf(doc, size, "%s: &a [lol, lol, lol, lol, lol, lol, lol, "
                 "lol, lol]\n", first_key);
    for (i = 1; i < 9; i++)
        n += snprintf(doc + n, size - n,
                      "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
                      'a' + i, 'a' + i, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1,
                      'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1,
                      'a' + i - 1, 'a' + i - 1);
}


static void
test_structure(void)
{
    struct rd_conf   *c;
    struct timespec   t0, t1;
    char              doc[4096];
    double            secs;

    fails("rabbitmq:\n  hots: x\n", "2:3: rabbitmq.hots: unknown key",
          "unknown key in a section");
    fails("daemon: on\nfoo: 1\n", "2:1: foo: unknown key", "unknown top key");
    fails("rabbitmq.host: x\n", "1:1: rabbitmq.host: unknown key",
          "dotted key is not a path");
    fails("rabbitmq:\n  mongodb:\n    uri: x\n",
          "2:3: rabbitmq.mongodb: unknown key", "section inside a section");
    fails("? [a]\n: b\n", "1:3: a key must be a scalar", "sequence as key");

    fails("daemon: on\ndaemon: off\n",
          "2:1: daemon: duplicate key (first at line 1)", "duplicate key");
    fails("rabbitmq:\n  port: 1\nmongodb: {}\nrabbitmq:\n  host: x\n",
          "4:1: rabbitmq: duplicate key (first at line 1)",
          "duplicate section");
    fails("rabbitmq: {port: 1, port: 2}\n",
          "1:21: rabbitmq.port: duplicate key", "duplicate key in flow style");

    fails("rabbitmq:\n  port: !!int 5672\n",
          "2:9: rabbitmq.port: tags are not allowed (tag:yaml.org,2002:int)",
          "standard tag");
    fails("rabbitmq: !amqp\n  port: 5672\n",
          "1:11: rabbitmq: tags are not allowed (!amqp)", "local tag");

    fails("daemon: &x off\npid: /run/x.pid\nerror_log: *x\n",
          "3:1: error_log: aliases are not allowed", "scalar alias");
    fails("task: &t\n  max_phones: 5\nreport: *t\n",
          "3:1: report: aliases are not allowed", "mapping alias");
    fails("task: &t {max_depth: 3}\nreport: {price_per_second: *t}\n",
          "2:10: report.price_per_second: aliases are not allowed",
          "alias inside a flow mapping");

    /* billion laughs: nine levels of nine aliases each */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    laughs(doc, sizeof(doc), "a");
    fails(doc, "1:1: a: unknown key", "billion laughs");
    laughs(doc, sizeof(doc), "pid");
    fails(doc, "1:6: pid: expected a single value, not a sequence",
          "billion laughs under a real key");
    laughs(doc, sizeof(doc), "rabbitmq");
    fails(doc, "1:11: rabbitmq: expected a mapping, not a sequence",
          "billion laughs under a section");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    ok(secs < 1.0, "billion laughs rejected fast (%.3f s)", secs);

    fails("daemon:\n  x: 1\n", "2:3: daemon: expected a single value, "
          "not a mapping", "mapping where a value is expected");
    fails("pid: [a, b]\n", "1:6: pid: expected a single value, "
          "not a sequence", "sequence where a value is expected");
    fails("rabbitmq: localhost\n", "1:11: rabbitmq: expected a mapping, "
          "not a scalar", "value where a section is expected");
    fails("rabbitmq:\n  - host\n", "2:3: rabbitmq: expected a mapping, "
          "not a sequence", "sequence where a section is expected");

    fails("rabbitmq:\n  host:\n", "2:8: rabbitmq.host: a value is required",
          "null for a key with a default");
    fails("rabbitmq:\n  host: ~\n", "2:9: rabbitmq.host: a value is required",
          "~ for a key with a default");
    fails("pid: \"\"\n", "1:6: pid: must not be empty", "empty string");
    fails("pid: \"a\\0b\"\n", "1:6: pid: contains a NUL byte", "NUL byte");
    fails("log_level: |\n  in\n  fo\n", "1:12: log_level: \"in fo \" is not "
          "one of", "an error message is one line");

    c = load("user: ~\nstatus:\n  listen: null\nrabbitmq:\n"
             "  tls_ca_file:\n");
    ok(c != NULL, "null for keys without a default (%s)", err);
    if (c != NULL) {
        is_str(c->user, NULL, "user stays unset");
        is_str(c->status.listen, NULL, "status.listen stays unset");
        rd_conf_free(c);
    }

    c = load("user: \"~\"\n");
    ok(c != NULL && !strcmp(c->user, "~"), "a quoted ~ is a string");
    rd_conf_free(c);
}


static void
test_types(void)
{
    static const struct {
        const char  *text;
        int          value;
    } bools[] = {
        { "on", 1 }, { "off", 0 }, { "true", 1 }, { "false", 0 },
        { "yes", 1 }, { "no", 0 }, { "\"on\"", 1 }
    };
    struct rd_conf  *c;
    char             doc[600], name[64];
    size_t           i;
    long             ncpu;

    for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        snprintf(doc, sizeof(doc), "daemon: %s\n", bools[i].text);
        c = load(doc);
        ok(c != NULL && c->daemon == bools[i].value, "bool %s", bools[i].text);
        rd_conf_free(c);
    }
    fails("daemon: On\n", "1:9: daemon: \"On\" is not a boolean",
          "bool is lower case only");
    fails("daemon: 1\n", "1:9: daemon: \"1\" is not a boolean", "bool 1");

    c = load("worker_processes: auto\n");
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ok(c != NULL, "worker_processes: auto");
    if (c != NULL) {
        is_int(c->worker_processes, ncpu < 1 ? 1 : ncpu > 1024 ? 1024 : ncpu,
               "auto is the number of CPUs");
        is_int(c->worker_processes_auto, 1, "worker_processes_auto set");
        rd_conf_free(c);
    }
    c = load("worker_processes: 1024\n");
    ok(c != NULL && c->worker_processes == 1024, "worker_processes max");
    rd_conf_free(c);
    fails("worker_processes: 0\n", "1:19: worker_processes: 0 is out of range "
          "(1..1024)", "worker_processes 0");
    fails("worker_processes: Auto\n", "1:19: worker_processes: \"Auto\" is not "
          "an integer or auto", "worker_processes Auto");
    fails("worker_processes: 0x10\n", "1:19: worker_processes: \"0x10\" is not",
          "hex is not an integer");
    fails("worker_processes: \" 4\"\n", "1:19: worker_processes: \" 4\" is "
          "not an integer or auto",
          "leading space");
    fails("worker_processes: 4 cpus\n", "1:19: worker_processes: \"4 cpus\" "
          "is not an integer or auto",
          "trailing text");
    fails("worker_processes: 99999999999999999999\n",
          "1:19: worker_processes: 99999999999999999999 is out of range",
          "overflow is out of range");
    fails("rabbitmq:\n  prefetch: -1\n",
          "2:13: rabbitmq.prefetch: -1 is out of range (1..65535)",
          "negative prefetch");
    fails("rabbitmq:\n  port: 70000\n",
          "2:9: rabbitmq.port: 70000 is out of range (1..65535)",
          "port out of range");

    c = load("log_level: debug\nrabbitmq:\n  queue_type: quorum\n");
    ok(c != NULL && c->log_level == RD_LOG_DEBUG
       && c->rabbitmq.queue_type == RD_QUEUE_QUORUM, "enums");
    rd_conf_free(c);
    fails("log_level: verbose\n", "1:12: log_level: \"verbose\" is not one of "
          "debug info warn error", "bad log_level");
    fails("rabbitmq:\n  queue_type: stream\n", "2:15: rabbitmq.queue_type: "
          "\"stream\" is not one of classic quorum", "bad queue_type");

    /* durations */
    static const struct {
        const char  *text;
        int          ms;
    } durations[] = {
        { "30s", 30000 }, { "500ms", 500 }, { "2m", 120000 },
        { "45", 45000 }, { "1h", 3600000 }, { "0", 0 }
    };
    for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        snprintf(doc, sizeof(doc), "worker_shutdown_timeout: %s\n",
                 durations[i].text);
        c = load(doc);
        snprintf(name, sizeof(name), "worker_shutdown_timeout %s",
                 durations[i].text);
        ok(c != NULL, "%s loads (%s)", name, err);
        if (c != NULL)
            is_int(c->worker_shutdown_timeout_ms, durations[i].ms, "%s", name);
        rd_conf_free(c);
    }
    fails("worker_shutdown_timeout: 2h\n", "1:26: worker_shutdown_timeout: "
          "2h is out of range (0..3600000ms)", "duration out of range");
    fails("worker_shutdown_timeout: 5x\n", "1:26: worker_shutdown_timeout: "
          "\"5x\" is not a duration", "bad duration unit");
    fails("worker_shutdown_timeout: 1.5s\n", "1:26: worker_shutdown_timeout: "
          "\"1.5s\" is not a duration",
          "fractional duration");
    fails("worker_shutdown_timeout: 9999999999999999h\n",
          "1:26: worker_shutdown_timeout: 9999999999999999h is out of range",
          "duration overflow");

    c = load("rabbitmq:\n  heartbeat: 1m\nmongodb:\n  max_time_ms: 1000\n");
    ok(c != NULL && c->rabbitmq.heartbeat == 60, "heartbeat 1m is 60 s (%s)",
       err);
    rd_conf_free(c);
    c = load("rabbitmq:\n  heartbeat: 0\n");
    ok(c != NULL && c->rabbitmq.heartbeat == 0, "heartbeat 0 is off");
    rd_conf_free(c);
    fails("rabbitmq:\n  heartbeat: 1500ms\n", "2:14: rabbitmq.heartbeat: "
          "1500ms is not a whole number of seconds", "heartbeat in ms");
    fails("rabbitmq:\n  heartbeat: 2h\n", "2:14: rabbitmq.heartbeat: 2h is "
          "out of range (0..3600s)", "heartbeat out of range");
    fails("rabbitmq:\n  heartbeat: 0d\n  max_redeliveries: 1d\n",
          "3:21: rabbitmq.max_redeliveries: \"1d\" is not an integer",
          "a count takes no unit");
    c = load("rabbitmq:\n  heartbeat: 0d\n");
    ok(c != NULL && c->rabbitmq.heartbeat == 0, "heartbeat 0d is off (%s)",
       err);
    rd_conf_free(c);
    fails("rabbitmq:\n  heartbeat: 1d\n", "2:14: rabbitmq.heartbeat: 1d is "
          "out of range (0..3600s)", "heartbeat 1d out of range");
    fails("worker_shutdown_timeout: 1d\n", "1:26: worker_shutdown_timeout: "
          "1d is out of range (0..3600000ms)", "1d is 86400000 ms");
    fails("worker_shutdown_timeout: 106751991167301d\n",
          "1:26: worker_shutdown_timeout: 106751991167301d is out of range",
          "days overflow");
    fails("worker_shutdown_timeout: 2D\n", "1:26: worker_shutdown_timeout: "
          "\"2D\" is not a duration (a number of seconds, or 500ms, 30s, "
          "2m, 1h, 1d)", "units are lower case");

    /* the *_ms keys: a bare number is milliseconds, as it always was
     * (heartbeats off: an hour would not fit the budget) */
    static const struct {
        const char  *key;
        size_t       offset;
        const char  *rest;
    } ms_keys[] = {
        { "rabbitmq:\n  connect_timeout_ms",
          offsetof(struct rd_conf, rabbitmq.connect_timeout_ms),
          "  heartbeat: 0\n" },
        { "rabbitmq:\n  confirm_timeout_ms",
          offsetof(struct rd_conf, rabbitmq.confirm_timeout_ms),
          "  heartbeat: 0\n" },
        { "mongodb:\n  max_time_ms",
          offsetof(struct rd_conf, mongodb.max_time_ms),
          "rabbitmq:\n  heartbeat: 0\n" },
        { "mongodb:\n  connect_timeout_ms",
          offsetof(struct rd_conf, mongodb.connect_timeout_ms),
          "rabbitmq:\n  heartbeat: 0\n" },
    };
    static const struct {
        const char  *text;
        int          ms;
    } ms_values[] = {
        { "1500", 1500 }, { "1500ms", 1500 }, { "5s", 5000 },
        { "2m", 120000 }, { "1h", 3600000 }, { "1", 1 }
    };
    size_t  k;

    for (k = 0; k < sizeof(ms_keys) / sizeof(ms_keys[0]); k++) {
        for (i = 0; i < sizeof(ms_values) / sizeof(ms_values[0]); i++) {
            snprintf(doc, sizeof(doc), "%s: %s\n%s", ms_keys[k].key,
                     ms_values[i].text, ms_keys[k].rest);
            snprintf(name, sizeof(name), "%s %s", strchr(ms_keys[k].key, ' ')
                     + 2, ms_values[i].text);
            c = load(doc);
            ok(c != NULL, "%s loads (%s)", name, err);
            if (c != NULL)
                is_int(*(int *) ((char *) c + ms_keys[k].offset),
                       ms_values[i].ms, "%s", name);
            rd_conf_free(c);
        }
    }
    fails("rabbitmq:\n  confirm_timeout_ms: 0s\n",
          "2:23: rabbitmq.confirm_timeout_ms: 0s is out of range "
          "(1..3600000ms)", "confirm_timeout_ms 0s");
    fails("rabbitmq:\n  connect_timeout_ms: 3600001\n",
          "2:23: rabbitmq.connect_timeout_ms: 3600001 is out of range "
          "(1..3600000ms)", "connect_timeout_ms above an hour");
    fails("mongodb:\n  max_time_ms: 1d\n",
          "2:16: mongodb.max_time_ms: 1d is out of range (1..3600000ms)",
          "max_time_ms 1d");
    fails("mongodb:\n  connect_timeout_ms: 2h\n",
          "2:23: mongodb.connect_timeout_ms: 2h is out of range "
          "(1..3600000ms)", "mongodb connect_timeout_ms 2h");
    fails("mongodb:\n  max_time_ms: 99999999999999999999\n",
          "2:16: mongodb.max_time_ms: 99999999999999999999 is out of range",
          "max_time_ms overflow");
    fails("mongodb:\n  max_time_ms: 9223372036854775807s\n",
          "2:16: mongodb.max_time_ms: 9223372036854775807s is out of range",
          "max_time_ms overflow by the unit");
    fails("rabbitmq:\n  confirm_timeout_ms: 5 s\n",
          "2:23: rabbitmq.confirm_timeout_ms: \"5 s\" is not a duration "
          "(a number of milliseconds, or 500ms, 30s, 2m, 1h, 1d)",
          "a bare *_ms number is milliseconds");
    c = load("mongodb:\n  connect_timeout_ms: 3s\n");
    ok(c != NULL && strstr(c->mongodb.uri, "connectTimeoutMS=3000") != NULL,
       "connect_timeout_ms 3s folded into the uri as 3000 (%s)",
       c ? c->mongodb.uri : err);
    rd_conf_free(c);

    /* sizes */
    static const struct {
        const char  *text;
        int          bytes;
    } sizes[] = {
        { "64k", 65536 }, { "64K", 65536 }, { "2m", 2097152 },
        { "2M", 2097152 }, { "100", 100 }, { "64m", 67108864 }
    };
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(doc, sizeof(doc), "task:\n  max_message_size: %s\n",
                 sizes[i].text);
        c = load(doc);
        ok(c != NULL && c->task.max_message_size == sizes[i].bytes,
           "max_message_size %s", sizes[i].text);
        rd_conf_free(c);
    }
    fails("task:\n  max_message_size: 65m\n", "2:21: task.max_message_size: "
          "65m is out of range (64..67108864)", "size too big");
    fails("task:\n  max_message_size: 10\n", "2:21: task.max_message_size: "
          "10 is out of range",
          "size too small");
    fails("task:\n  max_message_size: 1g\n", "2:21: task.max_message_size: "
          "\"1g\" is not a size", "bad size unit");
    fails("task:\n  max_depth: 1\n", "2:14: task.max_depth: 1 is out of range "
          "(2..1000)", "max_depth");

    /* decimals: report.price_per_second, read from its text into ten-thousandths */
    {
        static const struct {
            const char *text;
            int64_t     e4;
        } prices[] = {
            { "0.25", 2500 }, { "0", 0 }, { "0.7", 7000 }, { "1.2345", 12345 }, { "0.0001", 1 },
            { "10", 100000 }, { "10.", -1 }, { "007.50", 75000 }, { "1000000", 10000000000 },
            { "1000000.0000", 10000000000 }, { "-0", 0 }, { "\"2.5\"", 25000 },
        };
        size_t j;

        for (j = 0; j < sizeof(prices) / sizeof(prices[0]); j++) {
            char y[128];

            snprintf(y, sizeof(y), "report:\n  price_per_second: %s\n", prices[j].text);
            c = load(y);
            if (prices[j].e4 < 0)
                ok(c == NULL, "price %s refused", prices[j].text);
            else
                ok(c != NULL && c->report.price_e4 == prices[j].e4, "price %s is %lld ten-thousandths (%s)",
                   prices[j].text, (long long) prices[j].e4, err);
            rd_conf_free(c);
        }
    }
    c = load("");
    ok(c != NULL && c->report.price_e4 == 100000, "price 10 by default");
    rd_conf_free(c);
    fails("report:\n  price_per_second: 0.12345\n", "2:21: report.price_per_second: "
          "0.12345 has more than 4 decimals", "5 decimals");
    fails("report:\n  price_per_second: 0.70000\n", "2:21: report.price_per_second: "
          "0.70000 has more than 4 decimals", "5 decimals, even zeros");
    fails("report:\n  price_per_second: -1\n", "2:21: report.price_per_second: "
          "-1 is out of range (0..1000000)", "negative price");
    fails("report:\n  price_per_second: -0.0001\n", "2:21: report.price_per_second: "
          "-0.0001 is out of range (0..1000000)", "a negative ten-thousandth");
    fails("report:\n  price_per_second: 1000000.0001\n", "2:21: report.price_per_second: "
          "1000000.0001 is out of range (0..1000000)", "price above the maximum");
    fails("report:\n  price_per_second: 99999999999999999999999999\n", "2:21: report.price_per_second: "
          "99999999999999999999999999 is out of range (0..1000000)", "a price of 26 digits");
    fails("report:\n  price_per_second: 1e6\n", "2:21: report.price_per_second: \"1e6\" is not a "
          "decimal number (like 10 or 0.25)", "no exponents");
    fails("report:\n  price_per_second: 1e999\n", "2:21: report.price_per_second: \"1e999\" is not a "
          "decimal number", "infinite price");
    fails("report:\n  price_per_second: nan\n", "2:21: report.price_per_second: \"nan\" is not a "
          "decimal number", "nan price");
    fails("report:\n  price_per_second: 1,5\n", "2:21: report.price_per_second: \"1,5\" is not a "
          "decimal number", "comma price");
    fails("report:\n  price_per_second: .5\n", "2:21: report.price_per_second: \".5\" is not a "
          "decimal number", "no digit before the point");
    fails("report:\n  price_per_second: \" 1\"\n", "2:21: report.price_per_second: \" 1\" is not a "
          "decimal number", "spaces");
    fails("# prices\nreport: {price_per_second: 1.7976931348623157e308}\n", "2:28: report.price_per_second: "
          "\"1.7976931348623157e308\" is not a decimal number", "price DBL_MAX");

    /* strings */
    memset(doc, 0, sizeof(doc));
    memcpy(doc, "rabbitmq:\n  task_queue: ", 24);
    memset(doc + 24, 'q', 256);
    doc[24 + 256] = '\n';
    fails(doc, "2:15: rabbitmq.task_queue: is longer than 255 bytes",
          "queue name of 256 bytes");
    doc[24 + 255] = '\n';
    doc[24 + 256] = '\0';
    fails(doc, "2:3: rabbitmq.task_queue: too long to derive "
          "dead_letter_queue", "derived dead_letter_queue too long");
}


static void
test_env(void)
{
    struct rd_conf  *c;

    setenv("RD_T_HOST", "mq.example", 1);
    setenv("RD_T_PORT", "5673", 1);
    setenv("RD_T_EMPTY", "", 1);
    unsetenv("RD_T_UNSET");

    c = load("rabbitmq:\n"
             "  host: ${RD_T_HOST}\n"
             "  port: ${RD_T_PORT}\n"
             "  user: ${RD_T_UNSET:-fallback}\n"
             "  password: pa$$ss${RD_T_EMPTY}\n"
             "  vhost: ${RD_T_EMPTY:-/v}\n"
             "  task_queue: a$b.${RD_T_HOST}.$\n");
    ok(c != NULL, "environment expansion (%s)", err);
    if (c != NULL) {
        is_str(c->rabbitmq.host, "mq.example", "${VAR}");
        is_int(c->rabbitmq.port, 5673, "${VAR} in an integer");
        is_str(c->rabbitmq.user, "fallback", "${VAR:-default}, VAR unset");
        is_str(c->rabbitmq.password, "pa$ss", "$$ and an empty ${VAR}");
        is_str(c->rabbitmq.vhost, "/v", "${VAR:-default}, VAR empty");
        is_str(c->rabbitmq.task_queue, "a$b.mq.example.$",
               "a lone $ stays");
        rd_conf_free(c);
    }

    fails("rabbitmq:\n  host: ${RD_T_UNSET}\n",
          "2:9: rabbitmq.host: environment variable RD_T_UNSET is not set",
          "unset variable");
    fails("rabbitmq:\n  host: ${RD_T_EMPTY}\n",
          "2:9: rabbitmq.host: must not be empty", "empty variable");
    fails("rabbitmq:\n  host: ${RD_T_HOST\n", "2:9: rabbitmq.host: malformed",
          "unclosed ${");
    fails("rabbitmq:\n  host: ${}\n", "2:9: rabbitmq.host: malformed",
          "empty ${}");
    fails("rabbitmq:\n  host: ${1X}\n", "2:9: rabbitmq.host: malformed",
          "name starts with a digit");
    fails("rabbitmq:\n  host: ${RD_T_HOST:x}\n",
          "2:9: rabbitmq.host: malformed", "${VAR:x}");
    fails("rabbitmq:\n  port: ${RD_T_HOST}\n",
          "2:9: rabbitmq.port: \"mq.example\" is not an integer",
          "expanded value is converted");
}


static void
test_passwords(void)
{
    struct rd_conf  *c;
    char             doc[512];
    int              fd;

    fd = mkstemp(secret);
    if (fd == -1) {
        perror("mkstemp");
        exit(2);
    }
    close(fd);

    spew(secret, "s3cret\n", 7);
    snprintf(doc, sizeof(doc), "rabbitmq:\n  password_file: %s\n", secret);
    c = load(doc);
    ok(c != NULL, "rabbitmq.password_file (%s)", err);
    if (c != NULL) {
        is_str(c->rabbitmq.password, "s3cret", "one newline stripped");
        is_str(c->rabbitmq.password_file, secret, "password_file kept");
        rd_conf_free(c);
    }

    spew(secret, "two\n\n", 5);
    c = load(doc);
    ok(c != NULL && !strcmp(c->rabbitmq.password, "two\n"),
       "only one newline stripped");
    rd_conf_free(c);

    spew(secret, "x\0y", 3);
    fails(doc, "2:3: rabbitmq.password_file: ", "password file with a NUL");
    like(err, "contains a NUL byte", "password file with a NUL: message");

    fails("rabbitmq:\n  password_file: /nonexistent/pw\n",
          "2:3: rabbitmq.password_file: cannot open \"/nonexistent/pw\": "
          "No such file or directory", "unreadable password_file");

    snprintf(doc, sizeof(doc), "rabbitmq:\n  password: a\n"
             "  password_file: %s\n", secret);
    fails(doc, "3:3: rabbitmq.password_file: rabbitmq.password and "
          "rabbitmq.password_file are mutually exclusive",
          "password and password_file");
    snprintf(doc, sizeof(doc), "rabbitmq:\n  password_file: %s\n"
             "  password: a\n", secret);
    fails(doc, "3:3: rabbitmq.password: rabbitmq.password and",
          "password_file and password: at the later key");

    /* mongodb: built uri, percent-encoded */
    spew(secret, "p@ss/w:rd %\n", 12);
    snprintf(doc, sizeof(doc), "mongodb:\n  host: db.example\n  port: 27018\n"
             "  user: r@p:rt\n  password_file: %s\n  auth_source: my db\n",
             secret);
    c = load(doc);
    ok(c != NULL, "mongodb from parts (%s)", err);
    if (c != NULL) {
        is_str(c->mongodb.uri, "mongodb://r%40p%3Art:p%40ss%2Fw%3Ard%20%25@"
               "db.example:27018/?authSource=my%20db",
               "uri built with percent-encoding");
        is_str(c->mongodb.password, "p@ss/w:rd %", "mongodb.password");
        is_str(c->mongodb.host, "db.example", "mongodb.host kept");
        rd_conf_free(c);
    }

    c = load("mongodb:\n  host: \"::1\"\n  user: u~-._\n");
    ok(c != NULL && !strcmp(c->mongodb.uri, "mongodb://u~-._@[::1]:27017/"),
       "IPv6 host, user without password");
    rd_conf_free(c);

    c = load("mongodb:\n  port: 27000\n");
    ok(c != NULL && !strcmp(c->mongodb.uri, "mongodb://127.0.0.1:27000/"),
       "port only");
    rd_conf_free(c);

    fails("mongodb:\n  password: x\n",
          "2:3: mongodb.password: a password needs mongodb.user",
          "mongodb password without user");
    fails("mongodb:\n  uri: mongodb://x/\n  host: y\n",
          "3:3: mongodb.host: uri and host are mutually exclusive",
          "uri and host");
    fails("mongodb:\n  auth_source: admin\n  uri: mongodb://x/\n",
          "3:3: mongodb.uri: uri and auth_source are mutually exclusive",
          "auth_source and uri: at the later key");
    fails("mongodb:\n  uri: http://x/\n",
          "2:3: mongodb.uri: must start with mongodb:// or mongodb+srv://",
          "uri scheme");
    c = load("mongodb:\n  uri: mongodb+srv://u:p@cluster0.db.example/db\n");
    ok(c != NULL, "mongodb+srv uri, not looked up at load (%s)", err);
    rd_conf_free(c);
    /* the driver's own parser checks the uri at load, not each worker */
    fails("mongodb:\n  uri: mongodb+srv://u:p@db.example/db\n",
          "2:3: mongodb.uri: Invalid service name in URI",
          "mongodb+srv with a two-label name");
    fails("mongodb:\n  uri: mongodb://h:99999/\n",
          "2:3: mongodb.uri: Invalid host string in URI", "uri port");
    fails("mongodb:\n  uri: mongodb://h/?socketTimeoutMS=soon\n",
          "2:3: mongodb.uri: Unsupported value for \"sockettimeoutms\"",
          "uri option value");

    c = load("mongodb:\n  connect_timeout_ms: 3000\n");
    ok(c != NULL && !strcmp(c->mongodb.uri,
                            "mongodb://127.0.0.1:27017/?connectTimeoutMS=3000"),
       "connect_timeout_ms folded into the uri (%s)", c ? c->mongodb.uri : err);
    rd_conf_free(c);
    c = load("mongodb:\n  auth_source: admin\n  connect_timeout_ms: 3000\n");
    ok(c != NULL && !strcmp(c->mongodb.uri, "mongodb://127.0.0.1:27017/"
                            "?authSource=admin&connectTimeoutMS=3000"),
       "connect_timeout_ms after auth_source (%s)", c ? c->mongodb.uri : err);
    rd_conf_free(c);
    fails("mongodb:\n  uri: mongodb://x/\n  connect_timeout_ms: 3000\n",
          "3:3: mongodb.connect_timeout_ms: uri and connect_timeout_ms are "
          "mutually exclusive (put it in the uri)", "uri and connect_timeout_ms");
}


static void
test_checks(void)
{
    struct rd_conf  *c;

    fails("rabbitmq:\n  task_queue: q\n  result_queue: q\n",
          "3:3: rabbitmq.result_queue: task_queue and result_queue must be "
          "different queues (both are \"q\")", "same task and result queue");
    fails("rabbitmq:\n  result_queue: r\n  dead_letter_queue: r\n",
          "3:3: rabbitmq.dead_letter_queue: result_queue and "
          "dead_letter_queue must be different", "same result and dead queue");
    fails("rabbitmq:\n  task_queue: t\n  result_queue: t.dead\n",
          "3:3: rabbitmq.result_queue: result_queue and dead_letter_queue",
          "result queue equals the derived dead letter queue");
    fails("rabbitmq:\n  dead_letter_queue: \"\"\n",
          "2:22: rabbitmq.dead_letter_queue: must not be empty",
          "empty dead_letter_queue");

    fails("rabbitmq:\n  tls: on\n",
          "2:3: rabbitmq.tls: tls with tls_verify needs tls_ca_file: "
          "librabbitmq 0.11 loads no default CA paths", "tls without a CA");
    fails("rabbitmq:\n  tls: on\n  tls_ca_file: /ca.pem\n"
          "  tls_key_file: /key.pem\n",
          "4:3: rabbitmq.tls_key_file: tls_key_file needs tls_cert_file",
          "key without cert");
    c = load("rabbitmq:\n  tls: on\n  tls_ca_file: /ca.pem\n");
    ok(c != NULL && c->rabbitmq.port == 5671, "tls port defaults to 5671");
    rd_conf_free(c);
    c = load("rabbitmq:\n  tls: on\n  tls_verify: off\n");
    ok(c != NULL && c->rabbitmq.port == 5671 && !c->rabbitmq.tls_verify,
       "tls without verify needs no CA");
    rd_conf_free(c);
    c = load("rabbitmq:\n  port: 5672\n  tls: yes\n  tls_ca_file: /ca.pem\n");
    ok(c != NULL && c->rabbitmq.port == 5672, "explicit port with tls kept");
    rd_conf_free(c);

    /* defaults: selection 5000 + 500, aggregation 20000 + 5000, two
     * confirms of 5000: 40500 ms, below 2 x 30 s */
    c = load("");
    ok(c != NULL, "the defaults fit the heartbeat budget (%s)", err);
    if (c != NULL) {
        struct rd_conf_budget  b;

        is_int(c->mongodb.limits.connect_timeout_ms, 5000, "connectTimeoutMS");
        is_int(c->mongodb.limits.server_selection_timeout_ms, 5000,
               "serverSelectionTimeoutMS");
        is_int(c->mongodb.limits.server_selection_try_once, 1,
               "serverSelectionTryOnce");
        is_int(c->mongodb.limits.socket_timeout_ms, 25000, "socketTimeoutMS");
        is_int(c->mongodb.limits.retry_reads, 0, "retryReads");
        rd_conf_budget(c, &b);
        is_int(b.select_ms, 5500, "budget: server selection");
        is_int(b.query_ms, 25000, "budget: aggregation");
        is_int(b.publish_ms, 5000, "budget: result publish");
        is_int(b.dead_letter_ms, 5000, "budget: dead-letter publish");
        is_int(b.journal_ms, 0, "budget: no journal write when it is off");
        is_int(b.total_ms, 40500, "budget: total");
        is_int(b.limit_ms, 60000, "budget: limit");
        is_int(c->journal.enabled, 0, "journal: off by default");
        is_str(c->journal.collection, "reports_journal", "journal.collection default");
        is_int(c->journal.retention, 7 * 24 * 3600, "journal.retention: 7d in seconds");
        is_int(c->status.tasks, 0, "status.tasks: off by default");
        rd_conf_free(c);
    }

    /* rollup mode: the rollup read gets half of max_time_ms on top */
    c = load("report:\n  mode: rollup\n");
    ok(c != NULL, "rollup mode's defaults fit the heartbeat budget (%s)", err);
    if (c != NULL) {
        struct rd_conf_budget  b;

        is_int(c->report.mode, RD_REPORT_ROLLUP, "report.mode: rollup");
        is_str(c->rollup.collection, "calls_rollup", "rollup.collection derived");
        is_int(c->rollup.batch, 10000, "rollup.batch default");
        is_int(c->rollup.interval_ms, 1000, "rollup.interval default");
        is_int(c->rollup.lease_ms, 30000, "rollup.lease default");
        rd_conf_budget(c, &b);
        is_int(b.query_ms, 35000, "budget: rollups (10000) and tail (25000)");
        is_int(b.total_ms, 50500, "budget: total in rollup mode");
        rd_conf_free(c);
    }
    c = load("mongodb:\n  collection: cdr\nrollup:\n  collection: r\n  batch: 5\n"
             "  interval: 20ms\n  lease: 2s\n");
    ok(c != NULL && strcmp(c->rollup.collection, "r") == 0 && c->rollup.batch == 5
       && c->rollup.interval_ms == 20 && c->rollup.lease_ms == 2000, "rollup keys read (%s)", err);
    rd_conf_free(c);
    c = load("mongodb:\n  collection: cdr\n");
    ok(c != NULL && strcmp(c->rollup.collection, "cdr_rollup") == 0, "rollup.collection follows mongodb.collection");
    rd_conf_free(c);
    fails("report:\n  mode: cached\n", "2:9: report.mode: ", "report.mode: an unknown mode");
    fails("rollup:\n  batch: 0\n", "2:10: rollup.batch: ", "rollup.batch: 0");
    fails("rollup:\n  lease: 10ms\n", "2:10: rollup.lease: ", "rollup.lease below 1 s");
    fails("report:\n  mode: rollup\nrabbitmq:\n  heartbeat: 25\n",
          "4:3: rabbitmq.heartbeat: one task can block a worker for 50500 ms "
          "(server selection 5500 + rollups and tail 35000 + ", "rollup mode's budget");
    /* The journal's write has its own bound, counted like the rest:
     * connectTimeoutMS 1000 + one rescan 500 + socket 2000. */
    c = load("journal:\n  enabled: on\n  collection: j\n  retention: 36h\n"
             "status:\n  listen: 127.0.0.1:9187\n  tasks: on\n");
    ok(c != NULL, "a journal and the tasks route load (%s)", err);
    if (c != NULL) {
        struct rd_conf_budget  b;

        rd_conf_budget(c, &b);
        is_int(b.journal_ms, 3500, "budget: the journal write");
        is_int(b.total_ms, 44000, "budget: total with the journal");
        is_int(c->journal.retention, 36 * 3600, "journal.retention 36h");
        is_int(c->status.tasks, 1, "status.tasks on");
        rd_conf_free(c);
    }
    /* 2 x 20 s = 40000 ms: 5500 + (16000 + 5000) + 10000 = 36500 fits
     * alone, not with the journal's 3500 */
    c = load("rabbitmq:\n  heartbeat: 20\nmongodb:\n  max_time_ms: 15999\n"
             "journal:\n  enabled: on\n");
    ok(c != NULL, "39999 ms with the journal is below 40 s (%s)", err);
    rd_conf_free(c);
    fails("rabbitmq:\n  heartbeat: 20\nmongodb:\n  max_time_ms: 16000\n"
          "journal:\n  enabled: on\n",
          "6:3: journal.enabled: one task can block a worker for 40000 ms",
          "the journal write counts in the budget");
    fails("journal:\n  retention: 59\n", "2:14: journal.retention: 59 is out of range (60..",
          "a retention below a minute");

    fails("rabbitmq:\n  heartbeat: 10\n",
          "2:3: rabbitmq.heartbeat: one task can block a worker for 40500 ms "
          "(server selection 5500 + aggregation 25000 + result publish and "
          "confirm 5000 + dead-letter publish and confirm 5000 + journal "
          "write 0), which must be below twice rabbitmq.heartbeat (2 x 10s = 20000 ms): "
          "rabbitmq-c services heartbeats only between calls, so the broker "
          "would drop the connection", "heartbeat budget");
    fails("rabbitmq:\n  heartbeat: 20\nmongodb:\n  max_time_ms: 35000\n",
          "4:3: mongodb.max_time_ms: one task can block a worker for 55500 ms "
          "(server selection 5500 + aggregation 40000 + ",
          "heartbeat budget at the later key");
    /* 2 x 20 s = 40000 ms: 5500 + (19500 + 5000) + 5000 + 5000 is 40000 */
    fails("rabbitmq:\n  heartbeat: 20\nmongodb:\n  max_time_ms: 19500\n",
          "4:3: mongodb.max_time_ms: one task can block a worker for 40000 ms",
          "a total equal to the limit");
    c = load("rabbitmq:\n  heartbeat: 20\nmongodb:\n  max_time_ms: 19499\n");
    ok(c != NULL, "39999 ms is below 40 s (%s)", err);
    rd_conf_free(c);
    fails("rabbitmq:\n  heartbeat: 21\n  confirm_timeout_ms: 5751\n",
          "3:3: rabbitmq.confirm_timeout_ms: one task can block a worker for "
          "42002 ms", "both confirms count");
    c = load("mongodb:\n  connect_timeout_ms: 2000\n  max_time_ms: 40000\n");
    ok(c != NULL, "2500 + 45000 + 10000 is below 60 s (%s)", err);
    rd_conf_free(c);
    fails("mongodb:\n  connect_timeout_ms: 5000\n  max_time_ms: 40000\n",
          "3:3: mongodb.max_time_ms: one task can block a worker for 60500 ms "
          "(server selection 5500 + ", "connect_timeout_ms counts");

    /* the uri's own options are what the driver runs with */
    fails("mongodb:\n  uri: mongodb://h/?socketTimeoutMS=45000\n",
          "2:3: mongodb.uri: one task can block a worker for 60500 ms "
          "(server selection 5500 + aggregation 45000 + ", "uri socketTimeoutMS");
    fails("mongodb:\n  uri: mongodb://h/?sockettimeoutms=0\n",
          "2:3: mongodb.uri: one task can block a worker for 315500 ms "
          "(server selection 5500 + aggregation 300000 + ",
          "socketTimeoutMS=0 is the driver's 5 min");
    fails("mongodb:\n  uri: mongodb://h/?retryReads=true\n",
          "2:3: mongodb.uri: one task can block a worker for 71000 ms "
          "(server selection 11000 + aggregation 50000 + ", "retryReads doubles");
    c = load("rabbitmq:\n  heartbeat: 36\nmongodb:\n"
             "  uri: mongodb://h/?retryReads=true\n");
    ok(c != NULL && c->mongodb.limits.retry_reads, "71000 ms below 72 s (%s)",
       err);
    rd_conf_free(c);
    c = load("mongodb:\n  uri: mongodb://h/?serverSelectionTryOnce=false\n");
    ok(c != NULL, "5000 + 5000 + 25000 + 10000 fits (%s)", err);
    rd_conf_free(c);
    fails("mongodb:\n  uri: mongodb://h/?serverSelectionTryOnce=false"
          "&serverSelectionTimeoutMS=30000\n",
          "2:3: mongodb.uri: one task can block a worker for 70000 ms "
          "(server selection 35000 + ",
          "serverSelectionTimeoutMS without try-once");
    c = load("mongodb:\n  uri: mongodb://h/?serverSelectionTimeoutMS=30000\n");
    ok(c != NULL, "serverSelectionTimeoutMS does not count with try-once (%s)",
       err);
    rd_conf_free(c);
    c = load("mongodb:\n  uri: mongodb://h/?connectTimeoutMS=0\n");
    ok(c != NULL && c->mongodb.limits.connect_timeout_ms == 10000,
       "connectTimeoutMS=0 is the driver's 10 s (%s)", err);
    rd_conf_free(c);
    fails("mongodb:\n  uri: mongodb://h/?socketTimeoutMS=-1\n",
          "2:3: mongodb.uri: socketTimeoutMS=-1: a negative timeout never "
          "expires", "negative timeout");
    fails("mongodb:\n  uri: mongodb://h/?socketTimeoutMS=15000\n",
          "2:3: mongodb.uri: the uri's socketTimeoutMS (15000) must be above "
          "mongodb.max_time_ms (20000)", "socket timeout below max_time_ms");
    c = load("rabbitmq:\n  heartbeat: 0\nmongodb:\n  max_time_ms: 3600000\n");
    ok(c != NULL, "no budget with heartbeats off");
    rd_conf_free(c);
}


/*
 * Path keys are made absolute against the configuration file's directory,
 * whatever the current directory: here /tmp, where path and secret live.
 */
static void
test_paths(void)
{
    struct rd_conf  *c;
    char             doc[512], want[512], cwd[4096];
    const char      *base, *rel;

    c = load("pid: run/r.pid\nerror_log: logs/e.log\n");
    ok(c != NULL, "relative pid and error_log (%s)", err);
    if (c != NULL) {
        is_str(c->pid, "/tmp/run/r.pid", "pid against the file's directory");
        is_str(c->error_log, "/tmp/logs/e.log", "error_log too");
        rd_conf_free(c);
    }
    c = load("pid: /var/run/x.pid\nerror_log: stderr\n");
    ok(c != NULL, "absolute pid, error_log stderr (%s)", err);
    if (c != NULL) {
        is_str(c->pid, "/var/run/x.pid", "an absolute path is kept");
        is_str(c->error_log, "stderr", "error_log stderr is not a file name");
        rd_conf_free(c);
    }
    c = load("pid: ./r.pid\nerror_log: .//a/./e.log\n");
    ok(c != NULL, "./ paths (%s)", err);
    if (c != NULL) {
        is_str(c->pid, "/tmp/r.pid", "leading ./ dropped");
        is_str(c->error_log, "/tmp/a/./e.log", "leading .// dropped");
        rd_conf_free(c);
    }
    c = load("error_log: ./stderr\n");
    ok(c != NULL && !strcmp(c->error_log, "/tmp/stderr"),
       "./stderr is a file named stderr");
    rd_conf_free(c);

    c = load("rabbitmq:\n  tls: on\n  tls_ca_file: ca.pem\n"
             "  tls_cert_file: certs/c.pem\n  tls_key_file: ../k.pem\n");
    ok(c != NULL, "relative tls files (%s)", err);
    if (c != NULL) {
        is_str(c->rabbitmq.tls_ca_file, "/tmp/ca.pem", "tls_ca_file");
        is_str(c->rabbitmq.tls_cert_file, "/tmp/certs/c.pem", "tls_cert_file");
        is_str(c->rabbitmq.tls_key_file, "/tmp/../k.pem", "tls_key_file");
        rd_conf_free(c);
    }

    /* read from the file's directory, not from the current one */
    base = strrchr(secret, '/') + 1;
    spew(secret, "pw\n", 3);
    snprintf(want, sizeof(want), "/tmp/%s", base);
    snprintf(doc, sizeof(doc), "rabbitmq:\n  password_file: %s\n"
             "mongodb:\n  user: u\n  password_file: ./%s\n", base, base);
    c = load(doc);
    ok(c != NULL, "relative password files (%s)", err);
    if (c != NULL) {
        is_str(c->rabbitmq.password_file, want, "rabbitmq.password_file");
        is_str(c->rabbitmq.password, "pw", "rabbitmq password read");
        is_str(c->mongodb.password_file, want, "mongodb.password_file");
        is_str(c->mongodb.password, "pw", "mongodb password read");
        rd_conf_free(c);
    }

    setenv("RD_T_RUN", "run", 1);
    c = load("pid: ${RD_T_RUN}/x.pid\n");
    ok(c != NULL && !strcmp(c->pid, "/tmp/run/x.pid"),
       "expanded, then made absolute");
    rd_conf_free(c);

    /* a configuration file named by a relative path */
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        perror("getcwd");
        exit(2);
    }
    spew(path, "pid: run/r.pid\n", 15);
    rel = strrchr(path, '/') + 1;
    if (chdir("/tmp") != 0) {
        perror("chdir");
        exit(2);
    }
    c = rd_conf_load(rel, err, sizeof(err));
    ok(c != NULL && !strcmp(c->pid, "/tmp/run/r.pid"),
       "file in the current directory: pid %s (%s)", c ? c->pid : "-", err);
    rd_conf_free(c);
    if (chdir("/") != 0) {
        perror("chdir");
        exit(2);
    }
    c = rd_conf_load(path + 1, err, sizeof(err));
    ok(c != NULL && !strcmp(c->pid, "/tmp/run/r.pid"),
       "tmp/FILE from /: pid %s (%s)", c ? c->pid : "-", err);
    rd_conf_free(c);
    if (chdir(cwd) != 0) {
        perror("chdir");
        exit(2);
    }
}


static void
test_world_readable(void)
{
    static const struct {
        const char  *yaml;
        mode_t       mode;
        int          flag;
    } cases[] = {
        { "rabbitmq:\n  password: x\n", 0644, 1 },
        { "rabbitmq:\n  password: x\n", 0600, 0 },
        { "rabbitmq:\n  password: ${RD_T_HOST}\n", 0644, 0 },
        { "mongodb:\n  uri: mongodb://u:p@h/\n", 0644, 1 },
        { "mongodb:\n  uri: mongodb://u@h/\n", 0644, 0 },
        { "mongodb:\n  user: u\n  password: p\n", 0644, 1 },
        { "daemon: off\n", 0644, 0 },
    };
    struct rd_conf  *c;
    size_t           i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        spew(path, cases[i].yaml, strlen(cases[i].yaml));
        chmod(path, cases[i].mode);
        c = rd_conf_load(path, err, sizeof(err));
        ok(c != NULL && c->world_readable_secret == cases[i].flag,
           "world_readable_secret case %zu is %d", i, cases[i].flag);
        rd_conf_free(c);
    }
    chmod(path, 0600);
}


static void
test_dump(void)
{
    struct rd_conf  *c;
    char            *d, doc[512];

    setenv("RD_T_DOLLAR", "x$y", 1);
    c = load("user: nobody\n"
             "worker_processes: auto\n"
             "error_log: \"/var/log/a log#1\"\n"
             "rabbitmq:\n"
             "  password: \"hunter2\"\n"
             "  vhost: ${RD_T_DOLLAR}\n"
             "  heartbeat: 2m\n"
             "mongodb:\n"
             "  uri: mongodb://app:t0ps3cret@db1,db2/?replicaSet=rs\n"
             "report:\n"
             "  price_per_second: 0.1\n"
             "status:\n"
             "  listen: 127.0.0.1:9187\n");
    ok(c != NULL, "config to dump (%s)", err);
    if (c == NULL)
        return;
    d = dump(c);
    like(d, "  password: \"********\"\n", "rabbitmq password masked");
    ok(strstr(d, "hunter2") == NULL, "no rabbitmq password in the dump");
    like(d, "  uri: \"mongodb://app:********@db1,db2/?replicaSet=rs\"\n",
         "password in mongodb.uri masked");
    ok(strstr(d, "t0ps3cret") == NULL, "no mongodb password in the dump");
    like(d, "worker_processes: auto\n", "auto kept");
    like(d, "  vhost: \"x$$y\"\n", "$ doubled");
    like(d, "error_log: \"/var/log/a log#1\"\n", "quoted when needed");
    like(d, "  heartbeat: 120s\n", "duration");
    like(d, "worker_shutdown_timeout: 30s\n", "default duration");
    like(d, "  tls_ca_file: ~\n", "unset key");
    like(d, "  dead_letter_queue: reports.tasks.dead\n", "derived key");
    like(d, "log_level: info\n", "enum");
    like(d, "daemon: off\n", "bool");
    like(d, "  max_message_size: 1048576\n", "size");
    like(d, "  listen: 127.0.0.1:9187\n", "host:port is plain");
    like(d, "  price_per_second: 0.1\n", "a decimal printed back without trailing zeros");
    ok(strstr(d, "  host: 127.0.0.1\n") != NULL
       && strstr(d, "auth_source") == NULL,
       "rabbitmq.host dumped, mongodb parts folded into the uri");
    free(d);
    rd_conf_free(c);

    round_trip(example, "example");
    round_trip("", "defaults");
    round_trip("report:\n  price_per_second: 1234.5678\n", "a decimal with 4 decimals");
    round_trip("report:\n  price_per_second: 1000000\n", "the largest price");
    {
        c = load("report:\n  price_per_second: 0.0001\n");
        d = c != NULL ? dump(c) : NULL;
        like(d != NULL ? d : "", "  price_per_second: 0.0001\n", "0.0001 printed back as written");
        free(d);
        rd_conf_free(c);
        c = load("report:\n  price_per_second: 12.50\n");
        d = c != NULL ? dump(c) : NULL;
        like(d != NULL ? d : "", "  price_per_second: 12.5\n", "12.50 printed back as 12.5");
        free(d);
        rd_conf_free(c);
    }
    round_trip("worker_processes: auto\nworker_shutdown_timeout: 1500ms\n"
               "user: \"null\"\npid: \"*x\"\nerror_log: \"a\\tb\\\\c\\\"d:\"\n"
               "rabbitmq:\n  password: \"$$\"\n  vhost: \"-v\"\n"
               "  tls: on\n  tls_ca_file: \"/etc/ssl/ca b.pem\"\n"
               "mongodb:\n  host: h\n  user: \"u s\"\n  password: \"p:w@\"\n"
               "report:\n  price_per_second: 0.1\n", "odd values");
    snprintf(doc, sizeof(doc), "rabbitmq:\n  password_file: %s\n", secret);
    round_trip(doc, "password_file");

    is_str(rd_log_level_name(RD_LOG_DEBUG), "debug", "level name debug");
    is_str(rd_log_level_name(RD_LOG_WARN), "warn", "level name warn");
    is_str(rd_log_level_name(RD_LOG_ERROR), "error", "level name error");
    is_str(rd_log_level_name(99), "unknown", "level name out of range");
}


/* mongodb.uri as -T prints it: every secret masked, the rest as written. */
static void
dumped_uri(const char *uri, const char *want, const char *name)
{
    struct rd_conf  *c;
    char             doc[1024], line[1024], *d;

    snprintf(doc, sizeof(doc), "mongodb:\n  uri: \"%s\"\n", uri);
    c = load(doc);
    ok(c != NULL, "%s: loads (%s)", name, err);
    if (c == NULL)
        return;
    d = dump(c);
    snprintf(line, sizeof(line), "  uri: %s\n", want);
    like(d, line, "%s", name);
    free(d);
    rd_conf_free(c);
}


static void
refused_uri(const char *uri, const char *hidden, const char *name)
{
    struct rd_conf  *c;
    char             doc[1024];

    snprintf(doc, sizeof(doc), "mongodb:\n  uri: \"%s\"\n", uri);
    c = load(doc);
    if (!ok(c == NULL, "%s: refused at load", name))
        rd_conf_free(c);
    like(err, "mongodb.uri", "%s: the message names the key", name);
    ok(strstr(err, hidden) == NULL, "%s: the message does not echo the secret (%s)", name, err);
}


static void
test_dump_secrets(void)
{
    dumped_uri("mongodb://app:pw@db1/?tlsCertificateKeyFilePassword=k3y&replicaSet=rs",
               "\"mongodb://app:********@db1/?tlsCertificateKeyFilePassword=********"
               "&replicaSet=rs\"",
               "tlsCertificateKeyFilePassword masked");
    dumped_uri("mongodb+srv://c.example.com/?authSource=admin&password=qp&appname=r",
               "\"mongodb+srv://c.example.com/?authSource=admin&password=********&appname=r\"",
               "password= option masked, no userinfo");
    dumped_uri("mongodb://db1/?SSLPEMKEYPASSWORD=a;authMechanism=MONGODB-AWS;"
               "authMechanismProperties=AWS_SESSION_TOKEN:t0k",
               "\"mongodb://db1/?SSLPEMKEYPASSWORD=********;authMechanism=MONGODB-AWS;"
               "authMechanismProperties=********\"",
               "option names in any case, ';' separators, session token masked");
    /* Unescaped separators in a secret make the uri invalid: it is refused
     * at load (so -T never prints it), and the message does not echo it. */
    refused_uri("mongodb://db1/?password=a&b&c&w=1", "a&b&c",
                "an unescaped '&' in a password= value");
    refused_uri("mongodb://u:pa/ss?x@y#z@db1:27017/d?w=1", "pa/ss?x@y#z",
                "unescaped /?#@ in the userinfo's password");
    dumped_uri("mongodb://CN=client,O=x@db1/?authMechanism=MONGODB-X509&w=majority",
               "\"mongodb://CN=client,O=x@db1/?authMechanism=MONGODB-X509&w=majority\"",
               "a URI without secrets unchanged");
    dumped_uri("mongodb://db1:27017,db2:27017/calls",
               "\"mongodb://db1:27017,db2:27017/calls\"", "hosts and ports unchanged");
    round_trip("mongodb:\n  uri: \"mongodb://u:p@h/?tlsCertificateKeyFilePassword=k&w=1\"\n",
               "masked uri options");
}



/* The keys a reload cannot change, asked of the table. */
static void
test_reload(void)
{
    struct rd_conf  *a, *b;
    const char      *key;

    a = load("pid: /run/a.pid\nworker_processes: 3\n");
    b = load("pid: /run/b.pid\nworker_processes: 4\ndaemon: on\n");
    ok(a != NULL && b != NULL, "two configurations (%s)", err);
    if (a == NULL || b == NULL) {
        rd_conf_free(a);
        rd_conf_free(b);
        return;
    }
    key = rd_conf_reload_change(a, b, NULL);
    is_str(key, "daemon", "daemon cannot change on reload");
    key = rd_conf_reload_change(a, b, key);
    is_str(key, "pid", "pid cannot change on reload");
    ok(rd_conf_reload_change(a, b, key) == NULL,
       "worker_processes can: no more keys");
    ok(rd_conf_reload_change(a, a, NULL) == NULL, "same configuration");
    rd_conf_free(b);

    b = load("pid: /run/../run/a.pid\nlog_level: debug\n");
    ok(b != NULL && rd_conf_reload_change(a, b, NULL) != NULL,
       "a pid path is compared as written");
    rd_conf_free(b);
    b = load("pid: a.pid\n");
    ok(b != NULL, "relative pid (%s)", err);
    if (b != NULL) {
        key = rd_conf_reload_change(a, b, NULL);
        is_str(key, "pid", "relative pid made absolute, then compared");
    }
    rd_conf_free(b);
    rd_conf_free(a);
}

int
main(void)
{
    int  fd;

    fd = mkstemp(path);
    if (fd == -1) {
        perror("mkstemp");
        return 2;
    }
    close(fd);

    test_example();
    test_empty();
    test_syntax();
    test_structure();
    test_types();
    test_env();
    test_passwords();
    test_paths();
    test_checks();
    test_world_readable();
    test_dump();
    test_dump_secrets();
    test_reload();

    unlink(path);
    unlink(secret);
    return done_testing();
}
