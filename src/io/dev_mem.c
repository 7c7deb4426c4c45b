/* dev_mem.c - in-memory device with fault injection (see dev_mem.h).
 * The medium is shared by clones and guarded by a mutex: this backend is
 * for tests, not speed. Each handle keeps its requests in flight in an
 * array in submission order; the default scheduler completes them front to
 * back, the adversarial one (sched_adversarial()) picks, orders and holds. */
#include "io/dev_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"

#define SECTOR_BYTES 512u
#define HOLD_POLLS_DEFAULT 8u

struct dev_mem;

struct medium {
	pthread_mutex_t lock;
	uint8_t *bytes;
	uint64_t size;
	unsigned refs;
	struct dev_fault_plan plan;
	struct dev_fault_stats stats;
	uint64_t prng;
	uint64_t writes_ok; /* successful writes: the power cut counts these */
	/* Zoned mode (ZNS semantics): sequential zones after conv_zones
	 * conventional ones accept writes only at their write pointer, up to
	 * zone_cap, with at most max_open open and max_active active zones. */
	uint64_t zone_bytes, zone_cap;
	uint32_t conv_zones, zone_count, max_open, max_active;
	uint64_t *wp;  /* per zone, offset in the zone */
	uint8_t *cond; /* per zone, enum dev_zone_cond */
	struct dev_mem *handles; /* every open handle: a power cut reaches all queues */
};

/* A request in flight on a handle. */
struct pend {
	struct dev_req *req;
	uint64_t sub_no; /* submission order on this handle */
	uint32_t hold;   /* polls left before it may complete */
	bool io_done;    /* transfer done (req->res set), not yet delivered */
};

struct dev_mem {
	struct dev base;
	struct medium *m;
	struct dev_mem *next_handle;
	struct pend *pend; /* [start, count) in submission order */
	uint32_t start, count, cap;
	uint64_t sub_no;
	struct dev_req **deliver; /* adversarial poll: this poll's completions */
	uint32_t deliver_cap;
	bool polling;
};

static const struct dev_ops mem_ops;

static struct dev_mem *to_mem(const struct dev *dev)
{
	DV_ASSERT(dev->ops == &mem_ops);
	return (struct dev_mem *)dev;
}

static uint64_t prng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static uint64_t prng_below(struct medium *m, uint64_t n) { return prng_next(&m->prng) % n; }

/* A fault with probability ppm, once faults_after_writes writes came before
 * this request. */
static bool roll(struct medium *m, uint32_t ppm, uint64_t writes_before)
{
	if (ppm == 0 || writes_before < m->plan.faults_after_writes)
		return false;
	return prng_next(&m->prng) % 1000000u < ppm;
}

/* A scheduling draw: not a fault, so not delayed by faults_after_writes. */
static bool chance(struct medium *m, uint32_t ppm) { return ppm && prng_next(&m->prng) % 1000000u < ppm; }

static void fault_seen(struct medium *m, const struct dev_req *req, enum dev_fault kind)
{
	if (m->plan.fault_fn)
		m->plan.fault_fn(m->plan.fault_arg, req, kind);
}

static bool sched_adversarial(const struct dev_fault_plan *p)
{
	return p->reorder || p->partial_ppm || p->hold_read_ppm || p->hold_write_ppm || p->hold_fn ||
	       p->early_io_ppm;
}

/* ---- the queue of a handle ---- */

