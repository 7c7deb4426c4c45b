/* test_simcheck.c - the checker on synthetic histories: for each rule, a
 * history that must pass and one that must fail (so every rule can fail),
 * plus coverage through plain SET/DEL, transitivity, quorums, LWW and the
 * per-mix switches; flushes, counters and scans. */
#include <stdio.h>
#include <string.h>

#include "sim/simcheck.h"
#include "testing.h"

#define KS_SIB 0
#define KS_LWW 1
#define LOST 0
#define STALE 1
#define RESURRECT 2
#define CONVERGE 3
#define VALID 4
#define COUNTER 5
#define SCAN 6

static FILE *report;

static struct simcheck *mk(unsigned skip)
{
	struct simcheck_config cfg = {.skip = skip, .replay = "test_sim --seed 42", .print_max = 100};
	cfg.ks[KS_SIB] = (struct simcheck_keyspace){.defined = true, .n = 3, .w = 2};
	cfg.ks[KS_LWW] = (struct simcheck_keyspace){.defined = true, .n = 3, .w = 2, .lww = true};
	struct simcheck *c = simcheck_create(&cfg);
	CHECK(c != NULL);
	return c;
}

static uint32_t op(struct simcheck *c, uint8_t ks, uint8_t kind, uint32_t key, uint64_t t0, uint8_t w)
{
	struct simcheck_op o = {.client = 1, .node = 1, .keyspace = ks, .kind = kind, .r = 2, .w = w, .key = key,
				.submit_ms = t0};
	return simcheck_begin(c, &o);
}

/* A write in the siblings keyspace, key 0, W=2, finished at once. */
static uint32_t wr(struct simcheck *c, uint8_t kind, uint8_t ctx, uint32_t ctx_read, uint64_t t0, uint64_t t1,
		   enum simcheck_outcome out)
{
	struct simcheck_op o = {.client = 1, .node = 1, .keyspace = KS_SIB, .kind = kind, .r = 2, .w = 2,
				.submit_ms = t0, .ctx = ctx, .ctx_read = ctx_read};
	uint32_t id = simcheck_begin(c, &o);
	simcheck_end(c, id, t1, out, out == SC_OK ? 0 : -110, NULL, 0);
	return id;
}

static uint32_t put(struct simcheck *c, uint32_t ctx_read, uint64_t t0, uint64_t t1)
{
	return wr(c, SC_DYN_PUT, ctx_read == UINT32_MAX ? SC_CTX_EMPTY : SC_CTX_READ, ctx_read, t0, t1, SC_OK);
}

static uint32_t rd_ks(struct simcheck *c, uint8_t ks, uint8_t kind, uint64_t t0, uint64_t t1, const uint32_t *v,
		      uint32_t n)
{
	uint32_t id = op(c, ks, kind, 0, t0, 2);
	simcheck_end(c, id, t1, SC_OK, 0, v, n);
	return id;
}

static uint32_t rd(struct simcheck *c, uint64_t t0, uint64_t t1, const uint32_t *v, uint32_t n)
{
	return rd_ks(c, KS_SIB, SC_DYN_GET, t0, t1, v, n);
}

/* Final reads through nodes 1..3 at R=3, each returning v[0..n). */
static void finals_ks(struct simcheck *c, uint8_t ks, uint64_t t, const uint32_t *v, uint32_t n)
{
	for (uint16_t node = 1; node <= 3; node++) {
		struct simcheck_op o = {.client = SIMCHECK_CLIENT_FINAL, .node = node, .keyspace = ks, .kind = SC_DYN_GET,
					.r = 3, .w = 3, .submit_ms = t};
		simcheck_end(c, simcheck_begin(c, &o), t + 5, SC_OK, 0, v, n);
	}
}

static void finals(struct simcheck *c, uint64_t t, const uint32_t *v, uint32_t n) { finals_ks(c, KS_SIB, t, v, n); }

/* Runs the checker; returns the violations of rule (all when rule < 0). */
static unsigned run(struct simcheck *c, int rule)
{
	unsigned total = simcheck_run(c, report);
	unsigned r = rule < 0 ? total : simcheck_violations(c, (unsigned)rule);
	simcheck_destroy(c);
	return r;
}

