/* dvv.c - dotted version vector sets and their encodings (contract: dvv.h).
 *
 * The merge rule of one actor's entries (dvvset:merge): entry (N, L) holds
 * the values of dots N-len(L)+1 .. N, and knows dots 1..N. Of two entries of
 * one actor, a value survives when both hold it, or when the other side does
 * not know its dot. Dots are contiguous, so the survivors are the dots above
 * max(N1 - len(L1), N2 - len(L2)) up to max(N1, N2), all held by the side
 * with the greater counter: a prefix of its list.
 *
 * Invariants (wellformed(), asserted on entry and exit of every public
 * function; the decoders refuse what breaks them):
 *  1. entries sorted by actor, unique; 1 <= counter <= DVV_COUNTER_MAX;
 *  2. e[i].nvals <= e[i].counter, e[i].first = the nvals of e[0..i), and
 *     their sum is nvals <= DVV_VALUES_MAX;
 *  3. flags 0, DVV_VAL_TOMB (len 0) or DVV_VAL_COUNTER (a length a counter
 *     state can have; dvv_decode checks the whole state, counter.h), the
 *     lengths sum to at most DVV_VALUE_BYTES_MAX;
 *  4. LWW: at most one value, never a counter.
 * Every loop is bounded by DVV_ENTRIES_MAX or DVV_VALUES_MAX.
 */
#include "cluster/dvv.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/le.h"
#include "cluster/counter.h"

#define DVV_FORMAT 1u
#define CTX_VERSION 2u
#define CTX_HEAD_BYTES 20u
#define CTX_ENTRY_BYTES 16u
#define CTX_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

_Static_assert(DVV_META_BYTES_MAX <= DV_META_BYTES_MAX, "a dvv meta fits the engine record's meta");
_Static_assert(DVV_VALUE_BYTES_MAX == DV_VALUE_BYTES_MAX, "a dvv's values fit the engine record's value");
_Static_assert(DVV_VALUES_MAX <= UINT16_MAX && DVV_ENTRIES_MAX <= UINT16_MAX, "counts fit u16 fields");
_Static_assert(DVV_CTX_BIN_MAX == CTX_HEAD_BYTES + DVV_ENTRIES_MAX * CTX_ENTRY_BYTES + DVV_CTX_TAG_BYTES,
	       "context layout");
_Static_assert(DVV_CTX_TEXT_MAX >= sodium_base64_ENCODED_LEN(DVV_CTX_BIN_MAX, CTX_B64), "context text room");
_Static_assert(DVV_CTX_TAG_BYTES >= crypto_generichash_BYTES_MIN && DVV_CTX_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN &&
		       DVV_CTX_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
	       "BLAKE2b accepts the tag and key sizes");

/* What a decoded value of length 0 points to. */
static const uint8_t empty_bytes[1];

static bool policy_valid(unsigned policy) { return policy == DVV_SIBLINGS || policy == DVV_LWW; }

static bool value_flags_ok(const struct dvv_value *v, unsigned policy)
{
	switch (v->flags) {
	case 0: return true;
	case DVV_VAL_TOMB: return v->len == 0;
	case DVV_VAL_COUNTER:
		return policy == DVV_SIBLINGS && v->len >= COUNTER_HDR_BYTES && v->len <= COUNTER_BYTES_MAX &&
		       (v->len - COUNTER_HDR_BYTES) % COUNTER_ENTRY_BYTES == 0;
	default: return false;
	}
}

static bool values_wellformed(const struct dvv *d)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < d->nvals; i++) {
		const struct dvv_value *v = &d->v[i];
		if (!value_flags_ok(v, d->policy))
			return false;
		total += v->len;
	}
	return total <= DVV_VALUE_BYTES_MAX;
}

static bool wellformed(const struct dvv *d)
{
	if (!policy_valid(d->policy) || d->nentries > DVV_ENTRIES_MAX || d->nvals > DVV_VALUES_MAX)
		return false;
	if (d->policy == DVV_LWW && d->nvals > 1)
		return false;
	unsigned sum = 0;
	for (unsigned i = 0; i < d->nentries; i++) {
		const struct dvv_entry *e = &d->e[i];
		if (i > 0 && d->e[i - 1].actor >= e->actor)
			return false;
		if (e->counter == 0 || e->counter > DVV_COUNTER_MAX || e->nvals > e->counter || e->first != sum)
			return false;
		sum += e->nvals;
	}
	return sum == d->nvals && values_wellformed(d);
}

