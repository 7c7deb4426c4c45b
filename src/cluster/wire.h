/* wire.h - an authenticated internode session over a byte stream, sans-IO.
 *
 * Handshake: mutual challenge-response with the cluster secret. K is the
 * 32-byte key derived from the secret (wire_key_from_secret). The node that
 * dials is the connector, the other the acceptor. All integers little-endian;
 * H_K(x) is BLAKE2b keyed with K (libsodium crypto_generichash), "|" is
 * concatenation, labels are their ASCII bytes without a NUL:
 *
 *   connector -> acceptor  HELLO_C (56 B) "DYNW" | u16 version | u16 node id | u64 cluster id
 *                                        | u64 ring digest | nonce_c[32]
 *   acceptor -> connector  HELLO_S (56 B) "DYNW" | u16 version | u16 node id | u64 cluster id
 *                                        | u64 ring digest | nonce_s[32]
 *                          proof_s (32 B) = H_K-256("acceptor" | HELLO_C | HELLO_S)
 *   connector -> acceptor  proof_c (32 B) = H_K-256("connector" | HELLO_C | HELLO_S | proof_s)
 *
 * Each side checks the other's proof before it trusts anything; the
 * connector also checks that the acceptor is the node it dialled. Session
 * keys per direction: k_c2s = H_K-256("c2s" | HELLO_C | HELLO_S | proof_s),
 * k_s2c = H_K-256("s2c" | same); both nonces are fresh per connection, so a
 * frame is valid on one connection, in one direction, once. K itself is
 * wiped from the session once they exist.
 *
 * Frames after the handshake: u32 payload_len | payload | tag[16]. The tag
 * is ChaCha20-Poly1305 (RFC 8439, the IETF variant, libsodium
 * crypto_aead_chacha20poly1305_ietf) under the direction's key, encrypting
 * an empty plaintext with the frame's first 4 + payload_len bytes (u32
 * payload_len | payload) as associated data, the 12-byte nonce u64 seq |
 * u32 0, where seq counts frames per direction from 0 and is not sent: a
 * replayed, reordered, dropped or altered frame fails its tag, and no
 * (key, nonce) pair tags two frames (version 4; before, a BLAKE2b-128 keyed
 * hash of seq | frame, 2.7 to 6.7 times the time per frame of 300 B
 * to 32 KiB on this machine). Concretely: the
 * Poly1305 key is the first 32 bytes of ChaCha20 (key, nonce, block
 * counter 0); the tag is Poly1305 over the associated data, zero bytes to a
 * multiple of 16, u64 len(associated data), u64 0.
 *
 * A frame carries a batch of messages (version 2): its payload is one or
 * more records u32 msg_len | msg[msg_len], msg_len >= 1, that fill it
 * exactly. A driver seals every message due to one peer in one loop round
 * into as few frames as the bounds allow (wire_seal_msgs: at most
 * WIRE_BATCH_MSGS_MAX messages, and more than one only while the payload
 * stays within WIRE_BATCH_BYTES), so one tag (one ChaCha20 block and one
 * Poly1305 finalisation) covers many small messages. The session itself treats a
 * payload as opaque bytes (wire_feed, wire_seal); wire_batch_count and
 * wire_batch_next read the records.
 *
 * Contract:
 * - No I/O and no randomness of its own: the caller passes its nonce (fresh
 *   random bytes in production, the seeded PRNG in the simulator). A
 *   struct wire is plain data (no pointers): it may be copied.
 * - wire_key_from_secret initialises libsodium (sodium_init: idempotent and
 *   thread-safe; its first call picks CPU-specific code, so a process calls
 *   it before starting threads that use sessions: the server does when it
 *   loads its config). wire_init calls sodium_init too (a no-op by then),
 *   so a session on a key from elsewhere (tests) is on an initialised
 *   library. No other global state.
 * - Every length is checked before use; a frame over WIRE_PAYLOAD_MAX is
 *   refused from its 4 length bytes, before anything is buffered. A bad
 *   magic or version (checked from the first 6 bytes), another cluster id,
 *   another ring digest (ring_digest: nodes whose partition tables differ
 *   would place keys on different replicas), an unexpected node id (0, our own, or not the one expected), our own
 *   nonce (a reflected HELLO), a wrong proof or tag kills the session:
 *   wire_feed returns a negative error and the caller closes the connection
 *   (and logs it). Nothing is accepted before the peer's proof verified:
 *   bytes that arrive before the handshake completes are read as handshake
 *   messages and fail as such.
 * - peer_id is authenticated once the session is up, but only as "a holder
 *   of the cluster secret that claims this id": the secret is shared, so any
 *   member can claim any id. The driver checks that the id is a member and
 *   that it has one session per peer.
 * - A weak secret can be guessed offline from one proof_s (anyone who can
 *   connect gets one): secrets are 32 random bytes (dynvme cluster up).
 * - Integrity and authentication only: payloads are not encrypted.
 */
