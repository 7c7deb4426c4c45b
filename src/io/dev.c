/* dev.c - backend-independent parts of the device interface. */
#include "io/dev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/assert.h"
#include "base/constants.h"

#define HUGE_PAGE_BYTES (2u << 20)

static bool req_is_aligned(const struct dev *dev, const struct dev_req *req)
{
	return req->off % DV_BLOCK_BYTES == 0 && req->len % DV_BLOCK_BYTES == 0 &&
	       req->len > 0 && (uintptr_t)req->buf % DV_BLOCK_BYTES == 0 &&
	       req->off <= dev->info.size_bytes && req->len <= dev->info.size_bytes - req->off;
}

int dev_submit(struct dev *dev, struct dev_req *req)
{
	DV_ASSERT(req->done != NULL);
	DV_ASSERT(req->op == DEV_READ || req->op == DEV_WRITE);
	if (!req_is_aligned(dev, req))
		return -EINVAL;
	int err = dev->ops->submit(dev, req);
	if (err == -EBUSY || err == -EINTR)
		err = -EAGAIN; /* a full ring or an interrupted flush of it: transient */
	if (err == 0)
		dev->in_flight++;
	return err;
}

int dev_poll(struct dev *dev, unsigned min_complete)
{
	DV_ASSERT(min_complete <= dev->in_flight);
	return dev->ops->poll(dev, min_complete);
}

int dev_zone_reset(struct dev *dev, uint64_t off, uint64_t len)
{
	DV_ASSERT(off % DV_BLOCK_BYTES == 0 && len % DV_BLOCK_BYTES == 0);
	DV_ASSERT(off + len <= dev->info.size_bytes);
	return dev->ops->zone_reset(dev, off, len);
}

int dev_zone_finish(struct dev *dev, uint64_t off, uint64_t len)
{
	DV_ASSERT(off + len <= dev->info.size_bytes);
	return dev->ops->zone_finish ? dev->ops->zone_finish(dev, off, len) : 0;
}

int dev_zone_report(struct dev *dev, uint64_t zone_off, struct dev_zone *out)
{
	if (!dev->info.zoned || !dev->ops->zone_report)
		return -EOPNOTSUPP;
	if (zone_off % dev->info.zone_bytes || zone_off >= dev->info.size_bytes)
		return -EINVAL;
	return dev->ops->zone_report(dev, zone_off, out);
}

int dev_zone_wp(struct dev *dev, uint64_t zone_off, uint64_t *wp)
{
	struct dev_zone z;
	int err = dev_zone_report(dev, zone_off, &z);
	if (!err)
		*wp = z.wp;
	return err;
}

const char *dev_zone_cond_name(enum dev_zone_cond c)
{
	switch (c) {
	case DEV_ZONE_NOT_WP: return "conventional";
	case DEV_ZONE_EMPTY: return "empty";
	case DEV_ZONE_IMP_OPEN: return "open (implicit)";
	case DEV_ZONE_EXP_OPEN: return "open (explicit)";
	case DEV_ZONE_CLOSED: return "closed";
	case DEV_ZONE_READONLY: return "read-only";
	case DEV_ZONE_FULL: return "full";
	case DEV_ZONE_OFFLINE: return "offline";
	default: return "unknown";
	}
}

const char *dev_zone_model_name(enum dev_zone_model m)
{
	switch (m) {
	case DEV_ZONES_HOST_MANAGED: return "host-managed";
	case DEV_ZONES_HOST_AWARE: return "host-aware";
	default: return "none";
	}
}

int dev_clone(struct dev *dev, struct dev **out) { return dev->ops->clone(dev, out); }

int dev_notify_fd(struct dev *dev, int eventfd_fd)
{
	return dev->ops->notify_fd ? dev->ops->notify_fd(dev, eventfd_fd) : -EOPNOTSUPP;
}

void dev_close(struct dev *dev)
{
	if (!dev)
		return;
	DV_ASSERT(dev->in_flight == 0);
	dev->ops->close(dev);
}

struct sync_wait {
	bool done;
};

static void sync_done(struct dev_req *req)
{
	struct sync_wait *w = req->ctx;
	w->done = true;
}

/* Refusals (-EAGAIN) in a row a synchronous request tolerates; each is
 * followed by a poll that makes room when requests are in flight. */
#define SYNC_SUBMIT_TRIES 100000u

static int dev_rw_sync(struct dev *dev, enum dev_op op, uint64_t off, void *buf, uint32_t len)
{
	struct sync_wait w = {false};
	struct dev_req req = {.op = op, .len = len, .off = off, .buf = buf,
			      .done = sync_done, .ctx = &w};
	int err = dev_submit(dev, &req);
	for (unsigned i = 0; err == -EAGAIN && i < SYNC_SUBMIT_TRIES; i++) {
		if (dev->in_flight > 0 && (err = dev_poll(dev, 1)) < 0)
			return err;
		err = dev_submit(dev, &req);
	}
	if (err)
		return err;
	/* Bounded: each poll completes at least one request and ours is in flight. */
	for (unsigned i = 0; !w.done; i++) {
		DV_ASSERT(i <= dev->in_flight + 1u);
		err = dev_poll(dev, 1);
		if (err < 0)
			return err;
	}
	return req.res < 0 ? req.res : 0;
}

int dev_read_sync(struct dev *dev, uint64_t off, void *buf, uint32_t len)
{
	return dev_rw_sync(dev, DEV_READ, off, buf, len);
}

int dev_write_sync(struct dev *dev, uint64_t off, const void *buf, uint32_t len)
{
	return dev_rw_sync(dev, DEV_WRITE, off, (void *)buf, len);
}

void *dev_buf_alloc(uint64_t len)
{
	void *p = NULL;
	/* Areas of 2 MiB and more are aligned for transparent huge pages:
	 * every O_DIRECT transfer pins its pages, and under virtualisation a
	 * TLB miss on a buffer costs about a microsecond. */
	size_t align = len >= HUGE_PAGE_BYTES ? HUGE_PAGE_BYTES : DV_BLOCK_BYTES;
	if (posix_memalign(&p, align, DV_ROUND_UP(len, DV_BLOCK_BYTES)))
		return NULL;
	if (align == HUGE_PAGE_BYTES)
		(void)madvise(p, DV_ROUND_UP(len, DV_BLOCK_BYTES), MADV_HUGEPAGE); /* a hint only */
	memset(p, 0, DV_ROUND_UP(len, DV_BLOCK_BYTES));
	return p;
}

void dev_buf_free(void *buf) { free(buf); }
