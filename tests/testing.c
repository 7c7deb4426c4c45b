#include "testing.h"

#include <stdint.h>
#include <stdlib.h>

const char *test_tmpdir(void)
{
	const char *d = getenv("DV_TEST_TMP");
	return d && *d ? d : "/tmp";
}

uint64_t test_seed(uint64_t fallback)
{
	const char *s = getenv("DV_SEED");
	uint64_t seed = s && *s ? strtoull(s, NULL, 0) : fallback;
	fprintf(stderr, "seed %" PRIu64 " (replay with DV_SEED=%" PRIu64 ")\n", seed, seed);
	return seed;
}

uint64_t test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
