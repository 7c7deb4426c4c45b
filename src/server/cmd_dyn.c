/* cmd_dyn.c - the Dynamo API over RESP and the cluster-mode commands:
 * DYN.GET, DYN.PUT, DYN.DEL, DYN.STATUS, DYN.RING, SELECT (keyspaces), and
 * CLUSTER / READONLY / READWRITE answered as a Redis without cluster
 * support answers them (so cluster-aware clients fall back to treating any
 * node as a plain server).
 *
 *   DYN.GET key [R n] [TIMEOUT ms]          -> [context, [value, ...]]
 *   DYN.PUT key context value [W n] [EX s | PX ms] [TIMEOUT ms] -> +OK
 *   DYN.DEL key context [W n] [TIMEOUT ms]  -> +OK
 *
 * The context is opaque text (at most DVV_CTX_TEXT_MAX - 1 bytes; "" for a
 * key never read); the chost (chost.c) hands it to the cnode, which checks
 * it. R and W are 1..N of the keyspace (N capped by the nodes). A write that
 * times out answers -TIMEOUT: it may or may not have been applied.
 * In single-node mode DYN.* answer "cluster mode is not enabled".
 */
#include <errno.h>
#include <string.h>

#include "base/constants.h"
#include "cluster/dvv.h"
#include "server/cmd_int.h"

#define DYN_TIMEOUT_MS_MAX 600000

static const char not_cluster[] =
	"ERR cluster mode is not enabled: DYN.* commands need a node started with node-id "
	"(dynvme cluster up, or see dynvme serve --help)";

static bool cluster_mode(const struct conn *c) { return cmd_cluster_mode(c); }

struct dyn_opts {
	uint8_t r, w;
	uint32_t timeout_ms;
	uint64_t expire_ms;
};

enum dyn_opt { OPT_R = 1u << 0, OPT_W = 1u << 1, OPT_EXPIRE = 1u << 2, OPT_TIMEOUT = 1u << 3 };

/* Which option a is, if allowed; 0 otherwise. */
static unsigned opt_of(const struct resp_arg *a, unsigned allow)
{
	unsigned o = resp_arg_is(a, "R") ? OPT_R : resp_arg_is(a, "W") ? OPT_W
		   : resp_arg_is(a, "EX") || resp_arg_is(a, "PX") ? OPT_EXPIRE
		   : resp_arg_is(a, "TIMEOUT") ? OPT_TIMEOUT : 0;
	return o & allow;
}

/* Options from argv[first], each a name and an integer. */
static bool parse_opts(struct conn *c, struct resp_arg *argv, uint32_t argc, uint32_t first, unsigned allow,
		       struct dyn_opts *o, struct resp_buf *rb)
{
	struct cluster_keyspace k;
	if (!cluster_keyspace_eff(&c->w->cfg->cluster, c->db, &k)) {
		resp_add_error(rb, "ERR DB index is out of range");
		return false;
	}
	*o = (struct dyn_opts){0};
	unsigned seen = 0;
	for (uint32_t i = first; i < argc; i += 2) {
		unsigned opt = opt_of(&argv[i], allow);
		if (!opt || (seen & opt) || i + 1 >= argc) {
			resp_add_error(rb, "ERR syntax error");
			return false;
		}
		seen |= opt;
		int64_t v;
		if (resp_arg_i64(&argv[i + 1], &v)) {
			resp_add_error(rb, "ERR value is not an integer or out of range");
			return false;
		}
		if (opt == OPT_TIMEOUT) {
			if (v < 1 || v > DYN_TIMEOUT_MS_MAX) {
				resp_add_errorf(rb, "ERR TIMEOUT must be 1..%d milliseconds", DYN_TIMEOUT_MS_MAX);
				return false;
			}
			o->timeout_ms = (uint32_t)v;
		} else if (opt == OPT_EXPIRE) {
			bool ms = (argv[i].ptr[0] | 0x20) == 'p';
			if (v <= 0 || !cmd_expire_at(v, ms, false, store_now_ms(), &o->expire_ms)) {
				resp_add_error(rb, "ERR invalid expire time in 'dyn.put' command");
				return false;
			}
		} else {
			char name = opt == OPT_R ? 'R' : 'W';
			if (v < 1 || v > k.n) {
				resp_add_errorf(rb, "ERR %c must be 1..%u (the N of keyspace %u)", name, k.n, c->db);
				return false;
			}
			*(opt == OPT_R ? &o->r : &o->w) = (uint8_t)v;
		}
	}
	return true;
}

static bool check_context(const struct resp_arg *ctx, struct resp_buf *rb)
{
	if (ctx->len >= DVV_CTX_TEXT_MAX) {
		resp_add_errorf(rb, "ERR invalid context: longer than any context (%u bytes)", DVV_CTX_TEXT_MAX - 1);
		return false;
	}
	return true;
}

