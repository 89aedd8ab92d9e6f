/* The FUSE side: the tree layout (certificates/<name>/ with the files of
 * the latest version, versions/<version>/ with those of each version),
 * modes and times from certificate attributes, extended attributes, and
 * the mount's life from fuse_new() to the unmount.  Paths
 * are resolved against a listing snapshot; file contents come from the
 * cache, which an open file keeps a reference to, so its bytes never
 * change while it is open.  Read-only everywhere: every write-type
 * operation is EROFS.  Operations run on libfuse's worker threads; this
 * file keeps no lock of its own and never talks to the network itself.
 * The revalidation thread (reval.c) tells the kernel what changed through
 * invalidate_change(), never from a request handler (that can deadlock);
 * SIGHUP wakes it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <fuse.h>

#include "caller.h"
#include "control.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"
#include "reval.h"
#include "util.h"

#define CERTIFICATES "certificates"
/* Long: the tree changes only when the listing does, and revalidation
 * tells the kernel (invalidate_change). */
#define ATTR_TIMEOUT 60.0
#define ENTRY_TIMEOUT 60.0
#define NEGATIVE_TIMEOUT 5.0
#define MAX_THREADS 32
#define NAME_MAX_KV 127
/* How long the kernel may keep a size it was given: the attribute and
 * entry timeouts, and a second for the clocks. */
#define SIZE_HIDDEN_MS ((int64_t)(ATTR_TIMEOUT + 1.0) * 1000)

struct fs {
	const struct kvfs_config *config;
	struct kvfs_cache *cache;
	time_t mount_time;
	/* Every open file's handle: the kernel drops the RELEASE of a file
	 * closed as the mount goes away, so what is left is freed at exit. */
	pthread_mutex_t handles_lock;
	struct handle *handles;
};

enum node_kind {
	NODE_ROOT,
	NODE_CERTIFICATES,
	NODE_CERT,     /* certificates/<name>/ */
	NODE_VERSIONS, /* certificates/<name>/versions/ */
	NODE_VERSION,  /* certificates/<name>/versions/<version>/ */
	NODE_FILE,     /* a file of either kind of certificate directory */
	NODE_CONTROL,  /* .kvfs/, see "the control directory" below */
	NODE_CONTROL_FILE,
};

/* In this order in a directory listing. */
enum file_kind {
	FILE_CERT_PEM,
	FILE_CERT_DER,
	FILE_CHAIN,
	FILE_FULLCHAIN,
	FILE_PRIVKEY,
	FILE_BUNDLE,
	FILE_PFX,
};

static const char *const file_names[] = {
	[FILE_CERT_PEM] = "cert.pem",	[FILE_CERT_DER] = "cert.der",
	[FILE_CHAIN] = "chain.pem",	[FILE_FULLCHAIN] = "fullchain.pem",
	[FILE_PRIVKEY] = "privkey.pem", [FILE_BUNDLE] = "bundle.pem",
	[FILE_PFX] = "cert.pfx",
};

#define VERSIONS "versions"

/* Files from FILE_CHAIN on are made from the secret; these hold the key. */
static bool holds_key(enum file_kind k)
{
	return k >= FILE_PRIVKEY;
}

/* A resolved path.  entry points into listing and version into versions,
 * which the node holds references to until node_clear().  version is NULL
 * for the latest version (the certificate directory itself). */
struct node {
	enum node_kind kind;
	struct kvfs_listing *listing;
	const struct kvfs_entry *entry;
	struct kvfs_versions *versions;
	const struct kvfs_cert_item *version;
	enum file_kind file;
	enum kvfs_control_file control; /* NODE_CONTROL_FILE */
};

/* What an open file reads from: one snapshot of one version's files. */
struct handle {
	struct handle *prev, *next; /* fs->handles */
	struct kvfs_files *files;
	const void *data;
	size_t len;
	char *owned; /* a .kvfs/ file's snapshot, freed on release */
	bool cached; /* opened through the page cache, counted by the cache */
	struct stat st; /* what fstat() says once the certificate is gone */
};

static struct kvfs_fs_hooks hooks;
static struct kvfs_control *control;

void kvfs_fs_set_control(struct kvfs_control *ctl)
{
	control = ctl;
}

void kvfs_fs_set_hooks(const struct kvfs_fs_hooks *h)
{
	hooks = h ? *h : (struct kvfs_fs_hooks){0};
}

/* What a file is right now. */
struct view {
	const void *data; /* NULL when not known without a fetch */
	size_t len;
	mode_t mode;
	bool forbidden; /* the vault will not give this identity the secret */
};

static struct fs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static void node_clear(struct node *n)
{
	kvfs_listing_unref(n->listing);
	kvfs_versions_unref(n->versions);
	n->listing = NULL;
	n->entry = NULL;
	n->versions = NULL;
	n->version = NULL;
}

static const struct kvfs_cert_attrs *node_attrs(const struct node *n)
{
	return n->version ? &n->version->attrs : &n->entry->item.attrs;
}

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

