/*
 * conf_impl.h -- what the files of the configuration loader share, and no
 * one else: the option table's row, the load context and the functions
 * they call across files.  Outside src/conf*.c, include conf.h.
 *
 *     conf.c        load and free; errors at file:line:col; reading a file
 *     conf_table.c  rd_conf_opts[]: every key, its type, range and default
 *     conf_yaml.c   the YAML document walked against the table
 *     conf_value.c  what a scalar means: ${VAR}, bool, int, duration, ...
 *     conf_check.c  what the table cannot say: derived values, cross-checks
 *     conf_dump.c   the effective configuration back out as YAML
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
    RD_CONF_DOUBLE,
    RD_CONF_SIZE
};

#define RD_CONF_SECRET   0x01   /* a password: masked by rd_conf_dump() */
#define RD_CONF_URI      0x02   /* may hold "user:password@" */
#define RD_CONF_FOLDED   0x04   /* folded into mongodb.uri, not dumped */
#define RD_CONF_AUTO     0x08   /* "auto" means the number of CPUs */
#define RD_CONF_SECONDS  0x10   /* a duration kept in seconds, not in ms */
#define RD_CONF_PATH     0x20   /* a file: made absolute against the
                                   configuration file's directory at load,
                                   except the values in names[] */

struct rd_conf_opt {
    const char          *name;      /* the dotted key */
    enum rd_conf_type    type;
    size_t               offset;    /* into struct rd_conf */
    long long            min;       /* strings: bytes */
    long long            max;       /* strings: bytes, 0 = no limit */
    const char          *def;       /* as written in YAML; NULL = unset */
    unsigned             flags;
    const char *const   *names;     /* enum values, by number; for a path,
                                       the values that are not file names */
};

#define RD_OFF(field)  offsetof(struct rd_conf, field)

/* conf_table.c */
extern const struct rd_conf_opt   rd_conf_opts[];
extern const size_t               rd_conf_nopts;

const struct rd_conf_opt *rd_conf_find(const char *name);
void *rd_conf_field(const struct rd_conf *conf, const struct rd_conf_opt *opt);

struct rd_conf_key {
    yaml_mark_t          mark;      /* of the key, for rd_conf_check() */
    char                 seen;
    char                 given;     /* seen with a value that is not null */
};

/*
 * One rd_conf_load() call.  keys[] has a row per rd_conf_opts[] row; only
 * conf_table.c knows how many, so the context is allocated to fit.
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

/* conf.c */
int rd_conf_verror(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, va_list ap) RD_CONF_PRINTF(4, 0);
int rd_conf_error(struct rd_conf_ctx *ctx, const yaml_mark_t *mark,
    const char *key, const char *fmt, ...) RD_CONF_PRINTF(4, 5);
struct rd_conf_key *rd_conf_key(struct rd_conf_ctx *ctx,
    const struct rd_conf_opt *opt);
char *rd_conf_slurp(const char *path, size_t max, size_t *len,
    struct stat *st, const char **op);

/* conf_yaml.c */
int rd_conf_parse(struct rd_conf_ctx *ctx);

/* conf_value.c */
int rd_conf_set(struct rd_conf *conf, const struct rd_conf_opt *opt,
    const char *s, char *msg, size_t len);
int rd_conf_expand(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    yaml_node_t *node, char **out);
int rd_conf_uri_password(const char *uri, size_t *start, size_t *end);

/* conf_check.c */
int rd_conf_finish(struct rd_conf_ctx *ctx);

#endif
