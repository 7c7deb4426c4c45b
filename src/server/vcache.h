/* vcache.h - the node's value cache: recent values in RAM, so GETs of a
 * data set that fits in memory never touch the device.
 *
 * Contract:
 * - Used by one thread only (the engine's host). Write-through: the engine
 *   calls vcache_put() when a PUT is durable and vcache_forget() when a DEL
 *   is (or when a write's outcome is unknown), so a hit is always the
 *   value a store GET would return at that moment.
 * - A read that missed may fill the cache with what the store returned only
 *   if no write of a key in the same bucket completed since the read was
 *   submitted (vcache_epoch() at submit, vcache_fill() checks), so a slow
 *   read can never put back a value a newer write replaced or deleted.
 * - Memory: entries plus overhead stay under bytes_max (CLOCK eviction);
 *   bytes_max 0 disables the cache (every call is a no-op or a miss).
 * - An expired entry is a miss and is dropped.
 */
#ifndef DV_SERVER_VCACHE_H
#define DV_SERVER_VCACHE_H

#include <stdbool.h>
#include <stdint.h>

struct vcache;

struct vcache_hit {
	const char *val;      /* valid until the next vcache call */
	uint32_t val_len;
	uint64_t expire_ms;
	uint64_t seq;
};

struct vcache_stats {
	uint64_t hits, misses, fills, fills_skipped, evictions, entries, bytes, bytes_max;
};

int vcache_open(struct vcache **out, uint64_t bytes_max);
void vcache_close(struct vcache *c);
bool vcache_get(struct vcache *c, const void *key, uint32_t key_len, uint64_t now_ms, struct vcache_hit *out);
void vcache_put(struct vcache *c, const void *key, uint32_t key_len, const void *val, uint32_t val_len,
		uint64_t expire_ms, uint64_t seq);
void vcache_forget(struct vcache *c, const void *key, uint32_t key_len);
/* Start loading the key's bucket into the CPU cache: call it for a batch of
 * keys, then look them up (the misses overlap instead of queueing). */
void vcache_prefetch(const struct vcache *c, const void *key, uint32_t key_len);
/* Second stage, once the bucket is loaded: start loading its first entry. */
void vcache_prefetch_entry(const struct vcache *c, const void *key, uint32_t key_len);
/* Token for a read about to be submitted; pass it back to vcache_fill. */
uint64_t vcache_epoch(const struct vcache *c);
void vcache_fill(struct vcache *c, uint64_t epoch, const void *key, uint32_t key_len, const void *val,
		 uint32_t val_len, uint64_t expire_ms, uint64_t seq);
void vcache_get_stats(const struct vcache *c, struct vcache_stats *out);
/* Drop every entry (FLUSHALL); reads submitted before it fill nothing. */
void vcache_clear(struct vcache *c);

#endif
