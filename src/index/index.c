/* index.c - segmented lock-free hash index (see index.h for the contract).
 *
 * Slot word (64 bits):
 *   bit 63      FROZEN: the slot is being copied to the next table; the
 *               entry still counts and readers use it
 *   bits 62..44 fingerprint (19 bits, never 0)
 *   bits 43..0  payload
 * Special words (fingerprint field 0): EMPTY = 0, DELETED = 1, MOVED = 2.
 *
 * Home slot of an entry = top log2(size) bits of its fingerprint, so a
 * table can be rebuilt from its slots alone. Deleted slots are never
 * reused: they count as used, and a rebuild at 3/4 use drops them.
 */
#include "index/index.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define SEG_BITS 12u
#define SEG_COUNT (1u << SEG_BITS)
#define FP_BITS 19u
#define FP_MASK ((1ull << FP_BITS) - 1)
#define TABLE_BITS_MIN 4u
#define TABLE_BITS_MAX FP_BITS

#define SLOT_EMPTY 0ull
#define SLOT_DELETED 1ull
#define SLOT_MOVED 2ull
#define SLOT_FROZEN (1ull << 63)

_Static_assert(FP_BITS + INDEX_PAYLOAD_BITS + 1 == 64, "slot layout fills 64 bits");

struct table {
	uint32_t bits;               /* log2 of the slot count */
	_Atomic uint32_t used;       /* entries + deleted slots */
	_Atomic uint32_t live;       /* entries */
	_Atomic(struct table *) next; /* set once a rebuild starts */
	struct table *retired_next;
	_Atomic uint64_t slots[];
};

struct segment {
	_Atomic(struct table *) cur;
	_Atomic(struct table *) retired; /* replaced tables awaiting free */
	_Atomic uint32_t active;         /* operations inside the segment */
	char pad[64 - 2 * sizeof(void *) - sizeof(uint32_t)];
};

struct index {
	struct segment seg[SEG_COUNT];
	_Atomic uint64_t table_bytes;
};

/* --- slot words ---------------------------------------------------------- */

static uint32_t hash_segment(uint64_t hash) { return (uint32_t)(hash >> (64 - SEG_BITS)); }

static uint64_t hash_fp(uint64_t hash)
{
	uint64_t fp = (hash >> (64 - SEG_BITS - FP_BITS)) & FP_MASK;
	return fp ? fp : 1; /* 0 marks special words */
}

static uint64_t slot_make(uint64_t fp, uint64_t payload)
{
	DV_ASSERT(payload <= INDEX_PAYLOAD_MASK);
	return fp << INDEX_PAYLOAD_BITS | payload;
}

static uint64_t slot_fp(uint64_t w) { return (w >> INDEX_PAYLOAD_BITS) & FP_MASK; }
static uint64_t slot_payload(uint64_t w) { return w & INDEX_PAYLOAD_MASK; }
static bool slot_is_entry(uint64_t w) { return slot_fp(w) != 0; }
static bool slot_is_frozen(uint64_t w) { return (w & SLOT_FROZEN) != 0; }

static uint32_t table_size(const struct table *t) { return 1u << t->bits; }
static uint32_t table_home(const struct table *t, uint64_t fp)
{
	return (uint32_t)(fp >> (FP_BITS - t->bits));
}

/* --- tables -------------------------------------------------------------- */

static struct table *table_new(struct index *idx, uint32_t bits)
{
	DV_ASSERT(bits >= TABLE_BITS_MIN && bits <= TABLE_BITS_MAX);
	size_t bytes = sizeof(struct table) + sizeof(uint64_t) * ((size_t)1 << bits);
	struct table *t = calloc(1, bytes);
	if (!t)
		return NULL;
	t->bits = bits;
	atomic_fetch_add(&idx->table_bytes, bytes);
	return t;
}

static void table_free(struct index *idx, struct table *t)
{
	atomic_fetch_sub(&idx->table_bytes,
			 sizeof(struct table) + sizeof(uint64_t) * (size_t)table_size(t));
	free(t);
}

