/* simcheck.c - the simulator's checker (see simcheck.h).
 *
 * The history is judged key by key. For one key, the writes that may have
 * been applied get local numbers 0..m-1 and two coverage relations as
 * bitset rows (m x m bits): DEF (sure) and POS (possible), each closed
 * transitively (Warshall). The rules are then set tests. */
#include "sim/simcheck.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define NONE UINT32_MAX
#define RULES 7u
#define HISTORY_WINDOW_MS 3000u
#define HISTORY_LINES_MAX 60u

struct simcheck {
	struct simcheck_config cfg;
	struct simcheck_op *ops;
	uint32_t nops, ops_cap;
	uint32_t *vals;
	uint32_t nvals, vals_cap;
	unsigned viol[RULES];
	unsigned printed;
	FILE *out;
};

/* One key's writes and their coverage. */
struct keyview {
	uint8_t keyspace;
	uint32_t key;
	uint8_t n;
	const uint32_t *ids; /* every op of the key, in id order */
	uint32_t nids;
	uint32_t *w;         /* local number -> op id of writes that may have been applied */
	uint32_t m;
	uint32_t words;      /* 64-bit words per bitset row */
	uint64_t *def, *pos; /* m rows each */
	uint64_t *scratch;   /* one row */
};

static const char *kind_name(uint8_t k)
{
	static const char *names[] = {"?", "GET", "SET", "DEL", "DYN_GET", "DYN_PUT", "DYN_DEL", "INCR", "CGET",
				      "FLUSH", "SCAN"};
	return k <= SC_SCAN ? names[k] : "?";
}

static const char *outcome_name(uint8_t o)
{
	static const char *names[] = {"PENDING", "OK", "FAILED", "INDET"};
	return o <= SC_INDET ? names[o] : "?";
}

static bool is_read(uint8_t k) { return k == SC_GET || k == SC_DYN_GET; }
static bool is_value_write(uint8_t k) { return k == SC_SET || k == SC_DYN_PUT; }
static bool is_del(uint8_t k) { return k == SC_DEL || k == SC_DYN_DEL || k == SC_FLUSH; }
static bool is_plain_write(uint8_t k) { return k == SC_SET || k == SC_DEL || k == SC_FLUSH; }
/* Ops of the value model (coverage): not counters, not scans. */
static bool in_value_model(uint8_t k) { return k != SC_INCR && k != SC_CGET && k != SC_SCAN; }

static bool never_applied(const struct simcheck_op *op)
{
	return op->outcome == SC_FAILED || op->noop ||
	       ((op->kind == SC_DYN_PUT || op->kind == SC_DYN_DEL) && op->ctx == SC_CTX_BAD);
}

/* The value of op may have expired for a read that ended at t. */
static bool may_expire_by(const struct simcheck_op *op, uint64_t t) { return op->expires && op->expire_lo <= t; }

/* Judged as a read: reads, and a plain DEL that found nothing (its read). */
static bool reads_as_get(const struct simcheck_op *op) { return op->kind == SC_DEL && op->noop; }

struct simcheck *simcheck_create(const struct simcheck_config *cfg)
{
	struct simcheck *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	if (c->cfg.print_max == 0)
		c->cfg.print_max = 5;
	return c;
}

void simcheck_destroy(struct simcheck *c)
{
	if (!c)
		return;
	free(c->ops);
	free(c->vals);
	free(c);
}

static void *grow(void *p, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return p;
	uint32_t ncap = *cap ? *cap * 2 : 1024;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(p, (size_t)ncap * elem);
	DV_ASSERT(np); /* test-only code: out of memory is fatal */
	*cap = ncap;
	return np;
}

uint32_t simcheck_begin(struct simcheck *c, const struct simcheck_op *op)
{
	DV_ASSERT(c->nops < SIMCHECK_OPS_MAX);
	DV_ASSERT(op->keyspace < SIMCHECK_KEYSPACES_MAX && c->cfg.ks[op->keyspace].defined);
	DV_ASSERT(op->kind >= SC_GET && op->kind <= SC_SCAN);
	c->ops = grow(c->ops, &c->ops_cap, c->nops + 1, sizeof(*c->ops));
	uint32_t id = c->nops++;
	struct simcheck_op *o = &c->ops[id];
	*o = *op;
	o->done_ms = UINT64_MAX;
	o->outcome = SC_PENDING;
	o->err = 0;
	o->nvals = 0;
	o->vals_at = 0;
	o->noop = false;
	o->found = false;
	o->counter = 0;
	o->kill_until_ms = 0;
	DV_ASSERT(o->kind == SC_INCR || o->delta == 0);
	if (o->kind == SC_DYN_PUT || o->kind == SC_DYN_DEL) {
		DV_ASSERT(o->ctx <= SC_CTX_BAD);
		if (o->ctx == SC_CTX_READ) {
			DV_ASSERT(o->ctx_read < id);
			const struct simcheck_op *r = &c->ops[o->ctx_read];
			DV_ASSERT(r->kind == SC_DYN_GET && r->outcome == SC_OK && r->keyspace == o->keyspace &&
				  r->key == o->key);
		}
	} else {
		o->ctx = SC_CTX_EMPTY;
	}
	DV_ASSERT(!o->expires || (is_value_write(o->kind) && o->expire_lo <= o->expire_hi));
	return id;
}

