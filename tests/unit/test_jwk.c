/* Unit tests for jwk.c: keys generated here with OpenSSL come back as
 * their own public PEM from their JWK members; the vault's recorded keys
 * (tests/data/vault-key-*.json) give PEM that parses and, for the EC key,
 * verifies the signature the vault made with it; hostile members are
 * refused with a message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jwk.h"
#include "pki.h"
#include "tap.h"
#include "util.h"
#include "vault.h"

/* bytes -> base64url without padding, as a JWK writes them. */
static char *b64url(const unsigned char *in, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

static char *own_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	PEM_write_bio_PUBKEY(b, k);
	n = BIO_get_mem_data(b, &data);
	s = strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

/* A generated key's JWK members; the strings are the test's. */
struct members {
	char *n, *e, *x, *y;
};

static void members_clear(struct members *m)
{
	free(m->n);
	free(m->e);
	free(m->x);
	free(m->y);
	memset(m, 0, sizeof(*m));
}

static char *bn_b64url(EVP_PKEY *k, const char *param)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	EVP_PKEY_get_bn_param(k, param, &bn);
	n = BN_bn2bin(bn, buf);
	BN_free(bn);
	return b64url(buf, (size_t)n);
}

static void rsa_members(EVP_PKEY *k, struct members *m)
{
	m->n = bn_b64url(k, OSSL_PKEY_PARAM_RSA_N);
	m->e = bn_b64url(k, OSSL_PKEY_PARAM_RSA_E);
}

static void ec_members(EVP_PKEY *k, size_t bytes, struct members *m)
{
	unsigned char pub[1 + 2 * 66];
	size_t len = 0;

	EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub,
					sizeof(pub), &len);
	if (len != 1 + 2 * bytes || pub[0] != 0x04) {
		ok(0, "an uncompressed point of %zu bytes", 1 + 2 * bytes);
		return;
	}
	m->x = b64url(pub + 1, bytes);
	m->y = b64url(pub + 1 + bytes, bytes);
}

static int pem_of(const struct kvfs_jwk *k, char **pem, unsigned *bits,
		  struct kvfs_error *err)
{
	size_t len;
	int r;

	kvfs_error_clear(err);
	*pem = NULL;
	r = kvfs_jwk_public_pem(k, pem, &len, bits, err);
	if (r == 0 && strlen(*pem) != len)
		return -1;
	return r;
}

static void test_round_trip(void)
{
	static const struct {
		const char *crv, *group;
		size_t bytes;
		unsigned bits;
	} curves[] = {
		{"P-256", "P-256", 32, 256},
		{"P-384", "P-384", 48, 384},
		{"P-521", "P-521", 66, 521},
		{"P-256K", "secp256k1", 32, 256},
	};
	static const unsigned rsa_bits[] = {1024, 2048, 3072};
	struct kvfs_error err;

	for (size_t i = 0; i < ELEMENTSOF(rsa_bits); i++) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
						(size_t)rsa_bits[i]);
		struct members m = {0};
		struct kvfs_jwk j = {.kty = i ? "RSA" : "RSA-HSM"};
		char *pem, *want = own_pem(k);
		unsigned bits = 0;

		rsa_members(k, &m);
		j.n = m.n;
		j.e = m.e;
		is_int(pem_of(&j, &pem, &bits, &err), 0, "RSA-%u (%s)",
		       rsa_bits[i], err.message);
		is_str(pem, want, "RSA-%u: the key's own public PEM",
		       rsa_bits[i]);
		is_int(bits, rsa_bits[i], "RSA-%u: its size", rsa_bits[i]);
		free(pem);
		free(want);
		members_clear(&m);
		EVP_PKEY_free(k);
	}

	for (size_t i = 0; i < ELEMENTSOF(curves); i++) {
		EVP_PKEY *k =
			EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i].group);
		struct members m = {0};
		struct kvfs_jwk j = {.kty = i % 2 ? "EC-HSM" : "EC",
				     .crv = curves[i].crv};
		char *pem = NULL, *want;
		unsigned bits = 0;

		ok(k != NULL, "%s key generated", curves[i].crv);
		if (!k)
			continue;
		want = own_pem(k);
		ec_members(k, curves[i].bytes, &m);
		j.x = m.x;
		j.y = m.y;
		is_int(pem_of(&j, &pem, &bits, &err), 0, "%s (%s)",
		       curves[i].crv, err.message);
		is_str(pem, want, "%s: the key's own public PEM",
		       curves[i].crv);
		is_int(bits, curves[i].bits, "%s: its size", curves[i].crv);
		free(pem);
		free(want);
		members_clear(&m);
		EVP_PKEY_free(k);
	}
}

