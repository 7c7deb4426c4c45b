/* test_memo.c - the location memo (store_memo.c): writes settle their index
 * candidates without reads when the memo knows the records, and behave
 * exactly as after a read (values, IF_SEQ, tombstones, expiry); keys
 * sharing a fingerprint are told apart through it; after GC resets and
 * rewrites zones no stale entry is trusted (every trusted entry is checked
 * against the record on the device); the generation tag's wrap clears a
 * zone's entries. With DV_MEMO_BENCH=1 it also measures an overwrite run on
 * a file device with and without the memo (DV_MEMO_BENCH_PATH, default
 * $DV_TEST_TMP or /tmp). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/hash.h"
#include "harness.h"
#include "io/dev_mem.h"
#include "storage/store_int.h"
#include "testing.h"

#define MiB (1024u * 1024u)

static struct h_value *got;

static void key_name(char *k, uint64_t n) { sprintf(k, "memo-%llu", (unsigned long long)n); }

static struct store_stats stats(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st;
}

static struct store *reopen(struct store *s, struct dev **dev, struct store_config cfg)
{
	return h_reopen_mem(s, dev, &cfg);
}

static void make_value(char *v, uint64_t key, uint64_t version)
{
	sprintf(v, "value-%llu-%llu", (unsigned long long)key, (unsigned long long)version);
}

/* Every entry the memo would trust (its tag matches the zone's current
 * generation) describes the record now at its location: read each one
 * back and compare key hash, seq, size and type. */
static void audit_memo(struct store *s, const char *what)
{
	uint8_t *b = dev_buf_alloc(STORE_RECORD_BYTES_MAX + DV_BLOCK_BYTES);
	CHECK(b != NULL);
	uint64_t trusted = 0;
	for (uint64_t i = 0; i < s->memo.entries; i++) {
		uint64_t p = s->memo.e[i].loc & ((1ull << 44) - 1);
		struct memo_hit h;
		if (!(s->memo.e[i].loc >> 62 & 1) || pl_zone(p) >= s->sb.zone_count ||
		    !memo_get(&s->memo, p, s->sb.zones[pl_zone(p)].gen, &h))
			continue;
		trusted++;
		/* A trusted entry is in a zone holding records (not reset since). */
		CHECK(s->sb.zones[pl_zone(p)].state != ZONE_EMPTY);
		uint64_t off = pl_off(p);
		uint64_t start = off / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
		uint32_t len = (uint32_t)DV_ROUND_UP(off + h.size, DV_BLOCK_BYTES) - (uint32_t)start;
		CHECK_EQ(dev_read_sync(s->dev, zone_base(s, pl_zone(p)) + start, b, len), 0);
		struct rec_view r;
		int rc = rec_decode(b + (off - start), len - (uint32_t)(off - start), &r, NULL);
		if (rc != 0 || r.zone_gen != s->sb.zones[pl_zone(p)].gen || r.seq != h.seq ||
		    r.total_bytes != h.size || (r.type == REC_TOMBSTONE) != h.tomb ||
		    (r.type == REC_PUT && (r.expire_ms != 0) != h.expires)) {
			fprintf(stderr, "%s: memo entry %llu (zone %u off %llu) does not describe the record there\n",
				what, (unsigned long long)i, pl_zone(p), (unsigned long long)off);
			CHECK(0);
		}
		struct dv_hash128 kh = dv_key_hash128(r.key, r.key_len);
		CHECK(kh.lo == h.hash_lo && kh.hi == h.hash_hi);
	}
	dev_buf_free(b);
	CHECK(s->memo.entries == 0 || trusted > 0);
}

/* Overwrites and deletes of keys the memo knows make no read; after reopen
 * (memo empty) they read once per key, then not again. */
