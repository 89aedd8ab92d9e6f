/* The readers of .kvfs/events and what they are told: under one mutex,
 * the list of readers (each a queue, an eventfd readable while its queue
 * is not empty, and the poll handle to notify), and what the readers were
 * last told of each object (its version, enabled and exp, and whether its
 * expiry was told), which each visible change is compared with to say
 * what it was.  A waiting read polls its reader's eventfd and the stop
 * eventfd, so that a signal (libfuse's interrupt) ends its wait at once.
 * The expiry thread sleeps on a monotonic condition variable until the
 * nearest exp not yet told (at most a minute: the wall clock may jump). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "defaults.h"
#include "events.h"
#include "files.h"
#include "listing.h"
#include "metrics.h"
#include "util.h"

/* The expiry thread looks again at least this often (ms). */
#define EXPIRY_RECHECK_MS 60000

/* ---- the queue ---- */

#define RING (KVFS_EVENTS_QUEUE_MAX + 1)

int kvfs_events_queue_push(struct kvfs_events_queue *q, const char *line,
			   const char *overflow_line)
{
	bool full = q->n >= KVFS_EVENTS_QUEUE_MAX;
	char *copy;

	if (q->overflowed)
		return 0;
	if (!q->lines) {
		q->lines = calloc(RING, sizeof(*q->lines));
		if (!q->lines)
			return -ENOMEM;
	}
	copy = strdup(full ? overflow_line : line);
	if (!copy)
		return -ENOMEM;
	q->lines[(q->head + q->n) % RING] = copy;
	q->n++;
	q->overflowed = full;
	return full ? 1 : 0;
}

size_t kvfs_events_queue_take(struct kvfs_events_queue *q, char *buf,
			      size_t size)
{
	size_t got = 0;

	while (q->n > 0 && got < size) {
		const char *line = q->lines[q->head] + q->partial;
		size_t len = strlen(line), room = size - got;

		if (len > room) {
			/* A line only in pieces, and only when it is the
			 * first: the others wait for the next read. */
			if (got == 0) {
				memcpy(buf, line, room);
				q->partial += room;
				got = room;
			}
			break;
		}
		memcpy(buf + got, line, len);
		got += len;
		free(q->lines[q->head]);
		q->lines[q->head] = NULL;
		q->head = (q->head + 1) % RING;
		q->partial = 0;
		if (--q->n == 0)
			q->overflowed = false;
	}
	return got;
}

void kvfs_events_queue_clear(struct kvfs_events_queue *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->lines[(q->head + i) % RING]);
	free(q->lines);
	*q = (struct kvfs_events_queue){0};
}

char *kvfs_events_line(int64_t time, const char *coll, const char *name,
		       const char *change, const char *version)
{
	time_t t = (time_t)time;
	char when[32] = "";
	_cleanup_free_ char *text = NULL;
	char *line;
	struct tm tm;
	json_t *o;
	bool ok;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_object();
	ok = o && json_object_set_new(o, "time", json_string(when)) == 0;
	if (ok && coll)
		ok = json_object_set_new(o, "collection", json_string(coll)) ==
			     0 &&
		     json_object_set_new(o, "name", json_string(name)) == 0;
	ok = ok && json_object_set_new(o, "change", json_string(change)) == 0;
	if (ok && version)
		ok = json_object_set_new(o, "version", json_string(version)) ==
		     0;
	if (ok)
		text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!text || asprintf(&line, "%s\n", text) < 0)
		return NULL;
	return line;
}

/* ---- what the readers were told ---- */

struct known {
	char *name; /* the vault's spelling */
	char *version;
	bool enabled;
	int64_t exp;
	bool expiry_told; /* exp passed and was told, or before we knew */
};

struct knowns {
	struct known *v;
	size_t n;
};

struct kvfs_events_reader {
	struct kvfs_events_queue q;
	int fd;	  /* eventfd: readable while q is not empty */
	void *ph; /* the poll handle to notify; NULL: none */
	struct kvfs_events_reader *prev, *next;
};

