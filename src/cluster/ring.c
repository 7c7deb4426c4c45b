/* ring.c - the partition table and its preference lists (ring.h). */
#include "cluster/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/assert.h"
#include "base/hash.h"
#include "base/le.h"

#define RING_MAGIC 0x474e4952u /* "RING" little-endian */
#define RING_FORMAT 1u
#define RING_HEAD_BYTES 20u
#define RING_SUM_BYTES 8u

_Static_assert(RING_N_MAX <= RING_NODES_MAX, "a preference list fits in the node list");
_Static_assert(RING_NODE_ID_MAX <= UINT16_MAX, "node ids are u16 on the wire");
_Static_assert(RING_ENCODED_BYTES_MAX == RING_HEAD_BYTES + 2u * RING_NODES_MAX + 2u * RING_Q_MAX + RING_SUM_BYTES,
	       "ring.h's bound matches the layout");
_Static_assert((RING_Q_MAX & (RING_Q_MAX - 1)) == 0 && RING_Q_MIN == 1, "Q bounds are powers of two");
_Static_assert(14u + 2u * RING_NODES_MAX <= 256u, "ring_digest's buffer holds its head and the node ids");

static bool q_valid(uint32_t q) { return q >= RING_Q_MIN && q <= RING_Q_MAX && (q & (q - 1)) == 0; }

static unsigned log2_u32(uint32_t q)
{
	DV_ASSERT(q_valid(q));
	return (unsigned)__builtin_ctz(q);
}

