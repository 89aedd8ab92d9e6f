/* The timing loops of the benchmark, in C so that a 5 µs open+read+close
 * is not drowned in an interpreter's overhead.  Reads a tree laid out as
 * kvfs lays it out and prints one JSON object on stdout.  Built by
 * tests/bench/bench.py with cc; not installed, not a test.
 *
 *   benchtool [-d DIR] [-f FILE] cold ROOT THREADS
 *                                        list, then read every file
 *   benchtool [-d DIR] [-f FILE] warm ROOT PASSES
 *                                        open+read+close of every file
 *                                        (PASSES passes) and stat of every
 *                                        entry (5 x PASSES), timed per pass
 *   benchtool [-d DIR] [-f FILE] readers ROOT THREADS same|diff ITERS
 *                                        THREADS readers released together,
 *                                        all on one file or each on its
 *                                        own, ITERS open+read+close each
 *
 * The entries are the names in ROOT/DIR (default "certificates"); the file
 * of an entry is ROOT/DIR/<name>/FILE (default "cert.pem"), or the entry
 * itself when FILE is empty (-f '', as for ROOT/secrets/<name>).
 *
 * Times are CLOCK_MONOTONIC.  A file that cannot be read counts as an
 * error, with the first errno reported, and does not stop the run. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct names {
	char **v;
	size_t n, cap;
};

/* Where the entries and their files are (-d, -f). */
static const char *collection = "certificates";
static const char *leaf = "cert.pem";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "benchtool: %s '%s': %s\n", what, path,
		strerror(errno));
	exit(1);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of ROOT/DIR, sorted. */
static void list_names(const char *root, struct names *ret)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", root, collection);
	d = opendir(path);
	if (!d)
		die("cannot open", path);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (ret->n == ret->cap) {
			ret->cap = ret->cap ? ret->cap * 2 : 1024;
			ret->v = realloc(ret->v, ret->cap * sizeof(*ret->v));
			if (!ret->v)
				die("out of memory for", path);
		}
		ret->v[ret->n] = strdup(de->d_name);
		if (!ret->v[ret->n])
			die("out of memory for", path);
		ret->n++;
	}
	closedir(d);
	qsort(ret->v, ret->n, sizeof(*ret->v), name_cmp);
}

/* open+read to EOF+close; bytes read, or -errno. */
static long read_file(const char *path)
{
	char buf[65536];
	long total = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return total;
}

/* The entry ROOT/DIR/<name> itself. */
static void entry_path(char *buf, size_t size, const char *root,
		       const char *name)
{
	snprintf(buf, size, "%s/%s/%s", root, collection, name);
}

/* The file read for an entry: ROOT/DIR/<name>/FILE, or the entry. */
static void file_path(char *buf, size_t size, const char *root,
		      const char *name)
{
	if (*leaf)
		snprintf(buf, size, "%s/%s/%s/%s", root, collection, name,
			 leaf);
	else
		entry_path(buf, size, root, name);
}

/* ---- cold: a pool of readers over every entry ---- */

struct pool {
	const char *root;
	struct names *names;
	atomic_size_t next;
	atomic_long bytes;
	atomic_long ok;
	atomic_long errors;
	atomic_int first_errno;
};

static void *pool_worker(void *arg)
{
	struct pool *p = arg;
	char path[4096];
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->names->n) {
		long r;

		file_path(path, sizeof(path), p->root, p->names->v[i]);
		r = read_file(path);
		if (r < 0) {
			int zero = 0;

			atomic_fetch_add(&p->errors, 1);
			atomic_compare_exchange_strong(&p->first_errno, &zero,
						       (int)-r);
		} else {
			atomic_fetch_add(&p->ok, 1);
			atomic_fetch_add(&p->bytes, r);
		}
	}
	return NULL;
}

static int cmd_cold(const char *root, int threads)
{
	struct names names = {0};
	struct pool p = {.root = root, .names = &names};
	pthread_t *tids;
	double t0, t1, t2;

	t0 = now_s();
	list_names(root, &names);
	t1 = now_s();
	tids = calloc((size_t)threads, sizeof(*tids));
	for (int i = 0; i < threads; i++)
		pthread_create(&tids[i], NULL, pool_worker, &p);
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	t2 = now_s();
	printf("{\"listed\": %zu, \"list_s\": %.6f, \"read_s\": %.6f, "
	       "\"files\": %ld, \"errors\": %ld, \"first_errno\": %d, "
	       "\"bytes\": %ld, \"threads\": %d}\n",
	       names.n, t1 - t0, t2 - t1, atomic_load(&p.ok),
	       atomic_load(&p.errors), atomic_load(&p.first_errno),
	       atomic_load(&p.bytes), threads);
	return 0;
}

/* ---- warm: per-operation cost, pass by pass ---- */

