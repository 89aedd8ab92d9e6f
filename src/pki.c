/* OpenSSL side of the tree: DER certificates to PEM (whole, or any range
 * of it rendered on demand from the DER), the strict base64
 * decoders (the vault client's for "cer", jwk.c's base64url), a
 * certificate's secret (PEM or PKCS#12) to privkey/chain/fullchain/bundle/
 * pfx, and the thumbprints and subject the extended attributes show.  Key
 * material only ever sits in OpenSSL's secure-memory BIOs and in buffers wiped
 * before they are freed. OpenSSL errors are translated to -errno here and
 * nowhere else.  Pure functions but for one counter of PKCS#12s deriving keys
 * (at most two at a time); thread-safe. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
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

#include "metrics.h"
#include "pki.h"
#include "util.h"

/* 0..63 for the standard alphabet, or with url base64url's ('-', '_'),
 * -1 for anything else ('=' included). */
static int b64_value(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Character i of the base64 of in[0..n), n > 0 ('=' where the last group
 * is padded), in the standard alphabet or with url base64url's: the
 * inverse of b64_value(). */
static char b64_char(const unsigned char *in, size_t n, size_t i, bool url)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t g = i / 4 * 3, k = i % 4, m = n - g;
	uint32_t v = (uint32_t)in[g] << 16;
	unsigned c;

	if (k > m)
		return '=';
	if (m > 1)
		v |= (uint32_t)in[g + 1] << 8;
	if (m > 2)
		v |= in[g + 2];
	c = (v >> (18 - 6 * k)) & 63;
	if (c == 62)
		return url ? '-' : '+';
	if (c == 63)
		return url ? '_' : '/';
	return alphabet[c];
}

/* Both alphabets, strictly: standard base64 padded to a multiple of four,
 * base64url without padding; no whitespace; non-canonical input (bits set
 * beyond the last byte) refused, as neither the vault nor a JWK sends
 * it. */
