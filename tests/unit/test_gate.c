/* The per-origin gate with scripted attempts and short policies: retries
 * until success, Retry-After honoured, final and local verdicts not
 * retried, every wait bounded by the deadline (and no wait at all when the
 * backoff ends after it), and one attempt at a time while failing. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "gate.h"
#include "tap.h"
#include "util.h"

struct script {
	int n;			/* attempts so far */
	int retries;		/* RETRY verdicts before the final one */
	enum kvfs_verdict last; /* the verdict after them */
	int retry_after;	/* seconds, on the first RETRY */
	int64_t at[16];		/* when each attempt started */
	long timeout[16];	/* what each attempt was given */
};

static int scripted(void *userdata, long timeout_ms, struct kvfs_error *err,
		    enum kvfs_verdict *ret)
{
	struct script *s = userdata;

	if (s->n < 16) {
		s->at[s->n] = kvfs_now_ms();
		s->timeout[s->n] = timeout_ms;
	}
	kvfs_error_clear(err);
	if (s->n++ < s->retries) {
		err->http_status = 429;
		err->retry_after_ms =
			s->n == 1 ? (int64_t)s->retry_after * 1000 : 0;
		*ret = KVFS_VERDICT_RETRY;
		return -EAGAIN;
	}
	*ret = s->last;
	switch (s->last) {
	case KVFS_VERDICT_OK:
		return 0;
	case KVFS_VERDICT_FINAL:
		err->http_status = 404;
		return -ENOENT;
	default:
		return -EPROTO;
	}
}

static struct kvfs_gate *new_gate(uint32_t base, uint32_t cap)
{
	const struct kvfs_backoff b = {base, cap};
	struct kvfs_gate *g = NULL;

	if (kvfs_gate_new("test", &b, &g) < 0)
		return NULL;
	return g;
}

static void test_retries(void)
{
	struct kvfs_gate *g = new_gate(20, 40);
	struct kvfs_error err;
	struct script s = {.retries = 3, .last = KVFS_VERDICT_OK};
	int64_t t0 = kvfs_now_ms();
	int r;

	r = kvfs_gate_run_object(g, NULL, t0 + 5000, scripted, &s, &err);
	is_int(r, 0, "three 429s, then success");
	is_int(s.n, 4, "four attempts");
	is_int(kvfs_gate_failures(g), 0, "healthy again");
	ok(s.timeout[0] > 4000 && s.timeout[0] <= 5000,
	   "an attempt is told the time left (%ld ms)", s.timeout[0]);
	ok(kvfs_now_ms() - t0 < 1000, "short backoffs stay short");

	s = (struct script){.retries = 0, .last = KVFS_VERDICT_FINAL};
	r = kvfs_gate_run_object(g, NULL, kvfs_now_ms() + 5000, scripted, &s,
				 &err);
	is_int(r, -ENOENT, "a final answer is returned");
	is_int(s.n, 1, "and not retried");

	s = (struct script){.retries = 0, .last = KVFS_VERDICT_LOCAL};
	r = kvfs_gate_run_object(g, NULL, kvfs_now_ms() + 5000, scripted, &s,
				 &err);
	is_int(r, -EPROTO, "a local failure is returned");
	is_int(s.n, 1, "and not retried");
	is_int(kvfs_gate_failures(g), 0, "and does not make the gate fail");
	kvfs_gate_free(g);
}

static void test_retry_after(void)
{
	struct kvfs_gate *g = new_gate(10, 10);
	struct kvfs_error err;
	struct script s = {
		.retries = 1, .last = KVFS_VERDICT_OK, .retry_after = 1};
	int r;

	r = kvfs_gate_run_object(g, NULL, kvfs_now_ms() + 5000, scripted, &s,
				 &err);
	is_int(r, 0, "429 with Retry-After: 1, then success");
	is_int(s.n, 2, "two attempts");
	ok(s.at[1] - s.at[0] >= 1000, "not earlier than Retry-After (%lld ms)",
	   (long long)(s.at[1] - s.at[0]));
	ok(s.at[1] - s.at[0] < 2500, "nor much later");
	kvfs_gate_free(g);
}

