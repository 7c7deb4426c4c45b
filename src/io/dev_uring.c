/* dev_uring.c - the real device: a regular file or block device driven with
 * O_DIRECT through one io_uring per handle.
 *
 * Writes carry RWF_DSYNC, so a completed write is on stable media (the
 * kernel issues FUA or a cache flush as the device needs). On a real zoned
 * device (sysfs queue/zoned not "none") the open walks every zone with
 * BLKREPORTZONE (leading conventional zones, the zone capacity) and reads
 * the open/active limits from sysfs; zone reports, resets and finishes use
 * BLKREPORTZONE, BLKRESETZONE and BLKFINISHZONE. Elsewhere a reset punches
 * a hole (file) or discards (block device).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/blkzoned.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/fs.h"
#include "io/dev.h"

struct dev_uring {
	struct dev base;
	int fd;
	bool owns_fd;
	unsigned queue_depth;
	int notify_fd; /* eventfd registered with the ring, or -1 */
	struct io_uring ring;
};

static const struct dev_ops uring_ops;

static struct dev_uring *to_uring(struct dev *dev)
{
	DV_ASSERT(dev->ops == &uring_ops);
	return (struct dev_uring *)dev;
}

static int uring_submit(struct dev *dev, struct dev_req *req)
{
	struct dev_uring *u = to_uring(dev);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		/* Ring full: hand what is queued to the kernel and try once more. */
		int err = io_uring_submit(&u->ring);
		if (err < 0)
			return err;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EAGAIN;
	}
	if (req->op == DEV_READ) {
		io_uring_prep_read(sqe, u->fd, req->buf, req->len, req->off);
	} else {
		io_uring_prep_write(sqe, u->fd, req->buf, req->len, req->off);
		sqe->rw_flags = RWF_DSYNC;
	}
	io_uring_sqe_set_data(sqe, req);
	return 0;
}

static void complete_one(struct dev *dev, struct io_uring_cqe *cqe)
{
	struct dev_req *req = io_uring_cqe_get_data(cqe);
	DV_ASSERT(req != NULL);
	DV_ASSERT(dev->in_flight > 0);
	req->res = cqe->res;
	if (cqe->res >= 0 && (uint32_t)cqe->res != req->len)
		req->res = -EIO; /* short transfer on a block-aligned request */
	dev->in_flight--;
	req->done(req);
}

static int uring_poll(struct dev *dev, unsigned min_complete)
{
	struct dev_uring *u = to_uring(dev);
	int err = io_uring_submit_and_wait(&u->ring, min_complete);
	if (err < 0 && err != -EINTR && err != -EAGAIN && err != -EBUSY)
		return err;
	unsigned done = 0;
	struct io_uring_cqe *cqe;
	/* Reap what is there; wait again until min_complete were delivered
	 * (a completion queue holds at most 2 * queue_depth at a time). */
	for (unsigned round = 0; round < 1000000; round++) {
		while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
			struct io_uring_cqe copy = *cqe;
			io_uring_cqe_seen(&u->ring, cqe);
			complete_one(dev, &copy);
			done++;
		}
		if (done >= min_complete || dev->in_flight == 0)
			break;
		err = io_uring_submit_and_wait(&u->ring, 1);
		if (err < 0 && err != -EINTR && err != -EAGAIN && err != -EBUSY)
			return err;
	}
	return (int)done;
}

static int zone_ioctl(struct dev_uring *u, unsigned long cmd, uint64_t off, uint64_t len)
{
	struct blk_zone_range range = {.sector = off >> 9, .nr_sectors = len >> 9};
	return ioctl(u->fd, cmd, &range) ? -errno : 0;
}

