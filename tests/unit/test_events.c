/* Unit tests of events.c: a reader's queue (whole lines, a line longer
 * than the read in pieces, the bound of KVFS_EVENTS_QUEUE_MAX lines, then
 * one overflow line, and nothing more until it is read), the JSON line of
 * an event, and the events of a cache over a scripted vault as the
 * daemon tells them (kernel.c's flush): added, rotated, removed, each
 * once, to the readers open before it, and expired from the clock with no
 * listing.  The vault is scripted_vault.c, swapped in at link time.  FUSE,
 * the blocking and poll() of a mount are tested by
 * tests/integration/test_events.py. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cache.h"
#include "defaults.h"
#include "events.h"
#include "kernel.h"
#include "scripted_vault.h"
#include "tap.h"
#include "util.h"

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
	ok(n == strlen(OVERFLOW) - 8 && memcmp(buf, &OVERFLOW[8], n) == 0,
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

/* ---- the events of a cache ---- */

static struct kvfs_cache *cache;
static struct kvfs_kernel *kernel;
static struct kvfs_events *events;
static int notified, dropped;

static void notify(void *ph)
{
	notified++;
}

static void drop(void *ph)
{
	dropped++;
}

static void tell(void *data, const struct kvfs_change *c, bool again)
{
	if (!again)
		kvfs_events_changed(data, c);
}

/* The vault is now certs: list it and tell the changes, as the daemon. */
static void vault_is(const struct fake_cert *certs, size_t n)
{
	struct kvfs_error err;

	set_vault(certs, n);
	kvfs_error_clear(&err);
	kvfs_cache_load(cache, &err);
	kvfs_kernel_flush(kernel, tell, events);
}

/* "change name version" of each line r has, "; "-separated. */
static void lines_of(struct kvfs_events_reader *r, char *out, size_t size)
{
	char buf[4096];
	ssize_t n = kvfs_events_read(events, r, buf, sizeof(buf) - 1, true,
				     NULL, NULL);
	char *line, *save = NULL;

	out[0] = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *v =
			json_string_value(json_object_get(o, "version"));
		size_t len = strlen(out);

		snprintf(out + len, size - len, "%s%s %s %s", len ? "; " : "",
			 json_string_value(json_object_get(o, "change")),
			 json_string_value(json_object_get(o, "name")),
			 v ? v : "-");
		json_decref(o);
	}
}

static void test_changes(void)
{
	struct fake_cert v1[] = {{"api", 1}, {"www", 1}};
	/* the scripted bundles have a version for "keyed..." only */
	struct fake_cert v2[] = {{"api", 1}, {"keyed-new", 1}, {"www", 2}};
	struct fake_cert v3[] = {{"keyed-new", 1}, {"www", 2}};
	struct kvfs_events_reader *a = NULL, *b = NULL;
	char text[512], buf[16];

	vault_is(v1, 2);
	is_int(kvfs_events_new(cache,
			       &(struct kvfs_events_ops){.notify = notify,
							 .drop = drop},
			       &events),
	       0, "events");
	is_int(kvfs_events_open(events, &a), 0, "a reader");
	is_int(kvfs_events_read(events, a, buf, sizeof(buf), true, NULL, NULL),
	       -EAGAIN, "nothing yet: EAGAIN");
	ok(!kvfs_events_poll(events, a, (void *)1), "not readable");
	vault_is(v1, 2);
	ok(!kvfs_events_poll(events, a, NULL), "no change, no event");

	vault_is(v2, 3);
	is_int(notified, 1, "the poll handle kept is notified");
	ok(kvfs_events_poll(events, a, NULL), "readable");
	lines_of(a, text, sizeof(text));
	is_str(text, "rotated www -; added keyed-new 1",
	       "the rotation and the new object, once each, with a version "
	       "when there is one");
	is_int(kvfs_events_open(events, &b), 0, "a second reader");
	vault_is(v3, 2);
	lines_of(a, text, sizeof(text));
	is_str(text, "removed api -", "the object gone");
	lines_of(b, text, sizeof(text));
	is_str(text, "removed api -",
	       "the second reader gets its own copy, and nothing from before");
	kvfs_events_close(events, b);
	kvfs_events_close(events, a);
	kvfs_events_free(events);
	events = NULL;
}

static void test_expired(void)
{
	struct fake_cert certs[] = {{"soon", 1}, {"past", 1}};
	struct kvfs_events_reader *r = NULL;
	char text[512];
	int lists;

	set_vault(certs, 2);
	pthread_mutex_lock(&fake_lock);
	vault_exp[0] = kvfs_wall_now() + 2;
	vault_exp[1] = kvfs_wall_now() - 10;
	pthread_mutex_unlock(&fake_lock);
	{
		struct kvfs_error err;

		kvfs_error_clear(&err);
		kvfs_cache_load(cache, &err);
		kvfs_kernel_flush(kernel, tell, NULL);
	}
	is_int(kvfs_events_new(cache,
			       &(struct kvfs_events_ops){.notify = notify,
							 .drop = drop},
			       &events),
	       0, "events");
	is_int(kvfs_events_start(events), 0, "the expiry thread");
	is_int(kvfs_events_open(events, &r), 0, "a reader");
	lists = list_count();
	{
		char buf[4096];
		/* waits for the line itself */
		ssize_t n = kvfs_events_read(events, r, buf, sizeof(buf) - 1,
					     false, NULL, NULL);
		json_t *o;

		ok(n > 0, "a read that waited got a line");
		buf[n > 0 ? n : 0] = '\0';
		o = json_loads(buf, 0, NULL);
		is_str(json_string_value(json_object_get(o, "change")),
		       "expired", "expired");
		is_str(json_string_value(json_object_get(o, "name")), "soon",
		       "the one whose exp passed now, not the one before");
		json_decref(o);
	}
	ok(kvfs_wall_now() >= vault_exp[0], "not before its exp");
	is_int(list_count(), lists, "no listing");
	lines_of(r, text, sizeof(text));
	is_str(text, "", "once");
	kvfs_events_stop(events);
	is_int(kvfs_events_read(events, r, text, sizeof(text), false, NULL,
				NULL),
	       0, "stopped: end of file");
	/* the reader is left open: freed with the events */
	kvfs_events_free(events);
	events = NULL;
}

int main(void)
{
	struct kvfs_config config = {
		.deadline = 1,
		.refresh = 300,
		.max_stale = 86400,
		.collections = 1u << KVFS_COLLECTION_CERTIFICATES};

	test_whole_lines();
	test_overflow();
	test_line();
	if (!ok(load_leaf(), "fixture pki-leaf.der"))
		return done_testing();
	is_int(kvfs_cache_new(&config, NULL, &cache), 0, "cache created");
	is_int(kvfs_kernel_new(&kernel), 0, "kernel module created");
	kvfs_cache_on_change(cache, kvfs_kernel_change, kernel);
	test_changes();
	test_expired();
	kvfs_kernel_free(kernel);
	kvfs_cache_free(cache);
	free_leaf();
	return done_testing();
}
