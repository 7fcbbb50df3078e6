/*
 * conf_check.c -- what the option table cannot say: derived defaults (the
 * port from tls, the dead-letter queue from the task queue), relative
 * paths made absolute, password files, the mongodb URI built from its
 * parts and the driver's timeouts read from it, the time budget of one
 * task, status.listen's HOST:PORT, where a URI holds a password, keys
 * that exclude or depend on each other, and what -t points out about a
 * valid configuration.  It runs after the walk, with no YAML node at hand,
 * so an error points at whichever of the keys involved comes later in the
 * file, or at the section when none of them was written.
 */

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "conf_impl.h"

#define RD_CONF_MAX_SECRET  (64 * 1024)

/* libmongoc 1.23's serverSelectionTimeoutMS when the uri says 0 (its
 * constant is private), and the soonest a single-threaded client scans
 * again after a scan (minHeartbeatFrequencyMS). */
#define RD_MONGOC_SELECTION_TIMEOUT_MS  30000
#define RD_MONGOC_MIN_RESCAN_MS         500

static int rd_conf_fail(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    const char *fmt, ...) RD_CONF_PRINTF(3, 4);


static int
rd_conf_given(struct rd_conf_ctx *ctx, const char *name)
{
    return rd_conf_key(ctx, rd_conf_find(name))->given;
}


/*
 * Of the keys named (NULL-terminated), the one that comes last in the
 * file: errors about keys that do not go together point there.
 */
static const struct rd_conf_opt *
rd_conf_later(struct rd_conf_ctx *ctx, const char *name, ...)
{
    va_list                    ap;
    const struct rd_conf_opt  *opt, *last;
    struct rd_conf_key        *key, *lkey;

    last = rd_conf_find(name);
    lkey = rd_conf_key(ctx, last);

    va_start(ap, name);
    while ((name = va_arg(ap, const char *)) != NULL) {
        opt = rd_conf_find(name);
        key = rd_conf_key(ctx, opt);
        if (key->seen && (!lkey->seen || key->mark.index > lkey->mark.index)) {
            last = opt;
            lkey = key;
        }
    }
    va_end(ap);
    return last;
}


/* An error about a key found after parsing: at the key, else its section. */
static int
rd_conf_fail(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    const char *fmt, ...)
{
    va_list              ap;
    char                 section[32];
    const yaml_mark_t   *mark;
    struct rd_conf_key  *key;

    key = rd_conf_key(ctx, opt);
    mark = key->seen ? &key->mark : NULL;

    if (mark == NULL && strchr(opt->name, '.') != NULL) {
        snprintf(section, sizeof(section), "%.*s",
                 (int) (strchr(opt->name, '.') - opt->name), opt->name);
        key = rd_conf_key(ctx, rd_conf_find(section));
        mark = key->seen ? &key->mark : NULL;
    }

    va_start(ap, fmt);
    rd_conf_verror(ctx, mark, opt->name, fmt, ap);
    va_end(ap);
    return -1;
}


