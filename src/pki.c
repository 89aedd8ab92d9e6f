/* OpenSSL side of the tree: DER certificates to PEM, the strict base64
 * decoder the vault client uses for "cer", a certificate's secret (PEM or
 * PKCS#12) to privkey/chain/fullchain/bundle/pfx, and the thumbprints and
 * subject the extended attributes show.  Key material only ever sits in
 * OpenSSL's secure-memory BIOs and in buffers wiped before they are freed.
 * OpenSSL errors are translated to -errno here and nowhere else.  Pure
 * functions; thread-safe. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "util.h"

/* 0..63 for the standard alphabet, -1 for anything else ('=' included). */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int kvfs_pki_base64_decode(const char *in, size_t len, unsigned char **ret,
			   size_t *ret_len)
{
	_cleanup_free_ unsigned char *out = NULL;
	size_t pad = 0, n = 0;

	if (!in && len > 0)
		return -EINVAL;
	if (len % 4 != 0)
		return -EINVAL;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;

	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;

	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		size_t real = last ? 4 - pad : 4;
		uint32_t v = 0;

		for (size_t j = 0; j < 4; j++) {
			int d = 0;

			if (j < real) {
				d = b64_value((unsigned char)in[i + j]);
				if (d < 0)
					return -EINVAL;
			}
			v = v << 6 | (uint32_t)d;
		}
		/* Non-canonical input (bits set beyond the last byte) is
		 * refused: the vault never sends it. */
		if (real == 2 && (v & 0xffff) != 0)
			return -EINVAL;
		if (real == 3 && (v & 0xff) != 0)
			return -EINVAL;

		out[n++] = (unsigned char)(v >> 16);
		if (real >= 3)
			out[n++] = (unsigned char)(v >> 8);
		if (real == 4)
			out[n++] = (unsigned char)v;
	}

	*ret = TAKE_PTR(out);
	*ret_len = n;
	return 0;
}

static void bio_freep(BIO **b)
{
	BIO_free(*b);
}

static void x509_name_freep(X509_NAME **n)
{
	X509_NAME_free(*n);
}

/* ---- the shape of a DER certificate ----
 *
 * The vault's "cer" is only ever copied out (cert.pem, cert.der) and
 * hashed; decoding it with d2i_X509() to check that it is a certificate
 * made OpenSSL 3 decode its public key through the provider decoders, more
 * than half of the daemon's CPU on a cold read.  A walk over the DER
 * elements of RFC 5280's Certificate is enough to refuse what is not one,
 * and finds the subject for the extended attributes. */

#define DER_SEQUENCE 0x30
#define DER_INTEGER 0x02
#define DER_BIT_STRING 0x03
#define DER_VERSION 0xa0 /* [0] EXPLICIT */

struct der_elem {
	unsigned char tag;
	const unsigned char *start; /* the tag byte */
	const unsigned char *body;
	size_t len;		  /* of the body */
	const unsigned char *end; /* just past the body */
};

/* The element at *p, which must end by end: a low-number tag and a
 * definite length in its shortest form, as DER has them. */
static int der_next(const unsigned char **p, const unsigned char *end,
		    struct der_elem *e)
{
	const unsigned char *q = *p;
	size_t len;

	if (end - q < 2)
		return -EINVAL;
	e->start = q;
	e->tag = *q++;
	if ((e->tag & 0x1f) == 0x1f)
		return -EINVAL;
	len = *q++;
	if (len & 0x80) {
		size_t n = len & 0x7f;

		/* 0x80 is BER's indefinite length; a zero first byte or a
		 * long form for less than 128 is not the shortest form. */
		if (n == 0 || n > 4 || (size_t)(end - q) < n || q[0] == 0)
			return -EINVAL;
		len = 0;
		while (n-- > 0)
			len = len << 8 | *q++;
		if (len < 0x80)
			return -EINVAL;
	}
	if (len > (size_t)(end - q))
		return -EINVAL;
	e->body = q;
	e->len = len;
	e->end = q + len;
	*p = e->end;
	return 0;
}

static int der_expect(const unsigned char **p, const unsigned char *end,
		      unsigned char tag, struct der_elem *e)
{
	if (der_next(p, end, e) < 0 || e->tag != tag)
		return -EINVAL;
	return 0;
}

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 * signatureValue BIT STRING }, of exactly len bytes, whose TBSCertificate
 * holds [version], serial, signature, issuer, validity, subject and
 * subjectPublicKeyInfo in that order, then only context-specific fields
 * (unique ids, extensions).  ret_subject: the subject Name element. */
