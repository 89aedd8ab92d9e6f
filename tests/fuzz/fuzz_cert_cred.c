/* The client certificate of auth=cert (kvfs_clientcert_load): PEM with
 * key and chain, or PKCS#12, with an optional password.  Input: one
 * byte, the password's length (0: none), the password, the file. */
#include "auth/provider.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_clientcert *c = NULL;
	struct kvfs_error err;
	char *password = NULL;
	size_t plen;

	if (size < 1)
		return 0;
	plen = data[0];
	if (plen > size - 1)
		return 0;
	if (plen > 0)
		password = fuzz_strndup(data + 1, plen);
	kvfs_error_clear(&err);
	if (kvfs_clientcert_load((const char *)data + 1 + plen, size - 1 - plen,
				 password, &c, &err) == 0)
		kvfs_clientcert_free(c);
	free(password);
	return 0;
}
