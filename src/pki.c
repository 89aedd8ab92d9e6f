/* OpenSSL side of the tree: DER certificates to PEM, and the strict base64
 * decoder the vault client uses for "cer".  OpenSSL errors are translated to
 * -errno here and nowhere else.  Pure functions; thread-safe. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

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

static void x509_freep(X509 **x)
{
	X509_free(*x);
}

static void bio_freep(BIO **b)
{
	BIO_free(*b);
}

int kvfs_pki_der_to_pem(const unsigned char *der, size_t len, char **ret_pem,
			size_t *ret_len)
{
	_cleanup_(x509_freep) X509 *x = NULL;
	_cleanup_(bio_freep) BIO *bio = NULL;
	const unsigned char *p = der;
	char *data = NULL, *pem;
	long n;

	if (!der || len == 0 || len > LONG_MAX)
		return -EINVAL;

	x = d2i_X509(NULL, &p, (long)len);
	if (!x || p != der + len) {
		/* Trailing bytes after the certificate are not a certificate
		 * either. */
		ERR_clear_error();
		return -EINVAL;
	}

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
