/* Tokens for the vault: one token cache per mount in front of exactly one
 * credential provider (secret, cert, workload, imds).  The cache hands out
 * copies of the current token, refreshes it (single-flight) before it
 * expires, and drops it when the vault answers 401.  Knows nothing of FUSE
 * or certificates.  Thread-safe; no lock is held across a network call. */
#ifndef KVFS_AUTH_H
#define KVFS_AUTH_H

#include <stdint.h>
#include <time.h>

#include "../config.h"
#include "../error.h"
#include "../http.h"

struct kvfs_auth;

/* Where the token is for.  tenant and resource may be filled later from
 * the vault's 401 challenge (kvfs_auth_set_challenge). */
int kvfs_auth_new(const struct kvfs_config *c, struct kvfs_http *h,
		  struct kvfs_auth **ret);
void kvfs_auth_free(struct kvfs_auth *a);

/* True when the tenant and resource are known, so a token can be asked for
 * without first sending an unauthenticated request to the vault. */
bool kvfs_auth_ready(struct kvfs_auth *a);

/* Feed a WWW-Authenticate challenge from the vault at vault_url.  Checks
 * that the challenge's resource matches the vault's domain or equals an
 * explicit resource=; -EPERM otherwise (no token will ever be sent). */
int kvfs_auth_set_challenge(struct kvfs_auth *a, const char *vault_url,
			    const char *www_authenticate,
			    struct kvfs_error *err);

/* A copy of a valid bearer token (malloc'ed; free with
 * kvfs_secure_free_str).  Fetches one when there is none or it expired. */
int kvfs_auth_get_token(struct kvfs_auth *a, char **ret_token,
			struct kvfs_error *err);

/* The vault said 401 to this token: forget it if it is still current. */
void kvfs_auth_invalidate(struct kvfs_auth *a, const char *token);

/* "secret", "cert", "workload", "imds", "appservice", "arc" */
const char *kvfs_auth_provider_name(struct kvfs_auth *a);
time_t kvfs_auth_expires_at(struct kvfs_auth *a);

/* Parse a Bearer challenge: authorization=/authorization_uri= and
 * resource=/scope=.  Exposed for unit tests and fuzzers. */
int kvfs_auth_parse_challenge(const char *header, char **ret_tenant,
			      char **ret_resource);

#endif
