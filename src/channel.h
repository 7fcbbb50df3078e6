/*
 * channel.h -- the socketpair between the master and each worker.
 *
 * Workers send one-byte state reports; the master only ever closes its
 * end, which a worker reads as "the master is gone: stop gracefully".
 */
#ifndef RD_CHANNEL_H
#define RD_CHANNEL_H

enum rd_channel_msg {
    RD_CHAN_CONSUMING = 'C',     /* connected to both and consuming */
    RD_CHAN_BROKER_DOWN = 'B',   /* lost the broker, reconnecting */
    RD_CHAN_STORE_DOWN = 'D',    /* the database is unreachable */
    RD_CHAN_STOPPING = 'S',      /* stopping on request */
    RD_CHAN_WORKED = 'W'         /* finished its first task (sent once) */
};

/* fds[0] for the master, fds[1] for the worker; both non-blocking,
 * close-on-exec.  -1 on failure (errno set). */
int rd_channel_open(int fds[2]);

/* Send one message; never blocks, never raises SIGPIPE. */
int rd_channel_send(int fd, enum rd_channel_msg msg);

/* Read one message: the message, 0 when none is waiting, -1 on EOF or error. */
int rd_channel_recv(int fd);

#endif
