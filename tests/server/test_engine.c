/* test_engine.c - the engine bridge against a model: ordered hand-back,
 * the value cache never answering with an overwritten or deleted value
 * (small cache: evictions; GC on a small device), read-modify-write
 * retries losing no update; GETs sharing a gather budget copy no more than
 * it, GETs with no_value copy nothing (issue 8 item 3). Review 1: 80 RMWs
 * and a PUT of one key at once run in arrival order, none failing (S6);
 * active expiry keeps one entry per key, however many writes (S8), finds
 * the keys with a TTL written before a restart, and those past its
 * bounds, and deletes them when due. Seeded: replay with DV_SEED=N. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/error.h"
#include "server/engine.h"
#include "server/expiry.h"
#include "storage/harness.h"
#include "testing.h"

#define KEYS 300u
#define BATCH_MAX 48u
#define VAL_MAX 700u

struct model {
	bool live[KEYS];
	uint32_t version[KEYS];
};

struct rig {
	struct store *s;
	struct dev *dev;
	struct engine *e;
	struct waker waker;
	struct eop_sink sink;
	struct eop ops[BATCH_MAX * 2];
};

static void key_of(uint32_t k, char *out) { snprintf(out, 32, "key:%u", k); }

/* Value bytes: "k=<k> v=<version>" then filler; the length depends on the
 * key only (so a read-modify-write can rewrite a value in place). */
static uint32_t value_of(uint32_t k, uint32_t version, char *out)
{
	int n = snprintf(out, VAL_MAX, "k=%05u v=%09u ", k, version);
	uint32_t len = (uint32_t)n + (k * 31u) % (VAL_MAX - 40u);
	for (uint32_t i = (uint32_t)n; i < len; i++)
		out[i] = (char)('a' + (i + k) % 26);
	return len;
}

static void expect_value(const struct eop *op, uint32_t k, uint32_t version)
{
	char want[VAL_MAX];
	uint32_t len = value_of(k, version, want);
	if (op->result != 0 || op->val_len != len || memcmp(op->val, want, len) != 0) {
		fprintf(stderr, "key %u: want version %u (%u bytes), got result %d, %u bytes: %.20s\n", k, version,
			len, op->result, op->val_len, op->result == 0 ? op->val : "");
		exit(1);
	}
}

/* RMW decision used here: bump the version in the value it read, in the
 * op's own copy (same length), and write that back. */
static enum rmw_action decide_bump(struct eop *e, uint64_t now_ms)
{
	DV_UNUSED(now_ms);
	if (!e->found) {
		e->result = -DV_ENOTFOUND;
		return RMW_FINISH;
	}
	unsigned k = 0, v = 0;
	char head[32] = {0}; /* the value is not NUL-terminated */
	memcpy(head, e->val, e->val_len < sizeof(head) - 1 ? e->val_len : sizeof(head) - 1);
	CHECK(sscanf(head, "k=%u v=%u", &k, &v) == 2);
	char tmp[VAL_MAX];
	uint32_t len = value_of(k, v + 1, tmp);
	CHECK_EQ(len, e->val_len);
	memcpy(e->val, tmp, len);
	e->arg = (int64_t)(v + 1);
	e->sop.value = e->val;
	e->sop.val_len = e->val_len;
	e->sop.expire_ms = 0;
	return RMW_PUT;
}

static void run_batch(struct rig *r, unsigned n)
{
	struct eop *first = &r->ops[0], *last = &r->ops[n - 1];
	for (unsigned i = 0; i + 1 < n; i++)
		r->ops[i].link.next = &r->ops[i + 1].link;
	engine_submit(r->e, first, last);
	unsigned back = 0;
	for (unsigned round = 0; back < n; round++) {
		CHECK(round < 10000000u);
		if (!engine_turn(r->e) && engine_in_flight(r->e) > 0)
			store_poll(r->s, true); /* wait for the device */
		for (struct mpsc_node *m = mpsc_take(&r->sink.done); m; m = m->next)
			back++;
	}
	CHECK_EQ(back, n);
	CHECK_EQ(engine_in_flight(r->e), 0);
}

