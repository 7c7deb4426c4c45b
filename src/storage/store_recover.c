/* store_recover.c - crash recovery (the superblock itself: store_sb.c).
 *
 * Recovery procedure (store_recover):
 * 1. Load the superblock (store_sb.c: the newest valid copy, fixed copies or
 *    the log of a zoned device). None valid: format if the device holds no
 *    dynvme magic, is empty where a superblock goes (sb_area_empty) and the
 *    caller allows it; refuse otherwise (never format over damage, over
 *    another program's data, nor over a device of another format version).
 * 2. Zoned devices: each zone's condition and write pointer from the device
 *    against the superblock (zone_report_at_recovery): read-only, offline,
 *    shrunk zones and write pointers behind the data are counted and never
 *    written over; zones full in the superblock but still open on the device
 *    are finished; EMPTY zones holding data are reset.
 * 3. FULL zones: read the zone index (a run sorted by key hash). A damaged
 *    zone index is replaced by a scan of the zone's records.
 * 4. OPEN zones (after every FULL zone's run is loaded): scan records from
 *    the zone start while they verify and carry the zone's generation; the
 *    first bad one ends the zone (a torn tail). Seal the zone there: its
 *    zone index (at the device's write pointer on a zoned device, or the
 *    one a crash left right after the records), then FULL and finished.
 *    Later writes go to fresh zones, so bytes past the cut are never read
 *    again. An open zone with no record, or with only GC's copies of
 *    records a FULL zone still holds (a collection cut short:
 *    zone_redundant), is reset and returned to EMPTY.
 * Recovery trusts no single read (store_int.h, STORE_READS_MAX): read
 * errors are retried (store_read_sync), and a superblock copy, zone index
 * or record that does not verify counts as damaged only once two reads in
 * a row agree on its bytes.
 * 5. Merge all runs by (hash128, seq); per key the highest seq wins and
 *    goes into the index (tombstones included); live cost per zone follows.
 * 6. next_seq = highest seq seen + 1.
 * 7. (writable opens) One superblock write made durable, whether or not
 *    recovery changed anything: its sb_seq is the open's stamp
 *    (store_open_stamp, stamp_open). Recovery writes nothing into a data
 *    zone but the zone indexes of step 4, whose room the zone kept
 *    (invariant 4), so an open needs no empty zone.
 * A flush point (store_flush.c) is the seq of the newest record of the
 * store's own key; it is found in the runs by its hash before the merge,
 * and every key whose newest record is below it is dead (not installed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"
#include "store_int.h"

#define SCAN_CHUNK_BYTES (4u << 20)

struct run {
	struct zidx_entry *e;
	uint32_t count, pos, zone;
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int store_read_sync(struct store *s, uint64_t off, void *buf, uint32_t len)
{
	int err = -EIO;
	for (unsigned i = 0; i < STORE_READS_MAX && err == -EIO; i++)
		err = dev_read_sync(s->dev, off, buf, len);
	return err;
}

/* Scan a zone's records from its start. Entries go to zr->entries. The
 * first record that does not verify ends the zone, once two reads in a row
 * agree on it (reads_agree): a flip in transit must not cut acknowledged
 * records off. */
int scan_zone(struct store *s, uint32_t z, uint64_t *data_end, bool *torn)
{
	uint64_t zb = s->sb.zone_cap, p = 0, buf_off = 0, buf_len = 0;
	uint32_t chunk = zb < SCAN_CHUNK_BYTES ? (uint32_t)zb : SCAN_CHUNK_BYTES; /* small zones: no 4 MiB each */
	uint8_t *buf = dev_buf_alloc(chunk);
	if (!buf)
		return -ENOMEM;
	int err = 0;
	unsigned rereads = 0; /* of the record at p */
	uint64_t prev = 0;
	*torn = false;
	for (uint64_t guard = 0; guard < zb / REC_HDR_BYTES + 3; guard++) {
		p = rec_next_start(p, DV_BLOCK_BYTES);
		if (p + REC_HDR_BYTES > zb)
			break;
		if (p + STORE_RECORD_BYTES_MAX > buf_off + buf_len && buf_off + buf_len < zb) {
			buf_off = p / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
			buf_len = zb - buf_off < chunk ? zb - buf_off : chunk;
			if ((err = store_read_sync(s, zone_base(s, z) + buf_off, buf, (uint32_t)buf_len)))
				break;
		}
		struct rec_view r;
		const uint8_t *src = buf + (p - buf_off);
		int rc = rec_decode(src, (uint32_t)(buf_off + buf_len - p), &r, NULL);
		if (rc || r.zone_gen != s->sb.zones[z].gen) {
			static const uint8_t zero[REC_HDR_BYTES];
			if (rc != 0 && memcmp(src, zero, REC_HDR_BYTES) != 0 &&
			    !reads_agree(dv_checksum64(buf, buf_len), &prev, rereads++)) {
				/* the same record again, from the device */
				if ((err = store_read_sync(s, zone_base(s, z) + buf_off, buf, (uint32_t)buf_len)))
					break;
				continue;
			}
			*torn = rc != 0 && memcmp(src, zero, REC_HDR_BYTES) != 0;
			break;
		}
		rereads = 0;
		if (r.type != REC_PAD) {
			struct dv_hash128 h = dv_key_hash128(r.key, r.key_len);
			h.hi &= ZIDX_HASH_HI_MASK;
			struct zidx_entry e = {.hash = h, .seq = r.seq, .off_units = (uint32_t)(p / DV_RECORD_ALIGN_BYTES),
					       .size = r.total_bytes, .type = (uint8_t)r.type};
			zone_add_entry(s, z, &e);
		}
		p += r.total_bytes;
		*data_end = p;
	}
	dev_buf_free(buf);
	return err;
}

