/* The single-flight primitive with real threads: of N callers one leads
 * and the others get its result, a failure included; a flight that ended
 * lets the next caller lead a new one; a waiter gives up at its deadline
 * while the flight goes on, and sees the end of its flight even when the
 * next one has begun by the time it runs.  Outcomes and counts only: no
 * assertion on how long anything took. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "flight.h"
#include "tap.h"
#include "util.h"

#define NTHREADS 8

struct shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kvfs_flight flight;
	int result;  /* what the leader's work returns */
	int works;   /* times the work was done */
	int leaders; /* callers that led */
	int waiting; /* callers in kvfs_flight_wait_locked() */
	int64_t wait_deadline;
};

struct caller {
	struct shared *sh;
	bool led;
	int wait_ret; /* kvfs_flight_wait_locked()'s return, waiters only */
	int r;	      /* the result this caller got */
};

static void shared_init(struct shared *sh, int result)
{
	*sh = (struct shared){.result = result,
			      .wait_deadline = KVFS_FLIGHT_NO_DEADLINE};
	pthread_mutex_init(&sh->lock, NULL);
	if (kvfs_cond_init_monotonic(&sh->cond) < 0) {
		puts("Bail out! cannot make a monotonic condition variable");
		exit(1);
	}
}

static void shared_destroy(struct shared *sh)
{
	pthread_cond_destroy(&sh->cond);
	pthread_mutex_destroy(&sh->lock);
}

/* Until n callers wait (the lock is taken and released meanwhile). */
static void wait_for_waiters(struct shared *sh, int n)
{
	pthread_mutex_lock(&sh->lock);
	while (sh->waiting < n) {
		pthread_mutex_unlock(&sh->lock);
		usleep(1000);
		pthread_mutex_lock(&sh->lock);
	}
	pthread_mutex_unlock(&sh->lock);
}

/* One caller: lead and do the work once every other caller waits, or
 * wait for the leader. */
