/* test_wire.c - the authenticated internode session (src/cluster/wire.h).
 *
 * Two sessions connected through memory buffers, like a driver: each side's
 * handshake output and sealed frames go to an outbox, delivered to the other
 * side whole, byte by byte or in random chunks, and fed until WIRE_NEED.
 * - handshake and frames both ways in every chunking (frames sealed by the
 *   connector right after its READY, pipelined behind its proof), up to a
 *   WIRE_PAYLOAD_MAX payload: payloads and order equal, peer ids learned.
 * - a peer built from wire.h's text alone (BLAKE2b and ChaCha20-Poly1305
 *   through libsodium) talks to a real session: the documented format is
 *   the real one; the frame tag also equals a known answer computed by
 *   another implementation (OpenSSL) and the construction spelled out
 *   (ChaCha20 block 0 keying Poly1305).
 * - tags that are real but another frame's (the previous or next seq, the
 *   other direction's, a frame turned back to its sender) and a zero tag
 *   are refused.
 * - refusals, each with its documented error and the session dead after
 *   (wire_up false, keys wiped, every later feed -EPROTO): wrong secret on
 *   either side (-EACCES at the proof), another cluster (-EXDEV, both
 *   sides), another ring digest (-ENXIO, both sides), an unexpected peer id (-EACCES: other, 0, our own), a replayed
 *   frame, a reordered pair, a dropped frame, every bit of a frame flipped
 *   (length, payload, tag; both directions) -EBADMSG (or -EMSGSIZE when the
 *   flip makes the length too large), frames before the handshake
 *   completes (no frame ever delivered), an oversized length refused from
 *   its 4 bytes, reflected HELLOs (own id, own nonce, a crossed dial).
 * - batches (version 2): messages sealed where they lie by wire_seal_msgs
 *   (1 to WIRE_BATCH_MSGS_MAX of them, a large one alone) go on the wire as
 *   their pieces and equal, byte for byte, the frame built from wire.h's
 *   text; the receiver gets them back in order (wire_batch_count,
 *   wire_batch_next); every malformed batch is refused (empty, a record
 *   head cut short, a length of 0 or past the end, trailing bytes, more
 *   messages or bytes than a sender may seal) while the limits themselves
 *   pass; a batched frame replayed, or with any bit flipped, is refused.
 * DV_SEED=<n> replays the random parts.
 */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "cluster/wire.h"
#include "testing.h"

static uint64_t rng;
static uint64_t rnd(uint64_t n) { return n ? test_rand(&rng) % n : 0; }

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)test_rand(&rng);
}

struct bytes {
	uint8_t *p;
	size_t n, cap;
};

static void append(struct bytes *b, const uint8_t *src, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		CHECK(b->p != NULL);
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, src, n);
	b->n += n;
}

static void consume(struct bytes *b, size_t n)
{
	CHECK(n <= b->n);
	if (n == 0)
		return;
	memmove(b->p, b->p + n, b->n - n);
	b->n -= n;
}

#define GOT_MAX 256

struct side {
	struct wire w;
	struct bytes rx;  /* received, not consumed yet */
	struct bytes out; /* to the peer */
	int err;
	unsigned steps, readies, frames;
	struct bytes got[GOT_MAX];
};

static void side_free(struct side *s)
{
	free(s->rx.p);
	free(s->out.p);
	for (unsigned i = 0; i < GOT_MAX; i++)
		free(s->got[i].p);
	memset(s, 0, sizeof(*s));
}

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void emit(struct side *s)
{
	uint8_t hs[WIRE_HANDSHAKE_OUT_MAX];
	size_t n = wire_handshake_out(&s->w, hs);
	CHECK(n <= WIRE_HANDSHAKE_OUT_MAX);
	append(&s->out, hs, n);
	CHECK_EQ(wire_handshake_out(&s->w, hs), 0); /* due once */
}

/* Feed s everything it has until NEED or an error. */
static void drain(struct side *s)
{
	while (s->err == 0) {
		size_t used = 99, plen = 99;
		uint8_t *pl = (uint8_t *)&used;
		size_t want = wire_next_bytes(&s->w, s->rx.p, s->rx.n);
		int r = wire_feed(&s->w, s->rx.p, s->rx.n, &used, &pl, &plen);
		if (r < 0) {
			CHECK_EQ(used, 0);
			CHECK(s->w.state == WIRE_DEAD && !wire_up(&s->w));
			CHECK(zero(s->w.k_send, WIRE_KEY_BYTES) && zero(s->w.k_recv, WIRE_KEY_BYTES));
			CHECK(zero(s->w.key, WIRE_KEY_BYTES));
			CHECK_EQ(wire_next_bytes(&s->w, s->rx.p, s->rx.n), 0);
			s->err = r;
			return;
		}
		if (r == WIRE_NEED) {
			CHECK_EQ(used, 0);
			CHECK(want > s->rx.n && want <= WIRE_FRAME_BYTES_MAX);
			return;
		}
		CHECK(used > 0 && used <= s->rx.n);
		CHECK_EQ(used, want); /* next_bytes told the exact size */
		if (r == WIRE_FRAME) {
			CHECK(wire_up(&s->w));
			CHECK(pl == s->rx.p + WIRE_FRAME_HEAD && plen + WIRE_FRAME_HEAD + WIRE_FRAME_TAIL == used);
			CHECK(s->frames < GOT_MAX);
			append(&s->got[s->frames++], pl, plen);
		} else {
			CHECK(r == WIRE_STEP || r == WIRE_READY);
			CHECK(pl == NULL && plen == 0);
			s->steps += r == WIRE_STEP;
			s->readies += r == WIRE_READY;
			CHECK(r != WIRE_READY || wire_up(&s->w));
		}
		consume(&s->rx, used);
		if (r != WIRE_FRAME)
			emit(s);
	}
}

enum chunking { WHOLE, BYTE, RANDOM };

/* Move from's outbox into to, chunk by chunk, feeding after each. */
static void transfer(struct side *from, struct side *to, enum chunking mode)
{
	size_t off = 0;
	while (off < from->out.n && to->err == 0) {
		size_t n = from->out.n - off;
		if (mode == BYTE)
			n = 1;
		else if (mode == RANDOM)
			n = 1 + (size_t)rnd(rnd(2) ? 64 : 70000);
		if (n > from->out.n - off)
			n = from->out.n - off;
		append(&to->rx, from->out.p + off, n);
		off += n;
		drain(to);
	}
	consume(&from->out, off);
}

static void pump(struct side *c, struct side *a, enum chunking mode)
{
	for (unsigned round = 0; round < 8 && (c->out.n || a->out.n); round++) {
		transfer(c, a, mode);
		transfer(a, c, mode);
		if (c->err || a->err)
			return;
	}
}

static uint8_t key_k[WIRE_KEY_BYTES], key_other[WIRE_KEY_BYTES];

#define TEST_RING 0x52494e4744494731ull /* every side's ring digest but where a test says otherwise */

static void side_init_ring(struct side *s, enum wire_role role, const uint8_t *key, uint64_t cluster, uint64_t ring,
			   uint16_t id, uint16_t expect)
{
	memset(s, 0, sizeof(*s));
	uint8_t nonce[WIRE_NONCE_BYTES];
	fill(nonce, sizeof(nonce));
	wire_init(&s->w, role, key, cluster, ring, id, expect, nonce);
	if (role == WIRE_CONNECTOR)
		emit(s);
}

static void side_init(struct side *s, enum wire_role role, const uint8_t *key, uint64_t cluster, uint16_t id,
		      uint16_t expect)
{
	side_init_ring(s, role, key, cluster, TEST_RING, id, expect);
}

