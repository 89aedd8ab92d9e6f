/* Path -> node -> view, stat and xattrs (tree.h).  The rules are DESIGN
 * §2: directories are always 0555, so that ls -l shows which files are
 * closed; a file is 0444, or key_mode= for those that hold the key, and
 * 0000 while its object is disabled or outside its validity, or when the
 * identity may not read the secret it is made from; updated is the mtime
 * and ctime, created the atime.  What an object directory holds is a
 * table, one row per file naming its collection, and each collection has
 * one renderer that points a file at its bytes: a collection's files are
 * rows, not branches.  An object's rule (rules.h), when it has one, sets
 * the owner of its directories and files and the modes of its files in
 * place of uid=, gid=, 0444 and key_mode=.  expiring/ is a view of the
 * certificates' listing at now: symbolic links, 0777 as every link, to the
 * certificates whose exp is within expiring_days= of now or past.  Pure and
 * stateless: callable from any thread. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"
#include "util.h"
#include "vault.h"

/* ---- the files of an object directory, per collection ---- */

/* What a file is made of. */
enum {
	/* From the secret (fetched apart, on the first look), not from the
	 * object's own bundle. */
	FROM_SECRET = 1 << 0,
	/* Mode key_mode=, and absent when the key is not exportable. */
	HOLDS_KEY = 1 << 1,
	/* A secret's value: mode key_mode=, its size known once fetched. */
	SECRET_VALUE = 1 << 2,
};

struct file_row {
	enum kvfs_file_kind kind;
	const char *name;
	unsigned flags;
};

/* Point v at the bytes of file k of an object, out of what the cache
 * fetched (sf only for a file made from the secret). */
typedef void render_fn(enum kvfs_file_kind k, const struct kvfs_files *files,
		       const struct kvfs_pki_secret_files *sf,
		       struct kvfs_tree_view *v);

/* What an object directory of a collection holds, in the order a listing
 * shows, and the renderer of its files. */
struct object_shape {
	const struct file_row *files;
	size_t nfiles;
	render_fn *render;
	/* The object is its one file (files[0]), not a directory. */
	bool is_file;
};

static const struct file_row certificate_files[] = {
	{KVFS_FILE_CERT_PEM, "cert.pem", 0},
	{KVFS_FILE_CERT_DER, "cert.der", 0},
	{KVFS_FILE_CHAIN, "chain.pem", FROM_SECRET},
	{KVFS_FILE_FULLCHAIN, "fullchain.pem", FROM_SECRET},
	{KVFS_FILE_PRIVKEY, "privkey.pem", FROM_SECRET | HOLDS_KEY},
	{KVFS_FILE_BUNDLE, "bundle.pem", FROM_SECRET | HOLDS_KEY},
	{KVFS_FILE_PFX, "cert.pfx", FROM_SECRET | HOLDS_KEY},
};

static void render_certificate(enum kvfs_file_kind k,
			       const struct kvfs_files *files,
			       const struct kvfs_pki_secret_files *sf,
			       struct kvfs_tree_view *v)
{
	switch (k) {
	case KVFS_FILE_CERT_PEM:
	case KVFS_FILE_CERT_DER:
		kvfs_files_bytes(files, k, &v->bytes);
		break;
	case KVFS_FILE_CHAIN:
		v->bytes = (struct kvfs_files_span){.data = sf->chain,
						    .len = sf->chain_len};
		break;
	case KVFS_FILE_FULLCHAIN:
		v->bytes = (struct kvfs_files_span){.data = sf->fullchain,
						    .len = sf->fullchain_len};
		break;
	case KVFS_FILE_PRIVKEY:
		v->bytes = (struct kvfs_files_span){.data = sf->privkey,
						    .len = sf->privkey_len};
		break;
	case KVFS_FILE_BUNDLE:
		v->bytes = (struct kvfs_files_span){.data = sf->bundle,
						    .len = sf->bundle_len};
		break;
	case KVFS_FILE_PFX:
		v->bytes = (struct kvfs_files_span){.data = sf->pfx,
						    .len = sf->pfx_len};
		break;
	default:
		break;
	}
}

/* A key's public half: the private one never leaves the vault. */
static const struct file_row key_files[] = {
	{KVFS_FILE_PUBLIC_PEM, "public.pem", 0},
	{KVFS_FILE_PUBLIC_JWK, "public.jwk", 0},
};

static void render_key(enum kvfs_file_kind k, const struct kvfs_files *files,
		       const struct kvfs_pki_secret_files *sf,
		       struct kvfs_tree_view *v)
{
	(void)sf;
	kvfs_files_bytes(files, k, &v->bytes);
}

