/* .kvfs/status and .kvfs/metrics, rendered afresh for every open from what
 * auth, the cache and metrics say now.  The status JSON is built with
 * jansson; every value is read once, so a snapshot is consistent with
 * itself as far as each source is (each collection's listing is an
 * immutable snapshot, read with its state at once).  No lock of its own;
 * no network. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
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
	[KVFS_CONTROL_AUDIT] = "audit",
	[KVFS_CONTROL_EVENTS] = "events",
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

/* What the cache says of each collection, NULL listings for those the
 * mount does not show; released with collections_put(). */
struct collections {
	struct kvfs_cache_collection c[KVFS_COLLECTION_COUNT_];
	int64_t loaded_at; /* the oldest of the listings: all are as new */
	size_t filtered;   /* objects the filters left out, in all of them */
};

static void collections_get(struct kvfs_control *ctl, struct collections *ret)
{
	*ret = (struct collections){0};
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		const struct kvfs_listing *l;

		if (kvfs_cache_collection_state(ctl->cache,
						(enum kvfs_collection)i,
						&ret->c[i]) < 0)
			continue;
		l = ret->c[i].listing;
		if (!ret->loaded_at || l->loaded_at < ret->loaded_at)
			ret->loaded_at = l->loaded_at;
		ret->filtered += l->filtered;
	}
}

static void collections_put(struct collections *cs)
{
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		kvfs_listing_unref(cs->c[i].listing);
}

/* A count of objects per collection shown, under the collection's name,
 * then the objects the filters left out of them all. */
static bool put_counts(json_t *o, const struct collections *cs)
{
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		if (cs->c[i].listing &&
		    !put(o, kvfs_collection_info((enum kvfs_collection)i)->name,
			 json_integer((json_int_t)cs->c[i].listing->n)))
			return false;
	return put(o, "filtered", json_integer((json_int_t)cs->filtered));
}

/* The latest listing's failure, one line; null when it succeeded. */
static json_t *listing_error(const struct kvfs_cache_collection *c)
{
	char msg[512];

	if (!c->failing)
		return json_null();
	if (c->err.not_sent)
		snprintf(msg, sizeof(msg), "the vault is failing");
	else
		kvfs_error_describe(&c->err, msg, sizeof(msg));
	kvfs_metrics_ascii_line(msg);
	return json_string(msg);
}

/* "collections": an object per collection shown, under its name: its
 * objects, those the filters left out, when it was last listed, and the
 * failure of its latest listing (null when that succeeded). */
static json_t *collections_json(const struct collections *cs)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < KVFS_COLLECTION_COUNT_; i++) {
		const struct kvfs_cache_collection *c = &cs->c[i];
		json_t *one;

		if (!c->listing)
			continue;
		one = json_object();
		if (!one ||
		    !put(o, kvfs_collection_info((enum kvfs_collection)i)->name,
			 one) ||
		    !put(one, "objects",
			 json_integer((json_int_t)c->listing->n)) ||
		    !put(one, "filtered",
			 json_integer((json_int_t)c->listing->filtered)) ||
		    !put(one, "last_listing",
			 time_or_null(c->listing->loaded_at)) ||
		    !put(one, "last_error", listing_error(c)) ||
		    !put(one, "last_error_at",
			 time_or_null(c->failing ? c->err_at : 0))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *status_json(struct kvfs_control *ctl)
{
	const struct kvfs_config *c = ctl->config;
	struct collections cs;
	unsigned failures = kvfs_metrics_gate_failures();
	char error[512];
	int64_t error_at = 0;
	bool have_error, ok;
	json_t *o = json_object();

	collections_get(ctl, &cs);
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
	     put(o, "last_refresh", time_or_null(cs.loaded_at)) &&
	     put_counts(o, &cs) &&
	     put(o, "collections", collections_json(&cs)) &&
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
	collections_put(&cs);
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
	struct collections cs;
	const struct kvfs_listing *l;
	struct kvfs_metrics_gauges g = {
		.now = kvfs_wall_now(),
		.mounted_at = ctl->mounted_at,
		.token_expires_at = kvfs_auth_expires_at(ctl->auth),
	};
	struct kvfs_metrics_cert *certs;
	size_t n;
	int r;

	collections_get(ctl, &cs);
	for (size_t i = 0; i < KVFS_COLLECTION_COUNT_; i++) {
		const struct kvfs_cache_collection *c = &cs.c[i];

		if (!c->listing)
			continue;
		g.collections[i] = (struct kvfs_metrics_collection){
			.shown = true,
			.objects = c->listing->n,
			.filtered = c->listing->filtered,
			.last_refresh = c->listing->loaded_at,
			.failing = c->failing,
		};
	}
	l = cs.c[KVFS_COLLECTION_CERTIFICATES].listing;
	n = l ? l->n : 0;
	g.certificates = n;
	certs = calloc(n ? n : 1, sizeof(*certs));
	if (!certs) {
		collections_put(&cs);
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
	collections_put(&cs);
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
	case KVFS_CONTROL_AUDIT:
		return kvfs_audit_render(ret, ret_len);
	default:
		return -ENOENT;
	}
}
