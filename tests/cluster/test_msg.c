/* test_msg.c - the internode message codec (src/cluster/msg.h).
 *
 * - layout: one message of every type encoded by msg_encode equals the
 *   bytes this test writes by hand from msg.h's byte table.
 * - round trips: every type with random contents (empty values, keys of 1
 *   and 1024 bytes, meta at its limit, 32 context entries, 1 MiB values):
 *   every field and view equal, views inside the buffer, re-encoded bytes
 *   equal, encoded length = msg_encoded_bytes.
 * - corruption: every single-bit flip and every truncation of a valid frame
 *   of every type refused (sampled positions for the 1 MiB ones), and one
 *   byte more refused.
 * - limits: each length at its limit accepted and one over refused (key,
 *   meta, vals, value, ctx_n, the frame), lengths past the buffer refused.
 * - fields: unknown type and version, unknown or misplaced flags, bad
 *   status, node id 0, unsorted or duplicate context, tombstone with a
 *   value, unknown value flags, a delta without a counter, w over
 *   RING_N_MAX, a failed GET reply with a version, FLUSH without keyspaces
 *   or id, SCAN limits and ranges, SCAN_REPLY key records that do not add
 *   up, bytes left over: each refused under a valid checksum. A message
 *   addressed to another node decodes (to is the receiver's check), and so
 *   does any epoch (the receiver's check too).
 * Every decode runs on a copy in an allocation of exactly the frame's size
 * (ASan sees reads past it). DV_SEED=<n> replays the random parts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/constants.h"
#include "base/hash.h"
#include "base/le.h"
#include "cluster/msg.h"
#include "cluster/ring.h"
#include "testing.h"

static uint64_t rng;
static uint8_t key_buf[DV_KEY_BYTES_MAX + 1];
static uint8_t meta_buf[DVV_META_BYTES_MAX + 1];
static uint8_t *vals_buf; /* DV_VALUE_BYTES_MAX + 1 */
static uint8_t ctx_buf[MSG_CTX_BYTES_MAX + 16];
static uint8_t *keys_buf; /* MSG_SCAN_KEYS_MAX records at most */

static uint64_t rnd(uint64_t n) { return n ? test_rand(&rng) % n : 0; }

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)test_rand(&rng);
}

/* Size class: 0 small random, 1 empty/minimal, 2 maximal. */
static uint32_t pick(unsigned cls, uint32_t min, uint32_t max, uint32_t small)
{
	if (cls == 1)
		return min;
	if (cls == 2)
		return max;
	return min + (uint32_t)rnd((small < max ? small : max) - min + 1);
}

static void ctx_fill(uint16_t n)
{
	uint64_t actor = rnd(1000);
	for (uint16_t i = 0; i < n; i++) {
		actor += 1 + rnd(1ull << 40);
		le_put64(ctx_buf + 16u * i, actor);
		le_put64(ctx_buf + 16u * i + 8, test_rand(&rng));
	}
}

static void rand_msg(struct msg *m, uint8_t type, unsigned cls)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = (uint16_t)(1 + rnd(RING_NODE_ID_MAX));
	m->to = (uint16_t)(1 + rnd(RING_NODE_ID_MAX));
	m->req_id = test_rand(&rng);
	m->hlc = test_rand(&rng);
	m->epoch = (uint32_t)test_rand(&rng);
	m->key = key_buf;
	m->meta = meta_buf;
	m->vals = vals_buf;
	m->ctx = ctx_buf;
	switch (type) {
	case MSG_REPL_PUT:
		m->flags = (uint16_t)((rnd(2) ? MSGF_REPAIR : 0) | (rnd(2) ? MSGF_IF_COVERED : 0));
		m->key_len = (uint16_t)pick(cls, 1, DV_KEY_BYTES_MAX, 40);
		m->meta_len = pick(cls, 1, DVV_META_BYTES_MAX, 200);
		m->vals_len = pick(cls, 0, DV_VALUE_BYTES_MAX, 3000);
		break;
	case MSG_REPL_GET:
		m->flags = (uint16_t)(rnd(2) ? MSGF_CLOCK_ONLY : 0);
		m->key_len = (uint16_t)pick(cls, 1, DV_KEY_BYTES_MAX, 40);
		break;
	case MSG_REPL_GET_REPLY:
		m->flags = (uint16_t)(rnd(2) ? MSGF_CLOCK_ONLY : 0);
		m->status = (uint8_t)(cls == 1 ? MSG_ST_NOTFOUND : rnd(3) ? MSG_ST_OK : 1 + rnd(MSG_ST_MAX));
		if (m->status == MSG_ST_OK) {
			m->meta_len = pick(cls, 1, DVV_META_BYTES_MAX, 200);
			m->vals_len = pick(cls, 0, DV_VALUE_BYTES_MAX, 3000);
		}
		break;
	case MSG_REPL_PUT_ACK:
		m->flags = (uint16_t)(rnd(2) ? MSGF_REPAIR : 0);
		/* fall through */
	case MSG_FWD_PUT_REPLY:
		m->status = (uint8_t)(cls == 2 ? MSG_ST_MAX : rnd(MSG_ST_MAX + 1));
		break;
	case MSG_FWD_PUT:
		m->key_len = (uint16_t)pick(cls, 1, DV_KEY_BYTES_MAX, 40);
		m->w = (uint8_t)(cls == 2 ? RING_N_MAX : rnd(RING_N_MAX + 1));
		m->val_flags = (uint8_t)(cls == 1 && rnd(2) ? DVV_VAL_TOMB : rnd(3) == 0 ? DVV_VAL_COUNTER : 0);
		m->timeout_ms = (uint32_t)test_rand(&rng);
		m->expire_ms = test_rand(&rng);
		m->delta = m->val_flags == DVV_VAL_COUNTER ? test_rand(&rng) : 0;
		m->ctx_n = (uint16_t)pick(cls, 0, DVV_ENTRIES_MAX, DVV_ENTRIES_MAX);
		if (!(m->val_flags & DVV_VAL_TOMB))
			m->vals_len = pick(cls, 0, DV_VALUE_BYTES_MAX, 3000);
		break;
	case MSG_PING:
	case MSG_PONG:
		m->nonce = test_rand(&rng);
		break;
	case MSG_FLUSH:
		m->ks_mask = (uint16_t)(cls == 2 ? 0xffff : 1 + rnd(0xffff));
		m->id = 1 + rnd(UINT64_MAX - 1);
		m->until = test_rand(&rng);
		break;
	case MSG_FLUSH_ACK:
	case MSG_COUNT_REPLY:
		m->status = (uint8_t)(cls == 2 ? MSG_ST_MAX : rnd(MSG_ST_MAX + 1));
		m->id = m->type == MSG_FLUSH_ACK ? test_rand(&rng) : 0;
		m->count = m->type == MSG_COUNT_REPLY ? test_rand(&rng) : 0;
		break;
	case MSG_FLUSH_STATE_GET:
		break;
	case MSG_FLUSH_STATE:
		m->nids = (uint8_t)pick(cls, 0, MSG_FLUSH_KS_MAX, MSG_FLUSH_KS_MAX);
		for (unsigned i = 0; i < m->nids; i++) {
			m->ids[i] = test_rand(&rng);
			m->untils[i] = test_rand(&rng);
		}
		break;
	case MSG_SCAN:
		m->keyspace = (uint8_t)rnd(MSG_FLUSH_KS_MAX);
		m->limit = (uint16_t)pick(cls, 1, MSG_SCAN_KEYS_MAX, 64);
		m->pos = test_rand(&rng);
		m->end = m->pos + rnd(UINT64_MAX - m->pos);
		break;
	case MSG_SCAN_REPLY: {
		m->status = (uint8_t)(cls != 0 || rnd(4) ? MSG_ST_OK : 1 + rnd(MSG_ST_MAX));
		if (m->status != MSG_ST_OK)
			break;
		m->done = (uint8_t)rnd(2);
		m->next = test_rand(&rng);
		m->nkeys = (uint16_t)pick(cls, 0, MSG_SCAN_KEYS_MAX, 20);
		m->keys = keys_buf;
		uint8_t k[MSG_SCAN_KEY_MAX];
		for (uint16_t i = 0; i < m->nkeys; i++) {
			uint16_t len = (uint16_t)(cls == 2 ? MSG_SCAN_KEY_MAX : rnd(40));
			fill(k, len);
			m->keys_len += msg_scan_key_put(keys_buf + m->keys_len, k, len);
		}
		break;
	}
	case MSG_COUNT:
		m->keyspace = (uint8_t)rnd(MSG_FLUSH_KS_MAX);
		break;
	default:
		CHECK(!"a type rand_msg does not know");
	}
	fill(key_buf, m->key_len);
	fill(meta_buf, m->meta_len);
	fill(vals_buf, m->vals_len);
	ctx_fill(m->ctx_n);
}

