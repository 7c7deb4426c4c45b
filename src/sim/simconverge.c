/* simconverge.c - the convergence phase of the cluster harness (see
 * simcluster.h): once the faults stopped and the cluster settled, read
 * repair of every key through every node, then the replicas' stored
 * versions compared (decoded from each store, dvv_identical), then the
 * final reads the checker judges. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/error.h"
#include "sim/simcluster_int.h"

#define SETTLE_LIMIT_MS 120000u /* heal and converge must finish within this */

struct sync_get {
	bool done;
	int result;
	uint8_t *meta, *val;
	uint32_t meta_len, val_len;
	uint64_t seq;
};

static void sync_get_done(struct store_op *op)
{
	struct sync_get *g = op->ctx;
	g->done = true;
	g->result = op->result;
	if (op->result != 0)
		return;
	g->meta_len = op->out.meta_len;
	g->val_len = op->out.val_len;
	g->seq = op->out.seq;
	g->meta = malloc(g->meta_len + 1);
	g->val = malloc(g->val_len + 1);
	DV_ASSERT(g->meta && g->val);
	memcpy(g->meta, op->out.meta, g->meta_len);
	memcpy(g->val, op->out.value, g->val_len);
}

static int store_get_sync(struct store *s, const uint8_t *key, uint32_t len, struct sync_get *g)
{
	struct store_op op = {.kind = STORE_GET, .key = key, .key_len = len, .done = sync_get_done, .ctx = g};
	memset(g, 0, sizeof(*g));
	int err = store_submit(s, &op);
	if (err)
		return err;
	for (unsigned i = 0; !g->done; i++) {
		DV_ASSERT(i < 1000000);
		err = store_poll(s, true);
		if (err < 0)
			return err;
	}
	return g->result;
}

static void describe_dvv(FILE *out, const struct sim *sim, const struct dvv *d)
{
	fprintf(out, "{");
	for (unsigned e = 0; e < d->nentries; e++) {
		fprintf(out, "%s%u:%llx=%llu[", e ? " " : "", dvv_actor_node(d->e[e].actor),
			(unsigned long long)(d->e[e].actor & DVV_INCARNATION_MASK), (unsigned long long)d->e[e].counter);
		for (unsigned v = 0; v < d->e[e].nvals; v++) {
			const struct dvv_value *x = &d->v[d->e[e].first + v];
			uint32_t id = sim_value_id(sim, x->data, x->len);
			if (x->flags & DVV_VAL_TOMB)
				fprintf(out, "%sDEL", v ? "," : "");
			else if (id == SIMCHECK_VALUE_UNKNOWN)
				fprintf(out, "%s?", v ? "," : "");
			else
				fprintf(out, "%s#%u", v ? "," : "", id);
		}
		fprintf(out, "]");
	}
	fprintf(out, "}");
}

/* One key: its replicas hold identical versions, other nodes none. */
/* A node's read cache (rcache.h) holds exactly its store's record of the
 * key, or a record dead as a whole by a flush the store reclaimed, or
 * nothing: its cnode is idle, so no write of the key is in flight. */
static void check_cached(struct sim *sim, struct simnode *nd, uint8_t ks, uint32_t key, const uint8_t *skey,
			 uint32_t klen, int err, const struct sync_get *g)
{
	struct store_record_out c;
	if (!cnode_cached_record(nd->cn, skey, klen, &c))
		return;
	if (err == 0 && c.seq == g->seq && c.meta_len == g->meta_len && c.val_len == g->val_len &&
	    memcmp(c.meta, g->meta, c.meta_len) == 0 && memcmp(c.value, g->val, c.val_len) == 0)
		return;
	if (err == -DV_ENOTFOUND) {
		struct dvv d;
		if (dvv_decode(&d, c.meta, c.meta_len, c.value, c.val_len) == 0) {
			cnode_filter_stored(nd->cn, ks, c.seq, &d);
			if (d.nentries == 0 && d.nvals == 0)
				return;
		}
	}
	sim_violation(sim, "ks%u key %u: node %u's read cache holds seq %llu, its store %s seq %llu", ks, key, nd->id,
		      (unsigned long long)c.seq, err == 0 ? "holds" : err == -DV_ENOTFOUND ? "has nothing, not even" : "failed at",
		      (unsigned long long)(err == 0 ? g->seq : 0));
}

