/* The tree without a mount: paths as FUSE gives them, hostile ones
 * included, resolved against a hand-made listing and versions listing;
 * the modes of DESIGN §2 (0000 while disabled, not yet valid or expired,
 * key_mode= for the key files, 0444 for the others); the stat of every
 * kind of node; statfs; the xattrs, the getxattr(2) way; and expiring/,
 * the links to the certificates within expiring_days= of now. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tree.h"
#include "util.h"

/* The files m makes; the tests cannot go on without them. */
static struct kvfs_files *made(const struct kvfs_files_made *m)
{
	struct kvfs_files *f = NULL;

	if (kvfs_files_new_made(m, &f) < 0)
		abort();
	return f;
}

#define NOW 1000
#define MOUNTED 900

static struct kvfs_config config = {
	.uid = 1234,
	.gid = 5678,
	.key_mode = 0400,
	.expiring_days = 30,
	.vault_url = "https://v.vault.azure.net",
};

static struct kvfs_tree tree = {
	.config = &config,
	.mount_time = MOUNTED,
	.control = true,
};

/* 127 characters: the longest name Key Vault allows. */
#define LONG_NAME                                                              \
	"a123456789b123456789c123456789d123456789e123456789f123456789"         \
	"g123456789h123456789i123456789j123456789k123456789l123456789"         \
	"m123456"

/* Sorted without case, as the cache sorts them. */
static struct kvfs_entry entries[] = {
	{.item = {.name = LONG_NAME,
		  .attrs = {.enabled = true, .created = 10, .updated = 20}}},
	{.item = {.name = "Mail",
		  .attrs = {.enabled = true, .created = 30, .updated = 40}}},
	{.item = {.name = "www",
		  .attrs = {.enabled = true,
			    .nbf = 500,
			    .exp = 2000,
			    .created = 50,
			    .updated = 60}}},
};

static struct kvfs_listing listing = {
	.entries = entries,
	.n = 3,
	.updated_max = 60,
};

/* The files of a certificate directory: the first rows of the enum. */
#define CERT_FILES (KVFS_FILE_PFX + 1)

static struct kvfs_entry key_entries[] = {
	{.item = {.name = "rsa-key",
		  .attrs = {.enabled = true, .created = 110, .updated = 120}}},
};

static struct kvfs_listing key_listing = {
	.entries = key_entries,
	.n = 1,
	.updated_max = 120,
};

static struct kvfs_entry secret_entries[] = {
	{.item = {.name = "db-password",
		  .attrs = {.enabled = true, .created = 130, .updated = 140}}},
	{.item = {.name = "off",
		  .attrs = {.enabled = false, .created = 150, .updated = 160}}},
};

static struct kvfs_listing secret_listing = {
	.entries = secret_entries,
	.n = 2,
	.updated_max = 160,
};

/* The listings of the collections, as the tree takes them: the
 * certificates' is listing. */
static const struct kvfs_listing *const lists[KVFS_COLLECTION_COUNT_] = {
	[KVFS_COLLECTION_CERTIFICATES] = &listing,
	[KVFS_COLLECTION_SECRETS] = &secret_listing,
	[KVFS_COLLECTION_KEYS] = &key_listing,
};

static struct kvfs_object_item version_items[] = {
	{.name = "www",
	 .version = "0123abcd",
	 .attrs = {.enabled = true, .created = 70, .updated = 80}},
	{.name = "www",
	 .version = "4567ef01",
	 .attrs = {.enabled = false, .created = 90, .updated = 95}},
};

static struct kvfs_versions versions = {
	.list = {.items = version_items, .n = 2},
};

static int resolve(const char *path, const struct kvfs_versions *vs,
		   struct kvfs_tree_node *n)
{
	memset(n, 0xa5, sizeof(*n));
	return kvfs_tree_resolve(&tree, path, lists, vs, NOW, n);
}

static void test_resolve_top(void)
{
	struct kvfs_tree_node n;

	is_int(resolve("/", NULL, &n), 0, "/ resolves");
	is_int(n.kind, KVFS_NODE_ROOT, "to the root");
	is_int(resolve("/certificates", NULL, &n), 0, "/certificates");
	is_int(n.kind, KVFS_NODE_COLLECTION, "is certificates/");
	is_int(resolve("/.kvfs", NULL, &n), 0, "/.kvfs");
	is_int(n.kind, KVFS_NODE_CONTROL, "is .kvfs/");
	is_int(resolve("/.kvfs/status", NULL, &n), 0, "/.kvfs/status");
	is_int(n.kind, KVFS_NODE_CONTROL_FILE, "is a control file");
	is_int(n.control, KVFS_CONTROL_STATUS, "status");
	is_int(resolve("/.kvfs/metrics", NULL, &n), 0, "/.kvfs/metrics");
	is_int(n.control, KVFS_CONTROL_METRICS, "metrics");
	/* What FUSE never sends, kept as it was: the directory. */
	is_int(resolve("/.kvfs/", NULL, &n), 0, "/.kvfs/ with a slash");
	is_int(n.kind, KVFS_NODE_CONTROL, "is .kvfs/ too");

	static const char *const none[] = {
		"",
		"certificates",
		"//",
		"//certificates",
		"/certificates/",
		"/Certificates",
		"/certificatesx",
		"/certificate",
		"/..",
		"/.",
		"/.kvfs/nope",
		"/.kvfs/status/x",
		"/.kvfs/STATUS",
		"/.kvfs/status/",
		"/.kvfsx",
		"/.KVFS",
		"/cert.pem",
	};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		is_int(resolve(none[i], NULL, &n), -ENOENT, "'%s' is nothing",
		       none[i]);
	is_int(kvfs_tree_resolve(&tree, NULL, lists, NULL, NOW, &n), -ENOENT,
	       "no path is nothing");

	tree.control = false;
	is_int(resolve("/.kvfs", NULL, &n), -ENOENT, "no .kvfs/ without one");
	is_int(resolve("/.kvfs/status", NULL, &n), -ENOENT, "nor its status");
	tree.control = true;
}

/* The top level is the collection table: each row resolves to its
 * collection's directory, spelled exactly as the row, and nothing else
 * does; the root links the rows and .kvfs/. */
static void test_collections(void)
{
	struct kvfs_tree_node n;
	struct stat st;
	char path[64];
	size_t rows = 0;

	for (size_t i = 0; kvfs_collection_info((enum kvfs_collection)i); i++)
		rows++;
	is_int(rows, KVFS_COLLECTION_COUNT_, "the table has its %d rows",
	       KVFS_COLLECTION_COUNT_);
	is_str(kvfs_collection_info(KVFS_COLLECTION_CERTIFICATES)->name,
	       "certificates", "the first row is certificates");

	for (size_t i = 0; i < rows; i++) {
		enum kvfs_collection c = (enum kvfs_collection)i;
		const struct kvfs_collection_info *row =
			kvfs_collection_info(c);
		char upper[64], shorter[64], longer[64], noun[64];
		const char *bad[] = {upper, shorter, longer, noun};

		snprintf(path, sizeof(path), "/%s", row->name);
		is_int(resolve(path, NULL, &n), 0, "%s resolves", path);
		is_int(n.kind, KVFS_NODE_COLLECTION, "%s is a collection",
		       path);
		is_int(n.coll, c, "%s is its row", path);

		/* Another case, a prefix, a longer name, the noun: nothing. */
		snprintf(upper, sizeof(upper), "/%c%s", toupper(row->name[0]),
			 row->name + 1);
		snprintf(shorter, sizeof(shorter), "/%.*s",
			 (int)strlen(row->name) - 1, row->name);
		snprintf(longer, sizeof(longer), "/%ss", row->name);
		snprintf(noun, sizeof(noun), "/%s", row->noun);
		for (size_t j = 0; j < ELEMENTSOF(bad); j++)
			is_int(resolve(bad[j], NULL, &n), -ENOENT,
			       "'%s' is nothing", bad[j]);
	}
	is_int(resolve("/Certificates", NULL, &n), -ENOENT,
	       "/Certificates is nothing");
	is_int(resolve("/certificate", NULL, &n), -ENOENT,
	       "/certificate is nothing");

	n = (struct kvfs_tree_node){.kind = KVFS_NODE_ROOT};
	kvfs_tree_stat_dir(&tree, &n, lists, &st);
	is_int(st.st_nlink, 2 + rows + 1 + 1,
	       "/ links the %zu rows, expiring/ and .kvfs/", rows);

	/* Every node below a collection carries it. */
	static const char *const below[] = {
		"/certificates/www",
		"/certificates/www/cert.pem",
		"/certificates/www/versions",
		"/certificates/www/versions/0123abcd",
		"/certificates/www/versions/0123abcd/cert.pfx",
	};
	for (size_t i = 0; i < ELEMENTSOF(below); i++) {
		is_int(resolve(below[i], &versions, &n), 0, "%s", below[i]);
		is_int(n.coll, KVFS_COLLECTION_CERTIFICATES,
		       "%s is of certificates", below[i]);
		ok(kvfs_tree_spelled_as_in_vault(below[i], &n),
		   "%s is spelled as in the vault", below[i]);
	}
}

