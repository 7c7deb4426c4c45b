/* hash.h - key hashing and record checksums (XXH3 from libxxhash).
 *
 * dv_key_hash64 places a key in the index; dv_key_hash128 identifies a key
 * during recovery (zone indexes store it), where a collision would merge
 * two keys; dv_checksum64 covers on-disk structures. */
#ifndef DV_HASH_H
#define DV_HASH_H

#include <stddef.h>
#include <stdint.h>

struct dv_hash128 {
	uint64_t lo;
	uint64_t hi;
};

uint64_t dv_key_hash64(const void *key, size_t len);
struct dv_hash128 dv_key_hash128(const void *key, size_t len);
uint64_t dv_checksum64(const void *data, size_t len);

/* The 64-bit hash is the low half of the 128-bit one, so recovery can
 * derive the index hash from a zone-index entry without the key. */
static inline uint64_t dv_hash128_to64(struct dv_hash128 h) { return h.lo; }

#endif
