/* flush.c - FLUSHDB and FLUSHALL on a cluster (node.h, node_int.h I7, I8, I9).
 *
 * A flush of keyspace k on a node is one durable record, \xff"flush"k,
 * holding the flush's id and its `until` stamp; the record's own store seq
 * is the node's flush point of k: every stored value of k in a record with
 * a lower seq, stamped (HLC) at or before until, is dead (I8), in every
 * read and merge; a record left with no value is dead whole, clock and
 * all. O(1) on the device. The space comes back through the store's
 * reclaim (store.h, store_set_reclaim): flush_record_dead is this rule, and
 * every applied flush raises the store's horizon to its point, so a
 * background sweep drops the dead records from the index and resets their
 * zones without relocating them. Dropping a clock is safe because this
 * node's actors in k change with every flush of k (I9, flush_renew_ks_actor,
 * flush_counter_actor): no dot
 * issued after the flush can be one issued before it, and no context from
 * before it covers one issued after it. What a node stored before the flush reached it dies however
 * skewed the clocks (until = the coordinator's stamp at the flush + its
 * timeout + flush_skew_ms lies past every earlier stamp it could have
 * seen, up to that skew); until only spares, on a node that learns a flush
 * late (it was cut off while the flush ran: the flush was indeterminate),
 * the values it took after the flush was over.
 *
 * What keeps old versions from coming back from other nodes: every message
 * about a keyspace carries the sender's epoch of it (the flush tag of its
 * flush id) and a request of another epoch is refused (I7), so a version
 * read before a flush never reaches a node after it (a late REPL_PUT, a
 * read repair of an older read). While the record is being written the
 * keyspace changes nothing (cas ops wait, requests are held), so a version
 * read before the point cannot be written after it.
 *
 * The protocol (one struct cbcast per FLUSH):
 *
 *   flush_submit ── id = max(now, known + 1) << 16 | node; FLUSH(mask, id) to every node
 *        │                 (this node's own through on_flush)
 *        v
 *     waiting ── FLUSH_ACK OK from every node ─────────────────────────> done(0)
 *        │  ── STALE (a node has a newer flush): new id, new round (4 at most) ──┐
 *        │  <────────────────────────────────────────────────────────────────────┘
 *        │  ── every timeout/4 and when a peer comes up: FLUSH again to the silent ones
 *        └─ deadline: done(0) if more than half acked and every other node has
 *           no session (it applies the flush when it returns, below); else
 *           done(-ETIMEDOUT): applied on some nodes, on the others when their
 *           sessions next come up.
 *
 * A node applies FLUSH(mask, id) for each keyspace whose id is lower (one
 * record write, then FLUSH_ACK OK); if any keyspace of the mask has a
 * greater id it answers STALE with it, so a flush is applied only over
 * older ones and the coordinator retries above the newer. Ids are unique
 * (the node id in the low 16 bits), so a duplicate FLUSH is just OK.
 *
 * Learning a flush a node missed: when a peer session comes up the node
 * asks the peer (FLUSH_STATE_GET) and applies every greater id it gets
 * back; a message whose epoch is not ours makes us ask its sender too. A
 * starting node asks every peer (again every CNODE_ASK_STATE_MS those it
 * has not heard) and serves nothing (requests held, replica requests BUSY)
 * until it heard the state of more than half of the cluster, itself
 * included (so of at least one node that acknowledged every flush done
 * without it), and its learned flushes are durable: however long that
 * takes (a node cut off from the majority does not serve); a learned flush
 * whose record write failed is written again first (flush_tick). With one
 * or two nodes a flush is done only by all of them: no wait. A flush record
 * that does not verify stops the node at start (flush_load: -DV_ECORRUPT):
 * its point is unknown, and one taken from now would kill what it stored
 * after the lost one, whose kept clocks would then delete those writes on
 * every replica through read repair.
 *
 * Record (24 bytes): "DVFL" | u16 format (1) | u8 keyspace | u8 0 | u64 id
 * | u64 until.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "cluster/node_int.h"

#define FLUSH_MAGIC 0x4c465644u /* "DVFL" */
#define FLUSH_REC_BYTES 24u
#define FLUSH_KEY_BYTES 7u

static const char ERR_FLUSH_TIMEOUT[] =
	"timed out before every node confirmed the flush: it is applied on some nodes, the others apply it when "
	"they next reach one of them";
static const char ERR_FLUSH_BUSY[] = "too many flushes at once: not applied";
static const char ERR_FLUSH_RACE[] = "concurrent flushes kept superseding this one: it may be applied partly";
static const char ERR_COUNT_TIMEOUT[] = "no node answered the count in time";
static const char ERR_NOT_SYNCED_CANCEL[] = "the node is shutting down: the flush may or may not have been applied";

