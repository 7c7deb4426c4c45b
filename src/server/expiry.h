/* expiry.h - the keys with a time to live that the engine deletes when
 * they are due (active expiry), soonest first.
 *
 * Contract:
 * - One entry per key, whatever the number of its writes: expiry_note()
 *   after every durable write of a key sets its entry to that write's
 *   expiry and seq, and drops it for a write without expiry or a DEL. A
 *   note whose seq is below the entry's (a record older than the one
 *   noted: what a scan of the store saw before a newer write) changes
 *   nothing; seqs grow with every write of the store (store.h).
 * - Bounded: at most keys_max entries and bytes_max bytes of memory
 *   (entries, their key copies, the index); a key that does not fit is
 *   not kept and expiry_note() returns false: the caller must find it
 *   another way (engine.c scans the store). Memory is given back as the
 *   entries go.
 * - expiry_pop_due() removes and returns an entry due at `now` (soonest
 *   first); the key copy is the caller's then (free()).
 * - Not thread-safe: the engine's host thread only.
 */
#ifndef DV_SERVER_EXPIRY_H
#define DV_SERVER_EXPIRY_H

#include <stdbool.h>
#include <stdint.h>

#define EXPIRY_KEYS_MAX (1u << 20)         /* default bound on the keys kept */
#define EXPIRY_BYTES_MAX (128ull << 20)    /* default bound on their memory */

struct expiry;

struct expiry_item {
	char *key;          /* malloc'd: the caller's after expiry_pop_due() */
	uint32_t key_len;
	uint64_t expire_ms; /* unix ms */
	uint64_t seq;       /* the record that expires then */
};

int expiry_open(struct expiry **out, uint32_t keys_max, uint64_t bytes_max);
void expiry_close(struct expiry *x);
/* Change the bounds (tests, tuning); entries past them stay until they go. */
void expiry_set_bounds(struct expiry *x, uint32_t keys_max, uint64_t bytes_max);
/* A durable write of key: expire_ms 0 (no expiry, or a DEL) drops its
 * entry. false only when the key has an expiry and is not kept (bounds,
 * or out of memory). */
bool expiry_note(struct expiry *x, const void *key, uint32_t key_len, uint64_t expire_ms, uint64_t seq);
/* The entry due soonest when it is due at now: removed, into *out. */
bool expiry_pop_due(struct expiry *x, uint64_t now_ms, struct expiry_item *out);
/* Drop every entry. */
void expiry_clear(struct expiry *x);
uint32_t expiry_count(const struct expiry *x);
uint64_t expiry_bytes(const struct expiry *x);

#endif
