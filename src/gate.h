/* The gate in front of one origin (one vault): runs a caller's attempts,
 * retries the transient failures with backoff, and keeps a failing origin
 * from being hammered.  While the origin is healthy, requests pass
 * concurrently and untouched.  Once an attempt fails in a way worth a
 * retry (429, 5xx, reset, timeout, broken body), the origin is "failing":
 * no attempt starts before the backoff has passed (Retry-After when the
 * server gave one, at most KVFS_RETRY_AFTER_CAP_MS, else exponential
 * backoff with full jitter), and then
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

/* The longest Retry-After honoured: the vault's backoff ceiling.  Key
 * Vault counts its limits in 10 s windows and its own 429 carries no
 * Retry-After (AZURE.md 3.4), so a longer one is a proxy's or a broken
 * server's, and obeying it would stop the mount for up to an hour. */
#define KVFS_RETRY_AFTER_CAP_MS 60000

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
 * message when the deadline came before any attempt could start.
 * object names the object of the origin the attempt is about (its URL,
 * say; NULL: one and the same for every such call).  An OBJECT verdict is
 * that object's trouble, not the origin's: the caller retries after a
 * backoff of its own within its deadline, and the gate stays as it is for
 * everyone else; only when two different objects answer so in a row,
 * with no success in between, does it count as the origin failing
 * (RETRY). */
int kvfs_gate_run_object(struct kvfs_gate *g, const char *object,
			 int64_t deadline_ms, kvfs_gate_attempt_fn attempt,
			 void *userdata, struct kvfs_error *err);

/* Consecutive failures now (0 when healthy), for tests; .kvfs/ reads
 * them from the metrics (kvfs_metrics_gate()). */
unsigned kvfs_gate_failures(struct kvfs_gate *g);

/* When the next attempt may start (kvfs_now_ms() time): a time in the
 * future while the origin is failing and backing off, else 0. */
int64_t kvfs_gate_next_attempt_ms(struct kvfs_gate *g);

#endif