void simcheck_end(struct simcheck *c, uint32_t id, uint64_t done_ms, enum simcheck_outcome outcome, int err,
		  const uint32_t *vals, uint32_t nvals)
{
	DV_ASSERT(id < c->nops);
	struct simcheck_op *o = &c->ops[id];
	DV_ASSERT(o->outcome == SC_PENDING && outcome != SC_PENDING && done_ms >= o->submit_ms);
	DV_ASSERT(nvals <= SIMCHECK_VALUES_MAX && (nvals == 0 || (is_read(o->kind) && outcome == SC_OK)));
	o->done_ms = done_ms;
	o->outcome = (uint8_t)outcome;
	o->err = err;
	c->vals = grow(c->vals, &c->vals_cap, c->nvals + nvals, sizeof(*c->vals));
	o->vals_at = c->nvals;
	o->nvals = nvals;
	if (nvals)
		memcpy(c->vals + c->nvals, vals, nvals * sizeof(*vals));
	c->nvals += nvals;
}

void simcheck_kill_until(struct simcheck *c, uint32_t id, uint64_t t)
{
	DV_ASSERT(id < c->nops && c->ops[id].kind == SC_FLUSH);
	c->ops[id].kill_until_ms = t;
}

/* Until when op x may take effect on writes submitted before it. */
static uint64_t effect_end(const struct simcheck_op *x)
{
	return x->kind == SC_FLUSH && x->kill_until_ms > x->done_ms ? x->kill_until_ms : x->done_ms;
}

void simcheck_found(struct simcheck *c, uint32_t id, bool found, int64_t counter)
{
	DV_ASSERT(id < c->nops && (c->ops[id].kind == SC_CGET || c->ops[id].kind == SC_SCAN));
	DV_ASSERT(c->ops[id].outcome == SC_OK && (found || counter == 0));
	c->ops[id].found = found;
	c->ops[id].counter = counter;
}

void simcheck_noop(struct simcheck *c, uint32_t id)
{
	DV_ASSERT(id < c->nops && c->ops[id].kind == SC_DEL);
	c->ops[id].noop = true;
}

const struct simcheck_op *simcheck_get(const struct simcheck *c, uint32_t id)
{
	DV_ASSERT(id < c->nops);
	return &c->ops[id];
}

const uint32_t *simcheck_vals(const struct simcheck *c, const struct simcheck_op *op)
{
	return op->nvals ? c->vals + op->vals_at : NULL; /* no pool yet when nothing was read */
}

uint32_t simcheck_count(const struct simcheck *c) { return c->nops; }

unsigned simcheck_violations(const struct simcheck *c, unsigned rule)
{
	DV_ASSERT(rule < RULES);
	return c->viol[rule];
}

