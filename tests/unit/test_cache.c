/* Unit tests of cache.c against a scripted vault: the listing (sorted,
 * case-insensitive, invalid and duplicate names dropped), files fetched once
 * and shared by concurrent first readers, failures handed to the waiters
 * but not kept, the deadline, and revalidation that drops changed entries
 * while open files keep their bytes; the secret fetched once per version
 * and shared, a refusal kept and a transient failure not; a process's
 * opens pinned to one version through a rotation.  Revalidation: what
 * counts as a change (updated, x5t, gone, new) and what is queued for the
 * kernel, a change that waits for files opened through the page cache,
 * one listing in flight, and stale-on-error (max_stale=, exp); the
 * versions listings kept are listed again and the versions that changed
 * or went are dropped.  The vault
 * is scripted_vault.c, swapped in at link time (-Wl,--wrap), so no network
 * is involved. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "kernel.h"
#include "scripted_vault.h"
#include "tap.h"
#include "util.h"

/* What the cache reports goes to a kernel module, as in the daemon. */
static struct kvfs_kernel *kernel;

/* What kvfs_kernel_flush() handed over, as "kind:name" lines. */
static char flushed[1024];

static void collect_change(void *data, const struct kvfs_change *c, bool again)
{
	static const char *const kinds[] = {
		[KVFS_CHANGE_LISTING] = "listing",
		[KVFS_CHANGE_CHANGED] = "changed",
		[KVFS_CHANGE_GONE] = "gone",
		[KVFS_CHANGE_VERSIONS] = "versions",
	};
	size_t n = strlen(flushed);

	snprintf(flushed + n, sizeof(flushed) - n, "%s%s%s%s", n ? " " : "",
		 kinds[c->kind], c->name ? ":" : "", c->name ? c->name : "");
	for (size_t i = 0; c->kind == KVFS_CHANGE_VERSIONS && i < c->nversions;
	     i++) {
		n = strlen(flushed);
		snprintf(flushed + n, sizeof(flushed) - n, "/%s",
			 c->versions[i]);
	}
}

/* Flush the queued changes; returns how many still wait. */
static size_t flush(struct kvfs_cache *cache)
{
	flushed[0] = '\0';
	return kvfs_kernel_flush(kernel, collect_change, NULL);
}

struct reader {
	struct kvfs_cache *cache;
	const char *name;
	int r;
	struct kvfs_files *files;
	double seconds;
};

static void *reader_run(void *p)
{
	struct reader *rd = p;
	double t0 = now_s();

	rd->r = kvfs_cache_files(rd->cache, KVFS_COLLECTION_CERTIFICATES,
				 rd->name, &rd->files);
	rd->seconds = now_s() - t0;
	return NULL;
}

/* The bytes of file k of f as a reader gets them (kvfs_files_span_read),
 * malloc'ed and NUL-terminated, their length in *ret_len unless NULL;
 * NULL when f holds none. */
static char *bytes_of(const struct kvfs_files *f, enum kvfs_file_kind k,
		      size_t *ret_len)
{
	struct kvfs_files_span s;
	size_t len;
	char *b;

	if (!f || kvfs_files_bytes(f, k, &s) < 0)
		return NULL;
	len = kvfs_files_span_size(&s);
	b = malloc(len + 1);
	if (!b)
		return NULL;
	b[kvfs_files_span_read(&s, 0, b, len)] = '\0';
	if (ret_len)
		*ret_len = len;
	return b;
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
	l = kvfs_cache_listing(cache, KVFS_COLLECTION_CERTIFICATES);
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
	_cleanup_free_ char *pem = NULL, *der = NULL, *want = NULL;
	size_t der_len, want_len;

	is_int(kvfs_cache_files_peek(cache, KVFS_COLLECTION_CERTIFICATES, "www",
				     &p),
	       -ENODATA, "peek before any fetch: ENODATA");
	is_int(calls(), 0, "peek makes no GET");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "WWW", &a),
	       0, "files of WWW");
	is_int(calls(), 1, "one GET");
	is_str(last_get, "www", "the GET uses the vault's spelling");
	pem = bytes_of(a, KVFS_FILE_CERT_PEM, NULL);
	ok(pem && strncmp(pem, "-----BEGIN CERTIFICATE", 22) == 0,
	   "cert.pem built");
	der = bytes_of(a, KVFS_FILE_CERT_DER, &der_len);
	ok(der && der_len == leaf_der_len, "cert.der kept");
	ok(pem && der &&
		   kvfs_pki_der_to_pem((unsigned char *)der, der_len, &want,
				       &want_len) == 0 &&
		   strlen(pem) == want_len && strcmp(pem, want) == 0,
	   "cert.pem read is the PEM of cert.der");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www", &b),
	       0, "files again");
	is_int(calls(), 1, "served from the cache: no second GET");
	ok(a == b, "the same snapshot");
	is_int(kvfs_cache_files_peek(cache, KVFS_COLLECTION_CERTIFICATES, "wWw",
				     &p),
	       0, "peek after the fetch");
	ok(p == a, "peek returns the snapshot");
	kvfs_files_unref(a);
	kvfs_files_unref(b);
	kvfs_files_unref(p);

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "nope",
				&a),
	       -ENOENT, "a name not in the listing: ENOENT");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "..", &a),
	       -ENOENT, "..: ENOENT");
	is_int(calls(), 1, "negative lookups make no GET");
}

