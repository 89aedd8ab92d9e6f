/* A Key Vault error body (kvfs_vault_parse_error), and the one line the
 * top layer makes of it. */
#include "fuzz.h"
#include "vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_error err;
	char line[512];

	kvfs_error_clear(&err);
	kvfs_vault_parse_error((const char *)data, size, &err);
	kvfs_error_describe(&err, line, sizeof(line));
	return 0;
}
