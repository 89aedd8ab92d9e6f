/* The FUSE side: the operations over the tree (tree.h), read-only
 * everywhere, and what the kernel must forget after a revalidation.
 * Knows nothing of HTTP or JSON.  main.c owns the mount's life: it
 * mounts, daemonizes and starts the threads around these calls. */
#ifndef KVFS_FS_H
#define KVFS_FS_H

#include "cache.h"
#include "config.h"
#include "control.h"
#include "rules.h"

struct fuse;
struct kvfs_fs;
struct kvfs_kernel;
struct kvfs_onchange;

/* fuse_new() with the operations of the tree and c's FUSE options,
 * serving cache, counting the opens through the page cache in kernel
 * (the one the cache reports its changes to), .kvfs/ from control
 * (NULL: no .kvfs/), and telling onchange (NULL: none) of each change
 * once the kernel was told; all five are borrowed and must outlive it.
 * mount_time (kvfs_wall_now() seconds) is the times of / and .kvfs/.  Logs
 * why it failed. */
int kvfs_fs_new(const struct kvfs_config *c, struct kvfs_cache *cache,
		struct kvfs_kernel *kernel, struct kvfs_control *control,
		int64_t mount_time, struct kvfs_onchange *onchange,
		struct kvfs_fs **ret);
/* fuse_destroy(), then the handles the kernel never released (it drops
 * the RELEASE of files closed as the mount goes away).  NULL: nothing. */
void kvfs_fs_free(struct kvfs_fs *fs);

/* Put rules (NULL: none) in force from the next request on, taking over
 * its reference; the requests under way finish with the old ones.  Once
 * rules were in force, the kernel is told to drop the owners and modes it
 * holds of every object: call it then from no FUSE request. */
void kvfs_fs_set_rules(struct kvfs_fs *fs, struct kvfs_rules *rules);

/* The FUSE instance, for fuse_mount(), fuse_get_session() and
 * fuse_unmount(). */
struct fuse *kvfs_fs_fuse(struct kvfs_fs *fs);

/* Serve requests on libfuse's worker threads until unmounted:
 * fuse_loop_mt()'s result (0: unmounted; > 0: the signal that asked to
 * stop; -errno: the loop failed). */
int kvfs_fs_loop(struct kvfs_fs *fs);

/* kvfs_reval_ops.invalidate, data the kvfs_fs: make the kernel forget the
 * attributes and page cache of what c concerns, then hand c to the
 * on_change= runner (the first time only: again, it is no new change).
 * Never from a request handler (that can
 * deadlock). */
void kvfs_fs_invalidate(void *data, const struct kvfs_change *c, bool again);

/* After each revalidation, on its thread: with kernel_cache=, make the
 * kernel read again what changed without a change of the vault (the
 * control files, the objects the clock opened or closed). */
void kvfs_fs_revalidated(struct kvfs_fs *fs);

#endif
