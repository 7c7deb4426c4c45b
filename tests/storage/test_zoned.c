/* test_zoned.c - the engine on zoned devices: writes only at each zone's
 * write pointer and within its capacity, so any write the engine placed
 * anywhere else fails the test (dev_mem counts it: zoned_rejects).
 *
 * Without DV_TEST_DEVICE (dev_mem's zoned mode, NVMe ZNS semantics):
 * - gc: GC and restarts under an overwrite load, on a device with a
 *   conventional zone for the superblocks, and on ZNS-like ones (no
 *   conventional zone: the superblock log in two sequential zones; zone
 *   capacity below the zone size; strict open/active limits of 4 and of 2);
 *   after every restart each key holds its last acknowledged value, the
 *   zones' write pointers agree with the engine's table, and no write was
 *   refused, none over a limit; the superblock log switched zones.
 * - power cuts that tear a write (30 seeds per geometry), recovery, check,
 *   more writes.
 * - sblog: a power cut at every step of the superblock log (each copy
 *   written: lost, or torn at 512-byte granularity; each finish and reset
 *   of a log zone: before or after it), each taken from a snapshot of the
 *   device at that step: recovery finds the newest durable copy (its seq
 *   equals the last one acknowledged, or the torn one if it survived whole),
 *   every acknowledged write is there, no zone lost its zone index, the
 *   check is clean, and the store goes on writing.
 * - refusals: a superblock log copy of another format version, or damaged,
 *   is refused and never formatted over; log zones without the magic are.
 * - conditions: zones the device reports read-only, offline, or with the
 *   write pointer behind the data (reset behind the engine's back), zones
 *   full on the superblock but still open on the device: counted, never
 *   written over or reset, the rest served; dynvme check reports them.
 * With DV_TEST_DEVICE=/dev/X (the tests/zns guest; DESTROYS its data):
 * - no argument: the gc load with restarts on the device (DV_ZONED_OPS
 *   writes per round, 3 rounds; default: twice the data capacity), with
 *   the write pointer and limit checks, then the offline check.
 * - `write`: format, DV_WRITER_PREFILL writes (so that GC runs), print each
 *   key's acknowledged version, then overwrite keys at queue depth 64 until
 *   killed (a power cut) or DV_WRITER_OPS writes, printing "ack KEY VERSION"
 *   for each acknowledged write and "writing N acked, ..." every 1000.
 * - `dump`: recover, print "have KEY VERSION" (0: absent) for every key
 *   after checking its value, check the zones' write pointers against what
 *   recovery decided, exit 1 on any mismatch. tests/zns/run.sh compares the
 *   two outputs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "harness.h"
#include "index/index.h"
#include "io/dev_mem.h"
#include "storage/store_int.h"
#include "testing.h"

#define KiB 1024ull
#define MiB (1024ull * 1024ull)
enum { KEYS = 3000, QD = 64 };

struct zslot {
	struct store_op op;
	char key[32];
	uint32_t n;
	uint64_t version;
	bool busy;
	uint8_t val[1024];
};

/* Per key: the last acknowledged version, and one submitted and not (yet)
 * acknowledged (a failed or cut-off write may still have landed). */
struct acks {
	uint64_t acked[KEYS];
	uint64_t sub[KEYS];
};

static struct acks *live; /* of the load running now */
static struct h_value *got;
static bool print_acks;  /* writer mode */
static struct store *writer_store;
static uint64_t acks_printed;

static uint32_t vlen(uint32_t n, uint64_t v) { return 16 + (uint32_t)((n * 7 + v * 13) % 1000); }

static void make_value(uint8_t *val, uint32_t n, uint64_t version)
{
	h_fill_value(val, vlen(n, version), n, version);
	memcpy(val, &version, 8); /* a value says which version it is */
	memcpy(val + 8, &n, 4);
}

static void zdone(struct store_op *op)
{
	struct zslot *sl = (struct zslot *)op;
	sl->busy = false;
	if (op->result != 0)
		return; /* sub[] keeps it: it may have landed */
	live->acked[sl->n] = sl->version;
	live->sub[sl->n] = 0;
	if (print_acks) {
		printf("ack %u %llu\n", sl->n, (unsigned long long)sl->version);
		if (++acks_printed % 1000 == 0) {
			struct store_stats st;
			store_get_stats(writer_store, &st);
			printf("writing %llu acked, %llu zones reset by GC, %u empty\n", (unsigned long long)acks_printed,
			       (unsigned long long)st.gc_zones_reset, st.zones_empty);
		}
	}
}

/* Overwrite random keys at QD; slot i owns keys = i mod QD, so each key has
 * one write in flight at most. Stops after ops or when the store fails. */
