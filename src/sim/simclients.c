/* simclients.c - the simulated clients of the cluster harness: a seeded
 * workload of Dynamo and plain commands over a small key set (so writes
 * conflict), values that name their write, and the history the checker
 * judges (see simcluster.h, simcheck.h).
 *
 * Keys: in the siblings keyspace the lower half of the keys take only
 * DYN.* commands and plain GET, so the checker knows every context exactly
 * there; the upper half mixes in plain SET/DEL, whose coverage the checker
 * can only bound. The LWW keyspace mixes everything. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/error.h"
#include "cluster/counter.h"
#include "sim/simcluster_int.h"

#define VALUE_HDR_BYTES 10u /* 'v', 8 hex digits of the id, ':' */
#define THINK_MIN_MS 5u
#define THINK_MAX_MS 120u
#define OTHER_CLUSTER_ID 0x0badc0ffee0ddull

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

uint32_t sim_key_bytes(uint32_t k, uint8_t *out)
{
	DV_ASSERT(k < SIM_ALL_KEYS);
	if (k >= SIM_KEYS_MAX)
		return (uint32_t)snprintf((char *)out, 16, "c%u", k - SIM_KEYS_MAX);
	return (uint32_t)snprintf((char *)out, 16, "k%u", k);
}

uint32_t sim_key_number(const uint8_t *p, uint32_t len, unsigned nkeys)
{
	if (len < 2 || len > 4 || (p[0] != 'k' && p[0] != 'c'))
		return UINT32_MAX;
	uint32_t v = 0;
	for (uint32_t i = 1; i < len; i++) {
		if (p[i] < '0' || p[i] > '9' || (i == 1 && p[i] == '0' && len > 2))
			return UINT32_MAX;
		v = v * 10 + (uint32_t)(p[i] - '0');
	}
	if (p[0] == 'k')
		return v < nkeys ? v : UINT32_MAX;
	return v < SIM_CKEYS ? SIM_KEYS_MAX + v : UINT32_MAX;
}

/* Deterministic per value id: mostly small, sometimes a few KiB so zones
 * fill and GC runs; bounded so SIBLINGS_MAX siblings fit in a record. */
static uint32_t value_len(const struct sim *sim, uint32_t id)
{
	struct sim_rng r = {sim->value_salt ^ ((uint64_t)id * 0x9e3779b97f4a7c15ull)};
	uint64_t x = sim_rng_next(&r);
	return x % 8 == 0 ? 2048u + (uint32_t)(x >> 8) % 6144u : VALUE_HDR_BYTES + (uint32_t)(x >> 8) % 600u;
}

static uint8_t filler(uint32_t id, uint32_t i) { return (uint8_t)('a' + (id * 7u + i * 13u) % 26u); }

static uint8_t *value_make(const struct sim *sim, uint32_t id, uint32_t *len)
{
	*len = value_len(sim, id);
	uint8_t *v = malloc(*len + 1);
	DV_ASSERT(v);
	snprintf((char *)v, VALUE_HDR_BYTES + 1, "v%08x:", id);
	for (uint32_t i = VALUE_HDR_BYTES; i < *len; i++)
		v[i] = filler(id, i);
	return v;
}

uint32_t sim_value_id(const struct sim *sim, const uint8_t *v, uint32_t len)
{
	if (len < VALUE_HDR_BYTES || v[0] != 'v' || v[9] != ':')
		return SIMCHECK_VALUE_UNKNOWN;
	uint32_t id = 0;
	for (unsigned i = 1; i < 9; i++) {
		const char *p = strchr("0123456789abcdef", v[i]);
		if (!p || !v[i])
			return SIMCHECK_VALUE_UNKNOWN;
		id = id << 4 | (uint32_t)(p - "0123456789abcdef");
	}
	if (id == SIMCHECK_VALUE_UNKNOWN || len != value_len(sim, id))
		return SIMCHECK_VALUE_UNKNOWN;
	for (uint32_t i = VALUE_HDR_BYTES; i < len; i++)
		if (v[i] != filler(id, i))
			return SIMCHECK_VALUE_UNKNOWN; /* a damaged value: the checker reports it */
	return id;
}

