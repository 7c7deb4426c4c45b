/* test_store.c - the engine's operations on a memory device: put, get,
 * delete, overwrite, expiry, conditional puts, compare-and-set by seq
 * (STORE_IF_SEQ: direct, inherited by a write queued behind another, after
 * recovery, after GC moved the record, pairs of racing writes under GC),
 * the tombstone count against a model, large values, bad input, reopen,
 * recovery from zone indexes equal to a full scan, range scan, garbage
 * collection running while writers and readers go on, and an event loop
 * on a file device that sleeps on the notify eventfd between polls. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/error.h"
#include "harness.h"
#include "io/dev_mem.h"
#include "storage/store_int.h"
#include "testing.h"

#define MiB (1024u * 1024u)

static struct h_value *got;
static uint8_t *buf;

static void key_name(char *k, uint64_t n) { sprintf(k, "key-%llu", (unsigned long long)n); }

static uint64_t key_payload(struct store *s, const char *k);

static struct store *reopen(struct store *s, struct dev **dev, bool by_scan)
{
	return h_reopen_mem(s, dev, &(struct store_config){.recover_by_scan = by_scan});
}

static void test_basic(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 64 * MiB, 4 * MiB);
	CHECK_EQ(h_get(s, "absent", got), -DV_ENOTFOUND);
	CHECK_EQ(h_put(s, "a", "hello", 5), 0);
	CHECK_EQ(h_get(s, "a", got), 0);
	CHECK_EQ(got->len, 5);
	CHECK(memcmp(got->bytes, "hello", 5) == 0);
	uint64_t seq1 = got->seq;
	CHECK_EQ(h_put(s, "a", "world!", 6), 0);
	CHECK_EQ(h_get(s, "a", got), 0);
	CHECK_EQ(got->len, 6);
	CHECK(memcmp(got->bytes, "world!", 6) == 0);
	CHECK(got->seq > seq1);
	CHECK_EQ(h_put(s, "empty", "", 0), 0);
	CHECK_EQ(h_get(s, "empty", got), 0);
	CHECK_EQ(got->len, 0);
	CHECK_EQ(h_del(s, "a"), 0);
	CHECK_EQ(h_get(s, "a", got), -DV_ENOTFOUND);
	CHECK_EQ(h_del(s, "a"), -DV_ENOTFOUND);
	CHECK_EQ(h_del(s, "never"), -DV_ENOTFOUND);
	/* Conditional puts. */
	CHECK_EQ(h_put_ex(s, "c", "1", 1, 0, STORE_IF_PRESENT), -DV_ENOTFOUND);
	CHECK_EQ(h_put_ex(s, "c", "1", 1, 0, STORE_IF_ABSENT), 0);
	CHECK_EQ(h_put_ex(s, "c", "2", 1, 0, STORE_IF_ABSENT), -EEXIST);
	CHECK_EQ(h_put_ex(s, "c", "3", 1, 0, STORE_IF_PRESENT), 0);
	CHECK_EQ(h_get(s, "c", got), 0);
	CHECK_EQ(got->bytes[0], '3');
	/* Expiry: in the past reads as absent, in the future as present. */
	uint64_t now = store_now_ms();
	CHECK_EQ(h_put_ex(s, "old", "x", 1, now - 1, STORE_ALWAYS), 0);
	CHECK_EQ(h_get(s, "old", got), -DV_ENOTFOUND);
	CHECK_EQ(h_put_ex(s, "old", "y", 1, 0, STORE_IF_ABSENT), 0); /* expired = absent */
	CHECK_EQ(h_put_ex(s, "new", "x", 1, now + 3600000, STORE_ALWAYS), 0);
	CHECK_EQ(h_get(s, "new", got), 0);
	CHECK_EQ(got->expire_ms, now + 3600000);
	/* Bad input is refused before anything is queued. */
	struct store_op op = {.kind = STORE_PUT, .key = "k", .key_len = 0, .done = (store_done_fn)abort};
	CHECK_EQ(store_submit(s, &op), -EINVAL);
	op.key_len = DV_KEY_BYTES_MAX + 1;
	CHECK_EQ(store_submit(s, &op), -DV_ETOOBIG);
	op.key_len = 1;
	op.val_len = DV_VALUE_BYTES_MAX + 1;
	CHECK_EQ(store_submit(s, &op), -DV_ETOOBIG);
	op.kind = 77;
	CHECK_EQ(store_submit(s, &op), -EINVAL);
	/* Values of every size class: inside a block, across blocks, 1 MiB. */
	static const uint32_t sizes[] = {1, 100, 4000, 4056, 4057, 5000, 65536, 300000, DV_VALUE_BYTES_MAX};
	for (unsigned i = 0; i < DV_ARRAY_LEN(sizes); i++) {
		char k[32];
		key_name(k, i);
		h_fill_value(buf, sizes[i], i, 1);
		CHECK_EQ(h_put(s, k, buf, sizes[i]), 0);
	}
	s = reopen(s, &dev, false);
	for (unsigned i = 0; i < DV_ARRAY_LEN(sizes); i++) {
		char k[32];
		key_name(k, i);
		h_fill_value(buf, sizes[i], i, 1);
		CHECK_EQ(h_get(s, k, got), 0);
		CHECK_EQ(got->len, sizes[i]);
		CHECK(memcmp(got->bytes, buf, sizes[i]) == 0);
	}
	CHECK_EQ(h_get(s, "a", got), -DV_ENOTFOUND);
	CHECK_EQ(h_get(s, "c", got), 0);
	CHECK_EQ(got->bytes[0], '3');
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(!st.failed);
	CHECK_EQ(st.corrupt_records, 0);
	store_close(s);
	dev_close(dev);
}

/* Many keys over many zones with overwrites and deletes, then: reopen
 * from zone indexes and from a full scan give the same index, and both
 * read back the model exactly. */
