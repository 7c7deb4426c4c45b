/* store_scan.c - visit live records whose 64-bit key hash is in [lo, hi]
 * (SCAN, KEYS; anti-entropy and handoff use it per partition).
 *
 * The candidates are the index entries of the range when the scan starts
 * (index_walk over the home buckets of the range); each is read and checked
 * (checksum, zone generation, hash in range, still indexed), so a record
 * moved or replaced meanwhile is not returned from its old place. What
 * replaced or moved it is read instead: every user write and GC move of a
 * key in the range while the scan runs leaves a note (key hash -> the
 * location of its newest record, and that zone's generation), and the
 * notes are read after the candidates. So a key live for the whole scan is
 * always visited, whatever happens to it and around it:
 *   - unchanged: its candidate is read (GC moved it: the note of the move);
 *   - written (or moved) after the walk: its note is read; a note read
 *     whose record has since been replaced is still visited (it was the
 *     key's record during the scan), so a hot key cannot keep a scan
 *     running; a note whose record cannot be read any more (its zone was
 *     collected) was updated by that move or write before: read again.
 * A key may be visited twice (its candidate and a note). The notes of one
 * scan are bounded by the keys written in its range while it runs. A
 * flush (store_flush.c) drops every candidate and note taken before it:
 * those records are dead.
 * A candidate that cannot be read (EIO, checksum) while its zone still
 * holds what was indexed is read again, up to SCAN_READS_MAX reads; if it
 * still cannot, the scan goes on and finishes with -EIO: it may have
 * missed that key, and a caller that must not (the cluster's SCAN) asks
 * another replica.
 * One read is in flight at a time: a scan is background work and must
 * not crowd out requests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "store_int.h"

/* Re-reads of one note whose record went (its zone collected) before the
 * scan gives it up: each one needs a whole zone collected during a read. */
#define NOTE_CHASES_MAX 64u
#define SCAN_READS_MAX 4u /* reads of one candidate, re-reads and longer reads included */

struct note {
	uint64_t hash;    /* 0 with payload 0: an empty slot */
	uint64_t payload; /* newest record of the key written or moved during the scan */
	uint32_t gen;     /* its zone's generation then */
	uint8_t chases;
	bool done;        /* read: later writes of the key need no note */
	bool used;
};

struct scan_state {
	struct store *s;
	uint64_t lo, hi;
	store_visit_fn visit;
	void (*finish)(void *arg, int err);
	void *arg;
	uint64_t *payloads;       /* candidates from the walk */
	uint32_t *gens;           /* the zone generation of each candidate when taken */
	uint64_t count, cap, next;
	unsigned reads;           /* of the candidate sc->next */
	uint64_t unreadable;      /* candidates given up on while their zone held them */
	/* Notes: an open-addressed table by hash (a power of two, at most
	 * half full) and the order they were made in (slots). */
	struct note *notes;
	uint64_t notes_cap, notes_used;
	uint64_t *order;          /* slot numbers, in order */
	uint64_t order_len, order_cap, order_next;
	uint64_t reading_note;    /* slot of the note being read, or UINT64_MAX */
	uint64_t reading_payload;
	uint8_t *buf;
	uint32_t buf_bytes;
	struct dev_req req;
	bool busy, done_read, stop;
	bool expired; /* visit expired records too (store_scan_expired) */
	int err;
};

static bool collect(void *arg, uint64_t payload)
{
	struct scan_state *sc = arg;
	if (sc->count == sc->cap) {
		uint64_t cap = sc->cap ? sc->cap * 2 : 1024;
		uint64_t *n = realloc(sc->payloads, cap * sizeof(*n));
		if (n)
			sc->payloads = n;
		uint32_t *g = n ? realloc(sc->gens, cap * sizeof(*g)) : NULL;
		if (!g) {
			sc->err = -ENOMEM;
			return false;
		}
		sc->gens = g;
		sc->cap = cap;
	}
	sc->gens[sc->count] = sc->s->sb.zones[pl_zone(payload)].gen;
	sc->payloads[sc->count++] = payload;
	return true;
}

struct walk_count {
	uint64_t n, max;
};

static bool count_entry(void *arg, uint64_t payload)
{
	struct walk_count *wc = arg;
	(void)payload;
	return ++wc->n <= wc->max;
}

/* The range an index fingerprint group spans: a bounded scan never needs
 * to be narrower (the index keeps at most 16 keys in one). */
#define SCAN_RANGE_MIN (1ull << 33)

