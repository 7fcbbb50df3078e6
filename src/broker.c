/*
 * broker.c -- RabbitMQ adapter: connect, declare, consume, publish with
 * confirms, ack and reject.  rabbitmq-c 0.11 does no background work:
 * heartbeats are answered only inside its calls.  After a library error
 * the connection is destroyed without a graceful close, whose blocking
 * RPCs could hang or write onto a broken stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "broker.h"
#include "broker_props.h"
#include "metrics.h"
#include "util.h"

#define CH_CONSUME 1
#define CH_PUBLISH 2
#define CH_DECLARE 3           /* passive declares close it when they fail */

struct rd_broker {
    amqp_connection_state_t   conn;
    const struct rd_conf_amqp *conf;
    uint64_t                  publish_seq;     /* last confirm sequence used */
    char                      consumer_tag[128];
    struct rd_delivery       *early;           /* read while awaiting a confirm */
    struct rd_delivery      **early_tail;
    char                      node[270];       /* "host:port" it is connected to */
};

static void
reply_error(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen)
{
    amqp_connection_close_t *cc;
    amqp_channel_close_t    *ch;

    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(err, errlen, "%s: ok", what);
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: no reply from the broker", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            cc = r.reply.decoded;
            snprintf(err, errlen, "%s: connection closed by the broker: %u %.*s", what,
                     cc->reply_code, (int) cc->reply_text.len, (char *) cc->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            ch = r.reply.decoded;
            snprintf(err, errlen, "%s: channel closed by the broker: %u %.*s", what,
                     ch->reply_code, (int) ch->reply_text.len, (char *) ch->reply_text.bytes);
        } else {
            snprintf(err, errlen, "%s: unexpected server method %s", what,
                     amqp_method_name(r.reply.id));
        }
        break;
    }
}

static int
reply_code(amqp_rpc_reply_t r)
{
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION)
        return 0;
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
        return ((amqp_connection_close_t *) r.reply.decoded)->reply_code;
    if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
        return ((amqp_channel_close_t *) r.reply.decoded)->reply_code;
    return 0;
}

static int
check_rpc(struct rd_broker *b, const char *what, char *err, size_t errlen)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return RD_OK;
    reply_error(r, what, err, errlen);
    return RD_ERROR;
}

static struct timeval
ms_tv(int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    return tv;
}

static amqp_socket_t *
make_socket(struct rd_broker *b, int *fatal, char *err, size_t errlen)
{
    const struct rd_conf_amqp *c = b->conf;
    amqp_socket_t             *s;

    if (!c->tls) {
        s = amqp_tcp_socket_new(b->conn);
        if (s == NULL)
            snprintf(err, errlen, "amqp_tcp_socket_new() failed");
        return s;
    }
    s = amqp_ssl_socket_new(b->conn);
    if (s == NULL) {
        snprintf(err, errlen, "amqp_ssl_socket_new() failed");
        return NULL;
    }
    amqp_ssl_socket_set_verify_peer(s, c->tls_verify);
    amqp_ssl_socket_set_verify_hostname(s, c->tls_verify);
    amqp_ssl_socket_set_ssl_versions(s, AMQP_TLSv1_2, AMQP_TLSvLATEST);
    if (c->tls_ca_file != NULL && amqp_ssl_socket_set_cacert(s, c->tls_ca_file) != 0) {
        snprintf(err, errlen, "cannot load rabbitmq.tls_ca_file \"%s\"", c->tls_ca_file);
        *fatal = 1;
        return NULL;
    }
    if (c->tls_cert_file != NULL
        && amqp_ssl_socket_set_key(s, c->tls_cert_file,
                                   c->tls_key_file ? c->tls_key_file : c->tls_cert_file) != 0) {
        snprintf(err, errlen, "cannot load rabbitmq.tls_cert_file/tls_key_file");
        *fatal = 1;
        return NULL;
    }
    return s;
}