void clients_init(struct sim *sim)
{
	for (unsigned c = 0; c < sim->nclients; c++)
		for (unsigned s = 0; s < sim->depth; s++) {
			struct simop *op = &sim->client[c].slot[s];
			op->sim = sim;
			op->client = (uint16_t)c;
			op->next_ms = sim->now + sim_rng_range(&sim->rng, 0, THINK_MAX_MS);
		}
}

void clients_free(struct sim *sim)
{
	for (unsigned c = 0; c < sim->nclients; c++)
		for (unsigned s = 0; s < sim->depth; s++)
			DV_ASSERT(!sim->client[c].slot[s].busy);
	clients_read_all_free(sim);
}

uint64_t clients_next_ms(const struct sim *sim)
{
	uint64_t t = UINT64_MAX;
	for (unsigned c = 0; c < sim->nclients; c++)
		for (unsigned s = 0; s < sim->depth; s++) {
			const struct simop *op = &sim->client[c].slot[s];
			/* A scan goes on to its end after the chaos too. */
			bool wants = op->busy ? op->page_due : sim->chaos;
			if (wants && op->next_ms < t)
				t = op->next_ms;
		}
	return t;
}

static uint8_t ks_n(const struct sim *sim, uint8_t ks) { return ks == SIM_KS_SIB ? sim->n : sim->lww_n; }

static enum simcheck_kind pick_kind(struct sim *sim, uint8_t ks, uint32_t key)
{
	/* Percentages of GET, SET, DEL, DYN_GET, DYN_PUT, DYN_DEL. */
	static const uint8_t dyn_keys[6] = {15, 0, 0, 35, 40, 10};
	static const uint8_t mixed_keys[6] = {15, 25, 10, 25, 20, 5};
	static const uint8_t lww_keys[6] = {30, 40, 10, 15, 5, 0};
	const uint8_t *t = ks == SIM_KS_LWW ? lww_keys : key < sim->nkeys / 2 ? dyn_keys : mixed_keys;
	unsigned x = (unsigned)sim_rng_below(&sim->rng, 100);
	for (unsigned k = 0; k < 6; k++) {
		if (x < t[k])
			return (enum simcheck_kind)(SC_GET + k);
		x -= t[k];
	}
	DV_ASSERT(!"kind table does not add up to 100");
	return SC_GET;
}

static const struct simctx *remembered(const struct simclient *cl, uint8_t ks, uint32_t key, unsigned age)
{
	const struct simctx *x = &cl->ctx[ks][key][age];
	return x->valid ? x : NULL;
}

/* A context that must be refused: garbage, truncated, altered, of another
 * key, of another cluster. */
static void bad_context(struct sim *sim, struct simop *op, const struct simclient *cl)
{
	const struct simctx *last = remembered(cl, op->keyspace, op->key, 0);
	const struct simctx *other = remembered(cl, op->keyspace, (op->key + 1) % sim->nkeys, 0);
	unsigned how = (unsigned)sim_rng_below(&sim->rng, 5);
	uint32_t len = 0;
	if (how == 1 && last && last->len > 4) {
		len = last->len - (uint32_t)sim_rng_range(&sim->rng, 1, last->len - 1);
		memcpy(op->ctx_buf, last->text, len);
	} else if (how == 2 && last && last->len > 4) {
		len = last->len;
		memcpy(op->ctx_buf, last->text, len);
		uint32_t at = (uint32_t)sim_rng_below(&sim->rng, len / 2);
		char c;
		do
			c = b64url[sim_rng_below(&sim->rng, 64)];
		while (c == op->ctx_buf[at]);
		op->ctx_buf[at] = c;
	} else if (how == 3 && other && other->len > 0) {
		len = other->len;
		memcpy(op->ctx_buf, other->text, len);
	} else if (how == 4) {
		struct dvv_vv vv = {.n = 1};
		vv.e[0].actor = dvv_actor(1, 1);
		vv.e[0].counter = 1;
		uint8_t skey[CNODE_KEY_BYTES_MAX + 1];
		uint32_t klen = cnode_store_key(op->keyspace, op->key_buf, sim_key_bytes(op->key, op->key_buf), skey);
		len = (uint32_t)dvv_ctx_encode(&vv, op->keyspace == SIM_KS_LWW ? DVV_LWW : DVV_SIBLINGS, 0, OTHER_CLUSTER_ID,
					       sim->ccfg.ctx_key, skey, klen, op->ctx_buf);
	} else {
		len = (uint32_t)sim_rng_range(&sim->rng, 1, 80);
		for (uint32_t i = 0; i < len; i++)
			op->ctx_buf[i] = b64url[sim_rng_below(&sim->rng, 64)];
	}
	op->ctx_buf[len] = 0;
	op->ctx = op->ctx_buf;
	op->ctx_len = len;
	op->bad_ctx = true;
}

