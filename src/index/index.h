/* index.h - lock-free in-memory hash index: key hash -> packed location.
 *
 * Contract:
 * - The table is split into 4096 segments by the top 12 bits of the hash.
 *   A segment is an open-addressed table of 64-bit slots: a 19-bit
 *   fingerprint (the next 19 hash bits; it also gives the home slot, so a
 *   segment can be rehashed without the key) and a 44-bit payload (the
 *   location, packed by the storage layer; opaque here).
 * - The index is a multimap on fingerprints: two keys may share one, so a
 *   lookup returns every candidate payload and the caller settles which one
 *   is its key by reading the record.
 * - Entries are identified for update and removal by (hash, exact payload):
 *   a payload (a record's location) is unique in the store.
 * - Readers never block and never take a lock; writers use CAS. Any number of
 *   threads may read and write at once.
 * - A segment grows on its own (no stop-the-world): the writer that finds
 *   it full freezes its slots one by one, copies them to the new table and
 *   marks them moved; readers read through and never wait; other writers
 *   of that one segment wait for the copy (microseconds: a segment is small).
 *   Retired tables are freed once no operation is inside the segment.
 * - RAM: 8 bytes a slot, grown at 3/4 load to 3/8: 11 to 21 bytes a key, 13
 *   at 10 million keys.
 */
#ifndef DV_INDEX_H
#define DV_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#define INDEX_PAYLOAD_BITS 44u
#define INDEX_PAYLOAD_MASK ((1ull << INDEX_PAYLOAD_BITS) - 1)

struct index;

/* Create with room for about capacity_hint keys before the first resize. */
int index_create(struct index **out, uint64_t capacity_hint);
void index_destroy(struct index *idx);

/* A hint, for callers that queue many operations before running them: the
 * slot a lookup or write of hash starts at is loaded into the CPU cache.
 * Changes nothing. */
void index_prefetch(struct index *idx, uint64_t hash);

/* Up to max payloads whose fingerprint matches hash, in probe order.
 * Returns how many were written; more may exist if it returns max. */
unsigned index_lookup(struct index *idx, uint64_t hash, uint64_t *payloads, unsigned max);

/* Add an entry. The caller guarantees no entry exists for the same key.
 * 0, or -ENOMEM when the table cannot grow. */
int index_insert(struct index *idx, uint64_t hash, uint64_t payload);

/* index_insert() for bulk loading (recovery) before anyone else can see
 * the index: same result, without the atomic read-modify-writes. Threads
 * may load at once only hashes of disjoint segments (top 12 bits). */
int index_load(struct index *idx, uint64_t hash, uint64_t payload);

/* Replace the entry (hash, old) by (hash, new) atomically. 0, or -ENOENT
 * when no entry has exactly that payload (it changed or was removed). */
int index_replace(struct index *idx, uint64_t hash, uint64_t old_payload, uint64_t new_payload);

/* Remove the entry (hash, payload). 0 or -ENOENT. */
int index_remove(struct index *idx, uint64_t hash, uint64_t payload);

/* True when an entry (hash, payload) exists. */
bool index_contains(struct index *idx, uint64_t hash, uint64_t payload);

/* Visit every entry whose top 31 hash bits (segment and fingerprint) fall
 * in those of [hash_lo, hash_hi]; the visitor gets the payload and may see
 * a few entries just outside the range (the caller filters). Entries inserted or
 * removed during the walk may or may not be seen. Stops early when the
 * visitor returns false. */
typedef bool (*index_visit_fn)(void *arg, uint64_t payload);
void index_walk(struct index *idx, uint64_t hash_lo, uint64_t hash_hi, index_visit_fn fn, void *arg);

uint64_t index_count(const struct index *idx);      /* live entries */
uint64_t index_bytes(const struct index *idx);      /* RAM held by tables */

#endif
