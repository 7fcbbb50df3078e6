/*
 * conf.c -- reading reporterd.yaml into struct rd_conf.
 *
 * One table, rd_conf_opts[], lists every key: its type, its place in the
 * struct, its range and its default.  Defaults, parsing and rd_conf_dump()
 * are all driven by it.  What a table cannot say -- derived defaults, keys
 * that exclude or depend on each other -- is in rd_conf_finish() and
 * rd_conf_check().
 *
 * The YAML is loaded with libyaml's document API and walked against the
 * table: each node is visited at most once (an alias would be a second
 * visit), a sequence is never valid and a mapping only where the table has
 * a section, so no document can make the walk deeper or longer than the
 * schema.
 */

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "conf.h"

#ifndef RD_DEFAULT_PID
#define RD_DEFAULT_PID  "/usr/local/var/run/reporterd.pid"
#endif

#define RD_CONF_MAX_FILE    (1024 * 1024)
#define RD_CONF_MAX_SECRET  (64 * 1024)
#define RD_CONF_MASK        "********"

#if defined(__GNUC__)
#define RD_CONF_PRINTF(f, a)  __attribute__((format(printf, f, a)))
#else
#define RD_CONF_PRINTF(f, a)
#endif

enum rd_conf_type {
    RD_CONF_SECTION,
    RD_CONF_BOOL,
    RD_CONF_INT,
    RD_CONF_STR,
    RD_CONF_ENUM,
    RD_CONF_DURATION,
    RD_CONF_DOUBLE,
    RD_CONF_SIZE
};

#define RD_CONF_SECRET   0x01   /* a password: masked by rd_conf_dump() */
#define RD_CONF_URI      0x02   /* may hold "user:password@" */
#define RD_CONF_FOLDED   0x04   /* folded into mongodb.uri, not dumped */
#define RD_CONF_AUTO     0x08   /* "auto" means the number of CPUs */
#define RD_CONF_SECONDS  0x10   /* a duration kept in seconds, not in ms */

struct rd_conf_opt {
    const char          *name;      /* the dotted key */
    enum rd_conf_type    type;
    size_t               offset;    /* into struct rd_conf */
    long long            min;       /* strings: bytes */
    long long            max;       /* strings: bytes, 0 = no limit */
    const char          *def;       /* as written in YAML; NULL = unset */
    unsigned             flags;
    const char *const   *names;     /* enum values, by number */
};

static const char *const rd_conf_log_levels[] = {
    "debug", "info", "warn", "error", NULL
};

static const char *const rd_conf_queue_types[] = { "classic", "quorum", NULL };

/* Index modulo 2 is the value. */
static const char *const rd_conf_bools[] = {
    "off", "on", "false", "true", "no", "yes", NULL
};

#define RD_OFF(field)  offsetof(struct rd_conf, field)
#define RD_SECTION(name)  { name, RD_CONF_SECTION, 0, 0, 0, NULL, 0, NULL }