static uint8_t *encode(const struct msg *m, size_t *len)
{
	*len = msg_encoded_bytes(m);
	uint8_t *buf = malloc(*len);
	CHECK(buf != NULL);
	CHECK_EQ(msg_encode(m, buf), *len);
	return buf;
}

/* Decodes a copy of exactly len bytes; *copy keeps it for the views. */
static int decode_exact(const uint8_t *buf, size_t len, struct msg *m, uint8_t **copy)
{
	uint8_t *c = malloc(len ? len : 1);
	CHECK(c != NULL);
	memcpy(c, buf, len);
	int err = msg_decode(c, len, m);
	if (err) {
		CHECK_EQ(err, -EBADMSG);
		CHECK(m->type == 0 && m->key == NULL && m->vals == NULL);
	}
	if (copy && !err)
		*copy = c;
	else
		free(c);
	return err;
}

static bool view_eq(const uint8_t *a, const uint8_t *b, size_t n) { return n == 0 || memcmp(a, b, n) == 0; }

static bool inside(const uint8_t *v, size_t n, const uint8_t *buf, size_t len)
{
	return n == 0 || (v >= buf && v + n <= buf + len);
}

static void check_same(const struct msg *a, const struct msg *d, const uint8_t *buf, size_t len)
{
	CHECK_EQ(a->type, d->type);
	CHECK_EQ(a->flags, d->flags);
	CHECK_EQ(a->from, d->from);
	CHECK_EQ(a->to, d->to);
	CHECK(a->req_id == d->req_id && a->hlc == d->hlc && a->epoch == d->epoch);
	CHECK_EQ(a->status, d->status);
	CHECK_EQ(a->key_len, d->key_len);
	CHECK_EQ(a->meta_len, d->meta_len);
	CHECK_EQ(a->vals_len, d->vals_len);
	CHECK(view_eq(a->key, d->key, a->key_len));
	CHECK(view_eq(a->meta, d->meta, a->meta_len));
	CHECK(view_eq(a->vals, d->vals, a->vals_len));
	CHECK(inside(d->key, d->key_len, buf, len));
	CHECK(inside(d->meta, d->meta_len, buf, len));
	CHECK(inside(d->vals, d->vals_len, buf, len));
	CHECK(inside(d->ctx, 16u * d->ctx_n, buf, len));
	CHECK_EQ(a->w, d->w);
	CHECK_EQ(a->val_flags, d->val_flags);
	CHECK_EQ(a->timeout_ms, d->timeout_ms);
	CHECK(a->expire_ms == d->expire_ms);
	CHECK_EQ(a->ctx_n, d->ctx_n);
	CHECK(view_eq(a->ctx, d->ctx, 16u * a->ctx_n));
	CHECK(a->nonce == d->nonce && a->delta == d->delta);
	CHECK(a->ks_mask == d->ks_mask && a->id == d->id && a->until == d->until && a->nids == d->nids);
	for (unsigned i = 0; i < a->nids; i++)
		CHECK(a->ids[i] == d->ids[i] && a->untils[i] == d->untils[i]);
	CHECK(a->keyspace == d->keyspace && a->limit == d->limit && a->pos == d->pos && a->end == d->end);
	CHECK(a->done == d->done && a->next == d->next && a->nkeys == d->nkeys && a->count == d->count);
	CHECK_EQ(a->keys_len, d->keys_len);
	CHECK(view_eq(a->keys, d->keys, a->keys_len));
	CHECK(inside(d->keys, d->keys_len, buf, len));
	if (d->type == MSG_SCAN_REPLY) {
		uint32_t off = 0, ka = 0;
		const uint8_t *k;
		uint16_t kl;
		unsigned n = 0;
		while (msg_scan_key(d, &off, &k, &kl)) {
			const uint8_t *k2;
			uint16_t kl2;
			CHECK(msg_scan_key(a, &ka, &k2, &kl2) && kl == kl2 && view_eq(k, k2, kl));
			n++;
		}
		CHECK_EQ(n, d->nkeys);
	}
}

