#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "index/index.h"
#include "io/dev_mem.h"
#include "storage/store_int.h"
#include "testing.h"

struct h_wait {
	struct store_op op;
	struct h_value *out;
	uint64_t seq; /* out.seq at completion */
	int done;
};

static void h_done(struct store_op *op)
{
	struct h_wait *w = (struct h_wait *)op;
	w->done = 1;
	w->seq = op->out.seq;
	if (op->kind == STORE_GET && op->result == 0 && w->out) {
		CHECK(op->out.val_len <= sizeof(w->out->bytes));
		memcpy(w->out->bytes, op->out.value, op->out.val_len);
		w->out->len = op->out.val_len;
		w->out->seq = op->out.seq;
		w->out->expire_ms = op->out.expire_ms;
		w->out->meta_len = op->out.meta_len < sizeof(w->out->meta) ? op->out.meta_len : 0;
		memcpy(w->out->meta, op->out.meta, w->out->meta_len);
	}
}

static int h_run(struct store *s, struct h_wait *w)
{
	w->op.done = h_done;
	int err = store_submit(s, &w->op);
	if (err)
		return err;
	for (unsigned i = 0; !w->done; i++) {
		CHECK(store_poll(s, true) >= 0);
		CHECK(i < 2000000);
	}
	return w->op.result;
}

int h_put_ex(struct store *s, const char *key, const void *val, uint32_t len, uint64_t expire_ms,
	     enum store_cond cond)
{
	struct h_wait w = {.op = {.kind = STORE_PUT, .key = key, .key_len = (uint32_t)strlen(key),
				  .value = val, .val_len = len, .expire_ms = expire_ms, .cond = cond}};
	return h_run(s, &w);
}

int h_put(struct store *s, const char *key, const void *val, uint32_t len)
{
	return h_put_ex(s, key, val, len, 0, STORE_ALWAYS);
}

int h_write_cond(struct store *s, enum store_op_kind kind, const char *key, const void *val, uint32_t len,
		 enum store_cond cond, uint64_t cond_seq, uint64_t *seq)
{
	struct h_wait w = {.op = {.kind = kind, .key = key, .key_len = (uint32_t)strlen(key), .value = val,
				  .val_len = len, .cond = cond, .cond_seq = cond_seq}};
	int rc = h_run(s, &w);
	if (seq)
		*seq = w.seq;
	return rc;
}

int h_del(struct store *s, const char *key)
{
	struct h_wait w = {.op = {.kind = STORE_DEL, .key = key, .key_len = (uint32_t)strlen(key)}};
	return h_run(s, &w);
}

int h_flush(struct store *s, uint64_t *seq)
{
	struct h_wait w = {.op = {.kind = STORE_FLUSH}};
	int rc = h_run(s, &w);
	if (seq)
		*seq = w.seq;
	return rc;
}

int h_get(struct store *s, const char *key, struct h_value *out)
{
	struct h_wait w = {.op = {.kind = STORE_GET, .key = key, .key_len = (uint32_t)strlen(key)}, .out = out};
	return h_run(s, &w);
}

void h_expect(struct store *s, const char *key, const char *val)
{
	static struct h_value *v;
	if (!v)
		v = malloc(sizeof(*v)); /* 1 MiB: not on the stack; kept for the program's life */
	CHECK(v != NULL);
	int rc = h_get(s, key, v);
	if (!val) {
		CHECK_EQ(rc, -DV_ENOTFOUND);
		return;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(v->len, strlen(val));
	CHECK(memcmp(v->bytes, val, v->len) == 0);
}

void h_open_mem(struct store **s, struct dev **dev, uint64_t size, uint64_t zone_bytes)
{
	h_open_mem_cfg(s, dev, size, zone_bytes, (struct store_config){0});
}

void h_open_mem_cfg(struct store **s, struct dev **dev, uint64_t size, uint64_t zone_bytes,
		    struct store_config cfg)
{
	CHECK(dev_open_mem(dev, size, NULL) == 0);
	cfg.format_if_empty = true;
	cfg.zone_bytes = zone_bytes;
	CHECK(store_open(s, *dev, &cfg) == 0);
}

void h_fill_value(uint8_t *v, uint32_t len, uint64_t key_no, uint64_t version)
{
	uint64_t x = key_no * 0x9e3779b97f4a7c15ull ^ version * 0xc2b2ae3d27d4eb4full;
	for (uint32_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = (uint8_t)(x >> (56 - (i % 8) * 8));
	}
}

struct store_check_report h_check(struct dev *dev, const char *what)
{
	struct store_check_report rep;
	char *text = NULL;
	size_t text_len = 0;
	FILE *log = open_memstream(&text, &text_len);
	CHECK(log != NULL);
	CHECK_EQ(store_check(dev, log, &rep), 0);
	fclose(log);
	if (rep.damage)
		fprintf(stderr, "%s: check found damage:\n%s", what, text);
	free(text);
	return rep;
}

struct collect {
	uint64_t *v;
	uint64_t n, cap;
};

static bool collect_payload(void *arg, uint64_t p)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		CHECK(c->v != NULL);
	}
	c->v[c->n++] = p;
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t h_index_payloads(struct store *s, uint64_t **out)
{
	struct collect c = {0};
	index_walk(s->index, 0, UINT64_MAX, collect_payload, &c);
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), cmp_u64);
	*out = c.v; /* NULL for an empty index */
	return c.n;
}

uint64_t h_check_tombstones(struct store *s, const char *what)
{
	uint64_t *p;
	uint64_t n = h_index_payloads(s, &p), tombs = 0;
	for (uint64_t i = 0; i < n; i++)
		tombs += pl_tomb(p[i]);
	free(p);
	struct store_stats st;
	store_get_stats(s, &st);
	n -= s->flush_indexed; /* the flush point record is the store's, not a key */
	if (st.keys != n || st.tombstones != tombs)
		fprintf(stderr, "%s: stats say %llu keys, %llu tombstones; the index holds %llu, %llu\n", what,
			(unsigned long long)st.keys, (unsigned long long)st.tombstones, (unsigned long long)n,
			(unsigned long long)tombs);
	CHECK_EQ(st.keys, n);
	CHECK_EQ(st.tombstones, tombs);
	return tombs;
}

struct store *h_reopen_mem(struct store *s, struct dev **dev, const struct store_config *cfg)
{
	store_close(s);
	uint64_t size = dev_info(*dev)->size_bytes;
	uint8_t *img = malloc(size);
	CHECK(img != NULL);
	memcpy(img, dev_mem_image(*dev), size);
	dev_close(*dev);
	CHECK(dev_open_mem_copy(dev, img, size, NULL) == 0);
	free(img);
	struct store *n = NULL;
	struct store_config c = *cfg;
	CHECK(store_open(&n, *dev, &c) == 0);
	return n;
}

void h_wipe(struct dev *dev)
{
	const struct dev_info *info = dev_info(dev);
	if (info->zoned) {
		uint64_t first = (uint64_t)info->conventional_zones * info->zone_bytes;
		CHECK_EQ(dev_zone_reset(dev, first, (uint64_t)info->zone_count * info->zone_bytes - first), 0);
		if (info->conventional_zones == 0)
			return; /* the superblock log was in those zones */
	}
	uint32_t n = (uint32_t)sb_fixed_area_bytes(); /* all of it: only an empty device is formatted */
	uint8_t *zero = dev_buf_alloc(n);
	CHECK(zero != NULL);
	CHECK_EQ(dev_write_sync(dev, 0, zero, n), 0);
	dev_buf_free(zero);
}
