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

void kvfs_log(int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
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