static const struct rd_conf_opt  rd_conf_opts[] = {
    { "daemon", RD_CONF_BOOL, RD_OFF(daemon), 0, 0, "off", 0, NULL },
    { "worker_processes", RD_CONF_INT, RD_OFF(worker_processes),
      1, 1024, "2", RD_CONF_AUTO, NULL },
    { "pid", RD_CONF_STR, RD_OFF(pid), 1, 0, RD_DEFAULT_PID, 0, NULL },
    { "error_log", RD_CONF_STR, RD_OFF(error_log), 1, 0, "stderr", 0, NULL },
    { "log_level", RD_CONF_ENUM, RD_OFF(log_level), 0, 0, "info", 0,
      rd_conf_log_levels },
    { "user", RD_CONF_STR, RD_OFF(user), 1, 0, NULL, 0, NULL },
    { "worker_shutdown_timeout", RD_CONF_DURATION,
      RD_OFF(worker_shutdown_timeout_ms), 0, 3600000, "30s", 0, NULL },

    RD_SECTION("rabbitmq"),
    { "rabbitmq.host", RD_CONF_STR, RD_OFF(rabbitmq.host),
      1, 0, "127.0.0.1", 0, NULL },
    { "rabbitmq.port", RD_CONF_INT, RD_OFF(rabbitmq.port),
      1, 65535, NULL, 0, NULL },
    { "rabbitmq.user", RD_CONF_STR, RD_OFF(rabbitmq.user),
      1, 0, "guest", 0, NULL },
    { "rabbitmq.password", RD_CONF_STR, RD_OFF(rabbitmq.password),
      0, 0, "guest", RD_CONF_SECRET, NULL },
    { "rabbitmq.password_file", RD_CONF_STR, RD_OFF(rabbitmq.password_file),
      1, 0, NULL, 0, NULL },
    { "rabbitmq.vhost", RD_CONF_STR, RD_OFF(rabbitmq.vhost),
      1, 0, "/", 0, NULL },
    { "rabbitmq.task_queue", RD_CONF_STR, RD_OFF(rabbitmq.task_queue),
      1, 255, "reports.tasks", 0, NULL },
    { "rabbitmq.result_queue", RD_CONF_STR, RD_OFF(rabbitmq.result_queue),
      1, 255, "reports.results", 0, NULL },
    { "rabbitmq.dead_letter_queue", RD_CONF_STR,
      RD_OFF(rabbitmq.dead_letter_queue), 1, 255, NULL, 0, NULL },
    { "rabbitmq.queue_type", RD_CONF_ENUM, RD_OFF(rabbitmq.queue_type),
      0, 0, "classic", 0, rd_conf_queue_types },
    { "rabbitmq.prefetch", RD_CONF_INT, RD_OFF(rabbitmq.prefetch),
      1, 65535, "1", 0, NULL },
    { "rabbitmq.heartbeat", RD_CONF_DURATION, RD_OFF(rabbitmq.heartbeat),
      0, 3600, "30s", RD_CONF_SECONDS, NULL },
    { "rabbitmq.max_redeliveries", RD_CONF_INT,
      RD_OFF(rabbitmq.max_redeliveries), 0, 1000, "5", 0, NULL },
    { "rabbitmq.connect_timeout_ms", RD_CONF_INT,
      RD_OFF(rabbitmq.connect_timeout_ms), 1, 3600000, "5000", 0, NULL },
    { "rabbitmq.confirm_timeout_ms", RD_CONF_INT,
      RD_OFF(rabbitmq.confirm_timeout_ms), 1, 3600000, "5000", 0, NULL },
    { "rabbitmq.tls", RD_CONF_BOOL, RD_OFF(rabbitmq.tls),
      0, 0, "off", 0, NULL },
    { "rabbitmq.tls_ca_file", RD_CONF_STR, RD_OFF(rabbitmq.tls_ca_file),
      1, 0, NULL, 0, NULL },
    { "rabbitmq.tls_cert_file", RD_CONF_STR, RD_OFF(rabbitmq.tls_cert_file),
      1, 0, NULL, 0, NULL },
    { "rabbitmq.tls_key_file", RD_CONF_STR, RD_OFF(rabbitmq.tls_key_file),
      1, 0, NULL, 0, NULL },
    { "rabbitmq.tls_verify", RD_CONF_BOOL, RD_OFF(rabbitmq.tls_verify),
      0, 0, "on", 0, NULL },

    RD_SECTION("mongodb"),
    { "mongodb.uri", RD_CONF_STR, RD_OFF(mongodb.uri),
      1, 0, NULL, RD_CONF_URI, NULL },
    { "mongodb.host", RD_CONF_STR, RD_OFF(mongodb.host),
      1, 0, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.port", RD_CONF_INT, RD_OFF(mongodb.port),
      1, 65535, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.user", RD_CONF_STR, RD_OFF(mongodb.user),
      1, 0, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.password", RD_CONF_STR, RD_OFF(mongodb.password),
      0, 0, NULL, RD_CONF_FOLDED | RD_CONF_SECRET, NULL },
    { "mongodb.password_file", RD_CONF_STR, RD_OFF(mongodb.password_file),
      1, 0, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.auth_source", RD_CONF_STR, RD_OFF(mongodb.auth_source),
      1, 0, NULL, RD_CONF_FOLDED, NULL },
    { "mongodb.database", RD_CONF_STR, RD_OFF(mongodb.database),
      1, 0, "calls", 0, NULL },
    { "mongodb.collection", RD_CONF_STR, RD_OFF(mongodb.collection),
      1, 0, "calls", 0, NULL },
    { "mongodb.max_time_ms", RD_CONF_INT, RD_OFF(mongodb.max_time_ms),
      1, 3600000, "20000", 0, NULL },

    RD_SECTION("task"),
    { "task.max_phones", RD_CONF_INT, RD_OFF(task.max_phones),
      1, 100000, "100", 0, NULL },
    { "task.max_message_size", RD_CONF_SIZE, RD_OFF(task.max_message_size),
      64, 67108864, "1m", 0, NULL },
    { "task.max_depth", RD_CONF_INT, RD_OFF(task.max_depth),
      2, 1000, "16", 0, NULL },

    RD_SECTION("report"),
    { "report.price_per_second", RD_CONF_DOUBLE,
      RD_OFF(report.price_per_second), 0, 0, "10", 0, NULL },

    RD_SECTION("status"),
    { "status.listen", RD_CONF_STR, RD_OFF(status.listen),
      1, 0, NULL, 0, NULL },
};

