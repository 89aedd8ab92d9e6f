/* The URL module against hostile URLs: userinfo, brackets, ports, case,
 * percent-encoding, backslashes, whitespace, schemes, lengths; each with
 * the exact origin it gives or -EINVAL, then the same-origin verdicts,
 * the host, the no-proxy list, and the redaction for logs. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "url.h"

/* url parses (with flags) to the origin want, or fails with want_r. */
static void origin_is(const char *url, unsigned flags, const char *want)
{
	struct kvfs_url u;
	char *o = NULL;
	int r;

	r = kvfs_url_parse(url, flags, &u);
	if (!want) {
		is_int(r, -EINVAL, "'%s' is refused", url ? url : "NULL");
		return;
	}
	is_int(r, 0, "'%s' parses", url);
	if (r < 0)
		return;
	is_int(kvfs_url_origin(&u, &o), 0, "origin of '%s'", url);
	is_str(o, want, "origin of '%s'", url);
	free(o);
}

static void test_parse(void)
{
	static const struct {
		const char *url, *origin; /* origin NULL: -EINVAL */
	} cases[] = {
		{"https://v.vault.azure.net", "https://v.vault.azure.net"},
		{"https://v.vault.azure.net/", "https://v.vault.azure.net"},
		{"https://v.vault.azure.net/c/x?a=b#f",
		 "https://v.vault.azure.net"},
		{"HTTPS://V.Vault.Azure.NET/", "https://v.vault.azure.net"},
		{"https://v.vault.azure.net:443/",
		 "https://v.vault.azure.net:443"},
		{"https://h:0443/", "https://h:443"},
		{"https://h:8443", "https://h:8443"},
		{"https://h:1", "https://h:1"},
		{"https://h:65535", "https://h:65535"},
		{"https://[::1]", "https://[::1]"},
		{"https://[::1]:8443/x", "https://[::1]:8443"},
		{"https://[::FFFF:7F00:1]/", "https://[::ffff:7f00:1]"},
		{"https://127.0.0.1:4431/certificates",
		 "https://127.0.0.1:4431"},
		{"https://evil.com./", "https://evil.com."},
		{"https://x_y/", "https://x_y"},
		/* userinfo, in every disguise */
		{"https://user:pw@host/", NULL},
		{"https://host@evil/", NULL},
		{"https://@host/", NULL},
		{"https://v.vault.azure.net:443@evil.example/", NULL},
		{"https://v.vault.azure.net\\@evil/", NULL},
		/* percent-encoding, backslashes, whitespace */
		{"https://%65vil.com/", NULL},
		{"https://[fe80::1%25eth0]/", NULL},
		{"https://a\\b/", NULL},
		{"https:\\\\host/", NULL},
		{"https://ho st/", NULL},
		{"https://host\t/", NULL},
		{" https://host/", NULL},
		{"https://host/ ", NULL},
		/* brackets */
		{"https://[::1", NULL},
		{"https://[]/", NULL},
		{"https://[zzz]/", NULL},
		{"https://[::1]x/", NULL},
		{"https://::1/", NULL},
		/* ports */
		{"https://host:/", NULL},
		{"https://host:0/", NULL},
		{"https://host:00000/", NULL},
		{"https://host:65536/", NULL},
		{"https://host:99999/", NULL},
		{"https://host:000443/", NULL},
		{"https://host:44a/", NULL},
		{"https://host:443:1/", NULL},
		{"https://host:-1/", NULL},
		/* hosts */
		{"https://", NULL},
		{"https:///host", NULL},
		{"https://:443", NULL},
		{"https://.host/", NULL},
		{"https://-host/", NULL},
		/* schemes */
		{"host/x", NULL},
		{"//host/x", NULL},
		{"https:/host", NULL},
		{"https:host", NULL},
		{"ftp://host/", NULL},
		{"http://host/", NULL}, /* without KVFS_URL_HTTP */
		{"httpx://host/", NULL},
		{"", NULL},
		{NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		origin_is(cases[i].url, 0, cases[i].origin);
	{
		struct kvfs_url u;

		is_int(kvfs_url_parse("https://host/a\nb", 0, &u), -EINVAL,
		       "a newline in the path is refused");
	}
	origin_is("http://169.254.169.254/metadata", KVFS_URL_HTTP,
		  "http://169.254.169.254");
	origin_is("HTTP://H:80", KVFS_URL_HTTP, "http://h:80");
}

static void test_parts(void)
{
	struct kvfs_url u;
	const char *url = "https://V.example:8443/path?q#f";

	if (!ok(kvfs_url_parse(url, 0, &u) == 0, "parts of '%s'", url))
		return;
	is_str(u.scheme, "https", "scheme");
	is_str(u.host, "v.example", "host in lower case");
	is_int(u.port, 8443, "port");
	ok(u.port_given, "port given");
	is_str(url + u.rest, "/path?q#f", "the rest is left as written");

	ok(kvfs_url_parse("https://h", 0, &u) == 0 && u.port == 443 &&
		   !u.port_given && u.rest == 9,
	   "https default port");
	ok(kvfs_url_parse("http://h?x", KVFS_URL_HTTP, &u) == 0 &&
		   u.port == 80 && !u.port_given && u.rest == 8,
	   "http default port, the rest a query");
}

static void test_long(void)
{
	size_t n = 100000;
	char *s = malloc(n + 1);
	struct kvfs_url u;

	if (!s)
		return;
	/* a host of 253 characters, and one of 254 */
	memcpy(s, "https://", 8);
	memset(s + 8, 'a', 254);
	s[8 + 254] = '\0';
	is_int(kvfs_url_parse(s, 0, &u), -EINVAL, "host of 254 refused");
	s[8 + 253] = '\0';
	is_int(kvfs_url_parse(s, 0, &u), 0, "host of 253 accepted");
	/* a long path */
	s[8 + 253] = '/';
	memset(s + 8 + 254, 'p', n - 8 - 254);
	s[n] = '\0';
	ok(kvfs_url_parse(s, 0, &u) == 0 && u.rest == 8 + 253,
	   "a path of 100 kB is a path");
	free(s);
}

static void test_same_origin(void)
{
	static const struct {
		const char *a, *b;
		bool same;
	} cases[] = {
		{"https://v.vault.azure.net", "https://v.vault.azure.net:443/",
		 true},
		{"https://v.vault.azure.net:443", "https://v.vault.azure.net",
		 true},
		{"HTTPS://V.VAULT.AZURE.NET", "https://v.vault.azure.net/c",
		 true},
		{"http://h", "http://h:80/", true},
		{"https://[::1]:8443", "https://[::1]:8443/x", true},
		{"https://[::1]", "https://[0:0::1]/", true},
		{"https://[::1]", "https://[::1]:8443/", false},
		{"https://h", "http://h", false},
		{"https://h", "http://h:443", false},
		{"https://h", "https://h:8443", false},
		{"https://h", "https://h./", false},
		{"https://h", "https://%68/", false},
		{"https://h", "https://h@evil/", false},
		{"https://h", "https://evil@h/", false},
		{"https://h", "https://h:/", false},
		{"https://h", "//h/", false},
		{"https://h", "ftp://h/", false},
		{"https://h", "", false},
		{"https://h", NULL, false},
		{NULL, NULL, false},
		{"https://h@h", "https://h@h", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		ok(kvfs_url_same_origin(cases[i].a, cases[i].b) ==
			   cases[i].same,
		   "%s %s %s", cases[i].a ? cases[i].a : "NULL",
		   cases[i].same ? "==" : "!=",
		   cases[i].b ? cases[i].b : "NULL");
}

static void test_host(void)
{
	char *h = NULL;

	is_int(kvfs_url_host("https://V.Vault.Azure.NET:443/x", &h), 0,
	       "host of a vault URL");
	is_str(h, "v.vault.azure.net", "lower case, no port");
	free(h);
	h = NULL;
	is_int(kvfs_url_host("http://[::1]:80", &h), 0, "host of http [::1]");
	is_str(h, "[::1]", "brackets kept");
	free(h);
	h = NULL;
	is_int(kvfs_url_host("https://u@h", &h), -EINVAL, "userinfo: no host");
	is_int(kvfs_url_host("api://h", &h), -EINVAL, "not http(s): no host");
	is_int(kvfs_url_host(NULL, &h), -EINVAL, "NULL: no host");
	ok(h == NULL, "nothing written on failure");
}

static void test_redact(void)
{
	static const struct {
		const char *url, *want;
	} cases[] = {
		{"https://h/p?secret=1#f", "https://h/p"},
		{"https://user:pw@h/p?x", "https://h/p"},
		{"https://a@b@h:8443/p", "https://h:8443/p"},
		{"https://h/p@q", "https://h/p@q"},
		{"https://h?x@y", "https://h"},
		{"not a url?x", "not a url"},
		{"user:pw@h/x", "user:pw@h/x"},
		{"https://%zz@[bad/p", "https://[bad/p"},
		{"", ""},
		{NULL, ""},
	};
	char buf[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char out[128];

		kvfs_url_redact(cases[i].url, out, sizeof(out));
		is_str(out, cases[i].want, "redact '%s'",
		       cases[i].url ? cases[i].url : "NULL");
	}
	kvfs_url_redact("https://u:p@host.example/long/path", buf, sizeof(buf));
	is_str(buf, "https://host.ex", "cut to the buffer");
}

/* The path of a URL whose authority is skipped, not judged (an object's
 * id in a listing). */
static void test_path(void)
{
	static const struct {
		const char *url, *want;
	} cases[] = {
		{"https://v.vault.azure.net/certificates/a", "/certificates/a"},
		{"https://v/p?q=1#f", "/p?q=1#f"},
		{"https://u:p@v/p", "/p"},
		{"https://v:99999/p", "/p"},
		{"https://[::1]:8443/p", "/p"},
		{"https://v%41/p", "/p"},
		{"https://v?x/p", "/p"},
		{"ftp://v/p", "/p"},
		{"://v/p", "/p"},
		{"https:///p", "/p"},
		{"https://v//p", "//p"},
		{"x https://v/p", "/p"},
		{"https://v", NULL},
		{"https://v?x", NULL},
		{"/p", NULL},
		{"v/p", NULL},
		{"", NULL},
		{NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const char *got = kvfs_url_path(cases[i].url);

		if (cases[i].want)
			is_str(got, cases[i].want, "path of '%s'",
			       cases[i].url);
		else
			ok(got == NULL, "no path in '%s'",
			   cases[i].url ? cases[i].url : "NULL");
	}
}

static void test_no_proxy(void)
{
	static const struct {
		const char *url, *list;
		bool bypass;
	} cases[] = {
		{"https://v.vault.azure.net", "*", true},
		{"https://v.vault.azure.net", "vault.azure.net", true},
		{"https://v.vault.azure.net", ".vault.azure.net", true},
		{"https://v.vault.azure.net", "VAULT.Azure.NET.", true},
		{"https://v.vault.azure.net", "v.vault.azure.net", true},
		{"https://v.vault.azure.net", "ault.azure.net", false},
		{"https://v.vault.azure.net", "w.vault.azure.net", false},
		{"https://v.vault.azure.net", "a.b, vault.azure.net ,c", true},
		{"https://v.vault.azure.net", "a.b,,c", false},
		{"https://v.vault.azure.net", "", false},
		{"https://v.vault.azure.net", NULL, false},
		{"https://10.1.2.3:8443", "10.1.2.3", true},
		{"https://10.1.2.3", "10.1.2.4", false},
		{"https://10.1.2.3", "10.0.0.0/8", true},
		{"https://10.1.2.3", "10.1.2.0/24", true},
		{"https://10.1.3.3", "10.1.2.0/24", false},
		{"https://10.1.2.3", "10.1.2.0/31", false},
		{"https://10.1.2.3", "10.1.2.2/31", true},
		{"https://10.1.2.3", "10.1.2.2/30", true},
		{"https://10.1.2.3", "0.0.0.0/0", true},
		{"https://10.1.2.3", "10.0.0.0/33", false},
		{"https://10.1.2.3", "10.0.0.0/x", false},
		{"https://10.1.2.3", "3", false},
		{"https://127.0.0.1:1", "localhost", false},
		{"https://[::1]:8443", "::1", true},
		{"https://[::1]:8443", "[::1]", true},
		{"https://[fd00::5]", "fd00::/8", true},
		{"https://[fe80::5]", "fd00::/8", false},
		{"https://[::1]", "127.0.0.1", false},
		{"https://10.1.2.3", "::/0", false},
		{"not a url", "*", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		ok(kvfs_url_no_proxy(cases[i].url, cases[i].list) ==
			   cases[i].bypass,
		   "'%s' %s by '%s'", cases[i].url,
		   cases[i].bypass ? "bypasses" : "is proxied",
		   cases[i].list ? cases[i].list : "NULL");
}

int main(void)
{
	test_parse();
	test_parts();
	test_long();
	test_same_origin();
	test_host();
	test_redact();
	test_path();
	test_no_proxy();
	return done_testing();
}
