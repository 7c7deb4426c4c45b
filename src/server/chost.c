/* chost.c - the cluster host: start-up, eops to creqs and back, the loop
 * hooks (contract: chost.h).
 *
 * A routed eop's life (worker 0):
 *
 *   engine_turn --route--> chreq --+-- write of a key already in flight --> kslot wait list
 *                                  |                                          | (head done)
 *                                  +-- cnode full (-EAGAIN) --> backlog        v
 *                                  |                                     ready list
 *                                  +--cnode_submit--> cnode ... done() --map--> engine_complete
 *
 * Invariants:
 * 1. reqs_open counts chreqs taken and not yet completed; each is in exactly
 *    one of: a kslot wait list, the ready list, the backlog, the cnode.
 * 2. A kslot's head is the one write of that key in the cnode, backlog or
 *    ready list; the others wait behind it, chained through knext (next is
 *    the backlog's, the ready list's or the free list's link). A kslot
 *    exists exactly while some write of its key is open.
 * 3. cnode_submit is called only from chost_route (inside engine_turn,
 *    before its store_poll) and chost_before (before engine_turn): never
 *    from a done() callback, and always followed by a store_poll in the
 *    same round, so a store operation the cnode submits is started.
 * 4. A done() copies everything the reply needs into the eop before
 *    engine_complete: the creq's views die with the callback.
 */
#include "server/chost.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/error.h"
#include "base/hash.h"
#include "server/chost_int.h"
#include "server/log.h"
#include "server/server_int.h"

_Static_assert(CLUSTER_PEERS_MAX + 1 == RING_NODES_MAX, "members fit the ring");
_Static_assert(CLUSTER_KEYSPACES_MAX == CNODE_KEYSPACES_MAX, "keyspaces match the cnode's");
_Static_assert(CLUSTER_NAME_BYTES == CNODE_NAME_BYTES, "keyspace names match");
_Static_assert(CLUSTER_N_MAX == RING_N_MAX && CLUSTER_SIBLINGS_MAX == DVV_VALUES_MAX, "bounds match");
_Static_assert((int)CLUSTER_SIBLINGS == (int)DVV_SIBLINGS && (int)CLUSTER_LWW == (int)DVV_LWW, "policies match");
_Static_assert((CHOST_KEY_BUCKETS & (CHOST_KEY_BUCKETS - 1)) == 0, "buckets are a power of two");

#define SECRET_BYTES_MAX 4096u
/* After a read answered, how long it waits for the other replicas before
 * its read repair: short, because until failure detection (next issue) a
 * dead replica holds every read (and its request slot) this long. */
#define CHOST_REPAIR_WAIT_MS 500u
#define CHOST_REQUESTS_MAX 16384u /* requests the cnode coordinates at once */

/* ---- start-up ---- */

/* The secret: the file's bytes less trailing white space. Refused when it
 * is not a regular file, is readable or writable by group or others, or
 * holds fewer than 16 bytes. */
static int read_secret(const char *path, uint8_t *out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int err = -errno;
		log_error("cannot open cluster-secret-file", "path=%s error=\"%s\"", path, strerror(-err));
		return err;
	}
	struct stat st;
	int err = fstat(fd, &st) ? -errno : 0;
	if (!err && !S_ISREG(st.st_mode)) {
		log_error("cluster-secret-file is not a regular file", "path=%s", path);
		err = -EINVAL;
	}
	if (!err && (st.st_mode & 077)) {
		log_error("cluster-secret-file is accessible by group or others: chmod 600 it", "path=%s mode=%04o",
			  path, (unsigned)(st.st_mode & 07777));
		err = -EACCES;
	}
	ssize_t n = err ? 0 : read(fd, out, SECRET_BYTES_MAX);
	if (!err && n < 0)
		err = -errno;
	close(fd);
	if (err)
		return err;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	if (n < 16) {
		log_error("cluster-secret-file holds fewer than 16 bytes", "path=%s bytes=%zd", path, n);
		return -EINVAL;
	}
	*len = (size_t)n;
	return 0;
}

