/* The FUSE side: the tree layout, modes and times from certificate
 * attributes, read-only everywhere.  Knows nothing of HTTP or JSON. */
#ifndef KVFS_FS_H
#define KVFS_FS_H

#include "cache.h"
#include "config.h"

/* Mount and serve until unmounted.  Daemonizes unless c->foreground.
 * Returns the process exit code. */
int kvfs_fs_main(const struct kvfs_config *c, struct kvfs_cache *cache);

#endif
