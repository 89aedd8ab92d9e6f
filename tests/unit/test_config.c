/* Unit tests of config.c: vault name and URL expansion, secrets refused on
 * the command line, environment defaults and options winning over them,
 * fstab options dropped, unknown options refused, numbers, cloud defaults,
 * collections=, the repeatable include=, exclude= and tag=, proxy= and
 * noproxy= (and the proxy variables), the libfuse conventions (-s,
 * auto_unmount, the mode options refused), --help, and the argument vector
 * handed to libfuse.  Runs in tests/data,
 * which serves as the mountpoint. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collection.h"
#include "config.h"
#include "url.h"
#include "tap.h"
#include "util.h"

static const char *const azure_env[] = {
	"AZURE_TENANT_ID",
	"AZURE_CLIENT_ID",
	"AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PATH",
	"AZURE_CLIENT_CERTIFICATE_PASSWORD",
	"AZURE_FEDERATED_TOKEN_FILE",
	"AZURE_AUTHORITY_HOST",
	"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
};

static const char *const proxy_env[] = {
	"https_proxy", "HTTPS_PROXY", "all_proxy",
	"ALL_PROXY",   "no_proxy",    "NO_PROXY",
};

static void clear_env(void)
{
	for (size_t i = 0; i < ELEMENTSOF(azure_env); i++)
		unsetenv(azure_env[i]);
	for (size_t i = 0; i < ELEMENTSOF(proxy_env); i++)
		unsetenv(proxy_env[i]);
	/* systemd credentials would fill in the *_file= options. */
	unsetenv("CREDENTIALS_DIRECTORY");
}

/* Parse "kvfs" followed by the NULL-terminated arguments. */
static int parse(struct kvfs_config *c, struct kvfs_error *err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"kvfs";
	va_start(ap, err);
	for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	memset(c, 0, sizeof(*c));
	return kvfs_config_parse(argc, argv, c, err);
}

static void url_ok(const char *arg, enum kvfs_cloud cloud, const char *want)
{
	char *url = NULL;
	int r = kvfs_config_vault_url(arg, cloud, &url);

	is_int(r, 0, "vault '%s' accepted", arg);
	is_str(url, want, "vault '%s' -> '%s'", arg, want);
	free(url);
}

static void url_bad(const char *arg)
{
	char *url = (char *)"untouched";

	is_int(kvfs_config_vault_url(arg, KVFS_CLOUD_PUBLIC, &url), -EINVAL,
	       "vault '%s' refused", arg);
	ok(url && strcmp(url, "untouched") == 0, "ret_url untouched ('%s')",
	   arg);
}

static void test_vault_url(void)
{
	char *url253 = NULL;

	url_ok("myvault", KVFS_CLOUD_PUBLIC, "https://myvault.vault.azure.net");
	url_ok("My-Vault-01", KVFS_CLOUD_PUBLIC,
	       "https://my-vault-01.vault.azure.net");
	url_ok("abc", KVFS_CLOUD_CHINA, "https://abc.vault.azure.cn");
	url_ok("abcdefghijklmnopqrstuvwx", KVFS_CLOUD_USGOV,
	       "https://abcdefghijklmnopqrstuvwx.vault.usgovcloudapi.net");
	url_ok("https://127.0.0.1:8443", KVFS_CLOUD_PUBLIC,
	       "https://127.0.0.1:8443");
	url_ok("https://127.0.0.1:8443/", KVFS_CLOUD_PUBLIC,
	       "https://127.0.0.1:8443");
	url_ok("https://MyVault.Vault.Azure.NET", KVFS_CLOUD_PUBLIC,
	       "https://myvault.vault.azure.net");
	url_ok("HTTPS://kv.example.com:1", KVFS_CLOUD_PUBLIC,
	       "https://kv.example.com:1");
	url_ok("https://kv.example.com:65535", KVFS_CLOUD_PUBLIC,
	       "https://kv.example.com:65535");
	url_ok("https://[::1]:8443", KVFS_CLOUD_PUBLIC, "https://[::1]:8443");

	url_bad("");
	url_bad("ab");
	url_bad("abcdefghijklmnopqrstuvwxy"); /* 25 */
	url_bad("1vault");
	url_bad("vault-");
	url_bad("my--vault");
	url_bad("my_vault");
	url_bad("my.vault");
	url_bad("../x");
	url_bad("http://myvault.vault.azure.net");
	url_bad("ftp://myvault");
	url_bad("https://");
	url_bad("https://:443");
	url_bad("https://host:0");
	url_bad("https://host:65536");
	url_bad("https://host:");
	url_bad("https://host:44a");
	url_bad("https://host:0000443");
	{
		/* Longer than a DNS name can be (found by fuzz-url). */
		char longhost[8 + 254 + 1] = "https://";

		memset(longhost + 8, 'a', 254);
		longhost[8 + 254] = '\0';
		url_bad(longhost);
		longhost[8 + 253] = '\0';
		is_int(kvfs_config_vault_url(longhost, KVFS_CLOUD_PUBLIC,
					     &url253),
		       0, "a host of 253 characters is accepted");
		ok(url253 && kvfs_url_same_origin(url253, url253),
		   "and the vault client takes it as an origin");
		free(url253);
	}
	url_bad("https://user@host");
	url_bad("https://user:pw@host");
	url_bad("https://host/path");
	url_bad("https://host//");
	url_bad("https://host?x=1");
	url_bad("https://host/?x=1");
	url_bad("https://host#frag");
	url_bad("https://ho st");
	url_bad("https://[::1");
}

