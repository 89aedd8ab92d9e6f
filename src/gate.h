/* The gate in front of one origin (one vault): runs a caller's attempts,
 * retries the transient failures with backoff, and keeps a failing origin
 * from being hammered.  While the origin is healthy, requests pass
 * concurrently and untouched.  Once an attempt fails in a way worth a
 * retry (429, 5xx, reset, timeout, broken body), the origin is "failing":
 * no attempt starts before the backoff has passed (Retry-After when the
 * server gave one, else exponential backoff with full jitter), and then
 * only one at a time, until one succeeds or gets a final answer.  Every
 * wait is bounded by the caller's deadline; a caller whose deadline comes
 * before the next permitted attempt gives up at once instead of waiting
 * for nothing.  Knows nothing of Azure or JSON.  Logs the outage (once
 * when it starts, at most once a minute while it lasts, once when it
 * ends).  Thread-safe; no lock is held while an attempt runs. */
#ifndef KVFS_GATE_H
#define KVFS_GATE_H

#include <stdint.h>

#include "backoff.h"
#include "error.h"

struct kvfs_gate;

/* name: how the log calls the origin (its URL). */
int kvfs_gate_new(const char *name, const struct kvfs_backoff *policy,
		  struct kvfs_gate **ret);
void kvfs_gate_free(struct kvfs_gate *g);

/* One attempt, given the milliseconds left until the deadline (a bound
 * for its own timeouts).  Returns 0 or -errno, fills err, and says in
 * *ret_verdict what the gate should make of it (kvfs_backoff_classify()
 * for a plain HTTP exchange). */
typedef int (*kvfs_gate_attempt_fn)(void *userdata, long timeout_ms,
				    struct kvfs_error *err,
				    enum kvfs_verdict *ret_verdict);

/* Run attempt through the gate until it succeeds, fails for good, or the
 * deadline (kvfs_now_ms() time) leaves no room for another try.
 * Returns the last attempt's result with its err; -ETIMEDOUT with a
 * message when the deadline came before any attempt could start. */
int kvfs_gate_run(struct kvfs_gate *g, int64_t deadline_ms,
		  kvfs_gate_attempt_fn attempt, void *userdata,
		  struct kvfs_error *err);

/* Consecutive failures now (0 when healthy); for tests and status. */
unsigned kvfs_gate_failures(struct kvfs_gate *g);

#endif
