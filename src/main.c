/* Start-up order and exit codes.  Harden the process, parse the options (2
 * on a usage error, 0 after --help or --version), take $NOTIFY_SOCKET out
 * of the environment (notify.h), refuse a mountpoint that
 * cannot work (1: not a directory, or a kvfs mount already there) and an
 * on_change= command that is not safe to run (1) before any credential is
 * read, build http -> auth -> vault -> cache,
 * authenticate and list the vault BEFORE mounting (1 with one precise line
 * on stderr and nothing mounted), then the mount's ladder (serve()):
 * fuse_new, mount, signal handlers, daemonize, the background threads,
 * READY=1 to systemd, the FUSE loop, STOPPING=1, and its undo in reverse.  0
 * once unmounted, 1 when a rung failed or the loop did.  Single-threaded until
 * the threads start, after the fork of fuse_daemonize(), which they would not
 * survive. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include "auth/auth.h"
#include "cache.h"
#include "config.h"
#include "control.h"
#include "error.h"
#include "fs.h"
#include "http.h"
#include "kernel.h"
#include "log.h"
#include "notify.h"
#include "onchange.h"
#include "reval.h"
#include "rules.h"
#include "secmem.h"
#include "url.h"
#include "util.h"
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

/* Undo the kernel's octal escapes ("\\040" for a space) of a mountinfo
 * field, in place. */
static void unescape_mountinfo(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* 1 with *ret_source (the fsname, i.e. VAULT as it was given) when a kvfs
 * mount sits on path, 0 when none does, -errno when mountinfo cannot be
 * read.  mount -a skips an fstab line whose VAULT and mount point are
 * already mounted; anything else reaching here would stack a second
 * daemon on the first. */
static int kvfs_mounted_on(const char *path, char **ret_source)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	while (r == 0 && getline(&line, &cap, f) > 0) {
		char *save = NULL, *tok, *mnt = NULL, *fstype, *source;
		int i = 0;

		/* id parent maj:min root MOUNTPOINT opts [tags...] - TYPE
		 * SOURCE superopts */
		for (tok = strtok_r(line, " \n", &save); tok && i < 4;
		     tok = strtok_r(NULL, " \n", &save), i++)
			;
		mnt = tok;
		while ((tok = strtok_r(NULL, " \n", &save)) &&
		       strcmp(tok, "-") != 0)
			;
		fstype = strtok_r(NULL, " \n", &save);
		source = strtok_r(NULL, " \n", &save);
		if (!mnt || !fstype || !source ||
		    strcmp(fstype, "fuse.kvfs") != 0)
			continue;
		unescape_mountinfo(mnt);
		if (strcmp(mnt, path) != 0)
			continue;
		unescape_mountinfo(source);
		*ret_source = strdup(source);
		r = *ret_source ? 1 : -ENOMEM;
	}
	free(line);
	fclose(f);
	return r;
}

/* Before any credential is read: a mountpoint that is not a directory
 * would mount and answer every access with EIO; a second kvfs on a kvfs
 * mount would hide the first. */
static int check_mountpoint(const struct kvfs_config *c)
{
	char *source = NULL;
	struct stat st;
	int r;

	r = kvfs_mounted_on(c->mountpoint, &source);
	if (r > 0) {
		fprintf(stderr,
			"kvfs: '%s' already carries a kvfs mount of '%s'; "
			"unmount it first\n",
			c->mountpoint, source);
		free(source);
		return -EBUSY;
	}
	if (stat(c->mountpoint, &st) < 0) {
		r = -errno;
		fprintf(stderr, "kvfs: cannot access mountpoint '%s': %s\n",
			c->mountpoint, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "kvfs: mountpoint '%s' is not a directory\n",
			c->mountpoint);
		return -ENOTDIR;
	}
	return 0;
}

static bool transport_error(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH ||
	       r == -ECONNRESET || r == -ENETUNREACH || r == -EPROTO ||
	       r == -EIO;
}

