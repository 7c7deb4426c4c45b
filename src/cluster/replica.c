/* replica.c - the replica side of a cnode, and the compare-and-set loop
 * every change of a stored version goes through (node_int.h).
 *
 * The merge loop (struct cas), one per coordinator write or replica op:
 *
 *   cas_start ──> READ ── store GET ──> cas_got ── merge() ──> WRITE ── store PUT (cond) ──> cas_put_done
 *                  ^          │           │  CAS_NOOP / error: done()                   │
 *                  ├──────────┘ GET -EBUSY (its version vanished: read again)           │
 *                  └── PUT -ESTALE (another write of the key first), -EBUSY (GC moved ──┘
 *                      it too often), -DV_ECORRUPT (a record that may be the key's does
 *                      not verify): at most CNODE_CAS_TRIES_MAX tries, then done(-EBUSY)
 *                      (every try was refused before it wrote: nothing applied)
 *
 *   GET 0: the PUT is STORE_IF_SEQ on the seq read. GET -DV_ENOTFOUND: no
 *   local version, IF_SEQ 0 (only if there is still none). GET
 *   -DV_ECORRUPT: the local copy is damaged; merge() sees none and the PUT
 *   is STORE_IF_DAMAGED (replaces the unreadable record, -ESTALE if it has
 *   become readable or been replaced meanwhile: the retry merges with what
 *   is there). A readable record whose version does not decode: merge()
 *   sees none, IF_SEQ on its seq. Replacements are counted in
 *   corrupt_replaced.

 * Replica operations (struct rop), started by replica_request():
 *   REPL_PUT: copy the incoming version (the frame is the driver's), merge
 *   with dvv_sync through the loop above, acknowledge once durable (or at
 *   once when the merge changes nothing). MSGF_IF_COVERED: merged the
 *   same way, answered UNCOVERED (instead of its status, unless STALE)
 *   when the incoming clock did not cover the stored copy's (dvv_covered;
 *   an absent key is covered, an unreadable copy is not) - checked in the
 *   merge loop, so the check and the write are one step against every
 *   other write of the key here.
 *   REPL_GET: store GET, reply with the record (MSGF_CLOCK_ONLY, echoed:
 *   the meta alone, no value bytes: enough for the clock, every value's
 *   flags and expiry; the coordinator reads it with dvv_decode_clock).
 * An op from this node's own coordinator (from == node id) replies by a
 * direct call to coord_on_reply instead of a frame.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "cluster/node_int.h"

static const uint8_t empty_bytes[1];

/* ---- store submission ---- */

static void cas_complete(struct cnode *n, struct cas *c);
static void cas_dispatch(struct cnode *n, struct cas *c);

static void list_push(struct cas **head, struct cas **tail, struct cas *c)
{
	c->list_next = NULL;
	if (*tail)
		(*tail)->list_next = c;
	else
		*head = c;
	*tail = c;
}

/* A key of a data keyspace: its records are cached (rcache.h). */
static bool cas_cached_key(const struct cas *c) { return c->key[0] < CNODE_KEYSPACES_MAX; }

static void cas_submit(struct cnode *n, struct cas *c)
{
	DV_ASSERT(!c->busy && c->n == n);
	c->busy = true;
	if (c->op.kind == STORE_PUT && cas_cached_key(c))
		rcache_write(&n->rcache, c->key, c->key_len, c->key_hash); /* the cached copy is about to change */
	int rc = store_submit(n->s, &c->op);
	c->refused = rc != 0 && rc != -EAGAIN;
	if (rc == 0) {
		n->store_ops++;
		return;
	}
	if (rc == -EAGAIN) {
		list_push(&n->stalled_head, &n->stalled_tail, c); /* retried by cnode_store_pump */
		return;
	}
	/* Refused at once: completed from the pump, never inside the caller
	 * (which may be cnode_submit). */
	c->op.result = rc;
	list_push(&n->deferred_head, &n->deferred_tail, c);
}

