/* The secret-derived files of a certificate version (privkey.pem,
 * chain.pem, fullchain.pem, bundle.pem, the PKCS#12): fetched from the
 * secret the version's bundle names (its sid) the first time one is looked
 * at, then kept with that version's kvfs_files for as long as they live.
 * One fetch per version at a time (flight.h): concurrent first readers
 * share its result; a waiter gives up at its deadline.  A refusal (-EACCES)
 * or a secret that does not make files for the certificate (-EIO) is kept
 * for the refresh interval; a failing vault (-EIO) is not kept.
 * One mutex and one condition variable for the secrets of a mount, never
 * held across a vault call nor a log line; no other lock is taken under
 * it. */
#ifndef KVFS_CERTSECRET_H
#define KVFS_CERTSECRET_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "files.h"
#include "flight.h"
#include "pki.h"
#include "vault.h"

/* The secret of one kvfs_files; while its flight is under way, it is
 * loading.  Zeroed: none yet.  Under the lock of the kvfs_certsecrets
 * that fetches it. */
struct kvfs_certsecret {
	enum {
		KVFS_CERTSECRET_NONE,
		KVFS_CERTSECRET_READY,
		KVFS_CERTSECRET_FAILED,
	} state;
	struct kvfs_flight flight;
	int failed_r;	      /* FAILED: the error kept, until failed_until */
	int64_t failed_until; /* kvfs_now_ms() time */
	struct kvfs_pki_secret_files files; /* READY */
};

/* Wipes and frees s and its files (NULL: nothing); for the last reference
 * of its kvfs_files. */
void kvfs_certsecret_free(struct kvfs_certsecret *s);

/* Where the secrets of a mount are fetched: its vault, its configuration
 * (refresh=, NULL: the default) and its lock. */
struct kvfs_certsecrets;

int kvfs_certsecrets_new(const struct kvfs_config *c, struct kvfs_vault *v,
			 struct kvfs_certsecrets **ret);
void kvfs_certsecrets_free(struct kvfs_certsecrets *s);

/* The secret-derived files of f (which the caller holds a reference to),
 * fetching its secret the first time when fetch is true, waiting for a
 * fetch under way until deadline_ms (kvfs_now_ms() time).  The result
 * lives as long as f.  -EACCES (refused, kept), -EIO (malformed or not of
 * this certificate, kept; or the vault is failing, or the deadline came,
 * not kept); without fetch, -ENODATA when it would need one. */
int kvfs_certsecrets_get(struct kvfs_certsecrets *s, struct kvfs_files *f,
			 bool fetch, int64_t deadline_ms,
			 const struct kvfs_pki_secret_files **ret);

#endif
