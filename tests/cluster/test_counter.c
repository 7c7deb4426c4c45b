/* test_counter.c - the convergent counter (src/cluster/counter.h).
 *
 * - laws: random states built from random increments of a few actors;
 *   merge is commutative, associative and idempotent, and the merge of any
 *   replicas' states counts every increment once: value = base + the sum
 *   of all deltas, whatever the order and duplication of the merges.
 * - codec: round trips; every truncation, one byte more, and every
 *   single-byte change that breaks a rule (format, order, a zero actor, a
 *   base without a dot) refused.
 * - bounds: COUNTER_ACTORS_MAX actors, inc/dec overflow (-ERANGE, state
 *   unchanged), a value past int64 (-ERANGE).
 * - text: Redis's integer rules (parse) and format, at the limits.
 * DV_SEED=<n> replays the random parts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cluster/counter.h"
#include "testing.h"

static uint64_t rng;
static uint64_t rnd(uint64_t n) { return n ? test_rand(&rng) % n : 0; }

static struct counter roundtrip(const struct counter *c)
{
	uint8_t buf[COUNTER_BYTES_MAX];
	uint32_t n = counter_bytes(c);
	counter_encode(c, buf);
	struct counter d;
	CHECK_EQ(counter_decode(&d, buf, n), 0);
	CHECK(counter_equal(c, &d));
	return d;
}

static void test_laws(void)
{
	test_begin("laws");
	for (unsigned iter = 0; iter < 2000; iter++) {
		/* R replicas; each increment is applied at its actor's replica,
		 * then replicas exchange states at random. */
		enum { R = 4 };
		struct counter rep[R];
		for (unsigned r = 0; r < R; r++)
			counter_init(&rep[r]);
		int64_t want = 0;
		if (rnd(3) == 0) {
			int64_t b = (int64_t)rnd(1000) - 500;
			for (unsigned r = 0; r < R; r++)
				counter_set_base(&rep[r], b, 77, 3); /* every replica converted the same value */
			want = b;
		}
		unsigned steps = (unsigned)rnd(60);
		for (unsigned s = 0; s < steps; s++) {
			unsigned r = (unsigned)rnd(R);
			if (rnd(3)) {
				int64_t d = (int64_t)rnd(2001) - 1000;
				CHECK_EQ(counter_add(&rep[r], 100 + r, d), 0);
				want += d;
			} else {
				unsigned o = (unsigned)rnd(R);
				CHECK_EQ(counter_merge(&rep[r], &rep[o]), 0);
			}
		}
		/* Laws on the states as they are. */
		struct counter a = rep[0], b = rep[1], c = rep[2];
		struct counter ab = a, ba = b;
		CHECK_EQ(counter_merge(&ab, &b), 0);
		CHECK_EQ(counter_merge(&ba, &a), 0);
		CHECK(counter_equal(&ab, &ba));
		struct counter ab_c = ab, bc = b;
		CHECK_EQ(counter_merge(&ab_c, &c), 0);
		CHECK_EQ(counter_merge(&bc, &c), 0);
		struct counter a_bc = a;
		CHECK_EQ(counter_merge(&a_bc, &bc), 0);
		CHECK(counter_equal(&ab_c, &a_bc));
		struct counter aa = a;
		CHECK_EQ(counter_merge(&aa, &a), 0);
		CHECK(counter_equal(&aa, &a));
		/* Everyone meets: every increment counted once. */
		struct counter all = rep[R - 1];
		for (unsigned r = 0; r < R; r++)
			CHECK_EQ(counter_merge(&all, &rep[r]), 0);
		CHECK_EQ(counter_merge(&all, &rep[0]), 0);
		int64_t v;
		CHECK_EQ(counter_value(&all, &v), 0);
		CHECK(v == want);
		roundtrip(&all);
	}
	/* The base of the greater dot wins, whatever the order. */
	struct counter x, y;
	counter_init(&x), counter_init(&y);
	counter_set_base(&x, 10, 5, 2);
	counter_set_base(&y, 20, 5, 3);
	struct counter xy = x, yx = y;
	CHECK_EQ(counter_merge(&xy, &y), 0);
	CHECK_EQ(counter_merge(&yx, &x), 0);
	CHECK(counter_equal(&xy, &yx) && xy.base == 20);
	counter_set_base(&y, 30, 4, 9); /* a smaller dot: ignored */
	CHECK(y.base == 20);
	test_end("laws");
}

