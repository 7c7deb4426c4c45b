/* layout.h - superblock, zone table and zone index (footer): byte layouts,
 * encode and verify. Pure functions; no I/O here.
 *
 * Device map (emulated zones):
 *   [sb copy 0 | sb copy 1 | zone 0 | zone 1 | ... ]  data_start = 2 * sb_bytes
 * rounded up to 1 MiB. On a zoned device whose leading conventional zones
 * hold 2 * sb_bytes(DV_ZONE_COUNT_MAX), the superblock copies live there
 * and zone 0 is the first sequential zone. Without them (NVMe ZNS), the
 * first two sequential zones hold the superblock as a log (store_sb.c)
 * and zone 0 is the third:
 *   [conventional zones, unused | sb log zone 0 | sb log zone 1 | zone 0 | ...]
 * A zone starts every zone_bytes (the stride) and holds zone_cap bytes
 * (the capacity: on a ZNS device what can be written before the next zone
 * starts; equal to zone_bytes everywhere else).
 *
 * Superblock copy (sb_bytes = roundup(64 + 16 * zone_count, 4096)):
 *   0 u64 checksum  XXH3-64 of [8, sb_bytes)
 *   8 u64 magic     SB_MAGIC
 *  16 u32 version   SB_VERSION
 *  20 u32 block_bytes
 *  24 u64 sb_seq    incremented on every write; the valid copy with the
 *                   highest sb_seq is current; writes alternate copies
 *  32 u64 zone_bytes      the stride: zone z starts at data_start + z * zone_bytes
 *  40 u32 zone_count
 *  44 u32 zone_cap_blocks  4 KiB blocks each zone holds; 0 = zone_bytes (every
 *                   device with capacity = stride, all formatted before)
 *  48 u64 data_start
 *  56 u64 device_bytes
 *  64 zone entries, 16 bytes each:
 *      0 u8 state (ZONE_EMPTY/OPEN/FULL)  1 u8 0  2 u16 0
 *      4 u32 gen        bumped on every reset; records carry it
 *      8 u32 footer_block  (FULL) block offset of the zone index in the zone
 *     12 u32 reserved 0
 *
 * Zone index (footer) at footer_block of a FULL zone, zidx_bytes(count) long:
 *   0 u64 checksum  XXH3-64 of [8, 64 + 24 * count)
 *   8 u64 magic     ZIDX_MAGIC
 *  16 u32 zone_gen
 *  20 u32 count
 *  24 u64 data_end  bytes of records from the zone start
 *  32 u64 max_seq
 *  40 24 bytes 0
 *  64 entries sorted by (hash_lo, hash_hi, seq), 24 bytes each:
 *      0 u64 hash_lo   XXH3-128 of the key, low half
 *      8 u32 hash_hi   low 32 bits of the high half (key identity: 96 bits)
 *     12 u48 seq
 *     18 u24 off_units record offset in the zone / 16
 *     21 u24 size_type record bytes (22 bits) | type << 22
 */
#ifndef DV_LAYOUT_H
#define DV_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/hash.h"

/* Smallest record (header + 1-byte key, aligned): bounds a zone's count. */
#define REC_MIN_BYTES_FOR_ZIDX 48u

#define SB_MAGIC 0x31454d564e5944ull /* "DYNVME1" */
#define SB_VERSION 3u /* 2: zone index sorted by hash_lo first; 3: 24-byte entries */
#define SB_HDR_BYTES 64u
#define ZIDX_MAGIC 0x58444e49454e4f5aull /* "ZONEINDX" */
#define ZIDX_HDR_BYTES 64u
#define ZIDX_ENTRY_BYTES 24u
#define ZIDX_HASH_HI_MASK 0xffffffffull /* the part of hash.hi a zone index keeps */
#define ZIDX_SEQ_MAX ((1ull << 48) - 1)
/* Bounds of a record's size in an entry (header + 1-byte key; largest). */
#define ZIDX_REC_BYTES_MIN 48u
#define ZIDX_REC_BYTES_MAX (DV_ROUND_UP(40u + DV_KEY_BYTES_MAX + DV_META_BYTES_MAX + DV_VALUE_BYTES_MAX, 16u))

enum zone_state { ZONE_EMPTY = 0, ZONE_OPEN = 1, ZONE_FULL = 2 };

/* footer_block of a FULL zone sealed without a zone index (on a zoned
 * device, torn bytes past the data took the room): recovery scans it. */
#define ZONE_NO_INDEX UINT32_MAX

struct zone_entry {
	uint8_t state;
	uint32_t gen;
	uint32_t footer_block;
};

struct sb {
	uint32_t block_bytes;
	uint64_t sb_seq;
	uint64_t zone_bytes; /* stride */
	uint64_t zone_cap;   /* bytes written of each zone, <= zone_bytes */
	uint32_t zone_count;
	uint64_t data_start;
	uint64_t device_bytes;
	struct zone_entry *zones; /* zone_count entries, owned by the caller */
};

struct zidx_entry {
	struct dv_hash128 hash; /* hash.hi masked with ZIDX_HASH_HI_MASK */
	uint64_t seq;
	uint32_t off_units;
	uint32_t size;
	uint8_t type;
};

struct zidx_hdr {
	uint32_t zone_gen;
	uint32_t count;
	uint64_t data_end;
	uint64_t max_seq;
};

uint32_t sb_bytes(uint32_t zone_count);
/* Where the fixed superblock copies live: both copies, rounded up to 1 MiB
 * (the data start of a device without conventional zones of its own). */
uint64_t sb_fixed_area_bytes(void);
/* Geometry for a device of device_bytes with zones every zone_bytes that
 * hold zone_cap bytes (0 = zone_bytes); reserved_front: data_start (0 =
 * room for two superblock copies, rounded up to 1 MiB). */
int sb_plan(struct sb *sb, uint64_t device_bytes, uint64_t zone_bytes, uint64_t zone_cap, uint64_t reserved_front);
void sb_encode(uint8_t *dst, const struct sb *sb);
/* Verify and decode one copy; sb->zones must hold room for zones_cap. */
int sb_decode(const uint8_t *src, uint32_t src_bytes, struct sb *sb, uint32_t zones_cap);

uint32_t zidx_bytes(uint32_t count, uint32_t block_bytes);
int zidx_entry_cmp(const struct zidx_entry *a, const struct zidx_entry *b);
void zidx_sort(struct zidx_entry *e, uint32_t count);
void zidx_encode(uint8_t *dst, const struct zidx_hdr *h, const struct zidx_entry *e);
/* Verify the header and checksum; entries decoded into e (count entries). */
int zidx_decode_hdr(const uint8_t *src, uint32_t avail, struct zidx_hdr *h);
/* e has room for cap entries: an index counting more is -DV_ECORRUPT, and
 * nothing is written to e (the count is checked before any entry). */
int zidx_decode(const uint8_t *src, uint32_t avail, struct zidx_hdr *h, struct zidx_entry *e, uint32_t cap);

#endif