static void test_pass_basic(void)
{
	struct simcheck *c = mk(0);
	uint32_t w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t r2 = rd(c, 20, 30, &w1, 1);
	uint32_t w3 = put(c, r2, 40, 50);
	rd(c, 60, 70, &w3, 1);
	finals(c, 1000, &w3, 1);
	CHECK_EQ(run(c, -1), 0);

	/* Concurrent writes stay siblings. */
	c = mk(0);
	uint32_t a = put(c, UINT32_MAX, 0, 10), b = put(c, UINT32_MAX, 5, 15);
	uint32_t ab[2] = {b, a};
	rd(c, 20, 30, ab, 2);
	finals(c, 1000, ab, 2);
	CHECK_EQ(run(c, -1), 0);

	/* A DEL with the context of a read removes what it covered. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	r2 = rd(c, 20, 30, &w1, 1);
	wr(c, SC_DYN_DEL, SC_CTX_READ, r2, 40, 50, SC_OK);
	rd(c, 60, 70, NULL, 0);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, -1), 0);
}

static void test_lost(void)
{
	/* Two acknowledged siblings; the final read lost one. */
	struct simcheck *c = mk(SIMCHECK_STALE);
	uint32_t w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t w2 = put(c, UINT32_MAX, 5, 15);
	finals(c, 1000, &w2, 1);
	CHECK_EQ(run(c, LOST), 1);

	/* Superseded only by a write that was refused: still lost. */
	c = mk(SIMCHECK_STALE);
	w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t r2 = rd(c, 20, 30, &w1, 1);
	wr(c, SC_DYN_PUT, SC_CTX_READ, r2, 40, 50, SC_FAILED);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, LOST), 1);

	/* Superseded by an indeterminate write: it may have been applied. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	r2 = rd(c, 20, 30, &w1, 1);
	uint32_t w3 = wr(c, SC_DYN_PUT, SC_CTX_READ, r2, 40, 50, SC_INDET);
	finals(c, 1000, &w3, 1);
	CHECK_EQ(run(c, -1), 0);

	/* Superseded transitively: w1 <- w3 <- DEL. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	r2 = rd(c, 20, 30, &w1, 1);
	w3 = put(c, r2, 40, 50);
	uint32_t r4 = rd(c, 60, 70, &w3, 1);
	wr(c, SC_DYN_DEL, SC_CTX_READ, r4, 80, 90, SC_OK);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, -1), 0);

	/* A plain SET may supersede anything submitted before it ended. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t s2 = wr(c, SC_SET, 0, 0, 5, 20, SC_OK);
	finals(c, 1000, &s2, 1);
	CHECK_EQ(run(c, -1), 0);

	/* ... but not a write submitted after it ended. */
	c = mk(SIMCHECK_STALE);
	s2 = wr(c, SC_SET, 0, 0, 0, 10, SC_OK);
	w1 = put(c, UINT32_MAX, 20, 30);
	finals(c, 1000, &s2, 1);
	CHECK_EQ(run(c, LOST), 1);

	/* lost_min_w: only writes acknowledged by two replicas must survive
	 * (the wipe mix loses one replica). */
	for (uint8_t w = 1; w <= 2; w++) {
		struct simcheck_config cfg = {.skip = SIMCHECK_STALE, .lost_min_w = 2, .print_max = 100};
		cfg.ks[KS_SIB] = (struct simcheck_keyspace){.defined = true, .n = 3};
		c = simcheck_create(&cfg);
		uint32_t id = op(c, KS_SIB, SC_DYN_PUT, 0, 0, w);
		simcheck_end(c, id, 10, SC_OK, 0, NULL, 0);
		finals(c, 1000, NULL, 0);
		CHECK_EQ(run(c, LOST), w == 2 ? 1 : 0);
	}

	/* The mix switch turns the rule off. */
	c = mk(SIMCHECK_LOST | SIMCHECK_STALE);
	w1 = put(c, UINT32_MAX, 0, 10);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, -1), 0);
}