#define DVV_CHECK(d) DV_ASSERT(wellformed(d))

bool dvv_vv_valid(const struct dvv_vv *vv)
{
	if (vv->n > DVV_ENTRIES_MAX)
		return false;
	for (unsigned i = 0; i < vv->n; i++) {
		if (vv->e[i].counter == 0 || vv->e[i].counter > DVV_COUNTER_MAX)
			return false;
		if (i > 0 && vv->e[i - 1].actor >= vv->e[i].actor)
			return false;
	}
	return true;
}

void dvv_init(struct dvv *d, enum dvv_policy policy)
{
	DV_ASSERT(policy_valid(policy));
	d->policy = (uint8_t)policy;
	d->nentries = 0;
	d->nvals = 0;
	DVV_CHECK(d);
}

void dvv_copy(struct dvv *out, const struct dvv *d)
{
	DV_ASSERT(out != d);
	DVV_CHECK(d);
	out->policy = d->policy;
	out->nentries = d->nentries;
	out->nvals = d->nvals;
	memcpy(out->e, d->e, d->nentries * sizeof(d->e[0]));
	memcpy(out->v, d->v, d->nvals * sizeof(d->v[0]));
}

uint64_t dvv_value_bytes(const struct dvv *d)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < d->nvals; i++)
		total += d->v[i].len;
	return total;
}

/* ---- merging ----------------------------------------------------------- */

/* Appends entry (actor, counter) holding vals[0..n) to out. */
static int put_entry(struct dvv *out, uint64_t actor, uint64_t counter, const struct dvv_value *vals, unsigned n)
{
	DV_ASSERT(n <= counter && counter >= 1);
	DV_ASSERT(out->nentries == 0 || out->e[out->nentries - 1].actor < actor);
	if (out->nentries == DVV_ENTRIES_MAX || out->nvals + n > DVV_VALUES_MAX)
		return -E2BIG;
	out->e[out->nentries++] = (struct dvv_entry){
		.actor = actor, .counter = counter, .nvals = (uint16_t)n, .first = out->nvals};
	if (n > 0)
		memcpy(&out->v[out->nvals], vals, n * sizeof(*vals));
	out->nvals = (uint16_t)(out->nvals + n);
	return 0;
}

/* Two entries of one actor: the greater counter, and the values above both
 * sides' oldest held dot (see the top comment). */
static int put_merged(struct dvv *out, const struct dvv *a, const struct dvv_entry *ea, const struct dvv *b,
		      const struct dvv_entry *eb, bool values)
{
	DV_ASSERT(ea->actor == eb->actor);
	if (ea->counter < eb->counter) {
		const struct dvv *t = a;
		const struct dvv_entry *te = ea;
		a = b, ea = eb, b = t, eb = te;
	}
	uint64_t lo_a = ea->counter - ea->nvals, lo_b = eb->counter - eb->nvals;
	uint64_t keep = ea->counter - (lo_a > lo_b ? lo_a : lo_b);
	DV_ASSERT(keep <= ea->nvals);
	return put_entry(out, ea->actor, ea->counter, &a->v[ea->first], values ? (unsigned)keep : 0);
}

