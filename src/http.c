/* libcurl behind kvfs_http_perform().  One client per mount: a share object
 * (DNS cache and TLS sessions, with one mutex per kind of data) and a LIFO
 * pool of idle easy handles, so that consecutive requests reuse the handle
 * that holds the warm connection and a mount does one TLS handshake in the
 * common case.  Connections stay with their handle: libcurl 7.88 documents
 * sharing the connection cache between concurrent threads as unsafe.
 * The trust store (default CAs + ca_file=) is built once and handed to
 * every handshake.  Every request sets all its options afresh on a reset
 * handle: https only (http when asked, for IMDS), no redirects,
 * verification on, timeouts, a body cap, and the proxy: the mount's for a
 * URL that its no-proxy list leaves to it, else none (libcurl never reads
 * the environment's).  CURLcode becomes -errno here and
 * nowhere else.  Thread-safe: the pool and the share have their own locks; no
 * lock is held while a transfer runs. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "backoff.h"
#include "defaults.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "secmem.h"
#include "url.h"
#include "util.h"

/* Idle handles kept, each with its connection (defaults.h says why so
 * many).  Handles are made only on demand, so a quiet mount holds one or
 * two. */
#define POOL_MAX KVFS_HTTP_POOL_MAX
#define HEADER_VALUE_MAX 4096
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

struct kvfs_http {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];
	size_t npool;

	X509_STORE *store; /* default trust + ca_file=; see build_store() */

	long connect_timeout_ms;
	long timeout_ms;
	size_t max_body;

	char *proxy;   /* with its credentials; wiped when freed; or NULL */
	char *noproxy; /* or NULL */
	char proxy_shown[256]; /* proxy for a message: redacted */
};

/* What the callbacks of one transfer write into. */
struct transfer {
	size_t max_body;
	char *body;
	size_t len, cap;
	bool too_big;
	bool oom;
	char *www_authenticate;
	char *retry_after;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_ret;

static void global_init(void)
{
	/* libcurl copies request headers (the bearer token) and bodies (a
	 * client secret or assertion) into buffers of its own: wipe them
	 * when it frees them. */
	global_ret = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc,
					  kvfs_secmem_free, kvfs_secmem_realloc,
					  strdup, calloc);
}

static void share_lock(CURL *handle, curl_lock_data data,
		       curl_lock_access access, void *userp)
{
	struct kvfs_http *h = userp;

	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userp)
{
	struct kvfs_http *h = userp;

	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[data]);
}

/* The trust store of the mount, built once: libcurl's default bundle and
 * directory, plus ca_file= (it adds trust; CURLOPT_CAINFO would replace
 * it).  Handing every handshake this one store spares parsing the system
 * bundle (~45 ms) on each new connection. */
static int build_store(struct kvfs_http *h, const char *ca_file)
{
	const char *cainfo = NULL, *capath = NULL;
	CURL *probe;
	int n = 0;

	h->store = X509_STORE_new();
	if (!h->store)
		return -ENOMEM;
	X509_STORE_set_flags(h->store, X509_V_FLAG_TRUSTED_FIRST |
					       X509_V_FLAG_PARTIAL_CHAIN);

	probe = curl_easy_init();
	if (!probe)
		return -ENOMEM;
	(void)curl_easy_getinfo(probe, CURLINFO_CAINFO, &cainfo);
	(void)curl_easy_getinfo(probe, CURLINFO_CAPATH, &capath);
	if (!cainfo && !capath)
		cainfo = SYSTEM_CA_BUNDLE;
	if (cainfo && !X509_STORE_load_file(h->store, cainfo))
		log_debug("cannot load the CA bundle '%s'", cainfo);
	if (capath && !X509_STORE_load_path(h->store, capath))
		log_debug("cannot use the CA directory '%s'", capath);
	curl_easy_cleanup(probe);
	ERR_clear_error();

	if (ca_file) {
		BIO *bio;
		X509 *x;

		errno = 0;
		bio = BIO_new_file(ca_file, "r");
		if (!bio) {
			int e = errno ? errno : EIO;

			log_error("cannot read CA file '%s': %s", ca_file,
				  strerror(e));
			ERR_clear_error();
			return -e;
		}
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
			if (X509_STORE_add_cert(h->store, x))
				n++;
			X509_free(x);
		}
		BIO_free(bio);
		ERR_clear_error();
		if (n == 0) {
			log_error("CA file '%s' holds no PEM certificate",
				  ca_file);
			return -EINVAL;
		}
	}
	return 0;
}

