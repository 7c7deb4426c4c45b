/* coord.c - the coordinator of a cnode (node.h, node_int.h).
 *
 * One struct coord per client request (cnode_submit) or forwarded write
 * (FWD_PUT from a node outside the key's preference list). Phases, and the
 * function doing each transition:
 *
 *  reads (GET, DYN_GET)            read-then-write (SET/DEL siblings, SET NX/XX
 *                                  and DEL lww, RMW)
 *  coord_submit                    coord_submit
 *     │ coord_read_start              │ coord_read_start (clock only but RMW)
 *     v                               v
 *  PH_READ ──R OK──> PH_REPAIR     PH_READ ──R OK── coord_read_quorum ──> decide
 *     │  coord_read_quorum │          │                 (NX/XX fail, DEL of nothing,
 *     │  (answer)          │ all      │                  RMW FINISH: finish)
 *     │                    │ replied  │                       │ coord_write_start
 *     │        repair_wait │ or       v                       v
 *     │ deadline /   ──────┤ due     finish                 write (below)
 *     │ R impossible       v
 *     └──> finish    coord_repair ──> finish
 *
 *  A read asks R replicas (coord_read_fanout; all N at R = N and for one
 *  GET/DYN_GET in CNODE_FULL_READ_EVERY), one more per refusal, STALE,
 *  lost session or speculative timer (coord_read_spec); answers that
 *  differ make PH_REPAIR ask the rest (coord_repair_ask_rest).
 *
 *  writes (DYN_PUT, DYN_DEL, LWW SET, and after a read) - coord_write_start:
 *   siblings, replica:  PH_LOCAL ── coord_put_out ──> PH_ACKS ──W OK──> finish
 *                       (cas: dvv_update of the   (REPL_PUT to the others as soon as our
 *                        stored copy, its PUT      store took our PUT; our own copy counts
 *                        submitted)                once durable: coord_local_sent)
 *   siblings, INCR:     PH_LOCAL ── coord_local_done ──> PH_ACKS (REPL_PUT once
 *                       durable here: a counter's actor is the data file's) ──W OK──> finish
 *   siblings, not one:  PH_FWD ── FWD_PUT_REPLY (coord_fwd_reply) ──> finish
 *   lww:                PH_ACKS (REPL_PUT to every replica at once, self
 *                       through the local replica path) ──W OK──> finish
 *   Our PUT after the version left: refused for a retry (-ESTALE ...): the
 *   same version merged again (coord_update_again); failed otherwise: the
 *   keyspace's actor moves on, our copy counts as FAIL (coord_local_sent).
 *   Checked writes (plain SET, siblings, no NX/XX, we a replica with a
 *   session to each other one: coord_can_check) skip PH_READ:
 *     PH_LOCAL (context: our own copy's clock, coord_update) ── coord_put_out
 *     ──> PH_ACKS (REPL_PUT with MSGF_IF_COVERED: a replica whose copy the
 *     version does not cover merges it all the same, answers UNCOVERED) ──
 *     max(R, W) OK──> finish
 *     an UNCOVERED short of that, our PUT over: coord_widen_start ──> PH_READ (at R,
 *     clock only, new req_id) ── coord_read_then_write ── coord_widen_write:
 *     the same version and dot, its clock joined with the read's (dvv_widen)
 *     ──> PH_ACKS (to every replica through the replica path) ──W OK──> finish
 *     (dvv_widen refusing: the value was superseded or another is above it:
 *     finish, indeterminate). Our copy unreadable: a read-then-write
 *     (coord_restart, c->unchecked).
 *   Deadline (coord_expire): PH_READ -ETIMEDOUT; PH_LOCAL/PH_ACKS/PH_FWD
 *   -ETIMEDOUT indeterminate; one whose store op is still in flight becomes
 *   PH_ZOMBIE and is freed when the op completes (not minted if it was not
 *   yet; a counter written then is sent untracked).
 *   Inside cnode_submit, finish goes to PH_DUE (answered by the next tick).
 *
 *  A flush while it runs (I7): a replica of another epoch answers STALE
 *  (REP_STALE, still pending). At stale_ms (2, 4, 8 .. ms) or as soon as
 *  this node applies a newer flush (coord_release_held), coord_stale_retry:
 *   our epoch unchanged: ask the STALE replicas again (one behind us learns
 *     ours from the request; one ahead: we learn its flush meanwhile);
 *   our epoch newer: coord_flushed: this round is over. Nothing written
 *     yet: the request is redone from coord_begin with a new req_id (fresh
 *     read, fresh dot), at most CNODE_FLUSH_ROUNDS_MAX times (a forwarded
 *     write answers STALE: its origin redoes it), except an RMW whose
 *     decide() ran (c->decided; it runs once): CNODE_EFLUSHED, not
 *     applied. Written (in the old
 *     epoch short of W, below every node's next flush point: dead when
 *     stamped up to that flush's until, I8): not redone (its value may have
 *     been read before the flush); OK (before the flush) when every replica
 *     acknowledged it or has this flush, else CNODE_EFLUSHED, nothing left;
 *     stamped past until: CNODE_EFLUSHED_MAYBE.
 *   PH_LOCAL's CAS_FLUSHED (nothing written) is coord_flushed at once (after
 *   the version left: our copy answers STALE, as a replica would); a
 *   STALE FWD_PUT_REPLY (the target wrote nothing) is redone at stale_ms.
 *   Still STALE replicas at the deadline: CNODE_EFLUSHED, or for a write
 *   that may be stored, CNODE_EFLUSHED_MAYBE - never a timeout.
 *
 * Replies are matched by (req_id, from, expected type) and counted once: a
 * replica's state moves SENT -> OK/FAIL once; anything else is dropped.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/node_int.h"

static const uint8_t empty_bytes[1];

_Static_assert(offsetof(struct coord, merged) + sizeof(struct cver) + 8 > COORD_CLEAR_BYTES,
	       "coord_alloc clears every field before ctx: merged is the last of them");

static const char ERR_READ_TIMEOUT[] = "fewer than R replicas answered before the timeout";
static const char ERR_READ_SHORT[] = "fewer than R replicas answered (the others refused or failed)";
static const char ERR_WRITE_TIMEOUT[] =
	"timed out before W replicas confirmed: the write may or may not have been applied";
static const char ERR_WRITE_SHORT[] =
	"fewer than W replicas confirmed (the others refused or failed): the write may or may not have been applied";
static const char ERR_FWD_TIMEOUT[] =
	"timed out waiting for the key's coordinating replica: the write may or may not have been applied";
static const char ERR_CTX_XDEV[] = "the context is from another cluster";
static const char ERR_CTX_BAD[] = "invalid context (garbage, truncated, altered, or from another key)";
static const char ERR_SIBLINGS[] =
	"the write would leave more siblings than the keyspace allows: not applied (write with a read's context)";
static const char ERR_TOO_BIG[] = "the key's versions would not fit in one record: not applied";
static const char ERR_READ_TOO_BIG[] =
	"the replicas' versions of the key together exceed the sibling or size bounds (concurrent writes): nothing was written";
static const char ERR_BUSY[] = "too many concurrent writes of the key at its coordinator: not applied";
static const char ERR_STORE[] = "the coordinating replica's store refused the write: not applied";
static const char ERR_FULL[] = "every replica's device is full: not applied";
static const char ERR_STORE_FAILED[] =
	"the coordinating replica's store failed the write: it may or may not have been applied";
static const char ERR_NOMEM[] = "out of memory: not applied";
static const char ERR_POLICY[] = "the stored version has another policy than its keyspace: not applied";
static const char ERR_NX[] = "the key exists: not applied";
static const char ERR_XX[] = "the key does not exist: not applied";
static const char ERR_VALUE[] = "value too large: not applied";
static const char ERR_NOT_REPLICA[] =
	"the node the write was forwarded to is not a replica of the key (ring views differ): not applied";
static const char ERR_FWD_BAD[] = "the coordinating replica refused the write as malformed: not applied";
static const char ERR_FLUSHED[] =
	"the keyspace was flushed while the request ran, or its nodes disagree on its flushes: not applied";
static const char ERR_FLUSHED_MAYBE[] =
	"the keyspace was flushed while the write ran and its replicas did not agree on the flush in time: the write "
	"may or may not have been applied";
static const char ERR_FLUSHED_GONE[] =
	"the keyspace was flushed while the write ran: it may have been applied before the flush, which removed it "
	"(nothing of it is left)";
static const char ERR_FLUSHED_ROUNDS[] =
	"the keyspace was flushed again and again while the request ran: not applied";
static const char ERR_BEHIND[] =
	"the context was read after a flush this node has not applied, and it could not learn the flush from its "
	"peers in time: not applied";
static const char ERR_NOT_READY[] =
	"the node has not heard its peers' flush state yet (it serves once it has): nothing was done";
static const char ERR_RANGE[] = "increment or decrement would overflow";
static const char ERR_NOT_INT[] = "value is not an integer or out of range";
static const char ERR_LOCAL_DAMAGED[] =
	"the coordinating replica's copy of the key is damaged (a read repairs it): not applied";
static const char ERR_WIDEN[] =
	"the write reached some replicas, then failed to supersede a version another replica held: it may or may not "
	"have been applied";
static const char ERR_CANCELED[] = "the node is shutting down: a write may or may not have been applied";

static void coord_finish(struct cnode *n, struct coord *c, int result, const char *err);
static void coord_write_start(struct cnode *n, struct coord *c);
static void coord_read_progress(struct cnode *n, struct coord *c);
static void coord_write_progress(struct cnode *n, struct coord *c);
static void coord_note_stale(struct cnode *n, struct coord *c, unsigned i, uint32_t tag);
static void coord_flushed(struct cnode *n, struct coord *c);
static bool coord_stale_waits(const struct coord *c);
static void coord_restart(struct cnode *n, struct coord *c);
static void coord_widen_write(struct cnode *n, struct coord *c);

/* A replica's answer is still to come (sent, or queued behind the peer's
 * limit) from one that can give it: our own copy, or a peer whose session
 * is up (a write queued for a peer that is
 * down waits for its next session, which a round over by a flush does not:
 * coord_flushed). */
static bool coord_awaiting_live(const struct cnode *n, const struct coord *c)
{
	for (unsigned i = 0; i < c->nrep; i++) {
		const struct crep *r = &c->rep[i];
		if ((r->st == REP_SENT || r->st == REP_QUEUED) && (r->self || (n->peer_up >> r->peer) & 1))
			return true;
	}
	return false;
}

/* ---- slots ---- */

static struct coord *coord_alloc(struct cnode *n)
{
	if (n->coords_open >= n->cfg.requests_max || n->destroying)
		return NULL;
	struct coord *c = n->coord_free;
	if (c) {
		n->coord_free = c->next;
	} else {
		DV_ASSERT(n->coords_made < n->cfg.requests_max);
		c = malloc(sizeof(*c));
		if (!c)
			return NULL;
		c->slot = n->coords_made;
		n->coords[n->coords_made++] = c;
	}
	uint32_t slot = c->slot;
	/* Cleared up to the merged version, whose arrays (3 KiB of the 4 the
	 * clear would be) are only read below its counts: coord_setup's
	 * dvv_init sets those. */
	memset(c, 0, offsetof(struct coord, merged));
	c->merged.buf = NULL;
	c->merged.bytes = 0;
	c->slot = slot;
	c->phase = PH_READ; /* set properly by the caller's start */
	c->prev = n->open_tail;
	if (n->open_tail)
		n->open_tail->next = c;
	else
		n->open_head = c;
	n->open_tail = c;
	n->coords_open++;
	c->req_id = cnode_new_req_id(n);
	cnode_ht_put(n, c->req_id, c);
	return c;
}

static void coord_free(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->phase != PH_FREE && !c->cas.busy);
	DV_ASSERT(n->coords_open > 0 && cnode_ht_get(n, c->req_id) == c); /* I1 */
	for (unsigned i = 0; i < c->nrep; i++)
		cnode_untrack(n, c, i);
	if (c->scan)
		scan_free(n, c);
	cver_free(n, &c->merged);
	cas_free_enc(n, &c->cas);
	cnode_release(n, c->val_copy, c->val_copy_bytes);
	c->val_copy = NULL;
	cnode_ht_del(n, c->req_id);
	if (c->prev)
		c->prev->next = c->next;
	else
		n->open_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		n->open_tail = c->prev;
	c->phase = PH_FREE;
	c->prev = NULL;
	c->next = n->coord_free;
	n->coord_free = c;
	n->coords_open--;
}

