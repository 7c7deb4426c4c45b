/* test_index.c - the lock-free hash index (src/index/index.h).
 *
 * - basic: special payload values, lookup limits, multimap on one fingerprint.
 * - model: ~200k random insert/replace/remove/lookup/contains against a
 *   reference, with hashes crowded into a few segments and fingerprints
 *   (many hashes differ only in bits below the fingerprint).
 * - walk: index_walk visits every entry of a hash range.
 * - segment_full: one segment filled to its largest size gives -ENOMEM,
 *   and stays usable.
 * - growth: from a capacity hint of 0 to 2 and 10 million entries; every
 *   entry found and the RAM per key within bounds.
 * - concurrency: 4 writers on disjoint keys and 2 readers while segments
 *   grow; readers never see a payload that was not inserted for the hash,
 *   never miss a key that stays present; final contents exact.
 *
 * Checks that compare the index with the contract are "soft": a failure is
 * printed (the first 20 of each test, then a count by source line) and
 * counted, the test goes on, and the program exits 1 at the end if any
 * failed. Concurrency runs last: a race in the index can end the program
 * with an assertion inside index.c.
 * DV_TEST_QUICK=1 (or a sanitizer build) scales the sizes down; the TSan
 * build runs only concurrency (the one test that starts threads);
 * DV_TEST_ONLY=<name> runs one test; DV_SEED=<n> replays a seed. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/index.h"
#include "testing.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifndef TEST_TSAN
#define TEST_TSAN 0
#endif

/* Hash layout from index.h: 12 segment bits, 19 fingerprint bits, and 33
 * low bits the index never looks at. */
#define SEGS 4096u
#define FP_BITS 19u
#define FP_MASK ((1u << FP_BITS) - 1)
#define LOW_BITS 33u
#define LOW_MASK ((1ull << LOW_BITS) - 1)

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool quick;
static uint64_t mk_hash(uint32_t seg, uint32_t fp, uint64_t low)
{
	return (uint64_t)seg << (64 - 12) | (uint64_t)(fp & FP_MASK) << LOW_BITS | (low & LOW_MASK);
}

static uint32_t seg_of(uint64_t h) { return (uint32_t)(h >> 52); }

/* Segment and fingerprint as the index stores them (fingerprint 0 is kept
 * as 1): two hashes with the same prefix are the same multimap bucket. */
static uint64_t prefix_of(uint64_t h)
{
	uint64_t fp = (h >> LOW_BITS) & FP_MASK;
	return (uint64_t)seg_of(h) << FP_BITS | (fp ? fp : 1);
}

static uint32_t rnd(uint64_t *s, uint32_t n) { return (uint32_t)(test_rand(s) % n); }

/* ------------------------------------------------------------------------ */

static void test_basic(uint64_t seed)
{
	test_begin("basic");
	struct index *idx;
	CHECK_EQ(index_create(&idx, 0), 0);
	CHECK_EQ(index_count(idx), 0);
	uint64_t buf[64];

	/* Payloads that look like the special slot words, and the largest. */
	uint64_t h = mk_hash(7, 12345, 99);
	const uint64_t special[] = {0, 1, 2, 3, INDEX_PAYLOAD_MASK, INDEX_PAYLOAD_MASK - 1,
				    1ull << 43};
	for (unsigned i = 0; i < LEN(special); i++)
		CHECK_EQ(index_insert(idx, h, special[i]), 0);
	CHECK_EQ(index_count(idx), LEN(special));
	unsigned n = index_lookup(idx, h, buf, 64);
	SOFT(n == LEN(special), "lookup special payloads: %u of %zu", n, LEN(special));
	for (unsigned i = 0; i < LEN(special); i++) {
		bool seen = false;
		for (unsigned j = 0; j < n; j++)
			seen |= buf[j] == special[i];
		SOFT(seen, "payload %#llx not returned", (unsigned long long)special[i]);
		SOFT(index_contains(idx, h, special[i]), "contains payload %#llx",
		     (unsigned long long)special[i]);
	}
	/* Another hash differing only in its low 33 bits sees the same bucket. */
	SOFT(index_lookup(idx, h ^ 0x1ffffffffull, buf, 64) == LEN(special),
	     "low hash bits must not matter");
	/* A different fingerprint or segment sees nothing. */
	SOFT(index_lookup(idx, h ^ (1ull << LOW_BITS), buf, 64) == 0, "other fingerprint");
	SOFT(index_lookup(idx, h ^ (1ull << 63), buf, 64) == 0, "other segment");
	SOFT(!index_contains(idx, h ^ (1ull << 63), 0), "contains in other segment");
	/* max limits the answer; max 0 writes nothing. */
	SOFT(index_lookup(idx, h, buf, 3) == 3, "lookup max 3");
	SOFT(index_lookup(idx, h, buf, 0) == 0, "lookup max 0");
	/* Fingerprint 0 is stored as 1: both are one bucket. */
	uint64_t h0 = mk_hash(9, 0, 5), h1 = mk_hash(9, 1, 6);
	CHECK_EQ(index_insert(idx, h0, 100), 0);
	CHECK_EQ(index_insert(idx, h1, 101), 0);
	SOFT(index_lookup(idx, h0, buf, 64) == 2 && index_lookup(idx, h1, buf, 64) == 2,
	     "fingerprints 0 and 1 share a bucket");
	SOFT(index_remove(idx, h0, 101) == 0, "remove through the fingerprint-0 hash");
	SOFT(index_remove(idx, h1, 100) == 0, "remove through the fingerprint-1 hash");

	/* Replace and remove of absent payloads. */
	SOFT(index_replace(idx, h, 12345, 777) == -ENOENT, "replace absent");
	SOFT(!index_contains(idx, h, 777), "failed replace must not insert");
	SOFT(index_remove(idx, h, 12345) == -ENOENT, "remove absent");
	SOFT(index_replace(idx, h, 0, 4) == 0, "replace 0 -> 4");
	SOFT(index_remove(idx, h, 0) == -ENOENT, "remove replaced payload");
	SOFT(index_contains(idx, h, 4) && !index_contains(idx, h, 0), "replace result");
	SOFT(index_remove(idx, h, 4) == 0, "remove 4");
	SOFT(index_remove(idx, h, 4) == -ENOENT, "remove twice");
	CHECK_EQ(index_count(idx), LEN(special) - 1);

	/* 40 payloads on one fingerprint (several keys, different low bits):
	 * contains must find every one (the contract has no per-bucket cap). */
	uint64_t hb = mk_hash(100, 4242, 0);
	for (uint64_t p = 0; p < 40; p++)
		CHECK_EQ(index_insert(idx, hb | (p * 0x10001 & LOW_MASK), 1000 + p), 0);
	n = index_lookup(idx, hb, buf, 64);
	SOFT(n == 40, "lookup of a 40-entry bucket returned %u", n);
	unsigned missing = 0;
	for (uint64_t p = 0; p < 40; p++)
		missing += !index_contains(idx, hb | (p * 0x10001 & LOW_MASK), 1000 + p);
	SOFT(missing == 0, "index_contains misses %u of 40 entries sharing one fingerprint "
			   "(the first 16 in probe order are found)", missing);
	for (uint64_t p = 0; p < 40; p++)
		SOFT(index_remove(idx, hb, 1000 + p) == 0, "remove bucket entry %llu",
		     (unsigned long long)p);
	CHECK_EQ(index_count(idx), LEN(special) - 1);
	index_destroy(idx);
	(void)seed;
	test_end("basic");
}

