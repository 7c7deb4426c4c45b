/* node.h - one cluster node's logic: coordinator and replica, sans-IO.
 *
 * A cnode takes client requests (cnode_submit), peer messages
 * (cnode_on_message) and time (every call carries now_ms; cnode_tick for
 * timers) as inputs, and gives back frames to send (cnode_take_frames) and
 * client completions (creq.done). It has no socket, clock or randomness of
 * its own. It submits operations to its store directly (the store is
 * completion-based: the driver polls it, and the store's callbacks run the
 * cnode). Two drivers run it unchanged: src/server (io_uring sockets, the
 * real clock) and src/sim (the deterministic simulator). All calls on one
 * thread: the one that owns the store.
 *
 * Keys: the store key is one keyspace byte then the user key (so "" is a
 * valid user key); keyspace CNODE_KEYSPACE_META is the node's own metadata.
 * A key's partition is ring_partition(store_key_hash(store key)).
 *
 * Versions: each stored key holds a dvv record (dvv.h) in the engine
 * record's meta and value; the store record itself never expires (expiry is
 * per value inside the dvv, so an expired value keeps its causal history
 * and an older version cannot come back through a merge).
 *
 * Actors: the dots a node issues carry its actor, node id | run
 * incarnation (dvv_actor), and one actor never issues a dot twice for one
 * key. The node issues its next dot of a key from its own stored copy, so
 * that copy must hold its latest dot: a disk that loses or damages an
 * acknowledged write (a lost tail at a power cut, a lying flush, a record
 * that no longer verifies) rolls the copy back, and so does a crash or a
 * failed write after the dot left (a write's version goes to the other
 * replicas beside its local write, not after it: Request paths); the same
 * actor would then reissue a dot it already gave another value (Riak's
 * KV679: replicas holding one value or the other for that dot never
 * converge). No read can tell it its latest dot for sure (the replicas
 * holding it may be down or outside the quorum, a write that reached one
 * replica was not acknowledged), so it never relies on that: every start
 * of the node is a new run incarnation (cnode_identity_load), and so is
 * every damaged copy it replaces during a run (the cnode moves its actor
 * on: cnode_next_run), every local write that fails after its version left
 * moves the keyspace's actor on, and every flush of a keyspace moves its
 * actor in that keyspace on (I9, node_int.h: actors are per keyspace, so
 * the others' clocks do not age). Within a run the node mints a key's next
 * dot only once its previous write of the key ended at its store (merge
 * loops of a key run one at a time: node_int.h, struct cas), from a copy
 * holding that dot or after the actor moved on. A
 * new actor's dots start at 1 and cannot meet an old one's; what the old
 * actor issued stays covered, or comes back as a sibling. Clocks stay
 * bounded: a write (at its coordinator and at every replica that merges
 * it) prunes the value-less entries of retired actors (a node's older
 * incarnations, or nodes that are no replica of the key) beyond n +
 * CNODE_PRUNE_EXTRA entries, an hour after the retirement (the stale
 * copies a pruned clock would resurrect values of are likeliest right
 * after a restart), or at once beyond CNODE_PRUNE_HARD. Counters
 * (counter.h) keep one actor per data file (node id | incarnation): their
 * entries cannot be pruned, and an increment a lossy disk loses at its
 * actor is lost, never counted twice. A restart does not renew that actor,
 * so an INCR's state leaves only once durable at its coordinator (a state
 * sent first and lost there by a crash would be overtaken by the next
 * increment's entry, merged as a max: one of the two increments lost).
 *
 * Request paths (R, W default to the keyspace's; N capped by the nodes):
 * - Reads (GET, DYN_GET, the read of SET/DEL in a siblings keyspace, RMW):
 *   any node coordinates. It asks R replicas: its own copy (if a replica)
 *   and REPL_GET to peers with a session, not lately silent; one more
 *   whenever one asked refuses, fails, answers STALE, loses its session,
 *   or has not answered when a speculative timer (from the peers' observed
 *   round trips, 2 to 250 ms, at most a quarter of the time left) passes,
 *   so a dead or stopped replica costs a read a little latency, never its
 *   timeout. A read at R = N and one GET/DYN_GET in 8 (a hash of its
 *   request id) ask all N. It answers once R replied (merging with
 *   dvv_sync), then waits for the others it asked up to repair_wait_ms and
 *   sends the merged version (REPL_PUT, MSGF_REPAIR) to every replica
 *   whose copy differed: read repair, after the answer; when the answers
 *   differed, the replicas not asked are asked then and repaired too. A
 *   read short of R still repairs what it can from the replicas that
 *   answered. Any R replicas meet any W with R + W > N: the guarantees
 *   below hold as when all N were asked.
 * - Writes (DYN_PUT, DYN_DEL, and SET/DEL after their read): coordinated by
 *   a replica of the key (the node itself if it is in the preference list,
 *   else it forwards the write with FWD_PUT to the first replica; a replica
 *   whose own copy is unreadable forwards it to another one: it issues no
 *   dot from an unknown clock). The
 *   coordinator applies dvv_update with its own actor to its stored copy
 *   (store GET, then PUT with STORE_IF_SEQ) and, as soon as its store took
 *   that PUT, sends the new version to the other replicas (REPL_PUT), which
 *   merge it into theirs (dvv_sync, same CAS loop): its durable write and
 *   theirs run at once (one group commit of latency). A PUT refused for a
 *   retry (-ESTALE: another write of the key came first) merges the SAME
 *   version into the new copy, never a new dot; any other failure of the
 *   local write after the send moves the actor on (see Actors), and the
 *   others may still make W. The write is acknowledged when W replicas
 *   confirmed durability, the coordinator counting once its own write is
 *   durable. A counter's state (INCR) is sent only once durable at the
 *   coordinator (see Actors).
 * - Plain SET/DEL in a siblings keyspace read the key's context at R first
 *   and write with it: a SET supersedes every version acknowledged before
 *   it started (R + W > N), two SETs whose reads overlapped become
 *   siblings. A plain SET (no NX/XX) through a replica with a session to
 *   every other replica skips the read (a checked write, coord.c): its
 *   context is its own copy's clock, and the replicas merge it only where
 *   that covers their copy; max(R, W) of them must (our own included),
 *   else it is redone as a read-then-write whose new dot supersedes both.
 *   Its found is then whether the coordinator's own copy had a live value. In an LWW keyspace a plain SET writes at once with an HLC
 *   timestamp (SET NX/XX and DEL read first: they answer found).
 * - Results: a write that got W confirmations completes with 0; one that
 *   did not by its deadline, or whose replicas refused after one may have
 *   applied it, completes with -ETIMEDOUT and err saying it may or may not
 *   have been applied (indeterminate), never as "failed"; so does one short
 *   of W whose coordinator's own store took it and then failed (a device
 *   error: it may be on the medium; the store's error code, the same err).
 *   A write refused before anything was sent (bad context -EINVAL/-EXDEV,
 *   sibling limit -E2BIG, NX/XX condition -EEXIST/-DV_ENOTFOUND, the
 *   coordinator's store refusing it at once: its error) is a clean failure.
 * - Duplicated, late and reordered messages are harmless: merges are
 *   idempotent, replies are counted once per replica, replies to finished
 *   requests are dropped.
 *
 * - INCR (CREQ_INCR) on a siblings keyspace is a convergent counter
 *   (counter.h): the coordinator reads at R, merges every visible counter
 *   sibling (and starts from a plain integer pick), adds delta to its own
 *   actor's entry and writes the state as a DVV_VAL_COUNTER value with the
 *   read's context. Concurrent INCRs through different coordinators are
 *   all counted once their states meet; plain GET of a counter answers its
 *   merged value as decimal text. On an LWW keyspace INCR reads the pick,
 *   adds, and writes the decimal text (concurrent INCRs may be lost).
 * - FLUSH (CREQ_FLUSH, flush.c): every node makes a flush point of the
 *   keyspaces durable: values it stored before it (stamped up to the
 *   flush's until: the coordinator's stamp + its timeout + flush_skew_ms)
 *   are dead in every read and merge, and the node's store drops the
 *   records left with no value (store_set_reclaim: the space comes back,
 *   nothing is relocated); the node's actor in the keyspace changes with
 *   each flush of it; messages carry each keyspace's flush
 *   epoch and are refused across one. A request that meets another epoch
 *   (a replica answers STALE: a flush ran meanwhile) and wrote nothing yet
 *   is redone in the newer epoch, from its read, with fresh dots, once
 *   this node has that flush, at most CNODE_FLUSH_ROUNDS_MAX times; one
 *   that wrote in the old epoch short of W is not redone (its value may
 *   have been read there): 0, ordered before the flush, when every replica
 *   acknowledged it or has the flush and its context is of the old epoch
 *   (its own read, or none), else CNODE_EFLUSHED (what it wrote dies with
 *   the flush on every node: I8); a replica behind this node's epoch
 *   is asked again until it learns it. A request still split across
 *   epochs at its deadline fails: CNODE_EFLUSHED (nothing of it live) or
 *   CNODE_EFLUSHED_MAYBE (a write that may or may not have been applied).
 *   A starting node serves a keyspace
 *   only once it has heard the flush state of a majority, itself
 *   included (it asks every peer until then, however long: a node cut off
 *   from the majority serves nothing; with one or two nodes it does not
 *   wait); the driver tells the cnode which peers have a session
 *   (cnode_peer_up/down) so it asks each new one at once. Done (0)
 *   when every node has the flush durably, or when every node that did not
 *   answer has no session and more than half did (a node without a session
 *   is taken to be down: one that is up but cut off answers from its own
 *   copies, at an R its side can meet, what it held until it next talks to
 *   a node that has the flush); else -ETIMEDOUT (some nodes have it:
 *   indeterminate).
 * - SCAN (CREQ_SCAN, scan.c): a cursor is a key-hash position; one call
 *   walks partitions in order from it, each from N - W + 1 of its replicas
 *   (so it meets every write acknowledged at W), and returns keys with a
 *   visible value and the next cursor (0: done). A key present for the
 *   whole scan is returned at least once, whatever replicas fail meanwhile
 *   (another one goes on from the same position). A replica that left a
 *   page unanswered is asked last for 2 timeouts (a stopped node keeps its
 *   session: a walk does not wait for it in every call).
 * - COUNT (CREQ_COUNT, DBSIZE): an estimate: every node's count of the
 *   keys it holds a visible value of, summed and divided by N (and scaled
 *   up for nodes that did not answer).
 *
 * Bounds: requests_max coordinated requests and replica_ops_max replica
 * operations in flight; beyond, cnode_submit says -EAGAIN and a REPL_* is
 * answered MSG_ST_BUSY. Messages to one peer without a reply are bounded by
 * peer_inflight_max; requests beyond wait in order.
 */