/* An object directory holds its collection's files, and only those. */
static void test_object_files(void)
{
	enum kvfs_collection none = KVFS_COLLECTION_COUNT_;
	struct kvfs_files *files =
		made(&(struct kvfs_files_made){.header = {.exportable = true}});
	struct kvfs_object_attrs open = {.enabled = true};
	struct kvfs_entry e = {.item = {.name = "www", .attrs = open}};
	struct kvfs_tree_node n = {.kind = KVFS_NODE_FILE, .entry = &e};
	struct kvfs_tree_view v;

	for (int k = 0; k < CERT_FILES; k++) {
		enum kvfs_file_kind f = (enum kvfs_file_kind)k;

		ok(kvfs_tree_object_has_file(KVFS_COLLECTION_CERTIFICATES, f),
		   "a certificate has %s", kvfs_tree_file_name(f));
		ok(!kvfs_tree_object_has_file(none, f),
		   "no collection has %s but its own", kvfs_tree_file_name(f));
		n.coll = none;
		n.file = f;
		is_int(kvfs_tree_view(&tree, &n, f, NOW, files, 0, NULL, &v),
		       -ENOENT, "%s is no file of another collection",
		       kvfs_tree_file_name(f));
	}
	ok(!kvfs_tree_object_has_file(KVFS_COLLECTION_CERTIFICATES,
				      KVFS_FILE_COUNT_),
	   "nor a file that is none");
	ok(!kvfs_tree_holds_key(KVFS_FILE_COUNT_), "which holds no key");
	kvfs_files_unref(files);
}

static void test_resolve_certificates(void)
{
	struct kvfs_tree_node n;

	is_int(resolve("/certificates/www", NULL, &n), 0, "www");
	is_int(n.kind, KVFS_NODE_OBJECT, "is a certificate directory");
	ok(n.entry == &entries[2], "of the listing's www");
	ok(n.version == NULL, "the latest version");
	is_int(resolve("/certificates/WWW", NULL, &n), 0, "WWW: no case");
	ok(n.entry == &entries[2], "finds www");
	ok(!kvfs_tree_spelled_as_in_vault("/certificates/WWW", &n),
	   "not as the vault spells it");
	ok(kvfs_tree_spelled_as_in_vault("/certificates/www/cert.pem", &n),
	   "www/cert.pem is");
	ok(!kvfs_tree_spelled_as_in_vault("/certificates/wwwx", &n),
	   "wwwx is not");
	is_int(resolve("/certificates/mail", NULL, &n), 0, "mail");
	ok(n.entry == &entries[1], "finds Mail");

	is_int(resolve("/certificates/www/fullchain.pem", NULL, &n), 0,
	       "www/fullchain.pem");
	is_int(n.kind, KVFS_NODE_FILE, "is a file");
	is_int(n.file, KVFS_FILE_FULLCHAIN, "fullchain.pem");
	ok(n.entry == &entries[2] && n.version == NULL, "of www's latest");
	for (int k = 0; k < CERT_FILES; k++) {
		char path[64];

		snprintf(path, sizeof(path), "/certificates/Www/%s",
			 kvfs_tree_file_name((enum kvfs_file_kind)k));
		is_int(resolve(path, NULL, &n), 0, "%s", path);
		is_int(n.file, k, "is file %d", k);
	}
	ok(kvfs_tree_file_name(KVFS_FILE_COUNT_) == NULL, "no eighth file");

	is_int(resolve("/certificates/" LONG_NAME, NULL, &n), 0,
	       "a name of 127 characters");
	ok(n.entry == &entries[0], "finds it");
	is_int(resolve("/certificates/" LONG_NAME "/cert.pem", NULL, &n), 0,
	       "and its cert.pem");

	static const char *const none[] = {
		"/certificates/nope",
		"/certificates/..",
		"/certificates/.",
		"/certificates/www/",
		"/certificates//www",
		"/certificates/www/..",
		"/certificates/www/.",
		"/certificates/../certificates",
		"/certificates/ww",
		"/certificates/wwww",
		"/certificates/www.",
		"/certificates/w_w",
		"/certificates/www/FULLCHAIN.PEM",
		"/certificates/www/fullchain.pem/",
		"/certificates/www/fullchain.pem/x",
		"/certificates/www/cert",
		"/certificates/www/nope",
		"/certificates/www/VERSIONS",
		"/certificates/www/versionsx",
		"/certificates/www/versions/",
		"/certificates/www/versions/..",
		"/certificates/www/versions/a.b",
		"/certificates/" LONG_NAME "x",
		"/certificates/" LONG_NAME "/" LONG_NAME "x",
	};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		is_int(resolve(none[i], NULL, &n), -ENOENT, "'%s' is nothing",
		       none[i]);
	is_int(kvfs_tree_resolve(&tree, "/certificates/www", NULL, NULL, NOW,
				 &n),
	       -ENOENT, "no certificate without a listing");
}

/* A collection the mount does not show (its listing NULL) is not in the
 * tree: not resolved, not linked from /, not counted by statfs. */
static void test_collection_not_mounted(void)
{
	const struct kvfs_listing *const none[KVFS_COLLECTION_COUNT_] = {NULL};
	struct kvfs_tree_node n;
	struct statvfs sv;
	struct stat st;

	is_int(kvfs_tree_resolve(&tree, "/certificates", none, NULL, NOW, &n),
	       -ENOENT, "certificates/ is nothing when not mounted");
	is_int(kvfs_tree_resolve(&tree, "/certificates/www", none, NULL, NOW,
				 &n),
	       -ENOENT, "nor is www under it");
	is_int(kvfs_tree_resolve(&tree, "/", none, NULL, NOW, &n), 0,
	       "/ is there");
	kvfs_tree_stat_dir(&tree, &n, none, &st);
	is_int(st.st_nlink, 2 + 1, "/ links .kvfs/ only");
	is_int(kvfs_tree_resolve(&tree, "/expiring", none, NULL, NOW, &n),
	       -ENOENT, "no expiring/ without the certificates");
	kvfs_tree_statfs(none, &sv);
	is_int(sv.f_files, 2, "statfs: no objects");
}

static void test_resolve_versions(void)
{
	struct kvfs_tree_node n;

	is_int(resolve("/certificates/www/versions", NULL, &n), 0,
	       "www/versions");
	is_int(n.kind, KVFS_NODE_VERSIONS, "is versions/");
	ok(n.entry == &entries[2], "of www");

	is_int(resolve("/certificates/www/versions/0123abcd", NULL, &n),
	       KVFS_TREE_NEEDS_VERSIONS, "a version needs the versions");
	is_int(n.kind, KVFS_NODE_VERSIONS, "of versions/");
	ok(n.entry == &entries[2], "of www");
	is_int(resolve("/certificates/www/versions/0123abcd", &versions, &n), 0,
	       "which has 0123abcd");
	is_int(n.kind, KVFS_NODE_VERSION, "a version directory");
	ok(n.version == &version_items[0], "that version");
	is_int(resolve("/certificates/WWW/versions/0123ABCD", &versions, &n), 0,
	       "in any case");
	ok(n.version == &version_items[0], "the same version");

	is_int(resolve("/certificates/www/versions/4567ef01/privkey.pem",
		       &versions, &n),
	       0, "a version's privkey.pem");
	is_int(n.kind, KVFS_NODE_FILE, "a file");
	is_int(n.file, KVFS_FILE_PRIVKEY, "privkey.pem");
	ok(n.version == &version_items[1], "of that version");

	/* The versions listing is fetched before the rest is looked at, as
	 * a lookup of the version directory would have fetched it. */
	is_int(resolve("/certificates/www/versions/0123abcd/nope", NULL, &n),
	       KVFS_TREE_NEEDS_VERSIONS, "a file of a version needs them too");
	static const char *const none[] = {
		"/certificates/www/versions/nope",
		"/certificates/www/versions/0123abcd/nope",
		"/certificates/www/versions/0123abcd/",
		"/certificates/www/versions/0123abcd/cert.pem/",
		"/certificates/www/versions/0123abcd/cert.pem/x",
		"/certificates/www/versions/0123abcd/versions",
		"/certificates/www/versions/0123abcd/..",
	};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		is_int(resolve(none[i], &versions, &n), -ENOENT,
		       "'%s' is nothing", none[i]);
}

