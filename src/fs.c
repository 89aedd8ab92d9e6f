/* The FUSE side: the operations table over the tree (tree.c resolves
 * paths and renders modes, times and xattrs), open files, .kvfs/, and
 * telling the kernel what a revalidation changed, then .kvfs/events'
 * readers (events.c).  main.c owns the mount's
 * life and calls kvfs_fs_new(), kvfs_fs_loop() and kvfs_fs_free() in its
 * start-up ladder.  Paths are resolved against the listings' snapshots; file
 * contents come from the cache, which an open file keeps a reference to,
 * so its bytes never change while it is open.  Read-only everywhere:
 * every write-type operation is EROFS.  Operations run on libfuse's
 * worker threads; the only lock here guards the list of open handles, and
 * nothing here talks to the network itself.  Whether an open goes through
 * the kernel's page cache is kernel.c's to say, which keeps the changes
 * the kernel must be told; the revalidation thread (reval.c) tells it
 * through kvfs_fs_invalidate(), never from a request handler (that can
 * deadlock).  The rules (rules.h) are a snapshot that a request holds a
 * reference to, swapped under a lock of its own (kvfs_fs_set_rules);
 * every open of a key-bearing file is checked against them and audited
 * (audit.h), whatever the kernel caches: the kernel always asks.
 *
 * kernel_cache= (no_open): open answers ENOSYS, after which the kernel
 * sends no OPEN or RELEASE for the mount's files (FUSE_NO_OPEN_SUPPORT)
 * and keeps their pages; a read comes without a handle and takes one
 * reference to the current files for itself alone, so that its bytes are
 * of one version and a closed object is refused at read.  What the
 * kernel holds must then never need an open to be right: sizes are
 * fetched with the attributes, never hidden, and a size not known yet is
 * not given with a directory's listing.  Without opens there are no
 * rules, audit or .kvfs/events: config.c refuses the first two with
 * kernel_cache, and the stream answers EOPNOTSUPP. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include "audit.h"
#include "caller.h"
#include "control.h"
#include "defaults.h"
#include "events.h"
#include "fs.h"
#include "kernel.h"
#include "log.h"
#include "metrics.h"
#include "onchange.h"
#include "tree.h"
#include "util.h"

/* Long: the tree changes only when the listing does, and revalidation
 * tells the kernel (kvfs_fs_invalidate).  expiring/ changes with the clock
 * too, but only grows with it (an expired certificate stays listed): a
 * link the kernel keeps stays right until the listing changes, and one
 * that comes into the window is found once the negative entry of an
 * earlier miss is gone, NEGATIVE_TIMEOUT at most; readdir is never kept
 * (no cache_readdir), so ls shows it at once. */
#define ATTR_TIMEOUT 60.0
#define ENTRY_TIMEOUT 60.0
#define NEGATIVE_TIMEOUT 5.0
/* Reads of .kvfs/events that wait hold a thread each: room for them on
 * top of the others'. */
#define MAX_THREADS (KVFS_FUSE_MAX_THREADS + KVFS_EVENTS_WAITERS_MAX)
/* How long the kernel may keep a size it was given: the attribute and
 * entry timeouts, and a second for the clocks. */
#define SIZE_HIDDEN_MS ((int64_t)(ATTR_TIMEOUT + 1.0) * 1000)

struct kvfs_fs {
	struct kvfs_tree tree;
	struct kvfs_cache *cache;
	struct kvfs_kernel *kernel;	/* what the kernel saw */
	struct kvfs_control *control;	/* serves .kvfs/; NULL: none */
	struct kvfs_onchange *onchange; /* on_change=; NULL: none */
	struct kvfs_events *events;	/* .kvfs/events; NULL: no .kvfs/ */
	struct fuse_args args;
	struct fuse *fuse;
	struct fuse_loop_config *loop;
	/* kernel_cache= took: stored once by kvfs_init, which may run after
	 * the revalidation thread started; read with no_open(). */
	bool no_open;
	int64_t revalidated; /* the last revalidation's end; its thread's */
	/* Every open file's handle: the kernel drops the RELEASE of a file
	 * closed as the mount goes away, so what is left is freed at exit. */
	pthread_mutex_t handles_lock;
	struct handle *handles;
	/* The rules in force (NULL: none), swapped whole. */
	pthread_mutex_t rules_lock;
	struct kvfs_rules *rules;
};

/* The listing of each collection, NULL for one the mount does not show:
 * the references that keep a resolved node valid. */
struct listings {
	struct kvfs_listing *held[KVFS_COLLECTION_COUNT_];
};

/* The same array as the tree reads it, read-only (C converts T ** to
 * const T *const * only with a cast). */
static const struct kvfs_listing *const *listings_of(const struct listings *l)
{
	return (const struct kvfs_listing *const *)l->held;
}

/* A resolved path and the references that keep it valid until
 * node_clear(). */
struct node {
	struct kvfs_tree_node t;
	struct listings lists;
	struct kvfs_versions *versions;
	struct kvfs_rules *rules; /* what t.rule points into */
};

/* What an open file reads from: one snapshot of one version's files; or
 * an open directory.  A collection's directory, and its .versions/, are
 * read a reply at a time, at offsets (readdir_collection()): libfuse then
 * keeps nothing per entry (given offset 0 it keeps the whole directory,
 * some 200 bytes an entry, until the release), and the kernel keeps the
 * attributes readdirplus gives.  listing is the one it was read from at
 * offset 0 (the open, or a rewind): one pass lists each object once even
 * when a revalidation replaces the listing meanwhile. */
struct handle {
	struct handle *prev, *next;   /* fs->handles */
	struct kvfs_listing *listing; /* readdir_collection()'s */
	struct kvfs_files *files;
	struct kvfs_files_span bytes;
	char *owned; /* a .kvfs/ file's snapshot, freed on release */
	struct kvfs_events_reader *reader; /* .kvfs/events' */
	bool cached;	/* through the page cache, counted by fs->kernel */
	struct stat st; /* what fstat() says once the certificate is gone */
};

static bool no_open(const struct kvfs_fs *fs)
{
	return __atomic_load_n(&fs->no_open, __ATOMIC_RELAXED);
}

static struct kvfs_fs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static void listings_get(struct kvfs_cache *cache, struct listings *ret)
{
	kvfs_cache_listings(cache, ret->held);
}

static void listings_put(struct listings *l)
{
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		kvfs_listing_unref(l->held[i]);
		l->held[i] = NULL;
	}
}