_Static_assert(CNODE_KEYSPACES_MAX <= MSG_FLUSH_KS_MAX, "a FLUSH mask names every keyspace");
_Static_assert(RING_NODES_MAX <= 64, "peer bit masks are u64");

uint32_t flush_tag(uint64_t id)
{
	return id ? (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) | 1u : 0;
}

/* I9: the actor of this node's counter increments in a keyspace whose
 * newest flush is id: the data file's counter actor before any flush, then
 * one per flush (a hash of the data file's incarnation and the id:
 * splitmix64's finaliser, never 0). Counter entries are never pruned, so
 * this actor changes only with flushes (node.h: Actors). */
static uint64_t flush_counter_actor(const struct cnode *n, uint64_t id)
{
	if (id == 0)
		return n->counter_actor;
	uint64_t z = n->cfg.incarnation ^ (id * 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	uint64_t inc = z & DVV_INCARNATION_MASK;
	return dvv_actor(n->cfg.node_id, inc ? inc : 1);
}

uint64_t cnode_ks_actor(const struct cnode *n, uint8_t ks)
{
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX && n->flush[ks].actor != 0);
	return n->flush[ks].actor;
}

uint64_t cnode_ks_counter_actor(const struct cnode *n, uint8_t ks)
{
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX && n->flush[ks].counter_actor != 0);
	return n->flush[ks].counter_actor;
}

/* I9: keyspace ks's next dot actor (a flush of it, or a renewal): a later
 * run incarnation than its current one (cnode_next_run). */
void flush_renew_ks_actor(struct cnode *n, uint8_t ks)
{
	struct cflush *f = &n->flush[ks];
	f->actor = dvv_actor(n->cfg.node_id, cnode_next_run(n, f->actor & DVV_INCARNATION_MASK));
}

static void flush_key(uint8_t ks, uint8_t *out)
{
	out[0] = CNODE_KEYSPACE_META;
	memcpy(out + 1, "flush", 5);
	out[6] = ks;
}

/* ---- start-up ---- */

struct sync_get {
	struct store_op op;
	bool done;
	uint8_t val[FLUSH_REC_BYTES];
	uint32_t len;
	uint64_t seq;
};

static void sync_get_done(struct store_op *op)
{
	struct sync_get *g = (struct sync_get *)op;
	g->done = true;
	if (op->result == 0) {
		g->len = op->out.val_len;
		g->seq = op->out.seq;
		if (g->len == FLUSH_REC_BYTES)
			memcpy(g->val, op->out.value, FLUSH_REC_BYTES);
	}
}

/* One synchronous GET of keyspace ks's flush record into g: 0, or the
 * store's error. */
static int flush_get(struct cnode *n, struct cflush *f, struct sync_get *g)
{
	*g = (struct sync_get){.op = {.kind = STORE_GET, .key = f->key, .key_len = FLUSH_KEY_BYTES,
				      .done = sync_get_done}};
	int err = store_submit(n->s, &g->op);
	for (unsigned i = 0; !err && !g->done; i++) {
		if (i >= CNODE_POLL_ROUNDS_MAX)
			return -ETIMEDOUT;
		int rc = store_poll(n->s, true);
		if (rc < 0)
			return rc;
	}
	return err;
}

static bool flush_rec_ok(const struct sync_get *g, unsigned ks)
{
	return g->len == FLUSH_REC_BYTES && le_get32(g->val) == FLUSH_MAGIC && le_get16(g->val + 4) == 1 &&
	       g->val[6] == ks && le_get64(g->val + 8) != 0;
}

int flush_load(struct cnode *n)
{
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++) {
		struct cflush *f = &n->flush[ks];
		memset(f, 0, sizeof(*f));
		flush_key((uint8_t)ks, f->key);
		f->actor = n->actor; /* a new run is a new actor in every keyspace */
		f->counter_actor = flush_counter_actor(n, 0);
		if (!n->cfg.ks[ks].defined)
			continue;
		struct sync_get g;
		bool ok = false;
		for (unsigned tries = 0; tries < 3 && !ok; tries++) { /* a read fault passes */
			int err = flush_get(n, f, &g);
			if (err)
				return err;
			if (g.op.result == -DV_ENOTFOUND)
				break;
			ok = g.op.result == 0 && flush_rec_ok(&g, ks);
			if (g.op.result != 0 && g.op.result != -DV_ECORRUPT && g.op.result != -EIO)
				return g.op.result;
		}
		if (g.op.result == -DV_ENOTFOUND)
			continue;
		if (!ok)
			return -DV_ECORRUPT; /* damaged on the medium: what is dead cannot be told (node.h) */
		f->id = le_get64(g.val + 8);
		f->until = le_get64(g.val + 16);
		f->seq = g.seq;
		f->tag = flush_tag(f->id);
		f->counter_actor = flush_counter_actor(n, f->id);
	}
	return 0;
}

