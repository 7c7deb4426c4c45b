/* store.h - the storage engine of one node on one device.
 *
 * Contract:
 * - Completion-based: store_submit() queues an operation and returns at
 *   once; store_poll() drives the device and calls op->done() on the thread
 *   that polls. Both are called by the one thread that owns the store. An
 *   op and the buffers it points to belong to the store until done() runs;
 *   done() may submit ops, that op included.
 * - A PUT or DEL completes with result 0 only once its record is durable;
 *   op->out.seq is then the seq of the record it wrote (the key's new
 *   current seq, for a later STORE_IF_SEQ). Completions of writes are
 *   delivered in submission order per key. Successive writes of one key
 *   share group commits: a write whose predecessor of the same key is
 *   placed (in a batch, not yet durable) is decided against that newest
 *   version and placed behind it, in the same batch or the next.
 * - A GET completes with result 0 and op->out filled (pointers valid only
 *   during done()), or -DV_ENOTFOUND (absent, deleted or expired), or an
 *   error. A record that fails its checksum is never returned as data: the
 *   GET fails with -DV_ECORRUPT.
 * - What a GET returns: the key's state after some prefix of its writes
 *   (in submission order), never older than the last write of the key
 *   acknowledged (done() called) before the GET was submitted, and never
 *   the effect of a write submitted after it; a write submitted before it
 *   and not yet acknowledged may or may not be seen. It answers from the
 *   key's record at its lookup, which happens after store_submit() returned
 *   and before any op submitted after it starts; if GC collected the zone
 *   of what it looked up while its read was out, it looks up again and
 *   answers from the key's record then, when a write submitted before the
 *   GET wrote it. Reads are monotonic: a GET never returns an older state
 *   of the key than a GET that completed before it was submitted (a key's
 *   indexed record only moves forward; a record that fails its checksum
 *   gives an error, never an older state).
 *   Expiry is judged by the store's clock when the read completes.
 * - A GET fails with -EBUSY, and a new GET is then safe, only when the
 *   version it may return is gone: the zone of the record it looked up was
 *   collected (GC) while its read was out, and the key's record found on
 *   looking again was written by a write submitted after the GET (or by
 *   one the store no longer knows the submission of: more than
 *   STORE_APPLIED_RING (16384) writes applied since); or GC collected what
 *   it looked up READ_RETRIES_MAX (8) times. Never without a collection.
 * - A damaged record: one that does not verify when two reads in a row
 *   agree on its bytes (what the medium holds; a flip in transit reads
 *   differently). One of the key's index candidates that is damaged and
 *   may be the key's (see STORE_IF_DAMAGED for how its owner is told) is
 *   the key's record when no other candidate verifies as the key's.
 *   A conditional write over it fails with -DV_ECORRUPT and decides
 *   nothing (its seq and expiry cannot be read). An unconditional PUT
 *   replaces it; an unconditional DEL writes a tombstone over it and says
 *   what it replaced: 0 over a PUT (whether that value had expired cannot
 *   be told), -DV_ENOTFOUND over a tombstone (the index tells which). The
 *   key then reads again. The same after a restart: the store keeps no
 *   list of damage across one (a write finds it by reading).
 * - A PUT or DEL fails with -EBUSY when GC collected what it looked up
 *   READ_RETRIES_MAX (8) times while it read (it follows GC's copy of its
 *   own record, but a candidate whose zone was collected before the read
 *   verified it is looked up again): it never writes on a guess of what
 *   the key holds.
 * - After a write or flush error the store is failed: every write not yet
 *   decided (waiting for its key, resolving) and every later one fails
 *   with -DV_EFATAL, never with a condition's answer (a write before it may
 *   be durable without being in the index), and so does a write decided
 *   against a write of its key that had not completed; reads keep working.
 * - FLUSH (STORE_FLUSH; key, value and condition ignored) drops every
 *   record at once, on the device in O(1): it waits until every op
 *   submitted before it has completed (on a failed store too, then fails
 *   with -DV_EFATAL), holds every op submitted after it,
 *   and writes one durable record under the store's own key
 *   (STORE_FLUSH_KEY), whose seq is the flush point: every record with a
 *   lower seq is dead. done() with 0 (out.seq = the flush point) once that
 *   record is durable; the index and the location memo are empty then
 *   (but for that record) and the held ops start. Recovery ignores every
 *   record below the newest flush point, so no flushed key comes back
 *   after a restart; GC reclaims the zones that hold only dead records
 *   without relocating anything. The flush point record is the store's:
 *   it is in no stats count, no scan visits it, and ops naming its key
 *   fail with -EINVAL. A flush drops every key, whatever layer wrote it
 *   (a caller rewrites the records it must keep, e.g. its metadata).
 * - store_open() formats a device only when asked (format_if_empty) and
 *   only when it holds no dynvme superblock and is empty where one goes
 *   (zeroes in the first MiB, or empty superblock log zones); a device
 *   holding anything else there is refused with -DV_EFORMAT. It runs
 *   recovery (zone indexes + scan of open zones) before returning. It
 *   refuses with -EOPNOTSUPP (and a message on stderr) a zoned device it
 *   cannot serve: zone capacity below 256 KiB, too few zones, open/active
 *   limits that leave no zone for data besides the superblock log's.
 * - On a zoned device no more zones are open or active than the device
 *   allows (store_stats.zones_open_limit data zones, and one for the
 *   superblock log); sealed zones are finished.
 */
