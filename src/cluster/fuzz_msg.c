/* fuzz_msg.c - libFuzzer target for the internode codec (msg.h) and the
 * authenticated session (wire.h).
 *
 * `make fuzz` builds build-fuzz/fuzz_msg (clang, ASan+UBSan) and runs it
 * FUZZ_SECONDS on a copy of tests/cluster/corpus_msg; tests/cluster/
 * fuzz_msg.sh runs it briefly in the test suite. FUZZ_MSG_WRITE_SEEDS=DIR
 * writes the seed corpus (the handshake seeds depend on the fixed key and
 * nonces below) and exits.
 *
 * The first input byte picks a mode for the rest, which sits in an
 * allocation of exactly its size (ASan sees any read past it). msg_decode
 * runs on the rest in every mode (as it is, then with its checksum and
 * body_len made right, which a fuzzer could not find by itself), and on
 * every verified frame's payload:
 * - decode: 0 or -EBADMSG; on 0 every view inside the buffer, and
 *   msg_encode of the result gives the same bytes (decode is strict).
 * - stream into a fresh acceptor, a fresh connector (its HELLO sent), and
 *   into both sides of a session the harness completed: each result checked
 *   (NEED consumes nothing and wire_next_bytes says more is needed; a
 *   consumed unit is exactly wire_next_bytes long and every strict prefix of
 *   it is NEED on a copy of the session; an error kills the session for
 *   good; a frame lies inside the input).
 *   Every verified frame's payload is read as a batch (wire_batch_count,
 *   wire_batch_next: each message inside the payload, at least one byte,
 *   the walk ending exactly at its end, or the batch refused) and each of
 *   its messages decoded.
 * - seal: the rest cut into messages, sealed where they lie (each in its
 *   own allocation with exactly the room wire_seal_msgs may use) in
 *   batches of one or more, optionally one bit flipped, fed to the other
 *   side: without a flip every message comes back, in order, in its frame;
 *   with one, every frame before the flip comes back and none holding it
 *   or after it does.
 * - batch: the rest as a frame's payload: wire_batch_count against a walk
 *   written from wire.h's text, each message decoded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/hash.h"
#include "base/le.h"
#include "cluster/msg.h"
#include "cluster/wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum mode { M_DECODE, M_ACCEPTOR, M_CONNECTOR, M_UP_ACCEPTOR, M_UP_CONNECTOR, M_SEAL, M_BATCH, M_COUNT };

#define CLUSTER_ID 0x636c7573746572ull
#define RING_DIGEST 0x72696e67646967ull
#define ID_C 3
#define ID_A 5

static uint8_t key[WIRE_KEY_BYTES];
static const uint8_t nonce_c[WIRE_NONCE_BYTES] = "connector nonce, fixed for seeds";
static const uint8_t nonce_a[WIRE_NONCE_BYTES] = "acceptor nonce, fixed for seeds.";

static uint8_t *copy_of(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	DV_ASSERT(c != NULL);
	if (n)
		memcpy(c, p, n);
	return c;
}

static int inside(const uint8_t *v, size_t n, const uint8_t *buf, size_t len)
{
	return n == 0 || (v >= buf && v + n <= buf + len);
}

static void check_decode(const uint8_t *buf, size_t len)
{
	struct msg m;
	int r = msg_decode(buf, len, &m);
	if (r != 0) {
		DV_ASSERT(r == -EBADMSG);
		return;
	}
	DV_ASSERT(inside(m.key, m.key_len, buf, len) && inside(m.meta, m.meta_len, buf, len));
	DV_ASSERT(inside(m.vals, m.vals_len, buf, len) && inside(m.ctx, 16u * m.ctx_n, buf, len));
	DV_ASSERT(inside(m.keys, m.keys_len, buf, len) && m.nids <= MSG_FLUSH_KS_MAX);
	DV_ASSERT(msg_type_name(m.type)[0] != 'U');
	if (m.type == MSG_SCAN_REPLY) {
		uint32_t off = 0;
		const uint8_t *k;
		uint16_t kl;
		unsigned n = 0;
		while (msg_scan_key(&m, &off, &k, &kl))
			DV_ASSERT(++n <= m.nkeys && inside(k, kl, buf, len) && kl <= MSG_SCAN_KEY_MAX);
		DV_ASSERT(n == m.nkeys && off == m.keys_len);
	}
	if (m.type == MSG_FWD_PUT) {
		struct dvv_vv vv;
		msg_ctx_get(&m, &vv);
		for (unsigned i = 1; i < vv.n; i++)
			DV_ASSERT(vv.e[i].actor > vv.e[i - 1].actor);
	}
	DV_ASSERT(msg_encoded_bytes(&m) == len);
	uint8_t *again = malloc(len);
	DV_ASSERT(again != NULL);
	DV_ASSERT(msg_encode(&m, again) == len);
	DV_ASSERT(memcmp(again, buf, len) == 0);
	free(again);
}

/* A fuzzer cannot forge an XXH3 checksum: decode the input as it is, then
 * with its checksum made right, then with body_len made right too, so the
 * body checks behind the checksum get explored. */