/* A secret is its value, exactly: no name of its own. */
static const struct file_row secret_files[] = {
	{KVFS_FILE_SECRET_VALUE, NULL, SECRET_VALUE},
};

static void render_secret(enum kvfs_file_kind k, const struct kvfs_files *files,
			  const struct kvfs_pki_secret_files *sf,
			  struct kvfs_tree_view *v)
{
	(void)sf;
	kvfs_files_bytes(files, k, &v->bytes);
}

static const struct object_shape shapes[] = {
	[KVFS_COLLECTION_CERTIFICATES] = {certificate_files,
					  ELEMENTSOF(certificate_files),
					  render_certificate, false},
	[KVFS_COLLECTION_SECRETS] = {secret_files, ELEMENTSOF(secret_files),
				     render_secret, true},
	[KVFS_COLLECTION_KEYS] = {key_files, ELEMENTSOF(key_files), render_key,
				  false},
};

_Static_assert(ELEMENTSOF(shapes) == KVFS_COLLECTION_COUNT_,
	       "every collection of the table has the shape of its objects");

/* The row of file k, and the collection it is of; NULL when k is no
 * file. */
static const struct file_row *file_row(enum kvfs_file_kind k,
				       enum kvfs_collection *ret_coll)
{
	for (size_t c = 0; c < ELEMENTSOF(shapes); c++)
		for (size_t i = 0; i < shapes[c].nfiles; i++)
			if (shapes[c].files[i].kind == k) {
				if (ret_coll)
					*ret_coll = (enum kvfs_collection)c;
				return &shapes[c].files[i];
			}
	return NULL;
}

static bool file_is(enum kvfs_file_kind k, unsigned flag)
{
	const struct file_row *f = file_row(k, NULL);

	return f && (f->flags & flag);
}

bool kvfs_tree_object_has_file(enum kvfs_collection c, enum kvfs_file_kind k)
{
	enum kvfs_collection of;

	return file_row(k, &of) && of == c;
}

const char *kvfs_tree_file_name(enum kvfs_file_kind k)
{
	const struct file_row *f = file_row(k, NULL);

	return f ? f->name : NULL;
}

bool kvfs_tree_holds_key(enum kvfs_file_kind k)
{
	return file_is(k, HOLDS_KEY);
}

bool kvfs_tree_object_is_file(enum kvfs_collection c,
			      enum kvfs_file_kind *ret_file)
{
	if ((size_t)c >= ELEMENTSOF(shapes) || !shapes[c].is_file)
		return false;
	if (ret_file)
		*ret_file = shapes[c].files[0].kind;
	return true;
}

bool kvfs_tree_size_on_fetch(enum kvfs_file_kind k)
{
	return file_is(k, SECRET_VALUE);
}

const struct kvfs_object_attrs *kvfs_tree_attrs(const struct kvfs_tree_node *n)
{
	return n->version ? &n->version->attrs : &n->entry->item.attrs;
}

/* ---- path -> node ---- */

/* Copy the path component starting at p into buf; returns its length, or
 * -ENOENT when it cannot be a name of ours. */
static int component(const char *p, char *buf, size_t size)
{
	size_t n = strcspn(p, "/");

	if (n == 0 || n >= size)
		return -ENOENT;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return (int)n;
}

/* The file of an object directory of c called name. */
static bool file_kind_of(enum kvfs_collection c, const char *name,
			 enum kvfs_file_kind *ret)
{
	const struct object_shape *s = &shapes[c];

	for (size_t i = 0; i < s->nfiles; i++)
		if (s->files[i].name && strcmp(name, s->files[i].name) == 0) {
			*ret = s->files[i].kind;
			return true;
		}
	return false;
}

/* Whether the component at p, of length len, is word. */
static bool component_is(const char *p, size_t len, const char *word)
{
	return len == strlen(word) && strncmp(p, word, len) == 0;
}

/* The listing of collection c in lists; NULL when it is not mounted. */
static const struct kvfs_listing *
listing_of(const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	   enum kvfs_collection c)
{
	return lists ? lists[c] : NULL;
}

#define SECONDS_PER_DAY 86400

bool kvfs_tree_expiring(const struct kvfs_tree *t,
			const struct kvfs_object_item *it, int64_t now)
{
	int64_t exp = it->attrs.exp;

	return exp != 0 &&
	       exp - now <= (int64_t)t->config->expiring_days * SECONDS_PER_DAY;
}

/* The rest of a path after "/expiring": the directory, or a link to a
 * certificate of l (NULL: certificates are not mounted) in it at now. */
