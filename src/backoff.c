/* The retry rules: backoff ceilings and full jitter, Retry-After in its
 * four shapes (seconds, IMF-fixdate, RFC 850, asctime), and the verdict
 * on an attempt.  Pure functions: the clock and the random number come in
 * as arguments.  Thread-safe because stateless. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backoff.h"

#define RETRY_AFTER_MAX 3600

uint32_t kvfs_backoff_ceiling_ms(const struct kvfs_backoff *b, unsigned n)
{
	uint64_t c;

	if (n == 0)
		return 0;
	if (n - 1 >= 32)
		return b->cap_ms;
	c = (uint64_t)b->base_ms << (n - 1);
	return c > b->cap_ms ? b->cap_ms : (uint32_t)c;
}

uint32_t kvfs_backoff_delay_ms(const struct kvfs_backoff *b, unsigned n,
			       uint64_t rnd)
{
	uint32_t c = kvfs_backoff_ceiling_ms(b, n);

	return (uint32_t)(rnd % ((uint64_t)c + 1));
}

/* ---- Retry-After ---- */

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const days[] = {"Mon", "Tue", "Wed", "Thu",
				   "Fri", "Sat", "Sun"};
static const char *const long_days[] = {"Monday",   "Tuesday", "Wednesday",
					"Thursday", "Friday",  "Saturday",
					"Sunday"};

/* Exactly n digits. */
static bool digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

static bool lit(const char **p, const char *s)
{
	size_t n = strlen(s);

	if (strncmp(*p, s, n) != 0)
		return false;
	*p += n;
	return true;
}

static bool month(const char **p, int *ret)
{
	for (int i = 0; i < 12; i++)
		if (strncmp(*p, months[i], 3) == 0) {
			*p += 3;
			*ret = i;
			return true;
		}
	return false;
}

/* A day name from the table, followed by sep. */
static bool day_name(const char **p, const char *const *names, char sep)
{
	for (int i = 0; i < 7; i++) {
		size_t n = strlen(names[i]);

		if (strncmp(*p, names[i], n) == 0 && (*p)[n] == sep) {
			*p += n + 1;
			return true;
		}
	}
	return false;
}

/* "HH:MM:SS" */
static bool clock_time(const char **p, struct tm *tm)
{
	return digits(p, 2, &tm->tm_hour) && lit(p, ":") &&
	       digits(p, 2, &tm->tm_min) && lit(p, ":") &&
	       digits(p, 2, &tm->tm_sec);
}

/* Unix seconds: timegm() is the one place a time_t is met. */
static int http_date(const char *s, int64_t *ret)
{
	struct tm tm = {0};
	time_t t;
	const char *p = s;
	int year;

	if (day_name(&p, days, ',')) {
		/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
		if (!(lit(&p, " ") && digits(&p, 2, &tm.tm_mday) &&
		      lit(&p, " ") && month(&p, &tm.tm_mon) && lit(&p, " ") &&
		      digits(&p, 4, &year) && lit(&p, " ") &&
		      clock_time(&p, &tm) && lit(&p, " GMT")))
			return -EINVAL;
	} else if (day_name(&p, long_days, ',')) {
		/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
		if (!(lit(&p, " ") && digits(&p, 2, &tm.tm_mday) &&
		      lit(&p, "-") && month(&p, &tm.tm_mon) && lit(&p, "-") &&
		      digits(&p, 2, &year) && lit(&p, " ") &&
		      clock_time(&p, &tm) && lit(&p, " GMT")))
			return -EINVAL;
		year += year < 70 ? 2000 : 1900;
	} else if (day_name(&p, days, ' ')) {
		/* asctime: "Sun Nov  6 08:49:37 1994" */
		if (!(month(&p, &tm.tm_mon) && lit(&p, " ")))
			return -EINVAL;
		if (*p == ' ') {
			p++;
			if (!digits(&p, 1, &tm.tm_mday))
				return -EINVAL;
		} else if (!digits(&p, 2, &tm.tm_mday)) {
			return -EINVAL;
		}
		if (!(lit(&p, " ") && clock_time(&p, &tm) && lit(&p, " ") &&
		      digits(&p, 4, &year)))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;
	if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60 || year < 1970)
		return -EINVAL;
	tm.tm_year = year - 1900;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret = (int64_t)t;
	return 0;
}

int kvfs_backoff_parse_retry_after(const char *value, int64_t now,
				   uint32_t *ret_seconds)
{
	uint64_t s = 0;
	int64_t when;
	int r;

	if (!value || !*value)
		return -EINVAL;

	if (value[0] >= '0' && value[0] <= '9') {
		for (const char *p = value; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			if (s <= RETRY_AFTER_MAX)
				s = s * 10 + (uint64_t)(*p - '0');
		}
	} else {
		r = http_date(value, &when);
		if (r < 0)
			return r;
		s = when > now ? (uint64_t)(when - now) : 0;
	}
	*ret_seconds = s > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : (uint32_t)s;
	return 0;
}

/* ---- verdicts ---- */

/* Transport failures that a later attempt may not meet. */
static bool transient(int r)
{
	switch (-r) {
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EPIPE:
	case EAGAIN:
	case EIO:
	case EFBIG:   /* a body over the cap */
	case EBADMSG: /* a body that is not complete JSON */
		return true;
	default:
		return false;
	}
}

enum kvfs_verdict kvfs_backoff_classify(int r, long status)
{
	if (status == 408 || status == 429 || (status >= 500 && status < 600))
		return KVFS_VERDICT_RETRY;
	if (status >= 200 && status < 300) {
		if (r == 0)
			return KVFS_VERDICT_OK;
		/* A 2xx whose body did not come through whole. */
		return transient(r) ? KVFS_VERDICT_RETRY : KVFS_VERDICT_FINAL;
	}
	if (status != 0)
		return KVFS_VERDICT_FINAL;
	if (r == 0)
		return KVFS_VERDICT_OK;
	return transient(r) ? KVFS_VERDICT_RETRY : KVFS_VERDICT_LOCAL;
}

enum kvfs_verdict kvfs_backoff_classify_object(int r, long status)
{
	enum kvfs_verdict v = kvfs_backoff_classify(r, status);

	if (v != KVFS_VERDICT_RETRY)
		return v;
	if (status >= 500 && status < 600 && status != 502 && status != 503 &&
	    status != 504)
		return KVFS_VERDICT_OBJECT;
	/* A body over the cap is this object's size; one cut short on the
	 * way (no status) is the connection's. */
	if (status >= 200 && status < 300 && (r == -EBADMSG || r == -EFBIG))
		return KVFS_VERDICT_OBJECT;
	if (status == 0 && r == -EFBIG)
		return KVFS_VERDICT_OBJECT;
	return v;
}
