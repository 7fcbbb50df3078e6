/*
 * task.h -- reading one report task from an untrusted message body.
 *
 * A task is {"correlation_id": <int64 or string>, "phones": [<int64>, ...]}.
 * rd_task_parse() sorts every body into one of three outcomes:
 *   RD_TASK_OK          a valid task;
 *   RD_TASK_INVALID     it has a usable correlation_id but breaks the
 *                       contract: answer with an "Error" result;
 *   RD_TASK_UNREADABLE  no answer is possible (not JSON, not an object,
 *                       no usable correlation_id): reject it.
 */
#ifndef RD_TASK_H
#define RD_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

enum rd_task_outcome {
    RD_TASK_OK = 0,
    RD_TASK_INVALID,
    RD_TASK_UNREADABLE
};

#define RD_CORRELATION_ID_MAX 255          /* an AMQP shortstr */

struct rd_task {
    int      id_is_string;
    int64_t  id_int;
    char     id_text[RD_CORRELATION_ID_MAX + 1];  /* the id as text */
    int64_t *phones;                       /* distinct, in request order */
    size_t   nphones;
};

/* body[len] must be '\0' (rd_delivery bodies are).  limits->max_depth
 * counts containers: a valid task, {"correlation_id": 1, "phones": [1]},
 * has depth 2. */
int  rd_task_parse(const char *body, size_t len,
                   const struct rd_conf_task *limits,
                   struct rd_task *task, char *err, size_t errlen);
void rd_task_free(struct rd_task *task);

/* The body of a task, as reporterctl publishes it: one line of JSON,
 * phones as given.  malloc'ed and NUL-terminated; NULL on out of memory. */
char *rd_task_to_json(const struct rd_task *task);

#endif