static void test_recovery_equals_scan(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 128 * MiB, 1 * MiB);
	enum { KEYS = 20000 };
	uint32_t *version = calloc(KEYS, sizeof(*version)); /* 0 = absent */
	uint64_t rng = test_seed(1);
	for (unsigned i = 0; i < 60000; i++) {
		uint64_t n = test_rand(&rng) % KEYS;
		char k[32];
		key_name(k, n);
		if (test_rand(&rng) % 8 == 0) {
			CHECK_EQ(h_del(s, k), version[n] ? 0 : -DV_ENOTFOUND);
			version[n] = 0;
		} else {
			uint32_t len = 50 + (uint32_t)(n % 300);
			h_fill_value(buf, len, n, i + 1);
			CHECK_EQ(h_put(s, k, buf, len), 0);
			version[n] = i + 1;
		}
	}
	s = reopen(s, &dev, false);
	uint64_t *a, *b;
	uint64_t na = h_index_payloads(s, &a);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.zones_full > 10);
	CHECK_EQ(st.recovery_bad_zone_indexes, 0);
	s = reopen(s, &dev, true);
	uint64_t nb = h_index_payloads(s, &b);
	CHECK_EQ(na, nb);
	CHECK(memcmp(a, b, na * sizeof(*a)) == 0);
	fprintf(stderr, "recovery: %llu index entries identical from zone indexes and full scan\n",
		(unsigned long long)na);
	free(a);
	free(b);
	for (uint64_t n = 0; n < KEYS; n++) {
		char k[32];
		key_name(k, n);
		int rc = h_get(s, k, got);
		if (!version[n]) {
			CHECK_EQ(rc, -DV_ENOTFOUND);
			continue;
		}
		CHECK_EQ(rc, 0);
		uint32_t len = 50 + (uint32_t)(n % 300);
		h_fill_value(buf, len, n, version[n]);
		CHECK_EQ(got->len, len);
		CHECK(memcmp(got->bytes, buf, len) == 0);
	}
	free(version);
	store_close(s);
	dev_close(dev);
}

struct scan_ctx {
	uint64_t lo, hi, seen, bad;
	bool finished;
};

static bool scan_visit(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	struct scan_ctx *c = arg;
	uint64_t h = store_key_hash(key, key_len);
	c->bad += h < c->lo || h > c->hi || rec->val_len != 8;
	c->seen++;
	return true;
}

static void scan_finish(void *arg, int err)
{
	struct scan_ctx *c = arg;
	CHECK_EQ(err, 0);
	c->finished = true;
}

static void test_scan(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 64 * MiB, 1 * MiB);
	enum { KEYS = 5000 };
	uint64_t lo = 1ull << 62, hi = 3ull << 62, expect = 0;
	for (uint64_t n = 0; n < KEYS; n++) {
		char k[32];
		key_name(k, n);
		CHECK_EQ(h_put(s, k, &n, 8), 0);
		if (n % 10 == 0)
			CHECK_EQ(h_del(s, k), 0);
		uint64_t h = store_key_hash(k, (uint32_t)strlen(k));
		expect += n % 10 != 0 && h >= lo && h <= hi;
	}
	struct scan_ctx c = {.lo = lo, .hi = hi};
	CHECK_EQ(store_scan(s, lo, hi, scan_visit, scan_finish, &c), 0);
	CHECK_EQ(store_drain(s), 0);
	CHECK(c.finished);
	CHECK_EQ(c.bad, 0);
	CHECK_EQ(c.seen, expect);
	store_close(s);
	dev_close(dev);
}

/* Writers and readers keep going while GC collects zones: every read gets
 * the newest acknowledged value; after reopen, the same. Live data stays
 * about half of the zone space so GC has work. */
struct gc_slot {
	struct store_op op;
	char key[32];
	uint64_t n;
	uint32_t version;
	bool busy;
	uint8_t val[512];
};

static uint32_t *gc_version;
static uint64_t gc_errors;

static void gc_done(struct store_op *op)
{
	struct gc_slot *sl = (struct gc_slot *)op;
	sl->busy = false;
	if (op->result) {
		gc_errors++;
		return;
	}
	if (op->kind == STORE_PUT) {
		gc_version[sl->n] = sl->version;
		return;
	}
	/* The key's only writer is not in flight (see slot choice): exact. */
	uint8_t expect[512];
	uint32_t len = 200 + (uint32_t)(sl->n % 200);
	h_fill_value(expect, len, sl->n, gc_version[sl->n]);
	CHECK_EQ(op->out.val_len, len);
	CHECK(memcmp(op->out.value, expect, len) == 0);
}

static void test_gc_concurrent(void)
{
	struct store *s;
	struct dev *dev;
	/* 32 MiB device, 512 KiB zones; 40000 keys * ~320 B = ~13 MiB live. */
	h_open_mem(&s, &dev, 32 * MiB, 512 * 1024);
	enum { KEYS = 40000, QD = 32 };
	gc_version = calloc(KEYS, sizeof(*gc_version));
	struct gc_slot *slots = calloc(QD, sizeof(*slots));
	uint64_t rng = test_seed(7);
	uint64_t ops = 0, target = 400000;
	for (uint64_t guard = 0; ops < target; guard++) {
		CHECK(guard < 100000000);
		for (unsigned i = 0; i < QD && ops < target; i++) {
			struct gc_slot *sl = &slots[i];
			if (sl->busy)
				continue;
			/* Slot i owns keys = i mod QD: one op per key at a time. */
			uint64_t n = (ops < KEYS ? ops : test_rand(&rng) % KEYS);
			n = n - n % QD + i;
			if (n >= KEYS)
				n -= QD;
			sl->n = n;
			key_name(sl->key, n);
			bool read = ops >= KEYS && gc_version[n] && test_rand(&rng) % 3 == 0;
			sl->op = (struct store_op){.kind = read ? STORE_GET : STORE_PUT, .key = sl->key,
						   .key_len = (uint32_t)strlen(sl->key), .done = gc_done};
			if (!read) {
				sl->version = (uint32_t)ops + 1;
				uint32_t len = 200 + (uint32_t)(n % 200);
				h_fill_value(sl->val, len, n, sl->version);
				sl->op.value = sl->val;
				sl->op.val_len = len;
			}
			CHECK_EQ(store_submit(s, &sl->op), 0);
			sl->busy = true;
			ops++;
		}
		CHECK(store_poll(s, true) >= 0);
	}
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(gc_errors, 0);
	struct store_stats st;
	store_get_stats(s, &st);
	fprintf(stderr, "gc: %llu zones reset, %llu bytes relocated, WA %.2f\n",
		(unsigned long long)st.gc_zones_reset, (unsigned long long)st.gc_bytes_relocated,
		(double)st.device_bytes_written / (double)st.user_bytes);
	CHECK(st.gc_zones_reset > 20);
	CHECK(st.gc_bytes_relocated > 0);
	CHECK(!st.failed);
	for (int round = 0; round < 2; round++) {
		for (uint64_t n = 0; n < KEYS; n++) {
			char k[32];
			key_name(k, n);
			uint32_t len = 200 + (uint32_t)(n % 200);
			CHECK_EQ(h_get(s, k, got), 0);
			h_fill_value(buf, len, n, gc_version[n]);
			CHECK_EQ(got->len, len);
			CHECK(memcmp(got->bytes, buf, len) == 0);
		}
		s = reopen(s, &dev, false);
	}
	store_close(s);
	dev_close(dev);
	free(slots);
	free(gc_version);
}