static void cas_store_done(struct store_op *op)
{
	struct cas *c = op->ctx;
	struct cnode *n = c->n;
	DV_ASSERT(c->busy && n->store_ops > 0);
	n->store_ops--;
	if (op->kind == STORE_GET && cas_cached_key(c)) {
		if (op->result == 0)
			rcache_fill(&n->rcache, c->key, c->key_len, c->key_hash, c->cache_gen, op->out.seq, op->out.meta,
				    op->out.meta_len, op->out.value, op->out.val_len, true);
		else if (op->result == -DV_ECORRUPT || op->result == -DV_ENOTFOUND)
			rcache_forget(&n->rcache, c->key, c->key_len, c->key_hash); /* what was written is not there */
	}
	cas_complete(n, c);
	cnode_store_pump(n);
}

void cnode_store_pump(struct cnode *n)
{
	static const unsigned rounds_max = 4;
	if (n->pumping)
		return;
	n->pumping = true;
	for (unsigned round = 0; round < rounds_max && (n->stalled_head || n->deferred_head); round++) {
		struct cas *list = n->stalled_head;
		n->stalled_head = n->stalled_tail = NULL;
		while (list) {
			struct cas *c = list;
			list = c->list_next;
			DV_ASSERT(c->busy);
			c->busy = false;
			cas_submit(n, c);
		}
		list = n->deferred_head;
		n->deferred_head = n->deferred_tail = NULL;
		while (list) {
			struct cas *c = list;
			list = c->list_next;
			DV_ASSERT(c->busy && (c->op.result < 0 || c->hit));
			cas_complete(n, c);
		}
	}
	n->pumping = false;
}

/* ---- the merge loop ---- */

static void cas_read(struct cnode *n, struct cas *c)
{
	c->op.kind = STORE_GET;
	c->op.key = c->key;
	c->op.key_len = c->key_len;
	c->op.cond = STORE_ALWAYS;
	c->op.done = cas_store_done;
	c->op.ctx = c;
	if (cas_cached_key(c)) {
		struct rcache_entry *e = rcache_get(&n->rcache, c->key, c->key_len, c->key_hash, c->verified_only);
		if (e) { /* answered from the cache, from the pump (never inside the caller) */
			c->busy = true;
			c->refused = false;
			c->hit = e;
			c->op.result = 0;
			c->op.out = (struct store_record_out){.value = rcache_vals(e), .val_len = e->val_len,
							      .meta = rcache_meta(e), .meta_len = e->meta_len,
							      .seq = e->seq};
			list_push(&n->deferred_head, &n->deferred_tail, c);
			return;
		}
		c->cache_gen = rcache_gen(&n->rcache, c->key_hash);
	}
	cas_submit(n, c);
}

/* Store results that refuse an op before it wrote anything and may not
 * repeat (store.h): another write of the key came first (-ESTALE, PUT);
 * GC moved what the op looked up too often, or a GET's version vanished
 * (-EBUSY); the key's record did not verify (-DV_ECORRUPT, PUT: the next
 * GET says whether the copy is damaged, then STORE_IF_DAMAGED replaces it). */
static bool cas_transient(const struct store_op *op)
{
	if (op->kind == STORE_GET)
		return op->result == -EBUSY;
	return op->result == -ESTALE || op->result == -EBUSY || op->result == -DV_ECORRUPT;
}

/* Read again after a transient refusal, a bounded number of times: true
 * when it did (the loop goes on), false when the tries are used up. */
static bool cas_retry(struct cnode *n, struct cas *c)
{
	if (++c->tries >= CNODE_CAS_TRIES_MAX)
		return false;
	cas_read(n, c);
	return true;
}

/* ---- one merge loop of a key at a time ---- */

static struct cas **key_bucket(struct cnode *n, uint64_t hash) { return &n->key_holders[hash & n->key_holders_mask]; }

static struct cas *key_holder(struct cnode *n, const struct cas *c)
{
	for (struct cas *h = *key_bucket(n, c->key_hash); h; h = h->key_next) {
		DV_ASSERT(h->key_held && h != c);
		if (h->key_hash == c->key_hash && h->key_len == c->key_len && memcmp(h->key, c->key, c->key_len) == 0)
			return h;
	}
	return NULL;
}

