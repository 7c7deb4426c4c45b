/* store_write.c - group commit, zone lifecycle and superblock writes.
 *
 * Zone lifecycle (state in the RAM zone table; the superblock persists it):
 *
 *   EMPTY --prepare_next()--> OPEN --seal_start()--> (sealing) --seal_done()--> FULL
 *     ^      sb write must be durable before          zone index written,        |
 *     |      the first batch goes to the zone         then sb write              |
 *     +------------------------ gc: relocate live records, sb write, reset ------+
 *
 * Group commit: resolved mutations wait in write_queue; place_op() packs
 * them into the FILLING batch at the active zone's write pointer. A batch is
 * submitted as one RWF_DSYNC write when fewer than batches_in_flight writes
 * are in flight, so records pile up while earlier writes are on their way.
 * Batches complete in any order but are applied strictly in order
 * (batch_ring_apply), so an acknowledged write never sits behind a hole.
 * Placing a write lets the next write of its key go on (keylock_placed):
 * queued behind it, it is placed in the same batch or a later one, and so
 * applies after it.
 *
 * Invariants:
 * 1. Every batch starts on a block boundary and is padded to one.
 * 2. A zone receives a batch only once its OPEN state is durable.
 * 3. A zone is sealed only when none of its batches is in flight.
 * 4. A record plus the zone index that will follow it always fit the zone
 *    (its capacity, zone_cap: on a zoned device what can be written of it).
 * 5. No more zones are OPEN than zones_open_budget (the device's open and
 *    active limits, less the superblock log's zone).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "store_int.h"

uint64_t zone_base(const struct store *s, uint32_t zone)
{
	DV_ASSERT(zone < s->sb.zone_count);
	return s->sb.data_start + (uint64_t)zone * s->sb.zone_bytes;
}

uint32_t zones_empty_count(const struct store *s)
{
	DV_DEBUG_ASSERT(s->zones_free == zones_free_recount(s));
	return s->zones_free;
}

uint32_t zones_free_recount(const struct store *s)
{
	uint32_t n = 0;
	for (uint32_t z = 0; z < s->sb.zone_count; z++)
		n += s->sb.zones[z].state == ZONE_EMPTY && !s->zrt[z].resetting && !s->zrt[z].unusable;
	return n;
}

uint32_t zones_open_count(const struct store *s)
{
	uint32_t n = 0;
	for (uint32_t z = 0; z < s->sb.zone_count; z++)
		n += s->sb.zones[z].state == ZONE_OPEN && !s->zrt[z].unusable;
	return n;
}

/* ---- zones ---- */

void zone_add_entry(struct store *s, uint32_t zone, const struct zidx_entry *e)
{
	struct zone_rt *zr = &s->zrt[zone];
	if (zr->count == zr->cap) {
		uint32_t cap = zr->cap ? zr->cap * 2 : 1024;
		struct zidx_entry *n = realloc(zr->entries, (size_t)cap * sizeof(*n));
		DV_ASSERT(n != NULL); /* bounded by zone size / 48 bytes */
		zr->entries = n;
		zr->cap = cap;
	}
	zr->entries[zr->count++] = *e;
	if (e->seq > zr->max_seq)
		zr->max_seq = e->seq;
	if (e->seq < zr->min_seq)
		zr->min_seq = e->seq;
}

/* Open the next zone ahead of need. User writes leave GC_RESERVE_ZONES
 * empty zones to relocations, so a collection can always finish. On a
 * zoned device no more zones are OPEN than its open and active limits
 * allow (zones_open_budget): the next one waits until a zone being sealed
 * is FULL (finished, no longer active on the device). */
static void prepare_next(struct store *s, bool for_reloc)
{
	DV_ASSERT(s->next_zone == UINT32_MAX);
	if (zones_empty_count(s) <= (for_reloc ? 0 : GC_RESERVE_ZONES))
		return;
	uint32_t open = zones_open_count(s);
	if (open >= s->zones_open_budget)
		return;
	if (open + 1 > s->st.zones_open_peak)
		s->st.zones_open_peak = open + 1;
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		if (s->sb.zones[z].state != ZONE_EMPTY || s->zrt[z].resetting || s->zrt[z].unusable)
			continue;
		s->sb.zones[z].state = ZONE_OPEN;
		DV_ASSERT(s->zones_free > 0);
		s->zones_free--;
		struct zone_rt *zr = &s->zrt[z];
		zr->wp = 0;
		zr->count = 0;
		zr->max_seq = 0;
		zr->min_seq = UINT64_MAX;
		zr->swept_seq = 0;
		zr->live_cost = 0;
		zr->rec_bytes = 0;
		zr->rec_count = 0;
		zr->sealing = false;
		sb_request(s);
		zr->open_version = s->sb_version_wanted;
		s->next_zone = z;
		return;
	}
}

