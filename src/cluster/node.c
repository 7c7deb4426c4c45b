/* node.c - the cnode: configuration, request ids, buffers and their budget,
 * frames and per-peer flow control, message dispatch, time, the identity
 * record. The coordinator is in coord.c, the replica in replica.c
 * (contracts: node.h, node_int.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/le.h"
#include "cluster/node_int.h"

/* ---- config ---- */

static int config_fail(const char *why)
{
	fprintf(stderr, "dynvme: cluster node config: %s\n", why);
	return -EINVAL;
}

static int config_check_keyspace(const struct cnode_keyspace *k)
{
	if (k->n < 1 || k->n > RING_N_MAX)
		return config_fail("keyspace n must be 1..7");
	if (k->r < 1 || k->r > k->n || k->w < 1 || k->w > k->n)
		return config_fail("keyspace r and w must be 1..n");
	if (k->policy != DVV_SIBLINGS && k->policy != DVV_LWW)
		return config_fail("keyspace policy must be siblings or lww");
	if (k->siblings_max > DVV_VALUES_MAX)
		return config_fail("keyspace siblings_max above the version bound (64)");
	return 0;
}

static int config_check(const struct cnode_config *cfg)
{
	if (cfg->node_id == 0)
		return config_fail("node id 0");
	if (cfg->incarnation == 0 || cfg->incarnation > DVV_INCARNATION_MASK)
		return config_fail("incarnation must be 1..2^48-1 (cnode_identity_load)");
	if (cfg->run == 0 || cfg->run > DVV_INCARNATION_MASK)
		return config_fail("run incarnation must be 1..2^48-1 (cnode_identity_load)");
	if (!cfg->ring || cfg->ring->nnodes == 0 || !cfg->ring->owner)
		return config_fail("no ring");
	if (cfg->requests_max > (1u << 20) || cfg->replica_ops_max > (1u << 20))
		return config_fail("requests_max and replica_ops_max are at most 2^20");
	for (unsigned i = 0; i < CNODE_KEYSPACES_MAX; i++) {
		if (cfg->ks[i].defined) {
			int err = config_check_keyspace(&cfg->ks[i]);
			if (err)
				return err;
		}
	}
	return 0;
}

static void config_defaults(struct cnode *n)
{
	struct cnode_config *c = &n->cfg;
	if (!c->timeout_ms)
		c->timeout_ms = CNODE_TIMEOUT_MS_DEFAULT;
	if (!c->repair_wait_ms)
		c->repair_wait_ms = c->timeout_ms;
	if (!c->contended_ms)
		c->contended_ms = CNODE_CONTENDED_MS_DEFAULT;
	if (!c->requests_max)
		c->requests_max = 4096;
	if (!c->replica_ops_max)
		c->replica_ops_max = 4096;
	if (!c->peer_inflight_max)
		c->peer_inflight_max = 4096;
	if (!c->buffer_bytes_max)
		c->buffer_bytes_max = 256ull << 20;
	if (!c->flush_skew_ms)
		c->flush_skew_ms = CNODE_FLUSH_SKEW_MS;
	for (unsigned i = 0; i < CNODE_KEYSPACES_MAX; i++) {
		struct cnode_keyspace *k = &c->ks[i];
		if (!k->defined)
			continue;
		if (!k->siblings_max)
			k->siblings_max = CNODE_SIBLINGS_MAX_DEFAULT;
		/* N is capped by the nodes; R and W with it. */
		unsigned nn = k->n < n->ring.nnodes ? k->n : n->ring.nnodes;
		n->ks_n[i] = (uint8_t)nn;
		n->ks_r[i] = (uint8_t)(k->r < nn ? k->r : nn);
		n->ks_w[i] = (uint8_t)(k->w < nn ? k->w : nn);
	}
}

bool cnode_ks_ok(const struct cnode *n, uint8_t ks)
{
	return ks < CNODE_KEYSPACES_MAX && n->cfg.ks[ks].defined;
}

/* ---- create, destroy ---- */

static int cnode_pools(struct cnode *n)
{
	uint32_t cap = 1;
	while (cap < 2 * n->cfg.requests_max)
		cap <<= 1;
	n->ht_mask = cap - 1;
	n->ht_key = calloc(cap, sizeof(*n->ht_key));
	n->ht_val = calloc(cap, sizeof(*n->ht_val));
	n->coords = calloc(n->cfg.requests_max, sizeof(*n->coords));
	n->rops = calloc(n->cfg.replica_ops_max, sizeof(*n->rops));
	n->rop_free = calloc(n->cfg.replica_ops_max, sizeof(*n->rop_free));
	uint32_t holders = 1;
	while (holders < 2 * (n->cfg.requests_max + n->cfg.replica_ops_max))
		holders <<= 1;
	n->key_holders_mask = holders - 1;
	n->key_holders = calloc(holders, sizeof(*n->key_holders));
	if (!n->ht_key || !n->ht_val || !n->coords || !n->rops || !n->rop_free || !n->key_holders)
		return -ENOMEM;
	return rcache_init(&n->rcache, n->cfg.read_cache_bytes);
}

static void cnode_free_pools(struct cnode *n)
{
	for (uint32_t i = 0; i < n->coords_made; i++)
		free(n->coords[i]);
	for (uint32_t i = 0; i < n->rops_made; i++)
		free(n->rops[i]);
	free(n->coords);
	free(n->rops);
	free(n->rop_free);
	free(n->key_holders);
	free(n->ht_key);
	free(n->ht_val);
	rcache_free(&n->rcache);
}

