/* store.c - engine API, operation state machine and the read path.
 *
 * Op states (store_int.h):
 *
 *   GET:  NEW -> READ (one candidate after another) -> DONE
 *   PUT/DEL:
 *     NEW -> [WAIT_KEY] -> RESOLVE -> QUEUED -> IN_BATCH -> DONE
 *            keylock_acquire  |  index candidates read to find the
 *                 |           |  key's own entry (prev_payload)
 *                 |           +-> DONE (condition failed, DEL of absent key)
 *                 +-> QUEUED (behind a write of the key placed or decided:
 *                 |   keylock_go_on, or handed over by the holder)
 *                 +-> DEFERRED (refused or failed behind a write of the
 *                     key not yet done) -> DONE once that one is
 *
 * The RAM index keeps fingerprints, not keys: a fingerprint match is only a
 * candidate, settled by reading its record and comparing the key, or by
 * the location memo (store_memo.c) without a read: it knows the key hash
 * of records the store wrote or read, so a write resolves from it and a
 * GET skips other keys' records (its own it still reads). Writes
 * to one 64-bit key hash are serialised (keylock): they queue in a chain
 * behind the lock's holder. The next one goes on when the previous one
 * completes or, when the keys are equal, as soon as it is placed in a batch
 * (or decided without writing): it inherits the location of the record
 * placed (or found), is decided against that newest version, and is placed
 * behind it, in the same group commit when it fits. So a hot key costs no
 * extra reads, and successive writes of it no extra flushes (the old engine
 * held the lock until durable: one flush per write of a key).
 *
 * Invariants:
 * 1. The mutations of one 64-bit key hash form one chain in submission
 *    order: the holder (the first not done), then ops that went on early
 *    (QUEUED, IN_BATCH or DEFERRED), then ops that wait (WAIT_KEY). Only
 *    the holder reads candidates (RESOLVE). They apply (seqs are given at
 *    placement, batches and their records apply in placement order) and
 *    complete in chain order; a DEFERRED op completes when the one before
 *    it has, with -DV_EFATAL if the store failed meanwhile.
 * 2. prev_payload, once resolved, is the key's entry when that op applies:
 *    the key's indexed record, or the record of the write before it in the
 *    chain, which applies first (GC moving either: keylock_fix_prev).
 * 3. done() runs from store_poll() only, never inside a device callback.
 * 4. A write resolved from the memo sees what a read would have shown:
 *    same prev_payload, prev_seq, prev_size, prev_live (a memo entry of a
 *    record with an expiry does not settle it: read).
 * 5. A write resolves to "absent" only when every candidate is another
 *    key's record: it verified as such, or it is damaged and whose it is
 *    was told (cand_owner); a candidate that GC moved or whose owner
 *    cannot be told is never taken as "not mine" (the write looks again,
 *    or takes the damaged one as its own: store.h).
 * 6. A GET answers only from the record its key had at one of its
 *    lookups, and from a record with a seq at or above next_seq at its
 *    first lookup (written after it, found by a later lookup) only when
 *    the applied-writes ring says its writer was submitted before the GET
 *    (a lower ticket): never from a write submitted after it (store.h
 *    states what a GET may return).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"
#include "store_int.h"

/* Refusals in a row, with nothing in flight, before a device is taken as
 * unusable (a full ring always has requests in flight to make room). Below
 * the rounds of one store_poll(s, false), so that it never returns with a
 * refused request and nothing in flight to wake the caller. */
#define SUBMIT_REFUSALS_MAX 1024u

#define NO_CAND UINT8_MAX /* priv.damaged_cand: none */

uint64_t store_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t store_key_hash(const void *key, uint32_t key_len) { return dv_key_hash64(key, key_len); }

void store_prefetch(struct store *s, uint64_t hash) { index_prefetch(s->index, hash); }

uint64_t store_key_count(const struct store *s) { return index_count(s->index); }

void opq_push(struct op_queue *q, struct store_op *op)
{
	op->priv.next = NULL;
	if (q->tail)
		q->tail->priv.next = op;
	else
		q->head = op;
	q->tail = op;
}

void opq_push_front(struct op_queue *q, struct store_op *op)
{
	op->priv.next = q->head;
	q->head = op;
	if (!q->tail)
		q->tail = op;
}

struct store_op *opq_pop(struct op_queue *q)
{
	struct store_op *op = q->head;
	if (op) {
		q->head = op->priv.next;
		if (!q->head)
			q->tail = NULL;
		op->priv.next = NULL;
	}
	return op;
}

void store_fail(struct store *s, int err)
{
	if (!s->failed) {
		s->failed = true;
		s->fail_err = err;
		s->st.failed = true;
		fprintf(stderr, "dynvme: store failed: %s; refusing writes\n", dv_strerror(err));
	}
}

int store_dev_submit(struct store *s, struct dev_req *req)
{
	int err = dev_submit(s->dev, req);
	if (err != -EAGAIN) {
		if (err == 0)
			s->submit_refusals = 0;
		return err;
	}
	s->io_retry = true;
	if (dev_in_flight(s->dev) == 0 && ++s->submit_refusals > SUBMIT_REFUSALS_MAX) {
		fprintf(stderr, "dynvme: the device refused %u submissions with nothing in flight\n",
			s->submit_refusals);
		return -EIO;
	}
	return -EAGAIN;
}

void applied_note(struct store *s, uint64_t seq, uint64_t ticket)
{
	if (s->applied_count > 0) {
		uint32_t last = (s->applied_head + s->applied_count - 1) % STORE_APPLIED_RING;
		DV_ASSERT(s->applied[last].seq < seq);
	}
	if (s->applied_count == STORE_APPLIED_RING) {
		s->applied_head = (s->applied_head + 1) % STORE_APPLIED_RING;
		s->applied_count--;
	}
	s->applied[(s->applied_head + s->applied_count) % STORE_APPLIED_RING] =
		(struct applied_write){.seq = seq, .ticket = ticket};
	s->applied_count++;
}

void moved_note(struct store *s, uint64_t old_payload, uint32_t old_gen, uint64_t new_payload,
		uint32_t new_size)
{
	s->moves[s->moves_next] = (struct moved_rec){.old_payload = old_payload, .old_gen = old_gen,
						     .new_payload = new_payload,
						     .new_gen = s->sb.zones[pl_zone(new_payload)].gen,
						     .new_size = new_size};
	s->moves_next = (s->moves_next + 1) % STORE_MOVES_RING;
	if (s->moves_count < STORE_MOVES_RING)
		s->moves_count++;
}

