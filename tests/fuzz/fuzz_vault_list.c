/* A page of a certificates or versions listing (kvfs_vault_parse_page):
 * the first byte picks which, the rest is the body.  Each input is parsed
 * twice, appending to one list, as consecutive pages are. */
#include "fuzz.h"
#include "vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_object_list list = {0};
	struct kvfs_error err;
	bool versions;

	if (size < 1)
		return 0;
	versions = data[0] & 1;
	for (int i = 0; i < 2; i++) {
		char *next = NULL;

		kvfs_error_clear(&err);
		if (versions)
			(void)kvfs_vault_parse_page(
				(const char *)data + 1, size - 1,
				kvfs_collection_info(
					KVFS_COLLECTION_CERTIFICATES),
				true, &list, &next, &err);
		else
			(void)kvfs_vault_parse_list_page((const char *)data + 1,
							 size - 1, &list, &next,
							 &err);
		free(next);
	}
	kvfs_object_list_clear(&list);
	return 0;
}