static struct batch *filling_batch(struct store *s)
{
	if (s->batch_count == 0)
		return NULL;
	struct batch *b = &s->batches[(s->batch_head + s->batch_count - 1) % DV_ARRAY_LEN(s->batches)];
	return b->state == BATCH_FILLING ? b : NULL;
}

/* Pad the batch to a block boundary and fix the zone's write pointer. */
static void batch_close(struct store *s, struct batch *b)
{
	DV_ASSERT(b->state == BATCH_FILLING && b->used > 0);
	uint32_t end = DV_ROUND_UP(b->used, DV_BLOCK_BYTES);
	uint32_t gap = end - b->used;
	if (gap >= REC_HDR_BYTES)
		rec_encode_pad(b->buf + b->used, gap, s->sb.zones[b->zone].gen);
	else
		memset(b->buf + b->used, 0, gap);
	b->used = end;
	s->zrt[b->zone].wp = b->zone_off + end;
	b->state = BATCH_WRITING; /* closed; submitted by batch_submit_ready */
	b->req.op = 0;            /* not yet submitted */
}

static void seal_start(struct store *s)
{
	uint32_t z = s->active_zone;
	DV_ASSERT(z != UINT32_MAX);
	struct batch *b = filling_batch(s);
	if (b && b->zone == z && b->used > 0)
		batch_close(s, b);
	DV_ASSERT(!s->zrt[z].sealing);
	s->zrt[z].sealing = true;
	s->zones_sealing++;
	s->active_zone = UINT32_MAX;
	if (s->next_zone == UINT32_MAX)
		prepare_next(s, false);
	if (s->next_zone != UINT32_MAX) {
		s->active_zone = s->next_zone;
		s->next_zone = UINT32_MAX;
		prepare_next(s, false);
	}
}

static struct batch *batch_new(struct store *s, uint32_t zone)
{
	if (s->batch_count == DV_ARRAY_LEN(s->batches))
		return NULL;
	struct batch *b = &s->batches[(s->batch_head + s->batch_count) % DV_ARRAY_LEN(s->batches)];
	DV_ASSERT(b->state == BATCH_FREE);
	b->zone = zone;
	b->zone_off = s->zrt[zone].wp;
	DV_ASSERT(b->zone_off % DV_BLOCK_BYTES == 0);
	b->used = 0;
	b->ops = (struct op_queue){0};
	b->state = BATCH_FILLING;
	b->res = 0;
	s->batch_count++;
	s->zrt[zone].batches_in_flight++;
	return b;
}

/* Where a record of size bytes goes if appended at zone offset p. Records
 * of at most a block are packed and may cross one block boundary (a GET
 * then reads two blocks: cheaper than wasting up to a quarter of every
 * block on 1 KiB values); larger ones start on a block boundary so they
 * span as few blocks as possible. */
static uint64_t record_start(uint64_t p, uint32_t size)
{
	uint64_t q = rec_next_start(p, DV_BLOCK_BYTES);
	if (q % DV_BLOCK_BYTES && size > DV_BLOCK_BYTES)
		q = DV_ROUND_UP(q, DV_BLOCK_BYTES);
	return q;
}

static bool zone_has_room(const struct store *s, uint32_t zone, uint64_t end)
{
	const struct zone_rt *zr = &s->zrt[zone];
	return DV_ROUND_UP(end, DV_BLOCK_BYTES) + zidx_bytes(zr->count + 1, DV_BLOCK_BYTES) <= s->sb.zone_cap;
}

