/* record.h - the on-disk record: encode, validate, decode.
 *
 * Byte layout (little-endian), 16-byte aligned, REC_HDR_BYTES header:
 *   0  u64 checksum  XXH3-64 of bytes [8, 40 + key + meta + value)
 *   8  u16 magic     REC_MAGIC
 *  10  u8  type      REC_PUT, REC_TOMBSTONE, REC_PAD
 *  11  u8  flags     0 (reserved)
 *  12  u32 zone_gen  generation of the zone the record was written in
 *  16  u64 seq       store-wide sequence number; the highest wins
 *  24  u64 expire_ms absolute unix time in ms after which it reads as absent; 0 = never
 *  32  u16 key_len   1..DV_KEY_BYTES_MAX (0 for PAD)
 *  34  u16 meta_len  version metadata (causal context), 0..DV_META_BYTES_MAX
 *  36  u32 val_len   0..DV_VALUE_BYTES_MAX (PAD: padding bytes after the header)
 *  40  key, meta, value, then zero padding to a 16-byte multiple
 * Rules shared by writer and scanner: when the bytes left in a block are
 * fewer than REC_HDR_BYTES no record starts there (the scanner skips to the
 * next block); otherwise the writer fills unused space with a PAD record.
 * Writer placement (store_write.c): records of at most one block are packed
 * and may cross one block boundary; larger ones start on a block boundary.
 */
#ifndef DV_RECORD_H
#define DV_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REC_HDR_BYTES 40u
#define REC_MAGIC 0xD5E1u

enum rec_type { REC_PUT = 1, REC_TOMBSTONE = 2, REC_PAD = 3 };

struct rec_view {
	enum rec_type type;
	uint32_t zone_gen;
	uint64_t seq;
	uint64_t expire_ms;
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *meta;
	uint32_t meta_len;
	const uint8_t *value;
	uint32_t val_len;
	uint32_t total_bytes; /* aligned size on disk */
};

/* Aligned on-disk size of a record with these lengths. */
uint32_t rec_size(uint32_t key_len, uint32_t meta_len, uint32_t val_len);
/* Check lengths against the limits: 0 or -DV_ETOOBIG / -EINVAL. */
int rec_check_lengths(enum rec_type type, uint32_t key_len, uint32_t meta_len, uint32_t val_len);

/* Write a record at dst (rec_size() bytes available); returns its size. */
uint32_t rec_encode(uint8_t *dst, const struct rec_view *r);
/* Write a PAD record filling exactly bytes (>= REC_HDR_BYTES, 16-aligned). */
void rec_encode_pad(uint8_t *dst, uint32_t bytes, uint32_t zone_gen);
/* Rewrite zone_gen (relocation) and the checksum of an encoded record. */
void rec_set_zone_gen(uint8_t *rec, uint32_t zone_gen);

/* Parse and verify the record at src with avail bytes readable. Returns 0,
 * -EAGAIN when the header says more bytes are needed than avail (total in
 * *need), or -DV_ECORRUPT when it is not a valid record. */
int rec_decode(const uint8_t *src, uint32_t avail, struct rec_view *out, uint32_t *need);

/* The key a record at src claims, without verifying it: 0 with *key and
 * *key_len when its key length is plausible and the key lies within avail
 * bytes, else -DV_ECORRUPT. For a record that fails its checksum only: the
 * damage may lie elsewhere, and the key still say whose record it was. */
int rec_peek_key(const uint8_t *src, uint32_t avail, const uint8_t **key, uint32_t *key_len);

/* Where the next record may start after offset off within a zone. */
static inline uint64_t rec_next_start(uint64_t off, uint32_t block_bytes)
{
	uint64_t left = block_bytes - off % block_bytes;
	return left < REC_HDR_BYTES ? off + left : off;
}

#endif
