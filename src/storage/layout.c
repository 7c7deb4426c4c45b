#include "storage/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "base/le.h"

uint32_t sb_bytes(uint32_t zone_count)
{
	DV_ASSERT(zone_count <= DV_ZONE_COUNT_MAX);
	return DV_ROUND_UP(SB_HDR_BYTES + 16u * zone_count, DV_BLOCK_BYTES);
}

uint64_t sb_fixed_area_bytes(void) { return DV_ROUND_UP(2ull * sb_bytes(DV_ZONE_COUNT_MAX), 1u << 20); }

/* Stride and capacity within bounds: the capacity (what offsets in a zone
 * reach) as DV_ZONE_BYTES_*, the stride up to DV_ZONE_STRIDE_MAX. */
static bool zone_geometry_ok(uint64_t zone_bytes, uint64_t zone_cap)
{
	return zone_cap >= DV_ZONE_BYTES_MIN && zone_cap <= DV_ZONE_BYTES_MAX && zone_cap % DV_BLOCK_BYTES == 0 &&
	       zone_bytes >= zone_cap && zone_bytes <= DV_ZONE_STRIDE_MAX && zone_bytes % DV_BLOCK_BYTES == 0;
}

int sb_plan(struct sb *sb, uint64_t device_bytes, uint64_t zone_bytes, uint64_t zone_cap, uint64_t reserved_front)
{
	if (zone_cap == 0)
		zone_cap = zone_bytes;
	if (!zone_geometry_ok(zone_bytes, zone_cap))
		return -EINVAL;
	uint64_t front = reserved_front ? reserved_front : sb_fixed_area_bytes();
	if (device_bytes < front + DV_ZONE_COUNT_MIN * zone_bytes)
		return -ENOSPC;
	uint64_t zones = (device_bytes - front) / zone_bytes;
	if (zones > DV_ZONE_COUNT_MAX)
		zones = DV_ZONE_COUNT_MAX;
	struct zone_entry *zones_array = sb->zones; /* owned by the caller: kept */
	memset(sb, 0, sizeof(*sb));
	sb->zones = zones_array;
	sb->block_bytes = DV_BLOCK_BYTES;
	sb->zone_bytes = zone_bytes;
	sb->zone_cap = zone_cap;
	sb->zone_count = (uint32_t)zones;
	sb->data_start = front;
	sb->device_bytes = device_bytes;
	DV_ASSERT(2ull * sb_bytes(sb->zone_count) <= sb->data_start);
	return 0;
}

void sb_encode(uint8_t *dst, const struct sb *sb)
{
	uint32_t n = sb_bytes(sb->zone_count);
	memset(dst, 0, n);
	le_put64(dst + 8, SB_MAGIC);
	le_put32(dst + 16, SB_VERSION);
	le_put32(dst + 20, sb->block_bytes);
	le_put64(dst + 24, sb->sb_seq);
	le_put64(dst + 32, sb->zone_bytes);
	le_put32(dst + 40, sb->zone_count);
	/* 0 when the whole zone is written: those superblocks read as before. */
	le_put32(dst + 44, sb->zone_cap == sb->zone_bytes ? 0 : (uint32_t)(sb->zone_cap / DV_BLOCK_BYTES));
	le_put64(dst + 48, sb->data_start);
	le_put64(dst + 56, sb->device_bytes);
	for (uint32_t z = 0; z < sb->zone_count; z++) {
		uint8_t *e = dst + SB_HDR_BYTES + 16u * z;
		DV_ASSERT(sb->zones[z].state <= ZONE_FULL);
		e[0] = sb->zones[z].state;
		le_put32(e + 4, sb->zones[z].gen);
		le_put32(e + 8, sb->zones[z].footer_block);
	}
	le_put64(dst, dv_checksum64(dst + 8, n - 8));
}

static int sb_check_geometry(const struct sb *sb)
{
	if (sb->block_bytes != DV_BLOCK_BYTES || sb->zone_count < DV_ZONE_COUNT_MIN ||
	    sb->zone_count > DV_ZONE_COUNT_MAX || !zone_geometry_ok(sb->zone_bytes, sb->zone_cap))
		return -DV_ECORRUPT;
	if (sb->data_start < 2ull * sb_bytes(sb->zone_count) || sb->data_start > sb->device_bytes ||
	    (uint64_t)sb->zone_count * sb->zone_bytes > sb->device_bytes - sb->data_start)
		return -DV_ECORRUPT;
	return 0;
}

