/* The token cache of a mount, in front of one provider.  State (tenant,
 * resource, current token and its deadlines) lives under a mutex; callers
 * get copies of the token.  A fetch is single-flight: the first caller that
 * finds no fresh token fetches with the lock released, others keep using a
 * still-valid token or wait on a condition variable for that fetch's result.
 * A token is refreshed when little of it is left (5 minutes, or half of a
 * short lifetime), and a failed refresh keeps the old token until it
 * expires.  The vault's challenge may set tenant and resource, but only a
 * resource of the vault's own domain (or resource= itself) is accepted, so
 * no token for another audience is ever sent to the vault.  Deadlines use
 * CLOCK_MONOTONIC; only expires_at is wall-clock, for display. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/provider.h"
#include "log.h"
#include "util.h"

#define REFRESH_MARGIN 300 /* seconds before expiry */
#define RETRY_INTERVAL 30  /* between failed background refreshes */

struct kvfs_auth {
	struct kvfs_auth_provider *provider;
	char *vault_host;	 /* lower case, no port */
	char *explicit_resource; /* resource=, or NULL */
	bool tenant_pinned; /* tenant= given: the challenge can't move it */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock */
	char *tenant;
	char *resource;
	char *token;
	time_t expires_wall;
	time_t mono_expires; /* not usable from then on */
	time_t mono_refresh; /* fetch a new one from then on */
	time_t mono_retry;   /* no new attempt before, while still usable */
	bool fetching;
	unsigned long generation; /* completed fetches */
	int last_ret;
	struct kvfs_error last_err;
};

static time_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Host of "scheme://host[:port][/...]", lower-cased; NULL when the URL has
 * userinfo, no host, or characters a host name cannot have. */
static char *url_host(const char *url)
{
	const char *p, *end, *colon;
	char *h;

	if (!url)
		return NULL;
	p = strstr(url, "://");
	if (!p)
		return NULL;
	p += 3;
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p)))
		return NULL;
	if (*p == '[') {
		colon = memchr(p, ']', (size_t)(end - p));
		if (!colon)
			return NULL;
		colon++;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		if (!colon)
			colon = end;
	}
	if (colon == p)
		return NULL;
	h = strndup(p, (size_t)(colon - p));
	if (!h)
		return NULL;
	for (char *q = h; *q; q++) {
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		      (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' ||
		      *q == '[' || *q == ']' || *q == ':')) {
			free(h);
			return NULL;
		}
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	}
	return h;
}

/* The vault's host ends with "." + host(resource). */
static bool resource_fits_vault(const char *vault_host, const char *resource)
{
	_cleanup_free_ char *rh = url_host(resource);
	size_t vl, rl;

	if (!vault_host || !rh || !*rh)
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
	a->mono_expires = a->mono_refresh = a->mono_retry = 0;
}

static enum kvfs_auth_kind pick_auto(const struct kvfs_config *c)
{
	if (c->token_file && c->client_id)
		return KVFS_AUTH_WORKLOAD;
	if (c->cert_file)
		return KVFS_AUTH_CERT;
	if (c->secret_file || c->client_secret)
		return KVFS_AUTH_SECRET;
	return KVFS_AUTH_IMDS;
}

int kvfs_auth_new(const struct kvfs_config *c, struct kvfs_http *h,
		  struct kvfs_auth **ret)
{
	struct kvfs_error err = {0};
	enum kvfs_auth_kind kind;
	struct kvfs_auth *a;
	int r;

