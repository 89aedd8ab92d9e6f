/* What the tree is made of, kept fresh.  Each collection of the mount has
 * a listing (listing.h), built off the lock and swapped in under it when
 * it succeeded; readers take a reference.  What is fetched per object lives
 * in slots keyed by its collection and "name" (the latest bundle's files,
 * files.h), "name/version" (a version's) or "name/" (the versions
 * listing): the first caller fetches with the lock released while later
 * callers wait on the shared flight and take its result, success or
 * failure; a failure is not kept, so the next call tries again, unless the
 * vault is failing: then it is the answer until the vault's next permitted
 * attempt.  Everything handed out is refcounted so that an open file keeps
 * its bytes whatever happens to the slot.  A listing is fetched by one
 * caller at a time (the others wait for its result), every collection of
 * the mount in table order; swapping one in drops the slots of objects
 * that changed or went, and reports a change per object to the change
 * callback (kernel.c keeps them for the kernel), which runs under the
 * lock.  Freshness is per collection: while a collection's listing
 * fails, its files are served up to max_stale=.  The secrets of the files
 * are certsecret.c's, under a lock of their own.  Slot and listing fetches are
 * each a single flight (flight.h). One mutex and one condition variable for the
 * whole cache; the mutex is never held across a vault call, nor across a log
 * line: lines are composed under it and written after. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache.h"
#include "certsecret.h"
#include "defaults.h"
#include "filter.h"
#include "flight.h"
#include "log.h"
#include "metrics.h"
#include "pins.h"
#include "util.h"

enum obj_kind {
	OBJ_FILES,
	OBJ_VERSIONS,
};

/* The fetch of a slot.  Allocated apart from the slot, which may go
 * before its waiters run: the loader and every waiter hold a reference, and the
 * result stays readable until the last of them lets go. */
struct flight {
	int refs;
	struct kvfs_flight f;
	enum obj_kind kind;
	void *obj; /* a reference, on success */
};

enum slot_state {
	SLOT_NONE,
	SLOT_LOADING,
	SLOT_READY,
	/* The last fetch failed while the vault was failing: its error is
	 * the answer until the vault's next permitted attempt. */
	SLOT_FAILED,
};

/* A failure kept at least this long (ms), so that the lookups the kernel
 * queued behind the one that failed get it too. */
#define FAILED_MIN_MS 200

struct slot {
	char *key; /* "name", "name/version" or "name/"; the vault's spelling */
	struct flight *flight; /* SLOT_LOADING */
	void *obj;	       /* SLOT_READY: the slot's reference */
	int64_t failed_until;  /* kvfs_now_ms() time */
	struct slot *hnext;    /* its bucket's chain */
	int failed_r;	       /* SLOT_FAILED: the error, until failed_until */
	uint32_t at;	       /* its index in cache->slots */
	uint32_t hash;	       /* slot_hash(coll, key) */
	/* One byte each (enum kvfs_collection, enum obj_kind, enum
	 * slot_state): a slot per cached object. */
	uint8_t coll, kind, state;
	/* A revalidation saw the certificate change while it was loading:
	 * the result goes to the waiters but is not kept. */
	bool stale;
};

/* A collection's freshness: the last listing of it that succeeded
 * (kvfs_now_ms()), whether its latest one failed (since when), and that
 * failure's detail (err, at err_at, Unix seconds; cleared by a success). */
struct coll_state {
	int64_t last_ok;
	bool failing;
	int64_t failing_since;
	struct kvfs_error err;
	int64_t err_at;
};

struct kvfs_cache {
	const struct kvfs_config *config;
	struct kvfs_vault *vault;
	unsigned pin_seconds;
	struct kvfs_pins *pins; /* (process, coll, name) → kvfs_files */
	struct kvfs_certsecrets *secrets; /* the secrets of its files */
	/* The collections of the mount (bits of enum kvfs_collection). */
	unsigned collections;
	/* What every listing lets through (include=, exclude=, tag=). */
	struct kvfs_filter filter;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* a flight landed */

	/* Per collection; never NULL after kvfs_cache_new for a collection
	 * of the mount, always NULL for the others. */
	struct kvfs_listing *listings[KVFS_COLLECTION_COUNT_];
	/* In no order; found through the buckets (chains by slot_hash(),
	 * at least as many as slots), so that finding, adding and removing
	 * a slot costs the same with 100,000 of them as with ten. */
	struct slot **slots;
	size_t nslots, aslots;
	struct slot **buckets;
	size_t nbuckets; /* a power of 2, or 0 */

	/* The one listing in flight (all the collections), and the error its
	 * waiters share. */
	struct kvfs_flight listing_flight;
	struct kvfs_error listing_err;

	/* Whether the first listings succeeded (the mount is up). */
	bool loaded;
	/* Freshness and health, per collection of the mount. */
	struct coll_state state[KVFS_COLLECTION_COUNT_];

	/* Told what a revalidation changed, under the lock. */
	int (*on_change)(void *data, const struct kvfs_change *c,
			 struct kvfs_files *old);
	void *on_change_data;

	int stopping; /* atomic: revalidation stops at the next request */
};

static unsigned max_stale(const struct kvfs_cache *cache)
{
	return cache->config ? cache->config->max_stale
			     : KVFS_DEFAULT_MAX_STALE;
}

static void files_unref_pin(void *f)
{
	kvfs_files_unref(f);
}

static void *obj_ref(enum obj_kind kind, void *obj)
{
	if (kind == OBJ_FILES)
		return kvfs_files_ref(obj);
	return kvfs_versions_ref(obj);
}

static void obj_unref(enum obj_kind kind, void *obj)
{
	if (kind == OBJ_FILES)
		kvfs_files_unref(obj);
	else
		kvfs_versions_unref(obj);
}

static void flight_unref_locked(struct flight *fl)
{
	if (--fl->refs > 0)
		return;
	if (fl->obj)
		obj_unref(fl->kind, fl->obj);
	free(fl);
}

int kvfs_cache_new(const struct kvfs_config *c, struct kvfs_vault *v,
		   struct kvfs_cache **ret)
{
	struct kvfs_cache *cache;
	int r;