uint64_t reloc_room(const struct store *s)
{
	if (zones_empty_count(s) > 0 || s->next_zone != UINT32_MAX)
		return UINT64_MAX; /* a fresh zone: relocations may take the last one */
	uint32_t z = s->active_zone;
	if (z == UINT32_MAX || s->zrt[z].sealing)
		return 0;
	const struct batch *b = filling_batch((struct store *)s);
	uint64_t end = b && b->zone == z ? b->zone_off + b->used : s->zrt[z].wp;
	/* A record that does not fit the zone's end goes to the next zone:
	 * keep one record's worth (at most half a zone) in hand. */
	uint64_t used = DV_ROUND_UP(end, DV_BLOCK_BYTES) + zidx_bytes(s->zrt[z].count + 1, DV_BLOCK_BYTES) +
			s->sb.zone_cap / 2;
	return used < s->sb.zone_cap ? s->sb.zone_cap - used : 0;
}

static void encode_op_record(struct store *s, struct store_op *op, uint8_t *dst, uint32_t zone)
{
	uint32_t gen = s->sb.zones[zone].gen;
	if (op->kind == STORE_RELOC) {
		memcpy(dst, op->value, op->priv.rec_size);
		rec_set_zone_gen(dst, gen);
		return;
	}
	struct rec_view r = {
		.type = op->kind == STORE_DEL ? REC_TOMBSTONE : REC_PUT,
		.zone_gen = gen, .seq = s->next_seq++, .expire_ms = op->expire_ms,
		.key = op->key, .key_len = op->key_len, .meta = op->meta, .meta_len = op->meta_len,
		.value = op->kind == STORE_DEL ? NULL : op->value,
		.val_len = op->kind == STORE_DEL ? 0 : op->val_len,
	};
	uint32_t n = rec_encode(dst, &r);
	DV_ASSERT(n == op->priv.rec_size);
}

static void append_to_batch(struct store *s, struct batch *b, struct store_op *op, uint64_t p, uint64_t q)
{
	uint32_t size = op->priv.rec_size;
	uint8_t *base = b->buf - b->zone_off; /* zone offset -> buffer */
	uint64_t skip_end = rec_next_start(p, DV_BLOCK_BYTES);
	memset(base + p, 0, skip_end - p);
	if (q > skip_end)
		rec_encode_pad(base + skip_end, (uint32_t)(q - skip_end), s->sb.zones[b->zone].gen);
	encode_op_record(s, op, base + q, b->zone);
	struct rec_view r;
	int err = rec_decode(base + q, size, &r, NULL);
	DV_ASSERT(err == 0); /* paired check: what we write must read back */
	bool tomb = r.type == REC_TOMBSTONE;
	op->priv.new_payload = pl_make(tomb, b->zone, q, size);
	op->priv.new_seq = r.seq; /* handed to the next write of the key (keylock_hand_over) */
	struct zidx_entry e = {.hash = {op->priv.hash_lo, op->priv.hash_hi & ZIDX_HASH_HI_MASK}, .seq = r.seq,
			       .off_units = (uint32_t)(q / DV_RECORD_ALIGN_BYTES), .size = size,
			       .type = (uint8_t)r.type};
	zone_add_entry(s, b->zone, &e);
	s->zrt[b->zone].rec_bytes += size;
	s->zrt[b->zone].rec_count++;
	b->used = (uint32_t)(q + size - b->zone_off);
	op->priv.state = OPS_IN_BATCH;
	opq_push(&b->ops, op);
	s->st.batch_records++;
}

enum { PLACE_DONE, PLACE_WAIT, PLACE_NO_ZONE };

/* Put op into a batch: PLACE_WAIT when the batch ring is full, and
 * PLACE_NO_ZONE when no zone may take it now. */
