/* test_dvv.c - DVVSet (src/cluster/dvv.c).
 *
 * unit:  dvvset.erl's EUnit cases translated (no anonymous values here: the
 *        new/1 values become updates with an empty context), LWW, pick,
 *        visible, prune, clock-only decode.
 * model: seeded random histories of several replicas exchanging versions
 *        (random order, duplicated and lost messages) and clients writing
 *        with contexts read earlier (stale) or none, checked after every
 *        step against a reference of explicit causal histories, with the
 *        sync laws (commutative, associative, idempotent), update descends
 *        local and context, less/equal against set inclusion, and pick.
 * codec: record and context round trips, every single-byte corruption and
 *        truncation refused, crafted malformed inputs, bounds (-E2BIG).
 *
 * Usage: test_dvv [unit|model|codec|corpus DIR]... (default: all three).
 * `corpus DIR` writes the fuzzer's seed corpus (tests/cluster/corpus_dvv).
 * DV_SEED sets the first model history's seed, DV_DVV_HISTORIES how many
 * (default 3000, 500 with DV_TEST_QUICK); a failing history prints the
 * command that replays it alone.
 */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/le.h"
#include "cluster/dvv.h"
#include "testing.h"

static const char *prog = "test_dvv";

/* ---- helpers ----------------------------------------------------------- */

static const struct dvv_vv vv_empty = {.n = 0};

static struct dvv_value val_of(const char *s, uint64_t ts)
{
	return (struct dvv_value){.data = (const uint8_t *)s, .len = (uint32_t)strlen(s), .ts = ts};
}

static void dump(const char *what, const struct dvv *d)
{
	fprintf(stderr, "%s: policy %u, %u entries, %u values:", what, d->policy, d->nentries, d->nvals);
	for (unsigned i = 0; i < d->nentries; i++) {
		const struct dvv_entry *e = &d->e[i];
		fprintf(stderr, " {%" PRIx64 ",%" PRIu64 ",[", e->actor, e->counter);
		for (unsigned k = 0; k < e->nvals; k++) {
			const struct dvv_value *v = &d->v[e->first + k];
			fprintf(stderr, "%s%.*s/ts%" PRIu64, k ? "," : "", (int)v->len, v->data ? (const char *)v->data : "?",
				v->ts);
		}
		fprintf(stderr, "]}");
	}
	fprintf(stderr, "\n");
}

#define CHECK_SAME(got, want)                                                   \
	do {                                                                    \
		if (!dvv_identical((got), (want))) {                            \
			fprintf(stderr, "%s:%d: %s differs\n", __FILE__, __LINE__, #got); \
			dump("got ", (got));                                    \
			dump("want", (want));                                   \
			exit(1);                                                \
		}                                                               \
	} while (0)

/* Actors for the translated cases: a=1, b=2, ... in letter order. */
static uint64_t act(char c) { return (uint64_t)(c - 'a' + 1); }

/* A version from a spec like "a:2:v2,v1 b:1:" (entries in actor order, each
 * actor:counter:values newest first; values get ts 0). */
static void mk(struct dvv *d, const char *spec)
{
	static char arena[8192];
	static size_t used;
	dvv_init(d, DVV_SIBLINGS);
	const char *p = spec;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		char actor = *p;
		char *end;
		uint64_t counter = strtoull(p + 2, &end, 10);
		CHECK(p[1] == ':' && *end == ':');
		p = end + 1;
		struct dvv_entry *e = &d->e[d->nentries++];
		*e = (struct dvv_entry){.actor = act(actor), .counter = counter, .nvals = 0, .first = d->nvals};
		while (*p && *p != ' ') {
			size_t n = strcspn(p, ", ");
			CHECK(used + n + 1 <= sizeof(arena));
			memcpy(arena + used, p, n);
			arena[used + n] = '\0';
			d->v[d->nvals++] = val_of(arena + used, 0);
			e->nvals++;
			used += n + 1;
			p += n;
			if (*p == ',')
				p++;
		}
	}
	/* Round trip: proves the spec well-formed (the decoder checks it). */
	static uint8_t meta[DVV_META_BYTES_MAX], vals[256];
	struct dvv back;
	CHECK(dvv_value_bytes(d) <= sizeof(vals));
	dvv_encode(d, meta, vals);
	CHECK_EQ(dvv_decode(&back, meta, dvv_meta_bytes(d), vals, (uint32_t)dvv_value_bytes(d)), 0);
	CHECK(dvv_identical(&back, d));
}

/* update(new(ctx, [v]), local, actor); local NULL = no local version. */
static void upd(struct dvv *out, const struct dvv *local, const struct dvv_vv *ctx, char actor, const char *v)
{
	struct dvv none;
	dvv_init(&none, DVV_SIBLINGS);
	struct dvv_value val = val_of(v, 0);
	CHECK_EQ(dvv_update(out, local ? local : &none, ctx ? ctx : &vv_empty, act(actor), &val), 0);
}

static struct dvv_vv join_of(const struct dvv *d)
{
	struct dvv_vv vv;
	dvv_join(d, &vv);
	return vv;
}

static void sync_ok(struct dvv *out, const struct dvv *a, const struct dvv *b)
{
	CHECK_EQ(dvv_sync(out, a, b), 0);
}

/* ---- unit: dvvset.erl's cases ------------------------------------------ */

static void test_erl_join(void)
{
	struct dvv a1, b1, want;
	upd(&a1, NULL, NULL, 'a', "v1");
	struct dvv_vv j1 = join_of(&a1);
	upd(&b1, &a1, &j1, 'b', "v2");
	struct dvv none;
	dvv_init(&none, DVV_SIBLINGS);
	CHECK_EQ(join_of(&none).n, 0);
	CHECK(j1.n == 1 && j1.e[0].actor == act('a') && j1.e[0].counter == 1);
	struct dvv_vv jb = join_of(&b1);
	CHECK(jb.n == 2 && jb.e[0].actor == act('a') && jb.e[0].counter == 1 && jb.e[1].actor == act('b') &&
	      jb.e[1].counter == 1);
	mk(&want, "a:1: b:1:v2");
	CHECK_SAME(&b1, &want);
}

static void test_erl_update(void)
{
	struct dvv a0, a1, a2, a3, a4, want;
	upd(&a0, NULL, NULL, 'a', "v1");
	struct dvv_vv j0 = join_of(&a0);
	upd(&a1, &a0, &j0, 'a', "v2");
	struct dvv_vv j1 = join_of(&a1);
	upd(&a2, &a1, &j1, 'b', "v3");
	upd(&a3, &a1, &j0, 'b', "v4");
	upd(&a4, &a1, &j0, 'a', "v5");
	mk(&want, "a:1:v1");
	CHECK_SAME(&a0, &want);
	mk(&want, "a:2:v2");
	CHECK_SAME(&a1, &want);
	mk(&want, "a:2: b:1:v3");
	CHECK_SAME(&a2, &want);
	mk(&want, "a:2:v2 b:1:v4");
	CHECK_SAME(&a3, &want);
	mk(&want, "a:3:v5,v2");
	CHECK_SAME(&a4, &want);
}

static void test_erl_sync(void)
{
	struct dvv x, a, y, a1, a3, a4, w, z, s1, s2, want;
	mk(&x, "x:1:");
	upd(&a, NULL, NULL, 'a', "v1");
	upd(&y, NULL, NULL, 'b', "v2");
	struct dvv_vv ja = join_of(&a);
	upd(&a1, NULL, &ja, 'a', "v2");
	struct dvv_vv ja1 = join_of(&a1);
	upd(&a3, NULL, &ja1, 'b', "v3");
	upd(&a4, NULL, &ja1, 'c', "v3");
	mk(&w, "a:1:");
	mk(&z, "a:2:v2,v1");

	sync_ok(&s1, &w, &z);
	mk(&want, "a:2:v2");
	CHECK_SAME(&s1, &want);
	sync_ok(&s2, &z, &w);
	CHECK_SAME(&s2, &s1);
	sync_ok(&s1, &a, &a1);
	sync_ok(&s2, &a1, &a);
	CHECK_SAME(&s1, &s2);
	sync_ok(&s1, &a4, &a3);
	sync_ok(&s2, &a3, &a4);
	CHECK_SAME(&s1, &s2);
	mk(&want, "a:2: b:1:v3 c:1:v3");
	CHECK_SAME(&s1, &want);
	sync_ok(&s1, &x, &a);
	sync_ok(&s2, &a, &x);
	mk(&want, "a:1:v1 x:1:");
	CHECK_SAME(&s1, &want);
	CHECK_SAME(&s2, &want);
	sync_ok(&s1, &a, &y);
	sync_ok(&s2, &y, &a);
	mk(&want, "a:1:v1 b:1:v2");
	CHECK_SAME(&s1, &want);
	CHECK_SAME(&s2, &want);
}

static void test_erl_syn_update(void)
{
	struct dvv a0, a1, a2, want;
	upd(&a0, NULL, NULL, 'a', "v1");  /* Mary writes v1 without a context */
	struct dvv_vv vv1 = join_of(&a0); /* Peter reads v1 */
	upd(&a1, &a0, NULL, 'a', "v2");   /* Mary writes v2 without a context */
	upd(&a2, &a1, &vv1, 'a', "v3");   /* Peter writes v3 with v1's context */
	CHECK(vv1.n == 1 && vv1.e[0].actor == act('a') && vv1.e[0].counter == 1);
	mk(&want, "a:1:v1");
	CHECK_SAME(&a0, &want);
	mk(&want, "a:2:v2,v1");
	CHECK_SAME(&a1, &want);
	mk(&want, "a:3:v3,v2"); /* v3 supersedes v1 only */
	CHECK_SAME(&a2, &want);
}

static void test_erl_event(void)
{
	struct dvv a, e1, e2, want;
	upd(&a, NULL, NULL, 'a', "v1");
	upd(&e1, &a, NULL, 'a', "v2");
	mk(&want, "a:2:v2,v1");
	CHECK_SAME(&e1, &want);
	upd(&e2, &a, NULL, 'b', "v2");
	mk(&want, "a:1:v1 b:1:v2");
	CHECK_SAME(&e2, &want);
}

static void test_erl_less(void)
{
	struct dvv a, b, b2, b3, c, d;
	upd(&a, NULL, NULL, 'a', "v1");
	struct dvv_vv ja = join_of(&a);
	upd(&b, NULL, &ja, 'a', "v2");
	upd(&b2, NULL, &ja, 'b', "v2");
	upd(&b3, NULL, &ja, 'z', "v2");
	struct dvv_vv jb = join_of(&b);
	upd(&c, &a, &jb, 'c', "v3");
	struct dvv_vv jc = join_of(&c);
	upd(&d, &b2, &jc, 'd', "v4");
	CHECK(dvv_less(&a, &b));
	CHECK(dvv_less(&a, &c));
	CHECK(dvv_less(&b, &c));
	CHECK(dvv_less(&b, &d));
	CHECK(dvv_less(&b2, &d));
	CHECK(dvv_less(&a, &d));
	CHECK(!dvv_less(&b2, &c));
	CHECK(!dvv_less(&b, &b2));
	CHECK(!dvv_less(&b2, &b));
	CHECK(!dvv_less(&a, &a));
	CHECK(!dvv_less(&c, &c));
	CHECK(!dvv_less(&d, &b2));
	CHECK(!dvv_less(&b3, &d));
}

