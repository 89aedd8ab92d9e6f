/* What the kernel saw: the files open through its page cache, and the
 * changes a revalidation made that it must be told about.  The kernel
 * keeps an object's page cache and file sizes across opens (the open
 * said keep_cache), so a change is told at once and kept while a file
 * opened from the files the directory showed before it is still open
 * through the page cache: its reads may fill the page cache again with
 * the old bytes.  Once they are all closed the change is told once more,
 * then forgotten.  While a change of an object is kept, opens of its
 * files are not cacheable (they read around the kernel's caches), and the
 * sizes the kernel is given stay those of the old files.
 *
 * The cache reports changes through kvfs_kernel_change(), under its own
 * lock: the lock order is cache -> kernel, and nothing here calls the
 * cache with the kernel's lock held.  Thread-safe (one mutex); no log
 * I/O and no call of fn under that lock.  Knows nothing of FUSE: fs.c
 * turns a change into invalidations. */
#ifndef KVFS_KERNEL_H
#define KVFS_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "cache.h"

struct kvfs_kernel;

int kvfs_kernel_new(struct kvfs_kernel **ret);
/* Drops the changes still kept and their references.  NULL: nothing. */
void kvfs_kernel_free(struct kvfs_kernel *k);

/* The cache's change callback (kvfs_cache_on_change(), data the
 * kvfs_kernel): keep c, and a reference to old (the files its directory
 * showed before it; NULL: none), until it is told and closed.  -ENOMEM:
 * the kernel is not told (it keeps what it has until its timeouts). */
int kvfs_kernel_change(void *data, const struct kvfs_change *c,
		       struct kvfs_files *old);

/* Whether an open of f, the files of object name of collection coll, may
 * use the kernel's page cache and attributes: f is what the directory
 * shows (kvfs_files_current()) and no change of (coll, name) is kept.  If so
 * the open is counted until kvfs_kernel_close(); if not, read around the
 * kernel's caches (they may hold another version).  Out of memory to count
 * it, the open is not cacheable either. */
bool kvfs_kernel_open(struct kvfs_kernel *k, enum kvfs_collection coll,
		      const char *name, struct kvfs_files *f);
/* An open that kvfs_kernel_open() counted is closed, or will not use the
 * page cache after all; only for an open kvfs_kernel_open() said was
 * cacheable.  f stays the caller's. */
void kvfs_kernel_close(struct kvfs_kernel *k, struct kvfs_files *f);

/* The files whose sizes the kernel must be told for the files of object
 * name of collection coll while a change of it is kept: the old files still
 * open through the page cache (the page cache's readers go by the kernel's file
 * size, so it must stay theirs).  true with a reference in *ret; false when
 * there are none (then the cache's current files are the kernel's). */
bool kvfs_kernel_files_held(struct kvfs_kernel *k, enum kvfs_collection coll,
			    const char *name, struct kvfs_files **ret);

/* Hand the kept changes to fn (without the lock held): each change once
 * at once (again false), and once more when its old files are closed
 * (again true), after which it is forgotten.  Returns how many changes are
 * still kept.  A change being handed over by one caller is left to it by
 * the others. */
size_t kvfs_kernel_flush(struct kvfs_kernel *k,
			 void (*fn)(void *data, const struct kvfs_change *c,
				    bool again),
			 void *data);

#endif