static void check_decode_fixed(const uint8_t *buf, size_t len)
{
	check_decode(buf, len);
	if (len < MSG_HDR_BYTES)
		return;
	uint8_t *c = copy_of(buf, len);
	le_put64(c, dv_checksum64(c + 8, len - 8));
	check_decode(c, len);
	le_put32(c + 32, (uint32_t)(len - MSG_HDR_BYTES));
	le_put64(c, dv_checksum64(c + 8, len - 8));
	check_decode(c, len);
	free(c);
}

/* A payload as a batch: count against a walk from the text (records
 * u32 len | msg, len >= 1, filling the payload; at most
 * WIRE_BATCH_MSGS_MAX, and one alone when the payload is over
 * WIRE_BATCH_BYTES), every message inside it and decoded. */
static void check_batch(const uint8_t *pl, size_t len)
{
	int want = len == 0 ? -EBADMSG : 0;
	for (size_t o = 0; want >= 0 && o < len;) {
		uint32_t n = len - o >= 4 ? le_get32(pl + o) : 0;
		if (len - o < 4 || n == 0 || n > len - o - 4) {
			want = -EBADMSG;
			break;
		}
		o += 4 + (size_t)n;
		want++;
	}
	if (want > (int)WIRE_BATCH_MSGS_MAX || (want > 1 && len > WIRE_BATCH_BYTES))
		want = -EBADMSG;
	int count = wire_batch_count(pl, len);
	DV_ASSERT(count == want);
	if (count < 0)
		return;
	size_t off = 0;
	for (int i = 0; i < count; i++) {
		const uint8_t *m;
		size_t ml;
		DV_ASSERT(wire_batch_next(pl, len, &off, &m, &ml) == 1);
		DV_ASSERT(ml >= 1 && inside(m, ml, pl, len) && m == pl + off - ml);
		check_decode(m, ml);
	}
	const uint8_t *m;
	size_t ml;
	DV_ASSERT(off == len && wire_batch_next(pl, len, &off, &m, &ml) == 0);
}

static void pair_init(struct wire *c, struct wire *a)
{
	wire_init(c, WIRE_CONNECTOR, key, CLUSTER_ID, RING_DIGEST, ID_C, ID_A, nonce_c);
	wire_init(a, WIRE_ACCEPTOR, key, CLUSTER_ID, RING_DIGEST, ID_A, 0, nonce_a);
}

/* Feeds one whole handshake message; it must be consumed whole. */
static int feed_whole(struct wire *w, uint8_t *b, size_t n)
{
	size_t used, plen;
	uint8_t *pl;
	int r = wire_feed(w, b, n, &used, &pl, &plen);
	DV_ASSERT(r < 0 || used == n);
	return r;
}

/* The handshake between the fixed pair; c_out/a_out (optional) collect
 * what each side sent. */
static void handshake(struct wire *c, struct wire *a, uint8_t *c_out, size_t *c_len, uint8_t *a_out, size_t *a_len)
{
	uint8_t hc[WIRE_HANDSHAKE_OUT_MAX], hs[WIRE_HANDSHAKE_OUT_MAX], pc[WIRE_HANDSHAKE_OUT_MAX];
	pair_init(c, a);
	size_t nc = wire_handshake_out(c, hc);
	DV_ASSERT(feed_whole(a, hc, nc) == WIRE_STEP);
	size_t ns = wire_handshake_out(a, hs);
	DV_ASSERT(feed_whole(c, hs, ns) == WIRE_READY);
	size_t np = wire_handshake_out(c, pc);
	DV_ASSERT(feed_whole(a, pc, np) == WIRE_READY);
	DV_ASSERT(wire_up(c) && wire_up(a) && a->peer_id == ID_C);
	if (c_out) {
		memcpy(c_out, hc, nc);
		memcpy(c_out + nc, pc, np);
		*c_len = nc + np;
	}
	if (a_out) {
		memcpy(a_out, hs, ns);
		*a_len = ns;
	}
}

