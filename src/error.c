/* The error detail record: filling it (endpoint without query, message) and
 * formatting it into the one line the top layer prints.  Plain data; safe
 * from any thread as long as each record has one writer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "url.h"

void kvfs_error_clear(struct kvfs_error *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

/* Copy at most n-1 bytes of src[0..len) into dst, always terminated. */
static void copy_span(char *dst, size_t n, const char *src, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

void kvfs_error_set_endpoint(struct kvfs_error *e, const char *url)
{
	if (e)
		kvfs_url_redact(url, e->endpoint, sizeof(e->endpoint));
}

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, "…" */

/* buf holds n-1 bytes of a longer text: end it at the last whole word that
 * leaves room for the ellipsis, so that no line ends in the middle of a
 * word (or of a UTF-8 sequence).  Returns the new length. */
static size_t cut_at_word(char *buf, size_t n)
{
	size_t room = sizeof(ELLIPSIS) - 1, end, i;

	if (n < room + 2)
		return strlen(buf);
	end = n - 1 - room;
	for (i = end; i > 0 && buf[i] != ' '; i--)
		;
	if (i == 0) /* one long word: cut it, but not inside a character */
		for (i = end; i > 0 && ((unsigned char)buf[i] & 0xc0) == 0x80;
		     i--)
			;
	while (i > 0 && (buf[i - 1] == ' ' || buf[i - 1] == ',' ||
			 buf[i - 1] == ':' || buf[i - 1] == ';'))
		i--;
	memcpy(buf + i, ELLIPSIS, room + 1);
	return i + room;
}

void kvfs_error_set_description(struct kvfs_error *e, const char *text)
{
	static const char *const noise[] = {
		" Trace ID:", " Correlation ID:", " Timestamp:"};
	size_t len;

	if (!e)
		return;
	if (!text)
		text = "";
	len = strcspn(text, "\r\n");
	for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++) {
		const char *p = strstr(text, noise[i]);

		if (p && (size_t)(p - text) < len)
			len = (size_t)(p - text);
	}
	while (len > 0 && text[len - 1] == ' ')
		len--;
	if (len < sizeof(e->message)) {
		copy_span(e->message, sizeof(e->message), text, len);
		return;
	}
	copy_span(e->message, sizeof(e->message), text, sizeof(e->message) - 1);
	cut_at_word(e->message, sizeof(e->message));
}

void kvfs_error_set_message(struct kvfs_error *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static const char *status_reason(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 413:
		return "Payload Too Large";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return NULL;
	}
}

/* Append to buf at *pos, never past n-1; *pos counts what would have been
 * written, as snprintf does. */
static void put(char *buf, size_t n, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t n, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(*pos < n ? buf + *pos : NULL, *pos < n ? n - *pos : 0,
		      fmt, ap);
	va_end(ap);
	if (r > 0)
		*pos += (size_t)r;
}

int kvfs_error_describe(const struct kvfs_error *e, char *buf, size_t n)
{
	const char *codes[3];
	size_t ncodes = 0, pos = 0, mlen;

	if (!buf || n == 0)
		return 0;
	buf[0] = '\0';
	if (!e)
		return 0;

	if (e->code[0])
		codes[ncodes++] = e->code;
	if (e->inner[0])
		codes[ncodes++] = e->inner;
	if (e->aadsts[0])
		codes[ncodes++] = e->aadsts;

	/* Only the first line of a service's description: Entra ID appends
	 * "\r\nTrace ID: ..." lines that say nothing to an administrator. */
	mlen = strcspn(e->message, "\r\n");

	/* A 2xx that failed (malformed body, foreign nextLink): the message
	 * says what was wrong, the status would only confuse. */
	if (e->http_status > 0 &&
	    (e->http_status < 200 || e->http_status >= 300)) {
		const char *reason = status_reason(e->http_status);

		put(buf, n, &pos, "%d", e->http_status);
		if (reason)
			put(buf, n, &pos, " %s", reason);
		for (size_t i = 0; i < ncodes; i++)
			put(buf, n, &pos, "%s%s", i == 0 ? " (" : ", ",
			    codes[i]);
		if (ncodes)
			put(buf, n, &pos, ")");
		if (mlen)
			put(buf, n, &pos, ": %.*s", (int)mlen, e->message);
	} else {
		for (size_t i = 0; i < ncodes; i++)
			put(buf, n, &pos, "%s%s", i == 0 ? "" : ", ", codes[i]);
		if (ncodes && mlen)
			put(buf, n, &pos, ": ");
		if (mlen)
			put(buf, n, &pos, "%.*s", (int)mlen, e->message);
		if (!ncodes && !mlen)
			put(buf, n, &pos, "unknown error");
	}

	if (pos >= n)
		return (int)cut_at_word(buf, n);
	return (int)pos;
}