struct kvfs_events {
	struct kvfs_cache *cache;
	struct kvfs_events_ops ops;
	int stop_fd; /* eventfd: written at stop */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* the expiry thread's */
	struct knowns known[KVFS_COLLECTION_COUNT_];
	struct kvfs_events_reader *readers;
	unsigned waiters;
	bool stop;
	/* Versions fetched for the lines since the last revalidation
	 * (KVFS_EVENTS_VERSION_FETCHES_MAX); the revalidation thread's. */
	unsigned fetches;

	pthread_t thread;
	bool started;
};

/* A collection's objects are sorted by name without case, as its
 * listing's entries are (listing.c): found by bisection, merged with a
 * listing in one walk. */

/* Where name is in k, or where it would go. */
static size_t known_index(const struct knowns *k, const char *name,
			  bool *ret_found)
{
	size_t lo = 0, hi = k->n;

	*ret_found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(name, k->v[mid].name);

		if (c == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static struct known *known_find(struct knowns *k, const char *name)
{
	bool found;
	size_t i = known_index(k, name, &found);

	return found ? &k->v[i] : NULL;
}

static void known_free(struct known *o)
{
	free(o->name);
	free(o->version);
}

static void known_drop(struct knowns *k, struct known *o)
{
	size_t i = (size_t)(o - k->v);

	known_free(o);
	memmove(&k->v[i], &k->v[i + 1], (k->n - i - 1) * sizeof(*k->v));
	k->n--;
}

/* o takes item's state; its expiry counts as told when it passed. */
static void known_set(struct known *o, const struct kvfs_object_attrs *a,
		      int64_t now)
{
	if (o->exp != a->exp)
		o->expiry_told = a->exp && a->exp <= now;
	o->enabled = a->enabled;
	o->exp = a->exp;
}

/* The object of item, first known now: false without memory. */
static bool known_init(struct known *o, const struct kvfs_object_item *item,
		       int64_t now)
{
	*o = (struct known){.name = strdup(item->name)};
	if (!o->name)
		return false;
	known_set(o, &item->attrs, now);
	o->expiry_told = item->attrs.exp && item->attrs.exp <= now;
	return true;
}

static struct known *known_add(struct knowns *k,
			       const struct kvfs_object_item *item, int64_t now)
{
	bool found;
	size_t i = known_index(k, item->name, &found);
	struct known *v = reallocarray(k->v, k->n + 1, sizeof(*v));

	if (!v)
		return NULL;
	k->v = v;
	if (!known_init(&v[k->n], item, now))
		return NULL;
	/* init'ed past the end, then moved into place */
	{
		struct known o = v[k->n];

		memmove(&v[i + 1], &v[i], (k->n - i) * sizeof(*v));
		v[i] = o;
	}
	k->n++;
	return &v[i];
}

static void known_set_version(struct known *o, const char *version)
{
	char *v;

	if (!version || (o->version && strcmp(o->version, version) == 0))
		return;
	v = strdup(version);
	if (!v)
		return;
	free(o->version);
	o->version = v;
}

static void knowns_clear(struct knowns *k)
{
	for (size_t i = 0; i < k->n; i++)
		known_free(&k->v[i]);
	free(k->v);
	*k = (struct knowns){0};
}

/* ---- queueing ---- */

/* An event to queue, decided under the lock and queued after its version
 * is looked for. */
struct pending {
	enum kvfs_metrics_event what;
	enum kvfs_collection coll;
	char *name;
	char *version; /* known before; NULL: not */
	bool fetch;    /* look for the current version */
};

struct pendings {
	struct pending *v;
	size_t n;
};

static void pending_add(struct pendings *p, enum kvfs_metrics_event what,
			enum kvfs_collection coll, const struct known *o,
			bool fetch)
{
	struct pending *v = reallocarray(p->v, p->n + 1, sizeof(*v));

	if (!v)
		return;
	p->v = v;
	v[p->n] = (struct pending){
		.what = what,
		.coll = coll,
		.name = strdup(o->name),
		.version = o->version ? strdup(o->version) : NULL,
		.fetch = fetch,
	};
	if (v[p->n].name)
		p->n++;
	else
		free(v[p->n].version);
}

static void pendings_clear(struct pendings *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].version);
	}
	free(p->v);
	*p = (struct pendings){0};
}

