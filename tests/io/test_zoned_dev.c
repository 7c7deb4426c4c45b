/* test_zoned_dev.c - zoned devices behind dev.h: the zone report, reset,
 * finish, writes at the write pointer only and within the zone capacity,
 * open and active zone limits.
 *
 * Without DV_TEST_DEVICE: dev_mem's zoned mode (NVMe ZNS semantics) with
 * capacity below the zone size, no conventional zones, strict open and
 * active limits (a write that would open one zone too many fails and is
 * counted), read-only and offline zones, zones closed by a power cycle.
 * With DV_TEST_DEVICE=/dev/X (the tests/zns guest: /dev/nvme0n1, an emulated
 * NVMe ZNS namespace, or /dev/nvme0n2, a conventional one): the same checks
 * through dev_uring, i.e. BLKREPORTZONE, BLKRESETZONE and BLKFINISHZONE on
 * a real kernel zoned block device, and the geometry dev_info reads from
 * sysfs and the zone report. DESTROYS the device's data (every zone is
 * reset at the end). A conventional device gets reads, writes and discard
 * at its first and last blocks, and -EOPNOTSUPP for zone reports. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/constants.h"
#include "io/dev.h"
#include "io/dev_mem.h"
#include "testing.h"

#define BLK DV_BLOCK_BYTES
#define KiB 1024ull
#define MiB (1024ull * 1024ull)

static void fill(uint8_t *buf, uint32_t len, uint64_t tag)
{
	uint64_t s = tag * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t w = test_rand(&s) | 1;
		memcpy(buf + i, &w, 8);
	}
}

static uint8_t *xbuf(uint64_t len)
{
	uint8_t *p = dev_buf_alloc(len);
	CHECK(p != NULL);
	return p;
}

static int zwrite(struct dev *d, uint64_t off, uint32_t len, uint64_t tag)
{
	uint8_t *b = xbuf(len);
	fill(b, len, tag);
	int err = dev_write_sync(d, off, b, len);
	dev_buf_free(b);
	return err;
}

static bool zread_is(struct dev *d, uint64_t off, uint32_t len, uint64_t tag)
{
	uint8_t *b = xbuf(len), *want = xbuf(len);
	fill(want, len, tag);
	bool ok = dev_read_sync(d, off, b, len) == 0 && memcmp(b, want, len) == 0;
	dev_buf_free(b);
	dev_buf_free(want);
	return ok;
}

static struct dev_zone report(struct dev *d, uint64_t zone_off)
{
	struct dev_zone z = {0};
	int err = dev_zone_report(d, zone_off, &z);
	SOFT(err == 0, "zone report at %llu: %d", (unsigned long long)zone_off, err);
	return z;
}

static void expect_zone(struct dev *d, uint64_t zone_off, enum dev_zone_cond cond, uint64_t wp, const char *what)
{
	struct dev_zone z = report(d, zone_off);
	SOFT(z.cond == cond && z.wp == wp, "%s: zone at %llu is %s with wp %llu, want %s with wp %llu", what,
	     (unsigned long long)zone_off, dev_zone_cond_name(z.cond), (unsigned long long)z.wp,
	     dev_zone_cond_name(cond), (unsigned long long)wp);
}

static uint64_t zone_off(const struct dev_info *info, uint32_t z) { return (uint64_t)z * info->zone_bytes; }

static void reset_all(struct dev *d)
{
	const struct dev_info *info = dev_info(d);
	uint64_t first = zone_off(info, info->conventional_zones);
	int err = dev_zone_reset(d, first, zone_off(info, info->zone_count) - first);
	SOFT(err == 0, "reset of every sequential zone: %d", err);
}

/* The zone state machine on any zoned device (strict: dev_mem; a real
 * device may close implicitly open zones on its own to open others, as
 * QEMU does, so only the active limit is hard there). */
