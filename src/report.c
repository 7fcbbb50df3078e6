/*
 * report.c -- the aggregation pipeline, the reading of its rows into
 * integer sums, and the result message computed from those integers.
 *
 * The database counts and sums integer milliseconds per phone; every
 * figure is then computed here in integer arithmetic, so decimal ties
 * round the way a person would (half away from zero) and nothing is lost
 * to binary doubles.
 *
 * A record of a requested phone is valid iff start_date and end_date are
 * both integers (int32, int64, or a double holding an integral value) or
 * both dates, each within +-2^52 ms, and end_date >= start_date.  Any
 * other record is left out of every count, sum and extreme and counted
 * in `invalid` instead.  Buckets are half-open: ms < 10000, [10000,
 * 30000), >= 30000; the "over 15" sum is over ms strictly above 15000.
 *
 * Every figure a result carries is below RD_REPORT_MAX_FIGURE in
 * magnitude: past it, the result is an Error naming the phone and the
 * figure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "report.h"
#include "util.h"

#define MS_BOUND  INT64_C(4503599627370496)     /* 2^52 */

static void
append_stage(bson_t *p, uint32_t *i, bson_t *stage)
{
    char        buf[16];
    const char *k;

    bson_uint32_to_string((*i)++, &k, buf, sizeof(buf));
    BSON_APPEND_DOCUMENT(p, k, stage);
    bson_destroy(stage);
}

/* {$sum: {$cmp: ["$ms", v]}}: per record 1 above v, -1 below (and for
 * null); v halfway between two integers, never 0. */
static void
append_cmp(bson_t *g, const char *key, double v)
{
    bson_t *s = BCON_NEW("$sum", "{", "$cmp", "[", BCON_UTF8("$ms"), BCON_DOUBLE(v), "]", "}");

    BSON_APPEND_DOCUMENT(g, key, s);
    bson_destroy(s);
}

/*
 * The stages, as the MongoDB documentation would write them (S and E
 * standing for "$start_date" and "$end_date", B for 2^52):
 *
 *   { $project: { _id: 0, phone: 1, ms: { $let: {
 *       vars: { d: { $cond: [
 *           { $and: [ { $gte: [S, -B] }, { $lte: [E, B] }, { $gte: [E, S] } ] },
 *           { $subtract: [E, S] },
 *           { $cond: [ { $and: [ { $eq: [{ $type: S }, "date"] }, { $eq: [{ $type: E }, "date"] },
 *                                { $gte: [S, Date(-B)] }, { $lte: [E, Date(B)] }, { $gte: [E, S] } ] },
 *                      { $subtract: [E, S] }, null ] } ] } },
 *       in: { $cond: [ { $in: [ { $type: "$$d" }, ["int", "long", "null"] ] }, "$$d",
 *             { $cond: [ { $and: [ { $eq: [{ $type: "$$d" }, "double"] },
 *                                  { $eq: [S, { $trunc: [S] }] }, { $eq: [E, { $trunc: [E] }] } ] },
 *                        { $toLong: "$$d" }, null ] } ] } } } } },
 *   { $group: { _id: "$phone", n: { $sum: 1 },
 *               c0:  { $sum: { $cmp: ["$ms", -0.5] } },
 *               c10: { $sum: { $cmp: ["$ms", 9999.5] } },
 *               c30: { $sum: { $cmp: ["$ms", 29999.5] } },
 *               sum_ms: { $sum: "$ms" }, min_ms: { $min: "$ms" }, max_ms: { $max: "$ms" },
 *               sum_ms_over_15: { $sum: { $cond: [ { $gt: ["$ms", 15000] }, "$ms", 0 ] } } } }
 *
 * One expression per record gives ms, or null for an invalid record.
 * MongoDB orders values of different types by type (null < numbers <
 * strings, objects, ... < dates), so S >= -B, E <= B and E >= S hold only
 * when both are numbers (int, long, double or decimal) in [-B, B] with
 * E >= S.  The type of E - S then says the rest: int or long when both
 * are, and those are whole; double when one is, and only then are both
 * asked to be whole ($trunc, which fails on anything but a number, sees
 * numbers only); decimal when one is, which is not valid.  Dates get the
 * same tests in their own branch; their difference is a long.
 *
 * The group reads ms alone.  $sum, $min and $max pass over null.  A count
 * is a $cmp against a threshold halfway between two integers: per record
 * +1 above, -1 below, and null (an invalid record) compares below every
 * number, so c = above - (n - above).  rd_report_parse_row takes the
 * counts back in integers: valid records (c0 + n) / 2, the buckets the
 * halves of the differences, invalid (n - c0) / 2.
 */
