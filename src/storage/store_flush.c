/* store_flush.c - FLUSH: every record dead at once, O(1) on the device.
 *
 * A flush point is a seq: every record with a lower seq is dead. It is
 * kept as one ordinary PUT record under the store's own key
 * (STORE_FLUSH_KEY) whose seq is the point, so it needs no new on-disk
 * structure: it is written by group commit like any record, GC relocates
 * it (keeping its seq), recovery finds it in the zone indexes by its key
 * hash and drops every record below it. The superblock format is unchanged.
 *
 *   submit --> [FLUSH_WAIT: ops submitted before it still running; ops
 *               submitted after it held] --> QUEUED --> IN_BATCH (its record)
 *          --> durable: index replaced by an empty one (+ its own record),
 *              memo cleared, live cost of every zone 0, held ops released
 *          --> DONE
 *
 * Invariants:
 * 1. While a flush is the barrier (s->flush_op), no other user op starts:
 *    every op submitted after it waits in flush_held, in order.
 * 2. A flush record is placed only when no user op but held ones is
 *    pending: every record acknowledged before the flush has a lower seq,
 *    every op after it gets a higher one.
 * 3. The empty index is allocated before the record is placed, so once the
 *    record is durable the flush cannot fail in RAM.
 * 4. GC relocations running across a flush move records the new index does
 *    not hold: they apply as dead copies (index_replace finds nothing).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "store_int.h"

struct dv_hash128 flush_key_hash(void) { return dv_key_hash128(STORE_FLUSH_KEY, STORE_FLUSH_KEY_BYTES); }

bool flush_is_key(const void *key, uint32_t key_len)
{
	return key_len == STORE_FLUSH_KEY_BYTES && memcmp(key, STORE_FLUSH_KEY, key_len) == 0;
}

bool flush_hold(struct store *s, struct store_op *op)
{
	if (!s->flush_op) {
		if (op->kind == STORE_FLUSH)
			s->flush_op = op; /* the barrier from now on */
		return false;
	}
	opq_push(&s->flush_held, op);
	s->flush_held_count++;
	return true;
}

/* Ops before the flush all completed (their done() ran): only the flush
 * itself and the ops held behind it are pending. */
static bool flush_may_start(const struct store *s)
{
	DV_ASSERT(s->pending >= 1 + s->flush_held_count);
	return s->pending == 1 + s->flush_held_count;
}

static void flush_start(struct store *s, struct store_op *op)
{
	DV_ASSERT(op == s->flush_op && s->flush_index == NULL);
	int err = index_create(&s->flush_index, s->cfg.index_capacity_hint);
	if (err) {
		s->flush_index = NULL;
		flush_fail(s, op, err); /* nothing written: no flush */
		return;
	}
	op->key = STORE_FLUSH_KEY;
	op->key_len = STORE_FLUSH_KEY_BYTES;
	op->value = NULL;
	op->val_len = 0;
	op->meta = NULL;
	op->meta_len = 0;
	op->expire_ms = 0;
	op->priv.rec_size = rec_size(op->key_len, 0, 0);
	write_enqueue(s, op);
}

/* Even on a failed store a flush completes after the ops submitted before
 * it (they fail too): completions keep submission order around a flush. */
void flush_step(struct store *s, struct store_op *op)
{
	DV_ASSERT(op->kind == STORE_FLUSH && op == s->flush_op);
	if (!flush_may_start(s)) {
		op->priv.state = OPS_FLUSH_WAIT; /* flush_pump() starts it */
		return;
	}
	if (s->failed) {
		flush_fail(s, op, -DV_EFATAL);
		return;
	}
	flush_start(s, op);
}

void flush_pump(struct store *s)
{
	struct store_op *op = s->flush_op;
	if (op && op->priv.state == OPS_FLUSH_WAIT && flush_may_start(s)) {
		op->priv.state = OPS_NEW;
		flush_step(s, op);
	}
}

/* The flush is done: the held ops start, in order, up to the next flush,
 * which becomes the barrier (the ops behind it stay held). */
static void flush_finish(struct store *s, struct store_op *op, int result)
{
	DV_ASSERT(op == s->flush_op);
	s->flush_op = NULL;
	store_complete(s, op, result);
	struct store_op *h;
	while ((h = opq_pop(&s->flush_held)) != NULL) {
		DV_ASSERT(s->flush_held_count > 0);
		s->flush_held_count--;
		opq_push(&s->ready, h);
		if (h->kind == STORE_FLUSH) {
			s->flush_op = h;
			break;
		}
	}
}

void flush_fail(struct store *s, struct store_op *op, int err)
{
	if (s->flush_index) {
		index_destroy(s->flush_index);
		s->flush_index = NULL;
	}
	flush_finish(s, op, err);
}

void flush_apply(struct store *s, struct store_op *op)
{
	DV_ASSERT(op == s->flush_op && s->flush_index && op->priv.new_payload != NO_PAYLOAD);
	index_destroy(s->index);
	s->index = s->flush_index;
	s->flush_index = NULL;
	s->index_epoch++;
	/* A fresh table has room: inserting its first entry cannot fail. */
	int err = index_insert(s->index, op->priv.hash_lo, op->priv.new_payload);
	DV_ASSERT(err == 0);
	memo_clear(&s->memo);
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		s->zrt[z].live_cost = 0;
		s->zrt[z].damaged = 0; /* damaged records GC kept are dead too */
	}
	s->damaged_count = 0;
	s->zrt[pl_zone(op->priv.new_payload)].live_cost += reloc_cost(op->priv.rec_size);
	store_memo_put(s, op->priv.new_payload, op->priv.hash_lo, op->priv.hash_hi, op->priv.new_seq,
		       op->priv.rec_size, 0);
	s->st.tombstones = 0;
	s->st.user_bytes += op->priv.rec_size;
	s->st.flushes++;
	s->flush_seq = op->priv.new_seq;
	s->flush_indexed = true;
	store_scan_note_flush(s);
	op->out.seq = op->priv.new_seq;
	flush_finish(s, op, 0);
}

void flush_destroy(struct store *s)
{
	DV_ASSERT(s->flush_op == NULL && s->flush_held.head == NULL);
	if (s->flush_index)
		index_destroy(s->flush_index);
	s->flush_index = NULL;
}
