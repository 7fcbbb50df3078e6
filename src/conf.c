/*
 * conf.c -- the option table: every key of reporterd.yaml, one row each,
 * with its type, its place in struct rd_conf, its range, its default and
 * its properties (secret, path, not reloadable).  Defaults, parsing,
 * rd_conf_free(), rd_conf_dump() and the reload's comparison are all
 * driven by it: adding a key is adding a row here (and a field in
 * conf.h).  Also what every other conf*.c file uses while loading: errors
 * placed at file:line:col of their key (or of the later of the keys that
 * do not go together), reading a whole file, and a secret read from its
 * file.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_impl.h"
#include "cpus.h"

#define RD_CONF_MAX_SECRET  (64 * 1024)

#ifndef RD_DEFAULT_PID
#define RD_DEFAULT_PID  "/usr/local/var/run/reporterd.pid"
#endif

static const char *const rd_conf_queue_types[] = { "classic", "quorum", NULL };

/* report.mode, in enum rd_report_mode's order. */
static const char *const rd_conf_report_modes[] = { "live", "rollup", NULL };

/* error_log values that name no file. */
static const char *const rd_conf_log_targets[] = { "stderr", NULL };

/* worker_processes: "auto" is the number of CPUs this process may use:
 * online, in its affinity mask, within its cgroup's quota (cpus.h). */
static const char *const rd_conf_auto[] = { "auto", NULL };

static int
rd_conf_cpus(const struct rd_conf_opt *opt, int i)
{
    long  n;

    (void) i;
    n = rd_cpus_usable("/sys/fs/cgroup", "/proc/self/cgroup");
    return (int) (n < opt->min ? opt->min : n > opt->max ? opt->max : n);
}

/*
 * One row per key.  A duration's bare number is in seconds (RD_DURATION,
 * RD_SECONDS) or in milliseconds (RD_MS); it is kept in milliseconds,
 * except RD_SECONDS's; its min and max are in what it is kept in.
 */
#define RD_SECTION(k)                   { .name = k, .type = RD_CONF_SECTION }
#define RD_ROW(k, t, f, lo, hi, d, fl)                                        \
    { .name = k, .type = t, .offset = RD_OFF(f), .min = lo, .max = hi,       \
      .def = d, .flags = fl }
#define RD_BOOL(k, f, d, fl)            RD_ROW(k, RD_CONF_BOOL, f, 0, 0, d, fl)
#define RD_INT(k, f, lo, hi, d, fl)     RD_ROW(k, RD_CONF_INT, f, lo, hi, d, fl)
#define RD_SIZE(k, f, lo, hi, d, fl)    RD_ROW(k, RD_CONF_SIZE, f, lo, hi, d, fl)
#define RD_DECIMAL(k, f, lo, hi, d, fl) RD_ROW(k, RD_CONF_DECIMAL, f, lo, hi, d, fl)
#define RD_STR(k, f, lo, hi, d, fl)     RD_ROW(k, RD_CONF_STR, f, lo, hi, d, fl)
#define RD_DURATION(k, f, lo, hi, d, fl)                                      \
    RD_ROW(k, RD_CONF_DURATION, f, lo, hi, d, fl)
#define RD_SECONDS(k, f, lo, hi, d, fl)                                       \
    RD_ROW(k, RD_CONF_DURATION, f, lo, hi, d, RD_CONF_SECONDS | (fl))
#define RD_MS(k, f, lo, hi, d, fl)                                            \
    RD_ROW(k, RD_CONF_DURATION, f, lo, hi, d, RD_CONF_BARE_MS | (fl))
#define RD_ENUM(k, f, v, d, fl)                                               \
    { .name = k, .type = RD_CONF_ENUM, .offset = RD_OFF(f), .def = d,         \
      .flags = fl, .names = v }
#define RD_PATH(k, f, d, fl, v)                                               \
    { .name = k, .type = RD_CONF_STR, .offset = RD_OFF(f), .min = 1,          \
      .def = d, .flags = RD_CONF_PATH | (fl), .names = v }
#define RD_SECRET(k, f, d, fl, from)                                          \
    { .name = k, .type = RD_CONF_STR, .offset = RD_OFF(f), .def = d,          \
      .flags = RD_CONF_SECRET | (fl), .file = from }
/* An integer, or one of the words v whose value fn(opt, i) computes; the
 * int field c records which word was written. */
#define RD_INT_OR(k, f, lo, hi, d, v, fn, c)                                  \
    { .name = k, .type = RD_CONF_INT, .offset = RD_OFF(f), .min = lo,         \
      .max = hi, .def = d, .names = v, .word = fn, .chosen = RD_OFF(c) }

#define RD_NO_RELOAD  RD_CONF_NO_RELOAD
#define RD_FOLDED     RD_CONF_FOLDED