void
rd_report_append_group(bson_t *p, uint32_t *i)
{
    bson_t     *st, *dates, *d, *in, g = BSON_INITIALIZER;
    const char *s = "$start_date", *e = "$end_date";

    dates = BCON_NEW("$cond", "[",
        "{", "$and", "[",
            "{", "$eq", "[", "{", "$type", BCON_UTF8(s), "}", BCON_UTF8("date"), "]", "}",
            "{", "$eq", "[", "{", "$type", BCON_UTF8(e), "}", BCON_UTF8("date"), "]", "}",
            "{", "$gte", "[", BCON_UTF8(s), BCON_DATE_TIME(-MS_BOUND), "]", "}",
            "{", "$lte", "[", BCON_UTF8(e), BCON_DATE_TIME(MS_BOUND), "]", "}",
            "{", "$gte", "[", BCON_UTF8(e), BCON_UTF8(s), "]", "}",
        "]", "}",
        "{", "$subtract", "[", BCON_UTF8(e), BCON_UTF8(s), "]", "}",
        BCON_NULL, "]");
    d = BCON_NEW("$cond", "[",
        "{", "$and", "[",
            "{", "$gte", "[", BCON_UTF8(s), BCON_INT64(-MS_BOUND), "]", "}",
            "{", "$lte", "[", BCON_UTF8(e), BCON_INT64(MS_BOUND), "]", "}",
            "{", "$gte", "[", BCON_UTF8(e), BCON_UTF8(s), "]", "}",
        "]", "}",
        "{", "$subtract", "[", BCON_UTF8(e), BCON_UTF8(s), "]", "}",
        BCON_DOCUMENT(dates), "]");
    bson_destroy(dates);
    in = BCON_NEW("$cond", "[",
        "{", "$in", "[", "{", "$type", BCON_UTF8("$$d"), "}",
            "[", BCON_UTF8("int"), BCON_UTF8("long"), BCON_UTF8("null"), "]", "]", "}",
        BCON_UTF8("$$d"),
        "{", "$cond", "[",
            "{", "$and", "[",
                "{", "$eq", "[", "{", "$type", BCON_UTF8("$$d"), "}", BCON_UTF8("double"), "]", "}",
                "{", "$eq", "[", BCON_UTF8(s), "{", "$trunc", "[", BCON_UTF8(s), "]", "}", "]", "}",
                "{", "$eq", "[", BCON_UTF8(e), "{", "$trunc", "[", BCON_UTF8(e), "]", "}", "]", "}",
            "]", "}",
            "{", "$toLong", BCON_UTF8("$$d"), "}",
            BCON_NULL, "]", "}",
        "]");
    st = BCON_NEW("$project", "{", "_id", BCON_INT32(0), "phone", BCON_INT32(1),
                  "ms", "{", "$let", "{", "vars", "{", "d", BCON_DOCUMENT(d), "}",
                                          "in", BCON_DOCUMENT(in), "}", "}", "}");
    bson_destroy(d);
    bson_destroy(in);
    append_stage(p, i, st);

    BSON_APPEND_UTF8(&g, "_id", "$phone");
    st = BCON_NEW("n", "{", "$sum", BCON_INT32(1), "}");
    bson_concat(&g, st);
    bson_destroy(st);
    append_cmp(&g, "c0", -0.5);
    append_cmp(&g, "c10", 9999.5);
    append_cmp(&g, "c30", 29999.5);
    st = BCON_NEW("sum_ms", "{", "$sum", BCON_UTF8("$ms"), "}",
                  "min_ms", "{", "$min", BCON_UTF8("$ms"), "}",
                  "max_ms", "{", "$max", BCON_UTF8("$ms"), "}",
                  "sum_ms_over_15", "{", "$sum", "{", "$cond", "[",
                      "{", "$gt", "[", BCON_UTF8("$ms"), BCON_INT64(15000), "]", "}",
                      BCON_UTF8("$ms"), BCON_INT32(0), "]", "}", "}");
    bson_concat(&g, st);
    bson_destroy(st);
    st = BCON_NEW("$group", BCON_DOCUMENT(&g));
    bson_destroy(&g);
    append_stage(p, i, st);
}