/* Start-up, once the flush records are read: the store drops what they
 * killed (again, after a restart: a record GC dropped may have left older
 * ones of its key on the device, which recovery indexed). */
void flush_reclaim_start(struct cnode *n)
{
	uint64_t horizon = 0;
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++)
		if (n->flush[ks].seq > horizon)
			horizon = n->flush[ks].seq;
	store_set_reclaim(n->s, flush_record_dead, n);
	if (horizon)
		store_reclaim_below(n->s, horizon);
}

bool flush_record_dead(void *ctx, const void *key, uint32_t key_len, const struct store_record_out *rec,
		       bool tombstone)
{
	const struct cnode *n = ctx;
	const uint8_t *k = key;
	if (tombstone || key_len < 2 || k[0] >= CNODE_KEYSPACES_MAX || !n->cfg.ks[k[0]].defined)
		return false; /* not a stored version of a keyspace (the node writes no tombstones) */
	if (rec->seq >= n->flush[k[0]].seq)
		return false;
	struct dvv d;
	if (dvv_decode_clock(&d, rec->meta, rec->meta_len) != 0)
		return false; /* damaged: what it holds cannot be told */
	flush_filter(n, k[0], rec->seq, &d);
	return d.nvals == 0 && d.nentries == 0;
}

/* ---- readiness, epochs ---- */

bool flush_ready(const struct cnode *n, uint8_t ks)
{
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX);
	return n->synced && n->flush[ks].applying == 0;
}

void cnode_send_state_get(struct cnode *n, uint16_t to)
{
	uint16_t pi = cnode_peer_index(n, to);
	DV_ASSERT(pi != CNODE_PEER_NONE && to != n->cfg.node_id);
	if (n->asked_at[pi] && n->now_ms < n->asked_at[pi] + CNODE_ASK_STATE_MS)
		return;
	n->asked_at[pi] = n->now_ms;
	struct msg m;
	cnode_msg_init(n, &m, MSG_FLUSH_STATE_GET, to, 0);
	cnode_send(n, &m);
}

void flush_ask_peers(struct cnode *n)
{
	for (unsigned pi = 0; pi < n->ring.nnodes; pi++)
		if (pi != n->self_peer && (n->peer_up >> pi & 1))
			cnode_send_state_get(n, n->ring.nodes[pi]);
}

void flush_note_epoch(struct cnode *n, uint8_t ks, uint32_t tag, uint16_t from)
{
	if (ks < CNODE_KEYSPACES_MAX && tag != n->flush[ks].tag && from != n->cfg.node_id)
		cnode_send_state_get(n, from);
}

bool flush_admit(struct cnode *n, uint8_t ks, uint32_t tag, uint16_t from, uint8_t *status)
{
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX);
	if (!n->synced) {
		*status = MSG_ST_BUSY; /* not serving yet: the peer's quorum goes on without us */
		return false;
	}
	if (tag != n->flush[ks].tag && !n->cfg.test_broken_flush) {
		n->st.stale_refusals++;
		flush_note_epoch(n, ks, tag, from);
		*status = MSG_ST_STALE;
		return false;
	}
	return true;
}

bool flush_filter(const struct cnode *n, uint8_t ks, uint64_t seq, struct dvv *d)
{
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX);
	const struct cflush *f = &n->flush[ks];
	if (seq >= f->seq)
		return false;
	if (d->nvals == 0) {
		bool had = d->nentries > 0;
		d->nentries = 0; /* a clock alone below the point: dead (I8, I9) */
		return had;
	}
	/* Entry by entry, newest value first: keep those stamped after until. */
	unsigned out = 0;
	bool dropped = false;
	for (unsigned i = 0; i < d->nentries; i++) {
		struct dvv_entry *e = &d->e[i];
		unsigned first = out;
		for (unsigned k = 0; k < e->nvals; k++) {
			const struct dvv_value *v = &d->v[e->first + k];
			if (v->ts <= f->until) {
				/* An entry holds a contiguous run of its newest dots:
				 * its older values go too (one node's stamps grow with
				 * its dots, but for a clock set back across a restart). */
				dropped = true;
				break;
			}
			d->v[out++] = *v;
		}
		e->first = (uint16_t)first;
		e->nvals = (uint16_t)(out - first);
	}
	d->nvals = (uint16_t)out;
	/* No value left: the record is dead as a whole, its clock too. Since
	 * this node's actor changed with the flush (I9), no dot it issues from
	 * now can be one the clock covers; the store drops such a record
	 * (flush_record_dead), which must read the same as this. */
	if (out == 0)
		d->nentries = 0;
	return dropped;
}