/* One eop: key, then the context, then the value (both may be empty). */
static struct eop *prepare(struct cmd *cmd, enum eop_kind kind, enum eop_dyn_op dop, const struct resp_arg *key,
			   const struct resp_arg *ctx, const struct resp_arg *val, struct resp_buf *rb)
{
	uint32_t cl = ctx ? ctx->len : 0, vl = val ? val->len : 0;
	if (cmd_prepare_ops(cmd, 1) || eop_init(&cmd->ops[0], kind, key->ptr, key->len, NULL, cl + vl)) {
		cmd_release_ops(cmd);
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return NULL;
	}
	struct eop *e = &cmd->ops[0];
	char *p = e->kv + key->len;
	if (cl)
		memcpy(p, ctx->ptr, cl);
	if (vl)
		memcpy(p + cl, val->ptr, vl);
	e->sop.value = p + cl;
	e->sop.val_len = vl;
	e->dyn.op = (uint8_t)dop;
	e->dyn.ctx_len = cl;
	return e;
}

static void apply_opts(struct eop *e, const struct dyn_opts *o)
{
	e->dyn.r = o->r;
	e->dyn.w = o->w;
	e->dyn.timeout_ms = o->timeout_ms;
	e->sop.expire_ms = o->expire_ms;
}

static void cmd_run_dyn_get(CMD_RUN_ARGS)
{
	struct dyn_opts o;
	if (!cluster_mode(c)) {
		resp_add_error(rb, not_cluster);
		return;
	}
	if (!parse_opts(c, argv, argc, 2, OPT_R | OPT_TIMEOUT, &o, rb) || !cmd_check_key(c, &argv[1], rb))
		return;
	struct eop *e = prepare(cmd, EOP_GET, EOP_DYN_GET, &argv[1], NULL, NULL, rb);
	if (e)
		apply_opts(e, &o);
}

static void cmd_reply_dyn_get(CMD_REPLY_ARGS)
{
	const struct eop *e = &cmd->ops[0];
	if (e->result) {
		resp_add_error(rb, cmd_store_error(e->result));
		return;
	}
	resp_add_array(rb, 2);
	resp_add_bulk(rb, e->meta, e->meta_len);
	resp_add_array(rb, e->dyn.nsib);
	const char *v = e->val + (size_t)e->dyn.nsib * 4u;
	for (uint32_t i = 0; i < e->dyn.nsib; i++) {
		uint32_t len;
		memcpy(&len, e->val + 4u * i, 4);
		resp_add_bulk(rb, v, len);
		v += len;
	}
}

static void cmd_run_dyn_put(CMD_RUN_ARGS)
{
	struct dyn_opts o;
	if (!cluster_mode(c)) {
		resp_add_error(rb, not_cluster);
		return;
	}
	if (!parse_opts(c, argv, argc, 4, OPT_W | OPT_EXPIRE | OPT_TIMEOUT, &o, rb) || !cmd_check_key(c, &argv[1], rb) ||
	    !check_context(&argv[2], rb) || !cmd_check_value(&argv[3], rb))
		return;
	struct eop *e = prepare(cmd, EOP_PUT, EOP_DYN_PUT, &argv[1], &argv[2], &argv[3], rb);
	if (e)
		apply_opts(e, &o);
}

static void cmd_run_dyn_del(CMD_RUN_ARGS)
{
	struct dyn_opts o;
	if (!cluster_mode(c)) {
		resp_add_error(rb, not_cluster);
		return;
	}
	if (!parse_opts(c, argv, argc, 3, OPT_W | OPT_TIMEOUT, &o, rb) || !cmd_check_key(c, &argv[1], rb) ||
	    !check_context(&argv[2], rb))
		return;
	struct eop *e = prepare(cmd, EOP_DEL, EOP_DYN_DEL, &argv[1], &argv[2], NULL, rb);
	if (e)
		apply_opts(e, &o);
}

static void cmd_reply_dyn_ok(CMD_REPLY_ARGS)
{
	const struct eop *e = &cmd->ops[0];
	if (e->result)
		resp_add_error(rb, cmd_store_error(e->result));
	else
		resp_add_simple(rb, "OK");
}

/* DYN.STATUS, DYN.RING: rendered by the chost on worker 0 (chost_view.c). */
static void run_view(struct conn *c, struct cmd *cmd, enum eop_dyn_op op, struct resp_buf *rb)
{
	if (!cluster_mode(c)) {
		resp_add_error(rb, not_cluster);
		return;
	}
	struct eop *e = cmd_prepare_keyless(cmd, EOP_STATS, rb);
	if (!e)
		return;
	e->dyn.op = (uint8_t)op;
	e->stats = &cmd->stats; /* unused by the chost; the engine's STATS contract */
}