static int uring_zone_reset(struct dev *dev, uint64_t off, uint64_t len)
{
	struct dev_uring *u = to_uring(dev);
	if (dev->info.zoned)
		return zone_ioctl(u, BLKRESETZONE, off, len);
	if (dev->info.is_block_device) {
		uint64_t range[2] = {off, len};
		/* Not every device discards; an unsupported discard is not an
		 * error, since zone generations hide the old records anyway. */
		if (ioctl(u->fd, BLKDISCARD, range) && errno != EOPNOTSUPP)
			return -errno;
		return 0;
	}
	/* A regular file keeps its blocks: zone generations hide the old
	 * records, and a punched hole would make every later write into the
	 * zone allocate again (a journal commit per write; see write_zeros). */
	(void)off;
	(void)len;
	return 0;
}

/* Capacity of a reported zone: the capacity field (kernel 5.9+) when the
 * report has one, else the zone length. */
static uint64_t zone_cap_sectors(const struct blk_zone_report *rep, const struct blk_zone *z)
{
	return (rep->flags & BLK_ZONE_REP_CAPACITY) ? z->capacity : z->len;
}

/* A reported zone in the dev.h form. The kernel's wp of a FULL zone is its
 * end (start + len); ours is its capacity. */
static void zone_from_blk(const struct blk_zone_report *rep, const struct blk_zone *z, struct dev_zone *out)
{
	uint64_t cap = zone_cap_sectors(rep, z) * 512;
	uint64_t wp = z->wp > z->start ? (z->wp - z->start) * 512 : 0;
	out->cap = cap;
	out->cond = (enum dev_zone_cond)z->cond;
	if (z->type == BLK_ZONE_TYPE_CONVENTIONAL)
		out->cond = DEV_ZONE_NOT_WP;
	out->wp = out->cond == DEV_ZONE_FULL ? cap : out->cond == DEV_ZONE_EMPTY ? 0 : wp < cap ? wp : cap;
}

/* BLKREPORTZONE for the one zone at off. */
static int uring_zone_report(struct dev *dev, uint64_t off, struct dev_zone *out)
{
	struct dev_uring *u = to_uring(dev);
	/* A report header followed by room for one zone. */
	_Alignas(struct blk_zone) uint8_t buf[sizeof(struct blk_zone_report) + sizeof(struct blk_zone)];
	memset(buf, 0, sizeof(buf));
	struct blk_zone_report *rep = (struct blk_zone_report *)buf;
	rep->sector = off / 512;
	rep->nr_zones = 1;
	if (ioctl(u->fd, BLKREPORTZONE, rep))
		return -errno;
	const struct blk_zone *zone = &rep->zones[0];
	if (rep->nr_zones != 1 || zone->start * 512 != off)
		return -EIO;
	zone_from_blk(rep, zone, out);
	return 0;
}

static int uring_zone_finish(struct dev *dev, uint64_t off, uint64_t len)
{
	if (!dev->info.zoned)
		return 0;
	return zone_ioctl(to_uring(dev), BLKFINISHZONE, off, len);
}

static int uring_init(struct dev_uring *u, unsigned queue_depth)
{
	u->queue_depth = queue_depth ? queue_depth : 256;
	u->notify_fd = -1; /* per ring: a clone starts without one */
	return io_uring_queue_init(u->queue_depth, &u->ring, 0);
}

static int uring_clone(struct dev *dev, struct dev **out)
{
	struct dev_uring *src = to_uring(dev);
	struct dev_uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->base = src->base;
	u->base.in_flight = 0;
	/* Its own descriptor: the clone outlives its parent safely. */
	u->fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 0);
	if (u->fd < 0) {
		free(u);
		return -errno;
	}
	u->owns_fd = true;
	int err = uring_init(u, src->queue_depth);
	if (err) {
		close(u->fd);
		free(u);
		return err;
	}
	*out = &u->base;
	return 0;
}

/* The kernel signals the eventfd as it posts completions to the ring. */
static int uring_notify_fd(struct dev *dev, int eventfd_fd)
{
	struct dev_uring *u = to_uring(dev);
	if (u->notify_fd >= 0) {
		int err = io_uring_unregister_eventfd(&u->ring);
		if (err < 0)
			return err;
		u->notify_fd = -1;
	}
	if (eventfd_fd < 0)
		return 0;
	int err = io_uring_register_eventfd(&u->ring, eventfd_fd);
	if (err < 0)
		return err;
	u->notify_fd = eventfd_fd;
	return 0;
}

