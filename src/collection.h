/* The vault's collections of objects, in one table: certificates, secrets
 * and keys, a row each.  A collection is a top-level directory
 * of the tree and a path segment of the REST API, spelled alike.  Its
 * objects are listed, versioned and given attributes the same way in every
 * collection; what differs is what an object's files are made of, which
 * the collection's own renderers say.  Pure data: callable from any
 * thread. */
#ifndef KVFS_COLLECTION_H
#define KVFS_COLLECTION_H

#include <stdbool.h>

enum kvfs_collection {
	KVFS_COLLECTION_CERTIFICATES,
	KVFS_COLLECTION_SECRETS,
	KVFS_COLLECTION_KEYS,
	KVFS_COLLECTION_COUNT_,
};

struct kvfs_collection_info {
	/* "certificates": the directory in the tree and the REST path
	 * segment ("https://vault/certificates/NAME/VERSION"). */
	const char *name;
	/* "certificate": one object, for messages. */
	const char *noun;
};

/* The row of c; NULL when c is not a collection. */
const struct kvfs_collection_info *kvfs_collection_info(enum kvfs_collection c);

/* The collection whose name is exactly name (the tree's spelling is
 * lower case, as the REST API's).  false when there is none. */
bool kvfs_collection_from_name(const char *name, enum kvfs_collection *ret);

#endif
