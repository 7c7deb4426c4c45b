/* simcluster_int.h - state shared by the cluster harness (simcluster.c:
 * nodes, event loop, faults; simconverge.c: the convergence phase) and its
 * workload (simclients.c: clients, values, the history). Not a public
 * interface. */
#ifndef DV_SIM_SIMCLUSTER_INT_H
#define DV_SIM_SIMCLUSTER_INT_H

#include <xxhash.h>

#include "cluster/node.h"
#include "io/dev_mem.h"
#include "sim/simcheck.h"
#include "sim/simcluster.h"
#include "sim/simnet.h"
#include "sim/simrng.h"
#include "storage/store.h"

#define SIM_EPOCH_MS 1700000000000ull /* node clocks read as unix ms from here */
#define SIM_KS_SIB 0u
#define SIM_KS_LWW 1u
#define SIM_KEYS_MAX 16u      /* value keys "k<i>" of a keyspace: numbers 0.. */
#define SIM_CKEYS 3u           /* counter keys "c<i>" of the siblings keyspace: numbers SIM_KEYS_MAX + i */
#define SIM_ALL_KEYS (SIM_KEYS_MAX + SIM_CKEYS)
#define SIM_CLIENTS_MAX 8u
#define SIM_DEPTH_MAX 3u
#define SIM_CTX_KEEP 3u        /* contexts a client remembers per key */
#define SIM_CLIENT_REPAIR 0xfffeu /* the convergence phase's repair reads */

struct simnode {
	struct sim *sim;
	unsigned idx;
	uint16_t id;             /* idx + 1 */
	struct dev *dev;         /* the medium: survives crashes */
	struct store *store;     /* NULL while down */
	struct cnode *cn;        /* NULL while down */
	uint64_t incarnation;
	uint64_t run;            /* its run incarnation at its last start (each start's is greater) */
	int64_t skew_ms;
	uint64_t clock_last;     /* node clocks never go backwards */
	struct dev_fault_plan disk; /* the disk faults of this run (zero when none) */
	bool cut_armed;          /* a power cut will hit after a few more writes */
	uint64_t crash_at;       /* armed: crash at this time even if no write came */
	uint64_t restart_at;     /* down, or a fatal store: restart at this time (0 = none) */
	bool fatal_seen;
	bool wipe_next;          /* the coming restart finds an empty data file */
	bool wiped;              /* its data file was just replaced: expect a new incarnation */
	uint64_t write_eio_seen; /* the device's write errors when last looked at */
	uint64_t cut_damage_seen; /* writes power cuts damaged, as of the last crash */
	struct cnode_stats acc;  /* stats of earlier incarnations */
	uint64_t faults_counted; /* dev_mem faults already added to the result */
};

/* A context a client got from a DYN_GET. */
struct simctx {
	bool valid;
	uint32_t read_id;        /* the checker's id of that read */
	uint32_t len;
	char text[DVV_CTX_TEXT_MAX];
};

enum simop_mode { SOP_ONE = 0, SOP_SCAN, SOP_FLUSH };

struct simop {
	struct creq rq;
	struct sim *sim;
	bool busy;
	uint8_t mode;            /* enum simop_mode */
	uint32_t first_id, nids; /* SCAN, FLUSH: the checker's ops, one per key, consecutive */
	uint32_t key_of[SIM_ALL_KEYS * 2]; /* SCAN: checker op i is key key_of[i] */
	bool seen[SIM_ALL_KEYS];   /* SCAN: keys returned so far */
	uint64_t cursor;
	bool page_due;           /* SCAN: the next page starts at next_ms */
	unsigned retries;
	uint16_t client;
	uint8_t keyspace;
	uint32_t key;
	uint32_t id;             /* checker op id (= the id of the value it writes) */
	bool bad_ctx;
	uint8_t key_buf[16];
	char text[32];           /* INCR, CGET: a counter's text */
	uint8_t *val_buf;
	char ctx_buf[DVV_CTX_TEXT_MAX];
	const char *ctx;         /* DYN_PUT/DYN_DEL: the context to send */
	uint32_t ctx_len;
	uint32_t ttl_ms;         /* SET/DYN_PUT: expires this long after submit (node clock); 0 never */
	uint64_t next_ms;        /* an idle client slot starts its next op then */
	struct simop *next_free; /* final reads: ops allocated for the phase */
};

