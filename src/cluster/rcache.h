/* rcache.h - a replica's read cache: store key -> the record its store
 * holds (meta, values, seq), in RAM, so a replica's GET of a key it holds
 * (REPL_GET, a coordinator's own copy, the read of a merge loop) is
 * answered without a device read. Used by replica.c; no I/O of its own.
 *
 * Contract:
 * - An entry is a copy of what a store GET of the key returned, or of what
 *   a PUT of it wrote (the bytes and the seq the store reported), and is
 *   trusted only while no write of the key by this node can have changed
 *   it: rcache_write() drops the key's entry and moves the generation of
 *   its group of buckets when a PUT of the key is submitted and again when
 *   it completes (whatever its result; rcache_put_done is that second
 *   rcache_write and the fill of what was written, in one lookup); a GET's
 *   record is kept (rcache_fill) only when the generation it read at
 *   submission (rcache_gen) is still its group's, so a GET that raced a
 *   write never leaves its older copy (one that raced a write of another
 *   key of its group is not kept either: 16 buckets share a generation).
 *   rcache_clear() drops everything and moves every generation (a flush
 *   applied: the store reclaims what it killed). Every data write of a
 *   cluster node goes through its merge loops (replica.c), so nothing else
 *   changes a record under an entry: the store's GC moves records with the
 *   same bytes and seq, and reclaims only what a flush killed.
 * - Verified or not: an entry a PUT filled holds what was written, not
 *   what the medium holds (a disk may have lost or damaged it); one a GET
 *   filled was read back and its checksums held. rcache_get(verified_only)
 *   answers a client's read only from a verified entry, so the first read
 *   of each write still reaches the medium and finds its damage (then
 *   rcache_forget drops the entry, so the repair's merge loop reads the
 *   damaged copy and replaces it); a merge loop's read (its result is
 *   written over the record) takes either.
 * - A stale entry costs one refused PUT at most: a merge loop's PUT is
 *   conditional on the seq it read (STORE_IF_SEQ), and its submission drops
 *   the entry, so the retry reads the store.
 * - Bounded: at most max_bytes of entries (key, meta and values plus a
 *   header each); the least recently used go first, approximately (second
 *   chance, as CLOCK: a hit only marks its entry, which costs no cache
 *   misses beyond the lookup's; an entry marked when it reaches the end of
 *   the list goes back to the front unmarked, at most RCACHE_SECOND_CHANCES
 *   of them per fill); a record larger than
 *   max_bytes / 8 is not kept. max_bytes 0: off (every call does nothing,
 *   rcache_get finds nothing).
 * - An entry handed out by rcache_get is pinned (rcache_unpin when done):
 *   dropped or evicted meanwhile, it is unlinked at once and freed on the
 *   last unpin, so its bytes stay valid while a completion reads them.
 * - rcache_free frees every entry, pinned or not (the cnode is destroyed:
 *   nobody completes its ops).
 * - One thread: the cnode's.
 */
#ifndef DV_CLUSTER_RCACHE_H
#define DV_CLUSTER_RCACHE_H

#include <stdbool.h>
#include <stdint.h>

/* 48 bytes before the key, meta and values: the header is 20% of an entry
 * of a 100-byte value written once (1M of them: 48 MiB). */
struct rcache_entry {
	uint64_t chain;                  /* hash bucket: a tagged link to the next entry (rcache.c) */
	struct rcache_entry *prev, *next; /* eviction list: newest fill (or second chance) first */
	uint64_t seq;
	uint32_t hash_lo;  /* the key hash's low 32 bits: the bucket, and a quick compare */
	uint32_t val_len : 29;
	uint32_t used : 1;   /* read since it was filled or last given its second chance */
	uint32_t linked : 1; /* in the table and the list (0: dropped, freed at the last unpin) */
	uint32_t verified : 1; /* read back from the medium (a GET's), not only written (a PUT's) */
	uint16_t key_len, meta_len;
	uint32_t pins;
	uint8_t data[]; /* key, meta, values */
};
_Static_assert(sizeof(struct rcache_entry) == 48, "rcache_entry header");

struct rcache {
	uint64_t *buckets; /* tagged links to the first entry (rcache.c) */
	uint32_t *gens;    /* per group of buckets: moves at each write of a key of the group */
	uint32_t mask, gen_mask;
	uint32_t epoch; /* moves at each rcache_clear */
	struct rcache_entry *head, *tail;
	uint64_t bytes, max_bytes, entries;
	uint64_t hits, misses, fills, stale_fills;
};

/* 0, or -ENOMEM. max_bytes 0: an empty cache that keeps nothing. */
int rcache_init(struct rcache *rc, uint64_t max_bytes);
void rcache_free(struct rcache *rc);

static inline const uint8_t *rcache_meta(const struct rcache_entry *e) { return e->data + e->key_len; }
static inline const uint8_t *rcache_vals(const struct rcache_entry *e) { return e->data + e->key_len + e->meta_len; }

/* The entry of key, or NULL: not pinned, not counted (checks only: valid
 * until the next call that changes the cache). */
const struct rcache_entry *rcache_peek(const struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash);
/* The entry of key (hash: dv_key_hash64 of it), pinned, or NULL (also
 * for an entry not verified when verified_only). */
struct rcache_entry *rcache_get(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash,
				bool verified_only);
void rcache_unpin(struct rcache *rc, struct rcache_entry *e);
/* A hint: the bucket and generation a call for hash reads are loaded into
 * the CPU cache. Changes nothing. */
void rcache_prefetch(const struct rcache *rc, uint64_t hash);
/* What a GET submitted now passes to rcache_fill. */
uint64_t rcache_gen(const struct rcache *rc, uint64_t hash);
/* A PUT of key is submitted, or completed (any result). */
void rcache_write(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash);
/* The record the store holds for key now: a GET's of generation gen (kept
 * only if no write of the key began since; verified), or a PUT's just
 * completed (gen = rcache_gen right after its rcache_write; not verified).
 * Copied; a verified fill of the entry's own seq verifies it. */
void rcache_fill(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash, uint64_t gen, uint64_t seq,
		 const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t val_len, bool verified);
/* A PUT of key completed with seq, having written meta and vals: the
 * same as rcache_write then rcache_fill(rcache_gen(), not verified). */
void rcache_put_done(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash, uint64_t seq,
		     const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t val_len);
/* A read of key found its record damaged (or failed): its entry goes. */
void rcache_forget(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash);
void rcache_clear(struct rcache *rc);
/* 0, or -EINVAL if the table's links or counts are wrong, or a lookup
 * would not find an entry, or would find another entry of its key first
 * (tests: it walks every bucket). */
int rcache_check(const struct rcache *rc);

#endif
