/* test_regress.c - regression tests for the engine bugs of issue 8, each
 * named after the bug it catches. Most run the store on a shim device
 * (shim.h) in front of a memory device, to hold one operation's reads back
 * while others go on, or to flip a bit of one read in transit: orders and
 * faults dev.h allows and the friendly device never produced.
 *
 * - put_invisible_after_transit_flip: a write whose lookup read of its own
 *   record came back damaged took the key as absent and inserted a second
 *   index entry (PUT acknowledged, GET returned the old value; SET NX won
 *   on an existing key; DEL claimed the key absent).
 * - put_invisible_after_gc_moves: the same when GC moved the writer's own
 *   record more often than the retry limit while its lookup read was out.
 * - get_absent_after_gc_moves: a GET of an existing key answered "absent"
 *   when GC moved its record more often than the retry limit.
 * - get_sees_later_write: a GET whose record was replaced (tombstone) or
 *   moved by GC while its read was out looked up again and returned a write
 *   submitted after it (then: -EBUSY; now it reads GC's copy of the record
 *   it looked up; -EBUSY only once that version is gone: _after_collect).
 * - get_busy_on_earlier_write: a GET looking again after GC collected its
 *   record's zone answered -EBUSY on a write submitted before it (placed
 *   after the GET's lookup, so its seq was above the GET's horizon).
 * - gc_spins_on_full_device: GC counted a zone's index as reclaimable, so a
 *   device full of small live values collected forever and writes never got
 *   -DV_EFULL.
 * - deleted_value_back_after_corruption: GC dropped a damaged tombstone
 *   (or newest value), and after a restart the older value came back.
 * - damaged_key_stuck: one bit of rot in a key's newest record (in a zone
 *   GC has no reason to collect), then a restart: every write of the key
 *   failed with -DV_ECORRUPT for good (only GC's damaged table, empty
 *   after a restart, could tell whose the record is). Now an unconditional
 *   PUT or DEL replaces it; conditional writes still fail, deciding nothing.
 * - same_key_writes_one_flush_each: the key lock was held until a write was
 *   durable, so successive writes of one key waited for one batch write
 *   each (1000 pipelined SETs of one key: 1000 batch writes, 2.4 s on a
 *   file); _while_flushing: writes arriving while the key's previous write
 *   is being written are placed at once, behind it.
 * - submit_eagain_fails_store: a transient submit refusal (-EAGAIN/-EBUSY
 *   from a full submission ring) failed the store for good.
 * - scan_misses_moved_records: a scan skipped the records GC moved while
 *   it ran (their old location was no longer indexed): keys that were live
 *   throughout were never visited.
 * - recovery_cuts_open_zone_after_transit_flip: a restart whose scan of an
 *   open zone read one record with a bit flipped in transit took it for a
 *   torn tail and cut the zone there: acknowledged writes lost for good.
 * - recovery_drops_zone_index_after_transit_flip: the same flip on a zone
 *   index read counted it damaged and left the zone out of GC (both: also
 *   with two reads in a row flipped, which one re-read did not survive).
 * - recovery_fails_on_superblock_magic_flips / _superblock_flips /
 *   _transient_eio: a flip in transit on both superblock copies formatted
 *   the device (magic) or failed store_open (-DV_ECORRUPT); one transient
 *   read error failed store_open (-EIO).
 * - recovery_overflows_zone_index_entries: a zone index header read with
 *   its count flipped lower sized the entries, a clean second read of the
 *   whole index wrote past them (heap overflow, found by the model with
 *   --recovery-faults, seed 1252).
 * - gc_keeps_record_damaged_after_reread_flip: a record that verified on
 *   GC's chunk read and came back flipped on the chunk's re-read was kept
 *   as damaged (its zone never collected, conditions on its key refused).
 * - gc_gives_up_zone_on_transient_eio: transient read errors on a zone
 *   index counted as collection failures: after three the zone was never
 *   collected again.
 * - keylock_quadratic_pipelined_writes: each write queued behind a key's
 *   lock walked the whole chain of waiters (60,000 writes: 65 s).
 * - expiry_follows_injected_clock: every expiry decision takes the store's
 *   clock from store_config (the cluster simulator drives time).
 * - full_device_opens_many_times: a host that kept a per-start record (the
 *   cluster node's boot count) wrote it at every open into a fresh zone,
 *   as recovery seals the zone the last run left open: on a full device
 *   the second start found no zone. The host now keeps the open stamp
 *   (store_open_stamp, one superblock write): a full device opens again
 *   and again, power cuts at each of the open's writes included, the zone
 *   kept for GC untouched, every acknowledged key read back, stamps
 *   growing.
 * - open_with_a_log_zone_read_only: every open writes its stamp into the
 *   superblock; on a zoned device whose current superblock log zone had
 *   gone read-only that write went to it, failed, and the open failed
 *   (before stamps, a store with nothing to recover opened and served its
 *   reads). The next copy now goes to the other log zone: the store opens
 *   healthy, stamps higher, takes writes and opens again.
 * - cut_seal_leaks_zone: on a zoned device, an open cut at the zone index
 *   it wrote for the zone the last run left open (the torn block moved the
 *   write pointer), then an open that wrote the index after the torn block
 *   and was cut at its superblock write: the next open found the zone full
 *   on the device, looked for the index only right after the records and
 *   sealed the zone without one (ZONE_NO_INDEX), never collected. Each
 *   such pair of cuts leaked a zone, until a device with ~110 KB live
 *   refused every write with -DV_EFULL (a reviewer's open/cut loop). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/le.h"
#include "harness.h"
#include "io/dev_mem.h"
#include "shim.h"
#include "storage/store_int.h"
#include "testing.h"

#define MiB (1024u * 1024u)

static struct h_value *got;

/* A store on a shim in front of a memory device; restarts keep the medium. */
struct rig {
	struct dev *mem, *dev;
	struct store *s;
	struct store_config cfg;
};

static void rig_open(struct rig *r, uint64_t size, uint64_t zone_bytes, struct store_config cfg)
{
	CHECK_EQ(dev_open_mem(&r->mem, size, NULL), 0);
	r->dev = shim_open(r->mem);
	cfg.format_if_empty = true;
	cfg.zone_bytes = zone_bytes;
	r->cfg = cfg;
	CHECK_EQ(store_open(&r->s, r->dev, &r->cfg), 0);
}

/* A clean restart: the index is rebuilt from the medium, the memo is empty. */
static void rig_restart(struct rig *r)
{
	store_close(r->s);
	CHECK_EQ(store_open(&r->s, r->dev, &r->cfg), 0);
}

static void rig_close(struct rig *r)
{
	store_close(r->s);
	dev_close(r->dev);
	dev_close(r->mem);
}

/* ---- one operation driven by hand ---- */

struct aop {
	struct store_op op;
	bool done;
	uint8_t val[64];
	uint32_t len;
};

static void aop_done(struct store_op *op)
{
	struct aop *a = (struct aop *)op;
	a->done = true;
	a->len = 0;
	if (op->kind == STORE_GET && op->result == 0) {
		CHECK(op->out.val_len <= sizeof(a->val));
		memcpy(a->val, op->out.value, op->out.val_len);
		a->len = op->out.val_len;
	}
}

static void aop_submit(struct store *s, struct aop *a, enum store_op_kind kind, const char *k, const char *v,
		       enum store_cond cond)
{
	*a = (struct aop){.op = {.kind = kind, .key = k, .key_len = (uint32_t)strlen(k), .value = v,
				 .val_len = v ? (uint32_t)strlen(v) : 0, .cond = cond, .done = aop_done}};
	CHECK_EQ(store_submit(s, &a->op), 0);
}

static int aop_wait(struct store *s, struct aop *a)
{
	for (unsigned i = 0; !a->done; i++) {
		CHECK(i < 100000);
		CHECK(store_poll(s, true) >= 0);
	}
	return a->op.result;
}

/* Poll until the op is done or one of its requests is held by the shim. */
static void aop_until_held(struct rig *r, struct aop *a)
{
	for (unsigned i = 0; !a->done && shim_held(r->dev) == 0; i++) {
		CHECK(i < 100000);
		CHECK(store_poll(r->s, true) >= 0);
	}
}

static bool aop_value_is(const struct aop *a, const char *v)
{
	return a->op.result == 0 && a->len == strlen(v) && memcmp(a->val, v, a->len) == 0;
}

/* ---- white-box helpers ---- */

/* Index entries under the key's 64-bit hash (keys of the tests do not
 * share fingerprints); the payload of the first in *p. */
static unsigned key_entries(struct store *s, const char *k, uint64_t *p)
{
	uint64_t c[16];
	unsigned n = (unsigned)index_lookup(s->index, store_key_hash(k, (uint32_t)strlen(k)), c, 16);
	if (p)
		*p = n ? c[0] : NO_PAYLOAD;
	return n;
}

static uint64_t key_payload(struct store *s, const char *k)
{
	uint64_t p;
	CHECK_EQ(key_entries(s, k, &p), 1);
	return p;
}

/* Device offset of the record at payload p. */
static uint64_t payload_dev_off(struct store *s, uint64_t p)
{
	return s->sb.data_start + (uint64_t)pl_zone(p) * s->sb.zone_bytes + pl_off(p);
}

static uint64_t churn_rng = 1;

/* One overwrite of a random churn key (1.5 KiB values): zones fill with
 * garbage and GC runs; every zone keeps some live values, so a zone that
 * holds little else than the test's key is worth collecting. */
static void churn_once(struct store *s)
{
	static uint8_t v[1500];
	char k[32];
	uint64_t n = test_rand(&churn_rng) % 400;
	sprintf(k, "churn-%llu", (unsigned long long)n);
	h_fill_value(v, sizeof(v), n, churn_rng);
	CHECK_EQ(h_put(s, k, v, sizeof(v)), 0);
}

/* Churn until GC moved k's record (and, with until_reset, collected the
 * zone it was in: its generation changed). */
static void gc_move(struct store *s, const char *k, bool until_reset)
{
	uint64_t p0 = key_payload(s, k);
	uint32_t z = pl_zone(p0), gen0 = s->sb.zones[z].gen;
	for (unsigned i = 0; i < 100000; i++) {
		if (key_payload(s, k) != p0 && (!until_reset || s->sb.zones[z].gen != gen0))
			return;
		churn_once(s);
	}
	struct store_stats st;
	store_get_stats(s, &st);
	fprintf(stderr, "zone %u: state %u failures %u live cost %llu records %llu gen %u->%u; zones reset %llu\n", z,
		(unsigned)s->sb.zones[z].state, s->zrt[z].gc_failures, (unsigned long long)s->zrt[z].live_cost,
		(unsigned long long)s->zrt[z].rec_count, gen0, s->sb.zones[z].gen,
		(unsigned long long)st.gc_zones_reset);
	CHECK(!"GC did not move the record");
}

/* ---- 1: a write mistakes its own record for another key's ---- */

enum wkind { W_PUT, W_PUT_NX, W_DEL };

/* After a restart (memo empty) a write's lookup read of its own record
 * comes back with one bit flipped in transit (transient), or the record is
 * damaged on the medium (permanent). */
