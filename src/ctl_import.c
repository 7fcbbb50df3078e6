/*
 * ctl_import.c -- `reporterctl import FILE`: stream call records into the
 * collection with bulk inserts, never holding the file in memory.
 *
 * Formats: one JSON array of records (the old service's data.json),
 * newline-delimited JSON, or CSV (phone,start_date,end_date, optional
 * header).  A record needs integer phone, start_date and end_date
 * ({"$numberLong": "..."} is accepted too).  Malformed records are counted
 * and reported with their position, never silently skipped.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <mongoc/mongoc.h>

#include "ctl.h"
#include "store.h"
#include "util.h"

#define MAX_RECORD   65536      /* bytes of one record */
#define SHOW_ERRORS  20         /* malformed records printed in full */

enum format { FMT_AUTO, FMT_ARRAY, FMT_NDJSON, FMT_CSV };

struct importer {
    struct rd_store *st;
    bson_t         **docs;
    size_t           ndocs, batch;
    int64_t          records, bad, inserted;
    int64_t          bytes, total_bytes;
    double           started, last_report;
    int              tty, failed;
    char             elem[MAX_RECORD + 1];
    size_t           elen;
    int              elem_too_long;
};

static void
report(struct importer *im, int final)
{
    double now = rd_now_sec(), el = now - im->started;
    double rate = el > 0 ? im->records / el : 0;
    char   eta[64] = "";

    if (!final && now - im->last_report < (im->tty ? 0.2 : 5))
        return;
    im->last_report = now;
    if (!final && im->bytes > 0 && im->total_bytes > 0)
        snprintf(eta, sizeof(eta), ", %.0f%%, ETA %.0f s", 100.0 * im->bytes / im->total_bytes,
                 el * (double) (im->total_bytes - im->bytes) / im->bytes);
    fprintf(stderr, "%simport: %" PRId64 " records, %" PRId64 " malformed, %.0f records/s%s%s",
            im->tty ? "\r" : "", im->records, im->bad, rate, eta,
            im->tty && !final ? "   " : "\n");
}

static int
flush_batch(struct importer *im)
{
    char   err[512];
    size_t i;
    int    rc = 0;

    if (im->ndocs == 0)
        return 0;
    if (rd_store_insert_many(im->st, (const bson_t **) im->docs, im->ndocs, err,
                             sizeof(err)) != RD_OK) {
        fprintf(stderr, "%sreporterctl: %s\n", im->tty ? "\n" : "", err);
        im->failed = 1;
        rc = -1;
    } else {
        im->inserted += im->ndocs;
    }
    for (i = 0; i < im->ndocs; i++)
        bson_destroy(im->docs[i]);
    im->ndocs = 0;
    return rc;
}

static void
malformed(struct importer *im, const char *where, const char *why)
{
    im->bad++;
    if (im->bad <= SHOW_ERRORS)
        fprintf(stderr, "%simport: malformed record %" PRId64 " (%s): %s\n",
                im->tty ? "\n" : "", im->records + im->bad, where, why);
    else if (im->bad == SHOW_ERRORS + 1)
        fprintf(stderr, "import: further malformed records are only counted\n");
}

static int
add_record(struct importer *im, int64_t phone, int64_t start, int64_t end)
{
    im->docs[im->ndocs++] = BCON_NEW("phone", BCON_INT64(phone), "start_date", BCON_INT64(start),
                                     "end_date", BCON_INT64(end));
    im->records++;
    if (im->ndocs == im->batch)
        return flush_batch(im);
    return 0;
}

/* An integer field: a JSON int, an integral double, or {"$numberLong": "..."}. */
static int
int_field(struct json_object *o, const char *key, int64_t *out, char *why, size_t len)
{
    struct json_object *v, *nl;
    double              d;
    char               *end;

    if (!json_object_object_get_ex(o, key, &v)) {
        snprintf(why, len, "%s is missing", key);
        return -1;
    }
    if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "$numberLong", &nl)
        && json_object_is_type(nl, json_type_string)) {
        errno = 0;
        *out = strtoll(json_object_get_string(nl), &end, 10);
        if (errno == 0 && *end == '\0' && end != json_object_get_string(nl))
            return 0;
    } else if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        if (*out != INT64_MAX && *out != INT64_MIN)
            return 0;
    } else if (json_object_is_type(v, json_type_double)) {
        d = json_object_get_double(v);
        if (d == (double) (int64_t) d && d > -9.2e18 && d < 9.2e18) {
            *out = (int64_t) d;
            return 0;
        }
    }
    snprintf(why, len, "%s must be an integer", key);
    return -1;
}

