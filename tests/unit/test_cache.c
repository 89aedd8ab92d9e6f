/* Unit tests of cache.c against a scripted vault: the listing (sorted,
 * case-insensitive, invalid and duplicate names dropped), files fetched once
 * and shared by concurrent first readers, failures handed to the waiters
 * but not kept, the deadline, and revalidation that drops changed entries
 * while open files keep their bytes.  The vault calls are replaced at link
 * time (-Wl,--wrap), so no network is involved. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "tap.h"
#include "util.h"

int __wrap_kvfs_vault_list_certificates(struct kvfs_vault *v,
					struct kvfs_cert_list *ret,
					struct kvfs_error *err);
int __wrap_kvfs_vault_get_certificate(struct kvfs_vault *v, const char *name,
				      const char *version,
				      struct kvfs_cert_bundle *ret,
				      struct kvfs_error *err);

struct fake_cert {
	const char *name;
	int64_t updated;
};

static struct fake_cert vault_certs[8];
static size_t vault_n;
static int list_error;

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static int get_calls;
static char last_get[128];
static int get_error; /* returned by the next GETs when non-zero */
static unsigned get_delay_ms;
static bool get_garbage; /* "cer" that is not a certificate */

static unsigned char *leaf_der;
static size_t leaf_der_len;

int __wrap_kvfs_vault_list_certificates(struct kvfs_vault *v,
					struct kvfs_cert_list *ret,
					struct kvfs_error *err)
{
	struct kvfs_cert_list l = {0};

	if (list_error) {
		kvfs_error_set_message(err, "scripted failure");
		return list_error;
	}
	l.items = calloc(vault_n ? vault_n : 1, sizeof(l.items[0]));
	for (size_t i = 0; i < vault_n; i++) {
		l.items[i].name = strdup(vault_certs[i].name);
		l.items[i].tags_json = strdup("{}");
		l.items[i].attrs.enabled = true;
		l.items[i].attrs.created = 1000;
		l.items[i].attrs.updated = vault_certs[i].updated;
	}
	l.n = vault_n;
	*ret = l;
	return 0;
}

int __wrap_kvfs_vault_get_certificate(struct kvfs_vault *v, const char *name,
				      const char *version,
				      struct kvfs_cert_bundle *ret,
				      struct kvfs_error *err)
{
	struct kvfs_cert_bundle b = {0};
	int64_t updated = 0;
	unsigned delay;
	int fail;
	bool garbage;

	pthread_mutex_lock(&fake_lock);
	get_calls++;
	snprintf(last_get, sizeof(last_get), "%s", name);
	delay = get_delay_ms;
	fail = get_error;
	garbage = get_garbage;
	for (size_t i = 0; i < vault_n; i++)
		if (strcmp(vault_certs[i].name, name) == 0)
			updated = vault_certs[i].updated;
	pthread_mutex_unlock(&fake_lock);

	if (delay)
		usleep(delay * 1000);
	if (fail) {
		err->http_status = 503;
		kvfs_error_set_message(err, "scripted failure");
		return fail;
	}
	b.name = strdup(name);
	b.attrs.enabled = true;
	b.attrs.updated = updated;
	if (garbage) {
		b.der = (unsigned char *)strdup("not a certificate");
		b.der_len = strlen((char *)b.der);
	} else {
		b.der = malloc(leaf_der_len);
		memcpy(b.der, leaf_der, leaf_der_len);
		b.der_len = leaf_der_len;
	}
	*ret = b;
	return 0;
}

