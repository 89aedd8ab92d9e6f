/* A certificate's secret (kvfs_pki_secret_files): PEM or base64 PKCS#12,
 * against the bundle's leaf.  Input: one byte picking the content type
 * (PEM, PKCS#12, none), two bytes of big-endian leaf length, the leaf's
 * DER, then the secret's value. */
#include "fuzz.h"
#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"application/x-pem-file",
					    "application/x-pkcs12", NULL};
	struct kvfs_pki_secret_files f = {0};
	size_t leaf_len;
	char why[128];

	if (size < 3)
		return 0;
	leaf_len = (size_t)data[1] << 8 | data[2];
	if (leaf_len > size - 3)
		return 0;
	if (kvfs_pki_secret_files((const char *)data + 3 + leaf_len,
				  size - 3 - leaf_len, types[data[0] % 3],
				  data + 3, leaf_len, "fuzz", &f, why,
				  sizeof(why)) == 0)
		kvfs_pki_secret_files_clear(&f);
	return 0;
}
