/* test_flush.c - FLUSH (store_flush.c) and the scan guarantee (store_scan.c).
 *
 * FLUSH: every key gone at once and for good (restarts, GC, recovery by
 * scan), ops before and after it ordered around it, O(1) on the device (a
 * bounded number of device writes, whatever the key count), zones reclaimed
 * without relocation, a full device flushed, the reserved key refused, and
 * power cuts at every device write around a flush: an acknowledged flush
 * never loses to a restart, an unacknowledged one is all or nothing.
 * Scan: a key live for the whole scan is visited, while other clients
 * overwrite it and other keys, delete and insert, and GC moves records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "harness.h"
#include "io/dev_mem.h"
#include "storage/store_int.h"
#include "testing.h"

#define KiB 1024ull
#define MiB (1024ull * 1024ull)

static uint64_t rng = 1;

static void key_name(char *out, char pfx, uint32_t n) { snprintf(out, 32, "%c%u", pfx, n); }

static struct store_stats stats(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st;
}

/* ---- async slots: ops submitted without waiting ---- */

struct slot {
	struct store_op op;
	char key[32];
	uint8_t val[512];
	bool busy;
	int result;
	uint64_t seq;
	int tag; /* caller's */
};

static void slot_done(struct store_op *op)
{
	struct slot *sl = (struct slot *)op;
	sl->busy = false;
	sl->result = op->result;
	sl->seq = op->out.seq;
}

/* Submit; a refusal (a failed store) completes the slot at once. */
static int slot_try(struct store *s, struct slot *sl, enum store_op_kind kind, const char *key, const void *val,
		    uint32_t len)
{
	CHECK(!sl->busy);
	memset(&sl->op, 0, sizeof(sl->op));
	snprintf(sl->key, sizeof(sl->key), "%s", key ? key : "");
	if (len)
		memcpy(sl->val, val, len);
	sl->op = (struct store_op){.kind = kind, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
				   .value = sl->val, .val_len = len, .done = slot_done};
	sl->busy = true;
	sl->result = 1;
	int err = store_submit(s, &sl->op);
	if (err) {
		sl->busy = false;
		sl->result = err;
	}
	return err;
}

static void slot_submit(struct store *s, struct slot *sl, enum store_op_kind kind, const char *key,
			const void *val, uint32_t len)
{
	CHECK_EQ(slot_try(s, sl, kind, key, val, len), 0);
}

static void wait_idle(struct store *s, struct slot *slots, unsigned n)
{
	for (unsigned round = 0;; round++) {
		bool busy = false;
		for (unsigned i = 0; i < n; i++)
			busy |= slots[i].busy;
		if (!busy)
			return;
		CHECK(store_poll(s, true) >= 0);
		CHECK(round < 10000000);
	}
}

/* ---- FLUSH ---- */

