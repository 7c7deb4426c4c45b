/* simcluster.c - the cluster harness (see simcluster.h): node lifecycle
 * (boot, crash, restart), the event loop over virtual time, the fault
 * schedule. The workload is in simclients.c, the convergence phase in
 * simconverge.c.
 *
 * Event order at one virtual instant, always the same: message deliveries
 * (in simnet order), node timers (in node order), fault events, client
 * operations. After each, the node touched is settled: its store polled
 * until idle, its frames handed to the network. */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/error.h"
#include "cluster/msg.h"
#include "sim/simcluster_int.h"

#define DEV_BYTES (4ull << 20)
#define ZONE_BYTES (256ull << 10)
#define SIBLINGS_MAX 16u
#define SAME_INSTANT_MAX 1000000u /* steps at one virtual ms before we call it a livelock */
#define VIOLATIONS_PRINTED 10u
#define CLOCK_STEP_MS 1000u
#define CLOCK_DRIFT_MS 20

enum fault_event { EV_PARTITION = 1, EV_HEAL, EV_ARM_CUT, EV_CRASH, EV_RESTART, EV_FATAL, EV_CLOCK, EV_CHAOS_END, EV_WIPE };

/* --- logging, trace, violations --- */

/* Callers hash arrays of integers, never structs: padding bytes would
 * make the hash depend on the compiler. */
void sim_trace(struct sim *sim, const void *data, size_t len) { XXH3_64bits_update(sim->trace, data, len); }

void sim_log(struct sim *sim, int level, const char *fmt, ...)
{
	if (sim->cfg->verbose < level)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(sim->cfg->out, "%8llu ms  ", (unsigned long long)sim->now);
	vfprintf(sim->cfg->out, fmt, ap);
	fputc('\n', sim->cfg->out);
	va_end(ap);
}

void sim_violation(struct sim *sim, const char *fmt, ...)
{
	if (sim->violations++ >= VIOLATIONS_PRINTED)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(sim->cfg->out, "simcluster: VIOLATION at %llu ms: ", (unsigned long long)sim->now);
	vfprintf(sim->cfg->out, fmt, ap);
	fputc('\n', sim->cfg->out);
	va_end(ap);
	if (sim->cfg->replay)
		fprintf(sim->cfg->out, "  replay: %s\n", sim->cfg->replay);
}

static void trace_event(struct sim *sim, enum fault_event kind, unsigned node, uint64_t a)
{
	uint64_t t[4] = {sim->now, a, kind, node};
	sim_trace(sim, t, sizeof(t));
}

/* --- clocks --- */

uint64_t sim_node_now(struct sim *sim, struct simnode *nd)
{
	int64_t t = (int64_t)(SIM_EPOCH_MS + sim->now) + nd->skew_ms;
	if ((uint64_t)t > nd->clock_last)
		nd->clock_last = (uint64_t)t;
	return nd->clock_last;
}

/* The global time at which the node's clock reaches node_ms. */
static uint64_t global_at(const struct sim *sim, const struct simnode *nd, uint64_t node_ms)
{
	if (node_ms <= nd->clock_last)
		return sim->now;
	int64_t t = (int64_t)node_ms - (int64_t)SIM_EPOCH_MS - nd->skew_ms;
	return t < (int64_t)sim->now ? sim->now : (uint64_t)t;
}

static void clocks_drift(struct sim *sim, int64_t max_skew)
{
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		nd->skew_ms += (int64_t)sim_rng_range(&sim->rng, 0, 2 * CLOCK_DRIFT_MS) - CLOCK_DRIFT_MS;
		if (nd->skew_ms > max_skew)
			nd->skew_ms = max_skew;
		if (nd->skew_ms < -max_skew)
			nd->skew_ms = -max_skew;
	}
	trace_event(sim, EV_CLOCK, 0, 0);
}

/* --- nodes --- */

bool sim_node_up(const struct simnode *nd) { return nd->cn != NULL; }

static void add_stats(struct cnode_stats *acc, const struct cnode_stats *s)
{
	acc->coord_reads += s->coord_reads;
	acc->coord_writes += s->coord_writes;
	acc->read_repairs += s->read_repairs;
	acc->checked_writes += s->checked_writes;
	acc->checked_fallbacks += s->checked_fallbacks;
	acc->quorum_timeouts += s->quorum_timeouts;
	acc->siblings_refused += s->siblings_refused;
	acc->bad_msgs += s->bad_msgs;
	acc->msgs_in += s->msgs_in;
	acc->msgs_out += s->msgs_out;
}

static void set_disk_plan(struct sim *sim, struct simnode *nd, bool on)
{
	struct dev_fault_plan p = on ? nd->disk : (struct dev_fault_plan){0};
	p.seed = sim_rng_next(&sim->rng);
	dev_mem_set_plan(nd->dev, &p);
}