/* The first counter of a run's request ids: in [1, 2^43) from its run
 * incarnation (splitmix64's finaliser), so two runs with the same boot use
 * unrelated ranges, each with 2^43 ids to go. */
static uint64_t req_id_start(uint64_t run)
{
	uint64_t z = run + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (z & ((1ull << (CNODE_REQ_ID_BITS - 1)) - 1)) | 1;
}

int cnode_create(struct cnode **out, const struct cnode_config *cfg, struct store *s, uint64_t now_ms)
{
	DV_ASSERT(out && cfg && s);
	*out = NULL;
	int err = config_check(cfg);
	if (err)
		return err;
	struct cnode *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->cfg = *cfg;
	if (ring_copy(&n->ring, cfg->ring) != 0) {
		free(n);
		return -ENOMEM;
	}
	n->cfg.ring = &n->ring;
	config_defaults(n);
	if (cnode_pools(n) != 0) {
		cnode_free_pools(n);
		ring_free(&n->ring);
		free(n);
		return -ENOMEM;
	}
	n->s = s;
	n->run = cfg->run;
	n->actor = dvv_actor(cfg->node_id, cfg->run);
	n->counter_actor = dvv_actor(cfg->node_id, cfg->incarnation);
	n->now_ms = now_ms;
	/* Request ids of one run never meet those of another, so a late reply
	 * to an earlier run cannot match a request of this one: boot << 44
	 * (above every earlier start's: cnode_identity_load) | a counter from
	 * a start drawn from the run incarnation in [1, 2^43) (new at every
	 * start: a wiped node, whose boot is a first start's again, has a new
	 * one, and so has a run whose boot meets an earlier run's in its 20
	 * bits: boots grow by the superblock writes of the run before, which
	 * wrap them after 2^20; without it, its ids were those of that run,
	 * whose replies a peer's driver may still deliver), or, without a boot
	 * count, above every id an earlier run could have used if the clock
	 * moved forward (ids grow by far less than 2^20 a millisecond). */
	n->next_req_id = cfg->boot ? (uint64_t)(cfg->boot & CNODE_BOOT_MASK) << CNODE_REQ_ID_BITS |
					     req_id_start(cfg->run)
				   : (now_ms << 20) | 1;
	n->self_peer = CNODE_PEER_NONE;
	for (unsigned i = 0; i < n->ring.nnodes; i++) {
		n->peers[i].node = n->ring.nodes[i];
		if (n->ring.nodes[i] == cfg->node_id)
			n->self_peer = (uint16_t)i;
	}
	n->next_deadline = UINT64_MAX;
	err = flush_load(n);
	if (err) {
		fprintf(stderr, "dynvme: cluster node: reading its flush records: %s\n", dv_strerror(err));
		cnode_free_pools(n);
		ring_free(&n->ring);
		free(n);
		return err;
	}
	flush_reclaim_start(n);
	/* A flush is done without a node only when more than half acknowledged
	 * it: with one or two nodes never, so there is nothing to learn first
	 * (node.h). Else it asks its peers now. */
	n->synced = n->ring.nnodes <= 2;
	n->sync_deadline = now_ms;
	if (!n->synced)
		cnode_arm(n, n->sync_deadline);
	scan_count_start(n);
	*out = n;
	return 0;
}

static void pool_free_all(struct cnode *n);

/* Frames the output queue still holds (counted in buf_bytes) at destroy. */
static void frame_list_free(struct cnode *n, struct frame_int *f)
{
	for (unsigned i = 0; f; i++) {
		struct frame_int *next = (struct frame_int *)(void *)f->f.next;
		cnode_frame_drop(n, f);
		f = next;
		DV_ASSERT(i < UINT32_MAX);
	}
}

void cnode_destroy(struct cnode *n)
{
	if (!n)
		return;
	/* The caller drained the store: no op of ours is in it. */
	DV_ASSERT(n->store_ops == 0 && n->flush_store_ops == 0 && !n->scanning);
	store_set_reclaim(n->s, NULL, NULL); /* its predicate reads this cnode */
	flush_cancel_all(n);
	coord_cancel_all(n);
	replica_free_all(n);
	scan_replica_free_all(n);
	for (unsigned i = 0; i < n->ring.nnodes; i++) {
		struct frame_int *f = n->peers[i].wq_head;
		while (f) {
			struct frame_int *next = f->wnext;
			cnode_frame_drop(n, f);
			f = next;
		}
	}
	frame_list_free(n, n->out_head);
	pool_free_all(n);
	cnode_free_pools(n);
	ring_free(&n->ring);
	free(n);
}

/* ---- request ids ---- */

uint64_t cnode_new_req_id(struct cnode *n)
{
	uint64_t id = n->next_req_id++;
	DV_ASSERT(id != 0);
	/* At least 2^43 ids a run (months at a million requests a second):
	 * beyond, the next run's ids would be reached. */
	DV_ASSERT(!n->cfg.boot || id >> CNODE_REQ_ID_BITS == (n->cfg.boot & CNODE_BOOT_MASK));
	return id;
}

