/* Unit tests of log.c: one line per call with the "kvfs: " prefix, control
 * characters replaced, the level filter, and the rate limit of repeated
 * errors and warnings (identical lines dropped within the interval, the
 * count reported by the next one, other lines and debug lines untouched).
 * Also the per-call-site limiter (kvfs_log_ratelimited): a burst passes,
 * the rest is dropped, and the first line after the interval says how many
 * were.  A deferred line is written only when flushed, once, with its
 * call site's limit, and not composed above the level.  stderr is
 * redirected to a temporary file and read back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"
#include "util.h"

static FILE *capture;
static int saved_stderr = -1;

static void capture_start(void)
{
	fflush(stderr);
	capture = tmpfile();
	saved_stderr = dup(STDERR_FILENO);
	dup2(fileno(capture), STDERR_FILENO);
}

/* Everything written since capture_start(); the caller frees it. */
static char *capture_end(void)
{
	char *buf;
	long n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = ftell(capture);
	if (n < 0)
		n = lseek(fileno(capture), 0, SEEK_END);
	rewind(capture);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, capture) != (size_t)n)
		buf[0] = '\0';
	fclose(capture);
	return buf;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void test_format(void)
{
	_cleanup_free_ char *out = NULL;

	kvfs_log_set_ratelimit(0);
	kvfs_log_set_level(KVFS_LOG_NOTICE);
	capture_start();
	log_notice("mounted '%s'", "v");
	log_info("not shown at notice");
	log_error("two\nlines");
	out = capture_end();
	is_str(out, "kvfs: mounted 'v'\nkvfs: two?lines\n",
	       "prefix, level filter, controls replaced");
}

static void test_ratelimit(void)
{
	_cleanup_free_ char *out = NULL, *later = NULL, *off = NULL;

	kvfs_log_set_level(KVFS_LOG_DEBUG);
	kvfs_log_set_ratelimit(300);
	capture_start();
	for (int i = 0; i < 5; i++)
		log_error("cannot list certificates of 'v': 503");
	log_warning("cannot list certificates of 'w': 503");
	for (int i = 0; i < 3; i++)
		log_debug("GET /certificates 503");
	out = capture_end();
	is_int(count(out, "of 'v': 503"), 1,
	       "an identical error is written once within the interval");
	is_int(count(out, "of 'w': 503"), 1, "a different line is written");
	is_int(count(out, "GET /certificates 503"), 3,
	       "debug lines are never limited");
	is_int(count(out, "suppressed"), 0, "nothing reported yet");

	sleep_ms(350);
	capture_start();
	log_error("cannot list certificates of 'v': 503");
	log_error("cannot list certificates of 'v': 503");
	later = capture_end();
	is_str(later,
	       "kvfs: cannot list certificates of 'v': 503 (4 identical "
	       "messages suppressed)\n",
	       "after the interval the line comes back with the count");

	kvfs_log_set_ratelimit(0);
	capture_start();
	for (int i = 0; i < 4; i++)
		log_error("same");
	off = capture_end();
	is_int(count(off, "kvfs: same\n"), 4, "interval 0 turns the limit off");
}

static void test_many_lines(void)
{
	_cleanup_free_ char *out = NULL;

	/* More distinct lines than the table holds: none may be lost. */
	kvfs_log_set_ratelimit(60000);
	capture_start();
	for (int i = 0; i < 40; i++)
		log_error("error %d", i);
	out = capture_end();
	is_int(count(out, "kvfs: error "), 40,
	       "40 distinct errors are all written");
	kvfs_log_set_ratelimit(0);
}

static void test_call_site_ratelimit(void)
{
	struct kvfs_ratelimit rl = KVFS_RATELIMIT_INIT(1, 3);
	char line[512];
	int lines = 0, saved = dup(2);
	FILE *out = tmpfile();

	if (!out || saved < 0)
		abort();
	kvfs_log_set_level(KVFS_LOG_NOTICE);
	fflush(stderr);
	dup2(fileno(out), 2);
	for (int i = 0; i < 10; i++)
		kvfs_log_ratelimited(&rl, KVFS_LOG_WARNING, "flood %d", i);
	kvfs_log_ratelimited(&rl, KVFS_LOG_DEBUG, "below the level");
	usleep(1100000);
	kvfs_log_ratelimited(&rl, KVFS_LOG_WARNING, "after the interval");
	fflush(stderr);
	dup2(saved, 2);

	rewind(out);
	while (fgets(line, sizeof(line), out)) {
		lines++;
		if (lines <= 3)
			ok(strncmp(line, "kvfs: flood ", 12) == 0,
			   "line %d of the burst passes", lines);
		if (lines == 4) {
			ok(strstr(line, "after the interval") != NULL,
			   "the next interval lets a line through");
			ok(strstr(line, "(7 similar lines suppressed)") != NULL,
			   "and it counts the dropped ones: %s", line);
		}
	}
	is_int(lines, 4, "three of the flood and one after");
	fclose(out);
}

static void test_deferred(void)
{
	struct kvfs_ratelimit rl = KVFS_RATELIMIT_INIT(60, 1);
	struct kvfs_log_deferred d = {0};
	_cleanup_free_ char *out = NULL, *none = NULL;

	kvfs_log_set_ratelimit(0);
	kvfs_log_set_level(KVFS_LOG_NOTICE);
	capture_start();
	kvfs_log_defer(&d, NULL, KVFS_LOG_NOTICE, "vault '%s' is back", "v");
	ok(d.text[0] != '\0', "a deferred line is composed");
	fflush(stderr);
	is_int(ftell(capture), 0, "but not written");
	kvfs_log_flush(&d);
	kvfs_log_flush(&d);
	kvfs_log_defer(&d, NULL, KVFS_LOG_INFO, "below the level");
	ok(d.text[0] == '\0', "a line below the level is not composed");
	kvfs_log_flush(&d);
	for (int i = 0; i < 3; i++) {
		kvfs_log_defer(&d, &rl, KVFS_LOG_WARNING, "stale %d", i);
		kvfs_log_flush(&d);
	}
	out = capture_end();
	is_str(out, "kvfs: vault 'v' is back\nkvfs: stale 0\n",
	       "written once when flushed; the call site's limit holds");

	capture_start();
	d = (struct kvfs_log_deferred){0};
	kvfs_log_flush(&d);
	none = capture_end();
	is_str(none, "", "an empty one writes nothing");
}

int main(void)
{
	test_format();
	test_ratelimit();
	test_many_lines();
	test_call_site_ratelimit();
	test_deferred();
	return done_testing();
}