/* The context of a DYN_PUT/DYN_DEL: mostly the client's last read of the
 * key, sometimes none, an older one, or a bad one: op->ctx and c->ctx. */
static void choose_context(struct sim *sim, struct simop *op, const struct simclient *cl, struct simcheck_op *c)
{
	unsigned x = (unsigned)sim_rng_below(&sim->rng, 100);
	const struct simctx *use = remembered(cl, op->keyspace, op->key, 0);
	if (x >= 97) {
		bad_context(sim, op, cl);
		c->ctx = SC_CTX_BAD;
		return;
	}
	if (x >= 70 && x < 80)
		use = NULL;
	else if (x >= 80) {
		const struct simctx *old = remembered(cl, op->keyspace, op->key, 1 + (unsigned)sim_rng_below(&sim->rng, 2));
		if (old)
			use = old;
	}
	if (!use) {
		c->ctx = SC_CTX_EMPTY;
		return;
	}
	memcpy(op->ctx_buf, use->text, use->len + 1);
	op->ctx = op->ctx_buf;
	op->ctx_len = use->len;
	c->ctx = SC_CTX_READ;
	c->ctx_read = use->read_id;
}

static enum creq_kind creq_kind_of(enum simcheck_kind k)
{
	static const enum creq_kind map[] = {0, CREQ_GET, CREQ_SET, CREQ_DEL, CREQ_DYN_GET, CREQ_DYN_PUT, CREQ_DYN_DEL,
					     CREQ_INCR, CREQ_GET, CREQ_FLUSH, CREQ_SCAN};
	DV_ASSERT(k >= SC_GET && k <= SC_SCAN);
	return map[k];
}

static bool kind_reads(enum simcheck_kind k) { return k == SC_GET || k == SC_DYN_GET; }
static bool kind_dels(enum simcheck_kind k) { return k == SC_DEL || k == SC_DYN_DEL; }

/* Results that mean "refused before anything was written" (node.h). */
static bool clean_refusal(int res)
{
	return res == -EINVAL || res == -EXDEV || res == -E2BIG || res == -EEXIST || res == -DV_ENOTFOUND ||
	       res == -EDOM || res == -ERANGE || res == CNODE_EBEHIND;
}

static enum simcheck_outcome outcome_of(enum simcheck_kind k, int res)
{
	if (res == 0)
		return SC_OK;
	if (kind_reads(k) || k == SC_CGET)
		return res == -DV_ENOTFOUND ? SC_OK : SC_FAILED; /* a failed read has no values */
	if (kind_dels(k) && res == -DV_ENOTFOUND)
		return SC_OK; /* nothing live to delete: completed */
	return clean_refusal(res) ? SC_FAILED : SC_INDET;
}

static void remember_context(struct sim *sim, struct simop *op)
{
	if (op->client >= sim->nclients)
		return;
	struct simctx *k = sim->client[op->client].ctx[op->keyspace][op->key];
	memmove(&k[1], &k[0], (SIM_CTX_KEEP - 1) * sizeof(*k));
	k[0].valid = true;
	k[0].read_id = op->id;
	k[0].len = op->rq.ctx_out_len;
	DV_ASSERT(k[0].len < DVV_CTX_TEXT_MAX);
	memcpy(k[0].text, op->rq.ctx_out, k[0].len);
	k[0].text[k[0].len] = 0;
}

static void trace_result(struct sim *sim, const struct simop *op, const uint32_t *vals, uint32_t nvals)
{
	uint64_t t[4] = {sim->now, op->id, (uint64_t)(int64_t)op->rq.result, nvals};
	sim_trace(sim, t, sizeof(t));
	if (nvals)
		sim_trace(sim, vals, nvals * sizeof(*vals));
}