bson_t *
rd_report_pipeline(const int64_t *phones, size_t n)
{
    bson_t      in = BSON_INITIALIZER, *p, *m;
    char        key[24];
    const char *k;
    uint32_t    i = 0;
    size_t      j;

    for (j = 0; j < n; j++) {
        bson_uint32_to_string((uint32_t) j, &k, key, sizeof(key));
        BSON_APPEND_INT64(&in, k, phones[j]);
    }
    p = bson_new();
    m = BCON_NEW("$match", "{", "phone", "{", "$in", BCON_ARRAY(&in), "}", "}");
    bson_destroy(&in);
    append_stage(p, &i, m);
    rd_report_append_group(p, &i);
    return p;
}

static int
cmp_phone(const void *a, const void *b)
{
    int64_t x = ((const struct rd_phone_sums *) a)->phone;
    int64_t y = ((const struct rd_phone_sums *) b)->phone;

    return x < y ? -1 : x > y;
}

/* stats[] is sorted by phone, so rows and phones are matched by bsearch. */
struct rd_phone_sums *
rd_report_find(struct rd_phone_sums *stats, size_t n, int64_t phone)
{
    struct rd_phone_sums key;

    key.phone = phone;
    return bsearch(&key, stats, n, sizeof(*stats), cmp_phone);
}

void
rd_report_init(struct rd_phone_sums *stats, const struct rd_task *task)
{
    size_t i;

    for (i = 0; i < task->nphones; i++) {
        memset(&stats[i], 0, sizeof(stats[i]));
        stats[i].phone = task->phones[i];
    }
    qsort(stats, task->nphones, sizeof(*stats), cmp_phone);
}

/* A Decimal128 that equals an integer within int64 (8, 8.00, 8E+3, -0),
 * as MongoDB compares it with int32, int64 and double: RD_OK, else
 * RD_DECLINED (a fraction, beyond int64, NaN, infinite). */
static int
decimal_phone(const bson_decimal128_t *d, int64_t *phone)
{
    char        text[BSON_DECIMAL128_STRING], digits[64];
    const char *p = text;
    int         neg = 0, nd = 0, frac = 0, dot = 0, exp = 0, scale, i;
    unsigned __int128 v = 0;

    bson_decimal128_to_string(d, text);
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    for (; *p != '\0' && *p != 'E'; p++) {
        if (*p == '.') {
            dot = 1;
        } else if (*p >= '0' && *p <= '9') {
            if (nd == (int) sizeof(digits))
                return RD_DECLINED;
            digits[nd++] = *p;
            frac += dot;
        } else {
            return RD_DECLINED;         /* NaN, Infinity */
        }
    }
    if (*p == 'E') {
        char *end;
        long  e = strtol(p + 1, &end, 10);

        if (*end != '\0' || e < -7000 || e > 7000)
            return RD_DECLINED;
        exp = (int) e;
    }
    scale = frac - exp;                 /* value = digits * 10^-scale */
    for (i = 0; i < nd; i++) {
        if (i >= nd - scale) {          /* a fractional digit */
            if (digits[i] != '0')
                return RD_DECLINED;
            continue;
        }
        v = v * 10 + (unsigned) (digits[i] - '0');
        if (v > ((unsigned __int128) 1 << 63))
            return RD_DECLINED;
    }
    for (i = 0; v != 0 && i < -scale; i++) {
        v *= 10;
        if (v > ((unsigned __int128) 1 << 63))
            return RD_DECLINED;
    }
    if (!neg && v == ((unsigned __int128) 1 << 63))
        return RD_DECLINED;
    *phone = neg ? (int64_t) (0 - (uint64_t) v) : (int64_t) v;
    return RD_OK;
}

/* _id as an int64: any number MongoDB finds equal to an integer in
 * [-2^63, 2^63) -- int32, int64, a double or a Decimal128 holding an
 * integral value.  The comparisons are false for NaN. */
