/* A tiny TAP producer for the unit tests: ok(), is_int(), is_str(),
 * done_testing().  Header only. */
#ifndef KVFS_TAP_H
#define KVFS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n;
static int tap_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *fmt,
			 ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                 \
	do {                                                                   \
		long long _g = (got), _w = (want);                             \
		if (!ok(_g == _w, __VA_ARGS__))                                \
			printf("#   got %lld, want %lld\n", _g, _w);           \
	} while (0)

#define is_str(got, want, ...)                                                 \
	do {                                                                   \
		const char *_g = (got), *_w = (want);                          \
		if (!ok(_g && _w && strcmp(_g, _w) == 0, __VA_ARGS__))         \
			printf("#   got '%s', want '%s'\n",                    \
			       _g ? _g : "(null)", _w ? _w : "(null)");        \
	} while (0)

/* A fixture file (tests/data/ is the working directory), NUL-terminated;
 * NULL when it cannot be read. */
static inline char *tap_slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*ret_len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
