/* cmd_server.c - server commands: DBSIZE, INFO, FLUSHDB, FLUSHALL,
 * COMMAND, CONFIG, TIME, FUNCTION.
 *
 * FLUSHDB and FLUSHALL (ASYNC and SYNC alike: both return once it is
 * durable) are the store's FLUSH (store.h): every key gone at once, O(1) on
 * the device, before +OK; the node has one database, so they are the same.
 * A data file of the 0.3 layout refuses them (keymap.h). In cluster mode
 * they are the cluster's flush (node.h: every node makes a durable flush
 * point before +OK) of the selected keyspace (FLUSHDB) or of every one
 * (FLUSHALL); a timeout is indeterminate ("the flush may or may not be
 * complete"). DBSIZE in cluster mode is the cluster's estimate of the
 * selected keyspace's keys (node.h: COUNT).
 * CONFIG SET changes the directives that can change at run time (timeout,
 * auth-timeout, request-timeout, max-pipeline, log-level: struct
 * srv_runtime), takes the values Redis clients set of the parameters dynvme
 * keeps fixed (save "", appendonly no, ...) when they are those values,
 * refuses Redis's own parameters that cannot change at run time (daemonize,
 * io-threads, dir, ...: redis_immutable_params) with Redis's "can't set
 * immutable (protected) config", and answers everything else with Redis's
 * errors.
 * FUNCTION: there is no scripting: FLUSH, LIST, DELETE and KILL answer as
 * Redis does for the empty set of functions (the Redis test harness and
 * clients call them), the others (DUMP, LOAD, RESTORE, STATS) say so.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
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

static void add_kv_str(struct resp_buf *rb, const char *k, const char *v)
{
	resp_add_bulk_str(rb, k);
	resp_add_bulk_str(rb, v);
}

/* ---- FLUSHDB, FLUSHALL ---- */

static void run_flush(CMD_RUN_ARGS)
{
	if (argc == 2 && !resp_arg_is(&argv[1], "ASYNC") && !resp_arg_is(&argv[1], "SYNC")) {
		resp_add_error(rb, "ERR syntax error");
		return;
	}
	if (argc > 2) {
		resp_add_error(rb, "ERR syntax error");
		return;
	}
	bool all = cmd->def->name[5] == 'a';
	if (cmd_cluster_mode(c)) {
		struct eop *e = cmd_prepare_keyless(cmd, EOP_FLUSH, rb);
		if (e)
			e->arg = all; /* engine.h: every keyspace, or the selected one */
		return;
	}
	if (cmd_key_prefix(c) < 0) {
		resp_add_errorf(rb, "ERR %s is not supported on a data file of dynvme 0.3 (keys stored without the "
				    "layout byte): start on a new data file",
				all ? "FLUSHALL" : "FLUSHDB");
		return;
	}
	cmd_prepare_keyless(cmd, EOP_FLUSH, rb);
}

static void reply_flush(CMD_REPLY_ARGS)
{
	if (!cmd_first_error(cmd, rb))
		resp_add_simple(rb, "OK");
}

/* ---- TIME ---- */

static void run_time(CMD_RUN_ARGS)
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

/* ---- COMMAND ---- */

/* What redis-server 7.0.15's COMMAND INFO gives each command dynvme shares
 * with it, and each subcommand of its containers ("client|kill"): its
 * flags, ACL categories and tips (space-separated words, in Redis's order),
 * so that a client reading them (read-only routing, "fast", request
 * policies, COMMAND LIST FILTERBY ACLCAT) sees Redis's. Generated from a
 * real redis-server 7.0's COMMAND reply (CLIENT SETINFO and NO-TOUCH: Redis
 * 7.2's command files); key specs are not given (empty). A command not
 * listed (DYN.*) gets its flags and categories from the table row (cmd.h:
 * implied_flags). */
static const struct cmd_container *container_of(const struct cmd_def *d);