bool zidx_hdr_fits(const struct store *s, uint32_t z, const struct zidx_hdr *h)
{
	uint64_t foot = (uint64_t)s->sb.zones[z].footer_block * DV_BLOCK_BYTES;
	return h->zone_gen == s->sb.zones[z].gen && h->data_end <= foot &&
	       foot + zidx_bytes(h->count, DV_BLOCK_BYTES) <= s->sb.zone_cap;
}

static int read_zone_index_once(struct store *s, uint32_t z, uint64_t *digest)
{
	struct zone_rt *zr = &s->zrt[z];
	uint64_t off = (uint64_t)s->sb.zones[z].footer_block * DV_BLOCK_BYTES;
	if (off + DV_BLOCK_BYTES > s->sb.zone_cap)
		return -DV_ECORRUPT;
	uint8_t *buf = dev_buf_alloc(DV_BLOCK_BYTES);
	struct zidx_hdr h;
	int err = buf ? store_read_sync(s, zone_base(s, z) + off, buf, DV_BLOCK_BYTES) : -ENOMEM;
	if (!err)
		*digest = dv_checksum64(buf, DV_BLOCK_BYTES);
	if (!err)
		err = zidx_decode_hdr(buf, DV_BLOCK_BYTES, &h);
	if (!err && !zidx_hdr_fits(s, z, &h))
		err = -DV_ECORRUPT;
	uint32_t n = err ? 0 : zidx_bytes(h.count, DV_BLOCK_BYTES);
	if (!err && n > DV_BLOCK_BYTES) {
		dev_buf_free(buf);
		buf = dev_buf_alloc(n);
		err = buf ? store_read_sync(s, zone_base(s, z) + off, buf, n) : -ENOMEM;
		if (!err)
			*digest = dv_checksum64(buf, n);
		/* The entries are sized by the first read's header: the second
		 * read must say the same (a flip in either: read again). */
		struct zidx_hdr h2;
		if (!err && (zidx_decode_hdr(buf, n, &h2) != 0 || h2.count != h.count))
			err = -DV_ECORRUPT;
	}
	if (!err) {
		free(zr->entries);
		zr->entries = malloc((size_t)(h.count ? h.count : 1) * sizeof(*zr->entries));
		err = zr->entries ? zidx_decode(buf, n, &h, zr->entries, h.count) : -ENOMEM;
		zr->count = zr->cap = err ? 0 : h.count;
		if (!err) { /* header fields count only once the checksum passed */
			zr->max_seq = h.max_seq;
			zr->wp = h.data_end;
		}
	}
	dev_buf_free(buf);
	return err;
}

/* A zone index that does not verify is read again until two reads agree
 * (reads_agree) before it counts as damaged: a flip in transit is not
 * damage. */
int read_zone_index(struct store *s, uint32_t z)
{
	uint64_t digest = 0, prev = 0;
	int err = -DV_ECORRUPT;
	for (unsigned i = 0; err == -DV_ECORRUPT; i++) {
		err = read_zone_index_once(s, z, &digest);
		if (err == -DV_ECORRUPT && reads_agree(digest, &prev, i))
			break;
	}
	return err;
}

/* A FULL zone sealed at recovery: FULL in the table (durable with the
 * next superblock write) and finished on the device (no longer active).
 * A read-only zone cannot be finished: it is not active either. */
