/* The per-origin gate: healthy, every caller passes at once; failing, the
 * callers wait for not_before and then go one at a time (the "probe"),
 * each verdict moving the state: OK or FINAL heals it, RETRY counts one
 * more failure and pushes not_before out by Retry-After or by a jittered
 * exponential backoff, LOCAL changes nothing, and OBJECT (one object's
 * trouble) changes nothing either unless the previous OBJECT verdict was
 * about another object: then it counts as RETRY.  One mutex and one
 * condition variable on CLOCK_MONOTONIC; attempts run with the mutex
 * released.  The outage is logged as warnings only once the origin has
 * answered at least once: before that (the start-up listing, in the
 * foreground of mount) each retry is one notice that says when the next
 * attempt comes and when the caller gives up, and the caller prints the
 * one line that matters at the end. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* Too little time left for an attempt to get anywhere. */
#define MIN_ATTEMPT_MS 50
/* An attempt that timed out with less than this to live was cut short by
 * its caller's deadline, not by the origin: it is the caller's failure and
 * does not make the origin fail.  (A reader that a recovery releases with
 * 70 ms left, on a slow host, would otherwise start a new outage.) */
#define FAIR_ATTEMPT_MS 1000
/* While an outage lasts, a warning at most this often. */
#define REPORT_INTERVAL_MS 60000

struct kvfs_gate {
	char *name;
	struct kvfs_backoff policy;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* the state changed */

	unsigned failures;  /* consecutive RETRY verdicts; 0: healthy */
	int64_t not_before; /* kvfs_now_ms(): no attempt starts earlier */
	bool probing;	    /* the one attempt out while failing */
	uint64_t rng;	    /* xorshift64* state, for the jitter */

	bool ever_ok;			    /* the origin has answered once */
	int64_t failing_since, last_report; /* kvfs_now_ms() times */
	unsigned long failed;		    /* attempts failed in this outage */
	/* The object of the last OBJECT verdict since an answer that was
	 * not one (hash; 0: none). */
	uint64_t object_failed;
};

int kvfs_gate_new(const char *name, const struct kvfs_backoff *policy,
		  struct kvfs_gate **ret)
{
	struct kvfs_gate *g;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->name = strdup(name ? name : "?");
	if (!g->name) {
		free(g);
		return -ENOMEM;
	}
	g->policy = policy ? *policy : KVFS_BACKOFF_VAULT;
	g->rng = kvfs_xorshift_seed();

	r = kvfs_cond_init_monotonic(&g->cond);
	if (r < 0) {
		free(g->name);
		free(g);
		return r;
	}
	pthread_mutex_init(&g->lock, NULL);
	*ret = g;
	return 0;
}

void kvfs_gate_free(struct kvfs_gate *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g->name);
	free(g);
}

unsigned kvfs_gate_failures(struct kvfs_gate *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->failures;
	pthread_mutex_unlock(&g->lock);
	return n;
}

int64_t kvfs_gate_next_attempt_ms(struct kvfs_gate *g)
{
	int64_t t;

	pthread_mutex_lock(&g->lock);
	t = g->failures > 0 ? g->not_before : 0;
	pthread_mutex_unlock(&g->lock);
	return t;
}

/* Wait for the right to make an attempt.  0 with *ret_probe telling
 * whether this caller is the one attempt allowed while failing;
 * -ETIMEDOUT when the deadline comes first, with *ret_wait_ms the time
 * that was still to wait (for the message). */
