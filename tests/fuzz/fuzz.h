/* What every libFuzzer target shares: the entry point's prototype and a
 * NUL-terminated copy of the input for the parsers that take C strings.
 * Header only. */
#ifndef KVFS_FUZZ_H
#define KVFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'ed copy ending in NUL (an embedded NUL ends the string early,
 * as it would in a header or an argument). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
