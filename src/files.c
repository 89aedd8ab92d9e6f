/* The files of one object version: building a certificate's from its
 * bundle (pki.h does the DER), a secret's from its value, a key's from its
 * JWK (jwk.h), or any collection's from what a test made; the index of
 * their header, bytes and metadata every reader goes through; the
 * references that share them, the flag that says whether they are current,
 * and the certificate's secret state kept beside them.  Any thread:
 * references, the flag and the hidden size are atomic, and the rest is
 * immutable once built (the secret state has its own lock,
 * certsecret.c). */
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

/* A version's files: the index readers see, and what it points into. */
struct kvfs_files {
	struct kvfs_files_header h;
	struct kvfs_files_span bytes[KVFS_FILE_COUNT_];
	const char *meta[KVFS_META_COUNT_];

	int refs;
	int64_t fetched_ms; /* fetched_at on the monotonic clock */
	int current;	    /* atomic: the ready files of the latest slot */
	int64_t size_hidden_until; /* atomic, kvfs_now_ms() */
	struct kvfs_certsecret certsecret;

	/* kvfs_files_new_made(): every copy, in one wiped allocation. */
	char *made;
	size_t made_len;
	/* Otherwise the part of h.coll, from the vault's answer. */
	union {
		/* The version's bundle and what its DER makes. */
		struct {
			struct kvfs_cert_bundle bundle;
			char *pem;
			size_t pem_len;
			char *subject;	 /* RFC 2253 */
			char sha256[65]; /* lower-case hex of the DER */
			char x5t[28];	 /* base64url SHA-1 of the DER */
		} cert;
		/* The version's secret; its value is wiped when the files
		 * go. */
		struct kvfs_secret secret;
		/* The version's public half. */
		struct {
			struct kvfs_key_bundle bundle;
			char *public_pem; /* SubjectPublicKeyInfo PEM */
			size_t public_pem_len;
			char *key_ops;	   /* comma-separated */
			char key_size[12]; /* bits, decimal */
		} key;
	};
};

static void files_free(struct kvfs_files *f)
{
	if (f->made) {
		kvfs_secure_free(f->made, f->made_len);
	} else {
		switch (f->h.coll) {
		case KVFS_COLLECTION_CERTIFICATES:
			kvfs_cert_bundle_clear(&f->cert.bundle);
			free(f->cert.pem);
			free(f->cert.subject);
			break;
		case KVFS_COLLECTION_SECRETS:
			kvfs_secret_clear(&f->secret);
			break;
		case KVFS_COLLECTION_KEYS:
			kvfs_key_bundle_clear(&f->key.bundle);
			free(f->key.public_pem);
			free(f->key.key_ops);
			break;
		case KVFS_COLLECTION_COUNT_:
			break;
		}
	}
	kvfs_certsecret_clear(&f->certsecret);
	free(f);
}

/* New files of collection coll, referenced once, fetched now. */
static struct kvfs_files *files_alloc(enum kvfs_collection coll)
{
	struct kvfs_files *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->refs = 1;
	f->h.coll = coll;
	f->h.fetched_at = kvfs_wall_now();
	f->fetched_ms = kvfs_now_ms();
	return f;
}

static void set_bytes(struct kvfs_files *f, enum kvfs_file_kind k,
		      const void *data, size_t len)
{
	f->bytes[k].data = data;
	f->bytes[k].len = len;
}

/* The header of f from the part's common members. */
static void set_header(struct kvfs_files *f, const char *name, const char *id,
		       const char *version, const char *tags_json,
		       const struct kvfs_object_attrs *attrs)
{
	f->h.name = name;
	f->h.id = id;
	f->h.version = version;
	f->h.tags_json = tags_json;
	f->h.attrs = *attrs;
}

int kvfs_files_new_cert(enum kvfs_collection coll,
			struct kvfs_cert_bundle *bundle,
			struct kvfs_files **ret)
{
	struct kvfs_cert_bundle *b;
	struct kvfs_files *f;
	int r;

	assert(coll == KVFS_COLLECTION_CERTIFICATES);
	f = files_alloc(coll);
	if (!f) {
		kvfs_cert_bundle_clear(bundle);
		return -ENOMEM;
	}
	b = &f->cert.bundle;
	*b = TAKE_STRUCT(*bundle);

