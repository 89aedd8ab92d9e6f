/* OpenSSL side of the tree: turns the vault's DER/PEM/PKCS#12 into the
 * bytes of each file, orders chains, computes thumbprints.  Knows nothing
 * of the network.  Pure functions but for the PKCS#12 opens in flight
 * (kvfs_pki_pkcs12_open); thread-safe. */
#ifndef KVFS_PKI_H
#define KVFS_PKI_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

/* The files a certificate's secret makes.  Chains are ordered leaf -> root
 * by issuer/subject links, whatever order the vault stored them in, and a
 * self-signed root is left out of chain.pem and fullchain.pem alike (a
 * server never sends it; clients must already trust it), so that
 * fullchain.pem is always cert.pem followed by chain.pem, as certbot's.
 * privkey, bundle and pfx are key material: kvfs_pki_secret_files_clear()
 * wipes them. */
struct kvfs_pki_secret_files {
	bool has_key; /* false: the key is not exportable */
	char *chain;  /* issuers, PEM; "" for a self-signed leaf */
	size_t chain_len;
	char *fullchain; /* leaf + issuers, PEM */
	size_t fullchain_len;
	char *privkey; /* PKCS#8 PEM, unencrypted; NULL without a key */
	size_t privkey_len;
	char *bundle; /* privkey + fullchain (haproxy); NULL without a key */
	size_t bundle_len;
	unsigned char *pfx; /* PKCS#12, empty password; NULL without a key */
	size_t pfx_len;
};

/* Build the files from a secret's value: PEM text (application/x-pem-file)
 * or standard base64 of a PKCS#12 (application/x-pkcs12, Key Vault's NULL
 * password or an empty one).  A NULL or unknown content_type is told from
 * the value itself.  The secret must hold leaf_der (the bundle's "cer", so
 * that every file of a directory is of one version) and a key, when there
 * is one, that matches it.  friendly_name names the PKCS#12's key and
 * certificate.  -EBADMSG for a value that is not what it claims or does
 * not match the leaf (why says what), -ENOMEM. */
int kvfs_pki_secret_files(const char *value, size_t len,
			  const char *content_type,
			  const unsigned char *leaf_der, size_t leaf_len,
			  const char *friendly_name,
			  struct kvfs_pki_secret_files *ret, char *why,
			  size_t why_len);
void kvfs_pki_secret_files_clear(struct kvfs_pki_secret_files *f);

/* Open a DER PKCS#12 with password, or when it is NULL with the NULL one
 * (Key Vault's) or the empty one.  The key derivations it asks for (the
 * MAC's, each encrypted ContentInfo's, each shrouded key's) are bounded
 * before they run: at most 200,000 iterations each, 8 derivations and
 * 400,000 iterations in all (the MAC's twice without a password), each
 * run once; at most two PKCS#12s derive at a time, the others wait.  A
 * PKCS#12 names its own counts, and OpenSSL would run any; what runs is
 * counted in kvfs_pkcs12_kdf_iterations_total.  On success the key, the
 * leaf (the certificate that matches the key) and the other certificates,
 * as PKCS12_parse() gives them (any may be NULL).  -EACCES: the password
 * does not open it; -EBADMSG: not a PKCS#12, malformed, or too much
 * derivation work (why says which). */
int kvfs_pki_pkcs12_open(const unsigned char *der, size_t len,
			 const char *password, EVP_PKEY **ret_key,
			 X509 **ret_leaf, STACK_OF(X509) * *ret_ca, char *why,
			 size_t why_len);

/* What the extended attributes show of a DER certificate: the subject in
 * RFC 2253 form (as `openssl x509 -noout -subject -nameopt RFC2253` prints
 * it), the lower-case hex SHA-256 of the DER and its x5t (base64url SHA-1,
 * no padding).  -EINVAL when der does not have a certificate's DER
 * structure (only the subject is decoded). */
int kvfs_pki_cert_info(const unsigned char *der, size_t len, char **ret_subject,
		       char ret_sha256[65], char ret_x5t[28]);

/* DER certificate -> "-----BEGIN CERTIFICATE-----\n...-----END
 * CERTIFICATE-----\n" (64 columns), der's bytes as they are.  -EINVAL when
 * der does not have a certificate's DER structure (checked by walking it,
 * not by decoding it: see pki.c). */
int kvfs_pki_der_to_pem(const unsigned char *der, size_t len, char **ret_pem,
			size_t *ret_len);
/* The length of kvfs_pki_der_to_pem()'s PEM of len bytes of DER. */
size_t kvfs_pki_pem_len(size_t len);
/* Bytes [off, off + size) of kvfs_pki_der_to_pem()'s PEM of der[0..len),
 * len > 0, into buf, rendered from der alone: no allocation, der not
 * checked.  Their count: 0 at or past the end. */
size_t kvfs_pki_pem_read(const unsigned char *der, size_t len, size_t off,
			 char *buf, size_t size);

/* key's public half as SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC
 * KEY-----"), malloc'ed, NUL-terminated.  0, -EINVAL or -ENOMEM. */
int kvfs_pki_pubkey_pem(EVP_PKEY *key, char **ret, size_t *ret_len);

/* Standard base64 (with padding, no whitespace allowed) -> bytes. */
int kvfs_pki_base64_decode(const char *in, size_t len, unsigned char **ret,
			   size_t *ret_len);
/* base64url (RFC 4648 section 5, no padding, no whitespace) -> bytes, as
 * a JWK's members are written.  -EINVAL for anything else. */
int kvfs_pki_base64url_decode(const char *in, size_t len, unsigned char **ret,
			      size_t *ret_len);

#endif
