/* The pin table: one object per (process, name) with the name compared
 * without case, expiry in the order pins were added, every reference given
 * back exactly once (on expiry or on free), and many pins at once (the
 * table grows, and finds still find). */
#include <stdio.h>
#include <string.h>

#include "pins.h"
#include "tap.h"

#define OBJS 5000

static int refs[OBJS];

static void unref(void *obj)
{
	refs[(int *)obj - refs]--;
}

/* Takes a reference on &refs[i], which the table then holds. */
static int add(struct kvfs_pins *p, int64_t tgid, const char *name, int i,
	       int64_t until)
{
	int r;

	refs[i]++;
	r = kvfs_pins_add(p, tgid, KVFS_COLLECTION_CERTIFICATES, name, 1,
			  &refs[i], until);
	if (r < 0)
		refs[i]--;
	return r;
}

static int outstanding(void)
{
	int n = 0;

	for (int i = 0; i < OBJS; i++)
		n += refs[i];
	return n;
}

static void test_find(void)
{
	struct kvfs_pins *p = kvfs_pins_new(unref);

	ok(p != NULL, "a table");
	ok(kvfs_pins_find(p, 10, KVFS_COLLECTION_CERTIFICATES, "www", 0) ==
		   NULL,
	   "nothing in an empty one");
	is_int(add(p, 10, "www", 0, 5), 0, "pin www for process 10");
	is_int(add(p, 10, "mail", 1, 5), 0, "and mail");
	is_int(add(p, 11, "www", 2, 5), 0, "and www for process 11");
	ok(kvfs_pins_find(p, 10, KVFS_COLLECTION_CERTIFICATES, "www", 1) ==
		   &refs[0],
	   "process 10's www");
	ok(kvfs_pins_find(p, 10, KVFS_COLLECTION_CERTIFICATES, "WWW", 1) ==
		   &refs[0],
	   "spelled WWW");
	ok(kvfs_pins_find(p, 11, KVFS_COLLECTION_CERTIFICATES, "Www", 1) ==
		   &refs[2],
	   "process 11's www");
	/* No row of the table: stands for another collection's www. */
	ok(kvfs_pins_find(p, 10, (enum kvfs_collection)KVFS_COLLECTION_COUNT_,
			  "www", 1) == NULL,
	   "www of another collection is not process 10's pin");
	ok(kvfs_pins_find(p, 10, KVFS_COLLECTION_CERTIFICATES, "mail", 4) ==
		   &refs[1],
	   "mail, until 5");
	ok(kvfs_pins_find(p, 12, KVFS_COLLECTION_CERTIFICATES, "www", 1) ==
		   NULL,
	   "not another process's");
	ok(kvfs_pins_find(p, 10, KVFS_COLLECTION_CERTIFICATES, "ww", 1) == NULL,
	   "not a prefix");
	ok(kvfs_pins_find(p, 10, KVFS_COLLECTION_CERTIFICATES, "wwww", 1) ==
		   NULL,
	   "not a longer name");
	is_int((int)kvfs_pins_count(p), 3, "three pins");
	is_int(outstanding(), 3, "three references held");
	ok(kvfs_pins_find(p, 10, KVFS_COLLECTION_CERTIFICATES, "www", 5) ==
		   NULL,
	   "expired at 5");
	is_int((int)kvfs_pins_count(p), 0, "and dropped");
	is_int(outstanding(), 0, "every reference given back");
	kvfs_pins_free(p);
	kvfs_pins_free(NULL);
}

static void test_expiry_order(void)
{
	struct kvfs_pins *p = kvfs_pins_new(unref);

	add(p, 1, "a", 0, 10);
	add(p, 1, "b", 1, 20);
	add(p, 1, "c", 2, 30);
	ok(kvfs_pins_find(p, 1, KVFS_COLLECTION_CERTIFICATES, "c", 15) ==
		   &refs[2],
	   "c at 15");
	is_int(refs[0], 0, "a dropped at 15");
	is_int(refs[1] + refs[2], 2, "b and c still held");
	/* A shorter lifetime behind a longer one (tests change it): found
	 * as expired, dropped when the queue reaches it. */
	add(p, 1, "d", 3, 16);
	ok(kvfs_pins_find(p, 1, KVFS_COLLECTION_CERTIFICATES, "d", 17) == NULL,
	   "d expired at 17");
	is_int(refs[3], 1, "but held behind c");
	ok(kvfs_pins_find(p, 1, KVFS_COLLECTION_CERTIFICATES, "c", 31) == NULL,
	   "c expired at 31");
	is_int(outstanding(), 0, "all given back at 31");
	kvfs_pins_free(p);
}

static void test_newer_shadows(void)
{
	struct kvfs_pins *p = kvfs_pins_new(unref);

	add(p, 7, "www", 0, 10);
	add(p, 7, "www", 1, 12);
	ok(kvfs_pins_find(p, 7, KVFS_COLLECTION_CERTIFICATES, "www", 1) ==
		   &refs[1],
	   "the newer pin");
	ok(kvfs_pins_find(p, 7, KVFS_COLLECTION_CERTIFICATES, "www", 11) ==
		   &refs[1],
	   "still after the "
	   "older expired");
	is_int(refs[0], 0, "the older given back");
	kvfs_pins_free(p);
	is_int(outstanding(), 0, "free gives back the rest");
}

