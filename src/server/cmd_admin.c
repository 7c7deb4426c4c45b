/* cmd_admin.c - connection and server commands: PING, ECHO, AUTH, HELLO,
 * SELECT, QUIT, CLIENT, COMMAND, CONFIG, TIME, DBSIZE, INFO. */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/assert.h"
#include "server/chost.h"
#include "server/cmd_int.h"
#include "server/log.h"
#include "server/server.h"

static bool secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	/* Time independent of where the first difference is. */
	unsigned char diff = alen != blen;
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

void cmd_run_ping(CMD_RUN_ARGS)
{
	if (argc > 2)
		resp_add_error(rb, "ERR wrong number of arguments for 'ping' command");
	else if (argc == 2)
		resp_add_bulk(rb, argv[1].ptr, argv[1].len);
	else
		resp_add_simple(rb, "PONG");
}

void cmd_run_echo(CMD_RUN_ARGS) { resp_add_bulk(rb, argv[1].ptr, argv[1].len); }

/* 0 authenticated, or the error sent. */
static int check_password(struct conn *c, const struct resp_arg *user, const struct resp_arg *pass,
			  struct resp_buf *rb)
{
	const char *want = c->w->cfg->requirepass;
	if (!want[0]) {
		if (user && !resp_arg_is(user, "default")) {
			resp_add_error(rb, "WRONGPASS invalid username-password pair or user is disabled.");
			return -EPERM;
		}
		resp_add_error(rb, "ERR AUTH <password> called without any password configured for the default "
				   "user. Are you sure your configuration is correct?");
		return -EINVAL;
	}
	bool user_ok = !user || resp_arg_is(user, "default");
	if (!user_ok || !secret_equal(pass->ptr, pass->len, want, strlen(want))) {
		log_warn("authentication failed", "id=%llu addr=%s", (unsigned long long)c->id, c->addr);
		resp_add_error(rb, "WRONGPASS invalid username-password pair or user is disabled.");
		return -EPERM;
	}
	c->authed = true;
	return 0;
}

void cmd_run_auth(CMD_RUN_ARGS)
{
	if (argc > 3) {
		resp_add_error(rb, "ERR syntax error");
		return;
	}
	if (check_password(c, argc == 3 ? &argv[1] : NULL, &argv[argc - 1], rb) == 0)
		resp_add_simple(rb, "OK");
}

static bool valid_client_name(const struct resp_arg *a, struct resp_buf *rb)
{
	for (uint32_t i = 0; i < a->len; i++) {
		unsigned char ch = (unsigned char)a->ptr[i];
		if (ch < '!' || ch > '~') {
			resp_add_error(rb, "ERR Client names cannot contain spaces, newlines or special characters.");
			return false;
		}
	}
	if (a->len > NET_NAME_BYTES_MAX) {
		resp_add_errorf(rb, "ERR client name longer than %u bytes", NET_NAME_BYTES_MAX);
		return false;
	}
	return true;
}

static void set_name(struct conn *c, const struct resp_arg *a)
{
	memcpy(c->name, a->ptr, a->len);
	c->name[a->len] = '\0';
}

static void add_kv_str(struct resp_buf *rb, const char *k, const char *v)
{
	resp_add_bulk_str(rb, k);
	resp_add_bulk_str(rb, v);
}

static void reply_hello(struct conn *c, struct resp_buf *rb)
{
	resp_add_map(rb, 7, c->proto);
	add_kv_str(rb, "server", "redis");
	add_kv_str(rb, "version", DYNVME_REDIS_COMPAT_VERSION);
	resp_add_bulk_str(rb, "proto");
	resp_add_int(rb, c->proto);
	resp_add_bulk_str(rb, "id");
	resp_add_int(rb, (int64_t)c->id);
	add_kv_str(rb, "mode", "standalone");
	add_kv_str(rb, "role", "master");
	resp_add_bulk_str(rb, "modules");
	resp_add_array(rb, 0);
}