const struct rd_conf_opt  rd_conf_opts[] = {
    RD_BOOL    ("daemon",                     daemon, "off", RD_NO_RELOAD),
    RD_INT_OR  ("worker_processes",           worker_processes, 1, 1024, "2",
                rd_conf_auto, rd_conf_cpus, worker_processes_auto),
    RD_PATH    ("pid",                        pid, RD_DEFAULT_PID, RD_NO_RELOAD, NULL),
    RD_PATH    ("error_log",                  error_log, "stderr", 0, rd_conf_log_targets),
    RD_ENUM    ("log_level",                  log_level, rd_log_levels, "info", 0),
    RD_STR     ("user",                       user, 1, 0, NULL, 0),
    RD_DURATION("worker_shutdown_timeout",    worker_shutdown_timeout_ms, 0, 3600000, "30s", 0),

    RD_SECTION ("rabbitmq"),
    RD_STR     ("rabbitmq.host",              rabbitmq.host, 1, 0, "127.0.0.1", RD_CONF_LIST),
    RD_INT     ("rabbitmq.port",              rabbitmq.port, 1, 65535, NULL, 0),
    RD_STR     ("rabbitmq.user",              rabbitmq.user, 1, 0, "guest", 0),
    RD_SECRET  ("rabbitmq.password",          rabbitmq.password, "guest", 0, "rabbitmq.password_file"),
    RD_PATH    ("rabbitmq.password_file",     rabbitmq.password_file, NULL, 0, NULL),
    RD_STR     ("rabbitmq.vhost",             rabbitmq.vhost, 1, 0, "/", 0),
    RD_STR     ("rabbitmq.task_queue",        rabbitmq.task_queue, 1, 255, "reports.tasks", 0),
    RD_STR     ("rabbitmq.result_queue",      rabbitmq.result_queue, 1, 255, "reports.results", 0),
    RD_STR     ("rabbitmq.dead_letter_queue", rabbitmq.dead_letter_queue, 1, 255, NULL, 0),
    RD_ENUM    ("rabbitmq.queue_type",        rabbitmq.queue_type, rd_conf_queue_types, "classic", 0),
    RD_INT     ("rabbitmq.prefetch",          rabbitmq.prefetch, 1, 65535, "1", 0),
    RD_SECONDS ("rabbitmq.heartbeat",         rabbitmq.heartbeat, 0, 3600, "30s", 0),
    RD_INT     ("rabbitmq.max_redeliveries",  rabbitmq.max_redeliveries, 0, 1000, "5", 0),
    RD_MS      ("rabbitmq.connect_timeout_ms", rabbitmq.connect_timeout_ms, 1, 3600000, "5000", 0),
    RD_MS      ("rabbitmq.confirm_timeout_ms", rabbitmq.confirm_timeout_ms, 1, 3600000, "5000", 0),
    RD_BOOL    ("rabbitmq.tls",               rabbitmq.tls, "off", 0),
    RD_PATH    ("rabbitmq.tls_ca_file",       rabbitmq.tls_ca_file, NULL, 0, NULL),
    RD_PATH    ("rabbitmq.tls_cert_file",     rabbitmq.tls_cert_file, NULL, 0, NULL),
    RD_PATH    ("rabbitmq.tls_key_file",      rabbitmq.tls_key_file, NULL, 0, NULL),
    RD_BOOL    ("rabbitmq.tls_verify",        rabbitmq.tls_verify, "on", 0),

    RD_SECTION ("mongodb"),
    RD_STR     ("mongodb.uri",                mongodb.uri, 1, 0, NULL, RD_CONF_URI),
    RD_STR     ("mongodb.host",               mongodb.host, 1, 0, NULL, RD_FOLDED),
    RD_INT     ("mongodb.port",               mongodb.port, 1, 65535, NULL, RD_FOLDED),
    RD_STR     ("mongodb.user",               mongodb.user, 1, 0, NULL, RD_FOLDED),
    RD_SECRET  ("mongodb.password",           mongodb.password, NULL, RD_FOLDED, "mongodb.password_file"),
    RD_PATH    ("mongodb.password_file",      mongodb.password_file, NULL, RD_FOLDED, NULL),
    RD_STR     ("mongodb.auth_source",        mongodb.auth_source, 1, 0, NULL, RD_FOLDED),
    RD_STR     ("mongodb.database",           mongodb.database, 1, 0, "calls", 0),
    RD_STR     ("mongodb.collection",         mongodb.collection, 1, 0, "calls", 0),
    RD_MS      ("mongodb.max_time_ms",        mongodb.max_time_ms, 1, 3600000, "20000", 0),
    RD_MS      ("mongodb.connect_timeout_ms", mongodb.connect_timeout_ms, 1, 3600000, "5000", RD_FOLDED),

    RD_SECTION ("task"),
    RD_INT     ("task.max_phones",            task.max_phones, 1, 100000, "100", 0),
    RD_SIZE    ("task.max_message_size",      task.max_message_size, 64, 67108864, "1m", 0),
    RD_INT     ("task.max_depth",             task.max_depth, 2, 1000, "16", 0),

    /* At most 10^6 a second: every figure of a result stays far below
     * RD_REPORT_MAX_FIGURE for any sane record, and ms * price_e4 stays
     * far inside 128 bits for any 64-bit sum. */
    RD_SECTION ("report"),
    RD_DECIMAL ("report.price_per_second",    report.price_e4, 0, 1000000, "10", 0),
    RD_ENUM    ("report.mode",                report.mode, rd_conf_report_modes, "live", 0),

    /* Rollup mode's folding (rollup.h); the collection's default is derived. */
    RD_SECTION ("rollup"),
    RD_STR     ("rollup.collection",          rollup.collection, 1, 200, NULL, 0),
    RD_INT     ("rollup.batch",               rollup.batch, 1, 100000, "10000", 0),
    RD_DURATION("rollup.interval",            rollup.interval_ms, 10, 3600000, "1s", 0),
    RD_DURATION("rollup.lease",               rollup.lease_ms, 1000, 3600000, "30s", 0),
    RD_INT     ("rollup.verify_rate",         rollup.verify_rate, 0, 100000000, "10000", 0),

    RD_SECTION ("status"),
    RD_STR     ("status.listen",              status.listen, 1, 0, NULL, 0),
    RD_BOOL    ("status.tasks",               status.tasks, "off", 0),

    RD_SECTION ("journal"),
    RD_BOOL    ("journal.enabled",            journal.enabled, "off", 0),
    RD_STR     ("journal.collection",         journal.collection, 1, 0, "reports_journal", 0),
    RD_SECONDS ("journal.retention",          journal.retention, 60, 315360000, "7d", 0),
};

