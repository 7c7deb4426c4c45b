/* test_simnet.c - unit tests of the simulator's packet network: delays and
 * their order, loss, duplication, flips, links and partitions, nodes going
 * down, the bound on messages in flight, determinism. */
#include <stdio.h>
#include <string.h>

#include "sim/simnet.h"
#include "testing.h"

static struct simnet_config base_cfg(unsigned nodes)
{
	return (struct simnet_config){.nodes = nodes, .delay_min_ms = 1, .delay_max_ms = 20};
}

/* Sends msg number i (4 bytes, little-endian i) from -> to. */
static unsigned send_u32(struct simnet *net, unsigned from, unsigned to, uint32_t i, uint64_t now)
{
	uint8_t b[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
	return simnet_send(net, from, to, b, sizeof(b), now);
}

static uint32_t get_u32(const struct simnet_packet *p)
{
	CHECK_EQ(p->len, 4);
	return p->data[0] | (uint32_t)p->data[1] << 8 | (uint32_t)p->data[2] << 16 | (uint32_t)p->data[3] << 24;
}

/* Takes everything in flight, advancing time to each delivery. */
static unsigned drain(struct simnet *net, uint32_t *ids, unsigned max)
{
	unsigned n = 0;
	uint64_t t;
	while ((t = simnet_next_ms(net)) != UINT64_MAX) {
		struct simnet_packet *p;
		while ((p = simnet_take(net, t))) {
			CHECK(p->deliver_ms == t);
			if (n < max)
				ids[n] = get_u32(p);
			n++;
			simnet_packet_free(p);
		}
	}
	return n;
}

static void test_fixed_delay_order(void)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, 1);
	struct simnet_config c = base_cfg(3);
	c.delay_min_ms = c.delay_max_ms = 5;
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	for (uint32_t i = 0; i < 100; i++)
		CHECK_EQ(send_u32(net, i % 3, (i + 1) % 3, i, 10), 1);
	CHECK_EQ(simnet_next_ms(net), 15);
	CHECK(simnet_take(net, 14) == NULL);
	/* Equal delivery times come out in send order. */
	for (uint32_t i = 0; i < 100; i++) {
		struct simnet_packet *p = simnet_take(net, 15);
		CHECK(p != NULL);
		CHECK_EQ(get_u32(p), i);
		CHECK_EQ(p->from, i % 3);
		CHECK_EQ(p->to, (i + 1) % 3);
		CHECK_EQ(p->sent_ms, 10);
		simnet_packet_free(p);
	}
	CHECK(simnet_take(net, 1000) == NULL);
	CHECK_EQ(simnet_next_ms(net), UINT64_MAX);
	struct simnet_stats st;
	simnet_get_stats(net, &st);
	CHECK_EQ(st.sent, 100);
	CHECK_EQ(st.delivered, 100);
	CHECK_EQ(st.in_flight, 0);
	simnet_destroy(net);
}

static void test_delays_reorder(void)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, 2);
	struct simnet_config c = base_cfg(2);
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	for (uint32_t i = 0; i < 1000; i++)
		send_u32(net, 0, 1, i, 100 + i / 4);
	unsigned inversions = 0, got = 0;
	uint64_t prev_t = 0;
	uint32_t prev = 0;
	uint64_t t;
	while ((t = simnet_next_ms(net)) != UINT64_MAX) {
		struct simnet_packet *p = simnet_take(net, t);
		CHECK(p && p->deliver_ms >= p->sent_ms + 1 && p->deliver_ms <= p->sent_ms + 20);
		CHECK(p->deliver_ms >= prev_t);
		if (got && get_u32(p) < prev)
			inversions++;
		prev = get_u32(p);
		prev_t = p->deliver_ms;
		got++;
		simnet_packet_free(p);
	}
	CHECK_EQ(got, 1000);
	CHECK(inversions > 100); /* independent delays reorder messages sent apart */
	simnet_destroy(net);
}

