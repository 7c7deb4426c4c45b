/* node_int.h - private to src/cluster/{node,coord,replica}.c: the cnode's
 * state and the contracts between its three files. Nothing else includes it.
 *
 * node.c    the cnode itself: create/destroy, config, the request-id table,
 *           owned versions and the byte budget, frames (output queue, per-peer
 *           in-flight limit and wait queues), message dispatch, time, stats,
 *           the identity record.
 * coord.c   the coordinator: one struct coord per client request (or
 *           forwarded write) from cnode_submit / FWD_PUT to its answer and
 *           read repair.
 * replica.c the replica: one struct rop per REPL_PUT / REPL_GET (remote or
 *           from this node's own coordinator), and the compare-and-set merge
 *           loop (struct cas) both sides use to change a stored version.
 *
 * Invariants (asserted where they are relied on):
 *  I1 A coord is in exactly one phase; PH_FREE coords are on the free list,
 *     every other one on the open list and (until it is freed) in the
 *     request-id table under its req_id.
 *  I2 A crep in REP_SENT (not self) holds one unit of its peer's
 *     outstanding count; one in REP_QUEUED has its frame in the peer's wait
 *     queue (frame->owner == the coord). Releasing the crep gives both back.
 *  I3 A peer's wait queue is non-empty only while its outstanding count is
 *     at peer_inflight_max (frames wait in order behind the limit).
 *  I4 A struct cas has at most one store op in flight; n->store_ops counts
 *     them, and a coord or rop whose cas is busy is not freed.
 *  I5 buf_bytes is the sum of the bytes of every owned version, encoded
 *     version, copied message and frame the cnode still holds.
 *  I6 A client's done() never runs inside cnode_submit: answers decided
 *     there are deferred to the due list (delivered by cnode_tick).
 *  I7 (flush.c) A keyspace whose flush record is being written (applying)
 *     changes no stored version: a cas that read it waits on flush_wait
 *     until the record is durable, then reads again; requests of it wait
 *     in PH_HELD. Every message about a keyspace carries the sender's
 *     epoch (flush tag) of it; a request whose epoch is not the
 *     receiver's is refused (MSG_ST_STALE), so no version crosses a flush.
 *  I8 (flush.c) Stored values of keyspace k in a record whose seq is below
 *     flush[k].seq and stamped up to flush[k].until are dead: every read of
 *     a stored version drops them, before any merge or reply; a record
 *     left with no value is dead as a whole (its clock too: I9), and the
 *     store drops such records (store_set_reclaim: flush_record_dead).
 *  I9 (flush.c) The actor of this node's dots in keyspace k is renewed by
 *     every flush of k it applies (flush_renew_ks_actor: a later run
 *     incarnation, so a node's actors of k still sort by age) and its
 *     counter actor in k too (flush_counter_actor: node id, a hash of the
 *     data file's incarnation and the flush id), so a clock a flush killed
 *     is never needed again: no
 *     dot issued after the flush can be one issued before it, and no
 *     context from before it covers a dot issued after it.
 *  I10 (coord.c) A client context carries the keyspace's flush id of the
 *     node that made it; a DYN.PUT/DYN.DEL with a context of a flush this
 *     node has not applied waits in PH_HELD (asking its peers' flush
 *     state) until it has, or fails with nothing written (CNODE_EBEHIND)
 *     once every peer it asked answered without that flush or after
 *     CNODE_BEHIND_HOLD_MS, at most its deadline (it holds its key's
 *     later writes on this node behind it meanwhile): else
 *     the write, in the old epoch, would supersede values written after
 *     the flush and then die when the node learns it, bringing them back.
 */
#ifndef DV_CLUSTER_NODE_INT_H
#define DV_CLUSTER_NODE_INT_H

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "cluster/rcache.h"
#include "cluster/counter.h"
#include "cluster/hlc.h"
#include "cluster/msg.h"
#include "cluster/node.h"