/* As the server draws them (cnode_fresh_incarnation), from the node's clock. */
static uint64_t fresh_incarnation(struct sim *sim, struct simnode *nd)
{
	uint64_t inc = cnode_fresh_incarnation(sim_node_now(sim, nd), sim_rng_next(&sim->rng));
	/* A real start takes longer than a millisecond (recovery alone): the
	 * simulator's takes no time, so a crash right after a start can
	 * restart in the same millisecond, which a real node never does. */
	if (nd->run != 0 && inc <= nd->run && !(nd->run >> 47))
		inc = (nd->run | 127) + 1 + (inc & 127);
	return inc & DVV_INCARNATION_MASK;
}

/* The store's clock is its node's (expiry decisions inside the store). */
static uint64_t store_clock(void *ctx)
{
	struct simnode *nd = ctx;
	return sim_node_now(nd->sim, nd);
}

/* Opens the store (recovery), loads the identity, creates the cnode. The
 * disk faults are off while the store recovers: recovery under faults is
 * the store model test's subject. */
static int node_boot(struct sim *sim, struct simnode *nd, bool first)
{
	set_disk_plan(sim, nd, false);
	struct store_config sc = sim->scfg;
	sc.now_ms = store_clock;
	sc.clock_ctx = nd;
	int err = store_open(&nd->store, nd->dev, &sc);
	if (err) {
		nd->store = NULL;
		sim_log(sim, 1, "node %u: store_open failed: %s", nd->id, dv_strerror(err));
		return err;
	}
	struct cnode_identity ident;
	err = cnode_identity_load(nd->store, sim->ccfg.cluster_id, nd->id, fresh_incarnation(sim, nd), &ident);
	if (err) {
		sim_log(sim, 1, "node %u: cnode_identity_load failed: %s", nd->id, dv_strerror(err));
		goto out_close;
	}
	if (!first && nd->wiped && (!ident.created || ident.incarnation == nd->incarnation))
		sim_violation(sim, "node %u restarted on an empty data file but kept incarnation %llx", nd->id,
			      (unsigned long long)nd->incarnation);
	if (!first && !nd->wiped && ident.created && !(sim->cfg->faults & SIM_F_LOSSY))
		sim_violation(sim, "node %u restarted on its own data file but got a new incarnation", nd->id);
	if (!first && ident.run <= nd->run)
		sim_violation(sim, "node %u restarted with run incarnation %llx, not above its last (%llx)", nd->id,
			      (unsigned long long)ident.run, (unsigned long long)nd->run);
	nd->wiped = false;
	nd->incarnation = ident.incarnation;
	nd->run = ident.run;
	struct cnode_config cc = sim->ccfg;
	cc.node_id = nd->id;
	cc.incarnation = ident.incarnation;
	cc.run = ident.run;
	cc.boot = ident.boot;
	err = cnode_create(&nd->cn, &cc, nd->store, sim_node_now(sim, nd));
	if (err) {
		nd->cn = NULL;
		sim_log(sim, 1, "node %u: cnode_create failed: %s", nd->id, dv_strerror(err));
		goto out_close;
	}
	set_disk_plan(sim, nd, true);
	nd->fatal_seen = false;
	nd->restart_at = 0;
	simnet_node_up(sim->net, nd->idx);
	/* Its sessions with the nodes that are up: both ends learn of them
	 * (a partition does not end a session; a crash does, node_down). */
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *o = &sim->node[i];
		if (o == nd || !sim_node_up(o))
			continue;
		cnode_peer_up(nd->cn, o->id, sim_node_now(sim, nd));
		cnode_peer_up(o->cn, nd->id, sim_node_now(sim, o));
	}
	sim_log(sim, 1, "node %u: up, incarnation %llx%s", nd->id, (unsigned long long)nd->incarnation,
		ident.created ? " (new)" : "");
	return 0;
out_close:
	store_close(nd->store);
	nd->store = NULL;
	return err;
}

static void discard_frames(struct simnode *nd)
{
	struct cnode_frame *f = cnode_take_frames(nd->cn);
	while (f) {
		struct cnode_frame *next = f->next;
		cnode_frame_free(nd->cn, f);
		f = next;
	}
}

static void collect_store_stats(struct sim *sim, struct simnode *nd)
{
	struct store_stats st;
	store_get_stats(nd->store, &st);
	sim->res->gc_zones_reset += st.gc_zones_reset;
}

/* The node stops: nothing it produces from here on leaves it. Its store's
 * in-flight ops complete (failing, after a power cut), then the cnode
 * completes its open requests (the clients' ops become indeterminate). */
static void node_down(struct sim *sim, struct simnode *nd)
{
	DV_ASSERT(sim_node_up(nd));
	simnet_node_down(sim->net, nd->idx);
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *o = &sim->node[i];
		if (o != nd && sim_node_up(o))
			cnode_peer_down(o->cn, nd->id, sim_node_now(sim, o));
	}
	store_drain(nd->store);
	discard_frames(nd);
	struct cnode_stats st;
	cnode_get_stats(nd->cn, &st);
	add_stats(&nd->acc, &st);
	cnode_destroy(nd->cn);
	nd->cn = NULL;
	collect_store_stats(sim, nd);
	store_close(nd->store);
	nd->store = NULL;
}