static int base64_decode(const char *in, size_t len, bool url,
			 unsigned char **ret, size_t *ret_len)
{
	_cleanup_free_ unsigned char *out = NULL;
	size_t pad = 0, n = 0;

	if (!in && len > 0)
		return -EINVAL;
	if (url ? len % 4 == 1 : len % 4 != 0)
		return -EINVAL;
	if (!url && len >= 1 && in[len - 1] == '=')
		pad++;
	if (!url && len >= 2 && in[len - 2] == '=')
		pad++;

	out = malloc(len / 4 * 3 + 3);
	if (!out)
		return -ENOMEM;

	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 >= len;
		size_t real = !last ? 4 : url ? len - i : 4 - pad;
		uint32_t v = 0;

		for (size_t j = 0; j < 4; j++) {
			int d = 0;

			if (j < real) {
				d = b64_value((unsigned char)in[i + j], url);
				if (d < 0)
					return -EINVAL;
			}
			v = v << 6 | (uint32_t)d;
		}
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

int kvfs_pki_base64_decode(const char *in, size_t len, unsigned char **ret,
			   size_t *ret_len)
{
	return base64_decode(in, len, false, ret, ret_len);
}

int kvfs_pki_base64url_decode(const char *in, size_t len, unsigned char **ret,
			      size_t *ret_len)
{
	return base64_decode(in, len, true, ret, ret_len);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)

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
	_cleanup_(BIO_freep) BIO *bio = NULL;
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

/* PEM_write_bio()'s framing of a certificate: its lines hold the base64
 * of 48 bytes each (64 characters), the last one what is left. */
static const char pem_begin[] = "-----BEGIN CERTIFICATE-----\n";
static const char pem_end[] = "-----END CERTIFICATE-----\n";
#define PEM_LINE_BYTES 48
#define PEM_LINE_CHARS 64

size_t kvfs_pki_pem_len(size_t der_len)
{
	return sizeof(pem_begin) - 1 + (der_len + 2) / 3 * 4 +
	       (der_len + PEM_LINE_BYTES - 1) / PEM_LINE_BYTES +
	       sizeof(pem_end) - 1;
}

/* Byte i of the PEM body (the base64 lines) of der[0..len). */
static char pem_body_char(const unsigned char *der, size_t len, size_t i)
{
	size_t line = i / (PEM_LINE_CHARS + 1), col = i % (PEM_LINE_CHARS + 1);
	size_t left = len - line * PEM_LINE_BYTES;

	if (left > PEM_LINE_BYTES)
		left = PEM_LINE_BYTES;
	/* Each line starts on a group of three: the lines are the base64
	 * of the whole DER, cut. */
	if (col == (left + 2) / 3 * 4)
		return '\n';
	return b64_char(der, len, line * PEM_LINE_CHARS + col, false);
}

size_t kvfs_pki_pem_read(const unsigned char *der, size_t len, size_t off,
			 char *buf, size_t size)
{
	size_t begin = sizeof(pem_begin) - 1, end = sizeof(pem_end) - 1;
	size_t total = kvfs_pki_pem_len(len), body = total - begin - end;
	size_t n;

	if (off >= total)
		return 0;
	n = size < total - off ? size : total - off;
	for (size_t i = 0; i < n; i++) {
		size_t at = off + i;

		if (at < begin)
			buf[i] = pem_begin[at];
		else if (at - begin < body)
			buf[i] = pem_body_char(der, len, at - begin);
		else
			buf[i] = pem_end[at - begin - body];
	}
	return n;
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
	_cleanup_(BIO_freep) BIO *in = NULL;
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
 * A PKCS#12 names its own key derivations: the MAC's, one per encrypted
 * ContentInfo and one per shrouded key, each with its own iteration count,
 * and OpenSSL runs whatever it is given.  One derivation of 2^31
 * iterations would keep a thread busy for hours, and so would 20,000
 * derivations of 200,000.  So the work of one PKCS#12 is bounded three
 * ways, each checked before the derivation it bounds runs: a derivation
 * runs at most PKCS12_MAX_ITER iterations, and all of them together at
 * most PKCS12_MAX_KDFS derivations and PKCS12_MAX_WORK iterations.  The
 * MAC and every encrypted ContentInfo are counted before anything is
 * derived; the shrouded keys inside an encrypted ContentInfo as soon as it
 * is decrypted.  Key Vault writes 2000 iterations, OpenSSL 2048, Windows at
 * most a few 10,000s: a Key Vault export asks for three derivations (the
 * MAC, the certificates, the key), 6000 iterations.  Every derivation runs
 * once: the PKCS#12 is walked here, not by PKCS12_parse(). */
#define PKCS12_MAX_ITER 200000
#define PKCS12_MAX_KDFS 8
#define PKCS12_MAX_WORK 400000
#define PKCS12_MAX_DEPTH 3

/* At most this many PKCS#12s derive keys at once, so that a burst of them
 * keeps the CPUs for everything else; the others wait their turn, which
 * the bounds above keep short. */
#define PKCS12_MAX_OPENS 2

static pthread_mutex_t opens_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t opens_cond = PTHREAD_COND_INITIALIZER;
static unsigned opens_running;
static void opens_enter(void)
{
	pthread_mutex_lock(&opens_lock);
	while (opens_running >= PKCS12_MAX_OPENS)
		pthread_cond_wait(&opens_cond, &opens_lock);
	opens_running++;
	pthread_mutex_unlock(&opens_lock);
}

static void opens_leave(void)
{
	pthread_mutex_lock(&opens_lock);
	opens_running--;
	pthread_cond_signal(&opens_cond);
	pthread_mutex_unlock(&opens_lock);
}

/* The derivations a PKCS#12 asked for so far, and what it is opening. */
struct p12_walk {
	const char *pass;
	unsigned kdfs;
	uint64_t work;
	EVP_PKEY *key;
	STACK_OF(X509) * certs;
	char *why;
	size_t why_len;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(PBE2PARAM *, PBE2PARAM_free)

DEFINE_TRIVIAL_CLEANUP_FUNC(PBKDF2PARAM *, PBKDF2PARAM_free)

DEFINE_TRIVIAL_CLEANUP_FUNC(PBEPARAM *, PBEPARAM_free)

/* An iteration count, absent meaning 1 (RFC 7292's default for the MAC);
 * 0 when out of bounds. */
static long iter_value(const ASN1_INTEGER *iter)
{
	long v;

	if (!iter)
		return 1;
	v = ASN1_INTEGER_get(iter);
	return v >= 1 && v <= PKCS12_MAX_ITER ? v : 0;
}

/* The iterations one derivation of alg runs: a PBES1 or PBES2 (PBKDF2)
 * count; another PBES2 key function (scrypt) is charged the most one
 * derivation may cost.  0 when out of bounds or malformed. */
static long pbe_iterations(const X509_ALGOR *alg)
{
	const ASN1_OBJECT *obj;
	const void *param;
	int ptype;

	if (!alg)
		return 0;
	X509_ALGOR_get0(&obj, &ptype, &param, alg);
	if (OBJ_obj2nid(obj) == NID_pbes2) {
		_cleanup_(PBE2PARAM_freep) PBE2PARAM *p2 = NULL;
		_cleanup_(PBKDF2PARAM_freep) PBKDF2PARAM *kdf = NULL;

		if (ptype != V_ASN1_SEQUENCE)
			return 0;
		p2 = ASN1_TYPE_unpack_sequence(
			ASN1_ITEM_rptr(PBE2PARAM),
			(const ASN1_TYPE *)alg->parameter);
		if (!p2 || !p2->keyfunc)
			return 0;
		if (OBJ_obj2nid(p2->keyfunc->algorithm) != NID_id_pbkdf2)
			return PKCS12_MAX_ITER;
		kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
						p2->keyfunc->parameter);
		return kdf && kdf->iter ? iter_value(kdf->iter) : 0;
	}
	if (ptype == V_ASN1_SEQUENCE) {
		_cleanup_(PBEPARAM_freep) PBEPARAM *p1 =
			ASN1_TYPE_unpack_sequence(
				ASN1_ITEM_rptr(PBEPARAM),
				(const ASN1_TYPE *)alg->parameter);

		/* Not a PBES1 parameter: a derivation of unknown cost. */
		return p1 ? iter_value(p1->iter) : PKCS12_MAX_ITER;
	}
	return 1; /* no parameters: OpenSSL derives nothing */
}

/* Count n derivations of iter iterations each against the bounds. */
static int charge(struct p12_walk *w, long iter, unsigned n)
{
	if (iter <= 0) {
		why_set(w->why, w->why_len,
			"the PKCS#12 is malformed or asks for more than "
			"200000 key derivation iterations at once");
		return -EBADMSG;
	}
	w->kdfs += n;
	w->work += (uint64_t)iter * n;
	if (w->kdfs > PKCS12_MAX_KDFS || w->work > PKCS12_MAX_WORK) {
		why_set(w->why, w->why_len,
			"the PKCS#12 asks for too many key derivations (at "
			"most 8 and 400000 iterations in all)");
		return -EBADMSG;
	}
	return 0;
}

static void ran(long iter)
{
	kvfs_metrics_add(KVFS_COUNTER_KDF_ITERATIONS, (uint64_t)iter);
}

static void bags_freep(STACK_OF(PKCS12_SAFEBAG) * *s)
{
	sk_PKCS12_SAFEBAG_pop_free(*s, PKCS12_SAFEBAG_free);
}

static void authsafes_freep(STACK_OF(PKCS7) * *s)
{
	sk_PKCS7_pop_free(*s, PKCS7_free);
}

static const X509_ALGOR *shrouded_alg(const PKCS12_SAFEBAG *bag)
{
	const X509_ALGOR *alg = NULL;

	X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
	return alg;
}

/* Charge the shrouded keys of bags, before any is decrypted. */
static int charge_bags(struct p12_walk *w,
		       const STACK_OF(PKCS12_SAFEBAG) * bags, int depth)
{
	int r;

	if (depth > PKCS12_MAX_DEPTH) {
		why_set(w->why, w->why_len,
			"the PKCS#12 nests its bags too deep");
		return -EBADMSG;
	}
	for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);

		switch (PKCS12_SAFEBAG_get_nid(bag)) {
		case NID_pkcs8ShroudedKeyBag:
			r = charge(w, pbe_iterations(shrouded_alg(bag)), 1);
			break;
		case NID_safeContentsBag:
			r = charge_bags(w, PKCS12_SAFEBAG_get0_safes(bag),
					depth + 1);
			break;
		default:
			r = 0;
			break;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS8_PRIV_KEY_INFO *, PKCS8_PRIV_KEY_INFO_free)

static int take_key(struct p12_walk *w, const PKCS8_PRIV_KEY_INFO *p8)
{
	/* The first key, as PKCS12_parse() takes it. */
	if (w->key)
		return 0;
	w->key = p8 ? EVP_PKCS82PKEY(p8) : NULL;
	if (!w->key) {
		why_set(w->why, w->why_len,
			"the key in the PKCS#12 is malformed or needs another "
			"password");
		return -EBADMSG;
	}
	return 0;
}

/* Take the key and the certificates out of bags, already charged. */
static int open_bags(struct p12_walk *w, const STACK_OF(PKCS12_SAFEBAG) * bags,
		     int depth)
{
	int r = 0;

	for (int i = 0; r == 0 && i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);

		switch (PKCS12_SAFEBAG_get_nid(bag)) {
		case NID_keyBag:
			r = take_key(w, PKCS12_SAFEBAG_get0_p8inf(bag));
			break;
		case NID_pkcs8ShroudedKeyBag: {
			_cleanup_(PKCS8_PRIV_KEY_INFO_freep)
				PKCS8_PRIV_KEY_INFO *p8 = NULL;

			if (w->key)
				break; /* not derived: it would not be used */
			ran(pbe_iterations(shrouded_alg(bag)));
			p8 = PKCS12_decrypt_skey(bag, w->pass, -1);
			r = take_key(w, p8);
			break;
		}
		case NID_certBag: {
			X509 *x;

			if (PKCS12_SAFEBAG_get_bag_nid(bag) !=
			    NID_x509Certificate)
				break; /* SDSI certificates: skipped */
			x = PKCS12_SAFEBAG_get1_cert(bag);
			if (!x) {
				why_set(w->why, w->why_len,
					"a certificate in the PKCS#12 is "
					"malformed");
				r = -EBADMSG;
			} else if (sk_X509_num(w->certs) >= MAX_CERTS ||
				   !sk_X509_push(w->certs, x)) {
				X509_free(x);
				why_set(w->why, w->why_len,
					"too many certificates");
				r = -EBADMSG;
			}
			break;
		}
		case NID_safeContentsBag:
			r = open_bags(w, PKCS12_SAFEBAG_get0_safes(bag),
				      depth + 1);
			break;
		default:
			break; /* CRLs, secrets: not ours */
		}
	}
	return r;
}

/* Open the ContentInfos of safes: the unencrypted ones' shrouded keys and
 * every encrypted one are charged before anything is decrypted. */
static int open_safes(struct p12_walk *w, STACK_OF(PKCS7) * safes)
{
	int r;

	for (int i = 0; i < sk_PKCS7_num(safes); i++) {
		_cleanup_(bags_freep) STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
		PKCS7 *p7 = sk_PKCS7_value(safes, i);

		switch (OBJ_obj2nid(p7->type)) {
		case NID_pkcs7_data:
			bags = PKCS12_unpack_p7data(p7);
			if (!bags)
				goto malformed;
			r = charge_bags(w, bags, 0);
			break;
		case NID_pkcs7_encrypted:
			if (!p7->d.encrypted || !p7->d.encrypted->enc_data)
				goto malformed;
			r = charge(
				w,
				pbe_iterations(
					p7->d.encrypted->enc_data->algorithm),
				1);
			break;
		default:
			r = 0; /* PKCS12_parse() skips it too */
			break;
		}
		if (r < 0)
			return r;
	}

	for (int i = 0; i < sk_PKCS7_num(safes); i++) {
		_cleanup_(bags_freep) STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
		PKCS7 *p7 = sk_PKCS7_value(safes, i);

		switch (OBJ_obj2nid(p7->type)) {
		case NID_pkcs7_data:
			bags = PKCS12_unpack_p7data(p7);
			break;
		case NID_pkcs7_encrypted:
			ran(pbe_iterations(
				p7->d.encrypted->enc_data->algorithm));
			bags = PKCS12_unpack_p7encdata(p7, w->pass, -1);
			if (!bags) {
				/* Without a MAC, a wrong password shows
				 * only here. */
				why_set(w->why, w->why_len,
					"the PKCS#12 is malformed or needs "
					"another password");
				return -EBADMSG;
			}
			r = charge_bags(w, bags, 0);
			if (r < 0)
				return r;
			break;
		default:
			continue;
		}
		if (!bags)
			goto malformed;
		r = open_bags(w, bags, 0);
		if (r < 0)
			return r;
	}
	return 0;
malformed:
	why_set(w->why, w->why_len, "the PKCS#12 is malformed");
	return -EBADMSG;
}

/* The password that verifies p12's MAC: password, or when it is NULL the
 * NULL one (Key Vault's) or the empty one (openssl -passout pass:).
 * Without a MAC, nothing to verify: password as given. */
static bool pkcs12_password(PKCS12 *p12, long iter, const char *password,
			    const char **ret)
{
	if (!PKCS12_mac_present(p12)) {
		*ret = password;
		return true;
	}
	ran(iter);
	if (password) {
		*ret = password;
		return PKCS12_verify_mac(p12, password, -1);
	}
	*ret = NULL;
	if (PKCS12_verify_mac(p12, NULL, 0))
		return true;
	ran(iter);
	*ret = "";
	return PKCS12_verify_mac(p12, "", 0);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS12 *, PKCS12_free)

static int pkcs12_open_locked(PKCS12 *p12, const char *password,
			      struct p12_walk *w)
{
	_cleanup_(authsafes_freep) STACK_OF(PKCS7) *safes = NULL;
	const ASN1_INTEGER *iter = NULL;
	long mac_iter = 1;
	int r;

	safes = PKCS12_unpack_authsafes(p12);
	if (!safes) {
		why_set(w->why, w->why_len, "the PKCS#12 is malformed");
		return -EBADMSG;
	}
	/* Without a password, the MAC may be verified twice. */
	if (PKCS12_mac_present(p12)) {
		PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
		mac_iter = iter_value(iter);
		r = charge(w, mac_iter, password ? 1 : 2);
		if (r < 0)
			return r;
	}
	if (!pkcs12_password(p12, mac_iter, password, &w->pass)) {
		why_set(w->why, w->why_len,
			password ? "the PKCS#12 does not open with the "
				   "password given"
				 : "the PKCS#12 does not open with an empty "
				   "password");
		return -EACCES;
	}
	return open_safes(w, safes);
}

/* As PKCS12_parse() hands them out: the certificate that matches the key
 * is the leaf, the others in their order are ca. */
static void pkcs12_split(struct p12_walk *w, X509 **ret_leaf,
			 STACK_OF(X509) * *ret_ca)
{
	X509 *leaf = NULL;

	for (int i = 0; w->key && !leaf && i < sk_X509_num(w->certs); i++) {
		X509 *x = sk_X509_value(w->certs, i);

		if (X509_check_private_key(x, w->key) == 1)
			leaf = sk_X509_delete(w->certs, i);
	}
	ERR_clear_error();
	*ret_leaf = leaf;
	*ret_ca = TAKE_PTR(w->certs);
}

int kvfs_pki_pkcs12_open(const unsigned char *der, size_t len,
			 const char *password, EVP_PKEY **ret_key,
			 X509 **ret_leaf, STACK_OF(X509) * *ret_ca, char *why,
			 size_t why_len)
{
	_cleanup_(PKCS12_freep) PKCS12 *p12 = NULL;
	const unsigned char *q = der;
	struct p12_walk w = {.why = why, .why_len = why_len};
	int r = -EBADMSG;

	if (len == 0 || len > LONG_MAX) {
		why_set(why, why_len, "not a PKCS#12");
		goto out;
	}
	p12 = d2i_PKCS12(NULL, &q, (long)len);
	if (!p12 || q != der + len) {
		why_set(why, why_len, "not a PKCS#12");
		goto out;
	}
	w.certs = sk_X509_new_null();
	if (!w.certs) {
		r = -ENOMEM;
		goto out;
	}
	opens_enter();
	r = pkcs12_open_locked(p12, password, &w);
	opens_leave();
	if (r == 0) {
		pkcs12_split(&w, ret_leaf, ret_ca);
		*ret_key = TAKE_PTR(w.key);
	}
out:
	EVP_PKEY_free(w.key);
	sk_X509_pop_free(w.certs, X509_free);
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

int kvfs_pki_pubkey_pem(EVP_PKEY *key, char **ret, size_t *ret_len)
{
	_cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());

	if (!b)
		return -ENOMEM;
	if (!PEM_write_bio_PUBKEY(b, key)) {
		ERR_clear_error();
		return -EINVAL;
	}
	return bio_take(b, ret, ret_len);
}

static int certs_pem(X509 *leaf, STACK_OF(X509) * issuers, char **ret,
		     size_t *ret_len)
{
	_cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());

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
	_cleanup_(BIO_freep) BIO *kb = BIO_new(BIO_s_secmem());
	_cleanup_(BIO_freep) BIO *pb = BIO_new(BIO_s_secmem());
	_cleanup_(PKCS12_freep) PKCS12 *p12 = NULL;
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

	*ret = TAKE_STRUCT(f);
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
	_cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
	_cleanup_(BIO_freep) BIO *b = NULL;
	unsigned char sha256[SHA256_DIGEST_LENGTH], sha1[SHA_DIGEST_LENGTH];
	struct der_elem s;
	const unsigned char *p;
	char *subject;
	size_t sl;
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

	/* 20 bytes: six groups of three, then two bytes -> 27 characters,
	 * unpadded. */
	SHA1(der, len, sha1);
	for (size_t k = 0; k < 27; k++)
		ret_x5t[k] = b64_char(sha1, sizeof(sha1), k, true);
	ret_x5t[27] = '\0';

	*ret_subject = subject;
	return 0;
}
