/*
 * status_tasks.h -- the status process's GET /tasks/<correlation_id>
 * (status.tasks: on): the journal's documents for an id (journal.h) as
 * JSON -- one document as an object, several (tasks that share the id,
 * 123 and "123" alike) as an array; 404 when none; 503 while the
 * database cannot be read.  Results are customer data: the route is off
 * unless asked for.
 */
#ifndef RD_STATUS_TASKS_H
#define RD_STATUS_TASKS_H

#include <stddef.h>

#include "conf.h"

/* The client pool: in the status process, after the privilege drop.  No
 * I/O. */
int   rd_status_tasks_open(const struct rd_conf *conf, char *err, size_t errlen);
void  rd_status_tasks_close(void);

/* The body for GET /tasks/<id> (malloc'ed JSON, NULL on out of memory),
 * its HTTP status in *code and its length in *len.  Thread-safe. */
char *rd_status_tasks_get(const char *id, unsigned *code, size_t *len);

#endif
