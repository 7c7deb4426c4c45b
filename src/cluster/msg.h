/* msg.h - the internode message codec (pure: bytes <-> struct msg).
 *
 * The wire layer (wire.h) frames and authenticates messages on a real
 * connection, several to a frame; the simulator hands them over one by one
 * as they are.
 * Every message carries its own checksum, so a flip in transit is caught
 * without the wire layer too.
 *
 * Header (little-endian, MSG_HDR_BYTES):
 *   off 0  u64 checksum   XXH3-64 of bytes [8, MSG_HDR_BYTES + body_len)
 *   off 8  u8  version    MSG_VERSION; any other is refused
 *   off 9  u8  type       enum msg_type
 *   off 10 u16 flags      MSGF_*
 *   off 12 u16 from       sender node id
 *   off 14 u16 to         receiver node id (a message for another node is refused
 *                         by the receiver, see below)
 *   off 16 u64 req_id     the sender's request id; a reply echoes it
 *   off 24 u64 hlc        the sender's hybrid logical clock
 *   off 32 u32 body_len
 *   off 36 u32 epoch      the sender's flush tag of the message's keyspace
 *                         (node.h: 0 when it was never flushed, and for
 *                         messages of no keyspace); not interpreted here
 * Bodies:
 *   REPL_PUT        u16 key_len | key | u16 meta_len | meta | u32 vals_len | vals
 *   REPL_PUT_ACK    u8 status
 *   REPL_GET        u16 key_len | key
 *   REPL_GET_REPLY  u8 status | u16 meta_len | meta | u32 vals_len | vals
 *   FWD_PUT         u16 key_len | key | u8 w | u8 val_flags | u32 timeout_ms
 *                   | u64 expire_ms | u64 delta | u16 ctx_n
 *                   | ctx_n x {u64 actor | u64 counter} | u32 val_len | value
 *   FWD_PUT_REPLY   u8 status
 *   PING, PONG      u64 nonce
 *   FLUSH           u16 ks_mask | u64 id | u64 until
 *   FLUSH_ACK       u8 status | u64 id
 *   FLUSH_STATE_GET (empty)
 *   FLUSH_STATE     u8 n | n x {u64 id | u64 until}
 *   SCAN            u8 keyspace | u16 limit | u64 pos | u64 end
 *   SCAN_REPLY      u8 status | u8 done | u64 next | u16 nkeys
 *                   | nkeys x {u16 len | user key}
 *   COUNT           u8 keyspace
 *   COUNT_REPLY     u8 status | u64 count
 * (key is a store key: keyspace byte + user key; meta/vals a dvv record
 * encoding, dvv.h.)
 *
 * Contract:
 * - msg_decode checks the length (MSG_HDR_BYTES..MSG_BYTES_MAX, equal to
 *   MSG_HDR_BYTES + body_len), the checksum, version, type,
 *   flags, every length against the bytes left and its limit before use,
 *   and that the body is consumed exactly; anything else is -EBADMSG (and
 *   *m is zeroed). Views point into the buffer: nothing is copied or
 *   allocated. The rules, all checked:
 *   - from and to are 1..RING_NODE_ID_MAX (0 is no node);
 *   - flags: MSGF_REPAIR on REPL_PUT and REPL_PUT_ACK (a replica echoes it),
 *     MSGF_IF_COVERED on REPL_PUT (not echoed), MSGF_CLOCK_ONLY on REPL_GET
 *     and REPL_GET_REPLY (echoed: the reply's vals may be empty while meta
 *     lists the lengths), none on other types;
 *   - key 1..DV_KEY_BYTES_MAX; a version (REPL_PUT, an OK REPL_GET_REPLY)
 *     has meta 1..DVV_META_BYTES_MAX and vals <= DV_VALUE_BYTES_MAX; a
 *     REPL_GET_REPLY whose status is not OK has neither;
 *   - status <= MSG_ST_MAX;
 *   - FWD_PUT: w <= RING_N_MAX (0 = the keyspace's), val_flags one of 0,
 *     DVV_VAL_TOMB (no value) and DVV_VAL_COUNTER (the value is a counter
 *     state, counter.h, and delta the increment), value <=
 *     DV_VALUE_BYTES_MAX, ctx_n <= DVV_ENTRIES_MAX entries with strictly
 *     increasing actors (a struct dvv_vv). Counters and the u64 fields are
 *     not interpreted; delta is 0 unless val_flags is DVV_VAL_COUNTER.
 *   - FLUSH: ks_mask and id not 0. FLUSH_STATE: n <= MSG_FLUSH_KS_MAX.
 *   - SCAN: keyspace < MSG_FLUSH_KS_MAX, limit 1..MSG_SCAN_KEYS_MAX, pos
 *     <= end. SCAN_REPLY: done 0 or 1, nkeys <= MSG_SCAN_KEYS_MAX, every
 *     key 0..MSG_SCAN_KEY_MAX bytes inside the body; a status other than
 *     OK has no keys, done 0 and next 0. COUNT: keyspace <
 *     MSG_FLUSH_KS_MAX.
 *   So decode accepts exactly what encode produces: a decoded message
 *   re-encodes to the same bytes.
 * - Addressing is the receiver's check, not the codec's (it knows neither
 *   side): cnode_on_message drops and counts (bad_msgs) a message whose to
 *   is not its node id or whose from is not the peer the driver
 *   authenticated on the connection (wire.h). A message addressed to
 *   another node therefore encodes and decodes like any other.
 * - msg_encode asserts the same rules (a message that breaks them is a bug
 *   of the sender) and writes msg_encoded_bytes(m) bytes; the value is
 *   copied once, straight into the frame. Senders allocate MSG_HEADROOM
 *   bytes before and MSG_TAILROOM after a message so the wire layer can
 *   seal it in place.
 */
