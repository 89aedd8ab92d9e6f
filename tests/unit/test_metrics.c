/* The metrics module: requests counted by their label, counters (also from
 * several threads at once), the last error's sanitising, and the
 * Prometheus text rendering, checked line by line. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

/* Requests are counted under the label their caller gave; no label (0,
 * a request whose label was left out) and a label that is no endpoint
 * count as other. */
static void test_labels(void)
{
	kvfs_metrics_reset();
	kvfs_metrics_request(0, 204);
	is_int(kvfs_metrics_requests(KVFS_EP_OTHER, 204), 1,
	       "no label counts as other");
	is_int(kvfs_metrics_requests(KVFS_EP_LIST, 204), 0,
	       "and as no caller's endpoint");
	kvfs_metrics_reset();
	for (unsigned e = 0; e < KVFS_EP_COUNT_; e++) {
		kvfs_metrics_request(e, 200 + e);
		is_int(kvfs_metrics_requests(e, 200 + e), 1,
		       "counted under label %u", e);
	}
	kvfs_metrics_request(KVFS_EP_COUNT_, 299);
	kvfs_metrics_request(12345, 299);
	is_int(kvfs_metrics_requests(KVFS_EP_OTHER, 299), 2,
	       "a label out of range counts as other");
	kvfs_metrics_reset();
}

static void test_counters(void)
{
	const unsigned list = KVFS_EP_LIST;

	kvfs_metrics_reset();
	kvfs_metrics_request(list, 200);
	kvfs_metrics_request(list, 200);
	kvfs_metrics_request(list, 429);
	kvfs_metrics_request(list, 0);
	kvfs_metrics_request(list, 1234); /* nonsense: no usable response */
	is_int(kvfs_metrics_requests(KVFS_EP_LIST, 200), 2, "two 200s");
	is_int(kvfs_metrics_requests(KVFS_EP_LIST, 429), 1, "one 429");
	is_int(kvfs_metrics_requests(KVFS_EP_LIST, 0), 2,
	       "no response, and a status out of range, count as code 0");
	is_int(kvfs_metrics_throttled(), 1, "a 429 is throttled");
	is_int(kvfs_metrics_requests(KVFS_EP_SECRET, 200), 0,
	       "other endpoints untouched");

	kvfs_metrics_add(KVFS_COUNTER_READ_BYTES, 1000);
	kvfs_metrics_add(KVFS_COUNTER_READ_BYTES, 24);
	is_int(kvfs_metrics_get(KVFS_COUNTER_READ_BYTES), 1024, "bytes add");
	kvfs_metrics_cache(KVFS_OBJ_SECRET, true);
	kvfs_metrics_cache(KVFS_OBJ_SECRET, false);
	kvfs_metrics_cache(KVFS_OBJ_SECRET, true);
	is_int(kvfs_metrics_cache_count(KVFS_OBJ_SECRET, true), 2, "hits");
	is_int(kvfs_metrics_cache_count(KVFS_OBJ_SECRET, false), 1, "misses");
	kvfs_metrics_add((enum kvfs_metrics_counter)99, 1);
	kvfs_metrics_cache((enum kvfs_metrics_object)99, true);
	is_int(kvfs_metrics_get((enum kvfs_metrics_counter)99), 0,
	       "an unknown counter reads 0");
	is_int(kvfs_metrics_get(KVFS_COUNTER_RETRIES) +
		       kvfs_metrics_cache_count(KVFS_OBJ_CERTIFICATE, true) +
		       kvfs_metrics_cache_count(KVFS_OBJ_VERSIONS, true),
	       0, "and bumping one touches no other");

	kvfs_metrics_reset();
	is_int(kvfs_metrics_requests(KVFS_EP_LIST, 200), 0, "reset");
	is_int(kvfs_metrics_get(KVFS_COUNTER_READ_BYTES), 0, "reset bytes");
}

#define THREADS 4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
	for (int i = 0; i < PER_THREAD; i++) {
		kvfs_metrics_request(KVFS_EP_SECRET, 200);
		kvfs_metrics_add(KVFS_COUNTER_RETRIES, 1);
	}
	return arg;
}

static void test_threads(void)
{
	pthread_t t[THREADS];

	kvfs_metrics_reset();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	is_int(kvfs_metrics_requests(KVFS_EP_SECRET, 200), THREADS * PER_THREAD,
	       "no increment lost across threads");
	is_int(kvfs_metrics_get(KVFS_COUNTER_RETRIES), THREADS * PER_THREAD,
	       "nor of a plain counter");
}

