/* simrng.h - the simulator's one seeded PRNG (splitmix64).
 *
 * Contract: every random choice of a simulated run (network, clocks,
 * clients, faults, the devices' own fault seeds) is drawn from one
 * struct sim_rng seeded with the run's seed, in a fixed order, so a seed
 * names a whole run. Pure arithmetic: no global state.
 */
#ifndef DV_SIM_SIMRNG_H
#define DV_SIM_SIMRNG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/assert.h"

struct sim_rng {
	uint64_t s;
};

static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed) { r->s = seed; }

static inline uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (multiply-high: no modulo, bias below 2^-32 for
 * the small n the simulator uses). */
static inline uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
	DV_ASSERT(n > 0);
	return (uint64_t)(((unsigned __int128)sim_rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi], lo <= hi. */
static inline uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
	DV_ASSERT(lo <= hi);
	return hi - lo == UINT64_MAX ? sim_rng_next(r) : lo + sim_rng_below(r, hi - lo + 1);
}

/* True with probability ppm / 10^6; draws nothing when ppm is 0, so a
 * fault switched off does not shift the rest of the run's choices. */
static inline bool sim_rng_ppm(struct sim_rng *r, uint32_t ppm)
{
	return ppm != 0 && sim_rng_below(r, 1000000u) < ppm;
}

#endif