static void test_defaults(void)
{
	struct kvfs_config c;
	struct kvfs_error err;
	char cwd[4096];
	int r;

	clear_env();
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "minimal command line parses");
	if (r < 0)
		return;
	ok(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
	is_str(c.mountpoint, cwd, "mountpoint made absolute");
	is_str(c.vault_arg, "myvault", "vault_arg kept as given");
	is_str(c.vault_url, "https://myvault.vault.azure.net", "vault_url");
	is_int(c.auth, KVFS_AUTH_AUTO, "auth defaults to auto");
	is_int(c.cloud, KVFS_CLOUD_PUBLIC, "cloud defaults to public");
	is_str(c.authority, "https://login.microsoftonline.com",
	       "public authority");
	is_str(c.default_resource, "https://vault.azure.net",
	       "public resource");
	ok(c.resource == NULL, "no explicit resource");
	ok(c.tenant == NULL && c.client_id == NULL && c.secret_file == NULL &&
		   c.client_secret == NULL,
	   "no credentials by default");
	is_str(c.api_version, "7.4", "api_version 7.4");
	is_str(c.imds_url,
	       "http://169.254.169.254/metadata/identity/oauth2/token",
	       "imds_url");
	is_int(c.refresh, 300, "refresh 300");
	is_int(c.max_stale, 86400, "max_stale 86400");
	is_int(c.deadline, 10, "deadline 10");
	is_int(c.uid, getuid(), "uid defaults to getuid()");
	is_int(c.gid, getgid(), "gid defaults to getgid()");
	is_int(c.key_mode, 0400, "key_mode 0400");
	ok(c.on_change == NULL, "no on_change= by default");
	is_int(c.on_change_delay, 2, "on_change_delay 2");
	is_int(c.on_change_timeout, 60, "on_change_timeout 60");
	is_int(c.expiring_days, 30, "expiring_days 30");
	is_int(c.collections, 1u << KVFS_COLLECTION_CERTIFICATES,
	       "collections defaults to certificates");
	ok(c.include.n == 0 && c.exclude.n == 0 && c.tags.n == 0,
	   "no include=, exclude= or tag= by default");
	ok(!c.allow_expired && !c.allow_other && !c.foreground && !c.debug,
	   "flags off");
	is_int(c.fuse_argc, 3, "fuse_argc");
	is_str(c.fuse_argv[0], "kvfs", "fuse_argv[0] is the program");
	is_str(c.fuse_argv[1], "-o", "fuse_argv[1]");
	is_str(c.fuse_argv[2], "ro,subtype=kvfs,fsname=myvault",
	       "fuse_argv[2]: ro, subtype, fsname");
	ok(c.fuse_argv[3] == NULL, "fuse_argv NULL-terminated");
	kvfs_config_free(&c);
	ok(c.vault_url == NULL, "free clears the struct");
	kvfs_config_free(NULL);
}

