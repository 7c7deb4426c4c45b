/* test_reclaim.c - the store reclaims what its host declared dead
 * (store.h: store_set_reclaim, store_reclaim_below), the cluster's
 * FLUSHDB of one keyspace in miniature.
 *
 * The host here: keys "<ks>:<n>" of keyspaces 'a'..'c' share one store; a
 * flush of keyspace k is one PUT of the host's own key "!fp<k>" (its value
 * the flush's number), whose seq is k's flush point; a record of k below it
 * is dead, for the host's reads (a GET answering such a record reads as
 * absent) and for the store's predicate.
 * - sweep: a flush of 'a' with 'b' resident; the sweep drops every record
 *   of 'a' and no other, relocates nothing, resets the zones left empty,
 *   and 'b' reads back whole, also after a restart;
 * - fill_flush_loop: rounds of "fill the device to ~60% in 'a', flush 'a'"
 *   with 'b' resident: without reclaim the device is full by round 3 (the
 *   control: what the test would see without the fix), with it 30 rounds
 *   fit;
 * - power_cuts: a seeded workload (overwrites, deletes, flushes of every
 *   keyspace, GC and sweeps under way) cut at a random device write, for
 *   many seeds; after the restart, and again after GC churn and a clean
 *   restart, every key reads as the reference model says: a key a durable
 *   flush killed never comes back, a key written after its keyspace's last
 *   flush reads its value.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "harness.h"
#include "io/dev_mem.h"
#include "testing.h"

#define KiB 1024u
#define MiB (1024u * KiB)
#define KS 3u

struct host {
	uint64_t fp[KS];   /* each keyspace's flush point (0: none) */
	uint64_t fno[KS];  /* the number of its newest flush */
	bool reclaim;      /* the store is given the predicate */
};

static bool host_dead(void *ctx, const void *key, uint32_t key_len, const struct store_record_out *rec,
		      bool tombstone)
{
	const struct host *h = ctx;
	const char *k = key;
	(void)tombstone;
	if (key_len < 3 || k[1] != ':' || k[0] < 'a' || k[0] >= 'a' + (int)KS)
		return false;
	return rec->seq < h->fp[k[0] - 'a'];
}

static void host_attach(struct store *s, struct host *h)
{
	if (!h->reclaim)
		return;
	store_set_reclaim(s, host_dead, h);
	uint64_t top = 0;
	for (unsigned k = 0; k < KS; k++)
		top = h->fp[k] > top ? h->fp[k] : top;
	if (top)
		store_reclaim_below(s, top);
}

/* The host's flush of keyspace k: 0, or the store's error. */
static int host_flush(struct store *s, struct host *h, unsigned k)
{
	char key[8], val[24];
	snprintf(key, sizeof(key), "!fp%c", 'a' + k);
	int n = snprintf(val, sizeof(val), "%llu", (unsigned long long)h->fno[k] + 1);
	uint64_t seq = 0;
	int err = h_write_cond(s, STORE_PUT, key, val, (uint32_t)n, STORE_ALWAYS, 0, &seq);
	if (err)
		return err;
	h->fno[k]++;
	h->fp[k] = seq;
	if (h->reclaim)
		store_reclaim_below(s, seq);
	return 0;
}

/* After a restart: the host reads its flush records back. */
static void host_load(struct store *s, struct host *h)
{
	struct h_value *v = malloc(sizeof(*v));
	CHECK(v != NULL);
	for (unsigned k = 0; k < KS; k++) {
		char key[8];
		snprintf(key, sizeof(key), "!fp%c", 'a' + k);
		int r = h_get(s, key, v);
		CHECK(r == 0 || r == -DV_ENOTFOUND);
		h->fp[k] = r == 0 ? v->seq : 0;
		h->fno[k] = 0;
		if (r == 0) {
			char num[24];
			CHECK(v->len > 0 && v->len < sizeof(num));
			memcpy(num, v->bytes, v->len);
			num[v->len] = 0; /* the value's bytes, not what the buffer held after them */
			h->fno[k] = strtoull(num, NULL, 10);
		}
	}
	free(v);
}

/* The host's GET: 0 with v filled, or -DV_ENOTFOUND (absent, or dead). */
static int host_get(struct store *s, const struct host *h, const char *key, struct h_value *v)
{
	int r = h_get(s, key, v);
	if (r == 0 && v->seq < h->fp[key[0] - 'a'])
		return -DV_ENOTFOUND;
	return r;
}

static void key_of(char *out, unsigned k, unsigned n) { snprintf(out, 24, "%c:%u", 'a' + k, n); }