/* One node of rabbitmq.host: connect, log in, open the channels. */
static struct rd_broker *
open_node(const struct rd_conf_amqp *c, const char *host, int port, const char *name,
          int *fatal, char *err, size_t errlen)
{
    struct rd_broker   *b;
    amqp_socket_t      *sock;
    amqp_table_entry_t  caps[3], props[2];
    amqp_table_t        caps_t, props_t;
    amqp_rpc_reply_t    r;
    struct timeval      tv;
    char               *password = NULL;
    int                 rc;

    *fatal = 0;
    b = calloc(1, sizeof(*b));
    if (b == NULL || (b->conn = amqp_new_connection()) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(b);
        return NULL;
    }
    b->conf = c;
    b->early_tail = &b->early;
    snprintf(b->node, sizeof(b->node), strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
    if ((sock = make_socket(b, fatal, err, errlen)) == NULL)
        goto fail;
    tv = ms_tv(c->connect_timeout_ms);
    rc = amqp_socket_open_noblock(sock, host, port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port,
                 amqp_error_string2(rc));
        goto fail;
    }
    tv = ms_tv(c->connect_timeout_ms);
    amqp_set_handshake_timeout(b->conn, &tv);

    caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
    caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[0].value.value.boolean = 1;
    caps[1].key = amqp_cstring_bytes("publisher_confirms");
    caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[1].value.value.boolean = 1;
    caps[2].key = amqp_cstring_bytes("basic.nack");
    caps[2].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[2].value.value.boolean = 1;
    caps_t.num_entries = 3;
    caps_t.entries = caps;
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table = caps_t;
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes(name);
    props_t.num_entries = 2;
    props_t.entries = props;

    /* A file the worker (as user:) may not read: the password the master
     * read at load stands, and a rotation needs a reload. */
    if (c->password_file != NULL)
        password = rd_conf_read_secret(c->password_file, err, errlen);
    r = amqp_login_with_properties(b->conn, c->vhost, 0, 131072, c->heartbeat, &props_t,
                                   AMQP_SASL_METHOD_PLAIN, c->user,
                                   password != NULL ? password : c->password);
    if (password != NULL) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_error(r, "login", err, errlen);
        if (reply_code(r) == AMQP_ACCESS_REFUSED) {
            /* authentication_failure_close: the broker says so explicitly */
            snprintf(err, errlen, "login to %s:%d as \"%s\" vhost \"%s\" refused: "
                     "403 ACCESS_REFUSED (check rabbitmq.user and the password)",
                     host, port, c->user, c->vhost);
            *fatal = 1;
        } else if (reply_code(r) == AMQP_NOT_ALLOWED) {
            snprintf(err, errlen, "login to %s:%d vhost \"%s\": 530 NOT_ALLOWED (the vhost "
                     "does not exist yet, or \"%s\" may not use it)", host, port,
                     c->vhost, c->user);
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                   && r.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
            snprintf(err, errlen, "login to %s:%d: the connection was closed before the "
                     "broker answered (starting or stopping, or a proxy with no backend)",
                     host, port);
        }
        goto fail;
    }
    tv = ms_tv(c->connect_timeout_ms + c->confirm_timeout_ms);
    amqp_set_rpc_timeout(b->conn, &tv);

    amqp_channel_open(b->conn, CH_CONSUME);
    if (check_rpc(b, "channel.open", err, errlen) != RD_OK)
        goto fail;
    amqp_channel_open(b->conn, CH_PUBLISH);
    if (check_rpc(b, "channel.open", err, errlen) != RD_OK)
        goto fail;
    amqp_channel_open(b->conn, CH_DECLARE);
    if (check_rpc(b, "channel.open", err, errlen) != RD_OK)
        goto fail;
    amqp_confirm_select(b->conn, CH_PUBLISH);
    if (check_rpc(b, "confirm.select", err, errlen) != RD_OK)
        goto fail;
    return b;

fail:
    amqp_destroy_connection(b->conn);
    free(b);
    return NULL;
}

