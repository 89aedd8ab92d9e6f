/* A secret's JSON (kvfs_vault_parse_secret). */
#include "fuzz.h"
#include "vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_secret s = {0};
	struct kvfs_error err;

	kvfs_error_clear(&err);
	if (kvfs_vault_parse_secret((const char *)data, size, &s, &err) == 0)
		kvfs_secret_clear(&s);
	return 0;
}