static void roundtrip(const struct msg *m)
{
	size_t len;
	uint8_t *buf = encode(m, &len);
	struct msg d;
	uint8_t *copy = NULL;
	CHECK_EQ(decode_exact(buf, len, &d, &copy), 0);
	check_same(m, &d, copy, len);
	uint8_t *again = malloc(len);
	CHECK(again != NULL);
	CHECK_EQ(msg_encoded_bytes(&d), len);
	CHECK_EQ(msg_encode(&d, again), len);
	CHECK(memcmp(again, buf, len) == 0);
	free(again);
	free(copy);
	free(buf);
}

static void test_roundtrip(void)
{
	test_begin("roundtrip");
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_TYPE_MAX; t++) {
		for (unsigned i = 0; i < 300; i++) {
			struct msg m;
			rand_msg(&m, t, i < 2 ? 1 + i : 0);
			roundtrip(&m);
		}
	}
	/* The heaviest frames: every length at its limit at once. */
	struct msg m;
	rand_msg(&m, MSG_REPL_PUT, 2);
	CHECK_EQ(msg_encoded_bytes(&m), MSG_HDR_BYTES + 2 + DV_KEY_BYTES_MAX + 2 + DVV_META_BYTES_MAX + 4 + DV_VALUE_BYTES_MAX);
	CHECK(msg_encoded_bytes(&m) <= MSG_BYTES_MAX);
	rand_msg(&m, MSG_FWD_PUT, 2);
	CHECK(msg_encoded_bytes(&m) <= MSG_BYTES_MAX);
	CHECK_EQ(m.ctx_n, DVV_ENTRIES_MAX);
	rand_msg(&m, MSG_SCAN_REPLY, 2);
	CHECK_EQ(m.nkeys, MSG_SCAN_KEYS_MAX);
	CHECK(msg_encoded_bytes(&m) <= MSG_BYTES_MAX);
	test_end("roundtrip");
}

/* msg_peek_key: the key decode finds, for REPL_PUT and REPL_GET; nothing
 * for every other type; inside the bytes for every truncation and for
 * garbage (it checks nothing else: run under ASan, a read past len shows). */
static void test_peek_key(void)
{
	test_begin("peek_key");
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_TYPE_MAX; t++) {
		for (unsigned i = 0; i < 100; i++) {
			struct msg m;
			rand_msg(&m, t, i < 2 ? 1 + i : 0);
			size_t len;
			uint8_t *buf = encode(&m, &len);
			const uint8_t *key;
			uint16_t key_len;
			bool has = msg_peek_key(buf, len, &key, &key_len);
			CHECK_EQ(has, t == MSG_REPL_PUT || t == MSG_REPL_GET);
			if (has)
				CHECK(key_len == m.key_len && view_eq(key, m.key, key_len));
			for (size_t cut = 0; cut < len && cut < MSG_HDR_BYTES + 8; cut++) {
				uint8_t *c = malloc(cut ? cut : 1);
				CHECK(c != NULL);
				memcpy(c, buf, cut);
				if (msg_peek_key(c, cut, &key, &key_len))
					CHECK(key_len >= 1 && key >= c + MSG_HDR_BYTES + 2 && key + key_len <= c + cut);
				free(c);
			}
			free(buf);
		}
	}
	uint64_t r = 99;
	for (unsigned i = 0; i < 20000; i++) {
		size_t len = (size_t)(test_rand(&r) % 120);
		uint8_t *g = malloc(len ? len : 1);
		CHECK(g != NULL);
		for (size_t j = 0; j < len; j++)
			g[j] = (uint8_t)test_rand(&r);
		if (len > 9 && test_rand(&r) % 2)
			g[9] = (uint8_t)(MSG_REPL_PUT + test_rand(&r) % 2 * (MSG_REPL_GET - MSG_REPL_PUT));
		const uint8_t *key;
		uint16_t key_len;
		if (msg_peek_key(g, len, &key, &key_len))
			CHECK(key_len >= 1 && key == g + MSG_HDR_BYTES + 2 && key + key_len <= g + len);
		free(g);
	}
	test_end("peek_key");
}

/* A frame written by hand from msg.h's table. */
struct raw {
	uint8_t *b;
	size_t n;
};
static struct raw raw;
static void r8(uint8_t v) { raw.b[raw.n++] = v; }
static void r16(uint16_t v) { le_put16(raw.b + raw.n, v), raw.n += 2; }
static void r32(uint32_t v) { le_put32(raw.b + raw.n, v), raw.n += 4; }
static void r64(uint64_t v) { le_put64(raw.b + raw.n, v), raw.n += 8; }
static void rbytes(const uint8_t *p, size_t n)
{
	if (n)
		memcpy(raw.b + raw.n, p, n);
	raw.n += n;
}
static void raw_head(uint8_t type, uint16_t flags, uint16_t from, uint16_t to)
{
	raw.n = 8;
	r8(MSG_VERSION), r8(type), r16(flags), r16(from), r16(to);
	r64(0x1122334455667788ull), r64(0x0102030405060708ull);
	r32(0), r32(0xe90c4u); /* body_len (raw_seal), epoch */
}
/* body_len from the bytes written, then the checksum. */
static size_t raw_seal(void)
{
	le_put32(raw.b + 32, (uint32_t)(raw.n - MSG_HDR_BYTES));
	le_put64(raw.b, dv_checksum64(raw.b + 8, raw.n - 8));
	return raw.n;
}
static void reseal(uint8_t *b, size_t n) { le_put64(b, dv_checksum64(b + 8, n - 8)); }

