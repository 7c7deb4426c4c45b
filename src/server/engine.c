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
 * 2. An eop is in exactly one of: inbox, backlog, store, out list.
 * 3. The backlog keeps arrival order; it only holds eops the store refused
 *    with -EAGAIN (too many in flight) and RMW steps, so it is bounded by
 *    what the network threads admit (max-pipeline per client).
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
#include "server/vcache.h"

#define ENGINE_SINKS_MAX (CONFIG_THREADS_MAX + 1u)
#define ENGINE_TURN_ROUNDS_MAX 8u
#define ENGINE_CACHE_PENDING_MAX 1024u
#define EXPIRY_TRACKED_MAX (1u << 20) /* keys with a TTL the engine deletes when due */
#define EXPIRY_PER_TURN_MAX 256u
#define ENGINE_RMW_BUCKETS 4096u /* RMW slots by key hash (a power of two) */

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
	/* Active expiry: keys written with an expiry, soonest first. */
	struct expiry *exp_heap;
	uint32_t exp_count, exp_cap;
	uint64_t exp_untracked, exp_deleted;
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
	/* RMWs in the store, by key: one per key, the next ones wait. */
	struct rmw_slot *rmw_slots[ENGINE_RMW_BUCKETS];
	struct rmw_slot *rmw_free;
};

/* The RMW of a key in the store and those waiting behind it, in order. */
struct rmw_slot {
	struct rmw_slot *next;   /* bucket chain, or free list */
	uint64_t hash;
	struct eop *holder;
	struct mpsc_node *wait_head, *wait_tail;
};

struct expiry {
	uint64_t expire_ms, seq;
	char *key;
	uint32_t key_len;
};

static struct expiry exp_pop(struct engine *e);

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
	e->s = s;
	e->host = host_waker;
	*out = e;
	return 0;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	DV_ASSERT(e->in_flight == 0);
	vcache_close(e->cache);
	while (e->exp_count) {
		struct expiry x = exp_pop(e);
		free(x.key);
	}
	free(e->exp_heap);
	free(e->scan_buf);
	while (e->rmw_free) {
		struct rmw_slot *k = e->rmw_free;
		e->rmw_free = k->next;
		free(k);
	}
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

static void rmw_unlock(struct engine *e, struct eop *op);
static struct eop *backlog_pop(struct engine *e);

