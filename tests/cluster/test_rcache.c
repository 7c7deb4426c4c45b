/* test_rcache.c - the replica's read cache (src/cluster/rcache.h) against
 * a model of the store it caches.
 *
 * - model: seeded random interleavings over 12 keys of PUTs (submitted,
 *   then completed: the store applies them at completion), GETs (submitted,
 *   then completed with the store's record as of submission or of
 *   completion, as a store may), lookups, pins held across writes and
 *   evictions, and clears, under three byte bounds. Checked after every
 *   step: a lookup of a key with no PUT in flight finds nothing or exactly
 *   the store's record (seq and bytes); a pinned entry's bytes never
 *   change; bytes and entries stay within the bound and match the entries.
 * - race: the GET that read before a PUT and completes after it is not
 *   kept (the case the generations exist for); a GET across a clear is not
 *   kept either.
 * - off: max_bytes 0 keeps nothing.
 * DV_SEED=<n> replays the random part. */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "cluster/rcache.h"
#include "testing.h"

#define KEYS 12u
#define GETS_MAX 8u
#define PINS_MAX 4u

static uint64_t rng;
static uint64_t rnd(uint64_t n) { return n ? test_rand(&rng) % n : 0; }

struct rec {
	uint64_t seq;
	uint32_t meta_len, val_len;
	uint8_t bytes[600];
};

static struct rec store[KEYS];     /* what the store holds (seq 0: nothing) */
static struct rec pending[KEYS];   /* a PUT in flight: what it writes */
static bool put_open[KEYS];
static uint64_t next_seq = 1;

struct get {
	bool used;
	unsigned k;
	uint64_t gen;
	struct rec seen; /* the store's record at submission */
};
static struct get gets[GETS_MAX];

struct pin {
	struct rcache_entry *e;
	uint32_t len;
	uint8_t copy[700];
};
static struct pin pins[PINS_MAX];

static uint8_t key_of(unsigned k, uint8_t out[2])
{
	out[0] = 0;
	out[1] = (uint8_t)('a' + k);
	return 2;
}

static uint64_t hash_of(unsigned k)
{
	uint8_t key[2];
	key_of(k, key);
	return dv_key_hash64(key, 2);
}

static void fill_rec(struct rec *r)
{
	r->seq = next_seq++;
	r->meta_len = (uint32_t)(1 + rnd(40));
	r->val_len = (uint32_t)rnd(rnd(4) == 0 ? 550 : 60);
	for (uint32_t i = 0; i < r->meta_len + r->val_len; i++)
		r->bytes[i] = (uint8_t)test_rand(&rng);
}

static void do_fill(struct rcache *rc, unsigned k, uint64_t gen, const struct rec *r)
{
	uint8_t key[2];
	key_of(k, key);
	rcache_fill(rc, key, 2, hash_of(k), gen, r->seq, r->bytes, r->meta_len, r->bytes + r->meta_len, r->val_len);
}

static void check_entry(const struct rcache_entry *e, const struct rec *r)
{
	CHECK(e->seq == r->seq && e->meta_len == r->meta_len && e->val_len == r->val_len);
	CHECK(memcmp(rcache_meta(e), r->bytes, r->meta_len) == 0);
	CHECK(memcmp(rcache_vals(e), r->bytes + r->meta_len, r->val_len) == 0);
}

static void check_bounds(const struct rcache *rc)
{
	uint64_t bytes = 0, n = 0;
	for (const struct rcache_entry *e = rc->head; e; e = e->next) {
		bytes += sizeof(*e) + e->key_len + e->meta_len + e->val_len;
		n++;
		CHECK(e->linked);
	}
	CHECK(bytes == rc->bytes && n == rc->entries && rc->bytes <= rc->max_bytes);
	for (unsigned i = 0; i < PINS_MAX; i++)
		if (pins[i].e) {
			const struct rcache_entry *e = pins[i].e;
			CHECK(memcmp(rcache_meta(e), pins[i].copy, pins[i].len) == 0);
		}
}