static int cmd_warm(const char *root, int passes)
{
	struct names names = {0};
	char **files, **entries;
	long errors = 0;
	struct stat st;

	list_names(root, &names);
	if (names.n == 0) {
		fprintf(stderr, "benchtool: no entry under '%s/%s'\n", root,
			collection);
		return 1;
	}
	/* Paths built once, so that the loops time only the system calls. */
	files = calloc(names.n, sizeof(*files));
	entries = calloc(names.n, sizeof(*entries));
	for (size_t i = 0; i < names.n; i++) {
		char buf[4096];

		file_path(buf, sizeof(buf), root, names.v[i]);
		files[i] = strdup(buf);
		entry_path(buf, sizeof(buf), root, names.v[i]);
		entries[i] = strdup(buf);
	}

	/* One untimed pass: this figure is about the warm path. */
	for (size_t i = 0; i < names.n; i++) {
		if (read_file(files[i]) < 0)
			errors++;
		if (stat(entries[i], &st) < 0)
			errors++;
	}

	printf("{\"files\": %zu, \"read_ns\": [", names.n);
	for (int p = 0; p < passes; p++) {
		double t0 = now_s();

		for (size_t i = 0; i < names.n; i++)
			if (read_file(files[i]) < 0)
				errors++;
		printf("%s%.1f", p ? ", " : "",
		       (now_s() - t0) * 1e9 / (double)names.n);
	}
	/* A stat is a tenth of a read: more passes for the same accuracy. */
	printf("], \"stat_ns\": [");
	for (int p = 0; p < passes * 5; p++) {
		double t0 = now_s();

		for (size_t i = 0; i < names.n; i++)
			if (stat(entries[i], &st) < 0)
				errors++;
		printf("%s%.1f", p ? ", " : "",
		       (now_s() - t0) * 1e9 / (double)names.n);
	}
	printf("], \"errors\": %ld}\n", errors);
	return 0;
}

/* ---- readers: many threads released at once ---- */

struct readers {
	const char *root;
	struct names *names;
	bool same;
	int iters;
	pthread_barrier_t start;
	atomic_long errors;
	atomic_long ok;
	/* Per thread, so that no thread's scheduling skews the clock. */
	double started[1024];
	double first_done[1024];
	double done[1024];
};

struct reader_arg {
	struct readers *r;
	int index;
};

static void *reader_worker(void *arg)
{
	struct reader_arg *a = arg;
	struct readers *r = a->r;
	const char *name =
		r->names->v[r->same ? 0 : (size_t)a->index % r->names->n];
	char path[4096];

	file_path(path, sizeof(path), r->root, name);
	pthread_barrier_wait(&r->start);
	r->started[a->index] = now_s();
	for (int i = 0; i < r->iters; i++) {
		if (read_file(path) < 0)
			atomic_fetch_add(&r->errors, 1);
		else
			atomic_fetch_add(&r->ok, 1);
		if (i == 0)
			r->first_done[a->index] = now_s();
	}
	r->done[a->index] = now_s();
	return NULL;
}

static int cmd_readers(const char *root, int threads, const char *mode,
		       int iters)
{
	static struct readers r;
	struct names names = {0};
	struct reader_arg *args;
	pthread_t *tids;
	double t0, t1, first = 0;

	if (threads < 1 || threads > 1024 || iters < 1) {
		fprintf(stderr, "benchtool: 1..1024 threads, iters >= 1\n");
		return 2;
	}
	/* The names come from a listing the caller has already made warm
	 * or not; a readdir costs no vault request either way. */
	list_names(root, &names);
	if ((size_t)threads > names.n && strcmp(mode, "diff") == 0) {
		fprintf(stderr, "benchtool: fewer entries than readers\n");
		return 1;
	}
	r.root = root;
	r.names = &names;
	r.same = strcmp(mode, "same") == 0;
	r.iters = iters;
	pthread_barrier_init(&r.start, NULL, (unsigned)threads + 1);
	tids = calloc((size_t)threads, sizeof(*tids));
	args = calloc((size_t)threads, sizeof(*args));
	for (int i = 0; i < threads; i++) {
		args[i] = (struct reader_arg){.r = &r, .index = i};
		pthread_create(&tids[i], NULL, reader_worker, &args[i]);
	}
	pthread_barrier_wait(&r.start);
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	/* From the first reader's start to the last reader's end. */
	t0 = r.started[0];
	t1 = r.done[0];
	for (int i = 1; i < threads; i++) {
		if (r.started[i] < t0)
			t0 = r.started[i];
		if (r.done[i] > t1)
			t1 = r.done[i];
	}
	for (int i = 0; i < threads; i++)
		if (r.first_done[i] - t0 > first)
			first = r.first_done[i] - t0;
	printf("{\"threads\": %d, \"mode\": \"%s\", \"iters\": %d, "
	       "\"first_round_s\": %.6f, \"total_s\": %.6f, \"ok\": %ld, "
	       "\"errors\": %ld}\n",
	       threads, mode, iters, first, t1 - t0, atomic_load(&r.ok),
	       atomic_load(&r.errors));
	return 0;
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "+d:f:")) != -1) {
		if (opt == 'd')
			collection = optarg;
		else if (opt == 'f')
			leaf = optarg;
		else
			return 2;
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc == 4 && strcmp(argv[1], "cold") == 0)
		return cmd_cold(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "warm") == 0)
		return cmd_warm(argv[2], atoi(argv[3]));
	if (argc == 6 && strcmp(argv[1], "readers") == 0)
		return cmd_readers(argv[2], atoi(argv[3]), argv[4],
				   atoi(argv[5]));
	fprintf(stderr,
		"usage: benchtool [-d DIR] [-f FILE] cold ROOT THREADS\n"
		"       benchtool [-d DIR] [-f FILE] warm ROOT PASSES\n"
		"       benchtool [-d DIR] [-f FILE] readers ROOT THREADS "
		"same|diff ITERS\n");
	return 2;
}
