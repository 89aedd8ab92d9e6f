/* Background revalidation: a thread that re-reads the listing every refresh=
 * seconds (the first time at a random point of the first period, then every
 * refresh= +/- 20 %, so that a fleet of hosts does not come in step) and at
 * once when asked (SIGHUP), then hands the changes the kernel module keeps
 * (kernel.h) to a callback that tells the kernel, at once and again once the
 * files opened before them are closed, and tells the caller before and
 * after each revalidation (systemd's RELOADING=1 / READY=1).  Knows
 * nothing of FUSE.
 * kvfs_reval_trigger() is async-signal-safe; everything else is called from
 * one thread. */
#ifndef KVFS_REVAL_H
#define KVFS_REVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "kernel.h"

struct kvfs_reval;

struct kvfs_reval_ops {
	/* Make the kernel forget what c concerns; runs on the thread.  again:
	 * c was handed over before (kvfs_kernel_flush()). */
	void (*invalidate)(void *data, const struct kvfs_change *c, bool again);
	/* Before a revalidation that kvfs_reval_trigger() asked for; on the
	 * thread.  NULL: nothing. */
	void (*reloading)(void *data);
	/* After each revalidation, once its changes went to invalidate;
	 * asked: kvfs_reval_trigger() asked for it.  On the thread.  NULL:
	 * nothing. */
	void (*revalidated)(void *data, bool asked);
	void *data;
};

/* Before any thread or fork: the wake-up descriptor survives the fork,
 * so that a SIGHUP that comes before the thread starts is not lost.
 * kernel: the changes to hand to ops->invalidate after each
 * revalidation (NULL: none). */
int kvfs_reval_new(const struct kvfs_config *c, struct kvfs_cache *cache,
		   struct kvfs_kernel *kernel, const struct kvfs_reval_ops *ops,
		   struct kvfs_reval **ret);
/* Start the thread (in the process that serves the mount). */
int kvfs_reval_start(struct kvfs_reval *r);
/* Stop and join the thread; a revalidation in flight ends first, within
 * its page budget.  Safe when it was never started. */
void kvfs_reval_stop(struct kvfs_reval *r);
void kvfs_reval_free(struct kvfs_reval *r);

/* Revalidate now (SIGHUP).  Async-signal-safe; triggers that come while
 * one revalidation runs make one more. */
void kvfs_reval_trigger(struct kvfs_reval *r);

/* Milliseconds until the next revalidation: the first (first true) at a
 * point in [0, refresh) seconds, later ones in refresh +/- 20 %.  rnd is
 * a uniformly random 64-bit number. */
int64_t kvfs_reval_delay_ms(unsigned refresh_s, bool first, uint64_t rnd);

#endif