/* The strict prefixes of a consumed unit are NEED on a copy of the
 * session as it was (a few of them for long units). */
static void check_prefixes(const struct wire *before, uint8_t *buf, size_t used)
{
	size_t step = used > 64 ? used / 16 : 1;
	for (size_t k = 0; k < used; k += step) {
		struct wire w = *before;
		size_t u = 1, plen;
		uint8_t *pl;
		DV_ASSERT(wire_feed(&w, buf, k, &u, &pl, &plen) == WIRE_NEED && u == 0);
	}
}

/* Everything in buf into w, as a driver would; returns frames delivered. */
static unsigned feed_stream(struct wire *w, uint8_t *buf, size_t len)
{
	size_t off = 0;
	unsigned frames = 0;
	for (size_t iter = 0; iter <= len; iter++) {
		struct wire before = *w;
		size_t want = wire_next_bytes(w, buf + off, len - off);
		size_t used = 1, plen;
		uint8_t *pl;
		int r = wire_feed(w, buf + off, len - off, &used, &pl, &plen);
		if (r < 0) {
			DV_ASSERT(used == 0 && w->state == WIRE_DEAD && !wire_up(w));
			DV_ASSERT(wire_feed(w, buf, len, &used, &pl, &plen) == -EPROTO && used == 0);
			return frames;
		}
		if (r == WIRE_NEED) {
			DV_ASSERT(used == 0 && want > len - off && want <= WIRE_FRAME_BYTES_MAX);
			return frames;
		}
		DV_ASSERT(used > 0 && used <= len - off && used == want);
		check_prefixes(&before, buf + off, used);
		if (r == WIRE_FRAME) {
			DV_ASSERT(wire_up(w) && pl == buf + off + WIRE_FRAME_HEAD);
			DV_ASSERT(plen + WIRE_FRAME_HEAD + WIRE_FRAME_TAIL == used);
			check_decode(pl, plen);
			check_batch(pl, plen);
			frames++;
		} else {
			DV_ASSERT(r == WIRE_STEP || r == WIRE_READY);
			uint8_t hs[WIRE_HANDSHAKE_OUT_MAX];
			DV_ASSERT(wire_handshake_out(w, hs) <= WIRE_HANDSHAKE_OUT_MAX);
		}
		off += used;
	}
	DV_ASSERT(!"feed_stream: no progress");
	return frames;
}

/* Cuts in into messages (u16 length prefixes: the low 15 bits the length,
 * clipped, 0 meaning 1; the top bit ends the frame), seals them on tx in
 * batches (a batch also ends where wire_seal_msgs's bounds say), each
 * message in an allocation with exactly the room sealing may use; flips
 * one bit of the stream if asked, and feeds rx. */