/* Whether url's host is one of Azure's own (Key Vault or Entra ID, any
 * cloud), whose certificates every system CA store trusts. */
static bool public_azure(const char *url)
{
	static const char *const domains[] = {
		".vault.azure.net",
		".vault.azure.cn",
		".vault.usgovcloudapi.net",
		"login.microsoftonline.com",
		"login.chinacloudapi.cn",
		"login.microsoftonline.us",
		"login.partner.microsoftonline.cn",
	};
	char *host;
	size_t len;
	bool azure = false;

	/* Every URL kvfs sends to is one the URL module reads (err->endpoint
	 * without its userinfo); what it does not is no endpoint of Azure's. */
	if (kvfs_url_host(url, &host) < 0)
		return false;
	len = strlen(host); /* lower case, without the port */
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		size_t d = strlen(domains[i]);

		if (len >= d && strcmp(host + len - d, domains[i]) == 0 &&
		    (len == d || domains[i][0] == '.' ||
		     host[len - d - 1] == '.'))
			azure = true;
	}
	free(host);
	return azure;
}

/* What the mount shows, for the line that says it is mounted: "12
 * certificates, 5 secrets and 1 key". */
static void describe_objects(struct kvfs_cache *cache, char *buf, size_t size)
{
	struct kvfs_listing *ls[KVFS_COLLECTION_COUNT_];
	unsigned n = 0, left = 0;
	size_t len = 0;

	kvfs_cache_listings(cache, ls);
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		left += ls[i] != NULL;
	buf[0] = '\0';
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		const struct kvfs_collection_info *info =
			kvfs_collection_info((enum kvfs_collection)i);

		if (!ls[i])
			continue;
		left--;
		if (len < size)
			len += (size_t)snprintf(
				buf + len, size - len, "%s%zu %s",
				n == 0	    ? ""
				: left == 0 ? " and "
					    : ", ",
				ls[i]->n,
				ls[i]->n == 1 ? info->noun : info->name);
		n++;
		kvfs_listing_unref(ls[i]);
	}
}

/* The one line an administrator reads when the mount was refused; the
 * listing of collection coll failed with err. */
static void print_load_error(const struct kvfs_config *c,
			     enum kvfs_collection coll, int r,
			     const struct kvfs_error *err)
{
	char detail[1024];

	kvfs_error_describe(err, detail, 768);
	if (!detail[0] || strcmp(detail, "unknown error") == 0)
		snprintf(detail, sizeof(detail), "%s", strerror(-r));
	/* A private endpoint or a TLS-inspecting proxy signs with a CA that
	 * the system does not know. */
	if (err->tls_verify &&
	    !public_azure(err->endpoint[0] ? err->endpoint : c->vault_url)) {
		size_t len = strlen(detail);

		if (c->ca_file)
			snprintf(detail + len, sizeof(detail) - len,
				 " (is the CA that signed it in ca_file='%s'?)",
				 c->ca_file);
		else
			snprintf(detail + len, sizeof(detail) - len,
				 " (not a public Azure endpoint: give the CA "
				 "that signed its certificate with ca_file=)");
	}

	if (err->provider[0] && err->local)
		/* a credential file: the message names it, no server */
		fprintf(stderr,
			"kvfs: cannot get a token for '%s' with provider "
			"'%s': %s\n",
			c->vault_arg, err->provider, detail);
	else if (err->provider[0])
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
		fprintf(stderr, "kvfs: cannot list %s of '%s': %s\n",
			kvfs_collection_info(coll)->name, c->vault_arg, detail);
}

/* The collection whose first listing failed (the first listing stops at
 * the first failure). */
static enum kvfs_collection load_failed(struct kvfs_cache *cache)
{
	for (unsigned i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		struct kvfs_cache_collection st;
		bool failing;

		if (kvfs_cache_collection_state(cache, (enum kvfs_collection)i,
						&st) < 0)
			continue;
		failing = st.failing;
		kvfs_listing_unref(st.listing);
		if (failing)
			return (enum kvfs_collection)i;
	}
	return KVFS_COLLECTION_CERTIFICATES;
}