int
rd_report_parse_phone(const bson_t *doc, int64_t *phone, char *err, size_t errlen)
{
    bson_iter_t       it;
    bson_decimal128_t dec;
    double            v;

    if (!bson_iter_init_find(&it, doc, "_id")) {
        snprintf(err, errlen, "a row without _id (records without a phone)");
        return RD_DECLINED;
    }
    switch (bson_iter_type(&it)) {
    case BSON_TYPE_INT32:
        *phone = bson_iter_int32(&it);
        return RD_OK;
    case BSON_TYPE_INT64:
        *phone = bson_iter_int64(&it);
        return RD_OK;
    case BSON_TYPE_DOUBLE:
        v = bson_iter_double(&it);
        if (v >= -0x1p63 && v < 0x1p63 && v == (double) (int64_t) v) {
            *phone = (int64_t) v;
            return RD_OK;
        }
        snprintf(err, errlen, "phone %.17g is not an integer within 64 bits", v);
        return RD_DECLINED;
    case BSON_TYPE_DECIMAL128:
        if (bson_iter_decimal128(&it, &dec) && decimal_phone(&dec, phone) == RD_OK)
            return RD_OK;
        snprintf(err, errlen, "a Decimal128 phone that is not an integer within 64 bits");
        return RD_DECLINED;
    default:
        snprintf(err, errlen, "a phone of BSON type 0x%02x, not an integer",
                 (unsigned) bson_iter_type(&it));
        return RD_DECLINED;
    }
}

/* An int32 or int64 field; a double is a sum that overflowed in the
 * database.  NULL or missing is accepted (as 0) when may_be_null. */
static int
parse_int(const bson_t *doc, const char *key, int may_be_null, int64_t *v,
          char *err, size_t errlen)
{
    bson_iter_t it;

    *v = 0;
    if (!bson_iter_init_find(&it, doc, key)) {
        if (may_be_null)
            return RD_OK;
        snprintf(err, errlen, "row lacks %s", key);
        return RD_ERROR;
    }
    switch (bson_iter_type(&it)) {
    case BSON_TYPE_INT32:
        *v = bson_iter_int32(&it);
        return RD_OK;
    case BSON_TYPE_INT64:
        *v = bson_iter_int64(&it);
        return RD_OK;
    case BSON_TYPE_NULL:
        if (may_be_null)
            return RD_OK;
        break;
    case BSON_TYPE_DOUBLE:
        snprintf(err, errlen, "row has %s %.17g, a double: the sum overflowed 64 bits",
                 key, bson_iter_double(&it));
        return RD_ERROR;
    default:
        break;
    }
    snprintf(err, errlen, "row has %s of BSON type 0x%02x, not an integer",
             key, (unsigned) bson_iter_type(&it));
    return RD_ERROR;
}

const struct rd_report_field rd_report_sums[RD_REPORT_NSUMS] = {
    { "cnt", offsetof(struct rd_phone_sums, cnt) },
    { "cnt_10", offsetof(struct rd_phone_sums, cnt_10) },
    { "cnt_10_30", offsetof(struct rd_phone_sums, cnt_10_30) },
    { "cnt_30", offsetof(struct rd_phone_sums, cnt_30) },
    { "sum_ms", offsetof(struct rd_phone_sums, sum_ms) },
    { "sum_ms_over_15", offsetof(struct rd_phone_sums, sum_ms_over_15) },
    { "invalid", offsetof(struct rd_phone_sums, invalid) }
};

/* RD_ERROR, the message prefixed with the phone: the caller's names it. */
static int
failed(const struct rd_phone_sums *r, char *err, size_t errlen)
{
    char tmp[256];

    snprintf(tmp, sizeof(tmp), "%s", err);
    snprintf(err, errlen, "phone %" PRId64 ": %s", r->phone, tmp);
    return RD_ERROR;
}

/* The extremes into r, whose counts are read, then r into *s. */
static int
extremes(const bson_t *doc, struct rd_phone_sums *r, struct rd_phone_sums *s,
         char *err, size_t errlen)
{
    /* With no valid record $min and $max are null. */
    if (parse_int(doc, "min_ms", r->cnt == 0, &r->min_ms, err, errlen) != RD_OK
        || parse_int(doc, "max_ms", r->cnt == 0, &r->max_ms, err, errlen) != RD_OK)
        return failed(r, err, errlen);
    if (r->cnt == 0)
        r->min_ms = r->max_ms = 0;
    *s = *r;
    return RD_OK;
}