static void node_clear(struct node *n)
{
	listings_put(&n->lists);
	kvfs_versions_unref(n->versions);
	n->versions = NULL;
	n->t.entry = NULL;
	n->t.version = NULL;
	n->t.rule = NULL;
	kvfs_rules_unref(n->rules);
	n->rules = NULL;
}

static struct kvfs_rules *rules_get(struct kvfs_fs *fs)
{
	struct kvfs_rules *rs;

	pthread_mutex_lock(&fs->rules_lock);
	rs = kvfs_rules_ref(fs->rules);
	pthread_mutex_unlock(&fs->rules_lock);
	return rs;
}

/* The rule of the object of entry in collection coll (NULL: none): every
 * node of an object gets it, or a listing would give the kernel other
 * owners and modes than a lookup. */
static const struct kvfs_rule *rule_of(const struct kvfs_rules *rules,
				       enum kvfs_collection coll,
				       const struct kvfs_entry *entry)
{
	return kvfs_rules_match(rules, kvfs_collection_info(coll)->name,
				entry->item.name);
}

/* Resolve path against the current listings.  A lookup inside versions/
 * fetches the versions listing (once); nothing else here touches the
 * network. */
static int resolve(struct kvfs_fs *fs, const char *path, struct node *ret)
{
	int64_t now = kvfs_wall_now();
	struct node n = {0};
	int r;

	listings_get(fs->cache, &n.lists);
	r = kvfs_tree_resolve(&fs->tree, path, listings_of(&n.lists), NULL, now,
			      &n.t);
	if (r == KVFS_TREE_NEEDS_VERSIONS) {
		r = kvfs_cache_versions(fs->cache, n.t.coll,
					n.t.entry->item.name, &n.versions);
		if (r == 0)
			r = kvfs_tree_resolve(&fs->tree, path,
					      listings_of(&n.lists), n.versions,
					      now, &n.t);
	}
	if (r < 0) {
		node_clear(&n);
		return r;
	}
	n.rules = rules_get(fs);
	if (n.t.entry && n.t.kind != KVFS_NODE_EXPIRING_LINK)
		n.t.rule = rule_of(n.rules, n.t.coll, n.t.entry);
	*ret = n;
	return 0;
}

static bool node_closed(const struct kvfs_fs *fs, const struct node *n)
{
	return kvfs_tree_closed(&fs->tree, kvfs_tree_attrs(&n->t),
				kvfs_wall_now());
}

/* The files of the node's version: fetched when fetch, else only when
 * already there (NULL otherwise). */
static int node_files(struct kvfs_fs *fs, const struct node *n, bool fetch,
		      struct kvfs_files **ret)
{
	const char *name = n->t.entry->item.name;
	int r;

	*ret = NULL;
	if (n->t.version)
		return fetch ? kvfs_cache_version_files(
				       fs->cache, n->t.coll, name,
				       n->t.version->version, ret)
			     : 0;
	if (fetch)
		return kvfs_cache_files(fs->cache, n->t.coll, name, ret);
	r = kvfs_cache_files_peek(fs->cache, n->t.coll, name, ret);
	return r == -ENODATA ? 0 : r;
}

/* node_files() for the attributes the kernel keeps (getattr, readdir):
 * right after a rotation, while files of the old version are open
 * through the page cache, the sizes stay theirs, as their readers go by
 * the kernel's file size (kvfs_kernel_files_held). */
static int node_files_kernel(struct kvfs_fs *fs, const struct node *n,
			     bool fetch, struct kvfs_files **ret)
{
	const char *name = n->t.entry->item.name;

	if (n->t.version || !fetch)
		return node_files(fs, n, fetch, ret);
	*ret = NULL;
	if (kvfs_kernel_files_held(fs->kernel, n->t.coll, name, ret))
		return 0;
	return kvfs_cache_files(fs->cache, n->t.coll, name, ret);
}

/* What file k of a directory is, given its files (NULL: not fetched)
 * (kvfs_tree_view).  fetch: get the secret when a secret-derived file
 * needs it; otherwise -ENODATA when it would be needed. */