static uint64_t writes_ok(const struct simnode *nd)
{
	struct dev_fault_stats st = dev_mem_stats(nd->dev);
	return st.writes - st.write_eio;
}

/* A power cut after `more` further successful writes (0: the next write is
 * torn), with the node's disk faults kept until then. */
static void arm_power_cut(struct sim *sim, struct simnode *nd, uint64_t more)
{
	struct dev_fault_plan p = nd->disk;
	p.seed = sim_rng_next(&sim->rng);
	p.power_cut_after_writes = writes_ok(nd) + more;
	dev_mem_set_plan(nd->dev, &p);
	nd->cut_armed = true;
}

/* Writes a power cut damaged on this medium so far: torn at the cut by the
 * plain device, or torn or lost in flight by the adversarial one. */
static uint64_t cut_damage(const struct simnode *nd)
{
	struct dev_fault_stats st = dev_mem_stats(nd->dev);
	return st.torn_sectors_kept + st.torn_sectors_lost + st.cut_torn + st.cut_lost;
}

static void crash_now(struct sim *sim, struct simnode *nd)
{
	uint64_t damage = nd->cut_damage_seen;
	if (!dev_mem_stats(nd->dev).power_cut)
		dev_mem_power_cut(nd->dev); /* now: nothing in flight lands whole, nothing later lands */
	node_down(sim, nd);
	nd->cut_damage_seen = cut_damage(nd);
	bool torn = nd->cut_damage_seen != damage;
	nd->cut_armed = false;
	nd->restart_at = sim->chaos ? sim->now + sim_rng_range(&sim->rng, 300, 3000) : sim->now;
	sim->res->crashes++;
	sim->res->torn_writes += torn;
	trace_event(sim, EV_CRASH, nd->idx, torn);
	sim_log(sim, 1, "node %u: crash (power cut%s), restart at %llu", nd->id, torn ? ", writes torn or lost" : "",
		(unsigned long long)nd->restart_at);
}

static void count_disk_faults(struct sim *sim, struct simnode *nd)
{
	struct dev_fault_stats st = dev_mem_stats(nd->dev);
	sim->res->disk_faults +=
		st.write_eio + st.write_lost + st.write_flip + st.read_eio + st.read_flip + st.submit_eagain;
}

/* The node's data file is replaced by an empty one (a disk swapped after
 * the crash): everything it held is gone, and it must start as a new
 * incarnation so it never reissues a dot of its old self (Riak's KV679). */
static void wipe(struct sim *sim, struct simnode *nd)
{
	count_disk_faults(sim, nd);
	dev_close(nd->dev);
	int err = dev_open_mem(&nd->dev, DEV_BYTES, NULL);
	DV_ASSERT(err == 0); /* test-only code: out of memory is fatal */
	nd->write_eio_seen = 0;
	nd->cut_damage_seen = 0;
	nd->wiped = true;
	nd->wipe_next = false;
	sim->res->wipes++;
	trace_event(sim, EV_WIPE, nd->idx, 0);
	sim_log(sim, 1, "node %u: its data file is replaced by an empty one", nd->id);
}

static void restart(struct sim *sim, struct simnode *nd)
{
	trace_event(sim, EV_RESTART, nd->idx, 0);
	if (sim_node_up(nd)) /* a fatal store: restart the process */
		node_down(sim, nd);
	dev_mem_power_on(nd->dev);
	if (nd->wipe_next)
		wipe(sim, nd);
	sim->res->restarts++;
	int err = node_boot(sim, nd, false);
	if (err && (sim->cfg->faults & SIM_F_LOSSY)) {
		/* Its disk damaged what it needs to start (its identity, a flush
		 * record, the superblock): it refuses, and the operator replaces
		 * its data file; it comes back as a new incarnation. */
		sim_log(sim, 1, "node %u: does not start on its damaged data file (%s): replaced", nd->id,
			dv_strerror(err));
		wipe(sim, nd);
		err = node_boot(sim, nd, false);
	}
	if (err) {
		sim_violation(sim, "node %u does not come back after a crash: %s", nd->id, dv_strerror(err));
		nd->restart_at = 0; /* stays down */
	}
}

static void flush_frames(struct sim *sim, struct simnode *nd)
{
	struct cnode_frame *f = cnode_take_frames(nd->cn);
	while (f) {
		struct cnode_frame *next = f->next;
		if (f->to < 1 || f->to > sim->nnodes || f->to == nd->id) {
			sim_violation(sim, "node %u sent a frame to node %u", nd->id, f->to);
		} else {
			simnet_send(sim->net, nd->idx, f->to - 1u, f->data, f->len, sim->now);
			sim_log(sim, 2, "send %u -> %u: %u bytes", nd->id, f->to, f->len);
		}
		cnode_frame_free(nd->cn, f);
		f = next;
	}
}

