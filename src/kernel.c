/* What the kernel saw (kernel.h): the opens counted through the page
 * cache, by files, and the queue of changes in the order they happened,
 * each with the files its directory showed before it.  A change is told
 * (told) and handed to fn with the lock released (flushing); it is
 * forgotten once told after its old files had no counted open left.  One
 * mutex guards both; the cache calls kvfs_kernel_change() with its own
 * lock held (cache -> kernel), so nothing here calls the cache under this
 * one but for kvfs_files_ref() and kvfs_files_current(), which take no
 * lock.  Nothing is logged here: the cache says when a change could not
 * be kept. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel.h"
#include "util.h"

/* A change kept for the kernel.  old: a reference to the files the
 * directory showed before it, or NULL. */
struct change {
	struct kvfs_change pub;
	char *name;
	char **versions;
	struct kvfs_files *old;
	bool told;     /* handed to the kernel once */
	bool flushing; /* being handed to the kernel, lock released */
};

/* The opens of one kvfs_files counted through the page cache.  No
 * reference: every counted open holds one until it is closed. */
struct open {
	struct kvfs_files *f;
	unsigned count;
};

struct kvfs_kernel {
	pthread_mutex_t lock;
	struct change **changes; /* in the order they happened */
	size_t nchanges, achanges;
	struct open *opens; /* sorted by f's address; count > 0 */
	size_t nopens, aopens;
};

int kvfs_kernel_new(struct kvfs_kernel **ret)
{
	struct kvfs_kernel *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	*ret = k;
	return 0;
}

static void change_free(struct change *c)
{
	if (!c)
		return;
	kvfs_files_unref(c->old);
	for (size_t i = 0; i < c->pub.nversions; i++)
		free(c->versions[i]);
	free(c->versions);
	free(c->name);
	free(c);
}

void kvfs_kernel_free(struct kvfs_kernel *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->nchanges; i++)
		change_free(k->changes[i]);
	free(k->changes);
	free(k->opens);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* A copy of c that holds its own strings. */
static struct change *change_copy(const struct kvfs_change *c)
{
	struct change *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->pub.coll = c->coll;
	n->pub.kind = c->kind;
	if (c->name && !(n->name = strdup(c->name)))
		goto oom;
	n->pub.name = n->name;
	if (c->nversions > 0) {
		n->versions = calloc(c->nversions, sizeof(*n->versions));
		if (!n->versions)
			goto oom;
		for (size_t i = 0; i < c->nversions; i++) {
			n->versions[i] = strdup(c->versions[i]);
			if (!n->versions[i])
				goto oom;
			n->pub.nversions++;
		}
		n->pub.versions = (const char *const *)n->versions;
	}
	return n;
oom:
	change_free(n);
	return NULL;
}

int kvfs_kernel_change(void *data, const struct kvfs_change *c,
		       struct kvfs_files *old)
{
	struct kvfs_kernel *k = data;
	struct change *n = change_copy(c);
	int r = -ENOMEM;

	if (!n)
		return r;
	pthread_mutex_lock(&k->lock);
	if (KVFS_GROW(k->changes, k->nchanges, k->achanges) == 0) {
		n->old = old ? kvfs_files_ref(old) : NULL;
		k->changes[k->nchanges++] = n;
		n = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&k->lock);
	change_free(n);
	return r;
}

/* Index of f in the opens, or where it would go (~index). */
static ssize_t open_index_locked(const struct kvfs_kernel *k,
				 const struct kvfs_files *f)
{
	size_t lo = 0, hi = k->nopens;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uintptr_t at = (uintptr_t)k->opens[mid].f;

		if (at == (uintptr_t)f)
			return (ssize_t)mid;
		if ((uintptr_t)f < at)
			hi = mid;
		else
			lo = mid + 1;
	}
	return ~(ssize_t)lo;
}

/* Whether f has an open counted through the page cache. */
static bool open_counted_locked(const struct kvfs_kernel *k,
				const struct kvfs_files *f)
{
	return f && open_index_locked(k, f) >= 0;
}

static int open_count_locked(struct kvfs_kernel *k, struct kvfs_files *f)
{
	ssize_t i = open_index_locked(k, f);
	size_t at;

	if (i >= 0) {
		k->opens[i].count++;
		return 0;
	}
	at = (size_t)~i;
	if (KVFS_GROW(k->opens, k->nopens, k->aopens) < 0)
		return -ENOMEM;
	memmove(&k->opens[at + 1], &k->opens[at],
		(k->nopens - at) * sizeof(k->opens[0]));
	k->opens[at] = (struct open){.f = f, .count = 1};
	k->nopens++;
	return 0;
}