#define CNODE_NONE UINT32_MAX
#define CNODE_CAS_TRIES_MAX 16u     /* -ESTALE retries of one merge before BUSY */
#define CNODE_FWD_WINDOW 1024u      /* FWD_PUT anti-duplicate window per origin (req ids) */
#define CNODE_PRUNE_EXTRA 4u        /* a clock keeps n + this many entries, and retired actors of the grace */
#define CNODE_PRUNE_GRACE_MS (3600u * 1000u) /* a retired incarnation is kept this long after its successor began */
#define CNODE_PRUNE_HARD 16u        /* ... but not beyond this many entries (two versions merge within 32) */
_Static_assert(2u * CNODE_PRUNE_HARD <= DVV_ENTRIES_MAX, "two pruned versions merge within the bound");
_Static_assert(RING_N_MAX + CNODE_PRUNE_EXTRA <= CNODE_PRUNE_HARD, "the soft bound is below the hard one");
#define CNODE_RENEW_STEP 128u       /* a renewed run incarnation: a later millisecond's, same random bits */
#define CNODE_POLL_ROUNDS_MAX 10000000u /* identity load: polls before giving up */
#define CNODE_REQ_ID_BITS 44u       /* request ids: boot << 44 | a counter (from a start in [1, 2^43)) */
#define CNODE_BOOT_MASK ((1u << (64 - CNODE_REQ_ID_BITS)) - 1)
#define CNODE_POOL_MIN_SHIFT 7u     /* cnode_alloc's smallest size class: 128 bytes */
#define CNODE_POOL_CLASSES 6u       /* 128 .. 4096 bytes; larger sizes go to malloc */
#define CNODE_POOL_BYTES_MAX (4u << 20) /* free blocks kept for reuse, all classes */
/* Reads (coord.c): a read asks R replicas (its own copy first), and one
 * more whenever one it waits on fails, answers STALE, loses its session,
 * or has not answered at the speculative timer: the slowest asked peer's
 * round-trip estimate (srtt + 4 rttvar), at least CNODE_SPEC_MIN_MS, at
 * most CNODE_SPEC_MAX_MS and a quarter of the request's time left. One
 * GET or DYN_GET in CNODE_FULL_READ_EVERY (by a hash of its req_id) asks
 * all N: the read repair of replicas outside the quorums. */
#define CNODE_SPEC_MIN_MS 2u
#define CNODE_SPEC_MAX_MS 250u
/* Checked writes (coord.c): keys remembered as contended (for cfg.contended_ms). */
#define CNODE_CONTENDED_SLOTS 4096u
#define CNODE_FULL_READ_EVERY 8u

#define cnode_container(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- owned versions ---- */

/* A decoded version whose values point into buf (owned, counted in
 * buf_bytes). */
struct cver {
	struct dvv d;
	uint8_t *buf;
	uint64_t bytes;
};

/* ---- frames ---- */

struct coord;

struct frame_int {
	struct cnode_frame f;          /* f.next: the output queue */
	struct frame_int *wprev, *wnext; /* the peer's wait queue */
	struct coord *owner;           /* tracked: the request waiting for its reply */
	uint8_t rep;                   /* index of the replica in owner */
	uint8_t type;                  /* enum msg_type */
	uint64_t bytes;                /* allocation (budget) */
};

struct cpeer {
	uint16_t node;
	uint32_t outstanding;          /* tracked messages sent without a reply */
	struct frame_int *wq_head, *wq_tail;
	uint32_t wq_len;
	/* FWD_PUT duplicates: the greatest req id seen and a bitmap of the
	 * CNODE_FWD_WINDOW ids below it (bit i: max - i seen). */
	uint64_t fwd_max;
	uint64_t fwd_bits[CNODE_FWD_WINDOW / 64];
	/* scan.c: until then a SCAN asks it last (it left a page unanswered
	 * past the page deadline: up but silent, e.g. stopped or swamped). */
	uint64_t scan_slow_until;
	/* coord.c, reads: its REPL_GET round trips (smoothed, TCP's SRTT and
	 * RTTVAR in ms, scaled by 8 and 4; rtt_seen: one sample at least),
	 * and until when a read asks it last (a read's speculative timer
	 * passed without its answer; any reply from it ends that). */
	uint32_t rtt8, rttvar4;
	bool rtt_seen;
	uint64_t read_slow_until;
};

/* ---- the compare-and-set merge loop (replica.c) ---- */

struct cas;
#define CAS_NOOP 1
/* local is NULL when the key has no (readable) version. Returns 0 (write
 * out), CAS_NOOP (nothing changes) or a negative error. */
