/* store_gc.c - garbage collection of one zone at a time.
 *
 *   IDLE --start--> READ_INDEX --> [READ_CHUNK --> RELOCATE [--> READ_BAD --> RELOCATE]*]*
 *        --> WAIT_SB --> reset --> IDLE
 *
 * A victim is the FULL zone with the most to gain: its capacity minus what
 * its live records take once relocated (relocated_cost()). Its zone index names every record; a record is live when the RAM
 * index holds exactly its location. Live records are read a chunk at a time
 * and re-appended through the normal write path as RELOC ops (no key lock,
 * see gc_reloc_step()); a RELOC applies with index_replace(old -> new) only
 * if the index still holds old. When every RELOC
 * of the zone has applied, the zone becomes EMPTY with a new generation in
 * the superblock, and only once that is durable is the zone reset.
 *
 * Crash safety: before the superblock write the old zone is still FULL and
 * its records are valid; relocated copies carry the same seq, so recovery
 * keeps one of two identical versions. After it, the old records carry a
 * generation the zone no longer has and are never read again.
 *
 * What GC may drop: only records the index no longer holds (replaced,
 * deleted over, or moved copies), and the value of an expired PUT (moved as
 * a tombstone of the same seq). Never an indexed record, not even a damaged
 * one: a live record that fails its checksum twice stays indexed (a GET says
 * -DV_ECORRUPT) and is remembered with its key hash from the zone index
 * (damaged_rec); its zone, whose other records are moved out, is not reset
 * while such a record is indexed, so no older version of the key elsewhere
 * can come back at recovery (newest seq wins). A newer write of the key
 * replaces it, and then the zone is collected as any other. With no room
 * left to remember it (DAMAGED_MAX), the zone is never collected again in
 * this run. The cluster layer repairs such a key from a replica.
 *
 * Reclaim (store.h: store_set_reclaim, store_reclaim_below): records the
 * host's predicate calls dead are dropped, never relocated, whether GC
 * meets them in a victim or the sweep does. A sweep is this same machine
 * on a FULL zone holding records below the host's horizon, with nothing to
 * relocate:
 *
 *   IDLE --sweep--> READ_INDEX --> [READ_CHUNK: drop the dead ones]*
 *        --> nothing indexed left: WAIT_SB --> reset --> IDLE
 *        --> else: IDLE (swept_seq = the horizon; GC picks it by its gain)
 *
 * Only candidates (indexed, seq below the horizon) are read; a record whose
 * key has a write in flight is kept (the write replaces it), one that does
 * not verify is kept. The zone is reset only when every entry its zone
 * index names has left the index: entries of a FULL zone only ever leave.
 *
 * After a flush (store_flush.c) a zone whose records are all below the
 * flush point (max_seq) is dead as a whole: it is picked first and goes to
 * EMPTY without its zone index being read (even one GC gave up on, or one
 * with damaged records, all dead too), then is reset as any other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "store_int.h"

#define GC_CHUNK_BYTES (1u << 20)
#define GC_OPS_MAX 4096u

enum gc_phase { GC_IDLE = 0, GC_READ_INDEX, GC_READ_CHUNK, GC_RELOCATE, GC_READ_BAD, GC_WAIT_SB };

/* Records of one chunk that did not verify, read again one by one. */
#define GC_BAD_MAX 64u

struct gc_state {
	enum gc_phase phase;
	uint32_t zone;
	uint8_t *idx_buf;
	uint32_t idx_bytes;
	struct zidx_entry *live;
	uint32_t live_count, next;
	uint8_t *chunk;
	uint64_t chunk_off;
	uint32_t chunk_len;
	struct store_op *ops;
	uint32_t ops_used, ops_done;
	struct dev_req req;
	bool req_busy, req_done;
	bool req_refused; /* req prepared, refused by the device for now: resubmit */
	unsigned read_errors;  /* of the request in req, in a row (retried: STORE_READS_MAX) */
	unsigned reads;        /* of the zone index or the bad record being read, that did not verify */
	uint64_t prev_digest;  /* of the previous such read (reads_agree) */
	uint32_t bad[GC_BAD_MAX]; /* live[] entries of the chunk that did not verify */
	uint32_t bad_count, bad_next;
	bool damage_untracked; /* a damaged record found with DAMAGED_MAX already kept */
	bool stalled;          /* a relocation found no zone: stop (gc_reloc_stalled) */
	bool sweep;            /* a reclaim sweep: drop dead records, relocate nothing */
	uint32_t kept;         /* sweep: entries of the zone still indexed after it */
	uint64_t sweep_seq;    /* sweep: the horizon it reads the zone for (fixed at its start) */
	bool start_failed;     /* the last start from GC_IDLE failed (-ENOMEM, a read refused): retried at the
				* next gc_pump, not at once (gc_can_step) */
	uint64_t sb_version;
};