static void op_init(struct rig *r, unsigned i, enum eop_kind kind, uint32_t k, uint32_t version)
{
	char key[32], val[VAL_MAX];
	key_of(k, key);
	uint32_t len = kind == EOP_PUT ? value_of(k, version, val) : 0;
	CHECK(eop_init(&r->ops[i], kind, key, (uint32_t)strlen(key), val, len) == 0);
	r->ops[i].sink = &r->sink;
	if (kind == EOP_RMW)
		r->ops[i].decide = decide_bump;
}

static void release_batch(struct rig *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		eop_release(&r->ops[i]);
}

/* Distinct keys per batch: every result is exact against the model. */
static void phase_model(struct rig *r, struct model *m, uint64_t *rng, unsigned batches)
{
	uint32_t keys[BATCH_MAX];
	for (unsigned b = 0; b < batches; b++) {
		unsigned n = 1 + (unsigned)(test_rand(rng) % BATCH_MAX);
		enum eop_kind kinds[BATCH_MAX];
		for (unsigned i = 0; i < n; i++) {
			bool dup;
			do {
				keys[i] = (uint32_t)(test_rand(rng) % KEYS);
				dup = false;
				for (unsigned j = 0; j < i; j++)
					dup |= keys[j] == keys[i];
			} while (dup);
			unsigned pick = (unsigned)(test_rand(rng) % 10);
			kinds[i] = pick < 4 ? EOP_GET : pick < 7 ? EOP_PUT : pick < 8 ? EOP_DEL : EOP_RMW;
			op_init(r, i, kinds[i], keys[i], m->version[keys[i]] + 1);
		}
		run_batch(r, n);
		for (unsigned i = 0; i < n; i++) {
			uint32_t k = keys[i];
			struct eop *op = &r->ops[i];
			switch (kinds[i]) {
			case EOP_GET:
				if (m->live[k])
					expect_value(op, k, m->version[k]);
				else
					CHECK_EQ(op->result, -DV_ENOTFOUND);
				break;
			case EOP_PUT:
				CHECK_EQ(op->result, 0);
				m->live[k] = true;
				m->version[k]++;
				break;
			case EOP_DEL:
				CHECK_EQ(op->result, m->live[k] ? 0 : -DV_ENOTFOUND);
				m->live[k] = false;
				break;
			default: /* RMW bump */
				if (!m->live[k]) {
					CHECK_EQ(op->result, -DV_ENOTFOUND);
				} else {
					CHECK_EQ(op->result, 0);
					m->version[k]++;
					CHECK_EQ(op->arg, m->version[k]);
				}
				break;
			}
		}
		release_batch(r, n);
	}
}

/* A GET racing a PUT and a DEL of the same key: whatever the GET saw, the
 * next GET must see the last write (a slow read never refills the cache
 * with an older value). Two RMWs of one key in one batch both apply. */
static void phase_races(struct rig *r, struct model *m, uint64_t *rng, unsigned rounds)
{
	for (unsigned i = 0; i < rounds; i++) {
		uint32_t k = (uint32_t)(test_rand(rng) % KEYS);
		bool del = test_rand(rng) % 3 == 0;
		op_init(r, 0, EOP_GET, k, 0);
		op_init(r, 1, EOP_PUT, k, m->version[k] + 1);
		op_init(r, 2, EOP_GET, k, 0);
		op_init(r, 3, del ? EOP_DEL : EOP_RMW, k, 0);
		op_init(r, 4, EOP_RMW, k, 0);
		bool was_live = m->live[k];
		run_batch(r, 5);
		m->version[k]++;
		m->live[k] = true;
		CHECK_EQ(r->ops[1].result, 0);
		if (del) {
			/* The DEL queues behind the PUT (key lock); the RMW's write
			 * queues behind the DEL, fails its compare-and-set and
			 * finds the key gone on its retry. */
			CHECK_EQ(r->ops[3].result, 0);
			CHECK_EQ(r->ops[4].result, -DV_ENOTFOUND);
			m->live[k] = false;
		} else {
			/* An RMW whose read ran before the PUT applied sees the old
			 * state: absent (not found) or the old value (then its
			 * compare-and-set fails and it retries on the new one). */
			for (unsigned j = 3; j <= 4; j++) {
				int res = r->ops[j].result;
				CHECK(res == 0 || (!was_live && res == -DV_ENOTFOUND));
				m->version[k] += res == 0;
			}
		}
		release_batch(r, 5);
		op_init(r, 0, EOP_GET, k, 0);
		run_batch(r, 1);
		if (m->live[k])
			expect_value(&r->ops[0], k, m->version[k]);
		else
			CHECK_EQ(r->ops[0].result, -DV_ENOTFOUND);
		release_batch(r, 1);
	}
}

