#include "shim.h"

#include <errno.h>
#include <stdlib.h>

#include "base/assert.h"
#include "testing.h"

struct shim {
	struct dev base;
	struct dev *inner;
	struct dev_req *head, *tail; /* queued, in submission order */
	const void *hold_ctx;
	struct dev_req *released[64]; /* held requests let go by shim_release() */
	unsigned released_count;
	const void *flip_ctx;
	unsigned flip_left, flipped, failed;
	uint32_t flip_off;
	/* shim_flip_reads_at_after() / shim_fail_reads_at(): device offsets
	 * whose covering reads are damaged (n == 0: a free slot). */
	struct at {
		uint64_t dev_off;
		unsigned skip, n, done;
		bool eio;
	} at[8];
};

static const struct dev_ops shim_ops;

static struct shim *to_shim(const struct dev *dev)
{
	DV_ASSERT(dev->ops == &shim_ops);
	return (struct shim *)dev;
}

static int shim_submit(struct dev *dev, struct dev_req *req)
{
	struct shim *sh = to_shim(dev);
	req->next = NULL;
	if (sh->tail)
		sh->tail->next = req;
	else
		sh->head = req;
	sh->tail = req;
	return 0;
}

/* One request against the inner device, synchronously: the byte count or
 * an error, as a completion reports it. */
static int32_t forward(struct shim *sh, struct dev_req *req)
{
	int err = req->op == DEV_READ ? dev_read_sync(sh->inner, req->off, req->buf, req->len)
				      : dev_write_sync(sh->inner, req->off, req->buf, req->len);
	return err ? err : (int32_t)req->len;
}

static bool is_held(const struct shim *sh, const struct dev_req *req)
{
	if (!sh->hold_ctx || req->ctx != sh->hold_ctx)
		return false;
	for (unsigned i = 0; i < sh->released_count; i++)
		if (sh->released[i] == req)
			return false;
	return true;
}

static void unrelease(struct shim *sh, const struct dev_req *req)
{
	for (unsigned i = 0; i < sh->released_count; i++)
		if (sh->released[i] == req)
			sh->released[i] = sh->released[--sh->released_count];
}

static int shim_poll(struct dev *dev, unsigned min_complete)
{
	struct shim *sh = to_shim(dev);
	int done = 0;
	/* Requests submitted by done() callbacks join the queue and are seen
	 * by this pass too; held ones are skipped. */
	struct dev_req **pp = &sh->head, *prev = NULL;
	for (unsigned guard = 0; *pp; guard++) {
		CHECK(guard < 1000000);
		struct dev_req *req = *pp;
		if (is_held(sh, req)) {
			prev = req;
			pp = &req->next;
			continue;
		}
		*pp = req->next;
		if (sh->tail == req)
			sh->tail = prev;
		unrelease(sh, req); /* the request struct may come back as a new request */
		req->res = forward(sh, req);
		if (req->op == DEV_READ && req->res >= 0 && sh->flip_left && req->ctx == sh->flip_ctx) {
			sh->flip_left--;
			sh->flipped++;
			((uint8_t *)req->buf)[sh->flip_off % req->len] ^= 0x10;
		}
		for (unsigned i = 0; i < DV_ARRAY_LEN(sh->at) && req->op == DEV_READ && req->res >= 0; i++) {
			struct at *a = &sh->at[i];
			if (a->n == 0 || a->dev_off < req->off || a->dev_off >= req->off + req->len)
				continue;
			if (a->skip > 0) {
				a->skip--;
				continue;
			}
			a->n--;
			if (a->eio) {
				sh->failed++;
				req->res = -EIO;
			} else {
				sh->flipped++; /* another bit each time, as noise in transit */
				((uint8_t *)req->buf)[a->dev_off - req->off] ^= (uint8_t)(0x10 << (a->done++ % 4));
			}
		}
		DV_ASSERT(dev->in_flight > 0);
		dev->in_flight--;
		req->done(req);
		done++;
	}
	(void)min_complete; /* held requests may leave fewer: the caller polls again */
	return done;
}

static int shim_zone_reset(struct dev *dev, uint64_t off, uint64_t len)
{
	return dev_zone_reset(to_shim(dev)->inner, off, len);
}

static int shim_zone_finish(struct dev *dev, uint64_t off, uint64_t len)
{
	return dev_zone_finish(to_shim(dev)->inner, off, len);
}

static int shim_zone_report(struct dev *dev, uint64_t off, struct dev_zone *out)
{
	return dev_zone_report(to_shim(dev)->inner, off, out);
}

static int shim_clone(struct dev *dev, struct dev **out) { return -EOPNOTSUPP; }

static void shim_close(struct dev *dev) { free(to_shim(dev)); }

static const struct dev_ops shim_ops = {
	.submit = shim_submit,
	.poll = shim_poll,
	.zone_reset = shim_zone_reset,
	.zone_finish = shim_zone_finish,
	.zone_report = shim_zone_report,
	.clone = shim_clone,
	.close = shim_close,
};

struct dev *shim_open(struct dev *inner)
{
	struct shim *sh = calloc(1, sizeof(*sh));
	CHECK(sh != NULL);
	sh->base.ops = &shim_ops;
	sh->base.info = *dev_info(inner);
	sh->inner = inner;
	return &sh->base;
}

void shim_hold(struct dev *shim, const void *ctx) { to_shim(shim)->hold_ctx = ctx; }

void shim_release(struct dev *shim)
{
	struct shim *sh = to_shim(shim);
	for (struct dev_req *r = sh->head; r; r = r->next)
		if (is_held(sh, r)) {
			CHECK(sh->released_count < DV_ARRAY_LEN(sh->released));
			sh->released[sh->released_count++] = r;
		}
}

unsigned shim_held(const struct dev *shim)
{
	const struct shim *sh = to_shim(shim);
	unsigned n = 0;
	for (const struct dev_req *r = sh->head; r; r = r->next)
		n += is_held(sh, r);
	return n;
}

void shim_flip_reads(struct dev *shim, const void *ctx, unsigned n, uint32_t off)
{
	struct shim *sh = to_shim(shim);
	sh->flip_ctx = ctx;
	sh->flip_left = n;
	sh->flip_off = off;
}

static void set_at(struct dev *shim, uint64_t dev_off, unsigned skip, unsigned n, bool eio)
{
	struct shim *sh = to_shim(shim);
	struct at *slot = NULL;
	for (unsigned i = 0; i < DV_ARRAY_LEN(sh->at); i++) {
		struct at *a = &sh->at[i];
		if (a->n > 0 && a->dev_off == dev_off && a->eio == eio)
			slot = a; /* replaces what was set for this offset */
		else if (a->n == 0 && !slot)
			slot = a;
	}
	CHECK(slot != NULL);
	*slot = (struct at){.dev_off = dev_off, .skip = skip, .n = n, .eio = eio};
}

void shim_flip_reads_at(struct dev *shim, uint64_t dev_off, unsigned n) { set_at(shim, dev_off, 0, n, false); }

void shim_flip_reads_at_after(struct dev *shim, uint64_t dev_off, unsigned skip, unsigned n)
{
	set_at(shim, dev_off, skip, n, false);
}

void shim_fail_reads_at(struct dev *shim, uint64_t dev_off, unsigned n) { set_at(shim, dev_off, 0, n, true); }

unsigned shim_flipped(const struct dev *shim) { return to_shim(shim)->flipped; }

unsigned shim_failed(const struct dev *shim) { return to_shim(shim)->failed; }
