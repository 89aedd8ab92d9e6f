/* A key's public half from its JSON Web Key (RFC 7517/7518) members, as
 * Key Vault gives them: RSA (n, e) or EC (crv, x, y), base64url, built
 * into an OpenSSL key and written as SubjectPublicKeyInfo PEM
 * (public.pem), with its size in bits.  Hostile members are refused, not
 * repaired.  OpenSSL only: no JSON, no network.  Pure functions; any
 * thread. */
#ifndef KVFS_JWK_H
#define KVFS_JWK_H

#include <stddef.h>

#include "error.h"

/* Which members a kty carries: Key Vault's "RSA" and "RSA-HSM" (n, e),
 * "EC" and "EC-HSM" (crv, x, y); anything else (the symmetric "oct" and
 * "oct-HSM", which have no public half, or a type kvfs does not know) is
 * unsupported. */
enum kvfs_jwk_family {
	KVFS_JWK_UNSUPPORTED,
	KVFS_JWK_RSA,
	KVFS_JWK_EC,
};

enum kvfs_jwk_family kvfs_jwk_family(const char *kty);

/* A JWK's public members, borrowed; those of the other family are
 * ignored. */
struct kvfs_jwk {
	const char *kty;
	const char *n, *e;	 /* RSA */
	const char *crv, *x, *y; /* EC */
};

/* The public key of k as SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC
 * KEY-----"), malloc'ed and NUL-terminated, and its size in bits (RSA: of
 * n; EC: of the curve).  RSA: n of 1024 to 16384 bits (leading zero
 * octets allowed), e odd, greater than 1, at most 64 bits.  EC: crv P-256,
 * P-384, P-521 or P-256K (secp256k1), x and y of exactly the curve's field
 * size, a point on the curve.  -EBADMSG for anything else (err's message
 * says what), -EOPNOTSUPP for a kty of no supported family, -ENOMEM. */
int kvfs_jwk_public_pem(const struct kvfs_jwk *k, char **ret_pem,
			size_t *ret_len, unsigned *ret_bits,
			struct kvfs_error *err);

#endif
