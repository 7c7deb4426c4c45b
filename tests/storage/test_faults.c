/* test_faults.c - the engine on a device that lies: bit flips on write and
 * on read, lost writes, write EIO and power cuts that tear a write at
 * 512-byte granularity. The rules checked, over many seeds:
 * - no GET ever returns a value that was not written for that key (values
 *   carry key and version, checked byte for byte);
 * - every fault that damaged data is reported: a GET fails with
 *   -DV_ECORRUPT or -EIO, or store stats / store_check count it;
 * - a failed write is never acknowledged, and after a power cut every
 *   acknowledged write is back after recovery;
 * - the key and tombstone counts in stats match the index, also when GC
 *   meets records that fail their checksum: it keeps them (run_gc_damaged). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "harness.h"
#include "io/dev_mem.h"
#include "storage/store_int.h"
#include "testing.h"

#define MiB (1024u * 1024u)
enum { KEYS = 400 };

static struct h_value *got;
static uint8_t vbuf[8192];

static uint32_t vlen(uint32_t key, uint64_t version) { return 20 + (uint32_t)((key * 131 + version * 7) % 3000); }

static void make_value(uint32_t key, uint64_t version)
{
	h_fill_value(vbuf, vlen(key, version), key, version);
	memcpy(vbuf, &version, 8);
	memcpy(vbuf + 8, &key, 4);
}

static void key_name(char *k, uint32_t n) { sprintf(k, "fault-%u", n); }

/* A returned value must be some version written for this key, intact. */
static bool value_is_genuine(uint32_t key, const struct h_value *v, uint64_t *version)
{
	if (v->len < 12)
		return false;
	uint32_t k;
	memcpy(version, v->bytes, 8);
	memcpy(&k, v->bytes + 8, 4);
	if (k != key || v->len != vlen(key, *version))
		return false;
	make_value(key, *version);
	return memcmp(v->bytes, vbuf, v->len) == 0;
}

static struct store *reopen_clean(struct store *s, struct dev **dev)
{
	return h_reopen_mem(s, dev, &(struct store_config){0});
}

/* Every key reads back exactly its last acknowledged version; a key never
 * acknowledged reads as absent. */
static void check_acked(struct store *s, const uint64_t *acked, uint32_t keys)
{
	for (uint32_t key = 0; key < keys; key++) {
		char k[32];
		key_name(k, key);
		int rc = h_get(s, k, got);
		uint64_t version;
		if (!acked[key]) {
			CHECK_EQ(rc, -DV_ENOTFOUND);
			continue;
		}
		CHECK_EQ(rc, 0);
		CHECK(value_is_genuine(key, got, &version));
		CHECK_EQ(version, acked[key]);
	}
}

/* Damage the offline check reports, torn tails included. */
static uint64_t check_damage(struct dev *dev)
{
	struct store_check_report rep = h_check(dev, "faults");
	return rep.damage + rep.torn_tails;
}

/* Writes and reads with silent corruption (flips, lost writes): no wrong
 * value ever, and the damage shows up in errors, stats or the check. */
