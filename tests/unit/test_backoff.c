/* The retry rules: the backoff schedule and its jitter, Retry-After in
 * every shape and as garbage, and the verdict on each kind of outcome. */
#include <errno.h>
#include <stdint.h>

#include "backoff.h"
#include "tap.h"

static void test_schedule(void)
{
	const struct kvfs_backoff b = KVFS_BACKOFF_VAULT;
	static const uint32_t want[] = {0,     1000,  2000,  4000,  8000,
					16000, 32000, 60000, 60000, 60000};

	for (unsigned n = 0; n < sizeof(want) / sizeof(want[0]); n++)
		is_int(kvfs_backoff_ceiling_ms(&b, n), want[n],
		       "ceiling after %u failures", n);
	is_int(kvfs_backoff_ceiling_ms(&b, 33), 60000, "33 failures: cap");
	is_int(kvfs_backoff_ceiling_ms(&b, 4000000000u), 60000,
	       "no overflow on a huge count");

	/* Full jitter: anywhere in [0, ceiling], both ends reachable. */
	is_int(kvfs_backoff_delay_ms(&b, 1, 0), 0, "jitter can be 0");
	is_int(kvfs_backoff_delay_ms(&b, 1, 1000), 1000,
	       "jitter reaches the ceiling");
	is_int(kvfs_backoff_delay_ms(&b, 1, 1001), 0, "and wraps");
	is_int(kvfs_backoff_delay_ms(&b, 3, 2500), 2500, "2.5 s of 4 s");
	is_int(kvfs_backoff_delay_ms(&b, 0, 12345), 0, "no failure, no wait");
	{
		uint32_t max = 0;
		int in_range = 1;

		for (uint64_t r = 0; r < 200000; r += 7) {
			uint32_t d =
				kvfs_backoff_delay_ms(&b, 20, r * 2654435761u);

			if (d > 60000)
				in_range = 0;
			if (d > max)
				max = d;
		}
		ok(in_range, "never past the cap");
		ok(max > 50000, "spread up to the cap (max %u)", max);
	}

	/* Another policy, as the managed-identity provider may use. */
	{
		const struct kvfs_backoff imds = {2000, 30000};

		is_int(kvfs_backoff_ceiling_ms(&imds, 1), 2000, "imds: 2 s");
		is_int(kvfs_backoff_ceiling_ms(&imds, 4), 16000, "imds: 16 s");
		is_int(kvfs_backoff_ceiling_ms(&imds, 5), 30000, "imds: cap");
	}
}

static void test_retry_after(void)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT */
	const int64_t t = 784111777;
	uint32_t s = 12345;

	is_int(kvfs_backoff_parse_retry_after("3", t, &s), 0, "seconds");
	is_int(s, 3, "3 s");
	is_int(kvfs_backoff_parse_retry_after("0", t, &s), 0, "zero");
	is_int(s, 0, "0 s");
	is_int(kvfs_backoff_parse_retry_after("120", t, &s), 0, "120");
	is_int(s, 120, "120 s");
	is_int(kvfs_backoff_parse_retry_after("86400", t, &s), 0, "a day");
	is_int(s, 3600, "capped at an hour");
	is_int(kvfs_backoff_parse_retry_after("99999999999999999999999", t, &s),
	       0, "huge");
	is_int(s, 3600, "huge: capped, no overflow");

	is_int(kvfs_backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT",
					      t, &s),
	       0, "IMF-fixdate");
	is_int(s, 10, "IMF-fixdate: 10 s ahead");
	is_int(kvfs_backoff_parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT",
					      t, &s),
	       0, "RFC 850 date");
	is_int(s, 60, "RFC 850: 60 s ahead");
	is_int(kvfs_backoff_parse_retry_after("Sun Nov  6 08:49:42 1994", t,
					      &s),
	       0, "asctime date");
	is_int(s, 5, "asctime: 5 s ahead");
	is_int(kvfs_backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT",
					      t, &s),
	       0, "a date in the past");
	is_int(s, 0, "past: no wait");
	is_int(kvfs_backoff_parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT",
					      t, &s),
	       0, "a day ahead");
	is_int(s, 3600, "a day ahead: capped");

	static const char *const garbage[] = {
		"",
		" ",
		"-1",
		"+3",
		"3.5",
		"3s",
		"3 ",
		"0x10",
		"soon",
		"Sun, 06 Nov 1994 08:49:37",
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sun, 06 Foo 1994 08:49:37 GMT",
		"Sun, 32 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:49:37 GMT",
		"Sun, 06 Nov 1994 08:61:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT trailing",
		"Funday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",
		"Sun,06 Nov 1994 08:49:37 GMT",
	};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		s = 777;
		is_int(kvfs_backoff_parse_retry_after(garbage[i], t, &s),
		       -EINVAL, "garbage '%s' refused", garbage[i]);
		is_int(s, 777, "and *ret untouched");
	}
	is_int(kvfs_backoff_parse_retry_after(NULL, t, &s), -EINVAL, "NULL");
}

/* What a request returned, and the verdict it must get. */
struct verdict_case {
	int r;
	long status;
	enum kvfs_verdict want;
	const char *what;
};