bool flush_park(struct cnode *n, struct cas *c, uint8_t ks)
{
	if (ks >= CNODE_KEYSPACES_MAX || n->flush[ks].applying == 0)
		return false;
	c->list_next = NULL;
	if (n->flush_wait_tail)
		n->flush_wait_tail->list_next = c;
	else
		n->flush_wait_head = c;
	n->flush_wait_tail = c;
	return true;
}

/* ---- applying a flush ---- */

static void flush_write(struct cnode *n, uint8_t ks, uint64_t id, uint64_t until);

static void acks_progress(struct cnode *n);
static void sync_check(struct cnode *n);

/* The cas ops that waited for keyspaces no longer applying read again. */
static void flush_resume(struct cnode *n)
{
	struct cas *list = n->flush_wait_head;
	n->flush_wait_head = n->flush_wait_tail = NULL;
	for (uint32_t i = 0; list; i++) {
		DV_ASSERT(i <= n->cfg.requests_max + n->cfg.replica_ops_max);
		struct cas *c = list;
		list = c->list_next;
		DV_ASSERT(c->busy);
		c->busy = false;
		cas_restart(n, c); /* parks again if its keyspace is still applying */
	}
}

static void flush_written(struct store_op *op)
{
	struct cflush *f = cnode_container(op, struct cflush, op);
	struct cnode *n = f->op.ctx;
	uint8_t ks = (uint8_t)(f - n->flush);
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX && f->applying != 0 && n->flush_store_ops > 0);
	n->flush_store_ops--;
	if (op->result == 0) {
		DV_ASSERT(f->applying > f->id && op->out.seq > f->seq);
		f->id = f->applying;
		f->until = f->applying_until;
		f->seq = op->out.seq;
		f->tag = flush_tag(f->id);
		f->counter_actor = flush_counter_actor(n, f->id);
		flush_renew_ks_actor(n, ks); /* I9 */
		n->ks_count[ks] = 0; /* every key held so far is dead here */
		scan_count_flushed(n, ks); /* and what a start-up count saw of them */
		rcache_clear(&n->rcache); /* the store reclaims what the flush killed */
		n->st.flushes_applied++;
		store_reclaim_below(n->s, f->seq); /* the store drops what the flush killed */
	}
	/* A failed write (a failed store) leaves the keyspace as it was: the
	 * FLUSH is not acknowledged, the node learns it again after a restart. */
	f->applying = 0;
	if (f->want > f->id) {
		uint64_t id = f->want, until = f->want_until;
		f->want = f->want_until = 0;
		flush_write(n, ks, id, until);
	} else {
		f->want = f->want_until = 0;
	}
	acks_progress(n);
	flush_resume(n);
	sync_check(n);
	coord_release_held(n);
}

static void flush_write(struct cnode *n, uint8_t ks, uint64_t id, uint64_t until)
{
	struct cflush *f = &n->flush[ks];
	DV_ASSERT(f->applying == 0 && id > f->id);
	f->applying = id;
	f->applying_until = until > f->until ? until : f->until; /* a newer flush kills at least as much */
	le_put32(f->rec, FLUSH_MAGIC);
	le_put16(f->rec + 4, 1);
	f->rec[6] = ks;
	f->rec[7] = 0;
	le_put64(f->rec + 8, id);
	le_put64(f->rec + 16, f->applying_until);
	f->op = (struct store_op){.kind = STORE_PUT, .key = f->key, .key_len = FLUSH_KEY_BYTES, .value = f->rec,
				  .val_len = FLUSH_REC_BYTES, .cond = STORE_ALWAYS, .done = flush_written, .ctx = n,
				  .reserve = true}; /* a full device can be flushed (store.h) */
	int err = store_submit(n->s, &f->op);
	if (err) {
		/* Refused (a failed store, or a full op queue): nothing changed.
		 * The requests waiting for it answer from acks_progress. */
		f->applying = 0;
		return;
	}
	n->flush_store_ops++;
}

/* Apply flush id to keyspace ks: a no-op when it has it (or a newer one). */
static void flush_apply(struct cnode *n, uint8_t ks, uint64_t id, uint64_t until)
{
	struct cflush *f = &n->flush[ks];
	if (!n->cfg.ks[ks].defined || id <= f->id)
		return;
	if (f->applying) {
		if (id > f->applying && id > f->want) {
			f->want = id;
			f->want_until = until;
		}
		return;
	}
	flush_write(n, ks, id, until);
}

/* The greatest id a keyspace of mask has or is applying. */
static uint64_t mask_max_id(const struct cnode *n, uint16_t mask)
{
	uint64_t m = 0;
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++) {
		if (!(mask & (1u << ks)))
			continue;
		const struct cflush *f = &n->flush[ks];
		uint64_t x = f->want > f->applying ? f->want : f->applying;
		x = x > f->id ? x : f->id;
		m = m > x ? m : x;
	}
	return m;
}

