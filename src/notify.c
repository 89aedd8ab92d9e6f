/* The notify protocol without libsystemd: the whole of it that kvfs needs
 * is one sendto() of a text datagram, and libsystemd would be a dependency
 * on hosts that may not run systemd at all.  The address is kept from
 * kvfs_notify_new() on; each message opens its own socket (SOCK_CLOEXEC,
 * so that no child inherits it) and sends with MSG_DONTWAIT: a full or
 * vanished socket costs the caller one failed system call, never a wait. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

struct kvfs_notify {
	struct sockaddr_un addr;
	socklen_t len;
};

int kvfs_notify_new(struct kvfs_notify **ret)
{
	const char *env = getenv("NOTIFY_SOCKET");
	struct kvfs_notify *n;
	size_t len;

	*ret = NULL;
	if (!env)
		return 0;
	len = strlen(env);
	if ((env[0] != '/' && env[0] != '@') || len < 2 ||
	    len >= sizeof(n->addr.sun_path)) {
		log_debug("NOTIFY_SOCKET='%s' is neither an absolute path nor "
			  "an abstract name: not notifying",
			  env);
		unsetenv("NOTIFY_SOCKET");
		return 0;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, env, len);
	if (env[0] == '@')
		n->addr.sun_path[0] = '\0'; /* the abstract namespace */
	/* A path is NUL-terminated, an abstract name is not. */
	n->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			     (env[0] == '/'));
	/* Children (the on_change= command) must not talk to systemd in our
	 * name. */
	unsetenv("NOTIFY_SOCKET");
	*ret = n;
	return 0;
}

void kvfs_notify_free(struct kvfs_notify *n)
{
	free(n);
}

int kvfs_notify_send(struct kvfs_notify *n, const char *msg)
{
	int fd, r = 0;

	if (!n)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		log_debug("cannot notify systemd: %s", strerror(-r));
		return r;
	}
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
		   (const struct sockaddr *)&n->addr, n->len) < 0) {
		r = -errno;
		log_debug("cannot notify systemd: %s", strerror(-r));
	}
	close(fd);
	return r;
}

int kvfs_notify_reloading(struct kvfs_notify *n)
{
	struct timespec ts;
	char msg[64];

	if (!n)
		return 0;
	/* Microseconds, not kvfs_now_ms(): systemd compares this with the
	 * time it asked for the reload, to the microsecond. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
			 (unsigned long long)ts.tv_nsec / 1000ULL);
	return kvfs_notify_send(n, msg);
}