static void test_last_error(void)
{
	struct kvfs_error err;
	char buf[512];
	int64_t at = -1;

	kvfs_metrics_reset();
	ok(!kvfs_metrics_last_error(buf, sizeof(buf), &at), "none yet");
	is_str(buf, "", "empty");
	is_int(at, 0, "no time");

	kvfs_metrics_error("cannot get '%s':\r\n%s\x7f caf\xc3\xa9", "www",
			   "bad\tthing");
	ok(kvfs_metrics_last_error(buf, sizeof(buf), &at), "set");
	is_str(buf, "cannot get 'www':??bad?thing? caf??",
	       "one ASCII line: controls and non-ASCII bytes become '?'");
	ok(at > 1700000000, "with its time");

	kvfs_error_clear(&err);
	err.http_status = 403;
	snprintf(err.code, sizeof(err.code), "Forbidden");
	snprintf(err.message, sizeof(err.message), "denied");
	kvfs_metrics_error_detail("cannot list certificates", &err);
	kvfs_metrics_last_error(buf, sizeof(buf), NULL);
	ok(strncmp(buf, "cannot list certificates: 403", 29) == 0 &&
		   strstr(buf, "Forbidden") && strstr(buf, "denied"),
	   "detail from an error struct: %s", buf);

	kvfs_metrics_last_error(buf, 8, NULL);
	is_str(buf, "cannot ", "a small buffer truncates");
}

/* The line of text that starts with prefix, or NULL. */
static const char *line_of(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, prefix, n) == 0)
			return p;
	}
	return NULL;
}

static bool has_line(const char *text, const char *line)
{
	const char *p = line_of(text, line);

	return p && (p[strlen(line)] == '\n');
}