static void run_silent(uint64_t seed, bool flips, bool lost)
{
	struct dev *dev;
	struct store *s;
	h_open_mem(&s, &dev, 16 * MiB, 512 * 1024);
	struct dev_fault_plan plan = {.seed = seed, .write_flip_ppm = flips ? 30000 : 0,
				      .read_flip_ppm = flips ? 20000 : 0, .write_lost_ppm = lost ? 20000 : 0};
	dev_mem_set_plan(dev, &plan);
	uint64_t *acked = calloc(KEYS, sizeof(*acked));
	uint64_t rng = seed, wrong = 0, reported = 0, reads = 0;
	for (uint64_t i = 1; i <= 3000; i++) {
		uint32_t key = (uint32_t)(test_rand(&rng) % KEYS);
		char k[32];
		key_name(k, key);
		/* A write whose key's record does not verify (flipped on the
		 * medium, or twice in transit) is refused with -DV_ECORRUPT. */
		if (test_rand(&rng) % 2 && i % 7 == 0) {
			int rc = h_del(s, k);
			CHECK(rc == 0 || rc == -DV_ENOTFOUND || rc == -DV_EFATAL || rc == -EIO || rc == -DV_ECORRUPT);
			continue;
		}
		if (test_rand(&rng) % 2) {
			make_value(key, i);
			int rc = h_put(s, k, vbuf, vlen(key, i));
			if (rc == 0)
				acked[key] = i;
			else
				CHECK(rc == -DV_EFATAL || rc == -EIO || rc == -DV_ECORRUPT);
			continue;
		}
		int rc = h_get(s, k, got);
		reads++;
		uint64_t version;
		if (rc == 0) {
			wrong += !value_is_genuine(key, got, &version);
		} else if (rc == -DV_ECORRUPT || rc == -EIO) {
			reported++;
		} else {
			CHECK_EQ(rc, -DV_ENOTFOUND);
		}
	}
	struct dev_fault_stats fs = dev_mem_stats(dev);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(wrong, 0);
	uint64_t injected = fs.write_flip + fs.read_flip + fs.write_lost;
	CHECK(injected > 0);
	h_check_tombstones(s, "silent faults");
	/* Reopen on the same medium (faults off) and read everything once. */
	dev_mem_set_plan(dev, &(struct dev_fault_plan){0});
	s = reopen_clean(s, &dev);
	h_check_tombstones(s, "silent faults, reopened");
	uint64_t after_reported = 0;
	for (uint32_t key = 0; key < KEYS; key++) {
		char k[32];
		key_name(k, key);
		int rc = h_get(s, k, got);
		uint64_t version;
		if (rc == 0)
			CHECK(value_is_genuine(key, got, &version));
		else if (rc != -DV_ENOTFOUND)
			after_reported++;
	}
	store_get_stats(s, &st);
	store_close(s);
	uint64_t check = check_damage(dev);
	fprintf(stderr, "seed %llu flips %d lost %d: injected %llu (wflip %llu rflip %llu lost %llu); %llu reads, "
		"%llu reported errors; after reopen %llu errors, %u torn tails, %u bad zone indexes; check %llu\n",
		(unsigned long long)seed, flips, lost, (unsigned long long)injected,
		(unsigned long long)fs.write_flip, (unsigned long long)fs.read_flip, (unsigned long long)fs.write_lost,
		(unsigned long long)reads, (unsigned long long)reported, (unsigned long long)after_reported,
		st.recovery_torn_tails, st.recovery_bad_zone_indexes, (unsigned long long)check);
	/* Damage that stays on the medium must be visible somewhere. */
	if (fs.write_flip + fs.write_lost > 0)
		CHECK(reported + after_reported + st.recovery_torn_tails + st.recovery_bad_zone_indexes + check > 0);
	if (fs.read_flip > 0)
		CHECK(reported > 0 || st.corrupt_records > 0);
	dev_close(dev);
	free(acked);
}

/* Write EIO: the put fails, the store refuses later writes, reads go on,
 * and every acknowledged put is intact after reopening. */
