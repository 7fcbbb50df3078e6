/*
 * conf_check.c -- what the option table cannot say, once the walk is done:
 * derived defaults (the port from tls, the dead-letter queue from the task
 * queue, the rollup collection from the records'), relative paths made
 * absolute, password files, keys that exclude or depend on each other and
 * the time budget of one task checked against the heartbeat.  It runs with
 * no YAML node at hand, so an error points at whichever of the keys
 * involved comes later in the file, or at the section when none of them
 * was written.  The mongodb section's URI and limits are conf_mongodb.c's,
 * the addresses (status.listen, rabbitmq.host's nodes) conf_addr.c's.
 */

#include <sys/socket.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_impl.h"

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

    if (rd_conf_mongodb_finish(ctx) != 0)
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