static void pair(struct side *c, struct side *a)
{
	side_init(c, WIRE_CONNECTOR, key_k, 77, 1, 2);
	side_init(a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
}

static void connect_pair(struct side *c, struct side *a, enum chunking mode)
{
	pair(c, a);
	pump(c, a, mode);
	CHECK_EQ(c->err, 0);
	CHECK_EQ(a->err, 0);
	CHECK(wire_up(&c->w) && wire_up(&a->w));
	CHECK_EQ(a->w.peer_id, 1);
	CHECK_EQ(c->w.peer_id, 2);
}

static void seal_into(struct side *s, struct bytes *dst, const uint8_t *payload, size_t n)
{
	uint8_t *f = malloc(WIRE_FRAME_HEAD + n + WIRE_FRAME_TAIL);
	CHECK(f != NULL);
	if (n)
		memcpy(f + WIRE_FRAME_HEAD, payload, n);
	size_t len = wire_seal(&s->w, f, n);
	CHECK_EQ(len, WIRE_FRAME_HEAD + n + WIRE_FRAME_TAIL);
	CHECK_EQ(le_get32(f), n);
	CHECK(n == 0 || memcmp(f + WIRE_FRAME_HEAD, payload, n) == 0); /* sealed in place, not moved */
	append(dst, f, len);
	free(f);
}

static void send_frame(struct side *s, const uint8_t *payload, size_t n) { seal_into(s, &s->out, payload, n); }

static uint8_t *payload_buf; /* WIRE_PAYLOAD_MAX random bytes */

static size_t pick_len(unsigned i, bool big)
{
	if (big && i % 23 == 5)
		return i % 2 ? WIRE_PAYLOAD_MAX : (size_t)rnd(WIRE_PAYLOAD_MAX);
	if (i % 7 == 0)
		return 0;
	return (size_t)rnd(i % 3 ? 200 : 9000);
}

static void check_got(const struct side *s, unsigned from, const size_t *lens, const size_t *offs, unsigned n)
{
	CHECK_EQ(s->frames, from + n);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(s->got[from + i].n, lens[i]);
		CHECK(lens[i] == 0 || memcmp(s->got[from + i].p, payload_buf + offs[i], lens[i]) == 0);
	}
}

/* Handshake in mode, frames both ways; the connector's first frames are
 * sealed as soon as it is up, behind its proof. */
static void exchange(enum chunking mode, bool big)
{
	struct side c, a;
	pair(&c, &a);
	transfer(&c, &a, mode); /* HELLO_C */
	CHECK_EQ(a.steps, 1);
	CHECK(a.w.state == WIRE_WAIT_PROOF);
	transfer(&a, &c, mode); /* HELLO_S + proof_s */
	CHECK_EQ(c.readies, 1);
	CHECK(wire_up(&c.w) && !wire_up(&a.w));
	enum { NF = 40 };
	size_t lc[NF], oc[NF], la[NF], oa[NF];
	for (unsigned i = 0; i < 3; i++) {
		lc[i] = pick_len(i + 1, false);
		oc[i] = (size_t)rnd(WIRE_PAYLOAD_MAX - lc[i] + 1);
		send_frame(&c, payload_buf + oc[i], lc[i]);
	}
	transfer(&c, &a, mode); /* proof_c, then 3 frames */
	CHECK_EQ(a.err, 0);
	CHECK_EQ(a.readies, 1);
	CHECK(wire_up(&a.w));
	check_got(&a, 0, lc, oc, 3);
	for (unsigned i = 3; i < NF; i++) {
		lc[i] = pick_len(i, big);
		oc[i] = (size_t)rnd(WIRE_PAYLOAD_MAX - lc[i] + 1);
		la[i] = pick_len(i + 11, big);
		oa[i] = (size_t)rnd(WIRE_PAYLOAD_MAX - la[i] + 1);
		send_frame(&c, payload_buf + oc[i], lc[i]);
		send_frame(&a, payload_buf + oa[i], la[i]);
		if (rnd(3) == 0 || i + 1 == NF) {
			transfer(&c, &a, mode);
			transfer(&a, &c, mode);
		}
	}
	CHECK_EQ(a.err, 0);
	CHECK_EQ(c.err, 0);
	check_got(&a, 0, lc, oc, NF);
	check_got(&c, 0, la + 3, oa + 3, NF - 3);
	CHECK(a.w.seq_recv == NF && c.w.seq_send == NF && c.w.seq_recv == NF - 3);
	CHECK_EQ(a.rx.n, 0);
	CHECK_EQ(c.rx.n, 0);
	uint8_t hs[WIRE_HANDSHAKE_OUT_MAX];
	CHECK_EQ(wire_handshake_out(&a.w, hs), 0);
	CHECK_EQ(wire_handshake_out(&c.w, hs), 0);
	CHECK(zero(a.w.key, WIRE_KEY_BYTES) && zero(c.w.key, WIRE_KEY_BYTES)); /* K wiped once up */
	CHECK(memcmp(a.w.k_recv, c.w.k_send, WIRE_KEY_BYTES) == 0 && memcmp(a.w.k_send, c.w.k_recv, WIRE_KEY_BYTES) == 0);
	CHECK(memcmp(a.w.k_recv, a.w.k_send, WIRE_KEY_BYTES) != 0);
	side_free(&c);
	side_free(&a);
}

static void test_exchange(void)
{
	test_begin("exchange");
	exchange(WHOLE, true);
	exchange(BYTE, false);
	for (unsigned i = 0; i < 20; i++)
		exchange(RANDOM, i < 3);
	/* Two sessions of the same pair and key have different session keys. */
	struct side c1, a1, c2, a2;
	connect_pair(&c1, &a1, WHOLE);
	connect_pair(&c2, &a2, WHOLE);
	CHECK(memcmp(c1.w.k_send, c2.w.k_send, WIRE_KEY_BYTES) != 0);
	/* A frame of session 1 is refused on session 2. */
	send_frame(&c1, payload_buf, 10);
	free(c2.out.p);
	c2.out = c1.out;
	memset(&c1.out, 0, sizeof(c1.out));
	transfer(&c2, &a2, WHOLE);
	CHECK_EQ(a2.err, -EBADMSG);
	CHECK_EQ(a2.frames, 0);
	side_free(&c1), side_free(&a1), side_free(&c2), side_free(&a2);
	test_end("exchange");
}

/* wire.h's construction, written from its text. */
static void doc_mac(uint8_t *out, size_t outlen, const uint8_t *key, const char *label, const uint8_t *a, size_t alen,
		    const uint8_t *b, size_t blen)
{
	uint8_t msg[16 + 2 * (WIRE_HELLO_BYTES + WIRE_PROOF_BYTES)];
	size_t l = strlen(label);
	CHECK(l + alen + blen <= sizeof(msg));
	memcpy(msg, label, l);
	memcpy(msg + l, a, alen);
	memcpy(msg + l + alen, b, blen);
	CHECK_EQ(crypto_generichash(out, outlen, msg, l + alen + blen, key, WIRE_KEY_BYTES), 0);
}

static void doc_hello_ring(uint8_t *h, uint16_t id, uint64_t cluster, uint64_t ring, const uint8_t *nonce)
{
	memcpy(h, "DYNW", 4);
	le_put16(h + 4, 4);
	le_put16(h + 6, id);
	le_put64(h + 8, cluster);
	le_put64(h + 16, ring);
	memcpy(h + 24, nonce, WIRE_NONCE_BYTES);
}

static void doc_hello(uint8_t *h, uint16_t id, uint64_t cluster, const uint8_t *nonce)
{
	doc_hello_ring(h, id, cluster, TEST_RING, nonce);
}

static int feed_all(struct side *s, const uint8_t *b, size_t n)
{
	append(&s->rx, b, n);
	drain(s);
	return s->err;
}

/* A connector from the text: HELLO_C, then proof_c under key, to a real
 * acceptor. Returns the acceptor's error (0 when it went up). */
