/* Listing snapshots without a vault: a collection's listing is sorted
 * without case, keeps only valid Key Vault names and each name once; find
 * ignores case and finds nothing else; a filter leaves out what it rejects
 * and the listing counts them, while objects that back a certificate are
 * dropped and not counted; the diff of two listings hands
 * over exactly the objects that came, went or changed (updated or x5t),
 * in name order; a versions listing finds a version without case and its
 * diff says which versions went or changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "listing.h"
#include "tap.h"
#include "util.h"

struct item {
	const char *name;
	const char *x5t; /* NULL: none */
	int64_t updated;
	const char *version; /* NULL: an item of a collection's listing */
};

/* A vault's list of the items, owning copies of their strings. */
static struct kvfs_object_list list_of(const struct item *items, size_t n)
{
	struct kvfs_object_list l = {0};

	l.items = calloc(n ? n : 1, sizeof(l.items[0]));
	if (!l.items)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct kvfs_object_item *it = &l.items[l.n++];

		it->name = items[i].name ? strdup(items[i].name) : NULL;
		it->x5t = items[i].x5t ? strdup(items[i].x5t) : NULL;
		it->version =
			items[i].version ? strdup(items[i].version) : NULL;
		it->attrs.updated = items[i].updated;
		it->attrs.enabled = true;
	}
	return l;
}

/* The listing of list through filter (NULL: none). */
static struct kvfs_listing *build_list(struct kvfs_object_list *list,
				       const struct kvfs_filter *filter)
{
	struct kvfs_listing *l = NULL;

	if (kvfs_listing_build(KVFS_COLLECTION_CERTIFICATES, list, filter, &l) <
	    0)
		abort();
	ok(list->n == 0 && list->items == NULL, "the list is taken over");
	return l;
}

static struct kvfs_listing *build(const struct item *items, size_t n)
{
	struct kvfs_object_list list = list_of(items, n);

	return build_list(&list, NULL);
}

static void test_build_and_find(void)
{
	char long_ok[128], long_bad[129];
	struct item items[] = {
		{"www", "AAA", 300, NULL},     {"Api", NULL, 200, NULL},
		{"bad_name", NULL, 900, NULL}, {"", NULL, 950, NULL},
		{NULL, NULL, 960, NULL},       {"../etc", NULL, 970, NULL},
		{"a/b", NULL, 980, NULL},      {"new\nline", NULL, 990, NULL},
		{"%2e%2e", NULL, 995, NULL},   {long_bad, NULL, 999, NULL},
		{long_ok, NULL, 100, NULL},    {"mail", NULL, 100, NULL},
		{"WWW", "BBB", 300, NULL},
	};
	struct kvfs_listing *l, *e;

	memset(long_ok, 'k', sizeof(long_ok) - 1);
	long_ok[sizeof(long_ok) - 1] = '\0';
	memset(long_bad, 'k', sizeof(long_bad) - 1);
	long_bad[sizeof(long_bad) - 1] = '\0';

	l = build(items, ELEMENTSOF(items));
	is_int(l->n, 4, "hostile and repeated names dropped, the rest kept");
	if (l->n == 4) {
		is_str(l->entries[0].item.name, "Api", "sorted: Api");
		is_str(l->entries[1].item.name, long_ok,
		       "127 characters is a name");
		is_str(l->entries[2].item.name, "mail", "sorted: mail");
		ok(strcasecmp(l->entries[3].item.name, "www") == 0,
		   "www and WWW are one name, kept once");
	}
	ok(kvfs_listing_find(l, "API") == &l->entries[0], "find ignores case");
	ok(kvfs_listing_find(l, "wWw") == &l->entries[3], "wWw finds www");
	static const char *const absent[] = {
		"bad_name", "",	  "../etc", "a/b", "new\nline",
		"%2e%2e",   "ww", "www ",   "..",
	};
	for (size_t i = 0; i < ELEMENTSOF(absent); i++)
		ok(!kvfs_listing_find(l, absent[i]),
		   "absent name %zu is not found", i);
	ok(!kvfs_listing_find(l, long_bad), "128 characters are not found");
	ok(!kvfs_listing_find(l, NULL), "NULL is not found");
	ok(!kvfs_listing_find(NULL, "www"), "nothing in no listing");
	is_int(l->updated_max, 300, "updated_max over the kept entries only");
	is_int(l->filtered, 0, "no filter leaves nothing out");
	ok(l->loaded_at > 0, "it says when it was built");

	ok(kvfs_listing_ref(l) == l, "a reference is the same listing");
	kvfs_listing_unref(l);
	ok(kvfs_listing_find(l, "mail") != NULL, "alive while referenced");
	kvfs_listing_unref(l);
	kvfs_listing_unref(NULL);

	e = kvfs_listing_new_empty();
	ok(e && e->n == 0 && e->updated_max == 0, "an empty listing");
	ok(!kvfs_listing_find(e, "www"), "finds nothing");
	kvfs_listing_unref(e);

	l = build(NULL, 0);
	is_int(l->n, 0, "an empty list builds an empty listing");
	kvfs_listing_unref(l);
}