static int place_op(struct store *s, struct store_op *op)
{
	uint32_t size = op->priv.rec_size;
	/* While no empty zone is left, only relocations write: the collection
	 * under way must be able to finish (it frees a zone). A flush record
	 * (one small record, after which every zone is dead) may use the
	 * reserve too: a full device can always be flushed; so may the host's
	 * records marked op->reserve (store.h). */
	bool reserve = op->kind == STORE_RELOC || op->kind == STORE_FLUSH || op->reserve;
	if (!reserve && zones_empty_count(s) < GC_RESERVE_ZONES)
		return PLACE_NO_ZONE;
	for (int attempt = 0; attempt < 3; attempt++) {
		if (s->active_zone == UINT32_MAX) {
			if (s->next_zone == UINT32_MAX)
				prepare_next(s, reserve);
			if (s->next_zone == UINT32_MAX)
				return PLACE_NO_ZONE;
			s->active_zone = s->next_zone;
			s->next_zone = UINT32_MAX;
			prepare_next(s, false);
		}
		uint32_t z = s->active_zone;
		struct batch *b = filling_batch(s);
		if (b && b->zone != z)
			b = NULL;
		uint64_t p = b ? b->zone_off + b->used : s->zrt[z].wp;
		uint64_t q = record_start(p, size);
		if (!zone_has_room(s, z, q + size)) {
			seal_start(s);
			continue;
		}
		if (b && q + size - b->zone_off > s->cfg.batch_bytes) {
			/* A new batch starts at the next block boundary, which
			 * moves the record: the room checked above must hold
			 * there too (invariant 4), else seal the zone. */
			uint64_t q2 = record_start(DV_ROUND_UP(p, DV_BLOCK_BYTES), size);
			if (!zone_has_room(s, z, q2 + size)) {
				seal_start(s);
				continue;
			}
			batch_close(s, b);
			b = NULL;
		}
		if (!b) {
			b = batch_new(s, z);
			if (!b)
				return PLACE_WAIT;
			p = b->zone_off;
			q = record_start(p, size);
		}
		append_to_batch(s, b, op, p, q);
		return PLACE_DONE;
	}
	return PLACE_NO_ZONE;
}

static void batch_write_done(struct dev_req *req);

static unsigned batches_writing(const struct store *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->batch_count; i++) {
		const struct batch *b = &s->batches[(s->batch_head + i) % DV_ARRAY_LEN(s->batches)];
		n += b->state == BATCH_WRITING && b->req.op != 0;
	}
	return n;
}

static void batch_ring_apply(struct store *s);

/* A failed store writes nothing more: batches not yet submitted complete
 * at once with the failure, in ring order behind those in flight. */
static void batch_fail_unsubmitted(struct store *s)
{
	for (unsigned i = 0; i < s->batch_count; i++) {
		struct batch *b = &s->batches[(s->batch_head + i) % DV_ARRAY_LEN(s->batches)];
		if (b->state == BATCH_FILLING || (b->state == BATCH_WRITING && b->req.op == 0)) {
			b->state = BATCH_WRITTEN;
			b->res = -DV_EFATAL;
		}
	}
	batch_ring_apply(s);
}

/* Submit batches in ring order while write slots are free. */
static void batch_submit_ready(struct store *s)
{
	if (s->failed) {
		batch_fail_unsubmitted(s);
		return;
	}
	unsigned writing = batches_writing(s);
	for (unsigned i = 0; i < s->batch_count && writing < s->cfg.batches_in_flight; i++) {
		struct batch *b = &s->batches[(s->batch_head + i) % DV_ARRAY_LEN(s->batches)];
		if (b->state == BATCH_WRITTEN || (b->state == BATCH_WRITING && b->req.op != 0))
			continue;
		if (s->sb_version_durable < s->zrt[b->zone].open_version)
			return; /* invariant 2: wait for the zone's OPEN to be durable */
		if (b->state == BATCH_FILLING) {
			if (b->used == 0)
				return;
			batch_close(s, b);
		}
		b->req = (struct dev_req){.op = DEV_WRITE, .len = b->used,
					  .off = zone_base(s, b->zone) + b->zone_off, .buf = b->buf,
					  .done = batch_write_done, .ctx = b};
		int err = store_dev_submit(s, &b->req);
		if (err) {
			b->req.op = 0; /* refused for now: the next pump submits it */
			if (err != -EAGAIN)
				store_fail(s, err);
			return;
		}
		writing++;
		s->st.batches++;
	}
}

/* A record of size bytes in zr left the index. */
void zone_live_sub(struct zone_rt *zr, uint32_t size)
{
	uint64_t c = reloc_cost(size);
	DV_DEBUG_ASSERT(zr->live_cost >= c);
	zr->live_cost -= zr->live_cost < c ? zr->live_cost : c;
}

/* A GC relocation applies only if the index still holds the location it
 * moved; otherwise a user write replaced it meanwhile and the copy is dead. */
