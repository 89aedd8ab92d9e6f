/* Entra ID v2 for the client-credentials providers: discovery of the token
 * endpoint, the form POST, and the parsing of its answers (jansson, field
 * by field), with the token-response reader the managed identity shares.
 * Errors keep the OAuth "error", the AADSTS number and the first line of
 * error_description.  Also the confidential client that the secret, cert
 * and workload providers are kinds of: its new, free and fetch.  The form
 * body carries a secret or an assertion and is wiped.  Called from one
 * provider fetch at a time. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "auth/credfile.h"
#include "auth/entra.h"
#include "metrics.h"
#include "url.h"
#include "util.h"

#define TOKEN_MAX (16u << 10)
#define TEN_YEARS (10LL * 365 * 86400)

void kvfs_token_clear(struct kvfs_token *t)
{
	if (!t)
		return;
	kvfs_secure_free_str(t->access_token);
	memset(t, 0, sizeof(*t));
}

static int entra_init(struct kvfs_entra *e, struct kvfs_http *h,
		      const char *authority, const char *provider)
{
	size_t n;

	*e = (struct kvfs_entra){.http = h, .provider = provider};
	if (!authority || !*authority)
		return -EINVAL;
	e->authority = strdup(authority);
	if (!e->authority)
		return -ENOMEM;
	n = strlen(e->authority);
	while (n > 0 && e->authority[n - 1] == '/')
		e->authority[--n] = '\0';
	return 0;
}

static void entra_done(struct kvfs_entra *e)
{
	if (!e)
		return;
	free(e->authority);
	free(e->tenant);
	free(e->token_endpoint);
	memset(e, 0, sizeof(*e));
}

/* The client secret goes to the token endpoint: an https URL whose
 * authority is written plainly (url.h), so that no userinfo, odd port or
 * encoded host can stand between what the document says and where the
 * secret is sent. */
static bool is_https(const char *url)
{
	struct kvfs_url u;

	return kvfs_url_parse(url, 0, &u) == 0;
}

int kvfs_entra_parse_discovery(const char *json, size_t len,
			       char **ret_token_endpoint)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *te;
	char *s;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (!root || !json_is_object(root))
		return -EBADMSG;
	te = json_object_get(root, "token_endpoint");
	if (!json_is_string(te))
		return -EBADMSG;
	/* The client secret goes there: TLS only, and no control bytes. */
	if (!is_https(json_string_value(te)))
		return -EPROTO;
	for (const char *p = json_string_value(te); *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return -EBADMSG;
	s = strdup(json_string_value(te));
	if (!s)
		return -ENOMEM;
	*ret_token_endpoint = s;
	return 0;
}

/* A JSON integer, a string of decimal digits with an optional '-', or (if
 * the format says so) a JSON real, as seconds within the format's range. */
static int parse_seconds(json_t *v, const struct kvfs_token_format *f,
			 long long *ret)
{
	long long n;

	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (f->reals && json_is_real(v)) {
		double d = json_real_value(v);

		if (!(d > -1e12 && d < 1e12))
			return -EBADMSG;
		n = (long long)d;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (!isdigit((unsigned char)s[s[0] == '-']) ||
		    strlen(s + (s[0] == '-')) > 12)
			return -EBADMSG;
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno || *end)
			return -EBADMSG;
	} else {
		return -EBADMSG;
	}
	if (n < f->min_s || n > f->max_s)
		return -EBADMSG;
	*ret = n;
	return 0;
}

static long clamp(long long n, long long limit)
{
	return (long)(n < -limit ? -limit : n > limit ? limit : n);
}