static void check_zoned(struct dev *d, bool strict_open)
{
	test_begin("zoned");
	const struct dev_info *info = dev_info(d);
	CHECK(info->zoned && info->zone_model != DEV_ZONES_NONE);
	CHECK(info->zone_bytes && info->zone_cap_bytes && info->zone_cap_bytes <= info->zone_bytes);
	fprintf(stderr, "%s zones: %u of %llu bytes holding %llu, %u conventional, limits %u open %u active\n",
		dev_zone_model_name(info->zone_model), info->zone_count, (unsigned long long)info->zone_bytes,
		(unsigned long long)info->zone_cap_bytes, info->conventional_zones, info->max_open_zones,
		info->max_active_zones);
	SOFT(info->zone_count == info->size_bytes / info->zone_bytes, "zone count %u for %llu bytes",
	     info->zone_count, (unsigned long long)info->size_bytes);
	uint32_t seq = info->zone_count - info->conventional_zones;
	CHECK(seq >= 3);
	reset_all(d);
	for (uint32_t z = info->conventional_zones; z < info->zone_count; z++) {
		struct dev_zone r = report(d, zone_off(info, z));
		SOFT(r.cond == DEV_ZONE_EMPTY && r.wp == 0 && r.cap == info->zone_cap_bytes,
		     "zone %u after reset: %s wp %llu cap %llu", z, dev_zone_cond_name(r.cond),
		     (unsigned long long)r.wp, (unsigned long long)r.cap);
	}
	for (uint32_t z = 0; z < info->conventional_zones; z++)
		SOFT(report(d, zone_off(info, z)).cond == DEV_ZONE_NOT_WP, "zone %u conventional", z);
	SOFT(dev_zone_report(d, 512, &(struct dev_zone){0}) == -EINVAL, "report off a zone start");

	uint64_t cap = info->zone_cap_bytes;
	uint64_t z0 = zone_off(info, info->conventional_zones), z1 = z0 + info->zone_bytes, z2 = z1 + info->zone_bytes;
	/* Writes at the write pointer only; the pointer moves. */
	SOFT(zwrite(d, z0, 2 * BLK, 1) == 0, "first write at the zone start");
	expect_zone(d, z0, DEV_ZONE_IMP_OPEN, 2 * BLK, "after 2 blocks");
	SOFT(zwrite(d, z0 + 4 * BLK, BLK, 2) < 0, "a write past the write pointer must fail");
	SOFT(zwrite(d, z0, BLK, 3) < 0, "a write behind the write pointer must fail");
	expect_zone(d, z0, DEV_ZONE_IMP_OPEN, 2 * BLK, "after refused writes");
	SOFT(zwrite(d, z0 + 2 * BLK, BLK, 4) == 0, "a write at the write pointer");
	SOFT(zread_is(d, z0, 2 * BLK, 1) && zread_is(d, z0 + 2 * BLK, BLK, 4), "data read back");
	/* Up to the capacity, not past it: a zone written to its capacity is
	 * full, whatever its size. */
	for (uint64_t p = 3 * BLK; p < cap - BLK;) {
		uint32_t n = cap - BLK - p > MiB ? (uint32_t)MiB : (uint32_t)(cap - BLK - p);
		SOFT(zwrite(d, z0 + p, n, 10 + p) == 0, "fill at %llu", (unsigned long long)p);
		p += n;
	}
	SOFT(zwrite(d, z0 + cap - BLK, 2 * BLK, 5) < 0, "a write crossing the capacity must fail");
	SOFT(zwrite(d, z0 + cap - BLK, BLK, 6) == 0, "the last block of the capacity");
	expect_zone(d, z0, DEV_ZONE_FULL, cap, "written to its capacity");
	if (cap < info->zone_bytes)
		SOFT(zwrite(d, z0 + cap, BLK, 7) < 0, "a write past the capacity, inside the zone, must fail");
	SOFT(zread_is(d, z0 + cap - BLK, BLK, 6), "last block of the capacity read back");
	/* Finish: full at once, the rest unwritten. */
	SOFT(zwrite(d, z1, BLK, 8) == 0, "write zone 1");
	SOFT(dev_zone_finish(d, z1, info->zone_bytes) == 0, "finish");
	expect_zone(d, z1, DEV_ZONE_FULL, cap, "finished");
	SOFT(zwrite(d, z1 + BLK, BLK, 9) < 0, "a write to a finished zone must fail");
	SOFT(zread_is(d, z1, BLK, 8), "a finished zone keeps its data");
	/* Reset: empty, written again from its start. */
	SOFT(dev_zone_reset(d, z0, info->zone_bytes) == 0, "reset");
	expect_zone(d, z0, DEV_ZONE_EMPTY, 0, "reset");
	SOFT(zwrite(d, z0, BLK, 11) == 0 && zread_is(d, z0, BLK, 11), "written again after the reset");
	expect_zone(d, z2, DEV_ZONE_EMPTY, 0, "a zone never written");
	reset_all(d);

	/* Limits: the active limit always; the open one where the device
	 * does not close zones by itself. */
	uint32_t lim = info->max_active_zones;
	if (strict_open && info->max_open_zones && (!lim || info->max_open_zones < lim))
		lim = info->max_open_zones;
	if (lim && lim < seq) {
		for (uint32_t i = 0; i < lim; i++)
			SOFT(zwrite(d, z0 + i * info->zone_bytes, BLK, 20 + i) == 0, "open zone %u of %u", i + 1, lim);
		int err = zwrite(d, z0 + lim * info->zone_bytes, BLK, 30);
		SOFT(err < 0, "a write opening zone %u past the limit of %u succeeded", lim + 1, lim);
		fprintf(stderr, "write opening one zone past the limit of %u: %s\n", lim, err < 0 ? strerror(-err) : "ok");
		expect_zone(d, z0 + lim * info->zone_bytes, DEV_ZONE_EMPTY, 0, "refused over the limit");
		/* A finished zone no longer counts: the next zone opens. */
		SOFT(dev_zone_finish(d, z0, info->zone_bytes) == 0, "finish one of the open zones");
		SOFT(zwrite(d, z0 + lim * info->zone_bytes, BLK, 31) == 0, "opens once one is finished");
		/* Writes to zones already open go on at the limit. */
		SOFT(zwrite(d, z0 + info->zone_bytes + BLK, BLK, 32) == 0, "an open zone takes more writes at the limit");
		reset_all(d);
	} else {
		fprintf(stderr, "zone limits not checked: limit %u with %u sequential zones\n", lim, seq);
	}
	test_end("zoned");
}

