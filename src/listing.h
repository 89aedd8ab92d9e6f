/* A listing as an immutable snapshot: the objects of one collection as the
 * vault listed them and the mount's filter lets through (kvfs_listing), or
 * the versions of one object (kvfs_versions).  Built once, never changed,
 * shared by reference: every reader holds one for as long as it looks, so
 * a snapshot outlives its replacement.  A collection's listing is sorted
 * by name without case, holds only valid Key Vault names and each name
 * once; the diff of two of them is a pure walk.  No locks and no I/O but
 * a warning per name dropped; references are atomic, so any thread may
 * take and drop them. */
#ifndef KVFS_LISTING_H
#define KVFS_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collection.h"
#include "filter.h"
#include "vault.h"

/* One object as its collection's listing shows it (a view; the listing owns the
 * strings). */
struct kvfs_entry {
	struct kvfs_object_item item;
};

/* An immutable listing; entries sorted by name, case-insensitively.  Its
 * references and the strings it owns are private to listing.c. */
struct kvfs_listing {
	struct kvfs_entry *entries;
	size_t n;
	int64_t updated_max; /* newest attrs.updated, 0 when empty */
	size_t filtered;     /* objects the filter left out */
	int64_t loaded_at;   /* when it was built (kvfs_wall_now()) */
};

/* An empty listing, referenced once; NULL without memory. */
struct kvfs_listing *kvfs_listing_new_empty(void);
/* Take over the items of list, a listing of collection coll, as a sorted
 * listing referenced once.  A name that is not a valid Key Vault name
 * never becomes a path, and a name listed twice (in any case) is kept
 * once (which of them is not said); each dropped is a warning.  An item
 * that backs a certificate (managed) is not the collection's to show and
 * is dropped silently; an item filter rejects (NULL: none is) is left out
 * and counted in filtered, so nothing is ever fetched for it.
 * The list is left empty on success; -ENOMEM leaves it as it was. */
int kvfs_listing_build(enum kvfs_collection coll, struct kvfs_object_list *list,
		       const struct kvfs_filter *filter,
		       struct kvfs_listing **ret);
struct kvfs_listing *kvfs_listing_ref(struct kvfs_listing *l);
void kvfs_listing_unref(struct kvfs_listing *l);
/* Case-insensitive lookup in a listing; NULL when absent. */
const struct kvfs_entry *kvfs_listing_find(const struct kvfs_listing *l,
					   const char *name);

/* Whether the vault changed the object between two listings of it: its
 * updated time or its x5t differ. */
bool kvfs_listing_item_changed(const struct kvfs_object_item *a,
			       const struct kvfs_object_item *b);

enum kvfs_listing_diff {
	KVFS_LISTING_GONE,
	KVFS_LISTING_NEW,
	KVFS_LISTING_CHANGED, /* kvfs_listing_item_changed() */
};

/* Hand fn each object that differs from listing old to l, in name order:
 * a is old's item (NULL when new), b is l's (NULL when gone).  Objects
 * that did not change are not handed. */
void kvfs_listing_diff(const struct kvfs_listing *old,
		       const struct kvfs_listing *l,
		       void (*fn)(void *data, enum kvfs_listing_diff d,
				  const struct kvfs_object_item *a,
				  const struct kvfs_object_item *b),
		       void *data);

/* The versions of one object, as the vault lists them (oldest first); the
 * items carry their version.  Its references are private to listing.c. */
struct kvfs_versions {
	struct kvfs_object_list list;
};

/* An empty versions listing, referenced once, for the caller to fill
 * before it shares it; NULL without memory. */
struct kvfs_versions *kvfs_versions_new(void);
struct kvfs_versions *kvfs_versions_ref(struct kvfs_versions *v);
void kvfs_versions_unref(struct kvfs_versions *v);
/* The item of version (case-insensitive), or NULL. */
const struct kvfs_object_item *kvfs_versions_find(const struct kvfs_versions *v,
						  const char *version);
/* The diff of two versions listings of one object, a step at a time: the
 * next version of old, from *k on, that nv lists no more or changed (its
 * updated, x5t, enabled, nbf or exp differ); NULL after the last.  Start
 * with *k = 0.  A version nv adds is not one of them. */
const struct kvfs_object_item *
kvfs_versions_next_changed(const struct kvfs_versions *old,
			   const struct kvfs_versions *nv, size_t *k);

#endif