static int der_cert_walk(const unsigned char *der, size_t len,
			 struct der_elem *ret_subject)
{
	const unsigned char *end = der + len, *p = der, *t;
	struct der_elem cert, tbs, alg, sig, e, subject;

	if (der_expect(&p, end, DER_SEQUENCE, &cert) < 0 || p != end)
		return -EINVAL;
	p = cert.body;
	if (der_expect(&p, cert.end, DER_SEQUENCE, &tbs) < 0 ||
	    der_expect(&p, cert.end, DER_SEQUENCE, &alg) < 0 ||
	    der_expect(&p, cert.end, DER_BIT_STRING, &sig) < 0 ||
	    p != cert.end || sig.len < 1 || sig.body[0] > 7)
		return -EINVAL;

	t = tbs.body;
	if (der_next(&t, tbs.end, &e) < 0)
		return -EINVAL;
	if (e.tag == DER_VERSION && der_next(&t, tbs.end, &e) < 0)
		return -EINVAL;
	if (e.tag != DER_INTEGER || e.len < 1 ||
	    der_expect(&t, tbs.end, DER_SEQUENCE, &e) < 0 || /* signature */
	    der_expect(&t, tbs.end, DER_SEQUENCE, &e) < 0 || /* issuer */
	    der_expect(&t, tbs.end, DER_SEQUENCE, &e) < 0 || /* validity */
	    der_expect(&t, tbs.end, DER_SEQUENCE, &subject) < 0 ||
	    der_expect(&t, tbs.end, DER_SEQUENCE, &e) < 0) /* key */
		return -EINVAL;
	while (t != tbs.end)
		if (der_next(&t, tbs.end, &e) < 0 || (e.tag & 0xc0) != 0x80)
			return -EINVAL;

	if (ret_subject)
		*ret_subject = subject;
	return 0;
}

int kvfs_pki_der_to_pem(const unsigned char *der, size_t len, char **ret_pem,
			size_t *ret_len)
{
	_cleanup_(bio_freep) BIO *bio = NULL;
	char *data = NULL, *pem;
	long n;

	if (!der || len == 0 || len > LONG_MAX)
		return -EINVAL;
	if (der_cert_walk(der, len, NULL) < 0)
		return -EINVAL;

	bio = BIO_new(BIO_s_mem());
	if (!bio) {
		ERR_clear_error();
		return -ENOMEM;
	}
	/* The vault's bytes as they are, not OpenSSL's re-encoding of them:
	 * cert.pem and cert.der must hold the same certificate bit for bit. */
	if (PEM_write_bio(bio, PEM_STRING_X509, "", der, (long)len) <= 0) {
		ERR_clear_error();
		return -ENOMEM;
	}
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || !data)
		return -EIO;

	pem = malloc((size_t)n + 1);
	if (!pem)
		return -ENOMEM;
	memcpy(pem, data, (size_t)n);
	pem[n] = '\0';

	*ret_pem = pem;
	*ret_len = (size_t)n;
	return 0;
}

/* ---- a certificate's secret ---- */

#define PEM_TYPE "application/x-pem-file"
#define PKCS12_TYPE "application/x-pkcs12"
#define MAX_CERTS 32

/* Everything a secret held: at most one key, and its certificates. */
struct parsed {
	EVP_PKEY *key;
	STACK_OF(X509) * certs;
};

static void parsed_clear(struct parsed *p)
{
	EVP_PKEY_free(p->key);
	sk_X509_pop_free(p->certs, X509_free);
	memset(p, 0, sizeof(*p));
}

static void pkcs12_freep(PKCS12 **p)
{
	PKCS12_free(*p);
}

static void why_set(char *why, size_t n, const char *text)
{
	if (why && n > 0)
		snprintf(why, n, "%s", text);
}

static int push_cert(struct parsed *p, X509 *x)
{
	if (sk_X509_num(p->certs) >= MAX_CERTS || !sk_X509_push(p->certs, x)) {
		X509_free(x);
		return -EBADMSG;
	}
	return 0;
}

/* PEM blocks: one unencrypted private key (PKCS#8, or the traditional RSA
 * and EC forms) and certificates; anything else is refused. */
