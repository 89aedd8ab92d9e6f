/* The tree as paths and attributes: which node a path names (a
 * collection's directory, one per row of the collection table, then
 * <collection>/<name>/, its versions/<version>/, their files, .kvfs/ and
 * its files), and what stat, the xattrs and statfs say of each.  Pure: the
 * input is the path, a listing snapshot, a versions listing, a version's
 * files and the configuration; the output is a node, a view of a file, a
 * struct stat or xattr bytes.  No FUSE, no lock, no I/O, no clock (the
 * caller passes now, kvfs_wall_now()'s Unix seconds): fs.c takes the
 * references, fetches what a node needs and serves the result.  Callable
 * from any thread. */
#ifndef KVFS_TREE_H
#define KVFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cache.h"
#include "collection.h"
#include "config.h"
#include "control.h"
#include "files.h"
#include "rules.h"

#define KVFS_TREE_VERSIONS "versions"
/* The directory of every version of a collection whose objects are files
 * (secrets/.versions/<name>/<version>): not a Key Vault name, so it never
 * collides with one, and hidden from ls without -a. */
#define KVFS_TREE_DOT_VERSIONS ".versions"
/* The directory of symbolic links to the certificates that expire within
 * expiring_days= of now, or have expired: expiring/<name> ->
 * ../certificates/<name>.  At the root when the mount shows certificates;
 * its set is computed from the listing and the clock on every look. */
#define KVFS_TREE_EXPIRING "expiring"
/* The longest name of an object, a version or a file (Key Vault's). */
#define KVFS_TREE_NAME_MAX 127

enum kvfs_node_kind {
	KVFS_NODE_ROOT,
	KVFS_NODE_COLLECTION,	/* <collection>/, a row of the table */
	KVFS_NODE_OBJECT,	/* <collection>/<name>/ */
	KVFS_NODE_VERSIONS,	/* <collection>/<name>/versions/, or
				   <collection>/.versions/<name>/ */
	KVFS_NODE_VERSION,	/* <collection>/<name>/versions/<version>/ */
	KVFS_NODE_FILE,		/* a file of either kind of object directory,
				   or an object that is a file (secrets/<name>,
				   secrets/.versions/<name>/<version>) */
	KVFS_NODE_ALL_VERSIONS, /* <collection>/.versions/ */
	KVFS_NODE_CONTROL,	/* .kvfs/ */
	KVFS_NODE_CONTROL_FILE,
	KVFS_NODE_EXPIRING,	 /* expiring/ */
	KVFS_NODE_EXPIRING_LINK, /* expiring/<name>, a symbolic link */
};

/* What the tree is rendered with, set once at mount. */
struct kvfs_tree {
	const struct kvfs_config
		*config; /* uid, gid, key_mode, allow_expired, expiring_days */
	int64_t mount_time; /* Unix seconds: the times of / and .kvfs/ */
	bool control;	    /* whether .kvfs/ exists */
};

/* A resolved path.  entry points into the listing and version into the
 * versions listing it was resolved against, which must outlive it;
 * version is NULL for the latest version (the object directory
 * itself). */
struct kvfs_tree_node {
	enum kvfs_node_kind kind;
	enum kvfs_collection coll;	/* KVFS_NODE_COLLECTION and below, and
					   KVFS_NODE_EXPIRING* (certificates) */
	const struct kvfs_entry *entry; /* KVFS_NODE_OBJECT and below, and
					   KVFS_NODE_EXPIRING_LINK */
	const struct kvfs_object_item *version; /* inside versions/<v>/ */
	enum kvfs_file_kind file;		/* KVFS_NODE_FILE */
	enum kvfs_control_file control;		/* KVFS_NODE_CONTROL_FILE */
	/* The rule of the object (KVFS_NODE_OBJECT and below): its owner
	 * and modes instead of the mount's; NULL: none.  The caller sets it
	 * (kvfs_rules_match()) and keeps it alive with the node. */
	const struct kvfs_rule *rule;
};

/* kvfs_tree_resolve(): the path goes inside versions/<version>/ of the
 * object ret->entry, whose versions listing is needed. */
#define KVFS_TREE_NEEDS_VERSIONS 1