static int doc_connector(const uint8_t *key, struct side *a, uint8_t k_c2s[WIRE_KEY_BYTES])
{
	uint8_t hc[WIRE_HELLO_BYTES], nonce[WIRE_NONCE_BYTES];
	fill(nonce, sizeof(nonce));
	doc_hello(hc, 9, 77, nonce);
	side_init(a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
	CHECK_EQ(feed_all(a, hc, sizeof(hc)), 0);
	CHECK_EQ(a->out.n, WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	const uint8_t *hs = a->out.p;
	uint8_t ps[WIRE_PROOF_BYTES], pc[WIRE_PROOF_BYTES];
	doc_mac(ps, sizeof(ps), key_k, "acceptor", hc, WIRE_HELLO_BYTES, hs, WIRE_HELLO_BYTES);
	CHECK(memcmp(ps, hs + WIRE_HELLO_BYTES, WIRE_PROOF_BYTES) == 0); /* proof_s as documented */
	doc_mac(pc, sizeof(pc), key, "connector", hc, WIRE_HELLO_BYTES, hs, WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	doc_mac(k_c2s, WIRE_KEY_BYTES, key, "c2s", hc, WIRE_HELLO_BYTES, hs, WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	return feed_all(a, pc, sizeof(pc));
}

/* The frame tag as wire.h's text spells it out: Poly1305 keyed with the
 * first 32 bytes of ChaCha20(k, nonce, block 0), over the associated data,
 * zeros to a multiple of 16, u64 its length, u64 0. */
static void doc_tag_spelled(const uint8_t *k, uint64_t seq, const uint8_t *ad, size_t ad_len, uint8_t tag[16])
{
	uint8_t nonce[12], otk[32], lens[16], zeros[16] = { 0 };
	le_put64(nonce, seq);
	le_put32(nonce + 8, 0);
	CHECK_EQ(crypto_stream_chacha20_ietf(otk, sizeof(otk), nonce, k), 0);
	crypto_onetimeauth_poly1305_state st;
	CHECK_EQ(crypto_onetimeauth_poly1305_init(&st, otk), 0);
	CHECK_EQ(crypto_onetimeauth_poly1305_update(&st, ad, ad_len), 0);
	CHECK_EQ(crypto_onetimeauth_poly1305_update(&st, zeros, (16 - ad_len % 16) % 16), 0);
	le_put64(lens, ad_len);
	le_put64(lens + 8, 0);
	CHECK_EQ(crypto_onetimeauth_poly1305_update(&st, lens, 16), 0);
	CHECK_EQ(crypto_onetimeauth_poly1305_final(&st, tag), 0);
}

/* The frame as wire.h's text says: u32 len | payload | tag, the tag the
 * IETF ChaCha20-Poly1305 of an empty plaintext with u32 len | payload as
 * associated data and nonce u64 seq | u32 0 (libsodium's one-call AEAD),
 * which is also the spelled-out construction. */
static void doc_frame(struct bytes *dst, const uint8_t *k, uint64_t seq, const uint8_t *payload, uint32_t n)
{
	uint8_t nonce[12], tag[16], tag2[16];
	le_put64(nonce, seq);
	le_put32(nonce + 8, 0);
	size_t start = dst->n;
	uint8_t head[4];
	le_put32(head, n);
	append(dst, head, 4);
	append(dst, payload, n);
	unsigned long long tlen = 0;
	uint8_t none[1];
	CHECK_EQ(crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, tag, &tlen, none, 0, dst->p + start, 4 + (size_t)n,
								   NULL, nonce, k), 0);
	CHECK_EQ(tlen, 16);
	doc_tag_spelled(k, seq, dst->p + start, 4 + (size_t)n, tag2);
	CHECK(memcmp(tag, tag2, 16) == 0);
	append(dst, tag, 16);
}

/* A known answer from another implementation (OpenSSL through Python's
 * cryptography: ChaCha20Poly1305(key).encrypt(u64 5 | u32 0, b"", ad)),
 * key 0, 1, .. 31, seq 5, payload "dynvme frame". */
static void test_known_tag(void)
{
	test_begin("known_tag");
	static const uint8_t want[16] = { 0xcd, 0x28, 0x2d, 0x48, 0xc0, 0x03, 0x97, 0x1d,
					  0xaf, 0xf7, 0xb3, 0xa6, 0x2b, 0x40, 0xa0, 0xfd };
	uint8_t k[WIRE_KEY_BYTES];
	for (unsigned i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)i;
	struct bytes f = { 0 };
	doc_frame(&f, k, 5, (const uint8_t *)"dynvme frame", 12);
	CHECK_EQ(f.n, 4 + 12 + 16);
	CHECK(memcmp(f.p + 16, want, 16) == 0);
	/* wire_seal on a session in that state writes the same frame. */
	struct side c, a;
	connect_pair(&c, &a, WHOLE);
	memcpy(c.w.k_send, k, sizeof(k));
	c.w.seq_send = 5;
	uint8_t fr[4 + 12 + 16];
	memcpy(fr + 4, "dynvme frame", 12);
	CHECK_EQ(wire_seal(&c.w, fr, 12), sizeof(fr));
	CHECK(memcmp(fr, f.p, sizeof(fr)) == 0);
	free(f.p);
	side_free(&c), side_free(&a);
	test_end("known_tag");
}

static void test_documented_format(void)
{
	test_begin("documented_format");
	struct side a;
	uint8_t k_c2s[WIRE_KEY_BYTES];
	CHECK_EQ(doc_connector(key_k, &a, k_c2s), 0);
	CHECK(wire_up(&a.w));
	CHECK_EQ(a.w.peer_id, 9);
	struct bytes f = { 0 };
	doc_frame(&f, k_c2s, 0, payload_buf, 100);
	doc_frame(&f, k_c2s, 1, payload_buf + 100, 0);
	doc_frame(&f, k_c2s, 2, payload_buf + 7, 3000);
	CHECK_EQ(feed_all(&a, f.p, f.n), 0);
	size_t lens[] = { 100, 0, 3000 }, offs[] = { 100 - 100, 100, 7 };
	check_got(&a, 0, lens, offs, 3);
	free(f.p);
	side_free(&a);

	/* The key from the secret: BLAKE2b-256, personalisation "dynvme-wire-k1". */
	uint8_t want[WIRE_KEY_BYTES], got[WIRE_KEY_BYTES], personal[16] = "dynvme-wire-k1";
	const char *secret = "0123456789abcdef0123456789abcdef";
	CHECK_EQ(crypto_generichash_blake2b_salt_personal(want, 32, (const uint8_t *)secret, 32, NULL, 0, NULL, personal), 0);
	CHECK_EQ(wire_key_from_secret(secret, 32, got), 0);
	CHECK(memcmp(want, got, 32) == 0);
	CHECK_EQ(wire_key_from_secret(secret, 16, got), 0);
	CHECK(memcmp(want, got, 32) != 0);
	CHECK_EQ(wire_key_from_secret(secret, 15, got), -EINVAL);
	CHECK_EQ(wire_key_from_secret(secret, 0, got), -EINVAL);
	test_end("documented_format");
}

static void expect_dead(struct side *s, int err)
{
	CHECK_EQ(s->err, err);
	CHECK(!wire_up(&s->w) && s->w.state == WIRE_DEAD);
	CHECK_EQ(s->frames, 0);
	/* Dead stays dead, whatever comes. */
	uint8_t junk[WIRE_HELLO_BYTES + WIRE_PROOF_BYTES];
	fill(junk, sizeof(junk));
	size_t used = 5, plen;
	uint8_t *pl;
	CHECK_EQ(wire_feed(&s->w, junk, sizeof(junk), &used, &pl, &plen), -EPROTO);
	CHECK_EQ(used, 0);
	uint8_t hs[WIRE_HANDSHAKE_OUT_MAX];
	CHECK_EQ(wire_handshake_out(&s->w, hs), 0);
}

static void test_wrong_secret(void)
{
	test_begin("wrong_secret");
	/* Wrong acceptor: the connector refuses its proof_s. */
	struct side c, a;
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
	side_init(&a, WIRE_ACCEPTOR, key_other, 77, 2, 0);
	pump(&c, &a, RANDOM);
	expect_dead(&c, -EACCES);
	CHECK(a.w.state == WIRE_WAIT_PROOF && !wire_up(&a.w)); /* never got a proof */
	CHECK_EQ(c.out.n, 0);                                  /* and no proof_c was sent */
	side_free(&c), side_free(&a);
	/* Wrong connector: one that sends its proof anyway is refused by the
	 * acceptor at the proof. */
	uint8_t k[WIRE_KEY_BYTES];
	CHECK_EQ(doc_connector(key_other, &a, k), -EACCES);
	expect_dead(&a, -EACCES);
	side_free(&a);
	/* A random proof, and the right connector's proof one bit off. */
	for (unsigned bit = 0; bit < 8 * WIRE_PROOF_BYTES; bit += 1 + (unsigned)rnd(9)) {
		pair(&c, &a);
		transfer(&c, &a, WHOLE);
		transfer(&a, &c, WHOLE);
		CHECK(wire_up(&c.w));
		CHECK_EQ(c.out.n, WIRE_PROOF_BYTES);
		c.out.p[bit / 8] ^= (uint8_t)(1u << bit % 8);
		transfer(&c, &a, RANDOM);
		expect_dead(&a, -EACCES);
		side_free(&c), side_free(&a);
	}
	/* The acceptor's proof_s one bit off. */
	for (unsigned bit = 0; bit < 8 * WIRE_PROOF_BYTES; bit += 1 + (unsigned)rnd(9)) {
		pair(&c, &a);
		transfer(&c, &a, WHOLE);
		a.out.p[WIRE_HELLO_BYTES + bit / 8] ^= (uint8_t)(1u << bit % 8);
		transfer(&a, &c, RANDOM);
		expect_dead(&c, -EACCES);
		side_free(&c), side_free(&a);
	}
	test_end("wrong_secret");
}

static void test_cluster_and_ids(void)
{
	test_begin("cluster_and_ids");
	struct side c, a;
	/* Another cluster: the acceptor refuses the HELLO_C. */
	side_init(&c, WIRE_CONNECTOR, key_k, 78, 1, 2);
	side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
	pump(&c, &a, BYTE);
	expect_dead(&a, -EXDEV);
	CHECK_EQ(a.out.n, 0); /* no proof_s for a stranger */
	side_free(&c), side_free(&a);
	/* ... and the connector refuses a HELLO_S of another cluster, even with
	 * a valid proof under the same key. */
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
	uint8_t hs[WIRE_HELLO_BYTES + WIRE_PROOF_BYTES], nonce[WIRE_NONCE_BYTES];
	fill(nonce, sizeof(nonce));
	doc_hello(hs, 2, 78, nonce);
	doc_mac(hs + WIRE_HELLO_BYTES, WIRE_PROOF_BYTES, key_k, "acceptor", c.out.p, WIRE_HELLO_BYTES, hs, WIRE_HELLO_BYTES);
	CHECK_EQ(feed_all(&c, hs, sizeof(hs)), -EXDEV);
	expect_dead(&c, -EXDEV);
	side_free(&c);
	/* The same HELLO_S in cluster 77 is accepted (the proof is right). */
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
	doc_hello(hs, 2, 77, nonce);
	doc_mac(hs + WIRE_HELLO_BYTES, WIRE_PROOF_BYTES, key_k, "acceptor", c.out.p, WIRE_HELLO_BYTES, hs, WIRE_HELLO_BYTES);
	CHECK_EQ(feed_all(&c, hs, sizeof(hs)), 0);
	CHECK(wire_up(&c.w));
	side_free(&c);

	/* Unexpected acceptor id: the connector dialled 3, node 2 answers. */
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 3);
	side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
	pump(&c, &a, WHOLE);
	expect_dead(&c, -EACCES);
	side_free(&c), side_free(&a);
	/* An acceptor that accepts only node 5 refuses node 4. */
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 4, 2);
	side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 5);
	pump(&c, &a, WHOLE);
	expect_dead(&a, -EACCES);
	side_free(&c), side_free(&a);
	/* Node id 0 and the acceptor's own id, claimed in a HELLO_C. */
	const uint16_t bad_ids[] = { 0, 2 };
	for (unsigned i = 0; i < 2; i++) {
		side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
		uint8_t hc[WIRE_HELLO_BYTES];
		fill(nonce, sizeof(nonce));
		doc_hello(hc, bad_ids[i], 77, nonce);
		CHECK_EQ(feed_all(&a, hc, sizeof(hc)), -EACCES);
		expect_dead(&a, -EACCES);
		side_free(&a);
	}
	/* Bad magic and version, refused from the first 6 bytes. */
	const uint8_t bad_heads[][6] = { { 'D', 'Y', 'N', 'X', 3, 0 }, { 'D', 'Y', 'N', 'W', 1, 0 },
					 { 'D', 'Y', 'N', 'W', 2, 0 }, /* the version before the ring digest */
					 { 'D', 'Y', 'N', 'W', 0, 1 }, { 'G', 'E', 'T', ' ', '/', ' ' } };
	for (unsigned i = 0; i < sizeof(bad_heads) / sizeof(bad_heads[0]); i++) {
		side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
		CHECK_EQ(feed_all(&a, bad_heads[i], 5), 0); /* not decided on 5 bytes */
		CHECK_EQ(feed_all(&a, bad_heads[i] + 5, 1), -EPROTO);
		expect_dead(&a, -EPROTO);
		side_free(&a);
		side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
		CHECK_EQ(feed_all(&c, bad_heads[i], 6), -EPROTO);
		expect_dead(&c, -EPROTO);
		side_free(&c);
	}
	test_end("cluster_and_ids");
}