static int pend_push(struct dev_mem *d, struct dev_req *req, uint32_t hold)
{
	if (d->count == d->cap && d->start > 0) {
		memmove(d->pend, d->pend + d->start, (size_t)(d->count - d->start) * sizeof(*d->pend));
		d->count -= d->start;
		d->start = 0;
	}
	if (d->count == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 64;
		struct pend *n = realloc(d->pend, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		d->pend = n;
		d->cap = cap;
	}
	d->pend[d->count++] = (struct pend){.req = req, .sub_no = d->sub_no++, .hold = hold};
	return 0;
}

static uint32_t pend_len(const struct dev_mem *d) { return d->count - d->start; }

static uint32_t submit_hold(struct medium *m, const struct dev_req *req)
{
	const struct dev_fault_plan *p = &m->plan;
	uint32_t max = p->hold_polls_max ? p->hold_polls_max : HOLD_POLLS_DEFAULT;
	uint32_t hold = 0;
	if (chance(m, req->op == DEV_READ ? p->hold_read_ppm : p->hold_write_ppm))
		hold = 1 + (uint32_t)prng_below(m, max);
	return hold;
}

static int mem_submit(struct dev *dev, struct dev_req *req)
{
	struct dev_mem *d = to_mem(dev);
	struct medium *m = d->m;
	/* Outside the lock: the caller's function may look at anything. */
	uint32_t extra = m->plan.hold_fn ? m->plan.hold_fn(m->plan.hold_arg, req) : 0;
	pthread_mutex_lock(&m->lock);
	int err = 0;
	/* A ring can be full only while requests are in flight. */
	if (dev->in_flight > 0 && roll(m, m->plan.submit_eagain_ppm, m->stats.writes)) {
		m->stats.submit_eagain++;
		err = prng_next(&m->prng) & 1 ? -EAGAIN : -EBUSY;
		fault_seen(m, req, DEV_FAULT_SUBMIT_EAGAIN);
	}
	uint32_t hold = 0;
	if (!err && sched_adversarial(&m->plan)) {
		hold = submit_hold(m, req) + extra;
		m->stats.held += hold > 0;
	}
	req->next = NULL;
	if (!err)
		err = pend_push(d, req, hold); /* under the lock: a power cut walks every queue */
	pthread_mutex_unlock(&m->lock);
	return err;
}

/* ---- transfers ---- */

static void flip_random_bit(struct medium *m, uint8_t *buf, uint32_t len)
{
	uint64_t bit = prng_next(&m->prng) % ((uint64_t)len * 8);
	buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* Power cut in the middle of this write: each sector lands or not. */
static void tear_write(struct medium *m, const struct dev_req *req)
{
	for (uint32_t s = 0; s < req->len / SECTOR_BYTES; s++) {
		if (prng_next(&m->prng) & 1) {
			memcpy(m->bytes + req->off + s * SECTOR_BYTES,
			       (const uint8_t *)req->buf + s * SECTOR_BYTES, SECTOR_BYTES);
			m->stats.torn_sectors_kept++;
		} else {
			m->stats.torn_sectors_lost++;
		}
	}
}

static bool cond_open(uint8_t c) { return c == DEV_ZONE_IMP_OPEN || c == DEV_ZONE_EXP_OPEN; }
static bool cond_active(uint8_t c) { return cond_open(c) || c == DEV_ZONE_CLOSED; }

/* A write opens zone z (empty or closed now): allowed under the limits? */
static bool zone_may_open(const struct medium *m, uint64_t z)
{
	uint32_t open = 0, active = 0;
	for (uint32_t i = m->conv_zones; i < m->zone_count; i++) {
		open += cond_open(m->cond[i]);
		active += cond_active(m->cond[i]);
	}
	if (m->max_open && open >= m->max_open)
		return false;
	return !(m->max_active && m->cond[z] == DEV_ZONE_EMPTY && active >= m->max_active);
}

/* Zoned mode: a write must start at its zone's write pointer and end
 * within its capacity, in a zone that is neither full, read-only nor
 * offline, and may not open a zone past the open or active limit; the
 * pointer moves past it even if it is torn (as on a device). A zone
 * written to its capacity is full. */
static bool zoned_write_ok(struct medium *m, const struct dev_req *req)
{
	if (!m->zone_bytes)
		return true;
	uint64_t z = req->off / m->zone_bytes;
	if (z < m->conv_zones)
		return true;
	uint64_t in = req->off % m->zone_bytes;
	uint8_t c = m->cond[z];
	if (c == DEV_ZONE_FULL || c == DEV_ZONE_READONLY || c == DEV_ZONE_OFFLINE || in != m->wp[z] ||
	    in + req->len > m->zone_cap)
		return false;
	if (!cond_open(c) && !zone_may_open(m, z)) {
		m->stats.zone_limit_rejects++;
		return false;
	}
	m->wp[z] += req->len;
	m->cond[z] = m->wp[z] == m->zone_cap ? DEV_ZONE_FULL : DEV_ZONE_IMP_OPEN;
	return true;
}

/* Reads of an offline zone fail. */
static bool zoned_read_ok(const struct medium *m, const struct dev_req *req)
{
	if (!m->zone_bytes)
		return true;
	for (uint64_t z = req->off / m->zone_bytes; z <= (req->off + req->len - 1) / m->zone_bytes; z++)
		if (z >= m->conv_zones && z < m->zone_count && m->cond[z] == DEV_ZONE_OFFLINE)
			return false;
	return true;
}

static void power_cut_locked(struct medium *m);

static int32_t do_write(struct medium *m, const struct dev_req *req)
{
	if (m->stats.power_cut)
		return -EIO;
	if (!zoned_write_ok(m, req)) {
		m->stats.zoned_rejects++;
		return -EIO; /* unaligned write in a sequential zone */
	}
	uint64_t before = m->stats.writes++;
	if (m->plan.power_cut_after_writes && m->writes_ok >= m->plan.power_cut_after_writes) {
		tear_write(m, req);
		m->stats.power_cut = true;
		fault_seen(m, req, DEV_FAULT_CUT);
		if (sched_adversarial(&m->plan))
			power_cut_locked(m); /* the other writes in flight */
		return -EIO;
	}
	if (roll(m, m->plan.write_eio_ppm, before)) {
		m->stats.write_eio++;
		fault_seen(m, req, DEV_FAULT_WRITE_EIO);
		return -EIO;
	}
	m->writes_ok++; /* from here on the device reports success */
	if (roll(m, m->plan.write_lost_ppm, before)) {
		m->stats.write_lost++;
		fault_seen(m, req, DEV_FAULT_WRITE_LOST);
		return (int32_t)req->len;
	}
	memcpy(m->bytes + req->off, req->buf, req->len);
	if (roll(m, m->plan.write_flip_ppm, before)) {
		m->stats.write_flip++;
		fault_seen(m, req, DEV_FAULT_WRITE_FLIP);
		flip_random_bit(m, m->bytes + req->off, req->len);
	}
	return (int32_t)req->len;
}

static int32_t do_read(struct medium *m, const struct dev_req *req)
{
	if (m->stats.power_cut || !zoned_read_ok(m, req))
		return -EIO;
	m->stats.reads++;
	if (roll(m, m->plan.read_eio_ppm, m->stats.writes)) {
		m->stats.read_eio++;
		fault_seen(m, req, DEV_FAULT_READ_EIO);
		return -EIO;
	}
	memcpy(req->buf, m->bytes + req->off, req->len);
	if (roll(m, m->plan.read_flip_ppm, m->stats.writes)) {
		m->stats.read_flip++;
		fault_seen(m, req, DEV_FAULT_READ_FLIP);
		flip_random_bit(m, req->buf, req->len);
	}
	return (int32_t)req->len;
}

static int32_t do_io(struct medium *m, const struct dev_req *req)
{
	return req->op == DEV_WRITE ? do_write(m, req) : do_read(m, req);
}

/* A write of a pending request that is not on the medium at a power cut:
 * persisted, torn or lost. Zoned: only at the write pointer (else lost). */
static void cut_fate(struct medium *m, struct pend *p)
{
	struct dev_req *req = p->req;
	p->io_done = true;
	req->res = -EIO;
	fault_seen(m, req, DEV_FAULT_CUT);
	if (req->op != DEV_WRITE)
		return;
	uint64_t fate = prng_below(m, 3);
	if (fate == 2 || !zoned_write_ok(m, req)) {
		m->stats.cut_lost++;
		return;
	}
	if (fate == 0) {
		memcpy(m->bytes + req->off, req->buf, req->len);
		m->stats.cut_persisted++;
	} else {
		tear_write(m, req);
		m->stats.cut_torn++;
	}
}

/* Under the lock: the power goes. Every handle's requests in flight get
 * their fate (in submission order per handle) and complete with -EIO. */
static void power_cut_locked(struct medium *m)
{
	m->stats.power_cut = true;
	for (struct dev_mem *h = m->handles; h; h = h->next_handle)
		for (uint32_t i = h->start; i < h->count; i++) {
			struct pend *p = &h->pend[i];
			if (!p->io_done) {
				cut_fate(m, p);
			} else {
				m->stats.cut_written += p->req->op == DEV_WRITE && p->req->res >= 0;
				p->req->res = -EIO; /* the host never learns it finished */
			}
		}
}

/* ---- completion ---- */

/* The default scheduler: everything queued, in order, transfers done as
 * they complete; requests submitted by done() complete in this call too. */
static int poll_in_order(struct dev_mem *d, unsigned min_complete)
{
	struct dev *dev = &d->base;
	int done = 0;
	/* Bounded by the queue length (and what done() submits). */
	for (;;) {
		pthread_mutex_lock(&d->m->lock);
		if (d->start == d->count) {
			pthread_mutex_unlock(&d->m->lock);
			break;
		}
		struct pend p = d->pend[d->start++];
		if (d->start == d->count)
			d->start = d->count = 0;
		if (!p.io_done)
			p.req->res = do_io(d->m, p.req);
		pthread_mutex_unlock(&d->m->lock);
		DV_ASSERT(dev->in_flight > 0);
		dev->in_flight--;
		p.req->done(p.req);
		done++;
	}
	DV_ASSERT((unsigned)done >= min_complete || dev->in_flight == 0);
	return done;
}

/* Zoned mode: before write i reaches the medium, the earlier writes of this
 * handle to the same sequential zone do (the kernel keeps zone order). */
static void do_pending_io(struct dev_mem *d, uint32_t i)
{
	struct medium *m = d->m;
	struct pend *p = &d->pend[i];
	if (p->io_done)
		return;
	if (m->zone_bytes && p->req->op == DEV_WRITE && p->req->off / m->zone_bytes >= m->conv_zones) {
		uint64_t z = p->req->off / m->zone_bytes;
		for (uint32_t j = d->start; j < i; j++) {
			struct pend *q = &d->pend[j];
			if (!q->io_done && q->req->op == DEV_WRITE && q->req->off / m->zone_bytes == z) {
				q->req->res = -EIO; /* first: a power cut in do_io leaves it be */
				q->io_done = true;
				q->req->res = do_io(m, q->req);
				m->stats.early_io++;
			}
		}
	}
	p->req->res = -EIO;
	p->io_done = true;
	p->req->res = do_io(m, p->req);
}

static bool deliver_room(struct dev_mem *d, uint32_t n)
{
	if (n <= d->deliver_cap)
		return true;
	struct dev_req **r = realloc(d->deliver, (size_t)n * sizeof(*r));
	if (!r)
		return false;
	d->deliver = r;
	d->deliver_cap = n;
	return true;
}

/* Choose which of the first n queued requests this poll completes and in
 * which order: their indexes go to sel[0..k). */
static uint32_t adv_select(struct dev_mem *d, uint32_t n, unsigned min_complete, uint32_t *sel)
{
	struct medium *m = d->m;
	uint32_t ready = 0, held = 0;
	/* Ready ones first in sel, held ones after (each group in order). */
	for (uint32_t i = 0; i < n; i++)
		if (d->pend[d->start + i].hold == 0)
			sel[ready++] = d->start + i;
	for (uint32_t i = 0; i < n; i++)
		if (d->pend[d->start + i].hold > 0)
			sel[ready + held++] = d->start + i;
	if (m->plan.reorder) {
		for (uint32_t i = ready; i > 1; i--) { /* Fisher-Yates within each group */
			uint32_t j = (uint32_t)prng_below(m, i), t = sel[i - 1];
			sel[i - 1] = sel[j];
			sel[j] = t;
		}
		for (uint32_t i = held; i > 1; i--) {
			uint32_t j = (uint32_t)prng_below(m, i), t = sel[ready + i - 1];
			sel[ready + i - 1] = sel[ready + j];
			sel[ready + j] = t;
		}
	}
	uint32_t k = ready;
	if (ready > min_complete && chance(m, m->plan.partial_ppm)) {
		k = min_complete + (uint32_t)prng_below(m, ready - min_complete);
		m->stats.partial_polls++;
	}
	if (k < min_complete) { /* a real device would block until they finish */
		m->stats.held_forced += min_complete - k;
		k = min_complete;
	}
	return k;
}

/* Completions delivered while an earlier-submitted request stays queued or
 * is delivered after them. sel[0..k) in delivery order. */
static uint64_t count_reordered(const struct dev_mem *d, const uint32_t *sel, uint32_t k, uint32_t n)
{
	uint64_t min_left = UINT64_MAX, reordered = 0;
	for (uint32_t i = k; i < n; i++)
		if (d->pend[sel[i]].sub_no < min_left)
			min_left = d->pend[sel[i]].sub_no;
	for (uint32_t i = k; i-- > 0;) { /* min_left: smallest sub_no delivered after i or left */
		uint64_t no = d->pend[sel[i]].sub_no;
		reordered += no > min_left;
		if (no < min_left)
			min_left = no;
	}
	return reordered;
}

static int poll_adversarial(struct dev_mem *d, unsigned min_complete)
{
	struct dev *dev = &d->base;
	struct medium *m = d->m;
	uint32_t n = pend_len(d); /* what done() submits waits for the next poll */
	if (n == 0)
		return 0;
	if (!deliver_room(d, n))
		return -ENOMEM;
	uint32_t *sel = malloc((size_t)n * sizeof(*sel));
	if (!sel)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	uint32_t k = adv_select(d, n, min_complete, sel);
	m->stats.reordered += count_reordered(d, sel, k, n);
	for (uint32_t i = 0; i < k; i++)
		do_pending_io(d, sel[i]);
	for (uint32_t i = k; i < n; i++) {
		struct pend *p = &d->pend[sel[i]];
		if (!p->io_done && chance(m, m->plan.early_io_ppm)) {
			do_pending_io(d, sel[i]);
			m->stats.early_io++;
		}
		if (p->hold > 0)
			p->hold--;
	}
	/* Take the delivered ones out, keeping the others in order. */
	for (uint32_t i = 0; i < k; i++) {
		d->deliver[i] = d->pend[sel[i]].req;
		d->pend[sel[i]].req = NULL;
	}
	uint32_t w = d->start;
	for (uint32_t r = d->start; r < d->count; r++)
		if (d->pend[r].req)
			d->pend[w++] = d->pend[r];
	d->count = w;
	pthread_mutex_unlock(&m->lock);
	free(sel);
	DV_ASSERT(dev->in_flight >= k);
	dev->in_flight -= k;
	d->polling = true;
	for (uint32_t i = 0; i < k; i++)
		d->deliver[i]->done(d->deliver[i]);
	d->polling = false;
	return (int)k;
}

static int mem_poll(struct dev *dev, unsigned min_complete)
{
	struct dev_mem *d = to_mem(dev);
	DV_ASSERT(!d->polling); /* done() must not poll its own handle */
	pthread_mutex_lock(&d->m->lock);
	bool adv = sched_adversarial(&d->m->plan);
	pthread_mutex_unlock(&d->m->lock);
	return adv ? poll_adversarial(d, min_complete) : poll_in_order(d, min_complete);
}

/* Zone ops on the sequential zones of [off, off + len): an op on a
 * read-only or offline zone (or after a power cut) fails. */
static int zone_op_check(const struct medium *m, uint64_t off, uint64_t len)
{
	if (m->stats.power_cut)
		return -EIO;
	for (uint64_t z = off; m->zone_bytes && z < off + len; z += m->zone_bytes) {
		uint8_t c = m->cond[z / m->zone_bytes];
		if (z / m->zone_bytes < m->conv_zones || c == DEV_ZONE_READONLY || c == DEV_ZONE_OFFLINE)
			return -EIO;
	}
	return 0;
}

static int mem_zone_reset(struct dev *dev, uint64_t off, uint64_t len)
{
	struct dev_mem *d = to_mem(dev);
	pthread_mutex_lock(&d->m->lock);
	int err = zone_op_check(d->m, off, len);
	if (!err && !d->m->plan.reset_keeps_bytes)
		memset(d->m->bytes + off, 0, len);
	for (uint64_t z = off; !err && d->m->zone_bytes && z < off + len; z += d->m->zone_bytes) {
		d->m->wp[z / d->m->zone_bytes] = 0;
		d->m->cond[z / d->m->zone_bytes] = DEV_ZONE_EMPTY;
	}
	pthread_mutex_unlock(&d->m->lock);
	return err;
}

static int mem_zone_finish(struct dev *dev, uint64_t off, uint64_t len)
{
	struct dev_mem *d = to_mem(dev);
	pthread_mutex_lock(&d->m->lock);
	int err = d->m->zone_bytes ? zone_op_check(d->m, off, len) : 0;
	for (uint64_t z = off; !err && d->m->zone_bytes && z < off + len; z += d->m->zone_bytes) {
		d->m->wp[z / d->m->zone_bytes] = d->m->zone_cap;
		d->m->cond[z / d->m->zone_bytes] = DEV_ZONE_FULL;
	}
	pthread_mutex_unlock(&d->m->lock);
	return err;
}

static int mem_zone_report(struct dev *dev, uint64_t off, struct dev_zone *out)
{
	struct dev_mem *d = to_mem(dev);
	if (!d->m->zone_bytes || off % d->m->zone_bytes)
		return -EINVAL;
	pthread_mutex_lock(&d->m->lock);
	uint64_t z = off / d->m->zone_bytes;
	bool conv = z < d->m->conv_zones;
	*out = (struct dev_zone){.cond = conv ? DEV_ZONE_NOT_WP : (enum dev_zone_cond)d->m->cond[z],
				 .wp = conv ? 0 : d->m->wp[z], .cap = conv ? d->m->zone_bytes : d->m->zone_cap};
	pthread_mutex_unlock(&d->m->lock);
	return 0;
}

static void mem_zoned_info(struct dev_info *info, const struct medium *m)
{
	info->zoned = true;
	info->zone_model = DEV_ZONES_HOST_MANAGED;
	info->zone_bytes = m->zone_bytes;
	info->zone_cap_bytes = m->zone_cap;
	info->zone_count = m->zone_count;
	info->conventional_zones = m->conv_zones;
	info->max_open_zones = m->max_open;
	info->max_active_zones = m->max_active;
}

static int mem_wrap(struct dev **out, struct medium *m)
{
	struct dev_mem *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->base.ops = &mem_ops;
	d->base.info.size_bytes = m->size;
	d->base.info.logical_block_bytes = SECTOR_BYTES;
	if (m->zone_bytes)
		mem_zoned_info(&d->base.info, m);
	d->m = m;
	pthread_mutex_lock(&m->lock);
	m->refs++;
	d->next_handle = m->handles;
	m->handles = d;
	pthread_mutex_unlock(&m->lock);
	*out = &d->base;
	return 0;
}

static int mem_clone(struct dev *dev, struct dev **out) { return mem_wrap(out, to_mem(dev)->m); }

/* Completions happen inside dev_poll(): there is nothing to wait for. */
static int mem_notify_fd(struct dev *dev, int eventfd_fd) { return -EOPNOTSUPP; }

static void mem_close(struct dev *dev)
{
	struct dev_mem *d = to_mem(dev);
	pthread_mutex_lock(&d->m->lock);
	DV_ASSERT(pend_len(d) == 0);
	unsigned refs = --d->m->refs;
	struct dev_mem **pp = &d->m->handles;
	while (*pp != d)
		pp = &(*pp)->next_handle;
	*pp = d->next_handle;
	pthread_mutex_unlock(&d->m->lock);
	free(d->pend);
	free(d->deliver);
	if (refs == 0) {
		pthread_mutex_destroy(&d->m->lock);
		free(d->m->bytes);
		free(d->m->wp);
		free(d->m->cond);
		free(d->m);
	}
	free(d);
}

static const struct dev_ops mem_ops = {
	.submit = mem_submit,
	.poll = mem_poll,
	.zone_reset = mem_zone_reset,
	.zone_finish = mem_zone_finish,
	.zone_report = mem_zone_report,
	.clone = mem_clone,
	.close = mem_close,
	.notify_fd = mem_notify_fd,
};

int dev_open_mem_copy(struct dev **out, const uint8_t *image, uint64_t size,
		      const struct dev_fault_plan *plan)
{
	if (size == 0 || size % DV_BLOCK_BYTES)
		return -EINVAL;
	struct medium *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->bytes = image ? malloc(size) : calloc(1, size);
	if (!m->bytes) {
		free(m);
		return -ENOMEM;
	}
	if (image)
		memcpy(m->bytes, image, size);
	m->size = size;
	if (plan)
		m->plan = *plan;
	m->prng = m->plan.seed;
	pthread_mutex_init(&m->lock, NULL);
	int err = mem_wrap(out, m);
	if (err) {
		pthread_mutex_destroy(&m->lock);
		free(m->bytes);
		free(m);
	} else {
		(*out)->info.zero_filled = image == NULL;
	}
	return err;
}

int dev_open_mem(struct dev **out, uint64_t size, const struct dev_fault_plan *plan)
{
	return dev_open_mem_copy(out, NULL, size, plan);
}

const uint8_t *dev_mem_image(const struct dev *dev) { return to_mem(dev)->m->bytes; }

struct dev_fault_stats dev_mem_stats(const struct dev *dev)
{
	struct medium *m = to_mem(dev)->m;
	pthread_mutex_lock(&m->lock);
	struct dev_fault_stats s = m->stats;
	pthread_mutex_unlock(&m->lock);
	return s;
}

void dev_mem_set_plan(struct dev *dev, const struct dev_fault_plan *plan)
{
	struct medium *m = to_mem(dev)->m;
	pthread_mutex_lock(&m->lock);
	m->plan = *plan;
	m->prng = plan->seed;
	pthread_mutex_unlock(&m->lock);
}

void dev_mem_flip_bit(struct dev *dev, uint64_t off, unsigned bit)
{
	struct medium *m = to_mem(dev)->m;
	DV_ASSERT(off < m->size && bit < 8);
	pthread_mutex_lock(&m->lock);
	m->bytes[off] ^= (uint8_t)(1u << bit);
	pthread_mutex_unlock(&m->lock);
}

int dev_open_mem_zoned(struct dev **out, uint64_t size, uint64_t zone_bytes, uint32_t conventional_zones,
		       const struct dev_fault_plan *plan)
{
	struct dev_mem_zoned z = {.zone_bytes = zone_bytes, .conventional_zones = conventional_zones};
	return dev_open_mem_zoned_opts(out, size, &z, plan);
}

int dev_open_mem_zoned_opts(struct dev **out, uint64_t size, const struct dev_mem_zoned *zo,
			    const struct dev_fault_plan *plan)
{
	uint64_t zb = zo->zone_bytes, cap = zo->zone_cap ? zo->zone_cap : zo->zone_bytes;
	if (zb == 0 || zb % DV_BLOCK_BYTES || size % zb || cap % DV_BLOCK_BYTES || cap > zb ||
	    zo->conventional_zones >= size / zb)
		return -EINVAL;
	int err = dev_open_mem(out, size, plan);
	if (err)
		return err;
	struct medium *m = to_mem(*out)->m;
	m->zone_count = (uint32_t)(size / zb);
	m->wp = calloc(m->zone_count, sizeof(uint64_t));
	m->cond = malloc(m->zone_count);
	if (!m->wp || !m->cond) {
		dev_close(*out);
		return -ENOMEM;
	}
	for (uint32_t z = 0; z < m->zone_count; z++)
		m->cond[z] = z < zo->conventional_zones ? DEV_ZONE_NOT_WP : DEV_ZONE_EMPTY;
	m->zone_bytes = zb;
	m->zone_cap = cap;
	m->conv_zones = zo->conventional_zones;
	m->max_open = zo->max_open;
	m->max_active = zo->max_active;
	mem_zoned_info(&to_mem(*out)->base.info, m);
	return 0;
}

void dev_mem_zone_set(struct dev *dev, uint64_t zone_off, enum dev_zone_cond cond, uint64_t wp)
{
	struct medium *m = to_mem(dev)->m;
	DV_ASSERT(m->zone_bytes && zone_off % m->zone_bytes == 0 && zone_off / m->zone_bytes < m->zone_count);
	DV_ASSERT(zone_off / m->zone_bytes >= m->conv_zones && wp <= m->zone_cap);
	pthread_mutex_lock(&m->lock);
	m->cond[zone_off / m->zone_bytes] = (uint8_t)cond;
	m->wp[zone_off / m->zone_bytes] = wp;
	pthread_mutex_unlock(&m->lock);
}

int dev_mem_snapshot(const struct dev *dev, struct dev **out)
{
	struct medium *m = to_mem(dev)->m;
	pthread_mutex_lock(&m->lock);
	int err = 0;
	if (!m->zone_bytes) {
		err = dev_open_mem_copy(out, m->bytes, m->size, &m->plan);
	} else {
		struct dev_mem_zoned zo = {.zone_bytes = m->zone_bytes, .zone_cap = m->zone_cap,
					   .conventional_zones = m->conv_zones, .max_open = m->max_open,
					   .max_active = m->max_active};
		err = dev_open_mem_zoned_opts(out, m->size, &zo, &m->plan);
		if (!err) {
			struct medium *c = to_mem(*out)->m;
			memcpy(c->bytes, m->bytes, m->size);
			memcpy(c->wp, m->wp, m->zone_count * sizeof(*m->wp));
			memcpy(c->cond, m->cond, m->zone_count);
		}
	}
	if (!err) {
		struct medium *c = to_mem(*out)->m;
		c->stats = m->stats;
		c->prng = m->prng;
		c->writes_ok = m->writes_ok;
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

void dev_mem_power_cut(struct dev *dev)
{
	struct medium *m = to_mem(dev)->m;
	pthread_mutex_lock(&m->lock);
	if (!m->stats.power_cut)
		power_cut_locked(m);
	pthread_mutex_unlock(&m->lock);
}

void dev_mem_power_on(struct dev *dev)
{
	struct dev_mem *d = to_mem(dev);
	pthread_mutex_lock(&d->m->lock);
	d->m->stats.power_cut = false;
	d->m->plan = (struct dev_fault_plan){0};
	/* A device coming back closes the zones that were open (ZNS). */
	for (uint32_t z = 0; d->m->cond && z < d->m->zone_count; z++)
		if (cond_open(d->m->cond[z]))
			d->m->cond[z] = DEV_ZONE_CLOSED;
	pthread_mutex_unlock(&d->m->lock);
}
