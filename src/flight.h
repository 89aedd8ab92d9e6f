/* Single-flight: of the callers that need the same thing at the same time,
 * one (the leader) does the work and the others wait for it and share its
 * outcome.  A struct kvfs_flight lives in the caller's object, under the
 * caller's mutex, and signals the caller's condition variable, which must
 * be on CLOCK_MONOTONIC; every call is made with that mutex held, and the
 * leader works with it released.  Only the last result is kept: once a
 * flight ends, the next kvfs_flight_begin_locked() starts a new one.  A waiter
 * never waits past its own deadline (kvfs_now_ms() time, or
 * KVFS_FLIGHT_NO_DEADLINE). */
#ifndef KVFS_FLIGHT_H
#define KVFS_FLIGHT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kvfs_flight {
	bool busy;	     /* a leader is at work */
	unsigned long ended; /* flights ended so far */
	int r;		     /* the result of the last flight that ended */
};

#define KVFS_FLIGHT_NO_DEADLINE INT64_MAX

/* true: no flight was under way, and the caller leads a new one, which it
 * must end with kvfs_flight_end_locked(); false: one is under way. */
bool kvfs_flight_begin_locked(struct kvfs_flight *f);
/* Whether a flight is under way. */
bool kvfs_flight_busy_locked(const struct kvfs_flight *f);
/* The leader's flight ends with result r: every waiter wakes. */
void kvfs_flight_end_locked(struct kvfs_flight *f, pthread_cond_t *cond, int r);
/* Wait for the flight under way to end: 0, with its result in *ret_r
 * (unless NULL), or -ETIMEDOUT when deadline_ms came first.  A flight that
 * ended meanwhile counts even if the next one has begun; its result is
 * that of the last flight that ended.  Without a flight under way, 0 at
 * once with the last result. */
int kvfs_flight_wait_locked(struct kvfs_flight *f, pthread_mutex_t *lock,
			    pthread_cond_t *cond, int64_t deadline_ms,
			    int *ret_r);

#endif