int sb_decode(const uint8_t *src, uint32_t src_bytes, struct sb *sb, uint32_t zones_cap)
{
	if (src_bytes < SB_HDR_BYTES || le_get64(src + 8) != SB_MAGIC)
		return -DV_EFORMAT;
	if (le_get32(src + 16) != SB_VERSION)
		return -DV_EVERSION; /* never formatted over: see load_superblock() */
	struct zone_entry *zones = sb->zones;
	memset(sb, 0, sizeof(*sb));
	sb->zones = zones;
	sb->block_bytes = le_get32(src + 20);
	sb->sb_seq = le_get64(src + 24);
	sb->zone_bytes = le_get64(src + 32);
	sb->zone_count = le_get32(src + 40);
	uint32_t cap_blocks = le_get32(src + 44);
	sb->zone_cap = cap_blocks ? (uint64_t)cap_blocks * DV_BLOCK_BYTES : sb->zone_bytes;
	sb->data_start = le_get64(src + 48);
	sb->device_bytes = le_get64(src + 56);
	if (sb_check_geometry(sb) || sb->zone_count > zones_cap)
		return -DV_ECORRUPT;
	uint32_t n = sb_bytes(sb->zone_count);
	if (n > src_bytes || le_get64(src) != dv_checksum64(src + 8, n - 8))
		return -DV_ECORRUPT;
	for (uint32_t z = 0; z < sb->zone_count; z++) {
		const uint8_t *e = src + SB_HDR_BYTES + 16u * z;
		if (e[0] > ZONE_FULL)
			return -DV_ECORRUPT;
		sb->zones[z].state = e[0];
		sb->zones[z].gen = le_get32(e + 4);
		sb->zones[z].footer_block = le_get32(e + 8);
	}
	return 0;
}

uint32_t zidx_bytes(uint32_t count, uint32_t block_bytes)
{
	return (uint32_t)DV_ROUND_UP((uint64_t)ZIDX_HDR_BYTES + (uint64_t)ZIDX_ENTRY_BYTES * count, block_bytes);
}

/* By hash_lo first: that is the RAM index's hash, so recovery inserts the
 * merged runs in the index's own order (segments, then home slots) and
 * writes its memory front to back instead of at random. */
