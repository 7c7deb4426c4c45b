/* engine.c - the store's host-thread side: arrival order in, results out.
 *
 * An eop's life (host thread after engine_submit):
 *
 *   inbox --take--> backlog --store_submit--> store --done()--> out[sink] --flush--> sink
 *                      ^                                  |
 *                      +---- RMW next phase or retry -----+
 *
 * Invariants:
 * 1. in_flight counts eops taken from the inbox and not yet flushed back.
 * 2. An eop is in exactly one of: inbox, backlog, a key lock's wait list
 *    (a write behind an RMW of its key), store, out list.
 * 3. The backlog keeps arrival order; it only holds eops the store refused
 *    with -EAGAIN (too many in flight), RMW steps, writes let go by a key
 *    lock and active expiry's deletes, so it is bounded by what the network
 *    threads admit (max-pipeline per client) and EXPIRY_OPS_MAX.
 * 4. A key is held by at most one RMW (lock_admit); the writes of a held
 *    key that the engine took later are on the holder's wait list, in
 *    arrival order.
 */
#include "server/engine.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "base/hash.h"
#include "server/config.h"
#include "server/expiry.h"
#include "server/vcache.h"

#define ENGINE_SINKS_MAX (CONFIG_THREADS_MAX + 1u)
#define ENGINE_TURN_ROUNDS_MAX 8u
#define ENGINE_CACHE_PENDING_MAX 1024u
#define EXPIRY_PER_TURN_MAX 256u
#define EXPIRY_OPS_MAX 4096u          /* the engine's own deletes in flight */
#define EXPIRY_SCAN_SLICE_KEYS 4096u  /* index entries one expiry scan step aims at: a short hold of the store's one scan */
#define EXPIRY_SCAN_SLICES_MAX 65536u
#define EXPIRY_SCAN_GAP_MS 100u       /* between two steps */
#define EXPIRY_SCAN_CYCLE_GAP_MS 1000u /* between two passes, at least (and at least a pass's time) */
#define ENGINE_LOCK_BUCKETS 4096u     /* keys held by an RMW: chained hash of the holders */

struct out_chain {
	struct eop_sink *sink;
	struct mpsc_node *first, *last;
};

struct engine {
	struct store *s;
	struct mpsc inbox;
	struct waker *host;
	struct mpsc_node *backlog_head, *backlog_tail;
	uint64_t in_flight;
	struct out_chain out[ENGINE_SINKS_MAX];
	unsigned out_count;
	struct vcache *cache;
	bool backlog_blocked; /* the store refused the backlog's head (-EAGAIN) */
	/* Finished writes whose cache update is due (cache_flush). */
	struct eop *cache_pending[ENGINE_CACHE_PENDING_MAX];
	int cache_pending_res[ENGINE_CACHE_PENDING_MAX];
	unsigned cache_npending;
	/* Active expiry: the keys with an expiry (expiry.h), and a scan of the
	 * store for those it does not hold (see "active expiry"). */
	struct expiry *exp;
	uint64_t exp_untracked, exp_deleted;
	uint32_t exp_own;         /* the engine's own deletes in flight */
	uint64_t exp_missed;      /* keys with an expiry not kept so far */
	uint64_t exp_pass_missed; /* exp_missed when the current pass began */
	bool exp_scan_wanted;     /* a pass is needed (or running) */
	bool exp_scanning;        /* a slice's store scan is running */
	bool exp_slice_cut;       /* the last slice stopped early: it runs again */
	uint32_t exp_slices, exp_slice; /* the current pass: slices, the next one */
	uint64_t exp_next_ms, exp_pass_start_ms;
	bool draining;            /* engine_drain(): no new active expiry work */
	/* Cluster mode: eops go to the router instead of the store. */
	engine_route_fn route;
	void *route_arg;
	/* SCAN steps: one store scan at a time, the others wait in order. */
	struct mpsc_node *scan_head, *scan_tail;
	struct eop *scan_op;      /* the step being scanned */
	uint64_t scan_hi;         /* its end */
	char *scan_buf;           /* its keys so far */
	size_t scan_len, scan_cap;
	uint32_t scan_nkeys;
	int scan_err;
	/* FLUSH ops in the store: until they are done the cache answers
	 * nothing (a write before the flush may put a value in it). */
	uint32_t flushes;
	/* RMWs holding their key (engine.h), by key hash. */
	struct eop *locks[ENGINE_LOCK_BUCKETS];
	uint64_t locks_held;
	/* Hand-back rounds (engine_round). */
	uint64_t round;
	_Atomic uint64_t round_published;
};

