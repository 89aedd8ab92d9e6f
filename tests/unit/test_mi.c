/* Unit tests for the managed-identity provider's pure parts (mi.c): the
 * choice of IMDS / App Service / Arc from the environment, token responses
 * (numbers as strings, App Service's expires_on only), the retry schedule
 * and its 70 s budget, and the checks on Arc's "Basic realm=" key path. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/provider.h"
#include "tap.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_detect(void)
{
	is_int(kvfs_mi_detect(NULL, NULL, NULL, false), KVFS_MI_IMDS,
	       "nothing set: IMDS");
	is_int(kvfs_mi_detect("http://localhost:4141/MSI/token", "h", NULL,
			      false),
	       KVFS_MI_APPSERVICE, "IDENTITY_ENDPOINT + IDENTITY_HEADER");
	is_int(kvfs_mi_detect("http://localhost:40342/x", NULL,
			      "http://localhost:40342", false),
	       KVFS_MI_ARC, "IDENTITY_ENDPOINT + IMDS_ENDPOINT");
	is_int(kvfs_mi_detect("http://a/x", "h", "http://a", false),
	       KVFS_MI_APPSERVICE, "App Service first, as MSAL");
	is_int(kvfs_mi_detect(NULL, NULL, NULL, true), KVFS_MI_ARC,
	       "Arc agent installed");
	is_int(kvfs_mi_detect("http://a/x", NULL, NULL, false), KVFS_MI_IMDS,
	       "IDENTITY_ENDPOINT alone: IMDS");
	is_int(kvfs_mi_detect("http://a/x", "", "", false), KVFS_MI_IMDS,
	       "empty values count as unset");
	is_str(kvfs_mi_source_name(KVFS_MI_APPSERVICE), "appservice",
	       "name appservice");
	is_str(kvfs_mi_source_name(KVFS_MI_ARC), "arc", "name arc");
	is_str(kvfs_mi_source_name(KVFS_MI_IMDS), "imds", "name imds");
}

static int parse(const char *json, int64_t now, struct kvfs_token *t)
{
	memset(t, 0, sizeof(*t));
	return kvfs_mi_parse_token(json, strlen(json), now, t);
}

static void test_parse(void)
{
	struct kvfs_token t;
	int r;

	/* IMDS (AZURE.md §5): every number a string. */
	r = parse("{\"access_token\":\"eyJ0.a.b\",\"client_id\":\"c\","
		  "\"expires_in\":\"86399\",\"expires_on\":\"1506484173\","
		  "\"ext_expires_in\":\"86399\",\"not_before\":\"1506480273\","
		  "\"resource\":\"https://vault.azure.net\","
		  "\"token_type\":\"Bearer\",\"refresh_token\":\"\"}",
		  1506397774, &t);
	is_int(r, 0, "IMDS response parses");
	is_str(t.access_token, "eyJ0.a.b", "access_token");
	is_int(t.expires_in, 86399, "expires_in from a string");
	kvfs_token_clear(&t);

	/* App Service (§6.1): expires_on only. */
	r = parse("{\"access_token\":\"tok\",\"expires_on\":\"1586984735\","
		  "\"resource\":\"https://vault.azure.net\","
		  "\"token_type\":\"Bearer\",\"client_id\":\"5E29\"}",
		  1586981135, &t);
	is_int(r, 0, "App Service response parses");
	is_int(t.expires_in, 3600, "expires_on - now");
	kvfs_token_clear(&t);

	r = parse("{\"access_token\":\"tok\",\"expires_on\":1586984735}",
		  1586981135, &t);
	is_int(r, 0, "expires_on as a number");
	is_int(t.expires_in, 3600, "same lifetime");
	kvfs_token_clear(&t);

	r = parse("{\"access_token\":\"tok\",\"expires_on\":\"100\"}", 160, &t);
	is_int(r, 0, "expires_on in the past parses (the cache clamps)");
	is_int(t.expires_in, -60, "negative lifetime kept");
	kvfs_token_clear(&t);

	r = parse("{\"access_token\":\"tok\",\"expires_in\":\"60\","
		  "\"expires_on\":\"99999\"}",
		  0, &t);
	is_int(r, 0, "both given");
	is_int(t.expires_in, 60, "expires_in wins (no clock involved)");
	kvfs_token_clear(&t);

	static const char *const bad[] = {
		"",
		"{}",
		"{\"access_token\":\"tok\"}",
		"{\"access_token\":\"tok\",\"expires_on\":\"soon\"}",
		"{\"access_token\":\"tok\",\"expires_on\":\"\"}",
		"{\"access_token\":\"tok\",\"expires_in\":\"1.5\"}",
		"{\"access_token\":\"tok\",\"expires_in\":true}",
		"{\"access_token\":\"\",\"expires_in\":\"1\"}",
		"{\"access_token\":\"a\\nb\",\"expires_in\":\"1\"}",
		"{\"access_token\":\"tok\",\"expires_in\":\"1\","
		"\"token_type\":\"pop\"}",
		"{\"access_token\":\"tok\",\"expires_in\":\"1\","
		"\"refresh_in\":\"-1\"}",
		"[\"access_token\"]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		r = parse(bad[i], 1000, &t);
		is_int(r, -EBADMSG, "bad response %zu refused", i);
		ok(t.access_token == NULL, "bad response %zu: no token", i);
	}
}

