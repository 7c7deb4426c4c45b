/* fuzz_dvv.c - libFuzzer target for the version codecs (dvv_decode,
 * dvv_decode_clock, dvv_ctx_decode).
 *
 * `make fuzz` builds build-fuzz/fuzz_dvv (clang, ASan+UBSan; rules in
 * src/cluster/dvv.mk) and runs it FUZZ_SECONDS on a copy of
 * tests/cluster/corpus_dvv; tests/cluster/fuzz_dvv.sh runs it for 15
 * seconds in the test suite. The corpus is written by
 * `build/tests/cluster/test_dvv corpus DIR`.
 *
 * Input: byte 0 picks the mode (mod 4), the rest is its payload:
 *   0 record: u16 meta_len | meta | vals (the rest)
 *   1 the same, with the meta's checksum made right by the harness, so the
 *     fuzzer reaches the structure checks behind it
 *   2 context text
 *   3 context binary body (before the tag): the harness adds the tag and
 *     the base64url, so the fuzzer reaches the checks behind the tag
 * Every buffer is a copy of exactly its size (ASan sees a read past it).
 * Checked with DV_ASSERT for every accepted input: re-encoding gives the
 * same bytes; sync with itself and with the empty version is the identity;
 * an update with the version's own context supersedes every value and
 * descends it; the clock-only decode agrees; pick and visible stay inside;
 * prune only drops value-less entries. dvv.c asserts its own invariants on
 * entry and exit of every function on top.
 */
#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/le.h"
#include "cluster/counter.h"
#include "cluster/dvv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Must match test_dvv.c's corpus writer. */
#define FUZZ_CLUSTER 0x5eedull
static const uint8_t fuzz_ctx_key[DVV_CTX_KEY_BYTES] = {0x42, 0x42, 0x42, 0x42};
static const char fuzz_key[] = "key";

static uint8_t *copy_of(const void *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	DV_ASSERT(c != NULL);
	if (n)
		memcpy(c, p, n);
	return c;
}

static void check_ops(const struct dvv *d, uint64_t salt)
{
	struct dvv empty, s, out, back;
	dvv_init(&empty, d->policy);
	DV_ASSERT(dvv_sync(&s, d, d) == 0 && dvv_identical(&s, d));
	DV_ASSERT(dvv_sync(&s, d, &empty) == 0 && dvv_identical(&s, d));
	DV_ASSERT(dvv_sync(&s, &empty, d) == 0 && dvv_identical(&s, d));
	DV_ASSERT(!dvv_less(d, d) && dvv_equal(d, d));
	DV_ASSERT(dvv_less(&empty, d) == (d->nentries > 0));

	const struct dvv_value *vis[DVV_VALUES_MAX];
	unsigned n = dvv_visible(d, salt, vis, DVV_VALUES_MAX);
	DV_ASSERT(n <= d->nvals);
	for (unsigned i = 0; i < n; i++)
		DV_ASSERT(vis[i] >= d->v && vis[i] < d->v + d->nvals && !(vis[i]->flags & DVV_VAL_TOMB));
	const struct dvv_value *p = dvv_pick(d, salt);
	DV_ASSERT(p == NULL || (p >= d->v && p < d->v + d->nvals));

	/* A write with the version's own context supersedes all of it. */
	struct dvv_vv vv;
	dvv_join(d, &vv);
	struct dvv_value v = {.data = (const uint8_t *)"new", .len = 3, .ts = salt};
	uint64_t actor = d->nentries > 0 && (salt & 1) ? d->e[salt % d->nentries].actor : salt;
	int rc = dvv_update(&out, d, &vv, actor, &v);
	DV_ASSERT(rc == 0 || rc == -E2BIG);
	if (rc == 0) {
		DV_ASSERT(dvv_less(d, &out) && out.nvals == 1);
		DV_ASSERT(d->policy == DVV_LWW || out.v[0].data == v.data); /* LWW: the greater stays */
		uint8_t meta[DVV_META_BYTES_MAX];
		uint32_t vals_len = (uint32_t)dvv_value_bytes(&out);
		uint8_t *vals = malloc(vals_len ? vals_len : 1);
		DV_ASSERT(vals != NULL);
		dvv_encode(&out, meta, vals);
		DV_ASSERT(dvv_decode(&back, meta, dvv_meta_bytes(&out), vals, vals_len) == 0);
		DV_ASSERT(dvv_identical(&back, &out));
		free(vals);
	}

	struct dvv pruned = *d;
	uint64_t keep = actor;
	unsigned dropped = dvv_prune(&pruned, &keep, 1, (unsigned)(salt % 8));
	DV_ASSERT(pruned.nentries + dropped == d->nentries && pruned.nvals == d->nvals);
	DV_ASSERT(dvv_less(&pruned, d) == (dropped > 0));
}

/* Whether every DVV_VAL_COUNTER value of a decoded clock (values laid out in
 * order from vals) is a whole counter state: the one thing dvv_decode checks
 * beyond the clock and the value bytes. */