static bool file_kind_of(const char *name, enum file_kind *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(file_names); i++)
		if (strcmp(name, file_names[i]) == 0) {
			*ret = (enum file_kind)i;
			return true;
		}
	return false;
}

/* The rest of a path after "/.kvfs": the directory or one of its files. */
static int resolve_control(const char *p, struct node *ret)
{
	struct node n = {.kind = NODE_CONTROL};

	if (!control)
		return -ENOENT;
	if (*p == '/' && p[1] != '\0') {
		p++;
		if (strchr(p, '/') || kvfs_control_file_of(p, &n.control) < 0)
			return -ENOENT;
		n.kind = NODE_CONTROL_FILE;
	}
	*ret = n;
	return 0;
}

/* Resolve path.  A lookup inside versions/ fetches the versions listing
 * (once); nothing else here touches the network. */
static int resolve(struct fs *fs, const char *path, struct node *ret)
{
	char name[NAME_MAX_KV + 1], part[NAME_MAX_KV + 1];
	struct node n = {.kind = NODE_ROOT};
	const char *p = path;
	int len, r;

	if (!p || *p != '/')
		return -ENOENT;
	p++;
	if (*p == '\0') {
		*ret = n;
		return 0;
	}

	len = (int)strcspn(p, "/");
	if ((size_t)len == strlen(KVFS_CONTROL_DIR) &&
	    strncmp(p, KVFS_CONTROL_DIR, (size_t)len) == 0)
		return resolve_control(p + len, ret);
	if ((size_t)len != strlen(CERTIFICATES) ||
	    strncmp(p, CERTIFICATES, (size_t)len) != 0)
		return -ENOENT;
	p += len;
	n.kind = NODE_CERTIFICATES;
	if (*p == '\0') {
		*ret = n;
		return 0;
	}

	len = component(++p, name, sizeof(name));
	/* ".." and the like are not Key Vault names and never reach the
	 * listing. */
	if (len < 0 || !kvfs_vault_name_valid(name))
		return -ENOENT;
	p += len;
	n.listing = kvfs_cache_listing(fs->cache);
	n.entry = kvfs_listing_find(n.listing, name);
	if (!n.entry) {
		node_clear(&n);
		return -ENOENT;
	}
	n.kind = NODE_CERT;
	if (*p == '\0')
		goto found;

	len = component(++p, part, sizeof(part));
	if (len < 0)
		goto enoent;
	p += len;
	if (strcmp(part, VERSIONS) == 0) {
		n.kind = NODE_VERSIONS;
		if (*p == '\0')
			goto found;
		len = component(++p, part, sizeof(part));
		if (len < 0 || !kvfs_vault_name_valid(part))
			goto enoent;
		p += len;
		r = kvfs_cache_versions(fs->cache, n.entry->item.name,
					&n.versions);
		if (r < 0) {
			node_clear(&n);
			return r;
		}
		n.version = kvfs_versions_find(n.versions, part);
		if (!n.version)
			goto enoent;
		n.kind = NODE_VERSION;
		if (*p == '\0')
			goto found;
		len = component(++p, part, sizeof(part));
		if (len < 0)
			goto enoent;
		p += len;
	}
	if (*p != '\0' || !file_kind_of(part, &n.file))
		goto enoent;
	n.kind = NODE_FILE;
found:
	*ret = n;
	return 0;
enoent:
	node_clear(&n);
	return -ENOENT;
}

/* DESIGN §2: closed for everyone, root included, when disabled or outside
 * its validity (unless allow_expired). */
static bool cert_closed(const struct fs *fs, const struct kvfs_cert_attrs *a)
{
	time_t now;

	if (!a->enabled)
		return true;
	if (fs->config->allow_expired)
		return false;
	now = time(NULL);
	if (a->nbf && now < a->nbf)
		return true;
	if (a->exp && now >= a->exp)
		return true;
	return false;
}

/* The files of the node's version: fetched when fetch, else only when
 * already there (NULL otherwise). */
static int node_files(struct fs *fs, const struct node *n, bool fetch,
		      struct kvfs_files **ret)
{
	int r;

	*ret = NULL;
	if (n->version)
		return fetch ? kvfs_cache_version_files(
				       fs->cache, n->entry->item.name,
				       n->version->version, ret)
			     : 0;
	if (fetch)
		return kvfs_cache_files(fs->cache, n->entry->item.name, ret);
	r = kvfs_cache_files_peek(fs->cache, n->entry->item.name, ret);
	return r == -ENODATA ? 0 : r;
}

/* node_files() for the attributes the kernel keeps (getattr, readdir):
 * right after a rotation, while files of the old version are open
 * through the page cache, the sizes stay theirs, as their readers go by
 * the kernel's file size (kvfs_cache_files_kernel). */
static int node_files_kernel(struct fs *fs, const struct node *n, bool fetch,
			     struct kvfs_files **ret)
{
	if (n->version || !fetch)
		return node_files(fs, n, fetch, ret);
	*ret = NULL;
	return kvfs_cache_files_kernel(fs->cache, n->entry->item.name, ret);
}