/* No row of the table: the key of an object of a collection this mount
 * does not show.  It stands for a second collection, which the table does
 * not have yet. */
#define OTHER ((enum kvfs_collection)KVFS_COLLECTION_COUNT_)

/* A collection the mount does not show has nothing: www of the
 * certificates, fetched and kept by test_fetch_once, is ENOENT there
 * through every call, and asking makes no request; and the three slot
 * keys of one name never meet.  That two shown collections keep apart
 * slots of one name needs a second row of the table to be tested. */
static void test_other_collection(struct kvfs_cache *cache)
{
	struct kvfs_files *f = NULL;
	struct kvfs_versions *vs = NULL;
	int n = calls();

	ok(kvfs_cache_has_collection(cache, KVFS_COLLECTION_CERTIFICATES),
	   "the mount shows the certificates");
	ok(!kvfs_cache_has_collection(cache, OTHER),
	   "and no collection that is not a row of the table");
	ok(kvfs_cache_listing(cache, OTHER) == NULL,
	   "no listing of a collection the mount does not show");
	is_int(kvfs_cache_files_peek(cache, KVFS_COLLECTION_CERTIFICATES, "www",
				     &f),
	       0, "www is kept among the certificates");
	kvfs_files_unref(f);
	is_int(kvfs_cache_files_peek(cache, OTHER, "www", &f), -ENOENT,
	       "peek of www of another collection: ENOENT, not the "
	       "certificate's files");
	is_int(kvfs_cache_files(cache, OTHER, "www", &f), -ENOENT,
	       "files of www of another collection: ENOENT");
	is_int(kvfs_cache_files_for(cache, OTHER, "www", 77, 1, &f), -ENOENT,
	       "an open of www of another collection: ENOENT");
	is_int(kvfs_cache_versions(cache, OTHER, "www", &vs), -ENOENT,
	       "versions of www of another collection: ENOENT");
	is_int(kvfs_cache_version_files(cache, OTHER, "www", "0123abcd", &f),
	       -ENOENT, "a version of www of another collection: ENOENT");
	/* The slot keys "name", "name/" and "name/version" never meet: a
	 * version is a valid name, so never empty and never has a slash. */
	is_int(kvfs_cache_version_files(cache, KVFS_COLLECTION_CERTIFICATES,
					"www", "", &f),
	       -ENOENT, "an empty version is not the versions listing's key");
	is_int(kvfs_cache_version_files(cache, KVFS_COLLECTION_CERTIFICATES,
					"www", "a/b", &f),
	       -ENOENT, "a version with a slash is nothing");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www/",
				&f),
	       -ENOENT, "a name with a slash is nothing");
	is_int(calls(), n, "and none of that made a request");
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

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "Api", &f),
	       -EIO, "still failing");
	is_int(calls() - before, 2,
	       "a failure is not kept: the next call "
	       "tries again");
	get_error = -ENOENT;
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "Api", &f),
	       -ENOENT, "404 from the vault: ENOENT");
	get_error = -EACCES;
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "Api", &f),
	       -EACCES, "403 from the vault: EACCES");
	get_error = -ETIMEDOUT;
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "Api", &f),
	       -EIO, "timeout: EIO");
	get_error = 0;
	get_garbage = true;
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "Api", &f),
	       -EIO, "a 'cer' that is not a certificate: EIO");
	get_garbage = false;
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "Api", &f),
	       0, "recovers");
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
	_cleanup_free_ char *again = NULL;
	char *copy;
	int n;

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www",
				&old),
	       0, "www open");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "mail",
				&m1),
	       0, "mail open");
	copy = bytes_of(old, KVFS_FILE_CERT_PEM, NULL);
	before = kvfs_cache_listing(cache, KVFS_COLLECTION_CERTIFICATES);

	list_error = -EIO;
	ok(kvfs_cache_load(cache, &err) < 0, "a failed listing is an error");
	after = kvfs_cache_listing(cache, KVFS_COLLECTION_CERTIFICATES);
	ok(after == before, "and the current listing stays");
	kvfs_listing_unref(after);
	list_error = 0;

	set_vault(rotated, ELEMENTSOF(rotated));
	n = calls();
	is_int(kvfs_cache_load(cache, &err), 0, "revalidated listing");
	is_int(before->n, 4, "a held listing is unchanged");
	kvfs_listing_unref(before);

	again = bytes_of(old, KVFS_FILE_CERT_PEM, NULL);
	ok(again && copy && strcmp(again, copy) == 0,
	   "an open file keeps its bytes across a reload");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www", &f),
	       0, "www after rotation");
	is_int(calls() - n, 1, "a changed certificate is fetched again");
	ok(f != old, "as a new snapshot");
	is_int(kvfs_files_attrs(f)->updated, 999, "of the new version");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "mail",
				&m2),
	       0, "mail after reload");
	is_int(calls() - n, 1, "an unchanged certificate is not refetched");
	ok(m1 == m2, "and keeps its snapshot");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "Api", &f),
	       -ENOENT, "a deleted certificate is gone");
	kvfs_files_unref(old);
	kvfs_files_unref(f);
	kvfs_files_unref(m1);
	kvfs_files_unref(m2);
	free(copy);
}

