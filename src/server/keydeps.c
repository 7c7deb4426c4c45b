/* keydeps.c - open addressing (linear probing) on the key hash, at most
 * half full; deletion shifts the entries after a freed slot back, so no
 * tombstones accumulate and a lookup stops at the first free slot.
 *
 * Invariants:
 * 1. cap is 0 or a power of two >= KEYDEPS_SLOTS_MIN, and 2 * count <= cap.
 * 2. Every entry in use sits between its home slot (hash & (cap - 1)) and
 *    the first free slot after it, cyclically: no free slot in between.
 * 3. An entry in use counts something (or is about to: keydeps_get()'s
 *    caller counts it before keydeps_put()).
 */
#include "server/keydeps.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

static uint64_t key_of(uint64_t hash) { return hash ? hash : 1; }

void keydeps_init(struct keydeps *t) { *t = (struct keydeps){0}; }

void keydeps_free(struct keydeps *t)
{
	free(t->slots);
	keydeps_init(t);
}

static struct keydep *slot_of(const struct keydeps *t, uint64_t h)
{
	uint32_t mask = t->cap - 1;
	for (uint32_t i = (uint32_t)h & mask, n = 0;; i = (i + 1) & mask, n++) {
		DV_ASSERT(n < t->cap); /* never full: invariant 1 */
		if (t->slots[i].hash == h || t->slots[i].hash == 0)
			return &t->slots[i];
	}
}

int keydeps_reserve(struct keydeps *t, uint32_t more)
{
	uint64_t need = 2ull * ((uint64_t)t->count + more);
	if (need <= t->cap)
		return 0;
	uint64_t cap = t->cap ? t->cap : KEYDEPS_SLOTS_MIN;
	while (cap < need)
		cap *= 2;
	if (cap > (1ull << 31))
		return -ENOMEM;
	struct keydep *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	struct keydeps n = {.slots = slots, .cap = (uint32_t)cap, .count = t->count};
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->slots[i].hash)
			*slot_of(&n, t->slots[i].hash) = t->slots[i];
	free(t->slots);
	*t = n;
	return 0;
}

struct keydep *keydeps_find(const struct keydeps *t, uint64_t hash)
{
	if (t->count == 0)
		return NULL;
	struct keydep *d = slot_of(t, key_of(hash));
	return d->hash ? d : NULL;
}

struct keydep *keydeps_get(struct keydeps *t, uint64_t hash)
{
	DV_ASSERT(2ull * (t->count + 1) <= t->cap); /* keydeps_reserve() first */
	uint64_t h = key_of(hash);
	struct keydep *d = slot_of(t, h);
	if (!d->hash) {
		*d = (struct keydep){.hash = h};
		t->count++;
	}
	return d;
}

/* Is home cyclically in (free, j]? Then the entry at j may not move to free. */
static bool stays(uint32_t free_i, uint32_t j, uint32_t home)
{
	return free_i < j ? free_i < home && home <= j : free_i < home || home <= j;
}

void keydeps_put(struct keydeps *t, struct keydep *d)
{
	DV_ASSERT(d >= t->slots && d < t->slots + t->cap && d->hash);
	if (d->writes || d->rmws || d->parked || d->reads || d->last)
		return;
	uint32_t mask = t->cap - 1, free_i = (uint32_t)(d - t->slots);
	for (uint32_t j = (free_i + 1) & mask, n = 0; t->slots[j].hash; j = (j + 1) & mask, n++) {
		DV_ASSERT(n < t->cap);
		if (!stays(free_i, j, (uint32_t)t->slots[j].hash & mask)) {
			t->slots[free_i] = t->slots[j];
			free_i = j;
		}
	}
	t->slots[free_i] = (struct keydep){0};
	DV_ASSERT(t->count > 0);
	if (--t->count == 0 && t->cap > KEYDEPS_SLOTS_KEEP)
		keydeps_free(t); /* a burst is over: give its memory back */
}

void keydeps_forget_last(struct keydeps *t)
{
	for (uint32_t i = 0; i < t->cap; i++) {
		DV_ASSERT(!t->slots[i].last || t->slots[i].writes > 0); /* a last write is in flight: the entry stays */
		t->slots[i].last = NULL;
	}
}

bool keydeps_any_parked(const struct keydeps *t)
{
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->slots[i].parked)
			return true;
	return false;
}