int
rd_report_parse_row(const bson_t *row, struct rd_phone_sums *s, char *err, size_t errlen)
{
    struct rd_phone_sums r;
    int64_t              n, c0, c10, c30;
    int                  rc;

    memset(&r, 0, sizeof(r));
    rc = rd_report_parse_phone(row, &r.phone, err, errlen);
    if (rc != RD_OK)
        return rc;
    if (parse_int(row, "n", 0, &n, err, errlen) != RD_OK
        || parse_int(row, "c0", 0, &c0, err, errlen) != RD_OK
        || parse_int(row, "c10", 0, &c10, err, errlen) != RD_OK
        || parse_int(row, "c30", 0, &c30, err, errlen) != RD_OK
        || parse_int(row, "sum_ms", 0, &r.sum_ms, err, errlen) != RD_OK
        || parse_int(row, "sum_ms_over_15", 0, &r.sum_ms_over_15, err, errlen) != RD_OK)
        return failed(&r, err, errlen);
    /* n records, c = above - (n - above) with 0 <= above <= n for each
     * threshold, above the higher ones fewer: n >= c0 >= c10 >= c30 >= -n,
     * all of n's parity.  Every difference is then in [0, 2n] and even,
     * exact in uint64_t, and its half fits an int64. */
    if (n < 0 || c0 > n || c10 > c0 || c30 > c10 || c30 < -n
        || ((uint64_t) n - (uint64_t) c0) % 2 != 0 || ((uint64_t) c0 - (uint64_t) c10) % 2 != 0
        || ((uint64_t) c10 - (uint64_t) c30) % 2 != 0) {
        snprintf(err, errlen, "row has counts n %" PRId64 ", c0 %" PRId64 ", c10 %" PRId64
                 ", c30 %" PRId64 " that no set of records gives", n, c0, c10, c30);
        return failed(&r, err, errlen);
    }
    if (r.sum_ms < 0 || r.sum_ms_over_15 < 0) {
        snprintf(err, errlen, "row has a sum below 0");
        return failed(&r, err, errlen);
    }
    r.invalid = (int64_t) (((uint64_t) n - (uint64_t) c0) / 2);
    r.cnt = n - r.invalid;
    r.cnt_10 = (int64_t) (((uint64_t) c0 - (uint64_t) c10) / 2);
    r.cnt_10_30 = (int64_t) (((uint64_t) c10 - (uint64_t) c30) / 2);
    r.cnt_30 = r.cnt - r.cnt_10 - r.cnt_10_30;
    return extremes(row, &r, s, err, errlen);
}

int
rd_report_parse_sums(const bson_t *doc, struct rd_phone_sums *s, char *err, size_t errlen)
{
    struct rd_phone_sums r;
    int64_t             *f;
    size_t               i;
    int                  rc;

    memset(&r, 0, sizeof(r));
    rc = rd_report_parse_phone(doc, &r.phone, err, errlen);
    if (rc != RD_OK)
        return rc;
    for (i = 0; i < RD_REPORT_NSUMS; i++) {
        f = (int64_t *) ((char *) &r + rd_report_sums[i].off);
        if (parse_int(doc, rd_report_sums[i].key, 0, f, err, errlen) != RD_OK)
            return failed(&r, err, errlen);
        if (*f < 0) {
            snprintf(err, errlen, "row has %s %" PRId64 ", below 0", rd_report_sums[i].key,
                     *f);
            return failed(&r, err, errlen);
        }
    }
    return extremes(doc, &r, s, err, errlen);
}

int
rd_report_sums_equal(const struct rd_phone_sums *a, const struct rd_phone_sums *b)
{
    size_t i;

    for (i = 0; i < RD_REPORT_NSUMS; i++)
        if (*(const int64_t *) ((const char *) a + rd_report_sums[i].off)
            != *(const int64_t *) ((const char *) b + rd_report_sums[i].off))
            return 0;
    return a->cnt == 0 || (a->min_ms == b->min_ms && a->max_ms == b->max_ms);
}