#ifndef DV_CLUSTER_NODE_H
#define DV_CLUSTER_NODE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/dvv.h"
#include "cluster/ring.h"
#include "storage/store.h"

#define CNODE_KEYSPACES_MAX 16u
#define CNODE_KEYSPACE_META 0xffu
#define CNODE_KEY_BYTES_MAX 1023u /* user key: the store key has one more byte */
#define CNODE_SIBLINGS_MAX_DEFAULT 16u
#define CNODE_TIMEOUT_MS_DEFAULT 5000u
#define CNODE_FLUSH_SKEW_MS 10000u
#define CNODE_CONTENDED_MS_DEFAULT 10000u
#define CNODE_NAME_BYTES 32u
/* A request a flush overlapped that was not redone: nothing it did is
 * live (not applied, or written in the old epoch and killed by the flush:
 * I8), or, _MAYBE, a write that may or may not have been applied. */
#define CNODE_EFLUSHED (-EIDRM)
#define CNODE_EFLUSHED_MAYBE (-ENOTRECOVERABLE)
/* A checked plain SET that lost a race with writes of the key through
 * other nodes before it could be confirmed (coord.c, "Checked writes"):
 * its value was stored on some replicas, then another value took its
 * place; it may or may not have been applied. The node reads first for
 * that key's next plain SETs for a while. */
