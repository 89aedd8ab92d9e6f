/* Managed identity: the VM's IMDS, App Service / Functions, and Azure Arc,
 * one provider with three flavours (named "imds", "appservice", "arc").
 * Which one is decided once, from the environment, in MSAL's order
 * (kvfs_mi_detect).  Every request is a plain GET with the bare resource
 * (no "/.default") and the user-assigned identity selector, never through
 * a proxy.  404, 408, 410, 429, 5xx and timeouts are retried with backoff
 * for up to 70 s in all (IMDS may be updating for that long), or until
 * the deadline of a reader waiting for the fetch; any other
 * answer is final, and a 400 names the identity that was asked for.  App
 * Service's X-IDENTITY-HEADER is read from the environment at each request
 * (the platform rotates it); Arc answers a first request with a 401 whose
 * "Basic realm=" names a key file, which is checked as MSAL checks it and
 * sent back as the Authorization.  The environment is read here rather
 * than in config.c because the header must be re-read per request.  fetch()
 * is single-flight (provider.h); the header and key are wiped after use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/credfile.h"
#include "auth/entra.h"
#include "auth/provider.h"
#include "backoff.h"
#include "log.h"
#include "metrics.h"
#include "secmem.h"
#include "url.h"
#include "util.h"

#define IMDS_API_VERSION "2018-02-01"
#define APPSERVICE_API_VERSION "2019-08-01"
#define ARC_API_VERSION "2020-06-01"
#define ARC_DEFAULT_ENDPOINT                                                   \
	"http://localhost:40342/metadata/identity/oauth2/token"
#define ARC_AGENT "/opt/azcmagent/bin/himds"
#define ARC_TOKEN_DIR "/var/opt/azcmagent/tokens"
#define ARC_KEY_MAX 4096
/* Too little time left for one more IMDS request. */
#define MI_MIN_ATTEMPT_MS 100

struct mi_provider {
	struct kvfs_auth_provider base;
	struct kvfs_http *http;
	enum kvfs_mi_source source;
	char *endpoint;	      /* without fragment; may carry a query */
	const char *selector; /* query parameter name, or NULL */
	char *selector_value;
	const char *option;  /* the kvfs option the selector came from */
	int64_t deadline_ms; /* of the fetch under way; 0: none */
};

static const char *const source_names[] = {
	[KVFS_MI_IMDS] = "imds",
	[KVFS_MI_APPSERVICE] = "appservice",
	[KVFS_MI_ARC] = "arc",
};

const char *kvfs_mi_source_name(enum kvfs_mi_source s)
{
	return (size_t)s < ELEMENTSOF(source_names) ? source_names[s] : "imds";
}

static bool set(const char *v)
{
	return v && *v;
}

enum kvfs_mi_source kvfs_mi_detect(const char *identity_endpoint,
				   const char *identity_header,
				   const char *imds_endpoint, bool arc_agent)
{
	if (set(identity_endpoint) && set(identity_header))
		return KVFS_MI_APPSERVICE;
	if ((set(identity_endpoint) && set(imds_endpoint)) || arc_agent)
		return KVFS_MI_ARC;
	return KVFS_MI_IMDS;
}

/* This binary's Arc key directory.  Weak: tests/testhooks.c, linked only
 * into the uninstalled kvfs-testhooks, replaces it. */
__attribute__((weak)) const char *kvfs_arc_token_dir(void)
{
	return ARC_TOKEN_DIR;
}

/* ---- parsing ---- */

int kvfs_mi_parse_token(const char *json, size_t len, int64_t now,
			struct kvfs_token *ret)
{
	/* IMDS and Arc send expires_in and expires_on, as strings; App
	 * Service only expires_on, a Unix time. */
	static const struct kvfs_token_format mi = {
		.expires_on = true,
		.min_s = -100LL * 365 * 86400,
		.max_s = 100LL * 365 * 86400 * 30,
		.clamp = 86400000,
	};

	return kvfs_token_parse(json, len, &mi, now, ret);
}

