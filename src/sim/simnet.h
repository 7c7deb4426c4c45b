/* simnet.h - the simulator's packet network (TigerBeetle's packet
 * simulator): K nodes, messages delivered at seeded virtual times.
 *
 * Contract:
 * - simnet_send copies the message and schedules its delivery at now + a
 *   delay drawn from the run's PRNG (delay_min..delay_max, plus rare long
 *   delays, plus a clogged link's extra delay). Seeded faults per message:
 *   loss, duplication (each copy gets its own delay, so copies can arrive
 *   in either order), and a flipped byte in transit (one random byte XORed
 *   with a non-zero value; the copy is marked so the driver can prove the
 *   receiver's checksum caught it). Reordering comes from the independent
 *   delays: nothing is FIFO, as over reconnecting TCP links.
 * - Links: a per-direction matrix, link[from][to] UP, CUT (every message
 *   dropped, those already in flight too) or CLOGGED (delivered late).
 *   simnet_partition cuts between two sides, symmetric or one way.
 * - Nodes: a node that is down sends and receives nothing; a message in
 *   flight when its sender or receiver went down is dropped (the
 *   connection it travelled on died with the node), even if the node is up
 *   again by the delivery time. With hold_ms, a message sent to a node
 *   that is down waits up to hold_ms for the node's next run and is
 *   delivered to it (the real driver keeps frames for a peer without a
 *   session, 2 s, for the next session: replies to a run that died reach
 *   the next one); its sender going down drops it.
 * - simnet_take returns due messages in (delivery time, send order) order:
 *   equal times are ordered by the order the copies were scheduled, so a
 *   run is deterministic. Messages are bounded by packets_max in flight; a
 *   send beyond is dropped and counted (a full network drops, never grows).
 * - Every drop, duplicate, flip and delay kind is counted in simnet_stats.
 * Virtual time is the caller's (ms); simnet has no clock of its own.
 */
#ifndef DV_SIM_SIMNET_H
#define DV_SIM_SIMNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/simrng.h"

#define SIMNET_NODES_MAX 8u

enum simnet_link { SIMNET_UP = 0, SIMNET_CUT, SIMNET_CLOGGED };

struct simnet_config {
	unsigned nodes;                 /* 1..SIMNET_NODES_MAX, numbered 0..nodes-1 */
	uint32_t delay_min_ms, delay_max_ms;
	uint32_t loss_ppm, dup_ppm, flip_ppm;
	uint32_t long_delay_ppm;        /* a rare extra delay of up to long_delay_max_ms */
	uint32_t long_delay_max_ms;
	uint32_t clog_delay_min_ms, clog_delay_max_ms; /* extra delay on a CLOGGED link */
	uint32_t packets_max;           /* messages in flight; 0 = 65536 */
	uint32_t hold_ms;               /* a message sent to a node that is down waits this long for
					 * it to be up again (0: dropped at once) */
};

struct simnet_packet {
	uint16_t from, to;
	uint32_t len;
	uint64_t sent_ms, deliver_ms;
	uint64_t id;        /* scheduling order: breaks ties of deliver_ms */
	bool duplicate;     /* the second copy of a duplicated message */
	bool flipped;       /* a byte was changed in transit */
	bool held;          /* sent while its receiver was down: waits for its next run */
	uint32_t from_epoch, to_epoch; /* the nodes' up/down epochs at send */
	uint8_t data[];
};

struct simnet_stats {
	uint64_t sent;              /* simnet_send calls */
	uint64_t scheduled;         /* copies put in flight */
	uint64_t delivered;
	uint64_t dropped_loss, dropped_cut, dropped_down, dropped_full;
	uint64_t duplicated, flipped, long_delayed, clogged;
	uint32_t in_flight;
};

struct simnet;

/* 0, -EINVAL (bad config) or -ENOMEM. rng is the run's PRNG (kept). */
int simnet_create(struct simnet **out, const struct simnet_config *cfg, struct sim_rng *rng);
/* Frees every message still in flight. */
void simnet_destroy(struct simnet *net);
/* New fault rates and delays from now on (nodes and packets_max must not
 * change); messages in flight keep their schedule. */
void simnet_set_faults(struct simnet *net, const struct simnet_config *cfg);

/* Copies len bytes of data (len > 0). Returns the copies scheduled: 0
 * (dropped: lost, cut, a node down or the network full), 1 or 2. */
unsigned simnet_send(struct simnet *net, unsigned from, unsigned to, const void *data, size_t len,
		     uint64_t now_ms);
/* Delivery time of the earliest message in flight; UINT64_MAX when none. */
uint64_t simnet_next_ms(const struct simnet *net);
/* The next message due at or before now_ms (dropping those whose link is
 * cut or whose nodes went down since), or NULL. The caller frees it with
 * simnet_packet_free. */
struct simnet_packet *simnet_take(struct simnet *net, uint64_t now_ms);
void simnet_packet_free(struct simnet_packet *p);

void simnet_set_link(struct simnet *net, unsigned from, unsigned to, enum simnet_link state);
enum simnet_link simnet_get_link(const struct simnet *net, unsigned from, unsigned to);
/* Sets every link between side[i] true and side[j] false nodes to state:
 * both directions, or (one_way) only from the true side to the false side. */
void simnet_partition(struct simnet *net, const bool *side, bool one_way, enum simnet_link state);
/* Every link UP. */
void simnet_heal(struct simnet *net);

void simnet_node_down(struct simnet *net, unsigned node);
void simnet_node_up(struct simnet *net, unsigned node);
bool simnet_node_is_up(const struct simnet *net, unsigned node);

void simnet_get_stats(const struct simnet *net, struct simnet_stats *out);

#endif
