/* simcheck.h - the simulator's checker: judges a run from its clients'
 * history alone (TigerBeetle's state checker, for a Dynamo store).
 *
 * The history is every client operation: who (client, node), on what
 * (keyspace, key), when (submit and completion in global virtual ms), its
 * outcome, and for reads the values returned. Every value ever written is
 * unique and names its write: a value is the id of the op that wrote it. A
 * context write (DYN_PUT, DYN_DEL) names the read whose context it carried,
 * so the checker knows which values that write superseded.
 *
 * Times are whole virtual ms and several events share one: "a before b"
 * in what a rule requires (a write acknowledged before a read started) is
 * strict, in what it excuses (a DEL submitted before a read ended, "may
 * have applied") includes the same ms.
 *
 * Outcomes: OK (acknowledged), FAILED (refused before anything was written:
 * never applied), INDET (timed out or cancelled: may or may not have been
 * applied). A write with a garbage or foreign context must be refused.
 *
 * Coverage. "x covers v" means x's causal context includes v's dot, so x
 * supersedes v (a DEL too). Exactly known for context writes: x covers the
 * values its read returned and, transitively, what those covered. A plain
 * SET/DEL reads the key's context itself, so the checker only bounds it:
 * it surely covers every write acknowledged before it started (when its
 * read quorum meets that write's: r + w > n), and possibly covers any write
 * submitted before it completed. DEF* is the closure of sure coverage,
 * POS* that of possible coverage. Writes never applied (FAILED, bad
 * context, a plain DEL that found nothing to delete) cover nothing and are
 * covered by nothing.
 *
 * Rules (siblings keyspaces; (b) and (c) for pairs with r + w > n: there is
 * no sloppy quorum, so a read quorum meets every write quorum):
 *  (a) lost: every acknowledged value write is in the final reads of its
 *      key, or in POS* of some write that may have been applied.
 *  (b) stale: a DYN_GET that starts after a value write's acknowledgement
 *      returns it or a value whose POS* holds it, or a DEL submitted before
 *      the read ended has it in POS*. A plain GET returns the newest
 *      visible sibling (add-wins), so "not found" means no visible value:
 *      it is held to the same rule as a DYN_GET that returned nothing, and
 *      so is a plain DEL that found nothing.
 *  (c) resurrection: no read returns a value in DEF* of a write
 *      acknowledged before the read started.
 *  (d) convergence: the final reads of a key (one per node, after healing
 *      and read repair) all succeeded and returned the same values.
 *  (e) validity (every keyspace): every value read is a value write of the
 *      same key, submitted before the read ended and not refused; a read
 *      lists each value once; a write with a bad context was refused.
 * Flushes: a FLUSHDB/FLUSHALL is recorded as one SC_FLUSH op per key of its
 * keyspaces, r = w = n: a DEL of every key that surely covers each write
 * acknowledged before it started and possibly any submitted before it
 * ended (an indeterminate one: before its kill_until, as a node it missed
 * applies it when it learns it, to what it stored up to the flush's stamp
 * bound), so (a) and (b) excuse what it may have killed and (c) holds it to
 * "no key written before an acknowledged flush is read after it" (in LWW
 * keyspaces too: flush coverage is the one rule (c) applies there).
 * Counters (SC_INCR, SC_CGET on keys of their own):
 *  (k) a counter read r (the first final one; during the run too when (b)
 *      is judged) lies within [lo, hi]: every INCR that may have applied
 *      and was submitted before r ended counts, but one surely killed (it
 *      was acknowledged before an acknowledged flush started, that flush
 *      acknowledged before r started); it counts surely (into lo and hi)
 *      when acknowledged before r started at a W that r's R meets (R + W >
 *      N, and W >= lost_min_w) and no flush submitted before r ended may
 *      have killed it (it was submitted before the flush's effect ended);
 *      else its delta moves only its sign's side (negative into lo,
 *      positive into hi). "not found" is 0; (d) holds the final reads to
 *      one value. So an increment lost or counted twice after the
 *      replicas met is caught, as is a flushed one back.
 * Scans (SC_SCAN: one op per key for a whole scan, from its first page to
 *  its last; found = the key was returned):
 *  (s) a key is returned when some write of it (a value write, or an INCR)
 *      was acknowledged before the scan started, at W >= the keyspace's W
 *      (the scan reads N - W + 1 replicas a page), its value not one that
 *      may expire by the scan's end, and no op submitted before the scan
 *      ended may have hidden it: a flush whose effect ended after the
 *      write was submitted; a DEL, DYN_DEL or write with an expiry that
 *      may supersede it: in an LWW keyspace any (clock skew), in a
 *      siblings one (add-wins: an op supersedes what its context covers)
 *      a DYN_PUT/DYN_DEL submitted after it or a plain SET/DEL not
 *      acknowledged before it was submitted;
 *  (e) a key returned had a write (or INCR) submitted before the scan
 *      ended that was not refused.
 * Expiry: a value with an expiry may be missing from any read that ends
 * after its expire_lo (so (a) and (b) excuse it; once expired it hides
 * what it covers, as a DEL does; a plain GET's "not found" may be its
 * pick), and no read that starts after its expire_hi may return it ((e)).
 * LWW keyspaces drop concurrent (and, under clock skew, even sequential)
 * writes by design: only (d), (e), (s) and the flush part of (c) apply to
 * them. A fault mix that
 * breaks a rule's premise (a disk that loses acknowledged writes) switches
 * that rule off through simcheck_config.skip (or, for one lost replica,
 * limits (a) to writes acknowledged by two: lost_min_w).
 *
 * simcheck_run prints each violation (rule, the ops involved, the history
 * of that key around them, and the replay command given) and returns how
 * many there were. Bounds: SIMCHECK_OPS_MAX ops, SIMCHECK_VALUES_MAX values
 * a read; the history is allocated as it grows (test code).
 */
