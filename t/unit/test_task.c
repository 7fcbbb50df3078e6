/*
 * test_task.c -- task parsing and validation: every outcome and every
 * kind of bad input the contract names, the depth limit at its minimum,
 * 100,000 phones with duplicates, and writing a task body.  And the rest
 * of json_check.h: one member of an object found without parsing the rest,
 * UTF-8 sequences, and any bytes quoted as a valid JSON string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_check.h"
#include "tap.h"
#include "task.h"

static struct rd_conf_task limits = { 100, 1048576, 16 };

/* rd_json_member's value text for key in body, "(none)" when not found. */
static const char *
member(const char *body, const char *key)
{
    static char buf[256];
    const char *v;
    size_t      n;

    if (rd_json_member(body, strlen(body), key, &v, &n) != 0)
        return "(none)";
    snprintf(buf, sizeof(buf), "%.*s", (int) n, v);
    return buf;
}

static void
json_helpers(void)
{
    const char *obj = " { \"a\" : [1, {\"status\": \"no\"}], \"s\\u0074atus\": 1, \"status\" : "
                      "\"Complete\" , \"error\": \"x\\\"y\" ";
    char       *q;
    char        all[256];
    int         i;

    is_str(member(obj, "status"), "\"Complete\"", "rd_json_member: a top-level member, not a nested one");
    is_str(member(obj, "a"), "[1, {\"status\": \"no\"}]", "  a container's text whole");
    is_str(member(obj, "error"), "\"x\\\"y\"", "  nothing after the member is read: the object may be cut short");
    is_str(member("{\"error\": \"x\\\"y\"}", "error"), "\"x\\\"y\"", "  a string with its escapes");
    is_str(member("{\"a\": 1, \"a\": 2}", "a"), "1", "  the first of duplicates");
    is_str(member("{\"a\": 1, \"b\": nope, \"c\": 3}", "c"), "(none)", "  not past invalid JSON");
    is_str(member("[\"a\", 1]", "a"), "(none)", "  an array has no members");
    is_str(member("{}", "a"), "(none)", "  nor has {}");

    ok(rd_utf8_seq("\xc3\xa9", "\xc3\xa9" + 2) == 2, "rd_utf8_seq: a two-byte character");
    ok(rd_utf8_seq("\xc3", "\xc3" + 1) == 0, "  cut short");
    ok(rd_utf8_seq("\xed\xa0\x80", "\xed\xa0\x80" + 3) == 0, "  a surrogate");
    ok(rd_utf8_seq("\xc0\xaf", "\xc0\xaf" + 2) == 0, "  an overlong form");
    ok(rd_utf8_seq("a", "a") == 0, "  nothing at the end");

    q = rd_json_quote("a\"b\\c\td\x7f\xc3\xa9 \xe2\x82", strlen("a\"b\\c\td\x7f\xc3\xa9 \xe2\x82"));
    is_str(q, "\"a\\\"b\\\\c\\u0009d\\u007f\xc3\xa9 \\ufffd\\ufffd\"",
           "rd_json_quote: escapes, UTF-8 kept, a character cut short replaced byte by byte");
    free(q);
    for (i = 0; i < 255; i++)
        all[i] = (char) (i + 1);
    q = rd_json_quote(all, 255);
    ok(q != NULL && rd_json_check(q, strlen(q), 2, &(size_t) { 0 }) == 0,
       "  every byte value gives strict JSON");
    free(q);
}

static int
parse(const char *body, struct rd_task *t, char *err)
{
    return rd_task_parse(body, strlen(body), &limits, t, err, 512);
}

