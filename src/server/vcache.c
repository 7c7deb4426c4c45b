/* vcache.c - chained hash table with CLOCK eviction.
 *
 * Invariants:
 * 1. bytes == sum of entry_bytes() of the entries in the table.
 * 2. After every insertion bytes <= bytes_max (eviction runs first).
 * 3. buckets[b].epoch is the value of epoch when a write of a key hashing
 *    to b last completed; epoch only grows.
 * 4. floor is the epoch of the last vcache_clear(): a read submitted
 *    before it (a smaller epoch) fills nothing.
 */
#include "server/vcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/assert.h"
#include "base/hash.h"

#define VCACHE_BUCKET_BYTES 256u /* table sized for entries of about this size */
#define VCACHE_BUCKETS_MIN 1024u
#define VCACHE_EVICT_STEPS_MAX (1u << 20)

struct ventry {
	struct ventry *next;
	uint64_t hash;
	uint64_t expire_ms, seq;
	uint32_t key_len, val_len;
	bool ref; /* CLOCK: used since the hand last passed */
	char data[]; /* key then value */
};

/* Chain head and the bucket's last write epoch side by side: one cache
 * line (and one TLB entry) per probe. */
struct bucket {
	struct ventry *head;
	uint64_t epoch;
};

struct vcache {
	struct bucket *buckets;
	size_t buckets_bytes;
	uint64_t mask;
	uint64_t hand;
	uint64_t epoch, floor;
	uint64_t bytes, bytes_max;
	struct vcache_stats st;
};

static uint64_t entry_bytes(const struct ventry *e) { return sizeof(*e) + e->key_len + e->val_len + 16u; }

int vcache_open(struct vcache **out, uint64_t bytes_max)
{
	struct vcache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->bytes_max = bytes_max;
	if (bytes_max) {
		uint64_t n = VCACHE_BUCKETS_MIN;
		while (n < bytes_max / VCACHE_BUCKET_BYTES && n < (1ull << 30))
			n *= 2;
		/* Anonymous pages: zero, touched as buckets fill; huge pages
		 * spare a TLB miss per random probe (a hint only). */
		c->buckets_bytes = n * sizeof(*c->buckets);
		void *p = mmap(NULL, c->buckets_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			free(c);
			return -ENOMEM;
		}
		(void)madvise(p, c->buckets_bytes, MADV_HUGEPAGE);
		c->buckets = p;
		c->mask = n - 1;
		c->bytes = c->buckets_bytes;
	}
	*out = c;
	return 0;
}

void vcache_close(struct vcache *c)
{
	if (!c)
		return;
	for (uint64_t b = 0; c->buckets && b <= c->mask; b++) {
		struct ventry *e = c->buckets[b].head;
		while (e) {
			struct ventry *next = e->next;
			free(e);
			e = next;
		}
	}
	if (c->buckets)
		munmap(c->buckets, c->buckets_bytes);
	free(c);
}

static struct ventry **find(struct vcache *c, uint64_t h, const void *key, uint32_t key_len)
{
	struct ventry **pp = &c->buckets[h & c->mask].head;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->key_len == key_len && memcmp((*pp)->data, key, key_len) == 0)
			return pp;
	return pp;
}

static void unlink_entry(struct vcache *c, struct ventry **pp)
{
	struct ventry *e = *pp;
	*pp = e->next;
	DV_ASSERT(c->bytes >= entry_bytes(e));
	c->bytes -= entry_bytes(e);
	c->st.entries--;
	free(e);
}

/* Free entries the hand finds unused until `need` more bytes fit. */
static void evict_for(struct vcache *c, uint64_t need)
{
	for (uint32_t steps = 0; c->bytes + need > c->bytes_max && c->st.entries && steps < VCACHE_EVICT_STEPS_MAX;
	     steps++) {
		struct ventry **pp = &c->buckets[c->hand & c->mask].head;
		while (*pp) {
			if ((*pp)->ref) {
				(*pp)->ref = false;
				pp = &(*pp)->next;
			} else {
				unlink_entry(c, pp);
				c->st.evictions++;
			}
		}
		c->hand++;
	}
}