/* GETs of live keys sharing one budget of about half their values: those
 * that fit have their exact value, the others fail with -E2BIG and copy
 * nothing; the copies never pass the budget. Answered from the cache (all
 * hits: in order), the GET that does not fit is the last one looked up.
 * The same keys with no_value: found, nothing copied. */
static void phase_budget(struct rig *r, struct model *m, uint64_t *rng, bool all_cached)
{
	uint32_t keys[BATCH_MAX];
	unsigned n = 0;
	for (uint32_t k = (uint32_t)(test_rand(rng) % KEYS), i = 0; i < KEYS && n < BATCH_MAX; i++, k = (k + 1) % KEYS)
		if (m->live[k])
			keys[n++] = k;
	CHECK(n >= 8);
	char val[VAL_MAX];
	uint64_t half = 0;
	for (unsigned i = 0; i < n / 2; i++)
		half += value_of(keys[i], m->version[keys[i]], val);
	struct eop_budget budget = {.left = half};
	struct vcache_stats before, after;
	engine_cache_stats(r->e, &before);
	for (unsigned i = 0; i < n; i++) {
		op_init(r, i, EOP_GET, keys[i], 0);
		r->ops[i].budget = &budget;
	}
	run_batch(r, n);
	engine_cache_stats(r->e, &after);
	uint64_t copied = 0;
	unsigned fit = 0, over = 0;
	for (unsigned i = 0; i < n; i++) {
		struct eop *op = &r->ops[i];
		if (op->result == -E2BIG) {
			CHECK(!op->found && op->val_len == 0);
			over++;
			continue;
		}
		expect_value(op, keys[i], m->version[keys[i]]);
		copied += op->val_len;
		fit++;
	}
	CHECK(copied <= half && budget.over && over > 0 && fit > 0);
	CHECK_EQ(budget.left, half - copied);
	if (all_cached) { /* in order: the first n/2 fit, the next is the one looked up and refused */
		CHECK_EQ(fit, n / 2);
		CHECK_EQ(r->ops[n / 2].result, -E2BIG);
		CHECK_EQ(after.hits - before.hits, n / 2 + 1); /* the rest failed without a lookup */
	}
	release_batch(r, n);
	for (unsigned i = 0; i < n; i++) {
		op_init(r, i, EOP_GET, keys[i], 0);
		r->ops[i].no_value = true;
	}
	run_batch(r, n);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(r->ops[i].result, 0);
		CHECK(r->ops[i].found && r->ops[i].val_len == 0 && r->ops[i].seq > 0);
	}
	release_batch(r, n);
}

/* Read-modify-writes of one key under contention (review 1 S6): after a
 * PUT, 40 RMWs, a PUT, 40 more, handed over at once, run one after another
 * in arrival order as Redis runs them: none fails (the engine used to give
 * up with -EBUSY after RMW_RETRIES_MAX lost compare-and-sets), each sees
 * the one before it, the PUT lands between the two runs. (The first PUT is
 * acknowledged first: a read need not see a write still in flight.) */
static void phase_rmw_queue(struct rig *r, struct model *m, uint64_t *rng)
{
	enum { RUN = 40 };
	uint32_t k = (uint32_t)(test_rand(rng) % KEYS);
	op_init(r, 0, EOP_PUT, k, 0);
	run_batch(r, 1);
	CHECK_EQ(r->ops[0].result, 0);
	release_batch(r, 1);
	op_init(r, 0, EOP_GET, k, 0); /* keeps the indexes below */
	for (unsigned j = 0; j < RUN; j++)
		op_init(r, 1 + j, EOP_RMW, k, 0);
	op_init(r, 1 + RUN, EOP_PUT, k, 1000);
	for (unsigned j = 0; j < RUN; j++)
		op_init(r, 2 + RUN + j, EOP_RMW, k, 0);
	run_batch(r, 2 + 2 * RUN);
	CHECK(r->ops[0].result == 0 && r->ops[0].found);
	CHECK_EQ(r->ops[1 + RUN].result, 0);
	unsigned failed = 0;
	for (unsigned j = 0; j < RUN; j++) {
		failed += r->ops[1 + j].result != 0;
		failed += r->ops[2 + RUN + j].result != 0;
	}
	if (failed)
		fprintf(stderr, "rmw queue: %u of %u read-modify-writes of one key failed (first: %d)\n", failed,
			2 * RUN, r->ops[1].result ? r->ops[1].result : r->ops[2 + RUN].result);
	CHECK_EQ(failed, 0);
	for (unsigned j = 0; j < RUN; j++) {
		CHECK_EQ(r->ops[1 + j].arg, (int64_t)(j + 1));
		CHECK_EQ(r->ops[2 + RUN + j].arg, (int64_t)(1001 + j));
	}
	release_batch(r, 2 + 2 * RUN);
	op_init(r, 0, EOP_GET, k, 0);
	run_batch(r, 1);
	expect_value(&r->ops[0], k, 1000 + RUN);
	release_batch(r, 1);
	m->live[k] = true;
	m->version[k] = 1000 + RUN;
}

