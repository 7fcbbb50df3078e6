/*
 * test_conf_checks.c -- reporterd.yaml beyond single keys: passwords
 * (password_file, a world-readable secret), the checks across keys,
 * paths made absolute, the dump (round trips, secrets hidden) and which
 * changes a reload may take.
 *
 * Each case writes its YAML to one temp file (conf_fixture.h); error
 * messages are matched as "PATH:LINE:COL: KEY: message".
 */
#include <sys/stat.h>
#include <time.h>

#include "conf_fixture.h"

static char  secret[] = "/tmp/test_conf_secret_XXXXXX";


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

    setenv("RD_T_HOST", "mq.example", 1);       /* case 2's password */
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
    if (fixture_open() != 0)
        return 2;

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