static void op_finish(struct sim *sim, struct simop *op, enum simcheck_outcome out)
{
	switch (out) {
	case SC_OK: sim->res->ops_ok++; break;
	case SC_FAILED: sim->res->ops_failed++; break;
	default: sim->res->ops_indet++; break;
	}
	free(op->val_buf);
	op->val_buf = NULL;
	op->busy = false;
	op->page_due = false;
	DV_ASSERT(sim->ops_in_flight > 0);
	sim->ops_in_flight--;
	op->next_ms = sim->now + sim_rng_range(&sim->rng, THINK_MIN_MS, THINK_MAX_MS);
}

static void multi_end(struct sim *sim, struct simop *op, enum simcheck_outcome out, int err)
{
	/* An indeterminate flush reaches the nodes it missed when they learn
	 * it, and kills there what was stamped up to its until (flush.c): the
	 * coordinator's stamp, within max_skew of global time, plus its
	 * timeout and flush_skew_ms; a value's stamp is within max_skew too. */
	uint64_t kill_until = sim->now;
	if (op->mode == SOP_FLUSH && out == SC_INDET)
		kill_until = simcheck_get(sim->check, op->first_id)->submit_ms + sim->ccfg.timeout_ms +
			     sim->ccfg.flush_skew_ms + 2 * (uint64_t)sim->max_skew + 50;
	for (uint32_t i = 0; i < op->nids; i++) {
		uint32_t id = op->first_id + i;
		simcheck_end(sim->check, id, sim->now, out, err, NULL, 0);
		if (op->mode == SOP_FLUSH && out == SC_INDET)
			simcheck_kill_until(sim->check, id, kill_until);
		if (op->mode == SOP_SCAN && out == SC_OK)
			simcheck_found(sim->check, id, op->seen[op->key_of[i]], 0);
	}
	if (sim->cfg->verbose >= 1) {
		fprintf(sim->cfg->out, "%8llu ms  ", (unsigned long long)sim->now);
		simcheck_print_op(sim->check, sim->cfg->out, op->first_id);
		if (err && op->rq.err)
			fprintf(sim->cfg->out, "             (%s)\n", op->rq.err);
	}
	op_finish(sim, op, out);
}

/* A SCAN page came back: note its keys, go on from its cursor. */
static void scan_page_done(struct sim *sim, struct simop *op, struct creq *rq)
{
	uint64_t t[4] = {sim->now, op->first_id, (uint64_t)(int64_t)rq->result, rq->nkeys};
	sim_trace(sim, t, sizeof(t));
	sim_log(sim, 1, "scan #%u page from %016llx: %d, %u keys, next %016llx", op->first_id,
		(unsigned long long)op->cursor, rq->result, rq->nkeys, (unsigned long long)rq->next_cursor);
	if (rq->result != 0) {
		if (++op->retries > 8) {
			multi_end(sim, op, SC_FAILED, rq->result); /* no rule judges it */
			return;
		}
		op->page_due = true; /* again from the same cursor, through any node */
		op->next_ms = sim->now + 20;
		return;
	}
	for (uint32_t i = 0; i < rq->nkeys; i++) {
		uint32_t k = sim_key_number(rq->keys[i].p, rq->keys[i].len, sim->nkeys);
		if (k == UINT32_MAX || (op->keyspace != SIM_KS_SIB && k >= SIM_KEYS_MAX)) {
			sim_violation(sim, "scan #%u returned a key that no client uses (%u bytes)", op->first_id,
				      rq->keys[i].len);
			continue;
		}
		op->seen[k] = true;
	}
	if (rq->next_cursor != 0 && rq->next_cursor <= op->cursor)
		sim_violation(sim, "scan #%u: cursor %llx after %llx (not in hash order)", op->first_id,
			      (unsigned long long)rq->next_cursor, (unsigned long long)op->cursor);
	op->cursor = rq->next_cursor;
	if (op->cursor == 0) {
		multi_end(sim, op, SC_OK, 0);
		return;
	}
	op->page_due = true;
	op->next_ms = sim->now + sim_rng_range(&sim->rng, 0, 20);
}

