/* The Key Vault REST API as plain C structs: list certificates (all pages),
 * get a certificate bundle.  Validates JSON field by field; a response that
 * did not parse completely is an error, never a partial result.  Handles
 * the challenge and a 401 (drop the token, retry once) with auth.
 * Knows nothing of FUSE.  Thread-safe. */
#ifndef KVFS_VAULT_H
#define KVFS_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "config.h"
#include "error.h"
#include "http.h"

#define KVFS_VAULT_MAX_PAGES 10000

struct kvfs_cert_attrs {
	bool enabled;
	int64_t nbf; /* 0 when absent */
	int64_t exp; /* 0 when absent */
	int64_t created;
	int64_t updated;
};

struct kvfs_cert_item {
	char *name; /* the vault's own spelling; maybe not a valid name */
	char *x5t;  /* base64url, or NULL */
	struct kvfs_cert_attrs attrs;
	char *tags_json; /* compact JSON object, "{}" when absent */
};

struct kvfs_cert_list {
	struct kvfs_cert_item *items;
	size_t n;
};

struct kvfs_cert_bundle {
	char *id; /* full id URL with version */
	char *name;
	char *version;
	char *x5t;
	char *sid;
	unsigned char *der; /* leaf certificate, from "cer" */
	size_t der_len;
	struct kvfs_cert_attrs attrs;
	char *tags_json;
	bool exportable;    /* policy.key_props.exportable; true when absent */
	char *content_type; /* policy.secret_props.contentType, or NULL */
};

struct kvfs_vault;

int kvfs_vault_new(const struct kvfs_config *c, struct kvfs_http *h,
		   struct kvfs_auth *a, struct kvfs_vault **ret);
void kvfs_vault_free(struct kvfs_vault *v);

/* GET /certificates?maxresults=25, following nextLink (same origin only). */
int kvfs_vault_list_certificates(struct kvfs_vault *v,
				 struct kvfs_cert_list *ret,
				 struct kvfs_error *err);

/* GET /certificates/{name}[/{version}].  -ENOENT for 404. */
int kvfs_vault_get_certificate(struct kvfs_vault *v, const char *name,
			       const char *version,
			       struct kvfs_cert_bundle *ret,
			       struct kvfs_error *err);

void kvfs_cert_list_clear(struct kvfs_cert_list *l);
void kvfs_cert_bundle_clear(struct kvfs_cert_bundle *b);

/* Pure parsers, exposed for unit tests and fuzzers. */
int kvfs_vault_parse_list_page(const char *json, size_t len,
			       struct kvfs_cert_list *append_to,
			       char **ret_next_link, struct kvfs_error *err);
int kvfs_vault_parse_bundle(const char *json, size_t len,
			    struct kvfs_cert_bundle *ret,
			    struct kvfs_error *err);
/* Fill err->code/inner from a Key Vault error body, if it is one. */
void kvfs_vault_parse_error(const char *json, size_t len,
			    struct kvfs_error *err);

/* 1-127 of [0-9A-Za-z-]. */
bool kvfs_vault_name_valid(const char *name);
/* Same scheme, host (case-insensitive) and port (443 implied). */
bool kvfs_vault_same_origin(const char *a, const char *b);

#endif
