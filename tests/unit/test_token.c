/* The token cache (auth.c) against a scripted provider: kvfs_auth_mi_new
 * is replaced at link time (--wrap), so single flight, keeping the old
 * token after a failed refresh, clamping, the background refresher and its
 * prompt stop are tested without a network. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/provider.h"
#include "tap.h"
#include "util.h"

static atomic_int calls;     /* fetches started */
static atomic_int fail;	     /* next fetches fail */
static atomic_long lifetime; /* of the tokens handed out */
static atomic_long delay_ms; /* each fetch takes this long */
static atomic_long sleep_ms; /* a failing fetch then "retries" this long */
static atomic_int cancelled; /* a retry sleep was cut short */
static atomic_long deadline; /* ms a get may wait */
static atomic_int fail_next; /* so many next fetches fail, then succeed */
static atomic_int final;     /* failures are final (401), not transient */
static atomic_llong last_deadline; /* the deadline the provider was given */

static void msleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int scripted_fetch(struct kvfs_auth_provider *p, const char *tenant,
			  const char *resource, int64_t deadline_ms,
			  struct kvfs_token *ret, struct kvfs_error *err)
{
	int n = atomic_fetch_add(&calls, 1) + 1;
	char buf[32];

	atomic_store(&last_deadline, (long long)deadline_ms);
	if (atomic_load(&delay_ms))
		msleep(atomic_load(&delay_ms));
	if (atomic_load(&fail_next) > 0) {
		atomic_fetch_sub(&fail_next, 1);
		kvfs_error_set_message(err, "scripted transient failure");
		err->http_status = 503;
		return -EAGAIN;
	}
	if (atomic_load(&fail) && atomic_load(&final)) {
		kvfs_error_set_message(err, "scripted final failure");
		err->http_status = 401;
		return -EACCES;
	}
	if (atomic_load(&fail)) {
		if (atomic_load(&sleep_ms) &&
		    !kvfs_auth_provider_sleep(p, atomic_load(&sleep_ms))) {
			atomic_store(&cancelled, 1);
			return -ECANCELED;
		}
		kvfs_error_set_message(err, "scripted failure");
		return -EAGAIN;
	}
	snprintf(buf, sizeof(buf), "tok-%d", n);
	ret->access_token = strdup(buf);
	ret->expires_in = atomic_load(&lifetime);
	ret->refresh_in = 0;
	return ret->access_token ? 0 : -ENOMEM;
}

static void scripted_free(struct kvfs_auth_provider *p)
{
	free(p);
}

int __wrap_kvfs_auth_mi_new(const struct kvfs_config *c, struct kvfs_http *h,
			    struct kvfs_auth_provider **ret,
			    struct kvfs_error *err);

int __wrap_kvfs_auth_mi_new(const struct kvfs_config *c, struct kvfs_http *h,
			    struct kvfs_auth_provider **ret,
			    struct kvfs_error *err)
{
	struct kvfs_auth_provider *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->name = "imds";
	p->managed = true;
	p->fetch = scripted_fetch;
	p->free = scripted_free;
	*ret = p;
	return 0;
}

static struct kvfs_auth *new_auth(void)
{
	struct kvfs_config c = {
		.auth = KVFS_AUTH_IMDS,
		.vault_url = "https://myvault.vault.azure.net",
		.default_resource = "https://vault.azure.net",
	};
	struct kvfs_auth *a = NULL;

	atomic_store(&calls, 0);
	atomic_store(&fail, 0);
	atomic_store(&delay_ms, 0);
	atomic_store(&sleep_ms, 0);
	atomic_store(&cancelled, 0);
	atomic_store(&deadline, 10000);
	atomic_store(&fail_next, 0);
	atomic_store(&final, 0);
	if (kvfs_auth_new(&c, NULL, &a) < 0)
		abort();
	return a;
}

static char *get(struct kvfs_auth *a, int *ret_r)
{
	struct kvfs_error err = {0};
	char *t = NULL;
	int r = kvfs_auth_get_token(a, kvfs_now_ms() + atomic_load(&deadline),
				    &t, &err);

	if (ret_r)
		*ret_r = r;
	return r == 0 ? t : NULL;
}

static void is_token(struct kvfs_auth *a, const char *want, const char *what)
{
	int r;
	char *t = get(a, &r);

	is_str(t, want, "%s", what);
	kvfs_secure_free_str(t);
}

struct reader {
	struct kvfs_auth *a;
	pthread_barrier_t *barrier;
	char *token;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	pthread_barrier_wait(rd->barrier);
	rd->token = get(rd->a, NULL);
	return NULL;
}

