/* The process behind a thread: a second thread of this process maps to
 * its pid, from /proc and, once the thread is gone, from memory; the main
 * thread is its process; a tid that names no thread maps to itself. */
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include "caller.h"
#include "tap.h"

struct seen {
	pid_t tid;
	int64_t first, again;
};

static void *thread(void *arg)
{
	struct seen *s = arg;

	s->tid = gettid();
	s->first = kvfs_caller_tgid(s->tid);
	s->again = kvfs_caller_tgid(s->tid);
	return NULL;
}

int main(void)
{
	struct seen s = {0};
	pthread_t t;

	pthread_create(&t, NULL, thread, &s);
	pthread_join(t, NULL);
	ok(s.tid != 0 && s.tid != getpid(), "a second thread has its own tid");
	is_int((int)s.first, (int)getpid(), "it maps to the process");
	is_int((int)s.again, (int)getpid(), "and again");
	/* /proc no longer knows the thread: only the table can answer. */
	is_int((int)kvfs_caller_tgid(s.tid), (int)getpid(),
	       "remembered after the thread is gone");
	is_int((int)kvfs_caller_tgid(getpid()), (int)getpid(),
	       "the main thread is its process");
	is_int((int)kvfs_caller_tgid(0x3ffffff), 0x3ffffff,
	       "a tid that names no thread maps to itself");
	return done_testing();
}
