/* test_record.c - record encoding: round trip, every single-bit flip is
 * caught by the checksum, length limits, padding records, placement rule. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/constants.h"
#include "base/error.h"
#include "storage/record.h"
#include "testing.h"

static void test_round_trip(void)
{
	static uint8_t buf[1u << 21];
	uint8_t val[3000], meta[100];
	for (unsigned i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 7);
	memset(meta, 0xab, sizeof(meta));
	struct rec_view r = {.type = REC_PUT, .zone_gen = 9, .seq = 123456789, .expire_ms = 42,
			     .key = (const uint8_t *)"hello", .key_len = 5, .meta = meta, .meta_len = 100,
			     .value = val, .val_len = 3000};
	uint32_t n = rec_encode(buf, &r);
	CHECK_EQ(n, rec_size(5, 100, 3000));
	CHECK_EQ(n % DV_RECORD_ALIGN_BYTES, 0);
	struct rec_view d;
	CHECK_EQ(rec_decode(buf, n, &d, NULL), 0);
	CHECK_EQ(d.type, REC_PUT);
	CHECK_EQ(d.zone_gen, 9);
	CHECK_EQ(d.seq, 123456789);
	CHECK_EQ(d.expire_ms, 42);
	CHECK_EQ(d.key_len, 5);
	CHECK(memcmp(d.key, "hello", 5) == 0);
	CHECK_EQ(d.meta_len, 100);
	CHECK(memcmp(d.meta, meta, 100) == 0);
	CHECK_EQ(d.val_len, 3000);
	CHECK(memcmp(d.value, val, 3000) == 0);
	CHECK_EQ(d.total_bytes, n);
	/* Too few bytes: -EAGAIN with the size needed. */
	uint32_t need = 0;
	CHECK_EQ(rec_decode(buf, 100, &d, &need), -EAGAIN);
	CHECK_EQ(need, n);
	/* Every single-bit flip over the checksummed bytes is detected. */
	uint32_t payload_end = REC_HDR_BYTES + 5 + 100 + 3000;
	for (uint32_t byte = 0; byte < payload_end; byte++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			buf[byte] ^= (uint8_t)(1u << bit);
			int rc = rec_decode(buf, n, &d, NULL);
			CHECK(rc == -DV_ECORRUPT || rc == -EAGAIN);
			buf[byte] ^= (uint8_t)(1u << bit);
		}
	}
	CHECK_EQ(rec_decode(buf, n, &d, NULL), 0);
	/* Relocation rewrites the generation and keeps the record valid. */
	rec_set_zone_gen(buf, 77);
	CHECK_EQ(rec_decode(buf, n, &d, NULL), 0);
	CHECK_EQ(d.zone_gen, 77);
	CHECK_EQ(d.seq, 123456789);
	/* Tombstones carry no value. */
	struct rec_view t = {.type = REC_TOMBSTONE, .zone_gen = 1, .seq = 5, .key = (const uint8_t *)"k", .key_len = 1};
	n = rec_encode(buf, &t);
	CHECK_EQ(rec_decode(buf, n, &d, NULL), 0);
	CHECK_EQ(d.type, REC_TOMBSTONE);
	CHECK_EQ(d.val_len, 0);
	/* Zeroes are never a record. */
	memset(buf, 0, 4096);
	CHECK_EQ(rec_decode(buf, 4096, &d, NULL), -DV_ECORRUPT);
}

static void test_limits_and_pad(void)
{
	CHECK_EQ(rec_check_lengths(REC_PUT, 0, 0, 1), -EINVAL);
	CHECK_EQ(rec_check_lengths(REC_PUT, DV_KEY_BYTES_MAX + 1, 0, 1), -DV_ETOOBIG);
	CHECK_EQ(rec_check_lengths(REC_PUT, 1, DV_META_BYTES_MAX + 1, 1), -DV_ETOOBIG);
	CHECK_EQ(rec_check_lengths(REC_PUT, 1, 0, DV_VALUE_BYTES_MAX + 1), -DV_ETOOBIG);
	CHECK_EQ(rec_check_lengths(REC_PUT, DV_KEY_BYTES_MAX, DV_META_BYTES_MAX, DV_VALUE_BYTES_MAX), 0);
	static uint8_t buf[8192];
	for (uint32_t bytes = 48; bytes <= 4096; bytes += 16) {
		rec_encode_pad(buf, bytes, 3);
		struct rec_view d;
		CHECK_EQ(rec_decode(buf, bytes, &d, NULL), 0);
		CHECK_EQ(d.type, REC_PAD);
		CHECK_EQ(d.total_bytes, bytes);
		CHECK_EQ(d.zone_gen, 3);
	}
	/* Placement: fewer than a header's bytes left in a block: skip. */
	CHECK_EQ(rec_next_start(0, 4096), 0);
	CHECK_EQ(rec_next_start(4096 - 48, 4096), 4096 - 48);
	CHECK_EQ(rec_next_start(4096 - 32, 4096), 4096);
	CHECK_EQ(rec_next_start(8192 - 16, 4096), 8192);
}

int main(void)
{
	test_round_trip();
	test_limits_and_pad();
	return 0;
}