static void test_codec(void)
{
	test_begin("codec");
	struct counter c;
	counter_init(&c);
	counter_set_base(&c, -7, 9, 1);
	CHECK_EQ(counter_add(&c, 3, 5), 0);
	CHECK_EQ(counter_add(&c, 1, -2), 0);
	CHECK_EQ(counter_add(&c, 2, INT64_MAX), 0);
	CHECK(c.n == 3 && c.e[0].actor == 1 && c.e[1].actor == 2 && c.e[2].actor == 3);
	uint8_t buf[COUNTER_BYTES_MAX + 1];
	uint32_t n = counter_bytes(&c);
	CHECK_EQ(n, COUNTER_HDR_BYTES + 3 * COUNTER_ENTRY_BYTES);
	counter_encode(&c, buf);
	struct counter d;
	for (uint32_t t = 0; t < n; t++)
		CHECK_EQ(counter_decode(&d, buf, t), -DV_ECORRUPT);
	buf[n] = 0;
	CHECK_EQ(counter_decode(&d, buf, n + 1), -DV_ECORRUPT);
	CHECK_EQ(counter_decode(&d, buf, n), 0);
	/* Bytes whose change must be refused: format, zero byte, n, actors'
	 * order (actor 2 made 1, then 3). */
	const uint32_t bad[] = {0, 1, 2, 3, COUNTER_HDR_BYTES + COUNTER_ENTRY_BYTES};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t save = buf[bad[i]];
		buf[bad[i]] = i == 4 ? 1 : (uint8_t)(save + 1);
		CHECK_EQ(counter_decode(&d, buf, n), -DV_ECORRUPT);
		buf[bad[i]] = save;
	}
	/* A zero actor; a base without a dot. */
	struct counter z;
	counter_init(&z);
	CHECK_EQ(counter_add(&z, 4, 1), 0);
	counter_encode(&z, buf);
	memset(buf + COUNTER_HDR_BYTES, 0, 8);
	CHECK_EQ(counter_decode(&d, buf, counter_bytes(&z)), -DV_ECORRUPT);
	counter_init(&z);
	counter_encode(&z, buf);
	buf[4] = 1; /* base 1, base_actor 0 */
	CHECK_EQ(counter_decode(&d, buf, COUNTER_HDR_BYTES), -DV_ECORRUPT);
	test_end("codec");
}

static void test_bounds(void)
{
	test_begin("bounds");
	struct counter c;
	counter_init(&c);
	for (unsigned i = 0; i < COUNTER_ACTORS_MAX; i++)
		CHECK_EQ(counter_add(&c, 1000 - i, 1), 0);
	struct counter before = c;
	CHECK_EQ(counter_add(&c, 5, 1), -E2BIG);
	CHECK(counter_equal(&c, &before));
	CHECK_EQ(counter_add(&c, 1000, 1), 0); /* an existing actor still can */
	struct counter other;
	counter_init(&other);
	CHECK_EQ(counter_add(&other, 1, 1), 0);
	before = c;
	CHECK_EQ(counter_merge(&c, &other), -E2BIG);
	CHECK(counter_equal(&c, &before));
	/* inc and dec are u64: 2^64 - 1 each at most. */
	counter_init(&c);
	CHECK_EQ(counter_add(&c, 1, INT64_MAX), 0);
	CHECK_EQ(counter_add(&c, 1, INT64_MAX), 0);
	CHECK_EQ(counter_add(&c, 1, 1), 0);
	CHECK(c.e[0].inc == UINT64_MAX);
	before = c;
	CHECK_EQ(counter_add(&c, 1, 1), -ERANGE);
	CHECK(counter_equal(&c, &before));
	int64_t v;
	CHECK_EQ(counter_value(&c, &v), -ERANGE); /* 2^64 - 1 */
	CHECK_EQ(counter_add(&c, 2, INT64_MIN), 0);
	CHECK_EQ(counter_value(&c, &v), 0); /* 2^64 - 1 - 2^63 */
	CHECK(v == INT64_MAX);
	CHECK_EQ(counter_add(&c, 3, INT64_MIN), 0);
	CHECK_EQ(counter_value(&c, &v), 0);
	CHECK(v == -1);
	counter_init(&c);
	CHECK_EQ(counter_add(&c, 9, INT64_MIN), 0);
	CHECK_EQ(counter_value(&c, &v), 0);
	CHECK(v == INT64_MIN);
	CHECK_EQ(counter_add(&c, 9, -1), 0);
	CHECK_EQ(counter_value(&c, &v), -ERANGE);
	counter_init(&c);
	CHECK_EQ(counter_add(&c, 9, INT64_MIN), 0);
	CHECK_EQ(counter_add(&c, 8, 0), 0); /* a zero delta adds the actor */
	CHECK_EQ(c.n, 2);
	test_end("bounds");
}

