/* Unit tests for the Key Vault parsers (vault.c): real recorded bodies
 * from tests/data (samples S2, S3, S4; the REST specification's secret and
 * RSA key; the service's EC key), then malformed and hostile variants, the
 * same-origin rule the client follows links by, tags on every collection's
 * items, and the 403s that mean "disabled". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "tap.h"
#include "url.h"
#include "util.h"
#include "vault.h"

/* A page of the certificates listing. */
static int parse_list_page(const char *json, size_t len,
			   struct kvfs_object_list *l, char **next,
			   struct kvfs_error *err)
{
	return kvfs_vault_parse_page(
		json, len, kvfs_collection_info(KVFS_COLLECTION_CERTIFICATES),
		false, l, next, err);
}

static int parse_page_str(const char *json, struct kvfs_object_list *l,
			  char **next)
{
	struct kvfs_error err = {0};

	*next = NULL;
	return parse_list_page(json, strlen(json), l, next, &err);
}

static int parse_bundle_str(const char *json, struct kvfs_cert_bundle *b)
{
	struct kvfs_error err = {0};

	return kvfs_vault_parse_bundle(json, strlen(json), b, &err);
}

static void test_list_pages(void)
{
	struct kvfs_object_list l = {0};
	struct kvfs_error err = {0};
	char *json, *next = (char *)"unset";
	size_t len;
	int r;

	json = tap_slurp("vault-list-page.json", &len);
	ok(json != NULL, "fixture vault-list-page.json");
	if (!json)
		return;
	r = parse_list_page(json, len, &l, &next, &err);
	is_int(r, 0, "S2 page parses");
	is_int(l.n, 6, "six items");
	if (l.n == 6) {
		is_str(l.items[0].name,
		       "livekvtestimportPasswordEncodedCertificate3df33f0d",
		       "name from the id URL, vault's spelling");
		is_str(l.items[0].x5t, "7Hd8wjMNV61gvzAY4LfCGxWwi_I", "x5t");
		ok(l.items[0].attrs.enabled, "enabled");
		is_int(l.items[0].attrs.nbf, 1628270437, "nbf");
		is_int(l.items[0].attrs.exp, 4781870437LL, "exp beyond 2038");
		is_int(l.items[0].attrs.created, 1651244916, "created");
		is_int(l.items[0].attrs.updated, 1651244916, "updated");
		is_str(l.items[5].name, "livekvtestpolicyCertificate96b32ef2",
		       "last item");
		is_int(l.items[5].attrs.exp, 1682780946, "last item exp");
	}
	is_str(next,
	       "https://vaultname.vault.azure.net:443/certificates?api-versi"
	       "on=7.3&$skiptoken=eyJOZXh0TWFya2VyIjoiMiExMzIhTURBd01EVTBJV0"
	       "5sY25ScFptbGpZWFJsTDB4SlZrVkxWbFJGVTFSUVQweEpRMWxEUlZKVVNVWk"
	       "pRMEZVUlRrMlFqTXlSVVl5TDFCUFRFbERXU0V3TURBd01qZ2hPVGs1T1MweE"
	       "1pMHpNVlF5TXpvMU9UbzFPUzQ1T1RrNU9UazVXaUUtIiwiVGFyZ2V0TG9jYX"
	       "Rpb24iOjB9&maxresults=6",
	       "nextLink returned verbatim");
	ok(kvfs_url_same_origin("https://vaultname.vault.azure.net", next),
	   "nextLink with :443 is the vault's origin");
	free(next);
	free(json);

	json = tap_slurp("vault-list-last.json", &len);
	ok(json != NULL, "fixture vault-list-last.json");
	if (!json)
		return;
	next = (char *)"unset";
	r = parse_list_page(json, len, &l, &next, &err);
	is_int(r, 0, "empty last page parses");
	ok(next == NULL, "nextLink null: the end");
	is_int(l.n, 6, "nothing appended by an empty page");
	free(json);
	kvfs_object_list_clear(&l);
	ok(l.items == NULL && l.n == 0, "list cleared");
}

/* Forget the last item of a list (the later checks count on its size). */
static void cert_item_drop_last(struct kvfs_object_list *l)
{
	struct kvfs_object_item *it = &l->items[--l->n];

	free(it->name);
	free(it->x5t);
	l->bytes = 0;
}

static void test_list_details(void)
{
	struct kvfs_object_list l = {0};
	char *next;
	int r;

	r = parse_page_str(
		"{\"value\":[{\"id\":\"https://v.vault.azure.net/certificates/"
		"a\",\"tags\":{\"b\":\"2\",\"a\":\"1\"},\"attributes\":{"
		"\"enabled\":false}},{\"id\":\"https://v.vault.azure.net/"
		"certificates/my\\u002Dcert\",\"subject\":\"\",\"pending\":{},"
		"\"x5t\":null}]}",
		&l, &next);
	is_int(r, 0, "page with tags, unknown fields, escapes");
	is_int(l.n, 2, "two items");
	if (l.n == 2) {
		ok(!l.items[0].attrs.enabled, "enabled false");
		is_int(l.items[0].attrs.nbf, 0, "absent nbf is 0");
		is_str(l.items[1].name, "my-cert", "\\u escape decoded");
		ok(l.items[1].x5t == NULL, "x5t null is absent");
		ok(l.items[1].attrs.enabled, "no attributes: enabled");
	}
	ok(next == NULL, "no nextLink key: the end");

	r = parse_page_str(
		"{\"value\":[{\"id\":\"https://v.vault.azure.net/certificates/"
		"ok1\"},{\"id\":\"https://v.vault.azure.net/certificates/"
		"bad_name\"},{\"id\":\"https://v.vault.azure.net/certificates/"
		"..\"},{\"id\":\"https://v/certificates/x/v1\"},"
		"{\"id\":\"https://v/certificates/a%2Fb\"}],\"nextLink\":\"\"}",
		&l, &next);
	is_int(r, 0, "invalid names are not fatal");
	is_int(l.n, 7, "they are kept for the caller to skip and log");
	if (l.n == 7) {
		is_str(l.items[2].name, "ok1", "the valid one");
		is_str(l.items[3].name, "bad_name", "an invalid one, as is");
		is_str(l.items[4].name, "..", "'..', as is");
		is_str(l.items[5].name, "x/v1", "a slash, as is");
		is_str(l.items[6].name, "a%2Fb", "percent-encoding, as is");
		for (size_t i = 3; i < 7; i++)
			ok(!kvfs_vault_object_name_valid(l.items[i].name),
			   "and not a valid name");
	}
	ok(next == NULL, "empty nextLink: the end");
	while (l.n > 3)
		cert_item_drop_last(&l);

	static const char *const malformed[] = {
		"",
		"not json",
		"[]",
		"{\"value\":{}}",
		"{\"nextLink\":null}",
		"{\"value\":[],\"nextLink\":5}",
		"{\"value\":[5]}",
		"{\"value\":[{}]}",
		"{\"value\":[{\"id\":5}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"attributes\":{\"enabled\":\"true\"}}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"attributes\":{\"nbf\":1.5}}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"attributes\":{\"exp\":\"1682780946\"}}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"attributes\":{\"exp\":99999999999999999999999}}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"attributes\":[]}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"tags\":[]}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"tags\":{\"k\":1}}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\","
		"\"x5t\":7}]}",
		"{\"value\":[{\"id\":\"https://v/secrets/x\"}]}",
		"{\"value\":[{\"id\":\"/certificates/x\"}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x?a=b\"}]}",
		"{\"value\":[{\"id\":\"https://v/certificates/x\\u0000y\"}]}",
		"{\"value\":[],\"value\":[]}",
		"{\"value\":[{\"id\":\"https://v/certificates/a\"}]",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++) {
		next = NULL;
		r = parse_page_str(malformed[i], &l, &next);
		is_int(r, -EBADMSG, "malformed page %zu refused", i);
		is_int(l.n, 3, "malformed page %zu: nothing appended", i);
		ok(next == NULL, "malformed page %zu: no nextLink", i);
	}

	r = parse_page_str("{\"value\":[{\"id\":\"https://v/certificates/y\"},"
			   "{\"id\":\"https://v/certificates/z\","
			   "\"attributes\":{\"enabled\":1}}]}",
			   &l, &next);
	is_int(r, -EBADMSG, "one bad item spoils the page");
	is_int(l.n, 3, "and its good items are not appended");
	kvfs_object_list_clear(&l);
}

