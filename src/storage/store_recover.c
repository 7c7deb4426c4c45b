/* store_recover.c - format and crash recovery.
 *
 * Recovery procedure (store_recover):
 * 1. Read both superblock copies; the valid one with the highest sb_seq is
 *    current. Neither valid: format if the device holds no dynvme magic and
 *    the caller allows it; refuse otherwise (never format over damage).
 * 2. FULL zones: read the zone index (a run sorted by key hash). A damaged
 *    zone index is replaced by a scan of the zone's records.
 * 3. OPEN zones (after every FULL zone's run is loaded): scan records from
 *    the zone start while they verify and carry the zone's generation; the
 *    first bad one ends the zone (a torn tail). Seal the zone there: write
 *    its zone index, mark it FULL. Later writes go to fresh zones, so bytes
 *    past the cut are never read again. An open zone with no record, or
 *    with only GC's copies of records a FULL zone still holds (a collection
 *    cut short: zone_redundant), is reset and returned to EMPTY.
 * 4. Merge all runs by (hash128, seq); per key the highest seq wins and
 *    goes into the index (tombstones included); live cost per zone follows.
 * 5. next_seq = highest seq seen + 1.
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

static uint64_t sb_copy_off(unsigned copy) { return copy * (uint64_t)sb_bytes(DV_ZONE_COUNT_MAX); }

/* dev_read_sync(), a read error retried up to STORE_READS_MAX times:
 * recovery trusts no single read (store_int.h). */
static int rec_read(struct store *s, uint64_t off, void *buf, uint32_t len)
{
	int err = -EIO;
	for (unsigned i = 0; i < STORE_READS_MAX && err == -EIO; i++)
		err = dev_read_sync(s->dev, off, buf, len);
	return err;
}

/* 0 valid, -DV_EFORMAT no magic, -DV_EVERSION other version, -DV_ECORRUPT
 * damaged; *decoded when the error is the decoder's (a read error else). */
static int read_sb_copy_once(struct store *s, unsigned copy, uint8_t *buf, struct sb *out, uint64_t *digest,
			     bool *decoded)
{
	*decoded = false;
	int err = rec_read(s, sb_copy_off(copy), buf, DV_BLOCK_BYTES);
	if (err)
		return err;
	uint32_t count = 0;
	memcpy(&count, buf + 40, 4);
	uint32_t n = count <= DV_ZONE_COUNT_MAX ? sb_bytes(count) : DV_BLOCK_BYTES;
	if (n > DV_BLOCK_BYTES && (err = rec_read(s, sb_copy_off(copy), buf, n)))
		return err;
	*digest = dv_checksum64(buf, n);
	*decoded = true;
	return sb_decode(buf, n, out, DV_ZONE_COUNT_MAX);
}

/* A copy that does not decode (a flip may hit its magic or version as well
 * as its checksum: taken for "no superblock", the older copy would win) is
 * read again until two reads agree. */
static int read_sb_copy(struct store *s, unsigned copy, uint8_t *buf, struct sb *out)
{
	uint64_t digest = 0, prev = 0;
	bool decoded = true;
	int err = 1;
	for (unsigned i = 0; err != 0 && decoded; i++) {
		err = read_sb_copy_once(s, copy, buf, out, &digest, &decoded);
		if (err && decoded && reads_agree(digest, &prev, i))
			break;
	}
	return err;
}

static uint64_t default_zone_bytes(const struct store *s, uint64_t front)
{
	const struct dev_info *info = dev_info(s->dev);
	if (info->zoned)
		return info->zone_bytes;
	uint64_t z = s->cfg.zone_bytes ? s->cfg.zone_bytes : 64ull << 20;
	uint64_t fit = info->size_bytes > front ? (info->size_bytes - front) / 8 : 0;
	if (!s->cfg.zone_bytes && z > fit) /* small device: at least 8 zones */
		z = fit / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
	return z < DV_ZONE_BYTES_MIN ? DV_ZONE_BYTES_MIN : z;
}

int store_format_device(struct store *s)
{
	const struct dev_info *info = dev_info(s->dev);
	uint64_t front = 0;
	if (info->zoned) {
		front = (uint64_t)info->conventional_zones * info->zone_bytes;
		if (front < 2ull * sb_bytes(DV_ZONE_COUNT_MAX))
			return -EOPNOTSUPP; /* superblocks need a conventional zone */
	}
	struct sb plan;
	uint64_t zb = default_zone_bytes(s, front ? front : DV_ROUND_UP(2ull * sb_bytes(DV_ZONE_COUNT_MAX), 1u << 20));
	int err = sb_plan(&plan, info->size_bytes, zb, front);
	if (err)
		return err;
	plan.zones = calloc(plan.zone_count, sizeof(*plan.zones));
	if (!plan.zones)
		return -ENOMEM;
	for (uint32_t z = 0; z < plan.zone_count && !err; z++) {
		plan.zones[z] = (struct zone_entry){.state = ZONE_EMPTY, .gen = 1};
		err = dev_zone_reset(s->dev, plan.data_start + z * plan.zone_bytes, plan.zone_bytes);
	}
	uint8_t *buf = dev_buf_alloc(sb_bytes(plan.zone_count));
	for (unsigned copy = 0; copy < DV_SB_COPIES && !err && buf; copy++) {
		plan.sb_seq = copy + 1;
		sb_encode(buf, &plan);
		err = dev_write_sync(s->dev, sb_copy_off(plan.sb_seq % DV_SB_COPIES), buf, sb_bytes(plan.zone_count));
	}
	if (!buf && !err)
		err = -ENOMEM;
	dev_buf_free(buf);
	free(plan.zones);
	return err;
}

