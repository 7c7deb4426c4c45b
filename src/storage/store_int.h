/* store_int.h - private to src/storage/store*.c. Nothing else includes it. */
#ifndef DV_STORE_INT_H
#define DV_STORE_INT_H

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "index/index.h"
#include "storage/layout.h"
#include "storage/record.h"
#include "storage/store.h"

/* Index payload (44 bits): [43 tomb][42..29 zone][28..5 off/16][4..0 blocks].
 * blocks = 4 KiB blocks the record spans from its first block, 0 when more
 * than 31 (read the header first). A payload names one record: unique. */
#define PL_BLOCKS_MAX 31u
#define NO_PAYLOAD UINT64_MAX
/* Largest record, rounded to whole blocks. */
#define STORE_RECORD_BYTES_MAX \
	DV_ROUND_UP(REC_HDR_BYTES + DV_KEY_BYTES_MAX + DV_META_BYTES_MAX + DV_VALUE_BYTES_MAX, DV_BLOCK_BYTES)

static inline uint64_t pl_make(bool tomb, uint32_t zone, uint64_t off, uint32_t size)
{
	DV_ASSERT(zone <= DV_ZONE_COUNT_MAX && off % DV_RECORD_ALIGN_BYTES == 0);
	DV_ASSERT(off / DV_RECORD_ALIGN_BYTES < (1u << 24));
	uint64_t blocks = (off % DV_BLOCK_BYTES + size + DV_BLOCK_BYTES - 1) / DV_BLOCK_BYTES;
	if (blocks > PL_BLOCKS_MAX)
		blocks = 0;
	return (uint64_t)tomb << 43 | (uint64_t)zone << 29 | (off / DV_RECORD_ALIGN_BYTES) << 5 | blocks;
}
static inline bool pl_tomb(uint64_t p) { return (p >> 43) & 1; }
static inline uint32_t pl_zone(uint64_t p) { return (uint32_t)(p >> 29) & 0x3fff; }
static inline uint64_t pl_off(uint64_t p) { return ((p >> 5) & 0xffffff) * DV_RECORD_ALIGN_BYTES; }
static inline uint32_t pl_blocks(uint64_t p) { return (uint32_t)(p & 31); }

enum op_state {
	OPS_NEW = 0,
	OPS_WAIT_KEY,  /* behind an earlier mutation of the same key hash */
	OPS_RESOLVE,   /* reading fingerprint candidates to find its own entry */
	OPS_QUEUED,    /* waiting for room in a batch */
	OPS_IN_BATCH,  /* record in a batch not yet durable */
	OPS_READ,      /* GET reading a candidate */
	OPS_FLUSH_WAIT, /* FLUSH waiting for the ops submitted before it */
	OPS_DEFERRED,  /* decided (refused or failed) behind an earlier write of its key
			* that is not done: completes after it (key_done) */
	OPS_DONE,
};

/* Lookups again after what an op looked up moved (GC), per op; then the op
 * fails with -EBUSY. Each one takes a whole collection during one read. */
#define READ_RETRIES_MAX 8u

/* Reads are not trusted one by one (dev.h allows transient read errors
 * and bits flipped in transit): recovery and GC retry a read error, and
 * count a structure that does not verify as damaged only once two reads in
 * a row return the same bytes (what the medium holds, not a flip on the
 * way), within STORE_READS_MAX reads. */
#define STORE_READS_MAX 8u

/* After read number read_no (from 0) of something that did not verify,
 * with digest the checksum of its bytes: whether it is damaged (agrees
 * with the previous read, or the reads ran out); else read it again. */
static inline bool reads_agree(uint64_t digest, uint64_t *prev, unsigned read_no)
{
	bool agree = read_no > 0 && digest == *prev;
	*prev = digest;
	return agree || read_no + 1 >= STORE_READS_MAX;
}

/* Collections given up on a zone before GC stops picking it. */
#define GC_FAILURES_MAX 3u

/* Empty zones user writes leave to GC: relocation always has room. */
#define GC_RESERVE_ZONES 1u

#define STORE_RELOC 100 /* internal op kind: GC relocation of one record */

enum batch_state { BATCH_FREE = 0, BATCH_FILLING, BATCH_WRITING, BATCH_WRITTEN };

struct op_queue {
	struct store_op *head, *tail;
};

struct batch {
	uint8_t *buf;
	uint32_t zone;
	uint64_t zone_off; /* block-aligned start in the zone */
	uint32_t used;
	uint8_t state;
	int32_t res;
	struct op_queue ops; /* records in the batch, in placement order */
	struct dev_req req;
	struct store *s;
};

