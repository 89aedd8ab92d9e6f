/* Rate-limited logging: a burst passes, the rest is dropped, and the first
 * line after the interval says how many were. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

int main(void)
{
	struct kvfs_ratelimit rl = KVFS_RATELIMIT_INIT(1, 3);
	char line[512];
	int lines = 0, saved = dup(2);
	FILE *out = tmpfile();

	if (!out || saved < 0)
		return 1;
	fflush(stderr);
	dup2(fileno(out), 2);
	for (int i = 0; i < 10; i++)
		kvfs_log_ratelimited(&rl, KVFS_LOG_WARNING, "flood %d", i);
	kvfs_log_ratelimited(&rl, KVFS_LOG_DEBUG, "below the level");
	usleep(1100000);
	kvfs_log_ratelimited(&rl, KVFS_LOG_WARNING, "after the interval");
	fflush(stderr);
	dup2(saved, 2);

	rewind(out);
	while (fgets(line, sizeof(line), out)) {
		lines++;
		if (lines <= 3)
			ok(strncmp(line, "kvfs: flood ", 12) == 0,
			   "line %d of the burst passes", lines);
		if (lines == 4) {
			ok(strstr(line, "after the interval") != NULL,
			   "the next interval lets a line through");
			ok(strstr(line, "(7 similar lines suppressed)") != NULL,
			   "and it counts the dropped ones: %s", line);
		}
	}
	is_int(lines, 4, "three of the flood and one after");
	fclose(out);
	return done_testing();
}