static void test_erl_equal(void)
{
	struct dvv a, b, c;
	mk(&a, "a:4:v5,v0 c:1:v3");
	mk(&b, "a:4:v555,v0 c:1:v3");
	mk(&c, "a:4:v5,v0");
	CHECK(dvv_equal(&a, &b)); /* clocks only: values ignored */
	CHECK(dvv_equal(&b, &a));
	CHECK(!dvv_equal(&a, &c));
	CHECK(!dvv_equal(&b, &c));
	CHECK(!dvv_identical(&a, &b));
	CHECK(dvv_identical(&a, &a));
	struct dvv a2;
	mk(&a2, "a:4:v5 c:1:v3"); /* same counters, another value count */
	CHECK(!dvv_equal(&a, &a2));
}

static void test_erl_size_ids_values(void)
{
	struct dvv a;
	mk(&a, "a:4:v0,v5 c:1:v3");
	CHECK_EQ(a.nvals, 3);
	struct dvv_vv j = join_of(&a);
	CHECK(j.n == 2 && j.e[0].actor == act('a') && j.e[1].actor == act('c'));
	CHECK(a.v[0].len == 2 && memcmp(a.v[0].data, "v0", 2) == 0 && memcmp(a.v[2].data, "v3", 2) == 0);
}

/* dvvset:last with a timestamp order: the newest value, whichever entry. */
static void test_erl_last_as_pick(void)
{
	struct dvv x;
	mk(&x, "a:4:5,2 b:1: c:1:3");
	x.v[0].ts = 5, x.v[1].ts = 2, x.v[2].ts = 3;
	const struct dvv_value *p = dvv_pick(&x, 0);
	CHECK(p == &x.v[0]);
	x.v[2].ts = 10;
	CHECK(dvv_pick(&x, 0) == &x.v[2]);
}

/* ---- unit: dynvme's additions ------------------------------------------ */

static void test_pick(void)
{
	struct dvv d;
	dvv_init(&d, DVV_SIBLINGS);
	CHECK(dvv_pick(&d, 0) == NULL);
	mk(&d, "a:3:x,y b:2:z");
	d.v[0].ts = 7, d.v[1].ts = 9, d.v[2].ts = 9;
	/* ts ties: the greater actor (b) wins over a's value of ts 9 */
	CHECK(dvv_pick(&d, 0) == &d.v[2]);
	d.v[2].ts = 8;
	CHECK(dvv_pick(&d, 0) == &d.v[1]);
	/* same ts, same actor: the greater counter (the newer dot, index 0) */
	d.v[0].ts = 9;
	CHECK(dvv_pick(&d, 0) == &d.v[0]);
	/* Add-wins: a newer tombstone concurrent with the values hides none of
	 * them (the pick is the newest visible one); one whose context covers
	 * them all leaves nothing. */
	struct dvv t;
	struct dvv_value tomb = {.data = NULL, .len = 0, .flags = DVV_VAL_TOMB, .ts = 100};
	struct dvv_vv j = join_of(&d);
	CHECK_EQ(dvv_update(&t, &d, &vv_empty, act('c'), &tomb), 0);
	const struct dvv_value *p = dvv_pick(&t, 0);
	CHECK(t.nvals == 4 && p != NULL && p->len == 1 && p->data[0] == 'x' && p->ts == 9);
	CHECK_EQ(dvv_update(&t, &d, &j, act('c'), &tomb), 0);
	CHECK(t.nvals == 1 && dvv_pick(&t, 0) == NULL);
	/* An expired value is skipped the same way: the next newest wins. */
	d.v[0].expire_ms = 50;
	CHECK(dvv_pick(&d, 49) == &d.v[0]);
	CHECK(dvv_pick(&d, 50) == &d.v[1]);
	d.v[1].expire_ms = d.v[2].expire_ms = 50;
	CHECK(dvv_pick(&d, 50) == NULL);
}

static void test_visible(void)
{
	struct dvv d;
	mk(&d, "a:3:x,y b:2:z c:1:w");
	d.v[1].expire_ms = 100;
	d.v[3].flags = DVV_VAL_TOMB, d.v[3].len = 0;
	const struct dvv_value *out[DVV_VALUES_MAX];
	CHECK_EQ(dvv_visible(&d, 99, out, DVV_VALUES_MAX), 3);
	CHECK(out[0] == &d.v[0] && out[1] == &d.v[1] && out[2] == &d.v[2]);
	CHECK_EQ(dvv_visible(&d, 100, out, DVV_VALUES_MAX), 2);
	CHECK(out[0] == &d.v[0] && out[1] == &d.v[2]);
	out[1] = NULL;
	CHECK_EQ(dvv_visible(&d, 0, out, 1), 3); /* counts beyond max, writes max */
	CHECK(out[0] == &d.v[0] && out[1] == NULL);
	CHECK_EQ(dvv_visible(&d, 0, NULL, 0), 3);
}

static void test_prune(void)
{
	struct dvv d, want;
	mk(&d, "a:5: b:2: c:9:x d:1: e:3: f:2:");
	uint64_t keep[] = {act('d')};
	CHECK_EQ(dvv_prune(&d, keep, 1, 6), 0);
	/* value-less, not kept, the oldest incarnation (smallest actor bits) first: a, b */
	CHECK_EQ(dvv_prune(&d, keep, 1, 4), 2);
	mk(&want, "c:9:x d:1: e:3: f:2:");
	CHECK_SAME(&d, &want);
	/* only a and e are droppable: stops above max_entries */
	CHECK_EQ(dvv_prune(&d, keep, 1, 0), 2);
	mk(&want, "c:9:x d:1:");
	CHECK_SAME(&d, &want);
	CHECK_EQ(dvv_prune(&d, NULL, 0, 0), 1);
	mk(&want, "c:9:x");
	CHECK_SAME(&d, &want);
	/* the values of a pruned actor's other copies come back as siblings */
	struct dvv other, s;
	mk(&other, "d:1:old");
	sync_ok(&s, &d, &other);
	mk(&want, "c:9:x d:1:old");
	CHECK_SAME(&s, &want);
}

static void lww_val(struct dvv_value *v, const char *s, uint64_t ts)
{
	*v = val_of(s, ts);
}

static void test_lww(void)
{
	struct dvv none, a, b, s1, s2, u;
	struct dvv_value v;
	dvv_init(&none, DVV_LWW);
	lww_val(&v, "A", 10);
	CHECK_EQ(dvv_update(&a, &none, &vv_empty, act('a'), &v), 0);
	lww_val(&v, "B", 20);
	CHECK_EQ(dvv_update(&b, &none, &vv_empty, act('b'), &v), 0);
	CHECK(a.nvals == 1 && a.nentries == 1 && b.nvals == 1);
	sync_ok(&s1, &a, &b);
	sync_ok(&s2, &b, &a);
	CHECK_SAME(&s1, &s2);
	CHECK(s1.nentries == 2 && s1.nvals == 1 && s1.e[1].nvals == 1 && s1.v[0].ts == 20);
	CHECK(dvv_pick(&s1, 0) == &s1.v[0]);
	/* a blind write replaces whatever the context... */
	lww_val(&v, "C", 30);
	CHECK_EQ(dvv_update(&u, &s1, &vv_empty, act('a'), &v), 0);
	CHECK(u.nvals == 1 && u.e[0].nvals == 1 && u.e[0].counter == 2 && u.v[0].ts == 30);
	CHECK(dvv_less(&s1, &u));
	/* ...unless it was stamped before local's value: the greater stays,
	 * as a later sync would decide anyway */
	lww_val(&v, "D", 15);
	CHECK_EQ(dvv_update(&u, &s1, &vv_empty, act('a'), &v), 0);
	CHECK(u.nvals == 1 && u.e[1].nvals == 1 && u.v[0].ts == 20 && u.e[0].counter == 2);
	sync_ok(&s2, &u, &s1);
	CHECK_SAME(&s2, &u);
	/* ts tie: the greater actor, then the content */
	lww_val(&v, "X", 20);
	CHECK_EQ(dvv_update(&a, &none, &vv_empty, act('c'), &v), 0);
	sync_ok(&s2, &s1, &a);
	CHECK(s2.v[0].len == 1 && s2.v[0].data[0] == 'X');
	lww_val(&v, "Y", 20);
	CHECK_EQ(dvv_update(&b, &none, &vv_empty, act('c'), &v), 0);
	sync_ok(&s1, &a, &b);
	sync_ok(&s2, &b, &a);
	CHECK_SAME(&s1, &s2);
	CHECK(s1.v[0].data[0] == 'Y');
	/* policies never merge */
	struct dvv sib;
	upd(&sib, NULL, NULL, 'a', "s");
	CHECK_EQ(dvv_sync(&s1, &sib, &a), -EINVAL);
	CHECK(!dvv_equal(&sib, &a));
}

static void test_update_bad_ctx(void)
{
	struct dvv d, out;
	upd(&d, NULL, NULL, 'a', "x");
	struct dvv_value v = val_of("y", 0);
	struct dvv_vv vv = {.n = 2, .e = {{2, 1}, {1, 1}}};
	CHECK_EQ(dvv_update(&out, &d, &vv, act('a'), &v), -EINVAL); /* unsorted */
	vv = (struct dvv_vv){.n = 2, .e = {{1, 1}, {1, 2}}};
	CHECK_EQ(dvv_update(&out, &d, &vv, act('a'), &v), -EINVAL); /* duplicate */
	vv = (struct dvv_vv){.n = 1, .e = {{1, 0}}};
	CHECK_EQ(dvv_update(&out, &d, &vv, act('a'), &v), -EINVAL); /* counter 0 */
	vv = (struct dvv_vv){.n = 1, .e = {{1, DVV_COUNTER_MAX + 1}}};
	CHECK_EQ(dvv_update(&out, &d, &vv, act('a'), &v), -EINVAL);
	vv = (struct dvv_vv){.n = DVV_ENTRIES_MAX + 1};
	CHECK_EQ(dvv_update(&out, &d, &vv, act('a'), &v), -EINVAL);
	/* a context newer than local (read at another replica): taken in */
	vv = (struct dvv_vv){.n = 2, .e = {{act('a'), 5}, {act('q'), 3}}};
	CHECK_EQ(dvv_update(&out, &d, &vv, act('a'), &v), 0);
	struct dvv want;
	mk(&want, "a:6:y q:3:");
	CHECK_SAME(&out, &want);
}

static void test_clock_only(void)
{
	struct dvv d, full, clk, s;
	mk(&d, "a:3:xx,y b:2:zzz");
	d.v[1].flags = 0;
	uint8_t meta[DVV_META_BYTES_MAX], vals[64];
	dvv_encode(&d, meta, vals);
	uint32_t ml = dvv_meta_bytes(&d);
	CHECK_EQ(dvv_decode(&full, meta, ml, vals, (uint32_t)dvv_value_bytes(&d)), 0);
	CHECK_EQ(dvv_decode_clock(&clk, meta, ml), 0);
	CHECK(dvv_equal(&clk, &full) && dvv_value_bytes(&clk) == 6);
	for (unsigned i = 0; i < clk.nvals; i++)
		CHECK(clk.v[i].data == NULL && clk.v[i].len == full.v[i].len && clk.v[i].ts == full.v[i].ts);
	struct dvv older;
	mk(&older, "a:2:y");
	sync_ok(&s, &clk, &older);
	CHECK(dvv_equal(&s, &full) && !dvv_less(&clk, &full) && dvv_less(&older, &clk));
	CHECK_EQ(dvv_decode_clock(&clk, meta, ml - 1), -DV_ECORRUPT);
	/* a full decode needs the exact value bytes */
	CHECK_EQ(dvv_decode(&full, meta, ml, vals, 0), -DV_ECORRUPT);
}