/* Whether the record of seq was written by an op submitted before the op
 * of ticket: known for seqs below the horizon of that op (placed before it
 * started), and from the ring for the writes applied since; unknown
 * (false) once the ring has dropped the seq. */
static bool written_before(const struct store *s, uint64_t seq, uint64_t horizon, uint64_t ticket)
{
	if (seq < horizon)
		return true;
	uint32_t lo = 0, hi = s->applied_count; /* the ring is sorted by seq */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->applied[(s->applied_head + mid) % STORE_APPLIED_RING].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct applied_write *a = &s->applied[(s->applied_head + lo) % STORE_APPLIED_RING];
	return lo < s->applied_count && a->seq == seq && a->ticket < ticket;
}

void store_complete(struct store *s, struct store_op *op, int result)
{
	DV_ASSERT(op->priv.state != OPS_DONE);
	op->result = result;
	op->priv.state = OPS_DONE;
	opq_push(&s->completed, op);
}

/* ---- read buffers ---- */

void *rbuf_get(struct store *s, uint32_t bytes)
{
	if (bytes > READ_BUF_BYTES)
		return dev_buf_alloc(bytes);
	if (s->rbuf_free_count == 0)
		return NULL;
	return s->rbuf_free[--s->rbuf_free_count];
}

void rbuf_put(struct store *s, void *buf, uint32_t bytes)
{
	if (!buf)
		return;
	if (bytes > READ_BUF_BYTES) {
		dev_buf_free(buf);
		return;
	}
	DV_ASSERT(s->rbuf_free_count < READ_BUFS);
	s->rbuf_free[s->rbuf_free_count++] = buf;
	struct store_op *waiter = opq_pop(&s->read_wait);
	if (waiter)
		opq_push(&s->ready, waiter);
}

/* ---- key locks ---- */

static struct store_op **keylock_bucket(struct store *s, uint64_t h)
{
	return &s->keylock[h & (KEYLOCK_BUCKETS - 1)];
}

struct store_op *keylock_holder(struct store *s, uint64_t hash)
{
	for (struct store_op *h = *keylock_bucket(s, hash); h; h = h->priv.lock_next)
		if (h->priv.hash_lo == hash)
			return h;
	return NULL;
}

void keylock_fix_prev(struct store *s, uint64_t hash, uint64_t old_payload, uint64_t new_payload,
		      uint32_t new_size)
{
	DV_ASSERT(new_payload != NO_PAYLOAD);
	for (struct store_op *h = keylock_holder(s, hash); h; h = h->priv.chain_next) {
		if (h->priv.prev_payload != old_payload)
			continue;
		h->priv.prev_payload = new_payload; /* a relocated copy keeps its seq */
		h->priv.prev_size = new_size;
	}
}

/* Queue op for the key lock of its hash: NULL when op holds it now, else
 * the op it waits behind (the chain's tail until op joined it). */
static struct store_op *keylock_acquire(struct store *s, struct store_op *op)
{
	struct store_op **bucket = keylock_bucket(s, op->priv.hash_lo);
	for (struct store_op *h = *bucket; h; h = h->priv.lock_next) {
		if (h == op)
			return NULL; /* handed over by keylock_release() */
		if (h->priv.hash_lo != op->priv.hash_lo)
			continue;
		/* The holder keeps its chain's tail: many pipelined writes of
		 * one key queue in constant time each. */
		struct store_op *tail = h->priv.chain_tail ? h->priv.chain_tail : h;
		DV_ASSERT(tail->priv.chain_next == NULL);
		tail->priv.chain_next = op;
		h->priv.chain_tail = op;
		op->priv.state = OPS_WAIT_KEY;
		return tail;
	}
	op->priv.lock_next = *bucket;
	*bucket = op;
	return NULL;
}

