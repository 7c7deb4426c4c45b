#include "base/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

struct dv_hash128 dv_key_hash128(const void *key, size_t len)
{
	XXH128_hash_t h = XXH3_128bits(key, len);
	struct dv_hash128 out = {.lo = h.low64, .hi = h.high64};
	return out;
}

uint64_t dv_key_hash64(const void *key, size_t len)
{
	return XXH3_128bits(key, len).low64;
}

uint64_t dv_checksum64(const void *data, size_t len)
{
	return XXH3_64bits_withSeed(data, len, 0x64796e766d65ull /* "dynvme" */);
}