static void test_text(void)
{
	test_begin("text");
	const struct {
		const char *s;
		int rc;
		int64_t v;
	} cases[] = {
		{"0", 0, 0}, {"-1", 0, -1}, {"123", 0, 123}, {"9223372036854775807", 0, INT64_MAX},
		{"-9223372036854775808", 0, INT64_MIN}, {"9223372036854775808", -EDOM, 0},
		{"-9223372036854775809", -EDOM, 0}, {"", -EDOM, 0}, {"-", -EDOM, 0}, {"-0", -EDOM, 0},
		{"01", -EDOM, 0}, {"+1", -EDOM, 0}, {" 1", -EDOM, 0}, {"1 ", -EDOM, 0}, {"1a", -EDOM, 0},
		{"99999999999999999999", -EDOM, 0}, {"123456789012345678901", -EDOM, 0}, {"1.5", -EDOM, 0},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 42;
		int rc = counter_parse((const uint8_t *)cases[i].s, (uint32_t)strlen(cases[i].s), &v);
		CHECK_EQ(rc, cases[i].rc);
		if (rc == 0) {
			CHECK(v == cases[i].v);
			char out[COUNTER_TEXT_MAX];
			uint32_t n = counter_format(v, out);
			CHECK(n == strlen(cases[i].s) && strcmp(out, cases[i].s) == 0);
		}
	}
	for (unsigned i = 0; i < 10000; i++) {
		int64_t v = (int64_t)test_rand(&rng) >> rnd(63);
		char out[COUNTER_TEXT_MAX];
		uint32_t n = counter_format(v, out);
		int64_t back;
		CHECK_EQ(counter_parse((const uint8_t *)out, n, &back), 0);
		CHECK(back == v);
	}
	test_end("text");
}

/* counter_text: the exact sum, in the int64 range (= counter_format) and
 * past it both ways, up to the widest state (32 actors of 2^64 - 1). */
static void test_wide_text(void)
{
	test_begin("wide text");
	char out[COUNTER_WIDE_TEXT_MAX], fmt[COUNTER_TEXT_MAX];
	struct counter c;
	counter_init(&c);
	counter_set_base(&c, INT64_MAX - 2, 7, 1);
	CHECK_EQ(counter_add(&c, 1, 2), 0);
	CHECK(counter_text(&c, out) == 19 && strcmp(out, "9223372036854775807") == 0);
	CHECK_EQ(counter_add(&c, 2, 9), 0);
	int64_t v;
	CHECK_EQ(counter_value(&c, &v), -ERANGE);
	CHECK(strcmp((counter_text(&c, out), out), "9223372036854775816") == 0);
	counter_init(&c);
	counter_set_base(&c, INT64_MIN, 7, 1);
	CHECK(strcmp((counter_text(&c, out), out), "-9223372036854775808") == 0);
	CHECK_EQ(counter_add(&c, 3, -1), 0);
	CHECK(strcmp((counter_text(&c, out), out), "-9223372036854775809") == 0);
	/* The widest: base INT64_MAX and 32 actors at 2^64 - 1 each:
	 * 2^63 - 1 + 32 * (2^64 - 1) = 599519182395560427487 (and the negative). */
	counter_init(&c);
	counter_set_base(&c, INT64_MAX, 7, 1);
	for (uint64_t a = 1; a <= COUNTER_ACTORS_MAX; a++) {
		CHECK_EQ(counter_add(&c, a, INT64_MAX), 0);
		CHECK_EQ(counter_add(&c, a, INT64_MAX), 0);
		CHECK_EQ(counter_add(&c, a, 1), 0);
	}
	CHECK(strcmp((counter_text(&c, out), out), "599519182395560427487") == 0);
	counter_init(&c);
	counter_set_base(&c, INT64_MIN, 7, 1);
	for (uint64_t a = 1; a <= COUNTER_ACTORS_MAX; a++) {
		CHECK_EQ(counter_add(&c, a, INT64_MIN + 1), 0);
		CHECK_EQ(counter_add(&c, a, INT64_MIN + 1), 0);
		CHECK_EQ(counter_add(&c, a, -1), 0);
	}
	CHECK(strcmp((counter_text(&c, out), out), "-599519182395560427488") == 0);
	/* In range: the same text as counter_format. */
	for (unsigned i = 0; i < 10000; i++) {
		counter_init(&c);
		int64_t base = (int64_t)test_rand(&rng) >> rnd(63);
		counter_set_base(&c, base, 7, 1);
		int64_t d = (int64_t)test_rand(&rng) >> (1 + rnd(62));
		if (counter_add(&c, 1 + rnd(4), d) != 0 || counter_value(&c, &v) != 0)
			continue;
		counter_format(v, fmt);
		counter_text(&c, out);
		CHECK(strcmp(out, fmt) == 0);
	}
	test_end("wide text");
}

int main(void)
{
	rng = test_seed(0xc0c0);
	test_laws();
	test_codec();
	test_bounds();
	test_text();
	test_wide_text();
	return test_soft_failures() ? 1 : 0;
}
