/* dvv.h - the causal version of one key: a dotted version vector set
 * (DVVSet, Almeida et al. 2013; Riak's dvvset.erl), and its encodings.
 *
 * A DVVSet is a clock with one entry per actor that coordinated a write of
 * the key. Entry (actor, counter, values) says: this actor's events 1..counter
 * are known, and the values of its last len(values) events, newest first, are
 * siblings that no known write has superseded. An actor is a node in one
 * incarnation (dvv_actor()); the incarnation is renewed at every start of the
 * node and whenever it replaces a damaged copy (node.h: Actors), so a dot
 * (actor, counter) is never issued twice for one key even by a node whose
 * disk lost what it acknowledged (dots of one actor are per key and
 * contiguous: only the node that stores the key durably issues them, from its
 * own stored clock).
 *
 * Contract:
 * - struct dvv is a decoded view with fixed-size arrays: no allocation.
 *   Value bytes are not owned: each dvv_value points into the buffer it was
 *   decoded from or that the caller set. Outputs of dvv_sync/dvv_update point
 *   into the inputs' buffers, so inputs must outlive the output's use.
 * - Entries are sorted by actor, unique; values are grouped by entry in entry
 *   order, newest first within an entry (entry i owns v[first .. first+nvals)).
 * - dvv_sync is commutative, associative and idempotent on clocks and value
 *   sets; dvv_update(local, ctx, actor, val) is dvvset:update(new(ctx, [val]),
 *   local, actor): the result descends both local and ctx, and val supersedes
 *   exactly the values whose dots ctx covers (concurrent ones stay siblings).
 * - There are no anonymous values: dynvme only creates values through update.
 * - Bounds: DVV_ENTRIES_MAX actors, DVV_VALUES_MAX values, DVV_VALUE_BYTES_MAX
 *   bytes of values in all (so the record's value fits the engine) and
 *   counters up to DVV_COUNTER_MAX. An operation that would exceed them
 *   returns -E2BIG and leaves its output unspecified; a replica refuses such
 *   a merge (it never drops a value to fit).
 * - Well-formed (asserted on entry and exit of every function, checked by
 *   the decoders): entries sorted by actor, unique, counter 1..COUNTER_MAX,
 *   nvals <= counter, first = the sum of the nvals before, the sum of all
 *   nvals = nvals; flags 0, DVV_VAL_TOMB (len 0) or DVV_VAL_COUNTER (a
 *   counter state, counter.h: dvv_decode checks it whole); LWW: at most one
 *   value, never a counter. Versions of different policies never merge
 *   (-EINVAL).
 * - Counters: a DVV_VAL_COUNTER value is visible like any value (and can be
 *   the pick); it is one sibling of the key. Readers merge the states of
 *   every visible counter sibling (counter_merge) to get the counter: the
 *   dvv itself never looks inside a value.
 * - LWW keyspaces use the same struct with policy DVV_LWW: the clock merges
 *   as for siblings, and there is at most one value, in the entry of its
 *   writer: the greatest in the order (ts, writer actor, then flags,
 *   expire_ms, len, bytes: a total order, so sync is commutative whatever
 *   the input). dvv_sync keeps the greater of the two values; dvv_update
 *   ignores the context for values and keeps the greater of local's and val,
 *   so val replaces local's value whenever the caller stamped it after
 *   observing local's ts (hlc_observe, then hlc_now), and an update never
 *   disagrees with a later sync.
 * - Every decoder checks every count and length against the buffer and the
 *   bounds before use; malformed input is -DV_ECORRUPT (record) or -EINVAL
 *   (client context), never a crash.
 * - The context tag uses libsodium: the process calls sodium_init() once at
 *   start (libsodium's rule), before any dvv_ctx_* call.
 *
 * Record encoding (engine record meta; little-endian), values' bytes are the
 * record's value, concatenated in v[] order:
 *   u64 checksum (dv_checksum64 of the meta's bytes [8, meta_len))
 *   | u8 format (1) | u8 policy | u16 nentries | u16 nvals | u16 zero   16 B
 *   nentries x { u64 actor | u64 counter | u16 nvals }                 18 B
 *   nvals    x { u64 ts | u64 expire_ms | u32 len | u8 flags }         21 B
 * At most 16 + 32*18 + 64*21 = 1936 bytes: fits DV_META_BYTES_MAX. The
 * checksum makes any damage of the meta a refusal (the engine's record and
 * the internode message checksums cover it too; the value bytes are covered
 * by those only).
 *
 * Client context (DYN.GET's opaque string): base64url (no padding, canonical:
 * unused low bits zero) of
 *   u8 version (2) | u8 policy | u64 cluster_id | u64 flush_id | u16 n | n x {u64 actor | u64 counter}
 *   | 16-byte tag = BLAKE2b-128 keyed with the cluster's context key over
 *     (everything before the tag | the store key)
 * so a context from another cluster (-EXDEV, reported for a well-formed
 * context before its tag is checked), for another key, altered or truncated
 * (-EINVAL) is refused. The empty string is the context of a key never read
 * (empty vector). flush_id is the keyspace's newest flush on the node that
 * made the context (0: none; node_int.h I10): a node that has not applied
 * that flush yet holds a write with the context until it has.
 */
