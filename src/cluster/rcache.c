/* rcache.c - a replica's read cache (rcache.h). A chained hash table of
 * entries and an LRU list through them; write generations per group of
 * buckets.
 *
 * Links: a bucket's head and every entry's chain are a tagged link, the
 * entry's address (48 bits) with two facts about the entry it points to
 * above them, so a lookup of a key that is not cached (every SET of a new
 * key, at each replica) rarely loads an entry it does not want:
 *
 *   bits 0..47   the entry (NULL: the link ends the chain)
 *   bit  48      LINK_SUCC: that entry's own chain is not empty
 *   bits 49..63  LINK_TAG: that entry's hash_lo >> 17 (15 bits)
 *
 * find() follows a link into its entry only when the tag matches (then it
 * compares the key) or the entry has a successor (then it needs the
 * entry's chain to go on). Invariant (rcache_check): every link's tag and
 * successor bit are those of the entry it points to. Assumed, and asserted
 * at every link made: heap addresses have their top 16 bits clear (x86-64;
 * arm64 unless its heap pointers carry tags in the top byte, as with MTE
 * or HWASan, where the first fill would abort). */
#include "cluster/rcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define RCACHE_BUCKETS_MIN 1024u
#define RCACHE_BUCKETS_MAX (1u << 22)
#define RCACHE_ENTRY_GUESS 512u /* bytes an entry takes on average, for the table's size */
#define RCACHE_SECOND_CHANCES 8u /* marked entries sent back to the front by one fill, at most */
/* Buckets per write generation: the generations stay small enough for the
 * CPU's cache (1M buckets: 256 KiB), at the price of a GET's fill refused
 * now and then for a write of another key of its group. */
#define RCACHE_BUCKETS_PER_GEN 16u

#define LINK_PTR_BITS 48
#define LINK_PTR_MASK ((UINT64_C(1) << LINK_PTR_BITS) - 1)
#define LINK_SUCC (UINT64_C(1) << LINK_PTR_BITS)
#define LINK_TAG_SHIFT 49
#define LINK_TAG_MASK (~UINT64_C(0) << LINK_TAG_SHIFT)
_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "a link holds an address");

static uint64_t link_tag(uint32_t hash_lo) { return (uint64_t)(hash_lo >> 17) << LINK_TAG_SHIFT; }

static struct rcache_entry *link_entry(uint64_t l) { return (struct rcache_entry *)(uintptr_t)(l & LINK_PTR_MASK); }

/* The link to e, as its predecessor (or its bucket) holds it. */
static uint64_t link_to(const struct rcache_entry *e)
{
	uint64_t p = (uint64_t)(uintptr_t)e;
	DV_ASSERT(p != 0 && (p & ~LINK_PTR_MASK) == 0); /* a user-space address: 47 bits on x86-64 and arm64 */
	return p | link_tag(e->hash_lo) | (e->chain ? LINK_SUCC : 0);
}

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
	uint32_t ng = nb / RCACHE_BUCKETS_PER_GEN;
	rc->buckets = calloc(nb, sizeof(*rc->buckets));
	rc->gens = calloc(ng, sizeof(*rc->gens));
	if (!rc->buckets || !rc->gens) {
		free(rc->buckets);
		free(rc->gens);
		memset(rc, 0, sizeof(*rc));
		return -ENOMEM;
	}
	rc->mask = nb - 1;
	rc->gen_mask = ng - 1;
	return 0;
}

/* What an entry of a record of these lengths counts against max_bytes. */
static uint64_t record_bytes(uint32_t key_len, uint32_t meta_len, uint32_t val_len)
{
	return sizeof(struct rcache_entry) + (uint64_t)key_len + meta_len + val_len;
}

static uint64_t entry_bytes(const struct rcache_entry *e) { return record_bytes(e->key_len, e->meta_len, e->val_len); }