/* What file k of a directory is, given its files (NULL: not fetched).
 * fetch: get the secret when a secret-derived file needs it; otherwise
 * -ENODATA when it would be needed.  -ENOENT when the file does not exist
 * (a key that is not exportable), -EIO when the secret is unusable. */
static int file_view(struct fs *fs, const struct node *n,
		     struct kvfs_files *files, enum file_kind k, bool fetch,
		     struct view *v)
{
	const struct kvfs_pki_secret_files *sf = NULL;
	bool closed = cert_closed(fs, node_attrs(n));
	int r;

	memset(v, 0, sizeof(*v));
	v->mode = closed ? 0000 : holds_key(k) ? fs->config->key_mode : 0444;

	if (files && holds_key(k) && !files->bundle.exportable)
		return -ENOENT;
	if (!files)
		return closed ? 0 : -ENODATA;

	switch (k) {
	case FILE_CERT_PEM:
		v->data = files->cert_pem;
		v->len = files->cert_pem_len;
		return 0;
	case FILE_CERT_DER:
		v->data = files->bundle.der;
		v->len = files->bundle.der_len;
		return 0;
	default:
		break;
	}

	/* A closed file is not worth a secret: it cannot be opened. */
	if (closed || !fetch)
		r = kvfs_cache_secret_peek(fs->cache, files, &sf);
	else
		r = kvfs_cache_secret(fs->cache, files, &sf);
	if (r == -EACCES) {
		v->mode = 0000;
		v->forbidden = true;
		return 0;
	}
	if (r == -ENODATA && closed)
		return 0;
	if (r < 0)
		return closed ? 0 : r;
	if (holds_key(k) && !sf->has_key)
		return -ENOENT;
	if (closed)
		return 0;
	switch (k) {
	case FILE_CHAIN:
		v->data = sf->chain;
		v->len = sf->chain_len;
		break;
	case FILE_FULLCHAIN:
		v->data = sf->fullchain;
		v->len = sf->fullchain_len;
		break;
	case FILE_PRIVKEY:
		v->data = sf->privkey;
		v->len = sf->privkey_len;
		break;
	case FILE_BUNDLE:
		v->data = sf->bundle;
		v->len = sf->bundle_len;
		break;
	case FILE_PFX:
		v->data = sf->pfx;
		v->len = sf->pfx_len;
		break;
	default:
		break;
	}
	return 0;
}

static void stat_common(const struct fs *fs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = fs->config->uid;
	st->st_gid = fs->config->gid;
	st->st_blksize = 4096;
}

static void stat_times(struct stat *st, int64_t created, int64_t updated)
{
	st->st_mtim.tv_sec = (time_t)updated;
	st->st_ctim.tv_sec = (time_t)updated;
	st->st_atim.tv_sec = (time_t)created;
}

static void stat_dir(const struct fs *fs, const struct node *n,
		     const struct kvfs_listing *l, struct stat *st)
{
	stat_common(fs, st);
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	switch (n->kind) {
	case NODE_ROOT:
		st->st_nlink = 4; /* certificates/ and .kvfs/ */
		stat_times(st, fs->mount_time, fs->mount_time);
		break;
	case NODE_CERTIFICATES:
		/* Every certificate directory's ".." links here. */
		st->st_nlink = 2 + (l ? l->n : 0);
		stat_times(st, fs->mount_time,
			   l && l->updated_max ? l->updated_max
					       : fs->mount_time);
		break;
	case NODE_CERT:
		st->st_nlink = 3; /* versions/ */
		stat_times(st, n->entry->item.attrs.created,
			   n->entry->item.attrs.updated);
		break;
	case NODE_VERSIONS:
		/* Not known without the versions listing: 1 tells find(1)
		 * not to count on it. */
		st->st_nlink = 1;
		stat_times(st, n->entry->item.attrs.created,
			   n->entry->item.attrs.updated);
		break;
	case NODE_VERSION:
		stat_times(st, n->version->attrs.created,
			   n->version->attrs.updated);
		break;
	case NODE_FILE:
	case NODE_CONTROL:
	case NODE_CONTROL_FILE:
		break;
	}
}

static void stat_file(const struct fs *fs, const struct node *n,
		      const struct view *v, struct stat *st)
{
	const struct kvfs_cert_attrs *a = node_attrs(n);

	stat_common(fs, st);
	st->st_mode = S_IFREG | v->mode;
	st->st_nlink = 1;
	st->st_size = (off_t)v->len;
	st->st_blocks = (blkcnt_t)((v->len + 511) / 512);
	stat_times(st, a->created, a->updated);
}

static int fill(void *buf, fuse_fill_dir_t filler, const char *name,
		const struct stat *st)
{
	return filler(buf, name, st, 0, st ? FUSE_FILL_DIR_PLUS : 0);
}

