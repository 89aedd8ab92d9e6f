/* The URL module: a strict look at the authority as written, then CURLU
 * for the rest (scheme, IPv6 literal, port range, path), then the parts
 * in the one form every caller compares (lower-case host, port filled).
 * Redaction works on the string itself, so that a URL CURLU refuses is
 * still stripped of its secrets.  No state; any thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "url.h"

#define HOST_MAX 253 /* a DNS name's longest */
#define PORT_DIGITS 5

static bool alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool name_char(char c)
{
	return alpha(c) || digit(c) || c == '-' || c == '.' || c == '_';
}

static bool ipv6_char(char c)
{
	return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == ':' || c == '.';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The authority a[0..len) is host[:port] written plainly (see url.h);
 * *ret_port: with a port. */
static bool authority_plain(const char *a, size_t len, bool *ret_port)
{
	size_t i = 0, digits;

	if (len > 0 && a[0] == '[') {
		for (i = 1; i < len && ipv6_char(a[i]); i++)
			;
		if (i == 1 || i >= len || a[i] != ']')
			return false;
		i++;
	} else {
		for (; i < len && name_char(a[i]); i++)
			;
		if (i == 0 || i > HOST_MAX || a[0] == '.' || a[0] == '-')
			return false;
	}
	*ret_port = i < len;
	if (i == len)
		return true;
	if (a[i++] != ':')
		return false;
	for (digits = 0; i < len && digit(a[i]); i++)
		digits++;
	return i == len && digits >= 1 && digits <= PORT_DIGITS;
}

static int curl_to_errno(CURLUcode rc)
{
	return rc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

int kvfs_url_parse(const char *url, unsigned flags, struct kvfs_url *ret)
{
	struct kvfs_url u = {0};
	const char *auth;
	char *host = NULL, *port = NULL;
	size_t sl, al, hl;
	unsigned long pv;
	CURLUcode rc;
	CURLU *h;
	int r = -EINVAL;

	if (!url)
		return -EINVAL;
	for (sl = 0; alpha(url[sl]); sl++)
		;
	if (strncmp(url + sl, "://", 3) != 0)
		return -EINVAL;
	if (sl == 5 && strncasecmp(url, "https", 5) == 0)
		memcpy(u.scheme, "https", 6);
	else if (sl == 4 && strncasecmp(url, "http", 4) == 0 &&
		 (flags & KVFS_URL_HTTP))
		memcpy(u.scheme, "http", 5);
	else
		return -EINVAL;
	auth = url + sl + 3;
	al = strcspn(auth, "/?#");
	if (!authority_plain(auth, al, &u.port_given))
		return -EINVAL;

	h = curl_url();
	if (!h)
		return -ENOMEM;
	rc = curl_url_set(h, CURLUPART_URL, url,
			  CURLU_PATH_AS_IS | CURLU_DISALLOW_USER);
	if (rc == CURLUE_OK)
		rc = curl_url_get(h, CURLUPART_HOST, &host, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (rc != CURLUE_OK) {
		r = curl_to_errno(rc);
		goto out;
	}
	hl = strlen(host);
	if (hl == 0 || hl >= sizeof(u.host))
		goto out;
	for (size_t i = 0; i <= hl; i++)
		u.host[i] = lower(host[i]);
	pv = strtoul(port, NULL, 10);
	if (pv < 1 || pv > 65535) /* CURLU takes a port 0 */
		goto out;
	u.port = (unsigned)pv;
	u.rest = (size_t)(auth + al - url);
	*ret = u;
	r = 0;
out:
	curl_free(port);
	curl_free(host);
	curl_url_cleanup(h);
	return r;
}

int kvfs_url_origin(const struct kvfs_url *u, char **ret)
{
	char *o;
	int n;

	if (u->port_given)
		n = asprintf(&o, "%s://%s:%u", u->scheme, u->host, u->port);
	else
		n = asprintf(&o, "%s://%s", u->scheme, u->host);
	if (n < 0)
		return -ENOMEM;
	*ret = o;
	return 0;
}

bool kvfs_url_same_origin(const char *a, const char *b)
{
	struct kvfs_url ua, ub;

	if (kvfs_url_parse(a, KVFS_URL_HTTP, &ua) < 0 ||
	    kvfs_url_parse(b, KVFS_URL_HTTP, &ub) < 0)
		return false;
	return strcmp(ua.scheme, ub.scheme) == 0 &&
	       strcmp(ua.host, ub.host) == 0 && ua.port == ub.port;
}

int kvfs_url_host(const char *url, char **ret)
{
	struct kvfs_url u;
	char *h;
	int r;

	r = kvfs_url_parse(url, KVFS_URL_HTTP, &u);
	if (r < 0)
		return r;
	h = strdup(u.host);
	if (!h)
		return -ENOMEM;
	*ret = h;
	return 0;
}

const char *kvfs_url_path(const char *url)
{
	const char *p = url ? strstr(url, "://") : NULL;

	return p ? strchr(p + 3, '/') : NULL;
}

/* An address without its brackets, as network bytes: 4 (IPv4), 16 (IPv6)
 * or 0 (not an address). */
static size_t address(const char *s, size_t n, unsigned char ret[16])
{
	char buf[INET6_ADDRSTRLEN + 2];

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, ret) == 1)
		return 4;
	if (inet_pton(AF_INET6, buf, ret) == 1)
		return 16;
	return 0;
}

/* One entry of a no-proxy list (e, n bytes, not empty) against a host as
 * struct kvfs_url has it. */
static bool no_proxy_entry(const char *host, const char *e, size_t n)
{
	unsigned char ha[16], ea[16];
	size_t hlen = address(host, strlen(host), ha), elen, len;
	const char *slash = memchr(e, '/', n);

	if (n == 1 && e[0] == '*')
		return true;
	if (slash) { /* a network */
		unsigned long bits;
		char digits[4];
		size_t dn = n - (size_t)(slash - e) - 1;

		elen = address(e, (size_t)(slash - e), ea);
		if (!elen || elen != hlen || dn == 0 || dn >= sizeof(digits))
			return false;
		memcpy(digits, slash + 1, dn);
		digits[dn] = '\0';
		if (strspn(digits, "0123456789") != dn)
			return false;
		bits = strtoul(digits, NULL, 10);
		if (bits > elen * 8)
			return false;
		for (size_t i = 0; i<elen; i++, bits = bits> 8 ? bits - 8 : 0) {
			unsigned mask =
				bits >= 8 ? 0xff : (0xff00u >> bits) & 0xff;

			if ((ha[i] & mask) != (ea[i] & mask))
				return false;
		}
		return true;
	}
	elen = address(e, n, ea);
	if (elen || hlen)
		return elen == hlen && memcmp(ha, ea, elen) == 0;
	/* a name: itself, or a name under it */
	while (n > 0 && e[0] == '.') {
		e++;
		n--;
	}
	while (n > 0 && e[n - 1] == '.')
		n--;
	len = strlen(host);
	if (n == 0 || len < n || strncasecmp(host + len - n, e, n) != 0)
		return false;
	return len == n || host[len - n - 1] == '.';
}

bool kvfs_url_no_proxy(const char *url, const char *list)
{
	struct kvfs_url u;

	if (!list || kvfs_url_parse(url, KVFS_URL_HTTP, &u) < 0)
		return false;
	for (const char *p = list; *p;) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0 && no_proxy_entry(u.host, p, n))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

/* A precision for "%.*s": n, or what fits in size when less (never above
 * INT_MAX, where a negative precision would print the whole string). */
static int fit(size_t n, size_t size)
{
	return (int)(n < size ? n : size > 0 ? size - 1 : 0);
}

void kvfs_url_redact(const char *url, char *buf, size_t size)
{
	const char *p, *auth = NULL, *at = NULL, *end;
	size_t len;

	if (!url) {
		buf[0] = '\0';
		return;
	}
	len = strcspn(url, "?#");

	p = strstr(url, "://");
	if (p && (size_t)(p - url) < len) {
		auth = p + 3;
		end = auth + strcspn(auth, "/?#");
		at = memchr(auth, '@', (size_t)(end - auth));
		/* the last '@' of the authority */
		while (at && (p = memchr(at + 1, '@', (size_t)(end - at - 1))))
			at = p;
	}
	if (!at)
		snprintf(buf, size, "%.*s", fit(len, size), url);
	else /* scheme:// + what follows the userinfo */
		snprintf(buf, size, "%.*s%.*s", fit((size_t)(auth - url), size),
			 url, fit((size_t)(url + len - (at + 1)), size),
			 at + 1);
}
