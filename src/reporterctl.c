/*
 * reporterctl.c -- the operator's tool, reading the same reporterd.yaml:
 *
 *   reporterctl [-c FILE] seed [--phones N] [--records N] [--seed S] [--drop | --if-empty]
 *   reporterctl [-c FILE] send [-n N] [--phones-per-task K] [--max-phone P]
 *   reporterctl [-c FILE] results [-n N] [--timeout SEC]
 *   reporterctl [-c FILE] import FILE|- [--format json|ndjson|csv] [--batch N]
 *                                 [--drop | --if-empty]
 *   reporterctl [-c FILE] bench [-n N] [--concurrency C | --rate R] [--phones LIST] [--json]
 *   reporterctl [-c FILE] rollup [--status | --fold | --rebuild |
 *                                 --verify [--phones LIST | --sample N | PHONE...] [--repair]]
 *   reporterctl [-c FILE] status [--json] ID... | [--since DUR] [--status OUTCOME]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "broker.h"
#include "ctl.h"
#include "conf.h"
#include "envfile.h"
#include "log.h"
#include "shm.h"
#include "store.h"
#include "task.h"
#include "util.h"

#ifndef RD_DEFAULT_CONF
#define RD_DEFAULT_CONF "/usr/local/etc/reporterd/reporterd.yaml"
#endif

#define BATCH 10000
#define MAX_ENV_FILES 16

/* Each command's lines of the usage. */
static const struct {
    const char *name;
    const char *help;
} helps[] = {
    { "seed", "  seed     generate call records into MongoDB and index them by phone\n"
              "           --phones N (200)  --records N per phone (10000)  --seed S (42)\n"
              "           --drop | --if-empty (do nothing when the collection holds a record)\n" },
    { "send", "  send     publish report tasks with random phones to the task queue\n"
              "           -n N (10)  --phones-per-task K (10)  --max-phone P (200)  --seed S\n" },
    { "results", "  results  print results from the result queue (and ack them)\n"
                 "           -n N (all, until --timeout)  --timeout SEC (10)\n" },
    { "import", "  import   stream call records from FILE (JSON array, NDJSON or CSV; - = stdin)\n"
                "           --format json|ndjson|csv  --batch N (10000)  --drop | --if-empty\n"
                "           exit status 3: imported, but some records were malformed\n" },
    { "bench", "  bench    publish tasks and measure throughput and latency\n"
               "           -n N (100)  --concurrency C (4) | --rate R/s  --phones-per-task K (10)\n"
               "           --max-phone P (200) | --phones 1,2,3  --timeout SEC (300)  --json\n" },
    { "rollup", "  rollup   rollup mode (report.mode: rollup): --status (default): lag and lease;\n"
                "           --fold: fold every unfolded record now; --verify [--phones LIST |\n"
                "           --sample N | PHONE...] [--repair]: compare the rollups (all, these\n"
                "           phones, or N at random) with live mode, exit status 4 when one\n"
                "           differs, --repair recomputes those; --rebuild: recompute every rollup\n" },
    { "status", "  status   what the task journal says: by correlation_id or message_id, or a list\n"
                "           ID...  --json  |  --since DUR (1h)  --status complete|error|dead_lettered\n"
                "           exit status 3: some IDs are not in the journal\n" },
};

#define NHELPS (sizeof(helps) / sizeof(helps[0]))

static void
usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "Usage: reporterctl [-c FILE] COMMAND [OPTIONS]\n"
            "       reporterctl help [COMMAND] | --help | --version\n"
            "\n"
            "-c FILE (--config FILE) may come anywhere; the default is " RD_DEFAULT_CONF ".\n"
            "--env-file FILE reads NAME=value lines (a dotenv file) into the environment first.\n"
            "Exit status: 0 done, 64 a bad command or argument, 78 the configuration\n"
            "cannot be loaded, 1 a failure at run time, or as a command says.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < NHELPS; i++)
        fputs(helps[i].help, out);
}

