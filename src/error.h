/* The error detail that travels from the layer that met a failure to the one
 * that prints it: HTTP status, Azure error codes, the endpoint.  Filled by
 * http (transport and status), vault and auth (codes from bodies); formatted
 * once, at the top, into one precise line.  Plain data, no threads. */
#ifndef KVFS_ERROR_H
#define KVFS_ERROR_H

#include <stddef.h>

struct kvfs_error {
	char provider[16];  /* auth provider when a token request failed */
	int http_status;    /* 0 when no HTTP response was received */
	int retry_after;    /* seconds the service asked to wait, or 0 */
	char code[64];	    /* Azure error.code, or OAuth "error" */
	char inner[64];	    /* Azure innererror.code */
	char aadsts[24];    /* "AADSTS7000215" when Entra ID said so */
	char endpoint[256]; /* scheme://host[:port]/path, never a query */
	char message[256];  /* short human text: curl's, or the service's */
	int not_sent;	    /* the retry gate held the request back */
};

void kvfs_error_clear(struct kvfs_error *e);

/* Set endpoint from a URL, dropping the query string (it may carry secrets). */
void kvfs_error_set_endpoint(struct kvfs_error *e, const char *url);

void kvfs_error_set_message(struct kvfs_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "401 Unauthorized (invalid_client, AADSTS7000215): <message>" and the like.
 * Returns the length written (truncated to n-1). */
int kvfs_error_describe(const struct kvfs_error *e, char *buf, size_t n);

#endif