static void run_unit(void)
{
	test_begin("unit");
	test_erl_join();
	test_erl_update();
	test_erl_sync();
	test_erl_syn_update();
	test_erl_event();
	test_erl_less();
	test_erl_equal();
	test_erl_size_ids_values();
	test_erl_last_as_pick();
	test_pick();
	test_visible();
	test_prune();
	test_lww();
	test_update_bad_ctx();
	test_clock_only();
	test_end("unit");
}

/* ---- model: explicit causal histories ----------------------------------
 *
 * A version is (C, V): C the set of dots it knows, V the writes (values)
 * it holds, each with its dot in C. sync(A, B) = (C_A u C_B, the writes of
 * V_A u V_B held by both or whose dot the other side does not know).
 * update(local, ctx, r) = a new dot (r, 1 + the greatest counter of r in
 * C_local u ctx), C = C_local u ctx u {dot}, V = the writes of V_local whose
 * dots ctx does not cover, and the new one. LWW: V is every write that
 * reached the version (sync: union; update: local's and the new one) and
 * the version holds the greatest of them in the LWW order. Dots are kept
 * as explicit sets, not counters: the model does not assume what the DVV
 * relies on (contiguous dots); it checks it.
 */
#define M_REPLICAS_MAX 5u
#define M_CLIENTS 4u
#define M_WRITES_MAX 190u
#define M_WORDS ((M_WRITES_MAX + 1u + 63u) / 64u) /* counters 1..M_WRITES_MAX, write ids 0.. */
#define M_POOL 12u
#define M_CLUSTER_ID 0x5eedc1u

struct mset {
	uint64_t w[M_REPLICAS_MAX][M_WORDS]; /* bit c: dot (replica, c) */
};
struct mver {
	struct mset c;
	uint64_t v[M_WORDS]; /* write ids */
};
struct mwrite {
	unsigned r;
	uint64_t counter;
	struct dvv_value val;
	uint8_t bytes[24];
};
/* A version as a replica or a message holds it: encoded bytes (the record
 * the engine would store, or a REPL_PUT body), its decoded view, its model. */
struct ver {
	uint8_t *meta, *vals;
	struct dvv d;
	struct mver m;
};
struct client {
	char ctx[DVV_CTX_TEXT_MAX];
	size_t ctx_len;
	struct mset mctx;
};
struct hist {
	uint64_t seed, rng;
	uint8_t policy;
	unsigned nrep, step;
	unsigned blind_pct; /* writes without a context: many reach the sibling bound */
	uint64_t actor[M_REPLICAS_MAX];
	struct mwrite w[M_WRITES_MAX];
	unsigned nw;
	int dot_write[M_REPLICAS_MAX][M_WRITES_MAX + 1];
	struct ver rep[M_REPLICAS_MAX];
	struct ver pool[M_POOL];
	unsigned pool_to[M_POOL], npool;
	struct client cl[M_CLIENTS];
	uint8_t key[8];
	uint8_t ctx_key[DVV_CTX_KEY_BYTES];
	uint64_t stats_e2big, stats_steps, stats_vals_max;
};

static struct hist *cur; /* for the failure message */