/* ---- the control directory, .kvfs/ (DESIGN §6) ----
 *
 * Readable by the mount's owner (uid=, or the mounting user) and root
 * only: 0500 and 0400, which the kernel enforces under allow_other
 * (default_permissions); open checks the caller too, for a mount without
 * allow_other whose uid= is not the mounting user.  Each open renders a
 * fresh snapshot (control.c) that the handle owns, so a reader sees one
 * consistent text however it reads; direct_io, so the page cache never
 * serves an old one.  stat reports size 0, as /proc does (the size is
 * only known once rendered); fstat of an open file reports its
 * snapshot's. */

static bool is_control(const struct node *n)
{
	return n->kind == NODE_CONTROL || n->kind == NODE_CONTROL_FILE;
}

static void control_stat(const struct fs *fs, const struct node *n,
			 struct stat *st)
{
	stat_common(fs, st);
	if (n->kind == NODE_CONTROL) {
		st->st_mode = S_IFDIR | 0500;
		st->st_nlink = 2;
		stat_times(st, fs->mount_time, fs->mount_time);
	} else {
		time_t now = time(NULL);

		st->st_mode = S_IFREG | 0400;
		st->st_nlink = 1;
		stat_times(st, fs->mount_time, now);
	}
}

static int control_getattr(const struct fs *fs, const struct node *n,
			   struct fuse_file_info *fi, struct stat *st)
{
	control_stat(fs, n, st);
	if (n->kind == NODE_CONTROL_FILE && fi && fi->fh) {
		const struct handle *h = (struct handle *)(uintptr_t)fi->fh;

		st->st_size = (off_t)h->len;
		st->st_blocks = (blkcnt_t)((h->len + 511) / 512);
	}
	return 0;
}

static bool caller_is_owner(const struct fs *fs)
{
	uid_t uid = fuse_get_context()->uid;

	return uid == 0 || uid == fs->config->uid;
}

/* Open handles are listed, so that those the kernel never releases are
 * freed at exit. */
static void handle_track(struct fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
}

static int control_open(struct fs *fs, const struct node *n,
			struct fuse_file_info *fi)
{
	struct handle *h;
	int r;

	if (n->kind != NODE_CONTROL_FILE)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	if (!caller_is_owner(fs))
		return -EACCES;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	r = kvfs_control_render(control, n->control, &h->owned, &h->len);
	if (r < 0) {
		free(h);
		return r;
	}
	h->data = h->owned;
	handle_track(fs, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	return 0;
}

static int readdir_control(const struct fs *fs, void *buf,
			   fuse_fill_dir_t filler)
{
	struct stat st;

	if (!caller_is_owner(fs))
		return -EACCES;
	for (size_t i = 0; i < KVFS_CONTROL_COUNT_; i++) {
		struct node n = {.kind = NODE_CONTROL_FILE,
				 .control = (enum kvfs_control_file)i};

		control_stat(fs, &n, &st);
		if (fill(buf, filler,
			 kvfs_control_file_name((enum kvfs_control_file)i),
			 &st))
			break;
	}
	return 0;
}

/* Whether the caller may open key-bearing files: root, and their owner.
 * (Others whom key_mode= lets in through its group or other bits count as
 * not: they only see size 0 until the secret is fetched.) */
static bool caller_may_open_keys(const struct fs *fs)
{
	return caller_is_owner(fs);
}

static int kvfs_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	bool secret = true;
	struct view v;
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r == -ENOENT && fi && fi->fh) {
		/* fstat() of an open file of a certificate that is gone:
		 * what it was opened with.  Otherwise an open file gets
		 * what its path gets: the kernel keeps one size per path,
		 * and the page cache's readers go by it. */
		*st = ((struct handle *)(uintptr_t)fi->fh)->st;
		return 0;
	}
	if (r < 0)
		return r;
	if (is_control(&n))
		return control_getattr(fs, &n, fi, st);
	/* With allow_other, a stat of privkey.pem by a user who may not
	 * open it must not make the daemon fetch the key from the vault. */
	if (n.kind == NODE_FILE && holds_key(n.file))
		secret = caller_may_open_keys(fs);
	if (n.kind != NODE_FILE) {
		struct kvfs_listing *l = n.listing;

		if (n.kind == NODE_CERTIFICATES)
			l = kvfs_cache_listing(fs->cache);
		stat_dir(fs, &n, l, st);
		if (l != n.listing)
			kvfs_listing_unref(l);
		node_clear(&n);
		return 0;
	}

	/* A closed file is not fetched just to be stat'ed. */
	r = node_files_kernel(fs, &n, !cert_closed(fs, node_attrs(&n)), &files);
	/* Without the secret the size is 0 until someone who may open the
	 * file has: the kernel's readers must then read around that size
	 * (kvfs_open).  Said before the secret is looked at, so that an open
	 * that fetches it meanwhile sees it. */
	if (r == 0 && !secret && files)
		__atomic_store_n(&files->size_hidden_until,
				 kvfs_now_ms() + SIZE_HIDDEN_MS,
				 __ATOMIC_SEQ_CST);
	if (r == 0)
		r = file_view(fs, &n, files, n.file, secret, &v);
	if (r == -ENODATA && !secret)
		r = 0;
	if (r == 0)
		stat_file(fs, &n, &v, st);
	kvfs_files_unref(files);
	node_clear(&n);
	return r;
}