#ifndef DV_CLUSTER_DVV_H
#define DV_CLUSTER_DVV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DVV_ENTRIES_MAX 32u
#define DVV_VALUES_MAX 64u
#define DVV_VALUE_BYTES_MAX (1u << 20) /* = DV_VALUE_BYTES_MAX (asserted in dvv.c) */
#define DVV_COUNTER_MAX (1ull << 62)
#define DVV_META_HDR_BYTES 16u
#define DVV_META_ENTRY_BYTES 18u
#define DVV_META_VALUE_BYTES 21u
#define DVV_META_BYTES_MAX \
	(DVV_META_HDR_BYTES + DVV_ENTRIES_MAX * DVV_META_ENTRY_BYTES + DVV_VALUES_MAX * DVV_META_VALUE_BYTES)
#define DVV_CTX_TAG_BYTES 16u
#define DVV_CTX_KEY_BYTES 32u
/* Binary context: 20-byte head, 16 bytes an entry, the tag. */
#define DVV_CTX_BIN_MAX (20u + DVV_ENTRIES_MAX * 16u + DVV_CTX_TAG_BYTES)
/* base64url without padding of the binary form, plus a NUL. */
#define DVV_CTX_TEXT_MAX ((DVV_CTX_BIN_MAX * 4u + 2u) / 3u + 1u)

/* Node ids take 16 bits, incarnations 48 (never 0). */
#define DVV_INCARNATION_MASK ((1ull << 48) - 1)
static inline uint64_t dvv_actor(uint16_t node_id, uint64_t incarnation)
{
	return (uint64_t)node_id << 48 | (incarnation & DVV_INCARNATION_MASK);
}
static inline uint16_t dvv_actor_node(uint64_t actor) { return (uint16_t)(actor >> 48); }

enum dvv_policy { DVV_SIBLINGS = 1, DVV_LWW = 2 };

#define DVV_VAL_TOMB 1u    /* a delete: hidden from reads, supersedes like a value */
#define DVV_VAL_COUNTER 2u /* a convergent counter's state (counter.h): visible, merged by readers */

struct dvv_value {
	const uint8_t *data;
	uint32_t len;
	uint8_t flags;      /* DVV_VAL_TOMB or DVV_VAL_COUNTER */
	uint64_t ts;        /* hybrid logical clock at the write (hlc.h) */
	uint64_t expire_ms; /* absolute unix ms; 0 = never. Expired = hidden, still causal */
};

struct dvv_entry {
	uint64_t actor;
	uint64_t counter; /* this actor's events 1..counter are known */
	uint16_t nvals;   /* values of dots counter, counter-1, ... (nvals <= counter) */
	uint16_t first;   /* index of the newest of them in dvv.v */
};

struct dvv {
	uint8_t policy; /* enum dvv_policy */
	uint16_t nentries;
	uint16_t nvals;
	struct dvv_entry e[DVV_ENTRIES_MAX];
	struct dvv_value v[DVV_VALUES_MAX];
};

/* A version vector: the causal context a client holds (dvvset:join). */
struct dvv_vv {
	uint16_t n;
	struct {
		uint64_t actor, counter;
	} e[DVV_ENTRIES_MAX]; /* sorted by actor, unique */
};

void dvv_init(struct dvv *d, enum dvv_policy policy);
/* out = d, writing only the entries and values in use (a struct dvv is
 * 3.3 KiB; most versions use a few dozen bytes of it). Value bytes are
 * not copied: out's values point where d's do. */
void dvv_copy(struct dvv *out, const struct dvv *d);
/* out = sync(a, b). out must not alias a or b. 0, -E2BIG, or -EINVAL
 * (a and b of different policies). */
int dvv_sync(struct dvv *out, const struct dvv *a, const struct dvv *b);
/* out = update(new(ctx, [val]), local, actor): a new event of actor holding
 * val (a tombstone has len 0). out must not alias local. 0, -E2BIG, or
 * -EINVAL (ctx not dvv_vv_valid: it may come from the network). */
int dvv_update(struct dvv *out, const struct dvv *local, const struct dvv_vv *ctx, uint64_t actor,
	       const struct dvv_value *val);
