/* test_model.c - the store against a reference model, seed by seed
 * (TigerBeetle's VOPR idea at engine scale).
 *
 * Each run, derived from one seed: a small memory device (4 to 10 zones of
 * 256 KiB to 1 MiB, so GC runs all the time, some runs filled to the brim)
 * behind the adversarial scheduler of dev_mem (reordered, partial and held
 * completions, early transfers, transient submit errors, in-transit read
 * flips and EIO), random PUT/DEL/GET, FLUSH (half the runs) and
 * conditional ops (IF_ABSENT,
 * IF_PRESENT, IF_SEQ, IF_SEQ_EXPIRED; expiry with far-past or far-future
 * expire_ms, which need no clock) over few keys, some sharing the 31 hash
 * bits the index keys on, up to 48 ops in flight through store_submit/
 * store_poll (done() sometimes submits the next op itself), forced GC,
 * power cuts at any moment and clean restarts, both followed by recovery
 * on a copy of the medium, and in some runs bit flips on the medium. In
 * half the runs (the seed's top hash bit) a zone reset keeps the zone's old
 * bytes, as a regular file's does: nothing may take a reset zone to read
 * as zeros.
 *
 * The contract as the model encodes it (store.h), checked op by op:
 * - Writes of one key complete in submission order, and each one's result
 *   is the one its condition gives against the key's state after the
 *   writes submitted before it (PUT 0; IF_ABSENT -EEXIST on a live value;
 *   IF_PRESENT -DV_ENOTFOUND without one; IF_SEQ -ESTALE unless the live
 *   record has cond_seq, cond_seq 0 on a PUT meaning "no live value"; DEL
 *   0 on a live value, -DV_ENOTFOUND otherwise, writing a tombstone over
 *   an expired value; IF_SEQ_EXPIRED -DV_ENOTFOUND when it deletes the
 *   expired record with that seq, -ESTALE otherwise, or also -ESTALE once
 *   GC turned that value into a tombstone). A PUT/DEL completing with 0
 *   gives the seq of its record, higher than the key's previous one.
 *   Errors allowed instead, with no effect: -DV_EFULL only when the live
 *   data (model) and the writes in flight take over half of the zones
 *   left to user data; -EIO/-DV_ECORRUPT only when the device injected a
 *   read fault into one of the op's own reads (dev_mem's fault_fn tells)
 *   or the medium was damaged under the key or a key sharing its 31
 *   index bits (when the op was submitted or done); -EBUSY only after
 *   READ_RETRIES_MAX collections while it was out; -DV_EFATAL (unknown effect)
 *   only after a power cut. Never a hang: every run is bounded in polls,
 *   and GC resetting zones while no op completes is a failure.
 * - A GET returns the state after some prefix of the key's writes: never
 *   older than the last write acknowledged before the GET was submitted,
 *   nor older than what a GET that completed before it was submitted
 *   returned, and never the effect of a write submitted after it. The
 *   value is byte for byte the one written (values carry key and write
 *   id), with its meta, expire_ms and seq; an expired value is never
 *   returned. -DV_ECORRUPT/-EIO only as for writes; -EBUSY only when the
 *   version it may return is gone: GC collected a zone while the GET was
 *   out and a write of the key submitted after the GET completed before
 *   it, or GC collected more than READ_RETRIES_MAX zones meanwhile.
 * - A FLUSH completes after every op submitted before it and before every
 *   op submitted after it; applied (0), it is in every key's history a
 *   write that leaves the key absent, at a seq above every seq
 *   acknowledged before it and below every later write's; a GET submitted
 *   while it was pending returns nothing older. -DV_EFATAL (unknown effect)
 *   only after a power cut, and then it applied to every key or to none:
 *   the keys whose acknowledged value only it could have removed must all
 *   be found after recovery, or all be gone.
 * - After quiescence, store_get_stats keys - tombstones is the number of
 *   keys the model holds a value for (plus those whose value has expired
 *   and that GC has not yet turned into tombstones).
 * - After a power cut and recovery every key holds its last acknowledged
 *   state or that of a write not acknowledged (submitted after it); after a
 *   clean restart exactly its last state.
 * - With the medium damaged under a key, its GET may fail with
 *   -DV_ECORRUPT (find nothing only in store.h's residual risk: the damage
 *   hit the key length of a key sharing its 31 index bits with another,
 *   may_be_gone), but never returns an older value (also after GC and
 *   restarts). Conditional writes over the damaged record may fail with
 *   -DV_ECORRUPT; an unconditional PUT or DEL never does: it replaces the
 *   record, before or after a restart (after a damage the next ops favour
 *   that key, and some runs restart with the damage in place).
 *
 * Usage: test_model [--seed N | --start S --seeds N] [--verbose] [--recovery-faults]
 * Environment: DV_MODEL_SEEDS, DV_MODEL_START, DV_MODEL_RECOVERY_FAULTS
 * (defaults: CI seeds 1..800, then 1..200 again with --recovery-faults;
 * DV_TEST_QUICK=1 runs 100 and 25). A failing seed prints the command that
 * replays it; the same seed replays bit for bit.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "base/hash.h"
#include "io/dev_mem.h"
#include "storage/record.h"
#include "storage/store_int.h"
#include "testing.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define FRONT_BYTES MiB /* superblock copies before zone 0 */
#define FAR_FUTURE_MS 4102444800000ull /* 2100-01-01 */
#define SLOTS_MAX 48u
#define HANG_POLLS 20000u
#define TRACE_LINES 48u
#define TRACE_BYTES 200u
#define FAILURES_MAX 40u
#define SEEDS_DEFAULT 800u
#define SEEDS_QUICK 100u
#define RF_SEEDS_DEFAULT 200u /* then again with --recovery-faults */
#define RF_SEEDS_QUICK 25u

/* ---- keys sharing 31 hash bits (index segment + fingerprint) ---- */

#define PAIR_NAMES (1u << 20)
#define PAIRS_MAX 64u

static char pair_names[PAIRS_MAX][2][12];
static unsigned pairs_found;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Birthday search among "c<n>": about 256 pairs in 2^20 names. */
static void find_pairs(void)
{
	uint64_t *v = malloc(PAIR_NAMES * sizeof(*v));
	CHECK(v != NULL);
	char name[12];
	for (uint32_t i = 0; i < PAIR_NAMES; i++) {
		int n = snprintf(name, sizeof(name), "c%u", i);
		v[i] = (store_key_hash(name, (uint32_t)n) >> 33) << 32 | i;
	}
	qsort(v, PAIR_NAMES, sizeof(*v), cmp_u64);
	for (uint32_t i = 0; i + 1 < PAIR_NAMES && pairs_found < PAIRS_MAX; i++) {
		if (v[i] >> 32 != v[i + 1] >> 32)
			continue;
		snprintf(pair_names[pairs_found][0], 12, "c%u", (uint32_t)v[i]);
		snprintf(pair_names[pairs_found][1], 12, "c%u", (uint32_t)v[i + 1]);
		const char *a = pair_names[pairs_found][0], *b = pair_names[pairs_found][1];
		CHECK(store_key_hash(a, (uint32_t)strlen(a)) >> 33 == store_key_hash(b, (uint32_t)strlen(b)) >> 33);
		pairs_found++;
		i++;
	}
	free(v);
	CHECK(pairs_found >= 16);
}

/* ---- the model ---- */

enum { E_INIT = 0, E_PUT, E_DEL, E_SETTLE, E_FLUSH };
enum { S_PENDING = 0, S_APPLIED, S_NOEFFECT, S_UNKNOWN };

/* One write (or the state found after a restart), in the key's history.
 * When applied, the fields after "state" describe the key after it. */
struct ent {
	uint32_t key, kpos;
	uint8_t kind, cond, status;
	uint32_t val_len, meta_len;
	uint64_t expire_ms, cond_seq;
	int result;
	bool seen;         /* a GET returned its value before it completed */
	uint64_t seen_seq;
	/* state */
	bool present;      /* a live value: value_ent's */
	bool expired_rec;  /* the key's record is value_ent's PUT, expired */
	uint32_t value_ent;
	uint64_t seq;      /* of the key's record; 0 = unknown */
	uint32_t space;    /* device bytes of the key's record */
};

struct mkey {
	const char *name;
	uint32_t len;
	uint64_t hash;
	uint32_t *hist; /* ent ids; hist[0] = 0, the initial "never written" */
	uint32_t n, cap;
	uint32_t n_done;     /* hist[1..n_done] completed */
	uint32_t state_kpos; /* the applied entry that gives the current state */
	uint32_t get_floor;  /* a GET may not return a state older than this */
	bool damaged;        /* the medium was damaged under its record */
	bool blind;          /* ... in its key length: whose record it is cannot be read off it */
	bool paired;         /* another key shares its 31 index bits */
};

/* A FLUSH: one entry in every key's history (ids first .. first + nkeys - 1,
 * key i's at first + i), submitted at the same point of all of them. */
struct mflush {
	uint32_t first;
	uint8_t status;
	uint64_t seq;
};

struct run;

struct slot {
	struct store_op op;
	struct run *r;
	uint32_t key, ent;
	bool busy, faulted, settle, hold;
	int settle_res;
	uint32_t settle_x;
	uint64_t settle_seq;
	uint32_t floor, last; /* GET: kpos bounds taken at submit */
	uint32_t flush_ix;    /* GET: the newest FLUSH not done at submit, or NO_FLUSH */
	uint64_t gens0;       /* zone_gens() at submit */
	bool damaged0;        /* near_damage() at submit */
	bool own_damaged0;    /* GET: the key's own record was damaged at submit */
	bool gone_ok0;        /* GET: may_be_gone() at submit */
	uint8_t *val;
	uint8_t meta[40];
};

/* A GET observation waiting for the writes it may have seen to complete. */
struct obs {
	uint32_t key, floor, last, x; /* x: value's entry, 0 = not found */
	uint64_t seq;
	uint32_t flush_ix; /* the slot's */
	bool used, damaged; /* damaged: the key's record was damaged when the GET was submitted or completed */
	bool gone_ok;       /* ... and may have lost its index entry (may_be_gone) */
};

#define NO_FLUSH UINT32_MAX

struct params {
	uint32_t zones, zone_bytes, nkeys, npairs, slots, ops;
	uint32_t val_max, small_pct;
	bool fill, expiry, meta, cuts, restarts, damage, holds, recovery_faults, bursts;
	uint32_t cut_per_mille, restart_per_mille, gc_per_mille, quiesce_per_mille, resubmit_pct, burst_pct;
	uint32_t flush_per_mille; /* of op starts (drawn from the run's flush stream) */
	struct store_config cfg;
	struct dev_fault_plan plan; /* faults and scheduling while the store runs */
};

struct run {
	uint64_t seed;
	bool verbose;
	jmp_buf jb;     /* out of the run, from the test's own loop */
	jmp_buf cb_jb;  /* out of a done() callback, back into the store */
	bool in_cb, failed, abandon;
	uint32_t dump_key; /* the key a failure is about (verbose: its index entries are shown) */
	uint64_t rng;
	uint64_t flush_rng; /* flush draws only: a run without FLUSH draws what it drew before FLUSH existed */
	struct params p;
	struct dev *dev;
	struct store *s;
	uint64_t dev_bytes;
	struct mkey *keys;
	char *names;
	struct ent *ents;
	uint32_t n_ents, ents_cap;
	struct mflush *flushes;
	uint32_t n_flushes, flushes_cap;
	uint32_t flush_pending; /* the newest FLUSH submitted and not done, or NO_FLUSH */
	struct slot *flush_slot; /* its slot */
	uint32_t flush_unknown; /* the first FLUSH of unknown effect since the last recovery, or NO_FLUSH */
	struct slot *slots; /* p.slots + 1 (the last one for settling) */
	struct obs obs[SLOTS_MAX + 1];
	uint32_t busy;
	uint64_t ops_left, ops_done, polls, last_progress_poll, last_progress_resets;
	uint64_t live_space, inflight_space;
	bool cut, damaged_any, stop_submit;
	uint32_t focus_key, focus_left; /* ops that favour the key just damaged */
	uint32_t burst_key, burst_left; /* ops of one key submitted together, mostly writes */
	uint32_t efull, cuts, restarts, flips, fill_next;
	uint64_t gc_started;
	char trace[TRACE_LINES][TRACE_BYTES];
	uint32_t trace_n;
	const char *fail_class;
	const char *argv0;
};