/* What one live record of size bytes needs once GC relocates it: its bytes,
 * its entry in the new zone's index, and at most what its placement wastes
 * (a record over a block starts on a block boundary; smaller ones lose at
 * most REC_HDR_BYTES - 1 at the end of each block they cross). */
static inline uint64_t reloc_cost(uint32_t size)
{
	uint64_t waste = size > DV_BLOCK_BYTES ? DV_BLOCK_BYTES - DV_RECORD_ALIGN_BYTES
					       : ((uint64_t)size * (REC_HDR_BYTES - 1) + DV_BLOCK_BYTES - 1) / DV_BLOCK_BYTES;
	return size + ZIDX_ENTRY_BYTES + waste;
}

/* What recovery on a zoned device found wrong with a zone (dynvme check
 * names it): see zone_report_at_recovery(). */
enum { ZONE_ISSUE_NONE = 0, ZONE_ISSUE_READONLY, ZONE_ISSUE_OFFLINE, ZONE_ISSUE_WP_BEHIND, ZONE_ISSUE_SHRUNK };

struct zone_rt {
	uint64_t live_cost;  /* reloc_cost() of the records the index points at here */
	uint64_t rec_bytes;  /* bytes of all records appended (live or dead) */
	uint64_t rec_count;  /* records appended (live or dead) */
	uint32_t gc_failures; /* collections given up on this zone (read errors) */
	uint32_t damaged;     /* indexed records GC found damaged: not collected while > 0 */
	uint64_t wp;          /* open zone: next record offset */
	uint64_t open_version; /* sb version that made it OPEN durable */
	unsigned batches_in_flight;
	bool sealing;         /* no more records; footer pending */
	bool resetting;       /* collected: EMPTY once its reset is done */
	bool unusable;        /* the device says read-only or offline: never opened or reset */
	uint8_t dev_issue;    /* ZONE_ISSUE_*: what recovery found the device disagreeing with */
	struct zidx_entry *entries; /* records of a zone being written */
	uint32_t count, cap;
	uint64_t max_seq;
	uint64_t min_seq;     /* lowest seq of its records (UINT64_MAX: none) */
	uint64_t swept_seq;   /* the reclaim horizon its last sweep read it for (0: never) */
};

/* Records GC found damaged (the checksum fails twice) while the index
 * still held them. GC keeps them indexed, so a GET says -DV_ECORRUPT and
 * recovery cannot bring back an older version of the key from another
 * zone, and does not collect their zone until each is replaced by a newer
 * write of its key (or a restart, after which GC finds it again). The zone
 * index told GC whose record each one is (96 bits of the key hash), so a
 * write of that key can replace it. */
#define DAMAGED_MAX 1024u
struct damaged_rec {
	uint64_t payload;
	uint64_t hash_lo;
	uint32_t hash_hi; /* low 32 bits of the high half, as in the zone index */
	uint32_t size;
	uint64_t seq;
	bool tomb;
};

/* User writes applied lately, in apply order (which is seq order: seqs are
 * given at placement, batches and their records apply in placement order):
 * a GET that had to look up again (GC collected what it looked up) tells
 * from it whether the record it then finds was written by a write
 * submitted before it (a lower ticket). */
#define STORE_APPLIED_RING 16384u
struct applied_write {
	uint64_t seq, ticket;
};

/* GC relocations applied lately (old record -> its copy, each named by
 * payload and zone generation): a GET whose record's zone was collected
 * while its read was out follows its record to the copy instead of looking
 * up again (the key may have been rewritten since by a later write). */
#define STORE_MOVES_RING 4096u
struct moved_rec {
	uint64_t old_payload, new_payload;
	uint32_t old_gen, new_gen;
	uint32_t new_size; /* an expired value moves as a (smaller) tombstone */
};

#define KEYLOCK_BUCKETS 65536u
#define READ_BUFS 512u
#define READ_BUF_BYTES (2 * DV_BLOCK_BYTES) /* a small record spans at most 2 blocks */

struct gc_state;

/* Location memo (store_memo.c): index payload -> the full 128-bit key hash
 * and what a write needs of the record there, so a fingerprint candidate is
 * settled without a read. Entries carry a tag of the zone generation. */