/* The key of client contexts (dvv.h), from the wire key: the same on every
 * member, different from every session key. */
static void derive_ctx_key(const uint8_t wire_key[WIRE_KEY_BYTES], uint8_t out[DVV_CTX_KEY_BYTES])
{
	static const char label[] = "dynvme-context-key-1";
	DV_ASSERT(crypto_generichash(out, DVV_CTX_KEY_BYTES, (const uint8_t *)label, sizeof(label) - 1, wire_key,
				     WIRE_KEY_BYTES) == 0);
}

/* Every start draws one (node.h: Actors): from the clock, so later
 * starts draw greater ones, and random bits. */
static uint64_t fresh_incarnation(void)
{
	uint64_t x = 0;
	if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
		randombytes_buf(&x, sizeof(x));
	return cnode_fresh_incarnation(store_now_ms(), x);
}

static int load_identity(struct chost *ch)
{
	const struct cluster_config *cc = ch->cc;
	int err = cnode_identity_load(ch->s, cc->cluster_id, cc->node_id, fresh_incarnation(), &ch->id);
	switch (err) {
	case 0:
		log_info("cluster identity",
			 "node_id=%u cluster_id=%016llx incarnation=%012llx run=%012llx boot=%u created=%s", cc->node_id,
			 (unsigned long long)cc->cluster_id, (unsigned long long)ch->id.incarnation,
			 (unsigned long long)ch->id.run, ch->id.boot, ch->id.created ? "yes" : "no");
		return 0;
	case -EXDEV:
		log_error("the data file belongs to another cluster", "path=%s cluster_id=%016llx",
			  ch->srv->cfg->data, (unsigned long long)cc->cluster_id);
		return err;
	case -EINVAL:
		log_error("the data file belongs to another node id of this cluster", "path=%s node_id=%u",
			  ch->srv->cfg->data, cc->node_id);
		return err;
	case -DV_EFORMAT:
		log_error("the data file holds keys but no cluster identity (a single-node data file?): give this "
			  "node its own data path", "path=%s", ch->srv->cfg->data);
		return err;
	case -EROFS: /* store_open_stamp 0: the store opened failed (cnode_identity_load) */
		log_error("cannot start a cluster node on a store that refuses writes (its device refused the open's "
			  "superblock write): a start must be recorded before the node acts",
			  "path=%s", ch->srv->cfg->data);
		return err;
	default:
		log_error("cannot load the cluster identity", "path=%s error=\"%s\"", ch->srv->cfg->data,
			  dv_strerror(err));
		return err;
	}
}

static int make_ring(struct chost *ch)
{
	const struct cluster_config *cc = ch->cc;
	uint16_t nodes[RING_NODES_MAX];
	nodes[0] = cc->node_id;
	for (unsigned i = 0; i < cc->npeers; i++)
		nodes[i + 1] = cc->peers[i].id;
	int err = ring_init_even(&ch->ring, cc->partitions, nodes, cc->npeers + 1);
	if (err)
		log_error("cannot build the partition table", "partitions=%u nodes=%u error=\"%s\"", cc->partitions,
			  cc->npeers + 1, strerror(-err));
	return err;
}