static bool same_key(const struct store_op *a, const struct store_op *b)
{
	return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

static int op_decide(struct store *s, struct store_op *op);
static void op_resolved(struct store *s, struct store_op *op);

/* next, waiting behind op in the key's chain, goes on from what op knows
 * of the key when it can: QUEUED with the record op placed (wrote) or the
 * one op found, or NEW (look the key up itself). Only an op of the same
 * key that found the key's record (or wrote one) knows it; one that failed
 * before resolving hands over nothing, and a failed store decides nothing. */
static void keylock_hand_over(struct store *s, struct store_op *op, struct store_op *next, bool wrote)
{
	DV_ASSERT(next->kind != STORE_RELOC && op->kind != STORE_RELOC); /* relocations take no key lock */
	DV_ASSERT(next->priv.state == OPS_WAIT_KEY);
	bool known = same_key(op, next) && !s->failed && op->priv.resolved;
	if (known && wrote) {
		next->priv.prev_payload = op->priv.new_payload;
		next->priv.prev_seq = op->priv.new_seq;
		next->priv.prev_size = op->priv.rec_size;
		next->priv.prev_live = op->kind == STORE_PUT && (op->expire_ms == 0 || op->expire_ms > store_clock_ms(s));
		next->priv.prev_damaged = false;
	} else if (known) {
		next->priv.prev_payload = op->priv.prev_payload;
		next->priv.prev_seq = op->priv.prev_seq;
		next->priv.prev_size = op->priv.prev_size;
		next->priv.prev_live = op->priv.prev_live;
		next->priv.prev_damaged = op->priv.prev_damaged;
	}
	next->priv.state = known ? OPS_QUEUED : OPS_NEW;
	next->priv.resolved = known;
}

/* op of a key's chain is placed (its record in a batch, not yet durable)
 * or decided without having completed (DEFERRED): the writes waiting
 * behind it go on now, from what op knows, while they are of the same key
 * (group commit of one key's writes: the next one is queued behind op, to
 * be placed in the same batch or a later one, and applies after it; one
 * whose condition fails is DEFERRED and the one after it goes on too).
 * They are decided against the newest version of the key, op's. */
static void keylock_go_on(struct store *s, struct store_op *op)
{
	for (unsigned n = 0; n < DV_OPS_IN_FLIGHT_MAX; n++) {
		struct store_op *next = op->priv.chain_next;
		bool placed = op->priv.state == OPS_IN_BATCH;
		if (!next || next->priv.state != OPS_WAIT_KEY || (!placed && op->priv.state != OPS_DEFERRED) ||
		    !same_key(op, next) || !op->priv.resolved || s->failed)
			return;
		keylock_hand_over(s, op, next, placed);
		int refuse = op_decide(s, next);
		if (!refuse) {
			write_enqueue(s, next); /* keylock_placed() goes on from it */
			return;
		}
		next->result = refuse; /* op, before it, has not completed */
		next->priv.state = OPS_DEFERRED;
		op = next;
	}
}

void keylock_placed(struct store *s, struct store_op *op) { keylock_go_on(s, op); }

/* op (the holder) completed: hand the lock to the next op of the chain.
 * One that went on early (keylock_go_on) just holds it now; one that
 * was decided meanwhile (DEFERRED) completes now, in order, with -DV_EFATAL
 * if the store failed since (its answer was judged against a write that
 * may not be durable), and hands on in turn; one that waits is handed
 * over what op knew (wrote: op placed a record, now applied). */
static void keylock_release(struct store *s, struct store_op *op, bool wrote)
{
	for (unsigned n = 0;; n++) {
		DV_ASSERT(n < DV_OPS_IN_FLIGHT_MAX);
		struct store_op **pp = keylock_bucket(s, op->priv.hash_lo);
		for (unsigned i = 0; *pp && *pp != op && i < DV_OPS_IN_FLIGHT_MAX; i++)
			pp = &(*pp)->priv.lock_next;
		DV_ASSERT(*pp == op);
		*pp = op->priv.lock_next;
		struct store_op *next = op->priv.chain_next;
		struct store_op *tail = op->priv.chain_tail;
		op->priv.chain_next = NULL;
		op->priv.chain_tail = NULL;
		if (!next)
			return;
		next->priv.chain_tail = tail == next ? NULL : tail; /* the new holder keeps the tail */
		next->priv.lock_next = *keylock_bucket(s, next->priv.hash_lo);
		*keylock_bucket(s, next->priv.hash_lo) = next;
		if (next->priv.state == OPS_WAIT_KEY) {
			keylock_hand_over(s, op, next, wrote);
			opq_push(&s->ready, next);
			return;
		}
		if (next->priv.state != OPS_DEFERRED)
			return; /* went on early: queued or placed behind op */
		store_complete(s, next, s->failed ? -DV_EFATAL : next->result);
		op = next;
		wrote = false;
	}
}

void key_done(struct store *s, struct store_op *op, int result)
{
	DV_ASSERT(op->kind != STORE_GET && op->kind != STORE_RELOC);
	if (keylock_holder(s, op->priv.hash_lo) != op) {
		/* An earlier write of the key is still in flight (op went on
		 * early, behind it): op completes after it. */
		DV_ASSERT(op->priv.state != OPS_IN_BATCH); /* batches apply in chain order */
		op->result = result;
		op->priv.state = OPS_DEFERRED;
		keylock_go_on(s, op);
		return;
	}
	bool wrote = op->priv.state == OPS_IN_BATCH;
	store_complete(s, op, result); /* before the ops it hands on to: in order */
	keylock_release(s, op, wrote);
}

/* ---- candidate reads (GET and RESOLVE) ----
 *
 * A candidate is a payload the index held under the op's key hash when the
 * op looked up, with its zone's generation then: together they name one
 * record. A read that returns a record of that generation which verifies
 * is that very record, wherever the index points now; anything else means
 * the zone was collected since (stale: look up again, bounded) or the
 * record is damaged (read once more, for a flip in transit). What each op
 * concludes:
 * - another key's record: skip it (it cannot be the op's own);
 * - its own record: a GET answers from it, even when a write or GC has
 *   replaced it since (it was the key's record after the GET was
 *   submitted), unless it is newer than the GET's horizon (a later
 *   lookup only); a write resolves from it only if the index still holds
 *   it, else GC moved it: look up again;
 * - damaged (two reads agree on bytes that do not verify): another key's
 *   is skipped when whose it is can be told (cand_owner); else a GET
 *   remembers it and goes on (-DV_ECORRUPT if nothing else answers), a
 *   write takes it as the key's record unless another candidate verifies
 *   as the key's (cand_damaged: it must never be taken as "not mine");
 * - stale more than READ_RETRIES_MAX times: the op fails with -EBUSY. */

static void cand_read_done(struct dev_req *req);
static void cands_exhausted(struct store *s, struct store_op *op);

/* A lookup read failed: the op completes with the error; a write hands
 * nothing on (the next write of the key looks it up itself). */
static void cand_fail(struct store *s, struct store_op *op, int err)
{
	if (op->kind != STORE_GET)
		key_done(s, op, err);
	else
		store_complete(s, op, err);
}

static void cand_lookup(struct store *s, struct store_op *op)
{
	op->priv.cand_count = (uint8_t)index_lookup(s->index, op->priv.hash_lo, op->priv.cands,
						    DV_ARRAY_LEN(op->priv.cands));
	for (unsigned i = 0; i < op->priv.cand_count; i++) {
		DV_ASSERT(pl_zone(op->priv.cands[i]) < s->sb.zone_count);
		op->priv.cand_gens[i] = s->sb.zones[pl_zone(op->priv.cands[i])].gen;
	}
	op->priv.cand_next = 0;
	op->priv.cand_reads = 0;
	op->priv.damaged_cand = NO_CAND;
	op->priv.cands_epoch = s->index_epoch;
}

/* The current candidate's zone was collected since the lookup (or GC
 * moved the op's own record): look up again, a bounded number of times. */
static void cand_stale(struct store *s, struct store_op *op);

static bool cand_zone_changed(const struct store *s, const struct store_op *op)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	return s->sb.zones[pl_zone(p)].gen != op->priv.cand_gens[op->priv.cand_next];
}

/* The index still holds the current candidate as it did at the lookup. */
static bool cand_still_indexed(const struct store *s, const struct store_op *op)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	return !cand_zone_changed(s, op) &&
	       (op->priv.cands_epoch == s->index_epoch || index_contains(s->index, op->priv.hash_lo, p));
}

static void cand_read(struct store *s, struct store_op *op, uint32_t bytes)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	void *buf = rbuf_get(s, bytes);
	if (!buf) {
		opq_push(&s->read_wait, op); /* resumes at the same candidate */
		return;
	}
	op->priv.buf = buf;
	op->priv.buf_bytes = bytes;
	uint64_t off = pl_off(p);
	op->priv.req = (struct dev_req){.op = DEV_READ, .len = bytes,
					.off = zone_base(s, pl_zone(p)) + off / DV_BLOCK_BYTES * DV_BLOCK_BYTES,
					.buf = buf, .done = cand_read_done, .ctx = op};
	int err = store_dev_submit(s, &op->priv.req);
	if (err) {
		rbuf_put(s, buf, bytes);
		op->priv.buf = NULL;
		if (err == -EAGAIN)
			opq_push(&s->ready, op); /* refused for now: the same read next round */
		else
			cand_fail(s, op, err);
		return;
	}
	if (op->kind != STORE_GET)
		s->st.resolve_reads++;
}