static void put_invisible_after_transit_flip(enum wkind kind, bool on_medium)
{
	struct rig r;
	rig_open(&r, 16 * MiB, 256 * 1024, (struct store_config){0});
	CHECK_EQ(h_put(r.s, "K", "v1", 2), 0);
	rig_restart(&r);
	uint64_t p = key_payload(r.s, "K");
	uint32_t in_block = (uint32_t)(pl_off(p) % DV_BLOCK_BYTES);
	struct aop w;
	if (on_medium)
		dev_mem_flip_bit(r.mem, payload_dev_off(r.s, p) + 16, 2); /* seq: covered by the checksum */
	else
		shim_flip_reads(r.dev, &w.op, 1, in_block + 16);
	aop_submit(r.s, &w, kind == W_DEL ? STORE_DEL : STORE_PUT, "K", kind == W_DEL ? NULL : "v2",
		   kind == W_PUT_NX ? STORE_IF_ABSENT : STORE_ALWAYS);
	int rc = aop_wait(r.s, &w);
	CHECK(on_medium || shim_flipped(r.dev) == 1);
	unsigned entries = key_entries(r.s, "K", NULL);
	if (entries != 1 || rc != 0)
		fprintf(stderr, "transit flip %d (medium %d): write returned %d, %u index entries for the key\n",
			kind, on_medium, rc, entries);
	CHECK_EQ(entries, 1);
	if (on_medium) {
		/* Damaged for good: the key in the record says it is K's, and
		 * the unconditional write replaces it (damaged_key_stuck). */
		CHECK_EQ(rc, 0);
		h_expect(r.s, "K", "v2");
	} else if (kind == W_PUT) {
		CHECK_EQ(rc, 0);
		h_expect(r.s, "K", "v2");
	} else if (kind == W_PUT_NX) {
		CHECK_EQ(rc, -EEXIST);
		h_expect(r.s, "K", "v1");
	} else {
		CHECK_EQ(rc, 0);
		h_expect(r.s, "K", NULL);
	}
	h_check_tombstones(r.s, "transit flip");
	rig_close(&r);
}

/* GC moves the writer's own record `moves` times while the writer's
 * lookup reads are held back (no memo: every lookup reads). The write may
 * be refused with -EBUSY once its bounded retries run out, but it never
 * leaves two entries or an acknowledged write that does not read back. */
static void put_invisible_after_gc_moves(unsigned moves)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){.no_memo = true});
	CHECK_EQ(h_put(r.s, "K", "v1", 2), 0);
	struct aop w;
	shim_hold(r.dev, &w.op);
	aop_submit(r.s, &w, STORE_PUT, "K", "v2", STORE_ALWAYS);
	aop_until_held(&r, &w);
	unsigned done_moves = 0;
	for (; done_moves < moves && !w.done; done_moves++) {
		gc_move(r.s, "K", false);
		shim_release(r.dev);
		aop_until_held(&r, &w);
	}
	shim_hold(r.dev, NULL);
	int rc = aop_wait(r.s, &w);
	unsigned entries = key_entries(r.s, "K", NULL);
	fprintf(stderr, "gc moves %u (%u done): write returned %d, %u index entries\n", moves, done_moves, rc,
		entries);
	CHECK_EQ(entries, 1);
	if (moves <= 2)
		CHECK_EQ(rc, 0);
	CHECK(rc == 0 || rc == -EBUSY);
	h_expect(r.s, "K", rc == 0 ? "v2" : "v1");
	h_check_tombstones(r.s, "gc moves");
	rig_restart(&r);
	CHECK_EQ(key_entries(r.s, "K", NULL), 1);
	h_expect(r.s, "K", rc == 0 ? "v2" : "v1");
	rig_close(&r);
}

/* ---- GETs while GC moves and writes replace ---- */

/* GC moves the record of an existing key `moves` times (collecting the
 * zone each time) while the GET's reads are held: never "absent". */
static void get_absent_after_gc_moves(unsigned moves)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0});
	CHECK_EQ(h_put(r.s, "K", "v1", 2), 0);
	struct aop g;
	shim_hold(r.dev, &g.op);
	aop_submit(r.s, &g, STORE_GET, "K", NULL, STORE_ALWAYS);
	aop_until_held(&r, &g);
	for (unsigned i = 0; i < moves && !g.done; i++) {
		gc_move(r.s, "K", true);
		shim_release(r.dev);
		aop_until_held(&r, &g);
	}
	shim_hold(r.dev, NULL);
	int rc = aop_wait(r.s, &g);
	fprintf(stderr, "get, gc moves %u: %d\n", moves, rc);
	if (moves <= 2)
		CHECK(aop_value_is(&g, "v1"));
	CHECK(aop_value_is(&g, "v1") || rc == -EBUSY);
	rig_close(&r);
}

enum later { L_PUT_OVER_TOMB, L_PUT_OVER_VALUE, L_PUT_AFTER_MOVE, L_DEL_AFTER_MOVE, L_NONE_AFTER_MOVE,
	     L_PUT_THEN_COLLECT };

/* Churn until zone z was collected (its generation changed). */
static void gc_collect(struct store *s, uint32_t z)
{
	uint32_t gen = s->sb.zones[z].gen;
	for (unsigned i = 0; i < 100000 && s->sb.zones[z].gen == gen; i++)
		churn_once(s);
	CHECK(s->sb.zones[z].gen != gen);
}

/* A GET submitted before a write never returns the write's effect. When GC
 * moved the record it looked up and collected its zone while its read was
 * out, it reads GC's copy (the moves ring): the version it looked up,
 * even once a later write replaced it. Only when that version is gone (a
 * later write replaced it before GC collected its zone) does it fail with
 * -EBUSY (L_PUT_THEN_COLLECT). */
static void get_sees_later_write(enum later what)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0});
	CHECK_EQ(h_put(r.s, "K", "v1", 2), 0);
	if (what == L_PUT_OVER_TOMB)
		CHECK_EQ(h_del(r.s, "K"), 0);
	uint32_t z = pl_zone(key_payload(r.s, "K"));
	struct aop g;
	shim_hold(r.dev, &g.op);
	aop_submit(r.s, &g, STORE_GET, "K", NULL, STORE_ALWAYS);
	aop_until_held(&r, &g);
	CHECK(!g.done);
	bool moved = what >= L_PUT_AFTER_MOVE && what != L_PUT_THEN_COLLECT;
	if (moved)
		gc_move(r.s, "K", true);
	if (what == L_DEL_AFTER_MOVE)
		CHECK_EQ(h_del(r.s, "K"), 0);
	else if (what != L_NONE_AFTER_MOVE)
		CHECK_EQ(h_put(r.s, "K", "v2", 2), 0); /* submitted after the GET, acknowledged */
	if (what == L_PUT_THEN_COLLECT)
		gc_collect(r.s, z); /* v1 is dead: GC drops it, its zone is reset */
	shim_hold(r.dev, NULL);
	int rc = aop_wait(r.s, &g);
	fprintf(stderr, "get then later write %d: GET returned %d%s%.*s\n", what, rc, rc == 0 ? " " : "",
		(int)g.len, (const char *)g.val);
	if (what == L_PUT_OVER_TOMB)
		CHECK_EQ(rc, -DV_ENOTFOUND);
	else if (what == L_PUT_THEN_COLLECT)
		CHECK_EQ(rc, -EBUSY); /* the version looked up is gone */
	else
		CHECK(aop_value_is(&g, "v1")); /* GC's copy of it */
	rig_close(&r);
}

/* A PUT submitted just before a GET is placed (given its seq) after the
 * GET looked up; GC collects the zone of the record the GET looked up while
 * its read is out, and the GET, looking again, finds the PUT's record: a
 * write submitted before it, which it may return (it answered -EBUSY when
 * the record's seq was at or above next_seq at its lookup). */
static void get_busy_on_earlier_write(void)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0});
	CHECK_EQ(h_put(r.s, "K", "v1", 2), 0);
	uint32_t z = pl_zone(key_payload(r.s, "K"));
	struct aop w, g;
	shim_hold(r.dev, &g.op);
	aop_submit(r.s, &w, STORE_PUT, "K", "v2", STORE_ALWAYS);
	aop_submit(r.s, &g, STORE_GET, "K", NULL, STORE_ALWAYS);
	CHECK_EQ(aop_wait(r.s, &w), 0); /* resolved from the memo, placed after the GET's lookup */
	CHECK(!g.done && shim_held(r.dev) == 1);
	CHECK(w.op.out.seq >= g.op.priv.read_horizon);
	gc_collect(r.s, z);
	shim_hold(r.dev, NULL);
	int rc = aop_wait(r.s, &g);
	fprintf(stderr, "get after an earlier write placed after its lookup, zone collected: GET returned %d%s%.*s\n",
		rc, rc == 0 ? " " : "", (int)g.len, (const char *)g.val);
	CHECK(aop_value_is(&g, "v2"));
	rig_close(&r);
}

/* ---- 2: GC spins on a device full of small live values ---- */

static uint32_t vlen_14(uint64_t n, uint64_t *rng) { return 14; }
static uint32_t vlen_300(uint64_t n, uint64_t *rng) { return 300; }
static uint32_t vlen_mixed(uint64_t n, uint64_t *rng)
{
	uint64_t x = test_rand(rng);
	return x % 4 == 0 ? 1 + (uint32_t)(x >> 8) % 6000 : 1 + (uint32_t)(x >> 8) % 200;
}

struct fslot {
	struct aop a;
	char key[32];
	uint64_t n, version;
	uint8_t val[6000];
};
static uint64_t *f_ver; /* by key: version stored (0: none) */
static uint64_t f_full, f_done;

static uint32_t f_len(uint64_t n, uint64_t version, uint32_t (*vlen)(uint64_t, uint64_t *))
{
	uint64_t x = n * 1000003 + version;
	return vlen(n, &x);
}

static void f_done_fn(struct store_op *op)
{
	struct fslot *sl = (struct fslot *)op;
	sl->a.done = true;
	f_done++;
	CHECK(op->result == 0 || op->result == -DV_EFULL);
	if (op->result == 0)
		f_ver[sl->n] = sl->version;
	else
		f_full++;
}

/* New keys and overwrites (a third), qd at a time, until the device is
 * full: writes keep completing (never more than 16 device sizes written
 * between two completions), the last ones with -DV_EFULL, and then a new
 * write fails at once; GC writes stay bounded, and everything acknowledged
 * reads back, also after a restart, when the device is still full. Slot i
 * writes keys i, i + qd, ...: one write per key in flight. */
