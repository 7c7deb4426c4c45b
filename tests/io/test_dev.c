/* test_dev.c - the block device interface (src/io/dev.h).
 *
 * dev_mem (in-memory, src/io/dev_mem.h):
 * - mem_basic: async writes and reads through dev_submit/dev_poll (order of
 *   completion, in_flight, res), the sync helpers, the medium image, open
 *   size errors.
 * - mem_errors: misaligned offset/length/buffer, zero length, past the end
 *   and offset overflow are rejected with -EINVAL before anything is queued.
 * - mem_fault_each: every fault kind alone at a rate of 100%: write EIO
 *   (range unchanged), lost write, bit flip on write, read EIO, bit flip on
 *   read (transient), faults_after_writes; each counted in its stats.
 * - mem_fault_mixed: all faults at 10%, thousands of requests; every
 *   outcome is classified from the medium and must match the counters;
 *   the same seed gives the same faults.
 * - mem_power_cut: the write after N tears at 512-byte granularity, every
 *   later request fails; the image restarts through dev_open_mem_copy.
 * - mem_zone_reset, mem_clone: zeroing of a range (or not: reset_keeps_bytes);
 *   clones share the medium
 *   and work on another thread; dev_mem_flip_bit.
 * - the adversarial scheduler: mem_sched_reorder (random completion order
 *   over several polls, a write delivered before an earlier read, stats
 *   equal to the inversions seen, data right), mem_sched_partial
 *   (dev_poll(n) delivers >= n, dev_poll(0) may deliver nothing),
 *   mem_sched_hold (held reads wait while writes complete and are released
 *   within hold_polls_max, forced by dev_poll(1); hold_fn holds one chosen
 *   request; an early transfer returns data from before a later write),
 *   mem_submit_eagain (-EAGAIN/-EBUSY, nothing queued, never with nothing
 *   in flight), mem_sched_power_cut (acknowledged writes on the medium,
 *   each write in flight persisted, torn or lost as counted),
 *   mem_sched_replay (one seed replays bit for bit, zoned order kept).
 * dev_uring (a file in test_tmpdir() through dev_open_path):
 * - create with create_bytes, logical block size, queue depth > 1 with more
 *   requests than the ring, sync helpers, -EINVAL cases, zone reset as a
 *   zone reset (keeps the blocks), dev_clone on another thread, reopen (data persists),
 *   read-only open. The file is removed at the end.
 * - uring_notify: dev_notify_fd: an eventfd is signalled when a completion
 *   is posted (a blocked wait on it ends), dev_poll then delivers; nothing
 *   signals it without a completion; a clone does not inherit it; -1 stops
 *   it and another fd replaces it; dev_mem refuses with -EOPNOTSUPP.
 * - durable_create: base/fs.h creates a directory and a data file in it with
 *   their parents synced; every error is reported.
 * Exit 77 (skip) when io_uring or O_DIRECT is not available and everything
 * else passed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fiemap.h>
#include <linux/fs.h>

#include "base/constants.h"
#include "base/fs.h"
#include "io/dev.h"
#include "io/dev_mem.h"
#include "testing.h"

#define BLK DV_BLOCK_BYTES
#define MiB (1024u * 1024u)
#define SECTOR 512u
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Data that differs between tags in every 8-byte word. */
static void fill(void *buf, uint32_t len, uint64_t tag)
{
	uint64_t *w = buf;
	uint64_t s = tag * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < len / 8; i++)
		w[i] = test_rand(&s) | 1; /* never a zero word */
}

static unsigned bit_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	unsigned n = 0;
	for (size_t i = 0; i < len; i++)
		n += (unsigned)__builtin_popcount(a[i] ^ b[i]);
	return n;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void *xbuf(uint64_t len)
{
	void *p = dev_buf_alloc(len);
	CHECK(p != NULL);
	return p;
}

/* Request with a completion record. */
struct treq {
	struct dev_req r;
	int done;     /* times done() was called */
	int order;    /* completion sequence number */
	int *counter; /* shared sequence counter */
};

static void treq_done(struct dev_req *req)
{
	struct treq *t = req->ctx;
	t->done++;
	t->order = (*t->counter)++;
}

static void treq_init(struct treq *t, enum dev_op op, uint64_t off, void *buf, uint32_t len, int *counter)
{
	memset(t, 0, sizeof(*t));
	t->r = (struct dev_req){.op = op, .off = off, .buf = buf, .len = len, .done = treq_done, .ctx = t};
	t->counter = counter;
	t->order = -1;
}

/* Poll until every request in reqs has completed; bounded. */
static void poll_all(struct dev *d, struct treq *reqs, unsigned n, const char *what)
{
	for (unsigned iter = 0;; iter++) {
		unsigned pending = 0;
		for (unsigned i = 0; i < n; i++)
			pending += reqs[i].done == 0;
		if (!pending)
			break;
		CHECK(iter < 100000);
		int r = dev_poll(d, 1);
		SOFT(r >= 1, "%s: dev_poll(1) returned %d with %u pending", what, r, pending);
		if (r < 0)
			break;
	}
	for (unsigned i = 0; i < n; i++)
		SOFT(reqs[i].done == 1, "%s: request %u completed %d times", what, i, reqs[i].done);
	SOFT(dev_in_flight(d) == 0, "%s: in_flight %u after all completed", what, dev_in_flight(d));
}

/* ------------------------------------------------------------------------ */
/* Checks shared by both backends. */

/* Bad requests: -EINVAL from dev_submit, nothing queued, no callback. */
static void check_rejects(struct dev *d, bool is_mem)
{
	uint64_t size = dev_info(d)->size_bytes;
	uint8_t *buf = xbuf(3 * BLK);
	int counter = 0;
	const struct {
		const char *what;
		uint64_t off;
		uint32_t len;
		size_t buf_off;
	} bad[] = {
		{"offset not block aligned", 512, BLK, 0},
		{"offset off by one", BLK + 1, BLK, 0},
		{"length 0", 0, 0, 0},
		{"length 100", 0, 100, 0},
		{"length a block and a sector", 0, BLK + 512, 0},
		{"buffer not block aligned", 0, BLK, 512},
		{"buffer off by one", 0, BLK, 1},
		{"crosses the end", size - BLK, 2 * BLK, 0},
		{"at the end", size, BLK, 0},
		{"far past the end", size * 4, BLK, 0},
	};
	for (unsigned i = 0; i < LEN(bad); i++) {
		for (int op = DEV_READ; op <= DEV_WRITE; op++) {
			struct treq t;
			treq_init(&t, (enum dev_op)op, bad[i].off, buf + bad[i].buf_off, bad[i].len, &counter);
			int err = dev_submit(d, &t.r);
			SOFT(err == -EINVAL, "%s %s: dev_submit -> %d, want -EINVAL",
			     op == DEV_READ ? "read" : "write", bad[i].what, err);
			SOFT(dev_in_flight(d) == 0, "%s: in_flight %u after a rejected submit", bad[i].what,
			     dev_in_flight(d));
			if (err == 0) {
				if (is_mem)
					t.r.off = 0; /* keep the backend in bounds */
				poll_all(d, &t, 1, "accepted bad request");
			}
			SOFT(t.done == 0 || err == 0, "%s: done() called for a rejected request", bad[i].what);
		}
	}
	/* offset + length wraps around 2^64: must not pass the bounds check */
	{
		struct treq t;
		treq_init(&t, DEV_READ, UINT64_MAX - BLK + 1, buf, BLK, &counter);
		int err = dev_submit(d, &t.r);
		SOFT(err == -EINVAL,
		     "read at offset 2^64-4096 (offset+len wraps to 0): dev_submit -> %d, want -EINVAL "
		     "(dev.c req_is_aligned: off + len <= size overflows)", err);
		if (err == 0) {
			if (is_mem)
				t.r.off = 0; /* the mem backend would memcpy out of bounds */
			poll_all(d, &t, 1, "wrapped offset");
			if (!is_mem)
				fprintf(stderr, "     (io_uring completed it with res %d)\n", t.r.res);
		}
	}
	SOFT(dev_read_sync(d, 512, buf, BLK) == -EINVAL, "dev_read_sync misaligned");
	SOFT(dev_write_sync(d, 0, buf, 100) == -EINVAL, "dev_write_sync short");
	SOFT(dev_in_flight(d) == 0, "in_flight after rejected sync calls");
	dev_buf_free(buf);
}

/* Many requests of mixed length at once; written data read back through
 * requests in flight together. model mirrors the medium. */
static void check_async_rw(struct dev *d, uint8_t *model, uint64_t base, unsigned nreq, uint64_t tag0,
			   bool check_order)
{
	struct treq *reqs = calloc(nreq, sizeof(*reqs));
	uint8_t **bufs = calloc(nreq, sizeof(*bufs));
	CHECK(reqs && bufs);
	int counter = 0;
	uint64_t off = base;
	for (unsigned i = 0; i < nreq; i++) {
		uint32_t len = (1 + i % 4) * BLK;
		bufs[i] = xbuf(len);
		fill(bufs[i], len, tag0 + i);
		treq_init(&reqs[i], DEV_WRITE, off, bufs[i], len, &counter);
		CHECK(off + len <= dev_info(d)->size_bytes);
		int err = dev_submit(d, &reqs[i].r);
		SOFT(err == 0, "async write %u: submit -> %d", i, err);
		off += len + (i % 3 == 0 ? BLK : 0); /* some gaps */
	}
	SOFT(dev_in_flight(d) == nreq, "in_flight %u after %u submits", dev_in_flight(d), nreq);
	poll_all(d, reqs, nreq, "async writes");
	for (unsigned i = 0; i < nreq; i++) {
		SOFT(reqs[i].r.res == (int32_t)reqs[i].r.len, "async write %u: res %d, want %u", i,
		     reqs[i].r.res, reqs[i].r.len);
		if (check_order)
			SOFT(reqs[i].order == (int)i, "write %u completed as number %d (submission order)", i,
			     reqs[i].order);
		memcpy(model + reqs[i].r.off, bufs[i], reqs[i].r.len);
	}
	/* read back: same ranges, in reverse, all in flight together */
	counter = 0;
	for (unsigned i = 0; i < nreq; i++) {
		unsigned j = nreq - 1 - i;
		memset(bufs[j], 0xa5, reqs[j].r.len);
		uint64_t roff = reqs[j].r.off;
		uint32_t rlen = reqs[j].r.len;
		treq_init(&reqs[j], DEV_READ, roff, bufs[j], rlen, &counter);
		int err = dev_submit(d, &reqs[j].r);
		SOFT(err == 0, "async read %u: submit -> %d", j, err);
	}
	poll_all(d, reqs, nreq, "async reads");
	for (unsigned i = 0; i < nreq; i++) {
		SOFT(reqs[i].r.res == (int32_t)reqs[i].r.len, "async read %u: res %d", i, reqs[i].r.res);
		SOFT(memcmp(bufs[i], model + reqs[i].r.off, reqs[i].r.len) == 0,
		     "async read %u (off %llu len %u): data differs from what was written", i,
		     (unsigned long long)reqs[i].r.off, reqs[i].r.len);
		dev_buf_free(bufs[i]);
	}
	free(reqs);
	free(bufs);
}

/* Extents of the file flagged unwritten (allocated by fallocate, never
 * written), through FIEMAP; 0 where the file system has no FIEMAP (tmpfs:
 * nothing to check there), -1 when the ioctl fails otherwise. */
