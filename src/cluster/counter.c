/* counter.c - the convergent counter (counter.h).
 *
 * Invariants (checked by counter_decode, asserted on the way in and out of
 * every function that changes a state):
 *  C1 n <= COUNTER_ACTORS_MAX; actors strictly increasing, none 0.
 *  C2 base_actor == 0 implies base == 0 and base_counter == 0.
 */
#include "cluster/counter.h"

#include <errno.h>
#include <string.h>

#include "base/assert.h"
#include "base/error.h"
#include "base/le.h"

static bool counter_ok(const struct counter *c)
{
	if (c->n > COUNTER_ACTORS_MAX)
		return false;
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].actor == 0 || (i > 0 && c->e[i].actor <= c->e[i - 1].actor))
			return false;
	return c->base_actor != 0 || (c->base == 0 && c->base_counter == 0);
}

void counter_init(struct counter *c) { memset(c, 0, sizeof(*c)); }

int counter_decode(struct counter *c, const uint8_t *p, uint32_t len)
{
	counter_init(c);
	if (len < COUNTER_HDR_BYTES || p[0] != 1 || p[1] != 0)
		return -DV_ECORRUPT;
	uint16_t n = le_get16(p + 2);
	if (n > COUNTER_ACTORS_MAX || len != COUNTER_HDR_BYTES + (uint32_t)n * COUNTER_ENTRY_BYTES)
		return -DV_ECORRUPT;
	c->base = (int64_t)le_get64(p + 4);
	c->base_actor = le_get64(p + 12);
	c->base_counter = le_get64(p + 20);
	c->n = n;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *q = p + COUNTER_HDR_BYTES + (size_t)i * COUNTER_ENTRY_BYTES;
		c->e[i].actor = le_get64(q);
		c->e[i].inc = le_get64(q + 8);
		c->e[i].dec = le_get64(q + 16);
	}
	if (!counter_ok(c)) {
		counter_init(c);
		return -DV_ECORRUPT;
	}
	return 0;
}

uint32_t counter_bytes(const struct counter *c)
{
	DV_ASSERT(c->n <= COUNTER_ACTORS_MAX);
	return COUNTER_HDR_BYTES + (uint32_t)c->n * COUNTER_ENTRY_BYTES;
}