static void expect_bytes(const struct msg *m, size_t n)
{
	size_t len;
	uint8_t *buf = encode(m, &len);
	CHECK_EQ(len, n);
	CHECK(memcmp(buf, raw.b, n) == 0);
	free(buf);
}

static void test_layout(void)
{
	test_begin("layout");
	const uint8_t key[] = { 0, 'k', 'e', 'y' }, meta[] = { 1, 2, 3 }, vals[] = { 'v', 'a', 'l' };
	struct msg m = { .type = MSG_REPL_PUT, .flags = MSGF_REPAIR, .from = 1, .to = 2,
			 .req_id = 0x1122334455667788ull, .hlc = 0x0102030405060708ull, .epoch = 0xe90c4u,
			 .key = key, .key_len = 4, .meta = meta, .meta_len = 3, .vals = vals, .vals_len = 3 };
	raw_head(MSG_REPL_PUT, MSGF_REPAIR, 1, 2);
	r16(4), rbytes(key, 4), r16(3), rbytes(meta, 3), r32(3), rbytes(vals, 3);
	expect_bytes(&m, raw_seal());
	CHECK_EQ(raw.b[8], 3);            /* version at 8 */
	CHECK_EQ(le_get32(raw.b + 32), 18); /* body_len */
	CHECK_EQ(le_get32(raw.b + 36), 0xe90c4u); /* epoch */

	m.type = MSG_REPL_GET, m.flags = MSGF_CLOCK_ONLY;
	raw_head(MSG_REPL_GET, MSGF_CLOCK_ONLY, 1, 2);
	r16(4), rbytes(key, 4);
	expect_bytes(&m, raw_seal());

	m.type = MSG_REPL_GET_REPLY, m.status = MSG_ST_OK;
	raw_head(MSG_REPL_GET_REPLY, MSGF_CLOCK_ONLY, 1, 2);
	r8(0), r16(3), rbytes(meta, 3), r32(3), rbytes(vals, 3);
	expect_bytes(&m, raw_seal());

	struct msg a = { .type = MSG_REPL_PUT_ACK, .from = 1, .to = 2, .req_id = m.req_id, .hlc = m.hlc,
			 .epoch = m.epoch, .status = MSG_ST_BUSY };
	raw_head(MSG_REPL_PUT_ACK, 0, 1, 2);
	r8(MSG_ST_BUSY);
	expect_bytes(&a, raw_seal());
	a.type = MSG_FWD_PUT_REPLY;
	a.status = MSG_ST_TIMEOUT;
	raw_head(MSG_FWD_PUT_REPLY, 0, 1, 2);
	r8(MSG_ST_TIMEOUT);
	expect_bytes(&a, raw_seal());

	struct dvv_vv vv = { .n = 2 };
	vv.e[0].actor = 5, vv.e[0].counter = 7, vv.e[1].actor = 9, vv.e[1].counter = 1;
	uint8_t cbuf[MSG_CTX_BYTES_MAX];
	struct msg f = { .type = MSG_FWD_PUT, .from = 3, .to = 4, .req_id = m.req_id, .hlc = m.hlc,
			 .epoch = m.epoch, .key = key, .key_len = 4, .w = 2, .val_flags = DVV_VAL_COUNTER,
			 .timeout_ms = 5000, .expire_ms = 0xabcdefull, .delta = (uint64_t)-3, .vals = vals, .vals_len = 3 };
	msg_ctx_set(&f, &vv, cbuf);
	CHECK(f.ctx == cbuf && f.ctx_n == 2);
	raw_head(MSG_FWD_PUT, 0, 3, 4);
	r16(4), rbytes(key, 4), r8(2), r8(DVV_VAL_COUNTER), r32(5000), r64(0xabcdefull), r64((uint64_t)-3);
	r16(2), r64(5), r64(7), r64(9), r64(1), r32(3), rbytes(vals, 3);
	expect_bytes(&f, raw_seal());

	for (uint8_t t = MSG_PING; t <= MSG_PONG; t++) {
		struct msg p = { .type = t, .from = 1, .to = 2, .req_id = m.req_id, .hlc = m.hlc, .epoch = m.epoch,
				 .nonce = 42 };
		raw_head(t, 0, 1, 2);
		r64(42);
		expect_bytes(&p, raw_seal());
	}

	struct msg x = { .from = 1, .to = 2, .req_id = m.req_id, .hlc = m.hlc, .epoch = m.epoch };
	x.type = MSG_FLUSH, x.ks_mask = 0x0003, x.id = 0x5566, x.until = 0x7788;
	raw_head(MSG_FLUSH, 0, 1, 2);
	r16(0x0003), r64(0x5566), r64(0x7788);
	expect_bytes(&x, raw_seal());
	x.type = MSG_FLUSH_ACK, x.ks_mask = 0, x.until = 0, x.status = MSG_ST_STALE;
	raw_head(MSG_FLUSH_ACK, 0, 1, 2);
	r8(MSG_ST_STALE), r64(0x5566);
	expect_bytes(&x, raw_seal());
	x.type = MSG_FLUSH_STATE_GET, x.status = 0, x.id = 0;
	raw_head(MSG_FLUSH_STATE_GET, 0, 1, 2);
	expect_bytes(&x, raw_seal());
	x.type = MSG_FLUSH_STATE, x.nids = 2, x.ids[0] = 7, x.ids[1] = 0, x.untils[0] = 8, x.untils[1] = 0;
	raw_head(MSG_FLUSH_STATE, 0, 1, 2);
	r8(2), r64(7), r64(8), r64(0), r64(0);
	expect_bytes(&x, raw_seal());
	x.nids = 0;
	x.type = MSG_SCAN, x.keyspace = 1, x.limit = 10, x.pos = 0x100, x.end = 0x1ff;
	raw_head(MSG_SCAN, 0, 1, 2);
	r8(1), r16(10), r64(0x100), r64(0x1ff);
	expect_bytes(&x, raw_seal());
	uint8_t kb[16];
	uint32_t kl = msg_scan_key_put(kb, (const uint8_t *)"ab", 2);
	kl += msg_scan_key_put(kb + kl, NULL, 0);
	x = (struct msg){ .type = MSG_SCAN_REPLY, .from = 1, .to = 2, .req_id = m.req_id, .hlc = m.hlc,
			  .epoch = m.epoch, .done = 1, .next = 0x200, .nkeys = 2, .keys = kb, .keys_len = kl };
	raw_head(MSG_SCAN_REPLY, 0, 1, 2);
	r8(MSG_ST_OK), r8(1), r64(0x200), r16(2), r16(2), r8('a'), r8('b'), r16(0);
	expect_bytes(&x, raw_seal());
	x = (struct msg){ .type = MSG_COUNT, .from = 1, .to = 2, .req_id = m.req_id, .hlc = m.hlc,
			  .epoch = m.epoch, .keyspace = 3 };
	raw_head(MSG_COUNT, 0, 1, 2);
	r8(3);
	expect_bytes(&x, raw_seal());
	x.type = MSG_COUNT_REPLY, x.keyspace = 0, x.count = 12345;
	raw_head(MSG_COUNT_REPLY, 0, 1, 2);
	r8(MSG_ST_OK), r64(12345);
	expect_bytes(&x, raw_seal());
	test_end("layout");
}