static int unwritten_extents(const char *path)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	enum { MAX = 256 };
	struct fiemap *fm = calloc(1, sizeof(*fm) + MAX * sizeof(struct fiemap_extent));
	CHECK(fm != NULL);
	int unwritten = 0;
	for (uint64_t start = 0;;) {
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = MAX;
		if (ioctl(fd, FS_IOC_FIEMAP, fm)) {
			unwritten = errno == EOPNOTSUPP ? 0 : -1;
			break;
		}
		bool last = fm->fm_mapped_extents == 0;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			const struct fiemap_extent *e = &fm->fm_extents[i];
			unwritten += (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN) != 0;
			start = e->fe_logical + e->fe_length;
			last |= (e->fe_flags & FIEMAP_EXTENT_LAST) != 0;
		}
		if (last)
			break;
	}
	free(fm);
	close(fd);
	return unwritten;
}

/* Read [off, off+len) through the device and compare with model. */
static void check_range(struct dev *d, const uint8_t *model, uint64_t off, uint64_t len, const char *what)
{
	uint8_t *buf = xbuf(len);
	int err = dev_read_sync(d, off, buf, (uint32_t)len);
	SOFT(err == 0, "%s: read -> %d", what, err);
	if (err == 0) {
		uint64_t bad = 0;
		for (uint64_t b = 0; b < len; b += BLK)
			bad += memcmp(buf + b, model + off + b, BLK) != 0;
		SOFT(bad == 0, "%s: %llu of %llu blocks differ", what, (unsigned long long)bad,
		     (unsigned long long)(len / BLK));
	}
	dev_buf_free(buf);
}

/* A clone used on its own thread: async writes, then reads, in a region of
 * its own; the parent does I/O on another region meanwhile. */
struct clone_arg {
	struct dev *clone;
	uint8_t *model;
	uint64_t base;
	unsigned nreq;
	bool mem;
};

static void *clone_thread(void *p)
{
	struct clone_arg *a = p;
	SOFT(dev_in_flight(a->clone) == 0, "clone in_flight %u at start", dev_in_flight(a->clone));
	check_async_rw(a->clone, a->model, a->base, a->nreq, 5000, a->mem);
	uint8_t *buf = xbuf(BLK);
	fill(buf, BLK, 6000);
	SOFT(dev_write_sync(a->clone, a->base, buf, BLK) == 0, "clone: write_sync");
	memcpy(a->model + a->base, buf, BLK);
	check_range(a->clone, a->model, a->base, BLK, "clone: read_sync");
	dev_buf_free(buf);
	dev_close(a->clone);
	return NULL;
}

static void check_clone(struct dev *d, uint8_t *model, uint64_t clone_base, uint64_t own_base, bool mem)
{
	struct dev *c = NULL;
	int err = dev_clone(d, &c);
	SOFT(err == 0, "dev_clone -> %d", err);
	if (err)
		return;
	SOFT(dev_info(c)->size_bytes == dev_info(d)->size_bytes &&
		     dev_info(c)->logical_block_bytes == dev_info(d)->logical_block_bytes,
	     "clone info differs");
	struct clone_arg a = {.clone = c, .model = model, .base = clone_base, .nreq = 24, .mem = mem};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, clone_thread, &a), 0);
	check_async_rw(d, model, own_base, 16, 7000, mem);
	CHECK_EQ(pthread_join(th, NULL), 0);
	/* what the clone wrote is on the medium for the parent handle too */
	check_range(d, model, clone_base, 24 * 3 * BLK, "parent reads the clone's writes");
}

/* ------------------------------------------------------------------------ */
/* dev_mem */

static struct dev *mem_open(uint64_t size, const struct dev_fault_plan *plan)
{
	struct dev *d = NULL;
	CHECK_EQ(dev_open_mem(&d, size, plan), 0);
	CHECK(d != NULL);
	return d;
}

static void test_mem_basic(void)
{
	test_begin("mem_basic");
	struct dev *d;
	SOFT(dev_open_mem(&d, 1000, NULL) == -EINVAL, "size not a multiple of the block");
	SOFT(dev_open_mem(&d, 0, NULL) == -EINVAL, "size 0");
	d = mem_open(4 * MiB, NULL);
	const struct dev_info *info = dev_info(d);
	SOFT(info->size_bytes == 4 * MiB, "size_bytes %llu", (unsigned long long)info->size_bytes);
	SOFT(info->logical_block_bytes && BLK % info->logical_block_bytes == 0, "logical block %u",
	     info->logical_block_bytes);
	SOFT(!info->is_block_device && !info->zoned, "mem device is not a (zoned) block device");
	SOFT(all_zero(dev_mem_image(d), 4 * MiB), "new medium is zero-filled");
	SOFT(dev_poll(d, 0) == 0, "poll with nothing queued");

	uint8_t *model = calloc(1, 4 * MiB);
	CHECK(model);
	check_async_rw(d, model, 0, 40, 100, true); /* completes in submission order */
	SOFT(memcmp(dev_mem_image(d), model, 4 * MiB) == 0, "image after async writes");

	/* sync helpers, first and last block, one big request */
	uint8_t *buf = xbuf(MiB);
	fill(buf, BLK, 200);
	SOFT(dev_write_sync(d, 4 * MiB - BLK, buf, BLK) == 0, "write_sync last block");
	memcpy(model + 4 * MiB - BLK, buf, BLK);
	fill(buf, MiB, 201);
	SOFT(dev_write_sync(d, 2 * MiB, buf, MiB) == 0, "write_sync 1 MiB");
	memcpy(model + 2 * MiB, buf, MiB);
	check_range(d, model, 0, 4 * MiB, "whole device");
	SOFT(memcmp(dev_mem_image(d), model, 4 * MiB) == 0, "image after sync writes");

	/* a write and a read of the same range queued together: in order */
	int counter = 0;
	struct treq w, r;
	uint8_t *wb = xbuf(BLK), *rb = xbuf(BLK);
	fill(wb, BLK, 202);
	treq_init(&w, DEV_WRITE, 8 * BLK, wb, BLK, &counter);
	treq_init(&r, DEV_READ, 8 * BLK, rb, BLK, &counter);
	CHECK_EQ(dev_submit(d, &w.r), 0);
	CHECK_EQ(dev_submit(d, &r.r), 0);
	SOFT(dev_poll(d, 2) == 2, "poll(2) completes both");
	SOFT(w.done == 1 && r.done == 1 && w.order == 0 && r.order == 1, "write then read, in order");
	SOFT(memcmp(rb, wb, BLK) == 0, "read sees the write queued before it");
	memcpy(model + 8 * BLK, wb, BLK);

	struct dev_fault_stats st = dev_mem_stats(d);
	SOFT(st.writes == 43 && st.reads == 42, "stats: %llu writes, %llu reads",
	     (unsigned long long)st.writes, (unsigned long long)st.reads);
	SOFT(!st.write_eio && !st.write_lost && !st.write_flip && !st.read_eio && !st.read_flip &&
		     !st.power_cut,
	     "no faults without a plan");
	/* zone_finish is a no-op here */
	SOFT(dev_zone_finish(d, 0, 4 * MiB) == 0, "zone_finish");
	dev_buf_free(wb);
	dev_buf_free(rb);
	dev_buf_free(buf);
	free(model);
	dev_close(d);
	test_end("mem_basic");
}

static void test_mem_errors(void)
{
	test_begin("mem_errors");
	struct dev *d = mem_open(MiB, NULL);
	check_rejects(d, true);
	SOFT(all_zero(dev_mem_image(d), MiB), "rejected writes changed the medium");
	dev_close(d);
	test_end("mem_errors");
}

/* Transient submit refusals (submit_eagain_ppm, as io_uring with a full
 * ring): dev_submit() reports each one as -EAGAIN (the backend's -EBUSY
 * too) and does not own the request; the request goes through when
 * submitted again, and the synchronous helpers retry by themselves. */
static void test_mem_submit_refused(uint64_t seed)
{
	test_begin("mem_submit_refused");
	struct dev_fault_plan plan = {.seed = seed, .submit_eagain_ppm = 500000};
	struct dev *d = mem_open(MiB, &plan);
	uint8_t *buf = xbuf(BLK), *rb = xbuf(BLK);
	unsigned refused = 0, other = 0;
	int counter = 0;
	uint8_t *ab = xbuf(BLK);
	for (unsigned i = 0; i < 200; i++) {
		/* A ring is full only while requests are in flight: an anchor
		 * read first (never refused: nothing else is in flight). */
		struct treq a, t;
		treq_init(&a, DEV_READ, 65 * BLK, ab, BLK, &counter);
		int err = dev_submit(d, &a.r);
		SOFT(err == 0, "a lone submit is never refused (%d)", err);
		fill(buf, BLK, 300 + i);
		treq_init(&t, DEV_WRITE, (uint64_t)(i % 64) * BLK, buf, BLK, &counter);
		while ((err = dev_submit(d, &t.r)) == -EAGAIN)
			refused++;
		other += err != 0;
		SOFT(dev_in_flight(d) == 2, "only accepted requests are in flight");
		SOFT(dev_poll(d, 2) == 2 && t.done == 1 && t.r.res == (int32_t)BLK, "write %u completes", i);
		SOFT(dev_read_sync(d, (uint64_t)(i % 64) * BLK, rb, BLK) == 0, "read_sync retries refusals");
		SOFT(memcmp(rb, buf, BLK) == 0, "read %u returns what was written", i);
		SOFT(dev_write_sync(d, 64 * BLK, buf, BLK) == 0, "write_sync retries refusals");
	}
	struct dev_fault_stats st = dev_mem_stats(d);
	SOFT(other == 0, "%u submissions failed with something else than -EAGAIN", other);
	SOFT(refused > 50 && st.submit_eagain >= refused, "refusals: %u seen, %llu injected", refused,
	     (unsigned long long)st.submit_eagain);
	dev_buf_free(ab);
	dev_buf_free(buf);
	dev_buf_free(rb);
	dev_close(d);
	test_end("mem_submit_refused");
}

static struct dev_fault_plan plan_one(uint64_t seed)
{
	return (struct dev_fault_plan){.seed = seed};
}