static int load_superblock(struct store *s)
{
	uint8_t *buf = dev_buf_alloc(sb_bytes(DV_ZONE_COUNT_MAX));
	struct zone_entry *zones[2] = {calloc(DV_ZONE_COUNT_MAX, sizeof(struct zone_entry)),
				       calloc(DV_ZONE_COUNT_MAX, sizeof(struct zone_entry))};
	struct sb cand[2] = {{.zones = zones[0]}, {.zones = zones[1]}};
	int rc[2] = {-ENOMEM, -ENOMEM};
	for (unsigned c = 0; c < 2 && buf && zones[0] && zones[1]; c++)
		rc[c] = read_sb_copy(s, c, buf, &cand[c]);
	dev_buf_free(buf);
	int best = -1;
	for (int c = 0; c < 2; c++)
		if (rc[c] == 0 && (best < 0 || cand[c].sb_seq > cand[best].sb_seq))
			best = c;
	int err = 0;
	if (best >= 0) {
		s->sb = cand[best];
		zones[best] = NULL;
	} else if (rc[0] == -DV_EFORMAT && rc[1] == -DV_EFORMAT && s->cfg.format_if_empty && !s->cfg.read_only) {
		err = store_format_device(s);
		if (!err)
			err = 1; /* formatted: load again */
	} else {
		err = rc[0] == -ENOMEM || rc[1] == -ENOMEM ? -ENOMEM
		      : (rc[0] == -DV_EVERSION || rc[1] == -DV_EVERSION) ? -DV_EVERSION
		      : (rc[0] == -DV_ECORRUPT || rc[1] == -DV_ECORRUPT) ? -DV_ECORRUPT : -DV_EFORMAT;
	}
	free(zones[0]);
	free(zones[1]);
	return err;
}

/* Scan a zone's records from its start. Entries go to zr->entries. The
 * first record that does not verify ends the zone, once two reads in a row
 * agree on it (reads_agree): a flip in transit must not cut acknowledged
 * records off. */
int scan_zone(struct store *s, uint32_t z, uint64_t *data_end, bool *torn)
{
	uint8_t *buf = dev_buf_alloc(SCAN_CHUNK_BYTES);
	if (!buf)
		return -ENOMEM;
	uint64_t zb = s->sb.zone_bytes, p = 0, buf_off = 0, buf_len = 0;
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
			buf_len = zb - buf_off < SCAN_CHUNK_BYTES ? zb - buf_off : SCAN_CHUNK_BYTES;
			if ((err = rec_read(s, zone_base(s, z) + buf_off, buf, (uint32_t)buf_len)))
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
				if ((err = rec_read(s, zone_base(s, z) + buf_off, buf, (uint32_t)buf_len)))
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
	       foot + zidx_bytes(h->count, DV_BLOCK_BYTES) <= s->sb.zone_bytes;
}