/* Store key, preference list, replicas. */
static void coord_setup(struct cnode *n, struct coord *c, uint8_t ks, const void *key, uint32_t key_len)
{
	DV_ASSERT(cnode_ks_ok(n, ks) && key_len <= CNODE_KEY_BYTES_MAX);
	c->ks = ks;
	c->policy = n->cfg.ks[ks].policy;
	c->nrep = n->ks_n[ks];
	c->skey_len = cnode_store_key(ks, key, key_len, c->skey);
	c->khash = store_key_hash(c->skey, c->skey_len);
	uint32_t part = ring_partition(&n->ring, c->khash);
	uint16_t pref[RING_N_MAX];
	unsigned cnt = ring_preflist(&n->ring, part, c->nrep, pref);
	DV_ASSERT(cnt == c->nrep && cnt >= 1);
	for (unsigned i = 0; i < cnt; i++) {
		struct crep *r = &c->rep[i];
		r->node = pref[i];
		r->self = pref[i] == n->cfg.node_id;
		r->peer = r->self ? CNODE_PEER_NONE : cnode_peer_index(n, pref[i]);
		DV_ASSERT(r->self || r->peer != CNODE_PEER_NONE);
		c->has_self |= r->self;
	}
	dvv_init(&c->merged.d, c->policy);
	c->ctx.n = 0;
	c->deadline_ms = n->now_ms + n->cfg.timeout_ms;
	c->epoch = n->flush[ks].tag; /* I7: every message of the request carries it */
}

void coord_frame_sent(struct coord *c, unsigned i)
{
	DV_ASSERT(i < c->nrep && c->rep[i].st == REP_QUEUED);
	c->rep[i].st = REP_SENT;
	c->rep[i].queued = NULL;
}

static void coord_count(const struct coord *c, unsigned *ok, unsigned *pending)
{
	*ok = *pending = 0;
	for (unsigned i = 0; i < c->nrep; i++) {
		*ok += c->rep[i].st == REP_OK;
		*pending += c->rep[i].st == REP_SENT || c->rep[i].st == REP_QUEUED || c->rep[i].st == REP_STALE;
	}
}

/* ---- answers ---- */

static uint8_t fwd_status(int result)
{
	switch (result) {
	case 0: return MSG_ST_OK;
	case -ETIMEDOUT: return MSG_ST_TIMEOUT;
	case -E2BIG: return MSG_ST_TOO_BIG;
	case -EBUSY:
	case -ENOMEM: return MSG_ST_BUSY;
	case -ENXIO: return MSG_ST_NOT_REPLICA;
	case -EINVAL: return MSG_ST_BAD;
	case -ERANGE:
	case -EDOM: return MSG_ST_RANGE;
	case CAS_FLUSHED: return MSG_ST_STALE; /* nothing written: the origin redoes it */
	case CNODE_EFLUSHED: return MSG_ST_FLUSHED;
	case -DV_EFULL: return MSG_ST_FULL;
	default: return MSG_ST_FAILED;
	}
}

static void fwd_reply(struct cnode *n, uint8_t ks, uint16_t to, uint64_t req_id, uint8_t status)
{
	struct msg m;
	cnode_msg_init(n, &m, MSG_FWD_PUT_REPLY, to, req_id);
	m.status = status;
	m.epoch = cnode_ks_ok(n, ks) ? n->flush[ks].tag : 0;
	cnode_send(n, &m);
}

static void count_result(struct cnode *n, int result)
{
	if (result == -ETIMEDOUT)
		n->st.quorum_timeouts++;
	else if (result == -E2BIG)
		n->st.siblings_refused++;
}

static void coord_answer(struct cnode *n, struct coord *c, int result, const char *err)
{
	DV_ASSERT(!c->answered);
	DV_ASSERT(result <= 0 && (result == 0 || err));
	if (c->widen && result < 0 && result != CNODE_EFLUSHED && result != CNODE_EFLUSHED_MAYBE) {
		/* The checked round stored the version somewhere before the
		 * widening failed: never a clean refusal. */
		c->indet = true;
		result = result == -ETIMEDOUT ? -ETIMEDOUT : CNODE_ERACED; /* "may or may not have been applied" */
		err = result == -ETIMEDOUT ? ERR_WRITE_TIMEOUT : ERR_WIDEN;
	}
	c->answered = true;
	count_result(n, result);
	if (!c->rq) {
		fwd_reply(n, c->ks, c->fwd_from, c->fwd_req_id, c->indet ? MSG_ST_TIMEOUT : fwd_status(result));
		return;
	}
	DV_ASSERT(!n->in_submit); /* I6 */
	struct creq *rq = c->rq;
	c->rq = NULL;
	rq->result = result;
	rq->err = err;
	rq->priv = NULL;
	rq->done(rq);
}

static void coord_finish(struct cnode *n, struct coord *c, int result, const char *err)
{
	DV_ASSERT(c->phase != PH_FREE && c->phase != PH_ZOMBIE && c->phase != PH_DUE);
	for (unsigned i = 0; i < c->nrep; i++)
		cnode_untrack(n, c, i);
	if (!c->answered && n->in_submit && c->rq) {
		/* I6: decided inside cnode_submit; done() runs at the next tick. */
		DV_ASSERT(result != 0 && !c->cas.busy);
		c->answered = true;
		count_result(n, result);
		c->phase = PH_DUE;
		c->due_result = result;
		c->due_err = err;
		c->due_next = NULL;
		if (n->due_tail)
			n->due_tail->due_next = c;
		else
			n->due_head = c;
		n->due_tail = c;
		return;
	}
	if (!c->answered)
		coord_answer(n, c, result, err);
	if (c->cas.busy) {
		c->phase = PH_ZOMBIE; /* freed when its store op completes */
		return;
	}
	coord_free(n, c);
}

void coord_complete(struct cnode *n, struct coord *c, int result, const char *err)
{
	coord_finish(n, c, result, err);
}

void coord_deliver_due(struct cnode *n)
{
	DV_ASSERT(!n->in_submit);
	struct coord *c = n->due_head;
	n->due_head = n->due_tail = NULL;
	for (uint32_t i = 0; c; i++) {
		DV_ASSERT(i < n->cfg.requests_max && c->phase == PH_DUE && c->rq);
		struct coord *next = c->due_next;
		struct creq *rq = c->rq;
		rq->result = c->due_result;
		rq->err = c->due_err;
		rq->priv = NULL;
		c->rq = NULL;
		coord_free(n, c);
		rq->done(rq);
		c = next;
	}
}

void coord_cancel_all(struct cnode *n)
{
	coord_deliver_due(n);
	n->destroying = true;
	struct coord *c = n->open_head;
	for (uint32_t i = 0; c; i++) {
		DV_ASSERT(i < n->cfg.requests_max);
		struct coord *next = c->next;
		struct creq *rq = c->rq;
		c->rq = NULL;
		c->cas.busy = false; /* the store is drained: nothing of it is in flight */
		coord_free(n, c);
		if (rq) {
			rq->result = -ECANCELED;
			rq->err = ERR_CANCELED;
			rq->priv = NULL;
			rq->done(rq);
		}
		c = next;
	}
	DV_ASSERT(n->coords_open == 0);
}

/* ---- sending ---- */

static void coord_request(struct cnode *n, struct coord *c, unsigned i, struct msg *m)
{
	struct crep *r = &c->rep[i];
	DV_ASSERT(r->st == REP_IDLE && m->to == r->node);
	if (r->self) {
		/* Our own copy goes through the replica path; it never answers
		 * inside this call (store ops complete later). */
		r->expect = m->type == MSG_REPL_PUT ? MSG_REPL_PUT_ACK : MSG_REPL_GET_REPLY;
		r->st = REP_SENT;
		int st = replica_request(n, m);
		if (st == MSG_ST_STALE)
			coord_note_stale(n, c, i, n->flush[c->ks].tag); /* our epoch moved since it began */
		else if (st != MSG_ST_OK)
			r->st = REP_FAIL;
		return;
	}
	if (cnode_send_tracked(n, c, i, m) != 0)
		r->st = REP_FAIL;
}

static void coord_put_msg(const struct cnode *n, const struct coord *c, unsigned i, struct msg *m)
{
	DV_ASSERT(c->cas.enc && c->cas.meta_len >= DVV_META_HDR_BYTES);
	cnode_msg_init(n, m, MSG_REPL_PUT, c->rep[i].node, c->req_id);
	m->epoch = c->epoch;
	m->key = c->skey;
	m->key_len = (uint16_t)c->skey_len;
	m->meta = c->cas.enc;
	m->meta_len = c->cas.meta_len;
	m->vals = c->cas.vals_len ? c->cas.enc + c->cas.meta_len : empty_bytes;
	m->vals_len = (uint32_t)c->cas.vals_len;
	m->flags = c->checked ? MSGF_IF_COVERED : 0;
}

static void coord_send_put(struct cnode *n, struct coord *c, unsigned i)
{
	struct msg m;
	coord_put_msg(n, c, i, &m);
	coord_request(n, c, i, &m);
}

/* ---- reads ---- */

/* REPL_GET of the key to replica i (its clock only when c->clock_only). */
static void coord_send_get(struct cnode *n, struct coord *c, unsigned i)
{
	struct msg m;
	cnode_msg_init(n, &m, MSG_REPL_GET, c->rep[i].node, c->req_id);
	m.epoch = c->epoch;
	m.flags = c->clock_only ? MSGF_CLOCK_ONLY : 0;
	m.key = c->skey;
	m.key_len = (uint16_t)c->skey_len;
	c->rep[i].sent_ms = n->now_ms;
	coord_request(n, c, i, &m);
}

/* Which replicas a read asks (node_int.h, "Reads"). */

/* A peer's round-trip estimate in ms (srtt + 4 rttvar; 0 before any sample). */
static uint32_t peer_rto(const struct cpeer *p)
{
	return p->rtt_seen ? p->rtt8 / 8 + p->rttvar4 : 0;
}

/* Replica i's answer may still come in time: asked (or STALE: no), and our
 * own copy, or a peer with a session that has not missed a read's
 * speculative timer lately. */
static bool rep_live(const struct cnode *n, const struct coord *c, unsigned i)
{
	const struct crep *r = &c->rep[i];
	if (r->st != REP_SENT && r->st != REP_QUEUED)
		return false;
	return r->self || ((n->peer_up >> r->peer & 1) && n->now_ms >= n->peers[r->peer].read_slow_until);
}

/* Ordering of the replicas not asked yet: our own copy, then peers with
 * a session, not lately slow, of a round trip within a power of two of the
 * best, with the fewest requests outstanding, in preference-list order. */
static uint64_t rep_rank(const struct cnode *n, const struct coord *c, unsigned i)
{
	const struct crep *r = &c->rep[i];
	if (r->self)
		return 0;
	const struct cpeer *p = &n->peers[r->peer];
	uint64_t down = !(n->peer_up >> r->peer & 1), slow = n->now_ms < p->read_slow_until;
	uint64_t bucket = 0;
	for (uint32_t rto = peer_rto(p); rto; rto >>= 1)
		bucket++;
	uint64_t out = p->outstanding < 0xfffffu ? p->outstanding : 0xfffffu;
	return 1 + (down << 40 | slow << 39 | bucket << 30 | out << 8 | i);
}