static void test_mem_fault_each(uint64_t seed)
{
	test_begin("mem_fault_each");
	const uint32_t ALL = 1000000;
	uint8_t *data = xbuf(4 * BLK), *got = xbuf(4 * BLK), *old = xbuf(4 * BLK);
	struct dev_fault_stats st;

	/* write EIO: -EIO, range unchanged */
	{
		struct dev_fault_plan p = plan_one(seed);
		p.write_eio_ppm = ALL;
		struct dev *d = mem_open(MiB, &p);
		fill(data, 4 * BLK, 1);
		int err = dev_write_sync(d, BLK, data, 4 * BLK);
		SOFT(err == -EIO, "write EIO: write -> %d", err);
		SOFT(all_zero(dev_mem_image(d), MiB), "write EIO: range changed");
		st = dev_mem_stats(d);
		SOFT(st.write_eio == 1 && st.writes == 1, "write EIO: stats eio %llu writes %llu",
		     (unsigned long long)st.write_eio, (unsigned long long)st.writes);
		SOFT(!st.write_lost && !st.write_flip && !st.read_eio && !st.read_flip, "write EIO: other counters");
		/* the read path is untouched */
		SOFT(dev_read_sync(d, BLK, got, 4 * BLK) == 0 && all_zero(got, 4 * BLK), "write EIO: read");
		dev_close(d);
	}
	/* faults_after_writes: writes 1..3 succeed, 4 fails */
	{
		struct dev_fault_plan p = plan_one(seed);
		p.write_eio_ppm = ALL;
		p.faults_after_writes = 3;
		struct dev *d = mem_open(MiB, &p);
		for (unsigned i = 0; i < 5; i++) {
			fill(data, BLK, 10 + i);
			int err = dev_write_sync(d, i * BLK, data, BLK);
			SOFT(err == (i < 3 ? 0 : -EIO), "faults_after_writes 3: write %u -> %d", i + 1, err);
		}
		st = dev_mem_stats(d);
		SOFT(st.write_eio == 2 && st.writes == 5, "faults_after_writes: eio %llu writes %llu",
		     (unsigned long long)st.write_eio, (unsigned long long)st.writes);
		dev_close(d);
	}
	/* lost write: reported done, nothing stored */
	{
		struct dev_fault_plan p = plan_one(seed);
		p.write_lost_ppm = ALL;
		struct dev *d = mem_open(MiB, &p);
		fill(data, 4 * BLK, 2);
		int err = dev_write_sync(d, 0, data, 4 * BLK);
		SOFT(err == 0, "lost write: write -> %d, want success", err);
		SOFT(all_zero(dev_mem_image(d), MiB), "lost write: something was stored");
		SOFT(dev_read_sync(d, 0, got, 4 * BLK) == 0 && all_zero(got, 4 * BLK), "lost write: read back");
		st = dev_mem_stats(d);
		SOFT(st.write_lost == 1 && !st.write_eio && !st.write_flip, "lost write: stats lost %llu",
		     (unsigned long long)st.write_lost);
		dev_close(d);
	}
	/* bit flip on write: reported done, one bit wrong on the medium */
	{
		struct dev_fault_plan p = plan_one(seed);
		p.write_flip_ppm = ALL;
		struct dev *d = mem_open(MiB, &p);
		fill(data, 4 * BLK, 3);
		int err = dev_write_sync(d, 2 * BLK, data, 4 * BLK);
		SOFT(err == 0, "write flip: write -> %d", err);
		unsigned diff = bit_diff(dev_mem_image(d) + 2 * BLK, data, 4 * BLK);
		SOFT(diff == 1, "write flip: %u bits differ on the medium, want 1", diff);
		SOFT(all_zero(dev_mem_image(d), 2 * BLK) && all_zero(dev_mem_image(d) + 6 * BLK, MiB - 6 * BLK),
		     "write flip: outside the range changed");
		dev_mem_set_plan(d, &(struct dev_fault_plan){0});
		SOFT(dev_read_sync(d, 2 * BLK, got, 4 * BLK) == 0 && bit_diff(got, data, 4 * BLK) == 1,
		     "write flip: the flip is persistent");
		st = dev_mem_stats(d);
		SOFT(st.write_flip == 1 && !st.write_eio && !st.write_lost, "write flip: stats flip %llu",
		     (unsigned long long)st.write_flip);
		dev_close(d);
	}
	/* read EIO, after a write */
	{
		struct dev *d = mem_open(MiB, NULL);
		fill(data, 4 * BLK, 4);
		CHECK_EQ(dev_write_sync(d, 0, data, 4 * BLK), 0);
		struct dev_fault_plan p = plan_one(seed);
		p.read_eio_ppm = ALL;
		dev_mem_set_plan(d, &p);
		int err = dev_read_sync(d, 0, got, 4 * BLK);
		SOFT(err == -EIO, "read EIO: read -> %d", err);
		SOFT(memcmp(dev_mem_image(d), data, 4 * BLK) == 0, "read EIO: medium changed");
		st = dev_mem_stats(d);
		SOFT(st.read_eio == 1 && st.reads == 1 && !st.read_flip, "read EIO: stats eio %llu reads %llu",
		     (unsigned long long)st.read_eio, (unsigned long long)st.reads);
		/* writes are not affected by a read fault plan */
		SOFT(dev_write_sync(d, 0, data, BLK) == 0, "read EIO: write");
		dev_close(d);
	}
	/* read faults from the first request: faults_after_writes = 0 means
	 * faults start at once, also before any write (e.g. recovery reading a
	 * crash image opened with dev_open_mem_copy) */
	{
		struct dev_fault_plan p = plan_one(seed);
		p.read_eio_ppm = ALL;
		struct dev *d = mem_open(MiB, &p);
		int err = dev_read_sync(d, 0, got, BLK);
		SOFT(err == -EIO,
		     "read EIO at 100%% on a new device (no write yet, faults_after_writes 0): read -> %d, "
		     "want -EIO (dev_mem.c roll() gates read faults on writes > faults_after_writes)", err);
		dev_close(d);
	}
	/* read faults after faults_after_writes writes */
	{
		struct dev_fault_plan p = plan_one(seed);
		p.read_eio_ppm = ALL;
		p.faults_after_writes = 3;
		struct dev *d = mem_open(MiB, &p);
		int err = dev_read_sync(d, 0, got, BLK);
		SOFT(err == 0, "read before faults start -> %d", err);
		for (unsigned i = 0; i < 3; i++)
			CHECK_EQ(dev_write_sync(d, i * BLK, data, BLK), 0);
		err = dev_read_sync(d, 0, got, BLK);
		SOFT(err == -EIO, "read EIO after faults_after_writes (3) writes: read -> %d, want -EIO", err);
		CHECK_EQ(dev_write_sync(d, 3 * BLK, data, BLK), 0);
		err = dev_read_sync(d, 0, got, BLK);
		SOFT(err == -EIO, "read EIO after 4 writes (faults_after_writes 3): read -> %d", err);
		dev_close(d);
	}
	/* bit flip on read: one bit wrong in the buffer, medium intact */
	{
		struct dev *d = mem_open(MiB, NULL);
		fill(data, 4 * BLK, 5);
		CHECK_EQ(dev_write_sync(d, 4 * BLK, data, 4 * BLK), 0);
		memcpy(old, dev_mem_image(d) + 4 * BLK, 4 * BLK);
		struct dev_fault_plan p = plan_one(seed);
		p.read_flip_ppm = ALL;
		dev_mem_set_plan(d, &p);
		int err = dev_read_sync(d, 4 * BLK, got, 4 * BLK);
		SOFT(err == 0, "read flip: read -> %d", err);
		SOFT(bit_diff(got, data, 4 * BLK) == 1, "read flip: %u bits differ in the buffer, want 1",
		     bit_diff(got, data, 4 * BLK));
		SOFT(memcmp(dev_mem_image(d) + 4 * BLK, data, 4 * BLK) == 0, "read flip: medium changed");
		dev_mem_set_plan(d, &(struct dev_fault_plan){0});
		SOFT(dev_read_sync(d, 4 * BLK, got, 4 * BLK) == 0 && memcmp(got, data, 4 * BLK) == 0,
		     "read flip: transient, a later read is right");
		st = dev_mem_stats(d);
		SOFT(st.read_flip == 1 && !st.read_eio, "read flip: stats flip %llu",
		     (unsigned long long)st.read_flip);
		dev_close(d);
	}
	/* dev_mem_flip_bit: corrupts the medium, counts nothing */
	{
		struct dev *d = mem_open(MiB, NULL);
		dev_mem_flip_bit(d, 12345, 3);
		SOFT(dev_mem_image(d)[12345] == 8, "flip_bit changed byte to %u", dev_mem_image(d)[12345]);
		dev_mem_flip_bit(d, 12345, 3);
		SOFT(all_zero(dev_mem_image(d), MiB), "flip_bit twice restores");
		st = dev_mem_stats(d);
		SOFT(!st.write_flip && !st.read_flip && !st.writes && !st.reads, "flip_bit counted");
		dev_close(d);
	}
	dev_buf_free(data);
	dev_buf_free(got);
	dev_buf_free(old);
	test_end("mem_fault_each");
}

/* All fault kinds at once; the outcome of every request is read off the
 * medium and the counters must agree. Returns the final stats. */
static struct dev_fault_stats mem_mixed_run(uint64_t seed, uint8_t *image_out, bool report)
{
	const unsigned blocks = 256, rounds = 4000, batch = 8;
	struct dev_fault_plan p = {.seed = seed,
				   .write_eio_ppm = 100000,
				   .write_lost_ppm = 100000,
				   .write_flip_ppm = 100000,
				   .read_eio_ppm = 100000,
				   .read_flip_ppm = 100000};
	struct dev *d = mem_open(blocks * BLK, &p);
	uint8_t *model = calloc(blocks, BLK);
	uint8_t *bufs = xbuf((uint64_t)batch * BLK);
	CHECK(model);
	uint64_t rs = seed;
	uint64_t n_w = 0, n_eio = 0, n_lost = 0, n_flip = 0, n_r = 0, n_reio = 0, n_rflip = 0;
	int counter = 0;
	for (unsigned r = 0; r < rounds; r += batch) {
		/* a batch of writes to distinct blocks */
		struct treq reqs[8];
		unsigned blk[8];
		unsigned first = (unsigned)(test_rand(&rs) % (blocks - batch));
		for (unsigned i = 0; i < batch; i++) {
			blk[i] = first + i;
			fill(bufs + i * BLK, BLK, 100000 + r + i);
			treq_init(&reqs[i], DEV_WRITE, (uint64_t)blk[i] * BLK, bufs + i * BLK, BLK, &counter);
			CHECK_EQ(dev_submit(d, &reqs[i].r), 0);
		}
		poll_all(d, reqs, batch, "mixed writes");
		const uint8_t *img = dev_mem_image(d);
		for (unsigned i = 0; i < batch; i++) {
			const uint8_t *now = img + (uint64_t)blk[i] * BLK, *was = model + (uint64_t)blk[i] * BLK;
			const uint8_t *sent = bufs + i * BLK;
			n_w++;
			if (reqs[i].r.res == -EIO) {
				n_eio++;
				SOFT(memcmp(now, was, BLK) == 0, "write EIO changed block %u", blk[i]);
			} else if (reqs[i].r.res == (int32_t)BLK) {
				if (memcmp(now, sent, BLK) == 0)
					;
				else if (memcmp(now, was, BLK) == 0)
					n_lost++;
				else if (bit_diff(now, sent, BLK) == 1)
					n_flip++;
				else
					test_soft_fail(__FILE__, __LINE__, "write to block %u: medium is neither old, new, "
								 "nor new with one bit flipped", blk[i]);
			} else {
				test_soft_fail(__FILE__, __LINE__, "write res %d", reqs[i].r.res);
			}
			memcpy(model + (uint64_t)blk[i] * BLK, now, BLK);
		}
		/* a batch of reads of random blocks */
		for (unsigned i = 0; i < batch; i++) {
			blk[i] = (unsigned)(test_rand(&rs) % blocks);
			memset(bufs + i * BLK, 0, BLK);
			treq_init(&reqs[i], DEV_READ, (uint64_t)blk[i] * BLK, bufs + i * BLK, BLK, &counter);
			CHECK_EQ(dev_submit(d, &reqs[i].r), 0);
		}
		poll_all(d, reqs, batch, "mixed reads");
		for (unsigned i = 0; i < batch; i++) {
			const uint8_t *want = model + (uint64_t)blk[i] * BLK, *got = bufs + i * BLK;
			n_r++;
			if (reqs[i].r.res == -EIO)
				n_reio++;
			else if (reqs[i].r.res != (int32_t)BLK)
				test_soft_fail(__FILE__, __LINE__, "read res %d", reqs[i].r.res);
			else if (memcmp(got, want, BLK) == 0)
				;
			else if (bit_diff(got, want, BLK) == 1)
				n_rflip++;
			else
				test_soft_fail(__FILE__, __LINE__, "read of block %u: neither the medium nor one bit off",
				     blk[i]);
		}
		SOFT(memcmp(dev_mem_image(d), model, (uint64_t)blocks * BLK) == 0, "reads changed the medium");
	}
	struct dev_fault_stats st = dev_mem_stats(d);
	SOFT(st.writes == n_w && st.reads == n_r, "stats writes %llu reads %llu, issued %llu %llu",
	     (unsigned long long)st.writes, (unsigned long long)st.reads, (unsigned long long)n_w,
	     (unsigned long long)n_r);
	SOFT(st.write_eio == n_eio, "write_eio %llu, observed %llu", (unsigned long long)st.write_eio,
	     (unsigned long long)n_eio);
	SOFT(st.write_lost == n_lost, "write_lost %llu, observed %llu", (unsigned long long)st.write_lost,
	     (unsigned long long)n_lost);
	SOFT(st.write_flip == n_flip, "write_flip %llu, observed %llu", (unsigned long long)st.write_flip,
	     (unsigned long long)n_flip);
	SOFT(st.read_eio == n_reio, "read_eio %llu, observed %llu", (unsigned long long)st.read_eio,
	     (unsigned long long)n_reio);
	SOFT(st.read_flip == n_rflip, "read_flip %llu, observed %llu", (unsigned long long)st.read_flip,
	     (unsigned long long)n_rflip);
	/* 10% each, drawn in turn: roughly 400, 360, 324 of 4000 writes */
	const uint64_t lo = 200, hi = 600;
	SOFT(n_eio >= lo && n_eio <= hi && n_lost >= lo && n_lost <= hi && n_flip >= lo && n_flip <= hi &&
		     n_reio >= lo && n_reio <= hi && n_rflip >= lo && n_rflip <= hi,
	     "fault rates off for 10%%: write eio %llu lost %llu flip %llu, read eio %llu flip %llu",
	     (unsigned long long)n_eio, (unsigned long long)n_lost, (unsigned long long)n_flip,
	     (unsigned long long)n_reio, (unsigned long long)n_rflip);
	if (report)
		fprintf(stderr,
			"%llu writes: %llu eio, %llu lost, %llu flipped; %llu reads: %llu eio, %llu flipped\n",
			(unsigned long long)n_w, (unsigned long long)n_eio, (unsigned long long)n_lost,
			(unsigned long long)n_flip, (unsigned long long)n_r, (unsigned long long)n_reio,
			(unsigned long long)n_rflip);
	memcpy(image_out, dev_mem_image(d), (uint64_t)blocks * BLK);
	dev_buf_free(bufs);
	free(model);
	dev_close(d);
	return st;
}

