/* The client-certificate provider (auth=cert): client credentials with a client
 * assertion, a JWT signed with the private key of cert_file= (PEM with the key
 * and the certificate, or PKCS#12 with cert_password_file= or
 * AZURE_CLIENT_CERTIFICATE_PASSWORD).  PS256 with x5t#S256 by default, as
 * Entra ID documents it; RS256 with x5t (SHA-1) with cert_alg=RS256.  The
 * claims: aud = the tenant's token endpoint, iss = sub = client_id, a fresh
 * random jti, nbf = iat = now, exp = now + 10 minutes; x5c (the chain) when
 * asked to send it.  Only RSA keys: Entra ID accepts no EC-signed
 * assertion, so an EC key is refused with a message that says so.  The
 * files are read (with the secret-file checks) before every token request,
 * so a renewed certificate is picked up without a remount.  OpenSSL's
 * errors are translated here, for this provider's own use of it.  fetch()
 * is single-flight (provider.h); the file contents, the password and the
 * assertion are wiped after use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/credfile.h"
#include "auth/entra.h"
#include "auth/provider.h"
#include "pki.h"
#include "secmem.h"
#include "util.h"

#define ASSERTION_LIFETIME_S 600 /* Entra's "5-10 minutes" */

struct kvfs_clientcert {
	EVP_PKEY *key;
	X509 *leaf;
	STACK_OF(X509) * chain; /* the other certificates, file order */
};

void kvfs_clientcert_free(struct kvfs_clientcert *c)
{
	if (!c)
		return;
	EVP_PKEY_free(c->key); /* OpenSSL clears RSA's private numbers */
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
	free(c);
}

struct pass {
	const char *password;
};

/* Never prompt on a terminal: an encrypted PEM key takes the password
 * given, or fails. */
static int pem_pass_cb(char *buf, int size, int rwflag, void *u)
{
	const struct pass *p = u;
	size_t n;

	if (!p || !p->password)
		return -1;
	n = strlen(p->password);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, p->password, n);
	return (int)n;
}

static bool is_pem(const char *data, size_t len)
{
	static const char mark[] = "-----BEGIN ";

	for (size_t i = 0; i + sizeof(mark) - 1 <= len; i++)
		if (memcmp(data + i, mark, sizeof(mark) - 1) == 0)
			return true;
	return false;
}

static int load_pem(const char *data, size_t len, const char *password,
		    struct kvfs_clientcert *c, struct kvfs_error *err)
{
	struct pass pass = {password};
	BIO *bio;
	X509 *x;

	bio = BIO_new_mem_buf(data, (int)len);
	if (!bio)
		return -ENOMEM;
	c->key = PEM_read_bio_PrivateKey(bio, NULL, pem_pass_cb, &pass);
	BIO_free(bio);
	if (!c->key) {
		kvfs_error_set_message(err, "holds no private key that can be "
					    "read (an encrypted key needs "
					    "cert_password_file=)");
		return -EINVAL;
	}

	c->chain = sk_X509_new_null();
	if (!c->chain)
		return -ENOMEM;
	bio = BIO_new_mem_buf(data, (int)len);
	if (!bio)
		return -ENOMEM;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		if (!c->leaf && X509_check_private_key(x, c->key)) {
			c->leaf = x;
		} else if (!sk_X509_push(c->chain, x)) {
			X509_free(x);
			BIO_free(bio);
			return -ENOMEM;
		}
	}
	BIO_free(bio);
	if (!c->leaf) {
		kvfs_error_set_message(err, "holds no certificate that matches "
					    "its private key");
		return -EINVAL;
	}
	return 0;
}

static int load_pkcs12(const char *data, size_t len, const char *password,
		       struct kvfs_clientcert *c, struct kvfs_error *err)
{
	char why[160] = "";
	int r;

	r = kvfs_pki_pkcs12_open((const unsigned char *)data, len, password,
				 &c->key, &c->leaf, &c->chain, why,
				 sizeof(why));
	if (r == -EACCES) {
		kvfs_error_set_message(err, "cannot be opened as PKCS#12 %s",
				       password ? "with the password given"
						: "without a password (give "
						  "cert_password_file=)");
		return r;
	}
	if (r < 0) {
		/* Neither PEM nor a PKCS#12 that can be used. */
		kvfs_error_set_message(err, "is not PEM, and %s", why);
		return -EINVAL;
	}
	if (!c->key || !c->leaf) {
		kvfs_error_set_message(err, "PKCS#12 holds no private key "
					    "with its certificate");
		return -EINVAL;
	}
	if (!c->chain && !(c->chain = sk_X509_new_null()))
		return -ENOMEM;
	return 0;
}