static void
expect(const char *body, int outcome, const char *needle)
{
    struct rd_task t;
    char           err[512] = "";
    int            rc = parse(body, &t, err);

    is_int(rc, outcome, "%.60s -> outcome %d", body, outcome);
    if (needle != NULL)
        like(err, needle, "  error says \"%s\"", needle);
    rd_task_free(&t);
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 100,000 phones, most of them repeated: each distinct phone once, in the
 * order of its first occurrence, checked against a table of seen values. */
static void
many_phones(void)
{
    enum { N = 100000, RANGE = 30011 };
    struct rd_conf_task big = { N, 64 * 1024 * 1024, 16 };
    struct rd_task      t;
    int64_t            *want = malloc(N * sizeof(*want));
    unsigned char      *seen = calloc(RANGE, 1);
    char               *body = malloc(N * 24 + 64), err[512];
    size_t              len, nwant = 0, i, bad = 0;
    double              t0;
    int                 rc;
    int64_t             p;

    len = (size_t) sprintf(body, "{\"correlation_id\": 1, \"phones\": [");
    for (i = 0; i < N; i++) {
        p = (int64_t) ((i * 7919 + i / 3) % RANGE) - RANGE / 2;
        len += (size_t) sprintf(body + len, "%s%lld", i ? "," : "", (long long) p);
        if (!seen[p + RANGE / 2]) {
            seen[p + RANGE / 2] = 1;
            want[nwant++] = p;
        }
    }
    len += (size_t) sprintf(body + len, "]}");
    t0 = now();
    rc = rd_task_parse(body, len, &big, &t, err, sizeof(err));
    printf("# 100000 phones (%zu distinct) parsed and folded in %.3f s\n", nwant, now() - t0);
    is_int(rc, RD_TASK_OK, "100000 phones parse");
    is_int(t.nphones, nwant, "duplicates folded: %zu distinct", nwant);
    for (i = 0; i < nwant && i < t.nphones; i++)
        bad += t.phones[i] != want[i];
    is_int(bad, 0, "each phone at its first position");
    rd_task_free(&t);
    free(body);
    free(seen);
    free(want);
}

int
main(void)
{
    struct rd_task t;
    char           err[512], big[4096];
    int            rc, i, n;

    json_helpers();
    rc = parse("{\"correlation_id\": 13242421424214, \"phones\": [1,2,3,4,5,6,7,8,9,10]}", &t, err);
    is_int(rc, RD_TASK_OK, "the seed's example task is valid");
    is_int(t.id_int, 13242421424214LL, "integer correlation_id kept exactly");
    is_int(t.id_is_string, 0, "integer id stays an integer");
    is_str(t.id_text, "13242421424214", "id text");
    is_int(t.nphones, 10, "ten phones");
    rd_task_free(&t);

    rc = parse("{\"phones\": [5, 3, 5, 3, 7], \"correlation_id\": \"abc-1\"}", &t, err);
    is_int(rc, RD_TASK_OK, "string correlation_id accepted");
    ok(t.id_is_string, "string id stays a string");
    is_str(t.id_text, "abc-1", "string id text");
    is_int(t.nphones, 3, "duplicate phones folded");
    ok(t.phones[0] == 5 && t.phones[1] == 3 && t.phones[2] == 7, "request order kept");
    rd_task_free(&t);

    rc = parse("{\"correlation_id\": 9223372036854775807, \"phones\": [-9223372036854775807, 0, 9223372036854775807]}",
               &t, err);
    is_int(rc, RD_TASK_OK, "int64 edge values accepted");
    is_str(t.id_text, "9223372036854775807", "INT64_MAX id text exact");
    rd_task_free(&t);
    expect("{\"correlation_id\": 9223372036854775808, \"phones\": [1]}", RD_TASK_UNREADABLE, "64-bit");
    expect("{\"correlation_id\": 18446744073709551615, \"phones\": [1]}", RD_TASK_UNREADABLE, "64-bit");
    expect("{\"correlation_id\": -9223372036854775808, \"phones\": [1]}", RD_TASK_UNREADABLE, "64-bit");

    rc = parse("{\"correlation_id\": 1, \"phones\": [1], \"extra\": {\"a\": [1]}}", &t, err);
    is_int(rc, RD_TASK_OK, "unknown keys are ignored");
    rd_task_free(&t);

    /* Unreadable: no answer possible. */
    expect("", RD_TASK_UNREADABLE, "not JSON");
    expect("not json", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": 1, \"phones\": [1]", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": 1, \"phones\": [1]} trailing", RD_TASK_UNREADABLE, "not JSON");
    expect("[1,2,3]", RD_TASK_UNREADABLE, "must be a JSON object");
    expect("42", RD_TASK_UNREADABLE, "must be a JSON object");
    expect("\"str\"", RD_TASK_UNREADABLE, "must be a JSON object");
    expect("null", RD_TASK_UNREADABLE, NULL);
    expect("{\"phones\": [1]}", RD_TASK_UNREADABLE, "correlation_id is missing");
    expect("{\"correlation_id\": null, \"phones\": [1]}", RD_TASK_UNREADABLE, "integer or a string");
    expect("{\"correlation_id\": 1.5, \"phones\": [1]}", RD_TASK_UNREADABLE, "integer or a string");
    expect("{\"correlation_id\": true, \"phones\": [1]}", RD_TASK_UNREADABLE, "integer or a string");
    expect("{\"correlation_id\": {}, \"phones\": [1]}", RD_TASK_UNREADABLE, "integer or a string");
    expect("{\"correlation_id\": \"\", \"phones\": [1]}", RD_TASK_UNREADABLE, "1 to 255 bytes");
    expect("{\"correlation_id\": 99999999999999999999999, \"phones\": [1]}",
           RD_TASK_UNREADABLE, "64-bit");
    expect("{\"correlation_id\": -99999999999999999999999, \"phones\": [1]}",
           RD_TASK_UNREADABLE, "64-bit");
    expect("{'correlation_id': 1, 'phones': [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": NaN, \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": 1, \"phones\": [Infinity]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": \"a\tb\", \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": 01, \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": 1, \"phones\": [1,]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": \"a\\u0000b\", \"phones\": [1]}", RD_TASK_UNREADABLE, "without NUL");
    expect(" {\"correlation_id\": 5, \"phones\": [1e0]} ", RD_TASK_INVALID, "phones[0] must be an integer");
    {
        static const char nul[] = "{\"correlation_id\": 1, \"phones\": [1]}\0garbage";
        rc = rd_task_parse(nul, sizeof(nul) - 1, &limits, &t, err, sizeof(err));
        is_int(rc, RD_TASK_UNREADABLE, "an embedded NUL byte is unreadable");
        rd_task_free(&t);
    }
    expect("{\"correlation_id\": \"\xff\xfe\", \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": \"\xc0\xaf\", \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": \"\xed\xa0\x80\", \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": \"\xf4\x90\x80\x80\", \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    expect("{\"correlation_id\": \"\xe2\x82\", \"phones\": [1]}", RD_TASK_UNREADABLE, "not JSON");
    rc = parse("{\"correlation_id\": \"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x93\x9e\", \"phones\": [1]}", &t, err);
    is_int(rc, RD_TASK_OK, "valid 2-, 3- and 4-byte UTF-8 in a string id");
    rd_task_free(&t);
    n = snprintf(big, sizeof(big), "{\"correlation_id\": \"");
    for (i = 0; i < 300; i++)
        big[n++] = 'x';
    snprintf(big + n, sizeof(big) - n, "\", \"phones\": [1]}");
    expect(big, RD_TASK_UNREADABLE, "1 to 255 bytes");

    /* Depth limit. */
    n = snprintf(big, sizeof(big), "{\"correlation_id\": 1, \"phones\": [1], \"x\": ");
    for (i = 0; i < 40; i++)
        big[n++] = '[';
    for (i = 0; i < 40; i++)
        big[n++] = ']';
    snprintf(big + n, sizeof(big) - n, "}");
    expect(big, RD_TASK_UNREADABLE, "not JSON");

    /* Size limit. */
    {
        struct rd_conf_task small = { 100, 64, 16 };
        const char *b = "{\"correlation_id\": 1, \"phones\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14]}";

        rc = rd_task_parse(b, strlen(b), &small, &t, err, sizeof(err));
        is_int(rc, RD_TASK_UNREADABLE, "a body over max_message_size is unreadable");
        like(err, "exceeds max_message_size", "size error names the limit");
    }

    /* Invalid: answered with an Error result carrying the id. */
    rc = parse("{\"correlation_id\": 77}", &t, err);
    is_int(rc, RD_TASK_INVALID, "missing phones is invalid");
    is_str(t.id_text, "77", "id still known for the Error result");
    like(err, "phones is missing", "says phones is missing");
    expect("{\"correlation_id\": 1, \"phones\": []}", RD_TASK_INVALID, "phones is empty");
    expect("{\"correlation_id\": 1, \"phones\": 5}", RD_TASK_INVALID, "must be an array");
    expect("{\"correlation_id\": 1, \"phones\": \"1,2\"}", RD_TASK_INVALID, "must be an array");
    expect("{\"correlation_id\": 1, \"phones\": null}", RD_TASK_INVALID, "must be an array");
    expect("{\"correlation_id\": 1, \"phones\": [1, \"2\"]}", RD_TASK_INVALID, "phones[1] must be an integer");
    expect("{\"correlation_id\": 1, \"phones\": [1.5]}", RD_TASK_INVALID, "phones[0] must be an integer");
    expect("{\"correlation_id\": 1, \"phones\": [1, null]}", RD_TASK_INVALID, "phones[1]");
    expect("{\"correlation_id\": 1, \"phones\": [[1]]}", RD_TASK_INVALID, "phones[0]");
    expect("{\"correlation_id\": 1, \"phones\": [18446744073709551615]}", RD_TASK_INVALID, "64-bit");
    n = snprintf(big, sizeof(big), "{\"correlation_id\": \"s\", \"phones\": [");
    for (i = 0; i < 101; i++)
        n += snprintf(big + n, sizeof(big) - n, "%s%d", i ? "," : "", i);
    snprintf(big + n, sizeof(big) - n, "]}");
    expect(big, RD_TASK_INVALID, "more than the maximum of 100");

    /* Depth: max_depth counts containers, and a valid task has depth 2. */
    {
        struct rd_conf_task d2 = { 100, 1048576, 2 }, d3 = { 100, 1048576, 3 };
        const char *b = "{\"correlation_id\":1,\"phones\":[1]}";
        const char *deeper = "{\"correlation_id\":1,\"phones\":[[1]]}";

        rc = rd_task_parse(b, strlen(b), &d2, &t, err, sizeof(err));
        is_int(rc, RD_TASK_OK, "max_depth 2 (the minimum) accepts a valid task");
        is_int(t.nphones, 1, "  with its phone");
        rd_task_free(&t);
        rc = rd_task_parse(deeper, strlen(deeper), &d2, &t, err, sizeof(err));
        is_int(rc, RD_TASK_UNREADABLE, "max_depth 2 refuses depth 3");
        like(err, "nested deeper than 2", "  says so");
        rd_task_free(&t);
        rc = rd_task_parse(deeper, strlen(deeper), &d3, &t, err, sizeof(err));
        is_int(rc, RD_TASK_INVALID, "max_depth 3 reads depth 3 (and finds no integer)");
        like(err, "phones[0] must be an integer", "  says so");
        rd_task_free(&t);
    }

    many_phones();

    /* Each task limit at exactly the limit and one past it (under ASan in
     * the sanitizer build: an off-by-one would write past id_text). */
    {
        char   id[RD_CORRELATION_ID_MAX + 2], body[1024];
        size_t len;

        memset(id, 'i', sizeof(id));
        id[RD_CORRELATION_ID_MAX] = '\0';
        snprintf(body, sizeof(body), "{\"correlation_id\": \"%s\", \"phones\": [1]}", id);
        rc = parse(body, &t, err);
        is_int(rc, RD_TASK_OK, "a correlation_id of exactly %d bytes", RD_CORRELATION_ID_MAX);
        is_int((long long) strlen(t.id_text), RD_CORRELATION_ID_MAX, "  kept whole");
        rd_task_free(&t);
        id[RD_CORRELATION_ID_MAX] = 'i';
        id[RD_CORRELATION_ID_MAX + 1] = '\0';
        snprintf(body, sizeof(body), "{\"correlation_id\": \"%s\", \"phones\": [1]}", id);
        expect(body, RD_TASK_UNREADABLE, "1 to 255 bytes");

        /* a body of exactly max_message_size bytes, and one byte more */
        snprintf(body, sizeof(body), "{\"correlation_id\": 1, \"phones\": [1, 2, 3]}");
        len = strlen(body);
        {
            struct rd_conf_task exact = { 100, (int) len, 16 }, under = { 100, (int) len - 1, 16 };

            rc = rd_task_parse(body, len, &exact, &t, err, sizeof(err));
            is_int(rc, RD_TASK_OK, "a body of exactly max_message_size bytes");
            rd_task_free(&t);
            rc = rd_task_parse(body, len, &under, &t, err, sizeof(err));
            is_int(rc, RD_TASK_UNREADABLE, "a body one byte over max_message_size");
            rd_task_free(&t);
        }

        /* exactly max_phones phones (101 are refused above) */
        n = snprintf(big, sizeof(big), "{\"correlation_id\": \"s\", \"phones\": [");
        for (i = 0; i < 100; i++)
            n += snprintf(big + n, sizeof(big) - n, "%s%d", i ? "," : "", i);
        snprintf(big + n, sizeof(big) - n, "]}");
        rc = parse(big, &t, err);
        is_int(rc, RD_TASK_OK, "exactly max_phones (100) phones");
        is_int(t.nphones, 100, "  all of them");
        rd_task_free(&t);

        /* the phone range, INT64_MIN + 1 .. INT64_MAX (json-c clamps to
         * INT64_MIN, so that value cannot be told from one below it): the
         * bounds, and one past each */
        rc = parse("{\"correlation_id\": 1, \"phones\": [-9223372036854775807, 9223372036854775807]}", &t, err);
        is_int(rc, RD_TASK_OK, "phones at INT64_MIN + 1 and INT64_MAX");
        ok(t.nphones == 2 && t.phones[0] == INT64_MIN + 1 && t.phones[1] == INT64_MAX, "  exact");
        rd_task_free(&t);
        expect("{\"correlation_id\": 1, \"phones\": [9223372036854775808]}", RD_TASK_INVALID, "64-bit");
        expect("{\"correlation_id\": 1, \"phones\": [-9223372036854775808]}", RD_TASK_INVALID, "64-bit");
    }

    /* Writing a body: exact text, and it reads back. */
    {
        int64_t ph[] = { 5, -9223372036854775807LL, 9223372036854775807LL, 5 };
        struct rd_task w = { 0 };
        char          *j;

        w.id_int = 13242421424214LL;
        w.phones = ph;
        w.nphones = 4;
        j = rd_task_to_json(&w);
        is_str(j, "{\"correlation_id\":13242421424214,\"phones\":[5,-9223372036854775807,"
               "9223372036854775807,5]}", "a task body with an integer id");
        rc = rd_task_parse(j, strlen(j), &limits, &t, err, sizeof(err));
        is_int(rc, RD_TASK_OK, "  reads back");
        ok(t.nphones == 3 && t.phones[0] == 5 && t.phones[1] == ph[1] && t.phones[2] == ph[2],
           "  with its phones");
        rd_task_free(&t);
        free(j);

        w.id_is_string = 1;
        snprintf(w.id_text, sizeof(w.id_text), "a/\"b\"");
        w.nphones = 1;
        j = rd_task_to_json(&w);
        is_str(j, "{\"correlation_id\":\"a/\\\"b\\\"\",\"phones\":[5]}", "a string id escaped");
        free(j);
    }
    return done_testing();
}