/* True when stderr is the journal's stream ($JOURNAL_STREAM names its
 * device and inode, systemd.exec(5)): kvfs -f under systemd.  Syslog is
 * the journal too, and keeps each line's priority. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 &&
	       fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

/* What the revalidation thread's callbacks need: the FUSE side that makes
 * the kernel forget, and what systemd is told. */
struct served {
	const struct kvfs_config *c;
	struct kvfs_fs *fs;
	struct kvfs_cache *cache;
	struct kvfs_auth *auth;
	struct kvfs_notify *notify;
};

/* Tell systemd the mount serves (ready) and what it shows: "STATUS=12
 * certificates and 5 secrets; token valid until 2026-12-06T23:00:00Z". */
static void notify_status(struct served *s, bool ready)
{
	char what[256], until[32] = "", msg[384];
	time_t exp = (time_t)kvfs_auth_expires_at(s->auth);
	struct tm tm;

	describe_objects(s->cache, what, sizeof(what));
	if (exp > 0 && gmtime_r(&exp, &tm))
		strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(msg, sizeof(msg), "%sSTATUS=%s%s%s", ready ? "READY=1\n" : "",
		 what, until[0] ? "; token valid until " : "", until);
	(void)kvfs_notify_send(s->notify, msg);
}

static void served_invalidate(void *data, const struct kvfs_change *c,
			      bool again)
{
	struct served *s = data;

	kvfs_fs_invalidate(s->fs, c, again);
}

/* SIGHUP re-reads the rules; a file that does not parse leaves the
 * rules in force. */
static void reload_rules(const struct served *s)
{
	struct kvfs_rules *rules = NULL;
	struct kvfs_error err;
	int r;

	if (!s->c->rules_file)
		return;
	kvfs_error_clear(&err);
	r = kvfs_rules_load(s->c->rules_file, s->c->key_readers, &rules, &err);
	if (r < 0) {
		log_error("%s; the rules in force stay",
			  err.message[0] ? err.message : strerror(-r));
		return;
	}
	kvfs_fs_set_rules(s->fs, rules);
	log_info("rules reloaded from '%s'", s->c->rules_file);
}

static void served_reloading(void *data)
{
	struct served *s = data;

	(void)kvfs_notify_reloading(s->notify);
	reload_rules(s);
}

/* After a SIGHUP's revalidation systemd waits for READY=1 again. */
static void served_revalidated(void *data, bool asked)
{
	struct served *s = data;

	kvfs_fs_revalidated(s->fs);
	notify_status(s, asked);
}

/* The revalidation the SIGHUP handler wakes; set while it may. */
static struct kvfs_reval *sighup_reval;

static void on_sighup(int sig)
{
	struct kvfs_reval *r = __atomic_load_n(&sighup_reval, __ATOMIC_ACQUIRE);

	if (r)
		kvfs_reval_trigger(r);
}

/* SIGHUP revalidates at once; it must not unmount, as libfuse's handler
 * would.  r NULL: ignore it. */
static int set_sighup(struct kvfs_reval *r)
{
	struct sigaction sa = {.sa_handler = r ? on_sighup : SIG_IGN,
			       .sa_flags = SA_RESTART};

	__atomic_store_n(&sighup_reval, r, __ATOMIC_RELEASE);
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGHUP, &sa, NULL);
}

/* With auto_unmount, fusermount3 stays behind the mount and unmounts it
 * once our end of its socket closes, but only if the mount then answers
 * ENOTCONN: only once the connection is gone.  When a process dies, the
 * kernel releases its descriptors highest first, and libfuse's /dev/fuse
 * descriptor sits below that socket: under load, fusermount3 could look
 * while the connection still lived (its open then fails ECONNABORTED,
 * not ENOTCONN) and leave the dead mount behind.  A copy of the
 * connection's descriptor above every one open now is released first.
 * The copy, or -1 when none could be made (the race stays: logged). */