/* Whether path names the certificate as the vault spells it:
 * "/certificates/<name>/...". */
static bool spelled_as_in_vault(const char *path, const struct node *n)
{
	const char *p = path + strlen("/" CERTIFICATES "/");
	size_t len = strlen(n->entry->item.name);

	return strncmp(p, n->entry->item.name, len) == 0 &&
	       (p[len] == '/' || p[len] == '\0');
}

static int kvfs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	bool cacheable = true, counted = false;
	struct handle *h;
	struct stat st;
	struct view v;
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (is_control(&n))
		return control_open(fs, &n, fi);
	if (n.kind != NODE_FILE) {
		node_clear(&n);
		return -EISDIR;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		node_clear(&n);
		return -EROFS;
	}
	/* Checked here, not left to the mode bits: root ignores those. */
	if (cert_closed(fs, node_attrs(&n))) {
		node_clear(&n);
		return -EACCES;
	}

	/* A version's bytes never change: its page cache is always good. */
	if (n.version) {
		r = node_files(fs, &n, true, &files);
	} else {
		r = kvfs_cache_files_for(
			fs->cache, n.entry->item.name,
			kvfs_caller_tgid(fuse_get_context()->pid), 1u << n.file,
			&files, &cacheable);
		/* The kernel has one inode per spelling of the name, and
		 * revalidation tells it about the vault's own: another
		 * spelling (WWW for www) is read around the page cache. */
		if (r == 0 && cacheable && !spelled_as_in_vault(path, &n)) {
			kvfs_files_uncount(files);
			cacheable = false;
		}
		counted = r == 0 && cacheable;
	}
	if (r == 0)
		r = file_view(fs, &n, files, n.file, true, &v);
	if (r == 0 && v.forbidden)
		r = -EACCES;
	/* The kernel may hold size 0 for this file (kvfs_getattr), and its
	 * page cache would end every read there: read around it. */
	if (r == 0 && holds_key(n.file) &&
	    __atomic_load_n(&files->size_hidden_until, __ATOMIC_SEQ_CST) >
		    kvfs_now_ms()) {
		if (counted)
			kvfs_files_uncount(files);
		counted = false;
		cacheable = false;
	}
	if (r == 0)
		stat_file(fs, &n, &v, &st);
	node_clear(&n);
	if (r < 0) {
		kvfs_files_release(files, counted);
		return r;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		kvfs_files_release(files, counted);
		return -ENOMEM;
	}
	/* The handle's reference keeps every byte of this version, the
	 * secret-derived ones included, until release. */
	h->files = files;
	h->data = v.data;
	h->len = v.len;
	h->cached = counted;
	h->st = st;
	handle_track(fs, h);

	fi->fh = (uint64_t)(uintptr_t)h;
	if (cacheable) {
		/* Warm reads never reach us: the page cache serves them. */
		fi->keep_cache = 1;
	} else {
		/* A version the directory no longer shows (this process
		 * pinned it), or one the kernel has not been told about
		 * yet: the page cache and the file size the kernel knows
		 * may be of another version, so read past both. */
		fi->direct_io = 1;
	}
	return 0;
}

static int kvfs_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	if (!h)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	if ((size_t)off >= h->len)
		return 0;
	if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	if (size > INT_MAX)
		size = INT_MAX;
	memcpy(buf, (const char *)h->data + off, size);
	if (h->files)
		kvfs_metrics_add(KVFS_COUNTER_READ_BYTES, size);
	return (int)size;
}

static void handle_unlink_locked(struct fs *fs, struct handle *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
}

static int kvfs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct fs *fs = fs_get();

	if (h) {
		pthread_mutex_lock(&fs->handles_lock);
		handle_unlink_locked(fs, h);
		pthread_mutex_unlock(&fs->handles_lock);
		kvfs_files_release(h->files, h->cached);
		free(h->owned);
		free(h);
		fi->fh = 0;
	}
	return 0;
}

static int readdir_certificates(struct fs *fs, void *buf,
				fuse_fill_dir_t filler)
{
	struct kvfs_listing *l = kvfs_cache_listing(fs->cache);
	struct stat st;

	for (size_t i = 0; i < l->n; i++) {
		struct node n = {.kind = NODE_CERT, .entry = &l->entries[i]};

		stat_dir(fs, &n, l, &st);
		if (fill(buf, filler, l->entries[i].item.name, &st))
			break;
	}
	kvfs_listing_unref(l);
	return 0;
}

/* The files of a certificate or version directory.  The bundle is fetched
 * (it says whether the key is exportable, so that a name is never listed
 * that a lookup would not find), the secret never: a file whose
 * attributes need it is listed without them. */