/* ------------------------------------------------------------------------ */
/* Model test. Entries are ids; payload(id) is a bijection on 44 bits so the
 * payloads cover the whole field. */

#define PAY_MUL 0x5851f42d4c957ull /* odd: a bijection modulo 2^44 */

static uint64_t pay_inv_mul;

static uint64_t payload_of(uint64_t id) { return (id * PAY_MUL) & INDEX_PAYLOAD_MASK; }
static uint64_t id_of(uint64_t payload) { return (payload * pay_inv_mul) & INDEX_PAYLOAD_MASK; }

struct vec {
	uint32_t *v;
	uint32_t n, cap;
};

static void vec_push(struct vec *a, uint32_t x)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		a->v = realloc(a->v, a->cap * sizeof(*a->v));
		CHECK(a->v != NULL);
	}
	a->v[a->n++] = x;
}

struct model {
	/* hash pool */
	uint32_t nh;
	uint64_t *hash;    /* [nh] */
	uint32_t *group;   /* [nh] bucket (prefix) id */
	uint32_t ngroups;
	uint32_t *hot;     /* hashes of big buckets */
	uint32_t nhot;
	/* entries */
	uint32_t cap, next;
	uint32_t *e_hash;  /* [id] hash index */
	bool *e_alive;
	uint32_t *e_pos;   /* position in live[] */
	uint32_t *e_gpos;  /* position in its group's list */
	uint32_t *live;
	uint32_t nlive;
	struct vec *glive; /* [group] live ids */
	uint8_t *seen;     /* scratch, [id] */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void model_build_pool(struct model *m, uint64_t *rs)
{
	/* 6 segments, including the first and last; per segment 64
	 * fingerprints, several in runs of neighbours (same home slot in
	 * small tables), one segment with fingerprints 0 and 1 (one bucket).
	 * Each fingerprint gets 1..12 hashes that differ in the low bits only;
	 * a few "hot" ones get 30. */
	const uint32_t segs[6] = {0, 1, 2047, 4095, 100 + rnd(rs, 1000), 3000 + rnd(rs, 1000)};
	uint32_t cap = 6 * 64 * 30;
	m->hash = calloc(cap, sizeof(*m->hash));
	m->group = calloc(cap, sizeof(*m->group));
	m->hot = calloc(cap, sizeof(*m->hot));
	CHECK(m->hash && m->group && m->hot);
	uint64_t prefixes[6 * 64];
	uint32_t np = 0;
	for (uint32_t s = 0; s < 6; s++) {
		uint32_t base = rnd(rs, 1u << FP_BITS);
		for (uint32_t f = 0; f < 64; f++) {
			uint32_t fp;
			if (s == 2 && f < 2)
				fp = f; /* 0 and 1 */
			else if (f < 24)
				fp = (base + f) & FP_MASK; /* neighbours */
			else if (f < 32)
				fp = (base & ~0x3ffu) + rnd(rs, 0x400); /* same high bits */
			else
				fp = rnd(rs, 1u << FP_BITS);
			uint64_t pfx = prefix_of(mk_hash(segs[s], fp, 0));
			bool dup = false;
			for (uint32_t i = 0; i < np; i++)
				dup |= prefixes[i] == pfx;
			if (!dup)
				prefixes[np++] = pfx;
			bool hot = f % 16 == 5;
			uint32_t variants = hot ? 30 : 1 + rnd(rs, 12);
			uint64_t low = test_rand(rs);
			for (uint32_t v = 0; v < variants; v++) {
				/* Variant 1 differs from variant 0 only in bit 0. */
				uint64_t l = v == 1 ? low ^ 1 : v == 0 ? low : test_rand(rs);
				uint64_t h = mk_hash(segs[s], fp, l);
				if (hot)
					m->hot[m->nhot++] = m->nh;
				m->hash[m->nh++] = h;
			}
		}
	}
	qsort(prefixes, np, sizeof(prefixes[0]), cmp_u64);
	m->ngroups = np;
	for (uint32_t i = 0; i < m->nh; i++) {
		uint64_t pfx = prefix_of(m->hash[i]);
		uint64_t *p = bsearch(&pfx, prefixes, np, sizeof(prefixes[0]), cmp_u64);
		CHECK(p != NULL);
		m->group[i] = (uint32_t)(p - prefixes);
	}
	m->glive = calloc(np, sizeof(*m->glive));
	CHECK(m->glive);
}

static void model_init(struct model *m, uint64_t *rs, uint32_t max_ids)
{
	memset(m, 0, sizeof(*m));
	model_build_pool(m, rs);
	m->cap = max_ids;
	m->e_hash = calloc(max_ids, sizeof(uint32_t));
	m->e_alive = calloc(max_ids, sizeof(bool));
	m->e_pos = calloc(max_ids, sizeof(uint32_t));
	m->e_gpos = calloc(max_ids, sizeof(uint32_t));
	m->live = calloc(max_ids, sizeof(uint32_t));
	m->seen = calloc(max_ids, 1);
	CHECK(m->e_hash && m->e_alive && m->e_pos && m->e_gpos && m->live && m->seen);
}

static void model_free(struct model *m)
{
	for (uint32_t g = 0; g < m->ngroups; g++)
		free(m->glive[g].v);
	free(m->glive);
	free(m->hash);
	free(m->group);
	free(m->hot);
	free(m->e_hash);
	free(m->e_alive);
	free(m->e_pos);
	free(m->e_gpos);
	free(m->live);
	free(m->seen);
}

static uint32_t model_add(struct model *m, uint32_t hi)
{
	CHECK(m->next < m->cap);
	uint32_t id = m->next++;
	m->e_hash[id] = hi;
	m->e_alive[id] = true;
	m->e_pos[id] = m->nlive;
	m->live[m->nlive++] = id;
	struct vec *g = &m->glive[m->group[hi]];
	m->e_gpos[id] = g->n;
	vec_push(g, id);
	return id;
}

static void model_kill(struct model *m, uint32_t id)
{
	CHECK(m->e_alive[id]);
	m->e_alive[id] = false;
	uint32_t last = m->live[--m->nlive];
	m->live[m->e_pos[id]] = last;
	m->e_pos[last] = m->e_pos[id];
	struct vec *g = &m->glive[m->group[m->e_hash[id]]];
	uint32_t glast = g->v[--g->n];
	g->v[m->e_gpos[id]] = glast;
	m->e_gpos[glast] = m->e_gpos[id];
}

/* lookup(hash) must return every live payload of the bucket and nothing
 * else (no removed or replaced payload, nothing from other buckets). */
static void model_check_lookup(struct model *m, struct index *idx, uint32_t hi, uint64_t op)
{
	enum { MAX = 512 };
	uint64_t buf[MAX];
	uint64_t h = m->hash[hi];
	struct vec *g = &m->glive[m->group[hi]];
	unsigned n = index_lookup(idx, h, buf, MAX);
	CHECK(g->n < MAX); /* the model keeps buckets smaller */
	SOFT(n < MAX, "op %llu: lookup filled the whole buffer", (unsigned long long)op);
	for (unsigned i = 0; i < n; i++) {
		uint64_t id = id_of(buf[i]);
		if (id >= m->next || !m->e_alive[id] || m->group[m->e_hash[id]] != m->group[hi]) {
			test_soft_fail(__FILE__, __LINE__,
			     "op %llu: lookup(%#llx) returned payload %#llx (id %llu, %s)",
			     (unsigned long long)op, (unsigned long long)h, (unsigned long long)buf[i],
			     (unsigned long long)id,
			     id >= m->next ? "never inserted"
			     : !m->e_alive[id] ? "removed or replaced"
					       : "other bucket");
			continue;
		}
		m->seen[id] = 1;
	}
	for (uint32_t i = 0; i < g->n; i++) {
		uint32_t id = g->v[i];
		SOFT(m->seen[id], "op %llu: lookup(%#llx) misses payload %#llx (bucket of %u live)",
		     (unsigned long long)op, (unsigned long long)h,
		     (unsigned long long)payload_of(id), g->n);
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t id = id_of(buf[i]);
		if (id < m->next)
			m->seen[id] = 0;
	}
	for (uint32_t i = 0; i < g->n; i++)
		m->seen[g->v[i]] = 0;
}

static void test_model(uint64_t seed)
{
	test_begin("model");
	uint64_t rs = seed ^ 0x6d6f64656cull;
	const uint32_t ops = quick ? 60000 : 200000;
	struct model m;
	model_init(&m, &rs, ops + 16);
	fprintf(stderr, "pool: %u hashes in %u buckets, %u in hot buckets\n", m.nh, m.ngroups, m.nhot);
	struct index *idx;
	CHECK_EQ(index_create(&idx, 0), 0);
	uint64_t cnt[8] = {0};
	uint32_t target = 4000, max_live = 0;

	for (uint64_t op = 0; op < ops; op++) {
		if (op % 20000 == 0)
			target = target == 4000 ? 300 + rnd(&rs, 500) : 3000 + rnd(&rs, 3000);
		uint32_t r = rnd(&rs, 100);
		uint32_t ins = m.nlive < target ? 40 : 15;
		if (m.nlive == 0 || r < ins) {
			/* insert; a quarter goes to the hot buckets (bounded) */
			uint32_t hi = rnd(&rs, 4) == 0 ? m.hot[rnd(&rs, m.nhot)] : rnd(&rs, m.nh);
			if (m.glive[m.group[hi]].n >= 120)
				hi = rnd(&rs, m.nh);
			if (m.glive[m.group[hi]].n >= 400)
				continue;
			uint32_t id = model_add(&m, hi);
			int err = index_insert(idx, m.hash[hi], payload_of(id));
			SOFT(err == 0, "op %llu: insert -> %d", (unsigned long long)op, err);
			cnt[0]++;
		} else if (r < ins + 15) {
			uint32_t id = m.live[rnd(&rs, m.nlive)];
			int err = index_remove(idx, m.hash[m.e_hash[id]], payload_of(id));
			SOFT(err == 0, "op %llu: remove existing -> %d", (unsigned long long)op, err);
			model_kill(&m, id);
			cnt[1]++;
		} else if (r < ins + 35) {
			uint32_t old = m.live[rnd(&rs, m.nlive)];
			uint32_t hi = m.e_hash[old];
			model_kill(&m, old);
			uint32_t id = model_add(&m, hi);
			int err = index_replace(idx, m.hash[hi], payload_of(old), payload_of(id));
			SOFT(err == 0, "op %llu: replace existing -> %d", (unsigned long long)op, err);
			cnt[2]++;
		} else if (r < ins + 42) {
			/* replace or remove of an entry that does not exist: a dead
			 * payload, or a live one under another bucket's hash */
			uint32_t id;
			uint32_t hi;
			if (rnd(&rs, 2) && m.next > m.nlive) {
				do
					id = rnd(&rs, m.next);
				while (m.e_alive[id]);
				hi = rnd(&rs, 3) ? m.e_hash[id] : rnd(&rs, m.nh);
				if (rnd(&rs, 2) == 0 && m.glive[m.group[hi]].n) /* same bucket */
					hi = m.e_hash[m.glive[m.group[hi]].v[0]];
			} else {
				id = m.live[rnd(&rs, m.nlive)];
				hi = rnd(&rs, m.nh);
				if (m.group[hi] == m.group[m.e_hash[id]])
					continue;
			}
			uint64_t fresh = payload_of(m.cap + 1 + rnd(&rs, 1000)); /* never used */
			int err = rnd(&rs, 2) ? index_remove(idx, m.hash[hi], payload_of(id))
					      : index_replace(idx, m.hash[hi], payload_of(id), fresh);
			SOFT(err == -ENOENT, "op %llu: replace/remove of absent (hash %#llx, %#llx) -> %d",
			     (unsigned long long)op, (unsigned long long)m.hash[hi],
			     (unsigned long long)payload_of(id), err);
			SOFT(!index_contains(idx, m.hash[hi], fresh), "op %llu: failed replace inserted",
			     (unsigned long long)op);
			cnt[3]++;
		} else if (r < ins + 72) {
			uint32_t hi = rnd(&rs, 3) == 0 ? m.hot[rnd(&rs, m.nhot)] : rnd(&rs, m.nh);
			model_check_lookup(&m, idx, hi, op);
			/* with a small max, exactly min(max, live) */
			unsigned max = 1 + rnd(&rs, 4);
			uint64_t buf[4];
			unsigned n = index_lookup(idx, m.hash[hi], buf, max);
			unsigned want = m.glive[m.group[hi]].n < max ? m.glive[m.group[hi]].n : max;
			SOFT(n == want, "op %llu: lookup max %u returned %u, want %u",
			     (unsigned long long)op, max, n, want);
			cnt[4]++;
		} else {
			/* contains: live (true), dead (false), live under another bucket (false) */
			uint32_t k = rnd(&rs, 3);
			uint32_t id = k == 1 && m.next > m.nlive ? rnd(&rs, m.next) : m.live[rnd(&rs, m.nlive)];
			uint32_t hi = k == 2 ? rnd(&rs, m.nh) : m.e_hash[id];
			bool want = m.e_alive[id] && m.group[hi] == m.group[m.e_hash[id]];
			bool got = index_contains(idx, m.hash[hi], payload_of(id));
			SOFT(got == want,
			     "op %llu: index_contains(%#llx, %#llx) = %d, want %d (bucket has %u live)",
			     (unsigned long long)op, (unsigned long long)m.hash[hi],
			     (unsigned long long)payload_of(id), got, want, m.glive[m.group[hi]].n);
			cnt[5]++;
		}
		if (m.nlive > max_live)
			max_live = m.nlive;
		if (op % 1000 == 999) {
			uint64_t c = index_count(idx);
			SOFT(c == m.nlive, "op %llu: index_count %llu, want %u", (unsigned long long)op,
			     (unsigned long long)c, m.nlive);
		}
	}
	/* Final: every hash of the pool, the count, and a full walk. */
	for (uint32_t hi = 0; hi < m.nh; hi++)
		model_check_lookup(&m, idx, hi, ops);
	SOFT(index_count(idx) == m.nlive, "final index_count %llu, want %u",
	     (unsigned long long)index_count(idx), m.nlive);
	uint32_t biggest = 0;
	for (uint32_t g = 0; g < m.ngroups; g++)
		if (m.glive[g].n > biggest)
			biggest = m.glive[g].n;
	fprintf(stderr,
		"ops: %llu insert, %llu remove, %llu replace, %llu absent, %llu lookup, %llu contains;"
		" live %u (max %u), biggest bucket %u\n",
		(unsigned long long)cnt[0], (unsigned long long)cnt[1], (unsigned long long)cnt[2],
		(unsigned long long)cnt[3], (unsigned long long)cnt[4], (unsigned long long)cnt[5],
		m.nlive, max_live, biggest);
	index_destroy(idx);
	model_free(&m);
	test_end("model");
}

/* ------------------------------------------------------------------------ */

struct walk_ctx {
	uint8_t *visits; /* per id */
	uint64_t n, limit, bad;
	uint64_t nids;
};

static bool walk_visit(void *arg, uint64_t payload)
{
	struct walk_ctx *w = arg;
	w->n++;
	if (payload < w->nids) {
		if (w->visits[payload] < 255)
			w->visits[payload]++;
	} else {
		w->bad++;
	}
	return w->limit == 0 || w->n < w->limit;
}

static void test_walk(uint64_t seed)
{
	test_begin("walk");
	uint64_t rs = seed ^ 0x77616c6bull;
	const uint32_t n = quick ? 50000 : 200000;
	uint64_t *hash = malloc(n * sizeof(*hash));
	struct walk_ctx w = {.visits = calloc(n, 1), .nids = n};
	CHECK(hash && w.visits);
	struct index *idx;
	CHECK_EQ(index_create(&idx, 0), 0);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = rnd(&rs, 8);
		if (k == 0) /* crowd segment 0 and 4095 and their ends */
			hash[i] = mk_hash(rnd(&rs, 2) ? 0 : 4095, rnd(&rs, 4) ? rnd(&rs, 8) : FP_MASK - rnd(&rs, 8),
					  test_rand(&rs));
		else if (k == 1 && i > 0) /* same bucket as an earlier one */
			hash[i] = hash[rnd(&rs, i)] ^ (test_rand(&rs) & LOW_MASK);
		else
			hash[i] = test_rand(&rs);
		CHECK_EQ(index_insert(idx, hash[i], i), 0);
	}
	/* Remove a tenth so deleted slots are on the way. */
	for (uint32_t i = 0; i < n; i += 10)
		CHECK_EQ(index_remove(idx, hash[i], i), 0);