void cmd_run_hello(CMD_RUN_ARGS)
{
	int64_t proto = c->proto;
	uint32_t i = 1;
	if (argc >= 2) {
		if (resp_arg_i64(&argv[1], &proto)) {
			resp_add_error(rb, "ERR Protocol version is not an integer or out of range");
			return;
		}
		if (proto != 2 && proto != 3) {
			resp_add_error(rb, "NOPROTO unsupported protocol version");
			return;
		}
		i = 2;
	}
	const struct resp_arg *name = NULL;
	for (; i < argc; i++) {
		if (resp_arg_is(&argv[i], "AUTH") && i + 2 < argc) {
			if (check_password(c, &argv[i + 1], &argv[i + 2], rb))
				return;
			i += 2;
		} else if (resp_arg_is(&argv[i], "SETNAME") && i + 1 < argc) {
			name = &argv[++i];
			if (!valid_client_name(name, rb))
				return;
		} else {
			resp_add_errorf(rb, "ERR Syntax error in HELLO option '%.*s'",
					(int)(argv[i].len < 32 ? argv[i].len : 32), argv[i].ptr);
			return;
		}
	}
	if (!c->authed) {
		resp_add_error(rb, "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
				   "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
				   "select the RESP protocol version at the same time");
		return;
	}
	if (name)
		set_name(c, name);
	c->proto = (uint8_t)proto;
	reply_hello(c, rb);
}

void cmd_run_select(CMD_RUN_ARGS)
{
	int64_t db;
	if (resp_arg_i64(&argv[1], &db))
		resp_add_error(rb, "ERR value is not an integer or out of range");
	else if (db != 0)
		resp_add_error(rb, "ERR DB index is out of range");
	else
		resp_add_simple(rb, "OK");
}

void cmd_run_quit(CMD_RUN_ARGS)
{
	resp_add_simple(rb, "OK");
	c->closing = true;
	c->w->maybe_reap = true;
	c->eof = true;
}

void cmd_run_time(CMD_RUN_ARGS)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char s[32], us[32];
	snprintf(s, sizeof(s), "%lld", (long long)ts.tv_sec);
	snprintf(us, sizeof(us), "%ld", ts.tv_nsec / 1000);
	resp_add_array(rb, 2);
	resp_add_bulk_str(rb, s);
	resp_add_bulk_str(rb, us);
}

/* ---- CLIENT ---- */

static void client_info_line(struct conn *x, char *out, size_t len)
{
	uint64_t now = x->w->now_ms;
	snprintf(out, len,
		 "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=N db=0 sub=0 psub=0 ssub=0 "
		 "multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 obl=0 oll=%u omem=%zu tot-mem=%zu "
		 "events=r cmd=%s user=default redir=-1 resp=%u thread=%u\n",
		 (unsigned long long)x->id, x->addr, x->laddr, x->fd, x->name,
		 (unsigned long long)(now - x->created_ms) / 1000, (unsigned long long)(now - x->active_ms) / 1000,
		 x->in_len - x->in_start, x->in_cap - x->in_len, x->pending, x->out.len + x->sending.len,
		 x->in_cap + x->out.cap + x->sending.cap + sizeof(*x), x->last_cmd, x->proto, x->w->idx);
}

void cmd_run_client(CMD_RUN_ARGS)
{
	struct resp_arg *sub = &argv[1];
	char line[768];
	if (resp_arg_is(sub, "SETNAME") && argc == 3) {
		if (valid_client_name(&argv[2], rb)) {
			set_name(c, &argv[2]);
			resp_add_simple(rb, "OK");
		}
	} else if (resp_arg_is(sub, "GETNAME") && argc == 2) {
		if (c->name[0])
			resp_add_bulk_str(rb, c->name);
		else
			resp_add_null(rb, c->proto);
	} else if (resp_arg_is(sub, "ID") && argc == 2) {
		resp_add_int(rb, (int64_t)c->id);
	} else if (resp_arg_is(sub, "INFO") && argc == 2) {
		client_info_line(c, line, sizeof(line));
		resp_add_verbatim(rb, line, strlen(line), c->proto);
	} else if (resp_arg_is(sub, "LIST") && argc == 2) {
		/* The clients of this connection's thread (each thread owns its own). */
		struct resp_buf all;
		resp_buf_init(&all);
		for (struct conn *x = c->w->conns; x; x = x->next) {
			client_info_line(x, line, sizeof(line));
			resp_add_raw(&all, line, strlen(line));
		}
		resp_add_verbatim(rb, all.data ? all.data : "", all.len, c->proto);
		resp_buf_free(&all);
	} else if ((resp_arg_is(sub, "SETINFO") && argc == 4) || resp_arg_is(sub, "NO-EVICT") ||
		   resp_arg_is(sub, "NO-TOUCH")) {
		resp_add_simple(rb, "OK");
	} else {
		resp_add_errorf(rb, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try CLIENT HELP.",
				(int)(sub->len < 32 ? sub->len : 32), sub->ptr);
	}
}

