/*
 * ctl_rollup.c -- reporterctl rollup: the operator's handle on rollup mode.
 *
 *   reporterctl rollup [--status]         unfolded records, lag, lease holder
 *   reporterctl rollup --fold             fold everything unfolded now
 *   reporterctl rollup --verify [--phones LIST | --sample N | PHONE…]
 *                         [--repair]      compare phones' rollup reports
 *                                         with live mode's (every phone
 *                                         that has a rollup, a list, or N
 *                                         picked at random); --repair
 *                                         recomputes those that differ
 *   reporterctl rollup --rebuild          recompute every rollup from the
 *                                         records folded so far
 *
 * Exit status: 0 done (verify: every phone equal, after --repair if
 * given), 1 an error, 4 verify found a phone whose rollup figures differ
 * from live mode's.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ctl.h"
#include "report.h"
#include "rollup.h"
#include "store.h"
#include "util.h"

#define VERIFY_CHUNK   100      /* phones compared per round trip */
#define VERIFY_TRIES   3        /* a phone being written to may differ once */
#define EXIT_MISMATCH  4

static void
print_sums(const char *what, const struct rd_phone_sums *s)
{
    printf("  %-6s cnt %" PRId64 " (%" PRId64 "/%" PRId64 "/%" PRId64 ") sum_ms %" PRId64
           " over_15 %" PRId64 " min_ms %" PRId64 " max_ms %" PRId64 " invalid %" PRId64 "\n",
           what, s->cnt, s->cnt_10, s->cnt_10_30, s->cnt_30, s->sum_ms, s->sum_ms_over_15,
           s->cnt ? s->min_ms : 0, s->cnt ? s->max_ms : 0, s->invalid);
}

static int
cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

    return x < y ? -1 : x > y;
}

/* Both ways for phones[0..n) (distinct, sorted): rollup into ru[], live into lv[]. */
static int
both_ways(struct rd_store *st, struct rd_rollup *r, const struct rd_conf *conf,
          const int64_t *phones, size_t n, struct rd_phone_sums *ru,
          struct rd_phone_sums *lv, char *err, size_t errlen)
{
    struct rd_report_rows l;
    bson_t         *p;
    size_t          i;
    int             klass, rc;

    for (i = 0; i < n; i++) {
        memset(&ru[i], 0, sizeof(ru[i]));
        memset(&lv[i], 0, sizeof(lv[i]));
        ru[i].phone = lv[i].phone = phones[i];
    }
    if (rd_rollup_report(r, ru, n, conf->mongodb.max_time_ms, &klass, err, errlen) != RD_OK)
        return RD_ERROR;
    p = rd_report_pipeline(phones, n);
    l.stats = lv;
    l.n = n;
    rc = rd_store_aggregate(st, p, conf->mongodb.max_time_ms, rd_report_rows_add, &l, &klass, err, errlen);
    bson_destroy(p);
    return rc;
}

/* Recompute the rollup of phone (from its marks, as --rebuild does):
 * 0 done, -1 not. */
static int
repair(struct rd_rollup *r, int64_t phone)
{
    char err[1024];
    int  klass;

    if (rd_rollup_repair(r, phone, &klass, err, sizeof(err)) == RD_OK)
        return 0;
    fprintf(stderr, "reporterctl: rollup --repair: %s\n", err);
    return -1;
}

static int
verify(struct rd_store *st, struct rd_rollup *r, const struct rd_conf *conf,
       int64_t *phones, size_t n, int fix)
{
    struct rd_phone_sums ru[VERIFY_CHUNK], lv[VERIFY_CHUNK];
    char                 err[1024];
    size_t               at, k, i, bad = 0, repaired = 0;
    int                  tries, diff;

    if (n > 1)
        qsort(phones, n, sizeof(*phones), cmp64);
    for (at = 0, k = 0; at < n; at++)           /* distinct */
        if (k == 0 || phones[k - 1] != phones[at])
            phones[k++] = phones[at];
    n = k;
    for (at = 0; at < n; at += k) {
        k = n - at < VERIFY_CHUNK ? n - at : VERIFY_CHUNK;
        for (tries = 0; tries < VERIFY_TRIES; tries++) {
            if (both_ways(st, r, conf, phones + at, k, ru, lv, err, sizeof(err)) != RD_OK) {
                fprintf(stderr, "reporterctl: rollup --verify: %s\n", err);
                return 1;
            }
            for (diff = 0, i = 0; i < k; i++)
                diff += !rd_report_sums_equal(&ru[i], &lv[i]);
            if (diff == 0)
                break;
            /* The last try is made after the repair: it says whether it took. */
            for (i = 0; fix && tries == VERIFY_TRIES - 2 && i < k; i++)
                if (!rd_report_sums_equal(&ru[i], &lv[i])) {
                    printf("phone %" PRId64 ": differs: recomputing its rollup\n", ru[i].phone);
                    print_sums("rollup", &ru[i]);
                    print_sums("live", &lv[i]);
                    if (repair(r, ru[i].phone) != 0)
                        return 1;
                    repaired++;
                }
        }
        for (i = 0; i < k; i++) {
            if (rd_report_sums_equal(&ru[i], &lv[i]))
                continue;
            bad++;
            printf("phone %" PRId64 ": the rollup and its tail differ from the records "
                   "(%d tries)\n", ru[i].phone, VERIFY_TRIES);
            print_sums("rollup", &ru[i]);
            print_sums("live", &lv[i]);
        }
    }
    if (fix)
        printf("verified %zu phones: %zu repaired, %zu differ\n", n, repaired, bad);
    else
        printf("verified %zu phones: %zu differ\n", n, bad);
    if (bad > 0 && !fix)
        printf("run `reporterctl rollup --verify --repair` to recompute them (the folder "
               "does so by itself within a verification cycle)\n");
    return bad > 0 ? EXIT_MISMATCH : 0;
}

