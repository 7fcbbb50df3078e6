/*
 * tap.h -- a minimal Test Anything Protocol emitter for the C unit tests.
 *
 * ok(cond, fmt, ...) prints "ok N - ..." or "not ok N - ...";
 * is_int/is_str/is_dbl compare and print both values on failure;
 * done_testing() prints the plan and returns the exit status.
 */
#ifndef RD_TAP_H
#define RD_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static int
tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...) do {                                         \
        long long g_ = (long long) (got), w_ = (long long) (want);         \
        if (!ok(g_ == w_, __VA_ARGS__))                                    \
            printf("#   got %lld, want %lld\n", g_, w_);                   \
    } while (0)

#define is_str(got, want, ...) do {                                         \
        const char *g_ = (got), *w_ = (want);                              \
        int eq_ = (g_ == NULL || w_ == NULL) ? g_ == w_ : !strcmp(g_, w_); \
        if (!ok(eq_, __VA_ARGS__))                                         \
            printf("#   got \"%s\"\n#  want \"%s\"\n",                     \
                   g_ ? g_ : "(null)", w_ ? w_ : "(null)");                \
    } while (0)

#define like(got, needle, ...) do {                                         \
        const char *g_ = (got), *n_ = (needle);                            \
        if (!ok(g_ != NULL && strstr(g_, n_) != NULL, __VA_ARGS__))        \
            printf("#   \"%s\"\n#   does not contain \"%s\"\n",            \
                   g_ ? g_ : "(null)", n_);                                \
    } while (0)

#define is_dbl(got, want, ...) do {                                         \
        double g_ = (got), w_ = (want);                                    \
        if (!ok(fabs(g_ - w_) < 1e-9, __VA_ARGS__))                        \
            printf("#   got %.17g, want %.17g\n", g_, w_);                 \
    } while (0)

static int
done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
