/* Unit tests for the auth helpers that need no network: credential files
 * (credfile.c: mode, owner, symlink, size, newline stripping) and the
 * Entra ID parsers (entra.c: discovery, token, error bodies from samples
 * S5). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/credfile.h"
#include "auth/entra.h"
#include "tap.h"
#include "util.h"

/* A string literal and its length. */
#define S(lit) (lit), (sizeof(lit) - 1)

static char dir[] = "/tmp/kvfs-test-auth-XXXXXX";

static char *path_of(const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void write_file(const char *name, const char *data, size_t len,
		       mode_t mode)
{
	int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	fchmod(fd, mode);
	close(fd);
}

static void test_credfile(void)
{
	struct kvfs_error err = {0};
	char *buf = NULL, *big, target[256];
	size_t len = 0;
	int r;

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}

	write_file("secret", "s3cr3t~value\r\n\n", 15, 0600);
	r = kvfs_credfile_read(path_of("secret"), KVFS_CREDFILE_STRIP_NEWLINES,
			       &buf, &len, &err);
	is_int(r, 0, "0600 secret file read");
	is_str(buf, "s3cr3t~value", "trailing newlines stripped");
	is_int(len, 12, "length without newlines");
	kvfs_secure_free(buf, len + 1);

	r = kvfs_credfile_read(path_of("secret"), 0, &buf, &len, &err);
	is_int(r, 0, "read without stripping");
	is_int(len, 15, "newlines kept");
	kvfs_secure_free(buf, len + 1);

	write_file("open", "x\n", 2, 0644);
	buf = NULL;
	r = kvfs_credfile_read(path_of("open"), KVFS_CREDFILE_STRIP_NEWLINES,
			       &buf, &len, &err);
	is_int(r, -EPERM, "0644 refused");
	ok(buf == NULL, "nothing returned");
	ok(strstr(err.message, "UNPROTECTED PRIVATE KEY FILE: permissions "
			       "0644 for '") != NULL,
	   "ssh-style message: %s", err.message);

	write_file("group", "x\n", 2, 0610);
	r = kvfs_credfile_read(path_of("group"), 0, &buf, &len, &err);
	is_int(r, -EPERM, "any group bit refused (0610)");

	r = kvfs_credfile_read(path_of("open"), KVFS_CREDFILE_ANY_MODE, &buf,
			       &len, &err);
	is_int(r, 0, "ANY_MODE reads a 0644 token file");
	kvfs_secure_free(buf, len + 1);

	/* path_of() answers in one buffer: the link's target is copied out
	 * first. */
	snprintf(target, sizeof(target), "%s", path_of("secret"));
	ok(symlink(target, path_of("link")) == 0, "a symlink to the secret");
	r = kvfs_credfile_read(path_of("link"), 0, &buf, &len, &err);
	is_int(r, -ELOOP, "symlink refused");
	ok(strstr(err.message, "symbolic link") != NULL, "says why: %s",
	   err.message);
	buf = NULL;
	r = kvfs_credfile_read(path_of("link"), KVFS_CREDFILE_ANY_MODE, &buf,
			       &len, &err);
	is_int(r, 0, "ANY_MODE follows a symlink");
	if (r == 0)
		kvfs_secure_free(buf, len + 1);

	r = kvfs_credfile_read(dir, 0, &buf, &len, &err);
	is_int(r, -EINVAL, "directory refused");

	r = kvfs_credfile_read(path_of("missing"), 0, &buf, &len, &err);
	is_int(r, -ENOENT, "missing file");
	/* a name that does not exist may be the secret itself */
	ok(strstr(err.message, "/mis\xe2\x80\xa6' (4 characters not shown)") !=
		   NULL,
	   "names the directory, not the whole name: %s", err.message);
	ok(strstr(err.message, "missing") == NULL, "the name is cut");
	is_int(err.local, 1, "a local file's failure");

	write_file("empty", "\n", 1, 0600);
	r = kvfs_credfile_read(path_of("empty"), KVFS_CREDFILE_STRIP_NEWLINES,
			       &buf, &len, &err);
	is_int(r, -EINVAL, "only a newline: empty");

	big = malloc(KVFS_CREDFILE_MAX + 1);
	memset(big, 'a', KVFS_CREDFILE_MAX + 1);
	write_file("max", big, KVFS_CREDFILE_MAX, 0400);
	r = kvfs_credfile_read(path_of("max"), 0, &buf, &len, &err);
	is_int(r, 0, "exactly 64 KiB accepted");
	is_int(len, KVFS_CREDFILE_MAX, "all of it");
	if (r == 0)
		kvfs_secure_free(buf, len + 1);
	write_file("big", big, KVFS_CREDFILE_MAX + 1, 0600);
	r = kvfs_credfile_read(path_of("big"), 0, &buf, &len, &err);
	is_int(r, -EFBIG, "64 KiB + 1 refused");
	free(big);

	if (geteuid() == 0 && chown(path_of("secret"), 12345, 12345) == 0) {
		r = kvfs_credfile_read(path_of("secret"), 0, &buf, &len, &err);
		is_int(r, -EPERM, "owned by another user: refused");
		ok(strstr(err.message, "owned by uid 12345") != NULL,
		   "says whose: %s", err.message);
	}

	unlink(path_of("secret"));
	unlink(path_of("open"));
	unlink(path_of("group"));
	unlink(path_of("link"));
	unlink(path_of("empty"));
	unlink(path_of("max"));
	unlink(path_of("big"));
	rmdir(dir);
}