/* ---- COMMAND ---- */

static void command_entry(const struct cmd_def *d, struct resp_buf *rb)
{
	resp_add_array(rb, 10);
	resp_add_bulk_str(rb, d->name);
	resp_add_int(rb, d->arity);
	unsigned nflags = 0;
	const char *flags[3];
	if (d->flags & CMDF_WRITE)
		flags[nflags++] = "write";
	if (d->flags & CMDF_READ)
		flags[nflags++] = "readonly";
	if (d->flags & CMDF_NOAUTH)
		flags[nflags++] = "no_auth";
	resp_add_array(rb, nflags);
	for (unsigned i = 0; i < nflags; i++)
		resp_add_simple(rb, flags[i]);
	resp_add_int(rb, d->first_key);
	resp_add_int(rb, d->last_key);
	resp_add_int(rb, d->step);
	for (int i = 0; i < 4; i++) /* ACL categories, tips, key specs, subcommands */
		resp_add_array(rb, 0);
}

static void command_doc(const struct cmd_def *d, int proto, struct resp_buf *rb)
{
	resp_add_bulk_str(rb, d->name);
	resp_add_map(rb, 3, proto);
	add_kv_str(rb, "summary", d->summary);
	add_kv_str(rb, "since", "1.0.0");
	add_kv_str(rb, "group", d->flags & (CMDF_READ | CMDF_WRITE) ? "string" : "connection");
}

/* COMMAND DOCS [name ...]: a map of name -> {summary, since, group}. */
static void command_docs(struct conn *c, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	unsigned n = 0, total = cmd_count() - 1;
	if (argc == 2) {
		resp_add_map(rb, total, c->proto);
		for (unsigned i = 0; i < total; i++)
			command_doc(cmd_by_index(i), c->proto, rb);
		return;
	}
	for (uint32_t i = 2; i < argc; i++)
		n += cmd_lookup(&argv[i]) != NULL;
	resp_add_map(rb, n, c->proto);
	for (uint32_t i = 2; i < argc; i++) {
		const struct cmd_def *d = cmd_lookup(&argv[i]);
		if (d)
			command_doc(d, c->proto, rb);
	}
}

void cmd_run_command(CMD_RUN_ARGS)
{
	unsigned n = cmd_count() - 1; /* not the "unknown" pseudo-command */
	if (argc == 1 || (argc == 2 && resp_arg_is(&argv[1], "LIST"))) {
		bool list = argc == 2;
		resp_add_array(rb, n);
		for (unsigned i = 0; i < n; i++) {
			if (list)
				resp_add_bulk_str(rb, cmd_by_index(i)->name);
			else
				command_entry(cmd_by_index(i), rb);
		}
	} else if (resp_arg_is(&argv[1], "COUNT") && argc == 2) {
		resp_add_int(rb, n);
	} else if (resp_arg_is(&argv[1], "INFO")) {
		resp_add_array(rb, argc - 2);
		for (uint32_t i = 2; i < argc; i++) {
			const struct cmd_def *d = cmd_lookup(&argv[i]);
			if (d)
				command_entry(d, rb);
			else
				resp_add_null_array(rb, c->proto);
		}
	} else if (resp_arg_is(&argv[1], "DOCS")) {
		command_docs(c, argv, argc, rb);
	} else {
		resp_add_errorf(rb, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
				(int)(argv[1].len < 32 ? argv[1].len : 32), argv[1].ptr);
	}
}

