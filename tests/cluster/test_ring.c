/* test_ring.c - the partition table (src/cluster/ring.h).
 *
 * - init_even: bad Q, node counts, id 0 and duplicates refused (-EINVAL,
 *   nothing held); nodes sorted; partition i owned by nodes[i % n].
 * - preference lists of even tables: for Q in 1..65536 and 1..9 (and 64)
 *   nodes, every partition and every N up to past the node count: exactly
 *   the closed-form list (N consecutive nodes, owner first; for Q < nodes
 *   the owners then the other nodes in id order), N distinct nodes.
 * - partitions: for Q = 1, 2, 1024, 65536 the ranges are contiguous, equal,
 *   cover the hash space, and every boundary hash, random hash and real
 *   store key hash lands in the partition whose range holds it.
 * - counts: owned Q/n and replicated N*Q/n when n divides Q, floor/ceil
 *   and the right sums otherwise; is_replica agrees with the lists.
 * - encode/decode: round trip; every truncation, extension and single-bit
 *   flip refused; every field made invalid under a correct checksum
 *   refused (magic, format, node count, Q, id 0, order, owner not a node).
 * - property: random node sets and random (uneven) owner tables, checked
 *   against the definition (first unlisted owner clockwise, then the
 *   fallback order) and through an encode/decode round trip.
 * DV_SEED=<n> replays the random parts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/le.h"
#include "cluster/ring.h"
#include "storage/store.h"
#include "testing.h"

static uint64_t rng;

static struct ring make_even(uint32_t q, unsigned n)
{
	uint16_t ids[RING_NODES_MAX];
	for (unsigned i = 0; i < n; i++)
		ids[i] = (uint16_t)(10 + 3 * i);
	struct ring r;
	CHECK_EQ(ring_init_even(&r, q, ids, n), 0);
	return r;
}

static bool distinct(const uint16_t *a, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		for (unsigned j = i + 1; j < k; j++)
			if (a[i] == a[j])
				return false;
	return true;
}

static void test_init_bad(void)
{
	test_begin("init_bad");
	uint16_t ids[RING_NODES_MAX + 1];
	for (unsigned i = 0; i <= RING_NODES_MAX; i++)
		ids[i] = (uint16_t)(i + 1);
	struct ring r;
	const uint32_t bad_q[] = { 0, 3, 6, 1000, RING_Q_MAX * 2, UINT32_MAX, 0x80000000u };
	for (unsigned i = 0; i < sizeof(bad_q) / sizeof(bad_q[0]); i++) {
		CHECK_EQ(ring_init_even(&r, bad_q[i], ids, 3), -EINVAL);
		CHECK(r.owner == NULL);
	}
	CHECK_EQ(ring_init_even(&r, 16, ids, 0), -EINVAL);
	CHECK_EQ(ring_init_even(&r, 16, ids, RING_NODES_MAX + 1), -EINVAL);
	CHECK(r.owner == NULL);
	uint16_t zero[] = { 4, 0, 2 };
	CHECK_EQ(ring_init_even(&r, 16, zero, 3), -EINVAL);
	uint16_t dup[] = { 4, 9, 4 };
	CHECK_EQ(ring_init_even(&r, 16, dup, 3), -EINVAL);
	CHECK(r.owner == NULL);
	ring_free(&r);
	/* The limits themselves are accepted. */
	CHECK_EQ(ring_init_even(&r, RING_Q_MAX, ids, RING_NODES_MAX), 0);
	ring_free(&r);
	uint16_t top[] = { RING_NODE_ID_MAX, 1 };
	CHECK_EQ(ring_init_even(&r, RING_Q_MIN, top, 2), 0);
	CHECK_EQ(r.nodes[0], 1);
	CHECK_EQ(r.nodes[1], RING_NODE_ID_MAX);
	ring_free(&r);
	test_end("init_bad");
}

