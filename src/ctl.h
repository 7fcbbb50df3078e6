/*
 * ctl.h -- reporterctl's subcommands that live in files of their own.
 * Each takes the loaded configuration and its own argv (argv[0] is the
 * subcommand) and returns the process exit status.
 */
#ifndef RD_CTL_H
#define RD_CTL_H

#include "conf.h"
#include "store.h"

int rd_ctl_import(struct rd_conf *conf, int argc, char **argv);
int rd_ctl_bench(struct rd_conf *conf, int argc, char **argv);
int rd_ctl_rollup(struct rd_conf *conf, int argc, char **argv);

/* --drop of seed and import: the records, and with them the rollups and
 * their batches (folding starts again from batch 1). */
int rd_ctl_drop(const struct rd_conf *conf, struct rd_store *st, char *err, size_t errlen);
int rd_ctl_status(struct rd_conf *conf, int argc, char **argv);

#endif