/* ctx->n <= DVV_ENTRIES_MAX, actors sorted and unique, counters 1..COUNTER_MAX. */
bool dvv_vv_valid(const struct dvv_vv *vv);
/* The causal context of d (every entry's actor and counter). */
void dvv_join(const struct dvv *d, struct dvv_vv *out);
/* a's clock is strictly older than b's (a's values are all outdated). */
bool dvv_less(const struct dvv *a, const struct dvv *b);
/* b's clock knows every event a's knows (each of a's actors, counter for
 * counter): dvv_less(a, b) or the same clock. A version b built over such
 * an a keeps nothing of a that sync(a, b) would add back. */
bool dvv_covered(const struct dvv *a, const struct dvv *b);
/* out = v (one value, of dot (actor, counter)) with its clock joined with
 * m's: the same value and dot, now following every event m knows (no new
 * event). -ESTALE when m knows the dot but no longer holds it (superseded
 * there), knows later events of its actor, or holds a value other than v
 * that is not below v in dvv_pick's order (ts, actor, counter): two values
 * widened at once over each other would each supersede the other, so only
 * the greater may. -E2BIG past DVV_ENTRIES_MAX entries; -EINVAL for another
 * policy. m may be clock-only. */
int dvv_widen(struct dvv *out, const struct dvv *v, const struct dvv *m);
/* Same policy and clocks: entries, counters and value counts (dvvset:equal). */
bool dvv_equal(const struct dvv *a, const struct dvv *b);
/* Same clocks and the same value bytes and metadata (convergence checks). */
bool dvv_identical(const struct dvv *a, const struct dvv *b);
/* Values visible to a read at now_ms: not tombstones, not expired
 * (expire_ms != 0 && expire_ms <= now_ms), in v[] order. Returns how many
 * there are; the first max of them go to out (NULL when max is 0). */
unsigned dvv_visible(const struct dvv *d, uint64_t now_ms, const struct dvv_value **out, unsigned max);
/* Plain GET's pick (add-wins): the value with the greatest (ts, actor,
 * counter) among the visible values (dvv_visible: neither tombstones nor
 * expired); NULL when there is none. So a key exists for plain commands iff
 * it has a visible sibling: a delete or expiry hides only the values it
 * covers or is, never a concurrent one. The same on every node for the
 * same set and now_ms. */
const struct dvv_value *dvv_pick(const struct dvv *d, uint64_t now_ms);
/* Drop value-less entries of actors not in keep[] while the clock has more
 * than max_entries entries, the oldest incarnation first (the smallest
 * actor's low 48 bits: a run drawn from a clock, node.h "Actors"; its
 * values are the likeliest to be superseded everywhere). A pruned actor's old
 * values could come back as siblings, never be lost; it only happens when
 * more than max_entries actors coordinated one key. Returns entries dropped. */
unsigned dvv_prune(struct dvv *d, const uint64_t *keep, unsigned nkeep, unsigned max_entries);

/* Record encoding (see the top comment). */
uint32_t dvv_meta_bytes(const struct dvv *d);
uint64_t dvv_value_bytes(const struct dvv *d);
/* Writes dvv_meta_bytes(d) bytes to meta and dvv_value_bytes(d) to vals. */
void dvv_encode(const struct dvv *d, uint8_t *meta, uint8_t *vals);
/* Values of d point into vals (a value of len 0 points to a static empty
 * byte, never NULL). vals_len must be the sum of the value lengths. 0 or
 * -DV_ECORRUPT. */
int dvv_decode(struct dvv *d, const uint8_t *meta, uint32_t meta_len, const uint8_t *vals, uint32_t vals_len);
/* The meta alone, when the value bytes were left out (MSGF_CLOCK_ONLY):
 * lengths and metadata kept, every v[i].data NULL. Good for join, less,
 * equal, pick, visible and sync (the result is clock-only too); encoding or
 * comparing bytes (dvv_identical) of such a version is a bug (asserted).
 * 0 or -DV_ECORRUPT. */
int dvv_decode_clock(struct dvv *d, const uint8_t *meta, uint32_t meta_len);

/* Client contexts (see the top comment). key is the store key the context
 * belongs to. Encode returns the text length (< DVV_CTX_TEXT_MAX, NUL
 * written). Decode: 0; -EXDEV (another cluster); -EINVAL (garbage,
 * truncated, wrong tag: altered, forged or for another key). len 0 gives
 * the empty vector. *flush_id (when not NULL) gets the context's flush id
 * (0 for the empty context or a refused one). */
size_t dvv_ctx_encode(const struct dvv_vv *vv, uint8_t policy, uint64_t flush_id, uint64_t cluster_id,
		      const uint8_t ctx_key[DVV_CTX_KEY_BYTES], const void *key, uint32_t key_len, char *out);
int dvv_ctx_decode(const char *text, size_t len, uint64_t cluster_id, const uint8_t ctx_key[DVV_CTX_KEY_BYTES],
		   const void *key, uint32_t key_len, struct dvv_vv *out, uint64_t *flush_id);

#endif
