/* The FUSE side: the tree layout, modes and times from certificate
 * attributes, and the mount's life from fuse_new() to the unmount.  Paths
 * are resolved against a listing snapshot; file contents come from the
 * cache, which an open file keeps a reference to, so its bytes never
 * change while it is open.  Read-only everywhere: every write-type
 * operation is EROFS.  Operations run on libfuse's worker threads; this
 * file keeps no lock of its own and never talks to the network itself. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <fuse.h>

#include "fs.h"
#include "log.h"
#include "util.h"

#define CERTIFICATES "certificates"
/* Long: the tree changes only when the listing does, and a later
 * revalidation tells the kernel. */
#define ATTR_TIMEOUT 60.0
#define ENTRY_TIMEOUT 60.0
#define NEGATIVE_TIMEOUT 5.0
#define MAX_THREADS 32
#define NAME_MAX_KV 127

struct fs {
	const struct kvfs_config *config;
	struct kvfs_cache *cache;
	time_t mount_time;
};

enum node_kind {
	NODE_ROOT,
	NODE_CERTIFICATES,
	NODE_CERT,
	NODE_FILE,
};

enum file_kind {
	FILE_CERT_PEM,
	FILE_CERT_DER,
};

static const char *const file_names[] = {
	[FILE_CERT_PEM] = "cert.pem",
	[FILE_CERT_DER] = "cert.der",
};

/* A resolved path.  entry points into listing, which the node holds a
 * reference to until node_clear(). */
struct node {
	enum node_kind kind;
	struct kvfs_listing *listing;
	const struct kvfs_entry *entry;
	enum file_kind file;
};

/* What an open file reads from: one snapshot of the certificate's files. */
struct handle {
	struct kvfs_files *files;
	const void *data;
	size_t len;
};

static struct kvfs_fs_hooks hooks;

void kvfs_fs_set_hooks(const struct kvfs_fs_hooks *h)
{
	hooks = h ? *h : (struct kvfs_fs_hooks){0};
}

static struct fs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static void node_clear(struct node *n)
{
	kvfs_listing_unref(n->listing);
	n->listing = NULL;
	n->entry = NULL;
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

static int resolve(struct fs *fs, const char *path, struct node *ret)
{
	char name[NAME_MAX_KV + 1], file[16];
	struct node n = {.kind = NODE_ROOT};
	const char *p = path;
	int len;

	if (!p || *p != '/')
		return -ENOENT;
	p++;
	if (*p == '\0') {
		*ret = n;
		return 0;
	}

	len = (int)strcspn(p, "/");
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
	if (*p == '\0') {
		*ret = n;
		return 0;
	}

	len = component(++p, file, sizeof(file));
	if (len >= 0 && p[len] == '\0') {
		for (size_t i = 0; i < ELEMENTSOF(file_names); i++)
			if (strcmp(file, file_names[i]) == 0) {
				n.kind = NODE_FILE;
				n.file = (enum file_kind)i;
				*ret = n;
				return 0;
			}
	}
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

static void file_data(const struct kvfs_files *f, enum file_kind k,
		      const void **ret_data, size_t *ret_len)
{
	switch (k) {
	case FILE_CERT_PEM:
		*ret_data = f->cert_pem;
		*ret_len = f->cert_pem_len;
		return;
	case FILE_CERT_DER:
		*ret_data = f->bundle.der;
		*ret_len = f->bundle.der_len;
		return;
	}
	*ret_data = NULL;
	*ret_len = 0;
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
		st->st_nlink = 3;
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
		stat_times(st, n->entry->item.attrs.created,
			   n->entry->item.attrs.updated);
		break;
	case NODE_FILE:
		break;
	}
}

/* A file's attributes.  files may be NULL for a closed file: it cannot be
 * read, so its size is not worth a request. */
static void stat_file(const struct fs *fs, const struct node *n,
		      const struct kvfs_files *files, struct stat *st)
{
	const struct kvfs_cert_attrs *a = &n->entry->item.attrs;
	const void *data;
	size_t len = 0;

	stat_common(fs, st);
	st->st_mode = S_IFREG | (cert_closed(fs, a) ? 0000 : 0444);
	st->st_nlink = 1;
	if (files)
		file_data(files, n->file, &data, &len);
	st->st_size = (off_t)len;
	st->st_blocks = (blkcnt_t)((len + 511) / 512);
	stat_times(st, a->created, a->updated);
}

static int kvfs_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct kvfs_files *files = NULL;
	struct node n;
	int r;

	if (fi && fi->fh) {
		/* fstat() of an open file: the snapshot it reads. */
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;

		r = resolve(fs, path, &n);
		if (r < 0)
			return r;
		stat_file(fs, &n, h->files, st);
		node_clear(&n);
		return 0;
	}

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
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

