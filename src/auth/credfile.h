/* Reading a credential file (client secret, certificate, password,
 * federated token) the way ssh reads a private key: a regular file, owned
 * by the mounting user or root, not accessible to group or others, at most
 * KVFS_CREDFILE_MAX bytes.  Contents come back in a buffer meant to be
 * wiped.  A command the daemon runs is checked the same way, without being
 * read.  Thread-safe; never logs (refusals go to err->message). */
#ifndef KVFS_AUTH_CREDFILE_H
#define KVFS_AUTH_CREDFILE_H

#include <stddef.h>

#include "../error.h"

#define KVFS_CREDFILE_MAX (64u << 10)

enum {
	/* Strip trailing "\n" / "\r\n" (secrets, passwords, tokens). */
	KVFS_CREDFILE_STRIP_NEWLINES = 1 << 0,
	/* Skip the owner and mode checks and follow a symlink: for the
	 * federated token_file, which Kubernetes projects with mode 0644
	 * behind a symlink. */
	KVFS_CREDFILE_ANY_MODE = 1 << 1,
	/* Never follow a symlink, even with ANY_MODE: for a path named by
	 * a server (the Arc agent's key file). */
	KVFS_CREDFILE_NOFOLLOW = 1 << 2,
	/* A command the daemon runs (on_change=): executable by its owner
	 * and not writable by group or others (readable by them is fine),
	 * of any size. */
	KVFS_CREDFILE_EXECUTABLE = 1 << 3,
	/* A configuration file (rules_file=): readable by group and others,
	 * but not writable by them. */
	KVFS_CREDFILE_READABLE = 1 << 4,
};

/* Read path into a NUL-terminated buffer of *ret_len bytes (the NUL not
 * counted; binary contents may hold NULs).  Free with
 * kvfs_secure_free(buf, len + 1).  Errors: -EPERM (mode or owner),
 * -ELOOP (a symlink), -EINVAL (not a regular file, or empty), -EFBIG,
 * or the -errno of open/read; err->message says which, naming the path. */
int kvfs_credfile_read(const char *path, unsigned flags, char **ret,
		       size_t *ret_len, struct kvfs_error *err);

/* Only the checks of kvfs_credfile_read() on path, without reading it:
 * 0, or its errors (but -EFBIG, for KVFS_CREDFILE_EXECUTABLE) with
 * err->message naming the path. */
int kvfs_credfile_check(const char *path, unsigned flags,
			struct kvfs_error *err);

/* A text credential (client secret, federated token): read with
 * KVFS_CREDFILE_STRIP_NEWLINES added to flags, and refused (-EINVAL) when
 * it holds a NUL byte.  Free with kvfs_secure_free_str(). */
int kvfs_credfile_read_text(const char *path, unsigned flags, char **ret,
			    struct kvfs_error *err);

#endif
