/* Unit tests of rules.c: lines, comments and blank lines; every key; user
 * and group names resolved ("root", which every system has) and numbers;
 * first match wins, patterns without case; readers= and key_readers= and
 * which one an object gets; the match of each kind of reader (a group
 * among the supplementary ones, an exe only when trusted); every refusal
 * with its file and line; and the file read as a credential file is,
 * but readable by others. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules.h"
#include "tap.h"
#include "util.h"

static struct kvfs_rules *parse(const char *text, const char *key_readers)
{
	struct kvfs_rules *rs = NULL;
	struct kvfs_error err = {0};
	int r;

	r = kvfs_rules_parse("rules", text, strlen(text), key_readers, &rs,
			     &err);
	ok(r == 0, "parses: %s", err.message);
	return rs;
}

static void refused_n(const char *text, size_t len, const char *key_readers,
		      const char *want)
{
	struct kvfs_rules *rs = NULL;
	struct kvfs_error err = {0};
	int r;

	r = kvfs_rules_parse("rules", text, len, key_readers, &rs, &err);
	is_int(r, -EINVAL, "refused: %s", want);
	ok(strstr(err.message, want) != NULL, "'%s' says '%s'", err.message,
	   want);
	ok(rs == NULL, "nothing returned");
}

static void refused(const char *text, const char *key_readers, const char *want)
{
	refused_n(text, strlen(text), key_readers, want);
}

static void test_lines(void)
{
	struct kvfs_rules *rs = parse(
		"# comment\n"
		"\n"
		"   \t\n"
		"certificates/www uid=root gid=root mode=0440 key_mode=0400 "
		"# trailing\n"
		"certificates/db-* uid=33 gid=34 readers=uid:33\n"
		"* mode=0444",
		NULL);
	const struct kvfs_rule *r;

	r = kvfs_rules_match(rs, "certificates", "WWW");
	ok(r && strcmp(r->pattern, "certificates/www") == 0,
	   "a pattern matches without case");
	ok(r && r->set == (KVFS_RULE_UID | KVFS_RULE_GID | KVFS_RULE_MODE |
			   KVFS_RULE_KEY_MODE),
	   "every key but readers= is set");
	ok(r && r->uid == 0 && r->gid == 0, "root resolved");
	ok(r && r->mode == 0440 && r->key_mode == 0400, "modes are octal");
	ok(kvfs_rules_readers(rs, r) == NULL,
	   "no readers=, no key_readers=: the modes say");

	r = kvfs_rules_match(rs, "certificates", "db-main");
	ok(r && r->uid == 33 && r->gid == 34, "numbers taken as they are");
	ok(r && kvfs_rules_readers(rs, r) == &r->readers, "its readers=");

	r = kvfs_rules_match(rs, "secrets", "anything");
	ok(r && strcmp(r->pattern, "*") == 0 && r->set == KVFS_RULE_MODE,
	   "'*' matches across the '/', the last line without a newline");
	kvfs_rules_unref(rs);

	rs = parse("secrets/a* mode=0400\n", NULL);
	ok(kvfs_rules_match(rs, "certificates", "abc") == NULL,
	   "no match: no rule");
	ok(kvfs_rules_match(rs, "secrets", "abc") != NULL,
	   "the collection is part of the pattern");
	ok(kvfs_rules_ref(rs) == rs, "a reference is the same snapshot");
	kvfs_rules_unref(rs);
	kvfs_rules_unref(rs);
	kvfs_rules_unref(NULL);
}

static void test_first_match_wins(void)
{
	struct kvfs_rules *rs = parse(
		"certificates/www mode=0400\ncertificates/* mode=0444\n", NULL);
	const struct kvfs_rule *r = kvfs_rules_match(rs, "certificates", "www");

	ok(r && r->mode == 0400, "the first line that matches");
	r = kvfs_rules_match(rs, "certificates", "api");
	ok(r && r->mode == 0444, "then the next");
	kvfs_rules_unref(rs);
}

static void test_readers(void)
{
	struct kvfs_rules *rs =
		parse("certificates/www "
		      "readers=user:root,gid:50,exe:/usr/sbin/nginx\n"
		      "certificates/api mode=0444\n",
		      "uid:1000,group:root");
	const struct kvfs_rule *www =
		kvfs_rules_match(rs, "certificates", "www");
	const struct kvfs_rule *api =
		kvfs_rules_match(rs, "certificates", "api");
	const struct kvfs_readers *rd = kvfs_rules_readers(rs, www);
	const struct kvfs_readers *kr = kvfs_rules_readers(rs, api);
	gid_t groups[] = {7, 50};
	struct kvfs_rules_caller c = {.uid = 1, .gid = 1};

	ok(rd && rd->n == 3, "three readers");
	ok(kr && kr != rd && kr->n == 2,
	   "an object without readers= gets key_readers=");
	ok(kvfs_rules_readers(rs, NULL) == kr, "and so does one without rule");

	ok(!kvfs_rules_allow(rd, &c), "nobody listed: refused");
	c.uid = 0;
	ok(kvfs_rules_allow(rd, &c), "user:root");
	c.uid = 1;
	c.groups = groups;
	c.ngroups = 2;
	ok(kvfs_rules_allow(rd, &c), "gid: among the supplementary groups");
	c.ngroups = 1;
	ok(!kvfs_rules_allow(rd, &c), "not among them: refused");
	c.gid = 50;
	ok(kvfs_rules_allow(rd, &c), "gid: the primary group");
	c.gid = 1;
	c.exe = "/usr/sbin/nginx";
	ok(kvfs_rules_allow(rd, &c), "exe: the path");
	c.exe = "/usr/sbin/nginx2";
	ok(!kvfs_rules_allow(rd, &c), "exe: another path");
	c.exe = NULL;
	ok(!kvfs_rules_allow(rd, &c), "exe: not trusted");

	c.uid = 1000;
	ok(kvfs_rules_allow(kr, &c), "key_readers= uid:");
	c.uid = 1;
	c.gid = 0;
	ok(kvfs_rules_allow(kr, &c), "key_readers= group:root");
	c.gid = 1;
	ok(!kvfs_rules_allow(kr, &c), "key_readers=: others refused");
	kvfs_rules_unref(rs);

	rs = parse("", "uid:0");
	ok(kvfs_rules_readers(rs, NULL) != NULL,
	   "key_readers= without a rules file");
	kvfs_rules_unref(rs);
}

static void test_refusals(void)
{
	refused("a b\n", NULL, "rules:1: 'b': expected KEY=VALUE");
	refused("# one\n\nx uid=\n", NULL, "rules:3: 'uid=': expected");
	refused("uid=0\n", NULL, "rules:1: 'uid=0': a line starts with");
	refused("x colour=blue\n", NULL, "rules:1: unknown key 'colour'");
	refused("x mode=0444 mode=0400\n", NULL, "rules:1: 'mode' given twice");
	refused("x mode=0999\n", NULL, "rules:1: invalid mode '0999'");
	refused("x key_mode=01777\n", NULL, "rules:1: invalid key_mode");
	refused("x mode=-1\n", NULL, "rules:1: invalid mode");
	refused("x uid=no-such-user-kvfs\n", NULL,
		"rules:1: no user 'no-such-user-kvfs'");
	refused("x gid=no-such-group-kvfs\n", NULL,
		"rules:1: no group 'no-such-group-kvfs'");
	refused("x uid=4294967295\n", NULL, "no user '4294967295'");
	refused("x readers=\n", NULL, "expected KEY=VALUE");
	refused("x readers=uid:0,,gid:0\n", NULL, "empty reader");
	refused("x readers=uid:0,\n", NULL, "empty reader");
	refused("x readers=root\n", NULL, "invalid reader 'root'");
	refused("x readers=uid:\n", NULL, "invalid reader 'uid:'");
	refused("x readers=uid:abc\n", NULL, "invalid uid 'abc'");
	refused("x readers=gid:-1\n", NULL, "invalid gid '-1'");
	refused("x readers=exe:nginx\n", NULL, "must be absolute");
	refused("x readers=pid:1\n", NULL, "unknown reader 'pid:'");
	refused("x\n", "user:no-such-user-kvfs",
		"key_readers: no user 'no-such-user-kvfs'");
	refused_n("ok\nx\0y\n", 7, NULL, "rules:2: a NUL byte");
	{
		char big[5000];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		refused(big, NULL, "rules:1: line longer than");
		big[300] = '\n';
		refused(big, NULL, "rules:1: pattern longer than");
	}
}

static void test_load(void)
{
	char dir[] = "/tmp/kvfs-test-rules-XXXXXX", path[64];
	struct kvfs_rules *rs = NULL;
	struct kvfs_error err = {0};
	int fd;

	if (!ok(mkdtemp(dir) != NULL, "a directory"))
		return;
	snprintf(path, sizeof(path), "%s/rules", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ok(fd >= 0 && write(fd, "* mode=0444\n", 12) == 12, "written");
	close(fd);
	is_int(kvfs_rules_load(path, NULL, &rs, &err), 0, "0644 loads: %s",
	       err.message);
	ok(kvfs_rules_match(rs, "secrets", "x") != NULL, "its rule");
	kvfs_rules_unref(rs);
	rs = NULL;

	chmod(path, 0664);
	is_int(kvfs_rules_load(path, NULL, &rs, &err), -EPERM,
	       "writable by the group: refused");
	ok(strstr(err.message, "too open") != NULL, "%s", err.message);
	chmod(path, 0646);
	is_int(kvfs_rules_load(path, NULL, &rs, &err), -EPERM,
	       "writable by others: refused");
	chmod(path, 0644);
	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd >= 0 && write(fd, "ok\nbad=1\n", 9) == 9, "rewritten");
	close(fd);
	is_int(kvfs_rules_load(path, NULL, &rs, &err), -EINVAL, "a bad line");
	ok(strncmp(err.message, path, strlen(path)) == 0 &&
		   strstr(err.message, ":2: ") != NULL,
	   "FILE:LINE: %s", err.message);
	ok(rs == NULL, "nothing returned");
	unlink(path);
	is_int(kvfs_rules_load(path, NULL, &rs, &err), -ENOENT, "missing");
	is_int(kvfs_rules_load(NULL, "uid:0", &rs, &err), 0,
	       "key_readers= alone");
	kvfs_rules_unref(rs);
	rmdir(dir);
}

int main(void)
{
	test_lines();
	test_first_match_wins();
	test_readers();
	test_refusals();
	test_load();
	return done_testing();
}
