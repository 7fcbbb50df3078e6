/*
 * broker_props.h -- a delivery's AMQP properties for dead-lettering
 * (inside the broker adapter only: it speaks rabbitmq-c's types).
 */
#ifndef RD_BROKER_PROPS_H
#define RD_BROKER_PROPS_H

#include <stdint.h>

#include <amqp.h>

struct rd_props {
    amqp_pool_t             pool;
    amqp_basic_properties_t p;
};

/* A deep copy of every property; NULL when out of memory. */
struct rd_props    *rd_props_copy(const amqp_basic_properties_t *p);
void                rd_props_free(struct rd_props *c);

/* Point props->headers at a malloc'ed array (the caller frees it after
 * publishing): its own headers but ours, plus x-reporterd-reason (cut to
 * 1 KiB on a UTF-8 boundary) and x-reporterd-attempts; drop a per-message
 * expiration.  NULL when out of memory. */
amqp_table_entry_t *rd_props_dead_letter(amqp_basic_properties_t *props, const char *reason,
                                         int64_t attempts);

#endif