/* The speculative timer of the replicas a read waits on (node_int.h). */
static void coord_spec_arm(struct cnode *n, struct coord *c)
{
	uint32_t wait = CNODE_SPEC_MIN_MS;
	for (unsigned i = 0; i < c->nrep; i++) {
		const struct crep *r = &c->rep[i];
		if (!r->self && (r->st == REP_SENT || r->st == REP_QUEUED)) {
			uint32_t rto = peer_rto(&n->peers[r->peer]);
			wait = rto > wait ? rto : wait;
		}
	}
	uint64_t left = c->deadline_ms > n->now_ms ? c->deadline_ms - n->now_ms : 0;
	uint64_t cap = left / 4 < CNODE_SPEC_MAX_MS ? left / 4 : CNODE_SPEC_MAX_MS;
	c->spec_ms = n->now_ms + (wait < cap ? wait : (cap ? cap : 1));
	cnode_arm(n, c->spec_ms);
}

/* Ask replicas not asked yet, best first, until R answers may come from
 * those answered or live (all of them for a full read). Replicas left out
 * are asked later: when one asked fails or goes silent (coord_read_spec). */
static void coord_read_fanout(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->phase == PH_READ);
	bool asked = false;
	for (unsigned round = 0; round < c->nrep; round++) {
		unsigned have = 0, best = c->nrep;
		uint64_t best_rank = UINT64_MAX;
		for (unsigned i = 0; i < c->nrep; i++) {
			have += c->rep[i].st == REP_OK || rep_live(n, c, i);
			uint64_t rank = c->rep[i].st == REP_IDLE ? rep_rank(n, c, i) : UINT64_MAX;
			if (rank < best_rank) {
				best_rank = rank;
				best = i;
			}
		}
		if (best == c->nrep || (!c->full_read && have >= c->r))
			break;
		coord_send_get(n, c, best); /* may fail at once: counted again */
		n->st.late_read_asks += c->fanned;
		asked = true;
		DV_ASSERT(c->phase == PH_READ);
	}
	c->fanned = true;
	bool idle = false;
	for (unsigned i = 0; i < c->nrep; i++)
		idle |= c->rep[i].st == REP_IDLE;
	if (asked && idle)
		coord_spec_arm(n, c);
}

/* The speculative timer passed short of R: the peers still silent are
 * asked last for a while (rep_live), and replicas not asked yet are. */
static void coord_read_spec(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->phase == PH_READ && !c->answered);
	c->spec_ms = 0;
	n->st.spec_timer_fires++;
	cnode_arm(n, c->deadline_ms); /* coord_tick's visit: this call's arming */
	if (coord_stale_waits(c))
		cnode_arm(n, c->stale_ms);
	for (unsigned i = 0; i < c->nrep; i++) {
		const struct crep *r = &c->rep[i];
		if (!r->self && (r->st == REP_SENT || r->st == REP_QUEUED))
			n->peers[r->peer].read_slow_until = n->now_ms + n->cfg.timeout_ms;
	}
	coord_read_progress(n, c);
}

/* A reply from the peer of replica i of c: its round trip (REPL_GET), and
 * it is not silent. */
static void coord_note_reply(struct cnode *n, const struct coord *c, unsigned i, uint8_t type)
{
	const struct crep *r = &c->rep[i];
	if (r->self)
		return; /* our own copy is asked first, whatever its store's latency */
	struct cpeer *p = &n->peers[r->peer];
	p->read_slow_until = 0;
	if (type != MSG_REPL_GET_REPLY)
		return;
	uint64_t took = n->now_ms > r->sent_ms ? n->now_ms - r->sent_ms : 0;
	uint32_t ms = took < 60000 ? (uint32_t)took : 60000;
	if (!p->rtt_seen) {
		p->rtt_seen = true;
		p->rtt8 = ms * 8;
		p->rttvar4 = ms * 2;
		return;
	}
	int64_t delta = (int64_t)ms - (int64_t)(p->rtt8 / 8);
	p->rtt8 = (uint32_t)((int64_t)p->rtt8 + delta);
	uint32_t ad = (uint32_t)(delta < 0 ? -delta : delta);
	p->rttvar4 = p->rttvar4 + ad - p->rttvar4 / 4;
}

/* Whether this read asks every replica from the start: at R = N, and one
 * GET or DYN_GET in CNODE_FULL_READ_EVERY (a hash of its req_id: the same
 * on every run, so the simulator replays it), whose answers read-repair
 * replicas that reads at R leave out. */
static bool coord_full_read(const struct coord *c)
{
	if (c->r >= c->nrep)
		return true;
	if (c->op != COP_READ)
		return false; /* a read-then-write repairs nothing */
	uint64_t h = c->req_id * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	return h % CNODE_FULL_READ_EVERY == 0;
}

static void coord_read_start(struct cnode *n, struct coord *c, bool clock_only)
{
	DV_ASSERT(c->rq && !c->answered);
	c->phase = PH_READ;
	c->clock_only = clock_only;
	c->spec_ms = 0;
	c->full_read = coord_full_read(c);
	c->fanned = false;
	n->st.coord_reads++;
	n->st.full_reads += c->full_read;
	coord_read_progress(n, c); /* coord_read_fanout asks the first ones */
}

static void clock_record(struct cclock *k, const struct dvv *d)
{
	DV_ASSERT(d->nentries <= DVV_ENTRIES_MAX);
	k->n = d->nentries;
	for (unsigned i = 0; i < d->nentries; i++) {
		k->e[i].actor = d->e[i].actor;
		k->e[i].counter = d->e[i].counter;
		k->e[i].nvals = d->e[i].nvals;
	}
	k->lww_ts = d->policy == DVV_LWW && d->nvals ? d->v[0].ts : 0;
}

/* dvv_equal of a recorded clock and a version (plus the stamp for LWW). */
static bool clock_matches(const struct cclock *k, const struct dvv *d)
{
	if (k->n != d->nentries)
		return false;
	for (unsigned i = 0; i < k->n; i++)
		if (k->e[i].actor != d->e[i].actor || k->e[i].counter != d->e[i].counter ||
		    k->e[i].nvals != d->e[i].nvals)
			return false;
	return d->policy != DVV_LWW || k->lww_ts == (d->nvals ? d->v[0].ts : 0);
}

static int coord_merge(struct cnode *n, struct coord *c, const struct dvv *d)
{
	struct dvv out;
	if (dvv_sync(&out, &c->merged.d, d) != 0)
		return -E2BIG;
	/* Copy: d points into the driver's frame, valid during this call only. */
	return cver_set(n, &c->merged, &out);
}

static void coord_read_reply(struct cnode *n, struct coord *c, unsigned i, const struct msg *m)
{
	struct crep *r = &c->rep[i];
	DV_ASSERT(r->st == REP_IDLE && (c->phase == PH_READ || c->phase == PH_REPAIR));
	uint8_t st = REP_FAIL;
	if (m->status == MSG_ST_NOTFOUND) {
		c->clock[i].n = 0;
		c->clock[i].lww_ts = 0;
		st = REP_OK;
	} else if (m->status == MSG_ST_OK) {
		struct dvv d;
		bool clock_only = (m->flags & MSGF_CLOCK_ONLY) != 0;
		int rc = clock_only ? dvv_decode_clock(&d, m->meta, m->meta_len)
				    : dvv_decode(&d, m->meta, m->meta_len, m->vals, m->vals_len);
		if (rc != 0 || clock_only != c->clock_only || d.policy != c->policy) {
			n->st.bad_msgs++;
			r->bad = true;
		} else if ((rc = coord_merge(n, c, &d)) == 0) {
			clock_record(&c->clock[i], &d);
			st = REP_OK;
		} else {
			c->overflow |= rc == -E2BIG;
		}
	} else if (m->status == MSG_ST_STALE && c->phase == PH_READ) {
		coord_note_stale(n, c, i, m->epoch);
		return; /* still pending: nothing to decide */
	} else {
		r->bad = m->status == MSG_ST_BAD; /* a damaged copy: repair it */
	}
	r->st = st;
	coord_read_progress(n, c);
}

/* The merged state of every visible counter sibling of d (counter.h):
 * 0, -E2BIG (too many actors) or -ERANGE (its value does not fit int64:
 * *value is then unset). */
static int counter_of(const struct cnode *n, const struct dvv *d, struct counter *out, int64_t *value)
{
	const struct dvv_value *vis[DVV_VALUES_MAX];
	unsigned nv = dvv_visible(d, n->now_ms, vis, DVV_VALUES_MAX);
	counter_init(out);
	int64_t best = INT64_MIN;
	for (unsigned i = 0; i < nv; i++) {
		if (!(vis[i]->flags & DVV_VAL_COUNTER))
			continue;
		struct counter one;
		DV_ASSERT(vis[i]->data && counter_decode(&one, vis[i]->data, vis[i]->len) == 0); /* dvv_decode checked */
		int64_t v;
		if (n->cfg.test_broken_counter) { /* the mutation check: the greatest sibling alone */
			if (counter_value(&one, &v) == 0 && v > best) {
				best = v;
				*out = one;
			}
			continue;
		}
		int rc = counter_merge(out, &one);
		if (rc)
			return rc;
	}
	return value ? counter_value(out, value) : 0;
}

/* A counter pick is answered as its merged value in decimal (c->text),
 * exact even past the int64 range (concurrent INCRs near the limit through
 * different coordinators): GET shows every increment, INCR refuses it as
 * Redis refuses a string holding such a number (coord_incr_decide). */
static int coord_render_counter(struct cnode *n, struct coord *c)
{
	struct counter st;
	int rc = counter_of(n, &c->merged.d, &st, NULL);
	if (rc)
		return rc;
	counter_text(&st, c->text);
	return 0;
}

static int coord_fill_read(struct cnode *n, struct coord *c, struct creq *rq)
{
	const struct dvv *d = &c->merged.d;
	const struct dvv_value *p = dvv_pick(d, n->now_ms);
	bool text = false;
	rq->found = p != NULL;
	if (p && !c->clock_only) { /* a clock-only read has no value bytes */
		if (p->flags & DVV_VAL_COUNTER) {
			int rc = coord_render_counter(n, c);
			if (rc)
				return rc;
			text = true;
			rq->val = (const uint8_t *)c->text;
			rq->val_len_out = (uint32_t)strlen(c->text);
		} else {
			rq->val = p->data;
			rq->val_len_out = p->len;
		}
		rq->val_expire_ms = p->expire_ms;
	}
	if (rq->kind != CREQ_DYN_GET && rq->kind != CREQ_RMW)
		return 0;
	const struct dvv_value *vis[DVV_VALUES_MAX];
	unsigned nv = dvv_visible(d, n->now_ms, vis, DVV_VALUES_MAX);
	DV_ASSERT(nv <= DVV_VALUES_MAX);
	/* Counter siblings show as one value: the counter's, where the first
	 * of them is. */
	bool counter_shown = false;
	rq->nsiblings = 0;
	for (unsigned i = 0; i < nv; i++) {
		if (vis[i]->flags & DVV_VAL_COUNTER) {
			if (counter_shown)
				continue;
			if (!text) {
				int rc = coord_render_counter(n, c);
				if (rc)
					return rc;
				text = true;
			}
			counter_shown = true;
			rq->sib[rq->nsiblings] = (const uint8_t *)c->text;
			rq->sib_len[rq->nsiblings] = (uint32_t)strlen(c->text);
		} else {
			rq->sib[rq->nsiblings] = vis[i]->data;
			rq->sib_len[rq->nsiblings] = vis[i]->len;
		}
		rq->sib_expire_ms[rq->nsiblings++] = vis[i]->expire_ms;
	}
	struct dvv_vv vv;
	dvv_join(d, &vv);
	size_t len = dvv_ctx_encode(&vv, c->policy, n->flush[c->ks].id, n->cfg.cluster_id, n->cfg.ctx_key, c->skey,
				    c->skey_len, rq->ctx_out);
	DV_ASSERT(len < DVV_CTX_TEXT_MAX);
	rq->ctx_out_len = (uint32_t)len;
	return 0;
}

static const struct dvv_value tomb = {.data = empty_bytes, .len = 0, .flags = DVV_VAL_TOMB};

/* The dot of value v of d. */
static void value_dot(const struct dvv *d, const struct dvv_value *v, uint64_t *actor, uint64_t *counter)
{
	unsigned idx = (unsigned)(v - d->v);
	DV_ASSERT(idx < d->nvals);
	for (unsigned i = 0; i < d->nentries; i++) {
		const struct dvv_entry *e = &d->e[i];
		if (idx >= e->first && idx < e->first + e->nvals) {
			*actor = e->actor;
			*counter = e->counter - (idx - e->first);
			return;
		}
	}
	DV_ASSERT(!"a value outside every entry");
}