char *
rd_conf_read_secret(const char *path, char *err, size_t errlen)
{
    struct stat  st;
    const char  *op;
    char        *buf;
    size_t       len;

    buf = rd_conf_slurp(path, RD_CONF_MAX_SECRET, &len, &st, &op);
    if (buf == NULL) {
        snprintf(err, errlen, "%s \"%s\": %s", op, path, strerror(errno));
        return NULL;
    }
    if (strlen(buf) != len) {
        free(buf);
        snprintf(err, errlen, "\"%s\" contains a NUL byte", path);
        return NULL;
    }
    if (len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    return buf;
}


/*
 * The directory relative paths are taken against: the configuration file's
 * own, made absolute (the daemon chdirs to "/", and -s may run elsewhere).
 */
static char *
rd_conf_dir(const char *path)
{
    const char  *slash;
    char        *cwd, *dir;
    size_t       n;

    slash = strrchr(path, '/');
    n = (slash == NULL) ? 0 : (slash == path) ? 1 : (size_t) (slash - path);

    if (path[0] == '/')
        return strndup(path, n);

    cwd = getcwd(NULL, 0);
    if (cwd == NULL)
        return NULL;
    dir = malloc(strlen(cwd) + 1 + n + 1);
    if (dir != NULL)
        sprintf(dir, "%s%s%.*s", cwd, (n && strcmp(cwd, "/") != 0) ? "/" : "",
                (int) n, path);
    free(cwd);
    return dir;
}


/* Every path key, once, at load: relative to the file's directory. */
static int
rd_conf_paths(struct rd_conf_ctx *ctx)
{
    const struct rd_conf_opt  *opt;
    const char *const         *name;
    char                      *dir, **field, *abs, *rel;
    size_t                     n;

    dir = NULL;
    for (opt = rd_conf_opts; opt < rd_conf_opts + rd_conf_nopts; opt++) {
        if (!(opt->flags & RD_CONF_PATH))
            continue;
        field = rd_conf_field(ctx->conf, opt);
        if (*field == NULL || (*field)[0] == '/')
            continue;
        for (name = opt->names; name != NULL && *name != NULL; name++) {
            if (strcmp(*name, *field) == 0)
                break;
        }
        if (name != NULL && *name != NULL)
            continue;

        if (dir == NULL && (dir = rd_conf_dir(ctx->path)) == NULL)
            return rd_conf_fail(ctx, opt, "cannot make \"%s\" absolute: %s",
                                *field, strerror(errno));

        rel = *field;
        while (rel[0] == '.' && rel[1] == '/') {
            for (rel += 2; *rel == '/'; rel++)
                /* void */ ;
        }
        n = strlen(dir);
        abs = malloc(n + 1 + strlen(rel) + 1);
        if (abs == NULL) {
            free(dir);
            return rd_conf_fail(ctx, opt, "out of memory");
        }
        sprintf(abs, "%s%s%s", dir, (n > 0 && dir[n - 1] == '/') ? "" : "/",
                rel);
        free(*field);
        *field = abs;
    }
    free(dir);
    return 0;
}


/* A secret's file (its row's .file key) replaces it; giving both is an
 * error. */
static int
rd_conf_password_file(struct rd_conf_ctx *ctx, const char *password)
{
    const struct rd_conf_opt  *pw, *file;
    const char                *path;
    char                      *buf, **field, err[512];

    pw = rd_conf_find(password);
    file = rd_conf_find(pw->file);
    path = *(char **) rd_conf_field(ctx->conf, file);

    if (path == NULL)
        return 0;

    if (rd_conf_key(ctx, pw)->given)
        return rd_conf_fail(ctx,
                            rd_conf_later(ctx, pw->name, file->name, NULL),
                            "%s and %s are mutually exclusive",
                            pw->name, file->name);

    buf = rd_conf_read_secret(path, err, sizeof(err));
    if (buf == NULL)
        return rd_conf_fail(ctx, file, "%s", err);

    field = rd_conf_field(ctx->conf, pw);
    free(*field);
    *field = buf;
    return 0;
}


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
rd_conf_mongodb(struct rd_conf_ctx *ctx)
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


/* The loader checks status.listen with this; the status server binds it. */
int
rd_conf_parse_listen(const char *listen, struct sockaddr_storage *ss,
    char *err, size_t errlen)
{
    struct sockaddr_in  *in4 = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    char                 host[128], *end;
    const char          *colon;
    long                 port;
    size_t               n;

    memset(ss, 0, sizeof(*ss));
    colon = strrchr(listen, ':');
    if (colon == NULL) {
        snprintf(err, errlen, "\"%s\": expected HOST:PORT", listen);
        return -1;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1
        || port < 1 || port > 65535)
    {
        snprintf(err, errlen, "\"%s\": port must be 1..65535", listen);
        return -1;
    }
    n = (size_t) (colon - listen);
    if (n >= sizeof(host)) {
        snprintf(err, errlen, "\"%s\": host too long", listen);
        return -1;
    }
    memcpy(host, listen, n);
    host[n] = '\0';
    /* ":PORT" is every IPv4 address, "localhost:PORT" the loopback one:
     * no name is ever looked up */
    if (n == 0)
        snprintf(host, sizeof(host), "*");
    else if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        host[n - 1] = '\0';
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t) port);
        if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1)
            return 0;
    } else {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t) port);
        if (strcmp(host, "*") == 0) {
            in4->sin_addr.s_addr = htonl(INADDR_ANY);
            return 0;
        }
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1)
            return 0;
    }
    snprintf(err, errlen, "\"%s\": \"%s\" is not an IP address", listen, host);
    return -1;
}


