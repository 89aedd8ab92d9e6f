/* A page of a listing or a versions listing of certificates, secrets or
 * keys (kvfs_vault_parse_page): the first byte picks which (bit 0: versions;
 * the next ones the collection, certificates when 0), the rest is the
 * body.  Each input is parsed twice, appending to one list, as consecutive
 * pages are. */
#include "fuzz.h"
#include "vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_object_list list = {0};
	struct kvfs_error err;
	static const struct kvfs_collection_info others[] = {
		{.name = "secrets", .noun = "secret"},
		{.name = "keys", .noun = "key"},
	};
	const struct kvfs_collection_info *coll;
	unsigned which;
	bool versions;

	if (size < 1)
		return 0;
	versions = data[0] & 1;
	which = (data[0] >> 1) % 3;
	coll = which == 0 ? kvfs_collection_info(KVFS_COLLECTION_CERTIFICATES)
			  : &others[which - 1];
	for (int i = 0; i < 2; i++) {
		char *next = NULL;

		kvfs_error_clear(&err);
		(void)kvfs_vault_parse_page((const char *)data + 1, size - 1,
					    coll, versions, &list, &next, &err);
		free(next);
	}
	kvfs_object_list_clear(&list);
	return 0;
}