static int make_cnode(struct chost *ch)
{
	const struct cluster_config *cc = ch->cc;
	struct cnode_config cfg = {.node_id = cc->node_id, .incarnation = ch->id.incarnation, .run = ch->id.run,
				   .boot = ch->id.boot,
				   .cluster_id = cc->cluster_id, .ring = &ch->ring, .timeout_ms = cc->timeout_ms,
				   .checked_sets = cc->checked_sets,
				   .repair_wait_ms = cc->timeout_ms < CHOST_REPAIR_WAIT_MS ? cc->timeout_ms
											   : CHOST_REPAIR_WAIT_MS,
				   .requests_max = CHOST_REQUESTS_MAX,
				   /* cache-bytes: the engine's value cache is off in cluster mode
				    * (its writes bypass the engine); the replica's read cache
				    * takes its place. */
				   .read_cache_bytes = ch->srv->cfg->cache_bytes};
	derive_ctx_key(ch->wire_key, cfg.ctx_key);
	for (unsigned i = 0; i < CLUSTER_KEYSPACES_MAX; i++) {
		const struct cluster_keyspace *k = cluster_keyspace(cc, i);
		struct cluster_keyspace eff;
		if (!k || !cluster_keyspace_eff(cc, i, &eff))
			continue;
		struct cnode_keyspace *o = &cfg.ks[i];
		*o = (struct cnode_keyspace){.defined = true, .n = k->n, .r = k->r, .w = k->w, .policy = k->policy,
					     .siblings_max = k->siblings_max};
		snprintf(o->name, sizeof(o->name), "%s", k->name);
		if (eff.n > ch->nmax)
			ch->nmax = eff.n;
	}
	int err = cnode_create(&ch->cn, &cfg, ch->s, store_now_ms());
	sodium_memzero(cfg.ctx_key, sizeof(cfg.ctx_key));
	if (err)
		log_error("cannot create the cluster node", "error=\"%s\"", dv_strerror(err));
	return err;
}

int chost_open(struct chost **out, struct server *srv)
{
	struct chost *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->srv = srv;
	ch->cc = &srv->cfg->cluster;
	ch->s = srv->store;
	ch->listen_fd = -1;
	uint8_t secret[SECRET_BYTES_MAX];
	size_t secret_len = 0;
	int err = read_secret(ch->cc->secret_file, secret, &secret_len);
	if (!err)
		err = wire_key_from_secret(secret, secret_len, ch->wire_key);
	sodium_memzero(secret, sizeof(secret));
	if (!err)
		err = make_ring(ch);
	if (!err)
		err = load_identity(ch);
	if (!err)
		err = make_cnode(ch);
	if (!err)
		err = peer_setup(ch);
	if (err) {
		/* The cnode may have started its key count (store ops of its
		 * own): finish them before it is destroyed. */
		if (ch->cn)
			(void)store_drain(ch->s);
		chost_close(ch);
		chost_free(ch);
		return err;
	}
	log_info("cluster node ready", "node_id=%u nodes=%u partitions=%u internode=%s:%u owned=%u replicated=%u",
		 ch->cc->node_id, ch->ring.nnodes, ch->ring.q, ch->cc->internode_bind, ch->cc->internode_port,
		 ring_owned_count(&ch->ring, ch->cc->node_id),
		 ring_replicated_count(&ch->ring, ch->nmax, ch->cc->node_id));
	*out = ch;
	return 0;
}

void chost_attach(struct chost *ch, struct worker *w0)
{
	DV_ASSERT(w0->host && !ch->w);
	ch->w = w0;
	ch->eng = w0->srv->engine;
	DV_ASSERT(ch->eng);
	peer_start(ch);
}

void chost_close(struct chost *ch)
{
	if (!ch)
		return;
	DV_ASSERT(ch->reqs_open == 0);
	if (ch->cn)
		cnode_destroy(ch->cn); /* the store is drained: no op of its own is left */
	ch->cn = NULL;
	ring_free(&ch->ring);
	sodium_memzero(ch->wire_key, sizeof(ch->wire_key));
}

void chost_free(struct chost *ch)
{
	if (!ch)
		return;
	peer_free_all(ch);
	while (ch->free_reqs) {
		struct chreq *q = ch->free_reqs;
		ch->free_reqs = q->next;
		free(q);
	}
	while (ch->free_kslots) {
		struct kslot *k = ch->free_kslots;
		ch->free_kslots = k->next;
		free(k);
	}
	free(ch);
}

/* ---- per-key order of writes ---- */