#define MEMO_GEN_BITS 18u
struct memo_entry {
	uint64_t hash_lo, hash_hi;
	uint64_t loc;  /* payload | gen tag | valid | expires */
	uint64_t info; /* seq | size / 16 */
};
struct memo {
	struct memo_entry *e; /* NULL: no memo */
	uint64_t entries;     /* a power of two */
	unsigned shift;       /* 64 - log2(buckets of 4 entries) */
};
struct memo_hit {
	uint64_t hash_lo, hash_hi;
	uint64_t seq;
	uint32_t size;
	bool tomb;    /* a tombstone */
	bool expires; /* a PUT with expire_ms != 0 (not kept: read it to know) */
};

/* Where the superblock lives (store_sb.c): fixed copies, or a log in two
 * sequential zones of a zoned device without conventional room for it. */
struct sb_place {
	bool log;
	uint64_t log_off[2]; /* device offsets of the two log zones */
	uint64_t log_cap;    /* bytes each holds */
	unsigned cur;        /* log zone of the newest copy: takes the next one */
	uint64_t wp;         /* where the next copy goes in zone cur; log_cap: switch first */
};

struct store {
	struct dev *dev;
	struct store_config cfg;
	struct index *index;
	struct sb sb;
	struct zone_rt *zrt;
	bool failed;
	int fail_err;
	uint64_t next_seq;
	uint64_t next_ticket; /* store_submit() counter (store_op_priv.ticket) */
	struct applied_write applied[STORE_APPLIED_RING];
	uint32_t applied_head, applied_count; /* ring: oldest at head */
	struct moved_rec moves[STORE_MOVES_RING];
	uint32_t moves_next, moves_count; /* ring: next slot to write */
	unsigned pending;
	/* Submissions the device refused for now (-EAGAIN): the pumps keep the
	 * request and try again; io_retry asks store_poll() for another round. */
	bool io_retry;
	uint32_t submit_refusals; /* in a row with nothing in flight */

	/* Zone writer. */
	uint32_t active_zone, next_zone; /* UINT32_MAX = none */
	struct batch batches[DV_BATCHES_IN_FLIGHT_MAX + 1];
	unsigned batch_head, batch_count; /* ring of non-free batches in order */
	struct op_queue write_queue;      /* resolved mutations waiting for a batch */
	uint32_t zones_sealing;           /* zones with sealing set */
	/* Data zones that may be OPEN at once (the active zone, the next one,
	 * zones being sealed): the device's open and active limits less the
	 * superblock log's zone; UINT32_MAX = no limit. */
	uint32_t zones_open_budget;
	uint64_t index_epoch;             /* +1 on every index change by the store */
	uint32_t zones_free;              /* EMPTY and not resetting: zones_free_recount() */
	struct op_queue reloc_queue;      /* GC relocations waiting: placed first */

	/* Superblock writer. */
	struct sb_place sbp;
	uint8_t *sb_buf;
	struct dev_req sb_req;
	uint64_t sb_version_wanted, sb_version_durable, sb_version_writing;
	uint64_t open_stamp; /* sb_seq of the superblock write this open made durable (0: read-only) */
	bool sb_in_flight;

	/* Zone index (footer) writes for zones being sealed. */
	/* Zone index (footer) writes for zones being sealed. A slot never
	 * moves while its request is in flight (the device holds &req). */
	struct seal {
		struct store *owner;
		uint32_t zone;
		uint8_t *buf;
		uint32_t bytes;
		struct dev_req req;
		bool in_use, writing, written;
	} seals[4];
	unsigned seal_count; /* slots in use */

	/* Serialisation of mutations per 64-bit key hash. */
	struct store_op *keylock[KEYLOCK_BUCKETS];

	/* Read buffers for single-block reads. */
	uint8_t *rbuf_area;
	void *rbuf_free[READ_BUFS];
	unsigned rbuf_free_count;
	struct op_queue read_wait; /* ops waiting for a read buffer */
	struct op_queue ready;     /* ops ready to (re)start a step */
	struct op_queue completed; /* ops whose done() is due */

	struct memo memo;

	struct gc_state *gc;
	struct damaged_rec damaged[DAMAGED_MAX];
	uint32_t damaged_count;
	struct scan_state *scan;

	/* Flush (store_flush.c): the FLUSH op that is the barrier now (ops
	 * submitted after it wait in flush_held), the index it installs, and
	 * the newest durable flush point. */
	struct store_op *flush_op;
	struct op_queue flush_held;
	uint32_t flush_held_count;
	struct index *flush_index;
	uint64_t flush_seq;
	bool flush_indexed; /* the flush point record is in the index (not a key) */
	/* Reclaim (store_gc.c, store.h): the host's predicate and horizon;
	 * sweep_pending: some zone may still be due for a sweep. */
	store_dead_fn dead_fn;
	void *dead_ctx;
	uint64_t reclaim_seq;
	bool sweep_pending;
	bool draining; /* store_drain: no new background sweep starts */
	struct store_stats st;
};

