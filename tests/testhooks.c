/* kvfs-testhooks: the kvfs daemon with test-only hooks, built for the
 * integration tests and never installed.  One hook today: the directory
 * Azure Arc's key files must be in comes from KVFS_TEST_ARC_TOKEN_DIR, so
 * that the fake's Arc endpoint can name files in a temporary directory.
 * This definition replaces the weak one of src/auth/mi.c at link time;
 * the installed kvfs keeps /var/opt/azcmagent/tokens, as MSAL does, and
 * reads no such variable. */
#include <stdlib.h>

#include "auth/provider.h"

const char *kvfs_arc_token_dir(void)
{
	const char *d = getenv("KVFS_TEST_ARC_TOKEN_DIR");

	return d && *d ? d : "/var/opt/azcmagent/tokens";
}