static void test_loss_dup_flip(void)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, 3);
	struct simnet_config c = base_cfg(2);
	c.loss_ppm = 200000;
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	for (uint32_t i = 0; i < 10000; i++)
		send_u32(net, 0, 1, i, 0);
	uint32_t ids[1];
	unsigned got = drain(net, ids, 0);
	struct simnet_stats st;
	simnet_get_stats(net, &st);
	CHECK_EQ(got + st.dropped_loss, 10000);
	CHECK(st.dropped_loss > 1700 && st.dropped_loss < 2300);
	simnet_destroy(net);

	/* Every message duplicated: both copies arrive, intact, each with its
	 * own delay. */
	c = base_cfg(2);
	c.dup_ppm = 1000000;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	for (uint32_t i = 0; i < 500; i++)
		CHECK_EQ(send_u32(net, 1, 0, i, 0), 2);
	static uint32_t seen[500];
	uint64_t first_t[500] = {0};
	unsigned differ = 0;
	uint64_t t;
	unsigned n = 0;
	while ((t = simnet_next_ms(net)) != UINT64_MAX) {
		struct simnet_packet *p = simnet_take(net, t);
		uint32_t id = get_u32(p);
		CHECK(id < 500);
		if (seen[id]++ == 0)
			first_t[id] = t;
		else if (first_t[id] != t)
			differ++;
		n++;
		simnet_packet_free(p);
	}
	CHECK_EQ(n, 1000);
	for (unsigned i = 0; i < 500; i++)
		CHECK_EQ(seen[i], 2);
	CHECK(differ > 300);
	simnet_get_stats(net, &st);
	CHECK_EQ(st.duplicated, 500);
	simnet_destroy(net);

	/* Every message flipped: exactly one byte differs, and it is marked. */
	c = base_cfg(2);
	c.flip_ppm = 1000000;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	uint8_t msg[64];
	for (unsigned i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	for (unsigned i = 0; i < 200; i++)
		simnet_send(net, 0, 1, msg, sizeof(msg), 0);
	while ((t = simnet_next_ms(net)) != UINT64_MAX) {
		struct simnet_packet *p = simnet_take(net, t);
		CHECK(p->flipped);
		CHECK_EQ(p->len, sizeof(msg));
		unsigned diff = 0;
		for (unsigned i = 0; i < sizeof(msg); i++)
			diff += p->data[i] != msg[i];
		CHECK_EQ(diff, 1);
		simnet_packet_free(p);
	}
	simnet_get_stats(net, &st);
	CHECK_EQ(st.flipped, 200);
	simnet_destroy(net);
}

