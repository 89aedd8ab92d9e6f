/* Microsoft Entra ID, v2 endpoints, as the secret, cert and workload
 * providers use it: OpenID discovery of the token endpoint (once per
 * tenant), and the confidential client whose fetch() POSTs the client
 * credentials, to which each provider adds its own proof (client_secret,
 * or client_assertion).  Internal to src/auth/.  Not thread-safe by
 * itself: its provider's fetch() is single-flight. */
#ifndef KVFS_AUTH_ENTRA_H
#define KVFS_AUTH_ENTRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../error.h"
#include "../http.h"
#include "provider.h"

struct kvfs_entra {
	struct kvfs_http *http;
	const char *provider; /* for err->provider */
	char *authority;      /* "https://login.microsoftonline.com" */
	char *tenant;	      /* the tenant token_endpoint belongs to */
	char *token_endpoint;
	int64_t deadline_ms; /* of the fetch under way (provider.h); 0: none */
};

/* The tenant's token endpoint, from its discovery document (fetched the
 * first time, or when the tenant changed).  Owned by e. */
int kvfs_entra_token_endpoint(struct kvfs_entra *e, const char *tenant,
			      const char **ret, struct kvfs_error *err);

/* A confidential client (secret, cert, workload): a provider whose fetch()
 * POSTs client_id, scope=<resource>/.default, grant_type=
 * client_credentials and the client's proof to the tenant's token
 * endpoint.  The proof comes from a credential: a file read again before
 * each request (it may be rotated), or a value from the environment. */
struct kvfs_entra_client {
	struct kvfs_auth_provider base;
	struct kvfs_entra entra;
	char *client_id;
	char *file;  /* or NULL */
	char *value; /* when there is no file; wiped */
	const struct kvfs_entra_client_kind *kind;
};

struct kvfs_entra_client_kind {
	const char *name;  /* "secret": auth=secret */
	const char *needs; /* "secret_file= (or AZURE_CLIENT_SECRET)" */
	/* The proof goes as client_assertion (a JWT bearer assertion), or
	 * else as client_secret. */
	bool assertion;
	unsigned file_flags; /* for kvfs_credfile_read_text() */
	/* A provider with more state than the client (cert) gives the size
	 * of its struct, which begins with the client, and frees that
	 * state in done(); 0 and NULL otherwise. */
	size_t size;
	void (*done)(struct kvfs_entra_client *cl);
	/* The proof for one token request to tenant, malloc'ed (the caller
	 * wipes it); NULL: the text of the credential.  Called from
	 * fetch(), so single-flight. */
	int (*prove)(struct kvfs_entra_client *cl, const char *tenant,
		     char **ret, struct kvfs_error *err);
};

/* A provider of this kind, with the credential file (or else value) from
 * the configuration; either may be NULL or "".  client_id=, the
 * credential and authority= are checked in this order: -EINVAL with
 * err->message. */
int kvfs_entra_client_new(const struct kvfs_entra_client_kind *kind,
			  const struct kvfs_config *c, const char *file,
			  const char *value, struct kvfs_http *h,
			  struct kvfs_auth_provider **ret,
			  struct kvfs_error *err);

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
