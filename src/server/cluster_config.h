/* cluster_config.h - the cluster directives of `dynvme serve`.
 *
 * Cluster mode is on when node-id is set (1..65535). Directives (config file
 * lines or --flags, the same names):
 *   node-id N                      this node's id
 *   cluster-id HEX16               16 hex digits, the same on every member
 *   cluster-secret-file PATH       the shared secret (>= 16 bytes, mode 0600 or
 *                                  stricter: checked at start, chost.c)
 *   internode-bind ADDR            numeric address peers connect to (127.0.0.1)
 *   internode-port P               internode listening port
 *   peer ID HOST:PORT [CLIENT_HOST:PORT]   every other member (repeatable); the
 *                                  client address is shown by status only
 *   partitions Q                   a power of two 1..65536 (1024)
 *   keyspace ID NAME [n=3] [r=2] [w=2] [policy=siblings|lww] [siblings-max=16]
 *                                  (repeatable, ID 0..15); with none: 0 "default"
 *                                  siblings and 1 "lww", both N=3 R=2 W=2
 *   cluster-timeout-ms MS          a request's quorum deadline (5000)
 *
 * Contract: cluster_config_set() returns -ENOENT for a name that is not a
 * cluster directive (config.c then reports it unknown), 0 or -EINVAL with a
 * message naming the directive. cluster_config_validate() checks the
 * relations once every source is applied. N, R and W of a keyspace are
 * capped by the number of nodes where they are used (cluster_keyspace_eff).
 * Everything is plain data, read-only once the server starts.
 */
#ifndef DV_SERVER_CLUSTER_CONFIG_H
#define DV_SERVER_CLUSTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_PEERS_MAX 63u      /* RING_NODES_MAX - 1 (asserted in chost.c) */
#define CLUSTER_KEYSPACES_MAX 16u  /* CNODE_KEYSPACES_MAX (asserted in chost.c) */
#define CLUSTER_NAME_BYTES 32u     /* CNODE_NAME_BYTES */
#define CLUSTER_HOST_BYTES 64u
#define CLUSTER_PATH_BYTES 256u
#define CLUSTER_N_MAX 7u           /* RING_N_MAX */
#define CLUSTER_SIBLINGS_MAX 64u   /* DVV_VALUES_MAX */
#define CLUSTER_TIMEOUT_MS_DEFAULT 5000u
#define CLUSTER_PARTITIONS_DEFAULT 1024u

enum cluster_policy { CLUSTER_SIBLINGS = 1, CLUSTER_LWW = 2 }; /* = DVV_SIBLINGS, DVV_LWW */

struct cluster_peer {
	uint16_t id;
	char host[CLUSTER_HOST_BYTES];   /* numeric address */
	uint16_t port;
	char client[CLUSTER_HOST_BYTES + 8]; /* "host:port", or "" */
};

struct cluster_keyspace {
	bool defined;
	char name[CLUSTER_NAME_BYTES];
	uint8_t n, r, w;
	uint8_t policy;          /* enum cluster_policy */
	uint16_t siblings_max;
};

struct cluster_config {
	uint16_t node_id;        /* 0: single-node mode */
	uint64_t cluster_id;
	bool cluster_id_set;
	char secret_file[CLUSTER_PATH_BYTES];
	char internode_bind[CLUSTER_HOST_BYTES];
	uint16_t internode_port;
	unsigned npeers;
	struct cluster_peer peers[CLUSTER_PEERS_MAX];
	uint32_t partitions;
	struct cluster_keyspace ks[CLUSTER_KEYSPACES_MAX];
	bool ks_explicit;        /* a keyspace directive was given: no defaults */
	uint32_t timeout_ms;
	bool checked_sets;       /* cluster-checked-sets: plain SETs through a replica skip their read */
	bool any_set;            /* some cluster directive was given (needs node-id) */
};

void cluster_config_defaults(struct cluster_config *c);
int cluster_config_set(struct cluster_config *c, const char *name, const char *value, char *err, size_t err_len);
/* client_port, http_port: the node's own (internode-port must differ). */
int cluster_config_validate(const struct cluster_config *c, uint16_t client_port, uint16_t http_port, char *err,
			    size_t err_len);
static inline bool cluster_enabled(const struct cluster_config *c) { return c->node_id != 0; }
/* Keyspace i as configured (the defaults when no keyspace directive was
 * given); NULL when i is not defined. */
const struct cluster_keyspace *cluster_keyspace(const struct cluster_config *c, unsigned i);
/* Nodes in the cluster: this one and its peers. */
static inline unsigned cluster_nodes(const struct cluster_config *c) { return c->npeers + 1; }
/* Keyspace i with N, R and W capped by the number of nodes. */
bool cluster_keyspace_eff(const struct cluster_config *c, unsigned i, struct cluster_keyspace *out);
/* Parse "HOST:PORT" or "[V6]:PORT" (numeric host). 0 or -EINVAL. */
int cluster_parse_hostport(const char *s, char *host, size_t host_len, uint16_t *port);

#endif