static struct store_stats stats(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st;
}

/* Poll until the sweep and any collection are over (bounded). */
static void settle(struct store *s)
{
	for (unsigned i = 0; store_reclaim_pending(s) || store_gc_running(s); i++) {
		CHECK(store_poll(s, true) >= 0);
		CHECK(i < 10000000);
	}
}

/* ---- sweep ---- */

static void test_sweep(void)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 16 * MiB, 256 * KiB);
	struct host h = {.reclaim = true};
	host_attach(s, &h);
	uint8_t val[1500];
	char k[24];
	for (unsigned i = 0; i < 3000; i++) { /* 'a' three times over, 'b' once */
		key_of(k, i < 2000 ? 0 : 1, i < 2000 ? i % 1000 : i - 2000);
		h_fill_value(val, sizeof(val), i % 1000, i / 1000);
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
	}
	settle(s);
	struct store_stats before = stats(s);
	CHECK_EQ(before.keys, 2000 + 0);
	CHECK_EQ(host_flush(s, &h, 0), 0);
	settle(s);
	struct store_stats after = stats(s);
	CHECK_EQ(after.reclaim_dropped - before.reclaim_dropped, 1000);
	CHECK_EQ(after.keys, 1000 + 1); /* 'b' and the host's flush record */
	CHECK_EQ(after.gc_bytes_relocated, before.gc_bytes_relocated); /* nothing of 'a' moved */
	CHECK(after.reclaim_zones_freed > 0);
	CHECK(after.zones_empty > before.zones_empty);
	struct h_value *v = malloc(sizeof(*v));
	CHECK(v != NULL);
	for (unsigned i = 0; i < 1000; i++) {
		key_of(k, 0, i);
		CHECK_EQ(h_get(s, k, v), -DV_ENOTFOUND); /* gone from the store itself, not only hidden */
		key_of(k, 1, i);
		CHECK_EQ(h_get(s, k, v), 0);
		h_fill_value(val, sizeof(val), i, 2);
		CHECK(v->len == sizeof(val) && memcmp(v->bytes, val, sizeof(val)) == 0);
	}
	printf("  %llu records dropped, %llu zones swept, %llu freed, %u of %u zones empty\n",
	       (unsigned long long)after.reclaim_dropped, (unsigned long long)after.reclaim_zones_swept,
	       (unsigned long long)after.reclaim_zones_freed, after.zones_empty, after.zones_total);
	/* A restart: recovery may index older copies of 'a' again; the host
	 * declares its points again and the sweep drops them. */
	store_set_reclaim(s, NULL, NULL);
	struct store_config cfg = {0};
	s = h_reopen_mem(s, &dev, &cfg);
	host_load(s, &h);
	host_attach(s, &h);
	settle(s);
	for (unsigned i = 0; i < 1000; i++) {
		key_of(k, 0, i);
		CHECK_EQ(host_get(s, &h, k, v), -DV_ENOTFOUND);
		key_of(k, 1, i);
		CHECK_EQ(host_get(s, &h, k, v), 0);
	}
	CHECK_EQ(stats(s).keys, 1000 + 1);
	free(v);
	store_set_reclaim(s, NULL, NULL);
	store_close(s);
	dev_close(dev);
}

/* ---- fill, flush, again ---- */

/* Rounds of filling 'a' to ~60% of an 8 MiB device and flushing it, with
 * 'b' resident: the round the device first refused a write (0: none). */
static unsigned fill_flush_rounds(bool reclaim, unsigned rounds)
{
	struct store *s;
	struct dev *dev;
	h_open_mem(&s, &dev, 8 * MiB, 256 * KiB);
	struct host h = {.reclaim = reclaim};
	host_attach(s, &h);
	uint8_t val[1000];
	char k[24];
	unsigned full_at = 0;
	for (unsigned i = 0; i < 300; i++) {
		key_of(k, 1, i);
		h_fill_value(val, sizeof(val), i, 0);
		CHECK_EQ(h_put(s, k, val, sizeof(val)), 0);
	}
	for (unsigned r = 1; r <= rounds && !full_at; r++) {
		for (unsigned i = 0; i < 4000 && !full_at; i++) { /* ~4.2 MB of records */
			key_of(k, 0, i + r * 10000);
			h_fill_value(val, sizeof(val), i, r);
			int err = h_put(s, k, val, sizeof(val));
			CHECK(err == 0 || err == -DV_EFULL);
			if (err)
				full_at = r;
		}
		if (!full_at)
			CHECK_EQ(host_flush(s, &h, 0), 0);
	}
	struct h_value *v = malloc(sizeof(*v));
	CHECK(v != NULL);
	for (unsigned i = 0; i < 300; i++) { /* 'b' whole, whatever happened to 'a' */
		key_of(k, 1, i);
		CHECK_EQ(host_get(s, &h, k, v), 0);
		h_fill_value(val, sizeof(val), i, 0);
		CHECK(v->len == sizeof(val) && memcmp(v->bytes, val, sizeof(val)) == 0);
	}
	free(v);
	if (reclaim)
		printf("  30 rounds: %llu records dropped, %llu zones freed by sweeps, %llu bytes relocated\n",
		       (unsigned long long)stats(s).reclaim_dropped, (unsigned long long)stats(s).reclaim_zones_freed,
		       (unsigned long long)stats(s).gc_bytes_relocated);
	store_set_reclaim(s, NULL, NULL);
	store_close(s);
	dev_close(dev);
	return full_at;
}