typedef int (*cas_merge_fn)(struct cas *c, const struct dvv *local, struct dvv *out);
/* result: 0 (written durably), CAS_NOOP, or a negative error. */
typedef void (*cas_done_fn)(struct cas *c, int result);

struct cas {
	struct store_op op;
	struct cnode *n;
	const uint8_t *key;
	uint32_t key_len;
	cas_merge_fn merge;
	cas_done_fn done;
	/* Optional: runs once the PUT of a merge result is submitted (not
	 * refused at once by the store), before it completes; enc holds the
	 * version it writes. The coordinator sends its new version to the
	 * other replicas there (coord.c). It must not end the cas's owner. */
	void (*put_submitted)(struct cas *c);
	store_done_fn get_done;        /* cas_get: a plain read, no merge */
	/* The version written: meta then values, contiguous (owned). */
	uint8_t *enc;
	uint64_t enc_bytes;
	uint32_t meta_len;
	uint64_t vals_len;
	enum store_cond cond;          /* the PUT's: IF_SEQ, or IF_DAMAGED over an unreadable copy */
	uint64_t cond_seq;
	unsigned tries;
	uint8_t policy;
	bool busy;                     /* a store op in flight (or stalled) */
	bool corrupt;                  /* the local copy was unreadable: replaced */
	bool refused;                  /* the last op was refused by store_submit (never ran) */
	uint32_t epoch;                /* the keyspace's flush tag the op runs in (I7) */
	int8_t count_delta;            /* keys with a visible value: what the PUT changes */
	bool visible;                  /* the PUT's version has a visible value */
	struct cas *list_next;         /* stalled, deferred or flush_wait list */
	/* Merge loops of one key run one at a time on a node (cas_start): the
	 * holder is in its bucket's chain, the others wait behind it in order
	 * (busy while they wait, so their owner waits for them as for a store
	 * op). Without it two loops of one key refuse each other's PUTs
	 * (-ESTALE) faster than either write becomes durable, and both give up
	 * after CNODE_CAS_TRIES_MAX tries: "too many concurrent updates". */
	uint64_t key_hash;
	bool key_held;
	struct cas *key_next;          /* holder: the next holder in its bucket */
	struct cas *wait_head, *wait_tail; /* holder: the loops of its key waiting */
	struct cas *wait_next;
	/* The read cache (rcache.h): the entry a GET is answered from
	 * (pinned until its completion ran), or the generation the GET read
	 * when it went to the store. */
	struct rcache_entry *hit;
	uint64_t cache_gen;
	bool verified_only; /* a client's read: not from an entry only a PUT filled */
};

/* cas_got's answer for an op whose keyspace was flushed since it began. */
#define CAS_FLUSHED (-EOWNERDEAD)

void cas_start(struct cnode *n, struct cas *c);
/* A plain store GET through the same submission path (stall, defer);
 * done is the store op's callback (op.ctx = the cas). */
void cas_get(struct cnode *n, struct cas *c, store_done_fn done, bool verified_only);
void cas_free_enc(struct cnode *n, struct cas *c);
/* Read again (a cas that waited on flush_wait). */
void cas_restart(struct cnode *n, struct cas *c);
/* Retry stalled submissions; deliver deferred failures. */
void cnode_store_pump(struct cnode *n);

/* ---- replica operations (replica.c) ---- */

struct rop {
	uint32_t idx;
	bool used;
	uint8_t type;                  /* MSG_REPL_PUT or MSG_REPL_GET */
	uint16_t flags;
	uint16_t from;
	uint64_t req_id;
	uint8_t key[DV_KEY_BYTES_MAX];
	uint16_t key_len;
	bool uncovered;                /* MSGF_IF_COVERED and its clock did not cover our copy (rop_merge) */
	uint8_t *in;                   /* REPL_PUT: copy of the incoming meta | vals */
	uint64_t in_bytes;
	struct dvv in_d;               /* decoded from in */
	struct cas cas;
};

/* A REPL_PUT or REPL_GET (remote, or from = this node for its own
 * coordinator). Returns MSG_ST_OK when taken (the reply comes later) or the
 * status to answer at once. */
int replica_request(struct cnode *n, const struct msg *m);
void replica_free_all(struct cnode *n);

/* ---- coordinator (coord.c) ---- */

