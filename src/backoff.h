/* The retry rules, as pure functions: which outcomes are worth another
 * attempt, how long to wait before it (exponential backoff with full
 * jitter, or what the server's Retry-After says), and the parsing of
 * Retry-After.  No clock, no randomness, no state: callers pass the time
 * and a random number in, so every schedule is reproducible in a test.
 * Shared by the vault's gate and by the managed-identity provider, each
 * with its own policy. */
#ifndef KVFS_BACKOFF_H
#define KVFS_BACKOFF_H

#include <stdint.h>

struct kvfs_backoff {
	uint32_t base_ms; /* ceiling of the first wait */
	uint32_t cap_ms;  /* no ceiling grows past this */
};

/* Key Vault: 1, 2, 4, 8, 16, 32 s, then 60 s (AZURE.md §3.4). */
#define KVFS_BACKOFF_VAULT ((struct kvfs_backoff){1000, 60000})

/* The ceiling of the wait after the n-th consecutive failure (n >= 1):
 * min(cap, base * 2^(n-1)); 0 for n == 0. */
uint32_t kvfs_backoff_ceiling_ms(const struct kvfs_backoff *b, unsigned n);

/* Full jitter: a wait drawn uniformly from [0, ceiling] with the random
 * number rnd, so that a fleet of mounts throttled at the same moment does
 * not come back at the same moment. */
uint32_t kvfs_backoff_delay_ms(const struct kvfs_backoff *b, unsigned n,
			       uint64_t rnd);

/* Retry-After (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date in any
 * of its three forms, read against now (Unix seconds, kvfs_wall_now()).
 * 0 with *ret_seconds on success
 * (a date in the past gives 0; anything above an hour is an hour);
 * -EINVAL for anything else, including an empty value. */
int kvfs_backoff_parse_retry_after(const char *value, int64_t now,
				   uint32_t *ret_seconds);

enum kvfs_verdict {
	/* It worked. */
	KVFS_VERDICT_OK,
	/* The server answered, and the answer is final (404, 403, a
	 * redirect, a body that parsed but made no sense): no retry, and
	 * the server is evidently up. */
	KVFS_VERDICT_FINAL,
	/* Failed before the server was asked or for a reason of our own
	 * (a token, TLS verification, memory): no retry, and nothing is
	 * learnt about the server. */
	KVFS_VERDICT_LOCAL,
	/* Throttled, a 5xx, a reset, a timeout, a body that was cut short,
	 * too long or not JSON: try again after a backoff. */
	KVFS_VERDICT_RETRY,
	/* The server answered about one object with an error worth another
	 * attempt that says nothing of its other objects (a 500, a body
	 * that is too long or not JSON): try again after a backoff of the
	 * caller's own; the origin is not failing for it. */
	KVFS_VERDICT_OBJECT,
};

/* The verdict on one attempt: r is its result (0 or -errno) and status the
 * HTTP status that came back (0 when none did).  401 is final here: the
 * one retry with a fresh token is the caller's business. */
enum kvfs_verdict kvfs_backoff_classify(int r, long status);

/* The same for a request about one object of an origin that serves many
 * (a vault's certificate, secret or list page): only what says the
 * origin itself is down stays RETRY (no answer, a reset, a timeout, 408,
 * 429, 502, 503, 504, a body cut short); the other 5xx, a body over the
 * cap and a 2xx body that is not JSON are OBJECT. */
enum kvfs_verdict kvfs_backoff_classify_object(int r, long status);

#endif