static int file_view(struct kvfs_fs *fs, const struct node *n,
		     struct kvfs_files *files, enum kvfs_file_kind k,
		     bool fetch, struct kvfs_tree_view *v)
{
	const struct kvfs_pki_secret_files *sf = NULL;
	int64_t now = kvfs_wall_now();
	int sr = -ENODATA;

	if (kvfs_tree_needs_secret(files, k)) {
		/* A closed file is not worth a secret: it cannot be
		 * opened. */
		if (!fetch ||
		    kvfs_tree_closed(&fs->tree, kvfs_tree_attrs(&n->t), now))
			sr = kvfs_cache_secret_peek(fs->cache, files, &sf);
		else
			sr = kvfs_cache_secret(fs->cache, files, &sf);
	}
	return kvfs_tree_view(&fs->tree, &n->t, k, now, files, sr, sf, v);
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
 * allow_other whose uid= is not the mounting user.  Each open of status
 * or metrics renders a fresh snapshot (control.c) that the handle owns, so
 * a reader sees one consistent text however it reads; an open of events
 * is a reader of events.c (its read may wait, its poll is events.c's);
 * direct_io, so the page cache never serves an old one.  stat reports size 0,
 * as /proc does (the size is only known once rendered); fstat of an open file
 * reports its snapshot's. */

static bool is_control(const struct node *n)
{
	return n->t.kind == KVFS_NODE_CONTROL ||
	       n->t.kind == KVFS_NODE_CONTROL_FILE;
}

static void stat_size(struct stat *st, size_t len)
{
	st->st_size = (off_t)len;
	st->st_blocks = (blkcnt_t)((len + 511) / 512);
}

static bool caller_is_owner(const struct kvfs_fs *fs)
{
	uid_t uid = fuse_get_context()->uid;

	return uid == 0 || uid == fs->tree.config->uid;
}

/* Without open the kernel reads a control file up to the size it was
 * given, so that size is a fresh snapshot's (each read renders its
 * own). */
static int control_getattr(const struct kvfs_fs *fs, const struct node *n,
			   struct fuse_file_info *fi, struct stat *st)
{
	kvfs_tree_stat_control(&fs->tree, &n->t, kvfs_wall_now(), st);
	if (n->t.kind != KVFS_NODE_CONTROL_FILE)
		return 0;
	if (fi && fi->fh) {
		const struct handle *h = (struct handle *)(uintptr_t)fi->fh;

		stat_size(st, kvfs_files_span_size(&h->bytes));
	} else if (no_open(fs) && n->t.control == KVFS_CONTROL_EVENTS) {
		/* Not empty: a read must reach kvfs to be refused. */
		stat_size(st, 1);
	} else if (no_open(fs) && caller_is_owner(fs)) {
		_cleanup_free_ char *text = NULL;
		size_t len;

		if (kvfs_control_render(fs->control, n->t.control, &text,
					&len) == 0)
			stat_size(st, len);
	}
	return 0;
}

/* Open handles are listed, so that those the kernel never releases are
 * freed at exit. */
static void handle_track(struct kvfs_fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
}

static int control_open(struct kvfs_fs *fs, const struct node *n,
			struct fuse_file_info *fi)
{
	struct handle *h;
	int r;

	if (n->t.kind != KVFS_NODE_CONTROL_FILE)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	if (!caller_is_owner(fs))
		return -EACCES;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (n->t.control == KVFS_CONTROL_EVENTS) {
		/* A stream: no size, no offsets, no page cache. */
		r = kvfs_events_open(fs->events, &h->reader);
		fi->nonseekable = 1;
	} else {
		r = kvfs_control_render(fs->control, n->t.control, &h->owned,
					&h->bytes.len);
	}
	if (r < 0) {
		free(h);
		return r;
	}
	h->bytes.data = h->owned;
	handle_track(fs, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	return 0;
}

static int readdir_control(const struct kvfs_fs *fs, void *buf,
			   fuse_fill_dir_t filler)
{
	int64_t now = kvfs_wall_now();
	struct stat st;

	if (!caller_is_owner(fs))
		return -EACCES;
	for (size_t i = 0; i < KVFS_CONTROL_COUNT_; i++) {
		struct kvfs_tree_node n = {.kind = KVFS_NODE_CONTROL_FILE,
					   .control =
						   (enum kvfs_control_file)i};

		/* Its size is a rendering's (control_getattr). */
		kvfs_tree_stat_control(&fs->tree, &n, now, &st);
		if (fill(buf, filler,
			 kvfs_control_file_name((enum kvfs_control_file)i),
			 no_open(fs) ? NULL : &st))
			break;
	}
	return 0;
}

/* Whether the caller may open the key-bearing files of n: root, and their
 * owner.  (Others whom the key mode lets in through its group or other
 * bits count as not: they only see size 0 until the secret is fetched.
 * readers= is only looked at by open.) */
static bool caller_may_open_keys(const struct kvfs_fs *fs, const struct node *n)
{
	uid_t uid = fuse_get_context()->uid;

	if (n->t.rule && (n->t.rule->set & KVFS_RULE_UID))
		return uid == 0 || uid == n->t.rule->uid;
	return caller_is_owner(fs);
}

/* The audit record of an open of key-bearing file path (as FUSE gives
 * it, "/certificates/www/privkey.pem") of n, whose version is files' (NULL:
 * not fetched). */
static void audit_open(const struct node *n, const char *path,
		       const struct kvfs_files *files,
		       const struct kvfs_caller_id *id, bool allowed)
{
	const char *version = files	     ? kvfs_files_header(files).version
			      : n->t.version ? n->t.version->version
					     : NULL;

	kvfs_audit_key_open(&(struct kvfs_audit_record){
		.allowed = allowed,
		.path = path + 1,
		.version = version,
		.pid = id->pid,
		.uid = id->uid,
		.gid = id->gid,
		.exe = id->exe,
		.time = kvfs_wall_now(),
	});
}

/* The mode bits of file n for caller id, checked as the kernel does with
 * default_permissions, which kvfs asks for only with allow_other: without
 * it, rules that give files to other users are kept here.  Root passes. */
static bool mode_allows(const struct kvfs_fs *fs, const struct node *n,
			const struct kvfs_caller_id *id)
{
	struct kvfs_tree_view v;
	struct stat st;
	mode_t want = S_IROTH;

	/* Without the files: the mode and owner are known without them. */
	(void)kvfs_tree_view(&fs->tree, &n->t, n->t.file, kvfs_wall_now(), NULL,
			     -ENODATA, NULL, &v);
	kvfs_tree_stat_file(&fs->tree, &n->t, &v, &st);
	if (id->uid == 0)
		return true;
	if (id->uid == st.st_uid)
		want = S_IRUSR;
	else if (id->gid == st.st_gid)
		want = S_IRGRP;
	for (size_t i = 0; want == S_IROTH && i < id->ngroups; i++)
		if (id->groups[i] == st.st_gid)
			want = S_IRGRP;
	return st.st_mode & want;
}

/* The readers= check of an open of key-bearing file n by caller id (after
 * the mode bits), audited when it refuses: 0 or -EACCES. */
static int check_readers(const struct node *n, const char *path,
			 const struct kvfs_caller_id *id)
{
	const struct kvfs_readers *rd = kvfs_rules_readers(n->rules, n->t.rule);
	struct kvfs_rules_caller c;

	if (!rd)
		return 0;
	c = (struct kvfs_rules_caller){
		.uid = id->uid,
		.gid = id->gid,
		.groups = id->groups,
		.ngroups = id->ngroups,
		.exe = id->exe_trusted ? id->exe : NULL,
	};
	if (kvfs_rules_allow(rd, &c))
		return 0;
	audit_open(n, path, NULL, id, false);
	return -EACCES;
}

/* kvfs_tree_stat_file(); without open, a closed file is not empty: the
 * kernel reads nothing past the size it holds, and only a read that
 * reaches kvfs_read can be refused. */
static void stat_file(struct kvfs_fs *fs, const struct node *n,
		      const struct kvfs_tree_view *v, struct stat *st)
{
	kvfs_tree_stat_file(&fs->tree, &n->t, v, st);
	if (no_open(fs) && st->st_size == 0 && node_closed(fs, n))
		st->st_size = 1;
}

static int kvfs_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	bool secret = true, on_fetch;
	struct kvfs_tree_view v;
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
	if (is_control(&n)) {
		node_clear(&n);
		return control_getattr(fs, &n, fi, st);
	}
	if (n.t.kind == KVFS_NODE_EXPIRING_LINK) {
		kvfs_tree_stat_link(&fs->tree, &n.t, listings_of(&n.lists), st);
		node_clear(&n);
		return 0;
	}
	/* With allow_other, a stat of privkey.pem by a user who may not
	 * open it must not make the daemon fetch the key from the vault. */
	if (n.t.kind == KVFS_NODE_FILE && kvfs_tree_holds_key(n.t.file) &&
	    !no_open(fs))
		secret = caller_may_open_keys(fs, &n);
	if (n.t.kind != KVFS_NODE_FILE) {
		kvfs_tree_stat_dir(&fs->tree, &n.t, listings_of(&n.lists), st);
		node_clear(&n);
		return 0;
	}

	/* A closed file is not fetched just to be stat'ed, nor one whose
	 * size only its fetch says (a secret: listing secrets/ costs no
	 * GET); that one is stat'ed from what is there, size 0 until then,
	 * and read around the kernel's size (kvfs_open).  Without open there
	 * is no reading around it: the size comes with the attributes. */
	on_fetch = kvfs_tree_size_on_fetch(n.t.file) && !no_open(fs);
	r = node_files_kernel(fs, &n, !node_closed(fs, &n) && !on_fetch,
			      &files);
	/* Without the secret the size is 0 until someone who may open the
	 * file has: the kernel's readers must then read around that size
	 * (kvfs_open).  Said before the secret is looked at, so that an open
	 * that fetches it meanwhile sees it. */
	if (r == 0 && !secret && files)
		kvfs_files_hide_size(files, kvfs_now_ms() + SIZE_HIDDEN_MS);
	if (r == 0)
		r = file_view(fs, &n, files, n.t.file, secret, &v);
	if (r == -ENODATA && (!secret || on_fetch))
		r = 0;
	if (r == 0)
		stat_file(fs, &n, &v, st);
	kvfs_files_unref(files);
	node_clear(&n);
	return r;
}

/* Let go of an open's files; counted: kvfs_kernel_open() counted it. */
static void files_release(struct kvfs_fs *fs, struct kvfs_files *files,
			  bool counted)
{
	if (counted)
		kvfs_kernel_close(fs->kernel, files);
	kvfs_files_unref(files);
}

static int kvfs_open(const char *path, struct fuse_file_info *fi)
{
	struct kvfs_fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	bool cacheable = true, counted = false, key, check_modes;
	struct kvfs_caller_id id;
	struct kvfs_tree_view v;
	struct handle *h;
	struct stat st;
	struct node n;
	int r;

	/* Success, and the kernel sends no OPEN any more (kvfs_read). */
	if (no_open(fs))
		return -ENOSYS;
	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (is_control(&n)) {
		node_clear(&n);
		return control_open(fs, &n, fi);
	}
	if (n.t.kind != KVFS_NODE_FILE) {
		r = n.t.kind == KVFS_NODE_EXPIRING_LINK ? -ELOOP : -EISDIR;
		node_clear(&n);
		return r;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		node_clear(&n);
		return -EROFS;
	}
	/* Checked here, not left to the mode bits: root ignores those. */
	if (node_closed(fs, &n)) {
		node_clear(&n);
		return -EACCES;
	}
	key = kvfs_tree_key_bearing(n.t.file);
	check_modes = n.rules && !fs->tree.config->allow_other;
	if (key || check_modes) {
		const struct fuse_context *ctx = fuse_get_context();

		kvfs_caller_identify(ctx->pid, ctx->uid, ctx->gid, &id);
	}
	r = check_modes && !mode_allows(fs, &n, &id) ? -EACCES : 0;
	/* Root is not exempt: only readers= says who reads keys. */
	if (r == 0 && key)
		r = check_readers(&n, path, &id);
	if (r < 0) {
		node_clear(&n);
		return r;
	}

	/* A version's bytes never change: its page cache is always good. */
	if (n.t.version) {
		r = node_files(fs, &n, true, &files);
	} else {
		r = kvfs_cache_files_for(
			fs->cache, n.t.coll, n.t.entry->item.name,
			kvfs_caller_tgid(fuse_get_context()->pid),
			1u << n.t.file, &files);
		/* The kernel has one inode per spelling of the name, and
		 * revalidation tells it about the vault's own: another
		 * spelling (WWW for www) is read around the page cache. */
		cacheable = r == 0 &&
			    kvfs_tree_spelled_as_in_vault(path, &n.t) &&
			    kvfs_kernel_open(fs->kernel, n.t.coll,
					     kvfs_files_name(files)
						     ? kvfs_files_name(files)
						     : n.t.entry->item.name,
					     files);
		counted = cacheable;
	}
	if (r == 0)
		r = file_view(fs, &n, files, n.t.file, true, &v);
	if (r == 0 && v.forbidden)
		r = -EACCES;
	/* The kernel may hold size 0 for this file (kvfs_getattr), and its
	 * page cache would end every read there: read around it.  A file
	 * whose size comes with its fetch always may. */
	if (r == 0 && (kvfs_tree_size_on_fetch(n.t.file) ||
		       (kvfs_tree_holds_key(n.t.file) &&
			kvfs_files_size_hidden_until(files) > kvfs_now_ms()))) {
		if (counted)
			kvfs_kernel_close(fs->kernel, files);
		counted = false;
		cacheable = false;
	}
	if (r == 0)
		kvfs_tree_stat_file(&fs->tree, &n.t, &v, &st);
	if (r == 0 && key)
		audit_open(&n, path, files, &id, true);
	node_clear(&n);
	if (r < 0) {
		files_release(fs, files, counted);
		return r;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		files_release(fs, files, counted);
		return -ENOMEM;
	}
	/* The handle's reference keeps every byte of this version, the
	 * secret-derived ones included, until release. */
	h->files = files;
	h->bytes = v.bytes;
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

/* Whether the read of .kvfs/events that waits should end: its caller
 * was interrupted (a signal), or the mount is going away. */
static bool events_read_cancelled(void *data)
{
	struct fuse *fuse = data;

	return fuse_interrupted() ||
	       fuse_session_exited(fuse_get_session(fuse));
}

static int events_read(struct kvfs_fs *fs, struct handle *h, char *buf,
		       size_t size, const struct fuse_file_info *fi)
{
	ssize_t n;

	if (size > INT_MAX)
		size = INT_MAX;
	n = kvfs_events_read(fs->events, h->reader, buf, size,
			     (fi->flags & O_NONBLOCK) != 0,
			     events_read_cancelled, fs->fuse);
	return (int)n;
}

/* Bytes [off, off + size) of the file s shows into buf: their count. */
static int read_range(const struct kvfs_files_span *s, char *buf, size_t size,
		      off_t off)
{
	if (off < 0)
		return -EINVAL;
	if (size > INT_MAX)
		size = INT_MAX;
	return (int)kvfs_files_span_read(s, (size_t)off, buf, size);
}

/* A read without open (no_open): a control file from a snapshot of its
 * own; a file of the tree from one reference to its current files, taken
 * for this read alone, refused (EACCES) when the object is closed, as
 * kvfs_open refuses it. */
static int read_unopened(struct kvfs_fs *fs, const char *path, char *buf,
			 size_t size, off_t off)
{
	struct kvfs_files *files = NULL;
	struct kvfs_tree_view v;
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (is_control(&n)) {
		_cleanup_free_ char *text = NULL;
		size_t len;

		node_clear(&n);
		if (n.t.kind != KVFS_NODE_CONTROL_FILE)
			return -EISDIR;
		if (!caller_is_owner(fs))
			return -EACCES;
		/* A stream needs its open: a queue of its own. */
		if (n.t.control == KVFS_CONTROL_EVENTS)
			return -EOPNOTSUPP;
		r = kvfs_control_render(fs->control, n.t.control, &text, &len);
		if (r < 0)
			return r;
		return read_range(
			&(struct kvfs_files_span){.data = text, .len = len},
			buf, size, off);
	}
	if (n.t.kind != KVFS_NODE_FILE)
		r = n.t.kind == KVFS_NODE_EXPIRING_LINK ? -ELOOP : -EISDIR;
	else if (node_closed(fs, &n))
		r = -EACCES;
	else
		r = node_files(fs, &n, true, &files);
	if (r == 0)
		r = file_view(fs, &n, files, n.t.file, true, &v);
	if (r == 0 && v.forbidden)
		r = -EACCES;
	if (r == 0) {
		r = read_range(&v.bytes, buf, size, off);
		if (r > 0)
			kvfs_metrics_add(KVFS_COUNTER_READ_BYTES, (uint64_t)r);
	}
	node_clear(&n);
	kvfs_files_unref(files);
	return r;
}

static int kvfs_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct kvfs_fs *fs = fs_get();
	int r;

	if (!h)
		return no_open(fs) ? read_unopened(fs, path, buf, size, off)
				   : -EBADF;
	if (h->reader)
		return events_read(fs, h, buf, size, fi);
	r = read_range(&h->bytes, buf, size, off);
	if (r > 0 && h->files)
		kvfs_metrics_add(KVFS_COUNTER_READ_BYTES, (uint64_t)r);
	return r;
}

static void handle_unlink_locked(struct kvfs_fs *fs, struct handle *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
}

/* What h holds, and h (unlinked from fs->handles). */
static void handle_free(struct kvfs_fs *fs, struct handle *h)
{
	files_release(fs, h->files, h->cached);
	kvfs_listing_unref(h->listing);
	free(h->owned);
	free(h);
}

static int kvfs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct kvfs_fs *fs = fs_get();

	if (h) {
		pthread_mutex_lock(&fs->handles_lock);
		handle_unlink_locked(fs, h);
		pthread_mutex_unlock(&fs->handles_lock);
		kvfs_events_close(fs->events, h->reader);
		handle_free(fs, h);
		fi->fh = 0;
	}
	return 0;
}

/* Every directory has a handle, read by readdir_collection() when it is
 * a collection's or its .versions/, released by kvfs_release(). */
static int kvfs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	handle_track(fs_get(), h);
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

/* Only .kvfs/events is ever not readable: it waits for a line. */
static int kvfs_poll(const char *path, struct fuse_file_info *fi,
		     struct fuse_pollhandle *ph, unsigned *reventsp)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	if (h && h->reader) {
		*reventsp = kvfs_events_poll(fs_get()->events, h->reader, ph)
				    ? POLLIN | POLLRDNORM
				    : 0;
		return 0;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	*reventsp = POLLIN | POLLRDNORM;
	return 0;
}

/* The stat of the object that is file n->t.file of collection n->t.coll
 * (the latest when n->t.version is NULL): from the files already there,
 * never fetched.  NULL when the size it would say is not known and the
 * kernel would keep it (no_open): the kernel then looks the file up. */
static const struct stat *
stat_object_file(struct kvfs_fs *fs, const struct node *n, struct stat *st)
{
	struct kvfs_files *files = NULL;
	struct kvfs_tree_view v;

	node_files(fs, n, false, &files);
	if (!files && no_open(fs) && kvfs_tree_size_on_fetch(n->t.file))
		return NULL;
	file_view(fs, n, files, n->t.file, false, &v);
	stat_file(fs, n, &v, st);
	kvfs_files_unref(files);
	return st;
}

/* A collection's directory, or its .versions/ (a directory of versions
 * per object), from d's listing (taken at offset 0): "." and ".." at
 * offsets 1 and 2, then, in a collection whose objects are files,
 * .versions/ at 3, then its objects; the offset of each is one past it,
 * where the next reply starts. */
static int readdir_collection(struct kvfs_fs *fs, const struct node *dir,
			      struct handle *d, off_t off, void *buf,
			      fuse_fill_dir_t filler)
{
	bool all = dir->t.kind == KVFS_NODE_ALL_VERSIONS;
	bool files = !all && kvfs_tree_object_is_file(dir->t.coll, NULL);
	off_t first = files ? 4 : 3; /* the first object's offset */
	const struct kvfs_listing *l;
	struct node n = *dir;
	struct stat st;

	if (off == 0 || !d->listing) {
		kvfs_listing_unref(d->listing);
		d->listing = kvfs_listing_ref(dir->lists.held[dir->t.coll]);
	}
	l = d->listing;
	if (off < 1 && filler(buf, ".", NULL, 1, 0))
		return 0;
	if (off < 2 && filler(buf, "..", NULL, 2, 0))
		return 0;
	if (files && off < 3) {
		n.t.kind = KVFS_NODE_ALL_VERSIONS;
		kvfs_tree_stat_dir(&fs->tree, &n.t, listings_of(&dir->lists),
				   &st);
		if (filler(buf, KVFS_TREE_DOT_VERSIONS, &st, 3,
			   FUSE_FILL_DIR_PLUS))
			return 0;
	}
	n.t.kind = all	   ? KVFS_NODE_VERSIONS
		   : files ? KVFS_NODE_FILE
			   : KVFS_NODE_OBJECT;
	kvfs_tree_object_is_file(dir->t.coll, &n.t.file);
	for (size_t i = off >= first ? (size_t)(off - first + 1) : 0; i < l->n;
	     i++) {
		const struct stat *sp = &st;

		n.t.entry = &l->entries[i];
		n.t.rule = rule_of(dir->rules, dir->t.coll, n.t.entry);
		if (files)
			sp = stat_object_file(fs, &n, &st);
		else
			kvfs_tree_stat_dir(
				&fs->tree, &n.t,
				all ? NULL : listings_of(&dir->lists), &st);
		if (filler(buf, n.t.entry->item.name, sp, first + (off_t)i,
			   sp ? FUSE_FILL_DIR_PLUS : 0))
			break;
	}
	return 0;
}

/* The files of a certificate or version directory.  The bundle is fetched
 * (it says whether the key is exportable, so that a name is never listed
 * that a lookup would not find), the secret never: a file whose
 * attributes need it is listed without them. */
static int readdir_cert(struct kvfs_fs *fs, const struct node *n, void *buf,
			fuse_fill_dir_t filler)
{
	struct kvfs_files *files = NULL;
	struct kvfs_tree_view v;
	struct stat st;
	int r;

	/* A certificate whose bundle is unusable still lists its names, so
	 * that only its own files fail (with EIO), not the directory. */
	r = node_files_kernel(fs, n, !node_closed(fs, n), &files);
	if (r < 0 && r != -EIO)
		return r;
	for (size_t i = 0; i < KVFS_FILE_COUNT_; i++) {
		enum kvfs_file_kind k = (enum kvfs_file_kind)i;

		r = file_view(fs, n, files, k, false, &v);
		if (r == -ENOENT)
			continue;
		if (r == 0)
			stat_file(fs, n, &v, &st);
		if (fill(buf, filler, kvfs_tree_file_name(k),
			 r == 0 ? &st : NULL))
			break;
	}
	kvfs_files_unref(files);
	if (!n->t.version) {
		struct kvfs_tree_node d = n->t;

		d.kind = KVFS_NODE_VERSIONS;
		kvfs_tree_stat_dir(&fs->tree, &d, NULL, &st);
		fill(buf, filler, KVFS_TREE_VERSIONS, &st);
	}
	return 0;
}

static int readdir_versions(struct kvfs_fs *fs, const struct node *n, void *buf,
			    fuse_fill_dir_t filler)
{
	struct kvfs_versions *vs;
	struct stat st;
	int r;

	r = kvfs_cache_versions(fs->cache, n->t.coll, n->t.entry->item.name,
				&vs);
	if (r < 0)
		return r;
	for (size_t i = 0; i < vs->list.n; i++) {
		const struct stat *stp = &st;
		struct node d = *n;

		d.t.version = &vs->list.items[i];
		if (kvfs_tree_object_is_file(n->t.coll, &d.t.file)) {
			d.t.kind = KVFS_NODE_FILE;
			stp = stat_object_file(fs, &d, &st);
		} else {
			d.t.kind = KVFS_NODE_VERSION;
			kvfs_tree_stat_dir(&fs->tree, &d.t, NULL, &st);
		}
		if (fill(buf, filler, vs->list.items[i].version, stp))
			break;
	}
	kvfs_versions_unref(vs);
	return 0;
}

/* expiring/: a link to each certificate in it at now. */
static void readdir_expiring(struct kvfs_fs *fs, const struct node *dir,
			     void *buf, fuse_fill_dir_t filler)
{
	const struct kvfs_listing *l = dir->lists.held[dir->t.coll];
	int64_t now = kvfs_wall_now();
	struct stat st;

	for (size_t i = 0; i < l->n; i++) {
		struct kvfs_tree_node n = {.kind = KVFS_NODE_EXPIRING_LINK,
					   .coll = dir->t.coll,
					   .entry = &l->entries[i]};

		if (!kvfs_tree_expiring(&fs->tree, &n.entry->item, now))
			continue;
		kvfs_tree_stat_link(&fs->tree, &n, listings_of(&dir->lists),
				    &st);
		if (fill(buf, filler, l->entries[i].item.name, &st))
			break;
	}
}

/* The directories of the mount's collections (those with a listing), in
 * the table's order, expiring/ with the certificates, then .kvfs/. */
static void readdir_root(struct kvfs_fs *fs, const struct node *root, void *buf,
			 fuse_fill_dir_t filler)
{
	struct kvfs_tree_node d = {.kind = KVFS_NODE_COLLECTION};
	struct stat st;

	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		if (!root->lists.held[i])
			continue;
		d.coll = (enum kvfs_collection)i;
		kvfs_tree_stat_dir(&fs->tree, &d, listings_of(&root->lists),
				   &st);
		fill(buf, filler, kvfs_collection_info(d.coll)->name, &st);
	}
	if (root->lists.held[KVFS_COLLECTION_CERTIFICATES]) {
		d.kind = KVFS_NODE_EXPIRING;
		d.coll = KVFS_COLLECTION_CERTIFICATES;
		kvfs_tree_stat_dir(&fs->tree, &d, listings_of(&root->lists),
				   &st);
		fill(buf, filler, KVFS_TREE_EXPIRING, &st);
	}
	d.kind = KVFS_NODE_CONTROL;
	kvfs_tree_stat_control(&fs->tree, &d, kvfs_wall_now(), &st);
	fill(buf, filler, KVFS_CONTROL_DIR, &st);
}