static void finish(struct engine *e, struct eop *op, int result)
{
	if (op->rmw_slot)
		rmw_unlock(e, op);
	op->result = result;
	op->link.next = NULL;
	if (!op->sink) { /* the engine's own (active expiry) */
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

/* ---- one RMW per key at a time ---- */

static bool same_store_key(const struct eop *a, const struct eop *b)
{
	return a->sop.key_len == b->sop.key_len && memcmp(a->sop.key, b->sop.key, a->sop.key_len) == 0;
}

/* The slot of op's key when another RMW of it holds one, else NULL. */
static struct rmw_slot *rmw_busy(struct engine *e, const struct eop *op, uint64_t h)
{
	for (struct rmw_slot *k = e->rmw_slots[h & (ENGINE_RMW_BUCKETS - 1)]; k; k = k->next)
		if (k->hash == h && same_store_key(k->holder, op))
			return k;
	return NULL;
}

/* op (an RMW about to read, at the backlog's head) may go on: it holds its
 * key's slot now. false: it was taken off the backlog to wait behind the
 * RMW of its key in the store. */
static bool rmw_lock(struct engine *e, struct eop *op)
{
	uint64_t h = dv_key_hash64(op->sop.key, op->sop.key_len);
	struct rmw_slot *k = rmw_busy(e, op, h);
	if (k) {
		backlog_pop(e);
		op->link.next = NULL;
		if (k->wait_tail)
			k->wait_tail->next = &op->link;
		else
			k->wait_head = &op->link;
		k->wait_tail = &op->link;
		return false;
	}
	struct rmw_slot **b = &e->rmw_slots[h & (ENGINE_RMW_BUCKETS - 1)];
	k = e->rmw_free;
	if (k)
		e->rmw_free = k->next;
	else if (!(k = malloc(sizeof(*k))))
		return true; /* no slot: it runs unordered, its compare-and-set keeps it right */
	*k = (struct rmw_slot){.next = *b, .hash = h, .holder = op};
	*b = k;
	op->rmw_slot = k;
	return true;
}

/* op is finished: the next RMW of its key (if any) takes the slot. */
static void rmw_unlock(struct engine *e, struct eop *op)
{
	struct rmw_slot *k = op->rmw_slot;
	DV_ASSERT(k->holder == op);
	op->rmw_slot = NULL;
	if (k->wait_head) {
		struct eop *next = eop_of(k->wait_head);
		k->wait_head = k->wait_head->next;
		if (!k->wait_head)
			k->wait_tail = NULL;
		k->holder = next;
		next->rmw_slot = k;
		backlog_push(e, next);
		return;
	}
	struct rmw_slot **pp = &e->rmw_slots[k->hash & (ENGINE_RMW_BUCKETS - 1)];
	while (*pp != k)
		pp = &(*pp)->next;
	*pp = k->next;
	k->next = e->rmw_free;
	e->rmw_free = k;
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
 * Every durable PUT with an expiry is remembered (key, seq, when); once due,
 * the engine deletes the key with STORE_IF_SEQ_EXPIRED, which applies only
 * if the key still holds that very record and it has expired: a newer write
 * of the key is never touched. Bounded: past EXPIRY_TRACKED_MAX keys, later
 * ones are left to reads and GC (exp_untracked). */

static void exp_swap(struct expiry *a, struct expiry *b)
{
	struct expiry t = *a;
	*a = *b;
	*b = t;
}

static void exp_push(struct engine *e, const void *key, uint32_t key_len, uint64_t expire_ms, uint64_t seq)
{
	if (e->exp_count == e->exp_cap) {
		uint32_t cap = e->exp_cap ? e->exp_cap * 2 : 1024;
		struct expiry *h = e->exp_count < EXPIRY_TRACKED_MAX ? realloc(e->exp_heap, cap * sizeof(*h)) : NULL;
		if (!h) {
			e->exp_untracked++;
			return;
		}
		e->exp_heap = h;
		e->exp_cap = cap;
	}
	char *k = malloc(key_len);
	if (!k) {
		e->exp_untracked++;
		return;
	}
	memcpy(k, key, key_len);
	uint32_t i = e->exp_count++;
	e->exp_heap[i] = (struct expiry){.expire_ms = expire_ms, .seq = seq, .key = k, .key_len = key_len};
	while (i > 0 && e->exp_heap[(i - 1) / 2].expire_ms > e->exp_heap[i].expire_ms) {
		exp_swap(&e->exp_heap[(i - 1) / 2], &e->exp_heap[i]);
		i = (i - 1) / 2;
	}
}

static struct expiry exp_pop(struct engine *e)
{
	DV_ASSERT(e->exp_count > 0);
	struct expiry top = e->exp_heap[0];
	e->exp_heap[0] = e->exp_heap[--e->exp_count];
	for (uint32_t i = 0;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < e->exp_count && e->exp_heap[l].expire_ms < e->exp_heap[m].expire_ms)
			m = l;
		if (r < e->exp_count && e->exp_heap[r].expire_ms < e->exp_heap[m].expire_ms)
			m = r;
		if (m == i)
			break;
		exp_swap(&e->exp_heap[i], &e->exp_heap[m]);
		i = m;
	}
	return top;
}

/* Delete the keys whose time has come (internal eops: no sink). */
static bool expire_due(struct engine *e)
{
	if (e->exp_count == 0)
		return false;
	uint64_t now = store_now_ms();
	unsigned n = 0;
	for (; n < EXPIRY_PER_TURN_MAX && e->exp_count && e->exp_heap[0].expire_ms <= now; n++) {
		struct expiry x = exp_pop(e);
		struct eop *op = malloc(sizeof(*op));
		if (op && eop_init(op, EOP_DEL, x.key, x.key_len, NULL, 0) == 0) {
			op->sop.cond = STORE_IF_SEQ_EXPIRED;
			op->sop.cond_seq = x.seq;
			op->sink = NULL;
			backlog_push(e, op);
		} else {
			free(op);
			e->exp_untracked++;
		}
		free(x.key);
	}
	return n > 0;
}

/* Keep the cache equal to what the store holds once a write is done. */
static void cache_apply(struct engine *e, const struct store_op *w, int res)
{
	if (res == 0 && w->kind == STORE_PUT) {
		vcache_put(e->cache, w->key, w->key_len, w->value, w->val_len, w->expire_ms, w->out.seq);
		if (w->expire_ms)
			exp_push(e, w->key, w->key_len, w->expire_ms, w->out.seq);
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
		while (e->exp_count) {
			struct expiry x = exp_pop(e);
			free(x.key);
		}
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
		} else if (op->kind == EOP_RMW && op->rmw_phase == 0 && !op->rmw_slot && !rmw_lock(e, op)) {
			/* waits behind the RMW of its key (off the backlog) */
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
	moved |= n != NULL;
	for (struct mpsc_node *p = n; p; p = p->next) /* overlap the GETs' cache misses */
		if (eop_of(p)->kind == EOP_GET)
			vcache_prefetch(e->cache, eop_of(p)->sop.key, eop_of(p)->sop.key_len);
	while (n) {
		struct mpsc_node *next = n->next;
		e->in_flight++;
		if (!e->route || !e->route(e->route_arg, eop_of(n)))
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
	for (uint64_t round = 0; e->in_flight > 0 || !mpsc_empty(&e->inbox); round++) {
		if (!engine_turn(e) && store_pending(e->s) > 0) {
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
	*out = (struct engine_counters){.expiry_tracked = e->exp_count, .expiry_deleted = e->exp_deleted,
					.expiry_untracked = e->exp_untracked};
}
