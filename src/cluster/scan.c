/* scan.c - SCAN on a cluster (node.h), and the start-up key count.
 *
 * A cursor is a key-hash position: keys are returned in hash order, a
 * partition (a contiguous hash range, ring.h) after the other. One call
 * (a coord in PH_SCAN, struct cscan) reads one page of the cursor's
 * partition from N - W + 1 of its replicas, so a write acknowledged by W
 * replicas is on at least one of them:
 *
 *   scan_submit ──> page: SCAN(ks, limit, pos, end of partition) to N-W+1 replicas
 *        ^              │  (ours through scan_replica, the others tracked)
 *        │              │  a replica refusing, failing or silent past the page
 *        │              │  deadline: ask the next one of the list, from the same pos
 *        │              v
 *        │      every one answered: cut = the least "next" of those not done;
 *        │      keys = their union below the cut, deduplicated
 *        │              │
 *        └── partition done and fewer keys than asked (64 partitions a call at
 *            most): the next partition      else: answer, next cursor = the cut
 *                                           (0 after the last partition)
 *   fewer than N-W+1 replicas can answer: -ETIMEDOUT (the cursor stays good)
 *
 * A replica silent past a page deadline is asked last by every call for
 * SCAN_SLOW_TIMEOUTS timeouts (scan_note_slow): one that is up but silent
 * keeps its session, and a walk of many calls would otherwise wait a page
 * deadline in each call that asked it.
 *
 * So a key present (a visible value) for the whole scan is returned at
 * least once whatever replicas fail: the page after a failure starts from
 * the same position on another replica, and every page's replica set meets
 * every write quorum. A key may be returned more than once (Redis allows
 * it), e.g. by two pages that saw different cuts.
 *
 * The replica (struct rscan, scan_replica): one store_scan of [pos, end]
 * at a time (the store runs one), the others queued in order (at most
 * CNODE_RSCANS_MAX, then BUSY). It keeps the `limit` keys of smallest hash
 * that have a visible value (I8: values of records below the flush point
 * are dead) in a max-heap, and `cut` = the least hash it had to leave out:
 * it answers the kept keys below the cut, next = cut (done when nothing was
 * left out). A key written while the store scan runs may be seen with
 * neither record (store.h: the old one replaced when it is read, the new
 * one not among the locations taken at the start); every write of this
 * store is the cnode's own, so the keys its writes leave visible while a
 * scan is running or answering are kept too (scan_note_write), and the
 * answer waits for the next cnode_tick: a write that replaced a record
 * before the scan ended has its done() by then (the store delivers it in
 * the poll that ended the scan). The start-up count (scan_count_start) is a scan of the whole
 * hash space in the same queue, counting keys with a visible value per
 * keyspace (n->ks_count, which writes then keep up to date: an estimate).
 * It counts each key once, in the state it had before its first write
 * during the scan (scan_count_note_write, at the write's submission; the
 * write's own delta goes to n->ks_count): the store may visit a key more
 * than once, or with the record a write during the scan left (store.h),
 * and counting those visits too counted a key written then twice (DBSIZE
 * 3 for 2 keys). The hashes it accounted for cost 16 to 32 bytes per key
 * while it runs (a table grown at half full, on the event loop: about
 * 0.5 s to grow past 9M keys, measured), outside the node's memory budget;
 * without the memory it counts every visit, as before. While it runs,
 * n->ks_count holds only the writes' deltas and may go below 0 (a delete
 * of a key the scan counts); it is clamped once the tally is added.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/node_int.h"

#define CNODE_RSCANS_MAX 16u     /* replica scans queued at once */
#define SCAN_PARTS_PER_CALL 64u  /* partitions one SCAN call may walk */
#define SCAN_SLOW_TIMEOUTS 2u    /* a replica silent past a page deadline is asked last for this many timeouts */

static const char ERR_SCAN_SHORT[] =
	"fewer than N-W+1 replicas of a partition answered the scan (retry with the same cursor)";
static const char ERR_SCAN_TIMEOUT[] = "the scan timed out (retry with the same cursor)";
static const char ERR_SCAN_NOMEM[] = "out of memory for the scan";

/* ---- the replica ---- */

struct rkey {
	uint64_t hash;
	uint16_t len;
	uint8_t *p; /* a slot of MSG_SCAN_KEY_MAX bytes in rscan.slots */
};

/* A set of 64-bit key hashes, open addressing (0 marks a free slot; a hash
 * of 0 is taken as 1), grown at half full. Out of memory it is dropped and
 * answers HSET_NONE from then on. */