static struct eop *eop_of(struct mpsc_node *n) { return (struct eop *)((char *)n - offsetof(struct eop, link)); }
static struct eop *eop_of_sop(struct store_op *op) { return (struct eop *)((char *)op - offsetof(struct eop, sop)); }

static void eop_store_done(struct store_op *op);

int eop_init_key(struct eop *e, enum eop_kind kind, int prefix, const void *key, uint32_t key_len,
		 const void *val, uint32_t val_len)
{
	DV_ASSERT(kind >= EOP_GET && kind <= EOP_FLUSH && prefix < 256);
	memset(e, 0, offsetof(struct eop, inl));
	e->kind = kind;
	uint32_t pre = prefix >= 0 ? 1 : 0;
	size_t bytes = (size_t)pre + key_len + val_len;
	e->kv = bytes <= sizeof(e->inl) ? e->inl : malloc(bytes ? bytes : 1);
	if (!e->kv)
		return -ENOMEM;
	if (pre)
		e->kv[0] = (char)prefix;
	if (key_len)
		memcpy(e->kv + pre, key, key_len);
	if (val_len && val)
		memcpy(e->kv + pre + key_len, val, val_len);
	key_len += pre;
	e->kv_len = (uint32_t)bytes;
	e->sop.key = e->kv;
	e->sop.key_len = key_len;
	e->sop.value = e->kv + key_len;
	e->sop.val_len = val_len;
	e->sop.kind = kind == EOP_PUT ? STORE_PUT : kind == EOP_DEL ? STORE_DEL : kind == EOP_FLUSH ? STORE_FLUSH
											       : STORE_GET;
	e->sop.done = eop_store_done;
	return 0;
}

int eop_init(struct eop *e, enum eop_kind kind, const void *key, uint32_t key_len, const void *val,
	     uint32_t val_len)
{
	return eop_init_key(e, kind, -1, key, key_len, val, val_len);
}

void eop_drop_result(struct eop *e)
{
	if (e->meta && (e->meta < e->inl || e->meta >= e->inl + sizeof(e->inl)))
		free(e->meta);
	e->meta = e->val = NULL;
	e->meta_len = e->val_len = 0;
	e->found = false;
}

void eop_release(struct eop *e)
{
	eop_drop_result(e);
	if (e->kv && e->kv != e->inl)
		free(e->kv);
	e->kv = NULL;
}

int eop_keep_alloc(struct eop *e, size_t meta_len, size_t val_len)
{
	DV_ASSERT(e->meta == NULL && meta_len <= UINT32_MAX && val_len <= UINT32_MAX);
	size_t bytes = meta_len + val_len;
	size_t inl_used = e->kv == e->inl ? e->kv_len : 0;
	char *block = bytes <= sizeof(e->inl) - inl_used ? e->inl + inl_used : malloc(bytes ? bytes : 1);
	if (!block)
		return -ENOMEM;
	e->meta = block;
	e->meta_len = (uint32_t)meta_len;
	e->val = block + meta_len;
	e->val_len = (uint32_t)val_len;
	e->found = true;
	return 0;
}

/* Copy what a read returned: meta (RMW only) then value, in one block.
 * A GET with no_value copies neither; one with a budget only what fits. */
static int eop_keep_result(struct eop *e, const struct store_record_out *r)
{
	DV_ASSERT(r->val_len <= DV_VALUE_BYTES_MAX);
	uint32_t meta_len = e->kind == EOP_RMW ? r->meta_len : 0;
	uint32_t val_len = e->no_value ? 0 : r->val_len;
	if (e->budget) {
		if (e->budget->over || val_len > e->budget->left) {
			e->budget->over = true;
			return -E2BIG;
		}
		e->budget->left -= val_len;
	}
	int err = eop_keep_alloc(e, meta_len, val_len);
	if (err)
		return err;
	if (meta_len) /* meta and value may be NULL when empty */
		memcpy(e->meta, r->meta, meta_len);
	if (val_len)
		memcpy(e->val, r->value, val_len);
	e->seq = r->seq;
	e->expire_ms = r->expire_ms;
	e->rec_val_len = r->val_len;
	return 0;
}

int eop_resize_value(struct eop *e, uint32_t len)
{
	uint32_t meta_len = e->found ? e->meta_len : 0;
	uint32_t keep = !e->found ? 0 : e->val_len < len ? e->val_len : len;
	char *block = malloc((size_t)meta_len + len + 1);
	if (!block)
		return -ENOMEM;
	if (meta_len)
		memcpy(block, e->meta, meta_len);
	if (keep)
		memcpy(block + meta_len, e->val, keep);
	memset(block + meta_len + keep, 0, len - keep);
	bool found = e->found;
	eop_drop_result(e);
	e->meta = block;
	e->meta_len = meta_len;
	e->val = block + meta_len;
	e->val_len = len;
	e->found = found;
	return 0;
}