void simcheck_print_op(const struct simcheck *c, FILE *out, uint32_t id)
{
	const struct simcheck_op *o = simcheck_get(c, id);
	fprintf(out, "#%u ", id);
	if (o->client == SIMCHECK_CLIENT_FINAL)
		fprintf(out, "final ");
	else
		fprintf(out, "c%u ", o->client);
	fprintf(out, "n%u ks%u k%u %-7s r%u w%u [%llu..", o->node, o->keyspace, o->key, kind_name(o->kind), o->r,
		o->w, (unsigned long long)o->submit_ms);
	if (o->done_ms == UINT64_MAX)
		fprintf(out, "] ");
	else
		fprintf(out, "%llu] ", (unsigned long long)o->done_ms);
	fprintf(out, "%s", outcome_name(o->outcome));
	if (o->err)
		fprintf(out, "(%d)", o->err);
	if (o->noop)
		fprintf(out, " nothing to delete");
	if (o->expires)
		fprintf(out, " expires [%llu..%llu]", (unsigned long long)o->expire_lo, (unsigned long long)o->expire_hi);
	if (o->kind == SC_INCR)
		fprintf(out, " by %lld", (long long)o->delta);
	if ((o->kind == SC_CGET || o->kind == SC_SCAN) && o->outcome == SC_OK) {
		if (!o->found)
			fprintf(out, " -> not found");
		else if (o->kind == SC_CGET)
			fprintf(out, " -> %lld", (long long)o->counter);
		else
			fprintf(out, " -> returned");
	}
	if (o->kind == SC_DYN_PUT || o->kind == SC_DYN_DEL) {
		if (o->ctx == SC_CTX_READ)
			fprintf(out, " ctx=#%u", o->ctx_read);
		else
			fprintf(out, " ctx=%s", o->ctx == SC_CTX_BAD ? "BAD" : "empty");
	}
	if (is_read(o->kind) && o->outcome == SC_OK) {
		fprintf(out, " -> {");
		const uint32_t *v = simcheck_vals(c, o);
		for (uint32_t i = 0; i < o->nvals; i++) {
			if (v[i] == SIMCHECK_VALUE_UNKNOWN)
				fprintf(out, "%s?", i ? "," : "");
			else
				fprintf(out, "%s#%u", i ? "," : "", v[i]);
		}
		fprintf(out, "}");
	}
	fprintf(out, "\n");
}

/* --- bitsets --- */

static uint64_t *row(const struct keyview *kv, uint64_t *base, uint32_t i) { return base + (size_t)i * kv->words; }
static void bit_set(uint64_t *r, uint32_t i) { r[i / 64] |= 1ull << (i % 64); }
static bool bit_has(const uint64_t *r, uint32_t i) { return r[i / 64] >> (i % 64) & 1; }

/* Transitive closure in place (Warshall's algorithm on bitset rows): after
 * round k, row x holds every u reachable from x through writes 0..k. */
static void closure(const struct keyview *kv, uint64_t *base)
{
	for (uint32_t k = 0; k < kv->m; k++) {
		const uint64_t *rk = row(kv, base, k);
		for (uint32_t x = 0; x < kv->m; x++) {
			uint64_t *rx = row(kv, base, x);
			if (x != k && bit_has(rx, k))
				for (uint32_t i = 0; i < kv->words; i++)
					rx[i] |= rk[i];
		}
	}
}

/* --- reporting --- */

static void print_history(struct simcheck *c, const struct keyview *kv, uint64_t t0, uint64_t t1)
{
	uint64_t lo = t0 > HISTORY_WINDOW_MS ? t0 - HISTORY_WINDOW_MS : 0;
	uint64_t hi = t1 > UINT64_MAX - HISTORY_WINDOW_MS ? UINT64_MAX : t1 + HISTORY_WINDOW_MS;
	fprintf(c->out, "  history of ks%u key %u within [%llu, %llu] ms:\n", kv->keyspace, kv->key,
		(unsigned long long)lo, (unsigned long long)hi);
	unsigned lines = 0, more = 0;
	for (uint32_t i = 0; i < kv->nids; i++) {
		const struct simcheck_op *o = &c->ops[kv->ids[i]];
		if (o->done_ms < lo || o->submit_ms > hi)
			continue;
		if (lines++ >= HISTORY_LINES_MAX) {
			more++;
			continue;
		}
		fprintf(c->out, "    ");
		simcheck_print_op(c, c->out, kv->ids[i]);
	}
	if (more)
		fprintf(c->out, "    ... %u more\n", more);
}

static unsigned rule_index(unsigned rule) { return (unsigned)__builtin_ctz(rule); }

/* Reports one violation of rule about ops a and b (b may be NONE). */
static void violation(struct simcheck *c, const struct keyview *kv, unsigned rule, uint32_t a, uint32_t b,
		      const char *what)
{
	static const char *names[] = {"(a) acknowledged write lost", "(b) stale read",
				      "(c) resurrected value", "(d) replicas did not converge",
				      "(e) invalid value or result", "(k) counter out of bounds",
				      "(s) scan missed a key"};
	c->viol[rule_index(rule)]++;
	if (c->printed++ >= c->cfg.print_max)
		return;
	fprintf(c->out, "simcheck: VIOLATION %s: %s\n", names[rule_index(rule)], what);
	fprintf(c->out, "  op: ");
	simcheck_print_op(c, c->out, a);
	uint64_t t0 = c->ops[a].submit_ms, t1 = c->ops[a].done_ms;
	if (b != NONE) {
		fprintf(c->out, "  op: ");
		simcheck_print_op(c, c->out, b);
		if (c->ops[b].submit_ms < t0)
			t0 = c->ops[b].submit_ms;
		if (c->ops[b].done_ms != UINT64_MAX && (t1 == UINT64_MAX || c->ops[b].done_ms > t1))
			t1 = c->ops[b].done_ms;
	}
	print_history(c, kv, t0, t1 == UINT64_MAX ? t0 : t1);
	if (c->cfg.replay)
		fprintf(c->out, "  replay: %s\n", c->cfg.replay);
}

