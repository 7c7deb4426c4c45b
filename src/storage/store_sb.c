/* store_sb.c - where the superblock lives, how it is found, formatted and
 * written.
 *
 * Two placements (decided by the device, never stored: the superblock has
 * to be found before it can be read):
 * - Fixed copies: two copies at offsets 0 and sb_bytes(DV_ZONE_COUNT_MAX),
 *   written in turn (sb_seq % 2), on a regular file, an ordinary block
 *   device, or a zoned device whose leading conventional zones hold both.
 *   A torn write damages only the copy being written.
 * - Log (a zoned device without that much conventional space, e.g. NVMe
 *   ZNS, as btrfs does on zoned devices): the first two sequential zones
 *   hold copies of copy_bytes = sb_bytes(zone_count) each, appended at the
 *   write pointer of the current log zone, slot k at k * copy_bytes. When
 *   the next copy does not fit, the current zone is finished (so it stops
 *   counting as active) and the other zone, which holds only older copies,
 *   is reset and takes the copy at its start. At every step one zone holds
 *   the newest durable copy: only one superblock write is in flight, and
 *   the zone reset is never the one holding it. At load, each log zone is
 *   read back from its write pointer (a full zone: from its last slot)
 *   down to the first copy that verifies; the one with the highest sb_seq
 *   is current. A write pointer past a torn copy, or off a slot boundary,
 *   sends the next write to the other zone.
 * Neither placement finds a valid copy: format only when no copy slot read
 * holds the dynvme magic, the device is empty where a superblock goes
 * (sb_area_empty: zeroes, or empty log zones) and the caller allows it
 * (never over damage, over a device of another format version, or over
 * another program's data).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/le.h"
#include "store_int.h"

/* Copy slots read at a time when reading a log zone back. */
#define SB_LOG_READ_BYTES (1u << 20)

static uint64_t sb_copy_off(unsigned copy) { return copy * (uint64_t)sb_bytes(DV_ZONE_COUNT_MAX); }

static uint32_t copy_bytes(const struct store *s) { return sb_bytes(s->sb.zone_count); }

int sb_place_init(struct store *s)
{
	const struct dev_info *info = dev_info(s->dev);
	struct sb_place *p = &s->sbp;
	*p = (struct sb_place){0};
	if (!info->zoned || (uint64_t)info->conventional_zones * info->zone_bytes >= 2ull * sb_bytes(DV_ZONE_COUNT_MAX))
		return 0;
	if (info->zone_count < info->conventional_zones + 2 + DV_ZONE_COUNT_MIN) {
		fprintf(stderr, "dynvme: %u zones: need 2 for the superblock log and %u for data\n",
			info->zone_count - info->conventional_zones, DV_ZONE_COUNT_MIN);
		return -EOPNOTSUPP;
	}
	p->log = true;
	p->log_off[0] = (uint64_t)info->conventional_zones * info->zone_bytes;
	p->log_off[1] = p->log_off[0] + info->zone_bytes;
	p->log_cap = info->zone_cap_bytes;
	return 0;
}

uint64_t sb_front(const struct store *s)
{
	const struct dev_info *info = dev_info(s->dev);
	if (s->sbp.log)
		return s->sbp.log_off[1] + info->zone_bytes;
	return info->zoned ? (uint64_t)info->conventional_zones * info->zone_bytes : 0;
}

static uint64_t default_zone_bytes(const struct store *s, uint64_t front)
{
	const struct dev_info *info = dev_info(s->dev);
	uint64_t z = s->cfg.zone_bytes ? s->cfg.zone_bytes : 64ull << 20;
	uint64_t fit = info->size_bytes > front ? (info->size_bytes - front) / 8 : 0;
	if (!s->cfg.zone_bytes && z > fit) /* small device: at least 8 zones */
		z = fit / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
	return z < DV_ZONE_BYTES_MIN ? DV_ZONE_BYTES_MIN : z;
}

/* The geometry a format gives this device. Deterministic: a log's copy
 * size at load comes from it. On a zoned device the zones are the
 * device's: its stride, and its capacity up to what a zone can hold. */
