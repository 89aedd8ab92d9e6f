/* The token cache of a mount, in front of one provider.  State (tenant,
 * resource, current token and its deadlines) lives under a mutex; callers
 * get copies of the token.  A fetch is single-flight (flight.h): whoever
 * finds no usable token fetches with the lock released, and everyone else
 * waits (until its own deadline at most) for that fetch's outcome.  Every
 * failure, whoever met it, puts the next fetch off by one backoff
 * (mono_retry) that readers and refresher alike obey: a reader
 * waits for it only when it ends within the reader's deadline, and fails
 * at once otherwise, so an outage of the token service costs one request
 * per backoff step however many readers there are.  Once the mount is
 * served, a refresher thread renews the token before it expires (5 minutes
 * before, half-way for short or long-lived managed-identity tokens), so
 * readers only ever copy a valid token; a failed refresh keeps the old
 * token until it expires and is retried with backoff.  Without the
 * refresher (before the daemon forked) get_token() refreshes in the
 * foreground.  The vault's challenge may set tenant and resource, but only
 * a resource of the vault's own domain (or resource= itself) is accepted,
 * so no token for another audience is ever sent to the vault.  Deadlines
 * are CLOCK_MONOTONIC milliseconds; only expires_at and last_refresh are
 * wall-clock, for display. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/provider.h"
#include "backoff.h"
#include "flight.h"
#include "log.h"
#include "metrics.h"
#include "url.h"
#include "util.h"

#define REFRESH_MARGIN_MS 300000L /* refresh 5 minutes before expiry */
#define MANAGED_HALF_LIFE_S 7200L /* MSAL: half-life from 2 h on */
#define RETRY_MAX_MS 30000L	  /* between failed refreshes, at most */
/* Too little time left for a fetch to get anywhere. */
#define MIN_FETCH_MS 100
/* A fetch that timed out with less time than this was cut short by its
 * caller's deadline: it says nothing about the token service and starts
 * no backoff. */
#define FAIR_FETCH_MS 1000

struct kvfs_auth {
	struct kvfs_auth_provider *provider;
	char *reason;		 /* why this provider */
	char *vault_host;	 /* lower case, no port */
	char *explicit_resource; /* resource=, or NULL */
	bool tenant_pinned; /* tenant= given: the challenge can't move it */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* fetch ended (kvfs_flight_end_locked) */
	pthread_cond_t wake; /* refresher and sleepers: look again */
	/* under lock */
	char *tenant;
	char *resource;
	char *token;
	int64_t expires_wall;	  /* Unix seconds, for display */
	int64_t refreshed_wall;	  /* Unix seconds, for display */
	int64_t mono_expires;	  /* not usable from then on */
	int64_t mono_refresh;	  /* fetch a new one from then on */
	int64_t mono_retry;	  /* no new background attempt before */
	unsigned failures;	  /* consecutive failed fetches */
	bool last_transient;	  /* the last failure is worth a retry */
	struct kvfs_flight fetch; /* the one fetch from the provider */
	int last_ret;
	struct kvfs_error last_err;

	pthread_t thread;
	bool running;  /* the refresher thread exists */
	bool stopping; /* it, and every retry sleep, should end */
};

/* Write a line composed under the lock, with the lock released meanwhile,
 * so that a slow syslog never holds up the readers. */
static void note_flush_locked(struct kvfs_auth *a, struct kvfs_log_deferred *n)
{
	if (!n->text[0])
		return;
	pthread_mutex_unlock(&a->lock);
	kvfs_log_flush(n);
	pthread_mutex_lock(&a->lock);
}

/* The vault's host ends with "." + host(resource). */
static bool resource_fits_vault(const char *vault_host, const char *resource)
{
	_cleanup_free_ char *rh = NULL;
	size_t vl, rl;

	if (!vault_host || kvfs_url_host(resource, &rh) < 0)
		return false;
	vl = strlen(vault_host);
	rl = strlen(rh);
	return vl > rl + 1 && vault_host[vl - rl - 1] == '.' &&
	       strcmp(vault_host + vl - rl, rh) == 0;
}

/* Same resource, ignoring case and trailing slashes. */
static bool resource_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 0 && a[la - 1] == '/')
		la--;
	while (lb > 0 && b[lb - 1] == '/')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static void drop_token_locked(struct kvfs_auth *a)
{
	kvfs_secure_free_str(a->token);
	a->token = NULL;
	a->expires_wall = 0;
	a->mono_expires = a->mono_refresh = 0;
	/* mono_retry stays: a dropped token does not lift the backoff. */
}