static int kvfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			off_t off, struct fuse_file_info *fi,
			enum fuse_readdir_flags flags)
{
	struct handle *d = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	struct kvfs_fs *fs = fs_get();
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (n.t.kind == KVFS_NODE_FILE || n.t.kind == KVFS_NODE_CONTROL_FILE ||
	    n.t.kind == KVFS_NODE_EXPIRING_LINK) {
		node_clear(&n);
		return -ENOTDIR;
	}

	/* A collection and its .versions/ are read at offsets; the rest
	 * whole. */
	if (n.t.kind == KVFS_NODE_COLLECTION ||
	    n.t.kind == KVFS_NODE_ALL_VERSIONS) {
		r = d ? readdir_collection(fs, &n, d, off, buf, filler)
		      : -EBADF;
		node_clear(&n);
		return r;
	}
	fill(buf, filler, ".", NULL);
	fill(buf, filler, "..", NULL);
	switch (n.t.kind) {
	case KVFS_NODE_ROOT:
		readdir_root(fs, &n, buf, filler);
		break;
	case KVFS_NODE_COLLECTION: /* above */
	case KVFS_NODE_ALL_VERSIONS:
		break;
	case KVFS_NODE_OBJECT:
	case KVFS_NODE_VERSION:
		r = readdir_cert(fs, &n, buf, filler);
		break;
	case KVFS_NODE_VERSIONS:
		r = readdir_versions(fs, &n, buf, filler);
		break;

	case KVFS_NODE_CONTROL:
		r = readdir_control(fs, buf, filler);
		break;
	case KVFS_NODE_EXPIRING:
		readdir_expiring(fs, &n, buf, filler);
		break;
	case KVFS_NODE_FILE:
	case KVFS_NODE_CONTROL_FILE:
	case KVFS_NODE_EXPIRING_LINK:
		break;
	}
	node_clear(&n);
	return r;
}