static int sb_geometry(struct store *s, struct sb *plan)
{
	const struct dev_info *info = dev_info(s->dev);
	if (!info->zoned) {
		uint64_t front = sb_fixed_area_bytes();
		return sb_plan(plan, info->size_bytes, default_zone_bytes(s, front), 0, 0);
	}
	uint64_t cap = info->zone_cap_bytes < DV_ZONE_BYTES_MAX ? info->zone_cap_bytes : DV_ZONE_BYTES_MAX;
	if (cap < DV_ZONE_BYTES_MIN) {
		fprintf(stderr, "dynvme: zone capacity %llu bytes: need at least %u\n",
			(unsigned long long)cap, DV_ZONE_BYTES_MIN);
		return -EOPNOTSUPP;
	}
	int err = sb_plan(plan, info->size_bytes, info->zone_bytes, cap, sb_front(s));
	if (!err && s->sbp.log && s->sbp.log_cap < 2ull * sb_bytes(plan->zone_count)) {
		fprintf(stderr, "dynvme: a superblock log zone holds %llu bytes: less than two %u-byte copies\n",
			(unsigned long long)s->sbp.log_cap, sb_bytes(plan->zone_count));
		err = -EOPNOTSUPP;
	}
	return err;
}

/* ---- format ---- */

/* Zeros over [off, off + len) of the device, in 1 MiB writes. */
static int zero_range(struct store *s, uint64_t off, uint64_t len)
{
	enum { CHUNK = 1u << 20 };
	uint8_t *buf = dev_buf_alloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, CHUNK);
	int err = 0;
	for (uint64_t done = 0; done < len && !err;) {
		uint32_t n = len - done < CHUNK ? (uint32_t)(len - done) : CHUNK;
		err = dev_write_sync(s->dev, off + done, buf, n);
		done += n;
	}
	dev_buf_free(buf);
	return err;
}

/* A zone reset of a regular file discards nothing (dev.h), so records of
 * an earlier store may still be in its zones, at the generation a new
 * format gives (1) and with higher seqs than ours: recovery would take
 * them for ours past our open zone's tail. A format over a file that is
 * not new (its first MiB zeroed, the rest as it was) writes zeros over
 * the data zones first. A block device's discard need not zero either;
 * zeroing a whole device at format is not done (docs: ARCHITECTURE). */
static int format_discard_old(struct store *s, const struct sb *plan)
{
	const struct dev_info *info = dev_info(s->dev);
	if (info->zoned || info->is_block_device || info->zero_filled)
		return 0;
	uint64_t len = (uint64_t)plan->zone_count * plan->zone_bytes;
	fprintf(stderr, "dynvme: formatting a data file that is not new: writing zeros over its %llu MiB of zones first\n",
		(unsigned long long)(len >> 20));
	return zero_range(s, plan->data_start, len);
}

int sb_format(struct store *s)
{
	struct sb plan = {0};
	int err = sb_geometry(s, &plan);
	if (err)
		return err;
	plan.zones = calloc(plan.zone_count, sizeof(*plan.zones));
	if (!plan.zones)
		return -ENOMEM;
	for (unsigned i = 0; i < 2 && s->sbp.log && !err; i++)
		err = dev_zone_reset(s->dev, s->sbp.log_off[i], plan.zone_bytes);
	if (!err)
		err = format_discard_old(s, &plan);
	for (uint32_t z = 0; z < plan.zone_count && !err; z++) {
		plan.zones[z] = (struct zone_entry){.state = ZONE_EMPTY, .gen = 1};
		err = dev_zone_reset(s->dev, plan.data_start + z * plan.zone_bytes, plan.zone_bytes);
	}
	uint32_t n = sb_bytes(plan.zone_count);
	uint8_t *buf = dev_buf_alloc(n);
	if (!buf && !err)
		err = -ENOMEM;
	if (!err && s->sbp.log) {
		plan.sb_seq = 1; /* the log's first copy: slot 0 of log zone 0 */
		sb_encode(buf, &plan);
		err = dev_write_sync(s->dev, s->sbp.log_off[0], buf, n);
	}
	for (unsigned copy = 0; copy < DV_SB_COPIES && !err && !s->sbp.log; copy++) {
		plan.sb_seq = copy + 1;
		sb_encode(buf, &plan);
		err = dev_write_sync(s->dev, sb_copy_off(plan.sb_seq % DV_SB_COPIES), buf, n);
	}
	dev_buf_free(buf);
	free(plan.zones);
	return err;
}