/* Revalidation lists again the versions of the certificates whose versions
 * listing is kept, and only those: an old version disabled or deleted
 * shows, its files are fetched again, a failure keeps what was there. */
static void test_versions_revalidate(struct kvfs_cache *cache)
{
	static const struct fake_cert certs[] = {{"mail", 10}, {"www", 10}};
	static const struct fake_version vers[] = {{"v1", true, 5},
						   {"v2", true, 10}};
	struct kvfs_files *v1 = NULL, *f = NULL;
	struct kvfs_versions *vs = NULL;
	const struct kvfs_object_item *it;
	_cleanup_free_ char *pem = NULL;
	struct kvfs_error err;
	int lists, gets;

	set_vault(certs, ELEMENTSOF(certs));
	pthread_mutex_lock(&fake_lock);
	memcpy(vault_versions, vers, sizeof(vers));
	versions_n = ELEMENTSOF(vers);
	pthread_mutex_unlock(&fake_lock);
	is_int(kvfs_cache_load(cache, &err), 0, "listing");
	flush(cache);
	is_int(kvfs_cache_versions(cache, KVFS_COLLECTION_CERTIFICATES, "mail",
				   &vs),
	       0, "versions of mail");
	kvfs_versions_unref(vs);
	is_int(kvfs_cache_version_files(cache, KVFS_COLLECTION_CERTIFICATES,
					"mail", "v1", &v1),
	       0, "files of mail/v1");

	lists = versions_count();
	gets = calls();
	is_int(kvfs_cache_revalidate(cache, 1, &err), 0, "revalidated");
	is_int(versions_count() - lists, 1,
	       "one versions listing: mail's, not www's");
	flush(cache);
	is_str(flushed, "", "nothing changed, nothing queued");
	is_int(kvfs_cache_version_files(cache, KVFS_COLLECTION_CERTIFICATES,
					"mail", "v1", &f),
	       0, "mail/v1 again");
	ok(f == v1 && calls() == gets, "kept, not fetched again");
	kvfs_files_unref(f);

	pthread_mutex_lock(&fake_lock);
	vault_versions[0].enabled = false;
	vault_versions[0].updated = 20;
	pthread_mutex_unlock(&fake_lock);
	is_int(kvfs_cache_revalidate(cache, 1, &err), 0, "v1 disabled");
	flush(cache);
	is_str(flushed, "versions:mail/v1", "the change of v1 queued");
	is_int(kvfs_cache_versions(cache, KVFS_COLLECTION_CERTIFICATES, "mail",
				   &vs),
	       0, "versions again");
	it = kvfs_versions_find(vs, "v1");
	ok(it && !it->attrs.enabled, "v1 is disabled");
	it = kvfs_versions_find(vs, "v2");
	ok(it && it->attrs.enabled, "v2 is not");
	kvfs_versions_unref(vs);
	is_int(kvfs_cache_version_files(cache, KVFS_COLLECTION_CERTIFICATES,
					"mail", "v1", &f),
	       0, "mail/v1 after the change");
	ok(f != v1 && calls() == gets + 1, "fetched again, as new files");
	kvfs_files_unref(f);

	pthread_mutex_lock(&fake_lock);
	versions_error = -EIO;
	pthread_mutex_unlock(&fake_lock);
	is_int(kvfs_cache_revalidate(cache, 1, &err), 0,
	       "a failed versions listing does not fail the revalidation");
	flush(cache);
	is_str(flushed, "", "and changes nothing");

	pthread_mutex_lock(&fake_lock);
	versions_error = 0;
	vault_versions[0] = vault_versions[1];
	versions_n = 1;
	pthread_mutex_unlock(&fake_lock);
	is_int(kvfs_cache_revalidate(cache, 1, &err), 0, "v1 deleted");
	flush(cache);
	is_str(flushed, "versions:mail/v1", "the deletion of v1 queued");
	is_int(kvfs_cache_versions(cache, KVFS_COLLECTION_CERTIFICATES, "mail",
				   &vs),
	       0, "versions again");
	ok(vs && vs->list.n == 1 && !kvfs_versions_find(vs, "v1"),
	   "v1 is gone");
	kvfs_versions_unref(vs);
	gets = calls();
	is_int(kvfs_cache_version_files(cache, KVFS_COLLECTION_CERTIFICATES,
					"mail", "v2", &f),
	       0, "mail/v2");
	kvfs_files_unref(f);
	is_int(calls() - gets, 1, "v2 fetched once");
	is_int(kvfs_cache_revalidate(cache, 1, &err), 0, "nothing changed");
	is_int(kvfs_cache_version_files(cache, KVFS_COLLECTION_CERTIFICATES,
					"mail", "v2", &f),
	       0, "mail/v2 again");
	kvfs_files_unref(f);
	is_int(calls() - gets, 1, "v2 not fetched again");
	pem = bytes_of(v1, KVFS_FILE_CERT_PEM, NULL);
	ok(pem != NULL, "the files held keep their bytes");
	kvfs_files_unref(v1);
}

