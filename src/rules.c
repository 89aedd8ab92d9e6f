/* The rules of rules_file= and key_readers= (rules.h): parsed line by
 * line into an array that never changes once built, shared by a
 * reference count (the FUSE threads hold it for one request, SIGHUP swaps
 * a new one in).  User and group names are resolved once, here, with
 * getpwnam_r(3) and getgrnam_r(3).  No lock, no log. */
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/credfile.h"
#include "rules.h"
#include "util.h"

/* The longest pattern, and the longest line, in bytes. */
#define PATTERN_MAX 256
#define LINE_MAX_ 4096

struct kvfs_rules {
	unsigned refs;
	struct kvfs_rule *v;
	size_t n;
	struct kvfs_readers key_readers;
	bool has_key_readers;
};

static void readers_clear(struct kvfs_readers *rd)
{
	for (size_t i = 0; i < rd->n; i++)
		free(rd->v[i].exe);
	free(rd->v);
	rd->v = NULL;
	rd->n = 0;
}

static void rules_free(struct kvfs_rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].pattern);
		readers_clear(&rs->v[i].readers);
	}
	free(rs->v);
	readers_clear(&rs->key_readers);
	free(rs);
}

struct kvfs_rules *kvfs_rules_ref(struct kvfs_rules *rs)
{
	if (rs)
		__atomic_add_fetch(&rs->refs, 1, __ATOMIC_RELAXED);
	return rs;
}

void kvfs_rules_unref(struct kvfs_rules *rs)
{
	if (rs && __atomic_sub_fetch(&rs->refs, 1, __ATOMIC_ACQ_REL) == 0)
		rules_free(rs);
}

/* Where a parse is, for its messages. */
struct where {
	const char *name;
	unsigned line; /* 0: key_readers=, which has none */
	struct kvfs_error *err;
};

static int fail(const struct where *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(const struct where *w, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (w->line)
		kvfs_error_set_message(w->err, "%s:%u: %s", w->name, w->line,
				       why);
	else
		kvfs_error_set_message(w->err, "%s: %s", w->name, why);
	if (w->err)
		w->err->local = 1;
	return -EINVAL;
}

/* A decimal id: not (unsigned)-1, which chown(2) takes for "no change". */
static bool parse_id(const char *s, unsigned *ret)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return false;
	*ret = (unsigned)v;
	return true;
}

/* A user name or a uid.  -EINVAL with the reason, -ENOMEM. */
static int resolve_user(const struct where *w, const char *s, unsigned *ret)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (parse_id(s, ret))
		return 0;
	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return fail(w, "no user '%s'", s);
	*ret = (unsigned)res->pw_uid;
	return 0;
}