static int
json_record(struct importer *im, const char *text, size_t len, const char *where)
{
    struct json_tokener *tok = json_tokener_new_ex(8);
    struct json_object  *o;
    int64_t              phone, start, end;
    char                 why[256];
    int                  rc = 0;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, text, (int) len + 1);
    if (o == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        malformed(im, where, "not valid JSON");
    } else if (!json_object_is_type(o, json_type_object)) {
        malformed(im, where, "not a JSON object");
    } else if (int_field(o, "phone", &phone, why, sizeof(why)) != 0
               || int_field(o, "start_date", &start, why, sizeof(why)) != 0
               || int_field(o, "end_date", &end, why, sizeof(why)) != 0) {
        malformed(im, where, why);
    } else {
        rc = add_record(im, phone, start, end);
    }
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}

/* Feed one byte of a JSON array; emits each top-level element. */
struct splitter {
    int     state;          /* 0 before '[', 1 between elements, 2 in one, 3 after ']' */
    int     depth, in_string, escape;
    int64_t offset, elem_offset;
};

static int
end_element(struct importer *im, struct splitter *sp)
{
    char where[64];

    snprintf(where, sizeof(where), "byte %" PRId64, sp->elem_offset);
    sp->state = 1;
    if (im->elem_too_long) {
        im->elem_too_long = 0;
        im->elen = 0;
        malformed(im, where, "longer than 64 KiB");
        return 0;
    }
    while (im->elen > 0 && strchr(" \t\r\n", im->elem[im->elen - 1]) != NULL)
        im->elen--;
    im->elem[im->elen] = '\0';
    im->elen = 0;
    return json_record(im, im->elem, strlen(im->elem), where);
}

static int
split_byte(struct importer *im, struct splitter *sp, char c)
{
    sp->offset++;
    switch (sp->state) {
    case 0:
        if (c == '[')
            sp->state = 1;
        else if (strchr(" \t\r\n", c) == NULL)
            return -2;
        return 0;
    case 1:
        if (strchr(" \t\r\n,", c) != NULL)
            return 0;
        if (c == ']') {
            sp->state = 3;
            return 0;
        }
        sp->state = 2;
        sp->depth = 0;
        sp->in_string = sp->escape = 0;
        sp->elem_offset = sp->offset - 1;
        /* fall through */
    case 2:
        if (sp->in_string) {
            if (sp->escape)
                sp->escape = 0;
            else if (c == '\\')
                sp->escape = 1;
            else if (c == '"')
                sp->in_string = 0;
        } else if (c == '"') {
            sp->in_string = 1;
        } else if (c == '{' || c == '[') {
            sp->depth++;
        } else if (c == '}' || c == ']') {
            if (sp->depth == 0) {           /* the array's own ']' after a scalar */
                int rc = end_element(im, sp);
                sp->state = 3;
                return rc;
            }
            if (--sp->depth == 0) {
                if (im->elen < MAX_RECORD)
                    im->elem[im->elen++] = c;
                return end_element(im, sp);
            }
        } else if (c == ',' && sp->depth == 0) {
            return end_element(im, sp);
        }
        if (im->elen < MAX_RECORD)
            im->elem[im->elen++] = c;
        else
            im->elem_too_long = 1;
        return 0;
    default:
        return strchr(" \t\r\n", c) != NULL ? 0 : -3;
    }
}

static int
csv_line(struct importer *im, char *line, int64_t lineno)
{
    char    where[64], *p = line, *end;
    int64_t v[3];
    int     i;

    snprintf(where, sizeof(where), "line %" PRId64, lineno);
    line[strcspn(line, "\r\n")] = '\0';
    if (*line == '\0')
        return 0;
    for (i = 0; i < 3; i++) {
        errno = 0;
        v[i] = strtoll(p, &end, 10);
        if (errno != 0 || end == p || (i < 2 && *end != ',') || (i == 2 && *end != '\0')) {
            if (lineno == 1 && i == 0 && strstr(line, "phone") != NULL)
                return 0;                   /* a header */
            malformed(im, where, "expected phone,start_date,end_date as integers");
            return 0;
        }
        p = end + 1;
    }
    return add_record(im, v[0], v[1], v[2]);
}

static enum format
sniff(FILE *f)
{
    int c;

    while ((c = getc(f)) != EOF && strchr(" \t\r\n", c) != NULL)
        ;
    if (c != EOF)
        ungetc(c, f);
    if (c == '[')
        return FMT_ARRAY;
    if (c == '{')
        return FMT_NDJSON;
    return FMT_CSV;
}