/* Nodes whose partition tables differ (ring_digest) never talk: the
 * acceptor refuses the HELLO_C before it proves anything, the connector a
 * HELLO_S of another ring even with a valid proof; the same digest is
 * accepted. */
static void test_ring_digest(void)
{
	test_begin("ring_digest");
	struct side c, a;
	side_init_ring(&c, WIRE_CONNECTOR, key_k, 77, TEST_RING + 1, 1, 2);
	side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
	pump(&c, &a, BYTE);
	expect_dead(&a, -ENXIO);
	CHECK_EQ(a.out.n, 0); /* no proof_s */
	side_free(&c), side_free(&a);
	uint8_t hs[WIRE_HELLO_BYTES + WIRE_PROOF_BYTES], nonce[WIRE_NONCE_BYTES];
	fill(nonce, sizeof(nonce));
	for (unsigned same = 0; same < 2; same++) {
		side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
		doc_hello_ring(hs, 2, 77, same ? TEST_RING : TEST_RING ^ (1ull << 63), nonce);
		doc_mac(hs + WIRE_HELLO_BYTES, WIRE_PROOF_BYTES, key_k, "acceptor", c.out.p, WIRE_HELLO_BYTES, hs,
			WIRE_HELLO_BYTES);
		CHECK_EQ(feed_all(&c, hs, sizeof(hs)), same ? 0 : -ENXIO);
		if (same)
			CHECK(wire_up(&c.w));
		else
			expect_dead(&c, -ENXIO);
		side_free(&c);
	}
	/* Both sides of one ring other than TEST_RING: up. */
	side_init_ring(&c, WIRE_CONNECTOR, key_k, 77, 42, 1, 2);
	side_init_ring(&a, WIRE_ACCEPTOR, key_k, 77, 42, 2, 0);
	pump(&c, &a, WHOLE);
	CHECK(wire_up(&c.w) && wire_up(&a.w));
	side_free(&c), side_free(&a);
	test_end("ring_digest");
}

