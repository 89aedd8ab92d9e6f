/* Unit tests for the certificate provider's client assertion (clientcert.c):
 * loading PEM and PKCS#12 credentials (password, wrong password, EC key
 * refused), and JWTs decoded back: header (alg, typ, x5t#S256 / x5t, x5c),
 * claims (aud, iss, sub, jti, nbf, iat, exp), and the signature verified
 * with OpenSSL, PSS with a 32-byte salt for PS256. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/provider.h"
#include "tap.h"

#define AUD "https://login.example/tenant/oauth2/v2.0/token"
#define CLIENT "11111111-2222-3333-4444-555555555555"

static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *issuer_key, X509 *issuer,
		       const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_set_pubkey(x, key);
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	X509_NAME_free(name);
	return x;
}

static char *pem_of(EVP_PKEY *key, X509 *a, X509 *b, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	/* certificate first, key in the middle: the order must not matter */
	PEM_write_bio_X509(bio, a);
	PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	if (b)
		PEM_write_bio_X509(bio, b);
	n = BIO_get_mem_data(bio, &data);
	out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	return out;
}

static unsigned char *b64url_decode(const char *s, size_t n, size_t *ret_len)
{
	char *t = calloc(1, n + 4);
	unsigned char *out = malloc(n + 4);
	size_t m = 0;
	int len;

	for (size_t i = 0; i < n; i++)
		t[m++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (m % 4)
		t[m++] = '=';
	len = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
	if (len >= 0)
		while (m > 0 && t[--m] == '=')
			len--;
	free(t);
	*ret_len = len < 0 ? 0 : (size_t)len;
	return out;
}

static json_t *json_part(const char *s, size_t n)
{
	size_t len;
	unsigned char *raw = b64url_decode(s, n, &len);
	json_t *j = json_loadb((const char *)raw, len, 0, NULL);

	free(raw);
	return j;
}

static char *digest_b64url(X509 *x, const EVP_MD *md)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n;
	char buf[128];
	int len;

	X509_digest(x, md, d, &n);
	len = EVP_EncodeBlock((unsigned char *)buf, d, (int)n);
	while (len > 0 && buf[len - 1] == '=')
		len--;
	buf[len] = '\0';
	for (char *p = buf; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return strdup(buf);
}

/* Decode jwt and check it; returns the number of x5c entries. */
static int check_jwt(const char *jwt, EVP_PKEY *key, X509 *leaf, bool ps256,
		     int64_t now, const char *what)
{
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : 0;
	json_t *h, *c, *x5c;
	unsigned char *sig;
	size_t siglen;
	char *thumb;
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pctx = NULL;
	int n = 0, v;

	if (!ok(d1 && d2 && !strchr(d2 + 1, '.'), "%s: three parts", what))
		return -1;
	h = json_part(jwt, (size_t)(d1 - jwt));
	c = json_part(d1 + 1, (size_t)(d2 - d1 - 1));
	ok(h && c, "%s: header and claims are JSON", what);

	is_str(json_string_value(json_object_get(h, "alg")),
	       ps256 ? "PS256" : "RS256", "%s: alg", what);
	is_str(json_string_value(json_object_get(h, "typ")), "JWT", "%s: typ",
	       what);
	thumb = digest_b64url(leaf, ps256 ? EVP_sha256() : EVP_sha1());
	is_str(json_string_value(
		       json_object_get(h, ps256 ? "x5t#S256" : "x5t")),
	       thumb, "%s: thumbprint of the leaf", what);
	ok(!json_object_get(h, ps256 ? "x5t" : "x5t#S256"),
	   "%s: only one thumbprint", what);
	free(thumb);
	x5c = json_object_get(h, "x5c");
	if (x5c)
		n = (int)json_array_size(x5c);

	is_str(json_string_value(json_object_get(c, "aud")), AUD,
	       "%s: aud is the token endpoint", what);
	is_str(json_string_value(json_object_get(c, "iss")), CLIENT, "%s: iss",
	       what);
	is_str(json_string_value(json_object_get(c, "sub")), CLIENT, "%s: sub",
	       what);
	is_int(json_integer_value(json_object_get(c, "nbf")), now, "%s: nbf",
	       what);
	is_int(json_integer_value(json_object_get(c, "iat")), now, "%s: iat",
	       what);
	is_int(json_integer_value(json_object_get(c, "exp")), now + 600,
	       "%s: exp 10 minutes later", what);
	{
		const char *jti = json_string_value(json_object_get(c, "jti"));

		ok(jti && strlen(jti) == 36 && jti[14] == '4' && jti[8] == '-',
		   "%s: jti is a random UUID: %s", what, jti ? jti : "(null)");
	}

	sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
	md = EVP_MD_CTX_new();
	EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key);
	if (ps256) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
		EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256());
	}
	v = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt,
			     (size_t)(d2 - jwt));
	is_int(v, 1, "%s: signature verifies (%s)", what,
	       ps256 ? "PSS, salt 32" : "PKCS#1 v1.5");
	EVP_MD_CTX_free(md);
	free(sig);
	json_decref(h);
	json_decref(c);
	return n;
}

