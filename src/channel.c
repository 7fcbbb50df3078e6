/*
 * channel.c -- master/worker socketpair messages.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"

int
rd_channel_open(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
}

int
rd_channel_send(int fd, enum rd_channel_msg msg)
{
    char c = (char) msg;

    if (fd < 0)
        return -1;
    while (send(fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

int
rd_channel_recv(int fd)
{
    unsigned char c;
    ssize_t       n;

    do
        n = recv(fd, &c, 1, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n == 1)
        return c;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return -1;
}