static int calls(void)
{
	int n;

	pthread_mutex_lock(&fake_lock);
	n = get_calls;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

static void set_vault(const struct fake_cert *certs, size_t n)
{
	memcpy(vault_certs, certs, n * sizeof(*certs));
	vault_n = n;
}

static bool load_leaf(void)
{
	FILE *f = fopen("pki-leaf.der", "rb");

	if (!f)
		return false;
	leaf_der = malloc(65536);
	leaf_der_len = fread(leaf_der, 1, 65536, f);
	fclose(f);
	return leaf_der_len > 0;
}

struct reader {
	struct kvfs_cache *cache;
	const char *name;
	int r;
	struct kvfs_files *files;
	double seconds;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *reader_run(void *p)
{
	struct reader *rd = p;
	double t0 = now_s();

	rd->r = kvfs_cache_files(rd->cache, rd->name, &rd->files);
	rd->seconds = now_s() - t0;
	return NULL;
}

static void test_listing(struct kvfs_cache *cache)
{
	static const struct fake_cert certs[] = {
		{"www", 300}, {"Api", 200},  {"bad_name", 900},
		{"WWW", 400}, {"mail", 100}, {"", 50},
	};
	struct kvfs_listing *l;
	struct kvfs_error err;

	set_vault(certs, ELEMENTSOF(certs));
	is_int(kvfs_cache_load(cache, &err), 0, "first listing loads");
	l = kvfs_cache_listing(cache);
	is_int(l->n, 3, "invalid and duplicate names dropped");
	if (l->n == 3) {
		is_str(l->entries[0].item.name, "Api", "sorted: Api");
		is_str(l->entries[1].item.name, "mail", "sorted: mail");
		is_str(l->entries[2].item.name, "www",
		       "sorted: www, first kept");
	}
	ok(kvfs_listing_find(l, "API") == &l->entries[0],
	   "lookup is case-insensitive");
	ok(kvfs_listing_find(l, "Www") == &l->entries[2], "Www finds www");
	ok(kvfs_listing_find(l, "bad_name") == NULL,
	   "an invalid name never becomes an entry");
	ok(kvfs_listing_find(l, "..") == NULL, ".. is not found");
	ok(kvfs_listing_find(l, "ww") == NULL, "a prefix is not found");
	is_int(l->updated_max, 300, "updated_max over the kept entries");
	kvfs_listing_unref(l);
	is_int(calls(), 0, "listing makes no GET");
}

static void test_fetch_once(struct kvfs_cache *cache)
{
	struct kvfs_files *a = NULL, *b = NULL, *p = NULL;

	is_int(kvfs_cache_files_peek(cache, "www", &p), -ENODATA,
	       "peek before any fetch: ENODATA");
	is_int(calls(), 0, "peek makes no GET");
	is_int(kvfs_cache_files(cache, "WWW", &a), 0, "files of WWW");
	is_int(calls(), 1, "one GET");
	is_str(last_get, "www", "the GET uses the vault's spelling");
	ok(a && a->cert_pem &&
		   strncmp(a->cert_pem, "-----BEGIN CERTIFICATE", 22) == 0,
	   "cert.pem built");
	ok(a && a->bundle.der_len == leaf_der_len, "cert.der kept");
	is_int(kvfs_cache_files(cache, "www", &b), 0, "files again");
	is_int(calls(), 1, "served from the cache: no second GET");
	ok(a == b, "the same snapshot");
	is_int(kvfs_cache_files_peek(cache, "wWw", &p), 0,
	       "peek after the fetch");
	ok(p == a, "peek returns the snapshot");
	kvfs_files_unref(a);
	kvfs_files_unref(b);
	kvfs_files_unref(p);

	is_int(kvfs_cache_files(cache, "nope", &a), -ENOENT,
	       "a name not in the listing: ENOENT");
	is_int(kvfs_cache_files(cache, "..", &a), -ENOENT, "..: ENOENT");
	is_int(calls(), 1, "negative lookups make no GET");
}

static void test_single_flight(struct kvfs_cache *cache)
{
	struct reader rd[8];
	pthread_t th[8];
	int before = calls(), good = 0, same = 0;

	get_delay_ms = 300;
	for (int i = 0; i < 8; i++) {
		rd[i] = (struct reader){.cache = cache, .name = "mail"};
		pthread_create(&th[i], NULL, reader_run, &rd[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	get_delay_ms = 0;
	for (int i = 0; i < 8; i++) {
		good += rd[i].r == 0;
		same += rd[i].files == rd[0].files;
	}
	is_int(calls() - before, 1, "8 concurrent first readers: one GET");
	is_int(good, 8, "all 8 succeed");
	is_int(same, 8, "all 8 share one snapshot");
	for (int i = 0; i < 8; i++)
		kvfs_files_unref(rd[i].files);
}

static void test_failures(struct kvfs_cache *cache)
{
	struct kvfs_files *f = NULL;
	struct reader rd[4];
	pthread_t th[4];
	int before = calls(), failed = 0;

	get_error = -EAGAIN;
	get_delay_ms = 200;
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){.cache = cache, .name = "Api"};
		pthread_create(&th[i], NULL, reader_run, &rd[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	get_delay_ms = 0;
	for (int i = 0; i < 4; i++)
		failed += rd[i].r == -EIO;
	is_int(calls() - before, 1, "a failing fetch is shared too");
	is_int(failed, 4, "every waiter gets EIO");

	is_int(kvfs_cache_files(cache, "Api", &f), -EIO, "still failing");
	is_int(calls() - before, 2,
	       "a failure is not kept: the next call "
	       "tries again");
	get_error = -ENOENT;
	is_int(kvfs_cache_files(cache, "Api", &f), -ENOENT,
	       "404 from the vault: ENOENT");
	get_error = -EACCES;
	is_int(kvfs_cache_files(cache, "Api", &f), -EACCES,
	       "403 from the vault: EACCES");
	get_error = -ETIMEDOUT;
	is_int(kvfs_cache_files(cache, "Api", &f), -EIO, "timeout: EIO");
	get_error = 0;
	get_garbage = true;
	is_int(kvfs_cache_files(cache, "Api", &f), -EIO,
	       "a 'cer' that is not a certificate: EIO");
	get_garbage = false;
	is_int(kvfs_cache_files(cache, "Api", &f), 0, "recovers");
	kvfs_files_unref(f);
}

static void test_deadline(struct kvfs_cache *cache)
{
	static const struct fake_cert certs[] = {
		{"www", 300},
		{"Api", 200},
		{"mail", 100},
		{"slow", 100},
	};
	struct kvfs_error err;
	struct reader loader = {.cache = cache, .name = "slow"};
	struct reader waiter = {.cache = cache, .name = "slow"};
	pthread_t t1, t2;

	set_vault(certs, ELEMENTSOF(certs));
	is_int(kvfs_cache_load(cache, &err), 0, "listing with 'slow'");
	get_delay_ms = 2500;
	pthread_create(&t1, NULL, reader_run, &loader);
	usleep(200 * 1000);
	pthread_create(&t2, NULL, reader_run, &waiter);
	pthread_join(t2, NULL);
	is_int(waiter.r, -EIO, "a waiter gives up at the deadline");
	ok(waiter.seconds >= 0.9 && waiter.seconds < 2.0,
	   "after about deadline=1 s (%.2f s)", waiter.seconds);
	pthread_join(t1, NULL);
	get_delay_ms = 0;
	is_int(loader.r, 0, "the loader itself still gets its answer");
	kvfs_files_unref(loader.files);
}

static void test_revalidate(struct kvfs_cache *cache)
{
	static const struct fake_cert rotated[] = {
		{"www", 999},
		{"mail", 100},
		{"slow", 100},
	};
	struct kvfs_files *old = NULL, *f = NULL, *m1 = NULL, *m2 = NULL;
	struct kvfs_listing *before, *after;
	struct kvfs_error err;
	char *copy;
	int n;

	is_int(kvfs_cache_files(cache, "www", &old), 0, "www open");
	is_int(kvfs_cache_files(cache, "mail", &m1), 0, "mail open");
	copy = strdup(old->cert_pem);
	before = kvfs_cache_listing(cache);

	list_error = -EIO;
	ok(kvfs_cache_load(cache, &err) < 0, "a failed listing is an error");
	after = kvfs_cache_listing(cache);
	ok(after == before, "and the current listing stays");
	kvfs_listing_unref(after);
	list_error = 0;

	set_vault(rotated, ELEMENTSOF(rotated));
	n = calls();
	is_int(kvfs_cache_load(cache, &err), 0, "revalidated listing");
	is_int(before->n, 4, "a held listing is unchanged");
	kvfs_listing_unref(before);

	ok(strcmp(old->cert_pem, copy) == 0,
	   "an open file keeps its bytes across a reload");
	is_int(kvfs_cache_files(cache, "www", &f), 0, "www after rotation");
	is_int(calls() - n, 1, "a changed certificate is fetched again");
	ok(f != old, "as a new snapshot");
	is_int(f->bundle.attrs.updated, 999, "of the new version");
	is_int(kvfs_cache_files(cache, "mail", &m2), 0, "mail after reload");
	is_int(calls() - n, 1, "an unchanged certificate is not refetched");
	ok(m1 == m2, "and keeps its snapshot");
	is_int(kvfs_cache_files(cache, "Api", &f), -ENOENT,
	       "a deleted certificate is gone");
	kvfs_files_unref(old);
	kvfs_files_unref(f);
	kvfs_files_unref(m1);
	kvfs_files_unref(m2);
	free(copy);
}

int main(void)
{
	struct kvfs_config config = {.deadline = 1};
	struct kvfs_cache *cache = NULL;

	if (!ok(load_leaf(), "fixture pki-leaf.der"))
		return done_testing();
	is_int(kvfs_cache_new(&config, NULL, &cache), 0, "cache created");
	test_listing(cache);
	test_fetch_once(cache);
	test_single_flight(cache);
	test_failures(cache);
	test_deadline(cache);
	test_revalidate(cache);
	kvfs_cache_free(cache);
	free(leaf_der);
	return done_testing();
}