static void apply_reloc(struct store *s, struct store_op *op)
{
	s->index_epoch++;
	int err = index_replace(s->index, op->priv.hash_lo, op->priv.prev_payload, op->priv.new_payload);
	DV_ASSERT(err == 0 || err == -ENOENT);
	if (err == 0) {
		moved_note(s, op->priv.prev_payload, s->sb.zones[pl_zone(op->priv.prev_payload)].gen,
			   op->priv.new_payload, op->priv.rec_size);
		memo_forget(&s->memo, op->priv.prev_payload);
		zone_live_sub(&s->zrt[pl_zone(op->priv.prev_payload)], op->priv.prev_size);
		s->zrt[pl_zone(op->priv.new_payload)].live_cost += reloc_cost(op->priv.rec_size);
		/* An expired value moved as a tombstone becomes one. */
		s->st.tombstones += pl_tomb(op->priv.new_payload);
		s->st.tombstones -= pl_tomb(op->priv.prev_payload);
		keylock_fix_prev(s, op->priv.hash_lo, op->priv.prev_payload, op->priv.new_payload,
				 op->priv.rec_size);
		store_scan_note_move(s, op->priv.hash_lo, op->priv.new_payload);
		if (op->priv.hash_full)
			store_memo_put(s, op->priv.new_payload, op->priv.hash_lo, op->priv.hash_hi,
				       op->priv.new_seq, op->priv.rec_size, op->expire_ms);
	}
	s->st.gc_bytes_relocated += op->priv.rec_size;
	gc_reloc_done(s, op);
}

static void apply_op(struct store *s, struct store_op *op)
{
	if (op->kind == STORE_RELOC) {
		apply_reloc(s, op);
		return;
	}
	if (op->kind == STORE_FLUSH) {
		flush_apply(s, op);
		return;
	}
	uint64_t h = op->priv.hash_lo;
	uint64_t prev = op->priv.prev_payload;
	s->index_epoch++;
	int err = prev == NO_PAYLOAD ? index_insert(s->index, h, op->priv.new_payload)
				     : index_replace(s->index, h, prev, op->priv.new_payload);
	if (err == -ENOMEM) {
		store_fail(s, err);
		key_done(s, op, -DV_EFATAL);
		return;
	}
	DV_ASSERT(err == 0); /* mutations of one key are serialised; relocations fix prev */
	if (prev != NO_PAYLOAD) {
		memo_forget(&s->memo, prev);
		damaged_forget(s, prev);
		zone_live_sub(&s->zrt[pl_zone(prev)], op->priv.prev_size);
		s->st.tombstones -= pl_tomb(prev);
	}
	s->st.tombstones += pl_tomb(op->priv.new_payload);
	s->zrt[pl_zone(op->priv.new_payload)].live_cost += reloc_cost(op->priv.rec_size);
	store_scan_note_write(s, h, op->priv.new_payload);
	/* The zone of a batch being applied has not been collected: its
	 * generation is the one the record was written with. */
	DV_ASSERT(s->sb.zones[pl_zone(op->priv.new_payload)].state == ZONE_OPEN);
	store_memo_put(s, op->priv.new_payload, h, op->priv.hash_hi, op->priv.new_seq, op->priv.rec_size,
		       op->expire_ms);
	applied_note(s, op->priv.new_seq, op->priv.ticket);
	s->st.user_bytes += op->priv.rec_size;
	if (op->kind == STORE_PUT)
		s->st.puts++;
	else
		s->st.dels++;
	int result = op->kind == STORE_DEL && !op->priv.prev_live ? -DV_ENOTFOUND : 0;
	if (result == 0)
		op->out.seq = op->priv.new_seq;
	key_done(s, op, result);
}

static void fail_op(struct store *s, struct store_op *op, int err)
{
	if (op->kind == STORE_RELOC) {
		gc_reloc_done(s, op); /* relocations hold no key lock */
		return;
	}
	if (op->kind == STORE_FLUSH) {
		flush_fail(s, op, err); /* no key lock either */
		return;
	}
	key_done(s, op, err);
}