static void test_fill_flush_loop(void)
{
	unsigned without = fill_flush_rounds(false, 10);
	printf("  without reclaim: device full in round %u\n", without);
	CHECK(without >= 1 && without <= 3); /* the control: the loop needs reclaim */
	CHECK_EQ(fill_flush_rounds(true, 30), 0);
}

/* ---- power cuts against a reference model ---- */

#define PC_KEYS 120u /* per keyspace */

struct model_key {
	bool present;      /* the newest acknowledged write is a PUT */
	uint64_t version;  /* its value's version */
	uint64_t flush_no; /* its keyspace's flush count when it was written */
	bool written;      /* written at all (else absent) */
};

struct model {
	struct model_key k[KS][PC_KEYS];
	uint64_t flushes_acked[KS];
	/* The op in flight at the cut (its outcome unknown). */
	bool pend;
	bool pend_flush;
	unsigned pend_ks, pend_key;
	bool pend_present;
	uint64_t pend_version;
};

/* What key (ks, i) must read after a restart whose durable flush count of
 * ks is fno: 1 absent, 2 present with version, 3 either that or the
 * pending write's outcome. */
static void model_check_key(struct store *s, const struct host *h, const struct model *m, unsigned ks, unsigned i,
			    struct h_value *v, uint64_t seed)
{
	char key[24];
	key_of(key, ks, i);
	int r = host_get(s, h, key, v);
	CHECK(r == 0 || r == -DV_ENOTFOUND);
	const struct model_key *mk = &m->k[ks][i];
	/* The acknowledged state, killed if a durable flush came after it. */
	bool want_present = mk->written && mk->present && mk->flush_no >= h->fno[ks];
	uint8_t val[1200];
	bool match_acked = want_present ? r == 0 && v->len >= 16 && memcmp(v->bytes, &mk->version, 8) == 0
					: r == -DV_ENOTFOUND;
	bool match_pend = false;
	if (m->pend && !m->pend_flush && m->pend_ks == ks && m->pend_key == i) {
		/* The write in flight at the cut: durable or not. Its flush
		 * number is the acknowledged count, like the acked writes'. */
		bool pend_live = m->pend_present && m->flushes_acked[ks] >= h->fno[ks];
		match_pend = pend_live ? r == 0 && v->len >= 16 && memcmp(v->bytes, &m->pend_version, 8) == 0
				       : r == -DV_ENOTFOUND;
	}
	(void)val;
	if (!match_acked && !match_pend) {
		fprintf(stderr, "seed %llu: key %s reads %s (seq %llu, fp %llu), model: %s v%llu flush_no %llu, durable flushes %llu\n",
			(unsigned long long)seed, key, r == 0 ? "present" : "absent",
			(unsigned long long)(r == 0 ? v->seq : 0), (unsigned long long)h->fp[ks],
			want_present ? "present" : "absent", (unsigned long long)mk->version,
			(unsigned long long)mk->flush_no, (unsigned long long)h->fno[ks]);
		CHECK(!"a key reads other than the model says");
	}
}

static void model_check(struct store *s, const struct host *h, const struct model *m, uint64_t seed)
{
	struct h_value *v = malloc(sizeof(*v));
	CHECK(v != NULL);
	for (unsigned ks = 0; ks < KS; ks++)
		for (unsigned i = 0; i < PC_KEYS; i++)
			model_check_key(s, h, m, ks, i, v, seed);
	free(v);
}

/* One seeded run cut after cut_after device writes (0: never); returns the
 * device writes the run made. */