static void test_init_sorted(void)
{
	test_begin("init_sorted");
	uint16_t ids[] = { 40, 7, 300, 12, 9 };
	struct ring r;
	CHECK_EQ(ring_init_even(&r, 64, ids, 5), 0);
	const uint16_t sorted[] = { 7, 9, 12, 40, 300 };
	CHECK_EQ(r.nnodes, 5);
	CHECK_EQ(r.q, 64);
	CHECK_EQ(r.q_bits, 6);
	CHECK_EQ(r.version, 1);
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(r.nodes[i], sorted[i]);
	for (uint32_t p = 0; p < 64; p++)
		CHECK_EQ(r.owner[p], sorted[p % 5]);
	ring_free(&r);
	CHECK(r.owner == NULL && r.q == 0);
	test_end("init_sorted");
}

/* The list the contract gives an even table. */
static unsigned expected_even(const struct ring *r, uint32_t p, unsigned n, uint16_t *out)
{
	unsigned nn = r->nnodes, want = n < nn ? n : nn, k = 0;
	if (r->q >= nn) {
		for (unsigned j = 0; j < want; j++)
			out[k++] = r->nodes[(p + j) % nn];
		return k;
	}
	/* Q < nodes: owners p..q-1, 0..p-1, then nodes q..nn-1. */
	for (uint32_t j = 0; j < r->q && k < want; j++)
		out[k++] = r->nodes[(p + j) % r->q];
	for (unsigned j = r->q; j < nn && k < want; j++)
		out[k++] = r->nodes[j];
	return k;
}

static void check_even_lists(uint32_t q, unsigned nnodes)
{
	struct ring r = make_even(q, nnodes);
	uint16_t pl[RING_NODES_MAX], want[RING_NODES_MAX];
	unsigned nmax = nnodes + 2 < RING_NODES_MAX ? nnodes + 2 : RING_NODES_MAX;
	/* For n dividing q every partition; otherwise the wrap is uneven and
	 * only the partitions whose walk stays before it follow the closed form. */
	for (uint32_t p = 0; p < q; p++) {
		for (unsigned n = 1; n <= nmax; n++) {
			unsigned k = ring_preflist(&r, p, n, pl);
			CHECK_EQ(k, n < nnodes ? n : nnodes);
			CHECK_EQ(pl[0], r.owner[p]);
			CHECK(distinct(pl, k));
			if (q % nnodes != 0 && q >= nnodes && p + k > q)
				continue;
			unsigned e = expected_even(&r, p, n, want);
			CHECK_EQ(e, k);
			for (unsigned j = 0; j < k; j++)
				CHECK_EQ(pl[j], want[j]);
			for (unsigned j = 0; j < nnodes && n <= 9; j++) {
				bool in = false;
				for (unsigned i = 0; i < k; i++)
					in |= want[i] == r.nodes[j];
				CHECK_EQ(ring_is_replica(&r, p, n, r.nodes[j]), in);
			}
		}
		if (q > 4096 || (q > 64 && nnodes > 9))
			p += (uint32_t)(test_rand(&rng) % 61); /* a sample of the big tables */
	}
	ring_free(&r);
}

static void test_preflist_even(void)
{
	test_begin("preflist_even");
	const uint32_t qs[] = { 1, 2, 4, 8, 16, 1024, 65536 };
	for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		for (unsigned n = 1; n <= 9; n++)
			check_even_lists(qs[i], n);
		check_even_lists(qs[i], RING_NODES_MAX);
	}
	/* A node id not in the table is never a replica. */
	struct ring r = make_even(16, 3);
	for (uint32_t p = 0; p < 16; p++)
		CHECK(!ring_is_replica(&r, p, 3, 11));
	ring_free(&r);
	test_end("preflist_even");
}

