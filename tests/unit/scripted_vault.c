/* The scripted vault of scripted_vault.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scripted_vault.h"

pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;

struct fake_cert vault_certs[FAKE_VAULT_MAX];
size_t vault_n;
const char *vault_x5t[FAKE_VAULT_MAX];
int64_t vault_exp[FAKE_VAULT_MAX];

int list_error;
unsigned list_delay_ms;
unsigned last_budget;
static int list_calls;

struct fake_cert vault_secrets[FAKE_VAULT_MAX];
size_t vault_secrets_n;
int list_error_of[KVFS_COLLECTION_COUNT_];
static int list_other_calls[KVFS_COLLECTION_COUNT_];

int get_error;
unsigned get_delay_ms;
bool get_garbage;
char last_get[128];
static int get_calls;

int secret_error;
unsigned secret_delay_ms;
bool secret_garbage;
static int secret_calls;

struct fake_version vault_versions[FAKE_VAULT_MAX];
size_t versions_n;
int versions_error;
static int versions_calls;

unsigned char *leaf_der;
size_t leaf_der_len;

/* The certificates named "keyed*": pki/rsa-leaf.der, and its secret. */
static unsigned char *keyed_der;
static size_t keyed_der_len;
static char *keyed_secret;
static size_t keyed_secret_len;

/* The listing of the collections but certificates: the names of
 * vault_secrets for the secrets, none for the others, or
 * list_error_of[coll]. */
static int list_other(enum kvfs_collection coll, struct kvfs_object_list *ret,
		      struct kvfs_error *err)
{
	struct kvfs_object_list l = {0};
	int fail;

	pthread_mutex_lock(&fake_lock);
	list_other_calls[coll]++;
	fail = list_error_of[coll];
	if (!fail && coll == KVFS_COLLECTION_SECRETS) {
		l.items = calloc(vault_secrets_n ? vault_secrets_n : 1,
				 sizeof(l.items[0]));
		for (size_t i = 0; i < vault_secrets_n; i++) {
			l.items[i].name = strdup(vault_secrets[i].name);
			l.items[i].attrs.enabled = true;
			l.items[i].attrs.updated = vault_secrets[i].updated;
		}
		l.n = vault_secrets_n;
	}
	pthread_mutex_unlock(&fake_lock);
	if (fail) {
		err->http_status = fail == -EACCES ? 403 : 503;
		snprintf(err->code, sizeof(err->code), "%s",
			 fail == -EACCES ? "Forbidden" : "ServiceUnavailable");
		if (fail == -EACCES)
			snprintf(err->inner, sizeof(err->inner),
				 "ForbiddenByRbac");
		kvfs_error_set_message(err, "scripted refusal");
		return fail;
	}
	*ret = l;
	return 0;
}

int __wrap_kvfs_vault_list_within(struct kvfs_vault *v,
				  enum kvfs_collection coll,
				  unsigned page_budget_s,
				  struct kvfs_object_list *ret,
				  struct kvfs_error *err)
{
	struct kvfs_object_list l = {0};
	unsigned delay;
	int fail;

	if ((unsigned)coll >= KVFS_COLLECTION_COUNT_)
		return -EINVAL;
	kvfs_error_clear(err);
	if (coll != KVFS_COLLECTION_CERTIFICATES)
		return list_other(coll, ret, err);
	pthread_mutex_lock(&fake_lock);
	list_calls++;
	last_budget = page_budget_s;
	delay = list_delay_ms;
	fail = list_error;
	if (!fail) {
		l.items = calloc(vault_n ? vault_n : 1, sizeof(l.items[0]));
		for (size_t i = 0; i < vault_n; i++) {
			l.items[i].name = strdup(vault_certs[i].name);
			l.items[i].attrs.enabled = true;
			l.items[i].attrs.created = 1000;
			l.items[i].attrs.updated = vault_certs[i].updated;
			l.items[i].attrs.exp = vault_exp[i];
			if (vault_x5t[i])
				l.items[i].x5t = strdup(vault_x5t[i]);
		}
		l.n = vault_n;
	}
	pthread_mutex_unlock(&fake_lock);
	if (delay)
		usleep(delay * 1000);
	if (fail) {
		kvfs_error_set_message(err, "scripted failure");
		return fail;
	}
	*ret = l;
	return 0;
}

int __wrap_kvfs_vault_get_certificate(struct kvfs_vault *v, const char *name,
				      const char *version,
				      struct kvfs_cert_bundle *ret,
				      struct kvfs_error *err)
{
	struct kvfs_cert_bundle b = {0};
	int64_t updated = 0, exp = 0;
	unsigned delay;
	int fail;
	bool garbage;