/* Resolve path as FUSE gives it ("/", "/certificates/www/cert.pem"; no
 * trailing slash) against lists, the listing of each collection (indexed
 * by enum kvfs_collection; NULL for a collection the mount does not
 * show, which then does not exist in the tree; lists NULL: none), and, for a
 * path inside versions/<version>/, the versions listing vs of its object.
 * now (Unix seconds) says which certificates expiring/ links.  A
 * collection's directory is spelled exactly as its row of the table; object
 * names are compared without case, as Key Vault does; a name that is not a
 * valid Key Vault name ("..", empty, longer than KVFS_TREE_NAME_MAX) never
 * reaches a listing.  0 with *ret; KVFS_TREE_NEEDS_VERSIONS with *ret the
 * versions/ directory when vs is NULL and would be looked at (call again with
 * the versions listing of ret->entry); -ENOENT when the path names nothing. */
int kvfs_tree_resolve(
	const struct kvfs_tree *t, const char *path,
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	const struct kvfs_versions *vs, int64_t now,
	struct kvfs_tree_node *ret);

/* Whether path, which resolved to n (KVFS_NODE_OBJECT or below), names
 * the object as the vault spells it: "/<collection>/<name>/...". */
bool kvfs_tree_spelled_as_in_vault(const char *path,
				   const struct kvfs_tree_node *n);

/* The attributes of n's version (KVFS_NODE_OBJECT and below). */
const struct kvfs_object_attrs *kvfs_tree_attrs(const struct kvfs_tree_node *n);

/* DESIGN §2: closed for everyone, root included, when disabled or outside
 * its validity at now (unless allow_expired). */
bool kvfs_tree_closed(const struct kvfs_tree *t,
		      const struct kvfs_object_attrs *a, int64_t now);

/* Whether an object directory of collection c has file k (when it
 * exists: a key that is not exportable is absent). */
bool kvfs_tree_object_has_file(enum kvfs_collection c, enum kvfs_file_kind k);
/* Whether the objects of collection c are files, not directories: then
 * <collection>/<name> is the object's one file (its kind in *ret_file,
 * unless NULL), and its versions are
 * <collection>/.versions/<name>/<version>. */
bool kvfs_tree_object_is_file(enum kvfs_collection c,
			      enum kvfs_file_kind *ret_file);
/* Whether the size of file k is only known once its object is fetched:
 * a stat never fetches it (listing a directory costs no GET), so opens
 * must read around the size the kernel was given (direct_io). */
bool kvfs_tree_size_on_fetch(enum kvfs_file_kind k);
/* The name of file k; NULL when k is no file or is its object. */
const char *kvfs_tree_file_name(enum kvfs_file_kind k);
/* Whether file k holds the private key: privkey.pem, bundle.pem and
 * cert.pfx (mode key_mode=, absent when the key is not exportable). */
bool kvfs_tree_holds_key(enum kvfs_file_kind k);

/* Whether file k is key-bearing: it holds the key, or is a secret's
 * value (mode key_mode=, readers= checked at open). */
bool kvfs_tree_key_bearing(enum kvfs_file_kind k);

/* What a file is right now. */
struct kvfs_tree_view {
	/* Its bytes (kvfs_files_span_read()); data NULL when not known
	 * without a fetch. */
	struct kvfs_files_span bytes;
	mode_t mode;
	bool forbidden; /* the vault will not give this identity the secret */
};

/* Whether kvfs_tree_view() of file k with files looks at the secret
 * (chain.pem and after, when the file exists). */
bool kvfs_tree_needs_secret(const struct kvfs_files *files,
			    enum kvfs_file_kind k);

/* What file k of the directory n is at now, given its files (NULL: not
 * fetched) and, when kvfs_tree_needs_secret(), what getting the secret
 * gave: secret_r 0 with sf, or its -errno (-ENODATA: not fetched).
 * -ENODATA when the file would need the files or the secret; -ENOENT when
 * it does not exist (a key that is not exportable, a file of another
 * collection); secret_r when the secret is unusable.  *ret is written on
 * -ENODATA too: its mode holds. */
int kvfs_tree_view(const struct kvfs_tree *t, const struct kvfs_tree_node *n,
		   enum kvfs_file_kind k, int64_t now,
		   const struct kvfs_files *files, int secret_r,
		   const struct kvfs_pki_secret_files *sf,
		   struct kvfs_tree_view *ret);

