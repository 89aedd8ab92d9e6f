/* A JWK's public members to SubjectPublicKeyInfo PEM (jwk.h).  The key is
 * built from its parameters with OpenSSL 3's EVP_PKEY_fromdata(), never by
 * hand-written DER, and checked before it is written: RSA's n and e by
 * their sizes and parity, an EC point by OpenSSL's public key check (on
 * the curve, not the point at infinity).  base64url is pki.c's decoder.
 * OpenSSL errors end here.  Pure functions; any thread. */
#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "jwk.h"
#include "pki.h"
#include "util.h"

#define RSA_BITS_MIN 1024
#define RSA_BITS_MAX 16384
#define RSA_E_BYTES_MAX 8

DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)

/* Key Vault's curve names, OpenSSL's and the size of a coordinate. */
static const struct curve {
	const char *crv;
	const char *group;
	size_t bytes;
} curves[] = {
	{"P-256", SN_X9_62_prime256v1, 32},
	{"P-384", SN_secp384r1, 48},
	{"P-521", SN_secp521r1, 66},
	{"P-256K", SN_secp256k1, 32},
};

enum kvfs_jwk_family kvfs_jwk_family(const char *kty)
{
	if (!kty)
		return KVFS_JWK_UNSUPPORTED;
	if (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0)
		return KVFS_JWK_RSA;
	if (strcmp(kty, "EC") == 0 || strcmp(kty, "EC-HSM") == 0)
		return KVFS_JWK_EC;
	return KVFS_JWK_UNSUPPORTED;
}

/* A member's bytes; what names it for a message. */
static int member(const char *b64, const char *what, unsigned char **ret,
		  size_t *ret_len, struct kvfs_error *err)
{
	int r;

	if (!b64) {
		kvfs_error_set_message(err, "JWK without '%s'", what);
		return -EBADMSG;
	}
	r = kvfs_pki_base64url_decode(b64, strlen(b64), ret, ret_len);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		kvfs_error_set_message(err, "JWK '%s' is not base64url", what);
		return -EBADMSG;
	}
	return 0;
}

/* params as a public key of type name ("RSA", "EC"). */
static int from_params(const char *name, OSSL_PARAM_BLD *bld, EVP_PKEY **ret)
{
	_cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
	if (!params || !ctx)
		return -ENOMEM;
	if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		return -EBADMSG;
	*ret = key;
	return 0;
}

static int rsa_key(const struct kvfs_jwk *k, EVP_PKEY **ret, unsigned *bits,
		   struct kvfs_error *err)
{
	_cleanup_free_ unsigned char *n = NULL, *e = NULL;
	_cleanup_(BN_freep) BIGNUM *bn = NULL, *be = NULL;
	_cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
	size_t nl, el;
	int r;

	if ((r = member(k->n, "n", &n, &nl, err)) < 0 ||
	    (r = member(k->e, "e", &e, &el, err)) < 0)
		return r;
	/* Bounded before any arithmetic: what may come is at most 16384
	 * bits of n, and of e what OpenSSL takes for any n. */
	if (nl > RSA_BITS_MAX / 8 + 8 || el > RSA_E_BYTES_MAX + 8) {
		kvfs_error_set_message(err, "RSA JWK member too long");
		return -EBADMSG;
	}
	bn = BN_bin2bn(n, (int)nl, NULL);
	be = BN_bin2bn(e, (int)el, NULL);
	if (!bn || !be)
		return -ENOMEM;
	*bits = (unsigned)BN_num_bits(bn);
	if (*bits < RSA_BITS_MIN || *bits > RSA_BITS_MAX) {
		kvfs_error_set_message(err, "RSA key of %u bits (%d to %d)",
				       *bits, RSA_BITS_MIN, RSA_BITS_MAX);
		return -EBADMSG;
	}
	if (!BN_is_odd(bn)) {
		kvfs_error_set_message(err, "RSA modulus is even");
		return -EBADMSG;
	}
	if (!BN_is_odd(be) || BN_is_one(be) ||
	    BN_num_bytes(be) > RSA_E_BYTES_MAX) {
		kvfs_error_set_message(err, "RSA exponent is even, 1 or longer "
					    "than 64 bits");
		return -EBADMSG;
	}
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		return -ENOMEM;
	r = from_params("RSA", bld, ret);
	if (r == -EBADMSG)
		kvfs_error_set_message(err, "OpenSSL refused the RSA key");
	return r;
}

static int ec_key(const struct kvfs_jwk *k, EVP_PKEY **ret, unsigned *bits,
		  struct kvfs_error *err)
{
	_cleanup_free_ unsigned char *x = NULL, *y = NULL, *pt = NULL;
	_cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *check = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	const struct curve *c = NULL;
	size_t xl, yl;
	int r;

	for (size_t i = 0; k->crv && i < ELEMENTSOF(curves); i++)
		if (strcmp(k->crv, curves[i].crv) == 0)
			c = &curves[i];
	if (!c) {
		kvfs_error_set_message(err,
				       "EC JWK of an unknown curve '%.16s'",
				       k->crv ? k->crv : "");
		return -EBADMSG;
	}
	if ((r = member(k->x, "x", &x, &xl, err)) < 0 ||
	    (r = member(k->y, "y", &y, &yl, err)) < 0)
		return r;
	if (xl != c->bytes || yl != c->bytes) {
		kvfs_error_set_message(err,
				       "EC JWK of %s with coordinates of %zu "
				       "and %zu bytes, not %zu",
				       c->crv, xl, yl, c->bytes);
		return -EBADMSG;
	}
	/* The uncompressed point of SEC 1: 04 || x || y. */
	pt = malloc(1 + 2 * c->bytes);
	if (!pt)
		return -ENOMEM;
	pt[0] = 0x04;
	memcpy(pt + 1, x, c->bytes);
	memcpy(pt + 1 + c->bytes, y, c->bytes);

	bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     c->group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
					      1 + 2 * c->bytes))
		return -ENOMEM;
	r = from_params("EC", bld, &key);
	if (r == -ENOMEM)
		return r;
	check = r == 0 ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
	if (r == 0 && !check)
		return -ENOMEM;
	if (r < 0 || EVP_PKEY_public_check(check) != 1) {
		kvfs_error_set_message(err, "EC JWK point is not on %s",
				       c->crv);
		return -EBADMSG;
	}
	*bits = (unsigned)EVP_PKEY_get_bits(key);
	*ret = TAKE_PTR(key);
	return 0;
}

int kvfs_jwk_public_pem(const struct kvfs_jwk *k, char **ret_pem,
			size_t *ret_len, unsigned *ret_bits,
			struct kvfs_error *err)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	unsigned bits = 0;
	int r;

	switch (kvfs_jwk_family(k->kty)) {
	case KVFS_JWK_RSA:
		r = rsa_key(k, &key, &bits, err);
		break;
	case KVFS_JWK_EC:
		r = ec_key(k, &key, &bits, err);
		break;
	default:
		kvfs_error_set_message(err,
				       "key type '%.32s' has no public key "
				       "kvfs can show",
				       k->kty ? k->kty : "");
		return -EOPNOTSUPP;
	}
	if (r >= 0) {
		r = kvfs_pki_pubkey_pem(key, ret_pem, ret_len);
		if (r == -EINVAL) {
			kvfs_error_set_message(err, "OpenSSL cannot write the "
						    "key");
			r = -EBADMSG;
		}
	}
	ERR_clear_error();
	if (r < 0)
		return r;
	*ret_bits = bits;
	return 0;
}