static void check_refused(const uint8_t *buf, size_t len)
{
	struct msg d;
	CHECK_EQ(decode_exact(buf, len, &d, NULL), -EBADMSG);
}

static void corrupt_all(const struct msg *m, bool every)
{
	size_t len;
	uint8_t *buf = encode(m, &len);
	for (size_t t = 0; t < len; t += every || t < 64 || t + 64 > len ? 1 : 1 + rnd(len / 16))
		check_refused(buf, t);
	uint8_t *longer = malloc(len + 1);
	CHECK(longer != NULL);
	memcpy(longer, buf, len);
	longer[len] = 0;
	check_refused(longer, len + 1);
	free(longer);
	/* buf is an allocation of exactly len bytes: flipped in place. Big
	 * frames: every bit of the first 64 and last 16 bytes (header, length
	 * fields, the end), one bit each at 32 places between. */
	struct msg d;
	for (size_t i = 0; i < len; i += every || i < 64 || i + 16 >= len ? 1 : 1 + rnd(len / 32)) {
		bool all = every || i < 64 || i + 16 >= len;
		for (unsigned b = all ? 0 : (unsigned)rnd(8); b < 8; b += all ? 1 : 8) {
			buf[i] ^= (uint8_t)(1u << b);
			CHECK_EQ(msg_decode(buf, len, &d), -EBADMSG);
			buf[i] ^= (uint8_t)(1u << b);
		}
	}
	CHECK_EQ(decode_exact(buf, len, &d, NULL), 0);
	free(buf);
}

static void test_corruption(void)
{
	test_begin("corruption");
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_TYPE_MAX; t++) {
		for (unsigned i = 0; i < 3; i++) {
			struct msg m;
			rand_msg(&m, t, i == 2 ? 1 : 0);
			corrupt_all(&m, true);
		}
	}
	struct msg m;
	rand_msg(&m, MSG_REPL_PUT, 2);
	corrupt_all(&m, false);
	rand_msg(&m, MSG_FWD_PUT, 2);
	corrupt_all(&m, false);
	test_end("corruption");
}

static int decode_raw(size_t n)
{
	struct msg d;
	return decode_exact(raw.b, n, &d, NULL);
}

/* REPL_PUT / GET_REPLY with the given lengths, bytes as declared. */
static size_t raw_version(uint8_t type, uint32_t key_len, uint32_t meta_len, uint32_t vals_len)
{
	raw_head(type, 0, 1, 2);
	if (type == MSG_REPL_PUT)
		r16((uint16_t)key_len), rbytes(key_buf, key_len);
	else
		r8(MSG_ST_OK);
	r16((uint16_t)meta_len), rbytes(meta_buf, meta_len);
	r32(vals_len), rbytes(vals_buf, vals_len);
	return raw_seal();
}

static size_t raw_fwd(uint32_t key_len, uint8_t w, uint8_t vflags, uint16_t ctx_n, uint32_t val_len)
{
	raw_head(MSG_FWD_PUT, 0, 1, 2);
	r16((uint16_t)key_len), rbytes(key_buf, key_len);
	r8(w), r8(vflags), r32(100), r64(0), r64(vflags == DVV_VAL_COUNTER ? 5 : 0);
	r16(ctx_n);
	for (uint16_t i = 0; i < ctx_n; i++)
		r64(100 + i), r64(1);
	r32(val_len), rbytes(vals_buf, val_len);
	return raw_seal();
}

