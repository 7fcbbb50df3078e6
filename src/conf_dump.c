/*
 * conf_dump.c -- the effective configuration written back as YAML, for
 * `reporterd -T`: every key of the option table with its value after
 * defaults and derivation, secrets masked (passwords, and inside
 * mongodb.uri the userinfo's password and secret options), and strings
 * quoted so that the loader would read them back as they are.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_impl.h"

#define RD_CONF_MASK        "********"


/* A URI option whose value is a secret: any name holding "password"
 * (password, tlsCertificateKeyFilePassword, sslPEMKeyPassword...),
 * "secret" or "token", and authMechanismProperties (which may carry an
 * AWS_SESSION_TOKEN).  Names are compared ignoring case, as drivers do. */
static int
rd_conf_secret_option(const char *name, size_t len)
{
    static const char *const  words[] = {
        "password", "secret", "token", "authmechanismproperties"
    };
    size_t                    i, j, n;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        n = strlen(words[i]);
        for (j = 0; j + n <= len; j++) {
            if (strncasecmp(name + j, words[i], n) == 0)
                return 1;
        }
    }
    return 0;
}


/* uri with the password of "user:password@" and the value of every secret
 * option masked; NULL when out of memory.  A password may hold unescaped
 * "/?#@&" that the driver would refuse: the userinfo runs from the first
 * ':' before the first '@' to the last '@', and a value runs on over
 * pieces without '=' -- where in doubt, more is masked, never less. */
static char *
rd_conf_mask_uri(const char *uri)
{
    const char  *p, *auth, *colon, *at, *end, *eq, *sep;
    char        *out = NULL;
    size_t       size;
    int          masking = 0;
    FILE        *f;

    f = open_memstream(&out, &size);
    if (f == NULL)
        return NULL;

    p = uri;
    auth = strstr(uri, "://");
    if (auth != NULL) {
        auth += 3;
        colon = strchr(auth, ':');
        at = strchr(auth, '@');
        if (colon != NULL && at != NULL && colon < at) {
            fwrite(uri, 1, colon + 1 - uri, f);
            fputs(RD_CONF_MASK, f);
            p = strrchr(auth, '@');
        }
    }

    /* the options: name=value pieces after '?', split by '&' or ';' */
    end = strchr(p, '?');
    if (end != NULL) {
        fwrite(p, 1, end + 1 - p, f);
        for (p = end + 1, sep = NULL; ; sep = end, p = end + 1) {
            end = p + strcspn(p, "&;");
            eq = memchr(p, '=', end - p);
            if (eq != NULL)
                masking = rd_conf_secret_option(p, eq - p);
            if (eq != NULL || !masking) {
                if (sep != NULL)
                    fputc(*sep, f);
                fwrite(p, 1, (masking ? eq + 1 : end) - p, f);
                if (masking)
                    fputs(RD_CONF_MASK, f);
            }
            if (*end == '\0')
                break;
        }
        p = end;
    }
    fputs(p, f);

    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
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
    int64_t      e4;
    int          v, word, n;

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
        word = (opt->chosen == 0) ? 0
               : *(const int *) ((const char *) conf + opt->chosen);
        if (word > 0)
            fputs(opt->names[word - 1], out);
        else
            fprintf(out, "%d", v);
        break;

    case RD_CONF_SIZE:
        fprintf(out, "%d", v);
        break;

    case RD_CONF_DURATION:
        if (opt->flags & RD_CONF_BARE_MS)
            fprintf(out, "%d", v);
        else if (opt->flags & RD_CONF_SECONDS)
            fprintf(out, "%ds", v);
        else if (v % 1000 == 0)
            fprintf(out, "%ds", v / 1000);
        else
            fprintf(out, "%dms", v);
        break;

    case RD_CONF_DECIMAL:
        /* the decimal as written, without trailing zeros */
        e4 = *(const int64_t *) field;
        n = snprintf(buf, sizeof(buf), "%s%lld.%04lld", e4 < 0 ? "-" : "",
                     (long long) (e4 < 0 ? -(e4 / 10000) : e4 / 10000),
                     (long long) (e4 < 0 ? -(e4 % 10000) : e4 % 10000));
        while (n > 0 && buf[n - 1] == '0')
            buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '.')
            buf[--n] = '\0';
        fputs(buf, out);
        break;

    case RD_CONF_STR:
        s = *(char *const *) field;
        if (s == NULL) {
            fputs("~", out);

        } else if (opt->flags & RD_CONF_SECRET) {
            rd_conf_dump_str(out, RD_CONF_MASK);

        } else if (opt->flags & RD_CONF_URI) {
            masked = rd_conf_mask_uri(s);
            rd_conf_dump_str(out, masked != NULL ? masked : RD_CONF_MASK);
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

    for (opt = rd_conf_opts; opt < rd_conf_opts + rd_conf_nopts; opt++) {
        if (opt->type == RD_CONF_SECTION) {
            fprintf(out, "%s:\n", opt->name);
            continue;
        }

        /* host, port, user, ... are already in the effective uri;
         * a secret read from its file is not written twice */
        if ((opt->flags & RD_CONF_FOLDED)
            || (opt->file != NULL
                && *(char *const *) rd_conf_field(conf,
                                                  rd_conf_find(opt->file))
                   != NULL))
        {
            continue;
        }

        dot = strchr(opt->name, '.');
        fprintf(out, "%s%s: ", dot ? "  " : "", dot ? dot + 1 : opt->name);
        rd_conf_dump_value(conf, opt, out);
        fputc('\n', out);
    }
}