struct secret_reader {
	struct kvfs_cache *cache;
	struct kvfs_files *files;
	const struct kvfs_pki_secret_files *sf;
	int r;
};

static void *secret_reader_run(void *p)
{
	struct secret_reader *rd = p;

	rd->r = kvfs_cache_secret(rd->cache, rd->files, &rd->sf);
	return NULL;
}

static void test_secret(struct kvfs_cache *cache)
{
	static const struct fake_cert certs[] = {{"keyed", 10},
						 {"keyed-denied", 10},
						 {"keyed-flaky", 10},
						 {"keyed-garbage", 10}};
	const struct kvfs_pki_secret_files *sf = NULL, *sf2 = NULL;
	struct secret_reader rd[6];
	pthread_t th[6];
	struct kvfs_files *f = NULL;
	struct kvfs_error err;
	int n, ok_all = 1;

	set_vault(certs, ELEMENTSOF(certs));
	is_int(kvfs_cache_load(cache, &err), 0, "listing with keyed certs");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "keyed",
				&f),
	       0, "keyed bundle");
	n = secret_count();
	is_int(kvfs_cache_secret_peek(cache, f, &sf), -ENODATA,
	       "peek: no secret yet, and no fetch");
	is_int(secret_count() - n, 0, "a peek costs nothing");

	secret_delay_ms = 200;
	for (int i = 0; i < 6; i++) {
		rd[i] = (struct secret_reader){.cache = cache, .files = f};
		pthread_create(&th[i], NULL, secret_reader_run, &rd[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		if (rd[i].r != 0 || rd[i].sf != rd[0].sf)
			ok_all = 0;
	}
	secret_delay_ms = 0;
	ok(ok_all, "six concurrent first readers all get the one secret");
	is_int(secret_count() - n, 1, "with one GET");
	ok(rd[0].sf && rd[0].sf->has_key && rd[0].sf->privkey,
	   "and it has the key");
	is_int(kvfs_cache_secret(cache, f, &sf2), 0, "warm");
	is_int(secret_count() - n, 1, "a warm look costs nothing");
	kvfs_files_unref(f);

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES,
				"keyed-denied", &f),
	       0, "denied bundle");
	secret_error = -EACCES;
	n = secret_count();
	is_int(kvfs_cache_secret(cache, f, &sf), -EACCES, "403 -> EACCES");
	secret_error = 0;
	is_int(kvfs_cache_secret(cache, f, &sf), -EACCES, "and it is kept");
	is_int(secret_count() - n, 1, "no second GET");
	kvfs_files_unref(f);

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES,
				"keyed-flaky", &f),
	       0, "flaky bundle");
	secret_error = -EAGAIN;
	n = secret_count();
	is_int(kvfs_cache_secret(cache, f, &sf), -EIO, "503 -> EIO");
	secret_error = 0;
	is_int(kvfs_cache_secret(cache, f, &sf), 0, "not kept: next works");
	is_int(secret_count() - n, 2, "with a second GET");
	kvfs_files_unref(f);

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES,
				"keyed-garbage", &f),
	       0, "bundle");
	secret_garbage = true;
	n = secret_count();
	is_int(kvfs_cache_secret(cache, f, &sf), -EIO, "a bad secret -> EIO");
	secret_garbage = false;
	is_int(kvfs_cache_secret(cache, f, &sf), -EIO, "kept");
	is_int(secret_count() - n, 1, "no second GET");
	kvfs_files_unref(f);
}

/* An open as fs.c makes it: the files for process tgid's open of file,
 * and whether it goes through the page cache (counted by the kernel
 * module until release()). */
static int open_for(struct kvfs_cache *cache, const char *name, int64_t tgid,
		    unsigned file, struct kvfs_files **ret, bool *ret_cached)
{
	int r = kvfs_cache_files_for(cache, KVFS_COLLECTION_CERTIFICATES, name,
				     tgid, file, ret);

	if (r == 0)
		*ret_cached =
			kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES,
					 kvfs_files_name(*ret), *ret);
	return r;
}

static void release(struct kvfs_files *f, bool cached)
{
	if (cached)
		kvfs_kernel_close(kernel, f);
	kvfs_files_unref(f);
}

/* The files whose sizes the kernel is given, as fs.c finds them. */
static int files_kernel(struct kvfs_cache *cache, const char *name,
			struct kvfs_files **ret)
{
	if (kvfs_kernel_files_held(kernel, KVFS_COLLECTION_CERTIFICATES, name,
				   ret))
		return 0;
	return kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, name, ret);
}