static void check_partitions(uint32_t q)
{
	struct ring r = make_even(q, 3);
	uint64_t width = q == 1 ? UINT64_MAX : (UINT64_MAX >> __builtin_ctz(q));
	uint64_t prev_hi = 0;
	for (uint32_t p = 0; p < q; p++) {
		uint64_t lo, hi;
		ring_partition_range(&r, p, &lo, &hi);
		CHECK(lo <= hi);
		CHECK(hi - lo == width);
		CHECK(p == 0 ? lo == 0 : lo == prev_hi + 1);
		CHECK_EQ(ring_partition(&r, lo), p);
		CHECK_EQ(ring_partition(&r, hi), p);
		if (p > 0)
			CHECK_EQ(ring_partition(&r, lo - 1), p - 1);
		if (p + 1 < q)
			CHECK_EQ(ring_partition(&r, hi + 1), p + 1);
		uint64_t mid = lo + (test_rand(&rng) % (width == UINT64_MAX ? width : width + 1));
		CHECK_EQ(ring_partition(&r, mid), p);
		prev_hi = hi;
	}
	CHECK(prev_hi == UINT64_MAX);
	/* Random hashes and real store key hashes. */
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t h = test_rand(&rng);
		if (i % 2) {
			uint8_t key[24];
			unsigned len = 1 + (unsigned)(test_rand(&rng) % sizeof(key));
			for (unsigned j = 0; j < len; j++)
				key[j] = (uint8_t)test_rand(&rng);
			h = store_key_hash(key, len);
		}
		uint32_t p = ring_partition(&r, h);
		CHECK(p < q);
		uint64_t lo, hi;
		ring_partition_range(&r, p, &lo, &hi);
		CHECK(lo <= h && h <= hi);
	}
	CHECK_EQ(ring_partition(&r, 0), 0);
	CHECK_EQ(ring_partition(&r, UINT64_MAX), q - 1);
	ring_free(&r);
}

static void test_partitions(void)
{
	test_begin("partitions");
	const uint32_t qs[] = { 1, 2, 1024, 65536 };
	for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		check_partitions(qs[i]);
	test_end("partitions");
}

static void test_counts(void)
{
	test_begin("counts");
	const uint32_t qs[] = { 1, 2, 1024 };
	for (unsigned qi = 0; qi < 3; qi++) {
		uint32_t q = qs[qi];
		for (unsigned nn = 1; nn <= 9; nn++) {
			struct ring r = make_even(q, nn);
			uint32_t owned_sum = 0;
			for (unsigned i = 0; i < nn; i++) {
				uint32_t o = ring_owned_count(&r, r.nodes[i]);
				owned_sum += o;
				CHECK(o == q / nn || o == q / nn + 1);
				if (q % nn == 0)
					CHECK_EQ(o, q / nn);
			}
			CHECK_EQ(owned_sum, q);
			for (unsigned n = 1; n <= RING_N_MAX; n++) {
				unsigned eff = n < nn ? n : nn;
				uint32_t rep_sum = 0;
				for (unsigned i = 0; i < nn; i++) {
					uint32_t c = ring_replicated_count(&r, n, r.nodes[i]);
					rep_sum += c;
					if (q % nn == 0)
						CHECK_EQ(c, eff * q / nn);
					else
						CHECK(c <= q);
				}
				CHECK_EQ(rep_sum, (uint64_t)eff * q);
			}
			CHECK_EQ(ring_owned_count(&r, 1), 0);
			CHECK_EQ(ring_replicated_count(&r, 3, 1), 0);
			ring_free(&r);
		}
	}
	test_end("counts");
}

static void check_same(const struct ring *a, const struct ring *b)
{
	CHECK_EQ(a->q, b->q);
	CHECK_EQ(a->q_bits, b->q_bits);
	CHECK(a->version == b->version);
	CHECK_EQ(a->nnodes, b->nnodes);
	CHECK(memcmp(a->nodes, b->nodes, a->nnodes * sizeof(a->nodes[0])) == 0);
	CHECK(memcmp(a->owner, b->owner, a->q * sizeof(a->owner[0])) == 0);
}