bool store_gc_running(const struct store *s) { return s->gc->phase != GC_IDLE; }

bool gc_can_step(const struct store *s)
{
	const struct gc_state *g = s->gc;
	if (!g || s->failed || g->req_busy || g->req_refused)
		return false;
	if (g->phase == GC_RELOCATE)
		return g->ops_done >= g->ops_used; /* its next read (or its end) is due */
	return g->phase == GC_IDLE && s->sweep_pending && !g->start_failed && !s->draining && !s->cfg.read_only;
}

bool zone_resetting(const struct store *s, uint32_t zone) { return s->zrt[zone].resetting; }

int gc_create(struct store *s)
{
	s->gc = calloc(1, sizeof(*s->gc));
	if (!s->gc)
		return -ENOMEM;
	s->gc->ops = calloc(GC_OPS_MAX, sizeof(*s->gc->ops));
	s->gc->chunk = dev_buf_alloc(GC_CHUNK_BYTES + STORE_RECORD_BYTES_MAX);
	return s->gc->ops && s->gc->chunk ? 0 : -ENOMEM;
}

void gc_destroy(struct store *s)
{
	if (!s->gc)
		return;
	DV_ASSERT(!s->gc->req_busy);
	dev_buf_free(s->gc->idx_buf);
	dev_buf_free(s->gc->chunk);
	free(s->gc->live);
	free(s->gc->ops);
	free(s->gc);
	s->gc = NULL;
}

/* Bytes that the zone's live records need once relocated: their relocation
 * costs (records, their zone index entries, placement waste; kept up to
 * date in live_cost) and the end of each relocation batch, padded to a
 * block. A zone full of live records costs its whole size: collecting it
 * gains nothing, however small the records (their index entries move
 * with them). */
static uint64_t relocated_cost(const struct store *s, const struct zone_rt *zr)
{
	if (zr->live_cost == 0)
		return 0;
	uint64_t batches = zr->live_cost / s->cfg.batch_bytes + s->sb.zone_cap / GC_CHUNK_BYTES + 1;
	return zr->live_cost + batches * DV_BLOCK_BYTES;
}

/* Every record of FULL zone z is below the flush point: all dead, whatever
 * its zone index says (or whether it can be read). */
static bool zone_flushed(const struct store *s, uint32_t z)
{
	return s->flush_seq && s->zrt[z].max_seq < s->flush_seq;
}

/* The zone with most to gain whose relocations fit in the room they have
 * (a collection never starts without room to finish); a zone the flush
 * point emptied first. */
static uint32_t pick_victim(const struct store *s)
{
	uint32_t best = UINT32_MAX;
	uint64_t best_gain = 0, room = reloc_room(s);
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		const struct zone_rt *zr = &s->zrt[z];
		if (s->sb.zones[z].state != ZONE_FULL || zr->resetting || zr->unusable)
			continue;
		if (zone_flushed(s, z))
			return z; /* nothing to read or move: the best there is */
		if (zr->gc_failures >= GC_FAILURES_MAX || zr->damaged > 0)
			continue;
		/* Gain: the zone's space (data and index, up to its capacity)
		 * minus what its live records take again elsewhere. */
		uint64_t cost = relocated_cost(s, zr);
		uint64_t gain = s->sb.zone_cap > cost ? s->sb.zone_cap - cost : 0;
		if (cost > room)
			continue;
		/* Not worth a collection below 1/16 of a zone (and a device
		 * full of live data must fail writes, not spin). */
		if (gain >= s->sb.zone_cap / 16 && gain > best_gain) {
			best_gain = gain;
			best = z;
		}
	}
	return best;
}