int eop_set_found(struct eop *e, const void *val, uint32_t val_len, uint64_t seq, uint64_t expire_ms)
{
	DV_ASSERT(e->kind == EOP_GET && !e->found && e->budget == NULL);
	struct store_record_out r = {.value = val, .val_len = val_len, .seq = seq, .expire_ms = expire_ms};
	return eop_keep_result(e, &r);
}

int eop_keep_read(struct eop *e, const void *val, uint32_t val_len, uint64_t expire_ms)
{
	DV_ASSERT(!e->found && e->meta == NULL);
	struct store_record_out r = {.value = val, .val_len = val_len, .expire_ms = expire_ms};
	return eop_keep_result(e, &r);
}

int engine_open(struct engine **out, struct store *s, struct waker *host_waker, uint64_t cache_bytes)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	int err = vcache_open(&e->cache, cache_bytes);
	if (err) {
		free(e);
		return err;
	}
	err = expiry_open(&e->exp, EXPIRY_KEYS_MAX, EXPIRY_BYTES_MAX);
	if (err) {
		vcache_close(e->cache);
		free(e);
		return err;
	}
	e->s = s;
	e->host = host_waker;
	struct store_stats st;
	store_get_stats(s, &st);
	e->exp_scan_wanted = st.keys > st.tombstones; /* keys from before: their expiries are found by a scan */
	*out = e;
	return 0;
}

void engine_set_expiry_bounds(struct engine *e, uint32_t keys_max, uint64_t bytes_max)
{
	expiry_set_bounds(e->exp, keys_max, bytes_max);
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	DV_ASSERT(e->in_flight == 0);
	DV_ASSERT(e->exp_own == 0 && !e->exp_scanning);
	vcache_close(e->cache);
	free(e->scan_buf);
	expiry_close(e->exp);
	free(e);
}

void engine_submit(struct engine *e, struct eop *first, struct eop *last)
{
	mpsc_push_chain(&e->inbox, &first->link, &last->link);
	waker_kick(e->host);
}

static void backlog_push(struct engine *e, struct eop *op)
{
	op->link.next = NULL;
	if (e->backlog_tail)
		e->backlog_tail->next = &op->link;
	else
		e->backlog_head = &op->link;
	e->backlog_tail = &op->link;
}

static void lock_release(struct engine *e, struct eop *op);

static void finish(struct engine *e, struct eop *op, int result)
{
	if (op->lock_held)
		lock_release(e, op);
	op->result = result;
	op->link.next = NULL;
	atomic_store_explicit(&op->finished_round, e->round + 1, memory_order_relaxed); /* published by flush_out */
	if (!op->sink) { /* the engine's own (active expiry) */
		DV_ASSERT(e->exp_own > 0);
		e->exp_own--;
		e->exp_deleted += result == -DV_ENOTFOUND; /* a DEL of an expired value */
		eop_release(op);
		free(op);
		return;
	}
	struct out_chain *c = NULL;
	for (unsigned i = 0; i < e->out_count; i++)
		if (e->out[i].sink == op->sink)
			c = &e->out[i];
	if (!c) {
		DV_ASSERT(e->out_count < ENGINE_SINKS_MAX);
		c = &e->out[e->out_count++];
		*c = (struct out_chain){.sink = op->sink};
	}
	if (c->last)
		c->last->next = &op->link;
	else
		c->first = &op->link;
	c->last = &op->link;
}

static void flush_out(struct engine *e)
{
	/* Before any push: a thread that takes one of these eops back (or
	 * learns of it from one that did) sees the round, and so the
	 * finished_round of every eop finished up to it. */
	e->round++;
	atomic_store_explicit(&e->round_published, e->round, memory_order_release);
	for (unsigned i = 0; i < e->out_count; i++) {
		struct out_chain *c = &e->out[i];
		for (struct mpsc_node *n = c->first; n; n = n == c->last ? NULL : n->next) {
			DV_ASSERT(e->in_flight > 0);
			e->in_flight--;
		}
		mpsc_push_chain(&c->sink->done, c->first, c->last);
		waker_kick(c->sink->waker);
	}
	e->out_count = 0;
}

/* ---- one read-modify-write of a key at a time (engine.h) ---- */

static bool eop_writes(const struct eop *op) { return op->kind == EOP_PUT || op->kind == EOP_DEL || op->kind == EOP_RMW; }

static struct eop **lock_bucket(struct engine *e, uint64_t h) { return &e->locks[h % ENGINE_LOCK_BUCKETS]; }