static uint64_t live_keys(struct rig *r)
{
	struct store_stats st;
	store_get_stats(r->s, &st);
	return st.keys - st.tombstones;
}

static uint64_t expiry_tracked(struct rig *r)
{
	struct engine_counters ec;
	engine_get_counters(r->e, &ec);
	return ec.expiry_tracked;
}

/* PUT n keys "ttl:<first+i>" with an expiry at `at` (0: none). */
static void put_ttl_keys(struct rig *r, unsigned first, unsigned n, uint64_t at)
{
	for (unsigned done = 0; done < n;) {
		unsigned b = n - done < BATCH_MAX ? n - done : BATCH_MAX;
		for (unsigned i = 0; i < b; i++) {
			char key[32];
			snprintf(key, sizeof(key), "ttl:%u", first + done + i);
			CHECK(eop_init(&r->ops[i], EOP_PUT, key, (uint32_t)strlen(key), "v", 1) == 0);
			r->ops[i].sink = &r->sink;
			r->ops[i].sop.expire_ms = at;
		}
		run_batch(r, b);
		for (unsigned i = 0; i < b; i++)
			CHECK_EQ(r->ops[i].result, 0);
		release_batch(r, b);
		done += b;
	}
}

/* Turn the engine until the store holds `want` live keys (active expiry
 * deleted the rest) or 20 s pass; the live keys then. */
static uint64_t wait_live(struct rig *r, uint64_t want)
{
	for (unsigned i = 0; i < 2000 && live_keys(r) != want; i++) {
		engine_turn(r->e);
		if (engine_in_flight(r->e) > 0 || store_pending(r->s) > 0)
			store_poll(r->s, false);
		usleep(10000);
	}
	return live_keys(r);
}

/* Active expiry remembers keys, not writes (review 1 S8): 30 keys written
 * 20 times each with a TTL are 30 entries, not 600. */
static void phase_expiry_keys(struct rig *r)
{
	uint64_t far = store_now_ms() + 3600u * 1000u;
	uint64_t before = expiry_tracked(r);
	for (unsigned round = 0; round < 20; round++)
		put_ttl_keys(r, 0, 30, far + round);
	uint64_t tracked = expiry_tracked(r) - before;
	if (tracked != 30)
		fprintf(stderr, "expiry: 30 keys written 20 times with a TTL: %llu tracked\n",
			(unsigned long long)tracked);
	CHECK_EQ(tracked, 30);
	put_ttl_keys(r, 0, 30, 0); /* no TTL any more: nothing to expire */
	CHECK_EQ(expiry_tracked(r), before);
}

/* Keys with a TTL written before a restart are deleted when due after it
 * (the engine finds them by scanning the store). */
static void phase_expiry_restart(struct rig *r)
{
	uint64_t live0 = live_keys(r);
	put_ttl_keys(r, 100, 40, store_now_ms() + 300);
	put_ttl_keys(r, 200, 10, 0);
	CHECK_EQ(live_keys(r), live0 + 50);
	CHECK(engine_drain(r->e) == 0);
	engine_close(r->e);
	r->s = h_reopen_mem(r->s, &r->dev, &(struct store_config){0});
	CHECK(engine_open(&r->e, r->s, &r->waker, 64u << 20) == 0);
	uint64_t live = wait_live(r, live0 + 10);
	if (live != live0 + 10)
		fprintf(stderr, "expiry after a restart: %llu live keys 20 s after 40 keys expired, want %llu\n",
			(unsigned long long)live, (unsigned long long)(live0 + 10));
	CHECK_EQ(live, live0 + 10);
}