static struct kvfs_tree_node file_of(const struct kvfs_entry *e,
				     const struct kvfs_object_item *version,
				     enum kvfs_file_kind k)
{
	return (struct kvfs_tree_node){.kind = KVFS_NODE_FILE,
				       .entry = e,
				       .version = version,
				       .file = k};
}

static struct kvfs_pki_secret_files secret = {
	.has_key = true,
	.chain = "CHAIN",
	.chain_len = 5,
	.fullchain = "FULLCHAIN",
	.fullchain_len = 9,
	.privkey = "PRIVKEY!",
	.privkey_len = 8,
	.bundle = "BUNDLE",
	.bundle_len = 6,
	.pfx = (unsigned char *)"PFX",
	.pfx_len = 3,
};

static const struct kvfs_files_made www = {
	.header = {.id = "https://v.vault.azure.net/certificates/www/0123abcd",
		   .version = "0123abcd",
		   .exportable = true,
		   .attrs = {.enabled = true,
			     .nbf = 500,
			     .exp = 2000,
			     .created = 50,
			     .updated = 60}},
	.bytes = {[KVFS_FILE_CERT_PEM] = {.data = "CERT PEM", .len = 8},
		  [KVFS_FILE_CERT_DER] = {.data = "DER", .len = 3}},
	.meta = {[KVFS_META_SUBJECT] = "CN=www",
		 [KVFS_META_SHA256] = "ab12",
		 [KVFS_META_X5T] = "x5t-value"},
};
/* www's files (main() makes them). */
static struct kvfs_files *files;

/* The view of file k of www (attrs a) with the secret as given. */
static int view(const struct kvfs_object_attrs *a, enum kvfs_file_kind k,
		const struct kvfs_files *f, int secret_r,
		struct kvfs_tree_view *v)
{
	struct kvfs_entry e = {.item = {.name = "www", .attrs = *a}};
	struct kvfs_tree_node n = file_of(&e, NULL, k);

	return kvfs_tree_view(&tree, &n, k, NOW, f, secret_r,
			      secret_r == 0 ? &secret : NULL, v);
}

/* The mode of file k of www (attrs a) with its secret readable; -1 when
 * the view fails. */
static int mode_of(const struct kvfs_object_attrs *a, enum kvfs_file_kind k)
{
	struct kvfs_tree_view v;

	return view(a, k, files, 0, &v) == 0 ? (int)v.mode : -1;
}

static void test_modes(void)
{
	const struct kvfs_object_attrs open = {
		.enabled = true, .nbf = 500, .exp = 2000};
	const struct kvfs_object_attrs disabled = {
		.enabled = false, .nbf = 500, .exp = 2000};
	const struct kvfs_object_attrs early = {
		.enabled = true, .nbf = NOW + 1, .exp = 2000};
	const struct kvfs_object_attrs expired = {
		.enabled = true, .nbf = 500, .exp = NOW};
	const struct kvfs_object_attrs last_second = {
		.enabled = true, .nbf = NOW, .exp = NOW + 1};
	const struct kvfs_object_attrs no_dates = {.enabled = true};
	struct kvfs_tree_view v;

	/* The files of an open certificate. */
	is_int(view(&open, KVFS_FILE_CERT_PEM, files, -ENODATA, &v), 0,
	       "cert.pem needs no secret");
	is_int(v.mode, 0444, "cert.pem is 0444");
	ok(v.bytes.len == 8 && memcmp(v.bytes.data, "CERT PEM", 8) == 0,
	   "with its bytes");
	is_int(view(&open, KVFS_FILE_CERT_DER, files, -ENODATA, &v), 0,
	       "cert.der");
	is_int(v.mode, 0444, "cert.der is 0444");
	ok(v.bytes.len == 3 && memcmp(v.bytes.data, "DER", 3) == 0, "the DER");
	is_int(view(&open, KVFS_FILE_CHAIN, files, 0, &v), 0, "chain.pem");
	is_int(v.mode, 0444, "chain.pem is 0444");
	ok(v.bytes.data == secret.chain && v.bytes.len == 5, "from the secret");
	is_int(view(&open, KVFS_FILE_FULLCHAIN, files, 0, &v), 0,
	       "fullchain.pem");
	is_int(v.mode, 0444, "fullchain.pem is 0444");
	is_int((long long)v.bytes.len, 9, "its length");
	is_int(view(&open, KVFS_FILE_PRIVKEY, files, 0, &v), 0, "privkey.pem");
	is_int(v.mode, 0400, "privkey.pem is key_mode 0400");
	ok(v.bytes.data == secret.privkey && v.bytes.len == 8, "the key");
	ok(!v.forbidden, "not forbidden");
	is_int(view(&open, KVFS_FILE_BUNDLE, files, 0, &v), 0, "bundle.pem");
	is_int(v.mode, 0400, "bundle.pem is 0400");
	is_int(view(&open, KVFS_FILE_PFX, files, 0, &v), 0, "cert.pfx");
	is_int(v.mode, 0400, "cert.pfx is 0400");
	ok(v.bytes.data == secret.pfx && v.bytes.len == 3, "the PKCS#12");
	config.key_mode = 0440;
	is_int(mode_of(&open, KVFS_FILE_PRIVKEY), 0440,
	       "privkey.pem follows key_mode=0440");
	is_int(mode_of(&open, KVFS_FILE_CHAIN), 0444, "chain.pem does not");
	config.key_mode = 0400;
	is_int(mode_of(&no_dates, KVFS_FILE_CERT_PEM), 0444,
	       "no nbf, no exp: open");
	is_int(mode_of(&last_second, KVFS_FILE_PRIVKEY), 0400,
	       "nbf now, exp in a second: open");

	/* Closed: 0000 for every file, and no secret-derived bytes. */
	const struct {
		const struct kvfs_object_attrs *a;
		const char *why;
	} closed[] = {
		{&disabled, "disabled"},
		{&early, "not yet valid"},
		{&expired, "expired (exp is now)"},
	};
	for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
		for (int k = 0; k < CERT_FILES; k++) {
			is_int(view(closed[i].a, (enum kvfs_file_kind)k, files,
				    0, &v),
			       0, "%s: file %d", closed[i].why, k);
			is_int(v.mode, 0000, "%s: file %d is 0000",
			       closed[i].why, k);
		}
		ok(view(closed[i].a, KVFS_FILE_PRIVKEY, files, 0, &v) == 0 &&
			   v.bytes.data == NULL && v.bytes.len == 0,
		   "%s: the key's size is not shown", closed[i].why);
		ok(view(closed[i].a, KVFS_FILE_CERT_PEM, files, 0, &v) == 0 &&
			   v.bytes.len == 8,
		   "%s: cert.pem's size is", closed[i].why);
		is_int(view(closed[i].a, KVFS_FILE_CHAIN, files, -EIO, &v), 0,
		       "%s: a failing secret does not matter", closed[i].why);
		is_int(view(closed[i].a, KVFS_FILE_CHAIN, files, -ENODATA, &v),
		       0, "%s: nor one not fetched", closed[i].why);
		is_int(view(closed[i].a, KVFS_FILE_CHAIN, NULL, -ENODATA, &v),
		       0, "%s: nor files not fetched", closed[i].why);
		is_int(v.mode, 0000, "%s: still 0000", closed[i].why);
	}

	/* allow_expired opens what is outside its dates, not what is
	 * disabled. */
	config.allow_expired = true;
	is_int(mode_of(&expired, KVFS_FILE_PRIVKEY), 0400,
	       "allow_expired: an expired privkey.pem is 0400");
	is_int(mode_of(&early, KVFS_FILE_CERT_PEM), 0444,
	       "allow_expired: a cert.pem not yet valid is 0444");
	is_int(mode_of(&disabled, KVFS_FILE_CERT_PEM), 0000,
	       "allow_expired: a disabled one is still 0000");
	config.allow_expired = false;

	ok(kvfs_tree_closed(&tree, &expired, NOW), "closed at exp");
	ok(!kvfs_tree_closed(&tree, &expired, NOW - 1), "open a second before");
	ok(kvfs_tree_closed(&tree, &early, NOW), "closed before nbf");
	ok(!kvfs_tree_closed(&tree, &early, NOW + 1), "open at nbf");
}