struct hset {
	uint64_t *slot;
	uint64_t cap, used; /* cap: 0 or a power of two */
	bool failed;
};

enum { HSET_NONE = -1, HSET_PRESENT = 0, HSET_ADDED = 1 };

static void hset_free(struct hset *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->used = 0;
}

/* The slot holding h, or the free one where it goes (linear probing). */
static uint64_t hset_slot(const uint64_t *slot, uint64_t cap, uint64_t h)
{
	uint64_t i = (h * 0x9E3779B97F4A7C15ull) & (cap - 1);
	while (slot[i] != 0 && slot[i] != h)
		i = (i + 1) & (cap - 1);
	return i;
}

static int hset_add(struct hset *s, uint64_t h)
{
	if (s->failed)
		return HSET_NONE;
	h = h ? h : 1;
	if (2 * (s->used + 1) > s->cap) {
		uint64_t cap = s->cap ? 2 * s->cap : 1024;
		uint64_t *slot = calloc(cap, sizeof(*slot));
		if (!slot) {
			hset_free(s);
			s->failed = true;
			return HSET_NONE;
		}
		for (uint64_t i = 0; i < s->cap; i++)
			if (s->slot[i])
				slot[hset_slot(slot, cap, s->slot[i])] = s->slot[i];
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	uint64_t i = hset_slot(s->slot, s->cap, h);
	if (s->slot[i] == h)
		return HSET_PRESENT;
	s->slot[i] = h;
	s->used++;
	return HSET_ADDED;
}

struct rscan {
	struct rscan *next;
	struct cnode *n;
	bool count;          /* the start-up count, not a SCAN request */
	int err;             /* the store scan's, once it finished (on n->rscan_ended) */
	uint16_t from;
	uint64_t req_id;
	uint8_t ks;
	uint16_t limit;
	uint64_t pos, end;
	uint32_t epoch;
	uint64_t cut;        /* the least hash of a key left out (UINT64_MAX: none) */
	uint32_t nkept;
	struct rkey *heap;   /* max-heap by hash, limit entries */
	uint8_t *slots;
	uint64_t bytes;      /* heap and slots (budget) */
	uint64_t counted[CNODE_KEYSPACES_MAX];
	struct hset accounted; /* the start-up count: hashes of the keys it counted (top comment) */
};

static void heap_down(struct rkey *h, uint32_t n, uint32_t i)
{
	for (unsigned k = 0; k < 32; k++) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && h[l].hash > h[m].hash)
			m = l;
		if (r < n && h[r].hash > h[m].hash)
			m = r;
		if (m == i)
			return;
		struct rkey t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
	DV_ASSERT(!"heap deeper than 32");
}