#ifndef DV_CLUSTER_WIRE_H
#define DV_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/msg.h"

#define WIRE_VERSION 4u /* 2: a frame holds a batch of messages; 3: the HELLO names the ring; 4: ChaCha20-Poly1305 tags */
#define WIRE_KEY_BYTES 32u
#define WIRE_NONCE_BYTES 32u
#define WIRE_HELLO_BYTES (4u + 2u + 2u + 8u + 8u + WIRE_NONCE_BYTES)
#define WIRE_PROOF_BYTES 32u
#define WIRE_HANDSHAKE_OUT_MAX (WIRE_HELLO_BYTES + WIRE_PROOF_BYTES)
#define WIRE_FRAME_HEAD 4u
#define WIRE_FRAME_TAIL 16u
#define WIRE_BATCH_HEAD 4u          /* u32 msg_len before each message of a frame */
#define WIRE_PAYLOAD_MAX (WIRE_BATCH_HEAD + MSG_BYTES_MAX) /* room for the largest message alone */
#define WIRE_FRAME_BYTES_MAX (WIRE_FRAME_HEAD + WIRE_PAYLOAD_MAX + WIRE_FRAME_TAIL)
#define WIRE_BATCH_MSGS_MAX 256u     /* messages sealed into one frame */
#define WIRE_BATCH_BYTES (64u << 10) /* a frame takes a second message only within this payload */
/* Room wire_seal_msgs needs before each message (its record head, and the
 * frame head before the first) and after it (the tag after the last). */
#define WIRE_SEAL_HEADROOM (WIRE_FRAME_HEAD + WIRE_BATCH_HEAD)
#define WIRE_SEAL_TAILROOM WIRE_FRAME_TAIL

_Static_assert(WIRE_SEAL_HEADROOM <= MSG_HEADROOM && WIRE_SEAL_TAILROOM <= MSG_TAILROOM,
	       "a message buffer has room to be sealed in place");
_Static_assert(WIRE_BATCH_BYTES <= WIRE_PAYLOAD_MAX, "a batch fits a frame");

enum wire_role { WIRE_CONNECTOR = 1, WIRE_ACCEPTOR };

enum wire_state { WIRE_HELLO_SENT = 1, WIRE_WAIT_HELLO, WIRE_WAIT_PROOF, WIRE_UP, WIRE_DEAD };

struct wire {
	enum wire_role role;
	enum wire_state state;
	uint16_t my_id, peer_id; /* peer_id: expected (connector) or learned (acceptor) */
	uint64_t cluster_id, ring_digest;
	uint8_t key[WIRE_KEY_BYTES];
	uint8_t hello_mine[WIRE_HELLO_BYTES + WIRE_PROOF_BYTES];
	uint8_t hello_peer[WIRE_HELLO_BYTES + WIRE_PROOF_BYTES];
	uint8_t k_send[WIRE_KEY_BYTES], k_recv[WIRE_KEY_BYTES];
	uint64_t seq_send, seq_recv;
	bool out_pending; /* handshake bytes to send (wire_handshake_out) */
};

/* K from the cluster secret (any length >= 16 bytes): BLAKE2b-256 with a
 * fixed personalisation. 0 or -EINVAL (secret too short). */
int wire_key_from_secret(const void *secret, size_t len, uint8_t key[WIRE_KEY_BYTES]);

/* expect_peer: the node a connector dials; for an acceptor 0 (learned from
 * the HELLO) or the only id it accepts. my_id != 0, expect_peer != my_id.
 * ring_digest: ring_digest() of our partition table; the peer's must be
 * the same. */
void wire_init(struct wire *w, enum wire_role role, const uint8_t key[WIRE_KEY_BYTES], uint64_t cluster_id,
	       uint64_t ring_digest, uint16_t my_id, uint16_t expect_peer, const uint8_t nonce[WIRE_NONCE_BYTES]);