/* --no: knobs turned off after the draws (a seed keeps its other choices). */
static const char *const knob_names[] = {"eagain", "flips", "eio", "holds", "sched", "cuts", "restarts",
					 "damage", "fill", "expiry", "flush", "bursts"};
enum { NO_EAGAIN = 1, NO_FLIPS = 2, NO_EIO = 4, NO_HOLDS = 8, NO_SCHED = 16, NO_CUTS = 32, NO_RESTARTS = 64,
       NO_DAMAGE = 128, NO_FILL = 256, NO_EXPIRY = 512, NO_FLUSH_OPS = 1024, NO_BURSTS = 2048 };
static unsigned knobs_off;

/* Failed runs stay reachable (their store may still hold ops): no leak reports. */
static struct run *graveyard[FAILURES_MAX];
static bool recovery_faults_flag;

/* The options a replay needs besides the seed. */
static const char *replay_flags(void)
{
	static char buf[160];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s", recovery_faults_flag ? " --recovery-faults" : "");
	const char *sep = " --no ";
	for (unsigned k = 0; k < DV_ARRAY_LEN(knob_names); k++)
		if (knobs_off & (1u << k)) {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", sep, knob_names[k]);
			sep = ",";
		}
	return buf;
}
static unsigned graveyard_n;

static uint64_t rnd(struct run *r) { return test_rand(&r->rng); }
static uint32_t below(struct run *r, uint32_t n) { return n ? (uint32_t)(rnd(r) % n) : 0; }
static bool pct(struct run *r, uint32_t p) { return below(r, 100) < p; }
static bool per_mille(struct run *r, uint32_t p) { return below(r, 1000) < p; }
static uint32_t below_flush(struct run *r, uint32_t n) { return (uint32_t)(test_rand(&r->flush_rng) % n); }

static void tracef(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dump_store(const struct run *r);
static void dump_key(struct run *r, uint32_t i);
static void tracef(struct run *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *line = r->trace[r->trace_n++ % TRACE_LINES];
	vsnprintf(line, TRACE_BYTES, fmt, ap);
	va_end(ap);
	if (r->verbose)
		fprintf(stderr, "  %s\n", line);
}

static void fail(struct run *r, const char *cls, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
static void fail(struct run *r, const char *cls, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!r->verbose) {
		uint32_t n = r->trace_n < TRACE_LINES ? r->trace_n : TRACE_LINES;
		fprintf(stderr, "seed %llu: last %u events:\n", (unsigned long long)r->seed, n);
		for (uint32_t i = r->trace_n - n; i < r->trace_n; i++)
			fprintf(stderr, "  %s\n", r->trace[i % TRACE_LINES]);
	}
	if (r->verbose && r->s && r->dump_key < r->p.nkeys)
		dump_key(r, r->dump_key);
	fprintf(stderr, "seed %llu: FAIL [%s] %s\n", (unsigned long long)r->seed, cls, msg);
	fprintf(stderr, "seed %llu: replay: %s --seed %llu --verbose%s\n", (unsigned long long)r->seed, r->argv0,
		(unsigned long long)r->seed, replay_flags());
	r->fail_class = cls;
	r->failed = true;
	/* Never unwind through the store or the device: a failure seen in a
	 * callback ends the callback; the run's loop then stops the run. */
	if (r->in_cb)
		longjmp(r->cb_jb, 1);
	longjmp(r->jb, 1);
}

static const char *errname(int e)
{
	static char buf[8][24];
	static unsigned k;
	switch (e) {
	case 0: return "0";
	case -DV_ENOTFOUND: return "ENOTFOUND";
	case -DV_ECORRUPT: return "ECORRUPT";
	case -DV_EFULL: return "EFULL";
	case -DV_EFATAL: return "EFATAL";
	case -EEXIST: return "EEXIST";
	case -ESTALE: return "ESTALE";
	case -EIO: return "EIO";
	case -EAGAIN: return "EAGAIN";
	case -EOVERFLOW: return "EOVERFLOW";
	case -EBUSY: return "EBUSY";
	default: break;
	}
	char *b = buf[k++ % 8];
	snprintf(b, 24, "%d", e);
	return b;
}

static const char *cond_name(int kind, int cond)
{
	static const char *put[] = {"PUT", "PUT_NX", "PUT_XX", "PUT_IFSEQ", "?"};
	static const char *del[] = {"DEL", "?", "?", "DEL_IFSEQ", "DEL_IFEXP"};
	return kind == E_PUT ? put[cond] : kind == E_DEL ? del[cond] : kind == E_FLUSH ? "FLUSH" : "SETTLE";
}

/* Device bytes a record takes (GC's relocation cost rule) plus its entry
 * in the zone index. */
static uint32_t rec_space(uint32_t key_len, uint32_t meta_len, uint32_t val_len)
{
	uint32_t n = rec_size(key_len, meta_len, val_len);
	return (n <= DV_BLOCK_BYTES ? n : DV_ROUND_UP(n, DV_BLOCK_BYTES)) + ZIDX_ENTRY_BYTES;
}

static uint32_t new_ent(struct run *r, uint32_t key, uint8_t kind)
{
	if (r->n_ents == r->ents_cap) {
		r->ents_cap = r->ents_cap ? r->ents_cap * 2 : 1024;
		r->ents = realloc(r->ents, r->ents_cap * sizeof(*r->ents));
		CHECK(r->ents != NULL);
	}
	uint32_t id = r->n_ents++;
	r->ents[id] = (struct ent){.key = key, .kind = kind};
	if (kind == E_INIT)
		return id;
	struct mkey *k = &r->keys[key];
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 8;
		k->hist = realloc(k->hist, k->cap * sizeof(*k->hist));
		CHECK(k->hist != NULL);
	}
	r->ents[id].kpos = k->n;
	k->hist[k->n++] = id;
	return id;
}

static struct ent *kent(struct run *r, const struct mkey *k, uint32_t kpos) { return &r->ents[k->hist[kpos]]; }

static void set_state(struct run *r, struct mkey *k, uint32_t kpos)
{
	r->live_space -= kent(r, k, k->state_kpos)->space;
	k->state_kpos = kpos;
	r->live_space += kent(r, k, kpos)->space;
}

/* ---- values: [u32 key][u32 entry id][bytes from both], meta likewise ---- */

static void fill_bytes(uint8_t *v, uint32_t len, uint32_t key, uint32_t id, uint32_t salt)
{
	uint64_t x = (uint64_t)key * 0x9e3779b97f4a7c15ull ^ ((uint64_t)id << 20) ^ salt;
	for (uint32_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = (uint8_t)(x >> (56 - (i % 8) * 8));
	}
}

static void make_value(uint8_t *v, uint32_t len, uint32_t key, uint32_t id)
{
	DV_ASSERT(len >= 8);
	memcpy(v, &key, 4);
	memcpy(v + 4, &id, 4);
	fill_bytes(v + 8, len - 8, key, id, 0);
}

/* The entry whose value this is, or fail: a value must be byte for byte
 * one written for this very key. */
static uint32_t decode_value(struct run *r, uint32_t key, const struct store_record_out *o)
{
	uint32_t k, id;
	if (o->val_len < 8)
		fail(r, "garbled-value", "GET %s: value of %u bytes (every value written has >= 8)", r->keys[key].name,
		     o->val_len);
	memcpy(&k, o->value, 4);
	memcpy(&id, o->value + 4, 4);
	if (k != key)
		fail(r, "wrong-key", "GET %s returned a value written for key %u (%s)", r->keys[key].name, k,
		     k < r->p.nkeys ? r->keys[k].name : "?");
	if (id == 0 || id >= r->n_ents || r->ents[id].key != key || r->ents[id].kind != E_PUT ||
	    r->ents[id].val_len != o->val_len)
		fail(r, "garbled-value", "GET %s: value claims write #%u, no such PUT of %u bytes", r->keys[key].name,
		     id, o->val_len);
	const struct ent *e = &r->ents[id];
	uint8_t *want = malloc(e->val_len > e->meta_len ? e->val_len : e->meta_len + 1);
	CHECK(want != NULL);
	make_value(want, e->val_len, key, id);
	bool ok = memcmp(want, o->value, e->val_len) == 0;
	fill_bytes(want, e->meta_len, key, id, 1);
	bool meta_ok = o->meta_len == e->meta_len && (!e->meta_len || memcmp(want, o->meta, e->meta_len) == 0);
	free(want);
	if (!ok || !meta_ok)
		fail(r, "garbled-value", "GET %s: value of write #%u differs from what was written (value %s, meta %s)",
		     r->keys[key].name, id, ok ? "ok" : "bad", meta_ok ? "ok" : "bad");
	if (o->expire_ms != e->expire_ms)
		fail(r, "wrong-result", "GET %s: write #%u expire_ms %llu, returned %llu", r->keys[key].name, id,
		     (unsigned long long)e->expire_ms, (unsigned long long)o->expire_ms);
	if (e->expire_ms && e->expire_ms < FAR_FUTURE_MS)
		fail(r, "wrong-result", "GET %s returned write #%u, which expired in 1970", r->keys[key].name, id);
	return id;
}

/* ---- write outcomes ---- */

struct outcome {
	int res[2];      /* allowed results */
	bool applies[2]; /* whether that result changes the key's state */
	unsigned n;
};

static struct outcome expect(const struct ent *e, const struct ent *prev)
{
	bool live = prev->present, exp = prev->expired_rec;
	uint64_t seq = prev->seq;
	struct outcome o = {.n = 1};
	bool ok;
	if (e->kind == E_PUT) {
		switch (e->cond) {
		case STORE_IF_ABSENT: ok = !live; o.res[0] = ok ? 0 : -EEXIST; break;
		case STORE_IF_PRESENT: ok = live; o.res[0] = ok ? 0 : -DV_ENOTFOUND; break;
		case STORE_IF_SEQ:
			ok = e->cond_seq == 0 ? !live : live && seq == e->cond_seq;
			o.res[0] = ok ? 0 : -ESTALE;
			break;
		default: ok = true; o.res[0] = 0; break;
		}
		o.applies[0] = ok;
		return o;
	}
	switch (e->cond) {
	case STORE_IF_SEQ:
		ok = live && e->cond_seq != 0 && seq == e->cond_seq;
		o.res[0] = ok ? 0 : -ESTALE;
		o.applies[0] = ok;
		break;
	case STORE_IF_SEQ_EXPIRED:
		/* deletes it, or GC made it a tombstone first; seq 0: an expired
		 * value of unknown seq found after a power cut */
		if (exp && (seq == e->cond_seq || seq == 0)) {
			o = (struct outcome){.res = {-DV_ENOTFOUND, -ESTALE}, .applies = {true, false}, .n = 2};
		} else {
			o.res[0] = -ESTALE;
		}
		break;
	default:
		o.res[0] = live ? 0 : -DV_ENOTFOUND;
		o.applies[0] = live || exp; /* a tombstone over an expired value */
		break;
	}
	return o;
}

static bool efull_allowed(const struct run *r)
{
	uint64_t usable = (uint64_t)(r->p.zones - 3) * r->p.zone_bytes;
	return 2 * (r->live_space + r->inflight_space) > usable;
}

static uint32_t ent_space(const struct run *r, const struct ent *e)
{
	uint32_t kl = r->keys[e->key].len;
	return e->kind == E_PUT ? rec_space(kl, e->meta_len, e->val_len) : rec_space(kl, 0, 0);
}

