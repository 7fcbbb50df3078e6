/*
 * conf_check.c -- what the option table cannot say: derived defaults (the
 * port from tls, the dead-letter queue from the task queue), relative
 * paths made absolute, password files, the mongodb URI built from its
 * parts, and keys that exclude or depend on each other.  It runs after the walk, with no YAML node at
 * hand, so an error points at whichever of the keys involved comes later
 * in the file, or at the section when none of them was written.
 */

#define _POSIX_C_SOURCE 200809L

#include <sys/socket.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_impl.h"

#define RD_CONF_MAX_SECRET  (64 * 1024)

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


/* password_file replaces password; giving both is an error. */
static int
rd_conf_password_file(struct rd_conf_ctx *ctx, const char *password,
    const char *password_file)
{
    const struct rd_conf_opt  *pw, *file;
    struct stat                st;
    const char                *path, *op;
    char                      *buf, **field;
    size_t                     len;

    pw = rd_conf_find(password);
    file = rd_conf_find(password_file);
    path = *(char **) rd_conf_field(ctx->conf, file);

    if (path == NULL)
        return 0;

    if (rd_conf_key(ctx, pw)->given)
        return rd_conf_fail(ctx,
                            rd_conf_later(ctx, password, password_file, NULL),
                            "%s and %s are mutually exclusive",
                            password, password_file);

    buf = rd_conf_slurp(path, RD_CONF_MAX_SECRET, &len, &st, &op);
    if (buf == NULL)
        return rd_conf_fail(ctx, file, "%s \"%s\": %s", op, path,
                            strerror(errno));

    if (strlen(buf) != len) {
        free(buf);
        return rd_conf_fail(ctx, file, "\"%s\" contains a NUL byte", path);
    }
    if (len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';

    field = rd_conf_field(ctx->conf, pw);
    free(*field);
    *field = buf;
    return 0;
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
    static const char *const   folded[] = {
        "mongodb.host", "mongodb.port", "mongodb.user", "mongodb.password",
        "mongodb.password_file", "mongodb.auth_source", NULL
    };
    struct rd_conf_mongo      *m;
    const char                *host;
    size_t                     i, size;
    FILE                      *f;
    int                        failed;

    m = &ctx->conf->mongodb;

    if (m->uri != NULL) {
        for (i = 0; folded[i] != NULL; i++) {
            if (rd_conf_given(ctx, folded[i]))
                return rd_conf_fail(ctx,
                                    rd_conf_later(ctx, "mongodb.uri",
                                                  folded[i], NULL),
                                    "uri and %s are mutually exclusive "
                                    "(put it in the uri)", folded[i] + 8);
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

    if (rd_conf_password_file(ctx, "mongodb.password",
                              "mongodb.password_file") != 0)
    {
        return -1;
    }
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
    if (m->auth_source != NULL) {
        fputs("?authSource=", f);
        rd_conf_percent(f, m->auth_source);
    }

    failed = ferror(f);
    if (fclose(f) != 0 || failed || m->uri == NULL)
        return rd_conf_fail(ctx, rd_conf_find("mongodb.uri"),
                            "out of memory");
    return 0;
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
    long long                  budget;
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

    budget = 2LL * a->heartbeat * 1000;
    if (a->heartbeat > 0
        && ctx->conf->mongodb.max_time_ms + a->confirm_timeout_ms >= budget)
    {
        return rd_conf_fail(ctx,
                            rd_conf_later(ctx, "rabbitmq.heartbeat",
                                          "rabbitmq.confirm_timeout_ms",
                                          "mongodb.max_time_ms", NULL),
                            "mongodb.max_time_ms (%d) + "
                            "rabbitmq.confirm_timeout_ms (%d) must be below "
                            "twice rabbitmq.heartbeat (%ds): rabbitmq-c "
                            "services heartbeats only between calls, so a "
                            "longer blocking query lets the broker drop the "
                            "connection", ctx->conf->mongodb.max_time_ms,
                            a->confirm_timeout_ms, a->heartbeat);
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


/* Derived defaults, then the checks across keys. */
int
rd_conf_finish(struct rd_conf_ctx *ctx)
{
    struct rd_conf_amqp  *a;
    size_t                n;

    a = &ctx->conf->rabbitmq;

    if (rd_conf_paths(ctx) != 0)
        return -1;

    if (rd_conf_password_file(ctx, "rabbitmq.password",
                              "rabbitmq.password_file") != 0)
    {
        return -1;
    }

    if (a->port == 0)
        a->port = a->tls ? 5671 : 5672;

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

    if (rd_conf_mongodb(ctx) != 0)
        return -1;

    return rd_conf_check(ctx);
}