static bool checking(const struct simcheck *c, unsigned rule) { return !(c->cfg.skip & rule); }

/* --- the rules --- */

/* Local number of a value id among the key's writes, or NONE. */
static uint32_t local_of(const struct simcheck *c, const uint32_t *local, uint32_t id)
{
	return id < c->nops ? local[id] : NONE;
}

static void build_coverage(struct simcheck *c, struct keyview *kv, const uint32_t *local)
{
	for (uint32_t x = 0; x < kv->m; x++) {
		const struct simcheck_op *ox = &c->ops[kv->w[x]];
		uint64_t *dx = row(kv, kv->def, x), *px = row(kv, kv->pos, x);
		if (!is_plain_write(ox->kind)) {
			if (ox->ctx != SC_CTX_READ)
				continue;
			const struct simcheck_op *r = &c->ops[ox->ctx_read];
			const uint32_t *v = simcheck_vals(c, r);
			for (uint32_t i = 0; i < r->nvals; i++) {
				uint32_t u = local_of(c, local, v[i]);
				if (u != NONE && u != x) {
					bit_set(dx, u);
					bit_set(px, u);
				}
			}
			continue;
		}
		/* A checked SET not acknowledged: possibly only (simcheck.h) */
		bool sure = !(c->cfg.checked_sets && ox->kind == SC_SET && ox->outcome != SC_OK &&
			      !c->cfg.ks[kv->keyspace].lww);
		for (uint32_t v = 0; v < kv->m; v++) {
			const struct simcheck_op *ov = &c->ops[kv->w[v]];
			if (v == x)
				continue;
			if (sure && ov->outcome == SC_OK && ov->done_ms < ox->submit_ms && ox->r + ov->w > kv->n) {
				bit_set(dx, v);
				bit_set(px, v);
			}
			if (ov->submit_ms <= effect_end(ox)) /* the same ms: either order */
				bit_set(px, v);
		}
	}
	closure(kv, kv->def);
	closure(kv, kv->pos);
}

/* (e): every value a read returned names a write that may have been
 * applied, of this key, submitted before the read ended; once each. */
static void check_valid(struct simcheck *c, const struct keyview *kv, const uint32_t *local)
{
	for (uint32_t i = 0; i < kv->nids; i++) {
		uint32_t id = kv->ids[i];
		const struct simcheck_op *o = &c->ops[id];
		if ((o->kind == SC_DYN_PUT || o->kind == SC_DYN_DEL) && o->ctx == SC_CTX_BAD && o->outcome == SC_OK)
			violation(c, kv, SIMCHECK_VALID, id, NONE, "a write with a bad context was acknowledged");
		if (!is_read(o->kind) || o->outcome != SC_OK)
			continue;
		const uint32_t *v = simcheck_vals(c, o);
		if (o->kind == SC_GET && o->nvals > 1)
			violation(c, kv, SIMCHECK_VALID, id, NONE, "a plain GET returned more than one value");
		for (uint32_t j = 0; j < o->nvals; j++) {
			uint32_t u = local_of(c, local, v[j]);
			if (u == NONE || !is_value_write(c->ops[v[j]].kind)) {
				violation(c, kv, SIMCHECK_VALID, id, v[j] < c->nops ? v[j] : NONE,
					  "a read returned a value that no applied write of this key wrote");
				continue;
			}
			if (c->ops[v[j]].submit_ms > o->done_ms)
				violation(c, kv, SIMCHECK_VALID, id, v[j],
					  "a read returned a value written after the read ended");
			if (c->ops[v[j]].expires && c->ops[v[j]].expire_hi < o->submit_ms)
				violation(c, kv, SIMCHECK_VALID, id, v[j],
					  "a read returned a value after every node's clock passed its expiry");
			for (uint32_t k = 0; k < j; k++)
				if (v[k] == v[j])
					violation(c, kv, SIMCHECK_VALID, id, v[j], "a read returned a value twice");
		}
	}
}