static void test_basics(void)
{
	struct kvfs_auth *a;

	atomic_store(&lifetime, 3600);
	a = new_auth();
	ok(kvfs_auth_ready(a), "managed identity: ready without a tenant");
	is_str(kvfs_auth_provider_name(a), "imds", "provider name");
	is_str(kvfs_auth_provider_reason(a), "chosen with auth=imds",
	       "reason of an explicit auth=");
	is_token(a, "tok-1", "first token fetched");
	is_token(a, "tok-1", "then served from the cache");
	is_int(atomic_load(&calls), 1, "one fetch for two gets");
	ok(kvfs_auth_expires_at(a) >= kvfs_wall_now() + 3590, "expires_at");
	ok(kvfs_auth_last_refresh(a) >= kvfs_wall_now() - 2, "last_refresh");

	kvfs_auth_invalidate(a, "tok-other");
	is_token(a, "tok-1", "invalidating another token changes nothing");
	kvfs_auth_invalidate(a, "tok-1");
	is_token(a, "tok-2", "invalidating the current one refetches");
	kvfs_auth_free(a);

	atomic_store(&lifetime, 0);
	a = new_auth();
	is_token(a, "tok-1", "a zero lifetime is accepted");
	ok(kvfs_auth_expires_at(a) >= kvfs_wall_now() + 55 &&
		   kvfs_auth_expires_at(a) <= kvfs_wall_now() + 61,
	   "and clamped to 60 s");
	kvfs_auth_free(a);

	atomic_store(&lifetime, 10 * 86400);
	a = new_auth();
	is_token(a, "tok-1", "a ten-day lifetime is accepted");
	ok(kvfs_auth_expires_at(a) <= kvfs_wall_now() + 86400,
	   "and clamped to a day");
	kvfs_auth_free(a);
}

