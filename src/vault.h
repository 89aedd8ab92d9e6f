/* The Key Vault REST API as plain C structs: list the objects of a
 * collection and the versions of one (all pages; each collection's items
 * read by the same code, by its rules), get a certificate bundle, get the
 * secret that backs a certificate (its key and chain), get a secret by name
 * and a key's public half (its JWK).  Validates JSON field by
 * field; a response that did not parse completely is an error, never a partial
 * result. Handles the challenge and a 401 (drop the token, retry once) with
 * auth. Knows nothing of FUSE.  Thread-safe. */
#ifndef KVFS_VAULT_H
#define KVFS_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "collection.h"
#include "config.h"
#include "error.h"
#include "http.h"

#define KVFS_VAULT_MAX_PAGES 10000
/* What one listing may keep in memory: the page cap's worth (250,000) of
 * objects with 127-character names, kept as name, version, x5t or
 * contentType, attributes and tags.  A listing past it fails (-E2BIG), and
 * the previous one stays. */
#define KVFS_VAULT_MAX_LIST_BYTES (64u << 20)

struct kvfs_object_attrs {
	bool enabled;
	int64_t nbf; /* 0 when absent */
	int64_t exp; /* 0 when absent */
	int64_t created;
	int64_t updated;
};

/* One of an object's tags, as the vault spells it.  Key Vault keeps at
 * most 15 tags of 256-character names and values on an object.  A tag
 * whose value is not a string or holds a NUL makes the answer malformed;
 * one whose name or value is longer than 1024 bytes (256 characters of
 * UTF-8), and those past the 64th, are read but not kept. */
struct kvfs_tag {
	char *key;
	char *value;
};

/* An object of a listing: what every collection's items carry, and the
 * one string its collection's keep. */
struct kvfs_object_item {
	char *name;    /* the vault's own spelling; maybe not a valid name */
	char *version; /* in a versions listing; NULL in a collection's */
	union {
		char *x5t;	    /* a certificate's: base64url, or NULL */
		char *content_type; /* a secret's contentType, or NULL */
	};
	struct kvfs_object_attrs attrs;
	bool managed;	       /* a secret or key that backs a certificate */
	struct kvfs_tag *tags; /* in the vault's order; NULL when none */
	size_t ntags;
	/* The tags kept, as compact JSON with sorted keys (as tags_json of a
	 * GET); NULL when none is kept. */
	char *tags_json;
};

struct kvfs_object_list {
	struct kvfs_object_item *items;
	size_t n;
	size_t bytes; /* kept, counted against KVFS_VAULT_MAX_LIST_BYTES */
};

struct kvfs_cert_bundle {
	char *id; /* full id URL with version */
	char *name;
	char *version;
	char *x5t;
	char *sid;
	unsigned char *der; /* leaf certificate, from "cer" */
	size_t der_len;
	struct kvfs_object_attrs attrs;
	char *tags_json;
	bool exportable;    /* policy.key_props.exportable; true when absent */
	char *content_type; /* policy.secret_props.contentType, or NULL */
};

/* A secret: a certificate's backing one, or one of the secrets
 * collection.  value is secret: it lives in a buffer that
 * kvfs_secret_clear() wipes.  It is exactly the bytes of the JSON string,
 * value_len of them, NUL-terminated for convenience: a standalone secret
 * may be empty, end in a newline or hold a NUL ("\u0000"), and all of it
 * is kept (Key Vault holds at most 25 KB; kvfs does not enforce that, the
 * HTTP body cap bounds it).  A certificate's secret (PEM text, or standard
 * base64 of a PKCS#12) is never empty and holds no NUL. */
struct kvfs_secret {
	char *value;
	size_t value_len;
	char *content_type; /* "application/x-pem-file", ..., or NULL */
	char *id;	    /* "https://vault/secrets/NAME/VERSION" */
	char *name;	    /* from the id, the vault's spelling */
	char *version;
	struct kvfs_object_attrs attrs;
	struct kvfs_tag *tags; /* in the vault's order; NULL when none */
	size_t ntags;
	char *tags_json; /* the tags as compact JSON, keys sorted; "{}" */
	bool managed;	 /* it backs a certificate */
};