static void test_stale(void)
{
	/* A read after the acknowledgement returns nothing. */
	struct simcheck *c = mk(0);
	uint32_t w1 = put(c, UINT32_MAX, 0, 10);
	rd(c, 20, 30, NULL, 0);
	finals(c, 1000, &w1, 1);
	CHECK_EQ(run(c, STALE), 1);

	/* A read overlapping the write may miss it. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	rd(c, 5, 30, NULL, 0);
	finals(c, 1000, &w1, 1);
	CHECK_EQ(run(c, -1), 0);

	/* A read at R=1 after a W=2 write does not meet its quorum. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	struct simcheck_op o = {.client = 2, .node = 2, .keyspace = KS_SIB, .kind = SC_DYN_GET, .r = 1, .submit_ms = 20};
	simcheck_end(c, simcheck_begin(c, &o), 30, SC_OK, 0, NULL, 0);
	finals(c, 1000, &w1, 1);
	CHECK_EQ(run(c, -1), 0);

	/* Missing it is fine when a DEL covering it was submitted before the
	 * read ended; not when the DEL came after. */
	for (int late = 0; late <= 1; late++) {
		c = mk(0);
		w1 = put(c, UINT32_MAX, 0, 10);
		uint32_t r2 = rd(c, 12, 14, &w1, 1);
		wr(c, SC_DYN_DEL, SC_CTX_READ, r2, late ? 35 : 15, 40, SC_INDET);
		rd(c, 20, 30, NULL, 0);
		finals(c, 1000, NULL, 0);
		CHECK_EQ(run(c, STALE), late ? 1 : 0);
	}

	/* Returning a successor is fine. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t r2 = rd(c, 12, 14, &w1, 1);
	uint32_t w3 = wr(c, SC_DYN_PUT, SC_CTX_READ, r2, 15, 40, SC_INDET);
	rd(c, 20, 30, &w3, 1);
	finals(c, 1000, &w3, 1);
	CHECK_EQ(run(c, -1), 0);

	/* Plain GET: "not found" after a SET needs a DEL that may cover it. */
	for (int del = 0; del <= 1; del++) {
		c = mk(0);
		uint32_t s1 = wr(c, SC_SET, 0, 0, 0, 10, SC_OK);
		if (del)
			wr(c, SC_DEL, 0, 0, 15, 40, SC_INDET);
		rd_ks(c, KS_SIB, SC_GET, 20, 30, NULL, 0);
		if (del)
			finals(c, 1000, NULL, 0);
		else
			finals(c, 1000, &s1, 1);
		CHECK_EQ(run(c, STALE), del ? 0 : 1);
	}
	/* A DEL the SET surely superseded cannot explain it. */
	c = mk(0);
	wr(c, SC_DEL, 0, 0, 0, 5, SC_OK);
	uint32_t s2 = wr(c, SC_SET, 0, 0, 10, 15, SC_OK);
	rd_ks(c, KS_SIB, SC_GET, 20, 30, NULL, 0);
	finals(c, 1000, &s2, 1);
	CHECK_EQ(run(c, STALE), 1);
	/* A plain DEL that found nothing wrote nothing: what it read is still
	 * there, and its read is held to the plain GET's rule. */
	c = mk(0);
	uint32_t p1 = put(c, UINT32_MAX, 0, 10);
	uint32_t nd = wr(c, SC_DEL, 0, 0, 20, 30, SC_OK);
	simcheck_noop(c, nd);
	rd(c, 40, 50, &p1, 1);
	finals(c, 1000, &p1, 1);
	CHECK_EQ(run(c, STALE), 1); /* the DEL's read missed p1 */
	c = mk(0);
	p1 = put(c, UINT32_MAX, 0, 10);
	wr(c, SC_DYN_DEL, SC_CTX_EMPTY, 0, 15, 18, SC_OK); /* concurrent: hides nothing (add-wins) */
	nd = wr(c, SC_DEL, 0, 0, 20, 30, SC_OK);
	simcheck_noop(c, nd);
	rd(c, 40, 50, &p1, 1);
	finals(c, 1000, &p1, 1);
	CHECK_EQ(run(c, STALE), 1); /* p1 stayed visible: the plain DEL must have found it */
	/* The same plain GET is fine when a DEL may cover p1. */
	c = mk(0);
	p1 = put(c, UINT32_MAX, 0, 10);
	uint32_t r1 = rd(c, 12, 14, &p1, 1);
	wr(c, SC_DYN_DEL, SC_CTX_READ, r1, 15, 18, SC_INDET);
	rd_ks(c, KS_SIB, SC_GET, 20, 30, NULL, 0);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, -1), 0);
	/* A plain GET returning one of two siblings is fine. */
	c = mk(0);
	uint32_t a = put(c, UINT32_MAX, 0, 10), b = put(c, UINT32_MAX, 0, 10);
	rd_ks(c, KS_SIB, SC_GET, 20, 30, &b, 1);
	uint32_t ab[2] = {a, b};
	finals(c, 1000, ab, 2);
	CHECK_EQ(run(c, -1), 0);
}