#define RD_CONF_NOPTS  (sizeof(rd_conf_opts) / sizeof(rd_conf_opts[0]))

/* Number suffixes; a bare duration is in seconds. */
static const struct {
    enum rd_conf_type    type;
    const char          *suffix;
    long long            mult;
} rd_conf_units[] = {
    { RD_CONF_INT, "", 1 },
    { RD_CONF_DURATION, "", 1000 },
    { RD_CONF_DURATION, "ms", 1 },
    { RD_CONF_DURATION, "s", 1000 },
    { RD_CONF_DURATION, "m", 60 * 1000 },
    { RD_CONF_DURATION, "h", 3600 * 1000 },
    { RD_CONF_SIZE, "", 1 },
    { RD_CONF_SIZE, "k", 1024 },
    { RD_CONF_SIZE, "K", 1024 },
    { RD_CONF_SIZE, "m", 1024 * 1024 },
    { RD_CONF_SIZE, "M", 1024 * 1024 },
};

struct rd_conf_key {
    yaml_mark_t          mark;      /* of the key, for rd_conf_check() */
    char                 seen;
    char                 given;     /* seen with a value that is not null */
};

struct rd_conf_ctx {
    const char          *path;
    struct rd_conf      *conf;
    yaml_document_t     *doc;
    unsigned char       *visited;   /* by node index */
    int                  literal_secret;
    char                *err;
    size_t               errlen;
    struct rd_conf_key   keys[RD_CONF_NOPTS];
};

static int rd_conf_verror(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, va_list ap) RD_CONF_PRINTF(4, 0);
static int rd_conf_error(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, ...) RD_CONF_PRINTF(4, 5);
static int rd_conf_fail(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    const char *fmt, ...) RD_CONF_PRINTF(3, 4);


static int
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


static int
rd_conf_error(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    rd_conf_verror(ctx, mark, key, fmt, ap);
    va_end(ap);
    return -1;
}


static const struct rd_conf_opt *
rd_conf_find(const char *name)
{
    size_t  i;

    for (i = 0; i < RD_CONF_NOPTS; i++) {
        if (strcmp(rd_conf_opts[i].name, name) == 0)
            return &rd_conf_opts[i];
    }
    return NULL;
}


static struct rd_conf_key *
rd_conf_key(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt)
{
    return &ctx->keys[opt - rd_conf_opts];
}


static void *
rd_conf_field(const struct rd_conf *conf, const struct rd_conf_opt *opt)
{
    return (char *) conf + opt->offset;
}


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


/* Read a whole file; on failure *op says which step failed and errno why. */
static char *
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


/* Where "user:password@" puts the password in a URI, if it has one. */
static int
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


static int
rd_conf_is_null(yaml_node_t *node)
{
    static const char *const  nulls[] = { "", "~", "null", "Null", "NULL" };
    size_t                    i;

    if (node->type != YAML_SCALAR_NODE
        || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    {
        return 0;
    }
    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp((char *) node->data.scalar.value, nulls[i]) == 0)
            return 1;
    }
    return 0;
}


static int
rd_conf_index(const char *const *names, const char *s)
{
    int  i;

    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], s) == 0)
            return i;
    }
    return -1;
}


