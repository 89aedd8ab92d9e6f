/* The error detail that travels from the layer that met a failure to the one
 * that prints it: HTTP status, Azure error codes, the endpoint.  Filled by
 * http (transport and status), vault and auth (codes from bodies); formatted
 * once, at the top, into one precise line.  Plain data, no threads. */
#ifndef KVFS_ERROR_H
#define KVFS_ERROR_H

#include <stddef.h>
#include <stdint.h>

struct kvfs_error {
	char provider[16];	/* auth provider when a token request failed */
	int http_status;	/* 0 when no HTTP response was received */
	int64_t retry_after_ms; /* the wait the service asked for, or 0 */
	char code[64];		/* Azure error.code, or OAuth "error" */
	char inner[64];		/* Azure innererror.code */
	char aadsts[24];	/* "AADSTS7000215" when Entra ID said so */
	char endpoint[256];	/* scheme://host[:port]/path, never a query */
	char message[512];	/* short human text: curl's, or the service's */
	int not_sent;		/* the retry gate held the request back */
	int local;	/* a local file was wrong: no endpoint involved */
	int tls_verify; /* the server's certificate chain was not trusted */
};

void kvfs_error_clear(struct kvfs_error *e);

/* Set endpoint from a URL, dropping the query string (it may carry secrets). */
void kvfs_error_set_endpoint(struct kvfs_error *e, const char *url);

void kvfs_error_set_message(struct kvfs_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A service's own description as the message: its first line, without the
 * "Trace ID:", "Correlation ID:" and "Timestamp:" parts that Entra ID
 * appends, cut at a word with "…" when it does not fit. */
void kvfs_error_set_description(struct kvfs_error *e, const char *text);

/* "401 Unauthorized (invalid_client, AADSTS7000215): <message>" and the like.
 * Returns the length written; a line longer than n-1 is cut at a word and
 * ends in "…". */
int kvfs_error_describe(const struct kvfs_error *e, char *buf, size_t n);

#endif