static void test_basic(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 1 * MiB);
	char k[32];
	for (uint32_t i = 0; i < 3000; i++) {
		key_name(k, 'a', i);
		CHECK_EQ(h_put(s, k, k, (uint32_t)strlen(k)), 0);
		if (i % 7 == 0)
			CHECK_EQ(h_del(s, k), 0);
	}
	CHECK(stats(s).keys > 0 && stats(s).tombstones > 0);
	struct dev_fault_stats before = dev_mem_stats(dev);
	uint64_t point = 0;
	CHECK_EQ(h_flush(s, &point), 0);
	struct dev_fault_stats after = dev_mem_stats(dev);
	/* O(1) on the device: its record's batch (and perhaps a zone opened
	 * for it: a superblock write), never a write per key. */
	CHECK(after.writes - before.writes <= 3);
	CHECK(point > 0);
	struct store_stats st = stats(s);
	CHECK_EQ(st.keys, 0);
	CHECK_EQ(st.tombstones, 0);
	CHECK_EQ(st.flushes, 1);
	CHECK_EQ(st.flush_seq, point);
	h_check_tombstones(s, "after flush");
	for (uint32_t i = 0; i < 3000; i += 97) {
		key_name(k, 'a', i);
		h_expect(s, k, NULL);
	}
	CHECK_EQ(h_del(s, "a1"), -DV_ENOTFOUND); /* absent: no tombstone written */
	CHECK_EQ(h_put_ex(s, "a2", "x", 1, 0, STORE_IF_ABSENT), 0); /* NX sees no key */
	CHECK_EQ(h_put(s, "b1", "new", 3), 0);
	h_expect(s, "b1", "new");
	h_expect(s, "a2", "x");
	CHECK_EQ(stats(s).keys, 2);
	/* The reserved key is the store's. */
	CHECK_EQ(h_put(s, STORE_FLUSH_KEY, "x", 1), -EINVAL);
	CHECK_EQ(h_del(s, STORE_FLUSH_KEY), -EINVAL);
	struct h_value *v = malloc(sizeof(*v));
	CHECK(v != NULL);
	CHECK_EQ(h_get(s, STORE_FLUSH_KEY, v), -EINVAL);
	/* Restart: the flush holds; what came after it stays. */
	struct store_config cfg = {0};
	s = h_reopen_mem(s, &dev, &cfg);
	CHECK_EQ(stats(s).keys, 2);
	CHECK_EQ(stats(s).flush_seq, point);
	key_name(k, 'a', 5);
	h_expect(s, k, NULL);
	h_expect(s, "b1", "new");
	h_expect(s, "a2", "x");
	h_check_tombstones(s, "after reopen");
	/* Recovery by scanning every zone agrees. */
	store_close(s);
	cfg.recover_by_scan = true;
	CHECK_EQ(store_open(&s, dev, &cfg), 0);
	CHECK_EQ(stats(s).keys, 2);
	key_name(k, 'a', 14);
	h_expect(s, k, NULL);
	struct store_check_report rep = h_check(dev, "after flush");
	CHECK_EQ(rep.damage, 0);
	/* A second flush: the newest point wins. */
	uint64_t point2 = 0;
	CHECK_EQ(h_flush(s, &point2), 0);
	CHECK(point2 > point);
	CHECK_EQ(h_put(s, "c1", "c", 1), 0);
	cfg.recover_by_scan = false;
	s = h_reopen_mem(s, &dev, &cfg);
	h_expect(s, "b1", NULL);
	h_expect(s, "c1", "c");
	CHECK_EQ(stats(s).keys, 1);
	free(v);
	store_close(s);
	dev_close(dev);
}

/* Ops submitted before a flush are done before it, ops submitted after it
 * see nothing from before, whatever the completion order. */
static void test_order(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 1 * MiB);
	CHECK_EQ(h_put(s, "old", "o", 1), 0);
	struct slot sl[8];
	memset(sl, 0, sizeof(sl));
	slot_submit(s, &sl[0], STORE_PUT, "before", "b", 1);
	slot_submit(s, &sl[1], STORE_GET, "old", NULL, 0);
	slot_submit(s, &sl[2], STORE_FLUSH, NULL, NULL, 0);
	slot_submit(s, &sl[3], STORE_GET, "old", NULL, 0);
	slot_submit(s, &sl[4], STORE_PUT, "after", "a", 1);
	slot_submit(s, &sl[5], STORE_GET, "before", NULL, 0);
	slot_submit(s, &sl[6], STORE_FLUSH, NULL, NULL, 0);
	slot_submit(s, &sl[7], STORE_PUT, "last", "l", 1);
	wait_idle(s, sl, 8);
	CHECK_EQ(sl[0].result, 0);
	CHECK_EQ(sl[1].result, 0);             /* before the flush: found */
	CHECK_EQ(sl[2].result, 0);
	CHECK_EQ(sl[3].result, -DV_ENOTFOUND); /* after it: gone */
	CHECK_EQ(sl[4].result, 0);
	CHECK_EQ(sl[5].result, -DV_ENOTFOUND); /* written before the flush */
	CHECK_EQ(sl[6].result, 0);
	CHECK_EQ(sl[7].result, 0);
	CHECK(sl[0].seq < sl[2].seq && sl[2].seq < sl[4].seq && sl[4].seq < sl[6].seq && sl[6].seq < sl[7].seq);
	h_expect(s, "after", NULL);
	h_expect(s, "last", "l");
	CHECK_EQ(stats(s).keys, 1);
	store_close(s);
	dev_close(dev);
}