static void apply_ent(struct run *r, struct mkey *k, struct ent *e, uint64_t out_seq)
{
	const struct ent *prev = kent(r, k, k->state_kpos);
	e->status = S_APPLIED;
	if (e->result == 0) {
		e->seq = out_seq;
		if (prev->seq && out_seq <= prev->seq)
			fail(r, "wrong-result", "%s %s #%u: seq %llu not above the key's previous %llu",
			     cond_name(e->kind, e->cond), k->name, k->hist[e->kpos], (unsigned long long)out_seq,
			     (unsigned long long)prev->seq);
	}
	bool expired = e->kind == E_PUT && e->expire_ms && e->expire_ms < FAR_FUTURE_MS;
	e->present = e->kind == E_PUT && !expired;
	e->expired_rec = e->kind == E_PUT && expired;
	e->value_ent = e->kind == E_PUT ? k->hist[e->kpos] : 0;
	e->space = ent_space(r, e);
	set_state(r, k, e->kpos);
	if (e->result == 0)
		k->damaged = k->blind = false;
}

/* -EIO/-DV_ECORRUPT are allowed when a fault hit the op's reads, or the
 * medium was damaged under a record it may have read: the key's, or that
 * of a key sharing its 31 index bits (whose record it cannot tell from its
 * own when it does not verify), when it was submitted or done. */
static bool near_damage(const struct run *r, uint32_t key)
{
	if (!r->damaged_any)
		return false;
	uint64_t bits = r->keys[key].hash >> 33;
	for (uint32_t i = 0; i < r->p.nkeys; i++)
		if (r->keys[i].damaged && r->keys[i].hash >> 33 == bits)
			return true;
	return false;
}

/* The one way a damaged record may leave the index (store.h's residual
 * risk): whose it is could not be told (its key length was hit), and a
 * write of a key sharing its 31 index bits, finding no record of its own,
 * replaced it as its own. The key then reads absent (until a restart
 * indexes its damaged record again). */
static bool may_be_gone(const struct mkey *k) { return k->damaged && k->blind && k->paired; }

static uint64_t zone_gens(const struct store *s);

static bool write_error_ok(struct run *r, int res, bool faulted, uint64_t gens0)
{
	if (res == -DV_EFULL) {
		if (!efull_allowed(r) && !r->cut && r->verbose)
			dump_store(r);
		if (!efull_allowed(r) && !r->cut) /* after a cut GC cannot read: anything goes */
			fail(r, "efull-early", "a write failed with EFULL while the model holds %llu bytes live and "
			     "%llu in flight on %u zones of %u KiB",
			     (unsigned long long)r->live_space, (unsigned long long)r->inflight_space, r->p.zones,
			     r->p.zone_bytes / KiB);
		r->efull++;
		return true;
	}
	if (res == -EIO || res == -DV_ECORRUPT)
		return faulted || r->cut;
	if (res == -EBUSY) /* GC moved the key's record READ_RETRIES_MAX times (get_busy_ok) */
		return zone_gens(r->s) - gens0 >= READ_RETRIES_MAX;
	if (res == -DV_EFATAL) {
		if (!r->cut)
			fail(r, "efatal", "a write failed with EFATAL (the store failed) without a power cut");
		return true;
	}
	return false;
}

static void check_deferred(struct run *r, uint32_t key);

/* e's result is one o allows: apply it (or not) and say so. */
static bool take_outcome(struct run *r, struct mkey *k, struct ent *e, const struct outcome *o, uint64_t out_seq)
{
	for (unsigned i = 0; i < o->n; i++)
		if (e->result == o->res[i]) {
			if (o->applies[i])
				apply_ent(r, k, e, out_seq);
			else
				e->status = S_NOEFFECT;
			return true;
		}
	return false;
}

static void write_done(struct run *r, struct slot *sl)
{
	struct ent *e = &r->ents[sl->ent];
	struct mkey *k = &r->keys[e->key];
	int res = sl->op.result;
	e->result = res;
	r->dump_key = e->key;
	r->inflight_space -= ent_space(r, e);
	tracef(r, "done   #%u %s %s -> %s seq %llu%s", sl->ent, cond_name(e->kind, e->cond), k->name, errname(res),
	       (unsigned long long)sl->op.out.seq, sl->faulted ? " (read fault)" : "");
	if (e->kpos != k->n_done + 1)
		fail(r, "order", "%s %s #%u completed before an earlier write of the key (#%u)",
		     cond_name(e->kind, e->cond), k->name, sl->ent, k->hist[k->n_done + 1]);
	k->n_done++;
	const struct ent *prev = kent(r, k, k->state_kpos);
	struct outcome o = expect(e, prev);
	static const struct ent absent = {0};
	struct outcome o2 = expect(e, &absent); /* the damaged record may be gone (may_be_gone) */
	uint64_t out_seq = sl->op.out.seq;
	/* A DEL over a record GC found damaged cannot tell whether that PUT had
	 * expired: it reports 0 (store.h). */
	static const struct ent live = {.present = true};
	struct outcome o3 = expect(e, &live);
	bool blind_del = k->damaged && e->kind == E_DEL && e->cond == STORE_ALWAYS && prev->expired_rec;
	bool matched = take_outcome(r, k, e, &o, out_seq) || (may_be_gone(k) && take_outcome(r, k, e, &o2, out_seq)) ||
		       (blind_del && take_outcome(r, k, e, &o3, out_seq));
	/* An unconditional write replaces a damaged record (or a fresh
	 * tombstone hides it): it never fails for it, before or after a
	 * restart. Conditions cannot be judged on it: -DV_ECORRUPT. */
	if (!matched && res == -DV_ECORRUPT && e->cond == STORE_ALWAYS && !r->cut)
		fail(r, "damaged-stuck", "%s %s #%u -> ECORRUPT: an unconditional write failed over a damaged record",
		     cond_name(e->kind, e->cond), k->name, sl->ent);
	if (!matched) {
		if (!write_error_ok(r, res, sl->faulted || sl->damaged0 || near_damage(r, e->key), sl->gens0))
			fail(r, "wrong-result", "%s %s #%u (cond_seq %llu) -> %s, the model says %s%s%s (key state: %s, "
			     "seq %llu)", cond_name(e->kind, e->cond), k->name, sl->ent, (unsigned long long)e->cond_seq,
			     errname(res), errname(o.res[0]), o.n > 1 ? " or " : "", o.n > 1 ? errname(o.res[1]) : "",
			     prev->present ? "live" : prev->expired_rec ? "expired" : "absent",
			     (unsigned long long)prev->seq);
		e->status = res == -DV_EFATAL ? S_UNKNOWN : S_NOEFFECT;
	}
	if (e->seen && (e->status == S_NOEFFECT || (e->status == S_APPLIED && e->seq != e->seen_seq)))
		fail(r, "phantom-read", "a GET of %s returned the value of #%u (seq %llu) before it completed, and it "
		     "completed with %s seq %llu", k->name, sl->ent, (unsigned long long)e->seen_seq, errname(res),
		     (unsigned long long)e->seq);
	check_deferred(r, e->key);
}

/* ---- GET judgement ---- */

/* The states a GET with kpos bounds [floor, last] may return. A GET
 * submitted while a FLUSH was pending waited for it: if that FLUSH
 * applied, nothing before it may be returned. */
static void judge_get(struct run *r, const struct obs *given)
{
	struct obs o = *given;
	const struct obs *ob = &o;
	struct mkey *k = &r->keys[ob->key];
	r->dump_key = ob->key;
	if (ob->flush_ix != NO_FLUSH) {
		const struct ent *fe = &r->ents[r->flushes[ob->flush_ix].first + ob->key];
		DV_ASSERT(fe->kpos <= ob->last);
		if (fe->status == S_APPLIED && fe->kpos > o.floor)
			o.floor = fe->kpos;
	}
	uint32_t match = UINT32_MAX;
	for (uint32_t p = ob->floor; p <= ob->last && match == UINT32_MAX; p++) {
		const struct ent *c = kent(r, k, p);
		if (p > ob->floor && c->status != S_APPLIED && c->status != S_UNKNOWN)
			continue; /* refused or failed: the state before it stays */
		if (p > ob->floor && c->status == S_UNKNOWN) { /* may have applied: what it would give */
			bool gives_value = c->kind == E_PUT && !(c->expire_ms && c->expire_ms < FAR_FUTURE_MS);
			if (ob->x ? gives_value && k->hist[p] == ob->x : !gives_value)
				match = p;
			continue;
		}
		if (ob->x ? c->present && c->value_ent == ob->x : !c->present)
			match = p;
	}
	if (match == UINT32_MAX && ob->x) {
		const struct ent *xe = &r->ents[ob->x];
		if (xe->kpos > ob->last)
			fail(r, "future-value", "GET %s returned #%u, a write submitted after the GET (key history %u..%u "
			     "allowed)", k->name, ob->x, ob->floor, ob->last);
		if (xe->kpos < ob->floor)
			fail(r, "stale-value", "GET %s returned #%u (key write %u), older than write %u (#%u) acknowledged, "
			     "read or flushed before the GET was submitted%s", k->name, ob->x, xe->kpos, ob->floor,
			     k->hist[ob->floor], ob->damaged ? " (medium damaged under the key)" : "");
		fail(r, "phantom-read", "GET %s returned #%u, a write that completed with %s", k->name, ob->x,
		     errname(xe->result));
	}
	if (match == UINT32_MAX) {
		if (ob->gone_ok)
			return; /* the damaged record may be gone */
		for (uint32_t p = ob->last + 1; p < k->n; p++) {
			const struct ent *c = kent(r, k, p);
			if (c->status == S_APPLIED && !c->present)
				fail(r, "future-value", "GET %s found nothing: the effect of %s #%u%s, submitted after the GET "
				     "(key history %u..%u allowed, all with a value)", k->name, cond_name(c->kind, c->cond),
				     k->hist[p], c->kind == E_PUT ? " (a value that expired in 1970)" : "", ob->floor, ob->last);
		}
		fail(r, "lost-value", "GET %s found nothing, but the key holds a value in every state from write %u (#%u) "
		     "to write %u (#%u)", k->name, ob->floor, k->hist[ob->floor], ob->last, k->hist[ob->last]);
	}
	const struct ent *c = kent(r, k, match);
	if (ob->x && c->status == S_APPLIED && c->seq && c->seq != ob->seq)
		fail(r, "wrong-result", "GET %s returned #%u with seq %llu, written with seq %llu", k->name, ob->x,
		     (unsigned long long)ob->seq, (unsigned long long)c->seq);
	if (match > k->get_floor && c->status == S_APPLIED)
		k->get_floor = match;
}

static void check_deferred(struct run *r, uint32_t key)
{
	for (unsigned i = 0; i < DV_ARRAY_LEN(r->obs); i++) {
		struct obs *ob = &r->obs[i];
		if (ob->used && ob->key == key && ob->last <= r->keys[key].n_done) {
			ob->used = false;
			judge_get(r, ob);
		}
	}
}

/* ---- FLUSH ---- */

static void slot_done(struct store_op *op);

/* A FLUSH completed. The store ran it after every op submitted before it
 * and before every op submitted after it: in each key's history it comes
 * right after the writes submitted before it. Applied (0): every key is
 * absent, at a seq above every seq acknowledged before it (the writes
 * after it must get higher ones: apply_ent checks). -DV_EFATAL: unknown
 * effect, after a power cut only; -DV_EFULL as for a write (it writes one
 * record); nothing else. */