static void gc_req_done(struct dev_req *req)
{
	struct gc_state *g = req->ctx;
	DV_ASSERT(g->req_busy);
	g->req_busy = false;
	g->req_done = true;
}

static int gc_submit(struct store *s)
{
	struct gc_state *g = s->gc;
	int err = store_dev_submit(s, &g->req);
	g->req_refused = err == -EAGAIN;
	g->req_busy = err == 0;
	g->req_done = false;
	if (err == -EAGAIN)
		return 0; /* submitted again by gc_pump() */
	if (err)
		store_fail(s, err); /* the device takes no requests */
	return err;
}

/* Start a read of the victim zone: 0 (sent, or refused for now and sent
 * again by gc_pump) or an error that means the device is unusable. */
static int gc_read(struct store *s, uint64_t zone_off, void *buf, uint32_t len)
{
	struct gc_state *g = s->gc;
	DV_ASSERT(!g->req_busy && !g->req_refused);
	g->req = (struct dev_req){.op = DEV_READ, .len = len, .off = zone_base(s, g->zone) + zone_off,
				  .buf = buf, .done = gc_req_done, .ctx = g};
	return gc_submit(s);
}

static void gc_finish_zone(struct store *s);

/* A FULL zone due for a reclaim sweep: it holds a record below the
 * horizon and was not swept for it. None: the sweep is over. */
static uint32_t pick_sweep(struct store *s)
{
	if (!s->sweep_pending)
		return UINT32_MAX;
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		const struct zone_rt *zr = &s->zrt[z];
		if (s->sb.zones[z].state != ZONE_FULL || zr->resetting || zr->unusable ||
		    zr->gc_failures >= GC_FAILURES_MAX)
			continue;
		if (zr->min_seq < s->reclaim_seq && zr->swept_seq < s->reclaim_seq)
			return z;
	}
	/* Zones still open (or being sealed) are swept once FULL (seal_finish
	 * sets sweep_pending again). */
	s->sweep_pending = false;
	return UINT32_MAX;
}

static int gc_start_zone(struct store *s, uint32_t z, bool sweep);

int store_gc_start(struct store *s)
{
	struct gc_state *g = s->gc;
	if (g->phase != GC_IDLE || s->failed || s->cfg.read_only)
		return 0;
	uint32_t z = pick_victim(s);
	if (z != UINT32_MAX)
		return gc_start_zone(s, z, false);
	/* Nothing worth collecting by what the index holds: what the host
	 * declared dead may change that (the sweep drops it). */
	z = pick_sweep(s);
	return z == UINT32_MAX ? 0 : gc_start_zone(s, z, true);
}

static int gc_start_zone(struct store *s, uint32_t z, bool sweep)
{
	struct gc_state *g = s->gc;
	g->zone = z;
	g->stalled = false;
	g->sweep = sweep;
	g->sweep_seq = s->reclaim_seq; /* a flush during the sweep has the zone read again */
	g->kept = 0;
	if (sweep)
		s->st.reclaim_zones_swept++;
	if (!sweep && zone_flushed(s, z)) {
		gc_finish_zone(s); /* no live record: straight to EMPTY, then reset */
		return 1;
	}
	g->damage_untracked = false;
	g->read_errors = g->reads = 0;
	g->bad_count = g->bad_next = 0;
	g->idx_bytes = DV_BLOCK_BYTES; /* header first, then the whole index */
	dev_buf_free(g->idx_buf);
	g->idx_buf = dev_buf_alloc(g->idx_bytes);
	if (!g->idx_buf) {
		g->sweep = false;
		return -ENOMEM;
	}
	int err = gc_read(s, (uint64_t)s->sb.zones[z].footer_block * DV_BLOCK_BYTES, g->idx_buf, g->idx_bytes);
	if (err) {
		g->sweep = false;
		return err;
	}
	g->phase = GC_READ_INDEX;
	return 1;
}

static int cmp_off(const void *a, const void *b)
{
	const struct zidx_entry *x = a, *y = b;
	return x->off_units < y->off_units ? -1 : x->off_units > y->off_units;
}