struct rd_broker *
rd_broker_open(const struct rd_conf_amqp *c, int *node, const char *name, int *fatal,
               char *err, size_t errlen)
{
    struct rd_broker *b;
    char              host[256], why[512];
    int               n, i, k, port;
    size_t            used = 0;

    *fatal = 0;
    n = rd_conf_amqp_node(c, -1, host, sizeof(host), &port, err, errlen);
    if (n < 1)
        return NULL;
    err[0] = '\0';
    for (k = 0; k < n; k++) {
        i = ((*node % n) + n + k) % n;
        if (rd_conf_amqp_node(c, i, host, sizeof(host), &port, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "rabbitmq.host: %s", why);
            return NULL;
        }
        b = open_node(c, host, port, name, fatal, why, sizeof(why));
        if (b != NULL) {
            *node = i;
            return b;
        }
        if (used < errlen)
            used += (size_t) snprintf(err + used, errlen - used, "%s%s", k > 0 ? "; " : "", why);
        if (*fatal)
            return NULL;
    }
    *node = (*node + 1) % n;
    return NULL;
}

const char *
rd_broker_node(const struct rd_broker *b)
{
    return b->node;
}

/* A failed declare closed CH_DECLARE: say close-ok and open it again. */
static int
reopen_declare_channel(struct rd_broker *b, char *err, size_t errlen)
{
    amqp_channel_close_ok_t ok = { 0 };

    if (amqp_send_method(b->conn, CH_DECLARE, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok)
        != AMQP_STATUS_OK) {
        snprintf(err, errlen, "channel.close-ok: lost the connection");
        return RD_ERROR;
    }
    amqp_channel_open(b->conn, CH_DECLARE);
    return check_rpc(b, "channel.open", err, errlen);
}

/* Use the queue if it exists, whatever its arguments; create it if not.
 * Two tries: a queue created by someone else between our passive declare
 * and our own (406 or a 405 RESOURCE_LOCKED) is found by the second. */
static int
declare(struct rd_broker *b, const char *queue, amqp_table_t args, int *fatal,
        char *err, size_t errlen)
{
    amqp_rpc_reply_t r;
    char             what[320];
    int              try, passive, code = 0;

    for (try = 0; try < 4; try++) {
        passive = try % 2 == 0;
        amqp_queue_declare(b->conn, CH_DECLARE, amqp_cstring_bytes(queue), passive, 1, 0, 0,
                           passive ? amqp_empty_table : args);
        r = amqp_get_rpc_reply(b->conn);
        if (r.reply_type == AMQP_RESPONSE_NORMAL)
            return RD_OK;
        snprintf(what, sizeof(what), "queue.declare%s \"%s\"", passive ? " (passive)" : "",
                 queue);
        reply_error(r, what, err, errlen);
        code = reply_code(r);
        if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION
            || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
            return RD_ERROR;            /* the connection is gone */
        if (reopen_declare_channel(b, what, sizeof(what)) != RD_OK)
            return RD_ERROR;
        if (passive ? code != AMQP_NOT_FOUND
                    : code != AMQP_PRECONDITION_FAILED && code != AMQP_RESOURCE_LOCKED)
            break;
    }
    if (code == AMQP_ACCESS_REFUSED) {
        *fatal = 1;
        snprintf(err + strlen(err), errlen - strlen(err),
                 " (rabbitmq.user may not declare this queue: grant it configure "
                 "permission or have the queue created)");
    }
    return RD_ERROR;
}

int
rd_broker_declare(struct rd_broker *b, int *fatal, char *err, size_t errlen)
{
    const struct rd_conf_amqp *c = b->conf;
    amqp_table_entry_t         e[1];
    amqp_table_t               args = { 0, e };

    *fatal = 0;
    if (c->queue_type == RD_QUEUE_QUORUM) {
        e[0].key = amqp_cstring_bytes("x-queue-type");
        e[0].value.kind = AMQP_FIELD_KIND_UTF8;
        e[0].value.value.bytes = amqp_cstring_bytes("quorum");
        args.num_entries = 1;
    }
    if (declare(b, c->dead_letter_queue, args, fatal, err, errlen) != RD_OK
        || declare(b, c->result_queue, args, fatal, err, errlen) != RD_OK
        || declare(b, c->task_queue, args, fatal, err, errlen) != RD_OK)
        return RD_ERROR;
    return RD_OK;
}