static void heap_up(struct rkey *h, uint32_t i)
{
	for (unsigned k = 0; k < 32 && i > 0; k++) {
		uint32_t p = (i - 1) / 2;
		if (h[p].hash >= h[i].hash)
			return;
		struct rkey t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

/* The record has a value plain commands see (add-wins, I8). */
static bool record_visible(const struct cnode *n, uint8_t ks, const struct store_record_out *rec)
{
	struct dvv d;
	if (dvv_decode_clock(&d, rec->meta, rec->meta_len) != 0)
		return false; /* damaged: a read reports it, a scan skips it */
	flush_filter(n, ks, rec->seq, &d);
	return dvv_visible(&d, n->now_ms, NULL, 0) > 0;
}

static void keep(struct rscan *r, uint64_t hash, const uint8_t *key, uint16_t len)
{
	if (r->nkept < r->limit) {
		struct rkey *k = &r->heap[r->nkept];
		k->hash = hash;
		k->len = len;
		memcpy(k->p, key, len);
		heap_up(r->heap, r->nkept++);
		return;
	}
	if (hash >= r->heap[0].hash) {
		r->cut = hash < r->cut ? hash : r->cut;
		return;
	}
	/* Out goes the greatest kept: the cut moves down to it. */
	r->cut = r->heap[0].hash < r->cut ? r->heap[0].hash : r->cut;
	r->heap[0].hash = hash;
	r->heap[0].len = len;
	memcpy(r->heap[0].p, key, len);
	heap_down(r->heap, r->nkept, 0);
}

static bool rscan_visit(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	struct rscan *r = arg;
	const uint8_t *k = key;
	if (key_len < 1 || k[0] >= CNODE_KEYSPACES_MAX || !cnode_ks_ok(r->n, k[0]))
		return true; /* the metadata keyspace, or one not defined here */
	if (r->count) {
		if (hset_add(&r->accounted, store_key_hash(key, key_len)) != HSET_PRESENT)
			r->counted[k[0]] += record_visible(r->n, k[0], rec);
		return true;
	}
	if (k[0] != r->ks || key_len - 1u > MSG_SCAN_KEY_MAX)
		return true;
	uint64_t h = store_key_hash(key, key_len);
	if (h < r->pos || h > r->end || h >= r->cut || !record_visible(r->n, r->ks, rec))
		return true;
	keep(r, h, k + 1, (uint16_t)(key_len - 1u));
	return true;
}

static int rkey_cmp(const void *a, const void *b)
{
	const struct rkey *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->p, y->p, x->len);
}

static void rscan_free(struct cnode *n, struct rscan *r)
{
	hset_free(&r->accounted);
	cnode_release(n, r->heap, r->bytes);
	free(r);
}

static void scan_pump(struct cnode *n);

/* The page's answer: kept keys below the cut, sorted and once each. */
static void rscan_reply(struct cnode *n, struct rscan *r, int err)
{
	struct msg m;
	cnode_msg_init(n, &m, MSG_SCAN_REPLY, r->from, r->req_id);
	m.epoch = n->flush[r->ks].tag;
	uint8_t *buf = NULL;
	uint64_t buf_bytes = 0;
	if (err || r->epoch != n->flush[r->ks].tag) {
		m.status = err ? MSG_ST_FAILED : MSG_ST_STALE;
	} else {
		if (r->nkept > 1) /* r->heap may be NULL when empty: qsort must not see it */
			qsort(r->heap, r->nkept, sizeof(*r->heap), rkey_cmp);
		uint64_t cut = r->cut;
		bool none_below = r->nkept > 0 && r->heap[0].hash >= cut;
		if (none_below)
			cut = cut + 1; /* more than limit keys share one 64-bit hash: the rest are skipped */
		uint32_t nsend = r->nkept;
		if (n->cfg.test_broken_scan && r->nkept == r->limit && r->cut != UINT64_MAX && nsend > 1)
			nsend--; /* the mutation check: the page's last key left out, the cursor past it */
		buf_bytes = (uint64_t)r->nkept * (2u + MSG_SCAN_KEY_MAX) + 1;
		buf = cnode_alloc(n, buf_bytes);
		if (!buf) {
			m.status = MSG_ST_BUSY;
		} else {
			m.status = MSG_ST_OK;
			m.keys = buf;
			for (uint32_t i = 0; i < nsend; i++) {
				const struct rkey *k = &r->heap[i];
				if (k->hash >= cut || (i > 0 && rkey_cmp(k, &r->heap[i - 1]) == 0))
					continue;
				m.keys_len += msg_scan_key_put(buf + m.keys_len, k->p, k->len);
				m.nkeys++;
			}
			m.done = r->cut == UINT64_MAX ? 1 : 0;
			m.next = m.done ? 0 : cut;
			n->st.scans_served++;
		}
	}
	if (r->from == n->cfg.node_id)
		coord_on_reply(n, r->from, &m);
	else
		cnode_send(n, &m);
	cnode_release(n, buf, buf_bytes);
}

static void rscan_finish(void *arg, int err)
{
	struct rscan *r = arg;
	struct cnode *n = r->n;
	DV_ASSERT(n->scanning && n->rscan_head == r);
	n->scanning = false;
	n->rscan_head = r->next;
	if (!n->rscan_head)
		n->rscan_tail = NULL;
	if (r->count) {
		n->rscans--;
		for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++) {
			n->ks_count[ks] += (int64_t)r->counted[ks];
			n->ks_count[ks] = n->ks_count[ks] > 0 ? n->ks_count[ks] : 0;
		}
		n->count_scanned = true;
		n->count_scan = NULL;
		rscan_free(n, r);
	} else {
		/* Answered at the next tick, once the writes done in this poll
		 * are noted (the top comment); still counted in rscans. */
		r->err = err;
		r->next = n->rscan_ended;
		n->rscan_ended = r;
		cnode_arm(n, n->now_ms);
	}
	scan_pump(n);
}

/* The scans that ended: their answers. */
static void rscan_answer_ended(struct cnode *n)
{
	for (unsigned i = 0; n->rscan_ended && i <= CNODE_RSCANS_MAX; i++) {
		struct rscan *r = n->rscan_ended;
		n->rscan_ended = r->next;
		DV_ASSERT(n->rscans > 0);
		n->rscans--;
		rscan_reply(n, r, r->err);
		rscan_free(n, r);
	}
	DV_ASSERT(!n->rscan_ended);
}

