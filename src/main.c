/* Start-up order and exit codes.  Parse the options (2 on a usage error, 0
 * after --help or --version), harden the process, build http -> auth ->
 * vault -> cache, authenticate and list the vault BEFORE mounting (1 with
 * one precise line on stderr and nothing mounted), then hand over to the
 * FUSE loop, whose result is the exit code.  Single-threaded until
 * kvfs_fs_main(). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "auth/auth.h"
#include "cache.h"
#include "config.h"
#include "control.h"
#include "error.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "secmem.h"
#include "vault.h"

#define EXIT_USAGE 2

/* Key material and tokens must never land in a core file or be readable
 * through ptrace by another process of the same user. */
static void harden(void)
{
	struct rlimit rl = {0, 0};

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &rl);
}

static int start_background(void *data)
{
	return kvfs_auth_start_refresher(data);
}

static void stop_background(void *data)
{
	kvfs_auth_stop_refresher(data);
}

static bool transport_error(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH ||
	       r == -ECONNRESET || r == -ENETUNREACH || r == -EPROTO ||
	       r == -EIO;
}

/* The one line an administrator reads when the mount was refused. */
static void print_load_error(const struct kvfs_config *c, int r,
			     const struct kvfs_error *err)
{
	char detail[768];

	kvfs_error_describe(err, detail, sizeof(detail));
	if (!detail[0] || strcmp(detail, "unknown error") == 0)
		snprintf(detail, sizeof(detail), "%s", strerror(-r));

	if (err->provider[0])
		fprintf(stderr,
			"kvfs: cannot get a token for '%s' with provider "
			"'%s'%s%s: %s\n",
			c->vault_arg, err->provider,
			err->endpoint[0] ? " from " : "", err->endpoint,
			detail);
	else if (err->http_status == 0 && transport_error(r))
		fprintf(stderr, "kvfs: cannot reach '%s': %s\n",
			err->endpoint[0] ? err->endpoint : c->vault_url,
			detail);
	else
		fprintf(stderr, "kvfs: cannot list certificates of '%s': %s\n",
			c->vault_arg, detail);
}

int main(int argc, char **argv)
{
	struct kvfs_config c = {0};
	struct kvfs_http_options ho = {0};
	struct kvfs_http *http = NULL;
	struct kvfs_auth *auth = NULL;
	struct kvfs_vault *vault = NULL;
	struct kvfs_cache *cache = NULL;
	struct kvfs_control *control = NULL;
	struct kvfs_error err;
	int r, code = 1;

	/* First: the environment may hold a client secret. */
	harden();
	/* Before OpenSSL allocates anything. */
	(void)kvfs_secmem_init();

	r = kvfs_config_parse(argc, argv, &c, &err);
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "kvfs: %s\n",
			err.message[0] ? err.message : strerror(-r));
		return EXIT_USAGE;
	}
	kvfs_log_set_level(c.loglevel);

	ho.ca_file = c.ca_file;
	ho.timeout_ms = (long)c.deadline * 1000;
	r = kvfs_http_new(&ho, &http);
	if (r < 0) {
		fprintf(stderr, "kvfs: cannot set up HTTPS: %s\n",
			strerror(-r));
		goto out;
	}
	r = kvfs_auth_new(&c, http, &auth);
	if (r < 0) {
		/* auth prints its own line for a configuration it refuses;
		 * only running out of memory would go unsaid. */
		if (r == -ENOMEM)
			fprintf(stderr, "kvfs: cannot set up authentication: "
					"out of memory\n");
		goto out;
	}
	r = kvfs_vault_new(&c, http, auth, &vault);
	if (r < 0) {
		fprintf(stderr, "kvfs: cannot set up the vault client: %s\n",
			strerror(-r));
		goto out;
	}
	r = kvfs_cache_new(&c, vault, &cache);
	if (r < 0) {
		fprintf(stderr, "kvfs: cannot set up the cache: %s\n",
			strerror(-r));
		goto out;
	}

	kvfs_error_clear(&err);
	r = kvfs_cache_load(cache, &err);
	if (r < 0) {
		print_load_error(&c, r, &err);
		goto out;
	}

	r = kvfs_control_new(&c, auth, cache, &control);
	if (r < 0) {
		fprintf(stderr, "kvfs: cannot set up .kvfs/: %s\n",
			strerror(-r));
		goto out;
	}
	kvfs_fs_set_control(control);
	kvfs_fs_set_hooks(&(struct kvfs_fs_hooks){
		.start = start_background,
		.stop = stop_background,
		.data = auth,
	});
	code = kvfs_fs_main(&c, cache);

out:
	kvfs_control_free(control);
	kvfs_cache_free(cache);
	kvfs_vault_free(vault);
	kvfs_auth_free(auth);
	kvfs_http_free(http);
	kvfs_config_free(&c);
	return code;
}