static void test_views_without_data(void)
{
	const struct kvfs_object_attrs open = {.enabled = true};
	struct kvfs_files_made m = www;
	struct kvfs_files *unexportable;
	struct kvfs_tree_view v;

	/* Not fetched yet. */
	is_int(view(&open, KVFS_FILE_CERT_PEM, NULL, -ENODATA, &v), -ENODATA,
	       "cert.pem needs the files");
	is_int(v.mode, 0444, "its mode holds");
	is_int(view(&open, KVFS_FILE_PRIVKEY, NULL, -ENODATA, &v), -ENODATA,
	       "privkey.pem needs them");
	is_int(v.mode, 0400, "its mode holds");
	is_int(view(&open, KVFS_FILE_FULLCHAIN, files, -ENODATA, &v), -ENODATA,
	       "fullchain.pem needs the secret");
	is_int(v.mode, 0444, "its mode holds");

	/* The identity may not read the secret. */
	for (int k = KVFS_FILE_CHAIN; k < CERT_FILES; k++) {
		is_int(view(&open, (enum kvfs_file_kind)k, files, -EACCES, &v),
		       0, "secret forbidden: file %d", k);
		is_int(v.mode, 0000, "file %d is 0000", k);
		ok(v.forbidden, "and forbidden");
	}
	is_int(view(&open, KVFS_FILE_CERT_PEM, files, -EACCES, &v), 0,
	       "cert.pem still works");
	is_int(v.mode, 0444, "0444");
	is_int(view(&open, KVFS_FILE_CHAIN, files, -EIO, &v), -EIO,
	       "an unusable secret is EIO");

	/* A key that is not exportable: no key files. */
	m.header.exportable = false;
	unexportable = made(&m);
	for (int k = KVFS_FILE_PRIVKEY; k < CERT_FILES; k++)
		is_int(view(&open, (enum kvfs_file_kind)k, unexportable, 0, &v),
		       -ENOENT, "not exportable: no file %d", k);
	is_int(view(&open, KVFS_FILE_FULLCHAIN, unexportable, 0, &v), 0,
	       "not exportable: fullchain.pem");
	ok(!kvfs_tree_needs_secret(unexportable, KVFS_FILE_PRIVKEY),
	   "nor a secret for privkey.pem");
	ok(kvfs_tree_needs_secret(unexportable, KVFS_FILE_CHAIN),
	   "but for chain.pem");
	secret.has_key = false;
	is_int(view(&open, KVFS_FILE_PRIVKEY, files, 0, &v), -ENOENT,
	       "a secret without a key: no privkey.pem");
	is_int(view(&open, KVFS_FILE_CHAIN, files, 0, &v), 0,
	       "chain.pem is there");
	secret.has_key = true;

	ok(!kvfs_tree_needs_secret(NULL, KVFS_FILE_CHAIN), "no files: no");
	ok(!kvfs_tree_needs_secret(files, KVFS_FILE_CERT_PEM), "cert.pem: no");
	ok(!kvfs_tree_needs_secret(files, KVFS_FILE_CERT_DER), "cert.der: no");
	ok(kvfs_tree_needs_secret(files, KVFS_FILE_PFX), "cert.pfx: yes");
	ok(!kvfs_tree_holds_key(KVFS_FILE_FULLCHAIN), "fullchain has no key");
	ok(kvfs_tree_holds_key(KVFS_FILE_BUNDLE), "bundle.pem has it");
	kvfs_files_unref(unexportable);
}

static void check_stat(const struct stat *st, mode_t mode, long nlink,
		       long long mtime, long long atime, const char *what)
{
	is_int(st->st_mode, mode, "%s: mode 0%o", what, (unsigned)mode);
	is_int(st->st_nlink, nlink, "%s: %ld links", what, nlink);
	is_int(st->st_mtim.tv_sec, mtime, "%s: mtime", what);
	is_int(st->st_ctim.tv_sec, mtime, "%s: ctime", what);
	is_int(st->st_atim.tv_sec, atime, "%s: atime", what);
	is_int(st->st_uid, 1234, "%s: uid=", what);
	is_int(st->st_gid, 5678, "%s: gid=", what);
	is_int(st->st_blksize, 4096, "%s: block size", what);
}

static void test_stat(void)
{
	struct kvfs_tree_node n;
	struct kvfs_tree_view v;
	struct kvfs_listing empty = {0};
	const struct kvfs_listing *const empties[KVFS_COLLECTION_COUNT_] = {
		[KVFS_COLLECTION_CERTIFICATES] = &empty,
	};
	struct statvfs sv;
	struct stat st;

	n = (struct kvfs_tree_node){.kind = KVFS_NODE_ROOT};
	kvfs_tree_stat_dir(&tree, &n, lists, &st);
	check_stat(&st, S_IFDIR | 0555, 7, MOUNTED, MOUNTED, "/");
	n.kind = KVFS_NODE_COLLECTION;
	kvfs_tree_stat_dir(&tree, &n, lists, &st);
	check_stat(&st, S_IFDIR | 0555, 5, 60, MOUNTED, "certificates/");
	kvfs_tree_stat_dir(&tree, &n, empties, &st);
	check_stat(&st, S_IFDIR | 0555, 2, MOUNTED, MOUNTED,
		   "an empty certificates/");
	is_int(resolve("/certificates/www", NULL, &n), 0, "www");
	kvfs_tree_stat_dir(&tree, &n, lists, &st);
	check_stat(&st, S_IFDIR | 0555, 3, 60, 50, "www/");
	is_int(st.st_size, 0, "www/: size 0");
	is_int(resolve("/certificates/www/versions", NULL, &n), 0, "versions");
	kvfs_tree_stat_dir(&tree, &n, NULL, &st);
	check_stat(&st, S_IFDIR | 0555, 1, 60, 50, "www/versions/");
	/* Directories stay 0555 when their certificate is closed. */
	is_int(resolve("/certificates/www/versions/4567ef01", &versions, &n), 0,
	       "a disabled version");
	kvfs_tree_stat_dir(&tree, &n, NULL, &st);
	check_stat(&st, S_IFDIR | 0555, 2, 95, 90, "a disabled version/");

	is_int(resolve("/certificates/www/versions/4567ef01/cert.pem",
		       &versions, &n),
	       0, "its cert.pem");
	is_int(kvfs_tree_view(&tree, &n, n.file, NOW, files, 0, &secret, &v), 0,
	       "a view");
	kvfs_tree_stat_file(&tree, &n, &v, &st);
	check_stat(&st, S_IFREG | 0000, 1, 95, 90, "a disabled version's file");
	is_int(st.st_size, 8, "its size");
	is_int(st.st_blocks, 1, "one block");

	is_int(resolve("/certificates/www/privkey.pem", NULL, &n), 0,
	       "www/privkey.pem");
	is_int(kvfs_tree_view(&tree, &n, n.file, NOW, files, 0, &secret, &v), 0,
	       "a view");
	v.bytes.len = 513;
	kvfs_tree_stat_file(&tree, &n, &v, &st);
	check_stat(&st, S_IFREG | 0400, 1, 60, 50, "privkey.pem");
	is_int(st.st_size, 513, "size 513");
	is_int(st.st_blocks, 2, "two blocks");

	n = (struct kvfs_tree_node){.kind = KVFS_NODE_CONTROL};
	kvfs_tree_stat_control(&tree, &n, NOW, &st);
	check_stat(&st, S_IFDIR | 0500, 2, MOUNTED, MOUNTED, ".kvfs/");
	is_int(resolve("/.kvfs/status", NULL, &n), 0, "status");
	kvfs_tree_stat_control(&tree, &n, NOW, &st);
	check_stat(&st, S_IFREG | 0400, 1, NOW, MOUNTED, ".kvfs/status");
	is_int(st.st_size, 0, "size 0, as /proc");

	kvfs_tree_statfs(lists, &sv);
	is_int(sv.f_bsize, 4096, "statfs: block size");
	is_int(sv.f_files, 2 + 3 * 9 + 2 * 2 + 1 * 4,
	       "statfs: inodes of 3 certificates, 2 secrets and a key");
	is_int(sv.f_namemax, 127, "statfs: names up to 127");
	is_int(sv.f_flag & ST_RDONLY, ST_RDONLY, "statfs: read-only");
	is_int(sv.f_blocks, 0, "statfs: no blocks");
}