enum { MEMO_READ, MEMO_SKIP, MEMO_SETTLED };

/* Settle the current candidate from the location memo if it can: another
 * key's record is skipped (GET or write); the key's own record resolves a
 * write as cand_matched() would after a read. The memo describes the
 * record at the payload in the zone's current generation: the one the
 * lookup named, as the zone was not collected since (checked before). */
static int cand_memo(struct store *s, struct store_op *op)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	struct memo_hit h;
	if (!memo_get(&s->memo, p, s->sb.zones[pl_zone(p)].gen, &h))
		return MEMO_READ;
	if (h.hash_lo != op->priv.hash_lo || h.hash_hi != op->priv.hash_hi) {
		/* Another key's record: as a read would, go on with the next. */
		s->st.resolve_memo_hits++;
		return MEMO_SKIP;
	}
	if (op->kind == STORE_GET || h.expires || op->cond == STORE_IF_DAMAGED)
		return MEMO_READ; /* a GET needs the value; liveness needs expire_ms; IF_DAMAGED
				   * whether it verifies */
	/* A write needs the current location: if GC moved it, the read path
	 * finds that out and looks again. */
	if (!cand_still_indexed(s, op))
		return MEMO_READ;
	s->st.resolve_memo_hits++;
	op->priv.prev_payload = p;
	op->priv.prev_seq = h.seq;
	op->priv.prev_size = h.size;
	op->priv.prev_live = !h.tomb; /* a PUT without expiry */
	op_resolved(s, op);
	return MEMO_SETTLED;
}

static void cand_next_one(struct store_op *op)
{
	op->priv.cand_next++;
	op->priv.cand_reads = 0;
}

static void cand_read_next(struct store *s, struct store_op *op)
{
	for (;;) {
		if (op->priv.cand_next >= op->priv.cand_count) {
			cands_exhausted(s, op);
			return;
		}
		if (cand_zone_changed(s, op)) {
			cand_stale(s, op); /* what the lookup named is gone */
			return;
		}
		int m = cand_memo(s, op);
		if (m == MEMO_SETTLED)
			return;
		if (m == MEMO_READ)
			break;
		cand_next_one(op);
	}
	uint32_t blocks = pl_blocks(op->priv.cands[op->priv.cand_next]);
	cand_read(s, op, (blocks ? blocks : 1) * DV_BLOCK_BYTES);
}

/* Where GC moved the record at payload p of zone generation gen, if the
 * moves ring still knows. */
static const struct moved_rec *moved_find(const struct store *s, uint64_t p, uint32_t gen)
{
	for (uint32_t i = 1; i <= s->moves_count; i++) { /* newest first */
		const struct moved_rec *m = &s->moves[(s->moves_next + STORE_MOVES_RING - i) % STORE_MOVES_RING];
		if (m->old_payload == p && m->old_gen == gen)
			return m;
	}
	return NULL;
}

/* GC moved the current candidate (its zone was collected since): name its
 * copy instead, if the moves ring still knows where it went. */
static bool cand_follow_move(struct store *s, struct store_op *op)
{
	const struct moved_rec *m =
		moved_find(s, op->priv.cands[op->priv.cand_next], op->priv.cand_gens[op->priv.cand_next]);
	if (!m)
		return false;
	op->priv.cands[op->priv.cand_next] = m->new_payload;
	op->priv.cand_gens[op->priv.cand_next] = m->new_gen;
	op->priv.cand_reads = 0;
	return true;
}

static void cand_stale(struct store *s, struct store_op *op)
{
	if (op->priv.retries++ >= READ_RETRIES_MAX) {
		/* GC kept moving what the op looked up: refuse rather than take
		 * the key as absent (a write would then insert a second entry). */
		if (op->kind == STORE_GET)
			s->st.gets++;
		cand_fail(s, op, -EBUSY);
		return;
	}
	/* A GET reads what it looked up wherever GC put it (same record, same
	 * seq); a write needs the key's current record: it looks up again. */
	if (op->kind == STORE_GET && cand_follow_move(s, op)) {
		cand_read_next(s, op);
		return;
	}
	cand_lookup(s, op);
	cand_read_next(s, op);
}

static void release_buf(struct store *s, struct store_op *op)
{
	rbuf_put(s, op->priv.buf, op->priv.buf_bytes);
	op->priv.buf = NULL;
	op->priv.buf_bytes = 0;
}

/* The candidate's record is op's key's: finish GET or RESOLVE. */
static void cand_matched(struct store *s, struct store_op *op, const struct rec_view *r)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	bool live = r->type == REC_PUT && (r->expire_ms == 0 || r->expire_ms > store_clock_ms(s));
	if (op->kind == STORE_GET) {
		s->st.gets++;
		if (!written_before(s, r->seq, op->priv.read_horizon, op->priv.ticket)) {
			/* Found by a later lookup and written by a write
			 * submitted after the GET: the version it looked up
			 * first was collected and replaced while it read. */
			release_buf(s, op);
			store_complete(s, op, -EBUSY);
			return;
		}
		if (!live) {
			release_buf(s, op);
			store_complete(s, op, -DV_ENOTFOUND);
			return;
		}
		s->st.get_hits++;
		op->out = (struct store_record_out){.value = r->value, .val_len = r->val_len,
						    .meta = r->meta, .meta_len = r->meta_len,
						    .seq = r->seq, .expire_ms = r->expire_ms};
		store_complete(s, op, 0); /* buffer released after done() */
		return;
	}
	release_buf(s, op);
	op->priv.prev_payload = p;
	op->priv.prev_seq = r->seq;
	op->priv.prev_size = r->total_bytes;
	op->priv.prev_live = live;
	op_resolved(s, op);
}

enum cand_verdict { CAND_OTHER, CAND_OURS, CAND_MOVED, CAND_STALE, CAND_DAMAGED, CAND_LONGER };

