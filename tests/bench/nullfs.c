/* The FUSE floor of the warm benchmark: a read-only filesystem that serves
 * from memory a copy of the directory tree SOURCE, loaded whole at start-up,
 * through the libfuse3 high-level API as kvfs does, with kvfs's settings
 * (entry, attribute and negative timeouts, keep_cache on open, the
 * multithreaded loop and its thread cap).  Whatever a warm open+read+close
 * costs on it is what FUSE costs, not what kvfs does.  Built by
 * tests/bench/bench.py, which takes the timeouts and the thread cap from
 * src/fs.c; not installed, not a test.
 *
 *   nullfs [--no-open] SOURCE MOUNTPOINT [FUSE options]
 *
 * --no-open: open answers ENOSYS, which (FUSE_NO_OPEN_SUPPORT) tells the
 * kernel to stop sending OPEN and RELEASE for good; reads then come by
 * path, without a handle.
 *
 * At exit it prints on stderr how many requests of each kind it served:
 * the bench checks that --no-open took effect.  Operations run on libfuse's
 * worker threads; the tree is never written after start-up, so only the
 * counters are shared, and they are atomic. */
#define _GNU_SOURCE
/* meson.build's */
#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fuse.h>

#if !defined(ENTRY_TIMEOUT) || !defined(ATTR_TIMEOUT) ||                       \
	!defined(NEGATIVE_TIMEOUT) || !defined(MAX_THREADS)
#error "bench.py builds this with kvfs's timeouts and thread cap (-D...)"
#endif

#define STR_(x) #x
#define STR(x) STR_(x)

struct node {
	char *path;	    /* "/", "/certificates", ... as FUSE names them */
	const char *parent; /* the parent's path, the very pointer */
	struct stat st;
	char *data;
};

struct tree {
	struct node *v;
	size_t n, cap;
};

static struct tree tree;

static struct options {
	const char *source;
	int no_open;
} options;

static atomic_long n_getattr, n_open, n_read, n_release;

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p) {
		fputs("nullfs: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

static char *load(const char *file, size_t size)
{
	char *buf = xrealloc(NULL, size ? size : 1);
	FILE *f = fopen(file, "re");

	if (!f || fread(buf, 1, size, f) != size) {
		fprintf(stderr, "nullfs: cannot read '%s'\n", file);
		exit(1);
	}
	fclose(f);
	return buf;
}

/* Adds the node at path (relative to SOURCE, "" for the root) and,
 * for a directory, everything under it. */
static void add(const char *path, const char *parent)
{
	char file[PATH_MAX];
	struct dirent *de;
	size_t self;
	DIR *d;

	snprintf(file, sizeof(file), "%s%s", options.source, path);
	if (tree.n == tree.cap) {
		tree.cap = tree.cap ? tree.cap * 2 : 4096;
		tree.v = xrealloc(tree.v, tree.cap * sizeof(*tree.v));
	}
	self = tree.n++;
	tree.v[self] = (struct node){.path = strdup(*path ? path : "/"),
				     .parent = parent};
	if (!tree.v[self].path || lstat(file, &tree.v[self].st) < 0) {
		fprintf(stderr, "nullfs: cannot stat '%s'\n", file);
		exit(1);
	}
	/* Read-only, as kvfs's tree is. */
	tree.v[self].st.st_mode &= ~(mode_t)0222;
	if (S_ISREG(tree.v[self].st.st_mode))
		tree.v[self].data = load(file, (size_t)tree.v[self].st.st_size);
	if (!S_ISDIR(tree.v[self].st.st_mode))
		return;
	d = opendir(file);
	if (!d) {
		fprintf(stderr, "nullfs: cannot open '%s'\n", file);
		exit(1);
	}
	while ((de = readdir(d))) {
		char child[PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		add(child, tree.v[self].path);
	}
	closedir(d);
}

static int node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct node *)a)->path,
		      ((const struct node *)b)->path);
}

/* Sorted by path, for lookups. */
static void load_tree(void)
{
	add("", NULL);
	qsort(tree.v, tree.n, sizeof(*tree.v), node_cmp);
}