static void op_done(struct creq *rq)
{
	struct simop *op = rq->user;
	struct sim *sim = op->sim;
	if (op->mode == SOP_SCAN) {
		scan_page_done(sim, op, rq);
		return;
	}
	if (op->mode == SOP_FLUSH) {
		uint64_t t[4] = {sim->now, op->first_id, (uint64_t)(int64_t)rq->result, 0};
		sim_trace(sim, t, sizeof(t));
		multi_end(sim, op, rq->result == 0 ? SC_OK : rq->result == -EINVAL ? SC_FAILED : SC_INDET, rq->result);
		return;
	}
	const struct simcheck_op *c = simcheck_get(sim->check, op->id);
	enum simcheck_kind kind = (enum simcheck_kind)c->kind;
	uint32_t vals[SIMCHECK_VALUES_MAX], nvals = 0;
	enum simcheck_outcome out = outcome_of(kind, rq->result);
	if (out == SC_OK && kind == SC_DYN_GET) {
		DV_ASSERT(rq->nsiblings <= SIMCHECK_VALUES_MAX);
		for (uint32_t i = 0; i < rq->nsiblings; i++)
			vals[nvals++] = sim_value_id(sim, rq->sib[i], rq->sib_len[i]);
	} else if (out == SC_OK && kind == SC_GET && rq->result == 0 && rq->found) {
		vals[nvals++] = sim_value_id(sim, rq->val, rq->val_len_out);
	}
	if (!op->bad_ctx && (rq->result == -EINVAL || rq->result == -EXDEV))
		sim_violation(sim, "op #%u (%s through node %u): a valid request refused with %d (%s)", op->id,
			      kind == SC_DYN_PUT ? "DYN_PUT" : kind == SC_DYN_DEL ? "DYN_DEL" : "op", c->node,
			      rq->result, rq->err ? rq->err : "");
	/* A plain DEL whose read found nothing live writes nothing. */
	bool noop = kind == SC_DEL && out == SC_OK && (rq->result == -DV_ENOTFOUND || !rq->found);
	trace_result(sim, op, vals, nvals);
	simcheck_end(sim->check, op->id, sim->now, out, rq->result, vals, nvals);
	if (noop)
		simcheck_noop(sim->check, op->id);
	if (kind == SC_CGET && out == SC_OK) {
		int64_t v = 0;
		bool found = rq->result == 0 && rq->found;
		if (found && counter_parse(rq->val, rq->val_len_out, &v) != 0) {
			sim_violation(sim, "op #%u: a counter read returned %u bytes that are not an integer", op->id,
				      rq->val_len_out);
			found = false;
		}
		simcheck_found(sim->check, op->id, found, found ? v : 0);
	}
	if (kind == SC_INCR && (rq->result == -EDOM || rq->result == -ERANGE))
		sim_violation(sim, "op #%u: INCR of a counter key refused with %d (%s)", op->id, rq->result,
			      rq->err ? rq->err : "");
	if (out == SC_OK && kind == SC_DYN_GET)
		remember_context(sim, op);
	if (sim->cfg->verbose >= 1) {
		fprintf(sim->cfg->out, "%8llu ms  ", (unsigned long long)sim->now);
		simcheck_print_op(sim->check, sim->cfg->out, op->id);
		if (rq->result && rq->err)
			fprintf(sim->cfg->out, "             (%s)\n", rq->err);
	}
	op_finish(sim, op, out);
}

/* Fills op->rq for kind and submits it through node nd; records it in the
 * history either way (a refused submit is a failed op). */
