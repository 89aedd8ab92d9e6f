/* Which objects of a vault a mount shows: include=, exclude= and tag=
 * (config.h) matched against an object of a listing.  A name is included
 * when no include= is given or any include= glob matches it, and left out
 * when any exclude= glob does (exclude wins); globs are fnmatch(3)'s,
 * without case.  Every tag= must then be among the object's tags, key and
 * value compared exactly; an object without that key does not match.
 * With none of the three, every object matches.  Pure: the filter borrows
 * the config's lists, which must outlive it; callable from any thread. */
#ifndef KVFS_FILTER_H
#define KVFS_FILTER_H

#include <stdbool.h>

#include "config.h"

struct kvfs_object_item;

struct kvfs_filter {
	const struct kvfs_config_globs *include;
	const struct kvfs_config_globs *exclude;
	const struct kvfs_config_tags *tags;
};

/* The filter of c's include=, exclude= and tag=. */
void kvfs_filter_init(struct kvfs_filter *f, const struct kvfs_config *c);

/* false when the filter matches every object: no include=, exclude= or
 * tag= was given. */
bool kvfs_filter_active(const struct kvfs_filter *f);

/* Whether item (its name and tags) is shown. */
bool kvfs_filter_match(const struct kvfs_filter *f,
		       const struct kvfs_object_item *item);

#endif