/* Keep n of the *count phones, picked at random (a partial shuffle). */
static void
sample(int64_t *phones, size_t *count, size_t n)
{
    size_t   i, j;
    uint64_t x;
    int64_t  t;

    for (i = 0; i < n && i < *count; i++) {
        if (getrandom(&x, sizeof(x), 0) != (ssize_t) sizeof(x))
            x = (uint64_t) rd_wall_ms() * 6364136223846793005ULL + i;
        j = i + (size_t) (x % (*count - i));
        t = phones[i];
        phones[i] = phones[j];
        phones[j] = t;
    }
    if (n < *count)
        *count = n;
}

/* "1,2,3" (or PHONE arguments) into a malloc'ed array; -1 on a bad one. */
static int
parse_phones(const char *list, int64_t **phones, size_t *n)
{
    const char *p = list;
    char       *end;
    int64_t    *v, *nv;
    size_t      cap = 0;

    for (v = NULL, *n = 0;; p = end + 1) {
        long long x;

        errno = 0;
        x = strtoll(p, &end, 10);
        if (end == p || errno != 0 || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "reporterctl: rollup --verify: \"%s\" is not a list of phones "
                    "(integers separated by commas)\n", list);
            free(v);
            return -1;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
                fprintf(stderr, "reporterctl: out of memory\n");
                free(v);
                return -1;
            }
            v = nv;
        }
        v[(*n)++] = x;
        if (*end == '\0')
            break;
    }
    *phones = v;
    return 0;
}

static size_t rebuild_skipped;

static void
rebuild_skip(int64_t phone, const char *why)
{
    rebuild_skipped++;
    fprintf(stderr, "reporterctl: rollup --rebuild: phone %" PRId64 " skipped: %s\n", phone, why);
}

static int
fold_all(struct rd_rollup *r)
{
    struct rd_rollup_step step;
    int64_t               batches = 0, records = 0;
    char                  err[1024];
    int                   klass, rc;

    while ((rc = rd_rollup_fold(r, &step, &klass, err, sizeof(err))) == RD_OK) {
        batches++;
        records += step.records;
    }
    if (rc == RD_ERROR) {
        fprintf(stderr, "reporterctl: rollup --fold: %s\n", err);
        return 1;
    }
    printf("folded %" PRId64 " records in %" PRId64 " batches\n", records, batches);
    return 0;
}