static void gc_spins_on_full_device(uint64_t dev_bytes, unsigned qd, uint32_t (*vlen)(uint64_t, uint64_t *),
				    const char *what)
{
	struct rig r;
	rig_open(&r, dev_bytes, 256 * 1024, (struct store_config){0});
	enum { KEYS_MAX = 1 << 18, QD_MAX = 64 };
	CHECK(qd <= QD_MAX);
	f_ver = calloc(KEYS_MAX, sizeof(*f_ver));
	struct fslot *slots = calloc(QD_MAX, sizeof(*slots));
	uint64_t made[QD_MAX] = {0};
	f_full = f_done = 0;
	uint64_t rng = 7, version = 0, last_done = 0, written_at_done = 0;
	double t0 = test_now_s();
	for (unsigned i = 0; i < qd; i++)
		slots[i].a.done = true;
	for (uint64_t round = 0;; round++) {
		bool idle = true;
		for (unsigned i = 0; i < qd; i++) {
			struct fslot *sl = &slots[i];
			if (!sl->a.done) {
				idle = false;
				continue;
			}
			if (f_full || (made[i] + 1) * qd >= KEYS_MAX)
				continue;
			bool over = made[i] > 0 && test_rand(&rng) % 3 == 0;
			sl->n = i + qd * (over ? test_rand(&rng) % made[i] : made[i]++);
			sl->version = ++version;
			sprintf(sl->key, "full-%llu", (unsigned long long)sl->n);
			uint32_t len = f_len(sl->n, sl->version, vlen);
			h_fill_value(sl->val, len, sl->n, sl->version);
			sl->a = (struct aop){.op = {.kind = STORE_PUT, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
						    .value = sl->val, .val_len = len, .done = f_done_fn}};
			CHECK_EQ(store_submit(r.s, &sl->a.op), 0);
			idle = false;
		}
		if (idle)
			break;
		CHECK(store_poll(r.s, true) >= 0);
		uint64_t written = r.s->st.device_bytes_written; /* store_get_stats() walks the index */
		if (f_done != last_done) {
			last_done = f_done;
			written_at_done = written;
		} else if (written - written_at_done > 16 * dev_bytes || round > 50000000) {
			fprintf(stderr, "%s: no write done for %llu bytes written (%llu zones reset in all) after %llu PUTs\n",
				what, (unsigned long long)(written - written_at_done),
				(unsigned long long)r.s->st.gc_zones_reset, (unsigned long long)f_done);
			CHECK(!"a write never completes");
		}
	}
	struct store_stats st;
	store_get_stats(r.s, &st);
	double wa = (double)st.device_bytes_written / (double)(st.user_bytes ? st.user_bytes : 1);
	double gc_wa = (double)st.gc_bytes_relocated / (double)(st.user_bytes ? st.user_bytes : 1);
	fprintf(stderr, "%s, qd %u: %llu writes until -DV_EFULL, %.1f s, device bytes / record bytes %.2f, "
		"relocated / record bytes %.2f, %llu zones reset\n", what, qd, (unsigned long long)f_done,
		test_now_s() - t0, wa, gc_wa, (unsigned long long)st.gc_zones_reset);
	CHECK(f_full > 0);
	CHECK(st.gc_zones_reset > 0);
	/* Full stays full: a new write fails at once, nothing spins. */
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(h_put(r.s, "one-more", slots[0].val, 100), -DV_EFULL);
	/* GC writes at most a few times what user batches put on the device
	 * (with qd 1 each record is a batch padded to a block: 64 times the
	 * bytes of a 64-byte record, before any GC). */
	CHECK(st.gc_bytes_relocated < 4 * (st.device_bytes_written - st.gc_bytes_relocated));
	if (qd > 1)
		CHECK(wa < 10.0 && gc_wa < 5.0);
	/* Full means full: at least a quarter of the device holds live
	 * records (the rest: zone indexes, the zones kept for GC, superblocks,
	 * garbage not worth collecting). */
	uint64_t live = 0;
	for (uint32_t z = 0; z < r.s->sb.zone_count; z++)
		live += r.s->zrt[z].live_cost;
	CHECK(live > dev_bytes / 4);
	for (int round = 0; round < 2; round++) {
		for (unsigned i = 0; i < qd; i++)
			for (uint64_t j = 0; j < made[i]; j++) {
				uint64_t n = i + qd * j;
				char k[32];
				sprintf(k, "full-%llu", (unsigned long long)n);
				int rc = h_get(r.s, k, got);
				if (!f_ver[n]) {
					CHECK_EQ(rc, -DV_ENOTFOUND);
					continue;
				}
				CHECK_EQ(rc, 0);
				uint32_t len = f_len(n, f_ver[n], vlen);
				h_fill_value(slots[0].val, len, n, f_ver[n]);
				CHECK_EQ(got->len, len);
				CHECK(memcmp(got->bytes, slots[0].val, len) == 0);
			}
		rig_restart(&r);
	}
	CHECK_EQ(h_put(r.s, "after-restart", slots[0].val, 14), -DV_EFULL);
	rig_close(&r);
	free(slots);
	free(f_ver);
}

static void t_full_small(void) { gc_spins_on_full_device(4 * MiB, 32, vlen_14, "14-byte values"); }
static void t_full_300(void)
{
	gc_spins_on_full_device(4 * MiB, 32, vlen_300, "300-byte values");
	gc_spins_on_full_device(3 * MiB, 1, vlen_300, "300-byte values"); /* a batch per record */
}
static void t_full_mixed(void) { gc_spins_on_full_device(8 * MiB, 32, vlen_mixed, "mixed values"); }

/* ---- 4: a deleted value comes back after media corruption ---- */

/* Churn until GC met the damaged record and kept it. */
static void churn_until_damage_kept(struct store *s)
{
	struct store_stats st;
	for (unsigned i = 0; i < 100000; i++) {
		store_get_stats(s, &st);
		if (st.damaged_kept > 0)
			return;
		churn_once(s);
	}
	CHECK(!"GC never read the damaged record");
}

/* K's old value sits in a zone GC has no reason to collect (full of live
 * values that never change); K's newest record (a tombstone, or a newer
 * value) in a zone of churn is damaged on the medium. After GC met it and
 * after a restart, GET K must never return the old value: it fails with
 * -DV_ECORRUPT until K is written again; then the new value holds, also
 * once GC has collected the damaged record's zone and after a restart. */
static void deleted_value_back_after_corruption(bool newest_is_tombstone)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0});
	static uint8_t v[1500];
	CHECK_EQ(h_put(r.s, "K", "old", 3), 0);
	uint32_t old_zone = pl_zone(key_payload(r.s, "K"));
	for (uint32_t n = 0; n < 200; n++) { /* past the end of K's zone */
		char k[32];
		sprintf(k, "static-%u", n);
		h_fill_value(v, sizeof(v), n, 0);
		CHECK_EQ(h_put(r.s, k, v, sizeof(v)), 0);
	}
	for (unsigned i = 0; i < 400; i++) /* the active zone now holds churn only */
		churn_once(r.s);
	if (newest_is_tombstone)
		CHECK_EQ(h_del(r.s, "K"), 0);
	else
		CHECK_EQ(h_put(r.s, "K", "new", 3), 0);
	uint64_t p = key_payload(r.s, "K");
	CHECK(pl_zone(p) != old_zone);
	/* Sealed with its zone index: recovery of an open zone cannot tell a
	 * damaged record from a torn tail (see the docs' known gaps). */
	for (unsigned i = 0; i < 100000 && r.s->sb.zones[pl_zone(p)].state != ZONE_FULL; i++)
		churn_once(r.s);
	CHECK_EQ(r.s->sb.zones[pl_zone(p)].state, ZONE_FULL);
	dev_mem_flip_bit(r.mem, payload_dev_off(r.s, p) + 16, 3); /* seq: the checksum fails */
	rig_restart(&r); /* the memo, which knows the record, is gone */
	churn_until_damage_kept(r.s);
	int rc = h_get(r.s, "K", got);
	CHECK(rc != 0 || got->len != 3 || memcmp(got->bytes, "old", 3) != 0);
	rig_restart(&r);
	rc = h_get(r.s, "K", got);
	fprintf(stderr, "damaged %s: after GC and a restart GET K returned %d%s%.*s\n",
		newest_is_tombstone ? "tombstone" : "value", rc, rc == 0 ? " " : "", rc == 0 ? (int)got->len : 0,
		(const char *)got->bytes);
	CHECK_EQ(rc, -DV_ECORRUPT);
	CHECK(pl_zone(key_payload(r.s, "K")) == pl_zone(p)); /* its zone was not reset */
	CHECK_EQ(r.s->sb.zones[old_zone].state, ZONE_FULL);
	/* Before and after GC found the damaged record again, no condition
	 * can be judged on it; an unconditional write replaces it. */
	CHECK_EQ(h_put_ex(r.s, "K", "v3", 2, 0, STORE_IF_PRESENT), -DV_ECORRUPT);
	churn_until_damage_kept(r.s);
	/* Conditions cannot be judged on a damaged record. */
	CHECK_EQ(h_put_ex(r.s, "K", "v3", 2, 0, STORE_IF_ABSENT), -DV_ECORRUPT);
	CHECK_EQ(h_get(r.s, "K", got), -DV_ECORRUPT);
	CHECK_EQ(h_put(r.s, "K", "v3", 2), 0);
	h_expect(r.s, "K", "v3");
	CHECK_EQ(key_entries(r.s, "K", NULL), 1);
	h_check_tombstones(r.s, "damaged record replaced");
	/* Now GC may collect the damaged record's zone. */
	uint32_t z = pl_zone(p), gen = r.s->sb.zones[z].gen;
	for (unsigned i = 0; i < 100000 && r.s->sb.zones[z].gen == gen; i++)
		churn_once(r.s);
	CHECK(r.s->sb.zones[z].gen != gen);
	rig_restart(&r);
	h_expect(r.s, "K", "v3");
	h_check_tombstones(r.s, "damaged record replaced, restarted");
	rig_close(&r);
}

static void t_damaged_tomb(void) { deleted_value_back_after_corruption(true); }
static void t_damaged_value(void) { deleted_value_back_after_corruption(false); }

/* ---- E4: one flipped bit makes a key impossible to overwrite ---- */

enum rot { ROT_VALUE, ROT_KEY_LEN, ROT_TOMB, ROT_NO_RESTART };

/* K's newest record sits in a sealed zone of values that never change (GC
 * has no reason to collect it: it never meets the damage) and one bit of
 * it rots: in its value (the key in the record still says whose it is),
 * in its key length (whose it is cannot be read off it), or K's newest
 * record is a tombstone. Then a restart (ROT_NO_RESTART: none, and no
 * memo: the writes read the record). Conditional writes of K cannot be
 * judged and fail with -DV_ECORRUPT, deciding nothing; an unconditional
 * PUT or DEL replaces the damaged record, also after a restart, and the
 * older value of K never comes back. (The old engine failed every write
 * of K with -DV_ECORRUPT: GC's damaged table, empty after a restart, was
 * the only thing that could tell whose the record is.) */
