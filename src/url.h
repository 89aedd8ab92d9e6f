/* One URL parser for everyone, over libcurl's CURLU (the parser curl itself
 * connects with, as curl's own lib/urlapi.c serves every part of curl):
 * absolute http(s) URL -> scheme, host, port; its origin; the same-origin
 * test that decides whether a token may follow a link; the host; and the
 * redaction of a URL for logs and error lines.  url.c is the second and only
 * other user of libcurl besides http.c: a link is judged by the same parser
 * that will connect to it, so that the two can never disagree.
 *
 * On top of CURLU the authority must be written plainly, as
 * host[:port]: a host name of letters, digits, '-', '.', '_' (at most 253,
 * not starting with '.' or '-') or a bracketed IPv6 literal without a zone,
 * and a port of 1 to 5 digits, 1-65535.  So userinfo, percent-encoding,
 * backslashes and whitespace in the authority are refused (-EINVAL), where
 * CURLU would decode or accept them.  Pure functions; any thread. */
#ifndef KVFS_URL_H
#define KVFS_URL_H

#include <stdbool.h>
#include <stddef.h>

/* http:// is accepted too; without it only https:// is. */
#define KVFS_URL_HTTP (1u << 0)

struct kvfs_url {
	char scheme[6]; /* "https" or "http" */
	char host[254]; /* lower case; an IPv6 literal keeps its [brackets] */
	unsigned port;	/* as written, else the scheme's default */
	bool port_given;
	size_t rest; /* offset in the URL of its path, query or fragment */
};

/* Parse the absolute URL url: 0, -EINVAL (malformed, other scheme, NULL)
 * or -ENOMEM.  *ret is written only on success. */
int kvfs_url_parse(const char *url, unsigned flags, struct kvfs_url *ret);

/* "scheme://host[:port]", the port only when the URL wrote one, so that
 * what a user gave comes back as written.  Malloc'ed; 0 or -ENOMEM. */
int kvfs_url_origin(const struct kvfs_url *u, char **ret);

/* Both http(s) URLs that parse, with the same scheme, host and port (the
 * default one written or not). */
bool kvfs_url_same_origin(const char *a, const char *b);

/* The host of the http(s) URL url, as in struct kvfs_url, malloc'ed: 0,
 * -EINVAL or -ENOMEM. */
int kvfs_url_host(const char *url, char **ret);

/* The path of url and what follows it: from the first '/' after its
 * "scheme://", or NULL when it has none.  The scheme and the authority are
 * skipped, not judged: this is for a URL whose origin nothing uses, the id
 * of an object in a listing, which names the object by its path alone.  A
 * URL that is connected to, or that a token may follow, is judged by
 * kvfs_url_parse() and kvfs_url_same_origin(). */
const char *kvfs_url_path(const char *url);

/* Whether the http(s) URL url is reached without the proxy by the
 * no-proxy list (comma-separated, blanks around entries ignored): "*"
 * matches every URL; a host name or domain (a leading '.' optional)
 * matches itself and every name under it, without case; an IPv4 or IPv6
 * address (brackets optional) matches itself, and ADDRESS/BITS every
 * address of that network.  Ports are not compared.  A URL that does not
 * parse, or a NULL list, matches nothing. */
bool kvfs_url_no_proxy(const char *url, const char *list);

/* url for a log or error line, into buf (size > 0, always terminated, cut
 * when longer): without its query and fragment, and without the userinfo
 * of its authority (everything up to the last '@'), which may be a
 * password.  Works on any string, a URL or not: what does not parse is
 * still redacted.  NULL gives "". */
void kvfs_url_redact(const char *url, char *buf, size_t size);

#endif