#ifndef DV_STORE_H
#define DV_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "io/dev.h"

struct store;

struct store_config {
	uint64_t zone_bytes;        /* when formatting; 0 = 64 MiB (or the device's) */
	bool format_if_empty;       /* format when no superblock is found and the device is empty (above) */
	unsigned batches_in_flight; /* group-commit writes in flight, 1..DV_BATCHES_IN_FLIGHT_MAX */
	uint32_t batch_bytes;       /* max bytes of one group-commit write */
	uint32_t gc_free_zones_min; /* start GC when fewer empty zones remain */
	uint64_t index_capacity_hint;
	bool read_only;             /* offline tools: no writes, no recovery sealing */
	bool recover_by_scan;       /* ignore zone indexes, scan every zone (verification) */
	/* Location memo: 32-byte entries (a power of two, rounded up) that let
	 * a write settle its index candidates without reading their records.
	 * 0 = default 1M entries (32 MiB, touched as it fills). */
	uint32_t memo_entries;
	bool no_memo;               /* no location memo (tests, measurements) */
	/* The clock of every expiry decision inside the store (reads,
	 * conditions, GC, scans), in unix ms; NULL = store_now_ms(). A driver
	 * with its own time (the cluster simulator) passes its clock. */
	uint64_t (*now_ms)(void *clock_ctx);
	void *clock_ctx;
};

enum store_op_kind { STORE_GET = 1, STORE_PUT, STORE_DEL, STORE_FLUSH };

/* The store's own key: the flush point record (first byte 0xFE, which no
 * layer above uses as a prefix: single-node keys start with 0x00 or 0xFF,
 * cluster keys with their keyspace, 0..15 or 0xFF). */
#define STORE_FLUSH_KEY "\xfe" "dynvme.store.flush-point"
#define STORE_FLUSH_KEY_BYTES (sizeof(STORE_FLUSH_KEY) - 1)