static void test_options(void)
{
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	r = parse(&c, &err, "-o",
		  "auth=secret,tenant=my-tenant,client_id=0000-1111,"
		  "secret_file=/etc/kvfs/secret,authority=https://"
		  "127.0.0.1:9443/,ca_file=ca.pem,resource=https://"
		  "vault.azure.net/,api_version=7.5",
		  "-o", "uid=1000,gid=1001,key_mode=0440,allow_expired", "-o",
		  "on_change=/etc/kvfs/reload-nginx,on_change_delay=0,"
		  "on_change_timeout=5,expiring_days=0",
		  "https://127.0.0.1:8443", ".", "-ologlevel=debug", "-f",
		  NULL);
	is_int(r, 0, "a full command line parses (%s)", err.message);
	if (r < 0)
		return;
	is_int(c.auth, KVFS_AUTH_SECRET, "auth=secret");
	is_str(c.tenant, "my-tenant", "tenant=");
	is_str(c.client_id, "0000-1111", "client_id=");
	is_str(c.secret_file, "/etc/kvfs/secret", "secret_file=");
	is_str(c.authority, "https://127.0.0.1:9443",
	       "authority= without trailing slash");
	ok(c.ca_file && c.ca_file[0] == '/' &&
		   strcmp(c.ca_file + strlen(c.ca_file) - 7, "/ca.pem") == 0,
	   "relative ca_file made absolute");
	is_str(c.resource, "https://vault.azure.net", "resource=");
	is_str(c.api_version, "7.5", "api_version=");
	is_int(c.uid, 1000, "uid=");
	is_int(c.gid, 1001, "gid=");
	is_int(c.key_mode, 0440, "key_mode= is octal");
	ok(c.allow_expired, "allow_expired");
	is_str(c.on_change, "/etc/kvfs/reload-nginx", "on_change=");
	is_int(c.on_change_delay, 0, "on_change_delay=0");
	is_int(c.on_change_timeout, 5, "on_change_timeout=");
	is_int(c.expiring_days, 0, "expiring_days=0");
	is_int(c.loglevel, 7, "loglevel=debug");
	ok(c.foreground && !c.debug, "-f: foreground without debug");
	is_str(c.vault_url, "https://127.0.0.1:8443", "URL vault");
	is_str(c.fuse_argv[2], "ro,subtype=kvfs,fsname=https://127.0.0.1:8443",
	       "fsname carries the URL");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "key_mode=600", "myvault", ".", NULL);
	is_int(r, 0, "key_mode without a leading zero");
	is_int(c.key_mode, 0600, "key_mode=600 is octal too");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-d", "myvault", ".", NULL);
	is_int(r, 0, "-d parses");
	ok(c.debug && c.foreground, "-d: debug and foreground");
	is_int(c.loglevel, 7, "-d: debug log level");
	is_int(c.fuse_argc, 4, "-d is passed to libfuse");
	is_str(c.fuse_argv[3], "-d", "fuse_argv[3] is -d");
	kvfs_config_free(&c);

	r = parse(&c, &err, "myvault", ".", "-o", "allow_other", NULL);
	is_int(r, 0, "allow_other parses");
	ok(c.allow_other, "allow_other set");
	is_str(c.fuse_argv[2],
	       "ro,subtype=kvfs,fsname=myvault,allow_other,"
	       "default_permissions",
	       "allow_other forces default_permissions");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "tenant=a,tenant=b", "myvault", ".", NULL);
	is_int(r, 0, "a repeated option parses");
	is_str(c.tenant, "b", "the last one wins");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "cloud=china", "myvault", ".", NULL);
	is_int(r, 0, "cloud=china");
	is_str(c.vault_url, "https://myvault.vault.azure.cn", "china vault");
	is_str(c.authority, "https://login.chinacloudapi.cn",
	       "china authority");
	is_str(c.default_resource, "https://vault.azure.cn", "china resource");
	kvfs_config_free(&c);

	r = parse(&c, &err, "myvault", ".", "-o", "cloud=usgov", NULL);
	is_int(r, 0, "cloud=usgov after VAULT");
	is_str(c.vault_url, "https://myvault.vault.usgovcloudapi.net",
	       "usgov vault");
	is_str(c.authority, "https://login.microsoftonline.us",
	       "usgov authority");
	is_str(c.default_resource, "https://vault.usgovcloudapi.net",
	       "usgov resource");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "auth=imds,cloud=public", "myvault", ".",
		  NULL);
	is_int(r, 0, "auth=imds,cloud=public");
	is_int(c.auth, KVFS_AUTH_IMDS, "auth=imds");
	kvfs_config_free(&c);

	r = parse(&c, &err, "--", "myvault", ".", NULL);
	is_int(r, 0, "-- ends the options");
	is_int(c.cert_alg, KVFS_ASSERTION_ALG_PS256,
	       "cert_alg defaults to PS256");
	ok(!c.send_cert_chain, "no x5c by default");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o",
		  "auth=cert,cert_file=/c.pem,cert_alg=RS256,send_cert_chain",
		  "myvault", ".", NULL);
	is_int(r, 0, "cert options parse (%s)", err.message);
	is_int(c.cert_alg, KVFS_ASSERTION_ALG_RS256, "cert_alg=RS256");
	ok(c.send_cert_chain, "send_cert_chain");
	kvfs_config_free(&c);

	setenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	ok(r == 0 && c.send_cert_chain,
	   "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true sends the chain");
	kvfs_config_free(&c);
	setenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "0", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	ok(r == 0 && !c.send_cert_chain, "=0 does not");
	kvfs_config_free(&c);
	unsetenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN");
}

static void test_fstab_options(void)
{
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	r = parse(&c, &err, "myvault", ".", "-o",
		  "rw,nosuid,nodev,noexec,relatime,_netdev,nofail,noauto,"
		  "user,users,nouser,auto,defaults,x-systemd.automount,"
		  "x-systemd.requires=network-online.target,comment=foo,"
		  "dev,suid,exec,atime,noatime,async,sync,"
		  "subtype=other,fsname=other",
		  "-o", "dev,suid", NULL);
	is_int(r, 0, "fstab and generic mount options accepted (%s)",
	       err.message);
	if (r == 0)
		is_str(c.fuse_argv[2], "ro,subtype=kvfs,fsname=myvault",
		       "and dropped: always ro, our subtype and fsname");
	kvfs_config_free(&c);
}

static void refused(const char *opt, const char *what, const char *needle)
{
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	r = parse(&c, &err, "-o", opt, "myvault", ".", NULL);
	ok(r < 0, "%s refused", what);
	if (r < 0)
		ok(strstr(err.message, needle) != NULL,
		   "message for %s names '%s': %s", what, needle, err.message);
	else
		kvfs_config_free(&c);
}

