/* test_expiry.c - the active expiry table (expiry.h) against a model:
 * random notes (with an expiry, without, older than the entry) of a few
 * hundred keys, many writes each: one entry per key whatever its writes,
 * the newest write's expiry wins, a note with a lower seq changes nothing;
 * pops come soonest first and only when due; the key and byte bounds
 * refuse new keys (false) and never an update; memory is given back.
 * Seeded: replay with DV_SEED=N. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/expiry.h"
#include "testing.h"

#define KEYS 700u

struct mk {
	uint64_t expire, seq; /* expire 0: no entry */
};

static unsigned key_no(const char *k, uint32_t len)
{
	char b[32];
	memcpy(b, k, len);
	b[len] = 0;
	return (unsigned)atoi(b + 2);
}

int main(void)
{
	uint64_t seed = test_seed(0xe8), rng = seed;
	struct expiry *x;
	CHECK(expiry_open(&x, EXPIRY_KEYS_MAX, EXPIRY_BYTES_MAX) == 0);
	static struct mk m[KEYS];
	uint64_t seq = 1, now = 1000;
	for (unsigned step = 0; step < 300000; step++) {
		unsigned k = (unsigned)(test_rand(&rng) % KEYS);
		char key[32];
		int n = snprintf(key, sizeof(key), "k:%u", k);
		unsigned pick = (unsigned)(test_rand(&rng) % 100);
		if (pick < 60) { /* a write with an expiry */
			uint64_t at = now + 1 + test_rand(&rng) % 5000;
			CHECK(expiry_note(x, key, (uint32_t)n, at, seq));
			m[k] = (struct mk){at, seq++};
		} else if (pick < 75) { /* without (or a DEL) */
			CHECK(expiry_note(x, key, (uint32_t)n, 0, seq++));
			m[k] = (struct mk){0, 0};
		} else if (pick < 80 && m[k].expire) { /* an older write seen late (a scan): ignored */
			CHECK(expiry_note(x, key, (uint32_t)n, now + 99999, m[k].seq - 1));
		} else { /* time passes; what is due comes out, soonest first */
			now += test_rand(&rng) % 40;
			struct expiry_item it;
			uint64_t last = 0;
			while (expiry_pop_due(x, now, &it)) {
				unsigned j = key_no(it.key, it.key_len);
				CHECK(it.expire_ms <= now && it.expire_ms >= last);
				CHECK(m[j].expire == it.expire_ms && m[j].seq == it.seq);
				last = it.expire_ms;
				m[j] = (struct mk){0, 0};
				free(it.key);
			}
		}
		if (step % 1009 == 0) {
			uint32_t want = 0;
			for (unsigned i = 0; i < KEYS; i++) {
				want += m[i].expire != 0;
				CHECK(m[i].expire == 0 || m[i].expire > now);
			}
			CHECK_EQ(expiry_count(x), want);
		}
	}
	/* Bounds: full at 10 keys; a new key is refused, a kept one updates. */
	expiry_clear(x);
	CHECK_EQ(expiry_bytes(x), 0);
	expiry_set_bounds(x, 10, EXPIRY_BYTES_MAX);
	for (unsigned i = 0; i < 10; i++)
		CHECK(expiry_note(x, &"abcdefghij"[i], 1, 100 + i, i + 1));
	CHECK(!expiry_note(x, "z", 1, 50, 20));
	CHECK(expiry_note(x, "c", 1, 10, 21)); /* an update */
	CHECK(expiry_note(x, "z", 1, 0, 22));  /* nothing to drop */
	struct expiry_item it;
	CHECK(expiry_pop_due(x, 10, &it) && it.key[0] == 'c' && it.seq == 21);
	free(it.key);
	CHECK(!expiry_pop_due(x, 99, &it));
	CHECK(expiry_note(x, "z", 1, 50, 23)); /* room again */
	uint64_t bytes = expiry_bytes(x);
	expiry_set_bounds(x, 100, bytes); /* full by bytes */
	CHECK(!expiry_note(x, "y", 1, 50, 24));
	/* A burst of 200,000 keys, then all due: memory is given back. */
	expiry_clear(x);
	expiry_set_bounds(x, EXPIRY_KEYS_MAX, EXPIRY_BYTES_MAX);
	for (unsigned i = 0; i < 200000; i++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "burst:%u", i);
		CHECK(expiry_note(x, key, (uint32_t)n, 1 + i % 977, i + 1));
	}
	CHECK_EQ(expiry_count(x), 200000);
	uint64_t peak = expiry_bytes(x), popped = 0, last = 0;
	while (expiry_pop_due(x, 1000, &it)) {
		CHECK(it.expire_ms >= last);
		last = it.expire_ms;
		free(it.key);
		popped++;
	}
	CHECK_EQ(popped, 200000);
	CHECK_EQ(expiry_bytes(x), 0);
	expiry_close(x);
	printf("ok (a burst of 200000 keys: %llu bytes counted)\n", (unsigned long long)peak);
	return 0;
}