static void run_eio(uint64_t seed)
{
	struct dev *dev;
	struct store *s;
	h_open_mem(&s, &dev, 16 * MiB, 512 * 1024);
	/* Seeds below 3 fail from the first writes on: superblock writes. */
	uint64_t after = seed % 10 < 3 ? seed % 10 : 20 + seed % 200;
	struct dev_fault_plan plan = {.seed = seed, .write_eio_ppm = 1000000, .faults_after_writes = after};
	dev_mem_set_plan(dev, &plan);
	uint64_t *acked = calloc(KEYS, sizeof(*acked));
	uint64_t rng = seed, failed = 0;
	for (uint64_t i = 1; i <= 1500; i++) {
		uint32_t key = (uint32_t)(test_rand(&rng) % KEYS);
		char k[32];
		key_name(k, key);
		make_value(key, i);
		int rc = h_put(s, k, vbuf, vlen(key, i));
		if (rc == 0) {
			CHECK_EQ(failed, 0); /* nothing is acknowledged after a failure */
			acked[key] = i;
		} else {
			CHECK(rc == -EIO || rc == -DV_EFATAL);
			failed++;
		}
	}
	CHECK(failed > 0);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.failed);
	/* Reads still work on a failed store. */
	for (uint32_t key = 0; key < KEYS; key++) {
		char k[32];
		key_name(k, key);
		int rc = h_get(s, k, got);
		uint64_t version;
		if (acked[key]) {
			CHECK_EQ(rc, 0);
			CHECK(value_is_genuine(key, got, &version) && version == acked[key]);
		}
	}
	dev_mem_set_plan(dev, &(struct dev_fault_plan){0});
	s = reopen_clean(s, &dev);
	check_acked(s, acked, KEYS);
	store_close(s);
	CHECK_EQ(check_damage(dev), 0);
	dev_close(dev);
	free(acked);
}

/* Read EIO while writes resolve their keys and GC relocates: a write whose
 * lookup read fails is refused and hands nothing on to the next write of
 * the key; a GC read error abandons the collection without dropping
 * anything. Afterwards every key reads back its last acknowledged value.
 * Without the location memo every overwrite reads (lookup failures are
 * certain); with it writes mostly resolve without a read. */
static void run_read_eio(uint64_t seed, bool memo)
{
	struct dev *dev;
	struct store *s;
	h_open_mem_cfg(&s, &dev, 8 * MiB, 256 * 1024, (struct store_config){.no_memo = !memo});
	struct dev_fault_plan plan = {.seed = seed, .read_eio_ppm = 30000};
	dev_mem_set_plan(dev, &plan);
	enum { N = 300 };
	uint64_t *acked = calloc(N, sizeof(*acked));
	uint64_t rng = seed, refused = 0;
	for (uint64_t i = 1; i <= 12000; i++) {
		uint32_t key = (uint32_t)(test_rand(&rng) % N);
		char k[32];
		key_name(k, key);
		make_value(key, i);
		int rc = h_put(s, k, vbuf, vlen(key, i));
		if (rc == 0)
			acked[key] = i;
		else {
			CHECK_EQ(rc, -EIO);
			refused++;
		}
	}
	struct store_stats st;
	store_get_stats(s, &st);
	struct dev_fault_stats fs = dev_mem_stats(dev);
	CHECK(fs.read_eio > 0 && (memo || refused > 0));
	CHECK(st.gc_zones_reset > 0);
	h_check_tombstones(s, "read EIO");
	dev_mem_set_plan(dev, &(struct dev_fault_plan){0});
	for (int round = 0; round < 2; round++) {
		check_acked(s, acked, N);
		s = reopen_clean(s, &dev);
	}
	if (seed % 4 == 0)
		fprintf(stderr, "read EIO seed %llu: %llu read errors, %llu writes refused, %llu zones collected\n",
			(unsigned long long)seed, (unsigned long long)fs.read_eio, (unsigned long long)refused,
			(unsigned long long)st.gc_zones_reset);
	store_close(s);
	dev_close(dev);
	free(acked);
}

/* Records damaged on the medium (a bit of the key flipped: the checksum
 * fails on every read) in zones GC collects: GC keeps them indexed (they
 * may hide older versions of their keys), counts them in corrupt_records
 * and damaged_kept, and leaves their zones alone; the damaged keys read as
 * -DV_ECORRUPT, before and after a restart, and the tombstone count does
 * not change. Writing the damaged keys again replaces them, after which GC
 * collects those zones and every key reads its new value. */
enum { GCD_KEYS = 240, GCD_CHURN_KEYS = 1500 };

/* Up to count overwrites of keys other than run_gc_damaged's (versions
 * from version0 on), until stats count damaged_kept damaged records kept;
 * returns the writes made. */