/* Conditional writes, decided atomically with the write (under the key's
 * lock, against the key's current record including writes still in flight
 * before it): a failed condition completes with -EEXIST (IF_ABSENT),
 * -DV_ENOTFOUND (IF_PRESENT) or -ESTALE (IF_SEQ). IF_ABSENT and IF_PRESENT
 * apply to PUT only. A DEL of a key that is absent completes with
 * -DV_ENOTFOUND.
 * STORE_IF_SEQ (compare-and-set, PUT and DEL): applies only if the key's
 * current record is live (a PUT that has not expired) with seq == cond_seq;
 * for a PUT, cond_seq 0 means "only if the key has no live record" (absent,
 * deleted or expired). A DEL with IF_SEQ applies only to a live record with
 * that seq (cond_seq 0 always fails). The seq to pass is out.seq of a GET
 * or of a PUT/DEL that completed with 0; GC relocation and recovery keep
 * it.
 * STORE_IF_SEQ_EXPIRED (DEL only): applies only if the key's current record
 * is a PUT with seq == cond_seq that has expired (the server's active
 * expiry: a newer write of the key is never deleted); it completes with
 * -DV_ENOTFOUND when it wrote its tombstone (as any DEL of an expired value
 * does), -ESTALE otherwise.
 * STORE_IF_DAMAGED (PUT only): replaces the key's current record only if
 * that record is unreadable, the repair of a copy a GET answered with
 * -DV_ECORRUPT (the cluster layer writes its replicas' merged version
 * over it). It applies when no index candidate of the key verifies as the
 * key's own record and one that may be the key's is damaged (as an
 * unconditional write would replace it, above); otherwise (the key's
 * record reads fine, or the key has none: a write or GC got there first)
 * -ESTALE: a new GET tells which.
 * Whose a damaged candidate is: the key's or another's as GC's table of
 * damaged records (from the zone index), the location memo, or the index
 * of a zone still being written says; else as the key the record's own
 * bytes hold says (this key, or another key sharing the 31 hash bits of
 * the index lookup); unknown when the damage hit the record's key or key
 * length: then the first such candidate is taken as the key's.
 * Residual risk: a candidate taken as the key's is another key's only if
 * that key shares the index's fingerprint bits with this one (31 bits of
 * the hash: about n / 2^31 for a store of n keys) and its record is
 * damaged in its key or key length (or a flip turned the key into one
 * with the same 31 bits: 2^-31). That key then reads as absent on this
 * store until a restart, which indexes its damaged record again from the
 * zone index, or, if GC collected that record's zone meanwhile, an older
 * version of it; its cluster replicas repair it, and an older version
 * never wins a merge (dvv.h). */
enum store_cond {
	STORE_ALWAYS = 0,
	STORE_IF_ABSENT,
	STORE_IF_PRESENT,
	STORE_IF_SEQ,
	STORE_IF_SEQ_EXPIRED,
	STORE_IF_DAMAGED,
};

struct store_record_out {
	const uint8_t *value;
	uint32_t val_len;
	const uint8_t *meta;
	uint32_t meta_len;
	uint64_t seq;
	uint64_t expire_ms;
};

struct store_op;
typedef void (*store_done_fn)(struct store_op *op);

/* Private per-op state, embedded so the request path never allocates. */
struct store_op_priv {
	struct store_op *next;       /* queue link */
	struct store_op *chain_next; /* next mutation of the same key hash */
	struct store_op *chain_tail; /* key lock holder: its last waiter (NULL: none) */
	uint64_t hash_lo, hash_hi;
	uint64_t prev_payload;       /* entry this write replaces, or NO_PAYLOAD */
	uint64_t prev_seq;           /* seq of that record, 0 when there is none */
	uint32_t prev_size;
	uint64_t new_payload;
	uint64_t new_seq;            /* seq of the record this write placed */
	uint32_t rec_size;
	uint32_t batch_id;
	struct store_op *lock_next;  /* key-lock bucket link */
	uint8_t state;
	uint8_t cand_count, cand_next, retries;
	uint8_t damaged_cand;        /* a damaged candidate of unknown owner (or NO_CAND) */
	uint8_t cand_reads;          /* reads of the current candidate that did not verify */
	bool prev_live;              /* prev is a PUT that has not expired */
	bool prev_damaged;           /* prev is damaged (store.h: the key's as far as can be told) */
	bool resolved;               /* prev_* describe the key's current record */
	bool saw_corrupt;
	bool hash_full;              /* hash_hi is the whole high half (a relocation's may be
				      * only its zone index entry's 32 bits) */
	uint64_t cands[16];          /* keys sharing 31 hash bits: more is ~never */
	uint32_t cand_gens[16];      /* each candidate's zone generation at the lookup */
	uint64_t cands_epoch;        /* store index epoch when cands were taken */
	uint64_t cand_digest;        /* checksum of the last such read (reads_agree) */
	uint64_t read_horizon;       /* GET: next seq when it first looked up */
	uint64_t ticket;             /* store_submit() order: earlier ops have lower tickets */
	struct dev_req req;
	void *buf;
	uint32_t buf_bytes;
	struct store *owner;
	void *reloc; /* GC relocation this op carries, if any */
};