long kvfs_mi_retry_delay_ms(unsigned attempt, long elapsed_ms,
			    int64_t retry_after_ms)
{
	/* The documented schedule, without jitter: each host has its own
	 * endpoint, so there is no fleet to spread out. */
	static const struct kvfs_backoff imds = {2000, 32000};
	long d, left = KVFS_MI_RETRY_BUDGET_MS - elapsed_ms;

	if (left <= 0 || attempt == 0)
		return -1;
	d = (long)kvfs_backoff_ceiling_ms(&imds, attempt);
	if (retry_after_ms > d)
		d = (long)retry_after_ms;
	return d < left ? d : left;
}

int kvfs_arc_realm_path(const char *www_authenticate, const char *dir,
			char **ret_path)
{
	const char *p = www_authenticate, *end, *base;
	size_t dlen, len;

	if (!p || strncasecmp(p, "Basic", 5) != 0 ||
	    (p[5] != ' ' && p[5] != '\t'))
		return -EBADMSG;
	p += 5;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "realm=", 6) != 0)
		return -EBADMSG;
	p += 6;
	if (*p == '"') {
		p++;
		end = strchr(p, '"');
		if (!end)
			return -EBADMSG;
	} else {
		end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
	}
	len = (size_t)(end - p);
	if (len == 0 || len > 4096)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return -EBADMSG;

	/* MSAL's rules: in exactly the agent's directory, named *.key. */
	dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	if (len <= dlen + 1 || strncmp(p, dir, dlen) != 0 || p[dlen] != '/')
		return -EPERM;
	base = p + dlen + 1;
	if (memchr(base, '/', (size_t)(end - base)) ||
	    (size_t)(end - base) <= 4 || strncmp(end - 4, ".key", 4) != 0)
		return -EPERM;
	*ret_path = strndup(p, len);
	return *ret_path ? 0 : -ENOMEM;
}

/* ---- requests ---- */

/* jansson's copy of the token, in a tree parsed for something else. */
static void wipe_access_token(json_t *root)
{
	json_t *at = json_object_get(root, "access_token");

	if (json_is_string(at))
		OPENSSL_cleanse((char *)json_string_value(at),
				json_string_length(at));
}

static void describe_identity(const struct mi_provider *p, char *buf, size_t n)
{
	if (p->selector)
		snprintf(buf, n, "the user-assigned identity %s=%s", p->option,
			 p->selector_value);
	else
		snprintf(buf, n, "the system-assigned identity");
}

static int build_url(const struct mi_provider *p, const char *resource,
		     char **ret)
{
	_cleanup_free_ char *res = NULL, *sel = NULL;
	const char *api = p->source == KVFS_MI_APPSERVICE
				  ? APPSERVICE_API_VERSION
			  : p->source == KVFS_MI_ARC ? ARC_API_VERSION
						     : IMDS_API_VERSION;
	size_t n = strlen(resource);

	/* The bare resource: IMDS refuses a "/.default" scope. */
	if (n > 9 && strcmp(resource + n - 9, "/.default") == 0)
		n -= 9;
	{
		_cleanup_free_ char *bare = strndup(resource, n);

		if (!bare)
			return -ENOMEM;
		res = kvfs_http_urlencode(bare);
	}
	if (!res)
		return -ENOMEM;
	if (p->selector) {
		sel = kvfs_http_urlencode(p->selector_value);
		if (!sel)
			return -ENOMEM;
	}
	if (asprintf(ret, "%s%capi-version=%s&resource=%s%s%s%s%s", p->endpoint,
		     strchr(p->endpoint, '?') ? '&' : '?', api, res,
		     p->selector ? "&" : "", p->selector ? p->selector : "",
		     p->selector ? "=" : "", sel ? sel : "") < 0)
		return -ENOMEM;
	return 0;
}

