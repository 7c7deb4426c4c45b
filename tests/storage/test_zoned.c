/* test_zoned.c - the engine on a device with NVMe ZNS semantics (dev_mem
 * zoned mode): sequential zones accept writes only at their write pointer,
 * so any write the engine placed anywhere else fails the test. Covers
 * format (superblocks in the conventional zone), group commit, sealing,
 * GC with zone resets, restart, and power cuts that tear a write and leave
 * the write pointer past the torn data (recovery must put the zone index
 * at the write pointer). The real ioctls (BLKREPORTZONE, BLKRESETZONE,
 * BLKFINISHZONE) are not exercised: no zoned device on this machine. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "harness.h"
#include "io/dev_mem.h"
#include "testing.h"

#define MiB (1024u * 1024u)
enum { KEYS = 3000, QD = 64 };

struct zslot {
	struct store_op op;
	char key[32];
	uint32_t n;
	uint64_t version;
	bool busy;
	uint8_t val[1024];
};

static uint64_t *acked;
static uint64_t maybe[KEYS]; /* a write that failed or was cut off: may have landed */
static struct h_value *got;

static uint32_t vlen(uint32_t n, uint64_t v) { return 16 + (uint32_t)((n * 7 + v * 13) % 1000); }

static void zdone(struct store_op *op)
{
	struct zslot *sl = (struct zslot *)op;
	sl->busy = false;
	if (op->result == 0)
		acked[sl->n] = sl->version;
	else
		maybe[sl->n] = sl->version; /* a torn write may still hold the record whole */
}

/* Overwrite random keys at QD; slot i owns keys = i mod QD. Stops after ops
 * or when the store fails (power cut). */
static void load(struct store *s, struct zslot *slots, uint64_t *rng, uint64_t *version, uint64_t ops)
{
	for (uint64_t done = 0, guard = 0; done < ops; guard++) {
		CHECK(guard < 10000000);
		for (unsigned i = 0; i < QD && done < ops; i++) {
			struct zslot *sl = &slots[i];
			if (sl->busy)
				continue;
			sl->n = (uint32_t)(test_rand(rng) % (KEYS / QD)) * QD + i;
			sl->version = ++*version;
			sprintf(sl->key, "z-%u", sl->n);
			uint32_t len = vlen(sl->n, sl->version);
			h_fill_value(sl->val, len, sl->n, sl->version);
			sl->op = (struct store_op){.kind = STORE_PUT, .key = sl->key, .key_len = (uint32_t)strlen(sl->key),
						   .value = sl->val, .val_len = len, .done = zdone};
			int rc = store_submit(s, &sl->op);
			if (rc == -DV_EFATAL)
				return;
			CHECK_EQ(rc, 0);
			sl->busy = true;
			done++;
		}
		if (store_poll(s, true) < 0)
			return;
	}
}

static bool value_is(const struct h_value *v, uint32_t n, uint64_t version)
{
	static uint8_t expect[1024];
	uint32_t len = vlen(n, version);
	if (v->len != len)
		return false;
	h_fill_value(expect, len, n, version);
	return memcmp(v->bytes, expect, len) == 0;
}

/* Every key holds its last acknowledged version, or (after a power cut)
 * the version that was in flight when power went: then that one becomes
 * the acknowledged state. */
static void verify(struct store *s, const uint64_t *inflight)
{
	for (uint32_t n = 0; n < KEYS; n++) {
		char k[32];
		sprintf(k, "z-%u", n);
		int rc = h_get(s, k, got);
		CHECK(rc == 0 || rc == -DV_ENOTFOUND);
		bool as_acked = acked[n] ? rc == 0 && value_is(got, n, acked[n]) : rc == -DV_ENOTFOUND;
		if (as_acked)
			continue;
		CHECK(inflight && inflight[n] && rc == 0 && value_is(got, n, inflight[n]));
		acked[n] = inflight[n];
	}
}

static struct store *open_store(struct dev *dev)
{
	struct store_config cfg = {.format_if_empty = true};
	struct store *s;
	CHECK_EQ(store_open(&s, dev, &cfg), 0);
	return s;
}

int main(void)
{
	got = malloc(sizeof(*got));
	acked = calloc(KEYS, sizeof(*acked));
	struct zslot *slots = calloc(QD, sizeof(*slots));
	CHECK(got && acked && slots);
	uint64_t rng = test_seed(3), version = 0;

	/* GC and restarts: ~4 MiB live in 32 x 1 MiB zones, overwritten ~15x. */
	struct dev *dev;
	CHECK_EQ(dev_open_mem_zoned(&dev, 32 * MiB, 1 * MiB, 1, NULL), 0);
	struct store *s = open_store(dev);
	struct store_stats st;
	uint64_t resets = 0;
	for (int round = 0; round < 3; round++) {
		load(s, slots, &rng, &version, 25000);
		CHECK_EQ(store_drain(s), 0);
		verify(s, NULL);
		store_get_stats(s, &st);
		resets += st.gc_zones_reset;
		store_close(s);
		CHECK_EQ(dev_mem_stats(dev).zoned_rejects, 0);
		s = open_store(dev);
		verify(s, NULL);
	}
	CHECK(resets > 10);
	fprintf(stderr, "zoned: %llu zones reset by GC, 0 writes off the write pointer\n",
		(unsigned long long)resets);
	store_close(s);
	dev_close(dev);

	/* Power cuts: tear a write, power on, recover, check, go on writing. */
	uint64_t cuts = 0, torn = 0;
	for (uint64_t seed = 1; seed <= 30; seed++) {
		memset(acked, 0, KEYS * sizeof(*acked));
		memset(maybe, 0, sizeof(maybe));
		CHECK_EQ(dev_open_mem_zoned(&dev, 16 * MiB, 512 * 1024, 2, NULL), 0); /* superblocks need 520 KiB */
		s = open_store(dev);
		struct dev_fault_plan plan = {.seed = seed, .power_cut_after_writes = 20 + seed * 37 % 400};
		dev_mem_set_plan(dev, &plan);
		load(s, slots, &rng, &version, 100000);
		CHECK(dev_mem_stats(dev).power_cut);
		cuts++;
		store_close(s); /* everything in flight fails */
		for (unsigned i = 0; i < QD; i++)
			slots[i].busy = false;
		dev_mem_power_on(dev);
		s = open_store(dev);
		store_get_stats(s, &st);
		torn += st.recovery_torn_tails;
		verify(s, maybe);
		CHECK_EQ(dev_mem_stats(dev).zoned_rejects, 0);
		load(s, slots, &rng, &version, 3000); /* the store goes on after it */
		CHECK_EQ(store_drain(s), 0);
		verify(s, NULL);
		store_close(s);
		CHECK_EQ(h_check(dev, "zoned power cut").damage, 0);
		CHECK_EQ(dev_mem_stats(dev).zoned_rejects, 0);
		dev_close(dev);
	}
	fprintf(stderr, "zoned power cuts: %llu, torn tails recovered: %llu\n", (unsigned long long)cuts,
		(unsigned long long)torn);
	free(slots);
	free(acked);
	free(got);
	return 0;
}