static uint64_t entry_payload(uint32_t zone, const struct zidx_entry *e)
{
	return pl_make(e->type == REC_TOMBSTONE, zone, (uint64_t)e->off_units * DV_RECORD_ALIGN_BYTES, e->size);
}

/* Keep the entries the index still points at, in disk order. */
static int gc_collect_live(struct store *s, const struct zidx_hdr *h)
{
	struct gc_state *g = s->gc;
	free(g->live);
	g->live = malloc((size_t)(h->count ? h->count : 1) * sizeof(*g->live));
	if (!g->live)
		return -ENOMEM;
	int err = zidx_decode(g->idx_buf, g->idx_bytes, (struct zidx_hdr *)h, g->live, h->count);
	if (err)
		return err;
	uint32_t n = 0;
	g->kept = 0;
	for (uint32_t i = 0; i < h->count; i++) {
		if (!index_contains(s->index, g->live[i].hash.lo, entry_payload(g->zone, &g->live[i])))
			continue;
		if (g->sweep && g->live[i].seq >= g->sweep_seq)
			g->kept++; /* alive whatever the predicate says: not read */
		else
			g->live[n++] = g->live[i];
	}
	qsort(g->live, n, sizeof(*g->live), cmp_off);
	g->live_count = n;
	g->next = 0;
	return 0;
}

/* Abandon the collection under way; the zone stays FULL and intact (records
 * already relocated are dead copies there). */
static void gc_give_up(struct store *s)
{
	struct gc_state *g = s->gc;
	s->zrt[g->zone].gc_failures++;
	g->sweep = false;
	g->phase = GC_IDLE;
}

/* A read of the collection failed: read it again (the request in g->req,
 * as it was), up to STORE_READS_MAX times in a row; then give up. */
static void gc_read_failed(struct store *s)
{
	struct gc_state *g = s->gc;
	if (++g->read_errors >= STORE_READS_MAX) {
		gc_give_up(s);
		return;
	}
	if (gc_read(s, g->req.off - zone_base(s, g->zone), g->req.buf, g->req.len))
		gc_give_up(s);
}

static void gc_index_read(struct store *s)
{
	struct gc_state *g = s->gc;
	if (g->req.res < 0) {
		gc_read_failed(s);
		return;
	}
	g->read_errors = 0;
	struct zidx_hdr h;
	int err = zidx_decode_hdr(g->idx_buf, g->idx_bytes, &h);
	if (!err && !zidx_hdr_fits(s, g->zone, &h))
		err = -DV_ECORRUPT; /* checked before sizing a read from it */
	if (!err && zidx_bytes(h.count, DV_BLOCK_BYTES) > g->idx_bytes) {
		g->idx_bytes = zidx_bytes(h.count, DV_BLOCK_BYTES);
		dev_buf_free(g->idx_buf);
		g->idx_buf = dev_buf_alloc(g->idx_bytes);
		err = g->idx_buf ? gc_read(s, (uint64_t)s->sb.zones[g->zone].footer_block * DV_BLOCK_BYTES,
					   g->idx_buf, g->idx_bytes)
				 : -ENOMEM;
		if (!err)
			return; /* same phase, whole index this time */
	}
	if (!err)
		err = gc_collect_live(s, &h);
	if (err == -DV_ECORRUPT && !reads_agree(dv_checksum64(g->idx_buf, g->idx_bytes), &g->prev_digest, g->reads++)) {
		/* a flip in transit is not damage: read it again */
		if (gc_read(s, (uint64_t)s->sb.zones[g->zone].footer_block * DV_BLOCK_BYTES, g->idx_buf,
			    g->idx_bytes) == 0)
			return;
	}
	if (err) {
		/* An unreadable zone index: leave the zone alone (check reports
		 * it); after GC_FAILURES_MAX tries GC stops picking it. */
		gc_give_up(s);
		return;
	}
	g->reads = 0;
	g->phase = GC_RELOCATE; /* with ops_used == ops_done == 0: read first chunk */
	g->ops_used = g->ops_done = 0;
}

