/* The client-secret provider: client credentials with client_secret, the
 * secret read from secret_file= before each token request (so a rotated
 * file is picked up without a remount) or taken from AZURE_CLIENT_SECRET.
 * Discovery and the POST are entra.c's.  fetch() is single-flight (see
 * provider.h); the secret never outlives the request in clear. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth/credfile.h"
#include "auth/entra.h"
#include "auth/provider.h"
#include "util.h"

struct secret_provider {
	struct kvfs_auth_provider base;
	struct kvfs_entra entra;
	char *client_id;
	char *secret_file;   /* or NULL */
	char *client_secret; /* from the environment, or NULL; wiped */
};

static int secret_fetch(struct kvfs_auth_provider *base, const char *tenant,
			const char *resource, struct kvfs_token *ret,
			struct kvfs_error *err)
{
	struct secret_provider *p = (struct secret_provider *)base;
	_cleanup_secret_ char *secret = NULL;
	struct kvfs_form_param param;
	size_t len;
	int r;

	if (p->secret_file) {
		r = kvfs_credfile_read(p->secret_file,
				       KVFS_CREDFILE_STRIP_NEWLINES, &secret,
				       &len, err);
		if (r < 0) {
			snprintf(err->provider, sizeof(err->provider), "%s",
				 base->name);
			return r;
		}
		if (strlen(secret) != len) {
			snprintf(err->provider, sizeof(err->provider), "%s",
				 base->name);
			kvfs_error_set_message(err, "'%s' holds a NUL byte",
					       p->secret_file);
			return -EINVAL;
		}
	} else {
		secret = strdup(p->client_secret);
		if (!secret)
			return -ENOMEM;
	}

	param = (struct kvfs_form_param){"client_secret", secret};
	return kvfs_entra_get_token(&p->entra, tenant, p->client_id, resource,
				    &param, 1, ret, err);
}

static void secret_free(struct kvfs_auth_provider *base)
{
	struct secret_provider *p = (struct secret_provider *)base;

	if (!p)
		return;
	kvfs_entra_done(&p->entra);
	free(p->client_id);
	free(p->secret_file);
	kvfs_secure_free_str(p->client_secret);
	free(p);
}

int kvfs_auth_secret_new(const struct kvfs_config *c, struct kvfs_http *h,
			 struct kvfs_auth_provider **ret,
			 struct kvfs_error *err)
{
	struct secret_provider *p;
	int r;

	if (!c->client_id || !*c->client_id) {
		kvfs_error_set_message(err, "auth=secret needs client_id= "
					    "(or AZURE_CLIENT_ID)");
		return -EINVAL;
	}
	if (!(c->secret_file && *c->secret_file) &&
	    !(c->client_secret && *c->client_secret)) {
		kvfs_error_set_message(err, "auth=secret needs secret_file= "
					    "(or AZURE_CLIENT_SECRET)");
		return -EINVAL;
	}
	if (!c->authority || !*c->authority) {
		kvfs_error_set_message(err, "no authority= known");
		return -EINVAL;
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->base.name = "secret";
	p->base.fetch = secret_fetch;
	p->base.free = secret_free;

	r = kvfs_entra_init(&p->entra, h, c->authority, p->base.name);
	if (r < 0)
		goto fail;
	p->client_id = strdup(c->client_id);
	if (!p->client_id)
		goto oom;
	if (c->secret_file && *c->secret_file) {
		p->secret_file = strdup(c->secret_file);
		if (!p->secret_file)
			goto oom;
	} else {
		p->client_secret = strdup(c->client_secret);
		if (!p->client_secret)
			goto oom;
	}
	*ret = &p->base;
	return 0;

oom:
	r = -ENOMEM;
fail:
	secret_free(&p->base);
	return r;
}