/* The files an xattr of n needs (needed: kvfs_tree_xattr_needs_files()
 * or kvfs_tree_listxattr_needs_files() said so), else those already there:
 * a certificate's or a key's GET is made for its metadata, closed or not
 * (the vault answers it), a secret's never (its GET is its value). */
static int xattr_files(struct kvfs_fs *fs, const struct node *n, bool needed,
		       struct kvfs_files **ret)
{
	return node_files(fs, n,
			  needed && !kvfs_tree_fetched_on_open(n->t.coll), ret);
}

static int kvfs_getxattr(const char *path, const char *name, char *value,
			 size_t size)
{
	struct kvfs_fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	/* Metadata, so closed objects show it too; what the listing
	 * carries costs no request.  A namespace kvfs has nothing in
	 * (security., system.) is not supported, which ls -l and the like
	 * remember per file system instead of asking for every file. */
	if (strncmp(name, "user.", 5) != 0)
		r = -EOPNOTSUPP;
	else if (!kvfs_tree_has_xattrs(&n.t) || !kvfs_tree_xattr_known(name))
		r = -ENODATA;
	else if (kvfs_tree_xattr_needs_files(&n.t, name))
		r = xattr_files(fs, &n, true, &files);
	if (r == 0)
		r = kvfs_tree_getxattr(&fs->tree, &n.t, files, name,
				       kvfs_wall_now(), value, size);
	node_clear(&n);
	kvfs_files_unref(files);
	return r;
}