/* Whether l holds exactly the names of want, in order. */
static bool names_are(const struct kvfs_listing *l, const char *const *want,
		      size_t n)
{
	if (l->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l->entries[i].item.name, want[i]) != 0)
			return false;
	return true;
}

/* The items of test_filtered, with the tag env= of each (NULL: no tag)
 * and whether it backs a certificate. */
static const struct item filter_items[] = {
	{"www", NULL, 300, NULL},      {"Api", NULL, 200, NULL},
	{"www-test", NULL, 900, NULL}, {"mail", NULL, 400, NULL},
	{"web", NULL, 500, NULL},      {"wiki", NULL, 600, NULL},
	{"bad_name", NULL, 700, NULL},
};
static const char *const filter_envs[] = {"prod", "dev",  "prod", NULL,
					  NULL,	  "prod", "prod"};
static const bool filter_managed[] = {false, false, false, false,
				      false, true,  false};

static struct kvfs_listing *build_tagged(const struct kvfs_filter *f)
{
	struct kvfs_object_list list =
		list_of(filter_items, ELEMENTSOF(filter_items));

	for (size_t i = 0; i < list.n; i++) {
		struct kvfs_object_item *it = &list.items[i];

		it->managed = filter_managed[i];
		if (!filter_envs[i])
			continue;
		it->tags = calloc(1, sizeof(*it->tags));
		if (!it->tags)
			abort();
		it->tags[0].key = strdup("env");
		it->tags[0].value = strdup(filter_envs[i]);
		it->ntags = 1;
	}
	return build_list(&list, f);
}

static void test_filtered(void)
{
	char *include[] = {(char *)"w*", (char *)"API"};
	char *exclude[] = {(char *)"*-TEST"};
	struct kvfs_config_tag tag = {(char *)"env", (char *)"prod"};
	struct kvfs_config c = {
		.include = {include, ELEMENTSOF(include)},
		.exclude = {exclude, ELEMENTSOF(exclude)},
	};
	static const char *const globs[] = {"Api", "web", "www"};
	static const char *const tagged[] = {"www"};
	static const char *const unmanaged[] = {"Api", "mail", "web", "www",
						"www-test"};
	struct kvfs_filter f;
	struct kvfs_listing *l;

	l = build_tagged(NULL);
	ok(names_are(l, unmanaged, ELEMENTSOF(unmanaged)),
	   "without a filter, all but the managed and the invalid");
	is_int(l->filtered, 0, "and none is counted filtered");
	kvfs_listing_unref(l);

	kvfs_filter_init(&f, &c);
	l = build_tagged(&f);
	ok(names_are(l, globs, ELEMENTSOF(globs)),
	   "include= without case, exclude= wins, managed dropped");
	is_int(l->filtered, 2, "mail and www-test are counted filtered");
	is_int(l->updated_max, 500, "updated_max over the kept entries only");
	ok(!kvfs_listing_find(l, "mail"), "a filtered name is not found");
	ok(!kvfs_listing_find(l, "wiki"), "nor a managed one");
	kvfs_listing_unref(l);

	c.tags = (struct kvfs_config_tags){&tag, 1};
	kvfs_filter_init(&f, &c);
	l = build_tagged(&f);
	ok(names_are(l, tagged, ELEMENTSOF(tagged)),
	   "tag= drops another value and an absent tag");
	is_int(l->filtered, 4, "Api, mail, web and www-test are filtered");
	kvfs_listing_unref(l);
}

struct seen {
	char lines[16][64];
	size_t n;
};

static void record(void *data, enum kvfs_listing_diff d,
		   const struct kvfs_object_item *a,
		   const struct kvfs_object_item *b)
{
	static const char *const what[] = {"gone", "new", "changed"};
	struct seen *s = data;

	if (s->n >= ELEMENTSOF(s->lines))
		return;
	snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s %s/%s", what[d],
		 a ? a->name : "-", b ? b->name : "-");
}

