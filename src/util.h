/* Small helpers shared by every module: scoped cleanup in the style of
 * systemd's alloc-util.h, ownership transfer, and wiping of secrets.
 * Header only; no state, no threads. */
#ifndef KVFS_UTIL_H
#define KVFS_UTIL_H

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

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
