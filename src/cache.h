/* What the tree is made of: the current listing of each collection the
 * mount shows (an immutable, refcounted snapshot per collection) and, per
 * object, keyed by (collection, name), the bundle of the latest version, the
 * bundle of any version looked at, the versions listing and each bundle's
 * secret, all fetched on first use with single-flight, so concurrent first
 * readers share one request.  Readers hold references, so an open file's
 * bytes never change.  Revalidation re-reads the listings (one listing
 * flight, of all the collections, at a time), swaps in each that succeeded,
 * drops what changed, and reports what the kernel must forget
 * (kvfs_cache_on_change()); while a collection's listing fails, its cached
 * files are served for up to max_stale=.  Knows nothing of HTTP details.
 * Thread-safe; never holds its lock across a vault call. */
#ifndef KVFS_CACHE_H
#define KVFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collection.h"
#include "config.h"
#include "error.h"
#include "files.h"
#include "listing.h"
#include "pki.h"
#include "vault.h"

struct kvfs_cache;

/* Borrows c and v, which must outlive the cache; c says which collections
 * the mount shows (collections=) and what each listing lets through
 * (filter.h). */
int kvfs_cache_new(const struct kvfs_config *c, struct kvfs_vault *v,
		   struct kvfs_cache **ret);
void kvfs_cache_free(struct kvfs_cache *cache);

/* The collections the mount shows are those of collections=; the others
 * have no listing and no objects.  A load or a revalidation lists each
 * shown one in table order, as one listing flight: one at a time, its
 * callers share its result.  An object the filter leaves out is not in
 * its listing, so nothing of it is ever fetched, and a revalidation that
 * finds its tags changed reports it new or gone like any other.
 *
 * Fetch the listings and make current each that succeeded; the first
 * error goes to err, and a collection that failed keeps its listing.
 * Freshness (max_stale=) is per collection: a collection whose listing
 * fails serves its cached files stale, the others stay fresh.  Why not
 * one state for the mount: an identity may be refused one collection
 * (403, ForbiddenByRbac or an access policy's Forbidden) while it may list
 * the others, and a refusal of secrets must not freeze the certificates
 * (their rotations would never show).  So a refused collection's listing
 * is kept, under the stale rules, and the next collection is listed; any
 * other failure (the vault is failing or out of reach) ends the listing
 * there, and the collections not listed yet keep theirs, failing alike.
 * Called before mounting for the first listings, where any failure fails
 * the load (the first ends it: the mount is refused), and again to
 * revalidate: an object that disappeared, or whose updated or x5t changed,
 * loses its cached files (open files keep theirs) and gets a change
 * reported (kvfs_cache_on_change()).  At most one listing is in flight: a
 * caller that comes while one is shares its result.  A failure makes the
 * collection's cached files stale (max_stale=); a success makes them fresh
 * again and clears its error. */
int kvfs_cache_load(struct kvfs_cache *cache, struct kvfs_error *err);
/* The same for the background: each list page may take at most
 * page_budget_s seconds, retries included (0: the start-up budget).
 * After the listings, the versions listing of every object that has one
 * kept, of a collection whose listing succeeded, is fetched again:
 * versions that changed
 * (updated, x5t, enabled, nbf, exp) or went lose their files, and a
 * KVFS_CHANGE_VERSIONS is reported.  A versions listing that fails is kept
 * as it was. */
int kvfs_cache_revalidate(struct kvfs_cache *cache, unsigned page_budget_s,
			  struct kvfs_error *err);
/* A revalidation in flight lists no more versions (unmount); for good. */
void kvfs_cache_revalidate_stop(struct kvfs_cache *cache);

/* What a revalidation changed, for the kernel's caches to forget. */
enum kvfs_change_kind {
	KVFS_CHANGE_LISTING,  /* the collection's directory: names came or
				 went */
	KVFS_CHANGE_CHANGED,  /* an object's updated or x5t changed */
	KVFS_CHANGE_GONE,     /* an object left the vault */
	KVFS_CHANGE_VERSIONS, /* versions of an object came, went or
				 changed; the latest did not */
};

/* A change of object name of collection coll (name NULL: of the
 * collection's directory); the kernel keeps it by (coll, name). */
struct kvfs_change {
	enum kvfs_collection coll;
	enum kvfs_change_kind kind;
	const char *name; /* the vault's spelling; NULL for LISTING */
	const char *const *versions; /* the versions/<v>/ the tree showed;
					for VERSIONS those that changed */
	size_t nversions;
};

/* Who is told what a revalidation changed (kernel.c): fn is called with
 * the cache's lock held, at the swap of a listing (the first listing
 * excepted: it comes before the mount) and of a versions listing, with
 * the files the object's directory showed before the change (NULL:
 * none; a reference fn takes if it keeps them, with kvfs_files_ref()).
 * The lock order is cache -> fn's: fn must not take the cache's lock
 * (kvfs_files_ref() and kvfs_files_current() take none), nor log.
 * A negative return (-ENOMEM) is logged as a change the kernel is not
 * told about.  Set before the first kvfs_cache_load(); fn NULL: nobody. */
void kvfs_cache_on_change(struct kvfs_cache *cache,
			  int (*fn)(void *data, const struct kvfs_change *c,
				    struct kvfs_files *old),
			  void *data);