	unsigned rounds = quick ? 60 : 200;
	uint64_t extra = 0, visited = 0;
	for (unsigned r = 0; r < rounds; r++) {
		uint64_t lo, hi;
		switch (r) {
		case 0: lo = 0; hi = UINT64_MAX; break;
		case 1: lo = 0; hi = mk_hash(0, FP_MASK, LOW_MASK); break;        /* segment 0 */
		case 2: lo = mk_hash(4095, 0, 0); hi = UINT64_MAX; break;          /* last segment */
		case 3: lo = mk_hash(0, 3, 0); hi = mk_hash(0, 3, LOW_MASK); break; /* one bucket */
		case 4: lo = mk_hash(0, 0, 123); hi = mk_hash(0, 1, 0); break;     /* fp 0 and 1 */
		case 5: lo = mk_hash(4095, FP_MASK - 3, 7); hi = UINT64_MAX; break;
		default: {
			uint64_t a = test_rand(&rs), b;
			uint32_t k = rnd(&rs, 4);
			if (k == 0)
				b = a + (test_rand(&rs) >> 20); /* within a few segments */
			else if (k == 1)
				b = a + (test_rand(&rs) >> 40); /* within one segment */
			else if (k == 2)
				b = hash[rnd(&rs, n)], a = b - (test_rand(&rs) >> 44); /* ending on an entry */
			else
				b = test_rand(&rs);
			lo = a < b ? a : b;
			hi = a < b ? b : a;
		}
		}
		memset(w.visits, 0, n);
		w.n = w.bad = 0;
		w.limit = 0;
		index_walk(idx, lo, hi, walk_visit, &w);
		SOFT(w.bad == 0, "walk [%#llx, %#llx]: %llu payloads never inserted",
		     (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)w.bad);
		uint64_t missing = 0, dup = 0, removed = 0, want = 0;
		for (uint32_t i = 0; i < n; i++) {
			bool live = i % 10 != 0;
			bool in = hash[i] >= lo && hash[i] <= hi;
			if (w.visits[i] > 1)
				dup++;
			if (w.visits[i] && !live)
				removed++;
			if (live && in) {
				want++;
				if (!w.visits[i]) {
					if (missing < 3)
						test_soft_fail(__FILE__, __LINE__,
						     "walk [%#llx, %#llx] missed entry %u hash %#llx",
						     (unsigned long long)lo, (unsigned long long)hi, i,
						     (unsigned long long)hash[i]);
					missing++;
				}
			}
			if (live && !in && w.visits[i]) {
				extra++;
				/* Only the top 31 bits are known to the index: an
				 * extra must share its prefix range. */
				uint64_t p = prefix_of(hash[i]);
				SOFT(p >= prefix_of(lo) && p <= prefix_of(hi),
				     "walk [%#llx, %#llx] visited far entry %#llx", (unsigned long long)lo,
				     (unsigned long long)hi, (unsigned long long)hash[i]);
			}
		}
		visited += w.n;
		SOFT(missing == 0, "walk [%#llx, %#llx]: %llu of %llu entries missed",
		     (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)missing,
		     (unsigned long long)want);
		SOFT(dup == 0, "walk: %llu entries visited twice on a quiet index", (unsigned long long)dup);
		SOFT(removed == 0, "walk: %llu removed entries visited", (unsigned long long)removed);
		if (r == 0)
			SOFT(w.n == index_count(idx), "full walk visited %llu, count %llu",
			     (unsigned long long)w.n, (unsigned long long)index_count(idx));
	}
	/* lo > hi: nothing. */
	w.n = 0;
	index_walk(idx, 5, 4, walk_visit, &w);
	SOFT(w.n == 0, "walk with lo > hi visited %llu", (unsigned long long)w.n);
	/* The visitor stops the walk by returning false. */
	w.n = 0;
	w.limit = 10;
	index_walk(idx, 0, UINT64_MAX, walk_visit, &w);
	SOFT(w.n == 10, "walk went on after the visitor returned false: %llu visits",
	     (unsigned long long)w.n);
	fprintf(stderr, "%u ranges, %llu visits, %llu extra entries outside the exact range\n", rounds,
		(unsigned long long)visited, (unsigned long long)extra);
	index_destroy(idx);
	free(hash);
	free(w.visits);
	test_end("walk");
}

