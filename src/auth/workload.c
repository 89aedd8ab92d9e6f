/* The workload identity provider (AKS and any OIDC federation): client
 * credentials with the federated token of token_file= (or
 * AZURE_FEDERATED_TOKEN_FILE) as the client assertion.  Kubernetes rotates
 * that file, so it is read again before every token request.  It is
 * exempt from the secret-file mode check (Kubernetes projects it 0644,
 * behind a symlink) but still size-checked.  fetch() is single-flight
 * (provider.h); the token read is wiped after use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth/credfile.h"
#include "auth/entra.h"
#include "auth/provider.h"
#include "util.h"

struct workload_provider {
	struct kvfs_auth_provider base;
	struct kvfs_entra entra;
	char *client_id;
	char *token_file;
};

static int workload_fetch(struct kvfs_auth_provider *base, const char *tenant,
			  const char *resource, struct kvfs_token *ret,
			  struct kvfs_error *err)
{
	struct workload_provider *p = (struct workload_provider *)base;
	_cleanup_secret_ char *assertion = NULL;
	struct kvfs_form_param params[2];
	size_t len;
	int r;

	r = kvfs_credfile_read(p->token_file,
			       KVFS_CREDFILE_STRIP_NEWLINES |
				       KVFS_CREDFILE_ANY_MODE,
			       &assertion, &len, err);
	if (r == 0 && strlen(assertion) != len) {
		kvfs_error_set_message(err, "'%s' holds a NUL byte",
				       p->token_file);
		r = -EINVAL;
	}
	if (r < 0) {
		snprintf(err->provider, sizeof(err->provider), "%s",
			 base->name);
		return r;
	}

	params[0] = (struct kvfs_form_param){
		"client_assertion_type",
		"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"};
	params[1] = (struct kvfs_form_param){"client_assertion", assertion};
	return kvfs_entra_get_token(&p->entra, tenant, p->client_id, resource,
				    params, 2, ret, err);
}

static void workload_free(struct kvfs_auth_provider *base)
{
	struct workload_provider *p = (struct workload_provider *)base;

	if (!p)
		return;
	kvfs_entra_done(&p->entra);
	free(p->client_id);
	free(p->token_file);
	free(p);
}

int kvfs_auth_workload_new(const struct kvfs_config *c, struct kvfs_http *h,
			   struct kvfs_auth_provider **ret,
			   struct kvfs_error *err)
{
	struct workload_provider *p;
	int r;

	if (!c->client_id || !*c->client_id) {
		kvfs_error_set_message(err, "auth=workload needs client_id= "
					    "(or AZURE_CLIENT_ID)");
		return -EINVAL;
	}
	if (!c->token_file || !*c->token_file) {
		kvfs_error_set_message(err, "auth=workload needs token_file= "
					    "(or AZURE_FEDERATED_TOKEN_FILE)");
		return -EINVAL;
	}
	if (!c->authority || !*c->authority) {
		kvfs_error_set_message(err, "no authority= known");
		return -EINVAL;
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->base.name = "workload";
	p->base.fetch = workload_fetch;
	p->base.free = workload_free;

	r = kvfs_entra_init(&p->entra, h, c->authority, p->base.name);
	if (r < 0)
		goto fail;
	p->client_id = strdup(c->client_id);
	p->token_file = strdup(c->token_file);
	if (!p->client_id || !p->token_file) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = &p->base;
	return 0;

fail:
	workload_free(&p->base);
	return r;
}