/* out = the entries of a and b merged; with values false the clock only. */
static int merge(struct dvv *out, const struct dvv *a, const struct dvv *b, bool values)
{
	out->nentries = 0;
	out->nvals = 0;
	unsigned i = 0, j = 0;
	while (i < a->nentries || j < b->nentries) { /* each round consumes an entry */
		const struct dvv_entry *ea = i < a->nentries ? &a->e[i] : NULL;
		const struct dvv_entry *eb = j < b->nentries ? &b->e[j] : NULL;
		int rc;
		if (eb == NULL || (ea != NULL && ea->actor < eb->actor)) {
			rc = put_entry(out, ea->actor, ea->counter, &a->v[ea->first], values ? ea->nvals : 0);
			i++;
		} else if (ea == NULL || eb->actor < ea->actor) {
			rc = put_entry(out, eb->actor, eb->counter, &b->v[eb->first], values ? eb->nvals : 0);
			j++;
		} else {
			rc = put_merged(out, a, ea, b, eb, values);
			i++, j++;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int find_entry(const struct dvv *d, uint64_t actor)
{
	for (unsigned i = 0; i < d->nentries; i++)
		if (d->e[i].actor == actor)
			return (int)i;
	return -1;
}

/* A new event of actor in out (in place): its counter + 1 and, when val is
 * not NULL, val as the entry's newest value. */
static int add_event(struct dvv *out, uint64_t actor, const struct dvv_value *val)
{
	unsigned i = 0;
	while (i < out->nentries && out->e[i].actor < actor)
		i++;
	if (i == out->nentries || out->e[i].actor != actor) {
		if (out->nentries == DVV_ENTRIES_MAX)
			return -E2BIG;
		uint16_t first = i < out->nentries ? out->e[i].first : out->nvals;
		memmove(&out->e[i + 1], &out->e[i], (out->nentries - i) * sizeof(out->e[0]));
		out->e[i] = (struct dvv_entry){.actor = actor, .counter = 0, .nvals = 0, .first = first};
		out->nentries++;
	}
	struct dvv_entry *e = &out->e[i];
	if (e->counter >= DVV_COUNTER_MAX)
		return -E2BIG;
	e->counter++;
	if (val == NULL)
		return 0;
	if (out->nvals == DVV_VALUES_MAX)
		return -E2BIG;
	memmove(&out->v[e->first + 1], &out->v[e->first], (out->nvals - e->first) * sizeof(out->v[0]));
	out->v[e->first] = *val;
	e->nvals++;
	out->nvals++;
	for (unsigned k = i + 1; k < out->nentries; k++)
		out->e[k].first++;
	return 0;
}

/* ---- LWW --------------------------------------------------------------- */

/* d's only value and its writer, or NULL. */
static const struct dvv_value *lww_value(const struct dvv *d, uint64_t *writer)
{
	DV_ASSERT(d->nvals <= 1);
	for (unsigned i = 0; i < d->nentries; i++)
		if (d->e[i].nvals == 1) {
			*writer = d->e[i].actor;
			return &d->v[d->e[i].first];
		}
	return NULL;
}

static int cmp_u64(uint64_t a, uint64_t b) { return (a > b) - (a < b); }

/* The LWW order: (ts, writer), then the content, so that any two values
 * compare (equal only when they are the same write). Bytes of clock-only
 * values (data NULL) compare equal. */
static int lww_cmp(const struct dvv_value *x, uint64_t xa, const struct dvv_value *y, uint64_t ya)
{
	int c = cmp_u64(x->ts, y->ts);
	if (c == 0)
		c = cmp_u64(xa, ya);
	if (c == 0)
		c = cmp_u64(x->flags, y->flags);
	if (c == 0)
		c = cmp_u64(x->expire_ms, y->expire_ms);
	if (c == 0)
		c = cmp_u64(x->len, y->len);
	if (c == 0 && x->len > 0 && x->data != NULL && y->data != NULL)
		c = memcmp(x->data, y->data, x->len);
	return c;
}

/* out holds a clock without values: put the greater of x (by xa) and y (by
 * ya) in its writer's entry. Either may be NULL. */
static void lww_place(struct dvv *out, const struct dvv_value *x, uint64_t xa, const struct dvv_value *y, uint64_t ya)
{
	DV_ASSERT(out->nvals == 0);
	if (x == NULL || (y != NULL && lww_cmp(y, ya, x, xa) > 0))
		x = y, xa = ya;
	if (x == NULL)
		return;
	int w = find_entry(out, xa);
	DV_ASSERT(w >= 0);
	out->v[0] = *x;
	out->nvals = 1;
	out->e[w].nvals = 1;
	for (unsigned k = (unsigned)w + 1; k < out->nentries; k++)
		out->e[k].first = 1;
}

/* ---- sync and update --------------------------------------------------- */

static int check_value_bytes(const struct dvv *out)
{
	return dvv_value_bytes(out) > DVV_VALUE_BYTES_MAX ? -E2BIG : 0;
}

int dvv_sync(struct dvv *out, const struct dvv *a, const struct dvv *b)
{
	DV_ASSERT(out != a && out != b);
	DVV_CHECK(a);
	DVV_CHECK(b);
	if (a->policy != b->policy)
		return -EINVAL;
	out->policy = a->policy;
	bool lww = a->policy == DVV_LWW;
	int rc = merge(out, a, b, !lww);
	if (rc != 0)
		return rc;
	if (lww) {
		uint64_t wa = 0, wb = 0;
		const struct dvv_value *va = lww_value(a, &wa), *vb = lww_value(b, &wb);
		lww_place(out, va, wa, vb, wb);
	}
	rc = check_value_bytes(out);
	if (rc == 0)
		DVV_CHECK(out);
	return rc;
}

int dvv_update(struct dvv *out, const struct dvv *local, const struct dvv_vv *ctx, uint64_t actor,
	       const struct dvv_value *val)
{
	DV_ASSERT(out != local);
	DVV_CHECK(local);
	DV_ASSERT(value_flags_ok(val, local->policy));
	DV_ASSERT(val->len == 0 || val->data != NULL);
	if (!dvv_vv_valid(ctx))
		return -EINVAL;
	if (val->len > DVV_VALUE_BYTES_MAX)
		return -E2BIG;
	/* The context as a version without values: merging it drops exactly
	 * the local values whose dots it covers (dvvset:update). */
	struct dvv c;
	dvv_init(&c, local->policy);
	for (unsigned i = 0; i < ctx->n; i++)
		c.e[i] = (struct dvv_entry){.actor = ctx->e[i].actor, .counter = ctx->e[i].counter, .nvals = 0, .first = 0};
	c.nentries = ctx->n;
	DVV_CHECK(&c);

	out->policy = local->policy;
	bool lww = local->policy == DVV_LWW;
	int rc = merge(out, &c, local, !lww);
	if (rc == 0)
		rc = add_event(out, actor, lww ? NULL : val);
	if (rc == 0 && lww) {
		uint64_t wl = 0;
		const struct dvv_value *vl = lww_value(local, &wl);
		lww_place(out, vl, wl, val, actor);
	}
	if (rc == 0)
		rc = check_value_bytes(out);
	if (rc == 0)
		DVV_CHECK(out);
	return rc;
}

/* ---- comparisons ------------------------------------------------------- */

void dvv_join(const struct dvv *d, struct dvv_vv *out)
{
	DVV_CHECK(d);
	out->n = d->nentries;
	for (unsigned i = 0; i < d->nentries; i++) {
		out->e[i].actor = d->e[i].actor;
		out->e[i].counter = d->e[i].counter;
	}
	DV_ASSERT(dvv_vv_valid(out));
}

bool dvv_less(const struct dvv *a, const struct dvv *b)
{
	DVV_CHECK(a);
	DVV_CHECK(b);
	bool strict = false;
	unsigned j = 0;
	for (unsigned i = 0; i < a->nentries; i++) {
		while (j < b->nentries && b->e[j].actor < a->e[i].actor) {
			strict = true; /* an actor b knows and a does not */
			j++;
		}
		if (j == b->nentries || b->e[j].actor != a->e[i].actor || b->e[j].counter < a->e[i].counter)
			return false;
		strict |= b->e[j].counter > a->e[i].counter;
		j++;
	}
	return strict || j < b->nentries;
}

bool dvv_covered(const struct dvv *a, const struct dvv *b)
{
	DVV_CHECK(a);
	DVV_CHECK(b);
	unsigned j = 0;
	for (unsigned i = 0; i < a->nentries; i++) {
		while (j < b->nentries && b->e[j].actor < a->e[i].actor)
			j++;
		if (j == b->nentries || b->e[j].actor != a->e[i].actor || b->e[j].counter < a->e[i].counter)
			return false;
		j++;
	}
	return true;
}

/* The greater of two values in dvv_pick's order: (ts, actor, counter). */
static bool value_after(uint64_t ts_a, uint64_t actor_a, uint64_t ctr_a, uint64_t ts_b, uint64_t actor_b,
			uint64_t ctr_b)
{
	if (ts_a != ts_b)
		return ts_a > ts_b;
	if (actor_a != actor_b)
		return actor_a > actor_b;
	return ctr_a > ctr_b;
}

int dvv_widen(struct dvv *out, const struct dvv *v, const struct dvv *m)
{
	DVV_CHECK(v);
	DVV_CHECK(m);
	DV_ASSERT(v->nvals == 1 && v->policy == DVV_SIBLINGS);
	if (m->policy != v->policy)
		return -EINVAL;
	const struct dvv_entry *ve = NULL;
	for (unsigned i = 0; i < v->nentries && !ve; i++)
		ve = v->e[i].nvals ? &v->e[i] : NULL;
	DV_ASSERT(ve != NULL && ve->nvals == 1);
	for (unsigned i = 0; i < m->nentries; i++) {
		const struct dvv_entry *e = &m->e[i];
		for (unsigned k = 0; k < e->nvals; k++) {
			uint64_t dot = e->counter - k;
			if (e->actor == ve->actor && dot == ve->counter)
				continue; /* v itself */
			if (!value_after(v->v[0].ts, ve->actor, ve->counter, m->v[e->first + k].ts, e->actor, dot))
				return -ESTALE;
		}
	}
	dvv_init(out, v->policy);
	unsigned i = 0, j = 0;
	while (i < v->nentries || j < m->nentries) {
		const struct dvv_entry *a = i < v->nentries ? &v->e[i] : NULL;
		const struct dvv_entry *b = j < m->nentries ? &m->e[j] : NULL;
		if (out->nentries == DVV_ENTRIES_MAX)
			return -E2BIG;
		struct dvv_entry *e = &out->e[out->nentries++];
		bool value = false; /* e is the entry of v's value */
		if (a && (!b || a->actor <= b->actor)) {
			*e = *a;
			value = a->nvals > 0;
			i++;
			if (b && b->actor == a->actor) {
				j++;
				if (a->nvals && (b->counter > a->counter || (b->counter == a->counter && b->nvals == 0)))
					return -ESTALE; /* m knows the value's actor past it, or saw it superseded */
				e->counter = a->counter > b->counter ? a->counter : b->counter;
			}
		} else {
			*e = *b;
			j++;
		}
		if (value) {
			e->nvals = 1;
			e->first = 0;
			out->v[0] = v->v[0];
			out->nvals = 1;
		} else {
			e->nvals = 0; /* what m holds of it: superseded by v */
			e->first = (uint16_t)out->nvals;
		}
	}
	DV_ASSERT(out->nvals == 1);
	DVV_CHECK(out);
	return 0;
}

bool dvv_equal(const struct dvv *a, const struct dvv *b)
{
	DVV_CHECK(a);
	DVV_CHECK(b);
	if (a->policy != b->policy || a->nentries != b->nentries || a->nvals != b->nvals)
		return false;
	for (unsigned i = 0; i < a->nentries; i++)
		if (a->e[i].actor != b->e[i].actor || a->e[i].counter != b->e[i].counter || a->e[i].nvals != b->e[i].nvals)
			return false;
	return true;
}

static bool value_identical(const struct dvv_value *x, const struct dvv_value *y)
{
	if (x->ts != y->ts || x->expire_ms != y->expire_ms || x->flags != y->flags || x->len != y->len)
		return false;
	if (x->len == 0)
		return true;
	DV_ASSERT(x->data != NULL && y->data != NULL); /* not clock-only */
	return memcmp(x->data, y->data, x->len) == 0;
}

bool dvv_identical(const struct dvv *a, const struct dvv *b)
{
	if (!dvv_equal(a, b))
		return false;
	for (unsigned i = 0; i < a->nvals; i++)
		if (!value_identical(&a->v[i], &b->v[i]))
			return false;
	return true;
}

static bool value_live(const struct dvv_value *v, uint64_t now_ms)
{
	return !(v->flags & DVV_VAL_TOMB) && (v->expire_ms == 0 || v->expire_ms > now_ms);
}

unsigned dvv_visible(const struct dvv *d, uint64_t now_ms, const struct dvv_value **out, unsigned max)
{
	DVV_CHECK(d);
	DV_ASSERT(max == 0 || out != NULL);
	unsigned n = 0;
	for (unsigned i = 0; i < d->nvals; i++) {
		if (!value_live(&d->v[i], now_ms))
			continue;
		if (n < max)
			out[n] = &d->v[i];
		n++;
	}
	return n;
}

const struct dvv_value *dvv_pick(const struct dvv *d, uint64_t now_ms)
{
	DVV_CHECK(d);
	const struct dvv_value *best = NULL;
	uint64_t best_actor = 0, best_counter = 0;
	for (unsigned i = 0; i < d->nentries; i++) {
		const struct dvv_entry *e = &d->e[i];
		for (unsigned k = 0; k < e->nvals; k++) {
			const struct dvv_value *v = &d->v[e->first + k];
			uint64_t counter = e->counter - k; /* the dot of the k-th newest */
			if (!value_live(v, now_ms))
				continue; /* add-wins: a tombstone or an expired value is never the pick */
			int c = best == NULL ? 1 : cmp_u64(v->ts, best->ts);
			if (c == 0)
				c = cmp_u64(e->actor, best_actor);
			if (c == 0)
				c = cmp_u64(counter, best_counter);
			if (c > 0)
				best = v, best_actor = e->actor, best_counter = counter;
		}
	}
	DV_ASSERT(best == NULL || value_live(best, now_ms));
	return best;
}

static bool actor_in(uint64_t actor, const uint64_t *keep, unsigned nkeep)
{
	for (unsigned i = 0; i < nkeep; i++)
		if (keep[i] == actor)
			return true;
	return false;
}

unsigned dvv_prune(struct dvv *d, const uint64_t *keep, unsigned nkeep, unsigned max_entries)
{
	DVV_CHECK(d);
	DV_ASSERT(nkeep == 0 || keep != NULL);
	unsigned dropped = 0;
	while (d->nentries > max_entries) { /* each round drops an entry or stops */
		int victim = -1;
		for (unsigned i = 0; i < d->nentries; i++) {
			const struct dvv_entry *e = &d->e[i];
			if (e->nvals != 0 || actor_in(e->actor, keep, nkeep))
				continue;
			if (victim < 0 || (e->actor & DVV_INCARNATION_MASK) < (d->e[victim].actor & DVV_INCARNATION_MASK))
				victim = (int)i;
		}
		if (victim < 0)
			break;
		/* A value-less entry: the firsts of the others stay right. */
		memmove(&d->e[victim], &d->e[victim + 1], (d->nentries - (unsigned)victim - 1) * sizeof(d->e[0]));
		d->nentries--;
		dropped++;
	}
	DVV_CHECK(d);
	return dropped;
}

/* ---- record encoding --------------------------------------------------- */

uint32_t dvv_meta_bytes(const struct dvv *d)
{
	return DVV_META_HDR_BYTES + d->nentries * DVV_META_ENTRY_BYTES + d->nvals * DVV_META_VALUE_BYTES;
}

void dvv_encode(const struct dvv *d, uint8_t *meta, uint8_t *vals)
{
	DVV_CHECK(d);
	uint8_t *p = meta + 8;
	*p++ = DVV_FORMAT;
	*p++ = d->policy;
	le_put16(p, d->nentries), p += 2;
	le_put16(p, d->nvals), p += 2;
	le_put16(p, 0), p += 2;
	for (unsigned i = 0; i < d->nentries; i++) {
		le_put64(p, d->e[i].actor);
		le_put64(p + 8, d->e[i].counter);
		le_put16(p + 16, d->e[i].nvals);
		p += DVV_META_ENTRY_BYTES;
	}
	uint64_t off = 0;
	for (unsigned i = 0; i < d->nvals; i++) {
		const struct dvv_value *v = &d->v[i];
		le_put64(p, v->ts);
		le_put64(p + 8, v->expire_ms);
		le_put32(p + 16, v->len);
		p[20] = v->flags;
		p += DVV_META_VALUE_BYTES;
		if (v->len > 0) {
			DV_ASSERT(v->data != NULL); /* a clock-only version is never encoded */
			memcpy(vals + off, v->data, v->len);
			off += v->len;
		}
	}
	uint32_t len = (uint32_t)(p - meta);
	DV_ASSERT(len == dvv_meta_bytes(d) && off == dvv_value_bytes(d));
	le_put64(meta, dv_checksum64(meta + 8, len - 8));
}

/* The meta into d with every data NULL; *vals_total the lengths' sum. */
static int decode_meta(struct dvv *d, const uint8_t *meta, uint32_t meta_len, uint64_t *vals_total)
{
	if (meta_len < DVV_META_HDR_BYTES || meta_len > DVV_META_BYTES_MAX)
		return -DV_ECORRUPT;
	if (le_get64(meta) != dv_checksum64(meta + 8, meta_len - 8))
		return -DV_ECORRUPT;
	unsigned nentries = le_get16(meta + 10), nvals = le_get16(meta + 12);
	if (meta[8] != DVV_FORMAT || !policy_valid(meta[9]) || le_get16(meta + 14) != 0)
		return -DV_ECORRUPT;
	if (nentries > DVV_ENTRIES_MAX || nvals > DVV_VALUES_MAX)
		return -DV_ECORRUPT;
	if (meta_len != DVV_META_HDR_BYTES + nentries * DVV_META_ENTRY_BYTES + nvals * DVV_META_VALUE_BYTES)
		return -DV_ECORRUPT;
	d->policy = meta[9];
	d->nentries = (uint16_t)nentries;
	d->nvals = (uint16_t)nvals;
	const uint8_t *p = meta + DVV_META_HDR_BYTES;
	unsigned sum = 0;
	for (unsigned i = 0; i < nentries; i++, p += DVV_META_ENTRY_BYTES) {
		struct dvv_entry *e = &d->e[i];
		*e = (struct dvv_entry){.actor = le_get64(p), .counter = le_get64(p + 8), .nvals = le_get16(p + 16)};
		if (sum + e->nvals > nvals)
			return -DV_ECORRUPT;
		e->first = (uint16_t)sum;
		sum += e->nvals;
	}
	uint64_t total = 0;
	for (unsigned i = 0; i < nvals; i++, p += DVV_META_VALUE_BYTES) {
		d->v[i] = (struct dvv_value){
			.data = NULL, .ts = le_get64(p), .expire_ms = le_get64(p + 8), .len = le_get32(p + 16), .flags = p[20]};
		total += d->v[i].len;
	}
	if (!wellformed(d))
		return -DV_ECORRUPT;
	*vals_total = total;
	return 0;
}

int dvv_decode(struct dvv *d, const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t vals_len)
{
	DV_ASSERT(vals != NULL || vals_len == 0);
	uint64_t total = 0;
	int rc = decode_meta(d, meta, meta_len, &total);
	if (rc != 0)
		return rc;
	if (total != vals_len)
		return -DV_ECORRUPT;
	uint64_t off = 0;
	for (unsigned i = 0; i < d->nvals; i++) {
		d->v[i].data = d->v[i].len > 0 ? vals + off : empty_bytes;
		off += d->v[i].len;
		struct counter c;
		if ((d->v[i].flags & DVV_VAL_COUNTER) && counter_decode(&c, d->v[i].data, d->v[i].len) != 0)
			return -DV_ECORRUPT; /* readers merge counter states: refuse a damaged one here */
	}
	DVV_CHECK(d);
	return 0;
}

int dvv_decode_clock(struct dvv *d, const uint8_t *meta, uint32_t meta_len)
{
	uint64_t total = 0;
	int rc = decode_meta(d, meta, meta_len, &total);
	if (rc == 0)
		DVV_CHECK(d);
	return rc;
}

/* ---- client contexts --------------------------------------------------- */

static void ctx_tag(uint8_t tag[DVV_CTX_TAG_BYTES], const uint8_t *bin, size_t bin_len,
		    const uint8_t ctx_key[DVV_CTX_KEY_BYTES], const void *key, uint32_t key_len)
{
	crypto_generichash_state st;
	DV_ASSERT(crypto_generichash_init(&st, ctx_key, DVV_CTX_KEY_BYTES, DVV_CTX_TAG_BYTES) == 0);
	crypto_generichash_update(&st, bin, bin_len);
	if (key_len > 0)
		crypto_generichash_update(&st, key, key_len);
	crypto_generichash_final(&st, tag, DVV_CTX_TAG_BYTES);
}

static bool b64url_alphabet(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

size_t dvv_ctx_encode(const struct dvv_vv *vv, uint8_t policy, uint64_t flush_id, uint64_t cluster_id,
		      const uint8_t ctx_key[DVV_CTX_KEY_BYTES], const void *key, uint32_t key_len, char *out)
{
	DV_ASSERT(dvv_vv_valid(vv) && policy_valid(policy));
	DV_ASSERT(key_len == 0 || key != NULL);
	uint8_t bin[DVV_CTX_BIN_MAX];
	bin[0] = CTX_VERSION;
	bin[1] = policy;
	le_put64(bin + 2, cluster_id);
	le_put64(bin + 10, flush_id);
	le_put16(bin + 18, vv->n);
	size_t len = CTX_HEAD_BYTES;
	for (unsigned i = 0; i < vv->n; i++, len += CTX_ENTRY_BYTES) {
		le_put64(bin + len, vv->e[i].actor);
		le_put64(bin + len + 8, vv->e[i].counter);
	}
	ctx_tag(bin + len, bin, len, ctx_key, key, key_len);
	len += DVV_CTX_TAG_BYTES;
	DV_ASSERT(len <= sizeof(bin));
	sodium_bin2base64(out, DVV_CTX_TEXT_MAX, bin, len, CTX_B64);
	size_t text_len = strlen(out);
	DV_ASSERT(text_len > 0 && text_len < DVV_CTX_TEXT_MAX);
	return text_len;
}

int dvv_ctx_decode(const char *text, size_t len, uint64_t cluster_id, const uint8_t ctx_key[DVV_CTX_KEY_BYTES],
		   const void *key, uint32_t key_len, struct dvv_vv *out, uint64_t *flush_id)
{
	DV_ASSERT(key_len == 0 || key != NULL);
	out->n = 0;
	if (flush_id)
		*flush_id = 0;
	if (len == 0)
		return 0;
	uint8_t bin[DVV_CTX_BIN_MAX];
	size_t bin_len = 0;
	/* One text per binary context: libsodium refuses a length of 1 mod 4
	 * and non-zero unused bits, but (1.0.18) decodes every byte >= 0x80 as
	 * '_', so the alphabet is checked here first. */
	if (len >= DVV_CTX_TEXT_MAX || !b64url_alphabet(text, len) ||
	    sodium_base642bin(bin, sizeof(bin), text, len, NULL, &bin_len, NULL, CTX_B64) != 0)
		return -EINVAL;
	if (bin_len < CTX_HEAD_BYTES + DVV_CTX_TAG_BYTES || bin[0] != CTX_VERSION || !policy_valid(bin[1]))
		return -EINVAL;
	unsigned n = le_get16(bin + 18);
	if (n > DVV_ENTRIES_MAX || bin_len != CTX_HEAD_BYTES + n * CTX_ENTRY_BYTES + DVV_CTX_TAG_BYTES)
		return -EINVAL;
	if (le_get64(bin + 2) != cluster_id)
		return -EXDEV;
	uint8_t tag[DVV_CTX_TAG_BYTES];
	ctx_tag(tag, bin, bin_len - DVV_CTX_TAG_BYTES, ctx_key, key, key_len);
	if (crypto_verify_16(tag, bin + bin_len - DVV_CTX_TAG_BYTES) != 0)
		return -EINVAL;
	out->n = (uint16_t)n;
	for (unsigned i = 0; i < n; i++) {
		out->e[i].actor = le_get64(bin + CTX_HEAD_BYTES + i * CTX_ENTRY_BYTES);
		out->e[i].counter = le_get64(bin + CTX_HEAD_BYTES + i * CTX_ENTRY_BYTES + 8);
	}
	if (!dvv_vv_valid(out)) { /* only with the key: our own bug or a leaked key */
		out->n = 0;
		return -EINVAL;
	}
	if (flush_id)
		*flush_id = le_get64(bin + 10);
	return 0;
}
