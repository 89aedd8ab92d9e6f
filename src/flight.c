/* Single-flight over the caller's mutex and condition variable (see
 * flight.h).  A waiter remembers how many flights had ended when it began
 * to wait, so it sees the end of its flight even when the next flight has
 * begun by the time it runs again. */
#include <errno.h>
#include <time.h>

#include "flight.h"
#include "util.h"

bool kvfs_flight_begin_locked(struct kvfs_flight *f)
{
	if (f->busy)
		return false;
	f->busy = true;
	return true;
}

bool kvfs_flight_busy_locked(const struct kvfs_flight *f)
{
	return f->busy;
}

void kvfs_flight_end_locked(struct kvfs_flight *f, pthread_cond_t *cond, int r)
{
	f->busy = false;
	f->r = r;
	f->ended++;
	pthread_cond_broadcast(cond);
}

int kvfs_flight_wait_locked(struct kvfs_flight *f, pthread_mutex_t *lock,
			    pthread_cond_t *cond, int64_t deadline_ms,
			    int *ret_r)
{
	unsigned long ended = f->ended;
	struct timespec ts = kvfs_ms_to_timespec(deadline_ms);

	while (f->busy && f->ended == ended) {
		if (deadline_ms == KVFS_FLIGHT_NO_DEADLINE)
			pthread_cond_wait(cond, lock);
		else if (kvfs_now_ms() >= deadline_ms)
			return -ETIMEDOUT;
		else
			(void)pthread_cond_timedwait(cond, lock, &ts);
	}
	if (ret_r)
		*ret_r = f->r;
	return 0;
}