/* e leaves the table and the list; freed now unless pinned. */
static void entry_drop(struct rcache *rc, struct rcache_entry *e)
{
	DV_ASSERT(e->linked);
	uint64_t *pred = NULL; /* the link to the entry before e, if any */
	uint64_t *p = &rc->buckets[e->hash_lo & rc->mask];
	while (link_entry(*p) != e) {
		DV_ASSERT(*p != 0);
		pred = p;
		p = &link_entry(*p)->chain;
	}
	*p = e->chain; /* the link to e's successor, its bits unchanged */
	if (*p == 0 && pred)
		*pred &= ~LINK_SUCC; /* e was the last: the entry before it is now */
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
	uint64_t tag = link_tag((uint32_t)hash);
	uint64_t l = rc->buckets[hash & rc->mask];
	while (l) {
		if ((l & LINK_TAG_MASK) != tag && !(l & LINK_SUCC))
			return NULL; /* not this one, and the last */
		struct rcache_entry *e = link_entry(l);
		if ((l & LINK_TAG_MASK) == tag && e->hash_lo == (uint32_t)hash && e->key_len == key_len &&
		    memcmp(e->data, key, key_len) == 0)
			return e;
		l = e->chain;
	}
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

void rcache_prefetch(const struct rcache *rc, uint64_t hash)
{
	if (rc->max_bytes == 0)
		return;
	__builtin_prefetch(&rc->buckets[hash & rc->mask], 0, 3);
	__builtin_prefetch(&rc->gens[hash & rc->gen_mask], 0, 3);
}

uint64_t rcache_gen(const struct rcache *rc, uint64_t hash)
{
	if (rc->max_bytes == 0)
		return 0;
	return (uint64_t)rc->epoch << 32 | rc->gens[hash & rc->gen_mask];
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
	rc->gens[hash & rc->gen_mask]++;
	rcache_forget(rc, key, key_len, hash);
}

/* The record of key goes in (old: its entry found, or NULL), evicting
 * from the tail as needed. */
static void insert(struct rcache *rc, struct rcache_entry *old, const uint8_t *key, uint32_t key_len, uint64_t hash,
		   uint64_t seq, const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t val_len,
		   bool verified)
{
	uint64_t need = record_bytes(key_len, meta_len, val_len);
	if (old)
		entry_drop(rc, old);
	if (need > rc->max_bytes / 8)
		return;
	DV_ASSERT(key_len <= UINT16_MAX && meta_len <= UINT16_MAX && val_len < (1u << 29)); /* the header's fields */
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
	uint64_t *b = &rc->buckets[hash & rc->mask];
	*e = (struct rcache_entry){.chain = *b, .hash_lo = (uint32_t)hash, .seq = seq, .key_len = (uint16_t)key_len,
				   .meta_len = (uint16_t)meta_len, .val_len = val_len, .linked = 1,
				   .verified = verified};
	memcpy(e->data, key, key_len);
	if (meta_len)
		memcpy(e->data + key_len, meta, meta_len);
	if (val_len)
		memcpy(e->data + key_len + meta_len, vals, val_len);
	*b = link_to(e);
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

void rcache_fill(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash, uint64_t gen, uint64_t seq,
		 const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t val_len, bool verified)
{
	if (rc->max_bytes == 0)
		return;
	if (gen != rcache_gen(rc, hash)) {
		rc->stale_fills++; /* a write of a key of the group began since the GET: its copy may be older */
		return;
	}
	if (record_bytes(key_len, meta_len, val_len) > rc->max_bytes / 8)
		return; /* not kept; an entry of the key can only be of the same record (the gen held) */
	struct rcache_entry *old = find(rc, key, key_len, hash);
	if (old && old->seq == seq) { /* the same record */
		old->verified |= verified;
		return;
	}
	insert(rc, old, key, key_len, hash, seq, meta, meta_len, vals, val_len, verified);
}

void rcache_put_done(struct rcache *rc, const uint8_t *key, uint32_t key_len, uint64_t hash, uint64_t seq,
		     const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t val_len)
{
	if (rc->max_bytes == 0)
		return;
	rc->gens[hash & rc->gen_mask]++;
	insert(rc, find(rc, key, key_len, hash), key, key_len, hash, seq, meta, meta_len, vals, val_len, false);
}

void rcache_clear(struct rcache *rc)
{
	if (rc->max_bytes == 0)
		return;
	while (rc->head)
		entry_drop(rc, rc->head);
	rc->epoch++;
}

int rcache_check(const struct rcache *rc)
{
	if (rc->max_bytes == 0)
		return rc->entries == 0 && rc->bytes == 0 ? 0 : -EINVAL;
	uint64_t linked = 0;
	for (uint64_t b = 0; b <= rc->mask; b++)
		for (uint64_t l = rc->buckets[b]; l; l = link_entry(l)->chain) {
			const struct rcache_entry *e = link_entry(l);
			if (!e->linked || (e->hash_lo & rc->mask) != b || l != link_to(e) || ++linked > rc->entries)
				return -EINVAL;
			if (find(rc, e->data, e->key_len, e->hash_lo) != e) /* find uses the low 32 bits alone */
				return -EINVAL; /* missed, or a second entry of its key before it */
		}
	return linked == rc->entries ? 0 : -EINVAL;
}
