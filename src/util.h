/* Small helpers shared by every module: scoped cleanup in the style of
 * systemd's alloc-util.h, ownership transfer, growable arrays, wiping of
 * secrets, the monotonic clock and condition variables that wait on it, a
 * jitter generator and its seed, and a string hash.
 * Header only; no state of its own; every helper is safe in any thread. */
#ifndef KVFS_UTIL_H
#define KVFS_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
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

/* Unix seconds on CLOCK_REALTIME: the clock of the vault's attributes
 * (nbf, exp, created, updated), of file times and of what .kvfs/ shows.
 * The two clocks are the only ones: a time is either kvfs_now_ms() (int64_t
 * ms, for waiting) or kvfs_wall_now() (int64_t s, for dates); durations the
 * user gives in seconds are converted where they are used. */
static inline int64_t kvfs_wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* A kvfs_now_ms() time as the deadline of pthread_cond_timedwait() on a
 * condition variable of kvfs_cond_init_monotonic(). */
static inline struct timespec kvfs_ms_to_timespec(int64_t ms)
{
	return (struct timespec){.tv_sec = (time_t)(ms / 1000),
				 .tv_nsec = (long)(ms % 1000) * 1000000};
}

/* A condition variable whose timed waits run on CLOCK_MONOTONIC, so that
 * a step of the wall clock makes no waiter wait longer.  0 or -errno. */
static inline int kvfs_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int r;

	r = pthread_condattr_init(&ca);
	if (r != 0)
		return -r;
	r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return -r;
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

/* A seed for kvfs_xorshift(), never 0: from getrandom(), so that the
 * mounts of a fleet draw different jitter; when the kernel's pool cannot
 * answer yet, from the monotonic clock in ns, the pid and the address of a
 * local (ASLR), which differ between processes and boots.  The seed needs
 * no secrecy: it only spreads retries in time, and guessing it gains
 * nothing.  Never the wall clock, which a fleet booted together shares. */
static inline uint64_t kvfs_xorshift_seed(void)
{
	struct timespec ts;
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(seed)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = ((uint64_t)ts.tv_sec * 1000000000u +
			(uint64_t)ts.tv_nsec) ^
		       ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&ts;
	}
	return seed ? seed : 0x9e3779b97f4a7c15ull;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* funcp(type *p) calling func(*p) when *p is set: a scoped cleanup for a
 * library's free function (_cleanup_(BIO_freep) BIO *b = NULL). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                \
	static inline void func##p(type *p)                                    \
	{                                                                      \
		if (*p)                                                        \
			func(*p);                                              \
	}

/* Hand ownership out of a scoped variable. */
#define TAKE_PTR(p)                                                            \
	__extension__({                                                        \
		__typeof__(p) _p_ = (p);                                       \
		(p) = NULL;                                                    \
		_p_;                                                           \
	})

/* The same for a struct that owns what it points to: its value, and the
 * struct left zeroed for its own cleanup to find nothing. */
#define TAKE_STRUCT(s)                                                         \
	__extension__({                                                        \
		__typeof__(s) _s_ = (s);                                       \
		memset(&(s), 0, sizeof(s));                                    \
		_s_;                                                           \
	})

/* Room for one more element in array p, n of its *alloc elements of size
 * bytes in use: when full, it doubles (from 16).  Returns the array, maybe
 * moved, or NULL when memory runs out (the old array intact). */
static inline void *kvfs_grow(void *p, size_t n, size_t *alloc, size_t size)
{
	size_t na;
	void *np;

	if (n < *alloc)
		return p;
	na = *alloc ? *alloc * 2 : 16;
	if (na < *alloc || na > SIZE_MAX / size)
		return NULL;
	np = realloc(p, na * size);
	if (np)
		*alloc = na;
	return np;
}

/* kvfs_grow() on a typed array: 0, or -ENOMEM with the array intact. */
#define KVFS_GROW(p, n, alloc)                                                 \
	__extension__({                                                        \
		__typeof__(p) _g_ =                                            \
			kvfs_grow((p), (n), &(alloc), sizeof(*(p)));           \
		if (_g_)                                                       \
			(p) = _g_;                                             \
		_g_ ? 0 : -ENOMEM;                                             \
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
