/* store_scan.c - visit live records whose 64-bit key hash is in [lo, hi]
 * (anti-entropy and handoff use it per partition).
 *
 * The candidate locations come from index_walk() over the home buckets of
 * the range, taken when the scan starts; each is read and checked (checksum,
 * zone generation, hash in range, still indexed), so a record moved or
 * replaced meanwhile is skipped rather than returned stale. A record GC
 * moves while the scan runs gets its new location added (scan_note_move()),
 * so a key live throughout is never missed; it may be visited twice (the
 * same seq) if its old location was visited first. Records written after
 * the start may or may not be seen (a key replaced meanwhile may be seen
 * with neither record). One read is in flight at a time: a scan is
 * background work and must not crowd out requests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "store_int.h"

struct scan_state {
	uint64_t lo, hi;
	store_visit_fn visit;
	void (*finish)(void *arg, int err);
	void *arg;
	uint64_t *payloads;
	uint64_t count, cap, next;
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
		if (!n) {
			sc->err = -ENOMEM;
			return false;
		}
		sc->payloads = n;
		sc->cap = cap;
	}
	sc->payloads[sc->count++] = payload;
	return true;
}

static int scan_begin(struct store *s, uint64_t hash_lo, uint64_t hash_hi, store_visit_fn visit,
		      void (*finish)(void *arg, int err), void *arg, bool expired)
{
	if (s->scan)
		return -EBUSY;
	if (hash_lo > hash_hi)
		return -EINVAL;
	struct scan_state *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	*sc = (struct scan_state){.lo = hash_lo, .hi = hash_hi, .visit = visit, .finish = finish, .arg = arg,
				  .expired = expired};
	index_walk(s->index, hash_lo, hash_hi, collect, sc);
	s->scan = sc;
	return 0;
}

int store_scan(struct store *s, uint64_t hash_lo, uint64_t hash_hi, store_visit_fn visit,
	       void (*finish)(void *arg, int err), void *arg)
{
	return scan_begin(s, hash_lo, hash_hi, visit, finish, arg, false);
}

int store_scan_expired(struct store *s, uint64_t hash_lo, uint64_t hash_hi, store_visit_fn visit,
		       void (*finish)(void *arg, int err), void *arg)
{
	return scan_begin(s, hash_lo, hash_hi, visit, finish, arg, true);
}

static void scan_read_done(struct dev_req *req)
{
	struct scan_state *sc = req->ctx;
	sc->busy = false;
	sc->done_read = true;
}

static void scan_start_read(struct store *s, struct scan_state *sc, uint32_t bytes)
{
	uint64_t p = sc->payloads[sc->next];
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
	if (err == 0)
		sc->busy = true;
	else if (err != -EAGAIN) /* refused for now: scan_pump() reads it again */
		sc->err = err;
}

/* Check the record just read; visit it when it is a live record in range. */
static void scan_consume(struct store *s, struct scan_state *sc)
{
	uint64_t p = sc->payloads[sc->next];
	uint32_t in_block = (uint32_t)(pl_off(p) % DV_BLOCK_BYTES);
	struct rec_view r;
	uint32_t need = 0;
	int rc = sc->req.res < 0 ? sc->req.res : rec_decode(sc->buf + in_block, sc->buf_bytes - in_block, &r, &need);
	if (rc == -EAGAIN) {
		scan_start_read(s, sc, DV_ROUND_UP(in_block + need, DV_BLOCK_BYTES));
		return;
	}
	sc->next++;
	if (rc || r.type != REC_PUT || r.zone_gen != s->sb.zones[pl_zone(p)].gen)
		return; /* unreadable, tombstone or stale */
	uint64_t h = dv_key_hash64(r.key, r.key_len);
	if (h < sc->lo || h > sc->hi || !index_contains(s->index, h, p))
		return;
	if (!sc->expired && r.expire_ms && r.expire_ms <= store_clock_ms(s))
		return;
	struct store_record_out out = {.value = r.value, .val_len = r.val_len, .meta = r.meta,
				       .meta_len = r.meta_len, .seq = r.seq, .expire_ms = r.expire_ms};
	if (!sc->visit(sc->arg, r.key, r.key_len, &out))
		sc->stop = true;
}

void scan_note_move(struct store *s, uint64_t hash, uint64_t new_payload)
{
	struct scan_state *sc = s->scan;
	if (sc && hash >= sc->lo && hash <= sc->hi && !sc->stop && !sc->err)
		collect(sc, new_payload); /* on -ENOMEM the scan finishes with the error */
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
	if (sc->next < sc->count && !sc->stop && !sc->err) {
		uint32_t blocks = pl_blocks(sc->payloads[sc->next]);
		scan_start_read(s, sc, (blocks ? blocks : 1) * DV_BLOCK_BYTES);
		if (!sc->err)
			return; /* reading, or the ring was full: next poll retries */
	}
	s->scan = NULL;
	sc->finish(sc->arg, sc->err);
	dev_buf_free(sc->buf);
	free(sc->payloads);
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
	free(sc);
	s->scan = NULL;
}
