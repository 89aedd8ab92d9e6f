/* Unit tests for error.c: the one-line description and the endpoint that
 * never carries a query string. */
#include <string.h>

#include "error.h"
#include "tap.h"

static void test_describe(void)
{
	struct kvfs_error e;
	char buf[512];
	int n;

	kvfs_error_clear(&e);
	e.http_status = 401;
	strcpy(e.code, "invalid_client");
	strcpy(e.aadsts, "AADSTS7000215");
	strcpy(e.message, "Invalid client secret provided.\r\nTrace ID: x");
	n = kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf,
	       "401 Unauthorized (invalid_client, AADSTS7000215): Invalid "
	       "client secret provided.",
	       "401 with OAuth code and AADSTS, first line of the message");
	is_int(n, (long long)strlen(buf), "returns the length written");

	kvfs_error_clear(&e);
	e.http_status = 403;
	strcpy(e.code, "Forbidden");
	strcpy(e.inner, "ForbiddenByRbac");
	kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf, "403 Forbidden (Forbidden, ForbiddenByRbac)",
	       "403 with code and inner code, no message");

	kvfs_error_clear(&e);
	e.http_status = 404;
	strcpy(e.code, "CertificateNotFound");
	strcpy(e.message, "A certificate with (name/id) x was not found");
	kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf,
	       "404 Not Found (CertificateNotFound): A certificate with "
	       "(name/id) x was not found",
	       "404 with code and message");

	kvfs_error_clear(&e);
	e.http_status = 418;
	kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf, "418", "unknown status: the number alone");

	kvfs_error_clear(&e);
	strcpy(e.message, "Could not resolve host: nowhere.invalid");
	kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf, "Could not resolve host: nowhere.invalid",
	       "transport error: the message alone");

	kvfs_error_clear(&e);
	kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf, "unknown error", "empty record");

	kvfs_error_clear(&e);
	e.http_status = 200;
	strcpy(e.message, "malformed JSON: premature end of input");
	kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf, "malformed JSON: premature end of input",
	       "a 2xx that failed: no status shown");

	kvfs_error_clear(&e);
	e.http_status = 401;
	strcpy(e.code, "invalid_client");
	strcpy(e.message, "Invalid client secret provided.");
	n = kvfs_error_describe(&e, buf, 10);
	is_str(buf, "401\xe2\x80\xa6", "cut at a word to fit the buffer");
	is_int(n, 6, "length of the cut line");
	n = kvfs_error_describe(&e, buf, 40);
	is_str(buf, "401 Unauthorized (invalid_client)\xe2\x80\xa6",
	       "a cut drops the separator before it");
	is_int(n, (int)strlen(buf), "length of the cut line");

	n = kvfs_error_describe(&e, buf, 0);
	is_int(n, 0, "zero-sized buffer");
}

static void test_endpoint(void)
{
	struct kvfs_error e;

	kvfs_error_clear(&e);
	kvfs_error_set_endpoint(&e, "https://v.vault.azure.net/certificates"
				    "?api-version=7.4&$skiptoken=abc");
	is_str(e.endpoint, "https://v.vault.azure.net/certificates",
	       "query dropped");

	kvfs_error_set_endpoint(&e, "https://login.example/t/oauth2/v2.0/"
				    "token#frag");
	is_str(e.endpoint, "https://login.example/t/oauth2/v2.0/token",
	       "fragment dropped");

	kvfs_error_set_endpoint(&e, "https://user:pw@host.example:8443/p?q=1");
	is_str(e.endpoint, "https://host.example:8443/p", "userinfo dropped");

	kvfs_error_set_endpoint(&e, "https://host.example/a@b");
	is_str(e.endpoint, "https://host.example/a@b",
	       "an @ in the path is not userinfo");

	kvfs_error_set_endpoint(&e, NULL);
	is_str(e.endpoint, "", "NULL clears");

	kvfs_error_set_message(&e, "%s %d", "code", 42);
	is_str(e.message, "code 42", "set_message formats");
}

/* What Entra ID sends for AADSTS700016, after the number. */
#define APP_NOT_FOUND                                                          \
	"Application with identifier '9c8b81b7-008f-469b-b798-49a6f001cab6' "  \
	"was not found in the directory 'Contoso'. This can happen if the "    \
	"application has not been installed by the administrator of the "      \
	"tenant or consented to by any user in the tenant. You may have sent " \
	"your authentication request to the wrong tenant."

static void test_description(void)
{
	struct kvfs_error e;
	char buf[1024], text[1200];
	size_t len;

	kvfs_error_clear(&e);
	kvfs_error_set_description(&e, APP_NOT_FOUND
				   "\r\nTrace ID: 0b1c\r\nCorrelation ID: "
				   "77aa\r\nTimestamp: 2026-12-05 08:00:00Z");
	is_str(e.message, APP_NOT_FOUND,
	       "a whole AADSTS description, without the trace lines");

	kvfs_error_set_description(&e, APP_NOT_FOUND
				   " Trace ID: 0b1c Correlation ID: 77aa "
				   "Timestamp: 2026-12-05 08:00:00Z");
	is_str(e.message, APP_NOT_FOUND,
	       "trace ids on the same line are dropped too");

	kvfs_error_set_description(&e, "Timestamp: only");
	is_str(e.message, "Timestamp: only", "a text that starts so stays");

	e.http_status = 400;
	strcpy(e.code, "unauthorized_client");
	strcpy(e.aadsts, "AADSTS700016");
	kvfs_error_set_description(&e, APP_NOT_FOUND "\r\nTrace ID: 0b1c");
	kvfs_error_describe(&e, buf, sizeof(buf));
	is_str(buf,
	       "400 Bad Request (unauthorized_client, "
	       "AADSTS700016): " APP_NOT_FOUND,
	       "the whole description in the line");

	/* longer than the record holds: cut after a whole word */
	snprintf(text, sizeof(text), "%s %s", APP_NOT_FOUND, APP_NOT_FOUND);
	kvfs_error_set_description(&e, text);
	len = strlen(e.message);
	ok(len < sizeof(e.message) && len > 400, "cut near the record's size");
	ok(len > 3 && strcmp(e.message + len - 3, "\xe2\x80\xa6") == 0,
	   "a cut description ends in an ellipsis");
	ok(strncmp(e.message, text, len - 3) == 0 &&
		   (text[len - 3] == ' ' || text[len - 3] == '.'),
	   "cut at the end of a word");
}

int main(void)
{
	test_describe();
	test_description();
	test_endpoint();
	return done_testing();
}
