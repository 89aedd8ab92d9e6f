/* Logging: one line per call to stderr ("kvfs: ..."), or to syslog once
 * switched on.  Lines above the level are dropped before formatting.  Control
 * characters in a message are replaced so that a remote string can never
 * forge a second log line.  Errors and warnings are rate-limited: the same
 * line is written at most once per interval (30 s by default), and the next
 * one that gets through says how many were suppressed, so a vault that keeps
 * failing cannot flood the journal.  Thread-safe: the level, target and
 * interval are atomics, the rate-limit table has its own short lock, and
 * each line reaches stderr in a single locked write.  A deferred line is
 * composed under a caller's lock and written after it is released. */
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

/* + 1: 0 marks an empty slot. */
static uint64_t now_ms(void)
{
	return (uint64_t)kvfs_now_ms() + 1;
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
	h = kvfs_fnv1a(line, false);
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

static void log_line(int level, const char *suffix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_line(int level, const char *suffix, const char *fmt, va_list ap)
{
	char line[KVFS_LOG_LINE_MAX];
	unsigned suppressed = 0;
	int saved_errno = errno;
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0) {
		errno = saved_errno;
		return;
	}
	if (suffix && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, "%s", suffix);

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

void kvfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > atomic_load(&log_level))
		return;
	va_start(ap, fmt);
	log_line(level, NULL, fmt, ap);
	va_end(ap);
}

void kvfs_log_ratelimited(struct kvfs_ratelimit *rl, int level, const char *fmt,
			  ...)
{
	char suffix[64] = "";
	unsigned long dropped = 0;
	int64_t now;
	bool pass;
	va_list ap;

	if (level > atomic_load(&log_level))
		return;

	now = (int64_t)now_ms();
	pthread_mutex_lock(&rl->lock);
	if (rl->n == 0 ||
	    now - rl->begin_ms >= (int64_t)rl->interval_s * 1000) {
		rl->begin_ms = now;
		rl->n = 0;
	}
	pass = rl->n < rl->burst;
	if (pass) {
		rl->n++;
		dropped = rl->suppressed;
		rl->suppressed = 0;
	} else {
		rl->suppressed++;
	}
	pthread_mutex_unlock(&rl->lock);
	if (!pass)
		return;

	if (dropped)
		snprintf(suffix, sizeof(suffix),
			 " (%lu similar lines suppressed)", dropped);
	va_start(ap, fmt);
	log_line(level, suffix, fmt, ap);
	va_end(ap);
}

void kvfs_log_defer(struct kvfs_log_deferred *d, struct kvfs_ratelimit *rl,
		    int level, const char *fmt, ...)
{
	va_list ap;

	d->text[0] = '\0';
	if (level > atomic_load(&log_level))
		return;
	d->level = level;
	d->rl = rl;
	va_start(ap, fmt);
	vsnprintf(d->text, sizeof(d->text), fmt, ap);
	va_end(ap);
}

void kvfs_log_flush(struct kvfs_log_deferred *d)
{
	if (!d->text[0])
		return;
	if (d->rl)
		kvfs_log_ratelimited(d->rl, d->level, "%s", d->text);
	else
		kvfs_log(d->level, "%s", d->text);
	d->text[0] = '\0';
}