	kvfs_error_clear(err);
	pthread_mutex_lock(&fake_lock);
	get_calls++;
	snprintf(last_get, sizeof(last_get), "%s", name);
	delay = get_delay_ms;
	fail = get_error;
	garbage = get_garbage;
	for (size_t i = 0; i < vault_n; i++)
		if (strcmp(vault_certs[i].name, name) == 0) {
			updated = vault_certs[i].updated;
			exp = vault_exp[i];
		}
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
	b.attrs.exp = exp;
	b.exportable = true;
	if (strncmp(name, "keyed", 5) == 0) {
		b.sid = strdup("https://v.vault.azure.net/secrets/keyed/1");
		b.version = strdup("1");
		b.der = malloc(keyed_der_len);
		memcpy(b.der, keyed_der, keyed_der_len);
		b.der_len = keyed_der_len;
	} else if (garbage) {
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

int __wrap_kvfs_vault_get_secret(struct kvfs_vault *v, const char *sid,
				 struct kvfs_secret *ret,
				 struct kvfs_error *err)
{
	struct kvfs_secret s = {0};
	unsigned delay;
	int fail;
	bool garbage;

	kvfs_error_clear(err);
	pthread_mutex_lock(&fake_lock);
	secret_calls++;
	delay = secret_delay_ms;
	fail = secret_error;
	garbage = secret_garbage;
	pthread_mutex_unlock(&fake_lock);

	if (delay)
		usleep(delay * 1000);
	if (fail) {
		err->http_status = fail == -EACCES ? 403 : 503;
		if (fail == -EACCES)
			snprintf(err->inner, sizeof(err->inner),
				 "ForbiddenByRbac");
		return fail;
	}
	s.value = strdup(garbage ? "-----BEGIN NOTHING-----\n" : keyed_secret);
	s.value_len = strlen(s.value);
	s.content_type = strdup("application/x-pem-file");
	s.version = strdup("1");
	*ret = s;
	return 0;
}

int __wrap_kvfs_vault_list_versions_within(struct kvfs_vault *v,
					   enum kvfs_collection coll,
					   const char *name,
					   unsigned page_budget_s,
					   struct kvfs_object_list *ret,
					   struct kvfs_error *err)
{
	struct kvfs_object_list l = {0};
	int fail;

	if (coll != KVFS_COLLECTION_CERTIFICATES)
		return -EINVAL;

	kvfs_error_clear(err);
	pthread_mutex_lock(&fake_lock);
	versions_calls++;
	fail = versions_error;
	if (!fail) {
		l.items =
			calloc(versions_n ? versions_n : 1, sizeof(l.items[0]));
		for (size_t i = 0; i < versions_n; i++) {
			l.items[i].name = strdup(name);
			l.items[i].version = strdup(vault_versions[i].version);
			l.items[i].attrs.enabled = vault_versions[i].enabled;
			l.items[i].attrs.created = 1000;
			l.items[i].attrs.updated = vault_versions[i].updated;
		}
		l.n = versions_n;
	}
	pthread_mutex_unlock(&fake_lock);
	if (fail) {
		err->http_status = 503;
		kvfs_error_set_message(err, "scripted failure");
		return fail;
	}
	*ret = l;
	return 0;
}

int __wrap_kvfs_vault_list_versions(struct kvfs_vault *v,
				    enum kvfs_collection coll, const char *name,
				    struct kvfs_object_list *ret,
				    struct kvfs_error *err)
{
	return __wrap_kvfs_vault_list_versions_within(v, coll, name, 0, ret,
						      err);
}

/* Up to 64 KiB of a fixture into *buf (NUL-terminated); its length, 0
 * when it cannot be read. */
static size_t load(const char *path, unsigned char **buf)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	*buf = calloc(1, 65536);
	if (!f)
		return 0;
	n = fread(*buf, 1, 65535, f);
	fclose(f);
	return n;
}

bool load_leaf(void)
{
	leaf_der_len = load("pki-leaf.der", &leaf_der);
	keyed_der_len = load("pki/rsa-leaf.der", &keyed_der);
	keyed_secret_len =
		load("pki/rsa-secret.pem", (unsigned char **)&keyed_secret);
	return leaf_der_len > 0 && keyed_der_len > 0 && keyed_secret_len > 0;
}

void free_leaf(void)
{
	free(leaf_der);
	free(keyed_der);
	free(keyed_secret);
}

void set_vault(const struct fake_cert *certs, size_t n)
{
	pthread_mutex_lock(&fake_lock);
	memcpy(vault_certs, certs, n * sizeof(*certs));
	vault_n = n;
	memset(vault_x5t, 0, sizeof(vault_x5t));
	memset(vault_exp, 0, sizeof(vault_exp));
	pthread_mutex_unlock(&fake_lock);
}

static int count(const int *counter)
{
	int n;

	pthread_mutex_lock(&fake_lock);
	n = *counter;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

int list_count(void)
{
	return count(&list_calls);
}

int list_count_of(enum kvfs_collection coll)
{
	return coll == KVFS_COLLECTION_CERTIFICATES
		       ? list_count()
		       : count(&list_other_calls[coll]);
}

int calls(void)
{
	return count(&get_calls);
}

int secret_count(void)
{
	return count(&secret_calls);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int versions_count(void)
{
	return count(&versions_calls);
}