static uint32_t ht_slot(uint64_t id, uint32_t mask)
{
	return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

void cnode_ht_put(struct cnode *n, uint64_t req_id, struct coord *c)
{
	DV_ASSERT(req_id != 0 && c);
	uint32_t i = ht_slot(req_id, n->ht_mask);
	for (uint32_t probes = 0; n->ht_key[i] != 0; probes++) {
		DV_ASSERT(probes <= n->ht_mask && n->ht_key[i] != req_id);
		i = (i + 1) & n->ht_mask;
	}
	n->ht_key[i] = req_id;
	n->ht_val[i] = c;
}

static uint32_t ht_find(const struct cnode *n, uint64_t req_id)
{
	uint32_t i = ht_slot(req_id, n->ht_mask);
	for (uint32_t probes = 0; n->ht_key[i] != 0; probes++) {
		DV_ASSERT(probes <= n->ht_mask);
		if (n->ht_key[i] == req_id)
			return i;
		i = (i + 1) & n->ht_mask;
	}
	return CNODE_NONE;
}

struct coord *cnode_ht_get(const struct cnode *n, uint64_t req_id)
{
	if (req_id == 0)
		return NULL;
	uint32_t i = ht_find(n, req_id);
	return i == CNODE_NONE ? NULL : n->ht_val[i];
}

/* Linear probing deletion without tombstones: shift back the entries of
 * the run that would no longer be found. */
void cnode_ht_del(struct cnode *n, uint64_t req_id)
{
	uint32_t hole = ht_find(n, req_id);
	DV_ASSERT(hole != CNODE_NONE);
	uint32_t i = hole;
	for (uint32_t probes = 0;; probes++) {
		DV_ASSERT(probes <= n->ht_mask);
		i = (i + 1) & n->ht_mask;
		if (n->ht_key[i] == 0)
			break;
		uint32_t home = ht_slot(n->ht_key[i], n->ht_mask);
		/* Move i into the hole unless its home lies cyclically in (hole, i]. */
		bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
		if (stays)
			continue;
		n->ht_key[hole] = n->ht_key[i];
		n->ht_val[hole] = n->ht_val[i];
		hole = i;
	}
	n->ht_key[hole] = 0;
	n->ht_val[hole] = NULL;
}

uint16_t cnode_peer_index(const struct cnode *n, uint16_t node)
{
	unsigned lo = 0, hi = n->ring.nnodes;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (n->ring.nodes[mid] < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->ring.nnodes && n->ring.nodes[lo] == node ? (uint16_t)lo : CNODE_PEER_NONE;
}

void cnode_arm(struct cnode *n, uint64_t at_ms)
{
	if (at_ms < n->next_deadline)
		n->next_deadline = at_ms;
}

/* ---- buffers ---- */

bool cnode_budget_ok(const struct cnode *n, uint64_t more)
{
	return n->buf_bytes + more <= n->cfg.buffer_bytes_max;
}

/* The pool (node_int.h): a free block's first word links it to the next
 * of its class. Under AddressSanitizer the rest of a free block is
 * poisoned, so a use after release is still caught. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CNODE_POOL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CNODE_POOL_ASAN 1
#endif
#ifdef CNODE_POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The class of a size, or CNODE_POOL_CLASSES when malloc serves it. */
static unsigned pool_class(uint64_t bytes)
{
	unsigned c = 0;
	while (c < CNODE_POOL_CLASSES && bytes > (1ull << (CNODE_POOL_MIN_SHIFT + c)))
		c++;
	return c;
}

static void *pool_get(struct cnode *n, uint64_t bytes)
{
	unsigned c = pool_class(bytes);
	if (c == CNODE_POOL_CLASSES)
		return malloc(bytes);
	uint64_t size = 1ull << (CNODE_POOL_MIN_SHIFT + c);
	void *p = n->pool[c];
	if (!p)
		return malloc(size);
	POOL_UNPOISON(p, size);
	n->pool[c] = *(void **)p;
	DV_ASSERT(n->pool_bytes >= size);
	n->pool_bytes -= size;
	return p;
}

/* Back to its class's free list (bounded), or to free(). */
static void pool_put(struct cnode *n, void *p, uint64_t bytes)
{
	unsigned c = pool_class(bytes);
	uint64_t size = 1ull << (CNODE_POOL_MIN_SHIFT + (c < CNODE_POOL_CLASSES ? c : 0));
	if (c == CNODE_POOL_CLASSES || n->pool_bytes + size > CNODE_POOL_BYTES_MAX) {
		free(p);
		return;
	}
	*(void **)p = n->pool[c];
	n->pool[c] = p;
	n->pool_bytes += size;
	POOL_POISON((char *)p + sizeof(void *), size - sizeof(void *));
}

static void pool_free_all(struct cnode *n)
{
	for (unsigned c = 0; c < CNODE_POOL_CLASSES; c++) {
		uint64_t size = 1ull << (CNODE_POOL_MIN_SHIFT + c);
		for (uint64_t i = 0; n->pool[c]; i++) {
			DV_ASSERT(i < CNODE_POOL_BYTES_MAX); /* each block is at least 128 bytes of the bound */
			void *p = n->pool[c];
			n->pool[c] = *(void **)p;
			POOL_UNPOISON(p, size);
			free(p);
		}
	}
	n->pool_bytes = 0;
}

void *cnode_alloc(struct cnode *n, uint64_t bytes)
{
	DV_ASSERT(bytes > 0 && bytes < (1ull << 32));
	void *p = pool_get(n, bytes);
	if (p)
		n->buf_bytes += bytes;
	return p;
}

void cnode_release(struct cnode *n, void *p, uint64_t bytes)
{
	if (!p)
		return;
	DV_ASSERT(n->buf_bytes >= bytes && bytes > 0);
	n->buf_bytes -= bytes;
	pool_put(n, p, bytes);
}

static const uint8_t empty_bytes[1];

int cver_set(struct cnode *n, struct cver *v, const struct dvv *src)
{
	DV_ASSERT(src != &v->d);
	if (src->nvals && !src->v[0].data) {
		/* Clock only (dvv_decode_clock): no value bytes to own. */
		for (unsigned i = 0; i < src->nvals; i++)
			DV_ASSERT(src->v[i].data == NULL);
		cver_free(n, v);
		dvv_copy(&v->d, src);
		return 0;
	}
	uint64_t bytes = dvv_value_bytes(src);
	uint8_t *buf = NULL;
	if (bytes) {
		buf = cnode_alloc(n, bytes);
		if (!buf)
			return -ENOMEM;
	}
	/* src's values may point into v->buf: their bytes are copied out
	 * before it is released. */
	dvv_copy(&v->d, src);
	uint64_t off = 0;
	for (unsigned i = 0; i < v->d.nvals; i++) {
		struct dvv_value *dv = &v->d.v[i];
		DV_ASSERT(off + dv->len <= bytes);
		if (dv->len)
			memcpy(buf + off, dv->data, dv->len);
		dv->data = dv->len ? buf + off : empty_bytes;
		off += dv->len;
	}
	DV_ASSERT(off == bytes);
	cnode_release(n, v->buf, v->bytes);
	v->buf = buf;
	v->bytes = bytes;
	return 0;
}

void cver_free(struct cnode *n, struct cver *v)
{
	cnode_release(n, v->buf, v->bytes);
	v->buf = NULL;
	v->bytes = 0;
}

int cnode_encode(struct cnode *n, const struct dvv *d, uint8_t **buf, uint64_t *bytes, uint32_t *meta_len,
		 uint64_t *vals_len)
{
	uint32_t ml = dvv_meta_bytes(d);
	uint64_t vl = dvv_value_bytes(d);
	DV_ASSERT(ml >= DVV_META_HDR_BYTES && ml <= DVV_META_BYTES_MAX);
	uint8_t *p = cnode_alloc(n, ml + vl);
	if (!p)
		return -ENOMEM;
	dvv_encode(d, p, p + ml);
	cnode_release(n, *buf, *bytes);
	*buf = p;
	*bytes = ml + vl;
	*meta_len = ml;
	*vals_len = vl;
	return 0;
}

bool cnode_same_version(const struct dvv *a, const struct dvv *b)
{
	if (!dvv_equal(a, b))
		return false;
	if (a->policy != DVV_LWW)
		return true; /* dots are unique: the same clock holds the same values */
	/* An LWW value is ordered by its stamp, not by its entry's counter. */
	for (unsigned i = 0; i < a->nvals; i++)
		if (a->v[i].ts != b->v[i].ts)
			return false;
	return true;
}

/* ---- frames ---- */

void cnode_msg_init(const struct cnode *n, struct msg *m, uint8_t type, uint16_t to, uint64_t req_id)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = n->cfg.node_id;
	m->to = to;
	m->req_id = req_id;
	m->hlc = n->hlc.last;
}

struct frame_int *cnode_frame_build(struct cnode *n, const struct msg *m)
{
	size_t len = msg_encoded_bytes(m);
	DV_ASSERT(len >= MSG_HDR_BYTES && len <= MSG_BYTES_MAX);
	uint64_t bytes = sizeof(struct frame_int) + MSG_HEADROOM + len + MSG_TAILROOM;
	struct frame_int *f = cnode_alloc(n, bytes);
	if (!f)
		return NULL;
	memset(f, 0, sizeof(*f));
	f->f.to = m->to;
	f->f.data = (uint8_t *)(f + 1) + MSG_HEADROOM;
	f->f.len = (uint32_t)msg_encode(m, f->f.data);
	DV_ASSERT(f->f.len == len);
	f->type = m->type;
	f->bytes = bytes;
	return f;
}

void cnode_frame_drop(struct cnode *n, struct frame_int *f)
{
	cnode_release(n, f, f->bytes);
}

void cnode_output(struct cnode *n, struct frame_int *f)
{
	DV_ASSERT(f->owner == NULL && f->f.next == NULL);
	if (n->out_tail)
		n->out_tail->f.next = &f->f;
	else
		n->out_head = f;
	n->out_tail = f;
	n->out_bytes += f->bytes;
	n->st.msgs_out++;
	n->st.bytes_out += f->f.len;
}

void cnode_send(struct cnode *n, struct msg *m)
{
	struct frame_int *f = cnode_frame_build(n, m);
	if (f)
		cnode_output(n, f); /* else lost, as the network may lose it */
}

static void wq_unlink(struct cpeer *p, struct frame_int *f)
{
	DV_ASSERT(p->wq_len > 0);
	if (f->wprev)
		f->wprev->wnext = f->wnext;
	else
		p->wq_head = f->wnext;
	if (f->wnext)
		f->wnext->wprev = f->wprev;
	else
		p->wq_tail = f->wprev;
	f->wprev = f->wnext = NULL;
	p->wq_len--;
}

/* Send what the in-flight limit allows, in order. Untracked frames (their
 * request finished) go out as they reach the head. */
static void peer_pump(struct cnode *n, struct cpeer *p)
{
	uint32_t queued = p->wq_len;
	for (uint32_t i = 0; p->wq_head; i++) {
		DV_ASSERT(i < queued);
		struct frame_int *f = p->wq_head;
		if (f->owner && p->outstanding >= n->cfg.peer_inflight_max)
			break;
		wq_unlink(p, f);
		if (f->owner) {
			struct coord *c = f->owner;
			p->outstanding++;
			f->owner = NULL;
			coord_frame_sent(c, f->rep);
		}
		cnode_output(n, f);
	}
	DV_ASSERT(!p->wq_head || p->outstanding >= n->cfg.peer_inflight_max); /* I3 */
}

static uint8_t reply_type(uint8_t type)
{
	switch (type) {
	case MSG_REPL_PUT: return MSG_REPL_PUT_ACK;
	case MSG_REPL_GET: return MSG_REPL_GET_REPLY;
	case MSG_FWD_PUT: return MSG_FWD_PUT_REPLY;
	case MSG_SCAN: return MSG_SCAN_REPLY;
	default: DV_ASSERT(!"not a request type"); return 0;
	}
}

int cnode_send_tracked(struct cnode *n, struct coord *c, unsigned i, struct msg *m)
{
	struct crep *r = &c->rep[i];
	DV_ASSERT(!r->self && r->peer < n->ring.nnodes && r->node == m->to);
	DV_ASSERT(r->st == REP_IDLE);
	struct cpeer *p = &n->peers[r->peer];
	struct frame_int *f = cnode_frame_build(n, m);
	if (!f)
		return -ENOMEM;
	r->expect = reply_type(m->type);
	if (p->wq_len == 0 && p->outstanding < n->cfg.peer_inflight_max) {
		p->outstanding++;
		r->st = REP_SENT;
		cnode_output(n, f);
		return 0;
	}
	f->owner = c;
	f->rep = (uint8_t)i;
	f->wprev = p->wq_tail;
	if (p->wq_tail)
		p->wq_tail->wnext = f;
	else
		p->wq_head = f;
	p->wq_tail = f;
	p->wq_len++;
	r->st = REP_QUEUED;
	r->queued = f;
	return 0;
}

void cnode_untrack(struct cnode *n, struct coord *c, unsigned i)
{
	struct crep *r = &c->rep[i];
	if (r->st != REP_SENT && r->st != REP_QUEUED)
		return;
	if (r->self) {
		r->st = REP_IDLE; /* the local op runs on; its reply will find nobody */
		return;
	}
	struct cpeer *p = &n->peers[r->peer];
	if (r->st == REP_SENT) {
		DV_ASSERT(p->outstanding > 0);
		p->outstanding--;
	} else {
		struct frame_int *f = r->queued;
		DV_ASSERT(f && f->owner == c && f->rep == i);
		if (f->type == MSG_REPL_PUT) {
			f->owner = NULL; /* a write still goes out, untracked */
		} else {
			wq_unlink(p, f);
			cnode_frame_drop(n, f);
		}
		r->queued = NULL;
	}
	r->st = REP_IDLE;
	peer_pump(n, p);
}

struct cnode_frame *cnode_take_frames(struct cnode *n)
{
	struct frame_int *head = n->out_head;
	DV_ASSERT(n->buf_bytes >= n->out_bytes);
	n->buf_bytes -= n->out_bytes; /* the driver's now */
	n->out_bytes = 0;
	n->out_head = n->out_tail = NULL;
	return head ? &head->f : NULL;
}

void cnode_frame_free(struct cnode *n, struct cnode_frame *f)
{
	/* The driver's (cnode_take_frames took it out of buf_bytes): back to
	 * the pool without touching the budget. */
	struct frame_int *fi = cnode_container(f, struct frame_int, f);
	pool_put(n, fi, fi->bytes);
}

/* ---- messages in ---- */

static void on_ping(struct cnode *n, const struct msg *in)
{
	struct msg m;
	cnode_msg_init(n, &m, MSG_PONG, in->from, in->req_id);
	m.nonce = in->nonce;
	cnode_send(n, &m);
}

static void advance(struct cnode *n, uint64_t now_ms)
{
	if (now_ms > n->now_ms)
		n->now_ms = now_ms;
}

void cnode_prefetch_message(const struct cnode *n, const uint8_t *buf, size_t len)
{
	const uint8_t *key;
	uint16_t key_len;
	if (!msg_peek_key(buf, len, &key, &key_len))
		return;
	uint64_t h = dv_key_hash64(key, key_len); /* the store's key hash too (store_key_hash) */
	rcache_prefetch(&n->rcache, h);
	__builtin_prefetch(&n->key_holders[h & n->key_holders_mask], 0, 3);
	store_prefetch(n->s, h);
}

void cnode_on_message(struct cnode *n, uint16_t from, const uint8_t *buf, size_t len, uint64_t now_ms)
{
	DV_ASSERT(n && (buf || len == 0));
	advance(n, now_ms);
	n->st.msgs_in++;
	n->st.bytes_in += len;
	struct msg m;
	if (msg_decode(buf, len, &m) != 0 || m.to != n->cfg.node_id || m.from != from ||
	    from == n->cfg.node_id || cnode_peer_index(n, from) == CNODE_PEER_NONE) {
		n->st.bad_msgs++;
		return;
	}
	hlc_observe(&n->hlc, m.hlc, n->now_ms);
	switch (m.type) {
	case MSG_FLUSH:
	case MSG_FLUSH_ACK:
	case MSG_FLUSH_STATE_GET:
	case MSG_FLUSH_STATE:
	case MSG_COUNT:
	case MSG_COUNT_REPLY:
		flush_on_message(n, from, &m);
		break;
	case MSG_SCAN:
		scan_replica(n, &m); /* a refusal is answered there */
		break;
	case MSG_SCAN_REPLY:
		coord_on_reply(n, from, &m);
		break;
	case MSG_REPL_PUT:
	case MSG_REPL_GET:
		replica_request(n, &m); /* a refusal is answered there */
		break;
	case MSG_REPL_PUT_ACK:
	case MSG_REPL_GET_REPLY:
	case MSG_FWD_PUT_REPLY:
		coord_on_reply(n, from, &m);
		break;
	case MSG_FWD_PUT:
		coord_on_fwd(n, from, &m);
		break;
	case MSG_PING:
		on_ping(n, &m);
		break;
	default: /* PONG: failure detection comes with the next issue */
		break;
	}
	cnode_store_pump(n);
	coord_deliver_due(n);
}

/* ---- requests ---- */

static bool creq_valid(const struct cnode *n, const struct creq *rq)
{
	if (!rq->done || rq->kind < CREQ_GET || rq->kind > CREQ_COUNT)
		return false;
	if (rq->kind == CREQ_FLUSH)
		return rq->ks_mask != 0; /* checked against the keyspaces by flush_submit */
	if (!cnode_ks_ok(n, rq->keyspace))
		return false;
	if (rq->kind == CREQ_SCAN)
		return rq->count >= 1 && rq->count <= CNODE_SCAN_COUNT_MAX;
	if (rq->kind == CREQ_COUNT)
		return true;
	if (rq->key_len > CNODE_KEY_BYTES_MAX || (rq->key_len && !rq->key))
		return false;
	if (rq->r > n->ks_n[rq->keyspace] || rq->w > n->ks_n[rq->keyspace])
		return false;
	if ((unsigned)rq->cond > CREQ_IF_PRESENT)
		return false;
	bool has_value = rq->kind == CREQ_SET || rq->kind == CREQ_DYN_PUT;
	if (has_value && ((rq->val_len && !rq->value) || rq->val_len > DV_VALUE_BYTES_MAX))
		return false;
	if ((rq->kind == CREQ_DYN_PUT || rq->kind == CREQ_DYN_DEL) && rq->ctx_len && !rq->ctx)
		return false;
	return rq->kind != CREQ_RMW || rq->decide != NULL;
}

int cnode_submit(struct cnode *n, struct creq *rq, uint64_t now_ms)
{
	DV_ASSERT(n && rq);
	advance(n, now_ms);
	if (!creq_valid(n, rq))
		return -EINVAL;
	uint64_t bytes = rq->kind == CREQ_SET || rq->kind == CREQ_DYN_PUT ? rq->val_len : 0;
	if (n->destroying || n->coords_open >= n->cfg.requests_max || !cnode_budget_ok(n, bytes)) {
		n->st.busy_refusals++;
		return -EAGAIN;
	}
	bool was = n->in_submit;
	DV_ASSERT(!was); /* done() never runs inside cnode_submit, so neither does a nested one */
	n->in_submit = true;
	int rc = rq->kind == CREQ_FLUSH ? flush_submit(n, rq) : rq->kind == CREQ_COUNT ? count_submit(n, rq)
										   : coord_submit(n, rq);
	n->in_submit = was;
	return rc;
}

void cnode_peer_up(struct cnode *n, uint16_t peer, uint64_t now_ms)
{
	advance(n, now_ms);
	/* A new session: the peer may be a new run of its node, whose request
	 * ids need not pass the old run's (a node restarted on a wiped data
	 * file starts again at a first start's boot), so its FWD_PUT duplicate window starts
	 * afresh. Nothing of an earlier session arrives after this one is up
	 * (the driver closed it), and a sender never resends a FWD_PUT. */
	uint16_t pi = cnode_peer_index(n, peer);
	if (pi != CNODE_PEER_NONE) {
		n->peers[pi].fwd_max = 0;
		memset(n->peers[pi].fwd_bits, 0, sizeof(n->peers[pi].fwd_bits));
		n->peers[pi].read_slow_until = 0; /* reads may ask it first again (coord.c) */
	}
	flush_peer(n, peer, true);
}

void cnode_peer_down(struct cnode *n, uint16_t peer, uint64_t now_ms)
{
	advance(n, now_ms);
	flush_peer(n, peer, false);
	coord_peer_down(n, peer);
}

bool cnode_ready(const struct cnode *n) { return n->synced; }

void cnode_filter_stored(const struct cnode *n, uint8_t ks, uint64_t seq, struct dvv *d)
{
	DV_ASSERT(cnode_ks_ok(n, ks));
	flush_filter(n, ks, seq, d);
}

/* ---- time ---- */

void cnode_tick(struct cnode *n, uint64_t now_ms)
{
	DV_ASSERT(n);
	advance(n, now_ms);
	cnode_store_pump(n);
	coord_deliver_due(n);
	DV_ASSERT(!n->in_submit); /* done() never runs inside cnode_submit */
	coord_tick(n);
	flush_tick(n);
	scan_tick(n);
}

uint64_t cnode_next_deadline(const struct cnode *n)
{
	if (n->due_head || n->stalled_head || n->deferred_head)
		return n->now_ms;
	return n->next_deadline;
}

bool cnode_idle(const struct cnode *n)
{
	return n->coords_open == 0 && n->rops_open == 0 && n->store_ops == 0 && !n->stalled_head &&
	       !n->deferred_head && !n->flush_wait_head && n->flush_store_ops == 0 && scan_idle(n) &&
	       !cnode_bcast_open(n);
}

void cnode_get_stats(const struct cnode *n, struct cnode_stats *out)
{
	*out = n->st;
	out->requests_in_flight = n->coords_open;
	out->replica_ops_in_flight = n->rops_open;
	out->cache_hits = n->rcache.hits;
	out->cache_misses = n->rcache.misses;
	out->cache_bytes = n->rcache.bytes;
	out->cache_entries = n->rcache.entries;
}

uint64_t cnode_actor(const struct cnode *n) { return n->actor; }

bool cnode_cached_record(const struct cnode *n, const uint8_t *skey, uint32_t len, struct store_record_out *out)
{
	const struct rcache_entry *e = rcache_peek(&n->rcache, skey, len, dv_key_hash64(skey, len));
	if (!e)
		return false;
	*out = (struct store_record_out){.value = rcache_vals(e), .val_len = e->val_len, .meta = rcache_meta(e),
					 .meta_len = e->meta_len, .seq = e->seq};
	return true;
}

uint64_t cnode_next_run(const struct cnode *n, uint64_t run)
{
	uint64_t next = (run + CNODE_RENEW_STEP) & DVV_INCARNATION_MASK;
	if (!(run >> 47) && n->now_ms > CNODE_INCARNATION_EPOCH_MS + 1) {
		/* The previous millisecond's greatest: below every start's draw
		 * from now on (the simulator checks each start is above the last). */
		uint64_t floor = cnode_fresh_incarnation(n->now_ms - 1, 127);
		if (floor > next && !(floor >> 47))
			next = floor;
	}
	DV_ASSERT(next == 0 || next > run);
	return next ? next : 1;
}

void cnode_renew_actor(struct cnode *n)
{
	n->run = cnode_next_run(n, n->run);
	n->actor = dvv_actor(n->cfg.node_id, n->run);
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++)
		flush_renew_ks_actor(n, (uint8_t)ks);
	n->renewals++;
	n->st.actor_renewals++;
}

