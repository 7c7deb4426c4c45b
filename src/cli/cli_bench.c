/* cli_bench.c - dynvme bench engine: fill, random read, restart and write
 * amplification of the storage engine on one file or device. Prints a human
 * line per phase and "RESULT key=value" lines for bench/engine.sh. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"
#include "cli/cli.h"
#include "io/dev.h"
#include "storage/store.h"

struct bench_opts {
	const char *path;
	unsigned long long size, zone_bytes;
	uint64_t keys, reads, overwrite_bytes;
	uint32_t value_bytes, qd;
	bool keep, wa, reuse;
};

struct slot {
	struct store_op op;
	struct bench *b;
	char key[32];
	uint64_t t0_ns;
	uint64_t key_no;
	bool busy;
};

struct bench {
	struct store *s;
	struct bench_opts o;
	uint8_t *value;
	struct slot *slots;
	uint32_t *lat_us;
	uint64_t lat_n, done, errors, mismatches, prng;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint32_t key_for(char *dst, uint64_t n) { return (uint32_t)sprintf(dst, "k%016" PRIx64, mix(n + 1)); }

/* Value bytes depend on the key number so reads can be verified. */
static void fill_value(uint8_t *v, uint32_t len, uint64_t n)
{
	/* Eight bytes a step: the benchmark must not cost more than the store. */
	uint64_t x = mix(n ^ 0x5eed);
	uint32_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = x ^ (i * 0x0101010101010101ull);
		memcpy(v + i, &w, 8);
	}
	for (; i < len; i++)
		v[i] = (uint8_t)(x >> ((i % 8) * 8)) ^ (uint8_t)i;
}