void sim_settle(struct sim *sim, struct simnode *nd)
{
	if (!sim_node_up(nd))
		return;
	store_drain(nd->store);
	if (nd->cut_armed && dev_mem_stats(nd->dev).power_cut) {
		crash_now(sim, nd);
		return;
	}
	/* A write error makes the store fatal (store.h); the device's counter
	 * is cheap to read, the store's stats are not (they count the index). */
	uint64_t eio = dev_mem_stats(nd->dev).write_eio;
	struct store_stats st = {0};
	if (eio != nd->write_eio_seen) {
		nd->write_eio_seen = eio;
		store_get_stats(nd->store, &st);
	}
	if (st.failed && !nd->fatal_seen) {
		nd->fatal_seen = true;
		nd->restart_at = sim->now + sim_rng_range(&sim->rng, 50, 500);
		sim->res->store_fatals++;
		trace_event(sim, EV_FATAL, nd->idx, 0);
		sim_log(sim, 1, "node %u: store failed (write error), restart at %llu", nd->id,
			(unsigned long long)nd->restart_at);
	}
	flush_frames(sim, nd);
}

/* --- network --- */

static void deliver(struct sim *sim, struct simnet_packet *p)
{
	struct simnode *nd = &sim->node[p->to];
	uint64_t t[4] = {sim->now, p->from, p->to, p->len};
	sim_trace(sim, t, sizeof(t));
	sim_trace(sim, p->data, p->len);
	sim->res->msgs_delivered++;
	if (p->flipped) {
		struct msg m;
		sim->res->msgs_flipped++;
		if (msg_decode(p->data, p->len, &m) == -EBADMSG)
			sim->res->flips_caught++;
		else
			sim_violation(sim, "a message %u -> %u with a byte flipped in transit decodes as valid",
				      p->from + 1, p->to + 1);
	}
	sim_log(sim, 2, "deliver %u -> %u: %u bytes%s", p->from + 1, p->to + 1, p->len, p->flipped ? " (flipped)" : "");
	DV_ASSERT(sim_node_up(nd)); /* simnet drops messages to nodes that are down */
	cnode_on_message(nd->cn, (uint16_t)(p->from + 1), p->data, p->len, sim_node_now(sim, nd));
	sim_settle(sim, nd);
}

static struct simnet_config clean_net(unsigned nodes)
{
	/* hold_ms: the driver's frames for a peer without a session (peer.c). */
	return (struct simnet_config){.nodes = nodes, .delay_min_ms = 1, .delay_max_ms = 5, .hold_ms = 2000};
}

static void net_change(struct sim *sim)
{
	unsigned f = sim->cfg->faults;
	if (sim->partitioned) {
		simnet_heal(sim->net);
		sim->partitioned = false;
		trace_event(sim, EV_HEAL, 0, 0);
		sim_log(sim, 1, "network: healed");
		sim->next_net_change = sim->now + sim_rng_range(&sim->rng, 500, 3000);
		return;
	}
	bool side[SIMNET_NODES_MAX];
	unsigned ones;
	do {
		ones = 0;
		for (unsigned i = 0; i < sim->nnodes; i++)
			ones += side[i] = sim_rng_below(&sim->rng, 2);
	} while (ones == 0 || ones == sim->nnodes);
	/* What this cut is: symmetric (PARTITION), one way or clogged (ONEWAY). */
	unsigned kinds[3], nk = 0;
	if (f & SIM_F_PARTITION)
		kinds[nk++] = 0;
	if (f & SIM_F_ONEWAY) {
		kinds[nk++] = 1;
		kinds[nk++] = 2;
	}
	unsigned kind = kinds[sim_rng_below(&sim->rng, nk)];
	bool one_way = kind == 1 || (kind == 2 && sim_rng_below(&sim->rng, 2));
	simnet_partition(sim->net, side, one_way, kind == 2 ? SIMNET_CLOGGED : SIMNET_CUT);
	sim->partitioned = true;
	sim->res->partitions++;
	uint64_t mask = 0;
	for (unsigned i = 0; i < sim->nnodes; i++)
		mask |= (uint64_t)side[i] << i;
	trace_event(sim, EV_PARTITION, kind, mask | (uint64_t)one_way << 32);
	sim_log(sim, 1, "network: %s %s, side mask %llx", kind == 2 ? "clogged" : "cut", one_way ? "one way" : "both ways",
		(unsigned long long)mask);
	sim->next_net_change = sim->now + sim_rng_range(&sim->rng, 300, 3000);
}

/* --- crashes --- */

