/* The on_change= runner: the pending changes and their debounce under one
 * mutex, a thread that waits for them to be due and runs the command with
 * posix_spawn (no code of ours runs in the child: the file actions put
 * /dev/null and the pipe on 0, 1 and 2 and close every other descriptor,
 * the attributes give it its own process group, an empty signal mask and
 * default dispositions).  The thread waits for the run on the pipe, a
 * pidfd of the command and an eventfd that kvfs_onchange_stop() writes,
 * reading the pipe to its end however much comes; at the timeout the
 * group is killed.  The thread blocks every signal. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/credfile.h"
#include "log.h"
#include "metrics.h"
#include "onchange.h"
#include "util.h"

struct kvfs_onchange {
	const struct kvfs_config *config;
	int wake; /* eventfd: stop */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kvfs_onchange_set pending;
	struct kvfs_onchange_timer timer;
	bool stop;

	pthread_t thread;
	bool started;
};

/* ---- the changed paths ---- */

void kvfs_onchange_set_add(struct kvfs_onchange_set *s,
			   enum kvfs_collection coll, const char *name)
{
	const char *dir = kvfs_collection_info(coll)->name;
	char *path, **v;
	int n;

	s->colls |= 1u << coll;
	if (s->overflow)
		return;
	n = name ? asprintf(&path, "%s/%s", dir, name)
		 : asprintf(&path, "%s", dir);
	if (n < 0) {
		s->overflow = true;
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->paths[i], path) == 0) {
			free(path);
			return;
		}
	if (s->n >= KVFS_ONCHANGE_PATHS_MAX ||
	    !(v = reallocarray(s->paths, s->n + 1, sizeof(*v)))) {
		free(path);
		s->overflow = true;
		return;
	}
	s->paths = v;
	s->paths[s->n++] = path;
}

void kvfs_onchange_set_clear(struct kvfs_onchange_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->paths[i]);
	free(s->paths);
	*s = (struct kvfs_onchange_set){0};
}

static int compare_paths(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* words joined by spaces, into a malloc'ed string */
static int join(char **words, size_t n, char **ret)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	s = p = malloc(len);
	if (!s)
		return -ENOMEM;
	*p = '\0';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? " " : "", words[i]);
	*ret = s;
	return 0;
}