static void insert(struct vcache *c, uint64_t h, const void *key, uint32_t key_len, const void *val,
		   uint32_t val_len, uint64_t expire_ms, uint64_t seq)
{
	struct ventry **pp = find(c, h, key, key_len);
	if (*pp && (*pp)->val_len == val_len) {
		/* Same size (an overwrite of a fixed-size value): in place. */
		memcpy((*pp)->data + key_len, val, val_len);
		(*pp)->expire_ms = expire_ms;
		(*pp)->seq = seq;
		return;
	}
	if (*pp)
		unlink_entry(c, pp);
	uint64_t need = sizeof(struct ventry) + key_len + val_len + 16u;
	if (need > c->bytes_max / 8)
		return; /* one value may not take a large share of the cache */
	evict_for(c, need);
	if (c->bytes + need > c->bytes_max)
		return;
	struct ventry *e = malloc(sizeof(*e) + key_len + val_len);
	if (!e)
		return;
	*e = (struct ventry){.hash = h, .expire_ms = expire_ms, .seq = seq, .key_len = key_len, .val_len = val_len};
	memcpy(e->data, key, key_len);
	if (val_len) /* val may be NULL when empty */
		memcpy(e->data + key_len, val, val_len);
	struct ventry **head = &c->buckets[h & c->mask].head;
	e->next = *head;
	*head = e;
	c->bytes += entry_bytes(e);
	c->st.entries++;
	DV_ASSERT(c->bytes <= c->bytes_max);
}

bool vcache_get(struct vcache *c, const void *key, uint32_t key_len, uint64_t now_ms, struct vcache_hit *out)
{
	if (!c->bytes_max)
		return false;
	uint64_t h = dv_key_hash64(key, key_len);
	struct ventry **pp = find(c, h, key, key_len);
	struct ventry *e = *pp;
	if (e && e->expire_ms && e->expire_ms <= now_ms) {
		unlink_entry(c, pp);
		e = NULL;
	}
	if (!e) {
		c->st.misses++;
		return false;
	}
	e->ref = true;
	c->st.hits++;
	*out = (struct vcache_hit){.val = e->data + e->key_len, .val_len = e->val_len, .expire_ms = e->expire_ms,
				   .seq = e->seq};
	return true;
}

void vcache_put(struct vcache *c, const void *key, uint32_t key_len, const void *val, uint32_t val_len,
		uint64_t expire_ms, uint64_t seq)
{
	if (!c->bytes_max)
		return;
	uint64_t h = dv_key_hash64(key, key_len);
	c->buckets[h & c->mask].epoch = ++c->epoch;
	insert(c, h, key, key_len, val, val_len, expire_ms, seq);
}

void vcache_forget(struct vcache *c, const void *key, uint32_t key_len)
{
	if (!c->bytes_max)
		return;
	uint64_t h = dv_key_hash64(key, key_len);
	c->buckets[h & c->mask].epoch = ++c->epoch;
	struct ventry **pp = find(c, h, key, key_len);
	if (*pp)
		unlink_entry(c, pp);
}

void vcache_prefetch(const struct vcache *c, const void *key, uint32_t key_len)
{
	if (c->bytes_max)
		__builtin_prefetch(&c->buckets[dv_key_hash64(key, key_len) & c->mask], 1);
}

void vcache_prefetch_entry(const struct vcache *c, const void *key, uint32_t key_len)
{
	if (!c->bytes_max)
		return;
	const struct ventry *head = c->buckets[dv_key_hash64(key, key_len) & c->mask].head;
	if (head)
		__builtin_prefetch(head, 1);
}

uint64_t vcache_epoch(const struct vcache *c) { return c->epoch; }

void vcache_fill(struct vcache *c, uint64_t epoch, const void *key, uint32_t key_len, const void *val,
		 uint32_t val_len, uint64_t expire_ms, uint64_t seq)
{
	if (!c->bytes_max)
		return;
	uint64_t h = dv_key_hash64(key, key_len);
	if (c->buckets[h & c->mask].epoch > epoch || epoch < c->floor) {
		c->st.fills_skipped++; /* a write completed meanwhile: what we read may be old */
		return;
	}
	c->st.fills++;
	insert(c, h, key, key_len, val, val_len, expire_ms, seq);
}

void vcache_get_stats(const struct vcache *c, struct vcache_stats *out)
{
	*out = c->st;
	out->bytes = c->bytes;
	out->bytes_max = c->bytes_max;
}

void vcache_clear(struct vcache *c)
{
	c->floor = ++c->epoch;
	if (!c->bytes_max)
		return;
	for (uint64_t b = 0; b <= c->mask && c->st.entries; b++) {
		while (c->buckets[b].head)
			unlink_entry(c, &c->buckets[b].head);
	}
	DV_ASSERT(c->st.entries == 0 && c->bytes == c->buckets_bytes);
}