/* Whether the mount shows collection coll. */
bool kvfs_cache_has_collection(const struct kvfs_cache *cache,
			       enum kvfs_collection coll);
/* A reference to the current listing of coll; release with
 * kvfs_listing_unref.  NULL when the mount does not show coll. */
struct kvfs_listing *kvfs_cache_listing(struct kvfs_cache *cache,
					enum kvfs_collection coll);
/* The current listings of every collection at once (NULL for those the
 * mount does not show); a collection whose listing failed keeps an older
 * one.  Release each with kvfs_listing_unref. */
void kvfs_cache_listings(struct kvfs_cache *cache,
			 struct kvfs_listing *ret[KVFS_COLLECTION_COUNT_]);

/* What .kvfs/ says of collection coll: its current listing (a
 * reference: release with kvfs_listing_unref), and whether its latest
 * listing failed, how (err) and when (err_at, Unix seconds).  A success
 * clears the failure. */
struct kvfs_cache_collection {
	struct kvfs_listing *listing;
	bool failing;
	struct kvfs_error err;
	int64_t err_at;
};

/* The state of coll; -ENOENT (and nothing held) when the mount does not
 * show it. */
int kvfs_cache_collection_state(struct kvfs_cache *cache,
				enum kvfs_collection coll,
				struct kvfs_cache_collection *ret);

/* Stale-on-error: files, once built, are served until a listing says their
 * object changed; a failed revalidation never drops them.  While the
 * listing of their collection fails they are served for up to max_stale=
 * seconds after the later of their fetch and the collection's last
 * successful listing, and never past the object's exp; then -EIO until a
 * listing of the collection succeeds.
 *
 * The files of the latest version of object name of collection coll, fetching
 * the bundle the first time (single-flight: concurrent callers wait for one
 * request and share its result; a failure is handed to those waiters only, and
 * the next call tries again, except that while the vault is failing and backing
 * off, an I/O error is the answer, without a request, until its next permitted
 * attempt).  Waits at most the configured deadline.  -ENOENT (not in
 * the listing, or gone from the vault), -EACCES (the vault refused), -EIO.
 * Release with kvfs_files_unref. */
int kvfs_cache_files(struct kvfs_cache *cache, enum kvfs_collection coll,
		     const char *name, struct kvfs_files **ret);
/* The same, but only when the files are already there: -ENODATA when
 * they would need a fetch.  Never touches the network. */
int kvfs_cache_files_peek(struct kvfs_cache *cache, enum kvfs_collection coll,
			  const char *name, struct kvfs_files **ret);

/* How long after its latest open of a directory a process keeps seeing
 * the version its first open there saw (kvfs_cache_files_for()). */
#define KVFS_CACHE_PIN_SECONDS 5

/* kvfs_cache_files() for an open by process tgid of one of the directory's
 * files (file: a bit of the caller's choosing, one per file).  A program
 * that loads a certificate and its key opens two files one after the
 * other (nginx: fullchain.pem, then privkey.pem); if the directory rotated
 * in between, the key would be of another version.  So the first open of a
 * directory by a process pins the files it got, and that process's further
 * opens of the directory get the same files as long as each comes within
 * KVFS_CACHE_PIN_SECONDS of its previous one there (every open renews the
 * pin) and opens a file not yet opened under the pin.  An open after a
 * longer pause, a second open of a file (a process that polls one sees
 * rotations), and other processes get the current ones, and pin anew.
 * Pinned files may no longer be current (kvfs_files_current()).  Release
 * with kvfs_files_unref. */
int kvfs_cache_files_for(struct kvfs_cache *cache, enum kvfs_collection coll,
			 const char *name, int64_t tgid, unsigned file,
			 struct kvfs_files **ret);
/* For tests: the pin lifetime in seconds (0 turns pinning off). */
void kvfs_cache_set_pin_seconds(struct kvfs_cache *cache, unsigned seconds);

/* The files of one version of name (a version the versions listing
 * shows, any spelling); fetched and shared like the latest. */
int kvfs_cache_version_files(struct kvfs_cache *cache,
			     enum kvfs_collection coll, const char *name,
			     const char *version, struct kvfs_files **ret);

/* The versions listing of name, fetched the first time (single-flight)
 * and kept until the certificate changes.  Release with
 * kvfs_versions_unref. */
int kvfs_cache_versions(struct kvfs_cache *cache, enum kvfs_collection coll,
			const char *name, struct kvfs_versions **ret);

/* The secret-derived files of f (which the caller holds a reference to),
 * fetching its secret the first time (certsecret.h; waits at most the
 * deadline).  The result lives as long as f.  -EACCES when the vault does
 * not let this identity read the secret (kept for the refresh interval),
 * -EIO when the secret is malformed or does not match the certificate
 * (kept likewise) or the vault is failing (not kept). */
int kvfs_cache_secret(struct kvfs_cache *cache, struct kvfs_files *f,
		      const struct kvfs_pki_secret_files **ret);
/* The same without the network: -ENODATA when it would need a fetch. */
int kvfs_cache_secret_peek(struct kvfs_cache *cache, struct kvfs_files *f,
			   const struct kvfs_pki_secret_files **ret);

#endif