static void gc_read_chunk(struct store *s)
{
	struct gc_state *g = s->gc;
	const struct zidx_entry *e = &g->live[g->next];
	uint64_t off = (uint64_t)e->off_units * DV_RECORD_ALIGN_BYTES;
	g->chunk_off = off / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
	uint64_t need = DV_ROUND_UP(off + e->size, DV_BLOCK_BYTES) - g->chunk_off;
	DV_ASSERT(need <= GC_CHUNK_BYTES + STORE_RECORD_BYTES_MAX); /* sizes checked by zidx_decode */
	uint64_t len = need > GC_CHUNK_BYTES ? need : GC_CHUNK_BYTES;
	if (g->chunk_off + len > s->sb.zone_cap)
		len = s->sb.zone_cap - g->chunk_off;
	g->chunk_len = (uint32_t)len;
	if (gc_read(s, g->chunk_off, g->chunk, g->chunk_len)) {
		gc_give_up(s);
		return;
	}
	g->phase = GC_READ_CHUNK;
}

/* An expired value is moved as a tombstone with the same seq: it still
 * hides older versions of the key in other zones, and its value's space is
 * reclaimed. Encoded in place in the chunk (a tombstone is never larger). */
static uint32_t expire_to_tombstone(struct store *s, uint8_t *raw, const struct rec_view *r)
{
	uint8_t key[DV_KEY_BYTES_MAX];
	memcpy(key, r->key, r->key_len);
	struct rec_view t = {.type = REC_TOMBSTONE, .zone_gen = r->zone_gen, .seq = r->seq,
			     .key = key, .key_len = r->key_len};
	uint32_t size = rec_encode(raw, &t);
	DV_ASSERT(size <= r->total_bytes);
	s->st.gc_expired++;
	return size;
}

static void gc_make_reloc(struct store *s, const struct zidx_entry *e, const struct rec_view *r, uint8_t *raw)
{
	struct gc_state *g = s->gc;
	bool expired = r->type == REC_PUT && r->expire_ms && r->expire_ms <= store_clock_ms(s);
	uint32_t size = expired ? expire_to_tombstone(s, raw, r) : r->total_bytes;
	struct store_op *op = &g->ops[g->ops_used++];
	memset(op, 0, sizeof(*op));
	op->kind = (enum store_op_kind)STORE_RELOC;
	op->key = r->key;
	op->key_len = r->key_len;
	op->value = raw;
	op->priv.owner = s;
	op->priv.reloc = g;
	op->priv.hash_lo = e->hash.lo;
	op->priv.hash_hi = e->hash.hi;
	/* The zone index keeps 96 bits of the key hash; the memo wants all
	 * 128 (apply_reloc remembers the new copy). */
	struct dv_hash128 h = dv_key_hash128(r->key, r->key_len);
	if (h.lo == e->hash.lo && (h.hi & ZIDX_HASH_HI_MASK) == e->hash.hi) {
		op->priv.hash_hi = h.hi;
		op->priv.hash_full = true;
	}
	op->expire_ms = expired ? 0 : r->expire_ms;
	op->priv.prev_payload = entry_payload(g->zone, e);
	op->priv.prev_size = e->size;
	op->priv.prev_live = r->type == REC_PUT && !expired;
	op->priv.new_payload = NO_PAYLOAD;
	op->priv.rec_size = size;
	op->priv.state = OPS_NEW;
	opq_push(&s->ready, op);
}

/* Turn the records of the chunk into RELOC ops. */
static bool chunk_record_ok(struct store *s, const struct zidx_entry *e, uint8_t *raw, struct rec_view *r)
{
	struct gc_state *g = s->gc;
	return rec_decode(raw, e->size, r, NULL) == 0 && r->seq == e->seq &&
	       r->zone_gen == s->sb.zones[g->zone].gen && (uint8_t)r->type == e->type;
}

const struct damaged_rec *damaged_find(const struct store *s, uint64_t payload)
{
	if (s->zrt[pl_zone(payload)].damaged == 0)
		return NULL;
	for (uint32_t i = 0; i < s->damaged_count; i++)
		if (s->damaged[i].payload == payload)
			return &s->damaged[i];
	return NULL;
}

void damaged_forget(struct store *s, uint64_t payload)
{
	const struct damaged_rec *d = damaged_find(s, payload);
	if (!d)
		return;
	DV_ASSERT(s->zrt[pl_zone(payload)].damaged > 0);
	s->zrt[pl_zone(payload)].damaged--;
	s->damaged[d - s->damaged] = s->damaged[--s->damaged_count];
}