/* ------------------------------------------------------------------------ */

/* Fingerprint i of the full segment: 19-bit bit reversal, so the home
 * slots of consecutive entries spread evenly in every table size. */
static uint32_t full_fp(uint32_t i)
{
	uint32_t r = 0;
	for (unsigned b = 0; b < FP_BITS; b++)
		r |= ((i >> b) & 1u) << (FP_BITS - 1 - b);
	return r;
}

static void test_segment_full(uint64_t seed)
{
	test_begin("segment_full");
	struct index *idx;
	CHECK_EQ(index_create(&idx, 0), 0);
	const uint32_t seg = 1234;
	/* Distinct fingerprints. */
	uint32_t ok = 0;
	int err = 0;
	for (uint32_t i = 0; i < (1u << FP_BITS); i++) {
		err = index_insert(idx, mk_hash(seg, full_fp(i), i), i);
		if (err)
			break;
		ok++;
	}
	fprintf(stderr, "one segment took %u entries, then %d\n", ok, err);
	SOFT(err == -ENOMEM, "a full segment: insert -> %d, want -ENOMEM", err);
	SOFT(ok >= (3u << FP_BITS) / 8, "a segment holds at least 3/8 of 2^19 slots: %u", ok);
	SOFT(index_count(idx) == ok, "count %llu after -ENOMEM, want %u",
	     (unsigned long long)index_count(idx), ok);
	unsigned missing = 0;
	for (uint32_t i = 0; i < ok; i++)
		missing += !index_contains(idx, mk_hash(seg, full_fp(i), i), i);
	SOFT(missing == 0, "%u entries lost in the full segment", missing);
	/* Other segments still take entries. */
	SOFT(index_insert(idx, mk_hash(seg + 1, 5, 5), 1u << 30) == 0, "insert into another segment");
	/* Free one slot: an insert must fit again (the rebuild drops deleted
	 * slots). */
	SOFT(index_remove(idx, mk_hash(seg, full_fp(0), 0), 0) == 0, "remove in full segment");
	err = index_insert(idx, mk_hash(seg, 77, 1), (1u << 30) + 1);
	SOFT(err == 0, "insert after a remove in a full segment -> %d", err);
	SOFT(index_contains(idx, mk_hash(seg, 77, 1), (1u << 30) + 1), "entry after refill");
	SOFT(index_count(idx) == (uint64_t)ok + 1, "count after refill %llu, want %u",
	     (unsigned long long)index_count(idx), ok + 1);
	index_destroy(idx);
	(void)seed;
	test_end("segment_full");
}

