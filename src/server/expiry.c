/* expiry.c - a binary min-heap on expire_ms, and an index from key to
 * heap position (open addressing on the key hash, linear probing, at most
 * half full; deletion shifts back, no tombstones).
 *
 * Invariants:
 * 1. heap[0..count) is a min-heap on expire_ms; every entry has expire_ms
 *    > 0 and owns its key copy.
 * 2. index[heap[i].slot] == i + 1 for every i < count; a slot is 0 when
 *    free; 2 * count <= index_cap (0 or a power of two).
 * 3. bytes == sum of entry_cost() over the entries; count <= keys_max and
 *    bytes <= bytes_max when an entry is added (the bounds may shrink
 *    below what is kept).
 */
#include "server/expiry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/hash.h"

#define HEAP_MIN 1024u
#define INDEX_MIN 2048u

struct exp_entry {
	uint64_t expire_ms, seq, hash;
	char *key;
	uint32_t key_len;
	uint32_t slot;
};

struct expiry {
	struct exp_entry *heap;
	uint32_t count, heap_cap;
	uint32_t *index;
	uint32_t index_cap;
	uint32_t keys_max;
	uint64_t bytes_max, bytes;
};

/* What one entry may cost: its heap slot and index slots at their most
 * slack (the arrays grow by doubling), its key copy and malloc's header. */
static uint64_t entry_cost(uint32_t key_len)
{
	return 2 * sizeof(struct exp_entry) + 4 * sizeof(uint32_t) + key_len + 16u;
}

int expiry_open(struct expiry **out, uint32_t keys_max, uint64_t bytes_max)
{
	struct expiry *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->keys_max = keys_max;
	x->bytes_max = bytes_max;
	*out = x;
	return 0;
}

void expiry_clear(struct expiry *x)
{
	for (uint32_t i = 0; i < x->count; i++)
		free(x->heap[i].key);
	free(x->heap);
	free(x->index);
	x->heap = NULL;
	x->index = NULL;
	x->count = x->heap_cap = x->index_cap = 0;
	x->bytes = 0;
}

void expiry_close(struct expiry *x)
{
	if (!x)
		return;
	expiry_clear(x);
	free(x);
}

void expiry_set_bounds(struct expiry *x, uint32_t keys_max, uint64_t bytes_max)
{
	x->keys_max = keys_max;
	x->bytes_max = bytes_max;
}

uint32_t expiry_count(const struct expiry *x) { return x->count; }
uint64_t expiry_bytes(const struct expiry *x) { return x->bytes; }

/* ---- the index ---- */

static uint32_t home_of(const struct expiry *x, uint64_t hash) { return (uint32_t)hash & (x->index_cap - 1); }

/* The index slot of key, or UINT32_MAX. */
static uint32_t find(const struct expiry *x, uint64_t h, const void *key, uint32_t key_len)
{
	if (x->count == 0)
		return UINT32_MAX;
	uint32_t mask = x->index_cap - 1;
	for (uint32_t s = home_of(x, h), n = 0; x->index[s]; s = (s + 1) & mask, n++) {
		DV_ASSERT(n < x->index_cap);
		const struct exp_entry *e = &x->heap[x->index[s] - 1];
		if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
			return s;
	}
	return UINT32_MAX;
}

static void index_put(struct expiry *x, uint32_t pos)
{
	uint32_t mask = x->index_cap - 1, s = home_of(x, x->heap[pos].hash);
	while (x->index[s])
		s = (s + 1) & mask;
	x->index[s] = pos + 1;
	x->heap[pos].slot = s;
}

/* A new index of cap slots for the entries: 0 or -ENOMEM (nothing changed). */
static int index_rebuild(struct expiry *x, uint32_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	free(x->index);
	x->index = idx;
	x->index_cap = cap;
	for (uint32_t i = 0; i < x->count; i++)
		index_put(x, i);
	return 0;
}

/* Free slot s, shifting back the entries after it that may move. */
static void index_del(struct expiry *x, uint32_t s)
{
	uint32_t mask = x->index_cap - 1;
	for (uint32_t j = (s + 1) & mask; x->index[j]; j = (j + 1) & mask) {
		uint32_t h = home_of(x, x->heap[x->index[j] - 1].hash);
		bool stays = s < j ? s < h && h <= j : s < h || h <= j;
		if (!stays) {
			x->index[s] = x->index[j];
			x->heap[x->index[s] - 1].slot = s;
			s = j;
		}
	}
	x->index[s] = 0;
}

/* ---- the heap ---- */