/* The poll handles to notify once the lock is released. */
struct wakes {
	void **ph;
	size_t n, size;
};

static void reader_ready_locked(struct kvfs_events_reader *r, struct wakes *w)
{
	uint64_t one = 1;
	void **v;

	(void)!write(r->fd, &one, sizeof(one));
	if (!r->ph)
		return;
	if (w->n == w->size) {
		size_t size = w->size ? w->size * 2 : 8;

		v = reallocarray(w->ph, size, sizeof(*v));
		if (!v)
			return; /* notified at its next poll */
		w->ph = v;
		w->size = size;
	}
	w->ph[w->n++] = TAKE_PTR(r->ph);
}

static void wakes_flush(const struct kvfs_events *ev, struct wakes *w)
{
	for (size_t i = 0; i < w->n; i++)
		ev->ops.notify(w->ph[i]);
	free(w->ph);
	*w = (struct wakes){0};
}

/* Queue line to every reader; the overflow line to those it overflows. */
static void queue_locked(struct kvfs_events *ev, enum kvfs_metrics_event what,
			 const char *line, const char *overflow_line,
			 struct wakes *w)
{
	size_t queued = 0, overflowed = 0;

	for (struct kvfs_events_reader *r = ev->readers; r; r = r->next) {
		bool was_empty = r->q.n == 0;
		int o = kvfs_events_queue_push(&r->q, line, overflow_line);

		if (o == 1)
			overflowed++;
		else if (o == 0 && !r->q.overflowed)
			queued++;
		if (was_empty && r->q.n > 0)
			reader_ready_locked(r, w);
	}
	kvfs_metrics_event(what, queued);
	kvfs_metrics_event(KVFS_EVENT_OVERFLOW, overflowed);
}

/* Whether a reader could take one more line now. */
static bool listened_locked(const struct kvfs_events *ev)
{
	for (const struct kvfs_events_reader *r = ev->readers; r; r = r->next)
		if (!r->q.overflowed)
			return true;
	return false;
}

/* The current version of p's object: fetched when it may be, else the
 * cache's if it has it. */
static char *current_version(struct kvfs_events *ev, const struct pending *p,
			     bool fetch)
{
	struct kvfs_files *f = NULL;
	const char *v;
	char *copy = NULL;
	int r;

	r = fetch ? kvfs_cache_files(ev->cache, p->coll, p->name, &f)
		  : kvfs_cache_files_peek(ev->cache, p->coll, p->name, &f);
	if (r < 0)
		return NULL;
	v = kvfs_files_header(f).version;
	if (v)
		copy = strdup(v);
	kvfs_files_unref(f);
	return copy;
}

/* Queue the events of ps, their versions looked for first (without the
 * lock). */
