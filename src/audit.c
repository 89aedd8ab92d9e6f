/* The audit of key reads (audit.h): a ring of KVFS_AUDIT_RECORDS JSON
 * lines and a direct-mapped table of the (process, object, result)
 * windows of the log's rate limit, under one lock.  A record's JSON and its
 * log line are composed off the lock; under it, the line is stored and the
 * window says whether to log; the log is written after.  Two keys that
 * share a slot evict each other: that logs more, never less. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define SLOTS 256 /* a power of two */

struct window {
	uint64_t key; /* 0: empty */
	int64_t begin_ms;
	unsigned long suppressed;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *ring[KVFS_AUDIT_RECORDS];
static size_t ring_next; /* where the next record goes */
static struct window windows[SLOTS];

static char *record_json(const struct kvfs_audit_record *rec)
{
	char exe[PATH_MAX];
	json_t *o;
	char *s;

	snprintf(exe, sizeof(exe), "%s", rec->exe ? rec->exe : "");
	kvfs_metrics_ascii_line(exe);
	o = json_pack("{s:I, s:s, s:s, s:s?, s:I, s:I, s:I, s:s?}", "time",
		      (json_int_t)rec->time, "result",
		      rec->allowed ? "allowed" : "denied", "path", rec->path,
		      "version", rec->version, "pid", (json_int_t)rec->pid,
		      "uid", (json_int_t)rec->uid, "gid", (json_int_t)rec->gid,
		      "exe", exe[0] ? exe : NULL);
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static uint64_t window_key(const struct kvfs_audit_record *rec)
{
	uint64_t k = kvfs_fnv1a(rec->path, false);

	k ^= (uint64_t)rec->pid * 0x9e3779b97f4a7c15ULL;
	k ^= rec->allowed;
	return k ? k : 1;
}

/* Whether to log rec now, and how many of its key went unlogged before. */
static bool window_pass_locked(uint64_t key, int64_t now_ms,
			       unsigned long *ret_suppressed)
{
	struct window *w = &windows[key & (SLOTS - 1)];

	if (w->key == key && now_ms - w->begin_ms < KVFS_AUDIT_WINDOW_MS) {
		w->suppressed++;
		return false;
	}
	*ret_suppressed = w->key == key ? w->suppressed : 0;
	w->key = key;
	w->begin_ms = now_ms;
	w->suppressed = 0;
	return true;
}

void kvfs_audit_key_open(const struct kvfs_audit_record *rec)
{
	char *json = record_json(rec), *old;
	uint64_t key = window_key(rec);
	unsigned long suppressed = 0;
	char more[64] = "";
	bool pass;

	kvfs_metrics_key_open(rec->allowed);
	pthread_mutex_lock(&lock);
	old = ring[ring_next];
	ring[ring_next] = json;
	ring_next = (ring_next + 1) % KVFS_AUDIT_RECORDS;
	pass = window_pass_locked(key, kvfs_now_ms(), &suppressed);
	pthread_mutex_unlock(&lock);
	free(old);
	if (!pass)
		return;
	if (suppressed)
		snprintf(more, sizeof(more), " (%lu more not logged)",
			 suppressed);
	log_notice("key read %s: %s version=%s pid=%lld uid=%u gid=%u "
		   "exe=%s%s",
		   rec->allowed ? "allowed" : "denied", rec->path,
		   rec->version ? rec->version : "-", (long long)rec->pid,
		   (unsigned)rec->uid, (unsigned)rec->gid,
		   rec->exe && rec->exe[0] ? rec->exe : "-", more);
}

int kvfs_audit_render(char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < KVFS_AUDIT_RECORDS; i++) {
		const char *s = ring[(ring_next + i) % KVFS_AUDIT_RECORDS];

		if (s)
			fprintf(f, "%s\n", s);
	}
	pthread_mutex_unlock(&lock);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

void kvfs_audit_reset(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < KVFS_AUDIT_RECORDS; i++) {
		free(ring[i]);
		ring[i] = NULL;
	}
	ring_next = 0;
	memset(windows, 0, sizeof(windows));
	pthread_mutex_unlock(&lock);
}
