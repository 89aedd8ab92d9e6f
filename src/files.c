/* The files of one object version: building a certificate's from its
 * bundle (pki.h does the DER), a secret's from its value, a key's from its
 * JWK (jwk.h), the references
 * that share them, the flag that says whether they are current, and the
 * certificate's secret state kept beside them.  Any thread: references and the
 * flag are atomic, and the rest is immutable once built (the secret state has
 * its own lock, certsecret.c). */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certsecret.h"
#include "files.h"
#include "jwk.h"
#include "log.h"
#include "metrics.h"
#include "pki.h"
#include "util.h"

/* A kvfs_files and what is kept with it. */
struct files {
	struct kvfs_files pub;
	int refs;
	int64_t fetched_ms; /* fetched_at on the monotonic clock */
	int current;	    /* atomic: the ready files of the latest slot */
	struct kvfs_certsecret secret;
};

static struct files *files_of(struct kvfs_files *f)
{
	return (struct files *)((char *)f - offsetof(struct files, pub));
}

static const struct files *files_of_const(const struct kvfs_files *f)
{
	return (const struct files *)((const char *)f -
				      offsetof(struct files, pub));
}

static void files_free(struct files *f)
{
	switch (f->pub.coll) {
	case KVFS_COLLECTION_CERTIFICATES:
		kvfs_cert_bundle_clear(&f->pub.bundle);
		free(f->pub.cert_pem);
		free(f->pub.subject);
		break;
	case KVFS_COLLECTION_SECRETS:
		kvfs_secret_clear(&f->pub.secret);
		break;
	case KVFS_COLLECTION_KEYS:
		kvfs_key_bundle_clear(&f->pub.key);
		free(f->pub.public_pem);
		free(f->pub.key_ops);
		break;
	case KVFS_COLLECTION_COUNT_:
		break;
	}
	kvfs_certsecret_clear(&f->secret);
	free(f);
}

/* New files of collection coll, referenced once, fetched now. */
static struct files *files_alloc(enum kvfs_collection coll)
{
	struct files *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->refs = 1;
	p->pub.coll = coll;
	p->pub.fetched_at = kvfs_wall_now();
	p->fetched_ms = kvfs_now_ms();
	return p;
}

int kvfs_files_new_cert(enum kvfs_collection coll,
			struct kvfs_cert_bundle *bundle,
			struct kvfs_files **ret)
{
	struct kvfs_files *f;
	struct files *p;
	int r;

	assert(coll == KVFS_COLLECTION_CERTIFICATES);
	p = files_alloc(coll);
	if (!p) {
		kvfs_cert_bundle_clear(bundle);
		return -ENOMEM;
	}
	f = &p->pub;
	f->bundle = TAKE_STRUCT(*bundle);

	r = kvfs_pki_der_to_pem(f->bundle.der, f->bundle.der_len, &f->cert_pem,
				&f->cert_pem_len);
	if (r == 0)
		r = kvfs_pki_cert_info(f->bundle.der, f->bundle.der_len,
				       &f->subject, f->sha256, f->x5t);
	if (r < 0) {
		log_warning("%s '%s': the vault's 'cer' is not a certificate",
			    kvfs_collection_info(coll)->noun,
			    f->bundle.name ? f->bundle.name : "?");
		files_free(p);
		return -EIO;
	}
	*ret = f;
	return 0;
}

int kvfs_files_new_secret(enum kvfs_collection coll, struct kvfs_secret *secret,
			  struct kvfs_files **ret)
{
	struct files *p;

	assert(coll == KVFS_COLLECTION_SECRETS);
	p = files_alloc(coll);
	if (!p) {
		kvfs_secret_clear(secret);
		return -ENOMEM;
	}
	p->pub.secret = TAKE_STRUCT(*secret);
	*ret = &p->pub;
	return 0;
}

