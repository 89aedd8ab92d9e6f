/* systemd's notify protocol (sd_notify(3)), spoken directly: READY=1,
 * STATUS=, RELOADING=1 and STOPPING=1 to the socket that $NOTIFY_SOCKET
 * names, one AF_UNIX datagram per message.  Without $NOTIFY_SOCKET (not
 * started by systemd as Type=notify) every call is a no-op.
 * kvfs_notify_new() reads $NOTIFY_SOCKET and removes it from the
 * environment, so call it while the process is single-threaded and before
 * any child is started; the other calls are thread-safe (the struct is
 * read-only once made) and never block: a message the socket cannot take
 * at once is dropped, as is any error (logged at debug). */
#ifndef KVFS_NOTIFY_H
#define KVFS_NOTIFY_H

struct kvfs_notify;

/* *ret NULL when $NOTIFY_SOCKET is unset, or not an absolute path or an
 * abstract name ('@...'): the calls below accept NULL.  -ENOMEM only. */
int kvfs_notify_new(struct kvfs_notify **ret);
void kvfs_notify_free(struct kvfs_notify *n);

/* Send msg ("READY=1", "STATUS=...", several lines joined by '\n') as one
 * datagram.  0, or -errno (already logged at debug; callers ignore it). */
int kvfs_notify_send(struct kvfs_notify *n, const char *msg);
/* "RELOADING=1" with "MONOTONIC_USEC=" now on CLOCK_MONOTONIC. */
int kvfs_notify_reloading(struct kvfs_notify *n);

#endif
