/* engine.h - the bridge between network threads and the one thread that
 * owns the store.
 *
 * Contract:
 * - A network thread fills eops (one store operation each, with its own
 *   copies of key and value) and hands them over with engine_submit();
 *   the engine's host thread calls engine_turn() from its loop, which
 *   submits them to the store in arrival order, drives the store without
 *   blocking, and hands every finished eop back to its sink (the owning
 *   thread's completion list) in one push per sink per turn.
 * - Results are copied out of the store's buffers before the hand-back:
 *   a finished eop owns its value copy (eop_release frees it). A GET with
 *   no_value copies none (EXISTS, TYPE, TTL: found, seq and expiry only).
 * - Gather budget: the GETs of one command (MGET) may share a budget of
 *   value bytes; a value that does not fit fails its GET with -E2BIG and
 *   copies nothing, and every later GET of that budget fails at once
 *   without reading the store. So a command holds at most its budget of
 *   values, however many keys it names. The budget belongs to the host
 *   thread while any GET pointing at it is handed over.
 * - Read-modify-write (EOP_RMW): the engine reads the key, calls decide()
 *   on the host thread with what it found, then writes (PUT or DEL) with
 *   the store's compare-and-set on the sequence number it read. An RMW
 *   holds its key from its read until it is finished: every write of the
 *   key (PUT, DEL, RMW, active expiry's DEL) taken from the inbox
 *   meanwhile waits behind it, and they go on in arrival order when it is
 *   finished (a waiting RMW takes the key in turn). So RMWs of one key run
 *   one after another as Redis runs them, and a burst of INCRs on one hot
 *   key from many clients all apply; the compare-and-set fails only
 *   for a write already in the store when the RMW took the key, or an
 *   expiry between its read and its write, and the RMW then starts over
 *   (RMW_RETRIES_MAX times at most, which those cannot reach; then -EBUSY).
 *   decide() sees a consistent record; nothing can change the key between
 *   the read it saw and the write that applies. GETs never wait: they see
 *   the key before or after an RMW not yet finished. Every string command
 *   that reads and rewrites a key (INCR family, APPEND, SETRANGE, GETEX,
 *   GETSET, SETBIT, SET GET/NX/XX ...) is one EOP_RMW.
 * - GETs are answered from the value cache (vcache.h) when it holds the
 *   key; the engine keeps it equal to the store on every write completion.
 * - No lock anywhere: lists are lock-free MPSC (mpsc.h).
 * - Cluster mode: a router (engine_set_router, chost.c) takes the eops off
 *   the host thread's turn instead of the store and hands each back with
 *   engine_complete(); the engine still counts them in flight and returns
 *   them to their sinks at the end of a turn, in one push per sink.
 */
#ifndef DV_SERVER_ENGINE_H
#define DV_SERVER_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "server/mpsc.h"
#include "server/vcache.h"
#include "storage/store.h"

#define RMW_RETRIES_MAX 16u
#define EOP_INLINE_BYTES 200u

/* EOP_SCAN: one bounded step of a key-hash-order walk (SCAN, KEYS,
 * RANDOMKEY): the keys of the live records whose hash is in [cursor, end]
 * for an end the engine picks so that the step holds about count keys
 * (store_scan_bounded: at most ENGINE_SCAN_ENTRIES_MAX index entries);
 * the result is the keys (val: u16 length, little-endian, then the bytes,
 * nkeys of them) and cursor = end + 1 (0 once the end of the hash space
 * is reached). A key live for the whole step is in it (store_scan's
 * guarantee). Steps run one at a time, in arrival order.
 * EOP_FLUSH: the store's FLUSH (store.h); the value cache and the active
 * expiry list are emptied with it. */
enum eop_kind { EOP_GET = 1, EOP_PUT, EOP_DEL, EOP_RMW, EOP_STATS, EOP_SCAN, EOP_FLUSH };

#define ENGINE_SCAN_COUNT_MAX 1024u    /* keys a scan step aims at, at most */
#define ENGINE_SCAN_ENTRIES_MAX 4096u  /* index entries one step may read */

enum rmw_action { RMW_FINISH = 0, RMW_PUT, RMW_DEL };

/* Value bytes the GETs pointing at it may still copy (host thread while
 * they are handed over). */
struct eop_budget {
	uint64_t left;
	bool over;   /* a value did not fit: the rest fail with -E2BIG */
};

