/* Unit tests of pki.c: the strict base64 decoder (RFC 4648 vectors and
 * every kind of garbage) and DER -> PEM against an openssl-made fixture:
 *   openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null \
 *     -subj "/CN=kvfs pki test" -days 36500 -outform DER -out pki-leaf.der
 *   openssl x509 -inform DER -in pki-leaf.der -out pki-leaf.pem
 * and a certificate's secret -> the files of the tree, against the PKI of
 * tests/data/pki (made by gen.sh there): key/leaf match, chain order
 * whatever the stored order, PEM and Key Vault's NULL-password PKCS#12,
 * a key-less secret, a self-signed leaf, and malformed secrets; cert.pem
 * rendered a range at a time from the DER (its size, every split of it)
 * against the whole PEM, for DER lengths around every line boundary. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "metrics.h"
#include "pki.h"
#include "tap.h"
#include "util.h"

static void decodes(const char *in, const char *want)
{
	unsigned char *out = NULL;
	size_t len = 0;
	int r = kvfs_pki_base64_decode(in, strlen(in), &out, &len);

	is_int(r, 0, "'%s' decodes", in);
	ok(r == 0 && len == strlen(want) && memcmp(out, want, len) == 0,
	   "'%s' -> '%s'", in, want);
	free(out);
}

static void refuses(const char *in, const char *why)
{
	static unsigned char untouched[] = "untouched";
	unsigned char *out = untouched;
	size_t len = 12345;
	int r = kvfs_pki_base64_decode(in, strlen(in), &out, &len);

	is_int(r, -EINVAL, "refuses %s", why);
	ok(out == untouched && len == 12345,
	   "out-parameters untouched on failure (%s)", why);
}

static void test_base64(void)
{
	/* RFC 4648 section 10 */
	decodes("", "");
	decodes("Zg==", "f");
	decodes("Zm8=", "fo");
	decodes("Zm9v", "foo");
	decodes("Zm9vYg==", "foob");
	decodes("Zm9vYmE=", "fooba");
	decodes("Zm9vYmFy", "foobar");
	decodes("+/+/", "\xfb\xff\xbf");

	refuses("Zg=", "a length that is not a multiple of 4");
	refuses("Zg", "missing padding");
	refuses("Z===", "three padding characters");
	refuses("====", "padding only");
	refuses("Zg==Zg==", "padding in the middle");
	refuses("Zm=v", "padding before data");
	refuses("Zm9v\n", "a newline");
	refuses("Zm9vYmFy\r\n", "CRLF");
	refuses("Zm 9", "a space");
	refuses("-_-_", "the base64url alphabet");
	refuses("Zm9vYm*y", "a character outside the alphabet");
	refuses("Zh==", "non-zero bits after the last byte (1 byte)");
	refuses("Zm9=", "non-zero bits after the last byte (2 bytes)");

	{
		unsigned char *out;
		size_t len;
		const char with_nul[] = "Zm9v\0Zm9";

		is_int(kvfs_pki_base64_decode(with_nul, 8, &out, &len), -EINVAL,
		       "refuses an embedded NUL");
	}

	/* Every byte value, against OpenSSL's encoder. */
	{
		unsigned char in[256], *out = NULL;
		char enc[4 * 86 + 1];
		size_t len = 0;
		int n;

		for (int i = 0; i < 256; i++)
			in[i] = (unsigned char)i;
		for (int cut = 253; cut <= 256; cut++) {
			n = EVP_EncodeBlock((unsigned char *)enc, in, cut);
			ok(kvfs_pki_base64_decode(enc, (size_t)n, &out, &len) ==
					   0 &&
				   len == (size_t)cut &&
				   memcmp(out, in, len) == 0,
			   "all byte values round-trip (%d bytes)", cut);
			free(out);
			out = NULL;
		}
	}
}

/* DER that is well-formed but not a certificate's shape, or a
 * certificate's shape in BER rather than DER: the structural check must
 * refuse each, as d2i_X509() did. */