static int resolve_expiring(const struct kvfs_tree *t, const char *p,
			    const struct kvfs_listing *l, int64_t now,
			    struct kvfs_tree_node *ret)
{
	struct kvfs_tree_node n = {.kind = KVFS_NODE_EXPIRING,
				   .coll = KVFS_COLLECTION_CERTIFICATES};
	char name[KVFS_TREE_NAME_MAX + 1];
	int len;

	if (!l)
		return -ENOENT;
	if (*p != '\0') {
		len = component(++p, name, sizeof(name));
		if (len < 0 || p[len] != '\0' ||
		    !kvfs_vault_object_name_valid(name))
			return -ENOENT;
		n.entry = kvfs_listing_find(l, name);
		if (!n.entry || !kvfs_tree_expiring(t, &n.entry->item, now))
			return -ENOENT;
		n.kind = KVFS_NODE_EXPIRING_LINK;
	}
	*ret = n;
	return 0;
}

/* The rest of a path after "/.kvfs": the directory or one of its files. */
static int resolve_control(const struct kvfs_tree *t, const char *p,
			   struct kvfs_tree_node *ret)
{
	struct kvfs_tree_node n = {.kind = KVFS_NODE_CONTROL};

	if (!t->control)
		return -ENOENT;
	if (*p == '/' && p[1] != '\0') {
		p++;
		if (strchr(p, '/') || kvfs_control_file_of(p, &n.control) < 0)
			return -ENOENT;
		n.kind = KVFS_NODE_CONTROL_FILE;
	}
	*ret = n;
	return 0;
}

/* The rest of a path after "versions/": "<version>[/<file>]".  A version
 * that is not a valid name is not looked for; anything else needs the
 * versions listing, even a path that then names nothing in it. */
static int resolve_version(const char *p, const struct kvfs_versions *vs,
			   struct kvfs_tree_node *n)
{
	char part[KVFS_TREE_NAME_MAX + 1];
	int len;

	len = component(p, part, sizeof(part));
	if (len < 0 || !kvfs_vault_object_name_valid(part))
		return -ENOENT;
	p += len;
	if (!vs)
		return KVFS_TREE_NEEDS_VERSIONS;
	n->version = kvfs_versions_find(vs, part);
	if (!n->version)
		return -ENOENT;
	if (shapes[n->coll].is_file) {
		if (*p != '\0')
			return -ENOENT;
		n->kind = KVFS_NODE_FILE;
		n->file = shapes[n->coll].files[0].kind;
		return 0;
	}
	n->kind = KVFS_NODE_VERSION;
	if (*p == '\0')
		return 0;
	len = component(++p, part, sizeof(part));
	if (len < 0 || p[len] != '\0' || !file_kind_of(n->coll, part, &n->file))
		return -ENOENT;
	n->kind = KVFS_NODE_FILE;
	return 0;
}

/* The rest of a path after "<collection>/" of a collection whose objects
 * are files: "<name>", ".versions", ".versions/<name>[/<version>]". */
static int resolve_object_file(const char *p, const struct kvfs_listing *l,
			       const struct kvfs_versions *vs,
			       struct kvfs_tree_node *n,
			       struct kvfs_tree_node *ret)
{
	char name[KVFS_TREE_NAME_MAX + 1];
	bool versions;
	int len, r;

	len = (int)strcspn(p, "/");
	versions = component_is(p, (size_t)len, KVFS_TREE_DOT_VERSIONS);
	if (versions) {
		p += len;
		n->kind = KVFS_NODE_ALL_VERSIONS;
		if (*p == '\0')
			goto found;
		p++;
	}
	len = component(p, name, sizeof(name));
	if (len < 0 || !kvfs_vault_object_name_valid(name))
		return -ENOENT;
	p += len;
	n->entry = kvfs_listing_find(l, name);
	if (!n->entry)
		return -ENOENT;
	if (!versions) {
		if (*p != '\0')
			return -ENOENT;
		n->kind = KVFS_NODE_FILE;
		n->file = shapes[n->coll].files[0].kind;
		goto found;
	}
	n->kind = KVFS_NODE_VERSIONS;
	if (*p == '\0')
		goto found;
	r = resolve_version(p + 1, vs, n);
	if (r < 0)
		return r;
	*ret = *n;
	return r;
found:
	*ret = *n;
	return 0;
}