/* What the record read for the current candidate is (see above). */
static enum cand_verdict cand_classify(struct store *s, struct store_op *op, struct rec_view *r, uint32_t *need)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	uint32_t in_block = (uint32_t)(pl_off(p) % DV_BLOCK_BYTES);
	int err = rec_decode((uint8_t *)op->priv.buf + in_block, op->priv.buf_bytes - in_block, r, need);
	if (cand_zone_changed(s, op))
		return CAND_STALE; /* collected since the lookup, maybe reset under the read */
	if (err == -EAGAIN)
		return CAND_LONGER;
	bool genuine = !err && r->type != REC_PAD && r->zone_gen == op->priv.cand_gens[op->priv.cand_next] &&
		       pl_make(r->type == REC_TOMBSTONE, pl_zone(p), pl_off(p), r->total_bytes) == p;
	if (!genuine)
		return CAND_DAMAGED; /* the zone holds what the lookup named: it does not verify */
	bool ours = r->key_len == op->key_len && memcmp(r->key, op->key, op->key_len) == 0;
	/* A verified record of the zone's current generation: what this
	 * location holds until the zone is reset. */
	struct dv_hash128 h = {op->priv.hash_lo, op->priv.hash_hi};
	if (!ours)
		h = dv_key_hash128(r->key, r->key_len);
	store_memo_put(s, p, h.lo, h.hi, r->seq, r->total_bytes, r->expire_ms);
	if (!ours)
		return CAND_OTHER;
	/* A write needs the key's current record: if GC moved it meanwhile
	 * (the index no longer holds it), look again. */
	return op->kind == STORE_GET || cand_still_indexed(s, op) ? CAND_OURS : CAND_MOVED;
}

/* A write read its own record, which the index no longer holds: the key
 * lock keeps other writes of the key out, so GC moved it (the copy has the
 * same seq). Take the copy's location from the moves ring, following the
 * copies GC made of it since, when the index holds the last one; else look
 * up again (bounded). */
static void cand_moved(struct store *s, struct store_op *op, const struct rec_view *r)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	uint32_t gen = op->priv.cand_gens[op->priv.cand_next], size = r->total_bytes;
	const struct moved_rec *m;
	for (unsigned hop = 0; hop < READ_RETRIES_MAX && (m = moved_find(s, p, gen)) != NULL; hop++) {
		p = m->new_payload;
		gen = m->new_gen;
		size = m->new_size;
		if (s->sb.zones[pl_zone(p)].gen == gen && index_contains(s->index, op->priv.hash_lo, p)) {
			bool expired = r->type == REC_PUT && r->expire_ms && r->expire_ms <= store_clock_ms(s);
			op->priv.prev_payload = p;
			op->priv.prev_seq = r->seq; /* a relocated copy keeps its seq */
			op->priv.prev_size = size;
			op->priv.prev_live = r->type == REC_PUT && !expired && !pl_tomb(p);
			op_resolved(s, op);
			return;
		}
	}
	cand_stale(s, op);
}

static void resolve_damaged(struct store *s, struct store_op *op, uint64_t p, uint64_t seq, uint32_t size,
			    bool tomb)
{
	op->priv.prev_payload = p;
	op->priv.prev_seq = seq;
	op->priv.prev_size = size;
	op->priv.prev_live = !tomb;
	op->priv.prev_damaged = true;
	op_resolved(s, op);
}

enum { OWNER_UNKNOWN, OWNER_OURS, OWNER_OTHER };

/* The entry of the record at payload p in its zone's index while the zone
 * is written (its entries are in RAM until it is sealed), or NULL. */
static const struct zidx_entry *zone_entry_at(const struct store *s, uint64_t p)
{
	const struct zone_rt *zr = &s->zrt[pl_zone(p)];
	uint64_t units = pl_off(p) / DV_RECORD_ALIGN_BYTES;
	for (uint32_t i = 0; zr->entries && i < zr->count; i++)
		if (zr->entries[i].off_units == units)
			return &zr->entries[i];
	return NULL;
}

/* Whose is the current candidate, which does not verify (its bytes in
 * op's buffer)? Known for sure when GC found it damaged (the zone index
 * told it whose), from the location memo, or from the entries of a zone
 * being written; else from the key the record's bytes hold: op's key, or
 * a key sharing the 31 hash bits of the index lookup that found it (a flip
 * in the key that turned it into such a key is a 2^-31 chance). A key that
 * does not read or shares no index bits with op's: unknown. *seq and *size
 * are the record's when known for sure, else 0. */
static int cand_owner(struct store *s, const struct store_op *op, uint64_t *seq, uint32_t *size)
{
	uint64_t p = op->priv.cands[op->priv.cand_next];
	uint64_t hi96 = op->priv.hash_hi & ZIDX_HASH_HI_MASK;
	*seq = 0;
	*size = 0;
	const struct damaged_rec *d = damaged_find(s, p);
	if (d) {
		*seq = d->seq;
		*size = d->size;
		return d->hash_lo == op->priv.hash_lo && d->hash_hi == hi96 ? OWNER_OURS : OWNER_OTHER;
	}
	struct memo_hit h;
	if (memo_get(&s->memo, p, s->sb.zones[pl_zone(p)].gen, &h)) {
		*seq = h.seq;
		*size = h.size;
		return h.hash_lo == op->priv.hash_lo && h.hash_hi == op->priv.hash_hi ? OWNER_OURS : OWNER_OTHER;
	}
	const struct zidx_entry *e = zone_entry_at(s, p);
	if (e) {
		*seq = e->seq;
		*size = e->size;
		return e->hash.lo == op->priv.hash_lo && e->hash.hi == hi96 ? OWNER_OURS : OWNER_OTHER;
	}
	uint32_t in_block = (uint32_t)(pl_off(p) % DV_BLOCK_BYTES), key_len;
	const uint8_t *key;
	if (rec_peek_key((const uint8_t *)op->priv.buf + in_block, op->priv.buf_bytes - in_block, &key, &key_len))
		return OWNER_UNKNOWN;
	if (key_len == op->key_len && memcmp(key, op->key, key_len) == 0)
		return OWNER_OURS;
	return store_key_hash(key, key_len) >> 33 == op->priv.hash_lo >> 33 ? OWNER_OTHER : OWNER_UNKNOWN;
}

/* The current candidate does not verify: two reads in a row agreed on its
 * bytes (what the medium holds). Another key's is skipped. A GET remembers
 * it and goes on (-DV_ECORRUPT if nothing else answers). A write takes
 * the key's own as its record (op_resolved: an unconditional write
 * replaces it, a conditional one fails with -DV_ECORRUPT), and keeps the
 * first one of unknown owner for cands_exhausted(), unless a later
 * candidate verifies as the key's (then that one is the key's record:
 * one entry per key). */