static void test_not_certificates(void)
{
	static const struct {
		const char *what;
		unsigned char der[24];
		size_t len;
	} bad[] = {
		{"an empty SEQUENCE", {0x30, 0x00}, 2},
		{"an INTEGER", {0x02, 0x01, 0x05}, 3},
		{"a SEQUENCE of three INTEGERs",
		 {0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01,
		  0x01},
		 11},
		{"an indefinite length",
		 {0x30, 0x80, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00, 0x00,
		  0x00},
		 11},
		{"a long-form length under 128",
		 {0x30, 0x81, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00},
		 10},
		{"a length past the end",
		 {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff},
		 6},
		{"an empty TBSCertificate",
		 {0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00},
		 9},
		{"a high tag number", {0x1f, 0x81, 0x00}, 3},
	};
	size_t der_len = 0, len = 0;
	_cleanup_free_ unsigned char *der =
		(unsigned char *)tap_slurp("pki-leaf.der", &der_len);
	char sha256[65], x5t[28];
	char *pem = NULL, *subject = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(kvfs_pki_der_to_pem(bad[i].der, bad[i].len, &pem, &len),
		       -EINVAL, "not a certificate: %s", bad[i].what);
		is_int(kvfs_pki_cert_info(bad[i].der, bad[i].len, &subject,
					  sha256, x5t),
		       -EINVAL, "no cert info: %s", bad[i].what);
	}
	if (!ok(der && der_len > 8, "pki-leaf.der read"))
		return;
	der[0] = 0x31; /* a SET, not a SEQUENCE */
	is_int(kvfs_pki_der_to_pem(der, der_len, &pem, &len), -EINVAL,
	       "a SET around the certificate is refused");
}

static void test_der_to_pem(void)
{
	size_t der_len = 0, pem_len = 0, len = 0, body_len = 0;
	_cleanup_free_ char *der = tap_slurp("pki-leaf.der", &der_len);
	_cleanup_free_ char *want = tap_slurp("pki-leaf.pem", &pem_len);
	_cleanup_free_ char *pem = NULL, *body = NULL;
	_cleanup_free_ unsigned char *back = NULL;
	_cleanup_free_ unsigned char *longer = NULL;
	char *p, *q, *line;
	bool cols = true;
	int r;

	if (!ok(der && want, "fixtures pki-leaf.der and pki-leaf.pem read"))
		return;

	r = kvfs_pki_der_to_pem((unsigned char *)der, der_len, &pem, &len);
	is_int(r, 0, "DER converts to PEM");
	if (r < 0)
		return;
	ok(len == strlen(pem), "length matches the string");
	ok(len == pem_len && memcmp(pem, want, len) == 0,
	   "PEM equals openssl x509's");
	ok(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0,
	   "BEGIN line");
	ok(len > 26 &&
		   strcmp(pem + len - 26, "-----END CERTIFICATE-----\n") == 0,
	   "END line, newline-terminated");

	/* Back to DER through our own decoder: the same bytes. */
	body = calloc(1, len);
	p = strchr(pem, '\n') + 1;
	q = strstr(pem, "-----END");
	for (line = p; line < q;) {
		char *nl = strchr(line, '\n');
		size_t n = (size_t)(nl - line);

		if (n > 64 || (n < 64 && nl + 1 != q))
			cols = false;
		memcpy(body + body_len, line, n);
		body_len += n;
		line = nl + 1;
	}
	ok(cols, "64 columns, a shorter last line only");
	r = kvfs_pki_base64_decode(body, body_len, &back, &len);
	ok(r == 0 && len == der_len && memcmp(back, der, len) == 0,
	   "PEM body decodes to the original DER");

	/* Not certificates. */
	is_int(kvfs_pki_der_to_pem((unsigned char *)"hello", 5, &pem, &len),
	       -EINVAL, "garbage is not a certificate");
	is_int(kvfs_pki_der_to_pem((unsigned char *)der, der_len - 1, &pem,
				   &len),
	       -EINVAL, "truncated DER is refused");
	longer = malloc(der_len + 1);
	memcpy(longer, der, der_len);
	longer[der_len] = 0;
	is_int(kvfs_pki_der_to_pem(longer, der_len + 1, &pem, &len), -EINVAL,
	       "trailing bytes after the certificate are refused");
	is_int(kvfs_pki_der_to_pem(NULL, 0, &pem, &len), -EINVAL,
	       "empty input is refused");
	test_not_certificates();
}

/* The length of a DER element of body n: tag, length, body. */
static size_t tlv_len(size_t n)
{
	return 1 + (n < 0x80 ? 1 : n < 0x100 ? 2 : 3) + n;
}