static void crash_schedule(struct sim *sim)
{
	sim->next_crash = sim->now + sim_rng_range(&sim->rng, 1000, 4000);
	unsigned out = 0, cand[SIMNET_NODES_MAX], nc = 0;
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		if (!sim_node_up(nd) || nd->cut_armed || nd->restart_at)
			out++;
		else
			cand[nc++] = i;
	}
	/* Keep most nodes up: a few ops must be able to succeed. */
	unsigned max_out = sim->nnodes >= 5 ? 2 : 1;
	if (out >= max_out || nc == 0)
		return;
	struct simnode *nd = &sim->node[cand[sim_rng_below(&sim->rng, nc)]];
	uint64_t more = sim_rng_range(&sim->rng, 0, 10);
	arm_power_cut(sim, nd, more);
	/* One node of a run may lose its data file with this crash. */
	if ((sim->cfg->faults & SIM_F_WIPE) && !sim->wipe_planned && sim_rng_below(&sim->rng, 3) == 0) {
		nd->wipe_next = true;
		sim->wipe_planned = true;
	}
	nd->crash_at = sim->now + sim_rng_range(&sim->rng, 0, 1500);
	trace_event(sim, EV_ARM_CUT, nd->idx, more);
	sim_log(sim, 1, "node %u: power cut after %llu more writes (or at %llu)", nd->id, (unsigned long long)more,
		(unsigned long long)nd->crash_at);
}

/* --- the event loop --- */

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static uint64_t next_event(struct sim *sim)
{
	uint64_t t = min64(simnet_next_ms(sim->net), clients_next_ms(sim));
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		if (sim_node_up(nd)) {
			uint64_t d = cnode_next_deadline(nd->cn);
			if (d != UINT64_MAX)
				t = min64(t, global_at(sim, nd, d));
			if (nd->cut_armed)
				t = min64(t, nd->crash_at);
		}
		if (nd->restart_at)
			t = min64(t, nd->restart_at);
	}
	if (sim->chaos) {
		unsigned f = sim->cfg->faults;
		if (f & (SIM_F_PARTITION | SIM_F_ONEWAY))
			t = min64(t, sim->next_net_change);
		if (f & SIM_F_CRASH)
			t = min64(t, sim->next_crash);
		t = min64(t, sim->next_clock);
		t = min64(t, sim->chaos_end);
	}
	return t;
}

void sim_settle_all(struct sim *sim)
{
	for (unsigned i = 0; i < sim->nnodes; i++)
		sim_settle(sim, &sim->node[i]);
}

static void step(struct sim *sim)
{
	struct simnet_packet *p;
	while ((p = simnet_take(sim->net, sim->now))) {
		deliver(sim, p);
		simnet_packet_free(p);
	}
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		if (sim_node_up(nd)) {
			uint64_t now = sim_node_now(sim, nd);
			if (cnode_next_deadline(nd->cn) <= now) {
				cnode_tick(nd->cn, now);
				sim_settle(sim, nd);
			}
		}
	}
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		if (sim_node_up(nd) && nd->cut_armed && nd->crash_at <= sim->now)
			crash_now(sim, nd);
		if (nd->restart_at && nd->restart_at <= sim->now)
			restart(sim, nd);
	}
	if (sim->chaos) {
		unsigned f = sim->cfg->faults;
		if ((f & (SIM_F_PARTITION | SIM_F_ONEWAY)) && sim->next_net_change <= sim->now)
			net_change(sim);
		if ((f & SIM_F_CRASH) && sim->next_crash <= sim->now)
			crash_schedule(sim);
		if (sim->next_clock <= sim->now) {
			clocks_drift(sim, sim->max_skew);
			sim->next_clock = sim->now + CLOCK_STEP_MS;
		}
	}
	clients_run_due(sim);
	sim_settle_all(sim);
}

static bool quiet(struct sim *sim)
{
	if (sim->ops_in_flight || simnet_next_ms(sim->net) != UINT64_MAX)
		return false;
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		if (nd->restart_at || (sim_node_up(nd) && !cnode_idle(nd->cn)))
			return false;
	}
	return true;
}

int sim_run_until(struct sim *sim, uint64_t until, bool until_quiet)
{
	uint64_t last = UINT64_MAX, same = 0;
	for (;;) {
		if (until_quiet && quiet(sim))
			return 0;
		uint64_t t = next_event(sim);
		if (t > until) {
			sim->now = until;
			return until_quiet ? -ETIME : 0;
		}
		DV_ASSERT(t >= sim->now);
		sim->now = t;
		if (t == last && ++same > SAME_INSTANT_MAX) {
			sim_violation(sim, "livelock: no progress past %llu ms (a deadline that never clears?)",
				      (unsigned long long)t);
			return -ELOOP;
		}
		if (t != last)
			same = 0;
		last = t;
		if (sim->chaos && t >= sim->chaos_end)
			return 0;
		step(sim);
	}
}

/* Faults stop: clean network, healed links, disks without faults, every
 * node up again. */
static void heal(struct sim *sim)
{
	sim->chaos = false;
	trace_event(sim, EV_CHAOS_END, 0, 0);
	sim_log(sim, 1, "chaos ends: healing");
	struct simnet_config nc = clean_net(sim->nnodes);
	simnet_set_faults(sim->net, &nc);
	simnet_heal(sim->net);
	sim->partitioned = false;
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		nd->disk = (struct dev_fault_plan){0};
		if (sim_node_up(nd) && nd->cut_armed)
			crash_now(sim, nd);
		else if (sim_node_up(nd))
			set_disk_plan(sim, nd, false);
		if (nd->restart_at)
			nd->restart_at = sim->now;
	}
}

