/* test_hlc.c - the hybrid logical clock (src/cluster/hlc.h): monotonic
 * whatever the wall clock does, observe() orders causally related stamps
 * across skewed nodes, and a stamp too far ahead is clamped. */
#include <stdint.h>

#include "cluster/hlc.h"
#include "testing.h"

#define T0 1700000000000ull /* a unix time in ms */

static void test_follows_wall(void)
{
	struct hlc h = {0};
	CHECK_EQ(hlc_now(&h, T0), hlc_from_ms(T0));
	CHECK_EQ(hlc_now(&h, T0), hlc_from_ms(T0) + 1); /* same ms: the logical part */
	CHECK_EQ(hlc_now(&h, T0 + 5), hlc_from_ms(T0 + 5));
	CHECK_EQ(hlc_to_ms(hlc_now(&h, T0 + 5)), T0 + 5);
	/* the wall clock going back does not take the stamps with it */
	uint64_t before = h.last;
	CHECK_EQ(hlc_now(&h, T0 - 1000), before + 1);
	CHECK_EQ(hlc_now(&h, T0 + 6), hlc_from_ms(T0 + 6));
}

static void test_monotonic_random(uint64_t seed)
{
	uint64_t rng = seed;
	struct hlc h = {0}, twin = {0};
	uint64_t wall = T0, prev = 0;
	for (unsigned i = 0; i < 200000; i++) {
		uint64_t r = test_rand(&rng);
		switch (r % 8) {
		case 0: wall -= r >> 60; break;          /* back a little */
		case 1: wall -= (r >> 40) % 100000; break; /* back a lot */
		case 2: wall += (r >> 40) % 100000; break; /* a jump ahead */
		default: wall += (r >> 62); break;        /* 0..3 ms on */
		}
		uint64_t ts;
		if (r % 5 == 0) {
			/* a peer's stamp, from up to 2 drifts behind to 2 ahead */
			uint64_t span = 4ull * HLC_MAX_DRIFT_MS;
			uint64_t peer = hlc_from_ms(wall - 2 * HLC_MAX_DRIFT_MS + (r >> 20) % span) + (r & 0xffff);
			hlc_observe(&h, peer, wall);
			hlc_observe(&twin, peer, wall);
			uint64_t cap = hlc_from_ms(wall + HLC_MAX_DRIFT_MS);
			ts = hlc_now(&h, wall);
			CHECK(ts > (peer < cap ? peer : cap));
		} else {
			ts = hlc_now(&h, wall);
		}
		CHECK(ts > prev);                          /* strictly increasing */
		CHECK(hlc_to_ms(ts) >= wall);              /* never behind the wall clock */
		CHECK(hlc_now(&twin, wall) == ts);         /* time is an input: same calls, same stamps */
		prev = ts;
	}
}

static void test_observe(void)
{
	struct hlc h = {0};
	uint64_t mine = hlc_now(&h, T0);
	hlc_observe(&h, hlc_from_ms(T0 - 10), T0); /* an older stamp changes nothing */
	CHECK_EQ(hlc_now(&h, T0), mine + 1);
	uint64_t ahead = hlc_from_ms(T0 + 500) + 7; /* a peer 500 ms ahead */
	hlc_observe(&h, ahead, T0);
	CHECK_EQ(hlc_now(&h, T0), ahead + 1);
	CHECK_EQ(hlc_now(&h, T0 + 1), ahead + 2); /* still ahead of our wall clock */
	CHECK_EQ(hlc_now(&h, T0 + 501), hlc_from_ms(T0 + 501));

	/* Causality across skewed nodes: a stamp sent by a (clock 300 ms
	 * fast) and observed by b orders b's next write after it. */
	struct hlc a = {0}, b = {0};
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t wall = T0 + i;
		uint64_t sent = hlc_now(&a, wall + 300);
		hlc_observe(&b, sent, wall);
		uint64_t reply = hlc_now(&b, wall);
		CHECK(reply > sent);
		hlc_observe(&a, reply, wall + 300);
		CHECK(hlc_now(&a, wall + 300) > reply);
	}
}

static void test_drift_clamp(void)
{
	struct hlc h = {0};
	hlc_now(&h, T0);
	uint64_t cap = hlc_from_ms(T0 + HLC_MAX_DRIFT_MS);
	hlc_observe(&h, cap - 1, T0); /* within the drift: taken */
	CHECK_EQ(h.last, cap - 1);
	hlc_observe(&h, hlc_from_ms(T0 + 10 * HLC_MAX_DRIFT_MS), T0); /* a broken clock */
	CHECK_EQ(h.last, cap);
	hlc_observe(&h, UINT64_MAX, T0);
	CHECK_EQ(h.last, cap);
	CHECK_EQ(hlc_now(&h, T0), cap + 1);
	/* the clamp follows our wall clock: later, the same stamp goes further */
	hlc_observe(&h, UINT64_MAX, T0 + 1000);
	CHECK_EQ(h.last, hlc_from_ms(T0 + 1000 + HLC_MAX_DRIFT_MS));
}

static void test_logical_carry(void)
{
	/* More than 2^16 stamps in one ms carry into the ms part, still
	 * strictly increasing, and the wall clock catches up. */
	struct hlc h = {0};
	uint64_t prev = 0;
	for (unsigned i = 0; i < (1u << HLC_LOGICAL_BITS) + 10; i++) {
		uint64_t ts = hlc_now(&h, T0);
		CHECK(ts > prev);
		prev = ts;
	}
	CHECK_EQ(hlc_to_ms(prev), T0 + 1);
	CHECK_EQ(hlc_now(&h, T0 + 2), hlc_from_ms(T0 + 2));
}

int main(void)
{
	test_begin("hlc");
	test_follows_wall();
	test_monotonic_random(test_seed(42));
	test_observe();
	test_drift_clamp();
	test_logical_carry();
	test_end("hlc");
	return test_soft_failures() == 0 ? 0 : 1;
}
