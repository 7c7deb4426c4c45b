/* simnet.c - the simulator's packet network (see simnet.h).
 *
 * Messages in flight sit in a binary min-heap on (deliver_ms, id); id is a
 * counter of scheduled copies, so two copies due at the same time come out
 * in the order they were scheduled, whatever the heap's layout. */
#include "sim/simnet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define PACKETS_MAX_DEFAULT 65536u

struct simnet {
	struct simnet_config cfg;
	struct sim_rng *rng;
	uint8_t link[SIMNET_NODES_MAX][SIMNET_NODES_MAX];
	bool up[SIMNET_NODES_MAX];
	uint32_t epoch[SIMNET_NODES_MAX]; /* +1 on every down: in-flight messages of older epochs die */
	struct simnet_packet **heap;
	uint32_t count;
	uint64_t next_id;
	struct simnet_stats stats;
};

static bool config_ok(const struct simnet_config *c)
{
	return c->nodes >= 1 && c->nodes <= SIMNET_NODES_MAX && c->delay_min_ms <= c->delay_max_ms &&
	       c->clog_delay_min_ms <= c->clog_delay_max_ms && c->loss_ppm <= 1000000u &&
	       c->dup_ppm <= 1000000u && c->flip_ppm <= 1000000u && c->long_delay_ppm <= 1000000u;
}

int simnet_create(struct simnet **out, const struct simnet_config *cfg, struct sim_rng *rng)
{
	if (!config_ok(cfg))
		return -EINVAL;
	struct simnet *net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->cfg = *cfg;
	if (net->cfg.packets_max == 0)
		net->cfg.packets_max = PACKETS_MAX_DEFAULT;
	net->heap = calloc(net->cfg.packets_max, sizeof(*net->heap));
	if (!net->heap) {
		free(net);
		return -ENOMEM;
	}
	net->rng = rng;
	for (unsigned i = 0; i < cfg->nodes; i++)
		net->up[i] = true;
	*out = net;
	return 0;
}

void simnet_destroy(struct simnet *net)
{
	if (!net)
		return;
	for (uint32_t i = 0; i < net->count; i++)
		free(net->heap[i]);
	free(net->heap);
	free(net);
}

void simnet_set_faults(struct simnet *net, const struct simnet_config *cfg)
{
	DV_ASSERT(config_ok(cfg) && cfg->nodes == net->cfg.nodes);
	uint32_t max = net->cfg.packets_max;
	net->cfg = *cfg;
	net->cfg.packets_max = max;
}

static bool before(const struct simnet_packet *a, const struct simnet_packet *b)
{
	return a->deliver_ms != b->deliver_ms ? a->deliver_ms < b->deliver_ms : a->id < b->id;
}

static void heap_push(struct simnet *net, struct simnet_packet *p)
{
	DV_ASSERT(net->count < net->cfg.packets_max);
	uint32_t i = net->count++;
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!before(p, net->heap[parent]))
			break;
		net->heap[i] = net->heap[parent];
		i = parent;
	}
	net->heap[i] = p;
}

static struct simnet_packet *heap_pop(struct simnet *net)
{
	DV_ASSERT(net->count > 0);
	struct simnet_packet *top = net->heap[0];
	struct simnet_packet *last = net->heap[--net->count];
	uint32_t i = 0;
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= net->count)
			break;
		if (c + 1 < net->count && before(net->heap[c + 1], net->heap[c]))
			c++;
		if (!before(net->heap[c], last))
			break;
		net->heap[i] = net->heap[c];
		i = c;
	}
	if (net->count > 0)
		net->heap[i] = last;
	return top;
}

static uint64_t draw_delay(struct simnet *net, unsigned from, unsigned to)
{
	const struct simnet_config *c = &net->cfg;
	uint64_t d = sim_rng_range(net->rng, c->delay_min_ms, c->delay_max_ms);
	if (sim_rng_ppm(net->rng, c->long_delay_ppm)) {
		d += sim_rng_range(net->rng, 0, c->long_delay_max_ms);
		net->stats.long_delayed++;
	}
	if (net->link[from][to] == SIMNET_CLOGGED) {
		d += sim_rng_range(net->rng, c->clog_delay_min_ms, c->clog_delay_max_ms);
		net->stats.clogged++;
	}
	return d;
}

/* One copy in flight; false when the network is full. */
static bool schedule(struct simnet *net, unsigned from, unsigned to, const void *data, size_t len,
		     uint64_t now_ms, bool duplicate, bool held)
{
	if (net->count >= net->cfg.packets_max) {
		net->stats.dropped_full++;
		return false;
	}
	struct simnet_packet *p = malloc(sizeof(*p) + len);
	DV_ASSERT(p); /* test-only code: out of memory is fatal here */
	p->from = (uint16_t)from;
	p->to = (uint16_t)to;
	p->len = (uint32_t)len;
	p->sent_ms = now_ms;
	p->deliver_ms = now_ms + draw_delay(net, from, to);
	p->id = net->next_id++;
	p->duplicate = duplicate;
	p->flipped = false;
	p->held = held;
	p->from_epoch = net->epoch[from];
	p->to_epoch = net->epoch[to];
	memcpy(p->data, data, len);
	if (sim_rng_ppm(net->rng, net->cfg.flip_ppm)) {
		p->data[sim_rng_below(net->rng, len)] ^= (uint8_t)sim_rng_range(net->rng, 1, 255);
		p->flipped = true;
		net->stats.flipped++;
	}
	heap_push(net, p);
	net->stats.scheduled++;
	return true;
}

