#include "testing.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

const char *test_tmpdir(void)
{
	const char *d = getenv("DV_TEST_TMP");
	return d && *d ? d : "/tmp";
}

uint64_t test_seed(uint64_t fallback)
{
	const char *s = getenv("DV_SEED");
	uint64_t seed = s && *s ? strtoull(s, NULL, 0) : fallback;
	fprintf(stderr, "seed %" PRIu64 " (replay with DV_SEED=%" PRIu64 ")\n", seed, seed);
	return seed;
}

uint64_t test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static _Atomic unsigned soft_failures;      /* all tests */
static _Atomic unsigned soft_test_failures; /* current test */
static double test_start;

/* Failures of the current test by source line, for test_end(). */
#define TALLY_SLOTS 32
static _Atomic int tally_line[TALLY_SLOTS];
static _Atomic unsigned tally_count[TALLY_SLOTS];

static void tally(int line)
{
	for (unsigned i = 0; i < TALLY_SLOTS; i++) {
		int cur = atomic_load(&tally_line[i]);
		if (cur == 0) {
			int zero = 0;
			cur = atomic_compare_exchange_strong(&tally_line[i], &zero, line) ? line : zero;
		}
		if (cur == line) {
			atomic_fetch_add(&tally_count[i], 1);
			return;
		}
	}
}

void test_soft_fail(const char *file, int line, const char *fmt, ...)
{
	atomic_fetch_add(&soft_failures, 1);
	tally(line);
	if (atomic_fetch_add(&soft_test_failures, 1) >= 20)
		return; /* counted, not printed */
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s:%d: FAIL: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

double test_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void test_begin(const char *name)
{
	atomic_store(&soft_test_failures, 0);
	for (unsigned i = 0; i < TALLY_SLOTS; i++) {
		atomic_store(&tally_line[i], 0);
		atomic_store(&tally_count[i], 0);
	}
	test_start = test_now_s();
	fprintf(stderr, "--- %s\n", name);
}

void test_end(const char *name)
{
	unsigned f = atomic_load(&soft_test_failures);
	fprintf(stderr, "%s %s (%.2fs)%s\n", f ? "FAIL" : "ok  ", name, test_now_s() - test_start,
		f > 20 ? " (only the first 20 failures printed)" : "");
	if (!f)
		return;
	fprintf(stderr, "     %u failed checks:", f);
	for (unsigned i = 0; i < TALLY_SLOTS && atomic_load(&tally_line[i]); i++)
		fprintf(stderr, " line %d x%u;", atomic_load(&tally_line[i]), atomic_load(&tally_count[i]));
	fputc('\n', stderr);
}

unsigned test_soft_failures(void) { return atomic_load(&soft_failures); }
