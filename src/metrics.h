/* The daemon's counters and its last error, for MOUNTPOINT/.kvfs/metrics
 * and .kvfs/status: requests by endpoint and HTTP status, retries, 429s,
 * cache hits and misses, listings per collection, bytes served by reads,
 * and the last error line
 * met talking to the vault or an identity endpoint.  One set per process
 * (one daemon serves one mount).  The other modules only bump counters
 * through the one-line hooks below; rendering the Prometheus text is here
 * too, fed with the gauges (token and certificate expiry) by the caller,
 * so that this module needs nothing of the cache or auth.
 * Thread-safe: counters are atomics; the last error has its own short
 * lock, never held across anything but a copy. */
#ifndef KVFS_METRICS_H
#define KVFS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collection.h"
#include "error.h"

/* What a request was for, as its caller labels it (the label of struct
 * kvfs_http_request): Key Vault's list, certificate, versions and secret
 * GETs, Entra ID's discovery document and token endpoint, the IMDS (and
 * Arc) token endpoint, any other identity endpoint (App Service's).  0 is
 * no label: a request nobody labelled counts as "other", never as one
 * caller's. */
enum kvfs_metrics_endpoint {
	KVFS_EP_OTHER,
	KVFS_EP_LIST,
	KVFS_EP_CERTIFICATE,
	KVFS_EP_VERSIONS,
	KVFS_EP_SECRET,
	KVFS_EP_DISCOVERY,
	KVFS_EP_TOKEN,
	KVFS_EP_IMDS,
	KVFS_EP_IDENTITY,
	KVFS_EP_COUNT_,
};

/* What the cache was asked for. */
enum kvfs_metrics_object {
	KVFS_OBJ_CERTIFICATE, /* a version's bundle (its files) */
	KVFS_OBJ_VERSIONS,    /* a versions listing */
	KVFS_OBJ_SECRET,      /* a version's secret (key and chain) */
	KVFS_OBJ_COUNT_,
};

enum kvfs_metrics_counter {
	KVFS_COUNTER_RETRIES, /* vault attempts repeated after a failure */
	KVFS_COUNTER_TOKEN_RETRIES,  /* token attempts repeated after one */
	KVFS_COUNTER_READ_BYTES,     /* bytes of certificate files read */
	KVFS_COUNTER_KDF_ITERATIONS, /* PKCS#12 key derivation iterations */
	KVFS_COUNTER_COUNT_,
};

/* How a run of the on_change= command ended: exit status 0, another
 * status or a signal, killed at on_change_timeout=, or not started. */
enum kvfs_metrics_run {
	KVFS_RUN_OK,
	KVFS_RUN_FAILED,
	KVFS_RUN_TIMEOUT,
	KVFS_RUN_ERROR,
	KVFS_RUN_COUNT_,
};

/* What a line of .kvfs/events says changed (events.c); its name
 * (kvfs_metrics_event_name()) is the line's "change". */
enum kvfs_metrics_event {
	KVFS_EVENT_ADDED,
	KVFS_EVENT_REMOVED,
	KVFS_EVENT_ROTATED,
	KVFS_EVENT_ENABLED,
	KVFS_EVENT_DISABLED,
	KVFS_EVENT_EXPIRED,
	KVFS_EVENT_OVERFLOW,
	KVFS_EVENT_COUNT_,
};

/* "added", ..., "overflow"; NULL for anything else. */
const char *kvfs_metrics_event_name(enum kvfs_metrics_event e);

/* ---- hooks ---- */

/* One HTTP exchange for endpoint (an enum kvfs_metrics_endpoint; any
 * other value counts as KVFS_EP_OTHER): status is the HTTP status, or 0
 * when no response came back (reset, timeout, TLS failure).  A 429 also
 * counts as throttled. */
void kvfs_metrics_request(unsigned endpoint, long status);
void kvfs_metrics_add(enum kvfs_metrics_counter c, uint64_t n);
/* A cache lookup answered without a request (hit, also when it joined a
 * request another reader had started) or one that made the request
 * (miss). */
void kvfs_metrics_cache(enum kvfs_metrics_object o, bool hit);
/* A listing of collection coll (an enum kvfs_collection; any other value
 * is not counted), all its pages, that succeeded or failed. */
void kvfs_metrics_listing(unsigned coll, bool ok);
/* A run of the on_change= command ended so. */
void kvfs_metrics_on_change(enum kvfs_metrics_run result);
/* An open of a key-bearing file that the rules allowed or denied. */
void kvfs_metrics_key_open(bool allowed);
/* An event of kind e was queued to n readers of .kvfs/events (counted
 * once however many), or (KVFS_EVENT_OVERFLOW) n readers overflowed. */
void kvfs_metrics_event(enum kvfs_metrics_event e, size_t n);
/* The vault's gate: consecutive failed attempts now (0: healthy). */
void kvfs_metrics_gate(unsigned failures);
/* The last error line: one line, never a token (callers pass what they
 * log).  Control characters and non-ASCII bytes become '?'. */
void kvfs_metrics_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* Make line one line of ASCII, safe in JSON whatever a service sent:
 * control characters and non-ASCII bytes become '?'. */
void kvfs_metrics_ascii_line(char *line);
/* "<what>: <err described>". */
void kvfs_metrics_error_detail(const char *what, const struct kvfs_error *err);

/* ---- reading ---- */

uint64_t kvfs_metrics_get(enum kvfs_metrics_counter c);
uint64_t kvfs_metrics_requests(enum kvfs_metrics_endpoint e, long status);
uint64_t kvfs_metrics_throttled(void);
uint64_t kvfs_metrics_cache_count(enum kvfs_metrics_object o, bool hit);
uint64_t kvfs_metrics_listings(enum kvfs_collection coll, bool ok);
uint64_t kvfs_metrics_on_change_runs(enum kvfs_metrics_run result);
uint64_t kvfs_metrics_key_opens(bool allowed);
uint64_t kvfs_metrics_events(enum kvfs_metrics_event e);
unsigned kvfs_metrics_gate_failures(void);
/* The last error and its Unix time; false (and "" / 0) when none yet. */
bool kvfs_metrics_last_error(char *buf, size_t size, int64_t *ret_at);

/* Everything back to zero (unit tests). */
void kvfs_metrics_reset(void);

/* ---- rendering ---- */

struct kvfs_metrics_cert {
	const char *name;
	int64_t exp; /* Unix seconds; 0: none (left out) */
};

/* A collection of the mount, as its current listing says. */
struct kvfs_metrics_collection {
	bool shown;	      /* false: not of the mount (left out) */
	size_t objects;	      /* in the listing */
	size_t filtered;      /* left out by the filters */
	int64_t last_refresh; /* listing loaded at; 0: left out */
	bool failing;	      /* its latest listing failed */
};

/* What the renderer cannot count itself. */
struct kvfs_metrics_gauges {
	int64_t now;		  /* Unix seconds of the snapshot */
	int64_t mounted_at;	  /* Unix seconds */
	int64_t token_expires_at; /* 0: no token yet (left out) */
	struct kvfs_metrics_collection collections[KVFS_COLLECTION_COUNT_];
	size_t certificates;
	const struct kvfs_metrics_cert *certs;
	size_t ncerts;
};

/* The Prometheus text exposition (version 0.0.4) of every counter and of
 * g, into a malloc'ed buffer (NUL-terminated; *ret_len without it).
 * 0 or -ENOMEM. */
int kvfs_metrics_render(const struct kvfs_metrics_gauges *g, char **ret,
			size_t *ret_len);

#endif
