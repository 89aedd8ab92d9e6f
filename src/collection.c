/* The table of collections (collection.h). */
#include <string.h>

#include "collection.h"
#include "util.h"

static const struct kvfs_collection_info collections[] = {
	[KVFS_COLLECTION_CERTIFICATES] = {.name = "certificates",
					  .noun = "certificate"},
	[KVFS_COLLECTION_SECRETS] = {.name = "secrets", .noun = "secret"},
	[KVFS_COLLECTION_KEYS] = {.name = "keys", .noun = "key"},
};

const struct kvfs_collection_info *kvfs_collection_info(enum kvfs_collection c)
{
	return (size_t)c < ELEMENTSOF(collections) ? &collections[c] : NULL;
}

bool kvfs_collection_from_name(const char *name, enum kvfs_collection *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(collections); i++)
		if (strcmp(name, collections[i].name) == 0) {
			*ret = (enum kvfs_collection)i;
			return true;
		}
	return false;
}
