/* The vault's "cer": standard base64 (kvfs_pki_base64_decode), then the
 * DER certificate check, its PEM and its extended attributes.  The input
 * is tried both as base64 text and as DER. */
#include "fuzz.h"
#include "pki.h"

static void der(const unsigned char *d, size_t len)
{
	char *pem = NULL, *subject = NULL;
	char sha256[65], x5t[28];
	size_t pem_len;

	if (kvfs_pki_der_to_pem(d, len, &pem, &pem_len) == 0) {
		if (pem_len != strlen(pem))
			abort();
		free(pem);
	}
	if (kvfs_pki_cert_info(d, len, &subject, sha256, x5t) == 0)
		free(subject);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *bytes = NULL;
	size_t len = 0;

	if (kvfs_pki_base64_decode((const char *)data, size, &bytes, &len) ==
	    0) {
		der(bytes, len);
		free(bytes);
	}
	der(data, size);
	return 0;
}