static void test_resurrect(void)
{
	/* A superseded value comes back after the superseding write's ack. */
	struct simcheck *c = mk(0);
	uint32_t w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t r2 = rd(c, 20, 30, &w1, 1);
	uint32_t w3 = put(c, r2, 40, 50);
	uint32_t both[2] = {w1, w3};
	rd(c, 60, 70, both, 2);
	finals(c, 1000, &w3, 1);
	CHECK_EQ(run(c, RESURRECT), 1);

	/* While the superseding write is in flight, the old value may show. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	r2 = rd(c, 20, 30, &w1, 1);
	w3 = put(c, r2, 40, 80);
	both[1] = w3;
	rd(c, 60, 70, both, 2);
	finals(c, 1000, &w3, 1);
	CHECK_EQ(run(c, -1), 0);

	/* Transitively: w1 <- w3 <- w5. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	r2 = rd(c, 20, 30, &w1, 1);
	w3 = put(c, r2, 40, 50);
	uint32_t r4 = rd(c, 60, 70, &w3, 1);
	uint32_t w5 = put(c, r4, 80, 90);
	uint32_t old[2] = {w1, w5};
	rd(c, 100, 110, old, 2);
	finals(c, 1000, &w5, 1);
	CHECK_EQ(run(c, RESURRECT), 1);

	/* A plain SET acknowledged before the read surely covers what was
	 * acknowledged before it started. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t s2 = wr(c, SC_SET, 0, 0, 20, 30, SC_OK);
	rd(c, 40, 50, &w1, 1);
	finals(c, 1000, &s2, 1);
	CHECK_EQ(run(c, RESURRECT), 1);

	/* A SET not acknowledged, read alone at R=1 through its coordinator,
	 * then a DEL with that read's context (sim seed 45359, mix oneway, 5
	 * nodes): with checked writes the SET may have been stored over its
	 * coordinator's copy alone, which lacked w1, so w1 may stay; with
	 * read-first SETs its read saw w1, and w1 back is a resurrection. */
	for (unsigned checked = 0; checked < 2; checked++) {
		struct simcheck_config cfg = {.replay = "test_sim --seed 42", .print_max = 100,
					      .checked_sets = checked == 1};
		cfg.ks[KS_SIB] = (struct simcheck_keyspace){.defined = true, .n = 3, .w = 2};
		c = simcheck_create(&cfg);
		CHECK(c != NULL);
		w1 = put(c, UINT32_MAX, 0, 10);
		uint32_t s_indet = wr(c, SC_SET, 0, 0, 20, 500, SC_INDET);
		struct simcheck_op o = {.client = 1, .node = 1, .keyspace = KS_SIB, .kind = SC_DYN_GET, .r = 1, .w = 2,
					.submit_ms = 30};
		uint32_t r3 = simcheck_begin(c, &o);
		simcheck_end(c, r3, 31, SC_OK, 0, &s_indet, 1);
		wr(c, SC_DYN_DEL, SC_CTX_READ, r3, 40, 50, SC_OK);
		rd(c, 600, 610, &w1, 1);
		finals(c, 1000, &w1, 1);
		unsigned v = run(c, RESURRECT); /* the later read and the three final ones */
		if (checked)
			CHECK_EQ(v, 0u);
		else
			CHECK_EQ(v, 4u);
	}

	/* A deleted value comes back. */
	c = mk(SIMCHECK_LOST);
	w1 = put(c, UINT32_MAX, 0, 10);
	r2 = rd(c, 20, 30, &w1, 1);
	wr(c, SC_DYN_DEL, SC_CTX_READ, r2, 40, 50, SC_OK);
	rd(c, 60, 70, &w1, 1);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, RESURRECT), 1);
}

static void test_converge(void)
{
	struct simcheck *c = mk(0);
	uint32_t a = put(c, UINT32_MAX, 0, 10), b = put(c, UINT32_MAX, 0, 10);
	uint32_t ab[2] = {a, b}, ba[2] = {b, a};
	finals(c, 1000, ab, 2);
	struct simcheck_op o = {.client = SIMCHECK_CLIENT_FINAL, .node = 3, .keyspace = KS_SIB, .kind = SC_DYN_GET,
				.r = 3, .submit_ms = 1100};
	simcheck_end(c, simcheck_begin(c, &o), 1105, SC_OK, 0, ba, 2); /* same set, other order */
	CHECK_EQ(run(c, -1), 0);

	c = mk(SIMCHECK_LOST | SIMCHECK_STALE);
	a = put(c, UINT32_MAX, 0, 10);
	b = put(c, UINT32_MAX, 0, 10);
	finals(c, 1000, &a, 1);
	ab[0] = a;
	ab[1] = b;
	simcheck_end(c, simcheck_begin(c, &o), 1105, SC_OK, 0, ab, 2);
	CHECK_EQ(run(c, CONVERGE), 1);

	c = mk(0);
	a = put(c, UINT32_MAX, 0, 10);
	finals(c, 1000, &a, 1);
	simcheck_end(c, simcheck_begin(c, &o), 1105, SC_INDET, -110, NULL, 0);
	CHECK_EQ(run(c, CONVERGE), 1);
}

