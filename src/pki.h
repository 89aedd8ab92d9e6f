/* OpenSSL side of the tree: turns the vault's DER/PEM/PKCS#12 into the
 * bytes of each file, orders chains, computes thumbprints.  Knows nothing
 * of the network.  Pure functions; thread-safe. */
#ifndef KVFS_PKI_H
#define KVFS_PKI_H

#include <stddef.h>

/* DER certificate -> "-----BEGIN CERTIFICATE-----\n...-----END
 * CERTIFICATE-----\n" (64 columns).  -EINVAL when der is not a
 * certificate. */
int kvfs_pki_der_to_pem(const unsigned char *der, size_t len, char **ret_pem,
			size_t *ret_len);

/* Standard base64 (with padding, no whitespace allowed) -> bytes. */
int kvfs_pki_base64_decode(const char *in, size_t len, unsigned char **ret,
			   size_t *ret_len);

#endif