static int gate_enter(struct kvfs_gate *g, int64_t deadline, bool *ret_probe,
		      int64_t *ret_wait_ms)
{
	struct timespec ts;
	int r = 0;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		int64_t now = kvfs_now_ms(), wake;

		if (g->failures == 0) {
			*ret_probe = false;
			break;
		}
		if (!g->probing && now >= g->not_before) {
			g->probing = true;
			*ret_probe = true;
			break;
		}
		/* Waiting for a backoff that ends after the deadline would
		 * only delay the same failure. */
		if (now + MIN_ATTEMPT_MS > deadline ||
		    (!g->probing &&
		     g->not_before + MIN_ATTEMPT_MS > deadline)) {
			*ret_wait_ms =
				g->not_before > now ? g->not_before - now : 0;
			r = -ETIMEDOUT;
			break;
		}
		wake = g->probing ? deadline : g->not_before;
		ts = kvfs_ms_to_timespec(wake);
		(void)pthread_cond_timedwait(&g->cond, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* Record the verdict on an attempt.  The log line is composed under the
 * lock and written after it, so that a slow syslog never holds up the
 * other requests. */
static enum kvfs_verdict gate_leave(struct kvfs_gate *g, bool probe,
				    enum kvfs_verdict v, uint64_t object,
				    const struct kvfs_error *err,
				    int64_t deadline)
{
	struct kvfs_log_deferred line = {0};
	char what[384];
	int64_t now = kvfs_now_ms(), delay;
	int level;

	pthread_mutex_lock(&g->lock);
	if (probe)
		g->probing = false;

	if (v == KVFS_VERDICT_OBJECT) {
		/* Two objects in a row: it is the origin. */
		if (g->object_failed != 0 && g->object_failed != object)
			v = KVFS_VERDICT_RETRY;
		g->object_failed = object;
	} else if (v != KVFS_VERDICT_LOCAL) {
		g->object_failed = 0;
	}

	switch (v) {
	case KVFS_VERDICT_OK:
	case KVFS_VERDICT_FINAL:
		if (g->failures > 0) {
			level = g->ever_ok ? KVFS_LOG_NOTICE : KVFS_LOG_DEBUG;
			kvfs_log_defer(
				&line, NULL, level,
				"vault '%s' answers again after %lld s (%lu "
				"attempts failed)",
				g->name,
				(long long)(now - g->failing_since) / 1000,
				g->failed);
			g->failures = 0;
			g->failed = 0;
			g->not_before = 0;
		}
		g->ever_ok = true;
		break;
	case KVFS_VERDICT_RETRY:
		g->failures++;
		g->failed++;
		/* Retry-After is honoured to the second: never earlier (the
		 * extra millisecond makes up for the truncated clock). */
		if (err && err->retry_after_ms > 0)
			delay = err->retry_after_ms + 1;
		else
			delay = 0;
		if (delay > KVFS_RETRY_AFTER_CAP_MS)
			delay = KVFS_RETRY_AFTER_CAP_MS;
		else if (delay == 0)
			delay = kvfs_backoff_delay_ms(&g->policy, g->failures,
						      kvfs_xorshift(&g->rng));
		if (now + delay > g->not_before)
			g->not_before = now + delay;
		delay = g->not_before - now;

		kvfs_error_describe(err, what, sizeof(what));
		if (g->failures == 1) {
			g->failing_since = now;
			g->last_report = now;
			level = g->ever_ok ? KVFS_LOG_WARNING : KVFS_LOG_DEBUG;
			kvfs_log_defer(
				&line, NULL, level,
				"vault '%s' is failing: %s; retrying in "
				"%lld.%01lld s, cached files are still served",
				g->name, what, (long long)delay / 1000,
				(long long)(delay % 1000) / 100);
		} else if (now - g->last_report >= REPORT_INTERVAL_MS) {
			g->last_report = now;
			level = g->ever_ok ? KVFS_LOG_WARNING : KVFS_LOG_DEBUG;
			kvfs_log_defer(
				&line, NULL, level,
				"vault '%s' still failing after %lld s (%lu "
				"attempts failed): %s; next attempt in %lld s",
				g->name,
				(long long)(now - g->failing_since) / 1000,
				g->failed, what, (long long)delay / 1000);
		} else {
			kvfs_log_defer(
				&line, NULL, KVFS_LOG_DEBUG,
				"vault '%s': %s; failure %u, next attempt in "
				"%lld ms",
				g->name, what, g->failures, (long long)delay);
		}
		/* Never answered yet: nobody waits silently for a retry
		 * that is coming. */
		if (!g->ever_ok && g->not_before + MIN_ATTEMPT_MS <= deadline) {
			kvfs_log_defer(&line, NULL, KVFS_LOG_NOTICE,
				       "%s '%s': %s (attempt %lu, next in "
				       "%lld.%01lld s, giving up in %lld s)",
				       err && err->http_status ? "vault"
							       : "cannot reach",
				       g->name, what, g->failed,
				       (long long)delay / 1000,
				       (long long)(delay % 1000) / 100,
				       (long long)(deadline - now + 999) /
					       1000);
		}
		break;
	case KVFS_VERDICT_LOCAL:
		break;
	case KVFS_VERDICT_OBJECT:
		kvfs_error_describe(err, what, sizeof(what));
		kvfs_log_defer(
			&line, NULL, KVFS_LOG_DEBUG,
			"vault '%s': %s; one object's failure, the vault is "
			"not held back",
			g->name, what);
		break;
	}
	kvfs_metrics_gate(g->failures);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);

	kvfs_log_flush(&line);
	if (v == KVFS_VERDICT_RETRY || v == KVFS_VERDICT_OBJECT)
		kvfs_metrics_error("vault '%s': %s", g->name, what);
	return v;
}

/* Sleep until the monotonic time wake, or return false at once when the
 * deadline leaves no room for an attempt after it. */
static bool sleep_until(int64_t wake, int64_t deadline)
{
	struct timespec ts;

	if (wake + MIN_ATTEMPT_MS > deadline)
		return false;
	ts = kvfs_ms_to_timespec(wake);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
	return true;
}

int kvfs_gate_run_object(struct kvfs_gate *g, const char *object,
			 int64_t deadline_ms, kvfs_gate_attempt_fn attempt,
			 void *userdata, struct kvfs_error *err)
{
	uint64_t id = object ? kvfs_fnv1a(object, false) | 1 : 1;
	unsigned own = 0; /* OBJECT verdicts of this call */
	bool tried = false;
	int r = -ETIMEDOUT;

	for (;;) {
		enum kvfs_verdict v = KVFS_VERDICT_LOCAL;
		int64_t wait_ms = 0, left;
		bool probe = false;
		int e;

		e = gate_enter(g, deadline_ms, &probe, &wait_ms);
		left = deadline_ms - kvfs_now_ms();
		if (e == 0 && left < MIN_ATTEMPT_MS) {
			gate_leave(g, probe, KVFS_VERDICT_LOCAL, id, NULL,
				   deadline_ms);
			e = -ETIMEDOUT;
		}
		if (e < 0) {
			/* The last attempt's error says more than "gave
			 * up". */
			if (tried)
				return r;
			kvfs_error_clear(err);
			if (err)
				err->not_sent = 1;
			if (wait_ms > 0)
				kvfs_error_set_message(
					err,
					"not sent: the vault is failing and "
					"the next attempt is %lld s away",
					(long long)(wait_ms + 999) / 1000);
			else
				kvfs_error_set_message(err,
						       "not sent before the "
						       "deadline");
			return -ETIMEDOUT;
		}

		if (tried)
			kvfs_metrics_add(KVFS_COUNTER_RETRIES, 1);
		r = attempt(userdata, (long)left, err, &v);
		if (v == KVFS_VERDICT_RETRY && r == -ETIMEDOUT &&
		    left < FAIR_ATTEMPT_MS)
			v = KVFS_VERDICT_LOCAL;
		tried = true;
		v = gate_leave(g, probe, v, id, err, deadline_ms);
		if (v == KVFS_VERDICT_OBJECT) {
			uint64_t rnd;

			pthread_mutex_lock(&g->lock);
			rnd = kvfs_xorshift(&g->rng);
			pthread_mutex_unlock(&g->lock);
			if (!sleep_until(kvfs_now_ms() + kvfs_backoff_delay_ms(
								 &g->policy,
								 ++own, rnd),
					 deadline_ms))
				return r;
			continue;
		}
		if (v != KVFS_VERDICT_RETRY)
			return r;
	}
}