/* An integer with the unit suffixes of its type, scaled and range-checked. */
static int
rd_conf_number(const struct rd_conf_opt *opt, const char *s, long long *v,
    char *msg, size_t len)
{
    char        *end;
    const char  *unit;
    long long    mult;
    size_t       i;

    unit = (opt->type != RD_CONF_DURATION) ? ""
           : (opt->flags & RD_CONF_SECONDS) ? "s" : "ms";

    if (!isdigit((unsigned char) s[0])
        && !(s[0] == '-' && isdigit((unsigned char) s[1])))
    {
        goto invalid;
    }

    errno = 0;
    *v = strtoll(s, &end, 10);

    mult = 0;
    for (i = 0; i < sizeof(rd_conf_units) / sizeof(rd_conf_units[0]); i++) {
        if (rd_conf_units[i].type == opt->type
            && strcmp(rd_conf_units[i].suffix, end) == 0)
        {
            mult = rd_conf_units[i].mult;
        }
    }
    if (mult == 0)
        goto invalid;

    if (errno == ERANGE || *v > LLONG_MAX / mult || *v < LLONG_MIN / mult)
        goto range;
    *v *= mult;

    if (opt->flags & RD_CONF_SECONDS) {
        if (*v % 1000 != 0) {
            snprintf(msg, len, "%s is not a whole number of seconds", s);
            return -1;
        }
        *v /= 1000;
    }

    if (*v < opt->min || *v > opt->max)
        goto range;
    return 0;

range:
    snprintf(msg, len, "%s is out of range (%lld..%lld%s)",
             s, opt->min, opt->max, unit);
    return -1;

invalid:
    snprintf(msg, len, "\"%s\" is not %s", s,
             opt->type == RD_CONF_DURATION
                 ? "a duration (a number of seconds, or 500ms, 30s, 2m, 1h)"
             : opt->type == RD_CONF_SIZE
                 ? "a size (a number of bytes, or 64k, 1m)"
             : (opt->flags & RD_CONF_AUTO) ? "an integer or auto"
             : "an integer");
    return -1;
}


/* Convert s to the option's type and store it; on error fill msg. */
static int
rd_conf_set(struct rd_conf *conf, const struct rd_conf_opt *opt,
    const char *s, char *msg, size_t len)
{
    void        *field;
    char        *str, *end;
    long long    v;
    double       d;
    size_t       n;
    int          i;

    field = rd_conf_field(conf, opt);

    switch (opt->type) {

    case RD_CONF_BOOL:
        i = rd_conf_index(rd_conf_bools, s);
        if (i == -1) {
            snprintf(msg, len, "\"%s\" is not a boolean "
                     "(on/off, true/false, yes/no)", s);
            return -1;
        }
        *(int *) field = i % 2;
        return 0;

    case RD_CONF_ENUM:
        i = rd_conf_index(opt->names, s);
        if (i == -1) {
            n = snprintf(msg, len, "\"%s\" is not one of", s);
            for (i = 0; opt->names[i] != NULL && n < len; i++)
                n += snprintf(msg + n, len - n, " %s", opt->names[i]);
            return -1;
        }
        *(int *) field = i;
        return 0;

    case RD_CONF_INT:
        if ((opt->flags & RD_CONF_AUTO) && strcmp(s, "auto") == 0) {
            v = sysconf(_SC_NPROCESSORS_ONLN);
            v = (v < opt->min) ? opt->min : (v > opt->max) ? opt->max : v;
            conf->worker_processes_auto = 1;
            *(int *) field = (int) v;
            return 0;
        }
        /* fall through */
    case RD_CONF_DURATION:
    case RD_CONF_SIZE:
        if (rd_conf_number(opt, s, &v, msg, len) != 0)
            return -1;
        *(int *) field = (int) v;
        return 0;

    case RD_CONF_DOUBLE:
        errno = 0;
        d = strtod(s, &end);
        if (!(isdigit((unsigned char) s[0]) || s[0] == '-' || s[0] == '.')
            || end == s || *end != '\0')
        {
            snprintf(msg, len, "\"%s\" is not a number", s);
            return -1;
        }
        if (!isfinite(d) || d < (double) opt->min) {
            snprintf(msg, len, "%s is out of range (a finite number >= %lld)",
                     s, opt->min);
            return -1;
        }
        *(double *) field = d;
        return 0;

    case RD_CONF_STR:
        n = strlen(s);
        if (n < (size_t) opt->min) {
            snprintf(msg, len, "must not be empty");
            return -1;
        }
        if (opt->max != 0 && n > (size_t) opt->max) {
            snprintf(msg, len, "is longer than %lld bytes", opt->max);
            return -1;
        }
        str = strdup(s);
        if (str == NULL) {
            snprintf(msg, len, "out of memory");
            return -1;
        }
        free(*(char **) field);
        *(char **) field = str;
        return 0;

    case RD_CONF_SECTION:
        break;
    }

    snprintf(msg, len, "is a section, not a value");
    return -1;
}


