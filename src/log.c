/* Logging: one line per call to stderr ("kvfs: ..."), or to syslog once
 * switched on.  Lines above the level are dropped before formatting.  Control
 * characters in a message are replaced so that a remote string can never
 * forge a second log line.  Errors and warnings are rate-limited: the same
 * line is written at most once per interval (30 s by default), and the next
 * one that gets through says how many were suppressed, so a vault that keeps
 * failing cannot flood the journal.  Thread-safe: the level, target and
 * interval are atomics, the rate-limit table has its own short lock, and
 * each line reaches stderr in a single locked write. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <stdint.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define LOG_LINE_MAX 1024

#define RATELIMIT_SLOTS 16
#define RATELIMIT_DEFAULT_MS 30000

static atomic_int log_level = KVFS_LOG_NOTICE;
static atomic_bool log_syslog;
static atomic_uint ratelimit_ms = RATELIMIT_DEFAULT_MS;

/* The last few distinct lines that were limited, least recently written
 * first to go. */
struct ratelimit_slot {
	uint64_t hash;
	uint64_t last_ms; /* CLOCK_MONOTONIC; 0: empty */
	unsigned suppressed;
};

static pthread_mutex_t ratelimit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ratelimit_slot ratelimit_slots[RATELIMIT_SLOTS];

static const struct {
	const char *name;
	int level;
} level_names[] = {
	{"err", KVFS_LOG_ERR},	       {"error", KVFS_LOG_ERR},
	{"warning", KVFS_LOG_WARNING}, {"warn", KVFS_LOG_WARNING},
	{"notice", KVFS_LOG_NOTICE},   {"info", KVFS_LOG_INFO},
	{"debug", KVFS_LOG_DEBUG},
};

void kvfs_log_set_level(int level)
{
	if (level < KVFS_LOG_ERR)
		level = KVFS_LOG_ERR;
	if (level > KVFS_LOG_DEBUG)
		level = KVFS_LOG_DEBUG;
	atomic_store(&log_level, level);
}

int kvfs_log_get_level(void)
{
	return atomic_load(&log_level);
}

void kvfs_log_use_syslog(bool on)
{
	if (on && !atomic_load(&log_syslog))
		openlog("kvfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && atomic_load(&log_syslog))
		closelog();
	atomic_store(&log_syslog, on);
}

void kvfs_log_set_ratelimit(unsigned interval_ms)
{
	atomic_store(&ratelimit_ms, interval_ms);
	pthread_mutex_lock(&ratelimit_lock);
	memset(ratelimit_slots, 0, sizeof(ratelimit_slots));
	pthread_mutex_unlock(&ratelimit_lock);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* + 1: 0 marks an empty slot. */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Returns false when the line is to be dropped; otherwise how many copies
 * of it were dropped since it was last written. */
static bool ratelimit_pass(const char *line, unsigned *ret_suppressed)
{
	unsigned interval = atomic_load(&ratelimit_ms);
	struct ratelimit_slot *slot = NULL;
	uint64_t h, now;
	bool pass = true;

	*ret_suppressed = 0;
	if (interval == 0)
		return true;
	h = fnv1a(line);
	now = now_ms();

	pthread_mutex_lock(&ratelimit_lock);
	for (size_t i = 0; i < RATELIMIT_SLOTS; i++) {
		struct ratelimit_slot *s = &ratelimit_slots[i];

		if (s->last_ms && s->hash == h) {
			slot = s;
			break;
		}
		if (!slot || s->last_ms < slot->last_ms)
			slot = s;
	}
	if (slot->last_ms && slot->hash == h &&
	    now - slot->last_ms < interval) {
		slot->suppressed++;
		pass = false;
	} else {
		if (slot->hash == h)
			*ret_suppressed = slot->suppressed;
		slot->hash = h;
		slot->last_ms = now;
		slot->suppressed = 0;
	}
	pthread_mutex_unlock(&ratelimit_lock);
	return pass;
}

int kvfs_log_parse_level(const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
		if (strcasecmp(s, level_names[i].name) == 0)
			return level_names[i].level;
	return -EINVAL;
}

void kvfs_log(int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	unsigned suppressed = 0;
	int saved_errno = errno;
	va_list ap;
	int n;

	if (level > atomic_load(&log_level))
		return;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = saved_errno;
		return;
	}

	/* One line per call: newlines and other controls become '?'. */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			*p = '?';
		else if (*p == 0x7f)
			*p = '?';

	if (level <= KVFS_LOG_WARNING && !ratelimit_pass(line, &suppressed)) {
		errno = saved_errno;
		return;
	}

	if (atomic_load(&log_syslog)) {
		if (suppressed)
			syslog(level, "%s (%u identical messages suppressed)",
			       line, suppressed);
		else
			syslog(level, "%s", line);
	} else {
		flockfile(stderr);
		fputs("kvfs: ", stderr);
		fputs(line, stderr);
		if (suppressed)
			fprintf(stderr, " (%u identical messages suppressed)",
				suppressed);
		fputc('\n', stderr);
		fflush(stderr);
		funlockfile(stderr);
	}
	errno = saved_errno;
}