/* The value of xattr name of n given files, as a string ("" when it
 * fails: *ret_r says how). */
static const char *xattr(const struct kvfs_tree_node *n,
			 const struct kvfs_files *f, const char *name,
			 int *ret_r)
{
	static char buf[512];
	int r = kvfs_tree_getxattr(&tree, n, f, name, NOW, buf,
				   sizeof(buf) - 1);

	buf[r > 0 ? r : 0] = '\0';
	if (ret_r)
		*ret_r = r;
	return buf;
}

/* Whether listxattr of n given files lists name. */
static bool listed(const struct kvfs_tree_node *n, const struct kvfs_files *f,
		   const char *name)
{
	char buf[512];
	int len = kvfs_tree_listxattr(&tree, n, f, buf, sizeof(buf));

	for (int i = 0; i < len; i += (int)strlen(buf + i) + 1)
		if (strcmp(buf + i, name) == 0)
			return true;
	return false;
}

/* Every xattr listed has a value, and every known one with a value is
 * listed: listxattr and getxattr agree. */
static void check_agree(const struct kvfs_tree_node *n,
			const struct kvfs_files *f, const char *what)
{
	static const char *const all[] = {
		"user.kvfs.id",		  "user.kvfs.version",
		"user.kvfs.x5t",	  "user.kvfs.sha256",
		"user.kvfs.enabled",	  "user.kvfs.nbf",
		"user.kvfs.exp",	  "user.kvfs.created",
		"user.kvfs.updated",	  "user.kvfs.subject",
		"user.kvfs.content_type", "user.kvfs.kty",
		"user.kvfs.crv",	  "user.kvfs.key_ops",
		"user.kvfs.key_size",	  "user.kvfs.tags",
	};
	bool agree = true;
	int r;

	for (size_t i = 0; i < ELEMENTSOF(all); i++) {
		xattr(n, f, all[i], &r);
		if ((r >= 0) != listed(n, f, all[i])) {
			printf("# %s: %s listed %d, getxattr %d\n", what,
			       all[i], listed(n, f, all[i]), r);
			agree = false;
		}
	}
	ok(agree, "%s: listxattr lists exactly the xattrs with a value", what);
}

static void test_xattrs(void)
{
	const struct {
		const char *name, *value;
	} want[] = {
		{"user.kvfs.id",
		 "https://v.vault.azure.net/certificates/www/0123abcd"},
		{"user.kvfs.version", "0123abcd"},
		{"user.kvfs.x5t", "x5t-value"},
		{"user.kvfs.sha256", "ab12"},
		{"user.kvfs.enabled", "true"},
		{"user.kvfs.nbf", "500"},
		{"user.kvfs.exp", "2000"},
		{"user.kvfs.expires_in", "1000"},
		{"user.kvfs.created", "50"},
		{"user.kvfs.updated", "60"},
		{"user.kvfs.subject", "CN=www"},
		{"user.kvfs.tags", "{}"},
	};
	size_t all = 0;
	char buf[256];
	struct kvfs_tree_node n;
	int r;

	is_int(resolve("/certificates/www", NULL, &n), 0, "www");
	for (size_t i = 0; i < ELEMENTSOF(want); i++) {
		int len = (int)strlen(want[i].value);

		all += strlen(want[i].name) + 1;
		ok(kvfs_tree_xattr_known(want[i].name), "%s is known",
		   want[i].name);
		is_int(kvfs_tree_getxattr(&tree, &n, files, want[i].name, NOW,
					  NULL, 0),
		       len, "%s: its length", want[i].name);
		memset(buf, 0, sizeof(buf));
		is_int(kvfs_tree_getxattr(&tree, &n, files, want[i].name, NOW,
					  buf, sizeof(buf)),
		       len, "%s: read", want[i].name);
		is_str(buf, want[i].value, "%s", want[i].name);
		is_int(kvfs_tree_getxattr(&tree, &n, files, want[i].name, NOW,
					  buf, (size_t)len - 1),
		       -ERANGE, "%s: ERANGE one byte short", want[i].name);
	}
	ok(!kvfs_tree_xattr_known("user.kvfs.nope"), "user.kvfs.nope is not");
	ok(!kvfs_tree_xattr_known("user.kvfs"), "nor user.kvfs");
	ok(!kvfs_tree_xattr_known("USER.KVFS.ID"), "nor USER.KVFS.ID");
	is_int(kvfs_tree_getxattr(&tree, &n, files, "security.selinux", NOW,
				  buf, sizeof(buf)),
	       -ENODATA, "security.selinux: ENODATA");

	/* What the listing carries needs no fetch: the attributes and the
	 * tags, the x5t when the listing has it. */
	static const char *const listing_only[] = {
		"user.kvfs.enabled",	"user.kvfs.nbf",     "user.kvfs.exp",
		"user.kvfs.created",	"user.kvfs.updated", "user.kvfs.tags",
		"user.kvfs.expires_in",
	};
	for (size_t i = 0; i < ELEMENTSOF(listing_only); i++)
		ok(!kvfs_tree_xattr_needs_files(&n, listing_only[i]),
		   "%s: from the listing", listing_only[i]);
	static const char *const from_get[] = {
		"user.kvfs.id",
		"user.kvfs.version",
		"user.kvfs.sha256",
		"user.kvfs.subject",
	};
	for (size_t i = 0; i < ELEMENTSOF(from_get); i++) {
		ok(kvfs_tree_xattr_needs_files(&n, from_get[i]),
		   "%s: from the GET", from_get[i]);
		xattr(&n, NULL, from_get[i], &r);
		is_int(r, -ENODATA, "%s: none without the files", from_get[i]);
	}
	ok(kvfs_tree_xattr_needs_files(&n, "user.kvfs.x5t"),
	   "x5t: from the GET when the listing has none");
	entries[2].item.x5t = "listed-x5t";
	ok(!kvfs_tree_xattr_needs_files(&n, "user.kvfs.x5t"),
	   "x5t: else from the listing");
	is_str(xattr(&n, files, "user.kvfs.x5t", NULL), "listed-x5t",
	       "the listing's");
	entries[2].item.x5t = NULL;
	ok(!kvfs_tree_listxattr_needs_files(&n),
	   "a certificate's list needs no fetch");

	/* Served from the listing, not the files: a disabled one shows
	 * them without its GET. */
	entries[2].item.attrs.enabled = false;
	entries[2].item.tags_json = "{\"env\":\"prod\"}";
	is_str(xattr(&n, NULL, "user.kvfs.enabled", NULL), "false",
	       "enabled of a disabled one, from the listing");
	is_str(xattr(&n, NULL, "user.kvfs.tags", NULL), "{\"env\":\"prod\"}",
	       "tags: the listing's JSON");
	entries[2].item.tags_json = NULL;
	is_str(xattr(&n, NULL, "user.kvfs.tags", NULL), "{}", "none: {}");
	entries[2].item.attrs.enabled = true;

	/* A version: its versions listing item says its id and version. */
	is_int(resolve("/certificates/www/versions/0123abcd", &versions, &n), 0,
	       "a version");
	ok(!kvfs_tree_xattr_needs_files(&n, "user.kvfs.id") &&
		   !kvfs_tree_xattr_needs_files(&n, "user.kvfs.version"),
	   "its id and version need no fetch");
	ok(kvfs_tree_xattr_needs_files(&n, "user.kvfs.sha256"),
	   "its sha256 does");
	is_str(xattr(&n, NULL, "user.kvfs.id", NULL),
	       "https://v.vault.azure.net/certificates/www/0123abcd", "its id");
	is_str(xattr(&n, NULL, "user.kvfs.version", NULL), "0123abcd",
	       "its version");
	is_str(xattr(&n, NULL, "user.kvfs.created", NULL), "70",
	       "its own created");

	static const char *const with[] = {
		"/certificates/www",
		"/certificates/www/cert.pem",
		"/certificates/www/versions/0123abcd",
		"/certificates/www/versions/0123abcd/cert.pfx",
	};
	/* An exp for the version too, so that every one lists them all. */
	version_items[0].attrs.exp = 3000;
	for (size_t i = 0; i < ELEMENTSOF(with); i++) {
		is_int(resolve(with[i], &versions, &n), 0, "%s", with[i]);
		ok(kvfs_tree_has_xattrs(&n), "%s has xattrs", with[i]);
		is_int(kvfs_tree_listxattr(&tree, &n, NULL, NULL, 0),
		       (long long)all, "%s: the list's length, not fetched",
		       with[i]);
		is_int(kvfs_tree_listxattr(&tree, &n, files, NULL, 0),
		       (long long)all, "%s: the same fetched", with[i]);
		check_agree(&n, files, with[i]);
	}
	memset(buf, 0, sizeof(buf));
	is_int(kvfs_tree_listxattr(&tree, &n, NULL, buf, sizeof(buf)),
	       (long long)all, "the list");
	is_str(buf, "user.kvfs.id", "begins with user.kvfs.id");
	is_str(buf + all - strlen("user.kvfs.tags") - 1, "user.kvfs.tags",
	       "ends with user.kvfs.tags");
	is_int(kvfs_tree_listxattr(&tree, &n, NULL, buf, all - 1), -ERANGE,
	       "ERANGE one byte short");
	is_str(xattr(&n, NULL, "user.kvfs.expires_in", NULL), "2000",
	       "a version's expires_in: its own exp - now");
	version_items[0].attrs.exp = 0;

	static const char *const without[] = {
		"/",
		"/certificates",
		"/certificates/www/versions",
		"/.kvfs",
		"/.kvfs/status",
		"/expiring",
		"/expiring/www",
	};
	for (size_t i = 0; i < ELEMENTSOF(without); i++) {
		is_int(resolve(without[i], &versions, &n), 0, "%s", without[i]);
		ok(!kvfs_tree_has_xattrs(&n), "%s has none", without[i]);
		is_int(kvfs_tree_listxattr(&tree, &n, NULL, buf, sizeof(buf)),
		       0, "%s: an empty list", without[i]);
		xattr(&n, files, "user.kvfs.id", &r);
		is_int(r, -ENODATA, "%s: no id", without[i]);
	}
}