struct eop;
/* Host thread: e->found/val/seq/expire_ms describe the key now. Set the
 * write in e->sop (value, expire_ms) and return RMW_PUT or RMW_DEL, or set
 * e->result/e->reply_int and return RMW_FINISH. */
typedef enum rmw_action (*eop_decide_fn)(struct eop *e, uint64_t now_ms);

/* Where finished eops go: a thread's completion list and its waker. */
struct eop_sink {
	struct mpsc done;
	struct waker *waker;
};

/* Cluster mode: what a request says beyond the plain fields (chost.c).
 * EOP_DYN_INCR: an EOP_RMW of the INCR family, the cluster's counter
 * (arg: the increment; reply_int: the new value). EOP_DYN_COUNT: an
 * EOP_STATS for DBSIZE, the cluster's estimate (reply_int) of the
 * connection's keyspace (arg 0) or of keyspace arg - 1 (INFO keyspace's
 * count of each one). EOP_FLUSH's
 * arg is 1 for FLUSHALL (every keyspace), 0 for FLUSHDB (dyn.keyspace). */
enum eop_dyn_op {
	EOP_DYN_NONE = 0, EOP_DYN_GET, EOP_DYN_PUT, EOP_DYN_DEL, EOP_DYN_STATUS, EOP_DYN_RING, EOP_DYN_INCR,
	EOP_DYN_COUNT
};
struct eop_dyn {
	uint8_t keyspace;   /* the connection's SELECT */
	uint8_t op;         /* enum eop_dyn_op */
	uint8_t r, w;       /* 0 = the keyspace's */
	uint32_t timeout_ms; /* 0 = the node's */
	uint32_t ctx_len;   /* DYN.PUT/DEL: the context, at kv + key_len */
	uint32_t nsib;      /* DYN.GET result: sibling values in val */
};

struct eop {
	struct mpsc_node link;   /* first: MPSC and backlog link */
	struct store_op sop;
	struct eop_sink *sink;
	void *owner;             /* the command waiting for it */
	enum eop_kind kind;
	uint8_t rmw_phase;       /* 0 read, 1 write */
	uint8_t retries;
	bool no_value;           /* GET: copy no value (EXISTS, TYPE, TTL) */
	bool back;               /* owner's: handed back (the engine never touches it) */
	/* Host thread: the hand-back round that returns it (engine_round()),
	 * set when it is finished, 0 before; its owner may read it at any time
	 * (acquire): a write finished but not yet taken back (conn.c). */
	_Atomic uint64_t finished_round;
	int result;              /* final: 0 or negative (store errors, -DV_ENOTFOUND) */
	int64_t reply_int;       /* RMW: the command's integer answer */
	/* What a read found (GET, RMW): valid when found. */
	bool found;
	uint64_t seq, expire_ms;
	char *val;               /* owned copy: inl or heap */
	uint32_t val_len;
	uint32_t rec_val_len;    /* the value's length in the record (STRLEN: no_value copies none) */
	char *meta;              /* RMW only: the record's metadata, kept on rewrite */
	uint32_t meta_len;
	/* RMW parameters, read by decide(). */
	eop_decide_fn decide;
	int64_t arg;
	uint32_t flags;
	/* Key (and PUT value) copies: kv points at inl or heap. */
	char *kv;
	uint32_t kv_len;
	struct store_stats *stats; /* EOP_STATS: filled by the engine */
	struct vcache_stats *cache_stats; /* EOP_STATS: filled when not NULL */
	struct engine_counters *counters; /* EOP_STATS: filled when not NULL */
	uint64_t cache_epoch;    /* GET: vcache_epoch() when submitted to the store */
	struct eop_budget *budget; /* GET: shared bound on the values copied, or NULL */
	/* Owner's (the engine never touches them): reads of the owner's that
	 * are answered from this write once it is back (conn.c). */
	struct eop *waiters, *wait_next;
	struct eop_dyn dyn;
	/* EOP_SCAN: in, where the step starts and the keys it aims at; out,
	 * where the next step starts (0: done) and the keys found. */
	uint64_t cursor;
	uint32_t count, nkeys;
	/* Host thread: an RMW holding its key (see above), its lock bucket's
	 * chain and the writes of the key waiting behind it (through link). */
	bool lock_held;
	uint64_t lock_hash;
	struct eop *lock_next, *lock_first, *lock_last;
	char inl[EOP_INLINE_BYTES];
};

struct engine;

/* cache_bytes: RAM for the value cache (vcache.h), 0 = none. */
int engine_open(struct engine **out, struct store *s, struct waker *host_waker, uint64_t cache_bytes);
void engine_close(struct engine *e);

