/* The vault's WWW-Authenticate Bearer challenge
 * (kvfs_auth_parse_challenge), and Arc's Basic realm. */
#include "auth/auth.h"
#include "auth/provider.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *header = fuzz_strndup(data, size);
	char *tenant = NULL, *resource = NULL, *path = NULL;

	if (kvfs_auth_parse_challenge(header, &tenant, &resource) == 0) {
		free(tenant);
		free(resource);
	}
	if (kvfs_arc_realm_path(header, "/var/opt/azcmagent/tokens", &path) ==
	    0)
		free(path);
	free(header);
	return 0;
}