/* A live record failed its checksum twice: keep it indexed and remember
 * whose it is (see the top of this file); the zone is then kept. */
static void gc_keep_damaged(struct store *s, const struct zidx_entry *e)
{
	struct gc_state *g = s->gc;
	uint64_t p = entry_payload(g->zone, e);
	s->st.corrupt_records++;
	if (!index_contains(s->index, e->hash.lo, p))
		return; /* replaced since the zone index was read: dead, nothing to keep */
	if (damaged_find(s, p))
		return;
	if (s->damaged_count == DAMAGED_MAX) {
		g->damage_untracked = true;
		return;
	}
	s->damaged[s->damaged_count++] = (struct damaged_rec){
		.payload = p, .hash_lo = e->hash.lo, .hash_hi = (uint32_t)e->hash.hi, .size = e->size,
		.seq = e->seq, .tomb = e->type == REC_TOMBSTONE};
	s->zrt[g->zone].damaged++;
}

/* The host's predicate (store.h) on a record of the victim that verified:
 * below the horizon, no write of its key in flight, and dead for the host. */
static bool gc_record_dead(struct store *s, const struct zidx_entry *e, const struct rec_view *r)
{
	if (!s->dead_fn || r->seq >= s->reclaim_seq || keylock_holder(s, e->hash.lo) != NULL ||
	    flush_is_key(r->key, r->key_len))
		return false;
	struct store_record_out out = {.value = r->value, .val_len = r->val_len, .meta = r->meta,
				       .meta_len = r->meta_len, .seq = r->seq, .expire_ms = r->expire_ms};
	return s->dead_fn(s->dead_ctx, r->key, r->key_len, &out, r->type == REC_TOMBSTONE);
}

/* A dead record leaves the index (if it is still there): its RAM, its
 * zone's live cost; its bytes go with the zone's reset. */
static void gc_drop_dead(struct store *s, const struct zidx_entry *e)
{
	struct gc_state *g = s->gc;
	uint64_t p = entry_payload(g->zone, e);
	DV_ASSERT(pl_zone(p) == g->zone && e->seq < s->reclaim_seq);
	if (index_remove(s->index, e->hash.lo, p) != 0)
		return; /* replaced since the zone index was read */
	s->index_epoch++;
	memo_forget(&s->memo, p);
	zone_live_sub(&s->zrt[g->zone], e->size);
	s->st.tombstones -= pl_tomb(p);
	s->st.reclaim_dropped++;
	s->st.reclaim_bytes += e->size;
	DV_ASSERT(!index_contains(s->index, e->hash.lo, p));
}

/* Turn the records of the chunk into RELOC ops. A read error is retried
 * (gc_read_failed; then the collection is abandoned: nothing is dropped
 * for it). A record that does not verify is set aside (g->bad) and read
 * again alone once the others are relocated (gc_read_bad): a record is
 * kept as damaged only when two reads in a row agree on its bytes, never
 * for a flip in transit on one read. */
static void gc_chunk_read(struct store *s)
{
	struct gc_state *g = s->gc;
	if (g->req.res < 0) {
		gc_read_failed(s);
		return;
	}
	g->read_errors = 0;
	g->ops_used = g->ops_done = 0;
	g->bad_count = g->bad_next = 0;
	for (; g->next < g->live_count && g->ops_used < GC_OPS_MAX; g->next++) {
		const struct zidx_entry *e = &g->live[g->next];
		uint64_t off = (uint64_t)e->off_units * DV_RECORD_ALIGN_BYTES;
		if (off + e->size > g->chunk_off + g->chunk_len)
			break;
		uint8_t *raw = g->chunk + (off - g->chunk_off);
		struct rec_view r;
		bool ok = chunk_record_ok(s, e, raw, &r);
		if (ok && gc_record_dead(s, e, &r)) {
			gc_drop_dead(s, e);
			continue;
		}
		if (g->sweep) {
			g->kept++; /* alive, or damage GC deals with when it picks the zone */
			continue;
		}
		if (ok) {
			gc_make_reloc(s, e, &r, raw);
			continue;
		}
		if (g->bad_count == GC_BAD_MAX)
			break; /* read with the next chunk */
		g->bad[g->bad_count++] = g->next;
	}
	g->phase = GC_RELOCATE;
}