static int kvfs_listxattr(const char *path, char *list, size_t size)
{
	struct kvfs_fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (kvfs_tree_has_xattrs(&n.t))
		r = xattr_files(fs, &n, kvfs_tree_listxattr_needs_files(&n.t),
				&files);
	if (r == 0)
		r = kvfs_tree_listxattr(&fs->tree, &n.t, files, list, size);
	node_clear(&n);
	kvfs_files_unref(files);
	return r;
}

/* expiring/<name>: its target, computed at each call (FUSE does not ask
 * the kernel to keep it: no FUSE_CAP_CACHE_SYMLINKS). */
static int kvfs_readlink(const char *path, char *buf, size_t size)
{
	struct node n;
	int r;

	r = resolve(fs_get(), path, &n);
	if (r < 0)
		return r;
	r = kvfs_tree_link_target(&n.t, buf, size);
	node_clear(&n);
	return r < 0 ? r : 0;
}

static int kvfs_statfs(const char *path, struct statvfs *sv)
{
	struct listings ls;

	listings_get(fs_get()->cache, &ls);
	kvfs_tree_statfs(listings_of(&ls), sv);
	listings_put(&ls);
	return 0;
}

static void *kvfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct kvfs_fs *fs = fuse_get_context()->private_data;

	/* The kernel only says it can: the first open that answers ENOSYS
	 * turns OPEN and RELEASE off for the mount. */
	if (fs->tree.config->kernel_cache) {
		bool can = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;

		__atomic_store_n(&fs->no_open, can, __ATOMIC_RELAXED);
		if (!can)
			log_warning("kernel_cache: the kernel cannot skip "
				    "opens; every open is answered");
	}
	cfg->entry_timeout = ENTRY_TIMEOUT;
	cfg->attr_timeout = ATTR_TIMEOUT;
	cfg->negative_timeout = NEGATIVE_TIMEOUT;
	cfg->use_ino = 0;
	cfg->kernel_cache = 0; /* per open, in kvfs_open */
	cfg->direct_io = 0;
	cfg->nullpath_ok = 0;
	/* In the process that serves the mount, after fuse_daemonize(). */
	if (fs->events && kvfs_events_start(fs->events) < 0)
		log_error("cannot start the expiry thread of .kvfs/events: "
			  "no expired events");
	return fs;
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
	.poll = kvfs_poll,
	.opendir = kvfs_opendir,
	.readdir = kvfs_readdir,
	.releasedir = kvfs_release,
	.readlink = kvfs_readlink,
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