int kvfs_tree_resolve(
	const struct kvfs_tree *t, const char *path,
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	const struct kvfs_versions *vs, int64_t now, struct kvfs_tree_node *ret)
{
	const struct kvfs_listing *l;
	char name[KVFS_TREE_NAME_MAX + 1], part[KVFS_TREE_NAME_MAX + 1];
	struct kvfs_tree_node n = {.kind = KVFS_NODE_ROOT};
	const char *p = path;
	int len, r;

	if (!p || *p != '/')
		return -ENOENT;
	p++;
	if (*p == '\0')
		goto found;

	len = (int)strcspn(p, "/");
	if (component_is(p, (size_t)len, KVFS_CONTROL_DIR))
		return resolve_control(t, p + len, ret);
	if (component_is(p, (size_t)len, KVFS_TREE_EXPIRING))
		return resolve_expiring(
			t, p + len,
			listing_of(lists, KVFS_COLLECTION_CERTIFICATES), now,
			ret);
	len = component(p, name, sizeof(name));
	if (len < 0 || !kvfs_collection_from_name(name, &n.coll))
		return -ENOENT;
	l = listing_of(lists, n.coll);
	if (!l)
		return -ENOENT; /* not a collection of this mount */
	p += len;
	n.kind = KVFS_NODE_COLLECTION;
	if (*p == '\0')
		goto found;

	if (shapes[n.coll].is_file)
		return resolve_object_file(p + 1, l, vs, &n, ret);

	len = component(++p, name, sizeof(name));
	/* ".." and the like are not Key Vault names and never reach the
	 * listing. */
	if (len < 0 || !kvfs_vault_object_name_valid(name))
		return -ENOENT;
	p += len;
	n.entry = kvfs_listing_find(l, name);
	if (!n.entry)
		return -ENOENT;
	n.kind = KVFS_NODE_OBJECT;
	if (*p == '\0')
		goto found;

	len = component(++p, part, sizeof(part));
	if (len < 0)
		return -ENOENT;
	p += len;
	if (strcmp(part, KVFS_TREE_VERSIONS) == 0) {
		n.kind = KVFS_NODE_VERSIONS;
		if (*p == '\0')
			goto found;
		r = resolve_version(p + 1, vs, &n);
		if (r < 0)
			return r;
		*ret = n;
		return r;
	}
	if (*p != '\0' || !file_kind_of(n.coll, part, &n.file))
		return -ENOENT;
	n.kind = KVFS_NODE_FILE;
found:
	*ret = n;
	return 0;
}

bool kvfs_tree_spelled_as_in_vault(const char *path,
				   const struct kvfs_tree_node *n)
{
	const char *p =
		path + 1 + strlen(kvfs_collection_info(n->coll)->name) + 1;
	size_t len = strlen(n->entry->item.name);

	return strncmp(p, n->entry->item.name, len) == 0 &&
	       (p[len] == '/' || p[len] == '\0');
}

/* ---- modes and views ---- */

bool kvfs_tree_closed(const struct kvfs_tree *t,
		      const struct kvfs_object_attrs *a, int64_t now)
{
	if (!a->enabled)
		return true;
	if (t->config->allow_expired)
		return false;
	if (a->nbf && now < a->nbf)
		return true;
	if (a->exp && now >= a->exp)
		return true;
	return false;
}

bool kvfs_tree_needs_secret(const struct kvfs_files *files,
			    enum kvfs_file_kind k)
{
	if (!files || !file_is(k, FROM_SECRET))
		return false;
	return !kvfs_tree_holds_key(k) || kvfs_files_header(files).exportable;
}

bool kvfs_tree_key_bearing(enum kvfs_file_kind k)
{
	return file_is(k, HOLDS_KEY | SECRET_VALUE);
}

/* The mode of an open file f of n. */
static mode_t file_mode(const struct kvfs_tree *t,
			const struct kvfs_tree_node *n,
			const struct file_row *f)
{
	const struct kvfs_rule *r = n->rule;

	if (f->flags & (HOLDS_KEY | SECRET_VALUE))
		return r && (r->set & KVFS_RULE_KEY_MODE) ? r->key_mode
							  : t->config->key_mode;
	return r && (r->set & KVFS_RULE_MODE) ? r->mode : 0444;
}

int kvfs_tree_view(const struct kvfs_tree *t, const struct kvfs_tree_node *n,
		   enum kvfs_file_kind k, int64_t now,
		   const struct kvfs_files *files, int secret_r,
		   const struct kvfs_pki_secret_files *sf,
		   struct kvfs_tree_view *ret)
{
	bool closed = kvfs_tree_closed(t, kvfs_tree_attrs(n), now);
	enum kvfs_collection of;
	const struct file_row *f = file_row(k, &of);
	struct kvfs_tree_view *v = ret;
	bool key;

	memset(v, 0, sizeof(*v));
	if (!f || of != n->coll)
		return -ENOENT;
	key = f->flags & HOLDS_KEY;
	v->mode = closed ? 0000 : file_mode(t, n, f);

