/* libcurl behind one small interface: a per-mount client with a pool of
 * reusable easy handles sharing DNS, TLS sessions and connections; TLS
 * verification always on (ca_file= only adds trust; through a proxy too,
 * whose CONNECT tunnel carries the TLS of the vault); the proxy of the
 * options and nothing else (no variable of the environment); redirects
 * never followed; bodies capped; connect and total timeouts; CURLcode and
 * HTTP status translated to -errno here and nowhere else.  Knows nothing of
 * Azure or JSON.  Thread-safe: any thread may call kvfs_http_perform(). */
#ifndef KVFS_HTTP_H
#define KVFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "defaults.h"
#include "error.h"

#define KVFS_HTTP_MAX_BODY (4u << 20)

struct kvfs_http;

struct kvfs_http_options {
	const char *ca_file; /* extra trusted CAs (PEM), or NULL */
	/* 0: KVFS_DEFAULT_HTTP_CONNECT_TIMEOUT_MS */
	long connect_timeout_ms;
	/* whole transfer; 0: KVFS_DEFAULT_HTTP_TIMEOUT_MS */
	long timeout_ms;
	size_t max_body; /* default KVFS_HTTP_MAX_BODY when 0 */
	/* "http[s]://[USER:PASS@]host[:port]", or NULL: no proxy.  Copied;
	 * never logged but redacted. */
	const char *proxy;
	/* libcurl's list of hosts reached without the proxy, or NULL. */
	const char *noproxy;
};

int kvfs_http_new(const struct kvfs_http_options *o, struct kvfs_http **ret);
void kvfs_http_free(struct kvfs_http *h);

struct kvfs_http_request {
	const char *method; /* "GET" or "POST" */
	const char *url;
	/* What the request is for, in the caller's words: counted by the
	 * metrics as it is (an enum kvfs_metrics_endpoint), so that nothing
	 * below the caller guesses it from the URL.  Every caller sets it; 0
	 * (left out) counts as "other".  No meaning here. */
	unsigned label;
	const char *bearer;	    /* sent as Authorization: Bearer, or NULL */
	const char *const *headers; /* extra "Name: value", NULL-terminated */
	const char *body;	    /* POST body, or NULL */
	size_t body_len;
	bool allow_http; /* plain http allowed (IMDS on loopback) */
	/* Never through the proxy, whatever noproxy= says: the managed
	 * identity endpoints, which are link-local or on the host. */
	bool no_proxy;
	long timeout_ms; /* whole transfer, at most the client's; 0: its */
	/* A token request: it gets a handle of its own, closed after it, so
	 * that libcurl's receive buffer, which keeps the last response for
	 * as long as the handle lives, is freed (and wiped) at once. */
	bool secret;
};

struct kvfs_http_response {
	long status;
	char *body; /* NUL-terminated; wiped when cleared */
	size_t len;
	char *www_authenticate; /* WWW-Authenticate header value, or NULL */
	char *retry_after;	/* Retry-After header value, or NULL */
};

/* Perform one request.  Returns 0 when a complete response arrived,
 * whatever its status; -ETIMEDOUT, -ECONNREFUSED (also: the proxy refused
 * the tunnel, or could not be reached; err->message then names it,
 * redacted), -EHOSTUNREACH, -ECONNRESET
 * (the connection dropped before the response was whole), -EFBIG (body
 * over the cap), -EPROTO (TLS or protocol failure), -EIO otherwise,
 * with err->message and err->endpoint filled.  A bearer token is refused
 * (-EPERM) on a non-https URL.  err is reset first; on a response,
 * err->http_status and err->retry_after_ms (from Retry-After) are set. */
int kvfs_http_perform(struct kvfs_http *h, const struct kvfs_http_request *rq,
		      struct kvfs_http_response *ret, struct kvfs_error *err);

void kvfs_http_response_clear(struct kvfs_http_response *r);

/* Map a final HTTP status to -errno: 401/403 -> -EACCES, 404/410 ->
 * -ENOENT, 408/429/5xx -> -EAGAIN, other 4xx -> -EINVAL, 2xx -> 0. */
int kvfs_http_status_to_errno(long status);

/* Percent-encode for application/x-www-form-urlencoded.  Result is
 * malloc'ed; NULL on ENOMEM. */
char *kvfs_http_urlencode(const char *s);

#endif