static void damaged_key_stuck(enum rot rot)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){.no_memo = rot == ROT_NO_RESTART});
	static uint8_t v[1500];
	const char *newest = "NEWEST-VALUE-OF-K-0123456789";
	CHECK_EQ(h_put(r.s, "K", "old", 3), 0);
	for (uint32_t n = 0; n < 600; n++) { /* K's newest record in the middle */
		char k[32];
		sprintf(k, "static-%u", n);
		h_fill_value(v, sizeof(v), n, 0);
		CHECK_EQ(h_put(r.s, k, v, sizeof(v)), 0);
		if (n == 199)
			CHECK_EQ(rot == ROT_TOMB ? h_del(r.s, "K") : h_put(r.s, "K", newest, (uint32_t)strlen(newest)), 0);
	}
	uint64_t p = key_payload(r.s, "K");
	CHECK_EQ(r.s->sb.zones[pl_zone(p)].state, ZONE_FULL);
	uint64_t off = payload_dev_off(r.s, p);
	if (rot == ROT_VALUE || rot == ROT_NO_RESTART)
		dev_mem_flip_bit(r.mem, off + REC_HDR_BYTES + 1 + 3, 1); /* after the key "K" */
	else if (rot == ROT_KEY_LEN)
		dev_mem_flip_bit(r.mem, off + 32, 2); /* key_len 1 -> 5 */
	else
		dev_mem_flip_bit(r.mem, off + 16, 3); /* the tombstone's seq */
	if (rot != ROT_NO_RESTART)
		rig_restart(&r);
	CHECK_EQ(h_get(r.s, "K", got), -DV_ECORRUPT);
	/* Conditions cannot be judged on a record that does not read. */
	int nx = h_put_ex(r.s, "K", "v2", 2, 0, STORE_IF_ABSENT), xx = h_put_ex(r.s, "K", "v2", 2, 0, STORE_IF_PRESENT);
	int cas0 = h_write_cond(r.s, STORE_PUT, "K", "v2", 2, STORE_IF_SEQ, 0, NULL);
	int cas = h_write_cond(r.s, STORE_PUT, "K", "v2", 2, STORE_IF_SEQ, 1, NULL);
	int dcas = h_write_cond(r.s, STORE_DEL, "K", NULL, 0, STORE_IF_SEQ, 1, NULL);
	fprintf(stderr, "rot %d: conditional writes over the damaged record: NX %d, XX %d, IF_SEQ 0 %d, IF_SEQ %d, "
		"DEL IF_SEQ %d\n", rot, nx, xx, cas0, cas, dcas);
	CHECK(nx == -DV_ECORRUPT && xx == -DV_ECORRUPT && cas0 == -DV_ECORRUPT && cas == -DV_ECORRUPT &&
	      dcas == -DV_ECORRUPT);
	CHECK_EQ(h_get(r.s, "K", got), -DV_ECORRUPT); /* they wrote nothing */
	uint64_t tombs = h_check_tombstones(r.s, "damaged");
	if (rot != ROT_NO_RESTART)
		rig_restart(&r);
	int put = 0, del = 0;
	if (rot == ROT_VALUE || rot == ROT_NO_RESTART) {
		put = h_put(r.s, "K", "v3", 2);
		fprintf(stderr, "rot %d: PUT K over the damaged record: %d\n", rot, put);
		CHECK_EQ(put, 0);
		h_expect(r.s, "K", "v3");
		CHECK_EQ(h_check_tombstones(r.s, "damaged value replaced"), tombs);
	} else {
		/* A DEL says what it did: 0 over a value (hidden by its
		 * tombstone), -DV_ENOTFOUND over a tombstone (the index tells
		 * which), then a fresh tombstone over the damaged one. */
		del = h_del(r.s, "K");
		fprintf(stderr, "rot %d: DEL K over the damaged record: %d\n", rot, del);
		CHECK_EQ(del, rot == ROT_TOMB ? -DV_ENOTFOUND : 0);
		h_expect(r.s, "K", NULL);
		CHECK_EQ(h_check_tombstones(r.s, "damaged record deleted"), rot == ROT_TOMB ? tombs : tombs + 1);
	}
	CHECK_EQ(key_entries(r.s, "K", NULL), 1);
	rig_restart(&r);
	h_expect(r.s, "K", rot == ROT_VALUE || rot == ROT_NO_RESTART ? "v3" : NULL);
	/* The key is like any other again. */
	CHECK_EQ(h_put_ex(r.s, "K", "v4", 2, 0, rot == ROT_VALUE || rot == ROT_NO_RESTART ? STORE_IF_PRESENT
											    : STORE_IF_ABSENT), 0);
	rig_restart(&r);
	h_expect(r.s, "K", "v4");
	CHECK_EQ(key_entries(r.s, "K", NULL), 1);
	rig_close(&r);
}

static void t_rot_value(void) { damaged_key_stuck(ROT_VALUE); }
static void t_rot_key_len(void) { damaged_key_stuck(ROT_KEY_LEN); }
static void t_rot_tomb(void) { damaged_key_stuck(ROT_TOMB); }
static void t_rot_no_restart(void) { damaged_key_stuck(ROT_NO_RESTART); }

/* ---- GC trusts no single read either ---- */

/* GC reads the zone of K (1 KiB) and R (5 KiB, on blocks of its own): the
 * chunk read comes back with a bit of R flipped, and the next read that
 * covers K (the old engine read the whole chunk again) with a bit of K
 * flipped. Both records are intact on the medium: GC must move both and
 * collect the zone, never keep K as damaged (or drop it) for a flip on a
 * read after one that verified. */
static void gc_keeps_record_damaged_after_reread_flip(void)
{
	struct rig r;
	rig_open(&r, 3 * MiB, 256 * 1024, (struct store_config){0}); /* 8 zones: GC soon takes K's */
	static uint8_t v[5000];
	h_fill_value(v, sizeof(v), 1, 1);
	CHECK_EQ(h_put(r.s, "K", v, 1000), 0);
	CHECK_EQ(h_put(r.s, "R", v, sizeof(v)), 0);
	uint64_t pk = key_payload(r.s, "K"), pr = key_payload(r.s, "R");
	uint32_t z = pl_zone(pk);
	CHECK(pl_zone(pr) == z && pl_off(pr) / DV_BLOCK_BYTES > pl_off(pk) / DV_BLOCK_BYTES);
	for (unsigned i = 0; i < 100000 && r.s->sb.zones[z].state != ZONE_FULL; i++)
		churn_once(r.s);
	CHECK_EQ(r.s->sb.zones[z].state, ZONE_FULL);
	shim_flip_reads_at(r.dev, payload_dev_off(r.s, pr) + 20, 1);
	shim_flip_reads_at_after(r.dev, payload_dev_off(r.s, pk) + 20, 1, 1);
	uint32_t gen = r.s->sb.zones[z].gen;
	struct store_stats st;
	for (unsigned i = 0; i < 100000 && r.s->sb.zones[z].gen == gen; i++) {
		store_get_stats(r.s, &st);
		if (st.damaged_kept > 0 || r.s->zrt[z].gc_failures > 0)
			break;
		churn_once(r.s);
	}
	store_get_stats(r.s, &st);
	fprintf(stderr, "gc with flips in transit: %u reads flipped, %llu records kept as damaged, zone %u %s (failures %u, state %u)\n",
		shim_flipped(r.dev), (unsigned long long)st.damaged_kept, z,
		r.s->sb.zones[z].gen != gen ? "collected" : "not collected", r.s->zrt[z].gc_failures, r.s->sb.zones[z].state);
	CHECK_EQ(st.damaged_kept, 0);
	CHECK(r.s->sb.zones[z].gen != gen);
	CHECK(shim_flipped(r.dev) >= 1);
	CHECK_EQ(h_get(r.s, "K", got), 0);
	CHECK(got->len == 1000 && memcmp(got->bytes, v, 1000) == 0);
	CHECK_EQ(h_put_ex(r.s, "K", "v2", 2, 0, STORE_IF_PRESENT), 0); /* a condition judged on K */
	rig_close(&r);
}

/* GC's reads of a victim's zone index fail with a transient -EIO three
 * times: the zone is still collected (each read error gave the collection
 * up and counted against the zone: after GC_FAILURES_MAX it was never
 * collected again). */
static void gc_gives_up_zone_on_transient_eio(void)
{
	struct rig r;
	rig_open(&r, 3 * MiB, 256 * 1024, (struct store_config){0});
	CHECK_EQ(h_put(r.s, "K", "v1", 2), 0);
	uint32_t z = pl_zone(key_payload(r.s, "K"));
	for (unsigned i = 0; i < 100000 && r.s->sb.zones[z].state != ZONE_FULL; i++)
		churn_once(r.s);
	CHECK_EQ(r.s->sb.zones[z].state, ZONE_FULL);
	uint64_t foot = r.s->sb.data_start + (uint64_t)z * r.s->sb.zone_bytes +
			(uint64_t)r.s->sb.zones[z].footer_block * DV_BLOCK_BYTES;
	shim_fail_reads_at(r.dev, foot, GC_FAILURES_MAX);
	uint32_t gen = r.s->sb.zones[z].gen;
	for (unsigned i = 0; i < 20000 && r.s->sb.zones[z].gen == gen; i++)
		churn_once(r.s);
	fprintf(stderr, "gc with %u transient read errors on a zone index: zone %s, %u failures counted\n",
		shim_failed(r.dev), r.s->sb.zones[z].gen != gen ? "collected" : "not collected",
		r.s->zrt[z].gc_failures);
	CHECK_EQ(shim_failed(r.dev), GC_FAILURES_MAX);
	CHECK(r.s->sb.zones[z].gen != gen);
	CHECK_EQ(r.s->zrt[z].gc_failures, 0);
	h_expect(r.s, "K", "v1");
	rig_close(&r);
}

/* ---- key locks: many pipelined writes of one key ---- */

#define PIPE_OPS 60000u

struct pslot {
	struct store_op op;
	uint32_t n;
};
static uint32_t pipe_next_done;

static void pipe_done(struct store_op *op)
{
	struct pslot *p = (struct pslot *)op;
	CHECK_EQ(op->result, 0);
	CHECK_EQ(p->n, pipe_next_done); /* writes of a key complete in submission order */
	pipe_next_done++;
}

/* n PUTs of one key submitted before any poll, then drained: seconds. */
static double pipe_run(uint32_t n)
{
	struct rig r;
	rig_open(&r, 64 * MiB, 1024 * 1024, (struct store_config){0});
	struct pslot *ps = calloc(n, sizeof(*ps));
	static char vals[PIPE_OPS][8];
	CHECK(ps != NULL && n <= PIPE_OPS);
	pipe_next_done = 0;
	double t0 = test_now_s();
	for (uint32_t i = 0; i < n; i++) {
		snprintf(vals[i], sizeof(vals[i]), "%07u", i);
		ps[i] = (struct pslot){.op = {.kind = STORE_PUT, .key = "K", .key_len = 1, .value = vals[i],
					      .val_len = 7, .done = pipe_done},
				       .n = i};
		CHECK_EQ(store_submit(r.s, &ps[i].op), 0);
	}
	CHECK_EQ(store_drain(r.s), 0);
	double t = test_now_s() - t0;
	CHECK_EQ(pipe_next_done, n);
	char last[8];
	snprintf(last, sizeof(last), "%07u", n - 1);
	h_expect(r.s, "K", last);
	free(ps);
	rig_close(&r);
	return t;
}

/* PUTs of one key submitted before any poll: each one queued behind the
 * key lock holder walked the whole waiter chain (quadratic: 60,000 took 65
 * s). Four times the writes must take about four times as long, not
 * sixteen (a run under a second is never judged: timer noise). */
static void keylock_quadratic_pipelined_writes(void)
{
	double small = pipe_run(PIPE_OPS / 4), big = pipe_run(PIPE_OPS);
	fprintf(stderr, "pipelined writes of one key: %u in %.2f s, %u in %.2f s\n", PIPE_OPS / 4, small, PIPE_OPS,
		big);
	CHECK(big < 1.0 || big < 10 * small);
}

/* ---- E5: writes of one key wait for one disk flush each ---- */

/* One op of a burst of ops of one key, submitted together. */
struct bop {
	struct store_op op;
	uint32_t n;      /* position in the burst */
	int want;        /* a write's expected result */
	char val[16];
	char got[16];    /* a GET's value ("" when not found) */
	bool done;
};
static uint32_t burst_writes_done, burst_done_n;
static struct bop *burst_ops;

static void burst_done(struct store_op *op)
{
	struct bop *b = (struct bop *)op;
	b->done = true;
	burst_done_n++;
	if (op->kind == STORE_GET) {
		CHECK(op->result == 0 || op->result == -DV_ENOTFOUND);
		b->got[0] = 0;
		if (op->result == 0) {
			CHECK(op->out.val_len < sizeof(b->got));
			memcpy(b->got, op->out.value, op->out.val_len);
			b->got[op->out.val_len] = 0;
		}
		return;
	}
	/* Writes of a key complete in submission order. */
	for (uint32_t i = 0; i < b->n; i++)
		CHECK(burst_ops[i].op.kind == STORE_GET || burst_ops[i].done);
	if (op->result != b->want)
		fprintf(stderr, "burst op %u (kind %d cond %d): %d, want %d\n", b->n, op->kind, op->cond, op->result,
			b->want);
	CHECK_EQ(op->result, b->want);
	burst_writes_done++;
}

/* The burst's ops: rounds of PUT, NX, GET, XX, DEL, GET, DEL, NX, IF_SEQ
 * 0, IF_SEQ_EXPIRED, an expired PUT, XX, DEL, PUT, GET, with the result
 * each must give; `plain`: PUTs only. */