/* Apply written batches from the head of the ring, in order. */
static void batch_ring_apply(struct store *s)
{
	while (s->batch_count > 0) {
		struct batch *b = &s->batches[s->batch_head];
		if (b->state != BATCH_WRITTEN)
			return;
		if (b->res < 0)
			store_fail(s, b->res);
		else
			s->st.device_bytes_written += b->used;
		struct store_op *op = b->ops.head;
		for (unsigned i = 0; op && i < DV_OPS_IN_FLIGHT_MAX; i++) {
			struct store_op *next = op->priv.next;
			if (s->failed)
				fail_op(s, op, -DV_EFATAL);
			else
				apply_op(s, op);
			op = next;
		}
		DV_ASSERT(s->zrt[b->zone].batches_in_flight > 0);
		s->zrt[b->zone].batches_in_flight--;
		b->state = BATCH_FREE;
		s->batch_head = (s->batch_head + 1) % DV_ARRAY_LEN(s->batches);
		s->batch_count--;
	}
}

static void batch_write_done(struct dev_req *req)
{
	struct batch *b = req->ctx;
	DV_ASSERT(b->state == BATCH_WRITING);
	b->res = req->res;
	b->state = BATCH_WRITTEN;
	batch_ring_apply(b->s);
}

/* ---- sealing: zone index after the last batch, then FULL ---- */

static void seal_write_done(struct dev_req *req)
{
	struct seal *se = req->ctx;
	struct store *s = se->owner;
	DV_ASSERT(se->in_use && se->writing && &se->req == req);
	se->writing = false;
	if (req->res < 0) {
		store_fail(s, req->res);
		return;
	}
	s->st.device_bytes_written += req->len;
	se->written = true;
}

static void seal_submit(struct store *s, uint32_t z)
{
	struct zone_rt *zr = &s->zrt[z];
	struct seal *se = NULL;
	for (unsigned i = 0; i < DV_ARRAY_LEN(s->seals) && !se; i++)
		if (!s->seals[i].in_use)
			se = &s->seals[i];
	if (!se)
		return; /* all seal slots busy: retried by the next pump */
	uint64_t foot_off = DV_ROUND_UP(zr->wp, DV_BLOCK_BYTES);
	se->bytes = zidx_bytes(zr->count, DV_BLOCK_BYTES);
	DV_ASSERT(foot_off + se->bytes <= s->sb.zone_cap); /* invariant 4 */
	se->buf = dev_buf_alloc(se->bytes);
	DV_ASSERT(se->buf != NULL);
	zidx_sort(zr->entries, zr->count);
	struct zidx_hdr h = {.zone_gen = s->sb.zones[z].gen, .count = zr->count,
			     .data_end = zr->wp, .max_seq = zr->max_seq};
	zidx_encode(se->buf, &h, zr->entries);
	se->owner = s;
	se->zone = z;
	se->written = false;
	se->req = (struct dev_req){.op = DEV_WRITE, .len = se->bytes, .off = zone_base(s, z) + foot_off,
				   .buf = se->buf, .done = seal_write_done, .ctx = se};
	int err = store_dev_submit(s, &se->req);
	if (err) { /* refused for now: the next pump tries again */
		dev_buf_free(se->buf);
		se->buf = NULL;
		if (err != -EAGAIN)
			store_fail(s, err);
		return;
	}
	se->writing = true;
	se->in_use = true;
	s->seal_count++;
	zr->sealing = false; /* the seal slot now tracks it */
	DV_ASSERT(s->zones_sealing > 0);
	s->zones_sealing--;
}

static void seal_finish(struct store *s, struct seal *se)
{
	uint32_t z = se->zone;
	struct zone_rt *zr = &s->zrt[z];
	s->sb.zones[z].state = ZONE_FULL;
	s->sb.zones[z].footer_block = (uint32_t)(DV_ROUND_UP(zr->wp, DV_BLOCK_BYTES) / DV_BLOCK_BYTES);
	if (zr->min_seq < s->reclaim_seq && zr->swept_seq < s->reclaim_seq)
		s->sweep_pending = true; /* records below the host's horizon: a sweep reads it */
	sb_request(s);
	/* Finished, the zone no longer counts as open or active on a zoned
	 * device (its capacity may not be reached: the rest stays unwritten). */
	int err = dev_zone_finish(s->dev, zone_base(s, z), s->sb.zone_bytes);
	if (err)
		store_fail(s, err);
	free(zr->entries);
	zr->entries = NULL;
	zr->count = zr->cap = 0;
	dev_buf_free(se->buf);
	*se = (struct seal){0};
	DV_ASSERT(s->seal_count > 0);
	s->seal_count--;
}