/* ------------------------------------------------------------------------ */

static void check_all_found(struct index *idx, uint64_t seed, uint64_t n, const char *what)
{
	uint64_t rs = seed;
	uint64_t missing = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t h = test_rand(&rs);
		if (!index_contains(idx, h, i)) {
			if (missing < 3)
				test_soft_fail(__FILE__, __LINE__, "%s: entry %llu (hash %#llx) not found", what,
				     (unsigned long long)i, (unsigned long long)h);
			missing++;
		}
	}
	SOFT(missing == 0, "%s: %llu of %llu entries not found", what, (unsigned long long)missing,
	     (unsigned long long)n);
}

/* index_load: bulk loading gives the same index as index_insert, grows
 * segments past their hint, and the result takes ordinary operations. */
static void test_load(uint64_t seed)
{
	test_begin("load");
	uint64_t n = quick ? 100000 : 1000000;
	struct index *a, *b;
	CHECK_EQ(index_create(&a, n / 4), 0); /* too small: loading must grow it */
	CHECK_EQ(index_create(&b, n / 4), 0);
	uint64_t rs = seed;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t h = test_rand(&rs);
		CHECK_EQ(index_load(a, h, i), 0);
		CHECK_EQ(index_insert(b, h, i), 0);
	}
	SOFT(index_count(a) == n, "load count %llu", (unsigned long long)index_count(a));
	SOFT(index_count(a) == index_count(b), "load vs insert count");
	check_all_found(a, seed, n, "load");
	rs = seed;
	for (uint64_t i = 0; i < n; i += 2) {
		uint64_t h = test_rand(&rs);
		SOFT(index_replace(a, h, i, i + n) == 0, "replace after load");
		test_rand(&rs);
	}
	rs = seed;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t h = test_rand(&rs);
		SOFT(index_contains(a, h, i % 2 ? i : i + n), "entry %llu after replace", (unsigned long long)i);
	}
	index_destroy(a);
	index_destroy(b);
	test_end("load");
}