static void op_submit(struct sim *sim, struct simop *op, struct simnode *nd, enum simcheck_kind kind,
		      struct simcheck_op *c)
{
	struct creq *rq = &op->rq;
	memset(rq, 0, sizeof(*rq));
	op->mode = SOP_ONE;
	rq->kind = creq_kind_of(kind);
	rq->delta = c->delta;
	rq->keyspace = op->keyspace;
	rq->key = op->key_buf;
	rq->key_len = sim_key_bytes(op->key, op->key_buf);
	rq->ctx = op->ctx ? op->ctx : "";
	rq->ctx_len = op->ctx ? op->ctx_len : 0;
	rq->done = op_done;
	rq->user = op;
	op->id = simcheck_count(sim->check);
	c->kind = (uint8_t)kind;
	c->keyspace = op->keyspace;
	c->key = op->key;
	c->client = op->client;
	c->node = nd->id;
	c->submit_ms = sim->now;
	if (kind == SC_SET || kind == SC_DYN_PUT) {
		op->val_buf = value_make(sim, op->id, &rq->val_len);
		rq->value = op->val_buf;
	}
	if (op->ttl_ms) {
		/* Node clocks are within max_skew of global time: the window in
		 * which some but not every node sees it expired. */
		rq->expire_ms = sim_node_now(sim, nd) + op->ttl_ms;
		int64_t at = (int64_t)(rq->expire_ms - SIM_EPOCH_MS); /* a clock behind the epoch: < 0 */
		int64_t lo = at - sim->max_skew, hi = at + sim->max_skew;
		c->expires = true;
		c->expire_lo = lo > 0 ? (uint64_t)lo : 0;
		c->expire_hi = hi > 0 ? (uint64_t)hi : 0;
	}
	uint8_t n = ks_n(sim, op->keyspace);
	uint8_t ks_r = op->keyspace == SIM_KS_SIB ? sim->r : sim->lww_r;
	uint8_t ks_w = op->keyspace == SIM_KS_SIB ? sim->w : sim->lww_w;
	rq->r = c->r;
	rq->w = c->w;
	c->r = c->r ? c->r : ks_r;
	c->w = c->w ? c->w : ks_w;
	DV_ASSERT(c->r <= n && c->w <= n);
	int err = cnode_submit(nd->cn, rq, sim_node_now(sim, nd));
	uint32_t id = simcheck_begin(sim->check, c);
	DV_ASSERT(id == op->id);
	sim->res->ops++;
	if (err) {
		if (err != -EAGAIN && !op->bad_ctx)
			sim_violation(sim, "op #%u through node %u: cnode_submit refused a valid request: %d", id, nd->id, err);
		rq->result = err;
		trace_result(sim, op, NULL, 0);
		simcheck_end(sim->check, id, sim->now, SC_FAILED, err, NULL, 0);
		sim->res->ops_failed++;
		free(op->val_buf);
		op->val_buf = NULL;
		op->next_ms = sim->now + sim_rng_range(&sim->rng, THINK_MIN_MS, THINK_MAX_MS);
		return;
	}
	op->busy = true;
	sim->ops_in_flight++;
}

static struct simnode *pick_node(struct sim *sim)
{
	unsigned first = (unsigned)sim_rng_below(&sim->rng, sim->nnodes);
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[(first + i) % sim->nnodes];
		if (sim_node_up(nd))
			return nd;
	}
	return NULL;
}

/* The keys of keyspace ks a flush or a scan covers, into out: the value
 * keys and, in the siblings keyspace, the counter keys. */
static uint32_t keys_of(const struct sim *sim, uint8_t ks, uint32_t *out)
{
	uint32_t n = 0;
	for (uint32_t k = 0; k < sim->nkeys; k++)
		out[n++] = k;
	for (uint32_t k = 0; ks == SIM_KS_SIB && k < SIM_CKEYS; k++)
		out[n++] = SIM_KEYS_MAX + k;
	return n;
}

/* One checker op per key of keyspace ks for a multi-key op (FLUSH: r = w =
 * n, a DEL of every key; SCAN: the keyspace's quorums). */
static void multi_begin(struct sim *sim, struct simop *op, struct simnode *nd, uint8_t ks, enum simcheck_kind kind)
{
	uint32_t keys[SIM_ALL_KEYS];
	uint32_t nk = keys_of(sim, ks, keys);
	for (uint32_t i = 0; i < nk; i++) {
		struct simcheck_op c = {.client = op->client, .node = nd->id, .keyspace = ks, .kind = (uint8_t)kind,
					.key = keys[i], .submit_ms = sim->now};
		c.r = c.w = ks_n(sim, ks);
		if (kind == SC_SCAN) {
			c.r = ks == SIM_KS_SIB ? sim->r : sim->lww_r;
			c.w = ks == SIM_KS_SIB ? sim->w : sim->lww_w;
		}
		DV_ASSERT(op->nids < DV_ARRAY_LEN(op->key_of));
		op->key_of[op->nids++] = keys[i];
		uint32_t id = simcheck_begin(sim->check, &c);
		DV_ASSERT(id == op->first_id + op->nids - 1);
	}
}