static void test_classify(void)
{
	static const struct verdict_case cases[] = {
		{0, 200, KVFS_VERDICT_OK, "200"},
		{0, 204, KVFS_VERDICT_OK, "204"},
		{-EBADMSG, 200, KVFS_VERDICT_RETRY, "200 with a broken body"},
		{-EFBIG, 200, KVFS_VERDICT_RETRY,
		 "200 with a body over the cap"},
		{-ENOMEM, 200, KVFS_VERDICT_FINAL, "200, then out of memory"},
		{-EAGAIN, 429, KVFS_VERDICT_RETRY, "429"},
		{-EAGAIN, 408, KVFS_VERDICT_RETRY, "408"},
		{-EAGAIN, 500, KVFS_VERDICT_RETRY, "500"},
		{-EAGAIN, 502, KVFS_VERDICT_RETRY, "502"},
		{-EAGAIN, 503, KVFS_VERDICT_RETRY, "503"},
		{-EAGAIN, 504, KVFS_VERDICT_RETRY, "504"},
		{-EAGAIN, 599, KVFS_VERDICT_RETRY, "599"},
		{-EACCES, 401, KVFS_VERDICT_FINAL, "401"},
		{-EACCES, 403, KVFS_VERDICT_FINAL, "403"},
		{-ENOENT, 404, KVFS_VERDICT_FINAL, "404"},
		{-EINVAL, 400, KVFS_VERDICT_FINAL, "400"},
		{-EINVAL, 409, KVFS_VERDICT_FINAL, "409"},
		{-ENOENT, 410, KVFS_VERDICT_FINAL, "410"},
		{-EPROTO, 302, KVFS_VERDICT_FINAL,
		 "302 (redirects not followed)"},
		{-EPROTO, 600, KVFS_VERDICT_FINAL, "600"},
		{-ETIMEDOUT, 0, KVFS_VERDICT_RETRY, "timeout"},
		{-ECONNRESET, 0, KVFS_VERDICT_RETRY, "connection reset"},
		{-ECONNREFUSED, 0, KVFS_VERDICT_RETRY, "connection refused"},
		{-EHOSTUNREACH, 0, KVFS_VERDICT_RETRY, "host unreachable"},
		{-ENETUNREACH, 0, KVFS_VERDICT_RETRY, "network unreachable"},
		{-EIO, 0, KVFS_VERDICT_RETRY, "other transport failure"},
		{-EFBIG, 0, KVFS_VERDICT_RETRY, "body over the cap"},
		{-EBADMSG, 0, KVFS_VERDICT_RETRY, "truncated body"},
		{-EPROTO, 0, KVFS_VERDICT_LOCAL, "TLS verification"},
		{-EPERM, 0, KVFS_VERDICT_LOCAL, "token refused on http"},
		{-ENOMEM, 0, KVFS_VERDICT_LOCAL, "out of memory"},
		{-EINVAL, 0, KVFS_VERDICT_LOCAL, "bad request set-up"},
		{0, 0, KVFS_VERDICT_OK, "success without status"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(kvfs_backoff_classify(cases[i].r, cases[i].status),
		       cases[i].want, "%s", cases[i].what);
}

/* For one object of a vault: only what says the vault is down stays
 * RETRY. */
static void test_classify_object(void)
{
	static const struct verdict_case cases[] = {
		{0, 200, KVFS_VERDICT_OK, "200"},
		{-EBADMSG, 200, KVFS_VERDICT_OBJECT, "200 with a broken body"},
		{-EFBIG, 200, KVFS_VERDICT_OBJECT,
		 "200 with a body over the cap"},
		{-EAGAIN, 500, KVFS_VERDICT_OBJECT, "500"},
		{-EAGAIN, 501, KVFS_VERDICT_OBJECT, "501"},
		{-EAGAIN, 599, KVFS_VERDICT_OBJECT, "599"},
		{-EAGAIN, 429, KVFS_VERDICT_RETRY, "429"},
		{-EAGAIN, 408, KVFS_VERDICT_RETRY, "408"},
		{-EAGAIN, 502, KVFS_VERDICT_RETRY, "502"},
		{-EAGAIN, 503, KVFS_VERDICT_RETRY, "503"},
		{-EAGAIN, 504, KVFS_VERDICT_RETRY, "504"},
		{-ETIMEDOUT, 0, KVFS_VERDICT_RETRY, "timeout"},
		{-ECONNRESET, 0, KVFS_VERDICT_RETRY, "connection reset"},
		{-ECONNREFUSED, 0, KVFS_VERDICT_RETRY, "connection refused"},
		{-EBADMSG, 0, KVFS_VERDICT_RETRY, "truncated body"},
		{-EFBIG, 0, KVFS_VERDICT_OBJECT, "body over the cap"},
		{-ENOENT, 404, KVFS_VERDICT_FINAL, "404"},
		{-EACCES, 403, KVFS_VERDICT_FINAL, "403"},
		{-EPROTO, 0, KVFS_VERDICT_LOCAL, "TLS verification"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(kvfs_backoff_classify_object(cases[i].r,
						    cases[i].status),
		       cases[i].want, "object: %s", cases[i].what);
}

int main(void)
{
	test_schedule();
	test_retry_after();
	test_classify();
	test_classify_object();
	return done_testing();
}