static void cand_damaged(struct store *s, struct store_op *op)
{
	uint64_t p = op->priv.cands[op->priv.cand_next], seq;
	uint32_t size;
	int owner = cand_owner(s, op, &seq, &size);
	release_buf(s, op);
	s->st.corrupt_records++;
	if (owner == OWNER_OTHER) {
		cand_next_one(op);
		cand_read_next(s, op);
		return;
	}
	if (op->kind == STORE_GET) {
		op->priv.saw_corrupt = true;
		cand_next_one(op);
		cand_read_next(s, op);
		return;
	}
	if (!cand_still_indexed(s, op)) {
		/* Not the key's current record any more (replaced, perhaps
		 * with its damage forgotten): look at what replaced it. */
		cand_stale(s, op);
		return;
	}
	if (owner == OWNER_OURS) {
		resolve_damaged(s, op, p, seq, size, pl_tomb(p));
		return;
	}
	if (op->priv.damaged_cand == NO_CAND)
		op->priv.damaged_cand = op->priv.cand_next;
	cand_next_one(op);
	cand_read_next(s, op);
}

static void cand_read_done(struct dev_req *req)
{
	struct store_op *op = req->ctx;
	struct store *s = op->priv.owner;
	if (req->res < 0) {
		release_buf(s, op);
		cand_fail(s, op, req->res);
		return;
	}
	struct rec_view r;
	uint32_t need = 0;
	uint32_t in_block = (uint32_t)(pl_off(op->priv.cands[op->priv.cand_next]) % DV_BLOCK_BYTES);
	switch (cand_classify(s, op, &r, &need)) {
	case CAND_OURS:
		cand_matched(s, op, &r); /* a GET keeps the buffer until done() */
		return;
	case CAND_OTHER:
		release_buf(s, op);
		cand_next_one(op);
		cand_read_next(s, op);
		return;
	case CAND_MOVED:
		release_buf(s, op);
		cand_moved(s, op, &r);
		return;
	case CAND_STALE:
		release_buf(s, op);
		cand_stale(s, op);
		return;
	case CAND_LONGER: /* larger than the payload said: read it whole */
		if (pl_off(op->priv.cands[op->priv.cand_next]) + need <= s->sb.zone_cap) {
			release_buf(s, op);
			cand_read(s, op, DV_ROUND_UP(in_block + need, DV_BLOCK_BYTES));
			return;
		}
		__attribute__((fallthrough)); /* a length past the zone's end: damaged header */
	case CAND_DAMAGED: {
		/* A flip in transit reads fine, or at least differently, again. */
		uint32_t bytes = op->priv.buf_bytes;
		if (!reads_agree(dv_checksum64(op->priv.buf, bytes), &op->priv.cand_digest, op->priv.cand_reads++)) {
			release_buf(s, op);
			cand_read(s, op, bytes);
			return;
		}
		cand_damaged(s, op); /* releases the buffer once it looked at the key */
		return;
	}
	}
}

static void cands_exhausted(struct store *s, struct store_op *op)
{
	if (op->priv.cand_count == DV_ARRAY_LEN(op->priv.cands)) {
		/* The index may hold more candidates than were read: more than
		 * 16 keys share 31 hash bits (about 1e-11 such groups at 1e9
		 * keys). Refuse rather than answer or write on partial facts. */
		if (op->kind != STORE_GET)
			key_done(s, op, -EOVERFLOW);
		else
			store_complete(s, op, -EOVERFLOW);
		return;
	}
	if (op->kind == STORE_GET) {
		s->st.gets++;
		store_complete(s, op, op->priv.saw_corrupt ? -DV_ECORRUPT : -DV_ENOTFOUND);
		return;
	}
	if (op->priv.damaged_cand != NO_CAND) {
		/* No candidate verified as the key's; one of unknown owner did
		 * not verify: the key's record as far as can be told (store.h),
		 * if it is still indexed as it was (else look again). Its size
		 * is unknown: its zone's live bytes keep it (GC only counts). */
		unsigned i = op->priv.damaged_cand;
		uint64_t p = op->priv.cands[i];
		if (s->sb.zones[pl_zone(p)].gen != op->priv.cand_gens[i] || !index_contains(s->index, op->priv.hash_lo, p)) {
			cand_stale(s, op);
			return;
		}
		resolve_damaged(s, op, p, 0, 0, pl_tomb(p));
		return;
	}
	/* Every candidate is another key's record: the key has none. */
	op->priv.prev_payload = NO_PAYLOAD;
	op->priv.prev_seq = 0;
	op->priv.prev_size = 0;
	op->priv.prev_live = false;
	op_resolved(s, op);
}

/* ---- op steps ---- */

/* The write knows the key's current record (prev_*): its condition's
 * answer, or 0 when it is to be written (rec_size set). */
static int op_decide(struct store *s, struct store_op *op)
{
	if (s->failed) {
		/* A failed store decides nothing more: a write before this one
		 * may be durable without being in the index (its batch reached
		 * the medium, its completion did not), so a condition judged
		 * now could contradict what recovery finds. */
		return -DV_EFATAL;
	}
	op->priv.resolved = true;
	bool live = op->priv.prev_live;
	int refuse = 0;
	if (op->cond == STORE_IF_DAMAGED) {
		if (!op->priv.prev_damaged)
			refuse = -ESTALE; /* the key's record reads fine, or there is none */
	} else if (op->priv.prev_damaged && op->cond != STORE_ALWAYS) {
		refuse = -DV_ECORRUPT; /* the key's record is damaged: no condition can be judged */
	} else if (op->cond == STORE_IF_SEQ) {
		/* Compare-and-set: the live record must carry cond_seq; a PUT
		 * with cond_seq 0 wants no live record (seqs start at 1, so a
		 * DEL with 0 never applies). */
		bool match = op->cond_seq == 0 && op->kind == STORE_PUT
				     ? !live
				     : live && op->priv.prev_seq == op->cond_seq;
		if (!match)
			refuse = -ESTALE;
	} else if (op->cond == STORE_IF_SEQ_EXPIRED) {
		/* Active expiry: only the very record that expired, never a
		 * newer write of the key nor a tombstone. */
		bool match = op->kind == STORE_DEL && !live && op->priv.prev_payload != NO_PAYLOAD &&
			     !pl_tomb(op->priv.prev_payload) && op->priv.prev_seq == op->cond_seq;
		if (!match)
			refuse = -ESTALE;
	} else if (op->kind == STORE_PUT && op->cond == STORE_IF_ABSENT && live)
		refuse = -EEXIST;
	else if (op->kind == STORE_PUT && op->cond == STORE_IF_PRESENT && !live)
		refuse = -DV_ENOTFOUND;
	else if (op->kind == STORE_DEL && (op->priv.prev_payload == NO_PAYLOAD ||
					   (pl_tomb(op->priv.prev_payload) && !op->priv.prev_damaged)))
		refuse = -DV_ENOTFOUND; /* nothing on disk to hide (a damaged tombstone is rewritten) */
	if (refuse)
		return refuse;
	uint32_t val_len = op->kind == STORE_PUT ? op->val_len : 0;
	op->priv.rec_size = rec_size(op->key_len, op->meta_len, val_len);
	return 0;
}