/* Write the tag and length of an element of body n at p; past them. */
static unsigned char *tlv_put(unsigned char *p, unsigned char tag, size_t n)
{
	*p++ = tag;
	if (n >= 0x100) {
		*p++ = 0x82;
		*p++ = (unsigned char)(n >> 8);
	} else if (n >= 0x80) {
		*p++ = 0x81;
	}
	*p++ = (unsigned char)n;
	return p;
}

/* The smallest shape of a certificate der_cert_walk() takes, of exactly
 * len bytes (a serial of 1 to 4 bytes and a signature as long as it takes,
 * its bytes varied so that the base64 uses the whole alphabet), into buf
 * of at least len bytes; false when no such shape is len bytes long. */
static bool synthetic_cert(unsigned char *buf, size_t len)
{
	for (size_t serial = 1; serial <= 4; serial++) {
		size_t tbs = tlv_len(serial) + 5 * 2;

		for (size_t sig = 1; sig < len; sig++) {
			size_t body = tlv_len(tbs) + 2 + tlv_len(sig);
			unsigned char *p = buf;

			if (tlv_len(body) != len)
				continue;
			p = tlv_put(p, 0x30, body);
			p = tlv_put(p, 0x30, tbs);
			p = tlv_put(p, 0x02, serial);
			memset(p, 0x01, serial);
			p += serial;
			for (int i = 0; i < 5; i++) /* alg .. key */
				p = tlv_put(p, 0x30, 0);
			p = tlv_put(p, 0x30, 0);
			p = tlv_put(p, 0x03, sig);
			*p++ = 0;
			for (size_t i = 1; i < sig; i++)
				*p++ = (unsigned char)(i * 37 + len);
			return (size_t)(p - buf) == len;
		}
	}
	return false;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

/* What cert.pem of der[0..len) must be: kvfs_pki_der_to_pem()'s, or for
 * bytes too short to be a certificate, the PEM_write_bio() it calls. */
static int reference_pem(const unsigned char *der, size_t len, char **ret,
			 size_t *ret_len)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	char *data = NULL;
	long n;

	if (kvfs_pki_der_to_pem(der, len, ret, ret_len) == 0)
		return 0;
	bio = BIO_new(BIO_s_mem());
	if (!bio ||
	    PEM_write_bio(bio, PEM_STRING_X509, "", der, (long)len) <= 0)
		return -ENOMEM;
	n = BIO_get_mem_data(bio, &data);
	*ret = malloc((size_t)n);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, data, (size_t)n);
	*ret_len = (size_t)n;
	return 0;
}

/* kvfs_pki_pem_read() in chunks of step from offset 0 into buf: the
 * count. */
static size_t read_in_chunks(const unsigned char *der, size_t len, size_t step,
			     char *buf, size_t size)
{
	size_t at = 0, n;

	while ((n = kvfs_pki_pem_read(der, len, at, buf + at,
				      size - at < step ? size - at : step)) > 0)
		at += n;
	return at;
}

/* cert.pem rendered from the DER as it is read: its size by arithmetic
 * and any range of it, byte for byte kvfs_pki_der_to_pem()'s. */
static void pem_read_one(const unsigned char *der, size_t len, bool cert)
{
	static const size_t steps[] = {1, 7, 4096};
	_cleanup_free_ char *want = NULL, *got = NULL;
	size_t want_len = 0, total;
	bool same = true;

	if (!ok(reference_pem(der, len, &want, &want_len) == 0 &&
			(!cert ||
			 kvfs_pki_der_to_pem(der, len, &got, &total) == 0),
		"DER of %zu bytes: the reference PEM made", len))
		return;
	free(got);
	total = kvfs_pki_pem_len(len);
	is_int((long long)total, (long long)want_len,
	       "DER of %zu bytes: the PEM's size", len);
	got = malloc(want_len + 8);
	if (total != want_len || !got)
		return;
	for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
		memset(got, 0, want_len + 8);
		same = same &&
		       read_in_chunks(der, len, steps[i], got, want_len + 8) ==
			       want_len &&
		       memcmp(got, want, want_len) == 0;
	}
	/* Every split: [0, off) and [off, end) read apart. */
	for (size_t off = 0; off <= want_len && same; off++) {
		memset(got, 0, want_len + 8);
		same = kvfs_pki_pem_read(der, len, 0, got, off) == off &&
		       kvfs_pki_pem_read(der, len, off, got + off,
					 want_len + 8) == want_len - off &&
		       memcmp(got, want, want_len) == 0;
	}
	ok(same && kvfs_pki_pem_read(der, len, want_len + 1, got, 8) == 0,
	   "DER of %zu bytes%s: any range read equals %s", len,
	   cert ? " (a certificate)" : "",
	   cert ? "kvfs_pki_der_to_pem()" : "PEM_write_bio()");
}