static uint32_t burst_make(struct bop *ops, uint32_t n, bool plain)
{
	static const struct {
		enum store_op_kind kind;
		enum store_cond cond;
		uint64_t expire_ms;
		int want;
	} round[] = {
		{STORE_PUT, STORE_ALWAYS, 0, 0},	  {STORE_PUT, STORE_IF_ABSENT, 0, -EEXIST},
		{STORE_GET, STORE_ALWAYS, 0, 0},	  {STORE_PUT, STORE_IF_PRESENT, 0, 0},
		{STORE_DEL, STORE_ALWAYS, 0, 0},	  {STORE_GET, STORE_ALWAYS, 0, 0},
		{STORE_DEL, STORE_ALWAYS, 0, -DV_ENOTFOUND}, {STORE_PUT, STORE_IF_ABSENT, 0, 0},
		{STORE_PUT, STORE_IF_SEQ, 0, -ESTALE},	  {STORE_DEL, STORE_IF_SEQ_EXPIRED, 0, -ESTALE},
		{STORE_PUT, STORE_ALWAYS, 1, 0},	  {STORE_PUT, STORE_IF_PRESENT, 0, -DV_ENOTFOUND},
		{STORE_DEL, STORE_ALWAYS, 0, -DV_ENOTFOUND}, {STORE_PUT, STORE_ALWAYS, 0, 0},
		{STORE_GET, STORE_ALWAYS, 0, 0},
	};
	for (uint32_t i = 0; i < n; i++) {
		struct bop *b = &ops[i];
		unsigned k = plain ? 0 : i % DV_ARRAY_LEN(round);
		*b = (struct bop){.n = i, .want = round[k].want};
		snprintf(b->val, sizeof(b->val), "v%u", i);
		b->op = (struct store_op){.kind = round[k].kind, .key = "K", .key_len = 1, .cond = round[k].cond,
					  .cond_seq = round[k].cond == STORE_IF_SEQ_EXPIRED ? 1 : 0,
					  .expire_ms = round[k].expire_ms, .done = burst_done};
		if (b->op.kind == STORE_PUT) {
			b->op.value = b->val;
			b->op.val_len = (uint32_t)strlen(b->val);
		}
	}
	return plain ? n : n - n % (uint32_t)DV_ARRAY_LEN(round);
}

/* Every GET of the burst returned the key's state after a prefix of the
 * writes submitted before it: nothing, the value before the burst
 * (before, if any), or the value of a PUT before it. */
static void burst_check_gets(const struct bop *ops, uint32_t n, const char *before)
{
	for (uint32_t i = 0; i < n; i++) {
		if (ops[i].op.kind != STORE_GET || ops[i].got[0] == 0 || (before && !strcmp(ops[i].got, before)))
			continue;
		uint32_t x = (uint32_t)strtoul(ops[i].got + 1, NULL, 10);
		CHECK(ops[i].got[0] == 'v' && x < i);
		CHECK(ops[x].op.kind == STORE_PUT && ops[x].want == 0 && ops[x].op.expire_ms == 0);
	}
}

static uint64_t batches_of(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st.batches;
}

/* n ops of one key submitted before any poll: the old engine held the
 * key's lock until each write was durable, so every write waited for the
 * flush of the one before it (one batch write each: 1000 pipelined SETs
 * of one key took 2.4 s on a file). Now a write whose predecessor of the
 * same key is placed is placed behind it, in the same batch when it fits:
 * a few batch writes in all, with every result, the completion order and
 * what each GET returns as if they had run one by one. */
static void same_key_burst(uint32_t n, bool plain)
{
	struct rig r;
	rig_open(&r, 64 * MiB, 1024 * 1024, (struct store_config){0});
	burst_ops = calloc(n, sizeof(*burst_ops));
	CHECK(burst_ops != NULL);
	n = burst_make(burst_ops, n, plain);
	burst_writes_done = burst_done_n = 0;
	uint64_t b0 = batches_of(r.s);
	double t0 = test_now_s();
	for (uint32_t i = 0; i < n; i++)
		CHECK_EQ(store_submit(r.s, &burst_ops[i].op), 0);
	CHECK_EQ(store_drain(r.s), 0);
	double t = test_now_s() - t0;
	uint64_t batches = batches_of(r.s) - b0;
	fprintf(stderr, "burst of %u %s ops of one key: %llu batch writes, %.3f s (memory device)\n", n,
		plain ? "PUT" : "mixed", (unsigned long long)batches, t);
	CHECK_EQ(burst_done_n, n);
	burst_check_gets(burst_ops, n, NULL);
	h_expect(r.s, "K", burst_ops[n - 1].op.kind == STORE_GET ? burst_ops[n - 2].val : burst_ops[n - 1].val);
	CHECK_EQ(key_entries(r.s, "K", NULL), 1);
	CHECK(batches <= 4);
	rig_restart(&r);
	h_expect(r.s, "K", burst_ops[n - 1].op.kind == STORE_GET ? burst_ops[n - 2].val : burst_ops[n - 1].val);
	free(burst_ops);
	rig_close(&r);
}

/* Writes of one key that arrive while the batch of the key's previous
 * write is being written are placed in the next batch at once (they do not
 * wait for that write to be durable), decided on the newest version, and
 * complete in order once durable; a GET meanwhile sees the key as it was
 * before all of them. */
static void same_key_writes_while_flushing(void)
{
	struct rig r;
	rig_open(&r, 64 * MiB, 1024 * 1024, (struct store_config){.batches_in_flight = 1});
	CHECK_EQ(h_put(r.s, "K", "init", 4), 0);
	enum { N = 150 };
	burst_ops = calloc(N, sizeof(*burst_ops));
	CHECK(burst_ops != NULL);
	uint32_t n = burst_make(burst_ops, N, false);
	burst_writes_done = burst_done_n = 0;
	uint64_t b0 = batches_of(r.s);
	shim_hold(r.dev, &r.s->batches[r.s->batch_head]); /* the next batch write */
	CHECK_EQ(store_submit(r.s, &burst_ops[0].op), 0);
	for (unsigned i = 0; i < 100 && shim_held(r.dev) == 0; i++)
		CHECK(store_poll(r.s, false) >= 0);
	CHECK_EQ(shim_held(r.dev), 1);
	for (uint32_t i = 1; i < n; i++)
		CHECK_EQ(store_submit(r.s, &burst_ops[i].op), 0);
	for (unsigned i = 0; i < 100; i++)
		CHECK(store_poll(r.s, false) >= 0);
	unsigned placed = 0, waiting = 0;
	for (uint32_t i = 1; i < n; i++) {
		placed += burst_ops[i].op.kind != STORE_GET && burst_ops[i].op.priv.state == OPS_IN_BATCH;
		waiting += burst_ops[i].op.kind != STORE_GET && burst_ops[i].op.priv.state == OPS_WAIT_KEY;
	}
	struct h_value *g = got;
	int gr = h_get(r.s, "K", g); /* polls, the batch still held */
	fprintf(stderr, "writes of one key behind a batch in flight: %u placed, %u waiting for the key, %u done; "
		"GET meanwhile %d %.*s\n", placed, waiting, burst_writes_done, gr, gr == 0 ? (int)g->len : 0,
		(const char *)g->bytes);
	CHECK_EQ(burst_writes_done, 0);
	CHECK(gr == 0 && g->len == 4 && memcmp(g->bytes, "init", 4) == 0);
	CHECK_EQ(waiting, 0);
	CHECK(placed > 0);
	shim_hold(r.dev, NULL);
	CHECK_EQ(store_drain(r.s), 0);
	CHECK_EQ(burst_done_n, n);
	burst_check_gets(burst_ops, n, "init");
	uint64_t batches = batches_of(r.s) - b0;
	fprintf(stderr, "  then %llu batch writes in all\n", (unsigned long long)batches);
	CHECK(batches <= 3);
	h_expect(r.s, "K", burst_ops[n - 2].val);
	free(burst_ops);
	rig_close(&r);
}

static void t_burst_plain(void) { same_key_burst(1000, true); }
static void t_burst_mixed(void) { same_key_burst(1500, false); }

/* ---- 6: a transient submit error fails the store ---- */

struct eslot {
	struct store_op op;
	char key[32];
	uint64_t n, version;
	bool busy;
	uint8_t val[2048];
};
static uint64_t *e_acked;
static uint64_t e_errors;

static void e_done(struct store_op *op)
{
	struct eslot *sl = (struct eslot *)op;
	sl->busy = false;
	if (op->kind == STORE_PUT && op->result == 0)
		e_acked[sl->n] = sl->version;
	else if (op->kind == STORE_PUT || (op->result != 0 && op->result != -DV_ENOTFOUND))
		e_errors++;
	if (op->kind == STORE_GET && op->result == 0 && op->out.val_len >= 8) {
		uint64_t ver;
		memcpy(&ver, op->out.value, 8);
		if (ver < e_acked[sl->n] || ver > sl->version) /* not older than acknowledged, nor invented */
			e_errors++;
	}
}

static uint32_t e_len(uint64_t n, uint64_t version) { return 8 + (uint32_t)((n * 31 + version * 7) % 2000); }

/* The device refuses a fifth of all submissions (-EAGAIN or -EBUSY, as
 * io_uring with a full ring): every write, seal, superblock, GC and lookup
 * submission is retried, nothing fails, the store never enters its failed
 * state, and everything acknowledged reads back, also after recoveries run
 * on the same refusing device. With event_loop the store is driven by
 * store_poll(s, false) only, as a server does: it must not stall. */
static void submit_eagain_fails_store(bool event_loop)
{
	struct dev *dev;
	struct store *s;
	h_open_mem(&s, &dev, 8 * MiB, 256 * 1024);
	struct dev_fault_plan plan = {.seed = 3, .submit_eagain_ppm = 200000};
	dev_mem_set_plan(dev, &plan);
	enum { KEYS = 600, QD = 32, OPS = 30000 };
	e_acked = calloc(KEYS, sizeof(*e_acked));
	e_errors = 0;
	struct eslot *slots = calloc(QD, sizeof(*slots));
	uint64_t rng = 9, version = 0, ops = 0;
	for (uint64_t guard = 0; ops < OPS || store_pending(s); guard++) {
		CHECK(guard < 10000000);
		for (unsigned i = 0; i < QD && ops < OPS; i++) {
			struct eslot *sl = &slots[i];
			if (sl->busy)
				continue;
			sl->n = (test_rand(&rng) % (KEYS / QD)) * QD + i; /* one slot per key: no races */
			sprintf(sl->key, "eagain-%llu", (unsigned long long)sl->n);
			bool get = test_rand(&rng) % 4 == 0;
			sl->version = get ? version : ++version;
			uint32_t len = e_len(sl->n, sl->version);
			h_fill_value(sl->val, len, sl->n, sl->version);
			memcpy(sl->val, &sl->version, 8);
			sl->op = (struct store_op){.kind = get ? STORE_GET : STORE_PUT, .key = sl->key,
						   .key_len = (uint32_t)strlen(sl->key), .value = sl->val,
						   .val_len = get ? 0 : len, .done = e_done};
			CHECK_EQ(store_submit(s, &sl->op), 0);
			sl->busy = true;
			ops++;
		}
		CHECK(store_poll(s, !event_loop) >= 0);
	}
	struct store_stats st;
	store_get_stats(s, &st);
	struct dev_fault_stats fs = dev_mem_stats(dev);
	fprintf(stderr, "submit refusals (event loop %d): %llu refused, %llu zones collected, failed %d, errors %llu\n",
		event_loop, (unsigned long long)fs.submit_eagain, (unsigned long long)st.gc_zones_reset, st.failed,
		(unsigned long long)e_errors);
	CHECK(fs.submit_eagain > 1000);
	CHECK(!st.failed);
	CHECK_EQ(e_errors, 0);
	CHECK(st.gc_zones_reset > 5);
	for (int round = 0; round < 2; round++) {
		for (uint64_t n = 0; n < KEYS; n++) {
			char k[32];
			sprintf(k, "eagain-%llu", (unsigned long long)n);
			int rc = h_get(s, k, got);
			if (!e_acked[n]) {
				CHECK_EQ(rc, -DV_ENOTFOUND);
				continue;
			}
			CHECK_EQ(rc, 0);
			uint64_t ver;
			memcpy(&ver, got->bytes, 8);
			CHECK_EQ(ver, e_acked[n]);
			CHECK_EQ(got->len, e_len(n, ver));
		}
		/* Restart on the same refusing device: recovery's own I/O too. */
		store_close(s);
		struct store_config cfg = {0};
		CHECK_EQ(store_open(&s, dev, &cfg), 0);
	}
	store_close(s);
	dev_close(dev);
	free(slots);
	free(e_acked);
}

