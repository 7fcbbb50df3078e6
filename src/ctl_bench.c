/*
 * ctl_bench.c -- `reporterctl bench`: publish N tasks at a concurrency or
 * a rate, match the results by correlation_id, and print throughput,
 * end-to-end latency percentiles and the daemon's mean total_duration
 * (null in --json, "-" otherwise, when no result arrived).
 * It consumes the configured result queue: run it where no other client
 * takes results from that queue.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "broker.h"
#include "ctl.h"
#include "task.h"
#include "util.h"

struct bench {
    long     n, concurrency, k, max_phone;
    double   rate, timeout;
    int      json;
    int64_t *fixed;
    size_t   nfixed;
    int64_t *phones;            /* the task being published */
    int64_t  base;              /* correlation ids are base + index */
    double  *sent_at, *latency;
    long     sent, received, errors, stray;
    double   sum_total_duration;
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

static double
pct(const double *sorted, long n, double p)
{
    long i;

    if (n == 0)
        return NAN;
    i = (long) ceil(p / 100.0 * n) - 1;
    return sorted[i < 0 ? 0 : i];
}

static int
parse_phones(struct bench *bn, const char *list)
{
    const char *p = list;
    char       *end;

    bn->fixed = calloc(strlen(list) / 2 + 2, sizeof(int64_t));
    if (bn->fixed == NULL)
        return -1;
    while (*p) {
        bn->fixed[bn->nfixed++] = strtoll(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0'))
            return -1;
        p = *end ? end + 1 : end;
    }
    return bn->nfixed > 0 ? 0 : -1;
}

static int
publish_one(struct bench *bn, struct rd_broker *b, const struct rd_conf *conf, uint64_t *rnd)
{
    struct rd_publish p = { 0 };
    struct rd_task    t = { 0 };
    char              id[32], err[512], *body;
    long              j;
    int               rc = 0;

    t.id_int = bn->base + bn->sent;
    t.phones = bn->nfixed ? bn->fixed : bn->phones;
    t.nphones = bn->nfixed ? bn->nfixed : (size_t) bn->k;
    for (j = 0; bn->nfixed == 0 && j < bn->k; j++) {
        *rnd = *rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        bn->phones[j] = (int64_t) ((*rnd >> 33) % (uint64_t) bn->max_phone);
    }
    body = rd_task_to_json(&t);
    if (body == NULL) {
        fprintf(stderr, "reporterctl: out of memory\n");
        return -1;
    }
    snprintf(id, sizeof(id), "%" PRId64, t.id_int);
    p.correlation_id = id;
    bn->sent_at[bn->sent] = rd_now_sec();
    if (rd_broker_publish(b, conf->rabbitmq.task_queue, body, strlen(body), &p, err,
                          sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rc = -1;
    } else {
        bn->sent++;
    }
    free(body);
    return rc;
}

/* The task a result answers: its correlation_id property, else (a
 * service that only copies it into the body, as the old Python one does)
 * the body's "correlation_id"; -1 for none of this run's. */
static int64_t
result_index(const struct bench *bn, const struct rd_delivery *d, struct json_object *o)
{
    struct json_object *v;
    const char         *id = d->correlation_id;
    char               *end;
    int64_t             cid;

    if (id[0] == '\0' && o != NULL && json_object_object_get_ex(o, "correlation_id", &v)
        && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_string)))
        id = json_object_get_string(v);
    cid = strtoll(id, &end, 10);
    if (end == id || *end != '\0' || cid - bn->base < 0 || cid - bn->base >= bn->sent)
        return -1;
    return cid - bn->base;
}

static void
take_result(struct bench *bn, const struct rd_delivery *d)
{
    struct json_object *o, *v;
    int64_t             i;

    o = json_tokener_parse(d->body);
    i = result_index(bn, d, o);
    if (i < 0 || bn->latency[i] >= 0) {
        bn->stray++;
        json_object_put(o);
        return;
    }
    bn->latency[i] = rd_now_sec() - bn->sent_at[i];
    bn->received++;
    if (o != NULL && json_object_object_get_ex(o, "status", &v)
        && strcmp(json_object_get_string(v), "Complete") != 0)
        bn->errors++;
    if (o != NULL && json_object_object_get_ex(o, "total_duration", &v))
        bn->sum_total_duration += json_object_get_double(v);
    json_object_put(o);
}

/* A figure in milliseconds, or none (JSON null) when nothing arrived. */
static const char *
ms(char *buf, size_t len, double v, const char *none)
{
    if (isnan(v))
        return none;
    snprintf(buf, len, "%.2f", v);
    return buf;
}