static int get(struct mi_provider *p, const char *url,
	       const char *const *headers, struct kvfs_http_response *resp,
	       struct kvfs_error *err)
{
	struct kvfs_http_request rq = {
		.method = "GET",
		.url = url,
		.label = p->source == KVFS_MI_APPSERVICE ? KVFS_EP_IDENTITY
							 : KVFS_EP_IMDS,
		.headers = headers,
		.allow_http = true,
		.no_proxy = true,
		.timeout_ms = kvfs_auth_request_timeout_ms(p->deadline_ms),
		.secret = true,
	};

	if (rq.timeout_ms < 0) {
		kvfs_error_clear(err);
		kvfs_error_set_endpoint(err, url);
		kvfs_error_set_message(err, "not sent before the deadline");
		return -ETIMEDOUT;
	}
	return kvfs_http_perform(p->http, &rq, resp, err);
}

/* Arc: the first answer is a 401 naming a key file; its contents are
 * the proof for the second request. */
static int arc_second_request(struct mi_provider *p, const char *url,
			      struct kvfs_http_response *resp,
			      struct kvfs_error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_secret_ char *key = NULL, *auth = NULL;
	const char *headers[3] = {"Metadata: true", NULL, NULL};
	size_t len;
	int r;

	r = kvfs_arc_realm_path(resp->www_authenticate, kvfs_arc_token_dir(),
				&path);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		kvfs_error_set_message(
			err,
			r == -EPERM ? "Arc challenge names a key file outside "
				      "'%s' or not ending in .key; refused"
				    : "Arc answered 401 without a 'Basic "
				      "realm=' challenge%s",
			r == -EPERM ? kvfs_arc_token_dir() : "");
		return -EPROTO;
	}
	r = kvfs_credfile_read(path,
			       KVFS_CREDFILE_ANY_MODE | KVFS_CREDFILE_NOFOLLOW,
			       &key, &len, err);
	if (r < 0)
		return r;
	if (len > ARC_KEY_MAX || strlen(key) != len) {
		kvfs_error_set_message(err,
				       "Arc key file '%s' is larger than "
				       "%d bytes or binary; refused",
				       path, ARC_KEY_MAX);
		return -EPROTO;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) {
			kvfs_error_set_message(err,
					       "Arc key file '%s' holds "
					       "control characters; "
					       "refused",
					       path);
			return -EPROTO;
		}
	auth = kvfs_secmem_concat("Authorization: Basic ", key, NULL);
	if (!auth)
		return -ENOMEM;
	headers[1] = auth;
	kvfs_http_response_clear(resp);
	return get(p, url, headers, resp, err);
}

/* One attempt: 0 with *resp on any HTTP answer. */
static int attempt(struct mi_provider *p, const char *url,
		   struct kvfs_http_response *resp, struct kvfs_error *err)
{
	_cleanup_secret_ char *idh = NULL;
	const char *headers[2] = {"Metadata: true", NULL};
	int r;

	if (p->source == KVFS_MI_APPSERVICE) {
		const char *v = getenv("IDENTITY_HEADER");

		if (!v || !*v) {
			kvfs_error_set_endpoint(err, p->endpoint);
			kvfs_error_set_message(err, "IDENTITY_HEADER is no "
						    "longer set");
			return -EINVAL;
		}
		idh = kvfs_secmem_concat("X-IDENTITY-HEADER: ", v, NULL);
		if (!idh)
			return -ENOMEM;
		headers[0] = idh;
	}
	r = get(p, url, headers, resp, err);
	if (r == 0 && p->source == KVFS_MI_ARC && resp->status == 401)
		r = arc_second_request(p, url, resp, err);
	return r;
}

/* The usual throttling and 5xx, and 404 and 410, which IMDS answers while
 * it or the identity is being updated. */
static bool retryable_status(long s)
{
	return s == 404 || s == 410 ||
	       kvfs_backoff_classify(0, s) == KVFS_VERDICT_RETRY;
}

static bool retryable_errno(int r)
{
	/* Timeouts and resets only, not kvfs_backoff_classify()'s wider
	 * set: a refused or unreachable endpoint means no managed identity
	 * here, which waiting will not change. */
	return r == -ETIMEDOUT || r == -EIO;
}