	if (files && key && !kvfs_files_header(files).exportable)
		return -ENOENT;
	if (!files)
		return closed ? 0 : -ENODATA;
	if (!(f->flags & FROM_SECRET)) {
		shapes[n->coll].render(k, files, NULL, v);
		return 0;
	}

	if (secret_r == -EACCES) {
		v->mode = 0000;
		v->forbidden = true;
		return 0;
	}
	/* A closed file is not worth a secret: it cannot be opened. */
	if (secret_r < 0)
		return closed ? 0 : secret_r;
	if (key && !sf->has_key)
		return -ENOENT;
	if (closed)
		return 0;
	shapes[n->coll].render(k, files, sf, v);
	return 0;
}

/* ---- stat ---- */

static void stat_common(const struct kvfs_tree *t, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = t->config->uid;
	st->st_gid = t->config->gid;
	st->st_blksize = 4096;
}

/* The owner of an object's directories and files: its rule's, if any. */
static void stat_owner(const struct kvfs_tree_node *n, struct stat *st)
{
	if (n->rule && (n->rule->set & KVFS_RULE_UID))
		st->st_uid = n->rule->uid;
	if (n->rule && (n->rule->set & KVFS_RULE_GID))
		st->st_gid = n->rule->gid;
}

static void stat_times(struct stat *st, int64_t created, int64_t updated)
{
	st->st_mtim.tv_sec = (time_t)updated;
	st->st_ctim.tv_sec = (time_t)updated;
	st->st_atim.tv_sec = (time_t)created;
}

/* The times of a collection's directory, whose listing is l (NULL: not
 * mounted), and of what is made of it alone (.versions/, expiring/). */
static void stat_collection_times(const struct kvfs_tree *t,
				  const struct kvfs_listing *l, struct stat *st)
{
	stat_times(st, t->mount_time,
		   l && l->updated_max ? l->updated_max : t->mount_time);
}

void kvfs_tree_stat_dir(
	const struct kvfs_tree *t, const struct kvfs_tree_node *n,
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	struct stat *st)
{
	const struct kvfs_listing *l = NULL;

	stat_common(t, st);
	stat_owner(n, st);
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	switch (n->kind) {
	case KVFS_NODE_ROOT:
		/* The mount's collections' directories, .kvfs/ and, with the
		 * certificates, expiring/. */
		st->st_nlink = 2 + 1;
		for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++)
			if (listing_of(lists, (enum kvfs_collection)c))
				st->st_nlink++;
		if (listing_of(lists, KVFS_COLLECTION_CERTIFICATES))
			st->st_nlink++;
		stat_times(st, t->mount_time, t->mount_time);
		break;
	case KVFS_NODE_COLLECTION:
		l = listing_of(lists, n->coll);
		/* Every object directory's ".." links here, or that of
		 * .versions/ when the objects are files. */
		st->st_nlink = 2 + (shapes[n->coll].is_file ? 1 : l ? l->n : 0);
		stat_collection_times(t, l, st);
		break;
	case KVFS_NODE_ALL_VERSIONS:
		l = listing_of(lists, n->coll);
		st->st_nlink = 2 + (l ? l->n : 0);
		stat_collection_times(t, l, st);
		break;
	case KVFS_NODE_EXPIRING:
		/* Links only: no directory's ".." is here. */
		stat_collection_times(t, listing_of(lists, n->coll), st);
		break;
	case KVFS_NODE_OBJECT:
		st->st_nlink = 3; /* versions/ */
		stat_times(st, n->entry->item.attrs.created,
			   n->entry->item.attrs.updated);
		break;
	case KVFS_NODE_VERSIONS:
		/* Not known without the versions listing: 1 tells find(1)
		 * not to count on it. */
		st->st_nlink = 1;
		stat_times(st, n->entry->item.attrs.created,
			   n->entry->item.attrs.updated);
		break;
	case KVFS_NODE_VERSION:
		stat_times(st, n->version->attrs.created,
			   n->version->attrs.updated);
		break;
	case KVFS_NODE_FILE:
	case KVFS_NODE_CONTROL:
	case KVFS_NODE_CONTROL_FILE:
	case KVFS_NODE_EXPIRING_LINK:
		break;
	}
}

int kvfs_tree_link_target(const struct kvfs_tree_node *n, char *buf,
			  size_t size)
{
	int len;

	if (n->kind != KVFS_NODE_EXPIRING_LINK)
		return -EINVAL;
	len = snprintf(buf, size, "../%s/%s",
		       kvfs_collection_info(n->coll)->name,
		       n->entry->item.name);
	return len < 0 ? -EINVAL : len;
}

