/* Small helpers shared by every module: scoped cleanup in the style of
 * systemd's alloc-util.h, ownership transfer, wiping of secrets, the
 * monotonic clock, a jitter generator and a string hash.
 * Header only; no state, no threads. */
#ifndef KVFS_UTIL_H
#define KVFS_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Milliseconds on CLOCK_MONOTONIC: the clock of every timeout, backoff and
 * deadline (a step of the wall clock moves none of them). */
static inline int64_t kvfs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a of s: hash tables and loop detection, never security.  fold:
 * ASCII letters hashed as lower case, for names compared without case. */
static inline uint64_t kvfs_fnv1a(const char *s, bool fold)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (fold && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 1099511628211ULL;
	}
	return h;
}

/* One step of xorshift64*: jitter for backoffs and timers, never secrets.
 * The state must not be 0. */
static inline uint64_t kvfs_xorshift(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ull;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Hand ownership out of a scoped variable. */
#define TAKE_PTR(p)                                                            \
	__extension__({                                                        \
		__typeof__(p) _p_ = (p);                                       \
		(p) = NULL;                                                    \
		_p_;                                                           \
	})

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Free a buffer that held key material or a token: wipe, then free. */
static inline void kvfs_secure_free(void *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

/* The same for a NUL-terminated secret string. */
static inline void kvfs_secure_free_str(char *s)
{
	if (s)
		kvfs_secure_free(s, strlen(s));
}

static inline void kvfs_secure_free_strp(char **s)
{
	kvfs_secure_free_str(*s);
}
#define _cleanup_secret_ _cleanup_(kvfs_secure_free_strp)

#endif