static void test_pins(struct kvfs_cache *cache)
{
	static const struct fake_cert v1[] = {{"keyed", 10}};
	static const struct fake_cert v2[] = {{"keyed", 20}};
	struct kvfs_files *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	struct kvfs_files *e = NULL;
	struct kvfs_error err;
	bool ca = false, cb = true, cc = true, cd = false, ce = false;

	kvfs_cache_set_pin_seconds(cache, 1);
	set_vault(v1, 1);
	is_int(kvfs_cache_load(cache, &err), 0, "listing v1");
	flush(cache);
	is_int(open_for(cache, "keyed", 100, 1, &a, &ca), 0,
	       "process 100 opens");
	ok(ca && kvfs_files_attrs(a)->updated == 10,
	   "the current v1, through the page cache");

	set_vault(v2, 1);
	is_int(kvfs_cache_load(cache, &err), 0, "rotated to v2");
	is_int(open_for(cache, "KEYED", 100, 2, &b, &cb), 0,
	       "process 100 opens again");
	ok(b == a && !cb, "it keeps v1, which is no longer cacheable");
	is_int(open_for(cache, "keyed", 200, 1, &c, &cc), 0,
	       "process 200 opens");
	ok(c != a && kvfs_files_attrs(c)->updated == 20,
	   "another process gets v2");
	ok(!cc, "not through the page cache while the kernel may hold v1");
	is_int(flush(cache), 1,
	       "the change is kept while v1 is open through the page cache");
	is_str(flushed, "changed:keyed listing", "and handed over at once");
	is_int(files_kernel(cache, "keyed", &e), 0, "the kernel's files");
	ok(e == a, "are v1's while it is open through the page cache");
	kvfs_files_unref(e);
	is_int(flush(cache), 1, "kept");
	is_str(flushed, "", "and not handed over again before v1 is closed");
	release(a, ca);
	is_int(files_kernel(cache, "keyed", &e), 0, "the kernel's files");
	ok(e == c, "are v2's once v1 is closed");
	kvfs_files_unref(e);
	is_int(flush(cache), 0, "once v1 is closed, the change goes");
	is_str(flushed, "changed:keyed", "handed over once more");
	is_int(open_for(cache, "keyed", 300, 1, &e, &ce), 0,
	       "process 300 opens");
	ok(e == c && ce, "v2 through the page cache now");
	release(e, ce);
	usleep(1100 * 1000);
	is_int(open_for(cache, "keyed", 100, 1, &d, &cd), 0,
	       "process 100 after the pin");
	ok(d == c && cd, "gets v2 once its pin has expired");
	release(b, cb);
	release(c, cc);
	release(d, cd);

	/* Process 100 polls file 1: each open of it starts a new sequence. */
	set_vault(v1, 1);
	is_int(kvfs_cache_load(cache, &err), 0, "rotated back to v1");
	is_int(open_for(cache, "keyed", 100, 2, &a, &ca), 0,
	       "process 100 opens file 2");
	ok(a == d, "of its pinned v2");
	is_int(open_for(cache, "keyed", 100, 1, &b, &cb), 0,
	       "and file 1 a second time");
	ok(kvfs_files_attrs(b)->updated == 10, "which gets the current v1");
	is_int(open_for(cache, "keyed", 100, 2, &c, &cc), 0, "then file 2");
	ok(c == b, "of the new pin's v1");
	release(a, ca);
	release(b, cb);
	release(c, cc);
	kvfs_cache_set_pin_seconds(cache, KVFS_CACHE_PIN_SECONDS);
}

/* set_vault() with thumbprints. */
static void set_vault_x5t(const struct fake_cert *certs, const char *const *x5t,
			  size_t n)
{
	set_vault(certs, n);
	for (size_t i = 0; i < n; i++)
		vault_x5t[i] = x5t[i];
}