static void test_many(void)
{
	struct kvfs_pins *p = kvfs_pins_new(unref);
	char name[32];
	int found = 0, added = 0;

	for (int i = 0; i < OBJS; i++) {
		snprintf(name, sizeof(name), "bulk-%05d", i);
		added += add(p, 100 + i % 3, name, i, 1000 + i) == 0;
	}
	is_int(added, OBJS, "5000 pins");
	for (int i = 0; i < OBJS; i++) {
		snprintf(name, sizeof(name), "BULK-%05d", i);
		found += kvfs_pins_find(p, 100 + i % 3,
					KVFS_COLLECTION_CERTIFICATES, name,
					0) == &refs[i];
	}
	is_int(found, OBJS, "each found by its process");
	ok(kvfs_pins_find(p, 100 + 1, KVFS_COLLECTION_CERTIFICATES,
			  "bulk-00000", 0) == NULL,
	   "not by another");
	ok(kvfs_pins_find(p, 100, KVFS_COLLECTION_CERTIFICATES, "bulk-00000",
			  1000 + OBJS / 2 - 1) == NULL,
	   "half expired");
	is_int((int)kvfs_pins_count(p), OBJS / 2, "and dropped");
	kvfs_pins_free(p);
	is_int(outstanding(), 0, "every reference given back");
}

/* A renewed pin outlives the ones added after it, whatever the queue's
 * order, and is dropped once its renewed time has passed. */
static void test_renew(void)
{
	struct kvfs_pins *p = kvfs_pins_new(unref);

	is_int(add(p, 20, "www", 10, 5), 0, "pin www until 5");
	is_int(add(p, 20, "api", 11, 6), 0, "and api until 6");
	ok(kvfs_pins_renew(p, 20, KVFS_COLLECTION_CERTIFICATES, "WWW", 2, 4,
			   9) == &refs[10],
	   "an open at 4 renews www until 9");
	ok(kvfs_pins_renew(p, 20, KVFS_COLLECTION_CERTIFICATES, "mail", 2, 4,
			   9) == NULL,
	   "nothing to renew");
	ok(kvfs_pins_find(p, 20, KVFS_COLLECTION_CERTIFICATES, "www", 5) ==
		   &refs[10],
	   "www lives past 5");
	ok(kvfs_pins_find(p, 20, KVFS_COLLECTION_CERTIFICATES, "api", 6) ==
		   NULL,
	   "api expired at 6");
	is_int((int)kvfs_pins_count(p), 1, "api dropped, www kept");
	ok(kvfs_pins_renew(p, 20, KVFS_COLLECTION_CERTIFICATES, "www", 4, 8,
			   12) == &refs[10],
	   "renewed again at 8, until 12");
	ok(kvfs_pins_renew(p, 20, KVFS_COLLECTION_CERTIFICATES, "www", 8, 8,
			   7) == &refs[10],
	   "a renewal never shortens it");
	ok(kvfs_pins_find(p, 20, KVFS_COLLECTION_CERTIFICATES, "www", 11) ==
		   &refs[10],
	   "alive at 11");
	ok(kvfs_pins_find(p, 20, KVFS_COLLECTION_CERTIFICATES, "www", 12) ==
		   NULL,
	   "expired at 12");
	is_int((int)kvfs_pins_count(p), 0, "and dropped");
	is_int(refs[10] + refs[11], 0, "both references given back");
	kvfs_pins_free(p);
}

/* A second open of a file under a pin ends it: a process that polls one
 * file gets the current version each time. */
static void test_reopen(void)
{
	struct kvfs_pins *p = kvfs_pins_new(unref);

	is_int(add(p, 30, "www", 12, 100), 0, "pin www, file 1 opened");
	ok(kvfs_pins_renew(p, 30, KVFS_COLLECTION_CERTIFICATES, "www", 2, 1,
			   100) == &refs[12],
	   "file 2 is of the pinned version");
	ok(kvfs_pins_renew(p, 30, KVFS_COLLECTION_CERTIFICATES, "www", 4, 2,
			   100) == &refs[12],
	   "so is file 4");
	ok(kvfs_pins_renew(p, 30, KVFS_COLLECTION_CERTIFICATES, "www", 2, 3,
			   100) == NULL,
	   "file 2 again ends the pin");
	is_int(refs[12], 0, "whose reference goes at once");
	ok(kvfs_pins_find(p, 30, KVFS_COLLECTION_CERTIFICATES, "www", 3) ==
		   NULL,
	   "it is not found");
	ok(kvfs_pins_renew(p, 30, KVFS_COLLECTION_CERTIFICATES, "www", 1, 3,
			   100) == NULL,
	   "nor renewed by another file");
	is_int(add(p, 30, "www", 13, 100), 0, "a new pin");
	ok(kvfs_pins_renew(p, 30, KVFS_COLLECTION_CERTIFICATES, "www", 4, 4,
			   100) == &refs[13],
	   "is the one found");
	ok(kvfs_pins_renew(p, 31, KVFS_COLLECTION_CERTIFICATES, "www", 2, 4,
			   100) == NULL,
	   "only by its own process");
	kvfs_pins_free(p);
	is_int(outstanding(), 0, "every reference given back");
}

int main(void)
{
	test_find();
	test_expiry_order();
	test_newer_shadows();
	test_many();
	test_renew();
	test_reopen();
	return done_testing();
}