static void note_one(struct rscan *r, uint8_t ks, uint64_t h, const uint8_t *key, uint32_t key_len)
{
	if (r->count || r->ks != ks || key_len - 1u > MSG_SCAN_KEY_MAX || h < r->pos || h > r->end || h >= r->cut)
		return;
	keep(r, h, key + 1, (uint16_t)(key_len - 1u));
}

void scan_note_write(struct cnode *n, const uint8_t *key, uint32_t key_len)
{
	DV_ASSERT(key_len >= 1);
	if ((!n->scanning && !n->rscan_ended) || key[0] >= CNODE_KEYSPACES_MAX)
		return;
	uint64_t h = store_key_hash(key, key_len);
	if (n->scanning)
		note_one(n->rscan_head, key[0], h, key, key_len);
	for (struct rscan *r = n->rscan_ended; r; r = r->next)
		note_one(r, key[0], h, key, key_len);
}

/* Start the queue's head when the store runs no scan of ours. */
static void scan_pump(struct cnode *n)
{
	for (unsigned tries = 0; !n->scanning && n->rscan_head && tries < CNODE_RSCANS_MAX + 1; tries++) {
		struct rscan *r = n->rscan_head;
		int err = store_scan(n->s, r->pos, r->end, rscan_visit, rscan_finish, r);
		if (err == 0) {
			n->scanning = true;
			return;
		}
		if (err == -EBUSY)
			return; /* another scan of the store (not ours): cnode_tick tries again */
		/* Refused for good: answer it failed, go on with the next. */
		n->scanning = true;
		rscan_finish(r, err);
		return;
	}
}

static struct rscan *rscan_new(struct cnode *n, uint16_t limit)
{
	uint64_t bytes = (uint64_t)limit * (sizeof(struct rkey) + MSG_SCAN_KEY_MAX);
	if (n->rscans >= CNODE_RSCANS_MAX || (bytes && !cnode_budget_ok(n, bytes)))
		return NULL;
	struct rscan *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (bytes) {
		r->heap = cnode_alloc(n, bytes);
		if (!r->heap) {
			free(r);
			return NULL;
		}
		r->bytes = bytes;
		r->slots = (uint8_t *)(r->heap + limit);
		for (uint32_t i = 0; i < limit; i++)
			r->heap[i].p = r->slots + (size_t)i * MSG_SCAN_KEY_MAX;
	}
	r->n = n;
	r->limit = limit;
	r->cut = UINT64_MAX;
	return r;
}

static void rscan_queue(struct cnode *n, struct rscan *r)
{
	r->next = NULL;
	if (n->rscan_tail)
		n->rscan_tail->next = r;
	else
		n->rscan_head = r;
	n->rscan_tail = r;
	n->rscans++;
	scan_pump(n);
}

int scan_replica(struct cnode *n, const struct msg *m)
{
	DV_ASSERT(m->type == MSG_SCAN);
	uint8_t st = MSG_ST_OK;
	if (!cnode_ks_ok(n, m->keyspace))
		st = MSG_ST_BAD;
	else
		flush_admit(n, m->keyspace, m->epoch, m->from, &st); /* I7: sets st when it refuses */
	struct rscan *r = NULL;
	if (st == MSG_ST_OK && !(r = rscan_new(n, m->limit)))
		st = MSG_ST_BUSY;
	if (st != MSG_ST_OK) {
		n->st.busy_refusals += st == MSG_ST_BUSY;
		if (m->from != n->cfg.node_id) {
			struct msg rep;
			cnode_msg_init(n, &rep, MSG_SCAN_REPLY, m->from, m->req_id);
			rep.status = st;
			rep.epoch = cnode_ks_ok(n, m->keyspace) ? n->flush[m->keyspace].tag : 0;
			cnode_send(n, &rep);
		}
		return st;
	}
	r->from = m->from;
	r->req_id = m->req_id;
	r->ks = m->keyspace;
	r->pos = m->pos;
	r->end = m->end;
	r->epoch = m->epoch;
	rscan_queue(n, r);
	return MSG_ST_OK;
}

void scan_count_start(struct cnode *n)
{
	struct rscan *r = rscan_new(n, 0);
	if (!r)
		return; /* the counts start from 0: DBSIZE is an estimate */
	r->count = true;
	r->pos = 0;
	r->end = UINT64_MAX;
	n->count_scan = r;
	rscan_queue(n, r);
}

