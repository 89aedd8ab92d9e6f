/* The vault's WWW-Authenticate challenge: finds the Bearer challenge among
 * possibly several, reads its auth-params (token or quoted-string values,
 * separated by commas and/or spaces), and returns the tenant (first path
 * segment of authorization= or authorization_uri=) and the resource (scope=
 * without its "/.default", else resource=).  The input is remote and
 * hostile: every length is bounded, nothing is trusted to be terminated.
 * Pure; thread-safe; never logs. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "url.h"
#include "util.h"

#define CHALLENGE_MAX 8192
#define VALUE_MAX 2048
#define TENANT_MAX 128

struct bearer_params {
	char *authorization;
	char *authorization_uri;
	char *resource;
	char *scope;
};

static void bearer_params_clear(struct bearer_params *b)
{
	free(b->authorization);
	free(b->authorization_uri);
	free(b->resource);
	free(b->scope);
	memset(b, 0, sizeof(*b));
}

/* RFC 9110 tchar */
static bool is_tchar(char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_ws(const char *p)
{
	while (is_ws(*p))
		p++;
	return p;
}

/* A bare token; what follows decides whether it was an auth-scheme or
 * the name of a parameter. */
static const char *scan_token(const char *p)
{
	while (is_tchar(*p))
		p++;
	return p;
}

/* Reads a token or a quoted-string value into a new string.  Returns the
 * position after it, or NULL on a malformed value (unterminated quote,
 * control character, too long) or ENOMEM (*oom set). */
static const char *scan_value(const char *p, char **ret, bool *oom)
{
	_cleanup_free_ char *v = NULL;
	size_t n = 0;

	v = malloc(VALUE_MAX + 1);
	if (!v) {
		*oom = true;
		return NULL;
	}

	if (*p == '"') {
		p++;
		for (;;) {
			char c = *p;

			if (c == '\0')
				return NULL; /* unterminated */
			if (c == '"') {
				p++;
				break;
			}
			if (c == '\\') {
				p++;
				c = *p;
				if (c == '\0')
					return NULL;
			}
			if ((unsigned char)c < 0x20 && c != '\t')
				return NULL;
			if (c == 0x7f)
				return NULL;
			if (n == VALUE_MAX)
				return NULL;
			v[n++] = c;
			p++;
		}
	} else {
		const char *end = p;

		/* token, or token68 with its '=' padding */
		while (is_tchar(*end) || *end == '/' || *end == ':' ||
		       *end == '=')
			end++;
		if (end == p || (size_t)(end - p) > VALUE_MAX)
			return NULL;
		n = (size_t)(end - p);
		memcpy(v, p, n);
		p = end;
	}
	v[n] = '\0';
	*ret = TAKE_PTR(v);
	return p;
}

static char **param_slot(struct bearer_params *b, const char *name, size_t len)
{
	static const struct {
		const char *name;
		size_t offset;
	} slots[] = {
		{"authorization",
		 offsetof(struct bearer_params, authorization)},
		{"authorization_uri",
		 offsetof(struct bearer_params, authorization_uri)},
		{"resource", offsetof(struct bearer_params, resource)},
		{"scope", offsetof(struct bearer_params, scope)},
	};

	for (size_t i = 0; i < ELEMENTSOF(slots); i++)
		if (strlen(slots[i].name) == len &&
		    strncasecmp(slots[i].name, name, len) == 0)
			return (char **)((char *)b + slots[i].offset);
	return NULL;
}

/* Walk the header: challenges are "scheme [params]" separated by commas.
 * Fills b from the first Bearer challenge.  0 when one was found,
 * -EBADMSG when the header is malformed or has no Bearer challenge. */
static int parse_header(const char *h, struct bearer_params *b)
{
	bool in_bearer = false, found = false;
	const char *p = h;

	for (;;) {
		const char *name, *end;

		while (is_ws(*p) || *p == ',')
			p++;
		if (*p == '\0')
			break;

		name = p;
		end = scan_token(p);
		if (end == name)
			return -EBADMSG;
		p = skip_ws(end);

		if (*p != '=') {
			/* A new challenge: "scheme" followed by space, comma
			 * or the end.  Only the first Bearer one counts. */
			if (found)
				break;
			in_bearer = (size_t)(end - name) == 6 &&
				    strncasecmp(name, "Bearer", 6) == 0;
			if (in_bearer)
				found = true;
			continue;
		}

		/* name = value */
		{
			_cleanup_free_ char *value = NULL;
			bool oom = false;
			char **slot;

			p = skip_ws(p + 1);
			p = scan_value(p, &value, &oom);
			if (!p)
				return oom ? -ENOMEM : -EBADMSG;
			/* After a value: end, or a separator. */
			if (*p != '\0' && *p != ',' && !is_ws(*p))
				return -EBADMSG;
			if (!in_bearer)
				continue;
			slot = param_slot(b, name, (size_t)(end - name));
			if (slot && !*slot) /* the first one wins */
				*slot = TAKE_PTR(value);
		}
	}
	return found ? 0 : -EBADMSG;
}

/* "https://login.windows.net/<tenant>[/...]" -> "<tenant>" */
static int tenant_from_authority(const char *url, char **ret)
{
	const char *seg, *end;
	struct kvfs_url u;
	int r;

	r = kvfs_url_parse(url, KVFS_URL_HTTP, &u);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || url[u.rest] != '/')
		return -EBADMSG;
	seg = url + u.rest + 1;
	end = seg + strcspn(seg, "/?#");
	if (end == seg || end - seg > TENANT_MAX)
		return -EBADMSG;
	/* It goes into a URL path: GUIDs and domain names only. */
	for (const char *q = seg; q < end; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		      (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' ||
		      *q == '_'))
			return -EBADMSG;
	if ((end - seg == 1 && seg[0] == '.') ||
	    (end - seg == 2 && seg[0] == '.' && seg[1] == '.'))
		return -EBADMSG;
	*ret = strndup(seg, (size_t)(end - seg));
	return *ret ? 0 : -ENOMEM;
}

/* scope "https://vault.azure.net/.default" -> "https://vault.azure.net" */
static int resource_from(const char *scope, const char *resource, char **ret)
{
	static const char suffix[] = "/.default";
	const char *v = scope && *scope ? scope : resource;
	size_t n;

	if (!v || !*v)
		return -EBADMSG;
	n = strlen(v);
	if (v == scope && n >= sizeof(suffix) - 1 &&
	    strcmp(v + n - (sizeof(suffix) - 1), suffix) == 0)
		n -= sizeof(suffix) - 1;
	if (n == 0)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f)
			return -EBADMSG;
	*ret = strndup(v, n);
	return *ret ? 0 : -ENOMEM;
}

int kvfs_auth_parse_challenge(const char *header, char **ret_tenant,
			      char **ret_resource)
{
	_cleanup_(bearer_params_clear) struct bearer_params b = {0};
	_cleanup_free_ char *tenant = NULL, *resource = NULL;
	const char *authority;
	int r;

	if (!header || strnlen(header, CHALLENGE_MAX + 1) > CHALLENGE_MAX)
		return -EBADMSG;

	r = parse_header(header, &b);
	if (r < 0)
		return r;

	authority = b.authorization ? b.authorization : b.authorization_uri;
	if (!authority)
		return -EBADMSG;
	r = tenant_from_authority(authority, &tenant);
	if (r < 0)
		return r;
	r = resource_from(b.scope, b.resource, &resource);
	if (r < 0)
		return r;

	*ret_tenant = TAKE_PTR(tenant);
	*ret_resource = TAKE_PTR(resource);
	return 0;
}