/* A final non-200 answer: the service's words, and who was asked for. */
static int fail_response(struct mi_provider *p,
			 const struct kvfs_http_response *resp,
			 struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	char who[600], text[sizeof(err->message)];
	int r = kvfs_http_status_to_errno(resp->status);

	kvfs_entra_parse_error(resp->body, resp->len, err);
	if (!err->message[0]) {
		/* App Service: {"statusCode":..., "message": ...} */
		root = json_loadb(resp->body, resp->len, 0, NULL);
		if (json_is_string(json_object_get(root, "message"))) {
			const char *m = json_string_value(
				json_object_get(root, "message"));

			kvfs_error_set_message(err, "%.*s",
					       (int)strcspn(m, "\r\n"), m);
		}
	}
	describe_identity(p, who, sizeof(who));
	snprintf(text, sizeof(text), "%s", err->message);
	if (resp->status >= 300 && resp->status < 400)
		kvfs_error_set_message(err, "redirected; not followed");
	else
		kvfs_error_set_message(err, "%s%sasked for %s", text,
				       text[0] ? "; " : "", who);
	return r < 0 ? r : -EPROTO;
}

static int mi_fetch(struct kvfs_auth_provider *base, const char *tenant,
		    const char *resource, int64_t deadline_ms,
		    struct kvfs_token *ret, struct kvfs_error *err)
{
	struct mi_provider *p = (struct mi_provider *)base;
	_cleanup_free_ char *url = NULL;
	int64_t t0;
	int r;

	p->deadline_ms = deadline_ms;
	r = build_url(p, resource, &url);
	if (r < 0)
		return r;
	t0 = kvfs_now_ms();
	for (unsigned n = 1;; n++) {
		_cleanup_(kvfs_http_response_clear) struct kvfs_http_response
			resp = {0};
		long elapsed, delay;

		kvfs_error_clear(err);
		r = attempt(p, url, &resp, err);
		snprintf(err->provider, sizeof(err->provider), "%s",
			 base->name);
		if (r == 0 && resp.status == 200) {
			struct kvfs_token tok = {0};
			_cleanup_(json_decrefp) json_t *root = NULL;
			json_t *cid;

			r = kvfs_mi_parse_token(resp.body, resp.len,
						kvfs_wall_now(), &tok);
			if (r < 0) {
				kvfs_error_set_message(err, "malformed token "
							    "response");
				return r == -ENOMEM ? r : -EBADMSG;
			}
			/* A legacy agent may silently give the system
			 * identity instead of the one asked for. */
			root = json_loadb(resp.body, resp.len, 0, NULL);
			wipe_access_token(root);
			cid = json_object_get(root, "client_id");
			if (p->selector &&
			    strcmp(p->option, "client_id") == 0 &&
			    json_is_string(cid) &&
			    strcasecmp(json_string_value(cid),
				       p->selector_value) != 0) {
				kvfs_token_clear(&tok);
				kvfs_error_set_message(
					err,
					"the token is for client_id '%s', not "
					"the client_id= asked for",
					json_string_value(cid));
				return -EPROTO;
			}
			*ret = tok;
			return 0;
		}
		if (r == 0 && !retryable_status(resp.status))
			return fail_response(p, &resp, err);
		if (r < 0 && !retryable_errno(r))
			return r;

		elapsed = (long)(kvfs_now_ms() - t0);
		delay = kvfs_mi_retry_delay_ms(n, elapsed, err->retry_after_ms);
		/* A caller waits for this fetch: no retry past its
		 * deadline (the token cache retries in the background). */
		if (deadline_ms != 0 &&
		    kvfs_now_ms() + delay + MI_MIN_ATTEMPT_MS > deadline_ms)
			delay = -1;
		if (delay < 0) {
			if (r == 0)
				return fail_response(p, &resp, err);
			return r;
		}
		if (r == 0)
			log_info("'%s' answered %ld; retrying in %ld ms",
				 base->name, resp.status, delay);
		else
			log_info("'%s' failed (%s); retrying in %ld ms",
				 base->name, err->message, delay);
		if (!kvfs_auth_provider_sleep(base, delay))
			return -ECANCELED;
		kvfs_metrics_add(KVFS_COUNTER_TOKEN_RETRIES, 1);
	}
}

