/* wire.c - the authenticated internode session (wire.h).
 *
 * States and the call that moves each (C connector, A acceptor):
 *
 *   C: HELLO_SENT --feed(A's HELLO+proof_s, verified)--> UP (proof_c due)
 *   A: WAIT_HELLO --feed(C's HELLO)--> WAIT_PROOF (HELLO+proof_s due)
 *   A: WAIT_PROOF --feed(proof_c, verified)--> UP
 *   any --feed error--> DEAD (keys wiped; every later feed is -EPROTO)
 *
 * Invariants:
 * 1. Nothing from the peer is trusted before its proof verified: the
 *    acceptor's WAIT_PROOF only remembers the connector's HELLO, and a
 *    frame is only parsed in UP.
 * 2. Each side's proof covers both nonces, so a proof from another session
 *    (or a replay of an old handshake) never verifies; the labels
 *    ("acceptor", "connector") keep one side's proof from serving as the
 *    other's, and a HELLO carrying our own node id or nonce (a reflection)
 *    is refused before any proof is computed for it.
 * 3. The frame tag's nonce is the implicit per-direction sequence number
 *    (under a key of that direction of that session), so frame k verifies
 *    only as the k-th frame of that direction of that session, and no
 *    (key, nonce) pair ever tags two frames.
 * 4. hello_mine is this side's HELLO then its proof (the connector's proof
 *    once computed); hello_peer the peer's HELLO (and the acceptor's proof).
 */
#include "cluster/wire.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "base/assert.h"
#include "base/le.h"

#define WIRE_MAGIC "DYNW"
#define WIRE_SECRET_BYTES_MIN 16u
#define TAG_BYTES WIRE_FRAME_TAIL

_Static_assert(WIRE_KEY_BYTES == crypto_generichash_KEYBYTES && WIRE_PROOF_BYTES == crypto_generichash_BYTES,
	       "BLAKE2b-256 keys and proofs");
#define NONCE_BYTES crypto_aead_chacha20poly1305_ietf_NPUBBYTES
_Static_assert(TAG_BYTES == crypto_aead_chacha20poly1305_ietf_ABYTES && TAG_BYTES == crypto_onetimeauth_poly1305_BYTES,
	       "the frame tag is a ChaCha20-Poly1305 tag");
_Static_assert(WIRE_KEY_BYTES == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "a session key is a ChaCha20 key");
_Static_assert(NONCE_BYTES == 12u, "IETF nonce: u64 seq | u32 0");
#define HELLO_RING_OFF 16u
#define HELLO_NONCE_OFF 24u
_Static_assert(WIRE_HELLO_BYTES == 56u && HELLO_NONCE_OFF + WIRE_NONCE_BYTES == WIRE_HELLO_BYTES, "HELLO layout");
_Static_assert(WIRE_PAYLOAD_MAX <= UINT32_MAX - WIRE_FRAME_HEAD - WIRE_FRAME_TAIL, "frame length fits u32");
_Static_assert(WIRE_BATCH_MSGS_MAX * (WIRE_BATCH_HEAD + 1u) <= WIRE_BATCH_BYTES, "a full batch of small messages fits");

/* BLAKE2b keyed with key over label | a | b. */
static void mac(uint8_t *out, size_t outlen, const uint8_t *key, const char *label, const uint8_t *a, size_t alen,
		const uint8_t *b, size_t blen)
{
	crypto_generichash_state st;
	DV_ASSERT(crypto_generichash_init(&st, key, WIRE_KEY_BYTES, outlen) == 0);
	DV_ASSERT(crypto_generichash_update(&st, (const uint8_t *)label, strlen(label)) == 0);
	DV_ASSERT(crypto_generichash_update(&st, a, alen) == 0);
	DV_ASSERT(crypto_generichash_update(&st, b, blen) == 0);
	DV_ASSERT(crypto_generichash_final(&st, out, outlen) == 0);
	sodium_memzero(&st, sizeof(st));
}

int wire_key_from_secret(const void *secret, size_t len, uint8_t key[WIRE_KEY_BYTES])
{
	static const uint8_t personal[crypto_generichash_blake2b_PERSONALBYTES] = "dynvme-wire-k1";
	if (len < WIRE_SECRET_BYTES_MIN)
		return -EINVAL;
	/* The first sodium call of a process (idempotent and thread-safe);
	 * see wire.h about calling this before threads start. */
	if (sodium_init() < 0)
		return -EIO;
	DV_ASSERT(crypto_generichash_blake2b_salt_personal(key, WIRE_KEY_BYTES, secret, len, NULL, 0, NULL,
							   personal) == 0);
	return 0;
}