/* The RMW holding op's key, or NULL. */
static struct eop *lock_holder(struct engine *e, const struct eop *op, uint64_t h)
{
	for (struct eop *x = *lock_bucket(e, h); x; x = x->lock_next)
		if (x->lock_hash == h && x->sop.key_len == op->sop.key_len &&
		    memcmp(x->sop.key, op->sop.key, op->sop.key_len) == 0)
			return x;
	return NULL;
}

static void lock_take(struct engine *e, struct eop *op, uint64_t h, struct eop *first, struct eop *last)
{
	DV_ASSERT(op->kind == EOP_RMW && !op->lock_held);
	struct eop **b = lock_bucket(e, h);
	op->lock_held = true;
	op->lock_hash = h;
	op->lock_next = *b;
	op->lock_first = first;
	op->lock_last = last;
	*b = op;
	e->locks_held++;
}

/* An op the engine takes (from the inbox, or its own): true when it goes
 * on now, false when it waits behind the RMW holding its key. An RMW that
 * goes on takes its key. */
static bool lock_admit(struct engine *e, struct eop *op)
{
	if (!eop_writes(op))
		return true;
	uint64_t h = dv_key_hash64(op->sop.key, op->sop.key_len);
	struct eop *holder = e->locks_held ? lock_holder(e, op, h) : NULL;
	if (holder) {
		op->link.next = NULL;
		if (holder->lock_last)
			holder->lock_last->link.next = &op->link;
		else
			holder->lock_first = op;
		holder->lock_last = op;
		return false;
	}
	if (op->kind == EOP_RMW)
		lock_take(e, op, h, NULL, NULL);
	return true;
}

/* op, an RMW holding its key, is finished: the writes that waited behind
 * it go on in order, up to the next RMW, which takes the key with the
 * rest of them. */
static void lock_release(struct engine *e, struct eop *op)
{
	struct eop **p = lock_bucket(e, op->lock_hash);
	while (*p != op) {
		DV_ASSERT(*p != NULL);
		p = &(*p)->lock_next;
	}
	*p = op->lock_next;
	op->lock_held = false;
	DV_ASSERT(e->locks_held > 0);
	e->locks_held--;
	for (struct eop *w = op->lock_first, *next; w; w = next) {
		next = w == op->lock_last ? NULL : eop_of(w->link.next);
		if (w->kind == EOP_RMW) {
			lock_take(e, w, op->lock_hash, next, next ? op->lock_last : NULL);
			backlog_push(e, w);
			break;
		}
		backlog_push(e, w);
	}
	op->lock_first = op->lock_last = NULL;
}

static void rmw_restart(struct engine *e, struct eop *op)
{
	eop_drop_result(op);
	op->rmw_phase = 0;
	op->sop.kind = STORE_GET;
	op->sop.cond = STORE_ALWAYS;
	backlog_push(e, op);
}

static void rmw_read_done(struct engine *e, struct eop *op, int res)
{
	if (res == 0) {
		int err = eop_keep_result(op, &op->sop.out);
		if (err) {
			finish(e, op, err);
			return;
		}
	} else if (res != -DV_ENOTFOUND) {
		finish(e, op, res);
		return;
	}
	enum rmw_action act = op->decide(op, store_now_ms());
	if (act == RMW_FINISH) {
		finish(e, op, op->result);
		return;
	}
	DV_ASSERT(act == RMW_PUT || (act == RMW_DEL && op->found));
	op->sop.kind = act == RMW_PUT ? STORE_PUT : STORE_DEL;
	op->sop.cond = STORE_IF_SEQ;
	op->sop.cond_seq = op->found ? op->seq : 0;
	op->rmw_phase = 1;
	backlog_push(e, op);
}

/* ---- active expiry ----
 * Every durable write of a key tells the expiry table (expiry.h) its
 * expiry (a PUT with one) or that it has none (a PUT without, a DEL); once
 * due, the engine deletes the key with STORE_IF_SEQ_EXPIRED, which applies
 * only if the key still holds that very record and it has expired: a newer
 * write of the key is never touched.
 * The table is bounded (EXPIRY_KEYS_MAX keys, EXPIRY_BYTES_MAX bytes). A
 * key that does not fit, and every key of a store that had keys when it
 * was opened (the table starts empty), is found by scanning the store
 * instead: passes over the key hash space in slices of about
 * EXPIRY_SCAN_SLICE_KEYS index entries, in the background (one read at a
 * time, EXPIRY_SCAN_GAP_MS between slices, and between passes a pause as
 * long as the pass took, EXPIRY_SCAN_CYCLE_GAP_MS at least), which delete
 * the expired records they see and put those not yet due in the table
 * when there is room. Passes go on until one runs from its start to its
 * end with every key it saw kept and no write's key refused meanwhile.
 * Until a pass reaches it, such a key expires lazily (reads judge the
 * expiry; GC turns an expired value into a tombstone) and DBSIZE counts
 * it. The engine's own deletes in flight are bounded (EXPIRY_OPS_MAX).
 * Cluster mode (a router): the cluster layer owns the store's keys; the
 * engine does no active expiry there. */