/* keys/<name>/ holds the public half, as a certificate directory holds
 * its files: public.pem and public.jwk, 0444, per version too; and the
 * key's own xattrs. */
static void test_keys(void)
{
	struct kvfs_files_made km = {
		.header = {.coll = KVFS_COLLECTION_KEYS,
			   .id = "https://v.vault.azure.net/keys/rsa-key/99aa",
			   .version = "99aa",
			   .attrs = {.enabled = true,
				     .created = 110,
				     .updated = 120}},
		.bytes = {[KVFS_FILE_PUBLIC_PEM] = {.data = "PUBLIC PEM",
						    .len = 10},
			  [KVFS_FILE_PUBLIC_JWK] =
				  {.data = "{\"kty\":\"RSA\"}\n", .len = 14}},
		.meta = {[KVFS_META_KTY] = "RSA",
			 [KVFS_META_KEY_OPS] = "sign,verify",
			 [KVFS_META_KEY_SIZE] = "2048"},
	};
	struct kvfs_files *key = made(&km), *ec;
	struct kvfs_tree_node n;
	struct kvfs_tree_view v;
	char buf[512];
	int r;

	is_int(resolve("/keys/RSA-key", NULL, &n), 0, "/keys/RSA-key");
	is_int(n.kind, KVFS_NODE_OBJECT, "is a key directory");
	is_int(n.coll, KVFS_COLLECTION_KEYS, "of keys");
	ok(n.entry == &key_entries[0], "finds rsa-key");
	is_int(resolve("/keys/rsa-key/public.pem", NULL, &n), 0, "public.pem");
	is_int(n.file, KVFS_FILE_PUBLIC_PEM, "is public.pem");
	is_int(resolve("/keys/rsa-key/public.jwk", NULL, &n), 0, "public.jwk");
	is_int(n.file, KVFS_FILE_PUBLIC_JWK, "is public.jwk");
	is_int(resolve("/keys/rsa-key/versions/0123abcd/public.jwk", &versions,
		       &n),
	       0, "a version's public.jwk");
	is_int(n.kind, KVFS_NODE_FILE, "is a file");
	ok(n.version == &version_items[0], "of that version");
	static const char *const none[] = {
		"/keys/rsa-key/cert.pem",
		"/keys/rsa-key/privkey.pem",
		"/keys/rsa-key/private.pem",
		"/certificates/www/public.pem",
		"/keys/nope",
	};
	for (size_t i = 0; i < ELEMENTSOF(none); i++)
		is_int(resolve(none[i], &versions, &n), -ENOENT,
		       "'%s' is nothing", none[i]);
	ok(kvfs_tree_object_has_file(KVFS_COLLECTION_KEYS,
				     KVFS_FILE_PUBLIC_PEM),
	   "a key has public.pem");
	ok(!kvfs_tree_object_has_file(KVFS_COLLECTION_KEYS, KVFS_FILE_CERT_PEM),
	   "but no cert.pem");
	ok(!kvfs_tree_holds_key(KVFS_FILE_PUBLIC_PEM), "public.pem: no key");

	is_int(resolve("/keys/rsa-key/public.pem", NULL, &n), 0, "public.pem");
	is_int(kvfs_tree_view(&tree, &n, KVFS_FILE_PUBLIC_PEM, NOW, key, 0,
			      NULL, &v),
	       0, "public.pem's view");
	ok(v.bytes.len == 10 && memcmp(v.bytes.data, "PUBLIC PEM", 10) == 0,
	   "is the PEM");
	is_int(v.mode, 0444, "0444");
	is_int(kvfs_tree_view(&tree, &n, KVFS_FILE_PUBLIC_JWK, NOW, key, 0,
			      NULL, &v),
	       0, "public.jwk's view");
	ok(v.bytes.len == 14 &&
		   memcmp(v.bytes.data, "{\"kty\":\"RSA\"}\n", 14) == 0,
	   "is the JWK");
	is_int(kvfs_tree_view(&tree, &n, KVFS_FILE_CERT_PEM, NOW, key, 0, NULL,
			      &v),
	       -ENOENT, "cert.pem is none of a key's");
	key_entries[0].item.attrs.enabled = false;
	is_int(kvfs_tree_view(&tree, &n, KVFS_FILE_PUBLIC_PEM, NOW, NULL,
			      -ENODATA, NULL, &v),
	       0, "disabled: known without a fetch");
	is_int(v.mode, 0000, "disabled: 0000");
	key_entries[0].item.attrs.enabled = true;

	static const struct {
		const char *name, *value;
	} want[] = {
		{"user.kvfs.id", "https://v.vault.azure.net/keys/rsa-key/99aa"},
		{"user.kvfs.version", "99aa"},
		{"user.kvfs.enabled", "true"},
		{"user.kvfs.created", "110"},
		{"user.kvfs.updated", "120"},
		{"user.kvfs.nbf", "0"},
		{"user.kvfs.kty", "RSA"},
		{"user.kvfs.key_ops", "sign,verify"},
		{"user.kvfs.key_size", "2048"},
		{"user.kvfs.tags", "{\"purpose\":\"signing\"}"},
	};
	is_int(resolve("/keys/rsa-key", NULL, &n), 0, "rsa-key");
	key_entries[0].item.tags_json = "{\"purpose\":\"signing\"}";
	for (size_t i = 0; i < ELEMENTSOF(want); i++)
		is_str(xattr(&n, key, want[i].name, NULL), want[i].value, "%s",
		       want[i].name);
	xattr(&n, key, "user.kvfs.crv", &r);
	is_int(r, -ENODATA, "an RSA key has no crv");
	ok(!listed(&n, key, "user.kvfs.crv"), "nor lists one");
	xattr(&n, key, "user.kvfs.x5t", &r);
	is_int(r, -ENODATA, "nor a certificate's x5t");
	ok(!kvfs_tree_xattr_needs_files(&n, "user.kvfs.x5t"),
	   "which needs no fetch to say so");
	check_agree(&n, key, "an RSA key");
	ok(kvfs_tree_listxattr_needs_files(&n),
	   "a key's list needs its GET: only it says whether it has a crv");
	ok(!listed(&n, NULL, "user.kvfs.crv"), "not fetched: no crv listed");
	ok(listed(&n, NULL, "user.kvfs.kty"), "but kty, which it will get");
	km.meta[KVFS_META_KTY] = "EC";
	km.meta[KVFS_META_CRV] = "P-256";
	ec = made(&km);
	is_str(xattr(&n, ec, "user.kvfs.crv", NULL), "P-256",
	       "an EC key's crv");
	ok(listed(&n, ec, "user.kvfs.crv"), "listed");
	check_agree(&n, ec, "an EC key");
	kvfs_files_unref(ec);
	key_entries[0].item.tags_json = NULL;
	memset(buf, 0, sizeof(buf));
	ok(kvfs_tree_listxattr(&tree, &n, key, buf, sizeof(buf)) > 0,
	   "lists its xattrs");
	ok(memmem(buf, sizeof(buf), "user.kvfs.key_size", 19) != NULL,
	   "key_size among them");
	ok(memmem(buf, sizeof(buf), "user.kvfs.x5t", 14) == NULL, "x5t is not");
	kvfs_files_unref(key);
}