/* After a flush GC reclaims the zones without relocating a record, and no
 * flushed key comes back after the zones are reused or after a restart. */
static void test_gc(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 12 * MiB, 512 * KiB);
	uint8_t val[300];
	char k[32];
	uint32_t n = 0;
	for (; stats(s).zones_empty > 5; n++) {
		key_name(k, 'a', n);
		h_fill_value(val, sizeof(val), n, 1);
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
	}
	uint64_t reloc0 = stats(s).gc_bytes_relocated, resets0 = stats(s).gc_zones_reset;
	CHECK_EQ(h_flush(s, NULL), 0);
	/* Write again until GC has reused every zone that held flushed data. */
	uint32_t zones = stats(s).zones_total;
	for (uint32_t i = 0; stats(s).gc_zones_reset < resets0 + zones; i++) {
		key_name(k, 'b', i % 200);
		h_fill_value(val, sizeof(val), i, 2);
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
		CHECK(i < 2000000);
	}
	struct store_stats st = stats(s);
	/* Only the 200 b keys (and the flush record) were ever worth moving. */
	CHECK(st.gc_bytes_relocated - reloc0 <= (uint64_t)zones * 210 * 400);
	for (uint32_t i = 0; i < n; i += 13) {
		key_name(k, 'a', i);
		h_expect(s, k, NULL);
	}
	CHECK_EQ(st.keys, 200);
	struct store_config cfg = {0};
	s = h_reopen_mem(s, &dev, &cfg);
	CHECK_EQ(stats(s).keys, 200);
	for (uint32_t i = 0; i < n; i += 13) {
		key_name(k, 'a', i);
		h_expect(s, k, NULL);
	}
	CHECK_EQ(h_check(dev, "gc after flush").damage, 0);
	store_close(s);
	dev_close(dev);
}

/* Zones only GC could not read (or with damaged records) are reclaimed
 * after a flush: their records are all dead, nothing needs reading. */
static void test_gc_unreadable_zone(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 12 * MiB, 512 * KiB);
	uint8_t val[300];
	char k[32];
	for (uint32_t n = 0; stats(s).zones_full < 4; n++) {
		key_name(k, 'a', n);
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
	}
	for (uint32_t z = 0; z < s->sb.zone_count; z++)
		if (s->sb.zones[z].state == ZONE_FULL)
			s->zrt[z].gc_failures = GC_FAILURES_MAX; /* as if its zone index could not be read */
	uint64_t resets0 = stats(s).gc_zones_reset;
	CHECK_EQ(h_flush(s, NULL), 0);
	for (uint32_t i = 0; stats(s).gc_zones_reset < resets0 + 4; i++) {
		key_name(k, 'b', i % 50);
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
		CHECK(i < 1000000);
	}
	store_close(s);
	dev_close(dev);
}

/* A device full of live data refuses writes; a flush still goes through
 * (it may use the zone kept for GC), and the device is writable again. */
static void test_full_device(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 4 * MiB, 256 * KiB);
	uint8_t val[1000];
	char k[32];
	int rc = 0;
	uint32_t n = 0;
	for (; n < 100000 && (rc = h_put(s, (key_name(k, 'a', n), k), val, sizeof(val))) == 0; n++)
		;
	CHECK_EQ(rc, -DV_EFULL);
	CHECK_EQ(h_flush(s, NULL), 0);
	for (uint32_t i = 0; i < 3 * n; i++) {
		key_name(k, 'b', i % (n / 2));
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
	}
	key_name(k, 'a', 1);
	h_expect(s, k, NULL);
	struct store_config cfg = {0};
	s = h_reopen_mem(s, &dev, &cfg);
	h_expect(s, k, NULL);
	CHECK_EQ(stats(s).keys, n / 2);
	store_close(s);
	dev_close(dev);
}