/* A key's public half, as GET /keys/{name}[/{version}] gives it.  The
 * strings of the JWK are as the vault spells them; n, e, x and y are
 * base64url without padding, for kvfs_jwk_public_pem(). */
struct kvfs_key_bundle {
	char *id; /* the JWK's kid: "https://vault/keys/NAME/VERSION" */
	char *name;
	char *version;
	/* The JWK ("key") as the vault sent it: every member, in the
	 * vault's order, written compact as the vault writes it, and a
	 * newline (public.jwk, a text file). */
	char *jwk_json;
	size_t jwk_len;
	char *kty;	/* "RSA", "RSA-HSM", "EC" or "EC-HSM" */
	char *crv;	/* EC: "P-256", "P-384", "P-521", "P-256K"; else NULL */
	char *n, *e;	/* RSA */
	char *x, *y;	/* EC */
	char **key_ops; /* NULL-terminated, the vault's order; never NULL */
	size_t nkey_ops;
	struct kvfs_object_attrs attrs;
	struct kvfs_tag *tags; /* in the vault's order; NULL when none */
	size_t ntags;
	char *tags_json; /* the tags as compact JSON, keys sorted; "{}" */
	bool managed;	 /* it backs a certificate */
};

struct kvfs_vault;

int kvfs_vault_new(const struct kvfs_config *c, struct kvfs_http *h,
		   struct kvfs_auth *a, struct kvfs_vault **ret);
void kvfs_vault_free(struct kvfs_vault *v);

/* GET /{collection}?maxresults=25 (/certificates), following nextLink
 * (same origin only).  Each page may take page_budget_s seconds, retries
 * included; 0 means max(deadline=, 30 s), for the start-up listing, which
 * no file operation waits for.  A background revalidation passes a short
 * one, so that it never sits in the gate's backoff for long and the unmount
 * need not wait for it.  -EINVAL when coll is not a collection. */
int kvfs_vault_list_within(struct kvfs_vault *v, enum kvfs_collection coll,
			   unsigned page_budget_s, struct kvfs_object_list *ret,
			   struct kvfs_error *err);

/* GET /certificates/{name}[/{version}].  -ENOENT for 404. */
int kvfs_vault_get_certificate(struct kvfs_vault *v, const char *name,
			       const char *version,
			       struct kvfs_cert_bundle *ret,
			       struct kvfs_error *err);

/* GET /{collection}/{name}/versions?maxresults=25, every page (same origin
 * only); the items carry their version.  -ENOENT for 404. */
int kvfs_vault_list_versions(struct kvfs_vault *v, enum kvfs_collection coll,
			     const char *name, struct kvfs_object_list *ret,
			     struct kvfs_error *err);
/* The same with each page's budget in seconds (0: max(deadline=, 30 s)), for
 * a revalidation. */
int kvfs_vault_list_versions_within(struct kvfs_vault *v,
				    enum kvfs_collection coll, const char *name,
				    unsigned page_budget_s,
				    struct kvfs_object_list *ret,
				    struct kvfs_error *err);

/* GET the secret a bundle's sid names ("https://vault/secrets/N/V"): the
 * sid must be of the vault's origin, and the answer of that version, with
 * a value that is neither empty nor holds a NUL.  -EACCES for 403 with
 * err->inner telling SecretDisabled (the version is disabled) from
 * ForbiddenByRbac / AccessDenied (the identity may not read secrets);
 * -ENOENT for 404. */
int kvfs_vault_get_secret(struct kvfs_vault *v, const char *sid,
			  struct kvfs_secret *ret, struct kvfs_error *err);

/* GET /secrets/{name}/ (the latest version) or /secrets/{name}/{version}:
 * the answer must be of the vault's origin and of that name (and
 * version).  -EACCES for 403 (kvfs_vault_error_disabled() tells a disabled
 * secret from a refused identity), -ENOENT for 404 or a name or version
 * that cannot be one. */