void scan_count_flushed(struct cnode *n, uint8_t ks)
{
	DV_ASSERT(ks < CNODE_KEYSPACES_MAX);
	if (n->count_scan)
		n->count_scan->counted[ks] = 0;
}

void scan_count_note_write(struct cnode *n, const uint8_t *key, uint32_t key_len, bool was_visible)
{
	struct rscan *r = n->count_scan;
	DV_ASSERT(key_len >= 1);
	if (!r || key[0] >= CNODE_KEYSPACES_MAX)
		return;
	if (hset_add(&r->accounted, store_key_hash(key, key_len)) == HSET_ADDED)
		r->counted[key[0]] += was_visible;
}

bool scan_idle(const struct cnode *n) { return !n->scanning && !n->rscan_head && !n->rscan_ended; }

void scan_tick(struct cnode *n)
{
	rscan_answer_ended(n);
	scan_pump(n);
}

void scan_replica_free_all(struct cnode *n)
{
	/* The store was drained (a scan of ours finishes with the drain) or
	 * failed: store_close frees its scan without calling back. */
	while (n->rscan_head) {
		struct rscan *r = n->rscan_head;
		n->rscan_head = r->next;
		rscan_free(n, r);
	}
	while (n->rscan_ended) {
		struct rscan *r = n->rscan_ended;
		n->rscan_ended = r->next;
		rscan_free(n, r);
	}
	n->rscan_tail = NULL;
	n->rscans = 0;
	n->scanning = false;
	n->count_scan = NULL;
}

/* ---- the coordinator ---- */

struct cscan_rep {
	uint8_t state;       /* 0 not asked, 1 asked, 2 answered OK, 3 failed */
	uint8_t done;
	uint64_t next;
	uint8_t *keys;       /* the reply's key records (owned) */
	uint32_t keys_len;
	uint16_t nkeys;
};

struct cscan {
	uint32_t part;
	uint64_t pos, end;
	unsigned want, parts;
	uint64_t failed;     /* nodes (ring index bits) that failed a page of this call: asked last */
	uint64_t page_deadline;
	struct cscan_rep rep[RING_N_MAX];
	/* The answer so far: key bytes and views into them. */
	uint8_t *out;
	uint64_t out_len, out_cap;
	struct cnode_key *keys;
	uint32_t nkeys, keys_cap;
	uint64_t bytes; /* budget: out + keys */
};

static void rep_clear(struct cnode *n, struct cscan_rep *r)
{
	cnode_release(n, r->keys, r->keys_len ? r->keys_len : 0);
	memset(r, 0, sizeof(*r));
}

void scan_free(struct cnode *n, struct coord *c)
{
	struct cscan *sc = c->scan;
	for (unsigned i = 0; i < RING_N_MAX; i++)
		rep_clear(n, &sc->rep[i]);
	cnode_release(n, sc->out, sc->out_cap);
	cnode_release(n, sc->keys, (uint64_t)sc->keys_cap * sizeof(*sc->keys));
	free(sc);
	c->scan = NULL;
}

/* The partition of pos: its replicas (c->rep) and its end, under a new
 * request id: a late or duplicated answer of the partition before (the
 * same replica, the same message type) must not be taken for this one's. */