static void op_resolved(struct store *s, struct store_op *op)
{
	int refuse = op_decide(s, op);
	if (refuse)
		key_done(s, op, refuse);
	else
		write_enqueue(s, op);
}

static void op_start_mutation(struct store *s, struct store_op *op)
{
	struct store_op *prev = keylock_acquire(s, op);
	if (prev) {
		/* Behind a write of the key placed or decided already: on at
		 * once (keylock_go_on); else keylock_release() or
		 * keylock_placed() brings it back. */
		keylock_go_on(s, prev);
		return;
	}
	op->priv.state = OPS_RESOLVE;
	cand_lookup(s, op);
	cand_read_next(s, op);
}

static void op_step(struct store *s, struct store_op *op)
{
	if (op->kind == STORE_RELOC) {
		gc_reloc_step(s, op);
		return;
	}
	if (op->kind == STORE_FLUSH) {
		flush_step(s, op);
		return;
	}
	switch (op->priv.state) {
	case OPS_NEW:
		if (op->kind == STORE_GET) {
			op->priv.state = OPS_READ;
			/* Every write submitted after this GET gets a seq from here
			 * on: it is placed after this step (ops run in order). */
			op->priv.read_horizon = s->next_seq;
			cand_lookup(s, op);
			cand_read_next(s, op);
		} else {
			op_start_mutation(s, op);
		}
		break;
	case OPS_QUEUED: /* inherited prev from the op before it */
		op_resolved(s, op);
		break;
	case OPS_READ:
	case OPS_RESOLVE: /* resumed after waiting for a buffer or ring slot */
		cand_read_next(s, op);
		break;
	default:
		DV_ASSERT(!"op in unexpected state");
	}
}

static uint32_t max_record_bytes(const struct store *s)
{
	uint64_t limit = s->sb.zone_cap / 2;
	return limit < STORE_RECORD_BYTES_MAX ? (uint32_t)limit : STORE_RECORD_BYTES_MAX;
}

int store_submit(struct store *s, struct store_op *op)
{
	DV_ASSERT(op->done != NULL);
	if (op->kind != STORE_GET && op->kind != STORE_PUT && op->kind != STORE_DEL && op->kind != STORE_FLUSH)
		return -EINVAL;
	if (op->kind == STORE_FLUSH) {
		op->key = STORE_FLUSH_KEY; /* its record's key (store_flush.c) */
		op->key_len = STORE_FLUSH_KEY_BYTES;
		op->cond = STORE_ALWAYS;
	} else if (flush_is_key(op->key, op->key_len)) {
		return -EINVAL; /* the store's own record */
	}
	if ((unsigned)op->cond > STORE_IF_DAMAGED || (op->cond == STORE_IF_SEQ_EXPIRED && op->kind != STORE_DEL) ||
	    (op->cond == STORE_IF_DAMAGED && op->kind != STORE_PUT))
		return -EINVAL;
	if (op->key_len == 0 || op->key_len > DV_KEY_BYTES_MAX)
		return op->key_len ? -DV_ETOOBIG : -EINVAL;
	if (op->kind == STORE_PUT) {
		int err = rec_check_lengths(REC_PUT, op->key_len, op->meta_len, op->val_len);
		if (err)
			return err;
		if (rec_size(op->key_len, op->meta_len, op->val_len) + DV_BLOCK_BYTES > max_record_bytes(s))
			return -DV_ETOOBIG;
	}
	if (op->kind != STORE_GET && (s->failed || s->cfg.read_only))
		return s->failed ? -DV_EFATAL : -EROFS;
	if (s->pending >= DV_OPS_IN_FLIGHT_MAX)
		return -EAGAIN;
	struct dv_hash128 h = dv_key_hash128(op->key, op->key_len);
	memset(&op->priv, 0, sizeof(op->priv));
	op->priv.hash_lo = h.lo;
	op->priv.hash_hi = h.hi;
	op->priv.hash_full = true;
	op->priv.prev_payload = NO_PAYLOAD;
	op->priv.new_payload = NO_PAYLOAD;
	op->priv.owner = s;
	op->priv.ticket = ++s->next_ticket;
	op->result = 0;
	memset(&op->out, 0, sizeof(op->out));
	op->priv.state = OPS_NEW;
	s->pending++;
	index_prefetch(s->index, h.lo); /* looked up at the next store_poll: load it meanwhile */
	if (!flush_hold(s, op))
		opq_push(&s->ready, op);
	return 0;
}

static int deliver_completed(struct store *s)
{
	int n = 0;
	struct store_op *op;
	while ((op = opq_pop(&s->completed)) != NULL) {
		DV_ASSERT(s->pending > 0);
		s->pending--;
		/* A GET's value lives in its buffer until done() returns; done()
		 * may submit this very op again, which clears priv. */
		void *buf = op->priv.buf;
		uint32_t buf_bytes = op->priv.buf_bytes;
		op->priv.buf = NULL;
		op->priv.buf_bytes = 0;
		op->done(op);
		rbuf_put(s, buf, buf_bytes);
		n++;
	}
	return n;
}

static void run_ready(struct store *s)
{
	/* Only the ops queued before this pass: steps may queue more. */
	struct op_queue batch = s->ready;
	s->ready.head = s->ready.tail = NULL;
	struct store_op *op;
	while ((op = opq_pop(&batch)) != NULL)
		op_step(s, op);
}

/* Rounds of store_poll(s, false) while device completions keep arriving:
 * a bound so that a thread serving a network too gets back to it. Rounds
 * that start ops submitted by done() callbacks (no completion would wake
 * a sleeping event loop for those) go on up to a much larger bound. */
#define POLL_ROUNDS_MAX 16u
#define POLL_ROUNDS_HARD_MAX 4096u
_Static_assert(SUBMIT_REFUSALS_MAX < POLL_ROUNDS_HARD_MAX, "a refusing device fails before the poll gives up");

/* Everything that can move without the device. */
static int poll_pass(struct store *s)
{
	s->io_retry = false; /* set again by a submission refused in this pass */
	run_ready(s);
	flush_pump(s);
	gc_pump(s);
	scan_pump(s);
	write_pump(s);
	return deliver_completed(s);
}