static EVP_PKEY *pem_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);

	BIO_free(b);
	return k;
}

static int bundle_pem(const char *file, struct kvfs_key_bundle *b, char **pem,
		      unsigned *bits)
{
	struct kvfs_error err = {0};
	struct kvfs_jwk j;
	size_t len;
	char *json = tap_slurp(file, &len);
	int r;

	if (!json)
		return -ENOENT;
	r = kvfs_vault_parse_key(json, len, NULL, b, &err);
	free(json);
	if (r < 0)
		return r;
	j = (struct kvfs_jwk){.kty = b->kty,
			      .n = b->n,
			      .e = b->e,
			      .crv = b->crv,
			      .x = b->x,
			      .y = b->y};
	return pem_of(&j, pem, bits, &err);
}

/* The vault's keys: the specification's RSA key, and the service's EC
 * P-384 key with a signature it made (ES384: r || s over a SHA-384
 * digest), verified with the PEM made here. */
static void test_vault_keys(void)
{
	struct kvfs_key_bundle b = {0};
	unsigned char *digest = NULL, *sig = NULL, *der = NULL;
	size_t dl = 0, sl = 0, jl;
	char *pem = NULL, *json;
	unsigned bits = 0;
	EVP_PKEY *k;
	int r;

	r = bundle_pem("vault-key-rsa.json", &b, &pem, &bits);
	is_int(r, 0, "the specification's RSA key makes a PEM");
	is_int(bits, 2048, "of 2048 bits");
	k = pem ? pem_key(pem) : NULL;
	ok(k && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA,
	   "which OpenSSL reads back as RSA");
	EVP_PKEY_free(k);
	free(pem);
	kvfs_key_bundle_clear(&b);

	r = bundle_pem("vault-key-ec.json", &b, &pem, &bits);
	is_int(r, 0, "the service's EC key makes a PEM");
	is_int(bits, 384, "of 384 bits");
	kvfs_key_bundle_clear(&b);
	k = pem ? pem_key(pem) : NULL;
	free(pem);
	ok(k != NULL, "which OpenSSL reads back");

	json = tap_slurp("vault-key-ec-sign.json", &jl);
	if (json) {
		/* The recorded sign request's digest and the answer's value,
		 * found by hand: the file is one line of known shape. */
		char *d = strstr(json, "\"digest\":\"") + 10;
		char *v = strstr(json, "\"value\":\"") + 9;

		*strchr(d, '"') = '\0';
		*strchr(v, '"') = '\0';
		kvfs_pki_base64url_decode(d, strlen(d), &digest, &dl);
		kvfs_pki_base64url_decode(v, strlen(v), &sig, &sl);
	}
	ok(dl == 48 && sl == 96, "a SHA-384 digest and a 96-byte signature");
	if (k && dl == 48 && sl == 96) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
		int derl;

		ECDSA_SIG_set0(es, BN_bin2bn(sig, 48, NULL),
			       BN_bin2bn(sig + 48, 48, NULL));
		derl = i2d_ECDSA_SIG(es, &der);
		EVP_PKEY_verify_init(ctx);
		is_int(EVP_PKEY_verify(ctx, der, (size_t)derl, digest, dl), 1,
		       "public.pem verifies the vault's ES384 signature");
		digest[0] ^= 1;
		is_int(EVP_PKEY_verify(ctx, der, (size_t)derl, digest, dl), 0,
		       "and not over another digest");
		EVP_PKEY_CTX_free(ctx);
		ECDSA_SIG_free(es);
		OPENSSL_free(der);
	}
	EVP_PKEY_free(k);
	free(digest);
	free(sig);
	free(json);
}