static void test_pem_read(void)
{
	size_t der_len = 0;
	_cleanup_free_ char *der = tap_slurp("pki-leaf.der", &der_len);
	_cleanup_free_ unsigned char *buf = malloc(48 * 90 + 2);
	size_t lens[200 + 3 * 18 + 1], n = 0, certs = 0;

	if (!ok(der && buf, "fixture pki-leaf.der read"))
		return;
	pem_read_one((unsigned char *)der, der_len, true);

	/* Every length up to 200, around every line boundary (48 bytes a
	 * line), the bench's 720: a certificate of that length, or, too
	 * short or of a length DER cannot have (130), other bytes in
	 * OpenSSL's own framing. */
	for (size_t len = 1; len <= 200; len++)
		lens[n++] = len;
	for (size_t line = 5; line <= 90; line += 5)
		for (size_t d = 0; d < 3; d++)
			lens[n++] = line * 48 - 1 + d;
	lens[n++] = 720;
	for (size_t i = 0; i < n; i++) {
		bool cert = synthetic_cert(buf, lens[i]);

		if (cert)
			certs++;
		else
			for (size_t j = 0; j < lens[i]; j++)
				buf[j] = (unsigned char)(j * 251 + lens[i] * 7);
		pem_read_one(buf, lens[i], cert);
	}
	is_int((long long)certs, (long long)n - 22,
	       "all but 21 too short and 130 were certificates");
}

static char *cat2(const char *a, const char *b)
{
	size_t la, lb;
	char *x = tap_slurp(a, &la), *y = b ? tap_slurp(b, &lb) : NULL,
	     *out = NULL;

	if (x && (y || !b)) {
		out = malloc(la + (y ? lb : 0) + 1);
		if (out) {
			memcpy(out, x, la);
			if (y)
				memcpy(out + la, y, lb);
			out[la + (y ? lb : 0)] = '\0';
		}
	}
	free(x);
	free(y);
	return out;
}

/* Build the files of a fixture secret against a fixture leaf. */
static int build(const char *secret, const char *type, const char *leaf,
		 struct kvfs_pki_secret_files *f, char *why, size_t n)
{
	size_t sl = 0, ll = 0;
	char *s = tap_slurp(secret, &sl), *l = tap_slurp(leaf, &ll);
	int r = -999;

	if (s && l)
		r = kvfs_pki_secret_files(s, sl, type, (unsigned char *)l, ll,
					  "unit", f, why, n);
	free(s);
	free(l);
	return r;
}

static bool key_matches(const char *pem, size_t len, const char *leaf_pem)
{
	BIO *kb = BIO_new_mem_buf(pem, (int)len);
	BIO *cb = BIO_new_file(leaf_pem, "r");
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	bool yes = k && x && X509_check_private_key(x, k) == 1;

	EVP_PKEY_free(k);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	return yes;
}

/* The PKCS#12 opens with the empty password and holds the key, the leaf
 * first and n_ca issuers. */
static void check_pfx(const struct kvfs_pki_secret_files *f,
		      const char *leaf_pem, int n_ca, const char *what)
{
	const unsigned char *p = f->pfx;
	PKCS12 *p12 = f->pfx ? d2i_PKCS12(NULL, &p, (long)f->pfx_len) : NULL;
	EVP_PKEY *k = NULL;
	X509 *x = NULL, *want = NULL;
	STACK_OF(X509) *ca = NULL;
	BIO *b = BIO_new_file(leaf_pem, "r");

	want = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	ok(p12 && PKCS12_verify_mac(p12, "", 0) == 1,
	   "%s: cert.pfx has a MAC over the empty password", what);
	ok(p12 && PKCS12_parse(p12, "", &k, &x, &ca) == 1 && k && x && want &&
		   X509_cmp(x, want) == 0 && X509_check_private_key(x, k) == 1,
	   "%s: cert.pfx opens with \"\" and holds the matching pair", what);
	is_int(ca ? sk_X509_num(ca) : 0, n_ca, "%s: cert.pfx issuers", what);
	EVP_PKEY_free(k);
	X509_free(x);
	X509_free(want);
	sk_X509_pop_free(ca, X509_free);
	PKCS12_free(p12);
	BIO_free(b);
}