static uint32_t bits_for(uint64_t entries)
{
	uint32_t bits = TABLE_BITS_MIN;
	/* Room for entries at 3/8 load after a rebuild, so growth is rare. */
	while (bits < TABLE_BITS_MAX && ((uint64_t)3 << bits) / 8 < entries)
		bits++;
	return bits;
}

/* --- segment entry and exit (reclamation of replaced tables) -------------- */

static struct table *seg_enter(struct segment *sg)
{
	atomic_fetch_add(&sg->active, 1);
	return atomic_load(&sg->cur);
}

static void seg_exit(struct index *idx, struct segment *sg)
{
	if (atomic_fetch_sub(&sg->active, 1) != 1 || !atomic_load(&sg->retired))
		return;
	/* Nobody was inside after the retired tables left sg->cur: any newcomer
	 * loads the current table, so the retired ones are unreachable. */
	struct table *t = atomic_exchange(&sg->retired, NULL);
	if (t && atomic_load(&sg->active) != 0) {
		/* Someone entered meanwhile and may hold a table retired after
		 * our exit: hand the list back for a later exit to free. */
		struct table *tail = t;
		while (tail->retired_next)
			tail = tail->retired_next;
		struct table *head = atomic_load(&sg->retired);
		do
			tail->retired_next = head;
		while (!atomic_compare_exchange_weak(&sg->retired, &head, t));
		return;
	}
	while (t) {
		struct table *n = t->retired_next;
		table_free(idx, t);
		t = n;
	}
}

static void seg_retire(struct segment *sg, struct table *t)
{
	struct table *head = atomic_load(&sg->retired);
	do
		t->retired_next = head;
	while (!atomic_compare_exchange_weak(&sg->retired, &head, t));
}

/* --- rebuild (copy to the next table) -------------------------------------- */

/* Put w into t unless an identical word is already there: helpers copying
 * the same frozen slot at once must not duplicate it. */
static void table_copy_in(struct table *t, uint64_t w)
{
	uint32_t mask = table_size(t) - 1;
	uint32_t i = table_home(t, slot_fp(w));
	for (uint32_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
		uint64_t cur = atomic_load(&t->slots[i]);
		while (cur == SLOT_EMPTY) {
			if (atomic_compare_exchange_strong(&t->slots[i], &cur, w)) {
				atomic_fetch_add(&t->used, 1);
				atomic_fetch_add(&t->live, 1);
				return;
			}
		}
		if ((cur & ~SLOT_FROZEN) == w)
			return;
	}
	DV_ASSERT(!"index rebuild target full"); /* sized for all live entries */
}

static void copy_slot(struct table *from, struct table *to, uint32_t i)
{
	uint64_t w = atomic_load(&from->slots[i]);
	for (;;) {
		if (w == SLOT_MOVED)
			return;
		if (w == SLOT_EMPTY || w == SLOT_DELETED) {
			if (atomic_compare_exchange_strong(&from->slots[i], &w, SLOT_MOVED))
				return;
			continue;
		}
		if (!slot_is_frozen(w)) {
			if (!atomic_compare_exchange_strong(&from->slots[i], &w, w | SLOT_FROZEN))
				continue;
			w |= SLOT_FROZEN;
		}
		/* Frozen: nobody can change it any more; copy, then mark moved. */
		table_copy_in(to, w & ~SLOT_FROZEN);
		atomic_compare_exchange_strong(&from->slots[i], &w, SLOT_MOVED);
		return;
	}
}

/* Copy every slot of t to its successor and make the successor current.
 * Only the thread that started the rebuild copies (a second copier could
 * bring back a word after the new table changed); writers of the segment
 * wait for it, readers never do. */
static void rebuild_copy(struct segment *sg, struct table *t)
{
	struct table *to = atomic_load(&t->next);
	DV_ASSERT(to);
	for (uint32_t i = 0; i < table_size(t); i++)
		copy_slot(t, to, i);
	struct table *expected = t;
	bool ok = atomic_compare_exchange_strong(&sg->cur, &expected, to);
	DV_ASSERT(ok); /* only the copier publishes */
	seg_retire(sg, t);
}

static void rebuild_wait(struct segment *sg, struct table *t)
{
	for (uint64_t spins = 0; atomic_load(&sg->cur) == t; spins++)
		if (spins > 64)
			sched_yield();
}

