/* Microsoft Entra ID, v2 endpoints, as the secret, cert and workload
 * providers use it: OpenID discovery of the token endpoint (once per
 * tenant), and the client-credentials POST, to which each provider adds
 * its own proof (client_secret, or client_assertion).  Internal to
 * src/auth/.  Not thread-safe by itself: its provider's fetch() is
 * single-flight. */
#ifndef KVFS_AUTH_ENTRA_H
#define KVFS_AUTH_ENTRA_H

#include <stddef.h>

#include "../error.h"
#include "../http.h"
#include "provider.h"

struct kvfs_entra {
	struct kvfs_http *http;
	const char *provider; /* for err->provider */
	char *authority;      /* "https://login.microsoftonline.com" */
	char *tenant;	      /* the tenant token_endpoint belongs to */
	char *token_endpoint;
};

struct kvfs_form_param {
	const char *name;
	const char *value; /* not yet encoded */
};

int kvfs_entra_init(struct kvfs_entra *e, struct kvfs_http *h,
		    const char *authority, const char *provider);
void kvfs_entra_done(struct kvfs_entra *e);

/* The tenant's token endpoint, from its discovery document (fetched the
 * first time, or when the tenant changed).  Owned by e. */
int kvfs_entra_token_endpoint(struct kvfs_entra *e, const char *tenant,
			      const char **ret, struct kvfs_error *err);

/* POST client_id, scope=<resource>/.default, grant_type=client_credentials
 * and the extra parameters to the tenant's token endpoint. */
int kvfs_entra_get_token(struct kvfs_entra *e, const char *tenant,
			 const char *client_id, const char *resource,
			 const struct kvfs_form_param *extra, size_t n_extra,
			 struct kvfs_token *ret, struct kvfs_error *err);

/* Pure parsers, exposed for unit tests and fuzzers. */
int kvfs_entra_parse_discovery(const char *json, size_t len,
			       char **ret_token_endpoint);
/* access_token, expires_in and refresh_in (numbers or numeric strings). */
int kvfs_entra_parse_token(const char *json, size_t len,
			   struct kvfs_token *ret);
/* Fill err->code, err->aadsts and err->message from an OAuth error body. */
void kvfs_entra_parse_error(const char *json, size_t len,
			    struct kvfs_error *err);

#endif