static void test_overwrite(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 64 * MiB, 4 * MiB);
	enum { N = 1000 };
	char k[32], v[64];
	for (uint64_t n = 0; n < N; n++) {
		key_name(k, n);
		make_value(v, n, 1);
		CHECK_EQ(h_put(s, k, v, (uint32_t)strlen(v)), 0);
	}
	struct store_stats st0 = stats(s);
	CHECK(st0.memo_bytes == (uint64_t)DV_MEMO_ENTRIES_DEFAULT * 32);
	for (uint64_t round = 2; round <= 4; round++)
		for (uint64_t n = 0; n < N; n++) {
			key_name(k, n);
			make_value(v, n, round);
			CHECK_EQ(h_put(s, k, v, (uint32_t)strlen(v)), 0);
		}
	/* delete every third key, and delete it again (absent: refused) */
	for (uint64_t n = 0; n < N; n += 3) {
		key_name(k, n);
		CHECK_EQ(h_del(s, k), 0);
		CHECK_EQ(h_del(s, k), -DV_ENOTFOUND);
		CHECK_EQ(h_put_ex(s, k, "x", 1, 0, STORE_IF_PRESENT), -DV_ENOTFOUND);
	}
	struct store_stats st1 = stats(s);
	CHECK_EQ(st1.resolve_reads - st0.resolve_reads, 0);
	CHECK(st1.resolve_memo_hits - st0.resolve_memo_hits >= 3 * N + N / 3 * 3);
	CHECK_EQ(st1.keys - st1.tombstones, N - (N + 2) / 3);
	for (uint64_t n = 0; n < N; n++) {
		key_name(k, n);
		make_value(v, n, 4);
		h_expect(s, k, n % 3 ? v : NULL);
	}
	h_check_tombstones(s, "memo overwrite");
	audit_memo(s, "overwrite");

	/* reopen: the memo is empty, writes read; once read, they do not */
	s = reopen(s, &dev, (struct store_config){0});
	st0 = stats(s);
	for (uint64_t round = 5; round <= 6; round++)
		for (uint64_t n = 0; n < N; n++) {
			key_name(k, n);
			make_value(v, n, round);
			/* a deleted key comes back with IF_ABSENT (its tombstone is not live) */
			CHECK_EQ(h_put_ex(s, k, v, (uint32_t)strlen(v), 0, n % 3 ? STORE_ALWAYS : STORE_IF_ABSENT),
				 round == 6 && n % 3 == 0 ? -EEXIST : 0);
		}
	st1 = stats(s);
	CHECK(st1.resolve_reads - st0.resolve_reads >= N); /* round 5: each key read once */
	CHECK(st1.resolve_reads - st0.resolve_reads < N + N / 10); /* round 6: from the memo */
	for (uint64_t n = 0; n < N; n++) {
		key_name(k, n);
		make_value(v, n, n % 3 ? 6 : 5);
		h_expect(s, k, v);
	}
	h_check_tombstones(s, "memo overwrite, reopened");
	audit_memo(s, "overwrite, reopened");

	/* no_memo: every overwrite reads, results are the same */
	s = reopen(s, &dev, (struct store_config){.no_memo = true});
	st0 = stats(s);
	CHECK_EQ(st0.memo_bytes, 0);
	for (uint64_t n = 0; n < N; n++) {
		key_name(k, n);
		make_value(v, n, 7);
		CHECK_EQ(h_put(s, k, v, (uint32_t)strlen(v)), 0);
		CHECK_EQ(h_put(s, k, v, (uint32_t)strlen(v)), 0);
	}
	st1 = stats(s);
	CHECK(st1.resolve_reads - st0.resolve_reads >= 2 * N);
	CHECK_EQ(st1.resolve_memo_hits, 0);
	store_close(s);
	dev_close(dev);
}

/* Two keys sharing segment and fingerprint (the top 31 bits of the 64-bit
 * hash), found by search: both are candidates of each other's lookups. */
struct hk {
	uint64_t top;
	uint32_t n;
};
static int cmp_hk(const void *a, const void *b)
{
	const struct hk *x = a, *y = b;
	return x->top < y->top ? -1 : x->top > y->top ? 1 : (x->n > y->n) - (x->n < y->n);
}

static void colliding_pair(char *a, char *b)
{
	enum { M = 400000 };
	struct hk *v = malloc(M * sizeof(*v));
	CHECK(v != NULL);
	for (uint32_t i = 0; i < M; i++) {
		char k[32];
		sprintf(k, "fp-%u", i);
		v[i] = (struct hk){store_key_hash(k, (uint32_t)strlen(k)) >> 33, i};
	}
	qsort(v, M, sizeof(*v), cmp_hk);
	bool found = false;
	for (uint32_t i = 1; i < M && !found; i++)
		if (v[i].top == v[i - 1].top) {
			sprintf(a, "fp-%u", v[i - 1].n);
			sprintf(b, "fp-%u", v[i].n);
			found = true;
		}
	free(v);
	CHECK(found);
}

