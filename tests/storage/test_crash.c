/* test_crash.c - SIGKILL at random moments while a child process writes.
 *
 * The child writes and deletes keys on a real file (io_uring, O_DIRECT,
 * RWF_DSYNC), reporting through a pipe each op before it is submitted and
 * each acknowledgement. One op per key is in flight at a time. The parent
 * kills it at a random moment, reopens the file (recovery), checks it with
 * store_check and verifies every key: its state is the last acknowledged
 * one, or that of the op in flight when the child died. Cycles: $DV_CRASH_CYCLES
 * (default 100). Values carry their key and version so a wrong or damaged
 * value cannot pass. With DV_TEST_DEVICE=/dev/X the store is on that block
 * device instead (the tests/zns guest: a zoned NVMe namespace or a
 * conventional one; wiped first, DESTROYS its data). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "harness.h"
#include "storage/store_int.h"
#include "testing.h"

enum { KEYS = 1500, QD = 16, VAL_MAX = 12000 };

struct msg {
	uint8_t kind; /* 'S' submitted, 'A' acknowledged */
	uint8_t del;
	uint16_t pad;
	uint32_t key;
	uint64_t version;
};

struct key_state {
	uint64_t acked;     /* version of the last acknowledged op, 0 = none */
	bool acked_del;
	uint64_t inflight;  /* version submitted after acked, 0 = none */
	bool inflight_del;
};

static char path[512];
static bool on_device; /* DV_TEST_DEVICE: path is a block device */

static uint32_t value_len(uint32_t key, uint64_t version)
{
	uint64_t x = (key + 1) * 0x9e3779b97f4a7c15ull ^ version;
	x ^= x >> 29;
	return x % 16 == 0 ? 5000 + (uint32_t)(x % (VAL_MAX - 5000)) : 16 + (uint32_t)(x % 2000);
}

static void make_value(uint8_t *v, uint32_t key, uint64_t version)
{
	uint32_t len = value_len(key, version);
	h_fill_value(v, len, key, version);
	memcpy(v, &version, 8);
	memcpy(v + 8, &key, 4);
}

static int open_file_store(struct store **s, struct dev **dev)
{
	struct dev_open_opts o = {.create_bytes = 64ull << 20};
	int err = dev_open_path(dev, path, &o);
	if (err)
		return err;
	struct store_config cfg = {.format_if_empty = true, .zone_bytes = 1u << 20};
	err = store_open(s, *dev, &cfg);
	if (err)
		dev_close(*dev);
	return err;
}

/* ---- child ---- */

struct cslot {
	struct store_op op;
	char key[24];
	struct msg m;
	bool busy;
	uint8_t val[VAL_MAX];
};

static int report_fd;

static void report(const struct msg *m)
{
	CHECK(write(report_fd, m, sizeof(*m)) == (ssize_t)sizeof(*m));
}

static void child_done(struct store_op *op)
{
	struct cslot *sl = (struct cslot *)op;
	sl->busy = false;
	bool ok = op->result == 0 || (sl->m.del && op->result == -DV_ENOTFOUND);
	CHECK(ok);
	sl->m.kind = 'A';
	report(&sl->m);
}

static void child_run(uint64_t cycle, uint64_t seed)
{
	struct store *s;
	struct dev *dev;
	CHECK_EQ(open_file_store(&s, &dev), 0);
	struct cslot *slots = calloc(QD, sizeof(*slots));
	CHECK(slots != NULL);
	uint64_t rng = seed, version = cycle << 32;
	for (;;) { /* until killed */
		for (unsigned i = 0; i < QD; i++) {
			struct cslot *sl = &slots[i];
			if (sl->busy)
				continue;
			uint32_t key = (uint32_t)(test_rand(&rng) % (KEYS / QD)) * QD + i;
			bool del = test_rand(&rng) % 10 == 0;
			sl->m = (struct msg){.kind = 'S', .del = del, .key = key, .version = ++version};
			sprintf(sl->key, "crash-%u", key);
			sl->op = (struct store_op){.kind = del ? STORE_DEL : STORE_PUT, .key = sl->key,
						   .key_len = (uint32_t)strlen(sl->key), .done = child_done};
			if (!del) {
				make_value(sl->val, key, version);
				sl->op.value = sl->val;
				sl->op.val_len = value_len(key, version);
			}
			report(&sl->m);
			CHECK_EQ(store_submit(s, &sl->op), 0);
			sl->busy = true;
		}
		CHECK(store_poll(s, true) >= 0);
	}
}

/* ---- parent ---- */

static void apply_msg(struct key_state *ks, const struct msg *m)
{
	CHECK(m->key < KEYS);
	struct key_state *k = &ks[m->key];
	if (m->kind == 'S') {
		k->inflight = m->version;
		k->inflight_del = m->del;
	} else {
		CHECK(m->kind == 'A' && m->version == k->inflight);
		k->acked = m->version;
		k->acked_del = m->del;
		k->inflight = 0;
	}
}

static void apply_reports(int fd, struct key_state *ks)
{
	struct msg m;
	ssize_t n;
	while ((n = read(fd, &m, sizeof(m))) == (ssize_t)sizeof(m))
		apply_msg(ks, &m);
	CHECK(n == 0); /* a message is never torn: writes below PIPE_BUF */
}

