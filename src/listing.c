/* Listing snapshots: a collection's listing built from the vault's list
 * (sorted, invalid and repeated names dropped, the filter applied), its
 * lookup and the diff of two of them, and the versions listing of an
 * object.  Immutable once built; the reference counts are atomic, and
 * nothing else is shared.  Logs a warning per name dropped, from the
 * building thread. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "listing.h"
#include "log.h"
#include "util.h"

/* A kvfs_listing and what is kept with it: its entries own their items'
 * strings. */
struct listing {
	struct kvfs_listing pub;
	int refs;
};

static struct listing *listing_of(struct kvfs_listing *l)
{
	return (struct listing *)((char *)l - offsetof(struct listing, pub));
}

static struct listing *listing_new(void)
{
	struct listing *p = calloc(1, sizeof(*p));

	if (p)
		p->refs = 1;
	return p;
}

struct kvfs_listing *kvfs_listing_new_empty(void)
{
	struct listing *p = listing_new();

	return p ? &p->pub : NULL;
}

static void listing_free(struct listing *p)
{
	for (size_t i = 0; i < p->pub.n; i++)
		kvfs_object_item_clear(&p->pub.entries[i].item);
	free(p->pub.entries);
	free(p);
}

void kvfs_listing_unref(struct kvfs_listing *l)
{
	if (l &&
	    __atomic_sub_fetch(&listing_of(l)->refs, 1, __ATOMIC_ACQ_REL) == 0)
		listing_free(listing_of(l));
}

struct kvfs_listing *kvfs_listing_ref(struct kvfs_listing *l)
{
	__atomic_add_fetch(&listing_of(l)->refs, 1, __ATOMIC_RELAXED);
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

/* The items of list the listing keeps move into its entries, and the
 * others are freed at once, with list's array: a listing holds each item
 * once, and nothing of those it does not show. */
int kvfs_listing_build(enum kvfs_collection coll, struct kvfs_object_list *list,
		       const struct kvfs_filter *filter,
		       struct kvfs_listing **ret)
{
	const char *noun = kvfs_collection_info(coll)->noun;
	struct listing *p = listing_new();
	struct kvfs_entry *shrunk;
	struct kvfs_listing *l;
	size_t n = 0;

	if (!p)
		return -ENOMEM;
	l = &p->pub;
	l->entries = calloc(list->n ? list->n : 1, sizeof(l->entries[0]));
	if (!l->entries) {
		free(p);
		return -ENOMEM;
	}

	for (size_t i = 0; i < list->n; i++) {
		struct kvfs_object_item *it = &list->items[i];

		if (!it->name || !kvfs_vault_object_name_valid(it->name)) {
			log_warning_ratelimited(
				"ignoring %s '%.140s' in the "
				"listing: not a valid Key Vault name",
				noun, it->name ? it->name : "");
			kvfs_object_item_clear(it);
			continue;
		}
		/* Backs a certificate: not shown, and not counted filtered. */
		if (it->managed) {
			kvfs_object_item_clear(it);
			continue;
		}
		if (filter && !kvfs_filter_match(filter, it)) {
			l->filtered++;
			kvfs_object_item_clear(it);
			continue;
		}
		l->entries[n++].item = TAKE_STRUCT(*it);
	}
	free(list->items);
	*list = (struct kvfs_object_list){0};