static void test_reflection(void)
{
	test_begin("reflection");
	struct side c, a;
	/* A connector fed its own HELLO: not trusted on its own (NEED), and
	 * refused with anything after it (its own id is never a peer's). */
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
	struct bytes own = { 0 };
	append(&own, c.out.p, c.out.n);
	CHECK_EQ(own.n, WIRE_HELLO_BYTES);
	CHECK_EQ(feed_all(&c, own.p, own.n), 0);
	CHECK(c.w.state == WIRE_HELLO_SENT && c.readies == 0);
	uint8_t junk[WIRE_PROOF_BYTES];
	fill(junk, sizeof(junk));
	CHECK_EQ(feed_all(&c, junk, sizeof(junk)), -EACCES);
	expect_dead(&c, -EACCES);
	side_free(&c);
	/* A connector that dialled node 2 gets its own HELLO back with node 2's
	 * id patched in: its own nonce gives it away. */
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
	uint8_t h[WIRE_HELLO_BYTES + WIRE_PROOF_BYTES];
	memcpy(h, own.p, WIRE_HELLO_BYTES);
	memcpy(h + 24, c.out.p + 24, WIRE_NONCE_BYTES);
	le_put16(h + 6, 2);
	memset(h + WIRE_HELLO_BYTES, 0, WIRE_PROOF_BYTES);
	CHECK_EQ(feed_all(&c, h, sizeof(h)), -EPROTO);
	expect_dead(&c, -EPROTO);
	side_free(&c);
	/* An acceptor fed a HELLO_C carrying its own nonce. */
	side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
	doc_hello(h, 1, 77, a.w.hello_mine + 24);
	CHECK_EQ(feed_all(&a, h, WIRE_HELLO_BYTES), -EPROTO);
	expect_dead(&a, -EPROTO);
	side_free(&a);
	/* An acceptor's HELLO_S and proof_s reflected to it as the proof. */
	pair(&c, &a);
	transfer(&c, &a, WHOLE);
	struct bytes back = { 0 };
	append(&back, a.out.p, a.out.n);
	CHECK_EQ(feed_all(&a, back.p, back.n), -EACCES);
	expect_dead(&a, -EACCES);
	side_free(&c), side_free(&a);
	free(back.p);
	/* Crossed dials: nodes 1 and 2 dial each other; node 1's HELLO_C handed
	 * to node 2's connector as if it were an acceptor's answer. */
	struct side c1, c2;
	side_init(&c1, WIRE_CONNECTOR, key_k, 77, 1, 2);
	side_init(&c2, WIRE_CONNECTOR, key_k, 77, 2, 1);
	struct bytes x = { 0 };
	append(&x, c1.out.p, c1.out.n);
	append(&x, c2.out.p, WIRE_PROOF_BYTES); /* whatever fills the proof */
	CHECK_EQ(feed_all(&c2, x.p, x.n), -EACCES);
	expect_dead(&c2, -EACCES);
	free(x.p);
	free(own.p);
	side_free(&c1), side_free(&c2);
	test_end("reflection");
}

static void test_replay_reorder_drop(void)
{
	test_begin("replay_reorder_drop");
	for (unsigned dir = 0; dir < 2; dir++) {
		struct side c, a;
		/* Replay: the same bytes twice. */
		connect_pair(&c, &a, WHOLE);
		struct side *tx = dir ? &a : &c, *rx = dir ? &c : &a;
		send_frame(tx, payload_buf, 50);
		struct bytes copy = { 0 };
		append(&copy, tx->out.p, tx->out.n);
		transfer(tx, rx, WHOLE);
		CHECK_EQ(rx->frames, 1);
		append(&tx->out, copy.p, copy.n);
		transfer(tx, rx, RANDOM);
		CHECK_EQ(rx->err, -EBADMSG);
		CHECK(!wire_up(&rx->w));
		/* Dead afterwards: a fresh, valid frame is refused too. */
		send_frame(tx, payload_buf, 10);
		rx->err = 0;
		transfer(tx, rx, WHOLE);
		CHECK_EQ(rx->err, -EPROTO);
		CHECK_EQ(rx->frames, 1);
		free(copy.p);
		side_free(&c), side_free(&a);

		/* Reorder: f1, f2 sealed; f2 delivered first. */
		connect_pair(&c, &a, WHOLE);
		tx = dir ? &a : &c, rx = dir ? &c : &a;
		struct bytes f1 = { 0 }, f2 = { 0 };
		seal_into(tx, &f1, payload_buf, 30);
		seal_into(tx, &f2, payload_buf + 30, 30);
		append(&tx->out, f2.p, f2.n);
		append(&tx->out, f1.p, f1.n);
		transfer(tx, rx, WHOLE);
		expect_dead(rx, -EBADMSG);
		side_free(&c), side_free(&a);

		/* Drop: f1 lost, f2 and f3 arrive. */
		connect_pair(&c, &a, WHOLE);
		tx = dir ? &a : &c, rx = dir ? &c : &a;
		free(f1.p), free(f2.p);
		memset(&f1, 0, sizeof(f1)), memset(&f2, 0, sizeof(f2));
		seal_into(tx, &f1, payload_buf, 30);
		send_frame(tx, payload_buf + 30, 30);
		send_frame(tx, payload_buf + 60, 30);
		transfer(tx, rx, BYTE);
		expect_dead(rx, -EBADMSG);
		free(f1.p);
		side_free(&c), side_free(&a);
	}
	test_end("replay_reorder_drop");
}

/* Tags that are real but not this frame's: the tag of the previous or
 * next frame of the direction, of the other direction at the same seq, an
 * all-zero tag, and a frame turned back to its sender. Each refused. */
static void test_foreign_tags(void)
{
	test_begin("foreign_tags");
	for (unsigned what = 0; what < 5; what++) {
		struct side c, a;
		connect_pair(&c, &a, WHOLE);
		struct bytes f0 = { 0 }, f1 = { 0 }, back = { 0 };
		seal_into(&c, &f0, payload_buf, 40);
		seal_into(&c, &f1, payload_buf, 40); /* same payload, seq 1 */
		seal_into(&a, &back, payload_buf, 40); /* a -> c, seq 0 */
		CHECK(f0.n == f1.n && f0.n == back.n);
		size_t t = f0.n - WIRE_FRAME_TAIL;
		CHECK(memcmp(f0.p, f1.p, t) == 0 && memcmp(f0.p + t, f1.p + t, WIRE_FRAME_TAIL) != 0);
		struct side *rx = &a;
		if (what == 0) { /* seq 0 carrying seq 1's tag */
			memcpy(f0.p + t, f1.p + t, WIRE_FRAME_TAIL);
			append(&c.out, f0.p, f0.n);
		} else if (what == 1) { /* seq 1 (after a good seq 0) carrying seq 0's tag */
			memcpy(f1.p + t, f0.p + t, WIRE_FRAME_TAIL);
			append(&c.out, f0.p, f0.n);
			append(&c.out, f1.p, f1.n);
		} else if (what == 2) { /* c -> a, seq 0, carrying a -> c's seq 0 tag */
			memcpy(f0.p + t, back.p + t, WIRE_FRAME_TAIL);
			append(&c.out, f0.p, f0.n);
		} else if (what == 3) {
			memset(f0.p + t, 0, WIRE_FRAME_TAIL);
			append(&c.out, f0.p, f0.n);
		} else { /* c's own frame fed back to c (a reflection by a man in the middle) */
			append(&c.out, f0.p, f0.n);
			rx = &c;
		}
		transfer(&c, rx, WHOLE);
		if (what == 1) { /* the good seq 0 was delivered, then the session died */
			CHECK_EQ(rx->frames, 1);
			CHECK_EQ(rx->err, -EBADMSG);
			CHECK(!wire_up(&rx->w) && rx->w.state == WIRE_DEAD);
		} else {
			expect_dead(rx, -EBADMSG);
		}
		free(f0.p), free(f1.p), free(back.p);
		side_free(&c), side_free(&a);
	}
	test_end("foreign_tags");
}

/* After a flip made a frame's length longer: the receiver waits for the
 * bytes it claims; give them (zeros) so the frame is judged. */
static void give_claimed(struct side *tx, struct side *rx, size_t flen, uint32_t claimed)
{
	size_t need = WIRE_FRAME_HEAD + claimed + WIRE_FRAME_TAIL - flen;
	uint8_t *pad = calloc(1, need);
	CHECK(pad != NULL);
	append(&tx->out, pad, need);
	free(pad);
	transfer(tx, rx, WHOLE);
}

