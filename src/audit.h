/* The audit of key reads: every open of a key-bearing file, allowed or
 * denied, becomes one record.  The last KVFS_AUDIT_RECORDS are kept as
 * JSON lines for MOUNTPOINT/.kvfs/audit; each is logged at notice level,
 * at most once a minute per (process, object, result), never suppressing
 * the first (the next line says how many were not logged); and counted in
 * the metrics.  One audit per process (one daemon serves one mount), as
 * the metrics.  Never sees key material.  Thread-safe: one lock, held to
 * store a record, never across a log write. */
#ifndef KVFS_AUDIT_H
#define KVFS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KVFS_AUDIT_RECORDS 1000
/* How long one (process, object, result) logs one line. */
#define KVFS_AUDIT_WINDOW_MS 60000

struct kvfs_audit_record {
	bool allowed;
	const char *path;    /* "certificates/www/privkey.pem" */
	const char *version; /* NULL: not known */
	int64_t pid;
	uid_t uid;
	gid_t gid;
	const char *exe; /* "" or NULL: not known */
	int64_t time;	 /* Unix seconds */
};

/* Record, count and log one open. */
void kvfs_audit_key_open(const struct kvfs_audit_record *rec);

/* The kept records, oldest first, one JSON object a line: malloc'ed,
 * NUL-terminated, *ret_len without the NUL.  0 or -ENOMEM. */
int kvfs_audit_render(char **ret, size_t *ret_len);

/* Everything forgotten (unit tests). */
void kvfs_audit_reset(void);

#endif
