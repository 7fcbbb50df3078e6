/*
 * ctl_import.c -- `reporterctl import FILE`: stream call records into the
 * collection with bulk inserts, never holding the file in memory.
 *
 * Formats: one JSON array of records (the old service's data.json),
 * newline-delimited JSON, or CSV (phone,start_date,end_date, optional
 * header), told apart by the first byte after an optional UTF-8 byte order
 * mark.  A record needs integer phone, start_date and end_date
 * ({"$numberLong": "..."} is accepted too) and is at most 64 KiB of one
 * JSON value.  Malformed records are counted and reported with their
 * position, never silently skipped; an array that is not one (a missing
 * or doubled comma) stops the import.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
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

/* JSON's white space (strchr() would match the NUL too). */
static int
is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

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
        /* in range first: converting 1e19 or NaN to int64 is undefined */
        d = json_object_get_double(v);
        if (d > -0x1p63 && d < 0x1p63 && d == floor(d)) {
            *out = (int64_t) d;
            return 0;
        }
    }
    snprintf(why, len, "%s must be an integer", key);
    return -1;
}

/* One record: one JSON object and nothing after it but white space. */
static int
json_record(struct importer *im, const char *text, size_t len, const char *where)
{
    struct json_tokener *tok = json_tokener_new_ex(8);
    struct json_object  *o;
    int64_t              phone, start, end;
    size_t               rest;
    char                 why[256];
    int                  rc = 0;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, text, (int) len + 1);
    rest = json_tokener_get_parse_end(tok);
    while (rest < len && is_ws(text[rest]))
        rest++;
    if (o == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        malformed(im, where, "not valid JSON");
    } else if (rest < len) {
        snprintf(why, sizeof(why), "%s after the JSON value, at byte %zu of the record",
                 text[rest] == '\0' ? "a NUL byte" : "trailing data", rest);
        malformed(im, where, why);
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
enum split_state {
    SP_BEFORE,              /* before the '[' */
    SP_FIRST,               /* after '[': a record or ']' */
    SP_NEXT,                /* after ',': a record */
    SP_IN,                  /* in a record */
    SP_AFTER,               /* after a record: ',' or ']' */
    SP_DONE                 /* after the ']' */
};

struct splitter {
    enum split_state state;
    int              depth, in_string, escape;
    int64_t          offset, elem_offset;
    const char      *why;   /* why it is not an array of records */
};

static int
end_element(struct importer *im, struct splitter *sp, enum split_state next)
{
    char   where[64];
    size_t len;

    snprintf(where, sizeof(where), "byte %" PRId64, sp->elem_offset);
    sp->state = next;
    if (im->elem_too_long) {
        im->elem_too_long = 0;
        im->elen = 0;
        malformed(im, where, "longer than 64 KiB");
        return 0;
    }
    while (im->elen > 0 && is_ws(im->elem[im->elen - 1]))
        im->elen--;
    im->elem[im->elen] = '\0';
    len = im->elen;
    im->elen = 0;
    return json_record(im, im->elem, len, where);
}

static void
keep_byte(struct importer *im, char c)
{
    if (im->elen < MAX_RECORD)
        im->elem[im->elen++] = c;
    else
        im->elem_too_long = 1;
}

static int
not_array(struct splitter *sp, const char *why)
{
    sp->why = why;
    return -2;
}

/* 0, -1 when inserting failed, -2 with sp->why when it is not an array. */
static int
split_byte(struct importer *im, struct splitter *sp, char c)
{
    int ws = is_ws(c);

    sp->offset++;
    switch (sp->state) {
    case SP_BEFORE:
        if (c == '[')
            sp->state = SP_FIRST;
        else if (!ws)
            return not_array(sp, "it does not start with '['");
        return 0;
    case SP_FIRST:
    case SP_NEXT:
        if (ws)
            return 0;
        if (c == ']' && sp->state == SP_FIRST) {
            sp->state = SP_DONE;
            return 0;
        }
        if (c == ']')
            return not_array(sp, "a ',' before the ']'");
        if (c == ',')
            return not_array(sp, "a ',' with no record before it");
        sp->state = SP_IN;
        sp->depth = 0;
        sp->in_string = sp->escape = 0;
        sp->elem_offset = sp->offset - 1;
        /* fall through */
    case SP_IN:
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
        } else if (c == ']' && sp->depth == 0) {
            /* the array's own ']' after a scalar */
            return end_element(im, sp, SP_DONE);
        } else if (c == '}' && sp->depth == 0) {
            return not_array(sp, "a '}' that closes nothing");
        } else if (c == '}' || c == ']') {
            keep_byte(im, c);
            return --sp->depth == 0 ? end_element(im, sp, SP_AFTER) : 0;
        } else if (c == ',' && sp->depth == 0) {
            return end_element(im, sp, SP_NEXT);
        }
        keep_byte(im, c);
        return 0;
    case SP_AFTER:
        if (ws)
            return 0;
        if (c == ',')
            sp->state = SP_NEXT;
        else if (c == ']')
            sp->state = SP_DONE;
        else
            return not_array(sp, "no ',' between two records");
        return 0;
    default:
        return ws ? 0 : not_array(sp, "data after the closing ']'");
    }
}

