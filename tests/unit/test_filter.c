/* Unit tests of filter.c, with filters made the way a user makes them
 * (kvfs_config_parse of -o include=, exclude=, tag=): no filter matches
 * everything; include= globs (any matches), exclude= globs (exclude wins),
 * fnmatch's *, ? and brackets without case; tag= keys and values exact,
 * split at the first '=', every one required, an absent tag no match; the
 * rules combined; hostile names and patterns.  Runs in tests/data, which
 * serves as the mountpoint. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "filter.h"
#include "tap.h"
#include "util.h"
#include "vault.h"

struct fixture {
	struct kvfs_config c;
	struct kvfs_filter f;
};

/* The filter of "kvfs -o opts myvault ."; opts NULL: no -o at all. */
static bool make(struct fixture *fx, const char *opts)
{
	char *argv[] = {(char *)"kvfs",	   (char *)"-o", (char *)opts,
			(char *)"myvault", (char *)".",	 NULL};
	struct kvfs_error err;
	int r;

	memset(fx, 0, sizeof(*fx));
	if (opts)
		r = kvfs_config_parse(5, argv, &fx->c, &err);
	else {
		argv[1] = argv[3];
		argv[2] = argv[4];
		r = kvfs_config_parse(3, argv, &fx->c, &err);
	}
	if (!ok(r == 0, "-o %s parses (%s)", opts ? opts : "(none)",
		err.message))
		return false;
	kvfs_filter_init(&fx->f, &fx->c);
	return true;
}

/* Whether an item named name with the tags of "k1", "v1", "k2", "v2",
 * ..., NULL is shown. */
static bool matchv(const struct fixture *fx, const char *name, va_list ap,
		   char *desc, size_t size)
{
	struct kvfs_tag tags[8];
	struct kvfs_object_item it = {.name = (char *)name};
	size_t len;
	const char *k;

	snprintf(desc, size, "'%.40s'", name);
	while (it.ntags < ELEMENTSOF(tags) && (k = va_arg(ap, const char *))) {
		tags[it.ntags].key = (char *)k;
		tags[it.ntags].value = va_arg(ap, char *);
		len = strlen(desc);
		snprintf(desc + len, size - len, " %s='%s'", k,
			 tags[it.ntags].value);
		it.ntags++;
	}
	it.tags = it.ntags ? tags : NULL;
	for (char *p = desc; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = '?'; /* one TAP line */
	return kvfs_filter_match(&fx->f, &it);
}

static bool match(const struct fixture *fx, const char *name, ...)
{
	char desc[256];
	va_list ap;
	bool r;

	va_start(ap, name);
	r = matchv(fx, name, ap, desc, sizeof(desc));
	va_end(ap);
	return r;
}

static void expect(const struct fixture *fx, bool want, const char *name, ...)
{
	char desc[256];
	va_list ap;
	bool got;

	va_start(ap, name);
	got = matchv(fx, name, ap, desc, sizeof(desc));
	va_end(ap);
	ok(got == want, "%s %s", desc, want ? "shown" : "left out");
}

#define shown(fx, ...) expect(fx, true, __VA_ARGS__, NULL)
#define hidden(fx, ...) expect(fx, false, __VA_ARGS__, NULL)

static void test_none(void)
{
	struct fixture fx;

	if (!make(&fx, NULL))
		return;
	ok(!kvfs_filter_active(&fx.f), "no option: the filter is not active");
	ok(match(&fx, "www", NULL), "every name matches");
	ok(match(&fx, "", NULL), "even the empty one");
	ok(match(&fx, "www", "env", "prod", NULL), "whatever its tags");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "uid=0,allow_expired"))
		return;
	ok(!kvfs_filter_active(&fx.f), "other options: still not active");
	kvfs_config_free(&fx.c);
}

static void test_include(void)
{
	struct fixture fx;

	if (!make(&fx, "include=www*"))
		return;
	ok(kvfs_filter_active(&fx.f), "include= makes the filter active");
	shown(&fx, "www");
	shown(&fx, "www-2");
	shown(&fx, "WWW-Prod");
	hidden(&fx, "api");
	hidden(&fx, "a-www");
	hidden(&fx, "ww");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "include=www,include=API"))
		return;
	shown(&fx, "www");
	shown(&fx, "api");
	shown(&fx, "Api");
	hidden(&fx, "www-2");
	hidden(&fx, "db");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "include=db-?,include=[ab]x-*"))
		return;
	shown(&fx, "db-1");
	shown(&fx, "DB-z");
	hidden(&fx, "db-12");
	hidden(&fx, "db-");
	shown(&fx, "ax-1");
	shown(&fx, "BX-2");
	hidden(&fx, "cx-1");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "include=[!a]*"))
		return;
	shown(&fx, "www");
	hidden(&fx, "api");
	hidden(&fx, "API");
	kvfs_config_free(&fx.c);
}