static void flush_done(struct run *r, struct slot *sl)
{
	struct mflush *f = &r->flushes[sl->ent];
	int res = sl->op.result;
	tracef(r, "done   FLUSH %u -> %s seq %llu", sl->ent, errname(res), (unsigned long long)sl->op.out.seq);
	if (r->flush_pending == sl->ent)
		r->flush_pending = NO_FLUSH; /* flushes complete in order: none is pending now */
	for (uint32_t i = 0; i < r->p.nkeys; i++) {
		struct mkey *k = &r->keys[i];
		const struct ent *e = &r->ents[f->first + i];
		r->dump_key = i;
		if (e->kpos != k->n_done + 1)
			fail(r, "order", "FLUSH %u completed before %s #%u of %s, submitted before it", sl->ent,
			     cond_name(kent(r, k, k->n_done + 1)->kind, kent(r, k, k->n_done + 1)->cond),
			     k->hist[k->n_done + 1], k->name);
		k->n_done++;
		if (res == 0 && kent(r, k, k->state_kpos)->seq >= sl->op.out.seq)
			fail(r, "wrong-result", "FLUSH %u: seq %llu not above %s's %llu, acknowledged before it", sl->ent,
			     (unsigned long long)sl->op.out.seq, k->name,
			     (unsigned long long)kent(r, k, k->state_kpos)->seq);
	}
	uint8_t status = S_APPLIED;
	if (res == -DV_EFATAL && r->cut)
		status = S_UNKNOWN;
	else if (res == -DV_EFULL && (efull_allowed(r) || r->cut))
		status = S_NOEFFECT;
	else if (res != 0)
		fail(r, "wrong-result", "FLUSH %u -> %s%s", sl->ent, errname(res), r->cut ? "" : " without a power cut");
	f->status = status;
	f->seq = res == 0 ? sl->op.out.seq : 0;
	if (status == S_UNKNOWN && r->flush_unknown == NO_FLUSH)
		r->flush_unknown = sl->ent;
	for (uint32_t i = 0; i < r->p.nkeys; i++) {
		struct mkey *k = &r->keys[i];
		struct ent *e = &r->ents[f->first + i];
		e->result = res;
		e->status = status;
		if (status == S_APPLIED) {
			e->seq = f->seq;
			e->space = 0; /* the key's records are all dead */
			set_state(r, k, e->kpos);
			k->damaged = false; /* a damaged record is dead too */
		}
	}
	for (uint32_t i = 0; i < r->p.nkeys; i++)
		check_deferred(r, i);
}

static void start_flush(struct run *r, struct slot *sl)
{
	if (r->n_flushes == r->flushes_cap) {
		r->flushes_cap = r->flushes_cap ? r->flushes_cap * 2 : 16;
		r->flushes = realloc(r->flushes, r->flushes_cap * sizeof(*r->flushes));
		CHECK(r->flushes != NULL);
	}
	uint32_t ix = r->n_flushes++;
	struct mflush *f = &r->flushes[ix];
	*f = (struct mflush){.first = r->n_ents, .status = S_PENDING};
	for (uint32_t i = 0; i < r->p.nkeys; i++) {
		uint32_t id = new_ent(r, i, E_FLUSH);
		DV_ASSERT(id == f->first + i);
	}
	sl->key = UINT32_MAX;
	sl->ent = ix;
	sl->faulted = sl->settle = sl->hold = false;
	sl->op = (struct store_op){.kind = STORE_FLUSH, .done = slot_done};
	r->flush_pending = ix;
	r->flush_slot = sl;
	tracef(r, "submit FLUSH %u", ix);
	int err = store_submit(r->s, &sl->op);
	if (err)
		fail(r, err == -DV_EFATAL ? "efatal" : "submit", "store_submit of a FLUSH -> %s", errname(err));
	sl->busy = true;
	r->busy++;
	r->ops_left--;
}

/* Sum of the zone generations: it grows with every collection (and every
 * empty zone recovery resets). */
static uint64_t zone_gens(const struct store *s)
{
	uint64_t n = 0;
	for (uint32_t z = 0; z < s->sb.zone_count; z++)
		n += s->sb.zones[z].gen;
	return n;
}

/* -EBUSY from a GET: only when the version it may return is gone (store.h):
 * GC collected a zone while the GET was out, and a write of the key
 * submitted after the GET wrote a record before the GET completed (its
 * done() ran first: the GET found that record on looking again); or GC
 * collected READ_RETRIES_MAX times meanwhile (each look-up again needs a
 * collection, or a move that a collection's generation change follows). */
static bool get_busy_ok(struct run *r, const struct slot *sl)
{
	const struct mkey *k = &r->keys[sl->key];
	uint64_t collections = zone_gens(r->s) - sl->gens0;
	if (collections >= READ_RETRIES_MAX)
		return true;
	for (uint32_t p = sl->last + 1; p < k->n && collections > 0; p++)
		if (kent(r, k, p)->status == S_APPLIED)
			return true;
	return false;
}

static void get_done(struct run *r, struct slot *sl)
{
	struct mkey *k = &r->keys[sl->key];
	int res = sl->op.result;
	struct obs ob = {.key = sl->key, .floor = sl->floor, .last = sl->last, .flush_ix = sl->flush_ix,
			 .damaged = k->damaged || sl->own_damaged0, .gone_ok = may_be_gone(k) || sl->gone_ok0};
	if (res == 0) {
		ob.x = decode_value(r, sl->key, &sl->op.out);
		ob.seq = sl->op.out.seq;
		struct ent *xe = &r->ents[ob.x];
		if (xe->status == S_PENDING && !xe->seen) { /* verified when it completes */
			xe->seen = true;
			xe->seen_seq = ob.seq;
		}
	} else if (res != -DV_ENOTFOUND) {
		bool damaged = sl->damaged0 || near_damage(r, sl->key);
		bool ok = ((res == -DV_ECORRUPT || res == -EIO) && (sl->faulted || damaged)) || (res == -EIO && r->cut) ||
			  (res == -EBUSY && get_busy_ok(r, sl));
		tracef(r, "done   GET %s -> %s%s", k->name, errname(res), sl->faulted ? " (read fault)" : "");
		if (!ok)
			fail(r, "get-error", "GET %s -> %s without a fault in its reads", k->name, errname(res));
		return;
	}
	tracef(r, "done   GET %s -> %s #%u seq %llu (allowed %u..%u)%s", k->name, errname(res), ob.x,
	       (unsigned long long)ob.seq, ob.floor, ob.last, sl->faulted ? " (read fault)" : "");
	if (ob.last <= k->n_done) {
		judge_get(r, &ob);
		return;
	}
	for (unsigned i = 0; i < DV_ARRAY_LEN(r->obs); i++)
		if (!r->obs[i].used) {
			r->obs[i] = ob;
			r->obs[i].used = true;
			return;
		}
	DV_ASSERT(!"more GETs waiting than slots");
}

/* ---- ops ---- */

static void start_op(struct run *r, struct slot *sl);
static void slot_judge(struct run *r, struct slot *sl, struct store_op *op);

static void slot_done(struct store_op *op)
{
	struct slot *sl = (struct slot *)op;
	struct run *r = sl->r;
	DV_ASSERT(sl->busy);
	sl->busy = false;
	r->busy--;
	if (r->abandon)
		return;
	r->in_cb = true;
	if (setjmp(r->cb_jb)) {
		r->in_cb = false;
		r->abandon = true;
		return;
	}
	slot_judge(r, sl, op);
	r->in_cb = false;
}

static void slot_judge(struct run *r, struct slot *sl, struct store_op *op)
{
	r->ops_done++;
	r->last_progress_poll = r->polls;
	r->last_progress_resets = UINT64_MAX; /* re-read at the next poll */
	if (sl->settle) {
		sl->settle_res = op->result;
		if (op->result == 0) {
			sl->settle_x = decode_value(r, sl->key, &op->out);
			sl->settle_seq = op->out.seq;
		}
		return;
	}
	if (op->kind == STORE_GET)
		get_done(r, sl);
	else if (op->kind == STORE_FLUSH)
		flush_done(r, sl);
	else
		write_done(r, sl);
	/* done() may submit ops, this one included */
	if (!r->cut && !r->stop_submit && r->ops_left > 0 && pct(r, r->p.resubmit_pct))
		start_op(r, sl);
}

static uint32_t pick_key(struct run *r)
{
	if (r->burst_left > 0) {
		r->burst_left--;
		return r->burst_key;
	}
	if (r->focus_left > 0) {
		r->focus_left--;
		if (pct(r, 50))
			return r->focus_key;
	}
	if (r->p.fill) {
		if (pct(r, 85))
			return r->fill_next++ % r->p.nkeys;
		return below(r, r->fill_next < r->p.nkeys ? r->fill_next + 1 : r->p.nkeys);
	}
	return pct(r, 40) ? below(r, r->p.nkeys < 4 ? r->p.nkeys : 4) : below(r, r->p.nkeys);
}

static uint32_t pick_len(struct run *r)
{
	if (pct(r, r->p.small_pct))
		return 8 + below(r, 57);
	if (pct(r, 85))
		return 65 + below(r, 3000);
	return 4097 + below(r, r->p.val_max - 4096);
}

/* A seq to compare with: the key's current one (if known), an older one
 * it had, 0, or one no record has. */
static uint64_t pick_cond_seq(struct run *r, const struct mkey *k)
{
	uint32_t c = below(r, 10);
	if (c < 5 && k->n > 1) {
		for (uint32_t p = k->n - 1; p > 0; p--)
			if (kent(r, k, p)->status == S_APPLIED && kent(r, k, p)->seq)
				return kent(r, k, p)->seq;
	}
	if (c < 8 && k->n > 1) {
		const struct ent *e = kent(r, k, 1 + below(r, k->n - 1));
		if (e->seq)
			return e->seq;
	}
	return c == 8 ? 0 : 1ull << 40;
}

static uint32_t submit_hold_fn(void *arg, const struct dev_req *req);

static void start_flush(struct run *r, struct slot *sl);

static void start_op(struct run *r, struct slot *sl)
{
	DV_ASSERT(!sl->busy);
	if (r->p.flush_per_mille && below_flush(r, 1000) < r->p.flush_per_mille) {
		start_flush(r, sl);
		return;
	}
	uint32_t key = pick_key(r);
	struct mkey *k = &r->keys[key];
	sl->key = key;
	sl->faulted = false;
	sl->settle = false;
	sl->hold = r->p.holds && pct(r, 5);
	sl->damaged0 = near_damage(r, key);
	sl->gens0 = zone_gens(r->s);
	sl->own_damaged0 = k->damaged;
	sl->gone_ok0 = may_be_gone(k);
	struct store_op *op = &sl->op;
	*op = (struct store_op){.key = k->name, .key_len = k->len, .done = slot_done};
	uint32_t c = below(r, 100);
	if (r->p.fill)
		c = c < 80 ? 40 : c < 92 ? 0 : 80;
	else if (r->burst_left > 0 && c < 30)
		c += 35; /* a burst: mostly writes, 1 in 20 a GET */
	if (c < 35) {
		op->kind = STORE_GET;
		sl->floor = k->state_kpos > k->get_floor ? k->state_kpos : k->get_floor;
		sl->last = k->n - 1;
		sl->flush_ix = r->flush_pending;
		tracef(r, "submit GET %s (allowed %u..%u)%s", k->name, sl->floor, sl->last, sl->hold ? " held" : "");
	} else {
		bool put = c < 75;
		uint32_t id = new_ent(r, key, put ? E_PUT : E_DEL);
		struct ent *e = &r->ents[id];
		uint32_t cc = below(r, 100);
		if (put) {
			e->cond = cc < 60 || r->p.fill ? STORE_ALWAYS : cc < 70 ? STORE_IF_ABSENT : cc < 80 ? STORE_IF_PRESENT
											       : STORE_IF_SEQ;
			/* fill: records of 50 to 350 bytes, where a zone's index is over 1/16 of it */
			e->val_len = r->p.fill ? 8 + below(r, 290) : pick_len(r);
			e->meta_len = r->p.meta && pct(r, 20) ? 1 + below(r, sizeof(sl->meta)) : 0;
			if (r->p.expiry && pct(r, 15))
				e->expire_ms = pct(r, 50) ? FAR_FUTURE_MS + below(r, 1000) : 1 + below(r, 1000);
			make_value(sl->val, e->val_len, key, id);
			fill_bytes(sl->meta, e->meta_len, key, id, 1);
			*op = (struct store_op){.kind = STORE_PUT, .key = k->name, .key_len = k->len, .value = sl->val,
						.val_len = e->val_len, .meta = e->meta_len ? sl->meta : NULL,
						.meta_len = e->meta_len, .expire_ms = e->expire_ms, .done = slot_done};
		} else {
			e->cond = cc < 60 ? STORE_ALWAYS : cc < 85 ? STORE_IF_SEQ : STORE_IF_SEQ_EXPIRED;
			op->kind = STORE_DEL;
		}
		if (e->cond == STORE_IF_SEQ || e->cond == STORE_IF_SEQ_EXPIRED)
			e->cond_seq = pick_cond_seq(r, k);
		op->cond = (enum store_cond)e->cond;
		op->cond_seq = e->cond_seq;
		sl->ent = id;
		r->inflight_space += ent_space(r, e);
		tracef(r, "submit #%u %s %s len %u meta %u exp %llu cond_seq %llu%s", id, cond_name(e->kind, e->cond),
		       k->name, e->val_len, e->meta_len, (unsigned long long)e->expire_ms,
		       (unsigned long long)e->cond_seq, sl->hold ? " held" : "");
	}
	int err = store_submit(r->s, op);
	if (err)
		fail(r, err == -DV_EFATAL ? "efatal" : "submit", "store_submit -> %s%s", errname(err),
		     err == -DV_EFATAL ? " (the store failed without a power cut)" : "");
	sl->busy = true;
	r->busy++;
	r->ops_left--;
}

