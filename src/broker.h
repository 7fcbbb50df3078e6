/*
 * broker.h -- reporterd's side of RabbitMQ (rabbitmq-c 0.11).
 *
 * One connection per process, opened after fork, with two channels:
 * channel 1 consumes (manual acks, prefetch), channel 2 publishes in
 * confirm mode, so a result counts as sent only once the broker has
 * confirmed it.  Any error other than "no message yet" leaves the
 * connection unusable: the caller closes it and opens a new one.
 */
#ifndef RD_BROKER_H
#define RD_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct rd_broker;

struct rd_props;

struct rd_delivery {
    uint64_t  tag;
    int       redelivered;
    char     *body;                  /* malloc'ed copy, NUL-terminated */
    size_t    len;
    char      correlation_id[256];   /* the property, "" when absent */
    char      message_id[256];
    struct rd_props    *props;       /* internal: every property, for dead-lettering */
    struct rd_delivery *next;        /* internal: deliveries read early */
};

struct rd_publish {
    const char *correlation_id;      /* NULL: none */
    const char *message_id;          /* NULL: none */
    /* Dead-lettering: publish with every property and header of `like`
     * (delivery mode forced persistent), adding x-reporterd-reason and
     * x-reporterd-attempts (information only: reporterd never reads it
     * back, so dead letters moved back to the task queue start afresh). */
    const struct rd_delivery *like;
    const char *reason;
    int64_t     attempts;
};

/* Connect, log in and open the channels.  NULL with err on failure;
 * *fatal is set only when an operator must act (the broker refused the
 * credentials with 403 ACCESS_REFUSED, the TLS files cannot be loaded).  A connection closed during the login
 * without that reply (a broker starting or stopping, a proxy with no
 * backend) and 530 NOT_ALLOWED (a vhost still being created) are
 * transient.  password_file is read again on every call; when it cannot
 * be (a worker running as user: may not), the password read at load is
 * used. */
struct rd_broker *rd_broker_open(const struct rd_conf_amqp *conf, int *node, const char *name,
                                 int *fatal, char *err, size_t errlen);
/* rabbitmq.host may name several nodes of a cluster: rd_broker_open()
 * tries them in turn from *node (an index into the list, taken modulo its
 * length), stops at the first that lets us in and sets *node to it; when
 * none does, err has every node's failure and *node moves one on.  A
 * fatal failure stops at once.  The node a connection uses, "host:port": */
const char *rd_broker_node(const struct rd_broker *b);

/* Make sure the dead-letter, result and task queues exist.  Each is
 * declared passively first, so a queue someone else declared is used
 * with whatever arguments it has; only a missing queue is created, durable,
 * with x-queue-type from rabbitmq.queue_type.  *fatal when the broker
 * refuses us the queue (403). */
int  rd_broker_declare(struct rd_broker *b, int *fatal, char *err, size_t errlen);

int  rd_broker_consume(struct rd_broker *b, const char *queue, int prefetch,
                       char *err, size_t errlen);
int  rd_broker_cancel(struct rd_broker *b, char *err, size_t errlen);

/* RD_OK with *d filled, RD_AGAIN after timeout_ms with nothing, RD_ERROR. */
int  rd_broker_next(struct rd_broker *b, struct rd_delivery *d, int timeout_ms,
                    char *err, size_t errlen);

/* Publish persistent JSON to queue through the default exchange and wait
 * for the confirm.  RD_OK once confirmed; RD_DECLINED when the broker
 * nacked or returned it (connection still usable); RD_ERROR otherwise. */
int  rd_broker_publish(struct rd_broker *b, const char *queue, const char *body,
                       size_t len, const struct rd_publish *p, char *err, size_t errlen);

int  rd_broker_ack(struct rd_broker *b, uint64_t tag);
int  rd_broker_reject(struct rd_broker *b, uint64_t tag, int requeue);

/* graceful: close channels and connection politely; otherwise just drop
 * the socket (after an error, or in a fast stop). */
void rd_broker_close(struct rd_broker *b, int graceful);

void rd_delivery_free(struct rd_delivery *d);

#endif