	cache = calloc(1, sizeof(*cache));
	if (!cache)
		return -ENOMEM;
	cache->collections = c->collections;
	kvfs_filter_init(&cache->filter, c);
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		if (!(cache->collections & (1u << i)))
			continue;
		cache->listings[i] = kvfs_listing_new_empty();
		if (!cache->listings[i]) {
			r = -ENOMEM;
			goto fail;
		}
	}
	cache->pins = kvfs_pins_new(files_unref_pin);
	if (!cache->pins) {
		r = -ENOMEM;
		goto fail;
	}
	r = kvfs_certsecrets_new(c, v, &cache->secrets);
	if (r < 0)
		goto fail;
	cache->pin_seconds = KVFS_CACHE_PIN_SECONDS;
	cache->config = c;
	cache->vault = v;

	/* Waits are bounded by the deadline on the monotonic clock, so a
	 * clock step never makes a reader wait longer. */
	r = kvfs_cond_init_monotonic(&cache->cond);
	if (r < 0)
		goto fail;
	pthread_mutex_init(&cache->lock, NULL);

	*ret = cache;
	return 0;
fail:
	kvfs_certsecrets_free(cache->secrets);
	kvfs_pins_free(cache->pins);
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		kvfs_listing_unref(cache->listings[i]);
	free(cache);
	return r;
}

static void slot_free(struct slot *s)
{
	if (s->obj && s->kind == OBJ_FILES)
		kvfs_files_set_current(s->obj, false);
	if (s->obj)
		obj_unref(s->kind, s->obj);
	free(s->key);
	free(s);
}

void kvfs_cache_free(struct kvfs_cache *cache)
{
	if (!cache)
		return;
	/* No request is in flight any more: the FUSE loop has ended. */
	for (size_t i = 0; i < cache->nslots; i++)
		slot_free(cache->slots[i]);
	free(cache->slots);
	free(cache->buckets);
	kvfs_pins_free(cache->pins);
	kvfs_certsecrets_free(cache->secrets);
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		kvfs_listing_unref(cache->listings[i]);
	pthread_cond_destroy(&cache->cond);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

void kvfs_cache_on_change(struct kvfs_cache *cache,
			  int (*fn)(void *data, const struct kvfs_change *c,
				    struct kvfs_files *old),
			  void *data)
{
	pthread_mutex_lock(&cache->lock);
	cache->on_change = fn;
	cache->on_change_data = data;
	pthread_mutex_unlock(&cache->lock);
}

bool kvfs_cache_has_collection(const struct kvfs_cache *cache,
			       enum kvfs_collection coll)
{
	return (unsigned)coll < KVFS_COLLECTION_COUNT_ &&
	       (cache->collections & (1u << coll));
}

/* The listing of coll, NULL when the mount does not show it; borrowed. */
static struct kvfs_listing *listing_locked(struct kvfs_cache *cache,
					   enum kvfs_collection coll)
{
	return kvfs_cache_has_collection(cache, coll) ? cache->listings[coll]
						      : NULL;
}

struct kvfs_listing *kvfs_cache_listing(struct kvfs_cache *cache,
					enum kvfs_collection coll)
{
	struct kvfs_listing *l;

	pthread_mutex_lock(&cache->lock);
	l = listing_locked(cache, coll);
	if (l)
		kvfs_listing_ref(l);
	pthread_mutex_unlock(&cache->lock);
	return l;
}

int kvfs_cache_collection_state(struct kvfs_cache *cache,
				enum kvfs_collection coll,
				struct kvfs_cache_collection *ret)
{
	const struct coll_state *st;

	*ret = (struct kvfs_cache_collection){0};
	if (!kvfs_cache_has_collection(cache, coll))
		return -ENOENT;
	st = &cache->state[coll];
	pthread_mutex_lock(&cache->lock);
	ret->listing = kvfs_listing_ref(cache->listings[coll]);
	ret->failing = st->failing;
	ret->err = st->err;
	ret->err_at = st->err_at;
	pthread_mutex_unlock(&cache->lock);
	return 0;
}

void kvfs_cache_listings(struct kvfs_cache *cache,
			 struct kvfs_listing *ret[KVFS_COLLECTION_COUNT_])
{
	pthread_mutex_lock(&cache->lock);
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		ret[i] = listing_locked(cache, (enum kvfs_collection)i);
		if (ret[i])
			kvfs_listing_ref(ret[i]);
	}
	pthread_mutex_unlock(&cache->lock);
}

/* The collection is part of the key: two collections may have objects
 * of the same name. */
static uint32_t slot_hash(enum kvfs_collection coll, const char *key)
{
	uint64_t h = kvfs_fnv1a(key, true) ^
		     ((uint64_t)coll * 0x9e3779b97f4a7c15ULL);

	return (uint32_t)(h ^ (h >> 32));
}

static struct slot **slot_bucket_locked(struct kvfs_cache *cache, uint32_t h)
{
	return &cache->buckets[h & (cache->nbuckets - 1)];
}

/* Index of (coll, key) in the slot table, or -1. */
static ssize_t slot_index_locked(struct kvfs_cache *cache,
				 enum kvfs_collection coll, const char *key)
{
	uint32_t h = slot_hash(coll, key);

	if (!cache->nbuckets)
		return -1;
	for (struct slot *s = *slot_bucket_locked(cache, h); s; s = s->hnext)
		if (s->hash == h && s->coll == coll &&
		    strcasecmp(key, s->key) == 0)
			return (ssize_t)s->at;
	return -1;
}

/* Room for one more slot in the table and the buckets. */
static int slot_room_locked(struct kvfs_cache *cache)
{
	struct slot **b;
	size_t nb;

	if (KVFS_GROW(cache->slots, cache->nslots, cache->aslots) < 0)
		return -ENOMEM;
	if (cache->nslots < cache->nbuckets)
		return 0;
	nb = cache->nbuckets ? cache->nbuckets * 2 : 64;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	free(cache->buckets);
	cache->buckets = b;
	cache->nbuckets = nb;
	for (size_t i = 0; i < cache->nslots; i++) {
		struct slot *s = cache->slots[i];
		struct slot **head = slot_bucket_locked(cache, s->hash);

		s->hnext = *head;
		*head = s;
	}
	return 0;
}

/* Free slot i; the last slot takes its index. */
static void slot_remove_locked(struct kvfs_cache *cache, size_t i)
{
	struct slot *s = cache->slots[i];
	struct slot **p = slot_bucket_locked(cache, s->hash);

	while (*p != s)
		p = &(*p)->hnext;
	*p = s->hnext;
	slot_free(s);
	if (i < --cache->nslots) {
		cache->slots[i] = cache->slots[cache->nslots];
		cache->slots[i]->at = (uint32_t)i;
	}
}

static int slot_get_locked(struct kvfs_cache *cache, enum kvfs_collection coll,
			   const char *key, enum obj_kind kind,
			   struct slot **ret)
{
	ssize_t i = slot_index_locked(cache, coll, key);
	struct slot **head;
	struct slot *s;