static void test_valid(void)
{
	/* A value no write wrote. */
	struct simcheck *c = mk(0);
	uint32_t unknown = SIMCHECK_VALUE_UNKNOWN;
	rd(c, 0, 10, &unknown, 1);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, VALID), 1);

	/* The value of a refused write. */
	c = mk(0);
	uint32_t w1 = wr(c, SC_DYN_PUT, SC_CTX_EMPTY, 0, 0, 10, SC_FAILED);
	rd(c, 20, 30, &w1, 1);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, VALID), 1);

	/* A value written after the read ended. */
	c = mk(0);
	uint32_t r1 = op(c, KS_SIB, SC_DYN_GET, 0, 0, 2);
	uint32_t w2 = put(c, UINT32_MAX, 50, 60);
	simcheck_end(c, r1, 40, SC_OK, 0, &w2, 1);
	finals(c, 1000, &w2, 1);
	CHECK_EQ(run(c, VALID), 1);

	/* A bad context accepted, and its value read. */
	c = mk(0);
	w1 = wr(c, SC_DYN_PUT, SC_CTX_BAD, 0, 0, 10, SC_OK);
	finals(c, 1000, &w1, 1);
	CHECK_EQ(run(c, VALID), 4); /* the ack, and each of the three final reads */

	/* A bad context refused: fine. */
	c = mk(0);
	wr(c, SC_DYN_PUT, SC_CTX_BAD, 0, 0, 10, SC_FAILED);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, -1), 0);

	/* The "value" of a DEL, a value of another key, twice the same value. */
	c = mk(0);
	uint32_t d = wr(c, SC_DYN_DEL, SC_CTX_EMPTY, 0, 0, 10, SC_OK);
	uint32_t other = op(c, KS_SIB, SC_DYN_PUT, 7, 0, 2);
	simcheck_end(c, other, 10, SC_OK, 0, NULL, 0);
	uint32_t w3 = put(c, UINT32_MAX, 0, 10);
	rd(c, 20, 30, &d, 1);
	rd(c, 20, 30, &other, 1);
	uint32_t twice[2] = {w3, w3};
	rd(c, 20, 30, twice, 2);
	finals(c, 1000, &w3, 1);
	struct simcheck_op fo = {.client = SIMCHECK_CLIENT_FINAL, .node = 1, .keyspace = KS_SIB, .kind = SC_DYN_GET,
				 .r = 3, .key = 7, .submit_ms = 1000};
	simcheck_end(c, simcheck_begin(c, &fo), 1005, SC_OK, 0, &other, 1);
	CHECK_EQ(run(c, VALID), 3);
}

/* A DYN_PUT in key 0 that expires in [lo, hi] (global ms). */
static uint32_t put_exp(struct simcheck *c, uint32_t ctx_read, uint64_t t0, uint64_t t1, uint64_t lo, uint64_t hi)
{
	struct simcheck_op o = {.client = 1, .node = 1, .keyspace = KS_SIB, .kind = SC_DYN_PUT, .r = 2, .w = 2,
				.submit_ms = t0, .ctx = ctx_read == UINT32_MAX ? SC_CTX_EMPTY : SC_CTX_READ,
				.ctx_read = ctx_read, .expires = true, .expire_lo = lo, .expire_hi = hi};
	uint32_t id = simcheck_begin(c, &o);
	simcheck_end(c, id, t1, SC_OK, 0, NULL, 0);
	return id;
}

static void test_expiry(void)
{
	/* Returned after every clock passed its expiry: invalid. Within the
	 * window: fine. */
	for (int late = 0; late <= 1; late++) {
		struct simcheck *c = mk(0);
		uint32_t w = put_exp(c, UINT32_MAX, 0, 10, 100, 200);
		rd(c, late ? 250 : 150, 260, &w, 1);
		finals(c, 1000, NULL, 0);
		CHECK_EQ(run(c, VALID), late ? 1 : 0);
	}
	/* Missing once it may have expired (lost, stale); not before. */
	for (int early = 0; early <= 1; early++) {
		struct simcheck *c = mk(0);
		put_exp(c, UINT32_MAX, 0, 10, 100, 200);
		rd(c, 20, early ? 30 : 120, NULL, 0);
		finals(c, 1000, NULL, 0);
		CHECK_EQ(run(c, -1), early ? 1 : 0);
	}
	/* An expired value hides what it covers, as a DEL does. */
	struct simcheck *c = mk(0);
	uint32_t w1 = put(c, UINT32_MAX, 0, 10);
	uint32_t r2 = rd(c, 20, 30, &w1, 1);
	put_exp(c, r2, 40, 50, 100, 200);
	rd(c, 300, 310, NULL, 0);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, -1), 0);
	/* Final reads may differ by a value that expires between them. */
	c = mk(0);
	uint32_t w = put_exp(c, UINT32_MAX, 0, 10, 900, 1100);
	struct simcheck_op o = {.client = SIMCHECK_CLIENT_FINAL, .node = 1, .keyspace = KS_SIB, .kind = SC_DYN_GET,
				.r = 3, .submit_ms = 890};
	simcheck_end(c, simcheck_begin(c, &o), 895, SC_OK, 0, &w, 1);
	o.node = 2;
	o.submit_ms = 1000;
	simcheck_end(c, simcheck_begin(c, &o), 1005, SC_OK, 0, NULL, 0);
	CHECK_EQ(run(c, -1), 0);
}

