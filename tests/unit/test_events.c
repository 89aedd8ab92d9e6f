/* Unit tests of the pure parts of events.c: a reader's queue (whole
 * lines, a line longer than the read in pieces, the bound of
 * KVFS_EVENTS_QUEUE_MAX lines, then one overflow line, and nothing more
 * until it is read) and the JSON line of an event.  The readers, the
 * blocking and the events of a mount are tested by
 * tests/integration/test_events.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "defaults.h"
#include "events.h"
#include "tap.h"

#define OVERFLOW "{\"change\": \"overflow\"}\n"

static void test_whole_lines(void)
{
	struct kvfs_events_queue q = {0};
	char buf[64];
	size_t n;

	is_int(kvfs_events_queue_take(&q, buf, sizeof(buf)), 0, "empty");
	ok(kvfs_events_queue_push(&q, "one\n", OVERFLOW) == 0, "push");
	ok(kvfs_events_queue_push(&q, "two\n", OVERFLOW) == 0, "push");
	ok(kvfs_events_queue_push(&q, "three\n", OVERFLOW) == 0, "push");
	n = kvfs_events_queue_take(&q, buf, 9);
	ok(n == 8 && memcmp(buf, "one\ntwo\n", 8) == 0,
	   "only the whole lines that fit");
	n = kvfs_events_queue_take(&q, buf, 4);
	ok(n == 4 && memcmp(buf, "thre", 4) == 0,
	   "a line longer than the read: as much as fits");
	n = kvfs_events_queue_take(&q, buf, sizeof(buf));
	ok(n == 2 && memcmp(buf, "e\n", 2) == 0, "then the rest of it");
	is_int(q.n, 0, "taken");
	is_int(kvfs_events_queue_take(&q, buf, sizeof(buf)), 0, "empty again");
	kvfs_events_queue_clear(&q);
}

static void test_overflow(void)
{
	struct kvfs_events_queue q = {0};
	char line[32], buf[64];
	int over = 0;
	size_t n, lines = 0;

	for (int i = 0; i < KVFS_EVENTS_QUEUE_MAX + 100; i++) {
		snprintf(line, sizeof(line), "%d\n", i);
		over += kvfs_events_queue_push(&q, line, OVERFLOW) == 1;
	}
	is_int(over, 1, "the queue overflows once");
	is_int(q.n, KVFS_EVENTS_QUEUE_MAX + 1, "its lines and the overflow");
	ok(kvfs_events_queue_push(&q, "late\n", OVERFLOW) == 0 &&
		   q.n == KVFS_EVENTS_QUEUE_MAX + 1,
	   "nothing more is queued");
	/* one line a read: a read the size of the line takes it alone */
	for (; lines < KVFS_EVENTS_QUEUE_MAX; lines++) {
		snprintf(line, sizeof(line), "%zu\n", lines);
		n = kvfs_events_queue_take(&q, buf, strlen(line));
		if (n != strlen(line) || memcmp(buf, line, n) != 0)
			break;
	}
	is_int(lines, KVFS_EVENTS_QUEUE_MAX, "the first lines, in order");
	n = kvfs_events_queue_take(&q, buf, 8);
	ok(n == 8 && memcmp(buf, OVERFLOW, 8) == 0, "then the overflow line");
	n = kvfs_events_queue_take(&q, buf, sizeof(buf));
	ok(n == strlen(OVERFLOW) - 8 && memcmp(buf, OVERFLOW + 8, n) == 0,
	   "to its end");
	ok(!q.overflowed && q.n == 0, "read: the reader starts afresh");
	ok(kvfs_events_queue_push(&q, "again\n", OVERFLOW) == 0 && q.n == 1,
	   "and gets what comes after");
	kvfs_events_queue_clear(&q);
	ok(q.n == 0 && q.lines == NULL, "cleared");
}

static void test_line(void)
{
	char *s = kvfs_events_line(1796083200, "certificates", "www", "rotated",
				   "0123abcd");
	json_t *o;

	is_str(s,
	       "{\"time\": \"2026-12-01T00:00:00Z\", \"collection\": "
	       "\"certificates\", \"name\": \"www\", \"change\": \"rotated\", "
	       "\"version\": \"0123abcd\"}\n",
	       "the line of an event");
	free(s);
	s = kvfs_events_line(1796083200, "secrets", "a\"b", "removed", NULL);
	o = json_loads(s, 0, NULL);
	ok(o && strcmp(json_string_value(json_object_get(o, "name")), "a\"b") ==
			   0,
	   "a name is escaped");
	ok(o && !json_object_get(o, "version"), "no version: left out");
	ok(s && strchr(s, '\n') == s + strlen(s) - 1, "one line");
	json_decref(o);
	free(s);
	s = kvfs_events_line(1796083200, NULL, NULL, "overflow", NULL);
	is_str(s,
	       "{\"time\": \"2026-12-01T00:00:00Z\", \"change\": "
	       "\"overflow\"}\n",
	       "the overflow line");
	free(s);
}

int main(void)
{
	test_whole_lines();
	test_overflow();
	test_line();
	return done_testing();
}