enum kvfs_auth_kind kvfs_auth_pick(const struct kvfs_config *c,
				   const char **ret_reason)
{
	const char *reason;
	enum kvfs_auth_kind k;

	if (c->auth != KVFS_AUTH_AUTO) {
		k = c->auth;
		reason = "chosen with auth=";
	} else if (c->token_file && *c->token_file) {
		k = KVFS_AUTH_WORKLOAD;
		reason = "auth=auto and token_file= (or "
			 "AZURE_FEDERATED_TOKEN_FILE) is set";
	} else if (c->cert_file && *c->cert_file) {
		k = KVFS_AUTH_CERT;
		reason = "auth=auto and cert_file= (or "
			 "AZURE_CLIENT_CERTIFICATE_PATH) is set";
	} else if (c->secret_file && *c->secret_file) {
		k = KVFS_AUTH_SECRET;
		reason = "auth=auto and secret_file= is set";
	} else if (c->client_secret && *c->client_secret) {
		k = KVFS_AUTH_SECRET;
		reason = "auth=auto and AZURE_CLIENT_SECRET is set";
	} else {
		k = KVFS_AUTH_IMDS;
		reason = "auth=auto and no federated token, certificate or "
			 "secret is configured";
	}
	if (ret_reason)
		*ret_reason = reason;
	return k;
}

static bool auth_sleep(void *ctx, long ms)
{
	struct kvfs_auth *a = ctx;
	int64_t until = kvfs_now_ms() + ms;
	struct timespec ts = kvfs_ms_to_timespec(until);
	bool stopping;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping && kvfs_now_ms() < until)
		pthread_cond_timedwait(&a->wake, &a->lock, &ts);
	stopping = a->stopping;
	pthread_mutex_unlock(&a->lock);
	return !stopping;
}

bool kvfs_auth_provider_sleep(struct kvfs_auth_provider *p, long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return true;
	if (p->sleep)
		return p->sleep(p->sleep_ctx, ms);
	ts = kvfs_ms_to_timespec(ms);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return true;
}

long kvfs_auth_request_timeout_ms(int64_t deadline_ms)
{
	int64_t left;

	if (deadline_ms == 0)
		return 0;
	left = deadline_ms - kvfs_now_ms();
	return left > 0 ? (long)left : -1;
}

static int init_conds(struct kvfs_auth *a)
{
	int r;

	r = kvfs_cond_init_monotonic(&a->cond);
	if (r < 0)
		return r;
	r = kvfs_cond_init_monotonic(&a->wake);
	if (r < 0)
		pthread_cond_destroy(&a->cond);
	return r;
}

int kvfs_auth_new(const struct kvfs_config *c, struct kvfs_http *h,
		  struct kvfs_auth **ret)
{
	struct kvfs_error err = {0};
	enum kvfs_auth_kind kind;
	const char *why;
	struct kvfs_auth *a;
	int r;

	kind = kvfs_auth_pick(c, &why);

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	r = init_conds(a);
	if (r < 0) {
		pthread_mutex_destroy(&a->lock);
		free(a);
		return r;
	}

	switch (kind) {
	case KVFS_AUTH_SECRET:
		r = kvfs_auth_secret_new(c, h, &a->provider, &err);
		break;
	case KVFS_AUTH_CERT:
		r = kvfs_auth_cert_new(c, h, &a->provider, &err);
		break;
	case KVFS_AUTH_WORKLOAD:
		r = kvfs_auth_workload_new(c, h, &a->provider, &err);
		break;
	case KVFS_AUTH_IMDS:
		r = kvfs_auth_mi_new(c, h, &a->provider, &err);
		break;
	default:
		log_error("auth provider '%s' is not supported",
			  kvfs_config_auth_name(kind));
		r = -EOPNOTSUPP;
		goto fail;
	}
	if (r < 0) {
		if (err.message[0])
			log_error("%s", err.message);
		goto fail;
	}
	a->provider->sleep = auth_sleep;
	a->provider->sleep_ctx = a;

	if (c->auth != KVFS_AUTH_AUTO)
		r = asprintf(&a->reason, "%s%s%s%s", why,
			     kvfs_config_auth_name(kind),
			     a->provider->detail ? "; " : "",
			     a->provider->detail ? a->provider->detail : "");
	else
		r = asprintf(&a->reason, "%s%s%s", why,
			     a->provider->detail ? "; " : "",
			     a->provider->detail ? a->provider->detail : "");
	if (r < 0) {
		a->reason = NULL;
		goto oom;
	}
	log_debug("credential provider '%s' (%s)", a->provider->name,
		  a->reason);