/* c holds its key from now on, with the waiters given (in order). */
static void key_take(struct cnode *n, struct cas *c, struct cas *wait_head, struct cas *wait_tail)
{
	DV_ASSERT(!c->key_held);
	struct cas **b = key_bucket(n, c->key_hash);
	c->key_next = *b;
	*b = c;
	c->key_held = true;
	c->wait_head = wait_head;
	c->wait_tail = wait_tail;
}

/* c gives its key up; the next loop waiting for it (or NULL) holds it now
 * and must be started by the caller. */
static struct cas *key_hand_over(struct cnode *n, struct cas *c)
{
	if (!c->key_held)
		return NULL;
	struct cas **p = key_bucket(n, c->key_hash);
	while (*p != c) {
		DV_ASSERT(*p != NULL);
		p = &(*p)->key_next;
	}
	*p = c->key_next;
	c->key_held = false;
	struct cas *next = c->wait_head;
	if (next) {
		DV_ASSERT(next->busy && !next->key_held);
		key_take(n, next, next->wait_next, next->wait_next ? c->wait_tail : NULL);
	}
	c->wait_head = c->wait_tail = NULL;
	return next;
}

/* The end of a merge loop: its key goes to the next loop waiting for it
 * before done() (which may start another loop of the key: that one waits
 * behind it), then the next one starts. */
static void cas_end(struct cnode *n, struct cas *c, int rc)
{
	struct cas *next = key_hand_over(n, c);
	c->done(c, rc);
	if (next) {
		next->busy = false;
		cas_read(n, next);
	}
}

void cas_start(struct cnode *n, struct cas *c)
{
	DV_ASSERT(c->merge && c->done && c->key_len >= 1);
	DV_ASSERT(c->policy == DVV_SIBLINGS || c->policy == DVV_LWW);
	DV_ASSERT(!c->busy && !c->key_held);
	c->n = n;
	c->tries = 0;
	c->get_done = NULL;
	c->verified_only = false; /* what it reads is written over */
	c->key_hash = dv_key_hash64(c->key, c->key_len);
	c->wait_next = NULL;
	struct cas *h = key_holder(n, c);
	if (h) {
		c->busy = true; /* waiting for the key: its owner waits as for a store op */
		if (h->wait_tail)
			h->wait_tail->wait_next = c;
		else
			h->wait_head = c;
		h->wait_tail = c;
		return;
	}
	key_take(n, c, NULL, NULL);
	cas_read(n, c);
}

void cas_get(struct cnode *n, struct cas *c, store_done_fn done, bool verified_only)
{
	DV_ASSERT(done && c->key_len >= 1);
	c->n = n;
	c->tries = 0;
	c->get_done = done;
	c->verified_only = verified_only;
	c->key_hash = dv_key_hash64(c->key, c->key_len);
	cas_read(n, c);
}

void cas_free_enc(struct cnode *n, struct cas *c)
{
	DV_ASSERT(!c->busy);
	cnode_release(n, c->enc, c->enc_bytes);
	c->enc = NULL;
	c->enc_bytes = 0;
}

/* The local version from a GET: 0 (local set, or NULL when absent or
 * damaged; c->cond and cond_seq say what the PUT must find) or an error to
 * stop with. */
static int cas_local(struct cas *c, struct dvv *d, const struct dvv **local)
{
	const struct store_op *op = &c->op;
	*local = NULL;
	c->corrupt = false;
	c->cond = STORE_IF_SEQ;
	c->cond_seq = 0; /* IF_SEQ 0: only if the key still has no record */
	if (op->result == -DV_ENOTFOUND)
		return 0;
	if (op->result == -DV_ECORRUPT) {
		/* The record does not verify: only STORE_IF_DAMAGED replaces it
		 * (IF_SEQ 0 would find it live, or unknown: store.h). */
		c->corrupt = true;
		c->cond = STORE_IF_DAMAGED;
		return 0;
	}
	if (op->result < 0)
		return op->result;
	c->cond_seq = op->out.seq;
	DV_ASSERT(c->cond_seq != 0);
	if (dvv_decode(d, op->out.meta, op->out.meta_len, op->out.value, op->out.val_len) != 0) {
		c->corrupt = true; /* readable record, damaged version: replace it (CAS on its seq) */
		return 0;
	}
	if (d->policy != c->policy)
		return -EPROTO; /* the keyspace's policy changed under its data: refuse */
	flush_filter(c->n, c->key[0], c->cond_seq, d); /* I8 */
	*local = d;
	return 0;
}