static bool counters_decode(const struct dvv *clk, const uint8_t *vals)
{
	uint64_t off = 0;
	for (unsigned i = 0; i < clk->nvals; i++) {
		struct counter c;
		if ((clk->v[i].flags & DVV_VAL_COUNTER) && counter_decode(&c, vals + off, clk->v[i].len) != 0)
			return false;
		off += clk->v[i].len;
	}
	return true;
}

static void fuzz_record(const uint8_t *data, size_t size, bool reseal)
{
	if (size < 2)
		return;
	size_t meta_len = le_get16(data);
	data += 2, size -= 2;
	if (meta_len > size)
		meta_len = size;
	uint8_t *meta = copy_of(data, meta_len);
	size_t vals_len = size - meta_len;
	uint8_t *vals = copy_of(data + meta_len, vals_len);
	if (reseal && meta_len >= DVV_META_HDR_BYTES)
		le_put64(meta, dv_checksum64(meta + 8, meta_len - 8));

	struct dvv d, clk;
	int rc = dvv_decode(&d, meta, (uint32_t)meta_len, vals, (uint32_t)vals_len);
	int rc_clk = dvv_decode_clock(&clk, meta, (uint32_t)meta_len);
	DV_ASSERT(rc == 0 || rc == -DV_ECORRUPT);
	DV_ASSERT(rc_clk == 0 || rc_clk == -DV_ECORRUPT);
	DV_ASSERT((rc == 0) == (rc_clk == 0 && dvv_value_bytes(&clk) == vals_len && counters_decode(&clk, vals)));
	if (rc == 0) {
		DV_ASSERT(dvv_meta_bytes(&d) == meta_len && dvv_value_bytes(&d) == vals_len);
		DV_ASSERT(dvv_equal(&d, &clk));
		uint8_t *meta2 = malloc(meta_len), *vals2 = malloc(vals_len ? vals_len : 1);
		DV_ASSERT(meta2 != NULL && vals2 != NULL);
		dvv_encode(&d, meta2, vals2);
		DV_ASSERT(memcmp(meta2, meta, meta_len) == 0 && (vals_len == 0 || memcmp(vals2, vals, vals_len) == 0));
		free(meta2);
		free(vals2);
		check_ops(&d, meta_len * 31 + vals_len);
	}
	free(meta);
	free(vals);
}

/* A decoded context re-encodes to the same text, under its own policy. */
static void check_ctx(const char *text, size_t len)
{
	struct dvv_vv vv;
	uint64_t flush_id = 1;
	int rc = dvv_ctx_decode(text, len, FUZZ_CLUSTER, fuzz_ctx_key, fuzz_key, 3, &vv, &flush_id);
	DV_ASSERT(rc == 0 || rc == -EINVAL || rc == -EXDEV);
	if (rc != 0) {
		DV_ASSERT(vv.n == 0 && flush_id == 0);
		return;
	}
	DV_ASSERT(dvv_vv_valid(&vv));
	if (len == 0) {
		DV_ASSERT(vv.n == 0 && flush_id == 0);
		return;
	}
	char again[DVV_CTX_TEXT_MAX];
	unsigned same = 0;
	for (uint8_t policy = DVV_SIBLINGS; policy <= DVV_LWW; policy++) {
		size_t n = dvv_ctx_encode(&vv, policy, flush_id, FUZZ_CLUSTER, fuzz_ctx_key, fuzz_key, 3, again);
		same += n == len && memcmp(again, text, len) == 0;
	}
	DV_ASSERT(same == 1);
	DV_ASSERT(dvv_ctx_decode(text, len, FUZZ_CLUSTER + 1, fuzz_ctx_key, fuzz_key, 3, &vv, NULL) == -EXDEV);
	DV_ASSERT(dvv_ctx_decode(text, len, FUZZ_CLUSTER, fuzz_ctx_key, "kez", 3, &vv, NULL) == -EINVAL);
}

static void fuzz_ctx_body(const uint8_t *data, size_t size)
{
	if (size > DVV_CTX_BIN_MAX)
		return;
	uint8_t bin[DVV_CTX_BIN_MAX + DVV_CTX_TAG_BYTES];
	memcpy(bin, data, size);
	crypto_generichash_state st;
	crypto_generichash_init(&st, fuzz_ctx_key, DVV_CTX_KEY_BYTES, DVV_CTX_TAG_BYTES);
	crypto_generichash_update(&st, bin, size);
	crypto_generichash_update(&st, (const uint8_t *)fuzz_key, 3);
	crypto_generichash_final(&st, bin + size, DVV_CTX_TAG_BYTES);
	char text[2 * sizeof(bin)];
	sodium_bin2base64(text, sizeof(text), bin, size + DVV_CTX_TAG_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	size_t len = strlen(text);
	char *exact = (char *)copy_of(text, len);
	check_ctx(exact, len);
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		DV_ASSERT(sodium_init() >= 0);
		ready = true;
	}
	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0:
	case 1:
		fuzz_record(data + 1, size - 1, data[0] % 4 == 1);
		break;
	case 2: {
		char *text = (char *)copy_of(data + 1, size - 1);
		check_ctx(text, size - 1);
		free(text);
		break;
	}
	default:
		fuzz_ctx_body(data + 1, size - 1);
		break;
	}
	return 0;
}