#ifndef DV_SIM_SIMCHECK_H
#define DV_SIM_SIMCHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SIMCHECK_OPS_MAX (1u << 20)
#define SIMCHECK_VALUES_MAX 64u
#define SIMCHECK_KEYSPACES_MAX 16u
#define SIMCHECK_CLIENT_FINAL 0xffffu /* the harness's convergence reads */
#define SIMCHECK_VALUE_UNKNOWN UINT32_MAX /* a value that names no write */

enum simcheck_kind {
	SC_GET = 1, SC_SET, SC_DEL, SC_DYN_GET, SC_DYN_PUT, SC_DYN_DEL,
	SC_INCR,  /* a counter key: delta */
	SC_CGET,  /* a plain GET of a counter key: found, counter */
	SC_FLUSH, /* one per key of a flushed keyspace (r = w = n) */
	SC_SCAN,  /* one per key of a whole scan: found */
};
enum simcheck_outcome { SC_PENDING = 0, SC_OK, SC_FAILED, SC_INDET };
enum simcheck_ctx { SC_CTX_EMPTY = 0, SC_CTX_READ, SC_CTX_BAD };

/* Rules, for simcheck_config.skip and the report. */
#define SIMCHECK_LOST 1u
#define SIMCHECK_STALE 2u
#define SIMCHECK_RESURRECT 4u
#define SIMCHECK_CONVERGE 8u
#define SIMCHECK_VALID 16u
#define SIMCHECK_COUNTER 32u
#define SIMCHECK_SCAN 64u

struct simcheck_keyspace {
	bool defined;
	uint8_t n;      /* replicas */
	uint8_t w;      /* the keyspace's W: a scan reads N - W + 1 replicas a page */
	bool lww;       /* DVV_LWW policy */
};