static void queue_pendings(struct kvfs_events *ev, struct pendings *ps)
{
	int64_t now = kvfs_wall_now();
	_cleanup_free_ char *overflow_line = kvfs_events_line(
		now, NULL, NULL, kvfs_metrics_event_name(KVFS_EVENT_OVERFLOW),
		NULL);
	struct wakes w = {0};

	if (!overflow_line)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		struct pending *p = &ps->v[i];
		_cleanup_free_ char *line = NULL;
		bool listened;

		pthread_mutex_lock(&ev->lock);
		listened = listened_locked(ev) && !ev->stop;
		pthread_mutex_unlock(&ev->lock);
		if (p->fetch) {
			bool get =
				listened &&
				ev->fetches < KVFS_EVENTS_VERSION_FETCHES_MAX;
			char *v = current_version(ev, p, get);

			ev->fetches += get;
			if (v) {
				free(p->version);
				p->version = v;
			}
		}
		line = kvfs_events_line(
			now, kvfs_collection_info(p->coll)->name, p->name,
			kvfs_metrics_event_name(p->what), p->version);
		pthread_mutex_lock(&ev->lock);
		if (p->version) {
			struct known *o =
				known_find(&ev->known[p->coll], p->name);

			if (o)
				known_set_version(o, p->version);
		}
		if (line && !ev->stop)
			queue_locked(ev, p->what, line, overflow_line, &w);
		pthread_mutex_unlock(&ev->lock);
		wakes_flush(ev, &w);
	}
}

/* What object o of coll is now that the listing says it is item (NULL:
 * gone); o NULL: it was not known. */
static void object_changed_locked(struct kvfs_events *ev,
				  enum kvfs_collection coll, struct known *o,
				  const struct kvfs_object_item *item,
				  int64_t now, struct pendings *ps)
{
	struct knowns *k = &ev->known[coll];

	if (!item) {
		if (o) {
			pending_add(ps, KVFS_EVENT_REMOVED, coll, o, false);
			known_drop(k, o);
		}
		return;
	}
	if (!o) {
		o = known_add(k, item, now);
		if (o)
			pending_add(ps, KVFS_EVENT_ADDED, coll, o,
				    item->attrs.enabled);
		return;
	}
	/* A disabled object's version is not fetched: the vault refuses
	 * it. */
	if (o->enabled != item->attrs.enabled)
		pending_add(ps,
			    item->attrs.enabled ? KVFS_EVENT_ENABLED
						: KVFS_EVENT_DISABLED,
			    coll, o, item->attrs.enabled);
	else
		pending_add(ps, KVFS_EVENT_ROTATED, coll, o, true);
	known_set(o, &item->attrs, now);
}

/* The names that came into listing l of coll and those that went from it
 * (a GONE change tells its own first, so those are the ones no change told
 * of), in one walk of both; ps NULL: none is told (the first listings). */
static void knowns_merge_locked(struct knowns *k, enum kvfs_collection coll,
				const struct kvfs_listing *l, int64_t now,
				struct pendings *ps)
{
	struct known *v = calloc(k->n + l->n + 1, sizeof(*v));
	size_t i = 0, j = 0, n = 0;

	if (!v)
		return;
	while (i < k->n || j < l->n) {
		const struct kvfs_object_item *it =
			j < l->n ? &l->entries[j].item : NULL;
		int c = i >= k->n ? 1
			: !it	  ? -1
				  : strcasecmp(k->v[i].name, it->name);

		if (c < 0) {
			if (ps)
				pending_add(ps, KVFS_EVENT_REMOVED, coll,
					    &k->v[i], false);
			known_free(&k->v[i++]);
			continue;
		}
		if (c == 0) {
			v[n++] = k->v[i++];
		} else if (known_init(&v[n], it, now)) {
			if (ps)
				pending_add(ps, KVFS_EVENT_ADDED, coll, &v[n],
					    it->attrs.enabled);
			n++;
		}
		j++;
	}
	free(k->v);
	k->v = v;
	k->n = n;
}

void kvfs_events_revalidated(struct kvfs_events *ev)
{
	if (ev)
		ev->fetches = 0;
}