	if (i >= 0) {
		*ret = cache->slots[i];
		return 0;
	}
	if (slot_room_locked(cache) < 0)
		return -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->coll = coll;
	s->kind = kind;
	s->key = strdup(key);
	if (!s->key) {
		free(s);
		return -ENOMEM;
	}
	s->hash = slot_hash(coll, key);
	s->at = (uint32_t)cache->nslots;
	head = slot_bucket_locked(cache, s->hash);
	s->hnext = *head;
	*head = s;
	cache->slots[cache->nslots++] = s;
	*ret = s;
	return 0;
}

/* The certificate name a slot key is of. */
static void key_name(const char *key, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", (int)strcspn(key, "/"), key);
}

/* Whether f may still be served: always while its collection's listing
 * works; while that fails, for max_stale= seconds after the later of f's
 * fetch and the collection's last listing that succeeded, and never past
 * the object's exp.
 * Says why not into why, once in a while. */
static bool files_fresh_locked(const struct kvfs_cache *cache,
			       const struct kvfs_files *f,
			       struct kvfs_log_deferred *why)
{
	enum kvfs_collection coll = kvfs_files_header(f).coll;
	const char *noun = kvfs_collection_info(coll)->noun;
	const struct coll_state *st = &cache->state[coll];
	int64_t fetched, seen, now;

	if (!st->failing)
		return true;
	now = kvfs_now_ms();
	fetched = kvfs_files_fetched_ms(f);
	seen = fetched > st->last_ok ? fetched : st->last_ok;
	if (now - seen > 1000 * (int64_t)max_stale(cache)) {
		log_defer_warning_ratelimited(
			why,
			"%s '%s': not served, the vault has not "
			"confirmed it for %lld s (max_stale=%u)",
			noun, kvfs_files_name(f) ? kvfs_files_name(f) : "?",
			(long long)((now - seen) / 1000), max_stale(cache));
		return false;
	}
	if (kvfs_files_attrs(f)->exp &&
	    kvfs_wall_now() >= kvfs_files_attrs(f)->exp) {
		log_defer_warning_ratelimited(
			why,
			"%s '%s': not served, it expired while the "
			"vault cannot be reached",
			noun, kvfs_files_name(f) ? kvfs_files_name(f) : "?");
		return false;
	}
	return true;
}

/* The object of the ready slot (coll, key), or NULL. */
static void *slot_obj_locked(struct kvfs_cache *cache,
			     enum kvfs_collection coll, const char *key)
{
	ssize_t i = slot_index_locked(cache, coll, key);

	if (i < 0 || cache->slots[i]->state != SLOT_READY)
		return NULL;
	return cache->slots[i]->obj;
}

/* Tell the change callback, if any, about c; old: the files the
 * directory showed (NULL: none). */
static int change_report_locked(struct kvfs_cache *cache,
				const struct kvfs_change *c,
				struct kvfs_files *old)
{
	if (!cache->on_change)
		return 0;
	return cache->on_change(cache->on_change_data, c, old);
}

/* Report what the kernel must forget about object name of collection coll
 * (or, name NULL, about the collection's directory itself): the
 * directory's files as they were and the versions the tree showed.  Runs
 * before the slots are dropped; the files stop being current first, so
 * that an open that sees them current is counted before the change is
 * reported.  -ENOMEM: the kernel keeps what it has until its timeouts
 * (60 s). */
static int change_report_one_locked(struct kvfs_cache *cache,
				    enum kvfs_collection coll,
				    enum kvfs_change_kind kind,
				    const char *name)
{
	struct kvfs_change c = {.coll = coll, .kind = kind, .name = name};
	_cleanup_free_ const char **vers = NULL;
	_cleanup_free_ char *vkey = NULL;
	struct kvfs_versions *vs;
	struct kvfs_files *f = NULL;

	if (!name)
		return change_report_locked(cache, &c, NULL);
	f = slot_obj_locked(cache, coll, name);
	if (f)
		kvfs_files_set_current(f, false);
	if (asprintf(&vkey, "%s/", name) < 0) {
		vkey = NULL;
		return -ENOMEM;
	}
	vs = slot_obj_locked(cache, coll, vkey);
	if (vs && vs->list.n > 0) {
		vers = calloc(vs->list.n, sizeof(*vers));
		if (!vers)
			return -ENOMEM;
		for (size_t i = 0; i < vs->list.n; i++)
			if (vs->list.items[i].version)
				vers[c.nversions++] = vs->list.items[i].version;
		c.versions = vers;
	}
	return change_report_locked(cache, &c, f);
}

/* What swapping the listings in leaves to say once the lock is released:
 * what changed (the two listings of each collection, referenced), the
 * changes that could not be reported, and how revalidation fares. */
struct swap_notes {
	struct kvfs_listing *old[KVFS_COLLECTION_COUNT_];
	struct kvfs_listing *l[KVFS_COLLECTION_COUNT_];
	struct kvfs_log_deferred oom; /* the first change not reported */
	unsigned oom_more[KVFS_COLLECTION_COUNT_]; /* and how many more */
	/* Collections' listings failed (a line per failure), or work
	 * again. */
	struct kvfs_log_deferred line[KVFS_COLLECTION_COUNT_];
	struct kvfs_log_deferred back;
};

struct diff_report {
	struct kvfs_cache *cache;
	struct swap_notes *notes;
	enum kvfs_collection coll;
	bool names; /* objects came or went */
};

static void change_report_noted_locked(struct diff_report *q,
				       enum kvfs_change_kind kind,
				       const char *name)
{
	if (change_report_one_locked(q->cache, q->coll, kind, name) == 0)
		return;
	if (q->notes->oom.text[0])
		q->notes->oom_more[q->coll]++;
	else
		kvfs_log_defer(&q->notes->oom, NULL, KVFS_LOG_WARNING,
			       "cannot tell the kernel that '%s%s' changed: "
			       "out of memory",
			       name ? name
				    : kvfs_collection_info(q->coll)->name,
			       name ? "" : "/");
}

static void diff_report_locked(void *data, enum kvfs_listing_diff d,
			       const struct kvfs_object_item *a,
			       const struct kvfs_object_item *b)
{
	struct diff_report *q = data;

	(void)b;
	if (d != KVFS_LISTING_CHANGED)
		q->names = true;
	if (d == KVFS_LISTING_GONE)
		change_report_noted_locked(q, KVFS_CHANGE_GONE, a->name);
	else if (d == KVFS_LISTING_CHANGED)
		change_report_noted_locked(q, KVFS_CHANGE_CHANGED, a->name);
}