struct store_op {
	enum store_op_kind kind;
	const void *key;
	uint32_t key_len;
	const void *value;  /* PUT */
	uint32_t val_len;
	const void *meta;   /* PUT: version metadata (causal context) */
	uint32_t meta_len;
	uint64_t expire_ms; /* PUT: absolute unix ms, 0 = never */
	enum store_cond cond; /* PUT: only if absent (NX) / present (XX); PUT/DEL: IF_SEQ */
	uint64_t cond_seq;    /* STORE_IF_SEQ: the seq the key's live record must have */
	/* PUT/DEL: may take the empty zone user writes leave to GC
	 * (GC_RESERVE_ZONES), as a FLUSH may: for a host's few small records
	 * that free or keep space, never for user data (a cluster node's flush
	 * records, after which the flushed zones are reclaimed, and its
	 * identity record, written once when the data file is created), so
	 * that a full device can still be flushed. Never for a record written
	 * at every start: recovery seals the zone the last run left open, so
	 * such a record takes a fresh zone at every start, and on a full
	 * device the second start finds none; a host keeps a per-start number
	 * in the open stamp instead (store_open_stamp). */
	bool reserve;
	store_done_fn done;
	void *ctx;
	int result;                  /* 0 or negative error */
	struct store_record_out out; /* GET result, valid during done(); PUT/DEL: out.seq */
	struct store_op_priv priv;
};

struct store_stats {
	/* Index entries: one per key the store knows of, tombstones included
	 * (the store's own flush point record is not counted).
	 * Live keys (Redis DBSIZE) = keys - tombstones; a value that has
	 * expired but is not yet collected by GC still counts as a live key
	 * (GC turns it into a tombstone when it moves it). */
	uint64_t keys;
	uint64_t tombstones;       /* index entries that are tombstones (deleted keys) */
	uint64_t index_bytes;
	uint64_t puts, dels, gets, get_hits;
	uint64_t user_bytes;       /* record bytes of acknowledged PUT/DEL */
	uint64_t device_bytes_written; /* all writes: records, padding, zone indexes, superblocks */
	uint64_t gc_bytes_relocated;
	uint64_t gc_zones_reset;
	uint64_t gc_expired;       /* expired values GC moved as tombstones (space reclaimed) */
	uint64_t batches, batch_records;
	uint64_t resolve_reads;    /* reads writes made to tell keys sharing a fingerprint apart */
	uint64_t resolve_memo_hits; /* candidates (writes and GETs) settled by the location memo */
	uint64_t memo_bytes;       /* RAM of the location memo (at most; pages fill as used) */
	uint64_t corrupt_records;  /* checksum failures seen by reads */
	uint64_t flushes;          /* FLUSH ops done since the store opened */
	uint64_t flush_seq;        /* the newest flush point (0: none); records below it are dead */
	uint64_t damaged_kept;     /* indexed records GC found damaged and kept (GET: -DV_ECORRUPT) */
	uint64_t reclaim_seq;      /* the host's horizon (store_reclaim_below): 0 = none */
	uint64_t reclaim_dropped;  /* records the host's predicate called dead, dropped from the index */
	uint64_t reclaim_bytes;    /* their record bytes */
	uint64_t reclaim_zones_swept; /* zones the sweep read */
	uint64_t reclaim_zones_freed; /* zones the sweep reset without relocating (nothing left indexed) */
	uint32_t zones_total, zones_empty, zones_open, zones_full;
	uint64_t zone_bytes;       /* the stride: zone z starts at data_start + z * zone_bytes */
	uint64_t zone_cap;         /* bytes written of each zone (its capacity; <= zone_bytes) */
	/* The device and what the engine makes of it. */
	const char *zone_model;    /* "emulated" (the device has none), "host-managed", "host-aware" */
	uint32_t dev_max_open_zones, dev_max_active_zones; /* the device's limits, 0 = none */
	uint32_t zones_open_limit; /* data zones kept OPEN at most (the limits less the sb log), 0 = none */
	uint32_t zones_open_peak;  /* most data zones OPEN at once */
	bool sb_log;               /* superblock in two sequential zones, written as a log */
	uint64_t sb_log_resets;    /* superblock log zones reset to take the next copies */
	uint32_t zones_unusable;   /* the device reports them read-only, offline or shrunk */
	uint32_t zones_lost;       /* offline zones that held records: those are lost */
	uint32_t zones_wp_mismatch; /* at recovery: the device's write pointer (or capacity) behind
				     * what the superblock or the zone's records say was written */
	uint64_t recovery_us, recovered_records;
	uint32_t recovery_torn_tails;     /* open zones whose tail ended in a damaged record */
	uint32_t recovery_bad_zone_indexes; /* sealed zones rebuilt by scanning */
	uint32_t recovery_redundant_zones;  /* open zones of GC's copies only, reset (a collection cut short) */
	bool failed;
};