static void test_partitions(void)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, 4);
	struct simnet_config c = base_cfg(4);
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	bool side[4] = {true, true, false, false};
	simnet_partition(net, side, false, SIMNET_CUT);
	CHECK_EQ(send_u32(net, 0, 2, 1, 0), 0);
	CHECK_EQ(send_u32(net, 3, 1, 2, 0), 0);
	CHECK_EQ(send_u32(net, 0, 1, 3, 0), 1);
	CHECK_EQ(send_u32(net, 2, 3, 4, 0), 1);
	uint32_t ids[4];
	CHECK_EQ(drain(net, ids, 4), 2);
	simnet_heal(net);
	/* One way: {0,1} cannot reach {2,3}, the other direction works. */
	simnet_partition(net, side, true, SIMNET_CUT);
	CHECK(simnet_get_link(net, 0, 2) == SIMNET_CUT && simnet_get_link(net, 2, 0) == SIMNET_UP);
	CHECK_EQ(send_u32(net, 1, 3, 5, 0), 0);
	CHECK_EQ(send_u32(net, 3, 1, 6, 0), 1);
	CHECK_EQ(drain(net, ids, 4), 1);
	CHECK_EQ(ids[0], 6);
	/* A cut made while a message is in flight drops it at delivery. */
	simnet_heal(net);
	CHECK_EQ(send_u32(net, 0, 2, 7, 0), 1);
	CHECK_EQ(send_u32(net, 2, 0, 8, 0), 1);
	simnet_set_link(net, 0, 2, SIMNET_CUT);
	CHECK_EQ(drain(net, ids, 4), 1);
	CHECK_EQ(ids[0], 8);
	struct simnet_stats st;
	simnet_get_stats(net, &st);
	CHECK_EQ(st.dropped_cut, 4);
	/* Clogged: delivered, but late. */
	simnet_heal(net);
	struct simnet_config cc = c;
	cc.clog_delay_min_ms = 1000;
	cc.clog_delay_max_ms = 3000;
	simnet_set_faults(net, &cc);
	simnet_partition(net, side, false, SIMNET_CLOGGED);
	for (uint32_t i = 0; i < 50; i++) {
		send_u32(net, 0, 3, i, 0);
		send_u32(net, 0, 1, 100 + i, 0);
	}
	uint64_t t;
	unsigned late = 0, early = 0;
	while ((t = simnet_next_ms(net)) != UINT64_MAX) {
		struct simnet_packet *p = simnet_take(net, t);
		uint32_t id = get_u32(p);
		if (id < 100) {
			CHECK(t >= 1001 && t <= 3020);
			late++;
		} else {
			CHECK(t <= 20);
			early++;
		}
		simnet_packet_free(p);
	}
	CHECK_EQ(late, 50);
	CHECK_EQ(early, 50);
	simnet_destroy(net);
}

static void test_nodes_down(void)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, 5);
	struct simnet_config c = base_cfg(3);
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	CHECK_EQ(send_u32(net, 0, 1, 1, 0), 1); /* in flight to a node that goes down */
	CHECK_EQ(send_u32(net, 1, 2, 2, 0), 1); /* from it */
	CHECK_EQ(send_u32(net, 0, 2, 3, 0), 1);
	simnet_node_down(net, 1);
	CHECK(!simnet_node_is_up(net, 1));
	CHECK_EQ(send_u32(net, 0, 1, 4, 0), 0);
	CHECK_EQ(send_u32(net, 1, 0, 5, 0), 0);
	simnet_node_up(net, 1); /* back before the deliveries: still dropped */
	CHECK_EQ(send_u32(net, 2, 1, 6, 0), 1);
	uint32_t ids[8];
	unsigned n = drain(net, ids, 8);
	CHECK_EQ(n, 2);
	CHECK((ids[0] == 3 && ids[1] == 6) || (ids[0] == 6 && ids[1] == 3));
	struct simnet_stats st;
	simnet_get_stats(net, &st);
	CHECK_EQ(st.dropped_down, 4);
	simnet_destroy(net);
}

/* hold_ms: a message to a node that is down waits for its next run (the
 * driver's frames for a peer without a session), at most hold_ms; the
 * sender going down, or the receiver going down again, drops it. */
static void test_held(void)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, 8);
	struct simnet_config c = base_cfg(3);
	c.hold_ms = 100;
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	simnet_node_down(net, 1);
	CHECK_EQ(send_u32(net, 0, 1, 1, 0), 1);
	CHECK_EQ(send_u32(net, 1, 0, 9, 0), 0); /* a node that is down sends nothing */
	CHECK(simnet_take(net, 50) == NULL);    /* still down: it waits */
	simnet_node_up(net, 1);
	uint32_t ids[8];
	CHECK_EQ(drain(net, ids, 8), 1);
	CHECK_EQ(ids[0], 1);
	/* Past hold_ms: dropped. */
	simnet_node_down(net, 1);
	CHECK_EQ(send_u32(net, 0, 1, 2, 100), 1);
	CHECK(simnet_take(net, 150) == NULL);
	CHECK(simnet_take(net, 250) == NULL);
	simnet_node_up(net, 1);
	CHECK_EQ(drain(net, ids, 8), 0);
	/* Its sender went down: dropped. */
	simnet_node_down(net, 1);
	CHECK_EQ(send_u32(net, 0, 1, 3, 300), 1);
	simnet_node_down(net, 0);
	simnet_node_up(net, 0);
	simnet_node_up(net, 1);
	CHECK_EQ(drain(net, ids, 8), 0);
	/* The receiver's next run went down before it was delivered: dropped. */
	simnet_node_down(net, 1);
	CHECK_EQ(send_u32(net, 2, 1, 4, 400), 1);
	simnet_node_up(net, 1);
	simnet_node_down(net, 1);
	simnet_node_up(net, 1);
	CHECK_EQ(drain(net, ids, 8), 0);
	struct simnet_stats st;
	simnet_get_stats(net, &st);
	CHECK_EQ(st.delivered, 1);
	simnet_destroy(net);
}