/* Handshake bytes due now into out (WIRE_HANDSHAKE_OUT_MAX bytes of room);
 * returns their length, 0 when nothing is due. */
size_t wire_handshake_out(struct wire *w, uint8_t *out);

enum wire_event {
	WIRE_NEED = 0,   /* more bytes needed: nothing consumed */
	WIRE_STEP,       /* a handshake message consumed: call wire_handshake_out */
	WIRE_READY,      /* handshake complete (also call wire_handshake_out: the connector's proof) */
	WIRE_FRAME,      /* one verified frame consumed: *payload, *payload_len inside buf */
};
/* Consume at most one handshake message or one frame from buf. Returns an
 * enum wire_event with *used bytes consumed (0 for WIRE_NEED), or a
 * negative error (-EPROTO bad magic/version, reflected HELLO, or a session
 * already dead; -EXDEV other cluster; -ENXIO other ring digest (another
 * partition table); -EACCES wrong proof or unexpected
 * peer id; -EBADMSG wrong tag; -EMSGSIZE frame too large) with *used 0:
 * the session is dead (WIRE_DEAD, keys wiped) and stays so. */
int wire_feed(struct wire *w, uint8_t *buf, size_t len, size_t *used, uint8_t **payload, size_t *payload_len);
/* The length of the next handshake message or frame in all, given the len
 * bytes buffered at buf (a frame's length is known from its first 4 bytes):
 * what the driver needs to buffer before wire_feed can go on. At most
 * WIRE_FRAME_BYTES_MAX; 0 once dead. */
size_t wire_next_bytes(const struct wire *w, const uint8_t *buf, size_t len);
/* Seal a frame in place: payload at frame + WIRE_FRAME_HEAD, with
 * WIRE_FRAME_TAIL bytes of room after it. Returns the frame's length. Only
 * once the session is up and its handshake bytes were taken (the
 * connector's proof precedes its first frame): asserted. */
size_t wire_seal(struct wire *w, uint8_t *frame, size_t payload_len);
/* Seal n messages (1..WIRE_BATCH_MSGS_MAX) as one frame, each where it
 * lies: msgs[i] has WIRE_SEAL_HEADROOM bytes of room before it and
 * WIRE_SEAL_TAILROOM after it, lens[i] >= 1, and the payload (the sum of
 * WIRE_BATCH_HEAD + lens[i]) is at most WIRE_PAYLOAD_MAX, and at most
 * WIRE_BATCH_BYTES when n > 1 (asserted). The frame goes on the wire as n
 * pieces, in order: piece i is msgs[i] - wire_piece_lead(i) ..
 * msgs[i] + lens[i] + wire_piece_trail(i, n); nothing is moved or copied.
 * Returns the frame's length (the sum of the pieces). Same rules as
 * wire_seal otherwise. */
size_t wire_seal_msgs(struct wire *w, uint8_t *const *msgs, const uint32_t *lens, unsigned n);
static inline uint32_t wire_piece_lead(unsigned i) { return i == 0 ? WIRE_SEAL_HEADROOM : WIRE_BATCH_HEAD; }
static inline uint32_t wire_piece_trail(unsigned i, unsigned n) { return i + 1 == n ? WIRE_FRAME_TAIL : 0; }
/* A verified frame's payload as a batch: the number of messages (>= 1), or
 * -EBADMSG when its records do not fill it exactly (empty, a msg_len of 0,
 * a record running past the end) or break wire_seal_msgs's bounds (more
 * than WIRE_BATCH_MSGS_MAX messages, or more than one in a payload over
 * WIRE_BATCH_BYTES). Checks every length before use. */
int wire_batch_count(const uint8_t *payload, size_t len);
/* The message at *off (start at 0) into *msg, *msg_len, and *off past it:
 * 1; 0 at the end (*off == len); -EBADMSG for a record wire_batch_count
 * refuses (lengths are checked again here). */
int wire_batch_next(const uint8_t *payload, size_t len, size_t *off, const uint8_t **msg, size_t *msg_len);
/* Writes one record (u32 len | msg) at out: len + WIRE_BATCH_HEAD bytes;
 * for a sender that builds a contiguous payload (tests, fuzzing). */
size_t wire_batch_put(uint8_t *out, const uint8_t *msg, uint32_t len);
static inline bool wire_up(const struct wire *w) { return w->state == WIRE_UP; }

#endif