	kind = c->auth == KVFS_AUTH_AUTO ? pick_auto(c) : c->auth;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);

	switch (kind) {
	case KVFS_AUTH_SECRET:
		r = kvfs_auth_secret_new(c, h, &a->provider, &err);
		break;
	default:
		log_error("auth provider '%s' is not supported yet",
			  kvfs_config_auth_name(kind));
		r = -EOPNOTSUPP;
		goto fail;
	}
	if (r < 0) {
		if (err.message[0])
			log_error("%s", err.message);
		goto fail;
	}

	a->vault_host = url_host(c->vault_url);
	if (!a->vault_host) {
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
	if (a->provider)
		a->provider->free(a->provider);
	drop_token_locked(a);
	free(a->vault_host);
	free(a->explicit_resource);
	free(a->tenant);
	free(a->resource);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

bool kvfs_auth_ready(struct kvfs_auth *a)
{
	bool ready;

	pthread_mutex_lock(&a->lock);
	ready = a->tenant && a->resource;
	pthread_mutex_unlock(&a->lock);
	return ready;
}

int kvfs_auth_set_challenge(struct kvfs_auth *a, const char *vault_url,
			    const char *www_authenticate,
			    struct kvfs_error *err)
{
	_cleanup_free_ char *tenant = NULL, *resource = NULL, *host = NULL;
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
		host = url_host(vault_url);
		if (!host || !resource_fits_vault(host, resource)) {
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
		log_debug("vault challenge: tenant '%s', resource '%s'",
			  a->tenant, a->resource);
	}
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* Lifetime l seconds from now: usable until a little before the end,
 * refreshed with REFRESH_MARGIN left, or half-way for short tokens, or
 * when the service advises (refresh_in). */
static void set_deadlines_locked(struct kvfs_auth *a,
				 const struct kvfs_token *t, time_t now)
{
	long l = t->expires_in;
	long skew = l >= 600 ? 30 : l / 20;
	long margin = l / 2 < REFRESH_MARGIN ? l / 2 : REFRESH_MARGIN;
	long refresh = l - margin;

	if (t->refresh_in > 0 && t->refresh_in < refresh)
		refresh = t->refresh_in;
	a->expires_wall = time(NULL) + l;
	a->mono_expires = now + l - skew;
	a->mono_refresh = now + refresh;
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

int kvfs_auth_get_token(struct kvfs_auth *a, char **ret_token,
			struct kvfs_error *err)
{
	_cleanup_free_ char *tenant = NULL, *resource = NULL;
	struct kvfs_token tok = {0};
	struct kvfs_error ferr = {0};
	time_t now;
	int r;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		bool usable, fresh;
		unsigned long gen;

		if (!a->tenant || !a->resource) {
			pthread_mutex_unlock(&a->lock);
			kvfs_error_set_message(err, "tenant and resource of "
						    "the vault not known yet");
			return -EAGAIN;
		}
		now = now_mono();
		usable = a->token && now < a->mono_expires;
		fresh = usable && now < a->mono_refresh;
		if (fresh || (usable && (a->fetching || now < a->mono_retry))) {
			r = copy_token_locked(a, ret_token);
			pthread_mutex_unlock(&a->lock);
			return r;
		}
		if (!a->fetching)
			break;

		/* Someone fetches and there is nothing usable: wait for
		 * that fetch, and share its outcome. */
		gen = a->generation;
		while (a->fetching && a->generation == gen)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->token && now_mono() < a->mono_expires)
			continue;
		if (a->generation != gen && a->last_ret < 0) {
			r = a->last_ret;
			if (err)
				*err = a->last_err;
			pthread_mutex_unlock(&a->lock);
			return r;
		}
	}

	a->fetching = true;
	tenant = strdup(a->tenant);
	resource = strdup(a->resource);
	pthread_mutex_unlock(&a->lock);

	if (!tenant || !resource)
		r = -ENOMEM;
	else
		r = a->provider->fetch(a->provider, tenant, resource, &tok,
				       &ferr);
	if (r < 0 && !ferr.provider[0])
		snprintf(ferr.provider, sizeof(ferr.provider), "%s",
			 a->provider->name);

	pthread_mutex_lock(&a->lock);
	a->fetching = false;
	a->generation++;
	now = now_mono();
	a->last_ret = r;
	a->last_err = ferr;
	if (r == 0) {
		/* The challenge may have moved tenant or resource while we
		 * fetched: then this token serves this caller only. */
		if (a->tenant && a->resource &&
		    strcmp(a->tenant, tenant) == 0 &&
		    strcmp(a->resource, resource) == 0) {
			drop_token_locked(a);
			a->token = strdup(tok.access_token);
			if (a->token)
				set_deadlines_locked(a, &tok, now);
		}
		*ret_token = TAKE_PTR(tok.access_token);
	} else if (a->token && now < a->mono_expires) {
		char buf[512];

		a->mono_retry = now + RETRY_INTERVAL;
		kvfs_error_describe(&ferr, buf, sizeof(buf));
		log_warning("cannot refresh the token from '%s': %s; using the "
			    "current one until it expires",
			    a->provider->name, buf);
		r = copy_token_locked(a, ret_token);
	} else if (err) {
		*err = ferr;
	}
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);

	kvfs_token_clear(&tok);
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

const char *kvfs_auth_provider_name(struct kvfs_auth *a)
{
	return a->provider->name;
}

time_t kvfs_auth_expires_at(struct kvfs_auth *a)
{
	time_t t;

	pthread_mutex_lock(&a->lock);
	t = a->token ? a->expires_wall : 0;
	pthread_mutex_unlock(&a->lock);
	return t;
}