/* ---- CONFIG ---- */

/* Directives Redis clients ask for at connect, with this node's answers. */
static const char *const compat_params[][2] = {
	{"save", ""}, {"appendonly", "no"}, {"databases", "1"}, {"maxmemory", "0"},
	{"maxmemory-policy", "noeviction"}, {"cluster-enabled", "no"},
};

static unsigned config_collect(const struct server_config *cfg, const char *pat, const char *names[],
			       char values[][CONFIG_STR_MAX], unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; config_names[i] && n < max; i++) {
		if (fnmatch(pat, config_names[i], FNM_CASEFOLD) == 0 &&
		    config_get(cfg, config_names[i], values[n], CONFIG_STR_MAX))
			names[n++] = config_names[i];
	}
	for (unsigned i = 0; i < sizeof(compat_params) / sizeof(compat_params[0]) && n < max; i++) {
		if (fnmatch(pat, compat_params[i][0], FNM_CASEFOLD) == 0) {
			names[n] = compat_params[i][0];
			snprintf(values[n++], CONFIG_STR_MAX, "%s", compat_params[i][1]);
		}
	}
	return n;
}

void cmd_run_config(CMD_RUN_ARGS)
{
	if (!resp_arg_is(&argv[1], "GET")) {
		if (resp_arg_is(&argv[1], "SET"))
			resp_add_error(rb, "ERR CONFIG SET is not supported: change the config file or flags and restart");
		else if (resp_arg_is(&argv[1], "RESETSTAT"))
			resp_add_simple(rb, "OK");
		else
			resp_add_errorf(rb, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
					(int)(argv[1].len < 32 ? argv[1].len : 32), argv[1].ptr);
		return;
	}
	if (argc < 3) {
		resp_add_error(rb, "ERR wrong number of arguments for 'config|get' command");
		return;
	}
	/* Room for every parameter twice: the distinct names so far (at most
	 * all of them) and one more pattern's matches (at most all of them),
	 * so no match is ever cut off. */
	unsigned nconfig = 0;
	while (config_names[nconfig])
		nconfig++;
	const unsigned slots = 2 * (nconfig + (unsigned)(sizeof(compat_params) / sizeof(compat_params[0])));
	const char **names = malloc(slots * sizeof(*names));
	char(*values)[CONFIG_STR_MAX] = malloc(slots * CONFIG_STR_MAX);
	if (!values || !names) {
		free(names);
		free(values);
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	unsigned n = 0;
	for (uint32_t i = 2; i < argc; i++) {
		char pat[128];
		snprintf(pat, sizeof(pat), "%.*s", (int)(argv[i].len < 127 ? argv[i].len : 127), argv[i].ptr);
		/* This pattern's matches land at [n, n + got); each one a
		 * pattern before already gave is dropped, the others are moved
		 * down to n (never past the one being read: n <= at). */
		unsigned base = n;
		unsigned got = config_collect(c->w->cfg, pat, names + base, values + base, slots - base);
		for (unsigned at = base; at < base + got; at++) {
			bool dup = false;
			for (unsigned j = 0; j < base && !dup; j++)
				dup = !strcmp(names[j], names[at]);
			if (dup)
				continue;
			DV_ASSERT(n <= at);
			if (n != at) {
				names[n] = names[at];
				memcpy(values[n], values[at], CONFIG_STR_MAX);
			}
			n++;
		}
	}
	resp_add_map(rb, n, c->proto);
	for (unsigned i = 0; i < n; i++)
		add_kv_str(rb, names[i], values[i]);
	free(names);
	free(values);
}

/* ---- DBSIZE, INFO ---- */

enum info_section {
	INFO_SERVER = 1u << 0,
	INFO_CLIENTS = 1u << 1,
	INFO_MEMORY = 1u << 2,
	INFO_PERSISTENCE = 1u << 3,
	INFO_STATS = 1u << 4,
	INFO_REPLICATION = 1u << 5,
	INFO_CPU = 1u << 6,
	INFO_KEYSPACE = 1u << 7,
	INFO_STORAGE = 1u << 8,
	INFO_COMMANDSTATS = 1u << 9,
	INFO_DEFAULT = (1u << 9) - 1,
	INFO_ALL = (1u << 10) - 1,
};

static const struct {
	const char *name;
	uint32_t bit;
} info_names[] = {
	{"server", INFO_SERVER},     {"clients", INFO_CLIENTS},   {"memory", INFO_MEMORY},
	{"persistence", INFO_PERSISTENCE}, {"stats", INFO_STATS}, {"replication", INFO_REPLICATION},
	{"cpu", INFO_CPU},           {"keyspace", INFO_KEYSPACE}, {"storage", INFO_STORAGE},
	{"commandstats", INFO_COMMANDSTATS}, {"default", INFO_DEFAULT}, {"all", INFO_ALL},
	{"everything", INFO_ALL},
};

void cmd_run_stats(CMD_RUN_ARGS)
{
	uint32_t sections = argc == 1 ? INFO_DEFAULT : 0;
	for (uint32_t i = 1; i < argc; i++)
		for (unsigned k = 0; k < sizeof(info_names) / sizeof(info_names[0]); k++)
			if (resp_arg_is(&argv[i], info_names[k].name))
				sections |= info_names[k].bit;
	if (cmd_prepare_ops(cmd, 1) || eop_init(&cmd->ops[0], EOP_STATS, NULL, 0, NULL, 0)) {
		cmd_release_ops(cmd);
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	cmd->flags = sections;
	cmd->ops[0].stats = &cmd->stats;
	cmd->ops[0].cache_stats = &cmd->cache_stats;
	cmd->ops[0].counters = &cmd->counters;
}

/* Single-node mode: live keys. Cluster mode: the keys this node holds a
 * version of in any keyspace (a deleted key's causal tombstone counts
 * until tombstone removal), less the node's own metadata records. */
static uint64_t live_keys(const struct conn *c, const struct store_stats *st)
{
	uint64_t n = st->keys - st->tombstones;
	if (cluster_enabled(&c->w->cfg->cluster))
		n = n > CHOST_META_RECORDS ? n - CHOST_META_RECORDS : 0;
	return n;
}

void cmd_reply_dbsize(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	resp_add_int(rb, (int64_t)live_keys(c, &cmd->stats));
}

static void info_server(struct conn *c, struct resp_buf *o)
{
	const struct server *srv = c->w->srv;
	struct utsname u;
	uname(&u);
	uint64_t up = (c->w->now_ms - srv->start_ms) / 1000;
	resp_add_rawf(o,
			 "# Server\r\nredis_version:%s\r\ndynvme_version:%s\r\nredis_mode:standalone\r\n"
			 "os:%s %s %s\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\nprocess_id:%d\r\n"
			 "run_id:%s\r\ntcp_port:%u\r\nhttp_port:%u\r\nuptime_in_seconds:%llu\r\n"
			 "uptime_in_days:%llu\r\nio_threads_active:%u\r\nexecutable:dynvme\r\n\r\n",
			 DYNVME_REDIS_COMPAT_VERSION, DYNVME_VERSION, u.sysname, u.release, u.machine, (int)getpid(),
			 srv->run_id, srv->port, srv->http_port, (unsigned long long)up,
			 (unsigned long long)up / 86400, srv->nworkers);
}

static void info_stats(struct conn *c, const struct store_stats *st, uint64_t expired, struct resp_buf *o)
{
	const struct server *srv = c->w->srv;
	uint64_t calls = 0, errors = 0, acc = 0, rej = 0, in = 0, out = 0, perr = 0;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct metrics_worker *m = srv->workers[i].m;
		for (unsigned k = 0; k < cmd_count(); k++) {
			calls += metrics_get(&m->calls[k]);
			errors += metrics_get(&m->errors[k]);
		}
		acc += metrics_get(&m->conns_accepted);
		rej += metrics_get(&m->conns_rejected);
		in += metrics_get(&m->bytes_in);
		out += metrics_get(&m->bytes_out);
		perr += metrics_get(&m->protocol_errors);
	}
	resp_add_rawf(o,
		    "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
		    "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\nrejected_connections:%llu\r\n"
		    "expired_keys:%llu\r\nevicted_keys:0\r\nkeyspace_hits:%llu\r\nkeyspace_misses:%llu\r\n"
		    "total_error_replies:%llu\r\nprotocol_errors:%llu\r\n\r\n",
		    (unsigned long long)acc, (unsigned long long)calls, (unsigned long long)in,
		    (unsigned long long)out, (unsigned long long)rej, (unsigned long long)(st->gc_expired + expired),
		    (unsigned long long)st->get_hits, (unsigned long long)(st->gets - st->get_hits),
		    (unsigned long long)errors, (unsigned long long)perr);
}

static void info_storage(const struct store_stats *st, const struct server_config *cfg, struct resp_buf *o)
{
	double wa = st->user_bytes ? (double)st->device_bytes_written / (double)st->user_bytes : 0.0;
	resp_add_rawf(o,
		    "# Storage\r\ndata_path:%s\r\nstore_failed:%d\r\nkeys_indexed:%llu\r\ntombstones:%llu\r\n"
		    "index_bytes:%llu\r\nzones_total:%u\r\nzones_empty:%u\r\nzones_open:%u\r\nzones_full:%u\r\n"
		    "zone_bytes:%llu\r\nputs:%llu\r\ndels:%llu\r\ngets:%llu\r\nbatches:%llu\r\n"
		    "batch_records:%llu\r\nuser_bytes:%llu\r\ndevice_bytes_written:%llu\r\n"
		    "write_amplification:%.3f\r\ngc_bytes_relocated:%llu\r\ngc_zones_reset:%llu\r\n"
		    "corrupt_records:%llu\r\nresolve_reads:%llu\r\nresolve_memo_hits:%llu\r\nmemo_bytes:%llu\r\n"
		    "recovery_us:%llu\r\nrecovered_records:%llu\r\n"
		    "recovery_torn_tails:%u\r\nzone_model:%s\r\nzone_capacity:%llu\r\n"
		    "zone_max_open:%u\r\nzone_max_active:%u\r\nzones_open_limit:%u\r\n"
		    "superblock_log:%d\r\nsuperblock_log_resets:%llu\r\nzones_unusable:%u\r\n"
		    "zones_lost:%u\r\nzones_wp_mismatch:%u\r\n\r\n",
		    cfg->data, st->failed, (unsigned long long)st->keys, (unsigned long long)st->tombstones,
		    (unsigned long long)st->index_bytes, st->zones_total, st->zones_empty, st->zones_open,
		    st->zones_full, (unsigned long long)st->zone_bytes, (unsigned long long)st->puts,
		    (unsigned long long)st->dels, (unsigned long long)st->gets, (unsigned long long)st->batches,
		    (unsigned long long)st->batch_records, (unsigned long long)st->user_bytes,
		    (unsigned long long)st->device_bytes_written, wa, (unsigned long long)st->gc_bytes_relocated,
		    (unsigned long long)st->gc_zones_reset, (unsigned long long)st->corrupt_records,
		    (unsigned long long)st->resolve_reads, (unsigned long long)st->resolve_memo_hits,
		    (unsigned long long)st->memo_bytes,
		    (unsigned long long)st->recovery_us, (unsigned long long)st->recovered_records,
		    st->recovery_torn_tails, st->zone_model ? st->zone_model : "emulated",
		    (unsigned long long)st->zone_cap, st->dev_max_open_zones, st->dev_max_active_zones,
		    st->zones_open_limit, st->sb_log, (unsigned long long)st->sb_log_resets, st->zones_unusable,
		    st->zones_lost, st->zones_wp_mismatch);
}

static void info_commandstats(struct conn *c, struct resp_buf *o)
{
	const struct server *srv = c->w->srv;
	resp_add_rawf(o, "# Commandstats\r\n");
	for (unsigned k = 0; k < cmd_count(); k++) {
		uint64_t calls = 0, usec = 0, errors = 0;
		for (unsigned i = 0; i < srv->nworkers; i++) {
			calls += metrics_get(&srv->workers[i].m->calls[k]);
			usec += metrics_get(&srv->workers[i].m->usec_sum[k]);
			errors += metrics_get(&srv->workers[i].m->errors[k]);
		}
		if (calls)
			resp_add_rawf(o, "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=0,"
				       "failed_calls=%llu\r\n",
				    cmd_by_index(k)->name, (unsigned long long)calls, (unsigned long long)usec,
				    (double)usec / (double)calls, (unsigned long long)errors);
	}
	resp_add_rawf(o, "\r\n");
}

void cmd_reply_info(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	const struct store_stats *st = &cmd->stats;
	const struct server *srv = c->w->srv;
	uint32_t s = cmd->flags;
	struct resp_buf o;
	resp_buf_init(&o);
	if (s & INFO_SERVER)
		info_server(c, &o);
	if (s & INFO_CLIENTS)
		resp_add_rawf(&o, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\nblocked_clients:0\r\n\r\n",
			    atomic_load_explicit(&((struct server *)srv)->clients, memory_order_relaxed),
			    c->w->cfg->maxclients);
	if (s & INFO_MEMORY) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		resp_add_rawf(&o, "# Memory\r\nused_memory:%llu\r\nused_memory_rss:%llu\r\nindex_bytes:%llu\r\n"
				"maxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n",
			    (unsigned long long)st->index_bytes, (unsigned long long)ru.ru_maxrss * 1024ull,
			    (unsigned long long)st->index_bytes);
	}
	if (s & INFO_PERSISTENCE)
		resp_add_rawf(&o, "# Persistence\r\nloading:0\r\naof_enabled:0\r\nrdb_changes_since_last_save:0\r\n"
				"durable_writes:1\r\n\r\n");
	if (s & INFO_STATS)
		info_stats(c, st, cmd->counters.expiry_deleted, &o);
	if (s & INFO_REPLICATION)
		resp_add_rawf(&o, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
	if (s & INFO_CPU) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		resp_add_rawf(&o, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n\r\n",
			    (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, (long)ru.ru_utime.tv_sec,
			    (long)ru.ru_utime.tv_usec);
	}
	if (s & INFO_KEYSPACE) {
		resp_add_rawf(&o, "# Keyspace\r\n");
		if (live_keys(c, st) && !cluster_enabled(&c->w->cfg->cluster)) /* cluster: no per-keyspace count yet */
			resp_add_rawf(&o, "db0:keys=%llu,expires=0,avg_ttl=0\r\n", (unsigned long long)live_keys(c, st));
		resp_add_rawf(&o, "\r\n");
	}
	if (s & INFO_STORAGE) {
		info_storage(st, c->w->cfg, &o);
		const struct vcache_stats *cs = &cmd->cache_stats;
		o.len -= 2; /* continue the section */
		resp_add_rawf(&o, "cache_bytes:%llu\r\ncache_bytes_max:%llu\r\ncache_entries:%llu\r\ncache_hits:%llu\r\n"
				"cache_misses:%llu\r\ncache_evictions:%llu\r\nexpiry_tracked:%llu\r\n"
				"expiry_deleted:%llu\r\nexpiry_untracked:%llu\r\n\r\n",
			    (unsigned long long)cs->bytes, (unsigned long long)cs->bytes_max,
			    (unsigned long long)cs->entries, (unsigned long long)cs->hits,
			    (unsigned long long)cs->misses, (unsigned long long)cs->evictions,
			    (unsigned long long)cmd->counters.expiry_tracked, (unsigned long long)cmd->counters.expiry_deleted,
			    (unsigned long long)cmd->counters.expiry_untracked);
	}
	if (s & INFO_COMMANDSTATS)
		info_commandstats(c, &o);
	/* Redis ends INFO without the last blank line. */
	size_t len = o.len >= 2 ? o.len - 2 : o.len;
	resp_add_verbatim(rb, o.data ? o.data : "", len, c->proto);
	resp_buf_free(&o);
}