static void test_deadline(void)
{
	struct kvfs_gate *g = new_gate(100, 100);
	struct kvfs_error err;
	struct script s = {.retries = 1000, .last = KVFS_VERDICT_OK};
	int64_t t0 = kvfs_now_ms(), dt;
	int r;

	r = kvfs_gate_run_object(g, NULL, t0 + 600, scripted, &s, &err);
	dt = kvfs_now_ms() - t0;
	is_int(r, -EAGAIN, "endless 429s: the last attempt's error");
	is_int(err.http_status, 429, "with its status");
	ok(dt <= 900, "given up by the deadline (%lld ms)", (long long)dt);
	ok(s.n >= 2 && s.n <= 60, "some attempts, not a hot loop (%d)", s.n);
	ok(kvfs_gate_failures(g) > 0, "the gate is failing");

	/* A backoff that ends after the caller's deadline: no wait at all. */
	s = (struct script){
		.retries = 1, .last = KVFS_VERDICT_OK, .retry_after = 5};
	r = kvfs_gate_run_object(g, NULL, kvfs_now_ms() + 2000, scripted, &s,
				 &err);
	is_int(r, -EAGAIN, "429 with Retry-After: 5 and 2 s to go: given up");
	is_int(s.n, 1, "after one attempt");
	t0 = kvfs_now_ms();
	s = (struct script){.retries = 0, .last = KVFS_VERDICT_OK};
	r = kvfs_gate_run_object(g, NULL, t0 + 1000, scripted, &s, &err);
	dt = kvfs_now_ms() - t0;
	is_int(r, -ETIMEDOUT, "next caller: the backoff outlasts its deadline");
	is_int(s.n, 0, "nothing was sent");
	ok(dt < 500, "and it did not wait (%lld ms)", (long long)dt);
	ok(strstr(err.message, "not sent") != NULL, "message: %s", err.message);
	kvfs_gate_free(g);
}

/* Times out, whatever it is given. */
static int timing_out(void *userdata, long timeout_ms, struct kvfs_error *err,
		      enum kvfs_verdict *ret)
{
	int *n = userdata;

	(*n)++;
	usleep((useconds_t)timeout_ms * 1000);
	kvfs_error_clear(err);
	kvfs_error_set_message(err, "timed out after %ld ms", timeout_ms);
	*ret = KVFS_VERDICT_RETRY;
	return -ETIMEDOUT;
}

static void test_short_timeout_is_the_callers(void)
{
	struct kvfs_gate *g = new_gate(10, 10);
	struct kvfs_error err;
	int n = 0, r;

	r = kvfs_gate_run_object(g, NULL, kvfs_now_ms() + 300, timing_out, &n,
				 &err);
	is_int(r, -ETIMEDOUT, "an attempt given 300 ms times out");
	is_int(n, 1, "and is not retried");
	is_int(kvfs_gate_failures(g), 0,
	       "its timeout does not make the origin fail");
	ok(strstr(err.message, "timed out") != NULL, "its error is returned");

	n = 0;
	r = kvfs_gate_run_object(g, NULL, kvfs_now_ms() + 1300, timing_out, &n,
				 &err);
	is_int(r, -ETIMEDOUT, "one given 1.3 s times out too");
	ok(kvfs_gate_failures(g) > 0, "and that makes the origin fail");
	kvfs_gate_free(g);
}

/* One attempt at a time while failing. */
struct crowd {
	struct kvfs_gate *g;
	atomic_int inflight, max_failing, attempts;
	int r[6];
};

static int crowded(void *userdata, long timeout_ms, struct kvfs_error *err,
		   enum kvfs_verdict *ret)
{
	struct crowd *c = userdata;
	bool failing = kvfs_gate_failures(c->g) > 0;
	int n = atomic_fetch_add(&c->inflight, 1) + 1;
	int k = atomic_fetch_add(&c->attempts, 1);

	if (failing && n > atomic_load(&c->max_failing))
		atomic_store(&c->max_failing, n);
	usleep(20000);
	atomic_fetch_sub(&c->inflight, 1);
	kvfs_error_clear(err);
	if (k < 8) {
		err->http_status = 503;
		*ret = KVFS_VERDICT_RETRY;
		return -EAGAIN;
	}
	*ret = KVFS_VERDICT_OK;
	return 0;
}

struct runner {
	struct crowd *c;
	int i;
};

static void *crowd_thread(void *p)
{
	struct runner *ru = p;
	struct kvfs_error err;

	ru->c->r[ru->i] = kvfs_gate_run_object(
		ru->c->g, NULL, kvfs_now_ms() + 10000, crowded, ru->c, &err);
	return NULL;
}