/* INCR after its read (node.h). LWW: the pick's integer plus delta, written
 * as text. Siblings: the counter state to write is the read's (every
 * visible counter sibling merged, started from a plain integer pick);
 * coord_update adds delta under our actor (a forwarder's target adds it
 * under its own). rq->counter is the value we expect: the exact one once
 * our own write computed it. 0, -EDOM (not an integer), -ERANGE, -E2BIG. */
static int coord_incr_decide(struct cnode *n, struct coord *c, struct creq *rq)
{
	const struct dvv *d = &c->merged.d;
	const struct dvv_value *p = dvv_pick(d, n->now_ms);
	int64_t v = 0;
	if (c->policy == DVV_LWW) {
		if (p && counter_parse(p->data, p->len, &v) != 0)
			return -EDOM;
		if ((rq->delta > 0 && v > INT64_MAX - rq->delta) || (rq->delta < 0 && v < INT64_MIN - rq->delta))
			return -ERANGE;
		rq->counter = v + rq->delta;
		uint32_t len = counter_format(rq->counter, c->text);
		c->val = (struct dvv_value){.data = (const uint8_t *)c->text, .len = len,
					    .expire_ms = p ? p->expire_ms : 0};
		return 0;
	}
	int rc = counter_of(n, d, &c->cstate, NULL);
	if (rc)
		return rc;
	if (p && !(p->flags & DVV_VAL_COUNTER)) {
		/* A plain value: the counter starts from it, named by its dot. */
		uint64_t actor, dot;
		if (counter_parse(p->data, p->len, &v) != 0)
			return -EDOM;
		value_dot(d, p, &actor, &dot);
		counter_set_base(&c->cstate, v, actor, dot);
	}
	if (counter_value(&c->cstate, &v) != 0)
		return -EDOM; /* past int64 (concurrent INCRs): not an integer for Redis */
	if ((rq->delta > 0 && v > INT64_MAX - rq->delta) || (rq->delta < 0 && v < INT64_MIN - rq->delta))
		return -ERANGE;
	rq->counter = v + rq->delta;
	c->counter = true;
	c->delta = rq->delta;
	c->val = (struct dvv_value){.data = c->cbuf, .len = counter_bytes(&c->cstate), .flags = DVV_VAL_COUNTER,
				    .expire_ms = p ? p->expire_ms : 0}; /* INCR keeps the key's expiry (Redis) */
	return 0;
}

/* Every replica back to REP_IDLE, untracked (its late replies are dropped
 * or, with a new round id, unmatched), none marked bad: before the next
 * phase's asks. */
static void coord_reps_idle(struct cnode *n, struct coord *c)
{
	for (unsigned i = 0; i < c->nrep; i++) {
		cnode_untrack(n, c, i);
		c->rep[i].st = REP_IDLE;
		c->rep[i].bad = c->rep[i].full = false;
	}
}

/* A new round of the request from its read (coord_restart,
 * coord_widen_start): replicas idle, a new req_id (replies of the old
 * round no longer find it), nothing read yet. */
static void coord_new_round(struct cnode *n, struct coord *c)
{
	coord_reps_idle(n, c);
	cnode_ht_del(n, c->req_id);
	c->req_id = cnode_new_req_id(n);
	cnode_ht_put(n, c->req_id, c);
	cver_free(n, &c->merged);
	dvv_init(&c->merged.d, c->policy);
	c->ctx.n = 0;
	c->overflow = false;
	c->stale_ms = 0;
}

/* The read of a read-then-write is done: decide, then write with its context. */
static void coord_read_then_write(struct cnode *n, struct coord *c, struct creq *rq)
{
	DV_ASSERT(c->op == COP_READ_WRITE && c->phase == PH_READ);
	c->stale_ms = 0; /* a STALE replica of the read is not asked again */
	coord_reps_idle(n, c); /* the read is over: late replies are dropped */
	if (c->widen) {
		coord_widen_write(n, c);
		return;
	}
	switch (rq->kind) {
	case CREQ_SET:
		if (rq->cond == CREQ_IF_ABSENT && rq->found) {
			coord_finish(n, c, -EEXIST, ERR_NX);
			return;
		}
		if (rq->cond == CREQ_IF_PRESENT && !rq->found) {
			coord_finish(n, c, -DV_ENOTFOUND, ERR_XX);
			return;
		}
		break;
	case CREQ_DEL:
		if (!rq->found) {
			coord_finish(n, c, 0, NULL);
			return;
		}
		c->val = tomb;
		break;
	case CREQ_INCR: {
		int rc = coord_incr_decide(n, c, rq);
		if (rc) {
			coord_finish(n, c, rc, rc == -EDOM ? ERR_NOT_INT : rc == -ERANGE ? ERR_RANGE : ERR_TOO_BIG);
			return;
		}
		break;
	}
	case CREQ_RMW: {
		DV_ASSERT(!c->decided);
		c->decided = true;
		enum creq_action a = rq->decide(rq, n->now_ms);
		if (a == CREQ_FINISH) {
			coord_finish(n, c, 0, NULL);
			return;
		}
		if (a == CREQ_WRITE && rq->val_len > DV_VALUE_BYTES_MAX) {
			coord_finish(n, c, -EINVAL, ERR_VALUE);
			return;
		}
		c->val = a == CREQ_DELETE ? tomb
					  : (struct dvv_value){.data = rq->val_len ? rq->value : empty_bytes,
							       .len = rq->val_len,
							       .expire_ms = rq->expire_ms};
		break;
	}
	default:
		DV_ASSERT(!"not a read-then-write request");
	}
	dvv_join(&c->merged.d, &c->ctx);
	coord_write_start(n, c);
}

/* Answered at R, and the replies differed (or one was damaged): a replica
 * left out may be stale too, so it is asked now and repaired with the
 * others (coord_repair). */
static void coord_repair_ask_rest(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->phase == PH_REPAIR);
	bool differ = false, idle = false;
	for (unsigned i = 0; i < c->nrep; i++) {
		const struct crep *r = &c->rep[i];
		differ |= (r->st == REP_OK && !clock_matches(&c->clock[i], &c->merged.d)) || r->bad;
		idle |= r->st == REP_IDLE;
	}
	if (!differ || !idle)
		return;
	for (unsigned i = 0; i < c->nrep; i++)
		if (c->rep[i].st == REP_IDLE)
			coord_send_get(n, c, i);
}

static void coord_read_quorum(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->phase == PH_READ && !c->answered && c->rq);
	struct creq *rq = c->rq;
	/* What we read is causally before what we write next. */
	for (unsigned i = 0; i < c->merged.d.nvals; i++)
		hlc_observe(&n->hlc, c->merged.d.v[i].ts, n->now_ms);
	int rc = coord_fill_read(n, c, rq);
	if (rc) {
		coord_finish(n, c, rc == -ERANGE ? -ERANGE : -E2BIG, rc == -ERANGE ? ERR_RANGE : ERR_TOO_BIG);
		return;
	}
	if (c->op == COP_READ_WRITE) {
		coord_read_then_write(n, c, rq);
		return;
	}
	DV_ASSERT(c->op == COP_READ && !c->clock_only);
	c->phase = PH_REPAIR;
	c->repair_ms = n->now_ms + n->cfg.repair_wait_ms;
	cnode_arm(n, c->repair_ms);
	coord_answer(n, c, 0, NULL);
	coord_repair_ask_rest(n, c);
	coord_read_progress(n, c);
}

/* Read repair, after the answer: the merged version to every replica whose
 * copy differed (or was damaged), our own through the local replica path.
 * Fire and forget: acks come back to a finished request and are dropped. */
static void coord_repair(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->phase == PH_REPAIR && c->answered && !c->clock_only);
	/* Pruned as every replica prunes what it stores (cnode_prune: the same
	 * on every node), so a replica whose copy kept an entry the others
	 * pruned (it held a value then, dead since: a flush) is repaired too,
	 * and the copies converge. */
	cnode_prune(n, c->skey, c->skey_len, &c->merged.d);
	bool encoded = false;
	for (unsigned i = 0; i < c->nrep; i++) {
		const struct crep *r = &c->rep[i];
		bool stale = (r->st == REP_OK && !clock_matches(&c->clock[i], &c->merged.d)) || r->bad;
		if (!stale)
			continue;
		if (!encoded && cnode_encode(n, &c->merged.d, &c->cas.enc, &c->cas.enc_bytes, &c->cas.meta_len,
					     &c->cas.vals_len) != 0)
			break;
		encoded = true;
		struct msg m;
		coord_put_msg(n, c, i, &m);
		m.flags = MSGF_REPAIR;
		if (r->self)
			replica_request(n, &m);
		else
			cnode_send(n, &m);
		n->st.read_repairs++;
	}
	coord_finish(n, c, 0, NULL);
}

/* A read short of R. Its answer is -ETIMEDOUT, but what it did read still
 * repairs the replicas that answered with a damaged or older copy: with
 * R = N one damaged copy fails every read of the key, and a failed read
 * that repaired nothing would leave it damaged for good. */
static void coord_read_failed(struct cnode *n, struct coord *c, const char *err)
{
	unsigned ok, pending;
	coord_count(c, &ok, &pending);
	int result = -ETIMEDOUT;
	if (c->overflow) {
		/* Replicas answered, but their versions together exceed the
		 * bounds (concurrent writes through different coordinators, each
		 * within them alone): say so, not "fewer than R answered". */
		result = -E2BIG;
		err = ERR_READ_TOO_BIG;
	}
	if (c->op != COP_READ || c->clock_only || ok == 0) {
		coord_finish(n, c, result, err);
		return;
	}
	DV_ASSERT(!n->in_submit); /* an OK reply never comes inside cnode_submit */
	coord_answer(n, c, result, err);
	c->phase = PH_REPAIR;
	coord_repair(n, c);
}

static void coord_read_progress(struct cnode *n, struct coord *c)
{
	unsigned ok, pending;
	coord_count(c, &ok, &pending);
	if (c->phase == PH_REPAIR) {
		/* Wait for replies to what was sent; a REPL_GET still queued
		 * behind a peer's in-flight limit is not worth waiting for. */
		bool sent = false;
		for (unsigned i = 0; i < c->nrep; i++)
			sent |= c->rep[i].st == REP_SENT;
		if (!sent)
			coord_repair(n, c);
		return;
	}
	DV_ASSERT(c->phase == PH_READ && !c->answered);
	if (ok < c->r) {
		coord_read_fanout(n, c);
		if (c->phase != PH_READ)
			return;
		coord_count(c, &ok, &pending);
	}
	if (ok >= c->r)
		coord_read_quorum(n, c);
	else if (ok + pending < c->r)
		coord_read_failed(n, c, ERR_READ_SHORT);
}

/* ---- writes ---- */

static void coord_widen_start(struct cnode *n, struct coord *c);

/* A replica answered a checked write of c's key UNCOVERED: the key's
 * plain SETs through this node read first for a while (coord_can_check). */
static void coord_note_contended(struct cnode *n, const struct coord *c)
{
	if (n->cfg.contended_ms == UINT32_MAX)
		return;
	const unsigned slot = (unsigned)(c->khash & (CNODE_CONTENDED_SLOTS - 1));
	n->contended[slot].hash = c->khash;
	n->contended[slot].until_ms = n->now_ms + n->cfg.contended_ms;
}

