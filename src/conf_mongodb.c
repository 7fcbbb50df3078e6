/*
 * conf_mongodb.c -- the mongodb section's derived values: the URI, given or
 * built from its parts (user, password or password_file, host, port,
 * auth_source), checked and read with the driver's own parser for the
 * timeouts and read preference it sets; the time budget of one task those
 * add up to; and what -t points out about them.
 */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "conf_impl.h"

/* libmongoc 1.23's serverSelectionTimeoutMS when the uri says 0 (its
 * constant is private), and the soonest a single-threaded client scans
 * again after a scan (minHeartbeatFrequencyMS). */
#define RD_MONGOC_SELECTION_TIMEOUT_MS  30000
#define RD_MONGOC_MIN_RESCAN_MS         500

/* Where "user:password@" puts the password in a URI, if it has one. */
int
rd_conf_uri_password(const char *uri, size_t *start, size_t *end)
{
    const char  *auth, *slash, *at, *colon;

    auth = strstr(uri, "://");
    if (auth == NULL)
        return 0;
    auth += 3;
    slash = auth + strcspn(auth, "/?#");

    at = NULL;
    for (colon = auth; colon < slash; colon++) {
        if (*colon == '@')
            at = colon;
    }
    if (at == NULL)
        return 0;

    colon = memchr(auth, ':', at - auth);
    if (colon == NULL)
        return 0;

    *start = colon + 1 - uri;
    *end = at - uri;
    return 1;
}


/* RFC 3986: keep the unreserved characters, percent-encode the rest. */
static void
rd_conf_percent(FILE *f, const char *s)
{
    for ( /* void */ ; *s != '\0'; s++) {
        if (isalnum((unsigned char) *s) || strchr("-._~", *s) != NULL)
            fputc(*s, f);
        else
            fprintf(f, "%%%02X", (unsigned char) *s);
    }
}


/* The driver takes a URI: the one given, else one built from its parts. */
static int
rd_conf_mongodb_uri(struct rd_conf_ctx *ctx)
{
    const struct rd_conf_opt  *opt;
    struct rd_conf_mongo      *m;
    const char                *host, *sep;
    size_t                     size;
    FILE                      *f;
    int                        failed;

    m = &ctx->conf->mongodb;

    if (m->uri != NULL) {
        /* A uri wins over parts that come from the environment (the old
         * service's MONGODB_HOST ... with MONGODB_URI set); parts written
         * in the file conflict with it. */
        for (opt = rd_conf_opts; opt < rd_conf_opts + rd_conf_nopts; opt++) {
            if ((opt->flags & RD_CONF_FOLDED) && rd_conf_key(ctx, opt)->given
                && !rd_conf_key(ctx, opt)->from_env)
                return rd_conf_fail(ctx,
                                    rd_conf_later(ctx, "mongodb.uri",
                                                  opt->name, NULL),
                                    "uri and %s are mutually exclusive "
                                    "(put it in the uri)", opt->name + 8);
        }
        if (strncmp(m->uri, "mongodb://", 10) != 0
            && strncmp(m->uri, "mongodb+srv://", 14) != 0)
        {
            return rd_conf_fail(ctx, rd_conf_find("mongodb.uri"),
                                "must start with mongodb:// or "
                                "mongodb+srv://");
        }
        return 0;
    }

    if (rd_conf_password_file(ctx, "mongodb.password") != 0)
        return -1;
    if (m->password != NULL && m->user == NULL)
        return rd_conf_fail(ctx,
                            rd_conf_later(ctx, "mongodb.password",
                                          "mongodb.password_file", NULL),
                            "a password needs mongodb.user");

    f = open_memstream(&m->uri, &size);
    if (f == NULL)
        return rd_conf_fail(ctx, rd_conf_find("mongodb.uri"),
                            "out of memory");

    fputs("mongodb://", f);
    if (m->user != NULL) {
        rd_conf_percent(f, m->user);
        if (m->password != NULL) {
            fputc(':', f);
            rd_conf_percent(f, m->password);
        }
        fputc('@', f);
    }
    host = m->host ? m->host : "127.0.0.1";
    fprintf(f, (strchr(host, ':') && host[0] != '[') ? "[%s]" : "%s", host);
    fprintf(f, ":%d/", m->port ? m->port : 27017);
    sep = "?";
    if (m->auth_source != NULL) {
        fputs("?authSource=", f);
        rd_conf_percent(f, m->auth_source);
        sep = "&";
    }
    if (rd_conf_given(ctx, "mongodb.connect_timeout_ms"))
        fprintf(f, "%sconnectTimeoutMS=%d", sep, m->connect_timeout_ms);

    failed = ferror(f);
    if (fclose(f) != 0 || failed || m->uri == NULL)
        return rd_conf_fail(ctx, rd_conf_find("mongodb.uri"),
                            "out of memory");
    return 0;
}


/*
 * One timeout the uri may set (name as libmongoc spells it, in lower
 * case): its value, 0 meaning the driver's default, else ours.  A negative
 * one would never expire.
 */
static int
rd_conf_uri_timeout(struct rd_conf_ctx *ctx, const mongoc_uri_t *uri,
    const char *name, const char *label, int driver_default, int ours,
    int *out)
{
    int32_t  v;

    if (!mongoc_uri_has_option(uri, name)) {
        *out = ours;
        return 0;
    }
    v = mongoc_uri_get_option_as_int32(uri, name, driver_default);
    if (v < 0)
        return rd_conf_fail(ctx, rd_conf_find("mongodb.uri"),
                            "%s=%d: a negative timeout never expires",
                            label, (int) v);
    *out = v;
    return 0;
}