/* When incarnation inc of a node started (unix ms; cnode_fresh_incarnation),
 * or 0 when it was not drawn from a clock. */
static uint64_t incarnation_start_ms(uint64_t inc)
{
	inc &= DVV_INCARNATION_MASK;
	return inc >> 47 ? 0 : (inc >> 7) + CNODE_INCARNATION_EPOCH_MS;
}

/* keep[] for cnode_prune: our actor, every replica node's newest entry in
 * d, and (young) each retired entry of a replica node whose newest entry
 * started less than CNODE_PRUNE_GRACE_MS ago. */
static unsigned prune_keep(const struct cnode *n, uint8_t ks, const uint16_t *pref, unsigned cnt, const struct dvv *d,
			   bool young, uint64_t *keep)
{
	unsigned nkeep = 0;
	keep[nkeep++] = cnode_ks_actor(n, ks); /* our next dot is issued from our entry: never dropped here */
	/* Entries are sorted by actor, so a node's are together, its newest
	 * incarnation last. */
	for (unsigned i = 0; i < d->nentries;) {
		uint16_t node = dvv_actor_node(d->e[i].actor);
		unsigned last = i;
		while (last + 1 < d->nentries && dvv_actor_node(d->e[last + 1].actor) == node)
			last++;
		bool replica = false;
		for (unsigned j = 0; j < cnt; j++)
			replica |= pref[j] == node;
		if (replica) {
			uint64_t since = incarnation_start_ms(d->e[last].actor);
			bool recent = young && (since == 0 || n->now_ms < since + CNODE_PRUNE_GRACE_MS);
			for (unsigned k = recent ? i : last; k <= last; k++) {
				DV_ASSERT(nkeep < DVV_ENTRIES_MAX + 1);
				keep[nkeep++] = d->e[k].actor;
			}
		}
		i = last + 1;
	}
	return nkeep;
}