static void uring_close(struct dev *dev)
{
	struct dev_uring *u = to_uring(dev);
	io_uring_queue_exit(&u->ring);
	if (u->owns_fd)
		close(u->fd);
	free(u);
}

static const struct dev_ops uring_ops = {
	.submit = uring_submit,
	.poll = uring_poll,
	.zone_reset = uring_zone_reset,
	.zone_finish = uring_zone_finish,
	.zone_report = uring_zone_report,
	.clone = uring_clone,
	.close = uring_close,
	.notify_fd = uring_notify_fd,
};

static int read_sysfs_u64(const char *path, uint64_t *out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	char buf[64] = {0};
	bool ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return -EIO;
	*out = strtoull(buf, NULL, 10);
	return 0;
}

static int sysfs_path(char *path, size_t len, dev_t rdev, const char *attr)
{
	int n = snprintf(path, len, "/sys/dev/block/%u:%u/queue/%s", major(rdev), minor(rdev), attr);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* Zone model, zone size and open/active limits from sysfs; "none" (or no
 * file: an old kernel) means a device without zones. A missing limit file
 * (kernels before 5.9) means no limit known: 0. */
static int probe_zoned(struct dev_info *info, dev_t rdev)
{
	char path[128], model[32] = {0};
	int err = sysfs_path(path, sizeof(path), rdev, "zoned");
	FILE *f = err ? NULL : fopen(path, "r");
	if (!f)
		return err;
	bool ok = fgets(model, sizeof(model), f) != NULL;
	fclose(f);
	if (!ok || strncmp(model, "none", 4) == 0)
		return 0;
	info->zone_model = strncmp(model, "host-aware", 10) == 0 ? DEV_ZONES_HOST_AWARE : DEV_ZONES_HOST_MANAGED;
	uint64_t chunk_sectors = 0, v = 0;
	if ((err = sysfs_path(path, sizeof(path), rdev, "chunk_sectors")) || (err = read_sysfs_u64(path, &chunk_sectors)))
		return err;
	if (chunk_sectors == 0)
		return -EIO;
	info->zoned = true;
	info->zone_bytes = chunk_sectors << 9;
	if (!sysfs_path(path, sizeof(path), rdev, "max_open_zones") && !read_sysfs_u64(path, &v))
		info->max_open_zones = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	v = 0;
	if (!sysfs_path(path, sizeof(path), rdev, "max_active_zones") && !read_sysfs_u64(path, &v))
		info->max_active_zones = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	return 0;
}

/* Walk every zone of a zoned device (BLKREPORTZONE, 128 at a time): count
 * the leading conventional zones and take the capacity of the sequential
 * ones. Refused with a message: conventional zones after a sequential one,
 * zones of another size than chunk_sectors (but a shorter last zone, which
 * is left unused), or sequential zones of different capacities. */
static int probe_zones(int fd, struct dev_info *info)
{
	enum { BATCH = 128 };
	size_t sz = sizeof(struct blk_zone_report) + BATCH * sizeof(struct blk_zone);
	struct blk_zone_report *rep = calloc(1, sz);
	if (!rep)
		return -ENOMEM;
	uint64_t zone_sectors = info->zone_bytes >> 9, end = info->size_bytes >> 9, next = 0, cap = 0;
	bool seen_seq = false;
	int err = 0;
	info->zone_count = (uint32_t)(info->size_bytes / info->zone_bytes);
	for (uint64_t guard = 0; !err && next < end; guard++) {
		DV_ASSERT(guard <= end / zone_sectors + 1);
		memset(rep, 0, sz);
		rep->sector = next;
		rep->nr_zones = BATCH;
		if (ioctl(fd, BLKREPORTZONE, rep)) {
			err = -errno;
			break;
		}
		if (rep->nr_zones == 0) {
			err = -EIO;
			break;
		}
		for (uint32_t i = 0; !err && i < rep->nr_zones; i++) {
			const struct blk_zone *z = &rep->zones[i];
			next = z->start + z->len;
			if (z->start / zone_sectors >= info->zone_count)
				continue; /* a shorter last zone: not used */
			if (z->len != zone_sectors) {
				fprintf(stderr, "dynvme: zone at sector %llu is %llu sectors, not %llu\n",
					(unsigned long long)z->start, (unsigned long long)z->len,
					(unsigned long long)zone_sectors);
				err = -EOPNOTSUPP;
			} else if (z->type == BLK_ZONE_TYPE_CONVENTIONAL) {
				if (seen_seq) {
					fprintf(stderr, "dynvme: conventional zone at sector %llu after sequential ones: "
							"not supported\n", (unsigned long long)z->start);
					err = -EOPNOTSUPP;
				}
				info->conventional_zones++;
			} else if (!seen_seq) {
				seen_seq = true;
				cap = zone_cap_sectors(rep, z);
			} else if (zone_cap_sectors(rep, z) != cap) {
				fprintf(stderr, "dynvme: zones of different capacities (%llu and %llu sectors): "
						"not supported\n", (unsigned long long)cap,
					(unsigned long long)zone_cap_sectors(rep, z));
				err = -EOPNOTSUPP;
			}
		}
	}
	free(rep);
	if (!err && (cap == 0 || cap % (DV_BLOCK_BYTES >> 9))) {
		fprintf(stderr, "dynvme: zone capacity of %llu sectors: need a positive multiple of 4 KiB\n",
			(unsigned long long)cap);
		err = -EOPNOTSUPP;
	}
	info->zone_cap_bytes = cap << 9;
	return err;
}

static int probe_block_device(int fd, struct dev_info *info, const struct stat *st)
{
	uint64_t size = 0;
	int lbs = 0;
	if (ioctl(fd, BLKGETSIZE64, &size) || ioctl(fd, BLKSSZGET, &lbs))
		return -errno;
	info->is_block_device = true;
	info->size_bytes = size;
	info->logical_block_bytes = (uint32_t)lbs;
	int err = probe_zoned(info, st->st_rdev);
	if (!err && info->zoned)
		err = probe_zones(fd, info);
	return err;
}

static int probe_file(int fd, struct dev_info *info, const struct stat *st)
{
	info->size_bytes = (uint64_t)st->st_size;
	info->logical_block_bytes = 512;
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
	    sx.stx_dio_offset_align)
		info->logical_block_bytes = sx.stx_dio_offset_align;
#else
	(void)fd;
#endif
	return 0;
}