static void load(struct store *s, struct zslot *slots, uint64_t *rng, uint64_t *version, uint64_t ops)
{
	for (uint64_t done = 0, guard = 0; done < ops; guard++) {
		CHECK(guard < 100000000);
		for (unsigned i = 0; i < QD && done < ops; i++) {
			struct zslot *sl = &slots[i];
			if (sl->busy)
				continue;
			sl->n = (uint32_t)(test_rand(rng) % (KEYS / QD)) * QD + i;
			sl->version = ++*version;
			sprintf(sl->key, "z-%u", sl->n);
			make_value(sl->val, sl->n, sl->version);
			sl->op = (struct store_op){.kind = STORE_PUT, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
						   .value = sl->val, .val_len = vlen(sl->n, sl->version), .done = zdone};
			int rc = store_submit(s, &sl->op);
			if (rc == -DV_EFATAL)
				return;
			CHECK_EQ(rc, 0);
			live->sub[sl->n] = sl->version;
			sl->busy = true;
			done++;
		}
		if (store_poll(s, true) < 0)
			return;
		if (print_acks)
			fflush(stdout);
	}
}

static void slots_idle(struct zslot *slots)
{
	for (unsigned i = 0; i < QD; i++)
		slots[i].busy = false;
}

/* The version a value read back holds, 0 if it is not a genuine one. */
static uint64_t value_version(const struct h_value *v, uint32_t n)
{
	static uint8_t expect[1024];
	uint64_t version;
	uint32_t key;
	if (v->len < 16)
		return 0;
	memcpy(&version, v->bytes, 8);
	memcpy(&key, v->bytes + 8, 4);
	if (key != n || version == 0 || v->len != vlen(n, version))
		return 0;
	make_value(expect, n, version);
	return memcmp(v->bytes, expect, v->len) == 0 ? version : 0;
}

/* The version key n holds (0: absent); CHECKs its value is genuine. */
static uint64_t key_version(struct store *s, uint32_t n)
{
	char k[32];
	sprintf(k, "z-%u", n);
	int rc = h_get(s, k, got);
	if (rc == -DV_ENOTFOUND)
		return 0;
	CHECK_EQ(rc, 0);
	uint64_t v = value_version(got, n);
	if (v == 0)
		fprintf(stderr, "key %u: a value that is no version of it (%u bytes)\n", n, got->len);
	CHECK(v != 0);
	return v;
}

/* Every key holds its last acknowledged version, or the one submitted
 * after it when inflight_ok (a cut: then that one becomes acknowledged).
 * Keys in skip (may be NULL) may hold any earlier version or none. */
static void verify(struct store *s, struct acks *a, bool inflight_ok, const bool *skip)
{
	for (uint32_t n = 0; n < KEYS; n++) {
		uint64_t v = key_version(s, n);
		if (skip && skip[n]) {
			CHECK(v <= a->acked[n]);
			a->acked[n] = v;
			continue;
		}
		if (v == a->acked[n])
			continue;
		if (!(inflight_ok && a->sub[n] && v == a->sub[n]))
			fprintf(stderr, "key %u: version %llu, acknowledged %llu, in flight %llu\n", n,
				(unsigned long long)v, (unsigned long long)a->acked[n], (unsigned long long)a->sub[n]);
		CHECK(inflight_ok && a->sub[n] && v == a->sub[n]);
		a->acked[n] = v;
	}
	memset(a->sub, 0, sizeof(a->sub));
}

static struct store *open_store(struct dev *dev, const struct store_config *base)
{
	struct store_config cfg = base ? *base : (struct store_config){0};
	cfg.format_if_empty = true;
	struct store *s;
	int err = store_open(&s, dev, &cfg);
	if (err)
		fprintf(stderr, "store_open: %s\n", dv_strerror(err));
	CHECK_EQ(err, 0);
	return s;
}

/* The device's zones as the engine's table says they are (after a drain
 * or a recovery): EMPTY ones empty, FULL ones full, OPEN ones at the
 * engine's write pointer; the superblock log's current zone at its write
 * pointer. Returns the mismatches (printed). */
static unsigned zones_agree(struct store *s)
{
	unsigned bad = 0;
	if (!dev_info(s->dev)->zoned)
		return 0;
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		struct dev_zone dz;
		CHECK_EQ(dev_zone_report(s->dev, zone_base(s, z), &dz), 0);
		if (s->zrt[z].dev_issue)
			continue; /* reported, kept as the device has it */
		uint8_t st = s->sb.zones[z].state;
		bool ok = st == ZONE_EMPTY  ? dz.cond == DEV_ZONE_EMPTY
			  : st == ZONE_FULL ? dz.cond == DEV_ZONE_FULL
					    : (dz.cond == DEV_ZONE_EMPTY || dz.cond == DEV_ZONE_IMP_OPEN ||
					       dz.cond == DEV_ZONE_CLOSED) && dz.wp == s->zrt[z].wp;
		if (!ok) {
			fprintf(stderr, "zone %u: %s in the superblock (wp %llu), %s with wp %llu on the device\n", z,
				st == ZONE_EMPTY ? "EMPTY" : st == ZONE_FULL ? "FULL" : "OPEN",
				(unsigned long long)s->zrt[z].wp, dev_zone_cond_name(dz.cond), (unsigned long long)dz.wp);
			bad++;
		}
	}
	if (s->sbp.log && s->sbp.wp < s->sbp.log_cap) {
		struct dev_zone dz;
		CHECK_EQ(dev_zone_report(s->dev, s->sbp.log_off[s->sbp.cur], &dz), 0);
		if (dz.wp != s->sbp.wp) {
			fprintf(stderr, "superblock log zone %u: next copy at %llu, device write pointer %llu\n",
				s->sbp.cur, (unsigned long long)s->sbp.wp, (unsigned long long)dz.wp);
			bad++;
		}
	}
	return bad;
}