/* GC under pressure: a deep queue of overwrites of few keys on a device at
 * about half live data, so user writes wait for space while GC relocates
 * the same keys (this once deadlocked: a relocation queued behind a user
 * write that waited for the zone the relocation would free). Several
 * writes of one key are in flight at once; the last one submitted wins. */
struct pr_slot {
	struct store_op op;
	char key[32];
	uint8_t val[600];
	bool busy;
};

static uint64_t pr_errors;

static void pr_done(struct store_op *op)
{
	((struct pr_slot *)op)->busy = false;
	pr_errors += op->result != 0;
}

static void test_gc_pressure(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 256 * 1024);
	enum { KEYS = 12000, QD = 512 };
	uint32_t *last = calloc(KEYS, sizeof(*last));
	struct pr_slot *slots = calloc(QD, sizeof(*slots));
	uint64_t rng = test_seed(11), ops = 0, target = 150000;
	for (uint64_t guard = 0; ops < target; guard++) {
		CHECK(guard < 10000000);
		for (unsigned i = 0; i < QD && ops < target; i++) {
			struct pr_slot *sl = &slots[i];
			if (sl->busy)
				continue;
			uint64_t n = ops < KEYS ? ops : test_rand(&rng) % KEYS;
			key_name(sl->key, n);
			uint32_t len = 300 + (uint32_t)(n % 200);
			last[n] = (uint32_t)ops + 1;
			h_fill_value(sl->val, len, n, last[n]);
			sl->op = (struct store_op){.kind = STORE_PUT, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
						   .value = sl->val, .val_len = len, .done = pr_done};
			CHECK_EQ(store_submit(s, &sl->op), 0);
			sl->busy = true;
			ops++;
		}
		CHECK(store_poll(s, true) >= 0);
	}
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(pr_errors, 0);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.gc_zones_reset > 10);
	fprintf(stderr, "gc pressure: %llu zones reset, %llu relocated bytes\n", (unsigned long long)st.gc_zones_reset,
		(unsigned long long)st.gc_bytes_relocated);
	for (int round = 0; round < 2; round++) {
		for (uint64_t n = 0; n < KEYS; n++) {
			char k[32];
			key_name(k, n);
			uint32_t len = 300 + (uint32_t)(n % 200);
			CHECK_EQ(h_get(s, k, got), 0);
			h_fill_value(buf, len, n, last[n]);
			CHECK_EQ(got->len, len);
			CHECK(memcmp(got->bytes, buf, len) == 0);
		}
		s = reopen(s, &dev, false);
	}
	store_close(s);
	dev_close(dev);
	free(last);
	free(slots);
}

/* GC moves expired values as tombstones: their space comes back, the key
 * stays absent, and an older version in another zone is not resurrected
 * by a restart. */
static void test_gc_expired(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 256 * 1024);
	enum { KEYS = 2000 };
	static uint8_t v[800];
	for (uint64_t n = 0; n < KEYS; n++) { /* old versions, no expiry */
		char k[32];
		key_name(k, n);
		h_fill_value(v, sizeof(v), n, 1);
		CHECK_EQ(h_put(s, k, v, sizeof(v)), 0);
	}
	/* New versions, already expired, between overwrites of a few other
	 * keys: their zones become mostly dead, so GC collects them (GC
	 * does not pick zones for their expired values; see the docs). */
	uint64_t past = store_now_ms() - 1, churn = 0;
	for (uint64_t n = 0; n < KEYS; n++) {
		char k[32];
		key_name(k, n);
		h_fill_value(v, sizeof(v), n, 2);
		CHECK_EQ(h_put_ex(s, k, v, sizeof(v), past, STORE_ALWAYS), 0);
		for (int i = 0; i < 4; i++, churn++) {
			sprintf(k, "churn-%llu", (unsigned long long)(churn % 50));
			CHECK_EQ(h_put(s, k, v, sizeof(v)), 0);
		}
	}
	struct store_stats st;
	store_get_stats(s, &st);
	for (uint64_t i = 0; i < 100000 && st.gc_expired < KEYS / 2; i++, churn++) {
		char k[32];
		sprintf(k, "churn-%llu", (unsigned long long)(churn % 50));
		CHECK_EQ(h_put(s, k, v, sizeof(v)), 0);
		store_get_stats(s, &st);
	}
	CHECK(st.gc_expired >= KEYS / 2);
	fprintf(stderr, "gc moved %llu expired values as tombstones\n", (unsigned long long)st.gc_expired);
	/* No deletes here: every tombstone is an expired value GC turned into
	 * one; the others still count as keys. */
	uint64_t expired = st.gc_expired;
	CHECK_EQ(st.tombstones, expired);
	CHECK_EQ(st.keys, KEYS + 50);
	h_check_tombstones(s, "gc expired");
	for (int round = 0; round < 2; round++) {
		for (uint64_t n = 0; n < KEYS; n++) {
			char k[32];
			key_name(k, n);
			CHECK_EQ(h_get(s, k, got), -DV_ENOTFOUND);
		}
		s = reopen(s, &dev, round == 0);
		store_get_stats(s, &st);
		CHECK_EQ(st.tombstones, expired);
		h_check_tombstones(s, "gc expired, reopened");
	}
	/* Putting an expired key again turns its tombstone back into a value. */
	char k0[32];
	key_name(k0, 0);
	bool was_tomb = pl_tomb(key_payload(s, k0));
	CHECK_EQ(h_put(s, k0, "x", 1), 0);
	store_get_stats(s, &st);
	CHECK_EQ(st.tombstones, expired - was_tomb);
	h_check_tombstones(s, "gc expired, re-put");
	store_close(s);
	dev_close(dev);
}

/* A full device refuses new writes with -DV_EFULL and keeps serving. */
static void test_full(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 8 * MiB, 256 * 1024);
	int rc = 0;
	uint64_t n = 0;
	for (; n < 100000 && rc == 0; n++) {
		char k[32];
		key_name(k, n);
		h_fill_value(buf, 1000, n, 1);
		rc = h_put(s, k, buf, 1000);
	}
	CHECK_EQ(rc, -DV_EFULL);
	CHECK(n > 1000);
	char k[32];
	key_name(k, 0);
	CHECK_EQ(h_get(s, k, got), 0);
	store_close(s);
	dev_close(dev);
}

/* ---- compare-and-set by seq (STORE_IF_SEQ) ---- */