/*
 * ${VAR} and ${VAR:-default} come from the environment (the default when
 * VAR is unset or empty), "$$" is a "$" and any other "$" is itself.
 */
static int
rd_conf_expand(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    yaml_node_t *node, char **out)
{
    const char  *s, *name, *end, *def, *val;
    char         var[256];
    size_t       size, nlen;
    FILE        *f;
    int          rc;

    *out = NULL;
    f = open_memstream(out, &size);
    if (f == NULL)
        return rd_conf_error(ctx, &node->start_mark, opt->name,
                             "out of memory");

    rc = 0;
    s = (const char *) node->data.scalar.value;

    while (*s != '\0' && rc == 0) {
        if (s[0] != '$' || (s[1] != '$' && s[1] != '{')) {
            fputc(*s++, f);
            continue;
        }
        if (s[1] == '$') {
            fputc('$', f);
            s += 2;
            continue;
        }

        name = s + 2;
        for (end = name; isalnum((unsigned char) *end) || *end == '_'; end++)
            /* void */ ;
        nlen = end - name;

        def = NULL;
        if (end[0] == ':' && end[1] == '-') {
            def = end + 2;
            end = strchr(def, '}');
        }

        if (nlen == 0 || nlen >= sizeof(var) || isdigit((unsigned char) *name)
            || end == NULL || *end != '}')
        {
            rc = rd_conf_error(ctx, &node->start_mark, opt->name,
                               "malformed \"${\": use ${NAME}, "
                               "${NAME:-default} or $$ for a \"$\"");
            break;
        }

        memcpy(var, name, nlen);
        var[nlen] = '\0';
        val = getenv(var);

        if (def != NULL && (val == NULL || *val == '\0')) {
            fwrite(def, 1, end - def, f);
        } else if (val == NULL) {
            rc = rd_conf_error(ctx, &node->start_mark, opt->name,
                               "environment variable %s is not set "
                               "(use ${%s:-default} for a default)", var, var);
        } else {
            fputs(val, f);
        }
        s = end + 1;
    }

    if (ferror(f) && rc == 0)
        rc = rd_conf_error(ctx, &node->start_mark, opt->name,
                           "out of memory");
    fclose(f);
    if (rc != 0 || *out == NULL) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}


static int
rd_conf_scalar(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    yaml_node_t *node)
{
    const char  *raw;
    char        *value, msg[256];
    size_t       start, end;
    int          rc;

    raw = (const char *) node->data.scalar.value;

    if (rd_conf_is_null(node)) {
        if (opt->def != NULL)
            return rd_conf_error(ctx, &node->start_mark, opt->name,
                                 "a value is required");
        return 0;
    }
    if (strlen(raw) != node->data.scalar.length)
        return rd_conf_error(ctx, &node->start_mark, opt->name,
                             "contains a NUL byte");

    if (rd_conf_expand(ctx, opt, node, &value) != 0)
        return -1;

    rc = rd_conf_set(ctx->conf, opt, value, msg, sizeof(msg));
    if (rc != 0) {
        rd_conf_error(ctx, &node->start_mark, opt->name, "%s", msg);

    } else {
        rd_conf_key(ctx, opt)->given = 1;

        /* a password written in the file, not taken from the environment */
        if (strstr(raw, "${") == NULL
            && ((opt->flags & RD_CONF_SECRET)
                || ((opt->flags & RD_CONF_URI)
                    && rd_conf_uri_password(value, &start, &end))))
        {
            ctx->literal_secret = 1;
        }
    }

    free(value);
    return rc;
}


static const char *
rd_conf_node_type(yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}


/*
 * Mark a node as visited: a node reached twice is an alias.  Explicit tags
 * are refused too; libyaml gives untagged nodes the default tags.
 */