struct simclient {
	struct simop slot[SIM_DEPTH_MAX];
	struct simctx ctx[2][SIM_KEYS_MAX][SIM_CTX_KEEP]; /* per keyspace, key: newest first */
};

struct sim {
	const struct simcluster_config *cfg;
	struct simcluster_result *res;
	struct sim_rng rng;
	XXH3_state_t *trace;
	uint64_t now;            /* global virtual ms */
	unsigned nnodes;
	struct simnode node[SIMNET_NODES_MAX];
	struct ring ring;
	struct cnode_config ccfg; /* shared part; node_id and incarnation per node */
	struct store_config scfg;
	uint64_t dev_bytes, zone_bytes;
	struct simnet *net;
	struct simnet_config netcfg;
	struct simcheck *check;
	uint8_t n, r, w;         /* siblings keyspace (n capped by the nodes) */
	uint8_t lww_n, lww_r, lww_w;
	/* workload */
	struct simclient client[SIM_CLIENTS_MAX];
	unsigned nclients, depth, nkeys;
	uint64_t value_salt;
	bool chaos;              /* faults and new client ops */
	uint64_t chaos_end;
	unsigned ops_in_flight;  /* client and final ops not yet done */
	struct simop *read_ops;  /* clients_read_one's ops */
	/* fault schedule */
	uint64_t next_net_change, next_crash, next_clock;
	int64_t max_skew;        /* node clocks stay within +-max_skew of global time */
	bool partitioned;
	bool wipe_planned;       /* SIM_F_WIPE: the run's one wipe is decided */
	unsigned violations;     /* the harness's own */
};

/* simcluster.c */
uint64_t sim_node_now(struct sim *sim, struct simnode *nd);
bool sim_node_up(const struct simnode *nd);
void sim_trace(struct sim *sim, const void *data, size_t len);
void sim_violation(struct sim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_log(struct sim *sim, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Polls the node's store until idle and sends what the cnode produced. */
void sim_settle(struct sim *sim, struct simnode *nd);
void sim_settle_all(struct sim *sim);
/* Runs events until `until` (chaos) or until quiet (heal, converge):
 * nothing in flight, every node up and idle. -ETIME when the cluster does
 * not settle by until, -ELOOP on a livelock (both reported). */
int sim_run_until(struct sim *sim, uint64_t until, bool until_quiet);

/* simconverge.c: after heal, read repair, replica comparison, final reads.
 * 0, or -ETIME/-ELOOP (reported as violations). */
int sim_converge(struct sim *sim);

/* simclients.c */
void clients_init(struct sim *sim);
void clients_free(struct sim *sim);
/* Earliest time an idle client slot wants to start an op (chaos only). */
uint64_t clients_next_ms(const struct sim *sim);
/* Starts every op due at sim->now. */
void clients_run_due(struct sim *sim);
/* Submits a DYN_GET of (ks, key) through node nd, at R = n (all_replicas)
 * or the keyspace's R, as client (SIM_CLIENT_REPAIR or
 * SIMCHECK_CLIENT_FINAL); it completes through the event loop. False when
 * the node refused it at once (recorded as failed). */
bool clients_read_one(struct sim *sim, uint16_t client, uint8_t ks, uint32_t key, struct simnode *nd,
		      bool all_replicas);
/* Frees the ops of clients_read_one once they are all done. */
void clients_read_all_free(struct sim *sim);
/* The value id that bytes name, or SIMCHECK_VALUE_UNKNOWN. */
uint32_t sim_value_id(const struct sim *sim, const uint8_t *v, uint32_t len);
/* The key bytes of key number k (a counter key from SIM_KEYS_MAX on). */
uint32_t sim_key_bytes(uint32_t k, uint8_t *out);
/* The key number of user key bytes, or UINT32_MAX. */
uint32_t sim_key_number(const uint8_t *p, uint32_t len, unsigned nkeys);
/* Submits a plain GET of counter key k (SC_CGET) like clients_read_one. */
bool clients_read_counter(struct sim *sim, uint16_t client, uint32_t k, struct simnode *nd, bool all_replicas);

#endif