/* Every value of a is in b, but for values that may have expired by t. */
static bool values_in(const struct simcheck *c, const struct simcheck_op *a, const struct simcheck_op *b, uint64_t t)
{
	const uint32_t *va = simcheck_vals(c, a), *vb = simcheck_vals(c, b);
	for (uint32_t i = 0; i < a->nvals; i++) {
		if (va[i] < c->nops && may_expire_by(&c->ops[va[i]], t))
			continue;
		bool found = false;
		for (uint32_t j = 0; j < b->nvals && !found; j++)
			found = va[i] == vb[j];
		if (!found)
			return false;
	}
	return true;
}

/* The same values (final reads run one after the other: a value may expire
 * between two of them). */
static bool same_values(const struct simcheck *c, const struct simcheck_op *a, const struct simcheck_op *b)
{
	uint64_t t = a->done_ms > b->done_ms ? a->done_ms : b->done_ms;
	return values_in(c, a, b, t) && values_in(c, b, a, t);
}

/* (d): the final reads of the key all succeeded and agree. Returns the
 * first successful one (NONE when there is none). */
static uint32_t check_converged(struct simcheck *c, const struct keyview *kv)
{
	uint32_t first = NONE;
	for (uint32_t i = 0; i < kv->nids; i++) {
		uint32_t id = kv->ids[i];
		const struct simcheck_op *o = &c->ops[id];
		if (o->client != SIMCHECK_CLIENT_FINAL)
			continue;
		if (o->outcome != SC_OK) {
			if (checking(c, SIMCHECK_CONVERGE))
				violation(c, kv, SIMCHECK_CONVERGE, id, NONE, "a final read (after healing) failed");
			continue;
		}
		if (first == NONE) {
			first = id;
			continue;
		}
		const struct simcheck_op *f = &c->ops[first];
		bool same = o->kind == SC_CGET ? f->kind == SC_CGET && f->found == o->found && f->counter == o->counter
					       : same_values(c, f, o);
		if (checking(c, SIMCHECK_CONVERGE) && !same)
			violation(c, kv, SIMCHECK_CONVERGE, id, first, "two nodes answer differently after healing");
	}
	return first;
}

/* (a): every acknowledged value write survives or was superseded. */
static void check_lost(struct simcheck *c, const struct keyview *kv, uint32_t final)
{
	const struct simcheck_op *f = &c->ops[final];
	const uint32_t *fv = simcheck_vals(c, f);
	for (uint32_t v = 0; v < kv->m; v++) {
		const struct simcheck_op *ov = &c->ops[kv->w[v]];
		if (ov->outcome != SC_OK || !is_value_write(ov->kind) || ov->w < c->cfg.lost_min_w ||
		    may_expire_by(ov, f->done_ms))
			continue;
		bool ok = false;
		for (uint32_t i = 0; i < f->nvals && !ok; i++)
			ok = fv[i] == kv->w[v];
		for (uint32_t x = 0; x < kv->m && !ok; x++)
			ok = x != v && bit_has(row(kv, kv->pos, x), v);
		if (!ok)
			violation(c, kv, SIMCHECK_LOST, kv->w[v], final,
				  "an acknowledged write is not in the final read and no write superseded it");
	}
}

static void row_or(const struct keyview *kv, uint64_t *dst, const uint64_t *src)
{
	for (uint32_t k = 0; k < kv->words; k++)
		dst[k] |= src[k];
}

/* (b) for one DYN_GET: what it returned, what those values cover and what
 * DELs (and values that may have expired) submitted before it ended cover,
 * must hold every write acknowledged before it started (whose quorum it
 * meets). */
static void check_stale_dyn(struct simcheck *c, const struct keyview *kv, const uint32_t *local, uint32_t id)
{
	const struct simcheck_op *r = &c->ops[id];
	uint64_t *seen = kv->scratch;
	memset(seen, 0, kv->words * sizeof(*seen));
	const uint32_t *v = simcheck_vals(c, r);
	for (uint32_t i = 0; i < r->nvals; i++) {
		uint32_t u = local_of(c, local, v[i]);
		if (u != NONE) {
			bit_set(seen, u);
			row_or(kv, seen, row(kv, kv->pos, u));
		}
	}
	/* A DEL, or a value that expired (hidden like a tombstone), submitted
	 * before the read ended hides what it covers. */
	for (uint32_t d = 0; d < kv->m; d++) {
		const struct simcheck_op *od = &c->ops[kv->w[d]];
		if ((is_del(od->kind) || may_expire_by(od, r->done_ms)) && od->submit_ms <= r->done_ms)
			row_or(kv, seen, row(kv, kv->pos, d));
	}
	for (uint32_t w = 0; w < kv->m; w++) {
		const struct simcheck_op *ow = &c->ops[kv->w[w]];
		if (ow->outcome != SC_OK || !is_value_write(ow->kind) || ow->done_ms >= r->submit_ms ||
		    r->r + ow->w <= kv->n || may_expire_by(ow, r->done_ms))
			continue;
		if (!bit_has(seen, w))
			violation(c, kv, SIMCHECK_STALE, id, kv->w[w],
				  "a read that started after this write's acknowledgement missed it");
	}
}