static void b64url_sha1(const unsigned char *der, size_t len, char *out)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
		"vwxyz0123456789-_";
	unsigned char d[SHA_DIGEST_LENGTH + 2] = {0};
	size_t o = 0;

	SHA1(der, len, d);
	for (size_t i = 0; i < SHA_DIGEST_LENGTH; i += 3) {
		unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 |
			     d[i + 2];

		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < SHA_DIGEST_LENGTH)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < SHA_DIGEST_LENGTH)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
}

/* An item keeps what the tree needs, each field capped; a listing keeps at
 * most KVFS_VAULT_MAX_LIST_BYTES. */
static void test_list_caps(void)
{
	struct kvfs_object_list l = {0};
	struct kvfs_error err = {0};
	char *next = NULL, *json = NULL, *big;
	size_t bytes = 0, pages = 0;
	int r;

	/* A tag of 3 MB (Key Vault's are at most 256 characters) is read, not
	 * kept. */
	big = malloc(3u << 20);
	memset(big, 'x', (3u << 20) - 1);
	big[(3u << 20) - 1] = '\0';
	r = asprintf(&json,
		     "{\"value\":[{\"id\":\"https://v/certificates/a\","
		     "\"x5t\":\"7Hd8wjMNV61gvzAY4LfCGxWwi_I\","
		     "\"tags\":{\"t\":\"%s\"}}]}",
		     big);
	free(big);
	ok(r > 0, "a page with 3 MB of tags");
	r = parse_list_page(json, strlen(json), &l, &next, &err);
	free(json);
	is_int(r, 0, "parses");
	ok(l.n == 1 && l.bytes < 256 && l.items[0].tags == NULL,
	   "the item keeps %zu bytes: name, x5t, attributes", l.bytes);
	kvfs_object_list_clear(&l);

	json = NULL;
	r = asprintf(&json,
		     "{\"value\":[{\"id\":\"https://v/certificates/a\","
		     "\"x5t\":\"%065d\"}]}",
		     0);
	r = parse_list_page(json, strlen(json), &l, &next, &err);
	is_int(r, -EBADMSG, "an x5t of 65 bytes is refused (%s)", err.message);
	ok(strstr(err.message, "'x5t' longer than 64 bytes") != NULL,
	   "the error names the field");
	ok(l.n == 0, "nothing kept");
	free(json);

	big = malloc(1100);
	memset(big, 'a', 1099);
	big[1099] = '\0';
	json = NULL;
	r = asprintf(&json,
		     "{\"value\":[{\"id\":\"https://v/certificates/%s\"}]}",
		     big);
	free(big);
	r = parse_list_page(json, strlen(json), &l, &next, &err);
	is_int(r, -EBADMSG, "an id of 1100 bytes is refused (%s)", err.message);
	free(json);

	/* Pages of 1000 items of 127-character names, as a hostile vault
	 * would send them (Key Vault sends 25): refused past the cap. */
	{
		char name[128];
		size_t cap = 1000 * 200, len = 0;

		json = malloc(cap);
		memset(name, 'n', 127);
		name[127] = '\0';
		len += (size_t)snprintf(json + len, cap - len, "{\"value\":[");
		for (int i = 0; i < 1000; i++)
			len += (size_t)snprintf(
				json + len, cap - len,
				"%s{\"id\":\"https://v/certificates/%s\","
				"\"x5t\":\"7Hd8wjMNV61gvzAY4LfCGxWwi_I\"}",
				i ? "," : "", name);
		snprintf(json + len, cap - len, "]}");
	}
	for (;;) {
		kvfs_error_clear(&err);
		r = parse_list_page(json, strlen(json), &l, &next, &err);
		if (r < 0 || ++pages > 10000)
			break;
		bytes = l.bytes;
	}
	free(json);
	is_int(r, -E2BIG,
	       "a listing past the cap is refused after %zu pages "
	       "(%s)",
	       pages, err.message);
	ok(strstr(err.message, "larger than 64 MiB") != NULL,
	   "the error says so");
	ok(bytes <= KVFS_VAULT_MAX_LIST_BYTES && l.bytes == bytes,
	   "what was kept (%zu bytes) is within the cap, and the refused "
	   "page added nothing",
	   l.bytes);
	ok(l.n == pages * 1000, "%zu items kept", l.n);
	kvfs_object_list_clear(&l);
}

static void test_bundle(void)
{
	struct kvfs_cert_bundle b = {0};
	struct kvfs_error err = {0};
	char x5t[64];
	char *json;
	size_t len;
	int r;

	json = tap_slurp("vault-bundle.json", &len);
	ok(json != NULL, "fixture vault-bundle.json");
	if (!json)
		return;
	r = kvfs_vault_parse_bundle(json, len, &b, &err);
	is_int(r, 0, "S3 bundle parses");
	free(json);
	if (r < 0)
		return;
	is_str(b.name,
	       "CRUDCertificateName-cangetacertificatessecretinPEMformat-",
	       "name");
	is_str(b.version, "f8ac48a294d941e18d0e5d85b3c8ea3f", "version");
	is_str(b.id,
	       "https://keyvault_name.vault.azure.net/certificates/"
	       "CRUDCertificateName-cangetacertificatessecretinPEMformat-/"
	       "f8ac48a294d941e18d0e5d85b3c8ea3f",
	       "id with version");
	is_str(b.x5t, "tHOUOqgt-GCK61US0qlkPr8j1-w", "x5t");
	is_str(b.sid,
	       "https://keyvault_name.vault.azure.net/secrets/"
	       "CRUDCertificateName-cangetacertificatessecretinPEMformat-/"
	       "f8ac48a294d941e18d0e5d85b3c8ea3f",
	       "sid");
	is_int(b.der_len, 812, "cer decoded to 812 bytes of DER");
	ok(b.der && b.der[0] == 0x30, "DER starts with a SEQUENCE");
	b64url_sha1(b.der, b.der_len, x5t);
	is_str(x5t, b.x5t, "x5t = base64url(SHA-1(cer))");
	ok(b.attrs.enabled, "enabled");
	is_int(b.attrs.nbf, 1658442315, "nbf");
	is_int(b.attrs.exp, 1689978915, "exp");
	is_int(b.attrs.created, 1658442915, "created");
	is_int(b.attrs.updated, 1658442915, "updated");
	ok(b.exportable, "exportable");
	is_str(b.content_type, "application/x-pem-file", "contentType");
	is_str(b.tags_json, "{}", "no tags");
	kvfs_cert_bundle_clear(&b);
	ok(b.der == NULL, "bundle cleared");

	r = parse_bundle_str(
		"{\"id\":\"https://v/certificates/c/0123\",\"cer\":\"MIIB\","
		"\"policy\":{\"key_props\":{\"exportable\":false}},"
		"\"tags\":{\"env\":\"prod\"},\"preserveCertOrder\":false}",
		&b);
	is_int(r, 0, "minimal bundle parses");
	ok(!b.exportable, "not exportable");
	ok(b.content_type == NULL, "no contentType");
	is_str(b.tags_json, "{\"env\":\"prod\"}", "tags");
	kvfs_cert_bundle_clear(&b);

	static const char *const malformed[] = {
		"{}",
		"{\"cer\":\"MIIB\"}",
		"{\"id\":\"https://v/certificates/c\",\"cer\":\"MIIB\"}",
		"{\"id\":\"https://v/certificates/c/"
		"pending\",\"cer\":\"MIIB\"}",
		"{\"id\":\"https://v/certificates/c/v/x\",\"cer\":\"MIIB\"}",
		"{\"id\":\"https://v/keys/c/v\",\"cer\":\"MIIB\"}",
		"{\"id\":\"https://v/certificates/c/v\"}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"\"}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MII\"}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MI-_\"}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MI IB\"}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":5}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MIIB\","
		"\"policy\":[]}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MIIB\","
		"\"policy\":{\"key_props\":{\"exportable\":\"yes\"}}}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MIIB\","
		"\"policy\":{\"secret_props\":{\"contentType\":1}}}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MIIB\","
		"\"attributes\":{\"updated\":true}}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MIIB\","
		"\"sid\":[]}",
		"{\"id\":\"https://v/certificates/c/v\",\"cer\":\"MIIB\"",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++) {
		memset(&b, 0, sizeof(b));
		r = parse_bundle_str(malformed[i], &b);
		is_int(r, -EBADMSG, "malformed bundle %zu refused", i);
		ok(b.id == NULL && b.der == NULL,
		   "malformed bundle %zu: nothing returned", i);
	}
}