/* ---- telling the kernel what a revalidation changed ---- */

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

/* The files of an object directory of collection coll (version NULL) or
 * of one of its version directories, and the directory itself. */
static void invalidate_dir(struct fuse *fuse, enum kvfs_collection coll,
			   const char *name, const char *version)
{
	const char *c = kvfs_collection_info(coll)->name;
	char dir[PATH_MAX];
	int n;

	if (version)
		n = snprintf(dir, sizeof(dir),
			     "/%s/%s/" KVFS_TREE_VERSIONS "/%s", c, name,
			     version);
	else
		n = snprintf(dir, sizeof(dir), "/%s/%s", c, name);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return;
	for (size_t i = 0; i < KVFS_FILE_COUNT_; i++) {
		enum kvfs_file_kind k = (enum kvfs_file_kind)i;

		if (kvfs_tree_object_has_file(coll, k))
			invalidate(fuse, "%s/%s", dir, kvfs_tree_file_name(k));
	}
	invalidate(fuse, "%s", dir);
}

/* The same for a collection whose objects are files: the object, its
 * versions that changed and its .versions/<name>/. */
static void invalidate_object_file(struct fuse *fuse,
				   const struct kvfs_change *c)
{
	const char *dir = kvfs_collection_info(c->coll)->name;

	if (c->kind == KVFS_CHANGE_LISTING) {
		invalidate(fuse, "/%s", dir);
		invalidate(fuse, "/%s/" KVFS_TREE_DOT_VERSIONS, dir);
		return;
	}
	if (c->kind != KVFS_CHANGE_VERSIONS)
		invalidate(fuse, "/%s/%s", dir, c->name);
	for (size_t i = 0; i < c->nversions; i++)
		invalidate(fuse, "/%s/" KVFS_TREE_DOT_VERSIONS "/%s/%s", dir,
			   c->name, c->versions[i]);
	invalidate(fuse, "/%s/" KVFS_TREE_DOT_VERSIONS "/%s", dir, c->name);
}

static void invalidate_change(struct fuse *fuse, const struct kvfs_change *c)
{
	enum kvfs_collection coll = c->coll;
	const char *dir = kvfs_collection_info(coll)->name;

	if (kvfs_tree_object_is_file(coll, NULL)) {
		invalidate_object_file(fuse, c);
		return;
	}
	if (c->kind == KVFS_CHANGE_LISTING) {
		invalidate(fuse, "/%s", dir);
		if (coll == KVFS_COLLECTION_CERTIFICATES)
			invalidate(fuse, "/" KVFS_TREE_EXPIRING);
		return;
	}
	/* A new version may have moved its exp out of expiring/'s
	 * window. */
	if (c->kind != KVFS_CHANGE_VERSIONS &&
	    coll == KVFS_COLLECTION_CERTIFICATES)
		invalidate(fuse, "/" KVFS_TREE_EXPIRING "/%s", c->name);
	if (c->kind != KVFS_CHANGE_VERSIONS)
		invalidate_dir(fuse, coll, c->name, NULL);
	for (size_t i = 0; i < c->nversions; i++)
		invalidate_dir(fuse, coll, c->name, c->versions[i]);
	invalidate(fuse, "/%s/%s/" KVFS_TREE_VERSIONS, dir, c->name);
}