static int parse_pem(const char *value, size_t len, struct parsed *p, char *why,
		     size_t why_len)
{
	_cleanup_(bio_freep) BIO *in = NULL;
	int blocks = 0, r = 0;

	if (len > INT_MAX)
		return -EBADMSG;
	in = BIO_new_mem_buf(value, (int)len);
	if (!in)
		return -ENOMEM;

	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		const unsigned char *q;
		long dlen = 0;

		/* Secure memory: the decoded block may be the key. */
		if (!PEM_read_bio_ex(in, &name, &header, &data, &dlen,
				     PEM_FLAG_SECURE |
					     PEM_FLAG_EAY_COMPATIBLE)) {
			unsigned long e = ERR_peek_last_error();

			ERR_clear_error();
			if (blocks > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				break;
			why_set(why, why_len, "the secret is not valid PEM");
			return -EBADMSG;
		}
		blocks++;
		q = data;
		if (strcmp(name, "CERTIFICATE") == 0) {
			X509 *x = d2i_X509(NULL, &q, dlen);

			if (!x || q != data + dlen) {
				X509_free(x);
				why_set(why, why_len,
					"a certificate in the secret is "
					"malformed");
				r = -EBADMSG;
			} else {
				r = push_cert(p, x);
				if (r < 0)
					why_set(why, why_len,
						"too many certificates");
			}
		} else if (strcmp(name, "PRIVATE KEY") == 0 ||
			   strcmp(name, "RSA PRIVATE KEY") == 0 ||
			   strcmp(name, "EC PRIVATE KEY") == 0) {
			EVP_PKEY *k = NULL;

			if (!p->key)
				k = d2i_AutoPrivateKey(NULL, &q, dlen);
			if (!k) {
				why_set(why, why_len,
					p->key ? "the secret holds two keys"
					       : "the key in the secret is "
						 "malformed");
				r = -EBADMSG;
			} else {
				p->key = k;
			}
		} else {
			why_set(why, why_len,
				"the secret holds a PEM block that is neither "
				"a certificate nor an unencrypted key");
			r = -EBADMSG;
		}
		OPENSSL_secure_free(name);
		OPENSSL_secure_free(header);
		OPENSSL_secure_clear_free(data, (size_t)dlen);
		ERR_clear_error();
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- bounding a PKCS#12's key derivation ----
 *
 * A PKCS#12 names its own PBKDF iteration counts (the MAC's, and each
 * encrypted bag's), and OpenSSL runs whatever count it is given: a secret
 * of 2^31 iterations would keep a FUSE thread busy for hours.  Key Vault
 * writes 2000, OpenSSL 2048, Windows at most a few 10,000s; more than
 * PKCS12_MAX_ITER is refused before any derivation runs. */
#define PKCS12_MAX_ITER 200000

static void pbe2param_freep(PBE2PARAM **p)
{
	PBE2PARAM_free(*p);
}

static void pbkdf2param_freep(PBKDF2PARAM **p)
{
	PBKDF2PARAM_free(*p);
}

static void pbeparam_freep(PBEPARAM **p)
{
	PBEPARAM_free(*p);
}

static bool iter_ok(const ASN1_INTEGER *iter)
{
	long v;

	/* Absent means 1 (RFC 7292's default for the MAC). */
	if (!iter)
		return true;
	v = ASN1_INTEGER_get(iter);
	return v >= 1 && v <= PKCS12_MAX_ITER;
}

/* The iteration count of a PBES1 or PBES2 (PBKDF2) algorithm is within
 * bounds; any other algorithm derives nothing. */
static bool pbe_ok(const X509_ALGOR *alg)
{
	const ASN1_OBJECT *obj;
	const void *param;
	int ptype;

	X509_ALGOR_get0(&obj, &ptype, &param, alg);
	if (OBJ_obj2nid(obj) == NID_pbes2) {
		_cleanup_(pbe2param_freep) PBE2PARAM *p2 = NULL;
		_cleanup_(pbkdf2param_freep) PBKDF2PARAM *kdf = NULL;

		if (ptype != V_ASN1_SEQUENCE)
			return false;
		p2 = ASN1_TYPE_unpack_sequence(
			ASN1_ITEM_rptr(PBE2PARAM),
			(const ASN1_TYPE *)alg->parameter);
		if (!p2 || !p2->keyfunc)
			return false;
		if (OBJ_obj2nid(p2->keyfunc->algorithm) != NID_id_pbkdf2)
			return true; /* scrypt and the like: OpenSSL's limits */
		kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
						p2->keyfunc->parameter);
		return kdf && iter_ok(kdf->iter);
	}
	if (ptype == V_ASN1_SEQUENCE) {
		_cleanup_(pbeparam_freep) PBEPARAM *p1 =
			ASN1_TYPE_unpack_sequence(
				ASN1_ITEM_rptr(PBEPARAM),
				(const ASN1_TYPE *)alg->parameter);

		/* Not a PBES1 parameter: not a key derivation either. */
		return !p1 || iter_ok(p1->iter);
	}
	return true;
}

static bool bags_ok(const STACK_OF(PKCS12_SAFEBAG) * bags, int depth)
{
	if (depth > 3)
		return false;
	for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
		const X509_ALGOR *alg = NULL;

		switch (PKCS12_SAFEBAG_get_nid(bag)) {
		case NID_pkcs8ShroudedKeyBag:
			X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg,
				      NULL);
			if (!alg || !pbe_ok(alg))
				return false;
			break;
		case NID_safeContentsBag:
			if (!bags_ok(PKCS12_SAFEBAG_get0_safes(bag), depth + 1))
				return false;
			break;
		default:
			break;
		}
	}
	return true;
}

