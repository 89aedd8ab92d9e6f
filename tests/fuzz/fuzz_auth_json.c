/* The token services' JSON: Entra ID's discovery document, token and
 * OAuth error responses, and the managed-identity token response (IMDS,
 * App Service, Arc).  The first byte picks the parser. */
#include "auth/entra.h"
#include "auth/provider.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data + 1;
	struct kvfs_token t = {0};
	struct kvfs_error err;
	char *endpoint = NULL;
	char line[512];

	if (size < 1)
		return 0;
	size--;
	switch (data[0] & 3) {
	case 0:
		if (kvfs_entra_parse_discovery(json, size, &endpoint) == 0)
			free(endpoint);
		break;
	case 1:
		if (kvfs_entra_parse_token(json, size, &t) == 0)
			kvfs_token_clear(&t);
		break;
	case 2:
		kvfs_error_clear(&err);
		kvfs_entra_parse_error(json, size, &err);
		kvfs_error_describe(&err, line, sizeof(line));
		break;
	default:
		if (kvfs_mi_parse_token(json, size, 1700000000, &t) == 0)
			kvfs_token_clear(&t);
		break;
	}
	return 0;
}