int kvfs_clientcert_load(const char *data, size_t len, const char *password,
			 struct kvfs_clientcert **ret, struct kvfs_error *err)
{
	struct kvfs_clientcert *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (len > INT32_MAX)
		r = -EFBIG;
	else if (is_pem(data, len))
		r = load_pem(data, len, password, c, err);
	else
		r = load_pkcs12(data, len, password, c, err);
	ERR_clear_error();
	if (r == 0 && EVP_PKEY_get_base_id(c->key) != EVP_PKEY_RSA) {
		kvfs_error_set_message(
			err,
			"holds a %s key; Entra ID accepts client "
			"assertions signed with RSA keys only (PS256 or "
			"RS256)",
			EVP_PKEY_get_base_id(c->key) == EVP_PKEY_EC
				? "EC"
				: "non-RSA");
		r = -EOPNOTSUPP;
	}
	if (r < 0) {
		kvfs_clientcert_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

/* ---- the JWT ---- */

/* base64url without padding (url) or standard base64 with it. */
static char *b64(const unsigned char *in, size_t n, bool url)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	char *out = malloc(cap);
	int len;

	if (!out || n > INT32_MAX / 2) {
		free(out);
		return NULL;
	}
	len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	if (url) {
		while (len > 0 && out[len - 1] == '=')
			len--;
		out[len] = '\0';
		for (char *p = out; *p; p++)
			if (*p == '+')
				*p = '-';
			else if (*p == '/')
				*p = '_';
	}
	return out;
}

static char *der_digest_b64(X509 *x, const EVP_MD *md)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!X509_digest(x, md, d, &n))
		return NULL;
	return b64(d, n, true);
}

static char *der_b64(X509 *x)
{
	unsigned char *der = NULL;
	char *s;
	int n = i2d_X509(x, &der);

	if (n <= 0)
		return NULL;
	s = b64(der, (size_t)n, false);
	OPENSSL_free(der);
	return s;
}

static int uuid4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x"
		 "%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

static json_t *build_header(const struct kvfs_clientcert *c,
			    enum kvfs_assertion_alg alg, bool send_chain)
{
	_cleanup_(json_decrefp) json_t *h = json_object();
	bool ps = alg == KVFS_ASSERTION_ALG_PS256;
	_cleanup_free_ char *thumb = NULL;

	if (!h)
		return NULL;
	thumb = der_digest_b64(c->leaf, ps ? EVP_sha256() : EVP_sha1());
	if (!thumb ||
	    json_object_set_new(h, "alg",
				json_string(ps ? "PS256" : "RS256")) ||
	    json_object_set_new(h, "typ", json_string("JWT")) ||
	    json_object_set_new(h, ps ? "x5t#S256" : "x5t", json_string(thumb)))
		return NULL;
	if (send_chain) {
		json_t *x5c = json_array();
		char *s;

		if (!x5c || json_object_set_new(h, "x5c", x5c))
			return NULL;
		s = der_b64(c->leaf);
		if (!s || json_array_append_new(x5c, json_string(s))) {
			free(s);
			return NULL;
		}
		free(s);
		for (int i = 0; i < sk_X509_num(c->chain); i++) {
			s = der_b64(sk_X509_value(c->chain, i));
			if (!s || json_array_append_new(x5c, json_string(s))) {
				free(s);
				return NULL;
			}
			free(s);
		}
	}
	return TAKE_PTR(h);
}

static json_t *build_claims(const char *client_id, const char *audience,
			    int64_t now)
{
	_cleanup_(json_decrefp) json_t *j = json_object();
	char jti[37];

	if (!j || uuid4(jti) < 0)
		return NULL;
	if (json_object_set_new(j, "aud", json_string(audience)) ||
	    json_object_set_new(j, "iss", json_string(client_id)) ||
	    json_object_set_new(j, "sub", json_string(client_id)) ||
	    json_object_set_new(j, "jti", json_string(jti)) ||
	    json_object_set_new(j, "nbf", json_integer((json_int_t)now)) ||
	    json_object_set_new(j, "iat", json_integer((json_int_t)now)) ||
	    json_object_set_new(
		    j, "exp",
		    json_integer((json_int_t)now + ASSERTION_LIFETIME_S)))
		return NULL;
	return TAKE_PTR(j);
}

static char *json_part(json_t *j)
{
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);

	return s ? b64((const unsigned char *)s, strlen(s), true) : NULL;
}

static int sign(EVP_PKEY *key, bool pss, const char *in, unsigned char **ret,
		size_t *ret_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t n = 0;
	int r = -EIO;

	if (!md)
		return -ENOMEM;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1)
		goto out;
	if (pss &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) !=
		     1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
		goto out;
	if (EVP_DigestSign(md, NULL, &n, (const unsigned char *)in,
			   strlen(in)) != 1)
		goto out;
	sig = malloc(n);
	if (!sig) {
		r = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(md, sig, &n, (const unsigned char *)in,
			   strlen(in)) != 1)
		goto out;
	*ret = TAKE_PTR(sig);
	*ret_len = n;
	r = 0;
