/* Unit tests of log.c: one line per call with the "kvfs: " prefix, control
 * characters replaced, the level filter, and the rate limit of repeated
 * errors and warnings (identical lines dropped within the interval, the
 * count reported by the next one, other lines and debug lines untouched).
 * stderr is redirected to a temporary file and read back. */
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

int main(void)
{
	test_format();
	test_ratelimit();
	test_many_lines();
	return done_testing();
}