static void test_errors(void)
{
	static const char rbac[] =
		"{\"error\":{\"code\":\"Forbidden\",\"message\":\"Caller is "
		"not "
		"authorized.\\r\\nCaller: appid=x\",\"innererror\":{\"code\":"
		"\"ForbiddenByRbac\"}}}";
	struct kvfs_error err;
	char *json;
	size_t len;

	kvfs_error_clear(&err);
	json = tap_slurp("vault-error-404.json", &len);
	kvfs_vault_parse_error(json, len, &err);
	is_str(err.code, "CertificateNotFound", "404 code");
	is_str(err.inner, "", "404 has no inner code");
	ok(strncmp(err.message, "A certificate with (name/id) ", 29) == 0,
	   "404 message");
	free(json);

	kvfs_error_clear(&err);
	json = tap_slurp("vault-error-403-disabled.json", &len);
	kvfs_vault_parse_error(json, len, &err);
	is_str(err.code, "Forbidden", "403 code");
	is_str(err.inner, "SecretDisabled", "403 inner code");
	free(json);

	kvfs_error_clear(&err);
	json = tap_slurp("vault-error-429.json", &len);
	kvfs_vault_parse_error(json, len, &err);
	is_str(err.code, "Throttled", "429 code");
	free(json);

	kvfs_error_clear(&err);
	kvfs_vault_parse_error(rbac, strlen(rbac), &err);
	is_str(err.inner, "ForbiddenByRbac", "RBAC inner code");
	is_str(err.message, "Caller is not authorized.",
	       "message cut at the first line");

	kvfs_error_clear(&err);
	kvfs_vault_parse_error("<html>502</html>", 16, &err);
	ok(!err.code[0] && !err.message[0], "non-JSON body leaves err alone");
	kvfs_vault_parse_error("{\"error\":\"x\"}", 13, &err);
	ok(!err.code[0], "OAuth-style body is not a Key Vault error");
	kvfs_vault_parse_error(NULL, 0, &err);
	ok(!err.code[0], "NULL body");
}