static void test_secret_files(void)
{
	struct kvfs_pki_secret_files f = {0};
	char why[200] = "";
	char *want;
	int r;

	/* Key Vault's PEM: key, leaf, intermediate. */
	r = build("pki/rsa-secret.pem", "application/x-pem-file",
		  "pki/rsa-leaf.der", &f, why, sizeof(why));
	is_int(r, 0, "RSA PEM secret: files built (%s)", why);
	ok(f.has_key, "RSA PEM secret: has a key");
	ok(f.privkey &&
		   strncmp(f.privkey, "-----BEGIN PRIVATE KEY-----\n", 28) == 0,
	   "privkey.pem is PKCS#8 PEM, unencrypted");
	ok(f.privkey &&
		   key_matches(f.privkey, f.privkey_len, "pki/rsa-leaf.pem"),
	   "privkey.pem matches the leaf");
	want = tap_slurp("pki/inter.pem", &(size_t){0});
	is_str(f.chain, want, "chain.pem is the intermediate");
	free(want);
	want = cat2("pki/rsa-leaf.pem", "pki/inter.pem");
	is_str(f.fullchain, want, "fullchain.pem is leaf + intermediate");
	ok(f.bundle && f.privkey && want &&
		   f.bundle_len == f.privkey_len + strlen(want) &&
		   strncmp(f.bundle, f.privkey, f.privkey_len) == 0 &&
		   strcmp(f.bundle + f.privkey_len, want) == 0,
	   "bundle.pem is privkey + fullchain");
	free(want);
	check_pfx(&f, "pki/rsa-leaf.pem", 1, "RSA PEM");
	kvfs_pki_secret_files_clear(&f);
	ok(f.privkey == NULL && f.pfx == NULL, "cleared");

	/* Stored as key, root, intermediate, leaf. */
	r = build("pki/rsa-reversed.pem", NULL, "pki/rsa-leaf.der", &f, why,
		  sizeof(why));
	is_int(r, 0, "reversed chain, no contentType: built (%s)", why);
	want = cat2("pki/rsa-leaf.pem", "pki/inter.pem");
	is_str(f.fullchain, want,
	       "reversed chain: fullchain leaf -> intermediate, root left out");
	free(want);
	want = tap_slurp("pki/inter.pem", &(size_t){0});
	is_str(f.chain, want, "reversed chain: chain.pem is the intermediate");
	free(want);
	kvfs_pki_secret_files_clear(&f);

	/* Key Vault's PKCS#12 (NULL password) with an EC key and the root. */
	r = build("pki/ec-secret.p12.b64", "application/x-pkcs12",
		  "pki/ec-leaf.der", &f, why, sizeof(why));
	is_int(r, 0, "EC PKCS#12 secret: built (%s)", why);
	ok(f.has_key && f.privkey &&
		   key_matches(f.privkey, f.privkey_len, "pki/ec-leaf.pem"),
	   "EC privkey.pem matches the leaf");
	ok(f.privkey &&
		   strncmp(f.privkey, "-----BEGIN PRIVATE KEY-----\n", 28) == 0,
	   "EC privkey.pem is PKCS#8");
	want = cat2("pki/ec-leaf.pem", "pki/inter.pem");
	is_str(f.fullchain, want, "EC fullchain: leaf + intermediate");
	free(want);
	check_pfx(&f, "pki/ec-leaf.pem", 1, "EC PKCS#12");
	kvfs_pki_secret_files_clear(&f);

	/* No key bag: the leaf comes back among the extra certificates. */
	r = build("pki/rsa-nokey.p12.b64", "application/x-pkcs12",
		  "pki/rsa-leaf.der", &f, why, sizeof(why));
	is_int(r, 0, "key-less PKCS#12: built (%s)", why);
	ok(!f.has_key && !f.privkey && !f.bundle && !f.pfx,
	   "key-less PKCS#12: no key files");
	want = cat2("pki/rsa-leaf.pem", "pki/inter.pem");
	is_str(f.fullchain, want, "key-less PKCS#12: fullchain all the same");
	free(want);
	kvfs_pki_secret_files_clear(&f);

	/* Self-signed: no issuers, the leaf itself stays. */
	r = build("pki/self-secret.p12.b64", "application/x-pkcs12",
		  "pki/self-leaf.der", &f, why, sizeof(why));
	is_int(r, 0, "self-signed: built (%s)", why);
	is_str(f.chain, "", "self-signed: chain.pem empty");
	want = tap_slurp("pki/self-leaf.pem", &(size_t){0});
	is_str(f.fullchain, want, "self-signed: fullchain.pem is the leaf");
	free(want);
	check_pfx(&f, "pki/self-leaf.pem", 0, "self-signed");
	kvfs_pki_secret_files_clear(&f);

	/* Failures: EBADMSG and nothing built. */
	r = build("pki/mismatch.pem", "application/x-pem-file",
		  "pki/rsa-leaf.der", &f, why, sizeof(why));
	is_int(r, -EBADMSG, "a key of another certificate is refused (%s)",
	       why);
	ok(f.fullchain == NULL, "nothing built");
	r = build("pki/rsa-secret.pem", "application/x-pem-file",
		  "pki/ec-leaf.der", &f, why, sizeof(why));
	is_int(r, -EBADMSG, "a secret without the bundle's leaf is refused");
	r = build("pki/rsa-secret.pem", "application/x-pkcs12",
		  "pki/rsa-leaf.der", &f, why, sizeof(why));
	is_int(r, -EBADMSG, "PEM labelled PKCS#12 is refused (%s)", why);
	r = build("pki/ec-secret.p12.b64", "application/x-pem-file",
		  "pki/ec-leaf.der", &f, why, sizeof(why));
	is_int(r, -EBADMSG, "PKCS#12 labelled PEM is refused (%s)", why);
	r = build("pki/rsa-leaf.der", "application/x-pkcs12",
		  "pki/rsa-leaf.der", &f, why, sizeof(why));
	is_int(r, -EBADMSG, "binary that is not base64 is refused");
	/* A PKCS#12 names its own PBKDF iteration counts: 250,000 (Key
	 * Vault writes 2000) is refused before any key is derived, for the
	 * MAC and for the encrypted bags alike. */
	r = build("pki/self-iter.p12.b64", "application/x-pkcs12",
		  "pki/self-leaf.der", &f, why, sizeof(why));
	is_int(r, -EBADMSG, "a MAC of 250,000 iterations is refused (%s)", why);
	r = build("pki/self-iter-bags.p12.b64", "application/x-pkcs12",
		  "pki/self-leaf.der", &f, why, sizeof(why));
	is_int(r, -EBADMSG, "bags of 250,000 iterations are refused (%s)", why);

	{
		static const char *const bad[][2] = {
			{"Zm9vYmFy", "application/x-pkcs12"},
			{"-----BEGIN CERTIFICATE-----\nZm9v\n-----END "
			 "CERTIFICATE-----\n",
			 "application/x-pem-file"},
			{"-----BEGIN ENCRYPTED PRIVATE KEY-----\nZm9v\n-----"
			 "END ENCRYPTED PRIVATE KEY-----\n",
			 "application/x-pem-file"},
			{"-----BEGIN PRIVATE KEY-----\nZm9v",
			 "application/x-pem-file"},
			{"just text", "application/x-pem-file"},
		};
		size_t ll = 0;
		char *leaf = tap_slurp("pki/rsa-leaf.der", &ll);

		for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
			r = kvfs_pki_secret_files(bad[i][0], strlen(bad[i][0]),
						  bad[i][1],
						  (unsigned char *)leaf, ll,
						  "x", &f, why, sizeof(why));
			is_int(r, -EBADMSG, "malformed secret %zu refused (%s)",
			       i, why);
		}
		free(leaf);
	}
}

