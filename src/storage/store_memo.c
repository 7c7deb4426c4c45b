/* store_memo.c - the location memo: index payload -> key identity.
 *
 * The RAM index keeps a 19-bit fingerprint per key, so a fingerprint
 * candidate is normally settled by reading its record. The memo remembers,
 * for records the store wrote (batch apply, GC relocation) or read and
 * verified (candidate reads), the key's full 128-bit hash and what a write
 * needs of the record (size, tombstone, seq, whether it expires), so a
 * write can settle a candidate without a read and a GET can skip other
 * keys' records.
 *
 * A table of 32-byte entries in 4-way buckets (128 bytes), bucket = hash of
 * the payload. A record whose location the index no longer holds (a write
 * replaced it, GC moved or dropped it) is forgotten at once, so live records
 * are rarely displaced; a full bucket gives up the entry with the lowest
 * seq (stale entries of collected zones are old). An entry is trusted only
 * when it holds exactly the payload asked for and the low MEMO_GEN_BITS bits
 * of the zone generation it was made in equal those of the zone's current
 * one. A
 * location is written once per generation (a zone is reset before it is
 * written again, and its generation changes first), so such an entry
 * describes the record at that location. The tag is short; when a zone's
 * generation reaches a multiple of 2^MEMO_GEN_BITS every entry of that zone
 * is cleared (memo_zone_gen_changed), so a tag can never match across a wrap.
 *
 * Entry: hash_lo, hash_hi, loc = payload (44 bits) | gen tag (18) | valid
 * (bit 62) | expires (bit 63), info = seq (47 bits) | size / 16 (17 bits).
 * Records it cannot describe (seq >= 2^47) are not remembered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "store_int.h"

#define MEMO_PL_MASK ((1ull << 44) - 1)
#define MEMO_GEN_SHIFT 44
#define MEMO_GEN_MASK ((1u << MEMO_GEN_BITS) - 1)
#define MEMO_VALID (1ull << 62)
#define MEMO_EXPIRES (1ull << 63)
#define MEMO_SEQ_BITS 47
#define MEMO_SIZE_UNITS_BITS 17

_Static_assert(MEMO_GEN_SHIFT + MEMO_GEN_BITS <= 62, "loc word layout");
_Static_assert(MEMO_SEQ_BITS + MEMO_SIZE_UNITS_BITS == 64, "info word layout");
_Static_assert(STORE_RECORD_BYTES_MAX / DV_RECORD_ALIGN_BYTES < (1u << MEMO_SIZE_UNITS_BITS),
	       "a record's size in 16-byte units fits the info word");
_Static_assert(sizeof(struct memo_entry) == 32, "memo entries are 32 bytes");

#define MEMO_WAYS 4u

static struct memo_entry *memo_bucket(const struct memo *m, uint64_t payload)
{
	return &m->e[((payload * 0x9E3779B97F4A7C15ull) >> m->shift) * MEMO_WAYS];
}

int memo_create(struct memo *m, uint64_t entries)
{
	*m = (struct memo){0};
	if (entries == 0)
		return 0; /* no memo */
	if (entries < DV_MEMO_ENTRIES_MIN)
		entries = DV_MEMO_ENTRIES_MIN;
	if (entries > DV_MEMO_ENTRIES_MAX)
		entries = DV_MEMO_ENTRIES_MAX;
	unsigned bits = 0;
	while ((1ull << bits) < entries)
		bits++;
	/* Anonymous pages: zero, bucket-aligned, and touched only as buckets
	 * fill. */
	size_t bytes = ((size_t)1 << bits) * sizeof(*m->e);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	/* Random probes over tens of MiB: huge pages spare a TLB miss per
	 * probe (about a microsecond under virtualisation). A hint only. */
	(void)madvise(p, bytes, MADV_HUGEPAGE);
	m->e = p;
	m->entries = 1ull << bits;
	m->shift = 64 - (bits - 2); /* 2^bits / MEMO_WAYS buckets */
	return 0;
}

void memo_destroy(struct memo *m)
{
	if (m->e)
		munmap(m->e, m->entries * sizeof(*m->e));
	*m = (struct memo){0};
}