static int token_str(const char *json, struct kvfs_token *t)
{
	memset(t, 0, sizeof(*t));
	return kvfs_entra_parse_token(json, strlen(json), t);
}

static void test_entra(void)
{
	struct kvfs_error err = {0};
	struct kvfs_token t = {0};
	char *json, *endpoint = NULL;
	size_t len;
	int r;

	json = tap_slurp("entra-discovery.json", &len);
	ok(json != NULL, "fixture entra-discovery.json");
	r = kvfs_entra_parse_discovery(json, len, &endpoint);
	is_int(r, 0, "S5 discovery parses");
	is_str(endpoint,
	       "https://login.microsoftonline.com/"
	       "00000000-0000-0000-0000-000000000000/oauth2/v2.0/token",
	       "token_endpoint");
	free(endpoint);
	free(json);
	endpoint = NULL;
	r = kvfs_entra_parse_discovery(
		S("{\"token_endpoint\":\"http://login.example/t/token\"}"),
		&endpoint);
	is_int(r, -EPROTO, "plain http token_endpoint refused");
	for (const char *const *u =
		     (const char *const[]){
			     "{\"token_endpoint\":\"https://"
			     "user:pw@login.example/t\"}",
			     "{\"token_endpoint\":\"https://"
			     "login.example:99999/t\"}",
			     "{\"token_endpoint\":\"https:///t/token\"}",
			     "{\"token_endpoint\":\"https://login%2eexample/"
			     "t\"}",
			     "{\"token_endpoint\":\"https://\"}",
			     "{\"token_endpoint\":\"ftp://login.example/t\"}",
			     NULL};
	     *u; u++) {
		r = kvfs_entra_parse_discovery(*u, strlen(*u), &endpoint);
		is_int(r, -EPROTO, "refused: %s", *u);
	}
	r = kvfs_entra_parse_discovery(
		S("{\"token_endpoint\":\"HTTPS://Login.Example:8443/t\"}"),
		&endpoint);
	is_int(r, 0, "a scheme in capitals and a port are fine");
	is_str(endpoint, "HTTPS://Login.Example:8443/t", "kept as written");
	free(endpoint);
	endpoint = NULL;
	r = kvfs_entra_parse_discovery(S("{\"issuer\":\"x\"}"), &endpoint);
	is_int(r, -EBADMSG, "no token_endpoint");
	ok(endpoint == NULL, "nothing returned");

	json = tap_slurp("entra-token.json", &len);
	ok(json != NULL, "fixture entra-token.json");
	r = kvfs_entra_parse_token(json, len, &t);
	is_int(r, 0, "S5 token response parses");
	is_str(t.access_token, "access_token", "access_token");
	is_int(t.expires_in, 86399, "expires_in as a number");
	is_int(t.refresh_in, 0, "no refresh_in");
	kvfs_token_clear(&t);
	free(json);

	json = tap_slurp("imds-token.json", &len);
	r = kvfs_entra_parse_token(json, len, &t);
	is_int(r, 0, "IMDS-style strings parse");
	is_int(t.expires_in, 86333, "expires_in as a string");
	kvfs_token_clear(&t);
	free(json);

	r = token_str("{\"access_token\":\"abc\",\"expires_in\":3599,"
		      "\"refresh_in\":\"1800\"}",
		      &t);
	is_int(r, 0, "refresh_in as a string");
	is_int(t.refresh_in, 1800, "refresh_in");
	kvfs_token_clear(&t);

	/* Absurd lifetimes parse; the token cache clamps them. */
	r = token_str("{\"access_token\":\"abc\",\"expires_in\":0}", &t);
	is_int(r, 0, "expires_in 0 parses");
	is_int(t.expires_in, 0, "as 0");
	kvfs_token_clear(&t);
	r = token_str("{\"access_token\":\"abc\",\"expires_in\":\"-5\"}", &t);
	is_int(r, 0, "negative expires_in parses");
	is_int(t.expires_in, -5, "as -5");
	kvfs_token_clear(&t);

	static const char *const bad[] = {
		"{}",
		"[]",
		"{\"access_token\":\"abc\"}",
		"{\"access_token\":\"\",\"expires_in\":1}",
		"{\"access_token\":5,\"expires_in\":1}",
		"{\"access_token\":\"a b\",\"expires_in\":1}",
		"{\"access_token\":\"a\\r\\nX-Evil: 1\",\"expires_in\":1}",
		"{\"access_token\":\"abc\",\"expires_in\":\"12x\"}",
		"{\"access_token\":\"abc\",\"expires_in\":\"\"}",
		"{\"access_token\":\"abc\",\"expires_in\":true}",
		"{\"access_token\":\"abc\",\"expires_in\":1,\"refresh_in\":[]}",
		("{\"access_token\":\"abc\",\"expires_in\":1,\"token_type\":"
		 "\"pop\"}"),
		"{\"access_token\":\"abc\",\"expires_in\":1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		r = token_str(bad[i], &t);
		is_int(r, -EBADMSG, "bad token response %zu refused", i);
		ok(t.access_token == NULL, "bad token response %zu: no token",
		   i);
	}

	json = tap_slurp("entra-error-invalid-client.json", &len);
	kvfs_error_clear(&err);
	kvfs_entra_parse_error(json, len, &err);
	is_str(err.code, "invalid_client", "OAuth error code");
	is_str(err.aadsts, "AADSTS7000215", "AADSTS from error_codes");
	ok(strncmp(err.message, "Invalid client secret provided.", 31) == 0,
	   "message without the AADSTS prefix: %s", err.message);
	ok(strchr(err.message, '\r') == NULL &&
		   strchr(err.message, '\n') == NULL,
	   "first line only");
	free(json);

	kvfs_error_clear(&err);
	kvfs_entra_parse_error(S("{\"error\":\"invalid_request\","
				 "\"error_description\":\"AADSTS90002: Tenant "
				 "'x' not found.\\r\\nTrace ID: y\"}"),
			       &err);
	is_str(err.aadsts, "AADSTS90002", "AADSTS from the description");
	is_str(err.message, "Tenant 'x' not found.", "its first line");

	kvfs_error_clear(&err);
	kvfs_entra_parse_error(S("not json"), &err);
	ok(!err.code[0] && !err.aadsts[0] && !err.message[0],
	   "non-JSON error body leaves err alone");
}

