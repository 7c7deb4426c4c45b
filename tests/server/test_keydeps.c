/* test_keydeps.c - the per-connection key table (keydeps.h) against a
 * model: random adds and drops of a few hundred keys whose hashes share
 * their low bits (long probe runs, deletions inside them, wrap-around at
 * the end of the table), every entry found with its counts after every
 * step, none found after it is dropped; growth, and the table freed once
 * a burst empties it. Seeded: replay with DV_SEED=N. */
#include <stdbool.h>
#include <string.h>

#include "server/keydeps.h"
#include "testing.h"

#define KEYS 600u

int main(void)
{
	uint64_t seed = test_seed(0x6b64), rng = seed;
	struct keydeps t;
	keydeps_init(&t);
	uint64_t hash[KEYS];
	uint32_t writes[KEYS] = {0};
	for (unsigned i = 0; i < KEYS; i++) /* clusters: the same low 7 bits for many keys; 0 among them */
		hash[i] = i == 0 ? 0 : (test_rand(&rng) << 7) | (i % 5 == 0 ? 0x7fu : (uint64_t)(i % 3));
	uint32_t max_cap = 0;
	for (unsigned step = 0; step < 200000; step++) {
		unsigned k = (unsigned)(test_rand(&rng) % KEYS);
		/* Bursts: the first half of every 40,000 steps mostly adds. */
		bool add = test_rand(&rng) % 100 < ((step / 20000) % 2 == 0 ? 70u : 25u);
		if (add) {
			CHECK(keydeps_reserve(&t, 1) == 0);
			struct keydep *d = keydeps_get(&t, hash[k]);
			CHECK_EQ(d->writes, writes[k]);
			d->writes++;
			writes[k]++;
			keydeps_put(&t, d);
		} else if (writes[k]) {
			struct keydep *d = keydeps_find(&t, hash[k]);
			CHECK(d != NULL);
			d->writes--;
			writes[k]--;
			keydeps_put(&t, d);
		}
		if (step % 97 == 0 || step > 199000) {
			uint32_t used = 0;
			for (unsigned i = 0; i < KEYS; i++) {
				const struct keydep *d = keydeps_find(&t, hash[i]);
				CHECK((d != NULL) == (writes[i] > 0));
				if (d)
					CHECK_EQ(d->writes, writes[i]);
				used += writes[i] > 0;
			}
			CHECK_EQ(t.count, used);
			CHECK(2ull * t.count <= t.cap || t.cap == 0);
		}
		if (t.cap > max_cap)
			max_cap = t.cap;
	}
	CHECK(max_cap >= 1024); /* it grew */
	for (unsigned i = 0; i < KEYS; i++) /* empty it */
		while (writes[i]) {
			struct keydep *d = keydeps_find(&t, hash[i]);
			CHECK(d != NULL);
			d->writes--;
			writes[i]--;
			keydeps_put(&t, d);
		}
	CHECK_EQ(t.count, 0);
	CHECK(t.cap <= KEYDEPS_SLOTS_KEEP); /* a large table is given back when it empties */
	CHECK(keydeps_find(&t, hash[1]) == NULL);
	keydeps_free(&t);
	printf("ok (largest table %u slots)\n", max_cap);
	return 0;
}