/* Start a rebuild of t sized for its live entries: 1 when this thread
 * won and must copy, 0 when another thread is rebuilding, or -ENOMEM. */
static int start_rebuild(struct index *idx, struct table *t)
{
	if (atomic_load(&t->next))
		return 0;
	uint32_t bits = bits_for(atomic_load(&t->live));
	if (bits < t->bits)
		bits = t->bits; /* never shrink: deletes are rare here */
	if (((uint64_t)atomic_load(&t->live) + 1) * 4 > ((uint64_t)3 << bits))
		return -ENOMEM; /* the segment is at its largest size */
	struct table *to = table_new(idx, bits);
	if (!to)
		return -ENOMEM;
	struct table *expected = NULL;
	if (!atomic_compare_exchange_strong(&t->next, &expected, to)) {
		table_free(idx, to);
		return 0;
	}
	return 1;
}

/* --- operations ------------------------------------------------------------ */

int index_create(struct index **out, uint64_t capacity_hint)
{
	struct index *idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	/* Sized for the hint at 3/4 load with room for the spread between
	 * segments (the first rebuild comes at 3/4): ~11 bytes a key. */
	uint64_t per_seg = capacity_hint / SEG_COUNT + 1;
	uint32_t bits = TABLE_BITS_MIN;
	while (bits < TABLE_BITS_MAX && (((uint64_t)1 << bits) * 7) / 10 < per_seg)
		bits++;
	for (uint32_t s = 0; s < SEG_COUNT; s++) {
		struct table *t = table_new(idx, bits);
		if (!t) {
			index_destroy(idx);
			return -ENOMEM;
		}
		atomic_store(&idx->seg[s].cur, t);
	}
	*out = idx;
	return 0;
}

void index_destroy(struct index *idx)
{
	if (!idx)
		return;
	for (uint32_t s = 0; s < SEG_COUNT; s++) {
		struct segment *sg = &idx->seg[s];
		struct table *t = atomic_load(&sg->cur);
		while (t) {
			struct table *n = atomic_load(&t->next);
			table_free(idx, t);
			t = n;
		}
		t = atomic_load(&sg->retired);
		while (t) {
			struct table *n = t->retired_next;
			table_free(idx, t);
			t = n;
		}
	}
	free(idx);
}

static unsigned add_unique(uint64_t *out, unsigned n, unsigned max, uint64_t p)
{
	for (unsigned i = 0; i < n; i++)
		if (out[i] == p)
			return n;
	if (n < max)
		out[n++] = p;
	return n;
}

static unsigned table_lookup(struct table *t, uint64_t fp, uint64_t *out, unsigned n, unsigned max)
{
	uint32_t mask = table_size(t) - 1;
	uint32_t i = table_home(t, fp);
	bool moved = false;
	for (uint32_t k = 0; k <= mask && n < max; k++, i = (i + 1) & mask) {
		uint64_t w = atomic_load(&t->slots[i]);
		if (w == SLOT_EMPTY)
			break;
		if (w == SLOT_MOVED)
			moved = true;
		else if (slot_is_entry(w) && slot_fp(w) == fp)
			n = add_unique(out, n, max, slot_payload(w));
	}
	/* A moved slot may have held one of ours: look in the next table too. */
	if (moved && n < max)
		n = table_lookup(atomic_load(&t->next), fp, out, n, max);
	return n;
}

void index_prefetch(struct index *idx, uint64_t hash)
{
	struct segment *sg = &idx->seg[hash_segment(hash)];
	struct table *t = seg_enter(sg);
	__builtin_prefetch(&t->slots[table_home(t, hash_fp(hash))], 0, 3);
	seg_exit(idx, sg);
}

unsigned index_lookup(struct index *idx, uint64_t hash, uint64_t *payloads, unsigned max)
{
	struct segment *sg = &idx->seg[hash_segment(hash)];
	struct table *t = seg_enter(sg);
	unsigned n = table_lookup(t, hash_fp(hash), payloads, 0, max);
	seg_exit(idx, sg);
	return n;
}

