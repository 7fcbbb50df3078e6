/*
 * envfile.c -- `--env-file FILE`: a dotenv file read into the environment
 * before the configuration, so that its ${VAR} references see it: the old
 * Python service's .env / .env.local as they are (see envfile.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envfile.h"

/* The value after "NAME=" at s into out (NUL-terminated); NULL on success,
 * else why. */
static const char *
value(const char *s, char *out, size_t len)
{
    size_t o = 0;
    char   q;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '"' || *s == '\'') {
        for (q = *s++; *s != '\0' && *s != q; s++) {
            char c = *s;

            if (q == '"' && c == '\\' && s[1] != '\0') {
                c = *++s;
                c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
            }
            if (o + 1 >= len)
                return "the value is too long";
            out[o++] = c;
        }
        if (*s != q)
            return "no closing quote on the line";
        for (s++; *s == ' ' || *s == '\t'; s++)
            ;
        if (*s != '\0' && *s != '#' && *s != '\n' && *s != '\r')
            return "text after the closing quote";
        out[o] = '\0';
        return NULL;
    }
    for (; *s != '\0' && *s != '\n' && *s != '\r'; s++) {
        if (*s == '#' && o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
            break;              /* " # a comment"; "#abc" alone is a value */
        if (o + 1 >= len)
            return "the value is too long";
        out[o++] = *s;
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o] = '\0';
    return NULL;
}

int
rd_envfile_load(const char *path, char *err, size_t errlen)
{
    char        line[8192], name[256], val[8192], *s;
    const char *why;
    size_t      n;
    int         lineno = 0;
    FILE       *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "--env-file %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%d: the line is too long", path, lineno);
            fclose(f);
            return -1;
        }
        for (s = line; *s == ' ' || *s == '\t'; s++)
            ;
        if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#')
            continue;
        if (strncmp(s, "export", 6) == 0 && (s[6] == ' ' || s[6] == '\t'))
            for (s += 7; *s == ' ' || *s == '\t'; s++)
                ;
        for (n = 0; (isalnum((unsigned char) s[n]) || s[n] == '_' || s[n] == '.' || s[n] == '-')
                    && n + 1 < sizeof(name); n++)
            name[n] = s[n];
        name[n] = '\0';
        s += n;
        while (*s == ' ' || *s == '\t')
            s++;
        if (n > 0 && (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#'))
            continue;           /* a NAME alone: no value, as python-dotenv */
        if (n == 0 || isdigit((unsigned char) name[0]) || *s != '=') {
            snprintf(err, errlen, "%s:%d: expected NAME=value", path, lineno);
            fclose(f);
            return -1;
        }
        if ((why = value(s + 1, val, sizeof(val))) != NULL) {
            snprintf(err, errlen, "%s:%d: %s: %s", path, lineno, name, why);
            fclose(f);
            return -1;
        }
        if (setenv(name, val, 1) != 0) {
            snprintf(err, errlen, "%s:%d: %s: %s", path, lineno, name, strerror(errno));
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}