static void authsafes_freep(STACK_OF(PKCS7) * *s)
{
	sk_PKCS7_pop_free(*s, PKCS7_free);
}

static void bags_freep(STACK_OF(PKCS12_SAFEBAG) * *s)
{
	sk_PKCS12_SAFEBAG_pop_free(*s, PKCS12_SAFEBAG_free);
}

/* Every iteration count of p12 is within bounds, checked in the order
 * OpenSSL would derive keys: the MAC's, then each encrypted bag's before
 * it is decrypted (with the password pass, which verified the MAC), then
 * the shrouded keys'. */
static bool pkcs12_bounded(PKCS12 *p12, const char *pass)
{
	_cleanup_(authsafes_freep) STACK_OF(PKCS7) *safes = NULL;
	const ASN1_INTEGER *iter = NULL;

	if (PKCS12_mac_present(p12)) {
		PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
		if (!iter_ok(iter))
			return false;
	}
	safes = PKCS12_unpack_authsafes(p12);
	if (!safes)
		return false;
	for (int i = 0; i < sk_PKCS7_num(safes); i++) {
		_cleanup_(bags_freep) STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
		PKCS7 *p7 = sk_PKCS7_value(safes, i);

		switch (OBJ_obj2nid(p7->type)) {
		case NID_pkcs7_data:
			bags = PKCS12_unpack_p7data(p7);
			break;
		case NID_pkcs7_encrypted:
			if (!p7->d.encrypted || !p7->d.encrypted->enc_data ||
			    !pbe_ok(p7->d.encrypted->enc_data->algorithm))
				return false;
			bags = PKCS12_unpack_p7encdata(p7, pass, -1);
			break;
		default:
			continue; /* PKCS12_parse() skips it too */
		}
		if (!bags || !bags_ok(bags, 0))
			return false;
	}
	return true;
}

/* The password that verifies p12's MAC: password, or when it is NULL the
 * NULL one (Key Vault's) or the empty one (openssl -passout pass:).
 * Without a MAC, nothing to verify: password as given. */
static bool pkcs12_password(PKCS12 *p12, const char *password, const char **ret)
{
	if (!PKCS12_mac_present(p12)) {
		*ret = password;
		return true;
	}
	if (password) {
		*ret = password;
		return PKCS12_verify_mac(p12, password, -1);
	}
	*ret = NULL;
	if (PKCS12_verify_mac(p12, NULL, 0))
		return true;
	*ret = "";
	return PKCS12_verify_mac(p12, "", 0);
}