/* Active zones on the device now (open or closed). */
static uint32_t device_active(struct dev *dev)
{
	const struct dev_info *info = dev_info(dev);
	uint32_t n = 0;
	for (uint32_t z = info->conventional_zones; z < info->zone_count; z++) {
		struct dev_zone dz;
		CHECK_EQ(dev_zone_report(dev, (uint64_t)z * info->zone_bytes, &dz), 0);
		n += dz.cond == DEV_ZONE_IMP_OPEN || dz.cond == DEV_ZONE_EXP_OPEN || dz.cond == DEV_ZONE_CLOSED;
	}
	return n;
}

struct geo {
	const char *name;
	uint64_t size;
	struct dev_mem_zoned z;
};

static struct dev *geo_open(const struct geo *g)
{
	struct dev *dev;
	CHECK_EQ(dev_open_mem_zoned_opts(&dev, g->size, &g->z, NULL), 0);
	return dev;
}

/* Rounds of an overwrite load with a restart after each; every limit,
 * write pointer and value checked. Returns the zones GC reset. */
static uint64_t gc_rounds(struct dev *dev, const char *what, unsigned rounds, uint64_t ops, struct zslot *slots,
			  uint64_t *rng, uint64_t *version, uint64_t *sb_resets)
{
	const struct dev_info *info = dev_info(dev);
	uint32_t lim = info->max_open_zones;
	if (info->max_active_zones && (!lim || info->max_active_zones < lim))
		lim = info->max_active_zones;
	struct store *s = open_store(dev, NULL);
	struct store_stats st;
	uint64_t resets = 0;
	uint32_t peak = 0;
	*sb_resets = 0;
	double t0 = test_now_s();
	for (unsigned round = 0; round < rounds; round++) {
		load(s, slots, rng, version, ops);
		CHECK_EQ(store_drain(s), 0);
		verify(s, live, false, NULL);
		CHECK_EQ(zones_agree(s), 0);
		if (lim)
			CHECK(device_active(dev) <= lim);
		store_get_stats(s, &st);
		resets += st.gc_zones_reset;
		*sb_resets += st.sb_log_resets;
		peak = st.zones_open_peak > peak ? st.zones_open_peak : peak;
		if (lim) {
			CHECK(st.zones_open_peak + st.sb_log <= lim);
			CHECK_EQ(st.zones_open_limit, lim - st.sb_log);
		}
		store_close(s);
		s = open_store(dev, NULL);
		CHECK_EQ(zones_agree(s), 0);
		verify(s, live, false, NULL);
	}
	store_get_stats(s, &st);
	fprintf(stderr, "%s: %u rounds of %llu writes, %llu zones reset by GC, %llu superblock log switches, "
			"at most %u data zones open (limit %u), %.1f s\n",
		what, rounds, (unsigned long long)ops, (unsigned long long)resets, (unsigned long long)*sb_resets,
		peak, st.zones_open_limit, test_now_s() - t0);
	store_close(s);
	return resets;
}

static void test_gc(const struct geo *g, unsigned rounds, uint64_t ops, struct zslot *slots, uint64_t *rng,
		    bool want_sb_log)
{
	memset(live, 0, sizeof(*live));
	uint64_t version = 0, sb_resets;
	struct dev *dev = geo_open(g);
	uint64_t resets = gc_rounds(dev, g->name, rounds, ops, slots, rng, &version, &sb_resets);
	CHECK(resets > 10);
	CHECK(!want_sb_log || sb_resets >= 2);
	struct dev_fault_stats fs = dev_mem_stats(dev);
	CHECK_EQ(fs.zoned_rejects, 0);
	CHECK_EQ(fs.zone_limit_rejects, 0);
	CHECK_EQ(h_check(dev, g->name).damage, 0);
	dev_close(dev);
}

/* Power cuts: tear a write, power on, recover, check, go on writing. */
static void test_power_cuts(const struct geo *g, uint64_t seeds, struct zslot *slots, uint64_t *rng)
{
	uint64_t cuts = 0, torn = 0, version = 0;
	for (uint64_t seed = 1; seed <= seeds; seed++) {
		memset(live, 0, sizeof(*live));
		struct dev *dev = geo_open(g);
		struct store *s = open_store(dev, NULL);
		struct dev_fault_plan plan = {.seed = seed, .power_cut_after_writes = 20 + seed * 37 % 400};
		dev_mem_set_plan(dev, &plan);
		load(s, slots, rng, &version, 100000);
		CHECK(dev_mem_stats(dev).power_cut);
		cuts++;
		store_close(s); /* everything in flight fails */
		slots_idle(slots);
		dev_mem_power_on(dev);
		s = open_store(dev, NULL);
		struct store_stats st;
		store_get_stats(s, &st);
		torn += st.recovery_torn_tails;
		verify(s, live, true, NULL);
		CHECK_EQ(zones_agree(s), 0);
		CHECK_EQ(dev_mem_stats(dev).zoned_rejects, 0);
		load(s, slots, rng, &version, 3000); /* the store goes on after it */
		CHECK_EQ(store_drain(s), 0);
		verify(s, live, false, NULL);
		store_close(s);
		CHECK_EQ(h_check(dev, "zoned power cut").damage, 0);
		struct dev_fault_stats fs = dev_mem_stats(dev);
		CHECK_EQ(fs.zoned_rejects, 0);
		CHECK_EQ(fs.zone_limit_rejects, 0);
		dev_close(dev);
	}
	fprintf(stderr, "%s: %llu power cuts, torn tails recovered: %llu\n", g->name, (unsigned long long)cuts,
		(unsigned long long)torn);
}