int
rd_broker_consume(struct rd_broker *b, const char *queue, int prefetch,
                  char *err, size_t errlen)
{
    amqp_basic_consume_ok_t *ok;

    amqp_basic_qos(b->conn, CH_CONSUME, 0, (uint16_t) prefetch, 0);
    if (check_rpc(b, "basic.qos", err, errlen) != RD_OK)
        return RD_ERROR;
    ok = amqp_basic_consume(b->conn, CH_CONSUME, amqp_cstring_bytes(queue),
                            amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (ok == NULL) {
        check_rpc(b, "basic.consume", err, errlen);
        return RD_ERROR;
    }
    snprintf(b->consumer_tag, sizeof(b->consumer_tag), "%.*s",
             (int) ok->consumer_tag.len, (char *) ok->consumer_tag.bytes);
    return RD_OK;
}

int
rd_broker_cancel(struct rd_broker *b, char *err, size_t errlen)
{
    if (b->consumer_tag[0] == '\0')
        return RD_OK;
    /* Deliveries that were already on their way arrive before cancel-ok;
     * the library queues them for the caller's next rd_broker_next(). */
    amqp_basic_cancel(b->conn, CH_CONSUME, amqp_cstring_bytes(b->consumer_tag));
    b->consumer_tag[0] = '\0';
    return check_rpc(b, "basic.cancel", err, errlen);
}

static void
copy_prop(char *dst, size_t size, amqp_flags_t flags, amqp_flags_t bit, amqp_bytes_t v)
{
    size_t n = 0;

    if (flags & bit) {
        n = v.len < size - 1 ? v.len : size - 1;
        memcpy(dst, v.bytes, n);
    }
    dst[n] = '\0';
}

static int
fill_delivery(struct rd_delivery *d, uint64_t tag, int redelivered,
              const amqp_message_t *m, char *err, size_t errlen)
{
    const amqp_basic_properties_t *p = &m->properties;

    memset(d, 0, sizeof(*d));
    d->tag = tag;
    d->redelivered = redelivered;
    d->len = m->body.len;
    d->body = malloc(d->len + 1);
    d->props = rd_props_copy(p);
    if (d->body == NULL || d->props == NULL) {
        rd_delivery_free(d);
        snprintf(err, errlen, "out of memory for a %zu-byte message", d->len);
        return RD_ERROR;
    }
    if (d->len > 0)
        memcpy(d->body, m->body.bytes, d->len);
    d->body[d->len] = '\0';
    copy_prop(d->correlation_id, sizeof(d->correlation_id), p->_flags,
              AMQP_BASIC_CORRELATION_ID_FLAG, p->correlation_id);
    copy_prop(d->message_id, sizeof(d->message_id), p->_flags,
              AMQP_BASIC_MESSAGE_ID_FLAG, p->message_id);
    return RD_OK;
}

/* A method frame arrived where a delivery or a confirm was expected. */
static int
handle_method(struct rd_broker *b, amqp_frame_t *f, char *err, size_t errlen)
{
    amqp_message_t            msg;
    amqp_rpc_reply_t          r;
    amqp_channel_close_t     *cc;
    amqp_connection_close_t  *xc;
    amqp_channel_close_ok_t   cok = { 0 };
    amqp_connection_close_ok_t xok = { 0 };

    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD:
    case AMQP_BASIC_NACK_METHOD:
        return RD_AGAIN;                         /* a late confirm */
    case AMQP_BASIC_RETURN_METHOD:
        r = amqp_read_message(b->conn, f->channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            reply_error(r, "reading a returned message", err, errlen);
            return RD_ERROR;
        }
        amqp_destroy_message(&msg);
        return RD_AGAIN;
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(err, errlen, "the broker cancelled the consumer (queue deleted?)");
        return RD_ERROR;
    case AMQP_CHANNEL_CLOSE_METHOD:
        cc = f->payload.method.decoded;
        snprintf(err, errlen, "channel %u closed by the broker: %u %.*s", f->channel,
                 cc->reply_code, (int) cc->reply_text.len, (char *) cc->reply_text.bytes);
        amqp_send_method(b->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &cok);
        return RD_ERROR;
    case AMQP_CONNECTION_CLOSE_METHOD:
        xc = f->payload.method.decoded;
        snprintf(err, errlen, "connection closed by the broker: %u %.*s",
                 xc->reply_code, (int) xc->reply_text.len, (char *) xc->reply_text.bytes);
        amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &xok);
        return RD_ERROR;
    default:
        snprintf(err, errlen, "unexpected method %s on channel %u",
                 amqp_method_name(f->payload.method.id), f->channel);
        return RD_ERROR;
    }
}