/* Read the next record set aside by gc_chunk_read, alone (the chunk buffer
 * is free: the chunk's relocations are done). */
static void gc_read_bad(struct store *s)
{
	struct gc_state *g = s->gc;
	const struct zidx_entry *e = &g->live[g->bad[g->bad_next]];
	uint64_t off = (uint64_t)e->off_units * DV_RECORD_ALIGN_BYTES;
	g->chunk_off = off / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
	g->chunk_len = (uint32_t)(DV_ROUND_UP(off + e->size, DV_BLOCK_BYTES) - g->chunk_off);
	if (gc_read(s, g->chunk_off, g->chunk, g->chunk_len)) {
		gc_give_up(s);
		return;
	}
	g->phase = GC_READ_BAD;
}

static void gc_bad_read(struct store *s)
{
	struct gc_state *g = s->gc;
	if (g->req.res < 0) {
		gc_read_failed(s);
		return;
	}
	g->read_errors = 0;
	const struct zidx_entry *e = &g->live[g->bad[g->bad_next]];
	uint64_t off = (uint64_t)e->off_units * DV_RECORD_ALIGN_BYTES;
	uint8_t *raw = g->chunk + (off - g->chunk_off);
	struct rec_view r;
	g->ops_used = g->ops_done = 0;
	bool ok = chunk_record_ok(s, e, raw, &r);
	if (ok && gc_record_dead(s, e, &r)) {
		gc_drop_dead(s, e);
	} else if (ok) {
		gc_make_reloc(s, e, &r, raw);
	} else if (!reads_agree(dv_checksum64(raw, e->size), &g->prev_digest, g->reads++)) {
		if (gc_read(s, g->chunk_off, g->chunk, g->chunk_len))
			gc_give_up(s);
		return; /* same record again */
	} else {
		gc_keep_damaged(s, e);
	}
	g->reads = 0;
	g->bad_next++;
	g->phase = GC_RELOCATE;
}

/* Relocations take no key lock: a user write of the same key may be
 * waiting for space that only this collection can free. Ordering with user
 * writes comes from the index instead: a relocation applies only if the
 * index still holds the moved location (index_replace), and then updates
 * the previous location of writes of the key already resolved
 * (keylock_fix_prev), so they replace the new copy. */
void gc_reloc_step(struct store *s, struct store_op *op)
{
	DV_ASSERT(op->priv.reloc == s->gc);
	if (s->failed || !index_contains(s->index, op->priv.hash_lo, op->priv.prev_payload)) {
		gc_reloc_done(s, op); /* overwritten meanwhile: nothing to move */
		return;
	}
	write_enqueue(s, op);
}

void gc_reloc_stalled(struct store *s, struct store_op *op)
{
	s->gc->stalled = true;
	gc_reloc_done(s, op);
}

void gc_reloc_done(struct store *s, struct store_op *op)
{
	struct gc_state *g = s->gc;
	DV_ASSERT(op->priv.reloc == g && g->ops_done < g->ops_used);
	g->ops_done++;
}

/* Every record that verified was moved out; damaged ones stay indexed
 * here, so the zone stays FULL until writes replace them (pick_victim skips
 * it meanwhile). Untracked damage: never collected again in this run. */
static void gc_keep_zone(struct store *s)
{
	struct gc_state *g = s->gc;
	if (g->damage_untracked)
		s->zrt[g->zone].gc_failures = GC_FAILURES_MAX;
	g->phase = GC_IDLE;
}

static void gc_finish_zone(struct store *s)
{
	struct gc_state *g = s->gc;
	uint32_t z = g->zone;
	s->sb.zones[z].state = ZONE_EMPTY;
	s->sb.zones[z].gen++;
	memo_zone_gen_changed(&s->memo, z, s->sb.zones[z].gen);
	s->zrt[z].resetting = true;
	sb_request(s);
	g->sb_version = s->sb_version_wanted;
	g->phase = GC_WAIT_SB;
}

/* Every candidate of the swept zone was read: it is reset when nothing it
 * holds is indexed any more, else left to GC, which picks it by its gain. */
