/* metrics.c - per-thread counters and their Prometheus exposition. */
#include "server/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "base/assert.h"

void metrics_command(struct metrics_worker *m, unsigned cmd, uint64_t ns, bool error)
{
	DV_ASSERT(cmd < METRICS_CMDS_MAX);
	uint64_t us = ns / 1000;
	unsigned b = 0;
	while (b + 1 < METRICS_BUCKETS && us >= (16ull << b))
		b++;
	metrics_add(&m->calls[cmd], 1);
	metrics_add(&m->usec_sum[cmd], us);
	metrics_add(&m->hist[cmd][b], 1);
	if (error)
		metrics_add(&m->errors[cmd], 1);
}

uint64_t metrics_sum_calls(const struct metrics_view *v, unsigned cmd)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < v->nworkers; i++)
		n += metrics_get(&v->workers[i]->calls[cmd]);
	return n;
}

/* Sum of one per-worker counter (given by its offset in the struct). */
static uint64_t sum_field(const struct metrics_view *v, size_t off)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < v->nworkers; i++)
		n += metrics_get((_Atomic uint64_t *)((char *)v->workers[i] + off));
	return n;
}

static int render_commands(struct resp_buf *out, const struct metrics_view *v)
{
	int err = resp_add_rawf(out, "# HELP dynvme_commands_total Commands executed, by command.\n"
			    "# TYPE dynvme_commands_total counter\n");
	for (unsigned k = 0; k < v->ncmds && !err; k++)
		err = resp_add_rawf(out, "dynvme_commands_total{cmd=\"%s\"} %llu\n", v->cmd_names[k],
			   (unsigned long long)metrics_sum_calls(v, k));
	err |= resp_add_rawf(out, "# HELP dynvme_command_errors_total Commands answered with an error, by command.\n"
			 "# TYPE dynvme_command_errors_total counter\n");
	for (unsigned k = 0; k < v->ncmds && !err; k++)
		err = resp_add_rawf(out, "dynvme_command_errors_total{cmd=\"%s\"} %llu\n", v->cmd_names[k],
			   (unsigned long long)sum_field(v, offsetof(struct metrics_worker, errors[k])));
	err |= resp_add_rawf(out, "# HELP dynvme_command_latency_seconds Time from request parsed to reply written.\n"
			 "# TYPE dynvme_command_latency_seconds histogram\n");
	for (unsigned k = 0; k < v->ncmds && !err; k++) {
		uint64_t calls = metrics_sum_calls(v, k);
		if (!calls)
			continue;
		uint64_t cum = 0;
		for (unsigned b = 0; b < METRICS_BUCKETS && !err; b++) {
			cum += sum_field(v, offsetof(struct metrics_worker, hist[k][b]));
			if (b + 1 < METRICS_BUCKETS)
				err = resp_add_rawf(out, "dynvme_command_latency_seconds_bucket{cmd=\"%s\",le=\"%g\"} %llu\n",
					   v->cmd_names[k], (double)(16ull << b) / 1e6, (unsigned long long)cum);
		}
		err |= resp_add_rawf(out, "dynvme_command_latency_seconds_bucket{cmd=\"%s\",le=\"+Inf\"} %llu\n",
			    v->cmd_names[k], (unsigned long long)cum);
		err |= resp_add_rawf(out, "dynvme_command_latency_seconds_sum{cmd=\"%s\"} %.6f\n", v->cmd_names[k],
			    (double)sum_field(v, offsetof(struct metrics_worker, usec_sum[k])) / 1e6);
		err |= resp_add_rawf(out, "dynvme_command_latency_seconds_count{cmd=\"%s\"} %llu\n", v->cmd_names[k],
			    (unsigned long long)cum);
	}
	return err ? -ENOMEM : 0;
}

#define COUNTER(name, help, value)                                                                   \
	resp_add_rawf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n", (unsigned long long)(value))