static const uint8_t *hello_c(const struct wire *w)
{
	return w->role == WIRE_CONNECTOR ? w->hello_mine : w->hello_peer;
}

static const uint8_t *hello_s(const struct wire *w)
{
	return w->role == WIRE_CONNECTOR ? w->hello_peer : w->hello_mine;
}

void wire_init(struct wire *w, enum wire_role role, const uint8_t key[WIRE_KEY_BYTES], uint64_t cluster_id,
	       uint64_t ring_digest, uint16_t my_id, uint16_t expect_peer, const uint8_t nonce[WIRE_NONCE_BYTES])
{
	DV_ASSERT(role == WIRE_CONNECTOR || role == WIRE_ACCEPTOR);
	DV_ASSERT(my_id != 0 && expect_peer != my_id);
	DV_ASSERT(role == WIRE_ACCEPTOR || expect_peer != 0);
	DV_ASSERT(sodium_init() >= 0); /* a no-op after wire_key_from_secret */
	memset(w, 0, sizeof(*w));
	w->role = role;
	w->state = role == WIRE_CONNECTOR ? WIRE_HELLO_SENT : WIRE_WAIT_HELLO;
	w->my_id = my_id;
	w->peer_id = expect_peer;
	w->cluster_id = cluster_id;
	w->ring_digest = ring_digest;
	memcpy(w->key, key, WIRE_KEY_BYTES);
	uint8_t *h = w->hello_mine;
	memcpy(h, WIRE_MAGIC, 4);
	le_put16(h + 4, WIRE_VERSION);
	le_put16(h + 6, my_id);
	le_put64(h + 8, cluster_id);
	le_put64(h + HELLO_RING_OFF, ring_digest);
	memcpy(h + HELLO_NONCE_OFF, nonce, WIRE_NONCE_BYTES);
	w->out_pending = role == WIRE_CONNECTOR;
}

