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
 *   change; bytes and entries stay within the bound and match the entries;
 *   a lookup for a client's read (verified_only) finds only a verified
 *   entry, and an entry is verified only when a GET read back the record
 *   the store holds (a PUT's fill is not); the table's tagged links are
 *   right (rcache_check). The runs take the keys' hashes five ways: the
 *   real hash, and four made up so that every key lands in one or three
 *   buckets with equal or different link tags, or equal low 32 bits (the
 *   chains, the tags and the key compare are all exercised). A completed
 *   PUT goes in through rcache_put_done or, in half the runs, through the
 *   rcache_write and rcache_fill it stands for.
 * - race: the GET that read before a PUT and completes after it is not
 *   kept (the case the generations exist for); a GET across a clear is not
 *   kept either.
 * - verified: a PUT's entry answers a merge loop's read, not a client's,
 *   until a GET read its record back; a lost write read back replaces it;
 *   rcache_forget (a damaged record found) drops it.
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
static bool read_back[KEYS]; /* the store's record of the key was read back by a GET since its PUT */
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

static unsigned hash_mode; /* the model's run: how the keys' hashes are made */
static bool split_put;      /* the model's run: a PUT's completion as rcache_write + rcache_fill */

static uint64_t hash_of(unsigned k)
{
	uint8_t key[2];
	key_of(k, key);
	switch (hash_mode) {
	case 1: return (uint64_t)k << 10;  /* one bucket, one tag, hash_lo differs */
	case 2: return (uint64_t)k << 17;  /* one bucket, a tag each */
	case 3: return (uint64_t)k << 32;  /* one bucket, the same hash_lo: only the key tells */
	case 4: return (k % 3) | (uint64_t)(k % 2) << 17 | (uint64_t)k << 40; /* three buckets, two tags */
	default: return dv_key_hash64(key, 2);
	}
}

static void fill_rec(struct rec *r)
{
	r->seq = next_seq++;
	r->meta_len = (uint32_t)(1 + rnd(40));
	r->val_len = (uint32_t)rnd(rnd(4) == 0 ? 550 : 60);
	for (uint32_t i = 0; i < r->meta_len + r->val_len; i++)
		r->bytes[i] = (uint8_t)test_rand(&rng);
}

/* verified: a GET's fill (read back from the medium); a PUT's is not. */
static void do_fill_v(struct rcache *rc, unsigned k, uint64_t gen, const struct rec *r, bool verified)
{
	uint8_t key[2];
	key_of(k, key);
	rcache_fill(rc, key, 2, hash_of(k), gen, r->seq, r->bytes, r->meta_len, r->bytes + r->meta_len, r->val_len,
		    verified);
}

static void do_fill(struct rcache *rc, unsigned k, uint64_t gen, const struct rec *r)
{
	do_fill_v(rc, k, gen, r, true);
}

/* A PUT of k completed, having written r: the cnode's rcache_put_done,
 * or the rcache_write and fill it stands for. */
static void put_complete(struct rcache *rc, unsigned k, const struct rec *r)
{
	uint8_t key[2];
	key_of(k, key);
	if (split_put) {
		rcache_write(rc, key, 2, hash_of(k));
		do_fill_v(rc, k, rcache_gen(rc, hash_of(k)), r, false);
	} else {
		rcache_put_done(rc, key, 2, hash_of(k), r->seq, r->bytes, r->meta_len, r->bytes + r->meta_len,
				r->val_len);
	}
}

/* A PUT of k submitted and completed. */
static void put_done(struct rcache *rc, unsigned k, const struct rec *r)
{
	uint8_t key[2];
	key_of(k, key);
	rcache_write(rc, key, 2, hash_of(k));
	put_complete(rc, k, r);
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
			put_complete(rc, k, &store[k]);
			read_back[k] = false;
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
		if (r->seq) {
			do_fill(rc, gk, gets[g].gen, r);
			if (r->seq == store[gk].seq && gets[g].gen == rcache_gen(rc, hash_of(gk)))
				read_back[gk] = true; /* kept, or verified the entry of its seq */
		}
		gets[g].used = false;
		break;
	}
	case 3:
	case 4:
	case 5: { /* a lookup */
		bool vo = rnd(2);
		struct rcache_entry *e = rcache_get(rc, key, 2, h, vo);
		if (!e)
			break;
		CHECK(!vo || e->verified);
		if (!put_open[k]) {
			CHECK(store[k].seq != 0);
			check_entry(e, &store[k]);
			CHECK(!e->verified || read_back[k]); /* verified only by a GET of what the store holds */
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
	CHECK_EQ(rcache_check(rc), 0);
}

static void test_model(void)
{
	test_begin("model");
	static const uint64_t bounds[] = {4096, 16384, 1u << 20};
	for (unsigned run = 0; run < 500; run++) {
		hash_mode = run % 5;
		split_put = run / 5 % 2;
		struct rcache rc;
		CHECK_EQ(rcache_init(&rc, bounds[run % 3]), 0);
		memset(store, 0, sizeof(store));
		memset(put_open, 0, sizeof(put_open));
		memset(read_back, 0, sizeof(read_back));
		memset(gets, 0, sizeof(gets));
		memset(pins, 0, sizeof(pins));
		for (unsigned i = 0; i < 2000; i++)
			step(&rc);
		for (unsigned p = 0; p < PINS_MAX; p++)
			if (pins[p].e)
				rcache_unpin(&rc, pins[p].e);
		rcache_free(&rc);
	}
	hash_mode = 0;
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
	put_done(&rc, 0, &neu);          /* ...a PUT of neu goes in and completes */
	do_fill(&rc, 0, g, &old);        /* the GET's completion: not kept */
	struct rcache_entry *e = rcache_get(&rc, key, 2, h, false);
	CHECK(e != NULL);
	check_entry(e, &neu);
	rcache_unpin(&rc, e);
	CHECK(rc.stale_fills == 1);
	g = rcache_gen(&rc, h);
	rcache_clear(&rc);
	do_fill(&rc, 0, g, &neu); /* a GET across a clear */
	CHECK(rcache_get(&rc, key, 2, h, false) == NULL);
	/* A pinned entry dropped by a write keeps its bytes until unpinned. */
	do_fill(&rc, 0, rcache_gen(&rc, h), &neu);
	e = rcache_get(&rc, key, 2, h, false);
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

/* A PUT's entry holds what was written, which a lossy disk may not hold:
 * a client's read (verified_only) goes to the medium until a GET read the
 * record back; a damaged or missing record found there drops the entry. */
static void test_verified(void)
{
	test_begin("verified");
	struct rcache rc;
	CHECK_EQ(rcache_init(&rc, 1u << 20), 0);
	uint8_t key[2];
	key_of(0, key);
	uint64_t h = hash_of(0);
	struct rec older, written;
	fill_rec(&older);
	fill_rec(&written);
	put_done(&rc, 0, &written);
	CHECK(rcache_get(&rc, key, 2, h, true) == NULL); /* a client's read: to the medium */
	struct rcache_entry *e = rcache_get(&rc, key, 2, h, false); /* a merge loop's */
	CHECK(e != NULL && !e->verified);
	check_entry(e, &written);
	rcache_unpin(&rc, e);
	/* Read back with its seq: verified, the same entry. */
	do_fill_v(&rc, 0, rcache_gen(&rc, h), &written, true);
	e = rcache_get(&rc, key, 2, h, true);
	CHECK(e != NULL && e->verified && rc.entries == 1);
	check_entry(e, &written);
	rcache_unpin(&rc, e);
	/* Written again; the disk lost it: the read back finds the older record. */
	put_done(&rc, 0, &written);
	do_fill_v(&rc, 0, rcache_gen(&rc, h), &older, true);
	e = rcache_get(&rc, key, 2, h, true);
	CHECK(e != NULL && e->verified);
	check_entry(e, &older);
	rcache_unpin(&rc, e);
	/* Damaged on the medium: the read's failure drops the entry, so the
	 * repair's merge loop reads the damaged copy too. */
	put_done(&rc, 0, &written);
	rcache_forget(&rc, key, 2, h);
	CHECK(rcache_get(&rc, key, 2, h, false) == NULL && rc.entries == 0 && rc.bytes == 0);
	rcache_forget(&rc, key, 2, h); /* nothing there: nothing happens */
	rcache_free(&rc);
	test_end("verified");
}

/* Eviction order: the least recently filled go first, except that an
 * entry read since it was filled gets a second chance (back to the front,
 * unmarked), at most RCACHE_SECOND_CHANCES (8) of them per fill. */
static bool cached(struct rcache *rc, unsigned k)
{
	uint8_t key[2];
	key_of(k, key);
	return rcache_peek(rc, key, 2, hash_of(k)) != NULL;
}

static void touch(struct rcache *rc, unsigned k)
{
	uint8_t key[2];
	key_of(k, key);
	struct rcache_entry *e = rcache_get(rc, key, 2, hash_of(k), false);
	CHECK(e != NULL);
	rcache_unpin(rc, e);
}

static void fill_one(struct rcache *rc, unsigned k)
{
	struct rec r;
	fill_rec(&r);
	r.meta_len = 10, r.val_len = 40; /* one size: entries are counted, not weighed */
	do_fill(rc, k, rcache_gen(rc, hash_of(k)), &r);
	CHECK(cached(rc, k));
}

static void test_second_chance(void)
{
	test_begin("second chance");
	struct rcache rc;
	uint64_t one = sizeof(struct rcache_entry) + 2 + 10 + 40;
	CHECK_EQ(rcache_init(&rc, 8 * one), 0); /* room for eight (the largest kept: an eighth) */
	for (unsigned k = 0; k < 8; k++)
		fill_one(&rc, k);
	CHECK(rc.entries == 8);
	touch(&rc, 0); /* the oldest, read: kept past the next fill */
	fill_one(&rc, 8);
	CHECK(cached(&rc, 0) && !cached(&rc, 1) && rc.entries == 8);
	/* Its chance used and unread since, it goes after 2..7. */
	for (unsigned k = 9; k < 15; k++)
		fill_one(&rc, k);
	CHECK(cached(&rc, 0) && rc.entries == 8);
	for (unsigned k = 2; k < 8; k++)
		CHECK(!cached(&rc, k));
	fill_one(&rc, 15);
	CHECK(!cached(&rc, 0) && rc.entries == 8);
	/* Every entry read: eight chances, then the oldest goes all the same. */
	for (unsigned k = 8; k < 16; k++)
		touch(&rc, k);
	fill_one(&rc, 16);
	CHECK(!cached(&rc, 8) && rc.entries == 8 && rc.bytes <= 8 * one);
	for (unsigned k = 9; k < 17; k++)
		CHECK(cached(&rc, k));
	rcache_free(&rc);
	test_end("second chance");
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
	CHECK(rcache_get(&rc, key, 2, hash_of(0), false) == NULL);
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
	test_verified();
	test_second_chance();
	test_off();
	return test_soft_failures() ? 1 : 0;
}
