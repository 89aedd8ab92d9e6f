/* The counters behind .kvfs/metrics and the last error behind
 * .kvfs/status.  Plain static arrays bumped with relaxed atomics: a hook
 * costs one atomic add and never blocks a FUSE or network thread.  The
 * requests table has a cell per endpoint and HTTP status (100-599, and 0
 * for no response), so that counting needs no lock and no allocation;
 * rendering walks it.  The last error is a short string under a mutex
 * held only to copy it.  Rendering writes into a memory stream, off every
 * lock. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

#define STATUS_SLOTS 600
#define ERROR_MAX 512

static uint64_t requests[KVFS_EP_COUNT_][STATUS_SLOTS];
static uint64_t throttled;
static uint64_t counters[KVFS_COUNTER_COUNT_];
static uint64_t cache_counts[KVFS_OBJ_COUNT_][2];    /* [o][hit] */
static uint64_t listings[KVFS_COLLECTION_COUNT_][2]; /* [coll][ok] */
static uint64_t cache_counts[KVFS_OBJ_COUNT_][2];    /* [o][hit] */
static uint64_t runs[KVFS_RUN_COUNT_];
static uint64_t key_opens[2]; /* [allowed] */
static uint64_t events[KVFS_EVENT_COUNT_];
static unsigned gate_failures;

static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static char error_line[ERROR_MAX];
static int64_t error_at; /* Unix seconds; 0: no error yet */

static const char *const endpoint_names[] = {
	[KVFS_EP_OTHER] = "other",
	[KVFS_EP_LIST] = "list",
	[KVFS_EP_CERTIFICATE] = "certificate",
	[KVFS_EP_VERSIONS] = "versions",
	[KVFS_EP_SECRET] = "secret",
	[KVFS_EP_DISCOVERY] = "discovery",
	[KVFS_EP_TOKEN] = "token",
	[KVFS_EP_IMDS] = "imds",
	[KVFS_EP_IDENTITY] = "identity",
};

static const char *const object_names[] = {
	[KVFS_OBJ_CERTIFICATE] = "certificate",
	[KVFS_OBJ_VERSIONS] = "versions",
	[KVFS_OBJ_SECRET] = "secret",
};

static const char *const run_names[] = {
	[KVFS_RUN_OK] = "ok",
	[KVFS_RUN_FAILED] = "failed",
	[KVFS_RUN_TIMEOUT] = "timeout",
	[KVFS_RUN_ERROR] = "error",
};

static const char *const event_names[] = {
	[KVFS_EVENT_ADDED] = "added",	    [KVFS_EVENT_REMOVED] = "removed",
	[KVFS_EVENT_ROTATED] = "rotated",   [KVFS_EVENT_ENABLED] = "enabled",
	[KVFS_EVENT_DISABLED] = "disabled", [KVFS_EVENT_EXPIRED] = "expired",
	[KVFS_EVENT_OVERFLOW] = "overflow",
};