/* One bit of a sealed frame flipped: refused whatever the bit, with the
 * bytes after it made available as a stream would. */
static void flip_one(unsigned dir, size_t pos, unsigned bit, size_t plen)
{
	struct side c, a;
	connect_pair(&c, &a, WHOLE);
	struct side *tx = dir ? &a : &c, *rx = dir ? &c : &a;
	send_frame(tx, payload_buf, plen);
	size_t flen = tx->out.n;
	tx->out.p[pos] ^= (uint8_t)(1u << bit);
	uint32_t claimed = le_get32(tx->out.p);
	transfer(tx, rx, pos % 3 == 0 ? RANDOM : WHOLE);
	if (rx->err == 0) {
		/* A longer length: the receiver waits for more; give it. */
		CHECK(pos < WIRE_FRAME_HEAD && claimed > plen && claimed <= WIRE_PAYLOAD_MAX);
		CHECK(rx->w.state == WIRE_UP && rx->rx.n == flen);
		give_claimed(tx, rx, flen, claimed);
	}
	if (pos < WIRE_FRAME_HEAD && claimed > WIRE_PAYLOAD_MAX)
		expect_dead(rx, -EMSGSIZE);
	else
		expect_dead(rx, -EBADMSG);
	side_free(&c), side_free(&a);
}

static void test_altered(void)
{
	test_begin("altered");
	const size_t plen = 100;
	for (unsigned dir = 0; dir < 2; dir++) {
		size_t flen = WIRE_FRAME_HEAD + plen + WIRE_FRAME_TAIL;
		for (size_t pos = 0; pos < flen; pos++)
			for (unsigned bit = 0; bit < 8; bit += dir ? 3 : 1)
				flip_one(dir, pos, bit, plen);
	}
	/* Also inside a big frame. */
	for (unsigned i = 0; i < 4; i++)
		flip_one(i % 2, WIRE_FRAME_HEAD + (size_t)rnd(200000), (unsigned)rnd(8), 200000);
	test_end("altered");
}

static void test_before_handshake(void)
{
	test_begin("before_handshake");
	/* A valid frame of an established session, fed to sessions at every
	 * handshake state: never delivered, each refused. */
	struct side c0, a0;
	connect_pair(&c0, &a0, WHOLE);
	struct bytes f = { 0 };
	seal_into(&c0, &f, payload_buf, 64);
	seal_into(&c0, &f, payload_buf, 64);
	struct side c, a;
	side_init(&a, WIRE_ACCEPTOR, key_k, 77, 2, 0);
	CHECK_EQ(feed_all(&a, f.p, f.n), -EPROTO); /* read as a HELLO_C */
	expect_dead(&a, -EPROTO);
	side_free(&a);
	pair(&c, &a);
	transfer(&c, &a, WHOLE);
	CHECK(a.w.state == WIRE_WAIT_PROOF);
	CHECK_EQ(feed_all(&a, f.p, f.n), -EACCES); /* read as proof_c */
	expect_dead(&a, -EACCES);
	side_free(&c), side_free(&a);
	side_init(&c, WIRE_CONNECTOR, key_k, 77, 1, 2);
	CHECK_EQ(feed_all(&c, f.p, f.n), -EPROTO); /* read as HELLO_S */
	expect_dead(&c, -EPROTO);
	side_free(&c);
	/* A genuine HELLO_C, then a frame where the proof should be. */
	pair(&c, &a);
	transfer(&c, &a, WHOLE);
	transfer(&a, &c, WHOLE);
	consume(&c.out, c.out.n); /* the proof is withheld */
	CHECK_EQ(feed_all(&a, f.p, f.n), -EACCES);
	expect_dead(&a, -EACCES);
	side_free(&c), side_free(&a);
	/* An acceptor given a proof before its HELLO_S was taken out. */
	pair(&c, &a);
	append(&a.rx, c.out.p, c.out.n);
	append(&a.rx, payload_buf, WIRE_PROOF_BYTES);
	size_t used, plen;
	uint8_t *pl;
	CHECK_EQ(wire_feed(&a.w, a.rx.p, a.rx.n, &used, &pl, &plen), WIRE_STEP);
	CHECK_EQ(wire_feed(&a.w, a.rx.p + used, a.rx.n - used, &used, &pl, &plen), -EPROTO);
	side_free(&c), side_free(&a);
	free(f.p);
	side_free(&c0), side_free(&a0);
	test_end("before_handshake");
}

static void test_oversized(void)
{
	test_begin("oversized");
	const uint32_t lens[] = { WIRE_PAYLOAD_MAX + 1, WIRE_PAYLOAD_MAX + 1000, 0x80000000u, UINT32_MAX };
	for (unsigned dir = 0; dir < 2; dir++) {
		for (unsigned i = 0; i < 4; i++) {
			struct side c, a;
			connect_pair(&c, &a, WHOLE);
			struct side *rx = dir ? &c : &a;
			uint8_t head[4];
			le_put32(head, lens[i]);
			CHECK_EQ(feed_all(rx, head, 3), 0); /* 3 bytes: not known yet */
			CHECK_EQ(feed_all(rx, head + 3, 1), -EMSGSIZE);
			expect_dead(rx, -EMSGSIZE);
			side_free(&c), side_free(&a);
		}
		/* At the limit: accepted, waits for the rest, then delivered. */
		struct side c, a;
		connect_pair(&c, &a, WHOLE);
		struct side *tx = dir ? &a : &c, *rx = dir ? &c : &a;
		uint8_t head[4];
		le_put32(head, WIRE_PAYLOAD_MAX);
		CHECK_EQ(wire_next_bytes(&rx->w, head, 4), WIRE_FRAME_BYTES_MAX);
		CHECK_EQ(wire_next_bytes(&rx->w, head, 3), WIRE_FRAME_HEAD);
		send_frame(tx, payload_buf, WIRE_PAYLOAD_MAX);
		CHECK_EQ(tx->out.n, WIRE_FRAME_BYTES_MAX);
		transfer(tx, rx, RANDOM);
		CHECK_EQ(rx->err, 0);
		size_t l = WIRE_PAYLOAD_MAX, o = 0;
		check_got(rx, 0, &l, &o, 1);
		side_free(&c), side_free(&a);
	}
	test_end("oversized");
}