/* ---- a power cut at every superblock log step ---- */

/* A device in front of a dev_mem that calls cut_step() before each step of
 * the superblock log (a write into a log zone, a finish or reset of one);
 * requests complete in order, synchronously, at poll. */
struct cutdev {
	struct dev base;
	struct dev *inner;
	struct dev_req *head, *tail;
	uint64_t log_lo, log_hi; /* device range of the two log zones */
	bool armed;
	uint64_t steps, switches;
	uint64_t last_seq; /* sb_seq of the last copy the device took */
};

static void cut_step(struct cutdev *c, bool is_write, const struct dev_req *req, uint64_t off, bool reset);

static const struct dev_ops cut_ops;

static int cut_submit(struct dev *dev, struct dev_req *req)
{
	struct cutdev *c = (struct cutdev *)dev;
	req->next = NULL;
	if (c->tail)
		c->tail->next = req;
	else
		c->head = req;
	c->tail = req;
	return 0;
}

static bool in_log(const struct cutdev *c, uint64_t off) { return off >= c->log_lo && off < c->log_hi; }

static int cut_poll(struct dev *dev, unsigned min_complete)
{
	struct cutdev *c = (struct cutdev *)dev;
	int done = 0;
	for (unsigned guard = 0; c->head; guard++) {
		CHECK(guard < 1000000);
		struct dev_req *req = c->head;
		c->head = req->next;
		if (!c->head)
			c->tail = NULL;
		bool log_write = req->op == DEV_WRITE && in_log(c, req->off);
		if (log_write && c->armed)
			cut_step(c, true, req, req->off, false);
		int err = req->op == DEV_READ ? dev_read_sync(c->inner, req->off, req->buf, req->len)
					      : dev_write_sync(c->inner, req->off, req->buf, req->len);
		req->res = err ? err : (int32_t)req->len;
		if (log_write && !err)
			memcpy(&c->last_seq, (const uint8_t *)req->buf + 24, 8);
		dev->in_flight--;
		req->done(req);
		done++;
	}
	(void)min_complete;
	return done;
}

static int cut_zone_reset(struct dev *dev, uint64_t off, uint64_t len)
{
	struct cutdev *c = (struct cutdev *)dev;
	if (c->armed && in_log(c, off))
		cut_step(c, false, NULL, off, true);
	return dev_zone_reset(c->inner, off, len);
}

static int cut_zone_finish(struct dev *dev, uint64_t off, uint64_t len)
{
	struct cutdev *c = (struct cutdev *)dev;
	if (c->armed && in_log(c, off))
		cut_step(c, false, NULL, off, false);
	return dev_zone_finish(c->inner, off, len);
}

static int cut_zone_report(struct dev *dev, uint64_t off, struct dev_zone *out)
{
	return dev_zone_report(((struct cutdev *)dev)->inner, off, out);
}

static int cut_clone(struct dev *dev, struct dev **out) { return -EOPNOTSUPP; }
static void cut_close(struct dev *dev) { free(dev); }

static const struct dev_ops cut_ops = {
	.submit = cut_submit, .poll = cut_poll, .zone_reset = cut_zone_reset, .zone_finish = cut_zone_finish,
	.zone_report = cut_zone_report, .clone = cut_clone, .close = cut_close,
};

static struct {
	uint64_t every;     /* cut at every every-th step (1: all) */
	uint64_t recovered, torn_whole;
	struct acks *a;     /* scratch copy of the acknowledgements */
	struct zslot *slots;
} sbc;

/* The state the device would be left in by a power cut at this step:
 * recover from it and check everything. lost: the step did not happen;
 * else a write is torn (each sector kept or lost), a zone op done. */