/* The stat of directory n; lists: the listings of the collections, as
 * kvfs_tree_resolve() takes them, for KVFS_NODE_ROOT (which links the
 * collections the mount shows), KVFS_NODE_COLLECTION and KVFS_NODE_EXPIRING
 * (NULL: none). */
void kvfs_tree_stat_dir(
	const struct kvfs_tree *t, const struct kvfs_tree_node *n,
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	struct stat *st);
/* The stat of file n (or of file k of directory n) as v shows it. */
void kvfs_tree_stat_file(const struct kvfs_tree *t,
			 const struct kvfs_tree_node *n,
			 const struct kvfs_tree_view *v, struct stat *st);
/* The stat of .kvfs/ or one of its files at now: 0500 and 0400, size 0
 * (as /proc: the size is only known once rendered). */
void kvfs_tree_stat_control(const struct kvfs_tree *t,
			    const struct kvfs_tree_node *n, int64_t now,
			    struct stat *st);
/* statfs of a mount that shows lists, the listing of each collection (as
 * kvfs_tree_resolve() takes them). */
void kvfs_tree_statfs(
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	struct statvfs *sv);

/* Whether n carries the user.kvfs.* attributes (object and version
 * directories and their files). */
bool kvfs_tree_has_xattrs(const struct kvfs_tree_node *n);
/* Whether name is one of them. */
bool kvfs_tree_xattr_known(const char *name);
/* Whether certificate it is in expiring/ at now: it has an exp, and that
 * is at most expiring_days= days after now (so an expired one is; with
 * expiring_days=0, only those). */
bool kvfs_tree_expiring(const struct kvfs_tree *t,
			const struct kvfs_object_item *it, int64_t now);
/* The target of the symbolic link n (KVFS_NODE_EXPIRING_LINK),
 * "../certificates/<name>" with the name as the listing spells it, the
 * readlink(2) way: truncated to fit size with its '\0' (FUSE's readlink
 * takes it so); returns its length untruncated, -EINVAL when n is no
 * link. */
int kvfs_tree_link_target(const struct kvfs_tree_node *n, char *buf,
			  size_t size);
/* The stat of the link n: 0777, its target's length, and the times of
 * certificates/ (whose listing lists holds). */
void kvfs_tree_stat_link(
	const struct kvfs_tree *t, const struct kvfs_tree_node *n,
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	struct stat *st);

/* Whether the objects of collection c are fetched on their first open
 * only, never for their metadata (a secret: its GET is its value). */
bool kvfs_tree_fetched_on_open(enum kvfs_collection c);
/* Whether the value of xattr name of n comes from its version's files
 * (the version's GET), not from the listing n was resolved against, which
 * carries the attributes, the tags, a certificate's x5t, a secret's
 * content type and, inside versions/, the version and id. */
bool kvfs_tree_xattr_needs_files(const struct kvfs_tree_node *n,
				 const char *name);
/* Whether kvfs_tree_listxattr() needs n's files to tell which xattrs n
 * has (one of the files that some objects lack: a key's crv). */
bool kvfs_tree_listxattr_needs_files(const struct kvfs_tree_node *n);
/* The value of xattr name of n at now, the getxattr(2) way, given its
 * version's files (NULL: not fetched; needed when
 * kvfs_tree_xattr_needs_files()):
 * its length when size is 0, -ERANGE when it does not fit, -ENODATA when
 * name is not n's, n has no value for it or it needs the files and they
 * are NULL, -ENOMEM. */
int kvfs_tree_getxattr(const struct kvfs_tree *t,
		       const struct kvfs_tree_node *n,
		       const struct kvfs_files *files, const char *name,
		       int64_t now, char *buf, size_t size);
/* The names of n's xattrs, the listxattr(2) way: those with a value,
 * given its files (NULL: not fetched).  One that needs the files is listed
 * without them when it will be there once they are fetched for it (never
 * for a collection fetched on open). */
int kvfs_tree_listxattr(const struct kvfs_tree *t,
			const struct kvfs_tree_node *n,
			const struct kvfs_files *files, char *buf, size_t size);

#endif