static void coord_write_progress(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->phase == PH_ACKS && !c->answered);
	unsigned ok, pending;
	coord_count(c, &ok, &pending);
	/* A checked write's acks are its read too: R of them, W at least. */
	unsigned need = c->checked && c->r > c->w ? c->r : c->w;
	if (ok >= need) {
		coord_finish(n, c, 0, NULL);
	} else if (n->flush[c->ks].tag != c->epoch && !coord_awaiting_live(n, c)) {
		coord_flushed(n, c); /* a flush here since it wrote, every answer in (or not to come) */
	} else if (ok + pending < need && c->local_err) {
		c->indet = true; /* our own store took it and failed: it may be on the medium */
		coord_finish(n, c, c->local_err, ERR_STORE_FAILED);
	} else if (c->uncovered) {
		/* Not once every answer is in: a replica up but silent would
		 * hold it to its deadline, where the widening read asks around
		 * it. Our own PUT first (coord_local_sent calls again). */
		if (!c->cas.busy)
			coord_widen_start(n, c);
	} else if (ok + pending < need) {
		/* Every replica refused it for a full device: nothing written
		 * anywhere, a clean failure. While each answer so far is that,
		 * the others that can still answer are awaited (one of them may
		 * have written it). */
		unsigned full = 0;
		for (unsigned i = 0; i < c->nrep; i++)
			full += c->rep[i].full;
		if (full > 0 && full + pending == c->nrep && coord_awaiting_live(n, c))
			return;
		if (full == c->nrep)
			coord_finish(n, c, -DV_EFULL, ERR_FULL);
		else
			coord_finish(n, c, -ETIMEDOUT, ERR_WRITE_SHORT);
	}
}

/* Dot (actor, counter) is covered by the context vv. */
static bool vv_covers(const struct dvv_vv *vv, uint64_t actor, uint64_t counter)
{
	for (unsigned i = 0; i < vv->n; i++)
		if (vv->e[i].actor == actor)
			return vv->e[i].counter >= counter;
	return false;
}

/* The counter state an INCR writes (c->cstate: the read's): merged with
 * our stored copy's counter siblings the read did not see (concurrent with
 * it: they stay siblings anyway), then delta added to our actor, whose
 * entry only we raise, from our stored copy first (it has our latest). */
static int coord_counter_next(struct cnode *n, struct coord *c, const struct dvv *local, struct dvv_value *val)
{
	struct counter st = c->cstate;
	for (unsigned i = 0; i < local->nentries; i++) {
		const struct dvv_entry *e = &local->e[i];
		for (unsigned k = 0; k < e->nvals; k++) {
			const struct dvv_value *v = &local->v[e->first + k];
			if (!(v->flags & DVV_VAL_COUNTER) || vv_covers(&c->ctx, e->actor, e->counter - k))
				continue;
			struct counter one;
			DV_ASSERT(counter_decode(&one, v->data, v->len) == 0);
			int rc = counter_merge(&st, &one);
			if (rc)
				return rc;
		}
	}
	int rc = counter_add(&st, cnode_ks_counter_actor(n, c->ks), c->delta);
	if (rc == 0)
		rc = counter_value(&st, &c->cvalue);
	if (rc)
		return rc; /* -E2BIG actors, -ERANGE */
	counter_encode(&st, c->cbuf);
	val->data = c->cbuf;
	val->len = counter_bytes(&st);
	val->flags = DVV_VAL_COUNTER;
	return 0;
}

/* The coordinator's merge again (its PUT was refused: -ESTALE, -EBUSY,
 * -DV_ECORRUPT) once the version left with its new dot (coord_local_sent):
 * the SAME version merged into the stored copy, never a new dot (the dot
 * sent is our actor's; minting again from a copy without it would issue it
 * twice, or a second dot for the same value). Over an unreadable copy the
 * version alone (STORE_IF_DAMAGED: the replacement renews the actor). */
static int coord_update_again(struct coord *c, const struct dvv *local, struct dvv *out)
{
	struct cas *cas = &c->cas;
	struct dvv sent;
	int rc = dvv_decode(&sent, cas->enc, cas->meta_len, cas->enc + cas->meta_len, cas->vals_len);
	DV_ASSERT(rc == 0 && !c->counter); /* our own encoding; counters are never sent first */
	if (!local) {
		*out = sent;
	} else if ((rc = dvv_sync(out, local, &sent)) != 0) {
		return rc; /* -E2BIG: a hard failure after the send (coord_local_sent) */
	}
	cnode_prune(cas->n, c->skey, c->skey_len, out);
	return 0;
}

/* The coordinator's merge: a new event of our actor over the stored copy. */
static int coord_update(struct cas *cas, const struct dvv *local, struct dvv *out)
{
	struct coord *c = cnode_container(cas, struct coord, cas);
	struct cnode *n = cas->n;
	DV_ASSERT(c->phase == PH_LOCAL || c->phase == PH_ZOMBIE || (c->phase == PH_ACKS && c->wrote));
	if (c->wrote)
		return coord_update_again(c, local, out);
	if (c->phase == PH_ZOMBIE)
		return -ECANCELED; /* answered (its deadline) before it was minted: nothing to write */
	struct dvv empty;
	if (!local && cas->corrupt)
		return -DV_ECORRUPT; /* our own copy is unreadable: its clock, and so our last dot of the key, is
				      * unknown here; issuing the next dot from nothing could reissue one */
	if (!local) {
		dvv_init(&empty, c->policy);
		local = &empty;
	}
	if (c->checked)
		dvv_join(local, &c->ctx); /* a checked write supersedes all our copy holds, as of this merge */
	for (unsigned i = 0; i < local->nvals; i++)
		hlc_observe(&n->hlc, local->v[i].ts, n->now_ms);
	struct dvv_value val = c->val;
	if (c->counter) {
		int rc = coord_counter_next(n, c, local, &val);
		if (rc)
			return rc;
	}
	val.ts = hlc_now(&n->hlc, n->now_ms);
	int rc = dvv_update(out, local, &c->ctx, cnode_ks_actor(n, c->ks), &val);
	if (rc != 0)
		return rc; /* -E2BIG bounds, -EINVAL a forwarded context that is not a valid vector */
	unsigned before = dvv_visible(local, n->now_ms, NULL, 0);
	unsigned after = dvv_visible(out, n->now_ms, NULL, 0);
	if (c->checked && c->rq)
		c->rq->found = before > 0; /* no read: what our own copy held */
	if (after > n->cfg.ks[c->ks].siblings_max && after > before)
		return -E2BIG; /* only a write that adds siblings beyond the limit */
	cnode_prune(n, c->skey, c->skey_len, out);
	return 0;
}

static void coord_fwd_start(struct cnode *n, struct coord *c, unsigned to);

/* The replica other than us a write goes to when our own copy is damaged,
 * or c->nrep when there is none. */
static unsigned coord_other_replica(const struct coord *c)
{
	unsigned i = 0;
	while (i < c->nrep && c->rep[i].self)
		i++;
	return i;
}

static void coord_local_failed(struct cnode *n, struct coord *c, int rc)
{
	if (rc == -DV_ECORRUPT && c->checked) {
		/* Nothing written: a read-then-write instead, whose read gives
		 * the context to forward with (as below). */
		n->st.checked_fallbacks++;
		c->unchecked = true;
		coord_restart(n, c);
		return;
	}
	if (rc == -DV_ECORRUPT) {
		/* Nothing written: another replica coordinates it with its own
		 * actor (its REPL_PUT then replaces our damaged copy). A write
		 * forwarded to us is not forwarded again. */
		unsigned to = coord_other_replica(c);
		if (c->rq && to < c->nrep) {
			c->rep[to].st = REP_IDLE;
			coord_fwd_start(n, c, to);
		} else {
			coord_finish(n, c, -EIO, ERR_LOCAL_DAMAGED);
		}
		return;
	}
	/* A PUT the store took and then failed (a device error) may have
	 * reached the medium: not a clean failure. */
	if (c->cas.op.kind == STORE_PUT && !c->cas.refused && rc != -EBUSY && rc != -DV_EFULL) {
		c->indet = true;
		coord_finish(n, c, rc, ERR_STORE_FAILED);
		return;
	}
	switch (rc) {
	case -E2BIG: coord_finish(n, c, -E2BIG, ERR_SIBLINGS); break;
	case -DV_ETOOBIG: coord_finish(n, c, -E2BIG, ERR_TOO_BIG); break;
	case -EBUSY: coord_finish(n, c, -EBUSY, ERR_BUSY); break;
	case -ENOMEM: coord_finish(n, c, -ENOMEM, ERR_NOMEM); break;
	case -EPROTO: coord_finish(n, c, -EPROTO, ERR_POLICY); break;
	case -EINVAL: coord_finish(n, c, -EINVAL, ERR_CTX_BAD); break;
	case CAS_FLUSHED: coord_flushed(n, c); break; /* nothing written: redone in the new epoch */
	case -ERANGE: coord_finish(n, c, -ERANGE, ERR_RANGE); break;
	default: coord_finish(n, c, rc, ERR_STORE); break;
	}
}

/* The local write of a version that already left (coord_put_out) ended:
 * rc 0, durable here: it counts toward W now. CAS_FLUSHED: a flush was
 * applied here between the tries (it renewed our actor, I9): our copy has
 * the flush, as a replica answering STALE. Any other error: our copy may
 * lack the dot our actor sent, so the actor moves on (its next dot of the
 * key must not be that one again: node.h, Actors), and the write counts on
 * the others for W (indeterminate when short). */
static void coord_local_sent(struct cnode *n, struct coord *c, int rc)
{
	unsigned self = 0;
	while (self < c->nrep && !c->rep[self].self)
		self++;
	DV_ASSERT(self < c->nrep && c->wrote);
	if (rc < 0 && rc != CAS_FLUSHED) {
		flush_renew_ks_actor(n, c->ks);
		n->st.actor_renewals++;
	}
	if (c->phase == PH_ZOMBIE) {
		coord_free(n, c); /* answered; the replicas have the version */
		return;
	}
	DV_ASSERT(c->phase == PH_ACKS && c->rep[self].st == REP_SENT);
	if (rc == 0) {
		c->rep[self].st = REP_OK;
	} else if (rc == CAS_FLUSHED) {
		coord_note_stale(n, c, self, n->flush[c->ks].tag);
	} else {
		c->rep[self].st = REP_FAIL;
		c->rep[self].full = rc == -DV_EFULL;
		if (c->cas.op.kind == STORE_PUT && !c->cas.refused && rc != -EBUSY && rc != -DV_EFULL)
			c->local_err = rc; /* a device error: it may be on our medium */
	}
	coord_write_progress(n, c);
}

/* The PUT of the coordinator's new version is submitted: send the version
 * to the other replicas now, beside it (not after it is durable here), so
 * a write costs one group commit. Not for counters (coord_write_start). Our
 * own copy counts toward W once durable (coord_local_sent). Once only: a
 * retried PUT (coord_update_again) writes the same version. */
static void coord_put_out(struct cas *cas)
{
	struct coord *c = cnode_container(cas, struct coord, cas);
	struct cnode *n = cas->n;
	if (c->wrote)
		return;
	DV_ASSERT(c->phase == PH_LOCAL && !c->counter && !c->answered);
	c->wrote = true;
	c->wrote_ts = n->hlc.last; /* at least the stamp coord_update gave it */
	c->phase = PH_ACKS;
	for (unsigned i = 0; i < c->nrep; i++) {
		if (c->rep[i].self) {
			c->rep[i].st = REP_SENT; /* our store's PUT: no message, no reply type */
			c->rep[i].expect = 0;
		} else {
			coord_send_put(n, c, i);
		}
	}
	/* W is decided on replies and on coord_local_sent, never here: the
	 * cas that called us goes on with c. */
}

static void coord_local_done(struct cas *cas, int rc)
{
	struct coord *c = cnode_container(cas, struct coord, cas);
	struct cnode *n = cas->n;
	DV_ASSERT(c->phase == PH_LOCAL || c->phase == PH_ZOMBIE || (c->phase == PH_ACKS && c->wrote));
	DV_ASSERT(rc != CAS_NOOP && !cas->busy); /* an update always adds a dot */
	if (c->wrote) {
		coord_local_sent(n, c, rc);
		return;
	}
	if (c->phase == PH_ZOMBIE) {
		/* The client was told "may or may not"; spread what was written
		 * (a counter: sent only once durable here). */
		for (unsigned i = 0; rc == 0 && i < c->nrep; i++) {
			if (c->rep[i].self)
				continue;
			struct msg m;
			coord_put_msg(n, c, i, &m);
			cnode_send(n, &m);
		}
		coord_free(n, c);
		return;
	}
	if (rc < 0) {
		coord_local_failed(n, c, rc); /* nothing was sent: a clean failure */
		return;
	}
	/* Durable here: only now may the new dot leave this node. */
	if (c->counter && c->rq)
		c->rq->counter = c->cvalue; /* the exact value we wrote */
	c->wrote = true;
	c->wrote_ts = n->hlc.last; /* at least the stamp coord_update gave it */
	c->phase = PH_ACKS;
	for (unsigned i = 0; i < c->nrep; i++) {
		if (c->rep[i].self)
			c->rep[i].st = REP_OK;
		else
			coord_send_put(n, c, i);
	}
	coord_write_progress(n, c);
}