/* data: the enum kvfs_collection of the listings. */
static void diff_log(void *data, enum kvfs_listing_diff d,
		     const struct kvfs_object_item *a,
		     const struct kvfs_object_item *b)
{
	const char *noun =
		kvfs_collection_info(*(const enum kvfs_collection *)data)->noun;

	if (d == KVFS_LISTING_GONE)
		log_info("%s '%s' is gone from the vault", noun, a->name);
	else if (d == KVFS_LISTING_NEW)
		log_info("%s '%s' is new in the vault", noun, b->name);
	else
		log_info("%s '%s' changed in the vault", noun, b->name);
}

static void swap_notes_flush(struct swap_notes *n)
{
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		enum kvfs_collection coll = (enum kvfs_collection)i;

		if (!n->old[i])
			continue;
		kvfs_listing_diff(n->old[i], n->l[i], diff_log, &coll);
		kvfs_listing_unref(n->old[i]);
		kvfs_listing_unref(n->l[i]);
	}
	kvfs_log_flush(&n->oom);
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		if (n->oom_more[i])
			log_warning(
				"cannot tell the kernel that %u more %s "
				"changed: out of memory",
				n->oom_more[i],
				kvfs_collection_info((enum kvfs_collection)i)
					->name);
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		kvfs_log_flush(&n->line[i]);
	kvfs_log_flush(&n->back);
}

/* Report the changes from the current listing of coll to l, and keep
 * both for the notes. */
static void changes_report_locked(struct kvfs_cache *cache,
				  enum kvfs_collection coll,
				  struct kvfs_listing *l,
				  struct swap_notes *notes)
{
	struct kvfs_listing *old = cache->listings[coll];
	struct diff_report q = {cache, notes, coll, false};

	kvfs_listing_diff(old, l, diff_report_locked, &q);
	if (q.names || old->updated_max != l->updated_max)
		change_report_noted_locked(&q, KVFS_CHANGE_LISTING, NULL);
	notes->old[coll] = kvfs_listing_ref(old);
	notes->l[coll] = kvfs_listing_ref(l);
}

/* Swap in a new listing of coll and forget the files it makes out of
 * date: those of its objects that are gone, or whose updated or x5t
 * changed; the kernel is told through the changes reported. */
static void listing_replace_locked(struct kvfs_cache *cache,
				   enum kvfs_collection coll,
				   struct kvfs_listing *l,
				   struct swap_notes *notes)
{
	struct kvfs_listing *old = cache->listings[coll];

	/* The first listing comes before the mount: the kernel knows
	 * nothing yet. */
	if (cache->loaded)
		changes_report_locked(cache, coll, l, notes);

	/* Backwards: a removal moves the last slot, already seen, to i. */
	for (size_t i = cache->nslots; i-- > 0;) {
		struct slot *s = cache->slots[i];
		char name[256];
		const struct kvfs_entry *was, *now;

		if (s->coll != coll)
			continue;
		key_name(s->key, name, sizeof(name));
		was = kvfs_listing_find(old, name);
		now = kvfs_listing_find(l, name);
		bool changed =
			!now || !was ||
			kvfs_listing_item_changed(&was->item, &now->item);

		if (!changed)
			continue;
		if (s->state == SLOT_LOADING)
			s->stale = true; /* the loader cleans up */
		else
			slot_remove_locked(cache, i);
	}

	cache->listings[coll] = l;
	kvfs_listing_unref(old);
}

/* The names of the collections of mask, for a line about them:
 * "certificates", "certificates and secrets", "certificates, secrets and
 * keys". */
static void collections_names(unsigned mask, char *buf, size_t size)
{
	unsigned n = 0, left = (unsigned)__builtin_popcount(mask);
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_ && len < size; i++) {
		if (!(mask & (1u << i)))
			continue;
		left--;
		len += (size_t)snprintf(
			buf + len, size - len, "%s%s",
			n == 0	    ? ""
			: left == 0 ? " and "
				    : ", ",
			kvfs_collection_info((enum kvfs_collection)i)->name);
		n++;
	}
}

/* The latest listing of coll failed with err: its files turn stale, and
 * err is kept for .kvfs/status.  Whether it began failing now (after the
 * mount: before it, main() prints the one line that matters). */
static bool listing_failed_locked(struct kvfs_cache *cache,
				  enum kvfs_collection coll,
				  const struct kvfs_error *err)
{
	struct coll_state *st = &cache->state[coll];
	bool began = cache->loaded && !st->failing;

	st->err = *err;
	st->err_at = kvfs_wall_now();
	if (began)
		st->failing_since = kvfs_now_ms();
	st->failing = true;
	return began;
}

/* Swap in l, a listing of coll that succeeded: its files are fresh again
 * and its error is cleared.  Whether it was failing (since when: *since,
 * the earliest of those that were). */
static bool listing_ok_locked(struct kvfs_cache *cache,
			      enum kvfs_collection coll, struct kvfs_listing *l,
			      struct swap_notes *notes, int64_t *since)
{
	struct coll_state *st = &cache->state[coll];
	bool was = st->failing && cache->loaded;

	listing_replace_locked(cache, coll, l, notes);
	if (was && st->failing_since < *since)
		*since = st->failing_since;
	st->failing = false;
	st->last_ok = kvfs_now_ms();
	kvfs_error_clear(&st->err);
	st->err_at = 0;
	return was;
}

/* Whether a listing that failed with err says nothing of the other
 * collections: the vault answered that this identity may not list this
 * collection (403: ForbiddenByRbac, or Forbidden by an access policy). */
static bool listing_refused(const struct kvfs_error *err)
{
	return err->http_status == 403 && !err->not_sent;
}

/* Note the lines of a fetch: the collections of began that began failing,
 * a line per failure (from[i]: the collection whose failure i's is), and
 * those of ended that are fresh again, failing since since. */
static void listing_notes(const struct kvfs_cache *cache, unsigned began,
			  const enum kvfs_collection from[],
			  const struct kvfs_error errs[], unsigned ended,
			  int64_t since, struct swap_notes *notes)
{
	char what[300], msg[512];

	for (unsigned k = 0; k < KVFS_COLLECTION_COUNT_; k++) {
		unsigned mask = 0;

		for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++)
			if ((began & (1u << i)) && from[i] == k)
				mask |= 1u << i;
		if (!mask)
			continue;
		/* Held back by the gate: its line says why. */
		if (errs[k].not_sent)
			snprintf(msg, sizeof(msg), "the vault is failing");
		else
			kvfs_error_describe(&errs[k], msg, sizeof(msg));
		collections_names(mask, what, sizeof(what));
		kvfs_log_defer(&notes->line[k], NULL, KVFS_LOG_WARNING,
			       "cannot revalidate the %s: %s; "
			       "their cached files are served for up to %u s",
			       what, msg, max_stale(cache));
	}
	if (!ended)
		return;
	collections_names(ended, what, sizeof(what));
	kvfs_log_defer(&notes->back, NULL, KVFS_LOG_NOTICE,
		       "revalidated the %s again after %lld s; "
		       "their cached files are fresh",
		       what, (long long)((kvfs_now_ms() - since) / 1000));
}