static uint64_t put_seq(struct store *s, const char *k, const char *v)
{
	uint64_t seq = 0;
	CHECK_EQ(h_write_cond(s, STORE_PUT, k, v, (uint32_t)strlen(v), STORE_ALWAYS, 0, &seq), 0);
	CHECK(seq > 0);
	return seq;
}

static int put_if(struct store *s, const char *k, const char *v, uint64_t cond_seq, uint64_t *seq)
{
	return h_write_cond(s, STORE_PUT, k, v, (uint32_t)strlen(v), STORE_IF_SEQ, cond_seq, seq);
}

static int del_if(struct store *s, const char *k, uint64_t cond_seq, uint64_t *seq)
{
	return h_write_cond(s, STORE_DEL, k, NULL, 0, STORE_IF_SEQ, cond_seq, seq);
}

static void expect_value(struct store *s, const char *k, const char *v, uint64_t seq)
{
	CHECK_EQ(h_get(s, k, got), 0);
	CHECK_EQ(got->len, strlen(v));
	CHECK(memcmp(got->bytes, v, got->len) == 0);
	CHECK_EQ(got->seq, seq);
}

/* Ops submitted together, completed by store_drain(). */
struct cas_op {
	struct store_op op;
	int done;
};

static void cas_done(struct store_op *op) { ((struct cas_op *)op)->done++; }

static void cas_submit(struct store *s, struct cas_op *c, enum store_op_kind kind, const char *key,
		       const char *val, enum store_cond cond, uint64_t cond_seq)
{
	memset(c, 0, sizeof(*c));
	c->op = (struct store_op){.kind = kind, .key = key, .key_len = (uint32_t)strlen(key), .value = val,
				  .val_len = val ? (uint32_t)strlen(val) : 0, .cond = cond, .cond_seq = cond_seq,
				  .done = cas_done};
	CHECK_EQ(store_submit(s, &c->op), 0);
}

/* PUT with an expiry and a condition, and wait: the result; *seq = out.seq. */
static int put_cond_ex(struct store *s, const char *k, const void *v, uint32_t len, uint64_t expire_ms,
		       enum store_cond cond, uint64_t cond_seq, uint64_t *seq)
{
	struct cas_op c;
	memset(&c, 0, sizeof(c));
	c.op = (struct store_op){.kind = STORE_PUT, .key = k, .key_len = (uint32_t)strlen(k), .value = v,
				 .val_len = len, .expire_ms = expire_ms, .cond = cond, .cond_seq = cond_seq,
				 .done = cas_done};
	CHECK_EQ(store_submit(s, &c.op), 0);
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(c.done, 1);
	*seq = c.op.out.seq;
	return c.op.result;
}

static uint64_t put_ex_seq(struct store *s, const char *k, const void *v, uint32_t len, uint64_t expire_ms)
{
	uint64_t seq = 0;
	CHECK_EQ(put_cond_ex(s, k, v, len, expire_ms, STORE_ALWAYS, 0, &seq), 0);
	CHECK(seq > 0);
	return seq;
}

/* Candidates a write settled: by a read or by the location memo. */
static uint64_t resolve_reads(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st.resolve_reads + st.resolve_memo_hits;
}

/* The one index entry of key k (white-box). */
static uint64_t key_payload(struct store *s, const char *k)
{
	uint64_t c[16];
	unsigned n = index_lookup(s->index, store_key_hash(k, (uint32_t)strlen(k)), c, 16);
	CHECK_EQ(n, 1);
	return c[0];
}

/* STORE_IF_SEQ_EXPIRED: the server's active expiry deletes only the very
 * record that expired. */
static void test_if_seq_expired(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 64 * MiB, 4 * MiB);
	uint64_t x = 0;
	CHECK_EQ(h_put_ex(s, "e", "v", 1, store_now_ms() + 150, STORE_ALWAYS), 0);
	CHECK_EQ(h_get(s, "e", got), 0);
	uint64_t seq = got->seq;
	/* not expired yet */
	CHECK_EQ(h_write_cond(s, STORE_DEL, "e", NULL, 0, STORE_IF_SEQ_EXPIRED, seq, &x), -ESTALE);
	CHECK_EQ(h_get(s, "e", got), 0);
	/* PUT with this condition is refused at submit */
	CHECK_EQ(h_write_cond(s, STORE_PUT, "e", "w", 1, STORE_IF_SEQ_EXPIRED, seq, &x), -EINVAL);
	usleep(200 * 1000);
	struct store_stats st0, st1;
	store_get_stats(s, &st0);
	CHECK_EQ(h_write_cond(s, STORE_DEL, "e", NULL, 0, STORE_IF_SEQ_EXPIRED, seq + 1, &x), -ESTALE);
	CHECK_EQ(h_write_cond(s, STORE_DEL, "e", NULL, 0, STORE_IF_SEQ_EXPIRED, seq, &x), -DV_ENOTFOUND);
	store_get_stats(s, &st1);
	CHECK_EQ(st1.tombstones, st0.tombstones + 1); /* a live-key count drops */
	/* a tombstone is not an expired record */
	CHECK_EQ(h_write_cond(s, STORE_DEL, "e", NULL, 0, STORE_IF_SEQ_EXPIRED, seq, &x), -ESTALE);
	/* a newer write of the key is never deleted by the old seq */
	CHECK_EQ(h_put_ex(s, "n", "v", 1, store_now_ms() + 100, STORE_ALWAYS), 0);
	CHECK_EQ(h_get(s, "n", got), 0);
	uint64_t old = got->seq;
	usleep(150 * 1000);
	CHECK_EQ(h_put(s, "n", "new", 3), 0);
	CHECK_EQ(h_write_cond(s, STORE_DEL, "n", NULL, 0, STORE_IF_SEQ_EXPIRED, old, &x), -ESTALE);
	CHECK_EQ(h_get(s, "n", got), 0);
	CHECK(got->len == 3 && memcmp(got->bytes, "new", 3) == 0);
	store_close(s);
	dev_close(dev);
}

