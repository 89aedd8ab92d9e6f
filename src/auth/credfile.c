/* Credential files, read like ssh reads a private key: open without
 * following a symlink, then check the opened file itself (fstat), so that
 * nothing can be swapped between the check and the read.  Refusals are
 * worded like ssh's so an administrator recognises them.  Thread-safe;
 * never logs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/credfile.h"
#include "util.h"

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

/* A path that names nothing may be the secret itself, put in the option
 * by mistake: show the directories that exist, then the first three
 * characters of the rest and how long the rest is. */
static void redacted_path(const char *path, char *buf, size_t n)
{
	size_t len = strlen(path), dir = 0;
	struct stat st;

	for (size_t i = 0; i < len; i++) {
		char part[4096];

		if (path[i] != '/' || i + 1 >= sizeof(part))
			continue;
		memcpy(part, path, i + 1);
		part[i + 1] = '\0';
		if (stat(part, &st) < 0 || !S_ISDIR(st.st_mode))
			break;
		dir = i + 1;
	}
	snprintf(buf, n, "'%.*s%.3s\xe2\x80\xa6' (%zu characters not shown)",
		 (int)dir, path, path + dir, len - dir > 3 ? len - dir - 3 : 0);
}

static int check_file(const char *path, const struct stat *st, unsigned flags,
		      struct kvfs_error *err)
{
	if (S_ISLNK(st->st_mode)) {
		/* O_PATH | O_NOFOLLOW opens the link itself */
		kvfs_error_set_message(
			err,
			"'%s' is a symbolic link; give the path of the file "
			"itself",
			path);
		return -ELOOP;
	}
	if (!S_ISREG(st->st_mode)) {
		kvfs_error_set_message(err, "'%s' is not a regular file", path);
		return -EINVAL;
	}
	if (!(flags & KVFS_CREDFILE_ANY_MODE)) {
		uid_t euid = geteuid();

		if (st->st_uid != euid && st->st_uid != 0) {
			kvfs_error_set_message(
				err,
				"'%s' is owned by uid %u; it must be owned by "
				"uid %u or root",
				path, (unsigned)st->st_uid, (unsigned)euid);
			return -EPERM;
		}
		if ((flags &
		     (KVFS_CREDFILE_EXECUTABLE | KVFS_CREDFILE_READABLE)) &&
		    (st->st_mode & 022)) {
			kvfs_error_set_message(
				err,
				"permissions %04o for '%s' are too open; it "
				"must not be writable by group or others",
				(unsigned)(st->st_mode & 07777), path);
			return -EPERM;
		}
		if ((flags & KVFS_CREDFILE_EXECUTABLE) &&
		    !(st->st_mode & S_IXUSR)) {
			kvfs_error_set_message(
				err, "'%s' is not executable (mode %04o)", path,
				(unsigned)(st->st_mode & 07777));
			return -EACCES;
		}
		if (!(flags &
		      (KVFS_CREDFILE_EXECUTABLE | KVFS_CREDFILE_READABLE)) &&
		    (st->st_mode & 077)) {
			kvfs_error_set_message(
				err,
				"UNPROTECTED PRIVATE KEY FILE: permissions "
				"%04o for '%s' are too open; it must not be "
				"readable by group or others",
				(unsigned)(st->st_mode & 07777), path);
			return -EPERM;
		}
	}
	if (!(flags & KVFS_CREDFILE_EXECUTABLE) &&
	    st->st_size > (off_t)KVFS_CREDFILE_MAX) {
		kvfs_error_set_message(err, "'%s' is larger than %u KiB", path,
				       KVFS_CREDFILE_MAX >> 10);
		return -EFBIG;
	}
	return 0;
}

/* Open path (oflags, and O_NOFOLLOW as flags ask) and check the file
 * opened: the descriptor in *ret_fd. */