/* ---- load ---- */

/* What reading the superblock found: the best copy, and whether any copy
 * read carried the magic (then the device is never formatted over). */
struct sb_found {
	int rc;       /* 0: sb holds a valid copy; else why none was found */
	bool magic;   /* some slot read has the dynvme magic */
	bool version; /* ... of another format version */
	struct sb sb;
	uint64_t end; /* log: the end of the copy in its zone */
};

static void note_rc(struct sb_found *f, const uint8_t *copy, int rc)
{
	f->magic |= le_get64(copy + 8) == SB_MAGIC;
	f->version |= rc == -DV_EVERSION;
	if (f->rc != 0 && (f->rc == -DV_EFORMAT || rc == -DV_EVERSION))
		f->rc = rc; /* keep the most telling reason */
}

/* A fixed copy: its header first (the zone count says how long it is).
 * false: a read error (in f->rc); else *digest is what was decoded. */
static bool read_fixed_copy_once(struct store *s, unsigned copy, uint8_t *buf, struct sb_found *f, uint64_t *digest)
{
	f->rc = store_read_sync(s, sb_copy_off(copy), buf, DV_BLOCK_BYTES);
	if (f->rc)
		return false;
	uint32_t count = le_get32(buf + 40);
	uint32_t n = count <= DV_ZONE_COUNT_MAX ? sb_bytes(count) : DV_BLOCK_BYTES;
	if (n > DV_BLOCK_BYTES && (f->rc = store_read_sync(s, sb_copy_off(copy), buf, n)))
		return false;
	*digest = dv_checksum64(buf, n);
	f->rc = -DV_EFORMAT;
	int rc = sb_decode(buf, n, &f->sb, DV_ZONE_COUNT_MAX);
	note_rc(f, buf, rc);
	f->rc = rc;
	return true;
}

/* A copy that does not decode is read again until two reads agree
 * (store_int.h): a flip in transit may hit its magic (the device would
 * pass for unformatted), its version (refused) or what its checksum
 * covers (the older copy would win). Only the last read counts. */
static void read_fixed_copy(struct store *s, unsigned copy, uint8_t *buf, struct sb_found *f)
{
	uint64_t digest = 0, prev = 0;
	for (unsigned i = 0;; i++) {
		f->magic = f->version = false;
		if (!read_fixed_copy_once(s, copy, buf, f, &digest) || f->rc == 0 || reads_agree(digest, &prev, i))
			return;
	}
}

/* A log copy (n bytes at off, read into copy) that did not decode (rc):
 * read it again until it does or two reads agree (a torn copy, as the
 * newest may be); its decoder's verdict, or a read error in *io. */
static int reread_log_copy(struct store *s, uint64_t off, uint8_t *copy, uint32_t n, struct sb *out, int rc,
			   int *io)
{
	uint64_t prev = 0;
	for (unsigned i = 0; rc != 0 && !reads_agree(dv_checksum64(copy, n), &prev, i); i++) {
		if ((*io = store_read_sync(s, off, copy, n)) != 0)
			return rc;
		rc = sb_decode(copy, n, out, DV_ZONE_COUNT_MAX);
	}
	return rc;
}

/* Slots of a log zone that may hold copies, from its condition. */
static uint64_t log_slots(const struct store *s, const struct dev_zone *z, uint32_t n)
{
	uint64_t end = z->wp < s->sbp.log_cap ? z->wp : s->sbp.log_cap;
	if (z->cond == DEV_ZONE_FULL || z->cond == DEV_ZONE_READONLY)
		end = s->sbp.log_cap; /* the device no longer says where writes ended */
	if (z->cond == DEV_ZONE_EMPTY || z->cond == DEV_ZONE_OFFLINE)
		end = 0;
	return end / n;
}