/* Fetch the listing of every collection of the mount, in table order, and
 * swap in each that succeeded; the lock is held on entry and on return,
 * and dropped for the vault calls.  A collection the vault refuses to
 * this identity keeps its listing and the next one is listed; any other
 * failure (the vault is failing or out of reach) ends the fetch, and the
 * collections not listed yet keep theirs, failing alike.  Before the
 * mount, the first failure ends it: the mount is refused.  Returns the
 * first failure, err its detail. */
static int listing_fetch_locked(struct kvfs_cache *cache, unsigned budget_s,
				struct kvfs_error *err,
				struct swap_notes *notes)
{
	struct kvfs_listing *ls[KVFS_COLLECTION_COUNT_] = {NULL};
	struct kvfs_error errs[KVFS_COLLECTION_COUNT_];
	enum kvfs_collection from[KVFS_COLLECTION_COUNT_];
	unsigned collections = cache->collections, began = 0, ended = 0;
	bool loaded = cache->loaded, stop = false;
	int64_t since = kvfs_now_ms();
	enum kvfs_collection stopped = KVFS_COLLECTION_CERTIFICATES;
	char what[300];
	int r = 0;

	pthread_mutex_unlock(&cache->lock);
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		enum kvfs_collection coll = (enum kvfs_collection)i;
		struct kvfs_object_list list = {0};
		int ri;

		from[i] = coll;
		kvfs_error_clear(&errs[i]);
		if (!(collections & (1u << i)))
			continue;
		if (stop) {
			/* Not listed: failing as the one that ended it. */
			from[i] = stopped;
			continue;
		}
		ri = kvfs_vault_list_within(cache->vault, coll, budget_s, &list,
					    &errs[i]);
		if (ri == 0) {
			ri = kvfs_listing_build(coll, &list, &cache->filter,
						&ls[i]);
			if (ri < 0) {
				kvfs_object_list_clear(&list);
				kvfs_error_set_message(&errs[i],
						       "out of memory");
			}
		}
		kvfs_metrics_listing(coll, ri == 0);
		if (ri == 0)
			continue;
		/* A listing the gate held back: the vault's own error stays
		 * the last one (see fetch_failed). */
		snprintf(what, sizeof(what), "cannot list %s",
			 kvfs_collection_info(coll)->name);
		if (!errs[i].not_sent)
			kvfs_metrics_error_detail(what, &errs[i]);
		if (r == 0) {
			r = ri;
			*err = errs[i];
		}
		stop = !loaded || !listing_refused(&errs[i]);
		stopped = coll;
	}
	pthread_mutex_lock(&cache->lock);

	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		enum kvfs_collection coll = (enum kvfs_collection)i;

		if (ls[i] &&
		    listing_ok_locked(cache, coll, ls[i], notes, &since))
			ended |= 1u << i;
		else if (!ls[i] && (collections & (1u << i)) &&
			 listing_failed_locked(cache, coll, &errs[from[i]]))
			began |= 1u << i;
	}
	listing_notes(cache, began, from, errs, ended, since, notes);
	if (r == 0)
		cache->loaded = true;
	return r;
}

static int listing_load(struct kvfs_cache *cache, unsigned budget_s,
			struct kvfs_error *err)
{
	struct swap_notes notes = {0};
	int r;

	pthread_mutex_lock(&cache->lock);
	if (!kvfs_flight_begin_locked(&cache->listing_flight)) {
		(void)kvfs_flight_wait_locked(&cache->listing_flight,
					      &cache->lock, &cache->cond,
					      KVFS_FLIGHT_NO_DEADLINE, &r);
		*err = cache->listing_err;
		pthread_mutex_unlock(&cache->lock);
		return r;
	}
	r = listing_fetch_locked(cache, budget_s, err, &notes);
	cache->listing_err = *err;
	kvfs_flight_end_locked(&cache->listing_flight, &cache->cond, r);
	pthread_mutex_unlock(&cache->lock);
	swap_notes_flush(&notes);
	return r;
}

int kvfs_cache_load(struct kvfs_cache *cache, struct kvfs_error *err)
{
	return listing_load(cache, 0, err);
}

/* ---- revalidating the versions listings ----
 *
 * The certificates listing shows only each certificate's latest version:
 * an older version disabled, enabled again or deleted changes nothing in
 * it.  So a revalidation also lists again the versions of every
 * certificate whose versions listing is kept (one request per 25
 * versions, none for the others), and forgets the versions that changed:
 * their attributes come from the new listing, their files are fetched
 * again on next use. */

/* What replacing a versions listing leaves to say once the lock is
 * released: the versions of old (referenced) that changed or went, and a
 * change that could not be reported. */
struct versions_notes {
	struct kvfs_versions *old;
	struct kvfs_log_deferred oom;
};

/* Report what the kernel must forget of the versions of (coll, name):
 * versions/ and the versions/<v>/ of vers. */
static void change_report_versions_locked(struct kvfs_cache *cache,
					  enum kvfs_collection coll,
					  const char *name, char **vers,
					  size_t n,
					  struct versions_notes *notes)
{
	struct kvfs_change c = {
		.coll = coll,
		.kind = KVFS_CHANGE_VERSIONS,
		.name = name,
		.versions = (const char *const *)vers,
		.nversions = n,
	};

	if (change_report_locked(cache, &c, NULL) == 0)
		return;
	kvfs_log_defer(&notes->oom, NULL, KVFS_LOG_WARNING,
		       "cannot tell the kernel that versions of '%s' changed: "
		       "out of memory",
		       name);
}

static void versions_notes_flush(struct versions_notes *notes,
				 enum kvfs_collection coll, const char *name,
				 const struct kvfs_versions *nv)
{
	const struct kvfs_object_item *a;

	for (size_t k = 0; notes->old && (a = kvfs_versions_next_changed(
						  notes->old, nv, &k));)
		log_info("version '%s' of %s '%s' %s the vault", a->version,
			 kvfs_collection_info(coll)->noun, name,
			 kvfs_versions_find(nv, a->version) ? "changed in"
							    : "is gone from");
	kvfs_versions_unref(notes->old);
	notes->old = NULL;
	kvfs_log_flush(&notes->oom);
}

