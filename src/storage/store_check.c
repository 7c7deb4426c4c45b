/* store_check.c - offline verification (dynvme check).
 *
 * 1. Superblock copies: each one verified on its own.
 * 2. Recovery in read-only mode (zone indexes + scan of open zones + merge):
 *    failure to recover is damage.
 * 3. Every FULL zone: its records are scanned (every checksum) and the set
 *    of (hash, seq, offset, size, type) must equal its zone index exactly.
 * 4. Every index entry: the record it names reads back, verifies and holds
 *    a key with the indexed hash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "store_int.h"

static int cmp_entry(const void *a, const void *b) { return zidx_entry_cmp(a, b); }

static bool entries_equal(const struct zidx_entry *a, const struct zidx_entry *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (zidx_entry_cmp(&a[i], &b[i]) || a[i].off_units != b[i].off_units || a[i].size != b[i].size ||
		    a[i].type != b[i].type)
			return false;
	return true;
}

/* The device's zones as the engine uses them. */
static void check_geometry(struct store *s, FILE *log)
{
	struct store_stats st;
	store_get_stats(s, &st);
	fprintf(log, "zone model: %s; %u data zones every %llu bytes, %llu written of each (capacity)",
		st.zone_model, st.zones_total, (unsigned long long)st.zone_bytes, (unsigned long long)st.zone_cap);
	if (st.sb_log)
		fprintf(log, "; superblock log in the two zones at bytes %llu and %llu",
			(unsigned long long)s->sbp.log_off[0], (unsigned long long)s->sbp.log_off[1]);
	fputc('\n', log);
	if (dev_info(s->dev)->zoned)
		fprintf(log, "zone limits: device %u open, %u active (0 = none); the engine keeps at most %u data "
			     "zones open%s\n",
			st.dev_max_open_zones, st.dev_max_active_zones, st.zones_open_limit,
			st.sb_log ? " (and the superblock log's one)" : "");
}

/* Step 3 for one FULL zone. */
static void check_full_zone(struct store *s, uint32_t z, FILE *log, struct store_check_report *rep)
{
	struct zone_rt *zr = &s->zrt[z];
	int err = read_zone_index(s, z);
	struct zidx_entry *idx = zr->entries;
	uint32_t idx_count = zr->count;
	uint64_t idx_end = zr->wp;
	zr->entries = NULL;
	zr->count = zr->cap = 0;
	uint64_t end = 0;
	bool torn = false;
	int serr = scan_zone(s, z, &end, &torn);
	if (zr->count > 1)
		qsort(zr->entries, zr->count, sizeof(*zr->entries), cmp_entry);
	rep->records += zr->count;
	/* The zone index records the block-aligned end; a scan ends after the
	 * last record, which may stop short of the block's end. */
	bool end_ok = DV_ROUND_UP(end, DV_BLOCK_BYTES) == DV_ROUND_UP(idx_end, DV_BLOCK_BYTES);
	if (err || serr || !end_ok || idx_count != zr->count || !entries_equal(idx, zr->entries, idx_count)) {
		rep->bad_zone_indexes++;
		rep->damage++;
		fprintf(log, "zone %u: DAMAGED: zone index %s, %u indexed vs %u scanned records, data end %llu vs %llu\n",
			z, err ? dv_strerror(err) : "readable", idx_count, zr->count,
			(unsigned long long)idx_end, (unsigned long long)end);
	}
	free(idx);
	free(zr->entries);
	zr->entries = NULL;
	zr->count = zr->cap = 0;
}

struct entry_check {
	struct store *s;
	uint8_t *buf;
	uint64_t bad;
};

static bool check_payload(void *arg, uint64_t p)
{
	struct entry_check *ec = arg;
	struct store *s = ec->s;
	uint32_t blocks = pl_blocks(p) ? pl_blocks(p) : (uint32_t)(STORE_RECORD_BYTES_MAX / DV_BLOCK_BYTES);
	uint64_t start = zone_base(s, pl_zone(p)) + pl_off(p) / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
	uint64_t zone_end = zone_base(s, pl_zone(p)) + s->sb.zone_cap;
	uint32_t len = blocks * DV_BLOCK_BYTES;
	if (start + len > zone_end)
		len = (uint32_t)(zone_end - start);
	struct rec_view r;
	uint32_t in_block = (uint32_t)(pl_off(p) % DV_BLOCK_BYTES);
	int err = dev_read_sync(s->dev, start, ec->buf, len);
	if (!err)
		err = rec_decode(ec->buf + in_block, len - in_block, &r, NULL);
	if (!err && (r.zone_gen != s->sb.zones[pl_zone(p)].gen ||
		     !index_contains(s->index, dv_key_hash64(r.key, r.key_len), p)))
		err = -DV_ECORRUPT;
	ec->bad += err != 0;
	return true;
}

