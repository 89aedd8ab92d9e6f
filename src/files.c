/* The files of one object version: building a certificate's from its
 * bundle (pki.h checks the DER; cert.pem is rendered from it when read), a
 * secret's from its value, a key's from its JWK (jwk.h), or any
 * collection's from what a test made; the header,
 * bytes and metadata every reader goes through, found in the collection's
 * part when asked (no stored index: memory per cached version); the
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

/* Files as kvfs_files_new_made() copied them: the index and, after it,
 * every copy, in one wiped allocation of len bytes. */
struct files_made {
	size_t len;
	struct kvfs_files_header h;
	struct kvfs_files_span bytes[KVFS_FILE_COUNT_];
	const char *meta[KVFS_META_COUNT_];
	char data[];
};

/* A version's files: what the vault answered and what it makes, indexed
 * on demand by the accessors below (a stored index would cost every
 * cached version a table). */
struct kvfs_files {
	enum kvfs_collection coll;
	int refs;
	int current;	    /* atomic: the ready files of the latest slot */
	int64_t fetched_ms; /* kvfs_now_ms() of the GET */
	int64_t size_hidden_until; /* atomic, kvfs_now_ms() */
	/* A certificate's secret state, made when first asked for: most
	 * cached versions never have their secret read. */
	struct kvfs_certsecret *certsecret;

