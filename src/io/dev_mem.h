/* dev_mem.h - an in-memory device with seeded fault injection, behind the
 * same interface as the real device (dev.h). For tests and the simulator.
 *
 * Faults, each drawn per request from a seeded PRNG (rates in parts per
 * million): write EIO (range unchanged), lost write (reported done, nothing
 * stored), bit flip on write (reported done, one bit wrong on the medium),
 * read EIO, bit flip on read (transient, medium intact), and a transient
 * submit error (dev_submit refuses with -EAGAIN or -EBUSY, as io_uring does
 * with a full ring; only while other requests are in flight, so a lone
 * synchronous request always goes through). A power cut after N successful
 * writes tears write N+1 at 512-byte granularity (each sector persisted or
 * not at random) and fails every later request with -EIO.
 * Every injected fault is counted so tests can prove each one was noticed.
 *
 * Scheduling. By default every request queued on a handle completes in the
 * next dev_poll(), in submission order (requests submitted by a done()
 * callback too), its transfer done as it completes. The adversarial
 * scheduler (opt-in, any of the knobs below) does whatever dev.h allows:
 * - reorder: each dev_poll() delivers the requests it completes in a random
 *   order, and completes a random subset: writes before earlier reads,
 *   later writes before earlier writes (io_uring promises no order);
 * - partial_ppm: a dev_poll() stops after a random number of completions,
 *   never fewer than min_complete;
 * - hold_read_ppm / hold_write_ppm / hold_fn: a request is held back for
 *   some polls while others complete (a dev_poll(n) that cannot deliver n
 *   otherwise completes held ones: it would block on a real device);
 * - early_io_ppm: a queued request's transfer happens at a poll before the
 *   one that delivers it (a read then returns what the medium held then, a
 *   write is on the medium before it is acknowledged).
 * Requests submitted by done() callbacks wait for the next dev_poll(). In
 * zoned mode the writes of one handle to one sequential zone still reach
 * the medium in submission order (the kernel keeps zone write order).
 * Power cut with the adversarial scheduler, or by dev_mem_power_cut(): every
 * write submitted and not yet on the medium is, each at random, persisted,
 * torn or lost (an unacknowledged write has an unknown effect), and every
 * request not yet delivered completes with -EIO; writes already delivered
 * as successful are on the medium.
 * Every draw (faults and scheduling) comes from the medium's one PRNG,
 * seeded by plan.seed: the same seed and the same calls replay bit for bit.
 */
#ifndef DV_DEV_MEM_H
#define DV_DEV_MEM_H

#include "io/dev.h"

enum dev_fault {
	DEV_FAULT_WRITE_EIO = 1,
	DEV_FAULT_WRITE_LOST,
	DEV_FAULT_WRITE_FLIP,
	DEV_FAULT_READ_EIO,
	DEV_FAULT_READ_FLIP,
	DEV_FAULT_SUBMIT_EAGAIN, /* req was not queued */
	DEV_FAULT_CUT,           /* req was in flight at a power cut */
};

struct dev_fault_plan {
	uint64_t seed;
	uint32_t write_eio_ppm;
	uint32_t write_lost_ppm;
	uint32_t write_flip_ppm;
	uint32_t read_eio_ppm;
	uint32_t read_flip_ppm;
	uint64_t power_cut_after_writes; /* 0 = never */
	uint64_t faults_after_writes;    /* faults start after this many writes */
	uint32_t submit_eagain_ppm;      /* dev_submit: -EAGAIN/-EBUSY while requests are in flight */
	/* Adversarial scheduler (see above); all zero/false/NULL = default. */
	bool reorder;
	uint32_t partial_ppm;
	uint32_t hold_read_ppm;
	uint32_t hold_write_ppm;
	uint32_t hold_polls_max; /* a held request waits 1..this many polls; 0 = 8 */
	/* Polls to hold req, chosen by the caller at submit (added to a seeded
	 * hold): e.g. the reads of one operation. NULL = none. */
	uint32_t (*hold_fn)(void *arg, const struct dev_req *req);
	void *hold_arg;
	uint32_t early_io_ppm;
	/* A zone reset leaves the old bytes in place (as on a regular file,
	 * or a discard that does not zero): a reset zone reads back what it
	 * held, so a reader that takes zeros for "nothing here" is caught. */
	bool reset_keeps_bytes;
	/* Told of every injected fault as it happens, under the medium's lock
	 * (it must not call the device): lets a test tell which request was
	 * hit. NULL = none. */
	void (*fault_fn)(void *arg, const struct dev_req *req, enum dev_fault kind);
	void *fault_arg;
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
	uint64_t submit_eagain; /* dev_submit refused (ring full) */
	/* Adversarial scheduler. */
	uint64_t reordered;     /* delivered while an earlier-submitted request was not yet */
	uint64_t partial_polls; /* dev_poll calls that left completable requests queued */
	uint64_t held;          /* requests held back at submit */
	uint64_t held_forced;   /* held requests completed early to satisfy min_complete */
	uint64_t early_io;      /* transfers done at a poll before the one delivering them */
	/* Writes not yet on the medium at a power cut. */
	uint64_t cut_persisted, cut_torn, cut_lost;
	uint64_t cut_written;   /* writes on the medium at the cut, not yet delivered */
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
/* Cut the power now (whatever the plan): see "Power cut" above. */
void dev_mem_power_cut(struct dev *dev);
/* An independent device holding a copy of this one now: medium, zone
 * states, fault plan, counters (clones and requests in flight are not
 * copied). */
int dev_mem_snapshot(const struct dev *dev, struct dev **out);
/* A medium that starts as a copy of image (e.g. the state after a crash). */
int dev_open_mem_copy(struct dev **out, const uint8_t *image, uint64_t size,
		      const struct dev_fault_plan *plan);
/* The medium's current bytes (valid while the device is open). */
const uint8_t *dev_mem_image(const struct dev *dev);
struct dev_fault_stats dev_mem_stats(const struct dev *dev);
/* Change the fault plan of an open device (e.g. start faults now); the
 * PRNG restarts from plan->seed. */
void dev_mem_set_plan(struct dev *dev, const struct dev_fault_plan *plan);
/* Corrupt one bit at byte offset off directly on the medium (no counters). */
void dev_mem_flip_bit(struct dev *dev, uint64_t off, unsigned bit);

#endif