static void test_mem_fault_mixed(uint64_t seed)
{
	test_begin("mem_fault_mixed");
	uint8_t *a = malloc(256 * BLK), *b = malloc(256 * BLK);
	CHECK(a && b);
	struct dev_fault_stats s1 = mem_mixed_run(seed, a, true);
	struct dev_fault_stats s2 = mem_mixed_run(seed, b, false);
	SOFT(memcmp(&s1, &s2, sizeof(s1)) == 0 && memcmp(a, b, 256 * BLK) == 0,
	     "the same seed and requests gave different faults");
	free(a);
	free(b);
	test_end("mem_fault_mixed");
}

static void test_mem_power_cut(uint64_t seed)
{
	test_begin("mem_power_cut");
	const uint64_t size = MiB;
	uint8_t *data = xbuf(8 * BLK), *got = xbuf(8 * BLK);
	uint8_t *model = calloc(1, size);
	CHECK(model);
	struct dev_fault_plan p = plan_one(seed);
	p.power_cut_after_writes = 5;
	struct dev *d = mem_open(size, &p);
	for (unsigned i = 0; i < 5; i++) {
		fill(data, BLK, 300 + i);
		SOFT(dev_write_sync(d, i * BLK, data, BLK) == 0, "write %u before the cut", i + 1);
		memcpy(model + i * BLK, data, BLK);
	}
	SOFT(!dev_mem_stats(d).power_cut, "power cut before write 6");
	/* write 6: 8 blocks = 64 sectors, torn */
	fill(data, 8 * BLK, 310);
	int err = dev_write_sync(d, 16 * BLK, data, 8 * BLK);
	SOFT(err == -EIO, "torn write -> %d, want -EIO", err);
	struct dev_fault_stats st = dev_mem_stats(d);
	SOFT(st.power_cut, "power_cut not set");
	const uint8_t *img = dev_mem_image(d);
	unsigned kept = 0, lost = 0, other = 0;
	for (unsigned s = 0; s < 8 * BLK / SECTOR; s++) {
		const uint8_t *sec = img + 16 * BLK + s * SECTOR;
		if (memcmp(sec, data + s * SECTOR, SECTOR) == 0) {
			kept++;
			memcpy(model + 16 * BLK + s * SECTOR, sec, SECTOR);
		} else if (all_zero(sec, SECTOR)) {
			lost++;
		} else {
			other++;
		}
	}
	SOFT(other == 0, "%u torn sectors are neither old nor new", other);
	SOFT(kept == st.torn_sectors_kept && lost == st.torn_sectors_lost,
	     "torn sectors: %u kept %u lost, stats %llu %llu", kept, lost,
	     (unsigned long long)st.torn_sectors_kept, (unsigned long long)st.torn_sectors_lost);
	SOFT(kept + lost == 64 && kept > 0 && lost > 0, "tearing at sector granularity: %u kept, %u lost",
	     kept, lost);
	SOFT(memcmp(img, model, size) == 0, "power cut changed data outside the torn write");
	/* every later request fails, nothing changes */
	fill(data, BLK, 320);
	SOFT(dev_write_sync(d, 30 * BLK, data, BLK) == -EIO, "write after the cut");
	SOFT(dev_read_sync(d, 0, got, BLK) == -EIO, "read after the cut");
	SOFT(dev_zone_reset(d, 0, 4 * BLK) == -EIO, "zone_reset after the cut");
	{
		int counter = 0;
		struct treq rq[3];
		for (unsigned i = 0; i < 3; i++) {
			treq_init(&rq[i], i ? DEV_READ : DEV_WRITE, (40 + i) * BLK, data, BLK, &counter);
			CHECK_EQ(dev_submit(d, &rq[i].r), 0);
		}
		poll_all(d, rq, 3, "after the cut");
		for (unsigned i = 0; i < 3; i++)
			SOFT(rq[i].r.res == -EIO, "async request %u after the cut: res %d", i, rq[i].r.res);
	}
	SOFT(memcmp(dev_mem_image(d), model, size) == 0, "requests after the cut changed the medium");
	/* restart from the image */
	struct dev *d2 = NULL;
	CHECK_EQ(dev_open_mem_copy(&d2, dev_mem_image(d), size, NULL), 0);
	dev_close(d);
	SOFT(memcmp(dev_mem_image(d2), model, size) == 0, "copied image");
	check_range(d2, model, 0, size, "after restart");
	fill(data, BLK, 330);
	SOFT(dev_write_sync(d2, 16 * BLK, data, BLK) == 0, "write after restart");
	memcpy(model + 16 * BLK, data, BLK);
	check_range(d2, model, 0, size, "after restart and write");
	SOFT(!dev_mem_stats(d2).power_cut, "restart keeps no power cut");
	dev_close(d2);

	/* "after N successful writes": a failed write does not count */
	memset(model, 0, size);
	p = plan_one(seed);
	p.power_cut_after_writes = 3;
	p.write_eio_ppm = 1000000;
	d = mem_open(size, &p);
	fill(data, BLK, 335);
	SOFT(dev_write_sync(d, 0, data, BLK) == -EIO, "injected write EIO");
	p.write_eio_ppm = 0;
	dev_mem_set_plan(d, &p); /* same cut point, no more EIO */
	for (unsigned i = 1; i <= 3; i++) {
		err = dev_write_sync(d, i * BLK, data, BLK);
		SOFT(err == 0,
		     "power cut after 3 successful writes: successful write %u (device write %u) -> %d "
		     "(dev_mem.c counts failed writes towards power_cut_after_writes)", i, i + 1, err);
	}
	dev_close(d);

	/* a cut in the middle of a batch: write 1 lands, 2 is torn, 3 fails */
	memset(model, 0, size);
	p.power_cut_after_writes = 1;
	d = mem_open(size, &p);
	{
		int counter = 0;
		struct treq rq[3];
		uint8_t *b3 = xbuf(3 * BLK);
		fill(b3, 3 * BLK, 340);
		for (unsigned i = 0; i < 3; i++) {
			treq_init(&rq[i], DEV_WRITE, (uint64_t)(10 * i) * BLK, b3 + i * BLK, BLK, &counter);
			CHECK_EQ(dev_submit(d, &rq[i].r), 0);
		}
		poll_all(d, rq, 3, "batch with a cut");
		SOFT(rq[0].r.res == (int32_t)BLK && rq[1].r.res == -EIO && rq[2].r.res == -EIO,
		     "batch with a cut: res %d %d %d", rq[0].r.res, rq[1].r.res, rq[2].r.res);
		SOFT(memcmp(dev_mem_image(d), b3, BLK) == 0, "write before the cut landed");
		SOFT(all_zero(dev_mem_image(d) + 20 * BLK, BLK), "write after the cut did not land");
		st = dev_mem_stats(d);
		SOFT(st.torn_sectors_kept + st.torn_sectors_lost == BLK / SECTOR, "one torn block: %llu+%llu",
		     (unsigned long long)st.torn_sectors_kept, (unsigned long long)st.torn_sectors_lost);
		dev_buf_free(b3);
	}
	dev_close(d);
	dev_buf_free(data);
	dev_buf_free(got);
	free(model);
	test_end("mem_power_cut");
}

static void test_mem_zone_reset(void)
{
	test_begin("mem_zone_reset");
	const uint64_t size = MiB;
	struct dev *d = mem_open(size, NULL);
	uint8_t *model = calloc(1, size), *data = xbuf(size);
	CHECK(model);
	fill(data, size, 400);
	CHECK_EQ(dev_write_sync(d, 0, data, (uint32_t)size), 0);
	memcpy(model, data, size);
	SOFT(dev_zone_reset(d, 64 * BLK, 64 * BLK) == 0, "zone_reset");
	memset(model + 64 * BLK, 0, 64 * BLK);
	SOFT(memcmp(dev_mem_image(d), model, size) == 0, "image after zone_reset");
	check_range(d, model, 0, size, "read after zone_reset");
	/* the range can be written again */
	fill(data, 4 * BLK, 401);
	SOFT(dev_write_sync(d, 64 * BLK, data, 4 * BLK) == 0, "write after zone_reset");
	memcpy(model + 64 * BLK, data, 4 * BLK);
	/* whole device, and an empty range */
	SOFT(dev_zone_reset(d, 0, 0) == 0, "zone_reset of 0 bytes");
	check_range(d, model, 0, size, "after an empty reset");
	SOFT(dev_zone_reset(d, 0, size) == 0, "zone_reset all");
	SOFT(all_zero(dev_mem_image(d), size), "all zero after a full reset");
	dev_close(d);

	/* reset_keeps_bytes: a reset range reads back what it held */
	d = mem_open(size, &(struct dev_fault_plan){.seed = 1, .reset_keeps_bytes = true});
	fill(data, size, 402);
	CHECK_EQ(dev_write_sync(d, 0, data, (uint32_t)size), 0);
	memcpy(model, data, size);
	SOFT(dev_zone_reset(d, 64 * BLK, 64 * BLK) == 0, "zone_reset keeping the bytes");
	check_range(d, model, 0, size, "read after a zone_reset that keeps the bytes");
	dev_buf_free(data);
	free(model);
	dev_close(d);
	test_end("mem_zone_reset");
}