int kvfs_token_parse(const char *json, size_t len,
		     const struct kvfs_token_format *f, int64_t now,
		     struct kvfs_token *ret)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *at, *v;
	long long expires_in, refresh_in = 0;
	const char *tok;
	size_t toklen;
	char *copy;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (!root || !json_is_object(root))
		return -EBADMSG;

	at = json_object_get(root, "access_token");
	if (!json_is_string(at))
		return -EBADMSG;
	tok = json_string_value(at);
	toklen = json_string_length(at);
	/* It becomes an HTTP header: printable ASCII, bounded. */
	if (toklen == 0 || toklen > TOKEN_MAX || strlen(tok) != toklen)
		return -EBADMSG;
	for (size_t i = 0; i < toklen; i++)
		if ((unsigned char)tok[i] <= 0x20 ||
		    (unsigned char)tok[i] >= 0x7f)
			return -EBADMSG;

	v = json_object_get(root, "token_type");
	if (v && !json_is_null(v) &&
	    (!json_is_string(v) ||
	     strcasecmp(json_string_value(v), "Bearer") != 0))
		return -EBADMSG;

	v = json_object_get(root, "expires_in");
	if (f->expires_on && (!v || json_is_null(v))) {
		long long on;

		v = json_object_get(root, "expires_on");
		if (!v || parse_seconds(v, f, &on) < 0)
			return -EBADMSG;
		expires_in = on - now;
	} else if (!v || parse_seconds(v, f, &expires_in) < 0) {
		return -EBADMSG;
	}
	v = json_object_get(root, "refresh_in");
	if (v && !json_is_null(v) &&
	    (parse_seconds(v, f, &refresh_in) < 0 || refresh_in < 0))
		return -EBADMSG;

	copy = strndup(tok, toklen);
	if (!copy)
		return -ENOMEM;
	/* jansson's copy is freed with root; wipe it first. */
	OPENSSL_cleanse((char *)tok, toklen);

	*ret = (struct kvfs_token){
		.access_token = copy,
		.expires_in = clamp(expires_in, f->clamp),
		.refresh_in = clamp(refresh_in, f->clamp),
	};
	return 0;
}

int kvfs_entra_parse_token(const char *json, size_t len, struct kvfs_token *ret)
{
	/* Entra sends numbers; a lifetime beyond ten years is nonsense,
	 * and the token cache clamps what is merely absurd. */
	static const struct kvfs_token_format entra = {
		.reals = true,
		.min_s = -TEN_YEARS,
		.max_s = TEN_YEARS,
		.clamp = TEN_YEARS,
	};

	return kvfs_token_parse(json, len, &entra, 0, ret);
}

/* "AADSTS7000215: Invalid ..." -> "AADSTS7000215"; 0 when absent. */
static size_t aadsts_prefix(const char *s)
{
	size_t n = 6;

	if (strncmp(s, "AADSTS", 6) != 0)
		return 0;
	while (isdigit((unsigned char)s[n]) && n < 20)
		n++;
	return n > 6 ? n : 0;
}

void kvfs_entra_parse_error(const char *json, size_t len,
			    struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *v, *codes;
	const char *desc = NULL;

	if (!err || !json)
		return;
	root = json_loadb(json, len, 0, NULL);
	if (!root || !json_is_object(root))
		return;

	v = json_object_get(root, "error");
	if (json_is_string(v))
		snprintf(err->code, sizeof(err->code), "%s",
			 json_string_value(v));

	v = json_object_get(root, "error_description");
	if (json_is_string(v))
		desc = json_string_value(v);

	codes = json_object_get(root, "error_codes");
	if (json_is_array(codes) && json_array_size(codes) > 0 &&
	    json_is_integer(json_array_get(codes, 0)))
		snprintf(err->aadsts, sizeof(err->aadsts), "AADSTS%lld",
			 (long long)json_integer_value(
				 json_array_get(codes, 0)));
	else if (desc && aadsts_prefix(desc))
		snprintf(err->aadsts, sizeof(err->aadsts), "%.*s",
			 (int)aadsts_prefix(desc), desc);

	if (desc) {
		size_t n = aadsts_prefix(desc);

		/* The number is shown once, in parentheses; keep the
		 * text without it and without the trace ids. */
		if (n && desc[n] == ':') {
			desc += n + 1;
			while (*desc == ' ')
				desc++;
		}
		kvfs_error_set_description(err, desc);
	}
}

/* One request within the deadline of the fetch under way. */
static int perform(struct kvfs_entra *e, struct kvfs_http_request *rq,
		   struct kvfs_http_response *resp, struct kvfs_error *err)
{
	long t = kvfs_auth_request_timeout_ms(e->deadline_ms);

	if (t < 0) {
		kvfs_error_clear(err);
		kvfs_error_set_endpoint(err, rq->url);
		kvfs_error_set_message(err, "not sent before the deadline");
		return -ETIMEDOUT;
	}
	rq->timeout_ms = t;
	return kvfs_http_perform(e->http, rq, resp, err);
}