static void cut_recover(struct cutdev *c, struct dev *img, bool torn_write)
{
	/* What recovery must find: the copy last acknowledged, or the torn
	 * one when every sector of it survived. */
	struct store_config ro = {.read_only = true};
	struct store *s;
	CHECK_EQ(store_open(&s, img, &ro), 0);
	uint64_t seq = s->sb.sb_seq;
	store_close(s);
	if (seq != c->last_seq) {
		CHECK(torn_write && seq == c->last_seq + 1);
		sbc.torn_whole++;
	}
	memcpy(sbc.a, live, sizeof(*live));
	struct store_config small = {.memo_entries = 1024}; /* hundreds of stores: no 32 MiB memo each */
	s = open_store(img, &small);
	verify(s, sbc.a, true, NULL);
	CHECK_EQ(zones_agree(s), 0);
	for (uint32_t z = 0; z < s->sb.zone_count; z++) /* no sealed zone lost its index */
		CHECK(s->sb.zones[z].state != ZONE_FULL || s->sb.zones[z].footer_block != ZONE_NO_INDEX);
	sbc.recovered++;
	if (c->steps % 4) { /* every step: the above; every 4th, more writes and the offline check */
		store_close(s);
		return;
	}
	/* It goes on: enough writes for more superblock copies. */
	struct acks *saved = live;
	live = sbc.a;
	uint64_t rng = c->steps, version = 1ull << 40;
	load(s, sbc.slots, &rng, &version, 600);
	CHECK_EQ(store_drain(s), 0);
	live = saved;
	verify(s, sbc.a, false, NULL);
	store_close(s);
	CHECK_EQ(h_check(img, "superblock log cut").damage, 0);
	CHECK_EQ(dev_mem_stats(img).zoned_rejects, 0);
}

static void cut_step(struct cutdev *c, bool is_write, const struct dev_req *req, uint64_t off, bool reset)
{
	c->steps++;
	c->switches += reset;
	if (c->steps % sbc.every)
		return;
	for (int variant = 0; variant < 2; variant++) {
		struct dev *img;
		CHECK_EQ(dev_mem_snapshot(c->inner, &img), 0);
		if (variant == 1 && is_write) {
			/* Torn: a power cut during this very write. */
			struct dev_fault_plan plan = {.seed = c->steps, .power_cut_after_writes = dev_mem_stats(img).writes};
			CHECK(plan.power_cut_after_writes > 0);
			dev_mem_set_plan(img, &plan);
			CHECK(dev_write_sync(img, req->off, req->buf, req->len) == -EIO);
		} else if (variant == 1) {
			CHECK_EQ(reset ? dev_zone_reset(img, off, dev_info(img)->zone_bytes)
				       : dev_zone_finish(img, off, dev_info(img)->zone_bytes), 0);
		}
		dev_mem_power_on(img);
		cut_recover(c, img, variant == 1 && is_write);
		dev_close(img);
	}
}

static void test_sblog_cuts(const struct geo *g, uint64_t ops, struct zslot *slots, uint64_t *rng)
{
	memset(live, 0, sizeof(*live));
	sbc.every = getenv("DV_TEST_QUICK") && !strcmp(getenv("DV_TEST_QUICK"), "1") ? 5 : 1;
	sbc.recovered = sbc.torn_whole = 0;
	sbc.a = calloc(1, sizeof(*sbc.a));
	sbc.slots = calloc(QD, sizeof(*sbc.slots));
	CHECK(sbc.a && sbc.slots);
	struct cutdev *c = calloc(1, sizeof(*c));
	CHECK(c != NULL);
	c->inner = geo_open(g);
	c->base.ops = &cut_ops;
	c->base.info = *dev_info(c->inner);
	c->log_lo = (uint64_t)g->z.conventional_zones * g->z.zone_bytes;
	c->log_hi = c->log_lo + 2 * g->z.zone_bytes;
	double t0 = test_now_s();
	struct store *s = open_store(&c->base, NULL);
	CHECK(s->sbp.log);
	c->armed = true; /* a cut while formatting is not what this tests */
	uint64_t version = 0;
	load(s, slots, rng, &version, ops);
	CHECK_EQ(store_drain(s), 0);
	verify(s, live, false, NULL);
	c->armed = false;
	store_close(s);
	fprintf(stderr, "%s: %llu superblock log steps (%llu zone switches), a cut at every %llu: %llu recoveries, "
			"%llu torn copies that survived whole, %.1f s\n",
		g->name, (unsigned long long)c->steps, (unsigned long long)c->switches, (unsigned long long)sbc.every,
		(unsigned long long)sbc.recovered, (unsigned long long)sbc.torn_whole, test_now_s() - t0);
	CHECK(c->switches >= 2);
	CHECK(sbc.recovered >= 2 * (c->steps / sbc.every));
	dev_close(c->inner);
	dev_close(&c->base);
	free(sbc.a);
	free(sbc.slots);
}

/* ---- the device disagreeing with the superblock ---- */

static uint32_t key_zone(struct store *s, uint32_t n)
{
	char k[32];
	sprintf(k, "z-%u", n);
	uint64_t p[16];
	unsigned c = index_lookup(s->index, store_key_hash(k, (uint32_t)strlen(k)), p, 16);
	return c == 1 ? pl_zone(p[0]) : UINT32_MAX; /* shared fingerprints: unknown */
}

