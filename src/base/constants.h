/* constants.h - every fixed limit of dynvme in one place.
 *
 * Relations between limits are checked at compile time below. A limit that
 * a user may change lives in a config struct instead and is validated
 * against the hard bounds here.
 */
#ifndef DV_CONSTANTS_H
#define DV_CONSTANTS_H

#include <stdint.h>

/* Block and alignment. Every device I/O is a multiple of the block size and
 * starts on a block boundary (O_DIRECT). */
#define DV_BLOCK_BYTES 4096u
#define DV_RECORD_ALIGN_BYTES 16u

/* Records. */
#define DV_KEY_BYTES_MAX 1024u
#define DV_META_BYTES_MAX 4096u
#define DV_VALUE_BYTES_MAX (1u << 20)

/* Zones. Offsets inside a zone are kept in 16-byte units in 24 bits of an
 * index slot, so a zone holds at most 256 MiB (its capacity: what is
 * written of it); zone ids take 14 bits. On a zoned device a zone may
 * start further apart than it holds (the stride, up to DV_ZONE_STRIDE_MAX):
 * the rest of it is never written. */
#define DV_ZONE_BYTES_MIN (256u * 1024u)
#define DV_ZONE_BYTES_MAX (256u * 1024u * 1024u)
#define DV_ZONE_STRIDE_MAX (16ull << 30)
#define DV_ZONE_COUNT_MAX 16383u
#define DV_ZONE_COUNT_MIN 4u

/* Write path. */
#define DV_BATCH_BYTES_MAX (1u << 20) /* one group-commit write */
#define DV_BATCHES_IN_FLIGHT_MAX 4u
#define DV_OPS_IN_FLIGHT_MAX 65536u /* puts+gets+deletes not yet completed */

/* Location memo (store_config.memo_entries): 32-byte entries. */
#define DV_MEMO_ENTRIES_DEFAULT (1u << 20) /* 32 MiB */
#define DV_MEMO_ENTRIES_MIN (1u << 10)
#define DV_MEMO_ENTRIES_MAX (1u << 28)    /* 8 GiB */

/* Superblock. */
#define DV_SB_COPIES 2u

_Static_assert(DV_BLOCK_BYTES % DV_RECORD_ALIGN_BYTES == 0, "alignment divides block");
_Static_assert(DV_ZONE_BYTES_MAX / DV_RECORD_ALIGN_BYTES <= (1u << 24), "zone offset fits 24 bits");
_Static_assert(DV_ZONE_COUNT_MAX < (1u << 14), "zone id fits 14 bits");
_Static_assert(DV_BATCH_BYTES_MAX % DV_BLOCK_BYTES == 0, "batch is whole blocks");
_Static_assert(DV_BATCH_BYTES_MAX <= DV_ZONE_BYTES_MIN * 4, "a batch fits in a zone");
_Static_assert(DV_VALUE_BYTES_MAX + DV_KEY_BYTES_MAX + DV_META_BYTES_MAX + 64 <= DV_BATCH_BYTES_MAX * 2,
	       "a maximal record fits in a batch buffer");

#endif