static void t_eagain(void) { submit_eagain_fails_store(false); }
static void t_eagain_loop(void) { submit_eagain_fails_store(true); }

/* ---- 7: the store's clock comes from its driver ---- */

static uint64_t fake_clock(void *ctx) { return *(const uint64_t *)ctx; }

static bool scan_saw;
static bool scan_visit(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	if (key_len == 1 && memcmp(key, "u", 1) == 0)
		scan_saw = true;
	return true;
}
static void scan_finish(void *arg, int err) { *(int *)arg = err == 0 ? 1 : -1; }

/* Poll until the scan whose finish writes *fin is over; it must succeed. */
static void scan_wait(struct store *s, const int *fin)
{
	for (unsigned i = 0; *fin == 0; i++) {
		CHECK(i < 1000000);
		CHECK(store_poll(s, true) >= 0);
	}
	CHECK_EQ(*fin, 1);
}

static bool scan_sees_u(struct store *s)
{
	int fin = 0;
	scan_saw = false;
	CHECK_EQ(store_scan(s, 0, UINT64_MAX, scan_visit, scan_finish, &fin), 0);
	scan_wait(s, &fin);
	return scan_saw;
}

/* Time starts in 1970 (the real clock would call every value here
 * expired) and moves only when the test says: reads, conditions, the key
 * lock handover, scans and GC all follow it. */
static void expiry_follows_injected_clock(void)
{
	uint64_t now = 1000000;
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){.now_ms = fake_clock, .clock_ctx = &now});
	CHECK_EQ(h_put_ex(r.s, "t", "v", 1, now + 1000, STORE_ALWAYS), 0);
	h_expect(r.s, "t", "v");
	CHECK_EQ(h_put_ex(r.s, "t", "w", 1, 0, STORE_IF_ABSENT), -EEXIST);
	/* Handed over under the key lock: the second write decides on what
	 * the first wrote, by the injected clock. */
	struct aop a, b;
	aop_submit(r.s, &a, STORE_PUT, "t", "x", STORE_ALWAYS);
	a.op.expire_ms = now + 1000;
	aop_submit(r.s, &b, STORE_PUT, "t", "y", STORE_IF_ABSENT);
	CHECK_EQ(aop_wait(r.s, &a), 0);
	CHECK_EQ(aop_wait(r.s, &b), -EEXIST);
	CHECK_EQ(h_put_ex(r.s, "u", "v", 1, now + 500, STORE_ALWAYS), 0);
	CHECK(scan_sees_u(r.s));
	CHECK_EQ(h_put_ex(r.s, "e", "v", 1, now + 1000, STORE_ALWAYS), 0);
	CHECK_EQ(h_get(r.s, "e", got), 0);
	uint64_t seq = got->seq;
	CHECK_EQ(h_write_cond(r.s, STORE_DEL, "e", NULL, 0, STORE_IF_SEQ_EXPIRED, seq, NULL), -ESTALE);
	now += 1000;
	h_expect(r.s, "t", NULL);
	CHECK_EQ(h_write_cond(r.s, STORE_DEL, "e", NULL, 0, STORE_IF_SEQ_EXPIRED, seq, NULL), -DV_ENOTFOUND);
	h_expect(r.s, "e", NULL);
	CHECK(!scan_sees_u(r.s));
	CHECK_EQ(h_put_ex(r.s, "t", "w", 1, 0, STORE_IF_ABSENT), 0);
	h_expect(r.s, "t", "w");
	/* GC turns values expired by this clock into tombstones. */
	for (uint32_t n = 0; n < 300; n++) {
		char k[32];
		sprintf(k, "x-%u", n);
		CHECK_EQ(h_put_ex(r.s, k, "gone", 4, now + 100, STORE_ALWAYS), 0);
	}
	now += 100;
	struct store_stats st;
	store_get_stats(r.s, &st);
	for (unsigned i = 0; i < 100000 && st.gc_expired < 100; i++) {
		churn_once(r.s);
		store_get_stats(r.s, &st);
	}
	CHECK(st.gc_expired >= 100);
	h_expect(r.s, "x-0", NULL);
	h_check_tombstones(r.s, "injected clock");
	rig_close(&r);
}

/* ---- the same class in scans: a record GC moves during a scan ---- */

enum { SCAN_KEYS = 300 };
static uint8_t scan_seen[SCAN_KEYS];

static bool scan_count(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	unsigned n;
	char k[32];
	if (key_len >= sizeof(k))
		return true;
	memcpy(k, key, key_len);
	k[key_len] = 0;
	if (sscanf(k, "scan-%u", &n) == 1 && n < SCAN_KEYS && scan_seen[n] < 255)
		scan_seen[n]++;
	return true;
}

/* The scan's reads are held while GC moves the scanned keys' records: the
 * scan must still visit every key that stayed live (its record was moved,
 * not replaced), and never more than twice. */
static void scan_misses_moved_records(void)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0});
	for (unsigned n = 0; n < SCAN_KEYS; n++) {
		char k[32];
		sprintf(k, "scan-%u", n);
		CHECK_EQ(h_put(r.s, k, "v", 1), 0);
	}
	memset(scan_seen, 0, sizeof(scan_seen));
	int fin = 0;
	CHECK_EQ(store_scan(r.s, 0, UINT64_MAX, scan_count, scan_finish, &fin), 0);
	shim_hold(r.dev, r.s->scan);
	struct store_stats st;
	store_get_stats(r.s, &st);
	uint64_t reset0 = st.gc_zones_reset;
	for (unsigned i = 0; i < 100000 && r.s->st.gc_zones_reset < reset0 + 40; i++)
		churn_once(r.s);
	CHECK(r.s->st.gc_zones_reset >= reset0 + 40);
	shim_hold(r.dev, NULL);
	scan_wait(r.s, &fin);
	unsigned missed = 0, twice = 0;
	for (unsigned n = 0; n < SCAN_KEYS; n++) {
		missed += scan_seen[n] == 0;
		twice += scan_seen[n] > 1;
		CHECK(scan_seen[n] <= 2);
	}
	fprintf(stderr, "scan while GC moved records: %u of %u keys missed, %u seen twice\n", missed, SCAN_KEYS,
		twice);
	CHECK_EQ(missed, 0);
	rig_close(&r);
}

/* ---- the same class at recovery: a flip in transit on a restart's reads ---- */

/* Keys written into a zone that is still open, or sealed with its zone
 * index, at a restart whose reads of the zone (scan or zone index) come
 * back with one bit flipped in transit, `flips` reads in a row: the medium
 * is intact, so nothing may be lost, cut or left out of GC for it (one
 * re-read was not enough: two flipped reads cut the zone). */
static void recovery_cuts_after_transit_flip(bool sealed, unsigned flips)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0});
	enum { N = 40 }; /* one zone: each write is its own 4 KiB batch */
	static uint8_t v[1000];
	for (uint32_t n = 0; n < N; n++) {
		char k[32];
		sprintf(k, "rec-%u", n);
		h_fill_value(v, sizeof(v), n, 1);
		CHECK_EQ(h_put(r.s, k, v, sizeof(v)), 0);
	}
	uint64_t p = key_payload(r.s, "rec-5");
	uint32_t z = pl_zone(p);
	uint64_t flip_at;
	if (sealed) {
		for (unsigned i = 0; i < 100000 && r.s->sb.zones[z].state != ZONE_FULL; i++)
			churn_once(r.s);
		CHECK_EQ(r.s->sb.zones[z].state, ZONE_FULL);
		flip_at = r.s->sb.data_start + (uint64_t)z * r.s->sb.zone_bytes +
			  (uint64_t)r.s->sb.zones[z].footer_block * DV_BLOCK_BYTES + 100; /* in its entries */
	} else {
		CHECK_EQ(r.s->sb.zones[z].state, ZONE_OPEN);
		flip_at = payload_dev_off(r.s, p) + 20;
	}
	store_close(r.s);
	shim_flip_reads_at(r.dev, flip_at, flips);
	CHECK_EQ(store_open(&r.s, r.dev, &r.cfg), 0);
	CHECK_EQ(shim_flipped(r.dev), flips);
	struct store_stats st;
	store_get_stats(r.s, &st);
	unsigned lost = 0;
	for (uint32_t n = 0; n < N; n++) {
		char k[32];
		sprintf(k, "rec-%u", n);
		int rc = h_get(r.s, k, got);
		h_fill_value(v, sizeof(v), n, 1);
		lost += rc != 0 || got->len != sizeof(v) || memcmp(got->bytes, v, sizeof(v)) != 0;
	}
	fprintf(stderr, "restart with %u flips in transit (%s zone): %u of %u keys lost, %u torn tails, "
		"%u bad zone indexes, zone left out of GC %d\n", flips, sealed ? "sealed" : "open", lost, N,
		st.recovery_torn_tails, st.recovery_bad_zone_indexes, r.s->zrt[z].gc_failures >= GC_FAILURES_MAX);
	CHECK_EQ(lost, 0);
	CHECK_EQ(st.recovery_torn_tails, 0);
	CHECK_EQ(st.recovery_bad_zone_indexes, 0);
	CHECK(r.s->zrt[z].gc_failures < GC_FAILURES_MAX);
	rig_close(&r);
}

static void t_recovery_open(void)
{
	recovery_cuts_after_transit_flip(false, 1);
	recovery_cuts_after_transit_flip(false, 2);
}
static void t_recovery_sealed(void)
{
	recovery_cuts_after_transit_flip(true, 1);
	recovery_cuts_after_transit_flip(true, 2);
}

enum rfault { RF_SB_MAGIC, RF_SB_BODY, RF_EIO };

/* A restart whose reads of both superblock copies come back flipped in
 * transit (in the magic: taken for a device with no superblock, which the
 * store formats when allowed; or under the checksum: -DV_ECORRUPT), or
 * whose reads fail once with a transient -EIO (a superblock copy, the scan
 * of the open zone): the medium is intact, nothing may be lost. */