static uint64_t key_hash(uint8_t keyspace, const void *key, uint32_t len)
{
	return dv_key_hash64(key, len) ^ ((uint64_t)keyspace * 0x9e3779b97f4a7c15ull);
}

static bool same_key(const struct kslot *k, const struct chreq *q)
{
	const struct creq *a = &k->head->rq, *b = &q->rq;
	return k->keyspace == b->keyspace && a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

/* True when q may run now (it holds its key's slot); false when it waits
 * behind an earlier write of the same key. -ENOMEM: no slot. */
static int kslot_enter(struct chost *ch, struct chreq *q)
{
	uint64_t h = key_hash(q->rq.keyspace, q->rq.key, q->rq.key_len);
	struct kslot **b = &ch->kslots[h & (CHOST_KEY_BUCKETS - 1)];
	for (struct kslot *k = *b; k; k = k->next) {
		if (k->hash == h && same_key(k, q)) {
			q->ks = k;
			q->knext = NULL;
			k->tail->knext = q;
			k->tail = q;
			return 0;
		}
	}
	struct kslot *k = ch->free_kslots;
	if (k)
		ch->free_kslots = k->next;
	else if (!(k = malloc(sizeof(*k))))
		return -ENOMEM;
	*k = (struct kslot){.next = *b, .hash = h, .keyspace = q->rq.keyspace, .head = q, .tail = q};
	*b = k;
	q->ks = k;
	q->knext = NULL;
	return 1;
}

static void ready_push(struct chost *ch, struct chreq *q)
{
	q->next = NULL;
	if (ch->ready_tail)
		ch->ready_tail->next = q;
	else
		ch->ready_head = q;
	ch->ready_tail = q;
}

/* q (its slot's head) is finished: the next write of the key may run. */
static void kslot_leave(struct chost *ch, struct chreq *q)
{
	struct kslot *k = q->ks;
	DV_ASSERT(k && k->head == q);
	q->ks = NULL;
	struct chreq *next = q->knext;
	if (next) {
		k->head = next;
		ready_push(ch, next); /* submitted by chost_before (invariant 3) */
		return;
	}
	struct kslot **pp = &ch->kslots[k->hash & (CHOST_KEY_BUCKETS - 1)];
	while (*pp != k)
		pp = &(*pp)->next;
	*pp = k->next;
	k->next = ch->free_kslots;
	ch->free_kslots = k;
}

/* ---- results back into the eop ---- */

/* Client-visible codes (cmd_store_error): reads that time out wrote
 * nothing (-ETIME); writes that time out are indeterminate (-ETIMEDOUT). */
static int map_error(const struct chreq *q, int res)
{
	switch (res) {
	case -ETIMEDOUT:
	case -ECANCELED:
		if (q->rq.kind == CREQ_FLUSH)
			return -EINPROGRESS; /* on some nodes: the others apply it when they next reach one */
		if (q->rq.kind == CREQ_COUNT)
			return -ENOLINK; /* no count at all: not a read of a key */
		return q->write ? -ETIMEDOUT : -ETIME;
	case -EINVAL:
		return q->rq.kind == CREQ_DYN_PUT || q->rq.kind == CREQ_DYN_DEL ? -EBADMSG : -EINVAL;
	case -E2BIG: /* the sibling or version bounds; -E2BIG is the reply budget's (engine.h) */
		return -EMLINK;
	default:
		return res;
	}
}

/* As a store read's: no_value and the gather budget apply (engine.h). */
static int keep_value(struct eop *op, const uint8_t *val, uint32_t len, uint64_t expire_ms)
{
	return eop_keep_read(op, val, len, expire_ms);
}

/* DYN.GET: meta = the context text, val = nsib u32 lengths then the values. */
static int keep_siblings(struct eop *op, const struct creq *rq)
{
	size_t bytes = (size_t)rq->nsiblings * 4u;
	for (uint32_t i = 0; i < rq->nsiblings; i++)
		bytes += rq->sib_len[i];
	int err = eop_keep_alloc(op, rq->ctx_out_len, bytes);
	if (err)
		return err;
	memcpy(op->meta, rq->ctx_out, rq->ctx_out_len);
	uint8_t *p = (uint8_t *)op->val, *v = p + (size_t)rq->nsiblings * 4u;
	for (uint32_t i = 0; i < rq->nsiblings; i++) {
		memcpy(p + 4 * i, &rq->sib_len[i], 4);
		if (rq->sib_len[i])
			memcpy(v, rq->sib[i], rq->sib_len[i]);
		v += rq->sib_len[i];
	}
	op->dyn.nsib = rq->nsiblings;
	return 0;
}

/* SCAN: the keys as an engine scan step gives them (engine.h: u16 length
 * then the key, in op->val), the next cursor in op->cursor. */
static int keep_scan(struct eop *op, const struct creq *rq)
{
	size_t bytes = 0;
	for (uint32_t i = 0; i < rq->nkeys; i++)
		bytes += 2u + rq->keys[i].len;
	int err = eop_keep_alloc(op, 0, bytes);
	if (err)
		return err;
	uint8_t *p = (uint8_t *)op->val;
	for (uint32_t i = 0; i < rq->nkeys; i++) {
		uint32_t len = rq->keys[i].len;
		DV_ASSERT(len <= CNODE_KEY_BYTES_MAX);
		p[0] = (uint8_t)len;
		p[1] = (uint8_t)(len >> 8);
		memcpy(p + 2, rq->keys[i].p, len);
		p += 2u + len;
	}
	op->nkeys = rq->nkeys;
	op->cursor = rq->next_cursor;
	return 0;
}

/* The eop's result as the store would have given it, so the commands'
 * reply() functions work unchanged. */
static int map_result(struct chreq *q)
{
	struct creq *rq = &q->rq;
	struct eop *op = q->op;
	if (rq->result && rq->result != -EEXIST && rq->result != -DV_ENOTFOUND)
		return map_error(q, rq->result);
	switch (rq->kind) {
	case CREQ_GET:
		if (!rq->found)
			return -DV_ENOTFOUND;
		return keep_value(op, rq->val, rq->val_len_out, rq->val_expire_ms);
	case CREQ_SET:
		return rq->result; /* 0, or the NX/XX condition: -EEXIST, -DV_ENOTFOUND */
	case CREQ_DEL:
		return rq->result ? rq->result : rq->found ? 0 : -DV_ENOTFOUND;
	case CREQ_DYN_GET:
		return keep_siblings(op, rq);
	case CREQ_DYN_PUT:
	case CREQ_DYN_DEL:
		return rq->result;
	case CREQ_RMW:
		return rq->result ? rq->result : op->result; /* decide() set it */
	case CREQ_INCR:
		op->reply_int = rq->counter;
		return 0;
	case CREQ_FLUSH:
		return 0;
	case CREQ_SCAN:
		return keep_scan(op, rq);
	case CREQ_COUNT:
		op->reply_int = rq->dbsize > INT64_MAX ? INT64_MAX : (int64_t)rq->dbsize;
		return 0;
	}
	DV_ASSERT(!"unknown creq kind");
	return -EINVAL;
}

static void chreq_free(struct chost *ch, struct chreq *q)
{
	DV_ASSERT(ch->reqs_open > 0);
	ch->reqs_open--;
	if (ch->nfree >= CHOST_FREE_REQS_MAX) {
		free(q);
		return;
	}
	q->next = ch->free_reqs;
	ch->free_reqs = q;
	ch->nfree++;
}

/* Finish q with result (0 or an eop result code). */
static void chreq_complete(struct chost *ch, struct chreq *q, int result)
{
	if (q->ks)
		kslot_leave(ch, q);
	engine_complete(ch->eng, q->op, result);
	chreq_free(ch, q);
}

static void on_creq_done(struct creq *rq)
{
	struct chreq *q = rq->user;
	DV_ASSERT(&q->rq == rq);
	chreq_complete(q->ch, q, map_result(q));
}

/* CREQ_RMW: the command's decide() on what the read found, in the eop's
 * terms (found, val, expire_ms); its write back in the creq's. */
static enum creq_action rmw_decide(struct creq *rq, uint64_t now_ms)
{
	struct chreq *q = rq->user;
	struct eop *op = q->op;
	DV_ASSERT(op->kind == EOP_RMW && op->decide && !op->found);
	op->result = 0;
	if (rq->found && keep_value(op, rq->val, rq->val_len_out, rq->val_expire_ms)) {
		op->result = -ENOMEM;
		return CREQ_FINISH;
	}
	op->meta_len = 0; /* the version is the cnode's, never the command's */
	switch (op->decide(op, now_ms)) {
	case RMW_PUT:
		rq->value = op->sop.value;
		rq->val_len = op->sop.val_len;
		rq->expire_ms = op->sop.expire_ms;
		return CREQ_WRITE;
	case RMW_DEL:
		return CREQ_DELETE;
	case RMW_FINISH:
		return CREQ_FINISH;
	}
	DV_ASSERT(!"unknown rmw action");
	return CREQ_FINISH;
}

/* ---- eops into creqs ---- */

static enum creq_cond cond_of(enum store_cond c)
{
	return c == STORE_IF_ABSENT ? CREQ_IF_ABSENT : c == STORE_IF_PRESENT ? CREQ_IF_PRESENT : CREQ_ALWAYS;
}

/* FLUSHALL: every keyspace the cluster defines. */
static uint16_t flush_all_mask(const struct chost *ch)
{
	uint16_t mask = 0;
	struct cluster_keyspace k;
	for (unsigned ks = 0; ks < CNODE_KEYSPACES_MAX; ks++)
		if (cluster_keyspace_eff(ch->cc, (uint8_t)ks, &k))
			mask |= (uint16_t)(1u << ks);
	return mask;
}

/* Fill q's creq from its eop; 0 or the eop result code of a refusal. */
static int chreq_fill(struct chost *ch, struct chreq *q)
{
	struct eop *op = q->op;
	struct creq *rq = &q->rq;
	memset(rq, 0, offsetof(struct creq, ctx_out)); /* not the context buffer: an output */
	rq->ctx_out_len = 0;
	rq->priv = NULL;
	rq->keyspace = op->dyn.keyspace;
	rq->key = op->sop.key;
	rq->key_len = op->sop.key_len;
	rq->r = op->dyn.r;
	rq->w = op->dyn.w;
	rq->timeout_ms = op->dyn.timeout_ms;
	rq->done = on_creq_done;
	rq->user = q;
	switch (op->dyn.op) {
	case EOP_DYN_GET: rq->kind = CREQ_DYN_GET; break;
	case EOP_DYN_PUT: rq->kind = CREQ_DYN_PUT; break;
	case EOP_DYN_DEL: rq->kind = CREQ_DYN_DEL; break;
	case EOP_DYN_INCR:
		if (op->kind != EOP_RMW)
			return -EINVAL;
		rq->kind = CREQ_INCR;
		rq->delta = op->arg;
		break;
	case EOP_DYN_COUNT:
		if (op->kind != EOP_STATS)
			return -EINVAL;
		rq->kind = CREQ_COUNT;
		if (op->arg < 0 || op->arg > CNODE_KEYSPACES_MAX)
			return -EINVAL;
		if (op->arg) /* engine.h: this keyspace, not the connection's */
			rq->keyspace = (uint8_t)(op->arg - 1);
		break;
	case EOP_DYN_NONE:
		if (op->kind == EOP_SCAN) {
			rq->kind = CREQ_SCAN;
			rq->cursor = op->cursor;
			rq->count = op->count < 1 ? 1 : op->count > CNODE_SCAN_COUNT_MAX ? CNODE_SCAN_COUNT_MAX : op->count;
		} else if (op->kind == EOP_FLUSH) {
			rq->kind = CREQ_FLUSH;
			rq->ks_mask = op->arg ? flush_all_mask(ch) : (uint16_t)(1u << rq->keyspace);
		} else {
			rq->kind = op->kind == EOP_GET ? CREQ_GET : op->kind == EOP_PUT ? CREQ_SET
				 : op->kind == EOP_DEL ? CREQ_DEL : CREQ_RMW;
		}
		break;
	default: return -EINVAL;
	}
	if (rq->kind == CREQ_SET || rq->kind == CREQ_DYN_PUT) {
		rq->value = op->sop.value;
		rq->val_len = op->sop.val_len;
		rq->expire_ms = op->sop.expire_ms;
		rq->cond = rq->kind == CREQ_SET ? cond_of(op->sop.cond) : CREQ_ALWAYS;
	}
	if (rq->kind == CREQ_DYN_PUT || rq->kind == CREQ_DYN_DEL) {
		rq->ctx = op->kv + op->sop.key_len;
		rq->ctx_len = op->dyn.ctx_len;
	}
	if (rq->kind == CREQ_RMW)
		rq->decide = rmw_decide;
	/* Key writes go one at a time per key (kslot); keyless requests have
	 * no key to wait on. */
	q->keyless = rq->kind == CREQ_FLUSH || rq->kind == CREQ_SCAN || rq->kind == CREQ_COUNT;
	q->write = rq->kind != CREQ_GET && rq->kind != CREQ_DYN_GET && !q->keyless;
	if (rq->key_len > CNODE_KEY_BYTES_MAX)
		return -ENAMETOOLONG;
	struct cluster_keyspace k;
	if (!cluster_keyspace_eff(ch->cc, rq->keyspace, &k) || rq->r > k.n || rq->w > k.n)
		return -EINVAL;
	return 0;
}

/* Into the cnode, or the backlog when it is full (or others wait first). */
static void chreq_submit(struct chost *ch, struct chreq *q)
{
	if (ch->backlog_head) {
		if (ch->nbacklog >= CHOST_BACKLOG_MAX) {
			ch->reqs_busy++;
			chreq_complete(ch, q, -EAGAIN);
			return;
		}
		q->next = NULL;
		ch->backlog_tail->next = q;
		ch->backlog_tail = q;
		ch->nbacklog++;
		return;
	}
	int err = cnode_submit(ch->cn, &q->rq, store_now_ms());
	if (err == -EAGAIN) {
		q->next = NULL;
		ch->backlog_head = ch->backlog_tail = q;
		ch->nbacklog = 1;
		return;
	}
	if (err)
		chreq_complete(ch, q, map_error(q, err));
}

/* DYN.STATUS, DYN.RING: rendered here, where the cnode and the peers live. */
static void route_view(struct chost *ch, struct eop *op)
{
	struct resp_buf b;
	resp_buf_init(&b);
	if (op->dyn.op == EOP_DYN_STATUS)
		chost_render_status(ch, &b);
	else
		chost_render_ring(ch, &b);
	int err = b.data ? eop_keep_alloc(op, 0, b.len) : -ENOMEM;
	if (!err)
		memcpy(op->val, b.data, b.len);
	resp_buf_free(&b);
	engine_complete(ch->eng, op, err);
}

bool chost_route(void *arg, struct eop *op)
{
	struct chost *ch = arg;
	if (op->kind == EOP_STATS && op->dyn.op != EOP_DYN_COUNT) {
		if (op->dyn.op != EOP_DYN_STATUS && op->dyn.op != EOP_DYN_RING)
			return false; /* INFO: the engine's own */
		route_view(ch, op);
		return true;
	}
	if (op->kind == EOP_GET && op->budget && op->budget->over) {
		engine_complete(ch->eng, op, -E2BIG); /* its command's reply is over its budget already */
		return true;
	}
	struct chreq *q = ch->free_reqs;
	if (q) {
		ch->free_reqs = q->next;
		ch->nfree--;
	} else if (!(q = malloc(sizeof(*q)))) {
		engine_complete(ch->eng, op, -ENOMEM);
		return true;
	}
	q->op = op;
	q->ch = ch;
	q->ks = NULL;
	q->next = NULL;
	ch->reqs_open++;
	ch->reqs_total++;
	int err = chreq_fill(ch, q);
	if (err) {
		chreq_complete(ch, q, err);
		return true;
	}
	int run = q->write ? kslot_enter(ch, q) : 1;
	if (run < 0)
		chreq_complete(ch, q, run);
	else if (run > 0)
		chreq_submit(ch, q);
	return true;
}

/* ---- the loop ---- */

/* Requests released by done() callbacks, then the backlog while the cnode
 * takes them. */
static bool submit_waiting(struct chost *ch)
{
	bool moved = false;
	while (ch->backlog_head) {
		struct chreq *q = ch->backlog_head;
		int err = cnode_submit(ch->cn, &q->rq, store_now_ms());
		if (err == -EAGAIN)
			break;
		ch->backlog_head = q->next;
		if (!ch->backlog_head)
			ch->backlog_tail = NULL;
		ch->nbacklog--;
		moved = true;
		if (err)
			chreq_complete(ch, q, map_error(q, err));
	}
	struct chreq *r = ch->ready_head;
	ch->ready_head = ch->ready_tail = NULL;
	while (r) {
		struct chreq *next = r->next;
		r->next = NULL;
		chreq_submit(ch, r);
		r = next;
		moved = true;
	}
	return moved;
}

bool chost_before(struct chost *ch)
{
	uint64_t now = store_now_ms();
	bool moved = false;
	if (now >= ch->timer_ms)
		peer_timers(ch, now);
	if (cnode_next_deadline(ch->cn) <= now) {
		cnode_tick(ch->cn, now);
		moved = true;
	}
	moved |= submit_waiting(ch);
	return moved;
}

bool chost_after(struct chost *ch)
{
	struct cnode_frame *f = cnode_take_frames(ch->cn);
	if (f)
		peer_route_frames(ch, f);
	peer_flush(ch);
	return f != NULL;
}

int64_t chost_wait_ns(struct chost *ch)
{
	if (ch->ready_head)
		return 0;
	uint64_t now = store_now_ms();
	uint64_t at = cnode_next_deadline(ch->cn);
	if (ch->timer_ms < at)
		at = ch->timer_ms;
	if (ch->backlog_head && now + 1 < at)
		at = now + 1; /* the cnode makes room as requests finish: look again soon */
	if (at == UINT64_MAX)
		return -1;
	return at <= now ? 0 : (int64_t)(at - now) * 1000000;
}

void chost_on_event(struct chost *ch, struct peer_ev *ev, int res, unsigned cqe_flags)
{
	peer_on_event(ch, ev, res, cqe_flags);
}

bool chost_quiesced(struct chost *ch, uint64_t now_ms)
{
	if (!ch->stopping) {
		ch->stopping = true;
		ch->stop_deadline_ms = now_ms + ch->cc->timeout_ms + 1000;
		log_info("cluster node stopping", "requests_open=%llu", (unsigned long long)ch->reqs_open);
	}
	if (!ch->peers_closed) {
		if (ch->reqs_open == 0 && !cnode_idle(ch->cn) && now_ms < ch->stop_deadline_ms)
			return false; /* replica work and read repairs under way */
		if (ch->reqs_open > 0)
			return false; /* clients' requests finish by their deadlines */
		peer_close_all(ch);
		ch->peers_closed = true;
	}
	return peer_all_closed(ch);
}