static void scan_partition(struct cnode *n, struct coord *c, uint64_t pos)
{
	struct cscan *sc = c->scan;
	DV_ASSERT(cnode_ht_get(n, c->req_id) == c); /* I1 */
	cnode_ht_del(n, c->req_id);
	c->req_id = cnode_new_req_id(n);
	cnode_ht_put(n, c->req_id, c);
	sc->part = ring_partition(&n->ring, pos);
	sc->pos = pos;
	uint32_t q = n->ring.q;
	unsigned bits = (unsigned)__builtin_ctz(q);
	sc->end = bits == 0 ? UINT64_MAX : (((uint64_t)sc->part + 1) << (64 - bits)) - 1;
	DV_ASSERT(pos <= sc->end && ring_partition(&n->ring, sc->end) == sc->part);
	uint16_t pref[RING_N_MAX];
	unsigned cnt = ring_preflist(&n->ring, sc->part, c->nrep, pref);
	DV_ASSERT(cnt == c->nrep);
	/* Our own copy first (a local scan costs no message), then the nodes
	 * with a session that did not fail a page of this call and did not
	 * leave one unanswered lately (scan_note_slow), then the rest: a
	 * silent replica costs one page deadline per call, and with a session
	 * (stopped, swamped: it never goes down) one per SCAN_SLOW_TIMEOUTS
	 * timeouts of the node, not one per call of a walk. */
	uint16_t ordered[RING_N_MAX];
	unsigned k = 0;
	for (unsigned pass = 0; pass < 3; pass++) {
		for (unsigned i = 0; i < cnt; i++) {
			uint16_t pi = cnode_peer_index(n, pref[i]);
			bool self = pref[i] == n->cfg.node_id;
			bool good = !self && (n->peer_up >> pi & 1) && !(sc->failed >> pi & 1) &&
				    n->now_ms >= n->peers[pi].scan_slow_until;
			if ((pass == 0 && self) || (pass == 1 && good) || (pass == 2 && !self && !good))
				ordered[k++] = pref[i];
		}
	}
	DV_ASSERT(k == cnt);
	memcpy(pref, ordered, cnt * sizeof(pref[0]));
	for (unsigned i = 0; i < cnt; i++) {
		struct crep *r = &c->rep[i];
		cnode_untrack(n, c, i);
		rep_clear(n, &sc->rep[i]);
		r->node = pref[i];
		r->self = pref[i] == n->cfg.node_id;
		r->peer = r->self ? CNODE_PEER_NONE : cnode_peer_index(n, pref[i]);
		r->st = REP_IDLE;
		r->bad = false;
	}
}

/* Peer pi left a page unanswered past its deadline: later calls ask it
 * last for a while (scan_partition), so a walk over many partitions goes
 * to the replicas that answer at once. An answer from it clears that. */
static void scan_note_slow(struct cnode *n, uint16_t pi, bool slow)
{
	if (pi == CNODE_PEER_NONE)
		return;
	n->peers[pi].scan_slow_until = slow ? n->now_ms + (uint64_t)SCAN_SLOW_TIMEOUTS * n->cfg.timeout_ms : 0;
}

static void scan_ask(struct cnode *n, struct coord *c, unsigned i)
{
	struct cscan *sc = c->scan;
	struct msg m;
	uint32_t left = c->rq->count > sc->nkeys ? c->rq->count - sc->nkeys : 1;
	cnode_msg_init(n, &m, MSG_SCAN, c->rep[i].node, c->req_id);
	m.epoch = c->epoch;
	m.keyspace = c->ks;
	m.limit = (uint16_t)(left < MSG_SCAN_KEYS_MAX ? left : MSG_SCAN_KEYS_MAX);
	m.pos = sc->pos;
	m.end = sc->end;
	sc->rep[i].state = 1;
	struct crep *r = &c->rep[i];
	DV_ASSERT(r->st == REP_IDLE);
	if (r->self) {
		r->expect = MSG_SCAN_REPLY;
		r->st = REP_SENT;
		if (scan_replica(n, &m) != MSG_ST_OK) {
			r->st = REP_FAIL;
			sc->rep[i].state = 3;
		}
		return;
	}
	if (cnode_send_tracked(n, c, i, &m) != 0) {
		r->st = REP_FAIL;
		sc->rep[i].state = 3;
	}
}

static unsigned count_state(const struct cscan *sc, unsigned nrep, uint8_t state)
{
	unsigned k = 0;
	for (unsigned i = 0; i < nrep; i++)
		k += sc->rep[i].state == state;
	return k;
}

static void scan_page(struct cnode *n, struct coord *c);
static void scan_progress(struct cnode *n, struct coord *c);

/* Ask replicas until want of them are asked or answered, while any is left. */
static void scan_fill(struct cnode *n, struct coord *c)
{
	struct cscan *sc = c->scan;
	for (unsigned i = 0; i < c->nrep; i++) {
		unsigned busy = count_state(sc, c->nrep, 1) + count_state(sc, c->nrep, 2);
		if (busy >= sc->want)
			break;
		if (sc->rep[i].state == 0)
			scan_ask(n, c, i);
	}
}

static void scan_page(struct cnode *n, struct coord *c)
{
	struct cscan *sc = c->scan;
	sc->page_deadline = n->now_ms + (n->cfg.timeout_ms / 4 ? n->cfg.timeout_ms / 4 : 1);
	if (sc->page_deadline > c->deadline_ms)
		sc->page_deadline = c->deadline_ms;
	cnode_arm(n, sc->page_deadline);
	scan_fill(n, c);
	scan_progress(n, c);
}