static void seal_mode(const uint8_t *in, size_t n)
{
	if (n < 4)
		return;
	struct wire c, a;
	handshake(&c, &a, NULL, NULL, NULL, NULL);
	struct wire *tx = in[0] & 1 ? &a : &c, *rx = in[0] & 1 ? &c : &a;
	int flip = (in[0] & 2) != 0;
	size_t flip_at = le_get16(in + 1);
	in += 3, n -= 3;
	enum { MSGS = 300, FRAMES = 64 };
	static uint8_t *bufs[MSGS], *msgs[MSGS];
	static uint32_t lens[MSGS];
	static size_t moffs[MSGS];
	static bool made[MSGS]; /* a length of 0: the one byte 0x42 */
	unsigned nm = 0;
	unsigned fstart[FRAMES + 1], nf = 0; /* frame f holds messages [fstart[f], fstart[f + 1]) */
	size_t starts[FRAMES], ends[FRAMES];
	size_t off = 0, payload = 0;
	fstart[0] = 0;
	while (off + 2 <= n && nm < MSGS && nf < FRAMES) {
		uint16_t h = le_get16(in + off);
		off += 2;
		size_t l = h & 0x7fffu;
		if (l > n - off)
			l = n - off;
		uint32_t ml = l ? (uint32_t)l : 1;
		unsigned inframe = nm - fstart[nf];
		if (inframe > 0 && (inframe == WIRE_BATCH_MSGS_MAX || payload + WIRE_BATCH_HEAD + ml > WIRE_BATCH_BYTES)) {
			fstart[++nf] = nm; /* the bounds close the frame */
			payload = 0;
			if (nf == FRAMES)
				break;
		}
		bufs[nm] = malloc(WIRE_SEAL_HEADROOM + ml + WIRE_SEAL_TAILROOM);
		DV_ASSERT(bufs[nm] != NULL);
		msgs[nm] = bufs[nm] + WIRE_SEAL_HEADROOM;
		made[nm] = l == 0;
		if (l)
			memcpy(msgs[nm], in + off, l);
		else
			msgs[nm][0] = 0x42;
		lens[nm] = ml;
		moffs[nm] = off;
		nm++;
		payload += WIRE_BATCH_HEAD + ml;
		off += l;
		if (h & 0x8000u) {
			fstart[++nf] = nm;
			payload = 0;
		}
	}
	if (nf < FRAMES && nm > fstart[nf])
		fstart[++nf] = nm;
	/* The stream: every frame's pieces, in order. */
	size_t cap = 0;
	for (unsigned i = 0; i < nm; i++)
		cap += WIRE_SEAL_HEADROOM + lens[i] + WIRE_SEAL_TAILROOM;
	uint8_t *stream = malloc(cap ? cap : 1);
	DV_ASSERT(stream != NULL);
	size_t slen = 0;
	for (unsigned f = 0; f < nf; f++) {
		unsigned first = fstart[f], cnt = fstart[f + 1] - first;
		DV_ASSERT(cnt >= 1 && cnt <= WIRE_BATCH_MSGS_MAX);
		size_t fl = wire_seal_msgs(tx, msgs + first, lens + first, cnt);
		starts[f] = slen;
		for (unsigned i = 0; i < cnt; i++) {
			uint32_t lead = wire_piece_lead(i), trail = wire_piece_trail(i, cnt);
			memcpy(stream + slen, msgs[first + i] - lead, lead + lens[first + i] + trail);
			slen += lead + lens[first + i] + trail;
		}
		ends[f] = slen;
		DV_ASSERT(ends[f] - starts[f] == fl);
	}
	if (flip && slen > 0) {
		flip_at %= slen * 8;
		stream[flip_at / 8] ^= (uint8_t)(1u << (flip_at % 8));
	}
	uint8_t *exact = copy_of(stream, slen);
	free(stream);
	size_t pos = 0;
	unsigned got = 0;
	for (unsigned iter = 0; iter <= nf; iter++) {
		size_t used = 0, plen;
		uint8_t *pl;
		int r = wire_feed(rx, exact + pos, slen - pos, &used, &pl, &plen);
		if (r != WIRE_FRAME) {
			DV_ASSERT(r < 0 || r == WIRE_NEED);
			break;
		}
		DV_ASSERT(got < nf && starts[got] == pos);
		/* A delivered frame never holds the flipped bit. */
		DV_ASSERT(!flip || ends[got] <= flip_at / 8);
		unsigned first = fstart[got], cnt = fstart[got + 1] - first;
		DV_ASSERT(wire_batch_count(pl, plen) == (int)cnt);
		size_t boff = 0;
		for (unsigned i = 0; i < cnt; i++) {
			const uint8_t *m;
			size_t ml;
			DV_ASSERT(wire_batch_next(pl, plen, &boff, &m, &ml) == 1);
			DV_ASSERT(ml == lens[first + i]);
			DV_ASSERT(made[first + i] ? m[0] == 0x42 : memcmp(m, in + moffs[first + i], ml) == 0);
		}
		DV_ASSERT(boff == plen);
		pos += used;
		got++;
	}
	if (!flip)
		DV_ASSERT(got == nf && pos == slen);
	else
		for (unsigned i = 0; i < nf; i++)
			DV_ASSERT(ends[i] > flip_at / 8 || i < got); /* every frame before the flip came */
	for (unsigned i = 0; i < nm; i++)
		free(bufs[i]);
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	enum mode mode = (enum mode)(data[0] % M_COUNT);
	uint8_t *buf = copy_of(data + 1, size - 1);
	size_t n = size - 1;
	check_decode_fixed(buf, n);
	struct wire c, a;
	uint8_t hs[WIRE_HANDSHAKE_OUT_MAX];
	switch (mode) {
	case M_DECODE:
		break;
	case M_ACCEPTOR:
		pair_init(&c, &a);
		feed_stream(&a, buf, n);
		break;
	case M_CONNECTOR:
		pair_init(&c, &a);
		DV_ASSERT(wire_handshake_out(&c, hs) == WIRE_HELLO_BYTES);
		feed_stream(&c, buf, n);
		break;
	case M_UP_ACCEPTOR:
		handshake(&c, &a, NULL, NULL, NULL, NULL);
		feed_stream(&a, buf, n);
		break;
	case M_UP_CONNECTOR:
		handshake(&c, &a, NULL, NULL, NULL, NULL);
		feed_stream(&c, buf, n);
		break;
	case M_BATCH:
		check_batch(buf, n);
		break;
	default:
		seal_mode(buf, n);
		break;
	}
	free(buf);
	return 0;
}