static uint8_t *encode(const struct ring *r, size_t *len)
{
	*len = ring_encoded_bytes(r);
	CHECK(*len <= RING_ENCODED_BYTES_MAX);
	uint8_t *buf = malloc(*len);
	CHECK(buf != NULL);
	CHECK_EQ(ring_encode(r, buf), *len);
	return buf;
}

/* Decode a copy of exactly len bytes (ASan sees any read past it). */
static int decode_exact(struct ring *out, const uint8_t *buf, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	CHECK(c != NULL);
	memcpy(c, buf, len);
	int err = ring_decode(out, c, len);
	free(c);
	if (err)
		CHECK(out->owner == NULL);
	return err;
}

static void reseal(uint8_t *buf, size_t len)
{
	le_put64(buf + len - 8, dv_checksum64(buf, len - 8));
}

static void check_refused(const uint8_t *buf, size_t len)
{
	struct ring d;
	CHECK_EQ(decode_exact(&d, buf, len), -EINVAL);
}

static void flips_and_truncations(const struct ring *r, bool every_bit)
{
	size_t len;
	uint8_t *buf = encode(r, &len);
	struct ring d;
	CHECK_EQ(decode_exact(&d, buf, len), 0);
	check_same(r, &d);
	ring_free(&d);
	for (size_t t = 0; t < len; t += every_bit || t < 64 || t + 64 > len ? 1 : 1 + test_rand(&rng) % (len / 32))
		check_refused(buf, t);
	uint8_t *longer = calloc(1, len + 1);
	CHECK(longer != NULL);
	memcpy(longer, buf, len);
	check_refused(longer, len + 1);
	free(longer);
	for (size_t i = 0; i < len; i++) {
		if (!every_bit && i >= 64 && i + 16 < len && test_rand(&rng) % 1024)
			continue; /* about 128 places in the middle of a big table */
		for (unsigned b = 0; b < 8; b++) {
			buf[i] ^= (uint8_t)(1u << b);
			check_refused(buf, len);
			buf[i] ^= (uint8_t)(1u << b);
		}
	}
	CHECK_EQ(decode_exact(&d, buf, len), 0);
	ring_free(&d);
	free(buf);
}