/* (c): nothing a read returned is surely covered by a write acknowledged
 * before the read started. */
static void check_resurrect(struct simcheck *c, const struct keyview *kv, const uint32_t *local, uint32_t id,
			    bool flush_only)
{
	const struct simcheck_op *r = &c->ops[id];
	const uint32_t *v = simcheck_vals(c, r);
	for (uint32_t i = 0; i < r->nvals; i++) {
		uint32_t u = local_of(c, local, v[i]);
		if (u == NONE)
			continue;
		for (uint32_t x = 0; x < kv->m; x++) {
			const struct simcheck_op *ox = &c->ops[kv->w[x]];
			if (ox->outcome != SC_OK || ox->done_ms >= r->submit_ms || r->r + ox->w <= kv->n)
				continue;
			if (flush_only && ox->kind != SC_FLUSH)
				continue;
			if (bit_has(row(kv, kv->def, x), u)) {
				violation(c, kv, SIMCHECK_RESURRECT, id, kv->w[x],
					  "a read returned a value that a write acknowledged before it superseded");
				break;
			}
		}
	}
}

/* --- counters and scans --- */

static bool may_apply(const struct simcheck_op *o) { return !never_applied(o); }

static void bound_add(int64_t d, bool sure, int64_t *lo, int64_t *hi)
{
	if (sure || d < 0)
		*lo += d;
	if (sure || d > 0)
		*hi += d;
}

/* (k)'s bounds for counter read r: every INCR that may have applied and
 * was submitted before r ended counts, but for one surely killed (acked
 * before an acked flush started that was acked before r started); it
 * counts surely when acked before r started, at a W that r's R meets (and
 * >= lost_min_w), and no flush that may have applied (submitted before r
 * ended) may have killed it (it was submitted before that flush's effect
 * ended); else only its sign's side of the interval moves. */
static void counter_bounds(const struct simcheck *c, const struct keyview *kv, const struct simcheck_op *r,
			   int64_t *lo, int64_t *hi)
{
	*lo = *hi = 0;
	for (uint32_t i = 0; i < kv->nids; i++) {
		const struct simcheck_op *x = &c->ops[kv->ids[i]];
		if (x->kind != SC_INCR || !may_apply(x) || x->submit_ms > r->done_ms)
			continue;
		bool acked = x->outcome == SC_OK;
		bool sure = acked && x->done_ms < r->submit_ms && r->r + x->w > kv->n && x->w >= c->cfg.lost_min_w;
		bool dead = false;
		for (uint32_t j = 0; j < kv->nids && !dead; j++) {
			const struct simcheck_op *f = &c->ops[kv->ids[j]];
			if (f->kind != SC_FLUSH || !may_apply(f) || f->submit_ms > r->done_ms)
				continue;
			dead = acked && f->outcome == SC_OK && x->done_ms < f->submit_ms && f->done_ms < r->submit_ms;
			if (effect_end(f) >= x->submit_ms)
				sure = false;
		}
		if (!dead)
			bound_add(x->delta, sure, lo, hi);
	}
}

static void check_counter(struct simcheck *c, const struct keyview *kv)
{
	if (!checking(c, SIMCHECK_COUNTER))
		return;
	char what[160];
	bool final_done = false;
	for (uint32_t i = 0; i < kv->nids; i++) {
		const struct simcheck_op *r = &c->ops[kv->ids[i]];
		if (r->kind != SC_CGET || r->outcome != SC_OK)
			continue;
		bool final = r->client == SIMCHECK_CLIENT_FINAL;
		/* The first final read ((d) holds the others to it); reads during
		 * the run when stale reads are judged in this mix. */
		if ((final && final_done) || (!final && !checking(c, SIMCHECK_STALE)))
			continue;
		final_done |= final;
		int64_t lo, hi;
		counter_bounds(c, kv, r, &lo, &hi);
		if (r->counter < lo || r->counter > hi) {
			snprintf(what, sizeof(what), "%s found the counter at %lld, outside [%lld, %lld] (the INCRs "
				 "surely and possibly counted)", final ? "the final read" : "a read", (long long)r->counter,
				 (long long)lo, (long long)hi);
			violation(c, kv, SIMCHECK_COUNTER, kv->ids[i], NONE, what);
		}
	}
}