/* A delete of key if it still holds the record seq, expired (an engine op:
 * no sink). false: out of memory, the key is missed. */
static bool exp_delete(struct engine *e, const void *key, uint32_t key_len, uint64_t seq)
{
	struct eop *op = malloc(sizeof(*op));
	if (!op || eop_init(op, EOP_DEL, key, key_len, NULL, 0) != 0) {
		free(op);
		return false;
	}
	op->sop.cond = STORE_IF_SEQ_EXPIRED;
	op->sop.cond_seq = seq;
	op->sink = NULL;
	e->exp_own++;
	if (lock_admit(e, op))
		backlog_push(e, op);
	return true;
}

/* A key with an expiry that neither the table nor a pass running now
 * holds: another pass is needed. */
static void exp_missed(struct engine *e)
{
	e->exp_missed++;
	e->exp_scan_wanted = true;
}

/* A durable write of a key (cache_apply). */
static void exp_note_write(struct engine *e, const struct store_op *w)
{
	uint64_t expire = w->kind == STORE_PUT ? w->expire_ms : 0;
	if (!expiry_note(e->exp, w->key, w->key_len, expire, w->out.seq)) {
		e->exp_untracked++;
		exp_missed(e);
	}
}

/* Delete the keys whose time has come. */
static bool expire_due(struct engine *e)
{
	if (expiry_count(e->exp) == 0 || e->draining)
		return false;
	uint64_t now = store_now_ms();
	unsigned n = 0;
	struct expiry_item x;
	for (; n < EXPIRY_PER_TURN_MAX && e->exp_own < EXPIRY_OPS_MAX && expiry_pop_due(e->exp, now, &x); n++) {
		if (!exp_delete(e, x.key, x.key_len, x.seq))
			exp_missed(e);
		free(x.key);
	}
	return n > 0;
}

static bool exp_visit(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	struct engine *e = arg;
	if (e->draining || e->route) {
		e->exp_slice_cut = true;
		return false;
	}
	if (rec->expire_ms == 0)
		return true;
	if (rec->expire_ms > store_now_ms()) {
		if (!expiry_note(e->exp, key, key_len, rec->expire_ms, rec->seq))
			e->exp_missed++;
		return true;
	}
	if (e->exp_own >= EXPIRY_OPS_MAX) { /* enough deletes in flight: this slice again later */
		e->exp_slice_cut = true;
		return false;
	}
	if (!exp_delete(e, key, key_len, rec->seq))
		e->exp_missed++;
	return true;
}

static void exp_scan_done(void *arg, int err)
{
	struct engine *e = arg;
	uint64_t now = store_now_ms();
	DV_ASSERT(e->exp_scanning);
	e->exp_scanning = false;
	e->exp_next_ms = now + EXPIRY_SCAN_GAP_MS;
	if (err || e->exp_slice_cut)
		return; /* the same slice again */
	if (++e->exp_slice < e->exp_slices)
		return;
	/* A pass is over: clean when nothing was missed since it began. */
	e->exp_slice = 0;
	if (e->exp_missed == e->exp_pass_missed)
		e->exp_scan_wanted = false;
	uint64_t took = now - e->exp_pass_start_ms;
	e->exp_next_ms = now + (took > EXPIRY_SCAN_CYCLE_GAP_MS ? took : EXPIRY_SCAN_CYCLE_GAP_MS);
}

/* Start the next slice of a pass when one is wanted and due. */
static bool exp_scan_step(struct engine *e)
{
	if (!e->exp_scan_wanted || e->exp_scanning || e->route || e->draining)
		return false;
	uint64_t now = store_now_ms();
	if (now < e->exp_next_ms)
		return false;
	if (e->exp_slice == 0 && !e->exp_slice_cut) { /* a new pass */
		struct store_stats st;
		store_get_stats(e->s, &st);
		uint32_t n = 1;
		while (n < EXPIRY_SCAN_SLICES_MAX && (uint64_t)n * EXPIRY_SCAN_SLICE_KEYS < st.keys)
			n *= 2;
		e->exp_slices = n;
		e->exp_pass_missed = e->exp_missed;
		e->exp_pass_start_ms = now;
	}
	e->exp_slice_cut = false;
	uint64_t width = e->exp_slices == 1 ? 0 : UINT64_MAX / e->exp_slices + 1;
	uint64_t lo = e->exp_slice * width;
	uint64_t hi = e->exp_slice + 1 == e->exp_slices ? UINT64_MAX : lo + width - 1;
	int err = store_scan_expired(e->s, lo, hi, exp_visit, exp_scan_done, e);
	if (err) { /* another scan of the store (-EBUSY), or out of memory: later */
		e->exp_next_ms = now + EXPIRY_SCAN_GAP_MS;
		return false;
	}
	e->exp_scanning = true;
	return true;
}

