/*
 * conf_addr.c -- the network addresses a configuration holds, parsed the
 * one way the loader checks them and the daemon uses them: status.listen's
 * HOST:PORT (no name is ever looked up) and the entries of rabbitmq.host's
 * list of broker nodes.
 */

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

/* The loader checks status.listen with this; the status server binds it. */
int
rd_conf_parse_listen(const char *listen, struct sockaddr_storage *ss,
    char *err, size_t errlen)
{
    struct sockaddr_in  *in4 = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    char                 host[128], *end;
    const char          *colon;
    long                 port;
    size_t               n;

    memset(ss, 0, sizeof(*ss));
    colon = strrchr(listen, ':');
    if (colon == NULL) {
        snprintf(err, errlen, "\"%s\": expected HOST:PORT", listen);
        return -1;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1
        || port < 1 || port > 65535)
    {
        snprintf(err, errlen, "\"%s\": port must be 1..65535", listen);
        return -1;
    }
    n = (size_t) (colon - listen);
    if (n >= sizeof(host)) {
        snprintf(err, errlen, "\"%s\": host too long", listen);
        return -1;
    }
    memcpy(host, listen, n);
    host[n] = '\0';
    /* ":PORT" is every IPv4 address, "localhost:PORT" the loopback one:
     * no name is ever looked up */
    if (n == 0)
        snprintf(host, sizeof(host), "*");
    else if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        host[n - 1] = '\0';
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t) port);
        if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1)
            return 0;
    } else {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t) port);
        if (strcmp(host, "*") == 0) {
            in4->sin_addr.s_addr = htonl(INADDR_ANY);
            return 0;
        }
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1)
            return 0;
    }
    snprintf(err, errlen, "\"%s\": \"%s\" is not an IP address", listen, host);
    return -1;
}


/* Entry i of rabbitmq.host (conf.h says how it is read). */
int
rd_conf_amqp_node(const struct rd_conf_amqp *a, int i, char *host, size_t hostlen,
                  int *port, char *err, size_t errlen)
{
    const char *p = a->host, *end, *h, *he, *colon;
    char       *stop;
    long        v;
    int         n = 0;

    for (;;) {
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        h = p;
        if (*p == '[') {                        /* [v6] or [v6]:port */
            he = memchr(p, ']', (size_t) (end - p));
            if (he == NULL || he == p + 1) {
                snprintf(err, errlen, "entry %d: \"[\" without an address and \"]\"", n + 1);
                return -1;
            }
            h = p + 1;
            colon = he + 1 < end ? he + 1 : NULL;
            if (colon != NULL && *colon != ':') {
                snprintf(err, errlen, "entry %d: \"]\" followed by neither \":port\" nor \",\"",
                         n + 1);
                return -1;
            }
        } else {
            colon = memchr(p, ':', (size_t) (end - p));
            if (colon != NULL && memchr(colon + 1, ':', (size_t) (end - colon - 1)) != NULL)
                colon = NULL;                   /* a bare IPv6 address, no port */
            he = colon != NULL ? colon : end;
        }
        if (he == h) {
            snprintf(err, errlen, "entry %d is empty", n + 1);
            return -1;
        }
        if (memchr(h, ' ', (size_t) (he - h)) != NULL || (size_t) (he - h) >= 256) {
            snprintf(err, errlen, "entry %d: not a host name or address", n + 1);
            return -1;
        }
        v = a->port;
        if (colon != NULL) {
            errno = 0;
            v = strtol(colon + 1, &stop, 10);
            if (stop == colon + 1 || stop != end || errno != 0 || v < 1 || v > 65535) {
                snprintf(err, errlen, "entry %d: the port must be a number from 1 to 65535", n + 1);
                return -1;
            }
        }
        if (n == i) {
            if ((size_t) (he - h) >= hostlen) {
                snprintf(err, errlen, "entry %d: the host is too long", n + 1);
                return -1;
            }
            memcpy(host, h, (size_t) (he - h));
            host[he - h] = '\0';
            *port = (int) v;
        }
        if (++n > RD_CONF_AMQP_NODES) {
            snprintf(err, errlen, "more than %d entries", RD_CONF_AMQP_NODES);
            return -1;
        }
        if (*end == '\0')
            return n;
        p = end + 1;
    }
}