/* --- setup --- */

static void choose_quorums(struct sim *sim)
{
	static const struct {
		uint8_t n, r, w, weight;
	} shapes[] = {{3, 2, 2, 55}, {3, 1, 3, 8}, {3, 3, 1, 8}, {3, 1, 1, 5}, {2, 1, 2, 6}, {2, 2, 1, 4}, {5, 3, 3, 8}, {3, 2, 3, 6}};
	unsigned x = (unsigned)sim_rng_below(&sim->rng, 100), i = 0;
	while (x >= shapes[i].weight) {
		x -= shapes[i].weight;
		i++;
		DV_ASSERT(i < DV_ARRAY_LEN(shapes));
	}
	sim->n = shapes[i].n, sim->r = shapes[i].r, sim->w = shapes[i].w;
	if (sim->n > sim->nnodes) { /* e.g. N=5 on 3 nodes: the default shape, capped */
		sim->n = 3, sim->r = 2, sim->w = 2;
		sim->n = sim->n < sim->nnodes ? sim->n : (uint8_t)sim->nnodes;
		sim->r = sim->r < sim->n ? sim->r : sim->n;
		sim->w = sim->w < sim->n ? sim->w : sim->n;
	}
	sim->lww_n = sim->nnodes < 3 ? (uint8_t)sim->nnodes : 3;
	sim->lww_r = sim->lww_w = sim->lww_n < 2 ? sim->lww_n : 2;
}

/* Checked writes in three seeds in four (the nodes' default is off), from
 * the seed's bits; the checker is told (simcheck.h). */
static bool seed_checked_sets(uint64_t seed)
{
	uint64_t h = seed * 0x9e3779b97f4a7c15ull;
	return (h >> 20) % 4 != 0;
}

/* Keyspaces, timeouts and bounds. A third of the runs get tight bounds so
 * back-pressure (queued frames, -EAGAIN, BUSY replies, the byte budget) and
 * the sibling limit are exercised too. */
static void choose_limits(struct sim *sim, struct cnode_config *cc)
{
	uint16_t sib_max = sim_rng_below(&sim->rng, 100) < 20 ? (uint16_t)sim_rng_range(&sim->rng, 3, 8) : SIBLINGS_MAX;
	cc->ks[SIM_KS_SIB] = (struct cnode_keyspace){.defined = true, .name = "default", .n = sim->n, .r = sim->r,
						     .w = sim->w, .policy = DVV_SIBLINGS, .siblings_max = sib_max};
	cc->ks[SIM_KS_LWW] = (struct cnode_keyspace){.defined = true, .name = "lww", .n = sim->lww_n, .r = sim->lww_r,
						     .w = sim->lww_w, .policy = DVV_LWW, .siblings_max = sib_max};
	cc->timeout_ms = (uint32_t)sim_rng_range(&sim->rng, 300, 1500);
	cc->repair_wait_ms = (uint32_t)sim_rng_range(&sim->rng, 20, 400);
	if (sim_rng_below(&sim->rng, 3) == 0) {
		cc->peer_inflight_max = (uint32_t)sim_rng_range(&sim->rng, 1, 16);
		cc->requests_max = (uint32_t)sim_rng_range(&sim->rng, 2, 32);
		cc->replica_ops_max = (uint32_t)sim_rng_range(&sim->rng, 2, 32);
		cc->buffer_bytes_max = sim_rng_range(&sim->rng, 256u << 10, 2u << 20);
	}
	/* The replica's read cache (rcache.h): off, tiny (evicting all the
	 * time; a record over 2 KiB not kept), small, or holding everything;
	 * from the seed's bits, not the PRNG (the runs' draws stay as they were). */
	static const uint64_t cache_sizes[] = {0, 16u << 10, 256u << 10, 64u << 20};
	uint64_t h = sim->cfg->seed * 0x9e3779b97f4a7c15ull;
	cc->read_cache_bytes = cache_sizes[h >> 62];
	/* Checked writes: in half the seeds a key that met a race stays
	 * checked (every plain SET through a replica is one), in the other
	 * half it reads first for 0.1 to 10 s (the node's default is 10 s). */
	cc->contended_ms = (h >> 61 & 1) ? UINT32_MAX : (uint32_t)(100 + (h >> 32) % 9900);
	cc->checked_sets = seed_checked_sets(sim->cfg->seed);
}

