/* The option table: command line (-o key=value, -f, -d, -s, --help,
 * --version), the Azure SDK environment variables as defaults, validation, and
 * the argument vector handed to libfuse.  An option given twice takes its last
 * value, but for include=, exclude= and tag=, whose every occurrence
 * counts.  Knows nothing of the network.
 * Parsed once in main() before any thread starts; read-only afterwards. */
#ifndef KVFS_CONFIG_H
#define KVFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

enum kvfs_auth_kind {
	KVFS_AUTH_AUTO,
	KVFS_AUTH_IMDS,
	KVFS_AUTH_SECRET,
	KVFS_AUTH_CERT,
	KVFS_AUTH_WORKLOAD,
};

/* Signature of the certificate provider's client assertion. */
enum kvfs_assertion_alg {
	KVFS_ASSERTION_ALG_PS256, /* with x5t#S256: what Entra ID documents */
	KVFS_ASSERTION_ALG_RS256, /* with x5t (SHA-1): older authorities, AD FS
				   */
};

enum kvfs_cloud {
	KVFS_CLOUD_PUBLIC,
	KVFS_CLOUD_CHINA,
	KVFS_CLOUD_USGOV,
};

/* The longest include=/exclude= glob, in bytes. */
#define KVFS_CONFIG_GLOB_MAX 256

/* include=, exclude=: every occurrence, in the order given.  Each is a
 * non-empty glob of at most KVFS_CONFIG_GLOB_MAX bytes, with no control
 * character and no '/' (an object's name has none). */
struct kvfs_config_globs {
	char **v;
	size_t n;
};

/* tag=KEY=VALUE, split at the first '=': KEY is not empty and holds no
 * '='; VALUE may be empty and may hold '='. */
struct kvfs_config_tag {
	char *key;
	char *value;
};

/* tag=: every occurrence, in the order given. */
struct kvfs_config_tags {
	struct kvfs_config_tag *v;
	size_t n;
};

struct kvfs_config {
	char *vault_arg; /* VAULT as given: also the fsname */
	char *vault_url; /* "https://host[:port]", no trailing slash */
	char *mountpoint;

	enum kvfs_auth_kind auth;
	enum kvfs_cloud cloud;
	char *tenant; /* NULL: discover from the vault's challenge */
	char *client_id;
	char *object_id;
	char *msi_res_id;
	char *secret_file;
	char *client_secret; /* AZURE_CLIENT_SECRET's value; wiped when freed */
	char *cert_file;
	char *cert_password_file;
	char *cert_password; /* AZURE_CLIENT_CERTIFICATE_PASSWORD; wiped */
	enum kvfs_assertion_alg cert_alg;
	bool send_cert_chain; /* x5c; AZURE_CLIENT_SEND_CERTIFICATE_CHAIN */
	char *token_file;
	char *authority; /* "https://login.microsoftonline.com", no slash */
	char *imds_url;
	char *resource;		/* explicit resource=, or NULL */
	char *default_resource; /* from cloud=: "https://vault.azure.net" */
	char *ca_file;
	char *api_version; /* "7.4" */
	/* proxy=, else https_proxy/HTTPS_PROXY: "http[s]://[USER:PASS@]host
	 * [:port]", credentials only from the environment; wiped when freed.
	 * NULL: no proxy. */
	char *proxy;
	/* noproxy=, else no_proxy/NO_PROXY: libcurl's list, comma-separated
	 * ("*", host names and domains, addresses, CIDR); NULL: none. */
	char *noproxy;

	unsigned refresh;	    /* seconds */
	unsigned max_stale;	    /* seconds */
	unsigned deadline;	    /* seconds */
	char *on_change;	    /* absolute; NULL: none */
	unsigned on_change_delay;   /* seconds */
	unsigned on_change_timeout; /* seconds */
	unsigned expiring_days;	    /* expiring/'s window; 0: the expired */
	bool allow_expired;
	bool allow_other;
	bool auto_unmount; /* libfuse's: fusermount3 unmounts when we die */
	bool kernel_cache; /* no OPEN: reads by inode, changes by invalidation
			    */
	bool foreground;
	bool debug;
	int loglevel;

	uid_t uid;
	gid_t gid;
	mode_t key_mode;
	char *rules_file;  /* rules.h; NULL: none */
	char *key_readers; /* the readers of every key; NULL: any */

	/* collections=: bit 1u << enum kvfs_collection for each collection
	 * mounted; never 0 once parsed. */
	unsigned collections;
	/* What filter.h matches an object against. */
	struct kvfs_config_globs include;
	struct kvfs_config_globs exclude;
	struct kvfs_config_tags tags;

	/* argv for fuse_new(): program name, "-o", "ro,subtype=kvfs,...",
	 * auto_unmount among them when asked for. */
	int fuse_argc;
	char **fuse_argv;
};

/* Parse argv and the environment into *ret.  Returns 0 to go on, 1 when
 * --help or --version was printed (exit 0), or -errno with a message in
 * err->message (exit 2: usage error).  An option that would carry a secret
 * on the command line (secret=, client_secret=, password=, a proxy= with
 * credentials, ...) is refused with a message naming where to put it
 * instead. */
int kvfs_config_parse(int argc, char **argv, struct kvfs_config *ret,
		      struct kvfs_error *err);

void kvfs_config_free(struct kvfs_config *c);

/* "myvault" -> "https://myvault.vault.azure.net" (per cloud);
 * "https://host[:port][/]" -> "https://host[:port]".  Anything else,
 * including http://, userinfo, a path or a query: -EINVAL. */
int kvfs_config_vault_url(const char *arg, enum kvfs_cloud cloud,
			  char **ret_url);

const char *kvfs_config_auth_name(enum kvfs_auth_kind k);

#endif
