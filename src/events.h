/* MOUNTPOINT/.kvfs/events: the change events of the mount, one JSON line
 * each, {"time": RFC 3339, "collection": ..., "name": ..., "change":
 * "added|removed|rotated|enabled|disabled|expired", "version": ...}, to
 * every reader open at the time.  Each open is a reader with a private
 * queue that starts empty; a change is queued to the readers once it is
 * visible in the tree (kvfs_events_changed(), called where the kernel was
 * told, kvfs_fs_invalidate()), and an exp that passes is queued as
 * "expired" by a thread of its own, from the listings alone (no vault
 * request).  A queue holds at most KVFS_EVENTS_QUEUE_MAX lines; the event
 * that finds it full is replaced by one {"change": "overflow"} line, and
 * the reader gets nothing more until it has read that line (it must list
 * again).  "version" is the object's version when it is known: the cache's
 * current files, fetched once for an object that changed while a reader
 * listens (the fetch an open after the change makes anyway); the last
 * known one for removed and expired; left out when not known.
 *
 * Knows nothing of FUSE: fs.c hands each reader's poll handle to it and
 * gets it back through ops when a line is queued.  Thread-safe: one mutex,
 * never held across a fetch, a poll notification, a wait or a log line.
 * The expiry thread blocks every signal. */
#ifndef KVFS_EVENTS_H
#define KVFS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cache.h"

struct kvfs_events;
struct kvfs_events_reader;

/* What a reader's poll handle becomes: notify(ph) tells the kernel the
 * reader is readable, drop(ph) frees one never notified.  Each handle is
 * given to exactly one of them, once. */
struct kvfs_events_ops {
	void (*notify)(void *ph);
	void (*drop)(void *ph);
};

/* The objects the listings of cache show now are the starting point: no
 * event for them.  Borrows cache. */
int kvfs_events_new(struct kvfs_cache *cache, const struct kvfs_events_ops *ops,
		    struct kvfs_events **ret);
/* Start the expiry thread (in the process that serves the mount). */
int kvfs_events_start(struct kvfs_events *ev);
/* For good: every blocked read returns 0 (end of file), and so does every
 * later read of an empty queue; the expiry thread is joined.  NULL:
 * nothing. */
void kvfs_events_stop(struct kvfs_events *ev);
/* Stops, then frees the readers left open.  NULL: nothing. */
void kvfs_events_free(struct kvfs_events *ev);

/* A new reader: its queue starts now. */
int kvfs_events_open(struct kvfs_events *ev, struct kvfs_events_reader **ret);
void kvfs_events_close(struct kvfs_events *ev, struct kvfs_events_reader *r);

/* Whole lines of r's queue into buf, as many as fit; a line longer than
 * size comes in pieces of size bytes, the rest at the next reads.  With
 * nothing queued: -EAGAIN when nonblock (or when KVFS_EVENTS_WAITERS_MAX
 * reads wait already), else waits until a line is queued, the events stop
 * (0) or cancelled(data) says so (-EINTR; asked at least every
 * KVFS_EVENTS_CHECK_MS, and at once when a signal interrupts the
 * wait). */
ssize_t kvfs_events_read(struct kvfs_events *ev, struct kvfs_events_reader *r,
			 char *buf, size_t size, bool nonblock,
			 bool (*cancelled)(void *data), void *data);
/* Whether r has a line to read (or the events stopped); if not, ph (not
 * NULL) is kept to be notified when one is queued, in place of the one
 * kept before (dropped).  ph NULL: only ask. */
bool kvfs_events_poll(struct kvfs_events *ev, struct kvfs_events_reader *r,
		      void *ph);

/* Change c of the cache is visible in the tree: queue its events.  May
 * fetch the files of an object that changed (while a reader listens);
 * call it from no FUSE request. */
void kvfs_events_changed(struct kvfs_events *ev, const struct kvfs_change *c);
/* A revalidation ended (its changes were told): the versions fetched for
 * the lines count again from 0.  The revalidation thread's, as
 * kvfs_events_changed(). */
void kvfs_events_revalidated(struct kvfs_events *ev);

/* ---- the pure parts, for the unit tests ---- */

/* A reader's queue: at most KVFS_EVENTS_QUEUE_MAX lines, then the
 * overflow line. */
struct kvfs_events_queue {
	char **lines; /* a ring of KVFS_EVENTS_QUEUE_MAX + 1 */
	size_t head, n;
	size_t partial;	 /* bytes of the first line already read */
	bool overflowed; /* the overflow line is queued and not yet read */
};

/* Queue a copy of line (ending with a newline).  When the queue is full
 * the line is dropped and a copy of overflow_line queued instead, once:
 * then 1 (the reader overflowed now).  0 when queued or dropped after an
 * overflow, -ENOMEM (the line is dropped). */
int kvfs_events_queue_push(struct kvfs_events_queue *q, const char *line,
			   const char *overflow_line);
/* Take whole lines into buf (size > 0), as described for
 * kvfs_events_read(); returns the bytes taken, 0 when empty. */
size_t kvfs_events_queue_take(struct kvfs_events_queue *q, char *buf,
			      size_t size);
void kvfs_events_queue_clear(struct kvfs_events_queue *q);

/* The line of an event: change is a kvfs_metrics_event_name(); coll and
 * name NULL for the overflow line, version NULL when not known.
 * Malloc'ed, ends with a newline; NULL without memory. */
char *kvfs_events_line(int64_t time, const char *coll, const char *name,
		       const char *change, const char *version);

#endif
