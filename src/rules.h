/* Who owns which object's files, their modes, and who may open their
 * key-bearing files: the lines of rules_file= and the mount-wide
 * key_readers=, parsed into an immutable, refcounted snapshot.  A line is
 * "PATTERN [uid=USER|N] [gid=GROUP|N] [mode=OCTAL] [key_mode=OCTAL]
 * [readers=SPEC,...]": PATTERN an fnmatch(3) glob over
 * "COLLECTION/NAME", without case, as Key Vault compares names; the first
 * line that matches an object is its rule; '#' starts a comment.  A SPEC is
 * user:NAME, uid:N, group:NAME, gid:N or exe:/absolute/path; names are
 * resolved when parsed.  Pure but for that resolution and reading the
 * file: no lock, no log; callable from any thread, a snapshot shared by
 * reference. */
#ifndef KVFS_RULES_H
#define KVFS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

enum kvfs_reader_kind {
	KVFS_READER_UID,
	KVFS_READER_GID, /* any of the caller's groups */
	KVFS_READER_EXE,
};

struct kvfs_reader {
	enum kvfs_reader_kind kind;
	unsigned id; /* uid or gid */
	char *exe;   /* KVFS_READER_EXE: absolute */
};

struct kvfs_readers {
	struct kvfs_reader *v;
	size_t n;
};

/* What a rule sets (the others come from the mount's options). */
enum {
	KVFS_RULE_UID = 1 << 0,
	KVFS_RULE_GID = 1 << 1,
	KVFS_RULE_MODE = 1 << 2,
	KVFS_RULE_KEY_MODE = 1 << 3,
	KVFS_RULE_READERS = 1 << 4,
};

struct kvfs_rule {
	char *pattern;
	unsigned set; /* KVFS_RULE_* */
	uid_t uid;
	gid_t gid;
	mode_t mode;	 /* the public files */
	mode_t key_mode; /* the key-bearing files */
	struct kvfs_readers readers;
};

struct kvfs_rules;

/* Who opens a file, as the rules see them.  exe NULL: unknown, or not a
 * file owned by root and not writable by group or others (then no exe:
 * reader matches). */
struct kvfs_rules_caller {
	uid_t uid;
	gid_t gid;
	const gid_t *groups; /* supplementary */
	size_t ngroups;
	const char *exe;
};

/* Parse text (len bytes, a file called name for the messages) and
 * key_readers (the option's value, NULL: none) into a snapshot with one
 * reference.  -EINVAL with err->message "NAME:LINE: reason" (key_readers'
 * "key_readers: reason"), -ENOMEM. */
int kvfs_rules_parse(const char *name, const char *text, size_t len,
		     const char *key_readers, struct kvfs_rules **ret,
		     struct kvfs_error *err);

/* kvfs_rules_parse() of the file at path (NULL: no rules_file=), read as
 * a credential file is (auth/credfile.h) but readable by anyone.  The
 * credential file errors, or kvfs_rules_parse()'s. */
int kvfs_rules_load(const char *path, const char *key_readers,
		    struct kvfs_rules **ret, struct kvfs_error *err);

struct kvfs_rules *kvfs_rules_ref(struct kvfs_rules *rs);
void kvfs_rules_unref(struct kvfs_rules *rs);

/* The first rule whose pattern matches "collection/name", or NULL. */
const struct kvfs_rule *kvfs_rules_match(const struct kvfs_rules *rs,
					 const char *collection,
					 const char *name);

/* Who may open the key-bearing files of an object whose rule is r (NULL:
 * none): its readers=, else key_readers=, else NULL: whom the mode bits
 * let in. */
const struct kvfs_readers *kvfs_rules_readers(const struct kvfs_rules *rs,
					      const struct kvfs_rule *r);

/* Whether any reader of rd is the caller. */
bool kvfs_rules_allow(const struct kvfs_readers *rd,
		      const struct kvfs_rules_caller *c);

#endif
