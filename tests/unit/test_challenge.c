/* Unit tests for the WWW-Authenticate challenge parser (auth/challenge.c):
 * the real Key Vault header (sample S1), authorization_uri, scope, several
 * challenges, and hostile or broken input. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "tap.h"

static int parse(const char *h, char **tenant, char **resource)
{
	*tenant = *resource = NULL;
	return kvfs_auth_parse_challenge(h, tenant, resource);
}

static void good(const char *h, const char *tenant, const char *resource,
		 const char *what)
{
	char *t, *r;
	int ret = parse(h, &t, &r);

	is_int(ret, 0, "%s: parses", what);
	is_str(t, tenant, "%s: tenant", what);
	is_str(r, resource, "%s: resource", what);
	free(t);
	free(r);
}

static void bad(const char *h, const char *what)
{
	char *t = NULL, *r = NULL;
	int ret = parse(h, &t, &r);

	ok(ret < 0, "%s: refused (%d)", what, ret);
	ok(!t && !r, "%s: nothing returned", what);
	free(t);
	free(r);
}

int main(void)
{
	/* S1, verbatim */
	good("Bearer authorization=\"https://login.windows.net/"
	     "00000000-0000-0000-0000-000000000000\", "
	     "resource=\"https://vault.azure.net\"",
	     "00000000-0000-0000-0000-000000000000", "https://vault.azure.net",
	     "S1 header");

	good("Bearer authorization_uri=\"https://login.microsoftonline.com/"
	     "contoso.onmicrosoft.com/oauth2/authorize\", "
	     "resource=\"https://vault.azure.cn\"",
	     "contoso.onmicrosoft.com", "https://vault.azure.cn",
	     "authorization_uri, tenant is the first segment");

	good("Bearer authorization=\"https://login.windows.net/t1\", "
	     "resource=\"https://ignored.example\", "
	     "scope=\"https://vault.azure.net/.default\"",
	     "t1", "https://vault.azure.net", "scope preferred, /.default cut");

	good("Bearer authorization=\"https://login.windows.net/t1\" "
	     "scope=\"https://vault.azure.net\"",
	     "t1", "https://vault.azure.net",
	     "space separated, scope without /.default");

	good("bearer AUTHORIZATION=https://login.windows.net/t2,"
	     "Resource=https://vault.azure.net",
	     "t2", "https://vault.azure.net",
	     "case-insensitive names, token values, no space");

	good("Basic realm=\"x\", Bearer authorization=\"https://a.example/t3\","
	     " resource=\"https://vault.azure.net\", PoP nonce=\"abc\"",
	     "t3", "https://vault.azure.net", "Bearer among other challenges");

	good("Bearer authorization=\"https://a.example/t4\", "
	     "resource=\"https://vault.azure.net\", "
	     "authorization=\"https://b.example/evil\"",
	     "t4", "https://vault.azure.net", "first of a duplicate wins");

	good("Bearer error=\"invalid_token\", authorization=\"https://a.example"
	     "/t\\5\", resource=\"https://vault.azure.net\"",
	     "t5", "https://vault.azure.net", "quoted-pair unescaped");

	good("  Bearer   authorization = \"https://a.example/t6/\" ,,"
	     " resource = \"https://vault.azure.net\"  ",
	     "t6", "https://vault.azure.net", "extra whitespace and commas");

	bad("", "empty");
	bad("Bearer", "Bearer without parameters");
	bad("Basic realm=\"kvfs\"", "no Bearer challenge");
	bad("Bearer resource=\"https://vault.azure.net\"", "no authorization");
	bad("Bearer authorization=\"https://login.windows.net/t\"",
	    "no resource");
	bad("Bearer authorization=\"https://login.windows.net/t\", "
	    "resource=\"https://vault.azure.net",
	    "unterminated quote");
	bad("Bearer authorization=\"https://login.windows.net/t\\",
	    "unterminated after a backslash");
	bad("Bearer authorization=\"https://login.windows.net\", "
	    "resource=\"https://vault.azure.net\"",
	    "authority without a tenant");
	bad("Bearer authorization=\"https://login.windows.net/..\", "
	    "resource=\"https://vault.azure.net\"",
	    "dot-dot tenant");
	bad("Bearer authorization=\"https://login.windows.net/a%2fb\", "
	    "resource=\"https://vault.azure.net\"",
	    "tenant with characters a URL path must not get");
	bad("Bearer authorization=\"login.windows.net/t\", "
	    "resource=\"https://vault.azure.net\"",
	    "authority that is not a URL");
	bad("Bearer authorization=\"https://a.example/t\", "
	    "resource=\"https://vault.azure.net\nX-Evil: 1\"",
	    "control character in a value");
	bad("Bearer authorization=\"https://a.example/t\", resource=\"\"",
	    "empty resource");
	bad("Bearer authorization=\"https://a.example/t\", "
	    "scope=\"/.default\"",
	    "scope that is only /.default");
	bad("Bearer authorization=\"https://a.example/t\"x, "
	    "resource=\"https://vault.azure.net\"",
	    "garbage after a quoted value");
	bad("Bearer =\"x\"", "parameter without a name");
	bad("\"Bearer\"", "quoted scheme");
	bad("Bearer authorization=, resource=", "empty values");
	bad("Bearer authorizationhttps://a.example/t", "no equals sign");
	bad("authorization=\"https://a.example/t\", "
	    "resource=\"https://vault.azure.net\"",
	    "parameters without a scheme");
	bad(NULL, "NULL");

	{
		/* Long input is bounded, not trusted. */
		size_t n = 100000;
		char *h = malloc(n + 1);

		memset(h, 'a', n);
		memcpy(h, "Bearer authorization=\"", 22);
		h[n] = '\0';
		bad(h, "huge unterminated value");
		free(h);
	}
	{
		static const char head[] =
			"Bearer authorization=\"https://a.example/t\", "
			"resource=\"https://";
		size_t n = 3000, hl = sizeof(head) - 1;
		char *h = malloc(hl + n + 2);

		memcpy(h, head, hl);
		memset(h + hl, 'v', n);
		h[hl + n] = '"';
		h[hl + n + 1] = '\0';
		bad(h, "value over the length limit");
		free(h);
	}

	return done_testing();
}