/* secrets/<name> is a file, its value; secrets/.versions/<name>/<version>
 * every version; key_mode=, closed as any object; its size only once
 * fetched; the secret's xattrs. */
static void test_secrets(void)
{
	static const char id[] =
		"https://v.vault.azure.net/secrets/db-password/77bb";
	struct kvfs_files_made m = {
		.header = {.coll = KVFS_COLLECTION_SECRETS,
			   .id = id,
			   .name = "db-password",
			   .version = "77bb",
			   .attrs = {.enabled = true,
				     .created = 130,
				     .updated = 140}},
		.bytes = {[KVFS_FILE_SECRET_VALUE] = {.data = "s3cret\n",
						      .len = 7}},
		.meta = {[KVFS_META_CONTENT_TYPE] = "text/plain"},
	};
	struct kvfs_files *secret = made(&m);
	enum kvfs_file_kind k;
	struct kvfs_tree_node n;
	struct kvfs_tree_view v;
	struct stat st;
	int r;

	ok(kvfs_tree_object_is_file(KVFS_COLLECTION_SECRETS, &k) &&
		   k == KVFS_FILE_SECRET_VALUE,
	   "a secret is a file");
	ok(!kvfs_tree_object_is_file(KVFS_COLLECTION_KEYS, NULL),
	   "a key is not");
	ok(kvfs_tree_size_on_fetch(KVFS_FILE_SECRET_VALUE),
	   "its size comes with its fetch");
	ok(!kvfs_tree_size_on_fetch(KVFS_FILE_CERT_PEM), "cert.pem's does not");

	is_int(resolve("/secrets/DB-password", NULL, &n), 0, "a secret");
	is_int(n.kind, KVFS_NODE_FILE, "is a file");
	is_int(n.file, KVFS_FILE_SECRET_VALUE, "its value");
	ok(n.entry == &secret_entries[0] && !n.version, "the latest");
	ok(kvfs_tree_has_xattrs(&n), "with xattrs");
	is_int(resolve("/secrets/.versions", NULL, &n), 0, ".versions");
	is_int(n.kind, KVFS_NODE_ALL_VERSIONS, "is every version's directory");
	ok(!kvfs_tree_has_xattrs(&n), "without xattrs");
	is_int(resolve("/secrets/.versions/db-password", NULL, &n), 0,
	       ".versions/db-password");
	is_int(n.kind, KVFS_NODE_VERSIONS, "is its versions");
	is_int(resolve("/secrets/.versions/db-password/0123abcd", NULL, &n),
	       KVFS_TREE_NEEDS_VERSIONS, "a version needs the listing");
	is_int(resolve("/secrets/.versions/db-password/0123abcd", &versions,
		       &n),
	       0, "a version");
	is_int(n.kind, KVFS_NODE_FILE, "is a file");
	ok(n.version == &version_items[0], "of that version");
	static const char *const none[] = {
		"/secrets/db-password/x",
		"/secrets/db-password/versions",
		"/secrets/.versions/db-password/0123abcd/x",
		"/secrets/.versions/nope",
		"/secrets/.Versions",
		"/secrets/versions",
		"/secrets/..",
		"/secrets/nope",
	};
	for (size_t i = 0; i < ELEMENTSOF(none); i++)
		is_int(resolve(none[i], &versions, &n), -ENOENT,
		       "'%s' is nothing", none[i]);

	is_int(resolve("/secrets/db-password", NULL, &n), 0, "the secret");
	is_int(kvfs_tree_view(&tree, &n, KVFS_FILE_SECRET_VALUE, NOW, NULL,
			      -ENODATA, NULL, &v),
	       -ENODATA, "not known before its fetch");
	is_int(v.mode, 0400, "key_mode=");
	kvfs_tree_stat_file(&tree, &n, &v, &st);
	is_int(st.st_size, 0, "size 0 until then");
	is_int(kvfs_tree_view(&tree, &n, KVFS_FILE_SECRET_VALUE, NOW, secret,
			      -ENODATA, NULL, &v),
	       0, "fetched");
	ok(v.bytes.len == 7 && memcmp(v.bytes.data, "s3cret\n", 7) == 0,
	   "exactly the value, its newline included");
	is_int(resolve("/secrets/off", NULL, &n), 0, "a disabled secret");
	is_int(kvfs_tree_view(&tree, &n, KVFS_FILE_SECRET_VALUE, NOW, NULL,
			      -ENODATA, NULL, &v),
	       0, "closed: known without a fetch");
	is_int(v.mode, 0000, "0000");

	n = (struct kvfs_tree_node){.kind = KVFS_NODE_COLLECTION,
				    .coll = KVFS_COLLECTION_SECRETS};
	kvfs_tree_stat_dir(&tree, &n, lists, &st);
	is_int(st.st_nlink, 3, "secrets/ links .versions/");
	n.kind = KVFS_NODE_ALL_VERSIONS;
	kvfs_tree_stat_dir(&tree, &n, lists, &st);
	is_int(st.st_nlink, 4, ".versions/ links a directory per secret");
	ok(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0555, "0555");

	/* A secret's xattrs cost no request: what the listing carries, and
	 * the latest id and version once its first open fetched them. */
	is_int(resolve("/secrets/db-password", NULL, &n), 0, "the secret");
	secret_entries[0].item.content_type = "text/plain";
	ok(kvfs_tree_fetched_on_open(KVFS_COLLECTION_SECRETS),
	   "a secret is fetched on open only");
	ok(!kvfs_tree_fetched_on_open(KVFS_COLLECTION_KEYS), "a key is not");
	ok(!kvfs_tree_fetched_on_open(KVFS_COLLECTION_CERTIFICATES),
	   "nor a certificate");
	ok(!kvfs_tree_listxattr_needs_files(&n), "its list needs no fetch");
	ok(!kvfs_tree_xattr_needs_files(&n, "user.kvfs.content_type"),
	   "content_type is the listing's");
	is_str(xattr(&n, NULL, "user.kvfs.content_type", NULL), "text/plain",
	       "content_type without a fetch");
	is_str(xattr(&n, NULL, "user.kvfs.created", NULL), "130",
	       "created without a fetch");
	xattr(&n, NULL, "user.kvfs.version", &r);
	is_int(r, -ENODATA, "the latest version: not before its open");
	ok(!listed(&n, NULL, "user.kvfs.version") &&
		   !listed(&n, NULL, "user.kvfs.id"),
	   "nor listed");
	check_agree(&n, NULL, "a secret not read");
	is_str(xattr(&n, secret, "user.kvfs.id", NULL), id, "its id once read");
	is_str(xattr(&n, secret, "user.kvfs.version", NULL), "77bb",
	       "its version");
	ok(listed(&n, secret, "user.kvfs.version"), "listed");
	check_agree(&n, secret, "a secret read");
	xattr(&n, secret, "user.kvfs.kty", &r);
	is_int(r, -ENODATA, "no kty");
	secret_entries[0].item.content_type = NULL;
	xattr(&n, secret, "user.kvfs.content_type", &r);
	is_int(r, -ENODATA, "no content_type without a contentType");
	ok(!listed(&n, secret, "user.kvfs.content_type"), "nor listed");
	check_agree(&n, secret, "a secret without a content type");

	is_int(resolve("/secrets/off", NULL, &n), 0, "a disabled secret");
	is_str(xattr(&n, NULL, "user.kvfs.enabled", NULL), "false",
	       "shows enabled false without a fetch");
	is_str(xattr(&n, NULL, "user.kvfs.tags", NULL), "{}", "and its tags");
	is_int(resolve("/secrets/.versions/db-password/0123abcd", &versions,
		       &n),
	       0, "a version");
	is_str(xattr(&n, NULL, "user.kvfs.id", NULL),
	       "https://v.vault.azure.net/secrets/www/0123abcd",
	       "its id, from its versions listing");
	is_str(xattr(&n, NULL, "user.kvfs.version", NULL), "0123abcd",
	       "its version");
	check_agree(&n, NULL, "a secret's version");
	kvfs_files_unref(secret);
}