/* Fill err for a failed Entra response: status, codes, message. */
static int fail_response(struct kvfs_entra *e,
			 const struct kvfs_http_response *resp,
			 struct kvfs_error *err, const char *what)
{
	int r = kvfs_http_status_to_errno(resp->status);

	kvfs_entra_parse_error(resp->body, resp->len, err);
	if (resp->status >= 300 && resp->status < 400)
		kvfs_error_set_message(err, "%s redirected; not followed",
				       what);
	else if (!err->message[0])
		kvfs_error_set_message(err, "%s failed", what);
	return r < 0 ? r : -EPROTO;
}

int kvfs_entra_token_endpoint(struct kvfs_entra *e, const char *tenant,
			      const char **ret, struct kvfs_error *err)
{
	_cleanup_(kvfs_http_response_clear) struct kvfs_http_response resp = {
		0};
	_cleanup_free_ char *url = NULL, *endpoint = NULL, *t = NULL;
	struct kvfs_http_request rq = {.method = "GET",
				       .label = KVFS_EP_DISCOVERY};
	int r;

	if (!tenant || !*tenant) {
		kvfs_error_set_message(err, "no tenant known");
		return -EINVAL;
	}
	if (e->token_endpoint && e->tenant && strcmp(e->tenant, tenant) == 0) {
		*ret = e->token_endpoint;
		return 0;
	}

	if (asprintf(&url, "%s/%s/v2.0/.well-known/openid-configuration",
		     e->authority, tenant) < 0)
		return -ENOMEM;
	rq.url = url;
	r = perform(e, &rq, &resp, err);
	snprintf(err->provider, sizeof(err->provider), "%s", e->provider);
	if (r < 0)
		return r;
	if (resp.status != 200)
		return fail_response(e, &resp, err, "OpenID discovery");

	r = kvfs_entra_parse_discovery(resp.body, resp.len, &endpoint);
	if (r == -EPROTO) {
		kvfs_error_set_message(err, "token_endpoint is not https");
		return r;
	}
	if (r < 0) {
		kvfs_error_set_message(err, "malformed OpenID discovery "
					    "document");
		return r;
	}
	t = strdup(tenant);
	if (!t)
		return -ENOMEM;

	free(e->tenant);
	free(e->token_endpoint);
	e->tenant = TAKE_PTR(t);
	e->token_endpoint = TAKE_PTR(endpoint);
	*ret = e->token_endpoint;
	return 0;
}

/* name=value&... with values percent-encoded; wiped when freed. */
static int append_param(char **body, size_t *len, const char *name,
			const char *value)
{
	_cleanup_secret_ char *enc = NULL;
	char *nb;
	size_t n;

	enc = kvfs_http_urlencode(value);
	if (!enc)
		return -ENOMEM;
	n = *len + (*len ? 1 : 0) + strlen(name) + 1 + strlen(enc);
	nb = malloc(n + 1);
	if (!nb)
		return -ENOMEM;
	snprintf(nb, n + 1, "%s%s%s=%s", *body ? *body : "", *len ? "&" : "",
		 name, enc);
	kvfs_secure_free_str(*body);
	*body = nb;
	*len = n;
	return 0;
}

struct form_param {
	const char *name;
	const char *value; /* not yet encoded */
};

/* POST client_id, scope, grant_type and the extra parameters. */
static int get_token(struct kvfs_entra *e, const char *tenant,
		     const char *client_id, const char *resource,
		     const struct form_param *extra, size_t n_extra,
		     struct kvfs_token *ret, struct kvfs_error *err)
{
	_cleanup_(kvfs_http_response_clear) struct kvfs_http_response resp = {
		0};
	_cleanup_secret_ char *body = NULL;
	_cleanup_free_ char *scope = NULL;
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded",
		NULL,
	};
	struct kvfs_http_request rq = {.method = "POST",
				       .label = KVFS_EP_TOKEN,
				       .headers = headers,
				       .secret = true};
	const char *endpoint;
	size_t len = 0;
	int r;

	r = kvfs_entra_token_endpoint(e, tenant, &endpoint, err);
	if (r < 0)
		return r;

	if (asprintf(&scope, "%s/.default", resource) < 0)
		return -ENOMEM;
	r = append_param(&body, &len, "client_id", client_id);
	if (r == 0)
		r = append_param(&body, &len, "scope", scope);
	if (r == 0)
		r = append_param(&body, &len, "grant_type",
				 "client_credentials");
	for (size_t i = 0; r == 0 && i < n_extra; i++)
		r = append_param(&body, &len, extra[i].name, extra[i].value);
	if (r < 0)
		return r;

	rq.url = endpoint;
	rq.body = body;
	rq.body_len = len;
	r = perform(e, &rq, &resp, err);
	snprintf(err->provider, sizeof(err->provider), "%s", e->provider);
	if (r < 0)
		return r;
	if (resp.status != 200)
		return fail_response(e, &resp, err, "token request");

	r = kvfs_entra_parse_token(resp.body, resp.len, ret);
	if (r == -EBADMSG)
		kvfs_error_set_message(err, "malformed token response");
	return r;
}