static void test_refusals(void)
{
	clear_env();
	refused("secret=abc", "secret=", "secret_file=");
	refused("client_secret=abc", "client_secret=", "secret_file=");
	refused("Client_Secret=abc", "Client_Secret=", "secret_file=");
	refused("password=abc", "password=", "cert_password_file=");
	refused("cert_password=abc", "cert_password=", "cert_password_file=");
	refused("token=abc", "token=", "token_file=");
	refused("my_secret", "a bare secret flag", "secret_file=");
	refused("bogus=1", "an unknown option", "bogus");
	refused("bogus", "an unknown flag", "bogus");
	refused("auth=kerberos", "an unknown auth", "auth");
	refused("cloud=mars", "an unknown cloud", "cloud");
	refused("uid=abc", "a non-numeric uid", "uid");
	refused("uid=-1", "a negative uid", "uid");
	refused("uid=4294967295", "uid (uid_t)-1", "uid");
	refused("gid=12x", "a gid with junk", "gid");
	refused("key_mode=0800", "a non-octal key_mode", "key_mode");
	refused("key_mode=01000", "a key_mode beyond 0777", "key_mode");
	refused("refresh=0", "refresh=0", "refresh");
	refused("refresh=10s", "refresh with a unit", "refresh");
	refused("deadline=", "an empty deadline", "deadline");
	refused("tenant=", "an empty tenant", "tenant");
	refused("tenant=a/b", "a tenant with a slash", "tenant");
	refused("authority=http://login.example", "an http authority",
		"authority");
	refused("resource=vault.azure.net", "a resource without scheme",
		"resource");
	refused("allow_other=1", "a value on a flag", "allow_other");
	refused("loglevel=chatty", "an unknown loglevel", "loglevel");
	refused("api_version=7.4&x=1", "a bad api_version", "api_version");
	refused("cert_alg=ES256", "an EC assertion", "cert_alg");
	refused("collections=", "an empty collections=", "collections");
	refused("collections=Certificates", "a collection's name in capitals",
		"unknown collection 'Certificates' (known: certificates");
	refused("collections=certificate", "a singular",
		"unknown collection 'certificate' (known: certificates");
	refused("collections=certificates,secrets", "collections split by ','",
		"unknown option 'secrets'");
	refused("collections=certificates++certificates", "an empty item",
		"empty collection");
	refused("collections=+certificates", "a leading +", "empty collection");
	refused("collections=certificates+", "a trailing +",
		"empty collection");
	refused("collections=all+", "all and a trailing +", "empty collection");
	refused("include=", "an empty include=", "include");
	refused("exclude=", "an empty exclude=", "exclude");
	refused("include=certificates/www", "a glob with a '/'", "no '/'");
	refused("include=a\tb", "a glob with a tab", "control character");
	refused("exclude=a\x7f"
		"b",
		"a glob with DEL", "control character");
	refused("tag=", "an empty tag=", "tag=KEY=VALUE");
	refused("tag=env", "a tag= without VALUE", "tag=KEY=VALUE");
	refused("tag==prod", "a tag= with an empty KEY", "tag=KEY=VALUE");
	refused("tag=env=prod,tag=env=dev", "one KEY asked with two values",
		"no object has both");
	refused("on_change=reload", "a relative on_change=",
		"invalid on_change 'reload': expected an absolute path");
	refused("on_change=", "an empty on_change=", "on_change");
	refused("on_change_timeout=0", "on_change_timeout=0",
		"on_change_timeout");
	refused("on_change_delay=1h", "on_change_delay with a unit",
		"on_change_delay");
	refused("expiring_days=36501", "expiring_days= past a century",
		"invalid expiring_days '36501': expected days, 0 to 36500");
	refused("expiring_days=-1",
		"a negative expiring_days=", "expected days");
}

static void test_collections(void)
{
	unsigned all = (1u << KVFS_COLLECTION_COUNT_) - 1;
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	r = parse(&c, &err, "-o", "collections=certificates", "myvault", ".",
		  NULL);
	is_int(r, 0, "collections=certificates (%s)", err.message);
	is_int(c.collections, 1u << KVFS_COLLECTION_CERTIFICATES,
	       "certificates only");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "collections=all", "myvault", ".", NULL);
	is_int(r, 0, "collections=all (%s)", err.message);
	is_int(c.collections, all, "all: every row of the table");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "collections=certificates+certificates",
		  "myvault", ".", NULL);
	is_int(r, 0, "a collection named twice (%s)", err.message);
	is_int(c.collections, 1u << KVFS_COLLECTION_CERTIFICATES,
	       "counts once");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "collections=certificates+all", "myvault",
		  ".", NULL);
	is_int(r, 0, "all beside a name (%s)", err.message);
	is_int(c.collections, all, "is still all");
	kvfs_config_free(&c);

	r = parse(&c, &err, "-o", "collections=secret", "myvault", ".", NULL);
	ok(r < 0, "collections=secret refused");
	is_str(err.message,
	       "collections=: unknown collection 'secret' (known: "
	       "certificates, secrets, keys)",
	       "naming it and the known collections");
	if (r == 0)
		kvfs_config_free(&c);
}