static void gc_sweep_done(struct store *s)
{
	struct gc_state *g = s->gc;
	struct zone_rt *zr = &s->zrt[g->zone];
	DV_ASSERT(g->sweep && g->ops_used == 0 && s->sb.zones[g->zone].state == ZONE_FULL);
	DV_ASSERT(g->sweep_seq <= s->reclaim_seq);
	zr->swept_seq = g->sweep_seq;
	g->sweep = false;
	if (g->kept == 0 && zr->damaged == 0) {
		s->st.reclaim_zones_freed++;
		zr->live_cost = 0;
		gc_finish_zone(s);
		return;
	}
	g->phase = GC_IDLE;
}

static void gc_reset_zone(struct store *s)
{
	struct gc_state *g = s->gc;
	uint32_t z = g->zone;
	int err = dev_zone_reset(s->dev, zone_base(s, z), s->sb.zone_bytes);
	if (err) {
		store_fail(s, err);
		return;
	}
	s->zrt[z].resetting = false;
	s->zones_free++;
	s->zrt[z].live_cost = 0;
	s->zrt[z].rec_bytes = 0;
	s->zrt[z].rec_count = 0;
	s->zrt[z].wp = 0;
	s->zrt[z].min_seq = UINT64_MAX;
	s->zrt[z].swept_seq = 0;
	s->st.gc_zones_reset++;
	g->phase = GC_IDLE;
}

void gc_pump(struct store *s)
{
	struct gc_state *g = s->gc;
	if (g->phase == GC_IDLE) {
		int rc = 0;
		if (zones_empty_count(s) < s->cfg.gc_free_zones_min) {
			rc = store_gc_start(s);
		} else if (s->sweep_pending && !s->draining && !s->failed && !s->cfg.read_only) {
			uint32_t z = pick_sweep(s); /* in the background: one zone at a time */
			if (z != UINT32_MAX)
				rc = gc_start_zone(s, z, true);
		}
		g->start_failed = rc < 0;
		return;
	}
	if (g->req_refused && gc_submit(s) != 0) {
		gc_give_up(s); /* no relocation is out while a read is due */
		return;
	}
	if (g->req_busy || g->req_refused)
		return;
	switch (g->phase) {
	case GC_READ_INDEX:
		if (g->req_done)
			gc_index_read(s);
		break;
	case GC_READ_CHUNK:
		if (g->req_done)
			gc_chunk_read(s);
		break;
	case GC_READ_BAD:
		if (g->req_done)
			gc_bad_read(s);
		break;
	case GC_RELOCATE:
		if (g->ops_done < g->ops_used)
			break;
		if (s->failed || g->stalled) {
			g->phase = GC_IDLE; /* the zone stays FULL; what moved has moved */
			g->sweep = false;
		}
		else if (g->bad_next < g->bad_count)
			gc_read_bad(s);
		else if (g->next < g->live_count)
			gc_read_chunk(s);
		else if (g->sweep)
			gc_sweep_done(s);
		else if (s->zrt[g->zone].damaged > 0 || g->damage_untracked)
			gc_keep_zone(s);
		else
			gc_finish_zone(s);
		break;
	case GC_WAIT_SB:
		if (s->failed)
			g->phase = GC_IDLE;
		else if (s->sb_version_durable >= g->sb_version)
			gc_reset_zone(s);
		break;
	default:
		break;
	}
}

void store_set_reclaim(struct store *s, store_dead_fn dead, void *ctx)
{
	DV_ASSERT(dead != NULL || ctx == NULL);
	s->dead_fn = dead;
	s->dead_ctx = ctx;
	if (!dead)
		s->sweep_pending = false;
}

void store_reclaim_below(struct store *s, uint64_t seq)
{
	DV_ASSERT(s->dead_fn != NULL);
	DV_ASSERT(seq <= s->next_seq); /* records below it exist or existed */
	if (seq <= s->reclaim_seq)
		return;
	s->reclaim_seq = seq;
	s->st.reclaim_seq = seq;
	s->sweep_pending = true;
}

bool store_reclaim_pending(const struct store *s)
{
	return (s->sweep_pending && !s->failed) || (s->gc && s->gc->sweep && s->gc->phase != GC_IDLE);
}