static void test_conditions(const struct geo *g, struct zslot *slots, uint64_t *rng)
{
	memset(live, 0, sizeof(*live));
	uint64_t version = 0;
	struct dev *dev = geo_open(g);
	struct store *s = open_store(dev, NULL);
	load(s, slots, rng, &version, 30000);
	CHECK_EQ(store_drain(s), 0);
	/* Three FULL zones and an EMPTY one, each to be made something else. */
	uint32_t full[4], nfull = 0, empty = UINT32_MAX;
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		if (s->sb.zones[z].state == ZONE_FULL && nfull < 4 && s->zrt[z].live_cost > 0)
			full[nfull++] = z;
		if (s->sb.zones[z].state == ZONE_EMPTY && empty == UINT32_MAX)
			empty = z;
	}
	CHECK(nfull == 4 && empty != UINT32_MAX);
	static bool lost[KEYS];
	for (uint32_t n = 0; n < KEYS; n++)
		lost[n] = key_zone(s, n) == full[1] || key_zone(s, n) == UINT32_MAX;
	uint64_t foot_end[4];
	for (unsigned i = 0; i < 4; i++)
		foot_end[i] = ((uint64_t)s->sb.zones[full[i]].footer_block + 1) * DV_BLOCK_BYTES;
	uint64_t base[4], empty_base = zone_base(s, empty);
	for (unsigned i = 0; i < 4; i++)
		base[i] = zone_base(s, full[i]);
	store_close(s);
	dev_mem_zone_set(dev, base[0], DEV_ZONE_READONLY, g->z.zone_cap ? g->z.zone_cap : g->z.zone_bytes);
	dev_mem_zone_set(dev, base[1], DEV_ZONE_OFFLINE, 0);
	dev_mem_zone_set(dev, base[2], DEV_ZONE_EMPTY, 0); /* reset behind the engine: the data still reads */
	dev_mem_zone_set(dev, base[3], DEV_ZONE_IMP_OPEN, foot_end[3]); /* sealed, never finished */
	dev_mem_zone_set(dev, empty_base, DEV_ZONE_READONLY, 0);
	s = open_store(dev, NULL);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.zones_unusable, 3);
	CHECK_EQ(st.zones_lost, 1);
	CHECK_EQ(st.zones_wp_mismatch, 1);
	CHECK_EQ(s->zrt[full[0]].dev_issue, ZONE_ISSUE_READONLY);
	CHECK_EQ(s->zrt[full[1]].dev_issue, ZONE_ISSUE_OFFLINE);
	CHECK_EQ(s->zrt[full[2]].dev_issue, ZONE_ISSUE_WP_BEHIND);
	struct dev_zone dz;
	CHECK_EQ(dev_zone_report(dev, base[3], &dz), 0);
	CHECK_EQ(dz.cond, DEV_ZONE_FULL); /* finished at recovery: no longer active */
	verify(s, live, false, lost);
	/* GC and writes go on around them, never touching them. */
	load(s, slots, rng, &version, 30000);
	CHECK_EQ(store_drain(s), 0);
	verify(s, live, false, NULL);
	CHECK_EQ(s->sb.zones[full[0]].state, ZONE_FULL);
	CHECK_EQ(s->sb.zones[full[2]].state, ZONE_FULL);
	CHECK_EQ(s->sb.zones[empty].state, ZONE_EMPTY);
	CHECK_EQ(zones_agree(s), 0);
	store_close(s);
	struct dev_fault_stats fs = dev_mem_stats(dev);
	CHECK_EQ(fs.zoned_rejects, 0);
	struct store_check_report rep;
	char *text = NULL;
	size_t len = 0;
	FILE *log = open_memstream(&text, &len);
	CHECK_EQ(store_check(dev, log, &rep), 0);
	fclose(log);
	CHECK_EQ(rep.zones_unusable, 3);
	CHECK_EQ(rep.zones_lost, 1);
	CHECK_EQ(rep.zones_wp_mismatch, 1);
	CHECK(rep.damage >= 2);
	CHECK(strstr(text, "offline: unreadable") && strstr(text, "read-only") && strstr(text, "write pointer behind"));
	free(text);
	dev_close(dev);
	fprintf(stderr, "conditions: read-only, offline and reset-behind zones reported and left alone\n");
}

/* A superblock log that is not this format's: refused, never formatted
 * over; nor is one without the magic anywhere (another use of the zones);
 * empty log zones are formatted. */