#define CNODE_ERACED (-EDEADLK)
/* A DYN.PUT or DYN.DEL whose context was read after a flush this node has
 * not applied, and which it could not learn from its peers: every peer it
 * asked answered without that flush, or CNODE_BEHIND_HOLD_MS passed
 * (node_int.h I10). Nothing was written. */
#define CNODE_EBEHIND (-ENOMSG)
/* How long such a write waits to learn the flush, at most (less when every
 * peer it asked answered without it; never past its deadline): it holds
 * its key's later writes on the node behind it meanwhile. */
#define CNODE_BEHIND_HOLD_MS 1000u

struct cnode_keyspace {
	bool defined;
	char name[CNODE_NAME_BYTES];
	uint8_t n, r, w;       /* 1 <= r, w <= n <= RING_N_MAX */
	uint8_t policy;        /* DVV_SIBLINGS or DVV_LWW */
	uint16_t siblings_max; /* a write leaving more visible values is refused */
};

struct cnode_config {
	uint16_t node_id;
	uint64_t incarnation;  /* from cnode_identity_load: the data file's (counters' actor) */
	uint64_t run;          /* from cnode_identity_load: this start's (the dots' actor, node.h
				* "Actors"); renewed by the cnode itself when it replaces a damaged copy */
	uint32_t boot;         /* from cnode_identity_load: request ids of different runs of
				* the node never meet (0: derived from now_ms instead) */
	uint64_t cluster_id;
	uint8_t ctx_key[DVV_CTX_KEY_BYTES];
	const struct ring *ring; /* copied */
	struct cnode_keyspace ks[CNODE_KEYSPACES_MAX];
	uint32_t timeout_ms;        /* 0 = CNODE_TIMEOUT_MS_DEFAULT */
	uint32_t repair_wait_ms;    /* 0 = timeout_ms */
	uint32_t requests_max;      /* 0 = 4096 */
	uint32_t replica_ops_max;   /* 0 = 4096 */
	uint32_t peer_inflight_max; /* 0 = 4096 */
	uint64_t buffer_bytes_max;  /* bytes of versions held by open requests and replica
				     * ops; beyond, new ones wait or are refused (0 = 256 MiB) */
	uint32_t flush_skew_ms;     /* clock skew a flush allows for (0 = CNODE_FLUSH_SKEW_MS) */
	uint64_t read_cache_bytes;  /* RAM for the replica's read cache (rcache.h); 0 = off */
	/* Plain SETs through a replica are checked writes (coord.c: no read
	 * first; fewer messages and CPU, but one that loses a race with
	 * writes through other nodes may answer CNODE_ERACED). Off: every
	 * plain SET reads at R first (never fails for a race). */
	bool checked_sets;
	/* How long a key whose checked write met an UNCOVERED answer has its
	 * plain SETs read first (coord.c, coord_can_check): 0 =
	 * CNODE_CONTENDED_MS_DEFAULT, UINT32_MAX = never (the simulator's
	 * seeds that keep every SET checked). */
	uint32_t contended_ms;
	/* Test only (the simulator's mutation checks): each breaks one rule
	 * the checker must catch. Never set in production.
	 * merge: replicas store the incoming version instead of merging it;
	 * counter: a read's counter is its greatest sibling's alone, not the
	 *   merge of every visible one (concurrent increments lost);
	 * flush: messages of another flush epoch are admitted (I7 off), so
	 *   versions from before a flush cross it;
	 * scan: a replica's full page leaves out its last key while its next
	 *   cursor passes it;
	 * cover: replicas merge a checked write's version without checking
	 *   that it covers their copy (MSGF_IF_COVERED ignored);
	 * widen: a checked write widened over values above its own (dvv_widen's
	 *   order rule off: two writes widened at once supersede each other). */
	bool test_broken_merge, test_broken_counter, test_broken_flush, test_broken_scan;
	bool test_broken_cover, test_broken_widen;
};