size_t wire_handshake_out(struct wire *w, uint8_t *out)
{
	if (!w->out_pending)
		return 0;
	w->out_pending = false;
	if (w->role == WIRE_CONNECTOR && w->state == WIRE_HELLO_SENT) {
		memcpy(out, w->hello_mine, WIRE_HELLO_BYTES);
		return WIRE_HELLO_BYTES;
	}
	if (w->role == WIRE_CONNECTOR && w->state == WIRE_UP) {
		memcpy(out, w->hello_mine + WIRE_HELLO_BYTES, WIRE_PROOF_BYTES);
		return WIRE_PROOF_BYTES;
	}
	DV_ASSERT(w->role == WIRE_ACCEPTOR && w->state == WIRE_WAIT_PROOF);
	memcpy(out, w->hello_mine, WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	return WIRE_HELLO_BYTES + WIRE_PROOF_BYTES;
}

static int die(struct wire *w, int err)
{
	DV_ASSERT(err < 0);
	w->state = WIRE_DEAD;
	w->out_pending = false;
	sodium_memzero(w->key, sizeof(w->key));
	sodium_memzero(w->k_send, sizeof(w->k_send));
	sodium_memzero(w->k_recv, sizeof(w->k_recv));
	return err;
}

static bool magic_ok(const uint8_t *h) { return memcmp(h, WIRE_MAGIC, 4) == 0 && le_get16(h + 4) == WIRE_VERSION; }

/* The peer's HELLO head, before any proof: 0 or the error. */
static int check_hello(const struct wire *w, const uint8_t *h)
{
	if (!magic_ok(h))
		return -EPROTO;
	if (le_get64(h + 8) != w->cluster_id)
		return -EXDEV;
	if (le_get64(h + HELLO_RING_OFF) != w->ring_digest)
		return -ENXIO; /* another partition table: keys would go to other replicas */
	uint16_t id = le_get16(h + 6);
	if (id == 0 || id == w->my_id || (w->peer_id != 0 && id != w->peer_id))
		return -EACCES;
	if (memcmp(h + HELLO_NONCE_OFF, w->hello_mine + HELLO_NONCE_OFF, WIRE_NONCE_BYTES) == 0)
		return -EPROTO; /* our own nonce: a reflected HELLO */
	return 0;
}

/* Both directions' keys from the transcript (hello_c | hello_s | proof_s);
 * K is no longer needed once they exist. */
static void derive_keys(struct wire *w)
{
	uint8_t c2s[WIRE_KEY_BYTES], s2c[WIRE_KEY_BYTES];
	mac(c2s, sizeof(c2s), w->key, "c2s", hello_c(w), WIRE_HELLO_BYTES, hello_s(w), WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	mac(s2c, sizeof(s2c), w->key, "s2c", hello_c(w), WIRE_HELLO_BYTES, hello_s(w), WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	bool conn = w->role == WIRE_CONNECTOR;
	memcpy(w->k_send, conn ? c2s : s2c, WIRE_KEY_BYTES);
	memcpy(w->k_recv, conn ? s2c : c2s, WIRE_KEY_BYTES);
	sodium_memzero(c2s, sizeof(c2s));
	sodium_memzero(s2c, sizeof(s2c));
	sodium_memzero(w->key, sizeof(w->key));
	w->seq_send = w->seq_recv = 0;
	w->state = WIRE_UP;
}

static void proof_s(const struct wire *w, uint8_t out[WIRE_PROOF_BYTES])
{
	mac(out, WIRE_PROOF_BYTES, w->key, "acceptor", hello_c(w), WIRE_HELLO_BYTES, hello_s(w), WIRE_HELLO_BYTES);
}

static void proof_c(const struct wire *w, uint8_t out[WIRE_PROOF_BYTES])
{
	mac(out, WIRE_PROOF_BYTES, w->key, "connector", hello_c(w), WIRE_HELLO_BYTES, hello_s(w),
	    WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
}

/* Acceptor, WAIT_HELLO: the connector's HELLO. */
static int feed_hello_c(struct wire *w, const uint8_t *buf, size_t len, size_t *used)
{
	if (len < WIRE_HELLO_BYTES)
		return WIRE_NEED;
	int err = check_hello(w, buf);
	if (err)
		return die(w, err);
	memcpy(w->hello_peer, buf, WIRE_HELLO_BYTES);
	w->peer_id = le_get16(buf + 6);
	proof_s(w, w->hello_mine + WIRE_HELLO_BYTES);
	w->state = WIRE_WAIT_PROOF;
	w->out_pending = true;
	*used = WIRE_HELLO_BYTES;
	return WIRE_STEP;
}

/* Acceptor, WAIT_PROOF: the connector's proof. */
static int feed_proof_c(struct wire *w, const uint8_t *buf, size_t len, size_t *used)
{
	if (w->out_pending)
		return die(w, -EPROTO); /* a proof of a HELLO we never sent */
	if (len < WIRE_PROOF_BYTES)
		return WIRE_NEED;
	uint8_t want[WIRE_PROOF_BYTES];
	proof_c(w, want);
	int bad = crypto_verify_32(want, buf);
	sodium_memzero(want, sizeof(want));
	if (bad)
		return die(w, -EACCES);
	derive_keys(w);
	*used = WIRE_PROOF_BYTES;
	return WIRE_READY;
}

/* Connector, HELLO_SENT: the acceptor's HELLO and proof. */
static int feed_hello_s(struct wire *w, const uint8_t *buf, size_t len, size_t *used)
{
	if (len < WIRE_HELLO_BYTES + WIRE_PROOF_BYTES)
		return WIRE_NEED;
	int err = check_hello(w, buf);
	if (err)
		return die(w, err);
	memcpy(w->hello_peer, buf, WIRE_HELLO_BYTES + WIRE_PROOF_BYTES);
	uint8_t want[WIRE_PROOF_BYTES];
	proof_s(w, want);
	int bad = crypto_verify_32(want, buf + WIRE_HELLO_BYTES);
	sodium_memzero(want, sizeof(want));
	if (bad)
		return die(w, -EACCES);
	proof_c(w, w->hello_mine + WIRE_HELLO_BYTES);
	derive_keys(w);
	w->out_pending = true;
	*used = WIRE_HELLO_BYTES + WIRE_PROOF_BYTES;
	return WIRE_READY;
}

/* The frame tag (wire.h): ChaCha20-Poly1305 (RFC 8439, IETF) of an empty
 * plaintext, the frame's head and payload its associated data, the nonce
 * u64 seq | u32 0. As the RFC computes it: the Poly1305 key is the first 32
 * bytes of ChaCha20(k, nonce, block 0), the MAC runs over AD | zeros to a
 * multiple of 16 | u64 len(AD) | u64 0 (the empty ciphertext adds nothing).
 * The receiver checks it with libsodium's one-call AEAD; the sender, whose
 * associated data lies in pieces (wire_seal_msgs), streams it. */
static void frame_nonce(uint64_t seq, uint8_t nonce[NONCE_BYTES])
{
	le_put64(nonce, seq);
	le_put32(nonce + 8, 0);
}

struct tagger {
	crypto_onetimeauth_poly1305_state st;
	uint64_t ad_len;
};

static void tag_begin(struct tagger *t, const uint8_t k[WIRE_KEY_BYTES], uint64_t seq)
{
	uint8_t nonce[NONCE_BYTES], otk[crypto_onetimeauth_poly1305_KEYBYTES];
	frame_nonce(seq, nonce);
	DV_ASSERT(crypto_stream_chacha20_ietf(otk, sizeof(otk), nonce, k) == 0);
	DV_ASSERT(crypto_onetimeauth_poly1305_init(&t->st, otk) == 0);
	sodium_memzero(otk, sizeof(otk));
	t->ad_len = 0;
}

static void tag_add(struct tagger *t, const uint8_t *p, size_t n)
{
	DV_ASSERT(crypto_onetimeauth_poly1305_update(&t->st, p, n) == 0);
	t->ad_len += n;
}

static void tag_end(struct tagger *t, uint8_t tag[TAG_BYTES])
{
	static const uint8_t zeros[16];
	uint8_t lens[16];
	DV_ASSERT(crypto_onetimeauth_poly1305_update(&t->st, zeros, (16u - t->ad_len % 16u) % 16u) == 0);
	le_put64(lens, t->ad_len);
	le_put64(lens + 8, 0); /* the plaintext's length */
	DV_ASSERT(crypto_onetimeauth_poly1305_update(&t->st, lens, sizeof(lens)) == 0);
	DV_ASSERT(crypto_onetimeauth_poly1305_final(&t->st, tag) == 0);
	sodium_memzero(&t->st, sizeof(t->st));
}

/* 0 when tag is frame seq's tag over ad (its head and payload, contiguous). */
static int frame_verify(const uint8_t k[WIRE_KEY_BYTES], uint64_t seq, const uint8_t *ad, size_t ad_len,
			const uint8_t tag[TAG_BYTES])
{
	uint8_t nonce[NONCE_BYTES];
	frame_nonce(seq, nonce);
	/* An empty ciphertext: nothing is decrypted (m NULL), only the tag checked. */
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(NULL, NULL, ad, 0, tag, ad, ad_len, nonce, k);
}

static int feed_frame(struct wire *w, uint8_t *buf, size_t len, size_t *used, uint8_t **payload, size_t *payload_len)
{
	if (len < WIRE_FRAME_HEAD)
		return WIRE_NEED;
	uint32_t n = le_get32(buf);
	if (n > WIRE_PAYLOAD_MAX)
		return die(w, -EMSGSIZE); /* known from 4 bytes: nothing more is buffered */
	size_t total = (size_t)WIRE_FRAME_HEAD + n + WIRE_FRAME_TAIL;
	if (len < total)
		return WIRE_NEED;
	if (frame_verify(w->k_recv, w->seq_recv, buf, WIRE_FRAME_HEAD + (size_t)n, buf + WIRE_FRAME_HEAD + n) != 0)
		return die(w, -EBADMSG);
	DV_ASSERT(w->seq_recv < UINT64_MAX); /* a nonce is never reused */
	w->seq_recv++;
	*payload = buf + WIRE_FRAME_HEAD;
	*payload_len = n;
	*used = total;
	return WIRE_FRAME;
}

int wire_feed(struct wire *w, uint8_t *buf, size_t len, size_t *used, uint8_t **payload, size_t *payload_len)
{
	*used = 0;
	*payload = NULL;
	*payload_len = 0;
	if (w->state == WIRE_DEAD)
		return -EPROTO;
	/* A peer that is not speaking this protocol is refused on its first
	 * bytes rather than after a whole HELLO. */
	if ((w->state == WIRE_WAIT_HELLO || w->state == WIRE_HELLO_SENT) && len >= 6 && !magic_ok(buf))
		return die(w, -EPROTO);
	switch (w->state) {
	case WIRE_WAIT_HELLO:
		return feed_hello_c(w, buf, len, used);
	case WIRE_WAIT_PROOF:
		return feed_proof_c(w, buf, len, used);
	case WIRE_HELLO_SENT:
		return feed_hello_s(w, buf, len, used);
	case WIRE_UP:
		return feed_frame(w, buf, len, used, payload, payload_len);
	default:
		DV_ASSERT(!"wire state");
		return -EPROTO;
	}
}

size_t wire_next_bytes(const struct wire *w, const uint8_t *buf, size_t len)
{
	switch (w->state) {
	case WIRE_WAIT_HELLO:
		return WIRE_HELLO_BYTES;
	case WIRE_WAIT_PROOF:
		return WIRE_PROOF_BYTES;
	case WIRE_HELLO_SENT:
		return WIRE_HELLO_BYTES + WIRE_PROOF_BYTES;
	case WIRE_UP:
		if (len < WIRE_FRAME_HEAD || le_get32(buf) > WIRE_PAYLOAD_MAX)
			return WIRE_FRAME_HEAD;
		return (size_t)WIRE_FRAME_HEAD + le_get32(buf) + WIRE_FRAME_TAIL;
	default:
		return 0;
	}
}

size_t wire_seal(struct wire *w, uint8_t *frame, size_t payload_len)
{
	DV_ASSERT(w->state == WIRE_UP);
	DV_ASSERT(!w->out_pending); /* the connector's proof goes out before any frame */
	DV_ASSERT(payload_len <= WIRE_PAYLOAD_MAX);
	DV_ASSERT(w->seq_send < UINT64_MAX); /* a nonce is never reused */
	le_put32(frame, (uint32_t)payload_len);
	struct tagger t;
	tag_begin(&t, w->k_send, w->seq_send);
	tag_add(&t, frame, WIRE_FRAME_HEAD + payload_len);
	tag_end(&t, frame + WIRE_FRAME_HEAD + payload_len);
	w->seq_send++;
	return WIRE_FRAME_HEAD + payload_len + WIRE_FRAME_TAIL;
}

size_t wire_seal_msgs(struct wire *w, uint8_t *const *msgs, const uint32_t *lens, unsigned n)
{
	DV_ASSERT(w->state == WIRE_UP && !w->out_pending);
	DV_ASSERT(n >= 1 && n <= WIRE_BATCH_MSGS_MAX);
	size_t payload = 0;
	for (unsigned i = 0; i < n; i++) {
		DV_ASSERT(lens[i] >= 1 && lens[i] <= MSG_BYTES_MAX);
		payload += WIRE_BATCH_HEAD + (size_t)lens[i];
	}
	DV_ASSERT(payload <= WIRE_PAYLOAD_MAX && (n == 1 || payload <= WIRE_BATCH_BYTES));
	uint8_t *head = msgs[0] - WIRE_SEAL_HEADROOM;
	le_put32(head, (uint32_t)payload);
	DV_ASSERT(w->seq_send < UINT64_MAX);
	/* The tag over the pieces as they lie: the same bytes as a contiguous
	 * frame, so the receiver checks it in one call (frame_verify). */
	struct tagger t;
	tag_begin(&t, w->k_send, w->seq_send);
	tag_add(&t, head, WIRE_FRAME_HEAD);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *rec = msgs[i] - WIRE_BATCH_HEAD;
		le_put32(rec, lens[i]);
		tag_add(&t, rec, WIRE_BATCH_HEAD + (size_t)lens[i]);
	}
	tag_end(&t, msgs[n - 1] + lens[n - 1]);
	w->seq_send++;
	return WIRE_FRAME_HEAD + payload + WIRE_FRAME_TAIL;
}

int wire_batch_next(const uint8_t *payload, size_t len, size_t *off, const uint8_t **msg, size_t *msg_len)
{
	*msg = NULL;
	*msg_len = 0;
	DV_ASSERT(*off <= len);
	if (*off == len)
		return 0;
	if (len - *off < WIRE_BATCH_HEAD)
		return -EBADMSG; /* a record head cut by the end */
	uint32_t n = le_get32(payload + *off);
	if (n == 0 || n > len - *off - WIRE_BATCH_HEAD)
		return -EBADMSG;
	*msg = payload + *off + WIRE_BATCH_HEAD;
	*msg_len = n;
	*off += WIRE_BATCH_HEAD + (size_t)n;
	return 1;
}

int wire_batch_count(const uint8_t *payload, size_t len)
{
	if (len == 0)
		return -EBADMSG; /* a frame carries at least one message */
	size_t off = 0;
	int count = 0;
	/* Each step consumes at least WIRE_BATCH_HEAD + 1 bytes. */
	for (size_t guard = 0; guard <= len; guard++) {
		const uint8_t *m;
		size_t ml;
		int r = wire_batch_next(payload, len, &off, &m, &ml);
		if (r < 0)
			return r;
		if (r == 0)
			return count;
		/* What wire_seal_msgs would not have sealed is refused too. */
		if (++count > (int)WIRE_BATCH_MSGS_MAX || (count > 1 && len > WIRE_BATCH_BYTES))
			return -EBADMSG;
	}
	DV_ASSERT(!"wire_batch_count: no progress");
	return -EBADMSG;
}

size_t wire_batch_put(uint8_t *out, const uint8_t *msg, uint32_t len)
{
	DV_ASSERT(len >= 1);
	le_put32(out, len);
	memmove(out + WIRE_BATCH_HEAD, msg, len);
	return WIRE_BATCH_HEAD + (size_t)len;
}