/* Write zeros over [0, bytes) of the file through a second, O_DIRECT
 * descriptor, in large chunks (a tail past the last whole block, as
 * `--size` allows, through a descriptor without O_DIRECT). fallocate alone
 * leaves the extents "unwritten": the first O_DIRECT write into each then
 * converts it, a journal commit on every RWF_DSYNC write (measured with fio
 * on ext4 here: 4 KiB dsync writes 3,677/s into fallocated blocks, 7,779/s
 * over written ones) and io_uring hands each such write to a worker thread. */
static int write_zeros(const char *path, uint64_t bytes)
{
	enum { CHUNK = 4u << 20 };
	int fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	void *buf = NULL;
	int err = posix_memalign(&buf, DV_BLOCK_BYTES, CHUNK) ? -ENOMEM : 0;
	if (!err)
		memset(buf, 0, CHUNK);
	uint64_t aligned = bytes / DV_BLOCK_BYTES * DV_BLOCK_BYTES; /* --size need not be a block multiple */
	for (uint64_t off = 0; !err && off < aligned;) {
		size_t len = aligned - off < CHUNK ? (size_t)(aligned - off) : CHUNK;
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (size_t)n % DV_BLOCK_BYTES)
			err = n < 0 ? -errno : -EIO;
		else
			off += (uint64_t)n;
	}
	free(buf);
	close(fd);
	if (!err && aligned < bytes) { /* the tail, through a descriptor without O_DIRECT */
		static const uint8_t zero[DV_BLOCK_BYTES];
		int bfd = open(path, O_WRONLY | O_CLOEXEC);
		if (bfd < 0)
			return -errno;
		if (pwrite(bfd, zero, (size_t)(bytes - aligned), (off_t)aligned) != (ssize_t)(bytes - aligned))
			err = errno ? -errno : -EIO;
		close(bfd);
	}
	return err;
}