static void mi_free(struct kvfs_auth_provider *base)
{
	struct mi_provider *p = (struct mi_provider *)base;

	if (!p)
		return;
	free(p->endpoint);
	free(p->selector_value);
	free(p);
}

/* The identity endpoint from the environment: an http(s) URL
 * (kvfs_url_parse: no control characters, no userinfo). */
static int check_endpoint(const char *url, struct kvfs_error *err)
{
	struct kvfs_url u;
	int r;

	r = kvfs_url_parse(url, KVFS_URL_HTTP, &u);
	if (r == -EINVAL)
		kvfs_error_set_message(err,
				       "IDENTITY_ENDPOINT '%s' is not an "
				       "http(s) URL",
				       url);
	return r;
}

int kvfs_auth_mi_new(const struct kvfs_config *c, struct kvfs_http *h,
		     struct kvfs_auth_provider **ret, struct kvfs_error *err)
{
	const char *ie = getenv("IDENTITY_ENDPOINT");
	const char *endpoint;
	struct mi_provider *p;
	int nsel = 0, r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->http = h;
	p->source = kvfs_mi_detect(ie, getenv("IDENTITY_HEADER"),
				   getenv("IMDS_ENDPOINT"),
				   access(ARC_AGENT, F_OK) == 0);
	p->base.name = kvfs_mi_source_name(p->source);
	p->base.managed = true;
	p->base.fetch = mi_fetch;
	p->base.free = mi_free;

	switch (p->source) {
	case KVFS_MI_APPSERVICE:
		endpoint = ie;
		p->base.detail = "IDENTITY_ENDPOINT and IDENTITY_HEADER are "
				 "set (App Service)";
		break;
	case KVFS_MI_ARC:
		endpoint = set(ie) ? ie : ARC_DEFAULT_ENDPOINT;
		p->base.detail = set(ie) ? "IDENTITY_ENDPOINT and "
					   "IMDS_ENDPOINT are set (Azure Arc)"
					 : "the Azure Arc agent is installed";
		break;
	default:
		endpoint = c->imds_url;
		p->base.detail = NULL;
		break;
	}
	if (!endpoint || !*endpoint) {
		kvfs_error_set_message(err, "no managed identity endpoint "
					    "known (imds_url=)");
		r = -EINVAL;
		goto fail;
	}
	if (p->source != KVFS_MI_IMDS) {
		r = check_endpoint(endpoint, err);
		if (r < 0)
			goto fail;
	}

	/* At most one user-assigned selector; App Service names two of
	 * them differently. */
	if (c->client_id && *c->client_id) {
		nsel++;
		p->option = "client_id";
		p->selector = "client_id";
		p->selector_value = strdup(c->client_id);
	}
	if (c->object_id && *c->object_id) {
		nsel++;
		p->option = "object_id";
		p->selector = p->source == KVFS_MI_APPSERVICE ? "principal_id"
							      : "object_id";
		free(p->selector_value);
		p->selector_value = strdup(c->object_id);
	}
	if (c->msi_res_id && *c->msi_res_id) {
		nsel++;
		p->option = "msi_res_id";
		p->selector = p->source == KVFS_MI_APPSERVICE ? "mi_res_id"
							      : "msi_res_id";
		free(p->selector_value);
		p->selector_value = strdup(c->msi_res_id);
	}
	if (nsel > 1) {
		kvfs_error_set_message(err, "managed identity: give at most "
					    "one of client_id=, object_id= and "
					    "msi_res_id=");
		r = -EINVAL;
		goto fail;
	}
	p->endpoint = strndup(endpoint, strcspn(endpoint, "#"));
	if (!p->endpoint || (nsel && !p->selector_value)) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = &p->base;
	return 0;

fail:
	mi_free(&p->base);
	return r;
}