int kvfs_vault_get_secret_value(struct kvfs_vault *v, const char *name,
				const char *version, struct kvfs_secret *ret,
				struct kvfs_error *err);

/* GET /keys/{name}/ (the latest version) or /keys/{name}/{version}, as
 * kvfs_vault_parse_key() reads it, the kid of the vault's origin and of
 * that name (and version).  -EACCES for 403, -ENOENT for 404 or a name or
 * version that cannot be one, -EOPNOTSUPP for a key with no public half
 * (oct, oct-HSM) or of a type kvfs does not know.  Key Vault answers a
 * disabled key's GET with 200 and "enabled": false (its 403 KeyDisabled is
 * for sign, decrypt and unwrapKey): the attributes say it. */
int kvfs_vault_get_key(struct kvfs_vault *v, const char *name,
		       const char *version, struct kvfs_key_bundle *ret,
		       struct kvfs_error *err);

/* While the vault is failing and backing off, when its next request may
 * be sent (kvfs_now_ms() time); else 0.  NULL: 0. */
int64_t kvfs_vault_next_attempt_ms(struct kvfs_vault *v);

/* The vault refused an object because it is disabled (403 SecretDisabled
 * or KeyDisabled), not because of who asked. */
bool kvfs_vault_error_disabled(const struct kvfs_error *err);
/* The same for a secret only (403 SecretDisabled): what the cache asks of
 * a certificate's secret. */
bool kvfs_vault_error_secret_disabled(const struct kvfs_error *err);

/* Free an item's strings and tags, and zero it. */
void kvfs_object_item_clear(struct kvfs_object_item *it);
void kvfs_object_list_clear(struct kvfs_object_list *l);
void kvfs_secret_clear(struct kvfs_secret *s);
void kvfs_cert_bundle_clear(struct kvfs_cert_bundle *b);
void kvfs_key_bundle_clear(struct kvfs_key_bundle *b);

/* Pure parsers, exposed for unit tests and fuzzers. */
/* A page of a listing of the collection coll (its ids are under
 * "/{coll->name}/"); want_version: of a versions listing (ids with a
 * version).  coll is a row of the table, or one written alike for a
 * collection whose items vault.c can read but which has no row yet
 * (secrets, keys); -EINVAL for one whose items it cannot read. */
int kvfs_vault_parse_page(const char *json, size_t len,
			  const struct kvfs_collection_info *coll,
			  bool want_version, struct kvfs_object_list *append_to,
			  char **ret_next_link, struct kvfs_error *err);
/* A secret bundle (SecretBundle); its id must name a version. */
int kvfs_vault_parse_secret(const char *json, size_t len,
			    struct kvfs_secret *ret, struct kvfs_error *err);
/* A key bundle (KeyBundle): the JWK's kid must name a version, and be of
 * origin's (kvfs_url_same_origin()) unless origin is NULL; kty RSA or
 * RSA-HSM with n and e, or EC or EC-HSM with crv, x and y, all strings; no
 * private member (d, p, q, dp, dq, qi, k).  Whether n, e, x and y make a
 * key is kvfs_jwk_public_pem()'s to say.  -EOPNOTSUPP for another kty. */
int kvfs_vault_parse_key(const char *json, size_t len, const char *origin,
			 struct kvfs_key_bundle *ret, struct kvfs_error *err);
int kvfs_vault_parse_bundle(const char *json, size_t len,
			    struct kvfs_cert_bundle *ret,
			    struct kvfs_error *err);
/* Fill err->code/inner from a Key Vault error body, if it is one. */
void kvfs_vault_parse_error(const char *json, size_t len,
			    struct kvfs_error *err);

/* The name of an object (certificate, secret, key) or of a version:
 * 1-127 of [0-9A-Za-z-]. */
bool kvfs_vault_object_name_valid(const char *name);

#endif