static int readdir_cert(struct fs *fs, struct node *n, void *buf,
			fuse_fill_dir_t filler)
{
	struct kvfs_files *files = NULL;
	bool closed = cert_closed(fs, node_attrs(n));
	struct stat st;
	struct view v;
	int r;

	/* A certificate whose bundle is unusable still lists its names, so
	 * that only its own files fail (with EIO), not the directory. */
	r = node_files_kernel(fs, n, !closed, &files);
	if (r < 0 && r != -EIO)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(file_names); i++) {
		r = file_view(fs, n, files, (enum file_kind)i, false, &v);
		if (r == -ENOENT)
			continue;
		if (r == 0)
			stat_file(fs, n, &v, &st);
		if (fill(buf, filler, file_names[i], r == 0 ? &st : NULL))
			break;
	}
	kvfs_files_unref(files);
	if (!n->version) {
		struct node d = *n;

		d.kind = NODE_VERSIONS;
		stat_dir(fs, &d, NULL, &st);
		fill(buf, filler, VERSIONS, &st);
	}
	return 0;
}

static int readdir_versions(struct fs *fs, struct node *n, void *buf,
			    fuse_fill_dir_t filler)
{
	struct kvfs_versions *vs;
	struct stat st;
	int r;

	r = kvfs_cache_versions(fs->cache, n->entry->item.name, &vs);
	if (r < 0)
		return r;
	for (size_t i = 0; i < vs->list.n; i++) {
		struct node d = *n;

		d.kind = NODE_VERSION;
		d.version = &vs->list.items[i];
		stat_dir(fs, &d, NULL, &st);
		if (fill(buf, filler, vs->list.items[i].version, &st))
			break;
	}
	kvfs_versions_unref(vs);
	return 0;
}

static int kvfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			off_t off, struct fuse_file_info *fi,
			enum fuse_readdir_flags flags)
{
	struct fs *fs = fs_get();
	struct node n;
	struct stat st;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (n.kind == NODE_FILE || n.kind == NODE_CONTROL_FILE) {
		node_clear(&n);
		return -ENOTDIR;
	}

	fill(buf, filler, ".", NULL);
	fill(buf, filler, "..", NULL);
	switch (n.kind) {
	case NODE_ROOT: {
		struct kvfs_listing *l = kvfs_cache_listing(fs->cache);
		struct node c = {.kind = NODE_CERTIFICATES};

		stat_dir(fs, &c, l, &st);
		kvfs_listing_unref(l);
		fill(buf, filler, CERTIFICATES, &st);
		control_stat(fs, &(struct node){.kind = NODE_CONTROL}, &st);
		fill(buf, filler, KVFS_CONTROL_DIR, &st);
		break;
	}
	case NODE_CERTIFICATES:
		r = readdir_certificates(fs, buf, filler);
		break;
	case NODE_CERT:
	case NODE_VERSION:
		r = readdir_cert(fs, &n, buf, filler);
		break;
	case NODE_VERSIONS:
		r = readdir_versions(fs, &n, buf, filler);
		break;
	case NODE_CONTROL:
		r = readdir_control(fs, buf, filler);
		break;
	case NODE_FILE:
	case NODE_CONTROL_FILE:
		break;
	}
	node_clear(&n);
	return r;
}

/* ---- extended attributes (DESIGN §2), from the version's bundle ---- */

static const char *const xattr_names[] = {
	"user.kvfs.id",	     "user.kvfs.version", "user.kvfs.x5t",
	"user.kvfs.sha256",  "user.kvfs.enabled", "user.kvfs.nbf",
	"user.kvfs.exp",     "user.kvfs.created", "user.kvfs.updated",
	"user.kvfs.subject", "user.kvfs.tags",
};

static bool has_xattrs(const struct node *n)
{
	return n->kind == NODE_CERT || n->kind == NODE_VERSION ||
	       n->kind == NODE_FILE;
}