void cas_restart(struct cnode *n, struct cas *c)
{
	DV_ASSERT(!c->busy && c->n == n);
	cas_read(n, c);
}

static void cas_got(struct cnode *n, struct cas *c)
{
	struct dvv d, out;
	const struct dvv *local;
	if (cas_transient(&c->op) && cas_retry(n, c))
		return;
	uint8_t ks = c->key[0];
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX);
	if (flush_park(n, c, ks)) {
		c->busy = true; /* I7: read again once the flush record is durable (flush_resume) */
		return;
	}
	if (c->epoch != n->flush[ks].tag) {
		cas_end(n, c, CAS_FLUSHED); /* a flush came between: what it read is dead */
		return;
	}
	int rc = cas_local(c, &d, &local);
	if (rc == 0)
		rc = c->merge(c, local, &out);
	if (rc == 0) {
		bool was_visible = local && dvv_visible(local, n->now_ms, NULL, 0) > 0;
		c->visible = dvv_visible(&out, n->now_ms, NULL, 0) > 0;
		c->count_delta = (int8_t)(c->visible - was_visible);
		scan_count_note_write(n, c->key, c->key_len, was_visible);
	}
	if (rc == 0 && dvv_value_bytes(&out) > DV_VALUE_BYTES_MAX)
		rc = -DV_ETOOBIG;
	if (rc == 0) /* encode now: local points into the store's buffer, valid during done() only */
		rc = cnode_encode(n, &out, &c->enc, &c->enc_bytes, &c->meta_len, &c->vals_len);
	if (rc != 0) {
		cas_end(n, c, rc);
		return;
	}
	DV_ASSERT(c->meta_len + c->vals_len == c->enc_bytes);
	c->op.kind = STORE_PUT;
	c->op.meta = c->enc;
	c->op.meta_len = c->meta_len;
	c->op.value = c->vals_len ? c->enc + c->meta_len : empty_bytes;
	c->op.val_len = (uint32_t)c->vals_len;
	c->op.expire_ms = 0; /* expiry is per value, inside the version */
	c->op.cond = c->cond;
	c->op.cond_seq = c->cond_seq;
	cas_submit(n, c);
	if (c->put_submitted && !c->refused)
		c->put_submitted(c); /* the store never completes an op inside store_submit */
}

static void cas_put_done(struct cnode *n, struct cas *c)
{
	int rc = c->op.result;
	DV_ASSERT(c->op.kind == STORE_PUT && !c->busy);
	if (cas_cached_key(c)) {
		/* The store holds what we wrote (rc 0) or what it held (refused):
		 * read it again, unless we know it. */
		if (rc == 0)
			rcache_put_done(&n->rcache, c->key, c->key_len, c->key_hash, c->op.out.seq, c->enc, c->meta_len,
					c->enc + c->meta_len, (uint32_t)c->vals_len);
		else
			rcache_write(&n->rcache, c->key, c->key_len, c->key_hash);
	}
	if (cas_transient(&c->op)) {
		if (cas_retry(n, c))
			return;
		rc = -EBUSY; /* every try was refused before writing: nothing applied */
	}
	if (rc == 0 && c->corrupt) {
		/* Our copy of the key is gone: our latest dots of it may be
		 * too, so this actor issues no more (node.h: Actors). */
		n->st.corrupt_replaced++;
		cnode_renew_actor(n);
	}
	if (rc == 0) {
		int64_t *cnt = &n->ks_count[c->key[0]];
		/* While the start-up count runs, *cnt holds only the writes' deltas
		 * (a delete of a key the count takes as visible is -1): clamped at
		 * 0 there, that -1 would be lost. Clamped when the count adds in. */
		*cnt = n->count_scan || *cnt + c->count_delta > 0 ? *cnt + c->count_delta : 0; /* an estimate (node.h: COUNT) */
		if (c->visible)
			scan_note_write(n, c->key, c->key_len);
	}
	cas_end(n, c, rc);
}

