/* The process behind a FUSE request.  FUSE names the calling thread; pins
 * (pins.h) are per process, as a program's threads share what they load;
 * the rules (rules.h) and the audit of key reads want who it is: its
 * groups and its executable, from /proc.  Thread-safe. */
#ifndef KVFS_CALLER_H
#define KVFS_CALLER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The most supplementary groups looked at; more are not seen. */
#define KVFS_CALLER_GROUPS_MAX 256

/* The thread group of thread tid, or tid itself when /proc does not say
 * (the thread is gone, or /proc is not there). */
int64_t kvfs_caller_tgid(pid_t tid);

struct kvfs_caller_id {
	int64_t pid; /* the thread group */
	uid_t uid;   /* as FUSE says: the filesystem ids */
	gid_t gid;
	gid_t groups[KVFS_CALLER_GROUPS_MAX]; /* supplementary */
	size_t ngroups;
	char exe[PATH_MAX]; /* /proc/PID/exe's target; "": not known */
	/* exe is a regular file owned by root and not writable by group or
	 * others. */
	bool exe_trusted;
};

/* Who thread tid, calling with uid and gid, is: its process, its groups
 * (/proc/PID/status) and its executable (/proc/PID/exe).  What /proc does
 * not say stays empty (no groups, exe ""). */
void kvfs_caller_identify(pid_t tid, uid_t uid, gid_t gid,
			  struct kvfs_caller_id *ret);

#endif