/* Reclaiming what the layer above declared dead (a cluster's FLUSHDB of
 * one keyspace, which a whole-store STORE_FLUSH cannot express: keyspaces
 * share the store). The host gives a predicate over a record and a seq
 * horizon: only records with seq below the horizon are ever asked about.
 * - dead(ctx, key, key_len, rec, tombstone) says whether the record is dead
 *   for the host: no read of the host will ever use it again. It is called
 *   on the store's thread (from store_poll), must not submit ops and must
 *   be stable: a record once dead stays dead, and so does every older
 *   record of its key (lower seq), for as long as the store lives and
 *   after a restart (the host keeps what makes them dead durable, and
 *   declares it again with store_reclaim_below after store_open): the
 *   store drops the newest record of a key while older ones may still be
 *   on the device, and a restart indexes the newest of those again until
 *   the sweep drops it in turn.
 * - store_reclaim_below(s, seq) raises the horizon (never lowers it) and
 *   starts a background sweep: every sealed zone holding a record below
 *   the horizon is read once (1 MiB at a time, one zone at a time, through
 *   store_poll, never in an op's path), and the indexed records the
 *   predicate calls dead leave the index (their RAM, their zone's live
 *   bytes); a zone left with no indexed record is reset at once, without
 *   relocating anything. GC asks the predicate too before it relocates a
 *   record below the horizon: a dead one is dropped, not moved.
 * - A record whose key has a write in flight (one holding its key lock) is
 *   kept this time: the write replaces it. A record that does not verify is
 *   kept (GC's rules for damage apply).
 * - Without a predicate (NULL) nothing is asked and nothing is swept.
 *   store_set_reclaim(s, NULL, NULL) before the host's ctx goes away. */
typedef bool (*store_dead_fn)(void *ctx, const void *key, uint32_t key_len, const struct store_record_out *rec,
			      bool tombstone);
void store_set_reclaim(struct store *s, store_dead_fn dead, void *ctx);
void store_reclaim_below(struct store *s, uint64_t seq);
/* A sweep (store_reclaim_below) has zones left to read. */
bool store_reclaim_pending(const struct store *s);

int store_open(struct store **out, struct dev *dev, const struct store_config *cfg);
/* This open's stamp: greater than every earlier writable open's of this
 * store, across crashes and power cuts (not consecutive: it is the sb_seq
 * of the superblock write every writable open makes durable before
 * store_open returns; a superblock write takes the newest copy's seq + 1).
 * It costs no data zone: a host keeps a per-start number here rather than
 * in a record, which a full device could not take at every start. 0 for a
 * read-only open, and for one whose stamp write failed when recovery had
 * nothing to write (a device that refuses writes: the store opens failed,
 * serving reads, as before stamps). Only damage to the newest superblock
 * copy, or a read of it failing at open (the older copy is then loaded),
 * can give a later open an equal or earlier stamp. */
uint64_t store_open_stamp(const struct store *s);
/* Waits for all queued and in-flight operations, then frees. The device is
 * not closed. */
void store_close(struct store *s);

/* Queue an op: 0, or -EINVAL/-DV_ETOOBIG (bad request), -DV_EFATAL (failed
 * store), -EAGAIN (too many ops in flight: poll, then retry). */
int store_submit(struct store *s, struct store_op *op);
/* Drive I/O; wait for at least one completion when wait is true and work
 * is in flight. Returns completions delivered or a negative error.
 * With wait false it returns once nothing can move before a device
 * completion (every request sent, ops submitted by done() started), or
 * after a bounded number of rounds while completions keep arriving (their
 * eventfd signals then still pending): an event loop may sleep on the
 * device's notify eventfd (dev_notify_fd) after store_poll(s, false), and
 * calls it after every wake-up and after submitting ops. */