static void test_retry(void)
{
	static const long want[] = {2000, 4000, 8000, 16000, 32000, 32000};
	long elapsed = 0, d;
	unsigned n;

	for (n = 1; n <= 6; n++)
		is_int(kvfs_mi_retry_delay_ms(n, 0, 0), want[n - 1],
		       "retry %u waits %ld ms", n, want[n - 1]);

	/* Over the whole budget: attempts at 0, 2, 6, 14, 30, 62, 70 s. */
	for (n = 1; (d = kvfs_mi_retry_delay_ms(n, elapsed, 0)) >= 0; n++)
		elapsed += d;
	is_int(elapsed, KVFS_MI_RETRY_BUDGET_MS, "retries end at 70 s");
	is_int(n, 7, "after 6 retries, 7 attempts");

	is_int(kvfs_mi_retry_delay_ms(1, 0, 5000), 5000,
	       "a longer Retry-After is honoured");
	is_int(kvfs_mi_retry_delay_ms(3, 0, 1000), 8000,
	       "a shorter Retry-After is not");
	is_int(kvfs_mi_retry_delay_ms(1, 69000, 0), 1000,
	       "clipped to what is left of the budget");
	is_int(kvfs_mi_retry_delay_ms(1, 69000, 3600000), 1000,
	       "Retry-After clipped too");
	is_int(kvfs_mi_retry_delay_ms(2, 70000, 0), -1, "budget spent");
	is_int(kvfs_mi_retry_delay_ms(0, 0, 0), -1, "attempt 0: no retry");
}

static void test_arc_realm(void)
{
	const char *dir = "/var/opt/azcmagent/tokens";
	char *path = NULL;
	int r;

	r = kvfs_arc_realm_path("Basic realm=/var/opt/azcmagent/tokens/"
				"0a1b2c.key",
				dir, &path);
	is_int(r, 0, "the agent's realm accepted");
	is_str(path, "/var/opt/azcmagent/tokens/0a1b2c.key", "its path");
	free(path);
	path = NULL;

	r = kvfs_arc_realm_path("basic  Realm=\"/var/opt/azcmagent/tokens/"
				"x.key\"",
				dir, &path);
	is_int(r, 0, "case and quotes tolerated");
	is_str(path, "/var/opt/azcmagent/tokens/x.key", "unquoted");
	free(path);
	path = NULL;

	r = kvfs_arc_realm_path("Basic realm=/var/opt/azcmagent/tokens/x.key",
				"/var/opt/azcmagent/tokens/", &path);
	is_int(r, 0, "a trailing slash on the directory is fine");
	free(path);
	path = NULL;

	static const char *const perm[] = {
		"Basic realm=/etc/shadow",
		"Basic realm=/var/opt/azcmagent/tokens/x.txt",
		"Basic realm=/var/opt/azcmagent/tokens/.key",
		"Basic realm=/var/opt/azcmagent/tokens/sub/x.key",
		"Basic realm=/var/opt/azcmagent/tokens/../../../etc/x.key",
		"Basic realm=/var/opt/azcmagent/tokensx/x.key",
		"Basic realm=/var/opt/azcmagent/x.key",
		"Basic realm=var/opt/azcmagent/tokens/x.key",
		"Basic realm=/var/opt/azcmagent/tokens/x.KEY",
	};
	for (size_t i = 0; i < sizeof(perm) / sizeof(*perm); i++) {
		r = kvfs_arc_realm_path(perm[i], dir, &path);
		is_int(r, -EPERM, "refused: %s", perm[i]);
		ok(path == NULL, "no path returned");
	}

	static const char *const bad[] = {
		"Bearer realm=/var/opt/azcmagent/tokens/x.key",
		"Basic",
		"Basic scope=/var/opt/azcmagent/tokens/x.key",
		"Basic realm=",
		"Basic realm=\"/var/opt/azcmagent/tokens/x.key",
		"Basic realm=/var/opt/azcmagent/tokens/x\x01.key",
		"Basicrealm=/var/opt/azcmagent/tokens/x.key",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		r = kvfs_arc_realm_path(bad[i], dir, &path);
		is_int(r, -EBADMSG, "not a Basic realm: case %zu", i);
	}
	is_int(kvfs_arc_realm_path(NULL, dir, &path), -EBADMSG,
	       "no header at all");

	is_str(kvfs_arc_token_dir(), "/var/opt/azcmagent/tokens",
	       "the core library's directory is MSAL's");
}

int main(void)
{
	test_detect();
	test_parse();
	test_retry();
	test_arc_realm();
	return done_testing();
}