/* The value of xattr i: a string, or a number formatted into num. */
static const char *xattr_value(const struct kvfs_files *f, size_t i, char *num,
			       size_t size)
{
	const struct kvfs_cert_attrs *a = &f->bundle.attrs;
	int64_t v;

	switch (i) {
	case 0:
		return f->bundle.id;
	case 1:
		return f->bundle.version;
	case 2:
		return f->x5t;
	case 3:
		return f->sha256;
	case 4:
		return a->enabled ? "true" : "false";
	case 5:
		v = a->nbf;
		break;
	case 6:
		v = a->exp;
		break;
	case 7:
		v = a->created;
		break;
	case 8:
		v = a->updated;
		break;
	case 9:
		return f->subject;
	default:
		return f->bundle.tags_json ? f->bundle.tags_json : "{}";
	}
	snprintf(num, size, "%lld", (long long)v);
	return num;
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

static int kvfs_getxattr(const char *path, const char *name, char *value,
			 size_t size)
{
	struct fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	const char *v = NULL;
	char num[24];
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (!has_xattrs(&n)) {
		node_clear(&n);
		return -ENODATA;
	}
	for (size_t i = 0; i < ELEMENTSOF(xattr_names); i++)
		if (strcmp(name, xattr_names[i]) == 0) {
			/* Metadata, so closed certificates show it too. */
			r = node_files(fs, &n, true, &files);
			if (r == 0)
				v = xattr_value(files, i, num, sizeof(num));
			break;
		}
	node_clear(&n);
	if (r == 0)
		r = v ? xattr_out(v, strlen(v), value, size) : -ENODATA;
	kvfs_files_unref(files);
	return r;
}

static int kvfs_listxattr(const char *path, char *list, size_t size)
{
	struct fs *fs = fs_get();
	size_t len = 0;
	char all[256];
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (has_xattrs(&n)) {
		for (size_t i = 0; i < ELEMENTSOF(xattr_names); i++) {
			size_t l = strlen(xattr_names[i]) + 1;

			memcpy(all + len, xattr_names[i], l);
			len += l;
		}
	}
	node_clear(&n);
	return xattr_out(all, len, list, size);
}

static int kvfs_statfs(const char *path, struct statvfs *sv)
{
	struct kvfs_listing *l = kvfs_cache_listing(fs_get()->cache);

	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_files = 2 + l->n * (2 + ELEMENTSOF(file_names));
	sv->f_namemax = NAME_MAX_KV;
	sv->f_flag = ST_RDONLY;
	kvfs_listing_unref(l);
	return 0;
}

static void *kvfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->entry_timeout = ENTRY_TIMEOUT;
	cfg->attr_timeout = ATTR_TIMEOUT;
	cfg->negative_timeout = NEGATIVE_TIMEOUT;
	cfg->use_ino = 0;
	cfg->kernel_cache = 0; /* per open, in kvfs_open */
	cfg->direct_io = 0;
	cfg->nullpath_ok = 0;
	return fuse_get_context()->private_data;
}

/* Everything that would change the tree. */
static int rofs_path(const char *path)
{
	return -EROFS;
}

static int rofs_mode(const char *path, mode_t mode)
{
	return -EROFS;
}

static int rofs_mknod(const char *path, mode_t mode, dev_t dev)
{
	return -EROFS;
}

static int rofs_two(const char *from, const char *to)
{
	return -EROFS;
}

static int rofs_rename(const char *from, const char *to, unsigned int flags)
{
	return -EROFS;
}

static int rofs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return -EROFS;
}

static int rofs_chown(const char *path, uid_t uid, gid_t gid,
		      struct fuse_file_info *fi)
{
	return -EROFS;
}

static int rofs_truncate(const char *path, off_t size,
			 struct fuse_file_info *fi)
{
	return -EROFS;
}

static int rofs_write(const char *path, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	return -EROFS;
}

static int rofs_setxattr(const char *path, const char *name, const char *value,
			 size_t size, int flags)
{
	return -EROFS;
}

static int rofs_removexattr(const char *path, const char *name)
{
	return -EROFS;
}

static int rofs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return -EROFS;
}

static int rofs_utimens(const char *path, const struct timespec tv[2],
			struct fuse_file_info *fi)
{
	return -EROFS;
}

static int rofs_fallocate(const char *path, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	return -EROFS;
}

static const struct fuse_operations kvfs_ops = {
	.init = kvfs_init,
	.getattr = kvfs_getattr,
	.open = kvfs_open,
	.read = kvfs_read,
	.release = kvfs_release,
	.readdir = kvfs_readdir,
	.statfs = kvfs_statfs,
	.getxattr = kvfs_getxattr,
	.listxattr = kvfs_listxattr,

	.mknod = rofs_mknod,
	.mkdir = rofs_mode,
	.unlink = rofs_path,
	.rmdir = rofs_path,
	.symlink = rofs_two,
	.rename = rofs_rename,
	.link = rofs_two,
	.chmod = rofs_chmod,
	.chown = rofs_chown,
	.truncate = rofs_truncate,
	.write = rofs_write,
	.setxattr = rofs_setxattr,
	.removexattr = rofs_removexattr,
	.create = rofs_create,
	.utimens = rofs_utimens,
	.fallocate = rofs_fallocate,
};

/* ---- revalidation: SIGHUP and telling the kernel ---- */

/* Set while the handler may use it. */
static struct kvfs_reval *sighup_reval;

static void on_sighup(int sig)
{
	struct kvfs_reval *r = __atomic_load_n(&sighup_reval, __ATOMIC_ACQUIRE);

	if (r)
		kvfs_reval_trigger(r);
}

/* SIGHUP revalidates at once; it must not unmount, as libfuse's handler
 * would.  r NULL: ignore it. */
static int set_sighup(struct kvfs_reval *r)
{
	struct sigaction sa = {.sa_handler = r ? on_sighup : SIG_IGN,
			       .sa_flags = SA_RESTART};

	__atomic_store_n(&sighup_reval, r, __ATOMIC_RELEASE);
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGHUP, &sa, NULL);
}

/* Drop what the kernel holds of path: its attributes, and for a file its
 * page cache.  A path the kernel never looked up is not known: nothing to
 * drop. */
