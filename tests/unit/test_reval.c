/* Unit tests of reval.c: the jittered schedule (the first revalidation
 * somewhere in the first period, later ones at 0.8 to 1.2 periods), and
 * the thread against a cache over a scripted vault: the timer, a trigger
 * (also from a signal handler), triggers coalescing while a listing runs,
 * a change handed to the callback at once and again when the files opened
 * through the page cache before it are closed, and a prompt stop.  The vault
 * is scripted_vault.c, swapped in at link time (-Wl,--wrap). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "kernel.h"
#include "reval.h"
#include "scripted_vault.h"
#include "tap.h"
#include "util.h"

static void set_list_delay(unsigned ms)
{
	pthread_mutex_lock(&fake_lock);
	list_delay_ms = ms;
	pthread_mutex_unlock(&fake_lock);
}

/* A new version of www, the vault's one certificate. */
static void rotate(void)
{
	pthread_mutex_lock(&fake_lock);
	vault_certs[0].updated++;
	pthread_mutex_unlock(&fake_lock);
}

/* Wait up to seconds for *counter (read under fake_lock when lock) to
 * reach want. */
static bool wait_for(int (*get)(void), int want, double seconds)
{
	double until = now_s() + seconds;

	while (now_s() < until) {
		if (get() >= want)
			return true;
		usleep(10 * 1000);
	}
	return get() >= want;
}

static pthread_mutex_t changes_lock = PTHREAD_MUTEX_INITIALIZER;
static int changed_www;

static void on_change(void *data, const struct kvfs_change *c, bool again)
{
	pthread_mutex_lock(&changes_lock);
	if (c->kind == KVFS_CHANGE_CHANGED && strcmp(c->name, "www") == 0)
		changed_www++;
	pthread_mutex_unlock(&changes_lock);
}

static int changes(void)
{
	int n;

	pthread_mutex_lock(&changes_lock);
	n = changed_www;
	pthread_mutex_unlock(&changes_lock);
	return n;
}

static void test_schedule(void)
{
	static const unsigned periods[] = {1, 2, 300, 86400};
	uint64_t st = 42;

	for (size_t p = 0; p < ELEMENTSOF(periods); p++) {
		int64_t ms = (int64_t)periods[p] * 1000;
		int64_t fmin = INT64_MAX, fmax = -1, lmin = INT64_MAX;
		int64_t lmax = -1;
		double lsum = 0;
		bool in = true;
		const int draws = 20000;

		for (int i = 0; i < draws; i++) {
			int64_t f = kvfs_reval_delay_ms(periods[p], true,
							kvfs_xorshift(&st));
			int64_t l = kvfs_reval_delay_ms(periods[p], false,
							kvfs_xorshift(&st));

			in = in && f >= 0 && f < ms && l >= ms * 4 / 5 &&
			     l <= ms * 6 / 5;
			fmin = f < fmin ? f : fmin;
			fmax = f > fmax ? f : fmax;
			lmin = l < lmin ? l : lmin;
			lmax = l > lmax ? l : lmax;
			lsum += (double)l;
		}
		ok(in,
		   "refresh=%u: first in [0, %lld) ms, later in "
		   "[%lld, %lld] ms",
		   periods[p], (long long)ms, (long long)(ms * 4 / 5),
		   (long long)(ms * 6 / 5));
		ok(fmin < ms / 50 && fmax > ms - ms / 50,
		   "refresh=%u: the first spreads over the whole period "
		   "(%lld..%lld ms)",
		   periods[p], (long long)fmin, (long long)fmax);
		ok(lmin < ms * 81 / 100 && lmax > ms * 119 / 100,
		   "refresh=%u: later ones spread over +/- 20 %% "
		   "(%lld..%lld ms)",
		   periods[p], (long long)lmin, (long long)lmax);
		ok(lsum / draws > ms * 0.99 && lsum / draws < ms * 1.01,
		   "refresh=%u: later ones average one period (%.0f ms)",
		   periods[p], lsum / draws);
	}
	is_int(kvfs_reval_delay_ms(10, true, 0), 0, "rnd 0: at once");
	is_int(kvfs_reval_delay_ms(10, true, UINT64_MAX), UINT64_MAX % 10000,
	       "rnd max: within the period");
	is_int(kvfs_reval_delay_ms(10, false, 0), 8000, "rnd 0: 0.8 periods");
	is_int(kvfs_reval_delay_ms(10, false, 4000), 12000,
	       "the top: 1.2 periods");
	is_int(kvfs_reval_delay_ms(10, false, 4001), 8000, "and around");
}

static struct kvfs_reval *signal_reval;

static void on_usr1(int sig)
{
	kvfs_reval_trigger(signal_reval);
}