static void test_limits(void)
{
	test_begin("limits");
	fill(key_buf, sizeof(key_buf));
	fill(meta_buf, sizeof(meta_buf));
	/* key */
	CHECK_EQ(decode_raw(raw_version(MSG_REPL_PUT, DV_KEY_BYTES_MAX, 10, 0)), 0);
	CHECK_EQ(decode_raw(raw_version(MSG_REPL_PUT, DV_KEY_BYTES_MAX + 1, 10, 0)), -EBADMSG);
	CHECK_EQ(decode_raw(raw_version(MSG_REPL_PUT, 1, 10, 0)), 0);
	CHECK_EQ(decode_raw(raw_version(MSG_REPL_PUT, 0, 10, 0)), -EBADMSG);
	CHECK_EQ(decode_raw(raw_fwd(DV_KEY_BYTES_MAX, 1, 0, 0, 1)), 0);
	CHECK_EQ(decode_raw(raw_fwd(DV_KEY_BYTES_MAX + 1, 1, 0, 0, 1)), -EBADMSG);
	CHECK_EQ(decode_raw(raw_fwd(0, 1, 0, 0, 1)), -EBADMSG);
	raw_head(MSG_REPL_GET, 0, 1, 2);
	r16(DV_KEY_BYTES_MAX), rbytes(key_buf, DV_KEY_BYTES_MAX);
	CHECK_EQ(decode_raw(raw_seal()), 0);
	raw_head(MSG_REPL_GET, 0, 1, 2);
	r16(DV_KEY_BYTES_MAX + 1), rbytes(key_buf, DV_KEY_BYTES_MAX + 1);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	/* meta, vals */
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_REPL_GET_REPLY; t += 3) {
		CHECK_EQ(decode_raw(raw_version(t, 5, DVV_META_BYTES_MAX, 0)), 0);
		CHECK_EQ(decode_raw(raw_version(t, 5, DVV_META_BYTES_MAX + 1, 0)), -EBADMSG);
		CHECK_EQ(decode_raw(raw_version(t, 5, 0, 0)), -EBADMSG);
		CHECK_EQ(decode_raw(raw_version(t, 5, 1, DV_VALUE_BYTES_MAX)), 0);
		CHECK_EQ(decode_raw(raw_version(t, 5, 1, DV_VALUE_BYTES_MAX + 1)), -EBADMSG);
	}
	/* FWD_PUT: value, context */
	CHECK_EQ(decode_raw(raw_fwd(5, 1, 0, 0, DV_VALUE_BYTES_MAX)), 0);
	CHECK_EQ(decode_raw(raw_fwd(5, 1, 0, 0, DV_VALUE_BYTES_MAX + 1)), -EBADMSG);
	CHECK_EQ(decode_raw(raw_fwd(5, 1, 0, 0, 0)), 0);
	CHECK_EQ(decode_raw(raw_fwd(5, 1, 0, DVV_ENTRIES_MAX, 3)), 0);
	CHECK_EQ(decode_raw(raw_fwd(5, 1, 0, DVV_ENTRIES_MAX + 1, 3)), -EBADMSG);
	CHECK_EQ(decode_raw(raw_fwd(5, RING_N_MAX, 0, 0, 3)), 0);
	CHECK_EQ(decode_raw(raw_fwd(5, RING_N_MAX + 1, 0, 0, 3)), -EBADMSG);
	CHECK_EQ(decode_raw(raw_fwd(5, 0, DVV_VAL_TOMB, 0, 0)), 0);
	/* The largest frame the bounds allow decodes; one byte more is refused
	 * whatever it holds. */
	size_t n = raw_version(MSG_REPL_PUT, DV_KEY_BYTES_MAX, DVV_META_BYTES_MAX, DV_VALUE_BYTES_MAX);
	CHECK(n <= MSG_BYTES_MAX);
	CHECK_EQ(decode_raw(n), 0);
	memset(raw.b, 0, MSG_BYTES_MAX + 1);
	raw_head(MSG_PING, 0, 1, 2);
	raw.n = MSG_BYTES_MAX + 1;
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	raw.n = MSG_BYTES_MAX;
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG); /* a PING body of MSG_BYTES_MAX - 40: not consumed */
	/* Lengths past the bytes there, checksum right. */
	raw_head(MSG_REPL_GET, 0, 1, 2);
	r16(500), rbytes(key_buf, 499);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	raw_head(MSG_REPL_PUT, 0, 1, 2);
	r16(3), rbytes(key_buf, 3), r16(10), rbytes(meta_buf, 10), r32(0xffffffffu);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	raw_head(MSG_REPL_PUT, 0, 1, 2);
	r16(3), rbytes(key_buf, 3), r16(10), rbytes(meta_buf, 10), r32(1000), rbytes(vals_buf, 999);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	/* body_len disagreeing with the buffer, either way. */
	size_t k = raw_version(MSG_REPL_PUT, 3, 10, 20);
	le_put32(raw.b + 32, (uint32_t)(k - MSG_HDR_BYTES + 1));
	reseal(raw.b, k);
	CHECK_EQ(decode_raw(k), -EBADMSG);
	le_put32(raw.b + 32, (uint32_t)(k - MSG_HDR_BYTES - 1));
	reseal(raw.b, k);
	CHECK_EQ(decode_raw(k), -EBADMSG);
	le_put32(raw.b + 32, 0xffffffffu);
	reseal(raw.b, k);
	CHECK_EQ(decode_raw(k), -EBADMSG);
	CHECK_EQ(decode_raw(0), -EBADMSG);
	CHECK_EQ(decode_raw(MSG_HDR_BYTES - 1), -EBADMSG);
	test_end("limits");
}

/* A valid frame of type t, then one field changed and the checksum fixed. */
static size_t raw_valid(uint8_t t)
{
	switch (t) {
	case MSG_REPL_PUT:
	case MSG_REPL_GET_REPLY:
		return raw_version(t, 4, 8, 16);
	case MSG_REPL_GET:
		raw_head(t, 0, 1, 2);
		r16(4), rbytes(key_buf, 4);
		return raw_seal();
	case MSG_FWD_PUT:
		return raw_fwd(4, 2, 0, 3, 16);
	case MSG_PING:
	case MSG_PONG:
		raw_head(t, 0, 1, 2);
		r64(7);
		return raw_seal();
	case MSG_FLUSH:
		raw_head(t, 0, 1, 2);
		r16(1), r64(9), r64(10);
		return raw_seal();
	case MSG_FLUSH_ACK:
	case MSG_COUNT_REPLY:
		raw_head(t, 0, 1, 2);
		r8(0), r64(9);
		return raw_seal();
	case MSG_FLUSH_STATE_GET:
		raw_head(t, 0, 1, 2);
		return raw_seal();
	case MSG_FLUSH_STATE:
		raw_head(t, 0, 1, 2);
		r8(1), r64(9), r64(10);
		return raw_seal();
	case MSG_SCAN:
		raw_head(t, 0, 1, 2);
		r8(0), r16(8), r64(1), r64(2);
		return raw_seal();
	case MSG_SCAN_REPLY:
		raw_head(t, 0, 1, 2);
		r8(0), r8(0), r64(5), r16(1), r16(1), r8('k');
		return raw_seal();
	case MSG_COUNT:
		raw_head(t, 0, 1, 2);
		r8(0);
		return raw_seal();
	default:
		raw_head(t, 0, 1, 2);
		r8(0);
		return raw_seal();
	}
}