static void test_next_bytes(void)
{
	test_begin("next_bytes");
	struct side c, a;
	pair(&c, &a);
	CHECK_EQ(wire_next_bytes(&c.w, NULL, 0), WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	CHECK_EQ(wire_next_bytes(&a.w, NULL, 0), WIRE_HELLO_BYTES);
	transfer(&c, &a, WHOLE);
	CHECK_EQ(wire_next_bytes(&a.w, NULL, 0), WIRE_PROOF_BYTES);
	transfer(&a, &c, WHOLE);
	transfer(&c, &a, WHOLE);
	uint8_t head[4];
	le_put32(head, 10);
	CHECK_EQ(wire_next_bytes(&a.w, head, 4), WIRE_FRAME_HEAD + 10 + WIRE_FRAME_TAIL);
	CHECK_EQ(wire_next_bytes(&a.w, head, 0), WIRE_FRAME_HEAD);
	side_free(&c), side_free(&a);
	test_end("next_bytes");
}

/* ---- batches ---- */

/* Messages in separate buffers with the room wire_seal_msgs needs around
 * each; the bytes outside it are poisoned to see nothing else is touched. */
struct msgbuf {
	uint8_t *base;
	uint8_t *msg;
	uint32_t len;
};

#define ROOM_POISON 0xa5u

static void msgbuf_make(struct msgbuf *b, const uint8_t *src, uint32_t len)
{
	size_t all = 8 + WIRE_SEAL_HEADROOM + len + WIRE_SEAL_TAILROOM + 8;
	b->base = malloc(all);
	CHECK(b->base != NULL);
	memset(b->base, ROOM_POISON, all);
	b->msg = b->base + 8 + WIRE_SEAL_HEADROOM;
	b->len = len;
	memcpy(b->msg, src, len);
}

static void msgbuf_check_guards(const struct msgbuf *b)
{
	for (unsigned i = 0; i < 8; i++) {
		CHECK_EQ(b->base[i], ROOM_POISON);
		CHECK_EQ(b->msg[b->len + WIRE_SEAL_TAILROOM + i], ROOM_POISON);
	}
}

/* Seal n messages of the given lengths (from payload_buf at offs) on tx;
 * the wire bytes (the pieces, in order) are appended to out. Also checks
 * the frame against one built from the text. */
static void seal_batch(struct side *tx, struct bytes *out, const uint32_t *lens, const size_t *offs, unsigned n)
{
	struct msgbuf *b = calloc(n, sizeof(*b));
	uint8_t **msgs = calloc(n, sizeof(*msgs));
	CHECK(b != NULL && msgs != NULL);
	struct bytes text = { 0 }, payload = { 0 };
	for (unsigned i = 0; i < n; i++) {
		msgbuf_make(&b[i], payload_buf + offs[i], lens[i]);
		msgs[i] = b[i].msg;
		uint8_t head[4];
		le_put32(head, lens[i]);
		append(&payload, head, 4);
		append(&payload, payload_buf + offs[i], lens[i]);
	}
	/* The documented frame under the sender's key and sequence number. */
	doc_frame(&text, tx->w.k_send, tx->w.seq_send, payload.p, (uint32_t)payload.n);
	size_t total = wire_seal_msgs(&tx->w, msgs, lens, n);
	size_t start = out->n;
	for (unsigned i = 0; i < n; i++) {
		msgbuf_check_guards(&b[i]);
		CHECK(memcmp(b[i].msg, payload_buf + offs[i], lens[i]) == 0); /* not moved */
		uint32_t lead = wire_piece_lead(i), trail = wire_piece_trail(i, n);
		append(out, b[i].msg - lead, lead + lens[i] + trail);
	}
	CHECK_EQ(out->n - start, total);
	CHECK_EQ(total, text.n);
	CHECK(memcmp(out->p + start, text.p, total) == 0);
	for (unsigned i = 0; i < n; i++)
		free(b[i].base);
	free(b);
	free(msgs);
	free(text.p);
	free(payload.p);
}

/* Frames [from, to) s received, read as batches, against lens/offs in
 * order; returns the messages they held. */
static unsigned check_batches(const struct side *s, unsigned from, unsigned to, const uint32_t *lens,
			      const size_t *offs, unsigned n)
{
	unsigned k = 0;
	CHECK(to <= s->frames);
	for (unsigned f = from; f < to; f++) {
		const struct bytes *g = &s->got[f];
		int count = wire_batch_count(g->p, g->n);
		CHECK(count >= 1 && count <= (int)WIRE_BATCH_MSGS_MAX);
		size_t off = 0;
		for (int i = 0; i < count; i++) {
			const uint8_t *m;
			size_t ml;
			CHECK_EQ(wire_batch_next(g->p, g->n, &off, &m, &ml), 1);
			CHECK(k < n);
			CHECK_EQ(ml, lens[k]);
			CHECK(m >= g->p && m + ml <= g->p + g->n);
			CHECK(memcmp(m, payload_buf + offs[k], ml) == 0);
			k++;
		}
		const uint8_t *m = payload_buf;
		size_t ml = 9;
		CHECK_EQ(wire_batch_next(g->p, g->n, &off, &m, &ml), 0);
		CHECK(m == NULL && ml == 0 && off == g->n);
	}
	return k;
}

static void test_batch_exchange(void)
{
	test_begin("batch_exchange");
	for (unsigned round = 0; round < 30; round++) {
		struct side c, a;
		connect_pair(&c, &a, round % 3 == 0 ? BYTE : RANDOM);
		struct side *tx = round % 2 ? &a : &c, *rx = round % 2 ? &c : &a;
		enum { NM = 600 };
		static uint32_t lens[NM];
		static size_t offs[NM];
		unsigned total = 0, frames = 0;
		while (total < NM - WIRE_BATCH_MSGS_MAX) {
			/* One frame: 1..256 small messages, or a large one alone. */
			unsigned n = 1;
			if (rnd(6) == 0) {
				lens[total] = rnd(2) ? MSG_BYTES_MAX : WIRE_BATCH_BYTES + 1 + (uint32_t)rnd(100000);
			} else {
				n = rnd(4) == 0 ? WIRE_BATCH_MSGS_MAX : 1 + (unsigned)rnd(40);
				size_t room = WIRE_BATCH_BYTES;
				for (unsigned i = 0; i < n; i++) {
					size_t left = room - WIRE_BATCH_HEAD * (n - i);
					uint32_t l = 1 + (uint32_t)rnd(rnd(4) ? 300 : 4000);
					if (l > left - (n - i - 1))
						l = (uint32_t)(left - (n - i - 1));
					lens[total + i] = l;
					room -= WIRE_BATCH_HEAD + l;
				}
			}
			for (unsigned i = 0; i < n; i++)
				offs[total + i] = (size_t)rnd(WIRE_PAYLOAD_MAX - lens[total + i] + 1);
			seal_batch(tx, &tx->out, lens + total, offs + total, n);
			total += n;
			frames++;
			if (rnd(3) == 0)
				transfer(tx, rx, RANDOM);
		}
		transfer(tx, rx, round % 3 == 0 ? BYTE : RANDOM);
		CHECK_EQ(rx->err, 0);
		CHECK_EQ(rx->frames, frames);
		CHECK_EQ(check_batches(rx, 0, frames, lens, offs, total), total);
		side_free(&c), side_free(&a);
	}
	/* The limits exactly: 256 one-byte messages; two filling
	 * WIRE_BATCH_BYTES; one of MSG_BYTES_MAX. */
	struct side c, a;
	connect_pair(&c, &a, WHOLE);
	uint32_t l1[WIRE_BATCH_MSGS_MAX];
	size_t o1[WIRE_BATCH_MSGS_MAX];
	for (unsigned i = 0; i < WIRE_BATCH_MSGS_MAX; i++)
		l1[i] = 1, o1[i] = i;
	seal_batch(&c, &c.out, l1, o1, WIRE_BATCH_MSGS_MAX);
	uint32_t l2[2] = { 1000, WIRE_BATCH_BYTES - 2 * WIRE_BATCH_HEAD - 1000 };
	size_t o2[2] = { 5, 7000 };
	seal_batch(&c, &c.out, l2, o2, 2);
	uint32_t l3 = MSG_BYTES_MAX;
	size_t o3 = 3;
	seal_batch(&c, &c.out, &l3, &o3, 1);
	transfer(&c, &a, RANDOM);
	CHECK_EQ(a.err, 0);
	CHECK_EQ(a.frames, 3);
	CHECK_EQ(a.got[1].n, WIRE_BATCH_BYTES);
	CHECK_EQ(a.got[2].n, WIRE_PAYLOAD_MAX);
	CHECK_EQ(check_batches(&a, 0, 1, l1, o1, WIRE_BATCH_MSGS_MAX), WIRE_BATCH_MSGS_MAX);
	CHECK_EQ(check_batches(&a, 1, 2, l2, o2, 2), 2);
	CHECK_EQ(check_batches(&a, 2, 3, &l3, &o3, 1), 1);
	side_free(&c), side_free(&a);
	test_end("batch_exchange");
}

/* A payload built from (len field, bytes present) records. */
static size_t batch_build(uint8_t *out, const uint32_t *claim, const uint32_t *have, unsigned n)
{
	size_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		le_put32(out + off, claim[i]);
		off += 4;
		memcpy(out + off, payload_buf, have[i]);
		off += have[i];
	}
	return off;
}