/* Op h (of the key) may hide the value of write w before scan sc ends: h
 * is a flush that may kill w (w submitted before its effect ended), or a
 * DEL, or a value write with an expiry, that may supersede w. In a
 * siblings keyspace a DEL or write supersedes only what its context covers
 * (add-wins): not w when its context was fixed before w began, i.e. a
 * DYN_PUT or DYN_DEL submitted before w, a plain SET or DEL acknowledged
 * before w (a coordinator past its answer may still read). In an LWW
 * keyspace any of them may win (clock skew): no such exception. */
static bool may_hide(const struct simcheck *c, const struct keyview *kv, const struct simcheck_op *h,
		     const struct simcheck_op *w, const struct simcheck_op *sc)
{
	if (h == w || !may_apply(h) || h->submit_ms > sc->done_ms)
		return false;
	if (h->kind == SC_FLUSH)
		return effect_end(h) >= w->submit_ms;
	if (!is_del(h->kind) && !(is_value_write(h->kind) && h->expires))
		return false;
	if (c->cfg.ks[kv->keyspace].lww)
		return true;
	if (h->kind == SC_DYN_PUT || h->kind == SC_DYN_DEL)
		return h->submit_ms >= w->submit_ms;
	return !(h->outcome == SC_OK && h->done_ms < w->submit_ms);
}

/* A write acknowledged before sc began, at a W its replicas meet, whose
 * value no op may have hidden before sc ended: the key was present for the
 * whole scan. Returns it, or NONE. */
static uint32_t scan_witness(const struct simcheck *c, const struct keyview *kv, const struct simcheck_op *sc)
{
	uint8_t w_ks = c->cfg.ks[kv->keyspace].w;
	for (uint32_t j = 0; j < kv->nids; j++) {
		const struct simcheck_op *w = &c->ops[kv->ids[j]];
		if ((!is_value_write(w->kind) && w->kind != SC_INCR) || w->outcome != SC_OK ||
		    w->done_ms >= sc->submit_ms || w->w < w_ks || may_expire_by(w, sc->done_ms))
			continue;
		bool hidden = false;
		for (uint32_t k = 0; k < kv->nids && !hidden; k++)
			hidden = may_hide(c, kv, &c->ops[kv->ids[k]], w, sc);
		if (!hidden)
			return kv->ids[j];
	}
	return NONE;
}

static void check_scan(struct simcheck *c, const struct keyview *kv)
{
	for (uint32_t i = 0; i < kv->nids; i++) {
		const struct simcheck_op *sc = &c->ops[kv->ids[i]];
		if (sc->kind != SC_SCAN || sc->outcome != SC_OK)
			continue;
		bool written = false;
		for (uint32_t j = 0; j < kv->nids && !written; j++) {
			const struct simcheck_op *x = &c->ops[kv->ids[j]];
			written = (is_value_write(x->kind) || x->kind == SC_INCR) && may_apply(x) &&
				  x->submit_ms <= sc->done_ms;
		}
		if (sc->found && !written && checking(c, SIMCHECK_VALID))
			violation(c, kv, SIMCHECK_VALID, kv->ids[i], NONE, "a scan returned a key no write had made");
		if (sc->found || !checking(c, SIMCHECK_SCAN))
			continue;
		uint32_t witness = scan_witness(c, kv, sc);
		if (witness != NONE)
			violation(c, kv, SIMCHECK_SCAN, kv->ids[i], witness,
				  "a scan did not return a key present (written, not deleted or flushed) for all of it");
	}
}