/* A read mode as the uri's readPreference spells it. */
static const char *
rd_conf_read_mode(mongoc_read_mode_t mode)
{
    switch (mode) {
    case MONGOC_READ_PRIMARY:             return "primary";
    case MONGOC_READ_SECONDARY:           return "secondary";
    case MONGOC_READ_PRIMARY_PREFERRED:   return "primaryPreferred";
    case MONGOC_READ_SECONDARY_PREFERRED: return "secondaryPreferred";
    case MONGOC_READ_NEAREST:             return "nearest";
    }
    return "unknown";
}


int
rd_conf_notice(const struct rd_conf *conf, char *out, size_t size)
{
    const char  *rp = conf->mongodb.limits.read_preference;

    if (conf->report.mode != RD_REPORT_ROLLUP || rp == NULL
        || strcmp(rp, "primary") == 0)
        return 0;
    snprintf(out, size, "mongodb.uri: readPreference=%s: rollup mode reads "
             "and writes its rollups, marks and tail on the primary whatever "
             "the uri says; live mode follows the uri", rp);
    return 1;
}


/*
 * The driver's limits, read with its own URI parser (which also rejects
 * an invalid uri here rather than in every worker).  No DNS lookup
 * happens: a mongodb+srv:// name is resolved when a client is created.
 */
static int
rd_conf_mongodb_limits(struct rd_conf_ctx *ctx)
{
    struct rd_conf_mongo         *m = &ctx->conf->mongodb;
    struct rd_conf_mongo_limits  *l = &m->limits;
    mongoc_uri_t                 *uri;
    bson_error_t                  e;
    size_t                        i;
    int                           rc;
    const struct {
        const char  *name;
        const char  *label;
        int          driver_default;
        int          ours;
        int         *out;
    } timeouts[] = {
        { MONGOC_URI_CONNECTTIMEOUTMS, "connectTimeoutMS",
          MONGOC_DEFAULT_CONNECTTIMEOUTMS, m->connect_timeout_ms,
          &l->connect_timeout_ms },
        { MONGOC_URI_SERVERSELECTIONTIMEOUTMS, "serverSelectionTimeoutMS",
          RD_MONGOC_SELECTION_TIMEOUT_MS, m->connect_timeout_ms,
          &l->server_selection_timeout_ms },
        { MONGOC_URI_SOCKETTIMEOUTMS, "socketTimeoutMS",
          MONGOC_DEFAULT_SOCKETTIMEOUTMS,
          m->max_time_ms + RD_CONF_SOCKET_SLACK_MS, &l->socket_timeout_ms },
    };

    uri = mongoc_uri_new_with_error(m->uri, &e);
    if (uri == NULL)
        return rd_conf_fail(ctx, rd_conf_find("mongodb.uri"), "%s",
                            e.message);

    rc = 0;
    for (i = 0; rc == 0 && i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
        rc = rd_conf_uri_timeout(ctx, uri, timeouts[i].name, timeouts[i].label,
                                 timeouts[i].driver_default, timeouts[i].ours,
                                 timeouts[i].out);
    }
    l->server_selection_try_once =
        mongoc_uri_get_option_as_bool(uri, MONGOC_URI_SERVERSELECTIONTRYONCE,
                                      true);
    l->retry_reads = mongoc_uri_get_option_as_bool(uri, MONGOC_URI_RETRYREADS,
                                                   false);
    l->read_preference =
        rd_conf_read_mode(mongoc_read_prefs_get_mode(
                              mongoc_uri_get_read_prefs_t(uri)));
    mongoc_uri_destroy(uri);
    if (rc != 0)
        return -1;

    /* A socket timeout is a network error: transient, so the task would
     * come back and time out again, forever. */
    if (l->socket_timeout_ms <= m->max_time_ms)
        return rd_conf_fail(ctx,
                            rd_conf_later(ctx, "mongodb.uri",
                                          "mongodb.max_time_ms", NULL),
                            "the uri's socketTimeoutMS (%d) must be above "
                            "mongodb.max_time_ms (%d), so that the server "
                            "gives up on a query before the client does",
                            l->socket_timeout_ms, m->max_time_ms);
    return 0;
}


void
rd_conf_budget(const struct rd_conf *conf, struct rd_conf_budget *b)
{
    const struct rd_conf_mongo_limits  *l;
    long long                           tries;

    l = &conf->mongodb.limits;
    tries = l->retry_reads ? 2 : 1;

    b->select_ms = tries * ((long long) l->connect_timeout_ms
                            + (l->server_selection_try_once
                               ? RD_MONGOC_MIN_RESCAN_MS
                               : l->server_selection_timeout_ms));
    b->query_ms = tries * l->socket_timeout_ms;
    if (conf->report.mode == RD_REPORT_ROLLUP)
        b->query_ms += tries * (long long) (conf->mongodb.max_time_ms / 2);
    b->publish_ms = conf->rabbitmq.confirm_timeout_ms;
    b->dead_letter_ms = conf->rabbitmq.confirm_timeout_ms;
    b->journal_ms = conf->journal.enabled
                    ? RD_JOURNAL_CONNECT_MS + RD_MONGOC_MIN_RESCAN_MS
                      + RD_JOURNAL_SOCKET_MS
                    : 0;
    b->total_ms = b->select_ms + b->query_ms + b->publish_ms
                  + b->dead_letter_ms + b->journal_ms;
    b->limit_ms = 2000LL * conf->rabbitmq.heartbeat;
}


int
rd_conf_mongodb_finish(struct rd_conf_ctx *ctx)
{
    if (rd_conf_mongodb_uri(ctx) != 0)
        return -1;
    return rd_conf_mongodb_limits(ctx);
}
