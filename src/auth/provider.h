/* The contract between the token cache (auth.c) and one credential
 * provider: fetch a fresh token for a tenant and a resource.  The cache
 * calls fetch() without holding any lock and one call at a time (single
 * flight), so a provider needs no lock of its own for its state.  Also the
 * pure helpers of the providers, exposed for the unit tests.  Internal to
 * src/auth/. */
#ifndef KVFS_AUTH_PROVIDER_H
#define KVFS_AUTH_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "../config.h"
#include "../error.h"
#include "../http.h"

struct kvfs_token {
	char *access_token; /* wiped when cleared */
	long expires_in;    /* seconds of validity from now; may be absurd */
	long refresh_in;    /* seconds until a refresh is advised; 0: none */
};

void kvfs_token_clear(struct kvfs_token *t);

/* What the token services (Entra ID, the managed-identity endpoints)
 * disagree on in the numbers of a token response. */
struct kvfs_token_format {
	bool reals;	 /* a JSON real is read, truncated */
	bool expires_on; /* without expires_in: expires_on - now */
	long long min_s; /* a number of seconds outside [min_s, max_s] */
	long long max_s; /* is malformed */
	long long clamp; /* then a lifetime is clamped to [-clamp, clamp] */
};

/* An OAuth token response: access_token (printable ASCII, bounded: it
 * becomes a header), token_type Bearer or absent, expires_in, refresh_in
 * (>= 0, optional); numbers may be strings of decimal digits.  The
 * provider's own kvfs_*_parse_token() gives the format; now is Unix
 * seconds (kvfs_wall_now()), for expires_on. */
int kvfs_token_parse(const char *json, size_t len,
		     const struct kvfs_token_format *f, int64_t now,
		     struct kvfs_token *ret);

struct kvfs_auth_provider {
	/* "secret", "cert", "workload", "imds", "appservice", "arc" */
	const char *name;
	/* Why this flavour, for the log and status ("IDENTITY_ENDPOINT and
	 * IDENTITY_HEADER are set"), or NULL. */
	const char *detail;
	/* A managed identity: tokens of 2 h or more are refreshed at half
	 * their life, as MSAL does. */
	bool managed;
	/* tenant may be NULL for providers that need none (managed).
	 * deadline_ms (kvfs_now_ms() time) bounds the whole fetch, its
	 * requests and internal retries included: a reader waits for it.
	 * 0: no caller waits (the refresher); the provider's own schedule. */
	int (*fetch)(struct kvfs_auth_provider *p, const char *tenant,
		     const char *resource, int64_t deadline_ms,
		     struct kvfs_token *ret, struct kvfs_error *err);
	void (*free)(struct kvfs_auth_provider *p);

	/* Set by the cache: sleep between retries inside fetch().  Returns
	 * false, early, when the mount is going away; NULL: nanosleep. */
	bool (*sleep)(void *ctx, long ms);
	void *sleep_ctx;
};

/* Sleep through p->sleep; false when cancelled. */
bool kvfs_auth_provider_sleep(struct kvfs_auth_provider *p, long ms);

/* The timeout of one request of a fetch with deadline_ms: 0 (the HTTP
 * client's own) without a deadline, else the milliseconds left; -1 when
 * the deadline has passed. */
long kvfs_auth_request_timeout_ms(int64_t deadline_ms);

/* Providers.  Each validates its configuration; on a configuration error
 * it returns -EINVAL with err->message set. */
int kvfs_auth_secret_new(const struct kvfs_config *c, struct kvfs_http *h,
			 struct kvfs_auth_provider **ret,
			 struct kvfs_error *err);
int kvfs_auth_cert_new(const struct kvfs_config *c, struct kvfs_http *h,
		       struct kvfs_auth_provider **ret, struct kvfs_error *err);
int kvfs_auth_workload_new(const struct kvfs_config *c, struct kvfs_http *h,
			   struct kvfs_auth_provider **ret,
			   struct kvfs_error *err);
/* imds, appservice or arc, whichever kvfs_mi_detect() finds. */
int kvfs_auth_mi_new(const struct kvfs_config *c, struct kvfs_http *h,
		     struct kvfs_auth_provider **ret, struct kvfs_error *err);

/* ---- managed identity (mi.c) ---- */

enum kvfs_mi_source {
	KVFS_MI_IMDS,
	KVFS_MI_APPSERVICE,
	KVFS_MI_ARC,
};

/* The managed-identity host, in MSAL's order: IDENTITY_ENDPOINT with
 * IDENTITY_HEADER is App Service; IDENTITY_ENDPOINT with IMDS_ENDPOINT, or
 * an installed Arc agent, is Arc; anything else is the VM's IMDS.  The
 * arguments are the environment's values (NULL when unset). */
enum kvfs_mi_source kvfs_mi_detect(const char *identity_endpoint,
				   const char *identity_header,
				   const char *imds_endpoint, bool arc_agent);
const char *kvfs_mi_source_name(enum kvfs_mi_source s);

/* A managed-identity token response (IMDS, App Service, Arc): every number
 * may be a string; expires_in, or else expires_on (Unix seconds) - now. */
int kvfs_mi_parse_token(const char *json, size_t len, int64_t now,
			struct kvfs_token *ret);

/* Delay before retry number `attempt` (1, 2, ...) of an IMDS request, in
 * ms, when elapsed_ms have passed since the first attempt: 2, 4, 8, 16, 32
 * s, or retry_after_ms (the service's Retry-After) when longer, but never
 * past a total of KVFS_MI_RETRY_BUDGET_MS; -1 when the budget is spent. */
#define KVFS_MI_RETRY_BUDGET_MS 70000L
long kvfs_mi_retry_delay_ms(unsigned attempt, long elapsed_ms,
			    int64_t retry_after_ms);

/* Arc's 401 challenge "Basic realm=<path>": the path of the key file when
 * it ends in ".key", lies directly in dir and has no "..".  -EBADMSG for
 * a header that is no Basic realm, -EPERM for a path outside the rules. */
int kvfs_arc_realm_path(const char *www_authenticate, const char *dir,
			char **ret_path);
/* The directory the Arc agent writes its key files to.  The production
 * binary always returns /var/opt/azcmagent/tokens; the test binary
 * kvfs-testhooks replaces this (weak) function. */
const char *kvfs_arc_token_dir(void);

/* ---- client certificate (clientcert.c) ---- */

struct kvfs_clientcert; /* a private key and its certificate chain */

/* Parse a PEM (private key + certificates, leaf first or anywhere) or a
 * PKCS#12 blob.  password may be NULL (then NULL and "" are tried).  Only
 * RSA keys: Entra ID takes no EC assertion (-EOPNOTSUPP).  err->message
 * says what is wrong, never with any secret. */
int kvfs_clientcert_load(const char *data, size_t len, const char *password,
			 struct kvfs_clientcert **ret, struct kvfs_error *err);
void kvfs_clientcert_free(struct kvfs_clientcert *c);

/* The client assertion: header {alg, typ, x5t#S256 | x5t, [x5c]}, claims
 * {aud, iss, sub, jti, nbf, iat, exp = now + 600}, now in Unix seconds
 * (kvfs_wall_now()).  Malloc'ed; wipe it. */
int kvfs_clientcert_assertion(const struct kvfs_clientcert *c,
			      enum kvfs_assertion_alg alg, bool send_chain,
			      const char *client_id, const char *audience,
			      int64_t now, char **ret);

#endif
