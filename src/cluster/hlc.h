/* hlc.h - hybrid logical clock (Kulkarni et al.): timestamps that follow
 * wall time but never go backwards and order causally related events even
 * under clock skew. A timestamp is 48 bits of unix ms << 16 | a 16-bit
 * logical counter. Time is an input (wall_ms from the driver), so the same
 * calls give the same stamps in the simulator.
 *
 * Contract: hlc_now() is strictly greater than every stamp it returned or
 * observed before, and never behind wall_ms; hlc_observe() takes a peer's
 * stamp into account, but a stamp more than HLC_MAX_DRIFT_MS ahead of
 * wall_ms is taken as wall_ms + HLC_MAX_DRIFT_MS (a peer with a broken
 * clock cannot push ours into the future without bound). More than 2^16
 * stamps in one ms carry into the ms part (still increasing; the wall
 * clock catches up). A zeroed struct hlc is a clock that saw nothing.
 * Tests: tests/cluster/test_hlc.c.
 */
#ifndef DV_CLUSTER_HLC_H
#define DV_CLUSTER_HLC_H

#include <stdint.h>

#define HLC_LOGICAL_BITS 16u
#define HLC_MAX_DRIFT_MS 60000u

struct hlc {
	uint64_t last;
};

static inline uint64_t hlc_from_ms(uint64_t ms) { return ms << HLC_LOGICAL_BITS; }
static inline uint64_t hlc_to_ms(uint64_t ts) { return ts >> HLC_LOGICAL_BITS; }

static inline uint64_t hlc_now(struct hlc *h, uint64_t wall_ms)
{
	uint64_t phys = hlc_from_ms(wall_ms);
	h->last = phys > h->last ? phys : h->last + 1;
	return h->last;
}

static inline void hlc_observe(struct hlc *h, uint64_t ts, uint64_t wall_ms)
{
	uint64_t cap = hlc_from_ms(wall_ms + HLC_MAX_DRIFT_MS);
	if (ts > cap)
		ts = cap;
	if (ts > h->last)
		h->last = ts;
}

#endif
