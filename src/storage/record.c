#include "storage/record.h"

#include <errno.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/le.h"

uint32_t rec_size(uint32_t key_len, uint32_t meta_len, uint32_t val_len)
{
	uint64_t raw = (uint64_t)REC_HDR_BYTES + key_len + meta_len + val_len;
	DV_ASSERT(raw < UINT32_MAX - DV_RECORD_ALIGN_BYTES);
	return (uint32_t)DV_ROUND_UP(raw, DV_RECORD_ALIGN_BYTES);
}

int rec_check_lengths(enum rec_type type, uint32_t key_len, uint32_t meta_len, uint32_t val_len)
{
	if (type != REC_PUT && type != REC_TOMBSTONE)
		return -EINVAL;
	if (key_len == 0)
		return -EINVAL;
	if (key_len > DV_KEY_BYTES_MAX || meta_len > DV_META_BYTES_MAX || val_len > DV_VALUE_BYTES_MAX)
		return -DV_ETOOBIG;
	if (type == REC_TOMBSTONE && val_len != 0)
		return -EINVAL;
	return 0;
}

static void seal_checksum(uint8_t *dst, uint32_t payload_end)
{
	le_put64(dst, dv_checksum64(dst + 8, payload_end - 8));
}

uint32_t rec_encode(uint8_t *dst, const struct rec_view *r)
{
	DV_ASSERT(rec_check_lengths(r->type, r->key_len, r->meta_len, r->val_len) == 0);
	uint32_t size = rec_size(r->key_len, r->meta_len, r->val_len);
	uint32_t end = REC_HDR_BYTES + r->key_len + r->meta_len + r->val_len;
	le_put16(dst + 8, REC_MAGIC);
	dst[10] = (uint8_t)r->type;
	dst[11] = 0;
	le_put32(dst + 12, r->zone_gen);
	le_put64(dst + 16, r->seq);
	le_put64(dst + 24, r->expire_ms);
	le_put16(dst + 32, (uint16_t)r->key_len);
	le_put16(dst + 34, (uint16_t)r->meta_len);
	le_put32(dst + 36, r->val_len);
	memcpy(dst + REC_HDR_BYTES, r->key, r->key_len);
	if (r->meta_len)
		memcpy(dst + REC_HDR_BYTES + r->key_len, r->meta, r->meta_len);
	if (r->val_len)
		memcpy(dst + REC_HDR_BYTES + r->key_len + r->meta_len, r->value, r->val_len);
	memset(dst + end, 0, size - end);
	seal_checksum(dst, end);
	return size;
}

void rec_encode_pad(uint8_t *dst, uint32_t bytes, uint32_t zone_gen)
{
	DV_ASSERT(bytes >= REC_HDR_BYTES && bytes % DV_RECORD_ALIGN_BYTES == 0);
	memset(dst, 0, bytes);
	le_put16(dst + 8, REC_MAGIC);
	dst[10] = REC_PAD;
	le_put32(dst + 12, zone_gen);
	le_put32(dst + 36, bytes - REC_HDR_BYTES);
	/* The checksum covers only the header: padding content is irrelevant. */
	seal_checksum(dst, REC_HDR_BYTES);
}

void rec_set_zone_gen(uint8_t *rec, uint32_t zone_gen)
{
	DV_ASSERT(le_get16(rec + 8) == REC_MAGIC);
	DV_ASSERT(rec[10] == REC_PUT || rec[10] == REC_TOMBSTONE);
	le_put32(rec + 12, zone_gen);
	uint32_t end = REC_HDR_BYTES + le_get16(rec + 32) + le_get16(rec + 34) + le_get32(rec + 36);
	seal_checksum(rec, end);
}

static int decode_header(const uint8_t *src, struct rec_view *out, uint32_t *payload_end)
{
	if (le_get16(src + 8) != REC_MAGIC || src[11] != 0)
		return -DV_ECORRUPT;
	out->type = (enum rec_type)src[10];
	out->zone_gen = le_get32(src + 12);
	out->seq = le_get64(src + 16);
	out->expire_ms = le_get64(src + 24);
	out->key_len = le_get16(src + 32);
	out->meta_len = le_get16(src + 34);
	out->val_len = le_get32(src + 36);
	if (out->type == REC_PAD) {
		if (out->key_len || out->meta_len || out->val_len > DV_ZONE_BYTES_MAX ||
		    (out->val_len + REC_HDR_BYTES) % DV_RECORD_ALIGN_BYTES)
			return -DV_ECORRUPT;
		*payload_end = REC_HDR_BYTES;
		out->total_bytes = REC_HDR_BYTES + out->val_len;
		return 0;
	}
	if (rec_check_lengths(out->type, out->key_len, out->meta_len, out->val_len))
		return -DV_ECORRUPT;
	*payload_end = REC_HDR_BYTES + out->key_len + out->meta_len + out->val_len;
	out->total_bytes = rec_size(out->key_len, out->meta_len, out->val_len);
	return 0;
}

int rec_decode(const uint8_t *src, uint32_t avail, struct rec_view *out, uint32_t *need)
{
	if (avail < REC_HDR_BYTES)
		return -DV_ECORRUPT;
	uint32_t payload_end = 0;
	int err = decode_header(src, out, &payload_end);
	if (err)
		return err;
	if (payload_end > avail) {
		if (need)
			*need = out->total_bytes;
		return -EAGAIN;
	}
	if (le_get64(src) != dv_checksum64(src + 8, payload_end - 8))
		return -DV_ECORRUPT;
	out->key = src + REC_HDR_BYTES;
	out->meta = out->key + out->key_len;
	out->value = out->meta + out->meta_len;
	return 0;
}

int rec_peek_key(const uint8_t *src, uint32_t avail, const uint8_t **key, uint32_t *key_len)
{
	if (avail < REC_HDR_BYTES)
		return -DV_ECORRUPT;
	uint32_t n = le_get16(src + 32);
	if (n == 0 || n > DV_KEY_BYTES_MAX || n > avail - REC_HDR_BYTES)
		return -DV_ECORRUPT;
	*key = src + REC_HDR_BYTES;
	*key_len = n;
	return 0;
}