/* ---- device callbacks: which op a fault hit, which reads to hold ---- */

static struct slot *slot_of_req(struct run *r, const struct dev_req *req)
{
	if (!r || !r->slots)
		return NULL;
	const char *p = (const char *)req, *base = (const char *)r->slots;
	if (p < base || p >= base + (size_t)(r->p.slots + 1) * sizeof(*r->slots))
		return NULL;
	struct slot *sl = &r->slots[(size_t)(p - base) / sizeof(*r->slots)];
	return req == &sl->op.priv.req ? sl : NULL;
}

static void fault_fn(void *arg, const struct dev_req *req, enum dev_fault kind)
{
	struct slot *sl = slot_of_req(arg, req);
	if (sl && (kind == DEV_FAULT_READ_EIO || kind == DEV_FAULT_READ_FLIP))
		sl->faulted = true;
}

/* The reads of a held op wait 20 polls each, while writes and GC go on. */
static uint32_t submit_hold_fn(void *arg, const struct dev_req *req)
{
	struct slot *sl = slot_of_req(arg, req);
	return sl && sl->hold && req->op == DEV_READ ? 20 : 0;
}

/* ---- driving ---- */

static unsigned opq_len(const struct op_queue *q)
{
	unsigned n = 0;
	for (const struct store_op *op = q->head; op && n < 100000; op = op->priv.next)
		n++;
	return n;
}

/* What the store is doing (white-box), for hang reports. */
static void dump_store(const struct run *r)
{
	const struct store *s = r->s;
	fprintf(stderr, "  store: pending %u, failed %d, gc running %d, zones free %u (of %u), active %d next %d, "
		"batches %u, write queue %u, reloc queue %u, ready %u, read wait %u, sb durable %llu wanted %llu "
		"in flight %d, device in flight %u\n", store_pending(s), s->failed, store_gc_running(s), s->zones_free,
		s->sb.zone_count, (int)s->active_zone, (int)s->next_zone, s->batch_count, opq_len(&s->write_queue),
		opq_len(&s->reloc_queue), opq_len(&s->ready), opq_len(&s->read_wait),
		(unsigned long long)s->sb_version_durable, (unsigned long long)s->sb_version_wanted, s->sb_in_flight,
		dev_in_flight(s->dev));
	for (uint32_t z = 0; z < s->sb.zone_count; z++)
		fprintf(stderr, "    zone %u: state %u gen %u live %llu rec %llu wp %llu gc failures %u%s%s\n", z,
			s->sb.zones[z].state, s->sb.zones[z].gen, (unsigned long long)s->zrt[z].live_cost,
			(unsigned long long)s->zrt[z].rec_bytes, (unsigned long long)s->zrt[z].wp, s->zrt[z].gc_failures,
			s->zrt[z].sealing ? " sealing" : "", s->zrt[z].resetting ? " resetting" : "");
	for (uint32_t i = 0; i <= r->p.slots; i++)
		if (r->slots[i].busy)
			fprintf(stderr, "    op %s %s: state %u\n",
				r->slots[i].op.kind == STORE_GET     ? "GET"
				: r->slots[i].op.kind == STORE_FLUSH ? "FLUSH"
								     : "write",
				r->slots[i].key < r->p.nkeys ? r->keys[r->slots[i].key].name : "-",
				r->slots[i].op.priv.state);
}

static void poll_once(struct run *r, bool wait)
{
	r->polls++;
	int n = store_poll(r->s, wait);
	if (r->failed)
		longjmp(r->jb, 1); /* found by a callback */
	if (n < 0)
		fail(r, "poll", "store_poll -> %s", errname(n));
	const struct store_stats *st = &r->s->st; /* not store_get_stats: it walks the index */
	if (r->last_progress_resets == UINT64_MAX)
		r->last_progress_resets = st->gc_zones_reset;
	if (r->busy == 0) {
		r->last_progress_poll = r->polls;
		r->last_progress_resets = st->gc_zones_reset;
	}
	if (st->gc_zones_reset > r->last_progress_resets + 3ull * r->p.zones + 10)
		fail(r, "gc-spin", "GC reset %llu zones while none of %u ops in flight completed (%llu bytes "
		     "relocated in all, %llu live in the model)",
		     (unsigned long long)(st->gc_zones_reset - r->last_progress_resets), r->busy,
		     (unsigned long long)st->gc_bytes_relocated, (unsigned long long)r->live_space);
	if (r->polls - r->last_progress_poll > HANG_POLLS && r->verbose)
		dump_store(r);
	if (r->polls - r->last_progress_poll > HANG_POLLS)
		fail(r, "hang", "%u ops in flight, none completed in %u polls", r->busy, HANG_POLLS);
}

static bool store_idle(struct run *r)
{
	struct store *s = r->s;
	return store_pending(s) == 0 && !store_gc_running(s) && dev_in_flight(s->dev) == 0 &&
	       (s->failed || s->sb_version_durable >= s->sb_version_wanted);
}

/* Poll until every op completed (and the store is idle if want_idle). */
static void quiesce(struct run *r, bool want_idle)
{
	for (uint64_t i = 0; r->busy > 0 || (want_idle && !store_idle(r)); i++) {
		if (i > 10 * HANG_POLLS)
			fail(r, "hang", "the store does not go idle (%u ops in flight, gc %d, device %u)", r->busy,
			     store_gc_running(r->s), dev_in_flight(r->s->dev));
		poll_once(r, true);
		if (r->busy == 0)
			r->last_progress_poll = r->polls; /* waiting for GC or the superblock */
	}
}

/* The index entries of a key's 31 hash bits and what the medium holds
 * there (white-box), for failure reports. */
static void dump_key(struct run *r, uint32_t i)
{
	uint64_t c[16];
	unsigned n = index_lookup(r->s->index, r->keys[i].hash, c, 16), tombs = 0;
	for (unsigned j = 0; j < n; j++)
		tombs += pl_tomb(c[j]);
	const struct ent *e = kent(r, &r->keys[i], r->keys[i].state_kpos);
	fprintf(stderr, "  key %s: %u index candidates (%u tombstones), model %s\n", r->keys[i].name, n, tombs,
		e->present ? "live" : e->expired_rec ? "expired" : "absent");
	for (unsigned j = 0; j < n; j++) {
		struct rec_view v;
		uint32_t z = pl_zone(c[j]);
		const uint8_t *at = dev_mem_image(r->dev) + zone_base(r->s, z) + pl_off(c[j]);
		int err = rec_decode(at, (uint32_t)(r->s->sb.zone_bytes - pl_off(c[j])), &v, NULL);
		fprintf(stderr, "    zone %u (%s gen %u) off %llu: %s", z,
			r->s->sb.zones[z].state == ZONE_FULL ? "full" : r->s->sb.zones[z].state == ZONE_OPEN ? "open" : "empty",
			r->s->sb.zones[z].gen, (unsigned long long)pl_off(c[j]), err ? "undecodable\n" : "");
		if (!err)
			fprintf(stderr, "type %d key %.*s seq %llu gen %u\n", v.type, (int)v.key_len, (const char *)v.key,
				(unsigned long long)v.seq, v.zone_gen);
	}
}

static void check_counts(struct run *r, const char *when)
{
	if (r->damaged_any || r->p.fill)
		return; /* the damaged records may or may not be counted; fill: keys not tracked one by one */
	uint64_t live = 0, expired = 0;
	for (uint32_t i = 0; i < r->p.nkeys; i++) {
		const struct ent *e = kent(r, &r->keys[i], r->keys[i].state_kpos);
		live += e->present;
		expired += e->expired_rec;
	}
	struct store_stats st;
	store_get_stats(r->s, &st);
	uint64_t got = st.keys - st.tombstones;
	if ((got < live || got > live + expired) && r->verbose) {
		for (uint32_t i = 0; i < r->p.nkeys; i++) /* which keys the index holds more or fewer entries for */
			dump_key(r, i);
	}
	if (got < live || got > live + expired)
		fail(r, "count", "%s: stats say %llu keys - %llu tombstones = %llu, the model has %llu live (+%llu "
		     "expired not yet collected)", when, (unsigned long long)st.keys, (unsigned long long)st.tombstones,
		     (unsigned long long)got, (unsigned long long)live, (unsigned long long)expired);
}

/* ---- restarts ---- */

/* The scheduling (no faults) of the run's plan, with a new seed. */
static struct dev_fault_plan sched_only(struct run *r, uint64_t seed)
{
	const struct dev_fault_plan *p = &r->p.plan;
	return (struct dev_fault_plan){.seed = seed, .reorder = p->reorder, .partial_ppm = p->partial_ppm,
				       .hold_read_ppm = p->hold_read_ppm, .hold_write_ppm = p->hold_write_ppm,
				       .hold_polls_max = p->hold_polls_max, .early_io_ppm = p->early_io_ppm,
				       .submit_eagain_ppm = p->submit_eagain_ppm, .reset_keeps_bytes = p->reset_keeps_bytes,
				       .hold_fn = p->hold_fn,
				       .hold_arg = p->hold_arg, .fault_fn = fault_fn, .fault_arg = r};
}

static void run_plan(struct run *r)
{
	struct dev_fault_plan p = r->p.plan;
	p.seed = rnd(r);
	dev_mem_set_plan(r->dev, &p);
}

/* s0: absent and exactly s0's record; maybe_expired: absent, perhaps an
 * expired value of unknown seq (a PUT of unknown effect). */
static void settle_entry(struct run *r, struct mkey *k, bool present, uint32_t x, uint64_t seq, const struct ent *s0,
			 bool maybe_expired)
{
	struct ent was = s0 ? *s0 : (struct ent){0}; /* new_ent may move the entries */
	s0 = s0 ? &was : NULL;
	uint32_t id = new_ent(r, (uint32_t)(k - r->keys), E_SETTLE);
	struct ent *e = &r->ents[id];
	e->status = S_APPLIED;
	e->present = present;
	if (present) {
		e->value_ent = x;
		e->seq = seq;
		e->space = ent_space(r, &r->ents[x]);
	} else if (s0) { /* exactly s0's record: an expired value stays one */
		e->expired_rec = s0->expired_rec;
		e->value_ent = s0->value_ent;
		e->seq = s0->seq;
		e->space = s0->space;
	} else {
		e->expired_rec = maybe_expired; /* seq 0: unknown */
		e->space = rec_space(k->len, 0, 0); /* a tombstone, or nothing */
	}
	k->n_done = k->n - 1;
	set_state(r, k, e->kpos);
	k->get_floor = e->kpos;
}

enum { SETTLE_OTHER, SETTLE_ACKED_VALUE, SETTLE_ABSENT };

/* After a restart: read the key and check it holds its last acknowledged
 * state or that of a write with an unknown effect after it; that becomes
 * the key's state. Returns what it found: the acknowledged value, nothing,
 * or anything else. */
