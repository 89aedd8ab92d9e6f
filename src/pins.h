/* Pins: which version of a certificate directory a process saw first, kept
 * for a few seconds after each of its opens there so that its next opens
 * get the same one (nginx reads fullchain.pem and privkey.pem with
 * separate opens), until it opens one of the files a second time: that
 * starts a new sequence, so a process that polls a file sees a rotation
 * however often it polls.  Files are bits of an unsigned, the caller's
 * to number.  A table keyed
 * by (process, collection, name, case-insensitively) of references to an object
 * the caller owns, with O(1) find, add and expiry, since every open of a
 * certificate file asks it.  Times (now, until) are kvfs_now_ms()
 * milliseconds.  Not thread-safe: the cache calls it under its lock. */
#ifndef KVFS_PINS_H
#define KVFS_PINS_H

#include <stddef.h>
#include <stdint.h>

#include "collection.h"

struct kvfs_pins;

/* unref drops the reference a pin holds, when the pin expires or the
 * table is freed. */
struct kvfs_pins *kvfs_pins_new(void (*unref)(void *obj));
void kvfs_pins_free(struct kvfs_pins *pins);

/* The object pinned for (tgid, coll, name) and not expired at now, or
 * NULL; borrowed.  Expired pins are dropped on the way. */
void *kvfs_pins_find(struct kvfs_pins *pins, int64_t tgid,
		     enum kvfs_collection coll, const char *name, int64_t now);

/* kvfs_pins_find() for an open of file (one bit): the pin found lives on
 * until until (if that is later than it would) and counts file as opened.
 * If file was opened under it already, the pin ends (its reference is
 * dropped) and the result is NULL, as for no pin. */
void *kvfs_pins_renew(struct kvfs_pins *pins, int64_t tgid,
		      enum kvfs_collection coll, const char *name,
		      unsigned file, int64_t now, int64_t until);

/* Pin obj for (tgid, coll, name), file opened under it, until until; the table
 * takes the caller's reference on success, and -ENOMEM leaves obj to the
 * caller.  Two threads of a process that add the same (tgid, coll, name) at
 * once both succeed, and find returns the newer pin until it expires. */
int kvfs_pins_add(struct kvfs_pins *pins, int64_t tgid,
		  enum kvfs_collection coll, const char *name, unsigned file,
		  void *obj, int64_t until);

/* Pins held now, expired ones not yet dropped included. */
size_t kvfs_pins_count(const struct kvfs_pins *pins);

#endif