static void test_codec(void)
{
	test_begin("codec");
	struct ring r = make_even(1024, 5);
	r.version = 0x0123456789abcdefull;
	r.owner[7] = r.nodes[4];
	size_t len;
	uint8_t *buf = encode(&r, &len);
	CHECK_EQ(len, 20 + 2 * 5 + 2 * 1024 + 8);
	CHECK(memcmp(buf, "RING", 4) == 0);
	CHECK_EQ(le_get16(buf + 4), 1);
	CHECK_EQ(le_get16(buf + 6), 5);
	CHECK_EQ(le_get32(buf + 8), 1024);
	CHECK(le_get64(buf + 12) == r.version);
	CHECK_EQ(le_get16(buf + 20), r.nodes[0]);
	CHECK_EQ(le_get16(buf + 30 + 2 * 7), r.nodes[4]);
	struct ring d;
	CHECK_EQ(decode_exact(&d, buf, len), 0);
	check_same(&r, &d);
	ring_free(&d);

	struct ring c;
	CHECK_EQ(ring_copy(&c, &r), 0);
	check_same(&r, &c);
	c.owner[0] = c.nodes[1];
	CHECK_EQ(r.owner[0], r.nodes[0]); /* the copy owns its array */
	ring_free(&c);

	/* Every field made invalid, checksum corrected: refused by the field. */
	uint8_t *m = malloc(len);
	CHECK(m != NULL);
#define MUTATE(stmt)                      \
	do {                              \
		memcpy(m, buf, len);      \
		stmt;                     \
		reseal(m, len);           \
		check_refused(m, len);    \
	} while (0)
	MUTATE(m[0] = 'X');
	MUTATE(le_put16(m + 4, 0));
	MUTATE(le_put16(m + 4, 2));
	MUTATE(le_put16(m + 6, 0));
	MUTATE(le_put16(m + 6, 4));  /* length no longer matches */
	MUTATE(le_put32(m + 8, 0));
	MUTATE(le_put32(m + 8, 1023));
	MUTATE(le_put32(m + 8, 512)); /* a power of two, but the length says 1024 */
	MUTATE(le_put16(m + 20, 0));  /* id 0 */
	MUTATE(le_put16(m + 22, le_get16(m + 20))); /* duplicate */
	MUTATE(le_put16(m + 20, 0xffff));            /* unsorted */
	MUTATE(le_put16(m + 30 + 2 * 100, 1));       /* owner not a node */
	MUTATE(le_put16(m + 30 + 2 * 1023, 0));
#undef MUTATE
	/* A correct checksum over a layout sized for 65 nodes. */
	size_t big = 20 + 2 * 65 + 2 * 1 + 8;
	uint8_t *b = calloc(1, big);
	CHECK(b != NULL);
	memcpy(b, "RING", 4);
	le_put16(b + 4, 1);
	le_put16(b + 6, 65);
	le_put32(b + 8, 1);
	for (unsigned i = 0; i < 65; i++)
		le_put16(b + 20 + 2 * i, (uint16_t)(i + 1));
	le_put16(b + 20 + 130, 1);
	reseal(b, big);
	check_refused(b, big);
	le_put16(b + 6, 64); /* the same bytes as 64 nodes: the length is off by 2 */
	reseal(b, big);
	check_refused(b, big);
	free(b);
	/* Version is free: any value decodes. */
	memcpy(m, buf, len);
	le_put64(m + 12, 0);
	reseal(m, len);
	CHECK_EQ(decode_exact(&d, m, len), 0);
	CHECK(d.version == 0);
	ring_free(&d);
	free(m);
	free(buf);

	flips_and_truncations(&r, true);
	ring_free(&r);
	const uint32_t qs[] = { 1, 2, 16 };
	for (unsigned i = 0; i < 3; i++) {
		r = make_even(qs[i], 3);
		flips_and_truncations(&r, true);
		ring_free(&r);
	}
	r = make_even(65536, RING_NODES_MAX);
	flips_and_truncations(&r, false);
	ring_free(&r);
	test_end("codec");
}

/* The definition: after the listed ones, the owner of the first partition
 * clockwise whose owner is unlisted; after a full turn, the table's nodes in
 * id order after the owner. */
static void check_definition(const struct ring *r, uint32_t p, unsigned n, const uint16_t *pl, unsigned k)
{
	CHECK_EQ(k, n < r->nnodes ? n : r->nnodes);
	CHECK(distinct(pl, k));
	CHECK_EQ(pl[0], r->owner[p]);
	unsigned owner_at = 0;
	while (r->nodes[owner_at] != r->owner[p])
		owner_at++;
	for (unsigned j = 1; j < k; j++) {
		uint16_t next = 0;
		for (uint32_t i = 0; i < r->q && next == 0; i++) {
			uint16_t o = r->owner[(p + i) % r->q];
			bool seen = false;
			for (unsigned x = 0; x < j; x++)
				seen |= pl[x] == o;
			if (!seen)
				next = o;
		}
		for (unsigned i = 1; i <= r->nnodes && next == 0; i++) {
			uint16_t o = r->nodes[(owner_at + i) % r->nnodes];
			bool seen = false;
			for (unsigned x = 0; x < j; x++)
				seen |= pl[x] == o;
			if (!seen)
				next = o;
		}
		CHECK_EQ(pl[j], next);
	}
}