static void step(struct rcache *rc)
{
	unsigned k = (unsigned)rnd(KEYS);
	uint8_t key[2];
	key_of(k, key);
	uint64_t h = hash_of(k);
	switch (rnd(8)) {
	case 0: /* a PUT: submitted (the cnode's rcache_write) or completed */
		if (!put_open[k]) {
			rcache_write(rc, key, 2, h);
			fill_rec(&pending[k]);
			put_open[k] = true;
		} else {
			store[k] = pending[k];
			put_open[k] = false;
			rcache_write(rc, key, 2, h);
			do_fill(rc, k, rcache_gen(rc, h), &store[k]);
		}
		break;
	case 1:
	case 2: { /* a GET submitted, or one completed */
		unsigned g = (unsigned)rnd(GETS_MAX);
		if (!gets[g].used) {
			gets[g] = (struct get){.used = true, .k = k, .gen = rcache_gen(rc, h), .seen = store[k]};
			break;
		}
		unsigned gk = gets[g].k;
		const struct rec *r = rnd(2) ? &gets[g].seen : &store[gk]; /* as of submission or of completion */
		if (r->seq)
			do_fill(rc, gk, gets[g].gen, r);
		gets[g].used = false;
		break;
	}
	case 3:
	case 4:
	case 5: { /* a lookup */
		struct rcache_entry *e = rcache_get(rc, key, 2, h);
		if (!e)
			break;
		if (!put_open[k]) {
			CHECK(store[k].seq != 0);
			check_entry(e, &store[k]);
		}
		unsigned p = (unsigned)rnd(PINS_MAX);
		if (!pins[p].e && rnd(2)) {
			pins[p].e = e;
			pins[p].len = e->meta_len;
			memcpy(pins[p].copy, rcache_meta(e), e->meta_len);
		} else {
			rcache_unpin(rc, e);
		}
		break;
	}
	case 6: { /* a pin let go */
		unsigned p = (unsigned)rnd(PINS_MAX);
		if (pins[p].e) {
			rcache_unpin(rc, pins[p].e);
			pins[p].e = NULL;
		}
		break;
	}
	default:
		if (rnd(40) == 0)
			rcache_clear(rc);
		break;
	}
	check_bounds(rc);
}

static void test_model(void)
{
	test_begin("model");
	static const uint64_t bounds[] = {4096, 16384, 1u << 20};
	for (unsigned run = 0; run < 300; run++) {
		struct rcache rc;
		CHECK_EQ(rcache_init(&rc, bounds[run % 3]), 0);
		memset(store, 0, sizeof(store));
		memset(put_open, 0, sizeof(put_open));
		memset(gets, 0, sizeof(gets));
		memset(pins, 0, sizeof(pins));
		for (unsigned i = 0; i < 2000; i++)
			step(&rc);
		for (unsigned p = 0; p < PINS_MAX; p++)
			if (pins[p].e)
				rcache_unpin(&rc, pins[p].e);
		rcache_free(&rc);
	}
	test_end("model");
}

static void test_race(void)
{
	test_begin("race");
	struct rcache rc;
	CHECK_EQ(rcache_init(&rc, 1u << 20), 0);
	uint8_t key[2];
	key_of(0, key);
	uint64_t h = hash_of(0);
	struct rec old, neu;
	fill_rec(&old);
	fill_rec(&neu);
	uint64_t g = rcache_gen(&rc, h); /* a GET reads old... */
	rcache_write(&rc, key, 2, h);    /* ...a PUT of neu goes in and completes */
	rcache_write(&rc, key, 2, h);
	do_fill(&rc, 0, rcache_gen(&rc, h), &neu);
	do_fill(&rc, 0, g, &old); /* the GET's completion: not kept */
	struct rcache_entry *e = rcache_get(&rc, key, 2, h);
	CHECK(e != NULL);
	check_entry(e, &neu);
	rcache_unpin(&rc, e);
	CHECK(rc.stale_fills == 1);
	g = rcache_gen(&rc, h);
	rcache_clear(&rc);
	do_fill(&rc, 0, g, &neu); /* a GET across a clear */
	CHECK(rcache_get(&rc, key, 2, h) == NULL);
	/* A pinned entry dropped by a write keeps its bytes until unpinned. */
	do_fill(&rc, 0, rcache_gen(&rc, h), &neu);
	e = rcache_get(&rc, key, 2, h);
	CHECK(e != NULL);
	rcache_write(&rc, key, 2, h);
	CHECK(!e->linked && rc.entries == 0);
	check_entry(e, &neu);
	rcache_unpin(&rc, e);
	/* Too large for the bound (an eighth of it): not kept. */
	struct rcache small;
	CHECK_EQ(rcache_init(&small, 2048), 0);
	struct rec big = {.seq = 99, .meta_len = 100, .val_len = 300};
	do_fill(&small, 1, rcache_gen(&small, hash_of(1)), &big);
	CHECK(small.entries == 0);
	rcache_free(&small);
	rcache_free(&rc);
	test_end("race");
}

static void test_off(void)
{
	test_begin("off");
	struct rcache rc;
	CHECK_EQ(rcache_init(&rc, 0), 0);
	struct rec r;
	fill_rec(&r);
	do_fill(&rc, 0, rcache_gen(&rc, hash_of(0)), &r);
	uint8_t key[2];
	key_of(0, key);
	CHECK(rcache_get(&rc, key, 2, hash_of(0)) == NULL);
	rcache_write(&rc, key, 2, hash_of(0));
	rcache_clear(&rc);
	rcache_free(&rc);
	test_end("off");
}

int main(void)
{
	rng = test_seed(0x7cac4e);
	test_model();
	test_race();
	test_off();
	return test_soft_failures() ? 1 : 0;
}