/* Keep the cache equal to what the store holds once a write is done. */
static void cache_apply(struct engine *e, const struct store_op *w, int res)
{
	if (res == 0)
		exp_note_write(e, w);
	if (res == 0 && w->kind == STORE_PUT) {
		vcache_put(e->cache, w->key, w->key_len, w->value, w->val_len, w->expire_ms, w->out.seq);
	} else if (res == 0 || (res != -EEXIST && res != -DV_ENOTFOUND && res != -ESTALE)) {
		vcache_forget(e->cache, w->key, w->key_len); /* deleted, or outcome unknown */
	}
}

/* A batch's writes complete together: their cache updates wait in
 * cache_pending and are applied by cache_flush() right after the
 * store_poll() that completed them, before any later GET is looked up and
 * before any reply leaves (flush_out), so no GET can see an old value. The
 * pass that prefetches every bucket first lets the misses overlap. */
static void cache_flush(struct engine *e)
{
	for (unsigned i = 0; i < e->cache_npending; i++)
		vcache_prefetch(e->cache, e->cache_pending[i]->sop.key, e->cache_pending[i]->sop.key_len);
	for (unsigned i = 0; i < e->cache_npending; i++)
		vcache_prefetch_entry(e->cache, e->cache_pending[i]->sop.key, e->cache_pending[i]->sop.key_len);
	for (unsigned i = 0; i < e->cache_npending; i++)
		cache_apply(e, &e->cache_pending[i]->sop, e->cache_pending_res[i]);
	e->cache_npending = 0;
}

static void cache_after_write(struct engine *e, struct eop *op, int res)
{
	if (!op->sink || res == -ESTALE) {
		/* The engine's own ops are freed when they finish; a refused
		 * compare-and-set changed nothing (and its op starts over). */
		cache_apply(e, &op->sop, res);
		return;
	}
	if (e->cache_npending == ENGINE_CACHE_PENDING_MAX)
		cache_flush(e);
	e->cache_pending[e->cache_npending] = op;
	e->cache_pending_res[e->cache_npending++] = res;
}

static void rmw_write_done(struct engine *e, struct eop *op, int res)
{
	cache_after_write(e, op, res);
	if (res == -ESTALE) {
		if (op->retries++ < RMW_RETRIES_MAX) {
			rmw_restart(e, op);
			return;
		}
		res = -EBUSY;
	}
	finish(e, op, res);
}

/* Every key is gone: so is every cached value (the cache updates of the
 * writes completed before it first) and every expiry the engine keeps. */
static void flush_done(struct engine *e, struct eop *op, int res)
{
	DV_ASSERT(e->flushes > 0);
	e->flushes--;
	cache_flush(e);
	if (res == 0) {
		vcache_clear(e->cache);
		expiry_clear(e->exp);
	}
	finish(e, op, res);
}

static void eop_store_done(struct store_op *sop)
{
	struct eop *op = eop_of_sop(sop);
	struct engine *e = sop->ctx;
	int res = sop->result;
	switch (op->kind) {
	case EOP_GET:
		if (res == 0) {
			vcache_fill(e->cache, op->cache_epoch, sop->key, sop->key_len, sop->out.value,
				    sop->out.val_len, sop->out.expire_ms, sop->out.seq);
			res = eop_keep_result(op, &sop->out);
		}
		finish(e, op, res);
		break;
	case EOP_RMW:
		if (op->rmw_phase == 0)
			rmw_read_done(e, op, res);
		else
			rmw_write_done(e, op, res);
		break;
	case EOP_FLUSH:
		flush_done(e, op, res);
		break;
	default:
		cache_after_write(e, op, res);
		finish(e, op, res);
		break;
	}
}

/* A GET the cache can answer: its result is filled, the store is skipped. */
static bool get_from_cache(struct engine *e, struct eop *op)
{
	struct vcache_hit hit;
	if (e->flushes || !vcache_get(e->cache, op->sop.key, op->sop.key_len, store_now_ms(), &hit)) {
		op->cache_epoch = vcache_epoch(e->cache);
		return false;
	}
	struct store_record_out r = {.value = (const uint8_t *)hit.val, .val_len = hit.val_len,
				     .seq = hit.seq, .expire_ms = hit.expire_ms};
	op->result = eop_keep_result(op, &r);
	return true;
}