void cnode_prune(const struct cnode *n, const uint8_t *key, uint32_t key_len, struct dvv *d)
{
	DV_ASSERT(key_len >= 1 && cnode_ks_ok(n, key[0]));
	unsigned nrep = n->ks_n[key[0]], max = nrep + CNODE_PRUNE_EXTRA;
	if (d->nentries <= max)
		return;
	uint16_t pref[RING_N_MAX];
	unsigned cnt = ring_preflist(&n->ring, ring_partition(&n->ring, store_key_hash(key, key_len)), nrep, pref);
	uint64_t keep[DVV_ENTRIES_MAX + 1];
	dvv_prune(d, keep, prune_keep(n, key[0], pref, cnt, d, true, keep), max);
	if (d->nentries > CNODE_PRUNE_HARD)
		dvv_prune(d, keep, prune_keep(n, key[0], pref, cnt, d, false, keep), CNODE_PRUNE_HARD);
}

bool cnode_bcast_open(const struct cnode *n)
{
	for (unsigned i = 0; i < CNODE_BCAST_MAX; i++)
		if (n->bcast[i].used)
			return true;
	return false;
}

/* ---- keys, identity ---- */

uint32_t cnode_store_key(uint8_t keyspace, const void *key, uint32_t key_len, uint8_t *out)
{
	DV_ASSERT(key_len <= CNODE_KEY_BYTES_MAX && (key || key_len == 0));
	out[0] = keyspace;
	if (key_len)
		memcpy(out + 1, key, key_len);
	return key_len + 1;
}