	if (kvfs_url_host(c->vault_url, &a->vault_host) < 0) {
		log_error("cannot find the host of vault '%s'",
			  c->vault_url ? c->vault_url : "");
		r = -EINVAL;
		goto fail;
	}
	if (c->tenant) {
		a->tenant = strdup(c->tenant);
		if (!a->tenant)
			goto oom;
		a->tenant_pinned = true;
	}
	if (c->resource) {
		a->explicit_resource = strdup(c->resource);
		a->resource = strdup(c->resource);
		if (!a->explicit_resource || !a->resource)
			goto oom;
	} else if (c->default_resource &&
		   resource_fits_vault(a->vault_host, c->default_resource)) {
		/* Only for a vault of the cloud's own domain; any other
		 * vault must show its challenge first. */
		a->resource = strdup(c->default_resource);
		if (!a->resource)
			goto oom;
	}

	*ret = a;
	return 0;

oom:
	r = -ENOMEM;
fail:
	kvfs_auth_free(a);
	return r;
}

void kvfs_auth_free(struct kvfs_auth *a)
{
	if (!a)
		return;
	kvfs_auth_stop_refresher(a);
	if (a->provider)
		a->provider->free(a->provider);
	drop_token_locked(a);
	free(a->reason);
	free(a->vault_host);
	free(a->explicit_resource);
	free(a->tenant);
	free(a->resource);
	pthread_cond_destroy(&a->wake);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Enough is known to ask for a token: the resource, and the tenant unless
 * the provider is a managed identity (which needs none, and so spares the
 * vault's challenge round trip). */
static bool known_locked(struct kvfs_auth *a)
{
	return a->resource && (a->tenant || a->provider->managed);
}

bool kvfs_auth_ready(struct kvfs_auth *a)
{
	bool ready;

	pthread_mutex_lock(&a->lock);
	ready = known_locked(a);
	pthread_mutex_unlock(&a->lock);
	return ready;
}

int kvfs_auth_set_challenge(struct kvfs_auth *a, const char *vault_url,
			    const char *www_authenticate,
			    struct kvfs_error *err)
{
	_cleanup_free_ char *tenant = NULL, *resource = NULL, *host = NULL;
	struct kvfs_log_deferred note = {0};
	bool changed = false;
	int r;

	r = kvfs_auth_parse_challenge(www_authenticate, &tenant, &resource);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		kvfs_error_set_message(err, "cannot parse the vault's "
					    "WWW-Authenticate challenge");
		return -EPROTO;
	}

	if (a->explicit_resource) {
		if (!resource_equal(resource, a->explicit_resource)) {
			kvfs_error_set_message(
				err,
				"the vault asks for a token for '%s', not for "
				"resource= '%s'; no token sent",
				resource, a->explicit_resource);
			return -EPERM;
		}
	} else {
		if (kvfs_url_host(vault_url, &host) < 0 ||
		    !resource_fits_vault(host, resource)) {
			kvfs_error_set_message(
				err,
				"vault '%s' asks for a token for '%s', which "
				"is "
				"not its domain; no token sent (set resource= "
				"to allow it)",
				vault_url, resource);
			return -EPERM;
		}
	}

	pthread_mutex_lock(&a->lock);
	if (!a->tenant_pinned &&
	    (!a->tenant || strcmp(a->tenant, tenant) != 0)) {
		free(a->tenant);
		a->tenant = TAKE_PTR(tenant);
		changed = true;
	}
	if (!a->explicit_resource &&
	    (!a->resource || strcmp(a->resource, resource) != 0)) {
		free(a->resource);
		a->resource = TAKE_PTR(resource);
		changed = true;
	}
	if (changed) {
		drop_token_locked(a);
		/* A new tenant or resource: a new token service to ask. */
		a->failures = 0;
		a->mono_retry = 0;
		kvfs_log_defer(&note, NULL, KVFS_LOG_DEBUG,
			       "vault challenge: tenant '%s', resource '%s'",
			       a->tenant, a->resource);
	}
	pthread_mutex_unlock(&a->lock);
	kvfs_log_flush(&note);
	return 0;
}

long kvfs_auth_clamp_lifetime(long lifetime_s)
{
	if (lifetime_s <= 0)
		return KVFS_AUTH_MIN_LIFETIME;
	if (lifetime_s > KVFS_AUTH_MAX_LIFETIME)
		return KVFS_AUTH_MAX_LIFETIME;
	return lifetime_s;
}

long kvfs_auth_refresh_after_ms(long lifetime_s, long refresh_in_s,
				bool managed)
{
	long l = lifetime_s * 1000, r;

	if (managed && lifetime_s >= MANAGED_HALF_LIFE_S) {
		r = l / 2;
	} else {
		long margin =
			l / 2 < REFRESH_MARGIN_MS ? l / 2 : REFRESH_MARGIN_MS;

		r = l - margin;
	}
	if (refresh_in_s > 0 && refresh_in_s * 1000 < r)
		r = refresh_in_s * 1000;
	return r;
}

long kvfs_auth_retry_delay_ms(unsigned attempt, long remaining_ms)
{
	static const struct kvfs_backoff b = {1000, RETRY_MAX_MS};
	long d = (long)kvfs_backoff_ceiling_ms(&b, attempt);

	if (remaining_ms > 0) {
		long cap = remaining_ms / 2 < 250 ? 250 : remaining_ms / 2;

		if (d > cap)
			d = cap;
	}
	return d;
}

/* A token of t->expires_in seconds, fetched at now (kvfs_now_ms()):
 * usable until a little before its end (5 %, at most 30 s, for clock
 * skew), refreshed per kvfs_auth_refresh_after_ms(). */
static void set_deadlines_locked(struct kvfs_auth *a,
				 const struct kvfs_token *t, int64_t now,
				 struct kvfs_log_deferred *note)
{
	long lifetime_s = kvfs_auth_clamp_lifetime(t->expires_in);
	long skew_ms = lifetime_s >= 600 ? 30000 : lifetime_s * 1000 / 20;

	if (lifetime_s != t->expires_in)
		kvfs_log_defer(
			note, NULL, KVFS_LOG_WARNING,
			"'%s' gave a token lifetime of %ld s; using %ld s",
			a->provider->name, t->expires_in, lifetime_s);
	else
		kvfs_log_defer(note, NULL, KVFS_LOG_DEBUG,
			       "new token from '%s', valid for %ld s",
			       a->provider->name, lifetime_s);
	a->refreshed_wall = kvfs_wall_now();
	a->expires_wall = a->refreshed_wall + lifetime_s;
	a->mono_expires = now + lifetime_s * 1000 - skew_ms;
	a->mono_refresh =
		now + kvfs_auth_refresh_after_ms(lifetime_s, t->refresh_in,
						 a->provider->managed);
	a->mono_retry = 0;
}

static int copy_token_locked(struct kvfs_auth *a, char **ret)
{
	char *t = strdup(a->token);

	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}

static bool usable_locked(struct kvfs_auth *a, int64_t now)
{
	return a->token && now < a->mono_expires;
}

/* A failure worth another fetch: a timeout, a reset, 408, 429, 5xx. */
static bool transient(int r, const struct kvfs_error *e)
{
	if (r == -ECANCELED || r == -ENOMEM)
		return false;
	return kvfs_backoff_classify(r, e->http_status) == KVFS_VERDICT_RETRY;
}

/* One fetch from the provider, bounded by deadline (0: none).  Called
 * with the lock held, no fetch running and the backoff over; the lock is
 * released for the fetch itself.  On success the token is installed
 * (unless the challenge moved tenant or resource meanwhile) and, when
 * ret_token is not NULL, handed out too.  On failure an old, still usable
 * token stays, and the next fetch, anybody's, is put off with backoff. */
static int fetch_locked(struct kvfs_auth *a, int64_t deadline, char **ret_token,
			struct kvfs_error *err, struct kvfs_log_deferred *note)
{
	_cleanup_free_ char *tenant = NULL, *resource = NULL;
	struct kvfs_token tok = {0};
	struct kvfs_error ferr = {0};
	int64_t now, start;
	int r;

	(void)kvfs_flight_begin_locked(&a->fetch); /* none was under way */
	if (a->failures > 0)
		kvfs_metrics_add(KVFS_COUNTER_TOKEN_RETRIES, 1);
	tenant = a->tenant ? strdup(a->tenant) : NULL;
	resource = strdup(a->resource);
	pthread_mutex_unlock(&a->lock);

	start = kvfs_now_ms();
	if ((a->tenant && !tenant) || !resource)
		r = -ENOMEM;
	else
		r = a->provider->fetch(a->provider, tenant, resource, deadline,
				       &tok, &ferr);
	if (r < 0 && !ferr.provider[0])
		snprintf(ferr.provider, sizeof(ferr.provider), "%s",
			 a->provider->name);

	pthread_mutex_lock(&a->lock);
	now = kvfs_now_ms();
	a->last_ret = r;
	a->last_err = ferr;
	if (r == 0) {
		a->failures = 0;
		/* The challenge may have moved tenant or resource while we
		 * fetched: then this token serves this caller only. */
		if (a->resource && strcmp(a->resource, resource) == 0 &&
		    (a->provider->managed ||
		     (a->tenant && tenant && strcmp(a->tenant, tenant) == 0))) {
			drop_token_locked(a);
			a->token = strdup(tok.access_token);
			if (a->token)
				set_deadlines_locked(a, &tok, now, note);
		}
		if (ret_token)
			*ret_token = TAKE_PTR(tok.access_token);
	} else if (r == -ETIMEDOUT && deadline != 0 &&
		   deadline - start < FAIR_FETCH_MS) {
		/* Cut short by the caller's deadline, not the service's
		 * fault: no backoff, and the caller says what happened. */
		if (err)
			*err = ferr;
	} else {
		char buf[512];
		bool usable = usable_locked(a, now);

		a->failures++;
		a->last_transient = transient(r, &ferr);
		a->mono_retry =
			now +
			kvfs_auth_retry_delay_ms(
				a->failures,
				usable ? (long)(a->mono_expires - now) : 0);
		kvfs_error_describe(&ferr, buf, sizeof(buf));
		if (r != -ECANCELED)
			kvfs_metrics_error("cannot get a token from '%s': %s",
					   a->provider->name, buf);
		/* -ECANCELED: the mount is going away; nothing to say. */
		if (usable && r != -ECANCELED)
			kvfs_log_defer(
				note, NULL, KVFS_LOG_WARNING,
				"cannot refresh the token from '%s': %s; "
				"using the current one until it expires",
				a->provider->name, buf);
		else if (!ret_token && r != -ECANCELED)
			/* the refresher's own attempt: nobody else says it */
			kvfs_log_defer(note, NULL, KVFS_LOG_WARNING,
				       "cannot get a token from '%s': %s; "
				       "retrying in %ld ms",
				       a->provider->name, buf,
				       (long)(a->mono_retry - now));
		if (err)
			*err = ferr;
	}
	kvfs_flight_end_locked(&a->fetch, &a->cond, r);
	pthread_cond_broadcast(&a->wake);
	kvfs_token_clear(&tok);
	return r;
}

/* The last failure as a caller's error, when the backoff or its deadline
 * kept it from trying (again) itself. */
static int last_failure_locked(struct kvfs_auth *a, struct kvfs_error *err)
{
	if (!err)
		return a->last_ret < 0 ? a->last_ret : -ETIMEDOUT;
	if (a->last_ret < 0) {
		*err = a->last_err;
	} else {
		kvfs_error_clear(err);
		snprintf(err->provider, sizeof(err->provider), "%s",
			 a->provider->name);
		kvfs_error_set_message(err, "no token before the deadline");
	}
	return a->last_ret < 0 ? a->last_ret : -ETIMEDOUT;
}

int kvfs_auth_get_token(struct kvfs_auth *a, int64_t deadline_ms,
			char **ret_token, struct kvfs_error *err)
{
	struct kvfs_log_deferred note = {0};
	struct timespec ts;
	int64_t now;
	int r;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		bool due, usable, fetching = kvfs_flight_busy_locked(&a->fetch);

		if (!known_locked(a)) {
			pthread_mutex_unlock(&a->lock);
			kvfs_error_set_message(err, "tenant and resource of "
						    "the vault not known yet");
			return -EAGAIN;
		}
		now = kvfs_now_ms();
		due = now >= a->mono_refresh && now >= a->mono_retry;
		usable = usable_locked(a, now);
		if (usable && (!due || fetching || a->running)) {
			/* The refresher renews it; nobody waits. */
			if (due && a->running && !fetching)
				pthread_cond_broadcast(&a->wake);
			r = copy_token_locked(a, ret_token);
			pthread_mutex_unlock(&a->lock);
			return r;
		}

		if (fetching) {
			/* Someone fetches and there is nothing usable: wait
			 * for that fetch, as long as the deadline allows. */
			if (kvfs_flight_wait_locked(&a->fetch, &a->lock,
						    &a->cond, deadline_ms,
						    NULL) < 0)
				break;
			continue;
		}

		if (!usable && now < a->mono_retry) {
			/* Backing off: a final failure is the answer until
			 * then; a transient one is worth waiting for, if
			 * the next attempt comes within the deadline. */
			if (!a->last_transient ||
			    a->mono_retry + MIN_FETCH_MS > deadline_ms)
				break;
			ts = kvfs_ms_to_timespec(a->mono_retry);
			pthread_cond_timedwait(&a->cond, &a->lock, &ts);
			continue;
		}

		/* No fetch in flight and the backoff over: this caller
		 * fetches (a foreground refresh while no refresher runs). */
		if (!usable && deadline_ms - now < MIN_FETCH_MS)
			break;
		r = fetch_locked(a, deadline_ms, ret_token, err, &note);
		note_flush_locked(a, &note);
		if (r == 0 || usable_locked(a, kvfs_now_ms())) {
			if (r < 0)
				r = copy_token_locked(a, ret_token);
			pthread_mutex_unlock(&a->lock);
			return r;
		}
		if (!transient(r, &a->last_err)) {
			pthread_mutex_unlock(&a->lock);
			return r;
		}
	}

	r = last_failure_locked(a, err);
	pthread_mutex_unlock(&a->lock);
	return r;
}