static void test_if_seq(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 64 * MiB, 4 * MiB);
	/* out.seq of plain writes is the seq GET reports */
	uint64_t s1 = put_seq(s, "k", "v1"), s2 = 0, x = 0;
	expect_value(s, "k", "v1", s1);
	/* match: applies, and the new seq chains */
	CHECK_EQ(put_if(s, "k", "v2", s1, &s2), 0);
	CHECK(s2 > s1);
	expect_value(s, "k", "v2", s2);
	/* mismatch: old, unknown, and 0 on a live key */
	CHECK_EQ(put_if(s, "k", "v3", s1, &x), -ESTALE);
	CHECK_EQ(put_if(s, "k", "v3", s2 + 1000, &x), -ESTALE);
	CHECK_EQ(put_if(s, "k", "v3", 0, &x), -ESTALE);
	expect_value(s, "k", "v2", s2);
	/* cond_seq 0: an absent key */
	uint64_t sa = 0;
	CHECK_EQ(put_if(s, "absent", "a", 0, &sa), 0);
	expect_value(s, "absent", "a", sa);
	CHECK_EQ(put_if(s, "absent", "b", 0, &x), -ESTALE);
	/* DEL with IF_SEQ: only a live record with that seq */
	uint64_t sd = put_seq(s, "d", "dv"), sdel = 0;
	CHECK_EQ(del_if(s, "d", sd + 5, &x), -ESTALE);
	CHECK_EQ(del_if(s, "d", 0, &x), -ESTALE);
	CHECK_EQ(h_get(s, "d", got), 0);
	CHECK_EQ(del_if(s, "d", sd, &sdel), 0);
	CHECK(sdel > sd);
	CHECK_EQ(h_get(s, "d", got), -DV_ENOTFOUND);
	CHECK_EQ(del_if(s, "d", sd, &x), -ESTALE);   /* deleted */
	CHECK_EQ(del_if(s, "d", sdel, &x), -ESTALE); /* a tombstone is not live */
	CHECK_EQ(put_if(s, "d", "dv2", sd, &x), -ESTALE);
	CHECK_EQ(put_if(s, "d", "dv2", sdel, &x), -ESTALE);
	/* cond_seq 0: a deleted key */
	uint64_t sd2 = 0;
	CHECK_EQ(put_if(s, "d", "dv2", 0, &sd2), 0);
	expect_value(s, "d", "dv2", sd2);
	CHECK_EQ(del_if(s, "never", 0, &x), -ESTALE);
	CHECK_EQ(del_if(s, "never", 5, &x), -ESTALE);
	/* cond_seq 0: an expired key; its seq no longer matches */
	uint64_t now = store_now_ms();
	uint64_t sexp = put_ex_seq(s, "e", "ev", 2, now - 1);
	CHECK_EQ(h_get(s, "e", got), -DV_ENOTFOUND);
	CHECK_EQ(put_if(s, "e", "x", sexp, &x), -ESTALE);
	CHECK_EQ(del_if(s, "e", sexp, &x), -ESTALE);
	uint64_t se = 0;
	CHECK_EQ(put_if(s, "e", "ev2", 0, &se), 0);
	expect_value(s, "e", "ev2", se);
	/* EXPIRE as the server does it: GET, PUT the value with a new expiry
	 * IF_SEQ the seq read */
	uint64_t later = now + 3600000, sx = 0;
	CHECK_EQ(h_get(s, "e", got), 0);
	CHECK_EQ(put_cond_ex(s, "e", got->bytes, got->len, later, STORE_IF_SEQ, got->seq, &sx), 0);
	CHECK_EQ(put_cond_ex(s, "e", got->bytes, got->len, later, STORE_IF_SEQ, got->seq, &x), -ESTALE);
	expect_value(s, "e", "ev2", sx);
	CHECK_EQ(got->expire_ms, later);
	/* plain DEL reports its tombstone's seq */
	CHECK_EQ(h_write_cond(s, STORE_DEL, "absent", NULL, 0, STORE_ALWAYS, 0, &x), 0);
	CHECK(x > sx);
	/* a cond out of range is refused */
	struct store_op bad = {.kind = STORE_PUT, .key = "k", .key_len = 1, .cond = (enum store_cond)9,
			       .done = (store_done_fn)abort};
	CHECK_EQ(store_submit(s, &bad), -EINVAL);

	/* Inherited: writes queued behind a write of the same key take its
	 * result, not a lookup: two IF_SEQ with the same seq, only the first
	 * applies. */
	struct cas_op c[4];
	uint64_t reads0 = resolve_reads(s);
	cas_submit(s, &c[0], STORE_PUT, "k", "a", STORE_IF_SEQ, s2);
	cas_submit(s, &c[1], STORE_PUT, "k", "b", STORE_IF_SEQ, s2);
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(c[0].done + c[1].done, 2);
	CHECK_EQ(c[0].op.result, 0);
	CHECK_EQ(c[1].op.result, -ESTALE);
	CHECK_EQ(resolve_reads(s) - reads0, 1); /* the second one inherited */
	uint64_t sA = c[0].op.out.seq;
	CHECK(sA > s2);
	expect_value(s, "k", "a", sA);
	/* a refused write hands on the seq it found */
	cas_submit(s, &c[0], STORE_PUT, "k", "no", STORE_IF_SEQ, sA + 7);
	cas_submit(s, &c[1], STORE_PUT, "k", "b", STORE_IF_SEQ, sA);
	cas_submit(s, &c[2], STORE_PUT, "k", "c", STORE_IF_SEQ, 0);
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(c[0].op.result, -ESTALE);
	CHECK_EQ(c[1].op.result, 0);
	CHECK_EQ(c[2].op.result, -ESTALE); /* live after the second */
	uint64_t sB = c[1].op.out.seq;
	expect_value(s, "k", "b", sB);
	/* a DEL written in the same batch: behind it the key is not live */
	cas_submit(s, &c[0], STORE_DEL, "k", NULL, STORE_IF_SEQ, sB);
	cas_submit(s, &c[1], STORE_PUT, "k", "x", STORE_IF_SEQ, sB);
	cas_submit(s, &c[2], STORE_PUT, "k", "d", STORE_IF_SEQ, 0);
	cas_submit(s, &c[3], STORE_PUT, "k", "y", STORE_IF_SEQ, 0);
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(c[0].op.result, 0);
	CHECK_EQ(c[1].op.result, -ESTALE);
	CHECK_EQ(c[2].op.result, 0);
	CHECK_EQ(c[3].op.result, -ESTALE);
	CHECK(c[2].op.out.seq > c[0].op.out.seq);
	uint64_t sD = c[2].op.out.seq;
	expect_value(s, "k", "d", sD);

	/* After recovery (zone indexes, then a full scan) the seq GET returns
	 * still works. */
	s = reopen(s, &dev, false);
	expect_value(s, "k", "d", sD);
	CHECK_EQ(put_if(s, "k", "r1", sD + 1, &x), -ESTALE);
	uint64_t sR = 0;
	CHECK_EQ(put_if(s, "k", "r1", sD, &sR), 0);
	CHECK(sR > sD); /* next_seq recovered past every seq on disk */
	s = reopen(s, &dev, true);
	expect_value(s, "k", "r1", sR);
	CHECK_EQ(put_if(s, "k", "r2", sR, &x), 0);
	CHECK_EQ(put_if(s, "d", "x", sd2, &x), 0);
	store_close(s);
	dev_close(dev);
}

