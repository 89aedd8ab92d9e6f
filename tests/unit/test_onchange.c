/* Unit tests of the pure parts of onchange.c: the changed paths (sorted,
 * unique, space-separated; the collection directories past the bounds),
 * the debounce (changes within the delay of the first share one run; a
 * change after a run starts a new window) and the output excerpt (its
 * bound, the count of what was dropped, its escapes, whole escapes only).
 * The runner itself is tested by tests/integration/test_on_change.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onchange.h"
#include "tap.h"

static void test_changes_string(void)
{
	struct kvfs_onchange_set s = {0};
	char *str = NULL;

	ok(kvfs_onchange_set_string(&s, &str) == 0, "empty set");
	is_str(str, "", "no paths");
	free(str);

	kvfs_onchange_set_add(&s, KVFS_COLLECTION_SECRETS, "db");
	kvfs_onchange_set_add(&s, KVFS_COLLECTION_CERTIFICATES, "www");
	kvfs_onchange_set_add(&s, KVFS_COLLECTION_SECRETS, "db");
	kvfs_onchange_set_add(&s, KVFS_COLLECTION_CERTIFICATES, "api");
	is_int(s.n, 3, "a path changed twice is kept once");
	ok(kvfs_onchange_set_string(&s, &str) == 0, "string");
	is_str(str, "certificates/api certificates/www secrets/db",
	       "sorted, unique, space-separated");
	free(str);

	kvfs_onchange_set_add(&s, KVFS_COLLECTION_KEYS, NULL);
	kvfs_onchange_set_add(&s, KVFS_COLLECTION_CERTIFICATES, NULL);
	ok(kvfs_onchange_set_string(&s, &str) == 0, "string");
	is_str(str, "certificates/api certificates/www keys secrets/db",
	       "a listing change names the collection's directory, unless "
	       "an object of it changed");
	free(str);
	kvfs_onchange_set_clear(&s);
	is_int(s.n, 0, "cleared");
	ok(s.paths == NULL && s.colls == 0 && !s.overflow, "cleared whole");
}

static void test_changes_bounds(void)
{
	struct kvfs_onchange_set s = {0};
	char name[300], *str = NULL;

	for (int i = 0; i < KVFS_ONCHANGE_PATHS_MAX; i++) {
		snprintf(name, sizeof(name), "c%04d", i);
		kvfs_onchange_set_add(&s, KVFS_COLLECTION_CERTIFICATES, name);
	}
	ok(!s.overflow, "%d paths are kept", KVFS_ONCHANGE_PATHS_MAX);
	ok(kvfs_onchange_set_string(&s, &str) == 0, "string");
	ok(str && strncmp(str, "certificates/c0000 certificates/c0001 ", 38) ==
			   0,
	   "the paths themselves");
	free(str);
	kvfs_onchange_set_add(&s, KVFS_COLLECTION_SECRETS, "one-more");
	ok(s.overflow, "one more overflows");
	ok(kvfs_onchange_set_string(&s, &str) == 0, "string");
	is_str(str, "certificates secrets",
	       "past the count: the collections' directories");
	free(str);
	kvfs_onchange_set_clear(&s);

	/* 300 paths of 250 bytes: 75 KiB, past the byte bound */
	memset(name, 'n', 240);
	for (int i = 0; i < 300; i++) {
		snprintf(name + 240, sizeof(name) - 240, "%04d", i);
		kvfs_onchange_set_add(&s, KVFS_COLLECTION_KEYS, name);
	}
	ok(!s.overflow, "300 long paths are kept");
	ok(kvfs_onchange_set_string(&s, &str) == 0, "string");
	is_str(str, "keys", "past the bytes: the collection's directory");
	free(str);
	kvfs_onchange_set_clear(&s);
}

static void test_debounce(void)
{
	struct kvfs_onchange_timer t = {0};
	int64_t wait;

	ok(!kvfs_onchange_timer_take(&t, 1000, &wait), "nothing pending");
	is_int(wait, -1, "nothing to wait for");

	kvfs_onchange_timer_change(&t, 1000, 2000);
	ok(!kvfs_onchange_timer_take(&t, 1000, &wait), "not due at once");
	is_int(wait, 2000, "due after the delay");
	/* 19 more changes within the delay: the window stays the first's */
	for (int i = 1; i < 20; i++)
		kvfs_onchange_timer_change(&t, 1000 + i * 100, 2000);
	ok(!kvfs_onchange_timer_take(&t, 2999, &wait), "not due before");
	is_int(wait, 1, "still the first change's window");
	ok(kvfs_onchange_timer_take(&t, 3000, &wait), "one run for the burst");
	ok(!kvfs_onchange_timer_take(&t, 3000, &wait), "and only one");
	is_int(wait, -1, "nothing pending after it");

	/* a change during the run (taken at 3000) makes one more after it */
	kvfs_onchange_timer_change(&t, 3500, 2000);
	ok(!kvfs_onchange_timer_take(&t, 4000, &wait), "its own window");
	ok(kvfs_onchange_timer_take(&t, 9000, &wait),
	   "due at once when the run ended past it");

	kvfs_onchange_timer_change(&t, 10000, 0);
	ok(kvfs_onchange_timer_take(&t, 10000, &wait), "delay 0: at once");
}

static void test_excerpt(void)
{
	static struct kvfs_onchange_excerpt e;
	char big[5000], out[64];
	size_t pos = 0;

	memset(big, 'x', sizeof(big));
	kvfs_onchange_excerpt_add(&e, "ok\n", 3);
	kvfs_onchange_excerpt_add(&e, big, sizeof(big));
	kvfs_onchange_excerpt_add(&e, big, sizeof(big));
	is_int(e.len, KVFS_ONCHANGE_EXCERPT_MAX, "kept up to the bound");
	is_int(e.dropped, 3 + 2 * sizeof(big) - KVFS_ONCHANGE_EXCERPT_MAX,
	       "the rest counted");
	ok(memcmp(e.buf, "ok\nxx", 5) == 0, "the first bytes kept");

	memset(&e, 0, sizeof(e));
	kvfs_onchange_excerpt_add(&e, "a\\b\tc\n\x1b[1m\x7f", 11);
	kvfs_onchange_excerpt_escape(&e, &pos, out, sizeof(out));
	is_str(out, "a\\\\b\\tc\\n\\x1b[1m\\x7f", "control bytes escaped");
	is_int(pos, 11, "all of it");

	/* a small buffer takes whole escapes only, and goes on from there */
	pos = 0;
	kvfs_onchange_excerpt_escape(&e, &pos, out, 7);
	is_str(out, "a\\\\b\\t", "whole escapes");
	is_int(pos, 4, "stopped before the first that did not fit");
	kvfs_onchange_excerpt_escape(&e, &pos, out, 7);
	is_str(out, "c\\n", "the next piece");
	kvfs_onchange_excerpt_escape(&e, &pos, out, 7);
	is_str(out, "\\x1b[1", "and the next");
}

int main(void)
{
	test_changes_string();
	test_changes_bounds();
	test_debounce();
	test_excerpt();
	return done_testing();
}
