/* Unit tests of kernel.c, fed by a cache over a scripted vault as in the
 * daemon: a change is told at once, kept while an open of the old files
 * through the page cache lasts, told again once they all close, then
 * forgotten; opens while a change is kept are not cacheable, nor are
 * opens of files that are no longer current; the kernel's sizes come from
 * the old files while they are open; the cache makes the old files not
 * current before it reports the change.  The vault is scripted_vault.c,
 * swapped in at link time (-Wl,--wrap), so no network is involved. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "kernel.h"
#include "scripted_vault.h"
#include "tap.h"
#include "util.h"

static struct kvfs_kernel *kernel;

/* Whether old was still current when a change of it was reported. */
static int reported_current;
/* Changes the cache reported, and those of them not of the certificates;
 * the collection of the last change told. */
static int reported, not_certificates;
static enum kvfs_collection last_told_coll = KVFS_COLLECTION_COUNT_;

static int report(void *data, const struct kvfs_change *c,
		  struct kvfs_files *old)
{
	reported++;
	if (c->coll != KVFS_COLLECTION_CERTIFICATES)
		not_certificates++;
	if (old && kvfs_files_current(old))
		reported_current++;
	return kvfs_kernel_change(data, c, old);
}

/* What the last told() handed over: "kind name/version ..." per change,
 * separated by "; ". */
static char told_text[512];

/* Whether the last change tell() was given had been handed over before. */
static bool told_again;

static void tell(void *data, const struct kvfs_change *c, bool again)
{
	size_t n = strlen(told_text);

	told_again = again;
	last_told_coll = c->coll;
	snprintf(told_text + n, sizeof(told_text) - n, "%s%d %s", n ? "; " : "",
		 (int)c->kind, c->name ? c->name : "-");
	for (size_t i = 0; i < c->nversions; i++) {
		n = strlen(told_text);
		snprintf(told_text + n, sizeof(told_text) - n, "/%s",
			 c->versions[i]);
	}
}

/* Flush; the changes still kept. */
static size_t told(void)
{
	told_text[0] = '\0';
	return kvfs_kernel_flush(kernel, tell, NULL);
}

static struct kvfs_cache *cache;

/* The vault's one certificate, www, is now of version updated. */
static int rotate_to(int64_t updated)
{
	struct fake_cert www[] = {{"www", updated}};
	struct kvfs_error err;

	set_vault(www, 1);
	kvfs_error_clear(&err);
	return kvfs_cache_load(cache, &err);
}

/* What fs.c does to read the attributes the kernel keeps. */
static struct kvfs_files *sizes_from(void)
{
	struct kvfs_files *f = NULL;

	if (!kvfs_kernel_files_held(kernel, KVFS_COLLECTION_CERTIFICATES, "www",
				    &f) &&
	    kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www", &f) <
		    0)
		return NULL;
	kvfs_files_unref(f); /* the cache or the test still holds one */
	return f;
}

static void test_rotation(void)
{
	struct kvfs_files *v1 = NULL, *v2 = NULL, *held = NULL;
	struct kvfs_files_span pem;
	bool a, b;

	is_int(rotate_to(1), 0, "listing of www v1");
	is_int(told(), 0, "nothing kept");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www",
				&v1),
	       0, "v1");
	ok(kvfs_files_current(v1), "v1 is current");
	a = kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "www", v1);
	b = kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "WWW", v1);
	ok(a && b, "two opens of v1 through the page cache");

	is_int(rotate_to(2), 0, "rotated to v2");
	is_int(reported_current, 0, "v1 stopped being current first");
	ok(!kvfs_files_current(v1), "v1 is not current");
	is_int(told(), 1, "the change is kept while v1 is open");
	is_str(told_text, "1 www; 0 -", "and told at once, with the listing");
	ok(!told_again, "the first time");
	is_int(told(), 1, "still kept");
	is_str(told_text, "", "and not told again");
	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www",
				&v2),
	       0, "v2");
	ok(v2 != v1 && kvfs_files_current(v2), "v2 is current");
	ok(!kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "www", v2),
	   "an open of v2 while the change is kept: not cacheable");
	ok(!kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "www", v1),
	   "an open of v1, no longer current: not cacheable");
	ok(sizes_from() == v1, "the kernel's sizes are v1's");

	kvfs_kernel_close(kernel, v1);
	is_int(told(), 1, "one open of v1 left: kept");
	is_str(told_text, "", "not told");
	ok(sizes_from() == v1, "the sizes still v1's");
	kvfs_kernel_close(kernel, v1);
	is_int(told(), 0, "both closed: the change goes");
	is_str(told_text, "1 www", "told once more");
	ok(told_again, "again");
	is_int(told(), 0, "and it is forgotten");
	is_str(told_text, "", "not told a third time");
	ok(!kvfs_kernel_files_held(kernel, KVFS_COLLECTION_CERTIFICATES, "www",
				   &held),
	   "no old files held");
	ok(sizes_from() == v2, "the sizes are v2's");
	ok(kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "www", v2),
	   "an open of v2 is cacheable now");

	/* A change whose old files have no open is told once, then gone. */
	is_int(rotate_to(3), 0, "rotated to v3");
	kvfs_kernel_close(kernel, v2);
	is_int(told(), 0, "v2 closed before the flush: nothing kept");
	is_str(told_text, "1 www; 0 -", "told once");
	ok(kvfs_files_bytes(v1, KVFS_FILE_CERT_PEM, &pem) == 0 &&
		   kvfs_files_bytes(v2, KVFS_FILE_CERT_PEM, &pem) == 0,
	   "files held keep their bytes");
	kvfs_files_unref(v1);
	kvfs_files_unref(v2);
}