/* The usage lines of cmd, or -1 when there is no such command. */
static int
command_help(FILE *out, const char *cmd)
{
    size_t i;

    for (i = 0; i < NHELPS; i++) {
        if (strcmp(helps[i].name, cmd) == 0) {
            fprintf(out, "Usage: reporterctl [-c FILE] %s [OPTIONS]\n\n%s", cmd, helps[i].help);
            return 0;
        }
    }
    return -1;
}

int
rd_ctl_arg_long(const char *name, const char *s, long min, long max, long *out)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "reporterctl: %s \"%s\" is not an integer from %ld to %ld\n",
                name, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int
rd_ctl_arg_double(const char *name, const char *s, double min, double *out)
{
    char  *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v >= min) || v > 1e12) {
        fprintf(stderr, "reporterctl: %s \"%s\" is not a number from %g\n", name, s, min);
        return -1;
    }
    *out = v;
    return 0;
}

int
rd_ctl_no_more(const char *cmd, int argc, char **argv, int first)
{
    if (first >= argc)
        return 0;
    fprintf(stderr, "reporterctl: %s takes no argument \"%s\" (reporterctl help %s)\n", cmd,
            argv[first], cmd);
    return EX_USAGE;
}

/* xorshift64*: a fixed seed gives the same data set everywhere. */
static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void
progress(int tty, int64_t done, int64_t total, double started, int final)
{
    double el = rd_now_sec() - started, rate = el > 0 ? done / el : 0;

    if (tty)
        fprintf(stderr, "\rseed: %" PRId64 "/%" PRId64 " records (%3.0f%%), %.0f/s, ETA %.0f s%s",
                done, total, 100.0 * done / total, rate,
                rate > 0 ? (total - done) / rate : 0, final ? "\n" : "");
    else
        fprintf(stderr, "seed: %" PRId64 "/%" PRId64 " records, %.0f/s\n", done, total, rate);
}