void kvfs_auth_invalidate(struct kvfs_auth *a, const char *token)
{
	if (!token)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->token && strcmp(a->token, token) == 0)
		drop_token_locked(a);
	pthread_mutex_unlock(&a->lock);
}

/* When the refresher should fetch next, or -1 for "not by itself": no
 * token and no failure to retry (readers fetch then), or a fetch runs. */
static int64_t next_due_locked(struct kvfs_auth *a)
{
	if (!known_locked(a) || kvfs_flight_busy_locked(&a->fetch))
		return -1;
	if (a->token)
		return a->mono_refresh > a->mono_retry ? a->mono_refresh
						       : a->mono_retry;
	if (a->failures > 0)
		return a->mono_retry;
	return -1;
}

static void *refresher_main(void *arg)
{
	struct kvfs_auth *a = arg;
	struct kvfs_log_deferred note = {0};

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		int64_t due = next_due_locked(a);
		struct timespec ts;

		if (due < 0) {
			pthread_cond_wait(&a->wake, &a->lock);
			continue;
		}
		if (kvfs_now_ms() < due) {
			ts = kvfs_ms_to_timespec(due);
			pthread_cond_timedwait(&a->wake, &a->lock, &ts);
			continue;
		}
		(void)fetch_locked(a, 0, NULL, NULL, &note);
		note_flush_locked(a, &note);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int kvfs_auth_start_refresher(struct kvfs_auth *a)
{
	int r;

	pthread_mutex_lock(&a->lock);
	if (a->running) {
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	a->stopping = false;
	r = pthread_create(&a->thread, NULL, refresher_main, a);
	if (r == 0)
		a->running = true;
	pthread_mutex_unlock(&a->lock);
	if (r != 0) {
		log_error("cannot start the token refresher: %s", strerror(r));
		return -r;
	}
	log_notice("credential provider '%s': %s", a->provider->name,
		   a->reason);
	return 0;
}

void kvfs_auth_stop_refresher(struct kvfs_auth *a)
{
	bool running;

	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	running = a->running;
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
	if (running)
		pthread_join(a->thread, NULL);
	pthread_mutex_lock(&a->lock);
	a->running = false;
	pthread_mutex_unlock(&a->lock);
}

const char *kvfs_auth_provider_name(struct kvfs_auth *a)
{
	return a->provider->name;
}

const char *kvfs_auth_provider_reason(struct kvfs_auth *a)
{
	return a->reason;
}

int64_t kvfs_auth_expires_at(struct kvfs_auth *a)
{
	int64_t t;

	pthread_mutex_lock(&a->lock);
	t = a->token ? a->expires_wall : 0;
	pthread_mutex_unlock(&a->lock);
	return t;
}

int64_t kvfs_auth_last_refresh(struct kvfs_auth *a)
{
	int64_t t;

	pthread_mutex_lock(&a->lock);
	t = a->refreshed_wall;
	pthread_mutex_unlock(&a->lock);
	return t;
}
