/* counter.h - a convergent counter: the state of a DVV_VAL_COUNTER value
 * (dvv.h), a PN-counter per actor as Riak's counters.
 *
 * The counter's value is base + the sum over actors of (inc - dec). An
 * actor only ever raises its own inc (INCR) or dec (DECR), durably at its
 * own store first (like its dots), so merging two states per actor with the
 * greater inc and the greater dec loses no increment: merge is commutative,
 * associative and idempotent, and concurrent increments through different
 * coordinators (during partitions too) all count once the states meet.
 * base is the plain integer value the counter started from (INCR on a
 * string holding "10"), named by that value's dot; of two bases the one of
 * the greater dot wins (so two coordinators converting the same value agree,
 * and a merge is still commutative).
 *
 * Encoding (little-endian), the value bytes of a DVV_VAL_COUNTER value:
 *   u8 format (1) | u8 zero | u16 n | i64 base | u64 base_actor
 *   | u64 base_counter | n x {u64 actor | u64 inc | u64 dec}
 * actors strictly increasing and not 0, n <= COUNTER_ACTORS_MAX; a base of
 * no dot (base_actor 0) has base_counter 0 and base 0. Pure functions on a
 * fixed-size struct: no allocation, every loop bounded.
 */
#ifndef DV_CLUSTER_COUNTER_H
#define DV_CLUSTER_COUNTER_H

#include <stdbool.h>
#include <stdint.h>

#define COUNTER_ACTORS_MAX 32u
#define COUNTER_HDR_BYTES 28u
#define COUNTER_ENTRY_BYTES 24u
#define COUNTER_BYTES_MAX (COUNTER_HDR_BYTES + COUNTER_ACTORS_MAX * COUNTER_ENTRY_BYTES)
/* The decimal text of any value: "-9223372036854775808" and a NUL. */
#define COUNTER_TEXT_MAX 21u
/* The decimal text of any state: |base + sum| < 2^63 + 32 * 2^64 < 2^70,
 * 22 digits at most, a sign and a NUL. */
#define COUNTER_WIDE_TEXT_MAX 24u

struct counter {
	int64_t base;
	uint64_t base_actor, base_counter; /* the dot of the plain value it started from */
	uint16_t n;
	struct {
		uint64_t actor, inc, dec;
	} e[COUNTER_ACTORS_MAX]; /* sorted by actor */
};

void counter_init(struct counter *c);
/* 0 or -DV_ECORRUPT (any rule of the encoding broken, or bytes left). */
int counter_decode(struct counter *c, const uint8_t *p, uint32_t len);
uint32_t counter_bytes(const struct counter *c);
/* Writes counter_bytes(c) bytes. */
void counter_encode(const struct counter *c, uint8_t *out);
/* a = merge(a, b). 0, or -E2BIG when the actors do not fit (a unchanged). */
int counter_merge(struct counter *a, const struct counter *b);
/* The actor's own entry grows by delta (inc when > 0, dec when < 0). 0,
 * -E2BIG (a new actor beyond the bound) or -ERANGE (its inc or dec would
 * pass 2^64 - 1); c unchanged on error. */
int counter_add(struct counter *c, uint64_t actor, int64_t delta);
/* Starts the counter from a plain value v of dot (actor, counter): taken
 * when that dot is greater than the current base's. */
void counter_set_base(struct counter *c, int64_t v, uint64_t actor, uint64_t dot_counter);
/* base + sum(inc - dec) into *out: 0, or -ERANGE when it does not fit. */
int counter_value(const struct counter *c, int64_t *out);
/* The exact decimal text of base + sum(inc - dec), int64 or not, into out
 * (COUNTER_WIDE_TEXT_MAX bytes): its length. Concurrent increments through
 * different coordinators each check only the value they read, so the
 * merged sum may pass the int64 range (it is still every increment). */
uint32_t counter_text(const struct counter *c, char *out);
/* Same state (entries, base). */
bool counter_equal(const struct counter *a, const struct counter *b);

/* Redis's integer rules: a decimal int64 without spaces, sign only '-',
 * no leading zeros but "0" itself. 0 or -EDOM. */
int counter_parse(const uint8_t *p, uint32_t len, int64_t *out);
/* The decimal text of v into out (COUNTER_TEXT_MAX bytes): its length. */
uint32_t counter_format(int64_t v, char *out);

#endif
