/* The FUSE side: the tree layout, modes and times from certificate
 * attributes, read-only everywhere.  Knows nothing of HTTP or JSON. */
#ifndef KVFS_FS_H
#define KVFS_FS_H

#include "cache.h"
#include "config.h"

/* Background work of the daemon (token refresh): start() runs once in the
 * process that serves the mount, after it daemonized and before the first
 * request; stop() runs once the FUSE loop has ended.  A failing start()
 * unmounts.  Set before kvfs_fs_main(); NULL: nothing. */
struct kvfs_fs_hooks {
	int (*start)(void *data);
	void (*stop)(void *data);
	void *data;
};
void kvfs_fs_set_hooks(const struct kvfs_fs_hooks *h);

/* What serves .kvfs/ (control.h); NULL: no .kvfs/.  Set before
 * kvfs_fs_main(). */
struct kvfs_control;
void kvfs_fs_set_control(struct kvfs_control *ctl);

/* Mount and serve until unmounted.  Daemonizes unless c->foreground.
 * Returns the process exit code. */
int kvfs_fs_main(const struct kvfs_config *c, struct kvfs_cache *cache);

#endif