int
rd_report_sums_add(struct rd_phone_sums *into, const struct rd_phone_sums *from,
                   char *err, size_t errlen)
{
    struct rd_phone_sums r = *into;
    const int64_t       *a;
    int64_t             *t;
    size_t               i;

    for (i = 0; i < RD_REPORT_NSUMS; i++) {
        t = (int64_t *) ((char *) &r + rd_report_sums[i].off);
        a = (const int64_t *) ((const char *) from + rd_report_sums[i].off);
        if (__builtin_add_overflow(*t, *a, t)) {
            snprintf(err, errlen, "phone %" PRId64 ": %s overflows 64 bits", into->phone,
                     rd_report_sums[i].key);
            return RD_ERROR;
        }
    }
    if (from->cnt > 0) {
        if (into->cnt == 0) {
            r.min_ms = from->min_ms;
            r.max_ms = from->max_ms;
        } else {
            r.min_ms = from->min_ms < into->min_ms ? from->min_ms : into->min_ms;
            r.max_ms = from->max_ms > into->max_ms ? from->max_ms : into->max_ms;
        }
    }
    *into = r;
    return RD_OK;
}

int
rd_report_add_row(const bson_t *row, struct rd_phone_sums *stats, size_t n,
                  char *err, size_t errlen)
{
    struct rd_phone_sums  r, *s;
    int                   rc;

    rc = rd_report_parse_row(row, &r, err, errlen);
    if (rc == RD_DECLINED)
        return RD_OK;   /* an array holding a requested phone: not a phone */
    if (rc != RD_OK)
        return RD_ERROR;
    s = rd_report_find(stats, n, r.phone);
    if (s == NULL) {
        snprintf(err, errlen, "aggregation returned phone %" PRId64 ", which was not asked for",
                 r.phone);
        return RD_ERROR;
    }
    return rd_report_sums_add(s, &r, err, errlen);
}

int
rd_report_rows_add(const bson_t *row, void *arg, char *err, size_t errlen)
{
    struct rd_report_rows *r = arg;

    return rd_report_add_row(row, r->stats, r->n, err, errlen) == RD_OK ? 0 : -1;
}

/* num / den rounded half away from zero, den > 0; num's magnitude up to
 * 2^127. */
static unsigned __int128
div_round(unsigned __int128 num, unsigned __int128 den)
{
    return (num + den / 2) / den;
}

/* A figure in hundredths of its unit.  RD_ERROR with err naming the phone
 * and the figure when its magnitude reaches RD_REPORT_MAX_FIGURE units. */
struct figure {
    const char *name;
    int         neg;
    uint64_t    hundredths;
};

static int
figure_set(struct figure *f, const char *name, int neg, unsigned __int128 h, int64_t phone,
           char *err, size_t errlen)
{
    f->name = name;
    f->neg = neg && h != 0;             /* no "-0" */
    if (h >= (unsigned __int128) RD_REPORT_MAX_FIGURE * 100) {
        snprintf(err, errlen, "phone %" PRId64 ": %s is %" PRId64 " or more in magnitude, "
                 "outside the range a result carries", phone, name, RD_REPORT_MAX_FIGURE);
        return RD_ERROR;
    }
    f->hundredths = (uint64_t) h;
    return RD_OK;
}

static uint64_t
magnitude(int64_t v)
{
    return v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
}

/* The price in cents of ms milliseconds at price_e4 ten-thousandths per
 * second: ms * P / 10^5, half away from zero. */
static int
price(struct figure *f, const char *name, int64_t ms, int64_t price_e4, int64_t phone,
      char *err, size_t errlen)
{
    unsigned __int128 num = (unsigned __int128) magnitude(ms) * magnitude(price_e4);

    return figure_set(f, name, (ms < 0) != (price_e4 < 0), div_round(num, 100000), phone,
                      err, errlen);
}

/* The average duration in hundredths of a second: sum_ms / (10 cnt). */
static int
average(struct figure *f, int64_t sum_ms, int64_t cnt, int64_t phone, char *err, size_t errlen)
{
    unsigned __int128 den = (unsigned __int128) magnitude(cnt) * 10;

    return figure_set(f, "avg_dur_att", (sum_ms < 0) != (cnt < 0),
                      div_round(magnitude(sum_ms), den), phone, err, errlen);
}

/* The figure as a JSON number printed from its integer: 2 decimals at
 * most, no trailing zeros. */
static struct json_object *
money(const struct figure *f)
{
    char     buf[48];
    uint64_t whole = f->hundredths / 100;
    unsigned frac = (unsigned) (f->hundredths % 100);
    int      n;

    if (frac == 0)
        n = snprintf(buf, sizeof(buf), "%s%" PRIu64, f->neg ? "-" : "", whole);
    else if (frac % 10 == 0)
        n = snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%u", f->neg ? "-" : "", whole, frac / 10);
    else
        n = snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%02u", f->neg ? "-" : "", whole, frac);
    if (n <= 0 || (size_t) n >= sizeof(buf))
        return NULL;
    /* The double is only json-c's idea of the value; the text is printed. */
    return json_object_new_double_s((f->neg ? -1.0 : 1.0) * (double) f->hundredths / 100, buf);
}