void kvfs_tree_stat_link(
	const struct kvfs_tree *t, const struct kvfs_tree_node *n,
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	struct stat *st)
{
	int len = kvfs_tree_link_target(n, NULL, 0);

	stat_common(t, st);
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_size = len < 0 ? 0 : (off_t)len;
	stat_collection_times(t, listing_of(lists, n->coll), st);
}

void kvfs_tree_stat_file(const struct kvfs_tree *t,
			 const struct kvfs_tree_node *n,
			 const struct kvfs_tree_view *v, struct stat *st)
{
	const struct kvfs_object_attrs *a = kvfs_tree_attrs(n);
	size_t len = kvfs_files_span_size(&v->bytes);

	stat_common(t, st);
	stat_owner(n, st);
	st->st_mode = S_IFREG | v->mode;
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	st->st_blocks = (blkcnt_t)((len + 511) / 512);
	stat_times(st, a->created, a->updated);
}

void kvfs_tree_stat_control(const struct kvfs_tree *t,
			    const struct kvfs_tree_node *n, int64_t now,
			    struct stat *st)
{
	stat_common(t, st);
	if (n->kind == KVFS_NODE_CONTROL) {
		st->st_mode = S_IFDIR | 0500;
		st->st_nlink = 2;
		stat_times(st, t->mount_time, t->mount_time);
	} else {
		st->st_mode = S_IFREG | 0400;
		st->st_nlink = 1;
		stat_times(st, t->mount_time, now);
	}
}

void kvfs_tree_statfs(
	const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_],
	struct statvfs *sv)
{
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	/* Each object: its directory, versions/ and its collection's
	 * files. */
	sv->f_files = 2;
	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++) {
		const struct kvfs_listing *l =
			listing_of(lists, (enum kvfs_collection)c);

		/* An object that is a file: it and its versions' directory. */
		if (l)
			sv->f_files +=
				l->n *
				(shapes[c].is_file ? 2 : 2 + shapes[c].nfiles);
	}
	sv->f_namemax = KVFS_TREE_NAME_MAX;
	sv->f_flag = ST_RDONLY;
}

/* ---- extended attributes (DESIGN §2) ----
 *
 * What the listing carries (the attributes, the tags, a certificate's x5t,
 * a secret's contentType; a version's id and version in its versions
 * listing) is served from the listing that resolved the node, so that it
 * costs no request and a closed object shows it too.  The rest comes with
 * the version's GET (its files): a certificate's or a key's is fetched for
 * it, a secret's never (its GET is its value, fetched on the first open
 * only), so a secret's latest id and version are there once it was
 * read. */

#define ALL_COLLECTIONS (~0u)
#define ONLY(c) (1u << (c))

enum xattr {
	X_ID,
	X_VERSION,
	X_X5T,
	X_SHA256,
	X_ENABLED,
	X_NBF,
	X_EXP,
	X_EXPIRES_IN,
	X_CREATED,
	X_UPDATED,
	X_SUBJECT,
	X_CONTENT_TYPE,
	X_KTY,
	X_CRV,
	X_KEY_OPS,
	X_KEY_SIZE,
	X_TAGS,
};

/* Where an xattr's value comes from, when not from the listing. */
enum {
	/* The version's GET (its files)... */
	XF_GET = 1 << 0,
	/* ...but for a version, whose versions listing item carries it. */
	XF_ITEM_VERSION = 1 << 1,
	/* Some objects have none: then it is not listed. */
	XF_SOME = 1 << 2,
};

/* Every xattr, in the order listxattr(2) gives them, the collections
 * whose objects carry it and where its value comes from. */
