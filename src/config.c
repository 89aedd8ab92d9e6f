/* The option table and everything around it: the command line (-o
 * key=value, possibly repeated: the last value wins, but include=, exclude=
 * and tag= keep every occurrence; -f, -d, -s, --help, --version), systemd
 * credentials and then the Azure SDK and proxy environment variables as
 * defaults (an option always wins), validation,
 * and the argument vector handed to libfuse.  A secret is never accepted on
 * the command line.  Runs once in main() before any thread exists. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fuse.h>
#include <openssl/crypto.h>

#include "collection.h"
#include "config.h"
#include "defaults.h"
#include "log.h"
#include "url.h"
#include "util.h"

struct cloud_defaults {
	const char *name;
	const char *authority;
	const char *vault_suffix;
	const char *resource;
};

static const struct cloud_defaults clouds[] = {
	[KVFS_CLOUD_PUBLIC] = {"public", "https://login.microsoftonline.com",
			       "vault.azure.net", "https://vault.azure.net"},
	[KVFS_CLOUD_CHINA] = {"china", "https://login.chinacloudapi.cn",
			      "vault.azure.cn", "https://vault.azure.cn"},
	[KVFS_CLOUD_USGOV] = {"usgov", "https://login.microsoftonline.us",
			      "vault.usgovcloudapi.net",
			      "https://vault.usgovcloudapi.net"},
};

static const char *const auth_names[] = {
	[KVFS_AUTH_AUTO] = "auto",	   [KVFS_AUTH_IMDS] = "imds",
	[KVFS_AUTH_SECRET] = "secret",	   [KVFS_AUTH_CERT] = "cert",
	[KVFS_AUTH_WORKLOAD] = "workload",
};

enum opt_kind {
	OPT_STRING,  /* any non-empty value */
	OPT_ID,	     /* tenant and the like: goes into a URL path */
	OPT_PATH,    /* made absolute: the daemon runs in / */
	OPT_COMMAND, /* an absolute path, taken as given */
	OPT_HTTPS,   /* https:// URL, trailing slashes dropped */
	OPT_URL,     /* http:// or https:// URL */
	OPT_SECONDS, /* decimal, within [min, max] */
	OPT_DAYS,    /* the same, in days */
	OPT_FLAG,    /* no value */
	OPT_AUTH,
	OPT_CLOUD,
	OPT_CERT_ALG,
	OPT_LOGLEVEL,
	OPT_UID,
	OPT_GID,
	OPT_MODE,
	OPT_VERSION, /* api_version: [0-9A-Za-z.-] */
	OPT_COLLECTIONS,
	OPT_GLOB,    /* appended to a struct kvfs_config_globs */
	OPT_TAG,     /* appended to the struct kvfs_config_tags */
	OPT_PROXY,   /* http(s):// proxy URL, no credentials: parse_proxy() */
	OPT_NOPROXY, /* libcurl's no-proxy list */
};

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off;
	unsigned min, max;
	const char *arg;
	const char *help;
};

#define F(field) offsetof(struct kvfs_config, field)

