/*
 * test_conf.c -- reporterd.yaml loading: defaults, every type, environment
 * expansion and file:line:col errors.  The checks across keys, paths,
 * passwords, the dump and reload are in test_conf_checks.c.
 *
 * Each case writes its YAML to one temp file (conf_fixture.h); error
 * messages are matched as "PATH:LINE:COL: KEY: message".
 */
#include <sys/stat.h>
#include <time.h>

#include "conf_fixture.h"
#include "cpus.h"
#include "envfile.h"

#ifndef RD_DEFAULT_PID
#define RD_DEFAULT_PID  "/usr/local/var/run/reporterd.pid"
#endif


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
    ncpu = rd_cpus_usable("/sys/fs/cgroup", "/proc/self/cgroup");
    ok(c != NULL, "worker_processes: auto");
    if (c != NULL) {
        is_int(c->worker_processes, ncpu < 1 ? 1 : ncpu > 1024 ? 1024 : ncpu,
               "auto is the number of CPUs this process may use");
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
    c = load("log_level: warning\n");
    ok(c != NULL && c->log_level == RD_LOG_WARN, "log_level: warning is warn");
    rd_conf_free(c);
    fails("log_level: Warning\n", "1:12: log_level: \"Warning\" is not one of",
          "aliases are lower case, as the words");
    fails("rabbitmq:\n  queue_type: warning\n", "2:15: rabbitmq.queue_type: "
          "\"warning\" is not one of", "an alias belongs to its own key");
    c = load("status:\n  listen: localhost:9187\n");
    ok(c != NULL, "status.listen: localhost:PORT");
    rd_conf_free(c);
    c = load("status:\n  listen: \":9187\"\n");
    ok(c != NULL, "status.listen: :PORT");
    rd_conf_free(c);
    fails("status:\n  listen: localhost\n", "2:3: status.listen: \"localhost\": expected HOST:PORT",
          "status.listen without a port");
    fails("status:\n  listen: \":0\"\n", "2:3: status.listen: \":0\": port must be 1..65535",
          "status.listen :0");
    fails("status:\n  listen: example.com:9187\n",
          "2:3: status.listen: \"example.com:9187\": \"example.com\" is not an IP address",
          "status.listen: no name is looked up but localhost");
    fails("rabbitmq:\n  queue_type: stream\n", "2:15: rabbitmq.queue_type: "
          "\"stream\" is not one of classic quorum", "bad queue_type");

    /* rabbitmq.host: one node as before, or a cluster's nodes */
    {
        char host[256], why[160];
        int  port;

        c = load("rabbitmq:\n  host: [h1, \"h2:5673\", \"[::1]:5674\", \"::2\"]\n  port: 5600\n");
        ok(c != NULL && strcmp(c->rabbitmq.host, "h1,h2:5673,[::1]:5674,::2") == 0,
           "rabbitmq.host: a sequence is kept joined by commas");
        ok(c != NULL && rd_conf_amqp_node(&c->rabbitmq, -1, host, sizeof(host), &port, why,
                                          sizeof(why)) == 4, "four nodes");
        ok(c != NULL && rd_conf_amqp_node(&c->rabbitmq, 0, host, sizeof(host), &port, why,
                                          sizeof(why)) == 4 && strcmp(host, "h1") == 0 && port == 5600,
           "a node without a port takes rabbitmq.port");
        ok(c != NULL && rd_conf_amqp_node(&c->rabbitmq, 1, host, sizeof(host), &port, why,
                                          sizeof(why)) == 4 && strcmp(host, "h2") == 0 && port == 5673,
           "host:port");
        ok(c != NULL && rd_conf_amqp_node(&c->rabbitmq, 2, host, sizeof(host), &port, why,
                                          sizeof(why)) == 4 && strcmp(host, "::1") == 0 && port == 5674,
           "[IPv6]:port");
        ok(c != NULL && rd_conf_amqp_node(&c->rabbitmq, 3, host, sizeof(host), &port, why,
                                          sizeof(why)) == 4 && strcmp(host, "::2") == 0 && port == 5600,
           "a bare IPv6 address, as a single host always was");
        rd_conf_free(c);
        c = load("rabbitmq:\n  host: 10.0.0.7\n");
        ok(c != NULL && rd_conf_amqp_node(&c->rabbitmq, 0, host, sizeof(host), &port, why,
                                          sizeof(why)) == 1 && strcmp(host, "10.0.0.7") == 0 && port == 5672,
           "a single host, as before");
        rd_conf_free(c);
        setenv("RD_TEST_HOSTS", "n1,n2:5673,n3", 1);
        c = load("rabbitmq:\n  host: ${RD_TEST_HOSTS}\n");
        ok(c != NULL && rd_conf_amqp_node(&c->rabbitmq, -1, host, sizeof(host), &port, why,
                                          sizeof(why)) == 3, "a comma-separated list from the environment");
        rd_conf_free(c);
        unsetenv("RD_TEST_HOSTS");
    }
    fails("rabbitmq:\n  host: []\n", "2:9: rabbitmq.host: an empty sequence", "an empty list");
    fails("rabbitmq:\n  host: [a, \"\"]\n", "2:13: rabbitmq.host: an empty item", "an empty item");
    fails("rabbitmq:\n  host: \"a,,b\"\n", "2:3: rabbitmq.host: entry 2 is empty", "an empty entry");
    fails("rabbitmq:\n  host: \"a:0\"\n", "2:3: rabbitmq.host: entry 1: the port must be a number from 1 to 65535",
          "port 0");
    fails("rabbitmq:\n  host: \"a:65536\"\n", "2:3: rabbitmq.host: entry 1: the port must be a number from 1 to 65535",
          "port 65536");
    fails("rabbitmq:\n  host: [[a]]\n", "2:10: rabbitmq.host: each item of the sequence must be a value, not a sequence",
          "a nested sequence");
    fails("rabbitmq:\n  user: [a, b]\n", "2:9: rabbitmq.user: expected a single value, not a sequence",
          "only a list key takes a sequence");

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

    /* ${VAR:-}: an empty default written out leaves the key unset */
    c = load("mongodb:\n  host: db.example\n  user: ${RD_T_EMPTY:-}\n  password: ${RD_T_UNSET:-}\n");
    ok(c != NULL, "${VAR:-} empty: the key unset (%s)", err);
    if (c != NULL) {
        is_str(c->mongodb.user, NULL, "no user: no authentication");
        is_str(c->mongodb.uri, "mongodb://db.example:27017/", "the uri built without user");
        rd_conf_free(c);
    }
    c = load("mongodb:\n  uri: ${RD_T_EMPTY:-}\n  host: ${RD_T_HOST}\n");
    ok(c != NULL && strcmp(c->mongodb.uri, "mongodb://mq.example:27017/") == 0,
       "an empty ${MONGODB_URI:-}: the parts make the uri");
    rd_conf_free(c);
    setenv("RD_T_URI", "mongodb://u%40x:p@db2.example:27018/?replicaSet=rs", 1);
    c = load("mongodb:\n  uri: ${RD_T_URI:-}\n  host: ${RD_T_HOST}\n  user: ${RD_T_HOST}\n");
    ok(c != NULL && strcmp(c->mongodb.uri, "mongodb://u%40x:p@db2.example:27018/?replicaSet=rs") == 0,
       "a uri wins over parts from the environment (%s)", err);
    rd_conf_free(c);
    fails("mongodb:\n  uri: ${RD_T_URI}\n  host: db.example\n",
          "3:3: mongodb.host: uri and host are mutually exclusive",
          "a part written in the file still conflicts with a uri");
    setenv("RD_T_USER", "a b@c", 1);
    setenv("RD_T_PASS", "p:/?#[]@!$&'()*+,;=%", 1);
    c = load("mongodb:\n  host: h\n  port: 1\n  user: ${RD_T_USER:-}\n  password: ${RD_T_PASS:-}\n");
    ok(c != NULL && strcmp(c->mongodb.uri,
       "mongodb://a%20b%40c:p%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25@h:1/") == 0,
       "user and password percent-encoded (%s)", c != NULL ? c->mongodb.uri : err);
    rd_conf_free(c);
    fails("rabbitmq:\n  host: ${RD_T_EMPTY}\n",
          "2:9: rabbitmq.host: must not be empty", "a plain ${VAR} empty is still an error");
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


/* cpus.h: the quota of cpu.max, and a made-up cgroup tree */
static void
put_file(const char *file, const char *text)
{
    FILE *f = fopen(file, "w");

    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void
test_cpus(void)
{
    char root[] = "/tmp/test-cpus.XXXXXX", p[512], self[512];
    long base;

    is_int((int) rd_cpus_quota("max 100000\n"), 0, "cpu.max: max is no quota");
    is_int((int) rd_cpus_quota("150000 100000\n"), 2, "cpu.max: 1.5 CPUs round up to 2");
    is_int((int) rd_cpus_quota("100000 100000\n"), 1, "cpu.max: 1 CPU");
    is_int((int) rd_cpus_quota("5000 100000\n"), 1, "cpu.max: a twentieth is 1");
    is_int((int) rd_cpus_quota("junk"), 0, "cpu.max: junk is no quota");
    if (mkdtemp(root) == NULL) {
        ok(0, "mkdtemp");
        return;
    }
    base = rd_cpus_usable(root, "/nonexistent/cgroup");
    ok(base >= 1, "without a cgroup file: online CPUs in the affinity mask (%ld)", base);
    snprintf(p, sizeof(p), "%s/a", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/a/b", root);
    mkdir(p, 0700);
    snprintf(self, sizeof(self), "%s/self", root);
    put_file(self, "0::/a/b\n");
    snprintf(p, sizeof(p), "%s/a/b/cpu.max", root);
    put_file(p, "max 100000\n");
    is_int((int) rd_cpus_usable(root, self), (int) base, "no quota anywhere: as many as before");
    snprintf(p, sizeof(p), "%s/a/cpu.max", root);
    put_file(p, "100000 100000\n");
    is_int((int) rd_cpus_usable(root, self), 1, "a parent's quota of 1 CPU counts");
    put_file(p, "900000000 100000\n");
    is_int((int) rd_cpus_usable(root, self), (int) base, "a quota above the CPUs changes nothing");
    put_file(self, "12:cpu:/x\n0::/\n");
    is_int((int) rd_cpus_usable(root, self), (int) base, "the root cgroup, v1 lines skipped");
    snprintf(p, sizeof(p), "%s/a/b/cpu.max", root);
    unlink(p);
    snprintf(p, sizeof(p), "%s/a/cpu.max", root);
    unlink(p);
    snprintf(p, sizeof(p), "%s/a/b", root);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/a", root);
    rmdir(p);
    unlink(self);
    rmdir(root);
}

/* envfile.h: the old service's .env.local as it is */
static void
test_envfile(void)
{
    char        file[] = "/tmp/test-envfile.XXXXXX", e[512];
    int         fd = mkstemp(file);
    FILE       *f;
    const char *v;

    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        ok(0, "mkstemp");
        return;
    }
    fputs("# Environment for docker-compose\n"
          "\n"
          "MONGODB_HOST=mongo_db\n"
          "  MONGODB_PORT = 27017  \n"
          "export RD_E_EXPORTED=yes\n"
          "RD_E_EMPTY=\n"
          "RD_E_COMMENT=value # a comment\n"
          "RD_E_HASH=a#b\n"
          "RD_E_SQ='a \\n $x # y'\n"
          "RD_E_DQ=\"line\\nnext \\\"q\\\" # not a comment\"  # comment\n"
          "RD_E_OVER=from-file\n"
          "RD_E_HASHVAL=#abc\n"
          "export\tRD_E_TAB=t\n"
          "RD_E_BARE\n"
          "RD_E_EQ=a=b=c\r\n", f);
    fclose(f);
    setenv("RD_E_OVER", "from-env", 1);
    ok(rd_envfile_load(file, e, sizeof(e)) == 0, "a dotenv file loads (%s)", e);
    is_str(getenv("MONGODB_HOST"), "mongo_db", "NAME=value");
    is_str(getenv("MONGODB_PORT"), "27017", "blanks around = and after the value");
    is_str(getenv("RD_E_EXPORTED"), "yes", "export NAME=value");
    is_str(getenv("RD_E_EMPTY"), "", "an empty value");
    is_str(getenv("RD_E_COMMENT"), "value", "\" #\" starts a comment");
    is_str(getenv("RD_E_HASH"), "a#b", "a # inside a word stays");
    v = getenv("RD_E_SQ");
    is_str(v, "a \\n $x # y", "single quotes: as written");
    is_str(getenv("RD_E_DQ"), "line\nnext \"q\" # not a comment", "double quotes: escapes");
    is_str(getenv("RD_E_OVER"), "from-file", "the file wins, as the old service's load_dotenv(override=True)");
    is_str(getenv("RD_E_HASHVAL"), "#abc", "a value that starts with # is a value");
    is_str(getenv("RD_E_TAB"), "t", "export and a tab");
    ok(getenv("RD_E_BARE") == NULL, "a NAME alone sets nothing");
    is_str(getenv("RD_E_EQ"), "a=b=c", "= inside a value, CRLF");
    unlink(file);

    fd = mkstemp(file);
    if (fd >= 0 && (f = fdopen(fd, "w")) != NULL) {
        fputs("GOOD=1\nthis is not a variable\n", f);
        fclose(f);
        ok(rd_envfile_load(file, e, sizeof(e)) != 0 && strstr(e, ":2: expected NAME=value") != NULL,
           "a line that is no NAME=value: its line number (%s)", e);
        unlink(file);
    }
    ok(rd_envfile_load("/nonexistent/.env", e, sizeof(e)) != 0
       && strstr(e, "/nonexistent/.env: No such file") != NULL, "a missing file (%s)", e);
}

int
main(void)
{
    if (fixture_open() != 0)
        return 2;

    test_example();
    test_empty();
    test_syntax();
    test_structure();
    test_types();
    test_env();
    test_cpus();
    test_envfile();

    unlink(path);
    return done_testing();
}
