/* chost_view.c - what the cluster host shows: DYN.STATUS and DYN.RING
 * (RESP arrays, read by `dynvme admin`), the "cluster" object of /status
 * and the dynvme_cluster_* Prometheus metrics. Worker 0 only.
 *
 * DYN.STATUS is a flat array of name, value pairs; "members", "keyspaces"
 * and "stats" hold arrays (members and keyspaces: one array of name, value
 * pairs each). DYN.RING: "version", "partitions", "replicas", "nodes", then
 * "table": one [partition, first hash, last hash, owner, [preference list]]
 * per partition, hashes as 0x%016x text. "replicated" counts and preference
 * lists use the largest N among the keyspaces (capped by the nodes); a
 * keyspace with a smaller N uses the first N nodes of each list.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "server/chost_int.h"
#include "server/server_int.h"

static void kv_int(struct resp_buf *b, const char *k, int64_t v)
{
	resp_add_bulk_str(b, k);
	resp_add_int(b, v);
}

static void kv_str(struct resp_buf *b, const char *k, const char *v)
{
	resp_add_bulk_str(b, k);
	resp_add_bulk_str(b, v);
}

static void kv_hex(struct resp_buf *b, const char *k, uint64_t v, int digits)
{
	char s[24];
	snprintf(s, sizeof(s), "%0*llx", digits, (unsigned long long)v);
	kv_str(b, k, s);
}

struct member_view {
	uint16_t id;
	char internode[CLUSTER_HOST_BYTES + 8], client[CONFIG_STR_MAX + 8];
	const char *state;
	uint64_t bytes_in, bytes_out, frames_dropped, sessions, refusals;
};

/* Members in id order: this node ("self") and its peers. */
static unsigned members(struct chost *ch, struct member_view *out)
{
	const struct cluster_config *cc = ch->cc;
	const struct server_config *sc = ch->srv->cfg;
	unsigned n = 0;
	for (unsigned i = 0; i < ch->ring.nnodes; i++) {
		struct member_view *m = &out[n++];
		uint16_t id = ch->ring.nodes[i];
		*m = (struct member_view){.id = id};
		if (id == cc->node_id) {
			snprintf(m->internode, sizeof(m->internode), "%s:%u", cc->internode_bind, cc->internode_port);
			snprintf(m->client, sizeof(m->client), "%s:%u", sc->bind, ch->srv->port);
			m->state = "self";
			continue;
		}
		const struct peer *p = peer_by_id(ch, id);
		snprintf(m->internode, sizeof(m->internode), "%s:%u", p->cfg->host, p->cfg->port);
		snprintf(m->client, sizeof(m->client), "%s", p->cfg->client);
		m->state = peer_state_name(peer_state(p));
		m->bytes_in = p->bytes_in;
		m->bytes_out = p->bytes_out;
		m->frames_dropped = p->frames_dropped;
		m->sessions = p->sessions;
		m->refusals = p->refusals;
	}
	return n;
}

static void render_members(struct chost *ch, struct resp_buf *b)
{
	struct member_view mv[RING_NODES_MAX];
	unsigned n = members(ch, mv);
	resp_add_bulk_str(b, "members");
	resp_add_array(b, n);
	for (unsigned i = 0; i < n; i++) {
		const struct member_view *m = &mv[i];
		resp_add_array(b, 20);
		kv_int(b, "id", m->id);
		kv_str(b, "internode", m->internode);
		kv_str(b, "client", m->client);
		kv_str(b, "state", m->state);
		kv_int(b, "owned", ring_owned_count(&ch->ring, m->id));
		kv_int(b, "replicated", ring_replicated_count(&ch->ring, ch->nmax, m->id));
		kv_int(b, "bytes_in", (int64_t)m->bytes_in);
		kv_int(b, "bytes_out", (int64_t)m->bytes_out);
		kv_int(b, "sessions", (int64_t)m->sessions);
		kv_int(b, "refusals", (int64_t)m->refusals);
	}
}