static int seal_as_full(struct store *s, uint32_t z, uint32_t footer_block, const struct dev_zone *dz)
{
	s->sb.zones[z].state = ZONE_FULL;
	s->sb.zones[z].footer_block = footer_block;
	sb_request(s);
	if (dz->cond == DEV_ZONE_READONLY || dz->cond == DEV_ZONE_FULL)
		return 0;
	return dev_zone_finish(s->dev, zone_base(s, z), s->sb.zone_bytes);
}

/* Seal zone z after recovery: its zone index at foot_min or after the data,
 * whichever is later (a zoned device only appends at its write pointer,
 * which a torn write may have moved past the data), then FULL. When the
 * torn bytes left no room for the index, the zone is sealed without one:
 * recovery scans it and GC leaves it alone (footer_block ZONE_NO_INDEX). */
static int write_zone_index_sync(struct store *s, uint32_t z, uint64_t foot_min, const struct dev_zone *dz)
{
	struct zone_rt *zr = &s->zrt[z];
	uint64_t foot = DV_ROUND_UP(zr->wp, DV_BLOCK_BYTES);
	if (foot < foot_min)
		foot = DV_ROUND_UP(foot_min, DV_BLOCK_BYTES);
	uint32_t n = zidx_bytes(zr->count, DV_BLOCK_BYTES);
	if (foot + n > s->sb.zone_cap) {
		DV_ASSERT(foot_min > 0); /* only torn bytes on a zoned device take the room */
		return seal_as_full(s, z, ZONE_NO_INDEX, dz);
	}
	uint8_t *buf = dev_buf_alloc(n);
	if (!buf)
		return -ENOMEM;
	struct zidx_hdr h = {.zone_gen = s->sb.zones[z].gen, .count = zr->count,
			     .data_end = zr->wp, .max_seq = zr->max_seq};
	zidx_encode(buf, &h, zr->entries);
	int err = dev_write_sync(s->dev, zone_base(s, z) + foot, buf, n);
	dev_buf_free(buf);
	if (!err) {
		s->st.device_bytes_written += n;
		err = seal_as_full(s, z, (uint32_t)(foot / DV_BLOCK_BYTES), dz);
	}
	return err;
}

/* Whether the block at foot of zone z holds a zone index of this
 * generation naming exactly the records scanned (zr->entries, sorted,
 * ending at zr->wp). */
static bool footer_at(struct store *s, uint32_t z, uint64_t foot)
{
	struct zone_rt *zr = &s->zrt[z];
	uint32_t n = zidx_bytes(zr->count, DV_BLOCK_BYTES);
	if (zr->count == 0 || foot % DV_BLOCK_BYTES || foot < DV_ROUND_UP(zr->wp, DV_BLOCK_BYTES) ||
	    foot + n > s->sb.zone_cap)
		return false;
	uint8_t *buf = dev_buf_alloc(n);
	struct zidx_entry *e = malloc((size_t)zr->count * sizeof(*e));
	struct zidx_hdr h;
	bool ok = buf && e && store_read_sync(s, zone_base(s, z) + foot, buf, n) == 0 &&
		  zidx_decode(buf, n, &h, e, zr->count) == 0 && h.zone_gen == s->sb.zones[z].gen && h.count == zr->count &&
		  DV_ROUND_UP(h.data_end, DV_BLOCK_BYTES) == DV_ROUND_UP(zr->wp, DV_BLOCK_BYTES) &&
		  h.max_seq == zr->max_seq;
	for (uint32_t i = 0; ok && i < zr->count; i++)
		ok = zidx_entry_cmp(&e[i], &zr->entries[i]) == 0 && e[i].off_units == zr->entries[i].off_units &&
		     e[i].size == zr->entries[i].size && e[i].type == zr->entries[i].type;
	free(e);
	dev_buf_free(buf);
	return ok;
}

/* The scan of zone z stopped where a crash cut it, and the zone may
 * already hold the zone index naming exactly the records scanned: the
 * zone was sealed and the crash came before its FULL state was durable.
 * That index is right after the records, or on a zoned device anywhere
 * before the write pointer wp: recovery writes it at the write pointer,
 * past the bytes of a torn write (an earlier open cut at its own zone
 * index write moves the pointer past the data), and finishes the zone; a
 * cut at the superblock write after that leaves the zone finished with
 * the index after the torn bytes. Its block offset, or UINT64_MAX: none
 * (then a zone the device has finished can take no other). */
