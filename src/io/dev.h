/* dev.h - a block device behind a completion-based interface.
 *
 * Contract:
 * - dev_submit() queues a request and never blocks; dev_poll() sends what is
 *   queued, waits for at least min_complete completions and calls each
 *   request's done() callback on the polling thread. A request belongs to
 *   the device from submit until done() is called.
 * - Offsets and lengths are multiples of DV_BLOCK_BYTES and buffers are
 *   DV_BLOCK_BYTES-aligned (O_DIRECT). Every write is durable when it
 *   completes successfully (RWF_DSYNC); a failed write has an unknown effect
 *   on the range and is never retried here.
 * - req->res is the byte count on success or a negative errno; a short
 *   transfer is reported as -EIO.
 * - dev_submit() returns 0; -EINVAL for a request that breaks these rules;
 *   -EAGAIN when the device cannot take a request now (a full submission
 *   ring: transient, and the request is not the device's: poll, then submit
 *   it again; the backends' -EBUSY and -EINTR are reported as -EAGAIN); or
 *   another negative errno when the device is unusable.
 * - One dev handle is used by one thread; dev_clone() gives another thread
 *   its own handle (its own ring) on the same medium.
 * - dev_notify_fd(): from then on the handle adds to an eventfd whenever a
 *   completion is posted, so a thread that also waits on other things can
 *   sleep and be woken by the device; dev_poll() then delivers. Requests
 *   reach the device only in dev_poll(), so send them (dev_poll(dev, 0))
 *   before sleeping. Per handle: a clone does not inherit it.
 * Backends: io_uring on a regular file or block device (dev_uring.c), and
 * memory with fault injection for tests (dev_mem.c).
 */
#ifndef DV_DEV_H
#define DV_DEV_H

#include <stdbool.h>
#include <stdint.h>

enum dev_op { DEV_READ = 1, DEV_WRITE = 2 };

struct dev_req {
	enum dev_op op;
	uint32_t len;
	uint64_t off;
	void *buf;
	int32_t res;
	void (*done)(struct dev_req *req);
	void *ctx;
	struct dev_req *next; /* backend-private link while queued */
};

/* Zone model of the device itself (sysfs queue/zoned). A device without
 * zones ("none": a regular file, an ordinary block device) gets zones
 * emulated by the engine; a zoned one (host-managed, host-aware) is written
 * only sequentially within each zone, at its write pointer. */
enum dev_zone_model { DEV_ZONES_NONE = 0, DEV_ZONES_HOST_MANAGED, DEV_ZONES_HOST_AWARE };

struct dev_info {
	uint64_t size_bytes;
	uint32_t logical_block_bytes; /* detected; divides DV_BLOCK_BYTES */
	bool is_block_device;
	/* At open: every byte reads as zeros (a file this open created, which
	 * is written with zeros; a new memory device). A format needs to
	 * discard nothing then (store_sb.c: sb_format). */
	bool zero_filled;
	bool zoned;               /* real zoned device (zone_model != DEV_ZONES_NONE) */
	enum dev_zone_model zone_model;
	/* Zoned devices only (0 otherwise). A zone starts every zone_bytes (the
	 * stride, sysfs chunk_sectors); only its first zone_cap_bytes can be
	 * written (the zone capacity, BLKREPORTZONE's capacity field; equal to
	 * zone_bytes on devices without one). Every sequential zone has the
	 * same capacity (a device with zones of several capacities is refused). */
	uint64_t zone_bytes;
	uint64_t zone_cap_bytes;
	uint32_t zone_count;         /* whole zones of zone_bytes on the device */
	uint32_t conventional_zones; /* leading zones that allow overwrite */
	/* Zones that may be open (being written) and active (open, or closed:
	 * written and neither full nor empty) at once; 0 = no limit (sysfs
	 * queue/max_open_zones, queue/max_active_zones). A write that would
	 * open or activate one zone too many fails. */
	uint32_t max_open_zones, max_active_zones;
};

/* Condition of a zone (BLK_ZONE_COND_*): where its write pointer stands and
 * what it accepts. A FULL zone's wp is its capacity. */
enum dev_zone_cond {
	DEV_ZONE_NOT_WP = 0,   /* conventional: no write pointer */
	DEV_ZONE_EMPTY = 1,
	DEV_ZONE_IMP_OPEN = 2, /* opened by a write */
	DEV_ZONE_EXP_OPEN = 3,
	DEV_ZONE_CLOSED = 4,   /* written, not open now: still active */
	DEV_ZONE_READONLY = 0xd,
	DEV_ZONE_FULL = 0xe,
	DEV_ZONE_OFFLINE = 0xf, /* neither readable nor writable */
};

