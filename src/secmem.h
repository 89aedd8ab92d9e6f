/* Freed memory holds no secret: allocator hooks for the libraries that
 * copy tokens, client secrets, form bodies and keys into buffers of their
 * own (OpenSSL, libcurl, jansson), so that every buffer they free is
 * wiped first.  Process-wide; no state of its own beyond the hooks. */
#ifndef KVFS_SECMEM_H
#define KVFS_SECMEM_H

#include <stddef.h>

/* Install the wiping free into OpenSSL and jansson.  Call first thing in
 * main(), before anything allocates through OpenSSL (it refuses new
 * hooks afterwards); single-threaded.  -EBUSY when OpenSSL had already
 * allocated (its frees then are not wiped). */
int kvfs_secmem_init(void);

/* The hooks, also for curl_global_init_mem() (http.c): free and realloc
 * wipe the whole old block (malloc_usable_size) before releasing it. */
void kvfs_secmem_free(void *p);
void *kvfs_secmem_realloc(void *p, size_t n);

/* a + b + c (c may be NULL) in one malloc'ed block of the exact size,
 * for strings that hold a secret: asprintf() grows its buffer by copying
 * and leaves unwiped copies behind.  NULL on ENOMEM. */
char *kvfs_secmem_concat(const char *a, const char *b, const char *c);

#endif
