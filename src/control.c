/* .kvfs/status and .kvfs/metrics, rendered afresh for every open from what
 * auth, the cache and metrics say now.  The status JSON is built with
 * jansson; every value is read once, so a snapshot is consistent with
 * itself as far as each source is (the listings are immutable snapshots
 * of one revalidation).  No lock of its own; no network. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "control.h"
#include "metrics.h"
#include "util.h"

struct kvfs_control {
	const struct kvfs_config *config;
	struct kvfs_auth *auth;
	struct kvfs_cache *cache;
	int64_t mounted_at; /* Unix seconds */
};

static const char *const file_names[] = {
	[KVFS_CONTROL_STATUS] = "status",
	[KVFS_CONTROL_METRICS] = "metrics",
};

int kvfs_control_new(const struct kvfs_config *c, struct kvfs_auth *auth,
		     struct kvfs_cache *cache, int64_t mounted_at,
		     struct kvfs_control **ret)
{
	struct kvfs_control *ctl = calloc(1, sizeof(*ctl));

	if (!ctl)
		return -ENOMEM;
	ctl->config = c;
	ctl->auth = auth;
	ctl->cache = cache;
	ctl->mounted_at = mounted_at;
	*ret = ctl;
	return 0;
}

void kvfs_control_free(struct kvfs_control *ctl)
{
	free(ctl);
}

const char *kvfs_control_file_name(enum kvfs_control_file f)
{
	return (unsigned)f < KVFS_CONTROL_COUNT_ ? file_names[f] : NULL;
}

int kvfs_control_file_of(const char *name, enum kvfs_control_file *ret)
{
	for (size_t i = 0; i < KVFS_CONTROL_COUNT_; i++)
		if (strcmp(name, file_names[i]) == 0) {
			*ret = (enum kvfs_control_file)i;
			return 0;
		}
	return -ENOENT;
}

/* A Unix time, or null when not known (0). */
static json_t *time_or_null(int64_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

/* Set key to v (a new reference); false when out of memory. */
static bool put(json_t *o, const char *key, json_t *v)
{
	return v && json_object_set_new(o, key, v) == 0;
}

/* The current listings, all of one revalidation, NULL for a collection
 * the mount does not show; released with listings_put(). */
struct listings {
	struct kvfs_listing *l[KVFS_COLLECTION_COUNT_];
	int64_t loaded_at; /* when they were fetched, all at once */
	size_t filtered;   /* objects the filters left out, in all of them */
};

static void listings_get(struct kvfs_control *ctl, struct listings *ret)
{
	*ret = (struct listings){0};
	kvfs_cache_listings(ctl->cache, ret->l);
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		if (!ret->l[i])
			continue;
		ret->loaded_at = ret->l[i]->loaded_at;
		ret->filtered += ret->l[i]->filtered;
	}
}

static void listings_put(struct listings *ls)
{
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		kvfs_listing_unref(ls->l[i]);
}

/* A count of objects per collection shown, under the collection's name,
 * then the objects the filters left out of them all. */
static bool put_counts(json_t *o, const struct listings *ls)
{
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		if (ls->l[i] &&
		    !put(o, kvfs_collection_info((enum kvfs_collection)i)->name,
			 json_integer((json_int_t)ls->l[i]->n)))
			return false;
	return put(o, "filtered", json_integer((json_int_t)ls->filtered));
}

static json_t *status_json(struct kvfs_control *ctl)
{
	const struct kvfs_config *c = ctl->config;
	struct listings ls;
	unsigned failures = kvfs_metrics_gate_failures();
	char error[512];
	int64_t error_at = 0;
	bool have_error, ok;
	json_t *o = json_object();

	listings_get(ctl, &ls);
	have_error = kvfs_metrics_last_error(error, sizeof(error), &error_at);
	ok = o && put(o, "vault", json_string(c->vault_url)) &&
	     put(o, "mountpoint", json_string(c->mountpoint)) &&
	     put(o, "version", json_string(KVFS_VERSION)) &&
	     put(o, "pid", json_integer((json_int_t)getpid())) &&
	     put(o, "provider",
		 json_string(kvfs_auth_provider_name(ctl->auth))) &&
	     put(o, "provider_reason",
		 json_string(kvfs_auth_provider_reason(ctl->auth))) &&
	     put(o, "token_expires_at",
		 time_or_null(kvfs_auth_expires_at(ctl->auth))) &&
	     put(o, "token_refreshed_at",
		 time_or_null(kvfs_auth_last_refresh(ctl->auth))) &&
	     put(o, "last_refresh", time_or_null(ls.loaded_at)) &&
	     put_counts(o, &ls) &&
	     put(o, "mounted_at", time_or_null(ctl->mounted_at)) &&
	     put(o, "vault_state",
		 json_string(failures ? "backing off" : "healthy")) &&
	     put(o, "vault_consecutive_failures",
		 json_integer((json_int_t)failures)) &&
	     put(o, "last_error",
		 have_error ? json_string(error) : json_null()) &&
	     put(o, "last_error_at", time_or_null(error_at)) &&
	     put(o, "refresh_interval", json_integer((json_int_t)c->refresh)) &&
	     put(o, "max_stale", json_integer((json_int_t)c->max_stale)) &&
	     put(o, "now", json_integer((json_int_t)kvfs_wall_now()));
	listings_put(&ls);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int render_status(struct kvfs_control *ctl, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *s = NULL;
	json_t *o = status_json(ctl);
	char *text;
	int n;

	if (!o)
		return -ENOMEM;
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	/* A text file ends with a newline. */
	n = asprintf(&text, "%s\n", s);
	if (n < 0)
		return -ENOMEM;
	*ret = text;
	*ret_len = (size_t)n;
	return 0;
}

static int render_metrics(struct kvfs_control *ctl, char **ret, size_t *ret_len)
{
	struct listings ls;
	const struct kvfs_listing *l;
	struct kvfs_metrics_gauges g = {
		.now = kvfs_wall_now(),
		.mounted_at = ctl->mounted_at,
		.token_expires_at = kvfs_auth_expires_at(ctl->auth),
	};
	struct kvfs_metrics_cert *certs;
	size_t n;
	int r;

	listings_get(ctl, &ls);
	l = ls.l[KVFS_COLLECTION_CERTIFICATES];
	n = l ? l->n : 0;
	g.last_refresh = ls.loaded_at;
	g.certificates = n;
	certs = calloc(n ? n : 1, sizeof(*certs));
	if (!certs) {
		listings_put(&ls);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		certs[i].name = l->entries[i].item.name;
		certs[i].exp = l->entries[i].item.attrs.exp;
	}
	g.certs = certs;
	g.ncerts = n;
	r = kvfs_metrics_render(&g, ret, ret_len);
	free(certs);
	listings_put(&ls);
	return r;
}

int kvfs_control_render(struct kvfs_control *ctl, enum kvfs_control_file f,
			char **ret, size_t *ret_len)
{
	switch (f) {
	case KVFS_CONTROL_STATUS:
		return render_status(ctl, ret, ret_len);
	case KVFS_CONTROL_METRICS:
		return render_metrics(ctl, ret, ret_len);
	default:
		return -ENOENT;
	}
}