static uint64_t footer_find(struct store *s, uint32_t z, uint64_t wp)
{
	struct zone_rt *zr = &s->zrt[z];
	uint64_t lo = DV_ROUND_UP(zr->wp, DV_BLOCK_BYTES);
	uint64_t hi = wp < s->sb.zone_cap ? wp : s->sb.zone_cap;
	uint32_t n = zidx_bytes(zr->count, DV_BLOCK_BYTES);
	if (zr->count == 0 || lo + n > hi)
		return UINT64_MAX;
	if (footer_at(s, z, lo))
		return lo;
	uint32_t chunk = 1u << 20;
	uint8_t *buf = dev_buf_alloc(chunk);
	uint64_t found = UINT64_MAX;
	/* Candidates: blocks whose header names this generation and count. */
	for (uint64_t off = lo + DV_BLOCK_BYTES; buf && off + n <= hi && found == UINT64_MAX; off += chunk) {
		uint32_t len = hi - off < chunk ? (uint32_t)(hi - off) : chunk;
		len -= len % DV_BLOCK_BYTES;
		if (store_read_sync(s, zone_base(s, z) + off, buf, len) != 0)
			break;
		for (uint32_t b = 0; b + DV_BLOCK_BYTES <= len && off + b + n <= hi; b += DV_BLOCK_BYTES) {
			struct zidx_hdr h;
			if (zidx_decode_hdr(buf + b, len - b, &h) == 0 && h.zone_gen == s->sb.zones[z].gen &&
			    h.count == zr->count && footer_at(s, z, off + b)) {
				found = off + b;
				break;
			}
		}
	}
	dev_buf_free(buf);
	return found;
}

/* Whether entry e (an OPEN zone's) has a twin in a FULL zone other than z:
 * the same key hash and seq, so the same record (a seq names one write;
 * GC's copy keeps it). The FULL zones' runs are loaded and sorted. */
static bool has_twin(const struct store *s, uint32_t z, const struct zidx_entry *e)
{
	for (uint32_t y = 0; y < s->sb.zone_count; y++) {
		const struct zone_rt *zr = &s->zrt[y];
		if (y == z || s->sb.zones[y].state != ZONE_FULL)
			continue;
		uint32_t lo = 0, hi = zr->count;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (zidx_entry_cmp(&zr->entries[mid], e) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < zr->count && zidx_entry_cmp(&zr->entries[lo], e) == 0)
			return true;
	}
	return false;
}

/* An OPEN zone all of whose records are GC's copies of records a FULL zone
 * still holds (a collection was under way: its victim is FULL and intact
 * until the collection's superblock write) holds nothing of its own.
 * Recovery resets it rather than seal it: that zone was the last empty one
 * (relocations may take it, user writes may not), and sealing it would
 * leave no room to collect anything ever again. */
static bool zone_redundant(const struct store *s, uint32_t z)
{
	const struct zone_rt *zr = &s->zrt[z];
	for (uint32_t i = 0; i < zr->count; i++)
		if (!has_twin(s, z, &zr->entries[i]))
			return false;
	return true;
}

/* Step 4 for one OPEN zone (after every FULL zone's run is loaded); dz:
 * what the device reports of it (emulated zones: DEV_ZONE_NOT_WP). */
static int recover_open_zone(struct store *s, uint32_t z, const struct dev_zone *dz)
{
	struct zone_rt *zr = &s->zrt[z];
	bool zoned = dz->cond != DEV_ZONE_NOT_WP;
	uint64_t end = 0;
	bool torn = false;
	int err = scan_zone(s, z, &end, &torn);
	if (err)
		return err;
	zr->wp = end;
	zidx_sort(zr->entries, zr->count);
	/* A zoned device's write pointer past the data: the index may be
	 * further on, after torn bytes (which may read as zeros: not torn). */
	uint64_t foot = UINT64_MAX;
	if (zoned && (torn || dz->wp > DV_ROUND_UP(end, DV_BLOCK_BYTES)))
		foot = footer_find(s, z, dz->wp);
	else if (!zoned && torn && footer_at(s, z, DV_ROUND_UP(end, DV_BLOCK_BYTES)))
		foot = DV_ROUND_UP(end, DV_BLOCK_BYTES); /* emulated zones: only right after the records */
	bool adopt = foot != UINT64_MAX;
	s->st.recovery_torn_tails += torn && !adopt;
	/* A zoned device wrote less than the records found: they were written
	 * before its write pointer moved back (or its state was lost). Kept as
	 * they are, never written over: sealed without an index. */
	bool behind = zoned && dz->cond != DEV_ZONE_READONLY && dz->wp < DV_ROUND_UP(end, DV_BLOCK_BYTES);
	s->st.zones_wp_mismatch += behind;
	if (behind)
		zr->dev_issue = ZONE_ISSUE_WP_BEHIND;
	if (s->cfg.read_only)
		return 0;
	bool redundant = zr->count > 0 && !zr->unusable && zone_redundant(s, z);
	s->st.recovery_redundant_zones += redundant;
	if ((zr->count == 0 || redundant) && dz->cond != DEV_ZONE_READONLY) {
		zr->count = 0; /* nothing of it goes into the index */
		zr->max_seq = 0;
		s->sb.zones[z].state = ZONE_EMPTY;
		s->sb.zones[z].gen++;
		memo_zone_gen_changed(&s->memo, z, s->sb.zones[z].gen);
		sb_request(s);
		return dev_zone_reset(s->dev, zone_base(s, z), s->sb.zone_bytes);
	}
	if (adopt)
		return seal_as_full(s, z, (uint32_t)(foot / DV_BLOCK_BYTES), dz);
	if (behind || dz->cond == DEV_ZONE_READONLY || dz->cond == DEV_ZONE_FULL)
		return seal_as_full(s, z, ZONE_NO_INDEX, dz);
	return write_zone_index_sync(s, z, zoned ? dz->wp : 0, dz);
}