static void test_origin(void)
{
	static const struct {
		const char *a, *b;
		bool same;
	} cases[] = {
		{"https://v.vault.azure.net", "https://v.vault.azure.net/x",
		 true},
		{"https://v.vault.azure.net",
		 "https://v.vault.azure.net:443/certificates?a=b", true},
		{"https://V.Vault.Azure.NET", "HTTPS://v.vault.azure.net/",
		 true},
		{"https://127.0.0.1:8443", "https://127.0.0.1:8443/c?x", true},
		{"https://[::1]:8443", "https://[::1]:8443/c", true},
		{"https://v.vault.azure.net", "https://v.vault.azure.net:8443/",
		 false},
		{"https://v.vault.azure.net", "http://v.vault.azure.net/",
		 false},
		{"https://v.vault.azure.net", "http://v.vault.azure.net:443/",
		 false},
		{"https://v.vault.azure.net", "https://w.vault.azure.net/",
		 false},
		{"https://v.vault.azure.net", "https://v.vault.azure.net.evil/",
		 false},
		{"https://v.vault.azure.net", "https://v.vault.azure.net@evil/",
		 false},
		{"https://v.vault.azure.net",
		 "https://v.vault.azure.net:443@evil.example/", false},
		{"https://v.vault.azure.net", "https://evil@v.vault.azure.net/",
		 false},
		{"https://v.vault.azure.net",
		 "https://v.vault.azure.net\\@evil/", false},
		{"https://v.vault.azure.net", "https://v.vault.azure.net:/",
		 false},
		{"https://v.vault.azure.net",
		 "https://v.vault.azure.net:0443x/", false},
		{"https://v.vault.azure.net",
		 "https://v.vault.azure.net:99999/", false},
		{"https://v.vault.azure.net", "//v.vault.azure.net/", false},
		{"https://v.vault.azure.net", "/certificates?x", false},
		{"https://v.vault.azure.net", "ftp://v.vault.azure.net/",
		 false},
		{"https://v.vault.azure.net", "", false},
		{"https://v.vault.azure.net", NULL, false},
		{"https://127.0.0.1:8443", "https://localhost:8443/", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		ok(kvfs_url_same_origin(cases[i].a, cases[i].b) ==
			   cases[i].same,
		   "%s %s %s", cases[i].a, cases[i].same ? "==" : "!=",
		   cases[i].b ? cases[i].b : "(null)");
}

/* Listings of secrets and keys, in the shapes of their REST API
 * (SecretListResult, KeyListResult): parsed by the same code as the
 * certificates', keyed by the collection. */
static const struct kvfs_collection_info secrets = {.name = "secrets",
						    .noun = "secret"};
static const struct kvfs_collection_info keys = {.name = "keys", .noun = "key"};

static int parse_coll_str(const struct kvfs_collection_info *coll,
			  bool versions, const char *json,
			  struct kvfs_object_list *l, char **next)
{
	struct kvfs_error err = {0};

	*next = NULL;
	return kvfs_vault_parse_page(json, strlen(json), coll, versions, l,
				     next, &err);
}

static void test_collection_pages(void)
{
	struct kvfs_object_list l = {0};
	char *next;
	int r;

	static const char page[] =
		"{\"value\":["
		"{\"id\":\"https://v.vault.azure.net/secrets/db-password\","
		"\"attributes\":{\"enabled\":true,\"created\":1658442915,"
		"\"updated\":1658442916,"
		"\"recoveryLevel\":\"Recoverable+Purgeable\","
		"\"recoverableDays\":90},"
		"\"tags\":{\"env\":\"prod\"}},"
		"{\"contentType\":\"application/x-pem-file\","
		"\"id\":\"https://v.vault.azure.net/secrets/www\","
		"\"managed\":true,"
		"\"attributes\":{\"enabled\":true,\"nbf\":1658442315,"
		"\"exp\":1689978915,\"created\":1658442915,"
		"\"updated\":1658442915}},"
		"{\"contentType\":\"text/plain\","
		"\"id\":\"https://v.vault.azure.net/secrets/api-key\","
		"\"managed\":false,\"x5t\":\"ignored\","
		"\"attributes\":{\"enabled\":false}}],"
		"\"nextLink\":\"https://v.vault.azure.net:443/secrets"
		"?api-version=7.4&$skiptoken=abc&maxresults=25\"}";

	r = parse_coll_str(&secrets, false, page, &l, &next);
	is_int(r, 0, "a secrets page parses");
	is_int(l.n, 3, "three secrets");
	if (l.n == 3) {
		is_str(l.items[0].name, "db-password", "a secret's name");
		ok(l.items[0].version == NULL, "no version in the listing");
		ok(l.items[0].content_type == NULL, "no contentType: NULL");
		ok(!l.items[0].managed, "no managed: not managed");
		ok(l.items[0].attrs.enabled &&
			   l.items[0].attrs.created == 1658442915 &&
			   l.items[0].attrs.updated == 1658442916,
		   "its attributes");
		is_str(l.items[1].name, "www", "a certificate's secret");
		is_str(l.items[1].content_type, "application/x-pem-file",
		       "its contentType");
		ok(l.items[1].managed, "managed: it backs a certificate");
		is_int(l.items[1].attrs.exp, 1689978915, "its exp");
		is_str(l.items[2].content_type, "text/plain",
		       "an x5t does not take a secret's contentType's place");
		ok(!l.items[2].managed, "managed false");
		ok(!l.items[2].attrs.enabled, "disabled");
	}
	ok(next && strstr(next, "/secrets?"), "nextLink returned");
	free(next);
	kvfs_object_list_clear(&l);

	static const char kpage[] =
		"{\"value\":["
		"{\"kid\":\"https://v.vault.azure.net/keys/signing\","
		"\"attributes\":{\"enabled\":true,\"created\":1658442915,"
		"\"updated\":1658442917,"
		"\"recoveryLevel\":\"Recoverable+Purgeable\","
		"\"exportable\":false},"
		"\"tags\":{\"purpose\":\"jwt\"}},"
		"{\"kid\":\"https://v.vault.azure.net/keys/www\","
		"\"managed\":true,\"contentType\":\"ignored\","
		"\"attributes\":{\"enabled\":true,\"exp\":1689978915}}],"
		"\"nextLink\":null}";

	r = parse_coll_str(&keys, false, kpage, &l, &next);
	is_int(r, 0, "a keys page parses");
	is_int(l.n, 2, "two keys");
	if (l.n == 2) {
		is_str(l.items[0].name, "signing",
		       "a key's name, from its kid");
		ok(!l.items[0].managed, "not managed");
		ok(l.items[0].x5t == NULL, "a key keeps no string");
		is_int(l.items[0].attrs.updated, 1658442917, "its updated");
		is_str(l.items[1].name, "www", "a certificate's key");
		ok(l.items[1].managed, "managed");
		ok(l.items[1].content_type == NULL,
		   "a key's contentType: none");
	}
	ok(next == NULL, "nextLink null: the end");
	kvfs_object_list_clear(&l);

	r = parse_coll_str(&secrets, true,
			   "{\"value\":[{\"id\":\"https://v.vault.azure.net/"
			   "secrets/db/0a1b\",\"attributes\":{\"updated\":6}},"
			   "{\"id\":\"https://v.vault.azure.net/secrets/db/"
			   "pending\"},{\"id\":\"https://v.vault.azure.net/"
			   "secrets/db/a_b\"}]}",
			   &l, &next);
	is_int(r, 0, "a secret's versions page parses");
	ok(l.n == 1 && strcmp(l.items[0].version, "0a1b") == 0 &&
		   l.items[0].attrs.updated == 6,
	   "versions that cannot be paths are skipped, as a certificate's");
	kvfs_object_list_clear(&l);
	r = parse_coll_str(&keys, true,
			   "{\"value\":[{\"kid\":\"https://v.vault.azure.net/"
			   "keys/signing/0a1b\",\"managed\":false},{\"kid\":"
			   "\"https://v.vault.azure.net/keys/signing/0a1c\"}]}",
			   &l, &next);
	is_int(r, 0, "a key's versions page parses");
	ok(l.n == 2 && strcmp(l.items[1].name, "signing") == 0 &&
		   strcmp(l.items[1].version, "0a1c") == 0,
	   "its versions, from their kids");
	kvfs_object_list_clear(&l);

	/* Hostile names are kept for the caller to skip, as in the
	 * certificates listing. */
	r = parse_coll_str(&secrets, false,
			   "{\"value\":[{\"id\":\"https://v/secrets/..\"},"
			   "{\"id\":\"https://v/secrets/bad_name\"},"
			   "{\"id\":\"https://v/secrets/x/v1\"},"
			   "{\"id\":\"https://v/secrets/a%2Fb\"}]}",
			   &l, &next);
	is_int(r, 0, "secrets with invalid names are not fatal");
	is_int(l.n, 4, "they are kept");
	for (size_t i = 0; i < l.n; i++)
		ok(!kvfs_vault_object_name_valid(l.items[i].name),
		   "secret '%s' is not a valid name", l.items[i].name);
	kvfs_object_list_clear(&l);
	r = parse_coll_str(&keys, false,
			   "{\"value\":[{\"kid\":\"https://v/keys/..\"},"
			   "{\"kid\":\"https://v/keys/a%2Fb\"}]}",
			   &l, &next);
	ok(r == 0 && l.n == 2 &&
		   !kvfs_vault_object_name_valid(l.items[0].name) &&
		   !kvfs_vault_object_name_valid(l.items[1].name),
	   "keys with invalid names are kept, as they are");
	kvfs_object_list_clear(&l);

	static const struct {
		const struct kvfs_collection_info *coll;
		const char *json;
	} refused[] = {
		{&secrets,
		 "{\"value\":[{\"id\":\"https://v/certificates/x\"}]}"},
		{&secrets, "{\"value\":[{\"id\":\"https://v/keys/x\"}]}"},
		{&secrets, "{\"value\":[{\"kid\":\"https://v/secrets/x\"}]}"},
		{&secrets, "{\"value\":[{\"id\":\"https://v/Secrets/x\"}]}"},
		{&secrets, "{\"value\":[{\"id\":\"https://v/secrets/"
			   "x\",\"managed\":1}]}"},
		{&secrets, "{\"value\":[{\"id\":\"https://v/secrets/x\","
			   "\"contentType\":7}]}"},
		{&secrets, "{\"value\":[{\"id\":\"https://v/secrets/x\","
			   "\"tags\":{\"k\":1}}]}"},
		{&keys, "{\"value\":[{\"id\":\"https://v/keys/x\"}]}"},
		{&keys, "{\"value\":[{\"kid\":\"https://v/secrets/x\"}]}"},
		{&keys, "{\"value\":[{\"kid\":\"https://v/keys/x\","
			"\"managed\":\"true\"}]}"},
		{&keys, "{\"value\":[{\"kid\":\"https://v/keys/x\","
			"\"attributes\":{\"enabled\":\"yes\"}}]}"},
	};
	for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
		r = parse_coll_str(refused[i].coll, false, refused[i].json, &l,
				   &next);
		is_int(r, -EBADMSG, "%s page %zu refused",
		       refused[i].coll->name, i);
		is_int(l.n, 0, "%s page %zu: nothing appended",
		       refused[i].coll->name, i);
	}

	r = parse_page_str("{\"value\":[{\"id\":\"https://v/secrets/x\"}]}", &l,
			   &next);
	is_int(r, -EBADMSG, "a secret's id in a certificates listing refused");
	r = parse_page_str("{\"value\":[{\"id\":\"https://v/certificates/x\","
			   "\"managed\":\"yes\",\"contentType\":5}]}",
			   &l, &next);
	ok(r == 0 && l.n == 1 && l.items[0].x5t == NULL && !l.items[0].managed,
	   "a certificates listing reads neither managed nor contentType");
	kvfs_object_list_clear(&l);

	char ct[300];
	char json[400];

	memset(ct, 'a', sizeof(ct) - 1);
	ct[sizeof(ct) - 1] = '\0';
	snprintf(json, sizeof(json),
		 "{\"value\":[{\"id\":\"https://v/secrets/x\",\"contentType\":"
		 "\"%s\"}]}",
		 ct);
	is_int(parse_coll_str(&secrets, false, json, &l, &next), -EBADMSG,
	       "a contentType longer than 255 bytes is refused");
	ct[255] = '\0';
	snprintf(json, sizeof(json),
		 "{\"value\":[{\"id\":\"https://v/secrets/x\",\"contentType\":"
		 "\"%s\"}]}",
		 ct);
	is_int(parse_coll_str(&secrets, false, json, &l, &next), 0,
	       "one of 255 bytes is kept");
	ok(l.n == 1 && l.bytes == sizeof(l.items[0]) + 2 + 256,
	   "and counted against the listing's cap");
	kvfs_object_list_clear(&l);

	static const struct kvfs_collection_info unknown = {
		.name = "deletedcertificates", .noun = "deleted certificate"};
	is_int(parse_coll_str(&unknown, false, "{\"value\":[]}", &l, &next),
	       -EINVAL, "a collection without listing rules is refused");
	is_int(parse_coll_str(NULL, false, "{\"value\":[]}", &l, &next),
	       -EINVAL, "and so is none");
}

/* Hostile ids: the authority is skipped (an id names an object by its
 * path; its origin is never used), the path must start with the
 * collection's segment, exactly spelled, and hold no query or fragment;
 * a name that cannot be a path is handed back for the caller to skip. */
static void test_hostile_ids(void)
{
	static const struct {
		const char *id;
		int r;
		const char *name; /* NULL: none appended */
	} cases[] = {
		{"https://u:p@v.vault.azure.net/certificates/a", 0, "a"},
		{"https://v.vault.azure.net:443/certificates/a", 0, "a"},
		{"https://[::1]:8443/certificates/a", 0, "a"},
		{"HTTPS://v/certificates/a", 0, "a"},
		{"http://v/certificates/a", 0, "a"},
		{"https://v/certificates/a%2Fb", 0, "a%2Fb"},
		{"https://v/certificates/a?x=1", -EBADMSG, NULL},
		{"https://v/certificates/a#f", -EBADMSG, NULL},
		{"https://v/Certificates/a", -EBADMSG, NULL},
		{"https://v/%63ertificates/a", -EBADMSG, NULL},
		{"https://v/certificates%2Fa", -EBADMSG, NULL},
		{"https://v//certificates/a", -EBADMSG, NULL},
		{"https://v/x/certificates/a", -EBADMSG, NULL},
		{"https://v/certificates", -EBADMSG, NULL},
		{"https://v/certificatesx/a", -EBADMSG, NULL},
		{"v/certificates/a", -EBADMSG, NULL},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct kvfs_object_list l = {0};
		char json[256], *next;
		int r;

		snprintf(json, sizeof(json), "{\"value\":[{\"id\":\"%s\"}]}",
			 cases[i].id);
		r = parse_page_str(json, &l, &next);
		is_int(r, cases[i].r, "id '%s'", cases[i].id);
		if (cases[i].name)
			ok(l.n == 1 &&
				   strcmp(l.items[0].name, cases[i].name) == 0,
			   "names '%s'", cases[i].name);
		else
			is_int(l.n, 0, "and appends nothing");
		kvfs_object_list_clear(&l);
	}
}

static void test_names(void)
{
	char name[130];

	ok(kvfs_vault_object_name_valid("web-01"), "web-01");
	ok(kvfs_vault_object_name_valid("A"), "one letter");
	ok(!kvfs_vault_object_name_valid(""), "empty");
	ok(!kvfs_vault_object_name_valid(NULL), "NULL");
	ok(!kvfs_vault_object_name_valid(".."), "..");
	ok(!kvfs_vault_object_name_valid("a/b"), "slash");
	ok(!kvfs_vault_object_name_valid("a_b"), "underscore");
	ok(!kvfs_vault_object_name_valid("a b"), "space");
	memset(name, 'a', 127);
	name[127] = '\0';
	ok(kvfs_vault_object_name_valid(name), "127 characters");
	name[127] = 'a';
	name[128] = '\0';
	ok(!kvfs_vault_object_name_valid(name), "128 characters");
}

static void test_secret(void)
{
	struct kvfs_secret sec = {0};
	struct kvfs_object_list l = {0};
	struct kvfs_error err = {0};
	const struct kvfs_collection_info *certs =
		kvfs_collection_info(KVFS_COLLECTION_CERTIFICATES);
	char *next = NULL;
	size_t len;
	char *body;
	static const char pem[] =
		"{\"value\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n\","
		"\"contentType\":\"application/x-pem-file\","
		"\"id\":\"https://v.vault.azure.net/secrets/www/abc123\","
		"\"managed\":true,\"attributes\":{\"enabled\":true},"
		"\"kid\":\"https://v.vault.azure.net/keys/www/abc123\"}";
	static const char versions[] =
		"{\"value\":[{\"id\":\"https://v.vault.azure.net/certificates/"
		"mail/0a1b\",\"x5t\":\"abc\",\"attributes\":{\"enabled\":false,"
		"\"created\":5,\"updated\":6}},{\"id\":\"https://v.vault.azure."
		"net/certificates/mail/0a1c\"}],\"nextLink\":null}";

	is_int(kvfs_vault_parse_secret(pem, strlen(pem), &sec, &err), 0,
	       "a PEM secret parses");
	is_str(sec.content_type, "application/x-pem-file", "its contentType");
	is_str(sec.version, "abc123", "its version, from the id");
	ok(sec.value &&
		   strncmp(sec.value, "-----BEGIN PRIVATE KEY-----\n", 28) ==
			   0 &&
		   sec.value_len == strlen(sec.value),
	   "its value, JSON escapes undone");
	kvfs_secret_clear(&sec);
	ok(sec.value == NULL, "cleared");

	body = "{\"contentType\":\"application/x-pem-file\",\"id\":"
	       "\"https://v.vault.azure.net/secrets/www/abc\"}";
	is_int(kvfs_vault_parse_secret(body, strlen(body), &sec, &err),
	       -EBADMSG, "a secret without a value is refused");
	body = "{\"value\":\"x\",\"id\":\"https://v.vault.azure.net/"
	       "certificates/www/abc\"}";
	is_int(kvfs_vault_parse_secret(body, strlen(body), &sec, &err),
	       -EBADMSG, "a secret whose id is not a secret is refused");
	body = "{\"value\":\"x\",\"id\":\"https://v.vault.azure.net/"
	       "secrets/www\"}";
	is_int(kvfs_vault_parse_secret(body, strlen(body), &sec, &err),
	       -EBADMSG, "a secret id without a version is refused");
	body = "{\"value\":7,\"id\":\"https://v.vault.azure.net/"
	       "secrets/www/abc\"}";
	is_int(kvfs_vault_parse_secret(body, strlen(body), &sec, &err),
	       -EBADMSG, "a value that is not a string is refused");

	is_int(kvfs_vault_parse_page(versions, strlen(versions), certs, true,
				     &l, &next, &err),
	       0, "a versions page parses");
	is_int((int)l.n, 2, "two versions");
	is_str(l.items[0].name, "mail", "the certificate's name");
	is_str(l.items[0].version, "0a1b", "the first version");
	ok(!l.items[0].attrs.enabled && l.items[0].attrs.updated == 6,
	   "its attributes");
	ok(next == NULL, "no nextLink");
	kvfs_object_list_clear(&l);
	/* In a certificates listing, "mail/0a1b" is a name that cannot be a
	 * path: handed back for the cache to skip and log. */
	is_int(kvfs_vault_parse_page(versions, strlen(versions), certs, false,
				     &l, &next, &err),
	       0, "ids with a version in a certificates listing parse");
	ok(l.n == 2 && !kvfs_vault_object_name_valid(l.items[0].name),
	   "as names that cannot be paths");
	kvfs_object_list_clear(&l);

	body = tap_slurp("vault-error-403-disabled.json", &len);
	ok(body != NULL, "403 SecretDisabled fixture");
	memset(&err, 0, sizeof(err));
	err.http_status = 403;
	kvfs_vault_parse_error(body, len, &err);
	ok(kvfs_vault_error_secret_disabled(&err),
	   "SecretDisabled is told apart");
	snprintf(err.inner, sizeof(err.inner), "ForbiddenByRbac");
	ok(!kvfs_vault_error_secret_disabled(&err),
	   "ForbiddenByRbac is not SecretDisabled");
	free(body);
}

/* A secrets page of one item with n tags of values of len bytes. */
static char *tags_page(int n, size_t len)
{
	char *page = NULL, *v = malloc(len + 1);
	size_t size = 0;
	FILE *f = open_memstream(&page, &size);

	memset(v, 'v', len);
	v[len] = '\0';
	fprintf(f, "{\"value\":[{\"id\":\"https://v/secrets/x\",\"tags\":{");
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\"k%d\":\"%s\"", i ? "," : "", i, v);
	fprintf(f, "}}]}");
	fclose(f);
	free(v);
	return page;
}

