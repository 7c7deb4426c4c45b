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
	uint64_t zoned_rejects; /* zoned mode: writes not at the write pointer */
	uint64_t submit_eagain; /* submissions refused by submit_eagain_ppm */
};

/* A zero-filled medium of size bytes (a multiple of DV_BLOCK_BYTES). */
int dev_open_mem(struct dev **out, uint64_t size, const struct dev_fault_plan *plan);
/* Zoned mode (NVMe ZNS semantics): zones of zone_bytes, the first
 * conventional_zones of them random-write, the others writable only at
 * their write pointer (anything else fails with -EIO and counts in
 * zoned_rejects); reset rewinds the pointer, finish moves it to the end. */
int dev_open_mem_zoned(struct dev **out, uint64_t size, uint64_t zone_bytes, uint32_t conventional_zones,
		       const struct dev_fault_plan *plan);
/* Power back on after a power cut (plan cleared, medium and write pointers
 * kept): the state a restarted node finds. */
void dev_mem_power_on(struct dev *dev);
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