#define GAUGE(name, help, value)                                                                     \
	resp_add_rawf(out, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %llu\n", (unsigned long long)(value))

int metrics_render_prometheus(struct resp_buf *out, const struct metrics_view *v)
{
	const struct store_stats *st = v->store;
	int err = render_commands(out, v);
	err |= GAUGE("dynvme_connected_clients", "Client connections open.", v->clients);
	err |= COUNTER("dynvme_connections_accepted_total", "Client connections accepted.",
		       sum_field(v, offsetof(struct metrics_worker, conns_accepted)));
	err |= COUNTER("dynvme_connections_rejected_total", "Connections refused (maxclients, protected mode).",
		       sum_field(v, offsetof(struct metrics_worker, conns_rejected)));
	err |= COUNTER("dynvme_protocol_errors_total", "Requests refused as malformed or over limits.",
		       sum_field(v, offsetof(struct metrics_worker, protocol_errors)));
	err |= COUNTER("dynvme_pipeline_waits_total",
		       "Requests that waited for an earlier command of their client on the same key (read-your-writes).",
		       sum_field(v, offsetof(struct metrics_worker, pipeline_waits)));
	err |= COUNTER("dynvme_net_input_bytes_total", "Bytes received from clients.",
		       sum_field(v, offsetof(struct metrics_worker, bytes_in)));
	err |= COUNTER("dynvme_net_output_bytes_total", "Bytes sent to clients.",
		       sum_field(v, offsetof(struct metrics_worker, bytes_out)));
	err |= GAUGE("dynvme_uptime_seconds", "Seconds since start.", v->uptime_s);
	err |= GAUGE("dynvme_engine_ops_in_flight", "Store operations handed to the engine, not back yet.",
		     v->engine_in_flight);
	err |= GAUGE("dynvme_store_keys", "Live keys (index entries less tombstones).", st->keys - st->tombstones);
	err |= GAUGE("dynvme_store_tombstones", "Deleted keys still indexed.", st->tombstones);
	err |= GAUGE("dynvme_store_index_bytes", "RAM used by the key index.", st->index_bytes);
	err |= COUNTER("dynvme_store_puts_total", "Durable puts.", st->puts);
	err |= COUNTER("dynvme_store_dels_total", "Durable deletes.", st->dels);
	err |= COUNTER("dynvme_store_gets_total", "Reads.", st->gets);
	err |= COUNTER("dynvme_store_get_hits_total", "Reads that found a live value.", st->get_hits);
	err |= COUNTER("dynvme_store_batches_total", "Group-commit writes.", st->batches);
	err |= COUNTER("dynvme_store_batch_records_total", "Records written by group commits.", st->batch_records);
	err |= COUNTER("dynvme_store_user_bytes_total", "Record bytes acknowledged.", st->user_bytes);
	err |= COUNTER("dynvme_store_device_bytes_written_total", "Bytes written to the device.",
		       st->device_bytes_written);
	err |= COUNTER("dynvme_store_gc_bytes_relocated_total", "Bytes moved by garbage collection.",
		       st->gc_bytes_relocated);
	err |= COUNTER("dynvme_store_gc_zones_reset_total", "Zones reset by garbage collection.", st->gc_zones_reset);
	err |= COUNTER("dynvme_store_corrupt_records_total", "Records that failed their checksum.",
		       st->corrupt_records);
	err |= GAUGE("dynvme_store_zones_empty", "Empty zones.", st->zones_empty);
	err |= GAUGE("dynvme_store_zones_open", "Open zones.", st->zones_open);
	err |= GAUGE("dynvme_store_zones_full", "Full zones.", st->zones_full);
	err |= GAUGE("dynvme_store_zone_bytes", "Bytes per zone.", st->zone_bytes);
	err |= GAUGE("dynvme_store_failed", "1 when the device failed and writes are refused.", st->failed);
	err |= COUNTER("dynvme_cache_hits_total", "GETs answered from the value cache.", v->cache->hits);
	err |= COUNTER("dynvme_cache_misses_total", "GETs the value cache could not answer.", v->cache->misses);
	err |= COUNTER("dynvme_cache_evictions_total", "Values evicted from the cache.", v->cache->evictions);
	err |= GAUGE("dynvme_cache_bytes", "RAM held by the value cache.", v->cache->bytes);
	err |= COUNTER("dynvme_expired_keys_total", "Keys deleted by active expiry.", v->expired_deleted);
	err |= GAUGE("dynvme_store_recovery_microseconds", "Time the last start spent in recovery.",
		     st->recovery_us);
	return err ? -ENOMEM : 0;
}