/* Log zone i read back from its last slot down to the first copy that
 * verifies with this device's geometry: the newest copy the zone holds
 * (copies go in slot order, a reset zone reads as zeroes). */
static void read_log_zone(struct store *s, unsigned i, uint32_t n, uint32_t zone_count, uint8_t *buf,
			  struct sb_found *f)
{
	f->rc = -DV_EFORMAT;
	struct dev_zone z;
	int err = dev_zone_report(s->dev, s->sbp.log_off[i], &z);
	if (err) {
		f->rc = err;
		return;
	}
	if (z.cond == DEV_ZONE_OFFLINE)
		f->rc = -EIO;
	uint64_t per_read = SB_LOG_READ_BYTES / n ? SB_LOG_READ_BYTES / n : 1;
	for (uint64_t hi = log_slots(s, &z, n); hi > 0;) {
		uint64_t lo = hi > per_read ? hi - per_read : 0;
		err = store_read_sync(s, s->sbp.log_off[i] + lo * n, buf, (uint32_t)((hi - lo) * n));
		if (err) {
			f->rc = err;
			return;
		}
		for (uint64_t k = hi; k-- > lo;) {
			uint8_t *copy = buf + (k - lo) * n;
			int rc = sb_decode(copy, n, &f->sb, DV_ZONE_COUNT_MAX), io = 0;
			if (rc != 0)
				rc = reread_log_copy(s, s->sbp.log_off[i] + k * n, copy, n, &f->sb, rc, &io);
			if (io) {
				f->rc = io;
				return;
			}
			if (rc == 0 && f->sb.zone_count != zone_count)
				rc = -DV_ECORRUPT; /* not this device's geometry */
			note_rc(f, copy, rc);
			if (rc == 0) {
				f->rc = 0;
				f->end = (k + 1) * n;
				return;
			}
		}
		hi = lo;
	}
}

/* Where the next log copy goes: after the newest, at the write pointer of
 * its zone, unless that zone is full, read-only or offline (the device took
 * it out of service), the pointer is off a slot boundary
 * (a torn copy), or past what the superblock knows: then the other zone,
 * after a switch (sb_pump). */
static int log_set_next(struct store *s, unsigned cur, uint32_t n)
{
	struct dev_zone z;
	int err = dev_zone_report(s->dev, s->sbp.log_off[cur], &z);
	if (err)
		return err;
	s->sbp.cur = cur;
	bool usable = z.cond != DEV_ZONE_FULL && z.cond != DEV_ZONE_READONLY && z.cond != DEV_ZONE_OFFLINE &&
		      z.wp % n == 0 && z.wp + n <= s->sbp.log_cap;
	s->sbp.wp = usable ? z.wp : s->sbp.log_cap;
	return 0;
}

/* Nothing is where a superblock goes: the area of the fixed copies (the
 * first MiB, both copies and the gap after them) reads as zeroes, or both
 * log zones are empty. A device in any other state may hold another
 * program's data: it is never formatted (the format discards every zone:
 * resets, and zeros over the zones of a file that is not new).
 * 1: empty, 0: not, or a read error. */
static int sb_area_empty(struct store *s, uint8_t *buf)
{
	if (s->sbp.log) {
		for (unsigned i = 0; i < 2; i++) {
			struct dev_zone z;
			int err = dev_zone_report(s->dev, s->sbp.log_off[i], &z);
			if (err)
				return err;
			if (z.cond != DEV_ZONE_EMPTY)
				return 0;
		}
		return 1;
	}
	uint64_t size = dev_info(s->dev)->size_bytes;
	uint64_t end = sb_fixed_area_bytes();
	end = end < size ? end : size / DV_BLOCK_BYTES * DV_BLOCK_BYTES;
	for (uint64_t off = 0; off < end;) {
		uint32_t n = end - off < SB_LOG_READ_BYTES ? (uint32_t)(end - off) : SB_LOG_READ_BYTES;
		int err = store_read_sync(s, off, buf, n);
		if (err)
			return err;
		for (uint32_t i = 0; i < n; i++)
			if (buf[i])
				return 0;
		off += n;
	}
	return 1;
}

