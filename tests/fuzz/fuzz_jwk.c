/* A key bundle's JSON (kvfs_vault_parse_key), then its JWK's public
 * members to PEM (kvfs_jwk_public_pem), as a key's files are made. */
#include "fuzz.h"
#include "jwk.h"
#include "vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_key_bundle b = {0};
	struct kvfs_error err;
	struct kvfs_jwk j;
	char *pem = NULL;
	size_t len;
	unsigned bits;

	kvfs_error_clear(&err);
	if (kvfs_vault_parse_key((const char *)data, size, NULL, &b, &err) < 0)
		return 0;
	j = (struct kvfs_jwk){.kty = b.kty,
			      .n = b.n,
			      .e = b.e,
			      .crv = b.crv,
			      .x = b.x,
			      .y = b.y};
	if (kvfs_jwk_public_pem(&j, &pem, &len, &bits, &err) == 0) {
		if (len != strlen(pem) || bits == 0)
			abort();
		free(pem);
	}
	kvfs_key_bundle_clear(&b);
	return 0;
}