/* Make nv the versions listing of (coll, name), if the one kept differs
 * from it: the versions that changed or went lose their files. */
static void versions_replace_locked(struct kvfs_cache *cache,
				    enum kvfs_collection coll, const char *name,
				    struct kvfs_versions *nv,
				    struct versions_notes *notes)
{
	_cleanup_free_ char *key = NULL;
	_cleanup_free_ char **vers = NULL;
	const struct kvfs_object_item *a;
	struct kvfs_versions *old;
	size_t n = 0;
	bool added = false;
	ssize_t i;

	if (asprintf(&key, "%s/", name) < 0) {
		key = NULL;
		return;
	}
	i = slot_index_locked(cache, coll, key);
	if (i < 0 || cache->slots[i]->state != SLOT_READY)
		return; /* dropped in the meantime */
	old = cache->slots[i]->obj;
	vers = calloc(old->list.n + 1, sizeof(*vers));
	if (!vers)
		return;
	for (size_t k = 0; (a = kvfs_versions_next_changed(old, nv, &k));)
		vers[n++] = a->version;
	notes->old = obj_ref(OBJ_VERSIONS, old);
	for (size_t k = 0; k < nv->list.n && !added; k++)
		added = nv->list.items[k].version &&
			!kvfs_versions_find(old, nv->list.items[k].version);
	if (n == 0 && !added)
		return;

	change_report_versions_locked(cache, coll, name, vers, n, notes);
	for (size_t k = 0; k < n; k++) {
		_cleanup_free_ char *vkey = NULL;
		ssize_t j;

		if (asprintf(&vkey, "%s/%s", name, vers[k]) < 0) {
			vkey = NULL;
			continue;
		}
		j = slot_index_locked(cache, coll, vkey);
		if (j < 0)
			continue;
		if (cache->slots[j]->state == SLOT_LOADING)
			cache->slots[j]->stale = true;
		else
			slot_remove_locked(cache, (size_t)j);
	}
	/* Removing slots moved the versions slot. */
	i = slot_index_locked(cache, coll, key);
	obj_unref(OBJ_VERSIONS, cache->slots[i]->obj);
	cache->slots[i]->obj = obj_ref(OBJ_VERSIONS, nv);
}

static void versions_revalidate(struct kvfs_cache *cache, unsigned budget_s)
{
	enum kvfs_collection *colls = NULL;
	char **names = NULL;
	size_t n = 0;

	pthread_mutex_lock(&cache->lock);
	names = calloc(cache->nslots + 1, sizeof(*names));
	colls = calloc(cache->nslots + 1, sizeof(*colls));
	if (!colls) {
		free(names);
		names = NULL;
	}
	for (size_t i = 0; names && i < cache->nslots; i++) {
		const struct slot *s = cache->slots[i];
		size_t len = strlen(s->key);

		colls[n] = s->coll;
		/* A collection that could not be listed keeps its versions
		 * listings as they were, with its own listing. */
		if (s->kind == OBJ_VERSIONS && s->state == SLOT_READY &&
		    !cache->state[s->coll].failing && len > 1 &&
		    (names[n] = strndup(s->key, len - 1)))
			n++;
	}
	pthread_mutex_unlock(&cache->lock);
	if (!names) {
		free(colls);
		return;
	}

	for (size_t i = 0; i < n; i++) {
		struct kvfs_versions *nv = NULL;
		struct kvfs_error err;
		char msg[512];
		int r;

		/* Unmounting, or out of memory: the next time. */
		if (__atomic_load_n(&cache->stopping, __ATOMIC_ACQUIRE) ||
		    !(nv = kvfs_versions_new())) {
			free(names[i]);
			continue;
		}
		kvfs_error_clear(&err);
		r = kvfs_vault_list_versions_within(cache->vault, colls[i],
						    names[i], budget_s,
						    &nv->list, &err);
		if (r < 0) {
			/* Kept as they were: the certificates listing, which
			 * succeeded, says the certificate is still there. */
			kvfs_error_describe(&err, msg, sizeof(msg));
			log_warning_ratelimited(
				"cannot revalidate the versions of '%s': %s",
				names[i], msg);
		} else {
			struct versions_notes notes = {0};

			pthread_mutex_lock(&cache->lock);
			versions_replace_locked(cache, colls[i], names[i], nv,
						&notes);
			pthread_mutex_unlock(&cache->lock);
			versions_notes_flush(&notes, colls[i], names[i], nv);
		}
		kvfs_versions_unref(nv);
		free(names[i]);
	}
	free(names);
	free(colls);
}

void kvfs_cache_revalidate_stop(struct kvfs_cache *cache)
{
	__atomic_store_n(&cache->stopping, 1, __ATOMIC_RELEASE);
}

int kvfs_cache_revalidate(struct kvfs_cache *cache, unsigned page_budget_s,
			  struct kvfs_error *err)
{
	int r = listing_load(cache, page_budget_s, err);

	/* The collections that were listed, even when another one failed. */
	versions_revalidate(cache, page_budget_s);
	return r;
}

/* GET one version of a collection's object (version NULL: the latest) and
 * build its files, the vault's error in err. */
typedef int fetch_fn(struct kvfs_vault *v, enum kvfs_collection coll,
		     const char *name, const char *version,
		     struct kvfs_files **ret, struct kvfs_error *err);

static int fetch_certificate(struct kvfs_vault *v, enum kvfs_collection coll,
			     const char *name, const char *version,
			     struct kvfs_files **ret, struct kvfs_error *err)
{
	_cleanup_(kvfs_cert_bundle_clear) struct kvfs_cert_bundle b = {0};
	int r;

	r = kvfs_vault_get_certificate(v, name, version, &b, err);
	return r < 0 ? r : kvfs_files_new_cert(coll, &b, ret);
}

static int fetch_secret(struct kvfs_vault *v, enum kvfs_collection coll,
			const char *name, const char *version,
			struct kvfs_files **ret, struct kvfs_error *err)
{
	_cleanup_(kvfs_secret_clear) struct kvfs_secret s = {0};
	int r;

	r = kvfs_vault_get_secret_value(v, name, version, &s, err);
	return r < 0 ? r : kvfs_files_new_secret(coll, &s, ret);
}

static int fetch_key(struct kvfs_vault *v, enum kvfs_collection coll,
		     const char *name, const char *version,
		     struct kvfs_files **ret, struct kvfs_error *err)
{
	_cleanup_(kvfs_key_bundle_clear) struct kvfs_key_bundle b = {0};
	int r;

	r = kvfs_vault_get_key(v, name, version, &b, err);
	return r < 0 ? r : kvfs_files_new_key(coll, &b, ret);
}