static void test_growth(uint64_t seed)
{
	double t0 = test_now_s();
	test_begin("growth");
	/* 10M keys; 2M when quick; 1M under TSan (~10x slower on atomics). */
	const uint64_t full = TEST_TSAN ? 1000000 : quick ? 2000000 : 10000000;
	const uint64_t mid = full < 2000000 ? full : 2000000;
	uint64_t hseed = seed ^ 0x67726f77ull, rs = hseed;
	struct index *idx;
	CHECK_EQ(index_create(&idx, 0), 0);
	double worst = 0;
	uint64_t worst_at = 0;
	char line[512];
	int len = snprintf(line, sizeof(line), "bytes/key:");
	for (uint64_t i = 0; i < full; i++) {
		int err = index_insert(idx, test_rand(&rs), i);
		if (err) {
			test_soft_fail(__FILE__, __LINE__, "insert %llu -> %d", (unsigned long long)i, err);
			break;
		}
		uint64_t n = i + 1;
		if (n % 500000 == 0) {
			double bpk = (double)index_bytes(idx) / (double)index_count(idx);
			SOFT(index_count(idx) == n, "count %llu, want %llu",
			     (unsigned long long)index_count(idx), (unsigned long long)n);
			if (len < (int)sizeof(line) - 32)
				len += snprintf(line + len, sizeof(line) - (size_t)len, " %.1fM:%.1f",
						(double)n / 1e6, bpk);
			/* index.h: 11 to 21 bytes a key once the fixed part is
			 * amortised (the bound here leaves room: 24). */
			if (n >= 1000000 && bpk > worst) {
				worst = bpk;
				worst_at = n;
			}
		}
		if (n == mid) {
			double bpk = (double)index_bytes(idx) / (double)index_count(idx);
			fprintf(stderr, "at %llu keys: %llu bytes, %.2f bytes/key (%.2fs)\n",
				(unsigned long long)n, (unsigned long long)index_bytes(idx), bpk,
				test_now_s() - t0);
			check_all_found(idx, hseed, n, "first check");
			SOFT(bpk <= 24.0, "%.2f bytes/key at %llu keys, want <= 24", bpk, (unsigned long long)n);
		}
	}
	fprintf(stderr, "%s\n", line);
	if (full > mid) {
		double bpk = (double)index_bytes(idx) / (double)index_count(idx);
		fprintf(stderr, "at %llu keys: %llu bytes, %.2f bytes/key (%.2fs)\n",
			(unsigned long long)full, (unsigned long long)index_bytes(idx), bpk, test_now_s() - t0);
		SOFT(bpk <= 16.0, "%.2f bytes/key at 10M keys, want <= 16", bpk);
		check_all_found(idx, hseed, full, "at the end");
	}
	fprintf(stderr, "worst bytes/key from 1M keys on (sampled every 500k): %.2f at %llu\n", worst,
		(unsigned long long)worst_at);
	SOFT(worst <= 24.0,
	     "%.2f bytes/key at %llu keys: index.h promises 11 to 21 (growth at 3/4 load to 3/8), "
	     "bound here 24", worst, (unsigned long long)worst_at);
	index_destroy(idx);
	test_end("growth");
}

/* ------------------------------------------------------------------------ */
/* Concurrency. Payload = key id << 20 | version; versions start at 1. */

#define CW 4
#define CR 2
#define VER_BITS 20u
#define VER_MASK ((1u << VER_BITS) - 1)

enum { K_STATIC, K_REPLACE, K_DYNAMIC };

struct ckey {
	uint64_t hash;
	_Atomic uint32_t ver_pub; /* highest version ever used (release) */
	uint32_t ver;             /* current version (writer-owned) */
	bool present;             /* writer-owned */
	uint8_t kind;
};

struct conc {
	struct index *idx;
	struct ckey *keys;
	uint32_t nkeys;
	uint32_t writer_iters, reader_iters;
	uint64_t seed;
	_Atomic bool writers_done;
	_Atomic uint64_t reads, walks;
};

struct conc_arg {
	struct conc *c;
	unsigned id;
};

static uint64_t cpay(uint32_t k, uint32_t ver) { return (uint64_t)k << VER_BITS | ver; }

static void *conc_writer(void *p)
{
	struct conc_arg *a = p;
	struct conc *c = a->c;
	uint64_t rs = c->seed ^ (0x1000 + a->id);
	uint32_t per = c->nkeys / CW;
	uint32_t first = a->id * per;
	for (uint32_t it = 0; it < c->writer_iters; it++) {
		uint32_t k = first + rnd(&rs, per);
		struct ckey *ck = &c->keys[k];
		if (ck->kind == K_STATIC)
			continue;
		uint32_t r = rnd(&rs, 100);
		if (ck->kind == K_REPLACE || (ck->present && r < 50)) {
			uint32_t v = ck->ver + 1;
			CHECK(v <= VER_MASK);
			atomic_store_explicit(&ck->ver_pub, v, memory_order_release);
			int err = index_replace(c->idx, ck->hash, cpay(k, ck->ver), cpay(k, v));
			SOFT(err == 0, "writer %u: replace key %u v%u -> %d", a->id, k, ck->ver, err);
			ck->ver = v;
		} else if (!ck->present) {
			uint32_t v = ck->ver + 1;
			CHECK(v <= VER_MASK);
			atomic_store_explicit(&ck->ver_pub, v, memory_order_release);
			int err = index_insert(c->idx, ck->hash, cpay(k, v));
			SOFT(err == 0, "writer %u: insert key %u -> %d", a->id, k, err);
			ck->ver = v;
			ck->present = true;
		} else if (r < 85) {
			int err = index_remove(c->idx, ck->hash, cpay(k, ck->ver));
			SOFT(err == 0, "writer %u: remove key %u v%u -> %d", a->id, k, ck->ver, err);
			ck->present = false;
		} else {
			/* stale payloads: -ENOENT; the current one is there */
			int err = index_replace(c->idx, ck->hash, cpay(k, ck->ver - 1), cpay(k, VER_MASK));
			SOFT(err == -ENOENT, "writer %u: replace stale key %u -> %d", a->id, k, err);
			err = index_remove(c->idx, ck->hash, cpay(k, ck->ver + 1));
			SOFT(err == -ENOENT, "writer %u: remove unused key %u -> %d", a->id, k, err);
			SOFT(index_contains(c->idx, ck->hash, cpay(k, ck->ver)),
			     "writer %u: own key %u v%u not found", a->id, k, ck->ver);
		}
	}
	return NULL;
}

