/* A scripted vault for the unit tests of the cache (test_cache.c) and of
 * the revalidation thread (test_reval.c): the vault calls the cache makes
 * are replaced at link time (-Wl,--wrap, see tests/meson.build) by ones
 * that answer from the tables below, so no network is involved.
 *
 * The listing of the certificates is vault_certs[0..vault_n) with
 * vault_x5t[] and vault_exp[], that of the secrets vault_secrets[], that
 * of the keys empty; a certificate's bundle is pki-leaf.der, or for the
 * names that start with "keyed" pki/rsa-leaf.der with a secret id, whose
 * secret is pki/rsa-secret.pem (tests/data/ is the working directory,
 * load_leaf()). The scripted failures, delays and garbage apply to every call
 * until reset.  The wrapped calls read all of it under fake_lock: a test whose
 * own threads call the vault (the revalidation thread) changes it under
 * that lock too; the others set it while nothing else runs. */
#ifndef KVFS_SCRIPTED_VAULT_H
#define KVFS_SCRIPTED_VAULT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vault.h"

int __wrap_kvfs_vault_list_within(struct kvfs_vault *v,
				  enum kvfs_collection coll,
				  unsigned page_budget_s,
				  struct kvfs_object_list *ret,
				  struct kvfs_error *err);
int __wrap_kvfs_vault_get_certificate(struct kvfs_vault *v, const char *name,
				      const char *version,
				      struct kvfs_cert_bundle *ret,
				      struct kvfs_error *err);
int __wrap_kvfs_vault_get_secret(struct kvfs_vault *v, const char *sid,
				 struct kvfs_secret *ret,
				 struct kvfs_error *err);

int __wrap_kvfs_vault_list_versions(struct kvfs_vault *v,
				    enum kvfs_collection coll, const char *name,
				    struct kvfs_object_list *ret,
				    struct kvfs_error *err);
int __wrap_kvfs_vault_list_versions_within(struct kvfs_vault *v,
					   enum kvfs_collection coll,
					   const char *name,
					   unsigned page_budget_s,
					   struct kvfs_object_list *ret,
					   struct kvfs_error *err);

struct fake_cert {
	const char *name;
	int64_t updated;
};

#define FAKE_VAULT_MAX 8

extern pthread_mutex_t fake_lock;

/* The listing; more of vault_certs[i]: x5t (NULL: none) and exp (0:
 * none). */
extern struct fake_cert vault_certs[FAKE_VAULT_MAX];
extern size_t vault_n;
extern const char *vault_x5t[FAKE_VAULT_MAX];
extern int64_t vault_exp[FAKE_VAULT_MAX];

/* Listings: the error returned when non-zero, a delay before answering,
 * and the page budget of the last one. */
extern int list_error;
extern unsigned list_delay_ms;
extern unsigned last_budget;

/* The other collections: the secrets listed (no GET of them is
 * scripted), and per collection but the certificates, the error its
 * listing returns when non-zero (-EACCES answers 403 Forbidden,
 * ForbiddenByRbac; another error 503). */
extern struct fake_cert vault_secrets[FAKE_VAULT_MAX];
extern size_t vault_secrets_n;
extern int list_error_of[KVFS_COLLECTION_COUNT_];

/* GETs of a certificate: the error returned when non-zero, a delay, a
 * "cer" that is not a certificate, and the name of the last one. */
extern int get_error;
extern unsigned get_delay_ms;
extern bool get_garbage;
extern char last_get[128];

/* GETs of a secret: -EACCES answers 403 ForbiddenByRbac, another error
 * 503; a delay; a value that is not PEM. */
extern int secret_error;
extern unsigned secret_delay_ms;
extern bool secret_garbage;

/* The versions listing of every certificate: vault_versions[0..versions_n);
 * versions_error is returned when non-zero. */
struct fake_version {
	const char *version;
	bool enabled;
	int64_t updated;
};
extern struct fake_version vault_versions[FAKE_VAULT_MAX];
extern size_t versions_n;
extern int versions_error;

/* pki-leaf.der, the bundle of the certificates without a key. */
extern unsigned char *leaf_der;
extern size_t leaf_der_len;

/* Read the fixtures; false when one cannot be read.  free_leaf() frees
 * them. */
bool load_leaf(void);
void free_leaf(void);

/* The listing becomes certs[0..n), without thumbprints or exp. */
void set_vault(const struct fake_cert *certs, size_t n);

/* How many listings, GETs of a certificate and GETs of a secret were
 * asked for so far. */
int list_count(void);
/* The listings of coll asked for so far. */
int list_count_of(enum kvfs_collection coll);
int calls(void);
int secret_count(void);
int versions_count(void);

/* CLOCK_MONOTONIC in seconds. */
double now_s(void);

#endif