	struct files_made *made; /* kvfs_files_new_made(); else the part */
	/* The part of coll, from the vault's answer. */
	union {
		/* The version's bundle and what its DER makes. */
		struct {
			struct kvfs_cert_bundle bundle;
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
		kvfs_secure_free(f->made, f->made->len);
	} else {
		switch (f->coll) {
		case KVFS_COLLECTION_CERTIFICATES:
			kvfs_cert_bundle_clear(&f->cert.bundle);
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
	kvfs_certsecret_free(f->certsecret);
	free(f);
}

/* Free a string of the vault's answer that the files do not keep: memory
 * per cached version. */
static void drop(char **s)
{
	free(*s);
	*s = NULL;
}

/* New files of collection coll, referenced once, fetched now. */
static struct kvfs_files *files_alloc(enum kvfs_collection coll)
{
	struct kvfs_files *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->refs = 1;
	f->coll = coll;
	f->fetched_ms = kvfs_now_ms();
	return f;
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
	drop(&b->tags_json);
	drop(&b->x5t);

	/* cert.pem is not kept: it is rendered from the DER as it is read
	 * (kvfs_files_span_read()). */
	r = kvfs_pki_cert_info(b->der, b->der_len, &f->cert.subject,
			       f->cert.sha256, f->cert.x5t);
	if (r < 0) {
		log_warning("%s '%s': the vault's 'cer' is not a certificate",
			    kvfs_collection_info(coll)->noun,
			    b->name ? b->name : "?");
		files_free(f);
		return -EIO;
	}
	*ret = f;
	return 0;
}

int kvfs_files_new_secret(enum kvfs_collection coll, struct kvfs_secret *secret,
			  struct kvfs_files **ret)
{
	struct kvfs_files *f;

	assert(coll == KVFS_COLLECTION_SECRETS);
	f = files_alloc(coll);
	if (!f) {
		kvfs_secret_clear(secret);
		return -ENOMEM;
	}
	f->secret = TAKE_STRUCT(*secret);
	drop(&f->secret.tags_json);
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
	drop(&k->tags_json);
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
	struct files_made *made;
	struct kvfs_files *f;
	size_t len;
	char *pos;

	len = made_len(mh->name) + made_len(mh->id) + made_len(mh->version);
	for (size_t k = 0; k < KVFS_FILE_COUNT_; k++)
		len += m->bytes[k].data ? m->bytes[k].len + 1 : 0;
	for (size_t i = 0; i < KVFS_META_COUNT_; i++)
		len += made_len(m->meta[i]);
	len += sizeof(*made);

	f = files_alloc(mh->coll);
	if (!f)
		return -ENOMEM;
	made = calloc(1, len);
	if (!made) {
		files_free(f);
		return -ENOMEM;
	}
	made->len = len;
	f->made = made;
	pos = made->data;
	made->h = *mh;
	made->h.name = made_str(&pos, mh->name);
	made->h.id = made_str(&pos, mh->id);
	made->h.version = made_str(&pos, mh->version);
	for (size_t k = 0; k < KVFS_FILE_COUNT_; k++) {
		made->bytes[k].data =
			made_put(&pos, m->bytes[k].data, m->bytes[k].len);
		made->bytes[k].len = m->bytes[k].len;
		made->bytes[k].pem = m->bytes[k].pem;
	}
	for (size_t i = 0; i < KVFS_META_COUNT_; i++)
		made->meta[i] = made_str(&pos, m->meta[i]);
	*ret = f;
	return 0;
}

const struct kvfs_object_attrs *kvfs_files_attrs(const struct kvfs_files *f)
{
	static const struct kvfs_object_attrs none;

	if (f->made)
		return &f->made->h.attrs;
	switch (f->coll) {
	case KVFS_COLLECTION_CERTIFICATES:
		return &f->cert.bundle.attrs;
	case KVFS_COLLECTION_SECRETS:
		return &f->secret.attrs;
	case KVFS_COLLECTION_KEYS:
		return &f->key.bundle.attrs;
	case KVFS_COLLECTION_COUNT_:
		break;
	}
	return &none;
}

struct kvfs_files_header kvfs_files_header(const struct kvfs_files *f)
{
	struct kvfs_files_header h = {.coll = f->coll,
				      .attrs = *kvfs_files_attrs(f)};

	if (f->made)
		return f->made->h;
	switch (f->coll) {
	case KVFS_COLLECTION_CERTIFICATES:
		h.name = f->cert.bundle.name;
		h.id = f->cert.bundle.id;
		h.version = f->cert.bundle.version;
		h.exportable = f->cert.bundle.exportable;
		break;
	case KVFS_COLLECTION_SECRETS:
		h.name = f->secret.name;
		h.id = f->secret.id;
		h.version = f->secret.version;
		break;
	case KVFS_COLLECTION_KEYS:
		h.name = f->key.bundle.name;
		h.id = f->key.bundle.id;
		h.version = f->key.bundle.version;
		break;
	case KVFS_COLLECTION_COUNT_:
		break;
	}
	return h;
}

const char *kvfs_files_name(const struct kvfs_files *f)
{
	return kvfs_files_header(f).name;
}

size_t kvfs_files_span_size(const struct kvfs_files_span *s)
{
	return s->pem ? kvfs_pki_pem_len(s->len) : s->len;
}

size_t kvfs_files_span_read(const struct kvfs_files_span *s, size_t off,
			    void *buf, size_t size)
{
	if (s->pem)
		return kvfs_pki_pem_read(s->data, s->len, off, buf, size);
	if (off >= s->len)
		return 0;
	if (size > s->len - off)
		size = s->len - off;
	memcpy(buf, (const char *)s->data + off, size);
	return size;
}

/* Bytes of a file: set *ret and say true when data is there. */
static bool span(const void *data, size_t len, struct kvfs_files_span *ret)
{
	ret->data = data;
	ret->len = len;
	return data != NULL;
}

int kvfs_files_bytes(const struct kvfs_files *f, enum kvfs_file_kind k,
		     struct kvfs_files_span *ret)
{
	struct kvfs_files_span s = {0};
	bool found = false;

	if ((size_t)k >= KVFS_FILE_COUNT_)
		return -ENOENT;
	if (f->made) {
		found = span(f->made->bytes[k].data, f->made->bytes[k].len, &s);
		s.pem = f->made->bytes[k].pem;
	} else if (f->coll == KVFS_COLLECTION_CERTIFICATES) {
		/* Both files from the DER. */
		s.pem = k == KVFS_FILE_CERT_PEM;
		if (k == KVFS_FILE_CERT_PEM || k == KVFS_FILE_CERT_DER)
			found = span(f->cert.bundle.der, f->cert.bundle.der_len,
				     &s);
	} else if (f->coll == KVFS_COLLECTION_SECRETS) {
		if (k == KVFS_FILE_SECRET_VALUE)
			found = span(f->secret.value, f->secret.value_len, &s);
	} else if (f->coll == KVFS_COLLECTION_KEYS) {
		if (k == KVFS_FILE_PUBLIC_PEM)
			found = span(f->key.public_pem, f->key.public_pem_len,
				     &s);
		else if (k == KVFS_FILE_PUBLIC_JWK)
			found = span(f->key.bundle.jwk_json,
				     f->key.bundle.jwk_len, &s);
	}
	if (!found)
		return -ENOENT;
	*ret = s;
	return 0;
}

const char *kvfs_files_meta(const struct kvfs_files *f, enum kvfs_files_meta m)
{
	if ((size_t)m >= KVFS_META_COUNT_)
		return NULL;
	if (f->made)
		return f->made->meta[m];
	switch (m) {
	case KVFS_META_X5T:
		return f->coll == KVFS_COLLECTION_CERTIFICATES ? f->cert.x5t
							       : NULL;
	case KVFS_META_SHA256:
		return f->coll == KVFS_COLLECTION_CERTIFICATES ? f->cert.sha256
							       : NULL;
	case KVFS_META_SUBJECT:
		return f->coll == KVFS_COLLECTION_CERTIFICATES ? f->cert.subject
							       : NULL;
	case KVFS_META_CONTENT_TYPE:
		return f->coll == KVFS_COLLECTION_SECRETS
			       ? f->secret.content_type
			       : NULL;
	case KVFS_META_KTY:
		return f->coll == KVFS_COLLECTION_KEYS ? f->key.bundle.kty
						       : NULL;
	case KVFS_META_CRV:
		return f->coll == KVFS_COLLECTION_KEYS ? f->key.bundle.crv
						       : NULL;
	case KVFS_META_KEY_OPS:
		return f->coll == KVFS_COLLECTION_KEYS ? f->key.key_ops : NULL;
	case KVFS_META_KEY_SIZE:
		return f->coll == KVFS_COLLECTION_KEYS ? f->key.key_size : NULL;
	case KVFS_META_COUNT_:
		break;
	}
	return NULL;
}

const struct kvfs_cert_bundle *
kvfs_files_cert_bundle(const struct kvfs_files *f)
{
	if (f->made || f->coll != KVFS_COLLECTION_CERTIFICATES)
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

struct kvfs_certsecret **kvfs_files_certsecret(struct kvfs_files *f)
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
