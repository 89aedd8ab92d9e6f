/* The content of MOUNTPOINT/.kvfs/: "status", one JSON object that tells
 * an administrator what the mount is doing (vault, credential provider and
 * why, token expiry, last listing, the objects of each collection and
 * those the filters left out, each collection's last listing and its
 * failure, vault health, last error), and "metrics",
 * the Prometheus text of metrics.c with the gauges only the cache and
 * auth know, "audit", the last key reads (audit.h); "events" is named here
 * too, but is a stream that fs.c serves from events.c.  fs serves these bytes
 * and knows nothing of JSON; this module reads auth, the cache and metrics,
 * and never touches the network.  Thread-safe: every render is a fresh
 * snapshot. */
#ifndef KVFS_CONTROL_H
#define KVFS_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "cache.h"
#include "config.h"

#define KVFS_CONTROL_DIR ".kvfs"

enum kvfs_control_file {
	KVFS_CONTROL_STATUS,
	KVFS_CONTROL_METRICS,
	KVFS_CONTROL_AUDIT,
	KVFS_CONTROL_EVENTS, /* a stream, not rendered: events.h */
	KVFS_CONTROL_COUNT_,
};

struct kvfs_control;

/* Borrows c, auth and cache, which must outlive it.  mounted_at
 * (kvfs_wall_now() seconds) is the mount's time, status says it. */
int kvfs_control_new(const struct kvfs_config *c, struct kvfs_auth *auth,
		     struct kvfs_cache *cache, int64_t mounted_at,
		     struct kvfs_control **ret);
void kvfs_control_free(struct kvfs_control *ctl);

/* "status", "metrics", "audit", "events"; NULL for anything else. */
const char *kvfs_control_file_name(enum kvfs_control_file f);
/* The file called name, or -ENOENT. */
int kvfs_control_file_of(const char *name, enum kvfs_control_file *ret);

/* A fresh snapshot of file f: malloc'ed, NUL-terminated, *ret_len without
 * the NUL.  0 or -errno (-ENOENT for "events", which fs.c serves from
 * events.c). */
int kvfs_control_render(struct kvfs_control *ctl, enum kvfs_control_file f,
			char **ret, size_t *ret_len);

#endif