static int settle_key(struct run *r, uint32_t key)
{
	struct mkey *k = &r->keys[key];
	DV_ASSERT(k->n_done == k->n - 1);
	r->dump_key = key;
	struct slot *sl = &r->slots[r->p.slots];
	for (unsigned attempt = 0;; attempt++) {
		sl->settle = true;
		sl->faulted = false;
		sl->hold = false;
		sl->key = key;
		sl->settle_res = 1;
		sl->settle_seq = 0;
		sl->op = (struct store_op){.kind = STORE_GET, .key = k->name, .key_len = k->len, .done = slot_done};
		int err = store_submit(r->s, &sl->op);
		if (err)
			fail(r, "submit", "store_submit of a GET after recovery -> %s", errname(err));
		sl->busy = true;
		r->busy++;
		quiesce(r, false);
		if ((sl->settle_res == -DV_ECORRUPT || sl->settle_res == -EIO) && sl->faulted && attempt < 8)
			continue;
		break;
	}
	int res = sl->settle_res;
	const struct ent *s0 = kent(r, k, k->state_kpos);
	bool unknown_after = false;
	for (uint32_t p = k->state_kpos + 1; p < k->n; p++)
		unknown_after |= kent(r, k, p)->status == S_UNKNOWN;
	tracef(r, "settle %s -> %s #%u seq %llu (acknowledged state: %s #%u)%s", k->name, errname(res),
	       res == 0 ? sl->settle_x : 0, (unsigned long long)sl->settle_seq,
	       s0->present ? "value" : "absent", s0->present ? s0->value_ent : k->hist[k->state_kpos],
	       unknown_after ? ", writes of unknown effect after it" : "");
	if (res == 0) {
		uint32_t x = sl->settle_x;
		bool ok = s0->present && s0->value_ent == x;
		if (ok && s0->seq && s0->seq != sl->settle_seq)
			fail(r, "wrong-result", "after recovery %s holds #%u with seq %llu, written with seq %llu", k->name, x,
			     (unsigned long long)sl->settle_seq, (unsigned long long)s0->seq);
		for (uint32_t p = k->state_kpos + 1; p < k->n && !ok; p++) {
			const struct ent *e = kent(r, k, p);
			ok = e->status == S_UNKNOWN && e->kind == E_PUT && k->hist[p] == x &&
			     !(e->expire_ms && e->expire_ms < FAR_FUTURE_MS);
		}
		if (!ok) {
			const struct ent *xe = &r->ents[x];
			if (xe->kpos < k->state_kpos)
				fail(r, s0->present && !k->damaged ? "lost-ack" : "resurrected",
				     "after recovery %s holds #%u (key write %u), older than its acknowledged write %u (#%u, "
				     "%s)%s", k->name, x, xe->kpos, k->state_kpos, k->hist[k->state_kpos],
				     s0->present ? "a value" : "absent", k->damaged ? "; the medium was damaged under the key" : "");
			fail(r, "phantom-read", "after recovery %s holds #%u, a write that completed with %s", k->name, x,
			     errname(xe->result));
		}
		int found = s0->present && s0->value_ent == x ? SETTLE_ACKED_VALUE : SETTLE_OTHER;
		settle_entry(r, k, true, x, sl->settle_seq, NULL, false);
		return found;
	}
	if (res == -DV_ENOTFOUND) {
		bool ok = !s0->present || may_be_gone(k), maybe_expired = s0->expired_rec;
		for (uint32_t p = k->state_kpos + 1; p < k->n; p++) {
			const struct ent *e = kent(r, k, p);
			bool exp_put = e->kind == E_PUT && e->expire_ms && e->expire_ms < FAR_FUTURE_MS;
			ok |= e->status == S_UNKNOWN && (e->kind == E_DEL || e->kind == E_FLUSH || exp_put);
			maybe_expired |= e->status == S_UNKNOWN && exp_put;
		}
		if (!ok)
			fail(r, "lost-ack", "after recovery %s is not found; its acknowledged write %u (#%u) holds a value",
			     k->name, k->state_kpos, k->hist[k->state_kpos]);
		settle_entry(r, k, false, 0, 0, !s0->present && !unknown_after ? s0 : NULL, maybe_expired);
		return SETTLE_ABSENT;
	}
	if ((res == -DV_ECORRUPT || res == -EIO) && near_damage(r, key))
		return SETTLE_OTHER; /* still damaged (or a record of its index bits is): the state stays open */
	fail(r, "recovery-error", "GET %s after recovery -> %s", k->name, errname(res));
}

/* Whether key i tells if FLUSH fx (of unknown effect) applied: its
 * acknowledged state before it is a value, undamaged, and fx is the only
 * op of unknown effect after that state. Found: fx did not apply; absent:
 * it did. */
static bool flush_witness(struct run *r, uint32_t i, uint32_t fx)
{
	const struct mkey *k = &r->keys[i];
	uint32_t fpos = r->ents[r->flushes[fx].first + i].kpos;
	if (!kent(r, k, k->state_kpos)->present || k->state_kpos > fpos || k->damaged || near_damage(r, i))
		return false;
	for (uint32_t p = k->state_kpos + 1; p < k->n; p++)
		if (kent(r, k, p)->status == S_UNKNOWN && p != fpos)
			return false;
	return true;
}

/* Close the store (after its ops completed: after a power cut they fail),
 * open another on a copy of the medium as a restarted node does, then
 * settle every key. */
static void reopen(struct run *r, const char *why)
{
	quiesce(r, true);
	for (unsigned i = 0; i < DV_ARRAY_LEN(r->obs); i++)
		DV_ASSERT(!r->obs[i].used);
	tracef(r, "%s: reopen", why);
	store_close(r->s);
	r->s = NULL;
	struct dev_fault_plan rp = sched_only(r, rnd(r));
	if (r->p.recovery_faults) { /* recovery under the run's faults, and read flips at 10% at least */
		rp = r->p.plan;
		rp.seed = rnd(r);
		if (rp.read_flip_ppm < 100000)
			rp.read_flip_ppm = 100000;
	}
	struct dev *old = r->dev;
	r->dev = NULL;
	CHECK_EQ(dev_open_mem_copy(&r->dev, dev_mem_image(old), r->dev_bytes, &rp), 0);
	dev_close(old);
	struct store_config cfg = r->p.cfg;
	cfg.format_if_empty = false; /* a lost superblock must show */
	int err = store_open(&r->s, r->dev, &cfg);
	if (err)
		fail(r, "recovery-error", "store_open after %s -> %s", why, errname(err));
	run_plan(r);
	r->cut = false;
	r->last_progress_poll = r->polls;
	r->last_progress_resets = UINT64_MAX;
	/* A FLUSH of unknown effect applied to every key or to none: the keys
	 * that can tell must agree. */
	uint32_t fx = r->flush_unknown, first_witness = UINT32_MAX;
	int flushed = -1;
	for (uint32_t i = 0; i < r->p.nkeys; i++) {
		if (r->p.fill && r->keys[i].n == 1)
			continue;
		bool witness = fx != NO_FLUSH && flush_witness(r, i, fx);
		int got = settle_key(r, i);
		if (!witness || got == SETTLE_OTHER)
			continue;
		if (flushed < 0) {
			flushed = got == SETTLE_ABSENT;
			first_witness = i;
		} else if (flushed != (got == SETTLE_ABSENT)) {
			r->dump_key = i;
			fail(r, "flush-torn", "after recovery FLUSH %u (of unknown effect) applied to %s but not to %s",
			     fx, r->keys[flushed ? first_witness : i].name, r->keys[flushed ? i : first_witness].name);
		}
	}
	if (fx != NO_FLUSH)
		tracef(r, "FLUSH %u of unknown effect: %s", fx, flushed < 0 ? "no key tells" : flushed ? "applied" : "not applied");
	r->flush_unknown = NO_FLUSH;
	check_counts(r, why);
}

static void power_cut(struct run *r)
{
	tracef(r, "power cut with %u ops in flight, %u device requests", r->busy, dev_in_flight(r->dev));
	dev_mem_power_cut(r->dev);
	r->cut = true;
	r->cuts++;
	reopen(r, "power cut");
}

/* ---- damage: a bit flip on the medium under a record of a full zone ---- */

struct pick {
	struct run *r;
	uint64_t *p;
	uint32_t n, cap;
};

/* The model key whose record the index entry p names (read off the
 * medium: the index matches 31 hash bits only), or UINT32_MAX. */
static uint32_t key_of_payload(struct run *r, uint64_t p)
{
	struct rec_view v;
	const uint8_t *at = dev_mem_image(r->dev) + zone_base(r->s, pl_zone(p)) + pl_off(p);
	if (rec_decode(at, (uint32_t)(r->s->sb.zone_bytes - pl_off(p)), &v, NULL) != 0)
		return UINT32_MAX;
	for (uint32_t k = 0; k < r->p.nkeys; k++)
		if (r->keys[k].len == v.key_len && memcmp(r->keys[k].name, v.key, v.key_len) == 0)
			return k;
	return UINT32_MAX;
}

static bool collect_full(void *arg, uint64_t payload)
{
	struct pick *pk = arg;
	struct store *s = pk->r->s;
	if (s->sb.zones[pl_zone(payload)].state != ZONE_FULL)
		return true;
	if (key_of_payload(pk->r, payload) == UINT32_MAX)
		return true; /* damaged before (GC keeps damaged records indexed) */
	if (pk->n == pk->cap) {
		pk->cap = pk->cap ? pk->cap * 2 : 64;
		pk->p = realloc(pk->p, pk->cap * sizeof(*pk->p));
		CHECK(pk->p != NULL);
	}
	pk->p[pk->n++] = payload;
	return true;
}

/* Does a FULL zone other than not_zone, with more live bytes (so GC takes
 * it later), still hold a PUT of hash (its zone index on the medium says
 * so)? That old value is what a lost tombstone would uncover. */
static bool older_put_elsewhere(struct run *r, uint64_t hash, uint32_t not_zone)
{
	const struct store *s = r->s;
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		if (z == not_zone || s->sb.zones[z].state != ZONE_FULL || s->sb.zones[z].footer_block == ZONE_NO_INDEX ||
		    s->zrt[z].live_cost <= s->zrt[not_zone].live_cost)
			continue;
		uint64_t foot = (uint64_t)s->sb.zones[z].footer_block * DV_BLOCK_BYTES;
		const uint8_t *at = dev_mem_image(r->dev) + zone_base(s, z) + foot;
		uint32_t avail = (uint32_t)(s->sb.zone_bytes - foot);
		struct zidx_hdr h;
		if (zidx_decode_hdr(at, avail, &h) != 0 || zidx_bytes(h.count, DV_BLOCK_BYTES) > avail)
			continue;
		struct zidx_entry *e = malloc((h.count ? h.count : 1) * sizeof(*e));
		CHECK(e != NULL);
		bool found = false;
		if (zidx_decode(at, avail, &h, e, h.count) == 0)
			for (uint32_t i = 0; i < h.count && !found; i++)
				found = e[i].hash.lo == hash && e[i].type == REC_PUT;
		free(e);
		if (found)
			return true;
	}
	return false;
}

/* With the store quiet: flip a bit in the header of one indexed record
 * of a FULL zone that still verifies (one damaged before stays indexed:
 * GC keeps it), most often a tombstone whose key has an older PUT in
 * another zone (what GC must not bring back by dropping the tombstone). */