static void test_changes(struct kvfs_cache *cache)
{
	static const struct fake_cert before[] = {
		{"same", 10},	{"newer", 10},	 {"rekeyed", 10},
		{"doomed", 10}, {"nothumb", 10},
	};
	static const char *const before_x5t[] = {"AAA", "BBB", "CCC", "DDD",
						 NULL};
	static const struct fake_cert after[] = {
		{"same", 10}, {"NEWER", 11},   {"rekeyed", 10},
		{"born", 5},  {"nothumb", 10}, {"Another", 1},
	};
	static const char *const after_x5t[] = {"AAA", "BBB", "CCX",
						"EEE", "FFF", "GGG"};
	static const char *const names[] = {"same", "newer", "rekeyed",
					    "doomed", "nothumb"};
	struct kvfs_files *same = NULL, *f = NULL;
	struct kvfs_error err;
	int n;

	set_vault_x5t(before, before_x5t, ELEMENTSOF(before));
	is_int(kvfs_cache_load(cache, &err), 0, "listing before");
	flush(cache);
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES,
					names[i], &f),
		       0, "%s fetched", names[i]);
		kvfs_files_unref(f);
	}
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "same",
				&same),
	       0, "same held");

	n = calls();
	is_int(kvfs_cache_load(cache, &err), 0, "revalidated, no change");
	is_int(flush(cache), 0, "nothing waits");
	is_str(flushed, "", "and nothing was queued for the kernel");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "newer",
				&f),
	       0, "newer still there");
	kvfs_files_unref(f);
	is_int(calls() - n, 0, "without a GET");

	set_vault_x5t(after, after_x5t, ELEMENTSOF(after) - 1);
	is_int(kvfs_cache_load(cache, &err), 0, "revalidated after changes");
	is_int(flush(cache), 0, "nothing open: nothing waits");
	is_str(flushed,
	       "gone:doomed changed:newer changed:nothumb changed:rekeyed "
	       "listing",
	       "updated, x5t and a new x5t are changes; gone too; the "
	       "listing changed; same and born are not queued");
	n = calls();
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "same",
				&f),
	       0, "same");
	ok(f == same, "unchanged: the same snapshot");
	kvfs_files_unref(f);
	is_int(calls() - n, 0, "without a GET");
	for (size_t i = 1; i < ELEMENTSOF(names); i++) {
		int want = i == 3 ? -ENOENT : 0;

		is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES,
					names[i], &f),
		       want, "%s after the change", names[i]);
		if (want == 0)
			kvfs_files_unref(f);
	}
	is_int(calls() - n, 3, "the three changed ones are fetched again");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "born",
				&f),
	       0, "born appears");
	kvfs_files_unref(f);

	set_vault_x5t(after, after_x5t, ELEMENTSOF(after));
	is_int(kvfs_cache_load(cache, &err), 0, "one more certificate");
	flush(cache);
	is_str(flushed, "listing", "a new name changes only the listing");
	kvfs_files_unref(same);
}

struct loader {
	struct kvfs_cache *cache;
	bool background;
	int r;
};

static void *loader_run(void *p)
{
	struct loader *ld = p;
	struct kvfs_error err;

	kvfs_error_clear(&err);
	ld->r = ld->background ? kvfs_cache_revalidate(ld->cache, 1, &err)
			       : kvfs_cache_load(ld->cache, &err);
	return NULL;
}

static void test_one_listing_in_flight(struct kvfs_cache *cache)
{
	struct loader ld[4];
	pthread_t th[4];
	int n = list_count(), good = 0, failed = 0;

	list_delay_ms = 300;
	for (int i = 0; i < 4; i++) {
		ld[i] = (struct loader){.cache = cache, .background = i % 2};
		pthread_create(&th[i], NULL, loader_run, &ld[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		good += ld[i].r == 0;
	}
	is_int(list_count() - n, 1,
	       "4 concurrent revalidations and loads: one listing");
	is_int(good, 4, "all 4 get its result");

	list_error = -EIO;
	n = list_count();
	for (int i = 0; i < 4; i++) {
		ld[i] = (struct loader){.cache = cache, .background = i % 2};
		pthread_create(&th[i], NULL, loader_run, &ld[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		failed += ld[i].r == -EIO;
	}
	list_delay_ms = 0;
	list_error = 0;
	is_int(list_count() - n, 1, "a failing listing is shared too");
	is_int(failed, 4, "all 4 get its failure");
	ok(kvfs_cache_load(cache, &(struct kvfs_error){0}) == 0,
	   "and the next listing is a new one");
}

/* The filter of config (exclude=, which the cache borrows) shapes every
 * listing: an object it leaves out is counted, ENOENT without a request,
 * and one its verdict drops at a revalidation (as a tag changed in the
 * vault does) is reported gone like a deleted one. */
static void test_filtered(struct kvfs_cache *cache, struct kvfs_config *config)
{
	static const struct fake_cert certs[] = {{"www", 10}, {"mail", 10}};
	char *www[] = {(char *)"WWW"}, *mail[] = {(char *)"mail"};
	struct kvfs_listing *l;
	struct kvfs_files *f = NULL;
	struct kvfs_error err;
	int n;

	set_vault(certs, ELEMENTSOF(certs));
	config->exclude = (struct kvfs_config_globs){www, 1};
	is_int(kvfs_cache_load(cache, &err), 0, "listing with exclude=WWW");
	flush(cache);
	l = kvfs_cache_listing(cache, KVFS_COLLECTION_CERTIFICATES);
	ok(l->n == 1 && strcmp(l->entries[0].item.name, "mail") == 0,
	   "only mail is listed");
	is_int(l->filtered, 1, "www is counted filtered");
	kvfs_listing_unref(l);
	n = calls();
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www", &f),
	       -ENOENT, "a filtered object is ENOENT");
	is_int(kvfs_cache_versions(cache, KVFS_COLLECTION_CERTIFICATES, "www",
				   &(struct kvfs_versions *){NULL}),
	       -ENOENT, "and so are its versions");
	is_int(calls() - n, 0, "without a request");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "mail",
				&f),
	       0, "mail is served");
	kvfs_files_unref(f);

	config->exclude = (struct kvfs_config_globs){mail, 1};
	is_int(kvfs_cache_load(cache, &err), 0, "revalidated, mail left out");
	flush(cache);
	is_str(flushed, "gone:mail listing",
	       "mail reported gone, the listing changed");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "mail",
				&f),
	       -ENOENT, "mail is ENOENT now");

	config->exclude = (struct kvfs_config_globs){0};
	is_int(kvfs_cache_load(cache, &err), 0, "revalidated, no filter");
	l = kvfs_cache_listing(cache, KVFS_COLLECTION_CERTIFICATES);
	ok(l->n == 2 && l->filtered == 0, "both listed, none filtered");
	kvfs_listing_unref(l);
}