static void op_done(struct store_op *op)
{
	struct slot *sl = (struct slot *)op;
	struct bench *b = sl->b;
	uint64_t us = (now_ns() - sl->t0_ns) / 1000;
	b->lat_us[b->lat_n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	b->done++;
	sl->busy = false;
	if (op->result) {
		b->errors++;
		return;
	}
	if (op->kind == STORE_GET) {
		uint8_t expect[4096];
		uint32_t n = op->out.val_len < sizeof(expect) ? op->out.val_len : sizeof(expect);
		fill_value(expect, n, sl->key_no);
		if (op->out.val_len != b->o.value_bytes || memcmp(expect, op->out.value, n))
			b->mismatches++;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, uint64_t n, double p)
{
	return n ? v[(uint64_t)(p * (double)(n - 1))] : 0;
}

/* Run count ops of kind with qd in flight; key numbers from next_key(). */
static int run_phase(struct bench *b, const char *name, enum store_op_kind kind, uint64_t count, bool random_keys)
{
	b->lat_n = b->done = b->errors = b->mismatches = 0;
	uint64_t issued = 0, t0 = now_ns();
	struct store_stats st0, st1;
	store_get_stats(b->s, &st0);
	for (uint64_t guard = 0; b->done < count; guard++) {
		for (uint32_t i = 0; i < b->o.qd && issued < count; i++) {
			struct slot *sl = &b->slots[i];
			if (sl->busy)
				continue;
			uint64_t n = random_keys ? mix(b->prng++) % b->o.keys : issued;
			sl->key_no = n;
			sl->op = (struct store_op){.kind = kind, .key = sl->key, .key_len = key_for(sl->key, n),
						   .done = op_done};
			if (kind == STORE_PUT) {
				fill_value(b->value + (size_t)i * b->o.value_bytes, b->o.value_bytes, n);
				sl->op.value = b->value + (size_t)i * b->o.value_bytes;
				sl->op.val_len = b->o.value_bytes;
			}
			sl->t0_ns = now_ns();
			int err = store_submit(b->s, &sl->op);
			if (err == -EAGAIN)
				break;
			if (err) {
				fprintf(stderr, "bench: submit: %s\n", dv_strerror(err));
				return err;
			}
			sl->busy = true;
			issued++;
		}
		int err = store_poll(b->s, true);
		if (err < 0)
			return err;
		if (guard > count * 1000 + 1000000) {
			fprintf(stderr, "bench: %s: no progress (%" PRIu64 " of %" PRIu64 " done)\n", name, b->done, count);
			return -ETIMEDOUT;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	store_get_stats(b->s, &st1);
	qsort(b->lat_us, b->lat_n, sizeof(uint32_t), cmp_u32);
	double ops = (double)count / secs;
	double mbs = ops * b->o.value_bytes / 1e6;
	printf("%-10s %9" PRIu64 " ops %8.2f s %10.0f ops/s %8.1f MB/s values  p50 %u us  p99 %u us  p99.9 %u us"
	       "  errors %" PRIu64 " mismatches %" PRIu64 "\n",
	       name, count, secs, ops, mbs, pct(b->lat_us, b->lat_n, 0.5), pct(b->lat_us, b->lat_n, 0.99),
	       pct(b->lat_us, b->lat_n, 0.999), b->errors, b->mismatches);
	printf("RESULT %s_ops_per_s=%.0f %s_value_mb_per_s=%.1f %s_p50_us=%u %s_p99_us=%u %s_p999_us=%u "
	       "%s_device_mb=%.1f %s_errors=%" PRIu64 "\n",
	       name, ops, name, mbs, name, pct(b->lat_us, b->lat_n, 0.5), name, pct(b->lat_us, b->lat_n, 0.99),
	       name, pct(b->lat_us, b->lat_n, 0.999), name,
	       (double)(st1.device_bytes_written - st0.device_bytes_written) / 1e6, name, b->errors + b->mismatches);
	return b->errors || b->mismatches ? -EIO : 0;
}

static bool is_regular_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int open_store(struct bench *b, struct dev **dev, bool fresh)
{
	if (fresh && !b->o.keep && is_regular_file(b->o.path))
		unlink(b->o.path);
	struct dev_open_opts o = {.create_bytes = b->o.size, .queue_depth = 512};
	int err = dev_open_path(dev, b->o.path, &o);
	if (err) {
		fprintf(stderr, "bench: %s: %s\n", b->o.path, dv_strerror(err));
		return err;
	}
	struct store_config cfg = {.format_if_empty = true, .zone_bytes = b->o.zone_bytes,
				   .index_capacity_hint = b->o.keys};
	err = store_open(&b->s, *dev, &cfg);
	if (err) {
		fprintf(stderr, "bench: open store: %s\n", dv_strerror(err));
		dev_close(*dev);
	}
	return err;
}

static void print_usage(void)
{
	printf("usage: dynvme bench engine [--data PATH] [--size BYTES] [--keys N] [--value-bytes N]\n"
	       "                           [--reads N] [--qd N] [--zone-bytes BYTES] [--wa BYTES] [--keep] [--reuse]\n"
	       "Fills N keys, reads random keys, restarts the store, and with --wa overwrites\n"
	       "random keys for BYTES of values to measure write amplification with GC.\n"
	       "--keep leaves the data file; --reuse (implies --keep) skips the fill when the\n"
	       "file already holds --keys keys from an earlier run.\n"
	       "Defaults: ./data/bench.img, 4G, 1000000 keys, 100-byte values, reads = keys, qd 64.\n");
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longs[] = {
		{"data", 1, 0, 'd'}, {"size", 1, 0, 's'}, {"keys", 1, 0, 'k'}, {"value-bytes", 1, 0, 'v'},
		{"reads", 1, 0, 'r'}, {"qd", 1, 0, 'q'}, {"zone-bytes", 1, 0, 'z'}, {"wa", 1, 0, 'w'},
		{"keep", 0, 0, 'K'}, {"reuse", 0, 0, 'U'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	*o = (struct bench_opts){.path = "./data/bench.img", .size = 4ull << 30, .keys = 1000000,
				 .value_bytes = 100, .qd = 64};
	unsigned long long v;
	int c;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 'h') {
			print_usage();
			exit(0);
		}
		if (c == 'd' || c == 'K' || c == 'U') {
			if (c == 'd')
				o->path = optarg;
			else if (c == 'K')
				o->keep = true;
			else
				o->reuse = o->keep = true;
			continue;
		}
		if (c == '?' || cli_parse_size(optarg, &v)) {
			fprintf(stderr, "bench: bad option or value\n");
			return -EINVAL;
		}
		switch (c) {
		case 's': o->size = v; break;
		case 'k': o->keys = v; break;
		case 'v': o->value_bytes = (uint32_t)v; break;
		case 'r': o->reads = v; break;
		case 'q': o->qd = (uint32_t)v; break;
		case 'z': o->zone_bytes = v; break;
		case 'w': o->overwrite_bytes = v; o->wa = true; break;
		default: break;
		}
	}
	if (!o->reads)
		o->reads = o->keys;
	if (o->qd == 0 || o->qd > 4096 || o->keys == 0 || o->value_bytes == 0 || o->value_bytes > 65536) {
		fprintf(stderr, "bench: need 1 <= qd <= 4096, keys > 0, 1 <= value-bytes <= 65536\n");
		return -EINVAL;
	}
	return 0;
}

static int bench_restart(struct bench *b, struct dev **dev)
{
	store_close(b->s);
	dev_close(*dev);
	uint64_t t0 = now_ns();
	int err = open_store(b, dev, false);
	if (err)
		return err;
	double ms = (double)(now_ns() - t0) / 1e6;
	struct store_stats st;
	store_get_stats(b->s, &st);
	printf("restart    %" PRIu64 " keys recovered in %.1f ms (recovery %.1f ms); index %.2f bytes/key\n",
	       st.keys, ms, (double)st.recovery_us / 1e3, st.keys ? (double)st.index_bytes / (double)st.keys : 0.0);
	printf("RESULT restart_ms=%.1f restart_keys=%" PRIu64 " index_bytes_per_key=%.2f\n", ms, st.keys,
	       st.keys ? (double)st.index_bytes / (double)st.keys : 0.0);
	return st.keys == b->o.keys ? 0 : -EIO;
}

static int bench_wa(struct bench *b)
{
	struct store_stats st0, st1;
	store_get_stats(b->s, &st0);
	uint64_t count = b->o.overwrite_bytes / b->o.value_bytes;
	int err = run_phase(b, "overwrite", STORE_PUT, count, true);
	if (err)
		return err;
	err = store_drain(b->s);
	store_get_stats(b->s, &st1);
	double user = (double)(st1.user_bytes - st0.user_bytes);
	double dev = (double)(st1.device_bytes_written - st0.device_bytes_written);
	double live = (double)st1.keys * (double)(b->o.value_bytes + 40 + 17) /
		      ((double)st1.zones_total * (double)st1.zone_cap);
	double moved = (double)(st1.gc_bytes_relocated - st0.gc_bytes_relocated);
	double gc_wa = user > 0 ? (user + moved) / user : 0.0;
	double wa = user > 0 ? dev / user : 0.0;
	printf("gc         %" PRIu64 " zones collected, %.1f MB relocated; live data %.0f%% of zone space;"
	       " write amplification %.2f (device bytes / record bytes), of which GC %.2f"
	       " ((records + relocated) / records); the rest is batch padding, zone indexes, superblocks\n",
	       st1.gc_zones_reset - st0.gc_zones_reset, moved / 1e6, live * 100, wa, gc_wa);
	/* Every zone reset: GC's, and on a zoned device the superblock log's. */
	uint64_t resets = st1.gc_zones_reset - st0.gc_zones_reset + st1.sb_log_resets - st0.sb_log_resets;
	printf("zones      %s, %" PRIu64 " resets (%" PRIu64 " of them superblock log zones), %.2f per GB written\n",
	       st1.zone_model, resets, st1.sb_log_resets - st0.sb_log_resets, dev > 0 ? (double)resets / (dev / 1e9) : 0.0);
	printf("RESULT write_amplification=%.3f gc_write_amplification=%.3f live_fraction=%.2f gc_zones=%" PRIu64
	       " zone_resets=%" PRIu64 " sb_log_resets=%" PRIu64 " device_gb=%.3f\n",
	       wa, gc_wa, live, st1.gc_zones_reset - st0.gc_zones_reset, resets, st1.sb_log_resets - st0.sb_log_resets,
	       dev / 1e9);
	return err;
}

int cli_bench(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "engine")) {
		print_usage();
		return 2;
	}
	struct bench b = {0};
	if (parse_opts(argc - 1, argv + 1, &b.o))
		return 2;
	uint64_t max_phase = b.o.keys > b.o.reads ? b.o.keys : b.o.reads;
	if (b.o.wa && b.o.overwrite_bytes / b.o.value_bytes > max_phase)
		max_phase = b.o.overwrite_bytes / b.o.value_bytes;
	b.slots = calloc(b.o.qd, sizeof(*b.slots));
	b.value = malloc((size_t)b.o.qd * b.o.value_bytes);
	b.lat_us = malloc(max_phase * sizeof(uint32_t));
	if (!b.slots || !b.value || !b.lat_us)
		return 2;
	for (uint32_t i = 0; i < b.o.qd; i++)
		b.slots[i].b = &b;
	int mk = dv_mkdir_durable("./data", 0755);
	if (mk && mk != -EEXIST) {
		fprintf(stderr, "bench: cannot create ./data: %s\n", dv_strerror(mk));
		return 2;
	}
	struct dev *dev = NULL;
	int err = open_store(&b, &dev, true);
	if (err)
		return 2;
	printf("engine bench: %s, %" PRIu64 " keys, %u-byte values, qd %u\n", b.o.path, b.o.keys, b.o.value_bytes, b.o.qd);
	struct store_stats st0;
	store_get_stats(b.s, &st0);
	if (b.o.reuse && st0.keys == b.o.keys)
		printf("fill       skipped: --reuse and the file holds %" PRIu64 " keys\n", st0.keys);
	else
		err = run_phase(&b, "fill", STORE_PUT, b.o.keys, false);
	if (!err)
		err = run_phase(&b, "read", STORE_GET, b.o.reads, true);
	if (!err)
		err = bench_restart(&b, &dev);
	if (!err)
		err = run_phase(&b, "read2", STORE_GET, b.o.reads / 4 + 1, true);
	if (!err && b.o.wa)
		err = bench_wa(&b);
	if (b.s)
		store_close(b.s);
	dev_close(dev);
	if (!b.o.keep && is_regular_file(b.o.path))
		unlink(b.o.path); /* never a device node */
	free(b.slots);
	free(b.value);
	free(b.lat_us);
	if (err)
		fprintf(stderr, "bench: failed: %s\n", dv_strerror(err));
	return err ? 1 : 0;
}