/* Power cut after every device write of a run around a flush: keys
 * acknowledged before the flush come back all or none, none once the
 * flush was acknowledged; writes acknowledged after it stay. */
struct cut_run {
	bool a_acked[40], b_acked[40];
	bool flush_acked;
};

static void cut_once(uint64_t cut_after, uint64_t seed, struct cut_run *run, uint64_t *writes_total)
{
	struct dev *dev;
	struct dev_fault_plan plan = {.seed = seed, .power_cut_after_writes = cut_after};
	CHECK_EQ(dev_open_mem(&dev, 8 * MiB, &plan), 0);
	struct store_config cfg = {.format_if_empty = true, .zone_bytes = 256 * KiB};
	struct store *s;
	int err = store_open(&s, dev, &cfg);
	memset(run, 0, sizeof(*run));
	if (err == 0) {
		char k[32];
		for (uint32_t i = 0; i < 40; i++) {
			key_name(k, 'a', i);
			run->a_acked[i] = h_put(s, k, k, (uint32_t)strlen(k)) == 0;
		}
		struct slot sl[42];
		memset(sl, 0, sizeof(sl));
		for (uint32_t i = 0; i < 20; i++) {
			key_name(k, 'b', i);
			slot_try(s, &sl[i], STORE_PUT, k, k, (uint32_t)strlen(k));
		}
		slot_try(s, &sl[20], STORE_FLUSH, NULL, NULL, 0);
		for (uint32_t i = 20; i < 40; i++) {
			key_name(k, 'b', i);
			slot_try(s, &sl[i + 1], STORE_PUT, k, k, (uint32_t)strlen(k));
		}
		for (unsigned round = 0; round < 100000; round++) {
			bool busy = false;
			for (unsigned i = 0; i < 41; i++)
				busy |= sl[i].busy;
			if (!busy)
				break;
			if (store_poll(s, true) < 0)
				break;
		}
		run->flush_acked = !sl[20].busy && sl[20].result == 0;
		for (uint32_t i = 0; i < 40; i++) {
			struct slot *x = &sl[i < 20 ? i : i + 1];
			run->b_acked[i] = !x->busy && x->result == 0;
			if (i >= 20 && run->b_acked[i])
				CHECK(run->flush_acked); /* held behind it */
		}
		store_close(s);
	}
	*writes_total = dev_mem_stats(dev).writes;
	/* Power back: a restart. */
	dev_mem_power_on(dev);
	struct store_config rc = {0};
	CHECK_EQ(store_open(&s, dev, &rc), 0);
	if (err) { /* cut during format: nothing acknowledged */
		store_close(s);
		dev_close(dev);
		return;
	}
	char k[32];
	unsigned a_back = 0, a_acked = 0;
	for (uint32_t i = 0; i < 40; i++) {
		key_name(k, 'a', i);
		struct h_value *v = malloc(sizeof(*v));
		CHECK(v != NULL);
		int r = h_get(s, k, v);
		CHECK(r == 0 || r == -DV_ENOTFOUND);
		a_back += r == 0;
		a_acked += run->a_acked[i];
		if (r == 0)
			CHECK(v->len == strlen(k) && memcmp(v->bytes, k, v->len) == 0);
		free(v);
	}
	if (run->flush_acked)
		CHECK_EQ(a_back, 0);
	else
		CHECK(a_back == 0 || a_back >= a_acked); /* all or nothing */
	for (uint32_t i = 20; i < 40; i++) {
		key_name(k, 'b', i);
		if (run->b_acked[i])
			h_expect(s, k, k);
	}
	if (a_back == 0 && a_acked > 0) /* the flush is durable: b0..b19 were before it */
		for (uint32_t i = 0; i < 20; i++)
			h_expect(s, (key_name(k, 'b', i), k), NULL);
	/* Reuse the zones (GC) and restart once more: nothing comes back. */
	uint8_t val[2000] = {0};
	for (uint32_t i = 0; i < 6000; i++) {
		key_name(k, 'c', i % 50);
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
	}
	struct store *s2 = h_reopen_mem(s, &dev, &rc);
	unsigned a_back2 = 0;
	for (uint32_t i = 0; i < 40; i++) {
		key_name(k, 'a', i);
		struct h_value *v = malloc(sizeof(*v));
		a_back2 += h_get(s2, k, v) == 0;
		free(v);
	}
	CHECK_EQ(a_back2, a_back);
	store_close(s2);
	dev_close(dev);
}