struct figures {
    struct figure min, max, avg, sum_over_15;
};

static int
figures(const struct rd_phone_sums *s, int64_t price_e4, struct figures *out,
        char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (s->cnt > 0
        && (price(&out->min, "min_price_att", s->min_ms, price_e4, s->phone, err, errlen) != RD_OK
            || price(&out->max, "max_price_att", s->max_ms, price_e4, s->phone, err, errlen) != RD_OK
            || average(&out->avg, s->sum_ms, s->cnt, s->phone, err, errlen) != RD_OK))
        return RD_ERROR;
    return price(&out->sum_over_15, "sum_price_att_over_15", s->sum_ms_over_15, price_e4,
                 s->phone, err, errlen);
}

static struct json_object *
envelope(const struct rd_task *task, const char *status, const char *task_received)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "correlation_id", task->id_is_string
                           ? json_object_new_string(task->id_text)
                           : json_object_new_int64(task->id_int));
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "task_received", json_object_new_string(task_received));
    json_object_object_add(o, "from", json_object_new_string("report_service"));
    json_object_object_add(o, "to", json_object_new_string("client"));
    return o;
}

static char *
finish(struct json_object *o, double total_duration)
{
    char  buf[32];
    char *out;

    snprintf(buf, sizeof(buf), "%.6f", total_duration);
    json_object_object_add(o, "total_duration",
                           json_object_new_double_s(total_duration, buf));
    out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN
                                                | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

char *
rd_report_complete_json(const struct rd_task *task, const struct rd_phone_sums *stats,
                        int64_t price_e4, const char *task_received, double total_duration)
{
    struct json_object         *o, *data, *e, *dur;
    const struct rd_phone_sums *s;
    struct figures             *fig;
    char                        err[256];
    size_t                      i;

    fig = calloc(task->nphones ? task->nphones : 1, sizeof(*fig));
    if (fig == NULL)
        return NULL;
    for (i = 0; i < task->nphones; i++)
        if (figures(&stats[i], price_e4, &fig[i], err, sizeof(err)) != RD_OK) {
            free(fig);
            return rd_report_error_json(task, err, task_received, total_duration);
        }

    o = envelope(task, "Complete", task_received);
    data = json_object_new_array();
    for (i = 0; i < task->nphones; i++) {
        s = rd_report_find((struct rd_phone_sums *) stats, task->nphones, task->phones[i]);
        e = json_object_new_object();
        json_object_object_add(e, "phone", json_object_new_int64(s->phone));
        json_object_object_add(e, "cnt_all_attempts", json_object_new_int64(s->cnt));
        dur = json_object_new_object();
        json_object_object_add(dur, "10_sec", json_object_new_int64(s->cnt_10));
        json_object_object_add(dur, "10_30_sec", json_object_new_int64(s->cnt_10_30));
        json_object_object_add(dur, "30_sec", json_object_new_int64(s->cnt_30));
        json_object_object_add(e, "cnt_att_dur", dur);
        if (s->cnt > 0) {
            json_object_object_add(e, "min_price_att", money(&fig[s - stats].min));
            json_object_object_add(e, "max_price_att", money(&fig[s - stats].max));
            json_object_object_add(e, "avg_dur_att", money(&fig[s - stats].avg));
        } else {
            json_object_object_add(e, "min_price_att", NULL);
            json_object_object_add(e, "max_price_att", NULL);
            json_object_object_add(e, "avg_dur_att", NULL);
        }
        json_object_object_add(e, "sum_price_att_over_15", money(&fig[s - stats].sum_over_15));
        json_object_array_add(data, e);
    }
    free(fig);
    json_object_object_add(o, "data", data);
    return finish(o, total_duration);
}

char *
rd_report_error_json(const struct rd_task *task, const char *error,
                     const char *task_received, double total_duration)
{
    struct json_object *o = envelope(task, "Error", task_received);

    json_object_object_add(o, "error", json_object_new_string(error));
    json_object_object_add(o, "data", json_object_new_array());
    return finish(o, total_duration);
}