static const struct {
	const char *name;
	unsigned colls;
	unsigned flags;
} xattrs[] = {
	[X_ID] = {"user.kvfs.id", ALL_COLLECTIONS, XF_GET | XF_ITEM_VERSION},
	[X_VERSION] = {"user.kvfs.version", ALL_COLLECTIONS,
		       XF_GET | XF_ITEM_VERSION},
	[X_X5T] = {"user.kvfs.x5t", ONLY(KVFS_COLLECTION_CERTIFICATES), 0},
	[X_SHA256] = {"user.kvfs.sha256", ONLY(KVFS_COLLECTION_CERTIFICATES),
		      XF_GET},
	[X_ENABLED] = {"user.kvfs.enabled", ALL_COLLECTIONS, 0},
	[X_NBF] = {"user.kvfs.nbf", ALL_COLLECTIONS, 0},
	[X_EXP] = {"user.kvfs.exp", ALL_COLLECTIONS, 0},
	/* exp - now: changes with the clock, which FUSE lets it (the
	 * kernel keeps no xattr); none without an exp. */
	[X_EXPIRES_IN] = {"user.kvfs.expires_in",
			  ONLY(KVFS_COLLECTION_CERTIFICATES), XF_SOME},
	[X_CREATED] = {"user.kvfs.created", ALL_COLLECTIONS, 0},
	[X_UPDATED] = {"user.kvfs.updated", ALL_COLLECTIONS, 0},
	[X_SUBJECT] = {"user.kvfs.subject", ONLY(KVFS_COLLECTION_CERTIFICATES),
		       XF_GET},
	[X_CONTENT_TYPE] = {"user.kvfs.content_type",
			    ONLY(KVFS_COLLECTION_SECRETS), XF_SOME},
	[X_KTY] = {"user.kvfs.kty", ONLY(KVFS_COLLECTION_KEYS), XF_GET},
	[X_CRV] = {"user.kvfs.crv", ONLY(KVFS_COLLECTION_KEYS),
		   XF_GET | XF_SOME},
	[X_KEY_OPS] = {"user.kvfs.key_ops", ONLY(KVFS_COLLECTION_KEYS), XF_GET},
	[X_KEY_SIZE] = {"user.kvfs.key_size", ONLY(KVFS_COLLECTION_KEYS),
			XF_GET},
	[X_TAGS] = {"user.kvfs.tags", ALL_COLLECTIONS, 0},
};

bool kvfs_tree_has_xattrs(const struct kvfs_tree_node *n)
{
	return n->kind == KVFS_NODE_OBJECT || n->kind == KVFS_NODE_VERSION ||
	       n->kind == KVFS_NODE_FILE;
}

bool kvfs_tree_fetched_on_open(enum kvfs_collection c)
{
	enum kvfs_file_kind k;

	return kvfs_tree_object_is_file(c, &k) && kvfs_tree_size_on_fetch(k);
}

/* The index of xattr name, or -1. */
static int xattr_index(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(xattrs); i++)
		if (strcmp(name, xattrs[i].name) == 0)
			return (int)i;
	return -1;
}

bool kvfs_tree_xattr_known(const char *name)
{
	return xattr_index(name) >= 0;
}

/* The listing item of n's version: its versions listing's inside
 * versions/, else its collection listing's. */
static const struct kvfs_object_item *item_of(const struct kvfs_tree_node *n)
{
	return n->version ? n->version : &n->entry->item;
}

/* Whether xattr i of n comes from the version's files; false when it is
 * none of n's collection's. */
static bool xattr_from_files(const struct kvfs_tree_node *n, enum xattr i)
{
	if (!(xattrs[i].colls & ONLY(n->coll)))
		return false;
	if (i == X_X5T) /* a listing without it: the files' own */
		return !item_of(n)->x5t;
	if (!(xattrs[i].flags & XF_GET))
		return false;
	return !(n->version && (xattrs[i].flags & XF_ITEM_VERSION));
}

bool kvfs_tree_xattr_needs_files(const struct kvfs_tree_node *n,
				 const char *name)
{
	int i = xattr_index(name);

	return i >= 0 && xattr_from_files(n, (enum xattr)i);
}

bool kvfs_tree_listxattr_needs_files(const struct kvfs_tree_node *n)
{
	for (size_t i = 0; i < ELEMENTSOF(xattrs); i++)
		if ((xattrs[i].flags & XF_SOME) &&
		    xattr_from_files(n, (enum xattr)i))
			return true;
	return false;
}

/* The id and version of every collection's files, wherever its part
 * keeps them. */
static void files_id(const struct kvfs_files *f, const char **ret_id,
		     const char **ret_version)
{
	const struct kvfs_files_header h = kvfs_files_header(f);

	*ret_id = h.id;
	*ret_version = h.version;
}

/* The value of xattr i of n (of n's collection) at now, given its files
 * (NULL: not fetched), in *ret: a string of n's, a number formatted into num,
 * or one made for it in *owned (the caller frees it).  -ENODATA when n has
 * none, or it is from the files and they are not there; -ENOMEM. */
