/*
 * conf_impl.h -- what the files of the configuration loader share, and no
 * one else: the option table's row and the load context.  Outside
 * src/conf*.c, include conf.h.  Calls go one way, down this list:
 *
 *     conf_parse.c    rd_conf_load(): the YAML walked against the table,
 *                     each scalar expanded (${VAR})
 *     conf_value.c    a scalar converted to its row's type, range-checked
 *     conf_check.c    what the table cannot say: derived values, cross-checks
 *     conf_dump.c     the effective configuration back out as YAML
 *     conf_mongodb.c  the mongodb URI, the driver's limits, a task's budget
 *     conf_addr.c     status.listen and rabbitmq.host's nodes parsed
 *     conf.c          the option table, errors at file:line:col, reading a
 *                     file or a secret, rd_conf_free() and what a reload
 *                     cannot change
 */
#ifndef RD_CONF_IMPL_H
#define RD_CONF_IMPL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <yaml.h>

#include "conf.h"

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
    RD_CONF_DECIMAL,   /* a decimal with at most 4 fraction digits, kept as
                          an int64_t number of ten-thousandths; min, max
                          in whole units */
    RD_CONF_SIZE
};

#define RD_CONF_SECRET     0x01 /* a password: masked by rd_conf_dump() */
#define RD_CONF_URI        0x02 /* may hold "user:password@" */
#define RD_CONF_FOLDED     0x04 /* folded into mongodb.uri, not dumped */
#define RD_CONF_NO_RELOAD  0x08 /* a reload keeps the running value */
#define RD_CONF_SECONDS    0x10 /* a duration kept in seconds, not in ms */
#define RD_CONF_PATH       0x20 /* a file: made absolute against the
                                   configuration file's directory at load,
                                   except the values in names[] */
#define RD_CONF_BARE_MS    0x40 /* a duration whose bare number is in ms,
                                   not in seconds */
#define RD_CONF_LIST       0x80 /* a string that may be written as a YAML
                                   sequence of scalars: kept joined by ',' */

struct rd_conf_opt {
    const char          *name;      /* the dotted key */
    enum rd_conf_type    type;
    size_t               offset;    /* into struct rd_conf */
    long long            min;       /* strings: bytes */
    long long            max;       /* strings: bytes, 0 = no limit */
    const char          *def;       /* as written in YAML; NULL = unset */
    unsigned             flags;
    const char *const   *names;     /* an enum's values, by number; a path's
                                       values that are no file; the words an
                                       integer takes besides numbers */
    int                (*word)(const struct rd_conf_opt *opt, int i);
                                    /* an integer's value for names[i] */
    size_t               chosen;    /* an int in struct rd_conf: which of
                                       names[] was written, 1-based; 0 for a
                                       number (0 here: no such field) */
    const char          *file;      /* a secret: the key of the file it is
                                       read from instead, if any */
};

#define RD_OFF(field)  offsetof(struct rd_conf, field)

/* conf.c */
extern const struct rd_conf_opt   rd_conf_opts[];
extern const size_t               rd_conf_nopts;

const struct rd_conf_opt *rd_conf_find(const char *name);
void *rd_conf_field(const struct rd_conf *conf, const struct rd_conf_opt *opt);

struct rd_conf_key {
    yaml_mark_t          mark;      /* of the key, for errors after the walk */
    char                 seen;
    char                 given;     /* seen with a value that is not null */
    char                 from_env;  /* that value came through a ${VAR} */
};

/*
 * One rd_conf_load() call.  keys[] has a row per rd_conf_opts[] row, so
 * the context is allocated to fit.
 */
struct rd_conf_ctx {
    const char          *path;
    struct rd_conf      *conf;
    yaml_document_t     *doc;
    unsigned char       *visited;   /* by node index */
    int                  literal_secret;
    char                *err;
    size_t               errlen;
    struct rd_conf_key   keys[];    /* rd_conf_nopts of them */
};

int rd_conf_verror(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, va_list ap) RD_CONF_PRINTF(4, 0);
int rd_conf_error(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, ...) RD_CONF_PRINTF(4, 5);
struct rd_conf_key *rd_conf_key(struct rd_conf_ctx *ctx,
    const struct rd_conf_opt *opt);
char *rd_conf_slurp(const char *path, size_t max, size_t *len,
    struct stat *st, const char **op);
int rd_conf_given(struct rd_conf_ctx *ctx, const char *name);
const struct rd_conf_opt *rd_conf_later(struct rd_conf_ctx *ctx,
    const char *name, ...);
int rd_conf_fail(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    const char *fmt, ...) RD_CONF_PRINTF(3, 4);
int rd_conf_password_file(struct rd_conf_ctx *ctx, const char *password);

/* conf_value.c */
int rd_conf_set(struct rd_conf *conf, const struct rd_conf_opt *opt,
    const char *s, char *msg, size_t len);

/* conf_check.c */
int rd_conf_finish(struct rd_conf_ctx *ctx);

/* conf_mongodb.c */
int rd_conf_mongodb_finish(struct rd_conf_ctx *ctx);
int rd_conf_uri_password(const char *uri, size_t *start, size_t *end);

#endif