int kvfs_onchange_set_string(const struct kvfs_onchange_set *s, char **ret)
{
	_cleanup_free_ char **sorted = NULL;
	char *dirs[KVFS_COLLECTION_COUNT_];
	size_t len = 0, n = 0;

	for (size_t i = 0; i < s->n; i++)
		len += strlen(s->paths[i]) + 1;
	if (!s->overflow && len <= KVFS_ONCHANGE_CHANGES_MAX) {
		if (s->n == 0)
			return join(NULL, 0, ret);
		sorted = malloc(s->n * sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
		memcpy(sorted, s->paths, s->n * sizeof(*sorted));
		qsort(sorted, s->n, sizeof(*sorted), compare_paths);
		/* A collection's directory goes with every change of an
		 * object in it (its time): the object says more. */
		for (size_t i = 0; i < s->n; i++) {
			size_t m = strlen(sorted[i]);

			if (i + 1 < s->n && !strchr(sorted[i], '/') &&
			    strncmp(sorted[i + 1], sorted[i], m) == 0 &&
			    sorted[i + 1][m] == '/')
				continue;
			sorted[n++] = sorted[i];
		}
		return join(sorted, n, ret);
	}
	/* The collection table is in the order of the names. */
	for (int i = 0; i < KVFS_COLLECTION_COUNT_; i++)
		if (s->colls & (1u << i))
			dirs[n++] = (char *)kvfs_collection_info(
					    (enum kvfs_collection)i)
					    ->name;
	qsort(dirs, n, sizeof(*dirs), compare_paths);
	return join(dirs, n, ret);
}

/* ---- the debounce ---- */

void kvfs_onchange_timer_change(struct kvfs_onchange_timer *t, int64_t now_ms,
				int64_t delay_ms)
{
	if (t->due_ms == 0)
		t->due_ms = now_ms + delay_ms > 0 ? now_ms + delay_ms : 1;
}

bool kvfs_onchange_timer_take(struct kvfs_onchange_timer *t, int64_t now_ms,
			      int64_t *ret_wait_ms)
{
	if (t->due_ms == 0) {
		*ret_wait_ms = -1;
		return false;
	}
	if (now_ms < t->due_ms) {
		*ret_wait_ms = t->due_ms - now_ms;
		return false;
	}
	t->due_ms = 0;
	*ret_wait_ms = -1;
	return true;
}

/* ---- the output excerpt ---- */

void kvfs_onchange_excerpt_add(struct kvfs_onchange_excerpt *e,
			       const char *data, size_t n)
{
	size_t room = sizeof(e->buf) - e->len, take = n < room ? n : room;

	memcpy(e->buf + e->len, data, take);
	e->len += take;
	e->dropped += n - take;
}

void kvfs_onchange_excerpt_escape(const struct kvfs_onchange_excerpt *e,
				  size_t *pos, char *out, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return;
	for (; *pos < e->len; (*pos)++) {
		unsigned char ch = (unsigned char)e->buf[*pos];
		char esc[5];
		size_t m;

		if (ch == '\\')
			m = (size_t)snprintf(esc, sizeof(esc), "\\\\");
		else if (ch == '\n')
			m = (size_t)snprintf(esc, sizeof(esc), "\\n");
		else if (ch == '\t')
			m = (size_t)snprintf(esc, sizeof(esc), "\\t");
		else if (ch < ' ' || ch == 0x7f)
			m = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", ch);
		else
			m = (size_t)snprintf(esc, sizeof(esc), "%c", ch);
		if (o + m > size - 1)
			break;
		memcpy(out + o, esc, m);
		o += m;
	}
	out[o] = '\0';
}

/* ---- a run ---- */

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

struct run {
	enum kvfs_metrics_run result;
	int status; /* of waitpid(), for OK and FAILED */
	int error;  /* errno, for ERROR */
	struct kvfs_onchange_excerpt out;
};

static int spawn(const struct kvfs_config *c, const char *changes, int out,
		 int devnull, pid_t *ret_pid)
{
	_cleanup_free_ char *env_mnt = NULL, *env_changes = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char *argv[] = {c->on_change, NULL};
	int e;

	if (asprintf(&env_mnt, "KVFS_MOUNTPOINT=%s", c->mountpoint) < 0 ||
	    asprintf(&env_changes, "KVFS_CHANGES=%s", changes) < 0)
		return -ENOMEM;
	{
		char *envp[] = {(char *)"PATH=" KVFS_ONCHANGE_PATH, env_mnt,
				env_changes, NULL};

		sigemptyset(&none);
		sigfillset(&all);
		sigdelset(&all, SIGKILL);
		sigdelset(&all, SIGSTOP);
		if ((e = posix_spawn_file_actions_init(&fa)) != 0)
			return -e;
		if ((e = posix_spawnattr_init(&attr)) != 0) {
			posix_spawn_file_actions_destroy(&fa);
			return -e;
		}
		if (!(e = posix_spawn_file_actions_adddup2(&fa, devnull, 0)) &&
		    !(e = posix_spawn_file_actions_adddup2(&fa, out, 1)) &&
		    !(e = posix_spawn_file_actions_adddup2(&fa, out, 2)) &&
		    !(e = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) &&
		    !(e = posix_spawnattr_setflags(
			      &attr, POSIX_SPAWN_SETPGROUP |
					     POSIX_SPAWN_SETSIGMASK |
					     POSIX_SPAWN_SETSIGDEF)) &&
		    !(e = posix_spawnattr_setpgroup(&attr, 0)) &&
		    !(e = posix_spawnattr_setsigmask(&attr, &none)) &&
		    !(e = posix_spawnattr_setsigdefault(&attr, &all)))
			e = posix_spawn(ret_pid, c->on_change, &fa, &attr, argv,
					envp);
		posix_spawnattr_destroy(&attr);
		posix_spawn_file_actions_destroy(&fa);
	}
	return -e;
}

/* Read what the pipe has: 1 when something came, 0 at its end, -errno
 * (-EAGAIN: nothing now). */
static int drain(int fd, struct kvfs_onchange_excerpt *out)
{
	char buf[16384];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	kvfs_onchange_excerpt_add(out, buf, (size_t)n);
	return 1;
}

/* Wait for the command pid, reading its output from out, until it exits,
 * the timeout passes or stop is asked (wake).  Reaps it. */
static void wait_run(struct kvfs_onchange *o, pid_t pid, int out,
		     struct run *run)
{
	int64_t deadline =
		kvfs_now_ms() + (int64_t)o->config->on_change_timeout * 1000;
	_cleanup_(closep) int pidfd = pidfd_open(pid, 0);
	bool open_out = true, exited = false;

	while (!exited) {
		struct pollfd p[3] = {
			{.fd = pidfd, .events = POLLIN},
			{.fd = o->wake, .events = POLLIN},
			{.fd = open_out ? out : -1, .events = POLLIN},
		};
		int64_t wait = deadline - kvfs_now_ms();
		int n;

		if (wait <= 0)
			break;
		n = poll(p, 3, wait > 1000 ? 1000 : (int)wait);
		if (n < 0 && errno != EINTR)
			break;
		if (p[2].revents) {
			int d = drain(out, &run->out);

			open_out = d > 0 || d == -EINTR || d == -EAGAIN;
		}
		if (p[1].revents)
			break;
		if (p[0].revents ||
		    (pidfd < 0 && waitpid(pid, &run->status, WNOHANG) == pid))
			exited = true;
	}
	if (!exited) {
		/* the timeout, stop, or no way to watch it */
		(void)kill(-pid, SIGKILL);
		run->result = __atomic_load_n(&o->stop, __ATOMIC_ACQUIRE)
				      ? KVFS_RUN_ERROR
				      : KVFS_RUN_TIMEOUT;
		run->error = EINTR;
	}
	while (waitpid(pid, &run->status, 0) < 0 && errno == EINTR)
		;
	if (exited)
		run->result =
			WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0
				? KVFS_RUN_OK
				: KVFS_RUN_FAILED;
	/* What it wrote before it exited; a child it left holding the pipe
	 * is not waited for. */
	if (open_out && fcntl(out, F_SETFL, O_NONBLOCK) == 0)
		while (drain(out, &run->out) > 0)
			;
}

static void run_command(struct kvfs_onchange *o, const char *changes,
			struct run *run)
{
	_cleanup_(closep) int devnull = -1, rd = -1, wr = -1;
	struct kvfs_error err;
	int p[2], r;
	pid_t pid;

	/* Checked again: the file may have changed since the mount. */
	kvfs_error_clear(&err);
	r = kvfs_credfile_check(o->config->on_change, KVFS_CREDFILE_EXECUTABLE,
				&err);
	if (r < 0) {
		run->result = KVFS_RUN_ERROR;
		run->error = -r;
		log_error("on_change: not run: %s",
			  err.message[0] ? err.message : strerror(-r));
		return;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || pipe2(p, O_CLOEXEC) < 0) {
		run->result = KVFS_RUN_ERROR;
		run->error = errno;
		return;
	}
	rd = p[0];
	wr = p[1];
	r = spawn(o->config, changes, wr, devnull, &pid);
	if (r < 0) {
		run->result = KVFS_RUN_ERROR;
		run->error = -r;
		return;
	}
	/* Only the command holds the writing end now: its exit ends the
	 * pipe. */
	close(wr);
	wr = -1;
	wait_run(o, pid, rd, run);
}

/* The run's lines: its result, then its output, escaped, a few lines. */
static void log_run(const struct kvfs_config *c, const char *changes,
		    const struct run *run)
{
	char text[768];
	size_t pos = 0;
	int level =
		run->result == KVFS_RUN_OK ? KVFS_LOG_NOTICE : KVFS_LOG_WARNING;

	switch (run->result) {
	case KVFS_RUN_OK:
	case KVFS_RUN_FAILED:
		if (WIFEXITED(run->status))
			kvfs_log(level,
				 "on_change: '%s' exited with status %d "
				 "(KVFS_CHANGES=%.200s%s)",
				 c->on_change, WEXITSTATUS(run->status),
				 changes, strlen(changes) > 200 ? "..." : "");
		else
			kvfs_log(level,
				 "on_change: '%s' killed by signal %d "
				 "(KVFS_CHANGES=%.200s%s)",
				 c->on_change, WTERMSIG(run->status), changes,
				 strlen(changes) > 200 ? "..." : "");
		break;
	case KVFS_RUN_TIMEOUT:
		kvfs_log(level,
			 "on_change: '%s' killed after on_change_timeout=%u "
			 "seconds",
			 c->on_change, c->on_change_timeout);
		break;
	default:
		kvfs_log(level, "on_change: '%s' not run to its end: %s",
			 c->on_change, strerror(run->error));
		break;
	}
	while (pos < run->out.len) {
		size_t from = pos;

		kvfs_onchange_excerpt_escape(&run->out, &pos, text,
					     sizeof(text));
		kvfs_log(level, "on_change output: %s", text);
		if (pos == from)
			break;
	}
	if (run->out.dropped)
		kvfs_log(level, "on_change output: %llu more bytes not logged",
			 (unsigned long long)run->out.dropped);
}

static void *onchange_main(void *data)
{
	struct kvfs_onchange *o = data;
	sigset_t all;

	/* Signals go to the other threads; the command gets a clean mask
	 * (spawn()). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		struct kvfs_onchange_set set;
		_cleanup_free_ char *changes = NULL;
		struct run run = {.result = KVFS_RUN_ERROR};
		int64_t wait;

		if (!kvfs_onchange_timer_take(&o->timer, kvfs_now_ms(),
					      &wait)) {
			if (wait < 0) {
				pthread_cond_wait(&o->cond, &o->lock);
			} else {
				struct timespec ts = kvfs_ms_to_timespec(
					kvfs_now_ms() + wait);

				pthread_cond_timedwait(&o->cond, &o->lock, &ts);
			}
			continue;
		}
		set = TAKE_STRUCT(o->pending);
		pthread_mutex_unlock(&o->lock);

		if (kvfs_onchange_set_string(&set, &changes) < 0)
			run.error = ENOMEM;
		else
			run_command(o, changes, &run);
		kvfs_onchange_set_clear(&set);
		kvfs_metrics_on_change(run.result);
		log_run(o->config, changes ? changes : "", &run);

		pthread_mutex_lock(&o->lock);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* ---- life ---- */

int kvfs_onchange_new(const struct kvfs_config *c, struct kvfs_onchange **ret,
		      struct kvfs_error *err)
{
	struct kvfs_onchange *o;
	int r;

	*ret = NULL;
	if (!c->on_change)
		return 0;
	r = kvfs_credfile_check(c->on_change, KVFS_CREDFILE_EXECUTABLE, err);
	if (r < 0)
		return r;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->config = c;
	o->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->wake < 0) {
		r = -errno;
		free(o);
		return r;
	}
	r = kvfs_cond_init_monotonic(&o->cond);
	if (r < 0) {
		close(o->wake);
		free(o);
		return r;
	}
	pthread_mutex_init(&o->lock, NULL);
	*ret = o;
	return 0;
}

int kvfs_onchange_start(struct kvfs_onchange *o)
{
	int e;

	if (!o)
		return 0;
	e = pthread_create(&o->thread, NULL, onchange_main, o);
	if (e != 0) {
		log_error("cannot start the on_change thread: %s", strerror(e));
		return -e;
	}
	o->started = true;
	return 0;
}

void kvfs_onchange_stop(struct kvfs_onchange *o)
{
	uint64_t one = 1;

	if (!o || !o->started)
		return;
	pthread_mutex_lock(&o->lock);
	__atomic_store_n(&o->stop, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	/* a run in progress is killed */
	(void)!write(o->wake, &one, sizeof(one));
	pthread_join(o->thread, NULL);
	o->started = false;
}

void kvfs_onchange_free(struct kvfs_onchange *o)
{
	if (!o)
		return;
	kvfs_onchange_stop(o);
	kvfs_onchange_set_clear(&o->pending);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	close(o->wake);
	free(o);
}

void kvfs_onchange_add(struct kvfs_onchange *o, enum kvfs_collection coll,
		       const char *name)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	kvfs_onchange_set_add(&o->pending, coll, name);
	kvfs_onchange_timer_change(&o->timer, kvfs_now_ms(),
				   (int64_t)o->config->on_change_delay * 1000);
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}
