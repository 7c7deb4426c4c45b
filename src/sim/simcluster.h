/* simcluster.h - the cluster harness of the simulator: K real cluster
 * nodes (cnode over the real store on the fault-injecting memory device) in
 * one process, on the packet simulator (simnet.h), driven by simulated
 * clients whose history the checker (simcheck.h) judges.
 *
 * Contract:
 * - simcluster_run runs one whole simulation named by cfg->seed: every
 *   choice (cluster shape, N/R/W, clocks, workload, faults, the devices'
 *   fault seeds) comes from one PRNG seeded with it, so the same seed and
 *   faults give the same run bit for bit. The trace hash (XXH3-64 over every
 *   delivered message, every client result and every fault event) proves
 *   it.
 * - Virtual time only: the global clock advances from event to event
 *   (message deliveries, the nodes' cnode_next_deadline, client operations,
 *   fault events); each node sees its own clock, the global one plus a
 *   seeded skew that drifts within bounds and never goes backwards. After
 *   every event the nodes' stores are polled until idle (the memory device
 *   completes I/O inside the poll), so I/O takes no virtual time.
 * - A run has three phases: chaos (clients and the faults of cfg->faults);
 *   heal (faults stop, links heal, down nodes restart, clients finish, the
 *   cluster settles); converge (every key read through every node at R=N,
 *   settle, then the stored versions of every replica compared with
 *   dvv_identical, then final reads through every node for the checker).
 * - Faults (SIM_F_*): network faults, partitions symmetric and one-way
 *   (cut or clogged links), crashes (a power cut on the node's medium
 *   after a few more writes: the write in flight is torn; the store is
 *   closed with its in-flight ops failing, the cnode destroyed so its open
 *   requests complete as indeterminate; later power on, store_open with
 *   recovery, cnode_identity_load, cnode_create), disk faults that keep
 *   acknowledged writes durable (read EIO and flips, write EIO: a store
 *   gone fatal is restarted), and on one node a disk that loses or
 *   corrupts acknowledged writes (SIM_F_LOSSY: the checker's rules that
 *   assume durable acknowledgements are switched off for it), and a node
 *   that comes back on an empty data file (SIM_F_WIPE: it must start as a
 *   new incarnation; stale reads and resurrections are then allowed).
 * - Violations (the checker's, and the harness's own: replicas that differ
 *   after convergence, a flipped message a node accepted, a request a node
 *   refused that it should have taken, a cluster that does not settle) are
 *   printed to cfg->out with cfg->replay and counted in the result.
 */
#ifndef DV_SIM_SIMCLUSTER_H
#define DV_SIM_SIMCLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_F_NET 1u       /* loss, duplication, wide delays (reordering), long delays, flips */
#define SIM_F_PARTITION 2u /* symmetric partitions */
#define SIM_F_ONEWAY 4u    /* one-way partitions and clogged links */
#define SIM_F_CRASH 8u     /* power cuts with torn writes, restarts */
#define SIM_F_DISK 16u     /* read EIO, read flips, write EIO (fatal store, restart) */
#define SIM_F_LOSSY 32u    /* one node's disk loses and corrupts acknowledged writes */
#define SIM_F_WIPE 64u     /* with SIM_F_CRASH: one crashed node comes back on an empty data file */
#define SIM_F_FLUSHY 128u  /* workload, not a fault: FLUSHDB/FLUSHALL ten times as often (3% of ops) */

/* Mutation checks: the checker must catch each (node.h, test_broken_*). */
enum sim_mutation {
	SIM_MUT_NONE = 0,
	SIM_MUT_MERGE,
	SIM_MUT_COUNTER,
	SIM_MUT_FLUSH,
	SIM_MUT_SCAN,
	SIM_MUT_COVER,
	SIM_MUT_WIDEN
};

struct simcluster_config {
	uint64_t seed;
	unsigned faults;      /* SIM_F_* */
	unsigned nodes;       /* 0: drawn from the seed (3..5) */
	uint32_t chaos_ms;    /* virtual length of the chaos phase; 0: drawn (8..20 s) */
	unsigned mutation;    /* SIM_MUT_*: one of cnode_config's test_broken_* (mutation checks) */
	int verbose;          /* 1: faults, client results, summary; 2: also messages */
	FILE *out;            /* violations and the verbose trace */
	const char *replay;   /* the command that replays this run */
};

struct simcluster_result {
	uint64_t trace_hash;
	unsigned violations;       /* checker's and harness's */
	unsigned nodes, n, r, w;   /* the siblings keyspace's N, R, W */
	uint64_t virtual_ms;
	uint64_t ops, ops_ok, ops_failed, ops_indet;
	uint64_t msgs_delivered, msgs_flipped, flips_caught, bad_msgs_counted;
	uint64_t crashes, torn_writes, restarts, store_fatals, partitions, wipes;
	uint64_t disk_faults;      /* injected on every device */
	uint64_t gc_zones_reset, read_repairs, quorum_timeouts, siblings_refused;
	uint64_t checked_writes, checked_fallbacks; /* plain SETs without a read; of them widened */
};

/* 0 when the run completed (see res->violations), or a negative error that
 * stopped it before the checker could judge it (also printed). */
int simcluster_run(const struct simcluster_config *cfg, struct simcluster_result *res);

#endif