/* How each collection's objects are fetched. */
static fetch_fn *const fetchers[] = {
	[KVFS_COLLECTION_CERTIFICATES] = fetch_certificate,
	[KVFS_COLLECTION_SECRETS] = fetch_secret,
	[KVFS_COLLECTION_KEYS] = fetch_key,
};

_Static_assert(ELEMENTSOF(fetchers) == KVFS_COLLECTION_COUNT_,
	       "every collection of the table is fetched");

/* The network part of a first use: GET the object, build the files.  Runs
 * without the lock. */
static int files_fetch(struct kvfs_cache *cache, enum kvfs_collection coll,
		       const char *name, const char *version,
		       struct kvfs_files **ret)
{
	struct kvfs_error err;
	int r;

	kvfs_error_clear(&err);
	r = fetchers[coll](cache->vault, coll, name, version, ret, &err);
	/* Files that could not be built from the vault's answer said so
	 * themselves, and left err as it was.  A disabled secret is a
	 * closed file, not trouble: the listing will say so too. */
	if (r == -EACCES && kvfs_vault_error_disabled(&err))
		log_debug("%s '%s': disabled", kvfs_collection_info(coll)->noun,
			  name);
	else if (r < 0 && (err.http_status || err.not_sent || err.message[0])) {
		kvfs_files_fetch_failed(&err, "cannot get %s '%s%s%s'",
					kvfs_collection_info(coll)->noun, name,
					version ? "/" : "",
					version ? version : "");
	}
	if (r < 0)
		/* What a reader can act on passes through; the rest of the
		 * backend's trouble is an I/O error. */
		return r == -ENOENT || r == -EACCES ? r : -EIO;
	return 0;
}

static int versions_fetch(struct kvfs_cache *cache, enum kvfs_collection coll,
			  const char *name, struct kvfs_versions **ret)
{
	struct kvfs_versions *v;
	struct kvfs_error err;
	int r;

	v = kvfs_versions_new();
	if (!v)
		return -ENOMEM;
	kvfs_error_clear(&err);
	r = kvfs_vault_list_versions(cache->vault, coll, name, &v->list, &err);
	if (r < 0) {
		kvfs_files_fetch_failed(
			&err, "cannot list the versions of '%s'", name);
		kvfs_versions_unref(v);
		return r == -ENOENT || r == -EACCES ? r : -EIO;
	}
	*ret = v;
	return 0;
}

/* Fetch what a slot (coll, key) names. */
static int obj_fetch(struct kvfs_cache *cache, enum kvfs_collection coll,
		     const char *key, enum obj_kind kind, void **ret)
{
	char name[256];
	const char *slash = strchr(key, '/');

	key_name(key, name, sizeof(name));
	if (kind == OBJ_VERSIONS)
		return versions_fetch(cache, coll, name,
				      (struct kvfs_versions **)ret);
	return files_fetch(cache, coll, name, slash ? slash + 1 : NULL,
			   (struct kvfs_files **)ret);
}

/* When a reader that begins to wait now gives up (kvfs_now_ms() time). */
static int64_t reader_deadline(const struct kvfs_cache *cache)
{
	unsigned seconds =
		cache->config ? cache->config->deadline : KVFS_DEFAULT_DEADLINE;

	return kvfs_now_ms() + 1000 * (int64_t)(seconds ? seconds : 1);
}

/* Wait for a flight someone else started; the lock is held on entry and on
 * return.  Returns the flight's result, with a files reference taken. */
static int flight_wait_locked(struct kvfs_cache *cache, struct flight *fl,
			      enum kvfs_collection coll, const char *name,
			      void **ret, struct kvfs_log_deferred *why)
{
	int r;

	fl->refs++;
	if (kvfs_flight_wait_locked(&fl->f, &cache->lock, &cache->cond,
				    reader_deadline(cache), &r) < 0) {
		log_defer_warning_ratelimited(
			why,
			"%s '%s': no answer from the vault within "
			"the deadline",
			kvfs_collection_info(coll)->noun, name);
		flight_unref_locked(fl);
		return -EIO;
	}
	if (r == 0)
		*ret = obj_ref(fl->kind, fl->obj);
	flight_unref_locked(fl);
	return r;
}

/* Fetch as the loader of a slot; the lock is held on entry and on return,
 * and dropped for the vault call. */
static int flight_run_locked(struct kvfs_cache *cache, struct slot *s,
			     const char *key, void **ret)
{
	enum kvfs_collection coll = s->coll;
	enum obj_kind kind = s->kind;
	void *obj = NULL;
	struct flight *fl;
	char name[256];
	int64_t next;
	ssize_t i;
	int r;

	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	fl->refs = 1;
	fl->kind = kind;
	(void)kvfs_flight_begin_locked(&fl->f);
	s->state = SLOT_LOADING;
	s->stale = false;
	s->flight = fl;

	pthread_mutex_unlock(&cache->lock);
	r = obj_fetch(cache, coll, key, kind, &obj);
	/* The kernel sends one LOOKUP of a name at a time: the callers
	 * queued behind this one would each wait their whole deadline for
	 * the same failure.  While the vault backs off, they get it at once. */
	next = r == -EIO ? kvfs_vault_next_attempt_ms(cache->vault) : 0;
	if (next > 0 && next < kvfs_now_ms() + FAILED_MIN_MS)
		next = kvfs_now_ms() + FAILED_MIN_MS;
	pthread_mutex_lock(&cache->lock);

	/* The slot cannot have gone: a loading slot is never removed. */
	i = slot_index_locked(cache, coll, key);
	s = cache->slots[i];
	s->flight = NULL;
	if (r == 0 && !s->stale) {
		s->state = SLOT_READY;
		s->obj = obj_ref(kind, obj);
		/* What the directory shows, until the slot lets it go. */
		if (kind == OBJ_FILES && !strchr(key, '/'))
			kvfs_files_set_current(obj, true);
	} else if (next > 0 && !s->stale) {
		s->state = SLOT_FAILED;
		s->failed_r = r;
		s->failed_until = next;
	} else {
		s->state = SLOT_NONE;
	}
	key_name(s->key, name, sizeof(name));
	if (s->stale && !kvfs_listing_find(listing_locked(cache, coll), name))
		slot_remove_locked(cache, (size_t)i);

	fl->obj = obj;
	kvfs_flight_end_locked(&fl->f, &cache->cond, r);

	if (r == 0)
		*ret = obj_ref(kind, obj);
	flight_unref_locked(fl);
	return r;
}

