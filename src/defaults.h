/* Every default value of kvfs, in one place: the option table (config.c)
 * starts from these and prints them in --help, and a module given a NULL
 * config or a zero setting falls back on the same value instead of a
 * literal of its own.  kvfs(8) documents them (tests/integration/test_man.py
 * checks it against --help).  Plain literals, so that --help can quote
 * them with KVFS_STR(); no code, no state. */
#ifndef KVFS_DEFAULTS_H
#define KVFS_DEFAULTS_H

#define KVFS_STR_(x) #x
#define KVFS_STR(x) KVFS_STR_(x)

/* refresh=, max_stale=, deadline=: seconds */
#define KVFS_DEFAULT_REFRESH 300
#define KVFS_DEFAULT_MAX_STALE 86400
#define KVFS_DEFAULT_DEADLINE 10
#define KVFS_DEFAULT_API_VERSION "7.4"
#define KVFS_DEFAULT_KEY_MODE 0400
/* on_change_delay=, on_change_timeout=: seconds */
#define KVFS_DEFAULT_ON_CHANGE_DELAY 2
#define KVFS_DEFAULT_ON_CHANGE_TIMEOUT 60
/* expiring_days=: the window of expiring/, in days */
#define KVFS_DEFAULT_EXPIRING_DAYS 30
/* collections=: the names of the collection table (collection.h) */
#define KVFS_DEFAULT_COLLECTIONS "certificates"
#define KVFS_DEFAULT_IMDS_URL                                                  \
	"http://169.254.169.254/metadata/identity/oauth2/token"

/* The FUSE loop's threads, and the HTTP client's idle handles: at least
 * as many as requests can be in flight at once, one per FUSE thread and
 * one for each background thread (token refresh, revalidation), with room
 * to spare.  With fewer, every handle beyond the pool closes its
 * connection after its request, and the next pays a new TCP and TLS
 * handshake. */
#define KVFS_FUSE_MAX_THREADS 32
#define KVFS_HTTP_POOL_MAX (KVFS_FUSE_MAX_THREADS + 8)

/* .kvfs/events: the lines a reader's queue holds before it overflows;
 * the reads that may wait for a line at once, each holding a FUSE thread
 * of its own on top of KVFS_FUSE_MAX_THREADS (one more gets EAGAIN); how
 * often a waiting read looks whether it was interrupted or the mount is
 * going away (ms), when no signal told it. */
#define KVFS_EVENTS_QUEUE_MAX 1024
#define KVFS_EVENTS_WAITERS_MAX 16
#define KVFS_EVENTS_CHECK_MS 500
/* .kvfs/events: the objects of one revalidation whose version kvfs
 * fetches for the lines (the GETs the next opens would make); past them,
 * a line carries the version only when the cache already has it. */
#define KVFS_EVENTS_VERSION_FETCHES_MAX 64

/* The HTTP client's own, for a caller that sets no timeout: connecting,
 * and the whole transfer (one deadline=, the budget of a file
 * operation). */
#define KVFS_DEFAULT_HTTP_CONNECT_TIMEOUT_MS 5000
#define KVFS_DEFAULT_HTTP_TIMEOUT_MS (KVFS_DEFAULT_DEADLINE * 1000)

#endif