static int resolve_group(const struct where *w, const char *s, unsigned *ret)
{
	struct group gr, *res = NULL;
	char buf[16384];

	if (parse_id(s, ret))
		return 0;
	if (getgrnam_r(s, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return fail(w, "no group '%s'", s);
	*ret = (unsigned)res->gr_gid;
	return 0;
}

static int parse_mode(const struct where *w, const char *key, const char *s,
		      mode_t *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (*s < '0' || *s > '7' || errno || *end || v > 0777)
		return fail(w,
			    "invalid %s '%s': expected an octal mode such "
			    "as 0440",
			    key, s);
	*ret = (mode_t)v;
	return 0;
}

/* One SPEC of readers= or key_readers=, appended to rd. */
static int parse_reader(const struct where *w, const char *spec,
			struct kvfs_readers *rd, size_t *alloc)
{
	struct kvfs_reader r = {0};
	const char *colon = strchr(spec, ':');
	const char *v = colon ? colon + 1 : NULL;
	size_t klen = colon ? (size_t)(colon - spec) : 0;
	int e;

	if (!colon || !*v)
		return fail(w,
			    "invalid reader '%s': expected user:NAME, uid:N, "
			    "group:NAME, gid:N or exe:/PATH",
			    spec);
	if (klen == 4 && strncmp(spec, "user", 4) == 0) {
		r.kind = KVFS_READER_UID;
		e = resolve_user(w, v, &r.id);
	} else if (klen == 3 && strncmp(spec, "uid", 3) == 0) {
		r.kind = KVFS_READER_UID;
		e = parse_id(v, &r.id) ? 0 : fail(w, "invalid uid '%s'", v);
	} else if (klen == 5 && strncmp(spec, "group", 5) == 0) {
		r.kind = KVFS_READER_GID;
		e = resolve_group(w, v, &r.id);
	} else if (klen == 3 && strncmp(spec, "gid", 3) == 0) {
		r.kind = KVFS_READER_GID;
		e = parse_id(v, &r.id) ? 0 : fail(w, "invalid gid '%s'", v);
	} else if (klen == 3 && strncmp(spec, "exe", 3) == 0) {
		r.kind = KVFS_READER_EXE;
		if (*v != '/')
			return fail(w,
				    "invalid reader '%s': the path must be "
				    "absolute",
				    spec);
		e = 0;
	} else
		return fail(w, "unknown reader '%.*s:'", (int)klen, spec);
	if (e < 0)
		return e;
	if (r.kind == KVFS_READER_EXE) {
		r.exe = strdup(v);
		if (!r.exe)
			return -ENOMEM;
	}
	if (KVFS_GROW(rd->v, rd->n + 1, *alloc) < 0) {
		free(r.exe);
		return -ENOMEM;
	}
	rd->v[rd->n++] = r;
	return 0;
}

/* A comma-separated list of SPECs; empty ones are refused. */
static int parse_readers(const struct where *w, const char *list,
			 struct kvfs_readers *ret)
{
	_cleanup_free_ char *copy = strdup(list);
	struct kvfs_readers rd = {0};
	size_t alloc = 0;
	char *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	if (!*list || list[strlen(list) - 1] == ',' || strstr(list, ",,") ||
	    *list == ',')
		return fail(w, "empty reader in '%s'", list);
	for (char *s = strtok_r(copy, ",", &save); s && r == 0;
	     s = strtok_r(NULL, ",", &save))
		r = parse_reader(w, s, &rd, &alloc);
	if (r < 0) {
		readers_clear(&rd);
		return r;
	}
	*ret = rd;
	return 0;
}

/* The words of one line (NUL-terminated in place, the comment gone) into
 * *rule. */
static int parse_line(const struct where *w, char *line, struct kvfs_rule *rule,
		      bool *ret_empty)
{
	char *save = NULL, *word, *hash = strchr(line, '#');
	int r = 0;

	if (hash)
		*hash = '\0';
	word = strtok_r(line, " \t\r", &save);
	*ret_empty = !word;
	if (!word)
		return 0;
	if (strlen(word) > PATTERN_MAX)
		return fail(w, "pattern longer than %u bytes", PATTERN_MAX);
	if (strchr(word, '='))
		return fail(w,
			    "'%s': a line starts with a pattern such as "
			    "certificates/www",
			    word);
	rule->pattern = strdup(word);
	if (!rule->pattern)
		return -ENOMEM;
	while (r == 0 && (word = strtok_r(NULL, " \t\r", &save))) {
		char *eq = strchr(word, '=');
		const char *v = eq ? eq + 1 : NULL;
		unsigned bit, id;

		if (!eq || !*v)
			return fail(w, "'%s': expected KEY=VALUE", word);
		*eq = '\0';
		if (strcmp(word, "uid") == 0)
			bit = KVFS_RULE_UID;
		else if (strcmp(word, "gid") == 0)
			bit = KVFS_RULE_GID;
		else if (strcmp(word, "mode") == 0)
			bit = KVFS_RULE_MODE;
		else if (strcmp(word, "key_mode") == 0)
			bit = KVFS_RULE_KEY_MODE;
		else if (strcmp(word, "readers") == 0)
			bit = KVFS_RULE_READERS;
		else
			return fail(w, "unknown key '%s'", word);
		if (rule->set & bit)
			return fail(w, "'%s' given twice", word);
		rule->set |= bit;
		switch (bit) {
		case KVFS_RULE_UID:
			r = resolve_user(w, v, &id);
			rule->uid = (uid_t)id;
			break;
		case KVFS_RULE_GID:
			r = resolve_group(w, v, &id);
			rule->gid = (gid_t)id;
			break;
		case KVFS_RULE_MODE:
			r = parse_mode(w, word, v, &rule->mode);
			break;
		case KVFS_RULE_KEY_MODE:
			r = parse_mode(w, word, v, &rule->key_mode);
			break;
		default:
			r = parse_readers(w, v, &rule->readers);
			break;
		}
	}
	return r;
}

int kvfs_rules_parse(const char *name, const char *text, size_t len,
		     const char *key_readers, struct kvfs_rules **ret,
		     struct kvfs_error *err)
{
	struct kvfs_rules *rs = calloc(1, sizeof(*rs));
	struct where w = {.name = name, .err = err};
	size_t alloc = 0, at = 0;
	char line[LINE_MAX_ + 1];
	int r = 0;

	if (!rs)
		return -ENOMEM;
	rs->refs = 1;
	while (r == 0 && at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
		struct kvfs_rule rule = {0};
		bool empty;

		w.line++;
		if (n > LINE_MAX_)
			r = fail(&w, "line longer than %u bytes", LINE_MAX_);
		else if (memchr(text + at, '\0', n))
			r = fail(&w, "a NUL byte");
		if (r < 0)
			break;
		memcpy(line, text + at, n);
		line[n] = '\0';
		at += n + 1;
		r = parse_line(&w, line, &rule, &empty);
		if (r == 0 && !empty && KVFS_GROW(rs->v, rs->n + 1, alloc) < 0)
			r = -ENOMEM;
		if (r < 0 || empty) {
			free(rule.pattern);
			readers_clear(&rule.readers);
			continue;
		}
		rs->v[rs->n++] = rule;
	}
	if (r == 0 && key_readers) {
		w.name = "key_readers";
		w.line = 0;
		r = parse_readers(&w, key_readers, &rs->key_readers);
		rs->has_key_readers = r == 0;
	}
	if (r < 0) {
		rules_free(rs);
		return r;
	}
	*ret = rs;
	return 0;
}

int kvfs_rules_load(const char *path, const char *key_readers,
		    struct kvfs_rules **ret, struct kvfs_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if (path) {
		r = kvfs_credfile_read(path, KVFS_CREDFILE_READABLE, &text,
				       &len, err);
		if (r < 0)
			return r;
	}
	r = kvfs_rules_parse(path ? path : "rules_file", text ? text : "", len,
			     key_readers, ret, err);
	kvfs_secure_free(text, len + 1);
	return r;
}

const struct kvfs_rule *kvfs_rules_match(const struct kvfs_rules *rs,
					 const char *collection,
					 const char *name)
{
	char path[512];

	if (!rs || !rs->n ||
	    snprintf(path, sizeof(path), "%s/%s", collection, name) >=
		    (int)sizeof(path))
		return NULL;
	for (size_t i = 0; i < rs->n; i++)
		if (fnmatch(rs->v[i].pattern, path, FNM_CASEFOLD) == 0)
			return &rs->v[i];
	return NULL;
}

const struct kvfs_readers *kvfs_rules_readers(const struct kvfs_rules *rs,
					      const struct kvfs_rule *r)
{
	if (r && (r->set & KVFS_RULE_READERS))
		return &r->readers;
	return rs && rs->has_key_readers ? &rs->key_readers : NULL;
}

static bool in_groups(const struct kvfs_rules_caller *c, unsigned gid)
{
	if (c->gid == (gid_t)gid)
		return true;
	for (size_t i = 0; i < c->ngroups; i++)
		if (c->groups[i] == (gid_t)gid)
			return true;
	return false;
}

bool kvfs_rules_allow(const struct kvfs_readers *rd,
		      const struct kvfs_rules_caller *c)
{
	for (size_t i = 0; i < rd->n; i++) {
		const struct kvfs_reader *r = &rd->v[i];

		switch (r->kind) {
		case KVFS_READER_UID:
			if (c->uid == (uid_t)r->id)
				return true;
			break;
		case KVFS_READER_GID:
			if (in_groups(c, r->id))
				return true;
			break;
		case KVFS_READER_EXE:
			if (c->exe && strcmp(c->exe, r->exe) == 0)
				return true;
			break;
		}
	}
	return false;
}