static void
print_report(struct bench *bn, double elapsed)
{
    double *lat = malloc((bn->received + 1) * sizeof(double));
    long    i, m = 0;
    double  tput = elapsed > 0 ? bn->received / elapsed : 0;
    double  mean_td = bn->received ? bn->sum_total_duration / bn->received * 1000 : NAN;
    char    b[5][32];

    for (i = 0; lat != NULL && i < bn->sent; i++)
        if (bn->latency[i] >= 0)
            lat[m++] = bn->latency[i] * 1000;
    if (lat != NULL)
        qsort(lat, m, sizeof(double), cmp_double);
    if (bn->json) {
        printf("{\"tasks\": %ld, \"received\": %ld, \"errors\": %ld, \"missing\": %ld, "
               "\"elapsed_s\": %.3f, \"throughput_per_s\": %.2f, \"latency_ms\": {\"p50\": %s, "
               "\"p90\": %s, \"p99\": %s, \"max\": %s}, \"mean_total_duration_ms\": %s}\n",
               bn->sent, bn->received, bn->errors, bn->sent - bn->received, elapsed, tput,
               ms(b[0], 32, pct(lat, m, 50), "null"), ms(b[1], 32, pct(lat, m, 90), "null"),
               ms(b[2], 32, pct(lat, m, 99), "null"), ms(b[3], 32, pct(lat, m, 100), "null"),
               ms(b[4], 32, mean_td, "null"));
    } else {
        printf("bench: %ld tasks sent, %ld results (%ld errors, %ld missing) in %.2f s\n",
               bn->sent, bn->received, bn->errors, bn->sent - bn->received, elapsed);
        printf("throughput: %.1f tasks/s\n", tput);
        printf("latency ms: p50 %s  p90 %s  p99 %s  max %s\n",
               ms(b[0], 32, pct(lat, m, 50), "-"), ms(b[1], 32, pct(lat, m, 90), "-"),
               ms(b[2], 32, pct(lat, m, 99), "-"), ms(b[3], 32, pct(lat, m, 100), "-"));
        printf("mean total_duration reported by reporterd: %s ms\n", ms(b[4], 32, mean_td, "-"));
    }
    free(lat);
}

int
rd_ctl_bench(struct rd_conf *conf, int argc, char **argv)
{
    static const struct option opts[] = {
        { "concurrency", required_argument, NULL, 'c' }, { "rate", required_argument, NULL, 'r' },
        { "phones-per-task", required_argument, NULL, 'k' },
        { "max-phone", required_argument, NULL, 'p' }, { "phones", required_argument, NULL, 'l' },
        { "timeout", required_argument, NULL, 't' }, { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 }
    };
    struct bench       bn = { 100, 4, 10, 200, 0, 300, 0, NULL, 0, NULL, 0, NULL, NULL,
                              0, 0, 0, 0, 0 };
    struct rd_broker  *b;
    struct rd_delivery d;
    uint64_t           rnd = (uint64_t) time(NULL) * 2654435761u ^ (uint64_t) getpid();
    char               err[512];
    double             start, deadline;
    int                opt, fatal, node = 0, rc = 0, r, bad = 0;
    long               i;

    while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (opt) {
        case 'n': bad = rd_ctl_arg_long("-n", optarg, 1, 100000000, &bn.n); break;
        case 'c': bad = rd_ctl_arg_long("--concurrency", optarg, 1, 100000, &bn.concurrency); break;
        case 'r': bad = rd_ctl_arg_double("--rate", optarg, 0, &bn.rate); break;
        case 'k': bad = rd_ctl_arg_long("--phones-per-task", optarg, 1, 100000, &bn.k); break;
        case 'p': bad = rd_ctl_arg_long("--max-phone", optarg, 1, LONG_MAX, &bn.max_phone); break;
        case 'l':
            if ((bad = parse_phones(&bn, optarg)) != 0)
                fprintf(stderr, "reporterctl: --phones is a comma-separated list of integers\n");
            break;
        case 't': bad = rd_ctl_arg_double("--timeout", optarg, 0, &bn.timeout); break;
        case 'j': bn.json = 1; break;
        default: return EX_USAGE;
        }
        if (bad != 0)
            return EX_USAGE;
    }
    if (rd_ctl_no_more("bench", argc, argv, optind) != 0)
        return EX_USAGE;
    if (conf == NULL)
        return 0;              /* the arguments checked, nothing done */
    bn.sent_at = calloc(bn.n, sizeof(double));
    bn.latency = malloc(bn.n * sizeof(double));
    bn.phones = malloc(bn.k * sizeof(int64_t));
    if (bn.sent_at == NULL || bn.latency == NULL || bn.phones == NULL)
        return 1;
    for (i = 0; i < bn.n; i++)
        bn.latency[i] = -1;
    bn.base = ((int64_t) time(NULL) % 100000) * 1000000000LL + (int64_t) getpid() * 10000000LL % 1000000000LL;

    b = rd_broker_open(&conf->rabbitmq, &node, "reporterctl bench", &fatal, err, sizeof(err));
    if (b == NULL || rd_broker_declare(b, &fatal, err, sizeof(err)) != RD_OK
        || rd_broker_consume(b, conf->rabbitmq.result_queue, 1000, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rd_broker_close(b, 0);
        return 1;
    }
    start = rd_now_sec();
    deadline = start + bn.timeout;
    while (bn.received < bn.n && rd_now_sec() < deadline) {
        int can_send = bn.sent < bn.n
                       && (bn.rate > 0 ? rd_now_sec() >= start + bn.sent / bn.rate
                                       : bn.sent - bn.received < bn.concurrency);

        if (can_send) {
            if (publish_one(&bn, b, conf, &rnd) != 0) {
                rc = 1;
                break;
            }
            continue;
        }
        r = rd_broker_next(b, &d, bn.rate > 0 ? 5 : 100, err, sizeof(err));
        if (r == RD_OK) {
            take_result(&bn, &d);
            rd_broker_ack(b, d.tag);
            rd_delivery_free(&d);
        } else if (r == RD_ERROR) {
            fprintf(stderr, "reporterctl: %s\n", err);
            rc = 1;
            break;
        }
    }
    print_report(&bn, rd_now_sec() - start);
    if (bn.received < bn.n)
        rc = 1;
    rd_broker_close(b, rc == 0);
    free(bn.sent_at);
    free(bn.latency);
    free(bn.phones);
    free(bn.fixed);
    return rc;
}
