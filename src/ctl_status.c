/*
 * ctl_status.c -- `reporterctl status`: what the task journal (journal.h)
 * says about tasks, by id or as an operator's list.
 *
 *   reporterctl status [--json] ID...          by correlation_id or message_id
 *   reporterctl status [--json] [--since DUR] [--status OUTCOME]
 *
 * One line per document (or its JSON with --json, one per line).  Exit
 * status 0 when every id was found, 3 when some were not, 1 on errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "ctl.h"
#include "journal.h"
#include "store.h"
#include "util.h"

struct shown {
    int     json;
    long    n;
};

static int
show(const bson_t *doc, void *arg)
{
    struct shown *s = arg;
    char          line[1400], *json;

    if (s->json) {
        json = bson_as_relaxed_extended_json(doc, NULL);
        if (json != NULL)
            printf("%s\n", json);
        bson_free(json);
    } else {
        rd_journal_status_line(doc, line, sizeof(line));
        printf("%s\n", line);
    }
    s->n++;
    return 0;
}

/* "90", "90s", "15m", "1h", "7d" in seconds; -1 when not one. */
static int64_t
duration_s(const char *s)
{
    char    *end;
    int64_t  v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60;
    if (strcmp(end, "h") == 0)
        return v * 3600;
    if (strcmp(end, "d") == 0)
        return v * 86400;
    return -1;
}

static mongoc_client_t *
open_client(const struct rd_conf *c)
{
    mongoc_client_t *client;
    mongoc_uri_t    *uri;
    bson_error_t     e;

    uri = mongoc_uri_new_with_error(c->mongodb.uri, &e);
    if (uri == NULL) {
        fprintf(stderr, "reporterctl: mongodb.uri: %s\n", e.message);
        return NULL;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, "reporterctl status");
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                   c->mongodb.limits.connect_timeout_ms);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, RD_JOURNAL_LOOKUP_MS + 1000);
    client = mongoc_client_new_from_uri_with_error(uri, &e);
    mongoc_uri_destroy(uri);
    if (client == NULL) {
        fprintf(stderr, "reporterctl: mongodb client: %s\n", e.message);
        return NULL;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return client;
}

static int
lookup(mongoc_client_t *client, const struct rd_conf *conf, const bson_t *filter,
       struct shown *s)
{
    char err[512];
    int  klass;

    if (rd_journal_find(client, conf, filter, show, s, &klass, err, sizeof(err)) != RD_OK) {
        fprintf(stderr, "reporterctl: reading the journal \"%s\" failed: %s\n",
                conf->journal.collection, err);
        return -1;
    }
    return 0;
}

int
rd_ctl_status(struct rd_conf *conf, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' }, { "since", required_argument, NULL, 's' },
        { "status", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 }
    };
    static const char *const outcomes[] = { "complete", "error", "dead_lettered", NULL };
    struct shown     s = { 0, 0 };
    mongoc_client_t *client;
    const char      *status = NULL;
    int64_t          since = -1;
    bson_t           filter, cond;
    int              opt, i, rc = 0, known;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'j': s.json = 1; break;
        case 's':
            if ((since = duration_s(optarg)) < 0) {
                fprintf(stderr, "reporterctl: --since takes a duration: 90s, 15m, 1h, 7d\n");
                return EX_USAGE;
            }
            break;
        case 'o':
            for (known = 0, i = 0; outcomes[i] != NULL; i++)
                known |= strcmp(optarg, outcomes[i]) == 0;
            if (!known) {
                fprintf(stderr, "reporterctl: --status is complete, error or dead_lettered\n");
                return EX_USAGE;
            }
            status = optarg;
            break;
        default:
            return EX_USAGE;
        }
    }
    if (optind == argc && since < 0 && status == NULL) {
        fprintf(stderr, "reporterctl: status needs IDs, or --since and/or --status\n");
        return EX_USAGE;
    }
    if (optind < argc && (since >= 0 || status != NULL)) {
        fprintf(stderr, "reporterctl: status takes IDs or --since/--status, not both\n");
        return EX_USAGE;
    }
    if (conf == NULL)
        return 0;              /* the arguments checked, nothing done */
    if ((client = open_client(conf)) == NULL)
        return 1;
    if (optind == argc) {
        bson_init(&filter);
        if (since >= 0) {
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "answered", &cond);
            BSON_APPEND_DATE_TIME(&cond, "$gte", rd_wall_ms() - since * 1000);
            bson_append_document_end(&filter, &cond);
        }
        if (status != NULL)
            BSON_APPEND_UTF8(&filter, "outcome", status);
        rc = lookup(client, conf, &filter, &s) != 0 ? 1 : 0;
        bson_destroy(&filter);
    }
    /* One id at a time, so each one not found can be named. */
    for (i = optind; i < argc && rc != 1; i++) {
        const char *id = argv[i];
        long        before = s.n;

        rd_journal_filter_ids(&filter, &id, 1, 1);
        if (lookup(client, conf, &filter, &s) != 0)
            rc = 1;
        else if (s.n == before) {
            fprintf(stderr, "reporterctl: %s: not in the journal\n", id);
            rc = 3;
        }
        bson_destroy(&filter);
    }
    mongoc_client_destroy(client);
    return rc;
}
