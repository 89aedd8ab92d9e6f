/* Logging: levels, target (stderr in the foreground, syslog once
 * daemonized), rate limits of repeated errors and warnings.  Thread-safe.
 * Callers must never pass a token or secret. */
#ifndef KVFS_LOG_H
#define KVFS_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum kvfs_log_level {
	KVFS_LOG_ERR = 3,
	KVFS_LOG_WARNING = 4,
	KVFS_LOG_NOTICE = 5,
	KVFS_LOG_INFO = 6,
	KVFS_LOG_DEBUG = 7,
};

/* The longest line written; longer ones are cut. */
#define KVFS_LOG_LINE_MAX 1024

void kvfs_log_set_level(int level);
void kvfs_log_use_syslog(bool on);
/* An error or warning identical to one written less than interval_ms ago
 * is dropped and counted; 0 turns the limit off.  Default 30 s. */
void kvfs_log_set_ratelimit(unsigned interval_ms);
/* "err", "warning", "notice", "info", "debug" -> level, or -EINVAL */
int kvfs_log_parse_level(const char *s);

void kvfs_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) kvfs_log(KVFS_LOG_ERR, __VA_ARGS__)
#define log_warning(...) kvfs_log(KVFS_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) kvfs_log(KVFS_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) kvfs_log(KVFS_LOG_INFO, __VA_ARGS__)
#define log_debug(...) kvfs_log(KVFS_LOG_DEBUG, __VA_ARGS__)

/* Rate limiting for lines that a flood of requests could repeat (a vault
 * outage, a client retrying in a loop): at most burst lines per interval
 * from one call site; the first line let through after some were dropped
 * says how many. */
struct kvfs_ratelimit {
	pthread_mutex_t lock;
	unsigned interval_s, burst;
	int64_t begin_ms; /* start of the current interval */
	unsigned n;	  /* lines in it */
	unsigned long suppressed;
};

#define KVFS_RATELIMIT_INIT(interval, n)                                       \
	{                                                                      \
		PTHREAD_MUTEX_INITIALIZER, (interval), (n), 0, 0, 0            \
	}

void kvfs_log_ratelimited(struct kvfs_ratelimit *rl, int level, const char *fmt,
			  ...) __attribute__((format(printf, 3, 4)));

/* Ten lines a minute per call site. */
#define log_warning_ratelimited(...)                                           \
	do {                                                                   \
		static struct kvfs_ratelimit rl_ =                             \
			KVFS_RATELIMIT_INIT(60, 10);                           \
		kvfs_log_ratelimited(&rl_, KVFS_LOG_WARNING, __VA_ARGS__);     \
	} while (0)

/* A line composed while a lock is held and written once it is released,
 * so that a slow syslog never holds up the lock's other users.  One line
 * a struct: a second kvfs_log_defer() replaces the first.  rl: the
 * call site's rate limit (as log_warning_ratelimited), or NULL.  Zero it
 * to start empty; a line above the level is never composed. */
struct kvfs_log_deferred {
	int level;
	struct kvfs_ratelimit *rl;
	char text[KVFS_LOG_LINE_MAX];
};

void kvfs_log_defer(struct kvfs_log_deferred *d, struct kvfs_ratelimit *rl,
		    int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Write the line, if any, and empty d. */
void kvfs_log_flush(struct kvfs_log_deferred *d);

#define log_defer_warning_ratelimited(d, ...)                                  \
	do {                                                                   \
		static struct kvfs_ratelimit rl_ =                             \
			KVFS_RATELIMIT_INIT(60, 10);                           \
		kvfs_log_defer((d), &rl_, KVFS_LOG_WARNING, __VA_ARGS__);      \
	} while (0)

#endif