/* Tags: kept on every collection's items, in the vault's order, counted
 * against the listing's cap; strings only; what is past the caps is read,
 * not kept. */
static void test_tags(void)
{
	static const struct kvfs_collection_info *const colls[] = {
		NULL, &secrets, &keys};
	static const char *const ids[] = {"id", "id", "kid"};
	struct kvfs_object_list l = {0};
	char json[4096], *next;
	int r;

	for (size_t c = 0; c < ELEMENTSOF(colls); c++) {
		const struct kvfs_collection_info *coll =
			colls[c] ? colls[c]
				 : kvfs_collection_info(
					   KVFS_COLLECTION_CERTIFICATES);
		static const char *const hostile[] = {
			"[]",
			"\"env=prod\"",
			"{\"k\":1}",
			"{\"k\":true}",
			"{\"k\":{}}",
			"{\"k\":[\"v\"]}",
			"{\"k\":\"a\\u0000b\"}",
			"{\"a\\u0000b\":\"v\"}",
			"{\"k\":\"v\",\"k\":\"w\"}",
		};

		snprintf(json, sizeof(json),
			 "{\"value\":[{\"%s\":\"https://v/%s/a\",\"tags\":{"
			 "\"zone\":\"b\",\"env\":\"prod\",\"empty\":\"\","
			 "\"\\u00e9t\\u00e9\":\"caf\\u00e9\"}},"
			 "{\"%s\":\"https://v/%s/b\"},"
			 "{\"%s\":\"https://v/%s/c\",\"tags\":{}},"
			 "{\"%s\":\"https://v/%s/d\",\"tags\":null}]}",
			 ids[c], coll->name, ids[c], coll->name, ids[c],
			 coll->name, ids[c], coll->name);
		r = parse_coll_str(coll, false, json, &l, &next);
		is_int(r, 0, "%s: a page with tags parses", coll->name);
		if (l.n == 4 && l.items[0].ntags == 4) {
			const struct kvfs_tag *t = l.items[0].tags;

			ok(strcmp(t[0].key, "zone") == 0 &&
				   strcmp(t[0].value, "b") == 0 &&
				   strcmp(t[1].key, "env") == 0 &&
				   strcmp(t[1].value, "prod") == 0,
			   "%s: tags in the vault's order", coll->name);
			is_str(t[2].value, "", "%s: an empty value",
			       coll->name);
			is_str(t[3].key, "\xc3\xa9t\xc3\xa9",
			       "%s: a UTF-8 name, escapes undone", coll->name);
			is_str(t[3].value, "caf\xc3\xa9", "%s: a UTF-8 value",
			       coll->name);
			is_str(l.items[0].tags_json,
			       "{\"empty\":\"\",\"env\":\"prod\",\"zone\":"
			       "\"b\","
			       "\"\xc3\xa9t\xc3\xa9\":\"caf\xc3\xa9\"}",
			       "%s: tags_json as a GET's: compact, sorted",
			       coll->name);
		} else {
			ok(0, "%s: four items, the first with four tags",
			   coll->name);
		}
		if (l.n == 4)
			ok(l.items[1].tags == NULL && l.items[1].ntags == 0 &&
				   l.items[2].tags == NULL &&
				   l.items[2].ntags == 0 &&
				   l.items[3].tags == NULL &&
				   l.items[3].ntags == 0 &&
				   !l.items[1].tags_json &&
				   !l.items[2].tags_json &&
				   !l.items[3].tags_json,
			   "%s: absent, empty and null tags: none", coll->name);
		kvfs_object_list_clear(&l);

		snprintf(json, sizeof(json),
			 "{\"value\":[{\"%s\":\"https://v/%s/x\","
			 "\"tags\":{\"k\":\"v\"}}]}",
			 ids[c], coll->name);
		r = parse_coll_str(coll, false, json, &l, &next);
		ok(r == 0 && l.n == 1 &&
			   l.bytes == sizeof(l.items[0]) + 2 +
					      sizeof(struct kvfs_tag) + 2 + 2 +
					      sizeof("{\"k\":\"v\"}"),
		   "%s: a tag is counted against the listing's cap (%zu)",
		   coll->name, l.bytes);
		kvfs_object_list_clear(&l);

		for (size_t i = 0; i < ELEMENTSOF(hostile); i++) {
			snprintf(json, sizeof(json),
				 "{\"value\":[{\"%s\":\"https://v/%s/ok\"},"
				 "{\"%s\":\"https://v/%s/x\",\"tags\":%s}]}",
				 ids[c], coll->name, ids[c], coll->name,
				 hostile[i]);
			r = parse_coll_str(coll, false, json, &l, &next);
			is_int(r, -EBADMSG, "%s: tags %s refused", coll->name,
			       hostile[i]);
			is_int(l.n, 0, "%s: and the page appends nothing",
			       coll->name);
		}
	}

	/* The caps: 64 tags of 1024-byte names and values. */
	{
		char *big;
		char v1024[1026];

		memset(v1024, 'v', 1025);
		v1024[1025] = '\0';
		big = tags_page(64, 1024);
		r = parse_coll_str(&secrets, false, big, &l, &next);
		ok(r == 0 && l.n == 1 && l.items[0].ntags == 64 &&
			   strlen(l.items[0].tags[63].value) == 1024,
		   "64 tags of 1024 bytes are kept");
		kvfs_object_list_clear(&l);
		free(big);
		big = tags_page(65, 1);
		r = parse_coll_str(&secrets, false, big, &l, &next);
		ok(r == 0 && l.n == 1 && l.items[0].ntags == 64 &&
			   strcmp(l.items[0].tags[63].key, "k63") == 0,
		   "of 65 tags, the first 64 are kept");
		kvfs_object_list_clear(&l);
		free(big);

		snprintf(json, sizeof(json),
			 "{\"value\":[{\"id\":\"https://v/secrets/x\","
			 "\"tags\":{\"a\":\"1\",\"k\":\"%s\",\"%s\":\"v\","
			 "\"z\":\"2\"}}]}",
			 v1024, v1024);
		r = parse_coll_str(&secrets, false, json, &l, &next);
		ok(r == 0 && l.n == 1 && l.items[0].ntags == 2 &&
			   strcmp(l.items[0].tags[0].key, "a") == 0 &&
			   strcmp(l.items[0].tags[1].key, "z") == 0,
		   "a value or a name of 1025 bytes is read, not kept");
		is_str(l.items[0].tags_json, "{\"a\":\"1\",\"z\":\"2\"}",
		       "tags_json: the tags kept");
		ok(l.bytes == sizeof(l.items[0]) + 2 +
				      2 * (sizeof(struct kvfs_tag) + 4) +
				      sizeof("{\"a\":\"1\",\"z\":\"2\"}"),
		   "nor counted (%zu)", l.bytes);
		kvfs_object_list_clear(&l);
		snprintf(json, sizeof(json),
			 "{\"value\":[{\"id\":\"https://v/secrets/x\","
			 "\"tags\":{\"k\":\"%s\"}}]}",
			 v1024);
		r = parse_coll_str(&secrets, false, json, &l, &next);
		ok(r == 0 && l.n == 1 && l.items[0].tags == NULL &&
			   l.items[0].ntags == 0,
		   "an item whose only tag is not kept has none");
		kvfs_object_list_clear(&l);
	}
}