/* expiring/: the certificates whose exp is at most expiring_days= after
 * now, the expired included; never one without an exp. */
static void test_expiring(void)
{
	enum { DAY = 86400 };
	static struct kvfs_entry e[] = {
		{.item = {.name = "Edge", /* exactly at the limit */
			  .attrs = {.enabled = true,
				    .exp = NOW + 30 * DAY,
				    .updated = 5}}},
		{.item = {.name = "gone", /* expired */
			  .attrs = {.enabled = true, .exp = NOW - 1}}},
		{.item = {.name = "late", /* one second past the limit */
			  .attrs = {.enabled = true,
				    .exp = NOW + 30 * DAY + 1,
				    .updated = 7}}},
		{.item = {.name = "never", /* no exp */
			  .attrs = {.enabled = true}}},
		{.item = {.name = "now",
			  .attrs = {.enabled = true, .exp = NOW}}},
	};
	struct kvfs_listing l = {
		.entries = e, .n = ELEMENTSOF(e), .updated_max = 77};
	const struct kvfs_listing *const ls[KVFS_COLLECTION_COUNT_] = {
		[KVFS_COLLECTION_CERTIFICATES] = &l,
	};
	static const struct {
		const char *name;
		bool in, in0;
	} want[] = {
		{"Edge", true, false},	{"gone", true, true},
		{"late", false, false}, {"never", false, false},
		{"now", true, true},
	};
	struct kvfs_tree_node n;
	char buf[64];
	struct stat st;
	int r;

	for (size_t i = 0; i < ELEMENTSOF(want); i++) {
		char path[64];

		snprintf(path, sizeof(path), "/expiring/%s", want[i].name);
		is_int(kvfs_tree_expiring(&tree, &e[i].item, NOW), want[i].in,
		       "%s: %s within 30 days", want[i].name,
		       want[i].in ? "in" : "not");
		memset(&n, 0xa5, sizeof(n));
		r = kvfs_tree_resolve(&tree, path, ls, NULL, NOW, &n);
		is_int(r, want[i].in ? 0 : -ENOENT, "%s resolves so", path);
		if (r == 0) {
			is_int(n.kind, KVFS_NODE_EXPIRING_LINK, "%s is a link",
			       path);
			ok(n.entry == &e[i], "%s: to its certificate", path);
		}
		config.expiring_days = 0;
		is_int(kvfs_tree_expiring(&tree, &e[i].item, NOW), want[i].in0,
		       "%s: expiring_days=0 keeps only the expired",
		       want[i].name);
		config.expiring_days = 30;
	}
	ok(kvfs_tree_expiring(&tree, &e[2].item, NOW + 1),
	   "late comes in a second later, with the clock alone");

	is_int(kvfs_tree_resolve(&tree, "/expiring", ls, NULL, NOW, &n), 0,
	       "/expiring");
	is_int(n.kind, KVFS_NODE_EXPIRING, "is expiring/");
	is_int(n.coll, KVFS_COLLECTION_CERTIFICATES, "of the certificates");
	kvfs_tree_stat_dir(&tree, &n, ls, &st);
	check_stat(&st, S_IFDIR | 0555, 2, 77, MOUNTED, "expiring/");
	is_int(kvfs_tree_link_target(&n, buf, sizeof(buf)), -EINVAL,
	       "expiring/ is no link");

	is_int(kvfs_tree_resolve(&tree, "/expiring/EDGE", ls, NULL, NOW, &n), 0,
	       "/expiring/EDGE: any case");
	memset(buf, 'x', sizeof(buf));
	is_int(kvfs_tree_link_target(&n, buf, sizeof(buf)),
	       (int)strlen("../certificates/Edge"), "the target's length");
	is_str(buf, "../certificates/Edge", "to the name as listed");
	is_int(kvfs_tree_link_target(&n, buf, 8), 20, "untruncated length");
	is_str(buf, "../cert", "truncated with its NUL");
	ok(!kvfs_tree_has_xattrs(&n), "a link has no xattrs");
	kvfs_tree_stat_link(&tree, &n, ls, &st);
	check_stat(&st, S_IFLNK | 0777, 1, 77, MOUNTED, "expiring/Edge");
	is_int(st.st_size, 20, "its size: the target's length");

	static const char *const bad[] = {
		"/expiring/late",	   "/expiring/never",
		"/expiring/nope",	   "/expiring/..",
		"/expiring/Edge/cert.pem", "/expiring/",
		"/expiring/gone/x",	   "/Expiring",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		is_int(kvfs_tree_resolve(&tree, bad[i], ls, NULL, NOW, &n),
		       -ENOENT, "'%s' is nothing", bad[i]);

	/* Filtered out: the listing never holds it, nor expiring/. */
	l.n = 1;
	is_int(kvfs_tree_resolve(&tree, "/expiring/gone", ls, NULL, NOW, &n),
	       -ENOENT, "a certificate the listing left out is not there");

	l.n = ELEMENTSOF(e);
	is_int(kvfs_tree_resolve(&tree, "/certificates/never", ls, NULL, NOW,
				 &n),
	       0, "a certificate without exp");
	xattr(&n, NULL, "user.kvfs.expires_in", &r);
	is_int(r, -ENODATA, "has no expires_in");
	ok(!listed(&n, NULL, "user.kvfs.expires_in"), "nor lists it");
	is_int(kvfs_tree_resolve(&tree, "/certificates/gone", ls, NULL, NOW,
				 &n),
	       0, "an expired one");
	is_str(xattr(&n, NULL, "user.kvfs.expires_in", NULL), "-1",
	       "expires_in is negative");
	ok(listed(&n, NULL, "user.kvfs.expires_in"), "and listed");
	is_int(kvfs_tree_resolve(&tree, "/certificates/now/cert.pem", ls, NULL,
				 NOW, &n),
	       0, "a file");
	is_str(xattr(&n, NULL, "user.kvfs.expires_in", NULL), "0",
	       "carries it too");
}

int main(void)
{
	test_resolve_top();
	test_collections();
	test_object_files();
	test_resolve_certificates();
	test_collection_not_mounted();
	test_resolve_versions();
	files = made(&www);
	test_modes();
	test_views_without_data();
	test_stat();
	test_xattrs();
	test_keys();
	test_secrets();
	test_expiring();
	kvfs_files_unref(files);
	return done_testing();
}