enum coord_phase {
	PH_FREE = 0,
	PH_DUE,    /* answered inside cnode_submit: done() runs at the next tick */
	PH_READ,   /* REPL_GET out, waiting for R */
	PH_REPAIR, /* answered: waiting for the rest, then read repair */
	PH_LOCAL,  /* the coordinator's own merge (dvv_update) in the store, not yet sent */
	PH_ACKS,   /* REPL_PUT out (beside our own PUT, still running: rep REP_SENT), waiting for W */
	PH_FWD,    /* FWD_PUT out, waiting for its reply */
	PH_ZOMBIE, /* finished, its store op still in flight */
	PH_HELD,   /* waits for its keyspace to be ready (start-up sync, a flush being applied) */
	PH_SCAN,   /* SCAN pages out to the partition's replicas */
};

enum coord_op {
	COP_READ = 1,  /* GET, DYN_GET */
	COP_READ_WRITE, /* SET/DEL after a read, RMW */
	COP_WRITE,     /* DYN_PUT, DYN_DEL, LWW SET */
	COP_SCAN,      /* SCAN (scan.c) */
};

/* REP_STALE: answered STALE (another flush epoch): asked again at stale_ms,
 * or the request is redone in the newer epoch (coord.c); counted as pending. */
enum rep_state { REP_IDLE = 0, REP_QUEUED, REP_SENT, REP_OK, REP_FAIL, REP_STALE };

/* A replica's clock as it answered a read (for read repair). */
struct cclock {
	uint16_t n;
	uint64_t lww_ts; /* LWW: the value's stamp (clocks alone do not order it) */
	struct {
		uint64_t actor, counter;
		uint16_t nvals;
	} e[DVV_ENTRIES_MAX];
};

struct crep {
	uint16_t node;
	uint16_t peer;                 /* index into n->peers (CNODE_PEER_NONE: self) */
	uint8_t st;                    /* enum rep_state */
	uint8_t expect;                /* the reply type awaited */
	bool self;
	bool bad;                      /* answered with a damaged copy: repair it */
	bool full;                     /* its write was refused, device full: nothing written there */
	uint32_t stale_tag;            /* REP_STALE: the replica's epoch in its answer */
	uint64_t sent_ms;              /* REPL_GET: when it was asked (its round trip) */
	struct frame_int *queued;      /* REP_QUEUED: its frame */
};

struct coord {
	uint32_t slot;
	uint8_t phase;                 /* enum coord_phase */
	uint8_t op;                    /* enum coord_op */
	uint8_t ks, nrep, r, w, policy;
	bool answered;                 /* the client (or origin) has its answer */
	bool clock_only;
	bool has_self;
	bool indet;                    /* a failure that may have been applied */
	bool counter;                  /* INCR on a siblings keyspace: the write is a counter state */
	bool overflow;                 /* a read's reply did not merge: the versions exceed the bounds together */
	struct coord *prev, *next;     /* open list; next: free list */
	struct coord *due_next;
	struct creq *rq;               /* NULL for a forwarded write and once answered */
	uint16_t fwd_from;
	uint64_t fwd_req_id;
	uint64_t req_id;
	uint64_t deadline_ms, repair_ms;
	uint32_t epoch;                /* the keyspace's flush tag when the request began (I7) */
	uint64_t ctx_flush;            /* DYN.PUT/DEL: the flush id its context was read in (I10) */
	uint64_t behind_wait;          /* I10, held: peers asked whose flush state has not yet come back without it */
	uint64_t behind_until_ms;      /* I10, held: when it gives up (CNODE_EBEHIND), at most its deadline */
	struct cscan *scan;            /* COP_SCAN: its pages (scan.c, owned) */
	int due_result;
	const char *due_err;
	/* Flushes while it runs (coord.c): rounds redone in a newer epoch, the
	 * STALE replicas' next look (0: none) and how many looks so far, and
	 * whether this round's write may be stored somewhere (a bound of its
	 * stamp: it is dead once a flush with until >= wrote_ts is applied). */
	uint8_t flush_rounds, stale_tries;
	bool wrote;
	/* Checked writes (coord.c): this round is one (a plain SET without a
	 * read: its context is our own copy's clock, its REPL_PUTs carry
	 * MSGF_IF_COVERED); a replica of it answered UNCOVERED; the request is
	 * not to be checked again (our copy was unreadable: a read-then-write
	 * instead); and the version it stored is being widened (a read, then
	 * the same dot with the clock of what the read found). */
	bool checked, uncovered, unchecked, widen;
	bool decided; /* CREQ_RMW: its decide() ran (once: node.h), on a read of this request */
	uint64_t khash;                /* store_key_hash of skey */
	uint64_t wrote_ts, stale_ms;
	/* A device error of the coordinator's own PUT, which the store took
	 * after the version left (coord_local_sent): the answer when W is not
	 * met (0: none). */
	int local_err;
	/* Reads (coord.c): when to ask one more replica (0: not armed), and
	 * whether this read asks every replica from the start. */
	uint64_t spec_ms;
	bool full_read;
	bool fanned; /* its first round of asks is out: later ones are late_read_asks */
	struct crep rep[RING_N_MAX];
	/* The write. */
	struct dvv_value val;
	uint8_t *val_copy;             /* forwarded writes: the value (owned) */
	uint64_t val_copy_bytes;
	struct cas cas;                /* the coordinator's own write; enc: the version sent */
	/* Reads: the merged version. */
	struct cver merged;
	/* Not cleared when a request starts: set before use. */
	struct dvv_vv ctx;
	uint32_t skey_len;
	uint8_t skey[DV_KEY_BYTES_MAX];
	struct cclock clock[RING_N_MAX]; /* REP_OK of a read: the clock it answered */
	/* Counters (coord.c): the increment, the read's merged state, the
	 * written state's value and bytes; a counter pick rendered as text. */
	int64_t delta;
	struct counter cstate;
	int64_t cvalue;
	uint8_t cbuf[COUNTER_BYTES_MAX];
	char text[COUNTER_WIDE_TEXT_MAX];
};