static bool state_matches(int rc, const struct h_value *got, uint32_t key, uint64_t version, bool del)
{
	if (version == 0 || del)
		return rc == -DV_ENOTFOUND;
	if (rc != 0)
		return false;
	uint8_t *expect = malloc(VAL_MAX);
	make_value(expect, key, version);
	bool ok = got->len == value_len(key, version) && memcmp(got->bytes, expect, got->len) == 0;
	free(expect);
	return ok;
}

static void verify(struct key_state *ks, struct h_value *got, uint64_t *inflight_won)
{
	struct store *s;
	struct dev *dev;
	struct dev_open_opts o = {.read_only = true};
	CHECK_EQ(dev_open_path(&dev, path, &o), 0);
	CHECK_EQ(h_check(dev, "after a crash").damage, 0);
	dev_close(dev);

	CHECK_EQ(open_file_store(&s, &dev), 0);
	for (uint32_t key = 0; key < KEYS; key++) {
		char name[24];
		sprintf(name, "crash-%u", key);
		int rc = h_get(s, name, got);
		CHECK(rc == 0 || rc == -DV_ENOTFOUND);
		struct key_state *k = &ks[key];
		if (state_matches(rc, got, key, k->acked, k->acked_del))
			continue;
		/* Not the acknowledged state: must be the op in flight, now durable. */
		if (!k->inflight || !state_matches(rc, got, key, k->inflight, k->inflight_del)) {
			fprintf(stderr, "key %u: rc %d, acked v%llu%s, in flight v%llu%s, read v%llu\n", key, rc,
				(unsigned long long)k->acked, k->acked_del ? " (del)" : "",
				(unsigned long long)k->inflight, k->inflight_del ? " (del)" : "",
				rc == 0 ? (unsigned long long)*(uint64_t *)got->bytes : 0ull);
			CHECK(!"acknowledged write lost or wrong value");
		}
		k->acked = k->inflight;
		k->acked_del = k->inflight_del;
		(*inflight_won)++;
	}
	for (uint32_t key = 0; key < KEYS; key++)
		ks[key].inflight = 0;
	store_close(s);
	dev_close(dev);
}

int main(void)
{
	const char *device = getenv("DV_TEST_DEVICE");
	on_device = device && *device;
	if (on_device) {
		snprintf(path, sizeof(path), "%s", device);
		struct dev *dev;
		CHECK_EQ(dev_open_path(&dev, path, &(struct dev_open_opts){0}), 0);
		h_wipe(dev);
		dev_close(dev);
	} else {
		snprintf(path, sizeof(path), "%s/dv-crash-%d.img", test_tmpdir(), (int)getpid());
		unlink(path);
	}
	const char *env = getenv("DV_CRASH_CYCLES");
	uint64_t cycles = env ? strtoull(env, NULL, 10) : 100;
	uint64_t rng = test_seed((uint64_t)time(NULL));
	struct key_state *ks = calloc(KEYS, sizeof(*ks));
	struct h_value *got = malloc(sizeof(*got));
	CHECK(ks && got);
	uint64_t acks = 0, inflight_won = 0;
	{ /* format first: a kill during formatting is not what we test */
		struct store *s;
		struct dev *dev;
		CHECK_EQ(open_file_store(&s, &dev), 0);
		store_close(s);
		dev_close(dev);
	}
	for (uint64_t c = 1; c <= cycles; c++) {
		int fds[2];
		CHECK(pipe(fds) == 0);
		uint64_t child_seed = test_rand(&rng);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			report_fd = fds[1];
			child_run(c, child_seed);
			_exit(0);
		}
		close(fds[1]);
		/* The kill comes at a random moment of the load: counted from the
		 * child's first write, so a slow start (sanitizers) changes nothing. */
		struct msg first;
		CHECK(read(fds[0], &first, sizeof(first)) == (ssize_t)sizeof(first));
		apply_msg(ks, &first);
		usleep((useconds_t)(2000 + test_rand(&rng) % 80000));
		CHECK(kill(pid, SIGKILL) == 0);
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		uint64_t before = 0;
		for (uint32_t k = 0; k < KEYS; k++)
			before += ks[k].acked;
		apply_reports(fds[0], ks);
		close(fds[0]);
		uint64_t after = 0;
		for (uint32_t k = 0; k < KEYS; k++)
			after += ks[k].acked;
		acks += after != before;
		verify(ks, got, &inflight_won);
	}
	fprintf(stderr, "%llu cycles (%llu with acknowledged writes), %llu unacknowledged writes found durable\n",
		(unsigned long long)cycles, (unsigned long long)acks, (unsigned long long)inflight_won);
	CHECK(acks > cycles / 2); /* the load really ran before the kills */
	{ /* zones were recycled (GC) under the kills: generations moved on */
		struct store *s;
		struct dev *dev;
		CHECK_EQ(open_file_store(&s, &dev), 0);
		uint64_t resets = 0;
		for (uint32_t z = 0; z < s->sb.zone_count; z++)
			resets += s->sb.zones[z].gen - 1;
		fprintf(stderr, "%llu zone resets over the run\n", (unsigned long long)resets);
		if (cycles >= 100)
			CHECK(resets > 0);
		store_close(s);
		dev_close(dev);
	}
	if (!on_device)
		unlink(path);
	free(ks);
	free(got);
	return 0;
}