static CURLcode ssl_ctx_cb(CURL *c, void *ssl_ctx, void *userp)
{
	struct kvfs_http *h = userp;

	if (!X509_STORE_up_ref(h->store))
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_cert_store(ssl_ctx, h->store);
	/* No response (a token, a key) left in OpenSSL's read buffer. */
	SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
	return CURLE_OK;
}

int kvfs_http_new(const struct kvfs_http_options *o, struct kvfs_http **ret)
{
	const curl_version_info_data *ver;
	struct kvfs_http *h;
	int r;

	pthread_once(&global_once, global_init);
	if (global_ret != CURLE_OK)
		return -EIO;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(h->share_locks); i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	pthread_mutex_init(&h->pool_lock, NULL);

	h->connect_timeout_ms = o && o->connect_timeout_ms > 0
					? o->connect_timeout_ms
					: KVFS_DEFAULT_HTTP_CONNECT_TIMEOUT_MS;
	h->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms
					       : KVFS_DEFAULT_HTTP_TIMEOUT_MS;
	h->max_body = o && o->max_body > 0 ? o->max_body : KVFS_HTTP_MAX_BODY;
	if (o && o->proxy) {
		h->proxy = strdup(o->proxy);
		if (!h->proxy ||
		    (o->noproxy && !(h->noproxy = strdup(o->noproxy)))) {
			r = -ENOMEM;
			goto fail;
		}
		kvfs_url_redact(h->proxy, h->proxy_shown,
				sizeof(h->proxy_shown));
		log_info("HTTPS through proxy '%s'%s%s%s", h->proxy_shown,
			 h->noproxy ? " (not to " : "",
			 h->noproxy ? h->noproxy : "", h->noproxy ? ")" : "");
	}

	/* The shared trust store is installed through the SSL_CTX. */
	ver = curl_version_info(CURLVERSION_NOW);
	if (!ver->ssl_version || strncmp(ver->ssl_version, "OpenSSL", 7) != 0) {
		log_error("libcurl is not built with OpenSSL (%s)",
			  ver->ssl_version ? ver->ssl_version : "no TLS");
		r = -EOPNOTSUPP;
		goto fail;
	}
	r = build_store(h, o ? o->ca_file : NULL);
	if (r < 0)
		goto fail;

	h->share = curl_share_init();
	if (!h->share) {
		r = -ENOMEM;
		goto fail;
	}
	if (curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_SSL_SESSION)) {
		r = -EIO;
		goto fail;
	}

	*ret = h;
	return 0;

fail:
	kvfs_http_free(h);
	return r;
}

void kvfs_http_free(struct kvfs_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	X509_STORE_free(h->store);
	kvfs_secure_free_str(h->proxy);
	free(h->noproxy);
	pthread_mutex_destroy(&h->pool_lock);
	for (size_t i = 0; i < ELEMENTSOF(h->share_locks); i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	free(h);
}

/* The most recently released handle first: it holds the warm connection. */
static CURL *pool_get(struct kvfs_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->npool > 0)
		c = h->pool[--h->npool];
	pthread_mutex_unlock(&h->pool_lock);
	return c ? c : curl_easy_init();
}

static void pool_put(struct kvfs_http *h, CURL *c)
{
	/* Keeps the live connection and the TLS session; drops every option,
	 * so no bearer header or body pointer outlives its request. */
	curl_easy_reset(c);

	pthread_mutex_lock(&h->pool_lock);
	if (h->npool < POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

/* Grow by copying, so that no stale copy of a token is left behind by
 * realloc. */
static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;

	if (n == 0)
		return 0;
	if (n > t->max_body - t->len) {
		t->too_big = true;
		return 0;
	}
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 16384;
		char *nb;

		while (cap < t->len + n + 1)
			cap *= 2;
		if (cap > t->max_body + 1)
			cap = t->max_body + 1;
		nb = malloc(cap);
		if (!nb) {
			t->oom = true;
			return 0;
		}
		if (t->body) {
			memcpy(nb, t->body, t->len);
			kvfs_secure_free(t->body, t->cap);
		}
		t->body = nb;
		t->cap = cap;
	}
	memcpy(t->body + t->len, data, n);
	t->len += n;
	t->body[t->len] = '\0';
	return n;
}