static void test_mem_clone(void)
{
	test_begin("mem_clone");
	const uint64_t size = 4 * MiB;
	struct dev *d = mem_open(size, NULL);
	uint8_t *model = calloc(1, size);
	CHECK(model);
	check_clone(d, model, 0, 2 * MiB, true);
	SOFT(memcmp(dev_mem_image(d), model, size) == 0, "image after clone I/O");
	struct dev_fault_stats st = dev_mem_stats(d);
	SOFT(st.writes == 24 + 1 + 16 && st.reads == 24 + 2 + 16, "shared stats: %llu writes %llu reads",
	     (unsigned long long)st.writes, (unsigned long long)st.reads);
	/* a clone outlives the handle it came from */
	struct dev *c = NULL;
	CHECK_EQ(dev_clone(d, &c), 0);
	dev_close(d);
	check_range(c, model, 0, size, "clone after the parent closed");
	/* dev_open_mem_copy copies: writes do not reach the source */
	struct dev *cp = NULL;
	CHECK_EQ(dev_open_mem_copy(&cp, dev_mem_image(c), size, NULL), 0);
	uint8_t *data = xbuf(BLK);
	fill(data, BLK, 500);
	CHECK_EQ(dev_write_sync(cp, 0, data, BLK), 0);
	SOFT(memcmp(dev_mem_image(c), model, size) == 0, "write to a copy changed the source");
	SOFT(memcmp(dev_mem_image(cp), data, BLK) == 0, "copy write");
	dev_close(cp);
	dev_close(c);
	dev_buf_free(data);
	free(model);
	test_end("mem_clone");
}

/* ------------------------------------------------------------------------ */
/* dev_mem: the adversarial scheduler */

/* n writes of len bytes at i * len, data tagged tag0 + i, submitted. */
static void submit_writes(struct dev *d, struct treq *t, uint8_t *bufs, unsigned n, uint32_t len, uint64_t tag0,
			  int *counter)
{
	for (unsigned i = 0; i < n; i++) {
		fill(bufs + (uint64_t)i * len, len, tag0 + i);
		treq_init(&t[i], DEV_WRITE, (uint64_t)i * len, bufs + (uint64_t)i * len, len, counter);
		CHECK_EQ(dev_submit(d, &t[i].r), 0);
	}
}

/* Requests delivered while one submitted before them was not yet (the
 * definition of dev_fault_stats.reordered); t[] in submission order. */
static uint64_t delivered_early(const struct treq *t, unsigned n)
{
	uint64_t c = 0;
	for (unsigned j = 0; j < n; j++) {
		bool early = false;
		for (unsigned i = 0; i < j && !early; i++)
			early = t[i].order > t[j].order;
		c += early;
	}
	return c;
}

/* Reordering: requests complete in a random order over several polls; a
 * write completes before a read submitted earlier; the stats count what
 * was observed; the data is right whatever the order. */
static void test_mem_sched_reorder(uint64_t seed)
{
	test_begin("mem_sched_reorder");
	enum { N = 64 };
	struct dev_fault_plan p = {.seed = seed, .reorder = true, .partial_ppm = 1000000};
	struct dev *d = mem_open(MiB, &p);
	uint8_t *bufs = xbuf((uint64_t)N * BLK);
	struct treq t[N];
	int counter = 0;
	submit_writes(d, t, bufs, N, BLK, 900, &counter);
	unsigned polls = 0;
	for (; dev_in_flight(d) > 0 && polls < 1000; polls++) {
		unsigned before = dev_in_flight(d);
		int r = dev_poll(d, polls % 2);
		SOFT(r >= (int)(polls % 2) && (unsigned)r == before - dev_in_flight(d),
		     "dev_poll(%u) -> %d, in flight %u -> %u", polls % 2, r, before, dev_in_flight(d));
	}
	SOFT(dev_in_flight(d) == 0 && polls > 1, "64 writes took %u polls (partial completion)", polls);
	for (unsigned i = 0; i < N; i++)
		SOFT(t[i].done == 1 && t[i].r.res == (int32_t)BLK, "write %u: done %d res %d", i, t[i].done,
		     t[i].r.res);
	struct dev_fault_stats st = dev_mem_stats(d);
	uint64_t early = delivered_early(t, N);
	SOFT(early > N / 4, "only %llu of %d writes delivered before an earlier one",
	     (unsigned long long)early, N);
	SOFT(st.reordered == early, "stats reordered %llu, observed %llu", (unsigned long long)st.reordered,
	     (unsigned long long)early);
	SOFT(st.partial_polls > 0, "no partial poll at 100%%");
	SOFT(memcmp(dev_mem_image(d), bufs, (uint64_t)N * BLK) == 0, "reordered writes: medium differs");

	/* read then write of one block, in flight together: the read sees the
	 * old data or the new, and over many rounds both happen */
	unsigned saw_old = 0, saw_new = 0, write_first = 0;
	uint8_t *rb = xbuf(BLK);
	for (unsigned round = 0; round < 200; round++) {
		struct treq rw[2];
		counter = 0;
		uint64_t off = 100 * BLK;
		memcpy(rb, dev_mem_image(d) + off, BLK); /* old */
		uint8_t *old = malloc(BLK);
		CHECK(old);
		memcpy(old, rb, BLK);
		memset(rb, 0, BLK);
		fill(bufs, BLK, 2000 + round);
		treq_init(&rw[0], DEV_READ, off, rb, BLK, &counter);
		treq_init(&rw[1], DEV_WRITE, off, bufs, BLK, &counter);
		CHECK_EQ(dev_submit(d, &rw[0].r), 0);
		CHECK_EQ(dev_submit(d, &rw[1].r), 0);
		poll_all(d, rw, 2, "read and write");
		write_first += rw[1].order < rw[0].order;
		if (memcmp(rb, old, BLK) == 0)
			saw_old++;
		else if (memcmp(rb, bufs, BLK) == 0)
			saw_new++;
		else
			test_soft_fail(__FILE__, __LINE__, "round %u: the read returned neither old nor new", round);
		free(old);
	}
	SOFT(saw_old > 20 && saw_new > 20 && write_first > 20,
	     "read racing a write: %u old, %u new, write delivered first %u of 200", saw_old, saw_new,
	     write_first);
	dev_buf_free(rb);
	dev_buf_free(bufs);
	dev_close(d);
	test_end("mem_sched_reorder");
}

/* Partial completion: dev_poll(n) delivers at least n (held ones too), and
 * dev_poll(0) may deliver none of what is queued. */
static void test_mem_sched_partial(uint64_t seed)
{
	test_begin("mem_sched_partial");
	enum { N = 40 };
	struct dev_fault_plan p = {.seed = seed, .partial_ppm = 1000000};
	struct dev *d = mem_open(MiB, &p);
	uint8_t *buf = xbuf(BLK);
	struct treq t[N];
	int counter = 0;
	for (unsigned i = 0; i < N; i++) {
		treq_init(&t[i], DEV_READ, (uint64_t)i * BLK, buf, BLK, &counter);
		CHECK_EQ(dev_submit(d, &t[i].r), 0);
	}
	unsigned polls = 0, short_polls = 0;
	for (; dev_in_flight(d) > 0 && polls < 10000; polls++) {
		unsigned want = polls % 3 == 0 ? (dev_in_flight(d) < 3 ? dev_in_flight(d) : 3) : 0;
		unsigned before = dev_in_flight(d);
		int r = dev_poll(d, want);
		SOFT(r >= (int)want, "dev_poll(%u) delivered %d", want, r);
		short_polls += (unsigned)r < before;
		if (r < 0)
			break;
	}
	SOFT(dev_in_flight(d) == 0 && short_polls + 1 >= polls && polls > 3, /* the last may take all */
	     "%u polls, %u of them left requests queued (partial_ppm 100%%)", polls, short_polls);
	/* one request queued: dev_poll(0) never takes it, dev_poll(1) does */
	struct treq one;
	treq_init(&one, DEV_READ, 0, buf, BLK, &counter);
	CHECK_EQ(dev_submit(d, &one.r), 0);
	for (unsigned i = 0; i < 10; i++)
		SOFT(dev_poll(d, 0) == 0, "dev_poll(0) delivered the only request at partial_ppm 100%%");
	SOFT(dev_poll(d, 1) == 1 && one.done == 1, "dev_poll(1) did not deliver the only request");
	for (unsigned i = 0; i < N; i++) /* not reordered: submission order */
		SOFT(t[i].done == 1 && t[i].order == (int)i, "read %u: done %d, delivered as %d", i, t[i].done,
		     t[i].order);
	SOFT(dev_mem_stats(d).partial_polls > 0 && dev_mem_stats(d).reordered == 0, "partial %llu reordered %llu",
	     (unsigned long long)dev_mem_stats(d).partial_polls, (unsigned long long)dev_mem_stats(d).reordered);
	dev_buf_free(buf);
	dev_close(d);
	test_end("mem_sched_partial");
}

static uint32_t hold_tagged(void *arg, const struct dev_req *req)
{
	const struct treq *tagged = arg;
	return req == &tagged->r ? 3 : 0;
}

/* Holds: reads held back while writes complete, released after at most
 * hold_polls_max polls, forced by a dev_poll that needs them; hold_fn holds
 * one chosen request exactly its polls. Early transfer: a held read that
 * already did its transfer returns the data from before a later write. */
