/* The table of collections: every row is reachable by its name and back,
 * its name is a lower-case word (a directory of the tree and a REST path
 * segment at once), and nothing else is a collection. */
#include <string.h>

#include "collection.h"
#include "tap.h"

static bool lower_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < 'a' || *s > 'z')
			return false;
	return true;
}

int main(void)
{
	enum kvfs_collection c;

	for (int i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		const struct kvfs_collection_info *info =
			kvfs_collection_info((enum kvfs_collection)i);

		ok(info && lower_word(info->name), "row %d has a name", i);
		ok(info && lower_word(info->noun), "row %d has a noun", i);
		ok(kvfs_collection_from_name(info->name, &c) && (int)c == i,
		   "%s is found by its name", info->name);
	}
	is_str(kvfs_collection_info(KVFS_COLLECTION_CERTIFICATES)->name,
	       "certificates", "certificates is the first");
	ok(!kvfs_collection_info(KVFS_COLLECTION_COUNT_), "past the table");
	ok(!kvfs_collection_info((enum kvfs_collection) - 1), "before it");
	for (const char *const *s =
		     (const char *const[]){"Certificates", "certificate",
					   "certificates/", "", ".kvfs",
					   "versions", NULL};
	     *s; s++)
		ok(!kvfs_collection_from_name(*s, &c), "'%s' is none", *s);
	return done_testing();
}