int
rd_broker_next(struct rd_broker *b, struct rd_delivery *d, int timeout_ms,
               char *err, size_t errlen)
{
    amqp_envelope_t  env;
    amqp_rpc_reply_t r;
    amqp_frame_t     f;
    struct timeval   tv = ms_tv(timeout_ms);
    int              rc;

    if (b->early != NULL) {
        struct rd_delivery *e = b->early;

        b->early = e->next;
        if (b->early == NULL)
            b->early_tail = &b->early;
        *d = *e;
        d->next = NULL;
        free(e);
        return RD_OK;
    }
    amqp_maybe_release_buffers(b->conn);
    r = amqp_consume_message(b->conn, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        rc = fill_delivery(d, env.delivery_tag, env.redelivered, &env.message, err, errlen);
        amqp_destroy_envelope(&env);
        return rc;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
        && r.library_error == AMQP_STATUS_TIMEOUT)
        return RD_AGAIN;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
        && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        if (amqp_simple_wait_frame(b->conn, &f) != AMQP_STATUS_OK) {
            snprintf(err, errlen, "lost the broker connection while reading a frame");
            return RD_ERROR;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            return RD_AGAIN;
        return handle_method(b, &f, err, errlen);
    }
    reply_error(r, "consume", err, errlen);
    return RD_ERROR;
}

/* A delivery arrived on the consume channel while we waited for a
 * confirm: read it whole and keep it for rd_broker_next(). */
static int
keep_early_delivery(struct rd_broker *b, amqp_frame_t *f, char *err, size_t errlen)
{
    amqp_basic_deliver_t *dm = f->payload.method.decoded;
    uint64_t              tag = dm->delivery_tag;
    int                   redelivered = dm->redelivered;
    amqp_message_t        msg;
    amqp_rpc_reply_t      r;
    struct rd_delivery   *d;
    int                   rc;

    r = amqp_read_message(b->conn, f->channel, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_error(r, "reading a delivery", err, errlen);
        return RD_ERROR;
    }
    d = malloc(sizeof(*d));
    rc = d == NULL ? RD_ERROR : fill_delivery(d, tag, redelivered, &msg, err, errlen);
    amqp_destroy_message(&msg);
    if (rc != RD_OK) {
        free(d);
        return RD_ERROR;
    }
    *b->early_tail = d;
    b->early_tail = &d->next;
    return RD_OK;
}