/* wait: one pass, block for a completion, apply it. Without wait: rounds
 * of [pass, dev_poll(0)] until a dev_poll reaps nothing and no op is
 * ready: then every request is with the device (dev_poll sends what is
 * queued) and nothing moves before a device completion, so an event loop
 * may sleep on the device's notify eventfd (dev_notify_fd). Completions
 * reaped in the first round are followed up in the second; those reaped in
 * a later round were posted during this call, so when POLL_ROUNDS_MAX
 * ends it their eventfd signal is still pending. */
int store_poll(struct store *s, bool wait)
{
	if (wait) {
		int n = poll_pass(s);
		if (dev_in_flight(s->dev) > 0) {
			int err = dev_poll(s->dev, n == 0 && s->ready.head == NULL ? 1 : 0);
			if (err < 0)
				return err;
		}
		write_pump(s);
		return n + deliver_completed(s);
	}
	int n = 0;
	for (unsigned round = 0; round < POLL_ROUNDS_HARD_MAX; round++) {
		n += poll_pass(s);
		/* Submitted by done(), a submission the device refused, or a
		 * collection step that waits for nothing (gc_can_step). */
		bool ready = s->ready.head != NULL || s->io_retry || gc_can_step(s);
		int reaped = 0;
		if (dev_in_flight(s->dev) > 0) {
			reaped = dev_poll(s->dev, 0);
			if (reaped < 0)
				return reaped;
		}
		if (ready)
			continue;
		if ((reaped == 0 && s->ready.head == NULL) || round + 1 >= POLL_ROUNDS_MAX)
			break;
	}
	return n;
}

unsigned store_pending(const struct store *s) { return s->pending; }

int store_drain(struct store *s)
{
	/* Bounded: each round either completes work or waits for the device.
	 * A reclaim sweep under way finishes its zone; no other starts. */
	s->draining = true;
	for (uint64_t round = 0; store_pending(s) > 0 || store_gc_running(s) || s->scan ||
				 dev_in_flight(s->dev) > 0 || s->sb_version_durable < s->sb_version_wanted;
	     round++) {
		int err = store_poll(s, true);
		if (err < 0) {
			s->draining = false;
			return err;
		}
		/* Failed: GC and superblock updates never finish; a scan does
		 * (reads still work, or fail: it then ends with the error). */
		if (s->failed && store_pending(s) == 0 && dev_in_flight(s->dev) == 0 && !s->scan)
			break;
		DV_ASSERT(round < (1ull << 40));
	}
	s->draining = false;
	return s->failed ? -DV_EFATAL : 0;
}

uint64_t store_open_stamp(const struct store *s) { return s->open_stamp; }

void store_get_stats(const struct store *s, struct store_stats *out)
{
	*out = s->st;
	out->keys = index_count(s->index) - (s->flush_indexed ? 1 : 0); /* not the flush point record */
	out->flush_seq = s->flush_seq;
	out->index_bytes = index_bytes(s->index);
	out->zones_total = s->sb.zone_count;
	out->zone_bytes = s->sb.zone_bytes;
	out->zone_cap = s->sb.zone_cap;
	const struct dev_info *info = dev_info(s->dev);
	out->zone_model = info->zone_model == DEV_ZONES_NONE ? "emulated" : dev_zone_model_name(info->zone_model);
	out->dev_max_open_zones = info->max_open_zones;
	out->dev_max_active_zones = info->max_active_zones;
	out->zones_open_limit = s->zones_open_budget == UINT32_MAX ? 0 : s->zones_open_budget;
	out->sb_log = s->sbp.log;
	out->memo_bytes = s->memo.entries * sizeof(struct memo_entry);
	out->damaged_kept = s->damaged_count;
	out->zones_empty = out->zones_open = out->zones_full = 0;
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		out->zones_empty += s->sb.zones[z].state == ZONE_EMPTY;
		out->zones_open += s->sb.zones[z].state == ZONE_OPEN;
		out->zones_full += s->sb.zones[z].state == ZONE_FULL;
	}
}

static int store_alloc(struct store *s)
{
	s->rbuf_area = dev_buf_alloc((uint64_t)READ_BUFS * READ_BUF_BYTES);
	if (!s->rbuf_area)
		return -ENOMEM;
	for (unsigned i = 0; i < READ_BUFS; i++)
		s->rbuf_free[i] = s->rbuf_area + (size_t)i * READ_BUF_BYTES;
	s->rbuf_free_count = READ_BUFS;
	int err = writer_start(s);
	if (!err)
		err = index_create(&s->index, s->cfg.index_capacity_hint);
	if (!err)
		err = gc_create(s);
	if (!err)
		err = memo_create(&s->memo, s->cfg.no_memo || s->cfg.read_only ? 0 : s->cfg.memo_entries);
	return err;
}

static void store_free(struct store *s)
{
	gc_destroy(s);
	scan_destroy(s);
	flush_destroy(s);
	if (s->index)
		index_destroy(s->index);
	writer_stop(s);
	dev_buf_free(s->rbuf_area);
	memo_destroy(&s->memo);
	free(s->zrt);
	free(s->sb.zones);
	free(s);
}

static void config_defaults(struct store_config *c, const struct dev *dev)
{
	if (c->batches_in_flight == 0)
		c->batches_in_flight = 2;
	if (c->batches_in_flight > DV_BATCHES_IN_FLIGHT_MAX)
		c->batches_in_flight = DV_BATCHES_IN_FLIGHT_MAX;
	if (dev_info(dev)->zoned)
		c->batches_in_flight = 1; /* sequential zones take writes in order */
	if (c->batch_bytes == 0 || c->batch_bytes > DV_BATCH_BYTES_MAX)
		c->batch_bytes = DV_BATCH_BYTES_MAX;
	c->batch_bytes = DV_ROUND_UP(c->batch_bytes, DV_BLOCK_BYTES);
	if (c->gc_free_zones_min == 0)
		c->gc_free_zones_min = 3;
	if (c->index_capacity_hint == 0)
		c->index_capacity_hint = 1u << 16;
	if (c->memo_entries == 0)
		c->memo_entries = DV_MEMO_ENTRIES_DEFAULT;
}

int store_open(struct store **out, struct dev *dev, const struct store_config *cfg)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dev = dev;
	s->cfg = *cfg;
	config_defaults(&s->cfg, dev);
	int err = store_alloc(s);
	if (!err)
		err = store_recover(s);
	if (err) {
		store_free(s);
		return err;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_drain(s);
	/* Whatever is still in flight after a failure must finish before the
	 * buffers go away. */
	for (unsigned i = 0; dev_in_flight(s->dev) > 0 && i < 1000000; i++)
		dev_poll(s->dev, 1);
	store_free(s);
}