static void choose_faults(struct sim *sim, int64_t *max_skew)
{
	unsigned f = sim->cfg->faults;
	sim->netcfg = clean_net(sim->nnodes);
	if (f & SIM_F_NET) {
		sim->netcfg.delay_max_ms = 40;
		sim->netcfg.loss_ppm = 20000;
		sim->netcfg.dup_ppm = 20000;
		sim->netcfg.flip_ppm = 5000;
		sim->netcfg.long_delay_ppm = 3000;
		sim->netcfg.long_delay_max_ms = 3000;
	}
	sim->netcfg.clog_delay_min_ms = 300;
	sim->netcfg.clog_delay_max_ms = 2500;
	*max_skew = sim_rng_below(&sim->rng, 100) < 70 ? 200 : 3000;
	unsigned lossy = (unsigned)sim_rng_below(&sim->rng, sim->nnodes);
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct dev_fault_plan *p = &sim->node[i].disk;
		*p = (struct dev_fault_plan){0};
		if (f & SIM_F_DISK) {
			p->read_eio_ppm = 2000;
			p->read_flip_ppm = 2000;
			p->write_eio_ppm = 300;
			p->submit_eagain_ppm = 5000; /* a full ring: the store retries */
		}
		/* The adversarial scheduler (dev_mem.h) where the disk is under
		 * test: completions reordered and partial, requests held,
		 * transfers early; at a power cut every write in flight is
		 * persisted, torn or lost at random. */
		if (f & (SIM_F_CRASH | SIM_F_DISK | SIM_F_LOSSY)) {
			p->reorder = true;
			p->partial_ppm = 200000;
			p->hold_read_ppm = 50000;
			p->hold_write_ppm = 50000;
			p->early_io_ppm = 50000;
		}
		if ((f & SIM_F_LOSSY) && i == lossy) {
			p->write_lost_ppm = 1000;
			p->write_flip_ppm = 1000;
		}
		sim->node[i].skew_ms = (int64_t)sim_rng_range(&sim->rng, 0, 2 * (uint64_t)*max_skew) - *max_skew;
	}
}

static int setup(struct sim *sim)
{
	const struct simcluster_config *cfg = sim->cfg;
	sim_rng_seed(&sim->rng, cfg->seed);
	sim->nnodes = cfg->nodes ? cfg->nodes : 3 + (unsigned)sim_rng_below(&sim->rng, 3);
	if (sim->nnodes < 1 || sim->nnodes > SIMNET_NODES_MAX || sim->nnodes > RING_N_MAX + 1)
		return -EINVAL;
	choose_quorums(sim);
	static const uint32_t qs[] = {8, 16, 32, 64};
	uint32_t q = qs[sim_rng_below(&sim->rng, 4)];
	uint16_t ids[SIMNET_NODES_MAX];
	for (unsigned i = 0; i < sim->nnodes; i++)
		ids[i] = (uint16_t)(i + 1);
	int err = ring_init_even(&sim->ring, q, ids, sim->nnodes);
	if (err)
		return err;
	struct cnode_config *cc = &sim->ccfg;
	cc->cluster_id = sim_rng_next(&sim->rng) | 1;
	for (unsigned i = 0; i < DVV_CTX_KEY_BYTES; i++)
		cc->ctx_key[i] = (uint8_t)sim_rng_next(&sim->rng);
	cc->ring = &sim->ring;
	choose_limits(sim, cc);
	cc->test_broken_merge = cfg->mutation == SIM_MUT_MERGE;
	cc->test_broken_counter = cfg->mutation == SIM_MUT_COUNTER;
	cc->test_broken_flush = cfg->mutation == SIM_MUT_FLUSH;
	cc->test_broken_scan = cfg->mutation == SIM_MUT_SCAN;
	cc->test_broken_cover = cfg->mutation == SIM_MUT_COVER;
	cc->test_broken_widen = cfg->mutation == SIM_MUT_WIDEN;
	sim->nclients = 2 + (unsigned)sim_rng_below(&sim->rng, 4);
	sim->depth = 1 + (unsigned)sim_rng_below(&sim->rng, SIM_DEPTH_MAX);
	sim->nkeys = 4 + (unsigned)sim_rng_below(&sim->rng, 5);
	uint64_t chaos_ms = cfg->chaos_ms ? cfg->chaos_ms : sim_rng_range(&sim->rng, 8000, 20000);
	int64_t max_skew;
	choose_faults(sim, &max_skew);
	sim->max_skew = max_skew;
	/* A flush's until must pass every stamp taken before it, whatever the
	 * clocks: twice the skew bound (flush.c). */
	cc->flush_skew_ms = (uint32_t)(2 * max_skew + 100);
	sim->value_salt = sim_rng_next(&sim->rng);
	sim->scfg = (struct store_config){.zone_bytes = ZONE_BYTES, .format_if_empty = true,
					  .index_capacity_hint = 1024, .memo_entries = 1024};
	err = simnet_create(&sim->net, &sim->netcfg, &sim->rng);
	if (err)
		return err;
	struct simcheck_config ck = {.replay = cfg->replay, .checked_sets = seed_checked_sets(cfg->seed)};
	ck.ks[SIM_KS_SIB] = (struct simcheck_keyspace){.defined = true, .n = sim->n, .w = sim->w};
	ck.ks[SIM_KS_LWW] = (struct simcheck_keyspace){.defined = true, .n = sim->lww_n, .w = sim->lww_w, .lww = true};
	if (cfg->faults & SIM_F_LOSSY)
		ck.skip = SIMCHECK_LOST | SIMCHECK_STALE | SIMCHECK_RESURRECT | SIMCHECK_COUNTER | SIMCHECK_SCAN;
	if (cfg->faults & SIM_F_WIPE) {
		/* A wiped replica lost its copies: a read quorum (or a scan's
		 * replicas) may miss an acknowledged write or a DEL; one wipe a
		 * run leaves a second copy of every write (and increment)
		 * acknowledged at W >= 2. */
		ck.skip |= SIMCHECK_STALE | SIMCHECK_RESURRECT | SIMCHECK_SCAN;
		ck.lost_min_w = 2;
	}
	sim->check = simcheck_create(&ck);
	if (!sim->check)
		return -ENOMEM;
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		nd->sim = sim;
		nd->idx = i;
		nd->id = (uint16_t)(i + 1);
		err = dev_open_mem(&nd->dev, DEV_BYTES, NULL);
		if (err)
			return err;
		err = node_boot(sim, nd, true);
		if (err)
			return err;
	}
	sim->chaos = true;
	sim->chaos_end = chaos_ms;
	sim->next_net_change = sim_rng_range(&sim->rng, 200, 2000);
	sim->next_crash = sim_rng_range(&sim->rng, 500, 3000);
	sim->next_clock = CLOCK_STEP_MS;
	clients_init(sim);
	sim_log(sim, 1, "seed %llu: %u nodes, N=%u R=%u W=%u (lww %u/%u/%u), q=%u, %u clients x %u, %u keys, "
		"skew <= %lld ms, chaos %llu ms",
		(unsigned long long)cfg->seed, sim->nnodes, sim->n, sim->r, sim->w, sim->lww_n, sim->lww_r, sim->lww_w, q,
		sim->nclients, sim->depth, sim->nkeys, (long long)max_skew, (unsigned long long)chaos_ms);
	return 0;
}

