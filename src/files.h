/* The files of one object version, as the tree shows them: built once from
 * what the vault returned for that version, immutable once published (but
 * for size_hidden_until), shared by reference.  An open file holds a
 * reference, so its bytes never change, whatever the cache does after.
 * A kvfs_files never mixes versions: a rotation makes a new one.
 *
 * What every collection has is the header of the struct: the collection,
 * which part of the union is filled, and when it was fetched.  What a
 * collection's objects hold is that collection's part of the union: the
 * certificate's (its bundle, from which the renderers also read the name,
 * version and attrs, cert_pem, subject, sha256, x5t; its secret-derived
 * files are certsecret.h's, kept with it), the secret's (its value, wiped
 * when the files go) and the key's (its public half: the JWK and the PEM
 * made from it).  kvfs_files_name() and kvfs_files_attrs() read what every
 * part has.
 *
 * References and the current flag are atomic: any thread, no lock.  Whether
 * the files are current is the cache's to say (kvfs_files_set_current()). */
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

struct kvfs_files {
	enum kvfs_collection coll; /* which part of the union is filled */
	int64_t fetched_at;	   /* kvfs_wall_now() of the GET */
	/* Until when (kvfs_now_ms()) the kernel may hold size 0 for the
	 * key-bearing files of these files (fs.c); atomic. */
	int64_t size_hidden_until;
	union {
		/* KVFS_COLLECTION_CERTIFICATES: the version's bundle and
		 * what its DER makes. */
		struct {
			struct kvfs_cert_bundle bundle;
			char *cert_pem;
			size_t cert_pem_len;
			char *subject;	 /* RFC 2253 */
			char sha256[65]; /* lower-case hex of the DER */
			char x5t[28];	 /* base64url SHA-1 of the DER */
		};
		/* KVFS_COLLECTION_SECRETS: the version's secret; its value
		 * is wiped when the files go. */
		struct {
			struct kvfs_secret secret;
		};
		/* KVFS_COLLECTION_KEYS: the version's public half. */
		struct {
			struct kvfs_key_bundle key;
			char *public_pem; /* SubjectPublicKeyInfo PEM */
			size_t public_pem_len;
			unsigned key_size; /* bits */
			char *key_ops;	   /* comma-separated, vault's order */
		};
	};
};

/* The files of a certificate version of collection coll, referenced once,
 * from its bundle, which they take over (the bundle is left empty, on
 * failure too).  -EIO when the bundle's "cer" is not a certificate
 * (logged), -ENOMEM. */
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

/* The vault's spelling of the object's name (NULL when the vault's answer
 * had none), and the version's attributes, whatever the collection. */
const char *kvfs_files_name(const struct kvfs_files *f);
const struct kvfs_object_attrs *kvfs_files_attrs(const struct kvfs_files *f);

struct kvfs_files *kvfs_files_ref(struct kvfs_files *f);
void kvfs_files_unref(struct kvfs_files *f);
/* Whether f is what its object's directory shows now: the latest files,
 * not yet replaced by a revalidation.  Takes no lock; f stops being
 * current before the change that replaced it is reported. */
bool kvfs_files_current(const struct kvfs_files *f);
/* For the cache: the latest slot of f's object holds f, or no longer does. */
void kvfs_files_set_current(struct kvfs_files *f, bool current);
/* When f was fetched, on kvfs_now_ms()'s clock. */
int64_t kvfs_files_fetched_ms(const struct kvfs_files *f);
/* The state of the certificate's secret-derived files, kept with f for as
 * long as f lives (certsecret.h). */
struct kvfs_certsecret *kvfs_files_certsecret(struct kvfs_files *f);

/* A reader's fetch of something the files show (a bundle, a versions
 * listing, a secret) failed: what (printf-style) and the error, logged.
 * When the retry gate held the request back, its own line already says
 * why: debug level, and the last error of .kvfs/status stays the vault's
 * own.  Anything else is a warning, rate-limited, and the last error. */
void kvfs_files_fetch_failed(const struct kvfs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
