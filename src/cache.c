/* What the tree is made of.  The listing is an immutable snapshot, built off
 * the lock and swapped in under it; readers take a reference.  The files of
 * a certificate live in a per-name slot: the first caller fetches the bundle
 * with the lock released while later callers wait on the shared flight and
 * take its result, success or failure; a failure is not kept, so the next
 * call tries again.  Files are refcounted so that an open file keeps its
 * bytes whatever happens to the slot.  One mutex and one condition variable
 * for the whole cache; the mutex is never held across a vault call. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache.h"
#include "log.h"
#include "pki.h"
#include "util.h"

/* One fetch in progress.  The loader and every waiter hold a reference;
 * the result stays readable until the last of them lets go. */
struct flight {
	int refs;
	bool done;
	int r;
	struct kvfs_files *files; /* a reference, on success */
};

enum slot_state {
	SLOT_NONE,
	SLOT_LOADING,
	SLOT_READY,
};

struct slot {
	char *name; /* the vault's spelling */
	enum slot_state state;
	/* A revalidation saw the certificate change while it was loading:
	 * the result goes to the waiters but is not kept. */
	bool stale;
	struct flight *flight;	  /* SLOT_LOADING */
	struct kvfs_files *files; /* SLOT_READY: the slot's reference */
};

struct kvfs_cache {
	const struct kvfs_config *config;
	struct kvfs_vault *vault;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* a flight landed */

	struct kvfs_listing *listing; /* never NULL after kvfs_cache_new */
	struct slot **slots;	      /* sorted by name, case-insensitively */
	size_t nslots, aslots;
};

static void listing_free(struct kvfs_listing *l)
{
	free(l->entries);
	kvfs_cert_list_clear(&l->owned);
	free(l);
}