/* Value of "Name: value" when the line is that header, trimmed. */
static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *v, *end;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	v = line + nl + 1;
	end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if ((size_t)(end - v) > HEADER_VALUE_MAX)
		return NULL;
	return strndup(v, (size_t)(end - v));
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;
	char *v;

	/* A new status line (after a 100 Continue, say) starts afresh. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		free(t->www_authenticate);
		free(t->retry_after);
		t->www_authenticate = t->retry_after = NULL;
		return n;
	}

	v = header_value(data, n, "WWW-Authenticate");
	if (v) {
		/* Several challenges: keep the first Bearer one. */
		if (!t->www_authenticate ||
		    (strncasecmp(t->www_authenticate, "Bearer", 6) != 0 &&
		     strncasecmp(v, "Bearer", 6) == 0)) {
			free(t->www_authenticate);
			t->www_authenticate = v;
		} else {
			free(v);
		}
		return n;
	}
	v = header_value(data, n, "Retry-After");
	if (v) {
		free(t->retry_after);
		t->retry_after = v;
	}
	return n;
}

static void transfer_clear(struct transfer *t)
{
	if (t->body)
		kvfs_secure_free(t->body, t->cap);
	free(t->www_authenticate);
	free(t->retry_after);
	memset(t, 0, sizeof(*t));
}

/* curl_slist_free_all() does not wipe; a header may hold the token. */
static void slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		if (p->data)
			OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static bool has_scheme(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return strncasecmp(url, scheme, n) == 0 &&
	       strncmp(url + n, "://", 3) == 0;
}

static int curl_to_errno(CURLcode c, const struct transfer *t, long os_errno)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
			return -EHOSTUNREACH;
		if (os_errno == ETIMEDOUT)
			return -ETIMEDOUT;
		return -ECONNREFUSED;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	/* The connection went away under the request: nothing, or part of
	 * a response, came back. */
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return -ECONNRESET;
	case CURLE_WRITE_ERROR:
		if (t->too_big)
			return -EFBIG;
		if (t->oom)
			return -ENOMEM;
		return -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_BAD_CONTENT_ENCODING:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* Retry-After in ms (whole seconds); 0 when absent, unusable or in the
 * past. */
static int64_t retry_after_ms(const char *v)
{
	uint32_t s;

	if (kvfs_backoff_parse_retry_after(v, kvfs_wall_now(), &s) < 0)
		return 0;
	return (int64_t)s * 1000;
}

/* Whether rq goes through the mount's proxy: never a request that says
 * no_proxy (managed identity), nor a URL the no-proxy list names.  Decided
 * here, not by libcurl, so that an error can say which it was. */
static bool proxied(const struct kvfs_http *h,
		    const struct kvfs_http_request *rq)
{
	return h->proxy && !rq->no_proxy &&
	       !kvfs_url_no_proxy(rq->url, h->noproxy);
}

/* A transfer through the proxy failed with code (-errno r): when the
 * proxy refused the tunnel or could not be reached, say so in err, naming
 * it (redacted), and return -ECONNREFUSED; otherwise r, err untouched. */
static int proxy_error(const struct kvfs_http *h, CURL *c, CURLcode code, int r,
		       struct kvfs_error *err)
{
	long connect_code = 0;

	(void)curl_easy_getinfo(c, CURLINFO_HTTP_CONNECTCODE, &connect_code);
	if (connect_code != 0 && (connect_code < 200 || connect_code > 299)) {
		kvfs_error_set_message(
			err, "proxy '%s' refused the tunnel with %ld%s",
			h->proxy_shown, connect_code,
			connect_code == 407 ? " (proxy authentication required)"
					    : "");
		return -ECONNREFUSED;
	}
	if (code == CURLE_COULDNT_RESOLVE_PROXY ||
	    code == CURLE_COULDNT_CONNECT) {
		kvfs_error_set_message(err, "cannot reach proxy '%s': %s",
				       h->proxy_shown,
				       curl_easy_strerror(code));
		return code == CURLE_COULDNT_CONNECT ? r : -EHOSTUNREACH;
	}
	return r;
}