static uint64_t power_cut_run(uint64_t seed, uint64_t cut_after)
{
	struct dev *dev;
	struct dev_fault_plan plan = {.seed = seed, .power_cut_after_writes = cut_after};
	CHECK_EQ(dev_open_mem(&dev, 4 * MiB, &plan), 0);
	struct store_config cfg = {.format_if_empty = true, .zone_bytes = 256 * KiB};
	struct store *s;
	int err = store_open(&s, dev, &cfg);
	struct host h = {.reclaim = true};
	struct model *m = calloc(1, sizeof(*m));
	CHECK(m != NULL);
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
	uint8_t val[1200];
	if (err == 0) {
		host_attach(s, &h);
		for (unsigned op = 0; op < 2500; op++) {
			uint64_t x = test_rand(&rng);
			unsigned ks = (unsigned)(x % KS), i = (unsigned)((x >> 8) % PC_KEYS);
			unsigned what = (unsigned)((x >> 20) % 1000);
			m->pend = true;
			if (what < 4) { /* a flush of ks: ~10 in a run */
				m->pend_flush = true;
				m->pend_ks = ks;
				err = host_flush(s, &h, ks);
				if (err)
					break;
				m->flushes_acked[ks]++;
			} else {
				bool del = what < 100;
				uint64_t version = op + 1;
				uint32_t len = 16 + (uint32_t)((x >> 32) % 1100);
				memset(val, (int)(version & 0xff), len);
				memcpy(val, &version, 8);
				char key[24];
				key_of(key, ks, i);
				m->pend_flush = false;
				m->pend_ks = ks;
				m->pend_key = i;
				m->pend_present = !del;
				m->pend_version = version;
				err = del ? h_del(s, key) : h_put(s, key, val, len);
				if (del && err == -DV_ENOTFOUND)
					err = 0;
				if (err)
					break;
				m->k[ks][i] = (struct model_key){.present = !del, .version = version,
								 .flush_no = m->flushes_acked[ks], .written = true};
			}
			m->pend = false;
		}
		store_set_reclaim(s, NULL, NULL);
		store_close(s);
	}
	uint64_t writes = dev_mem_stats(dev).writes;
	dev_mem_power_on(dev);
	struct store_config rc = {0};
	CHECK_EQ(store_open(&s, dev, &rc), 0);
	host_load(s, &h);
	/* The durable flush count is the acknowledged one or, with a flush in
	 * flight at the cut, one more. */
	for (unsigned ks = 0; ks < KS; ks++)
		CHECK(h.fno[ks] == m->flushes_acked[ks] ||
		      (m->pend && m->pend_flush && m->pend_ks == ks && h.fno[ks] == m->flushes_acked[ks] + 1));
	model_check(s, &h, m, seed); /* before the sweep: the host's filter */
	host_attach(s, &h);
	settle(s);
	model_check(s, &h, m, seed); /* after it: the store's own state */
	/* GC churn over the zones (keys of none of the keyspaces), then a
	 * clean restart: nothing comes back. */
	memset(val, 0x5a, sizeof(val));
	for (unsigned i = 0; i < 3000; i++) {
		char key[24];
		snprintf(key, sizeof(key), "z%u", i % 40);
		CHECK_EQ(h_put(s, key, val, sizeof(val)), 0);
	}
	settle(s);
	model_check(s, &h, m, seed);
	store_set_reclaim(s, NULL, NULL);
	s = h_reopen_mem(s, &dev, &rc);
	host_load(s, &h);
	model_check(s, &h, m, seed);
	host_attach(s, &h);
	settle(s);
	model_check(s, &h, m, seed);
	store_set_reclaim(s, NULL, NULL);
	store_close(s);
	dev_close(dev);
	free(m);
	return writes;
}

static void test_power_cuts(void)
{
	uint64_t seeds = getenv("DV_RECLAIM_SEEDS") ? strtoull(getenv("DV_RECLAIM_SEEDS"), NULL, 10) : 40;
	uint64_t total = power_cut_run(1, 0); /* no cut: the writes of a run */
	CHECK(total > 100);
	uint64_t rng = test_seed(7);
	for (uint64_t seed = 1; seed <= seeds; seed++)
		power_cut_run(seed, 1 + test_rand(&rng) % total);
	printf("  %llu seeds, each cut at a random one of ~%llu device writes\n", (unsigned long long)seeds,
	       (unsigned long long)total);
}

int main(void)
{
	test_begin("sweep");
	test_sweep();
	test_end("sweep");
	test_begin("fill_flush_loop");
	test_fill_flush_loop();
	test_end("fill_flush_loop");
	test_begin("power_cuts");
	test_power_cuts();
	test_end("power_cuts");
	return test_soft_failures() ? 1 : 0;
}