static const struct opt opts[] = {
	{"auth", OPT_AUTH, F(auth), 0, 0, "auto|imds|secret|cert|workload",
	 "credential provider (default auto)"},
	{"tenant", OPT_ID, F(tenant), 0, 0, "ID",
	 "Entra tenant (default: from the vault)"},
	{"client_id", OPT_ID, F(client_id), 0, 0, "ID",
	 "app, or user-assigned managed identity"},
	{"object_id", OPT_ID, F(object_id), 0, 0, "ID",
	 "user-assigned identity by object id"},
	{"msi_res_id", OPT_STRING, F(msi_res_id), 0, 0, "ID",
	 "user-assigned identity by resource id"},
	{"secret_file", OPT_PATH, F(secret_file), 0, 0, "PATH",
	 "file holding the client secret"},
	{"cert_file", OPT_PATH, F(cert_file), 0, 0, "PATH",
	 "client certificate and key, PEM or PKCS#12"},
	{"cert_password_file", OPT_PATH, F(cert_password_file), 0, 0, "PATH",
	 "file holding the PKCS#12 password"},
	{"cert_alg", OPT_CERT_ALG, F(cert_alg), 0, 0, "PS256|RS256",
	 "client assertion signature (default PS256)"},
	{"send_cert_chain", OPT_FLAG, F(send_cert_chain), 0, 0, NULL,
	 "send the certificate chain (x5c) with the assertion"},
	{"token_file", OPT_PATH, F(token_file), 0, 0, "PATH",
	 "federated token (workload identity)"},
	{"authority", OPT_HTTPS, F(authority), 0, 0, "URL",
	 "Entra ID host (default per cloud=)"},
	{"imds_url", OPT_URL, F(imds_url), 0, 0, "URL",
	 "managed identity endpoint (default: IMDS)"},
	{"cloud", OPT_CLOUD, F(cloud), 0, 0, "public|china|usgov",
	 "vault suffix, authority and resource defaults"},
	{"resource", OPT_HTTPS, F(resource), 0, 0, "URL",
	 "token audience (default: from the vault)"},
	{"ca_file", OPT_PATH, F(ca_file), 0, 0, "PATH",
	 "extra trusted CA certificates (PEM)"},
	{"proxy", OPT_PROXY, F(proxy), 0, 0, "URL",
	 "HTTPS goes through it (default $https_proxy)"},
	{"noproxy", OPT_NOPROXY, F(noproxy), 0, 0, "LIST",
	 "hosts reached directly (default $no_proxy)"},
	{"api_version", OPT_VERSION, F(api_version), 0, 0, "V",
	 "Key Vault API version (default " KVFS_DEFAULT_API_VERSION ")"},
	{"refresh", OPT_SECONDS, F(refresh), 1, 31536000, "SECONDS",
	 "revalidate this often (default " KVFS_STR(KVFS_DEFAULT_REFRESH) ")"},
	{"max_stale", OPT_SECONDS, F(max_stale), 0, 315360000, "SECONDS",
	 "serve stale data this long (default " KVFS_STR(
		 KVFS_DEFAULT_MAX_STALE) ")"},
	{"deadline", OPT_SECONDS, F(deadline), 1, 3600, "SECONDS",
	 "longest wait of a file operation (default " KVFS_STR(
		 KVFS_DEFAULT_DEADLINE) ")"},
	{"on_change", OPT_COMMAND, F(on_change), 0, 0, "PATH",
	 "run this command after changes are visible"},
	{"on_change_delay", OPT_SECONDS, F(on_change_delay), 0, 3600, "SECONDS",
	 "changes within this share one run (default " KVFS_STR(
		 KVFS_DEFAULT_ON_CHANGE_DELAY) ")"},
	{"on_change_timeout", OPT_SECONDS, F(on_change_timeout), 1, 86400,
	 "SECONDS",
	 "kill the command after this (default " KVFS_STR(
		 KVFS_DEFAULT_ON_CHANGE_TIMEOUT) ")"},
	{"expiring_days", OPT_DAYS, F(expiring_days), 0, 36500, "DAYS",
	 "expiring/ lists certificates expiring within this (default " KVFS_STR(
		 KVFS_DEFAULT_EXPIRING_DAYS) ")"},
	{"allow_expired", OPT_FLAG, F(allow_expired), 0, 0, NULL,
	 "keep expired certificates readable"},
	{"kernel_cache", OPT_FLAG, F(kernel_cache), 0, 0, NULL,
	 "no open round trips: the page cache serves reads"},
	{"allow_other", OPT_FLAG, F(allow_other), 0, 0, NULL,
	 "let other users in (with default_permissions)"},
	{"auto_unmount", OPT_FLAG, F(auto_unmount), 0, 0, NULL,
	 "unmount when kvfs dies, even by SIGKILL"},
	{"uid", OPT_UID, F(uid), 0, 0, "N",
	 "owner of every file (default: you)"},
	{"gid", OPT_GID, F(gid), 0, 0, "N",
	 "group of every file (default: yours)"},
	{"key_mode", OPT_MODE, F(key_mode), 0, 0, "0NNN",
	 "mode of key-bearing files (default " KVFS_STR(
		 KVFS_DEFAULT_KEY_MODE) ")"},
	{"rules_file", OPT_PATH, F(rules_file), 0, 0, "PATH",
	 "owners, modes and key readers per object"},
	{"key_readers", OPT_STRING, F(key_readers), 0, 0, "SPEC,...",
	 "who may open key-bearing files (default: the modes say)"},
	{"collections", OPT_COLLECTIONS, F(collections), 0, 0, "LIST",
	 "what to mount: a+b or all (default " KVFS_DEFAULT_COLLECTIONS ")"},
	{"include", OPT_GLOB, F(include), 0, 0, "GLOB",
	 "mount only the objects so named (repeatable)"},
	{"exclude", OPT_GLOB, F(exclude), 0, 0, "GLOB",
	 "leave out the objects so named (repeatable)"},
	{"tag", OPT_TAG, F(tags), 0, 0, "KEY=VALUE",
	 "mount only the objects with this tag (repeatable)"},
	{"loglevel", OPT_LOGLEVEL, F(loglevel), 0, 0, "LEVEL",
	 "err|warning|notice|info|debug (default notice)"},
	{"debug", OPT_FLAG, F(debug), 0, 0, NULL, "same as -d"},
};

#undef F

/* Options that fstab, mount(8) and mount.fuse3 pass along: accepted and
 * dropped.  The mount is read-only whatever they say. */
static const char *const dropped[] = {
	"_netdev",    "nofail",	     "noauto",
	"auto",	      "user",	     "users",
	"nouser",     "owner",	     "group",
	"defaults",   "rw",	     "ro",
	"dev",	      "nodev",	     "suid",
	"nosuid",     "exec",	     "noexec",
	"atime",      "noatime",     "relatime",
	"norelatime", "strictatime", "nostrictatime",
	"lazytime",   "nolazytime",  "diratime",
	"nodiratime", "async",	     "sync",
	"dirsync",    "mand",	     "nomand",
	"silent",     "loud",	     "iversion",
	"noiversion", "nonempty",    "default_permissions",
};

/* Other FUSE filesystems' mode options (rclone and sshfs's umask=, s3fs
 * and blobfuse's file_mode=/dir_mode=): refused, with kvfs's own way.  A
 * mode of kvfs says what a file is (a key 0400, a disabled object 0000),
 * which one mask for every file would blur. */
static const char *const mode_options[] = {"umask", "file_mode", "dir_mode"};

/* Options with a value that are dropped whatever the value: ours win. */
static const char *const dropped_prefixes[] = {
	"x-",
	"comment=",
	"subtype=",
	"fsname=",
};

static int fail(struct kvfs_error *err, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct kvfs_error *err, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r;
}

const char *kvfs_config_auth_name(enum kvfs_auth_kind k)
{
	if ((size_t)k >= ELEMENTSOF(auth_names))
		return "unknown";
	return auth_names[k];
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

/* A vault's own name, the first label of its host name (not the name of
 * an object in it: kvfs_vault_object_name_valid).  Azure: 3-24 of
 * [0-9A-Za-z-], starting with a letter, ending with a letter or digit, no
 * two hyphens in a row. */
static bool vault_dns_label_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 3 || n > 24)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	if (s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= '0' && ch <= '9') ||
			     (ch >= 'a' && ch <= 'z') ||
			     (ch >= 'A' && ch <= 'Z');

		if (!alnum && ch != '-')
			return false;
		if (ch == '-' && s[i + 1] == '-')
			return false;
	}
	return true;
}

static bool host_char(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '.';
}