static int connection_released_first(struct fuse_session *se)
{
	int fd = fuse_session_fd(se), top = fd, copy;
	struct dirent *e;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d) {
		log_debug("auto_unmount: cannot list /proc/self/fd: %s",
			  strerror(errno));
		return -1;
	}
	while ((e = readdir(d)))
		if (atoi(e->d_name) > top)
			top = atoi(e->d_name);
	closedir(d);
	copy = fcntl(fd, F_DUPFD_CLOEXEC, top + 1);
	if (copy < 0)
		log_debug("auto_unmount: no copy of the FUSE descriptor: %s",
			  strerror(errno));
	return copy;
}

/* Mount and serve until unmounted; the exit code.  Each rung is undone
 * in reverse from where it failed. */
static int serve(const struct kvfs_config *c, struct kvfs_cache *cache,
		 struct kvfs_kernel *kernel, struct kvfs_auth *auth,
		 struct kvfs_control *control, int64_t mounted_at,
		 struct kvfs_onchange *onchange, struct kvfs_notify *notify,
		 struct kvfs_rules *rules)
{
	struct served served = {
		.c = c, .cache = cache, .auth = auth, .notify = notify};
	struct kvfs_reval *reval = NULL;
	struct fuse_session *se = NULL;
	struct kvfs_fs *fs = NULL;
	struct fuse *fuse;
	char what[256];
	int r, code = 1, held = -1;

	r = kvfs_fs_new(c, cache, kernel, control, mounted_at, onchange, &fs);
	if (r < 0) {
		/* kvfs_fs_new() names what failed, but for memory */
		if (r == -ENOMEM)
			log_error("cannot set up FUSE: out of memory");
		return code;
	}
	fuse = kvfs_fs_fuse(fs);
	served.fs = fs;
	kvfs_fs_set_rules(fs, kvfs_rules_ref(rules));
	/* Before the fork: its wake-up descriptor keeps a SIGHUP that comes
	 * before the thread starts. */
	r = kvfs_reval_new(c, cache, kernel,
			   &(struct kvfs_reval_ops){
				   .invalidate = served_invalidate,
				   .reloading = served_reloading,
				   .revalidated = served_revalidated,
				   .data = &served,
			   },
			   &reval);
	if (r < 0) {
		log_error("cannot set up revalidation: %s", strerror(-r));
		goto out_fs;
	}
	if (fuse_mount(fuse, c->mountpoint) != 0) {
		log_error("cannot mount on '%s'", c->mountpoint);
		goto out_reval;
	}
	se = fuse_get_session(fuse);
	if (c->auto_unmount)
		held = connection_released_first(se);
	if (fuse_set_signal_handlers(se) != 0) {
		log_error("cannot install signal handlers");
		goto out_unmount;
	}
	if (set_sighup(reval) != 0) {
		log_error("cannot install signal handlers");
		goto out_signals;
	}

	/* After the mount, so that the parent exits only once the mount
	 * exists; the network code holds no thread across this fork. */
	if (fuse_daemonize(c->foreground) != 0) {
		log_error("cannot daemonize");
		goto out_signals;
	}
	if (!c->foreground || stderr_is_journal())
		kvfs_log_use_syslog(true);
	describe_objects(cache, what, sizeof(what));
	log_info("mounted '%s' on '%s': %s", c->vault_url, c->mountpoint, what);
	/* Threads only now: they would not survive the fork. */
	if (kvfs_auth_start_refresher(auth) < 0)
		goto out_signals;
	if (kvfs_onchange_start(onchange) < 0)
		goto out_threads;
	/* The mount exists and is about to be served: a unit of Type=notify
	 * is started only now.  Before the revalidation thread, whose
	 * RELOADING=1 for an early SIGHUP must come after it. */
	notify_status(&served, true);
	if (kvfs_reval_start(reval) < 0)
		goto out_threads;

