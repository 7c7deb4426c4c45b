/* testing.h - tiny helpers shared by the test programs.
 * CHECK aborts the test with file:line when a condition fails; a test
 * program exits 0 on success, 77 when skipped, anything else on failure. */
#ifndef DV_TESTING_H
#define DV_TESTING_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(expr)                                                                  \
	do {                                                                         \
		if (!(expr)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

#define CHECK_EQ(a, b)                                                               \
	do {                                                                         \
		long long _a = (long long)(a), _b = (long long)(b);                  \
		if (_a != _b) {                                                      \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", \
				__FILE__, __LINE__, #a, #b, _a, _b);                 \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

/* Directory for scratch files: $DV_TEST_TMP or /tmp. */
const char *test_tmpdir(void);
/* Deterministic PRNG (splitmix64) for tests; seed from $DV_SEED if set. */
uint64_t test_seed(uint64_t fallback);
uint64_t test_rand(uint64_t *state);

/* Soft checks: a failed SOFT() is counted (in the current test and in all),
 * tallied by source line and printed (the first 20 of a test); the program
 * goes on, and reports with test_end() and test_soft_failures(). Safe from
 * several threads. */
void test_soft_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define SOFT(cond, ...)                                                    \
	do {                                                               \
		if (!(cond))                                               \
			test_soft_fail(__FILE__, __LINE__, __VA_ARGS__);  \
	} while (0)
void test_begin(const char *name);
/* "ok" or "FAIL" with the time since test_begin() and the failing lines. */
void test_end(const char *name);
unsigned test_soft_failures(void);
double test_now_s(void); /* monotonic seconds */

#endif