struct simcheck_config {
	struct simcheck_keyspace ks[SIMCHECK_KEYSPACES_MAX];
	unsigned skip;        /* SIMCHECK_* rules switched off for this fault mix */
	uint8_t lost_min_w;   /* (a) and (k) only for writes acknowledged at W >= this (0: all) */
	/* Plain SETs may be checked writes (no read first: node.h, Checked
	 * writes). One not acknowledged may be stored with a clock of its
	 * coordinator's copy alone, so it supersedes only what that copy
	 * held: it surely covers the writes acknowledged before it began only
	 * once it is acknowledged itself (its confirmations are its read). */
	bool checked_sets;
	const char *replay;   /* printed with every violation */
	unsigned print_max;   /* violations printed in full; 0 = 5 */
};

struct simcheck_op {
	/* Set by the caller at simcheck_begin. */
	uint16_t client, node;
	uint8_t keyspace;
	uint8_t kind;       /* enum simcheck_kind */
	uint8_t r, w;       /* the quorums the op ran with (plain SET/DEL use both) */
	uint32_t key;       /* the harness's key number */
	uint64_t submit_ms;
	uint8_t ctx;        /* DYN_PUT, DYN_DEL: enum simcheck_ctx */
	uint32_t ctx_read;  /* SC_CTX_READ: id of the DYN_GET (same key) it came from */
	int64_t delta;      /* SC_INCR */
	bool expires;       /* SET, DYN_PUT with an expiry: from expire_lo on (global ms)
			     * some node's clock may call it expired, after expire_hi
			     * every node's does */
	uint64_t expire_lo, expire_hi;
	/* Set by simcheck_end. */
	uint64_t done_ms;
	uint8_t outcome;    /* enum simcheck_outcome */
	int err;            /* the raw result, for the report */
	uint32_t nvals;     /* reads: values returned (plain GET: 0 or 1) */
	uint32_t vals_at;   /* into the checker's value pool */
	bool noop;          /* simcheck_noop: completed without writing */
	bool found;         /* SC_CGET, SC_SCAN (simcheck_found) */
	int64_t counter;    /* SC_CGET: the value read */
	uint64_t kill_until_ms; /* SC_FLUSH: may kill writes submitted before this (0: done_ms) */
};

struct simcheck;

/* NULL on allocation failure. The config is copied (replay is kept as a
 * pointer). */
struct simcheck *simcheck_create(const struct simcheck_config *cfg);
void simcheck_destroy(struct simcheck *c);
/* Appends an op (fields of the first group); returns its id, which is also
 * the id of the value it writes. */
uint32_t simcheck_begin(struct simcheck *c, const struct simcheck_op *op);
/* Completes op id. vals: value ids a read returned (nvals <=
 * SIMCHECK_VALUES_MAX; SIMCHECK_VALUE_UNKNOWN for bytes that name no
 * write). */
void simcheck_end(struct simcheck *c, uint32_t id, uint64_t done_ms, enum simcheck_outcome outcome, int err,
		  const uint32_t *vals, uint32_t nvals);
/* A plain DEL that completed without writing: its read found nothing live
 * (the pick was absent or a tombstone). It covers nothing, and is judged
 * like a plain GET that found nothing. */
void simcheck_noop(struct simcheck *c, uint32_t id);
/* An SC_FLUSH that did not complete may still kill writes submitted up to t. */
void simcheck_kill_until(struct simcheck *c, uint32_t id, uint64_t t);
/* SC_CGET (found, value) and SC_SCAN (found) results, after simcheck_end. */
void simcheck_found(struct simcheck *c, uint32_t id, bool found, int64_t counter);
const struct simcheck_op *simcheck_get(const struct simcheck *c, uint32_t id);
const uint32_t *simcheck_vals(const struct simcheck *c, const struct simcheck_op *op);
uint32_t simcheck_count(const struct simcheck *c);
/* Checks every rule not skipped; prints violations to out. Ops still
 * pending count as INDET. Returns the number of violations. */
unsigned simcheck_run(struct simcheck *c, FILE *out);
/* Violations of the last run per rule (index: bit number of SIMCHECK_*). */
unsigned simcheck_violations(const struct simcheck *c, unsigned rule);
/* One line describing an op (for traces). */
void simcheck_print_op(const struct simcheck *c, FILE *out, uint32_t id);

#endif