static int open_checked(const char *path, unsigned flags, int oflags,
			int *ret_fd, struct kvfs_error *err)
{
	_cleanup_(closep) int fd = -1;
	struct stat st;
	int r;

	if (!path || !*path) {
		kvfs_error_set_message(err, "no credential file given");
		return -EINVAL;
	}
	if (!(flags & KVFS_CREDFILE_ANY_MODE) ||
	    (flags & KVFS_CREDFILE_NOFOLLOW))
		oflags |= O_NOFOLLOW;

	fd = open(path, oflags);
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP && (oflags & O_NOFOLLOW))
			kvfs_error_set_message(
				err,
				"'%s' is a symbolic link; give the path of the "
				"file itself",
				path);
		else if (r == -ENOENT || r == -ENOTDIR || r == -ENAMETOOLONG) {
			char shown[128];

			redacted_path(path, shown, sizeof(shown));
			kvfs_error_set_message(err, "cannot open %s: %s", shown,
					       strerror(-r));
		} else
			kvfs_error_set_message(err, "cannot open '%s': %s",
					       path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		kvfs_error_set_message(err, "cannot stat '%s': %s", path,
				       strerror(-r));
		return r;
	}
	r = check_file(path, &st, flags, err);
	if (r < 0)
		return r;
	*ret_fd = fd;
	fd = -1;
	return 0;
}

static int read_file(const char *path, unsigned flags, char **ret,
		     size_t *ret_len, struct kvfs_error *err)
{
	_cleanup_(closep) int fd = -1;
	char *buf;
	size_t len = 0, cap;
	int r;

	r = open_checked(path, flags,
			 O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, &fd,
			 err);
	if (r < 0)
		return r;

	/* One byte more than allowed, to see a file that grew meanwhile. */
	cap = KVFS_CREDFILE_MAX + 1;
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			kvfs_secure_free(buf, cap + 1);
			kvfs_error_set_message(err, "cannot read '%s': %s",
					       path, strerror(-r));
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap)
			break;
	}
	if (len > KVFS_CREDFILE_MAX) {
		kvfs_secure_free(buf, cap + 1);
		kvfs_error_set_message(err, "'%s' is larger than %u KiB", path,
				       KVFS_CREDFILE_MAX >> 10);
		return -EFBIG;
	}
	buf[len] = '\0';

	if (flags & KVFS_CREDFILE_STRIP_NEWLINES)
		while (len > 0 &&
		       (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';

	if (len == 0) {
		kvfs_secure_free(buf, cap + 1);
		kvfs_error_set_message(err, "'%s' is empty", path);
		return -EINVAL;
	}

	/* Shrink by copying, and wipe the big buffer. */
	{
		char *out = malloc(len + 1);

		if (!out) {
			kvfs_secure_free(buf, cap + 1);
			return -ENOMEM;
		}
		memcpy(out, buf, len + 1);
		kvfs_secure_free(buf, cap + 1);
		*ret = out;
		*ret_len = len;
	}
	return 0;
}

/* Every refusal is about the file: the top line names it, not a server. */
int kvfs_credfile_read(const char *path, unsigned flags, char **ret,
		       size_t *ret_len, struct kvfs_error *err)
{
	int r = read_file(path, flags, ret, ret_len, err);

	if (r < 0 && r != -ENOMEM && err)
		err->local = 1;
	return r;
}

int kvfs_credfile_check(const char *path, unsigned flags,
			struct kvfs_error *err)
{
	_cleanup_(closep) int fd = -1;
	int r;

	/* O_PATH: a command need not be readable to be run. */
	r = open_checked(path, flags, O_PATH | O_CLOEXEC, &fd, err);
	if (r < 0 && r != -ENOMEM && err)
		err->local = 1;
	return r;
}

int kvfs_credfile_read_text(const char *path, unsigned flags, char **ret,
			    struct kvfs_error *err)
{
	char *s;
	size_t len;
	int r;

	r = kvfs_credfile_read(path, flags | KVFS_CREDFILE_STRIP_NEWLINES, &s,
			       &len, err);
	if (r < 0)
		return r;
	if (strlen(s) != len) {
		kvfs_secure_free(s, len + 1);
		kvfs_error_set_message(err, "'%s' holds a NUL byte", path);
		if (err)
			err->local = 1;
		return -EINVAL;
	}
	*ret = s;
	return 0;
}
