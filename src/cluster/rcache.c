/* rcache.c - a replica's read cache (rcache.h). A chained hash table of
 * entries and an LRU list through them; per-bucket write generations. */
#include "cluster/rcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define RCACHE_BUCKETS_MIN 1024u
#define RCACHE_BUCKETS_MAX (1u << 22)
#define RCACHE_ENTRY_GUESS 512u /* bytes an entry takes on average, for the table's size */
#define RCACHE_SECOND_CHANCES 8u /* marked entries sent back to the front by one fill, at most */

int rcache_init(struct rcache *rc, uint64_t max_bytes)
{
	memset(rc, 0, sizeof(*rc));
	rc->max_bytes = max_bytes;
	if (max_bytes == 0)
		return 0;
	uint64_t want = max_bytes / RCACHE_ENTRY_GUESS;
	uint32_t nb = RCACHE_BUCKETS_MIN;
	while (nb < want && nb < RCACHE_BUCKETS_MAX)
		nb <<= 1;
	rc->buckets = calloc(nb, sizeof(*rc->buckets));
	rc->gens = calloc(nb, sizeof(*rc->gens));
	if (!rc->buckets || !rc->gens) {
		free(rc->buckets);
		free(rc->gens);
		memset(rc, 0, sizeof(*rc));
		return -ENOMEM;
	}
	rc->mask = nb - 1;
	return 0;
}

static uint64_t entry_bytes(const struct rcache_entry *e)
{
	return sizeof(*e) + (uint64_t)e->key_len + e->meta_len + e->val_len;
}

/* e leaves the table and the list; freed now unless pinned. */
static void entry_drop(struct rcache *rc, struct rcache_entry *e)
{
	DV_ASSERT(e->linked);
	struct rcache_entry **p = &rc->buckets[e->hash_lo & rc->mask];
	while (*p != e) {
		DV_ASSERT(*p != NULL);
		p = &(*p)->chain;
	}
	*p = e->chain;
	if (e->prev)
		e->prev->next = e->next;
	else
		rc->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		rc->tail = e->prev;
	e->linked = 0;
	DV_ASSERT(rc->bytes >= entry_bytes(e) && rc->entries > 0);
	rc->bytes -= entry_bytes(e);
	rc->entries--;
	if (e->pins == 0)
		free(e);
}

void rcache_free(struct rcache *rc)
{
	while (rc->head) {
		struct rcache_entry *e = rc->head;
		e->pins = 0; /* the cnode is going: ops still deferred are never completed */
		entry_drop(rc, e);
	}
	free(rc->buckets);
	free(rc->gens);
	memset(rc, 0, sizeof(*rc));
}

static struct rcache_entry *find(const struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash)
{
	for (struct rcache_entry *e = rc->buckets[hash & rc->mask]; e; e = e->chain)
		if (e->hash_lo == (uint32_t)hash && e->key_len == key_len && memcmp(e->data, key, key_len) == 0)
			return e;
	return NULL;
}

static void to_front(struct rcache *rc, struct rcache_entry *e)
{
	if (rc->head == e)
		return;
	e->prev->next = e->next; /* not the head: has a prev */
	if (e->next)
		e->next->prev = e->prev;
	else
		rc->tail = e->prev;
	e->prev = NULL;
	e->next = rc->head;
	rc->head->prev = e;
	rc->head = e;
}

const struct rcache_entry *rcache_peek(const struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash)
{
	return rc->max_bytes ? find(rc, key, key_len, hash) : NULL;
}

struct rcache_entry *rcache_get(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash,
				bool verified_only)
{
	if (rc->max_bytes == 0)
		return NULL;
	struct rcache_entry *e = find(rc, key, key_len, hash);
	if (!e || (verified_only && !e->verified)) {
		rc->misses++;
		return NULL;
	}
	rc->hits++;
	e->used = 1; /* second chance at eviction (rcache_fill); no list links touched here */
	e->pins++;
	return e;
}

void rcache_unpin(struct rcache *rc, struct rcache_entry *e)
{
	DV_ASSERT(e->pins > 0);
	if (--e->pins == 0 && !e->linked)
		free(e);
	(void)rc;
}

uint64_t rcache_gen(const struct rcache *rc, uint64_t hash)
{
	if (rc->max_bytes == 0)
		return 0;
	return (uint64_t)rc->epoch << 32 | rc->gens[hash & rc->mask];
}

void rcache_forget(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash)
{
	if (rc->max_bytes == 0)
		return;
	struct rcache_entry *e = find(rc, key, key_len, hash);
	if (e)
		entry_drop(rc, e);
}

void rcache_write(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash)
{
	if (rc->max_bytes == 0)
		return;
	rc->gens[hash & rc->mask]++;
	rcache_forget(rc, key, key_len, hash);
}

void rcache_fill(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash, uint64_t gen, uint64_t seq,
		 const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t val_len, bool verified)
{
	if (rc->max_bytes == 0)
		return;
	if (gen != rcache_gen(rc, hash)) {
		rc->stale_fills++; /* a write of a key of the bucket began since the GET: its copy may be older */
		return;
	}
	uint64_t need = sizeof(struct rcache_entry) + (uint64_t)key_len + meta_len + val_len;
	if (need > rc->max_bytes / 8)
		return;
	DV_ASSERT(key_len <= UINT16_MAX && meta_len <= UINT16_MAX && val_len < (1u << 29)); /* the header's fields */
	struct rcache_entry *old = find(rc, key, key_len, hash);
	if (old) {
		if (old->seq == seq) { /* the same record */
			old->verified |= verified;
			return;
		}
		entry_drop(rc, old);
	}
	unsigned chances = 0;
	while (rc->bytes + need > rc->max_bytes && rc->tail) {
		struct rcache_entry *t = rc->tail;
		if (t->used && chances < RCACHE_SECOND_CHANCES && t != rc->head) {
			t->used = 0;
			to_front(rc, t);
			chances++;
		} else {
			entry_drop(rc, t);
		}
	}
	struct rcache_entry *e = malloc(need);
	if (!e)
		return; /* a cache: nothing lost */
	*e = (struct rcache_entry){.hash_lo = (uint32_t)hash, .seq = seq, .key_len = (uint16_t)key_len,
				   .meta_len = (uint16_t)meta_len, .val_len = val_len, .linked = 1,
				   .verified = verified};
	memcpy(e->data, key, key_len);
	if (meta_len)
		memcpy(e->data + key_len, meta, meta_len);
	if (val_len)
		memcpy(e->data + key_len + meta_len, vals, val_len);
	struct rcache_entry **b = &rc->buckets[hash & rc->mask];
	e->chain = *b;
	*b = e;
	e->next = rc->head;
	if (rc->head)
		rc->head->prev = e;
	else
		rc->tail = e;
	rc->head = e;
	rc->bytes += need;
	rc->entries++;
	rc->fills++;
}

void rcache_clear(struct rcache *rc)
{
	if (rc->max_bytes == 0)
		return;
	while (rc->head)
		entry_drop(rc, rc->head);
	rc->epoch++;
}
