/* Pins (pins.h): a hash table of chains for finding, and a queue in the
 * order pins were queued for expiry.  Every pin lives the same few
 * seconds from its last use, so dropping the expired ones is popping the
 * queue's head: no pass over the table on an open.  A pin renewed since
 * it was queued is not moved at once (that would take a doubly linked
 * queue); when it reaches the head it goes to the tail with its new time,
 * which is the latest of all, since every renewal is "now plus the same
 * lifetime".  (The lifetime may change while pins exist, in tests; then a
 * pin can outlive its time behind an older one, and find still checks
 * the time.) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pins.h"
#include "util.h"

#define BUCKETS_MIN 64

struct pin {
	int64_t tgid;
	enum kvfs_collection coll;
	uint64_t hash;
	char *name;
	void *obj;	/* NULL once ended, until the queue drops it */
	unsigned files; /* the files opened under it */
	int64_t until;
	int64_t queued;	     /* its until when it was queued */
	struct pin *chain;   /* next in its bucket */
	struct pin **pchain; /* what points at it in its bucket */
	struct pin *next;    /* added after it */
};

struct kvfs_pins {
	void (*unref)(void *obj);
	struct pin **buckets;
	size_t nbuckets; /* a power of two, or 0 before the first pin */
	size_t n;
	struct pin *head, *tail; /* oldest, newest */
};

/* The name without case, then the process and the collection. */
static uint64_t pin_hash(int64_t tgid, enum kvfs_collection coll,
			 const char *name)
{
	uint64_t h = (kvfs_fnv1a(name, true) ^ (uint64_t)tgid ^
		      ((uint64_t)coll << 56)) *
		     1099511628211ULL;

	return h ^ (h >> 29);
}

struct kvfs_pins *kvfs_pins_new(void (*unref)(void *obj))
{
	struct kvfs_pins *pins = calloc(1, sizeof(*pins));

	if (pins)
		pins->unref = unref;
	return pins;
}

static void chain_insert(struct pin **bucket, struct pin *p)
{
	p->chain = *bucket;
	if (p->chain)
		p->chain->pchain = &p->chain;
	p->pchain = bucket;
	*bucket = p;
}

static void pin_drop(struct kvfs_pins *pins, struct pin *p)
{
	*p->pchain = p->chain;
	if (p->chain)
		p->chain->pchain = p->pchain;
	if (p->obj)
		pins->unref(p->obj);
	free(p->name);
	free(p);
	pins->n--;
}

static void queue_append(struct kvfs_pins *pins, struct pin *p)
{
	p->queued = p->until;
	p->next = NULL;
	if (pins->tail)
		pins->tail->next = p;
	else
		pins->head = p;
	pins->tail = p;
}

static void expire(struct kvfs_pins *pins, int64_t now)
{
	while (pins->head && pins->head->queued <= now) {
		struct pin *p = pins->head;

		pins->head = p->next;
		if (!pins->head)
			pins->tail = NULL;
		if (p->until > now)
			queue_append(pins, p); /* renewed: later */
		else
			pin_drop(pins, p);
	}
}

void kvfs_pins_free(struct kvfs_pins *pins)
{
	if (!pins)
		return;
	expire(pins, INT64_MAX);
	free(pins->buckets);
	free(pins);
}

static struct pin *pin_find(struct kvfs_pins *pins, int64_t tgid,
			    enum kvfs_collection coll, const char *name,
			    int64_t now)
{
	uint64_t h;

	expire(pins, now);
	if (pins->n == 0)
		return NULL;
	h = pin_hash(tgid, coll, name);
	for (struct pin *p = pins->buckets[h & (pins->nbuckets - 1)]; p;
	     p = p->chain)
		if (p->hash == h && p->tgid == tgid && p->coll == coll &&
		    p->until > now && p->obj && strcasecmp(p->name, name) == 0)
			return p;
	return NULL;
}

void *kvfs_pins_find(struct kvfs_pins *pins, int64_t tgid,
		     enum kvfs_collection coll, const char *name, int64_t now)
{
	struct pin *p = pin_find(pins, tgid, coll, name, now);

	return p ? p->obj : NULL;
}

void *kvfs_pins_renew(struct kvfs_pins *pins, int64_t tgid,
		      enum kvfs_collection coll, const char *name,
		      unsigned file, int64_t now, int64_t until)
{
	struct pin *p = pin_find(pins, tgid, coll, name, now);

	if (!p)
		return NULL;
	if (p->files & file) {
		/* Ended: its reference goes now, the rest when the queue
		 * reaches it. */
		pins->unref(p->obj);
		p->obj = NULL;
		return NULL;
	}
	p->files |= file;
	if (until > p->until)
		p->until = until;
	return p->obj;
}

/* Twice the buckets once there are twice as many pins as buckets. */
static int grow(struct kvfs_pins *pins)
{
	size_t nb = pins->nbuckets ? pins->nbuckets * 2 : BUCKETS_MIN;
	struct pin **b;

	if (pins->n < 2 * pins->nbuckets)
		return 0;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return pins->nbuckets ? 0 : -ENOMEM; /* longer chains */
	for (struct pin *p = pins->head; p; p = p->next)
		chain_insert(&b[p->hash & (nb - 1)], p);
	free(pins->buckets);
	pins->buckets = b;
	pins->nbuckets = nb;
	return 0;
}

int kvfs_pins_add(struct kvfs_pins *pins, int64_t tgid,
		  enum kvfs_collection coll, const char *name, unsigned file,
		  void *obj, int64_t until)
{
	struct pin *p;

	if (grow(pins) < 0)
		return -ENOMEM;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(name))) {
		free(p);
		return -ENOMEM;
	}
	p->tgid = tgid;
	p->coll = coll;
	p->hash = pin_hash(tgid, coll, name);
	p->obj = obj;
	p->files = file;
	p->until = until;
	chain_insert(&pins->buckets[p->hash & (pins->nbuckets - 1)], p);
	queue_append(pins, p);
	pins->n++;
	return 0;
}

size_t kvfs_pins_count(const struct kvfs_pins *pins)
{
	return pins->n;
}
