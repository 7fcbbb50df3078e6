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

struct rd_delivery {
    uint64_t  tag;
    int       redelivered;
    char     *body;                  /* malloc'ed copy, NUL-terminated */
    size_t    len;
    char      correlation_id[256];   /* the property, "" when absent */
    char      message_id[256];
    int64_t   attempts;              /* x-reporterd-attempts, 0 when absent */
    int64_t   delivery_count;        /* x-delivery-count (quorum), 0 when absent */
    struct rd_delivery *next;        /* internal: deliveries read early */
};

struct rd_publish {
    const char *correlation_id;      /* NULL: none */
    const char *message_id;          /* NULL: none */
    int64_t     attempts;            /* > 0: set the x-reporterd-attempts header */
};

/* Connect, log in and open the channels.  NULL with err on failure;
 * *fatal is set when retrying cannot help (bad credentials, TLS setup). */
struct rd_broker *rd_broker_open(const struct rd_conf_amqp *conf, const char *name,
                                 int *fatal, char *err, size_t errlen);

/* Declare the dead-letter, task and result queues with the configured
 * arguments.  A 406 (the queue exists with other arguments) is fatal. */
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