static void is_token(int r, struct kvfs_token *t, int want_r, long expires_in,
		     long refresh_in, const char *what)
{
	is_int(r, want_r, "%s", what);
	is_int(t->expires_in, expires_in, "%s: expires_in", what);
	is_int(t->refresh_in, refresh_in, "%s: refresh_in", what);
	ok((t->access_token != NULL) == (r == 0), "%s: token", what);
	kvfs_token_clear(t);
}

/* Where Entra's token response is read differently from a managed
 * identity's (mi.c): Entra takes reals and refuses a lifetime beyond ten
 * years; a managed identity refuses reals, clamps lifetimes to 1000 days
 * and falls back to expires_on. */
static void test_token_numbers(void)
{
	static const struct {
		const char *json, *what;
		long expires_in; /* 0 for a refusal */
	} entra[] = {
		{"{\"access_token\":\"a\",\"expires_in\":3599.9}",
		 "entra: a real expires_in is truncated", 3599},
		{"{\"access_token\":\"a\",\"expires_in\":315360001}",
		 "entra: over ten years refused", 0},
		{"{\"access_token\":\"a\",\"expires_in\":1e13}",
		 "entra: a huge real refused", 0},
		{"{\"access_token\":\"a\",\"expires_on\":\"9\"}",
		 "entra: expires_on is no substitute", 0},
	};
	static const struct {
		long now;
		const char *json;
		int r;
		long expires_in, refresh_in;
		const char *what;
	} mi[] = {
		{0, "{\"access_token\":\"a\",\"expires_in\":3599.0}", -EBADMSG,
		 0, 0, "mi: a real expires_in refused"},
		{0,
		 "{\"access_token\":\"a\",\"expires_in\":\"400000000\","
		 "\"refresh_in\":400000000}",
		 0, 86400000, 86400000, "mi: lifetimes clamped to 1000 days"},
		{0, "{\"access_token\":\"a\",\"expires_in\":\"94608000001\"}",
		 -EBADMSG, 0, 0, "mi: over 3000 years refused"},
		{400000000, "{\"access_token\":\"a\",\"expires_on\":\"0\"}", 0,
		 -86400000, 0, "mi: expires_on long past, clamped"},
		{100,
		 "{\"access_token\":\"a\",\"expires_in\":null,"
		 "\"expires_on\":\"160\"}",
		 0, 60, 0, "mi: a null expires_in gives way to expires_on"},
	};
	struct kvfs_token t;
	int r;

	for (size_t i = 0; i < sizeof(entra) / sizeof(*entra); i++) {
		r = token_str(entra[i].json, &t);
		is_token(r, &t, entra[i].expires_in ? 0 : -EBADMSG,
			 entra[i].expires_in, 0, entra[i].what);
	}
	r = token_str("{\"access_token\":\"a\",\"expires_in\":315360000,"
		      "\"refresh_in\":315360000}",
		      &t);
	is_token(r, &t, 0, 315360000, 315360000, "entra: ten years, unclamped");

	for (size_t i = 0; i < sizeof(mi) / sizeof(*mi); i++) {
		memset(&t, 0, sizeof(t));
		r = kvfs_mi_parse_token(mi[i].json, strlen(mi[i].json),
					mi[i].now, &t);
		is_token(r, &t, mi[i].r, mi[i].expires_in, mi[i].refresh_in,
			 mi[i].what);
	}
}