static int parse_secret_str(const char *json, struct kvfs_secret *sec)
{
	struct kvfs_error err = {0};

	return kvfs_vault_parse_secret(json, strlen(json), sec, &err);
}

/* A standalone secret (SecretBundle): the GetSecret example of the REST
 * specification (azure-rest-api-specs, keyvault data-plane 7.4,
 * GetSecret-example.json), then values a file must keep byte for byte. */
static void test_secret_value(void)
{
	struct kvfs_secret sec = {0};
	struct kvfs_error err = {0};
	char *json, *big;
	size_t len;
	int r;

	json = tap_slurp("vault-secret-plain.json", &len);
	ok(json != NULL, "fixture vault-secret-plain.json");
	if (!json)
		return;
	r = kvfs_vault_parse_secret(json, len, &sec, &err);
	free(json);
	is_int(r, 0, "the specification's secret parses");
	if (r < 0)
		return;
	ok(sec.value_len == 13 && memcmp(sec.value, "mysecretvalue", 14) == 0,
	   "its value, exactly");
	is_str(sec.id,
	       "https://myvault.vault.azure.net/secrets/mysecretname/"
	       "4387e9f3d6e14c459867679a90fd0f79",
	       "its id");
	is_str(sec.name, "mysecretname", "its name");
	is_str(sec.version, "4387e9f3d6e14c459867679a90fd0f79", "its version");
	ok(sec.content_type == NULL, "no contentType");
	ok(sec.attrs.enabled && sec.attrs.created == 1493938410 &&
		   sec.attrs.updated == 1493938410 && sec.attrs.exp == 0,
	   "its attributes");
	ok(sec.tags == NULL && sec.ntags == 0 && !sec.managed,
	   "no tags, not managed");
	kvfs_secret_clear(&sec);
	ok(sec.value == NULL && sec.id == NULL, "cleared");

	static const struct {
		const char *json_value;
		const char *bytes;
		size_t len;
		const char *what;
	} values[] = {
		{"line\\n", "line\n", 5, "a trailing newline kept"},
		{"a\\u0000b", "a\0b", 3, "a NUL kept, and the bytes after it"},
		{"", "", 0, "an empty value"},
		{"\\r\\n\\t \\\"\\\\", "\r\n\t \"\\", 6, "escapes undone"},
		{"caf\\u00e9\\ud83d\\ude00", "caf\xc3\xa9\xf0\x9f\x98\x80", 9,
		 "UTF-8, surrogate pairs joined"},
	};
	for (size_t i = 0; i < ELEMENTSOF(values); i++) {
		char body[256];

		snprintf(body, sizeof(body),
			 "{\"value\":\"%s\",\"id\":\"https://v/secrets/s/1\"}",
			 values[i].json_value);
		r = parse_secret_str(body, &sec);
		ok(r == 0 && sec.value_len == values[i].len &&
			   memcmp(sec.value, values[i].bytes, values[i].len) ==
				   0 &&
			   sec.value[sec.value_len] == '\0',
		   "%s", values[i].what);
		kvfs_secret_clear(&sec);
	}

	/* Key Vault's maximum, 25 KB, and more: the parser keeps it all. */
	big = malloc(64 + 25600);
	len = (size_t)sprintf(big, "{\"id\":\"https://v/secrets/s/1\","
				   "\"value\":\"");
	memset(big + len, 'x', 25599);
	len += 25599;
	strcpy(big + len, "\\n\"}");
	r = parse_secret_str(big, &sec);
	ok(r == 0 && sec.value_len == 25600 && sec.value[25599] == '\n',
	   "a value of 25,600 bytes");
	kvfs_secret_clear(&sec);
	free(big);

	r = parse_secret_str("{\"value\":\"pw\",\"contentType\":\"text/plain\","
			     "\"id\":\"https://v/secrets/db/0a1b\","
			     "\"managed\":true,\"tags\":{\"env\":\"prod\"},"
			     "\"attributes\":{\"enabled\":false,\"nbf\":5,"
			     "\"exp\":6}}",
			     &sec);
	ok(r == 0 && strcmp(sec.content_type, "text/plain") == 0 &&
		   sec.managed && !sec.attrs.enabled && sec.attrs.nbf == 5 &&
		   sec.attrs.exp == 6 && sec.ntags == 1 &&
		   strcmp(sec.tags[0].key, "env") == 0 &&
		   strcmp(sec.tags[0].value, "prod") == 0,
	   "contentType, managed, attributes and tags");
	kvfs_secret_clear(&sec);

	static const char *const malformed[] = {
		"{\"id\":\"https://v/secrets/s/1\"}",
		"{\"value\":null,\"id\":\"https://v/secrets/s/1\"}",
		"{\"value\":[],\"id\":\"https://v/secrets/s/1\"}",
		"{\"value\":\"x\"}",
		"{\"value\":\"x\",\"id\":\"https://v/secrets/s\"}",
		"{\"value\":\"x\",\"id\":\"https://v/keys/s/1\"}",
		"{\"value\":\"x\",\"id\":\"https://v/secrets/s/1\","
		"\"tags\":{\"k\":1}}",
		"{\"value\":\"x\",\"id\":\"https://v/secrets/s/1\","
		"\"managed\":\"yes\"}",
		"{\"value\":\"x\",\"id\":\"https://v/secrets/s/1\","
		"\"contentType\":5}",
		"{\"value\":\"x\",\"id\":\"https://v/secrets/s/1\","
		"\"attributes\":{\"exp\":\"6\"}}",
		"{\"value\":\"x\",\"value\":\"y\",\"id\":\"https://v/secrets/s/"
		"1\"}",
	};
	for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
		memset(&sec, 0, sizeof(sec));
		is_int(parse_secret_str(malformed[i], &sec), -EBADMSG,
		       "malformed secret %zu refused", i);
		ok(sec.value == NULL && sec.id == NULL,
		   "malformed secret %zu: nothing returned", i);
	}
}