/* LWW: no dots, so no need to be durable here first: every replica at once. */
static void coord_lww_start(struct cnode *n, struct coord *c)
{
	struct dvv empty, v;
	const struct dvv_vv none = {.n = 0};
	dvv_init(&empty, DVV_LWW);
	struct dvv_value val = c->val;
	val.ts = hlc_now(&n->hlc, n->now_ms);
	int rc = dvv_update(&v, &empty, &none, cnode_ks_actor(n, c->ks), &val);
	DV_ASSERT(rc == 0 && v.nvals == 1); /* one value in one entry */
	n->st.coord_writes++;
	if (cnode_encode(n, &v, &c->cas.enc, &c->cas.enc_bytes, &c->cas.meta_len, &c->cas.vals_len) != 0) {
		coord_finish(n, c, -ENOMEM, ERR_NOMEM);
		return;
	}
	c->phase = PH_ACKS;
	c->wrote = true;
	c->wrote_ts = val.ts;
	for (unsigned i = 0; i < c->nrep; i++)
		coord_send_put(n, c, i);
	coord_write_progress(n, c);
}

/* Forward the write to replica `to` (not us), which coordinates it. */
static void coord_fwd_start(struct cnode *n, struct coord *c, unsigned to)
{
	DV_ASSERT(c->rq && to < c->nrep && !c->rep[to].self && c->policy == DVV_SIBLINGS);
	DV_ASSERT(c->ctx.n <= DVV_ENTRIES_MAX);
	uint8_t ctx[MSG_CTX_BYTES_MAX];
	uint64_t left = c->deadline_ms > n->now_ms ? c->deadline_ms - n->now_ms : 1;
	struct msg m;
	cnode_msg_init(n, &m, MSG_FWD_PUT, c->rep[to].node, c->req_id);
	m.epoch = c->epoch;
	m.key = c->skey;
	m.key_len = (uint16_t)c->skey_len;
	m.w = c->w;
	m.val_flags = c->val.flags;
	m.timeout_ms = left < UINT32_MAX ? (uint32_t)left : UINT32_MAX;
	m.expire_ms = c->val.expire_ms;
	msg_ctx_set(&m, &c->ctx, ctx);
	m.vals = c->val.data;
	m.vals_len = c->val.len;
	if (c->counter) {
		counter_encode(&c->cstate, c->cbuf); /* the read's state: the target adds delta to it */
		m.vals = c->cbuf;
		m.vals_len = counter_bytes(&c->cstate);
		m.delta = (uint64_t)c->delta;
	}
	c->phase = PH_FWD;
	n->st.forwarded++;
	if (cnode_send_tracked(n, c, to, &m) != 0)
		coord_finish(n, c, -ENOMEM, ERR_NOMEM);
}

/* The replica a write this node does not replicate goes to: the first in
 * the preference list with a session (the first of all when none has: it
 * times out as any write whose replicas are down). Always the first made
 * a key whose first replica was down unwritable through every node outside
 * its preference list (review: 6 of 30 SETs timing out, 5-node cluster with
 * one node killed). */
static unsigned coord_fwd_target(const struct cnode *n, const struct coord *c)
{
	for (unsigned i = 0; i < c->nrep; i++)
		if (!c->rep[i].self && (n->peer_up >> c->rep[i].peer & 1))
			return i;
	return 0;
}

static void coord_write_start(struct cnode *n, struct coord *c)
{
	DV_ASSERT(!c->answered && c->val.data != NULL);
	DV_ASSERT(c->w >= 1 && c->w <= c->nrep);
	if (c->policy == DVV_LWW) {
		coord_lww_start(n, c);
		return;
	}
	if (!c->has_self) {
		coord_fwd_start(n, c, coord_fwd_target(n, c));
		return;
	}
	n->st.coord_writes++;
	c->phase = PH_LOCAL;
	c->cas.key = c->skey;
	c->cas.key_len = c->skey_len;
	c->cas.policy = c->policy;
	c->cas.merge = coord_update;
	c->cas.done = coord_local_done;
	/* A counter's state is sent only once durable here: its entry is the
	 * data file's actor's (node.h, Actors), which a restart does not
	 * renew. */
	c->cas.put_submitted = c->counter ? NULL : coord_put_out;
	c->cas.epoch = c->epoch;
	cas_start(n, &c->cas);
}

static void coord_fwd_reply(struct cnode *n, struct coord *c, unsigned i, const struct msg *m)
{
	DV_ASSERT(c->phase == PH_FWD && c->rq);
	switch (m->status) {
	case MSG_ST_OK: coord_finish(n, c, 0, NULL); break;
	case MSG_ST_TIMEOUT: coord_finish(n, c, -ETIMEDOUT, ERR_WRITE_TIMEOUT); break;
	case MSG_ST_TOO_BIG: coord_finish(n, c, -E2BIG, ERR_SIBLINGS); break;
	case MSG_ST_BUSY: coord_finish(n, c, -EBUSY, ERR_BUSY); break;
	case MSG_ST_NOT_REPLICA: coord_finish(n, c, -EIO, ERR_NOT_REPLICA); break;
	case MSG_ST_FAILED: coord_finish(n, c, -EIO, ERR_STORE); break;
	case MSG_ST_STALE: coord_note_stale(n, c, i, m->epoch); break; /* the target wrote nothing */
	case MSG_ST_FLUSHED: coord_finish(n, c, CNODE_EFLUSHED, ERR_FLUSHED_GONE); break;
	case MSG_ST_RANGE: coord_finish(n, c, -ERANGE, ERR_RANGE); break;
	case MSG_ST_FULL: coord_finish(n, c, -DV_EFULL, ERR_FULL); break;
	default: coord_finish(n, c, -EPROTO, ERR_FWD_BAD); break;
	}
}

/* ---- a flush while the request runs ---- */

/* Replica i answered STALE (it is in another flush epoch): pending, asked
 * again at stale_ms (2 ms, doubling) unless this node applies a newer
 * flush first (coord_release_held). */
static void coord_note_stale(struct cnode *n, struct coord *c, unsigned i, uint32_t tag)
{
	DV_ASSERT(c->phase == PH_READ || c->phase == PH_ACKS || c->phase == PH_FWD);
	c->rep[i].st = REP_STALE;
	c->rep[i].stale_tag = tag;
	if (c->stale_ms)
		return;
	unsigned shift = c->stale_tries < 8 ? c->stale_tries : 8;
	c->stale_ms = n->now_ms + ((uint64_t)CNODE_STALE_RETRY_MS << shift);
	cnode_arm(n, c->stale_ms);
}

/* The request again from its start in the keyspace's current epoch: a new
 * req_id (late replies of the old round are dropped), a fresh read, and so
 * a fresh dot. Only when the old round wrote nothing: a flush (coord_redo
 * from coord_flushed), or a checked write over an unreadable copy of ours
 * (coord_local_failed; c->unchecked: not checked again). */
static void coord_restart(struct cnode *n, struct coord *c)
{
	struct creq *rq = c->rq;
	DV_ASSERT(rq && !c->answered && !c->cas.busy && !c->widen);
	if (c->decided) {
		/* An RMW whose decide() ran on the old round's read: it runs
		 * once (node.h), and its outcome was of that read; nothing was
		 * written (this function's callers), so: not applied. */
		coord_finish(n, c, CNODE_EFLUSHED, ERR_FLUSHED);
		return;
	}
	coord_new_round(n, c);
	cas_free_enc(n, &c->cas);
	c->indet = c->wrote = c->counter = false;
	c->checked = c->uncovered = false;
	c->local_err = 0;
	c->val = (struct dvv_value){.data = rq->val_len ? rq->value : empty_bytes, .len = rq->val_len,
				    .expire_ms = rq->expire_ms};
	if (!flush_ready(n, c->ks)) {
		c->phase = PH_HELD; /* a flush record being written: coord_release_held */
		return;
	}
	c->phase = PH_READ;
	coord_begin(n, c);
}

static void coord_redo(struct cnode *n, struct coord *c)
{
	n->st.flush_redos++;
	coord_restart(n, c);
}

/* A checked write short of its quorum because replicas answered UNCOVERED
 * (they hold versions our copy lacked), our own PUT over. Its version may
 * be stored (and read) somewhere already, so it gets no second dot (a
 * value read, superseded, then back under a new dot would be one write
 * applied twice): a read of the key at R (clock only; late replies of the
 * checked round dropped with a new req_id), then the same version with the
 * clock of what the read found (coord_widen_write). */
static void coord_widen_start(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->checked && c->wrote && c->rq && !c->answered && !c->cas.busy);
	n->st.checked_fallbacks++;
	coord_new_round(n, c);
	c->checked = c->uncovered = false;
	c->widen = true;
	coord_read_start(n, c, true);
}

/* The widening read met R: the checked round's version (c->cas.enc, one
 * value, our dot) with its clock joined with what the read found, to every
 * replica through the replica path (our own copy included: no new dot to
 * mint), W of them to confirm. Where the read saw the value superseded
 * already (a client read it and wrote over it), it is left so: the answer
 * says it may or may not have been applied. */
static void coord_widen_write(struct cnode *n, struct coord *c)
{
	DV_ASSERT(c->widen && c->wrote && c->cas.enc);
	struct dvv sent, wide;
	int rc = dvv_decode(&sent, c->cas.enc, c->cas.meta_len, c->cas.enc + c->cas.meta_len, c->cas.vals_len);
	DV_ASSERT(rc == 0 && sent.nvals == 1); /* our own encoding of a checked write */
	const struct dvv *found = &c->merged.d;
	struct dvv zeroed;
	if (n->cfg.test_broken_widen) {
		zeroed = c->merged.d; /* the mutation check: every value found below ours */
		for (unsigned i = 0; i < zeroed.nvals; i++)
			zeroed.v[i].ts = 0;
		found = &zeroed;
	}
	rc = dvv_widen(&wide, &sent, found);
	if (rc != 0) {
		coord_finish(n, c, CNODE_ERACED, ERR_WIDEN); /* indeterminate (coord_answer) */
		return;
	}
	cnode_prune(n, c->skey, c->skey_len, &wide);
	if (cnode_encode(n, &wide, &c->cas.enc, &c->cas.enc_bytes, &c->cas.meta_len, &c->cas.vals_len) != 0) {
		coord_finish(n, c, -ENOMEM, ERR_NOMEM);
		return;
	}
	c->phase = PH_ACKS;
	for (unsigned i = 0; i < c->nrep && c->phase == PH_ACKS; i++)
		coord_send_put(n, c, i);
	if (c->phase == PH_ACKS)
		coord_write_progress(n, c);
}

/* This node's epoch of the keyspace is newer than the request's: this
 * round is over. A round that wrote nothing yet is redone (a forwarded
 * write answers STALE: its origin redoes it). One that wrote (short of W)
 * went to nodes in its epoch only (every node refuses another's, I7), so
 * its copies lie below each one's next flush point: dead there once
 * stamped up to that flush's until (I8; until only grows, and a node that
 * jumps to a later flush kills at least as much, within flush_skew_ms). It
 * is not redone: its value may have been read in the old epoch, and a
 * second dot of it in the new one would outlive what superseded the first
 * (a context write of that read). It is OK, ordered before the flush,
 * when every replica holds it or has this flush and its context is of the
 * old epoch; else (a replica still in the old epoch may serve what it
 * superseded until it flushes; a context of after the flush orders it
 * after it) CNODE_EFLUSHED: nothing of it is left. Stamped past until (a node that
 * learns the flush late keeps it): may or may not have been applied. */