/* GC moves a value and a tombstone: same seq, IF_SEQ still decides by it. */
static void test_if_seq_gc(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 256 * 1024);
	uint64_t sv = put_seq(s, "cas", "value");
	uint64_t st0 = put_seq(s, "cas-del", "gone"), sdel = 0;
	CHECK_EQ(del_if(s, "cas-del", st0, &sdel), 0);
	uint64_t pv = key_payload(s, "cas"), pd = key_payload(s, "cas-del");
	static uint8_t v[800];
	struct store_stats st;
	uint64_t churn = 0, rng = test_seed(19);
	/* Overwrite random other keys (zones then die gradually, the oldest
	 * most: GC picks the one with most to gain) until GC has moved both. */
	for (; churn < 200000 && (key_payload(s, "cas") == pv || key_payload(s, "cas-del") == pd); churn++) {
		char k[32];
		uint64_t n = test_rand(&rng) % 8000;
		key_name(k, n);
		h_fill_value(v, sizeof(v), n, churn);
		CHECK_EQ(h_put(s, k, v, sizeof(v)), 0);
	}
	store_get_stats(s, &st);
	CHECK(st.gc_zones_reset > 0);
	CHECK(key_payload(s, "cas") != pv);
	CHECK(key_payload(s, "cas-del") != pd);
	CHECK(pl_tomb(key_payload(s, "cas-del")));
	fprintf(stderr, "if_seq gc: records moved after %llu writes, %llu zones collected\n",
		(unsigned long long)churn, (unsigned long long)st.gc_zones_reset);
	expect_value(s, "cas", "value", sv);
	uint64_t x = 0, sv2 = 0;
	CHECK_EQ(put_if(s, "cas", "v2", sv + 1, &x), -ESTALE);
	CHECK_EQ(put_if(s, "cas", "v2", sv, &sv2), 0);
	expect_value(s, "cas", "v2", sv2);
	CHECK_EQ(put_if(s, "cas-del", "back", sdel, &x), -ESTALE);
	CHECK_EQ(put_if(s, "cas-del", "back", 0, &x), 0);
	h_check_tombstones(s, "if_seq gc");
	store_close(s);
	dev_close(dev);
}

/* Pairs of IF_SEQ writes of one key submitted together, while GC moves
 * records under them (relocations fix the resolved location of writes
 * already queued): the first of each pair applies, the second fails with
 * -ESTALE, whatever GC did meanwhile; the seqs read back after reopen. */
struct pair_slot {
	struct cas_op a, b;
	char key[32];
	uint8_t va[400], vb[400];
	uint64_t n;
	uint32_t ver;
	bool del, busy;
};

static uint64_t *pair_seq; /* by key: seq of its live record, 0 = none */
static uint32_t *pair_ver; /* by key: version of its value */
static uint64_t pair_bad;

static void pair_account(struct pair_slot *sl)
{
	uint64_t n = sl->n;
	if (sl->a.op.result != 0 || sl->b.op.result != -ESTALE) {
		if (pair_bad++ < 10)
			fprintf(stderr, "pair on key %llu (%s, cond_seq %llu): results %d, %d\n", (unsigned long long)n,
				sl->del ? "del" : "put", (unsigned long long)pair_seq[n], sl->a.op.result,
				sl->b.op.result);
		return;
	}
	pair_seq[n] = sl->del ? 0 : sl->a.op.out.seq;
	if (!sl->del)
		pair_ver[n] = sl->ver;
}

static void test_if_seq_pairs(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 256 * 1024);
	enum { KEYS = 24000, QD = 64 };
	pair_seq = calloc(KEYS, sizeof(*pair_seq));
	pair_ver = calloc(KEYS, sizeof(*pair_ver));
	struct pair_slot *slots = calloc(QD, sizeof(*slots));
	CHECK(pair_seq && pair_ver && slots);
	uint64_t rng = test_seed(23), pairs = 0, target = 80000, dels = 0;
	for (uint64_t guard = 0;; guard++) {
		CHECK(guard < 100000000);
		bool any = false;
		for (unsigned i = 0; i < QD; i++) {
			struct pair_slot *sl = &slots[i];
			if (sl->busy) {
				if (sl->a.done + sl->b.done < 2) {
					any = true;
					continue;
				}
				pair_account(sl);
				sl->busy = false;
			}
			if (pairs >= target)
				continue;
			/* Slot i owns keys = i mod QD: its pair is the key's only writer. */
			uint64_t n = test_rand(&rng) % KEYS;
			n = n - n % QD + i;
			if (n >= KEYS)
				n -= QD;
			sl->n = n;
			key_name(sl->key, n);
			sl->del = pair_seq[n] && test_rand(&rng) % 8 == 0;
			dels += sl->del;
			uint32_t len = 200 + (uint32_t)(n % 200);
			sl->ver = (uint32_t)pairs + 1;
			h_fill_value(sl->va, len, n, sl->ver);
			h_fill_value(sl->vb, len, n, sl->ver + 1000000000ull);
			enum store_op_kind kind = sl->del ? STORE_DEL : STORE_PUT;
			sl->a = (struct cas_op){.op = {.kind = kind, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
						       .value = sl->del ? NULL : sl->va, .val_len = sl->del ? 0 : len,
						       .cond = STORE_IF_SEQ, .cond_seq = pair_seq[n], .done = cas_done}};
			sl->b = sl->a;
			sl->b.op.value = sl->del ? NULL : sl->vb;
			CHECK_EQ(store_submit(s, &sl->a.op), 0);
			CHECK_EQ(store_submit(s, &sl->b.op), 0);
			sl->busy = any = true;
			pairs++;
		}
		if (!any)
			break;
		CHECK(store_poll(s, true) >= 0);
	}
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(pair_bad, 0);
	struct store_stats st;
	store_get_stats(s, &st);
	fprintf(stderr, "if_seq pairs: %llu pairs (%llu deletes), %llu zones collected, %llu bytes relocated\n",
		(unsigned long long)pairs, (unsigned long long)dels, (unsigned long long)st.gc_zones_reset,
		(unsigned long long)st.gc_bytes_relocated);
	CHECK(st.gc_zones_reset > 10);
	for (int round = 0; round < 2; round++) {
		uint64_t live = 0;
		for (uint64_t n = 0; n < KEYS; n++) {
			char k[32];
			key_name(k, n);
			int rc = h_get(s, k, got);
			if (!pair_seq[n]) {
				CHECK_EQ(rc, -DV_ENOTFOUND);
				continue;
			}
			CHECK_EQ(rc, 0);
			CHECK_EQ(got->seq, pair_seq[n]);
			uint32_t len = 200 + (uint32_t)(n % 200);
			h_fill_value(buf, len, n, pair_ver[n]);
			CHECK_EQ(got->len, len);
			CHECK(memcmp(got->bytes, buf, len) == 0);
			live++;
		}
		store_get_stats(s, &st);
		CHECK_EQ(st.keys - st.tombstones, live);
		h_check_tombstones(s, "if_seq pairs");
		s = reopen(s, &dev, false);
	}
	/* one more compare-and-set per key on the recovered store */
	for (uint64_t n = 0; n < KEYS; n += 7) {
		char k[32];
		key_name(k, n);
		uint64_t x;
		CHECK_EQ(put_if(s, k, "z", pair_seq[n], &x), 0);
	}
	store_close(s);
	dev_close(dev);
	free(slots);
	free(pair_seq);
	free(pair_ver);
}