out:
	free(sig);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return r;
}

int kvfs_clientcert_assertion(const struct kvfs_clientcert *c,
			      enum kvfs_assertion_alg alg, bool send_chain,
			      const char *client_id, const char *audience,
			      int64_t now, char **ret)
{
	_cleanup_(json_decrefp) json_t *header = NULL, *claims = NULL;
	_cleanup_free_ char *h = NULL, *p = NULL;
	_cleanup_secret_ char *input = NULL, *s = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *jwt;
	int r;

	header = build_header(c, alg, send_chain);
	claims = build_claims(client_id, audience, now);
	if (!header || !claims)
		return -ENOMEM;
	h = json_part(header);
	p = json_part(claims);
	if (!h || !p || !(input = kvfs_secmem_concat(h, ".", p)))
		return -ENOMEM;
	r = sign(c->key, alg == KVFS_ASSERTION_ALG_PS256, input, &sig, &siglen);
	if (r < 0)
		return r;
	s = b64(sig, siglen, true);
	kvfs_secure_free(sig, siglen);
	if (!s || !(jwt = kvfs_secmem_concat(input, ".", s)))
		return -ENOMEM;
	*ret = jwt;
	return 0;
}

/* ---- the provider ---- */

struct cert_provider {
	struct kvfs_entra_client client; /* client.file: cert_file= */
	char *password_file;		 /* or NULL */
	char *password;			 /* from the environment; wiped */
	enum kvfs_assertion_alg alg;
	bool send_chain;
};

static int load(struct cert_provider *p, struct kvfs_clientcert **ret,
		struct kvfs_error *err)
{
	_cleanup_secret_ char *password = NULL;
	char *data = NULL;
	size_t len = 0, plen = 0;
	int r;

	if (p->password_file) {
		r = kvfs_credfile_read(p->password_file,
				       KVFS_CREDFILE_STRIP_NEWLINES, &password,
				       &plen, err);
		if (r < 0)
			return r;
	} else if (p->password) {
		password = strdup(p->password);
		if (!password)
			return -ENOMEM;
	}
	r = kvfs_credfile_read(p->client.file, 0, &data, &len, err);
	if (r < 0)
		return r;
	r = kvfs_clientcert_load(data, len, password, ret, err);
	kvfs_secure_free(data, len + 1);
	if (r < 0) {
		char msg[sizeof(err->message)];

		snprintf(msg, sizeof(msg), "%s", err->message);
		kvfs_error_set_message(err, "cert_file '%s' %s", p->client.file,
				       msg);
		if (err)
			err->local = 1;
	}
	return r;
}

/* The assertion's audience is the token endpoint; the certificate is
 * loaded before discovery so that a broken one costs no request. */
static int cert_prove(struct kvfs_entra_client *cl, const char *tenant,
		      char **ret, struct kvfs_error *err)
{
	struct cert_provider *p = (struct cert_provider *)cl;
	struct kvfs_clientcert *cred = NULL;
	const char *endpoint;
	int r;

	r = load(p, &cred, err);
	if (r < 0)
		return r;
	r = kvfs_entra_token_endpoint(&cl->entra, tenant, &endpoint, err);
	if (r == 0)
		r = kvfs_clientcert_assertion(cred, p->alg, p->send_chain,
					      cl->client_id, endpoint,
					      kvfs_wall_now(), ret);
	kvfs_clientcert_free(cred);
	return r;
}

static void cert_done(struct kvfs_entra_client *cl)
{
	struct cert_provider *p = (struct cert_provider *)cl;

	free(p->password_file);
	kvfs_secure_free_str(p->password);
}

int kvfs_auth_cert_new(const struct kvfs_config *c, struct kvfs_http *h,
		       struct kvfs_auth_provider **ret, struct kvfs_error *err)
{
	static const struct kvfs_entra_client_kind cert = {
		.name = "cert",
		.needs = "cert_file= (or AZURE_CLIENT_CERTIFICATE_PATH)",
		.assertion = true,
		.size = sizeof(struct cert_provider),
		.done = cert_done,
		.prove = cert_prove,
	};
	struct kvfs_auth_provider *base;
	struct cert_provider *p;
	int r;

	r = kvfs_entra_client_new(&cert, c, c->cert_file, NULL, h, &base, err);
	if (r < 0)
		return r;
	p = (struct cert_provider *)base;
	p->alg = c->cert_alg;
	p->send_chain = c->send_cert_chain;
	if (c->cert_password_file && *c->cert_password_file) {
		p->password_file = strdup(c->cert_password_file);
		if (!p->password_file)
			goto oom;
	} else if (c->cert_password && *c->cert_password) {
		p->password = strdup(c->cert_password);
		if (!p->password)
			goto oom;
	}
	*ret = base;
	return 0;

oom:
	base->free(base);
	return -ENOMEM;
}
