/* The workload identity provider (AKS and any OIDC federation): client
 * credentials with the federated token of token_file= (or
 * AZURE_FEDERATED_TOKEN_FILE) as the client assertion.  Kubernetes rotates
 * that file, so it is read again before every token request.  It is
 * exempt from the secret-file mode check (Kubernetes projects it 0644,
 * behind a symlink) but still size-checked.  Everything but the
 * configuration is entra.c's confidential client; the token read is
 * wiped after use. */
#include "auth/credfile.h"
#include "auth/entra.h"
#include "auth/provider.h"

int kvfs_auth_workload_new(const struct kvfs_config *c, struct kvfs_http *h,
			   struct kvfs_auth_provider **ret,
			   struct kvfs_error *err)
{
	static const struct kvfs_entra_client_kind workload = {
		.name = "workload",
		.needs = "token_file= (or AZURE_FEDERATED_TOKEN_FILE)",
		.assertion = true,
		.file_flags = KVFS_CREDFILE_ANY_MODE,
	};

	return kvfs_entra_client_new(&workload, c, c->token_file, NULL, h, ret,
				     err);
}