static void recovery_fails_on_transit_faults(enum rfault what)
{
	struct rig r;
	rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0}); /* format_if_empty: a lost magic formats */
	enum { N = 20 };
	static uint8_t v[1000];
	for (uint32_t n = 0; n < N; n++) {
		char k[32];
		sprintf(k, "sb-%u", n);
		h_fill_value(v, sizeof(v), n, 2);
		CHECK_EQ(h_put(r.s, k, v, sizeof(v)), 0);
	}
	uint64_t copy1 = sb_bytes(DV_ZONE_COUNT_MAX), rec = payload_dev_off(r.s, key_payload(r.s, "sb-3"));
	CHECK_EQ(r.s->sb.zones[pl_zone(key_payload(r.s, "sb-3"))].state, ZONE_OPEN);
	store_close(r.s);
	uint64_t at = what == RF_SB_MAGIC ? 8 : 100;
	if (what == RF_EIO) {
		shim_fail_reads_at(r.dev, at, 1);
		shim_fail_reads_at(r.dev, rec + 20, 1);
	} else {
		shim_flip_reads_at(r.dev, at, 1);
		shim_flip_reads_at(r.dev, copy1 + at, 1);
	}
	int err = store_open(&r.s, r.dev, &r.cfg);
	unsigned lost = N;
	if (!err) {
		lost = 0;
		for (uint32_t n = 0; n < N; n++) {
			char k[32];
			sprintf(k, "sb-%u", n);
			int rc = h_get(r.s, k, got);
			h_fill_value(v, sizeof(v), n, 2);
			lost += rc != 0 || got->len != sizeof(v) || memcmp(got->bytes, v, sizeof(v)) != 0;
		}
	}
	fprintf(stderr, "restart with %s: store_open %d, %u of %u keys lost (%u reads flipped, %u failed)\n",
		what == RF_SB_MAGIC ? "both superblock magics flipped" : what == RF_SB_BODY ? "both superblocks flipped"
											     : "transient read errors",
		err, lost, N, shim_flipped(r.dev), shim_failed(r.dev));
	CHECK_EQ(err, 0);
	CHECK_EQ(lost, 0);
	CHECK_EQ(shim_flipped(r.dev) + shim_failed(r.dev), 2);
	rig_close(&r);
}

static void pipe_ok(struct store_op *op) { CHECK_EQ(op->result, 0); }

/* A sealed zone's index spans several blocks; recovery reads its header
 * block, sizes the entries from its count, then reads the whole index. The
 * header read comes back with the count flipped lower in transit, the
 * second read is clean: the entries were written past the array sized by
 * the first count (heap overflow; ASan shows it). Now the two counts must
 * agree, else it reads again. */
static void recovery_overflows_zone_index_entries(void)
{
	for (uint32_t vlen = 60; vlen < 160; vlen++) {
		struct rig r;
		rig_open(&r, 8 * MiB, 256 * 1024, (struct store_config){0});
		static uint8_t v[200];
		enum { BATCH = 256 }; /* submitted together: records pack into shared blocks */
		static struct store_op ops[BATCH];
		static char keys[BATCH][16];
		static uint8_t vals[BATCH][200];
		uint32_t n = 0;
		while (n < 20000 && r.s->sb.zones[0].state != ZONE_FULL) {
			for (uint32_t b = 0; b < BATCH; b++, n++) {
				sprintf(keys[b], "ix-%u", n);
				h_fill_value(vals[b], vlen, n, 3);
				ops[b] = (struct store_op){.kind = STORE_PUT, .key = keys[b], .key_len = (uint32_t)strlen(keys[b]),
							   .value = vals[b], .val_len = vlen, .done = pipe_ok};
				CHECK_EQ(store_submit(r.s, &ops[b]), 0);
			}
			CHECK_EQ(store_drain(r.s), 0);
		}
		CHECK_EQ(r.s->sb.zones[0].state, ZONE_FULL);
		uint64_t foot = r.s->sb.data_start + (uint64_t)r.s->sb.zones[0].footer_block * DV_BLOCK_BYTES;
		uint32_t count;
		memcpy(&count, dev_mem_image(r.mem) + foot + 20, 4);
		/* The first flip clears bit 4 of the count: a count with it set,
		 * whose true entries still fit the bytes the lower count asks to
		 * read (else the decoder refuses before writing any). */
		uint32_t low_bytes = zidx_bytes(count - 0x10, DV_BLOCK_BYTES);
		if (!(count & 0x10) || low_bytes <= DV_BLOCK_BYTES || low_bytes < ZIDX_HDR_BYTES + ZIDX_ENTRY_BYTES * count) {
			rig_close(&r);
			continue;
		}
		store_close(r.s);
		shim_flip_reads_at(r.dev, foot + 20, 1);
		CHECK_EQ(store_open(&r.s, r.dev, &r.cfg), 0);
		struct store_stats st;
		store_get_stats(r.s, &st);
		unsigned lost = 0;
		for (uint32_t i = 0; i < n; i++) {
			char k[32];
			sprintf(k, "ix-%u", i);
			h_fill_value(v, vlen, i, 3);
			lost += h_get(r.s, k, got) != 0 || got->len != vlen || memcmp(got->bytes, v, vlen) != 0;
		}
		fprintf(stderr, "zone index of %u entries, count flipped to %u on the header read: %u of %u keys lost, "
			"%u bad zone indexes\n", count, count - 0x10, lost, n, st.recovery_bad_zone_indexes);
		CHECK_EQ(shim_flipped(r.dev), 1);
		CHECK_EQ(lost, 0);
		CHECK_EQ(st.recovery_bad_zone_indexes, 0);
		rig_close(&r);
		return;
	}
	CHECK(!"no zone index count with bit 4 set");
}

static void t_recovery_sb_magic(void) { recovery_fails_on_transit_faults(RF_SB_MAGIC); }
static void t_recovery_sb_body(void) { recovery_fails_on_transit_faults(RF_SB_BODY); }
static void t_recovery_eio(void) { recovery_fails_on_transit_faults(RF_EIO); }

/* Each test by name; `test_regress NAME...` runs only those (the names
 * of the bugs above, prefix match). */
static void t_flip_put(void) { put_invisible_after_transit_flip(W_PUT, false); }
static void t_flip_nx(void) { put_invisible_after_transit_flip(W_PUT_NX, false); }
static void t_flip_del(void) { put_invisible_after_transit_flip(W_DEL, false); }
static void t_medium_flip(void) { put_invisible_after_transit_flip(W_PUT, true); }
static void t_put_gc_moves(void)
{
	put_invisible_after_gc_moves(2);
	put_invisible_after_gc_moves(12);
}
static void t_get_gc_moves(void)
{
	get_absent_after_gc_moves(2);
	get_absent_after_gc_moves(12);
}
static void t_later_tomb(void) { get_sees_later_write(L_PUT_OVER_TOMB); }
static void t_later_value(void) { get_sees_later_write(L_PUT_OVER_VALUE); }
static void t_later_moved_put(void) { get_sees_later_write(L_PUT_AFTER_MOVE); }
static void t_later_moved_del(void) { get_sees_later_write(L_DEL_AFTER_MOVE); }
static void t_moved(void) { get_sees_later_write(L_NONE_AFTER_MOVE); }
static void t_later_collect(void) { get_sees_later_write(L_PUT_THEN_COLLECT); }

/* How full_open_once opens the device: clean; with a power cut at its
 * second write (the first open has two: the fill's open zone's index,
 * then the superblock); after a torn write of the superblock copy the open
 * writes next (some of its sectors garbage: what a cut during that write
 * leaves); with every write failing. */
enum full_open { FO_CLEAN, FO_CUT_2ND, FO_TORN_SB, FO_WRITES_FAIL };
#define FULL_OPEN_VAL 20000u

/* Garbage over the first sector of the copy the next superblock write
 * takes (fixed copies alternate by sb_seq; the newer one is kept). */
static void tear_next_sb_copy(uint8_t *image)
{
	uint64_t slot = sb_bytes(DV_ZONE_COUNT_MAX);
	unsigned next = le_get64(image + 24) > le_get64(image + slot + 24) ? 1 : 0;
	for (unsigned i = 0; i < 512; i++)
		image[next * slot + i] ^= (uint8_t)(0x5a + i);
}

/* An open of image (size bytes) as mode says; the medium after it goes
 * back into image. Returns the open's result; an open that succeeds gets
 * a stamp above every earlier one, sealed the fill's open zone in place,
 * left the zone kept for GC empty, reads every acknowledged key back and
 * refuses a user write as full; one with every write failing that had
 * nothing to recover opens failed, with no stamp, and serves the reads. */
static int full_open_once(uint8_t *image, uint64_t size, enum full_open mode, uint32_t nkeys, uint64_t *stamp_max)
{
	if (mode == FO_TORN_SB)
		tear_next_sb_copy(image);
	struct dev *dev;
	struct dev_fault_plan plan = {.seed = 1 + mode, .power_cut_after_writes = mode == FO_CUT_2ND ? 1 : 0,
				      .write_eio_ppm = mode == FO_WRITES_FAIL ? 1000000 : 0};
	CHECK_EQ(dev_open_mem_copy(&dev, image, size, &plan), 0);
	struct store_config cfg = {.memo_entries = 1024};
	struct store *s = NULL;
	int err = store_open(&s, dev, &cfg);
	if (!err && mode == FO_WRITES_FAIL) {
		CHECK_EQ(store_open_stamp(s), 0); /* its superblock write failed: no stamp, the store failed */
	} else if (!err) {
		CHECK(store_open_stamp(s) > *stamp_max);
		*stamp_max = store_open_stamp(s);
	}
	if (!err) {
		struct store_stats st;
		store_get_stats(s, &st);
		CHECK_EQ(st.zones_empty, GC_RESERVE_ZONES);
		CHECK_EQ(st.zones_open, 0); /* the fill's last zone sealed in place */
		uint8_t *v = malloc(FULL_OPEN_VAL);
		CHECK(v != NULL);
		for (uint32_t k = 0; k < nkeys; k++) {
			char key[16];
			snprintf(key, sizeof(key), "k%u", k);
			CHECK_EQ(h_get(s, key, got), 0);
			h_fill_value(v, FULL_OPEN_VAL, k, 1);
			CHECK(got->len == FULL_OPEN_VAL && memcmp(got->bytes, v, FULL_OPEN_VAL) == 0);
		}
		CHECK_EQ(h_put(s, "more", v, FULL_OPEN_VAL), mode == FO_WRITES_FAIL ? -DV_EFATAL : -DV_EFULL);
		free(v);
		store_close(s);
	}
	memcpy(image, dev_mem_image(dev), size);
	dev_close(dev);
	return err;
}

static void full_device_opens_many_times(void)
{
	const uint64_t size = 8 * MiB;
	struct store *s;
	struct dev *dev;
	h_open_mem_cfg(&s, &dev, size, 1 * MiB, (struct store_config){.memo_entries = 1024});
	uint8_t *v = malloc(FULL_OPEN_VAL);
	CHECK(v != NULL);
	/* Filled until a write is refused as full; the device as it was after
	 * the last write acknowledged with the zone kept for GC the only empty
	 * one and the last zone still open (what a kill then leaves: the
	 * refused write sealed that zone) is the one opened below. */
	uint8_t *image = malloc(size);
	CHECK(image != NULL);
	uint32_t nkeys = 0, made = 0;
	for (int err = 0; !err; made += !err) {
		char key[16];
		snprintf(key, sizeof(key), "k%u", made);
		h_fill_value(v, FULL_OPEN_VAL, made, 1);
		err = h_put(s, key, v, FULL_OPEN_VAL);
		CHECK(err == 0 || err == -DV_EFULL);
		struct store_stats st;
		store_get_stats(s, &st);
		if (!err && st.zones_empty == GC_RESERVE_ZONES && st.zones_open == 1) {
			memcpy(image, dev_mem_image(dev), size);
			nkeys = made + 1;
		}
	}
	free(v);
	CHECK(nkeys > 200 && nkeys <= made);
	store_close(s);
	dev_close(dev);
	uint64_t stamp_max = 0;
	CHECK(full_open_once(image, size, FO_WRITES_FAIL, nkeys, &stamp_max) != 0); /* the zone to seal: a write */
	CHECK(full_open_once(image, size, FO_CUT_2ND, nkeys, &stamp_max) != 0); /* the zone index, then cut */
	CHECK_EQ(full_open_once(image, size, FO_CUT_2ND, nkeys, &stamp_max), 0); /* index taken: one write */
	for (unsigned i = 0; i < 24; i++) {
		enum full_open mode = i % 3 == 0 ? FO_CLEAN : i % 3 == 1 ? FO_TORN_SB : FO_WRITES_FAIL;
		CHECK_EQ(full_open_once(image, size, mode, nkeys, &stamp_max), 0);
	}
	CHECK_EQ(full_open_once(image, size, FO_CLEAN, nkeys, &stamp_max), 0);
	free(image);
	fprintf(stderr, "  %u keys; 28 opens of the full device (1 refused by write errors, 8 opened failed by them, 1 cut short), stamp %llu\n",
		nkeys, (unsigned long long)stamp_max);
}