static void test_shared_fingerprint(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 64 * MiB, 4 * MiB);
	char a[32], b[32];
	colliding_pair(a, b);
	CHECK_EQ(h_put(s, a, "a1", 2), 0);
	CHECK_EQ(h_put(s, b, "b1", 2), 0);
	uint64_t c[16];
	CHECK_EQ(index_lookup(s->index, store_key_hash(a, (uint32_t)strlen(a)), c, 16), 2);
	struct store_stats st0 = stats(s);
	for (int i = 0; i < 5; i++) {
		char v[8];
		sprintf(v, "a%d", i + 2);
		CHECK_EQ(h_put(s, a, v, 2), 0);
		sprintf(v, "b%d", i + 2);
		CHECK_EQ(h_put(s, b, v, 2), 0);
	}
	struct store_stats st1 = stats(s);
	CHECK_EQ(st1.resolve_reads, st0.resolve_reads);
	/* each write settles its candidates from the memo, the other key's
	 * included when it comes first */
	CHECK(st1.resolve_memo_hits - st0.resolve_memo_hits >= 10);
	h_expect(s, a, "a6");
	h_expect(s, b, "b6");
	/* GETs skip the other key's record through the memo */
	st0 = stats(s);
	for (int i = 0; i < 4; i++) {
		h_expect(s, a, "a6");
		h_expect(s, b, "b6");
	}
	st1 = stats(s);
	CHECK(st1.resolve_memo_hits - st0.resolve_memo_hits >= 4);
	/* deleting one leaves the other; a write of the deleted key finds its
	 * tombstone, not the other key's record */
	CHECK_EQ(h_del(s, a), 0);
	h_expect(s, a, NULL);
	h_expect(s, b, "b6");
	CHECK_EQ(h_put_ex(s, b, "b7", 2, 0, STORE_IF_PRESENT), 0);
	CHECK_EQ(h_put_ex(s, a, "a7", 2, 0, STORE_IF_PRESENT), -DV_ENOTFOUND);
	CHECK_EQ(h_put_ex(s, a, "a7", 2, 0, STORE_IF_ABSENT), 0);
	CHECK_EQ(h_put_ex(s, b, "bx", 2, 0, STORE_IF_ABSENT), -EEXIST);
	CHECK_EQ(stats(s).resolve_reads, st0.resolve_reads);
	CHECK_EQ(index_lookup(s->index, store_key_hash(a, (uint32_t)strlen(a)), c, 16), 2);
	audit_memo(s, "shared fingerprint");
	/* after reopen the memo is empty: reads tell them apart, then the
	 * memo does again */
	s = reopen(s, &dev, (struct store_config){0});
	st0 = stats(s);
	CHECK_EQ(h_put(s, a, "a8", 2), 0);
	CHECK_EQ(h_put(s, b, "b8", 2), 0);
	st1 = stats(s);
	CHECK(st1.resolve_reads > st0.resolve_reads);
	CHECK_EQ(h_put(s, a, "a9", 2), 0);
	CHECK_EQ(h_put(s, b, "b9", 2), 0);
	CHECK_EQ(stats(s).resolve_reads, st1.resolve_reads);
	h_expect(s, a, "a9");
	h_expect(s, b, "b9");
	CHECK_EQ(index_lookup(s->index, store_key_hash(a, (uint32_t)strlen(a)), c, 16), 2);
	store_close(s);
	dev_close(dev);
}

/* Compare-and-set decided from the memo: the same results as after a read. */
static int put_if(struct store *s, const char *k, const char *v, uint64_t cond_seq, uint64_t *seq)
{
	return h_write_cond(s, STORE_PUT, k, v, (uint32_t)strlen(v), STORE_IF_SEQ, cond_seq, seq);
}