static void invalidate(struct fuse *fuse, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void invalidate(struct fuse *fuse, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	r = fuse_invalidate_path(fuse, path);
	if (r < 0 && r != -ENOENT)
		log_debug("cannot invalidate '%s': %s", path, strerror(-r));
}

/* The files of a certificate directory (version NULL) or of one of its
 * version directories, and the directory itself. */
static void invalidate_dir(struct fuse *fuse, const char *name,
			   const char *version)
{
	char dir[PATH_MAX];
	int n;

	if (version)
		n = snprintf(dir, sizeof(dir),
			     "/" CERTIFICATES "/%s/" VERSIONS "/%s", name,
			     version);
	else
		n = snprintf(dir, sizeof(dir), "/" CERTIFICATES "/%s", name);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return;
	for (size_t i = 0; i < ELEMENTSOF(file_names); i++)
		invalidate(fuse, "%s/%s", dir, file_names[i]);
	invalidate(fuse, "%s", dir);
}

/* Runs on the revalidation thread, once no file of the old version is
 * open through the page cache (reval.c, cache.c): the attributes (mtime,
 * size, mode) and page cache of the certificate's files and directories.
 * The kernel's dentries stay; a lookup through one of a certificate that
 * is gone finds ENOENT at getattr. */
static void invalidate_change(void *data, const struct kvfs_change *c)
{
	struct fuse *fuse = data;

	if (c->kind == KVFS_CHANGE_LISTING) {
		invalidate(fuse, "/" CERTIFICATES);
		return;
	}
	if (c->kind != KVFS_CHANGE_VERSIONS)
		invalidate_dir(fuse, c->name, NULL);
	for (size_t i = 0; i < c->nversions; i++)
		invalidate_dir(fuse, c->name, c->versions[i]);
	invalidate(fuse, "/" CERTIFICATES "/%s/" VERSIONS, c->name);
}

int kvfs_fs_main(const struct kvfs_config *c, struct kvfs_cache *cache)
{
	struct fs fs = {.config = c,
			.cache = cache,
			.mount_time = time(NULL),
			.handles_lock = PTHREAD_MUTEX_INITIALIZER};
	struct fuse_args args = FUSE_ARGS_INIT(c->fuse_argc, c->fuse_argv);
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se = NULL;
	struct kvfs_reval *reval = NULL;
	struct fuse *fuse;
	int r, code = 1;

	fuse = fuse_new(&args, &kvfs_ops, sizeof(kvfs_ops), &fs);
	if (!fuse) {
		log_error("cannot set up FUSE for '%s'", c->mountpoint);
		goto out_args;
	}
	r = kvfs_reval_new(c, cache,
			   &(struct kvfs_reval_ops){
				   .invalidate = invalidate_change,
				   .data = fuse,
			   },
			   &reval);
	if (r < 0) {
		log_error("cannot set up revalidation: %s", strerror(-r));
		goto out_destroy;
	}
	if (fuse_mount(fuse, c->mountpoint) != 0) {
		log_error("cannot mount on '%s'", c->mountpoint);
		goto out_destroy;
	}
	se = fuse_get_session(fuse);
	if (fuse_set_signal_handlers(se) != 0 || set_sighup(reval) != 0) {
		log_error("cannot install signal handlers");
		goto out_unmount;
	}

	/* After the mount, so that the parent exits only once the mount
	 * exists; the network code holds no thread across this fork. */
	if (fuse_daemonize(c->foreground) != 0) {
		log_error("cannot daemonize");
		goto out_signals;
	}
	if (!c->foreground)
		kvfs_log_use_syslog(true);
	log_info("mounted '%s' on '%s'", c->vault_url, c->mountpoint);
	/* Threads only now: they would not survive the fork. */
	if (hooks.start && hooks.start(hooks.data) < 0)
		goto out_signals;
	if (kvfs_reval_start(reval) < 0)
		goto out_hooks;

	lc = fuse_loop_cfg_create();
	if (!lc) {
		log_error("cannot start the FUSE loop: out of memory");
		goto out_hooks;
	}
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, MAX_THREADS);

	r = fuse_loop_mt(fuse, lc);
	/* 0: unmounted; > 0: the signal that asked us to stop. */
	if (r < 0)
		log_error("FUSE loop for '%s' failed: %s", c->mountpoint,
			  strerror(-r));
	else
		code = 0;
	log_info("unmounting '%s'", c->mountpoint);

out_hooks:
	kvfs_reval_stop(reval);
	if (hooks.stop)
		hooks.stop(hooks.data);
out_signals:
	set_sighup(NULL);
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	kvfs_reval_free(reval);
	fuse_destroy(fuse);
	/* No request runs any more: free the handles never released. */
	while (fs.handles) {
		struct handle *h = fs.handles;

		handle_unlink_locked(&fs, h);
		kvfs_files_release(h->files, h->cached);
		free(h->owned);
		free(h);
	}
out_args:
	if (lc)
		fuse_loop_cfg_destroy(lc);
	fuse_opt_free_args(&args);
	return code;
}