#define COORD_CLEAR_BYTES offsetof(struct coord, ctx)

int coord_submit(struct cnode *n, struct creq *rq);
void coord_on_reply(struct cnode *n, uint16_t from, const struct msg *m);
void coord_on_fwd(struct cnode *n, uint16_t from, const struct msg *m);
void coord_tick(struct cnode *n);
void coord_peer_down(struct cnode *n, uint16_t peer);
void coord_deliver_due(struct cnode *n);
void coord_cancel_all(struct cnode *n);
/* A tracked frame of c's replica i left the wait queue for the output. */
void coord_frame_sent(struct coord *c, unsigned i);
/* coord_finish for the other files (scan.c). */
void coord_complete(struct cnode *n, struct coord *c, int result, const char *err);
/* Start the requests held in PH_HELD whose keyspace is ready now. */
void coord_release_held(struct cnode *n);
/* I10: peer pi answered its flush state (ids: its flush id per keyspace)
 * or its session ended (ids NULL): a request held for a flush that peer
 * does not have stops waiting for it, and fails (CNODE_EBEHIND, nothing
 * written) once no peer it asked is left to answer. */
void coord_behind_answered(struct cnode *n, unsigned pi, const uint64_t *ids);
/* The request's first step (coord_submit, or once released from PH_HELD). */
void coord_begin(struct cnode *n, struct coord *c);

/* ---- flush (flush.c) ---- */

#define CNODE_FLUSH_ACKS_MAX 16u    /* FLUSH requests waiting for their records to be durable */
#define CNODE_BCAST_MAX 8u          /* FLUSH and COUNT requests coordinated at once */
#define CNODE_FLUSH_ROUNDS_MAX 4u   /* new ids after STALE answers before giving up; also a request's
                                     * rounds redone in a newer epoch (coord.c) */
#define CNODE_STALE_RETRY_MS 2u     /* a request's first look again at replicas that answered STALE */
#define CNODE_ASK_STATE_MS 500u     /* FLUSH_STATE_GET to one peer at most this often */

struct cflush {
	uint64_t id;                   /* the keyspace's flush id (0: never flushed) */
	uint64_t until;                /* I8: the stamp up to which it kills */
	uint64_t seq;                  /* I8: the seq of its flush record */
	uint32_t tag;                  /* flush_tag(id): the epoch in messages */
	uint64_t actor;                /* I9: this node's dot actor in the keyspace */
	uint64_t counter_actor;        /* I9: this node's actor in the keyspace's counters */
	uint64_t applying, applying_until; /* the flush whose record is being written (0: none) */
	uint64_t want, want_until;     /* a greater one to apply once that one is durable */
	uint64_t heard, heard_until;   /* the greatest flush a peer's FLUSH_STATE named */
	struct store_op op;
	uint8_t key[8], rec[24];
};