static uint64_t churn_other_keys(struct store *s, uint64_t *rng, uint64_t version0, uint64_t count,
				 uint64_t damaged_kept)
{
	struct store_stats st;
	store_get_stats(s, &st);
	uint64_t i = 0;
	for (; i < count && st.damaged_kept < damaged_kept; i++) {
		uint32_t key = GCD_KEYS + (uint32_t)(test_rand(rng) % GCD_CHURN_KEYS);
		char k[32];
		key_name(k, key);
		make_value(key, version0 + i);
		CHECK_EQ(h_put(s, k, vbuf, vlen(key, version0 + i)), 0);
		if (damaged_kept != UINT64_MAX)
			store_get_stats(s, &st);
	}
	return i;
}

static void run_gc_damaged(void)
{
	struct dev *dev;
	struct store *s;
	h_open_mem(&s, &dev, 8 * MiB, 256 * 1024);
	enum { N = GCD_KEYS };
	for (uint32_t n = 0; n < N; n++) {
		char k[32];
		key_name(k, n);
		make_value(n, 1);
		CHECK_EQ(h_put(s, k, vbuf, vlen(n, 1)), 0);
	}
	for (uint32_t n = 0; n < N; n += 2) {
		char k[32];
		key_name(k, n);
		CHECK_EQ(h_del(s, k), 0);
	}
	/* Damage every third key's record (values and tombstones). */
	uint64_t damaged = 0, damaged_tombs = 0;
	for (uint32_t n = 0; n < N; n += 3) {
		char k[32];
		key_name(k, n);
		uint64_t c[16];
		CHECK_EQ(index_lookup(s->index, store_key_hash(k, (uint32_t)strlen(k)), c, 16), 1);
		uint64_t off = s->sb.data_start + (uint64_t)pl_zone(c[0]) * s->sb.zone_bytes + pl_off(c[0]);
		dev_mem_flip_bit(dev, off + REC_HDR_BYTES, 0); /* first key byte */
		damaged++;
		damaged_tombs += pl_tomb(c[0]);
	}
	CHECK(damaged_tombs > 0 && damaged_tombs < damaged);
	/* Move the intact live values away, so the first zones hold mostly
	 * the damaged records and GC finds them worth collecting; then
	 * overwrite other keys at random until it has met every one. */
	for (uint32_t n = 1; n < N; n += 2) {
		if (n % 3 == 0)
			continue;
		char k[32];
		key_name(k, n);
		make_value(n, 2);
		CHECK_EQ(h_put(s, k, vbuf, vlen(n, 2)), 0);
	}
	struct store_stats st;
	store_get_stats(s, &st);
	uint64_t tombs0 = st.tombstones, rng = 5, i;
	CHECK_EQ(tombs0, N / 2);
	i = churn_other_keys(s, &rng, 3, 200000, damaged);
	store_get_stats(s, &st);
	fprintf(stderr, "gc damaged: %llu of %llu damaged records kept by GC after %llu writes (%llu tombstones)\n",
		(unsigned long long)st.damaged_kept, (unsigned long long)damaged, (unsigned long long)i,
		(unsigned long long)damaged_tombs);
	CHECK_EQ(st.damaged_kept, damaged);
	CHECK(st.corrupt_records >= damaged);
	CHECK_EQ(st.tombstones, tombs0);
	h_check_tombstones(s, "gc damaged");
	for (int round = 0; round < 2; round++) {
		for (uint32_t n = 0; n < N; n += 3) {
			char k[32];
			key_name(k, n);
			CHECK_EQ(h_get(s, k, got), -DV_ECORRUPT);
		}
		if (round == 0) {
			s = reopen_clean(s, &dev);
			h_check_tombstones(s, "gc damaged, reopened");
		}
	}
	/* After the restart GC finds them again; then writes replace them. */
	churn_other_keys(s, &rng, 300000, 200000, damaged);
	store_get_stats(s, &st);
	CHECK_EQ(st.damaged_kept, damaged);
	for (uint32_t n = 0; n < N; n += 3) {
		char k[32];
		key_name(k, n);
		make_value(n, 3);
		CHECK_EQ(h_put(s, k, vbuf, vlen(n, 3)), 0);
	}
	store_get_stats(s, &st);
	CHECK_EQ(st.damaged_kept, 0);
	uint64_t reset0 = st.gc_zones_reset;
	churn_other_keys(s, &rng, 600000, 20000, UINT64_MAX);
	store_get_stats(s, &st);
	CHECK(st.gc_zones_reset > reset0);
	s = reopen_clean(s, &dev);
	for (uint32_t n = 0; n < N; n++) {
		char k[32];
		key_name(k, n);
		int rc = h_get(s, k, got);
		uint64_t version;
		if (n % 3 == 0) {
			CHECK_EQ(rc, 0);
			CHECK(value_is_genuine(n, got, &version) && version == 3);
		} else if (n % 2 == 0) {
			CHECK_EQ(rc, -DV_ENOTFOUND);
		} else {
			CHECK_EQ(rc, 0);
			CHECK(value_is_genuine(n, got, &version) && version == 2);
		}
	}
	h_check_tombstones(s, "gc damaged, rewritten");
	store_close(s);
	dev_close(dev);
}

