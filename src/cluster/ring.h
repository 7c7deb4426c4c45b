/* ring.h - partitions and preference lists (Dynamo's strategy 3).
 *
 * The 64-bit key-hash space (store_key_hash) is cut into Q equal partitions,
 * Q a power of two fixed when the cluster is created: a key's partition is
 * the top log2(Q) bits of its hash, so a partition is one contiguous hash
 * range the store can scan (store_scan). A versioned partition table assigns
 * each partition an owner node; the preference list of a partition is its
 * owner followed by the owners of the next partitions clockwise, skipping
 * nodes already listed, until N distinct nodes (N is capped by the number of
 * nodes in the table). When a whole turn gives fewer than N (q smaller than
 * the node count, or nodes that own nothing yet), the list goes on with the
 * table's other nodes in id order after the owner, wrapping: every node of
 * the table can hold replicas, so a list is always min(N, nodes) long.
 *
 * Contract:
 * - Pure data; no I/O. A table is created whole (ring_init_even) or decoded
 *   (ring_decode); later issues change owners at run time and bump version.
 * - ring_init_even assigns partition i to nodes[i % n] (nodes sorted), so
 *   with N <= n every preference list holds N consecutive nodes and each
 *   node owns Q/n partitions and replicates N*Q/n when n divides Q (else it
 *   owns floor or ceil of Q/n, and the lists near the wrap differ; the
 *   replicated counts still sum to min(N, n)*Q).
 * - ring_preflist walks at most one turn: N steps on an even table, O(q) on
 *   a table where a few nodes own long runs. The counts walk every partition
 *   (admin status, not the request path).
 * - init, copy and decode overwrite their output without freeing it; on
 *   error it holds nothing (ring_free is safe). version starts at 1.
 * - Node ids are 1..RING_NODE_ID_MAX; 0 means none.
 * - Encoding (little-endian): u32 magic "RING" | u16 format (1) | u16 nnodes
 *   | u32 q | u64 version | nnodes x u16 node id | q x u16 owner | u64 XXH3
 *   (dv_checksum64) of everything before. ring_decode checks every field
 *   (magic, format, 1..RING_NODES_MAX nodes sorted and unique without 0, q a
 *   power of two in range, exact length, checksum, owners among the nodes)
 *   and returns -EINVAL otherwise (-ENOMEM when the owner array cannot be
 *   allocated).
 * - ring_digest names a table (partitions, nodes, owners) in 64 bits.
 */
#ifndef DV_CLUSTER_RING_H
#define DV_CLUSTER_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_Q_DEFAULT 1024u
#define RING_Q_MIN 1u
#define RING_Q_MAX 65536u
#define RING_NODES_MAX 64u
#define RING_NODE_ID_MAX 65535u
#define RING_N_MAX 7u
#define RING_ENCODED_BYTES_MAX (20u + 2u * RING_NODES_MAX + 2u * RING_Q_MAX + 8u)

struct ring {
	uint32_t q;            /* partitions, a power of two */
	unsigned q_bits;       /* log2(q) */
	uint64_t version;      /* +1 on every change of owners */
	unsigned nnodes;
	uint16_t nodes[RING_NODES_MAX]; /* sorted, unique */
	uint16_t *owner;       /* q entries */
};

/* 0, -EINVAL (q not a power of two in range, no nodes, duplicate ids, id 0)
 * or -ENOMEM. */
int ring_init_even(struct ring *r, uint32_t q, const uint16_t *nodes, unsigned n);
void ring_free(struct ring *r);
int ring_copy(struct ring *dst, const struct ring *src);

static inline uint32_t ring_partition(const struct ring *r, uint64_t key_hash)
{
	return r->q_bits == 0 ? 0 : (uint32_t)(key_hash >> (64 - r->q_bits));
}
/* The inclusive key-hash range of partition p. */
void ring_partition_range(const struct ring *r, uint32_t p, uint64_t *lo, uint64_t *hi);
/* Up to n distinct nodes for partition p, owner first, into out (room for
 * min(n, nnodes)); returns how many (min(n, nnodes)). */
unsigned ring_preflist(const struct ring *r, uint32_t p, unsigned n, uint16_t *out);
/* True when node is in the preference list of p for n replicas. */
bool ring_is_replica(const struct ring *r, uint32_t p, unsigned n, uint16_t node);
/* Partitions node owns / replicates (is in the preference list of) for n. */
uint32_t ring_owned_count(const struct ring *r, uint16_t node);
uint32_t ring_replicated_count(const struct ring *r, unsigned n, uint16_t node);

/* The table's identity for the internode handshake (wire.h): XXH3-64 over
 * "RINGDIG1" | u32 q | u16 nnodes | nnodes x u16 node id | q x u16 owner
 * (little-endian), in 256-byte blocks, each block's hash the seed of the
 * next (seed 0 first). The version is left out: two nodes with the same
 * partitions and owners agree whatever their histories. Nodes whose
 * digests differ would place keys on different replicas: they never talk. */
uint64_t ring_digest(const struct ring *r);

size_t ring_encoded_bytes(const struct ring *r);
size_t ring_encode(const struct ring *r, uint8_t *out);
int ring_decode(struct ring *r, const uint8_t *buf, size_t len);

#endif