static void test_pick(void)
{
	struct kvfs_config c = {.auth = KVFS_AUTH_AUTO};
	const char *why = NULL;

	is_int(kvfs_auth_pick(&c, &why), KVFS_AUTH_IMDS,
	       "auto, nothing configured: imds");
	ok(why && strstr(why, "no federated token"), "why: %s", why);

	c.client_secret = "s";
	is_int(kvfs_auth_pick(&c, &why), KVFS_AUTH_SECRET,
	       "AZURE_CLIENT_SECRET: secret");
	ok(strstr(why, "AZURE_CLIENT_SECRET"), "why: %s", why);
	c.secret_file = "/etc/kvfs/secret";
	is_int(kvfs_auth_pick(&c, &why), KVFS_AUTH_SECRET,
	       "secret_file: secret");
	ok(strstr(why, "secret_file="), "why: %s", why);
	c.cert_file = "/etc/kvfs/cert.pem";
	is_int(kvfs_auth_pick(&c, &why), KVFS_AUTH_CERT, "cert before secret");
	ok(strstr(why, "cert_file="), "why: %s", why);
	c.token_file = "/var/run/token";
	is_int(kvfs_auth_pick(&c, &why), KVFS_AUTH_WORKLOAD,
	       "workload before everything");
	ok(strstr(why, "token_file="), "why: %s", why);

	c.auth = KVFS_AUTH_SECRET;
	is_int(kvfs_auth_pick(&c, &why), KVFS_AUTH_SECRET,
	       "an explicit auth= wins");
	c.auth = KVFS_AUTH_IMDS;
	is_int(kvfs_auth_pick(&c, &why), KVFS_AUTH_IMDS, "auth=imds too");
}