int zidx_entry_cmp(const struct zidx_entry *a, const struct zidx_entry *b)
{
	if (a->hash.lo != b->hash.lo)
		return a->hash.lo < b->hash.lo ? -1 : 1;
	if (a->hash.hi != b->hash.hi)
		return a->hash.hi < b->hash.hi ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

static int zidx_qsort_cmp(const void *a, const void *b) { return zidx_entry_cmp(a, b); }

/* Insertion sort for short runs (entries of one hash_lo: versions of one
 * key, rarely more than a few). */
static void zidx_insertion_sort(struct zidx_entry *e, uint32_t count)
{
	for (uint32_t i = 1; i < count; i++) {
		struct zidx_entry x = e[i];
		uint32_t j = i;
		for (; j > 0 && zidx_entry_cmp(&x, &e[j - 1]) < 0; j--)
			e[j] = e[j - 1];
		e[j] = x;
	}
}

/* Sealing sorts a zone's entries (up to hundreds of thousands) on the write
 * path: an LSD radix sort on hash_lo (8 passes of 8 bits), then equal
 * hash_lo runs by the full order. Falls back to qsort without memory. */
void zidx_sort(struct zidx_entry *e, uint32_t count)
{
	if (count < 64) {
		zidx_insertion_sort(e, count); /* an empty zone has no array at all */
		return;
	}
	struct zidx_entry *tmp = malloc((size_t)count * sizeof(*tmp));
	if (!tmp) {
		qsort(e, count, sizeof(*e), zidx_qsort_cmp);
		return;
	}
	struct zidx_entry *src = e, *dst = tmp;
	for (unsigned shift = 0; shift < 64; shift += 8) {
		uint32_t pos[257] = {0};
		for (uint32_t i = 0; i < count; i++)
			pos[((src[i].hash.lo >> shift) & 0xff) + 1]++;
		if (pos[((src[0].hash.lo >> shift) & 0xff) + 1] == count)
			continue; /* every entry has the same byte here */
		for (unsigned b = 1; b <= 256; b++)
			pos[b] += pos[b - 1];
		for (uint32_t i = 0; i < count; i++)
			dst[pos[(src[i].hash.lo >> shift) & 0xff]++] = src[i];
		struct zidx_entry *t = src;
		src = dst;
		dst = t;
	}
	if (src != e)
		memcpy(e, src, (size_t)count * sizeof(*e));
	free(tmp);
	for (uint32_t i = 0; i < count;) {
		uint32_t j = i + 1;
		while (j < count && e[j].hash.lo == e[i].hash.lo)
			j++;
		if (j - i > 1)
			zidx_insertion_sort(e + i, j - i);
		i = j;
	}
}

void zidx_encode(uint8_t *dst, const struct zidx_hdr *h, const struct zidx_entry *e)
{
	uint32_t end = ZIDX_HDR_BYTES + ZIDX_ENTRY_BYTES * h->count;
	memset(dst, 0, ZIDX_HDR_BYTES);
	le_put64(dst + 8, ZIDX_MAGIC);
	le_put32(dst + 16, h->zone_gen);
	le_put32(dst + 20, h->count);
	le_put64(dst + 24, h->data_end);
	le_put64(dst + 32, h->max_seq);
	for (uint32_t i = 0; i < h->count; i++) {
		uint8_t *p = dst + ZIDX_HDR_BYTES + ZIDX_ENTRY_BYTES * i;
		DV_ASSERT(i == 0 || zidx_entry_cmp(&e[i - 1], &e[i]) <= 0);
		DV_ASSERT(e[i].hash.hi <= ZIDX_HASH_HI_MASK && e[i].seq <= ZIDX_SEQ_MAX);
		DV_ASSERT(e[i].off_units < (1u << 24) && e[i].size < (1u << 22) && e[i].type < 4);
		le_put64(p, e[i].hash.lo);
		le_put32(p + 8, (uint32_t)e[i].hash.hi);
		le_put48(p + 12, e[i].seq);
		le_put24(p + 18, e[i].off_units);
		le_put24(p + 21, e[i].size | (uint32_t)e[i].type << 22);
	}
	le_put64(dst, dv_checksum64(dst + 8, end - 8));
}

int zidx_decode_hdr(const uint8_t *src, uint32_t avail, struct zidx_hdr *h)
{
	if (avail < ZIDX_HDR_BYTES || le_get64(src + 8) != ZIDX_MAGIC)
		return -DV_ECORRUPT;
	h->zone_gen = le_get32(src + 16);
	h->count = le_get32(src + 20);
	h->data_end = le_get64(src + 24);
	h->max_seq = le_get64(src + 32);
	if (h->data_end > DV_ZONE_BYTES_MAX || h->count > DV_ZONE_BYTES_MAX / REC_MIN_BYTES_FOR_ZIDX)
		return -DV_ECORRUPT;
	return 0;
}

int zidx_decode(const uint8_t *src, uint32_t avail, struct zidx_hdr *h, struct zidx_entry *e, uint32_t cap)
{
	int err = zidx_decode_hdr(src, avail, h);
	if (err)
		return err;
	if (h->count > cap)
		return -DV_ECORRUPT; /* not the index the caller sized e for */
	uint64_t end = ZIDX_HDR_BYTES + (uint64_t)ZIDX_ENTRY_BYTES * h->count;
	if (end > avail || le_get64(src) != dv_checksum64(src + 8, end - 8))
		return -DV_ECORRUPT;
	for (uint32_t i = 0; i < h->count; i++) {
		const uint8_t *p = src + ZIDX_HDR_BYTES + ZIDX_ENTRY_BYTES * i;
		uint32_t st = le_get24(p + 21);
		e[i].hash.lo = le_get64(p);
		e[i].hash.hi = le_get32(p + 8);
		e[i].seq = le_get48(p + 12);
		e[i].off_units = le_get24(p + 18);
		e[i].size = st & ((1u << 22) - 1);
		e[i].type = (uint8_t)(st >> 22);
		if (i > 0 && zidx_entry_cmp(&e[i - 1], &e[i]) > 0)
			return -DV_ECORRUPT;
		if ((uint64_t)e[i].off_units * DV_RECORD_ALIGN_BYTES + e[i].size > h->data_end)
			return -DV_ECORRUPT;
		/* Untrusted sizes and types: callers size reads from them. */
		if (e[i].size < ZIDX_REC_BYTES_MIN || e[i].size > ZIDX_REC_BYTES_MAX ||
		    e[i].size % DV_RECORD_ALIGN_BYTES || (e[i].type != 1 && e[i].type != 2))
			return -DV_ECORRUPT;
	}
	return 0;
}