/* Keys that depend on each other. */
static int
rd_conf_check(struct rd_conf_ctx *ctx)
{
    static const char *const   queues[] = {
        "rabbitmq.task_queue", "rabbitmq.result_queue",
        "rabbitmq.dead_letter_queue"
    };
    const struct rd_conf_amqp *a;
    const char                *qi, *qj;
    struct rd_conf_budget      b;
    int                        i, j;

    a = &ctx->conf->rabbitmq;

    for (i = 0; i < 3; i++) {
        for (j = i + 1; j < 3; j++) {
            qi = *(char **) rd_conf_field(ctx->conf, rd_conf_find(queues[i]));
            qj = *(char **) rd_conf_field(ctx->conf, rd_conf_find(queues[j]));
            if (strcmp(qi, qj) == 0)
                return rd_conf_fail(ctx,
                                    rd_conf_later(ctx, queues[i], queues[j],
                                                  NULL),
                                    "%s and %s must be different queues "
                                    "(both are \"%s\")",
                                    queues[i] + 9, queues[j] + 9, qi);
        }
    }

    if (a->tls && a->tls_verify && a->tls_ca_file == NULL)
        return rd_conf_fail(ctx,
                            rd_conf_later(ctx, "rabbitmq.tls",
                                          "rabbitmq.tls_verify", NULL),
                            "tls with tls_verify needs tls_ca_file: "
                            "librabbitmq 0.11 loads no default CA paths, "
                            "so no server certificate could be verified");

    if (a->tls_key_file != NULL && a->tls_cert_file == NULL)
        return rd_conf_fail(ctx, rd_conf_find("rabbitmq.tls_key_file"),
                            "tls_key_file needs tls_cert_file");

    rd_conf_budget(ctx->conf, &b);
    if (b.limit_ms > 0 && b.total_ms >= b.limit_ms) {
        return rd_conf_fail(ctx,
                            rd_conf_later(ctx, "rabbitmq.heartbeat",
                                          "rabbitmq.confirm_timeout_ms",
                                          "mongodb.max_time_ms",
                                          "mongodb.connect_timeout_ms",
                                          "mongodb.uri", "journal.enabled",
                                          NULL),
                            "one task can block a worker for %lld ms "
                            "(server selection %lld + %s %lld + "
                            "result publish and confirm %lld + dead-letter "
                            "publish and confirm %lld + journal write %lld), "
                            "which must be below "
                            "twice rabbitmq.heartbeat (2 x %ds = %lld ms): "
                            "rabbitmq-c services heartbeats only between "
                            "calls, so the broker would drop the connection",
                            b.total_ms, b.select_ms,
                            ctx->conf->report.mode == RD_REPORT_ROLLUP
                            ? "rollups and tail" : "aggregation", b.query_ms,
                            b.publish_ms, b.dead_letter_ms, b.journal_ms,
                            a->heartbeat, b.limit_ms);
    }

    if (ctx->conf->status.listen != NULL) {
        struct sockaddr_storage ss;
        char                    why[256];

        if (rd_conf_parse_listen(ctx->conf->status.listen, &ss, why,
                                 sizeof(why)) != 0)
            return rd_conf_fail(ctx, rd_conf_find("status.listen"), "%s",
                                why);
    }

    return 0;
}