/* Every keyspace of mask has id (or a newer one) durably. */
static bool mask_applied(const struct cnode *n, uint16_t mask, uint64_t id)
{
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++)
		if ((mask & (1u << ks)) && n->cfg.ks[ks].defined && n->flush[ks].id < id)
			return false;
	return true;
}

/* ---- FLUSH at a node ---- */

static void bcast_ack(struct cnode *n, struct cbcast *b, uint16_t from, uint8_t status, uint64_t id);

static void ack_send(struct cnode *n, uint16_t to, uint64_t req_id, uint8_t status, uint64_t id)
{
	if (to == 0 || to == n->cfg.node_id) {
		for (unsigned i = 0; i < CNODE_BCAST_MAX; i++)
			if (n->bcast[i].used && n->bcast[i].req_id == req_id)
				bcast_ack(n, &n->bcast[i], n->cfg.node_id, status, id);
		return;
	}
	struct msg m;
	cnode_msg_init(n, &m, MSG_FLUSH_ACK, to, req_id);
	m.status = status;
	m.id = id;
	cnode_send(n, &m);
}

/* FLUSH(mask, id, until) from node `from` (this node's own coordinator: its id). */
static void on_flush(struct cnode *n, uint16_t from, uint64_t req_id, uint16_t mask, uint64_t id, uint64_t until)
{
	uint64_t newest = mask_max_id(n, mask);
	if (newest > id) {
		ack_send(n, from, req_id, MSG_ST_STALE, newest); /* a newer flush: retry above it */
		return;
	}
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++)
		if (mask & (1u << ks))
			flush_apply(n, (uint8_t)ks, id, until);
	if (mask_applied(n, mask, id)) {
		ack_send(n, from, req_id, MSG_ST_OK, id);
		return;
	}
	for (unsigned i = 0; i < CNODE_FLUSH_ACKS_MAX; i++) {
		struct cflush_ack *a = &n->flush_acks[i];
		if (a->used && a->from == from && a->req_id == req_id)
			return; /* a duplicate: answered when durable */
	}
	for (unsigned i = 0; i < CNODE_FLUSH_ACKS_MAX; i++) {
		struct cflush_ack *a = &n->flush_acks[i];
		if (!a->used) {
			*a = (struct cflush_ack){.used = true, .from = from, .req_id = req_id, .id = id, .mask = mask};
			return;
		}
	}
	ack_send(n, from, req_id, MSG_ST_BUSY, 0);
}

/* Answer the FLUSH requests whose records are durable now, or whose write
 * failed (nothing is being applied for them). */
static void acks_progress(struct cnode *n)
{
	for (unsigned i = 0; i < CNODE_FLUSH_ACKS_MAX; i++) {
		struct cflush_ack *a = &n->flush_acks[i];
		if (!a->used)
			continue;
		if (mask_applied(n, a->mask, a->id)) {
			a->used = false;
			ack_send(n, a->from, a->req_id, MSG_ST_OK, a->id);
		} else if (mask_max_id(n, a->mask) < a->id) {
			a->used = false; /* its write failed */
			ack_send(n, a->from, a->req_id, MSG_ST_FAILED, 0);
		}
	}
}

/* ---- the coordinator ---- */

static struct cbcast *bcast_alloc(struct cnode *n)
{
	for (unsigned i = 0; i < CNODE_BCAST_MAX; i++) {
		struct cbcast *b = &n->bcast[i];
		if (!b->used) {
			memset(b, 0, sizeof(*b));
			b->used = true;
			return b;
		}
	}
	return NULL;
}

static void bcast_done(struct cnode *n, struct cbcast *b, int result, const char *err)
{
	DV_ASSERT(b->used && b->rq);
	struct creq *rq = b->rq;
	b->used = false;
	b->rq = NULL;
	rq->result = result;
	rq->err = err;
	rq->priv = NULL;
	rq->done(rq);
}

static uint64_t self_bit(const struct cnode *n) { return 1ull << n->self_peer; }

static uint64_t all_bits(const struct cnode *n)
{
	return n->ring.nnodes == 64 ? UINT64_MAX : (1ull << n->ring.nnodes) - 1;
}

/* Send this round's message to every node that has not answered it. */
static void bcast_send(struct cnode *n, struct cbcast *b)
{
	for (unsigned i = 0; i < n->ring.nnodes; i++) {
		if (b->acked & (1ull << i) || i == n->self_peer)
			continue;
		struct msg m;
		cnode_msg_init(n, &m, b->kind == BC_FLUSH ? MSG_FLUSH : MSG_COUNT, n->ring.nodes[i], b->req_id);
		if (b->kind == BC_FLUSH) {
			m.ks_mask = b->mask;
			m.id = b->id;
			m.until = b->until;
		} else {
			m.keyspace = (uint8_t)__builtin_ctz(b->mask);
			m.epoch = n->flush[m.keyspace].tag;
		}
		cnode_send(n, &m);
	}
	b->resend_ms = n->now_ms + (n->cfg.timeout_ms / 4 ? n->cfg.timeout_ms / 4 : 1);
	cnode_arm(n, b->resend_ms);
}