static void test_log_refusals(const struct geo *g)
{
	struct sb plan = {.zones = calloc(64, sizeof(struct zone_entry))};
	CHECK(plan.zones != NULL);
	CHECK_EQ(sb_plan(&plan, g->size, g->z.zone_bytes, g->z.zone_cap, 2 * g->z.zone_bytes), 0);
	uint32_t n = sb_bytes(plan.zone_count);
	uint8_t *copy = dev_buf_alloc(n);
	CHECK(copy != NULL);
	for (int c = 0; c < 4; c++) {
		struct dev *dev = geo_open(g);
		plan.sb_seq = 7;
		sb_encode(copy, &plan);
		if (c == 0)
			copy[16] = 9; /* version 9 */
		if (c == 1)
			copy[100] ^= 1; /* damaged */
		if (c == 2)
			memset(copy + 8, 0x5a, 8); /* no magic: not a dynvme superblock */
		/* At slot 1 of log zone 1, after a copy of zeroes; with a valid
		 * copy of this version in log zone 0 for another version (its
		 * copy beside ours is still refused). */
		uint8_t *zero = dev_buf_alloc(n), *ours = dev_buf_alloc(n);
		if (c < 3) { /* c == 3: nothing written, both log zones empty */
			CHECK_EQ(dev_write_sync(dev, g->z.zone_bytes, zero, n), 0);
			CHECK_EQ(dev_write_sync(dev, g->z.zone_bytes + n, copy, n), 0);
		}
		if (c == 0) {
			plan.sb_seq = 3;
			sb_encode(ours, &plan);
			CHECK_EQ(dev_write_sync(dev, 0, ours, n), 0);
		}
		dev_buf_free(zero);
		dev_buf_free(ours);
		struct store *s = NULL;
		struct store_config cfg = {.format_if_empty = true};
		int err = store_open(&s, dev, &cfg);
		/* Not a dynvme superblock in a log zone that is not empty: another
		 * program's data, never formatted over (review 1 S9). */
		int want[4] = {-DV_EVERSION, -DV_ECORRUPT, -DV_EFORMAT, 0};
		CHECK_EQ(err, want[c]);
		if (c < 3) {
			uint8_t *back = dev_buf_alloc(n);
			CHECK_EQ(dev_read_sync(dev, g->z.zone_bytes + n, back, n), 0);
			CHECK(memcmp(back, copy, n) == 0); /* not formatted over */
			dev_buf_free(back);
		} else {
			CHECK(s->sbp.log && s->sb.zone_count == plan.zone_count);
			store_close(s);
		}
		dev_close(dev);
	}
	dev_buf_free(copy);
	free(plan.zones);
	/* The fixed copies too: one of another version beside a valid one. */
	struct dev *dev;
	struct store *s;
	h_open_mem(&s, &dev, 8 * MiB, 256 * KiB);
	store_close(s);
	uint8_t *img = malloc(8 * MiB);
	CHECK(img != NULL);
	memcpy(img, dev_mem_image(dev), 8 * MiB);
	img[sb_bytes(DV_ZONE_COUNT_MAX) + 16] = 9;
	dev_close(dev);
	CHECK_EQ(dev_open_mem_copy(&dev, img, 8 * MiB, NULL), 0);
	CHECK_EQ(store_open(&s, dev, &(struct store_config){.format_if_empty = true}), -DV_EVERSION);
	CHECK(memcmp(dev_mem_image(dev), img, 8 * MiB) == 0);
	dev_close(dev);
	free(img);
	fprintf(stderr, "superblock log: another version, a damaged copy and a zone of other data refused, empty "
			"zones formatted; fixed copies: another version refused\n");
}

/* ---- on a real device ---- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static struct dev *open_device(const char *path)
{
	struct dev *dev;
	int err = dev_open_path(&dev, path, &(struct dev_open_opts){0});
	if (err)
		fprintf(stderr, "%s: %s\n", path, dv_strerror(err));
	CHECK_EQ(err, 0);
	return dev;
}

static struct store_config device_cfg(void)
{
	return (struct store_config){.zone_bytes = env_u64("DV_TEST_ZONE_BYTES", 2 * MiB)};
}

static int device_gc(const char *path, struct zslot *slots, uint64_t *rng)
{
	struct dev *dev = open_device(path);
	h_wipe(dev);
	struct store_config cfg = device_cfg();
	struct store *s = open_store(dev, &cfg);
	struct store_stats st;
	store_get_stats(s, &st);
	store_close(s);
	/* Twice the data space: GC must run. 560 bytes a record on average. */
	uint64_t ops = env_u64("DV_ZONED_OPS", 2 * (uint64_t)st.zones_total * st.zone_cap / 560);
	fprintf(stderr, "%s: %s zones, %u of %llu bytes holding %llu, superblock %s\n", path, st.zone_model,
		st.zones_total, (unsigned long long)st.zone_bytes, (unsigned long long)st.zone_cap,
		st.sb_log ? "log" : "copies");
	memset(live, 0, sizeof(*live));
	uint64_t version = 0, sb_resets = 0, resets = 0, user = 0, written = 0;
	uint32_t peak = 0;
	const struct dev_info *info = dev_info(dev);
	uint32_t lim = info->max_open_zones;
	if (info->max_active_zones && (!lim || info->max_active_zones < lim))
		lim = info->max_active_zones;
	s = open_store(dev, &cfg);
	double t0 = test_now_s();
	for (unsigned round = 0; round < 3; round++) {
		load(s, slots, rng, &version, ops);
		CHECK_EQ(store_drain(s), 0);
		verify(s, live, false, NULL);
		CHECK_EQ(zones_agree(s), 0);
		if (info->zoned && lim)
			CHECK(device_active(dev) <= lim);
		store_get_stats(s, &st);
		resets += st.gc_zones_reset;
		sb_resets += st.sb_log_resets;
		user += st.user_bytes;
		written += st.device_bytes_written;
		peak = st.zones_open_peak > peak ? st.zones_open_peak : peak;
		CHECK(!lim || st.zones_open_peak + st.sb_log <= lim);
		store_close(s);
		s = open_store(dev, &cfg);
		CHECK_EQ(zones_agree(s), 0);
		verify(s, live, false, NULL);
	}
	store_get_stats(s, &st);
	store_close(s);
	fprintf(stderr, "%s: 3 rounds of %llu writes, %llu zones reset by GC, %llu superblock log switches, at most "
			"%u data zones open (limit %u), write amplification %.2f, %.1f s\n",
		path, (unsigned long long)ops, (unsigned long long)resets, (unsigned long long)sb_resets,
		peak, st.zones_open_limit, user ? (double)written / (double)user : 0.0, test_now_s() - t0);
	CHECK(resets > 0);
	CHECK_EQ(h_check(dev, path).damage, 0);
	dev_close(dev);
	return 0;
}