int main(void)
{
	EVP_PKEY *key = EVP_RSA_gen(2048), *ca_key = EVP_RSA_gen(2048);
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	X509 *ca = make_cert(ca_key, NULL, NULL, "test CA");
	X509 *leaf = make_cert(key, ca_key, ca, "kvfs client");
	X509 *ec_cert = make_cert(ec, NULL, NULL, "ec client");
	struct kvfs_error err = {0};
	struct kvfs_clientcert *cred = NULL;
	char *pem, *jwt = NULL, *jwt2 = NULL;
	size_t len;
	int64_t now = 1700000000;
	int r, n;

	pem = pem_of(key, leaf, ca, &len);
	r = kvfs_clientcert_load(pem, len, NULL, &cred, &err);
	is_int(r, 0, "PEM with certificate, key and CA loads");

	r = kvfs_clientcert_assertion(cred, KVFS_ASSERTION_ALG_PS256, false,
				      CLIENT, AUD, now, &jwt);
	is_int(r, 0, "PS256 assertion built");
	n = check_jwt(jwt, key, leaf, true, now, "PS256");
	is_int(n, 0, "no x5c unless asked");
	r = kvfs_clientcert_assertion(cred, KVFS_ASSERTION_ALG_PS256, false,
				      CLIENT, AUD, now, &jwt2);
	ok(r == 0 && strcmp(jwt, jwt2) != 0,
	   "two assertions differ (fresh jti, random salt)");
	free(jwt);
	free(jwt2);

	r = kvfs_clientcert_assertion(cred, KVFS_ASSERTION_ALG_RS256, true,
				      CLIENT, AUD, now, &jwt);
	is_int(r, 0, "RS256 assertion with the chain built");
	n = check_jwt(jwt, key, leaf, false, now, "RS256");
	is_int(n, 2, "x5c holds leaf and CA");
	free(jwt);
	kvfs_clientcert_free(cred);
	free(pem);

	/* PKCS#12 with a password */
	{
		PKCS12 *p12 = PKCS12_create("pfx-pass", "client", key, leaf,
					    NULL, 0, 0, 0, 0, 0);
		unsigned char *der = NULL;
		int dlen = i2d_PKCS12(p12, &der);

		cred = NULL;
		r = kvfs_clientcert_load((char *)der, (size_t)dlen, "pfx-pass",
					 &cred, &err);
		is_int(r, 0, "PKCS#12 with its password loads");
		if (r == 0) {
			r = kvfs_clientcert_assertion(
				cred, KVFS_ASSERTION_ALG_PS256, false, CLIENT,
				AUD, now, &jwt);
			check_jwt(jwt, key, leaf, true, now, "PKCS#12 PS256");
			free(jwt);
			kvfs_clientcert_free(cred);
		}
		cred = NULL;
		r = kvfs_clientcert_load((char *)der, (size_t)dlen, "wrong",
					 &cred, &err);
		is_int(r, -EACCES, "wrong PKCS#12 password refused");
		ok(strstr(err.message, "PKCS#12") != NULL &&
			   strstr(err.message, "wrong") == NULL,
		   "says why, without the password: %s", err.message);
		r = kvfs_clientcert_load((char *)der, (size_t)dlen, NULL, &cred,
					 &err);
		is_int(r, -EACCES, "no password: refused");
		ok(strstr(err.message, "cert_password_file=") != NULL,
		   "names cert_password_file=: %s", err.message);
		OPENSSL_free(der);
		PKCS12_free(p12);
	}

	/* A PKCS#12 names its own iteration counts: more than 200,000 for
	 * the bags or for the MAC is refused before any derivation. */
	for (int bags = 0; bags <= 1; bags++) {
		PKCS12 *p12 = PKCS12_create("pfx-pass", "client", key, leaf,
					    NULL, 0, 0, bags ? 250000 : 2048,
					    bags ? 2048 : 250000, 0);
		unsigned char *der = NULL;
		int dlen = i2d_PKCS12(p12, &der);

		cred = NULL;
		r = kvfs_clientcert_load((char *)der, (size_t)dlen, "pfx-pass",
					 &cred, &err);
		is_int(r, -EINVAL, "250,000 iterations (%s) refused",
		       bags ? "the bags" : "the MAC");
		ok(strstr(err.message, "iterations") != NULL,
		   "the message says why: %s", err.message);
		kvfs_clientcert_free(cred);
		OPENSSL_free(der);
		PKCS12_free(p12);
	}

	/* EC keys: Entra ID takes no ES256 assertion */
	pem = pem_of(ec, ec_cert, NULL, &len);
	cred = NULL;
	r = kvfs_clientcert_load(pem, len, NULL, &cred, &err);
	is_int(r, -EOPNOTSUPP, "EC key refused");
	ok(strstr(err.message, "EC") && strstr(err.message, "RSA"),
	   "the message says EC is refused and RSA needed: %s", err.message);
	free(pem);

	/* a certificate that is not the key's */
	pem = pem_of(key, ca, NULL, &len);
	r = kvfs_clientcert_load(pem, len, NULL, &cred, &err);
	is_int(r, -EINVAL, "no certificate matching the key");
	free(pem);

	r = kvfs_clientcert_load("garbage", 7, NULL, &cred, &err);
	is_int(r, -EINVAL, "neither PEM nor PKCS#12");
	memset(&err, 'Z', sizeof(err));
	r = kvfs_clientcert_load("", 0, NULL, &cred, &err);
	is_int(r, -EINVAL, "an empty file");
	is_str(err.message, "is not PEM, and not a PKCS#12", "says so");

	X509_free(ca);
	X509_free(leaf);
	X509_free(ec_cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ec);
	return done_testing();
}