static void flush_round(struct cnode *n, struct cbcast *b, uint64_t above)
{
	uint64_t known = mask_max_id(n, b->mask);
	known = known > above ? known : above;
	uint64_t ms = n->now_ms > (known >> 16) ? n->now_ms : (known >> 16) + 1;
	b->id = ms << 16 | n->cfg.node_id;
	DV_ASSERT(b->id > known);
	/* What it kills on a node it reaches late: what was stamped before it
	 * could have been over, whatever the clocks (within flush_skew_ms). */
	uint64_t span = b->deadline_ms - n->now_ms + n->cfg.flush_skew_ms;
	b->until = hlc_now(&n->hlc, n->now_ms) + hlc_from_ms(span);
	b->req_id = cnode_new_req_id(n);
	b->acked = 0;
	b->rounds++;
	bcast_send(n, b);
	on_flush(n, n->cfg.node_id, b->req_id, b->mask, b->id, b->until); /* ours: may answer at once */
}

/* DBSIZE from the nodes' counts: their sum over N, rounded up (a key on
 * fewer than N replicas yet, W of them, still counts: SET k then DBSIZE
 * answered 0 with truncation; never above the keys by more than one). */
static uint64_t count_estimate(const struct cnode *n, const struct cbcast *b)
{
	uint64_t reps = n->ks_n[__builtin_ctz(b->mask)];
	reps = reps ? reps : 1;
	return b->count_sum / reps + (b->count_sum % reps != 0);
}

/* A COUNT has every answer it can get now: each node not heard from has
 * no session (down, or not reached yet), so waiting for the deadline would
 * only delay the same scaled estimate (count_expire). Our own count alone,
 * and 0, is no answer before our start-up count scan is done. */
static bool count_covered(const struct cnode *n, const struct cbcast *b)
{
	uint64_t waiting = all_bits(n) & ~b->acked & (n->peer_up | self_bit(n));
	return waiting == 0 && (b->count_sum > 0 || __builtin_popcountll(b->acked) > 1 || n->count_scanned);
}

static void count_expire(struct cnode *n, struct cbcast *b);

static void bcast_check(struct cnode *n, struct cbcast *b)
{
	if (!b->used)
		return;
	if (b->kind == BC_FLUSH) {
		if (b->acked == all_bits(n))
			bcast_done(n, b, 0, NULL);
		return;
	}
	if (b->acked == all_bits(n)) { /* COUNT: everyone answered */
		b->rq->dbsize = count_estimate(n, b);
		bcast_done(n, b, 0, NULL);
	} else if (count_covered(n, b)) {
		count_expire(n, b); /* the silent ones are down */
	}
}

static void bcast_ack(struct cnode *n, struct cbcast *b, uint16_t from, uint8_t status, uint64_t id)
{
	uint16_t pi = cnode_peer_index(n, from);
	DV_ASSERT(pi != CNODE_PEER_NONE && b->kind == BC_FLUSH);
	if (status == MSG_ST_OK) {
		b->acked |= 1ull << pi;
		bcast_check(n, b);
	} else if (status == MSG_ST_STALE) {
		if (b->rounds >= CNODE_FLUSH_ROUNDS_MAX)
			bcast_done(n, b, -ETIMEDOUT, ERR_FLUSH_RACE);
		else
			flush_round(n, b, id);
	} /* FAILED, BUSY: sent again at resend_ms */
}

int flush_submit(struct cnode *n, struct creq *rq)
{
	uint16_t mask = 0;
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++)
		if ((rq->ks_mask & (1u << ks)) && n->cfg.ks[ks].defined)
			mask |= (uint16_t)(1u << ks);
	if (mask == 0 || rq->ks_mask >> CNODE_KEYSPACES_MAX)
		return -EINVAL;
	struct cbcast *b = bcast_alloc(n);
	if (!b) {
		n->st.busy_refusals++;
		return -EAGAIN;
	}
	(void)ERR_FLUSH_BUSY;
	b->kind = BC_FLUSH;
	b->rq = rq;
	b->mask = mask;
	b->deadline_ms = n->now_ms + (rq->timeout_ms ? rq->timeout_ms : n->cfg.timeout_ms);
	cnode_arm(n, b->deadline_ms);
	rq->priv = b;
	rq->result = 0;
	rq->err = NULL;
	/* Our own part may be durable at once only through a store completion,
	 * so done() never runs inside cnode_submit (I6). */
	flush_round(n, b, 0);
	DV_ASSERT(b->used);
	return 0;
}