static void test_diff(void)
{
	static const struct item before[] = {
		{"same", "S", 10, NULL},     {"gone", "G", 10, NULL},
		{"updated", "U", 10, NULL},  {"thumb", "T1", 10, NULL},
		{"nothumb", NULL, 10, NULL}, {"getsthumb", NULL, 10, NULL},
		{"Case", "C", 10, NULL},
	};
	static const struct item after[] = {
		{"same", "S", 10, NULL},      {"updated", "U", 11, NULL},
		{"thumb", "T2", 10, NULL},    {"nothumb", NULL, 10, NULL},
		{"getsthumb", "X", 10, NULL}, {"case", "C", 10, NULL},
		{"added", NULL, 5, NULL},
	};
	static const char *const want[] = {
		"new -/added",
		"changed getsthumb/getsthumb",
		"gone gone/-",
		"changed thumb/thumb",
		"changed updated/updated",
	};
	struct kvfs_listing *a = build(before, ELEMENTSOF(before));
	struct kvfs_listing *b = build(after, ELEMENTSOF(after));
	struct kvfs_listing *e = kvfs_listing_new_empty();
	struct seen s = {0};
	struct seen none = {0};

	if (!e)
		abort();

	kvfs_listing_diff(a, b, record, &s);
	is_int(s.n, ELEMENTSOF(want),
	       "added, removed, updated and x5t changes; nothing else");
	for (size_t i = 0; i < ELEMENTSOF(want) && i < s.n; i++)
		is_str(s.lines[i], want[i], "in name order: %s", want[i]);

	kvfs_listing_diff(a, a, record, &none);
	is_int(none.n, 0, "a listing does not differ from itself");

	memset(&s, 0, sizeof(s));
	kvfs_listing_diff(e, a, record, &s);
	is_int(s.n, a->n, "from nothing, every object is new");
	ok(s.n > 0 && strncmp(s.lines[0], "new ", 4) == 0, "as new");
	memset(&s, 0, sizeof(s));
	kvfs_listing_diff(a, e, record, &s);
	is_int(s.n, a->n, "to nothing, every object is gone");
	ok(s.n > 0 && strncmp(s.lines[0], "gone ", 5) == 0, "as gone");

	kvfs_listing_unref(e);
	kvfs_listing_unref(a);
	kvfs_listing_unref(b);
}

static struct kvfs_versions *versions_of(const struct item *items, size_t n)
{
	struct kvfs_versions *v = kvfs_versions_new();

	if (!v)
		abort();
	v->list = list_of(items, n);
	return v;
}

static void test_versions(void)
{
	static const struct item old_items[] = {
		{"www", "A", 10, "v1"},
		{"www", "B", 20, "V2"},
		{"www", "C", 30, "v3"},
		{"www", NULL, 40, NULL},
	};
	static const struct item new_items[] = {
		{"www", "A", 10, "v1"},
		{"www", "B", 21, "v2"},
		{"www", "D", 50, "v4"},
	};
	struct kvfs_versions *old = versions_of(old_items, 4);
	struct kvfs_versions *nv = versions_of(new_items, 3);
	const struct kvfs_object_item *it;
	size_t k = 0;

	ok(kvfs_versions_find(old, "v2") == &old->list.items[1],
	   "a version is found without case");
	ok(!kvfs_versions_find(old, "v"), "a prefix is not");
	ok(!kvfs_versions_find(old, NULL), "NULL is not");
	ok(!kvfs_versions_find(NULL, "v1"), "nothing in no listing");

	it = kvfs_versions_next_changed(old, nv, &k);
	ok(it == &old->list.items[1], "V2 changed (updated)");
	it = kvfs_versions_next_changed(old, nv, &k);
	ok(it == &old->list.items[2], "v3 went");
	ok(!kvfs_versions_next_changed(old, nv, &k),
	   "then none: v1 is the same, an item without a version is skipped, "
	   "v4 is new");

	/* enabled, nbf and exp matter for a version, not for a listing. */
	nv->list.items[0].attrs.enabled = false;
	k = 0;
	ok(kvfs_versions_next_changed(old, nv, &k) == &old->list.items[0],
	   "a version disabled changed");
	nv->list.items[0].attrs.enabled = true;
	nv->list.items[0].attrs.exp = 99;
	k = 0;
	ok(kvfs_versions_next_changed(old, nv, &k) == &old->list.items[0],
	   "a version whose exp moved changed");

	ok(kvfs_versions_ref(old) == old, "a reference is the same listing");
	kvfs_versions_unref(old);
	kvfs_versions_unref(old);
	kvfs_versions_unref(nv);
	kvfs_versions_unref(NULL);
}