/* FLUSHALL, or FLUSHDB of one keyspace. */
static void flush_start(struct sim *sim, struct simop *op, struct simnode *nd)
{
	uint16_t mask = sim_rng_below(&sim->rng, 2) ? (uint16_t)((1u << SIM_KS_SIB) | (1u << SIM_KS_LWW))
						     : (uint16_t)(1u << sim_rng_below(&sim->rng, 2));
	struct creq *rq = &op->rq;
	memset(rq, 0, sizeof(*rq));
	op->mode = SOP_FLUSH;
	rq->kind = CREQ_FLUSH;
	rq->ks_mask = mask;
	rq->done = op_done;
	rq->user = op;
	op->first_id = simcheck_count(sim->check);
	op->nids = 0;
	int err = cnode_submit(nd->cn, rq, sim_node_now(sim, nd));
	for (uint8_t ks = SIM_KS_SIB; ks <= SIM_KS_LWW; ks++)
		if (mask & (1u << ks))
			multi_begin(sim, op, nd, ks, SC_FLUSH);
	sim->res->ops++;
	op->busy = true;
	sim->ops_in_flight++;
	sim_log(sim, 1, "flush #%u of keyspaces %x through node %u", op->first_id, mask, nd->id);
	if (err) {
		if (err != -EAGAIN)
			sim_violation(sim, "flush #%u through node %u: cnode_submit refused it: %d", op->first_id, nd->id, err);
		op->rq.result = err;
		multi_end(sim, op, SC_FAILED, err);
	}
}

/* A whole SCAN: its pages go through random nodes (scan_page). */
static void scan_start(struct sim *sim, struct simop *op, struct simnode *nd)
{
	op->mode = SOP_SCAN;
	op->keyspace = sim_rng_below(&sim->rng, 100) < 70 ? SIM_KS_SIB : SIM_KS_LWW;
	op->first_id = simcheck_count(sim->check);
	op->nids = 0;
	op->cursor = 0;
	op->retries = 0;
	memset(op->seen, 0, sizeof(op->seen));
	multi_begin(sim, op, nd, op->keyspace, SC_SCAN);
	sim->res->ops++;
	op->busy = true;
	sim->ops_in_flight++;
	op->page_due = true;
	op->next_ms = sim->now;
}

static void scan_page(struct sim *sim, struct simop *op)
{
	struct simnode *nd = pick_node(sim);
	op->page_due = false;
	if (!nd) {
		op->page_due = true;
		op->next_ms = sim->now + 100;
		return;
	}
	struct creq *rq = &op->rq;
	memset(rq, 0, sizeof(*rq));
	rq->kind = CREQ_SCAN;
	rq->keyspace = op->keyspace;
	rq->cursor = op->cursor;
	rq->count = (uint32_t)sim_rng_range(&sim->rng, 1, 8);
	rq->done = op_done;
	rq->user = op;
	int err = cnode_submit(nd->cn, rq, sim_node_now(sim, nd));
	if (err) {
		if (err != -EAGAIN)
			sim_violation(sim, "scan #%u through node %u: cnode_submit refused a page: %d", op->first_id, nd->id,
				      err);
		rq->result = err;
		scan_page_done(sim, op, rq);
	}
}

/* Now and then a per-request R or W. */
static void pick_quorum(struct sim *sim, uint8_t ks, struct simcheck_op *c)
{
	uint8_t n = ks_n(sim, ks);
	if (sim_rng_below(&sim->rng, 100) < 5)
		c->r = (uint8_t)sim_rng_range(&sim->rng, 1, n);
	if (sim_rng_below(&sim->rng, 100) < 5)
		c->w = (uint8_t)sim_rng_range(&sim->rng, 1, n);
}