int
rd_ctl_held(const struct rd_conf *conf, struct rd_store *st, const char *cmd)
{
    char err[512];
    int  any;

    if (rd_store_any(st, &any, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: %s\n", err);
        return -1;
    }
    if (any)
        printf("%s: %s.%s holds records already: nothing loaded (--if-empty)\n", cmd,
               conf->mongodb.database, conf->mongodb.collection);
    return any;
}

static int
cmd_seed(struct rd_conf *conf, int argc, char **argv)
{
    static const struct option opts[] = {
        { "phones", required_argument, NULL, 'p' }, { "records", required_argument, NULL, 'r' },
        { "seed", required_argument, NULL, 's' }, { "drop", no_argument, NULL, 'd' },
        { "if-empty", no_argument, NULL, 'e' }, { NULL, 0, NULL, 0 }
    };
    int64_t          phones = 200, records = 10000, total, done = 0, last = 0;
    uint64_t         rnd = 42;
    int              drop = 0, if_empty = 0, opt, tty = isatty(STDERR_FILENO), rc = 0;
    struct rd_store *st;
    bson_t          *docs[BATCH];
    char             err[512];
    double           started;
    size_t           n = 0, i;

    long             v;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (rd_ctl_arg_long("--phones", optarg, 1, 100000000, &v) != 0)
                return EX_USAGE;
            phones = v;
            break;
        case 'r':
            if (rd_ctl_arg_long("--records", optarg, 0, 1000000000, &v) != 0)
                return EX_USAGE;
            records = v;
            break;
        case 's':
            if (rd_ctl_arg_long("--seed", optarg, 0, LONG_MAX, &v) != 0)
                return EX_USAGE;
            rnd = (uint64_t) v | 1;
            break;
        case 'd': drop = 1; break;
        case 'e': if_empty = 1; break;
        default: return EX_USAGE;
        }
    }
    if (rd_ctl_no_more("seed", argc, argv, optind) != 0)
        return EX_USAGE;
    if (drop && if_empty) {
        fprintf(stderr, "reporterctl: seed: --drop and --if-empty exclude each other\n");
        return EX_USAGE;
    }
    if (conf == NULL)
        return 0;              /* the arguments checked, nothing done */
    st = rd_store_open(&conf->mongodb, "reporterctl", err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "reporterctl: %s\n", err);
        return 1;
    }
    if (drop && rd_ctl_drop(conf, st, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rd_store_close(st);
        return 1;
    }
    if (if_empty && (rc = rd_ctl_held(conf, st, "seed")) != 0) {
        rd_store_close(st);
        return rc < 0 ? 1 : 0;
    }
    total = phones * records;
    started = rd_now_sec();
    for (int64_t p = 0; p < phones && rc == 0; p++) {
        for (int64_t r = 0; r < records && rc == 0; r++) {
            /* Calls during May 2023, whole-second durations 0..120 s. */
            int64_t start = 1682899200000LL + (int64_t) (next_rand(&rnd) % 2678400000ULL);
            int64_t dur = (int64_t) (next_rand(&rnd) % 121);

            docs[n] = BCON_NEW("phone", BCON_INT64(p), "start_date", BCON_INT64(start),
                               "end_date", BCON_INT64(start + dur * 1000));
            if (++n == BATCH || (p == phones - 1 && r == records - 1)) {
                if (rd_store_insert_many(st, (const bson_t **) docs, n, err, sizeof(err)) != RD_OK) {
                    fprintf(stderr, "%sreporterctl: %s\n", tty ? "\n" : "", err);
                    rc = 1;
                }
                for (i = 0; i < n; i++)
                    bson_destroy(docs[i]);
                done += n;
                n = 0;
                if (tty || done - last >= 200000) {
                    progress(tty, done, total, started, 0);
                    last = done;
                }
            }
        }
    }
    if (rc == 0) {
        if (total > 0)
            progress(tty, done, total, started, 1);
        if (rd_store_index_phone(st, err, sizeof(err)) != RD_OK) {
            fprintf(stderr, "reporterctl: %s\n", err);
            rc = 1;
        } else {
            fprintf(stderr, "seed: %" PRId64 " records for %" PRId64 " phones in %s.%s, "
                    "index {phone: 1} created\n", done, phones, conf->mongodb.database,
                    conf->mongodb.collection);
        }
    }
    rd_store_close(st);
    return rc;
}

static struct rd_broker *
open_broker(struct rd_conf *conf)
{
    struct rd_broker *b;
    char              err[512];
    int               fatal, node = 0;

    b = rd_broker_open(&conf->rabbitmq, &node, "reporterctl", &fatal, err, sizeof(err));
    if (b == NULL) {
        fprintf(stderr, "reporterctl: %s\n", err);
        return NULL;
    }
    if (rd_broker_declare(b, &fatal, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rd_broker_close(b, 0);
        return NULL;
    }
    return b;
}

/* A whole decimal number from min to max, or -1 with a message. */
static int
cmd_send(struct rd_conf *conf, int argc, char **argv)
{
    static const struct option opts[] = {
        { "phones-per-task", required_argument, NULL, 'k' },
        { "max-phone", required_argument, NULL, 'p' },
        { "seed", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 }
    };
    long              n = 10, k = 10, maxp = 200, i, j, sent = 0, seed = 0;
    uint64_t          rnd = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
    struct rd_broker *b;
    struct rd_publish p = { 0 };
    struct rd_task    t = { 0 };
    int64_t           phones[500];
    char              id[32], err[512], *body;
    int               opt, rc = 0;

    while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (opt) {
        case 'n': rc = rd_ctl_arg_long("-n", optarg, 0, LONG_MAX, &n); break;
        case 'k': rc = rd_ctl_arg_long("--phones-per-task", optarg, 1, 500, &k); break;
        case 'p': rc = rd_ctl_arg_long("--max-phone", optarg, 1, LONG_MAX, &maxp); break;
        case 's':
            rc = rd_ctl_arg_long("--seed", optarg, 0, LONG_MAX, &seed);
            rnd = (uint64_t) seed | 1;
            break;
        default: return EX_USAGE;
        }
        if (rc != 0)
            return EX_USAGE;
    }
    if (rd_ctl_no_more("send", argc, argv, optind) != 0)
        return EX_USAGE;
    if (conf == NULL)
        return 0;              /* the arguments checked, nothing done */
    if ((b = open_broker(conf)) == NULL)
        return 1;
    t.phones = phones;
    t.nphones = (size_t) k;
    for (i = 0; i < n && rc == 0; i++) {
        t.id_int = (int64_t) (next_rand(&rnd) >> 12);
        for (j = 0; j < k; j++)
            phones[j] = (int64_t) (next_rand(&rnd) % (uint64_t) maxp);
        body = rd_task_to_json(&t);
        if (body == NULL) {
            fprintf(stderr, "reporterctl: out of memory\n");
            rc = 1;
            break;
        }
        snprintf(id, sizeof(id), "%" PRId64, t.id_int);
        p.correlation_id = id;
        if (rd_broker_publish(b, conf->rabbitmq.task_queue, body, strlen(body), &p, err,
                              sizeof(err)) != RD_OK) {
            fprintf(stderr, "reporterctl: %s\n", err);
            rc = 1;
        } else {
            printf("%s\n", body);
            sent++;
        }
        free(body);
    }
    fprintf(stderr, "send: %ld tasks published to %s\n", sent, conf->rabbitmq.task_queue);
    rd_broker_close(b, 1);
    return rc;
}