/* Two writes of one key in flight; the first one's lookup read fails. The
 * second must look the key up itself (not take "absent" from the failed
 * one): afterwards GET returns the second value and the index holds one
 * entry for the key. With the location memo the first write needs no read
 * (the memo knows the record it wrote before): both apply. */
static int rr_done_count;
static void rr_done(struct store_op *op) { rr_done_count++; (void)op; }

static void run_resolve_failure(bool memo)
{
	struct dev *dev;
	struct store *s;
	h_open_mem_cfg(&s, &dev, 8 * MiB, 256 * 1024, (struct store_config){.no_memo = !memo});
	CHECK_EQ(h_put(s, "k", "v0", 2), 0);
	dev_mem_set_plan(dev, &(struct dev_fault_plan){.seed = 1, .read_eio_ppm = 1000000});
	struct store_op a = {.kind = STORE_PUT, .key = "k", .key_len = 1, .value = "v1", .val_len = 2, .done = rr_done};
	struct store_op b = {.kind = STORE_PUT, .key = "k", .key_len = 1, .value = "v2", .val_len = 2, .done = rr_done};
	rr_done_count = 0;
	CHECK_EQ(store_submit(s, &a), 0);
	CHECK_EQ(store_submit(s, &b), 0);
	for (int i = 0; i < 1000 && rr_done_count == 0; i++)
		CHECK(store_poll(s, true) >= 0);
	dev_mem_set_plan(dev, &(struct dev_fault_plan){0});
	CHECK_EQ(store_drain(s), 0);
	CHECK_EQ(rr_done_count, 2);
	CHECK_EQ(a.result, memo ? 0 : -EIO);
	CHECK_EQ(b.result, 0);
	CHECK_EQ(h_get(s, "k", got), 0);
	CHECK(got->len == 2 && memcmp(got->bytes, "v2", 2) == 0);
	uint64_t *p;
	CHECK_EQ(h_index_payloads(s, &p), 1);
	free(p);
	store_close(s);
	dev_close(dev);
}

/* Power cut after N writes, tearing write N+1 per 512-byte sector. Async
 * load at queue depth so several writes are in flight when it happens. */
struct pc_slot {
	struct store_op op;
	char key[32];
	uint32_t n;
	uint64_t version;
	bool busy;
	uint8_t val[4096];
};
static uint64_t *pc_acked;

static void pc_done(struct store_op *op)
{
	struct pc_slot *sl = (struct pc_slot *)op;
	sl->busy = false;
	if (op->result == 0)
		pc_acked[sl->n] = sl->version;
}