void kvfs_events_changed(struct kvfs_events *ev, const struct kvfs_change *c)
{
	struct kvfs_listing *l;
	struct pendings ps = {0};
	int64_t now = kvfs_wall_now();
	struct knowns *k;

	if (!ev || (unsigned)c->coll >= KVFS_COLLECTION_COUNT_ ||
	    c->kind == KVFS_CHANGE_VERSIONS)
		return;
	l = kvfs_cache_listing(ev->cache, c->coll);
	if (!l)
		return;
	k = &ev->known[c->coll];
	pthread_mutex_lock(&ev->lock);
	if (c->kind == KVFS_CHANGE_LISTING) {
		knowns_merge_locked(k, c->coll, l, now, &ps);
	} else if (c->name) {
		const struct kvfs_entry *e =
			c->kind == KVFS_CHANGE_GONE
				? NULL
				: kvfs_listing_find(l, c->name);

		object_changed_locked(ev, c->coll, known_find(k, c->name),
				      e ? &e->item : NULL, now, &ps);
	}
	pthread_cond_signal(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
	kvfs_listing_unref(l);
	queue_pendings(ev, &ps);
	pendings_clear(&ps);
}

/* ---- expiry ---- */

/* The events of the exps that passed at now; how long until the next
 * (ms, at most EXPIRY_RECHECK_MS). */
static int64_t expiries_locked(struct kvfs_events *ev, int64_t now,
			       struct pendings *ps)
{
	int64_t next = 0;

	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++) {
		struct knowns *k = &ev->known[c];

		for (size_t i = 0; i < k->n; i++) {
			struct known *o = &k->v[i];

			if (!o->exp || o->expiry_told)
				continue;
			if (o->exp <= now) {
				o->expiry_told = true;
				pending_add(ps, KVFS_EVENT_EXPIRED,
					    (enum kvfs_collection)c, o, false);
			} else if (!next || o->exp < next) {
				next = o->exp;
			}
		}
	}
	/* Seconds first: an exp from the vault may be any int64_t. */
	if (!next || next - now > EXPIRY_RECHECK_MS / 1000)
		return EXPIRY_RECHECK_MS;
	return (next - now) * 1000;
}

static void *expiry_main(void *data)
{
	struct kvfs_events *ev = data;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&ev->lock);
	while (!ev->stop) {
		struct pendings ps = {0};
		int64_t wait = expiries_locked(ev, kvfs_wall_now(), &ps);

		struct timespec ts;

		if (ps.n) {
			pthread_mutex_unlock(&ev->lock);
			queue_pendings(ev, &ps);
			pendings_clear(&ps);
			pthread_mutex_lock(&ev->lock);
			continue;
		}
		ts = kvfs_ms_to_timespec(kvfs_now_ms() + wait);
		pthread_cond_timedwait(&ev->cond, &ev->lock, &ts);
	}
	pthread_mutex_unlock(&ev->lock);
	return NULL;
}

/* ---- life ---- */

int kvfs_events_new(struct kvfs_cache *cache, const struct kvfs_events_ops *ops,
		    struct kvfs_events **ret)
{
	struct kvfs_listing *ls[KVFS_COLLECTION_COUNT_];
	int64_t now = kvfs_wall_now();
	struct kvfs_events *ev = calloc(1, sizeof(*ev));
	int r = 0;

	if (!ev)
		return -ENOMEM;
	ev->cache = cache;
	ev->ops = *ops;
	ev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ev->stop_fd < 0) {
		free(ev);
		return -errno;
	}
	r = kvfs_cond_init_monotonic(&ev->cond);
	if (r < 0) {
		close(ev->stop_fd);
		free(ev);
		return r;
	}
	pthread_mutex_init(&ev->lock, NULL);
	kvfs_cache_listings(cache, ls);
	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++) {
		if (ls[c]) {
			knowns_merge_locked(&ev->known[c],
					    (enum kvfs_collection)c, ls[c], now,
					    NULL);
			if (ev->known[c].n < ls[c]->n)
				r = -ENOMEM;
		}
		kvfs_listing_unref(ls[c]);
	}
	if (r < 0) {
		kvfs_events_free(ev);
		return r;
	}
	*ret = ev;
	return 0;
}

int kvfs_events_start(struct kvfs_events *ev)
{
	int e;

	if (ev->started)
		return 0;
	e = pthread_create(&ev->thread, NULL, expiry_main, ev);
	if (e != 0)
		return -e;
	ev->started = true;
	return 0;
}