/* Everything one request needs, on a freshly reset handle. */
static int setup(struct kvfs_http *h, CURL *c,
		 const struct kvfs_http_request *rq, struct curl_slist *headers,
		 struct transfer *t, char *errbuf)
{
	const char *protocols = rq->allow_http ? "http,https" : "https";
	long timeout_ms = h->timeout_ms, connect_ms = h->connect_timeout_ms;
	CURLcode e = CURLE_OK;

	/* A caller with a deadline may ask for less, never for more. */
	if (rq->timeout_ms > 0 && rq->timeout_ms < timeout_ms)
		timeout_ms = rq->timeout_ms;
	if (connect_ms > timeout_ms)
		connect_ms = timeout_ms;

#define SET(opt, val)                                                          \
	do {                                                                   \
		if (e == CURLE_OK)                                             \
			e = curl_easy_setopt(c, opt, val);                     \
	} while (0)

	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_SHARE, h->share);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, protocols);
	SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_body);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "kvfs/" KVFS_VERSION);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, t);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, t);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	/* "" is no proxy, and keeps libcurl off https_proxy and no_proxy:
	 * config.c read them once, into the options. */
	if (proxied(h, rq)) {
		SET(CURLOPT_PROXY, h->proxy);
		SET(CURLOPT_NOPROXY, "");
		/* TLS to the vault inside a CONNECT tunnel, verified as
		 * without a proxy; plain http (IMDS) never comes here. */
		SET(CURLOPT_HTTPPROXYTUNNEL, 1L);
	} else {
		SET(CURLOPT_PROXY, "");
	}
	/* libcurl loads no CA of its own; ssl_ctx_cb installs ours. */
	SET(CURLOPT_CAINFO, NULL);
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	SET(CURLOPT_SSL_CTX_DATA, h);
	if (strcmp(rq->method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		SET(CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
	} else {
		SET(CURLOPT_HTTPGET, 1L);
	}
#undef SET

	if (e == CURLE_OUT_OF_MEMORY)
		return -ENOMEM;
	return e == CURLE_OK ? 0 : -EINVAL;
}

static struct curl_slist *build_headers(const struct kvfs_http_request *rq)
{
	struct curl_slist *l = NULL, *n;

#define ADD(s)                                                                 \
	do {                                                                   \
		n = curl_slist_append(l, (s));                                 \
		if (!n)                                                        \
			goto oom;                                              \
		l = n;                                                         \
	} while (0)

	ADD("Accept: application/json");
	if (rq->body)
		ADD("Expect:");
	if (rq->bearer) {
		_cleanup_secret_ char *auth = NULL;

		auth = kvfs_secmem_concat("Authorization: Bearer ", rq->bearer,
					  NULL);
		if (!auth)
			goto oom;
		n = curl_slist_append(l, auth);
		if (!n)
			goto oom;
		l = n;
	}
	for (const char *const *p = rq->headers; p && *p; p++)
		ADD(*p);
#undef ADD
	return l;

oom:
	slist_free_wiped(l);
	return NULL;
}

int kvfs_http_perform(struct kvfs_http *h, const struct kvfs_http_request *rq,
		      struct kvfs_http_response *ret, struct kvfs_error *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct transfer t = {.max_body = h->max_body};
	struct kvfs_error dummy;
	struct curl_slist *headers;
	int64_t start;
	long status = 0, os_errno = 0;
	CURLcode code;
	CURL *c;
	int r;

	if (!err)
		err = &dummy;
	kvfs_error_clear(err);
	kvfs_error_set_endpoint(err, rq->url);

	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0) {
		kvfs_error_set_message(err, "unsupported method '%s'",
				       rq->method);
		return -EINVAL;
	}
	if (!has_scheme(rq->url, "https") &&
	    !(rq->allow_http && has_scheme(rq->url, "http"))) {
		kvfs_error_set_message(err, "refusing a URL that is not https");
		return -EPROTO;
	}
	if (rq->bearer && !has_scheme(rq->url, "https")) {
		kvfs_error_set_message(err, "refusing to send a token over "
					    "plain http");
		return -EPERM;
	}

	headers = build_headers(rq);
	if (!headers)
		return -ENOMEM;

	/* A token request gets a handle of its own, closed after it: the
	 * warm handles of the pool keep their connections. */
	c = rq->secret ? curl_easy_init() : pool_get(h);
	if (!c) {
		slist_free_wiped(headers);
		return -ENOMEM;
	}

	r = setup(h, c, rq, headers, &t, errbuf);
	if (r < 0) {
		kvfs_error_set_message(err, "cannot set up the request");
		goto out;
	}

	start = kvfs_now_ms();
	code = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);

	r = curl_to_errno(code, &t, os_errno);
	kvfs_metrics_request(rq->label, r < 0 ? 0 : status);
	if (r < 0) {
		/* The proxy's own message, when it was the proxy; libcurl's
		 * words may quote the proxy, password and all: not kept. */
		if (proxied(h, rq)) {
			r = proxy_error(h, c, code, r, err);
			errbuf[0] = '\0';
		}
		if (err->message[0] == '\0' && r == -EFBIG)
			kvfs_error_set_message(err,
					       "response larger than %zu bytes",
					       h->max_body);
		else if (err->message[0] == '\0')
			kvfs_error_set_message(
				err, "%s",
				errbuf[0] ? errbuf : curl_easy_strerror(code));
		/* The chain was not trusted (not a name mismatch, which
		 * leaves the verify result at 0). */
		if (err && code == CURLE_PEER_FAILED_VERIFICATION) {
			long vr = 0;

			curl_easy_getinfo(c, CURLINFO_SSL_VERIFYRESULT, &vr);
			err->tls_verify = vr != 0;
		}
		log_debug("%s %s -> %s (%ld ms)", rq->method, err->endpoint,
			  err->message, (long)(kvfs_now_ms() - start));
		goto out;
	}
	log_debug("%s %s -> %ld (%ld ms)", rq->method, err->endpoint, status,
		  (long)(kvfs_now_ms() - start));

	if (!t.body) {
		t.body = calloc(1, 1);
		if (!t.body) {
			r = -ENOMEM;
			goto out;
		}
		t.cap = 1;
	}
	err->http_status = (int)status;
	err->retry_after_ms = retry_after_ms(t.retry_after);
	*ret = (struct kvfs_http_response){
		.status = status,
		.body = TAKE_PTR(t.body),
		.len = t.len,
		.www_authenticate = TAKE_PTR(t.www_authenticate),
		.retry_after = TAKE_PTR(t.retry_after),
	};
	/* The body is wiped by length when cleared; zero its slack now. */
	if (t.cap > t.len)
		OPENSSL_cleanse(ret->body + t.len, t.cap - t.len);
	r = 0;

out:
	if (rq->secret)
		curl_easy_cleanup(c);
	else
		pool_put(h, c);
	slist_free_wiped(headers);
	transfer_clear(&t);
	return r;
}

void kvfs_http_response_clear(struct kvfs_http_response *r)
{
	if (!r)
		return;
	if (r->body)
		kvfs_secure_free(r->body, r->len);
	free(r->www_authenticate);
	free(r->retry_after);
	memset(r, 0, sizeof(*r));
}

int kvfs_http_status_to_errno(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404 || status == 410)
		return -ENOENT;
	if (status == 408 || status == 429 || (status >= 500 && status < 600))
		return -EAGAIN;
	if (status >= 400 && status < 500)
		return -EINVAL;
	return -EPROTO;
}

char *kvfs_http_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out, *p;

	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	p = out;
	for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
		if ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
		    (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' ||
		    *q == '_' || *q == '~') {
			*p++ = (char)*q;
		} else {
			*p++ = '%';
			*p++ = hex[*q >> 4];
			*p++ = hex[*q & 15];
		}
	}
	*p = '\0';
	return out;
}