static void expect_batch(const uint8_t *p, size_t n, int want)
{
	CHECK_EQ(wire_batch_count(p, n), want);
	if (want >= 0)
		return;
	/* Walking it record by record ends in the same refusal. */
	size_t off = 0;
	int r = 1;
	for (size_t guard = 0; r == 1 && guard <= n; guard++) {
		const uint8_t *m;
		size_t ml;
		r = wire_batch_next(p, n, &off, &m, &ml);
		CHECK(r != 1 || (m >= p && m + ml <= p + n && ml >= 1));
	}
	if (n > 0)
		CHECK(r == -EBADMSG || (r == 0 && want == -EBADMSG)); /* bounds: every record fine, too many */
}

static void test_batch_malformed(void)
{
	test_begin("batch_malformed");
	enum { CAP = 2 * WIRE_BATCH_BYTES };
	uint8_t *p = malloc(CAP);
	CHECK(p != NULL);
	uint8_t one[1] = { 7 };
	expect_batch(one, 0, -EBADMSG); /* empty */
	for (size_t cut = 1; cut < 4; cut++)
		expect_batch(payload_buf, cut, -EBADMSG); /* a head cut short */
	uint32_t c[3], h[3];
	c[0] = 0, h[0] = 0;
	expect_batch(p, batch_build(p, c, h, 1), -EBADMSG); /* msg_len 0 */
	c[0] = 5, h[0] = 5, c[1] = 0, h[1] = 0;
	expect_batch(p, batch_build(p, c, h, 2), -EBADMSG); /* a second of 0 */
	for (uint32_t over = 1; over < 6; over++) {
		c[0] = 10 + over, h[0] = 10;
		expect_batch(p, batch_build(p, c, h, 1), -EBADMSG); /* past the end */
		c[0] = 10, h[0] = 10, c[1] = 20 + over, h[1] = 20;
		expect_batch(p, batch_build(p, c, h, 2), -EBADMSG);
	}
	c[0] = 0xffffffffu, h[0] = 8;
	expect_batch(p, batch_build(p, c, h, 1), -EBADMSG);
	c[0] = 10, h[0] = 10;
	size_t l = batch_build(p, c, h, 1);
	for (size_t extra = 1; extra < 4; extra++) { /* trailing bytes: a cut head */
		memset(p + l, 0, extra);
		expect_batch(p, l + extra, -EBADMSG);
	}
	/* More than a sender seals: 257 messages; two over WIRE_BATCH_BYTES. */
	uint32_t cl[WIRE_BATCH_MSGS_MAX + 1], hl[WIRE_BATCH_MSGS_MAX + 1];
	for (unsigned i = 0; i <= WIRE_BATCH_MSGS_MAX; i++)
		cl[i] = hl[i] = 1;
	expect_batch(p, batch_build(p, cl, hl, WIRE_BATCH_MSGS_MAX), WIRE_BATCH_MSGS_MAX);
	expect_batch(p, batch_build(p, cl, hl, WIRE_BATCH_MSGS_MAX + 1), -EBADMSG);
	c[0] = h[0] = 1000, c[1] = h[1] = WIRE_BATCH_BYTES - 2 * WIRE_BATCH_HEAD - 1000;
	expect_batch(p, batch_build(p, c, h, 2), 2);
	c[1] = h[1] = c[1] + 1;
	expect_batch(p, batch_build(p, c, h, 2), -EBADMSG);
	c[0] = h[0] = WIRE_BATCH_BYTES; /* alone it may be larger */
	expect_batch(p, batch_build(p, c, h, 1), 1);
	c[1] = h[1] = 1;
	expect_batch(p, batch_build(p, c, h, 2), -EBADMSG);
	/* wire_batch_put writes the record the reader takes. */
	size_t k = wire_batch_put(p, payload_buf, 33);
	k += wire_batch_put(p + k, payload_buf + 40, 1);
	CHECK_EQ(k, 2 * WIRE_BATCH_HEAD + 34);
	CHECK_EQ(wire_batch_count(p, k), 2);
	CHECK_EQ(le_get32(p), 33);
	CHECK(memcmp(p + 4, payload_buf, 33) == 0 && p[41] == payload_buf[40]);
	/* Random records: count agrees with a walk by the text. */
	for (unsigned it = 0; it < 20000; it++) {
		size_t n = (size_t)rnd(64);
		fill(p, n);
		for (size_t i = 0; i + 4 <= n; i += 4)
			if (rnd(2))
				le_put32(p + i, (uint32_t)rnd(12));
		size_t off = 0;
		int want = 0;
		while (want >= 0 && off < n) {
			if (n - off < 4 || le_get32(p + off) == 0 || le_get32(p + off) > n - off - 4)
				want = -EBADMSG;
			else
				off += 4 + le_get32(p + off), want++;
		}
		if (n == 0)
			want = -EBADMSG;
		CHECK_EQ(wire_batch_count(p, n), want);
	}
	free(p);
	test_end("batch_malformed");
}

static void test_batch_replay_altered(void)
{
	test_begin("batch_replay_altered");
	uint32_t lens[5] = { 40, 1, 200, 77, 3 };
	size_t offs[5] = { 0, 100, 200, 900, 5000 };
	/* Replayed: the second copy fails its tag. */
	struct side c, a;
	connect_pair(&c, &a, WHOLE);
	seal_batch(&c, &c.out, lens, offs, 5);
	struct bytes copy = { 0 };
	append(&copy, c.out.p, c.out.n);
	transfer(&c, &a, WHOLE);
	CHECK_EQ(a.frames, 1);
	append(&c.out, copy.p, copy.n);
	transfer(&c, &a, RANDOM);
	CHECK_EQ(a.err, -EBADMSG);
	CHECK_EQ(a.frames, 1);
	free(copy.p);
	side_free(&c), side_free(&a);
	/* Every bit of a batched frame flipped (a sample of bits per byte). */
	size_t flen = WIRE_FRAME_HEAD + WIRE_FRAME_TAIL;
	for (unsigned i = 0; i < 5; i++)
		flen += WIRE_BATCH_HEAD + lens[i];
	for (size_t pos = 0; pos < flen; pos++) {
		unsigned bit = (unsigned)rnd(8);
		connect_pair(&c, &a, WHOLE);
		struct side *tx = pos % 2 ? &a : &c, *rx = pos % 2 ? &c : &a;
		seal_batch(tx, &tx->out, lens, offs, 5);
		CHECK_EQ(tx->out.n, flen);
		tx->out.p[pos] ^= (uint8_t)(1u << bit);
		uint32_t claimed = le_get32(tx->out.p);
		transfer(tx, rx, WHOLE);
		if (rx->err == 0) { /* a longer length */
			CHECK(pos < WIRE_FRAME_HEAD && claimed <= WIRE_PAYLOAD_MAX);
			give_claimed(tx, rx, flen, claimed);
		}
		CHECK(rx->err == -EBADMSG || (pos < WIRE_FRAME_HEAD && rx->err == -EMSGSIZE));
		CHECK_EQ(rx->frames, 0);
		side_free(&c), side_free(&a);
	}
	test_end("batch_replay_altered");
}

int main(void)
{
	rng = test_seed(0x77697265);
	CHECK(sodium_init() >= 0);
	CHECK_EQ(wire_key_from_secret("the cluster secret, 32 bytes....", 32, key_k), 0);
	CHECK_EQ(wire_key_from_secret("another cluster secret, 32 bytes", 32, key_other), 0);
	CHECK(memcmp(key_k, key_other, WIRE_KEY_BYTES) != 0);
	payload_buf = malloc(WIRE_PAYLOAD_MAX);
	CHECK(payload_buf != NULL);
	fill(payload_buf, WIRE_PAYLOAD_MAX);
	test_documented_format();
	test_known_tag();
	test_exchange();
	test_wrong_secret();
	test_cluster_and_ids();
	test_ring_digest();
	test_reflection();
	test_replay_reorder_drop();
	test_foreign_tags();
	test_altered();
	test_before_handshake();
	test_oversized();
	test_next_bytes();
	test_batch_exchange();
	test_batch_malformed();
	test_batch_replay_altered();
	free(payload_buf);
	return test_soft_failures() ? 1 : 0;
}