static void open_with_a_log_zone_read_only(void)
{
	struct dev *dev;
	struct dev_mem_zoned z = {.zone_bytes = 512 * 1024, .zone_cap = 256 * 1024};
	CHECK_EQ(dev_open_mem_zoned_opts(&dev, 8 * MiB, &z, NULL), 0);
	struct store_config cfg = {.format_if_empty = true, .memo_entries = 1024};
	struct store *s;
	CHECK_EQ(store_open(&s, dev, &cfg), 0);
	uint8_t v[100];
	for (unsigned i = 0; i < 50; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%u", i);
		h_fill_value(v, sizeof(v), i, 1);
		CHECK_EQ(h_put(s, key, v, sizeof(v)), 0);
	}
	store_close(s);
	CHECK_EQ(store_open(&s, dev, &cfg), 0);
	uint64_t stamp = store_open_stamp(s);
	store_close(s);
	/* The log zone holding the newest copies goes read-only (both are
	 * tried: which one is current depends on how many copies were made). */
	for (unsigned lz = 0; lz < 2; lz++) {
		struct dev_zone zr;
		CHECK_EQ(dev_zone_report(dev, lz * z.zone_bytes, &zr), 0);
		if (zr.cond == DEV_ZONE_EMPTY)
			continue;
		dev_mem_zone_set(dev, lz * z.zone_bytes, DEV_ZONE_READONLY, zr.wp);
		CHECK_EQ(store_open(&s, dev, &cfg), 0);
		CHECK(store_open_stamp(s) > stamp);
		stamp = store_open_stamp(s);
		for (unsigned i = 0; i < 50; i++) {
			char key[16];
			snprintf(key, sizeof(key), "k%u", i);
			CHECK_EQ(h_get(s, key, got), 0);
			h_fill_value(v, sizeof(v), i, 1);
			CHECK(got->len == sizeof(v) && memcmp(got->bytes, v, sizeof(v)) == 0);
		}
		CHECK_EQ(h_put(s, "after", v, sizeof(v)), 0);
		store_close(s);
		CHECK_EQ(store_open(&s, dev, &cfg), 0);
		CHECK(store_open_stamp(s) > stamp);
		stamp = store_open_stamp(s);
		CHECK_EQ(h_get(s, "after", got), 0);
		store_close(s);
		break; /* the other log zone now holds the newest copy; both read-only cannot take one */
	}
	dev_close(dev);
}

/* One open of dev, the power cut after ok more writes (UINT32_MAX: no
 * cut; seed: the draws of the tear); *wok: the writes the device has
 * acknowledged so far. The store is closed if it opened; store_open's
 * result. */
static int cut_open(struct dev *dev, uint64_t *wok, uint32_t ok, uint64_t seed)
{
	struct store_config cfg = {.format_if_empty = true, .memo_entries = 1024};
	struct dev_fault_plan plan = {.seed = seed, .power_cut_after_writes = ok == UINT32_MAX ? 0 : *wok + ok};
	uint64_t w0 = dev_mem_stats(dev).writes;
	dev_mem_set_plan(dev, &plan);
	struct store *s;
	int err = store_open(&s, dev, &cfg);
	if (!err)
		store_close(s);
	struct dev_fault_stats st = dev_mem_stats(dev);
	*wok = st.power_cut ? plan.power_cut_after_writes : *wok + (st.writes - w0);
	dev_mem_power_on(dev);
	return err;
}

/* A zoned device's zone left OPEN by a run, then opens cut short: the
 * first at the zone index recovery writes for that zone (torn: the write
 * pointer moves past the data, the block holds part of the index or
 * nothing), the second writes the index at the write pointer, after the
 * torn block, finishes the zone and is cut at its superblock write. The
 * next open found the zone full on the device and looked for that index
 * only right after the records: the zone was sealed without an index
 * (ZONE_NO_INDEX) and never collected. Each such pair of cuts leaked a
 * zone, until writes failed with -DV_EFULL. (When the torn write kept
 * the whole index, the second open takes it: no cut then.) */
static void cut_seal_leaks_zone(void)
{
	struct dev *dev;
	struct dev_mem_zoned z = {.zone_bytes = 512 * 1024, .zone_cap = 256 * 1024, .max_open = 4, .max_active = 4};
	CHECK_EQ(dev_open_mem_zoned_opts(&dev, 8 * MiB, &z, NULL), 0);
	struct store_config cfg = {.format_if_empty = true, .memo_entries = 1024};
	uint64_t wok = 0;
	uint8_t v[64];
	enum { KEYS = 90 };
	unsigned ver[KEYS] = {0}, next = 0, leaky = 0;
	const unsigned cycles = 40;
	for (unsigned c = 0; c < cycles; c++) {
		struct store *s;
		uint64_t w0 = dev_mem_stats(dev).writes;
		CHECK_EQ(store_open(&s, dev, &cfg), 0);
		unsigned n = c % 2 ? 30 : 10; /* an index of one sector, or of two (torn: half of it) */
		for (unsigned i = 0; i < n; i++, next++) {
			char key[16];
			unsigned k = next % KEYS;
			snprintf(key, sizeof(key), "k%u", k);
			h_fill_value(v, sizeof(v), k, c + 1);
			int err = h_put(s, key, v, sizeof(v));
			if (err)
				fprintf(stderr, "  cycle %u: put %s\n", c, dv_strerror(err));
			CHECK_EQ(err, 0);
			ver[k] = c + 1;
		}
		store_close(s); /* its zone stays OPEN */
		wok += dev_mem_stats(dev).writes - w0;
		CHECK(cut_open(dev, &wok, 0, c + 1) != 0); /* the zone index torn */
		leaky += cut_open(dev, &wok, 1, c + 1) != 0; /* the index after it, then the superblock cut */
		CHECK_EQ(cut_open(dev, &wok, UINT32_MAX, 0), 0);
		w0 = dev_mem_stats(dev).writes;
		CHECK_EQ(store_open(&s, dev, &cfg), 0);
		for (uint32_t zz = 0; zz < s->sb.zone_count; zz++)
			if (s->sb.zones[zz].state == ZONE_FULL && s->sb.zones[zz].footer_block == ZONE_NO_INDEX) {
				fprintf(stderr, "  cycle %u: zone %u FULL without an index (gc_failures %u)\n", c, zz,
					s->zrt[zz].gc_failures);
				CHECK(0);
			}
		for (unsigned k = 0; k < KEYS; k++) {
			char key[16];
			snprintf(key, sizeof(key), "k%u", k);
			int err = h_get(s, key, got);
			CHECK_EQ(err, ver[k] ? 0 : -DV_ENOTFOUND);
			h_fill_value(v, sizeof(v), k, ver[k]);
			CHECK(!ver[k] || (got->len == sizeof(v) && memcmp(got->bytes, v, sizeof(v)) == 0));
		}
		store_close(s);
		wok += dev_mem_stats(dev).writes - w0;
	}
	CHECK(leaky >= 10); /* the sequence that leaked a zone ran */
	struct store_check_report r = h_check(dev, "cut_seal_leaks_zone");
	CHECK_EQ(r.damage, 0);
	dev_close(dev);
	fprintf(stderr, "  %u cycles, %u with the index written after a torn one and its superblock write cut: no zone leaked\n",
		cycles, leaky);
}

static const struct {
	const char *name;
	void (*run)(void);
} tests[] = {
	{"put_invisible_after_transit_flip_put", t_flip_put},
	{"put_invisible_after_transit_flip_setnx", t_flip_nx},
	{"put_invisible_after_transit_flip_del", t_flip_del},
	{"put_invisible_after_medium_flip", t_medium_flip},
	{"put_invisible_after_gc_moves", t_put_gc_moves},
	{"get_absent_after_gc_moves", t_get_gc_moves},
	{"gc_spins_on_full_device_14", t_full_small},
	{"gc_spins_on_full_device_300", t_full_300},
	{"gc_spins_on_full_device_mixed", t_full_mixed},
	{"deleted_value_back_after_corruption", t_damaged_tomb},
	{"older_value_back_after_corruption", t_damaged_value},
	{"damaged_key_stuck_value", t_rot_value},
	{"damaged_key_stuck_key_len", t_rot_key_len},
	{"damaged_key_stuck_tombstone", t_rot_tomb},
	{"damaged_key_stuck_no_restart", t_rot_no_restart},
	{"submit_eagain_fails_store", t_eagain},
	{"submit_eagain_fails_store_event_loop", t_eagain_loop},
	{"expiry_follows_injected_clock", expiry_follows_injected_clock},
	{"scan_misses_moved_records", scan_misses_moved_records},
	{"recovery_cuts_open_zone_after_transit_flip", t_recovery_open},
	{"recovery_drops_zone_index_after_transit_flip", t_recovery_sealed},
	{"get_sees_later_write_over_tombstone", t_later_tomb},
	{"get_sees_later_write_over_value", t_later_value},
	{"get_sees_later_write_after_gc_move_put", t_later_moved_put},
	{"get_sees_later_write_after_gc_move_del", t_later_moved_del},
	{"get_sees_later_write_after_gc_move_none", t_moved},
	{"get_sees_later_write_after_collect", t_later_collect},
	{"get_busy_on_earlier_write", get_busy_on_earlier_write},
	{"recovery_fails_on_superblock_magic_flips", t_recovery_sb_magic},
	{"recovery_fails_on_superblock_flips", t_recovery_sb_body},
	{"recovery_fails_on_transient_eio", t_recovery_eio},
	{"recovery_overflows_zone_index_entries", recovery_overflows_zone_index_entries},
	{"gc_keeps_record_damaged_after_reread_flip", gc_keeps_record_damaged_after_reread_flip},
	{"gc_gives_up_zone_on_transient_eio", gc_gives_up_zone_on_transient_eio},
	{"keylock_quadratic_pipelined_writes", keylock_quadratic_pipelined_writes},
	{"same_key_writes_one_flush_each", t_burst_plain},
	{"same_key_writes_one_flush_each_mixed", t_burst_mixed},
	{"same_key_writes_wait_while_flushing", same_key_writes_while_flushing},
	{"full_device_opens_many_times", full_device_opens_many_times},
	{"open_with_a_log_zone_read_only", open_with_a_log_zone_read_only},
	{"cut_seal_leaks_zone", cut_seal_leaks_zone},
};

int main(int argc, char **argv)
{
	got = malloc(sizeof(*got));
	CHECK(got != NULL);
	for (unsigned i = 0; i < DV_ARRAY_LEN(tests); i++) {
		bool run = argc < 2;
		for (int a = 1; a < argc; a++)
			run |= strncmp(tests[i].name, argv[a], strlen(argv[a])) == 0;
		if (!run)
			continue;
		double t0 = test_now_s();
		tests[i].run();
		fprintf(stderr, "ok %s (%.1f s)\n", tests[i].name, test_now_s() - t0);
	}
	free(got);
	return 0;
}