static void test_fields(void)
{
	test_begin("fields");
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_TYPE_MAX; t++) {
		size_t n = raw_valid(t);
		CHECK_EQ(decode_raw(n), 0);
		const uint8_t hdr_bad[][2] = { { 8, 0 }, { 8, MSG_VERSION - 1 }, { 8, MSG_VERSION + 1 }, { 8, 255 }, { 9, 0 }, { 9, MSG_TYPE_MAX + 1 }, { 9, 255 } };
		for (unsigned i = 0; i < sizeof(hdr_bad) / sizeof(hdr_bad[0]); i++) {
			raw_valid(t);
			raw.b[hdr_bad[i][0]] = hdr_bad[i][1];
			reseal(raw.b, n);
			CHECK_EQ(decode_raw(n), -EBADMSG);
		}
		/* Node id 0 on either side, unknown flags. */
		const unsigned off16[] = { 12, 14 };
		for (unsigned i = 0; i < 2; i++) {
			raw_valid(t);
			le_put16(raw.b + off16[i], 0);
			reseal(raw.b, n);
			CHECK_EQ(decode_raw(n), -EBADMSG);
		}
		/* Any epoch decodes: whether it is the receiver's is the receiver's check. */
		raw_valid(t);
		le_put32(raw.b + 36, 0xffffffffu);
		reseal(raw.b, n);
		CHECK_EQ(decode_raw(n), 0);
		for (unsigned bit = 0; bit < 16; bit++) {
			raw_valid(t);
			uint16_t f = (uint16_t)(1u << bit);
			le_put16(raw.b + 10, f);
			reseal(raw.b, n);
			bool ok = (f == MSGF_REPAIR && (t == MSG_REPL_PUT || t == MSG_REPL_PUT_ACK)) ||
				  (f == MSGF_IF_COVERED && t == MSG_REPL_PUT) ||
				  (f == MSGF_CLOCK_ONLY && (t == MSG_REPL_GET || t == MSG_REPL_GET_REPLY));
			CHECK_EQ(decode_raw(n), ok ? 0 : -EBADMSG);
		}
		/* A byte left over in the body. */
		raw_valid(t);
		r8(0);
		CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
		/* Addressed to another node: the codec has no say. */
		raw_valid(t);
		le_put16(raw.b + 14, 999);
		reseal(raw.b, n);
		struct msg d;
		CHECK_EQ(decode_exact(raw.b, n, &d, NULL), 0);
		CHECK_EQ(d.to, 999);
		CHECK_EQ(d.from, 1);
	}
	/* Statuses. */
	const uint8_t st_types[] = { MSG_REPL_PUT_ACK, MSG_FWD_PUT_REPLY, MSG_FLUSH_ACK, MSG_COUNT_REPLY };
	for (unsigned i = 0; i < 4; i++) {
		for (unsigned st = 0; st < 256; st++) {
			raw_head(st_types[i], 0, 1, 2);
			r8((uint8_t)st);
			if (i >= 2)
				r64(0);
			CHECK_EQ(decode_raw(raw_seal()), st <= MSG_ST_MAX ? 0 : -EBADMSG);
		}
	}
	for (unsigned st = 0; st < 256; st++) {
		raw_head(MSG_REPL_GET_REPLY, 0, 1, 2);
		r8((uint8_t)st), r16(0), r32(0);
		CHECK_EQ(decode_raw(raw_seal()), st != MSG_ST_OK && st <= MSG_ST_MAX ? 0 : -EBADMSG);
		raw_head(MSG_REPL_GET_REPLY, 0, 1, 2);
		r8((uint8_t)st), r16(2), rbytes(meta_buf, 2), r32(0);
		CHECK_EQ(decode_raw(raw_seal()), st == MSG_ST_OK ? 0 : -EBADMSG);
		raw_head(MSG_REPL_GET_REPLY, 0, 1, 2);
		r8((uint8_t)st), r16(0), r32(1), r8(9);
		CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	}
	/* FWD_PUT: value flags, tombstone with a value, a delta without a
	 * counter, context order. */
	for (unsigned f = 0; f < 256; f++)
		CHECK_EQ(decode_raw(raw_fwd(4, 2, (uint8_t)f, 0, 0)),
			 f == 0 || f == DVV_VAL_TOMB || f == DVV_VAL_COUNTER ? 0 : -EBADMSG);
	CHECK_EQ(decode_raw(raw_fwd(4, 2, DVV_VAL_TOMB, 0, 1)), -EBADMSG);
	CHECK_EQ(decode_raw(raw_fwd(4, 2, DVV_VAL_COUNTER, 0, 1)), 0);
	size_t n = raw_fwd(4, 2, 0, 0, 1);
	le_put64(raw.b + MSG_HDR_BYTES + 2 + 4 + 1 + 1 + 4 + 8, 1); /* delta */
	reseal(raw.b, n);
	CHECK_EQ(decode_raw(n), -EBADMSG);
	n = raw_fwd(4, 2, 0, 3, 1);
	const size_t ctx_off = MSG_HDR_BYTES + 2 + 4 + 1 + 1 + 4 + 8 + 8 + 2;
	le_put64(raw.b + ctx_off + 16, 100); /* equal to the first actor */
	reseal(raw.b, n);
	CHECK_EQ(decode_raw(n), -EBADMSG);
	le_put64(raw.b + ctx_off + 16, 99); /* below it */
	reseal(raw.b, n);
	CHECK_EQ(decode_raw(n), -EBADMSG);
	le_put64(raw.b + ctx_off + 16, 101);
	reseal(raw.b, n);
	CHECK_EQ(decode_raw(n), 0);
	/* FLUSH: a keyspace and an id; FLUSH_STATE: at most 16 ids. */
	raw_head(MSG_FLUSH, 0, 1, 2), r16(0), r64(1), r64(0);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	raw_head(MSG_FLUSH, 0, 1, 2), r16(1), r64(0), r64(0);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	for (unsigned k = 0; k <= MSG_FLUSH_KS_MAX + 1; k++) {
		raw_head(MSG_FLUSH_STATE, 0, 1, 2), r8((uint8_t)k);
		for (unsigned i = 0; i < k; i++)
			r64(i), r64(i);
		CHECK_EQ(decode_raw(raw_seal()), k <= MSG_FLUSH_KS_MAX ? 0 : -EBADMSG);
	}
	raw_head(MSG_FLUSH_STATE, 0, 1, 2), r8(2), r64(1), r64(1), r64(2); /* one until short */
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	/* SCAN: keyspace, limit, pos <= end. */
	const struct { uint8_t ks; uint16_t limit; uint64_t pos, end; int want; } sc[] = {
		{ 0, 1, 0, 0, 0 }, { 15, MSG_SCAN_KEYS_MAX, 0, UINT64_MAX, 0 }, { 16, 1, 0, 0, -EBADMSG },
		{ 0, 0, 0, 0, -EBADMSG }, { 0, MSG_SCAN_KEYS_MAX + 1, 0, 0, -EBADMSG }, { 0, 1, 2, 1, -EBADMSG },
	};
	for (unsigned i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		raw_head(MSG_SCAN, 0, 1, 2), r8(sc[i].ks), r16(sc[i].limit), r64(sc[i].pos), r64(sc[i].end);
		CHECK_EQ(decode_raw(raw_seal()), sc[i].want);
	}
	raw_head(MSG_COUNT, 0, 1, 2), r8(16);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	/* SCAN_REPLY: records that add up to the body, done 0/1, a failure with
	 * nothing else. */
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(0), r8(2), r64(0), r16(0);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(0), r8(0), r64(0), r16(2), r16(1), r8('a');
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG); /* one record short */
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(0), r8(0), r64(0), r16(1), r16(2), r8('a');
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG); /* a key past the end */
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(0), r8(0), r64(0), r16(1), r16(1), r8('a'), r8('b');
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG); /* a byte after the last record */
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(0), r8(0), r64(0), r16(1), r16(MSG_SCAN_KEY_MAX + 1);
	rbytes(key_buf, MSG_SCAN_KEY_MAX + 1);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(0), r8(0), r64(0), r16(1), r16(MSG_SCAN_KEY_MAX);
	rbytes(key_buf, MSG_SCAN_KEY_MAX);
	CHECK_EQ(decode_raw(raw_seal()), 0);
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(MSG_ST_BUSY), r8(0), r64(1), r16(0);
	CHECK_EQ(decode_raw(raw_seal()), -EBADMSG);
	raw_head(MSG_SCAN_REPLY, 0, 1, 2), r8(MSG_ST_BUSY), r8(0), r64(0), r16(0);
	CHECK_EQ(decode_raw(raw_seal()), 0);
	test_end("fields");
}