static void test_render(void)
{
	static const struct kvfs_metrics_cert certs[] = {
		{"www", 2000000000},
		{"old", 1000000000},
		{"none", 0},
		{"q\"u\\o\nte", 1500000000},
	};
	struct kvfs_metrics_gauges g = {
		.now = 1500000000,
		.mounted_at = 1499999000,
		.token_expires_at = 1500003599,
		.collections =
			{
				[KVFS_COLLECTION_CERTIFICATES] =
					{.shown = true,
					 .objects = 4,
					 .last_refresh = 1499999900},
				[KVFS_COLLECTION_SECRETS] = {.shown = true,
							     .objects = 7,
							     .filtered = 2,
							     .last_refresh =
								     1499999800,
							     .failing = true},
			},
		.certificates = 4,
		.certs = certs,
		.ncerts = 4,
	};
	char *text = NULL;
	size_t len = 0;
	const char *help, *type, *sample, *first, *middle, *last;

	kvfs_metrics_reset();
	kvfs_metrics_request(KVFS_EP_LIST, 200);
	kvfs_metrics_request(KVFS_EP_CERTIFICATE, 200);
	kvfs_metrics_request(KVFS_EP_CERTIFICATE, 503);
	kvfs_metrics_request(KVFS_EP_CERTIFICATE, 0);
	kvfs_metrics_request(KVFS_EP_TOKEN, 429);
	kvfs_metrics_request(KVFS_EP_OTHER, 200);
	kvfs_metrics_add(KVFS_COUNTER_RETRIES, 2);
	kvfs_metrics_add(KVFS_COUNTER_TOKEN_RETRIES, 3);
	kvfs_metrics_add(KVFS_COUNTER_READ_BYTES, 3010);
	kvfs_metrics_cache(KVFS_OBJ_CERTIFICATE, false);
	kvfs_metrics_cache(KVFS_OBJ_CERTIFICATE, true);
	kvfs_metrics_gate(3);
	kvfs_metrics_listing(KVFS_COLLECTION_CERTIFICATES, true);
	kvfs_metrics_listing(KVFS_COLLECTION_SECRETS, true);
	kvfs_metrics_listing(KVFS_COLLECTION_SECRETS, false);
	kvfs_metrics_listing(KVFS_COLLECTION_COUNT_, false); /* not counted */
	is_int(kvfs_metrics_listings(KVFS_COLLECTION_SECRETS, false), 1,
	       "a failed listing counted");
	kvfs_metrics_on_change(KVFS_RUN_TIMEOUT);
	kvfs_metrics_on_change(KVFS_RUN_TIMEOUT);
	kvfs_metrics_on_change(KVFS_RUN_OK);
	kvfs_metrics_event(KVFS_EVENT_ROTATED, 3); /* one event, 3 readers */
	kvfs_metrics_event(KVFS_EVENT_ADDED, 0);   /* nobody listened */
	kvfs_metrics_event(KVFS_EVENT_OVERFLOW, 2);
	kvfs_metrics_on_change((enum kvfs_metrics_run)99);
	is_int(kvfs_metrics_on_change_runs(KVFS_RUN_TIMEOUT), 2,
	       "on_change timeouts");

	is_int(kvfs_metrics_render(&g, &text, &len), 0, "renders");
	if (!text) {
		ok(0, "no text");
		return;
	}
	is_int(len, strlen(text), "length without the NUL");
	ok(len > 0 && text[len - 1] == '\n', "ends with a newline");

	help = line_of(text, "# HELP kvfs_requests_total ");
	type = line_of(text, "# TYPE kvfs_requests_total counter");
	sample = line_of(text, "kvfs_requests_total{");
	ok(help && type && sample && help < type && type < sample,
	   "HELP, then TYPE, then the samples");
	ok(has_line(text, "kvfs_requests_total{endpoint=\"list\",code=\"200\"}"
			  " 1"),
	   "list 200");
	ok(has_line(text, "kvfs_requests_total{endpoint=\"certificate\","
			  "code=\"503\"} 1"),
	   "certificate 503");
	ok(has_line(text, "kvfs_requests_total{endpoint=\"certificate\","
			  "code=\"0\"} 1"),
	   "no response is code 0");
	ok(has_line(text, "kvfs_requests_total{endpoint=\"token\","
			  "code=\"429\"} 1"),
	   "token 429");
	ok(has_line(text, "kvfs_requests_total{endpoint=\"other\","
			  "code=\"200\"} 1"),
	   "other 200");
	first = line_of(text, "kvfs_requests_total{endpoint=\"list\"");
	middle = line_of(text, "kvfs_requests_total{endpoint=\"token\"");
	last = line_of(text, "kvfs_requests_total{endpoint=\"other\"");
	ok(first && middle && last && first < middle && middle < last,
	   "endpoints in their order, other last");
	ok(!line_of(text, "kvfs_requests_total{endpoint=\"secret\""),
	   "no sample for what never happened");
	ok(has_line(text, "kvfs_retries_total 2"), "retries");
	ok(has_line(text, "kvfs_token_retries_total 3"), "token retries");
	ok(has_line(text, "kvfs_throttled_total 1"), "throttled");
	ok(has_line(text, "kvfs_read_bytes_total 3010"), "bytes");
	ok(has_line(text, "kvfs_cache_hits_total{object=\"certificate\"} 1"),
	   "hits");
	ok(has_line(text, "kvfs_cache_misses_total{object=\"certificate\"} 1"),
	   "misses");
	ok(has_line(text, "kvfs_cache_misses_total{object=\"secret\"} 0"),
	   "every object has its zero");
	ok(has_line(text, "# TYPE kvfs_cache_hits_total counter"),
	   "hits are a counter");
	ok(has_line(text, "# TYPE kvfs_on_change_runs_total counter"),
	   "on_change runs are a counter");
	ok(has_line(text, "kvfs_on_change_runs_total{result=\"ok\"} 1") &&
		   has_line(
			   text,
			   "kvfs_on_change_runs_total{result=\"timeout\"} 2") &&
		   has_line(text,
			    "kvfs_on_change_runs_total{result=\"failed\"} 0") &&
		   has_line(text,
			    "kvfs_on_change_runs_total{result=\"error\"} 0"),
	   "on_change runs by result, each with its zero");
	ok(has_line(text, "# TYPE kvfs_events_total counter") &&
		   has_line(text, "kvfs_events_total{change=\"rotated\"} 1") &&
		   has_line(text, "kvfs_events_total{change=\"added\"} 0") &&
		   has_line(text, "kvfs_events_total{change=\"expired\"} 0") &&
		   !line_of(text, "kvfs_events_total{change=\"overflow\""),
	   "events by change, once each, however many readers");
	ok(has_line(text, "kvfs_event_overflows_total 2"),
	   "overflows, one per reader");
	ok(has_line(text, "kvfs_vault_consecutive_failures 3"), "gate");
	ok(has_line(text, "kvfs_certificates 4"), "certificates");
	ok(has_line(text, "kvfs_last_refresh_timestamp_seconds{collection="
			  "\"certificates\"} 1499999900"),
	   "last refresh, per collection");
	ok(has_line(text, "kvfs_last_refresh_timestamp_seconds{collection="
			  "\"secrets\"} 1499999800"),
	   "secrets' last refresh");
	ok(has_line(text, "kvfs_objects{collection=\"certificates\"} 4") &&
		   has_line(text, "kvfs_objects{collection=\"secrets\"} 7"),
	   "objects per collection");
	ok(has_line(text,
		    "kvfs_filtered_objects{collection=\"certificates\"} 0") &&
		   has_line(text,
			    "kvfs_filtered_objects{collection=\"secrets\"} 2"),
	   "filtered per collection");
	ok(has_line(text,
		    "kvfs_listing_failing{collection=\"certificates\"} 0") &&
		   has_line(text,
			    "kvfs_listing_failing{collection=\"secrets\"} 1"),
	   "failing per collection");
	ok(!strstr(text, "{collection=\"keys\"} 7") &&
		   !line_of(text, "kvfs_objects{collection=\"keys\"}"),
	   "a collection not shown has no gauge");
	ok(has_line(text, "kvfs_listings_total{collection=\"secrets\"} 2") &&
		   has_line(text, "kvfs_listings_total{collection="
				  "\"certificates\"} 1") &&
		   has_line(text, "kvfs_listings_total{collection=\"keys\"} 0"),
	   "listings per collection");
	ok(has_line(text,
		    "kvfs_listing_errors_total{collection=\"secrets\"} 1") &&
		   has_line(text, "kvfs_listing_errors_total{collection="
				  "\"certificates\"} 0"),
	   "listing errors per collection");
	ok(has_line(text, "# TYPE kvfs_listing_errors_total counter") &&
		   has_line(text, "# TYPE kvfs_objects gauge"),
	   "counters and gauges typed");
	ok(has_line(text, "kvfs_token_expiry_timestamp_seconds 1500003599"),
	   "token expiry");
	ok(has_line(text, "kvfs_token_expires_in_seconds 3599"),
	   "token expires in");
	ok(has_line(text, "kvfs_start_time_seconds 1499999000"), "start");
	ok(has_line(text, "# TYPE kvfs_certificate_expiry_timestamp_seconds "
			  "gauge"),
	   "expiry is a gauge");
	ok(has_line(text, "kvfs_certificate_expiry_timestamp_seconds{name="
			  "\"www\"} 2000000000"),
	   "www expiry");
	ok(has_line(text, "kvfs_certificate_expires_in_seconds{name=\"www\"} "
			  "500000000"),
	   "www expires in");
	ok(has_line(text, "kvfs_certificate_expires_in_seconds{name=\"old\"} "
			  "-500000000"),
	   "an expired one is negative");
	ok(!strstr(text, "name=\"none\""), "no exp, no sample");
	ok(has_line(text, "kvfs_certificate_expiry_timestamp_seconds{name="
			  "\"q\\\"u\\\\o\\nte\"} 1500000000"),
	   "label values escaped");
	ok(!line_of(text, "kvfs_last_error_timestamp_seconds"),
	   "no error, no error time");
	for (const char *p = text; *p; p = strchr(p, '\n') + 1)
		if (*p != '#' && strncmp(p, "kvfs_", 5) != 0) {
			ok(0, "a line without the kvfs_ prefix: %.40s", p);
			break;
		}
	free(text);

	/* Unknown token and refresh time: left out, not 0. */
	g.token_expires_at = 0;
	g.collections[KVFS_COLLECTION_CERTIFICATES].last_refresh = 0;
	g.collections[KVFS_COLLECTION_SECRETS].last_refresh = 0;
	g.ncerts = 0;
	kvfs_metrics_error("boom");
	is_int(kvfs_metrics_render(&g, &text, &len), 0, "renders again");
	ok(text && !strstr(text, "kvfs_token_expiry_timestamp_seconds") &&
		   !strstr(text, "kvfs_last_refresh_timestamp_seconds{"),
	   "unknown times are left out");
	ok(text && line_of(text, "kvfs_last_error_timestamp_seconds "),
	   "an error has its time");
	free(text);
}

int main(void)
{
	test_labels();
	test_counters();
	test_threads();
	test_last_error();
	test_render();
	return done_testing();
}
