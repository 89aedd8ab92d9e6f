/* The secrets of a mount's certificate versions: the state machine of each
 * (none, loading, ready, failed for a while), its single flight, and the
 * GET that builds the files.  One mutex and condition variable for all of
 * them; the vault call and every log line happen with the mutex released
 * (lines are composed under it and written after). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "certsecret.h"
#include "defaults.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct kvfs_certsecrets {
	const struct kvfs_config *config;
	struct kvfs_vault *vault;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a secret's flight landed */
};

void kvfs_certsecret_free(struct kvfs_certsecret *s)
{
	if (!s)
		return;
	kvfs_pki_secret_files_clear(&s->files);
	free(s);
}

int kvfs_certsecrets_new(const struct kvfs_config *c, struct kvfs_vault *v,
			 struct kvfs_certsecrets **ret)
{
	struct kvfs_certsecrets *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	/* Waits are bounded by the deadline on the monotonic clock, so a
	 * clock step never makes a reader wait longer. */
	r = kvfs_cond_init_monotonic(&s->cond);
	if (r < 0) {
		free(s);
		return r;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->config = c;
	s->vault = v;
	*ret = s;
	return 0;
}

void kvfs_certsecrets_free(struct kvfs_certsecrets *s)
{
	if (!s)
		return;
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* How long a failure that says something about the secret is kept (ms). */
static int64_t failed_keep_ms(const struct kvfs_certsecrets *s)
{
	unsigned seconds = s->config && s->config->refresh
				   ? s->config->refresh
				   : KVFS_DEFAULT_REFRESH;

	return 1000 * (int64_t)seconds;
}

/* GET the secret the bundle names and build its files.  Runs without the
 * lock.  -EACCES (refused: not this identity's to read, or disabled),
 * -EBADMSG (the secret does not make files for this certificate), -EIO. */
static int secret_fetch(struct kvfs_certsecrets *s, const struct kvfs_files *f,
			struct kvfs_pki_secret_files *ret)
{
	_cleanup_(kvfs_secret_clear) struct kvfs_secret sec = {0};
	const struct kvfs_cert_bundle *b = kvfs_files_cert_bundle(f);
	struct kvfs_error err;
	char msg[512];
	int r;

	kvfs_error_clear(&err);
	r = kvfs_vault_get_secret(s->vault, b->sid, &sec, &err);
	if (r < 0) {
		if (kvfs_vault_error_secret_disabled(&err)) {
			/* Not an authentication failure: the version is
			 * disabled, and its files closed anyway. */
			log_info("the secret of '%s/%s' is disabled", b->name,
				 b->version);
			return -EACCES;
		}
		kvfs_files_fetch_failed(&err,
					"cannot get the secret of '%s/%s'",
					b->name, b->version);
		/* A body that did not parse says nothing lasting about the
		 * secret: -EIO, not kept. */
		return r == -EACCES ? r : -EIO;
	}
	r = kvfs_pki_secret_files(
		sec.value, sec.value_len,
		sec.content_type ? sec.content_type : b->content_type, b->der,
		b->der_len, b->name, ret, msg, sizeof(msg));
	if (r == -EBADMSG)
		log_warning("certificate '%s/%s': %s", b->name, b->version,
			    msg);
	return r;
}

int kvfs_certsecrets_get(struct kvfs_certsecrets *s, struct kvfs_files *f,
			 bool fetch, int64_t deadline_ms,
			 const struct kvfs_pki_secret_files **ret)
{
	struct kvfs_certsecret **place = kvfs_files_certsecret(f), *cs;
	struct kvfs_pki_secret_files sf = {0};
	struct kvfs_log_deferred why = {0};
	bool waited = false;
	int r;

	pthread_mutex_lock(&s->lock);
	if (!*place && fetch)
		*place = calloc(1, sizeof(**place));
	cs = *place;
	if (!cs) {
		r = fetch ? -ENOMEM : -ENODATA;
		goto out;
	}
	for (;;) {
		if (kvfs_flight_busy_locked(&cs->flight)) {
			if (!fetch) {
				r = -ENODATA;
				goto out;
			}
			waited = true;
			if (kvfs_flight_wait_locked(&cs->flight, &s->lock,
						    &s->cond, deadline_ms,
						    NULL) < 0) {
				kvfs_log_defer(&why, NULL, KVFS_LOG_WARNING,
					       "certificate '%s': no secret "
					       "from the vault within the "
					       "deadline",
					       kvfs_files_name(f));
				r = -EIO;
				goto out;
			}
			continue;
		}
		switch (cs->state) {
		case KVFS_CERTSECRET_READY:
			if (fetch)
				kvfs_metrics_cache(KVFS_OBJ_SECRET, true);
			*ret = &cs->files;
			r = 0;
			goto out;
		case KVFS_CERTSECRET_FAILED:
			if (kvfs_now_ms() < cs->failed_until) {
				r = cs->failed_r;
				goto out;
			}
			cs->state = KVFS_CERTSECRET_NONE;
			continue;
		case KVFS_CERTSECRET_NONE:
			break;
		}
		/* A failure is handed to the waiters of its flight, and
		 * not kept unless it says something about the secret. */
		if (!fetch || waited) {
			r = fetch ? -EIO : -ENODATA;
			goto out;
		}
		break;
	}

	(void)kvfs_flight_begin_locked(&cs->flight);
	kvfs_metrics_cache(KVFS_OBJ_SECRET, false);
	pthread_mutex_unlock(&s->lock);
	r = secret_fetch(s, f, &sf);
	pthread_mutex_lock(&s->lock);
	if (r == 0) {
		cs->files = sf;
		cs->state = KVFS_CERTSECRET_READY;
		*ret = &cs->files;
	} else if (r == -EACCES || r == -EBADMSG) {
		cs->failed_r = r == -EACCES ? -EACCES : -EIO;
		cs->failed_until = kvfs_now_ms() + failed_keep_ms(s);
		cs->state = KVFS_CERTSECRET_FAILED;
		r = cs->failed_r;
	} else {
		cs->state = KVFS_CERTSECRET_NONE;
		r = -EIO;
	}
	kvfs_flight_end_locked(&cs->flight, &s->cond, r);
out:
	pthread_mutex_unlock(&s->lock);
	kvfs_log_flush(&why);
	return r;
}