struct dev_zone {
	enum dev_zone_cond cond;
	uint64_t wp;  /* write pointer, as an offset in the zone */
	uint64_t cap; /* writable bytes of the zone */
};

struct dev;

struct dev_ops {
	int (*submit)(struct dev *dev, struct dev_req *req);
	int (*poll)(struct dev *dev, unsigned min_complete);
	int (*zone_reset)(struct dev *dev, uint64_t off, uint64_t len);
	int (*zone_finish)(struct dev *dev, uint64_t off, uint64_t len);
	int (*zone_report)(struct dev *dev, uint64_t zone_off, struct dev_zone *out); /* NULL: not zoned */
	int (*clone)(struct dev *dev, struct dev **out);
	void (*close)(struct dev *dev);
	int (*notify_fd)(struct dev *dev, int eventfd_fd); /* NULL: not supported */
};

/* Common head of every backend's device struct. */
struct dev {
	const struct dev_ops *ops;
	struct dev_info info;
	unsigned in_flight;
};

struct dev_open_opts {
	uint64_t create_bytes; /* regular file: create and preallocate this size if absent or empty (0 bytes) */
	unsigned queue_depth;  /* io_uring entries; 0 = 256 */
	bool read_only;
};

/* A writable open takes an exclusive flock on the file or device (held
 * until dev_close): -EBUSY when another open still holds it after
 * DEV_LOCK_WAIT_MS (another process serving the same data; a process just
 * killed releases it once the kernel has torn down its io_uring, which is
 * what the wait is for). A read-only open takes none. */
#define DEV_LOCK_WAIT_MS 5000u
int dev_open_path(struct dev **out, const char *path, const struct dev_open_opts *opts);

static inline const struct dev_info *dev_info(const struct dev *dev) { return &dev->info; }
static inline unsigned dev_in_flight(const struct dev *dev) { return dev->in_flight; }
int dev_submit(struct dev *dev, struct dev_req *req);
int dev_poll(struct dev *dev, unsigned min_complete);
/* Discard a zone so it can be written again from its start: zone reset on a
 * zoned device, hole punch (file) or BLKDISCARD (block device) otherwise.
 * Synchronous: zone resets are rare and happen off the request path. */
int dev_zone_reset(struct dev *dev, uint64_t off, uint64_t len);
/* Tell a zoned device a zone is full (no-op when emulated): its write
 * pointer moves to the end and it stops counting as open or active. */
int dev_zone_finish(struct dev *dev, uint64_t off, uint64_t len);
/* Condition, write pointer and capacity of the zone starting at zone_off
 * (BLKREPORTZONE; zoned devices only, -EOPNOTSUPP otherwise). */
int dev_zone_report(struct dev *dev, uint64_t zone_off, struct dev_zone *out);
/* The write pointer alone, as an offset in the zone. */
int dev_zone_wp(struct dev *dev, uint64_t zone_off, uint64_t *wp);
const char *dev_zone_cond_name(enum dev_zone_cond c);
/* "none" (zones emulated), "host-managed" or "host-aware". */
const char *dev_zone_model_name(enum dev_zone_model m);
int dev_clone(struct dev *dev, struct dev **out);
void dev_close(struct dev *dev);
/* Signal eventfd_fd (an eventfd(2) the caller owns and closes after the
 * handle, or after eventfd_fd -1) whenever a completion of this handle is
 * posted; it may count several completions as one, and a wake-up may find
 * nothing left to deliver. -1 stops it; a new fd replaces the old one.
 * 0, or -EOPNOTSUPP (dev_mem: completions happen inside dev_poll) or an
 * errno from the backend. Not inherited by dev_clone(). */
int dev_notify_fd(struct dev *dev, int eventfd_fd);

/* Synchronous helpers for start-up and offline tools: submit one request and
 * poll until it completes. Not for the request path. */
int dev_read_sync(struct dev *dev, uint64_t off, void *buf, uint32_t len);
int dev_write_sync(struct dev *dev, uint64_t off, const void *buf, uint32_t len);

/* Aligned buffer allocation for O_DIRECT. */
void *dev_buf_alloc(uint64_t len);
void dev_buf_free(void *buf);

#endif