static void cas_complete(struct cnode *n, struct cas *c)
{
	DV_ASSERT(c->busy);
	c->busy = false;
	struct rcache_entry *hit = c->hit; /* its bytes are op.out's until the completion returns */
	c->hit = NULL;
	cas_dispatch(n, c);
	if (hit)
		rcache_unpin(&n->rcache, hit);
}

static void cas_dispatch(struct cnode *n, struct cas *c)
{
	if (c->op.kind == STORE_GET && c->get_done) {
		if (cas_transient(&c->op) && cas_retry(n, c))
			return;
		c->get_done(&c->op);
	}
	else if (c->op.kind == STORE_GET)
		cas_got(n, c);
	else
		cas_put_done(n, c);
}

/* ---- replica operations ---- */

static struct rop *rop_alloc(struct cnode *n)
{
	if (n->rops_open >= n->cfg.replica_ops_max)
		return NULL;
	struct rop *r;
	if (n->rop_nfree) {
		r = n->rops[n->rop_free[--n->rop_nfree]];
	} else {
		DV_ASSERT(n->rops_made < n->cfg.replica_ops_max);
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
		r->idx = n->rops_made;
		n->rops[n->rops_made++] = r;
	}
	DV_ASSERT(!r->used && !r->cas.busy);
	r->used = true;
	r->in = NULL;
	r->in_bytes = 0;
	r->cas.enc = NULL;
	r->cas.enc_bytes = 0;
	n->rops_open++;
	return r;
}

static void rop_free(struct cnode *n, struct rop *r)
{
	DV_ASSERT(r->used && !r->cas.busy);
	DV_ASSERT(n->rops_open > 0 && n->rop_nfree < n->cfg.replica_ops_max);
	cnode_release(n, r->in, r->in_bytes);
	r->in = NULL;
	r->in_bytes = 0;
	cas_free_enc(n, &r->cas);
	r->used = false;
	n->rop_free[n->rop_nfree++] = r->idx;
	n->rops_open--;
}

void replica_free_all(struct cnode *n)
{
	for (uint32_t i = 0; i < n->rops_made; i++) {
		struct rop *r = n->rops[i];
		if (r->used) {
			r->cas.busy = false; /* the store is drained: nothing of it is in flight */
			rop_free(n, r);
		}
	}
	DV_ASSERT(n->rops_open == 0);
}

/* Answer a replica request about keyspace ks: a frame, or a direct call
 * for our own coordinator. */
static void replica_reply(struct cnode *n, uint8_t ks, uint8_t req_type, uint16_t to, uint64_t req_id,
			  uint16_t flags, uint8_t status, const uint8_t *meta, uint32_t meta_len, const uint8_t *vals,
			  uint32_t vals_len)
{
	struct msg m;
	cnode_msg_init(n, &m, req_type == MSG_REPL_PUT ? MSG_REPL_PUT_ACK : MSG_REPL_GET_REPLY, to, req_id);
	m.flags = flags & (req_type == MSG_REPL_PUT ? MSGF_REPAIR : MSGF_CLOCK_ONLY); /* echoed (not IF_COVERED) */
	m.status = status;
	m.epoch = ks < CNODE_KEYSPACES_MAX ? n->flush[ks].tag : 0;
	if (req_type == MSG_REPL_GET && status == MSG_ST_OK) {
		m.meta = meta;
		m.meta_len = meta_len;
		m.vals = vals_len ? vals : empty_bytes;
		m.vals_len = vals_len;
	}
	if (to == n->cfg.node_id)
		coord_on_reply(n, to, &m);
	else
		cnode_send(n, &m);
}