struct cflush_ack {
	bool used;
	uint16_t from;                 /* 0: this node's own coordinator */
	uint64_t req_id, id;
	uint16_t mask;
};

enum bcast_kind { BC_FLUSH = 1, BC_COUNT };

/* A FLUSH or COUNT coordinated with every node. */
struct cbcast {
	bool used;
	uint8_t kind;
	uint64_t req_id;
	struct creq *rq;
	uint16_t mask;                 /* FLUSH: keyspaces; COUNT: bit of the keyspace */
	uint64_t id, until;            /* FLUSH: this round's id and until */
	unsigned rounds;
	uint64_t acked;                /* bit per ring node index */
	uint64_t deadline_ms, resend_ms;
	uint64_t count_sum;            /* COUNT: counts of the nodes that answered */
};

uint32_t flush_tag(uint64_t id);
/* Start-up: the flush records of every defined keyspace (synchronous). */
int flush_load(struct cnode *n);
/* Then: the store's reclaim predicate and horizon (flush_record_dead). */
void flush_reclaim_start(struct cnode *n);
/* Requests of keyspace ks may start now (I7, and the start-up sync). */
bool flush_ready(const struct cnode *n, uint8_t ks);
/* A request of keyspace ks with epoch tag arrived from peer `from`: true
 * when it may run; else the caller refuses it (MSG_ST_STALE or BUSY: see
 * *status) and the peer's flush state is asked for. */
bool flush_admit(struct cnode *n, uint8_t ks, uint32_t tag, uint16_t from, uint8_t *status);
/* A reply about keyspace ks carried epoch tag: ask the peer's state when it
 * is not ours. */
void flush_note_epoch(struct cnode *n, uint8_t ks, uint32_t tag, uint16_t from);
/* I8: drop the dead values of d (its record, of keyspace ks, older than the
 * keyspace's flush point: those stamped up to its until). True when it
 * dropped any. */
bool flush_filter(const struct cnode *n, uint8_t ks, uint64_t seq, struct dvv *d);
/* The store's reclaim predicate (store.h, store_set_reclaim; ctx = the
 * cnode): a record of a keyspace whose every value is dead (I8). */
bool flush_record_dead(void *ctx, const void *key, uint32_t key_len, const struct store_record_out *rec,
		       bool tombstone);
/* I9: the actor of this node's dots in keyspace ks, of its counter
 * increments there, and the renewal of the first (flush, damaged copy). */
uint64_t cnode_ks_actor(const struct cnode *n, uint8_t ks);
uint64_t cnode_ks_counter_actor(const struct cnode *n, uint8_t ks);
void flush_renew_ks_actor(struct cnode *n, uint8_t ks);
/* A run incarnation past run and (one drawn from a clock) no earlier than
 * now's (cnode_fresh_incarnation), so it reads as started now. */
uint64_t cnode_next_run(const struct cnode *n, uint64_t run);
/* A cas of keyspace ks read while a flush record was being written (I7):
 * queue it; it reads again once that record is durable. */
bool flush_park(struct cnode *n, struct cas *c, uint8_t ks);
void flush_on_message(struct cnode *n, uint16_t from, const struct msg *m);
int flush_submit(struct cnode *n, struct creq *rq);
int count_submit(struct cnode *n, struct creq *rq);
void flush_tick(struct cnode *n);
void flush_peer(struct cnode *n, uint16_t peer, bool up);
void flush_cancel_all(struct cnode *n);
bool cnode_bcast_open(const struct cnode *n);
void cnode_send_state_get(struct cnode *n, uint16_t to);
/* FLUSH_STATE_GET to every peer with a session (each at most every
 * CNODE_ASK_STATE_MS). */
void flush_ask_peers(struct cnode *n);

/* ---- scan (scan.c) ---- */

int scan_submit(struct cnode *n, struct coord *c);
void scan_on_reply(struct cnode *n, struct coord *c, unsigned i, const struct msg *m);
void scan_expire(struct cnode *n, struct coord *c);
void scan_free(struct cnode *n, struct coord *c);
/* SCAN request from a peer (or this node's coordinator): MSG_ST_OK when
 * taken, else the status to answer. */