/* A payload seen for hash h must be an inserted version of a key in the
 * same bucket. */
static bool payload_valid(struct conc *c, uint64_t h, uint64_t p, const char *who)
{
	uint64_t k = p >> VER_BITS;
	uint32_t v = (uint32_t)(p & VER_MASK);
	if (k >= c->nkeys || v == 0) {
		test_soft_fail(__FILE__, __LINE__, "%s: hash %#llx gave payload %#llx: no such key/version", who,
		     (unsigned long long)h, (unsigned long long)p);
		return false;
	}
	if (prefix_of(c->keys[k].hash) != prefix_of(h)) {
		test_soft_fail(__FILE__, __LINE__, "%s: hash %#llx gave payload %#llx of key %llu in another bucket",
		     who, (unsigned long long)h, (unsigned long long)p, (unsigned long long)k);
		return false;
	}
	uint32_t pub = atomic_load_explicit(&c->keys[k].ver_pub, memory_order_acquire);
	if (v > pub) {
		test_soft_fail(__FILE__, __LINE__, "%s: hash %#llx gave payload %#llx: version %u never inserted (max %u)",
		     who, (unsigned long long)h, (unsigned long long)p, v, pub);
		return false;
	}
	return true;
}

struct cwalk {
	struct conc *c;
	uint64_t lo, hi;
	uint64_t want; /* a static key's payload, or ~0 */
	bool found;
};

static bool conc_walk_visit(void *arg, uint64_t payload)
{
	struct cwalk *w = arg;
	if (payload == w->want)
		w->found = true;
	uint64_t k = payload >> VER_BITS;
	if (k >= w->c->nkeys) {
		test_soft_fail(__FILE__, __LINE__, "walk: payload %#llx of no key", (unsigned long long)payload);
		return true;
	}
	uint64_t pfx = prefix_of(w->c->keys[k].hash);
	SOFT(pfx >= prefix_of(w->lo) && pfx <= prefix_of(w->hi), "walk: payload %#llx outside range",
	     (unsigned long long)payload);
	return true;
}

static void *conc_reader(void *p)
{
	struct conc_arg *a = p;
	struct conc *c = a->c;
	uint64_t rs = c->seed ^ (0x2000 + a->id);
	uint64_t buf[64];
	uint64_t reads = 0, walks = 0;
	for (uint32_t it = 0; it < c->reader_iters && !atomic_load(&c->writers_done); it++) {
		uint32_t k = rnd(&rs, c->nkeys);
		struct ckey *ck = &c->keys[k];
		unsigned n = index_lookup(c->idx, ck->hash, buf, 64);
		reads++;
		SOFT(n < 64, "reader: bucket overflowed the buffer");
		bool mine = false, stat = false;
		for (unsigned i = 0; i < n; i++) {
			if (!payload_valid(c, ck->hash, buf[i], "reader"))
				continue;
			if (buf[i] >> VER_BITS == k)
				mine = true;
			if (ck->kind == K_STATIC && buf[i] == cpay(k, 1))
				stat = true;
		}
		/* Keys present throughout must be found, during rebuilds too. */
		if (ck->kind == K_STATIC)
			SOFT(stat, "reader: static key %u (hash %#llx) not found (%u results)", k,
			     (unsigned long long)ck->hash, n);
		if (ck->kind == K_REPLACE)
			SOFT(mine, "reader: replace-only key %u (hash %#llx) not found (%u results)", k,
			     (unsigned long long)ck->hash, n);
		if (it % 512 == 0) {
			/* walk the bucket range around this key's segment part */
			struct cwalk w = {.c = c, .want = ck->kind == K_STATIC ? cpay(k, 1) : ~0ull};
			uint64_t span = 1ull << (LOW_BITS + 6 + rnd(&rs, 12));
			w.lo = ck->hash > span ? ck->hash - span : 0;
			w.hi = ck->hash < UINT64_MAX - span ? ck->hash + span : UINT64_MAX;
			index_walk(c->idx, w.lo, w.hi, conc_walk_visit, &w);
			if (ck->kind == K_STATIC)
				SOFT(w.found, "walk: static key %u not visited", k);
			walks++;
		}
	}
	atomic_fetch_add(&c->reads, reads);
	atomic_fetch_add(&c->walks, walks);
	return NULL;
}

struct fwalk {
	struct conc *c;
	uint8_t *visits; /* per key */
	uint64_t n;
};

static bool final_walk_visit(void *arg, uint64_t payload)
{
	struct fwalk *w = arg;
	w->n++;
	uint64_t k = payload >> VER_BITS;
	if (k < w->c->nkeys && payload == cpay((uint32_t)k, w->c->keys[k].ver) && w->visits[k] < 255)
		w->visits[k]++;
	else
		test_soft_fail(__FILE__, __LINE__, "final walk: payload %#llx is not a current entry",
		     (unsigned long long)payload);
	return true;
}