static uint8_t put_status(int rc)
{
	if (rc == 0 || rc == CAS_NOOP)
		return MSG_ST_OK;
	if (rc == -E2BIG || rc == -DV_ETOOBIG)
		return MSG_ST_TOO_BIG;
	if (rc == -EBUSY)
		return MSG_ST_BUSY;
	if (rc == -DV_EFULL)
		return MSG_ST_FULL; /* refused before it was placed: nothing written */
	if (rc == CAS_FLUSHED)
		return MSG_ST_STALE;
	return MSG_ST_FAILED;
}

static int rop_merge(struct cas *cas, const struct dvv *local, struct dvv *out)
{
	struct rop *r = cnode_container(cas, struct rop, cas);
	DV_ASSERT(r->used && r->type == MSG_REPL_PUT);
	DV_ASSERT(r->in_d.policy == cas->policy);
	/* A checked write (coord.c): whether its version covers our copy,
	 * decided in the step that writes it. Merged all the same (as a plain
	 * REPL_PUT: what we hold stays beside it), so every replica has the
	 * version whatever its coordinator does next; the answer says so. */
	r->uncovered = (r->flags & MSGF_IF_COVERED) && !cas->n->cfg.test_broken_cover &&
		       (cas->corrupt || (local && !dvv_covered(local, &r->in_d)));
	if (cas->n->cfg.test_broken_merge || !local) {
		dvv_copy(out, &r->in_d); /* test_broken_merge: the incoming version replaces ours (mutation check) */
	} else {
		int rc = dvv_sync(out, local, &r->in_d);
		if (rc != 0)
			return rc; /* -E2BIG: refused, never dropped to fit */
	}
	if (!cas->n->cfg.test_broken_merge)
		cnode_prune(cas->n, cas->key, cas->key_len, out); /* as its coordinator does: clocks stay bounded */
	if (local && cnode_same_version(local, out))
		return CAS_NOOP;
	return 0;
}

static void rop_put_done(struct cas *cas, int rc)
{
	struct rop *r = cnode_container(cas, struct rop, cas);
	struct cnode *n = cas->n;
	DV_ASSERT(r->used && !cas->busy);
	if (rc == CAS_NOOP)
		n->st.replica_noops++;
	uint16_t from = r->from, flags = r->flags & MSGF_REPAIR;
	uint64_t req_id = r->req_id;
	uint8_t ks = r->key[0];
	uint8_t status = put_status(rc);
	if (r->uncovered && status != MSG_ST_STALE) {
		status = MSG_ST_UNCOVERED; /* merged (or not: rc), but our copy knew more than its version */
		n->st.uncovered_refusals++;
	}
	rop_free(n, r); /* before replying: the reply may run a coordinator's done() */
	replica_reply(n, ks, MSG_REPL_PUT, from, req_id, flags, status, NULL, 0, NULL, 0);
}

static void rop_get_done(struct store_op *op)
{
	struct cas *cas = op->ctx;
	struct rop *r = cnode_container(cas, struct rop, cas);
	struct cnode *n = cas->n;
	DV_ASSERT(r->used && r->type == MSG_REPL_GET);
	uint8_t status = MSG_ST_FAILED, ks = r->key[0];
	const uint8_t *meta = op->out.meta, *vals = op->out.value;
	uint32_t meta_len = op->out.meta_len, vals_len = op->out.val_len;
	uint8_t *live = NULL;
	uint64_t live_bytes = 0, live_vals = 0;
	if (cas->epoch != n->flush[ks].tag) {
		status = MSG_ST_STALE; /* a flush since the request came: a read of the older epoch */
	} else if (op->result == 0) {
		struct dvv d;
		status = MSG_ST_OK;
		if (dvv_decode(&d, meta, meta_len, vals, vals_len) != 0) {
			status = MSG_ST_BAD; /* damaged: the coordinator repairs it */
		} else if (flush_filter(n, ks, op->out.seq, &d)) {
			/* Dead values (I8): the version without them, the clock kept. */
			if (cnode_encode(n, &d, &live, &live_bytes, &meta_len, &live_vals) != 0) {
				status = MSG_ST_BUSY;
			} else {
				meta = live;
				vals = live + meta_len;
				vals_len = (uint32_t)live_vals;
			}
		}
		if (status == MSG_ST_OK && (r->flags & MSGF_CLOCK_ONLY))
			vals_len = 0; /* the meta alone: clock, lengths, flags, expiry */
	} else if (op->result == -DV_ENOTFOUND) {
		status = MSG_ST_NOTFOUND;
	} else if (op->result == -DV_ECORRUPT) {
		status = MSG_ST_BAD;
	}
	uint16_t from = r->from;
	uint64_t req_id = r->req_id;
	uint16_t flags = r->flags & MSGF_CLOCK_ONLY;
	rop_free(n, r); /* the store's buffer stays valid until we return */
	replica_reply(n, ks, MSG_REPL_GET, from, req_id, flags, status, meta, meta_len, vals, vals_len);
	cnode_release(n, live, live_bytes);
}