/* "https://host[:port][/]" -> "https://host[:port]" (kvfs_url_origin: the
 * host in lower case, the port without leading zeros).  Anything after the
 * origin but one '/' (a path, a query, a fragment) is -EINVAL. */
static int parse_https_origin(const char *arg, char **ret)
{
	struct kvfs_url u;
	const char *rest;
	int r;

	r = kvfs_url_parse(arg, 0, &u);
	if (r < 0)
		return r;
	rest = arg + u.rest;
	if (*rest && strcmp(rest, "/") != 0)
		return -EINVAL;
	return kvfs_url_origin(&u, ret);
}

int kvfs_config_vault_url(const char *arg, enum kvfs_cloud cloud,
			  char **ret_url)
{
	char *url;

	if (!arg || (size_t)cloud >= ELEMENTSOF(clouds))
		return -EINVAL;
	if (strncasecmp(arg, "https://", 8) == 0)
		return parse_https_origin(arg, ret_url);
	if (!vault_dns_label_valid(arg))
		return -EINVAL;
	if (asprintf(&url, "https://%s.%s", arg, clouds[cloud].vault_suffix) <
	    0)
		return -ENOMEM;
	for (char *p = url; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	*ret_url = url;
	return 0;
}

static int parse_unsigned(const char *s, int base, unsigned long max,
			  unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (!s || !*s || (base == 10 && !(*s >= '0' && *s <= '9')) ||
	    (base == 8 && !(*s >= '0' && *s <= '7')))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* URLs from options and the environment: an absolute URL
 * (kvfs_url_parse) with no query, fragment, '@' or whitespace anywhere,
 * trailing slashes dropped so that paths can be appended. */
static int normalize_url(const char *value, bool https_only, char **ret)
{
	size_t n = strlen(value);
	struct kvfs_url u;
	char *s;
	int r;

	r = kvfs_url_parse(value, https_only ? 0 : KVFS_URL_HTTP, &u);
	if (r < 0)
		return r;
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' ||
		    *p == '@')
			return -EINVAL;
	while (n > 0 && value[n - 1] == '/')
		n--;
	s = strndup(value, n);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static int absolute_path(const char *value, char **ret)
{
	_cleanup_free_ char *cwd = NULL;
	char *s;

	if (value[0] == '/') {
		s = strdup(value);
	} else {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return -errno;
		if (asprintf(&s, "%s/%s", cwd, value) < 0)
			s = NULL;
	}
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static bool id_valid(const char *s)
{
	for (; *s; s++)
		if (!host_char(*s) && *s != '_')
			return false;
	return true;
}

static bool api_version_valid(const char *s)
{
	for (; *s; s++)
		if (!host_char(*s))
			return false;
	return true;
}

/* "certificates+secrets" or "all": each name a row of the collection
 * table (collection.h), the unknown refused with the names it has. */
static int parse_collections(const char *value, unsigned *ret,
			     struct kvfs_error *err)
{
	unsigned mask = 0;

	_Static_assert(KVFS_COLLECTION_COUNT_ <= 32,
		       "collections= is a 32-bit mask");
	for (const char *p = value;; p++) {
		size_t n = strcspn(p, "+");
		_cleanup_free_ char *name = strndup(p, n);
		enum kvfs_collection coll;

		if (!name)
			return -ENOMEM;
		if (n == 0)
			return fail(err, -EINVAL,
				    "collections=: empty collection in '%s' "
				    "(names are joined by a single +)",
				    value);
		if (strcmp(name, "all") == 0) {
			mask |= (1u << KVFS_COLLECTION_COUNT_) - 1;
		} else if (kvfs_collection_from_name(name, &coll)) {
			mask |= 1u << coll;
		} else {
			char known[256] = "";

			for (int i = 0; i < KVFS_COLLECTION_COUNT_; i++)
				snprintf(known + strlen(known),
					 sizeof(known) - strlen(known), "%s%s",
					 i ? ", " : "",
					 kvfs_collection_info(
						 (enum kvfs_collection)i)
						 ->name);
			return fail(err, -EINVAL,
				    "collections=: unknown collection '%s' "
				    "(known: %s)",
				    name, known);
		}
		p += n;
		if (!*p)
			break;
	}
	*ret = mask;
	return 0;
}

static int add_glob(struct kvfs_config_globs *g, const struct opt *o,
		    const char *value, struct kvfs_error *err)
{
	size_t n = strlen(value);
	char **v;

	if (n > KVFS_CONFIG_GLOB_MAX)
		return fail(err, -EINVAL,
			    "invalid %s: a glob of %zu bytes, at most %d "
			    "allowed",
			    o->name, n, KVFS_CONFIG_GLOB_MAX);
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return fail(err, -EINVAL,
				    "invalid %s: a control character in the "
				    "glob",
				    o->name);
	if (strchr(value, '/'))
		return fail(err, -EINVAL,
			    "invalid %s '%s': it matches an object's name, "
			    "which has no '/'",
			    o->name, value);
	v = reallocarray(g->v, g->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	g->v = v;
	if (!(v[g->n] = strdup(value)))
		return -ENOMEM;
	g->n++;
	return 0;
}

/* KEY=VALUE, split at the first '='.  An object carries a key once, so
 * the same key asked with two values could match nothing. */
static int add_tag(struct kvfs_config_tags *t, const char *value,
		   struct kvfs_error *err)
{
	const char *eq = strchr(value, '=');
	struct kvfs_config_tag *v;
	char *key, *val;

	if (!eq || eq == value)
		return fail(err, -EINVAL,
			    "invalid tag '%s': expected tag=KEY=VALUE "
			    "(tag=KEY= for an empty value)",
			    value);
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->v[i].key) == (size_t)(eq - value) &&
		    strncmp(t->v[i].key, value, (size_t)(eq - value)) == 0 &&
		    strcmp(t->v[i].value, eq + 1) != 0)
			return fail(err, -EINVAL,
				    "invalid tag '%s': tag '%s' is already "
				    "asked for with the value '%s', and no "
				    "object has both",
				    value, t->v[i].key, t->v[i].value);
	v = reallocarray(t->v, t->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	key = strndup(value, (size_t)(eq - value));
	val = strdup(eq + 1);
	if (!key || !val) {
		free(key);
		free(val);
		return -ENOMEM;
	}
	v[t->n++] = (struct kvfs_config_tag){.key = key, .value = val};
	return 0;
}

/* A proxy URL: "[http[s]://][USER[:PASS]@]host[:port][/]" (no scheme is
 * http://, as libcurl has it) -> "scheme://[USER[:PASS]@]host[:port]", the
 * host and port judged as every other URL (kvfs_url_parse).  -EINVAL for
 * anything else, -ENOMEM. */
static int parse_proxy(const char *value, bool *ret_credentials, char **ret)
{
	const char *sep = strstr(value, "://");
	const char *scheme = sep ? value : "http";
	size_t slen = sep ? (size_t)(sep - value) : 4;
	const char *auth = sep ? sep + 3 : value, *at, *host;
	_cleanup_free_ char *plain = NULL;
	struct kvfs_url u;
	char *s;
	int r;

	if (!(slen == 4 && strncasecmp(scheme, "http", 4) == 0) &&
	    !(slen == 5 && strncasecmp(scheme, "https", 5) == 0))
		return -EINVAL;
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -EINVAL;
	at = memrchr(auth, '@', strcspn(auth, "/?#"));
	if (at == auth)
		return -EINVAL; /* "@host": credentials of nobody */
	host = at ? at + 1 : auth;
	/* The URL without its credentials, for the one parser. */
	if (asprintf(&plain, "%.*s://%s", (int)slen, scheme, host) < 0)
		return -ENOMEM;
	r = kvfs_url_parse(plain, KVFS_URL_HTTP, &u);
	if (r < 0)
		return r;
	if (plain[u.rest] && strcmp(plain + u.rest, "/") != 0)
		return -EINVAL;
	if (asprintf(&s, "%s://%.*s%.*s", u.scheme,
		     at ? (int)(at + 1 - auth) : 0, auth,
		     (int)(u.rest - slen - 3), host) < 0)
		return -ENOMEM;
	*ret_credentials = at != NULL;
	*ret = s;
	return 0;
}

/* proxy= (from_env false) or a proxy variable of the environment (name):
 * credentials only from the environment, which ps does not show.  A
 * message never holds the URL but redacted. */
static int set_proxy(char **field, const char *value, bool from_env,
		     const char *name, struct kvfs_error *err)
{
	char shown[256];
	bool credentials = false;
	char *s = NULL;
	int r;

	r = parse_proxy(value, &credentials, &s);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		/* A value that did not parse may hold a password anywhere
		 * before its last '@': only what follows it is shown. */
		const char *at = strrchr(value, '@');

		snprintf(shown, sizeof(shown), "%s%s", at ? "***@" : "",
			 at ? at + 1 : value);
		return fail(err, r,
			    "invalid %s '%s': expected http://host:port (or "
			    "https://)",
			    name, shown);
	}
	if (credentials && !from_env) {
		kvfs_secure_free_str(s);
		return fail(err, -EINVAL,
			    "refusing %s with credentials: a password on the "
			    "command line is visible to every user; set "
			    "https_proxy in kvfs's environment instead",
			    name);
	}
	kvfs_secure_free_str(*field);
	*field = s;
	return 0;
}

/* libcurl's no-proxy list: entries separated by commas (written "\\," in
 * -o, as any comma in a value) or '+', blanks around them dropped. */
static int set_noproxy(char **field, const char *value, const char *name,
		       struct kvfs_error *err)
{
	char *s = malloc(strlen(value) + 1), *o = s;

	if (!s)
		return -ENOMEM;
	for (const char *p = value; *p; p++) {
		char ch = *p == '+' ? ',' : *p;

		if (ch == ' ' || ch == '\t')
			continue;
		if (!host_char(ch) && !strchr(",*:/[]_", ch)) {
			free(s);
			return fail(err, -EINVAL,
				    "invalid %s '%s': expected host names, "
				    "domains, addresses or '*', separated by "
				    "commas",
				    name, value);
		}
		if (ch == ',' && (o == s || o[-1] == ','))
			continue;
		*o++ = ch;
	}
	if (o > s && o[-1] == ',')
		o--;
	*o = '\0';
	free(*field);
	*field = s;
	return 0;
}

static int set_string(char **field, char *value)
{
	if (!value)
		return -ENOMEM;
	free(*field);
	*field = value;
	return 0;
}

static int apply(struct kvfs_config *c, const struct opt *o, const char *value,
		 struct kvfs_error *err)
{
	void *field = (char *)c + o->off;
	unsigned long v;
	char *s = NULL;
	int r, i;

	if (o->kind == OPT_FLAG) {
		if (value)
			return fail(err, -EINVAL, "option '%s' takes no value",
				    o->name);
		*(bool *)field = true;
		return 0;
	}
	if (!value || !*value)
		return fail(err, -EINVAL, "option '%s' needs a value (%s=%s)",
			    o->name, o->name, o->arg);

	switch (o->kind) {
	case OPT_STRING:
		return set_string(field, strdup(value));
	case OPT_ID:
		if (!id_valid(value))
			return fail(err, -EINVAL, "invalid %s '%s'", o->name,
				    value);
		return set_string(field, strdup(value));
	case OPT_VERSION:
		if (!api_version_valid(value))
			return fail(err, -EINVAL, "invalid %s '%s'", o->name,
				    value);
		return set_string(field, strdup(value));
	case OPT_PATH:
		r = absolute_path(value, &s);
		if (r < 0)
			return fail(err, r, "cannot resolve %s '%s': %s",
				    o->name, value, strerror(-r));
		return set_string(field, s);
	case OPT_COMMAND:
		/* The daemon runs in /: a relative path would name another
		 * file there than where it was given. */
		if (value[0] != '/')
			return fail(err, -EINVAL,
				    "invalid %s '%s': expected an absolute "
				    "path",
				    o->name, value);
		return set_string(field, strdup(value));
	case OPT_HTTPS:
	case OPT_URL:
		r = normalize_url(value, o->kind == OPT_HTTPS, &s);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return fail(err, r,
				    "invalid %s '%s': expected an %s URL",
				    o->name, value,
				    o->kind == OPT_HTTPS ? "https://"
							 : "http(s)://");
		return set_string(field, s);
	case OPT_SECONDS:
	case OPT_DAYS:
		r = parse_unsigned(value, 10, o->max, &v);
		if (r < 0 || v < o->min)
			return fail(err, -EINVAL,
				    "invalid %s '%s': expected %s, %u to %u",
				    o->name, value,
				    o->kind == OPT_DAYS ? "days" : "seconds",
				    o->min, o->max);
		*(unsigned *)field = (unsigned)v;
		return 0;
	case OPT_UID:
	case OPT_GID:
		/* (uid_t)-1 means "no change" to chown(2): never an owner. */
		r = parse_unsigned(value, 10, (unsigned long)UINT32_MAX - 1,
				   &v);
		if (r < 0)
			return fail(err, -EINVAL,
				    "invalid %s '%s': expected a number",
				    o->name, value);
		if (o->kind == OPT_UID)
			*(uid_t *)field = (uid_t)v;
		else
			*(gid_t *)field = (gid_t)v;
		return 0;
	case OPT_MODE:
		r = parse_unsigned(value, 8, 0777, &v);
		if (r < 0)
			return fail(err, -EINVAL,
				    "invalid %s '%s': expected an octal mode "
				    "such as 0400",
				    o->name, value);
		*(mode_t *)field = (mode_t)v;
		return 0;
	case OPT_LOGLEVEL:
		r = kvfs_log_parse_level(value);
		if (r < 0)
			return fail(err, -EINVAL,
				    "invalid loglevel '%s': expected err, "
				    "warning, notice, info or debug",
				    value);
		*(int *)field = r;
		return 0;
	case OPT_AUTH:
		for (i = 0; i < (int)ELEMENTSOF(auth_names); i++)
			if (strcmp(value, auth_names[i]) == 0) {
				*(enum kvfs_auth_kind *)field = i;
				return 0;
			}
		return fail(err, -EINVAL,
			    "invalid auth '%s': expected auto, imds, secret, "
			    "cert or workload",
			    value);
	case OPT_CLOUD:
		for (i = 0; i < (int)ELEMENTSOF(clouds); i++)
			if (strcmp(value, clouds[i].name) == 0) {
				*(enum kvfs_cloud *)field = i;
				return 0;
			}
		return fail(err, -EINVAL,
			    "invalid cloud '%s': expected public, china or "
			    "usgov",
			    value);
	case OPT_CERT_ALG:
		if (strcasecmp(value, "PS256") == 0)
			*(enum kvfs_assertion_alg *)field =
				KVFS_ASSERTION_ALG_PS256;
		else if (strcasecmp(value, "RS256") == 0)
			*(enum kvfs_assertion_alg *)field =
				KVFS_ASSERTION_ALG_RS256;
		else
			return fail(err, -EINVAL,
				    "invalid cert_alg '%s': expected PS256 or "
				    "RS256",
				    value);
		return 0;
	case OPT_COLLECTIONS:
		return parse_collections(value, field, err);
	case OPT_GLOB:
		return add_glob(field, o, value, err);
	case OPT_TAG:
		return add_tag(field, value, err);
	case OPT_PROXY:
		return set_proxy(field, value, false, o->name, err);
	case OPT_NOPROXY:
		return set_noproxy(field, value, o->name, err);
	case OPT_FLAG:
		break;
	}
	return -EINVAL;
}

/* secret=, client_secret=, password=, token= and the like would show the
 * secret to anyone running ps. */
static const char *secret_hint(const char *key, size_t n)
{
	if (ends_with(key, n, "secret"))
		return "put the secret in a file readable only by you and use "
		       "secret_file=PATH (or set AZURE_CLIENT_SECRET)";
	if (ends_with(key, n, "password"))
		return "put the password in a file readable only by you and "
		       "use cert_password_file=PATH";
	if (ends_with(key, n, "token"))
		return "put the token in a file and use token_file=PATH";
	return NULL;
}

static int parse_one(struct kvfs_config *c, const char *item,
		     struct kvfs_error *err)
{
	const char *eq = strchr(item, '=');
	size_t klen = eq ? (size_t)(eq - item) : strlen(item);
	const char *hint;

	if (klen == 0)
		return item[0] ? fail(err, -EINVAL, "invalid option '%s'", item)
			       : 0;

	hint = secret_hint(item, klen);
	if (hint)
		return fail(err, -EINVAL,
			    "refusing option '%.*s': a secret on the command "
			    "line is visible to every user; %s",
			    (int)klen, item, hint);

	for (size_t i = 0; i < ELEMENTSOF(opts); i++)
		if (strlen(opts[i].name) == klen &&
		    strncmp(item, opts[i].name, klen) == 0)
			return apply(c, &opts[i], eq ? eq + 1 : NULL, err);

	for (size_t i = 0; i < ELEMENTSOF(mode_options); i++)
		if (strlen(mode_options[i]) == klen &&
		    strncmp(item, mode_options[i], klen) == 0)
			return fail(err, -EINVAL,
				    "unsupported option '%s': kvfs sets each "
				    "mode itself (directories 0555, files "
				    "0444, files holding a key or secret "
				    "key_mode=, default 0%o); use key_mode=, "
				    "uid=, gid= and allow_other",
				    mode_options[i], KVFS_DEFAULT_KEY_MODE);

	for (size_t i = 0; i < ELEMENTSOF(dropped); i++)
		if (strcmp(item, dropped[i]) == 0)
			return 0;
	for (size_t i = 0; i < ELEMENTSOF(dropped_prefixes); i++)
		if (strncmp(item, dropped_prefixes[i],
			    strlen(dropped_prefixes[i])) == 0)
			return 0;

	return fail(err, -EINVAL, "unknown option '%.*s' (see kvfs --help)",
		    (int)klen, item);
}

/* Split "a=b,c" at unescaped commas ("\," is a literal comma, as libfuse
 * has it) and apply each item. */
static int parse_o(struct kvfs_config *c, const char *arg,
		   struct kvfs_error *err)
{
	_cleanup_free_ char *item = malloc(strlen(arg) + 1);
	const char *p = arg;
	int r;

	if (!item)
		return -ENOMEM;
	for (;;) {
		size_t n = 0;

		while (*p && *p != ',') {
			if (*p == '\\' && p[1])
				p++;
			item[n++] = *p++;
		}
		item[n] = '\0';
		r = parse_one(c, item, err);
		OPENSSL_cleanse(item, n);
		if (r < 0)
			return r;
		if (!*p)
			return 0;
		p++;
	}
}

/* Take a secret from the environment and remove it from there, wiping the
 * bytes in place so /proc/PID/environ no longer shows it either. */
static int take_env_secret(const char *name, bool wanted, char **field)
{
	char *v = getenv(name);
	int r = 0;

	if (!v)
		return 0;
	if (wanted && *v && !*field) {
		*field = strdup(v);
		if (!*field)
			r = -ENOMEM;
	}
	OPENSSL_cleanse(v, strlen(v));
	unsetenv(name);
	return r;
}

static int env_default(struct kvfs_config *c, const char *env, const char *key,
		       char **field, struct kvfs_error *err)
{
	const char *v = getenv(env);
	_cleanup_free_ char *item = NULL;
	int r;

	if (*field || !v || !*v)
		return 0;
	if (asprintf(&item, "%s=%s", key, v) < 0)
		return -ENOMEM;
	r = parse_one(c, item, err);
	if (r < 0 && r != -ENOMEM) {
		/* Say where the bad value came from. */
		char msg[sizeof(err->message)];

		snprintf(msg, sizeof(msg), "%s", err->message);
		fail(err, r, "%s (from %s)", msg, env);
	}
	return r;
}

/* https_proxy (else all_proxy) and no_proxy, the lower case first, as
 * libcurl reads them for an https:// URL: the defaults of proxy=
 * (credentials allowed here) and noproxy=.  Read here once: http.c tells
 * libcurl to read no variable of its own. */
static int proxy_env_defaults(struct kvfs_config *c, struct kvfs_error *err)
{
	static const char *const proxies[] = {"https_proxy", "HTTPS_PROXY",
					      "all_proxy", "ALL_PROXY"};
	static const char *const noproxies[] = {"no_proxy", "NO_PROXY"};
	int r;

	for (size_t i = 0; i < ELEMENTSOF(proxies) && !c->proxy; i++) {
		const char *v = getenv(proxies[i]);

		if (v && *v) {
			r = set_proxy(&c->proxy, v, true, proxies[i], err);
			if (r < 0)
				return r;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(noproxies); i++) {
		r = env_default(c, noproxies[i], "noproxy", &c->noproxy, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* systemd's LoadCredential=/LoadCredentialEncrypted= hand files over in
 * $CREDENTIALS_DIRECTORY, a directory only the service can read that lives
 * as long as the service.  A credential of ours fills in the matching
 * *_file= option when that option was not given; the environment comes
 * after it.  The files are read (and their modes checked) by auth, like any
 * other credential file, on every token request. */
static const struct {
	const char *name;
	size_t off;
} credentials[] = {
	{"kvfs-client-secret", offsetof(struct kvfs_config, secret_file)},
	{"kvfs-client-cert", offsetof(struct kvfs_config, cert_file)},
	{"kvfs-client-cert-password",
	 offsetof(struct kvfs_config, cert_password_file)},
};

static int take_credentials(struct kvfs_config *c)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	/* systemd always gives an absolute path; anything else is not it. */
	if (!dir || dir[0] != '/')
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(credentials); i++) {
		char **field = (char **)((char *)c + credentials[i].off);
		char *path;

		if (*field)
			continue;
		if (asprintf(&path, "%s/%s", dir, credentials[i].name) < 0)
			return -ENOMEM;
		if (access(path, F_OK) != 0) {
			free(path);
			continue;
		}
		*field = path;
	}
	return 0;
}

static char *escape_commas(const char *s)
{
	char *out = malloc(strlen(s) * 2 + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s == ',' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	return out;
}

static int build_fuse_argv(struct kvfs_config *c, const char *argv0)
{
	_cleanup_free_ char *vault = escape_commas(c->vault_arg);
	char **v;
	int n = 0;

	if (!vault)
		return -ENOMEM;
	v = calloc(5, sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->fuse_argv = v;
	v[n++] = strdup(argv0 && *argv0 ? argv0 : "kvfs");
	v[n++] = strdup("-o");
	/* fsname is VAULT exactly as given, the first field of the fstab line:
	 * mount -a and findmnt recognise the mount by it, and with anything
	 * else a second mount -a would stack another kvfs on top. */
	if (asprintf(&v[n++], "ro,subtype=kvfs,fsname=%s%s%s", vault,
		     c->allow_other ? ",allow_other,default_permissions" : "",
		     c->auto_unmount ? ",auto_unmount" : "") < 0)
		v[n - 1] = NULL;
	if (c->debug)
		v[n++] = strdup("-d");
	c->fuse_argc = n;
	for (int i = 0; i < n; i++)
		if (!v[i])
			return -ENOMEM;
	return 0;
}

static void print_help(void)
{
	printf("usage: kvfs [options] VAULT MOUNTPOINT\n"
	       "\n"
	       "Mount the certificates of an Azure Key Vault as a read-only "
	       "tree.\n"
	       "VAULT is a vault name (myvault) or an https:// URL, "
	       "optionally with a port.\n"
	       "\n"
	       "general options:\n"
	       "    -o opt,[opt...]        mount options (below)\n"
	       "    -f                     stay in the foreground\n"
	       "    -d                     debug log; implies -f\n"
	       "    -s                     accepted; kvfs always serves "
	       "with threads\n"
	       "    -h, --help             print this help\n"
	       "    -V, --version          print the versions of kvfs and "
	       "its libraries\n"
	       "\n"
	       "kvfs options:\n");
	for (size_t i = 0; i < ELEMENTSOF(opts); i++) {
		char left[64];

		if (opts[i].arg)
			snprintf(left, sizeof(left), "%s=%s", opts[i].name,
				 opts[i].arg);
		else
			snprintf(left, sizeof(left), "%s", opts[i].name);
		if (strlen(left) > 22)
			printf("    -o %s\n%30s%s\n", left, "", opts[i].help);
		else
			printf("    -o %-23s%s\n", left, opts[i].help);
	}
	printf("\n"
	       "environment (defaults; an option wins):\n"
	       "    AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,\n"
	       "    AZURE_CLIENT_CERTIFICATE_PATH, "
	       "AZURE_CLIENT_CERTIFICATE_PASSWORD,\n"
	       "    AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST,\n"
	       "    AZURE_CLIENT_SEND_CERTIFICATE_CHAIN; for auth=imds also\n"
	       "    IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service) and\n"
	       "    IDENTITY_ENDPOINT + IMDS_ENDPOINT (Azure Arc);\n"
	       "    https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY (proxy=; "
	       "may "
	       "hold\n"
	       "    credentials), no_proxy, NO_PROXY (noproxy=)\n"
	       "\n"
	       "systemd credentials (in $CREDENTIALS_DIRECTORY), used when the "
	       "option is not\n"
	       "given: kvfs-client-secret (secret_file=), kvfs-client-cert "
	       "(cert_file=),\n"
	       "kvfs-client-cert-password (cert_password_file=)\n"
	       "\n"
	       "Secrets are never accepted on the command line: use "
	       "secret_file=,\n"
	       "cert_password_file= or the environment.  fstab options "
	       "(_netdev, nofail,\n"
	       "noauto, x-systemd.*, ...) and generic mount options (rw, "
	       "dev, suid, ...)\n"
	       "are accepted and ignored: the mount is always read-only.\n"
	       "umask=, file_mode= and dir_mode= are refused: see "
	       "key_mode=.\n");
}

/* kvfs's version first (the man page carries it), then the libraries it
 * runs with, as loaded. */
static void print_version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("kvfs version %s\n"
	       "libfuse %s\n"
	       "libcurl %s (%s)\n"
	       "%s\n",
	       KVFS_VERSION, fuse_pkgversion(), cv->version,
	       cv->ssl_version ? cv->ssl_version : "no TLS",
	       OpenSSL_version(OPENSSL_VERSION));
}

static void free_globs(struct kvfs_config_globs *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
}

void kvfs_config_free(struct kvfs_config *c)
{
	if (!c)
		return;
	free(c->vault_arg);
	free(c->vault_url);
	free(c->on_change);
	free(c->rules_file);
	free(c->key_readers);
	free(c->mountpoint);
	free(c->tenant);
	free(c->client_id);
	free(c->object_id);
	free(c->msi_res_id);
	free(c->secret_file);
	kvfs_secure_free_str(c->client_secret);
	free(c->cert_file);
	free(c->cert_password_file);
	kvfs_secure_free_str(c->cert_password);
	free(c->token_file);
	free(c->authority);
	free(c->imds_url);
	free(c->resource);
	free(c->default_resource);
	free(c->ca_file);
	free(c->api_version);
	kvfs_secure_free_str(c->proxy);
	free(c->noproxy);
	free_globs(&c->include);
	free_globs(&c->exclude);
	for (size_t i = 0; i < c->tags.n; i++) {
		free(c->tags.v[i].key);
		free(c->tags.v[i].value);
	}
	free(c->tags.v);
	for (int i = 0; c->fuse_argv && i < c->fuse_argc; i++)
		free(c->fuse_argv[i]);
	free(c->fuse_argv);
	memset(c, 0, sizeof(*c));
}

static int take_positional(const char *arg, char **pos, size_t *npos,
			   struct kvfs_error *err)
{
	if (*npos >= 2)
		return fail(err, -EINVAL,
			    "unexpected argument '%s' (usage: kvfs [options] "
			    "VAULT MOUNTPOINT)",
			    arg);
	pos[(*npos)++] = (char *)arg;
	return 0;
}

static int parse_args(int argc, char **argv, struct kvfs_config *c, char **pos,
		      size_t *npos, struct kvfs_error *err)
{
	bool only_positional = false;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (only_positional || a[0] != '-' || a[1] == '\0') {
			r = take_positional(a, pos, npos, err);
		} else if (strcmp(a, "--") == 0) {
			only_positional = true;
			r = 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			print_help();
			return 1;
		} else if (strcmp(a, "-V") == 0 ||
			   strcmp(a, "--version") == 0) {
			print_version();
			return 1;
		} else if (strcmp(a, "-s") == 0) {
			/* libfuse's single-threaded loop is for filesystems
			 * that are not thread-safe; kvfs is, and one file
			 * operation may wait on the vault for deadline=:
			 * accepted, and served with threads as ever. */
			r = 0;
		} else if (strcmp(a, "-f") == 0) {
			c->foreground = true;
			r = 0;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
			c->debug = true;
			r = 0;
		} else if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc)
				return fail(err, -EINVAL,
					    "option '-o' needs an argument");
			r = parse_o(c, argv[++i], err);
		} else if (strncmp(a, "-o", 2) == 0) {
			r = parse_o(c, a + 2, err);
		} else {
			r = fail(err, -EINVAL,
				 "unknown option '%s' (see kvfs --help)", a);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int finish(struct kvfs_config *c, char **pos, size_t npos,
		  const char *argv0, struct kvfs_error *err)
{
	static const struct {
		const char *env, *key;
		size_t off;
	} envs[] = {
		{"AZURE_TENANT_ID", "tenant",
		 offsetof(struct kvfs_config, tenant)},
		{"AZURE_CLIENT_ID", "client_id",
		 offsetof(struct kvfs_config, client_id)},
		{"AZURE_CLIENT_CERTIFICATE_PATH", "cert_file",
		 offsetof(struct kvfs_config, cert_file)},
		{"AZURE_FEDERATED_TOKEN_FILE", "token_file",
		 offsetof(struct kvfs_config, token_file)},
		{"AZURE_AUTHORITY_HOST", "authority",
		 offsetof(struct kvfs_config, authority)},
	};
	const struct cloud_defaults *cd = &clouds[c->cloud];
	char *resolved;
	int r;

	r = take_credentials(c);
	if (r < 0)
		return r;

	/* Even when an option wins, the secrets leave the environment. */
	r = take_env_secret("AZURE_CLIENT_SECRET", !c->secret_file,
			    &c->client_secret);
	if (r < 0)
		return r;
	r = take_env_secret("AZURE_CLIENT_CERTIFICATE_PASSWORD",
			    !c->cert_password_file, &c->cert_password);
	if (r < 0)
		return r;

	if (npos < 2)
		return fail(err, -EINVAL,
			    "missing %s (usage: kvfs [options] VAULT "
			    "MOUNTPOINT)",
			    npos == 0 ? "VAULT and MOUNTPOINT" : "MOUNTPOINT");

	/* Rules and the audit are kept at open, which kernel_cache gives
	 * up. */
	if (c->kernel_cache && (c->rules_file || c->key_readers))
		return fail(err, -EINVAL,
			    "kernel_cache cannot be used with %s: the kernel "
			    "would not ask kvfs at open",
			    c->rules_file ? "rules_file=" : "key_readers=");

	for (size_t i = 0; i < ELEMENTSOF(envs); i++) {
		r = env_default(c, envs[i].env, envs[i].key,
				(char **)((char *)c + envs[i].off), err);
		if (r < 0)
			return r;
	}
	r = proxy_env_defaults(c, err);
	if (r < 0)
		return r;

	if (!c->send_cert_chain) {
		const char *v = getenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN");

		c->send_cert_chain = v && (strcmp(v, "1") == 0 ||
					   strcasecmp(v, "true") == 0);
	}

	if (c->debug) {
		c->foreground = true;
		c->loglevel = KVFS_LOG_DEBUG;
	}

	if (!c->authority && !(c->authority = strdup(cd->authority)))
		return -ENOMEM;
	if (!(c->default_resource = strdup(cd->resource)))
		return -ENOMEM;
	if (!c->imds_url && !(c->imds_url = strdup(KVFS_DEFAULT_IMDS_URL)))
		return -ENOMEM;
	if (!c->api_version &&
	    !(c->api_version = strdup(KVFS_DEFAULT_API_VERSION)))
		return -ENOMEM;
	if (!c->collections) {
		r = parse_collections(KVFS_DEFAULT_COLLECTIONS, &c->collections,
				      err);
		if (r < 0)
			return r;
	}

	if (!(c->vault_arg = strdup(pos[0])))
		return -ENOMEM;
	r = kvfs_config_vault_url(pos[0], c->cloud, &c->vault_url);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return fail(err, r,
			    "invalid vault '%s': expected a vault name (3-24 "
			    "letters, digits and hyphens) or an "
			    "https://host[:port] URL",
			    pos[0]);

	/* The daemon runs in /, and libfuse unmounts by this path. */
	resolved = realpath(pos[1], NULL);
	if (!resolved)
		return fail(err, -errno, "cannot access mountpoint '%s': %s",
			    pos[1], strerror(errno));
	c->mountpoint = resolved;

	return build_fuse_argv(c, argv0);
}

int kvfs_config_parse(int argc, char **argv, struct kvfs_config *ret,
		      struct kvfs_error *err)
{
	_cleanup_(kvfs_config_free) struct kvfs_config c = {
		.auth = KVFS_AUTH_AUTO,
		.cloud = KVFS_CLOUD_PUBLIC,
		.refresh = KVFS_DEFAULT_REFRESH,
		.max_stale = KVFS_DEFAULT_MAX_STALE,
		.deadline = KVFS_DEFAULT_DEADLINE,
		.loglevel = KVFS_LOG_NOTICE,
		.uid = getuid(),
		.gid = getgid(),
		.key_mode = KVFS_DEFAULT_KEY_MODE,
		.on_change_delay = KVFS_DEFAULT_ON_CHANGE_DELAY,
		.on_change_timeout = KVFS_DEFAULT_ON_CHANGE_TIMEOUT,
		.expiring_days = KVFS_DEFAULT_EXPIRING_DAYS,
	};
	char *pos[2] = {NULL, NULL};
	size_t npos = 0;
	int r;

	kvfs_error_clear(err);
	r = parse_args(argc, argv, &c, pos, &npos, err);
	if (r == 1)
		return 1;
	if (r == 0)
		r = finish(&c, pos, npos, argc > 0 ? argv[0] : NULL, err);
	if (r == -ENOMEM && !err->message[0])
		fail(err, r, "out of memory");
	if (r < 0)
		return r;

	*ret = TAKE_STRUCT(c);
	return 0;
}