/* store_scan_bounded, and with expired the PUTs that have expired too
 * (store_scan_expired): one scan, the same candidates and notes. */
static int scan_begin(struct store *s, uint64_t hash_lo, uint64_t *hash_hi, uint32_t max_entries,
		      store_visit_fn visit, void (*finish)(void *arg, int err), void *arg, bool expired)
{
	if (s->scan)
		return -EBUSY;
	if (hash_lo > *hash_hi)
		return -EINVAL;
	uint64_t hi = *hash_hi;
	for (unsigned i = 0; max_entries && i < 64 && hi - hash_lo >= SCAN_RANGE_MIN; i++) {
		struct walk_count wc = {.max = max_entries};
		index_walk(s->index, hash_lo, hi, count_entry, &wc);
		if (wc.n <= max_entries)
			break;
		hi = hash_lo + (hi - hash_lo) / 2;
	}
	struct scan_state *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	*sc = (struct scan_state){.lo = hash_lo, .hi = hi, .visit = visit, .finish = finish, .arg = arg,
				  .reading_note = UINT64_MAX, .s = s, .expired = expired};
	index_walk(s->index, hash_lo, hi, collect, sc);
	s->scan = sc;
	*hash_hi = hi;
	return 0;
}

int store_scan_bounded(struct store *s, uint64_t hash_lo, uint64_t *hash_hi, uint32_t max_entries,
		       store_visit_fn visit, void (*finish)(void *arg, int err), void *arg)
{
	return scan_begin(s, hash_lo, hash_hi, max_entries, visit, finish, arg, false);
}

int store_scan_expired(struct store *s, uint64_t hash_lo, uint64_t hash_hi, store_visit_fn visit,
		       void (*finish)(void *arg, int err), void *arg)
{
	return scan_begin(s, hash_lo, &hash_hi, 0, visit, finish, arg, true);
}

bool store_scanning(const struct store *s) { return s->scan != NULL; }

int store_scan(struct store *s, uint64_t hash_lo, uint64_t hash_hi, store_visit_fn visit,
	       void (*finish)(void *arg, int err), void *arg)
{
	return store_scan_bounded(s, hash_lo, &hash_hi, 0, visit, finish, arg);
}

/* ---- notes ---- */

static uint64_t note_slot_of(const struct scan_state *sc, uint64_t hash)
{
	uint64_t mask = sc->notes_cap - 1;
	uint64_t i = (hash * 0x9E3779B97F4A7C15ull) >> 32 & mask;
	for (uint64_t probe = 0; sc->notes[i].used && sc->notes[i].hash != hash; probe++) {
		DV_ASSERT(probe < sc->notes_cap); /* at most half full */
		i = (i + 1) & mask;
	}
	return i;
}

static int notes_grow(struct scan_state *sc)
{
	uint64_t cap = sc->notes_cap ? sc->notes_cap * 2 : 64;
	struct note *old = sc->notes;
	uint64_t old_cap = sc->notes_cap;
	uint64_t *order = malloc(cap / 2 * sizeof(*order));
	sc->notes = calloc(cap, sizeof(*sc->notes));
	if (!sc->notes || !order) {
		free(sc->notes);
		free(order);
		sc->notes = old;
		return -ENOMEM;
	}
	sc->notes_cap = cap;
	/* Slots move: the order is rebuilt from the old one. */
	uint64_t len = 0, reading = UINT64_MAX;
	for (uint64_t k = 0; k < sc->order_len; k++) {
		const struct note *n = &old[sc->order[k]];
		uint64_t j = note_slot_of(sc, n->hash);
		sc->notes[j] = *n;
		order[len++] = j;
		if (sc->reading_note == sc->order[k])
			reading = j;
	}
	DV_ASSERT(len == sc->order_len && old_cap / 2 <= cap / 2);
	DV_ASSERT((sc->reading_note == UINT64_MAX) == (reading == UINT64_MAX));
	sc->reading_note = reading;
	free(old);
	free(sc->order);
	sc->order = order;
	sc->order_cap = cap / 2;
	return 0;
}