void kvfs_listing_unref(struct kvfs_listing *l)
{
	if (l && __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
		listing_free(l);
}

static struct kvfs_listing *listing_ref(struct kvfs_listing *l)
{
	__atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
	return l;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct kvfs_entry *x = a, *y = b;

	return strcasecmp(x->item.name, y->item.name);
}

static int key_cmp(const void *key, const void *e)
{
	return strcasecmp(key, ((const struct kvfs_entry *)e)->item.name);
}

const struct kvfs_entry *kvfs_listing_find(const struct kvfs_listing *l,
					   const char *name)
{
	if (!l || !name || l->n == 0)
		return NULL;
	return bsearch(name, l->entries, l->n, sizeof(l->entries[0]), key_cmp);
}

/* Take over the items of a vault list as a sorted listing.  Names that
 * are not valid Key Vault names never become paths, and a name the vault
 * listed twice (in any case) is kept once.  The list is left empty. */
static int listing_build(struct kvfs_cert_list *list, struct kvfs_listing **ret)
{
	struct kvfs_listing *l = calloc(1, sizeof(*l));
	size_t n = 0;

	if (!l)
		return -ENOMEM;
	l->entries = calloc(list->n ? list->n : 1, sizeof(l->entries[0]));
	if (!l->entries) {
		free(l);
		return -ENOMEM;
	}
	l->owned = *list;
	memset(list, 0, sizeof(*list));

	for (size_t i = 0; i < l->owned.n; i++) {
		const struct kvfs_cert_item *it = &l->owned.items[i];

		if (!it->name || !kvfs_vault_name_valid(it->name)) {
			log_warning_ratelimited(
				"ignoring certificate '%.140s' in the "
				"listing: not a valid Key Vault name",
				it->name ? it->name : "");
			continue;
		}
		l->entries[n++].item = *it;
	}

	qsort(l->entries, n, sizeof(l->entries[0]), entry_cmp);
	for (size_t i = 0; i < n; i++) {
		if (l->n > 0 &&
		    entry_cmp(&l->entries[l->n - 1], &l->entries[i]) == 0) {
			log_warning("certificate '%s' listed twice",
				    l->entries[i].item.name);
			continue;
		}
		l->entries[l->n] = l->entries[i];
		if (l->entries[l->n].item.attrs.updated > l->updated_max)
			l->updated_max = l->entries[l->n].item.attrs.updated;
		l->n++;
	}
	l->loaded_at = time(NULL);
	l->refs = 1;
	*ret = l;
	return 0;
}

static void files_free(struct kvfs_files *f)
{
	kvfs_cert_bundle_clear(&f->bundle);
	free(f->cert_pem);
	free(f);
}

void kvfs_files_unref(struct kvfs_files *f)
{
	if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
		files_free(f);
}

static struct kvfs_files *files_ref(struct kvfs_files *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	return f;
}

static void flight_unref_locked(struct flight *fl)
{
	if (--fl->refs > 0)
		return;
	kvfs_files_unref(fl->files);
	free(fl);
}

int kvfs_cache_new(const struct kvfs_config *c, struct kvfs_vault *v,
		   struct kvfs_cache **ret)
{
	struct kvfs_cache *cache;
	pthread_condattr_t ca;
	int r;

	cache = calloc(1, sizeof(*cache));
	if (!cache)
		return -ENOMEM;
	cache->listing = calloc(1, sizeof(*cache->listing));
	if (!cache->listing) {
		free(cache);
		return -ENOMEM;
	}
	cache->listing->refs = 1;
	cache->config = c;
	cache->vault = v;

	/* Waits are bounded by the deadline on the monotonic clock, so a
	 * clock step never makes a reader wait longer. */
	r = pthread_condattr_init(&ca);
	if (r == 0) {
		r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (r == 0)
			r = pthread_cond_init(&cache->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (r != 0) {
		free(cache->listing);
		free(cache);
		return -r;
	}
	pthread_mutex_init(&cache->lock, NULL);

	*ret = cache;
	return 0;
}

static void slot_free(struct slot *s)
{
	kvfs_files_unref(s->files);
	free(s->name);
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
	kvfs_listing_unref(cache->listing);
	pthread_cond_destroy(&cache->cond);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

struct kvfs_listing *kvfs_cache_listing(struct kvfs_cache *cache)
{
	struct kvfs_listing *l;

	pthread_mutex_lock(&cache->lock);
	l = listing_ref(cache->listing);
	pthread_mutex_unlock(&cache->lock);
	return l;
}

/* Index of name in the slot table, or where it would go (~index). */
static ssize_t slot_index_locked(struct kvfs_cache *cache, const char *name)
{
	size_t lo = 0, hi = cache->nslots;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(name, cache->slots[mid]->name);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return ~(ssize_t)lo;
}

static void slot_remove_locked(struct kvfs_cache *cache, size_t i)
{
	slot_free(cache->slots[i]);
	memmove(&cache->slots[i], &cache->slots[i + 1],
		(cache->nslots - i - 1) * sizeof(cache->slots[0]));
	cache->nslots--;
}

static int slot_get_locked(struct kvfs_cache *cache, const char *name,
			   struct slot **ret)
{
	ssize_t i = slot_index_locked(cache, name);
	struct slot *s;
	size_t at;

	if (i >= 0) {
		*ret = cache->slots[i];
		return 0;
	}
	at = (size_t)~i;
	if (cache->nslots == cache->aslots) {
		size_t na = cache->aslots ? cache->aslots * 2 : 16;
		struct slot **ns = realloc(cache->slots, na * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		cache->slots = ns;
		cache->aslots = na;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->name = strdup(name);
	if (!s->name) {
		free(s);
		return -ENOMEM;
	}
	memmove(&cache->slots[at + 1], &cache->slots[at],
		(cache->nslots - at) * sizeof(cache->slots[0]));
	cache->slots[at] = s;
	cache->nslots++;
	*ret = s;
	return 0;
}

static bool item_changed(const struct kvfs_cert_item *a,
			 const struct kvfs_cert_item *b)
{
	if (a->attrs.updated != b->attrs.updated)
		return true;
	if (!a->x5t != !b->x5t)
		return true;
	return a->x5t && strcmp(a->x5t, b->x5t) != 0;
}

/* Swap in a new listing and forget the files it makes out of date: those
 * of certificates that are gone, or whose updated or x5t changed.  The
 * seam for revalidation, which will also tell the kernel. */
static void listing_replace_locked(struct kvfs_cache *cache,
				   struct kvfs_listing *l)
{
	struct kvfs_listing *old = cache->listing;

	for (size_t i = cache->nslots; i-- > 0;) {
		struct slot *s = cache->slots[i];
		const struct kvfs_entry *was = kvfs_listing_find(old, s->name);
		const struct kvfs_entry *now = kvfs_listing_find(l, s->name);
		bool changed =
			!now || !was || item_changed(&was->item, &now->item);

		if (!changed)
			continue;
		if (s->state == SLOT_LOADING)
			s->stale = true; /* the loader cleans up */
		else
			slot_remove_locked(cache, i);
	}

	cache->listing = l;
	kvfs_listing_unref(old);
}

int kvfs_cache_load(struct kvfs_cache *cache, struct kvfs_error *err)
{
	struct kvfs_cert_list list = {0};
	struct kvfs_listing *l;
	int r;

	r = kvfs_vault_list_certificates(cache->vault, &list, err);
	if (r < 0)
		return r;
	r = listing_build(&list, &l);
	if (r < 0) {
		kvfs_cert_list_clear(&list);
		kvfs_error_set_message(err, "out of memory");
		return r;
	}

	pthread_mutex_lock(&cache->lock);
	listing_replace_locked(cache, l);
	pthread_mutex_unlock(&cache->lock);
	return 0;
}

/* The network part of a first use: GET the bundle, build the files.  Runs
 * without the lock. */
static int files_fetch(struct kvfs_cache *cache, const char *name,
		       struct kvfs_files **ret)
{
	struct kvfs_error err;
	struct kvfs_files *f;
	char msg[512];
	int r;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->refs = 1;

	kvfs_error_clear(&err);
	r = kvfs_vault_get_certificate(cache->vault, name, NULL, &f->bundle,
				       &err);
	if (r < 0) {
		kvfs_error_describe(&err, msg, sizeof(msg));
		log_warning_ratelimited("cannot get certificate '%s': %s", name,
					msg);
		free(f);
		/* What a reader can act on passes through; the rest of the
		 * backend's trouble is an I/O error. */
		return r == -ENOENT || r == -EACCES ? r : -EIO;
	}

	f->fetched_at = time(NULL);
	r = kvfs_pki_der_to_pem(f->bundle.der, f->bundle.der_len, &f->cert_pem,
				&f->cert_pem_len);
	if (r < 0) {
		log_warning("certificate '%s': the vault's 'cer' is not a "
			    "certificate",
			    name);
		files_free(f);
		return -EIO;
	}

	*ret = f;
	return 0;
}

static void deadline_after(struct timespec *ts, unsigned seconds)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += seconds ? seconds : 1;
}

/* Wait for a flight someone else started; the lock is held on entry and on
 * return.  Returns the flight's result, with a files reference taken. */
static int flight_wait_locked(struct kvfs_cache *cache, struct flight *fl,
			      const char *name, struct kvfs_files **ret)
{
	struct timespec until;
	int r;

	fl->refs++;
	deadline_after(&until, cache->config ? cache->config->deadline : 10);
	while (!fl->done) {
		if (pthread_cond_timedwait(&cache->cond, &cache->lock,
					   &until) == ETIMEDOUT &&
		    !fl->done) {
			log_warning_ratelimited(
				"certificate '%s': no answer from the "
				"vault within the deadline",
				name);
			flight_unref_locked(fl);
			return -EIO;
		}
	}
	r = fl->r;
	if (r == 0)
		*ret = files_ref(fl->files);
	flight_unref_locked(fl);
	return r;
}

/* Fetch as the loader of a slot; the lock is held on entry and on return,
 * and dropped for the vault call. */
static int flight_run_locked(struct kvfs_cache *cache, struct slot *s,
			     const char *name, struct kvfs_files **ret)
{
	struct kvfs_files *f = NULL;
	struct flight *fl;
	ssize_t i;
	int r;

	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	fl->refs = 1;
	s->state = SLOT_LOADING;
	s->stale = false;
	s->flight = fl;

	pthread_mutex_unlock(&cache->lock);
	r = files_fetch(cache, name, &f);
	pthread_mutex_lock(&cache->lock);

	/* The slot cannot have gone: a loading slot is never removed. */
	i = slot_index_locked(cache, name);
	s = cache->slots[i];
	s->flight = NULL;
	if (r == 0 && !s->stale) {
		s->state = SLOT_READY;
		s->files = files_ref(f);
	} else {
		s->state = SLOT_NONE;
	}
	if (s->stale && !kvfs_listing_find(cache->listing, s->name))
		slot_remove_locked(cache, (size_t)i);

	fl->done = true;
	fl->r = r;
	fl->files = f;
	pthread_cond_broadcast(&cache->cond);

	if (r == 0)
		*ret = files_ref(f);
	flight_unref_locked(fl);
	return r;
}

static int files_get(struct kvfs_cache *cache, const char *name, bool fetch,
		     struct kvfs_files **ret)
{
	struct kvfs_files *f = NULL;
	const struct kvfs_entry *e;
	_cleanup_free_ char *canonical = NULL;
	struct slot *s;
	int r;

	pthread_mutex_lock(&cache->lock);
	e = kvfs_listing_find(cache->listing, name);
	if (!e) {
		r = -ENOENT;
		goto out;
	}
	/* The GET uses the vault's spelling, whatever the reader typed. */
	canonical = strdup(e->item.name);
	if (!canonical) {
		r = -ENOMEM;
		goto out;
	}

	if (!fetch) {
		ssize_t i = slot_index_locked(cache, canonical);

		r = -ENODATA;
		if (i >= 0 && cache->slots[i]->state == SLOT_READY) {
			f = files_ref(cache->slots[i]->files);
			r = 0;
		}
		goto out;
	}

	r = slot_get_locked(cache, canonical, &s);
	if (r < 0)
		goto out;
	switch (s->state) {
	case SLOT_READY:
		f = files_ref(s->files);
		r = 0;
		break;
	case SLOT_LOADING:
		r = flight_wait_locked(cache, s->flight, canonical, &f);
		break;
	case SLOT_NONE:
		r = flight_run_locked(cache, s, canonical, &f);
		break;
	}
out:
	pthread_mutex_unlock(&cache->lock);
	if (r < 0)
		return r;
	*ret = f;
	return 0;
}

int kvfs_cache_files(struct kvfs_cache *cache, const char *name,
		     struct kvfs_files **ret)
{
	return files_get(cache, name, true, ret);
}

int kvfs_cache_files_peek(struct kvfs_cache *cache, const char *name,
			  struct kvfs_files **ret)
{
	return files_get(cache, name, false, ret);
}