/* dev_mem only: conditions a test sets, and a power cycle closing zones. */
static void check_mem_conditions(void)
{
	test_begin("mem_conditions");
	struct dev *d;
	struct dev_mem_zoned zo = {.zone_bytes = MiB, .zone_cap = 768 * KiB, .max_open = 2, .max_active = 3};
	CHECK_EQ(dev_open_mem_zoned_opts(&d, 8 * MiB, &zo, NULL), 0);
	/* Read-only: readable, neither written, finished nor reset. */
	SOFT(zwrite(d, 0, BLK, 1) == 0, "write zone 0");
	dev_mem_zone_set(d, 0, DEV_ZONE_READONLY, BLK);
	SOFT(zread_is(d, 0, BLK, 1), "a read-only zone reads");
	SOFT(zwrite(d, BLK, BLK, 2) < 0, "a read-only zone refuses writes");
	SOFT(dev_zone_reset(d, 0, MiB) == -EIO && dev_zone_finish(d, 0, MiB) == -EIO, "nor reset, nor finish");
	/* Offline: unreadable too. */
	dev_mem_zone_set(d, MiB, DEV_ZONE_OFFLINE, 0);
	uint8_t *b = xbuf(BLK);
	SOFT(dev_read_sync(d, MiB, b, BLK) == -EIO, "an offline zone refuses reads");
	SOFT(dev_read_sync(d, MiB - BLK, b, 2 * BLK) == -EIO, "a read reaching an offline zone fails");
	dev_buf_free(b);
	/* A power cycle closes open zones: still active, no longer open. */
	SOFT(zwrite(d, 2 * MiB, BLK, 3) == 0 && zwrite(d, 3 * MiB, BLK, 4) == 0, "open two zones");
	SOFT(zwrite(d, 4 * MiB, BLK, 5) < 0, "a third open zone is over max_open 2");
	dev_mem_power_cut(d);
	SOFT(zwrite(d, 2 * MiB + BLK, BLK, 6) < 0 && dev_zone_reset(d, 2 * MiB, MiB) == -EIO, "dead after the cut");
	dev_mem_power_on(d);
	expect_zone(d, 2 * MiB, DEV_ZONE_CLOSED, BLK, "open zone after a power cycle");
	SOFT(zwrite(d, 4 * MiB, BLK, 7) == 0, "a third zone opens: the others are closed (max_active 3)");
	SOFT(zwrite(d, 5 * MiB, BLK, 8) < 0, "a fourth active zone is over max_active 3");
	SOFT(zwrite(d, 2 * MiB + BLK, BLK, 9) == 0, "a closed zone opens again at its write pointer");
	SOFT(zwrite(d, 3 * MiB + BLK, BLK, 10) < 0, "a third open zone (closed 3 MiB reopening) is over max_open 2");
	struct dev_fault_stats st = dev_mem_stats(d);
	SOFT(st.zone_limit_rejects == 3, "%llu writes refused over a limit, want 3",
	     (unsigned long long)st.zone_limit_rejects);
	dev_close(d);
	/* Geometry checks of the zoned mode. */
	SOFT(dev_open_mem_zoned_opts(&d, 8 * MiB, &(struct dev_mem_zoned){.zone_bytes = MiB, .zone_cap = 2 * MiB},
				     NULL) == -EINVAL, "capacity above the zone size");
	SOFT(dev_open_mem_zoned_opts(&d, 8 * MiB, &(struct dev_mem_zoned){.zone_bytes = MiB, .conventional_zones = 8},
				     NULL) == -EINVAL, "no sequential zone");
	test_end("mem_conditions");
}