static int parse_key_str(const char *json, const char *origin,
			 struct kvfs_key_bundle *b, struct kvfs_error *err)
{
	kvfs_error_clear(err);
	return kvfs_vault_parse_key(json, strlen(json), origin, b, err);
}

/* Key bundles: an RSA key from the REST specification's GetKey example
 * (azure-rest-api-specs, keyvault data-plane 7.4, GetKey-example.json) and
 * an EC P-384 key as the service answered GET /keys/{name}/{version} in a
 * recording of the JavaScript SDK's tests (azure-sdk-for-js,
 * keyvault-keys/recordings/node/cryptographyclient_all_decrypts_happen_
 * remotely_ec_keys/recording_sign__signdata_and_verify__verifydata_using_
 * es384.js). */
static void test_key(void)
{
	struct kvfs_key_bundle b = {0};
	struct kvfs_error err = {0};
	char *json;
	size_t len;
	int r;

	json = tap_slurp("vault-key-rsa.json", &len);
	ok(json != NULL, "fixture vault-key-rsa.json");
	if (!json)
		return;
	r = kvfs_vault_parse_key(json, len, "https://myvault.vault.azure.net",
				 &b, &err);
	is_int(r, 0, "the specification's RSA key parses (%s)", err.message);
	if (r == 0) {
		is_str(b.id,
		       "https://myvault.vault.azure.net/keys/"
		       "CreateSoftKeyTest/78deebed173b48e48f55abf87ed4cf71",
		       "its kid");
		is_str(b.name, "CreateSoftKeyTest", "its name");
		is_str(b.version, "78deebed173b48e48f55abf87ed4cf71",
		       "its version");
		is_str(b.kty, "RSA", "kty");
		ok(b.crv == NULL && b.x == NULL && b.y == NULL,
		   "no EC members");
		is_str(b.e, "AQAB", "e");
		ok(b.n && strlen(b.n) == 342, "n, 256 bytes of base64url");
		ok(b.nkey_ops == 6 && strcmp(b.key_ops[0], "encrypt") == 0 &&
			   strcmp(b.key_ops[5], "unwrapKey") == 0 &&
			   b.key_ops[6] == NULL,
		   "key_ops in order, NULL-terminated");
		ok(b.ntags == 2 && strcmp(b.tags[1].key, "test name ") == 0,
		   "tags, spaces kept");
		ok(b.attrs.enabled && b.attrs.created == 1493942451,
		   "attributes");
		ok(!b.managed, "not managed");
		ok(b.jwk_json && b.jwk_len == strlen(b.jwk_json) &&
			   strncmp(b.jwk_json,
				   "{\"kid\":\"https://myvault.vault.azure."
				   "net/keys/CreateSoftKeyTest/"
				   "78deebed173b48e48f55abf87ed4cf71\","
				   "\"kty\":\"RSA\",\"key_ops\":[\"encrypt\","
				   "\"decrypt\",\"sign\",\"verify\","
				   "\"wrapKey\",\"unwrapKey\"],\"n\":\"2HJA",
				   157) == 0 &&
			   strcmp(b.jwk_json + b.jwk_len - 14,
				  "\",\"e\":\"AQAB\"}\n") == 0,
		   "public.jwk: the JWK compact, in the vault's order, and "
		   "a newline");
	}
	kvfs_key_bundle_clear(&b);
	ok(b.id == NULL && b.key_ops == NULL, "cleared");
	r = kvfs_vault_parse_key(json, len, "https://other.vault.azure.net", &b,
				 &err);
	is_int(r, -EBADMSG, "a kid of another origin is refused");
	ok(strstr(err.message, "origin") != NULL, "and says so (%s)",
	   err.message);
	free(json);

	json = tap_slurp("vault-key-ec.json", &len);
	ok(json != NULL, "fixture vault-key-ec.json");
	if (!json)
		return;
	r = kvfs_vault_parse_key(json, len, NULL, &b, &err);
	is_int(r, 0, "the service's EC key parses (%s)", err.message);
	if (r == 0) {
		const char *k = strstr(json, "{\"kid\""),
			   *end = strstr(json, "},\"attributes\"");

		is_str(b.name, "EC162542145924705124", "its name");
		is_str(b.kty, "EC", "kty");
		is_str(b.crv, "P-384", "crv");
		ok(b.x && b.y && strlen(b.x) == 64 && strlen(b.y) == 64,
		   "x and y, 48 bytes each");
		ok(b.n == NULL && b.e == NULL, "no RSA members");
		ok(b.nkey_ops == 2 && strcmp(b.key_ops[1], "verify") == 0,
		   "key_ops");
		ok(b.tags == NULL && b.ntags == 0, "no tags");
		ok(k && end && b.jwk_len == (size_t)(end - k) + 2 &&
			   memcmp(b.jwk_json, k, b.jwk_len - 1) == 0 &&
			   b.jwk_json[b.jwk_len - 1] == '\n',
		   "public.jwk: the vault's compact JWK byte for byte, and a "
		   "newline");
	}
	kvfs_key_bundle_clear(&b);
	free(json);

	r = parse_key_str("{\"key\":{\"kid\":\"https://v/keys/h/1\",\"kty\":"
			  "\"RSA-HSM\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
			  "\"managed\":true}",
			  NULL, &b, &err);
	ok(r == 0 && b.managed && b.nkey_ops == 0 && b.key_ops &&
		   b.key_ops[0] == NULL,
	   "RSA-HSM; managed; no key_ops: an empty list");
	kvfs_key_bundle_clear(&b);
	r = parse_key_str("{\"key\":{\"kid\":\"https://v/keys/h/1\",\"kty\":"
			  "\"EC-HSM\",\"crv\":\"P-256K\",\"x\":\"AA\",\"y\":"
			  "\"AA\"}}",
			  NULL, &b, &err);
	ok(r == 0 && strcmp(b.crv, "P-256K") == 0,
	   "EC-HSM: its members are jwk.c's to judge");
	kvfs_key_bundle_clear(&b);

	static const char *const unsupported[] = {"oct", "oct-HSM", "OKP",
						  "rsa", ""};
	for (size_t i = 0; i < ELEMENTSOF(unsupported); i++) {
		char body[256];

		snprintf(body, sizeof(body),
			 "{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":"
			 "\"%s\",\"k\":null}}",
			 unsupported[i]);
		is_int(parse_key_str(body, NULL, &b, &err), -EOPNOTSUPP,
		       "kty '%s' is unsupported (%s)", unsupported[i],
		       err.message);
	}

	static const char *const malformed[] = {
		"{}",
		"{\"key\":null}",
		"{\"key\":[]}",
		"{\"key\":{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/secrets/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1/x\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"n\":\"AQAB\","
		"\"e\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":5}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"e\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":7,\"e\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"EC\","
		"\"x\":\"AA\",\"y\":\"AA\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"EC\","
		"\"crv\":\"P-256\",\"x\":\"AA\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"EC\","
		"\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\",\"d\":\"AA\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\",\"key_ops\":\"sign\"}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\",\"key_ops\":[\"sign\",1]}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\",\"key_ops\":[\"a\\u0000b\"]}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\"},\"tags\":{\"k\":2}}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\"},\"managed\":1}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\"},\"attributes\":{\"enabled\":0}"
		"}",
		"{\"key\":{\"kid\":\"https://v/keys/s/1\",\"kty\":\"RSA\","
		"\"n\":\"AQAB\",\"e\":\"AQAB\"}",
	};
	for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
		memset(&b, 0, sizeof(b));
		is_int(parse_key_str(malformed[i], NULL, &b, &err), -EBADMSG,
		       "malformed key %zu refused (%s)", i, err.message);
		ok(b.id == NULL && b.jwk_json == NULL,
		   "malformed key %zu: nothing returned", i);
	}
}