int
rd_broker_publish(struct rd_broker *b, const char *queue, const char *body, size_t len,
                  const struct rd_publish *p, char *err, size_t errlen)
{
    amqp_basic_properties_t props;
    amqp_table_entry_t     *hdr = NULL;
    amqp_frame_t            f;
    amqp_bytes_t            content = { len, (void *) body };
    struct timeval          tv;
    int64_t                 deadline;
    uint64_t                seq, acked;
    int                     rc, returned = 0, multiple;

    memset(&props, 0, sizeof(props));
    if (p != NULL && p->like != NULL && p->like->props != NULL) {
        props = p->like->props->p;
        if ((hdr = rd_props_dead_letter(&props, p->reason, p->attempts)) == NULL) {
            snprintf(err, errlen, "out of memory for the headers of a dead letter");
            return RD_ERROR;
        }
    } else {
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
    }
    props._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
    if (p != NULL && p->correlation_id != NULL) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = amqp_cstring_bytes(p->correlation_id);
    }
    if (p != NULL && p->message_id != NULL) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(p->message_id);
    }
    rc = amqp_basic_publish(b->conn, CH_PUBLISH, amqp_empty_bytes,
                            amqp_cstring_bytes(queue), 1, 0, &props, content);
    free(hdr);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "basic.publish to \"%s\": %s", queue, amqp_error_string2(rc));
        return RD_ERROR;
    }
    seq = ++b->publish_seq;
    deadline = rd_now_ms() + b->conf->confirm_timeout_ms;
    for (;;) {
        int64_t left = deadline - rd_now_ms();

        if (left <= 0) {
            RD_METRIC(confirm_timeouts);
            snprintf(err, errlen, "no publisher confirm from the broker within %d ms",
                     b->conf->confirm_timeout_ms);
            return RD_ERROR;
        }
        tv = ms_tv((int) left);
        rc = amqp_simple_wait_frame_noblock(b->conn, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "waiting for a publisher confirm: %s", amqp_error_string2(rc));
            return RD_ERROR;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD:
            acked = ((amqp_basic_ack_t *) f.payload.method.decoded)->delivery_tag;
            multiple = ((amqp_basic_ack_t *) f.payload.method.decoded)->multiple;
            if (acked == seq || (multiple && acked > seq)) {
                if (!returned)
                    return RD_OK;
                snprintf(err, errlen, "the broker returned the message: no queue \"%s\"", queue);
                return RD_DECLINED;
            }
            break;
        case AMQP_BASIC_NACK_METHOD:
            acked = ((amqp_basic_nack_t *) f.payload.method.decoded)->delivery_tag;
            multiple = ((amqp_basic_nack_t *) f.payload.method.decoded)->multiple;
            if (acked == seq || (multiple && acked > seq)) {
                snprintf(err, errlen, "the broker nacked the message to \"%s\"", queue);
                return RD_DECLINED;
            }
            break;
        case AMQP_BASIC_RETURN_METHOD:
            returned = 1;
            if (handle_method(b, &f, err, errlen) == RD_ERROR)
                return RD_ERROR;
            break;
        case AMQP_BASIC_DELIVER_METHOD:
            if (keep_early_delivery(b, &f, err, errlen) != RD_OK)
                return RD_ERROR;
            break;
        default:
            if (handle_method(b, &f, err, errlen) == RD_ERROR)
                return RD_ERROR;
        }
    }
}

int
rd_broker_ack(struct rd_broker *b, uint64_t tag)
{
    return amqp_basic_ack(b->conn, CH_CONSUME, tag, 0) == AMQP_STATUS_OK ? RD_OK : RD_ERROR;
}

int
rd_broker_reject(struct rd_broker *b, uint64_t tag, int requeue)
{
    return amqp_basic_reject(b->conn, CH_CONSUME, tag, requeue) == AMQP_STATUS_OK
           ? RD_OK : RD_ERROR;
}

void
rd_broker_close(struct rd_broker *b, int graceful)
{
    struct rd_delivery *d, *next;

    if (b == NULL)
        return;
    if (graceful) {
        amqp_channel_close(b->conn, CH_PUBLISH, AMQP_REPLY_SUCCESS);
        amqp_channel_close(b->conn, CH_CONSUME, AMQP_REPLY_SUCCESS);
        amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(b->conn);
    for (d = b->early; d != NULL; d = next) {
        next = d->next;
        rd_delivery_free(d);
        free(d);
    }
    free(b);
}

void
rd_delivery_free(struct rd_delivery *d)
{
    free(d->body);
    d->body = NULL;
    rd_props_free(d->props);
    d->props = NULL;
}