enum creq_kind {
	CREQ_GET = 1, /* plain GET: dvv_pick of the merged version */
	CREQ_SET,     /* plain SET (cond: NX/XX decided on the read) */
	CREQ_DEL,     /* plain DEL: found says whether a live value was deleted */
	CREQ_DYN_GET, /* every visible sibling and the context */
	CREQ_DYN_PUT, /* write with the client's context */
	CREQ_DYN_DEL, /* tombstone with the client's context */
	CREQ_RMW,     /* read at R, decide(), write with the read's context */
	CREQ_INCR,    /* add delta: a convergent counter (siblings), a read-modify-write (lww) */
	CREQ_FLUSH,   /* FLUSHDB/FLUSHALL of the keyspaces in ks_mask (key ignored) */
	CREQ_SCAN,    /* keys of keyspace from cursor (key ignored) */
	CREQ_COUNT,   /* DBSIZE estimate of keyspace (key ignored) */
};

/* A key SCAN returned: a view into the cnode's buffer, valid during done(). */
struct cnode_key {
	const uint8_t *p;
	uint32_t len;
};
#define CNODE_SCAN_COUNT_MAX 512u /* keys one SCAN call returns at most (more is a hint) */
enum creq_cond { CREQ_ALWAYS = 0, CREQ_IF_ABSENT, CREQ_IF_PRESENT };
enum creq_action { CREQ_FINISH = 0, CREQ_WRITE, CREQ_DELETE };