static void inc(uint64_t *p, uint64_t n)
{
	__atomic_add_fetch(p, n, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static size_t status_slot(long status)
{
	return status >= 100 && status < STATUS_SLOTS ? (size_t)status : 0;
}

void kvfs_metrics_request(unsigned endpoint, long status)
{
	if (endpoint >= KVFS_EP_COUNT_)
		endpoint = KVFS_EP_OTHER;
	inc(&requests[endpoint][status_slot(status)], 1);
	if (status == 429)
		inc(&throttled, 1);
}

void kvfs_metrics_add(enum kvfs_metrics_counter c, uint64_t n)
{
	if ((unsigned)c < KVFS_COUNTER_COUNT_)
		inc(&counters[c], n);
}

void kvfs_metrics_cache(enum kvfs_metrics_object o, bool hit)
{
	if ((unsigned)o < KVFS_OBJ_COUNT_)
		inc(&cache_counts[o][hit], 1);
}

void kvfs_metrics_listing(unsigned coll, bool ok)
{
	if (coll < KVFS_COLLECTION_COUNT_)
		inc(&listings[coll][ok], 1);
}

void kvfs_metrics_gate(unsigned failures)
{
	__atomic_store_n(&gate_failures, failures, __ATOMIC_RELAXED);
}

void kvfs_metrics_ascii_line(char *line)
{
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

void kvfs_metrics_error(const char *fmt, ...)
{
	char line[ERROR_MAX];
	int64_t at;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	kvfs_metrics_ascii_line(line);

	at = kvfs_wall_now();
	pthread_mutex_lock(&error_lock);
	memcpy(error_line, line, sizeof(line));
	error_at = at;
	pthread_mutex_unlock(&error_lock);
}

void kvfs_metrics_error_detail(const char *what, const struct kvfs_error *err)
{
	char detail[ERROR_MAX];

	kvfs_error_describe(err, detail, sizeof(detail));
	kvfs_metrics_error("%s: %s", what, detail);
}

uint64_t kvfs_metrics_get(enum kvfs_metrics_counter c)
{
	return (unsigned)c < KVFS_COUNTER_COUNT_ ? load(&counters[c]) : 0;
}

uint64_t kvfs_metrics_requests(enum kvfs_metrics_endpoint e, long status)
{
	return (unsigned)e < KVFS_EP_COUNT_
		       ? load(&requests[e][status_slot(status)])
		       : 0;
}

uint64_t kvfs_metrics_throttled(void)
{
	return load(&throttled);
}

uint64_t kvfs_metrics_cache_count(enum kvfs_metrics_object o, bool hit)
{
	return (unsigned)o < KVFS_OBJ_COUNT_ ? load(&cache_counts[o][hit]) : 0;
}

uint64_t kvfs_metrics_listings(enum kvfs_collection coll, bool ok)
{
	return (unsigned)coll < KVFS_COLLECTION_COUNT_
		       ? load(&listings[coll][ok])
		       : 0;
}

void kvfs_metrics_on_change(enum kvfs_metrics_run result)
{
	if ((size_t)result < KVFS_RUN_COUNT_)
		inc(&runs[result], 1);
}

uint64_t kvfs_metrics_on_change_runs(enum kvfs_metrics_run result)
{
	return (size_t)result < KVFS_RUN_COUNT_ ? load(&runs[result]) : 0;
}

void kvfs_metrics_key_open(bool allowed)
{
	inc(&key_opens[allowed], 1);
}

uint64_t kvfs_metrics_key_opens(bool allowed)
{
	return load(&key_opens[allowed]);
}

const char *kvfs_metrics_event_name(enum kvfs_metrics_event e)
{
	return (size_t)e < KVFS_EVENT_COUNT_ ? event_names[e] : NULL;
}

void kvfs_metrics_event(enum kvfs_metrics_event e, size_t n)
{
	if ((size_t)e >= KVFS_EVENT_COUNT_ || n == 0)
		return;
	inc(&events[e], e == KVFS_EVENT_OVERFLOW ? n : 1);
}

uint64_t kvfs_metrics_events(enum kvfs_metrics_event e)
{
	return (size_t)e < KVFS_EVENT_COUNT_ ? load(&events[e]) : 0;
}

unsigned kvfs_metrics_gate_failures(void)
{
	return __atomic_load_n(&gate_failures, __ATOMIC_RELAXED);
}

bool kvfs_metrics_last_error(char *buf, size_t size, int64_t *ret_at)
{
	bool have;

	pthread_mutex_lock(&error_lock);
	have = error_at != 0;
	if (size)
		snprintf(buf, size, "%s", error_line);
	if (ret_at)
		*ret_at = error_at;
	pthread_mutex_unlock(&error_lock);
	return have;
}

void kvfs_metrics_reset(void)
{
	for (size_t e = 0; e < KVFS_EP_COUNT_; e++)
		for (size_t s = 0; s < STATUS_SLOTS; s++)
			__atomic_store_n(&requests[e][s], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&throttled, 0, __ATOMIC_RELAXED);
	for (size_t c = 0; c < KVFS_COUNTER_COUNT_; c++)
		__atomic_store_n(&counters[c], 0, __ATOMIC_RELAXED);
	for (size_t o = 0; o < KVFS_OBJ_COUNT_; o++) {
		__atomic_store_n(&cache_counts[o][0], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&cache_counts[o][1], 0, __ATOMIC_RELAXED);
	}
	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++) {
		__atomic_store_n(&listings[c][0], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&listings[c][1], 0, __ATOMIC_RELAXED);
	}
	for (size_t i = 0; i < KVFS_RUN_COUNT_; i++)
		__atomic_store_n(&runs[i], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&key_opens[0], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&key_opens[1], 0, __ATOMIC_RELAXED);
	for (size_t i = 0; i < KVFS_EVENT_COUNT_; i++)
		__atomic_store_n(&events[i], 0, __ATOMIC_RELAXED);
	kvfs_metrics_gate(0);
	pthread_mutex_lock(&error_lock);
	error_line[0] = '\0';
	error_at = 0;
	pthread_mutex_unlock(&error_lock);
}

/* ---- the text exposition format ---- */

static void header(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void render_requests(FILE *f)
{
	header(f, "kvfs_requests_total", "counter",
	       "HTTP requests made, by endpoint and status code "
	       "(code \"0\": no response).");
	/* "other" (0) last, after the endpoints callers name. */
	for (size_t i = 1; i <= KVFS_EP_COUNT_; i++)
		for (size_t s = 0; s < STATUS_SLOTS; s++) {
			size_t e = i % KVFS_EP_COUNT_;
			uint64_t n = load(&requests[e][s]);

			if (n)
				fprintf(f,
					"kvfs_requests_total{endpoint=\"%s\","
					"code=\"%zu\"} %llu\n",
					endpoint_names[e], s,
					(unsigned long long)n);
		}
}

static void render_counter(FILE *f, const char *name, const char *help,
			   uint64_t v)
{
	header(f, name, "counter", help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void render_gauge(FILE *f, const char *name, const char *help, int64_t v)
{
	header(f, name, "gauge", help);
	fprintf(f, "%s %lld\n", name, (long long)v);
}

static void render_cache(FILE *f)
{
	static const char *const names[2] = {"kvfs_cache_misses_total",
					     "kvfs_cache_hits_total"};
	static const char *const helps[2] = {
		"Cache lookups that made a request to the vault.",
		"Cache lookups answered without a request of their own."};

	for (int hit = 1; hit >= 0; hit--) {
		header(f, names[hit], "counter", helps[hit]);
		for (size_t o = 0; o < KVFS_OBJ_COUNT_; o++)
			fprintf(f, "%s{object=\"%s\"} %llu\n", names[hit],
				object_names[o],
				(unsigned long long)load(
					&cache_counts[o][hit]));
	}
}

/* A counter of listings per collection: those that failed, or all. */
static void render_listings(FILE *f, bool failed)
{
	const char *name =
		failed ? "kvfs_listing_errors_total" : "kvfs_listings_total";

	header(f, name, "counter",
	       failed ? "Listings of a collection that failed (its objects "
			"are served as they were)."
		      : "Listings of a collection (all their pages), "
			"successful or not.");
	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++) {
		uint64_t n = load(&listings[c][0]);

		if (!failed)
			n += load(&listings[c][1]);
		fprintf(f, "%s{collection=\"%s\"} %llu\n", name,
			kvfs_collection_info((enum kvfs_collection)c)->name,
			(unsigned long long)n);
	}
}

/* One gauge per collection of the mount: what pick says of it; a time
 * not known yet (0) is left out. */
static void
render_coll_gauge(FILE *f, const struct kvfs_metrics_gauges *g,
		  const char *name, const char *help, bool time,
		  int64_t (*pick)(const struct kvfs_metrics_collection *))
{
	bool any = false;

	for (size_t c = 0; c < KVFS_COLLECTION_COUNT_; c++) {
		const struct kvfs_metrics_collection *mc = &g->collections[c];

		if (!mc->shown || (time && pick(mc) == 0))
			continue;
		if (!any)
			header(f, name, "gauge", help);
		any = true;
		fprintf(f, "%s{collection=\"%s\"} %lld\n", name,
			kvfs_collection_info((enum kvfs_collection)c)->name,
			(long long)pick(mc));
	}
}

static int64_t pick_objects(const struct kvfs_metrics_collection *mc)
{
	return (int64_t)mc->objects;
}

static int64_t pick_filtered(const struct kvfs_metrics_collection *mc)
{
	return (int64_t)mc->filtered;
}

static int64_t pick_last_refresh(const struct kvfs_metrics_collection *mc)
{
	return mc->last_refresh;
}

static int64_t pick_failing(const struct kvfs_metrics_collection *mc)
{
	return mc->failing;
}

static void render_collections(FILE *f, const struct kvfs_metrics_gauges *g)
{
	render_coll_gauge(f, g, "kvfs_objects",
			  "Objects in each collection's listing.", false,
			  pick_objects);
	render_coll_gauge(f, g, "kvfs_filtered_objects",
			  "Objects of each collection the filters left out.",
			  false, pick_filtered);
	render_coll_gauge(f, g, "kvfs_last_refresh_timestamp_seconds",
			  "When each collection's listing was last fetched, "
			  "Unix seconds.",
			  true, pick_last_refresh);
	render_coll_gauge(f, g, "kvfs_listing_failing",
			  "1 while a collection's latest listing failed (its "
			  "objects are served stale), else 0.",
			  false, pick_failing);
}

static void render_runs(FILE *f)
{
	header(f, "kvfs_on_change_runs_total", "counter",
	       "Runs of the on_change= command, by result.");
	for (size_t i = 0; i < KVFS_RUN_COUNT_; i++)
		fprintf(f, "kvfs_on_change_runs_total{result=\"%s\"} %llu\n",
			run_names[i], (unsigned long long)load(&runs[i]));
}

static void render_key_opens(FILE *f)
{
	header(f, "kvfs_key_opens_total", "counter",
	       "Opens of key-bearing files, by what the rules said.");
	fprintf(f, "kvfs_key_opens_total{result=\"allowed\"} %llu\n",
		(unsigned long long)load(&key_opens[1]));
	fprintf(f, "kvfs_key_opens_total{result=\"denied\"} %llu\n",
		(unsigned long long)load(&key_opens[0]));
}

static void render_events(FILE *f)
{
	header(f, "kvfs_events_total", "counter",
	       "Changes queued to the readers of .kvfs/events, by change "
	       "(once each, however many readers).");
	for (size_t i = 0; i < KVFS_EVENT_OVERFLOW; i++)
		fprintf(f, "kvfs_events_total{change=\"%s\"} %llu\n",
			event_names[i], (unsigned long long)load(&events[i]));
	render_counter(f, "kvfs_event_overflows_total",
		       "Readers of .kvfs/events whose queue overflowed.",
		       load(&events[KVFS_EVENT_OVERFLOW]));
}

/* One gauge per certificate with an expiry: its exp minus since (0 for
 * the timestamp itself, now for the seconds left). */
static void render_cert_gauge(FILE *f, const struct kvfs_metrics_gauges *g,
			      const char *name, const char *help, int64_t since)
{
	header(f, name, "gauge", help);
	for (size_t i = 0; i < g->ncerts; i++) {
		if (!g->certs[i].exp)
			continue;
		fprintf(f, "%s{name=\"", name);
		label_value(f, g->certs[i].name);
		fprintf(f, "\"} %lld\n", (long long)(g->certs[i].exp - since));
	}
}

static void render_certs(FILE *f, const struct kvfs_metrics_gauges *g)
{
	render_cert_gauge(f, g, "kvfs_certificate_expiry_timestamp_seconds",
			  "Expiry (exp) of each certificate's latest version, "
			  "Unix seconds.",
			  0);
	render_cert_gauge(f, g, "kvfs_certificate_expires_in_seconds",
			  "Seconds until each certificate's latest version "
			  "expires (negative once expired).",
			  g->now);
}

int kvfs_metrics_render(const struct kvfs_metrics_gauges *g, char **ret,
			size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	int64_t at;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;

	render_requests(f);
	render_counter(f, "kvfs_retries_total",
		       "Vault requests repeated after a transient failure "
		       "(429, 5xx, reset, timeout).",
		       kvfs_metrics_get(KVFS_COUNTER_RETRIES));
	render_counter(f, "kvfs_token_retries_total",
		       "Token requests repeated after a failed one (managed "
		       "identity endpoint or Entra ID).",
		       kvfs_metrics_get(KVFS_COUNTER_TOKEN_RETRIES));
	render_counter(f, "kvfs_throttled_total",
		       "Responses with status 429 (throttled).",
		       load(&throttled));
	render_cache(f);
	render_counter(f, "kvfs_read_bytes_total",
		       "Bytes of certificate files served by reads that "
		       "reached the daemon (not the page cache's).",
		       kvfs_metrics_get(KVFS_COUNTER_READ_BYTES));
	render_counter(f, "kvfs_pkcs12_kdf_iterations_total",
		       "Key derivation iterations run to open PKCS#12 secrets "
		       "and credentials, as each PKCS#12 declared them.",
		       kvfs_metrics_get(KVFS_COUNTER_KDF_ITERATIONS));
	render_runs(f);
	render_key_opens(f);
	render_events(f);
	render_gauge(f, "kvfs_vault_consecutive_failures",
		     "Vault attempts failed in a row (0: healthy).",
		     (int64_t)kvfs_metrics_gate_failures());
	render_listings(f, false);
	render_listings(f, true);
	render_gauge(f, "kvfs_certificates", "Certificates in the listing.",
		     (int64_t)g->certificates);
	render_collections(f, g);
	if (g->token_expires_at) {
		render_gauge(f, "kvfs_token_expiry_timestamp_seconds",
			     "Expiry of the current access token, Unix "
			     "seconds.",
			     g->token_expires_at);
		render_gauge(f, "kvfs_token_expires_in_seconds",
			     "Seconds until the current access token "
			     "expires.",
			     g->token_expires_at - g->now);
	}
	if (kvfs_metrics_last_error(NULL, 0, &at))
		render_gauge(f, "kvfs_last_error_timestamp_seconds",
			     "When the last error was met, Unix seconds.", at);
	render_gauge(f, "kvfs_start_time_seconds",
		     "When the file system was mounted, Unix seconds.",
		     g->mounted_at);
	render_certs(f, g);

	if (fclose(f) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
