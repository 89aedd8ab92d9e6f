/* The process behind a FUSE request.  FUSE names the calling thread; pins
 * (pins.h) are per process, as a program's threads share what they load.
 * Thread-safe. */
#ifndef KVFS_CALLER_H
#define KVFS_CALLER_H

#include <stdint.h>
#include <sys/types.h>

/* The thread group of thread tid, or tid itself when /proc does not say
 * (the thread is gone, or /proc is not there). */
int64_t kvfs_caller_tgid(pid_t tid);

#endif