static void check_key(struct simcheck *c, struct keyview *kv, uint32_t *local)
{
	const struct simcheck_keyspace *ks = &c->cfg.ks[kv->keyspace];
	kv->n = ks->n;
	kv->m = 0;
	for (uint32_t i = 0; i < kv->nids; i++) {
		const struct simcheck_op *o = &c->ops[kv->ids[i]];
		if (!is_read(o->kind) && in_value_model(o->kind) && !never_applied(o)) {
			local[kv->ids[i]] = kv->m;
			kv->w[kv->m++] = kv->ids[i];
		}
	}
	kv->words = (kv->m + 63) / 64 ? (kv->m + 63) / 64 : 1;
	size_t rows_bytes = (size_t)kv->m * kv->words * sizeof(uint64_t);
	kv->def = calloc(1, rows_bytes + 8);
	kv->pos = calloc(1, rows_bytes + 8);
	kv->scratch = calloc(kv->words, sizeof(uint64_t));
	DV_ASSERT(kv->def && kv->pos && kv->scratch);
	build_coverage(c, kv, local);

	if (checking(c, SIMCHECK_VALID))
		check_valid(c, kv, local);
	uint32_t final = check_converged(c, kv);
	if (!ks->lww) {
		if (final != NONE && checking(c, SIMCHECK_LOST))
			check_lost(c, kv, final);
		for (uint32_t i = 0; i < kv->nids; i++) {
			const struct simcheck_op *o = &c->ops[kv->ids[i]];
			if (o->outcome != SC_OK)
				continue;
			/* Add-wins (dvv_pick): plain GET and DEL find nothing only
			 * when no value is visible, which is judged as a DYN_GET
			 * that returned nothing. A plain GET that found a value
			 * returned one of the visible ones: (c) and (e) judge it. */
			bool empty_plain = (o->kind == SC_GET && o->nvals == 0) || reads_as_get(o);
			if (checking(c, SIMCHECK_STALE) && (o->kind == SC_DYN_GET || empty_plain))
				check_stale_dyn(c, kv, local, kv->ids[i]);
			if (!is_read(o->kind))
				continue;
			if (checking(c, SIMCHECK_RESURRECT))
				check_resurrect(c, kv, local, kv->ids[i], false);
		}
	} else if (checking(c, SIMCHECK_RESURRECT)) {
		/* LWW drops concurrent writes by design, but a flush is a flush. */
		for (uint32_t i = 0; i < kv->nids; i++) {
			const struct simcheck_op *o = &c->ops[kv->ids[i]];
			if (is_read(o->kind) && o->outcome == SC_OK)
				check_resurrect(c, kv, local, kv->ids[i], true);
		}
	}
	check_counter(c, kv);
	check_scan(c, kv);
	for (uint32_t x = 0; x < kv->m; x++)
		local[kv->w[x]] = NONE;
	free(kv->def);
	free(kv->pos);
	free(kv->scratch);
}

static const struct simcheck *sort_ctx;

static int by_key(const void *pa, const void *pb)
{
	const struct simcheck_op *a = &sort_ctx->ops[*(const uint32_t *)pa];
	const struct simcheck_op *b = &sort_ctx->ops[*(const uint32_t *)pb];
	if (a->keyspace != b->keyspace)
		return a->keyspace < b->keyspace ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
	return ia < ib ? -1 : ia > ib;
}

unsigned simcheck_run(struct simcheck *c, FILE *out)
{
	memset(c->viol, 0, sizeof(c->viol));
	c->printed = 0;
	c->out = out;
	/* Pending ops are indeterminate: they may have been applied. */
	for (uint32_t i = 0; i < c->nops; i++)
		if (c->ops[i].outcome == SC_PENDING)
			c->ops[i].outcome = SC_INDET;
	uint32_t *order = malloc((c->nops + 1) * sizeof(*order));
	uint32_t *local = malloc((c->nops + 1) * sizeof(*local));
	uint32_t *w = malloc((c->nops + 1) * sizeof(*w));
	DV_ASSERT(order && local && w);
	for (uint32_t i = 0; i < c->nops; i++) {
		order[i] = i;
		local[i] = NONE;
	}
	sort_ctx = c;
	qsort(order, c->nops, sizeof(*order), by_key);
	sort_ctx = NULL;
	for (uint32_t i = 0; i < c->nops;) {
		uint32_t j = i;
		const struct simcheck_op *first = &c->ops[order[i]];
		while (j < c->nops && c->ops[order[j]].keyspace == first->keyspace && c->ops[order[j]].key == first->key)
			j++;
		struct keyview kv = {.keyspace = first->keyspace, .key = first->key, .ids = order + i, .nids = j - i, .w = w};
		check_key(c, &kv, local);
		i = j;
	}
	free(order);
	free(local);
	free(w);
	unsigned total = 0;
	for (unsigned r = 0; r < RULES; r++)
		total += c->viol[r];
	if (total > c->cfg.print_max)
		fprintf(out, "simcheck: %u violations in all (%u printed)\n", total, c->cfg.print_max);
	return total;
}