static void render_keyspaces(struct chost *ch, struct resp_buf *b)
{
	unsigned n = 0;
	struct cluster_keyspace k;
	for (unsigned i = 0; i < CLUSTER_KEYSPACES_MAX; i++)
		n += cluster_keyspace_eff(ch->cc, i, &k);
	resp_add_bulk_str(b, "keyspaces");
	resp_add_array(b, n);
	for (unsigned i = 0; i < CLUSTER_KEYSPACES_MAX; i++) {
		if (!cluster_keyspace_eff(ch->cc, i, &k))
			continue;
		resp_add_array(b, 14);
		kv_int(b, "id", i);
		kv_str(b, "name", k.name);
		kv_int(b, "n", k.n);
		kv_int(b, "r", k.r);
		kv_int(b, "w", k.w);
		kv_str(b, "policy", k.policy == CLUSTER_LWW ? "lww" : "siblings");
		kv_int(b, "siblings_max", k.siblings_max);
	}
}

struct stat_item {
	const char *name;
	uint64_t v;
};

#define STAT_ITEMS_MAX 40u /* room in the callers' arrays: ITEM asserts it */

static unsigned stat_items(struct chost *ch, struct stat_item *it)
{
	struct cnode_stats st;
	cnode_get_stats(ch->cn, &st);
	uint64_t dropped = ch->frames_no_peer, batches = 0;
	for (unsigned i = 0; i < ch->npeers; i++) {
		dropped += ch->peers[i].frames_dropped;
		batches += ch->peers[i].batches_out;
	}
	unsigned n = 0;
#define ITEM(k, x)                                                                                                     \
	do {                                                                                                           \
		DV_ASSERT(n < STAT_ITEMS_MAX);                                                                        \
		it[n++] = (struct stat_item){k, (uint64_t)(x)};                                                       \
	} while (0)
	ITEM("coord_reads", st.coord_reads);
	ITEM("coord_writes", st.coord_writes);
	ITEM("forwarded", st.forwarded);
	ITEM("replica_gets", st.replica_gets);
	ITEM("replica_puts", st.replica_puts);
	ITEM("replica_noops", st.replica_noops);
	ITEM("quorum_timeouts", st.quorum_timeouts);
	ITEM("read_repairs", st.read_repairs);
	ITEM("full_reads", st.full_reads);
	ITEM("late_read_asks", st.late_read_asks);
	ITEM("spec_timer_fires", st.spec_timer_fires);
	ITEM("checked_writes", st.checked_writes);
	ITEM("checked_fallbacks", st.checked_fallbacks);
	ITEM("uncovered_refusals", st.uncovered_refusals);
	ITEM("ctx_flush_holds", st.ctx_flush_holds);
	ITEM("read_cache_hits", st.cache_hits);
	ITEM("read_cache_misses", st.cache_misses);
	ITEM("read_cache_bytes", st.cache_bytes);
	ITEM("busy_refusals", st.busy_refusals);
	ITEM("siblings_refused", st.siblings_refused);
	ITEM("msgs_in", st.msgs_in);
	ITEM("msgs_out", st.msgs_out);
	ITEM("wire_frames_out", batches); /* sealed frames: each carries a batch of messages */
	ITEM("bytes_in", st.bytes_in);
	ITEM("bytes_out", st.bytes_out);
	ITEM("bad_msgs", st.bad_msgs);
	ITEM("corrupt_replaced", st.corrupt_replaced);
	ITEM("actor_renewals", st.actor_renewals);
	ITEM("requests_in_flight", st.requests_in_flight);
	ITEM("replica_ops_in_flight", st.replica_ops_in_flight);
	ITEM("client_requests", ch->reqs_total);
	ITEM("client_requests_open", ch->reqs_open);
	ITEM("client_requests_waiting", ch->nbacklog);
	ITEM("client_requests_refused_busy", ch->reqs_busy);
	ITEM("frames_dropped", dropped);
	ITEM("handshakes_refused", ch->refused_handshakes);
	ITEM("inbound_over_limit", ch->inbound_over_limit);
#undef ITEM
	return n;
}

