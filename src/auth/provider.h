/* The contract between the token cache (auth.c) and one credential
 * provider: fetch a fresh token for a tenant and a resource.  The cache
 * calls fetch() without holding any lock and one call at a time (single
 * flight), so a provider needs no lock of its own for its state.  Internal
 * to src/auth/. */
#ifndef KVFS_AUTH_PROVIDER_H
#define KVFS_AUTH_PROVIDER_H

#include <time.h>

#include "../config.h"
#include "../error.h"
#include "../http.h"

struct kvfs_token {
	char *access_token; /* wiped when cleared */
	long expires_in;    /* seconds of validity from now */
	long refresh_in;    /* seconds until a refresh is advised; 0: none */
};

void kvfs_token_clear(struct kvfs_token *t);

struct kvfs_auth_provider {
	const char *name; /* "secret", ... */
	/* tenant may be NULL for providers that need none (imds). */
	int (*fetch)(struct kvfs_auth_provider *p, const char *tenant,
		     const char *resource, struct kvfs_token *ret,
		     struct kvfs_error *err);
	void (*free)(struct kvfs_auth_provider *p);
};

/* Providers.  Each validates its configuration; on a configuration error
 * it returns -EINVAL with err->message set. */
int kvfs_auth_secret_new(const struct kvfs_config *c, struct kvfs_http *h,
			 struct kvfs_auth_provider **ret,
			 struct kvfs_error *err);

#endif