static void test_ctx(void)
{
	test_begin("ctx");
	for (unsigned iter = 0; iter < 200; iter++) {
		struct dvv_vv vv = { .n = (uint16_t)rnd(DVV_ENTRIES_MAX + 1) };
		uint64_t a = rnd(10);
		for (uint16_t i = 0; i < vv.n; i++) {
			a += 1 + rnd(1ull << 50);
			vv.e[i].actor = a;
			vv.e[i].counter = test_rand(&rng);
		}
		uint8_t cbuf[MSG_CTX_BYTES_MAX];
		uint8_t key[] = { 1, 'x' };
		struct msg m = { .type = MSG_FWD_PUT, .from = 1, .to = 2, .key = key, .key_len = 2, .w = 1 };
		msg_ctx_set(&m, &vv, cbuf);
		size_t len;
		uint8_t *buf = encode(&m, &len);
		struct msg d;
		CHECK_EQ(msg_decode(buf, len, &d), 0);
		struct dvv_vv out;
		memset(&out, 0xa5, sizeof(out));
		msg_ctx_get(&d, &out);
		CHECK_EQ(out.n, vv.n);
		for (uint16_t i = 0; i < vv.n; i++)
			CHECK(out.e[i].actor == vv.e[i].actor && out.e[i].counter == vv.e[i].counter);
		free(buf);
	}
	test_end("ctx");
}

static void test_names(void)
{
	test_begin("names");
	const char *want[] = { "UNKNOWN", "REPL_PUT", "REPL_PUT_ACK", "REPL_GET", "REPL_GET_REPLY",
			       "FWD_PUT", "FWD_PUT_REPLY", "PING", "PONG", "FLUSH", "FLUSH_ACK",
			       "FLUSH_STATE_GET", "FLUSH_STATE", "SCAN", "SCAN_REPLY", "COUNT", "COUNT_REPLY",
			       "UNKNOWN" };
	for (unsigned t = 0; t < sizeof(want) / sizeof(want[0]); t++)
		CHECK(strcmp(msg_type_name((uint8_t)t), want[t]) == 0);
	CHECK(strcmp(msg_type_name(255), "UNKNOWN") == 0);
	test_end("names");
}

int main(void)
{
	rng = test_seed(0x6d7367);
	vals_buf = malloc(DV_VALUE_BYTES_MAX + 1);
	raw.b = calloc(1, MSG_BYTES_MAX + 64);
	keys_buf = malloc(MSG_SCAN_KEYS_MAX * (2 + MSG_SCAN_KEY_MAX));
	CHECK(vals_buf != NULL && raw.b != NULL && keys_buf != NULL);
	fill(vals_buf, DV_VALUE_BYTES_MAX + 1);
	test_layout();
	test_roundtrip();
	test_peek_key();
	test_corruption();
	test_limits();
	test_fields();
	test_ctx();
	test_names();
	free(raw.b);
	free(keys_buf);
	free(vals_buf);
	return test_soft_failures() ? 1 : 0;
}