static struct eop *backlog_pop(struct engine *e)
{
	struct mpsc_node *n = e->backlog_head;
	e->backlog_head = n->next;
	if (!e->backlog_head)
		e->backlog_tail = NULL;
	n->next = NULL;
	return eop_of(n);
}

/* Hand the backlog to the store in order; stops at the first -EAGAIN. */
static bool submit_backlog(struct engine *e)
{
	bool moved = false;
	while (e->backlog_head) {
		struct eop *op = eop_of(e->backlog_head);
		if (op->kind == EOP_STATS) {
			backlog_pop(e);
			store_get_stats(e->s, op->stats);
			if (op->cache_stats)
				vcache_get_stats(e->cache, op->cache_stats);
			if (op->counters)
				engine_get_counters(e, op->counters);
			finish(e, op, 0);
		} else if (op->kind == EOP_GET && op->budget && op->budget->over) {
			backlog_pop(e); /* its command's reply is too large already */
			finish(e, op, -E2BIG);
		} else if (op->kind == EOP_GET && get_from_cache(e, op)) {
			backlog_pop(e);
			finish(e, op, op->result);
		} else if (op->kind == EOP_SCAN) {
			backlog_pop(e);
			op->link.next = NULL; /* scan_start() takes it in order */
			if (e->scan_tail)
				e->scan_tail->next = &op->link;
			else
				e->scan_head = &op->link;
			e->scan_tail = &op->link;
		} else {
			op->sop.ctx = e;
			int err = store_submit(e->s, &op->sop);
			e->backlog_blocked = err == -EAGAIN;
			if (err == -EAGAIN)
				break; /* the store is full: its completions wake us */
			backlog_pop(e);
			if (err)
				finish(e, op, err);
			else if (op->kind == EOP_FLUSH) {
				e->flushes++;
				vcache_clear(e->cache); /* later GETs miss until it is done */
			}
		}
		moved = true;
	}
	return moved;
}

/* ---- SCAN steps ---- */

static bool scan_visit(void *arg, const void *key, uint32_t key_len, const struct store_record_out *rec)
{
	struct engine *e = arg;
	(void)rec;
	DV_ASSERT(key_len <= UINT16_MAX);
	if (e->scan_len + 2 + key_len > e->scan_cap) {
		size_t cap = e->scan_cap ? e->scan_cap * 2 : 4096;
		while (cap < e->scan_len + 2 + key_len)
			cap *= 2;
		char *b = realloc(e->scan_buf, cap);
		if (!b) {
			e->scan_err = -ENOMEM;
			return false;
		}
		e->scan_buf = b;
		e->scan_cap = cap;
	}
	e->scan_buf[e->scan_len] = (char)(key_len & 0xff);
	e->scan_buf[e->scan_len + 1] = (char)(key_len >> 8);
	memcpy(e->scan_buf + e->scan_len + 2, key, key_len);
	e->scan_len += 2 + key_len;
	e->scan_nkeys++;
	return true;
}

static void scan_finish(void *arg, int err)
{
	struct engine *e = arg;
	struct eop *op = e->scan_op;
	DV_ASSERT(op && op->kind == EOP_SCAN);
	e->scan_op = NULL;
	if (!err)
		err = e->scan_err;
	if (!err)
		err = eop_keep_alloc(op, 0, e->scan_len);
	if (!err) {
		if (e->scan_len)
			memcpy(op->val, e->scan_buf, e->scan_len);
		op->nkeys = e->scan_nkeys;
		op->cursor = e->scan_hi == UINT64_MAX ? 0 : e->scan_hi + 1;
	}
	if (e->scan_cap > (1u << 20)) { /* a large step: give the memory back */
		free(e->scan_buf);
		e->scan_buf = NULL;
		e->scan_cap = 0;
	}
	finish(e, op, err);
}

/* Start the next step when no scan runs: its end is where the hash space
 * holds about count keys (the keys are spread evenly over it), and the
 * store narrows it to a bound of index entries. */