/* A PKCS#12 without a MAC, as a work bomb has it: the key (in a plain
 * bag, or when key_iter > 0 shrouded with key_iter iterations inside the
 * first encrypted ContentInfo) and the leaf, then n encrypted
 * ContentInfos (PBES2, PBKDF2-HMAC-SHA256 of iter iterations; all copies
 * of one, so that building it derives one key). */
static unsigned char *p12_bomb(EVP_PKEY *key, X509 *x, int n, int iter,
			       int key_iter, size_t *ret_len)
{
	STACK_OF(PKCS12_SAFEBAG) *plain = NULL, *inner = NULL;
	STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
	PKCS7 *enc = NULL;
	PKCS12 *p12 = NULL;
	unsigned char *der = NULL;
	int len;

	if (!PKCS12_add_cert(&plain, x) ||
	    (key_iter == 0 && !PKCS12_add_key(&plain, key, 0, 0, -1, NULL)) ||
	    !sk_PKCS7_push(safes, PKCS12_pack_p7data(plain)))
		return NULL;
	if (key_iter > 0) {
		if (!PKCS12_add_key(&inner, key, 0, key_iter, NID_aes_256_cbc,
				    NULL) ||
		    !sk_PKCS7_push(safes, PKCS12_pack_p7encdata(
						  NID_aes_256_cbc, NULL, 0,
						  NULL, 0, iter, inner)))
			return NULL;
		n--;
	}
	sk_PKCS12_SAFEBAG_pop_free(inner, PKCS12_SAFEBAG_free);
	inner = sk_PKCS12_SAFEBAG_new_null();
	enc = PKCS12_pack_p7encdata(NID_aes_256_cbc, NULL, 0, NULL, 0, iter,
				    inner);
	for (int i = 0; enc && i < n; i++)
		sk_PKCS7_push(safes, PKCS7_dup(enc));
	p12 = PKCS12_add_safes(safes, 0);
	len = p12 ? i2d_PKCS12(p12, &der) : -1;
	PKCS7_free(enc);
	PKCS12_free(p12);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	sk_PKCS12_SAFEBAG_pop_free(plain, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(inner, PKCS12_SAFEBAG_free);
	if (len <= 0)
		return NULL;
	*ret_len = (size_t)len;
	return der;
}

/* Open der; the iterations derived on the way come back in ret_iter. */
static int p12_open(const unsigned char *der, size_t len, uint64_t *ret_iter,
		    char *why, size_t n)
{
	uint64_t before = kvfs_metrics_get(KVFS_COUNTER_KDF_ITERATIONS);
	STACK_OF(X509) *ca = NULL;
	EVP_PKEY *k = NULL;
	X509 *leaf = NULL;
	int r;

	r = kvfs_pki_pkcs12_open(der, len, NULL, &k, &leaf, &ca, why, n);
	*ret_iter = kvfs_metrics_get(KVFS_COUNTER_KDF_ITERATIONS) - before;
	if (r == 0 && (!k || !leaf))
		r = -999;
	EVP_PKEY_free(k);
	X509_free(leaf);
	sk_X509_pop_free(ca, X509_free);
	return r;
}

/* The key derivations of one PKCS#12 are bounded in number and in total
 * iterations, refused before any of them runs, and each runs once. */
static void test_pkcs12_work(void)
{
	BIO *kb = BIO_new_file("pki/self.key", "r");
	BIO *cb = BIO_new_file("pki/self-leaf.pem", "r");
	EVP_PKEY *key =
		kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	unsigned char *der, *p12;
	size_t len = 0, dl = 0;
	uint64_t iter = 0;
	char why[256] = "";
	int r;

	ok(key && x, "fixture key and leaf load");

	/* 400 encrypted ContentInfos of 200,000 iterations: 80 million
	 * iterations, twice over, before any bound on their number. */
	der = p12_bomb(key, x, 400, 200000, 0, &len);
	ok(der != NULL,
	   "a bomb of 400 encrypted ContentInfos built (%zu "
	   "bytes)",
	   len);
	r = p12_open(der, len, &iter, why, sizeof(why));
	is_int(r, -EBADMSG, "the bomb is refused (%s)", why);
	is_int((long long)iter, 0, "before any key derivation ran");
	ok(strstr(why, "too many key derivations") != NULL,
	   "the reason says why");
	{
		/* The same through a certificate's secret, as base64. */
		struct kvfs_pki_secret_files f = {0};
		char *b64 = NULL;
		BIO *b = BIO_new(BIO_s_mem()), *e = BIO_new(BIO_f_base64());
		long bl;

		BIO_set_flags(e, BIO_FLAGS_BASE64_NO_NL);
		b = BIO_push(e, b);
		BIO_write(b, der, (int)len);
		(void)BIO_flush(b);
		bl = BIO_get_mem_data(BIO_next(b), &b64);
		iter = kvfs_metrics_get(KVFS_COUNTER_KDF_ITERATIONS);
		r = kvfs_pki_secret_files(b64, (size_t)bl,
					  "application/x-pkcs12",
					  (const unsigned char *)"x", 1, "b",
					  &f, why, sizeof(why));
		is_int(r, -EBADMSG, "the bomb as a secret is refused (%s)",
		       why);
		is_int((long long)(kvfs_metrics_get(
					   KVFS_COUNTER_KDF_ITERATIONS) -
				   iter),
		       0, "as a secret, before any key derivation ran");
		BIO_free_all(b);
	}
	OPENSSL_free(der);

	/* Nine derivations of one iteration: the number is bounded. */
	der = p12_bomb(key, x, 9, 1, 0, &len);
	r = p12_open(der, len, &iter, why, sizeof(why));
	is_int(r, -EBADMSG, "nine encrypted ContentInfos are refused (%s)",
	       why);
	is_int((long long)iter, 0, "before any key derivation ran");
	OPENSSL_free(der);

	/* Three of 200,000: the total is bounded. */
	der = p12_bomb(key, x, 3, 200000, 0, &len);
	r = p12_open(der, len, &iter, why, sizeof(why));
	is_int(r, -EBADMSG, "600,000 iterations in all are refused (%s)", why);
	is_int((long long)iter, 0, "before any key derivation ran");
	OPENSSL_free(der);

	/* Two of 200,000 are within bounds, and each runs once. */
	der = p12_bomb(key, x, 2, 200000, 0, &len);
	r = p12_open(der, len, &iter, why, sizeof(why));
	is_int(r, 0, "400,000 iterations in all open");
	is_int((long long)iter, 400000, "each derivation ran once");
	OPENSSL_free(der);

	/* A shrouded key inside an encrypted ContentInfo is seen only once
	 * that is decrypted: it is refused before its own derivation. */
	der = p12_bomb(key, x, 2, 150000, 150000, &len);
	r = p12_open(der, len, &iter, why, sizeof(why));
	is_int(r, -EBADMSG, "a shrouded key past the total is refused (%s)",
	       why);
	is_int((long long)iter, 150000,
	       "only the ContentInfo that holds it was decrypted");
	OPENSSL_free(der);

	/* Key Vault's export: the MAC, the certificates, the key; 2000
	 * iterations each, each once. */
	p12 = (unsigned char *)tap_slurp("pki/ec-secret.p12.b64", &len);
	r = p12 ? kvfs_pki_base64_decode((char *)p12, len, &der, &dl) : -1;
	is_int(r, 0, "Key Vault's PKCS#12 decodes");
	r = p12_open(der, dl, &iter, why, sizeof(why));
	is_int(r, 0, "Key Vault's PKCS#12 opens");
	is_int((long long)iter, 6000, "three derivations of 2000, once each");
	free(der);
	free(p12);

	EVP_PKEY_free(key);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
}

static void test_cert_info(void)
{
	size_t len = 0;
	unsigned char *der =
		(unsigned char *)tap_slurp("pki/rsa-leaf.der", &len);
	char *subject = NULL, sha256[65], x5t[28];
	char *want;
	size_t wl;

	is_int(kvfs_pki_cert_info(der, len, &subject, sha256, x5t), 0,
	       "cert info of rsa-leaf");
	want = tap_slurp("pki/rsa-leaf.subject", &wl);
	if (want && wl > 0 && want[wl - 1] == '\n')
		want[wl - 1] = '\0';
	is_str(subject, want, "subject as openssl -nameopt RFC2253 prints it");
	free(want);
	want = tap_slurp("pki/rsa-leaf.sha256", &wl);
	if (want && wl > 0 && want[wl - 1] == '\n')
		want[wl - 1] = '\0';
	is_str(sha256, want, "sha256 as openssl dgst prints it");
	free(want);
	want = tap_slurp("pki/rsa-leaf.x5t", &wl);
	if (want && wl > 0 && want[wl - 1] == '\n')
		want[wl - 1] = '\0';
	is_str(x5t, want, "x5t: base64url SHA-1 without padding");
	free(want);
	free(subject);
	is_int(kvfs_pki_cert_info(der, len - 1, &subject, sha256, x5t), -EINVAL,
	       "a truncated certificate is refused");
	free(der);
}

int main(void)
{
	test_secret_files();
	test_pkcs12_work();
	test_cert_info();
	test_base64();
	test_der_to_pem();
	test_pem_read();
	return done_testing();
}