static void test_power_cuts(void)
{
	struct cut_run run;
	uint64_t total = 0;
	cut_once(0, 1, &run, &total); /* no cut: how many writes a run makes */
	CHECK(run.flush_acked);
	unsigned flush_seen = 0, flush_lost = 0;
	for (uint64_t cut = 1; cut <= total + 2; cut++) {
		uint64_t w;
		cut_once(cut, cut * 7919, &run, &w);
		flush_seen += run.flush_acked;
		flush_lost += !run.flush_acked;
	}
	CHECK(flush_seen > 0 && flush_lost > 0); /* cuts before and after it */
	printf("  power cuts at writes 1..%llu: flush acknowledged in %u, not in %u\n",
	       (unsigned long long)total + 2, flush_seen, flush_lost);
}

/* ---- the scan guarantee ---- */

enum { STABLE = 1500, CHURN = 800, SLOTS = 32 };

struct seen {
	uint32_t stable_seen[STABLE];
	uint64_t visits, bad;
	bool finished;
	int err;
};

static bool seen_visit(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	struct seen *c = arg;
	char k[40];
	CHECK(key_len < sizeof(k));
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	c->visits++;
	/* A value always holds its own key's name (every writer writes it). */
	c->bad += rec->val_len < key_len || memcmp(rec->value, key, key_len) != 0;
	if (k[0] == 's')
		c->stable_seen[atoi(k + 1)]++;
	return true;
}

static void seen_finish(void *arg, int err)
{
	struct seen *c = arg;
	c->finished = true;
	c->err = err;
}

/* Between two polls: overwrite stable keys (they stay live), delete and
 * insert churn keys, overwrite a hot key; GC runs on its own (little room). */
static void churn_step(struct store *s, struct slot *sl, uint32_t step)
{
	for (unsigned i = 0; i < SLOTS; i++) {
		if (sl[i].busy)
			continue;
		uint64_t r = test_rand(&rng);
		char k[32];
		uint32_t len = 200 + (uint32_t)(r % 300);
		switch (r >> 60) {
		case 0: case 1: case 2: case 3: case 4: case 5:
			key_name(k, 's', (uint32_t)(r >> 8) % STABLE);
			break;
		case 6:
			key_name(k, 's', step % 7); /* hot keys */
			break;
		default:
			key_name(k, 'c', (uint32_t)(r >> 8) % CHURN);
			break;
		}
		uint8_t val[512];
		memset(val, 'v', len);
		memcpy(val, k, strlen(k));
		bool del = k[0] == 'c' && (r & 1);
		slot_submit(s, &sl[i], del ? STORE_DEL : STORE_PUT, k, val, del ? 0 : len);
	}
}

static void fill_scan_store(struct store **s, struct dev **dev)
{
	h_open_mem(s, dev, 5 * MiB, 256 * KiB);
	char k[32];
	uint8_t val[512];
	for (uint32_t i = 0; i < STABLE; i++) {
		key_name(k, 's', i);
		memset(val, 'v', 300);
		memcpy(val, k, strlen(k));
		CHECK_EQ(h_put(*s, k, val, 300), 0);
	}
}

static void check_seen(const struct seen *c, const char *what)
{
	unsigned missed = 0;
	for (uint32_t i = 0; i < STABLE; i++)
		missed += c->stable_seen[i] == 0;
	if (missed)
		fprintf(stderr, "%s: %u of %u keys live for the whole scan were not visited\n", what, missed, STABLE);
	CHECK_EQ(missed, 0);
	CHECK_EQ(c->bad, 0);
}

