/* dev_mem.c - in-memory device with fault injection (see dev_mem.h).
 * Requests complete in dev_poll(), in submission order. The medium is shared
 * by clones and guarded by a mutex: this backend is for tests, not speed. */
#include "io/dev_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"

#define SECTOR_BYTES 512u

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
};

struct dev_mem {
	struct dev base;
	struct medium *m;
	struct dev_req *head, *tail;
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

/* A fault with probability ppm, once faults_after_writes writes came before
 * this request. */
static bool roll(struct medium *m, uint32_t ppm, uint64_t writes_before)
{
	if (ppm == 0 || writes_before < m->plan.faults_after_writes)
		return false;
	return prng_next(&m->prng) % 1000000u < ppm;
}

static int mem_submit(struct dev *dev, struct dev_req *req)
{
	struct dev_mem *d = to_mem(dev);
	pthread_mutex_lock(&d->m->lock);
	uint64_t refused = 0;
	if (roll(d->m, d->m->plan.submit_eagain_ppm, d->m->stats.writes))
		refused = ++d->m->stats.submit_eagain;
	pthread_mutex_unlock(&d->m->lock);
	if (refused)
		return refused % 2 ? -EAGAIN : -EBUSY; /* both mean a full ring */
	req->next = NULL;
	if (d->tail)
		d->tail->next = req;
	else
		d->head = req;
	d->tail = req;
	return 0;
}

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
		return -EIO;
	}
	if (roll(m, m->plan.write_eio_ppm, before)) {
		m->stats.write_eio++;
		return -EIO;
	}
	m->writes_ok++; /* from here on the device reports success */
	if (roll(m, m->plan.write_lost_ppm, before)) {
		m->stats.write_lost++;
		return (int32_t)req->len;
	}
	memcpy(m->bytes + req->off, req->buf, req->len);
	if (roll(m, m->plan.write_flip_ppm, before)) {
		m->stats.write_flip++;
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
		return -EIO;
	}
	memcpy(req->buf, m->bytes + req->off, req->len);
	if (roll(m, m->plan.read_flip_ppm, m->stats.writes)) {
		m->stats.read_flip++;
		flip_random_bit(m, req->buf, req->len);
	}
	return (int32_t)req->len;
}

static int mem_poll(struct dev *dev, unsigned min_complete)
{
	struct dev_mem *d = to_mem(dev);
	int done = 0;
	/* Complete everything queued: bounded by the queue length. */
	while (d->head) {
		struct dev_req *req = d->head;
		d->head = req->next;
		if (!d->head)
			d->tail = NULL;
		pthread_mutex_lock(&d->m->lock);
		req->res = req->op == DEV_WRITE ? do_write(d->m, req) : do_read(d->m, req);
		pthread_mutex_unlock(&d->m->lock);
		DV_ASSERT(dev->in_flight > 0);
		dev->in_flight--;
		req->done(req);
		done++;
	}
	DV_ASSERT((unsigned)done >= min_complete || dev->in_flight == 0);
	return done;
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
	if (!err)
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
	unsigned refs = --d->m->refs;
	pthread_mutex_unlock(&d->m->lock);
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

void dev_mem_power_cut_now(struct dev *dev)
{
	struct medium *m = to_mem(dev)->m;
	pthread_mutex_lock(&m->lock);
	m->stats.power_cut = true;
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