static int
status(struct rd_rollup *r)
{
    int64_t unfolded, behind;
    char    err[1024], epoch[32] = "", names[1024];
    int     klass, rc;

    if (rd_rollup_lag(r, &unfolded, &behind, &klass, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: rollup: %s\n", err);
        return 1;
    }
    printf("unfolded records: %" PRId64 "\nbehind: %" PRId64 " s\n", unfolded, behind);
    if (rd_rollup_current_epoch(r, epoch, sizeof(epoch), err, sizeof(err)) == RD_OK)
        printf("epoch: %s\n", epoch[0] ? epoch : "none yet (no folder has run)");
    if (epoch[0] && rd_rollup_other_indexes(r, names, sizeof(names)) > 0)
        printf("indexes of other epochs (drop them once no folder of another "
               "configuration uses them): %s\n", names);
    /* Asking for a lease of 1 ms tells who holds one, taking only a
     * free one, and gives it straight back. */
    rc = rd_rollup_lease(r, 1, &klass, err, sizeof(err));
    if (rc == RD_DECLINED)
        printf("lease: %s\n", err);
    else if (rc == RD_OK) {
        printf("lease: free (no folder is running)\n");
        rd_rollup_release(r);
    }
    return 0;
}

/* The phones --verify compares: the list or arguments given, or every
 * phone with a rollup (of those, `pick` at random when pick > 0). */
static int
verify_phones(struct rd_rollup *r, const char *list, int argc, char **argv, long pick,
              int64_t **phones, size_t *n)
{
    char   err[1024];
    size_t k, got;
    int64_t *one;
    int    i;

    *phones = NULL;
    *n = 0;
    if (list != NULL)
        return parse_phones(list, phones, n) != 0 ? EX_USAGE : 0;
    for (i = 0; i < argc; i++) {
        if (parse_phones(argv[i], &one, &got) != 0) {
            free(*phones);
            return EX_USAGE;
        }
        int64_t *nv = realloc(*phones, (*n + got) * sizeof(**phones));

        if (nv == NULL) {
            free(one);
            free(*phones);
            fprintf(stderr, "reporterctl: out of memory\n");
            return 1;
        }
        *phones = nv;
        for (k = 0; k < got; k++)
            (*phones)[(*n)++] = one[k];
        free(one);
    }
    if (argc > 0)
        return 0;
    if (rd_rollup_phones(r, phones, n, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: rollup --verify: %s\n", err);
        return 1;
    }
    if (pick > 0)
        sample(*phones, n, (size_t) pick);
    return 0;
}

/* --fold refused while the records have a TTL index (as the folder). */
static int
fold_checked(struct rd_rollup *r)
{
    char why[512], err[1024];
    int  klass, rc = rd_rollup_ttl(r, why, sizeof(why), &klass, err, sizeof(err));

    if (rc == RD_DECLINED) {
        fprintf(stderr, "reporterctl: rollup --fold: refused: %s\n", why);
        return 1;
    }
    if (rc != RD_OK || rd_rollup_indexes(r, &klass, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: rollup --fold: %s\n", err);
        return 1;
    }
    return fold_all(r);
}

int
rd_ctl_rollup(struct rd_conf *conf, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "status", no_argument, NULL, 's' }, { "fold", no_argument, NULL, 'f' },
        { "verify", no_argument, NULL, 'v' }, { "rebuild", no_argument, NULL, 'r' },
        { "phones", required_argument, NULL, 'P' }, { "sample", required_argument, NULL, 'S' },
        { "repair", no_argument, NULL, 'R' },
        { NULL, 0, NULL, 0 }
    };
    struct rd_store  *st;
    struct rd_rollup *r;
    int64_t          *phones = NULL, written;
    size_t            n = 0;
    const char       *list = NULL;
    char              err[1024], owner[64], *end;
    long              pick = 0;
    int               opt, what = 0, rc = 0, fix = 0;

    err[0] = '\0';
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'P':
            list = optarg;
            break;
        case 'S':
            errno = 0;
            pick = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || errno != 0 || pick < 1) {
                fprintf(stderr, "reporterctl: rollup: --sample \"%s\": a number of phones "
                        "(1 or more)\n", optarg);
                return EX_USAGE;
            }
            break;
        case 'R':
            fix = 1;
            break;
        case '?':
            return EX_USAGE;
        default:
            if (what != 0 && what != opt) {
                fprintf(stderr, "reporterctl: rollup: one of --status, --fold, --verify, "
                        "--rebuild at a time\n");
                return EX_USAGE;
            }
            what = opt;
        }
    }
    if (what == 0)
        what = 's';
    if ((optind < argc || list != NULL || pick > 0 || fix) && what != 'v') {
        fprintf(stderr, "reporterctl: rollup: phones, --phones, --sample and --repair are "
                "for --verify only\n");
        return EX_USAGE;
    }
    if ((optind < argc) + (list != NULL) + (pick > 0) > 1) {
        fprintf(stderr, "reporterctl: rollup --verify: phones, --phones and --sample "
                "exclude each other\n");
        return EX_USAGE;
    }
    if (conf == NULL) {         /* the arguments checked, nothing done */
        if (what == 'v' && (list != NULL || optind < argc)) {
            rc = verify_phones(NULL, list, argc - optind, argv + optind, 0, &phones, &n);
            free(phones);
        }
        return rc;
    }
    st = rd_store_open(&conf->mongodb, "reporterctl", err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "reporterctl: %s\n", err);
        return 1;
    }
    snprintf(owner, sizeof(owner), "reporterctl:%ld", (long) getpid());
    r = rd_rollup_new(st, conf, owner);
    if (r == NULL) {
        fprintf(stderr, "reporterctl: out of memory\n");
        rd_store_close(st);
        return 1;
    }
    switch (what) {
    case 's':
        rc = status(r);
        break;
    case 'f':
        rc = fold_checked(r);
        break;
    case 'r':
        rebuild_skipped = 0;
        if (rd_rollup_rebuild(r, &written, rebuild_skip, err, sizeof(err)) != RD_OK) {
            if (rebuild_skipped == 0)
                fprintf(stderr, "reporterctl: rollup --rebuild: %s\n", err);
            printf("rebuilt %" PRId64 " phones, skipped %zu\n", written, rebuild_skipped);
            rc = 1;
        } else {
            printf("rebuilt %" PRId64 " phones\n", written);
        }
        break;
    case 'v':
        rc = verify_phones(r, list, argc - optind, argv + optind, pick, &phones, &n);
        if (rc == 0)
            rc = verify(st, r, conf, phones, n, fix);
        free(phones);
        break;
    }
    rd_rollup_free(r);
    rd_store_close(st);
    return rc;
}

int
rd_ctl_drop(const struct rd_conf *conf, struct rd_store *st, char *err, size_t errlen)
{
    struct rd_rollup *r;
    int               rc;

    if (rd_store_drop(st, err, errlen) != RD_OK)
        return RD_ERROR;
    r = rd_rollup_new(st, conf, "reporterctl");
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return RD_ERROR;
    }
    rc = rd_rollup_reset(r, err, errlen);
    rd_rollup_free(r);
    return rc;
}