struct creq;
typedef enum creq_action (*creq_decide_fn)(struct creq *rq, uint64_t now_ms);

struct creq {
	/* Request: set by the caller; key, value and ctx must stay valid
	 * until done(). */
	enum creq_kind kind;
	uint8_t keyspace;
	enum creq_cond cond;
	uint8_t r, w;          /* 0 = the keyspace's; more than n is -EINVAL */
	uint32_t timeout_ms;   /* 0 = the node's */
	const void *key;
	uint32_t key_len;      /* 0..CNODE_KEY_BYTES_MAX */
	const void *value;     /* SET, DYN_PUT; RMW: set by decide() */
	uint32_t val_len;
	uint64_t expire_ms;    /* absolute unix ms, 0 = never */
	const char *ctx;       /* DYN_PUT, DYN_DEL: the context text ("" = none) */
	uint32_t ctx_len;
	creq_decide_fn decide; /* RMW: runs once, on the read's result */
	int64_t delta;         /* INCR */
	uint16_t ks_mask;      /* FLUSH: bit i = keyspace i (defined ones only) */
	uint64_t cursor;       /* SCAN: a key-hash position (0: the start) */
	uint32_t count;        /* SCAN: keys wanted (a hint: 1..CNODE_SCAN_COUNT_MAX) */
	void (*done)(struct creq *rq);
	void *user;
	/* Result: valid during done() only (views into the cnode's buffers). */
	int result;            /* 0 or negative (see the top comment) */
	const char *err;       /* a message for result != 0, or NULL */
	bool found;            /* GET/SET/DEL/RMW: a live value at the read */
	const uint8_t *val;    /* GET, RMW: the pick */
	uint32_t val_len_out;
	uint64_t val_expire_ms;
	int64_t counter;       /* INCR: the new value */
	uint64_t next_cursor;  /* SCAN: where the next call starts (0: the scan is done) */
	uint32_t nkeys;        /* SCAN */
	const struct cnode_key *keys;
	uint64_t dbsize;       /* COUNT: the estimate */
	uint32_t nsiblings;    /* DYN_GET: visible values */
	const uint8_t *sib[DVV_VALUES_MAX];
	uint32_t sib_len[DVV_VALUES_MAX];
	uint64_t sib_expire_ms[DVV_VALUES_MAX];
	char ctx_out[DVV_CTX_TEXT_MAX]; /* DYN_GET (and RMW's read): NUL-terminated */
	uint32_t ctx_out_len;
	void *priv;            /* the cnode's request state */
};

/* A message to send. data[0..len) is the message, with MSG_HEADROOM bytes
 * before data and MSG_TAILROOM after it in the same allocation
 * (wire_seal_msgs seals it there, in a frame with others). The driver owns
 * it after cnode_take_frames and frees it with cnode_frame_free (it may
 * keep it queued until then). */