static void test_mem_sched_hold(uint64_t seed)
{
	test_begin("mem_sched_hold");
	enum { N = 16 };
	struct dev_fault_plan p = {.seed = seed, .hold_read_ppm = 1000000, .hold_polls_max = 5};
	struct dev *d = mem_open(MiB, &p);
	uint8_t *bufs = xbuf(2ull * N * BLK);
	struct treq t[2 * N];
	int counter = 0;
	for (unsigned i = 0; i < N; i++) { /* reads first, then writes */
		treq_init(&t[i], DEV_READ, (uint64_t)i * BLK, bufs + (uint64_t)i * BLK, BLK, &counter);
		CHECK_EQ(dev_submit(d, &t[i].r), 0);
	}
	for (unsigned i = N; i < 2 * N; i++) {
		fill(bufs + (uint64_t)i * BLK, BLK, 3000 + i);
		treq_init(&t[i], DEV_WRITE, (uint64_t)(i + 100) * BLK, bufs + (uint64_t)i * BLK, BLK, &counter);
		CHECK_EQ(dev_submit(d, &t[i].r), 0);
	}
	int r = dev_poll(d, 0);
	SOFT(r == N, "first dev_poll(0) delivered %d, want the %d writes", r, N);
	for (unsigned i = N; i < 2 * N; i++)
		SOFT(t[i].done == 1, "write %u not delivered while reads are held", i);
	for (unsigned i = 0; i < N; i++)
		SOFT(t[i].done == 0, "held read %u delivered at once", i);
	unsigned polls = 1;
	for (; dev_in_flight(d) > 0 && polls < 10; polls++)
		dev_poll(d, 0);
	SOFT(dev_in_flight(d) == 0 && polls <= 6, "held reads still in flight after %u polls (max hold 5)", polls);
	struct dev_fault_stats st = dev_mem_stats(d);
	SOFT(st.held == N && st.held_forced == 0, "held %llu forced %llu", (unsigned long long)st.held,
	     (unsigned long long)st.held_forced);
	/* a dev_poll(1) with only held requests completes one of them */
	struct treq one;
	treq_init(&one, DEV_READ, 0, bufs, BLK, &counter);
	CHECK_EQ(dev_submit(d, &one.r), 0);
	SOFT(dev_poll(d, 1) == 1 && one.done == 1, "dev_poll(1) with one held read");
	SOFT(dev_mem_stats(d).held_forced == 1, "held_forced %llu", (unsigned long long)dev_mem_stats(d).held_forced);
	dev_close(d);

	/* hold_fn: only the chosen read waits, exactly 3 polls */
	struct treq tagged;
	p = (struct dev_fault_plan){.seed = seed, .hold_fn = hold_tagged, .hold_arg = &tagged};
	d = mem_open(MiB, &p);
	counter = 0;
	treq_init(&tagged, DEV_READ, 0, bufs, BLK, &counter);
	CHECK_EQ(dev_submit(d, &tagged.r), 0);
	for (unsigned i = 0; i < 4; i++) {
		treq_init(&t[i], i % 2 ? DEV_WRITE : DEV_READ, (uint64_t)(i + 1) * BLK, bufs + (uint64_t)(i + 1) * BLK,
			  BLK, &counter);
		CHECK_EQ(dev_submit(d, &t[i].r), 0);
	}
	unsigned when = 0;
	for (unsigned poll = 1; poll <= 5 && !when; poll++) {
		dev_poll(d, 0);
		if (tagged.done)
			when = poll;
		if (poll == 1)
			SOFT(t[0].done && t[1].done && t[2].done && t[3].done, "untagged requests held");
	}
	SOFT(when == 4, "the tagged read (held 3 polls) was delivered at poll %u", when);
	dev_close(d);

	/* early transfer: the read's data is from before a write that completes first */
	p = (struct dev_fault_plan){.seed = seed, .hold_fn = hold_tagged, .hold_arg = &tagged, .early_io_ppm = 1000000};
	d = mem_open(MiB, &p);
	uint8_t *rb = xbuf(BLK), *wb = xbuf(BLK);
	fill(wb, BLK, 4000);
	memset(rb, 0xee, BLK);
	treq_init(&tagged, DEV_READ, 0, rb, BLK, &counter);
	CHECK_EQ(dev_submit(d, &tagged.r), 0);
	dev_poll(d, 0); /* transfer now: zeros */
	CHECK_EQ(dev_write_sync(d, 0, wb, BLK), 0);
	for (unsigned i = 0; i < 5 && !tagged.done; i++)
		dev_poll(d, 0);
	SOFT(tagged.done && all_zero(rb, BLK), "early read: done %d, data %s", tagged.done,
	     all_zero(rb, BLK) ? "old" : "not the old zeros");
	SOFT(dev_mem_stats(d).early_io >= 1, "early_io not counted");
	dev_buf_free(rb);
	dev_buf_free(wb);
	dev_close(d);
	dev_buf_free(bufs);
	test_end("mem_sched_hold");
}

/* Transient submit errors: the backend refuses with -EAGAIN or -EBUSY;
 * dev_submit() reports both as -EAGAIN (dev.h), nothing queued, never while
 * nothing is in flight (a sync request always goes through), counted. */
static void test_mem_submit_eagain(uint64_t seed)
{
	test_begin("mem_submit_eagain");
	struct dev_fault_plan p = {.seed = seed, .submit_eagain_ppm = 500000};
	struct dev *d = mem_open(MiB, &p);
	uint8_t *buf = xbuf(BLK);
	for (unsigned i = 0; i < 50; i++)
		SOFT(dev_read_sync(d, 0, buf, BLK) == 0, "sync read %u with nothing else in flight", i);
	struct treq t[64];
	int counter = 0;
	unsigned refused = 0, eagain = 0, ebusy = 0, queued = 0;
	for (unsigned i = 0; i < 64; i++) {
		treq_init(&t[queued], DEV_READ, 0, buf, BLK, &counter);
		unsigned before = dev_in_flight(d);
		int err = dev_submit(d, &t[queued].r);
		if (err) {
			refused++;
			eagain += err == -EAGAIN;
			ebusy += err == -EBUSY;
			SOFT(dev_in_flight(d) == before, "a refused submit changed in_flight");
		} else {
			queued++;
		}
	}
	poll_all(d, t, queued, "after refusals");
	SOFT(eagain > 10 && ebusy == 0 && eagain == refused, "refused %u: %u EAGAIN, %u EBUSY", refused, eagain,
	     ebusy);
	SOFT(dev_mem_stats(d).submit_eagain == refused, "stats submit_eagain %llu, observed %u",
	     (unsigned long long)dev_mem_stats(d).submit_eagain, refused);
	dev_buf_free(buf);
	dev_close(d);
	test_end("mem_submit_eagain");
}

/* Classify the medium at a write's range: 0 old (lost), 1 new (persisted),
 * 2 torn (each sector old or new, both kinds), 3 neither. */
static int write_fate(const uint8_t *now, const uint8_t *old, const uint8_t *sent, uint32_t len)
{
	unsigned n_old = 0, n_new = 0;
	for (uint32_t s = 0; s < len; s += SECTOR) {
		bool is_new = memcmp(now + s, sent + s, SECTOR) == 0, is_old = memcmp(now + s, old + s, SECTOR) == 0;
		if (!is_new && !is_old)
			return 3;
		n_new += is_new;
		n_old += is_old && !is_new;
	}
	return n_new == 0 ? 0 : n_old == 0 ? 1 : 2;
}

/* Power cut with writes in flight: delivered writes are on the medium,
 * each write in flight is persisted, torn or lost, as counted; everything
 * in flight completes with -EIO and nothing later gets through. Both the
 * explicit cut and power_cut_after_writes with the adversarial scheduler. */
static void test_mem_sched_power_cut(uint64_t seed)
{
	test_begin("mem_sched_power_cut");
	enum { N = 96, W = 4 * BLK };
	const uint64_t size = 2 * MiB;
	for (int mode = 0; mode < 2; mode++) {
		struct dev_fault_plan p = {.seed = seed + (uint64_t)mode, .reorder = true, .partial_ppm = 1000000,
					   .hold_write_ppm = 300000, .early_io_ppm = 100000};
		if (mode == 1)
			p.power_cut_after_writes = 12;
		uint8_t *bufs = xbuf((uint64_t)N * W), *old = calloc(1, size);
		CHECK(old);
		fill(old, N * W, 5000); /* the old content */
		struct dev *d = NULL;
		CHECK_EQ(dev_open_mem_copy(&d, old, size, &p), 0);
		struct treq t[N];
		int counter = 0;
		submit_writes(d, t, bufs, N, W, 6000, &counter);
		dev_poll(d, 1); /* partial: some of the ready half */
		int cut_at = counter;
		if (mode == 0)
			dev_mem_power_cut(d);
		poll_all(d, t, N, "writes across a cut");
		struct dev_fault_stats st = dev_mem_stats(d);
		SOFT(st.power_cut, "mode %d: no power cut", mode);
		unsigned ok = 0, fate[4] = {0};
		for (unsigned i = 0; i < N; i++) {
			int f = write_fate(dev_mem_image(d) + (uint64_t)i * W, old + (uint64_t)i * W,
					   bufs + (uint64_t)i * W, W);
			if (t[i].r.res == (int32_t)W) {
				ok++;
				SOFT(f == 1, "mode %d: write %u acknowledged but fate %d on the medium", mode, i, f);
				SOFT(mode == 1 || t[i].order < cut_at, "write %u acknowledged after the cut", i);
			} else {
				SOFT(t[i].r.res == -EIO, "write %u: res %d", i, t[i].r.res);
				fate[f]++;
			}
		}
		SOFT(fate[3] == 0, "mode %d: %u writes neither old, new nor torn", mode, fate[3]);
		/* mode 1: the write that hits the limit is torn by the old rule;
		 * written: on the medium before the cut, never delivered */
		uint64_t torn = st.cut_torn + (mode == 1);
		SOFT(fate[0] == st.cut_lost && fate[1] == st.cut_persisted + st.cut_written && fate[2] == torn,
		     "mode %d: lost/persisted/torn %u %u %u, stats %llu %llu+%llu %llu", mode, fate[0], fate[1],
		     fate[2], (unsigned long long)st.cut_lost, (unsigned long long)st.cut_persisted,
		     (unsigned long long)st.cut_written, (unsigned long long)torn);
		SOFT((ok > 0 || mode == 1) && ok < N && fate[0] > 0 && fate[1] > 0 && fate[2] > 0,
		     "mode %d: %u acknowledged, fates %u %u %u (want each kind)", mode, ok, fate[0], fate[1], fate[2]);
		SOFT(mode == 0 || ok + st.cut_written == 12, "power_cut_after_writes 12: %u acknowledged, %llu written",
		     ok, (unsigned long long)st.cut_written);
		uint8_t *img = malloc((uint64_t)N * W);
		CHECK(img);
		memcpy(img, dev_mem_image(d), (uint64_t)N * W);
		SOFT(dev_write_sync(d, 0, bufs, BLK) == -EIO && dev_read_sync(d, 0, bufs, BLK) == -EIO,
		     "requests after the cut");
		SOFT(memcmp(img, dev_mem_image(d), (uint64_t)N * W) == 0, "the medium changed after the cut");
		free(img);
		free(old);
		dev_buf_free(bufs);
		dev_close(d);
	}
	test_end("mem_sched_power_cut");
}

/* Everything at once, twice with one seed: the same deliveries, results,
 * stats and medium; another seed differs. Zoned: writes to a sequential
 * zone still land in order under reordering (no rejects). */
static uint64_t sched_mixed_run(uint64_t seed, bool zoned, struct dev_fault_stats *st_out, uint8_t *img)
{
	enum { N = 300 }; /* zoned: 150 writes fill most of the 3 sequential zones */
	struct dev_fault_plan p = {.seed = seed, .reorder = true, .partial_ppm = 300000, .hold_read_ppm = 200000,
				   .hold_write_ppm = 100000, .early_io_ppm = 100000, .submit_eagain_ppm = 100000,
				   .read_flip_ppm = 50000, .read_eio_ppm = 50000};
	struct dev *d = NULL;
	if (zoned)
		CHECK_EQ(dev_open_mem_zoned(&d, MiB, 256 * 1024, 1, &p), 0);
	else
		d = mem_open(MiB, &p);
	uint8_t *bufs = xbuf((uint64_t)N * BLK);
	struct treq *t = calloc(N, sizeof(*t));
	CHECK(t);
	int counter = 0;
	uint64_t digest = 0, rs = seed, wp = 256 * 1024;
	for (unsigned i = 0; i < N; i++) {
		bool write = zoned ? i % 2 == 0 : test_rand(&rs) % 2;
		uint64_t off = zoned && write ? wp : (test_rand(&rs) % 200) * BLK;
		if (zoned && write)
			wp += BLK;
		fill(bufs + (uint64_t)i * BLK, BLK, 7000 + i);
		treq_init(&t[i], write ? DEV_WRITE : DEV_READ, off, bufs + (uint64_t)i * BLK, BLK, &counter);
		for (unsigned tries = 0; dev_submit(d, &t[i].r) != 0; tries++) {
			CHECK(tries < 100);
			dev_poll(d, 0);
		}
		if (test_rand(&rs) % 4 == 0)
			dev_poll(d, dev_in_flight(d) ? 1 : 0);
	}
	poll_all(d, t, N, "mixed");
	for (unsigned i = 0; i < N; i++)
		digest = digest * 31 + (uint64_t)t[i].order * 7 + (uint64_t)(t[i].r.res + 100);
	*st_out = dev_mem_stats(d);
	memcpy(img, dev_mem_image(d), MiB);
	for (unsigned i = 0; i < N; i++)
		digest = digest * 131 + bufs[(uint64_t)i * BLK + 17];
	free(t);
	dev_buf_free(bufs);
	dev_close(d);
	return digest;
}