static void test_max_stale(struct kvfs_cache *cache, struct kvfs_config *config)
{
	static const struct fake_cert certs[] = {
		{"fresh", 10},
		{"later", 10},
		{"mortal", 10},
	};
	int64_t exp = (int64_t)time(NULL) + 1;
	struct kvfs_files *f0 = NULL, *f = NULL;
	struct kvfs_error err;
	int n;

	config->max_stale = 1;
	set_vault(certs, ELEMENTSOF(certs));
	vault_exp[2] = exp;
	is_int(kvfs_cache_load(cache, &err), 0, "listing");
	flush(cache);
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "fresh",
				&f0),
	       0, "fresh fetched");

	list_error = -EIO;
	ok(kvfs_cache_load(cache, &err) < 0, "the revalidation fails");
	n = calls();
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "fresh",
				&f),
	       0, "cached files are served while max_stale lasts");
	ok(f == f0, "the same snapshot");
	kvfs_files_unref(f);
	usleep(2100 * 1000);
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "fresh",
				&f),
	       -EIO, "past max_stale=1: EIO");
	is_int(kvfs_cache_files_peek(cache, KVFS_COLLECTION_CERTIFICATES,
				     "fresh", &f),
	       -ENODATA, "a peek finds nothing to show");
	is_int(kvfs_cache_files_for(cache, KVFS_COLLECTION_CERTIFICATES,
				    "fresh", 400, 1, &f),
	       -EIO, "an open: EIO");
	is_int(calls() - n, 0, "and none of that asked the vault");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "later",
				&f),
	       0, "an uncached certificate is fetched if the vault answers");
	kvfs_files_unref(f);
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "later",
				&f),
	       0, "and is fresh: it was fetched just now");
	kvfs_files_unref(f);

	list_error = 0;
	n = calls();
	is_int(kvfs_cache_load(cache, &err), 0, "the vault is back");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "fresh",
				&f),
	       0, "cached files are served again");
	ok(f == f0, "the same snapshot, confirmed by the listing");
	is_int(calls() - n, 0, "without a GET");
	kvfs_files_unref(f);

	/* exp: never served stale past it, whatever max_stale says */
	config->max_stale = 3600;
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "mortal",
				&f),
	       0, "mortal fetched");
	kvfs_files_unref(f);
	list_error = -EIO;
	ok(kvfs_cache_load(cache, &err) < 0, "the revalidation fails");
	while (time(NULL) < exp)
		usleep(100 * 1000);
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "mortal",
				&f),
	       -EIO, "stale and past its exp: EIO");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "fresh",
				&f),
	       0, "another one within max_stale is still served");
	kvfs_files_unref(f);
	list_error = 0;
	is_int(kvfs_cache_load(cache, &err), 0, "the vault is back");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "mortal",
				&f),
	       0,
	       "past exp but fresh: served (fs closes it, or allow_expired)");
	kvfs_files_unref(f);
	kvfs_files_unref(f0);
	config->max_stale = 86400;
}

/* A collection the vault refuses to this identity: before the mount, the
 * load fails there; at a revalidation, it keeps its listing and says why,
 * while the other collections are listed and swapped in; a listing that
 * works again clears its error.  Any other failure ends the listing. */
static void test_refused_collection(struct kvfs_cache *cache,
				    struct kvfs_config *config)
{
	static const struct fake_cert certs[] = {
		{"www", 10},
		{"added", 10},
	};
	struct kvfs_cache_collection st;
	struct kvfs_listing *s0, *l;
	struct kvfs_cache *fresh = NULL;
	struct kvfs_error err;
	int nk;

	/* the first listing: refused secrets refuse the mount */
	list_error_of[KVFS_COLLECTION_SECRETS] = -EACCES;
	is_int(kvfs_cache_new(config, NULL, &fresh), 0, "another cache");
	nk = list_count_of(KVFS_COLLECTION_KEYS);
	kvfs_error_clear(&err);
	is_int(kvfs_cache_load(fresh, &err), -EACCES,
	       "a refused collection fails the first listing");
	is_str(err.inner, "ForbiddenByRbac", "with the vault's code");
	is_int(list_count_of(KVFS_COLLECTION_KEYS) - nk, 0,
	       "and ends it: the mount is refused anyway");
	is_int(kvfs_cache_collection_state(fresh, KVFS_COLLECTION_SECRETS, &st),
	       0, "the state of the secrets");
	ok(st.failing && st.err.http_status == 403 && st.err_at > 0,
	   "says which collection failed, how and when");
	kvfs_listing_unref(st.listing);
	kvfs_cache_free(fresh);