/* key_ops as one line: "sign,verify". */
static char *key_ops_text(const struct kvfs_key_bundle *k)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < k->nkey_ops; i++)
		len += strlen(k->key_ops[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	*s = '\0';
	for (size_t i = 0; i < k->nkey_ops; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, k->key_ops[i]);
	}
	return s;
}

int kvfs_files_new_key(enum kvfs_collection coll, struct kvfs_key_bundle *key,
		       struct kvfs_files **ret)
{
	struct kvfs_error err;
	struct kvfs_files *f;
	struct files *p;
	int r;

	assert(coll == KVFS_COLLECTION_KEYS);
	p = files_alloc(coll);
	if (!p) {
		kvfs_key_bundle_clear(key);
		return -ENOMEM;
	}
	f = &p->pub;
	f->key = TAKE_STRUCT(*key);
	f->key_ops = key_ops_text(&f->key);
	if (!f->key_ops) {
		files_free(p);
		return -ENOMEM;
	}
	kvfs_error_clear(&err);
	r = kvfs_jwk_public_pem(&(struct kvfs_jwk){.kty = f->key.kty,
						   .n = f->key.n,
						   .e = f->key.e,
						   .crv = f->key.crv,
						   .x = f->key.x,
						   .y = f->key.y},
				&f->public_pem, &f->public_pem_len,
				&f->key_size, &err);
	if (r < 0) {
		char msg[512];

		if (r != -ENOMEM) {
			kvfs_error_describe(&err, msg, sizeof(msg));
			log_warning("key '%s': the vault's JWK is not a "
				    "public key: %s",
				    f->key.name ? f->key.name : "?", msg);
			r = -EIO;
		}
		files_free(p);
		return r;
	}
	*ret = f;
	return 0;
}

const char *kvfs_files_name(const struct kvfs_files *f)
{
	switch (f->coll) {
	case KVFS_COLLECTION_SECRETS:
		return f->secret.name;
	case KVFS_COLLECTION_KEYS:
		return f->key.name;
	case KVFS_COLLECTION_CERTIFICATES:
	case KVFS_COLLECTION_COUNT_:
		break;
	}
	return f->bundle.name;
}

const struct kvfs_object_attrs *kvfs_files_attrs(const struct kvfs_files *f)
{
	switch (f->coll) {
	case KVFS_COLLECTION_SECRETS:
		return &f->secret.attrs;
	case KVFS_COLLECTION_KEYS:
		return &f->key.attrs;
	case KVFS_COLLECTION_CERTIFICATES:
	case KVFS_COLLECTION_COUNT_:
		break;
	}
	return &f->bundle.attrs;
}

struct kvfs_files *kvfs_files_ref(struct kvfs_files *f)
{
	__atomic_add_fetch(&files_of(f)->refs, 1, __ATOMIC_RELAXED);
	return f;
}

void kvfs_files_unref(struct kvfs_files *f)
{
	if (f &&
	    __atomic_sub_fetch(&files_of(f)->refs, 1, __ATOMIC_ACQ_REL) == 0)
		files_free(files_of(f));
}

bool kvfs_files_current(const struct kvfs_files *f)
{
	return __atomic_load_n(&files_of_const(f)->current, __ATOMIC_ACQUIRE);
}

void kvfs_files_set_current(struct kvfs_files *f, bool current)
{
	__atomic_store_n(&files_of(f)->current, current, __ATOMIC_RELEASE);
}

int64_t kvfs_files_fetched_ms(const struct kvfs_files *f)
{
	return files_of_const(f)->fetched_ms;
}

struct kvfs_certsecret *kvfs_files_certsecret(struct kvfs_files *f)
{
	return &files_of(f)->secret;
}

void kvfs_files_fetch_failed(const struct kvfs_error *err, const char *fmt, ...)
{
	char what[320], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	kvfs_error_describe(err, msg, sizeof(msg));
	if (err->not_sent) {
		log_debug("%s: %s", what, msg);
		return;
	}
	log_warning_ratelimited("%s: %s", what, msg);
	kvfs_metrics_error("%s: %s", what, msg);
}