static void run_power_cut(uint64_t seed)
{
	struct dev *dev;
	struct store *s;
	h_open_mem(&s, &dev, 16 * MiB, 256 * 1024);
	struct dev_fault_plan plan = {.seed = seed, .power_cut_after_writes = 10 + seed % 400};
	dev_mem_set_plan(dev, &plan);
	pc_acked = calloc(KEYS, sizeof(*pc_acked));
	enum { QD = 8 };
	struct pc_slot *slots = calloc(QD, sizeof(*slots));
	uint64_t rng = seed, version = 0;
	for (uint64_t guard = 0; guard < 100000 && !dev_mem_stats(dev).power_cut; guard++) {
		for (unsigned i = 0; i < QD; i++) {
			struct pc_slot *sl = &slots[i];
			if (sl->busy)
				continue;
			sl->n = (uint32_t)(test_rand(&rng) % (KEYS / QD)) * QD + i;
			sl->version = ++version;
			key_name(sl->key, sl->n);
			make_value(sl->n, version);
			uint32_t len = vlen(sl->n, version);
			memcpy(sl->val, vbuf, len < sizeof(sl->val) ? len : sizeof(sl->val));
			sl->op = (struct store_op){.kind = STORE_PUT, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
						   .value = sl->val, .val_len = len < sizeof(sl->val) ? len : 0,
						   .done = pc_done};
			if (len >= sizeof(sl->val))
				continue; /* keep values within the slot buffer */
			if (store_submit(s, &sl->op) == 0)
				sl->busy = true;
		}
		if (store_poll(s, true) < 0)
			break;
	}
	CHECK(dev_mem_stats(dev).power_cut);
	store_drain(s);
	struct dev_fault_stats fs = dev_mem_stats(dev);
	s = reopen_clean(s, &dev);
	for (uint32_t key = 0; key < KEYS; key++) {
		char k[32];
		key_name(k, key);
		int rc = h_get(s, k, got);
		uint64_t v;
		if (rc == 0)
			CHECK(value_is_genuine(key, got, &v) && v >= pc_acked[key]);
		else
			CHECK(rc == -DV_ENOTFOUND && pc_acked[key] == 0);
	}
	store_close(s);
	struct store_check_report rep = h_check(dev, "power cut");
	CHECK_EQ(rep.damage, 0); /* torn tails were cut by recovery */
	CHECK_EQ(rep.damage + rep.torn_tails, check_damage(dev)); /* a read-only check is repeatable */
	if (seed < 3)
		fprintf(stderr, "power cut seed %llu: torn sectors kept %llu lost %llu\n", (unsigned long long)seed,
			(unsigned long long)fs.torn_sectors_kept, (unsigned long long)fs.torn_sectors_lost);
	dev_close(dev);
	free(slots);
	free(pc_acked);
}

/* store_scan on a device whose reads fail or flip bits: a record it cannot
 * read (after re-reads) is never silently skipped: the scan visits every
 * other live key and finishes with -EIO, so a caller that must not miss a
 * key (the cluster's SCAN) asks another replica. Transient faults are
 * mostly absorbed by the re-reads; a device whose every read fails makes
 * the scan report it. */
struct fscan {
	bool *seen;
	uint32_t visited;
	int err;
	bool finished;
};

static bool fscan_visit(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	struct fscan *f = arg;
	unsigned n;
	char k[32];
	CHECK(key_len < sizeof(k));
	memcpy(k, key, key_len);
	k[key_len] = 0;
	CHECK(sscanf(k, "fault-%u", &n) == 1 && n < KEYS);
	f->seen[n] = true;
	f->visited++;
	(void)rec;
	return true;
}

static void fscan_finish(void *arg, int err)
{
	struct fscan *f = arg;
	f->err = err;
	f->finished = true;
}

/* A fresh store holding keys 0..KEYS-1 at version 1. */
static void open_filled(struct store **s, struct dev **dev)
{
	h_open_mem(s, dev, 8 * MiB, 256 * 1024);
	for (uint32_t key = 0; key < KEYS; key++) {
		char k[32];
		key_name(k, key);
		make_value(key, 1);
		CHECK_EQ(h_put(*s, k, vbuf, vlen(key, 1)), 0);
	}
}