static uint32_t damage(struct run *r)
{
	struct pick pk = {.r = r};
	index_walk(r->s->index, 0, UINT64_MAX, collect_full, &pk);
	if (pk.n == 0) {
		free(pk.p);
		return UINT32_MAX;
	}
	uint64_t p = pk.p[below(r, pk.n)];
	bool tomb_first = pct(r, 70);
	for (uint32_t i = 0, j = below(r, pk.n); tomb_first && i < pk.n; i++) {
		uint64_t q = pk.p[(i + j) % pk.n];
		uint32_t k = pl_tomb(q) ? key_of_payload(r, q) : UINT32_MAX;
		if (k != UINT32_MAX && older_put_elsewhere(r, r->keys[k].hash, pl_zone(q))) {
			p = q;
			tomb_first = false;
		}
	}
	free(pk.p);
	uint32_t key = key_of_payload(r, p);
	CHECK(key != UINT32_MAX);
	uint32_t at = below(r, REC_HDR_BYTES);
	uint64_t off = zone_base(r->s, pl_zone(p)) + pl_off(p) + at;
	dev_mem_flip_bit(r->dev, off, below(r, 8));
	r->keys[key].blind |= at == 32 || at == 33; /* the key length */
	r->keys[key].damaged = true;
	r->focus_key = key; /* writes of it, conditional or not, then restarts */
	r->focus_left = 40;
	r->damaged_any = true;
	r->flips++;
	tracef(r, "damage: flipped a bit of %s's %s in zone %u%s", r->keys[key].name, pl_tomb(p) ? "tombstone" : "value",
	       pl_zone(p), !tomb_first && pl_tomb(p) ? ", an older PUT of the key in another zone" : "");
	return pl_zone(p);
}

/* ---- one run ---- */

static void pick_params(struct run *r)
{
	struct params *p = &r->p;
	p->fill = pct(r, 3);
	uint32_t zb = below(r, 10);
	p->zone_bytes = zb < 8 || p->fill ? 256 * KiB : zb < 9 ? 512 * KiB : MiB; /* fill: 8000 keys overflow it */
	p->zones = p->fill ? 4 + below(r, 3) : 4 + below(r, 7);
	p->npairs = p->fill ? 0 : below(r, 5);
	p->nkeys = p->fill ? 8000 : 2 * p->npairs + 1 + below(r, 24);
	p->slots = 1 + below(r, pct(r, 30) ? SLOTS_MAX : 12);
	p->ops = p->fill ? 10000 : 100 + below(r, 1400);
	p->small_pct = pct(r, 30) ? 95 : 60;
	uint32_t vmax = p->zone_bytes / 4;
	p->val_max = vmax > 200 * KiB ? 200 * KiB : vmax;
	p->expiry = pct(r, 60);
	p->meta = pct(r, 50);
	p->cuts = pct(r, 40);
	p->restarts = pct(r, 30);
	p->damage = !p->fill && pct(r, 15);
	p->holds = pct(r, 50);
	p->cut_per_mille = p->cuts ? 2 + below(r, 6) : 0;
	p->restart_per_mille = p->restarts ? 1 + below(r, 4) : 0;
	p->gc_per_mille = below(r, 40);
	p->quiesce_per_mille = p->damage ? 10 + below(r, 20) : 2 + below(r, 10);
	p->resubmit_pct = below(r, 30);
	/* Not in fill runs (8000 keys: an entry each per FLUSH). */
	p->flush_per_mille = !p->fill && !(knobs_off & NO_FLUSH_OPS) && below_flush(r, 100) < 50
				     ? 1 + below_flush(r, 15)
				     : 0;
	p->bursts = pct(r, 50);
	p->burst_pct = p->bursts ? 2 + below(r, 15) : 0;
	p->cfg = (struct store_config){.batches_in_flight = 1 + below(r, DV_BATCHES_IN_FLIGHT_MAX),
				       .batch_bytes = pct(r, 50) ? DV_BLOCK_BYTES * (1 + below(r, 16)) : 0,
				       .gc_free_zones_min = below(r, 4),
				       .no_memo = pct(r, 50), .memo_entries = DV_MEMO_ENTRIES_MIN};
	struct dev_fault_plan *f = &p->plan;
	*f = (struct dev_fault_plan){.fault_fn = fault_fn, .fault_arg = r};
	if (pct(r, 85)) {
		f->reorder = pct(r, 90);
		f->partial_ppm = below(r, 500000);
		f->hold_read_ppm = pct(r, 50) ? below(r, 200000) : 0;
		f->hold_write_ppm = pct(r, 30) ? below(r, 100000) : 0;
		f->hold_polls_max = 1 + below(r, 10);
		f->early_io_ppm = pct(r, 50) ? below(r, 200000) : 0;
	}
	/* From a bit of the seed's hash, not a draw, so the runs of seeds chosen
	 * before this knob are unchanged but for it. */
	f->reset_keeps_bytes = (r->seed * 0x9E3779B97F4A7C15ull) >> 63;
	if (p->holds) {
		f->hold_fn = submit_hold_fn;
		f->hold_arg = r;
	}
	if (pct(r, 50))
		f->submit_eagain_ppm = 5000 + below(r, 50000);
	if (pct(r, 30))
		f->read_flip_ppm = 2000 + below(r, 20000);
	if (pct(r, 15))
		f->read_eio_ppm = 1000 + below(r, 5000);
	if (knobs_off & NO_EAGAIN)
		f->submit_eagain_ppm = 0;
	if (knobs_off & NO_FLIPS)
		f->read_flip_ppm = 0;
	if (knobs_off & NO_EIO)
		f->read_eio_ppm = 0;
	if (knobs_off & NO_HOLDS) {
		p->holds = false;
		f->hold_fn = NULL;
		f->hold_read_ppm = f->hold_write_ppm = 0;
	}
	if (knobs_off & NO_SCHED) {
		f->reorder = false;
		f->partial_ppm = f->hold_read_ppm = f->hold_write_ppm = f->early_io_ppm = 0;
	}
	if (knobs_off & NO_CUTS)
		p->cuts = false, p->cut_per_mille = 0;
	if (knobs_off & NO_RESTARTS)
		p->restarts = false, p->restart_per_mille = 0;
	if (knobs_off & NO_DAMAGE)
		p->damage = false;
	if (knobs_off & NO_EXPIRY)
		p->expiry = false;
	if (knobs_off & NO_BURSTS)
		p->bursts = false, p->burst_pct = 0;
}

static void describe(const struct run *r)
{
	const struct params *p = &r->p;
	const struct dev_fault_plan *f = &p->plan;
	fprintf(stderr,
		"seed %llu: %u zones of %u KiB, %u keys (%u colliding pairs), %u ops, %u in flight, values <= %u "
		"(%u%% small)%s%s%s%s%s%s%s%s, flush %u per mille\n"
		"  store: batches %u, batch bytes %u, gc below %u free zones, memo %s\n"
		"  device: reorder %d, partial %u, hold read %u write %u (max %u polls), early %u, eagain %u, read "
		"flips %u, read eio %u (ppm)%s%s\n",
		(unsigned long long)r->seed, p->zones, p->zone_bytes / KiB, p->nkeys, p->npairs, p->ops, p->slots,
		p->val_max, p->small_pct, p->fill ? ", fill" : "", p->expiry ? ", expiry" : "", p->meta ? ", meta" : "",
		p->cuts ? ", power cuts" : "", p->restarts ? ", restarts" : "", p->damage ? ", medium damage" : "",
		p->recovery_faults ? ", faults in recovery" : "", p->bursts ? ", same-key bursts" : "", p->flush_per_mille,
		p->cfg.batches_in_flight, p->cfg.batch_bytes,
		p->cfg.gc_free_zones_min, p->cfg.no_memo ? "off" : "1024 entries", f->reorder, f->partial_ppm,
		f->hold_read_ppm, f->hold_write_ppm, f->hold_polls_max, f->early_io_ppm, f->submit_eagain_ppm,
		f->read_flip_ppm, f->read_eio_ppm, p->holds ? ", chosen ops' reads held" : "",
		f->reset_keeps_bytes ? ", resets keep the old bytes" : "");
}

static void setup_keys(struct run *r)
{
	const struct params *p = &r->p;
	r->keys = calloc(p->nkeys, sizeof(*r->keys));
	r->names = calloc(p->nkeys, 320);
	CHECK(r->keys && r->names);
	uint32_t first_pair = below(r, pairs_found - p->npairs + 1);
	for (uint32_t i = 0; i < p->nkeys; i++) {
		char *n = r->names + (size_t)i * 320;
		if (i < 2 * p->npairs)
			strcpy(n, pair_names[first_pair + i / 2][i % 2]);
		else if (p->fill)
			snprintf(n, 320, "f%u", i);
		else if (pct(r, 10)) /* a long key */
			snprintf(n, 320, "long%u-%0*u", i, (int)(20 + below(r, 280)), i);
		else
			snprintf(n, 320, "k%u", i);
		struct mkey *k = &r->keys[i];
		k->name = n;
		k->len = (uint32_t)strlen(n);
		k->hash = store_key_hash(n, k->len);
		k->paired = i < 2 * p->npairs;
		k->hist = malloc(8 * sizeof(*k->hist));
		CHECK(k->hist != NULL);
		k->cap = 8;
		k->n = 1;
		k->hist[0] = 0; /* the initial state: never written */
	}
}

static void free_run(struct run *r)
{
	for (uint32_t i = 0; r->keys && i < r->p.nkeys; i++)
		free(r->keys[i].hist);
	free(r->keys);
	free(r->names);
	free(r->ents);
	free(r->flushes);
	for (uint32_t i = 0; r->slots && i <= r->p.slots; i++)
		dev_buf_free(r->slots[i].val);
	free(r->slots);
	free(r);
}

/* Power cuts while a FLUSH's record is on its way to the medium (its
 * effect then depends on what reached it), in the runs with cuts. */
static bool flush_cut(struct run *r)
{
	if (!r->p.cuts || r->flush_pending == NO_FLUSH || r->flush_slot->op.kind != STORE_FLUSH)
		return false;
	uint8_t st = r->flush_slot->op.priv.state;
	return (st == OPS_QUEUED || st == OPS_IN_BATCH) && below_flush(r, 100) < 50;
}

static void run_body(struct run *r)
{
	struct params *p = &r->p;
	r->dev_bytes = FRONT_BYTES + (uint64_t)p->zones * p->zone_bytes;
	struct dev_fault_plan first = sched_only(r, rnd(r));
	CHECK_EQ(dev_open_mem(&r->dev, r->dev_bytes, &first), 0);
	struct store_config cfg = p->cfg;
	cfg.format_if_empty = true;
	cfg.zone_bytes = p->zone_bytes;
	int err = store_open(&r->s, r->dev, &cfg);
	if (err)
		fail(r, "open", "store_open (format) -> %s", errname(err));
	p->cfg.zone_bytes = p->zone_bytes;
	run_plan(r);
	r->ops_left = p->ops;
	r->last_progress_resets = UINT64_MAX;
	for (uint64_t iter = 0; r->ops_left > 0 || r->busy > 0; iter++) {
		if (iter > 200ull * p->ops + 100000)
			fail(r, "hang", "the run did not end in %llu iterations", (unsigned long long)iter);
		r->stop_submit = r->p.fill && r->efull > 200;
		if (r->stop_submit)
			r->ops_left = 0;
		/* A burst: writes of one key in flight together (the key lock
		 * queues them behind each other; each goes on once the one
		 * before it is placed), into every free slot, before a poll. */
		bool burst = pct(r, p->burst_pct);
		if (burst) {
			r->burst_key = pick_key(r);
			r->burst_left = 2 + below(r, 15);
			tracef(r, "burst of %s", r->keys[r->burst_key].name);
		}
		for (uint32_t i = 0; i < p->slots && r->ops_left > 0; i++)
			if (!r->slots[i].busy && (r->burst_left > 0 || pct(r, 60)))
				start_op(r, &r->slots[i]);
		r->burst_left = 0;
		poll_once(r, below(r, 3) != 0);
		if (per_mille(r, p->gc_per_mille) && store_gc_start(r->s) == 1) {
			r->gc_started++;
			tracef(r, "gc start");
		}
		if (per_mille(r, p->cut_per_mille) || flush_cut(r))
			power_cut(r);
		else if (per_mille(r, p->restart_per_mille)) {
			r->restarts++;
			reopen(r, "restart");
		} else if (per_mille(r, p->quiesce_per_mille)) {
			quiesce(r, false);
			check_counts(r, "quiescent");
			if (p->damage && pct(r, 70)) {
				quiesce(r, true);
				uint32_t z = damage(r);
				uint32_t gen = z != UINT32_MAX ? r->s->sb.zones[z].gen : 0, g = 0;
				for (; g < 3 * p->zones && z != UINT32_MAX && r->s->sb.zones[z].gen == gen; g++)
					if (store_gc_start(r->s) == 1) /* collect it, perhaps */
						quiesce(r, true);
				if (z != UINT32_MAX)
					tracef(r, "damage: zone %u %s after %u collections", z,
					       r->s->sb.zones[z].gen == gen ? "not collected" : "collected", g);
				if (z != UINT32_MAX && r->s->sb.zones[z].gen != gen && pct(r, 50))
					reopen(r, "restart after damage"); /* what recovery makes of it */
				else if (z != UINT32_MAX && pct(r, 40))
					reopen(r, "restart, damage kept"); /* no GC table, no memo: the key's own bytes */
			}
		}
	}
	quiesce(r, true);
	check_counts(r, "at the end");
	reopen(r, "final restart");
	if (r->verbose || p->fill) {
		struct store_stats st;
		store_get_stats(r->s, &st);
		struct dev_fault_stats ds = dev_mem_stats(r->dev);
		tracef(r, "end: %llu ops done, %u EFULL, %u cuts, %u restarts, %u flips; store: %llu zones reset, %llu "
		       "resolve reads, %llu corrupt records; last device: %llu reordered, %llu eagain, %llu flips",
		       (unsigned long long)r->ops_done, r->efull, r->cuts, r->restarts, r->flips,
		       (unsigned long long)st.gc_zones_reset, (unsigned long long)st.resolve_reads,
		       (unsigned long long)st.corrupt_records, (unsigned long long)ds.reordered,
		       (unsigned long long)ds.submit_eagain, (unsigned long long)ds.read_flip);
	}
	if (p->fill && r->efull == 0)
		fail(r, "no-efull", "a fill run of %u keys on %u zones never got EFULL (%llu bytes live in the model)",
		     p->nkeys, p->zones, (unsigned long long)r->live_space);
	store_close(r->s);
	r->s = NULL;
	dev_close(r->dev);
	r->dev = NULL;
}

