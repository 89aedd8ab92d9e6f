/* What the tree is made of: the current listing (an immutable, refcounted
 * snapshot) and, per certificate, the bundle fetched on first use with
 * single-flight, so concurrent first readers share one request.  Readers
 * hold references, so an open file's bytes never change.  Knows nothing of
 * HTTP details.  Thread-safe; never holds its lock across a vault call. */
#ifndef KVFS_CACHE_H
#define KVFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "vault.h"

struct kvfs_cache;

/* One certificate as the listing shows it (a view; the listing owns the
 * strings). */
struct kvfs_entry {
	struct kvfs_cert_item item;
};

/* An immutable listing; entries sorted by name, case-insensitively. */
struct kvfs_listing {
	struct kvfs_entry *entries;
	size_t n;
	int64_t updated_max; /* newest attrs.updated, 0 when empty */
	int64_t loaded_at;   /* when the listing was fetched (Unix seconds) */
	/* private */
	int refs;
	struct kvfs_cert_list owned; /* owns the strings entries point to */
};

/* The files of one certificate version, built once from its bundle.
 * Stale-on-error: once built they are served, whatever the vault does,
 * until a listing says the certificate changed; a failed fetch never
 * replaces or drops them.  The seam for revalidation: a re-fetch that
 * fails keeps these and serves them until fetched_at + max_stale (and
 * never past the certificate's exp, which fs already closes). */
struct kvfs_files {
	struct kvfs_cert_bundle bundle;
	char *cert_pem;
	size_t cert_pem_len;
	int64_t fetched_at; /* Unix seconds of the GET that built them */
	/* private */
	int refs;
};

int kvfs_cache_new(const struct kvfs_config *c, struct kvfs_vault *v,
		   struct kvfs_cache **ret);
void kvfs_cache_free(struct kvfs_cache *cache);

/* Fetch the listing and make it current; errors go to err and the current
 * listing stays.  Called before mounting for the first listing, and again
 * to revalidate: a certificate that disappeared, or whose updated or x5t
 * changed, loses its cached files (open files keep theirs). */
int kvfs_cache_load(struct kvfs_cache *cache, struct kvfs_error *err);

/* A reference to the current listing; release with kvfs_listing_unref. */
struct kvfs_listing *kvfs_cache_listing(struct kvfs_cache *cache);
void kvfs_listing_unref(struct kvfs_listing *l);
/* Case-insensitive lookup in a listing; NULL when absent. */
const struct kvfs_entry *kvfs_listing_find(const struct kvfs_listing *l,
					   const char *name);

/* The files of the latest version of name, fetching the bundle the first
 * time (single-flight: concurrent callers wait for one request and share
 * its result; a failure is handed to those waiters only, and the next call
 * tries again).  Waits at most the configured deadline.  -ENOENT (not in
 * the listing, or gone from the vault), -EACCES (the vault refused), -EIO.
 * Release with kvfs_files_unref. */
int kvfs_cache_files(struct kvfs_cache *cache, const char *name,
		     struct kvfs_files **ret);
/* The same, but only when the files are already there: -ENODATA when
 * they would need a fetch.  Never touches the network. */
int kvfs_cache_files_peek(struct kvfs_cache *cache, const char *name,
			  struct kvfs_files **ret);
void kvfs_files_unref(struct kvfs_files *f);

#endif