	if (!cert_closed(fs, &n.entry->item.attrs)) {
		r = kvfs_cache_files(fs->cache, n.entry->item.name, &files);
		if (r < 0) {
			node_clear(&n);
			return r;
		}
	}
	stat_file(fs, &n, files, st);
	kvfs_files_unref(files);
	node_clear(&n);
	return 0;
}

static int kvfs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct kvfs_files *files;
	struct handle *h;
	struct node n;
	int r;

	r = resolve(fs, path, &n);
	if (r < 0)
		return r;
	if (n.kind != NODE_FILE) {
		node_clear(&n);
		return -EISDIR;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		node_clear(&n);
		return -EROFS;
	}
	/* Checked here, not left to the mode bits: root ignores those. */
	if (cert_closed(fs, &n.entry->item.attrs)) {
		node_clear(&n);
		return -EACCES;
	}

	r = kvfs_cache_files(fs->cache, n.entry->item.name, &files);
	if (r < 0) {
		node_clear(&n);
		return r;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		kvfs_files_unref(files);
		node_clear(&n);
		return -ENOMEM;
	}
	h->files = files;
	file_data(files, n.file, &h->data, &h->len);
	node_clear(&n);

	fi->fh = (uint64_t)(uintptr_t)h;
	/* Warm reads never reach us: the page cache serves them. */
	fi->keep_cache = 1;
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
	return (int)size;
}

static int kvfs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	if (h) {
		kvfs_files_unref(h->files);
		free(h);
		fi->fh = 0;
	}
	return 0;
}

static int fill(void *buf, fuse_fill_dir_t filler, const char *name,
		const struct stat *st)
{
	return filler(buf, name, st, 0, st ? FUSE_FILL_DIR_PLUS : 0);
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

/* The files of a certificate directory, with their attributes only when
 * they cost nothing: a directory listing never fetches. */
static void readdir_cert(struct fs *fs, struct node *n, void *buf,
			 fuse_fill_dir_t filler)
{
	struct kvfs_files *files = NULL;
	bool closed = cert_closed(fs, &n->entry->item.attrs);
	bool have;
	struct stat st;

	have = closed || kvfs_cache_files_peek(fs->cache, n->entry->item.name,
					       &files) == 0;
	for (size_t i = 0; i < ELEMENTSOF(file_names); i++) {
		n->file = (enum file_kind)i;
		if (have)
			stat_file(fs, n, files, &st);
		if (fill(buf, filler, file_names[i], have ? &st : NULL))
			break;
	}
	kvfs_files_unref(files);
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
	if (n.kind == NODE_FILE) {
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
		break;
	}
	case NODE_CERTIFICATES:
		readdir_certificates(fs, buf, filler);
		break;
	case NODE_CERT:
		readdir_cert(fs, &n, buf, filler);
		break;
	case NODE_FILE:
		break;
	}
	node_clear(&n);
	return 0;
}

static int kvfs_statfs(const char *path, struct statvfs *sv)
{
	struct kvfs_listing *l = kvfs_cache_listing(fs_get()->cache);

	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_files = 2 + l->n * (1 + ELEMENTSOF(file_names));
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

/* SIGHUP will revalidate at once (a later issue); until then it must not
 * unmount, as libfuse's handler would. */
static int ignore_sighup(void)
{
	struct sigaction sa = {.sa_handler = SIG_IGN};

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGHUP, &sa, NULL);
}

int kvfs_fs_main(const struct kvfs_config *c, struct kvfs_cache *cache)
{
	struct fs fs = {.config = c, .cache = cache, .mount_time = time(NULL)};
	struct fuse_args args = FUSE_ARGS_INIT(c->fuse_argc, c->fuse_argv);
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se = NULL;
	struct fuse *fuse;
	int r, code = 1;

	fuse = fuse_new(&args, &kvfs_ops, sizeof(kvfs_ops), &fs);
	if (!fuse) {
		log_error("cannot set up FUSE for '%s'", c->mountpoint);
		goto out_args;
	}
	if (fuse_mount(fuse, c->mountpoint) != 0) {
		log_error("cannot mount on '%s'", c->mountpoint);
		goto out_destroy;
	}
	se = fuse_get_session(fuse);
	if (fuse_set_signal_handlers(se) != 0 || ignore_sighup() != 0) {
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

	lc = fuse_loop_cfg_create();
	if (!lc) {
		log_error("cannot start the FUSE loop: out of memory");
		goto out_signals;
	}
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, MAX_THREADS);

	r = fuse_loop_mt(fuse, lc);
	if (hooks.stop)
		hooks.stop(hooks.data);
	/* 0: unmounted; > 0: the signal that asked us to stop. */
	if (r < 0)
		log_error("FUSE loop for '%s' failed: %s", c->mountpoint,
			  strerror(-r));
	else
		code = 0;
	log_info("unmounting '%s'", c->mountpoint);

out_signals:
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
out_args:
	if (lc)
		fuse_loop_cfg_destroy(lc);
	fuse_opt_free_args(&args);
	return code;
}