const size_t  rd_conf_nopts = sizeof(rd_conf_opts) / sizeof(rd_conf_opts[0]);


/* A linear search: the table is short and a file is read once per reload. */
const struct rd_conf_opt *
rd_conf_find(const char *name)
{
    size_t  i;

    for (i = 0; i < rd_conf_nopts; i++) {
        if (strcmp(rd_conf_opts[i].name, name) == 0)
            return &rd_conf_opts[i];
    }
    return NULL;
}


void *
rd_conf_field(const struct rd_conf *conf, const struct rd_conf_opt *opt)
{
    return (char *) conf + opt->offset;
}


/* Whether and where this load saw the option's key. */
struct rd_conf_key *
rd_conf_key(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt)
{
    return &ctx->keys[opt - rd_conf_opts];
}


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


/* Of the key named, whether the file gave it a value that is not null. */
int
rd_conf_given(struct rd_conf_ctx *ctx, const char *name)
{
    return rd_conf_key(ctx, rd_conf_find(name))->given;
}


/*
 * Of the keys named (NULL-terminated), the one that comes last in the
 * file: errors about keys that do not go together point there.
 */
const struct rd_conf_opt *
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
int
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


/* A secret's file (its row's .file key) replaces it; giving both is an
 * error. */
int
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


void
rd_conf_free(struct rd_conf *conf)
{
    const struct rd_conf_opt  *opt;

    if (conf == NULL)
        return;

    for (opt = rd_conf_opts; opt < rd_conf_opts + rd_conf_nopts; opt++) {
        char *v;

        if (opt->type != RD_CONF_STR)
            continue;
        v = *(char **) rd_conf_field(conf, opt);
        /* passwords, and the uri that may embed one, leave no copy behind */
        if (v != NULL && (opt->flags & (RD_CONF_SECRET | RD_CONF_URI)))
            explicit_bzero(v, strlen(v));
        free(v);
    }
    free(conf->path);
    free(conf);
}


static int
rd_conf_same(const struct rd_conf_opt *opt, const struct rd_conf *a,
    const struct rd_conf *b)
{
    const char  *sa, *sb;

    switch (opt->type) {

    case RD_CONF_SECTION:
        return 1;

    case RD_CONF_STR:
        sa = *(char *const *) rd_conf_field(a, opt);
        sb = *(char *const *) rd_conf_field(b, opt);
        return sa == sb || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);

    case RD_CONF_DECIMAL:
        return *(const int64_t *) rd_conf_field(a, opt)
               == *(const int64_t *) rd_conf_field(b, opt);

    default:
        return *(const int *) rd_conf_field(a, opt)
               == *(const int *) rd_conf_field(b, opt);
    }
}


const char *
rd_conf_reload_change(const struct rd_conf *old, const struct rd_conf *new,
    const char *after)
{
    const struct rd_conf_opt  *opt;

    opt = rd_conf_opts;
    if (after != NULL) {
        while (opt < rd_conf_opts + rd_conf_nopts && opt->name != after)
            opt++;
        opt++;
    }

    for ( /* void */ ; opt < rd_conf_opts + rd_conf_nopts; opt++) {
        if ((opt->flags & RD_CONF_NO_RELOAD) && !rd_conf_same(opt, old, new))
            return opt->name;
    }
    return NULL;
}