static int recover_full_zone(struct store *s, uint32_t z)
{
	if (s->sb.zones[z].footer_block == ZONE_NO_INDEX) {
		s->zrt[z].gc_failures = GC_FAILURES_MAX; /* GC needs an index */
	} else if (!s->cfg.recover_by_scan) {
		int err = read_zone_index(s, z);
		if (err != -DV_ECORRUPT)
			return err;
		/* Damaged zone index: rebuild the run from the records themselves.
		 * GC will not collect the zone (its index on disk is bad). */
		s->st.recovery_bad_zone_indexes++;
		s->zrt[z].gc_failures = GC_FAILURES_MAX;
	}
	free(s->zrt[z].entries);
	s->zrt[z].entries = NULL;
	s->zrt[z].count = s->zrt[z].cap = 0;
	s->zrt[z].max_seq = 0;
	uint64_t end = 0;
	bool torn = false;
	int err = scan_zone(s, z, &end, &torn);
	s->zrt[z].wp = end;
	zidx_sort(s->zrt[z].entries, s->zrt[z].count);
	return err;
}

/* ---- step 4: k-way merge ---- */

/* zidx_entry_cmp() order, inline: this is the inner loop of recovery. */
static bool run_less(const struct run *a, const struct run *b)
{
	const struct zidx_entry *x = &a->e[a->pos], *y = &b->e[b->pos];
	if (x->hash.lo != y->hash.lo)
		return x->hash.lo < y->hash.lo;
	if (x->hash.hi != y->hash.hi)
		return x->hash.hi < y->hash.hi;
	if (x->seq != y->seq)
		return x->seq < y->seq;
	return a->zone < b->zone;
}

static void heap_down(struct run **h, uint32_t n, uint32_t i)
{
	for (uint32_t guard = 0; guard < 64; guard++) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && run_less(h[l], h[m]))
			m = l;
		if (r < n && run_less(h[r], h[m]))
			m = r;
		if (m == i)
			return;
		struct run *t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* One part of the merge: the entries whose hash_lo is in [lo, hi]. Parts
 * touch disjoint index segments (top bits of hash_lo), so two threads can
 * load them at once; per-zone live bytes are kept per part and summed. */
struct merge_part {
	struct store *s;
	uint64_t flush_seq; /* keys whose newest record is below it are dead */
	struct run *runs; /* the part's slice of every zone's run */
	uint32_t nruns;
	uint64_t *live;   /* live_cost by zone */
	uint64_t records, tombstones, max_seq;
	int err;
};

static int install_winner(struct merge_part *mp, const struct zidx_entry *e, uint32_t zone)
{
	uint64_t off = (uint64_t)e->off_units * DV_RECORD_ALIGN_BYTES;
	uint64_t p = pl_make(e->type == REC_TOMBSTONE, zone, off, e->size);
	mp->live[zone] += reloc_cost(e->size);
	mp->records++;
	mp->tombstones += e->type == REC_TOMBSTONE;
	if (e->seq > mp->max_seq)
		mp->max_seq = e->seq;
	return index_load(mp->s->index, e->hash.lo, p); /* the index is not shared yet */
}