/* Past the table's bounds (8 keys here), keys with a TTL are still
 * deleted when due: a scan of the store finds them. */
static void phase_expiry_overflow(struct rig *r)
{
	uint64_t live0 = live_keys(r);
	struct engine_counters before, after;
	engine_get_counters(r->e, &before);
	engine_set_expiry_bounds(r->e, 8, 1u << 30);
	put_ttl_keys(r, 300, 60, store_now_ms() + 200);
	engine_get_counters(r->e, &after);
	CHECK(after.expiry_tracked <= 8 && after.expiry_untracked - before.expiry_untracked >= 52);
	CHECK(after.expiry_scanning);
	uint64_t live = wait_live(r, live0);
	if (live != live0)
		fprintf(stderr, "expiry past the table's bounds: %llu live keys 20 s after 60 keys expired, want %llu\n",
			(unsigned long long)live, (unsigned long long)live0);
	CHECK_EQ(live, live0);
	engine_get_counters(r->e, &after);
	CHECK(after.expiry_deleted - before.expiry_deleted >= 52);
	engine_set_expiry_bounds(r->e, EXPIRY_KEYS_MAX, EXPIRY_BYTES_MAX);
	for (unsigned i = 0; i < 200 && after.expiry_scanning; i++) { /* the last pass ends clean */
		engine_turn(r->e);
		if (engine_in_flight(r->e) > 0 || store_pending(r->s) > 0)
			store_poll(r->s, false);
		usleep(20000);
		engine_get_counters(r->e, &after);
	}
	CHECK(!after.expiry_scanning);
}

static void rig_open(struct rig *r, uint64_t cache_bytes)
{
	memset(r, 0, sizeof(*r));
	h_open_mem(&r->s, &r->dev, 24u << 20, 1u << 20);
	r->waker.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(r->waker.efd >= 0);
	r->sink.waker = &r->waker;
	CHECK(engine_open(&r->e, r->s, &r->waker, cache_bytes) == 0);
}

static void rig_close(struct rig *r)
{
	CHECK(engine_drain(r->e) == 0);
	engine_close(r->e);
	store_close(r->s);
	dev_close(r->dev);
	close(r->waker.efd);
}

int main(void)
{
	uint64_t seed = test_seed(0x5eed);
	uint64_t cache_sizes[] = {0, 48u << 10, 64u << 20};
	for (unsigned c = 0; c < 3; c++) {
		uint64_t rng = seed + c;
		struct rig r;
		struct model m = {0};
		rig_open(&r, cache_sizes[c]);
		phase_model(&r, &m, &rng, 1500);
		phase_races(&r, &m, &rng, 600);
		phase_model(&r, &m, &rng, 500);
		for (unsigned i = 0; i < 50; i++)
			phase_budget(&r, &m, &rng, cache_sizes[c] == (64u << 20));
		phase_rmw_queue(&r, &m, &rng);
		phase_model(&r, &m, &rng, 100);
		phase_expiry_keys(&r);
		struct vcache_stats cs;
		struct store_stats st;
		engine_cache_stats(r.e, &cs);
		store_get_stats(r.s, &st);
		printf("cache %llu bytes: hits %llu misses %llu fills %llu skipped %llu evictions %llu; gc zones reset %llu\n",
		       (unsigned long long)cache_sizes[c], (unsigned long long)cs.hits, (unsigned long long)cs.misses,
		       (unsigned long long)cs.fills, (unsigned long long)cs.fills_skipped,
		       (unsigned long long)cs.evictions, (unsigned long long)st.gc_zones_reset);
		CHECK(cs.bytes <= cs.bytes_max || cache_sizes[c] == 0);
		if (cache_sizes[c])
			CHECK(cs.hits > 0);
		if (cache_sizes[c] == (48u << 10)) /* small: values evicted, then read back and filled */
			CHECK(cs.evictions > 0 && cs.fills > 0);
		CHECK(st.gc_zones_reset > 0); /* the small device was collected under the cache */
		if (c == 2) {
			phase_expiry_restart(&r);
			phase_expiry_overflow(&r);
		}
		rig_close(&r);
	}
	printf("ok\n");
	return 0;
}