int kvfs_pki_pkcs12_open(const unsigned char *der, size_t len,
			 const char *password, EVP_PKEY **ret_key,
			 X509 **ret_leaf, STACK_OF(X509) * *ret_ca, char *why,
			 size_t why_len)
{
	_cleanup_(pkcs12_freep) PKCS12 *p12 = NULL;
	const unsigned char *q = der;
	const ASN1_INTEGER *iter = NULL;
	const char *pass = NULL;
	int r = -EBADMSG;

	if (len == 0 || len > LONG_MAX) {
		why_set(why, why_len, "not a PKCS#12");
		goto fail;
	}
	p12 = d2i_PKCS12(NULL, &q, (long)len);
	if (!p12 || q != der + len) {
		why_set(why, why_len, "not a PKCS#12");
		goto fail;
	}
	/* Verifying the MAC runs its key derivation: its count first. */
	PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
	if (PKCS12_mac_present(p12) && !iter_ok(iter)) {
		why_set(why, why_len,
			"the PKCS#12 asks for too many key derivation "
			"iterations");
		goto fail;
	}
	if (!pkcs12_password(p12, password, &pass)) {
		why_set(why, why_len,
			password ? "the PKCS#12 does not open with the "
				   "password given"
				 : "the PKCS#12 does not open with an empty "
				   "password");
		r = -EACCES;
		goto fail;
	}
	if (!pkcs12_bounded(p12, pass)) {
		/* Without a MAC, a wrong password shows only here. */
		why_set(why, why_len,
			PKCS12_mac_present(p12)
				? "the PKCS#12 is malformed or asks for too "
				  "many key derivation iterations"
				: "the PKCS#12 is malformed, asks for too many "
				  "key derivation iterations, or needs another "
				  "password");
		goto fail;
	}
	if (!PKCS12_parse(p12, pass, ret_key, ret_leaf, ret_ca)) {
		why_set(why, why_len, "the PKCS#12 does not open");
		goto fail;
	}
	r = 0;
fail:
	ERR_clear_error();
	return r;
}

static int parse_pkcs12(const char *value, size_t len, struct parsed *p,
			char *why, size_t why_len)
{
	unsigned char *der = NULL;
	STACK_OF(X509) *ca = NULL;
	X509 *leaf = NULL;
	size_t dlen = 0;
	int r;

	r = kvfs_pki_base64_decode(value, len, &der, &dlen);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || dlen == 0) {
		kvfs_secure_free(der, dlen);
		why_set(why, why_len, "the secret is not valid base64");
		return -EBADMSG;
	}
	r = kvfs_pki_pkcs12_open(der, dlen, NULL, &p->key, &leaf, &ca, why,
				 why_len);
	kvfs_secure_free(der, dlen);
	if (r < 0)
		return -EBADMSG;
	/* Without a key bag OpenSSL reports the leaf among the extra
	 * certificates: every certificate goes in one bag, and the leaf is
	 * picked later by the bundle's cer. */
	if (leaf)
		r = push_cert(p, leaf);
	while (r == 0 && sk_X509_num(ca) > 0)
		r = push_cert(p, sk_X509_shift(ca));
	sk_X509_pop_free(ca, X509_free);
	if (r < 0)
		why_set(why, why_len, "too many certificates");
	return r;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* issuer really issued subject: names and key identifiers link them and
 * the signature verifies. */
static bool issued(X509 *issuer, X509 *subject)
{
	EVP_PKEY *k = X509_get0_pubkey(issuer);
	bool yes = X509_check_issued(issuer, subject) == X509_V_OK && k &&
		   X509_verify(subject, k) == 1;

	ERR_clear_error();
	return yes;
}

static bool self_signed(X509 *x)
{
	return issued(x, x);
}

/* Copy a BIO's bytes out into a malloc'ed buffer (NUL-terminated). */
static int bio_take(BIO *b, char **ret, size_t *ret_len)
{
	char *data = NULL, *out;
	long n = BIO_get_mem_data(b, &data);

	if (n < 0)
		return -EIO;
	out = malloc((size_t)n + 1);
	if (!out)
		return -ENOMEM;
	if (n > 0)
		memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*ret = out;
	*ret_len = (size_t)n;
	return 0;
}

static int certs_pem(X509 *leaf, STACK_OF(X509) * issuers, char **ret,
		     size_t *ret_len)
{
	_cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());

	if (!b)
		return -ENOMEM;
	if (leaf && !PEM_write_bio_X509(b, leaf))
		goto fail;
	for (int i = 0; i < sk_X509_num(issuers); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(issuers, i)))
			goto fail;
	return bio_take(b, ret, ret_len);
fail:
	ERR_clear_error();
	return -ENOMEM;
}

