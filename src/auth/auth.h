/* Tokens for the vault: one token cache per mount in front of exactly one
 * credential provider (secret, cert, workload, imds).  The cache hands out
 * copies of the current token, refreshes it (single-flight) before it
 * expires, and drops it when the vault answers 401.  Knows nothing of FUSE
 * or certificates.  Thread-safe; no lock is held across a network call. */
#ifndef KVFS_AUTH_H
#define KVFS_AUTH_H

#include <stdint.h>

#include "../config.h"
#include "../error.h"
#include "../http.h"

struct kvfs_auth;

/* Where the token is for.  tenant and resource may be filled later from
 * the vault's 401 challenge (kvfs_auth_set_challenge). */
int kvfs_auth_new(const struct kvfs_config *c, struct kvfs_http *h,
		  struct kvfs_auth **ret);
void kvfs_auth_free(struct kvfs_auth *a);

/* True when the tenant and resource are known, so a token can be asked for
 * without first sending an unauthenticated request to the vault. */
bool kvfs_auth_ready(struct kvfs_auth *a);

/* Feed a WWW-Authenticate challenge from the vault at vault_url.  Checks
 * that the challenge's resource matches the vault's domain or equals an
 * explicit resource=; -EPERM otherwise (no token will ever be sent). */
int kvfs_auth_set_challenge(struct kvfs_auth *a, const char *vault_url,
			    const char *www_authenticate,
			    struct kvfs_error *err);

/* A copy of a valid bearer token (malloc'ed; free with
 * kvfs_secure_free_str), by deadline_ms (kvfs_now_ms() time).  Fetches
 * one when there is none or it expired, but every fetch, whoever starts
 * it, is single-flight and obeys one backoff: after a failure no request
 * goes out before the retry delay (1, 2, 4 ... 30 s).  A caller waits for
 * a fetch in flight or for the end of that delay only while its deadline
 * allows; otherwise it fails at once with the last failure's error.  A
 * transient failure (a timeout,
 * 429, 5xx) is retried within the deadline; a final one (a wrong secret)
 * is returned at once. */
int kvfs_auth_get_token(struct kvfs_auth *a, int64_t deadline_ms,
			char **ret_token, struct kvfs_error *err);

/* The vault said 401 to this token: forget it if it is still current. */
void kvfs_auth_invalidate(struct kvfs_auth *a, const char *token);

/* "secret", "cert", "workload", "imds", "appservice", "arc" */
const char *kvfs_auth_provider_name(struct kvfs_auth *a);
/* Why this provider: "auth=cert", or auto's reason ("cert_file= is set"). */
const char *kvfs_auth_provider_reason(struct kvfs_auth *a);
/* Unix seconds (kvfs_wall_now()); 0 when there is no token / none fetched
 * yet. */
int64_t kvfs_auth_expires_at(struct kvfs_auth *a);
int64_t kvfs_auth_last_refresh(struct kvfs_auth *a);

/* The background refresher: a thread that renews the token before it
 * expires, so that no reader waits for it.  Start it in the process that
 * serves the mount (after fuse_daemonize: threads do not survive a fork);
 * until then get_token() refreshes in the foreground.  Stop joins it, and
 * cuts short any retry sleep; both may be called more than once. */
int kvfs_auth_start_refresher(struct kvfs_auth *a);
void kvfs_auth_stop_refresher(struct kvfs_auth *a);

/* auth=auto: workload -> cert -> secret -> imds, the first configured.
 * *ret_reason is a static string saying why. */
enum kvfs_auth_kind kvfs_auth_pick(const struct kvfs_config *c,
				   const char **ret_reason);

/* Token lifetimes as the cache uses them, exposed for unit tests.  A
 * lifetime <= 0 or over a day is clamped to [KVFS_AUTH_MIN_LIFETIME,
 * KVFS_AUTH_MAX_LIFETIME].  The refresh comes 5 minutes before expiry, or
 * half-way when that is sooner (short test tokens), or half-way for a
 * managed-identity token of 2 h or more, or at refresh_in when sooner. */
#define KVFS_AUTH_MIN_LIFETIME 60L
#define KVFS_AUTH_MAX_LIFETIME 86400L
long kvfs_auth_clamp_lifetime(long lifetime_s);
long kvfs_auth_refresh_after_ms(long lifetime_s, long refresh_in_s,
				bool managed);
/* Delay before retry number `attempt` (1, 2, ...) after a failed fetch:
 * 1, 2, 4, ... 30 s, and while a token is still usable for remaining_ms
 * (> 0), at most half of that (never under 250 ms). */
long kvfs_auth_retry_delay_ms(unsigned attempt, long remaining_ms);

/* Parse a Bearer challenge: authorization=/authorization_uri= and
 * resource=/scope=.  Exposed for unit tests and fuzzers. */
int kvfs_auth_parse_challenge(const char *header, char **ret_tenant,
			      char **ret_resource);

#endif