static void teardown(struct sim *sim)
{
	for (unsigned i = 0; i < sim->nnodes; i++) {
		struct simnode *nd = &sim->node[i];
		if (sim_node_up(nd))
			node_down(sim, nd);
		if (nd->dev) {
			count_disk_faults(sim, nd);
			dev_close(nd->dev);
		}
		sim->res->read_repairs += nd->acc.read_repairs;
		sim->res->checked_writes += nd->acc.checked_writes;
		sim->res->checked_fallbacks += nd->acc.checked_fallbacks;
		sim->res->quorum_timeouts += nd->acc.quorum_timeouts;
		sim->res->siblings_refused += nd->acc.siblings_refused;
		sim->res->bad_msgs_counted += nd->acc.bad_msgs;
	}
	clients_free(sim);
	simcheck_destroy(sim->check);
	simnet_destroy(sim->net);
	if (sim->ring.owner)
		ring_free(&sim->ring);
}

int simcluster_run(const struct simcluster_config *cfg, struct simcluster_result *res)
{
	if (sodium_init() < 0) /* the context tags (dvv.h); idempotent */
		return -ENOSYS;
	struct sim *sim = calloc(1, sizeof(*sim));
	if (!sim)
		return -ENOMEM;
	memset(res, 0, sizeof(*res));
	sim->cfg = cfg;
	sim->res = res;
	sim->trace = XXH3_createState();
	DV_ASSERT(sim->trace);
	XXH3_64bits_reset(sim->trace);
	int err = setup(sim);
	if (err) {
		fprintf(cfg->out, "simcluster: seed %llu: setup failed: %s\n", (unsigned long long)cfg->seed,
			dv_strerror(err));
		goto out;
	}
	res->nodes = sim->nnodes;
	res->n = sim->n, res->r = sim->r, res->w = sim->w;
	err = sim_run_until(sim, sim->chaos_end, false);
	if (!err) {
		heal(sim);
		err = sim_converge(sim);
	}
	if (err == -ELOOP || err == -ETIME) {
		/* Reported; the checker still judges what happened. */
		err = 0;
	}
out:
	res->virtual_ms = sim->now;
	if (!err) {
		unsigned v = simcheck_run(sim->check, cfg->out);
		res->violations = v + sim->violations;
	}
	teardown(sim);
	if (!err && res->bad_msgs_counted != res->flips_caught) {
		fprintf(cfg->out, "simcluster: VIOLATION: the nodes counted %llu bad messages, %llu flipped ones arrived\n",
			(unsigned long long)res->bad_msgs_counted, (unsigned long long)res->flips_caught);
		if (cfg->replay)
			fprintf(cfg->out, "  replay: %s\n", cfg->replay);
		res->violations++;
	}
	res->trace_hash = XXH3_64bits_digest(sim->trace);
	XXH3_freeState(sim->trace);
	free(sim);
	return err;
}
