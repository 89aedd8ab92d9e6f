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
	is_str(buf, "401 Unaut", "truncated to the buffer");
	is_int(n, 9, "truncated length");

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

int main(void)
{
	test_describe();
	test_endpoint();
	return done_testing();
}