void kvfs_fs_invalidate(void *data, const struct kvfs_change *c, bool again)
{
	struct kvfs_fs *fs = data;

	invalidate_change(fs->fuse, c);
	/* The change is visible now: the kernel forgot what it held.  Told
	 * again once its old files are closed, it is no new change. */
	if (!again) {
		kvfs_onchange_add(fs->onchange, c->coll, c->name);
		kvfs_events_changed(fs->events, c);
	}
}

static void events_notify(void *ph)
{
	fuse_notify_poll(ph);
	fuse_pollhandle_destroy(ph);
}

static void events_drop(void *ph)
{
	fuse_pollhandle_destroy(ph);
}

/* Tell the kernel to drop what it holds of every object that opened or
 * closed with the clock between then and now; then == now: of every
 * object.  On the revalidation thread. */
static void invalidate_objects(struct kvfs_fs *fs, int64_t then, int64_t now)
{
	struct listings ls;

	listings_get(fs->cache, &ls);
	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++) {
		const struct kvfs_listing *l = ls.held[c];

		for (size_t i = 0; l && i < l->n; i++) {
			struct kvfs_tree_node n = {
				.kind = KVFS_NODE_OBJECT,
				.coll = (enum kvfs_collection)c,
				.entry = &l->entries[i]};
			const struct kvfs_object_attrs *a = kvfs_tree_attrs(&n);
			struct kvfs_change ch = {.kind = KVFS_CHANGE_CHANGED,
						 .coll = n.coll,
						 .name = n.entry->item.name};

			if (then == now ||
			    kvfs_tree_closed(&fs->tree, a, then) !=
				    kvfs_tree_closed(&fs->tree, a, now))
				invalidate_change(fs->fuse, &ch);
		}
	}
	listings_put(&ls);
}

/* Without open, nothing but an invalidation makes the kernel read again:
 * the control files, whose snapshots change with every revalidation, and
 * the objects that opened or closed with the clock since the last one
 * (nbf=, exp=), whose pages would otherwise be served or refused from
 * what the kernel holds.  On the revalidation thread. */
void kvfs_fs_revalidated(struct kvfs_fs *fs)
{
	int64_t now = kvfs_wall_now(), then = fs->revalidated;

	fs->revalidated = now;
	kvfs_events_revalidated(fs->events);
	if (!no_open(fs))
		return;
	for (size_t i = 0; i < KVFS_CONTROL_COUNT_; i++)
		invalidate(fs->fuse, "/" KVFS_CONTROL_DIR "/%s",
			   kvfs_control_file_name((enum kvfs_control_file)i));
	invalidate_objects(fs, then, now);
}

/* ---- the FUSE instance ---- */

int kvfs_fs_new(const struct kvfs_config *c, struct kvfs_cache *cache,
		struct kvfs_kernel *kernel, struct kvfs_control *control,
		int64_t mount_time, struct kvfs_onchange *onchange,
		struct kvfs_fs **ret)
{
	struct kvfs_fs *fs = calloc(1, sizeof(*fs));
	int r;

	if (!fs)
		return -ENOMEM;
	fs->tree = (struct kvfs_tree){.config = c,
				      .mount_time = mount_time,
				      .control = control != NULL};
	fs->cache = cache;
	fs->kernel = kernel;
	fs->control = control;
	fs->onchange = onchange;
	fs->revalidated = kvfs_wall_now();
	fs->args = (struct fuse_args)FUSE_ARGS_INIT(c->fuse_argc, c->fuse_argv);
	pthread_mutex_init(&fs->handles_lock, NULL);
	pthread_mutex_init(&fs->rules_lock, NULL);
	r = control ? kvfs_events_new(cache,
				      &(struct kvfs_events_ops){
					      .notify = events_notify,
					      .drop = events_drop,
				      },
				      &fs->events)
		    : 0;
	if (r < 0) {
		log_error("cannot set up .kvfs/events: %s", strerror(-r));
		kvfs_fs_free(fs);
		return r;
	}
	fs->fuse = fuse_new(&fs->args, &kvfs_ops, sizeof(kvfs_ops), fs);
	if (!fs->fuse) {
		log_error("cannot set up FUSE for '%s'", c->mountpoint);
		kvfs_fs_free(fs);
		return -EINVAL;
	}
	fs->loop = fuse_loop_cfg_create();
	if (!fs->loop) {
		log_error("cannot start the FUSE loop: out of memory");
		kvfs_fs_free(fs);
		return -ENOMEM;
	}
	fuse_loop_cfg_set_clone_fd(fs->loop, 0);
	fuse_loop_cfg_set_max_threads(fs->loop, MAX_THREADS);
	*ret = fs;
	return 0;
}

void kvfs_fs_set_rules(struct kvfs_fs *fs, struct kvfs_rules *rules)
{
	struct kvfs_rules *old;

	pthread_mutex_lock(&fs->rules_lock);
	old = fs->rules;
	fs->rules = rules;
	pthread_mutex_unlock(&fs->rules_lock);
	/* The owners and modes the kernel holds (and checks, with
	 * default_permissions) are the old rules': dropped. */
	if (old && fs->fuse) {
		int64_t now = kvfs_wall_now();

		invalidate_objects(fs, now, now);
	}
	kvfs_rules_unref(old);
}

struct fuse *kvfs_fs_fuse(struct kvfs_fs *fs)
{
	return fs->fuse;
}

int kvfs_fs_loop(struct kvfs_fs *fs)
{
	return fuse_loop_mt(fs->fuse, fs->loop);
}

void kvfs_fs_free(struct kvfs_fs *fs)
{
	if (!fs)
		return;
	/* Before the session goes: the poll handles are its. */
	kvfs_events_stop(fs->events);
	if (fs->fuse)
		fuse_destroy(fs->fuse);
	/* No request runs any more: free the handles never released. */
	while (fs->handles) {
		struct handle *h = fs->handles;

		handle_unlink_locked(fs, h);
		handle_free(fs, h);
	}
	kvfs_events_free(fs->events);
	if (fs->loop)
		fuse_loop_cfg_destroy(fs->loop);
	fuse_opt_free_args(&fs->args);
	pthread_mutex_destroy(&fs->handles_lock);
	kvfs_rules_unref(fs->rules);
	pthread_mutex_destroy(&fs->rules_lock);
	free(fs);
}