static void note(struct store *s, uint64_t hash, uint64_t payload)
{
	struct scan_state *sc = s->scan;
	if (!sc || hash < sc->lo || hash > sc->hi || sc->stop || sc->err)
		return;
	if (sc->notes_used + 1 > sc->notes_cap / 2 && notes_grow(sc)) {
		sc->err = -ENOMEM; /* the scan finishes with the error */
		return;
	}
	uint64_t i = note_slot_of(sc, hash);
	struct note *n = &sc->notes[i];
	uint32_t gen = s->sb.zones[pl_zone(payload)].gen;
	if (n->used) {
		if (!n->done) { /* not read yet: the newest record is what to read */
			n->payload = payload;
			n->gen = gen;
		}
		return;
	}
	*n = (struct note){.hash = hash, .payload = payload, .gen = gen, .used = true};
	sc->notes_used++;
	DV_ASSERT(sc->order_len < sc->order_cap);
	sc->order[sc->order_len++] = i;
}

void store_scan_note_move(struct store *s, uint64_t hash, uint64_t new_payload) { note(s, hash, new_payload); }

void store_scan_note_write(struct store *s, uint64_t hash, uint64_t new_payload) { note(s, hash, new_payload); }

void store_scan_note_flush(struct store *s)
{
	struct scan_state *sc = s->scan;
	if (!sc)
		return;
	sc->next = sc->count; /* every candidate is dead */
	for (uint64_t k = sc->order_next; k < sc->order_len; k++)
		sc->notes[sc->order[k]].done = true;
	sc->order_next = sc->order_len;
	if (sc->reading_note != UINT64_MAX)
		sc->notes[sc->reading_note].done = true;
}

/* ---- reads ---- */
static void scan_read_done(struct dev_req *req)
{
	struct scan_state *sc = req->ctx;
	sc->busy = false;
	sc->done_read = true;
}

static void scan_start_read(struct store *s, struct scan_state *sc, uint64_t p, uint32_t bytes)
{
	dev_buf_free(sc->buf);
	sc->buf = dev_buf_alloc(bytes);
	if (!sc->buf) {
		sc->err = -ENOMEM;
		return;
	}
	sc->buf_bytes = bytes;
	sc->req = (struct dev_req){.op = DEV_READ, .len = bytes,
				   .off = zone_base(s, pl_zone(p)) + pl_off(p) / DV_BLOCK_BYTES * DV_BLOCK_BYTES,
				   .buf = sc->buf, .done = scan_read_done, .ctx = sc};
	int err = store_dev_submit(s, &sc->req);
	if (err == 0) {
		sc->busy = true;
		sc->reads++;
	} else if (err != -EAGAIN) /* refused for now: scan_pump() reads it again */
		sc->err = err;
}

static uint32_t first_read_bytes(uint64_t p)
{
	uint32_t blocks = pl_blocks(p);
	return (blocks ? blocks : 1) * DV_BLOCK_BYTES;
}

/* The location being read now: a candidate, or the note being read. */
static uint64_t reading_payload(const struct scan_state *sc)
{
	return sc->reading_note != UINT64_MAX ? sc->reading_payload : sc->payloads[sc->next];
}

/* A PUT not expired now (or expired too, for store_scan_expired), not the
 * store's own record. */
static bool rec_live(struct store *s, const struct scan_state *sc, const struct rec_view *r)
{
	return r->type == REC_PUT && (sc->expired || r->expire_ms == 0 || r->expire_ms > store_clock_ms(s)) &&
	       !flush_is_key(r->key, r->key_len);
}

static void visit(struct store *s, struct scan_state *sc, const struct rec_view *r)
{
	struct store_record_out out = {.value = r->value, .val_len = r->val_len, .meta = r->meta,
				       .meta_len = r->meta_len, .seq = r->seq, .expire_ms = r->expire_ms};
	if (!sc->visit(sc->arg, r->key, r->key_len, &out))
		sc->stop = true;
}

/* A candidate was read: visited when it is a live record in range that
 * the index still holds (if not, what replaced or moved it left a note). */
static void consume_candidate(struct store *s, struct scan_state *sc, int rc, const struct rec_view *r)
{
	uint64_t p = sc->payloads[sc->next];
	bool same_zone = s->sb.zones[pl_zone(p)].gen == sc->gens[sc->next];
	sc->next++;
	sc->reads = 0;
	if (rc && same_zone)
		sc->unreadable++; /* finish reports it: the key may be missed */
	if (rc || r->type != REC_PUT || r->zone_gen != s->sb.zones[pl_zone(p)].gen)
		return; /* unreadable, tombstone or stale */
	uint64_t h = dv_key_hash64(r->key, r->key_len);
	if (h >= sc->lo && h <= sc->hi && index_contains(s->index, h, p) && rec_live(s, sc, r))
		visit(s, sc, r);
}