struct cnode_frame {
	struct cnode_frame *next;
	uint16_t to;
	uint8_t wire_lead, wire_trail; /* the driver's own (peer.c: its piece of a sealed frame around data) */
	uint32_t len;
	uint8_t *data;
};

struct cnode_stats {
	uint64_t coord_reads, coord_writes, forwarded;
	uint64_t replica_gets, replica_puts, replica_noops; /* merges that changed nothing */
	uint64_t quorum_timeouts, read_repairs, busy_refusals, siblings_refused;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out, bad_msgs;
	uint64_t corrupt_replaced; /* unreadable local copies replaced by a merge's result */
	uint64_t actor_renewals;   /* dot actors retired in this run (a damaged copy replaced) */
	uint64_t flushes_applied, stale_refusals, scans_served;
	uint64_t flush_redos; /* requests redone in a newer flush epoch (a flush while they ran) */
	uint64_t ctx_flush_holds; /* DYN.PUT/DEL held: their context was read after a flush this node lacked (I10) */
	/* Reads (coord.c): those that asked every replica at once (R = N, one
	 * in CNODE_FULL_READ_EVERY), replicas asked after a read's first round
	 * (a refusal, STALE, a lost session, the speculative timer), and
	 * speculative timers that fired. */
	uint64_t full_reads, late_read_asks, spec_timer_fires;
	/* Checked writes (coord.c): plain SETs sent without a read, those
	 * widened after a replica answered UNCOVERED (or redone with a read
	 * over an unreadable own copy), and (replica side) the MSGF_IF_COVERED
	 * puts this node answered UNCOVERED. */
	uint64_t checked_writes, checked_fallbacks, uncovered_refusals;
	/* The read cache (rcache.h): GETs of this node's store answered from
	 * it, and those that went to the store; its bytes and entries. */
	uint64_t cache_hits, cache_misses, cache_bytes, cache_entries;
	uint32_t requests_in_flight, replica_ops_in_flight;
};

struct cnode;

/* s is opened and recovered; its clock should be the driver's (the same
 * now_ms the cnode gets). 0, -EINVAL (bad config: message on stderr) or
 * -ENOMEM. The cnode installs its reclaim predicate on s (store.h:
 * store_set_reclaim) and removes it in cnode_destroy: s outlives it. */
int cnode_create(struct cnode **out, const struct cnode_config *cfg, struct store *s, uint64_t now_ms);
/* Completes every request still open with -ECANCELED (writes: indeterminate
 * as far as the client knows); the store must be drained by the caller. */
void cnode_destroy(struct cnode *n);

/* 0 (done() will run later, never inside this call), -EAGAIN (too many in
 * flight: try again after some complete), -EINVAL (bad keyspace, key, r/w). */
int cnode_submit(struct cnode *n, struct creq *rq, uint64_t now_ms);
/* A message from peer `from` (the driver knows who is on the connection).
 * Malformed ones are counted and dropped. */
void cnode_on_message(struct cnode *n, uint16_t from, const uint8_t *buf, size_t len, uint64_t now_ms);
/* A hint for a driver about to hand a batch of messages to
 * cnode_on_message one by one: loads into the CPU cache what handling buf
 * (a REPL_PUT or REPL_GET) looks up first (its key's read-cache bucket,
 * merge-loop bucket and store index slot), so the batch's cache misses
 * overlap. buf is not checked; reads stay inside len. Changes nothing. */
void cnode_prefetch_message(const struct cnode *n, const uint8_t *buf, size_t len);
/* The driver has a session with peer node `peer` now (up), or lost it
 * (down). A peer that comes up is asked for its flush state, and its
 * FWD_PUT duplicate window starts afresh (a new session may be a new run of
 * the peer, whose request ids start low again after a wipe). */
void cnode_peer_up(struct cnode *n, uint16_t peer, uint64_t now_ms);
void cnode_peer_down(struct cnode *n, uint16_t peer, uint64_t now_ms);
/* The keyspaces serve requests (the start-up flush sync is over). */
bool cnode_ready(const struct cnode *n);
/* Checks (the simulator's): the read cache's copy of store key skey
 * (rcache.h) into *out, valid until the cnode next runs; false if none. */