int scan_replica(struct cnode *n, const struct msg *m);
void scan_replica_free_all(struct cnode *n);
/* Start-up: count the keys of every keyspace in the background. */
void scan_count_start(struct cnode *n);
/* Keyspace ks was flushed here: the start-up count under way forgets what
 * it counted of it (the records it visits from now on are dead). */
void scan_count_flushed(struct cnode *n, uint8_t ks);
/* A write of store key `key` is submitted, over a value visible or not:
 * the start-up count under way counts the key in that state, once. */
void scan_count_note_write(struct cnode *n, const uint8_t *key, uint32_t key_len, bool was_visible);
bool scan_idle(const struct cnode *n);
void scan_tick(struct cnode *n);
/* A write of this node's store left store key `key` with a visible value:
 * a replica scan running or ending keeps it (scan.c). */
void scan_note_write(struct cnode *n, const uint8_t *key, uint32_t key_len);

/* ---- the cnode ---- */

struct cnode {
	struct cnode_config cfg;       /* cfg.ring points at ring */
	struct ring ring;
	struct store *s;
	uint64_t actor;                /* node id | run: the dots' actor (node.h: Actors) */
	uint64_t run;                  /* its incarnation: cfg.run, + CNODE_RENEW_STEP per renewal */
	uint64_t counter_actor;        /* node id | the data file's incarnation: counters' actor */
	uint32_t renewals;             /* actors renewed in this run (damaged copies replaced) */
	struct hlc hlc;
	uint64_t now_ms;
	uint64_t next_req_id;
	uint8_t ks_n[CNODE_KEYSPACES_MAX], ks_r[CNODE_KEYSPACES_MAX], ks_w[CNODE_KEYSPACES_MAX];
	bool in_submit;

	/* Coordinated requests: slots allocated on first use, kept for reuse. */
	struct coord **coords;
	uint32_t coords_made;
	struct coord *coord_free;
	struct coord *open_head, *open_tail;
	struct coord *due_head, *due_tail;
	uint32_t coords_open;

	/* req_id -> coord: open addressing, linear probing, key 0 = empty. */
	uint64_t *ht_key;
	struct coord **ht_val;
	uint32_t ht_mask;

	/* Replica operations. */
	struct rop **rops;
	uint32_t rops_made;
	uint32_t *rop_free;
	uint32_t rop_nfree;
	uint32_t rops_open;

	struct cpeer peers[RING_NODES_MAX];
	uint16_t self_peer;            /* index into peers, or CNODE_NONE as u16 max */

	struct frame_int *out_head, *out_tail;
	uint64_t out_bytes;
	uint64_t buf_bytes;
	/* Free blocks of cnode_alloc's size classes (node.c), pool_bytes in all. */
	void *pool[CNODE_POOL_CLASSES];
	uint64_t pool_bytes;

	struct cas *stalled_head, *stalled_tail; /* store_submit said -EAGAIN */
	struct cas **key_holders;      /* merge loops holding their key, by key hash (replica.c) */
	uint32_t key_holders_mask;
	struct cas *deferred_head, *deferred_tail; /* store_submit failed, or a cache hit: complete later */
	struct rcache rcache;          /* the replica's read cache (rcache.h, replica.c) */
	uint32_t store_ops;
	bool pumping;
	bool destroying;

	uint64_t next_deadline;
	struct cnode_stats st;

	/* Flushes (flush.c). */
	struct cflush flush[CNODE_KEYSPACES_MAX];
	struct cflush_ack flush_acks[CNODE_FLUSH_ACKS_MAX];
	struct cbcast bcast[CNODE_BCAST_MAX];
	struct cas *flush_wait_head, *flush_wait_tail;
	bool synced;                   /* heard the flush state of a majority (flush.c) */
	uint64_t sync_deadline;
	uint64_t sync_from;            /* peers (ring index bits) whose FLUSH_STATE arrived */
	uint64_t peer_up;              /* peers (ring index bits) with a session, says the driver */
	/* Keys whose checked write met an UNCOVERED answer lately (coord.c,
	 * coord_can_check): their plain SETs read first until until_ms. A
	 * direct-mapped table by store key hash; a collision only forgets. */
	struct {
		uint64_t hash, until_ms;
	} contended[CNODE_CONTENDED_SLOTS];
	uint64_t asked_at[RING_NODES_MAX]; /* last FLUSH_STATE_GET to each peer */
	uint32_t flush_store_ops;      /* flush record writes in flight */
	int64_t ks_count[CNODE_KEYSPACES_MAX]; /* keys with a visible value held here (estimate) */