static void test_if_seq(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 64 * MiB, 4 * MiB);
	uint64_t s1 = 0, s2 = 0, x = 0, sd = 0, s3 = 0;
	CHECK_EQ(put_if(s, "k", "v1", 0, &s1), 0); /* absent */
	uint64_t reads0 = stats(s).resolve_reads;
	CHECK_EQ(put_if(s, "k", "v2", s1, &s2), 0);
	CHECK(s2 > s1);
	CHECK_EQ(put_if(s, "k", "v3", s1, &x), -ESTALE);
	CHECK_EQ(put_if(s, "k", "v3", s2 + 1, &x), -ESTALE);
	CHECK_EQ(put_if(s, "k", "v3", 0, &x), -ESTALE);
	h_expect(s, "k", "v2");
	CHECK_EQ(h_write_cond(s, STORE_DEL, "k", NULL, 0, STORE_IF_SEQ, s1, &x), -ESTALE);
	CHECK_EQ(h_write_cond(s, STORE_DEL, "k", NULL, 0, STORE_IF_SEQ, s2, &sd), 0);
	CHECK_EQ(put_if(s, "k", "v3", s2, &x), -ESTALE); /* a tombstone is not live */
	CHECK_EQ(put_if(s, "k", "v3", sd, &x), -ESTALE);
	CHECK_EQ(put_if(s, "k", "v3", 0, &s3), 0);
	h_expect(s, "k", "v3");
	CHECK_EQ(h_get(s, "k", got), 0);
	CHECK_EQ(got->seq, s3);
	CHECK_EQ(stats(s).resolve_reads, reads0); /* all from the memo */

	/* A record with an expiry: the memo does not keep expire_ms, so the
	 * write reads it; expired, its seq no longer matches. */
	uint64_t now = store_now_ms(), se = 0, sf = 0;
	CHECK_EQ(h_write_cond(s, STORE_PUT, "e", "ev", 2, STORE_ALWAYS, 0, &se), 0);
	CHECK_EQ(h_put_ex(s, "e", "ev", 2, now - 1, STORE_ALWAYS), 0);
	CHECK_EQ(h_get(s, "e", got), -DV_ENOTFOUND);
	reads0 = stats(s).resolve_reads;
	CHECK_EQ(put_if(s, "e", "x", se, &x), -ESTALE);
	CHECK_EQ(put_if(s, "e", "x", se + 1, &x), -ESTALE); /* the expired record's seq */
	CHECK(stats(s).resolve_reads > reads0);
	CHECK_EQ(put_if(s, "e", "ev2", 0, &sf), 0);
	/* far future expiry: live */
	CHECK_EQ(h_put_ex(s, "f", "fv", 2, now + 3600000, STORE_ALWAYS), 0);
	CHECK_EQ(h_get(s, "f", got), 0);
	uint64_t sfv = got->seq;
	CHECK_EQ(put_if(s, "f", "fv2", 0, &x), -ESTALE);
	CHECK_EQ(put_if(s, "f", "fv2", sfv, &x), 0);
	h_expect(s, "f", "fv2");
	store_close(s);
	dev_close(dev);
}

/* Many overwrite rounds (PUT, DEL, IF_SEQ) on a small device with GC
 * collecting, resetting and rewriting zones; after each round every key is
 * compared with a model and every trusted memo entry with the device. */