static void test_one_at_a_time(void)
{
	struct crowd c = {.g = new_gate(10, 30)};
	struct script s = {
		.retries = 1, .last = KVFS_VERDICT_OK, .retry_after = 1};
	struct runner ru[6];
	pthread_t t[6];
	struct kvfs_error err;

	/* Make the gate fail first: a 429 with Retry-After: 1 and a deadline
	 * too short for the retry. */
	(void)kvfs_gate_run_object(c.g, NULL, kvfs_now_ms() + 60, scripted, &s,
				   &err);
	ok(kvfs_gate_failures(c.g) > 0, "the gate is failing");

	for (int i = 0; i < 6; i++) {
		ru[i] = (struct runner){&c, i};
		pthread_create(&t[i], NULL, crowd_thread, &ru[i]);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 6; i++)
		is_int(c.r[i], 0, "caller %d got through", i);
	is_int(atomic_load(&c.max_failing), 1,
	       "while failing, one attempt at a time");
	is_int(kvfs_gate_failures(c.g), 0, "healthy at the end");
	kvfs_gate_free(c.g);
}

/* A Retry-After of an hour holds the origin back for the cap only. */
static void test_retry_after_cap(void)
{
	struct kvfs_gate *g = new_gate(10, 10);
	struct kvfs_error err;
	struct script s = {
		.retries = 1, .last = KVFS_VERDICT_OK, .retry_after = 3600};
	int64_t t0 = kvfs_now_ms(), next;
	int r;

	r = kvfs_gate_run_object(g, NULL, t0 + 2000, scripted, &s, &err);
	is_int(r, -EAGAIN, "429 with Retry-After: 3600: given up");
	is_int(s.n, 1, "after one attempt");
	next = kvfs_gate_next_attempt_ms(g) - t0;
	ok(next > KVFS_RETRY_AFTER_CAP_MS - 2000 &&
		   next <= KVFS_RETRY_AFTER_CAP_MS + 1,
	   "next attempt in the cap, not an hour (%lld ms)", (long long)next);
	is_int(KVFS_RETRY_AFTER_CAP_MS, 60000, "the cap is 60 s");
	kvfs_gate_free(g);
}

/* Answers 500 for object "bad", succeeds for the others; counts both. */

struct objects {
	int bad, good;
};

static int one_bad_object(void *userdata, long timeout_ms,
			  struct kvfs_error *err, enum kvfs_verdict *ret)
{
	int *n = userdata;

	(void)timeout_ms;
	(*n)++;
	kvfs_error_clear(err);
	err->http_status = 500;
	*ret = KVFS_VERDICT_OBJECT;
	return -EIO;
}

static int good_object(void *userdata, long timeout_ms, struct kvfs_error *err,
		       enum kvfs_verdict *ret)
{
	int *n = userdata;

	(void)timeout_ms;
	(*n)++;
	kvfs_error_clear(err);
	*ret = KVFS_VERDICT_OK;
	return 0;
}

static void test_one_object_does_not_close_the_gate(void)
{
	struct kvfs_gate *g = new_gate(20, 40);
	struct objects o = {0};
	struct kvfs_error err;
	int64_t t0;
	int r;

	for (int i = 0; i < 5; i++) {
		int before = o.bad;

		r = kvfs_gate_run_object(g, "https://v/certificates/bad",
					 kvfs_now_ms() + 300, one_bad_object,
					 &o.bad, &err);
		is_int(r, -EIO, "the broken object fails (%d)", i);
		ok(o.bad - before >= 2, "retried by its caller (%d attempts)",
		   o.bad - before);
		is_int(kvfs_gate_failures(g), 0, "the gate stays healthy");
		is_int(kvfs_gate_next_attempt_ms(g), 0,
		       "and holds no one back");
		t0 = kvfs_now_ms();
		r = kvfs_gate_run_object(g, "https://v/certificates/good",
					 t0 + 300, good_object, &o.good, &err);
		is_int(r, 0, "another object is read meanwhile");
		ok(kvfs_now_ms() - t0 < 100, "at once");
	}
	is_int(o.good, 5, "one attempt each");

	/* Two different objects failing in a row: the vault is. */
	(void)kvfs_gate_run_object(g, "https://v/certificates/bad",
				   kvfs_now_ms() + 60, one_bad_object, &o.bad,
				   &err);
	is_int(kvfs_gate_failures(g), 0, "one object: still healthy");
	(void)kvfs_gate_run_object(g, "https://v/certificates/other",
				   kvfs_now_ms() + 60, one_bad_object, &o.bad,
				   &err);
	ok(kvfs_gate_failures(g) > 0, "a second object too: failing");
	r = kvfs_gate_run_object(g, "https://v/certificates/good",
				 kvfs_now_ms() + 2000, good_object, &o.good,
				 &err);
	is_int(r, 0, "a success");
	is_int(kvfs_gate_failures(g), 0, "heals it");
	kvfs_gate_free(g);
}

int main(void)
{
	test_retries();
	test_retry_after();
	test_deadline();
	test_short_timeout_is_the_callers();
	test_one_at_a_time();
	test_retry_after_cap();
	test_one_object_does_not_close_the_gate();
	return done_testing();
}