	qsort(l->entries, n, sizeof(l->entries[0]), entry_cmp);
	for (size_t i = 0; i < n; i++) {
		if (l->n > 0 &&
		    entry_cmp(&l->entries[l->n - 1], &l->entries[i]) == 0) {
			log_warning("%s '%s' listed twice", noun,
				    l->entries[i].item.name);
			kvfs_object_item_clear(&l->entries[i].item);
			continue;
		}
		l->entries[l->n] = l->entries[i];
		if (l->entries[l->n].item.attrs.updated > l->updated_max)
			l->updated_max = l->entries[l->n].item.attrs.updated;
		l->n++;
	}
	/* What the vault listed but the listing does not keep is not held
	 * either; a failure to shrink keeps the larger array. */
	shrunk = realloc(l->entries, (l->n ? l->n : 1) * sizeof(l->entries[0]));
	if (shrunk)
		l->entries = shrunk;
	l->loaded_at = kvfs_wall_now();
	*ret = l;
	return 0;
}

bool kvfs_listing_item_changed(const struct kvfs_object_item *a,
			       const struct kvfs_object_item *b)
{
	if (a->attrs.updated != b->attrs.updated)
		return true;
	if (!a->x5t != !b->x5t)
		return true;
	return a->x5t && strcmp(a->x5t, b->x5t) != 0;
}

/* Both listings are sorted case-insensitively, so one walk through both
 * finds every difference. */
void kvfs_listing_diff(const struct kvfs_listing *old,
		       const struct kvfs_listing *l,
		       void (*fn)(void *data, enum kvfs_listing_diff d,
				  const struct kvfs_object_item *a,
				  const struct kvfs_object_item *b),
		       void *data)
{
	size_t i = 0, j = 0;

	while (i < old->n || j < l->n) {
		const struct kvfs_object_item *a =
			i < old->n ? &old->entries[i].item : NULL;
		const struct kvfs_object_item *b =
			j < l->n ? &l->entries[j].item : NULL;
		int c = !a ? 1 : !b ? -1 : strcasecmp(a->name, b->name);

		if (c < 0) {
			fn(data, KVFS_LISTING_GONE, a, NULL);
			i++;
		} else if (c > 0) {
			fn(data, KVFS_LISTING_NEW, NULL, b);
			j++;
		} else {
			if (kvfs_listing_item_changed(a, b))
				fn(data, KVFS_LISTING_CHANGED, a, b);
			i++;
			j++;
		}
	}
}

/* A kvfs_versions and what is kept with it. */
struct versions {
	struct kvfs_versions pub;
	int refs;
};

static struct versions *versions_of(struct kvfs_versions *v)
{
	return (struct versions *)((char *)v - offsetof(struct versions, pub));
}

struct kvfs_versions *kvfs_versions_new(void)
{
	struct versions *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->refs = 1;
	return &p->pub;
}

void kvfs_versions_unref(struct kvfs_versions *v)
{
	if (v && __atomic_sub_fetch(&versions_of(v)->refs, 1,
				    __ATOMIC_ACQ_REL) == 0) {
		kvfs_object_list_clear(&v->list);
		free(versions_of(v));
	}
}

struct kvfs_versions *kvfs_versions_ref(struct kvfs_versions *v)
{
	__atomic_add_fetch(&versions_of(v)->refs, 1, __ATOMIC_RELAXED);
	return v;
}

const struct kvfs_object_item *kvfs_versions_find(const struct kvfs_versions *v,
						  const char *version)
{
	if (!v || !version)
		return NULL;
	for (size_t i = 0; i < v->list.n; i++)
		if (v->list.items[i].version &&
		    strcasecmp(v->list.items[i].version, version) == 0)
			return &v->list.items[i];
	return NULL;
}

static bool version_changed(const struct kvfs_object_item *a,
			    const struct kvfs_object_item *b)
{
	return kvfs_listing_item_changed(a, b) ||
	       a->attrs.enabled != b->attrs.enabled ||
	       a->attrs.nbf != b->attrs.nbf || a->attrs.exp != b->attrs.exp;
}

const struct kvfs_object_item *
kvfs_versions_next_changed(const struct kvfs_versions *old,
			   const struct kvfs_versions *nv, size_t *k)
{
	while (*k < old->list.n) {
		const struct kvfs_object_item *a = &old->list.items[(*k)++];
		const struct kvfs_object_item *b;

		if (!a->version)
			continue;
		b = kvfs_versions_find(nv, a->version);
		if (!b || version_changed(a, b))
			return a;
	}
	return NULL;
}