int count_submit(struct cnode *n, struct creq *rq)
{
	struct cbcast *b = bcast_alloc(n);
	if (!b) {
		n->st.busy_refusals++;
		return -EAGAIN;
	}
	b->kind = BC_COUNT;
	b->rq = rq;
	b->mask = (uint16_t)(1u << rq->keyspace);
	b->req_id = cnode_new_req_id(n);
	b->deadline_ms = n->now_ms + (rq->timeout_ms ? rq->timeout_ms : n->cfg.timeout_ms);
	cnode_arm(n, b->deadline_ms);
	rq->priv = b;
	rq->result = 0;
	rq->err = NULL;
	rq->dbsize = 0;
	/* Ours: counted now, answered with the others (never inside submit). */
	b->acked = self_bit(n);
	b->count_sum = n->ks_count[rq->keyspace] > 0 ? (uint64_t)n->ks_count[rq->keyspace] : 0;
	bcast_send(n, b);
	if (count_covered(n, b))
		cnode_arm(n, n->now_ms); /* no peer up: answered at the next tick */
	return 0;
}

/* A COUNT's deadline with some nodes silent, or every silent one down:
 * scale what answered. */
static void count_expire(struct cnode *n, struct cbcast *b)
{
	unsigned answered = (unsigned)__builtin_popcountll(b->acked);
	DV_ASSERT(answered >= 1); /* this node's own */
	b->rq->dbsize = count_estimate(n, b) * n->ring.nnodes / answered;
	if (answered == 1 && n->ring.nnodes > 1 && b->count_sum == 0 && !n->count_scanned)
		bcast_done(n, b, -ETIMEDOUT, ERR_COUNT_TIMEOUT);
	else
		bcast_done(n, b, 0, NULL);
}

static void flush_expire(struct cnode *n, struct cbcast *b)
{
	uint64_t silent = all_bits(n) & ~b->acked;
	unsigned acked = (unsigned)__builtin_popcountll(b->acked);
	bool ok = (silent & n->peer_up) == 0 && !(silent & self_bit(n)) && 2 * acked > n->ring.nnodes;
	bcast_done(n, b, ok ? 0 : -ETIMEDOUT, ok ? NULL : ERR_FLUSH_TIMEOUT);
}

void flush_tick(struct cnode *n)
{
	for (unsigned i = 0; i < CNODE_BCAST_MAX; i++) {
		struct cbcast *b = &n->bcast[i];
		if (!b->used)
			continue;
		if (n->now_ms >= b->deadline_ms || (b->kind == BC_COUNT && count_covered(n, b))) {
			if (b->kind == BC_FLUSH)
				flush_expire(n, b);
			else
				count_expire(n, b);
			continue;
		}
		if (n->now_ms >= b->resend_ms)
			bcast_send(n, b); /* the silent ones again (idempotent) */
		cnode_arm(n, b->deadline_ms);
	}
	if (!n->synced && n->now_ms >= n->sync_deadline) {
		/* Ask again those not heard yet: the driver may not have told us
		 * of their sessions, or the answer was lost. No wait ends the
		 * sync but a majority's answers: a node that served before could
		 * answer what a flush done without it killed. */
		for (unsigned pi = 0; pi < n->ring.nnodes; pi++)
			if (pi != n->self_peer && !(n->sync_from >> pi & 1))
				cnode_send_state_get(n, n->ring.nodes[pi]);
		/* A learned flush whose record write failed: again. */
		for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++) {
			struct cflush *f = &n->flush[ks];
			if (f->heard > f->id && !f->applying)
				flush_apply(n, (uint8_t)ks, f->heard, f->heard_until);
		}
		n->sync_deadline = n->now_ms + CNODE_ASK_STATE_MS;
	}
	if (!n->synced)
		cnode_arm(n, n->sync_deadline);
}

void flush_cancel_all(struct cnode *n)
{
	for (unsigned i = 0; i < CNODE_BCAST_MAX; i++)
		if (n->bcast[i].used)
			bcast_done(n, &n->bcast[i], -ECANCELED, ERR_NOT_SYNCED_CANCEL);
	n->flush_wait_head = n->flush_wait_tail = NULL; /* their ops are freed with their owners */
}

/* ---- the start-up sync and sessions ---- */

static void sync_check(struct cnode *n)
{
	if (n->synced)
		return;
	unsigned heard = (unsigned)__builtin_popcountll(n->sync_from);
	bool all = (n->sync_from | self_bit(n)) == all_bits(n);
	if (2 * (heard + 1) <= n->ring.nnodes && !all)
		return;
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++)
		if (n->flush[ks].applying || n->flush[ks].heard > n->flush[ks].id)
			return; /* learned flushes durable first (a failed write: flush_tick again) */
	n->synced = true;
	coord_release_held(n);
}

