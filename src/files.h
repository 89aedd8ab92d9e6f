/* The files of one object version, as the tree shows them: built once from
 * what the vault returned for that version, immutable once published (but
 * for the size the kernel may hold, kvfs_files_hide_size()), shared by
 * reference.  An open file holds a reference, so its bytes never change,
 * whatever the cache does after.  A kvfs_files never mixes versions: a
 * rotation makes a new one.  Opaque: what every collection has is its
 * header, a file's bytes are found by its kind and a collection's own
 * metadata by its name; how each collection keeps them is files.c's.
 * Any thread, no lock: references, the current flag and the hidden size
 * are atomic.  Whether the files are current is the cache's to say
 * (kvfs_files_set_current()). */
#ifndef KVFS_FILES_H
#define KVFS_FILES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collection.h"
#include "error.h"
#include "vault.h"

struct kvfs_certsecret;
struct kvfs_files;

/* The files of the object directories of every collection; each belongs
 * to one collection (its shape in tree.c), and a collection's files are
 * listed in this order. */
enum kvfs_file_kind {
	/* certificates/<name>/ */
	KVFS_FILE_CERT_PEM,
	KVFS_FILE_CERT_DER,
	KVFS_FILE_CHAIN,
	KVFS_FILE_FULLCHAIN,
	KVFS_FILE_PRIVKEY,
	KVFS_FILE_BUNDLE,
	KVFS_FILE_PFX,
	/* keys/<name>/ */
	KVFS_FILE_PUBLIC_PEM,
	KVFS_FILE_PUBLIC_JWK,
	/* secrets/<name> itself: the value */
	KVFS_FILE_SECRET_VALUE,
	KVFS_FILE_COUNT_,
};

/* The metadata of a version that only some collections have, as text. */
enum kvfs_files_meta {
	KVFS_META_X5T,	   /* a certificate's: base64url SHA-1 of the DER */
	KVFS_META_SHA256,  /* lower-case hex SHA-256 of the DER */
	KVFS_META_SUBJECT, /* RFC 2253 */
	KVFS_META_CONTENT_TYPE, /* a secret's, as the vault has it */
	KVFS_META_KTY,		/* a key's: "RSA", "EC", ... */
	KVFS_META_CRV,		/* an EC key's curve */
	KVFS_META_KEY_OPS,	/* comma-separated, in the vault's order */
	KVFS_META_KEY_SIZE,	/* bits, in decimal */
	KVFS_META_COUNT_,
};

/* What every collection's version has. */
struct kvfs_files_header {
	enum kvfs_collection coll;
	/* The vault's spelling of the object's name (NULL when the vault's
	 * answer had none), the version's id URL and version. */
	const char *name, *id, *version;
	/* Not the tags: the listings show them (tree.h), the files do not
	 * keep them. */
	struct kvfs_object_attrs attrs;
	/* The private key may be shown: a certificate's policy (false for
	 * the collections that show none). */
	bool exportable;
};

/* The files of a certificate version of collection coll, referenced once,
 * from its bundle, which they take over (the bundle is left empty, on
 * failure too); of it they keep neither the tags nor the vault's x5t
 * (theirs is computed from the DER).  -EIO when the bundle's "cer" is not a
 * certificate (logged), -ENOMEM. */
int kvfs_files_new_cert(enum kvfs_collection coll,
			struct kvfs_cert_bundle *bundle,
			struct kvfs_files **ret);

/* The files of a secret version of collection coll, referenced once, from
 * the secret, which they take over (it is left empty, on failure too).
 * -ENOMEM. */
int kvfs_files_new_secret(enum kvfs_collection coll, struct kvfs_secret *secret,
			  struct kvfs_files **ret);

/* The files of a key version of collection coll, referenced once, from its
 * bundle, which they take over (the bundle is left empty, on failure too).
 * -EIO when the JWK does not make a public key (logged), -ENOMEM. */
int kvfs_files_new_key(enum kvfs_collection coll, struct kvfs_key_bundle *key,
		       struct kvfs_files **ret);