static void cmd_run_dyn_status(CMD_RUN_ARGS) { run_view(c, cmd, EOP_DYN_STATUS, rb); }
static void cmd_run_dyn_ring(CMD_RUN_ARGS) { run_view(c, cmd, EOP_DYN_RING, rb); }

static void cmd_reply_dyn_view(CMD_REPLY_ARGS)
{
	const struct eop *e = &cmd->ops[0];
	if (e->result)
		resp_add_error(rb, cmd_store_error(e->result));
	else
		resp_add_raw(rb, e->val, e->val_len); /* arrays, bulk strings and integers: RESP2 and RESP3 alike */
}

/* SELECT n: in cluster mode keyspace n (a Redis database number), which
 * must be defined; in single-node mode only database 0. */
void cmd_run_select_db(CMD_RUN_ARGS)
{
	if (!cluster_mode(c)) {
		cmd_run_select(c, cmd, argv, argc, rb);
		return;
	}
	int64_t db;
	if (!cmd_arg_int(&argv[1], &db, rb))
		return;
	if (db < 0 || db >= CLUSTER_KEYSPACES_MAX || !cluster_keyspace(&c->w->cfg->cluster, (unsigned)db))
		resp_add_error(rb, "ERR DB index is out of range");
	else {
		c->db = (uint8_t)db;
		resp_add_simple(rb, "OK");
	}
}

/* What Redis 7 without cluster support answers (cluster_enabled no):
 * CLUSTER's unknown subcommands and wrong arities get Redis's errors (its
 * subcommands and their arities are Redis 7.0's), every other form, HELP
 * too, "cluster support disabled". */
static const struct cmd_sub cluster_subs[] = {
	{"ADDSLOTS", -3}, {"ADDSLOTSRANGE", -4}, {"BUMPEPOCH", 2}, {"COUNT-FAILURE-REPORTS", 3},
	{"COUNTKEYSINSLOT", 3}, {"DELSLOTS", -3}, {"DELSLOTSRANGE", -4}, {"FAILOVER", -2}, {"FLUSHSLOTS", 2},
	{"FORGET", 3}, {"GETKEYSINSLOT", 4}, {"HELP", 2}, {"INFO", 2}, {"KEYSLOT", 3}, {"LINKS", 2},
	{"MEET", -4}, {"MYID", 2}, {"NODES", 2}, {"REPLICAS", 3}, {"REPLICATE", 3}, {"RESET", -2},
	{"SAVECONFIG", 2}, {"SET-CONFIG-EPOCH", 3}, {"SETSLOT", -4}, {"SHARDS", 2}, {"SLAVES", 3}, {"SLOTS", 2},
};
const struct cmd_container cmd_container_cluster = {"cluster", cluster_subs,
						    sizeof(cluster_subs) / sizeof(cluster_subs[0])};

static void cmd_run_no_cluster(CMD_RUN_ARGS)
{
	if (argc >= 2 && resp_arg_is(&argv[0], "CLUSTER") &&
	    cmd_subcommand(argv, argc, cluster_subs, sizeof(cluster_subs) / sizeof(cluster_subs[0]), rb) < 0)
		return; /* the error is in rb */
	resp_add_error(rb, "ERR This instance has cluster support disabled");
}

/* ---- the table ---- */

static const struct cmd_def defs[] = {
	{"dyn.get", -2, CMDF_R, 1, 1, 1, cmd_run_dyn_get, cmd_reply_dyn_get, "every sibling value and the causal context", NULL, NULL},
	{"dyn.put", -4, CMDF_W, 1, 1, 1, cmd_run_dyn_put, cmd_reply_dyn_ok, "write a value with a causal context", NULL, NULL},
	{"dyn.del", -3, CMDF_W, 1, 1, 1, cmd_run_dyn_del, cmd_reply_dyn_ok, "delete with a causal context", NULL, NULL},
	{"dyn.status", 1, 0, 0, 0, 0, cmd_run_dyn_status, cmd_reply_dyn_view, "this node's view of the cluster", NULL, NULL},
	{"dyn.ring", 1, 0, 0, 0, 0, cmd_run_dyn_ring, cmd_reply_dyn_view, "the partition table", NULL, NULL},
	{"cluster", -2, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported", NULL, NULL},
	{"readonly", 1, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported", NULL, NULL},
	{"readwrite", 1, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported", NULL, NULL},
};

const struct cmd_family cmd_family_dyn = {defs, sizeof(defs) / sizeof(defs[0]), "cluster"};
