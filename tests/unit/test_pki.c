/* Unit tests of pki.c: the strict base64 decoder (RFC 4648 vectors and
 * every kind of garbage) and DER -> PEM against an openssl-made fixture:
 *   openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null \
 *     -subj "/CN=kvfs pki test" -days 36500 -outform DER -out pki-leaf.der
 *   openssl x509 -inform DER -in pki-leaf.der -out pki-leaf.pem */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

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
	unsigned char *out = (unsigned char *)"untouched";
	size_t len = 12345;
	int r = kvfs_pki_base64_decode(in, strlen(in), &out, &len);

	is_int(r, -EINVAL, "refuses %s", why);
	ok(out == (unsigned char *)"untouched" && len == 12345,
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
}

int main(void)
{
	test_base64();
	test_der_to_pem();
	return done_testing();
}