unsigned simnet_send(struct simnet *net, unsigned from, unsigned to, const void *data, size_t len,
		     uint64_t now_ms)
{
	DV_ASSERT(from < net->cfg.nodes && to < net->cfg.nodes && len > 0);
	net->stats.sent++;
	if (!net->up[from] || (!net->up[to] && !net->cfg.hold_ms)) {
		net->stats.dropped_down++;
		return 0;
	}
	if (!net->up[to]) /* waits for the receiver's next run (its epoch now) */
		return schedule(net, from, to, data, len, now_ms, false, true);
	if (net->link[from][to] == SIMNET_CUT) {
		net->stats.dropped_cut++;
		return 0;
	}
	if (sim_rng_ppm(net->rng, net->cfg.loss_ppm)) {
		net->stats.dropped_loss++;
		return 0;
	}
	unsigned copies = schedule(net, from, to, data, len, now_ms, false, false);
	if (copies && sim_rng_ppm(net->rng, net->cfg.dup_ppm)) {
		net->stats.duplicated++;
		copies += schedule(net, from, to, data, len, now_ms, true, false);
	}
	return copies;
}

uint64_t simnet_next_ms(const struct simnet *net)
{
	return net->count ? net->heap[0]->deliver_ms : UINT64_MAX;
}

struct simnet_packet *simnet_take(struct simnet *net, uint64_t now_ms)
{
	/* Bounded: each round removes one message (a held one pushed back is due later). */
	while (net->count > 0 && net->heap[0]->deliver_ms <= now_ms) {
		struct simnet_packet *p = heap_pop(net);
		if (p->held && net->up[p->from] && net->epoch[p->from] == p->from_epoch && !net->up[p->to] &&
		    net->epoch[p->to] == p->to_epoch && now_ms < p->sent_ms + net->cfg.hold_ms) {
			p->deliver_ms = now_ms + 10; /* its receiver is still down: look again later */
			heap_push(net, p);
			continue;
		}
		if (!net->up[p->from] || !net->up[p->to] || net->epoch[p->from] != p->from_epoch ||
		    net->epoch[p->to] != p->to_epoch) {
			net->stats.dropped_down++;
			free(p);
			continue;
		}
		if (net->link[p->from][p->to] == SIMNET_CUT) {
			net->stats.dropped_cut++;
			free(p);
			continue;
		}
		net->stats.delivered++;
		return p;
	}
	return NULL;
}

void simnet_packet_free(struct simnet_packet *p) { free(p); }

void simnet_set_link(struct simnet *net, unsigned from, unsigned to, enum simnet_link state)
{
	DV_ASSERT(from < net->cfg.nodes && to < net->cfg.nodes);
	DV_ASSERT(state == SIMNET_UP || state == SIMNET_CUT || state == SIMNET_CLOGGED);
	net->link[from][to] = (uint8_t)state;
}

enum simnet_link simnet_get_link(const struct simnet *net, unsigned from, unsigned to)
{
	DV_ASSERT(from < net->cfg.nodes && to < net->cfg.nodes);
	return (enum simnet_link)net->link[from][to];
}

void simnet_partition(struct simnet *net, const bool *side, bool one_way, enum simnet_link state)
{
	for (unsigned i = 0; i < net->cfg.nodes; i++)
		for (unsigned j = 0; j < net->cfg.nodes; j++)
			if (side[i] && !side[j]) {
				simnet_set_link(net, i, j, state);
				if (!one_way)
					simnet_set_link(net, j, i, state);
			}
}

void simnet_heal(struct simnet *net) { memset(net->link, 0, sizeof(net->link)); }

void simnet_node_down(struct simnet *net, unsigned node)
{
	DV_ASSERT(node < net->cfg.nodes);
	if (net->up[node]) {
		net->up[node] = false;
		net->epoch[node]++;
	}
}

void simnet_node_up(struct simnet *net, unsigned node)
{
	DV_ASSERT(node < net->cfg.nodes);
	net->up[node] = true;
}

bool simnet_node_is_up(const struct simnet *net, unsigned node)
{
	DV_ASSERT(node < net->cfg.nodes);
	return net->up[node];
}

void simnet_get_stats(const struct simnet *net, struct simnet_stats *out)
{
	*out = net->stats;
	out->in_flight = net->count;
}