void kvfs_events_stop(struct kvfs_events *ev)
{
	uint64_t one = 1;
	struct wakes w = {0};

	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	ev->stop = true;
	for (struct kvfs_events_reader *r = ev->readers; r; r = r->next)
		reader_ready_locked(r, &w);
	pthread_cond_signal(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
	(void)!write(ev->stop_fd, &one, sizeof(one));
	wakes_flush(ev, &w);
	if (ev->started) {
		pthread_join(ev->thread, NULL);
		ev->started = false;
	}
}

static void reader_free(const struct kvfs_events *ev,
			struct kvfs_events_reader *r)
{
	if (r->ph)
		ev->ops.drop(r->ph);
	kvfs_events_queue_clear(&r->q);
	close(r->fd);
	free(r);
}

void kvfs_events_free(struct kvfs_events *ev)
{
	if (!ev)
		return;
	kvfs_events_stop(ev);
	while (ev->readers) {
		struct kvfs_events_reader *r = ev->readers;

		ev->readers = r->next;
		reader_free(ev, r);
	}
	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++)
		knowns_clear(&ev->known[c]);
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->lock);
	close(ev->stop_fd);
	free(ev);
}

/* ---- readers ---- */

int kvfs_events_open(struct kvfs_events *ev, struct kvfs_events_reader **ret)
{
	struct kvfs_events_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->fd < 0) {
		free(r);
		return -errno;
	}
	pthread_mutex_lock(&ev->lock);
	r->next = ev->readers;
	if (r->next)
		r->next->prev = r;
	ev->readers = r;
	pthread_mutex_unlock(&ev->lock);
	*ret = r;
	return 0;
}

void kvfs_events_close(struct kvfs_events *ev, struct kvfs_events_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&ev->lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		ev->readers = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&ev->lock);
	reader_free(ev, r);
}

ssize_t kvfs_events_read(struct kvfs_events *ev, struct kvfs_events_reader *r,
			 char *buf, size_t size, bool nonblock,
			 bool (*cancelled)(void *data), void *data)
{
	bool waiting = false;
	ssize_t ret;

	if (size == 0)
		return 0;
	pthread_mutex_lock(&ev->lock);
	for (;;) {
		struct pollfd p[2] = {
			{.fd = r->fd, .events = POLLIN},
			{.fd = ev->stop_fd, .events = POLLIN},
		};
		size_t got = kvfs_events_queue_take(&r->q, buf, size);
		uint64_t n;

		if (r->q.n == 0)
			(void)!read(r->fd, &n, sizeof(n));
		if (got > 0 || ev->stop) {
			ret = (ssize_t)got;
			break;
		}
		if (!waiting) {
			if (nonblock ||
			    ev->waiters >= KVFS_EVENTS_WAITERS_MAX) {
				ret = -EAGAIN;
				break;
			}
			ev->waiters++;
			waiting = true;
		}
		pthread_mutex_unlock(&ev->lock);
		(void)poll(p, 2, KVFS_EVENTS_CHECK_MS);
		if (cancelled && cancelled(data)) {
			pthread_mutex_lock(&ev->lock);
			ret = -EINTR;
			break;
		}
		pthread_mutex_lock(&ev->lock);
	}
	if (waiting)
		ev->waiters--;
	pthread_mutex_unlock(&ev->lock);
	return ret;
}

bool kvfs_events_poll(struct kvfs_events *ev, struct kvfs_events_reader *r,
		      void *ph)
{
	void *old = NULL;
	bool ready;

	pthread_mutex_lock(&ev->lock);
	ready = r->q.n > 0 || ev->stop;
	if (ph) {
		old = r->ph;
		r->ph = ready ? NULL : ph;
	}
	pthread_mutex_unlock(&ev->lock);
	if (old)
		ev->ops.drop(old);
	if (ph && ready)
		ev->ops.drop(ph);
	return ready;
}