static void heap_set(struct expiry *x, uint32_t pos, struct exp_entry e)
{
	x->heap[pos] = e;
	x->index[e.slot] = pos + 1;
}

static void sift_up(struct expiry *x, uint32_t i)
{
	struct exp_entry e = x->heap[i];
	while (i > 0 && x->heap[(i - 1) / 2].expire_ms > e.expire_ms) {
		heap_set(x, i, x->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(x, i, e);
}

static void sift_down(struct expiry *x, uint32_t i)
{
	struct exp_entry e = x->heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = l;
		if (l >= x->count)
			break;
		if (r < x->count && x->heap[r].expire_ms < x->heap[l].expire_ms)
			m = r;
		if (x->heap[m].expire_ms >= e.expire_ms)
			break;
		heap_set(x, i, x->heap[m]);
		i = m;
	}
	heap_set(x, i, e);
}

/* Remove the entry at pos (its key copy stays with the caller). */
static struct exp_entry remove_at(struct expiry *x, uint32_t pos)
{
	DV_ASSERT(pos < x->count);
	struct exp_entry gone = x->heap[pos];
	index_del(x, gone.slot);
	x->count--;
	x->bytes -= entry_cost(gone.key_len);
	if (pos < x->count) {
		struct exp_entry last = x->heap[x->count];
		heap_set(x, pos, last);
		sift_down(x, pos);
		sift_up(x, pos);
	}
	/* Give memory back after a burst (a failed shrink keeps the larger arrays). */
	if (x->count == 0) {
		expiry_clear(x);
	} else if (x->heap_cap > HEAP_MIN && x->count < x->heap_cap / 4) {
		struct exp_entry *h = realloc(x->heap, (size_t)(x->heap_cap / 2) * sizeof(*h));
		if (h) {
			x->heap = h;
			x->heap_cap /= 2;
		}
	} else if (x->index_cap > INDEX_MIN && 8ull * x->count < x->index_cap) {
		index_rebuild(x, x->index_cap / 2);
	}
	return gone;
}

/* Room for one more entry: 0 or -ENOMEM. */
static int reserve_one(struct expiry *x)
{
	if (x->count == x->heap_cap) {
		uint32_t cap = x->heap_cap ? x->heap_cap * 2 : HEAP_MIN;
		struct exp_entry *h = cap > x->heap_cap ? realloc(x->heap, (size_t)cap * sizeof(*h)) : NULL;
		if (!h)
			return -ENOMEM;
		x->heap = h;
		x->heap_cap = cap;
	}
	if (2ull * (x->count + 1) > x->index_cap) {
		uint64_t cap = x->index_cap ? 2ull * x->index_cap : INDEX_MIN;
		if (cap > (1ull << 31) || index_rebuild(x, (uint32_t)cap))
			return -ENOMEM;
	}
	return 0;
}

bool expiry_note(struct expiry *x, const void *key, uint32_t key_len, uint64_t expire_ms, uint64_t seq)
{
	if (expire_ms == 0 && x->count == 0)
		return true;
	uint64_t h = dv_key_hash64(key, key_len);
	uint32_t s = find(x, h, key, key_len);
	if (s != UINT32_MAX) {
		uint32_t pos = x->index[s] - 1;
		if (seq < x->heap[pos].seq)
			return true; /* an older record than the one noted (a scan's view) */
		if (expire_ms == 0) {
			free(remove_at(x, pos).key);
			return true;
		}
		x->heap[pos].expire_ms = expire_ms;
		x->heap[pos].seq = seq;
		sift_down(x, pos);
		sift_up(x, x->index[s] - 1);
		return true;
	}
	if (expire_ms == 0)
		return true;
	if (x->count >= x->keys_max || x->bytes + entry_cost(key_len) > x->bytes_max || reserve_one(x))
		return false;
	char *k = malloc(key_len ? key_len : 1);
	if (!k)
		return false;
	memcpy(k, key, key_len);
	uint32_t pos = x->count++;
	x->heap[pos] = (struct exp_entry){.expire_ms = expire_ms, .seq = seq, .hash = h, .key = k, .key_len = key_len};
	index_put(x, pos);
	x->bytes += entry_cost(key_len);
	sift_up(x, pos);
	return true;
}

bool expiry_pop_due(struct expiry *x, uint64_t now_ms, struct expiry_item *out)
{
	if (x->count == 0 || x->heap[0].expire_ms > now_ms)
		return false;
	struct exp_entry e = remove_at(x, 0);
	*out = (struct expiry_item){.key = e.key, .key_len = e.key_len, .expire_ms = e.expire_ms, .seq = e.seq};
	return true;
}