static int read_zone_index_once(struct store *s, uint32_t z, uint64_t *digest)
{
	struct zone_rt *zr = &s->zrt[z];
	uint64_t off = (uint64_t)s->sb.zones[z].footer_block * DV_BLOCK_BYTES;
	if (off + DV_BLOCK_BYTES > s->sb.zone_bytes)
		return -DV_ECORRUPT;
	uint8_t *buf = dev_buf_alloc(DV_BLOCK_BYTES);
	struct zidx_hdr h;
	int err = buf ? rec_read(s, zone_base(s, z) + off, buf, DV_BLOCK_BYTES) : -ENOMEM;
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
		err = buf ? rec_read(s, zone_base(s, z) + off, buf, n) : -ENOMEM;
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
		err = zr->entries ? zidx_decode(buf, n, &h, zr->entries) : -ENOMEM;
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

/* Seal zone z after recovery: its zone index at foot_min or after the data,
 * whichever is later (a zoned device only appends at its write pointer,
 * which a torn write may have moved past the data), then FULL. When the
 * torn bytes left no room for the index, the zone is sealed without one:
 * recovery scans it and GC leaves it alone (footer_block ZONE_NO_INDEX). */
static int write_zone_index_sync(struct store *s, uint32_t z, uint64_t foot_min)
{
	struct zone_rt *zr = &s->zrt[z];
	uint64_t foot = DV_ROUND_UP(zr->wp, DV_BLOCK_BYTES);
	if (foot < foot_min)
		foot = DV_ROUND_UP(foot_min, DV_BLOCK_BYTES);
	uint32_t n = zidx_bytes(zr->count, DV_BLOCK_BYTES);
	if (foot + n > s->sb.zone_bytes) {
		DV_ASSERT(foot_min > 0); /* only torn bytes on a zoned device take the room */
		s->sb.zones[z].state = ZONE_FULL;
		s->sb.zones[z].footer_block = ZONE_NO_INDEX;
		sb_request(s);
		return dev_zone_finish(s->dev, zone_base(s, z), s->sb.zone_bytes);
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
		s->sb.zones[z].state = ZONE_FULL;
		s->sb.zones[z].footer_block = (uint32_t)(foot / DV_BLOCK_BYTES);
		sb_request(s);
		err = dev_zone_finish(s->dev, zone_base(s, z), s->sb.zone_bytes);
	}
	return err;
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

/* Step 3 for one OPEN zone (after every FULL zone's run is loaded). */
static int recover_open_zone(struct store *s, uint32_t z)
{
	struct zone_rt *zr = &s->zrt[z];
	uint64_t end = 0;
	bool torn = false;
	int err = scan_zone(s, z, &end, &torn);
	if (err)
		return err;
	zr->wp = end;
	s->st.recovery_torn_tails += torn;
	zidx_sort(zr->entries, zr->count);
	if (s->cfg.read_only)
		return 0;
	bool redundant = zr->count > 0 && zone_redundant(s, z);
	s->st.recovery_redundant_zones += redundant;
	if (zr->count == 0 || redundant) {
		zr->count = 0; /* nothing of it goes into the index */
		zr->max_seq = 0;
		s->sb.zones[z].state = ZONE_EMPTY;
		s->sb.zones[z].gen++;
		memo_zone_gen_changed(&s->memo, z, s->sb.zones[z].gen);
		sb_request(s);
		return dev_zone_reset(s->dev, zone_base(s, z), s->sb.zone_bytes);
	}
	uint64_t wp = 0;
	if (dev_info(s->dev)->zoned && (err = dev_zone_wp(s->dev, zone_base(s, z), &wp)) != 0)
		return err;
	return write_zone_index_sync(s, z, wp);
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

#define MERGE_PARTS 2u           /* the machine's cores are few; two is enough */
#define MERGE_PARALLEL_MIN 20000u /* below this, a thread costs more than it saves */

/* Merge the runs into the index: per key (hash128) the highest seq wins.
 * Large recoveries split the hash space in two halves merged at once. */
static int merge_runs(struct store *s, struct run *runs, uint32_t nruns, uint64_t total)
{
	unsigned parts = total >= MERGE_PARALLEL_MIN ? MERGE_PARTS : 1;
	struct merge_part mp[MERGE_PARTS] = {0};
	int err = 0;
	for (unsigned p = 0; p < parts && !err; p++) {
		mp[p].s = s;
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

static int recover_zones(struct store *s, struct run *runs, uint64_t *total)
{
	int err = 0;
	/* FULL zones first: an OPEN zone is judged against them. */
	for (uint32_t z = 0; z < s->sb.zone_count && !err; z++)
		if (s->sb.zones[z].state == ZONE_FULL)
			err = recover_full_zone(s, z);
	for (uint32_t z = 0; z < s->sb.zone_count && !err; z++)
		if (s->sb.zones[z].state == ZONE_OPEN)
			err = recover_open_zone(s, z);
	for (uint32_t z = 0; z < s->sb.zone_count && !err; z++) {
		struct zone_rt *zr = &s->zrt[z];
		for (uint32_t i = 0; i < zr->count; i++)
			zr->rec_bytes += zr->entries[i].size;
		zr->rec_count = zr->count;
		runs[z] = (struct run){.e = zr->entries, .count = zr->count, .zone = z};
		*total += zr->count;
		if (zr->max_seq + 1 > s->next_seq)
			s->next_seq = zr->max_seq + 1;
	}
	return err;
}

int store_recover(struct store *s)
{
	uint64_t t0 = mono_us();
	int err = load_superblock(s);
	if (err == 1)
		err = load_superblock(s);
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
	/* A crash between a collection's superblock write (EMPTY) and its
	 * reset leaves an EMPTY zone with data: harmless when emulated (the
	 * new generation hides it) but a real zoned device only appends at
	 * its write pointer, so reset every EMPTY zone there. */
	if (!err && !s->cfg.read_only && dev_info(s->dev)->zoned)
		for (uint32_t z = 0; z < s->sb.zone_count && !err; z++)
			if (s->sb.zones[z].state == ZONE_EMPTY)
				err = dev_zone_reset(s->dev, zone_base(s, z), s->sb.zone_bytes);
	s->zones_free = zones_free_recount(s);
	if (!err && !s->cfg.read_only)
		err = sb_flush_sync(s);
	s->st.recovery_us = mono_us() - t0;
	return err;
}