/* Seeds: every message type, and the handshakes and frames of the fixed
 * pair, so the fuzzer starts past the proofs. */
static void write_seed(const char *dir, const char *name, enum mode mode, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%d_%s", dir, (int)mode, name);
	FILE *f = fopen(path, "wb");
	DV_ASSERT(f != NULL);
	uint8_t m = (uint8_t)mode;
	DV_ASSERT(fwrite(&m, 1, 1, f) == 1);
	DV_ASSERT(n == 0 || fwrite(p, 1, n, f) == n);
	DV_ASSERT(fclose(f) == 0);
}

static size_t seed_msg(uint8_t type, uint8_t *out)
{
	static const uint8_t skey[] = { 0, 'u', 's', 'e', 'r', ':', '4', '2' };
	static const uint8_t meta[24] = { 1, 1, 1, 0, 1, 0, 0, 0, 9 };
	static const uint8_t vals[] = "hello, siblings";
	static const uint8_t ctx[32] = { 1, 0, 0, 0, 0, 0, 1, 0, 7, 0, 0, 0, 0, 0, 0, 0,
					 1, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0 };
	static uint8_t keys[16];
	struct msg m = { .type = type, .from = ID_C, .to = ID_A, .req_id = 1000 + type, .hlc = 0x12345678ull << 16,
			 .epoch = 0x9e37u };
	switch (type) {
	case MSG_REPL_PUT:
		m.flags = MSGF_REPAIR | MSGF_IF_COVERED;
		m.key = skey, m.key_len = sizeof(skey), m.meta = meta, m.meta_len = sizeof(meta);
		m.vals = vals, m.vals_len = sizeof(vals) - 1;
		break;
	case MSG_REPL_GET:
		m.key = skey, m.key_len = sizeof(skey);
		break;
	case MSG_REPL_GET_REPLY:
		m.meta = meta, m.meta_len = sizeof(meta), m.vals = vals, m.vals_len = sizeof(vals) - 1;
		break;
	case MSG_FWD_PUT:
		m.key = skey, m.key_len = sizeof(skey), m.w = 2, m.timeout_ms = 5000, m.expire_ms = 0;
		m.ctx = ctx, m.ctx_n = 2, m.vals = vals, m.vals_len = sizeof(vals) - 1;
		break;
	case MSG_PING:
	case MSG_PONG:
		m.nonce = 0xfeedfacecafebeefull;
		break;
	case MSG_FLUSH:
		m.ks_mask = 3, m.id = 0x1234, m.until = 0x5678;
		break;
	case MSG_FLUSH_ACK:
		m.status = MSG_ST_STALE, m.id = 0x1234;
		break;
	case MSG_FLUSH_STATE_GET:
		break;
	case MSG_FLUSH_STATE:
		m.nids = 2, m.ids[0] = 0x1234, m.ids[1] = 0, m.untils[0] = 0x5678;
		break;
	case MSG_SCAN:
		m.keyspace = 1, m.limit = 10, m.pos = 1u << 20, m.end = UINT64_MAX >> 3;
		break;
	case MSG_SCAN_REPLY:
		m.next = 1u << 21, m.nkeys = 2, m.keys = keys;
		m.keys_len = msg_scan_key_put(keys, (const uint8_t *)"user:1", 6);
		m.keys_len += msg_scan_key_put(keys + m.keys_len, (const uint8_t *)"k", 1);
		break;
	case MSG_COUNT:
		m.keyspace = 2;
		break;
	case MSG_COUNT_REPLY:
		m.count = 99;
		break;
	default:
		m.status = type == MSG_REPL_PUT_ACK ? MSG_ST_UNCOVERED : MSG_ST_BUSY;
		break;
	}
	return msg_encode(&m, out);
}