static void run_gc_rounds(uint32_t memo_entries, uint64_t seed)
{
	struct store *s;
	struct dev *dev;
	struct store_config cfg = {.memo_entries = memo_entries};
	h_open_mem_cfg(&s, &dev, 12 * MiB, 256 * 1024, cfg);
	enum { N = 600, ROUNDS = 30 };
	uint32_t *ver = calloc(N, sizeof(*ver)); /* 0 = absent */
	uint64_t *seq = calloc(N, sizeof(*seq));
	CHECK(ver && seq);
	uint64_t rng = test_seed(seed);
	char k[32], v[600];
	for (uint32_t round = 1; round <= ROUNDS; round++) {
		for (uint32_t i = 0; i < 2 * N; i++) {
			uint32_t n = (uint32_t)(test_rand(&rng) % N);
			uint32_t what = (uint32_t)(test_rand(&rng) % 10);
			key_name(k, n);
			if (what == 0) {
				CHECK_EQ(h_del(s, k), ver[n] ? 0 : -DV_ENOTFOUND);
				ver[n] = 0;
				seq[n] = 0;
				continue;
			}
			uint32_t nv = round * 4 * N + i + 1;
			make_value(v, n, nv);
			uint32_t len = (uint32_t)strlen(v);
			uint32_t pad = (uint32_t)(test_rand(&rng) % 400); /* sizes vary: records move around */
			memset(v + len, 'p', pad);
			len += pad;
			v[len] = 0;
			uint64_t out = 0;
			if (what == 1) { /* compare-and-set with a stale seq */
				CHECK_EQ(h_write_cond(s, STORE_PUT, k, v, len, STORE_IF_SEQ, seq[n] + 1, &out), -ESTALE);
				continue;
			}
			enum store_cond cond = what == 2 ? STORE_IF_SEQ : STORE_ALWAYS;
			CHECK_EQ(h_write_cond(s, STORE_PUT, k, v, len, cond, seq[n], &out), 0);
			ver[n] = nv;
			seq[n] = out;
		}
		for (uint32_t n = 0; n < N; n++) {
			key_name(k, n);
			int rc = h_get(s, k, got);
			if (!ver[n]) {
				CHECK_EQ(rc, -DV_ENOTFOUND);
				continue;
			}
			CHECK_EQ(rc, 0);
			make_value(v, n, ver[n]);
			CHECK(got->len >= strlen(v) && memcmp(got->bytes, v, strlen(v)) == 0);
			CHECK_EQ(got->seq, seq[n]);
		}
		audit_memo(s, "gc rounds");
		h_check_tombstones(s, "gc rounds");
		if (round == ROUNDS / 2)
			s = reopen(s, &dev, cfg);
	}
	struct store_stats st = stats(s);
	fprintf(stderr, "memo %u entries: %llu zones collected, %llu resolve reads, %llu memo hits\n",
		memo_entries ? memo_entries : DV_MEMO_ENTRIES_DEFAULT, (unsigned long long)st.gc_zones_reset,
		(unsigned long long)st.resolve_reads, (unsigned long long)st.resolve_memo_hits);
	CHECK(st.gc_zones_reset > 20);
	CHECK(st.resolve_memo_hits > st.resolve_reads);
	s = reopen(s, &dev, cfg);
	for (uint32_t n = 0; n < N; n++) {
		key_name(k, n);
		CHECK_EQ(h_get(s, k, got), ver[n] ? 0 : -DV_ENOTFOUND);
		if (ver[n])
			CHECK_EQ(got->seq, seq[n]);
	}
	store_close(s);
	dev_close(dev);
	free(ver);
	free(seq);
}

static void test_gc(void)
{
	run_gc_rounds(0, 41);
	run_gc_rounds(1024, 43); /* tiny: slots are taken over all the time */
}

/* The generation tag is MEMO_GEN_BITS wide: when a zone's generation
 * reaches a multiple of 2^MEMO_GEN_BITS its entries are cleared, so an
 * entry of an old generation can never match again. */
static void test_gen_wrap(void)
{
	struct memo m;
	CHECK_EQ(memo_create(&m, 1000), 0);
	CHECK_EQ(m.entries, 1024);
	uint32_t g = (1u << MEMO_GEN_BITS) - 1;
	uint64_t p3 = pl_make(false, 3, 4096, 64), p4 = pl_make(false, 4, 4096, 64);
	memo_put(&m, p3, g, 1, 2, 77, 64, 0);
	memo_put(&m, p4, g, 3, 4, 78, 64, 0);
	struct memo_hit h;
	CHECK(memo_get(&m, p3, g, &h));
	CHECK(h.hash_lo == 1 && h.hash_hi == 2 && h.seq == 77 && h.size == 64 && !h.tomb && !h.expires);
	CHECK(!memo_get(&m, p3, g - 1, &h));
	CHECK(!memo_get(&m, pl_make(true, 3, 4096, 64), g, &h)); /* a different payload */
	/* the tag alone would match one wrap later */
	CHECK(memo_get(&m, p3, g + (1u << MEMO_GEN_BITS), &h));
	memo_zone_gen_changed(&m, 3, g - 5); /* not a multiple: nothing cleared ... */
	memo_zone_gen_changed(&m, 3, (1u << MEMO_GEN_BITS) + 5);
	CHECK(memo_get(&m, p3, g + (1u << MEMO_GEN_BITS), &h));
	memo_zone_gen_changed(&m, 3, 1u << MEMO_GEN_BITS); /* ... a multiple clears zone 3 */
	CHECK(!memo_get(&m, p3, g + (1u << MEMO_GEN_BITS), &h));
	CHECK(!memo_get(&m, p3, g, &h));
	CHECK(memo_get(&m, p4, g, &h)); /* other zones keep theirs */
	/* seqs it cannot describe are not kept; tombstones and expiries are */
	uint64_t p5 = pl_make(true, 5, 128, 48), p6 = pl_make(false, 6, 0, 5000);
	memo_put(&m, p5, 9, 5, 6, 1ull << 47, 48, 0);
	CHECK(!memo_get(&m, p5, 9, &h));
	memo_put(&m, p5, 9, 5, 6, (1ull << 47) - 1, 48, 0);
	CHECK(memo_get(&m, p5, 9, &h) && h.tomb && h.seq == (1ull << 47) - 1 && h.size == 48);
	memo_put(&m, p6, 9, 7, 8, 12, 5008, 123);
	CHECK(memo_get(&m, p6, 9, &h) && !h.tomb && h.expires && h.size == 5008);
	memo_destroy(&m);
	CHECK_EQ(memo_create(&m, 0), 0);
	memo_put(&m, p3, 1, 1, 2, 3, 64, 0);
	CHECK(!memo_get(&m, p3, 1, &h));
	memo_destroy(&m);
}

