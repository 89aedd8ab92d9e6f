/* Logging: one line per call to stderr ("kvfs: ..."), or to syslog once
 * switched on.  Lines above the level are dropped before formatting.  Control
 * characters in a message are replaced so that a remote string can never
 * forge a second log line.  Thread-safe: the level and target are atomics,
 * and each line reaches stderr in a single locked write. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define LOG_LINE_MAX 1024

static atomic_int log_level = KVFS_LOG_NOTICE;
static atomic_bool log_syslog;

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
	char line[LOG_LINE_MAX];
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

	if (atomic_load(&log_syslog)) {
		syslog(level, "%s", line);
	} else {
		flockfile(stderr);
		fputs("kvfs: ", stderr);
		fputs(line, stderr);
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

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

	now = monotonic_ms();
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