static void test_lww(void)
{
	/* LWW may drop an acknowledged write: not a violation there. */
	struct simcheck *c = mk(0);
	uint32_t a = op(c, KS_LWW, SC_SET, 0, 0, 2);
	simcheck_end(c, a, 10, SC_OK, 0, NULL, 0);
	uint32_t b = op(c, KS_LWW, SC_SET, 0, 20, 2);
	simcheck_end(c, b, 30, SC_OK, 0, NULL, 0);
	rd_ks(c, KS_LWW, SC_GET, 40, 50, &a, 1);
	finals_ks(c, KS_LWW, 1000, &a, 1);
	CHECK_EQ(run(c, -1), 0);

	c = mk(0);
	a = op(c, KS_LWW, SC_SET, 0, 0, 2);
	simcheck_end(c, a, 10, SC_OK, 0, NULL, 0);
	b = op(c, KS_LWW, SC_SET, 0, 20, 2);
	simcheck_end(c, b, 30, SC_OK, 0, NULL, 0);
	finals_ks(c, KS_LWW, 1000, &a, 1);
	struct simcheck_op o = {.client = SIMCHECK_CLIENT_FINAL, .node = 2, .keyspace = KS_LWW, .kind = SC_DYN_GET,
				.r = 3, .submit_ms = 1100};
	simcheck_end(c, simcheck_begin(c, &o), 1105, SC_OK, 0, &b, 1);
	CHECK_EQ(run(c, CONVERGE), 1);

	c = mk(0);
	uint32_t unknown = SIMCHECK_VALUE_UNKNOWN;
	rd_ks(c, KS_LWW, SC_GET, 40, 50, &unknown, 1);
	finals_ks(c, KS_LWW, 1000, NULL, 0);
	CHECK_EQ(run(c, VALID), 1);
}

/* A flush as the checker sees it for one key of ks (r = w = n). */
static uint32_t flush_key(struct simcheck *c, uint8_t ks, uint32_t key, uint64_t t0, uint64_t t1,
			  enum simcheck_outcome out)
{
	struct simcheck_op o = {.client = 2, .node = 2, .keyspace = ks, .kind = SC_FLUSH, .r = 3, .w = 3, .key = key,
				.submit_ms = t0};
	uint32_t id = simcheck_begin(c, &o);
	simcheck_end(c, id, t1, out, out == SC_OK ? 0 : -110, NULL, 0);
	return id;
}

static uint32_t flush_ks(struct simcheck *c, uint8_t ks, uint64_t t0, uint64_t t1, enum simcheck_outcome out)
{
	return flush_key(c, ks, 0, t0, t1, out);
}

static void test_flush(void)
{
	/* A value acknowledged before an acknowledged flush, read after it. */
	struct simcheck *c = mk(0);
	uint32_t w1 = put(c, UINT32_MAX, 0, 10);
	flush_ks(c, KS_SIB, 20, 30, SC_OK);
	rd(c, 40, 50, &w1, 1);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, RESURRECT), 1);

	/* ... and it is gone for good: no loss, no stale read. */
	c = mk(0);
	w1 = put(c, UINT32_MAX, 0, 10);
	flush_ks(c, KS_SIB, 20, 30, SC_OK);
	rd(c, 40, 50, NULL, 0);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, -1), 0);

	/* A write concurrent with the flush may go or stay. */
	for (int stays = 0; stays < 2; stays++) {
		c = mk(0);
		w1 = put(c, UINT32_MAX, 15, 25);
		flush_ks(c, KS_SIB, 20, 30, SC_OK);
		rd(c, 40, 50, stays ? &w1 : NULL, stays);
		finals(c, 1000, stays ? &w1 : NULL, stays);
		CHECK_EQ(run(c, -1), 0);
	}

	/* A write after the flush is not killed by it. */
	c = mk(0);
	flush_ks(c, KS_SIB, 20, 30, SC_OK);
	w1 = put(c, UINT32_MAX, 40, 50);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, LOST), 1);

	/* An indeterminate flush kills up to its kill_until, not after. */
	for (int late = 0; late < 2; late++) {
		c = mk(0);
		uint32_t f = flush_ks(c, KS_SIB, 20, 30, SC_INDET);
		simcheck_kill_until(c, f, 500);
		w1 = put(c, UINT32_MAX, late ? 600 : 400, late ? 610 : 410);
		finals(c, 1000, NULL, 0);
		CHECK_EQ(run(c, LOST), late ? 1u : 0u);
	}

	/* LWW drops concurrent writes, but a flush is a flush. */
	c = mk(0);
	uint32_t a = op(c, KS_LWW, SC_SET, 0, 0, 2);
	simcheck_end(c, a, 10, SC_OK, 0, NULL, 0);
	flush_ks(c, KS_LWW, 20, 30, SC_OK);
	rd_ks(c, KS_LWW, SC_GET, 40, 50, &a, 1);
	finals_ks(c, KS_LWW, 1000, NULL, 0);
	CHECK_EQ(run(c, RESURRECT), 1);
}

/* INCR of counter key 1 (siblings keyspace) by d at W=w. */
static uint32_t incr(struct simcheck *c, int64_t d, uint64_t t0, uint64_t t1, enum simcheck_outcome out, uint8_t w)
{
	struct simcheck_op o = {.client = 1, .node = 1, .keyspace = KS_SIB, .kind = SC_INCR, .r = 2, .w = w, .key = 1,
				.submit_ms = t0, .delta = d};
	uint32_t id = simcheck_begin(c, &o);
	simcheck_end(c, id, t1, out, out == SC_OK ? 0 : -110, NULL, 0);
	return id;
}