static int
rd_conf_visit(struct rd_conf_ctx *ctx, yaml_node_t *node,
    const yaml_mark_t *mark, const char *key)
{
    size_t       i;
    const char  *tag;

    i = node - ctx->doc->nodes.start;
    if (ctx->visited[i])
        return rd_conf_error(ctx, mark, key, "aliases are not allowed");
    ctx->visited[i] = 1;

    tag = node->type == YAML_MAPPING_NODE ? YAML_DEFAULT_MAPPING_TAG
          : node->type == YAML_SEQUENCE_NODE ? YAML_DEFAULT_SEQUENCE_TAG
          : YAML_DEFAULT_SCALAR_TAG;
    if (node->tag == NULL || strcmp((char *) node->tag, tag) != 0)
        return rd_conf_error(ctx, &node->start_mark, key,
                             "tags are not allowed (%s)",
                             node->tag ? (char *) node->tag : "?");
    return 0;
}


static int
rd_conf_mapping(struct rd_conf_ctx *ctx, yaml_node_t *map,
    const char *section)
{
    yaml_node_pair_t          *pair;
    yaml_node_t               *key, *value;
    const struct rd_conf_opt  *opt;
    struct rd_conf_key        *k;
    const char                *kname;
    char                       name[128];

    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top;
         pair++)
    {
        key = yaml_document_get_node(ctx->doc, pair->key);
        value = yaml_document_get_node(ctx->doc, pair->value);

        if (rd_conf_visit(ctx, key, &key->start_mark, section) != 0)
            return -1;
        if (key->type != YAML_SCALAR_NODE)
            return rd_conf_error(ctx, &key->start_mark, section,
                                 "a key must be a scalar, not %s",
                                 rd_conf_node_type(key));

        kname = (const char *) key->data.scalar.value;
        snprintf(name, sizeof(name), "%s%s%s", section ? section : "",
                 section ? "." : "", kname);

        opt = NULL;
        if (strlen(kname) == key->data.scalar.length
            && strchr(kname, '.') == NULL)
        {
            opt = rd_conf_find(name);
        }
        if (opt == NULL)
            return rd_conf_error(ctx, &key->start_mark, name, "unknown key");

        k = rd_conf_key(ctx, opt);
        if (k->seen)
            return rd_conf_error(ctx, &key->start_mark, name,
                                 "duplicate key (first at line %zu)",
                                 k->mark.line + 1);
        k->seen = 1;
        k->mark = key->start_mark;

        if (rd_conf_visit(ctx, value, &key->start_mark, name) != 0)
            return -1;

        if (opt->type == RD_CONF_SECTION) {
            if (value->type == YAML_MAPPING_NODE) {
                k->given = 1;
                if (rd_conf_mapping(ctx, value, opt->name) != 0)
                    return -1;

            } else if (!rd_conf_is_null(value)) {
                return rd_conf_error(ctx, &value->start_mark, name,
                                     "expected a mapping, not %s",
                                     rd_conf_node_type(value));
            }

        } else if (value->type != YAML_SCALAR_NODE) {
            return rd_conf_error(ctx, &value->start_mark, name,
                                 "expected a single value, not %s",
                                 rd_conf_node_type(value));

        } else if (rd_conf_scalar(ctx, opt, value) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
rd_conf_yaml_error(struct rd_conf_ctx *ctx, yaml_parser_t *parser,
    const char *buf)
{
    yaml_mark_t  mark;
    size_t       i;

    switch (parser->error) {

    case YAML_MEMORY_ERROR:
        return rd_conf_error(ctx, NULL, NULL, "out of memory");

    case YAML_READER_ERROR:
        /* the reader reports 0:0; find the line from the byte offset */
        memset(&mark, 0, sizeof(mark));
        for (i = 0; i < parser->problem_offset && buf[i] != '\0'; i++) {
            if (buf[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else {
                mark.column++;
            }
        }
        return rd_conf_error(ctx, &mark, NULL, "%s (byte %zu)",
                             parser->problem, parser->problem_offset);

    default:
        if (parser->context != NULL)
            return rd_conf_error(ctx, &parser->problem_mark, NULL,
                                 "%s (%s at line %zu)", parser->problem,
                                 parser->context,
                                 parser->context_mark.line + 1);
        return rd_conf_error(ctx, &parser->problem_mark, NULL, "%s",
                             parser->problem ? parser->problem : "error");
    }
}


/* Exactly one document, whose root is a mapping (or nothing at all). */
static int
rd_conf_parse(struct rd_conf_ctx *ctx)
{
    yaml_parser_t     parser;
    yaml_document_t   doc, extra;
    yaml_node_t      *root;
    struct stat       st;
    const char       *op;
    char             *buf;
    size_t            len;
    int               rc;

    buf = rd_conf_slurp(ctx->path, RD_CONF_MAX_FILE, &len, &st, &op);
    if (buf == NULL)
        return rd_conf_error(ctx, NULL, NULL, "%s: %s", op, strerror(errno));

    if (!yaml_parser_initialize(&parser)) {
        free(buf);
        return rd_conf_error(ctx, NULL, NULL, "out of memory");
    }
    yaml_parser_set_input_string(&parser, (unsigned char *) buf, len);

    if (!yaml_parser_load(&parser, &doc)) {
        rc = rd_conf_yaml_error(ctx, &parser, buf);
        goto done;
    }

    rc = 0;
    root = yaml_document_get_root_node(&doc);

    if (root != NULL) {
        if (!yaml_parser_load(&parser, &extra)) {
            rc = rd_conf_yaml_error(ctx, &parser, buf);

        } else {
            if (yaml_document_get_root_node(&extra) != NULL)
                rc = rd_conf_error(ctx, &extra.start_mark, NULL,
                                   "only one YAML document is allowed");
            yaml_document_delete(&extra);
        }
    }

    if (rc == 0 && root != NULL && !rd_conf_is_null(root)) {
        ctx->doc = &doc;
        ctx->visited = calloc(doc.nodes.top - doc.nodes.start, 1);

        if (ctx->visited == NULL)
            rc = rd_conf_error(ctx, NULL, NULL, "out of memory");
        else if (rd_conf_visit(ctx, root, &root->start_mark, NULL) != 0)
            rc = -1;
        else if (root->type != YAML_MAPPING_NODE)
            rc = rd_conf_error(ctx, &root->start_mark, NULL,
                               "the top level must be a mapping of keys, "
                               "not %s", rd_conf_node_type(root));
        else
            rc = rd_conf_mapping(ctx, root, NULL);

        free(ctx->visited);
        ctx->visited = NULL;
        ctx->doc = NULL;
    }

    yaml_document_delete(&doc);

    if (rc == 0 && (st.st_mode & S_IROTH) && ctx->literal_secret)
        ctx->conf->world_readable_secret = 1;

done:
    yaml_parser_delete(&parser);
    free(buf);
    return rc;
}


static int
rd_conf_defaults(struct rd_conf_ctx *ctx)
{
    const struct rd_conf_opt  *opt;
    char                       msg[256];

    for (opt = rd_conf_opts; opt < rd_conf_opts + RD_CONF_NOPTS; opt++) {
        if (opt->def != NULL
            && rd_conf_set(ctx->conf, opt, opt->def, msg, sizeof(msg)) != 0)
        {
            return rd_conf_error(ctx, NULL, opt->name,
                                 "built-in default: %s", msg);
        }
    }
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
int
rd_conf_parse_listen(const char *listen, struct sockaddr_storage *ss, char *err,
                       size_t errlen)
{
    struct sockaddr_in  *in4 = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    char                 host[128], *end;
    const char          *colon;
    long                 port;
    size_t               n;

    memset(ss, 0, sizeof(*ss));
    colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen) {
        snprintf(err, errlen, "\"%s\": expected HOST:PORT", listen);
        return -1;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 || port > 65535) {
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

        if (rd_conf_parse_listen(ctx->conf->status.listen, &ss, why, sizeof(why)) != 0)
            return rd_conf_fail(ctx, rd_conf_find("status.listen"), "%s",
                                why);
    }

    return 0;
}


/* Derived defaults, then the checks across keys. */
static int
rd_conf_finish(struct rd_conf_ctx *ctx)
{
    struct rd_conf_amqp  *a;
    size_t                n;

    a = &ctx->conf->rabbitmq;

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


struct rd_conf *
rd_conf_load(const char *path, char *err, size_t errlen)
{
    struct rd_conf_ctx  *ctx;
    struct rd_conf      *conf;

    ctx = calloc(1, sizeof(*ctx));
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

    for (opt = rd_conf_opts; opt < rd_conf_opts + RD_CONF_NOPTS; opt++) {
        if (opt->type == RD_CONF_STR)
            free(*(char **) rd_conf_field(conf, opt));
    }
    free(conf->path);
    free(conf);
}


/* Plain when that is safe, else double-quoted; "$" doubled either way. */
static void
rd_conf_dump_str(FILE *out, const char *s)
{
    const char     *p;
    unsigned char   c;
    int             plain;

    plain = isalnum((unsigned char) s[0]) || s[0] == '/' || s[0] == '.'
            || s[0] == '_';
    for (p = s; plain && *p != '\0'; p++)
        plain = isalnum((unsigned char) *p) || strchr("_./:@+-", *p) != NULL;
    if (plain && p[-1] != ':' && strcmp(s, "null") != 0
        && strcmp(s, "Null") != 0 && strcmp(s, "NULL") != 0)
    {
        fputs(s, out);
        return;
    }

    fputc('"', out);
    for (p = s; *p != '\0'; p++) {
        c = (unsigned char) *p;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '$')
            fputs("$$", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}


static void
rd_conf_dump_value(const struct rd_conf *conf, const struct rd_conf_opt *opt,
    FILE *out)
{
    const void  *field;
    const char  *s;
    char        *masked, buf[32];
    size_t       start, end, n;
    double       d;
    int          v;

    field = rd_conf_field(conf, opt);
    v = *(const int *) field;

    switch (opt->type) {

    case RD_CONF_BOOL:
        fputs(v ? "on" : "off", out);
        break;

    case RD_CONF_ENUM:
        fputs(opt->names[v], out);
        break;

    case RD_CONF_INT:
        if ((opt->flags & RD_CONF_AUTO) && conf->worker_processes_auto)
            fputs("auto", out);
        else
            fprintf(out, "%d", v);
        break;

    case RD_CONF_SIZE:
        fprintf(out, "%d", v);
        break;

    case RD_CONF_DURATION:
        if (opt->flags & RD_CONF_SECONDS)
            fprintf(out, "%ds", v);
        else if (v % 1000 == 0)
            fprintf(out, "%ds", v / 1000);
        else
            fprintf(out, "%dms", v);
        break;

    case RD_CONF_DOUBLE:
        /* the shortest form that reads back as the same number */
        d = *(const double *) field;
        snprintf(buf, sizeof(buf), "%.15g", d);
        if (strtod(buf, NULL) != d)
            snprintf(buf, sizeof(buf), "%.17g", d);
        fputs(buf, out);
        break;

    case RD_CONF_STR:
        s = *(char *const *) field;
        if (s == NULL) {
            fputs("~", out);

        } else if (opt->flags & RD_CONF_SECRET) {
            rd_conf_dump_str(out, RD_CONF_MASK);

        } else if ((opt->flags & RD_CONF_URI)
                   && rd_conf_uri_password(s, &start, &end))
        {
            n = strlen(s);
            masked = malloc(n + sizeof(RD_CONF_MASK));
            if (masked == NULL) {
                fputs("~", out);
                break;
            }
            memcpy(masked, s, start);
            memcpy(masked + start, RD_CONF_MASK, sizeof(RD_CONF_MASK) - 1);
            memcpy(masked + start + sizeof(RD_CONF_MASK) - 1, s + end,
                   n - end + 1);
            rd_conf_dump_str(out, masked);
            free(masked);

        } else {
            rd_conf_dump_str(out, s);
        }
        break;

    case RD_CONF_SECTION:
        break;
    }
}


void
rd_conf_dump(const struct rd_conf *conf, FILE *out)
{
    const struct rd_conf_opt  *opt;
    const char                *dot;

    for (opt = rd_conf_opts; opt < rd_conf_opts + RD_CONF_NOPTS; opt++) {
        if (opt->type == RD_CONF_SECTION) {
            fprintf(out, "%s:\n", opt->name);
            continue;
        }

        /* host, port, user, ... are already in the effective uri;
         * a password from password_file is not written twice */
        if ((opt->flags & RD_CONF_FOLDED)
            || (opt->offset == RD_OFF(rabbitmq.password)
                && conf->rabbitmq.password_file != NULL))
        {
            continue;
        }

        dot = strchr(opt->name, '.');
        fprintf(out, "%s%s: ", dot ? "  " : "", dot ? dot + 1 : opt->name);
        rd_conf_dump_value(conf, opt, out);
        fputc('\n', out);
    }
}


const char *
rd_log_level_name(int level)
{
    if (level < RD_LOG_DEBUG || level > RD_LOG_ERROR)
        return "unknown";
    return rd_conf_log_levels[level];
}