static void test_filters(void)
{
	char glob[KVFS_CONFIG_GLOB_MAX + 32];
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	r = parse(&c, &err, "-o", "include=a,include=b", "myvault", ".", NULL);
	is_int(r, 0, "-o include=a,include=b (%s)", err.message);
	if (r == 0) {
		is_int(c.include.n, 2, "both kept");
		is_str(c.include.v[0], "a", "in order: a");
		is_str(c.include.v[1], "b", "then b");
		kvfs_config_free(&c);
	}

	r = parse(&c, &err, "-o", "exclude=*-old,include=www*", "-o",
		  "exclude=*-test,include=api*,exclude=*-old", "myvault", ".",
		  NULL);
	is_int(r, 0, "include= and exclude= over two -o (%s)", err.message);
	if (r == 0) {
		is_int(c.include.n, 2, "two include=");
		is_str(c.include.v[1], "api*", "the second -o's last");
		is_int(c.exclude.n, 3, "three exclude=, a duplicate kept");
		is_str(c.exclude.v[0], "*-old", "exclude[0]");
		is_str(c.exclude.v[1], "*-test", "exclude[1]");
		is_str(c.exclude.v[2], "*-old", "exclude[2]");
		kvfs_config_free(&c);
	}

	r = parse(&c, &err, "-o", "include=[ab]x-?\\,,exclude=a[b", "myvault",
		  ".", NULL);
	is_int(r, 0, "brackets, an escaped comma, an unbalanced '[' (%s)",
	       err.message);
	if (r == 0) {
		is_str(c.include.v[0], "[ab]x-?,", "kept as written");
		is_str(c.exclude.v[0], "a[b", "an unbalanced '[' is kept");
		kvfs_config_free(&c);
	}

	memset(glob, 0, sizeof(glob));
	strcpy(glob, "include=");
	memset(glob + 8, 'a', KVFS_CONFIG_GLOB_MAX);
	r = parse(&c, &err, "-o", glob, "myvault", ".", NULL);
	is_int(r, 0, "a glob of %d bytes", KVFS_CONFIG_GLOB_MAX);
	if (r == 0)
		kvfs_config_free(&c);

	r = parse(&c, &err, "-o",
		  "tag=env=prod,tag=k=a=b,tag=owner=,tag=env=prod", "myvault",
		  ".", NULL);
	is_int(r, 0, "tag= four times (%s)", err.message);
	if (r == 0) {
		is_int(c.tags.n, 4, "every tag= kept");
		is_str(c.tags.v[0].key, "env", "KEY");
		is_str(c.tags.v[0].value, "prod", "VALUE");
		is_str(c.tags.v[1].key, "k", "split at the first '='");
		is_str(c.tags.v[1].value, "a=b", "VALUE keeps the next '='");
		is_str(c.tags.v[2].key, "owner", "KEY with an empty VALUE");
		is_str(c.tags.v[2].value, "", "the empty VALUE");
		kvfs_config_free(&c);
	}

	strcpy(glob, "exclude=");
	memset(glob + 8, 'a', KVFS_CONFIG_GLOB_MAX + 1);
	refused(glob, "a glob of 257 bytes", "at most 256");
}

static void test_usage(void)
{
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	r = parse(&c, &err, NULL);
	ok(r < 0 && strstr(err.message, "VAULT"), "no arguments: %s",
	   err.message);
	r = parse(&c, &err, "myvault", NULL);
	ok(r < 0 && strstr(err.message, "MOUNTPOINT"), "no mountpoint: %s",
	   err.message);
	r = parse(&c, &err, "myvault", ".", "extra", NULL);
	ok(r < 0 && strstr(err.message, "extra"), "a third argument: %s",
	   err.message);
	r = parse(&c, &err, "my_vault", ".", NULL);
	ok(r < 0 && strstr(err.message, "my_vault"), "a bad vault: %s",
	   err.message);
	r = parse(&c, &err, "myvault", "./does-not-exist", NULL);
	ok(r < 0 && strstr(err.message, "does-not-exist"),
	   "a missing mountpoint: %s", err.message);
	r = parse(&c, &err, "-x", "myvault", ".", NULL);
	ok(r < 0 && strstr(err.message, "-x"), "an unknown flag: %s",
	   err.message);
	r = parse(&c, &err, "myvault", ".", "-o", NULL);
	ok(r < 0, "-o without an argument: %s", err.message);
}