void memo_put(struct memo *m, uint64_t payload, uint32_t gen, uint64_t hash_lo, uint64_t hash_hi,
	      uint64_t seq, uint32_t size, uint64_t expire_ms)
{
	if (!m->e)
		return;
	DV_ASSERT(payload <= MEMO_PL_MASK && size % DV_RECORD_ALIGN_BYTES == 0);
	DV_ASSERT(size / DV_RECORD_ALIGN_BYTES < (1u << MEMO_SIZE_UNITS_BITS));
	if (seq >= (1ull << MEMO_SEQ_BITS))
		return; /* cannot describe it: its candidates are read */
	struct memo_entry *b = memo_bucket(m, payload), *e = NULL;
	/* The same location (a record read again), else a free way, else
	 * the oldest record. */
	for (unsigned w = 0; w < MEMO_WAYS && !e; w++)
		if ((b[w].loc & MEMO_VALID) && (b[w].loc & MEMO_PL_MASK) == payload)
			e = &b[w];
	for (unsigned w = 0; w < MEMO_WAYS && !e; w++)
		if (!(b[w].loc & MEMO_VALID))
			e = &b[w];
	if (!e) {
		e = &b[0];
		for (unsigned w = 1; w < MEMO_WAYS; w++)
			if ((b[w].info & ((1ull << MEMO_SEQ_BITS) - 1)) < (e->info & ((1ull << MEMO_SEQ_BITS) - 1)))
				e = &b[w];
	}
	bool expires = !pl_tomb(payload) && expire_ms != 0;
	e->hash_lo = hash_lo;
	e->hash_hi = hash_hi;
	e->loc = payload | (uint64_t)(gen & MEMO_GEN_MASK) << MEMO_GEN_SHIFT | MEMO_VALID |
		 (expires ? MEMO_EXPIRES : 0);
	e->info = seq | (uint64_t)(size / DV_RECORD_ALIGN_BYTES) << MEMO_SEQ_BITS;
}

bool memo_get(const struct memo *m, uint64_t payload, uint32_t gen, struct memo_hit *out)
{
	if (!m->e)
		return false;
	const struct memo_entry *b = memo_bucket(m, payload), *e = NULL;
	uint64_t want = payload | (uint64_t)(gen & MEMO_GEN_MASK) << MEMO_GEN_SHIFT | MEMO_VALID;
	for (unsigned w = 0; w < MEMO_WAYS && !e; w++)
		if ((b[w].loc & ~MEMO_EXPIRES) == want)
			e = &b[w];
	if (!e)
		return false;
	out->hash_lo = e->hash_lo;
	out->hash_hi = e->hash_hi;
	out->seq = e->info & ((1ull << MEMO_SEQ_BITS) - 1);
	out->size = (uint32_t)(e->info >> MEMO_SEQ_BITS) * DV_RECORD_ALIGN_BYTES;
	out->tomb = pl_tomb(payload);
	out->expires = (e->loc & MEMO_EXPIRES) != 0;
	return true;
}

void memo_forget(struct memo *m, uint64_t payload)
{
	if (!m->e || payload > MEMO_PL_MASK)
		return;
	struct memo_entry *b = memo_bucket(m, payload);
	for (unsigned w = 0; w < MEMO_WAYS; w++)
		if ((b[w].loc & MEMO_VALID) && (b[w].loc & MEMO_PL_MASK) == payload)
			b[w].loc = 0;
}

void memo_zone_gen_changed(struct memo *m, uint32_t zone, uint32_t new_gen)
{
	if (!m->e || (new_gen & MEMO_GEN_MASK) != 0)
		return;
	/* The tag wrapped: entries of older generations of this zone could
	 * match again. Rare (every 2^MEMO_GEN_BITS collections of one zone). */
	for (uint64_t i = 0; i < m->entries; i++)
		if ((m->e[i].loc & MEMO_VALID) && pl_zone(m->e[i].loc & MEMO_PL_MASK) == zone)
			m->e[i].loc = 0;
}

void memo_clear(struct memo *m)
{
	if (!m->e)
		return;
	/* Private anonymous pages read back as zero once dropped: the table
	 * is empty and its RAM returned, without a pass over it. */
	size_t bytes = m->entries * sizeof(*m->e);
	if (madvise(m->e, bytes, MADV_DONTNEED) != 0)
		memset(m->e, 0, bytes);
	DV_ASSERT(!(m->e[0].loc & MEMO_VALID));
}