int store_poll(struct store *s, bool wait);
/* Operations not yet completed (queued, waiting or in flight). */
unsigned store_pending(const struct store *s);
/* Poll until nothing is pending (a failed store: until nothing can move,
 * a running store_scan finished). */
int store_drain(struct store *s);

/* Collect one zone now (the one with most dead bytes), if any is worth it;
 * runs through store_poll(). Returns 1 when a collection started. */
int store_gc_start(struct store *s);
bool store_gc_running(const struct store *s);

/* Visit every live record whose key hash (64-bit) is in [lo, hi]; runs
 * through store_poll(); visit returns false to stop. finish is called once
 * at the end with 0 or an error. A key live for the whole scan is visited
 * at least once, whatever writes, deletes and GC moves of it or of other
 * keys happen meanwhile (possibly more than once), with a record it had
 * during the scan (the one it had when the scan started, or one written
 * or moved since). A key written or deleted during the scan may be seen
 * with an older record, a newer one, or (deleted) not at all. What the
 * scan holds: 8 bytes per index entry in the range, and per key written
 * in the range during the scan 24 bytes. A flush during the scan ends
 * what it visits of the records before it. One scan at a time (-EBUSY). */
typedef bool (*store_visit_fn)(void *arg, const void *key, uint32_t key_len,
			       const struct store_record_out *rec);
int store_scan(struct store *s, uint64_t hash_lo, uint64_t hash_hi, store_visit_fn visit,
	       void (*finish)(void *arg, int err), void *arg);
/* store_scan() of [hash_lo, *hash_hi] narrowed so that the index holds at
 * most max_entries entries in it (0: no bound): the range is halved until
 * it does, or until it is one index fingerprint group (2^33 hashes) wide
 * (the index keeps at most 16 keys in one). *hash_hi gets the end of the
 * range scanned (>= hash_lo): a caller walking the hash space in steps
 * goes on at *hash_hi + 1. */
int store_scan_bounded(struct store *s, uint64_t hash_lo, uint64_t *hash_hi, uint32_t max_entries,
		       store_visit_fn visit, void (*finish)(void *arg, int err), void *arg);
/* A scan is running (store_scan returns -EBUSY until it finishes). */
bool store_scanning(const struct store *s);
/* Index entries (keys, tombstones included) the store holds: what a
 * caller sizes hash-range steps from. */
uint64_t store_key_count(const struct store *s);
/* store_scan, visiting the PUTs that have expired too (rec->expire_ms
 * tells): the server's active expiry finds what it must delete. */
int store_scan_expired(struct store *s, uint64_t hash_lo, uint64_t hash_hi, store_visit_fn visit,
		       void (*finish)(void *arg, int err), void *arg);

void store_get_stats(const struct store *s, struct store_stats *out);
uint64_t store_key_hash(const void *key, uint32_t key_len);
/* A hint: what an op on the key of hash (store_key_hash) looks up first is
 * loaded into the CPU cache. Changes nothing. */
void store_prefetch(struct store *s, uint64_t hash);
/* The real clock (CLOCK_REALTIME) in unix ms: the default of now_ms. */
uint64_t store_now_ms(void);

/* Offline verification of a device (dynvme check). Read-only. */
struct store_check_report {
	unsigned sb_valid_copies;
	uint32_t zones_empty, zones_open, zones_full;
	uint64_t records;          /* records seen by scanning zones */
	uint64_t keys;             /* keys in the rebuilt index */
	uint64_t bad_records;      /* indexed records that do not read back */
	uint32_t bad_zone_indexes; /* zone index unreadable or not matching records */
	uint32_t torn_tails;       /* open zones ending in a damaged record (crash) */
	uint32_t zones_unusable;   /* zoned: read-only or offline zones (never written again) */
	uint32_t zones_lost;       /* zoned: offline zones that held records */
	uint32_t zones_wp_mismatch; /* zoned: write pointer behind the data (reported, not written) */
	uint64_t damage;           /* problems that mean lost or corrupt data */
};
/* 0 when the check ran (see rep->damage), or an error that stopped it. */
int store_check(struct dev *dev, FILE *log, struct store_check_report *rep);

#endif