/* Index of id in the sorted node list, or -1. */
static int node_index(const struct ring *r, uint16_t id)
{
	unsigned lo = 0, hi = r->nnodes;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (r->nodes[mid] == id)
			return (int)mid;
		if (r->nodes[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Sorted, unique, no id 0, 1..RING_NODES_MAX of them. */
static bool nodes_valid(const uint16_t *nodes, unsigned n)
{
	if (n == 0 || n > RING_NODES_MAX || nodes[0] == 0)
		return false;
	for (unsigned i = 1; i < n; i++)
		if (nodes[i] <= nodes[i - 1])
			return false;
	return true;
}

static void sort_ids(uint16_t *a, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		uint16_t v = a[i];
		unsigned j = i;
		for (; j > 0 && a[j - 1] > v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

int ring_init_even(struct ring *r, uint32_t q, const uint16_t *nodes, unsigned n)
{
	memset(r, 0, sizeof(*r));
	if (!q_valid(q) || n == 0 || n > RING_NODES_MAX)
		return -EINVAL;
	memcpy(r->nodes, nodes, n * sizeof(nodes[0]));
	sort_ids(r->nodes, n);
	if (!nodes_valid(r->nodes, n)) {
		memset(r, 0, sizeof(*r));
		return -EINVAL;
	}
	r->owner = malloc((size_t)q * sizeof(r->owner[0]));
	if (r->owner == NULL) {
		memset(r, 0, sizeof(*r));
		return -ENOMEM;
	}
	r->q = q;
	r->q_bits = log2_u32(q);
	r->version = 1;
	r->nnodes = n;
	for (uint32_t p = 0; p < q; p++)
		r->owner[p] = r->nodes[p % n];
	return 0;
}

void ring_free(struct ring *r)
{
	free(r->owner);
	memset(r, 0, sizeof(*r));
}

int ring_copy(struct ring *dst, const struct ring *src)
{
	DV_ASSERT(dst != src && q_valid(src->q) && src->owner != NULL);
	*dst = *src;
	dst->owner = malloc((size_t)src->q * sizeof(src->owner[0]));
	if (dst->owner == NULL) {
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	memcpy(dst->owner, src->owner, (size_t)src->q * sizeof(src->owner[0]));
	return 0;
}

void ring_partition_range(const struct ring *r, uint32_t p, uint64_t *lo, uint64_t *hi)
{
	DV_ASSERT(p < r->q);
	if (r->q_bits == 0) {
		*lo = 0;
		*hi = UINT64_MAX;
		return;
	}
	unsigned shift = 64 - r->q_bits;
	*lo = (uint64_t)p << shift;
	*hi = *lo | (UINT64_MAX >> r->q_bits);
	DV_ASSERT(ring_partition(r, *lo) == p && ring_partition(r, *hi) == p);
}

static bool listed(const uint16_t *out, unsigned k, uint16_t node)
{
	for (unsigned i = 0; i < k; i++)
		if (out[i] == node)
			return true;
	return false;
}

unsigned ring_preflist(const struct ring *r, uint32_t p, unsigned n, uint16_t *out)
{
	DV_ASSERT(p < r->q && r->nnodes > 0);
	unsigned want = n < r->nnodes ? n : r->nnodes;
	unsigned k = 0;
	/* Clockwise from p; at most one full turn. */
	for (uint32_t i = 0; i < r->q && k < want; i++) {
		uint16_t node = r->owner[(p + i) & (r->q - 1)];
		if (!listed(out, k, node))
			out[k++] = node;
	}
	/* Fewer owners than wanted (q < nodes, or nodes owning nothing):
	 * the table's other nodes in id order after the owner. */
	int at = node_index(r, r->owner[p]);
	DV_ASSERT(at >= 0);
	for (unsigned j = 1; j <= r->nnodes && k < want; j++) {
		uint16_t node = r->nodes[((unsigned)at + j) % r->nnodes];
		if (!listed(out, k, node))
			out[k++] = node;
	}
	DV_ASSERT(k == want && out[0] == r->owner[p]);
	return k;
}

bool ring_is_replica(const struct ring *r, uint32_t p, unsigned n, uint16_t node)
{
	uint16_t pl[RING_NODES_MAX];
	unsigned k = ring_preflist(r, p, n, pl);
	return listed(pl, k, node);
}

uint32_t ring_owned_count(const struct ring *r, uint16_t node)
{
	uint32_t c = 0;
	for (uint32_t p = 0; p < r->q; p++)
		c += r->owner[p] == node;
	return c;
}

uint32_t ring_replicated_count(const struct ring *r, unsigned n, uint16_t node)
{
	uint32_t c = 0;
	for (uint32_t p = 0; p < r->q; p++)
		c += ring_is_replica(r, p, n, node);
	return c;
}

size_t ring_encoded_bytes(const struct ring *r)
{
	return RING_HEAD_BYTES + 2u * (size_t)r->nnodes + 2u * (size_t)r->q + RING_SUM_BYTES;
}

uint64_t ring_digest(const struct ring *r)
{
	DV_ASSERT(q_valid(r->q) && nodes_valid(r->nodes, r->nnodes));
	uint8_t buf[256];
	memcpy(buf, "RINGDIG1", 8);
	le_put32(buf + 8, r->q);
	le_put16(buf + 12, (uint16_t)r->nnodes);
	size_t n = 14;
	for (unsigned i = 0; i < r->nnodes; i++) {
		le_put16(buf + n, r->nodes[i]);
		n += 2;
	}
	uint64_t h = 0; /* each block's hash seeds the next one's */
	for (uint32_t i = 0; i < r->q; i++) {
		if (n + 2 > sizeof(buf)) {
			h = XXH3_64bits_withSeed(buf, n, h);
			n = 0;
		}
		le_put16(buf + n, r->owner[i]);
		n += 2;
	}
	return XXH3_64bits_withSeed(buf, n, h);
}

size_t ring_encode(const struct ring *r, uint8_t *out)
{
	DV_ASSERT(q_valid(r->q) && nodes_valid(r->nodes, r->nnodes));
	le_put32(out, RING_MAGIC);
	le_put16(out + 4, RING_FORMAT);
	le_put16(out + 6, (uint16_t)r->nnodes);
	le_put32(out + 8, r->q);
	le_put64(out + 12, r->version);
	uint8_t *p = out + RING_HEAD_BYTES;
	for (unsigned i = 0; i < r->nnodes; i++, p += 2)
		le_put16(p, r->nodes[i]);
	for (uint32_t i = 0; i < r->q; i++, p += 2) {
		DV_ASSERT(node_index(r, r->owner[i]) >= 0);
		le_put16(p, r->owner[i]);
	}
	le_put64(p, dv_checksum64(out, (size_t)(p - out)));
	size_t len = (size_t)(p - out) + RING_SUM_BYTES;
	DV_ASSERT(len == ring_encoded_bytes(r));
	return len;
}

/* The fixed head: magic, format and the counts that size the rest. */
static int decode_head(struct ring *t, const uint8_t *buf, size_t len)
{
	if (len < RING_HEAD_BYTES + RING_SUM_BYTES)
		return -EINVAL;
	if (le_get32(buf) != RING_MAGIC || le_get16(buf + 4) != RING_FORMAT)
		return -EINVAL;
	t->nnodes = le_get16(buf + 6);
	t->q = le_get32(buf + 8);
	t->version = le_get64(buf + 12);
	if (t->nnodes == 0 || t->nnodes > RING_NODES_MAX || !q_valid(t->q))
		return -EINVAL;
	if (len != ring_encoded_bytes(t))
		return -EINVAL;
	size_t body = len - RING_SUM_BYTES;
	if (le_get64(buf + body) != dv_checksum64(buf, body))
		return -EINVAL;
	t->q_bits = log2_u32(t->q);
	return 0;
}

int ring_decode(struct ring *r, const uint8_t *buf, size_t len)
{
	struct ring t;
	memset(&t, 0, sizeof(t));
	memset(r, 0, sizeof(*r));
	int err = decode_head(&t, buf, len);
	if (err)
		return err;
	const uint8_t *p = buf + RING_HEAD_BYTES;
	for (unsigned i = 0; i < t.nnodes; i++, p += 2)
		t.nodes[i] = le_get16(p);
	if (!nodes_valid(t.nodes, t.nnodes))
		return -EINVAL;
	const uint8_t *owners = p;
	for (uint32_t i = 0; i < t.q; i++)
		if (node_index(&t, le_get16(owners + 2 * (size_t)i)) < 0)
			return -EINVAL;
	t.owner = malloc((size_t)t.q * sizeof(t.owner[0]));
	if (t.owner == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < t.q; i++)
		t.owner[i] = le_get16(owners + 2 * (size_t)i);
	*r = t;
	return 0;
}
