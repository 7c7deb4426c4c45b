/* keydeps.h - the keys one connection has store operations of in flight,
 * for read-your-writes without false dependencies (conn.c).
 *
 * Contract:
 * - A key is known by its 64-bit key hash (dv_key_hash64). Two keys with
 *   the same hash share an entry: a command then waits for the other
 *   key's write, which is slower, never wrong (conn.c compares the key
 *   itself where a reply is taken from a write).
 * - An entry exists while it counts something (writes, rmws, parked or
 *   reads non-zero, or last set); keydeps_put() drops one that counts nothing.
 * - Bounded: the table holds at most twice the entries in use, at least
 *   KEYDEPS_SLOTS_MIN slots, and is freed when it empties with more than
 *   KEYDEPS_SLOTS_KEEP; entries are bounded by the connection's ops in
 *   flight and commands pending (NET_CONN_OPS_MAX, max-pipeline).
 * - keydeps_get() never allocates: keydeps_reserve() first makes room for
 *   the new keys a command may add, and is the only call that can fail.
 * - An entry pointer is valid until the next keydeps_reserve() or
 *   keydeps_put() (both move entries).
 * - One thread (the connection's) uses a table; nothing is shared.
 */
#ifndef DV_SERVER_KEYDEPS_H
#define DV_SERVER_KEYDEPS_H

#include <stdbool.h>
#include <stdint.h>

#define KEYDEPS_SLOTS_MIN 64u
#define KEYDEPS_SLOTS_KEEP 1024u

struct eop;

struct keydep {
	uint64_t hash;      /* 0: a free slot (a key hashing to 0 is kept as 1) */
	uint32_t writes;    /* PUT and DEL in flight */
	uint32_t rmws;      /* read-modify-writes in flight */
	uint32_t parked;    /* GETs to be answered from a write of the key once it is back */
	uint32_t reads;     /* GETs in flight, counted in cluster mode only (conn.c) */
	struct eop *last;   /* the latest PUT or DEL of the key in flight, or NULL */
};

struct keydeps {
	struct keydep *slots;
	uint32_t cap;       /* 0 or a power of two */
	uint32_t count;     /* slots in use */
};

void keydeps_init(struct keydeps *t);
void keydeps_free(struct keydeps *t);
/* Room for `more` keys not yet in the table: 0 or -ENOMEM (nothing changed). */
int keydeps_reserve(struct keydeps *t, uint32_t more);
/* The entry of hash, or NULL. */
struct keydep *keydeps_find(const struct keydeps *t, uint64_t hash);
/* The entry of hash, added (all counts 0) when absent; room reserved. */
struct keydep *keydeps_get(struct keydeps *t, uint64_t hash);
/* d was changed: dropped when it counts nothing. */
void keydeps_put(struct keydeps *t, struct keydep *d);
/* A write of every key was submitted (FLUSH): no earlier write is the
 * latest of its key any more (every last is cleared; the counts stay). */
void keydeps_forget_last(struct keydeps *t);
/* Is a GET parked on a write of some key? */
bool keydeps_any_parked(const struct keydeps *t);

#endif