static int
cmd_results(struct rd_conf *conf, int argc, char **argv)
{
    static const struct option opts[] = {
        { "timeout", required_argument, NULL, 't' }, { NULL, 0, NULL, 0 }
    };
    long               n = -1, got = 0;
    double             timeout = 10, deadline;
    struct rd_broker  *b;
    struct rd_delivery d;
    char               err[512];
    int                opt, rc = 0, r;

    while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (rd_ctl_arg_long("-n", optarg, 1, LONG_MAX, &n) != 0)
                return EX_USAGE;
            break;
        case 't':
            if (rd_ctl_arg_double("--timeout", optarg, 0, &timeout) != 0)
                return EX_USAGE;
            break;
        default: return EX_USAGE;
        }
    }
    if (rd_ctl_no_more("results", argc, argv, optind) != 0)
        return EX_USAGE;
    if (conf == NULL)
        return 0;              /* the arguments checked, nothing done */
    if ((b = open_broker(conf)) == NULL)
        return 1;
    if (rd_broker_consume(b, conf->rabbitmq.result_queue, 100, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rd_broker_close(b, 0);
        return 1;
    }
    deadline = rd_now_sec() + timeout;
    while ((n < 0 || got < n) && rd_now_sec() < deadline) {
        r = rd_broker_next(b, &d, 200, err, sizeof(err));
        if (r == RD_AGAIN)
            continue;
        if (r != RD_OK) {
            fprintf(stderr, "reporterctl: %s\n", err);
            rc = 1;
            break;
        }
        printf("%.*s\n", (int) d.len, d.body);
        fflush(stdout);
        rd_broker_ack(b, d.tag);
        rd_delivery_free(&d);
        got++;
    }
    if (n > 0 && got < n) {
        fprintf(stderr, "reporterctl: got %ld of %ld results within %.0f s\n", got, n, timeout);
        rc = 1;
    }
    rd_broker_close(b, rc == 0);
    return rc;
}

/* The commands, looked up before the configuration is read. */
static const struct {
    const char *name;
    int       (*fn)(struct rd_conf *conf, int argc, char **argv);
} commands[] = {
    { "seed", cmd_seed }, { "send", cmd_send }, { "results", cmd_results },
    { "import", rd_ctl_import }, { "bench", rd_ctl_bench }, { "rollup", rd_ctl_rollup },
    { "status", rd_ctl_status },
};

/* Take SHORT FILE / LONG FILE / LONG=FILE (short may be NULL) out of
 * argv, wherever it is before a "--": every one, the last wins, or (once)
 * the first only.  NULL when there is none, "" when FILE is missing. */