static void run_scan_faults(uint64_t seed, uint32_t eio_ppm, uint32_t flip_ppm, unsigned *reported)
{
	struct dev *dev;
	struct store *s;
	open_filled(&s, &dev);
	dev_mem_set_plan(dev, &(struct dev_fault_plan){.seed = seed, .read_eio_ppm = eio_ppm, .read_flip_ppm = flip_ppm});
	bool seen[KEYS] = {false};
	struct fscan f = {.seen = seen};
	CHECK_EQ(store_scan(s, 0, UINT64_MAX, fscan_visit, fscan_finish, &f), 0);
	for (int i = 0; i < 100000 && !f.finished; i++)
		CHECK(store_poll(s, true) >= 0);
	CHECK(f.finished);
	struct dev_fault_stats fs = dev_mem_stats(dev);
	dev_mem_set_plan(dev, &(struct dev_fault_plan){0});
	uint32_t missed = 0;
	for (uint32_t key = 0; key < KEYS; key++)
		missed += !seen[key];
	if (missed)
		fprintf(stderr, "scan seed %llu (read eio %u, flip %u ppm): %u of %u keys missed, %llu+%llu faults, "
			"finish %d\n", (unsigned long long)seed, eio_ppm, flip_ppm, missed, KEYS,
			(unsigned long long)fs.read_eio, (unsigned long long)fs.read_flip, f.err);
	/* A missed key is always reported; a report is never without a cause. */
	CHECK(missed == 0 ? f.err == 0 || f.err == -EIO : f.err == -EIO);
	CHECK(f.err == 0 || fs.read_eio + fs.read_flip > 0);
	*reported += f.err == -EIO;
	store_close(s);
	dev_close(dev);
}

/* A store that fails (write EIO) while a scan runs: store_drain finishes
 * the scan too (its reads still work on a failed store), so its caller
 * gets finish() before it closes the store and frees what the scan uses. */
static void run_scan_then_fatal(void)
{
	struct dev *dev;
	struct store *s;
	open_filled(&s, &dev);
	bool seen[KEYS] = {false};
	struct fscan f = {.seen = seen};
	CHECK_EQ(store_scan(s, 0, UINT64_MAX, fscan_visit, fscan_finish, &f), 0);
	CHECK(store_poll(s, false) >= 0); /* the scan is reading */
	dev_mem_set_plan(dev, &(struct dev_fault_plan){.seed = 1, .write_eio_ppm = 1000000});
	struct store_op put = {.kind = STORE_PUT, .key = "x", .key_len = 1, .value = "v", .val_len = 1, .done = rr_done};
	rr_done_count = 0;
	CHECK_EQ(store_submit(s, &put), 0);
	CHECK_EQ(store_drain(s), -DV_EFATAL);
	CHECK_EQ(rr_done_count, 1);
	CHECK(put.result != 0);
	CHECK(f.finished);
	CHECK_EQ(f.err, 0);
	CHECK_EQ(f.visited, KEYS);
	dev_mem_set_plan(dev, &(struct dev_fault_plan){0});
	store_close(s);
	dev_close(dev);
}

int main(void)
{
	got = malloc(sizeof(*got));
	CHECK(got);
	uint64_t base = test_seed(1);
	for (uint64_t i = 0; i < 4; i++) {
		run_silent(base + i, true, false);
		run_silent(base + 100 + i, false, true);
		run_silent(base + 200 + i, true, true);
	}
	for (uint64_t i = 0; i < 10; i++)
		run_eio(base + i);
	for (uint64_t i = 0; i < 8; i++)
		run_read_eio(base + i, i % 4 == 3);
	run_resolve_failure(false);
	run_resolve_failure(true);
	run_gc_damaged();
	unsigned reported = 0;
	for (uint64_t i = 0; i < 8; i++)
		run_scan_faults(base + i, 20000, 20000, &reported);
	reported = 0;
	run_scan_faults(base, 1000000, 0, &reported); /* every read fails */
	CHECK_EQ(reported, 1);
	run_scan_then_fatal();
	for (uint64_t i = 0; i < 40; i++)
		run_power_cut(base + i);
	free(got);
	return 0;
}