/* ---- the tombstone count ---- */

enum { T_ABSENT = 0, T_LIVE, T_TOMB };

static void tomb_check(struct store *s, const uint8_t *state, uint32_t keys, const char *what)
{
	uint64_t live = 0, tombs = 0;
	for (uint32_t n = 0; n < keys; n++) {
		live += state[n] == T_LIVE;
		tombs += state[n] == T_TOMB;
	}
	struct store_stats st;
	store_get_stats(s, &st);
	if (st.keys != live + tombs || st.tombstones != tombs)
		fprintf(stderr, "%s: stats %llu keys %llu tombstones, model %llu live %llu tombstones\n", what,
			(unsigned long long)st.keys, (unsigned long long)st.tombstones, (unsigned long long)live,
			(unsigned long long)tombs);
	CHECK_EQ(st.tombstones, tombs);
	CHECK_EQ(st.keys - st.tombstones, live);
	h_check_tombstones(s, what);
}

static void tomb_put(struct store *s, uint8_t *state, uint32_t n, uint64_t version)
{
	char k[32];
	key_name(k, n);
	uint32_t len = 300 + n % 300;
	h_fill_value(buf, len, n, version);
	CHECK_EQ(h_put(s, k, buf, len), 0);
	state[n] = T_LIVE;
}

static void tomb_del(struct store *s, uint8_t *state, uint32_t n)
{
	char k[32];
	key_name(k, n);
	CHECK_EQ(h_del(s, k), state[n] == T_LIVE ? 0 : -DV_ENOTFOUND);
	if (state[n] == T_LIVE)
		state[n] = T_TOMB;
}

/* stats.tombstones against a model through puts, deletes of present and
 * absent keys, re-puts of deleted keys, GC (running during the mix, and
 * once more at the end) and reopen from zone indexes and from a scan. */
static void test_tombstone_count(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 256 * 1024);
	enum { KEYS = 3000 };
	uint8_t *state = calloc(KEYS, 1);
	CHECK(state);
	tomb_check(s, state, KEYS, "empty");
	for (uint32_t n = 0; n < KEYS; n++)
		tomb_put(s, state, n, 1);
	tomb_check(s, state, KEYS, "puts");
	for (uint32_t n = 0; n < KEYS; n += 3)
		tomb_del(s, state, n);
	tomb_check(s, state, KEYS, "deletes");
	for (uint32_t n = 0; n < KEYS; n += 3)
		tomb_del(s, state, n); /* deleted: refused, nothing written */
	CHECK_EQ(h_del(s, "never-there"), -DV_ENOTFOUND);
	tomb_check(s, state, KEYS, "deletes of deleted and absent keys");
	for (uint32_t n = 0; n < KEYS; n += 6)
		tomb_put(s, state, n, 2);
	tomb_check(s, state, KEYS, "re-puts");
	/* A mix with GC under way. */
	uint64_t rng = test_seed(31);
	for (uint64_t i = 0; i < 40000; i++) {
		uint32_t n = (uint32_t)(test_rand(&rng) % KEYS);
		if (test_rand(&rng) % 3 == 0)
			tomb_del(s, state, n);
		else
			tomb_put(s, state, n, i + 3);
		if (i % 5000 == 0)
			tomb_check(s, state, KEYS, "mix");
	}
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.gc_zones_reset > 10);
	tomb_check(s, state, KEYS, "after the mix");
	s = reopen(s, &dev, false);
	tomb_check(s, state, KEYS, "reopen");
	s = reopen(s, &dev, true);
	tomb_check(s, state, KEYS, "reopen by scan");
	/* Collections after recovery move tombstones too. */
	for (int i = 0; i < 5; i++) {
		if (store_gc_start(s) <= 0)
			break;
		CHECK_EQ(store_drain(s), 0);
	}
	store_get_stats(s, &st);
	CHECK(st.gc_zones_reset > 0);
	tomb_check(s, state, KEYS, "gc after reopen");
	fprintf(stderr, "tombstones: %llu of %llu keys; %llu zones collected after reopen\n",
		(unsigned long long)st.tombstones, (unsigned long long)st.keys,
		(unsigned long long)st.gc_zones_reset);
	store_close(s);
	dev_close(dev);
	free(state);
}

/* ---- an event loop on a file device ---- */

/* Each slot runs PUT, GET, PUT, ... of its own keys, resubmitting its op
 * from done(); the loop calls store_poll(s, false) and then sleeps on the
 * device's notify eventfd while anything is pending. A stall (pending ops,
 * nothing signalled) fails after 10 s. */
struct el_slot {
	struct store_op op;
	struct store *s;
	char key[32];
	uint8_t val[1200];
	uint64_t n, left, rng;
	uint32_t version[8];
};

static uint64_t el_errors, el_done;

static void el_start(struct el_slot *sl);

static void el_done_fn(struct store_op *op)
{
	struct el_slot *sl = (struct el_slot *)op;
	el_done++;
	uint32_t len = 400 + (uint32_t)(sl->n * 37 % 800);
	if (op->kind == STORE_PUT) {
		el_errors += op->result != 0;
	} else {
		uint32_t ver = sl->version[sl->n % 8];
		h_fill_value(sl->val, len, sl->n, ver);
		el_errors += op->result != 0 || op->out.val_len != len || memcmp(op->out.value, sl->val, len) != 0;
	}
	if (sl->left > 0)
		el_start(sl); /* the same op again, from its done() */
}

