/* The notify protocol against real datagram sockets bound in a temporary
 * directory and in the abstract namespace: what arrives, one datagram per
 * message, $NOTIFY_SOCKET taken out of the environment, and no socket
 * (or a name that is neither a path nor '@...') a no-op. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "tap.h"

/* A datagram socket bound to name ('@' first: abstract); -1 on failure. */
static int bind_dgram(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || len >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, name, len);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	if (bind(fd, (struct sockaddr *)&a,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			     (name[0] == '/'))) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next datagram, without waiting: "" when none is queued. */
static void recv_one(int fd, char *buf, size_t size)
{
	ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
}

static void check_socket(const char *name, const char *what)
{
	struct kvfs_notify *n = NULL;
	char buf[256];
	int fd = bind_dgram(name);

	ok(fd >= 0, "%s: bound %s", what, name);
	setenv("NOTIFY_SOCKET", name, 1);
	is_int(kvfs_notify_new(&n), 0, "%s: made", what);
	ok(n != NULL, "%s: a socket to notify", what);
	ok(getenv("NOTIFY_SOCKET") == NULL,
	   "%s: NOTIFY_SOCKET taken out of the environment", what);

	is_int(kvfs_notify_send(n, "READY=1\nSTATUS=3 certificates"), 0,
	       "%s: sent", what);
	is_int(kvfs_notify_send(n, "STOPPING=1"), 0, "%s: sent again", what);
	recv_one(fd, buf, sizeof(buf));
	is_str(buf, "READY=1\nSTATUS=3 certificates",
	       "%s: one datagram, both lines", what);
	recv_one(fd, buf, sizeof(buf));
	is_str(buf, "STOPPING=1", "%s: the second datagram", what);
	recv_one(fd, buf, sizeof(buf));
	is_str(buf, "", "%s: nothing more", what);
	kvfs_notify_free(n);
	close(fd);
}

static void test_reloading(const char *name)
{
	struct kvfs_notify *n = NULL;
	unsigned long long usec = 0, before, after;
	struct timespec ts;
	char buf[256];
	int fd = bind_dgram(name);

	setenv("NOTIFY_SOCKET", name, 1);
	kvfs_notify_new(&n);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	before = (unsigned long long)ts.tv_sec * 1000000ULL +
		 (unsigned long long)ts.tv_nsec / 1000ULL;
	is_int(kvfs_notify_reloading(n), 0, "RELOADING sent");
	clock_gettime(CLOCK_MONOTONIC, &ts);
	after = (unsigned long long)ts.tv_sec * 1000000ULL +
		(unsigned long long)ts.tv_nsec / 1000ULL;
	recv_one(fd, buf, sizeof(buf));
	ok(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0,
	   "RELOADING=1 then MONOTONIC_USEC=");
	ok(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec) == 1,
	   "MONOTONIC_USEC is a number");
	ok(usec >= before && usec <= after,
	   "MONOTONIC_USEC is CLOCK_MONOTONIC in us (%llu in [%llu, %llu])",
	   usec, before, after);
	kvfs_notify_free(n);
	close(fd);
}

static void test_none(void)
{
	struct kvfs_notify *n = (struct kvfs_notify *)1;

	unsetenv("NOTIFY_SOCKET");
	is_int(kvfs_notify_new(&n), 0, "unset: made");
	ok(n == NULL, "unset: nothing to notify");
	is_int(kvfs_notify_send(NULL, "READY=1"), 0, "NULL: send is a no-op");
	is_int(kvfs_notify_reloading(NULL), 0, "NULL: reloading is a no-op");
	kvfs_notify_free(NULL);

	n = (struct kvfs_notify *)1;
	setenv("NOTIFY_SOCKET", "relative/socket", 1);
	is_int(kvfs_notify_new(&n), 0, "relative path: made");
	ok(n == NULL, "relative path: ignored");
	ok(getenv("NOTIFY_SOCKET") == NULL,
	   "relative path: taken out of the environment too");

	n = (struct kvfs_notify *)1;
	setenv("NOTIFY_SOCKET", "@", 1);
	kvfs_notify_new(&n);
	ok(n == NULL, "'@' alone: ignored");
}

static void test_gone(const char *name)
{
	struct kvfs_notify *n = NULL;

	/* systemd gone (the socket's path unbound): an error, no wait, no
	 * SIGPIPE. */
	setenv("NOTIFY_SOCKET", name, 1);
	kvfs_notify_new(&n);
	ok(n != NULL, "absent socket: an address all the same");
	ok(kvfs_notify_send(n, "READY=1") < 0, "absent socket: an error");
	kvfs_notify_free(n);
}

int main(void)
{
	char dir[] = "/tmp/kvfs-notify-XXXXXX", path[128], abs[64];

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/notify", dir);
	snprintf(abs, sizeof(abs), "@kvfs-test-notify-%ld", (long)getpid());

	check_socket(path, "path");
	unlink(path);
	check_socket(abs, "abstract");
	test_reloading(path);
	unlink(path);
	test_none();
	test_gone(path);
	rmdir(dir);
	return done_testing();
}