static void test_env(void)
{
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	setenv("AZURE_TENANT_ID", "env-tenant", 1);
	setenv("AZURE_CLIENT_ID", "env-client", 1);
	setenv("AZURE_CLIENT_SECRET", "s3cr3t-value", 1);
	setenv("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/kvfs/cert.pem", 1);
	setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-pass", 1);
	setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token", 1);
	setenv("AZURE_AUTHORITY_HOST", "https://login.example.net/", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "environment defaults parse (%s)", err.message);
	if (r == 0) {
		is_str(c.tenant, "env-tenant", "AZURE_TENANT_ID");
		is_str(c.client_id, "env-client", "AZURE_CLIENT_ID");
		is_str(c.client_secret, "s3cr3t-value",
		       "AZURE_CLIENT_SECRET copied");
		is_str(c.cert_file, "/etc/kvfs/cert.pem",
		       "AZURE_CLIENT_CERTIFICATE_PATH");
		is_str(c.cert_password, "pfx-pass",
		       "AZURE_CLIENT_CERTIFICATE_PASSWORD copied");
		is_str(c.token_file, "/var/run/token",
		       "AZURE_FEDERATED_TOKEN_FILE");
		is_str(c.authority, "https://login.example.net",
		       "AZURE_AUTHORITY_HOST, trailing slash dropped");
		kvfs_config_free(&c);
	}
	ok(getenv("AZURE_CLIENT_SECRET") == NULL,
	   "AZURE_CLIENT_SECRET removed from the environment");
	ok(getenv("AZURE_CLIENT_CERTIFICATE_PASSWORD") == NULL,
	   "AZURE_CLIENT_CERTIFICATE_PASSWORD removed from the environment");

	clear_env();
	setenv("AZURE_TENANT_ID", "env-tenant", 1);
	setenv("AZURE_CLIENT_ID", "env-client", 1);
	setenv("AZURE_CLIENT_SECRET", "s3cr3t-value", 1);
	setenv("AZURE_AUTHORITY_HOST", "https://login.example.net", 1);
	r = parse(&c, &err, "-o",
		  "tenant=opt-tenant,client_id=opt-client,secret_file=/s,"
		  "authority=https://opt.example.net,cloud=china",
		  "myvault", ".", NULL);
	is_int(r, 0, "options with the environment set (%s)", err.message);
	if (r == 0) {
		is_str(c.tenant, "opt-tenant", "tenant= wins");
		is_str(c.client_id, "opt-client", "client_id= wins");
		ok(c.client_secret == NULL,
		   "secret_file= wins over AZURE_CLIENT_SECRET");
		is_str(c.authority, "https://opt.example.net",
		       "authority= wins over AZURE_AUTHORITY_HOST and cloud=");
		kvfs_config_free(&c);
	}
	ok(getenv("AZURE_CLIENT_SECRET") == NULL,
	   "AZURE_CLIENT_SECRET removed even when secret_file= wins");

	clear_env();
	setenv("AZURE_AUTHORITY_HOST", "https://login.example.net", 1);
	r = parse(&c, &err, "-o", "cloud=usgov", "myvault", ".", NULL);
	is_int(r, 0, "AZURE_AUTHORITY_HOST and cloud=");
	if (r == 0) {
		is_str(c.authority, "https://login.example.net",
		       "the environment wins over cloud='s default");
		kvfs_config_free(&c);
	}

	clear_env();
	setenv("AZURE_AUTHORITY_HOST", "http://insecure.example", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	ok(r < 0 && strstr(err.message, "AZURE_AUTHORITY_HOST"),
	   "a bad environment value is refused, naming the variable: %s",
	   err.message);
	clear_env();
}

static char *capture_stdout(int (*fn)(const char *), const char *arg,
			    int *ret_r)
{
	char path[] = "/tmp/kvfs-test-config-XXXXXX";
	int fd = mkstemp(path), saved;
	char *buf = NULL;
	FILE *f;
	long n;

	if (fd < 0)
		return NULL;
	unlink(path);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(fd, STDOUT_FILENO);
	*ret_r = fn(arg);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);

	f = fdopen(fd, "r");
	if (!f)
		return NULL;
	n = lseek(fd, 0, SEEK_END);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int run_flag(const char *flag)
{
	struct kvfs_config c;
	struct kvfs_error err;

	return parse(&c, &err, flag, NULL);
}

static void test_help(void)
{
	static const char *const names[] = {
		"auth=",
		"tenant=",
		"client_id=",
		"object_id=",
		"msi_res_id=",
		"secret_file=",
		"cert_file=",
		"cert_password_file=",
		"token_file=",
		"authority=",
		"imds_url=",
		"cloud=",
		"resource=",
		"ca_file=",
		"api_version=",
		"refresh=",
		"max_stale=",
		"deadline=",
		"allow_expired",
		"uid=",
		"gid=",
		"key_mode=",
		"on_change=",
		"on_change_delay=",
		"on_change_timeout=",
		"expiring_days=",
		"collections=",
		"include=",
		"exclude=",
		"tag=",
		"loglevel=",
		"allow_other",
		"-f",
		"-d",
		"--version",
	};
	_cleanup_free_ char *help = NULL, *help2 = NULL, *version = NULL;
	int r = 0;

	help = capture_stdout(run_flag, "--help", &r);
	is_int(r, 1, "--help returns 1");
	ok(help && strstr(help, "usage:"), "--help prints a usage line");
	for (size_t i = 0; help && i < ELEMENTSOF(names); i++)
		ok(strstr(help, names[i]) != NULL, "--help lists %s", names[i]);
	help2 = capture_stdout(run_flag, "-h", &r);
	is_int(r, 1, "-h returns 1");
	version = capture_stdout(run_flag, "-V", &r);
	is_int(r, 1, "-V returns 1");
	ok(version && strstr(version, KVFS_VERSION), "-V prints the version");
}

static void test_auth_names(void)
{
	is_str(kvfs_config_auth_name(KVFS_AUTH_SECRET), "secret",
	       "auth name secret");
	is_str(kvfs_config_auth_name(KVFS_AUTH_WORKLOAD), "workload",
	       "auth name workload");
}

static void touch(const char *dir, const char *name)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs("x\n", f);
		fclose(f);
	}
}