static int rop_start_put(struct cnode *n, struct rop *r, const struct msg *m)
{
	uint64_t bytes = (uint64_t)m->meta_len + m->vals_len;
	if (m->meta_len < DVV_META_HDR_BYTES)
		return MSG_ST_BAD;
	r->in = cnode_alloc(n, bytes);
	if (!r->in)
		return MSG_ST_BUSY;
	r->in_bytes = bytes;
	memcpy(r->in, m->meta, m->meta_len);
	if (m->vals_len)
		memcpy(r->in + m->meta_len, m->vals, m->vals_len);
	uint8_t policy = n->cfg.ks[m->key[0]].policy;
	if (dvv_decode(&r->in_d, r->in, m->meta_len, r->in + m->meta_len, m->vals_len) != 0 ||
	    r->in_d.policy != policy)
		return MSG_ST_BAD;
	n->st.replica_puts++;
	r->cas.key = r->key;
	r->cas.key_len = r->key_len;
	r->cas.policy = policy;
	r->cas.merge = rop_merge;
	r->cas.done = rop_put_done;
	r->cas.put_submitted = NULL;
	cas_start(n, &r->cas);
	return MSG_ST_OK;
}

int replica_request(struct cnode *n, const struct msg *m)
{
	DV_ASSERT(m->type == MSG_REPL_PUT || m->type == MSG_REPL_GET);
	DV_ASSERT(m->to == n->cfg.node_id);
	int st = MSG_ST_OK;
	struct rop *r = NULL;
	uint64_t bytes = m->type == MSG_REPL_PUT ? (uint64_t)m->meta_len + m->vals_len : 0;
	uint8_t admit = MSG_ST_OK;
	if (m->key_len < 1 || !cnode_ks_ok(n, m->key[0]))
		st = MSG_ST_BAD; /* no such keyspace here (the metadata keyspace included) */
	else if (!flush_admit(n, m->key[0], m->epoch, m->from, &admit))
		st = admit; /* I7: not ready, or another epoch */
	else if (!cnode_budget_ok(n, bytes) || !(r = rop_alloc(n)))
		st = MSG_ST_BUSY;
	if (r) {
		r->cas.epoch = m->epoch;
		r->type = m->type;
		r->flags = m->flags;
		r->from = m->from;
		r->req_id = m->req_id;
		r->key_len = m->key_len;
		memcpy(r->key, m->key, m->key_len);
		if (m->type == MSG_REPL_PUT) {
			st = rop_start_put(n, r, m);
		} else {
			n->st.replica_gets++;
			r->cas.key = r->key;
			r->cas.key_len = r->key_len;
			/* A clock-only read is a write's (its context); a client's
			 * read is answered only from what the medium gave back. */
			cas_get(n, &r->cas, rop_get_done, !(m->flags & MSGF_CLOCK_ONLY));
		}
		if (st != MSG_ST_OK)
			rop_free(n, r);
	}
	if (st == MSG_ST_BUSY)
		n->st.busy_refusals++;
	if (st != MSG_ST_OK && m->from != n->cfg.node_id)
		replica_reply(n, m->key_len ? m->key[0] : 0xff, m->type, m->from, m->req_id, m->flags, (uint8_t)st, NULL,
			      0, NULL, 0);
	return st;
}