static void cget(struct simcheck *c, uint16_t client, uint8_t r, uint64_t t0, uint64_t t1, bool found, int64_t v)
{
	struct simcheck_op o = {.client = client, .node = 1, .keyspace = KS_SIB, .kind = SC_CGET, .r = r, .key = 1,
				.submit_ms = t0};
	uint32_t id = simcheck_begin(c, &o);
	simcheck_end(c, id, t1, SC_OK, 0, NULL, 0);
	simcheck_found(c, id, found, v);
}

static void cfinals(struct simcheck *c, bool found, int64_t v)
{
	for (int i = 0; i < 3; i++)
		cget(c, SIMCHECK_CLIENT_FINAL, 3, 1000 + 10 * (uint64_t)i, 1005 + 10 * (uint64_t)i, found, v);
}

static void test_counter(void)
{
	/* Two concurrent INCRs both count; one lost or one counted twice is caught. */
	const int64_t finals_v[] = {12, 5, 19};
	for (int i = 0; i < 3; i++) {
		struct simcheck *c = mk(0);
		incr(c, 5, 0, 10, SC_OK, 2);
		incr(c, 7, 2, 12, SC_OK, 2);
		cget(c, 1, 2, 20, 30, true, 12);
		cfinals(c, true, finals_v[i]);
		CHECK_EQ(run(c, COUNTER), i == 0 ? 0u : 1u);
	}

	/* Indeterminate and failed INCRs: [sure, sure + possible]. */
	for (int64_t v = 2; v <= 12; v += 5) {
		struct simcheck *c = mk(0);
		incr(c, 5, 0, 10, SC_OK, 2);
		incr(c, 4, 0, 10, SC_INDET, 2);
		incr(c, -3, 0, 10, SC_INDET, 2);
		incr(c, 100, 0, 10, SC_FAILED, 2);
		cfinals(c, true, v);
		CHECK_EQ(run(c, COUNTER), v == 2 || v == 7 ? 0u : 1u); /* [2, 9] */
	}

	/* The final reads disagree: (d). */
	struct simcheck *c = mk(0);
	incr(c, 5, 0, 10, SC_OK, 2);
	cget(c, SIMCHECK_CLIENT_FINAL, 3, 1000, 1005, true, 5);
	cget(c, SIMCHECK_CLIENT_FINAL, 3, 1010, 1015, true, 4);
	CHECK_EQ(run(c, CONVERGE), 1);

	/* A read during the run that misses an acknowledged INCR: stale only
	 * when R + W > N. */
	for (uint8_t r = 1; r <= 2; r++) {
		c = mk(0);
		incr(c, 5, 0, 10, SC_OK, 2);
		cget(c, 1, r, 20, 30, false, 0);
		cfinals(c, true, 5);
		CHECK_EQ(run(c, COUNTER), r == 2 ? 1u : 0u);
	}

	/* A flush acknowledged kills the INCRs acknowledged before it; those
	 * concurrent with it may stay. */
	c = mk(0);
	incr(c, 5, 0, 10, SC_OK, 2);
	incr(c, 3, 18, 25, SC_OK, 2);
	flush_key(c, KS_SIB, 1, 20, 30, SC_OK);
	incr(c, 2, 40, 50, SC_OK, 2);
	cget(c, 1, 2, 60, 70, true, 5);
	cfinals(c, true, 5);
	CHECK_EQ(run(c, COUNTER), 0);
	c = mk(0);
	incr(c, 5, 0, 10, SC_OK, 2);
	flush_key(c, KS_SIB, 1, 20, 30, SC_OK);
	incr(c, 2, 40, 50, SC_OK, 2);
	cfinals(c, true, 7); /* the flushed 5 came back */
	CHECK_EQ(run(c, COUNTER), 1);

	/* The wipe mix: an INCR acknowledged at W=1 may be lost. */
	struct simcheck_config cfg = {.lost_min_w = 2, .print_max = 100};
	cfg.ks[KS_SIB] = (struct simcheck_keyspace){.defined = true, .n = 3, .w = 2};
	c = simcheck_create(&cfg);
	incr(c, 5, 0, 10, SC_OK, 1);
	incr(c, 1, 0, 10, SC_OK, 2);
	cfinals(c, true, 1);
	CHECK_EQ(run(c, COUNTER), 0);
}

/* A whole scan of the keyspace: key 0 returned or not. */
static void scan_ks(struct simcheck *c, uint8_t ks, uint64_t t0, uint64_t t1, bool found)
{
	struct simcheck_op o = {.client = 3, .node = 1, .keyspace = ks, .kind = SC_SCAN, .r = 2, .w = 2,
				.submit_ms = t0};
	uint32_t id = simcheck_begin(c, &o);
	simcheck_end(c, id, t1, SC_OK, 0, NULL, 0);
	simcheck_found(c, id, found, 0);
}