static int
csv_line(struct importer *im, char *line, size_t len, int64_t lineno)
{
    char    where[64], *p = line, *end;
    int64_t v[3];
    int     i;

    snprintf(where, sizeof(where), "line %" PRId64, lineno);
    if (memchr(line, '\0', len) != NULL) {
        malformed(im, where, "a NUL byte in the line");
        return 0;
    }
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

/* Skip a UTF-8 byte order mark: 3 bytes, 0 without one, -1 for a
 * start that is neither a mark nor anything the formats allow. */
static int
skip_bom(FILE *f)
{
    int c = getc(f);

    if (c != 0xEF) {
        if (c != EOF)
            ungetc(c, f);
        return 0;
    }
    return getc(f) == 0xBB && getc(f) == 0xBF ? 3 : -1;
}

static enum format
sniff(FILE *f)
{
    int c;

    while ((c = getc(f)) != EOF && is_ws(c))
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
        { "drop", no_argument, NULL, 'd' }, { "if-empty", no_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 }
    };
    struct importer *im;
    struct splitter  sp = { 0 };
    enum format      fmt = FMT_AUTO;
    struct stat      stt;
    char             err[512], *line = NULL, buf[65536];
    size_t           cap = 0, n, i;
    ssize_t          got;
    int64_t          lineno = 0;
    int              opt, drop = 0, if_empty = 0, rc = 0;
    long             batch = 10000;
    FILE            *f;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            fmt = strcmp(optarg, "json") == 0 ? FMT_ARRAY : strcmp(optarg, "ndjson") == 0
                  ? FMT_NDJSON : strcmp(optarg, "csv") == 0 ? FMT_CSV : -1;
            if ((int) fmt < 0) {
                fprintf(stderr, "reporterctl: --format is json, ndjson or csv\n");
                return EX_USAGE;
            }
            break;
        case 'b':
            if (rd_ctl_arg_long("--batch", optarg, 1, 100000, &batch) != 0)
                return EX_USAGE;
            break;
        case 'd': drop = 1; break;
        case 'e': if_empty = 1; break;
        default: return EX_USAGE;
        }
    }
    if (optind + 1 != argc || (drop && if_empty)) {
        fprintf(stderr, "reporterctl: usage: import FILE|- [--format json|ndjson|csv] "
                "[--batch 1..100000] [--drop | --if-empty]\n");
        return EX_USAGE;
    }
    if (conf == NULL)
        return 0;              /* the arguments checked, nothing done */
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
    if (im->st == NULL || (drop && rd_ctl_drop(conf, im->st, err, sizeof(err)) != RD_OK)) {
        fprintf(stderr, "reporterctl: %s\n", err);
        rc = 1;
        goto done;
    }
    if (if_empty && (rc = rd_ctl_held(conf, im->st, "import")) != 0) {
        rc = rc < 0 ? 1 : 0;
        goto done;
    }
    sp.offset = skip_bom(f);
    if (sp.offset < 0) {
        fprintf(stderr, "reporterctl: %s starts with a byte 0xEF that is not part of a "
                "UTF-8 byte order mark\n", argv[optind]);
        rc = 1;
        goto done;
    }
    im->bytes = sp.offset;
    if (fmt == FMT_AUTO)
        fmt = sniff(f);

    if (fmt == FMT_ARRAY) {
        while (rc == 0 && !im->failed && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
            for (i = 0; i < n && rc == 0; i++) {
                int r = split_byte(im, &sp, buf[i]);

                if (r == -1)
                    rc = 1;
                else if (r < 0) {
                    fprintf(stderr, "%sreporterctl: not a JSON array of records: %s, at byte %"
                            PRId64 "\n", im->tty ? "\n" : "", sp.why, sp.offset - 1);
                    rc = 1;
                }
            }
            im->bytes += n;
            report(im, 0);
        }
        if (rc == 0 && sp.state != SP_DONE) {
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
                rc = csv_line(im, line, (size_t) got, lineno) ? 1 : 0;
            } else {
                snprintf(where, sizeof(where), "line %" PRId64, lineno);
                while (got > 0 && is_ws(line[got - 1]))
                    line[--got] = '\0';
                if (got > MAX_RECORD)
                    malformed(im, where, "longer than 64 KiB");
                else if (got > 0)               /* not a blank line */
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