int scan_submit(struct cnode *n, struct coord *c)
{
	struct cscan *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		coord_complete(n, c, -ENOMEM, ERR_SCAN_NOMEM);
		return 0;
	}
	c->scan = sc;
	c->phase = PH_SCAN;
	sc->want = c->nrep - c->w + 1u; /* meets every write quorum */
	DV_ASSERT(sc->want >= 1 && sc->want <= c->nrep);
	scan_partition(n, c, c->rq->cursor);
	scan_page(n, c);
	return 0;
}

static int add_key(struct cnode *n, struct cscan *sc, const uint8_t *key, uint16_t len)
{
	if (sc->out_len + len > sc->out_cap || sc->nkeys == sc->keys_cap)
		return -ENOMEM; /* sized by scan_merge before */
	memcpy(sc->out + sc->out_len, key, len);
	sc->keys[sc->nkeys].p = NULL; /* set once out stops moving */
	sc->keys[sc->nkeys].len = len;
	sc->out_len += len;
	sc->nkeys++;
	DV_UNUSED(n);
	return 0;
}

struct mkey {
	uint64_t hash;
	const uint8_t *p;
	uint16_t len;
};

static int mkey_cmp(const void *a, const void *b)
{
	const struct mkey *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->p, y->p, x->len);
}

