/* metrics.h - counters and latency histograms per network thread, read by
 * the HTTP endpoint and INFO.
 *
 * Contract: each metrics_worker has one writer (its thread), which updates
 * with relaxed atomic load+store (no locked instruction on the request
 * path); readers on other threads load with relaxed atomics and may see a
 * count that is a few requests behind, never a torn value. Latency buckets
 * are powers of two in microseconds, from 16 us (bucket 0) to 2^(4+19) us.
 */
#ifndef DV_SERVER_METRICS_H
#define DV_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "resp/resp.h"
#include "server/vcache.h"
#include "storage/store.h"

#define METRICS_CMDS_MAX 128u
#define METRICS_BUCKETS 20u

struct metrics_worker {
	_Atomic uint64_t calls[METRICS_CMDS_MAX];
	_Atomic uint64_t errors[METRICS_CMDS_MAX];
	_Atomic uint64_t usec_sum[METRICS_CMDS_MAX];
	_Atomic uint64_t hist[METRICS_CMDS_MAX][METRICS_BUCKETS]; /* not cumulative */
	_Atomic uint64_t conns_accepted, conns_rejected, conns_closed;
	_Atomic uint64_t bytes_in, bytes_out, protocol_errors, unknown_commands;
	_Atomic uint64_t pipeline_waits; /* requests that waited for an earlier command of their client */
};

static inline void metrics_add(_Atomic uint64_t *x, uint64_t n)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline uint64_t metrics_get(_Atomic uint64_t *x) { return atomic_load_explicit(x, memory_order_relaxed); }

void metrics_command(struct metrics_worker *m, unsigned cmd, uint64_t ns, bool error);

/* Everything the exposition needs, gathered by the caller. */
struct metrics_view {
	struct metrics_worker *const *workers;
	unsigned nworkers;
	const char *const *cmd_names; /* index = command id */
	unsigned ncmds;
	const struct store_stats *store;
	const struct vcache_stats *cache;
	uint64_t expired_deleted;
	uint64_t clients, uptime_s, engine_in_flight;
};

/* Prometheus text format 0.0.4. 0 or -ENOMEM. */
int metrics_render_prometheus(struct resp_buf *out, const struct metrics_view *v);
/* Sum over workers of one counter field (by pointer offset). */
uint64_t metrics_sum_calls(const struct metrics_view *v, unsigned cmd);

#endif