/* Bytes of a file: where, and how many; or, pem, the file is the PEM of
 * the DER certificate data[0..len) (kvfs_pki_der_to_pem()), rendered only
 * as it is read: a cached certificate keeps its DER alone. */
struct kvfs_files_span {
	const void *data;
	size_t len;
	bool pem;
};

/* The size of the file s shows (nothing rendered). */
size_t kvfs_files_span_size(const struct kvfs_files_span *s);
/* Bytes [off, off + size) of the file s shows into buf: their count, 0 at
 * or past its end.  The one reader of every file's bytes. */
size_t kvfs_files_span_read(const struct kvfs_files_span *s, size_t off,
			    void *buf, size_t size);

/* A version's files as already made, for the unit tests of the layers
 * above, which need files without a certificate or a key to derive them
 * from: the header, the bytes of the files the
 * collection's objects hold themselves (NULL: none) and the metadata
 * (NULL: none).  Everything is copied; referenced once.  -ENOMEM. */
struct kvfs_files_made {
	struct kvfs_files_header header;
	struct kvfs_files_span bytes[KVFS_FILE_COUNT_];
	const char *meta[KVFS_META_COUNT_];
};
int kvfs_files_new_made(const struct kvfs_files_made *m,
			struct kvfs_files **ret);

/* The header of f, made from its part on demand: its strings live as
 * long as f. */
struct kvfs_files_header kvfs_files_header(const struct kvfs_files *f);
/* The header's name and attrs. */
const char *kvfs_files_name(const struct kvfs_files *f);
const struct kvfs_object_attrs *kvfs_files_attrs(const struct kvfs_files *f);
/* The bytes of file k when f holds them itself: 0 with *ret, which lives
 * as long as f; -ENOENT for a file of another collection, or one made
 * from a certificate's secret (certsecret.h). */
int kvfs_files_bytes(const struct kvfs_files *f, enum kvfs_file_kind k,
		     struct kvfs_files_span *ret);
/* Metadata m of f; NULL when f's collection, or this version, has none. */
const char *kvfs_files_meta(const struct kvfs_files *f, enum kvfs_files_meta m);
/* The bundle of a certificate's files, for its secret (certsecret.h);
 * NULL for the files of another collection, or made ones. */
const struct kvfs_cert_bundle *
kvfs_files_cert_bundle(const struct kvfs_files *f);

/* Until when (kvfs_now_ms()) the kernel may hold size 0 for the files of
 * f that hold the key (fs.c); sequentially consistent, any thread. */
void kvfs_files_hide_size(struct kvfs_files *f, int64_t until_ms);
int64_t kvfs_files_size_hidden_until(const struct kvfs_files *f);

struct kvfs_files *kvfs_files_ref(struct kvfs_files *f);
void kvfs_files_unref(struct kvfs_files *f);
/* Whether f is what its object's directory shows now: the latest files,
 * not yet replaced by a revalidation.  Takes no lock; f stops being
 * current before the change that replaced it is reported. */
bool kvfs_files_current(const struct kvfs_files *f);
/* For the cache: the latest slot of f's object holds f, or no longer
 * does. */
void kvfs_files_set_current(struct kvfs_files *f, bool current);
/* When f was fetched, on kvfs_now_ms()'s clock. */
int64_t kvfs_files_fetched_ms(const struct kvfs_files *f);
/* Where the state of the certificate's secret-derived files is kept with
 * f for as long as f lives: NULL until certsecret.h makes it, under its
 * lock; freed with f. */
struct kvfs_certsecret **kvfs_files_certsecret(struct kvfs_files *f);

/* A reader's fetch of something the files show (a bundle, a versions
 * listing, a secret) failed: what (printf-style) and the error, logged.
 * When the retry gate held the request back, its own line already says
 * why: debug level, and the last error of .kvfs/status stays the
 * vault's own.  Anything else is a warning, rate-limited, and the last
 * error. */
void kvfs_files_fetch_failed(const struct kvfs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