/* A conventional (ordinary) block device: no zones, reads and writes
 * anywhere, discard. */
static void check_conventional(struct dev *d)
{
	test_begin("conventional");
	const struct dev_info *info = dev_info(d);
	CHECK(!info->zoned && info->zone_model == DEV_ZONES_NONE && info->is_block_device);
	fprintf(stderr, "conventional: %llu bytes, %u-byte logical blocks\n", (unsigned long long)info->size_bytes,
		info->logical_block_bytes);
	SOFT(dev_zone_report(d, 0, &(struct dev_zone){0}) == -EOPNOTSUPP, "zone report on a conventional device");
	uint64_t last = info->size_bytes - 8 * BLK;
	SOFT(zwrite(d, last, 8 * BLK, 1) == 0 && zwrite(d, 0, 8 * BLK, 2) == 0 && zwrite(d, 4 * BLK, BLK, 3) == 0,
	     "writes at the end, the start, and over them");
	SOFT(zread_is(d, last, 8 * BLK, 1) && zread_is(d, 0, 4 * BLK, 2) && zread_is(d, 4 * BLK, BLK, 3),
	     "read back");
	SOFT(dev_zone_reset(d, 0, MiB) == 0, "discard");
	/* Zeroes where it wrote (a discard need not read back as zeroes): the
	 * store formats only a device that is empty where a superblock goes,
	 * and the next command of tests/zns formats this one. */
	uint8_t *zero = dev_buf_alloc(8 * BLK);
	CHECK(zero != NULL);
	memset(zero, 0, 8 * BLK);
	SOFT(dev_write_sync(d, 0, zero, 8 * BLK) == 0 && dev_write_sync(d, last, zero, 8 * BLK) == 0, "zeroed");
	dev_buf_free(zero);
	test_end("conventional");
}

int main(void)
{
	double t0 = test_now_s();
	const char *path = getenv("DV_TEST_DEVICE");
	if (path && *path) {
		struct dev *d = NULL;
		int err = dev_open_path(&d, path, &(struct dev_open_opts){0});
		if (err) {
			fprintf(stderr, "%s: %s\n", path, strerror(-err));
			return 1;
		}
		if (dev_info(d)->zoned)
			check_zoned(d, false);
		else
			check_conventional(d);
		dev_close(d);
	} else {
		struct dev *d;
		/* NVMe ZNS-like: no conventional zone, capacity below size. */
		struct dev_mem_zoned zo = {.zone_bytes = MiB, .zone_cap = 768 * KiB, .max_open = 4, .max_active = 5};
		CHECK_EQ(dev_open_mem_zoned_opts(&d, 16 * MiB, &zo, NULL), 0);
		check_zoned(d, true);
		SOFT(dev_mem_stats(d).zone_limit_rejects == 1, "one write refused over the limit");
		dev_close(d);
		/* Leading conventional zones, capacity = size, no limits. */
		CHECK_EQ(dev_open_mem_zoned(&d, 16 * MiB, MiB, 2, NULL), 0);
		check_zoned(d, true);
		dev_close(d);
		check_mem_conditions();
	}
	unsigned f = test_soft_failures();
	fprintf(stderr, "%s: %u failed checks (%.2fs)\n", f ? "FAILED" : "passed", f, test_now_s() - t0);
	return f ? 1 : 0;
}
