/*
 * broker_props.c -- a delivery's AMQP properties, kept whole so that a
 * dead letter carries every one of them, and extended with reporterd's
 * two headers.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_props.h"

static void
dup_bytes(amqp_pool_t *pool, amqp_bytes_t *b)
{
    amqp_bytes_t copy;

    if (b->len == 0)
        return;
    amqp_pool_alloc_bytes(pool, b->len, &copy);
    if (copy.bytes == NULL) {
        *b = amqp_empty_bytes;
        return;
    }
    memcpy(copy.bytes, b->bytes, b->len);
    *b = copy;
}

struct rd_props *
rd_props_copy(const amqp_basic_properties_t *p)
{
    struct rd_props *c = malloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    init_amqp_pool(&c->pool, 1024);
    c->p = *p;
    dup_bytes(&c->pool, &c->p.content_type);
    dup_bytes(&c->pool, &c->p.content_encoding);
    dup_bytes(&c->pool, &c->p.correlation_id);
    dup_bytes(&c->pool, &c->p.reply_to);
    dup_bytes(&c->pool, &c->p.expiration);
    dup_bytes(&c->pool, &c->p.message_id);
    dup_bytes(&c->pool, &c->p.type);
    dup_bytes(&c->pool, &c->p.user_id);
    dup_bytes(&c->pool, &c->p.app_id);
    dup_bytes(&c->pool, &c->p.cluster_id);
    if ((p->_flags & AMQP_BASIC_HEADERS_FLAG)
        && amqp_table_clone(&p->headers, &c->p.headers, &c->pool) != AMQP_STATUS_OK) {
        empty_amqp_pool(&c->pool);
        free(c);
        return NULL;
    }
    return c;
}

void
rd_props_free(struct rd_props *c)
{
    if (c == NULL)
        return;
    empty_amqp_pool(&c->pool);
    free(c);
}

amqp_table_entry_t *
rd_props_dead_letter(amqp_basic_properties_t *props, const char *reason, int64_t attempts)
{
    const amqp_table_t *old = &props->headers;
    amqp_table_entry_t *hdr;
    amqp_bytes_t        why = amqp_cstring_bytes(reason != NULL ? reason : "");
    int                 i, k = 0, n = 0;

    if (props->_flags & AMQP_BASIC_HEADERS_FLAG)
        n = old->num_entries;
    hdr = malloc((size_t) (n + 2) * sizeof(*hdr));
    if (hdr == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        const amqp_bytes_t *key = &old->entries[i].key;

        if ((key->len == 18 && memcmp(key->bytes, "x-reporterd-reason", 18) == 0)
            || (key->len == 20 && memcmp(key->bytes, "x-reporterd-attempts", 20) == 0))
            continue;
        hdr[k++] = old->entries[i];
    }
    if (why.len > 1024) {               /* cut on a UTF-8 character boundary */
        why.len = 1024;
        while (why.len > 0 && (((unsigned char *) why.bytes)[why.len] & 0xC0) == 0x80)
            why.len--;
    }
    hdr[k].key = amqp_cstring_bytes("x-reporterd-reason");
    hdr[k].value.kind = AMQP_FIELD_KIND_UTF8;
    hdr[k].value.value.bytes = why;
    k++;
    hdr[k].key = amqp_cstring_bytes("x-reporterd-attempts");
    hdr[k].value.kind = AMQP_FIELD_KIND_I64;
    hdr[k].value.value.i64 = attempts;
    k++;
    /* As RabbitMQ does when it dead-letters: a per-message TTL would make
     * the dead letter expire in its queue. */
    props->_flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
    props->expiration = amqp_empty_bytes;
    props->_flags |= AMQP_BASIC_HEADERS_FLAG;
    props->headers.num_entries = k;
    props->headers.entries = hdr;
    return hdr;
}