/* The store's clock (store_config.now_ms) for every expiry decision. */
static inline uint64_t store_clock_ms(const struct store *s)
{
	return s->cfg.now_ms ? s->cfg.now_ms(s->cfg.clock_ctx) : store_now_ms();
}

/* store.c */
/* dev_submit() for the store: 0; -EAGAIN when the device refused for now
 * (keep the request, the pump that made it submits it again); or an error
 * that means the device is unusable (a device that keeps refusing with
 * nothing in flight, which no completion can cure, counts as one). */
int store_dev_submit(struct store *s, struct dev_req *req);
void store_complete(struct store *s, struct store_op *op, int result);
void store_fail(struct store *s, int err);
/* A user write of ticket with record seq applied (seqs only increase). */
void applied_note(struct store *s, uint64_t seq, uint64_t ticket);
/* GC moved the record at old_payload (zone generation old_gen) to
 * new_payload, and the index took the copy. */
void moved_note(struct store *s, uint64_t old_payload, uint32_t old_gen, uint64_t new_payload,
		uint32_t new_size);
void opq_push(struct op_queue *q, struct store_op *op);
void opq_push_front(struct op_queue *q, struct store_op *op);
struct store_op *opq_pop(struct op_queue *q);
/* A mutation (holding its key lock or queued behind an earlier write of
 * its key that went on early) is done with result: it completes now, and
 * hands the lock on, if it holds the lock; else it completes once the
 * writes of its key before it have (DEFERRED). */
void key_done(struct store *s, struct store_op *op, int result);
/* A user write was placed in a batch: the next write of its key may go on
 * now, behind it (keylock_go_on in store.c). */
void keylock_placed(struct store *s, struct store_op *op);
/* The op holding the key lock of hash (its waiters follow chain_next). */
struct store_op *keylock_holder(struct store *s, uint64_t hash);
/* Writes of hash that resolved old_payload as the key's record now see
 * new_payload (GC moved it). */
void keylock_fix_prev(struct store *s, uint64_t hash, uint64_t old_payload, uint64_t new_payload,
		      uint32_t new_size);
/* Zone index header of zone z is plausible for this store: generation,
 * data end before the footer, footer inside the zone. */
bool zidx_hdr_fits(const struct store *s, uint32_t z, const struct zidx_hdr *h);
void *rbuf_get(struct store *s, uint32_t bytes);
void rbuf_put(struct store *s, void *buf, uint32_t bytes);
uint64_t zone_base(const struct store *s, uint32_t zone);

/* store_sb.c */
/* Decide the superblock's placement from the device (before sb_load). */
int sb_place_init(struct store *s);
/* data_start of this device's layout (0: the fixed copies' default). */
uint64_t sb_front(const struct store *s);
/* The newest valid superblock into s->sb: 0; 1 when the device was
 * formatted (load again); -DV_EFORMAT, -DV_EVERSION, -DV_ECORRUPT, I/O. */
int sb_load(struct store *s);
int sb_format(struct store *s);
/* A superblock write is wanted (the RAM table changed). */
void sb_request(struct store *s);
/* Start the next superblock write if one is wanted and none is in flight. */
void sb_pump(struct store *s);
/* dynvme check: each copy (or log zone) described on log; valid ones. */
unsigned sb_check_copies(struct store *s, FILE *log);

/* store_write.c */
void write_enqueue(struct store *s, struct store_op *op);
void write_pump(struct store *s);
int writer_start(struct store *s);
void writer_stop(struct store *s);
void zone_add_entry(struct store *s, uint32_t zone, const struct zidx_entry *e);
/* A record of size bytes in zr left the index: its live cost goes. */
void zone_live_sub(struct zone_rt *zr, uint32_t size);
uint32_t zones_empty_count(const struct store *s);
uint32_t zones_free_recount(const struct store *s);
/* Bytes relocations can still place without freeing a zone: UINT64_MAX
 * when a fresh zone is theirs to take (it holds any victim worth a
 * collection: at most 15/16 of a zone relocated), else what the active
 * zone has left, less a record's worth. */
uint64_t reloc_room(const struct store *s);
/* Data zones OPEN now (the active and next zones, zones being sealed). */
uint32_t zones_open_count(const struct store *s);

/* store_recover.c */
/* dev_read_sync(), a read error retried up to STORE_READS_MAX times (for
 * the synchronous reads of recovery and superblock loading). */