static void el_start(struct el_slot *sl)
{
	sl->left--;
	bool get = sl->version[sl->n % 8] && test_rand(&sl->rng) % 2;
	if (!get) {
		sl->n = (sl->n - sl->n % 8) + test_rand(&sl->rng) % 8;
		key_name(sl->key, sl->n);
	}
	uint32_t len = 400 + (uint32_t)(sl->n * 37 % 800);
	sl->op = (struct store_op){.kind = get ? STORE_GET : STORE_PUT, .key = sl->key,
				   .key_len = (uint32_t)strlen(sl->key), .done = el_done_fn};
	if (!get) {
		sl->version[sl->n % 8] = (uint32_t)sl->left + 1;
		h_fill_value(sl->val, len, sl->n, sl->version[sl->n % 8]);
		sl->op.value = sl->val;
		sl->op.val_len = len;
	}
	CHECK_EQ(store_submit(sl->s, &sl->op), 0);
}

static void test_event_loop(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/dv_test_store_el_%d.img", test_tmpdir(), (int)getpid());
	unlink(path);
	struct dev *dev = NULL;
	int err = dev_open_path(&dev, path, &(struct dev_open_opts){.create_bytes = 16 * MiB});
	if (err) {
		fprintf(stderr, "event loop: skipped, dev_open_path(%s) -> %d\n", path, err);
		return;
	}
	struct store *s = NULL;
	struct store_config cfg = {.format_if_empty = true, .zone_bytes = 256 * 1024};
	CHECK_EQ(store_open(&s, dev, &cfg), 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	CHECK_EQ(dev_notify_fd(dev, efd), 0);
	enum { QD = 48, PER_SLOT = 1500 };
	struct el_slot *slots = calloc(QD, sizeof(*slots));
	CHECK(slots);
	for (unsigned i = 0; i < QD; i++) {
		slots[i].s = s;
		slots[i].n = (uint64_t)i * 8;
		slots[i].left = PER_SLOT;
		slots[i].rng = i + 1;
		el_start(&slots[i]);
	}
	uint64_t sleeps = 0;
	double t0 = test_now_s();
	for (uint64_t guard = 0;; guard++) {
		CHECK(guard < 10000000);
		CHECK(store_poll(s, false) >= 0);
		if (store_pending(s) == 0 && !store_gc_running(s))
			break;
		struct pollfd p = {.fd = efd, .events = POLLIN};
		int n = poll(&p, 1, 10000);
		if (n != 1)
			fprintf(stderr, "event loop: %u ops pending, gc %d, nothing signalled for 10 s\n",
				store_pending(s), store_gc_running(s));
		CHECK_EQ(n, 1);
		uint64_t v;
		CHECK_EQ(read(efd, &v, sizeof(v)), (long long)sizeof(v));
		sleeps++;
	}
	CHECK_EQ(el_errors, 0);
	CHECK_EQ(el_done, (uint64_t)QD * PER_SLOT);
	struct store_stats st;
	store_get_stats(s, &st);
	fprintf(stderr, "event loop: %llu ops, %llu sleeps on the eventfd, %llu zones collected, %.2fs\n",
		(unsigned long long)el_done, (unsigned long long)sleeps, (unsigned long long)st.gc_zones_reset,
		test_now_s() - t0);
	store_close(s);
	dev_close(dev);
	close(efd);
	free(slots);
	CHECK_EQ(unlink(path), 0);
}

/* A format over a medium holding an earlier store's records (its first
 * MiB zeroed, the rest as it was, resets that keep the bytes as a regular
 * file's do): none of them comes back. Every zone starts again at the same
 * generation with lower seqs, so before sb_format zeroed the zones of a
 * medium that is not new, recovery read on past the new store's tail into
 * the old records: 190 keys of the wiped store back and the 10 written
 * after the format lost (found with `dynvme serve` on a file). */
static void test_format_over_old_records(void)
{
	const uint64_t size = 64 * MiB;
	struct dev *dev;
	struct store *s;
	CHECK_EQ(dev_open_mem(&dev, size, &(struct dev_fault_plan){.seed = 1, .reset_keeps_bytes = true}), 0);
	struct store_config cfg = {.format_if_empty = true, .zone_bytes = 4 * MiB};
	CHECK_EQ(store_open(&s, dev, &cfg), 0);
	char k[16];
	memset(buf, 'O', 5000);
	for (unsigned i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "k%u", i);
		CHECK_EQ(h_put(s, k, buf, 5000), 0);
	}
	store_close(s);
	uint8_t *image = malloc(size);
	CHECK(image);
	memcpy(image, dev_mem_image(dev), size);
	dev_close(dev);
	memset(image, 0, MiB); /* the superblocks gone: the next open formats */
	CHECK_EQ(dev_open_mem_copy(&dev, image, size, &(struct dev_fault_plan){.seed = 2, .reset_keeps_bytes = true}), 0);
	free(image);
	CHECK(!dev_info(dev)->zero_filled);
	CHECK_EQ(store_open(&s, dev, &cfg), 0);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.keys, 0);
	memset(buf, 'N', 5000);
	for (unsigned i = 190; i < 200; i++) {
		snprintf(k, sizeof(k), "k%u", i);
		CHECK_EQ(h_put(s, k, buf, 5000), 0);
	}
	s = h_reopen_mem(s, &dev, &cfg);
	store_get_stats(s, &st);
	if (st.keys != 10)
		fprintf(stderr, "after the format and a restart: %llu keys, want 10\n", (unsigned long long)st.keys);
	CHECK_EQ(st.keys, 10);
	for (unsigned i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "k%u", i);
		int rc = h_get(s, k, got);
		if (i < 190) {
			CHECK_EQ(rc, -DV_ENOTFOUND);
		} else {
			CHECK_EQ(rc, 0);
			CHECK(got->len == 5000 && got->bytes[0] == 'N' && got->bytes[4999] == 'N');
		}
	}
	store_close(s);
	dev_close(dev);
}

int main(void)
{
	got = malloc(sizeof(*got));
	buf = malloc(DV_VALUE_BYTES_MAX);
	CHECK(got && buf);
	test_basic();
	test_recovery_equals_scan();
	test_scan();
	test_gc_concurrent();
	test_gc_pressure();
	test_gc_expired();
	test_full();
	test_if_seq();
	test_if_seq_expired();
	test_if_seq_gc();
	test_if_seq_pairs();
	test_tombstone_count();
	test_event_loop();
	test_format_over_old_records();
	free(got);
	free(buf);
	return 0;
}
