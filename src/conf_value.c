/*
 * conf_value.c -- what one scalar of reporterd.yaml means: ${VAR} and
 * ${VAR:-default} expansion, then conversion to the option's type (bool,
 * enum, integer, duration, size, double, string) with its range checked.
 * Also the two values whose syntax is their own: a URI's password (to know
 * a secret when we see one) and status.listen's HOST:PORT.
 *
 * Each value is judged alone; how keys relate to each other is
 * conf_check.c's business.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_impl.h"

/* Index modulo 2 is the value. */
static const char *const rd_conf_bools[] = {
    "off", "on", "false", "true", "no", "yes", NULL
};

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
int
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
int
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
    if (colon == NULL || colon == listen) {
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