	/* revalidations */
	list_error_of[KVFS_COLLECTION_SECRETS] = 0;
	set_vault(certs, 1);
	vault_secrets[0] = (struct fake_cert){"db-password", 10};
	vault_secrets_n = 1;
	is_int(kvfs_cache_load(cache, &err), 0, "listing");
	flush(cache);
	s0 = kvfs_cache_listing(cache, KVFS_COLLECTION_SECRETS);
	is_int(s0 ? s0->n : 0, 1, "one secret listed");

	list_error_of[KVFS_COLLECTION_SECRETS] = -EACCES;
	vault_secrets_n = 0; /* what a listing would show */
	set_vault(certs, 2);
	nk = list_count_of(KVFS_COLLECTION_KEYS);
	kvfs_error_clear(&err);
	is_int(kvfs_cache_load(cache, &err), -EACCES,
	       "a refused collection fails the revalidation");
	is_int(err.http_status, 403, "with the vault's error");
	l = kvfs_cache_listing(cache, KVFS_COLLECTION_SECRETS);
	ok(l == s0, "the refused collection keeps its listing");
	kvfs_listing_unref(l);
	l = kvfs_cache_listing(cache, KVFS_COLLECTION_CERTIFICATES);
	is_int(l ? l->n : 0, 2, "the certificates are swapped in all the same");
	kvfs_listing_unref(l);
	is_int(list_count_of(KVFS_COLLECTION_KEYS) - nk, 1,
	       "and the keys after the refused one are listed");
	is_int(flush(cache), 0, "the changes flushed");
	ok(strstr(flushed, "listing") != NULL,
	   "the certificates' change is reported: %s", flushed);
	kvfs_cache_collection_state(cache, KVFS_COLLECTION_SECRETS, &st);
	ok(st.failing && strcmp(st.err.inner, "ForbiddenByRbac") == 0 &&
		   st.err_at > 0,
	   "the secrets say why");
	kvfs_listing_unref(st.listing);
	kvfs_cache_collection_state(cache, KVFS_COLLECTION_CERTIFICATES, &st);
	ok(!st.failing && st.err.http_status == 0 && st.err_at == 0,
	   "the certificates are clean");
	kvfs_listing_unref(st.listing);

	/* the vault failing: the listing ends there */
	list_error_of[KVFS_COLLECTION_SECRETS] = -EIO;
	nk = list_count_of(KVFS_COLLECTION_KEYS);
	ok(kvfs_cache_load(cache, &err) < 0, "a 503 fails the revalidation");
	is_int(list_count_of(KVFS_COLLECTION_KEYS) - nk, 0,
	       "and ends it at the collection that failed");
	kvfs_cache_collection_state(cache, KVFS_COLLECTION_KEYS, &st);
	ok(st.failing && st.err.http_status == 503,
	   "the collections not listed fail alike");
	kvfs_listing_unref(st.listing);

	/* the permission is back */
	list_error_of[KVFS_COLLECTION_SECRETS] = 0;
	vault_secrets_n = 1;
	is_int(kvfs_cache_load(cache, &err), 0, "the secrets are listed again");
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		kvfs_cache_collection_state(cache, (enum kvfs_collection)i,
					    &st);
		ok(!st.failing && st.err_at == 0 && st.err.inner[0] == '\0',
		   "%s: error cleared",
		   kvfs_collection_info((enum kvfs_collection)i)->name);
		kvfs_listing_unref(st.listing);
	}
	flush(cache);
	kvfs_listing_unref(s0);
	vault_secrets_n = 0;
	is_int(kvfs_cache_load(cache, &err), 0, "no secret any more");
	flush(cache);
}

int main(void)
{
	struct kvfs_config config = {
		.deadline = 1,
		.refresh = 300,
		.max_stale = 86400,
		.collections = (1u << KVFS_COLLECTION_COUNT_) - 1};
	struct kvfs_cache *cache = NULL;

	if (!ok(load_leaf(), "fixture pki-leaf.der"))
		return done_testing();
	is_int(kvfs_cache_new(&config, NULL, &cache), 0, "cache created");
	is_int(kvfs_kernel_new(&kernel), 0, "kernel module created");
	kvfs_cache_on_change(cache, kvfs_kernel_change, kernel);
	test_listing(cache);
	test_fetch_once(cache);
	test_other_collection(cache);
	test_single_flight(cache);
	test_failures(cache);
	test_deadline(cache);
	test_revalidate(cache);
	test_secret(cache);
	test_pins(cache);
	test_changes(cache);
	test_one_listing_in_flight(cache);
	test_max_stale(cache, &config);
	test_versions_revalidate(cache);
	test_refused_collection(cache, &config);
	test_filtered(cache, &config);
	kvfs_kernel_free(kernel);
	kvfs_cache_free(cache);
	free_leaf();
	return done_testing();
}