static void seal_pump(struct store *s)
{
	for (uint32_t z = 0; s->zones_sealing > 0 && z < s->sb.zone_count && !s->failed; z++)
		if (s->zrt[z].sealing && s->zrt[z].batches_in_flight == 0)
			seal_submit(s, z);
	for (unsigned i = 0; i < DV_ARRAY_LEN(s->seals); i++)
		if (s->seals[i].in_use && s->seals[i].written)
			seal_finish(s, &s->seals[i]);
}

/* ---- entry points ---- */

void write_enqueue(struct store *s, struct store_op *op)
{
	DV_ASSERT(op->priv.rec_size > 0);
	op->priv.state = OPS_QUEUED;
	opq_push(op->kind == STORE_RELOC ? &s->reloc_queue : &s->write_queue, op);
}

/* Place queued ops of q into batches in order; stop at the first that must
 * wait. Ops in the queues hold their key locks, so the two queues may be
 * placed in any order relative to each other. */
static void place_queue(struct store *s, struct op_queue *q, bool user)
{
	for (unsigned i = 0; i < DV_OPS_IN_FLIGHT_MAX && q->head; i++) {
		/* Pop first: a placed op's queue link becomes its batch link. */
		struct store_op *op = opq_pop(q);
		if (s->failed) {
			fail_op(s, op, -DV_EFATAL);
			continue;
		}
		if (op->kind == STORE_RELOC && !index_contains(s->index, op->priv.hash_lo, op->priv.prev_payload)) {
			/* Replaced or flushed while it waited for room: a dead
			 * copy need not be written (after a flush of a full
			 * device it could never find any). */
			gc_reloc_done(s, op);
			continue;
		}
		int placed = place_op(s, op);
		if (placed == PLACE_DONE) {
			if (user)
				keylock_placed(s, op); /* the next write of its key joins the queue behind it */
			continue;
		}
		if (!user && placed == PLACE_NO_ZONE && zones_empty_count(s) == 0) {
			/* No zone for a relocation and none empty (with one, the
			 * device's open limit makes it wait for a seal): nothing
			 * but this collection could free one. Give the collection
			 * up rather than wait for ever (store_gc_start checks the
			 * room first, so this is a safety net); the record stays
			 * where it is. */
			gc_reloc_stalled(s, op);
			continue;
		}
		/* No zone for a user write: fail unless a collection can free
		 * one, now or once a zone being sealed is FULL (a victim). */
		if (user && placed == PLACE_NO_ZONE && !store_gc_running(s) && s->zones_sealing == 0 &&
		    s->seal_count == 0 && s->reloc_queue.head == NULL && store_gc_start(s) <= 0) {
			fail_op(s, op, -DV_EFULL);
			continue;
		}
		opq_push_front(q, op);
		return;
	}
}

void write_pump(struct store *s)
{
	place_queue(s, &s->reloc_queue, false);
	place_queue(s, &s->write_queue, true);
	seal_pump(s);
	batch_submit_ready(s);
	sb_pump(s);
}

int writer_start(struct store *s)
{
	for (unsigned i = 0; i < DV_ARRAY_LEN(s->batches); i++) {
		/* A record larger than batch_bytes travels alone in its batch. */
		s->batches[i].buf = dev_buf_alloc(s->cfg.batch_bytes + STORE_RECORD_BYTES_MAX);
		if (!s->batches[i].buf)
			return -ENOMEM;
		s->batches[i].s = s;
	}
	s->sb_buf = dev_buf_alloc(sb_bytes(DV_ZONE_COUNT_MAX));
	if (!s->sb_buf)
		return -ENOMEM;
	s->active_zone = s->next_zone = UINT32_MAX;
	return 0;
}

void writer_stop(struct store *s)
{
	for (unsigned i = 0; i < DV_ARRAY_LEN(s->seals); i++) {
		DV_ASSERT(!s->seals[i].writing); /* the store drained the device */
		if (s->seals[i].in_use)
			dev_buf_free(s->seals[i].buf); /* a failed store never finished it */
	}
	for (unsigned i = 0; i < DV_ARRAY_LEN(s->batches); i++)
		dev_buf_free(s->batches[i].buf);
	for (uint32_t z = 0; s->zrt && z < s->sb.zone_count; z++)
		free(s->zrt[z].entries);
	dev_buf_free(s->sb_buf);
}