	r = kvfs_pki_der_to_pem(b->der, b->der_len, &f->cert.pem,
				&f->cert.pem_len);
	if (r == 0)
		r = kvfs_pki_cert_info(b->der, b->der_len, &f->cert.subject,
				       f->cert.sha256, f->cert.x5t);
	if (r < 0) {
		log_warning("%s '%s': the vault's 'cer' is not a certificate",
			    kvfs_collection_info(coll)->noun,
			    b->name ? b->name : "?");
		files_free(f);
		return -EIO;
	}
	set_header(f, b->name, b->id, b->version, b->tags_json, &b->attrs);
	f->h.exportable = b->exportable;
	set_bytes(f, KVFS_FILE_CERT_PEM, f->cert.pem, f->cert.pem_len);
	set_bytes(f, KVFS_FILE_CERT_DER, b->der, b->der_len);
	f->meta[KVFS_META_X5T] = f->cert.x5t;
	f->meta[KVFS_META_SHA256] = f->cert.sha256;
	f->meta[KVFS_META_SUBJECT] = f->cert.subject;
	*ret = f;
	return 0;
}

int kvfs_files_new_secret(enum kvfs_collection coll, struct kvfs_secret *secret,
			  struct kvfs_files **ret)
{
	struct kvfs_secret *s;
	struct kvfs_files *f;

	assert(coll == KVFS_COLLECTION_SECRETS);
	f = files_alloc(coll);
	if (!f) {
		kvfs_secret_clear(secret);
		return -ENOMEM;
	}
	s = &f->secret;
	*s = TAKE_STRUCT(*secret);
	set_header(f, s->name, s->id, s->version, s->tags_json, &s->attrs);
	set_bytes(f, KVFS_FILE_SECRET_VALUE, s->value, s->value_len);
	f->meta[KVFS_META_CONTENT_TYPE] = s->content_type;
	*ret = f;
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
	struct kvfs_key_bundle *k;
	struct kvfs_error err;
	struct kvfs_files *f;
	unsigned bits;
	int r;

	assert(coll == KVFS_COLLECTION_KEYS);
	f = files_alloc(coll);
	if (!f) {
		kvfs_key_bundle_clear(key);
		return -ENOMEM;
	}
	k = &f->key.bundle;
	*k = TAKE_STRUCT(*key);
	f->key.key_ops = key_ops_text(k);
	if (!f->key.key_ops) {
		files_free(f);
		return -ENOMEM;
	}
	kvfs_error_clear(&err);
	r = kvfs_jwk_public_pem(&(struct kvfs_jwk){.kty = k->kty,
						   .n = k->n,
						   .e = k->e,
						   .crv = k->crv,
						   .x = k->x,
						   .y = k->y},
				&f->key.public_pem, &f->key.public_pem_len,
				&bits, &err);
	if (r < 0) {
		char msg[512];

		if (r != -ENOMEM) {
			kvfs_error_describe(&err, msg, sizeof(msg));
			log_warning("key '%s': the vault's JWK is not a "
				    "public key: %s",
				    k->name ? k->name : "?", msg);
			r = -EIO;
		}
		files_free(f);
		return r;
	}
	snprintf(f->key.key_size, sizeof(f->key.key_size), "%u", bits);
	set_header(f, k->name, k->id, k->version, k->tags_json, &k->attrs);
	set_bytes(f, KVFS_FILE_PUBLIC_PEM, f->key.public_pem,
		  f->key.public_pem_len);
	set_bytes(f, KVFS_FILE_PUBLIC_JWK, k->jwk_json, k->jwk_len);
	f->meta[KVFS_META_KTY] = k->kty;
	f->meta[KVFS_META_CRV] = k->crv;
	f->meta[KVFS_META_KEY_OPS] = f->key.key_ops;
	f->meta[KVFS_META_KEY_SIZE] = f->key.key_size;
	*ret = f;
	return 0;
}

/* Copy len bytes of src to *pos, NUL-terminated, and move *pos past them;
 * NULL stays NULL. */
static const char *made_put(char **pos, const void *src, size_t len)
{
	char *p = *pos;

	if (!src)
		return NULL;
	memcpy(p, src, len);
	p[len] = '\0';
	*pos = p + len + 1;
	return p;
}

