/* The revalidation thread.  It sleeps in poll() on an eventfd until the next
 * revalidation is due or someone writes to the eventfd (SIGHUP, or the stop
 * at unmount), revalidates through the cache (which holds the single flight
 * and the stale-on-error state, and reports the changes to the kernel
 * module), then hands the changes the kernel module keeps to the callback,
 * and tells ops->reloading / ops->revalidated around it.  A
 * change that waits for open files to close is looked at again every
 * WAITING_MS.  Each list page of a revalidation may take at most
 * min(deadline=, refresh=) seconds: a background listing must not sit in the
 * vault's backoff for longer than its own period, nor hold up the unmount. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "reval.h"
#include "util.h"

/* How often a change that waits for open files is looked at again. */
#define WAITING_MS 100

struct kvfs_reval {
	const struct kvfs_config *config;
	struct kvfs_cache *cache;
	struct kvfs_kernel *kernel; /* NULL: no changes to hand over */
	struct kvfs_reval_ops ops;
	int efd; /* counts triggers; the stop writes to it too */
	pthread_t thread;
	bool started;
	int stop;     /* atomic */
	uint64_t rng; /* xorshift64* state; the thread's own */
};

int64_t kvfs_reval_delay_ms(unsigned refresh_s, bool first, uint64_t rnd)
{
	uint64_t period = (uint64_t)(refresh_s ? refresh_s : 1) * 1000;

	if (first)
		return (int64_t)(rnd % period);
	/* 0.8 to 1.2 periods, both ends included. */
	return (int64_t)(period * 4 / 5 + rnd % (period * 2 / 5 + 1));
}

int kvfs_reval_new(const struct kvfs_config *c, struct kvfs_cache *cache,
		   struct kvfs_kernel *kernel, const struct kvfs_reval_ops *ops,
		   struct kvfs_reval **ret)
{
	struct kvfs_reval *r;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->config = c;
	r->cache = cache;
	r->kernel = kernel;
	if (ops)
		r->ops = *ops;
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		int e = errno;

		free(r);
		return -e;
	}
	r->rng = kvfs_xorshift_seed();
	*ret = r;
	return 0;
}

void kvfs_reval_trigger(struct kvfs_reval *r)
{
	uint64_t one = 1;
	int saved = errno;

	/* Full only after 2^64 - 2 triggers: nothing to do then. */
	if (write(r->efd, &one, sizeof(one)) < 0) {
	}
	errno = saved;
}

static void ignore_change(void *data, const struct kvfs_change *c, bool again)
{
}

static void revalidate(struct kvfs_reval *r)
{
	unsigned budget_s = r->config->deadline < r->config->refresh
				    ? r->config->deadline
				    : r->config->refresh;
	struct kvfs_error err;
	int64_t t0 = kvfs_now_ms();
	int e;

	kvfs_error_clear(&err);
	/* The cache logs the failure that matters (once per outage). */
	e = kvfs_cache_revalidate(r->cache, budget_s ? budget_s : 1, &err);
	log_debug("revalidation %s in %lld ms", e < 0 ? "failed" : "done",
		  (long long)(kvfs_now_ms() - t0));
}

static void *reval_main(void *data)
{
	struct kvfs_reval *r = data;
	int64_t next;
	size_t waiting = 0;
	sigset_t all;

	/* Signals go to the other threads: poll() here is never cut short
	 * by one, and the handlers never run on this stack. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	next = kvfs_now_ms() + kvfs_reval_delay_ms(r->config->refresh, true,
						   kvfs_xorshift(&r->rng));
	for (;;) {
		struct pollfd pfd = {.fd = r->efd, .events = POLLIN};
		int64_t wait = next - kvfs_now_ms();
		bool asked = false, due;
		uint64_t n;

		if (wait < 0)
			wait = 0;
		if (waiting > 0 && wait > WAITING_MS)
			wait = WAITING_MS;
		if (wait > INT_MAX)
			wait = INT_MAX;
		if (poll(&pfd, 1, (int)wait) > 0 &&
		    read(r->efd, &n, sizeof(n)) == sizeof(n))
			asked = true;
		if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
			break;
		due = asked || kvfs_now_ms() >= next;
		if (due) {
			if (asked) {
				log_info("revalidating the listings now "
					 "(SIGHUP)");
				if (r->ops.reloading)
					r->ops.reloading(r->ops.data);
			}
			revalidate(r);
			next = kvfs_now_ms() +
			       kvfs_reval_delay_ms(r->config->refresh, false,
						   kvfs_xorshift(&r->rng));
		}
		if (r->kernel)
			waiting = kvfs_kernel_flush(r->kernel,
						    r->ops.invalidate
							    ? r->ops.invalidate
							    : ignore_change,
						    r->ops.data);
		if (due && r->ops.revalidated)
			r->ops.revalidated(r->ops.data, asked);
	}
	return NULL;
}

int kvfs_reval_start(struct kvfs_reval *r)
{
	int e;

	e = pthread_create(&r->thread, NULL, reval_main, r);
	if (e != 0) {
		log_error("cannot start the revalidation thread: %s",
			  strerror(e));
		return -e;
	}
	r->started = true;
	return 0;
}

void kvfs_reval_stop(struct kvfs_reval *r)
{
	if (!r || !r->started)
		return;
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	kvfs_cache_revalidate_stop(r->cache);
	kvfs_reval_trigger(r);
	pthread_join(r->thread, NULL);
	r->started = false;
}

void kvfs_reval_free(struct kvfs_reval *r)
{
	if (!r)
		return;
	kvfs_reval_stop(r);
	close(r->efd);
	free(r);
}