static void test_scan(void)
{
	/* Written (W >= the keyspace's) before the scan: returned. */
	for (int found = 0; found < 2; found++) {
		struct simcheck *c = mk(0);
		uint32_t w1 = put(c, UINT32_MAX, 0, 10);
		scan_ks(c, KS_SIB, 20, 50, found);
		finals(c, 1000, &w1, 1);
		CHECK_EQ(run(c, SCAN), found ? 0u : 1u);
	}

	/* At W=1 (a scan reads N - W + 1 = 2 replicas), or written during the
	 * scan: may be missed. */
	struct simcheck *c = mk(0);
	uint32_t a = op(c, KS_SIB, SC_SET, 0, 0, 1);
	simcheck_end(c, a, 10, SC_OK, 0, NULL, 0);
	uint32_t b = put(c, UINT32_MAX, 30, 40);
	scan_ks(c, KS_SIB, 20, 50, false);
	uint32_t ab[2] = {a, b};
	finals(c, 1000, ab, 2);
	CHECK_EQ(run(c, -1), 0);

	/* A DEL or flush during the scan may hide it; a DEL acknowledged
	 * before the write cannot in a siblings keyspace (add-wins), and can
	 * in an LWW one (clock skew). */
	for (int hide = 0; hide < 3; hide++) {
		c = mk(0);
		if (hide == 1)
			wr(c, SC_DEL, 0, 0, 0, 5, SC_OK);
		uint32_t w1 = put(c, UINT32_MAX, 10, 15);
		if (hide == 0)
			wr(c, SC_DEL, 0, 0, 30, 35, SC_OK);
		if (hide == 2)
			flush_ks(c, KS_SIB, 30, 35, SC_OK);
		scan_ks(c, KS_SIB, 20, 50, false);
		finals(c, 1000, hide == 1 ? &w1 : NULL, hide == 1);
		CHECK_EQ(run(c, SCAN), hide == 1 ? 1u : 0u);
	}
	c = mk(0);
	uint32_t d = op(c, KS_LWW, SC_DEL, 0, 0, 2);
	simcheck_end(c, d, 5, SC_OK, 0, NULL, 0);
	a = op(c, KS_LWW, SC_SET, 0, 10, 2);
	simcheck_end(c, a, 15, SC_OK, 0, NULL, 0);
	scan_ks(c, KS_LWW, 20, 50, false);
	finals_ks(c, KS_LWW, 1000, NULL, 0);
	CHECK_EQ(run(c, SCAN), 0);

	/* A counter key with an INCR acknowledged before the scan. */
	c = mk(0);
	incr(c, 5, 0, 10, SC_OK, 2);
	struct simcheck_op o = {.client = 3, .node = 1, .keyspace = KS_SIB, .kind = SC_SCAN, .r = 2, .w = 2, .key = 1,
				.submit_ms = 20};
	uint32_t s = simcheck_begin(c, &o);
	simcheck_end(c, s, 50, SC_OK, 0, NULL, 0);
	simcheck_found(c, s, false, 0);
	cfinals(c, true, 5);
	CHECK_EQ(run(c, SCAN), 1);

	/* A key returned that nothing wrote: (e). */
	c = mk(0);
	scan_ks(c, KS_SIB, 20, 50, true);
	finals(c, 1000, NULL, 0);
	CHECK_EQ(run(c, VALID), 1);
}

static void test_report(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	CHECK(mem != NULL);
	FILE *saved = report;
	report = mem;
	struct simcheck *c = mk(0);
	uint32_t w1 = put(c, UINT32_MAX, 0, 10);
	(void)w1;
	rd(c, 20, 30, NULL, 0);
	finals(c, 1000, NULL, 0);
	CHECK(run(c, -1) >= 1);
	fclose(mem);
	report = saved;
	CHECK(strstr(buf, "VIOLATION (b) stale read") != NULL);
	CHECK(strstr(buf, "replay: test_sim --seed 42") != NULL);
	CHECK(strstr(buf, "history of ks0 key 0") != NULL);
	CHECK(strstr(buf, "#1 c1 n1 ks0 k0 DYN_GET") != NULL);
	free(buf);
}

int main(int argc, char **argv)
{
	/* Expected violations are printed only with -v. */
	report = argc > 1 && strcmp(argv[1], "-v") == 0 ? stdout : fopen("/dev/null", "w");
	CHECK(report != NULL);
	test_pass_basic();
	test_lost();
	test_stale();
	test_resurrect();
	test_converge();
	test_valid();
	test_expiry();
	test_lww();
	test_flush();
	test_counter();
	test_scan();
	test_report();
	printf("test_simcheck: ok\n");
	return 0;
}