static void test_exclude(void)
{
	struct fixture fx;

	if (!make(&fx, "exclude=*-old"))
		return;
	ok(kvfs_filter_active(&fx.f), "exclude= makes the filter active");
	shown(&fx, "www");
	hidden(&fx, "www-old");
	hidden(&fx, "WWW-OLD");
	shown(&fx, "www-older");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "include=www*,exclude=www-old,exclude=*-test"))
		return;
	shown(&fx, "www-new");
	hidden(&fx, "www-old");
	hidden(&fx, "www-test");
	hidden(&fx, "api-new");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "exclude=www,include=www"))
		return;
	hidden(&fx, "www");
	hidden(&fx, "api");
	kvfs_config_free(&fx.c);
}

static void test_tags(void)
{
	struct fixture fx;

	if (!make(&fx, "tag=env=prod"))
		return;
	ok(kvfs_filter_active(&fx.f), "tag= makes the filter active");
	shown(&fx, "www", "env", "prod");
	shown(&fx, "www", "team", "web", "env", "prod");
	hidden(&fx, "www");
	hidden(&fx, "www", "team", "web");
	hidden(&fx, "www", "env", "dev");
	hidden(&fx, "www", "env", "Prod");
	hidden(&fx, "www", "Env", "prod");
	hidden(&fx, "www", "env", "prod ");
	hidden(&fx, "www", "env", "");
	hidden(&fx, "www", "envx", "prod");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "tag=env=prod,tag=team=web"))
		return;
	shown(&fx, "www", "env", "prod", "team", "web");
	shown(&fx, "www", "team", "web", "x", "y", "env", "prod");
	hidden(&fx, "www", "env", "prod");
	hidden(&fx, "www", "team", "web");
	hidden(&fx, "www", "env", "prod", "team", "db");
	kvfs_config_free(&fx.c);

	/* Split at the first '=': key "k", value "a=b". */
	if (!make(&fx, "tag=k=a=b"))
		return;
	shown(&fx, "www", "k", "a=b");
	hidden(&fx, "www", "k=a", "b");
	hidden(&fx, "www", "k", "a");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "tag=owner="))
		return;
	shown(&fx, "www", "owner", "");
	hidden(&fx, "www", "owner", "me");
	hidden(&fx, "www");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "tag=env=prod,tag=env=prod"))
		return;
	shown(&fx, "www", "env", "prod");
	hidden(&fx, "www", "env", "dev");
	kvfs_config_free(&fx.c);
}

static void test_combined(void)
{
	struct fixture fx;

	if (!make(&fx, "include=www*,include=api*,exclude=*-old,tag=env=prod"))
		return;
	shown(&fx, "www", "env", "prod");
	shown(&fx, "api-2", "env", "prod");
	hidden(&fx, "www");
	hidden(&fx, "www-old", "env", "prod");
	hidden(&fx, "db", "env", "prod");
	hidden(&fx, "api", "env", "dev");
	kvfs_config_free(&fx.c);
}

static void test_hostile(void)
{
	_cleanup_free_ char *longname = malloc(100001);
	struct fixture fx;

	if (!ok(longname != NULL, "malloc"))
		return;
	memset(longname, 'a', 100000);
	longname[100000] = '\0';

	if (!make(&fx, "include=*"))
		return;
	shown(&fx, "");
	shown(&fx, "..");
	shown(&fx, ".hidden");
	shown(&fx, "a/b");
	shown(&fx, "line\nbreak");
	ok(match(&fx, longname, NULL), "a name of 100000 bytes");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "exclude=*"))
		return;
	hidden(&fx, "");
	hidden(&fx, "..");
	hidden(&fx, "www");
	kvfs_config_free(&fx.c);

	/* An unbalanced '[' is a literal; a '\' escapes (in -o, "\\" is one
	 * backslash). */
	if (!make(&fx, "include=a[b,include=x\\\\*"))
		return;
	shown(&fx, "a[b");
	hidden(&fx, "ab");
	shown(&fx, "x*");
	hidden(&fx, "xy");
	kvfs_config_free(&fx.c);

	if (!make(&fx, "include=%2F*,exclude=*..*"))
		return;
	shown(&fx, "%2Fetc");
	hidden(&fx, "%2F..");
	hidden(&fx, "www");
	kvfs_config_free(&fx.c);

	/* Many stars against a long name that almost matches: the answer,
	 * without backtracking forever. */
	if (!make(&fx, "include=*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"))
		return;
	ok(!match(&fx, longname, NULL), "many stars: no match");
	longname[99999] = 'b';
	ok(match(&fx, longname, NULL), "many stars: a match");
	kvfs_config_free(&fx.c);

	/* A tag whose key or value looks like a glob is compared exactly. */
	if (!make(&fx, "tag=*=*"))
		return;
	shown(&fx, "www", "*", "*");
	hidden(&fx, "www", "env", "prod");
	hidden(&fx, "www", "*", "prod");
	kvfs_config_free(&fx.c);
}

int main(void)
{
	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("AZURE_AUTHORITY_HOST");
	test_none();
	test_include();
	test_exclude();
	test_tags();
	test_combined();
	test_hostile();
	return done_testing();
}