bool cnode_cached_record(const struct cnode *n, const uint8_t *skey, uint32_t len, struct store_record_out *out);
/* Drop from d, the stored version of a key of keyspace ks read from a
 * record of that seq, the values a flush made dead (flush.c): what every
 * read of the cnode sees (tests and the simulator compare replicas so). */
void cnode_filter_stored(const struct cnode *n, uint8_t ks, uint64_t seq, struct dvv *d);
/* Time passes: deadlines, read repairs due. */
void cnode_tick(struct cnode *n, uint64_t now_ms);
/* Earliest time cnode_tick has something to do; UINT64_MAX when none. */
uint64_t cnode_next_deadline(const struct cnode *n);
/* Frames produced since the last call, in order (NULL when none). */
struct cnode_frame *cnode_take_frames(struct cnode *n);
void cnode_frame_free(struct cnode *n, struct cnode_frame *f);
/* Nothing in flight: no request, replica op or store op of the cnode. */
bool cnode_idle(const struct cnode *n);
void cnode_get_stats(const struct cnode *n, struct cnode_stats *out);
uint64_t cnode_actor(const struct cnode *n);

/* The node's identity, kept in the store under the metadata keyspace. */
struct cnode_identity {
	uint64_t cluster_id;
	uint16_t node_id;
	uint64_t incarnation; /* the data file's: renewed when it is empty or replaced */
	uint64_t run;         /* this start's: fresh, every start (not stored) */
	uint32_t boot; /* this start's: above every earlier start's of this data file, never 0 */
	bool created;  /* a new incarnation was written at this start */
};
/* Start-up only, synchronous (polls the store until done): read the
 * identity record; on a store with no record and no keys, write one with
 * incarnation fresh durably first. Every start takes fresh as its run
 * incarnation (the actor of the dots it issues, node.h "Actors"), so fresh
 * must be new at every call: never 0, never an earlier start's of this
 * node id, and greater than theirs where the driver can (the drivers draw
 * cnode_fresh_incarnation: milliseconds since 2020 << 7 | 7 random bits).
 * Every start gets a boot above every earlier start's of the data file,
 * durable before it returns, so a late reply to an earlier run never
 * matches a request of this one (request ids start at boot << 44, plus a
 * start drawn from the incarnation: a wiped node is back at the boot of a
 * first start). The boot is the store's open stamp (store_open_stamp, kept
 * in the superblock) plus the record's base: a start writes no record, so
 * a node whose device is full starts any number of times (a record
 * written at every start took a data zone each time, and the second start
 * on a full device failed). One open of the store is one start: load the
 * identity once per store_open.
 * -EXDEV: the data file belongs to another cluster; -EINVAL: to another node
 * id; -DV_EFORMAT: keys but no identity (not a cluster data file); -EROFS:
 * a read-only store; or a store error. */
int cnode_identity_load(struct store *s, uint64_t cluster_id, uint16_t node_id, uint64_t fresh,
			struct cnode_identity *out);
/* A fresh incarnation for cnode_identity_load from the driver's clock
 * (unix ms) and 7 random bits: later starts draw greater ones (retired
 * actors are the smaller ones, node.h "Actors"), two starts of one node
 * never share a millisecond. A clock before 2020 gives 47 random bits
 * with bit 47 set instead (never 0 either). */
#define CNODE_INCARNATION_EPOCH_MS 1577836800000ull /* 2020-01-01 */
static inline uint64_t cnode_fresh_incarnation(uint64_t unix_ms, uint64_t random)
{
	if (unix_ms <= CNODE_INCARNATION_EPOCH_MS)
		return (1ull << 47) | (random & ((1ull << 47) - 1));
	uint64_t inc = ((unix_ms - CNODE_INCARNATION_EPOCH_MS) << 7 | (random & 127)) & DVV_INCARNATION_MASK;
	return inc ? inc : 1;
}

/* The store key of (keyspace, user key) into out (key_len + 1 bytes). */
uint32_t cnode_store_key(uint8_t keyspace, const void *key, uint32_t key_len, uint8_t *out);

#endif