static bool table_contains(struct table *t, uint64_t w_want)
{
	uint32_t mask = table_size(t) - 1;
	uint32_t i = table_home(t, slot_fp(w_want));
	bool moved = false;
	for (uint32_t k = 0; k <= mask; k++, i = (i + 1) & mask) {
		uint64_t w = atomic_load(&t->slots[i]);
		if (w == SLOT_EMPTY)
			break;
		if (w == SLOT_MOVED)
			moved = true;
		else if ((w & ~SLOT_FROZEN) == w_want)
			return true;
	}
	return moved && table_contains(atomic_load(&t->next), w_want);
}

bool index_contains(struct index *idx, uint64_t hash, uint64_t payload)
{
	struct segment *sg = &idx->seg[hash_segment(hash)];
	struct table *t = seg_enter(sg);
	bool found = table_contains(t, slot_make(hash_fp(hash), payload));
	seg_exit(idx, sg);
	return found;
}

enum { OP_INSERT, OP_REPLACE, OP_REMOVE };
enum { TRY_DONE, TRY_NOTFOUND, TRY_REBUILD, TRY_GROW };

/* One attempt of a write on table t. TRY_REBUILD: t is being rebuilt;
 * help and retry on the next one. TRY_GROW: t is too full for an insert. */
static int table_write(struct table *t, int op, uint64_t fp, uint64_t old_w, uint64_t new_w)
{
	if (atomic_load(&t->next))
		return TRY_REBUILD;
	uint32_t mask = table_size(t) - 1;
	if (op == OP_INSERT && (atomic_load(&t->used) + 1) * 4u > table_size(t) * 3u)
		return TRY_GROW;
	uint32_t i = table_home(t, fp);
	for (uint32_t k = 0; k <= mask; k++, i = (i + 1) & mask) {
		uint64_t w = atomic_load(&t->slots[i]);
		for (;;) {
			if (w == SLOT_MOVED || slot_is_frozen(w))
				return TRY_REBUILD;
			if (op == OP_INSERT && w == SLOT_EMPTY) {
				if (atomic_compare_exchange_strong(&t->slots[i], &w, new_w)) {
					atomic_fetch_add(&t->used, 1);
					atomic_fetch_add(&t->live, 1);
					return TRY_DONE;
				}
				continue; /* w reloaded: look at this slot again */
			}
			if (op != OP_INSERT && w == old_w) {
				if (atomic_compare_exchange_strong(&t->slots[i], &w, new_w)) {
					if (op == OP_REMOVE)
						atomic_fetch_sub(&t->live, 1);
					return TRY_DONE;
				}
				continue;
			}
			break;
		}
		if (w == SLOT_EMPTY)
			return op == OP_INSERT ? TRY_GROW : TRY_NOTFOUND;
	}
	return op == OP_INSERT ? TRY_GROW : TRY_NOTFOUND;
}

static int index_write(struct index *idx, uint64_t hash, int op, uint64_t old_p, uint64_t new_p)
{
	uint64_t fp = hash_fp(hash);
	uint64_t old_w = op == OP_INSERT ? 0 : slot_make(fp, old_p);
	uint64_t new_w = op == OP_REMOVE ? SLOT_DELETED : slot_make(fp, new_p);
	struct segment *sg = &idx->seg[hash_segment(hash)];
	struct table *t = seg_enter(sg);
	int err = 0;
	for (;;) {
		int r = table_write(t, op, fp, old_w, new_w);
		if (r == TRY_DONE || r == TRY_NOTFOUND) {
			err = r == TRY_DONE ? 0 : -ENOENT;
			break;
		}
		int won = r == TRY_GROW ? start_rebuild(idx, t) : 0;
		if (won < 0) {
			err = won;
			break;
		}
		if (won)
			rebuild_copy(sg, t);
		else
			rebuild_wait(sg, t);
		t = atomic_load(&sg->cur);
	}
	seg_exit(idx, sg);
	return err;
}

int index_insert(struct index *idx, uint64_t hash, uint64_t payload)
{
	return index_write(idx, hash, OP_INSERT, 0, payload);
}