	/* Scans (scan.c). */
	struct rscan *rscan_head, *rscan_tail; /* replica scans, the head one running */
	struct rscan *rscan_ended;     /* store scans over, answered at the next tick */
	uint32_t rscans;
	bool scanning;                 /* a store_scan of ours is running */
	bool count_scanned;            /* the start-up count scan is done */
	struct rscan *count_scan;
};

#define CNODE_PEER_NONE UINT16_MAX

/* node.c services. */
/* This node's copy of a key was damaged and has been replaced: it may lack
 * dots our actor issued, so the actor is retired (node.h: Actors). */
void cnode_renew_actor(struct cnode *n);
/* Bound d's clock, a version of store key key (keyspace key[0]) written
 * here: beyond n + CNODE_PRUNE_EXTRA entries, drop the value-less entries
 * of retired actors (a node's older incarnations when it has a newer one
 * in d, nodes that are no replica of the key), but those of a node whose
 * newest incarnation began within CNODE_PRUNE_GRACE_MS; beyond
 * CNODE_PRUNE_HARD entries those too. Never our own actor's. */
void cnode_prune(const struct cnode *n, const uint8_t *key, uint32_t key_len, struct dvv *d);
uint64_t cnode_new_req_id(struct cnode *n);
void cnode_ht_put(struct cnode *n, uint64_t req_id, struct coord *c);
struct coord *cnode_ht_get(const struct cnode *n, uint64_t req_id);
void cnode_ht_del(struct cnode *n, uint64_t req_id);
uint16_t cnode_peer_index(const struct cnode *n, uint16_t node);
void cnode_arm(struct cnode *n, uint64_t at_ms);

/* Owned buffers, counted in buf_bytes. Sizes up to 4 KiB come from
 * per-class free lists (a request's messages, versions and copies are a
 * few hundred bytes, allocated and freed many times a millisecond), larger
 * ones from malloc. cnode_release must be given the byte count its
 * cnode_alloc was (it names the class again). */
void *cnode_alloc(struct cnode *n, uint64_t bytes);
void cnode_release(struct cnode *n, void *p, uint64_t bytes);
bool cnode_budget_ok(const struct cnode *n, uint64_t more);

/* cver: set from src (copies every value), free. */
int cver_set(struct cnode *n, struct cver *v, const struct dvv *src);
void cver_free(struct cnode *n, struct cver *v);
/* Encode d into one owned buffer (meta | vals) replacing *buf. */
int cnode_encode(struct cnode *n, const struct dvv *d, uint8_t **buf, uint64_t *bytes, uint32_t *meta_len,
		 uint64_t *vals_len);
/* Same clocks, and for LWW the same stamp: nothing to merge or repair. */
bool cnode_same_version(const struct dvv *a, const struct dvv *b);

/* Frames. */
struct frame_int *cnode_frame_build(struct cnode *n, const struct msg *m);
void cnode_frame_drop(struct cnode *n, struct frame_int *f);
void cnode_output(struct cnode *n, struct frame_int *f);
/* A message that expects no reply (replies, repairs): straight out. */
void cnode_send(struct cnode *n, struct msg *m);
/* A request whose reply c's replica i waits for: out now, or queued behind
 * the peer's in-flight limit. 0 or -ENOMEM. */
int cnode_send_tracked(struct cnode *n, struct coord *c, unsigned i, struct msg *m);
/* c's replica i no longer waits: give back its slot or queued frame (a
 * queued REPL_PUT is still sent, untracked; anything else is dropped). */
void cnode_untrack(struct cnode *n, struct coord *c, unsigned i);
void cnode_msg_init(const struct cnode *n, struct msg *m, uint8_t type, uint16_t to, uint64_t req_id);

/* Keyspace checks. */
bool cnode_ks_ok(const struct cnode *n, uint8_t ks);

#endif