static void stack_unownp(STACK_OF(X509) * *s)
{
	sk_X509_free(*s); /* the certificates belong to the parsed bag */
}

/* The key files: PKCS#8 PEM, PEM bundle, PKCS#12.  The PKCS#12 uses what
 * OpenSSL 3 writes by default: PBES2 with PBKDF2-HMAC-SHA256 and
 * AES-256-CBC for the key and the certificates, a SHA-256 MAC, 2048
 * iterations, and the empty password.  OpenSSL 1.1 and 3, Java 8u301+,
 * .NET and Windows 10 1709+/Server 2019+ open it; the 3DES/RC2 of old
 * Windows would need OpenSSL's legacy provider to write, so it is not
 * offered. */
static int key_files(EVP_PKEY *key, X509 *leaf, STACK_OF(X509) * issuers,
		     const char *friendly_name, struct kvfs_pki_secret_files *f)
{
	_cleanup_(bio_freep) BIO *kb = BIO_new(BIO_s_secmem());
	_cleanup_(bio_freep) BIO *pb = BIO_new(BIO_s_secmem());
	_cleanup_(pkcs12_freep) PKCS12 *p12 = NULL;
	int r;

	if (!kb || !pb)
		return -ENOMEM;
	if (!PEM_write_bio_PKCS8PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL))
		goto fail;
	r = bio_take(kb, &f->privkey, &f->privkey_len);
	if (r < 0)
		return r;

	f->bundle_len = f->privkey_len + f->fullchain_len;
	f->bundle = malloc(f->bundle_len + 1);
	if (!f->bundle)
		return -ENOMEM;
	memcpy(f->bundle, f->privkey, f->privkey_len);
	memcpy(f->bundle + f->privkey_len, f->fullchain, f->fullchain_len + 1);

	p12 = PKCS12_create("", friendly_name, key, leaf, issuers,
			    NID_aes_256_cbc, NID_aes_256_cbc, 2048, 2048, 0);
	if (!p12)
		goto fail;
	/* PKCS12_create's MAC digest is the library default; say it. */
	if (!PKCS12_set_mac(p12, "", 0, NULL, 0, 2048, EVP_sha256()))
		goto fail;
	if (i2d_PKCS12_bio(pb, p12) <= 0)
		goto fail;
	return bio_take(pb, (char **)&f->pfx, &f->pfx_len);
fail:
	ERR_clear_error();
	return -ENOMEM;
}

int kvfs_pki_secret_files(const char *value, size_t len,
			  const char *content_type,
			  const unsigned char *leaf_der, size_t leaf_len,
			  const char *friendly_name,
			  struct kvfs_pki_secret_files *ret, char *why,
			  size_t why_len)
{
	_cleanup_(parsed_clear) struct parsed p = {0};
	_cleanup_(
		kvfs_pki_secret_files_clear) struct kvfs_pki_secret_files f = {
		0};
	_cleanup_(stack_unownp) STACK_OF(X509) *issuers = NULL;
	X509 *leaf = NULL, *cur;
	bool pem;
	int r, n;

	if (!value || len == 0 || !leaf_der || leaf_len == 0) {
		why_set(why, why_len, "the secret is empty");
		return -EBADMSG;
	}
	p.certs = sk_X509_new_null();
	issuers = sk_X509_new_null();
	if (!p.certs || !issuers)
		return -ENOMEM;

	if (content_type && has_prefix(content_type, PEM_TYPE))
		pem = true;
	else if (content_type && has_prefix(content_type, PKCS12_TYPE))
		pem = false;
	else
		pem = len > 5 && memcmp(value, "-----", 5) == 0;
	r = pem ? parse_pem(value, len, &p, why, why_len)
		: parse_pkcs12(value, len, &p, why, why_len);
	if (r < 0)
		return r;

	n = sk_X509_num(p.certs);
	for (int i = 0; i < n && !leaf; i++) {
		X509 *x = sk_X509_value(p.certs, i);
		unsigned char *der = NULL;
		int dl = i2d_X509(x, &der);

		if (dl > 0 && (size_t)dl == leaf_len &&
		    memcmp(der, leaf_der, leaf_len) == 0)
			leaf = x;
		OPENSSL_free(der);
	}
	ERR_clear_error();
	if (!leaf) {
		why_set(why, why_len,
			"the secret does not hold the certificate's leaf");
		return -EBADMSG;
	}
	if (p.key && X509_check_private_key(leaf, p.key) != 1) {
		ERR_clear_error();
		why_set(why, why_len,
			"the key in the secret does not match the certificate");
		return -EBADMSG;
	}

	/* Walk up from the leaf by issuer links; certificates that are not
	 * on the path (a stray one, a second root) are left out. */
	cur = leaf;
	while (!self_signed(cur) && sk_X509_num(issuers) < n) {
		X509 *up = NULL;

		for (int i = 0; i < n && !up; i++) {
			X509 *x = sk_X509_value(p.certs, i);
			bool used = x == leaf;

			for (int j = 0; j < sk_X509_num(issuers) && !used; j++)
				used = sk_X509_value(issuers, j) == x;
			if (!used && issued(x, cur))
				up = x;
		}
		if (!up)
			break;
		if (self_signed(up))
			break; /* the root: clients already trust it */
		if (!sk_X509_push(issuers, up))
			return -ENOMEM;
		cur = up;
	}

	if ((r = certs_pem(NULL, issuers, &f.chain, &f.chain_len)) < 0 ||
	    (r = certs_pem(leaf, issuers, &f.fullchain, &f.fullchain_len)) < 0)
		return r;
	if (p.key) {
		f.has_key = true;
		r = key_files(p.key, leaf, issuers, friendly_name, &f);
		if (r < 0)
			return r;
	}

	*ret = f;
	memset(&f, 0, sizeof(f));
	return 0;
}

