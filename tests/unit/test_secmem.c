/* The wiping allocator hooks: installed into OpenSSL before its first
 * allocation, and a realloc that keeps the contents.
 * That freed blocks are wiped is shown on a live daemon's core
 * (tests/integration/test_refresh.py). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "secmem.h"
#include "tap.h"

int main(void)
{
	CRYPTO_malloc_fn m = NULL;
	CRYPTO_realloc_fn r = NULL;
	CRYPTO_free_fn f = NULL;
	char *p, *q;

	is_int(kvfs_secmem_init(), 0,
	       "hooks installed before OpenSSL "
	       "allocated");
	CRYPTO_get_mem_functions(&m, &r, &f);
	ok(m && r && f && f != CRYPTO_free, "OpenSSL frees through them");
	p = OPENSSL_malloc(8);
	ok(p != NULL, "OpenSSL allocates");
	OPENSSL_free(p);

	p = malloc(16);
	memcpy(p, "0123456789abcdef", 16);
	q = kvfs_secmem_realloc(p, 4096);
	ok(q && memcmp(q, "0123456789abcdef", 16) == 0, "grown: contents kept");
	p = kvfs_secmem_realloc(q, 4);
	ok(p && memcmp(p, "0123", 4) == 0, "shrunk: contents kept");
	ok(kvfs_secmem_realloc(p, 0) == NULL, "realloc to 0 frees");
	p = kvfs_secmem_realloc(NULL, 8);
	ok(p != NULL, "realloc of NULL allocates");
	kvfs_secmem_free(p);
	kvfs_secmem_free(NULL);
	ok(1, "free of NULL");
	return done_testing();
}