int store_check(struct dev *dev, FILE *log, struct store_check_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	struct store *s = NULL;
	struct store_config cfg = {.read_only = true};
	int err = store_open(&s, dev, &cfg);
	if (err) {
		fprintf(log, "recovery failed: %s\n", dv_strerror(err));
		rep->damage++;
		return err == -DV_EFORMAT || err == -DV_EVERSION ? err : 0;
	}
	check_geometry(s, log);
	rep->sb_valid_copies = sb_check_copies(s, log);
	struct store_stats st;
	store_get_stats(s, &st);
	rep->keys = st.keys;
	rep->torn_tails = st.recovery_torn_tails;
	rep->zones_unusable = st.zones_unusable;
	rep->zones_lost = st.zones_lost;
	rep->zones_wp_mismatch = st.zones_wp_mismatch;
	/* Lost zones and write pointers behind the data mean records the
	 * device no longer holds; read-only zones are readable, only spent. */
	rep->damage += st.zones_lost + st.zones_wp_mismatch;
	if (st.zones_unusable || st.zones_wp_mismatch)
		fprintf(log, "device zones: %u read-only, offline or shrunk (never written again), %u of them offline "
			     "with records (lost); %u with the write pointer behind the data (DAMAGED)\n",
			st.zones_unusable, st.zones_lost, st.zones_wp_mismatch);
	for (uint32_t z = 0; z < s->sb.zone_count; z++) {
		uint8_t state = s->sb.zones[z].state;
		rep->zones_empty += state == ZONE_EMPTY;
		rep->zones_open += state == ZONE_OPEN;
		rep->zones_full += state == ZONE_FULL;
		static const char *const issue[] = {
			[ZONE_ISSUE_READONLY] = "read-only: read, never written or reset again",
			[ZONE_ISSUE_OFFLINE] = "offline: unreadable, its records are lost",
			[ZONE_ISSUE_WP_BEHIND] = "write pointer behind the data written: DAMAGED, never written over",
			[ZONE_ISSUE_SHRUNK] = "capacity below the superblock's: never written again",
		};
		if (s->zrt[z].dev_issue)
			fprintf(log, "zone %u (%s): the device reports it %s\n", z,
				state == ZONE_FULL ? "full" : state == ZONE_OPEN ? "open" : "empty", issue[s->zrt[z].dev_issue]);
		if (s->zrt[z].dev_issue == ZONE_ISSUE_OFFLINE)
			continue;
		if (state == ZONE_FULL && s->sb.zones[z].footer_block == ZONE_NO_INDEX)
			fprintf(log, "zone %u: sealed without a zone index after a torn write (scanned at recovery)\n", z);
		else if (state == ZONE_FULL)
			check_full_zone(s, z, log, rep);
	}
	struct entry_check ec = {.s = s, .buf = dev_buf_alloc(STORE_RECORD_BYTES_MAX)};
	if (ec.buf)
		index_walk(s->index, 0, UINT64_MAX, check_payload, &ec);
	rep->bad_records = ec.bad;
	rep->damage += ec.bad;
	dev_buf_free(ec.buf);
	fprintf(log, "zones: %u full, %u open, %u empty; %llu records scanned; %llu keys; "
		"%llu unreadable indexed records; %u damaged zone indexes; %u torn tails (cut at next open)\n",
		rep->zones_full, rep->zones_open, rep->zones_empty, (unsigned long long)rep->records,
		(unsigned long long)rep->keys, (unsigned long long)rep->bad_records, rep->bad_zone_indexes,
		rep->torn_tails);
	store_close(s);
	return ec.buf ? 0 : -ENOMEM;
}