/* After a failure: cut the power so that everything in flight ends, then
 * close and free. A store that still does not finish (a hang) is kept,
 * reachable, in the graveyard. */
static void abandon_run(struct run *r)
{
	r->abandon = true;
	bool clean = true;
	if (r->s) {
		dev_mem_power_cut(r->dev);
		for (unsigned i = 0; i < 100000 && (store_pending(r->s) > 0 || dev_in_flight(r->dev) > 0 ||
						    store_gc_running(r->s)); i++)
			(void)store_poll(r->s, true);
		clean = store_pending(r->s) == 0 && dev_in_flight(r->dev) == 0 && !store_gc_running(r->s);
		if (clean) {
			store_close(r->s);
			r->s = NULL;
		}
	}
	if (!clean) {
		fprintf(stderr, "seed %llu: the store does not finish its ops even after a power cut; kept open\n",
			(unsigned long long)r->seed);
		graveyard[graveyard_n++] = r;
		return;
	}
	if (r->dev)
		dev_close(r->dev);
	free_run(r);
}

#define CLASS_BYTES 24

struct summary {
	unsigned runs, failed;
	struct {
		char cls[CLASS_BYTES];
		unsigned n;
		uint64_t seeds[8];
	} cls[24];
	unsigned ncls;
};

/* One run: true when it passed; else its failure class in cls_out. */
static bool run_seed(uint64_t seed, bool verbose, bool recovery_faults, const char *argv0, char *cls_out)
{
	struct run *r = calloc(1, sizeof(*r));
	CHECK(r != NULL);
	r->seed = seed;
	r->verbose = verbose;
	r->argv0 = argv0;
	r->rng = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	r->flush_rng = seed * 0xc2b2ae3d27d4eb4full + 0x165667b19e3779f9ull;
	r->flush_pending = r->flush_unknown = NO_FLUSH;
	pick_params(r);
	r->p.recovery_faults = recovery_faults;
	if (r->p.fill && (knobs_off & NO_FILL)) {
		free(r);
		return true;
	}
	setup_keys(r);
	r->slots = calloc(r->p.slots + 1, sizeof(*r->slots));
	CHECK(r->slots != NULL);
	for (uint32_t i = 0; i <= r->p.slots; i++) {
		r->slots[i].r = r;
		r->slots[i].val = dev_buf_alloc(r->p.val_max + 64);
		CHECK(r->slots[i].val != NULL);
	}
	new_ent(r, 0, E_INIT); /* entry 0: the initial state of every key */
	if (verbose)
		describe(r);
	if (setjmp(r->jb) == 0) {
		run_body(r);
		free_run(r);
		return true;
	}
	if (!verbose)
		describe(r);
	snprintf(cls_out, CLASS_BYTES, "%s", r->fail_class);
	abandon_run(r);
	return false;
}

static void summary_add(struct summary *sum, uint64_t seed, const char *cls)
{
	sum->runs++;
	if (!cls)
		return;
	sum->failed++;
	unsigned c = 0;
	while (c < sum->ncls && strcmp(sum->cls[c].cls, cls) != 0)
		c++;
	if (c == sum->ncls && sum->ncls < DV_ARRAY_LEN(sum->cls))
		snprintf(sum->cls[sum->ncls++].cls, CLASS_BYTES, "%s", cls);
	if (c < sum->ncls) {
		if (sum->cls[c].n < DV_ARRAY_LEN(sum->cls[c].seeds))
			sum->cls[c].seeds[sum->cls[c].n] = seed;
		sum->cls[c].n++;
	}
}

/* Child -> parent, one per seed: 'S' starting, 'P' passed, 'F' failed. */
struct report {
	char kind;
	char cls[CLASS_BYTES];
	uint64_t seed;
};

static void report(int fd, char kind, uint64_t seed, const char *cls)
{
	struct report m = {.kind = kind, .seed = seed};
	snprintf(m.cls, sizeof(m.cls), "%s", cls ? cls : "");
	CHECK(write(fd, &m, sizeof(m)) == (ssize_t)sizeof(m));
}

/* Seeds [start, end) in child processes: an engine assertion (abort) or a
 * crash fails its seed, and a new child goes on with the next one. */
static void run_forked(uint64_t start, uint64_t end, bool verbose, bool recovery_faults, const char *argv0,
		       struct summary *sum)
{
	uint64_t next = start;
	while (next < end) {
		int fds[2];
		CHECK(pipe(fds) == 0);
		fflush(stderr);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			for (uint64_t s = next; s < end && graveyard_n < FAILURES_MAX; s++) {
				char cls[CLASS_BYTES];
				report(fds[1], 'S', s, NULL);
				bool ok = run_seed(s, verbose, recovery_faults, argv0, cls);
				report(fds[1], ok ? 'P' : 'F', s, ok ? NULL : cls);
			}
			close(fds[1]);
			exit(0);
		}
		close(fds[1]);
		struct report m;
		uint64_t running = UINT64_MAX;
		while (read(fds[0], &m, sizeof(m)) == (ssize_t)sizeof(m)) {
			if (m.kind == 'S') {
				running = m.seed;
				continue;
			}
			summary_add(sum, m.seed, m.kind == 'F' ? m.cls : NULL);
			running = UINT64_MAX;
			next = m.seed + 1;
		}
		close(fds[0]);
		int status = 0;
		CHECK(waitpid(pid, &status, 0) == pid);
		if (running == UINT64_MAX) {
			if (next < end) /* stopped early: too many hung stores */
				break;
			continue;
		}
		char cls[CLASS_BYTES];
		snprintf(cls, sizeof(cls), "%s", WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT ? "abort"
						 : WIFSIGNALED(status)			   ? "crash"
											   : "exit");
		fprintf(stderr, "seed %llu: FAIL [%s] the run died (%s %d); replay: %s --seed %llu --verbose%s\n",
			(unsigned long long)running, cls, WIFSIGNALED(status) ? "signal" : "exit status",
			WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), argv0, (unsigned long long)running,
			replay_flags());
		summary_add(sum, running, cls);
		next = running + 1;
	}
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

int main(int argc, char **argv)
{
	bool quick = getenv("DV_TEST_QUICK") && strcmp(getenv("DV_TEST_QUICK"), "0") != 0;
	uint64_t start = env_u64("DV_MODEL_START", 1);
	uint64_t count = env_u64("DV_MODEL_SEEDS", quick ? SEEDS_QUICK : SEEDS_DEFAULT);
	bool verbose = false, recovery_faults = getenv("DV_MODEL_RECOVERY_FAULTS") != NULL;
	/* The CI default: the seeds, then the first RF_SEEDS of them again with
	 * faults in recovery too; any choice of seeds or faults runs just that. */
	uint64_t rf_count = getenv("DV_MODEL_SEEDS") || getenv("DV_MODEL_START") || recovery_faults ? 0
			    : quick								 ? RF_SEEDS_QUICK
												 : RF_SEEDS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			start = strtoull(argv[++i], NULL, 0);
			count = 1;
			rf_count = 0;
		} else if (!strcmp(argv[i], "--start") && i + 1 < argc) {
			start = strtoull(argv[++i], NULL, 0);
			rf_count = 0;
		} else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
			count = strtoull(argv[++i], NULL, 0);
			rf_count = 0;
		} else if (!strcmp(argv[i], "--verbose")) {
			verbose = true;
		} else if (!strcmp(argv[i], "--recovery-faults")) {
			recovery_faults = true;
			rf_count = 0;
		} else if (!strcmp(argv[i], "--no") && i + 1 < argc) {
			for (char *t = strtok(argv[++i], ","); t; t = strtok(NULL, ",")) {
				unsigned k = 0;
				while (k < DV_ARRAY_LEN(knob_names) && strcmp(t, knob_names[k]) != 0)
					k++;
				if (k == DV_ARRAY_LEN(knob_names)) {
					fprintf(stderr, "--no: unknown knob %s\n", t);
					return 2;
				}
				knobs_off |= 1u << k;
			}
		} else {
			fprintf(stderr,
				"usage: %s [--seed N | --start S --seeds N] [--verbose] [--recovery-faults]\n"
				"       [--no eagain,flips,eio,holds,sched,cuts,restarts,damage,fill,expiry,flush,bursts]\n",
				argv[0]);
			return 2;
		}
	}
	recovery_faults_flag = recovery_faults;
	double t0 = test_now_s();
	find_pairs();
	struct summary sum = {0};
	if (count == 1) { /* in this process: a debugger sees it all */
		char cls[CLASS_BYTES];
		bool ok = run_seed(start, verbose, recovery_faults, argv[0], cls);
		summary_add(&sum, start, ok ? NULL : cls);
	} else {
		run_forked(start, start + count, verbose, recovery_faults, argv[0], &sum);
	}
	if (rf_count > 0) {
		recovery_faults_flag = true; /* replay commands say so */
		run_forked(start, start + rf_count, verbose, true, argv[0], &sum);
	}
	fprintf(stderr, "model: seeds %llu..%llu%s: %u runs, %u failed (%.1fs)%s\n", (unsigned long long)start,
		(unsigned long long)(start + count - 1), rf_count ? ", then the first ones with --recovery-faults" : "",
		sum.runs, sum.failed, test_now_s() - t0,
		sum.runs < count + rf_count ? " (stopped: too many hung stores)" : "");
	for (unsigned c = 0; c < sum.ncls; c++) {
		fprintf(stderr, "  %-14s %u seeds:", sum.cls[c].cls, sum.cls[c].n);
		for (unsigned i = 0; i < sum.cls[c].n && i < DV_ARRAY_LEN(sum.cls[c].seeds); i++)
			fprintf(stderr, " %llu", (unsigned long long)sum.cls[c].seeds[i]);
		fputc('\n', stderr);
	}
	return sum.failed ? 1 : 0;
}