/* Whether c is a change of object name of collection coll. */
static bool change_of(const struct change *c, enum kvfs_collection coll,
		      const char *name)
{
	return c->pub.coll == coll && c->name && strcasecmp(c->name, name) == 0;
}

/* Whether a change of (coll, name) is still kept. */
static bool name_changing_locked(const struct kvfs_kernel *k,
				 enum kvfs_collection coll, const char *name)
{
	for (size_t i = 0; i < k->nchanges; i++)
		if (change_of(k->changes[i], coll, name))
			return true;
	return false;
}

bool kvfs_kernel_open(struct kvfs_kernel *k, enum kvfs_collection coll,
		      const char *name, struct kvfs_files *f)
{
	bool cacheable;

	pthread_mutex_lock(&k->lock);
	/* The cache makes f not current before it reports the change that
	 * replaced it: either this open is counted before that change is
	 * kept, and the change waits for it, or it sees one or the other. */
	cacheable = kvfs_files_current(f) &&
		    !name_changing_locked(k, coll, name) &&
		    open_count_locked(k, f) == 0;
	pthread_mutex_unlock(&k->lock);
	return cacheable;
}

void kvfs_kernel_close(struct kvfs_kernel *k, struct kvfs_files *f)
{
	ssize_t i;

	pthread_mutex_lock(&k->lock);
	i = open_index_locked(k, f);
	assert(i >= 0); /* only opens kvfs_kernel_open() counted */
	if (i >= 0 && --k->opens[i].count == 0) {
		memmove(&k->opens[i], &k->opens[i + 1],
			(k->nopens - (size_t)i - 1) * sizeof(k->opens[0]));
		k->nopens--;
	}
	pthread_mutex_unlock(&k->lock);
}

bool kvfs_kernel_files_held(struct kvfs_kernel *k, enum kvfs_collection coll,
			    const char *name, struct kvfs_files **ret)
{
	struct kvfs_files *f = NULL;

	pthread_mutex_lock(&k->lock);
	/* The oldest first: the kernel was given its size first. */
	for (size_t i = 0; i < k->nchanges && !f; i++) {
		const struct change *c = k->changes[i];

		if (change_of(c, coll, name) && open_counted_locked(k, c->old))
			f = kvfs_files_ref(c->old);
	}
	pthread_mutex_unlock(&k->lock);
	if (!f)
		return false;
	*ret = f;
	return true;
}

size_t kvfs_kernel_flush(struct kvfs_kernel *k,
			 void (*fn)(void *data, const struct kvfs_change *c,
				    bool again),
			 void *data)
{
	_cleanup_free_ struct change **todo = NULL;
	_cleanup_free_ bool *last = NULL, *again = NULL;
	size_t n = 0, waiting = 0, j;

	pthread_mutex_lock(&k->lock);
	if (k->nchanges > 0) {
		todo = malloc(k->nchanges * sizeof(*todo));
		last = malloc(k->nchanges * sizeof(*last));
		again = malloc(k->nchanges * sizeof(*again));
	}
	if (!todo || !last || !again) {
		waiting = k->nchanges;
		pthread_mutex_unlock(&k->lock);
		return waiting;
	}
	for (size_t i = 0; i < k->nchanges; i++) {
		struct change *c = k->changes[i];
		bool closed = !open_counted_locked(k, c->old);

		if (c->flushing)
			continue;
		if (!closed)
			waiting++;
		if (!closed && c->told)
			continue;
		c->flushing = true;
		again[n] = c->told;
		c->told = true;
		last[n] = closed;
		todo[n++] = c;
	}
	pthread_mutex_unlock(&k->lock);

	for (size_t i = 0; i < n; i++)
		fn(data, &todo[i]->pub, again[i]);

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < n; i++) {
		todo[i]->flushing = false;
		if (!last[i])
			continue;
		for (j = 0; k->changes[j] != todo[i]; j++)
			;
		memmove(&k->changes[j], &k->changes[j + 1],
			(k->nchanges - j - 1) * sizeof(k->changes[0]));
		k->nchanges--;
	}
	pthread_mutex_unlock(&k->lock);
	for (size_t i = 0; i < n; i++)
		if (last[i])
			change_free(todo[i]);
	return waiting;
}