static void on_state(struct cnode *n, uint16_t from, const struct msg *m)
{
	uint16_t pi = cnode_peer_index(n, from);
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX && ks < m->nids; ks++) {
		struct cflush *f = &n->flush[ks];
		if (!n->cfg.ks[ks].defined || m->ids[ks] <= f->id)
			continue;
		if (m->ids[ks] > f->heard) {
			f->heard = m->ids[ks];
			f->heard_until = m->untils[ks];
		}
		flush_apply(n, (uint8_t)ks, m->ids[ks], m->untils[ks]);
	}
	n->sync_from |= 1ull << pi;
	n->asked_at[pi] = 0;
	sync_check(n);
	uint64_t ids[CNODE_KEYSPACES_MAX] = {0};
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX && ks < m->nids; ks++)
		ids[ks] = m->ids[ks];
	coord_behind_answered(n, pi, ids); /* after sync_check: a flush learned from it released its holds */
}

static void on_state_get(struct cnode *n, uint16_t from)
{
	struct msg m;
	cnode_msg_init(n, &m, MSG_FLUSH_STATE, from, 0);
	m.nids = CNODE_KEYSPACES_MAX;
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++) {
		m.ids[ks] = n->flush[ks].id;
		m.untils[ks] = n->flush[ks].until;
	}
	cnode_send(n, &m);
}

void flush_peer(struct cnode *n, uint16_t peer, bool up)
{
	uint16_t pi = cnode_peer_index(n, peer);
	DV_ASSERT(pi != CNODE_PEER_NONE && peer != n->cfg.node_id);
	if (!up) {
		n->peer_up &= ~(1ull << pi);
		for (unsigned i = 0; i < CNODE_BCAST_MAX; i++) /* a count no longer waits for it */
			if (n->bcast[i].used && n->bcast[i].kind == BC_COUNT)
				bcast_check(n, &n->bcast[i]);
		coord_behind_answered(n, pi, NULL); /* nor a request held for a flush */
		return;
	}
	n->peer_up |= 1ull << pi;
	n->asked_at[pi] = 0;
	cnode_send_state_get(n, peer);
	for (unsigned i = 0; i < CNODE_BCAST_MAX; i++) /* open requests reach it now */
		if (n->bcast[i].used && !(n->bcast[i].acked & (1ull << pi)))
			bcast_send(n, &n->bcast[i]);
}

static void on_count(struct cnode *n, uint16_t from, const struct msg *m)
{
	struct msg r;
	cnode_msg_init(n, &r, MSG_COUNT_REPLY, from, m->req_id);
	uint8_t st = MSG_ST_OK;
	if (!cnode_ks_ok(n, m->keyspace))
		st = MSG_ST_BAD;
	else
		flush_admit(n, m->keyspace, m->epoch, from, &st); /* sets st when it refuses */
	r.status = st;
	r.count = st == MSG_ST_OK && n->ks_count[m->keyspace] > 0 ? (uint64_t)n->ks_count[m->keyspace] : 0;
	if (cnode_ks_ok(n, m->keyspace))
		r.epoch = n->flush[m->keyspace].tag;
	cnode_send(n, &r);
}

static void on_count_reply(struct cnode *n, uint16_t from, const struct msg *m)
{
	uint16_t pi = cnode_peer_index(n, from);
	for (unsigned i = 0; i < CNODE_BCAST_MAX; i++) {
		struct cbcast *b = &n->bcast[i];
		if (!b->used || b->kind != BC_COUNT || b->req_id != m->req_id || (b->acked & (1ull << pi)))
			continue;
		flush_note_epoch(n, (uint8_t)__builtin_ctz(b->mask), m->epoch, from);
		if (m->status != MSG_ST_OK)
			return; /* counted as silent */
		b->acked |= 1ull << pi;
		b->count_sum += m->count;
		bcast_check(n, b);
		return;
	}
}

void flush_on_message(struct cnode *n, uint16_t from, const struct msg *m)
{
	switch (m->type) {
	case MSG_FLUSH:
		on_flush(n, from, m->req_id, m->ks_mask, m->id, m->until);
		break;
	case MSG_FLUSH_ACK:
		for (unsigned i = 0; i < CNODE_BCAST_MAX; i++) {
			struct cbcast *b = &n->bcast[i];
			uint16_t pi = cnode_peer_index(n, from);
			if (b->used && b->kind == BC_FLUSH && b->req_id == m->req_id && !(b->acked & (1ull << pi)))
				bcast_ack(n, b, from, m->status, m->id);
		}
		break;
	case MSG_FLUSH_STATE_GET:
		on_state_get(n, from);
		break;
	case MSG_FLUSH_STATE:
		on_state(n, from, m);
		break;
	case MSG_COUNT:
		on_count(n, from, m);
		break;
	case MSG_COUNT_REPLY:
		on_count_reply(n, from, m);
		break;
	default:
		DV_ASSERT(!"not a flush message");
	}
}
