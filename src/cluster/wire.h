/* wire.h - an authenticated internode session over a byte stream, sans-IO.
 *
 * Handshake: mutual challenge-response with the cluster secret. K is the
 * 32-byte key derived from the secret (wire_key_from_secret). The node that
 * dials is the connector, the other the acceptor:
 *
 *   connector -> acceptor  HELLO  "DYNW" | u16 version | u16 node id | u64 cluster id | nonce_c[32]
 *   acceptor -> connector  HELLO  "DYNW" | u16 version | u16 node id | u64 cluster id | nonce_s[32]
 *                                 | proof_s[32] = BLAKE2b-256_K("acceptor" | both HELLO heads)
 *   connector -> acceptor  PROOF  proof_c[32] = BLAKE2b-256_K("connector" | both HELLOs, proof_s incl.)
 *
 * Each side checks the other's proof before it trusts anything; the
 * connector also checks that the acceptor is the node it dialled. Session
 * keys per direction: BLAKE2b-256_K("c2s" | transcript) and ("s2c" | ...),
 * so a frame is valid on one connection, in one direction, once.
 *
 * Frames after the handshake: u32 payload_len | payload | tag[16], the tag
 * BLAKE2b-128 keyed with the direction's key over (u64 frame seq | u32 len |
 * payload); seq counts frames per direction from 0 and is not sent, so a
 * replayed, reordered, dropped or altered frame fails its tag.
 *
 * Contract:
 * - No I/O and no randomness of its own: the caller passes its nonce (fresh
 *   random bytes in production, the seeded PRNG in the simulator).
 * - Every length is checked before use; a frame over WIRE_PAYLOAD_MAX, a bad
 *   magic, version or cluster id, a wrong proof or tag kills the session:
 *   wire_feed returns a negative error and the caller closes the connection
 *   (and logs it). Nothing is accepted before the peer's proof verified.
 * - Integrity and authentication only: payloads are not encrypted.
 */
#ifndef DV_CLUSTER_WIRE_H
#define DV_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/msg.h"

#define WIRE_VERSION 1u
#define WIRE_KEY_BYTES 32u
#define WIRE_NONCE_BYTES 32u
#define WIRE_HELLO_BYTES (4u + 2u + 2u + 8u + WIRE_NONCE_BYTES)
#define WIRE_PROOF_BYTES 32u
#define WIRE_HANDSHAKE_OUT_MAX (WIRE_HELLO_BYTES + WIRE_PROOF_BYTES)
#define WIRE_FRAME_HEAD 4u
#define WIRE_FRAME_TAIL 16u
#define WIRE_PAYLOAD_MAX MSG_BYTES_MAX

_Static_assert(WIRE_FRAME_HEAD <= MSG_HEADROOM && WIRE_FRAME_TAIL <= MSG_TAILROOM,
	       "a message buffer has room to be sealed in place");

enum wire_role { WIRE_CONNECTOR = 1, WIRE_ACCEPTOR };

enum wire_state { WIRE_HELLO_SENT = 1, WIRE_WAIT_HELLO, WIRE_WAIT_PROOF, WIRE_UP, WIRE_DEAD };

struct wire {
	enum wire_role role;
	enum wire_state state;
	uint16_t my_id, peer_id; /* peer_id: expected (connector) or learned (acceptor) */
	uint64_t cluster_id;
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

/* expect_peer: the node a connector dials; 0 for an acceptor (learned). */
void wire_init(struct wire *w, enum wire_role role, const uint8_t key[WIRE_KEY_BYTES], uint64_t cluster_id,
	       uint16_t my_id, uint16_t expect_peer, const uint8_t nonce[WIRE_NONCE_BYTES]);
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
 * enum wire_event with *used bytes consumed, or a negative error (-EPROTO
 * bad magic/version/state, -EXDEV other cluster, -EACCES wrong proof or
 * unexpected peer, -EBADMSG wrong tag, -EMSGSIZE frame too large): the
 * session is dead (WIRE_DEAD) and stays so. */
int wire_feed(struct wire *w, uint8_t *buf, size_t len, size_t *used, uint8_t **payload, size_t *payload_len);
/* Seal a frame in place: payload at frame + WIRE_FRAME_HEAD, with
 * WIRE_FRAME_TAIL bytes of room after it. Returns the frame's length. Only
 * once the session is up. */
size_t wire_seal(struct wire *w, uint8_t *frame, size_t payload_len);
static inline bool wire_up(const struct wire *w) { return w->state == WIRE_UP; }

#endif
