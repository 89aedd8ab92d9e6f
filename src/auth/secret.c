/* The client-secret provider: client credentials with client_secret, the
 * secret read from secret_file= before each token request (so a rotated
 * file is picked up without a remount) or taken from AZURE_CLIENT_SECRET.
 * Everything but the configuration is entra.c's confidential client.  The
 * secret never outlives a request in clear. */
#include "auth/entra.h"
#include "auth/provider.h"

int kvfs_auth_secret_new(const struct kvfs_config *c, struct kvfs_http *h,
			 struct kvfs_auth_provider **ret,
			 struct kvfs_error *err)
{
	static const struct kvfs_entra_client_kind secret = {
		.name = "secret",
		.needs = "secret_file= (or AZURE_CLIENT_SECRET)",
	};

	return kvfs_entra_client_new(&secret, c, c->secret_file,
				     c->client_secret, h, ret, err);
}