static void test_timer(struct kvfs_cache *cache, struct kvfs_config *c)
{
	struct kvfs_reval *r = NULL;
	int n = list_count();
	unsigned budget;
	double t0;

	c->refresh = 1;
	is_int(kvfs_reval_new(c, cache, NULL, NULL, &r), 0, "reval created");
	is_int(kvfs_reval_start(r), 0, "and started, refresh=1");
	ok(wait_for(list_count, n + 3, 4.0),
	   "three revalidations within 4 s (at most 1 + 1.2 + 1.2 s)");
	pthread_mutex_lock(&fake_lock);
	budget = last_budget;
	pthread_mutex_unlock(&fake_lock);
	is_int(budget, 1, "each page gets min(deadline, refresh) s");
	t0 = now_s();
	kvfs_reval_stop(r);
	ok(now_s() - t0 < 1.0, "stop joins at once");
	n = list_count();
	usleep(1500 * 1000);
	is_int(list_count() - n, 0, "and nothing runs after it");
	kvfs_reval_free(r);
}

static void test_trigger(struct kvfs_cache *cache, struct kvfs_kernel *kernel,
			 struct kvfs_config *c)
{
	struct kvfs_reval *r = NULL;
	struct kvfs_files *f = NULL;
	bool cacheable = false;
	int n, k;

	/* A first revalidation could come at any time within the hour:
	 * every count below is a lower bound, or allows for one more. */
	c->refresh = 3600;
	is_int(kvfs_reval_new(c, cache, kernel,
			      &(struct kvfs_reval_ops){
				      .invalidate = on_change,
			      },
			      &r),
	       0, "reval created, refresh=3600");
	n = list_count();
	kvfs_reval_trigger(r);
	is_int(kvfs_reval_start(r), 0,
	       "started after a trigger (a SIGHUP before the thread)");
	ok(wait_for(list_count, n + 1, 2.0), "the early trigger is not lost");

	signal_reval = r;
	signal(SIGUSR1, on_usr1);
	n = list_count();
	raise(SIGUSR1);
	ok(wait_for(list_count, n + 1, 2.0), "a trigger from a signal handler");

	/* Triggers during a slow listing: one more listing, not five. */
	wait_for(list_count, n + 1, 2.0);
	usleep(200 * 1000);
	n = list_count();
	set_list_delay(500);
	kvfs_reval_trigger(r);
	usleep(100 * 1000);
	for (int i = 0; i < 5; i++)
		kvfs_reval_trigger(r);
	usleep(1500 * 1000);
	set_list_delay(0);
	k = list_count() - n;
	ok(k >= 2 && k <= 3,
	   "six triggers, five during a listing: %d "
	   "listings",
	   k);

	/* A change waits while www is open through the page cache. */
	is_int(kvfs_cache_files_for(cache, KVFS_COLLECTION_CERTIFICATES, "www",
				    1, 1, &f),
	       0, "www open");
	cacheable = kvfs_kernel_open(kernel, KVFS_COLLECTION_CERTIFICATES,
				     "www", f);
	ok(cacheable, "through the page cache");
	n = changes();
	rotate();
	kvfs_reval_trigger(r);
	ok(wait_for(changes, n + 1, 2.0), "the change goes to the callback");
	usleep(600 * 1000);
	is_int(changes() - n, 1, "once while www is open");
	if (cacheable)
		kvfs_kernel_close(kernel, f);
	kvfs_files_unref(f);
	ok(wait_for(changes, n + 2, 2.0), "and once more when it is closed");

	signal(SIGUSR1, SIG_DFL);
	kvfs_reval_free(r);
	ok(true, "freed while running: stopped and joined");
}

int main(void)
{
	static const struct fake_cert www[] = {{"www", 1}};
	struct kvfs_config config = {
		.deadline = 10,
		.refresh = 1,
		.max_stale = 86400,
		.collections = (1u << KVFS_COLLECTION_COUNT_) - 1};
	struct kvfs_cache *cache = NULL;
	struct kvfs_kernel *kernel = NULL;
	struct kvfs_error err;

	if (!ok(load_leaf(), "fixture pki-leaf.der"))
		return done_testing();
	set_vault(www, ELEMENTSOF(www));

	test_schedule();
	is_int(kvfs_cache_new(&config, NULL, &cache), 0, "cache created");
	is_int(kvfs_kernel_new(&kernel), 0, "kernel module created");
	kvfs_cache_on_change(cache, kvfs_kernel_change, kernel);
	is_int(kvfs_cache_load(cache, &err), 0, "first listing");
	test_timer(cache, &config);
	test_trigger(cache, kernel, &config);
	kvfs_kernel_free(kernel);
	kvfs_cache_free(cache);
	free_leaf();
	return done_testing();
}