static void coord_flushed(struct cnode *n, struct coord *c)
{
	DV_ASSERT(!c->answered && (!c->cas.busy || c->wrote)); /* a write's local PUT may still run */
	if (c->widen && c->phase == PH_READ) {
		/* A checked round wrote in the old epoch, then its widening read
		 * met the flush: not redone (a round that wrote); dead when
		 * stamped up to the flush's until. */
		c->indet = c->wrote_ts > n->flush[c->ks].until;
		coord_finish(n, c, c->indet ? CNODE_EFLUSHED_MAYBE : CNODE_EFLUSHED,
			     c->indet ? ERR_FLUSHED_MAYBE : ERR_FLUSHED_GONE);
		return;
	}
	if (c->wrote && c->wrote_ts > n->flush[c->ks].until) {
		c->indet = true;
		coord_finish(n, c, CNODE_EFLUSHED_MAYBE, ERR_FLUSHED_MAYBE);
		return;
	}
	if (c->wrote) {
		/* Every replica holds it (acknowledged in the old epoch) or has
		 * this very flush (it serves nothing of before it): a read of the
		 * old epoch sees it, one of the new sees neither it nor what it
		 * superseded. OK, ordered before the flush. Decided once every
		 * answer is in (coord_write_progress calls again), or at the
		 * deadline: a replica that never answers (dead, its session not
		 * yet ended; coord_peer_down fails it when it ends) counts as
		 * not known to have the flush. */
		if (coord_awaiting_live(n, c) && n->now_ms < c->deadline_ms)
			return;
		/* Not when its context may come from after the flush: a client's
		 * (DYN_PUT, DYN_DEL; a forwarded write's origin may have had one),
		 * read on a node that had the flush. A read-then-write read in the
		 * old epoch only. Nor for a checked write (its widening read is a
		 * read-then-write's): its context is our own copy alone, no
		 * quorum's, so a write acknowledged after the flush may have been
		 * over before it began, and "before the flush" would order it
		 * before that write. */
		bool all = c->rq && (c->op == COP_READ_WRITE || c->ctx.n == 0) && !c->checked;
		for (unsigned i = 0; i < c->nrep; i++)
			all &= c->rep[i].st == REP_OK ||
			       (c->rep[i].st == REP_STALE && c->rep[i].stale_tag == n->flush[c->ks].tag);
		if (all)
			coord_finish(n, c, 0, NULL);
		else
			coord_finish(n, c, CNODE_EFLUSHED, ERR_FLUSHED_GONE); /* fwd_status: FLUSHED, not redone */
		return;
	}
	if (!c->rq) {
		coord_finish(n, c, CAS_FLUSHED, ERR_FLUSHED); /* fwd_status: STALE */
		return;
	}
	if (c->flush_rounds >= CNODE_FLUSH_ROUNDS_MAX) {
		coord_finish(n, c, CNODE_EFLUSHED, ERR_FLUSHED_ROUNDS);
		return;
	}
	c->flush_rounds++;
	coord_redo(n, c);
}

/* Replicas answered STALE in this phase and are to be asked again. */
static bool coord_stale_waits(const struct coord *c)
{
	return c->stale_ms && (c->phase == PH_READ || c->phase == PH_ACKS || c->phase == PH_FWD);
}

/* stale_ms, or a newer flush applied here (coord_release_held). */
static void coord_stale_retry(struct cnode *n, struct coord *c)
{
	DV_ASSERT(coord_stale_waits(c));
	cnode_arm(n, c->deadline_ms);
	c->stale_ms = 0;
	if (n->flush[c->ks].tag != c->epoch) {
		coord_flushed(n, c);
		return;
	}
	if (c->stale_tries < UINT8_MAX)
		c->stale_tries++;
	if (c->phase == PH_FWD) {
		coord_redo(n, c); /* the target wrote nothing; a new FWD_PUT needs a new req_id */
		return;
	}
	for (unsigned i = 0; i < c->nrep; i++) {
		if (c->rep[i].st != REP_STALE)
			continue;
		c->rep[i].st = REP_IDLE;
		if (c->phase == PH_ACKS) {
			coord_send_put(n, c, i); /* the same version: merging it again changes nothing */
			continue;
		}
		coord_send_get(n, c, i);
	}
	if (c->phase == PH_ACKS)
		coord_write_progress(n, c);
	else
		coord_read_progress(n, c);
}

/* The deadline with replicas still in another epoch: not a timeout. */
static void coord_stale_expire(struct cnode *n, struct coord *c)
{
	if (c->wrote && c->phase == PH_ACKS) {
		c->indet = true;
		coord_finish(n, c, CNODE_EFLUSHED_MAYBE, ERR_FLUSHED_MAYBE);
	} else {
		coord_finish(n, c, CNODE_EFLUSHED, ERR_FLUSHED);
	}
}

/* ---- entry points ---- */

int coord_submit(struct cnode *n, struct creq *rq)
{
	DV_ASSERT(n->in_submit && rq->done);
	struct coord *c = coord_alloc(n);
	if (!c) {
		n->st.busy_refusals++;
		return -EAGAIN;
	}
	rq->priv = c;
	rq->result = 0;
	rq->err = NULL;
	rq->found = false;
	rq->val = NULL;
	rq->val_len_out = 0;
	rq->val_expire_ms = 0;
	rq->nsiblings = 0;
	rq->ctx_out[0] = 0;
	rq->ctx_out_len = 0;
	rq->counter = 0;
	rq->next_cursor = 0;
	rq->nkeys = 0;
	rq->keys = NULL;
	c->rq = rq;
	coord_setup(n, c, rq->keyspace, rq->key, rq->key_len);
	c->r = rq->r ? rq->r : n->ks_r[rq->keyspace];
	c->w = rq->w ? rq->w : n->ks_w[rq->keyspace];
	if (rq->timeout_ms)
		c->deadline_ms = n->now_ms + rq->timeout_ms;
	cnode_arm(n, c->deadline_ms);
	c->val = (struct dvv_value){.data = rq->val_len ? rq->value : empty_bytes, .len = rq->val_len,
				    .expire_ms = rq->expire_ms};
	if (!flush_ready(n, c->ks)) {
		c->phase = PH_HELD; /* I7: starts once the keyspace is ready (coord_release_held) */
		return 0;
	}
	coord_begin(n, c);
	return 0;
}

/* I10: the request's context was read after a flush this node lacks. */
static bool coord_ctx_ahead(const struct cnode *n, const struct coord *c)
{
	return c->ctx_flush > n->flush[c->ks].id;
}

/* I10: hold it until the flush is learned (coord_release_held), asking
 * the peers' flush state meanwhile, or fail it with nothing written
 * (CNODE_EBEHIND): as soon as every peer it asked has answered without
 * that flush (coord_behind_answered), else after CNODE_BEHIND_HOLD_MS
 * (coord_expire; at most its deadline). A held request holds its key's
 * later writes on this node behind it, so it waits no longer than a
 * flush takes to learn from a peer that has it. */
static void coord_hold_behind(struct cnode *n, struct coord *c)
{
	DV_ASSERT(!c->wrote && c->op == COP_WRITE);
	c->phase = PH_HELD;
	n->st.ctx_flush_holds++;
	c->behind_wait = n->peer_up & ~(1ull << n->self_peer);
	uint64_t until = n->now_ms + CNODE_BEHIND_HOLD_MS;
	c->behind_until_ms = until < c->deadline_ms ? until : c->deadline_ms;
	flush_ask_peers(n);
	uint64_t ask = n->now_ms + CNODE_ASK_STATE_MS;
	cnode_arm(n, ask < c->behind_until_ms ? ask : c->behind_until_ms);
}

void coord_behind_answered(struct cnode *n, unsigned pi, const uint64_t *ids)
{
	uint64_t bound = 3ull * n->cfg.requests_max + 1;
	struct coord *c = n->open_head;
	for (uint64_t i = 0; c; i++) {
		DV_ASSERT(i < bound);
		struct coord *next = c->next; /* coord_finish frees c */
		if (c->phase == PH_HELD && coord_ctx_ahead(n, c) && (c->behind_wait >> pi & 1) &&
		    (!ids || ids[c->ks] < c->ctx_flush)) {
			c->behind_wait &= ~(1ull << pi);
			if (!c->behind_wait)
				coord_finish(n, c, CNODE_EBEHIND, ERR_BEHIND);
		}
		c = next;
	}
}

void coord_release_held(struct cnode *n)
{
	uint64_t bound = 3ull * n->cfg.requests_max + 1;
	struct coord *c = n->open_head;
	for (uint64_t i = 0; c; i++) {
		DV_ASSERT(i < bound);
		struct coord *next = c->next;
		if (c->phase == PH_HELD && flush_ready(n, c->ks) && !coord_ctx_ahead(n, c)) {
			/* The request may finish in coord_begin and free c: next
			 * was taken first, and requests coord_begin appends are
			 * visited too (they are not held). */
			coord_begin(n, c);
		} else if (coord_stale_waits(c) && c->epoch != n->flush[c->ks].tag && flush_ready(n, c->ks)) {
			coord_stale_retry(n, c); /* a newer flush here: redone at once */
		}
		c = next;
	}
}

/* Whether a plain SET is a checked write (the header's "Checked
 * writes"): cfg.checked_sets, a siblings keyspace, no NX/XX, this node a replica of the key,
 * a session with every other replica (a silent one would hold the write
 * to its deadline, where a read would ask another replica), and the key
 * not contended lately (writes racing through other coordinators: a
 * checked write that loses a race may end indeterminate, a read-then-
 * write never does; coord_note_contended). */
static bool coord_can_check(const struct cnode *n, const struct coord *c, const struct creq *rq)
{
	if (!n->cfg.checked_sets || rq->kind != CREQ_SET || rq->cond != CREQ_ALWAYS || c->policy != DVV_SIBLINGS ||
	    !c->has_self || c->unchecked)
		return false;
	const unsigned slot = (unsigned)(c->khash & (CNODE_CONTENDED_SLOTS - 1));
	if (n->contended[slot].hash == c->khash && n->now_ms < n->contended[slot].until_ms)
		return false;
	for (unsigned i = 0; i < c->nrep; i++)
		if (!c->rep[i].self && !(n->peer_up >> c->rep[i].peer & 1))
			return false;
	return true;
}

void coord_begin(struct cnode *n, struct coord *c)
{
	struct creq *rq = c->rq;
	DV_ASSERT(rq && (c->phase == PH_READ || c->phase == PH_HELD) && flush_ready(n, c->ks));
	c->epoch = n->flush[c->ks].tag; /* a held request runs in the epoch it starts in */
	switch (rq->kind) {
	case CREQ_GET:
	case CREQ_DYN_GET:
		c->op = COP_READ;
		coord_read_start(n, c, false);
		break;
	case CREQ_RMW:
	case CREQ_INCR:
		c->op = COP_READ_WRITE;
		coord_read_start(n, c, false);
		break;
	case CREQ_SCAN:
		c->op = COP_SCAN;
		scan_submit(n, c);
		break;
	case CREQ_SET:
	case CREQ_DEL:
		if (rq->kind == CREQ_SET && c->policy == DVV_LWW && rq->cond == CREQ_ALWAYS) {
			c->op = COP_WRITE; /* last write wins: nothing to read first */
			coord_write_start(n, c);
			break;
		}
		c->op = COP_READ_WRITE;
		if (coord_can_check(n, c, rq)) {
			c->checked = true; /* its replicas check in place of the read */
			n->st.checked_writes++;
			coord_write_start(n, c);
			break;
		}
		coord_read_start(n, c, true);
		break;
	case CREQ_DYN_PUT:
	case CREQ_DYN_DEL: {
		c->op = COP_WRITE;
		if (rq->kind == CREQ_DYN_DEL)
			c->val = tomb;
		int rc = dvv_ctx_decode(rq->ctx_len ? rq->ctx : "", rq->ctx_len, n->cfg.cluster_id, n->cfg.ctx_key,
					c->skey, c->skey_len, &c->ctx, &c->ctx_flush);
		if (rc != 0)
			coord_finish(n, c, rc == -EXDEV ? -EXDEV : -EINVAL, rc == -EXDEV ? ERR_CTX_XDEV : ERR_CTX_BAD);
		else if (coord_ctx_ahead(n, c))
			coord_hold_behind(n, c);
		else
			coord_write_start(n, c);
		break;
	}
	default:
		DV_ASSERT(!"a request kind the coordinator does not run");
	}
}