int
rd_ctl_import(struct rd_conf *conf, int argc, char **argv)
{
    static const struct option opts[] = {
        { "format", required_argument, NULL, 'f' }, { "batch", required_argument, NULL, 'b' },
        { "drop", no_argument, NULL, 'd' }, { NULL, 0, NULL, 0 }
    };
    struct importer *im;
    struct splitter  sp = { 0 };
    enum format      fmt = FMT_AUTO;
    struct stat      stt;
    char             err[512], *line = NULL, buf[65536];
    size_t           cap = 0, n, i;
    ssize_t          got;
    int64_t          lineno = 0;
    int              opt, drop = 0, rc = 0;
    long             batch = 10000;
    FILE            *f;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            fmt = strcmp(optarg, "json") == 0 ? FMT_ARRAY : strcmp(optarg, "ndjson") == 0
                  ? FMT_NDJSON : strcmp(optarg, "csv") == 0 ? FMT_CSV : -1;
            if ((int) fmt < 0) {
                fprintf(stderr, "reporterctl: --format is json, ndjson or csv\n");
                return 1;
            }
            break;
        case 'b': batch = atol(optarg); break;
        case 'd': drop = 1; break;
        default: return 2;
        }
    }
    if (optind + 1 != argc || batch < 1 || batch > 100000) {
        fprintf(stderr, "reporterctl: usage: import FILE|- [--format json|ndjson|csv] "
                "[--batch 1..100000] [--drop]\n");
        return 1;
    }
    f = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
    if (f == NULL) {
        fprintf(stderr, "reporterctl: cannot open %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    im = calloc(1, sizeof(*im));
    if (im == NULL || (im->docs = calloc(batch, sizeof(bson_t *))) == NULL) {
        fprintf(stderr, "reporterctl: out of memory\n");
        free(im);
        return 1;
    }
    im->batch = batch;
    im->tty = isatty(STDERR_FILENO);
    im->started = rd_now_sec();
    if (fstat(fileno(f), &stt) == 0 && S_ISREG(stt.st_mode))
        im->total_bytes = stt.st_size;
    im->st = rd_store_open(&conf->mongodb, "reporterctl import", err, sizeof(err));
    if (im->st == NULL || (drop && rd_store_drop(im->st, err, sizeof(err)) != RD_OK)) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rc = 1;
        goto done;
    }
    if (fmt == FMT_AUTO)
        fmt = sniff(f);

    if (fmt == FMT_ARRAY) {
        while (rc == 0 && !im->failed && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
            for (i = 0; i < n && rc == 0; i++) {
                int r = split_byte(im, &sp, buf[i]);

                if (r == -1)
                    rc = 1;
                else if (r < 0) {
                    fprintf(stderr, "%sreporterctl: not a JSON array of records at byte %" PRId64
                            "\n", im->tty ? "\n" : "", sp.offset);
                    rc = 1;
                }
            }
            im->bytes += n;
            report(im, 0);
        }
        if (rc == 0 && sp.state != 3) {
            fprintf(stderr, "%sreporterctl: the JSON array is not closed (truncated file?)\n",
                    im->tty ? "\n" : "");
            rc = 1;
        }
    } else {
        while (rc == 0 && !im->failed && (got = getline(&line, &cap, f)) >= 0) {
            char where[64];

            lineno++;
            im->bytes += got;
            if (fmt == FMT_CSV) {
                rc = csv_line(im, line, lineno) ? 1 : 0;
            } else if (line[strspn(line, " \t\r\n")] != '\0') {
                snprintf(where, sizeof(where), "line %" PRId64, lineno);
                rc = json_record(im, line, (size_t) got, where) ? 1 : 0;
            }
            report(im, 0);
        }
    }
    if (flush_batch(im) != 0 || im->failed)
        rc = 1;
    report(im, 1);
    if (rc == 0 && rd_store_index_phone(im->st, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rc = 1;
    }
    fprintf(stderr, "import: %" PRId64 " records inserted into %s.%s, %" PRId64 " malformed%s\n",
            im->inserted, conf->mongodb.database, conf->mongodb.collection, im->bad,
            rc == 0 ? "; index {phone: 1} created" : "");
    if (rc == 0 && im->bad > 0)
        rc = 3;                             /* done, but some records were bad */

done:
    free(line);
    rd_store_close(im->st);
    free(im->docs);
    free(im);
    if (f != stdin)
        fclose(f);
    return rc;
}