/* An item the listing keeps is moved into it whole: every field reads
 * as the vault's list had it.  The items it drops (an invalid name, a
 * certificate's secret, a filtered one, a name listed twice) are freed at
 * once, tags and all: a leak checker run says so. */
static void test_items_moved_whole(void)
{
	char name_max[128];
	struct kvfs_config_tag tag = {(char *)"env", (char *)"prod"};
	struct kvfs_config c = {.tags = {&tag, 1}};
	struct item items[] = {
		{name_max, "x5t-of-the-longest", 700, NULL},
		{"tagged", NULL, 600, NULL},
		{"TAGGED", "x5t-of-the-twin", 650, NULL},
		{"managed", NULL, 500, NULL},
		{"bad_name", "x5t-of-a-bad-one", 400, NULL},
		{"untagged", "x5t-filtered", 300, NULL},
	};
	struct kvfs_object_list list;
	const struct kvfs_entry *e;
	struct kvfs_filter f;
	struct kvfs_listing *l;

	memset(name_max, 'M', sizeof(name_max) - 1);
	name_max[sizeof(name_max) - 1] = '\0';
	list = list_of(items, ELEMENTSOF(items));
	for (size_t i = 0; i < 3; i++) {
		struct kvfs_object_item *it = &list.items[i];

		it->attrs = (struct kvfs_object_attrs){
			.enabled = i != 1,
			.nbf = 10 + (int64_t)i,
			.exp = 20 + (int64_t)i,
			.created = 30 + (int64_t)i,
			.updated = items[i].updated,
		};
		it->tags = calloc(2, sizeof(it->tags[0]));
		if (!it->tags)
			abort();
		it->tags[0] = (struct kvfs_tag){strdup("env"), strdup("prod")};
		it->tags[1] = (struct kvfs_tag){strdup("team"), strdup("web")};
		it->ntags = 2;
		it->tags_json = strdup("{\"env\":\"prod\",\"team\":\"web\"}");
	}
	list.items[3].managed = true;
	list.items[3].tags_json = strdup("{\"env\":\"prod\"}");

	kvfs_filter_init(&f, &c);
	l = build_list(&list, &f);
	is_int(l->n, 2, "the longest name and one of the twins are kept");
	is_int(l->filtered, 1, "the untagged one is filtered");

	e = kvfs_listing_find(l, name_max);
	ok(e && strcmp(e->item.name, name_max) == 0,
	   "a name of 127 characters is kept whole");
	ok(e && e->item.x5t && strcmp(e->item.x5t, "x5t-of-the-longest") == 0,
	   "with its x5t");
	ok(e && e->item.attrs.enabled && e->item.attrs.nbf == 10 &&
		   e->item.attrs.exp == 20 && e->item.attrs.created == 30 &&
		   e->item.attrs.updated == 700,
	   "and its attributes");
	ok(e && e->item.ntags == 2 && strcmp(e->item.tags[0].key, "env") == 0 &&
		   strcmp(e->item.tags[0].value, "prod") == 0 &&
		   strcmp(e->item.tags[1].key, "team") == 0 &&
		   strcmp(e->item.tags[1].value, "web") == 0,
	   "and its tags, in the vault's order");
	ok(e && e->item.tags_json &&
		   strcmp(e->item.tags_json,
			  "{\"env\":\"prod\",\"team\":\"web\"}") == 0,
	   "and its tags as JSON");
	ok(e && !e->item.version && !e->item.managed,
	   "without a version, not managed");

	e = kvfs_listing_find(l, "tagged");
	ok(e && (e->item.x5t == NULL ||
		 strcmp(e->item.x5t, "x5t-of-the-twin") == 0),
	   "a twin is kept with its own x5t");
	ok(e && e->item.attrs.enabled == (e->item.x5t != NULL) &&
		   e->item.attrs.nbf == (e->item.x5t ? 12 : 11),
	   "and its own attributes");
	is_int(l->updated_max, 700, "updated_max over the kept entries");
	kvfs_listing_unref(l);
}

int main(void)
{
	test_build_and_find();
	test_filtered();
	test_items_moved_whole();
	test_diff();
	test_versions();
	return done_testing();
}