/* Fill e for key (and value): copies them; val NULL with val_len > 0
 * reserves val_len bytes after the key for the caller to fill. 0 or -ENOMEM. */
int eop_init(struct eop *e, enum eop_kind kind, const void *key, uint32_t key_len, const void *val,
	     uint32_t val_len);
/* eop_init with a key of one byte prefix (0..255) then key (prefix < 0:
 * key alone): the store key of a layout that prefixes every key. */
int eop_init_key(struct eop *e, enum eop_kind kind, int prefix, const void *key, uint32_t key_len,
		 const void *val, uint32_t val_len);
/* Free what eop_init and the engine allocated (not e itself). */
void eop_release(struct eop *e);
/* A result block owned by e: meta_len bytes at e->meta then val_len at
 * e->val (inline when they fit), e->found set; the caller fills them.
 * 0 or -ENOMEM. Freed by eop_release. */
int eop_keep_alloc(struct eop *e, size_t meta_len, size_t val_len);
/* Drop what a finished read copied (value, metadata): found becomes false. */
void eop_drop_result(struct eop *e);
/* decide(): make the value read len bytes long (its first bytes kept, the
 * rest zero; none when nothing was found), the record's metadata kept;
 * e->val is then the caller's to write and to PUT. found is unchanged.
 * 0 or -ENOMEM. */
int eop_resize_value(struct eop *e, uint32_t len);
/* Make e (a GET not handed over) read as having found val (copied). 0 or
 * -ENOMEM. */
int eop_set_found(struct eop *e, const void *val, uint32_t val_len, uint64_t seq, uint64_t expire_ms);
/* Host thread (the cluster host): e found val, kept as a store read's is
 * (no_value and the gather budget apply: -E2BIG over it). 0 or -ENOMEM. */
int eop_keep_read(struct eop *e, const void *val, uint32_t val_len, uint64_t expire_ms);

/* Cluster mode. route(arg, op) runs on the host thread for every eop taken
 * from the inbox; true: the router owns it until engine_complete(op),
 * false: the engine runs it on the store as usual. */
typedef bool (*engine_route_fn)(void *arg, struct eop *op);
void engine_set_router(struct engine *e, engine_route_fn route, void *arg);
/* Host thread: a routed eop is finished (result as for the store's); it
 * goes back to its sink at the end of the current or next engine_turn(). */
void engine_complete(struct engine *e, struct eop *op, int result);

/* Any thread: hand over first..last (linked through link.next). */
void engine_submit(struct engine *e, struct eop *first, struct eop *last);
/* Host thread: one non-blocking round. True when anything moved. */
bool engine_turn(struct engine *e);
/* Host thread: eops handed over and not yet given back. */
uint64_t engine_in_flight(const struct engine *e);
/* Any thread: the latest hand-back round whose eops any thread may have
 * taken back. Rounds grow by one per hand-back; every eop finished before a
 * hand-back that is seen has finished_round <= this (it is published,
 * release, before the round's eops are pushed). */
uint64_t engine_round(const struct engine *e);
bool engine_idle(struct engine *e);
/* Any thread: nothing handed over and not yet taken by engine_turn(). */
bool engine_inbox_empty(struct engine *e);
/* Host thread, after engine_turn(): nothing can move before a device
 * completion or a new submission (both wake the host). */
bool engine_may_sleep(struct engine *e);
/* Host thread, at shutdown: wait for the store to finish everything. */
int engine_drain(struct engine *e);
void engine_stats(const struct engine *e, struct store_stats *out);
void engine_cache_stats(const struct engine *e, struct vcache_stats *out);

/* Active expiry: keys with a TTL the engine deletes when due (engine.c,
 * "active expiry"). */
struct engine_counters {
	uint64_t expiry_tracked;   /* keys waiting for their time (one entry per key) */
	uint64_t expiry_deleted;   /* expired keys deleted */
	uint64_t expiry_untracked; /* writes with a TTL whose key did not fit the table (a scan finds it) */
	uint64_t expiry_bytes;     /* memory of the table */
	bool expiry_scanning;      /* keys with a TTL are being looked for in the store */
};
void engine_get_counters(const struct engine *e, struct engine_counters *out);
/* Bounds of the active expiry table (default EXPIRY_KEYS_MAX keys,
 * EXPIRY_BYTES_MAX bytes; tests set small ones). Host thread. */
void engine_set_expiry_bounds(struct engine *e, uint32_t keys_max, uint64_t bytes_max);

#endif