/* The power-cut writer: DV_WRITER_PREFILL writes first (GC under way by
 * the time of the cut), then every key's acknowledged version, then every
 * acknowledgement as it comes, until the power goes. */
static int device_write(const char *path, struct zslot *slots, uint64_t *rng)
{
	struct dev *dev = open_device(path);
	h_wipe(dev);
	struct store_config cfg = device_cfg();
	struct store *s = open_store(dev, &cfg);
	writer_store = s;
	memset(live, 0, sizeof(*live));
	uint64_t version = 0;
	load(s, slots, rng, &version, env_u64("DV_WRITER_PREFILL", 0));
	CHECK_EQ(store_drain(s), 0);
	struct store_stats st;
	store_get_stats(s, &st);
	printf("writer: %s, prefilled %llu writes, %llu zones reset by GC\n", path, (unsigned long long)version,
	       (unsigned long long)st.gc_zones_reset);
	for (uint32_t n = 0; n < KEYS; n++)
		if (live->acked[n])
			printf("ack %u %llu\n", n, (unsigned long long)live->acked[n]);
	print_acks = true;
	load(s, slots, rng, &version, env_u64("DV_WRITER_OPS", 10000000));
	store_drain(s);
	printf("writer: finished %llu acknowledged writes without a cut\n", (unsigned long long)acks_printed);
	store_close(s);
	dev_close(dev);
	return 0;
}

static int device_dump(const char *path)
{
	struct dev *dev = open_device(path);
	struct store_config cfg = device_cfg();
	cfg.format_if_empty = false;
	struct store *s;
	int err = store_open(&s, dev, &cfg);
	if (err) {
		printf("dump: store_open: %s\n", dv_strerror(err));
		return 1;
	}
	struct store_stats st;
	store_get_stats(s, &st);
	uint64_t present = 0;
	for (uint32_t n = 0; n < KEYS; n++) {
		uint64_t v = key_version(s, n);
		present += v != 0;
		printf("have %u %llu\n", n, (unsigned long long)v);
	}
	unsigned bad = zones_agree(s);
	printf("dump: %llu of %u keys present; recovery: %u torn tails, %llu records, %u write pointer mismatches; "
	       "%u zones disagree with the device\n",
	       (unsigned long long)present, KEYS, st.recovery_torn_tails, (unsigned long long)st.recovered_records,
	       st.zones_wp_mismatch, bad);
	store_close(s);
	struct store_check_report rep = h_check(dev, path);
	dev_close(dev);
	printf("dump: check %s\n", rep.damage ? "DAMAGED" : "clean");
	return bad || st.zones_wp_mismatch || rep.damage ? 1 : 0;
}

int main(int argc, char **argv)
{
	got = malloc(sizeof(*got));
	live = calloc(1, sizeof(*live));
	struct zslot *slots = calloc(QD, sizeof(*slots));
	CHECK(got && live && slots);
	uint64_t rng = test_seed(3);
	const char *path = getenv("DV_TEST_DEVICE");
	if (path && *path) {
		int rc = argc > 1 && !strcmp(argv[1], "write") ? device_write(path, slots, &rng)
			 : argc > 1 && !strcmp(argv[1], "dump") ? device_dump(path)
								: device_gc(path, slots, &rng);
		free(slots);
		free(live);
		free(got);
		return rc;
	}
	/* Superblocks in a conventional zone; in the log of a ZNS-like device
	 * (capacity below size) with open/active limits 4, and 2 (one data
	 * zone at a time besides the log). */
	const struct geo conv = {"conventional zone", 32 * MiB, {.zone_bytes = MiB, .conventional_zones = 1}};
	const struct geo zns4 = {"zns 4/4", 20 * MiB,
				 {.zone_bytes = 512 * KiB, .zone_cap = 320 * KiB, .max_open = 4, .max_active = 4}};
	const struct geo zns2 = {"zns 2/2", 20 * MiB,
				 {.zone_bytes = 512 * KiB, .zone_cap = 320 * KiB, .max_open = 2, .max_active = 2}};
	test_gc(&conv, 3, 25000, slots, &rng, false);
	test_gc(&zns4, 3, 25000, slots, &rng, true);
	test_gc(&zns2, 3, 20000, slots, &rng, true);
	const struct geo conv2 = {"conventional zones", 16 * MiB, {.zone_bytes = 512 * KiB, .conventional_zones = 2}};
	test_power_cuts(&conv2, 30, slots, &rng);
	test_power_cuts(&zns4, 30, slots, &rng);
	const struct geo sblog = {"zns superblock log", 8 * MiB,
				  {.zone_bytes = 512 * KiB, .zone_cap = 256 * KiB, .max_open = 4, .max_active = 4}};
	test_sblog_cuts(&sblog, 22000, slots, &rng);
	test_conditions(&zns4, slots, &rng);
	test_log_refusals(&zns4);
	free(slots);
	free(live);
	free(got);
	return 0;
}