/* The identity record: u32 magic "DVID" | u16 format (1) | u16 node id |
 * u64 cluster id | u64 incarnation | u32 boot base. Written once, when the
 * data file gets its incarnation; a start writes nothing (a full device
 * could not take a record at every start: node.h). The base is 0 in a
 * record written so; one written by an earlier dynvme, which rewrote it at
 * every start, holds the count of starts then (its last run's boot), and
 * every boot from now on is above it (start_boot). */
#define IDENT_MAGIC 0x44495644u
#define IDENT_BYTES 28u
static const uint8_t ident_key[] = {CNODE_KEYSPACE_META, 'i', 'd', 'e', 'n', 't', 'i', 't', 'y'};

struct sync_op {
	struct store_op op;
	bool done;
	uint8_t val[IDENT_BYTES];
	uint32_t val_len;
};

static void sync_done(struct store_op *op)
{
	struct sync_op *w = (struct sync_op *)op;
	w->done = true;
	if (op->kind == STORE_GET && op->result == 0) {
		w->val_len = op->out.val_len;
		if (w->val_len <= IDENT_BYTES)
			memcpy(w->val, op->out.value, w->val_len);
	}
}

static int sync_run(struct store *s, struct sync_op *w)
{
	w->op.done = sync_done;
	w->op.key = ident_key;
	w->op.key_len = sizeof(ident_key);
	int err = store_submit(s, &w->op);
	if (err)
		return err;
	for (unsigned i = 0; !w->done; i++) {
		if (i >= CNODE_POLL_ROUNDS_MAX)
			return -ETIMEDOUT;
		int rc = store_poll(s, true);
		if (rc < 0)
			return rc;
	}
	return w->op.result;
}

