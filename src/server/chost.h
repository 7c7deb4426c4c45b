/* chost.h - the cluster host: runs this node's cnode (src/cluster/node.h)
 * on the real runtime, beside the engine bridge on worker 0.
 *
 * In cluster mode (node-id set) the engine routes every key eop here
 * instead of to the store: the chost maps it to a creq (GET -> CREQ_GET,
 * SET family -> CREQ_SET with NX/XX as its condition, DEL -> CREQ_DEL, the
 * read-modify-write commands -> CREQ_RMW with the command's own decide(),
 * DYN.* -> CREQ_DYN_*), submits it with worker 0's clock, and maps the
 * result back into the eop, which the engine returns to its connection.
 * Peer messages come from peer connections on worker 0's io_uring (peer.c:
 * one connection per peer pair, the lower id dials, the cluster secret
 * authenticates it, wire.h seals every frame) and go to cnode_on_message;
 * the cnode's frames go back to the peers after every engine turn.
 *
 * Contract:
 * - chost_open() runs at start, before any thread: it reads and checks the
 *   secret file (a regular file of at least 16 bytes, not readable by group
 *   or others), builds the ring from the members, loads or creates the
 *   node's identity in the store (a fresh random incarnation for an empty
 *   data file), creates the cnode and the internode listening socket.
 *   Errors are logged with their cause and returned.
 * - Every other call is made by worker 0's thread. chost_before() and
 *   chost_after() surround each engine_turn(); chost_wait_ns() says how
 *   long the loop may sleep (the cnode's next deadline, peer timers).
 * - Writes of one key through this node run one at a time, in arrival
 *   order (a second waits for the first's result): sequential SETs through
 *   one coordinator supersede each other instead of becoming siblings.
 * - Stop: chost_quiesced() is asked once clients are done; it lets the
 *   cnode finish (bounded by cluster-timeout-ms + 1 s), then closes every
 *   peer connection and says true once no SQE refers to one.
 *   chost_close() after the store is drained; chost_free() after the
 *   rings are gone.
 */
#ifndef DV_SERVER_CHOST_H
#define DV_SERVER_CHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "resp/resp.h"

struct chost;
struct server;
struct worker;
struct eop;
struct peer_ev;

int chost_open(struct chost **out, struct server *srv);
void chost_attach(struct chost *ch, struct worker *w0);
/* engine_route_fn (engine.h): true when the chost took op. */
bool chost_route(void *arg, struct eop *op);
/* Before engine_turn: time (cnode_tick, peer timers) and the requests
 * that can be submitted now. True when anything moved. */
bool chost_before(struct chost *ch);
/* After engine_turn: the cnode's frames to their peers. */
bool chost_after(struct chost *ch);
/* Nanoseconds the loop may sleep before chost_before has work: 0 now,
 * -1 no limit. */
int64_t chost_wait_ns(struct chost *ch);
void chost_on_event(struct chost *ch, struct peer_ev *ev, int res, unsigned cqe_flags);
bool chost_quiesced(struct chost *ch, uint64_t now_ms);
void chost_close(struct chost *ch);
void chost_free(struct chost *ch);

/* Observability, worker 0. */
void chost_status_json(struct chost *ch, struct resp_buf *b);
void chost_metrics(struct chost *ch, struct resp_buf *b);
/* Store records of the node's own metadata (its identity, keyspace
 * CNODE_KEYSPACE_META), which DBSIZE does not count as keys. */
#define CHOST_META_RECORDS 1u

#endif