void chost_render_status(struct chost *ch, struct resp_buf *b)
{
	const struct cluster_config *cc = ch->cc;
	resp_add_array(b, 2 * 12);
	kv_int(b, "node_id", cc->node_id);
	kv_hex(b, "cluster_id", cc->cluster_id, 16);
	kv_hex(b, "incarnation", ch->id.incarnation, 12);
	kv_hex(b, "actor", cnode_actor(ch->cn), 16);
	kv_int(b, "ring_version", (int64_t)ch->ring.version);
	kv_hex(b, "ring_digest", ring_digest(&ch->ring), 16); /* what the internode handshake compares */
	kv_int(b, "partitions", ch->ring.q);
	kv_int(b, "nodes", ch->ring.nnodes);
	kv_int(b, "replicas", ch->nmax);
	render_members(ch, b);
	render_keyspaces(ch, b);
	struct stat_item it[STAT_ITEMS_MAX];
	unsigned n = stat_items(ch, it);
	resp_add_bulk_str(b, "stats");
	resp_add_array(b, 2 * n);
	for (unsigned i = 0; i < n; i++)
		kv_int(b, it[i].name, (int64_t)it[i].v);
}

void chost_render_ring(struct chost *ch, struct resp_buf *b)
{
	const struct ring *r = &ch->ring;
	resp_add_array(b, 10);
	kv_int(b, "version", (int64_t)r->version);
	kv_int(b, "partitions", r->q);
	kv_int(b, "replicas", ch->nmax);
	resp_add_bulk_str(b, "nodes");
	resp_add_array(b, r->nnodes);
	for (unsigned i = 0; i < r->nnodes; i++)
		resp_add_int(b, r->nodes[i]);
	resp_add_bulk_str(b, "table");
	resp_add_array(b, r->q);
	for (uint32_t p = 0; p < r->q; p++) {
		uint64_t lo, hi;
		ring_partition_range(r, p, &lo, &hi);
		uint16_t pl[RING_N_MAX];
		unsigned n = ring_preflist(r, p, ch->nmax, pl);
		char s[24];
		resp_add_array(b, 5);
		resp_add_int(b, p);
		snprintf(s, sizeof(s), "0x%016llx", (unsigned long long)lo);
		resp_add_bulk_str(b, s);
		snprintf(s, sizeof(s), "0x%016llx", (unsigned long long)hi);
		resp_add_bulk_str(b, s);
		resp_add_int(b, r->owner[p]);
		resp_add_array(b, n);
		for (unsigned i = 0; i < n; i++)
			resp_add_int(b, pl[i]);
	}
}

void chost_status_json(struct chost *ch, struct resp_buf *b)
{
	const struct cluster_config *cc = ch->cc;
	resp_add_rawf(b, ",\"cluster\":{\"node_id\":%u,\"cluster_id\":\"%016llx\",\"incarnation\":\"%012llx\","
			 "\"ring_version\":%llu,\"partitions\":%u,\"replicas\":%u,\"members\":[",
		      cc->node_id, (unsigned long long)cc->cluster_id, (unsigned long long)ch->id.incarnation,
		      (unsigned long long)ch->ring.version, ch->ring.q, ch->nmax);
	struct member_view mv[RING_NODES_MAX];
	unsigned n = members(ch, mv);
	for (unsigned i = 0; i < n; i++) {
		const struct member_view *m = &mv[i];
		resp_add_rawf(b, "%s{\"id\":%u,\"internode\":\"%s\",\"client\":\"%s\",\"state\":\"%s\",\"owned\":%u,"
				 "\"replicated\":%u,\"bytes_in\":%llu,\"bytes_out\":%llu}",
			      i ? "," : "", m->id, m->internode, m->client, m->state, ring_owned_count(&ch->ring, m->id),
			      ring_replicated_count(&ch->ring, ch->nmax, m->id), (unsigned long long)m->bytes_in,
			      (unsigned long long)m->bytes_out);
	}
	resp_add_rawf(b, "],\"keyspaces\":[");
	struct cluster_keyspace k;
	for (unsigned i = 0, first = 1; i < CLUSTER_KEYSPACES_MAX; i++) {
		if (!cluster_keyspace_eff(cc, i, &k))
			continue;
		resp_add_rawf(b, "%s{\"id\":%u,\"name\":\"%s\",\"n\":%u,\"r\":%u,\"w\":%u,\"policy\":\"%s\"}",
			      first ? "" : ",", i, k.name, k.n, k.r, k.w, k.policy == CLUSTER_LWW ? "lww" : "siblings");
		first = 0;
	}
	resp_add_rawf(b, "],\"stats\":{");
	struct stat_item it[STAT_ITEMS_MAX];
	unsigned ns = stat_items(ch, it);
	for (unsigned i = 0; i < ns; i++)
		resp_add_rawf(b, "%s\"%s\":%llu", i ? "," : "", it[i].name, (unsigned long long)it[i].v);
	resp_add_rawf(b, "}}");
}