void kvfs_pki_secret_files_clear(struct kvfs_pki_secret_files *f)
{
	if (!f)
		return;
	free(f->chain);
	free(f->fullchain);
	kvfs_secure_free(f->privkey, f->privkey_len);
	kvfs_secure_free(f->bundle, f->bundle_len);
	kvfs_secure_free(f->pfx, f->pfx_len);
	memset(f, 0, sizeof(*f));
}

/* ---- what the extended attributes show ---- */

int kvfs_pki_cert_info(const unsigned char *der, size_t len, char **ret_subject,
		       char ret_sha256[65], char ret_x5t[28])
{
	static const char hex[] = "0123456789abcdef";
	static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789-_";
	_cleanup_(x509_name_freep) X509_NAME *name = NULL;
	_cleanup_(bio_freep) BIO *b = NULL;
	unsigned char sha256[SHA256_DIGEST_LENGTH], sha1[SHA_DIGEST_LENGTH];
	struct der_elem s;
	const unsigned char *p;
	char *subject;
	size_t sl, k = 0;
	int r;

	if (!der || len == 0 || len > LONG_MAX)
		return -EINVAL;
	/* Only the subject is decoded, not the whole certificate: see
	 * der_cert_walk(). */
	if (der_cert_walk(der, len, &s) < 0)
		return -EINVAL;
	p = s.start;
	name = d2i_X509_NAME(NULL, &p, (long)(s.end - s.start));
	if (!name || p != s.end) {
		ERR_clear_error();
		return -EINVAL;
	}
	b = BIO_new(BIO_s_mem());
	if (!b)
		return -ENOMEM;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) < 0) {
		ERR_clear_error();
		return -EINVAL;
	}
	r = bio_take(b, &subject, &sl);
	if (r < 0)
		return r;

	SHA256(der, len, sha256);
	for (size_t i = 0; i < sizeof(sha256); i++) {
		ret_sha256[2 * i] = hex[sha256[i] >> 4];
		ret_sha256[2 * i + 1] = hex[sha256[i] & 15];
	}
	ret_sha256[64] = '\0';

	/* 20 bytes: six groups of three, then two bytes -> 27 characters. */
	SHA1(der, len, sha1);
	for (size_t i = 0; i < sizeof(sha1); i += 3) {
		uint32_t v = (uint32_t)sha1[i] << 16;
		size_t m = sizeof(sha1) - i >= 3 ? 3 : sizeof(sha1) - i;

		if (m > 1)
			v |= (uint32_t)sha1[i + 1] << 8;
		if (m > 2)
			v |= sha1[i + 2];
		for (size_t j = 0; j < m + 1; j++)
			ret_x5t[k++] = b64url[(v >> (18 - 6 * j)) & 63];
	}
	ret_x5t[k] = '\0';

	*ret_subject = subject;
	return 0;
}