static void test_lifetimes(void)
{
	is_int(kvfs_auth_clamp_lifetime(3599), 3599, "normal lifetime kept");
	is_int(kvfs_auth_clamp_lifetime(6), 6, "short test lifetime kept");
	is_int(kvfs_auth_clamp_lifetime(0), KVFS_AUTH_MIN_LIFETIME,
	       "0 clamped up");
	is_int(kvfs_auth_clamp_lifetime(-5), KVFS_AUTH_MIN_LIFETIME,
	       "negative clamped up");
	is_int(kvfs_auth_clamp_lifetime(86400), 86400, "a day kept");
	is_int(kvfs_auth_clamp_lifetime(86401), KVFS_AUTH_MAX_LIFETIME,
	       "over a day clamped down");

	is_int(kvfs_auth_refresh_after_ms(3599, 0, false), 3299000,
	       "Entra hour: refresh 5 minutes before expiry");
	is_int(kvfs_auth_refresh_after_ms(6, 0, false), 3000,
	       "6 s token: refresh after 3 s");
	is_int(kvfs_auth_refresh_after_ms(6, 0, true), 3000,
	       "short managed token: half-way too");
	is_int(kvfs_auth_refresh_after_ms(86399, 0, true), 43199500,
	       "24 h managed identity token: half-life");
	is_int(kvfs_auth_refresh_after_ms(7200, 0, true), 3600000,
	       "2 h managed identity token: half-life");
	is_int(kvfs_auth_refresh_after_ms(7199, 0, true), 6899000,
	       "under 2 h: 5 minutes before");
	is_int(kvfs_auth_refresh_after_ms(86399, 0, false), 86099000,
	       "24 h app token: 5 minutes before");
	is_int(kvfs_auth_refresh_after_ms(3599, 1800, false), 1800000,
	       "refresh_in sooner: honoured");
	is_int(kvfs_auth_refresh_after_ms(3599, 9999, false), 3299000,
	       "refresh_in later: ignored");

	is_int(kvfs_auth_retry_delay_ms(1, 0), 1000, "first retry after 1 s");
	is_int(kvfs_auth_retry_delay_ms(2, 0), 2000, "then 2 s");
	is_int(kvfs_auth_retry_delay_ms(3, 0), 4000, "then 4 s");
	is_int(kvfs_auth_retry_delay_ms(5, 0), 16000, "then 16 s");
	is_int(kvfs_auth_retry_delay_ms(6, 0), 30000, "capped at 30 s");
	is_int(kvfs_auth_retry_delay_ms(60, 0), 30000, "and stays there");
	is_int(kvfs_auth_retry_delay_ms(6, 300000), 30000,
	       "plenty left: the schedule");
	is_int(kvfs_auth_retry_delay_ms(6, 10000), 5000,
	       "little left: half of it");
	is_int(kvfs_auth_retry_delay_ms(3, 100), 250, "never under 250 ms");
}

int main(void)
{
	test_credfile();
	test_entra();
	test_token_numbers();
	test_pick();
	test_lifetimes();
	return done_testing();
}