#define COUNTER(name, help, value) \
	resp_add_rawf(b, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n", (unsigned long long)(value))
#define GAUGE(name, help, value) \
	resp_add_rawf(b, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %llu\n", (unsigned long long)(value))

static void metrics_peers(struct chost *ch, struct resp_buf *b)
{
	unsigned by_state[4] = {0};
	for (unsigned i = 0; i < ch->npeers; i++)
		by_state[peer_state(&ch->peers[i])]++;
	resp_add_rawf(b, "# HELP dynvme_cluster_peers Peers by connection state.\n# TYPE dynvme_cluster_peers gauge\n");
	for (unsigned s = 0; s < 4; s++)
		resp_add_rawf(b, "dynvme_cluster_peers{state=\"%s\"} %u\n", peer_state_name((enum peer_state)s), by_state[s]);
	resp_add_rawf(b, "# HELP dynvme_cluster_peer_up 1 when the session with the peer is up.\n"
			 "# TYPE dynvme_cluster_peer_up gauge\n");
	for (unsigned i = 0; i < ch->npeers; i++)
		resp_add_rawf(b, "dynvme_cluster_peer_up{peer=\"%u\"} %d\n", ch->peers[i].id,
			      peer_state(&ch->peers[i]) == PEER_UP);
	resp_add_rawf(b, "# HELP dynvme_cluster_peer_bytes_total Internode frame bytes, by peer and direction.\n"
			 "# TYPE dynvme_cluster_peer_bytes_total counter\n");
	for (unsigned i = 0; i < ch->npeers; i++) {
		const struct peer *p = &ch->peers[i];
		resp_add_rawf(b, "dynvme_cluster_peer_bytes_total{peer=\"%u\",dir=\"in\"} %llu\n", p->id,
			      (unsigned long long)p->bytes_in);
		resp_add_rawf(b, "dynvme_cluster_peer_bytes_total{peer=\"%u\",dir=\"out\"} %llu\n", p->id,
			      (unsigned long long)p->bytes_out);
	}
}

void chost_metrics(struct chost *ch, struct resp_buf *b)
{
	struct cnode_stats st;
	cnode_get_stats(ch->cn, &st);
	uint64_t dropped = ch->frames_no_peer;
	for (unsigned i = 0; i < ch->npeers; i++)
		dropped += ch->peers[i].frames_dropped;
	resp_add_rawf(b, "# HELP dynvme_cluster_requests_coordinated_total Requests this node coordinated, by kind.\n"
			 "# TYPE dynvme_cluster_requests_coordinated_total counter\n"
			 "dynvme_cluster_requests_coordinated_total{kind=\"read\"} %llu\n"
			 "dynvme_cluster_requests_coordinated_total{kind=\"write\"} %llu\n",
		      (unsigned long long)st.coord_reads, (unsigned long long)st.coord_writes);
	resp_add_rawf(b, "# HELP dynvme_cluster_replica_requests_total Replica operations for coordinators, by kind.\n"
			 "# TYPE dynvme_cluster_replica_requests_total counter\n"
			 "dynvme_cluster_replica_requests_total{kind=\"get\"} %llu\n"
			 "dynvme_cluster_replica_requests_total{kind=\"put\"} %llu\n",
		      (unsigned long long)st.replica_gets, (unsigned long long)st.replica_puts);
	resp_add_rawf(b, "# HELP dynvme_cluster_internode_bytes_total Internode message bytes, by direction.\n"
			 "# TYPE dynvme_cluster_internode_bytes_total counter\n"
			 "dynvme_cluster_internode_bytes_total{dir=\"in\"} %llu\n"
			 "dynvme_cluster_internode_bytes_total{dir=\"out\"} %llu\n",
		      (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
	resp_add_rawf(b, "# HELP dynvme_cluster_messages_total Internode messages, by direction.\n"
			 "# TYPE dynvme_cluster_messages_total counter\n"
			 "dynvme_cluster_messages_total{dir=\"in\"} %llu\n"
			 "dynvme_cluster_messages_total{dir=\"out\"} %llu\n",
		      (unsigned long long)st.msgs_in, (unsigned long long)st.msgs_out);
	COUNTER("dynvme_cluster_requests_forwarded_total", "Writes forwarded to a replica of their key.", st.forwarded);
	COUNTER("dynvme_cluster_replica_noops_total", "Replica merges that changed nothing.", st.replica_noops);
	COUNTER("dynvme_cluster_quorum_timeouts_total", "Requests without R or W replies by their deadline.",
		st.quorum_timeouts);
	COUNTER("dynvme_cluster_read_repairs_total", "Stale replicas written back after a read.", st.read_repairs);
	COUNTER("dynvme_cluster_full_reads_total", "Reads that asked every replica at once (R = N, one in 8).",
		st.full_reads);
	COUNTER("dynvme_cluster_late_read_asks_total",
		"Replicas a read asked after its first round (a refusal, a lost session, the speculative timer).",
		st.late_read_asks);
	COUNTER("dynvme_cluster_spec_timer_fires_total", "Reads whose speculative timer fired short of R.",
		st.spec_timer_fires);
	COUNTER("dynvme_cluster_checked_writes_total",
		"Plain SETs written without a read first, their replicas checking the version covers their copy.",
		st.checked_writes);
	COUNTER("dynvme_cluster_checked_fallbacks_total",
		"Checked writes widened (a replica's copy knew more: a read, then the same version over what it "
		"found) or redone with a read first (our own copy unreadable).",
		st.checked_fallbacks);
	COUNTER("dynvme_cluster_uncovered_refusals_total",
		"Checked puts whose version did not cover this replica's copy (merged all the same, answered UNCOVERED).",
		st.uncovered_refusals);
	COUNTER("dynvme_cluster_ctx_flush_holds_total",
		"DYN.PUT/DEL held until this node learned the flush their context was read after.",
		st.ctx_flush_holds);
	COUNTER("dynvme_cluster_read_cache_hits_total", "Store reads answered from the replica's read cache.",
		st.cache_hits);
	COUNTER("dynvme_cluster_read_cache_misses_total", "Store reads the read cache could not answer.",
		st.cache_misses);
	GAUGE("dynvme_cluster_read_cache_bytes", "RAM held by the replica's read cache.", st.cache_bytes);
	COUNTER("dynvme_cluster_busy_refusals_total", "Requests refused for lack of room.", st.busy_refusals);
	COUNTER("dynvme_cluster_siblings_refused_total", "Writes refused by the sibling limit.", st.siblings_refused);
	COUNTER("dynvme_cluster_bad_messages_total", "Internode messages dropped as malformed or misaddressed.",
		st.bad_msgs);
	COUNTER("dynvme_cluster_frames_dropped_total", "Frames dropped: no session with the peer, or its queue full.",
		dropped);
	COUNTER("dynvme_cluster_handshakes_refused_total", "Peer connections refused (secret, cluster, member).",
		ch->refused_handshakes);
	GAUGE("dynvme_cluster_requests_in_flight", "Requests this node coordinates now.", st.requests_in_flight);
	GAUGE("dynvme_cluster_replica_ops_in_flight", "Replica operations under way.", st.replica_ops_in_flight);
	metrics_peers(ch, b);
}