/* ---- the confidential client ---- */

static int prove_text(struct kvfs_entra_client *c, char **ret,
		      struct kvfs_error *err)
{
	if (c->file)
		return kvfs_credfile_read_text(c->file, c->kind->file_flags,
					       ret, err);
	*ret = strdup(c->value);
	return *ret ? 0 : -ENOMEM;
}

static int client_fetch(struct kvfs_auth_provider *base, const char *tenant,
			const char *resource, int64_t deadline_ms,
			struct kvfs_token *ret, struct kvfs_error *err)
{
	struct kvfs_entra_client *c = (struct kvfs_entra_client *)base;
	_cleanup_secret_ char *proof = NULL;
	struct form_param params[2] = {
		{"client_assertion_type",
		 "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		{"client_assertion", NULL},
	};
	int r;

	c->entra.deadline_ms = deadline_ms;
	r = c->kind->prove ? c->kind->prove(c, tenant, &proof, err)
			   : prove_text(c, &proof, err);
	if (r < 0) {
		snprintf(err->provider, sizeof(err->provider), "%s",
			 base->name);
		return r;
	}
	if (c->kind->assertion) {
		params[1].value = proof;
		return get_token(&c->entra, tenant, c->client_id, resource,
				 params, 2, ret, err);
	}
	params[0] = (struct form_param){"client_secret", proof};
	return get_token(&c->entra, tenant, c->client_id, resource, params, 1,
			 ret, err);
}

static void client_free(struct kvfs_auth_provider *base)
{
	struct kvfs_entra_client *c = (struct kvfs_entra_client *)base;

	if (!c)
		return;
	if (c->kind->done)
		c->kind->done(c);
	entra_done(&c->entra);
	free(c->client_id);
	free(c->file);
	kvfs_secure_free_str(c->value);
	free(c);
}

static bool set(const char *v)
{
	return v && *v;
}

int kvfs_entra_client_new(const struct kvfs_entra_client_kind *kind,
			  const struct kvfs_config *c, const char *file,
			  const char *value, struct kvfs_http *h,
			  struct kvfs_auth_provider **ret,
			  struct kvfs_error *err)
{
	struct kvfs_entra_client *p;
	int r;

	assert(kind->size == 0 || kind->size >= sizeof(*p));
	if (!set(c->client_id)) {
		kvfs_error_set_message(err,
				       "auth=%s needs client_id= (or "
				       "AZURE_CLIENT_ID)",
				       kind->name);
		return -EINVAL;
	}
	if (!set(file) && !set(value)) {
		kvfs_error_set_message(err, "auth=%s needs %s", kind->name,
				       kind->needs);
		return -EINVAL;
	}
	if (!set(c->authority)) {
		kvfs_error_set_message(err, "no authority= known");
		return -EINVAL;
	}

	p = calloc(1, kind->size ? kind->size : sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->base.name = kind->name;
	p->base.fetch = client_fetch;
	p->base.free = client_free;
	p->kind = kind;

	r = entra_init(&p->entra, h, c->authority, kind->name);
	if (r == 0) {
		p->client_id = strdup(c->client_id);
		if (set(file))
			p->file = strdup(file);
		else
			p->value = strdup(value);
		if (!p->client_id || (!p->file && !p->value))
			r = -ENOMEM;
	}
	if (r < 0) {
		client_free(&p->base);
		return r;
	}
	*ret = &p->base;
	return 0;
}