static void test_full_and_long(void)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, 6);
	struct simnet_config c = base_cfg(2);
	c.packets_max = 4;
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	for (uint32_t i = 0; i < 4; i++)
		CHECK_EQ(send_u32(net, 0, 1, i, 0), 1);
	CHECK_EQ(send_u32(net, 0, 1, 4, 0), 0);
	struct simnet_stats st;
	simnet_get_stats(net, &st);
	CHECK_EQ(st.dropped_full, 1);
	CHECK_EQ(st.in_flight, 4);
	simnet_destroy(net);

	c = base_cfg(2);
	c.long_delay_ppm = 1000000;
	c.long_delay_max_ms = 5000;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	for (uint32_t i = 0; i < 200; i++)
		send_u32(net, 0, 1, i, 0);
	uint64_t t, maxt = 0;
	while ((t = simnet_next_ms(net)) != UINT64_MAX) {
		simnet_packet_free(simnet_take(net, t));
		maxt = t;
	}
	CHECK(maxt > 1000 && maxt <= 5020);
	simnet_get_stats(net, &st);
	CHECK_EQ(st.long_delayed, 200);
	simnet_destroy(net);

	struct simnet_config bad = base_cfg(0);
	CHECK_EQ(simnet_create(&net, &bad, &rng), -22);
	bad = base_cfg(SIMNET_NODES_MAX + 1);
	CHECK_EQ(simnet_create(&net, &bad, &rng), -22);
	bad = base_cfg(2);
	bad.delay_min_ms = 30;
	CHECK_EQ(simnet_create(&net, &bad, &rng), -22);
}

/* A run with every fault: its delivery trace as a hash. */
static uint64_t run_hash(uint64_t seed)
{
	struct sim_rng rng;
	sim_rng_seed(&rng, seed);
	struct simnet_config c = base_cfg(3);
	c.loss_ppm = 50000;
	c.dup_ppm = 50000;
	c.flip_ppm = 50000;
	c.long_delay_ppm = 10000;
	c.long_delay_max_ms = 500;
	struct simnet *net;
	CHECK_EQ(simnet_create(&net, &c, &rng), 0);
	uint64_t h = 1469598103934665603ull, now = 0;
	for (uint32_t i = 0; i < 2000; i++) {
		now += sim_rng_below(&rng, 3);
		send_u32(net, (unsigned)sim_rng_below(&rng, 3), (unsigned)sim_rng_below(&rng, 3), i, now);
		struct simnet_packet *p;
		while ((p = simnet_take(net, now))) {
			h = (h ^ (p->deliver_ms * 31 + p->id)) * 1099511628211ull;
			for (uint32_t k = 0; k < p->len; k++)
				h = (h ^ p->data[k]) * 1099511628211ull;
			simnet_packet_free(p);
		}
	}
	simnet_destroy(net);
	return h;
}

static void test_determinism(void)
{
	CHECK(run_hash(7) == run_hash(7));
	CHECK(run_hash(7) != run_hash(8));
}

int main(void)
{
	test_fixed_delay_order();
	test_delays_reorder();
	test_loss_dup_flip();
	test_partitions();
	test_nodes_down();
	test_held();
	test_full_and_long();
	test_determinism();
	printf("test_simnet: ok\n");
	return 0;
}