/* Create a regular file of the given size with all blocks allocated and
 * written (zeros), so later O_DIRECT writes are overwrites that need no
 * metadata update; its directory entry is made durable too (the parent is
 * synced). empty: the file is there with 0 bytes, and is sized the same way
 * (left empty if that fails). fallocate first, so a lack of space fails at
 * once rather than after writing most of it. */
static int create_file(const char *path, uint64_t bytes, bool empty)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | (empty ? 0 : O_CREAT | O_EXCL), 0644);
	if (fd < 0)
		return -errno;
	int err = 0;
	struct stat st;
	if (empty && (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size != 0))
		err = -EEXIST; /* changed meanwhile: not ours to size */
	if (!err && fallocate(fd, 0, 0, (off_t)bytes))
		err = -errno;
	if (!err)
		err = write_zeros(path, bytes);
	if (!err && fsync(fd))
		err = -errno;
	if (!err)
		err = dv_fsync_parent(path);
	if (err && empty && err != -EEXIST && ftruncate(fd, 0)) {
		/* as it was, as far as it can be */
	}
	close(fd);
	if (err && !empty)
		unlink(path);
	return err;
}

/* The exclusive lock of a writable open (dev.h). A process killed a moment
 * ago may still hold it: the file stays open until the kernel has torn
 * down its io_uring, whose requests in flight hold references to it (a
 * restart right after kill -9 met -EBUSY). So a held lock is retried for
 * up to DEV_LOCK_WAIT_MS before -EBUSY. */
static int lock_exclusive(int fd)
{
	const struct timespec step = {.tv_nsec = 10 * 1000000};
	for (unsigned waited_ms = 0;; waited_ms += 10) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (waited_ms >= DEV_LOCK_WAIT_MS)
			return -EBUSY;
		nanosleep(&step, NULL);
	}
}

int dev_open_path(struct dev **out, const char *path, const struct dev_open_opts *opts)
{
	struct stat st;
	bool created = false;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT || opts->create_bytes == 0 || opts->read_only)
			return -errno;
		int err = create_file(path, opts->create_bytes, false);
		if (err)
			return err;
		created = true;
	} else if (S_ISREG(st.st_mode) && st.st_size == 0 && opts->create_bytes && !opts->read_only) {
		int err = create_file(path, opts->create_bytes, true); /* an empty file: as a new one */
		if (err)
			return err;
		created = true;
	}
	int fd = open(path, (opts->read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct dev_uring *u = calloc(1, sizeof(*u));
	int err = u ? 0 : -ENOMEM;
	if (!err && fstat(fd, &st))
		err = -errno;
	/* One writer per data file or device: every writable store open writes
	 * its superblock (the open stamp), so a second process on a live path
	 * would write into the first one's. Released when the file is closed
	 * (exit and kill -9 included). */
	if (!err && !opts->read_only)
		err = lock_exclusive(fd);
	if (!err)
		err = S_ISBLK(st.st_mode) ? probe_block_device(fd, &u->base.info, &st)
					  : probe_file(fd, &u->base.info, &st);
	if (!err && (DV_BLOCK_BYTES % u->base.info.logical_block_bytes != 0))
		err = -EOPNOTSUPP; /* logical block larger than 4 KiB */
	if (!err)
		u->base.info.zero_filled = created;
	if (!err)
		err = uring_init(u, opts->queue_depth);
	if (err) {
		free(u);
		close(fd);
		return err;
	}
	u->base.ops = &uring_ops;
	u->fd = fd;
	u->owns_fd = true;
	*out = &u->base;
	return 0;
}
