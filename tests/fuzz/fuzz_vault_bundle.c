/* A certificate bundle (kvfs_vault_parse_bundle), and what the cache does
 * with a bundle that parsed: its cer to PEM, its extended attributes. */
#include "fuzz.h"
#include "pki.h"
#include "vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_cert_bundle b = {0};
	struct kvfs_error err;

	kvfs_error_clear(&err);
	if (kvfs_vault_parse_bundle((const char *)data, size, &b, &err) == 0) {
		char *pem = NULL, *subject = NULL;
		char sha256[65], x5t[28];
		size_t len;

		if (kvfs_pki_der_to_pem(b.der, b.der_len, &pem, &len) == 0)
			free(pem);
		if (kvfs_pki_cert_info(b.der, b.der_len, &subject, sha256,
				       x5t) == 0)
			free(subject);
		kvfs_cert_bundle_clear(&b);
	}
	return 0;
}