int store_read_sync(struct store *s, uint64_t off, void *buf, uint32_t len);
int store_recover(struct store *s);
/* Records of zone z from its start into zrt[z].entries (unsorted). */
int scan_zone(struct store *s, uint32_t z, uint64_t *data_end, bool *torn);
/* Zone index of FULL zone z into zrt[z].entries; -DV_ECORRUPT if damaged. */
int read_zone_index(struct store *s, uint32_t z);

/* store_gc.c */
int gc_create(struct store *s);
void gc_destroy(struct store *s);
void gc_pump(struct store *s);
/* The collection's next step needs no completion: a gc_pump now would
 * take it (a sweep's next chunk, when nothing of the last one moved; the
 * next zone to sweep). store_poll runs another pass for it, so that a
 * collection on an idle store does not wait for the next wake-up. */
bool gc_can_step(const struct store *s);
void gc_reloc_done(struct store *s, struct store_op *op);
/* A relocation found no zone to go to: the collection stops once its
 * relocations in flight are done (the zone stays FULL, intact). */
void gc_reloc_stalled(struct store *s, struct store_op *op);
void gc_reloc_step(struct store *s, struct store_op *op);
bool zone_resetting(const struct store *s, uint32_t zone);
/* The damaged record GC kept at payload, or NULL. */
const struct damaged_rec *damaged_find(const struct store *s, uint64_t payload);
/* payload left the index (a write replaced it): forget it if damaged. */
void damaged_forget(struct store *s, uint64_t payload);

/* store_memo.c */
/* entries 0: no memo (memo_get always misses). */
int memo_create(struct memo *m, uint64_t entries);
void memo_destroy(struct memo *m);
/* Remember the record at payload, written or verified with zone generation
 * gen (the zone's current one): key hash, seq, on-disk size, expiry. */
void memo_put(struct memo *m, uint64_t payload, uint32_t gen, uint64_t hash_lo, uint64_t hash_hi,
	      uint64_t seq, uint32_t size, uint64_t expire_ms);
/* The record at payload, if remembered for zone generation gen. */
bool memo_get(const struct memo *m, uint64_t payload, uint32_t gen, struct memo_hit *out);
/* The index no longer holds payload (replaced, moved, dropped): free its
 * entry for live records. Only a matter of hit rate, never of correctness. */
void memo_forget(struct memo *m, uint64_t payload);
/* Call whenever a zone's generation changes. */
void memo_zone_gen_changed(struct memo *m, uint32_t zone, uint32_t new_gen);
/* Forget every entry (a flush: no record before it is indexed). */
void memo_clear(struct memo *m);
/* memo_put/memo_get with the zone's current generation. */
static inline void store_memo_put(struct store *s, uint64_t payload, uint64_t hash_lo, uint64_t hash_hi,
				  uint64_t seq, uint32_t size, uint64_t expire_ms)
{
	memo_put(&s->memo, payload, s->sb.zones[pl_zone(payload)].gen, hash_lo, hash_hi, seq, size, expire_ms);
}

/* store_flush.c */
/* The flush point record's key hash. */
struct dv_hash128 flush_key_hash(void);
bool flush_is_key(const void *key, uint32_t key_len);
/* store_submit: op waits behind a flush (queued as held): true. */
bool flush_hold(struct store *s, struct store_op *op);
/* op_step of a FLUSH op, and the pump that starts it once the ops before
 * it are done (poll_pass). */
void flush_step(struct store *s, struct store_op *op);
void flush_pump(struct store *s);
/* Its record is durable (batch apply): the flush takes effect. */
void flush_apply(struct store *s, struct store_op *op);
/* It failed (store failed, no zone): done with err, held ops go on. */
void flush_fail(struct store *s, struct store_op *op, int err);
void flush_destroy(struct store *s);

/* store_scan.c */
void scan_pump(struct store *s);
/* A user write of (64-bit) hash applied at new_payload: a running scan
 * reads that record too (the key's record when the scan started may be
 * gone by the time it is read). */
void store_scan_note_write(struct store *s, uint64_t hash, uint64_t new_payload);
/* A flush applied: nothing the scan collected before it is alive. */
void store_scan_note_flush(struct store *s);
/* GC moved a record of (64-bit) hash to new_payload: a running scan visits
 * it there (the old location it may hold is no longer indexed). */
void store_scan_note_move(struct store *s, uint64_t hash, uint64_t new_payload);
void scan_destroy(struct store *s);

#endif