/* 403s that mean "disabled", and those that do not. */
static void test_disabled(void)
{
	struct kvfs_error err;
	char *body;
	size_t len;

	kvfs_error_clear(&err);
	err.http_status = 403;
	body = tap_slurp("vault-error-403-key-disabled.json", &len);
	ok(body != NULL, "403 KeyDisabled fixture");
	kvfs_vault_parse_error(body, len, &err);
	free(body);
	is_str(err.inner, "KeyDisabled", "its inner code");
	ok(kvfs_vault_error_disabled(&err), "KeyDisabled is disabled");
	ok(!kvfs_vault_error_secret_disabled(&err),
	   "but not a disabled secret");

	kvfs_error_clear(&err);
	err.http_status = 403;
	body = tap_slurp("vault-error-403-disabled.json", &len);
	kvfs_vault_parse_error(body, len, &err);
	free(body);
	ok(kvfs_vault_error_disabled(&err) &&
		   kvfs_vault_error_secret_disabled(&err),
	   "SecretDisabled is both");
	err.http_status = 401;
	ok(!kvfs_vault_error_disabled(&err), "not without a 403");
	err.http_status = 403;
	snprintf(err.inner, sizeof(err.inner), "AccessDenied");
	ok(!kvfs_vault_error_disabled(&err), "AccessDenied is not");
	ok(!kvfs_vault_error_disabled(NULL), "NULL is not");
}

int main(void)
{
	test_secret();
	test_list_pages();
	test_list_details();
	test_list_caps();
	test_collection_pages();
	test_hostile_ids();
	test_bundle();
	test_errors();
	test_origin();
	test_names();
	test_tags();
	test_secret_value();
	test_key();
	test_disabled();
	return done_testing();
}