static int identity_parse(const struct sync_op *w, struct cnode_identity *out)
{
	if (w->val_len != IDENT_BYTES || le_get32(w->val) != IDENT_MAGIC || le_get16(w->val + 4) != 1)
		return -DV_ECORRUPT;
	out->node_id = le_get16(w->val + 6);
	out->cluster_id = le_get64(w->val + 8);
	out->incarnation = le_get64(w->val + 16);
	out->boot = le_get32(w->val + 24);
	if (out->incarnation == 0 || out->incarnation > DVV_INCARNATION_MASK)
		return -DV_ECORRUPT;
	return 0;
}

/* Write a new data file's identity record durably (boot base 0). It may
 * take the zone the store keeps for GC (store_op.reserve): one small record
 * in the life of the data file, written before any user data. */
static int identity_create(struct store *s, const struct cnode_identity *id)
{
	DV_ASSERT(id->incarnation != 0 && id->incarnation <= DVV_INCARNATION_MASK);
	struct sync_op put = {.op = {.kind = STORE_PUT, .cond = STORE_IF_ABSENT, .reserve = true}};
	le_put32(put.val, IDENT_MAGIC);
	le_put16(put.val + 4, 1);
	le_put16(put.val + 6, id->node_id);
	le_put64(put.val + 8, id->cluster_id);
	le_put64(put.val + 16, id->incarnation);
	le_put32(put.val + 24, 0);
	put.op.value = put.val;
	put.op.val_len = IDENT_BYTES;
	return sync_run(s, &put);
}