/* What object name (any spelling) of coll and version/kind name: the
 * latest files (version NULL, OBJ_FILES), a version's files, or the
 * versions listing (OBJ_VERSIONS).  fetch false: only what is already
 * there, else -ENODATA.  A collection the mount does not show has no
 * objects. */
static int obj_get(struct kvfs_cache *cache, enum kvfs_collection coll,
		   const char *name, const char *version, enum obj_kind kind,
		   bool fetch, void **ret)
{
	struct kvfs_log_deferred why = {0};
	const struct kvfs_entry *e;
	_cleanup_free_ char *key = NULL;
	void *obj = NULL;
	struct slot *s;
	int r;

	pthread_mutex_lock(&cache->lock);
	e = kvfs_listing_find(listing_locked(cache, coll), name);
	if (!e) {
		r = -ENOENT;
		goto out;
	}
	/* The GET uses the vault's spelling, whatever the reader typed. */
	if (asprintf(&key, "%s%s%s", e->item.name,
		     kind == OBJ_VERSIONS || version ? "/" : "",
		     version ? version : "") < 0) {
		key = NULL;
		r = -ENOMEM;
		goto out;
	}

	if (!fetch) {
		ssize_t i = slot_index_locked(cache, coll, key);

		r = -ENODATA;
		if (i >= 0 && cache->slots[i]->state == SLOT_READY &&
		    (kind != OBJ_FILES ||
		     files_fresh_locked(cache, cache->slots[i]->obj, &why))) {
			obj = obj_ref(kind, cache->slots[i]->obj);
			r = 0;
		}
		goto out;
	}

	r = slot_get_locked(cache, coll, key, kind, &s);
	if (r < 0)
		goto out;
	if (s->state == SLOT_FAILED && kvfs_now_ms() >= s->failed_until)
		s->state = SLOT_NONE;
	kvfs_metrics_cache(kind == OBJ_VERSIONS ? KVFS_OBJ_VERSIONS
						: KVFS_OBJ_CERTIFICATE,
			   s->state != SLOT_NONE);
	switch (s->state) {
	case SLOT_FAILED:
		r = s->failed_r;
		break;
	case SLOT_READY:
		/* Too stale: EIO until a revalidation succeeds, rather than
		 * a fetch that would join the failing vault's queue. */
		if (kind == OBJ_FILES &&
		    !files_fresh_locked(cache, s->obj, &why)) {
			r = -EIO;
			break;
		}
		obj = obj_ref(kind, s->obj);
		r = 0;
		break;
	case SLOT_LOADING:
		r = flight_wait_locked(cache, s->flight, coll, key, &obj, &why);
		break;
	case SLOT_NONE:
		r = flight_run_locked(cache, s, key, &obj);
		break;
	}
out:
	pthread_mutex_unlock(&cache->lock);
	kvfs_log_flush(&why);
	if (r < 0)
		return r;
	*ret = obj;
	return 0;
}

int kvfs_cache_files(struct kvfs_cache *cache, enum kvfs_collection coll,
		     const char *name, struct kvfs_files **ret)
{
	return obj_get(cache, coll, name, NULL, OBJ_FILES, true, (void **)ret);
}

int kvfs_cache_files_peek(struct kvfs_cache *cache, enum kvfs_collection coll,
			  const char *name, struct kvfs_files **ret)
{
	return obj_get(cache, coll, name, NULL, OBJ_FILES, false, (void **)ret);
}

int kvfs_cache_version_files(struct kvfs_cache *cache,
			     enum kvfs_collection coll, const char *name,
			     const char *version, struct kvfs_files **ret)
{
	if (!version || !kvfs_vault_object_name_valid(version))
		return -ENOENT;
	return obj_get(cache, coll, name, version, OBJ_FILES, true,
		       (void **)ret);
}

int kvfs_cache_versions(struct kvfs_cache *cache, enum kvfs_collection coll,
			const char *name, struct kvfs_versions **ret)
{
	return obj_get(cache, coll, name, NULL, OBJ_VERSIONS, true,
		       (void **)ret);
}

/* ---- the secret of one version: certsecret.c ---- */

int kvfs_cache_secret(struct kvfs_cache *cache, struct kvfs_files *f,
		      const struct kvfs_pki_secret_files **ret)
{
	return kvfs_certsecrets_get(cache->secrets, f, true,
				    reader_deadline(cache), ret);
}

int kvfs_cache_secret_peek(struct kvfs_cache *cache, struct kvfs_files *f,
			   const struct kvfs_pki_secret_files **ret)
{
	return kvfs_certsecrets_get(cache->secrets, f, false,
				    reader_deadline(cache), ret);
}

/* ---- pins: one process, one version per directory ---- */

void kvfs_cache_set_pin_seconds(struct kvfs_cache *cache, unsigned seconds)
{
	pthread_mutex_lock(&cache->lock);
	cache->pin_seconds = seconds;
	pthread_mutex_unlock(&cache->lock);
}

int kvfs_cache_files_for(struct kvfs_cache *cache, enum kvfs_collection coll,
			 const char *name, int64_t tgid, unsigned file,
			 struct kvfs_files **ret)
{
	struct kvfs_log_deferred why = {0};
	struct kvfs_files *f = NULL;
	int64_t now = kvfs_now_ms();
	int r = 0;

	pthread_mutex_lock(&cache->lock);
	/* Every open renews the pin, so that it covers the whole sequence
	 * of opens, however long, as long as no two are further apart than
	 * the pin's lifetime and no file is opened twice. */
	f = kvfs_pins_renew(cache->pins, tgid, coll, name, file, now,
			    now + 1000 * (int64_t)cache->pin_seconds);
	if (f && !files_fresh_locked(cache, f, &why)) {
		f = NULL;
		r = -EIO;
	} else if (f) {
		kvfs_files_ref(f);
	}
	pthread_mutex_unlock(&cache->lock);
	kvfs_log_flush(&why);
	if (r < 0)
		return r;
	if (f) {
		*ret = f;
		return 0;
	}

	r = kvfs_cache_files(cache, coll, name, &f);
	if (r < 0)
		return r;

	pthread_mutex_lock(&cache->lock);
	/* Without memory for a pin the open still works; it is just not
	 * pinned.  The pin's time starts now, after the fetch. */
	int64_t until = kvfs_now_ms() + 1000 * (int64_t)cache->pin_seconds;
	const char *cert_name = kvfs_files_name(f) ? kvfs_files_name(f) : name;
	if (cache->pin_seconds > 0 &&
	    kvfs_pins_add(cache->pins, tgid, coll, cert_name, file, f, until) ==
		    0)
		kvfs_files_ref(f);
	pthread_mutex_unlock(&cache->lock);
	*ret = f;
	return 0;
}