/* Grow the answer's buffers by at least keys / bytes more. */
static int grow(struct cnode *n, struct cscan *sc, uint32_t keys, uint64_t bytes)
{
	if (sc->nkeys + keys > sc->keys_cap) {
		uint32_t cap = sc->nkeys + keys;
		struct cnode_key *k = cnode_alloc(n, (uint64_t)cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		if (sc->nkeys)
			memcpy(k, sc->keys, sc->nkeys * sizeof(*k));
		cnode_release(n, sc->keys, (uint64_t)sc->keys_cap * sizeof(*sc->keys));
		sc->keys = k;
		sc->keys_cap = cap;
	}
	if (sc->out_len + bytes > sc->out_cap && bytes) {
		uint64_t cap = sc->out_len + bytes;
		uint8_t *o = cnode_alloc(n, cap);
		if (!o)
			return -ENOMEM;
		if (sc->out_len)
			memcpy(o, sc->out, sc->out_len);
		cnode_release(n, sc->out, sc->out_cap);
		sc->out = o;
		sc->out_cap = cap;
	}
	return 0;
}

/* Every asked replica answered: the union of their keys below the cut.
 * Returns the next position, and *done when the partition is finished. */
static int scan_merge(struct cnode *n, struct coord *c, uint64_t *next, bool *done)
{
	struct cscan *sc = c->scan;
	uint64_t cut = UINT64_MAX;
	*done = true;
	uint32_t total = 0;
	uint64_t bytes = 0;
	for (unsigned i = 0; i < c->nrep; i++) {
		const struct cscan_rep *r = &sc->rep[i];
		if (r->state != 2)
			continue;
		total += r->nkeys;
		bytes += r->keys_len;
		if (!r->done) {
			*done = false;
			cut = r->next < cut ? r->next : cut;
		}
	}
	struct mkey *all = total ? malloc(total * sizeof(*all)) : NULL;
	if (total && !all)
		return -ENOMEM;
	uint32_t k = 0;
	uint8_t skey[DV_KEY_BYTES_MAX];
	for (unsigned i = 0; i < c->nrep; i++) {
		const struct cscan_rep *r = &sc->rep[i];
		if (r->state != 2)
			continue;
		struct msg v = {.type = MSG_SCAN_REPLY, .keys = r->keys, .keys_len = r->keys_len, .nkeys = r->nkeys};
		uint32_t off = 0;
		const uint8_t *key;
		uint16_t len;
		while (msg_scan_key(&v, &off, &key, &len)) {
			DV_ASSERT(k < total);
			uint32_t sl = cnode_store_key(c->ks, key, len, skey);
			uint64_t h = store_key_hash(skey, sl);
			if (!*done && h >= cut)
				continue;
			all[k++] = (struct mkey){.hash = h, .p = key, .len = len};
		}
	}
	if (k > 1) /* all may be NULL when no key came: qsort must not see it */
		qsort(all, k, sizeof(*all), mkey_cmp);
	int rc = grow(n, sc, k, bytes);
	for (uint32_t i = 0; rc == 0 && i < k; i++)
		if (i == 0 || mkey_cmp(&all[i], &all[i - 1]) != 0)
			rc = add_key(n, sc, all[i].p, all[i].len);
	free(all);
	*next = cut;
	return rc;
}

static void scan_answer(struct cnode *n, struct coord *c, uint64_t next_cursor)
{
	struct cscan *sc = c->scan;
	uint64_t off = 0;
	for (uint32_t i = 0; i < sc->nkeys; i++) { /* out no longer moves */
		sc->keys[i].p = sc->out + off;
		off += sc->keys[i].len;
	}
	c->rq->keys = sc->keys;
	c->rq->nkeys = sc->nkeys;
	c->rq->next_cursor = next_cursor;
	coord_complete(n, c, 0, NULL);
}

static void scan_progress(struct cnode *n, struct coord *c)
{
	struct cscan *sc = c->scan;
	unsigned ok = count_state(sc, c->nrep, 2), asked = count_state(sc, c->nrep, 1);
	unsigned fresh = count_state(sc, c->nrep, 0);
	if (ok + asked + fresh < sc->want) {
		coord_complete(n, c, -ETIMEDOUT, ERR_SCAN_SHORT);
		return;
	}
	if (ok < sc->want)
		return; /* waiting */
	uint64_t next;
	bool done;
	if (scan_merge(n, c, &next, &done) != 0) {
		coord_complete(n, c, -ENOMEM, ERR_SCAN_NOMEM);
		return;
	}
	if (!done && next <= sc->pos) {
		coord_complete(n, c, -EPROTO, ERR_SCAN_SHORT); /* a replica that made no progress */
		return;
	}
	bool last = sc->part + 1 == n->ring.q;
	if (!done) {
		scan_answer(n, c, next);
		return;
	}
	if (last) {
		scan_answer(n, c, 0);
		return;
	}
	uint64_t after = sc->end + 1;
	if (sc->nkeys >= c->rq->count || ++sc->parts >= SCAN_PARTS_PER_CALL) {
		scan_answer(n, c, after);
		return;
	}
	scan_partition(n, c, after); /* the next partition, same call */
	scan_page(n, c);
}

void scan_on_reply(struct cnode *n, struct coord *c, unsigned i, const struct msg *m)
{
	struct cscan *sc = c->scan;
	DV_ASSERT(c->phase == PH_SCAN && sc && sc->rep[i].state == 1);
	struct cscan_rep *r = &sc->rep[i];
	c->rep[i].st = REP_OK;
	if (m->status != MSG_ST_OK) {
		r->state = 3;
		c->rep[i].st = REP_FAIL;
		sc->failed |= 1ull << cnode_peer_index(n, c->rep[i].node);
	} else {
		r->keys = m->keys_len ? cnode_alloc(n, m->keys_len) : NULL;
		if (m->keys_len && !r->keys) {
			r->state = 3;
			c->rep[i].st = REP_FAIL;
		} else {
			if (m->keys_len)
				memcpy(r->keys, m->keys, m->keys_len);
			if (!c->rep[i].self)
				scan_note_slow(n, c->rep[i].peer, false);
			r->keys_len = m->keys_len;
			r->nkeys = m->nkeys;
			r->done = m->done;
			r->next = m->next;
			r->state = 2;
		}
	}
	scan_fill(n, c); /* a failure: another replica, same position */
	scan_progress(n, c);
}

void scan_expire(struct cnode *n, struct coord *c)
{
	struct cscan *sc = c->scan;
	if (n->now_ms >= c->deadline_ms) {
		/* Out of time: what the earlier partitions gave is an answer, the
		 * cursor at this page's start; nothing at all is a timeout. */
		if (sc->parts > 0)
			scan_answer(n, c, sc->pos);
		else
			coord_complete(n, c, -ETIMEDOUT, ERR_SCAN_TIMEOUT);
		return;
	}
	if (n->now_ms >= sc->page_deadline) {
		/* The silent ones count as failed: others go on from the same position. */
		for (unsigned i = 0; i < c->nrep; i++) {
			if (sc->rep[i].state == 1) {
				cnode_untrack(n, c, i);
				c->rep[i].st = REP_FAIL;
				sc->rep[i].state = 3;
				uint16_t pi = cnode_peer_index(n, c->rep[i].node);
				if (pi != CNODE_PEER_NONE)
					sc->failed |= 1ull << pi;
				scan_note_slow(n, pi, true);
			}
		}
		sc->page_deadline = c->deadline_ms;
		cnode_arm(n, c->deadline_ms); /* the call's own deadline from here on */
		scan_fill(n, c);
		scan_progress(n, c);
		return;
	}
	cnode_arm(n, sc->page_deadline);
}