static void write_seeds(const char *dir)
{
	static uint8_t msgs[MSG_TYPE_MAX + 1][256];
	size_t mlen[MSG_TYPE_MAX + 1];
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_TYPE_MAX; t++) {
		mlen[t] = seed_msg(t, msgs[t]);
		DV_ASSERT(mlen[t] <= sizeof(msgs[t]));
		char name[64];
		snprintf(name, sizeof(name), "msg_%s", msg_type_name(t));
		write_seed(dir, name, M_DECODE, msgs[t], mlen[t]);
	}
	/* Handshake bytes of each side, then frames carrying messages. */
	static uint8_t cs[8192], as[8192], up_c[8192], up_a[8192];
	size_t clen, alen, uclen = 0, ualen = 0;
	struct wire c, a;
	handshake(&c, &a, cs, &clen, as, &alen);
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_TYPE_MAX; t++) {
		struct wire *tx = t % 2 ? &c : &a;
		uint8_t *dst = t % 2 ? up_c + uclen : up_a + ualen;
		size_t pl = wire_batch_put(dst + WIRE_FRAME_HEAD, msgs[t], (uint32_t)mlen[t]);
		size_t fl = wire_seal(tx, dst, pl);
		*(t % 2 ? &uclen : &ualen) += fl;
	}
	DV_ASSERT(clen + uclen <= sizeof(cs) && alen + ualen <= sizeof(as));
	write_seed(dir, "frames_c2s", M_UP_ACCEPTOR, up_c, uclen);
	write_seed(dir, "frames_s2c", M_UP_CONNECTOR, up_a, ualen);
	memcpy(cs + clen, up_c, uclen);
	memcpy(as + alen, up_a, ualen);
	write_seed(dir, "session_c2s", M_ACCEPTOR, cs, clen + uclen);
	write_seed(dir, "session_s2c", M_CONNECTOR, as, alen + ualen);
	/* The seeds get past the proofs: every frame verifies in its mode (the
	 * types alternate sides: half each). */
	_Static_assert(MSG_TYPE_MAX % 2 == 0, "as many types on each side");
	pair_init(&c, &a);
	DV_ASSERT(feed_stream(&a, cs, clen + uclen) == MSG_TYPE_MAX / 2 && wire_up(&a));
	uint8_t hs[WIRE_HANDSHAKE_OUT_MAX];
	DV_ASSERT(wire_handshake_out(&c, hs) == WIRE_HELLO_BYTES);
	DV_ASSERT(feed_stream(&c, as, alen + ualen) == MSG_TYPE_MAX / 2 && wire_up(&c));
	handshake(&c, &a, NULL, NULL, NULL, NULL);
	DV_ASSERT(feed_stream(&a, up_c, uclen) == MSG_TYPE_MAX / 2 && feed_stream(&c, up_a, ualen) == MSG_TYPE_MAX / 2);
	write_seed(dir, "hello_c", M_ACCEPTOR, cs, WIRE_HELLO_BYTES);
	/* A batch of every message type, as a payload. */
	static uint8_t batch[8192];
	size_t bl = 0;
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_TYPE_MAX; t++)
		bl += wire_batch_put(batch + bl, msgs[t], (uint32_t)mlen[t]);
	DV_ASSERT(bl <= sizeof(batch) && wire_batch_count(batch, bl) == (int)MSG_TYPE_MAX);
	write_seed(dir, "batch", M_BATCH, batch, bl);
	/* Seal mode: flags byte, flip position, then u16-prefixed messages (the
	 * top bit ends a frame): two frames of two messages each. */
	uint8_t s[512];
	size_t sl = 3;
	s[0] = 0, le_put16(s + 1, 0);
	for (uint8_t t = MSG_REPL_PUT; t <= MSG_REPL_GET_REPLY; t++) {
		le_put16(s + sl, (uint16_t)(mlen[t] | (t % 2 == 0 ? 0x8000u : 0)));
		memcpy(s + sl + 2, msgs[t], mlen[t]);
		sl += 2 + mlen[t];
	}
	DV_ASSERT(sl <= sizeof(s));
	write_seed(dir, "seal", M_SEAL, s, sl);
	s[0] = 3, le_put16(s + 1, 700);
	write_seed(dir, "seal_flip", M_SEAL, s, sl);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	DV_ASSERT(wire_key_from_secret("fuzz_msg: a fixed cluster secret", 32, key) == 0);
	const char *dir = getenv("FUZZ_MSG_WRITE_SEEDS");
	if (dir && *dir) {
		write_seeds(dir);
		exit(0);
	}
	return 0;
}