static void test_mem_sched_replay(uint64_t seed)
{
	test_begin("mem_sched_replay");
	uint8_t *a = malloc(MiB), *b = malloc(MiB);
	CHECK(a && b);
	for (int zoned = 0; zoned < 2; zoned++) {
		struct dev_fault_stats s1, s2, s3;
		uint64_t d1 = sched_mixed_run(seed, zoned, &s1, a);
		uint64_t d2 = sched_mixed_run(seed, zoned, &s2, b);
		SOFT(d1 == d2 && memcmp(&s1, &s2, sizeof(s1)) == 0 && memcmp(a, b, MiB) == 0,
		     "zoned %d: one seed, two different runs", zoned);
		uint64_t d3 = sched_mixed_run(seed + 1, zoned, &s3, b);
		SOFT(d3 != d1, "zoned %d: seeds %llu and %llu gave the same run", zoned, (unsigned long long)seed,
		     (unsigned long long)seed + 1);
		SOFT(s1.reordered && s1.partial_polls && s1.held && s1.early_io && s1.submit_eagain && s1.read_flip &&
			     s1.read_eio,
		     "zoned %d: a knob had no effect: reordered %llu partial %llu held %llu early %llu eagain %llu "
		     "read flips %llu eio %llu", zoned, (unsigned long long)s1.reordered,
		     (unsigned long long)s1.partial_polls, (unsigned long long)s1.held,
		     (unsigned long long)s1.early_io, (unsigned long long)s1.submit_eagain,
		     (unsigned long long)s1.read_flip, (unsigned long long)s1.read_eio);
		SOFT(s1.zoned_rejects == 0, "zoned: %llu writes rejected under reordering",
		     (unsigned long long)s1.zoned_rejects);
	}
	free(a);
	free(b);
	test_end("mem_sched_replay");
}

/* ------------------------------------------------------------------------ */
/* dev_uring */

/* Durable creation (base/fs.h): a data directory and a data file in it,
 * as `dynvme serve` makes ./data/dynvme.img; errors are reported, never
 * ignored. That the parent's fsync makes the entry survive a power cut
 * cannot be observed here (no power cut of the host file system); this
 * checks the calls run, on the right directories, and fail loudly. */
static void test_durable_create(const char **skip)
{
	test_begin("durable_create");
	char dir[4096], file[4200], deep[4200];
	snprintf(dir, sizeof(dir), "%s/dv_test_dir_%d", test_tmpdir(), (int)getpid());
	snprintf(file, sizeof(file), "%s/dynvme.img", dir);
	snprintf(deep, sizeof(deep), "%s/missing/sub", dir);
	rmdir(dir);
	SOFT(dv_mkdir_durable(dir, 0755) == 0, "mkdir of a new directory");
	struct stat st;
	SOFT(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), "the directory exists");
	SOFT(dv_mkdir_durable(dir, 0755) == -EEXIST, "mkdir of an existing directory: -EEXIST");
	SOFT(dv_mkdir_durable(deep, 0755) == -ENOENT, "mkdir under a missing parent: -ENOENT");
	SOFT(dv_fsync_parent(file) == 0, "fsync of the parent of a (not yet existing) file");
	SOFT(dv_fsync_parent(deep) == -ENOENT, "fsync of a missing parent: -ENOENT");
	SOFT(dv_fsync_parent("relative-name") == 0, "a bare name's parent is the working directory");
	char longp[5000];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	SOFT(dv_fsync_parent(longp) == -ENAMETOOLONG, "a path over PATH_MAX");
	struct dev *d = NULL;
	SOFT(dev_open_path(&d, deep, &(struct dev_open_opts){.create_bytes = MiB}) == -ENOENT,
	     "creating a data file in a missing directory fails with -ENOENT");
	int err = dev_open_path(&d, file, &(struct dev_open_opts){.create_bytes = MiB});
	if (err == -EPERM || err == -ENOSYS || err == -EACCES || err == -EINVAL) {
		*skip = "io_uring or O_DIRECT unavailable";
	} else {
		SOFT(err == 0, "create the data file in the new directory -> %d", err);
		SOFT(stat(file, &st) == 0 && (uint64_t)st.st_size == MiB, "the file exists with its size");
		SOFT(!err && dev_info(d)->zero_filled, "a file this open created is zero_filled");
		if (!err)
			dev_close(d);
		/* opened again: not created now, so not known to be zeros */
		err = dev_open_path(&d, file, &(struct dev_open_opts){.create_bytes = MiB});
		SOFT(err == 0 && !dev_info(d)->zero_filled, "an existing file is not zero_filled (open -> %d)", err);
		if (!err)
			dev_close(d);
		unlink(file);
		/* a size that is no multiple of the block (serve --size takes any
		 * byte count): created whole, the tail zeroed too (the store
		 * uses whole zones of it) */
		const uint64_t odd = MiB + 1000;
		err = dev_open_path(&d, file, &(struct dev_open_opts){.create_bytes = odd});
		SOFT(err == 0, "create a data file of %llu bytes -> %d", (unsigned long long)odd, err);
		SOFT(stat(file, &st) == 0 && (uint64_t)st.st_size == odd, "the odd-sized file has its size");
		SOFT(unwritten_extents(file) == 0, "the odd-sized file has unwritten extents");
		if (!err) {
			SOFT(dev_info(d)->size_bytes == odd, "odd-sized file: device size %llu",
			     (unsigned long long)dev_info(d)->size_bytes);
			dev_close(d);
		}
	}
	unlink(file);
	SOFT(rmdir(dir) == 0, "the directory held only the data file");
	test_end("durable_create");
}

static bool uring_unavailable(int err) { return err == -EPERM || err == -ENOSYS || err == -EACCES; }