static int xattr_value(const struct kvfs_tree *t,
		       const struct kvfs_tree_node *n,
		       const struct kvfs_files *f, enum xattr i, int64_t now,
		       char *num, size_t size, char **owned, const char **ret)
{
	const struct kvfs_object_item *it = item_of(n);
	const struct kvfs_object_attrs *a = &it->attrs;
	const char *id, *version, *s = NULL;
	int64_t v;

	*owned = NULL;
	if (!xattr_from_files(n, i))
		f = NULL; /* the same value however much is fetched */
	else if (!f)
		return -ENODATA;
	if (f)
		files_id(f, &id, &version);
	switch (i) {
	case X_ID:
		if (f) {
			s = id;
			break;
		}
		if (asprintf(owned, "%s/%s/%s/%s", t->config->vault_url,
			     kvfs_collection_info(n->coll)->name, it->name,
			     it->version) < 0) {
			*owned = NULL;
			return -ENOMEM;
		}
		s = *owned;
		break;
	case X_VERSION:
		s = f ? version : it->version;
		break;
	case X_X5T:
		s = f ? kvfs_files_meta(f, KVFS_META_X5T) : it->x5t;
		break;
	case X_SHA256:
		s = kvfs_files_meta(f, KVFS_META_SHA256);
		break;
	case X_ENABLED:
		s = a->enabled ? "true" : "false";
		break;
	case X_NBF:
	case X_EXP:
	case X_CREATED:
	case X_UPDATED:
		v = i == X_NBF	     ? a->nbf
		    : i == X_EXP     ? a->exp
		    : i == X_CREATED ? a->created
				     : a->updated;
		snprintf(num, size, "%lld", (long long)v);
		s = num;
		break;
	case X_EXPIRES_IN:
		if (!a->exp)
			break;
		snprintf(num, size, "%lld", (long long)(a->exp - now));
		s = num;
		break;
	case X_SUBJECT:
		s = kvfs_files_meta(f, KVFS_META_SUBJECT);
		break;
	case X_CONTENT_TYPE:
		s = it->content_type;
		break;
	case X_KTY:
		s = kvfs_files_meta(f, KVFS_META_KTY);
		break;
	case X_CRV:
		s = kvfs_files_meta(f, KVFS_META_CRV);
		break;
	case X_KEY_OPS:
		s = kvfs_files_meta(f, KVFS_META_KEY_OPS);
		break;
	case X_KEY_SIZE:
		s = kvfs_files_meta(f, KVFS_META_KEY_SIZE);
		break;
	case X_TAGS:
		s = it->tags_json ? it->tags_json : "{}";
		break;
	}
	if (!s)
		return -ENODATA;
	*ret = s;
	return 0;
}

/* Copy value out the xattr way: its length when size is 0, ERANGE when it
 * does not fit. */
static int xattr_out(const char *value, size_t len, char *buf, size_t size)
{
	if (len > INT_MAX)
		return -E2BIG;
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, value, len);
	return (int)len;
}

/* Whether xattr i is n's, given its files (NULL: not fetched). */
static bool xattr_listed(const struct kvfs_tree *t,
			 const struct kvfs_tree_node *n,
			 const struct kvfs_files *files, enum xattr i)
{
	_cleanup_free_ char *owned = NULL;
	const char *v;
	char num[24];

	if (!(xattrs[i].colls & ONLY(n->coll)))
		return false;
	/* Not fetched yet: there once fetched, unless only the files can
	 * tell or nothing fetches them for it. */
	if (xattr_from_files(n, i) && !files)
		return !(xattrs[i].flags & XF_SOME) &&
		       !kvfs_tree_fetched_on_open(n->coll);
	/* Without memory for it, listed all the same: getxattr says so.
	 * Whether there is a value does not depend on the time. */
	return xattr_value(t, n, files, i, 0, num, sizeof(num), &owned, &v) !=
	       -ENODATA;
}

int kvfs_tree_getxattr(const struct kvfs_tree *t,
		       const struct kvfs_tree_node *n,
		       const struct kvfs_files *files, const char *name,
		       int64_t now, char *buf, size_t size)
{
	_cleanup_free_ char *owned = NULL;
	int i = xattr_index(name), r;
	const char *v;
	char num[24];

	if (i < 0 || !kvfs_tree_has_xattrs(n) ||
	    !(xattrs[i].colls & ONLY(n->coll)))
		return -ENODATA;
	r = xattr_value(t, n, files, (enum xattr)i, now, num, sizeof(num),
			&owned, &v);
	return r < 0 ? r : xattr_out(v, strlen(v), buf, size);
}

int kvfs_tree_listxattr(const struct kvfs_tree *t,
			const struct kvfs_tree_node *n,
			const struct kvfs_files *files, char *buf, size_t size)
{
	size_t len = 0;
	char all[512];

	if (kvfs_tree_has_xattrs(n)) {
		for (size_t i = 0; i < ELEMENTSOF(xattrs); i++) {
			size_t l = strlen(xattrs[i].name) + 1;

			if (!xattr_listed(t, n, files, (enum xattr)i))
				continue;
			memcpy(all + len, xattrs[i].name, l);
			len += l;
		}
	}
	return xattr_out(all, len, buf, size);
}
