/* The on_change= runner: a thread of its own that runs the administrator's
 * command once changes a revalidation made are visible in the mount (the
 * kernel was told, kvfs_fs_invalidate()).  Changes arriving within
 * on_change_delay= of the first one pending share one run; never two runs
 * at once (changes during a run make one more after it).  The command gets
 * KVFS_MOUNTPOINT and KVFS_CHANGES (the changed paths relative to the
 * mount, sorted, unique, space-separated; the collection directories
 * instead when there are more than KVFS_ONCHANGE_PATHS_MAX of them or the
 * string would pass KVFS_ONCHANGE_CHANGES_MAX bytes), PATH and nothing
 * else; stdin /dev/null, stdout and stderr a pipe read to its end (the
 * first KVFS_ONCHANGE_EXCERPT_MAX bytes kept for the log), no other file
 * descriptor, its own process group, killed (SIGKILL to the group) after
 * on_change_timeout=.  Each run logs its result once, after every lock
 * is released, and counts it (kvfs_metrics_on_change()).
 * kvfs_onchange_add() is thread-safe (one mutex, never held across the
 * run, a log line or a wait); the rest is called from main()'s thread. */
#ifndef KVFS_ONCHANGE_H
#define KVFS_ONCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collection.h"
#include "config.h"
#include "error.h"

#define KVFS_ONCHANGE_PATHS_MAX 1000
#define KVFS_ONCHANGE_CHANGES_MAX (64u << 10)
#define KVFS_ONCHANGE_EXCERPT_MAX 1024u
/* PATH of the command's environment. */
#define KVFS_ONCHANGE_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

struct kvfs_onchange;

/* *ret NULL when c names no on_change= command.  Otherwise the command is
 * checked like a credential file (kvfs_credfile_check(), executable):
 * -errno with err->message naming it when refused. */
int kvfs_onchange_new(const struct kvfs_config *c, struct kvfs_onchange **ret,
		      struct kvfs_error *err);
/* Start the thread (in the process that serves the mount).  NULL: 0. */
int kvfs_onchange_start(struct kvfs_onchange *o);
/* Stop and join the thread: a run in progress is killed, pending changes
 * are dropped.  Safe when never started; NULL: nothing. */
void kvfs_onchange_stop(struct kvfs_onchange *o);
void kvfs_onchange_free(struct kvfs_onchange *o);

/* Object name of collection coll changed (name NULL: the collection's
 * directory, names came or went), and the kernel was told.  NULL o:
 * nothing.  Never blocks on a run. */
void kvfs_onchange_add(struct kvfs_onchange *o, enum kvfs_collection coll,
		       const char *name);

/* ---- the pure parts, for the unit tests ---- */

/* The changed paths of one run. */
struct kvfs_onchange_set {
	char **paths; /* "coll/name", in the order they came, unique */
	size_t n;
	unsigned colls; /* 1u << coll of every change */
	bool overflow;	/* a path was not kept: pass the collections */
};

/* Add "coll/name" (name NULL: only the collection).  Never fails: out of
 * memory or past KVFS_ONCHANGE_PATHS_MAX, the set overflows. */
void kvfs_onchange_set_add(struct kvfs_onchange_set *s,
			   enum kvfs_collection coll, const char *name);
void kvfs_onchange_set_clear(struct kvfs_onchange_set *s);
/* KVFS_CHANGES for s: its paths sorted and space-separated, a collection's
 * directory only when no object of it is there too (names came, and no
 * object changed); or its collections' directories when it overflowed or
 * its paths would pass KVFS_ONCHANGE_CHANGES_MAX bytes.  0 or -ENOMEM. */
int kvfs_onchange_set_string(const struct kvfs_onchange_set *s, char **ret);

/* The debounce: when the pending changes are due. */
struct kvfs_onchange_timer {
	int64_t due_ms; /* monotonic; 0: nothing pending */
};

/* A change came at now_ms: due delay_ms after the first pending one. */
void kvfs_onchange_timer_change(struct kvfs_onchange_timer *t, int64_t now_ms,
				int64_t delay_ms);
/* Whether a run is due at now_ms (then nothing is pending any more);
 * otherwise *ret_wait_ms is how long until it is (-1: nothing pending). */
bool kvfs_onchange_timer_take(struct kvfs_onchange_timer *t, int64_t now_ms,
			      int64_t *ret_wait_ms);

/* The first KVFS_ONCHANGE_EXCERPT_MAX bytes of the command's output, and
 * how many came after them. */
struct kvfs_onchange_excerpt {
	char buf[KVFS_ONCHANGE_EXCERPT_MAX];
	size_t len;
	uint64_t dropped;
};

void kvfs_onchange_excerpt_add(struct kvfs_onchange_excerpt *e,
			       const char *data, size_t n);
/* Escape e->buf[*pos...] into out (NUL-terminated, at most size - 1
 * characters, whole escapes only): '\\' as "\\\\", newline as "\\n", tab
 * as "\\t", other control bytes and DEL as "\\xHH".  Advances *pos past
 * what went in. */
void kvfs_onchange_excerpt_escape(const struct kvfs_onchange_excerpt *e,
				  size_t *pos, char *out, size_t size);

#endif
