/* dev_mem.h - an in-memory device with seeded fault injection, behind the
 * same interface as the real device (dev.h). For tests and the simulator.
 *
 * Faults, each drawn per request from a seeded PRNG (rates in parts per
 * million): write EIO (range unchanged), lost write (reported done, nothing
 * stored), bit flip on write (reported done, one bit wrong on the medium),
 * read EIO, bit flip on read (transient, medium intact). A power cut after
 * N successful writes tears write N+1 at 512-byte granularity (each sector
 * persisted or not at random) and fails every later request with -EIO.
 * Every injected fault is counted so tests can prove each one was noticed.
 * Opt-in: submit_eagain_ppm refuses dev_submit() at random with -EAGAIN or
 * -EBUSY, as io_uring does with a full submission ring (transient).
 */
#ifndef DV_DEV_MEM_H
#define DV_DEV_MEM_H

#include "io/dev.h"

struct dev_fault_plan {
	uint64_t seed;
	uint32_t write_eio_ppm;
	uint32_t write_lost_ppm;
	uint32_t write_flip_ppm;
	uint32_t read_eio_ppm;
	uint32_t read_flip_ppm;
	uint64_t power_cut_after_writes; /* 0 = never */
	uint64_t faults_after_writes;    /* faults start after this many writes */
	uint32_t submit_eagain_ppm;      /* dev_submit() refused: -EAGAIN or -EBUSY */
};

struct dev_fault_stats {
	uint64_t writes, reads;
	uint64_t write_eio, write_lost, write_flip, read_eio, read_flip;
	uint64_t torn_sectors_kept, torn_sectors_lost;
	bool power_cut;
	uint64_t zoned_rejects; /* zoned mode: writes refused (off the write pointer, past the
				 * capacity, into a full/read-only/offline zone, over a limit) */
	uint64_t zone_limit_rejects; /* of those: writes that would open a zone past max_open or
				      * activate one past max_active */
	uint64_t submit_eagain; /* submissions refused by submit_eagain_ppm */
};

/* A zero-filled medium of size bytes (a multiple of DV_BLOCK_BYTES). */
int dev_open_mem(struct dev **out, uint64_t size, const struct dev_fault_plan *plan);
/* Zoned mode (NVMe ZNS semantics): zones of zone_bytes (the stride), the
 * first conventional_zones of them random-write (none: like an NVMe ZNS
 * namespace), the others writable only at their write pointer and up to
 * zone_cap bytes (0 = zone_bytes); a zone written to its capacity is full.
 * A write that opens an empty or closed zone past max_open open zones, or
 * activates an empty one past max_active active zones (open or closed),
 * fails (0 = no limit: the device does not close zones on its own). Any
 * refused write fails with -EIO and counts in zoned_rejects; reset empties
 * a zone, finish makes it full (neither counts as active then); both fail
 * on a read-only or offline zone, and reads of an offline zone fail. */
struct dev_mem_zoned {
	uint64_t zone_bytes, zone_cap;
	uint32_t conventional_zones;
	uint32_t max_open, max_active;
};
int dev_open_mem_zoned_opts(struct dev **out, uint64_t size, const struct dev_mem_zoned *zoned,
			    const struct dev_fault_plan *plan);
/* The same with capacity = zone_bytes and no limits. */
int dev_open_mem_zoned(struct dev **out, uint64_t size, uint64_t zone_bytes, uint32_t conventional_zones,
		       const struct dev_fault_plan *plan);
/* Tests: set a sequential zone's condition and write pointer directly
 * (a zone gone read-only or offline, a write pointer moved back). */
void dev_mem_zone_set(struct dev *dev, uint64_t zone_off, enum dev_zone_cond cond, uint64_t wp);
/* Power back on after a power cut (plan cleared, medium and write pointers
 * kept, open zones closed): the state a restarted node finds. */
void dev_mem_power_on(struct dev *dev);
/* An independent device holding a copy of this one now: medium, zone
 * states, fault plan, counters (clones are not copied). */
int dev_mem_snapshot(const struct dev *dev, struct dev **out);
/* Cut the power now: every later request and zone op fails with -EIO. */
void dev_mem_power_cut_now(struct dev *dev);
/* A medium that starts as a copy of image (e.g. the state after a crash). */
int dev_open_mem_copy(struct dev **out, const uint8_t *image, uint64_t size,
		      const struct dev_fault_plan *plan);
/* The medium's current bytes (valid while the device is open). */
const uint8_t *dev_mem_image(const struct dev *dev);
struct dev_fault_stats dev_mem_stats(const struct dev *dev);
/* Change the fault plan of an open device (e.g. start faults now). */
void dev_mem_set_plan(struct dev *dev, const struct dev_fault_plan *plan);
/* Corrupt one bit at byte offset off directly on the medium (no counters). */
void dev_mem_flip_bit(struct dev *dev, uint64_t off, unsigned bit);

#endif