static void test_concurrency(uint64_t seed)
{
	test_begin("concurrency");
	uint64_t rs = seed ^ 0x636f6e63ull;
	struct conc c = {.seed = seed, .nkeys = CW * 3000,
			 .writer_iters = TEST_SANITIZED ? 60000 : quick ? 100000 : 1000000,
			 .reader_iters = TEST_SANITIZED ? 200000 : 2000000};
	c.keys = calloc(c.nkeys, sizeof(*c.keys));
	CHECK(c.keys);
	/* All keys in 16 segments, so every segment is written by every
	 * writer; an eighth share a fingerprint with another key (of any
	 * writer). The low bits hold the key id: hashes are unique. */
	uint32_t segs[16];
	for (unsigned i = 0; i < 16; i++)
		segs[i] = rnd(&rs, SEGS);
	for (uint32_t k = 0; k < c.nkeys; k++) {
		struct ckey *ck = &c.keys[k];
		if (k > 0 && rnd(&rs, 8) == 0) {
			uint64_t other = c.keys[rnd(&rs, k)].hash;
			ck->hash = (other & ~LOW_MASK) | k;
		} else {
			ck->hash = mk_hash(segs[rnd(&rs, 16)], rnd(&rs, 1u << FP_BITS), k);
		}
		uint32_t r = rnd(&rs, 10);
		ck->kind = r == 0 ? K_STATIC : r == 1 ? K_REPLACE : K_DYNAMIC;
	}
	CHECK_EQ(index_create(&c.idx, 0), 0);
	/* Static and replace-only keys are there before the threads start. */
	for (uint32_t k = 0; k < c.nkeys; k++) {
		struct ckey *ck = &c.keys[k];
		if (ck->kind == K_DYNAMIC)
			continue;
		ck->ver = 1;
		ck->present = true;
		atomic_store(&ck->ver_pub, 1);
		CHECK_EQ(index_insert(c.idx, ck->hash, cpay(k, 1)), 0);
	}
	uint64_t bytes0 = index_bytes(c.idx);
	pthread_t th[CW + CR];
	struct conc_arg args[CW + CR];
	for (unsigned i = 0; i < CR; i++) {
		args[CW + i] = (struct conc_arg){&c, i};
		CHECK_EQ(pthread_create(&th[CW + i], NULL, conc_reader, &args[CW + i]), 0);
	}
	for (unsigned i = 0; i < CW; i++) {
		args[i] = (struct conc_arg){&c, i};
		CHECK_EQ(pthread_create(&th[i], NULL, conc_writer, &args[i]), 0);
	}
	for (unsigned i = 0; i < CW; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	atomic_store(&c.writers_done, true);
	for (unsigned i = 0; i < CR; i++)
		CHECK_EQ(pthread_join(th[CW + i], NULL), 0);

	/* Final contents: exactly the present keys at their current versions. */
	uint64_t present = 0;
	uint64_t buf[64];
	for (uint32_t k = 0; k < c.nkeys; k++) {
		struct ckey *ck = &c.keys[k];
		present += ck->present;
		unsigned n = index_lookup(c.idx, ck->hash, buf, 64);
		unsigned mine = 0;
		bool cur = false;
		for (unsigned i = 0; i < n; i++) {
			payload_valid(&c, ck->hash, buf[i], "final");
			if (buf[i] >> VER_BITS == k) {
				mine++;
				cur |= buf[i] == cpay(k, ck->ver);
			}
		}
		if (ck->present)
			SOFT(mine == 1 && cur, "final: key %u (v%u) has %u entries, current %s", k, ck->ver,
			     mine, cur ? "found" : "missing");
		else
			SOFT(mine == 0, "final: removed key %u has %u entries (last v%u)", k, mine, ck->ver);
	}
	SOFT(index_count(c.idx) == present, "final: index_count %llu, want %llu",
	     (unsigned long long)index_count(c.idx), (unsigned long long)present);
	/* A full walk sees every entry once. */
	struct fwalk fw = {.c = &c, .visits = calloc(c.nkeys, 1)};
	CHECK(fw.visits);
	index_walk(c.idx, 0, UINT64_MAX, final_walk_visit, &fw);
	uint64_t total = fw.n;
	for (uint32_t k = 0; k < c.nkeys; k++)
		SOFT(fw.visits[k] == (c.keys[k].present ? 1 : 0), "final walk: key %u visited %u times, "
		     "present %d", k, fw.visits[k], c.keys[k].present);
	free(fw.visits);
	SOFT(total == present, "final: full walk visited %llu, want %llu", (unsigned long long)total,
	     (unsigned long long)present);
	fprintf(stderr,
		"%u keys, %u writers x %u ops, %u readers: %llu lookups, %llu walks; %llu present; "
		"%llu -> %llu bytes\n",
		c.nkeys, CW, c.writer_iters, CR, (unsigned long long)atomic_load(&c.reads),
		(unsigned long long)atomic_load(&c.walks), (unsigned long long)present,
		(unsigned long long)bytes0, (unsigned long long)index_bytes(c.idx));
	index_destroy(c.idx);
	free(c.keys);
	test_end("concurrency");
}

/* ------------------------------------------------------------------------ */

int main(void)
{
	const char *q = getenv("DV_TEST_QUICK");
	quick = TEST_SANITIZED || (q && *q && strcmp(q, "0") != 0);
	uint64_t seed = test_seed(20240611);
	alarm(600);
	/* inverse of PAY_MUL modulo 2^64 (Newton), hence modulo 2^44 */
	uint64_t x = PAY_MUL;
	for (int i = 0; i < 6; i++)
		x *= 2 - PAY_MUL * x;
	pay_inv_mul = x;
	CHECK_EQ(id_of(payload_of(123456789)), 123456789);
	fprintf(stderr, "index test%s\n", quick ? " (quick)" : "");
	double t0 = test_now_s();
	/* DV_TEST_ONLY=name runs one test. Concurrency goes last: the bug it
	 * can hit may abort the program inside the index. */
	const char *only = getenv("DV_TEST_ONLY");
	static const struct {
		const char *name;
		void (*fn)(uint64_t);
		bool threads; /* starts threads; the others run on one */
	} tests[] = {
		{"basic", test_basic, false},	      {"model", test_model, false},
		{"walk", test_walk, false},	      {"segment_full", test_segment_full, false},
		{"growth", test_growth, false},	      {"load", test_load, false},
		{"concurrency", test_concurrency, true},
	};
	/* TSan checks what threads share: it runs only the tests that start
	 * threads (the others took 22 of its 24 s, one thread each, nothing it
	 * could report); the plain and ASan+UBSan builds run every test. */
	bool all = only && *only;
	if (TEST_TSAN && !all)
		fprintf(stderr, "TSan build: only the tests that start threads (DV_TEST_ONLY=name runs another)\n");
	for (unsigned i = 0; i < LEN(tests); i++)
		if (all ? strcmp(only, tests[i].name) == 0 : !TEST_TSAN || tests[i].threads)
			tests[i].fn(seed);
	unsigned f = test_soft_failures();
	fprintf(stderr, "%s: %u failed checks (%.2fs)\n", f ? "FAILED" : "passed", f, test_now_s() - t0);
	return f ? 1 : 0;
}