int index_load(struct index *idx, uint64_t hash, uint64_t payload)
{
	uint64_t fp = hash_fp(hash);
	struct segment *sg = &idx->seg[hash_segment(hash)];
	struct table *t = atomic_load_explicit(&sg->cur, memory_order_relaxed);
	uint32_t used = atomic_load_explicit(&t->used, memory_order_relaxed);
	if (atomic_load_explicit(&t->next, memory_order_relaxed) || (used + 1) * 4u > table_size(t) * 3u)
		return index_insert(idx, hash, payload); /* grows the segment */
	uint32_t mask = table_size(t) - 1;
	uint32_t i = table_home(t, fp);
	for (uint32_t k = 0; k <= mask; k++, i = (i + 1) & mask) {
		if (atomic_load_explicit(&t->slots[i], memory_order_relaxed) != SLOT_EMPTY)
			continue;
		atomic_store_explicit(&t->slots[i], slot_make(fp, payload), memory_order_relaxed);
		atomic_store_explicit(&t->used, used + 1, memory_order_relaxed);
		atomic_store_explicit(&t->live, atomic_load_explicit(&t->live, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		return 0;
	}
	DV_ASSERT(!"index segment full below 3/4 load");
	return -ENOMEM;
}

int index_replace(struct index *idx, uint64_t hash, uint64_t old_payload, uint64_t new_payload)
{
	return index_write(idx, hash, OP_REPLACE, old_payload, new_payload);
}

int index_remove(struct index *idx, uint64_t hash, uint64_t payload)
{
	return index_write(idx, hash, OP_REMOVE, payload, 0);
}

/* Walk one table; entries in moved slots are visited in the next table.
 * The prefix of an entry is its segment and fingerprint: the top 31 bits
 * of its hash. */
static bool table_walk(struct table *t, uint64_t seg_prefix, uint64_t lo, uint64_t hi,
		       index_visit_fn fn, void *arg)
{
	bool moved = false;
	for (uint32_t i = 0; i < table_size(t); i++) {
		uint64_t w = atomic_load(&t->slots[i]);
		if (w == SLOT_MOVED)
			moved = true;
		if (!slot_is_entry(w))
			continue;
		uint64_t prefix = seg_prefix | slot_fp(w);
		if (prefix < lo || prefix > hi)
			continue;
		if (!fn(arg, slot_payload(w)))
			return false;
	}
	/* Entries copied before we passed their slot show up twice at most;
	 * the caller tolerates duplicates (it re-checks each location). */
	if (moved)
		return table_walk(atomic_load(&t->next), seg_prefix, lo, hi, fn, arg);
	return true;
}

/* The stored prefix of a hash: segment and fingerprint (0 stored as 1). */
static uint64_t hash_prefix(uint64_t hash)
{
	return (uint64_t)hash_segment(hash) << FP_BITS | hash_fp(hash);
}

void index_walk(struct index *idx, uint64_t hash_lo, uint64_t hash_hi, index_visit_fn fn, void *arg)
{
	if (hash_lo > hash_hi)
		return;
	for (uint32_t s = hash_segment(hash_lo); s <= hash_segment(hash_hi); s++) {
		struct segment *sg = &idx->seg[s];
		uint64_t seg_prefix = (uint64_t)s << FP_BITS;
		uint64_t lo = s == hash_segment(hash_lo) ? hash_prefix(hash_lo) : seg_prefix;
		uint64_t hi = s == hash_segment(hash_hi) ? hash_prefix(hash_hi) : seg_prefix | FP_MASK;
		struct table *t = seg_enter(sg);
		bool go = table_walk(t, seg_prefix, lo, hi, fn, arg);
		seg_exit(idx, sg);
		if (!go)
			return;
	}
}

uint64_t index_count(const struct index *idx)
{
	uint64_t n = 0;
	for (uint32_t s = 0; s < SEG_COUNT; s++) {
		struct index *m = (struct index *)idx; /* atomics need non-const */
		struct segment *sg = &m->seg[s];
		struct table *t = seg_enter(sg);
		/* While a rebuild runs the old table's count is still exact:
		 * writers wait for the copy to finish before they write. */
		n += atomic_load(&t->live);
		seg_exit(m, sg);
	}
	return n;
}

uint64_t index_bytes(const struct index *idx)
{
	return atomic_load(&((struct index *)idx)->table_bytes) + sizeof(*idx);
}