#ifndef DV_CLUSTER_MSG_H
#define DV_CLUSTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/dvv.h"

#define MSG_VERSION 3u /* 3: MSGF_IF_COVERED, MSG_ST_UNCOVERED */
#define MSG_HDR_BYTES 40u
#define MSG_BYTES_MAX (MSG_HDR_BYTES + 64u + 1024u + DVV_META_BYTES_MAX + (1u << 20) + 1024u)
#define MSG_HEADROOM 16u
#define MSG_TAILROOM 16u
#define MSG_CTX_BYTES_MAX (DVV_ENTRIES_MAX * 16u) /* FWD_PUT's context on the wire */
#define MSG_FLUSH_KS_MAX 16u   /* keyspaces a FLUSH mask or FLUSH_STATE can name */
#define MSG_SCAN_KEYS_MAX 512u /* keys a SCAN page can carry */
#define MSG_SCAN_KEY_MAX 1023u /* a user key (the store key has one more byte) */

enum msg_type {
	MSG_REPL_PUT = 1,   /* coordinator -> replica: merge this version */
	MSG_REPL_PUT_ACK,   /* replica -> coordinator: durable (or why not) */
	MSG_REPL_GET,       /* coordinator -> replica: send your version */
	MSG_REPL_GET_REPLY,
	MSG_FWD_PUT,        /* a node outside the preference list -> a replica: coordinate this write */
	MSG_FWD_PUT_REPLY,
	MSG_PING,           /* reserved for failure detection (next issue) */
	MSG_PONG,
	MSG_FLUSH,          /* flush coordinator -> every node: apply flush id to these keyspaces */
	MSG_FLUSH_ACK,      /* durable (or why not; STALE: the node has a newer flush) */
	MSG_FLUSH_STATE_GET, /* a node whose peer session came up -> the peer */
	MSG_FLUSH_STATE,    /* the peer's flush id of every keyspace */
	MSG_SCAN,           /* scan coordinator -> replica: keys of [pos, end], at most limit */
	MSG_SCAN_REPLY,     /* the keys and where the next page starts */
	MSG_COUNT,          /* DBSIZE: the keys of a keyspace a node holds */
	MSG_COUNT_REPLY,
	MSG_TYPE_MAX = MSG_COUNT_REPLY
};

#define MSGF_REPAIR 1u     /* REPL_PUT: read repair (counted, acked as usual) */
#define MSGF_CLOCK_ONLY 2u /* REPL_GET: values may be omitted (vals_len 0, lens kept in meta) */
#define MSGF_IF_COVERED 4u /* REPL_PUT: answered UNCOVERED when the version's clock does not cover the
			    * stored copy's (dvv_covered); merged either way (a plain SET's check in
			    * place of a read: coord.c, "Checked writes") */