static const char *
take_option(int *argc, char **argv, const char *shortopt, const char *longopt, int once)
{
    const char *path = NULL;
    size_t      l = strlen(longopt);
    int         i, j, n;

    for (i = 1; i < *argc && strcmp(argv[i], "--") != 0;) {
        n = 0;
        if ((shortopt != NULL && strcmp(argv[i], shortopt) == 0) || strcmp(argv[i], longopt) == 0) {
            path = i + 1 < *argc ? argv[i + 1] : "";
            n = i + 1 < *argc ? 2 : 1;
        } else if (strncmp(argv[i], longopt, l) == 0 && argv[i][l] == '=') {
            path = argv[i] + l + 1;
            n = 1;
        }
        if (n == 0) {
            i++;
            continue;
        }
        for (j = i; j + n < *argc; j++)
            argv[j] = argv[j + n];
        *argc -= n;
        argv[*argc] = NULL;
        if (once)
            break;
    }
    return path;
}

int
main(int argc, char **argv)
{
    const char     *conf_path, *cmd, *env_files[MAX_ENV_FILES];
    size_t          nenv, e;
    struct rd_conf *conf;
    char            err[1024], shm_err[256] = "";
    size_t          k;
    int             rc;

    rd_shm_reexec(argv, shm_err, sizeof(shm_err));
    rd_log_set_role("reporterctl");
    rd_store_capture_log();
    conf_path = take_option(&argc, argv, "-c", "--config", 0);
    if (conf_path != NULL && conf_path[0] == '\0') {
        fprintf(stderr, "reporterctl: -c needs a FILE\n");
        return EX_USAGE;
    }
    /* every --env-file, in order: a later file's values win */
    for (nenv = 0; nenv < MAX_ENV_FILES
                   && (env_files[nenv] = take_option(&argc, argv, NULL, "--env-file", 1)) != NULL; nenv++)
        if (env_files[nenv][0] == '\0') {
            fprintf(stderr, "reporterctl: --env-file needs a FILE\n");
            return EX_USAGE;
        }
    if (conf_path == NULL)
        conf_path = RD_DEFAULT_CONF;
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("reporterctl version " PACKAGE_VERSION "\n");
        return 0;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return 0;
        }
        if (argc == 3 && command_help(stdout, argv[2]) == 0)
            return 0;
        if (argc > 3)
            fprintf(stderr, "reporterctl: help takes one command\n");
        else
            fprintf(stderr, "reporterctl: help: no command \"%s\"\n", argv[2]);
        return EX_USAGE;
    }
    cmd = argv[1];
    for (k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (strcmp(commands[k].name, cmd) == 0)
            break;
    if (k == sizeof(commands) / sizeof(commands[0])) {
        fprintf(stderr, "reporterctl: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return EX_USAGE;
    }
    argc--;
    argv++;
    optind = 0;                 /* getopt starts afresh for each pass */
    rc = commands[k].fn(NULL, argc, argv);
    if (rc != 0) {
        fprintf(stderr, "reporterctl: see `reporterctl help %s`\n", cmd);
        return rc;
    }
    optind = 0;
    for (e = 0; e < nenv; e++)
        if (rd_envfile_load(env_files[e], err, sizeof(err)) != 0) {
            fprintf(stderr, "reporterctl: %s\n", err);
            return EX_CONFIG;
        }
    conf = rd_conf_load(conf_path, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "reporterctl: %s\n", err);
        return EX_CONFIG;
    }
    rd_log_set_level(RD_LOG_WARN);
    if (shm_err[0] != '\0')
        rd_warn("%s", shm_err);
    mongoc_init();
    rc = commands[k].fn(conf, argc, argv);
    if (rc == EX_USAGE)
        fprintf(stderr, "reporterctl: see `reporterctl help %s`\n", cmd);
    rd_conf_free(conf);
    mongoc_cleanup();
    return rc;
}