static void compare_key(struct sim *sim, uint8_t ks, uint32_t key)
{
	uint8_t ukey[16], skey[CNODE_KEY_BYTES_MAX + 1];
	uint32_t klen = cnode_store_key(ks, ukey, sim_key_bytes(key, ukey), skey);
	uint32_t part = ring_partition(&sim->ring, store_key_hash(skey, klen));
	uint16_t pref[RING_N_MAX];
	unsigned np = ring_preflist(&sim->ring, part, ks == SIM_KS_SIB ? sim->n : sim->lww_n, pref);
	struct sync_get g[SIMNET_NODES_MAX];
	struct dvv *d = calloc(SIMNET_NODES_MAX, sizeof(*d));
	DV_ASSERT(d);
	int first = -1;
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		bool replica = false;
		for (unsigned j = 0; j < np; j++)
			replica |= pref[j] == nd->id;
		g[i].done = false;
		g[i].meta = g[i].val = NULL;
		if (!sim_node_up(nd))
			continue; /* reported by the final reads */
		int err = store_get_sync(nd->store, skey, klen, &g[i]);
		check_cached(sim, nd, ks, key, skey, klen, err, &g[i]);
		if (!replica) {
			if (err != -DV_ENOTFOUND)
				sim_violation(sim, "ks%u key %u: node %u is not a replica but its store has it (%d)", ks, key,
					      nd->id, err);
			continue;
		}
		if (err == -DV_ENOTFOUND) {
			g[i].meta_len = UINT32_MAX; /* absent */
		} else if (err) {
			sim_violation(sim, "ks%u key %u: replica %u cannot read its copy: %s", ks, key, nd->id, dv_strerror(err));
			continue;
		} else if (dvv_decode(&d[i], g[i].meta, g[i].meta_len, g[i].val, g[i].val_len)) {
			sim_violation(sim, "ks%u key %u: replica %u holds an undecodable version", ks, key, nd->id);
			continue;
		} else {
			cnode_filter_stored(nd->cn, ks, g[i].seq, &d[i]); /* its dead values (a flush) out */
			if (d[i].nentries == 0 && d[i].nvals == 0)
				g[i].meta_len = UINT32_MAX; /* dead as a whole: the store may have dropped it (I8) */
		}
		if (first < 0) {
			first = (int)i;
			continue;
		}
		bool a_absent = g[first].meta_len == UINT32_MAX, b_absent = g[i].meta_len == UINT32_MAX;
		if (a_absent != b_absent || (!a_absent && !dvv_identical(&d[first], &d[i]))) {
			sim_violation(sim, "ks%u key %u: replicas %u and %u differ after convergence", ks, key,
				      sim->node[first].id, nd->id);
			fprintf(sim->cfg->out, "  node %u: ", sim->node[first].id);
			if (a_absent)
				fprintf(sim->cfg->out, "absent");
			else
				describe_dvv(sim->cfg->out, sim, &d[first]);
			fprintf(sim->cfg->out, "\n  node %u: ", nd->id);
			if (b_absent)
				fprintf(sim->cfg->out, "absent");
			else
				describe_dvv(sim->cfg->out, sim, &d[i]);
			fprintf(sim->cfg->out, "\n");
		}
	}
	for (unsigned i = 0; i < sim->nnodes; i++) {
		free(g[i].meta);
		free(g[i].val);
	}
	free(d);
}

/* Reads every key through every up node, one read at a time (the nodes'
 * bounds may be tight: a flood would be refused, not read), each followed
 * by settling: its read repair is done before the next read. */
static int read_every_key(struct sim *sim, uint16_t client, bool all_replicas, uint64_t limit)
{
	for (uint8_t ks = SIM_KS_SIB; ks <= SIM_KS_LWW; ks++)
		for (uint32_t key = 0; key < SIM_ALL_KEYS; key++) {
			if ((key >= sim->nkeys && key < SIM_KEYS_MAX) || (key >= SIM_KEYS_MAX && ks != SIM_KS_SIB))
				continue;
			for (unsigned i = 0; i < sim->nnodes; i++) {
				struct simnode *nd = &sim->node[i];
				if (!sim_node_up(nd))
					continue;
				/* Counter keys by plain GET: their value is the merged counter. */
				if (key >= SIM_KEYS_MAX)
					clients_read_counter(sim, client, key, nd, all_replicas);
				else
					clients_read_one(sim, client, ks, key, nd, all_replicas);
				sim_settle_all(sim);
				int err = sim_run_until(sim, limit, true);
				if (err)
					return err;
			}
		}
	return 0;
}

int sim_converge(struct sim *sim)
{
	uint64_t limit = sim->now + SETTLE_LIMIT_MS;
	int err = sim_run_until(sim, limit, true);
	if (err) {
		if (err == -ETIME)
			sim_violation(sim, "the cluster did not settle within %u ms after healing", SETTLE_LIMIT_MS);
		return err;
	}
	/* Read repair of every key through every node: first at the
	 * keyspace's R (a read at R = N fails while a replica's copy is
	 * damaged, though it repairs it from the others), then at R = N. */
	sim_log(sim, 1, "settled: repair reads of every key through every node");
	err = read_every_key(sim, SIM_CLIENT_REPAIR, false, limit);
	if (!err)
		err = read_every_key(sim, SIM_CLIENT_REPAIR, true, limit);
	if (err) {
		if (err == -ETIME)
			sim_violation(sim, "read repair did not settle within %u ms", SETTLE_LIMIT_MS);
		return err;
	}
	for (uint8_t ks = SIM_KS_SIB; ks <= SIM_KS_LWW; ks++)
		for (uint32_t key = 0; key < sim->nkeys; key++)
			compare_key(sim, ks, key);
	for (uint32_t k = 0; k < SIM_CKEYS; k++)
		compare_key(sim, SIM_KS_SIB, SIM_KEYS_MAX + k);
	sim_log(sim, 1, "final reads");
	err = read_every_key(sim, SIMCHECK_CLIENT_FINAL, true, limit);
	if (err == -ETIME)
		sim_violation(sim, "final reads did not finish within %u ms", SETTLE_LIMIT_MS);
	return err;
}