static void *caller_run(void *p)
{
	struct caller *c = p;
	struct shared *sh = c->sh;

	pthread_mutex_lock(&sh->lock);
	if (kvfs_flight_begin_locked(&sh->flight)) {
		c->led = true;
		sh->leaders++;
		pthread_mutex_unlock(&sh->lock);
		wait_for_waiters(sh, NTHREADS - 1);
		pthread_mutex_lock(&sh->lock);
		sh->works++;
		c->r = sh->result;
		kvfs_flight_end_locked(&sh->flight, &sh->cond, c->r);
	} else {
		sh->waiting++;
		c->wait_ret = kvfs_flight_wait_locked(&sh->flight, &sh->lock,
						      &sh->cond,
						      sh->wait_deadline, &c->r);
		sh->waiting--;
	}
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

/* NTHREADS callers at once; returns how many waiters got result. */
static int run_callers(struct shared *sh, int result)
{
	struct caller c[NTHREADS];
	pthread_t t[NTHREADS];
	int got = 0;

	for (int i = 0; i < NTHREADS; i++) {
		c[i] = (struct caller){.sh = sh, .wait_ret = 1, .r = 1};
		pthread_create(&t[i], NULL, caller_run, &c[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NTHREADS; i++)
		if (!c[i].led && c[i].wait_ret == 0 && c[i].r == result)
			got++;
	return got;
}

static void test_one_leader(void)
{
	struct shared sh;

	shared_init(&sh, 42);
	sh.wait_deadline = kvfs_now_ms() + 600000;
	is_int(run_callers(&sh, 42), NTHREADS - 1,
	       "every waiter gets the leader's result");
	is_int(sh.leaders, 1, "one caller led");
	is_int(sh.works, 1, "the work was done once");
	ok(!kvfs_flight_busy_locked(&sh.flight), "no flight under way after");
	shared_destroy(&sh);
}

static void test_failure(void)
{
	struct shared sh;

	shared_init(&sh, -EIO);
	is_int(run_callers(&sh, -EIO), NTHREADS - 1,
	       "a failure reaches every waiter (no deadline)");
	is_int(sh.works, 1, "the failing work was done once");
	shared_destroy(&sh);
}

static void test_next_flight(void)
{
	struct shared sh;
	int r = 1;

	shared_init(&sh, 0);
	pthread_mutex_lock(&sh.lock);
	ok(kvfs_flight_begin_locked(&sh.flight), "the first caller leads");
	ok(kvfs_flight_busy_locked(&sh.flight), "a flight is under way");
	ok(!kvfs_flight_begin_locked(&sh.flight), "the second does not");
	kvfs_flight_end_locked(&sh.flight, &sh.cond, -ENOENT);
	ok(!kvfs_flight_busy_locked(&sh.flight), "it ended");
	is_int(kvfs_flight_wait_locked(&sh.flight, &sh.lock, &sh.cond,
				       KVFS_FLIGHT_NO_DEADLINE, &r),
	       0, "nothing under way: no wait");
	is_int(r, -ENOENT, "and the last result");
	ok(kvfs_flight_begin_locked(&sh.flight),
	   "after the end, the next caller leads a new flight");
	kvfs_flight_end_locked(&sh.flight, &sh.cond, 0);
	pthread_mutex_unlock(&sh.lock);
	is_int(run_callers(&sh, 0), NTHREADS - 1,
	       "and a third flight is shared again");
	is_int(sh.works, 1, "with one work");
	shared_destroy(&sh);
}

struct waiter {
	struct shared *sh;
	int64_t deadline;
	int wait_ret;
	int r;
	int works_seen; /* the leader's works when the wait returned */
};

static void *waiter_run(void *p)
{
	struct waiter *w = p;
	struct shared *sh = w->sh;

	pthread_mutex_lock(&sh->lock);
	sh->waiting++;
	w->wait_ret = kvfs_flight_wait_locked(&sh->flight, &sh->lock, &sh->cond,
					      w->deadline, &w->r);
	w->works_seen = sh->works;
	sh->waiting--;
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

/* A flight that the test leads itself, from the main thread. */
static void flight_under_way(struct shared *sh)
{
	shared_init(sh, 0);
	pthread_mutex_lock(&sh->lock);
	(void)kvfs_flight_begin_locked(&sh->flight);
	pthread_mutex_unlock(&sh->lock);
}

static void test_deadline(void)
{
	struct shared sh;
	struct waiter w;
	pthread_t t;

	flight_under_way(&sh);

	/* The leader never ends while the waiter waits. */
	w = (struct waiter){.sh = &sh, .deadline = kvfs_now_ms() + 50, .r = 1};
	pthread_create(&t, NULL, waiter_run, &w);
	pthread_join(t, NULL);
	is_int(w.wait_ret, -ETIMEDOUT, "a waiter gives up at its deadline");
	is_int(w.r, 1, "and gets no result");
	pthread_mutex_lock(&sh.lock);
	ok(kvfs_flight_busy_locked(&sh.flight), "the flight goes on");
	is_int(kvfs_flight_wait_locked(&sh.flight, &sh.lock, &sh.cond,
				       kvfs_now_ms() - 1, NULL),
	       -ETIMEDOUT, "a deadline already past: no wait at all");
	kvfs_flight_end_locked(&sh.flight, &sh.cond, -EACCES);
	pthread_mutex_unlock(&sh.lock);
	shared_destroy(&sh);
}

static void test_ended_then_begun(void)
{
	struct shared sh;
	struct waiter w;
	pthread_t t;

	flight_under_way(&sh);

	w = (struct waiter){.sh = &sh,
			    .deadline = kvfs_now_ms() + 600000,
			    .wait_ret = 1,
			    .r = 1};
	pthread_create(&t, NULL, waiter_run, &w);
	wait_for_waiters(&sh, 1);
	/* The flight ends and the next begins before the waiter runs. */
	pthread_mutex_lock(&sh.lock);
	sh.works++;
	kvfs_flight_end_locked(&sh.flight, &sh.cond, 7);
	ok(kvfs_flight_begin_locked(&sh.flight), "a new flight begins");
	pthread_mutex_unlock(&sh.lock);
	pthread_join(t, NULL);
	is_int(w.wait_ret, 0, "the waiter sees its flight's end");
	is_int(w.r, 7, "with its result");
	is_int(w.works_seen, 1, "and does not wait for the next flight");
	pthread_mutex_lock(&sh.lock);
	kvfs_flight_end_locked(&sh.flight, &sh.cond, 0);
	pthread_mutex_unlock(&sh.lock);
	shared_destroy(&sh);
}

int main(void)
{
	test_one_leader();
	test_failure();
	test_next_flight();
	test_deadline();
	test_ended_then_begun();
	return done_testing();
}