static void test_single_flight(void)
{
	enum { N = 8 };
	struct kvfs_auth *a;
	pthread_barrier_t b;
	pthread_t th[N];
	struct reader rd[N];
	int same = 0;

	atomic_store(&lifetime, 3600);
	a = new_auth();
	atomic_store(&delay_ms, 200);
	pthread_barrier_init(&b, NULL, N);
	for (int i = 0; i < N; i++) {
		rd[i] = (struct reader){.a = a, .barrier = &b};
		pthread_create(&th[i], NULL, reader_main, &rd[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		same += rd[i].token && strcmp(rd[i].token, "tok-1") == 0;
		kvfs_secure_free_str(rd[i].token);
	}
	is_int(atomic_load(&calls), 1, "8 concurrent readers: one fetch");
	is_int(same, N, "all 8 got its token");
	pthread_barrier_destroy(&b);
	kvfs_auth_free(a);
}

static void test_failed_refresh_keeps_token(void)
{
	struct kvfs_auth *a;
	int r;

	atomic_store(&lifetime, 2); /* refresh after 1 s, expires at 1.9 s */
	a = new_auth();
	is_token(a, "tok-1", "short token");
	msleep(1100);
	atomic_store(&fail, 1);
	is_token(a, "tok-1", "refresh due and failing: the old token serves");
	is_int(atomic_load(&calls), 2, "the refresh was tried");
	is_token(a, "tok-1", "again");
	is_int(atomic_load(&calls), 2, "not retried at once (backoff)");
	msleep(1000);
	atomic_store(&deadline, 500);
	free(get(a, &r));
	is_int(r, -EAGAIN,
	       "expired, failing, the next try (2 s) past the "
	       "deadline: the error");
	is_int(atomic_load(&calls), 3, "after one more request");
	atomic_store(&fail, 0);
	free(get(a, &r));
	is_int(r, -EAGAIN, "still backing off: the same error at once");
	is_int(atomic_load(&calls), 3, "without a request");
	atomic_store(&deadline, 10000);
	is_token(a, "tok-4", "recovered, waiting for the backoff");
	kvfs_auth_free(a);
}

static void test_refresher(void)
{
	struct kvfs_auth *a;
	long t0;
	int n;

	atomic_store(&lifetime, 1); /* refreshed every 0.5 s */
	a = new_auth();
	is_token(a, "tok-1", "first token");
	is_int(kvfs_auth_start_refresher(a), 0, "refresher started");
	is_int(kvfs_auth_start_refresher(a), 0, "starting twice is harmless");
	msleep(2300);
	n = atomic_load(&calls);
	ok(n >= 4 && n <= 7, "renewed in the background, nobody asking: %d", n);
	{
		char want[32];

		snprintf(want, sizeof(want), "tok-%d", n);
		is_token(a, want, "a get returns the newest token");
	}
	is_int(atomic_load(&calls), n, "without fetching itself");

	/* A failing refresh whose provider sleeps 10 s between retries:
	 * stop must cut the sleep short. */
	atomic_store(&fail, 1);
	atomic_store(&sleep_ms, 10000);
	msleep(700);
	t0 = kvfs_now_ms();
	kvfs_auth_stop_refresher(a);
	ok(kvfs_now_ms() - t0 < 1000, "stop returns promptly (%ld ms)",
	   kvfs_now_ms() - t0);
	is_int(atomic_load(&cancelled), 1, "the retry sleep was cancelled");
	kvfs_auth_stop_refresher(a);
	ok(1, "stopping twice is harmless");
	kvfs_auth_free(a);
}

struct storm {
	struct kvfs_auth *a;
	int64_t until;
	atomic_int *errors;
};

static void *storm_main(void *arg)
{
	struct storm *st = arg;

	while (kvfs_now_ms() < st->until) {
		int r;
		char *t = get(st->a, &r);

		if (r < 0)
			atomic_fetch_add(st->errors, 1);
		kvfs_secure_free_str(t);
	}
	return NULL;
}

/* 16 readers asking in a loop while the token service fails: one
 * request per backoff step (at 0, 1, 3 s), not one per reader. */
static void test_storm(void)
{
	enum { N = 16 };
	struct kvfs_auth *a;
	struct storm st;
	pthread_t th[N];
	atomic_int errors = 0;

	atomic_store(&lifetime, 3600);
	a = new_auth();
	atomic_store(&fail, 1);
	atomic_store(&deadline, 300);
	st = (struct storm){a, kvfs_now_ms() + 3500, &errors};
	for (int i = 0; i < N; i++)
		pthread_create(&th[i], NULL, storm_main, &st);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	ok(atomic_load(&calls) >= 2 && atomic_load(&calls) <= 3,
	   "16 readers for 3.5 s, the service failing: %d requests",
	   atomic_load(&calls));
	ok(atomic_load(&errors) > 1000, "and the readers failed fast (%d)",
	   atomic_load(&errors));

	/* The refresher obeys the same backoff. */
	is_int(kvfs_auth_start_refresher(a), 0, "refresher started");
	atomic_store(&calls, 0);
	msleep(1500);
	ok(atomic_load(&calls) <= 1, "the refresher too: %d request in 1.5 s",
	   atomic_load(&calls));
	kvfs_auth_free(a);
}

/* One transient failure is retried within the reader's deadline. */
static void test_transient_retried(void)
{
	struct kvfs_auth *a;
	int64_t t0;

	atomic_store(&lifetime, 3600);
	a = new_auth();
	atomic_store(&fail_next, 1);
	t0 = kvfs_now_ms();
	is_token(a, "tok-2", "one 503, then a token, within 10 s");
	is_int(atomic_load(&calls), 2, "two requests");
	ok(kvfs_now_ms() - t0 >= 900, "the second after the 1 s backoff");
	ok(atomic_load(&last_deadline) >= t0 + 9000,
	   "the provider was given the reader's deadline");
	kvfs_auth_free(a);
}

/* A final failure (a wrong secret) is not waited for. */
static void test_final_failure(void)
{
	struct kvfs_auth *a;
	int64_t t0;
	int r;

	atomic_store(&lifetime, 3600);
	a = new_auth();
	atomic_store(&fail, 1);
	atomic_store(&final, 1);
	t0 = kvfs_now_ms();
	free(get(a, &r));
	is_int(r, -EACCES, "a final failure is returned");
	free(get(a, &r));
	is_int(r, -EACCES, "and again during the backoff");
	ok(kvfs_now_ms() - t0 < 500, "at once (%ld ms)",
	   (long)(kvfs_now_ms() - t0));
	is_int(atomic_load(&calls), 1, "one request");
	kvfs_auth_free(a);
}

/* A reader waits for a fetch in flight no longer than its deadline. */
static void test_deadline(void)
{
	struct kvfs_auth *a;
	struct reader rd;
	pthread_barrier_t b;
	pthread_t th;
	int64_t t0;
	int r;

	atomic_store(&lifetime, 3600);
	a = new_auth();
	atomic_store(&delay_ms, 2000);
	pthread_barrier_init(&b, NULL, 2);
	rd = (struct reader){.a = a, .barrier = &b};
	pthread_create(&th, NULL, reader_main, &rd); /* fetches for 2 s */
	pthread_barrier_wait(&b);
	msleep(100);
	atomic_store(&deadline, 500);
	t0 = kvfs_now_ms();
	free(get(a, &r));
	is_int(r, -ETIMEDOUT,
	       "a fetch in flight past the deadline: "
	       "ETIMEDOUT");
	ok(kvfs_now_ms() - t0 < 900, "after the deadline (%ld ms)",
	   (long)(kvfs_now_ms() - t0));
	pthread_join(th, NULL);
	is_str(rd.token, "tok-1", "the slow fetch still served its reader");
	kvfs_secure_free_str(rd.token);
	is_int(atomic_load(&calls), 1, "one request");
	pthread_barrier_destroy(&b);
	kvfs_auth_free(a);
}

int main(void)
{
	test_storm();
	test_transient_retried();
	test_final_failure();
	test_deadline();
	test_basics();
	test_single_flight();
	test_failed_refresh_keeps_token();
	test_refresher();
	return done_testing();
}