/* No row of the table: the key of an object of another collection. */
#define OTHER ((enum kvfs_collection)KVFS_COLLECTION_COUNT_)

/* A change carries its collection from the cache to the kernel, and the
 * kernel keeps changes by (collection, name): a change of www of another
 * collection says nothing of the certificate www. */
static void test_collections(void)
{
	const struct kvfs_change c = {
		.coll = OTHER,
		.kind = KVFS_CHANGE_CHANGED,
		.name = "www",
	};
	struct kvfs_files *f = NULL, *held = NULL;

	ok(reported > 0 && not_certificates == 0,
	   "every change the cache reported is of the certificates");
	is_int((int)last_told_coll, KVFS_COLLECTION_CERTIFICATES,
	       "and the kernel told it with its collection");

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www", &f),
	       0, "the current files of the certificate www");
	is_int(kvfs_kernel_change(kernel, &c, f), 0,
	       "a change of www of another collection is kept");
	ok(!kvfs_kernel_files_held(kernel, KVFS_COLLECTION_CERTIFICATES, "www",
				   &held),
	   "no old files held for the certificate www");
	ok(kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "www", f),
	   "an open of the certificate www stays cacheable");
	ok(!kvfs_kernel_open(kernel, OTHER, "www", f),
	   "an open of www of the other collection is not");
	ok(kvfs_kernel_files_held(kernel, OTHER, "www", &held) && held == f,
	   "whose sizes are those of the files kept with the change");
	kvfs_files_unref(held);
	kvfs_kernel_close(kernel, f);
	is_int(told(), 0, "closed: told and forgotten");
	is_str(told_text, "1 www", "told once");
	is_int((int)last_told_coll, (int)OTHER, "with the collection it is of");
	kvfs_files_unref(f);
}

/* A change reported without old files (versions of a certificate). */
static void test_versions_change(void)
{
	static const char *const vers[] = {"v1", "v2"};
	const struct kvfs_change c = {
		.kind = KVFS_CHANGE_VERSIONS,
		.name = "www",
		.versions = vers,
		.nversions = ELEMENTSOF(vers),
	};
	struct kvfs_files *f = NULL;

	is_int(kvfs_cache_files(cache, KVFS_COLLECTION_CERTIFICATES, "www", &f),
	       0, "the current files");
	is_int(kvfs_kernel_change(kernel, &c, NULL), 0, "versions changed");
	ok(!kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "Www", f),
	   "not cacheable until the kernel is told");
	is_int(told(), 0, "nothing open from before: not kept");
	is_str(told_text, "3 www/v1/v2", "told with its versions");
	ok(kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES, "www", f),
	   "cacheable again");
	kvfs_kernel_close(kernel, f);
	kvfs_files_unref(f);

	/* Kept at free: its copy and references go with the module. */
	is_int(kvfs_kernel_change(kernel, &c, NULL), 0, "one more");
}

int main(void)
{
	struct kvfs_config config = {
		.deadline = 1,
		.refresh = 300,
		.max_stale = 86400,
		.collections = (1u << KVFS_COLLECTION_COUNT_) - 1};

	if (!ok(load_leaf(), "fixture pki-leaf.der"))
		return done_testing();
	is_int(kvfs_cache_new(&config, NULL, &cache), 0, "cache created");
	is_int(kvfs_kernel_new(&kernel), 0, "kernel module created");
	kvfs_cache_on_change(cache, report, kernel);
	test_rotation();
	test_collections();
	test_versions_change();
	kvfs_kernel_free(kernel);
	kvfs_cache_free(cache);
	free_leaf();
	return done_testing();
}