static size_t made_len(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *made_str(char **pos, const char *s)
{
	return made_put(pos, s, s ? strlen(s) : 0);
}

int kvfs_files_new_made(const struct kvfs_files_made *m,
			struct kvfs_files **ret)
{
	const struct kvfs_files_header *mh = &m->header;
	struct kvfs_files *f;
	size_t len;
	char *pos;

	len = made_len(mh->name) + made_len(mh->id) + made_len(mh->version) +
	      made_len(mh->tags_json);
	for (size_t k = 0; k < KVFS_FILE_COUNT_; k++)
		len += m->bytes[k].data ? m->bytes[k].len + 1 : 0;
	for (size_t i = 0; i < KVFS_META_COUNT_; i++)
		len += made_len(m->meta[i]);

	f = files_alloc(mh->coll);
	if (!f)
		return -ENOMEM;
	f->made = malloc(len + 1);
	if (!f->made) {
		files_free(f);
		return -ENOMEM;
	}
	f->made_len = len + 1;
	pos = f->made;
	f->h.name = made_str(&pos, mh->name);
	f->h.id = made_str(&pos, mh->id);
	f->h.version = made_str(&pos, mh->version);
	f->h.tags_json = made_str(&pos, mh->tags_json);
	f->h.attrs = mh->attrs;
	f->h.exportable = mh->exportable;
	for (size_t k = 0; k < KVFS_FILE_COUNT_; k++)
		set_bytes(f, (enum kvfs_file_kind)k,
			  made_put(&pos, m->bytes[k].data, m->bytes[k].len),
			  m->bytes[k].len);
	for (size_t i = 0; i < KVFS_META_COUNT_; i++)
		f->meta[i] = made_str(&pos, m->meta[i]);
	*ret = f;
	return 0;
}

const struct kvfs_files_header *kvfs_files_header(const struct kvfs_files *f)
{
	return &f->h;
}

const char *kvfs_files_name(const struct kvfs_files *f)
{
	return f->h.name;
}

const struct kvfs_object_attrs *kvfs_files_attrs(const struct kvfs_files *f)
{
	return &f->h.attrs;
}

int kvfs_files_bytes(const struct kvfs_files *f, enum kvfs_file_kind k,
		     const void **ret_data, size_t *ret_len)
{
	if ((size_t)k >= KVFS_FILE_COUNT_ || !f->bytes[k].data)
		return -ENOENT;
	*ret_data = f->bytes[k].data;
	*ret_len = f->bytes[k].len;
	return 0;
}

const char *kvfs_files_meta(const struct kvfs_files *f, enum kvfs_files_meta m)
{
	return (size_t)m < KVFS_META_COUNT_ ? f->meta[m] : NULL;
}

const struct kvfs_cert_bundle *
kvfs_files_cert_bundle(const struct kvfs_files *f)
{
	if (f->made || f->h.coll != KVFS_COLLECTION_CERTIFICATES)
		return NULL;
	return &f->cert.bundle;
}

void kvfs_files_hide_size(struct kvfs_files *f, int64_t until_ms)
{
	__atomic_store_n(&f->size_hidden_until, until_ms, __ATOMIC_SEQ_CST);
}

int64_t kvfs_files_size_hidden_until(const struct kvfs_files *f)
{
	return __atomic_load_n(&f->size_hidden_until, __ATOMIC_SEQ_CST);
}

struct kvfs_files *kvfs_files_ref(struct kvfs_files *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	return f;
}

void kvfs_files_unref(struct kvfs_files *f)
{
	if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
		files_free(f);
}

bool kvfs_files_current(const struct kvfs_files *f)
{
	return __atomic_load_n(&f->current, __ATOMIC_ACQUIRE);
}

void kvfs_files_set_current(struct kvfs_files *f, bool current)
{
	__atomic_store_n(&f->current, current, __ATOMIC_RELEASE);
}

int64_t kvfs_files_fetched_ms(const struct kvfs_files *f)
{
	return f->fetched_ms;
}

struct kvfs_certsecret *kvfs_files_certsecret(struct kvfs_files *f)
{
	return &f->certsecret;
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