static void rm_credentials(const char *dir)
{
	static const char *const names[] = {"kvfs-client-secret",
					    "kvfs-client-cert",
					    "kvfs-client-cert-password"};
	char path[512];

	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void test_credentials(void)
{
	char dir[] = "/tmp/kvfs-test-creds-XXXXXX";
	char want[512];
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	setenv("CREDENTIALS_DIRECTORY", dir, 1);

	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "an empty credentials directory (%s)", err.message);
	if (r == 0) {
		ok(!c.secret_file && !c.cert_file && !c.cert_password_file,
		   "an empty credentials directory sets nothing");
		kvfs_config_free(&c);
	}

	touch(dir, "kvfs-client-secret");
	touch(dir, "kvfs-client-cert");
	touch(dir, "kvfs-client-cert-password");
	setenv("AZURE_CLIENT_SECRET", "env-secret", 1);
	setenv("AZURE_CLIENT_CERTIFICATE_PATH", "/env/cert.pem", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "credentials parse (%s)", err.message);
	if (r == 0) {
		snprintf(want, sizeof(want), "%s/kvfs-client-secret", dir);
		is_str(c.secret_file, want,
		       "kvfs-client-secret -> secret_file");
		snprintf(want, sizeof(want), "%s/kvfs-client-cert", dir);
		is_str(c.cert_file, want,
		       "kvfs-client-cert -> cert_file, over "
		       "AZURE_CLIENT_CERTIFICATE_PATH");
		snprintf(want, sizeof(want), "%s/kvfs-client-cert-password",
			 dir);
		is_str(c.cert_password_file, want,
		       "kvfs-client-cert-password -> cert_password_file");
		ok(c.client_secret == NULL,
		   "the credential wins over AZURE_CLIENT_SECRET");
		kvfs_config_free(&c);
	}
	ok(getenv("AZURE_CLIENT_SECRET") == NULL,
	   "AZURE_CLIENT_SECRET still removed from the environment");

	r = parse(&c, &err, "-o", "secret_file=/etc/kvfs/s,cert_file=/c",
		  "myvault", ".", NULL);
	is_int(r, 0, "options with credentials present (%s)", err.message);
	if (r == 0) {
		is_str(c.secret_file, "/etc/kvfs/s",
		       "secret_file= wins over the credential");
		is_str(c.cert_file, "/c",
		       "cert_file= wins over the credential");
		kvfs_config_free(&c);
	}

	setenv("CREDENTIALS_DIRECTORY", "relative/dir", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "a relative CREDENTIALS_DIRECTORY parses");
	if (r == 0) {
		ok(!c.secret_file,
		   "a relative CREDENTIALS_DIRECTORY is ignored");
		kvfs_config_free(&c);
	}

	clear_env();
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "no CREDENTIALS_DIRECTORY");
	if (r == 0) {
		ok(!c.secret_file && !c.cert_file,
		   "without CREDENTIALS_DIRECTORY nothing is set");
		kvfs_config_free(&c);
	}
	rm_credentials(dir);
	clear_env();
}

/* proxy=value parses to want (NULL: refused, the message naming needle
 * and never the password "pw"). */
static void proxy_is(const char *value, const char *want, const char *needle)
{
	_cleanup_free_ char *opt = NULL;
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	if (asprintf(&opt, "proxy=%s", value) < 0)
		abort();
	r = parse(&c, &err, "-o", opt, "myvault", ".", NULL);
	if (want) {
		is_int(r, 0, "proxy=%s accepted (%s)", value, err.message);
		if (r == 0)
			is_str(c.proxy, want, "proxy=%s", value);
	} else {
		ok(r < 0, "proxy=%s refused", value);
		ok(r < 0 && strstr(err.message, needle) &&
			   !strstr(err.message, "pw"),
		   "message names '%s', no password: %s", needle, err.message);
	}
	if (r == 0)
		kvfs_config_free(&c);
}