/* ---- DV_MEMO_BENCH: overwrite throughput with and without the memo ---- */

struct bslot {
	struct store_op op;
	char key[32];
	bool busy;
	uint8_t val[100];
};

static void bench_done(struct store_op *op)
{
	struct bslot *sl = (struct bslot *)op;
	CHECK_EQ(op->result, 0);
	sl->busy = false;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_phase(struct store *s, struct bslot *slots, unsigned qd, uint64_t keys, uint64_t count,
			bool random, uint64_t *rng, const char *name)
{
	struct store_stats st0 = stats(s);
	double t0 = now_s();
	uint64_t issued = 0;
	while (issued < count || store_pending(s) > 0) {
		for (unsigned i = 0; i < qd && issued < count; i++) {
			struct bslot *sl = &slots[i];
			if (sl->busy)
				continue;
			uint64_t n = random ? test_rand(rng) % keys : issued;
			sprintf(sl->key, "k%012llu", (unsigned long long)n);
			memset(sl->val, (int)(issued & 0xff), sizeof(sl->val));
			sl->op = (struct store_op){.kind = STORE_PUT, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
						   .value = sl->val, .val_len = sizeof(sl->val), .done = bench_done};
			int err = store_submit(s, &sl->op);
			if (err == -EAGAIN)
				break;
			CHECK_EQ(err, 0);
			sl->busy = true;
			issued++;
		}
		CHECK(store_poll(s, true) >= 0);
	}
	double secs = now_s() - t0;
	struct store_stats st1 = stats(s);
	printf("%-22s %8llu ops %6.2f s %9.0f ops/s  resolve_reads %8llu  resolve_memo_hits %8llu\n", name,
	       (unsigned long long)count, secs, (double)count / secs,
	       (unsigned long long)(st1.resolve_reads - st0.resolve_reads),
	       (unsigned long long)(st1.resolve_memo_hits - st0.resolve_memo_hits));
}

static void bench(void)
{
	const char *path = getenv("DV_MEMO_BENCH_PATH");
	char def[512];
	if (!path) {
		snprintf(def, sizeof(def), "%s/dynvme-memo-bench.img", test_tmpdir());
		path = def;
	}
	uint64_t keys = 100000, count = 400000;
	const char *e = getenv("DV_MEMO_BENCH_OPS");
	if (e)
		count = strtoull(e, NULL, 10);
	unsigned qd = 64;
	struct bslot *slots = calloc(qd, sizeof(*slots));
	CHECK(slots != NULL);
	for (int memo = 0; memo < 2; memo++) {
		unlink(path);
		struct dev *dev;
		struct dev_open_opts o = {.create_bytes = 1ull << 30, .queue_depth = 1024};
		CHECK_EQ(dev_open_path(&dev, path, &o), 0);
		struct store_config cfg = {.format_if_empty = true, .zone_bytes = 16 * MiB, .no_memo = !memo,
					   .index_capacity_hint = keys};
		struct store *s;
		CHECK_EQ(store_open(&s, dev, &cfg), 0);
		uint64_t rng = 12345;
		printf("%s\n", memo ? "with the location memo:" : "without the memo (no_memo):");
		bench_phase(s, slots, qd, keys, keys, false, &rng, "fill");
		bench_phase(s, slots, qd, keys, count, true, &rng, "overwrite (random)");
		store_close(s);
		dev_close(dev);
	}
	unlink(path);
	free(slots);
}

int main(void)
{
	got = malloc(sizeof(*got));
	CHECK(got != NULL);
	if (getenv("DV_MEMO_BENCH")) {
		bench();
		free(got);
		return 0;
	}
	test_gen_wrap();
	test_overwrite();
	test_shared_fingerprint();
	test_if_seq();
	test_gc();
	free(got);
	return 0;
}