static void test_scan_guarantee(void)
{
	struct store *s;
	struct dev *dev;
	fill_scan_store(&s, &dev);
	struct slot sl[SLOTS];
	memset(sl, 0, sizeof(sl));
	struct seen *c = calloc(1, sizeof(*c));
	CHECK(c != NULL);
	uint64_t reloc0 = stats(s).gc_bytes_relocated;
	CHECK_EQ(store_scan(s, 0, UINT64_MAX, seen_visit, seen_finish, c), 0);
	for (uint32_t step = 0; !c->finished; step++) {
		churn_step(s, sl, step);
		CHECK(store_poll(s, true) >= 0); /* one pass: writes between the scan's reads */
		CHECK(step < 1000000);
	}
	wait_idle(s, sl, SLOTS);
	CHECK_EQ(c->err, 0);
	CHECK(stats(s).gc_bytes_relocated > reloc0); /* GC moved records during the scan */
	check_seen(c, "one scan of the whole range");
	/* The same in bounded steps, as SCAN walks its cursor. */
	memset(c, 0, sizeof(*c));
	uint64_t cursor = 0, steps = 0;
	reloc0 = stats(s).gc_bytes_relocated;
	do {
		uint64_t hi = UINT64_MAX;
		c->finished = false;
		CHECK_EQ(store_scan_bounded(s, cursor, &hi, 24, seen_visit, seen_finish, c), 0);
		CHECK(hi >= cursor);
		for (uint32_t step = 0; !c->finished; step++) {
			churn_step(s, sl, step);
			CHECK(store_poll(s, true) >= 0);
			CHECK(step < 1000000);
		}
		CHECK_EQ(c->err, 0);
		cursor = hi + 1;
		steps++;
	} while (cursor != 0);
	wait_idle(s, sl, SLOTS);
	CHECK(steps > STABLE / 24); /* the bound narrowed the ranges */
	CHECK(stats(s).gc_bytes_relocated > reloc0);
	check_seen(c, "bounded steps");
	free(c);
	store_close(s);
	dev_close(dev);
}

/* A flush during a scan: the scan ends (no record from before it is
 * visited after it); keys written after the flush may be visited. */
static void test_scan_flush(void)
{
	struct store *s;
	struct dev *dev;
	fill_scan_store(&s, &dev);
	struct seen *c = calloc(1, sizeof(*c));
	CHECK(c != NULL);
	CHECK_EQ(store_scan(s, 0, UINT64_MAX, seen_visit, seen_finish, c), 0);
	for (int i = 0; i < 20; i++)
		CHECK(store_poll(s, false) >= 0);
	uint64_t before = c->visits;
	CHECK(!c->finished);
	CHECK_EQ(h_flush(s, NULL), 0);
	uint64_t at_flush = c->visits;
	CHECK_EQ(store_drain(s), 0);
	CHECK(c->finished);
	CHECK(at_flush >= before);
	CHECK_EQ(c->visits, at_flush);
	free(c);
	store_close(s);
	dev_close(dev);
}

int main(void)
{
	rng = test_seed(42);
	test_begin("basic");
	test_basic();
	test_end("basic");
	test_begin("order");
	test_order();
	test_end("order");
	test_begin("gc");
	test_gc();
	test_end("gc");
	test_begin("gc_unreadable_zone");
	test_gc_unreadable_zone();
	test_end("gc_unreadable_zone");
	test_begin("full_device");
	test_full_device();
	test_end("full_device");
	test_begin("power_cuts");
	test_power_cuts();
	test_end("power_cuts");
	test_begin("scan_guarantee");
	test_scan_guarantee();
	test_end("scan_guarantee");
	test_begin("scan_flush");
	test_scan_flush();
	test_end("scan_flush");
	return test_soft_failures() ? 1 : 0;
}