	r = kvfs_fs_loop(fs);
	/* 0: unmounted; > 0: the signal that asked us to stop. */
	if (r < 0)
		log_error("FUSE loop for '%s' failed: %s", c->mountpoint,
			  strerror(-r));
	else
		code = 0;
	(void)kvfs_notify_send(notify, "STOPPING=1");
	log_info("unmounting '%s'", c->mountpoint);

out_threads:
	kvfs_reval_stop(reval);
	kvfs_onchange_stop(onchange);
	kvfs_auth_stop_refresher(auth);
out_signals:
	set_sighup(NULL);
	fuse_remove_signal_handlers(se);
out_unmount:
	/* libfuse closes its descriptor before it unmounts, so that the
	 * unmount does not wait on the connection: so must the copy. */
	if (held >= 0)
		close(held);
	fuse_unmount(fuse);
out_reval:
	kvfs_reval_free(reval);
out_fs:
	kvfs_fs_free(fs);
	return code;
}

int main(int argc, char **argv)
{
	struct kvfs_config c = {0};
	struct kvfs_http_options ho = {0};
	struct kvfs_http *http = NULL;
	struct kvfs_auth *auth = NULL;
	struct kvfs_vault *vault = NULL;
	struct kvfs_cache *cache = NULL;
	struct kvfs_kernel *kernel = NULL;
	struct kvfs_control *control = NULL;
	struct kvfs_onchange *onchange = NULL;
	struct kvfs_notify *notify = NULL;
	struct kvfs_rules *rules = NULL;
	struct kvfs_error err;
	int64_t mounted_at;
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
	/* Before any thread or child (it edits the environment). */
	if (kvfs_notify_new(&notify) < 0) {
		fprintf(stderr, "kvfs: out of memory\n");
		goto out;
	}

	if (check_mountpoint(&c) < 0)
		goto out;
	kvfs_error_clear(&err);
	r = kvfs_onchange_new(&c, &onchange, &err);
	if (r < 0) {
		fprintf(stderr, "kvfs: on_change: %s\n",
			err.message[0] ? err.message : strerror(-r));
		goto out;
	}

	if (c.rules_file || c.key_readers) {
		kvfs_error_clear(&err);
		r = kvfs_rules_load(c.rules_file, c.key_readers, &rules, &err);
		if (r < 0) {
			fprintf(stderr, "kvfs: %s\n",
				err.message[0] ? err.message : strerror(-r));
			code = EXIT_USAGE;
			goto out;
		}
	}

	ho.ca_file = c.ca_file;
	ho.timeout_ms = (long)c.deadline * 1000;
	ho.proxy = c.proxy;
	ho.noproxy = c.noproxy;
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
	/* Set before the first listing, as kvfs_cache_on_change() asks. */
	r = kvfs_kernel_new(&kernel);
	if (r < 0) {
		fprintf(stderr, "kvfs: cannot set up the cache: %s\n",
			strerror(-r));
		goto out;
	}
	kvfs_cache_on_change(cache, kvfs_kernel_change, kernel);

	kvfs_error_clear(&err);
	r = kvfs_cache_load(cache, &err);
	if (r < 0) {
		print_load_error(&c, load_failed(cache), r, &err);
		goto out;
	}

	/* One reading of the mount's time: status says it, and it is the
	 * times of / and .kvfs/. */
	mounted_at = kvfs_wall_now();
	r = kvfs_control_new(&c, auth, cache, mounted_at, &control);
	if (r < 0) {
		fprintf(stderr, "kvfs: cannot set up .kvfs/: %s\n",
			strerror(-r));
		goto out;
	}
	code = serve(&c, cache, kernel, auth, control, mounted_at, onchange,
		     notify, rules);

out:
	kvfs_rules_unref(rules);
	kvfs_onchange_free(onchange);
	kvfs_control_free(control);
	if (cache)
		kvfs_cache_on_change(cache, NULL, NULL);
	kvfs_kernel_free(kernel);
	kvfs_cache_free(cache);
	kvfs_vault_free(vault);
	kvfs_auth_free(auth);
	kvfs_http_free(http);
	kvfs_config_free(&c);
	kvfs_notify_free(notify);
	return code;
}