static struct node *lookup(const char *path)
{
	struct node key = {.path = (char *)path};

	return bsearch(&key, tree.v, tree.n, sizeof(key), node_cmp);
}

static void *nullfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* kvfs_init also spells out use_ino, kernel_cache, direct_io and
	 * nullpath_ok: all 0, libfuse's defaults. */
	cfg->entry_timeout = ENTRY_TIMEOUT;
	cfg->attr_timeout = ATTR_TIMEOUT;
	cfg->negative_timeout = NEGATIVE_TIMEOUT;
	return NULL;
}

static int nullfs_getattr(const char *path, struct stat *st,
			  struct fuse_file_info *fi)
{
	const struct node *n = lookup(path);

	atomic_fetch_add_explicit(&n_getattr, 1, memory_order_relaxed);
	if (!n)
		return -ENOENT;
	*st = n->st;
	return 0;
}

static int nullfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			  off_t off, struct fuse_file_info *fi,
			  enum fuse_readdir_flags flags)
{
	const struct node *d = lookup(path);

	if (!d)
		return -ENOENT;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < tree.n; i++)
		if (tree.v[i].parent == d->path &&
		    filler(buf, strrchr(tree.v[i].path, '/') + 1, &tree.v[i].st,
			   0, FUSE_FILL_DIR_PLUS))
			break;
	return 0;
}

/* The least an open can do.  Writes never get here: the mount is ro. */
static int nullfs_open(const char *path, struct fuse_file_info *fi)
{
	struct node *n;

	atomic_fetch_add_explicit(&n_open, 1, memory_order_relaxed);
	if (options.no_open)
		return -ENOSYS;
	n = lookup(path);
	if (!n)
		return -ENOENT;
	if (S_ISDIR(n->st.st_mode))
		return -EISDIR;
	fi->fh = (uint64_t)(uintptr_t)n;
	fi->keep_cache = 1;
	return 0;
}

static int nullfs_read(const char *path, char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct node *n =
		fi->fh ? (struct node *)(uintptr_t)fi->fh : lookup(path);
	size_t len;

	atomic_fetch_add_explicit(&n_read, 1, memory_order_relaxed);
	if (!n || !n->data)
		return -EIO;
	len = (size_t)n->st.st_size;
	if (off < 0)
		return -EINVAL;
	if ((size_t)off >= len)
		return 0;
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	memcpy(buf, n->data + off, size);
	return (int)size;
}

static int nullfs_release(const char *path, struct fuse_file_info *fi)
{
	atomic_fetch_add_explicit(&n_release, 1, memory_order_relaxed);
	return 0;
}

static const struct fuse_operations nullfs_ops = {
	.init = nullfs_init,
	.getattr = nullfs_getattr,
	.readdir = nullfs_readdir,
	.open = nullfs_open,
	.read = nullfs_read,
	.release = nullfs_release,
};

static const struct fuse_opt nullfs_opts[] = {
	{"--no-open", offsetof(struct options, no_open), 1},
	FUSE_OPT_END,
};

/* The first argument that is not an option is SOURCE; the rest go to
 * fuse_main. */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	if (key == FUSE_OPT_KEY_NONOPT && !options.source) {
		options.source = arg;
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int r;

	if (fuse_opt_parse(&args, &options, nullfs_opts, opt_proc) < 0 ||
	    !options.source) {
		fprintf(stderr, "usage: nullfs [--no-open] SOURCE MOUNTPOINT "
				"[FUSE options]\n");
		return 2;
	}
	/* kvfs's loop: fuse_loop_mt with clone_fd off, MAX_THREADS. */
	if (fuse_opt_add_arg(&args, "-omax_threads=" STR(MAX_THREADS)) < 0)
		return 1;
	load_tree();
	r = fuse_main(args.argc, args.argv, &nullfs_ops, NULL);
	fprintf(stderr,
		"nullfs: {\"getattr\": %ld, \"open\": %ld, \"read\": %ld, "
		"\"release\": %ld}\n",
		atomic_load(&n_getattr), atomic_load(&n_open),
		atomic_load(&n_read), atomic_load(&n_release));
	fuse_opt_free_args(&args);
	return r;
}