/* A note was read. Its record is the key's (its zone generation is the
 * one noted): visited when live, even if replaced since (it was the key's
 * record during the scan). Its zone was collected, or its record is not
 * live (deleted, expired), and the key was written or moved again since
 * the read started: the note is read again at its newest record (bounded;
 * a collected zone means such a move or write happened). */
static void consume_note(struct store *s, struct scan_state *sc, int rc, const struct rec_view *r)
{
	struct note *n = &sc->notes[sc->reading_note];
	sc->reading_note = UINT64_MAX;
	if (n->done)
		return; /* a flush came meanwhile */
	bool ours = rc == 0 && r->zone_gen == n->gen && r->type != REC_PAD &&
		    dv_key_hash64(r->key, r->key_len) == n->hash;
	if (ours && rec_live(s, sc, r)) {
		n->done = true;
		visit(s, sc, r);
		return;
	}
	if (n->payload != sc->reading_payload && n->chases++ < NOTE_CHASES_MAX) {
		sc->order_next--; /* the same note again, at its newest record */
		return;
	}
	n->done = true;
}

static void scan_consume(struct store *s, struct scan_state *sc)
{
	if (sc->reading_note == UINT64_MAX && sc->next >= sc->count)
		return; /* a flush dropped every candidate, the one read included */
	uint64_t p = reading_payload(sc);
	uint32_t in_block = (uint32_t)(pl_off(p) % DV_BLOCK_BYTES);
	struct rec_view r;
	uint32_t need = 0;
	int rc = sc->req.res < 0 ? sc->req.res : rec_decode(sc->buf + in_block, sc->buf_bytes - in_block, &r, &need);
	bool candidate = sc->reading_note == UINT64_MAX;
	if (rc == -EAGAIN && pl_off(p) + need <= s->sb.zone_bytes && (!candidate || sc->reads < SCAN_READS_MAX)) {
		scan_start_read(s, sc, p, DV_ROUND_UP(in_block + need, DV_BLOCK_BYTES));
		return;
	}
	/* A candidate still in the zone it was indexed in (not reset since)
	 * that fails to read: a fault of the device, not a record gone. */
	if (rc && candidate && s->sb.zones[pl_zone(p)].gen == sc->gens[sc->next] && sc->reads < SCAN_READS_MAX) {
		scan_start_read(s, sc, p, first_read_bytes(p));
		return;
	}
	if (!candidate)
		consume_note(s, sc, rc, &r);
	else
		consume_candidate(s, sc, rc, &r);
}

/* Start the next read: candidates first, then the notes in order. False
 * when nothing is left. */
static bool scan_next_read(struct store *s, struct scan_state *sc)
{
	if (sc->next < sc->count) {
		scan_start_read(s, sc, sc->payloads[sc->next], first_read_bytes(sc->payloads[sc->next]));
		return true;
	}
	while (sc->order_next < sc->order_len) {
		uint64_t slot = sc->order[sc->order_next++];
		struct note *n = &sc->notes[slot];
		if (n->done)
			continue;
		sc->reading_note = slot;
		sc->reading_payload = n->payload;
		scan_start_read(s, sc, n->payload, first_read_bytes(n->payload));
		return true;
	}
	return false;
}

void scan_pump(struct store *s)
{
	struct scan_state *sc = s->scan;
	if (!sc || sc->busy)
		return;
	if (sc->done_read) {
		sc->done_read = false;
		scan_consume(s, sc);
		if (sc->busy)
			return;
	}
	if (!sc->stop && !sc->err) {
		/* A read refused for now (-EAGAIN) is started again here: the
		 * place being read was not consumed. */
		if (sc->reading_note != UINT64_MAX) {
			scan_start_read(s, sc, sc->reading_payload, first_read_bytes(sc->reading_payload));
			if (!sc->err)
				return;
		} else if (scan_next_read(s, sc) && !sc->err) {
			return; /* reading, or the ring was full: next poll retries */
		}
	}
	s->scan = NULL;
	sc->finish(sc->arg, sc->err ? sc->err : sc->unreadable ? -EIO : 0);
	dev_buf_free(sc->buf);
	free(sc->payloads);
	free(sc->gens);
	free(sc->notes);
	free(sc->order);
	free(sc);
}

void scan_destroy(struct store *s)
{
	struct scan_state *sc = s->scan;
	if (!sc)
		return;
	DV_ASSERT(!sc->busy);
	dev_buf_free(sc->buf);
	free(sc->payloads);
	free(sc->gens);
	free(sc->notes);
	free(sc->order);
	free(sc);
	s->scan = NULL;
}
