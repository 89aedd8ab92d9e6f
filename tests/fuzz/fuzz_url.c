/* URLs: a nextLink or sid against the vault's origin
 * (kvfs_url_same_origin: the input is "a\nb"), the VAULT argument
 * (kvfs_config_vault_url, with the cloud picked by the length), and the path
 * of an object's id (kvfs_url_path). */
#include "config.h"
#include "fuzz.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	char *nl = strchr(s, '\n'), *url = NULL;
	const char *path;
	enum kvfs_cloud cloud = (enum kvfs_cloud)(size % 3);

	if (kvfs_config_vault_url(s, cloud, &url) == 0) {
		/* What was accepted is an origin of its own. */
		if (!kvfs_url_same_origin(url, url))
			abort();
		free(url);
	}
	path = kvfs_url_path(s);
	if (path && (*path != '/' || path < s || path >= s + strlen(s)))
		abort();
	if (nl) {
		*nl = '\0';
		(void)kvfs_url_same_origin(s, nl + 1);
		(void)kvfs_url_same_origin(nl + 1, s);
	}
	free(s);
	return 0;
}
