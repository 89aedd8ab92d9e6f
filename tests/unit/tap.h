/* A tiny TAP producer for the unit tests: ok(), is_int(), is_str(),
 * done_testing().  Header only. */
#ifndef KVFS_TAP_H
#define KVFS_TAP_H

#include <stdarg.h>
#include <stdio.h>
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

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
