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

#endif
