/* The rules file (kvfs_rules_parse, which takes bytes, NULs included):
 * whatever it accepts answers a match and a readers check, and a refusal
 * names its line; the first line of the input also serves as key_readers=
 * when it starts with '@'. */
#include <errno.h>

#include "fuzz.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvfs_rules_caller c = {.uid = 33, .gid = 33, .exe = "/bin/x"};
	struct kvfs_error err = {0};
	struct kvfs_rules *rs = NULL;
	char *kr = NULL;
	const char *text = (const char *)data;

	if (size && data[0] == '@') {
		const char *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - text) : size;

		kr = fuzz_strndup(data + 1, n - 1);
		text += n;
		size -= n;
	}
	int r = kvfs_rules_parse("f", text, size, kr, &rs, &err);

	if (r == 0) {
		const struct kvfs_rule *r =
			kvfs_rules_match(rs, "certificates", "www");
		const struct kvfs_readers *rd = kvfs_rules_readers(rs, r);

		if (rd)
			(void)kvfs_rules_allow(rd, &c);
		kvfs_rules_unref(rs);
	} else if (r != -ENOMEM && strncmp(err.message, "f:", 2) != 0 &&
		   strncmp(err.message, "key_readers: ", 13) != 0) {
		/* a refusal always says where */
		abort();
	}
	free(kr);
	return 0;
}