static void *merge_part_run(void *arg)
{
	struct merge_part *mp = arg;
	struct run **heap = malloc((mp->nruns ? mp->nruns : 1) * sizeof(*heap));
	if (!heap) {
		mp->err = -ENOMEM;
		return NULL;
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < mp->nruns; i++)
		if (mp->runs[i].pos < mp->runs[i].count)
			heap[n++] = &mp->runs[i];
	for (uint32_t i = n / 2; i-- > 0;)
		heap_down(heap, n, i);
	int err = 0;
	while (n > 0 && !err) {
		/* Pop entries of one key: ascending seq, so the last one wins. */
		struct run *top = heap[0];
		struct zidx_entry win = top->e[top->pos];
		uint32_t win_zone = top->zone;
		while (n > 0) {
			struct run *r = heap[0];
			const struct zidx_entry *e = &r->e[r->pos];
			if (e->hash.lo != win.hash.lo || e->hash.hi != win.hash.hi)
				break;
			if (e->seq >= win.seq) {
				win = *e;
				win_zone = r->zone;
			}
			if (++r->pos == r->count)
				heap[0] = heap[--n];
			if (n)
				heap_down(heap, n, 0);
		}
		if (win.seq >= mp->flush_seq) /* else flushed: dead */
			err = install_winner(mp, &win, win_zone);
	}
	free(heap);
	mp->err = err;
	return NULL;
}

