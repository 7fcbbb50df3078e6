/*
 * conf.c -- rd_conf_load() and rd_conf_free(), and what the other conf*.c
 * files share while loading: errors placed at file:line:col of their key,
 * and reading a whole file.
 *
 * A load fills every field from the option table's defaults
 * (conf_table.c), walks the file's YAML against the table converting each
 * scalar (conf_yaml.c, conf_value.c), then derives and cross-checks what
 * the table cannot say (conf_check.c).  It returns a complete object or
 * nothing, and never logs: the one error line goes back to the caller.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_impl.h"


/*
 * "path:line:col: key: message" in err, on one line.  Returns -1 so that
 * a failing step can `return rd_conf_error(...)`.
 */
int
rd_conf_verror(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, va_list ap)
{
    char   where[64], *p;
    int    n;

    if (ctx->errlen == 0)
        return -1;

    where[0] = '\0';
    if (mark != NULL)
        snprintf(where, sizeof(where), "%zu:%zu:",
                 mark->line + 1, mark->column + 1);

    n = snprintf(ctx->err, ctx->errlen, "%s:%s %s%s", ctx->path, where,
                 key ? key : "", key ? ": " : "");
    if (n >= 0 && (size_t) n < ctx->errlen)
        vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);

    /* one line, whatever the values quoted in it hold */
    for (p = ctx->err; *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    return -1;
}


int
rd_conf_error(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    rd_conf_verror(ctx, mark, key, fmt, ap);
    va_end(ap);
    return -1;
}


/* Whether and where this load saw the option's key. */
struct rd_conf_key *
rd_conf_key(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt)
{
    return &ctx->keys[opt - rd_conf_opts];
}


/* Read a whole file; on failure *op says which step failed and errno why. */
char *
rd_conf_slurp(const char *path, size_t max, size_t *len, struct stat *st,
    const char **op)
{
    int      fd, saved;
    char    *buf, *p;
    size_t   size;
    ssize_t  n;

    *op = "cannot open";
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return NULL;

    *op = "cannot read";
    buf = NULL;
    size = 0;
    *len = 0;
    if (fstat(fd, st) == -1)
        goto failed;

    for ( ;; ) {
        if (*len == size) {
            if (size > max) {
                errno = EFBIG;
                goto failed;
            }
            size = size ? size * 2 : 4096;
            p = realloc(buf, size + 1);
            if (p == NULL)
                goto failed;
            buf = p;
        }
        n = read(fd, buf + *len, size - *len);
        if (n == 0)
            break;
        if (n == -1) {
            if (errno == EINTR)
                continue;
            goto failed;
        }
        *len += n;
    }

    if (*len > max) {
        errno = EFBIG;
        goto failed;
    }
    close(fd);
    buf[*len] = '\0';
    return buf;

failed:
    saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return NULL;
}


/* Through rd_conf_set() like any value, so a bad row in the table fails
 * every load instead of passing unnoticed. */
static int
rd_conf_defaults(struct rd_conf_ctx *ctx)
{
    const struct rd_conf_opt  *opt;
    char                       msg[256];

    for (opt = rd_conf_opts; opt < rd_conf_opts + rd_conf_nopts; opt++) {
        if (opt->def != NULL
            && rd_conf_set(ctx->conf, opt, opt->def, msg, sizeof(msg)) != 0)
        {
            return rd_conf_error(ctx, NULL, opt->name,
                                 "built-in default: %s", msg);
        }
    }
    return 0;
}


struct rd_conf *
rd_conf_load(const char *path, char *err, size_t errlen)
{
    struct rd_conf_ctx  *ctx;
    struct rd_conf      *conf;

    ctx = calloc(1, sizeof(*ctx) + rd_conf_nopts * sizeof(ctx->keys[0]));
    conf = calloc(1, sizeof(*conf));
    if (ctx == NULL || conf == NULL || (conf->path = strdup(path)) == NULL) {
        free(ctx);
        free(conf);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }

    ctx->path = path;
    ctx->conf = conf;
    ctx->err = err;
    ctx->errlen = errlen;

    if (rd_conf_defaults(ctx) != 0
        || rd_conf_parse(ctx) != 0
        || rd_conf_finish(ctx) != 0)
    {
        rd_conf_free(conf);
        conf = NULL;
    }

    free(ctx);
    return conf;
}


void
rd_conf_free(struct rd_conf *conf)
{
    const struct rd_conf_opt  *opt;

    if (conf == NULL)
        return;

    for (opt = rd_conf_opts; opt < rd_conf_opts + rd_conf_nopts; opt++) {
        if (opt->type == RD_CONF_STR)
            free(*(char **) rd_conf_field(conf, opt));
    }
    free(conf->path);
    free(conf);
}
