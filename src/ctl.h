/*
 * ctl.h -- reporterctl's subcommands that live in files of their own.
 * Each takes the loaded configuration and its own argv (argv[0] is the
 * subcommand) and returns the process exit status: 0, EX_USAGE (64) for
 * a bad argument, 1 for what went wrong at run time, or a status of its
 * own that its help names.  With conf NULL it only checks its arguments
 * (0 or EX_USAGE): reporterctl does that before it reads the
 * configuration.
 */
#ifndef RD_CTL_H
#define RD_CTL_H

#include <sysexits.h>

#include "conf.h"
#include "store.h"

/* An option's value as an integer in [min, max] / a number >= min:
 * 0, or -1 after saying on stderr what name wanted. */
int rd_ctl_arg_long(const char *name, const char *s, long min, long max, long *out);
int rd_ctl_arg_double(const char *name, const char *s, double min, double *out);
/* "reporterctl: CMD takes no argument \"X\"" for argv[first] when first < argc:
 * EX_USAGE, else 0. */
int rd_ctl_no_more(const char *cmd, int argc, char **argv, int first);

int rd_ctl_import(struct rd_conf *conf, int argc, char **argv);
int rd_ctl_bench(struct rd_conf *conf, int argc, char **argv);
int rd_ctl_rollup(struct rd_conf *conf, int argc, char **argv);

/* --drop of seed and import: the records, and with them the rollups and
 * their batches (folding starts again from batch 1). */
int rd_ctl_drop(const struct rd_conf *conf, struct rd_store *st, char *err, size_t errlen);
/* --if-empty of seed and import: 1 (and a line on stdout saying so) when
 * the records collection holds a record already, so nothing is loaded;
 * 0 when it is empty; -1 after saying on stderr what failed. */
int rd_ctl_held(const struct rd_conf *conf, struct rd_store *st, const char *cmd);
int rd_ctl_status(struct rd_conf *conf, int argc, char **argv);

#endif
