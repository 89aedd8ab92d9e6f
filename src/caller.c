/* tid → tgid from /proc/<tid>/status, remembered for a second per tid.
 * The kernel builds the whole status text to answer, about 10 µs: as much
 * as the rest of a warm open, which a program repeats from the same few
 * threads.  Within the second, a tid that the kernel gave to a new process
 * maps to the old process: the new one would share its pins, that is get
 * the version that process saw seconds ago, which is still fresh (the
 * cache checks) and which it could have got by opening a little earlier.
 * (Once the second is over, such a process maps to itself, and its next
 * open may get a newer version than the one it got under the old
 * process's pins: the mix pins exist to prevent, but only if the kernel
 * handed the same tid to two processes within a second, which takes the
 * whole pid range (kernel.pid_max, 4 million where systemd sets it) used
 * up in that second.)
 * A small direct-mapped table under one mutex held for a copy.
 * Who a caller is (kvfs_caller_identify) is read afresh on every call: an
 * open of a key-bearing file must see the process as it is now. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"
#include "util.h"

#define SLOTS 64 /* a power of two */
#define TRUST_MS 1000

static struct {
	pid_t tid;
	int64_t tgid;
	int64_t until_ms;
} slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The line of /proc/<tid>/status that starts with key ("Tgid:"), past
 * the key; NULL when it has none or is gone.  The caller frees it. */
static char *status_line(pid_t tid, const char *key)
{
	char path[64], *line = NULL;
	size_t cap = 0, klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (getline(&line, &cap, f) > 0)
		if (strncmp(line, key, klen) == 0) {
			memmove(line, line + klen, strlen(line + klen) + 1);
			fclose(f);
			return line;
		}
	free(line);
	fclose(f);
	return NULL;
}

static int64_t tgid_from_proc(pid_t tid)
{
	_cleanup_free_ char *v = status_line(tid, "Tgid:");

	return v ? strtoll(v, NULL, 10) : tid;
}

int64_t kvfs_caller_tgid(pid_t tid)
{
	unsigned i = (unsigned)tid & (SLOTS - 1);
	int64_t now = kvfs_now_ms(), tgid = -1;

	pthread_mutex_lock(&lock);
	if (slots[i].tid == tid && slots[i].until_ms > now)
		tgid = slots[i].tgid;
	pthread_mutex_unlock(&lock);
	if (tgid >= 0)
		return tgid;

	tgid = tgid_from_proc(tid);
	pthread_mutex_lock(&lock);
	slots[i].tid = tid;
	slots[i].tgid = tgid;
	slots[i].until_ms = now + TRUST_MS;
	pthread_mutex_unlock(&lock);
	return tgid;
}

/* The supplementary groups, from the "Groups:" line of
 * /proc/<tid>/status. */
static void groups_from_proc(pid_t tid, struct kvfs_caller_id *id)
{
	_cleanup_free_ char *line = status_line(tid, "Groups:");
	char *p = line, *end;

	while (p && id->ngroups < KVFS_CALLER_GROUPS_MAX) {
		unsigned long g = strtoul(p, &end, 10);

		if (end == p)
			break;
		id->groups[id->ngroups++] = (gid_t)g;
		p = end;
	}
}

static void exe_from_proc(int64_t pid, struct kvfs_caller_id *id)
{
	char path[64];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%lld/exe", (long long)pid);
	n = readlink(path, id->exe, sizeof(id->exe) - 1);
	if (n < 0) {
		id->exe[0] = '\0';
		return;
	}
	id->exe[n] = '\0';
	/* The file the process runs, even once renamed or replaced. */
	id->exe_trusted = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
			  st.st_uid == 0 && !(st.st_mode & 022);
}

void kvfs_caller_identify(pid_t tid, uid_t uid, gid_t gid,
			  struct kvfs_caller_id *ret)
{
	ret->pid = kvfs_caller_tgid(tid);
	ret->uid = uid;
	ret->gid = gid;
	ret->ngroups = 0;
	ret->exe_trusted = false;
	groups_from_proc(tid, ret);
	exe_from_proc(ret->pid, ret);
}