int
rd_conf_amqp_node(const struct rd_conf_amqp *a, int i, char *host, size_t hostlen,
                  int *port, char *err, size_t errlen)
{
    const char *p = a->host, *end, *h, *he, *colon;
    char       *stop;
    long        v;
    int         n = 0;

    for (;;) {
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        h = p;
        if (*p == '[') {                        /* [v6] or [v6]:port */
            he = memchr(p, ']', (size_t) (end - p));
            if (he == NULL || he == p + 1) {
                snprintf(err, errlen, "entry %d: \"[\" without an address and \"]\"", n + 1);
                return -1;
            }
            h = p + 1;
            colon = he + 1 < end ? he + 1 : NULL;
            if (colon != NULL && *colon != ':') {
                snprintf(err, errlen, "entry %d: \"]\" followed by neither \":port\" nor \",\"",
                         n + 1);
                return -1;
            }
        } else {
            colon = memchr(p, ':', (size_t) (end - p));
            if (colon != NULL && memchr(colon + 1, ':', (size_t) (end - colon - 1)) != NULL)
                colon = NULL;                   /* a bare IPv6 address, no port */
            he = colon != NULL ? colon : end;
        }
        if (he == h) {
            snprintf(err, errlen, "entry %d is empty", n + 1);
            return -1;
        }
        if (memchr(h, ' ', (size_t) (he - h)) != NULL || (size_t) (he - h) >= 256) {
            snprintf(err, errlen, "entry %d: not a host name or address", n + 1);
            return -1;
        }
        v = a->port;
        if (colon != NULL) {
            errno = 0;
            v = strtol(colon + 1, &stop, 10);
            if (stop == colon + 1 || stop != end || errno != 0 || v < 1 || v > 65535) {
                snprintf(err, errlen, "entry %d: the port must be a number from 1 to 65535", n + 1);
                return -1;
            }
        }
        if (n == i) {
            if ((size_t) (he - h) >= hostlen) {
                snprintf(err, errlen, "entry %d: the host is too long", n + 1);
                return -1;
            }
            memcpy(host, h, (size_t) (he - h));
            host[he - h] = '\0';
            *port = (int) v;
        }
        if (++n > RD_CONF_AMQP_NODES) {
            snprintf(err, errlen, "more than %d entries", RD_CONF_AMQP_NODES);
            return -1;
        }
        if (*end == '\0')
            return n;
        p = end + 1;
    }
}

/* Derived defaults, then the checks across keys. */
int
rd_conf_finish(struct rd_conf_ctx *ctx)
{
    struct rd_conf_amqp  *a;
    size_t                n;

    a = &ctx->conf->rabbitmq;

    if (rd_conf_paths(ctx) != 0)
        return -1;

    if (rd_conf_password_file(ctx, "rabbitmq.password") != 0)
        return -1;

    if (a->port == 0)
        a->port = a->tls ? 5671 : 5672;
    {
        char host[256], why[160];
        int  port;

        if (rd_conf_amqp_node(a, -1, host, sizeof(host), &port, why, sizeof(why)) < 0)
            return rd_conf_fail(ctx, rd_conf_find("rabbitmq.host"),
                                "%s (a host, host:port or [IPv6]:port, or a list of them: "
                                "a YAML sequence or one value separated by commas)", why);
    }

    if (a->dead_letter_queue == NULL) {
        n = strlen(a->task_queue);
        if (n + sizeof(".dead") - 1 > 255)
            return rd_conf_fail(ctx, rd_conf_find("rabbitmq.task_queue"),
                                "too long to derive dead_letter_queue "
                                "(\"<task_queue>.dead\" must fit in 255 "
                                "bytes); set rabbitmq.dead_letter_queue");

        a->dead_letter_queue = malloc(n + sizeof(".dead"));
        if (a->dead_letter_queue == NULL)
            return rd_conf_fail(ctx, rd_conf_find("rabbitmq.task_queue"),
                                "out of memory");
        memcpy(a->dead_letter_queue, a->task_queue, n);
        memcpy(a->dead_letter_queue + n, ".dead", sizeof(".dead"));
    }

    if (rd_conf_mongodb(ctx) != 0 || rd_conf_mongodb_limits(ctx) != 0)
        return -1;

    if (ctx->conf->rollup.collection == NULL) {
        const char *c = ctx->conf->mongodb.collection;

        n = strlen(c);
        ctx->conf->rollup.collection = malloc(n + sizeof("_rollup"));
        if (ctx->conf->rollup.collection == NULL)
            return rd_conf_fail(ctx, rd_conf_find("mongodb.collection"), "out of memory");
        memcpy(ctx->conf->rollup.collection, c, n);
        memcpy(ctx->conf->rollup.collection + n, "_rollup", sizeof("_rollup"));
    }

    return rd_conf_check(ctx);
}