static void client_start(struct sim *sim, struct simclient *cl, struct simop *op)
{
	struct simnode *nd = pick_node(sim);
	if (!nd) {
		op->next_ms = sim->now + 100;
		return;
	}
	unsigned multi = (unsigned)sim_rng_below(&sim->rng, 1000);
	unsigned flushes = sim->cfg->faults & SIM_F_FLUSHY ? 30 : 3; /* per 1000 ops */
	if (multi < flushes) {
		flush_start(sim, op, nd);
		return;
	}
	if (multi < flushes + 12) {
		scan_start(sim, op, nd);
		return;
	}
	op->keyspace = sim_rng_below(&sim->rng, 100) < 80 ? SIM_KS_SIB : SIM_KS_LWW;
	op->key = (uint32_t)sim_rng_below(&sim->rng, sim->nkeys);
	op->bad_ctx = false;
	op->ctx = NULL;
	op->ctx_len = 0;
	if (op->keyspace == SIM_KS_SIB && sim_rng_below(&sim->rng, 100) < 15) {
		/* A counter key: INCR by -5..20, or a plain GET of it. */
		struct simcheck_op c = {0};
		op->key = SIM_KEYS_MAX + (uint32_t)sim_rng_below(&sim->rng, SIM_CKEYS);
		op->ttl_ms = 0;
		enum simcheck_kind k = sim_rng_below(&sim->rng, 100) < 70 ? SC_INCR : SC_CGET;
		if (k == SC_INCR)
			c.delta = (int64_t)sim_rng_range(&sim->rng, 0, 25) - 5;
		pick_quorum(sim, op->keyspace, &c);
		op_submit(sim, op, nd, k, &c);
		return;
	}
	enum simcheck_kind kind = pick_kind(sim, op->keyspace, op->key);
	/* Now and then a value that expires (PX): 0.1 to 3 s. */
	op->ttl_ms = 0;
	if ((kind == SC_SET || kind == SC_DYN_PUT) && sim_rng_below(&sim->rng, 100) < 10)
		op->ttl_ms = (uint32_t)sim_rng_range(&sim->rng, 100, 3000);
	struct simcheck_op c = {0};
	if (kind == SC_DYN_PUT || kind == SC_DYN_DEL)
		choose_context(sim, op, cl, &c);
	pick_quorum(sim, op->keyspace, &c);
	op_submit(sim, op, nd, kind, &c);
}

void clients_run_due(struct sim *sim)
{
	for (unsigned c = 0; c < sim->nclients; c++)
		for (unsigned s = 0; s < sim->depth; s++) {
			struct simop *op = &sim->client[c].slot[s];
			if (op->busy && op->page_due && op->next_ms <= sim->now)
				scan_page(sim, op); /* after the chaos too: a scan runs to its end */
			else if (sim->chaos && !op->busy && op->next_ms <= sim->now)
				client_start(sim, &sim->client[c], op);
		}
}

/* One read of the harness (kind: DYN_GET, or CGET of a counter key). */
static bool read_op(struct sim *sim, uint16_t client, uint8_t ks, uint32_t key, struct simnode *nd,
		    bool all_replicas, enum simcheck_kind kind)
{
	struct simop *op = calloc(1, sizeof(*op));
	DV_ASSERT(op);
	op->sim = sim;
	op->client = client;
	op->keyspace = ks;
	op->key = key;
	op->next_free = sim->read_ops;
	sim->read_ops = op;
	struct simcheck_op c = {.r = all_replicas ? ks_n(sim, ks) : 0};
	op_submit(sim, op, nd, kind, &c);
	return op->busy;
}

bool clients_read_counter(struct sim *sim, uint16_t client, uint32_t k, struct simnode *nd, bool all_replicas)
{
	DV_ASSERT(k >= SIM_KEYS_MAX && k < SIM_ALL_KEYS);
	return read_op(sim, client, SIM_KS_SIB, k, nd, all_replicas, SC_CGET);
}

bool clients_read_one(struct sim *sim, uint16_t client, uint8_t ks, uint32_t key, struct simnode *nd,
		      bool all_replicas)
{
	return read_op(sim, client, ks, key, nd, all_replicas, SC_DYN_GET);
}

void clients_read_all_free(struct sim *sim)
{
	while (sim->read_ops) {
		struct simop *op = sim->read_ops;
		DV_ASSERT(!op->busy);
		sim->read_ops = op->next_free;
		free(op);
	}
}
