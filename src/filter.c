/* The filter of a mount (filter.h). */
#include <fnmatch.h>
#include <string.h>

#include "filter.h"
#include "vault.h"

void kvfs_filter_init(struct kvfs_filter *f, const struct kvfs_config *c)
{
	*f = (struct kvfs_filter){
		.include = &c->include,
		.exclude = &c->exclude,
		.tags = &c->tags,
	};
}

bool kvfs_filter_active(const struct kvfs_filter *f)
{
	return f->include->n > 0 || f->exclude->n > 0 || f->tags->n > 0;
}

static bool any_glob_matches(const struct kvfs_config_globs *g,
			     const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (fnmatch(g->v[i], name, FNM_CASEFOLD) == 0)
			return true;
	return false;
}

static bool has_tag(const struct kvfs_object_item *item,
		    const struct kvfs_config_tag *want)
{
	for (size_t i = 0; i < item->ntags; i++)
		if (strcmp(item->tags[i].key, want->key) == 0)
			return strcmp(item->tags[i].value, want->value) == 0;
	return false;
}

bool kvfs_filter_match(const struct kvfs_filter *f,
		       const struct kvfs_object_item *item)
{
	if (f->include->n > 0 && !any_glob_matches(f->include, item->name))
		return false;
	if (any_glob_matches(f->exclude, item->name))
		return false;
	for (size_t i = 0; i < f->tags->n; i++)
		if (!has_tag(item, &f->tags->v[i]))
			return false;
	return true;
}