struct redis_info {
	const char *name, *flags, *acl, *tips;
};
static const struct redis_info redis_infos[] = {
	{"append", "write denyoom fast", "@write @string @fast", ""},
	{"auth", "noscript loading stale fast no_auth allow_busy", "@fast @connection", ""},
	{"bitcount", "readonly", "@read @bitmap @slow", ""},
	{"client", "", "@slow", ""},
	{"client|caching", "noscript loading stale", "@slow @connection", ""},
	{"client|getname", "noscript loading stale", "@slow @connection", ""},
	{"client|getredir", "noscript loading stale", "@slow @connection", ""},
	{"client|help", "loading stale", "@slow @connection", ""},
	{"client|id", "noscript loading stale", "@slow @connection", ""},
	{"client|info", "noscript loading stale", "@slow @connection", "nondeterministic_output"},
	{"client|kill", "admin noscript loading stale", "@admin @slow @dangerous @connection", ""},
	{"client|list", "admin noscript loading stale", "@admin @slow @dangerous @connection", "nondeterministic_output"},
	{"client|no-evict", "admin noscript loading stale", "@admin @slow @dangerous @connection", ""},
	{"client|no-touch", "noscript loading stale", "@slow @connection", ""}, /* Redis 7.2's */
	{"client|pause", "admin noscript loading stale", "@admin @slow @dangerous @connection", ""},
	{"client|reply", "noscript loading stale", "@slow @connection", ""},
	{"client|setinfo", "noscript loading stale", "@slow @connection", ""}, /* Redis 7.2's */
	{"client|setname", "noscript loading stale", "@slow @connection", ""},
	{"client|tracking", "noscript loading stale", "@slow @connection", ""},
	{"client|trackinginfo", "noscript loading stale", "@slow @connection", ""},
	{"client|unblock", "admin noscript loading stale", "@admin @slow @dangerous @connection", ""},
	{"client|unpause", "admin noscript loading stale", "@admin @slow @dangerous @connection", ""},
	{"cluster", "", "@slow", ""},
	{"cluster|addslots", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|addslotsrange", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|bumpepoch", "admin stale no_async_loading", "@admin @slow @dangerous", "nondeterministic_output"},
	{"cluster|count-failure-reports", "admin stale", "@admin @slow @dangerous", "nondeterministic_output"},
	{"cluster|countkeysinslot", "stale", "@slow", ""},
	{"cluster|delslots", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|delslotsrange", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|failover", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|flushslots", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|forget", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|getkeysinslot", "stale", "@slow", "nondeterministic_output"},
	{"cluster|help", "loading stale", "@slow", ""},
	{"cluster|info", "stale", "@slow", "nondeterministic_output"},
	{"cluster|keyslot", "stale", "@slow", ""},
	{"cluster|links", "stale", "@slow", "nondeterministic_output"},
	{"cluster|meet", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|myid", "stale", "@slow", ""},
	{"cluster|nodes", "stale", "@slow", "nondeterministic_output"},
	{"cluster|replicas", "admin stale", "@admin @slow @dangerous", "nondeterministic_output"},
	{"cluster|replicate", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|reset", "admin noscript stale", "@admin @slow @dangerous", ""},
	{"cluster|saveconfig", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|set-config-epoch", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|setslot", "admin stale no_async_loading", "@admin @slow @dangerous", ""},
	{"cluster|shards", "stale", "@slow", "nondeterministic_output"},
	{"cluster|slaves", "admin stale", "@admin @slow @dangerous", "nondeterministic_output"},
	{"cluster|slots", "stale", "@slow", "nondeterministic_output"},
	{"command", "loading stale", "@slow @connection", "nondeterministic_output_order"},
	{"command|count", "loading stale", "@slow @connection", ""},
	{"command|docs", "loading stale", "@slow @connection", "nondeterministic_output_order"},
	{"command|getkeys", "loading stale", "@slow @connection", ""},
	{"command|getkeysandflags", "loading stale", "@slow @connection", ""},
	{"command|help", "loading stale", "@slow @connection", ""},
	{"command|info", "loading stale", "@slow @connection", "nondeterministic_output_order"},
	{"command|list", "loading stale", "@slow @connection", "nondeterministic_output_order"},
	{"config", "", "@slow", ""},
	{"config|get", "admin noscript loading stale", "@admin @slow @dangerous", ""},
	{"config|help", "loading stale", "@slow", ""},
	{"config|resetstat", "admin noscript loading stale", "@admin @slow @dangerous", ""},
	{"config|rewrite", "admin noscript loading stale", "@admin @slow @dangerous", ""},
	{"config|set", "admin noscript loading stale", "@admin @slow @dangerous",
	 "request_policy:all_nodes response_policy:all_succeeded"},
	{"copy", "write denyoom", "@keyspace @write @slow", ""},
	{"dbsize", "readonly fast", "@keyspace @read @fast", "request_policy:all_shards response_policy:agg_sum"},
	{"decr", "write denyoom fast", "@write @string @fast", ""},
	{"decrby", "write denyoom fast", "@write @string @fast", ""},
	{"del", "write", "@keyspace @write @slow", "request_policy:multi_shard response_policy:agg_sum"},
	{"echo", "loading stale fast", "@fast @connection", ""},
	{"exists", "readonly fast", "@keyspace @read @fast", "request_policy:multi_shard response_policy:agg_sum"},
	{"expire", "write fast", "@keyspace @write @fast", ""},
	{"expireat", "write fast", "@keyspace @write @fast", ""},
	{"expiretime", "readonly fast", "@keyspace @read @fast", ""},
	{"flushall", "write", "@keyspace @write @slow @dangerous", "request_policy:all_shards response_policy:all_succeeded"},
	{"flushdb", "write", "@keyspace @write @slow @dangerous", "request_policy:all_shards response_policy:all_succeeded"},
	{"function", "", "@slow", ""},
	{"function|delete", "write noscript", "@write @slow @scripting",
	 "request_policy:all_shards response_policy:all_succeeded"},
	{"function|dump", "noscript", "@slow @scripting", ""},
	{"function|flush", "write noscript", "@write @slow @scripting",
	 "request_policy:all_shards response_policy:all_succeeded"},
	{"function|help", "loading stale", "@slow @scripting", ""},
	{"function|kill", "noscript allow_busy", "@slow @scripting",
	 "request_policy:all_shards response_policy:one_succeeded"},
	{"function|list", "noscript", "@slow @scripting", "nondeterministic_output_order"},
	{"function|load", "write denyoom noscript", "@write @slow @scripting",
	 "request_policy:all_shards response_policy:all_succeeded"},
	{"function|restore", "write denyoom noscript", "@write @slow @scripting",
	 "request_policy:all_shards response_policy:all_succeeded"},
	{"function|stats", "noscript allow_busy", "@slow @scripting",
	 "nondeterministic_output request_policy:all_shards response_policy:special"},
	{"get", "readonly fast", "@read @string @fast", ""},
	{"getbit", "readonly fast", "@read @bitmap @fast", ""},
	{"getdel", "write fast", "@write @string @fast", ""},
	{"getex", "write fast", "@write @string @fast", ""},
	{"getrange", "readonly", "@read @string @slow", ""},
	{"getset", "write denyoom fast", "@write @string @fast", ""},
	{"hello", "noscript loading stale fast no_auth allow_busy", "@fast @connection", ""},
	{"incr", "write denyoom fast", "@write @string @fast", ""},
	{"incrby", "write denyoom fast", "@write @string @fast", ""},
	{"incrbyfloat", "write denyoom fast", "@write @string @fast", ""},
	{"info", "loading stale", "@slow @dangerous", "nondeterministic_output request_policy:all_shards response_policy:special"},
	{"keys", "readonly", "@keyspace @read @slow @dangerous", "request_policy:all_shards nondeterministic_output_order"},
	{"lcs", "readonly", "@read @string @slow", ""},
	{"mget", "readonly fast", "@read @string @fast", "request_policy:multi_shard"},
	{"mset", "write denyoom", "@write @string @slow", "request_policy:multi_shard response_policy:all_succeeded"},
	{"msetnx", "write denyoom", "@write @string @slow", "request_policy:multi_shard response_policy:agg_min"},
	{"object", "", "@slow", ""},
	{"object|encoding", "readonly", "@keyspace @read @slow", "nondeterministic_output"},
	{"object|freq", "readonly", "@keyspace @read @slow", "nondeterministic_output"},
	{"object|help", "loading stale", "@keyspace @slow", ""},
	{"object|idletime", "readonly", "@keyspace @read @slow", "nondeterministic_output"},
	{"object|refcount", "readonly", "@keyspace @read @slow", "nondeterministic_output"},
	{"persist", "write fast", "@keyspace @write @fast", ""},
	{"pexpire", "write fast", "@keyspace @write @fast", ""},
	{"pexpireat", "write fast", "@keyspace @write @fast", ""},
	{"pexpiretime", "readonly fast", "@keyspace @read @fast", ""},
	{"ping", "fast", "@fast @connection", "request_policy:all_shards response_policy:all_succeeded"},
	{"psetex", "write denyoom", "@write @string @slow", ""},
	{"pttl", "readonly fast", "@keyspace @read @fast", "nondeterministic_output"},
	{"quit", "noscript loading stale fast no_auth allow_busy", "@fast @connection", ""},
	{"randomkey", "readonly", "@keyspace @read @slow", "request_policy:all_shards nondeterministic_output"},
	{"readonly", "loading stale fast", "@fast @connection", ""},
	{"readwrite", "loading stale fast", "@fast @connection", ""},
	{"rename", "write", "@keyspace @write @slow", ""},
	{"renamenx", "write fast", "@keyspace @write @fast", ""},
	{"scan", "readonly", "@keyspace @read @slow", "nondeterministic_output request_policy:special"},
	{"select", "loading stale fast", "@fast @connection", ""},
	{"set", "write denyoom", "@write @string @slow", ""},
	{"setbit", "write denyoom", "@write @bitmap @slow", ""},
	{"setex", "write denyoom", "@write @string @slow", ""},
	{"setnx", "write denyoom fast", "@write @string @fast", ""},
	{"setrange", "write denyoom", "@write @string @slow", ""},
	{"strlen", "readonly fast", "@read @string @fast", ""},
	{"substr", "readonly", "@read @string @slow", ""},
	{"time", "loading stale fast", "@fast", "nondeterministic_output"},
	{"touch", "readonly fast", "@keyspace @read @fast", "request_policy:multi_shard response_policy:agg_sum"},
	{"ttl", "readonly fast", "@keyspace @read @fast", "nondeterministic_output"},
	{"type", "readonly fast", "@keyspace @read @fast", ""},
	{"unlink", "write fast", "@keyspace @write @fast", "request_policy:multi_shard response_policy:agg_sum"},
};

static const struct redis_info *redis_info_of(const char *name)
{
	for (unsigned i = 0; i < sizeof(redis_infos) / sizeof(redis_infos[0]); i++)
		if (!strcmp(redis_infos[i].name, name))
			return &redis_infos[i];
	return NULL;
}

/* A command, or one subcommand of a container (sub != NULL), under the
 * name COMMAND INFO and COMMAND LIST give it: "get", "client|kill". */
struct cmd_entry {
	const struct cmd_def *d;
	const struct cmd_sub *sub;
	char name[64]; /* command names are at most 16 bytes (cmd.c), subcommands' 15 */
};

static void entry_init(struct cmd_entry *e, const struct cmd_def *d, const struct cmd_sub *sub)
{
	e->d = d;
	e->sub = sub;
	int n = snprintf(e->name, sizeof(e->name), "%s%s%s", d->name, sub ? "|" : "", sub ? sub->name : "");
	DV_ASSERT(n > 0 && (size_t)n < sizeof(e->name));
	for (char *p = e->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* Flags and ACL categories of a command Redis does not have (DYN.*), from
 * its table row as Redis's setImplicitACLCategories derives them: write
 * gives @write, readonly @read, and a command not flagged fast @slow. */
static void implied_flags(const struct cmd_def *d, char *flags, size_t flen, char *acl, size_t alen)
{
	bool w = d->flags & CMDF_WRITE, r = (d->flags & CMDF_READ) && !w;
	snprintf(flags, flen, "%s%s%s", w ? "write " : "", r ? "readonly " : "", d->flags & CMDF_NOAUTH ? "no_auth" : "");
	snprintf(acl, alen, "%s%s@slow", w ? "@write " : "", r ? "@read " : "");
}

/* COMMAND LIST FILTERBY ACLCAT cat: whether the entry is in category cat
 * (Redis's ACLGetCommandCategoryFlagByName: no '@', any case). */
static bool entry_in_category(const struct cmd_entry *e, const struct resp_arg *cat)
{
	const struct redis_info *ri = redis_info_of(e->name);
	char flags[64], implied[64];
	const char *acl = ri ? ri->acl : NULL;
	if (!ri) {
		if (e->sub) /* every subcommand of a container is in redis_infos */
			return false;
		implied_flags(e->d, flags, sizeof(flags), implied, sizeof(implied));
		acl = implied;
	}
	for (const char *p = acl; *p;) {
		size_t len = strcspn(p, " ");
		if (len > 1 && p[0] == '@' && len - 1 == cat->len && !strncasecmp(p + 1, cat->ptr, cat->len))
			return true;
		p += len + (p[len] == ' ');
	}
	return false;
}

/* A set of n (RESP3 "~n", as Redis's COMMAND replies; RESP2 an array). */
static void add_set(struct resp_buf *rb, size_t n, int proto)
{
	if (proto == 3)
		resp_add_rawf(rb, "~%zu\r\n", n);
	else
		resp_add_array(rb, n);
}

/* The space-separated words of w as a set of simple (or bulk) strings. */
static void add_words(struct resp_buf *rb, const char *w, bool bulk, int proto)
{
	size_t n = 0;
	for (const char *p = w; *p;) {
		size_t len = strcspn(p, " ");
		n += len > 0;
		p += len + (p[len] == ' ');
	}
	add_set(rb, n, proto);
	for (const char *p = w; *p;) {
		size_t len = strcspn(p, " ");
		if (len) {
			char word[64];
			DV_ASSERT(len < sizeof(word));
			memcpy(word, p, len);
			word[len] = '\0';
			if (bulk)
				resp_add_bulk(rb, word, len);
			else
				resp_add_simple(rb, word);
		}
		p += len + (p[len] == ' ');
	}
}

/* Whether OBJECT's subcommand sub takes a key (all but HELP). */
static bool sub_has_key(const struct cmd_def *d, const struct cmd_sub *sub)
{
	return container_of(d) == &cmd_container_object && strcmp(sub->name, "HELP") != 0;
}

static void command_entry_of(const struct cmd_entry *e, int proto, struct resp_buf *rb)
{
	const struct cmd_def *d = e->d;
	const struct redis_info *ri = redis_info_of(e->name);
	char flags[64], acl[64];
	if (!ri)
		implied_flags(d, flags, sizeof(flags), acl, sizeof(acl));
	resp_add_array(rb, 10);
	resp_add_bulk_str(rb, e->name);
	resp_add_int(rb, e->sub ? e->sub->arity : d->arity);
	add_words(rb, ri ? ri->flags : flags, false, proto);
	/* A container (OBJECT, CLIENT, ...) has its keys in its subcommands:
	 * Redis gives it 0 0 0 (OBJECT's row keeps 2 2 1 for its subcommands
	 * and COMMAND GETKEYS). */
	const struct cmd_container *ct = container_of(d);
	bool keys = e->sub ? sub_has_key(d, e->sub) : ct == NULL;
	resp_add_int(rb, keys ? d->first_key : 0);
	resp_add_int(rb, keys ? d->last_key : 0);
	resp_add_int(rb, keys ? d->step : 0);
	add_words(rb, ri ? ri->acl : acl, false, proto);
	add_words(rb, ri ? ri->tips : "", true, proto);
	add_set(rb, 0, proto); /* key specs */
	if (e->sub || !ct) {
		add_set(rb, 0, proto); /* subcommands: Redis's empty set */
		return;
	}
	resp_add_array(rb, ct->n); /* Redis: an array of their entries */
	for (unsigned i = 0; i < ct->n; i++) {
		struct cmd_entry se;
		entry_init(&se, d, &ct->subs[i]);
		command_entry_of(&se, proto, rb);
	}
}

static void command_entry(const struct cmd_def *d, int proto, struct resp_buf *rb)
{
	struct cmd_entry e;
	entry_init(&e, d, NULL);
	command_entry_of(&e, proto, rb);
}

/* COMMAND INFO's and DOCS's lookup of a name (Redis's
 * lookupCommandBySds): "get", or "container|subcommand" in any case;
 * false for anything else ("get|x", "client|kill|x"). */
static bool entry_lookup(const struct resp_arg *name, struct cmd_entry *e)
{
	char *bar = memchr(name->ptr, '|', name->len);
	struct resp_arg top = {.ptr = name->ptr, .len = bar ? (uint32_t)(bar - name->ptr) : name->len};
	const struct cmd_def *d = cmd_lookup(&top);
	if (!d)
		return false;
	if (!bar) {
		entry_init(e, d, NULL);
		return true;
	}
	const struct cmd_container *ct = container_of(d);
	struct resp_arg sub = {.ptr = bar + 1, .len = name->len - top.len - 1};
	for (unsigned i = 0; ct && i < ct->n; i++) {
		if (strlen(ct->subs[i].name) == sub.len && resp_arg_is(&sub, ct->subs[i].name)) {
			entry_init(e, d, &ct->subs[i]);
			return true;
		}
	}
	return false;
}

static const char *group_of(const struct cmd_def *d)
{
	const struct cmd_family *f[] = {&cmd_family_string, &cmd_family_keyspace, &cmd_family_server, &cmd_family_conn,
					&cmd_family_dyn};
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (d >= f[i]->defs && d < f[i]->defs + f[i]->count)
			return f[i]->group;
	return "server";
}

static void command_doc(const struct cmd_def *d, int proto, struct resp_buf *rb)
{
	resp_add_bulk_str(rb, d->name);
	resp_add_map(rb, 3, proto);
	add_kv_str(rb, "summary", d->summary);
	add_kv_str(rb, "since", "1.0.0");
	add_kv_str(rb, "group", group_of(d));
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

/* COMMAND GETKEYS command arg...: the keys by the command's key spec
 * (first, last, step: COMMAND INFO's), Redis's errors. A container's
 * subcommand is looked up first, as Redis's lookupCommand does: an unknown
 * one is an invalid command, and only OBJECT's (HELP aside) have a key. */
static void command_getkeys(struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	const struct cmd_def *d = cmd_lookup(&argv[2]);
	uint32_t n = argc - 2;
	const struct cmd_container *ct = d ? container_of(d) : NULL;
	const struct cmd_sub *sub = NULL;
	if (ct && n >= 2) {
		for (unsigned i = 0; i < ct->n && !sub; i++)
			if (resp_arg_is(&argv[3], ct->subs[i].name))
				sub = &ct->subs[i];
		if (!sub)
			d = NULL;
	}
	if (!d) {
		resp_add_error(rb, "ERR Invalid command specified");
		return;
	}
	if (d->first_key <= 0 || (sub && (ct != &cmd_container_object || strcmp(sub->name, "HELP") == 0))) {
		resp_add_error(rb, "ERR The command has no key arguments");
		return;
	}
	int arity = sub ? sub->arity : d->arity;
	if ((arity > 0 && n != (uint32_t)arity) || (arity < 0 && n < (uint32_t)-arity)) {
		resp_add_error(rb, "ERR Invalid number of arguments specified for command");
		return;
	}
	int last = d->last_key < 0 ? (int)n + d->last_key : d->last_key;
	uint32_t step = d->step > 0 ? (uint32_t)d->step : 1;
	if (last >= (int)n || last < d->first_key) {
		resp_add_error(rb, "ERR Invalid arguments specified for command");
		return;
	}
	uint32_t keys = 0;
	for (int i = d->first_key; i <= last; i += (int)step)
		keys++;
	resp_add_array(rb, keys);
	for (int i = d->first_key; i <= last; i += (int)step)
		resp_add_bulk(rb, argv[2 + i].ptr, argv[2 + i].len);
}

/* COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern]:
 * every command and every subcommand of a container ("client|kill"), as
 * Redis 7.0's commandListCommand, with its argument rules: FILTERBY and its
 * two arguments are the last three, anything else is a syntax error. No
 * command is a module's, so MODULE lists none; ACLCAT lists the commands of
 * that category (none for a name that is not one); PATTERN is matched
 * against the full name without case, with the glob of KEYS. */
enum list_filter { LIST_ALL, LIST_MODULE, LIST_ACLCAT, LIST_PATTERN };

static bool list_match(const struct cmd_entry *e, enum list_filter f, const struct resp_arg *arg)
{
	switch (f) {
	case LIST_ALL: return true;
	case LIST_MODULE: return false;
	case LIST_ACLCAT: return entry_in_category(e, arg);
	case LIST_PATTERN: return cmd_glob(arg->ptr, arg->len, e->name, strlen(e->name), true);
	}
	return false;
}

static void command_list(struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	enum list_filter f = LIST_ALL;
	const struct resp_arg *arg = NULL;
	if (argc != 2) {
		if (argc != 5 || !resp_arg_is(&argv[2], "FILTERBY")) {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
		f = resp_arg_is(&argv[3], "MODULE") ? LIST_MODULE : resp_arg_is(&argv[3], "ACLCAT") ? LIST_ACLCAT
		  : resp_arg_is(&argv[3], "PATTERN") ? LIST_PATTERN : LIST_ALL;
		if (f == LIST_ALL) {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
		arg = &argv[4];
	}
	/* Two passes over the same entries: the count, then the names. */
	unsigned n = cmd_count() - 1; /* not the "unknown" pseudo-command */
	uint64_t matched = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			resp_add_array(rb, matched);
		for (unsigned i = 0; i < n; i++) {
			const struct cmd_def *d = cmd_by_index(i);
			const struct cmd_container *ct = container_of(d);
			for (unsigned k = 0; k <= (ct ? ct->n : 0); k++) {
				struct cmd_entry e;
				entry_init(&e, d, k == 0 ? NULL : &ct->subs[k - 1]);
				if (!list_match(&e, f, arg))
					continue;
				if (pass == 0)
					matched++;
				else
					resp_add_bulk_str(rb, e.name);
			}
		}
	}
}

enum command_sub { COMMAND_COUNT, COMMAND_DOCS, COMMAND_GETKEYS, COMMAND_HELP, COMMAND_INFO, COMMAND_LIST,
		   COMMAND_GETKEYSANDFLAGS };
static const struct cmd_sub command_subs[] = {
	{"COUNT", 2}, {"DOCS", -2}, {"GETKEYS", -4}, {"HELP", 2}, {"INFO", -2}, {"LIST", -2}, {"GETKEYSANDFLAGS", -4},
};
static const char *const command_help[] = {
	"(no subcommand)",
	"    Return details about all Redis commands.",
	"COUNT",
	"    Return the total number of commands in this Redis server.",
	"LIST",
	"    Return a list of all commands in this Redis server.",
	"INFO [<command-name> ...]",
	"    Return details about multiple Redis commands.",
	"    If no command names are given, documentation details for all",
	"    commands are returned.",
	"DOCS [<command-name> ...]",
	"    Return documentation details about multiple Redis commands.",
	"    If no command names are given, documentation details for all",
	"    commands are returned.",
	"GETKEYS <full-command>",
	"    Return the keys from a full Redis command.",
	"GETKEYSANDFLAGS <full-command>",
	"    Return the keys and the access flags from a full Redis command.",
	NULL,
};

static void run_command(CMD_RUN_ARGS)
{
	unsigned n = cmd_count() - 1; /* not the "unknown" pseudo-command */
	if (argc == 1) {
		resp_add_array(rb, n);
		for (unsigned i = 0; i < n; i++)
			command_entry(cmd_by_index(i), c->proto, rb);
		return;
	}
	switch (cmd_subcommand(argv, argc, command_subs, sizeof(command_subs) / sizeof(command_subs[0]), rb)) {
	case COMMAND_COUNT:
		resp_add_int(rb, n);
		break;
	case COMMAND_DOCS:
		command_docs(c, argv, argc, rb);
		break;
	case COMMAND_GETKEYS:
		command_getkeys(argv, argc, rb);
		break;
	case COMMAND_GETKEYSANDFLAGS:
		resp_add_error(rb, "ERR COMMAND GETKEYSANDFLAGS is not supported by dynvme; use COMMAND GETKEYS");
		break;
	case COMMAND_HELP:
		cmd_reply_help(&argv[0], command_help, rb);
		break;
	case COMMAND_INFO:
		if (argc == 2) { /* every command */
			resp_add_array(rb, n);
			for (unsigned i = 0; i < n; i++)
				command_entry(cmd_by_index(i), c->proto, rb);
			break;
		}
		resp_add_array(rb, argc - 2);
		for (uint32_t i = 2; i < argc; i++) {
			struct cmd_entry e;
			if (entry_lookup(&argv[i], &e))
				command_entry_of(&e, c->proto, rb);
			else
				resp_add_null(rb, c->proto);
		}
		break;
	case COMMAND_LIST: command_list(argv, argc, rb); break;
	default:
		break; /* the error is in rb */
	}
}

/* ---- CONFIG ---- */

/* Directives Redis clients ask for at connect, with this node's answers;
 * CONFIG SET takes exactly these values (nothing changes). */
static const char *const compat_params[][2] = {
	{"save", ""}, {"appendonly", "no"}, {"databases", "1"}, {"maxmemory", "0"},
	{"maxmemory-policy", "noeviction"}, {"cluster-enabled", "no"},
};
#define COMPAT_PARAMS (sizeof(compat_params) / sizeof(compat_params[0]))
enum { COMPAT_SAVE, COMPAT_APPENDONLY, COMPAT_DATABASES, COMPAT_MAXMEMORY, COMPAT_POLICY, COMPAT_CLUSTER_ENABLED };

/* Redis's own error for a value it cannot parse for compat_params[i]
 * (config.c: bool, memory, enum and save configs), or NULL: then only
 * dynvme's value is refused. */
static const char *compat_syntax_error(unsigned i, const char *v)
{
	static const char *const policies[] = {"volatile-lru",   "allkeys-lru",    "volatile-lfu", "allkeys-lfu",
					       "volatile-random", "allkeys-random", "volatile-ttl", "noeviction"};
	switch (i) {
	case COMPAT_APPENDONLY:
		return strcasecmp(v, "yes") && strcasecmp(v, "no") ? "argument must be 'yes' or 'no'" : NULL;
	case COMPAT_MAXMEMORY: {
		char *end;
		errno = 0;
		if (!isdigit((unsigned char)v[0]) || (strtoull(v, &end, 10), errno))
			return "argument must be a memory value";
		static const char *const units[] = {"", "b", "k", "kb", "m", "mb", "g", "gb"};
		for (unsigned u = 0; u < sizeof(units) / sizeof(units[0]); u++)
			if (!strcasecmp(end, units[u]))
				return NULL;
		return "argument must be a memory value";
	}
	case COMPAT_POLICY:
		for (unsigned p = 0; p < sizeof(policies) / sizeof(policies[0]); p++)
			if (!strcasecmp(v, policies[p]))
				return NULL;
		return "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, "
		       "volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction";
	case COMPAT_SAVE: { /* pairs of seconds >= 1 and changes >= 0, split at each space */
		unsigned n = 0;
		for (const char *p = v;; n++) {
			const char *sp = strchr(p, ' ');
			size_t len = sp ? (size_t)(sp - p) : strlen(p);
			char tok[32];
			if (len >= sizeof(tok))
				return "Invalid save parameters";
			memcpy(tok, p, len);
			tok[len] = '\0';
			char *end;
			long long x = strtoll(tok, &end, 10); /* "" is 0, as in Redis */
			if (*end || (n % 2 == 0 ? x < 1 : x < 0))
				return "Invalid save parameters";
			if (!sp)
				break;
			p = sp + 1;
		}
		return n % 2 == 0 ? "Invalid save parameters" : NULL; /* n + 1 tokens */
	}
	default: return NULL;
	}
}

/* Redis 7.0.15's parameters that CONFIG SET refuses by name, before any
 * value is parsed (config.c: IMMUTABLE_CONFIG, and PROTECTED_CONFIG with
 * enable-protected-configs no, its default), probed one by one on a real
 * redis-server: a client setting one gets Redis's error, not "Unknown
 * option". dynvme's own fixed directives (port, bind, ...) answer the
 * immutable error too, in config_check_pair. */
static const char *const redis_immutable_params[] = {
	"aclfile", "always-show-logo", "aof_rewrite_cpulist", "appenddirname", "appendfilename", "bgsave_cpulist",
	"bio_cpulist", "cluster-config-file", "cluster-enabled", "cluster-port", "daemonize", "databases",
	"disable-thp", "enable-debug-command", "enable-module-command", "enable-protected-configs", "io-threads",
	"io-threads-do-reads", "logfile", "pidfile", "rdbchecksum", "replicaof", "server_cpulist", "set-proc-title",
	"slaveof", "socket-mark-id", "supervised", "syslog-enabled", "syslog-facility", "syslog-ident", "tcp-backlog",
	"unixsocket", "unixsocketperm",
};
static const char *const redis_protected_params[] = {"dbfilename", "dir"};

static bool name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(list[i], name))
			return true;
	return false;
}

/* The directives CONFIG SET changes while the server runs. */
static const char *const runtime_params[] = {"timeout", "auth-timeout", "request-timeout", "max-pipeline",
					     "log-level"};
#define RUNTIME_PARAMS (sizeof(runtime_params) / sizeof(runtime_params[0]))

static int runtime_index(const char *name)
{
	for (unsigned i = 0; i < RUNTIME_PARAMS; i++)
		if (!strcasecmp(runtime_params[i], name))
			return (int)i;
	return -1;
}

static _Atomic uint32_t *runtime_field(struct server *srv, unsigned i)
{
	switch (i) {
	case 0: return &srv->rt.timeout_s;
	case 1: return &srv->rt.auth_timeout_s;
	case 2: return &srv->rt.request_timeout_s;
	case 3: return &srv->rt.max_pipeline;
	default: return NULL; /* log-level: log.c keeps it */
	}
}

static const char *const log_names[] = {"debug", "info", "warn", "error"};
static _Atomic uint32_t runtime_log_level = UINT32_MAX; /* UINT32_MAX: the config's */

/* The value of a directive now (a runtime one may differ from the config). */
static bool param_get(struct conn *c, const char *name, char *out, size_t len)
{
	int r = runtime_index(name);
	if (r >= 0 && runtime_field(c->w->srv, (unsigned)r)) {
		snprintf(out, len, "%u", atomic_load_explicit(runtime_field(c->w->srv, (unsigned)r), memory_order_relaxed));
		return true;
	}
	if (r >= 0) {
		uint32_t lv = atomic_load_explicit(&runtime_log_level, memory_order_relaxed);
		if (lv != UINT32_MAX) {
			snprintf(out, len, "%s", log_names[lv]);
			return true;
		}
	}
	return config_get(c->w->cfg, name, out, len);
}

static unsigned config_collect(struct conn *c, const char *pat, const char *names[], char values[][CONFIG_STR_MAX],
			       unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; config_names[i] && n < max; i++) {
		if (fnmatch(pat, config_names[i], FNM_CASEFOLD) == 0 && param_get(c, config_names[i], values[n], CONFIG_STR_MAX))
			names[n++] = config_names[i];
	}
	for (unsigned i = 0; i < COMPAT_PARAMS && n < max; i++) {
		if (fnmatch(pat, compat_params[i][0], FNM_CASEFOLD) == 0) {
			names[n] = compat_params[i][0];
			snprintf(values[n++], CONFIG_STR_MAX, "%s", compat_params[i][1]);
		}
	}
	return n;
}

static void config_get_cmd(struct conn *c, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	/* Room for every parameter twice: the distinct names so far (at most
	 * all of them) and one more pattern's matches (at most all of them),
	 * so no match is ever cut off. */
	unsigned nconfig = 0;
	while (config_names[nconfig])
		nconfig++;
	const unsigned slots = 2 * (nconfig + (unsigned)COMPAT_PARAMS);
	const char **names = malloc(slots * sizeof(*names));
	const struct resp_arg **asked = malloc(slots * sizeof(*asked)); /* the name as asked, or NULL */
	char(*values)[CONFIG_STR_MAX] = malloc(slots * CONFIG_STR_MAX);
	if (!values || !names || !asked) {
		free(names);
		free(asked);
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
		unsigned got = config_collect(c, pat, names + base, values + base, slots - base);
		/* A name without glob characters is answered as it was asked
		 * (CONFIG GET TIMEOUT: "TIMEOUT"), as Redis's configGetCommand. */
		bool exact = !memchr(argv[i].ptr, '*', argv[i].len) && !memchr(argv[i].ptr, '?', argv[i].len) &&
			     !memchr(argv[i].ptr, '[', argv[i].len);
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
			asked[n] = exact ? &argv[i] : NULL;
			n++;
		}
	}
	resp_add_map(rb, n, c->proto);
	for (unsigned i = 0; i < n; i++) {
		if (asked[i])
			resp_add_bulk(rb, asked[i]->ptr, asked[i]->len);
		else
			resp_add_bulk_str(rb, names[i]);
		resp_add_bulk_str(rb, values[i]);
	}
	free(names);
	free(asked);
	free(values);
}

/* One CONFIG SET pair, in Redis's two passes: names (values false:
 * unknown, immutable), then values (values true: each parsed and checked
 * into scratch); 0, or -EINVAL with Redis's error in rb. */
static int config_check_pair(struct conn *c, const struct resp_arg *name, const struct resp_arg *val,
			     struct server_config *scratch, int *runtime, bool values, struct resp_buf *rb)
{
	char n[CONFIG_STR_MAX], v[CONFIG_STR_MAX];
	if (name->len >= sizeof(n) || val->len >= sizeof(v) || memchr(val->ptr, '\0', val->len)) {
		resp_add_errorf(rb, "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
				(int)(name->len < 128 ? name->len : 128), name->ptr);
		return -EINVAL;
	}
	snprintf(n, sizeof(n), "%.*s", (int)name->len, name->ptr);
	snprintf(v, sizeof(v), "%.*s", (int)val->len, val->ptr);
	*runtime = runtime_index(n);
	/* The error names the parameter as the client spelled it (Redis's
	 * c->argv), whatever its case. */
	bool immutable = name_in(n, redis_immutable_params, sizeof(redis_immutable_params) / sizeof(char *));
	if (immutable || name_in(n, redis_protected_params, sizeof(redis_protected_params) / sizeof(char *))) {
		resp_add_errorf(rb, "ERR CONFIG SET failed (possibly related to argument '%s') - can't set %s config", n,
				immutable ? "immutable" : "protected");
		return -EINVAL;
	}
	for (unsigned i = 0; i < COMPAT_PARAMS; i++) {
		if (strcasecmp(compat_params[i][0], n))
			continue;
		DV_ASSERT(i != COMPAT_DATABASES && i != COMPAT_CLUSTER_ENABLED); /* immutable: refused above */
		if (!values || !strcasecmp(compat_params[i][1], v))
			return 0; /* what it is: nothing to change */
		const char *bad = compat_syntax_error(i, v);
		if (bad) {
			resp_add_errorf(rb, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", n, bad);
			return -EINVAL;
		}
		resp_add_errorf(rb, "ERR CONFIG SET failed (possibly related to argument '%s') - dynvme keeps %s at '%s'",
				n, compat_params[i][0], compat_params[i][1]);
		return -EINVAL;
	}
	bool known = false;
	for (unsigned i = 0; config_names[i] && !known; i++)
		known = !strcasecmp(config_names[i], n);
	if (!known) {
		resp_add_errorf(rb, "ERR Unknown option or number of arguments for CONFIG SET - '%s'", n);
		return -EINVAL;
	}
	if (*runtime < 0) {
		resp_add_errorf(rb, "ERR CONFIG SET failed (possibly related to argument '%s') - can't set immutable config",
				n);
		return -EINVAL;
	}
	if (!values)
		return 0;
	long long num;
	bool parsed = cmd_value_ll(v, (uint32_t)strlen(v), &num);
	if (!strcasecmp(n, "timeout") && (!parsed || num < 0 || num > INT32_MAX)) {
		/* Redis's own directive: its int config's wording */
		resp_add_errorf(rb, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", n,
				parsed ? "argument must be between 0 and 2147483647 inclusive"
				       : "argument couldn't be parsed into an integer");
		return -EINVAL;
	}
	char err[CONFIG_ERR_MAX];
	if (config_set(scratch, n, v, err, sizeof(err)) || config_validate(scratch, err, sizeof(err))) {
		resp_add_errorf(rb, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", n, err);
		return -EINVAL;
	}
	return 0;
}

static void config_set_cmd(struct conn *c, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	if (argc % 2) {
		resp_add_error(rb, "ERR syntax error");
		return;
	}
	struct server_config *scratch = malloc(sizeof(*scratch));
	if (!scratch) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	*scratch = *c->w->cfg;
	int rt[64];
	uint32_t pairs = (argc - 2) / 2;
	/* Redis's order: every name (unknown, immutable, repeated) before
	 * any value */
	for (uint32_t i = 0; i < pairs; i++) {
		if (i >= 64 || config_check_pair(c, &argv[2 + 2 * i], &argv[3 + 2 * i], scratch, &rt[i], false, rb)) {
			if (i >= 64)
				resp_add_error(rb, "ERR CONFIG SET of more than 64 parameters at once");
			free(scratch);
			return;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (argv[2 + 2 * j].len == argv[2 + 2 * i].len &&
			    !strncasecmp(argv[2 + 2 * j].ptr, argv[2 + 2 * i].ptr, argv[2 + 2 * i].len)) {
				resp_add_errorf(rb, "ERR CONFIG SET failed (possibly related to argument '%.*s') - duplicate "
						    "parameter",
						(int)(argv[2 + 2 * i].len < 128 ? argv[2 + 2 * i].len : 128), argv[2 + 2 * i].ptr);
				free(scratch);
				return;
			}
		}
	}
	for (uint32_t i = 0; i < pairs; i++) {
		if (config_check_pair(c, &argv[2 + 2 * i], &argv[3 + 2 * i], scratch, &rt[i], true, rb)) {
			free(scratch);
			return;
		}
	}
	struct server *srv = c->w->srv;
	for (uint32_t i = 0; i < pairs; i++) {
		if (rt[i] < 0)
			continue;
		_Atomic uint32_t *f = runtime_field(srv, (unsigned)rt[i]);
		uint32_t v = rt[i] == 0 ? scratch->timeout_s : rt[i] == 1 ? scratch->auth_timeout_s
			   : rt[i] == 2 ? scratch->request_timeout_s : rt[i] == 3 ? scratch->max_pipeline
			   : (uint32_t)scratch->log_level;
		if (f) {
			atomic_store_explicit(f, v, memory_order_relaxed);
		} else {
			atomic_store_explicit(&runtime_log_level, v, memory_order_relaxed);
			log_init((enum log_level)v);
		}
		log_info("config set", "name=%s value=%u", runtime_params[rt[i]], v);
	}
	free(scratch);
	resp_add_simple(rb, "OK");
}

enum config_sub { CONFIG_GET, CONFIG_SET, CONFIG_RESETSTAT, CONFIG_REWRITE, CONFIG_HELP };
static const struct cmd_sub config_subs[] = {
	{"GET", -3}, {"SET", -4}, {"RESETSTAT", 2}, {"REWRITE", 2}, {"HELP", 2},
};
static const char *const config_help[] = {
	"GET <pattern>",
	"    Return parameters matching the glob-like <pattern> and their values.",
	"SET <directive> <value>",
	"    Set the configuration <directive> to <value>.",
	"RESETSTAT",
	"    Reset statistics reported by the INFO command.",
	"REWRITE",
	"    Rewrite the configuration file.",
	NULL,
};

static void run_config(CMD_RUN_ARGS)
{
	switch (cmd_subcommand(argv, argc, config_subs, sizeof(config_subs) / sizeof(config_subs[0]), rb)) {
	case CONFIG_GET: config_get_cmd(c, argv, argc, rb); break;
	case CONFIG_SET: config_set_cmd(c, argv, argc, rb); break;
	case CONFIG_RESETSTAT: resp_add_simple(rb, "OK"); break;
	case CONFIG_REWRITE:
		resp_add_error(rb, "ERR CONFIG REWRITE is not supported by dynvme: edit the config file or flags");
		break;
	case CONFIG_HELP: cmd_reply_help(&argv[0], config_help, rb); break;
	default: break;
	}
}

/* ---- FUNCTION: no scripting, so no functions ---- */

enum function_sub { FN_FLUSH, FN_LIST, FN_HELP, FN_DELETE, FN_DUMP, FN_KILL, FN_LOAD, FN_RESTORE, FN_STATS };
static const struct cmd_sub function_subs[] = {
	{"FLUSH", -2}, {"LIST", -2}, {"HELP", 2}, {"DELETE", 3}, {"DUMP", 2}, {"KILL", 2},
	{"LOAD", -3}, {"RESTORE", -3}, {"STATS", 2},
};
static const struct cmd_container container_command = {"command", command_subs,
							 sizeof(command_subs) / sizeof(command_subs[0])};
static const struct cmd_container container_config = {"config", config_subs, sizeof(config_subs) / sizeof(config_subs[0])};
static const struct cmd_container container_function = {"function", function_subs,
							  sizeof(function_subs) / sizeof(function_subs[0])};

static const struct cmd_container *container_of(const struct cmd_def *d)
{
	static const struct cmd_container *const all[] = {&cmd_container_object, &cmd_container_client,
							  &cmd_container_cluster, &container_command, &container_config,
							  &container_function};
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(d->name, all[i]->name) == 0)
			return all[i];
	return NULL;
}

static const char *const function_help[] = {
	"LIST",
	"    Return the functions: dynvme has no scripting, so none.",
	"FLUSH [ASYNC|SYNC]",
	"    Delete all the functions: there are none.",
	NULL,
};

/* FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern]: Redis's argument
 * checks (functionListCommand: each option once), then no library. */
static void function_list(struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	bool code = false, name = false;
	for (uint32_t i = 2; i < argc; i++) {
		if (!code && resp_arg_is(&argv[i], "WITHCODE")) {
			code = true;
		} else if (!name && resp_arg_is(&argv[i], "LIBRARYNAME")) {
			if (i == argc - 1) {
				resp_add_error(rb, "ERR library name argument was not given");
				return;
			}
			name = true;
			i++;
		} else {
			resp_add_errorf(rb, "ERR Unknown argument %.*s", (int)(argv[i].len < 128 ? argv[i].len : 128),
					argv[i].ptr);
			return;
		}
	}
	resp_add_array(rb, 0);
}

static void run_function(CMD_RUN_ARGS)
{
	int sub = cmd_subcommand(argv, argc, function_subs, sizeof(function_subs) / sizeof(function_subs[0]), rb);
	if (sub == FN_FLUSH) { /* functionFlushCommand's checks */
		if (argc > 3)
			cmd_reply_sub_syntax(argv, rb);
		else if (argc == 3 && !resp_arg_is(&argv[2], "ASYNC") && !resp_arg_is(&argv[2], "SYNC"))
			resp_add_error(rb, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
		else
			resp_add_simple(rb, "OK");
	} else if (sub == FN_LIST) {
		function_list(argv, argc, rb);
	} else if (sub == FN_DELETE) {
		resp_add_error(rb, "ERR Library not found"); /* there is none */
	} else if (sub == FN_KILL) {
		resp_add_error(rb, "NOTBUSY No scripts in execution right now.");
	} else if (sub == FN_HELP) {
		cmd_reply_help(&argv[0], function_help, rb);
	} else if (sub >= FN_DUMP) {
		resp_add_errorf(rb, "ERR FUNCTION %s is not supported by dynvme (no scripting)", function_subs[sub].name);
	}
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
	/* Cluster mode: INFO keyspace is each keyspace's DBSIZE estimate, one
	 * COUNT (op 1 + j) per keyspace the cluster defines, beside op 0, the
	 * node's own stats. */
	unsigned nks = 0;
	uint8_t ks[CLUSTER_KEYSPACES_MAX];
	if (cmd_cluster_mode(c) && (sections & INFO_KEYSPACE))
		for (unsigned i = 0; i < CLUSTER_KEYSPACES_MAX; i++)
			if (cluster_keyspace(&c->w->cfg->cluster, i))
				ks[nks++] = (uint8_t)i;
	if (cmd_prepare_ops(cmd, 1 + nks)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	for (unsigned i = 0; i <= nks; i++) {
		if (eop_init(&cmd->ops[i], EOP_STATS, NULL, 0, NULL, 0)) {
			cmd_release_ops(cmd);
			resp_add_error(rb, cmd_store_error(-ENOMEM));
			return;
		}
		if (i > 0) {
			cmd->ops[i].dyn.op = EOP_DYN_COUNT;
			cmd->ops[i].arg = ks[i - 1] + 1; /* engine.h: this keyspace, not the connection's */
		}
	}
	struct eop *e = &cmd->ops[0];
	cmd->flags = sections;
	e->stats = &cmd->stats;
	e->cache_stats = &cmd->cache_stats;
	e->counters = &cmd->counters;
}

/* Single-node mode: live keys (the store counts neither tombstones nor its
 * own flush point record). Cluster mode: the keys this node holds a version
 * of in any keyspace (a deleted key's causal tombstone counts until
 * tombstone removal), less the node's own metadata records. */
static uint64_t live_keys(const struct conn *c, const struct store_stats *st)
{
	uint64_t n = st->keys - st->tombstones;
	if (cmd_cluster_mode(c))
		n = n > CHOST_META_RECORDS ? n - CHOST_META_RECORDS : 0;
	return n;
}

static void run_dbsize(CMD_RUN_ARGS)
{
	if (!cmd_cluster_mode(c)) {
		cmd_run_stats(c, cmd, argv, argc, rb);
		return;
	}
	struct eop *e = cmd_prepare_keyless(cmd, EOP_STATS, rb);
	if (e)
		e->dyn.op = EOP_DYN_COUNT;
}

static void reply_dbsize(CMD_REPLY_ARGS)
{
	if (!cmd_cluster_mode(c))
		resp_add_int(rb, (int64_t)live_keys(c, &cmd->stats));
	else if (!cmd_first_error(cmd, rb))
		resp_add_int(rb, cmd->ops[0].reply_int);
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
		      srv->run_id, srv->port, srv->http_port, (unsigned long long)up, (unsigned long long)up / 86400,
		      srv->nworkers);
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
		      (unsigned long long)acc, (unsigned long long)calls, (unsigned long long)in, (unsigned long long)out,
		      (unsigned long long)rej, (unsigned long long)(st->gc_expired + expired),
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
		      "flushes:%llu\r\nflush_seq:%llu\r\nrecovery_us:%llu\r\nrecovered_records:%llu\r\n"
		      "recovery_torn_tails:%u\r\nzone_model:%s\r\nzone_capacity:%llu\r\n"
		      "zone_max_open:%u\r\nzone_max_active:%u\r\nzones_open_limit:%u\r\n"
		      "superblock_log:%d\r\nsuperblock_log_resets:%llu\r\nzones_unusable:%u\r\n"
		      "zones_lost:%u\r\nzones_wp_mismatch:%u\r\n",
		      cfg->data, st->failed, (unsigned long long)st->keys, (unsigned long long)st->tombstones,
		      (unsigned long long)st->index_bytes, st->zones_total, st->zones_empty, st->zones_open,
		      st->zones_full, (unsigned long long)st->zone_bytes, (unsigned long long)st->puts,
		      (unsigned long long)st->dels, (unsigned long long)st->gets, (unsigned long long)st->batches,
		      (unsigned long long)st->batch_records, (unsigned long long)st->user_bytes,
		      (unsigned long long)st->device_bytes_written, wa, (unsigned long long)st->gc_bytes_relocated,
		      (unsigned long long)st->gc_zones_reset, (unsigned long long)st->corrupt_records,
		      (unsigned long long)st->resolve_reads, (unsigned long long)st->resolve_memo_hits,
		      (unsigned long long)st->memo_bytes, (unsigned long long)st->flushes,
		      (unsigned long long)st->flush_seq, (unsigned long long)st->recovery_us,
		      (unsigned long long)st->recovered_records, st->recovery_torn_tails,
		      st->zone_model ? st->zone_model : "emulated", (unsigned long long)st->zone_cap,
		      st->dev_max_open_zones, st->dev_max_active_zones, st->zones_open_limit, st->sb_log,
		      (unsigned long long)st->sb_log_resets, st->zones_unusable, st->zones_lost,
		      st->zones_wp_mismatch);
	resp_add_rawf(o,
		      "reclaim_seq:%llu\r\nreclaim_dropped:%llu\r\nreclaim_bytes:%llu\r\n"
		      "reclaim_zones_swept:%llu\r\nreclaim_zones_freed:%llu\r\n\r\n",
		      (unsigned long long)st->reclaim_seq, (unsigned long long)st->reclaim_dropped,
		      (unsigned long long)st->reclaim_bytes, (unsigned long long)st->reclaim_zones_swept,
		      (unsigned long long)st->reclaim_zones_freed);
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
			resp_add_rawf(o,
				      "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=0,"
				      "failed_calls=%llu\r\n",
				      cmd_by_index(k)->name, (unsigned long long)calls, (unsigned long long)usec,
				      (double)usec / (double)calls, (unsigned long long)errors);
	}
	resp_add_rawf(o, "\r\n");
}

/* Redis's field names where clients read them: mem_allocator in Memory,
 * master_repl_offset (and the replication ids) in Replication. */
static void info_memory(const struct store_stats *st, const struct rusage *ru, struct resp_buf *o)
{
	resp_add_rawf(o,
		      "# Memory\r\nused_memory:%llu\r\nused_memory_rss:%llu\r\nindex_bytes:%llu\r\n"
		      "maxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_allocator:libc\r\n\r\n",
		      (unsigned long long)st->index_bytes, (unsigned long long)ru->ru_maxrss * 1024ull,
		      (unsigned long long)st->index_bytes);
}

static void info_replication(const struct server *srv, struct resp_buf *o)
{
	resp_add_rawf(o,
		      "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n"
		      "master_replid:%s\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n"
		      "master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n"
		      "repl_backlog_size:0\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n\r\n",
		      srv->run_id);
}

/* Redis's "dbN:keys=K,expires=E,avg_ttl=T" line of each database that has
 * keys. One node: db0, its live keys and the keys with a TTL the expiry
 * table holds. Cluster mode: a line per keyspace with keys, K its DBSIZE
 * estimate (ops 1.., cmd_run_stats; a count that failed gives no line) and
 * E 0: no node counts the keys with a TTL. avg_ttl is always 0 (not
 * sampled). */
static void info_keyspace(struct conn *c, const struct cmd *cmd, struct resp_buf *o)
{
	resp_add_rawf(o, "# Keyspace\r\n");
	uint64_t n = live_keys(c, &cmd->stats);
	if (n && !cmd_cluster_mode(c))
		resp_add_rawf(o, "db0:keys=%llu,expires=%llu,avg_ttl=0\r\n", (unsigned long long)n,
			      (unsigned long long)cmd->counters.expiry_tracked);
	for (uint32_t i = 1; i < cmd->nops; i++) {
		const struct eop *e = &cmd->ops[i];
		DV_ASSERT(e->dyn.op == EOP_DYN_COUNT && e->arg >= 1 && e->arg <= CLUSTER_KEYSPACES_MAX);
		if (e->result == 0 && e->reply_int > 0)
			resp_add_rawf(o, "db%lld:keys=%lld,expires=0,avg_ttl=0\r\n", (long long)(e->arg - 1),
				      (long long)e->reply_int);
	}
	resp_add_rawf(o, "\r\n");
}

static void info_storage_cache(const struct cmd *cmd, const struct server_config *cfg, struct resp_buf *o)
{
	info_storage(&cmd->stats, cfg, o);
	const struct vcache_stats *cs = &cmd->cache_stats;
	o->len -= 2; /* continue the section */
	resp_add_rawf(o,
		      "cache_bytes:%llu\r\ncache_bytes_max:%llu\r\ncache_entries:%llu\r\ncache_hits:%llu\r\n"
		      "cache_misses:%llu\r\ncache_evictions:%llu\r\nexpiry_tracked:%llu\r\n"
		      "expiry_deleted:%llu\r\nexpiry_untracked:%llu\r\n\r\n",
		      (unsigned long long)cs->bytes, (unsigned long long)cs->bytes_max, (unsigned long long)cs->entries,
		      (unsigned long long)cs->hits, (unsigned long long)cs->misses, (unsigned long long)cs->evictions,
		      (unsigned long long)cmd->counters.expiry_tracked, (unsigned long long)cmd->counters.expiry_deleted,
		      (unsigned long long)cmd->counters.expiry_untracked);
}

/* The sections asked for, in Redis's order (then dynvme's Storage). */
static void reply_info(CMD_REPLY_ARGS)
{
	const struct store_stats *st = &cmd->stats;
	const struct server *srv = c->w->srv;
	uint32_t s = cmd->flags;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	struct resp_buf o;
	resp_buf_init(&o);
	if (s & INFO_SERVER)
		info_server(c, &o);
	if (s & INFO_CLIENTS)
		resp_add_rawf(&o, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\nblocked_clients:0\r\n\r\n",
			      atomic_load_explicit(&((struct server *)srv)->clients, memory_order_relaxed),
			      c->w->cfg->maxclients);
	if (s & INFO_MEMORY)
		info_memory(st, &ru, &o);
	if (s & INFO_PERSISTENCE)
		resp_add_rawf(&o, "# Persistence\r\nloading:0\r\naof_enabled:0\r\nrdb_changes_since_last_save:0\r\n"
				  "durable_writes:1\r\n\r\n");
	if (s & INFO_STATS)
		info_stats(c, st, cmd->counters.expiry_deleted, &o);
	if (s & INFO_REPLICATION)
		info_replication(srv, &o);
	if (s & INFO_CPU)
		resp_add_rawf(&o, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n\r\n",
			      (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, (long)ru.ru_utime.tv_sec,
			      (long)ru.ru_utime.tv_usec);
	if (s & INFO_COMMANDSTATS)
		info_commandstats(c, &o);
	if (s & INFO_KEYSPACE)
		info_keyspace(c, cmd, &o);
	if (s & INFO_STORAGE)
		info_storage_cache(cmd, c->w->cfg, &o);
	/* Redis ends INFO without the last blank line. */
	size_t len = o.len >= 2 ? o.len - 2 : o.len;
	resp_add_verbatim(rb, o.data ? o.data : "", len, c->proto);
	resp_buf_free(&o);
}

/* ---- the table ---- */

static const struct cmd_def defs[] = {
	{"dbsize", 1, 0, 0, 0, 0, run_dbsize, reply_dbsize, "Returns the number of keys in the database.", NULL, NULL},
	{"info", -1, 0, 0, 0, 0, cmd_run_stats, reply_info, "Returns information and statistics about the server.", NULL, NULL},
	{"flushdb", -1, CMDF_WRITE, 0, 0, 0, run_flush, reply_flush, "Removes all keys from the current database.", NULL, NULL},
	{"flushall", -1, CMDF_WRITE, 0, 0, 0, run_flush, reply_flush, "Removes all keys from all databases.", NULL, NULL},
	{"command", -1, 0, 0, 0, 0, run_command, NULL, "Returns detailed information about all commands.", NULL, NULL},
	{"config", -2, 0, 0, 0, 0, run_config, NULL, "A container for server configuration commands.", NULL, NULL},
	{"time", 1, 0, 0, 0, 0, run_time, NULL, "Returns the server time.", NULL, NULL},
	{"function", -2, 0, 0, 0, 0, run_function, NULL, "A container for function commands.", NULL, NULL},
};

const struct cmd_family cmd_family_server = {defs, sizeof(defs) / sizeof(defs[0]), "server"};