/* First index of run entries with hash_lo >= key. */
static uint32_t run_lower_bound(const struct run *r, uint64_t key)
{
	uint32_t lo = 0, hi = r->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->e[mid].hash.lo < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The newest flush point in the runs: the highest seq of an entry of the
 * store's own key (its 96-bit hash, as every key is told apart here). */
static uint64_t find_flush_point(const struct run *runs, uint32_t nruns)
{
	struct dv_hash128 h = flush_key_hash();
	uint64_t best = 0;
	for (uint32_t z = 0; z < nruns; z++) {
		const struct run *r = &runs[z];
		for (uint32_t i = run_lower_bound(r, h.lo); i < r->count && r->e[i].hash.lo == h.lo; i++)
			if (r->e[i].hash.hi == (h.hi & ZIDX_HASH_HI_MASK) && r->e[i].seq > best)
				best = r->e[i].seq;
	}
	return best;
}

#define MERGE_PARTS 2u           /* the machine's cores are few; two is enough */
#define MERGE_PARALLEL_MIN 20000u /* below this, a thread costs more than it saves */

/* Merge the runs into the index: per key (hash128) the highest seq wins.
 * Large recoveries split the hash space in two halves merged at once. */
static int merge_runs(struct store *s, struct run *runs, uint32_t nruns, uint64_t total)
{
	unsigned parts = total >= MERGE_PARALLEL_MIN ? MERGE_PARTS : 1;
	struct merge_part mp[MERGE_PARTS] = {0};
	int err = 0;
	s->flush_seq = find_flush_point(runs, nruns);
	s->flush_indexed = s->flush_seq != 0; /* its record is the newest of its key: installed */
	for (unsigned p = 0; p < parts && !err; p++) {
		mp[p].s = s;
		mp[p].flush_seq = s->flush_seq;
		mp[p].nruns = nruns;
		mp[p].runs = calloc(nruns ? nruns : 1, sizeof(struct run));
		mp[p].live = calloc(nruns ? nruns : 1, sizeof(uint64_t));
		if (!mp[p].runs || !mp[p].live)
			err = -ENOMEM;
	}
	/* Part p takes hash_lo in [p * 2^64 / parts, (p + 1) * 2^64 / parts). */
	for (uint32_t z = 0; z < nruns && !err; z++) {
		for (unsigned p = 0; p < parts; p++) {
			struct run r = runs[z];
			uint32_t begin = p == 0 ? 0 : run_lower_bound(&r, (uint64_t)p << 63);
			uint32_t end = p + 1 == parts ? r.count : run_lower_bound(&r, (uint64_t)(p + 1) << 63);
			mp[p].runs[z] = (struct run){.e = r.e, .count = end, .pos = begin, .zone = r.zone};
		}
	}
	pthread_t helper;
	bool threaded = false;
	if (!err && parts > 1)
		threaded = pthread_create(&helper, NULL, merge_part_run, &mp[1]) == 0;
	if (!err) {
		merge_part_run(&mp[0]);
		if (parts > 1 && !threaded)
			merge_part_run(&mp[1]);
		if (threaded)
			pthread_join(helper, NULL);
	}
	for (unsigned p = 0; p < parts; p++) {
		if (!err)
			err = mp[p].err;
		for (uint32_t z = 0; mp[p].live && z < nruns; z++)
			s->zrt[z].live_cost += mp[p].live[z];
		s->st.recovered_records += mp[p].records;
		s->st.tombstones += mp[p].tombstones;
		if (mp[p].max_seq + 1 > s->next_seq)
			s->next_seq = mp[p].max_seq + 1;
		free(mp[p].runs);
		free(mp[p].live);
	}
	return err;
}

/* Superblock writes at start-up; a refused submission (sb_pump leaves it
 * unsent) is tried again, bounded like store_dev_submit()'s refusals. */
static int sb_flush_sync(struct store *s)
{
	for (unsigned i = 0; i < 4096 && s->sb_version_durable < s->sb_version_wanted; i++) {
		sb_pump(s);
		while (s->sb_in_flight)
			dev_poll(s->dev, 1);
		if (s->failed)
			return s->fail_err;
	}
	return s->sb_version_durable < s->sb_version_wanted ? -EIO : 0;
}

/* Step 7: every writable open makes one superblock write durable before
 * it returns (with what recovery changed, or the table as it was), and
 * its sb_seq is the open's stamp (store_open_stamp): each write takes the
 * loaded copy's seq + 1, and this one is durable before the host acts, so
 * a later open loads it or a newer copy and stamps higher. The write is in
 * place (fixed copies) or in the superblock log, never in a data zone: a
 * full device opens any number of times. */
static int stamp_open(struct store *s)
{
	bool changed = s->sb_version_wanted > s->sb_version_durable; /* recovery's own changes to make durable */
	sb_request(s);
	int err = sb_flush_sync(s);
	if (err && !changed && s->failed) {
		/* Only the stamp could not be written (a device that refuses
		 * writes): the store opens failed, reads only, as one whose
		 * first write fails, with no stamp (store_open_stamp 0: a host
		 * that needs one does not start on it). */
		s->open_stamp = 0;
		return 0;
	}
	if (err)
		return err;
	DV_ASSERT(!s->sb_in_flight && s->sb_version_durable == s->sb_version_wanted && s->sb.sb_seq > 0);
	s->open_stamp = s->sb.sb_seq;
	return 0;
}

/* Recovery on a zoned device takes each zone's condition and write pointer
 * from the device and checks them against the superblock; what disagrees
 * is counted and never written over:
 * - offline (unreadable): its records are lost (zones_lost when it held
 *   any); read-only: read, never reset or written again. Both unusable.
 * - a FULL zone whose write pointer stands before the end of its zone
 *   index (an EMPTY one: reset behind the store's back, or a device that
 *   lost its zone state): zones_wp_mismatch; read as it is, never
 *   collected. A FULL zone still open on the device (a crash between the
 *   superblock write and the finish) is finished.
 * - an OPEN zone: recover_open_zone().
 * - an EMPTY zone holding data (a crash between a collection's superblock
 *   write and its reset) is reset. */
static int zone_report_at_recovery(struct store *s, uint32_t z, struct dev_zone *dz)
{
	*dz = (struct dev_zone){.cond = DEV_ZONE_NOT_WP, .cap = s->sb.zone_cap};
	if (!dev_info(s->dev)->zoned)
		return 0;
	int err = dev_zone_report(s->dev, zone_base(s, z), dz);
	if (err)
		return err;
	struct zone_rt *zr = &s->zrt[z];
	uint8_t st = s->sb.zones[z].state;
	if (dz->cond == DEV_ZONE_OFFLINE || dz->cond == DEV_ZONE_READONLY) {
		zr->dev_issue = dz->cond == DEV_ZONE_OFFLINE ? ZONE_ISSUE_OFFLINE : ZONE_ISSUE_READONLY;
		zr->unusable = true;
		s->st.zones_unusable++;
		zr->gc_failures = GC_FAILURES_MAX;
	}
	if (dz->cap < s->sb.zone_cap && dz->cond != DEV_ZONE_OFFLINE) {
		/* The device now holds less than the zone was planned with: never
		 * written again (its data, if any, is read as it is). */
		s->st.zones_wp_mismatch += st != ZONE_EMPTY;
		if (!zr->unusable)
			s->st.zones_unusable++;
		zr->dev_issue = ZONE_ISSUE_SHRUNK;
		zr->unusable = true;
		zr->gc_failures = GC_FAILURES_MAX;
	}
	if (st == ZONE_FULL && dz->cond != DEV_ZONE_FULL && dz->cond != DEV_ZONE_OFFLINE &&
	    dz->cond != DEV_ZONE_READONLY) {
		uint64_t foot_end = s->sb.zones[z].footer_block == ZONE_NO_INDEX ? 0
				    : (uint64_t)s->sb.zones[z].footer_block * DV_BLOCK_BYTES + DV_BLOCK_BYTES;
		if (dz->cond == DEV_ZONE_EMPTY || dz->wp < foot_end) {
			s->st.zones_wp_mismatch++;
			zr->dev_issue = ZONE_ISSUE_WP_BEHIND;
			zr->gc_failures = GC_FAILURES_MAX;
		} else if (!s->cfg.read_only) {
			err = dev_zone_finish(s->dev, zone_base(s, z), s->sb.zone_bytes);
		}
	}
	if (!err && st == ZONE_EMPTY && !s->cfg.read_only && dz->cond != DEV_ZONE_EMPTY && !zr->unusable)
		err = dev_zone_reset(s->dev, zone_base(s, z), s->sb.zone_bytes);
	return err;
}

static int recover_zones(struct store *s, struct run *runs, uint64_t *total)
{
	struct dev_zone *dz = calloc(s->sb.zone_count, sizeof(*dz));
	int err = dz ? 0 : -ENOMEM;
	/* FULL zones first: an OPEN zone is judged against them (zone_redundant). */
	for (uint32_t z = 0; z < s->sb.zone_count && !err; z++) {
		err = zone_report_at_recovery(s, z, &dz[z]);
		uint8_t st = s->sb.zones[z].state;
		if (err)
			break;
		else if (dz[z].cond == DEV_ZONE_OFFLINE)
			s->st.zones_lost += st != ZONE_EMPTY; /* its records are gone */
		else if (st == ZONE_FULL)
			err = recover_full_zone(s, z);
	}
	for (uint32_t z = 0; z < s->sb.zone_count && !err; z++)
		if (dz[z].cond != DEV_ZONE_OFFLINE && s->sb.zones[z].state == ZONE_OPEN)
			err = recover_open_zone(s, z, &dz[z]);
	free(dz);
	for (uint32_t z = 0; z < s->sb.zone_count && !err; z++) {
		struct zone_rt *zr = &s->zrt[z];
		zr->min_seq = UINT64_MAX;
		for (uint32_t i = 0; i < zr->count; i++) {
			zr->rec_bytes += zr->entries[i].size;
			if (zr->entries[i].seq < zr->min_seq)
				zr->min_seq = zr->entries[i].seq;
		}
		zr->rec_count = zr->count;
		runs[z] = (struct run){.e = zr->entries, .count = zr->count, .zone = z};
		*total += zr->count;
		if (zr->max_seq + 1 > s->next_seq)
			s->next_seq = zr->max_seq + 1;
	}
	return err;
}

/* How many data zones may be OPEN at once: the device's open and active
 * limits (0: none), less the superblock log's zone, which is open and
 * active between its switches. */
static int zones_open_budget(struct store *s)
{
	const struct dev_info *info = dev_info(s->dev);
	uint32_t lim = UINT32_MAX;
	if (info->max_open_zones)
		lim = info->max_open_zones;
	if (info->max_active_zones && info->max_active_zones < lim)
		lim = info->max_active_zones;
	if (lim != UINT32_MAX && s->sbp.log)
		lim = lim > 0 ? lim - 1 : 0;
	if (lim == 0) {
		fprintf(stderr, "dynvme: the device allows %u open and %u active zones: the superblock log "
				"takes one, data needs at least one more\n",
			info->max_open_zones, info->max_active_zones);
		return -EOPNOTSUPP;
	}
	s->zones_open_budget = lim;
	return 0;
}

int store_recover(struct store *s)
{
	uint64_t t0 = mono_us();
	int err = sb_place_init(s);
	if (!err)
		err = zones_open_budget(s);
	if (!err)
		err = sb_load(s);
	if (err == 1)
		err = sb_load(s);
	if (err)
		return err;
	s->zrt = calloc(s->sb.zone_count, sizeof(*s->zrt));
	struct run *runs = calloc(s->sb.zone_count, sizeof(*runs));
	if (!s->zrt || !runs) {
		free(runs);
		return -ENOMEM;
	}
	s->next_seq = 1;
	uint64_t total = 0;
	err = recover_zones(s, runs, &total);
	if (!err && total > s->cfg.index_capacity_hint) {
		index_destroy(s->index);
		s->index = NULL;
		err = index_create(&s->index, total);
	}
	if (!err)
		err = merge_runs(s, runs, s->sb.zone_count, total);
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		free(s->zrt[z].entries); /* sealed zones keep only their live cost */
		s->zrt[z].entries = NULL;
		s->zrt[z].count = s->zrt[z].cap = 0;
	}
	free(runs);
	s->zones_free = zones_free_recount(s);
	if (!err && !s->cfg.read_only)
		err = stamp_open(s);
	s->st.recovery_us = mono_us() - t0;
	return err;
}