#define PCHECK(cond)                                                     \
	do {                                                             \
		if (!(cond))                                             \
			model_fail(__FILE__, __LINE__, #cond);           \
	} while (0)

static void model_fail(const char *file, int line, const char *expr)
{
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
	if (cur != NULL) {
		fprintf(stderr, "history seed %" PRIu64 " (%s, %u replicas), step %u\n", cur->seed,
			cur->policy == DVV_LWW ? "lww" : "siblings", cur->nrep, cur->step);
		fprintf(stderr, "replay: DV_SEED=%" PRIu64 " DV_DVV_HISTORIES=1 %s model\n", cur->seed, prog);
	}
	exit(1);
}

static uint64_t rnd(struct hist *h, uint64_t n) { return test_rand(&h->rng) % n; }

static bool bit(const uint64_t *w, uint64_t i) { return (w[i / 64] >> (i % 64)) & 1; }
static void bit_set(uint64_t *w, uint64_t i) { w[i / 64] |= 1ull << (i % 64); }
static unsigned popcount(const uint64_t *w)
{
	unsigned n = 0;
	for (unsigned i = 0; i < M_WORDS; i++)
		n += (unsigned)__builtin_popcountll(w[i]);
	return n;
}

static void mset_union(struct mset *out, const struct mset *a, const struct mset *b)
{
	for (unsigned r = 0; r < M_REPLICAS_MAX; r++)
		for (unsigned i = 0; i < M_WORDS; i++)
			out->w[r][i] = a->w[r][i] | b->w[r][i];
}

static uint64_t mset_max(const struct mset *s, unsigned r)
{
	for (unsigned i = M_WORDS; i-- > 0;)
		if (s->w[r][i])
			return i * 64u + 63u - (unsigned)__builtin_clzll(s->w[r][i]);
	return 0;
}

static bool mset_subset(const struct mset *a, const struct mset *b)
{
	for (unsigned r = 0; r < M_REPLICAS_MAX; r++)
		for (unsigned i = 0; i < M_WORDS; i++)
			if (a->w[r][i] & ~b->w[r][i])
				return false;
	return true;
}

static bool mset_eq(const struct mset *a, const struct mset *b) { return mset_subset(a, b) && mset_subset(b, a); }

static bool mset_has(const struct mset *s, unsigned r, uint64_t counter) { return bit(s->w[r], counter); }

static void model_sync(struct hist *h, struct mver *out, const struct mver *a, const struct mver *b)
{
	mset_union(&out->c, &a->c, &b->c);
	memset(out->v, 0, sizeof(out->v));
	for (unsigned id = 0; id < h->nw; id++) {
		bool in_a = bit(a->v, id), in_b = bit(b->v, id);
		const struct mwrite *w = &h->w[id];
		bool keep = h->policy == DVV_LWW ? in_a || in_b
						 : (in_a && in_b) || (in_a && !mset_has(&b->c, w->r, w->counter)) ||
							   (in_b && !mset_has(&a->c, w->r, w->counter));
		if (keep)
			bit_set(out->v, id);
	}
}

static void model_update(struct hist *h, struct mver *out, const struct mver *local, const struct mset *ctx,
			 unsigned id)
{
	const struct mwrite *w = &h->w[id];
	mset_union(&out->c, &local->c, ctx);
	PCHECK(!mset_has(&out->c, w->r, w->counter)); /* a fresh dot */
	bit_set(out->c.w[w->r], w->counter);
	memset(out->v, 0, sizeof(out->v));
	for (unsigned i = 0; i < h->nw; i++) {
		const struct mwrite *o = &h->w[i];
		if (bit(local->v, i) && (h->policy == DVV_LWW || !mset_has(ctx, o->r, o->counter)))
			bit_set(out->v, i);
	}
	bit_set(out->v, id);
}

/* What the DVV must refuse with -E2BIG. */
static bool model_too_big(const struct mver *m) { return popcount(m->v) > DVV_VALUES_MAX; }

static int replica_of(const struct hist *h, uint64_t actor)
{
	for (unsigned r = 0; r < h->nrep; r++)
		if (h->actor[r] == actor)
			return (int)r;
	return -1;
}

static bool value_same(const struct dvv_value *a, const struct dvv_value *b)
{
	return a->ts == b->ts && a->expire_ms == b->expire_ms && a->flags == b->flags && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static int cmp64(uint64_t a, uint64_t b) { return (a > b) - (a < b); }

/* The LWW order of the contract: (ts, writer), then flags, expire, len, bytes. */
static int model_lww_cmp(const struct hist *h, const struct mwrite *x, const struct mwrite *y)
{
	int c = cmp64(x->val.ts, y->val.ts);
	if (c == 0)
		c = cmp64(h->actor[x->r], h->actor[y->r]);
	if (c == 0)
		c = cmp64(x->val.flags, y->val.flags);
	if (c == 0)
		c = cmp64(x->val.expire_ms, y->val.expire_ms);
	if (c == 0)
		c = cmp64(x->val.len, y->val.len);
	if (c == 0 && x->val.len > 0)
		c = memcmp(x->val.data, y->val.data, x->val.len);
	return c;
}

/* The LWW winner of m, or -1. */
static int model_lww_winner(const struct hist *h, const struct mver *m)
{
	int best = -1;
	for (unsigned i = 0; i < h->nw; i++)
		if (bit(m->v, i) && (best < 0 || model_lww_cmp(h, &h->w[i], &h->w[best]) > 0))
			best = (int)i;
	return best;
}

static bool live(const struct dvv_value *v, uint64_t now)
{
	return !(v->flags & DVV_VAL_TOMB) && (v->expire_ms == 0 || v->expire_ms > now);
}

/* The clock: join(d) is, per replica, the greatest dot of C, and C holds
 * every dot below it (what lets a counter stand for a set). */
static void check_clock(struct hist *h, const struct dvv *d, const struct mver *m)
{
	struct dvv_vv vv;
	dvv_join(d, &vv);
	unsigned known = 0;
	for (unsigned r = 0; r < h->nrep; r++) {
		uint64_t max = mset_max(&m->c, r);
		for (uint64_t c = 1; c <= max; c++)
			PCHECK(mset_has(&m->c, r, c));
		if (max == 0)
			continue;
		known++;
		bool found = false;
		for (unsigned i = 0; i < vv.n; i++)
			if (vv.e[i].actor == h->actor[r]) {
				found = true;
				PCHECK(vv.e[i].counter == max);
			}
		PCHECK(found);
	}
	PCHECK(vv.n == known);
}

static void check_values(struct hist *h, const struct dvv *d, const struct mver *m)
{
	if (h->policy == DVV_LWW) {
		int win = model_lww_winner(h, m);
		PCHECK(d->nvals == (win >= 0 ? 1u : 0u));
		if (win < 0)
			return;
		unsigned with = 0;
		for (unsigned i = 0; i < d->nentries; i++)
			if (d->e[i].nvals == 1) {
				with++;
				PCHECK(d->e[i].actor == h->actor[h->w[win].r]); /* in its writer's entry */
			}
		PCHECK(with == 1 && value_same(&d->v[0], &h->w[win].val));
		return;
	}
	PCHECK(d->nvals == popcount(m->v));
	for (unsigned i = 0; i < d->nentries; i++) {
		const struct dvv_entry *e = &d->e[i];
		int r = replica_of(h, e->actor);
		PCHECK(r >= 0);
		for (unsigned k = 0; k < e->nvals; k++) {
			uint64_t counter = e->counter - k;
			PCHECK(counter <= M_WRITES_MAX);
			int id = h->dot_write[r][counter];
			PCHECK(id >= 0 && bit(m->v, (unsigned)id));
			PCHECK(value_same(&d->v[e->first + k], &h->w[id].val));
		}
	}
}

/* visible and pick at a few instants, against the model. */
static void check_reads(struct hist *h, const struct dvv *d, const struct mver *m)
{
	for (unsigned t = 0; t < 3; t++) {
		uint64_t now = rnd(h, 130);
		const struct dvv_value *out[DVV_VALUES_MAX];
		unsigned n = dvv_visible(d, now, out, DVV_VALUES_MAX);
		unsigned want = 0;
		int best = -1;
		for (unsigned i = 0; i < h->nw; i++) {
			if (!bit(m->v, i))
				continue;
			if (h->policy == DVV_SIBLINGS && live(&h->w[i].val, now))
				want++;
			if (!live(&h->w[i].val, now))
				continue; /* add-wins: the pick is the newest visible value */
			const struct mwrite *w = &h->w[i], *b = best >= 0 ? &h->w[best] : NULL;
			int c = b == NULL ? 1 : cmp64(w->val.ts, b->val.ts);
			if (c == 0)
				c = cmp64(h->actor[w->r], h->actor[b->r]);
			if (c == 0)
				c = cmp64(w->counter, b->counter);
			if (c > 0)
				best = (int)i;
		}
		if (h->policy == DVV_LWW) {
			best = model_lww_winner(h, m);
			want = best >= 0 && live(&h->w[best].val, now);
		}
		PCHECK(n == want);
		for (unsigned i = 0; i < n; i++)
			PCHECK(live(out[i], now));
		const struct dvv_value *p = dvv_pick(d, now);
		if (best < 0 || !live(&h->w[best].val, now))
			PCHECK(p == NULL);
		else
			PCHECK(p != NULL && value_same(p, &h->w[best].val));
	}
}

static void check_ver(struct hist *h, const struct dvv *d, const struct mver *m)
{
	check_clock(h, d, m);
	check_values(h, d, m);
}

static void ver_free(struct ver *v)
{
	free(v->meta);
	free(v->vals);
	v->meta = v->vals = NULL;
}

/* v = (d, m) through the record encoding. d may point into v's buffers. */
static void ver_set(struct ver *v, const struct dvv *d, const struct mver *m)
{
	uint32_t ml = dvv_meta_bytes(d);
	uint64_t vl = dvv_value_bytes(d);
	uint8_t *meta = malloc(ml), *vals = malloc(vl ? vl : 1);
	CHECK(meta != NULL && vals != NULL);
	dvv_encode(d, meta, vals);
	struct mver mm = *m; /* m may be v->m */
	ver_free(v);
	v->meta = meta, v->vals = vals, v->m = mm;
	PCHECK(dvv_decode(&v->d, meta, ml, vals, (uint32_t)vl) == 0);
	PCHECK(dvv_meta_bytes(&v->d) == ml);
}

static struct dvv_value new_value(struct hist *h, unsigned id, struct mwrite *w)
{
	bool tomb = rnd(h, 10) == 0;
	uint32_t len = tomb ? 0 : (uint32_t)rnd(h, sizeof(w->bytes) + 1);
	for (uint32_t i = 0; i < len; i++)
		w->bytes[i] = (uint8_t)(i < 2 ? id >> (8 * i) : rnd(h, 256));
	uint64_t ts = rnd(h, 40); /* small: ties in pick and LWW */
	uint64_t expire_ms = rnd(h, 5) == 0 ? 1 + rnd(h, 120) : 0;
	return (struct dvv_value){
		.data = w->bytes, .len = len, .flags = tomb ? DVV_VAL_TOMB : 0, .ts = ts, .expire_ms = expire_ms};
}

static void ctx_of(struct hist *h, const struct dvv *d, struct client *c, const struct mver *m)
{
	struct dvv_vv vv, back;
	dvv_join(d, &vv);
	c->ctx_len = dvv_ctx_encode(&vv, h->policy, 0, M_CLUSTER_ID, h->ctx_key, h->key, sizeof(h->key), c->ctx);
	PCHECK(dvv_ctx_decode(c->ctx, c->ctx_len, M_CLUSTER_ID, h->ctx_key, h->key, sizeof(h->key), &back, NULL) == 0);
	PCHECK(back.n == vv.n && memcmp(back.e, vv.e, vv.n * sizeof(vv.e[0])) == 0);
	c->mctx = m->c;
}

/* A client writes at a replica with its last context (possibly stale) or none. */
static void step_write(struct hist *h)
{
	if (h->nw == M_WRITES_MAX)
		return;
	unsigned r = (unsigned)rnd(h, h->nrep);
	struct client *c = &h->cl[rnd(h, M_CLIENTS)];
	struct ver *rep = &h->rep[r];
	static const struct mset none;
	bool blind = rnd(h, 100) < h->blind_pct;
	const struct mset *mctx = blind ? &none : &c->mctx;
	struct dvv_vv vv;
	PCHECK(dvv_ctx_decode(blind ? "" : c->ctx, blind ? 0 : c->ctx_len, M_CLUSTER_ID, h->ctx_key, h->key,
			      sizeof(h->key), &vv, NULL) == 0);

	unsigned id = h->nw++;
	struct mwrite *w = &h->w[id];
	w->r = r;
	uint64_t a = mset_max(&rep->m.c, r), b = mset_max(mctx, r);
	w->counter = 1 + (a > b ? a : b);
	PCHECK(w->counter <= M_WRITES_MAX && h->dot_write[r][w->counter] < 0);
	w->val = new_value(h, id, w);
	h->dot_write[r][w->counter] = (int)id;

	struct mver m;
	model_update(h, &m, &rep->m, mctx, id);
	struct dvv out;
	int rc = dvv_update(&out, &rep->d, &vv, h->actor[r], &w->val);
	if (h->policy == DVV_SIBLINGS && model_too_big(&m)) {
		PCHECK(rc == -E2BIG); /* refused: nothing was written */
		h->dot_write[r][w->counter] = -1;
		h->nw--;
		h->stats_e2big++;
		return;
	}
	PCHECK(rc == 0);
	check_ver(h, &out, &m);
	/* the result descends local and the context, strictly */
	struct dvv ctxd;
	dvv_init(&ctxd, h->policy);
	for (unsigned i = 0; i < vv.n; i++)
		ctxd.e[i] = (struct dvv_entry){.actor = vv.e[i].actor, .counter = vv.e[i].counter, .nvals = 0, .first = 0};
	ctxd.nentries = vv.n;
	PCHECK(dvv_less(&rep->d, &out) && dvv_less(&ctxd, &out));
	if (out.nvals > h->stats_vals_max)
		h->stats_vals_max = out.nvals;
	ver_set(rep, &out, &m);
}

/* A client reads one replica, or two merged as a coordinator does. */
static void step_read(struct hist *h)
{
	struct client *c = &h->cl[rnd(h, M_CLIENTS)];
	unsigned r = (unsigned)rnd(h, h->nrep), r2 = (unsigned)rnd(h, h->nrep);
	const struct ver *v = &h->rep[r];
	if (r2 == r || rnd(h, 2)) {
		check_reads(h, &v->d, &v->m);
		ctx_of(h, &v->d, c, &v->m);
		return;
	}
	struct dvv merged;
	struct mver m;
	model_sync(h, &m, &v->m, &h->rep[r2].m);
	int rc = dvv_sync(&merged, &v->d, &h->rep[r2].d);
	if (h->policy == DVV_SIBLINGS && model_too_big(&m)) {
		PCHECK(rc == -E2BIG);
		h->stats_e2big++;
		return;
	}
	PCHECK(rc == 0);
	check_ver(h, &merged, &m);
	check_reads(h, &merged, &m);
	ctx_of(h, &merged, c, &m);
}

static void step_send(struct hist *h)
{
	unsigned from = (unsigned)rnd(h, h->nrep), to = (unsigned)rnd(h, h->nrep - 1);
	to += to >= from;
	unsigned slot = h->npool < M_POOL ? h->npool++ : (unsigned)rnd(h, M_POOL); /* full: one is lost */
	ver_set(&h->pool[slot], &h->rep[from].d, &h->rep[from].m);
	h->pool_to[slot] = to;
}

static void pool_remove(struct hist *h, unsigned i)
{
	ver_free(&h->pool[i]);
	h->npool--;
	if (i != h->npool) {
		h->pool[i] = h->pool[h->npool];
		h->pool_to[i] = h->pool_to[h->npool];
		h->pool[h->npool].meta = h->pool[h->npool].vals = NULL;
	}
}

/* Any message in flight, in any order; some are delivered twice. */
static void step_deliver(struct hist *h)
{
	if (h->npool == 0)
		return;
	unsigned i = (unsigned)rnd(h, h->npool);
	struct ver *rep = &h->rep[h->pool_to[i]];
	struct dvv out;
	struct mver m;
	model_sync(h, &m, &rep->m, &h->pool[i].m);
	int rc = dvv_sync(&out, &rep->d, &h->pool[i].d);
	if (h->policy == DVV_SIBLINGS && model_too_big(&m)) {
		PCHECK(rc == -E2BIG); /* the replica refuses the merge */
		h->stats_e2big++;
	} else {
		PCHECK(rc == 0);
		check_ver(h, &out, &m);
		ver_set(rep, &out, &m);
	}
	if (rnd(h, 5) != 0)
		pool_remove(h, i);
}

/* One of the replicas or messages in flight. */
static const struct ver *any_ver(struct hist *h)
{
	unsigned i = (unsigned)rnd(h, h->nrep + h->npool);
	return i < h->nrep ? &h->rep[i] : &h->pool[i - h->nrep];
}

static bool sync_model(struct hist *h, struct dvv *out, struct mver *m, const struct dvv *a, const struct mver *ma,
		       const struct dvv *b, const struct mver *mb)
{
	model_sync(h, m, ma, mb);
	int rc = dvv_sync(out, a, b);
	if (h->policy == DVV_SIBLINGS && model_too_big(m)) {
		PCHECK(rc == -E2BIG);
		return false;
	}
	PCHECK(rc == 0);
	check_ver(h, out, m);
	return true;
}

static bool clock_same(const struct dvv *a, const struct dvv *b)
{
	struct dvv_vv va, vb;
	dvv_join(a, &va);
	dvv_join(b, &vb);
	return va.n == vb.n && memcmp(va.e, vb.e, va.n * sizeof(va.e[0])) == 0;
}

/* The laws, on three versions of the history. */
static void check_laws(struct hist *h)
{
	const struct ver *x = any_ver(h), *y = any_ver(h), *z = any_ver(h);
	struct dvv xy, yx, xx, xy_z, yz, x_yz, zy, zy_x;
	struct mver mxy, myx, mxx, mxy_z, myz, mx_yz, mzy, mzy_x;

	bool clock_eq = mset_eq(&x->m.c, &y->m.c);
	PCHECK(dvv_less(&x->d, &y->d) == (mset_subset(&x->m.c, &y->m.c) && !clock_eq));
	PCHECK(dvv_covered(&x->d, &y->d) == mset_subset(&x->m.c, &y->m.c));
	if (h->policy == DVV_SIBLINGS) {
		PCHECK(dvv_equal(&x->d, &y->d) == clock_eq);
		PCHECK(!clock_eq || dvv_identical(&x->d, &y->d)); /* same history, same values */
	} else {
		/* LWW: the dots known (via contexts too) do not say which
		 * writes reached a version: equal also compares where the
		 * value sits */
		int wx = model_lww_winner(h, &x->m), wy = model_lww_winner(h, &y->m);
		bool same_writer = wx < 0 ? wy < 0 : wy >= 0 && h->w[wx].r == h->w[wy].r;
		PCHECK(dvv_equal(&x->d, &y->d) == (clock_eq && same_writer));
	}
	PCHECK(sync_model(h, &xx, &mxx, &x->d, &x->m, &x->d, &x->m));
	PCHECK(dvv_identical(&xx, &x->d));

	bool ok1 = sync_model(h, &xy, &mxy, &x->d, &x->m, &y->d, &y->m);
	bool ok2 = sync_model(h, &yx, &myx, &y->d, &y->m, &x->d, &x->m);
	PCHECK(ok1 == ok2);
	if (!ok1)
		return;
	PCHECK(dvv_identical(&xy, &yx));
	PCHECK(!dvv_less(&xy, &x->d) && !dvv_less(&xy, &y->d));
	PCHECK(dvv_less(&x->d, &xy) || clock_same(&x->d, &xy));
	if (!sync_model(h, &xy_z, &mxy_z, &xy, &mxy, &z->d, &z->m))
		return;
	if (!sync_model(h, &yz, &myz, &y->d, &y->m, &z->d, &z->m) ||
	    !sync_model(h, &x_yz, &mx_yz, &x->d, &x->m, &yz, &myz))
		return;
	PCHECK(dvv_identical(&xy_z, &x_yz));
	/* pick: the same whatever the merge order */
	if (!sync_model(h, &zy, &mzy, &z->d, &z->m, &y->d, &y->m) ||
	    !sync_model(h, &zy_x, &mzy_x, &zy, &mzy, &x->d, &x->m))
		return;
	uint64_t now = rnd(h, 130);
	const struct dvv_value *p1 = dvv_pick(&xy_z, now), *p2 = dvv_pick(&zy_x, now);
	PCHECK((p1 == NULL) == (p2 == NULL));
	PCHECK(p1 == NULL || value_same(p1, p2));
	check_reads(h, &zy_x, &mzy_x);
}

/* (ts, actor, counter) of a's value i above b's value j: dvv_pick's order. */
static bool dot_after(uint64_t ts_a, uint64_t actor_a, uint64_t ctr_a, uint64_t ts_b, uint64_t actor_b,
		      uint64_t ctr_b)
{
	return ts_a != ts_b ? ts_a > ts_b : actor_a != actor_b ? actor_a > actor_b : ctr_a > ctr_b;
}

/* A checked write's widening (dvv_widen, coord.c): replica r's new value
 * over everything r holds (the version a checked write sends), widened over
 * any version y: refused exactly when y holds a value not below it in
 * pick's order; else the same one value, a clock over both, and a merge
 * with y leaves that value alone. */
static void check_widen(struct hist *h)
{
	if (h->policy != DVV_SIBLINGS)
		return;
	unsigned r = (unsigned)rnd(h, h->nrep);
	const struct ver *x = &h->rep[r], *y = any_ver(h);
	struct mwrite w;
	struct dvv_value val = new_value(h, 0, &w);
	struct dvv_vv all;
	dvv_join(&x->d, &all);
	struct dvv v, out, back;
	if (dvv_update(&v, &x->d, &all, h->actor[r], &val) != 0)
		return;
	PCHECK(v.nvals == 1);
	const struct dvv_entry *ve = NULL;
	for (unsigned i = 0; i < v.nentries; i++)
		ve = v.e[i].nvals ? &v.e[i] : ve;
	PCHECK(ve != NULL && ve->actor == h->actor[r]);
	bool below = true;
	for (unsigned i = 0; i < y->d.nentries; i++) {
		const struct dvv_entry *e = &y->d.e[i];
		PCHECK(e->actor != ve->actor || e->counter < ve->counter); /* only r issues r's dots */
		for (unsigned k = 0; k < e->nvals; k++)
			below &= dot_after(val.ts, ve->actor, ve->counter, y->d.v[e->first + k].ts, e->actor,
					   e->counter - k);
	}
	int rc = dvv_widen(&out, &v, &y->d);
	if (rc == -E2BIG)
		return; /* more than DVV_ENTRIES_MAX actors together */
	PCHECK(rc == (below ? 0 : -ESTALE));
	if (rc)
		return;
	PCHECK(out.nvals == 1 && value_same(&out.v[0], &val));
	PCHECK(dvv_covered(&v, &out) && dvv_covered(&y->d, &out));
	for (unsigned i = 0; i < out.nentries; i++) { /* nothing beyond the two clocks */
		uint64_t cv = 0, cy = 0;
		for (unsigned j = 0; j < v.nentries; j++)
			cv = v.e[j].actor == out.e[i].actor ? v.e[j].counter : cv;
		for (unsigned j = 0; j < y->d.nentries; j++)
			cy = y->d.e[j].actor == out.e[i].actor ? y->d.e[j].counter : cy;
		PCHECK(out.e[i].counter == (cv > cy ? cv : cy));
	}
	PCHECK(dvv_sync(&back, &y->d, &out) == 0);
	PCHECK(back.nvals == 1 && value_same(&back.v[0], &val)); /* y's values superseded, the value kept */
	PCHECK(dvv_sync(&back, &out, &v) == 0 && dvv_identical(&back, &out));
}

static void hist_init(struct hist *h, uint64_t seed)
{
	memset(h, 0, sizeof(*h));
	h->seed = seed;
	h->rng = seed;
	h->policy = rnd(h, 4) == 0 ? DVV_LWW : DVV_SIBLINGS;
	h->nrep = 2 + (unsigned)rnd(h, M_REPLICAS_MAX - 1);
	h->blind_pct = rnd(h, 5) == 0 ? 92 : 15;
	for (unsigned r = 0; r < h->nrep; r++) {
		/* random actors: their order is not the replicas' */
		uint64_t a;
		do
		{
			uint16_t node = (uint16_t)(1 + rnd(h, 6));
			a = dvv_actor(node, 1 + rnd(h, 1000));
		}
		while (replica_of(h, a) >= 0);
		h->actor[r] = a;
	}
	for (unsigned r = 0; r < M_REPLICAS_MAX; r++)
		for (unsigned c = 0; c <= M_WRITES_MAX; c++)
			h->dot_write[r][c] = -1;
	for (unsigned i = 0; i < sizeof(h->key); i++)
		h->key[i] = (uint8_t)rnd(h, 256);
	for (unsigned i = 0; i < DVV_CTX_KEY_BYTES; i++)
		h->ctx_key[i] = (uint8_t)rnd(h, 256);
	struct dvv empty;
	dvv_init(&empty, h->policy);
	struct mver none;
	memset(&none, 0, sizeof(none));
	for (unsigned r = 0; r < h->nrep; r++)
		ver_set(&h->rep[r], &empty, &none);
	for (unsigned c = 0; c < M_CLIENTS; c++)
		ctx_of(h, &empty, &h->cl[c], &none);
}

static void hist_run(struct hist *h)
{
	unsigned steps = h->blind_pct > 50 ? 300 + (unsigned)rnd(h, 300) : 40 + (unsigned)rnd(h, 200);
	for (h->step = 0; h->step < steps; h->step++) {
		unsigned k = (unsigned)rnd(h, 100);
		if (k < 30)
			step_write(h);
		else if (k < 50)
			step_read(h);
		else if (k < 75)
			step_send(h);
		else if (k < 95)
			step_deliver(h);
		else if (h->npool > 0)
			pool_remove(h, (unsigned)rnd(h, h->npool)); /* lost */
		if (rnd(h, 3) == 0) {
			check_laws(h);
			check_widen(h);
		}
		h->stats_steps++;
	}
	/* Heal: two rounds of every replica sending to every other, all
	 * delivered; then the replicas have converged. */
	bool refused = false;
	for (unsigned round = 0; round < 2; round++)
		for (unsigned a = 0; a < h->nrep; a++)
			for (unsigned b = 0; b < h->nrep; b++) {
				if (a == b)
					continue;
				struct dvv out;
				struct mver m;
				if (sync_model(h, &out, &m, &h->rep[b].d, &h->rep[b].m, &h->rep[a].d, &h->rep[a].m))
					ver_set(&h->rep[b], &out, &m);
				else
					refused = true;
			}
	for (unsigned r = 1; r < h->nrep && !refused; r++)
		PCHECK(dvv_identical(&h->rep[r].d, &h->rep[0].d));
	for (unsigned i = 0; i < h->npool; i++)
		ver_free(&h->pool[i]);
	for (unsigned r = 0; r < h->nrep; r++)
		ver_free(&h->rep[r]);
}

static void run_model(void)
{
	test_begin("model");
	uint64_t first = test_seed(20240917);
	const char *env = getenv("DV_DVV_HISTORIES");
	unsigned n = env && *env ? (unsigned)strtoul(env, NULL, 0) : getenv("DV_TEST_QUICK") ? 500 : 3000;
	struct hist *h = malloc(sizeof(*h));
	CHECK(h != NULL);
	uint64_t steps = 0, e2big = 0, vals_max = 0, lww = 0;
	for (unsigned i = 0; i < n; i++) {
		hist_init(h, first + i);
		cur = h;
		hist_run(h);
		cur = NULL;
		steps += h->stats_steps, e2big += h->stats_e2big, lww += h->policy == DVV_LWW;
		vals_max = h->stats_vals_max > vals_max ? h->stats_vals_max : vals_max;
	}
	free(h);
	printf("model: %u histories (%" PRIu64 " lww), %" PRIu64 " steps, %" PRIu64 " refused -E2BIG, up to %" PRIu64
	       " siblings\n",
	       n, lww, steps, e2big, vals_max);
	test_end("model");
}

/* ---- codec -------------------------------------------------------------- */

static uint8_t byte_pool[4096];

/* Below 2^58, of any magnitude. One PRNG call per statement everywhere:
 * C leaves the order of calls inside one expression unspecified, and a seed
 * must replay the same under gcc and clang. */
static uint64_t random_step(uint64_t *rng)
{
	uint64_t shift = 6 + test_rand(rng) % 58;
	return test_rand(rng) >> shift;
}

/* A random well-formed version with ne entries and nv values, built
 * directly (every shape, not only those a history reaches). */
static void gen_dvv(uint64_t *rng, struct dvv *d, uint8_t policy, unsigned ne, unsigned nv)
{
	CHECK(ne <= DVV_ENTRIES_MAX && nv <= DVV_VALUES_MAX && (nv == 0 || ne > 0));
	CHECK(policy == DVV_SIBLINGS || nv <= 1);
	dvv_init(d, policy);
	uint64_t actor = 0;
	for (unsigned i = 0; i < ne; i++) {
		actor += 1 + random_step(rng); /* sorted, unique, any size: < 2^63 */
		d->e[i] = (struct dvv_entry){.actor = actor, .counter = 0, .nvals = 0, .first = 0};
	}
	d->nentries = (uint16_t)ne;
	for (unsigned k = 0; k < nv; k++)
		d->e[test_rand(rng) % ne].nvals++;
	unsigned first = 0;
	for (unsigned i = 0; i < ne; i++) {
		struct dvv_entry *e = &d->e[i];
		e->first = (uint16_t)first;
		first += e->nvals;
		uint64_t r = test_rand(rng);
		e->counter = e->nvals + 1 + (r % 4 == 0 ? test_rand(rng) % DVV_COUNTER_MAX : r % 100);
		if (e->counter > DVV_COUNTER_MAX)
			e->counter = DVV_COUNTER_MAX;
	}
	d->nvals = (uint16_t)nv;
	for (unsigned k = 0; k < nv; k++) {
		bool tomb = test_rand(rng) % 8 == 0;
		uint32_t len = tomb ? 0 : (uint32_t)(test_rand(rng) % 48);
		const uint8_t *data = byte_pool + test_rand(rng) % (sizeof(byte_pool) - 48);
		uint64_t ts = test_rand(rng);
		uint64_t expire_ms = test_rand(rng) % 3 == 0 ? test_rand(rng) : 0;
		d->v[k] = (struct dvv_value){
			.data = data, .len = len, .flags = tomb ? DVV_VAL_TOMB : 0, .ts = ts, .expire_ms = expire_ms};
	}
}

struct rec {
	uint8_t meta[DVV_META_BYTES_MAX + 1];
	uint8_t vals[DVV_VALUES_MAX * 48 + 1];
	uint32_t meta_len, vals_len;
};

static void rec_of(struct rec *r, const struct dvv *d)
{
	r->meta_len = dvv_meta_bytes(d);
	r->vals_len = (uint32_t)dvv_value_bytes(d);
	CHECK(r->meta_len <= DVV_META_BYTES_MAX && r->vals_len < sizeof(r->vals));
	dvv_encode(d, r->meta, r->vals);
}

static void test_roundtrip(uint64_t *rng, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		bool lww = test_rand(rng) % 4 == 0;
		unsigned ne = (unsigned)(test_rand(rng) % (DVV_ENTRIES_MAX + 1));
		unsigned nv = ne == 0 ? 0 : (unsigned)(test_rand(rng) % ((lww ? 1 : DVV_VALUES_MAX) + 1));
		if (i < 4) /* the extremes */
			ne = i & 1 ? DVV_ENTRIES_MAX : 1, nv = i & 2 ? (lww ? 1 : DVV_VALUES_MAX) : 0;
		struct dvv d, back, clk;
		gen_dvv(rng, &d, lww ? DVV_LWW : DVV_SIBLINGS, ne, nv);
		static struct rec r, r2;
		rec_of(&r, &d);
		CHECK_EQ(r.meta_len, DVV_META_HDR_BYTES + ne * DVV_META_ENTRY_BYTES + nv * DVV_META_VALUE_BYTES);
		CHECK_EQ(dvv_decode(&back, r.meta, r.meta_len, r.vals, r.vals_len), 0);
		CHECK(dvv_identical(&back, &d));
		for (unsigned k = 0; k < back.nvals; k++)
			CHECK(back.v[k].data != NULL);
		rec_of(&r2, &back);
		CHECK(r2.meta_len == r.meta_len && memcmp(r2.meta, r.meta, r.meta_len) == 0);
		CHECK(r2.vals_len == r.vals_len && memcmp(r2.vals, r.vals, r.vals_len) == 0);
		CHECK_EQ(dvv_decode_clock(&clk, r.meta, r.meta_len), 0);
		CHECK(dvv_equal(&clk, &d) && dvv_value_bytes(&clk) == r.vals_len);
		/* idempotent on any shape */
		struct dvv s;
		sync_ok(&s, &d, &back);
		CHECK(dvv_identical(&s, &d));
	}
}

/* Every single-byte change of the meta is refused; of the values, decodes
 * to the same structure with that byte changed; every truncation and
 * extension of either is refused. */
static void test_corruption(struct rec *r)
{
	struct dvv d, want;
	static uint8_t want_vals[sizeof(r->vals)]; /* want's bytes stay as they were */
	memcpy(want_vals, r->vals, r->vals_len);
	CHECK_EQ(dvv_decode(&want, r->meta, r->meta_len, want_vals, r->vals_len), 0);
	for (uint32_t pos = 0; pos < r->meta_len; pos++) {
		uint8_t orig = r->meta[pos];
		for (unsigned x = 1; x < 256; x++) {
			r->meta[pos] = (uint8_t)(orig ^ x);
			if (dvv_decode(&d, r->meta, r->meta_len, r->vals, r->vals_len) != -DV_ECORRUPT) {
				fprintf(stderr, "meta byte %u ^ 0x%02x of %u accepted\n", pos, x, r->meta_len);
				exit(1);
			}
		}
		r->meta[pos] = orig;
	}
	for (uint32_t pos = 0; pos < r->vals_len; pos++) {
		uint8_t orig = r->vals[pos];
		r->vals[pos] = (uint8_t)(orig ^ (1u << (pos % 8)));
		CHECK_EQ(dvv_decode(&d, r->meta, r->meta_len, r->vals, r->vals_len), 0);
		CHECK(dvv_equal(&d, &want) && !dvv_identical(&d, &want));
		for (unsigned k = 0; k < d.nvals; k++)
			CHECK(d.v[k].len == want.v[k].len && d.v[k].ts == want.v[k].ts &&
			      d.v[k].expire_ms == want.v[k].expire_ms && d.v[k].flags == want.v[k].flags);
		r->vals[pos] = orig;
	}
	for (uint32_t len = 0; len < r->meta_len; len++)
		CHECK_EQ(dvv_decode(&d, r->meta, len, r->vals, r->vals_len), -DV_ECORRUPT);
	r->meta[r->meta_len] = 0;
	CHECK_EQ(dvv_decode(&d, r->meta, r->meta_len + 1, r->vals, r->vals_len), -DV_ECORRUPT);
	for (uint32_t len = 0; len < r->vals_len; len++)
		CHECK_EQ(dvv_decode(&d, r->meta, r->meta_len, r->vals, len), -DV_ECORRUPT);
	CHECK_EQ(dvv_decode(&d, r->meta, r->meta_len, r->vals, r->vals_len + 1), -DV_ECORRUPT);
	CHECK_EQ(dvv_decode(&d, r->meta, r->meta_len, r->vals, r->vals_len), 0);
	CHECK(dvv_identical(&d, &want));
}

static void test_corruptions(uint64_t *rng, unsigned n)
{
	static struct rec r;
	for (unsigned i = 0; i < n; i++) {
		bool lww = i % 5 == 4;
		unsigned ne = i == 0 ? 0 : i == 1 ? DVV_ENTRIES_MAX : 1 + (unsigned)(test_rand(rng) % 12);
		unsigned nv = i == 0 ? 0 : i == 1 ? DVV_VALUES_MAX : (unsigned)(test_rand(rng) % 20);
		if (lww)
			nv = nv > 0;
		struct dvv d;
		gen_dvv(rng, &d, lww ? DVV_LWW : DVV_SIBLINGS, ne, nv);
		rec_of(&r, &d);
		test_corruption(&r);
	}
}

/* A meta changed by hand, with its checksum made right again: the
 * structure checks alone must refuse it. */
static void reseal(uint8_t *meta, uint32_t len) { le_put64(meta, dv_checksum64(meta + 8, len - 8)); }

static int decode_resealed(struct rec *r)
{
	reseal(r->meta, r->meta_len);
	struct dvv d;
	return dvv_decode(&d, r->meta, r->meta_len, r->vals, r->vals_len);
}

static void test_crafted(void)
{
	static struct rec base, r;
	struct dvv d;
	mk(&d, "a:3:xx,y b:2: c:7:zzz");
	rec_of(&base, &d);
	const uint32_t E = DVV_META_HDR_BYTES, V = E + 3 * DVV_META_ENTRY_BYTES; /* first entry, first value */
	r = base;
	CHECK_EQ(decode_resealed(&r), 0); /* resealing alone changes nothing */
	struct {
		const char *what;
		uint32_t off;
		unsigned width;
		uint64_t value;
	} cases[] = {
		{"format 2", 8, 1, 2},
		{"format 0", 8, 1, 0},
		{"policy 0", 9, 1, 0},
		{"policy 3", 9, 1, 3},
		{"zero field", 14, 2, 1},
		{"nentries + 1", 10, 2, 4},
		{"nvals - 1", 12, 2, 2},
		{"unsorted actors", E, 8, act('b') + 1},
		{"duplicate actor", E + DVV_META_ENTRY_BYTES, 8, act('a')},
		{"counter 0", E + DVV_META_ENTRY_BYTES + 8, 8, 0},
		{"counter over max", E + 8, 8, DVV_COUNTER_MAX + 1},
		{"nvals > counter", E + DVV_META_ENTRY_BYTES + 16, 2, 3},
		{"entry nvals over the sum", E + 16, 2, 3},
		{"entry nvals under the sum", E + 16, 2, 1},
		{"value flags 2", V + 20, 1, 2},
		{"tombstone with bytes", V + 20, 1, DVV_VAL_TOMB},
		{"value len + 1", V + 16, 4, 3},
		{"value len huge", V + 16, 4, 0xffffffffu},
	};
	for (unsigned i = 0; i < DV_ARRAY_LEN(cases); i++) {
		r = base;
		uint8_t *p = r.meta + cases[i].off;
		if (cases[i].width == 1)
			*p = (uint8_t)cases[i].value;
		else if (cases[i].width == 2)
			le_put16(p, (uint16_t)cases[i].value);
		else if (cases[i].width == 4)
			le_put32(p, (uint32_t)cases[i].value);
		else
			le_put64(p, cases[i].value);
		if (decode_resealed(&r) != -DV_ECORRUPT) {
			fprintf(stderr, "crafted meta accepted: %s\n", cases[i].what);
			exit(1);
		}
	}
	/* LWW holds one value at most */
	r = base;
	r.meta[9] = DVV_LWW;
	CHECK_EQ(decode_resealed(&r), -DV_ECORRUPT);
	/* counts over the bounds, with the length that goes with them */
	uint64_t rng = 7;
	struct dvv big;
	gen_dvv(&rng, &big, DVV_SIBLINGS, DVV_ENTRIES_MAX, 0);
	r.meta_len = dvv_meta_bytes(&big);
	r.vals_len = 0;
	dvv_encode(&big, r.meta, r.vals);
	memmove(r.meta + E + DVV_META_ENTRY_BYTES, r.meta + E, r.meta_len - E); /* an entry more, still sorted */
	le_put64(r.meta + E, 0);
	le_put16(r.meta + 10, DVV_ENTRIES_MAX + 1);
	r.meta_len += DVV_META_ENTRY_BYTES;
	CHECK(r.meta_len <= sizeof(r.meta));
	CHECK_EQ(decode_resealed(&r), -DV_ECORRUPT);
	le_put16(r.meta + 10, DVV_ENTRIES_MAX); /* the same with the right count: sorted and valid */
	r.meta_len -= DVV_META_ENTRY_BYTES;
	CHECK_EQ(decode_resealed(&r), 0);
	/* 65 values: the meta's length would pass the engine's bound too */
	uint8_t many[DVV_META_HDR_BYTES + DVV_META_ENTRY_BYTES + (DVV_VALUES_MAX + 1) * DVV_META_VALUE_BYTES];
	memset(many, 0, sizeof(many));
	many[8] = 1, many[9] = DVV_SIBLINGS;
	le_put16(many + 10, 1);
	le_put16(many + 12, DVV_VALUES_MAX + 1);
	le_put64(many + E, 1);
	le_put64(many + E + 8, DVV_VALUES_MAX + 1);
	le_put16(many + E + 16, DVV_VALUES_MAX + 1);
	reseal(many, sizeof(many));
	CHECK_EQ(dvv_decode(&d, many, sizeof(many), NULL, 0), -DV_ECORRUPT);
	CHECK_EQ(dvv_decode_clock(&d, many, sizeof(many)), -DV_ECORRUPT);
	/* the same layout with 64 values is fine */
	uint32_t len64 = sizeof(many) - DVV_META_VALUE_BYTES;
	le_put16(many + 12, DVV_VALUES_MAX);
	le_put16(many + E + 16, DVV_VALUES_MAX);
	reseal(many, len64);
	CHECK_EQ(dvv_decode(&d, many, len64, NULL, 0), 0);
	CHECK_EQ(d.nvals, DVV_VALUES_MAX);
	/* values over DVV_VALUE_BYTES_MAX in all */
	le_put32(many + E + DVV_META_ENTRY_BYTES + 16, DVV_VALUE_BYTES_MAX);
	le_put32(many + E + 2 * DVV_META_ENTRY_BYTES + 16 + 3, 1); /* second value's len */
	reseal(many, len64);
	CHECK_EQ(dvv_decode_clock(&d, many, len64), -DV_ECORRUPT);
}

/* ---- contexts ----------------------------------------------------------- */

static const uint8_t ctx_key_a[DVV_CTX_KEY_BYTES] = {1, 2, 3};
static const uint8_t ctx_key_b[DVV_CTX_KEY_BYTES] = {1, 2, 4};
#define CLUSTER 0xc1057e2ull

static void gen_vv(uint64_t *rng, struct dvv_vv *vv, unsigned n)
{
	uint64_t actor = 0;
	vv->n = (uint16_t)n;
	for (unsigned i = 0; i < n; i++) {
		actor += 1 + random_step(rng);
		vv->e[i].actor = actor;
		uint64_t r = test_rand(rng);
		vv->e[i].counter = 1 + test_rand(rng) % (r % 2 ? 100 : DVV_COUNTER_MAX);
	}
}

static bool vv_same(const struct dvv_vv *a, const struct dvv_vv *b)
{
	return a->n == b->n && memcmp(a->e, b->e, a->n * sizeof(a->e[0])) == 0;
}

/* A context the way the contract defines it, from any binary body: what a
 * holder of the context key could make (to reach the checks after the tag). */
static size_t ctx_forge(const uint8_t *body, size_t len, const void *key, uint32_t key_len, char *out)
{
	uint8_t bin[DVV_CTX_BIN_MAX + 64];
	CHECK(len + DVV_CTX_TAG_BYTES <= sizeof(bin));
	memcpy(bin, body, len);
	crypto_generichash_state st;
	crypto_generichash_init(&st, ctx_key_a, DVV_CTX_KEY_BYTES, DVV_CTX_TAG_BYTES);
	crypto_generichash_update(&st, bin, len);
	crypto_generichash_update(&st, key, key_len);
	crypto_generichash_final(&st, bin + len, DVV_CTX_TAG_BYTES);
	sodium_bin2base64(out, (DVV_CTX_BIN_MAX + 64) * 2, bin, len + DVV_CTX_TAG_BYTES,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strlen(out);
}

#define CTX_FLUSH_ID 0x0123456789abcdefull

static size_t ctx_body(uint8_t *b, uint8_t version, uint8_t policy, uint64_t cluster, const struct dvv_vv *vv, unsigned n)
{
	b[0] = version, b[1] = policy;
	le_put64(b + 2, cluster);
	le_put64(b + 10, CTX_FLUSH_ID);
	le_put16(b + 18, (uint16_t)n);
	for (unsigned i = 0; i < vv->n; i++) {
		le_put64(b + 20 + 16 * i, vv->e[i].actor);
		le_put64(b + 28 + 16 * i, vv->e[i].counter);
	}
	return 20 + 16u * vv->n;
}

static void test_ctx_one(const struct dvv_vv *vv, uint64_t flush_id, bool exhaustive)
{
	static const char key[] = "\x00user:1";
	char text[DVV_CTX_TEXT_MAX + 8], again[DVV_CTX_TEXT_MAX];
	struct dvv_vv back;
	uint64_t fid_back = ~flush_id;
	size_t len = dvv_ctx_encode(vv, DVV_SIBLINGS, flush_id, CLUSTER, ctx_key_a, key, 7, text);
	CHECK(len > 0 && len < DVV_CTX_TEXT_MAX && strlen(text) == len);
	CHECK(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == len);
	CHECK_EQ(dvv_ctx_decode(text, len, CLUSTER, ctx_key_a, key, 7, &back, &fid_back), 0);
	CHECK(vv_same(&back, vv) && fid_back == flush_id);
	CHECK(dvv_ctx_encode(&back, DVV_SIBLINGS, fid_back, CLUSTER, ctx_key_a, key, 7, again) == len &&
	      strcmp(again, text) == 0);
	/* the flush id is part of the tagged text: another one is another text */
	CHECK(dvv_ctx_encode(&back, DVV_SIBLINGS, flush_id ^ 1, CLUSTER, ctx_key_a, key, 7, again) == len &&
	      strcmp(again, text) != 0);
	/* another cluster, key, key length or context key */
	CHECK_EQ(dvv_ctx_decode(text, len, CLUSTER + 1, ctx_key_a, key, 7, &back, NULL), -EXDEV);
	CHECK_EQ(dvv_ctx_decode(text, len, CLUSTER, ctx_key_a, "\x00user:2", 7, &back, NULL), -EINVAL);
	CHECK_EQ(dvv_ctx_decode(text, len, CLUSTER, ctx_key_a, "\x01user:1", 7, &back, NULL), -EINVAL);
	CHECK_EQ(dvv_ctx_decode(text, len, CLUSTER, ctx_key_a, key, 6, &back, NULL), -EINVAL);
	CHECK_EQ(dvv_ctx_decode(text, len, CLUSTER, ctx_key_b, key, 7, &back, NULL), -EINVAL);
	CHECK(back.n == 0);
	/* every truncation but the empty string (the empty context) */
	for (size_t l = 1; l < len; l++)
		CHECK_EQ(dvv_ctx_decode(text, l, CLUSTER, ctx_key_a, key, 7, &back, NULL), -EINVAL);
	text[len] = 'A';
	CHECK_EQ(dvv_ctx_decode(text, len + 1, CLUSTER, ctx_key_a, key, 7, &back, NULL), -EINVAL);
	text[len] = '\0';
	/* every single-byte change: refused (-EXDEV when it hits the cluster id) */
	for (size_t pos = 0; pos < len; pos++) {
		char orig = text[pos];
		for (unsigned c = 0; c < 256; c++) {
			if ((char)c == orig || (!exhaustive && c % 7 != pos % 7))
				continue;
			text[pos] = (char)c;
			int rc = dvv_ctx_decode(text, len, CLUSTER, ctx_key_a, key, 7, &back, NULL);
			if (rc != -EINVAL && rc != -EXDEV) {
				fprintf(stderr, "context byte %zu = 0x%02x accepted: rc %d\n", pos, c, rc);
				exit(1);
			}
		}
		text[pos] = orig;
	}
	CHECK_EQ(dvv_ctx_decode(text, len, CLUSTER, ctx_key_a, key, 7, &back, NULL), 0);
}

static void test_ctx(uint64_t *rng, unsigned n_random)
{
	struct dvv_vv vv, back;
	/* n = 0, 1, 2 give the three lengths mod 3 of the binary form */
	for (unsigned n = 0; n <= 3; n++) {
		gen_vv(rng, &vv, n);
		test_ctx_one(&vv, n == 0 ? 0 : test_rand(rng), true);
	}
	gen_vv(rng, &vv, DVV_ENTRIES_MAX);
	test_ctx_one(&vv, UINT64_MAX, true);
	for (unsigned i = 0; i < n_random; i++) {
		gen_vv(rng, &vv, (unsigned)(test_rand(rng) % (DVV_ENTRIES_MAX + 1)));
		test_ctx_one(&vv, i % 2 ? test_rand(rng) : 0, false);
	}
	/* the empty string is the empty context; garbage is refused */
	CHECK_EQ(dvv_ctx_decode("", 0, CLUSTER, ctx_key_a, "k", 1, &back, NULL), 0);
	CHECK_EQ(back.n, 0);
	static const char *garbage[] = {"A", "AA", "====", "AAAA", "not a context", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
					"+/+/", "\n", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="};
	for (unsigned i = 0; i < DV_ARRAY_LEN(garbage); i++)
		CHECK_EQ(dvv_ctx_decode(garbage[i], strlen(garbage[i]), CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);
	static char huge[4096];
	memset(huge, 'A', sizeof(huge));
	CHECK_EQ(dvv_ctx_decode(huge, sizeof(huge), CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);
	CHECK_EQ(dvv_ctx_decode(huge, DVV_CTX_TEXT_MAX - 1, CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);

	/* Forged with the right key (the checks after the tag). */
	uint8_t body[DVV_CTX_BIN_MAX + 64];
	char text[(DVV_CTX_BIN_MAX + 64) * 2];
	gen_vv(rng, &vv, 3);
	size_t len = ctx_body(body, 2, DVV_LWW, CLUSTER, &vv, 3);
	uint64_t fid = 0;
	CHECK_EQ(dvv_ctx_decode(text, ctx_forge(body, len, "k", 1, text), CLUSTER, ctx_key_a, "k", 1, &back, &fid), 0);
	CHECK(vv_same(&back, &vv) && fid == CTX_FLUSH_ID); /* the contract's algorithm, independently */
	struct {
		const char *what;
		uint8_t version, policy;
		uint64_t cluster;
		int n_delta;
		int rc;
	} cases[] = {
		{"version 1 (before flush ids)", 1, DVV_SIBLINGS, CLUSTER, 0, -EINVAL},
		{"version 3", 3, DVV_SIBLINGS, CLUSTER, 0, -EINVAL},
		{"policy 0", 2, 0, CLUSTER, 0, -EINVAL},
		{"policy 3", 2, 3, CLUSTER, 0, -EINVAL},
		{"n + 1", 2, DVV_SIBLINGS, CLUSTER, 1, -EINVAL},
		{"n - 1", 2, DVV_SIBLINGS, CLUSTER, -1, -EINVAL},
		{"another cluster", 2, DVV_SIBLINGS, CLUSTER ^ 1, 0, -EXDEV},
	};
	for (unsigned i = 0; i < DV_ARRAY_LEN(cases); i++) {
		len = ctx_body(body, cases[i].version, cases[i].policy, cases[i].cluster, &vv, (unsigned)(3 + cases[i].n_delta));
		int rc = dvv_ctx_decode(text, ctx_forge(body, len, "k", 1, text), CLUSTER, ctx_key_a, "k", 1, &back, NULL);
		if (rc != cases[i].rc) {
			fprintf(stderr, "forged context (%s): rc %d\n", cases[i].what, rc);
			exit(1);
		}
	}
	struct dvv_vv bad;
	bad = vv, bad.e[1].actor = bad.e[0].actor; /* duplicate */
	len = ctx_body(body, 2, DVV_SIBLINGS, CLUSTER, &bad, 3);
	CHECK_EQ(dvv_ctx_decode(text, ctx_forge(body, len, "k", 1, text), CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);
	bad = vv, bad.e[2].actor = 0; /* unsorted */
	len = ctx_body(body, 2, DVV_SIBLINGS, CLUSTER, &bad, 3);
	CHECK_EQ(dvv_ctx_decode(text, ctx_forge(body, len, "k", 1, text), CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);
	bad = vv, bad.e[0].counter = 0;
	len = ctx_body(body, 2, DVV_SIBLINGS, CLUSTER, &bad, 3);
	CHECK_EQ(dvv_ctx_decode(text, ctx_forge(body, len, "k", 1, text), CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);
	bad = vv, bad.e[0].counter = DVV_COUNTER_MAX + 1;
	len = ctx_body(body, 2, DVV_SIBLINGS, CLUSTER, &bad, 3);
	CHECK_EQ(dvv_ctx_decode(text, ctx_forge(body, len, "k", 1, text), CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);
	CHECK(back.n == 0);
	/* 33 entries with a consistent length: over the text bound already */
	struct dvv_vv *big = malloc(sizeof(*big) + 16);
	CHECK(big != NULL);
	gen_vv(rng, big, DVV_ENTRIES_MAX);
	len = ctx_body(body, 2, DVV_SIBLINGS, CLUSTER, big, DVV_ENTRIES_MAX + 1);
	memset(body + len, 0x7f, 16), len += 16;
	CHECK_EQ(dvv_ctx_decode(text, ctx_forge(body, len, "k", 1, text), CLUSTER, ctx_key_a, "k", 1, &back, NULL), -EINVAL);
	free(big);
}

/* ---- bounds ------------------------------------------------------------- */

/* d = update(d, no context, actor, v) */
static void grow(struct dvv *d, uint64_t actor, const struct dvv_value *v)
{
	struct dvv t;
	CHECK_EQ(dvv_update(&t, d, &vv_empty, actor, v), 0);
	*d = t;
}

static void test_bounds(void)
{
	struct dvv d, out, t;
	struct dvv_value v = val_of("v", 0);
	/* 32 actors: a 33rd is refused, an existing one is fine */
	dvv_init(&d, DVV_SIBLINGS);
	for (uint64_t a = 1; a <= DVV_ENTRIES_MAX; a++) {
		CHECK_EQ(dvv_update(&out, &d, &vv_empty, a * 10, &v), 0);
		d = out;
	}
	CHECK(d.nentries == DVV_ENTRIES_MAX);
	CHECK_EQ(dvv_update(&out, &d, &vv_empty, 5, &v), -E2BIG);
	CHECK_EQ(dvv_update(&out, &d, &vv_empty, 1000, &v), -E2BIG);
	struct dvv_vv j = join_of(&d);
	CHECK_EQ(dvv_update(&out, &d, &j, 10, &v), 0);
	CHECK(out.nentries == DVV_ENTRIES_MAX && out.nvals == 1);
	/* ... also when the context brings the 33rd */
	struct dvv small;
	dvv_init(&small, DVV_SIBLINGS);
	CHECK_EQ(dvv_update(&small, &d, &j, 10, &v), 0);
	struct dvv_vv ctx = {.n = 1, .e = {{7, 1}}};
	CHECK_EQ(dvv_update(&out, &small, &ctx, 10, &v), -E2BIG);
	/* a sync of 17 + 16 actors: 33 */
	struct dvv x, y;
	dvv_init(&x, DVV_SIBLINGS), dvv_init(&y, DVV_SIBLINGS);
	for (uint64_t a = 1; a <= 17; a++) {
		grow(&x, a, &v);
		if (a <= 16)
			grow(&y, 100 + a, &v);
	}
	CHECK_EQ(dvv_sync(&out, &x, &y), -E2BIG);
	CHECK_EQ(dvv_update(&t, &x, &vv_empty, 17, &v), 0); /* 17 actors + 16: 33 */
	/* 64 values: the 65th is refused, by update and by sync */
	dvv_init(&d, DVV_SIBLINGS);
	for (unsigned i = 0; i < DVV_VALUES_MAX; i++) {
		CHECK_EQ(dvv_update(&out, &d, &vv_empty, 1 + i % 3, &v), 0);
		d = out;
	}
	CHECK(d.nvals == DVV_VALUES_MAX);
	CHECK_EQ(dvv_update(&out, &d, &vv_empty, 2, &v), -E2BIG);
	CHECK_EQ(dvv_update(&out, &d, &vv_empty, 9, &v), -E2BIG);
	j = join_of(&d);
	CHECK_EQ(dvv_update(&out, &d, &j, 9, &v), 0);
	CHECK(out.nvals == 1);
	dvv_init(&x, DVV_SIBLINGS), dvv_init(&y, DVV_SIBLINGS);
	for (unsigned i = 0; i < 33; i++) {
		grow(&x, 1, &v);
		if (i < 32)
			grow(&y, 2, &v);
	}
	CHECK_EQ(dvv_sync(&out, &x, &y), -E2BIG);
	CHECK_EQ(dvv_sync(&out, &x, &x), 0);
	/* bytes: DVV_VALUE_BYTES_MAX in all */
	static uint8_t mib[DVV_VALUE_BYTES_MAX + 1];
	struct dvv_value big = {.data = mib, .len = DVV_VALUE_BYTES_MAX};
	dvv_init(&d, DVV_SIBLINGS);
	CHECK_EQ(dvv_update(&out, &d, &vv_empty, 1, &big), 0);
	CHECK_EQ(dvv_update(&t, &out, &vv_empty, 2, &v), -E2BIG);
	struct dvv_vv jo = join_of(&out);
	CHECK_EQ(dvv_update(&t, &out, &jo, 2, &v), 0); /* replaces it */
	struct dvv one;
	CHECK_EQ(dvv_update(&one, &d, &vv_empty, 2, &v), 0);
	CHECK_EQ(dvv_sync(&t, &out, &one), -E2BIG);
	big.len = DVV_VALUE_BYTES_MAX + 1;
	CHECK_EQ(dvv_update(&t, &d, &vv_empty, 1, &big), -E2BIG);
	/* counters */
	mk(&d, "a:5:v");
	d.e[0].counter = DVV_COUNTER_MAX;
	CHECK_EQ(dvv_update(&out, &d, &vv_empty, act('a'), &v), -E2BIG);
	CHECK_EQ(dvv_update(&out, &d, &vv_empty, act('b'), &v), 0);
	/* LWW: one value whatever happens */
	dvv_init(&d, DVV_LWW);
	for (unsigned i = 0; i < 100; i++) {
		struct dvv_value lv = val_of("lww", i % 7);
		CHECK_EQ(dvv_update(&out, &d, &vv_empty, 1 + i % 5, &lv), 0);
		CHECK(out.nvals == 1);
		d = out;
	}
}

static void run_codec(void)
{
	test_begin("codec");
	uint64_t rng = 0xdecade;
	for (unsigned i = 0; i < sizeof(byte_pool); i++)
		byte_pool[i] = (uint8_t)test_rand(&rng);
	bool quick = getenv("DV_TEST_QUICK") != NULL;
	test_roundtrip(&rng, quick ? 500 : 3000);
	test_corruptions(&rng, quick ? 6 : 30);
	test_crafted();
	test_ctx(&rng, quick ? 4 : 24);
	test_bounds();
	test_end("codec");
}

/* ---- the fuzzer's seed corpus (fuzz_dvv.c's input format) -------------- */

static void corpus_file(const char *dir, const char *name, uint8_t mode, const void *a, size_t alen, const void *b,
			size_t blen)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(&mode, 1, 1, f) == 1);
	CHECK(alen == 0 || fwrite(a, 1, alen, f) == alen);
	CHECK(blen == 0 || fwrite(b, 1, blen, f) == blen);
	CHECK(fclose(f) == 0);
}

static void corpus_record(const char *dir, const char *name, const struct dvv *d)
{
	static struct rec r;
	rec_of(&r, d);
	uint8_t head[2 + DVV_META_BYTES_MAX];
	le_put16(head, (uint16_t)r.meta_len);
	memcpy(head + 2, r.meta, r.meta_len);
	char n[128];
	snprintf(n, sizeof(n), "rec_%s", name);
	corpus_file(dir, n, 0, head, 2 + r.meta_len, r.vals, r.vals_len);
	snprintf(n, sizeof(n), "rec_resealed_%s", name);
	corpus_file(dir, n, 1, head, 2 + r.meta_len, r.vals, r.vals_len);
}

/* Must match fuzz_dvv.c. */
#define FUZZ_CLUSTER 0x5eedull
static const uint8_t fuzz_ctx_key[DVV_CTX_KEY_BYTES] = {0x42, 0x42, 0x42, 0x42};

static void corpus_ctx(const char *dir, const char *name, const struct dvv_vv *vv, uint8_t policy)
{
	char text[DVV_CTX_TEXT_MAX], n[128];
	size_t len = dvv_ctx_encode(vv, policy, 0, FUZZ_CLUSTER, fuzz_ctx_key, "key", 3, text);
	snprintf(n, sizeof(n), "ctx_%s", name);
	corpus_file(dir, n, 2, text, len, NULL, 0);
	uint8_t body[DVV_CTX_BIN_MAX];
	len = ctx_body(body, 2, policy, FUZZ_CLUSTER, vv, vv->n);
	snprintf(n, sizeof(n), "ctxbody_%s", name);
	corpus_file(dir, n, 3, body, len, NULL, 0);
}

static void write_corpus(const char *dir)
{
	uint64_t rng = 0xc0bb05;
	for (unsigned i = 0; i < sizeof(byte_pool); i++)
		byte_pool[i] = (uint8_t)test_rand(&rng);
	struct dvv d;
	dvv_init(&d, DVV_SIBLINGS);
	corpus_record(dir, "empty", &d);
	mk(&d, "a:3:xx,y b:2: c:7:zzz");
	corpus_record(dir, "three", &d);
	d.v[1].flags = DVV_VAL_TOMB, d.v[1].len = 0, d.v[2].expire_ms = 1234;
	corpus_record(dir, "tomb_expire", &d);
	gen_dvv(&rng, &d, DVV_LWW, 4, 1);
	corpus_record(dir, "lww", &d);
	gen_dvv(&rng, &d, DVV_SIBLINGS, 9, 17);
	corpus_record(dir, "random", &d);
	gen_dvv(&rng, &d, DVV_SIBLINGS, DVV_ENTRIES_MAX, DVV_VALUES_MAX);
	corpus_record(dir, "max", &d);
	struct dvv_vv vv;
	gen_vv(&rng, &vv, 0);
	corpus_ctx(dir, "empty", &vv, DVV_SIBLINGS);
	gen_vv(&rng, &vv, 1);
	corpus_ctx(dir, "one", &vv, DVV_LWW);
	gen_vv(&rng, &vv, 5);
	corpus_ctx(dir, "five", &vv, DVV_SIBLINGS);
	gen_vv(&rng, &vv, DVV_ENTRIES_MAX);
	corpus_ctx(dir, "max", &vv, DVV_SIBLINGS);
	printf("corpus written to %s\n", dir);
}

int main(int argc, char **argv)
{
	prog = argv[0];
	CHECK(sodium_init() >= 0);
	if (argc == 3 && strcmp(argv[1], "corpus") == 0) {
		write_corpus(argv[2]);
		return 0;
	}
	bool all = argc == 1;
	for (int i = 1; i < argc; i++)
		CHECK(strcmp(argv[i], "unit") == 0 || strcmp(argv[i], "model") == 0 || strcmp(argv[i], "codec") == 0);
	for (int i = 0; i < (all ? 1 : argc); i++) {
		const char *what = all ? "all" : argv[i];
		if (all || strcmp(what, "unit") == 0)
			run_unit();
		if (all || strcmp(what, "codec") == 0)
			run_codec();
		if (all || strcmp(what, "model") == 0)
			run_model();
	}
	return test_soft_failures() == 0 ? 0 : 1;
}