static bool scan_start(struct engine *e)
{
	if (e->scan_op || !e->scan_head)
		return false;
	struct eop *op = eop_of(e->scan_head);
	uint64_t n = store_key_count(e->s);
	uint64_t count = op->count < 1 ? 1 : op->count > ENGINE_SCAN_COUNT_MAX ? ENGINE_SCAN_COUNT_MAX : op->count;
	uint64_t lo = op->cursor, hi = UINT64_MAX;
	if (n > count) {
		uint64_t width = UINT64_MAX / n * count;
		if (width && lo <= UINT64_MAX - (width - 1))
			hi = lo + (width - 1);
	}
	uint64_t max = 2 * count + 64;
	e->scan_len = 0;
	e->scan_nkeys = 0;
	e->scan_err = 0;
	e->scan_hi = hi;
	e->scan_op = op;
	int err = store_scan_bounded(e->s, lo, &e->scan_hi, max < ENGINE_SCAN_ENTRIES_MAX ? (uint32_t)max
											     : ENGINE_SCAN_ENTRIES_MAX,
				     scan_visit, scan_finish, e);
	if (err == -EBUSY) {
		e->scan_op = NULL;
		return false; /* another scan of the store (not ours): its reads wake us */
	}
	e->scan_head = op->link.next;
	if (!e->scan_head)
		e->scan_tail = NULL;
	op->link.next = NULL;
	if (err) {
		e->scan_op = NULL;
		finish(e, op, err);
	}
	return true;
}

bool engine_turn(struct engine *e)
{
	struct mpsc_node *n = mpsc_take(&e->inbox);
	bool moved = expire_due(e);
	moved |= exp_scan_step(e);
	moved |= n != NULL;
	for (struct mpsc_node *p = n; p; p = p->next) /* overlap the GETs' cache misses */
		if (eop_of(p)->kind == EOP_GET)
			vcache_prefetch(e->cache, eop_of(p)->sop.key, eop_of(p)->sop.key_len);
	while (n) {
		struct mpsc_node *next = n->next;
		e->in_flight++;
		if ((!e->route || !e->route(e->route_arg, eop_of(n))) && lock_admit(e, eop_of(n)))
			backlog_push(e, eop_of(n));
		n = next;
	}
	/* Ops submitted (RMW steps come back from done()) start only inside
	 * store_poll(): end every round with one, so that sleeping after the
	 * turn never leaves a submitted op unstarted. */
	for (unsigned round = 0; round < ENGINE_TURN_ROUNDS_MAX; round++) {
		bool submitted = submit_backlog(e);
		submitted |= scan_start(e);
		int done = store_poll(e->s, false);
		cache_flush(e);
		DV_ASSERT(done >= 0 || done == -EINTR || done == -EAGAIN || done == -EBUSY);
		moved |= submitted || done > 0;
		bool more = e->backlog_head || (e->scan_head && !e->scan_op);
		if (!more || e->backlog_blocked || (!submitted && done <= 0))
			break;
	}
	if (e->out_count)
		flush_out(e);
	return moved;
}

uint64_t engine_in_flight(const struct engine *e) { return e->in_flight; }

uint64_t engine_round(const struct engine *e)
{
	return atomic_load_explicit(&((struct engine *)e)->round_published, memory_order_acquire);
}

void engine_set_router(struct engine *e, engine_route_fn route, void *arg)
{
	DV_ASSERT(e->in_flight == 0);
	e->route = route;
	e->route_arg = arg;
}

void engine_complete(struct engine *e, struct eop *op, int result)
{
	DV_ASSERT(e->route && op->sink && e->in_flight > 0);
	finish(e, op, result);
}

bool engine_inbox_empty(struct engine *e) { return mpsc_empty(&e->inbox); }

bool engine_may_sleep(struct engine *e)
{
	/* A waiting scan step with none running starts at the next turn (a
	 * busy store scan of another layer ends with a device completion). */
	return mpsc_empty(&e->inbox) && (!e->backlog_head || e->backlog_blocked) && e->out_count == 0 &&
	       !(e->scan_head && !e->scan_op && !store_scanning(e->s));
}

bool engine_idle(struct engine *e) { return e->in_flight == 0 && mpsc_empty(&e->inbox); }

int engine_drain(struct engine *e)
{
	e->draining = true; /* no more active expiry: a scan stops at its next record */
	for (uint64_t round = 0; e->in_flight > 0 || !mpsc_empty(&e->inbox) || e->exp_own > 0 || e->exp_scanning;
	     round++) {
		if (!engine_turn(e) && (store_pending(e->s) > 0 || e->exp_scanning)) {
			int err = store_poll(e->s, true);
			cache_flush(e);
			if (err < 0 && err != -EINTR)
				return err;
		}
		DV_ASSERT(round < (1ull << 40));
	}
	return store_drain(e->s);
}

void engine_stats(const struct engine *e, struct store_stats *out) { store_get_stats(e->s, out); }

void engine_cache_stats(const struct engine *e, struct vcache_stats *out) { vcache_get_stats(e->cache, out); }

void engine_get_counters(const struct engine *e, struct engine_counters *out)
{
	*out = (struct engine_counters){.expiry_tracked = expiry_count(e->exp), .expiry_deleted = e->exp_deleted,
					.expiry_untracked = e->exp_untracked, .expiry_bytes = expiry_bytes(e->exp),
					.expiry_scanning = e->exp_scan_wanted};
}