/* 0: s->sb holds the newest valid copy; 1: the device was formatted (load
 * again); or why none was found (-DV_EFORMAT: no dynvme superblock, and
 * not empty either, or not to be formatted). */
int sb_load(struct store *s)
{
	uint8_t *buf = dev_buf_alloc(SB_LOG_READ_BYTES > sb_bytes(DV_ZONE_COUNT_MAX) ? SB_LOG_READ_BYTES
										 : sb_bytes(DV_ZONE_COUNT_MAX));
	struct sb_found f[2] = {{.rc = -ENOMEM}, {.rc = -ENOMEM}};
	f[0].sb.zones = calloc(DV_ZONE_COUNT_MAX, sizeof(struct zone_entry));
	f[1].sb.zones = calloc(DV_ZONE_COUNT_MAX, sizeof(struct zone_entry));
	struct sb plan = {0};
	int err = buf && f[0].sb.zones && f[1].sb.zones ? 0 : -ENOMEM;
	if (!err && s->sbp.log)
		err = sb_geometry(s, &plan);
	for (unsigned c = 0; c < 2 && !err; c++) {
		if (s->sbp.log)
			read_log_zone(s, c, sb_bytes(plan.zone_count), plan.zone_count, buf, &f[c]);
		else
			read_fixed_copy(s, c, buf, &f[c]);
	}
	bool magic = f[0].magic || f[1].magic || f[0].rc == -DV_ECORRUPT || f[1].rc == -DV_ECORRUPT;
	bool unformatted = !err && !magic && !f[0].version && !f[1].version && f[0].rc == -DV_EFORMAT &&
			   f[1].rc == -DV_EFORMAT;
	int empty = unformatted && s->cfg.format_if_empty && !s->cfg.read_only ? sb_area_empty(s, buf) : 0;
	if (empty < 0)
		err = empty;
	dev_buf_free(buf);
	int best = -1;
	for (int c = 0; c < 2 && !err; c++)
		if (f[c].rc == 0 && (best < 0 || f[c].sb.sb_seq > f[best].sb.sb_seq))
			best = c;
	if (err) {
		/* as is */
	} else if (f[0].version || f[1].version) {
		/* A copy of another format version, beside this one's or newer
		 * in its log zone: written by another dynvme. Refused, whatever
		 * else is there. */
		err = -DV_EVERSION;
	} else if (best >= 0) {
		s->sb = f[best].sb;
		f[best].sb.zones = NULL;
		if (s->sbp.log && !s->cfg.read_only)
			err = log_set_next(s, (unsigned)best, copy_bytes(s));
	} else if (empty == 1) {
		err = sb_format(s);
		if (!err)
			err = 1; /* formatted: load again */
	} else {
		int rc[2] = {f[0].rc, f[1].rc};
		err = rc[0] == -ENOMEM || rc[1] == -ENOMEM ? -ENOMEM
		      : f[0].version || f[1].version ? -DV_EVERSION
		      : magic ? -DV_ECORRUPT
		      : rc[0] != -DV_EFORMAT ? rc[0] : rc[1] != -DV_EFORMAT ? rc[1] : -DV_EFORMAT;
	}
	free(f[0].sb.zones);
	free(f[1].sb.zones);
	return err;
}

/* ---- writes ---- */

static void sb_write_done(struct dev_req *req)
{
	struct store *s = req->ctx;
	DV_ASSERT(s->sb_in_flight);
	s->sb_in_flight = false;
	if (req->res < 0) {
		store_fail(s, req->res);
		return;
	}
	if (s->sbp.log)
		s->sbp.wp += req->len;
	s->sb_version_durable = s->sb_version_writing;
	s->st.device_bytes_written += req->len;
}

void sb_request(struct store *s) { s->sb_version_wanted++; }

/* The next copy does not fit the current log zone: finish it (it holds
 * the newest durable copy; full, it no longer counts as active) and reset
 * the other, which holds only older copies. Synchronous, like GC's resets. */