static void test_uring(uint64_t seed, const char **skip)
{
	test_begin("uring");
	const uint64_t size = 8 * MiB;
	char path[4096];
	snprintf(path, sizeof(path), "%s/dv_test_dev_%d.img", test_tmpdir(), (int)getpid());
	unlink(path);
	struct dev *d = NULL;
	struct dev_open_opts none = {0};
	SOFT(dev_open_path(&d, path, &none) == -ENOENT, "open of a missing file without create_bytes");
	SOFT(dev_open_path(&d, path, &(struct dev_open_opts){.create_bytes = size, .read_only = true}) ==
		     -ENOENT,
	     "read-only open of a missing file must not create it");
	SOFT(access(path, F_OK) != 0, "a failed open left the file");

	struct dev_open_opts o = {.create_bytes = size, .queue_depth = 8};
	int err = dev_open_path(&d, path, &o);
	if (err) {
		unlink(path);
		if (uring_unavailable(err) || err == -EINVAL) {
			static char msg[4096 + 128];
			snprintf(msg, sizeof(msg), "dev_open_path(%s) -> %d (%s): io_uring or O_DIRECT unavailable",
				 path, err, strerror(-err));
			*skip = msg;
			fprintf(stderr, "skip uring: %s\n", msg);
			return;
		}
		test_soft_fail(__FILE__, __LINE__, "dev_open_path(%s, create) -> %d", path, err);
		test_end("uring");
		return;
	}
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	SOFT((uint64_t)st.st_size == size, "created file size %lld", (long long)st.st_size);
	SOFT((uint64_t)st.st_blocks * 512 >= size, "created file not preallocated: %lld blocks",
	     (long long)st.st_blocks);
	SOFT(unwritten_extents(path) == 0, "the created file has unwritten extents (or FIEMAP failed): each "
					   "first write into one would be a file system metadata update");
	const struct dev_info *info = dev_info(d);
	SOFT(info->size_bytes == size, "size_bytes %llu", (unsigned long long)info->size_bytes);
	SOFT(!info->is_block_device && !info->zoned && info->zone_bytes == 0, "a file is no zoned block device");
	uint32_t lbs = info->logical_block_bytes;
	SOFT(lbs >= 512 && lbs <= BLK && BLK % lbs == 0 && (lbs & (lbs - 1)) == 0, "logical block %u", lbs);
	uint32_t want_lbs = 512;
#ifdef STATX_DIOALIGN
	{
		struct statx sx;
		if (statx(AT_FDCWD, path, 0, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
		    sx.stx_dio_offset_align)
			want_lbs = sx.stx_dio_offset_align;
	}
#endif
	SOFT(lbs == want_lbs, "logical_block_bytes %u, statx DIO offset alignment %u", lbs, want_lbs);
	fprintf(stderr, "file %s: logical block %u bytes\n", path, lbs);

	uint8_t *model = calloc(1, size);
	CHECK(model);
	check_range(d, model, 0, size, "new file reads zero");

	/* queue depth 8, 40 requests in flight (more than the SQ and CQ) */
	check_async_rw(d, model, 0, 40, 1000, false);
	/* exactly the queue depth, one poll for all */
	{
		int counter = 0;
		struct treq rq[8];
		uint8_t *b = xbuf(8 * BLK);
		for (unsigned i = 0; i < 8; i++) {
			treq_init(&rq[i], DEV_READ, (uint64_t)i * 5 * BLK, b + i * BLK, BLK, &counter);
			CHECK_EQ(dev_submit(d, &rq[i].r), 0);
		}
		int n = dev_poll(d, 8);
		SOFT(n == 8, "dev_poll(8) with 8 in flight returned %d", n);
		unsigned done = 0;
		for (unsigned i = 0; i < 8; i++)
			done += rq[i].done;
		SOFT(done == 8, "dev_poll(8) returned with %u of 8 callbacks made", done);
		poll_all(d, rq, 8, "poll(8)");
		for (unsigned i = 0; i < 8; i++)
			SOFT(rq[i].r.res == (int32_t)BLK && memcmp(b + i * BLK, model + i * 5 * BLK, BLK) == 0,
			     "poll(8) read %u", i);
		dev_buf_free(b);
	}
	/* more in flight than the completion ring holds, one poll for all:
	 * dev.h says dev_poll waits for at least min_complete completions */
	{
		enum { N = 40 };
		int counter = 0;
		struct treq rq[N];
		uint8_t *b = xbuf(N * BLK);
		for (unsigned i = 0; i < N; i++) {
			treq_init(&rq[i], DEV_READ, (uint64_t)i * BLK, b + i * BLK, BLK, &counter);
			CHECK_EQ(dev_submit(d, &rq[i].r), 0);
		}
		int n = dev_poll(d, N);
		unsigned done = 0;
		for (unsigned i = 0; i < N; i++)
			done += rq[i].done;
		SOFT(n >= N && done == N,
		     "dev_poll(%d) with %d in flight (queue depth 8) returned %d after %u callbacks", N, N, n,
		     done);
		poll_all(d, rq, N, "poll(40)");
		for (unsigned i = 0; i < N; i++)
			SOFT(rq[i].r.res == (int32_t)BLK && memcmp(b + i * BLK, model + i * BLK, BLK) == 0,
			     "poll(40) read %u", i);
		dev_buf_free(b);
	}

	/* sync helpers: last block, a 1 MiB request, odd places */
	uint8_t *data = xbuf(MiB);
	fill(data, BLK, 1100);
	SOFT(dev_write_sync(d, size - BLK, data, BLK) == 0, "write_sync last block");
	memcpy(model + size - BLK, data, BLK);
	fill(data, MiB, 1101);
	SOFT(dev_write_sync(d, 1 * MiB, data, MiB) == 0, "write_sync 1 MiB");
	memcpy(model + 1 * MiB, data, MiB);
	fill(data, 3 * BLK, 1102);
	SOFT(dev_write_sync(d, 3 * MiB + 7 * BLK, data, 3 * BLK) == 0, "write_sync 3 blocks");
	memcpy(model + 3 * MiB + 7 * BLK, data, 3 * BLK);
	check_range(d, model, 0, size, "after sync writes");

	check_rejects(d, false);

	/* zone reset of a regular file: nothing discarded (the blocks stay
	 * allocated and written, so later writes stay overwrites; zone
	 * generations hide the old records), size kept, writable again */
	{
		uint64_t off = 1 * MiB + 64 * BLK, len = 64 * BLK;
		err = dev_zone_reset(d, off, len);
		SOFT(err == 0, "zone_reset -> %d", err);
		check_range(d, model, 1 * MiB, MiB, "after zone_reset");
		CHECK_EQ(stat(path, &st), 0);
		SOFT((uint64_t)st.st_size == size, "zone_reset changed the file size to %lld",
		     (long long)st.st_size);
		int fd = open(path, O_RDONLY);
		CHECK(fd >= 0);
		off_t hole = lseek(fd, (off_t)off, SEEK_HOLE);
		SOFT(hole >= (off_t)(off + len), "a hole at %lld inside the reset range [%llu, %llu)",
		     (long long)hole, (unsigned long long)off, (unsigned long long)(off + len));
		close(fd);
		/* the range is writable again */
		fill(data, 2 * BLK, 1103);
		SOFT(dev_write_sync(d, off + BLK, data, 2 * BLK) == 0, "write into the reset range");
		memcpy(model + off + BLK, data, 2 * BLK);
		check_range(d, model, off, len, "reset range rewritten");
		SOFT(dev_zone_finish(d, 0, size) == 0, "zone_finish on a file");
	}

	/* a clone on another thread while this handle works too */
	check_clone(d, model, 5 * MiB, 6 * MiB, false);
	check_range(d, model, 0, size, "after the clone");
	/* A clone is a handle of its own "on the same medium": it keeps
	 * working when the handle it came from is closed first (as dev_mem
	 * clones do). Only reads here: if the clone shares the parent's file
	 * descriptor, that number is closed and may be reused. */
	{
		struct dev *c = NULL;
		CHECK_EQ(dev_clone(d, &c), 0);
		dev_close(d);
		d = NULL;
		uint8_t *b = xbuf(BLK);
		err = dev_read_sync(c, 0, b, BLK);
		SOFT(err == 0 && memcmp(b, model, BLK) == 0,
		     "read through a clone after its parent handle was closed -> %d (dev_uring.c "
		     "uring_clone shares the parent's fd, which uring_close closes)", err);
		dev_buf_free(b);
		dev_close(c);
	}

	/* reopen: everything persists */
	err = dev_open_path(&d, path, &none);
	SOFT(err == 0, "reopen -> %d", err);
	if (!err) {
		SOFT(dev_info(d)->size_bytes == size, "size after reopen %llu",
		     (unsigned long long)dev_info(d)->size_bytes);
		check_range(d, model, 0, size, "after reopen");
		dev_close(d);
	}
	/* create_bytes on an existing file opens it as it is */
	err = dev_open_path(&d, path, &(struct dev_open_opts){.create_bytes = 2 * size, .queue_depth = 4});
	SOFT(err == 0, "open existing with create_bytes -> %d", err);
	if (!err) {
		SOFT(dev_info(d)->size_bytes == size, "create_bytes resized an existing file to %llu",
		     (unsigned long long)dev_info(d)->size_bytes);
		check_range(d, model, 0, size, "existing file with create_bytes");
		dev_close(d);
	}
	/* read-only: reads work, writes fail */
	err = dev_open_path(&d, path, &(struct dev_open_opts){.read_only = true});
	SOFT(err == 0, "read-only open -> %d", err);
	if (!err) {
		check_range(d, model, 0, size, "read-only");
		fill(data, BLK, 1104);
		err = dev_write_sync(d, 0, data, BLK);
		SOFT(err < 0, "write on a read-only handle -> %d", err);
		dev_close(d);
		d = NULL;
		err = dev_open_path(&d, path, &none);
		if (!err) {
			check_range(d, model, 0, size, "after the read-only write attempt");
			dev_close(d);
		}
	}
	dev_buf_free(data);
	free(model);
	SOFT(unlink(path) == 0, "unlink %s", path);
	(void)seed;
	test_end("uring");
}

/* Whether the eventfd becomes readable within timeout_ms. */
static bool efd_readable(int efd, int timeout_ms)
{
	struct pollfd p = {.fd = efd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);
	CHECK(n >= 0);
	return n == 1 && (p.revents & POLLIN);
}

/* Blocking read of the eventfd's count; only after efd_readable(). */
static uint64_t efd_take(int efd)
{
	uint64_t v = 0;
	CHECK_EQ(read(efd, &v, sizeof(v)), (long long)sizeof(v));
	return v;
}

/* One write through d: sent with dev_poll(d, 0), then the eventfd must wake
 * a blocked waiter and dev_poll must deliver the completion. */
static void notify_one_write(struct dev *d, int efd, uint64_t off, uint64_t tag, const char *what)
{
	int counter = 0;
	struct treq t;
	uint8_t *b = xbuf(64 * BLK);
	fill(b, 64 * BLK, tag);
	treq_init(&t, DEV_WRITE, off, b, 64 * BLK, &counter);
	CHECK_EQ(dev_submit(d, &t.r), 0);
	/* Sends it; may reap it at once if the kernel completed it inline. */
	int n = dev_poll(d, 0);
	SOFT(n >= 0, "%s: dev_poll(0) -> %d", what, n);
	bool early = t.done == 1;
	/* The completion wakes a waiter (10 s: a hang is a failure). */
	bool woke = efd_readable(efd, 10000);
	SOFT(woke, "%s: eventfd not signalled within 10 s of a write (done %d)", what, t.done);
	if (woke)
		SOFT(efd_take(efd) >= 1, "%s: eventfd count 0", what);
	if (!early) {
		/* The CQE is posted before the eventfd is signalled: it is there. */
		n = dev_poll(d, 0);
		SOFT(n == 1 && t.done == 1, "%s: dev_poll after the wake-up -> %d, done %d", what, n, t.done);
	}
	poll_all(d, &t, 1, what);
	SOFT(t.r.res == (int32_t)(64 * BLK), "%s: res %d", what, t.r.res);
	fprintf(stderr, "%s: completion %s\n", what, early ? "reaped by the sending dev_poll (inline)" : "woke the eventfd first");
	SOFT(!efd_readable(efd, 0), "%s: eventfd readable again without a completion", what);
	dev_buf_free(b);
}

static void test_uring_notify(void)
{
	test_begin("uring_notify");
	struct dev *m = mem_open(MiB, NULL);
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	SOFT(dev_notify_fd(m, efd) == -EOPNOTSUPP, "dev_mem: dev_notify_fd must be -EOPNOTSUPP");
	dev_close(m);

	const uint64_t size = 4 * MiB;
	char path[4096];
	snprintf(path, sizeof(path), "%s/dv_test_notify_%d.img", test_tmpdir(), (int)getpid());
	unlink(path);
	struct dev *d = NULL;
	int err = dev_open_path(&d, path, &(struct dev_open_opts){.create_bytes = size, .queue_depth = 8});
	if (err) {
		/* test_uring already reported why the device is unavailable */
		fprintf(stderr, "skip uring_notify: dev_open_path -> %d\n", err);
		close(efd);
		test_end("uring_notify");
		return;
	}
	SOFT(!efd_readable(efd, 0), "a fresh eventfd is readable");
	err = dev_notify_fd(d, efd);
	SOFT(err == 0, "dev_notify_fd -> %d", err);
	SOFT(!efd_readable(efd, 0), "registering signals the eventfd");
	notify_one_write(d, efd, 0, 1, "notify write");
	notify_one_write(d, efd, 2 * MiB, 2, "notify second write");

	/* A clone has its own ring and no eventfd. */
	struct dev *c = NULL;
	CHECK_EQ(dev_clone(d, &c), 0);
	{
		uint8_t *b = xbuf(BLK);
		fill(b, BLK, 3);
		SOFT(dev_write_sync(c, MiB, b, BLK) == 0, "clone write");
		SOFT(!efd_readable(efd, 100), "a clone's completion signalled the parent's eventfd");
		dev_buf_free(b);
	}
	int efd2 = eventfd(0, EFD_CLOEXEC);
	CHECK(efd2 >= 0);
	SOFT(dev_notify_fd(c, efd2) == 0, "dev_notify_fd on a clone");
	notify_one_write(c, efd2, 3 * MiB, 4, "clone notify write");
	SOFT(!efd_readable(efd, 0), "the clone's eventfd registration reached the parent");
	dev_close(c);

	/* -1 stops it; a new fd replaces the old one. */
	SOFT(dev_notify_fd(d, -1) == 0, "dev_notify_fd(-1)");
	{
		uint8_t *b = xbuf(BLK);
		fill(b, BLK, 5);
		SOFT(dev_write_sync(d, MiB + BLK, b, BLK) == 0, "write after -1");
		SOFT(!efd_readable(efd, 100), "eventfd signalled after dev_notify_fd(-1)");
		dev_buf_free(b);
	}
	SOFT(dev_notify_fd(d, efd) == 0, "register again");
	SOFT(dev_notify_fd(d, efd2) == 0, "replace with another eventfd");
	notify_one_write(d, efd2, 0, 6, "notify write on the replacement");
	SOFT(!efd_readable(efd, 0), "the replaced eventfd still signalled");
	SOFT(dev_notify_fd(d, -1) == 0 && dev_notify_fd(d, -1) == 0, "dev_notify_fd(-1) twice");
	dev_close(d);
	close(efd);
	close(efd2);
	SOFT(unlink(path) == 0, "unlink %s", path);
	test_end("uring_notify");
}

int main(void)
{
	uint64_t seed = test_seed(20240611);
	alarm(300); /* a hung poll fails the test instead of the whole run */
	double t0 = test_now_s();
	test_mem_basic();
	test_mem_errors();
	test_mem_submit_refused(seed);
	test_mem_fault_each(seed);
	test_mem_fault_mixed(seed);
	test_mem_power_cut(seed);
	test_mem_zone_reset();
	test_mem_clone();
	test_mem_sched_reorder(seed);
	test_mem_sched_partial(seed);
	test_mem_sched_hold(seed);
	test_mem_submit_eagain(seed);
	test_mem_sched_power_cut(seed);
	test_mem_sched_replay(seed);
	const char *skip = NULL;
	test_durable_create(&skip);
	test_uring(seed, &skip);
	if (!skip)
		test_uring_notify();
	unsigned f = test_soft_failures();
	fprintf(stderr, "%s: %u failed checks (%.2fs)\n", f ? "FAILED" : "passed", f, test_now_s() - t0);
	if (f)
		return 1;
	if (skip) {
		printf("skipped dev_uring: %s\n", skip);
		return 77;
	}
	return 0;
}