/* FWD_PUT duplicates: 1 seen (drop), -1 older than the window (refuse),
 * 0 new (now recorded). */
static void window_shift(uint64_t *bits, uint64_t shift)
{
	const unsigned words = CNODE_FWD_WINDOW / 64;
	if (shift >= CNODE_FWD_WINDOW) {
		memset(bits, 0, words * sizeof(*bits));
		return;
	}
	unsigned ws = (unsigned)(shift / 64), bs = (unsigned)(shift % 64);
	for (unsigned k = words; k-- > 0;) {
		uint64_t v = 0;
		if (k >= ws) {
			v = bits[k - ws] << bs;
			if (bs && k > ws)
				v |= bits[k - ws - 1] >> (64 - bs);
		}
		bits[k] = v;
	}
}

static int fwd_seen(struct cpeer *p, uint64_t id)
{
	if (id > p->fwd_max) {
		window_shift(p->fwd_bits, id - p->fwd_max);
		p->fwd_bits[0] |= 1;
		p->fwd_max = id;
		return 0;
	}
	uint64_t back = p->fwd_max - id;
	if (back >= CNODE_FWD_WINDOW)
		return -1;
	uint64_t bit = 1ull << (back % 64);
	if (p->fwd_bits[back / 64] & bit)
		return 1;
	p->fwd_bits[back / 64] |= bit;
	return 0;
}

static uint8_t fwd_admit(struct cnode *n, const struct msg *m)
{
	if (m->key_len < 1 || m->key_len - 1u > CNODE_KEY_BYTES_MAX || !cnode_ks_ok(n, m->key[0]))
		return MSG_ST_BAD;
	if (m->w > n->ks_n[m->key[0]] || m->vals_len > DV_VALUE_BYTES_MAX)
		return MSG_ST_BAD;
	if (n->cfg.ks[m->key[0]].policy != DVV_SIBLINGS)
		return MSG_ST_BAD; /* LWW writes are never forwarded */
	if (!cnode_budget_ok(n, m->vals_len))
		return MSG_ST_BUSY;
	return MSG_ST_OK;
}

void coord_on_fwd(struct cnode *n, uint16_t from, const struct msg *m)
{
	uint16_t pi = cnode_peer_index(n, from);
	DV_ASSERT(pi != CNODE_PEER_NONE && m->type == MSG_FWD_PUT);
	int seen = fwd_seen(&n->peers[pi], m->req_id);
	if (seen > 0)
		return; /* a duplicate: the first copy is (or was) coordinated */
	uint8_t st = seen < 0 ? MSG_ST_BUSY : fwd_admit(n, m);
	if (st == MSG_ST_OK)
		flush_admit(n, m->key[0], m->epoch, from, &st); /* I7 */
	struct coord *c = NULL;
	if (st == MSG_ST_OK && !(c = coord_alloc(n)))
		st = MSG_ST_BUSY;
	if (st != MSG_ST_OK) {
		n->st.busy_refusals += st == MSG_ST_BUSY;
		fwd_reply(n, m->key_len ? m->key[0] : 0xff, from, m->req_id, st);
		return;
	}
	c->fwd_from = from;
	c->fwd_req_id = m->req_id;
	c->op = COP_WRITE;
	coord_setup(n, c, m->key[0], m->key + 1, m->key_len - 1u);
	c->r = n->ks_r[c->ks];
	c->w = m->w ? m->w : n->ks_w[c->ks];
	if (m->timeout_ms)
		c->deadline_ms = n->now_ms + m->timeout_ms;
	cnode_arm(n, c->deadline_ms);
	if (!c->has_self) {
		coord_finish(n, c, -ENXIO, ERR_NOT_REPLICA);
		return;
	}
	msg_ctx_get(m, &c->ctx);
	if (m->val_flags == DVV_VAL_COUNTER) {
		/* A forwarded INCR: the forwarder's read state and the delta;
		 * coord_update merges, adds with our actor and encodes. */
		if (counter_decode(&c->cstate, m->vals, m->vals_len) != 0) {
			coord_finish(n, c, -EINVAL, ERR_FWD_BAD);
			return;
		}
		c->counter = true;
		c->delta = (int64_t)m->delta;
		c->val = (struct dvv_value){.data = c->cbuf, .len = counter_bytes(&c->cstate), .flags = DVV_VAL_COUNTER,
					    .expire_ms = m->expire_ms};
		coord_write_start(n, c);
		return;
	}
	if (m->vals_len) {
		c->val_copy = cnode_alloc(n, m->vals_len);
		if (!c->val_copy) {
			coord_finish(n, c, -ENOMEM, ERR_NOMEM);
			return;
		}
		c->val_copy_bytes = m->vals_len;
		memcpy(c->val_copy, m->vals, m->vals_len);
	}
	c->val = (struct dvv_value){.data = m->vals_len ? c->val_copy : empty_bytes, .len = m->vals_len,
				    .flags = (uint8_t)(m->val_flags & DVV_VAL_TOMB), .expire_ms = m->expire_ms};
	coord_write_start(n, c);
}

void coord_on_reply(struct cnode *n, uint16_t from, const struct msg *m)
{
	struct coord *c = cnode_ht_get(n, m->req_id);
	if (!c || c->phase == PH_DUE || c->phase == PH_ZOMBIE)
		return; /* late: the request is over */
	unsigned i = 0;
	while (i < c->nrep && c->rep[i].node != from)
		i++;
	if (i == c->nrep || c->rep[i].st != REP_SENT || c->rep[i].expect != m->type)
		return; /* not asked, already answered (a duplicate), or another phase's */
	cnode_untrack(n, c, i); /* the peer's slot is free again */
	coord_note_reply(n, c, i, m->type);
	flush_note_epoch(n, c->ks, m->epoch, from);
	switch (m->type) {
	case MSG_SCAN_REPLY:
		scan_on_reply(n, c, i, m);
		break;
	case MSG_REPL_GET_REPLY:
		coord_read_reply(n, c, i, m);
		break;
	case MSG_REPL_PUT_ACK:
		DV_ASSERT(c->phase == PH_ACKS);
		if (m->status == MSG_ST_STALE) {
			coord_note_stale(n, c, i, m->epoch);
			break;
		}
		c->rep[i].st = m->status == MSG_ST_OK ? REP_OK : REP_FAIL;
		c->rep[i].full = m->status == MSG_ST_FULL;
		if (m->status == MSG_ST_UNCOVERED && c->checked) {
			c->uncovered = true; /* stored there, but not a check passed: coord_widen_start */
			coord_note_contended(n, c);
		}
		coord_write_progress(n, c);
		break;
	case MSG_FWD_PUT_REPLY:
		coord_fwd_reply(n, c, i, m);
		break;
	default:
		DV_ASSERT(!"not a reply type");
	}
}

static void coord_expire(struct cnode *n, struct coord *c)
{
	uint64_t now = n->now_ms;
	switch (c->phase) {
	case PH_READ:
	case PH_LOCAL:
	case PH_ACKS:
	case PH_FWD:
		if (c->phase == PH_READ && c->spec_ms) {
			if (now >= c->spec_ms && now < c->deadline_ms) {
				coord_read_spec(n, c);
				break;
			}
			cnode_arm(n, c->spec_ms); /* kept whatever this visit does */
		}
		if (coord_stale_waits(c) && now >= c->stale_ms && now < c->deadline_ms) {
			coord_stale_retry(n, c);
			break;
		}
		if (now < c->deadline_ms) {
			cnode_arm(n, c->deadline_ms);
			if (coord_stale_waits(c))
				cnode_arm(n, c->stale_ms);
			break;
		}
		if (coord_stale_waits(c)) {
			coord_stale_expire(n, c);
			break;
		}
		if (c->phase == PH_ACKS && c->wrote && n->flush[c->ks].tag != c->epoch) {
			coord_flushed(n, c); /* over by the flush, an answer missing: not a timeout */
			break;
		}
		if (c->phase == PH_READ) {
			coord_read_failed(n, c, ERR_READ_TIMEOUT);
			break;
		}
		coord_finish(n, c, -ETIMEDOUT,
			     c->phase == PH_READ  ? ERR_READ_TIMEOUT
			     : c->phase == PH_FWD ? ERR_FWD_TIMEOUT
						  : ERR_WRITE_TIMEOUT);
		break;
	case PH_REPAIR:
		if (now < c->repair_ms)
			cnode_arm(n, c->repair_ms);
		else
			coord_repair(n, c);
		break;
	case PH_DUE:
		cnode_arm(n, now);
		break;
	case PH_HELD: {
		bool ahead = coord_ctx_ahead(n, c);
		if (ahead && now >= c->behind_until_ms) {
			coord_finish(n, c, CNODE_EBEHIND, ERR_BEHIND);
		} else if (ahead) {
			flush_ask_peers(n); /* the answer may have been lost, or a session came up */
			uint64_t ask = now + CNODE_ASK_STATE_MS;
			cnode_arm(n, ask < c->behind_until_ms ? ask : c->behind_until_ms);
		} else if (now < c->deadline_ms)
			cnode_arm(n, c->deadline_ms);
		else if (c->flush_rounds)
			coord_finish(n, c, CNODE_EFLUSHED, ERR_FLUSHED); /* redone, then another flush held it */
		else
			coord_finish(n, c, -ETIMEDOUT, ERR_NOT_READY);
		break;
	}
	case PH_SCAN:
		scan_expire(n, c);
		break;
	default: /* PH_ZOMBIE waits for its store op */
		DV_ASSERT(c->phase == PH_ZOMBIE && c->cas.busy);
		break;
	}
}

/* Peer's session ended: a read waiting on it asks another replica in its
 * place (its own request to the peer stays pending: the answer may still
 * come). A write round that a flush has ended (it wrote in
 * the old epoch) and that waits only for that peer's answers decides now
 * (coord_flushed) instead of at its deadline. Other requests are left as
 * before (the peer's answers cost them their deadline or a read repair). */
void coord_peer_down(struct cnode *n, uint16_t peer)
{
	uint64_t bound = 3ull * n->cfg.requests_max + 1;
	struct coord *c = n->open_head;
	for (uint64_t k = 0; c; k++) {
		DV_ASSERT(k < bound);
		struct coord *next = c->next;
		if (c->phase == PH_READ) {
			for (unsigned i = 0; i < c->nrep; i++) {
				const struct crep *r = &c->rep[i];
				if (!r->self && r->node == peer && (r->st == REP_SENT || r->st == REP_QUEUED)) {
					coord_read_progress(n, c); /* it is not live now: another replica is asked */
					break;
				}
			}
		} else if (!c->answered && c->phase == PH_ACKS && c->wrote &&
			   (n->flush[c->ks].tag != c->epoch || c->checked)) {
			/* (A checked write decides now, not at its deadline: W
			 * without the peer, or a fall back to a read if another
			 * replica answered UNCOVERED.) */
			bool hit = false;
			for (unsigned i = 0; i < c->nrep; i++) {
				struct crep *r = &c->rep[i];
				if (r->self || r->node != peer || (r->st != REP_SENT && r->st != REP_QUEUED))
					continue;
				cnode_untrack(n, c, i);
				r->st = REP_FAIL;
				hit = true;
			}
			if (hit)
				coord_write_progress(n, c);
		}
		c = next;
	}
}

void coord_tick(struct cnode *n)
{
	n->next_deadline = UINT64_MAX;
	/* Each open request is visited once; requests submitted by done()
	 * calls meanwhile are appended and visited too (they only arm). */
	uint64_t bound = 3ull * n->cfg.requests_max + 1;
	struct coord *c = n->open_head;
	for (uint64_t i = 0; c; i++) {
		DV_ASSERT(i < bound);
		struct coord *next = c->next;
		coord_expire(n, c);
		c = next;
	}
}