static void test_property(void)
{
	test_begin("property");
	for (unsigned iter = 0; iter < 300; iter++) {
		unsigned nn = 1 + (unsigned)(test_rand(&rng) % (iter % 10 == 0 ? RING_NODES_MAX : 12));
		uint16_t ids[RING_NODES_MAX];
		for (unsigned i = 0; i < nn; i++) {
			bool dup;
			do {
				ids[i] = (uint16_t)(1 + test_rand(&rng) % RING_NODE_ID_MAX);
				dup = false;
				for (unsigned j = 0; j < i; j++)
					dup |= ids[j] == ids[i];
			} while (dup);
		}
		uint32_t q = 1u << (test_rand(&rng) % 11);
		struct ring r;
		CHECK_EQ(ring_init_even(&r, q, ids, nn), 0);
		for (unsigned i = 1; i < nn; i++)
			CHECK(r.nodes[i - 1] < r.nodes[i]);
		/* Half the tables uneven: random owners among a random subset. */
		if (iter % 2) {
			unsigned sub = 1 + (unsigned)(test_rand(&rng) % nn);
			for (uint32_t p = 0; p < q; p++)
				r.owner[p] = r.nodes[test_rand(&rng) % sub];
			r.version += iter;
		}
		uint32_t owned = 0;
		for (unsigned i = 0; i < nn; i++)
			owned += ring_owned_count(&r, r.nodes[i]);
		CHECK_EQ(owned, q);
		uint16_t pl[RING_NODES_MAX];
		for (unsigned t = 0; t < 64; t++) {
			uint32_t p = (uint32_t)(test_rand(&rng) % q);
			unsigned n = 1 + (unsigned)(test_rand(&rng) % (nn + 2));
			unsigned k = ring_preflist(&r, p, n, pl);
			check_definition(&r, p, n, pl, k);
			uint16_t x = r.nodes[test_rand(&rng) % nn];
			bool in = false;
			for (unsigned i = 0; i < k; i++)
				in |= pl[i] == x;
			CHECK_EQ(ring_is_replica(&r, p, n, x), in);
		}
		unsigned n = 1 + (unsigned)(test_rand(&rng) % RING_N_MAX);
		uint64_t rep = 0;
		for (unsigned i = 0; i < nn; i++)
			rep += ring_replicated_count(&r, n, r.nodes[i]);
		CHECK(rep == (uint64_t)q * (n < nn ? n : nn));
		size_t len;
		uint8_t *buf = encode(&r, &len);
		struct ring d;
		CHECK_EQ(decode_exact(&d, buf, len), 0);
		check_same(&r, &d);
		ring_free(&d);
		free(buf);
		ring_free(&r);
	}
	test_end("property");
}

/* ring_digest names the table: the same for a copy and whatever the
 * version, another for another Q, another owner of one partition, another
 * node set (the handshake refuses peers whose digests differ: wire.h). */
static void test_digest(void)
{
	test_begin("digest");
	struct ring a = make_even(1024, 5), b;
	uint64_t d = ring_digest(&a);
	CHECK_EQ(ring_copy(&b, &a), 0);
	b.version = 99;
	CHECK(ring_digest(&b) == d);
	b.owner[1023] = b.nodes[0];
	CHECK(ring_digest(&b) != d);
	b.owner[1023] = a.owner[1023];
	CHECK(ring_digest(&b) == d);
	ring_free(&b);
	b = make_even(512, 5);
	CHECK(ring_digest(&b) != d);
	ring_free(&b);
	b = make_even(1024, 4);
	CHECK(ring_digest(&b) != d);
	ring_free(&b);
	uint16_t ids[5] = {10, 13, 16, 19, 23}; /* one id differs, same shape */
	CHECK_EQ(ring_init_even(&b, 1024, ids, 5), 0);
	CHECK(ring_digest(&b) != d);
	ring_free(&b);
	b = make_even(RING_Q_MAX, RING_NODES_MAX); /* the largest table: bounded buffer, every owner hashed */
	uint64_t big = ring_digest(&b);
	b.owner[RING_Q_MAX - 1] = b.nodes[0];
	CHECK(ring_digest(&b) != big);
	ring_free(&b);
	ring_free(&a);
	test_end("digest");
}

int main(void)
{
	rng = test_seed(0x72696e67);
	test_init_bad();
	test_init_sorted();
	test_preflist_even();
	test_partitions();
	test_counts();
	test_codec();
	test_digest();
	test_property();
	return test_soft_failures() ? 1 : 0;
}