/* This start's boot: the record's base plus the store's open stamp, which
 * grows at every open of the data file (store_open_stamp: durable before
 * store_open returned), so it is above every earlier start's, and above
 * the count of starts an earlier dynvme kept in the record (stamps are >=
 * 1). Never 0 (0 is "no boot count" for cnode_config). */
static uint32_t start_boot(uint32_t base, uint64_t stamp)
{
	DV_ASSERT(stamp != 0);
	uint32_t boot = (uint32_t)(base + stamp);
	return boot ? boot : 1;
}

int cnode_identity_load(struct store *s, uint64_t cluster_id, uint16_t node_id, uint64_t fresh,
			struct cnode_identity *out)
{
	DV_ASSERT(s && out);
	memset(out, 0, sizeof(*out));
	uint64_t inc = fresh & DVV_INCARNATION_MASK;
	if (node_id == 0 || inc == 0)
		return -EINVAL;
	uint64_t stamp = store_open_stamp(s);
	if (stamp == 0)
		return -EROFS; /* a read-only open: no start */
	struct sync_op get = {.op = {.kind = STORE_GET}};
	int err = sync_run(s, &get);
	if (err == 0) {
		err = identity_parse(&get, out);
		if (err)
			return err;
		if (out->cluster_id != cluster_id)
			return -EXDEV;
		if (out->node_id != node_id)
			return -EINVAL;
		out->boot = start_boot(out->boot, stamp); /* nothing written: node.h */
		out->run = inc; /* a new actor at every start (node.h: Actors) */
		return 0;
	}
	if (err != -DV_ENOTFOUND)
		return err;
	struct store_stats st;
	store_get_stats(s, &st);
	if (st.keys > st.tombstones)
		return -DV_EFORMAT; /* data, but not a cluster node's */
	struct cnode_identity id = {.cluster_id = cluster_id, .node_id = node_id, .incarnation = inc, .run = inc,
				    .boot = start_boot(0, stamp)};
	err = identity_create(s, &id);
	if (err)
		return err;
	*out = id;
	out->created = true;
	return 0;
}