void counter_encode(const struct counter *c, uint8_t *out)
{
	DV_ASSERT(counter_ok(c));
	out[0] = 1;
	out[1] = 0;
	le_put16(out + 2, c->n);
	le_put64(out + 4, (uint64_t)c->base);
	le_put64(out + 12, c->base_actor);
	le_put64(out + 20, c->base_counter);
	for (unsigned i = 0; i < c->n; i++) {
		uint8_t *q = out + COUNTER_HDR_BYTES + (size_t)i * COUNTER_ENTRY_BYTES;
		le_put64(q, c->e[i].actor);
		le_put64(q + 8, c->e[i].inc);
		le_put64(q + 16, c->e[i].dec);
	}
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Of two bases the one of the greater dot; equal dots name one value (dots
 * are unique), so the greater value only keeps merge commutative. */
static void base_merge(struct counter *out, const struct counter *a, const struct counter *b)
{
	const struct counter *w = a;
	if (b->base_actor > a->base_actor || (b->base_actor == a->base_actor && b->base_counter > a->base_counter) ||
	    (b->base_actor == a->base_actor && b->base_counter == a->base_counter && b->base > a->base))
		w = b;
	out->base = w->base;
	out->base_actor = w->base_actor;
	out->base_counter = w->base_counter;
}

int counter_merge(struct counter *a, const struct counter *b)
{
	DV_ASSERT(counter_ok(a) && counter_ok(b));
	struct counter out;
	counter_init(&out);
	base_merge(&out, a, b);
	unsigned i = 0, j = 0;
	while (i < a->n || j < b->n) {
		if (out.n == COUNTER_ACTORS_MAX)
			return -E2BIG;
		if (j == b->n || (i < a->n && a->e[i].actor < b->e[j].actor)) {
			out.e[out.n++] = a->e[i++];
		} else if (i == a->n || b->e[j].actor < a->e[i].actor) {
			out.e[out.n++] = b->e[j++];
		} else {
			out.e[out.n].actor = a->e[i].actor;
			out.e[out.n].inc = max64(a->e[i].inc, b->e[j].inc);
			out.e[out.n].dec = max64(a->e[i].dec, b->e[j].dec);
			out.n++, i++, j++;
		}
	}
	*a = out;
	DV_ASSERT(counter_ok(a));
	return 0;
}

int counter_add(struct counter *c, uint64_t actor, int64_t delta)
{
	DV_ASSERT(counter_ok(c) && actor != 0);
	unsigned i = 0;
	while (i < c->n && c->e[i].actor < actor)
		i++;
	if (i == c->n || c->e[i].actor != actor) {
		if (c->n == COUNTER_ACTORS_MAX)
			return -E2BIG;
		memmove(&c->e[i + 1], &c->e[i], (c->n - i) * sizeof(c->e[0]));
		c->e[i].actor = actor;
		c->e[i].inc = c->e[i].dec = 0;
		c->n++;
	}
	/* |INT64_MIN| as an unsigned magnitude without overflow. */
	uint64_t mag = delta >= 0 ? (uint64_t)delta : (uint64_t)(-(delta + 1)) + 1;
	uint64_t *f = delta >= 0 ? &c->e[i].inc : &c->e[i].dec;
	if (*f > UINT64_MAX - mag) {
		if (c->e[i].inc == 0 && c->e[i].dec == 0) { /* undo the insertion */
			memmove(&c->e[i], &c->e[i + 1], (c->n - i - 1) * sizeof(c->e[0]));
			c->n--;
		}
		return -ERANGE;
	}
	*f += mag;
	DV_ASSERT(counter_ok(c));
	return 0;
}

void counter_set_base(struct counter *c, int64_t v, uint64_t actor, uint64_t dot_counter)
{
	DV_ASSERT(counter_ok(c) && actor != 0);
	struct counter b;
	counter_init(&b);
	b.base = v;
	b.base_actor = actor;
	b.base_counter = dot_counter;
	base_merge(c, c, &b);
	DV_ASSERT(counter_ok(c));
}

static __int128 counter_sum(const struct counter *c)
{
	DV_ASSERT(counter_ok(c));
	__int128 v = c->base;
	for (unsigned i = 0; i < c->n; i++)
		v += (__int128)c->e[i].inc - (__int128)c->e[i].dec; /* 32 terms of < 2^64: no overflow */
	return v;
}

int counter_value(const struct counter *c, int64_t *out)
{
	__int128 v = counter_sum(c);
	if (v > INT64_MAX || v < INT64_MIN)
		return -ERANGE;
	*out = (int64_t)v;
	return 0;
}

uint32_t counter_text(const struct counter *c, char *out)
{
	__int128 v = counter_sum(c);
	unsigned __int128 mag = v >= 0 ? (unsigned __int128)v : (unsigned __int128)(-v);
	char tmp[COUNTER_WIDE_TEXT_MAX];
	unsigned n = 0;
	do {
		DV_ASSERT(n < sizeof(tmp));
		tmp[n++] = (char)('0' + (unsigned)(mag % 10));
		mag /= 10;
	} while (mag);
	uint32_t len = 0;
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	DV_ASSERT(len < COUNTER_WIDE_TEXT_MAX);
	out[len] = 0;
	return len;
}

bool counter_equal(const struct counter *a, const struct counter *b)
{
	if (a->n != b->n || a->base != b->base || a->base_actor != b->base_actor || a->base_counter != b->base_counter)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (a->e[i].actor != b->e[i].actor || a->e[i].inc != b->e[i].inc || a->e[i].dec != b->e[i].dec)
			return false;
	return true;
}

int counter_parse(const uint8_t *p, uint32_t len, int64_t *out)
{
	if (len == 0 || len > COUNTER_TEXT_MAX - 1)
		return -EDOM;
	bool neg = p[0] == '-';
	uint32_t i = neg ? 1 : 0;
	if (i == len || p[i] < '0' || p[i] > '9' || (p[i] == '0' && (len > 1)))
		return -EDOM; /* "", "-", leading zeros, "-0" */
	uint64_t v = 0;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EDOM;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EDOM;
		v = v * 10 + d;
	}
	if ((!neg && v > (uint64_t)INT64_MAX) || (neg && v > (uint64_t)INT64_MAX + 1))
		return -EDOM;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

uint32_t counter_format(int64_t v, char *out)
{
	char tmp[COUNTER_TEXT_MAX];
	uint64_t mag = v >= 0 ? (uint64_t)v : (uint64_t)(-(v + 1)) + 1;
	unsigned n = 0;
	do {
		tmp[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag && n < sizeof(tmp));
	uint32_t len = 0;
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	out[len] = 0;
	DV_ASSERT(len < COUNTER_TEXT_MAX);
	return len;
}