static int sb_log_switch(struct store *s)
{
	struct sb_place *p = &s->sbp;
	unsigned next = p->cur ^ 1;
	struct dev_zone z;
	int err = dev_zone_report(s->dev, p->log_off[p->cur], &z);
	if (!err && z.cond != DEV_ZONE_FULL && z.cond != DEV_ZONE_EMPTY && z.cond != DEV_ZONE_READONLY &&
	    z.cond != DEV_ZONE_OFFLINE) /* one the device took out of service cannot be finished */
		err = dev_zone_finish(s->dev, p->log_off[p->cur], s->sb.zone_bytes);
	if (!err)
		err = dev_zone_reset(s->dev, p->log_off[next], s->sb.zone_bytes);
	if (err)
		return err;
	p->cur = next;
	p->wp = 0;
	s->st.sb_log_resets++;
	return 0;
}

void sb_pump(struct store *s)
{
	if (s->sb_in_flight || s->failed || s->sb_version_durable >= s->sb_version_wanted)
		return;
	uint32_t n = copy_bytes(s);
	uint64_t off = 0;
	if (s->sbp.log) {
		int err = s->sbp.wp + n > s->sbp.log_cap ? sb_log_switch(s) : 0;
		if (err) {
			store_fail(s, err);
			return;
		}
		off = s->sbp.log_off[s->sbp.cur] + s->sbp.wp;
	}
	s->sb.sb_seq++;
	if (!s->sbp.log)
		off = sb_copy_off(s->sb.sb_seq % DV_SB_COPIES);
	sb_encode(s->sb_buf, &s->sb);
	s->sb_version_writing = s->sb_version_wanted;
	s->sb_req = (struct dev_req){.op = DEV_WRITE, .len = n, .off = off, .buf = s->sb_buf,
				     .done = sb_write_done, .ctx = s};
	int err = store_dev_submit(s, &s->sb_req);
	if (err) {
		/* Not written: the next attempt takes this seq again, so fixed
		 * copies keep alternating (a torn write never hits the newest). */
		s->sb.sb_seq--;
		if (err != -EAGAIN)
			store_fail(s, err);
		return;
	}
	s->sb_in_flight = true;
}

/* ---- offline check ---- */

unsigned sb_check_copies(struct store *s, FILE *log)
{
	uint8_t *buf = dev_buf_alloc(SB_LOG_READ_BYTES > sb_bytes(DV_ZONE_COUNT_MAX) ? SB_LOG_READ_BYTES
										 : sb_bytes(DV_ZONE_COUNT_MAX));
	struct sb_found f = {0};
	f.sb.zones = calloc(DV_ZONE_COUNT_MAX, sizeof(struct zone_entry));
	unsigned valid = 0;
	for (unsigned c = 0; c < DV_SB_COPIES && buf && f.sb.zones; c++) {
		if (s->sbp.log) {
			struct dev_zone z = {0};
			int err = dev_zone_report(s->dev, s->sbp.log_off[c], &z);
			read_log_zone(s, c, copy_bytes(s), s->sb.zone_count, buf, &f);
			fprintf(log, "superblock log zone %u (at byte %llu): %s, write pointer %llu of %llu",
				c, (unsigned long long)s->sbp.log_off[c], err ? dv_strerror(err) : dev_zone_cond_name(z.cond),
				(unsigned long long)z.wp, (unsigned long long)s->sbp.log_cap);
			if (f.rc == 0)
				fprintf(log, "; newest copy seq %llu in slot %llu", (unsigned long long)f.sb.sb_seq,
					(unsigned long long)(f.end / copy_bytes(s) - 1));
			else if (f.rc != -DV_EFORMAT)
				fprintf(log, "; %s", dv_strerror(f.rc));
			else
				fprintf(log, "; no copy");
		} else {
			read_fixed_copy(s, c, buf, &f);
			fprintf(log, "superblock copy %u: %s", c, f.rc ? dv_strerror(f.rc) : "ok");
			if (f.rc == 0)
				fprintf(log, " (seq %llu, %u zones of %llu bytes)", (unsigned long long)f.sb.sb_seq,
					f.sb.zone_count, (unsigned long long)f.sb.zone_bytes);
		}
		valid += f.rc == 0;
		fputc('\n', log);
	}
	free(f.sb.zones);
	dev_buf_free(buf);
	return valid;
}