static void test_proxy(void)
{
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	proxy_is("http://proxy.corp:3128", "http://proxy.corp:3128", NULL);
	proxy_is("HTTP://Proxy.Corp:3128/", "http://Proxy.Corp:3128", NULL);
	proxy_is("proxy.corp:3128", "http://proxy.corp:3128", NULL);
	proxy_is("https://10.0.0.1", "https://10.0.0.1", NULL);
	proxy_is("http://[::1]:8080", "http://[::1]:8080", NULL);
	proxy_is("socks5://proxy:1080", NULL, "invalid proxy");
	proxy_is("http://proxy:3128/path", NULL, "invalid proxy");
	proxy_is("http://proxy:99999", NULL, "invalid proxy");
	proxy_is("http://u:pw@pro xy:1", NULL, "invalid proxy");
	proxy_is("http://u:pw@proxy:3128", NULL,
		 "refusing proxy with credentials");
	proxy_is("http://u@proxy:3128", NULL,
		 "refusing proxy with credentials");

	/* The environment's, credentials and all; the lower case first. */
	setenv("HTTPS_PROXY", "http://upper:1", 1);
	setenv("https_proxy", "http://u%40x:p%3Aw@lower:3128", 1);
	setenv("NO_PROXY", "upper.example", 1);
	setenv("no_proxy", ".corp, 10.0.0.0/8 ,localhost", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "proxy variables parse (%s)", err.message);
	if (r == 0) {
		is_str(c.proxy, "http://u%40x:p%3Aw@lower:3128",
		       "https_proxy, credentials kept");
		is_str(c.noproxy, ".corp,10.0.0.0/8,localhost",
		       "no_proxy, blanks dropped");
		kvfs_config_free(&c);
	}
	setenv("ALL_PROXY", "http://all:1", 1);
	unsetenv("https_proxy");
	unsetenv("no_proxy");
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "upper-case variables parse (%s)", err.message);
	if (r == 0) {
		is_str(c.proxy, "http://upper:1", "HTTPS_PROXY");
		is_str(c.noproxy, "upper.example", "NO_PROXY");
		kvfs_config_free(&c);
	}
	r = parse(&c, &err, "-o", "proxy=http://opt:2,noproxy=a.b+c.d\\,e.f",
		  "myvault", ".", NULL);
	is_int(r, 0, "options win (%s)", err.message);
	if (r == 0) {
		is_str(c.proxy, "http://opt:2", "proxy= over HTTPS_PROXY");
		is_str(c.noproxy, "a.b,c.d,e.f", "noproxy=, '+' and '\\,'");
		kvfs_config_free(&c);
	}
	unsetenv("HTTPS_PROXY");
	r = parse(&c, &err, "myvault", ".", NULL);
	is_int(r, 0, "ALL_PROXY parses (%s)", err.message);
	if (r == 0) {
		is_str(c.proxy, "http://all:1", "ALL_PROXY after HTTPS_PROXY");
		kvfs_config_free(&c);
	}
	setenv("HTTPS_PROXY", "http://u:pw@bad host", 1);
	r = parse(&c, &err, "myvault", ".", NULL);
	ok(r < 0 && strstr(err.message, "invalid HTTPS_PROXY") &&
		   !strstr(err.message, "pw"),
	   "a bad HTTPS_PROXY is named, redacted: %s", err.message);
	/* Passwords where a URL parser would not look for them. */
	static const char *const hidden[] = {
		"user:s3cret@proxy:99999",
		"user:s3cret@proxy:3128/x",
		"http://user:s3#cret@proxy:3128/x",
		"http://user:s3/cret@proxy:3128/x",
	};
	for (size_t i = 0; i < ELEMENTSOF(hidden); i++) {
		setenv("HTTPS_PROXY", hidden[i], 1);
		r = parse(&c, &err, "myvault", ".", NULL);
		ok(r < 0 && strstr(err.message, "invalid HTTPS_PROXY") &&
			   !strstr(err.message, "s3") &&
			   strstr(err.message, "***@proxy:"),
		   "'%s' is refused without its password: %s", hidden[i],
		   err.message);
		if (r == 0)
			kvfs_config_free(&c);
	}
	if (r == 0)
		kvfs_config_free(&c);
	clear_env();
	refused("noproxy=a;b", "noproxy= with a ';'", "invalid noproxy");
}

static void test_fuse_conventions(void)
{
	struct kvfs_config c;
	struct kvfs_error err;
	int r;

	clear_env();
	r = parse(&c, &err, "-s", "-o", "auto_unmount", "myvault", ".", NULL);
	is_int(r, 0, "-s and auto_unmount accepted (%s)", err.message);
	if (r == 0) {
		ok(c.auto_unmount, "auto_unmount set");
		is_str(c.fuse_argv[2],
		       "ro,subtype=kvfs,fsname=myvault,auto_unmount",
		       "auto_unmount handed to libfuse");
		kvfs_config_free(&c);
	}
	refused("umask=0077", "umask=", "key_mode=");
	refused("file_mode=0440", "file_mode=", "key_mode=");
	refused("dir_mode=0550", "dir_mode=", "unsupported option 'dir_mode'");
}

int main(void)
{
	test_vault_url();
	test_defaults();
	test_options();
	test_fstab_options();
	test_refusals();
	test_collections();
	test_filters();
	test_usage();
	test_env();
	test_credentials();
	test_help();
	test_auth_names();
	test_proxy();
	test_fuse_conventions();
	return done_testing();
}
