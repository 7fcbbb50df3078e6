/*
 * conf_value.c -- one value's text made its option's type, judged alone:
 * booleans (on/off, true/false, yes/no), enums by their words and aliases,
 * integers, durations and sizes with their unit suffixes, fixed-point
 * decimals, strings within their lengths; each range-checked against its
 * row of the option table (conf.c), with the message that says why not.
 * The YAML walk (conf_parse.c) and the defaults both go through
 * rd_conf_set().
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_impl.h"

/* Index modulo 2 is the value. */
static const char *const rd_conf_bools[] = {
    "off", "on", "false", "true", "no", "yes", NULL
};

/* Number suffixes.  A bare duration is in seconds, or in milliseconds
 * with RD_CONF_BARE_MS: rd_conf_number() decides. */
static const struct {
    enum rd_conf_type    type;
    const char          *suffix;
    long long            mult;
} rd_conf_units[] = {
    { RD_CONF_INT, "", 1 },
    { RD_CONF_DURATION, "ms", 1 },
    { RD_CONF_DURATION, "s", 1000 },
    { RD_CONF_DURATION, "m", 60 * 1000 },
    { RD_CONF_DURATION, "h", 3600 * 1000 },
    { RD_CONF_DURATION, "d", 24 * 3600 * 1000 },
    { RD_CONF_SIZE, "", 1 },
    { RD_CONF_SIZE, "k", 1024 },
    { RD_CONF_SIZE, "K", 1024 },
    { RD_CONF_SIZE, "m", 1024 * 1024 },
    { RD_CONF_SIZE, "M", 1024 * 1024 },
};


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


/* names[] appended to msg, each after sep: for messages that list them. */
static void
rd_conf_list(char *msg, size_t len, const char *sep, const char *const *names)
{
    size_t  n, i;

    n = strlen(msg);
    for (i = 0; names != NULL && names[i] != NULL && n < len; i++)
        n += snprintf(msg + n, len - n, "%s%s", sep, names[i]);
}


/* An integer with the unit suffixes of its type, scaled and range-checked. */
static int
rd_conf_number(const struct rd_conf_opt *opt, const char *s, long long *v,
    char *msg, size_t len)
{
    char        *end, what[128];
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
    if (opt->type == RD_CONF_DURATION && *end == '\0')
        mult = (opt->flags & RD_CONF_BARE_MS) ? 1 : 1000;
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
    if (opt->type == RD_CONF_DURATION)
        snprintf(what, sizeof(what), "a duration (a number of %s, or 500ms, "
                 "30s, 2m, 1h, 1d)", (opt->flags & RD_CONF_BARE_MS)
                                     ? "milliseconds" : "seconds");
    else
        snprintf(what, sizeof(what), "%s", opt->type == RD_CONF_SIZE
                 ? "a size (a number of bytes, or 64k, 1m)" : "an integer");
    /* an integer row's words: "an integer or auto" */
    rd_conf_list(what, sizeof(what), " or ", opt->names);
    snprintf(msg, len, "\"%s\" is not %s", s, what);
    return -1;
}


/*
 * A decimal read from its text, never through a double: [-]digits with
 * at most 4 fraction digits ("0.7", "12.3456", "10"), kept in
 * ten-thousandths, within the row's min..max whole units.
 */
static int
rd_conf_decimal(const struct rd_conf_opt *opt, const char *s, int64_t *out,
    char *msg, size_t len)
{
    const char  *p;
    int64_t      v, lim;
    int          neg, digits, frac;

    p = s;
    neg = (*p == '-');
    if (neg)
        p++;
    lim = (int64_t) (opt->max > -opt->min ? opt->max : -opt->min) * 10000;
    v = 0;
    digits = 0;
    for ( /* void */ ; isdigit((unsigned char) *p); p++, digits++) {
        if (v <= lim)
            v = v * 10 + (*p - '0');
    }
    frac = 0;
    if (*p == '.') {
        for (p++; isdigit((unsigned char) *p); p++, frac++) {
            if (frac < 4)
                v = v * 10 + (*p - '0');
        }
    }
    if (digits == 0 || *p != '\0' || (frac == 0 && p[-1] == '.')) {
        snprintf(msg, len, "\"%s\" is not a decimal number (like 10 or 0.25)", s);
        return -1;
    }
    if (frac > 4) {
        snprintf(msg, len, "%s has more than 4 decimals", s);
        return -1;
    }
    for ( /* void */ ; frac < 4; frac++) {
        if (v <= lim)
            v *= 10;
    }
    if (v > lim || (neg ? -v : v) < opt->min * 10000 || (neg ? -v : v) > opt->max * 10000) {
        snprintf(msg, len, "%s is out of range (%lld..%lld)", s, opt->min, opt->max);
        return -1;
    }
    *out = neg ? -v : v;
    return 0;
}


/* Other words for an enum's value, as people write them. */
static const struct {
    const char *const *names;   /* the enum's word list */
    const char        *alias, *word;
} rd_conf_aliases[] = {
    { rd_log_levels, "warning", "warn" },
};

/* Convert s to the option's type and store it; on error fill msg. */
int
rd_conf_set(struct rd_conf *conf, const struct rd_conf_opt *opt,
    const char *s, char *msg, size_t len)
{
    void        *field;
    char        *str;
    long long    v;
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
        for (n = 0; i == -1 && n < sizeof(rd_conf_aliases) / sizeof(rd_conf_aliases[0]); n++)
            if (rd_conf_aliases[n].names == opt->names
                && strcmp(rd_conf_aliases[n].alias, s) == 0)
                i = rd_conf_index(opt->names, rd_conf_aliases[n].word);
        if (i == -1) {
            snprintf(msg, len, "\"%s\" is not one of", s);
            rd_conf_list(msg, len, " ", opt->names);
            return -1;
        }
        *(int *) field = i;
        return 0;

    case RD_CONF_INT:
        i = (opt->names != NULL) ? rd_conf_index(opt->names, s) : -1;
        if (opt->chosen != 0)
            *(int *) ((char *) conf + opt->chosen) = i + 1;
        if (i != -1) {
            *(int *) field = opt->word(opt, i);
            return 0;
        }
        /* fall through */
    case RD_CONF_DURATION:
    case RD_CONF_SIZE:
        if (rd_conf_number(opt, s, &v, msg, len) != 0)
            return -1;
        *(int *) field = (int) v;
        return 0;

    case RD_CONF_DECIMAL:
        return rd_conf_decimal(opt, s, (int64_t *) field, msg, len);

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