/* Statuses of replies; the coordinator maps them to client results. */
enum msg_status {
	MSG_ST_OK = 0,
	MSG_ST_NOTFOUND,  /* REPL_GET: no record */
	MSG_ST_TOO_BIG,   /* the merge would exceed the sibling or record bounds: refused */
	MSG_ST_FAILED,    /* the replica's store is failed (or another store error) */
	MSG_ST_BUSY,      /* back-pressure: not applied, try later */
	MSG_ST_BAD,       /* malformed request (or a corrupt stored record: REPL_GET) */
	MSG_ST_NOT_REPLICA, /* FWD_PUT to a node outside the preference list */
	MSG_ST_TIMEOUT,   /* FWD_PUT_REPLY: the forwarded write is indeterminate */
	MSG_ST_INVALID_CTX,
	MSG_ST_STALE,     /* the request's keyspace epoch is not the receiver's (a flush between) */
	MSG_ST_RANGE,     /* FWD_PUT counter: the result would overflow, or not an integer */
	MSG_ST_FLUSHED,   /* FWD_PUT_REPLY: written in an older epoch, then flushed: nothing left, not to redo */
	MSG_ST_UNCOVERED, /* REPL_PUT_ACK of an MSGF_IF_COVERED put: the stored copy knew more (or was
			   * unreadable); the version was merged (beside it) all the same */
	MSG_ST_FULL,      /* REPL_PUT_ACK, FWD_PUT_REPLY: the device is full: nothing written */
	MSG_ST_MAX = MSG_ST_FULL
};

struct msg {
	uint8_t type;
	uint16_t flags;
	uint16_t from, to;
	uint64_t req_id;
	uint64_t hlc;
	uint32_t epoch;          /* the header's flush tag */
	uint8_t status;          /* replies */
	const uint8_t *key;      /* REPL_PUT, REPL_GET, FWD_PUT */
	uint16_t key_len;
	const uint8_t *meta;     /* REPL_PUT, REPL_GET_REPLY */
	uint32_t meta_len;
	const uint8_t *vals;     /* REPL_PUT, REPL_GET_REPLY; FWD_PUT: the value */
	uint32_t vals_len;
	/* FWD_PUT */
	uint8_t w;
	uint8_t val_flags;       /* DVV_VAL_TOMB */
	uint32_t timeout_ms;
	uint64_t expire_ms;
	uint16_t ctx_n;
	const uint8_t *ctx;      /* ctx_n x 16 bytes, as on the wire */
	uint64_t delta;          /* FWD_PUT of a counter: the increment (two's complement) */
	uint64_t nonce;          /* PING, PONG */
	/* FLUSH, FLUSH_ACK: id; FLUSH: ks_mask, until; FLUSH_STATE: n ids and
	 * untils (node.h: a flush kills values stamped up to its until) */
	uint16_t ks_mask;
	uint64_t id, until;
	uint8_t nids;
	uint64_t ids[MSG_FLUSH_KS_MAX], untils[MSG_FLUSH_KS_MAX];
	/* SCAN, COUNT: keyspace; SCAN: limit, pos, end; SCAN_REPLY: done, next
	 * and the keys (nkeys records of u16 len | key at keys, keys_len bytes:
	 * msg_scan_key walks them); COUNT_REPLY: count */
	uint8_t keyspace;
	uint16_t limit;
	uint64_t pos, end;
	uint8_t done;
	uint64_t next;
	uint16_t nkeys;
	const uint8_t *keys;
	uint32_t keys_len;
	uint64_t count;
};

size_t msg_encoded_bytes(const struct msg *m);
/* Encodes m into out (msg_encoded_bytes(m) bytes); returns that length. */
size_t msg_encode(const struct msg *m, uint8_t *out);
/* 0 or -EBADMSG; m's views point into buf. */
int msg_decode(const uint8_t *buf, size_t len, struct msg *m);
/* The key of a REPL_PUT or REPL_GET, read without decoding or checking the
 * message (a hint's: cnode_prefetch_message): true and *key, *key_len (1..)
 * inside buf[0, len), or false (another type, or too short). */
bool msg_peek_key(const uint8_t *buf, size_t len, const uint8_t **key, uint16_t *key_len);
/* FWD_PUT's context entries into a version vector (bounds checked by decode). */
void msg_ctx_get(const struct msg *m, struct dvv_vv *out);
/* The sender's side: vv in wire form into buf, and m->ctx, m->ctx_n set to
 * it (buf must live until msg_encode). */
void msg_ctx_set(struct msg *m, const struct dvv_vv *vv, uint8_t buf[MSG_CTX_BYTES_MAX]);
/* SCAN_REPLY's keys: the key at *off (starting at 0) into *key and *len, and
 * *off past it; false after the last. Lengths were checked by decode (or
 * are the sender's own). */
bool msg_scan_key(const struct msg *m, uint32_t *off, const uint8_t **key, uint16_t *len);
/* The sender's side: appends one key record to buf (len + 2 bytes). */
uint32_t msg_scan_key_put(uint8_t *buf, const uint8_t *key, uint16_t len);
const char *msg_type_name(uint8_t type);

#endif