/* base64url of n bytes, all fill but the first (top) and the last. */
static char *bytes_b64url(size_t n, unsigned char top, unsigned char fill,
			  unsigned char last)
{
	unsigned char *b = malloc(n);
	char *s;

	memset(b, fill, n);
	b[0] = top;
	b[n - 1] = last;
	s = b64url(b, n);
	free(b);
	return s;
}

static void expect_refused(const struct kvfs_jwk *j, int want, const char *what,
			   const char *says)
{
	struct kvfs_error err;
	unsigned bits = 7;
	char *pem = NULL;

	is_int(pem_of(j, &pem, &bits, &err), want, "%s refused (%s)", what,
	       err.message);
	ok(pem == NULL && bits == 7, "%s: nothing returned", what);
	ok(strstr(err.message, says) != NULL, "%s: the message says '%s'", what,
	   says);
	free(pem);
}

static void test_hostile(void)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct members m = {0}, r = {0};
	struct kvfs_jwk j;
	struct kvfs_error err;
	unsigned char *nb = NULL, *zb;
	size_t nl = 0;
	char *pem, *want, *s;
	unsigned bits;

	ec_members(ec, 32, &m);
	rsa_members(rsa, &r);

	static const struct {
		const char *x;
		const char *what;
	} bad_b64[] = {
		{"AB+/", "standard base64's alphabet"}, {"AAAA=", "padding"},
		{"AAAAA", "a length of 4n+1"},		{"AA AA", "whitespace"},
		{"AB", "non-canonical bits"},		{"", "nothing"},
	};
	for (size_t i = 0; i < ELEMENTSOF(bad_b64); i++) {
		const char *says = i < 5 ? "base64url" : "bytes";

		j = (struct kvfs_jwk){.kty = "EC",
				      .crv = "P-256",
				      .x = bad_b64[i].x,
				      .y = m.y};
		expect_refused(&j, -EBADMSG, bad_b64[i].what, says);
	}

	/* x of 31 and 33 bytes (a leading zero octet), y off the curve. */
	s = bytes_b64url(31, 1, 1, 1);
	j = (struct kvfs_jwk){.kty = "EC", .crv = "P-256", .x = s, .y = m.y};
	expect_refused(&j, -EBADMSG, "x of 31 bytes", "not 32");
	free(s);
	s = bytes_b64url(33, 0, 1, 1);
	j.x = s;
	expect_refused(&j, -EBADMSG, "x of 33 bytes", "not 32");
	free(s);
	kvfs_pki_base64url_decode(m.y, strlen(m.y), &nb, &nl);
	nb[31] ^= 1;
	s = b64url(nb, nl);
	free(nb);
	j = (struct kvfs_jwk){.kty = "EC", .crv = "P-256", .x = m.x, .y = s};
	expect_refused(&j, -EBADMSG, "a point off the curve", "not on P-256");
	free(s);
	s = bytes_b64url(32, 0, 0, 0);
	j = (struct kvfs_jwk){.kty = "EC", .crv = "P-256", .x = s, .y = s};
	expect_refused(&j, -EBADMSG, "the point (0, 0)", "not on P-256");
	free(s);
	j = (struct kvfs_jwk){.kty = "EC", .crv = "P-384", .x = m.x, .y = m.y};
	expect_refused(&j, -EBADMSG, "P-256 coordinates as P-384", "not 48");
	static const char *const crvs[] = {"P-192", "p-256", "secp256r1",
					   "X25519", ""};
	for (size_t i = 0; i < ELEMENTSOF(crvs); i++) {
		j = (struct kvfs_jwk){
			.kty = "EC", .crv = crvs[i], .x = m.x, .y = m.y};
		expect_refused(&j, -EBADMSG, crvs[i], "unknown curve");
	}
	j = (struct kvfs_jwk){.kty = "EC", .x = m.x, .y = m.y};
	expect_refused(&j, -EBADMSG, "no crv", "unknown curve");
	j = (struct kvfs_jwk){.kty = "EC", .crv = "P-256", .x = m.x};
	expect_refused(&j, -EBADMSG, "no y", "without 'y'");

	/* RSA's n and e. */
	s = bytes_b64url(64, 0xc1, 0x55, 0x01);
	j = (struct kvfs_jwk){.kty = "RSA", .n = s, .e = "AQAB"};
	expect_refused(&j, -EBADMSG, "n of 512 bits", "512 bits");
	free(s);
	s = bytes_b64url(2049, 0x01, 0x55, 0x01);
	j.n = s;
	expect_refused(&j, -EBADMSG, "n of 16385 bits", "16385 bits");
	free(s);
	s = bytes_b64url(100000, 0x01, 0x55, 0x01);
	j.n = s;
	expect_refused(&j, -EBADMSG, "n of 100,000 bytes", "too long");
	free(s);
	s = bytes_b64url(256, 0xc1, 0x55, 0x02);
	j.n = s;
	expect_refused(&j, -EBADMSG, "an even n", "even");
	free(s);
	j = (struct kvfs_jwk){.kty = "RSA", .n = r.n, .e = "AQAA"};
	expect_refused(&j, -EBADMSG, "e of 65536", "exponent");
	j.e = "AQ";
	expect_refused(&j, -EBADMSG, "e of 1", "exponent");
	j.e = "";
	expect_refused(&j, -EBADMSG, "no e bytes", "exponent");
	j.e = "AQAAAAAAAAAB";
	expect_refused(&j, -EBADMSG, "e of 65 bits", "exponent");
	j.e = NULL;
	expect_refused(&j, -EBADMSG, "no e", "without 'e'");
	j = (struct kvfs_jwk){.kty = "RSA", .n = "", .e = "AQAB"};
	expect_refused(&j, -EBADMSG, "no n bytes", "0 bits");

	static const char *const ktys[] = {"oct", "oct-HSM", "OKP", "rsa", ""};
	for (size_t i = 0; i < ELEMENTSOF(ktys); i++) {
		j = (struct kvfs_jwk){.kty = ktys[i], .n = r.n, .e = r.e};
		expect_refused(&j, -EOPNOTSUPP, ktys[i], "no public key");
	}
	j = (struct kvfs_jwk){.n = r.n, .e = r.e};
	expect_refused(&j, -EOPNOTSUPP, "no kty", "no public key");

	/* Leading zero octets of n are not the key's: the same PEM. */
	kvfs_pki_base64url_decode(r.n, strlen(r.n), &nb, &nl);
	zb = calloc(1, nl + 2);
	memcpy(zb + 2, nb, nl);
	s = b64url(zb, nl + 2);
	want = own_pem(rsa);
	j = (struct kvfs_jwk){.kty = "RSA", .n = s, .e = r.e};
	is_int(pem_of(&j, &pem, &bits, &err), 0, "n with two zero octets");
	is_str(pem, want, "gives the key's own PEM");
	is_int(bits, 2048, "and its size");
	free(pem);
	free(want);
	free(s);
	free(zb);
	free(nb);

	members_clear(&m);
	members_clear(&r);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

static void test_family(void)
{
	is_int(kvfs_jwk_family("RSA"), KVFS_JWK_RSA, "RSA");
	is_int(kvfs_jwk_family("RSA-HSM"), KVFS_JWK_RSA, "RSA-HSM");
	is_int(kvfs_jwk_family("EC"), KVFS_JWK_EC, "EC");
	is_int(kvfs_jwk_family("EC-HSM"), KVFS_JWK_EC, "EC-HSM");
	is_int(kvfs_jwk_family("oct-HSM"), KVFS_JWK_UNSUPPORTED, "oct-HSM");
	is_int(kvfs_jwk_family("ec"), KVFS_JWK_UNSUPPORTED, "ec");
	is_int(kvfs_jwk_family(NULL), KVFS_JWK_UNSUPPORTED, "NULL");
}

int main(void)
{
	test_family();
	test_round_trip();
	test_vault_keys();
	test_hostile();
	return done_testing();
}
