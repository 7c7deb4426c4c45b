/* cmd.c - the command table and the key commands (GET, SET, DEL, ...).
 *
 * Semantics over the engine (docs/ARCHITECTURE.md, "Node server"):
 * - Every write is acknowledged only once durable (the store's contract).
 * - Commands that read then write (SET with GET or KEEPTTL, EXPIRE family,
 *   PERSIST, GETDEL) run as engine read-modify-writes: compare-and-set on
 *   the record's sequence number, so no concurrent write is lost.
 * - Multi-key commands (MSET, DEL, MGET, EXISTS) are one store operation per
 *   key, not atomic across keys; each key's operation is.
 */
#include "server/cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "server/cmd_int.h"

/* ---- helpers ---- */

int cmd_prepare_ops(struct cmd *cmd, uint32_t n)
{
	DV_ASSERT(cmd->nops == 0 && n > 0);
	if (n == 1) {
		cmd->ops = &cmd->one;
	} else {
		cmd->ops = malloc((size_t)n * sizeof(struct eop));
		if (!cmd->ops)
			return -ENOMEM;
	}
	cmd->nops = n;
	for (uint32_t i = 0; i < n; i++)
		cmd->ops[i].kv = NULL; /* so a failed fill can release them all */
	return 0;
}

void cmd_release_ops(struct cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->nops; i++)
		eop_release(&cmd->ops[i]);
	if (cmd->ops && cmd->ops != &cmd->one)
		free(cmd->ops);
	cmd->ops = NULL;
	cmd->nops = 0;
}

const char *cmd_store_error(int err)
{
	switch (err) {
	case -DV_EFULL: return "OOM device full: no free zone left for writes";
	case -DV_EFATAL: return "ERR storage device failed; this node refuses writes (see its log)";
	case -DV_ECORRUPT: return "ERR data corrupt on this node (checksum mismatch); not returned";
	case -DV_ETOOBIG: return "ERR key or value too large for this node's zones";
	case -ENOMEM: return "OOM out of memory";
	case -EBUSY: return "ERR too many concurrent updates of this key; try again";
	case -EOVERFLOW: return "ERR too many keys share this key's hash bits; refused";
	case -EROFS: return "READONLY the store is read-only";
	/* Cluster mode (chost.c). */
	case -ETIMEDOUT:
		return "TIMEOUT the write may or may not have been applied: fewer than W replicas confirmed it in "
		       "time (read the key to see)";
	case -ETIME: return "TIMEOUT fewer than R replicas answered in time (nothing was written)";
	case -EBADMSG:
		return "ERR invalid context: not one DYN.GET returned for this key (garbage, truncated or altered); "
		       "use \"\" for a key never read";
	case -EXDEV: return "ERR invalid context: it belongs to another cluster";
	case -E2BIG:
		return "ERR too many siblings or too large a version for this key: read it with DYN.GET and write "
		       "the resolved value with DYN.PUT and its context";
	case -EAGAIN: return "ERR node busy: too many requests in flight; try again";
	case -ENAMETOOLONG: return "ERR key too large for cluster mode (max 1023 bytes)";
	case -EINVAL: return "ERR invalid request (keyspace, R or W) for this cluster";
	default: return "ERR storage error";
	}
}

bool cmd_check_key(const struct resp_arg *k, struct resp_buf *rb)
{
	if (k->len == 0) {
		resp_add_error(rb, "ERR empty keys are not supported");
		return false;
	}
	if (k->len > DV_KEY_BYTES_MAX) {
		resp_add_errorf(rb, "ERR key too large (%u bytes, max %u)", k->len, DV_KEY_BYTES_MAX);
		return false;
	}
	return true;
}

bool cmd_check_value(const struct resp_arg *v, struct resp_buf *rb)
{
	if (v->len > DV_VALUE_BYTES_MAX) {
		resp_add_errorf(rb, "ERR value too large (%u bytes, max %u)", v->len, DV_VALUE_BYTES_MAX);
		return false;
	}
	return true;
}

/* Fill op i of cmd; on failure every op is released and rb has the error. */
static bool fill_op(struct cmd *cmd, uint32_t i, enum eop_kind kind, const struct resp_arg *key,
		    const struct resp_arg *val, struct resp_buf *rb)
{
	int err = eop_init(&cmd->ops[i], kind, key->ptr, key->len, val ? val->ptr : NULL, val ? val->len : 0);
	if (err) {
		cmd_release_ops(cmd);
		resp_add_error(rb, cmd_store_error(err));
		return false;
	}
	return true;
}

/* The one op of a single-key command; NULL when rb has the error. */
static struct eop *prepare_one(struct cmd *cmd, enum eop_kind kind, const struct resp_arg *key,
			       const struct resp_arg *val, struct resp_buf *rb)
{
	if (cmd_prepare_ops(cmd, 1)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return NULL;
	}
	return fill_op(cmd, 0, kind, key, val, rb) ? &cmd->ops[0] : NULL;
}

/* One op per key at argv[first], argv[first+step], ... */
static void prepare_keys(struct cmd *cmd, struct resp_arg *argv, uint32_t argc, uint32_t first, uint32_t step,
			 enum eop_kind kind, struct resp_buf *rb)
{
	uint32_t n = (argc - first + step - 1) / step;
	for (uint32_t i = first; i < argc; i += step)
		if (!cmd_check_key(&argv[i], rb) || (kind == EOP_PUT && !cmd_check_value(&argv[i + 1], rb)))
			return;
	if (cmd_prepare_ops(cmd, n)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct resp_arg *key = &argv[first + i * step];
		if (!fill_op(cmd, i, kind, key, kind == EOP_PUT ? key + 1 : NULL, rb))
			return;
	}
}

static bool first_error(const struct cmd *cmd, struct resp_buf *rb)
{
	for (uint32_t i = 0; i < cmd->nops; i++) {
		int r = cmd->ops[i].result;
		if (r && r != -DV_ENOTFOUND && r != -EEXIST && r != -ESTALE) {
			resp_add_error(rb, cmd_store_error(r));
			return true;
		}
	}
	return false;
}

/* Absolute expiry from a relative or absolute time; false when invalid. */
bool cmd_expire_at(int64_t t, bool ms, bool absolute, uint64_t now_ms, uint64_t *out)
{
	if (!ms) {
		if (t > INT64_MAX / 1000 || t < INT64_MIN / 1000)
			return false;
		t *= 1000;
	}
	if (!absolute) {
		if (t > 0 && (uint64_t)t > (uint64_t)INT64_MAX - now_ms)
			return false;
		t += (int64_t)now_ms;
	}
	*out = t <= 0 ? 1 : (uint64_t)t; /* in the past: expires at once */
	return true;
}

/* ---- GET, TYPE, EXISTS, MGET, TTL ---- */

/* GET, MGET, EXISTS, TYPE, TTL: one read per key. */
static void run_read_keys(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc,
			  struct resp_buf *rb)
{
	prepare_keys(cmd, argv, argc, 1, 1, EOP_GET, rb);
}

static void reply_get(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	struct eop *e = &cmd->ops[0];
	if (e->result == 0)
		resp_add_bulk(rb, e->val, e->val_len);
	else if (e->result == -DV_ENOTFOUND)
		resp_add_null(rb, c->proto);
	else
		resp_add_error(rb, cmd_store_error(e->result));
}

static void reply_type(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	if (!first_error(cmd, rb))
		resp_add_simple(rb, cmd->ops[0].result == 0 ? "string" : "none");
}

static void reply_mget(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	if (first_error(cmd, rb))
		return;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < cmd->nops; i++)
		bytes += cmd->ops[i].val_len + 16u;
	if (bytes > c->w->cfg->max_reply_bytes) {
		resp_add_errorf(rb, "ERR reply of %llu bytes over max-reply-bytes", (unsigned long long)bytes);
		return;
	}
	if (resp_buf_reserve(rb, bytes + 16)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	resp_add_array(rb, cmd->nops);
	for (uint32_t i = 0; i < cmd->nops; i++) {
		struct eop *e = &cmd->ops[i];
		if (e->result == 0)
			resp_add_bulk(rb, e->val, e->val_len);
		else
			resp_add_null(rb, c->proto);
	}
}

static void reply_ttl_common(struct conn *c, struct cmd *cmd, struct resp_buf *rb, bool ms)
{
	struct eop *e = &cmd->ops[0];
	if (e->result == -DV_ENOTFOUND) {
		resp_add_int(rb, -2);
	} else if (e->result) {
		resp_add_error(rb, cmd_store_error(e->result));
	} else if (e->expire_ms == 0) {
		resp_add_int(rb, -1);
	} else {
		uint64_t now = store_now_ms();
		int64_t left = e->expire_ms > now ? (int64_t)(e->expire_ms - now) : 0;
		resp_add_int(rb, ms ? left : (left + 500) / 1000);
	}
}

static void reply_ttl(struct conn *c, struct cmd *cmd, struct resp_buf *rb) { reply_ttl_common(c, cmd, rb, false); }
static void reply_pttl(struct conn *c, struct cmd *cmd, struct resp_buf *rb) { reply_ttl_common(c, cmd, rb, true); }

/* ---- SET family ---- */

enum set_flags {
	SETF_NX = 1u << 0,
	SETF_XX = 1u << 1,
	SETF_GET = 1u << 2,
	SETF_KEEPTTL = 1u << 3,
	SETF_EXPIRE = 1u << 4,
};

/* RMW decision for SET with GET or KEEPTTL. reply_int: 1 when written. */
static enum rmw_action decide_set(struct eop *e, uint64_t now_ms)
{
	e->reply_int = 0;
	e->result = 0;
	if ((e->flags & SETF_NX) && e->found)
		return RMW_FINISH;
	if ((e->flags & SETF_XX) && !e->found)
		return RMW_FINISH;
	e->reply_int = 1;
	e->sop.value = e->kv + e->sop.key_len;
	e->sop.val_len = e->kv_len - e->sop.key_len;
	e->sop.meta = NULL;
	e->sop.meta_len = 0;
	e->sop.expire_ms = (e->flags & SETF_KEEPTTL) && e->found ? e->expire_ms : (uint64_t)e->arg;
	return RMW_PUT;
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts|KEEPTTL] */
static int parse_set_options(struct resp_arg *argv, uint32_t argc, uint32_t *flags, uint64_t *expire_ms,
			     struct resp_buf *rb)
{
	*flags = 0;
	*expire_ms = 0;
	for (uint32_t i = 3; i < argc; i++) {
		struct resp_arg *a = &argv[i];
		bool has_next = i + 1 < argc;
		if (resp_arg_is(a, "NX") && !(*flags & SETF_XX)) {
			*flags |= SETF_NX;
		} else if (resp_arg_is(a, "XX") && !(*flags & SETF_NX)) {
			*flags |= SETF_XX;
		} else if (resp_arg_is(a, "GET")) {
			*flags |= SETF_GET;
		} else if (resp_arg_is(a, "KEEPTTL") && !(*flags & SETF_EXPIRE)) {
			*flags |= SETF_KEEPTTL;
		} else if (has_next && !(*flags & (SETF_EXPIRE | SETF_KEEPTTL)) &&
			   (resp_arg_is(a, "EX") || resp_arg_is(a, "PX") || resp_arg_is(a, "EXAT") ||
			    resp_arg_is(a, "PXAT"))) {
			int64_t t;
			if (resp_arg_i64(&argv[i + 1], &t)) {
				resp_add_error(rb, "ERR value is not an integer or out of range");
				return -EINVAL;
			}
			bool ms = a->ptr[0] == 'P' || a->ptr[0] == 'p';
			bool absolute = a->len == 4;
			if (t <= 0 || !cmd_expire_at(t, ms, absolute, store_now_ms(), expire_ms)) {
				resp_add_error(rb, "ERR invalid expire time in 'set' command");
				return -EINVAL;
			}
			*flags |= SETF_EXPIRE;
			i++;
		} else {
			resp_add_error(rb, "ERR syntax error");
			return -EINVAL;
		}
	}
	return 0;
}

static void run_set(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	uint32_t flags;
	uint64_t expire_ms;
	if (parse_set_options(argv, argc, &flags, &expire_ms, rb) || !cmd_check_key(&argv[1], rb) ||
	    !cmd_check_value(&argv[2], rb))
		return;
	bool rmw = flags & (SETF_GET | SETF_KEEPTTL);
	struct eop *e = prepare_one(cmd, rmw ? EOP_RMW : EOP_PUT, &argv[1], &argv[2], rb);
	if (!e)
		return;
	cmd->flags = flags;
	e->flags = flags;
	e->arg = (int64_t)expire_ms;
	e->sop.expire_ms = expire_ms;
	if (rmw)
		e->decide = decide_set;
	else
		e->sop.cond = flags & SETF_NX ? STORE_IF_ABSENT : flags & SETF_XX ? STORE_IF_PRESENT : STORE_ALWAYS;
}

static void reply_set(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	struct eop *e = &cmd->ops[0];
	if (e->result && e->result != -EEXIST && e->result != -DV_ENOTFOUND) {
		resp_add_error(rb, cmd_store_error(e->result));
	} else if (cmd->flags & SETF_GET) {
		if (e->found)
			resp_add_bulk(rb, e->val, e->val_len);
		else
			resp_add_null(rb, c->proto);
	} else if (e->kind == EOP_RMW ? e->reply_int == 1 : e->result == 0) {
		resp_add_simple(rb, "OK");
	} else {
		resp_add_null(rb, c->proto);
	}
}

/* SETEX/PSETEX key time value */
static void run_setex_common(struct cmd *cmd, struct resp_arg *argv, bool ms, const char *name, struct resp_buf *rb)
{
	int64_t t;
	uint64_t at;
	if (resp_arg_i64(&argv[2], &t)) {
		resp_add_error(rb, "ERR value is not an integer or out of range");
		return;
	}
	if (t <= 0 || !cmd_expire_at(t, ms, false, store_now_ms(), &at)) {
		resp_add_errorf(rb, "ERR invalid expire time in '%s' command", name);
		return;
	}
	if (!cmd_check_key(&argv[1], rb) || !cmd_check_value(&argv[3], rb))
		return;
	struct eop *e = prepare_one(cmd, EOP_PUT, &argv[1], &argv[3], rb);
	if (e)
		e->sop.expire_ms = at;
}

static void run_setex(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	run_setex_common(cmd, argv, false, "setex", rb);
}

static void run_psetex(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	run_setex_common(cmd, argv, true, "psetex", rb);
}

static void run_setnx(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	if (!cmd_check_key(&argv[1], rb) || !cmd_check_value(&argv[2], rb))
		return;
	struct eop *e = prepare_one(cmd, EOP_PUT, &argv[1], &argv[2], rb);
	if (e)
		e->sop.cond = STORE_IF_ABSENT;
}

static void reply_ok(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	if (!first_error(cmd, rb))
		resp_add_simple(rb, "OK");
}

/* DEL, EXISTS, SETNX: how many of the ops found or changed their key. */
static void reply_applied_count(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	if (first_error(cmd, rb))
		return;
	int64_t n = 0;
	for (uint32_t i = 0; i < cmd->nops; i++)
		n += cmd->ops[i].result == 0;
	resp_add_int(rb, n);
}

static void run_mset(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	if ((argc - 1) % 2) {
		resp_add_errorf(rb, "ERR wrong number of arguments for '%s' command", cmd->def->name);
		return;
	}
	prepare_keys(cmd, argv, argc, 1, 2, EOP_PUT, rb);
}

static void run_del(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	prepare_keys(cmd, argv, argc, 1, 1, EOP_DEL, rb);
}

/* ---- EXPIRE family, PERSIST, GETDEL ---- */

enum expire_flags { EXPF_NX = 1, EXPF_XX = 2, EXPF_GT = 4, EXPF_LT = 8 };

/* Keep the value and metadata, change the expiry (0 = none). */
static enum rmw_action rewrite_with_expiry(struct eop *e, uint64_t expire_ms)
{
	e->sop.value = e->val;
	e->sop.val_len = e->val_len;
	e->sop.meta = e->meta;
	e->sop.meta_len = e->meta_len;
	e->sop.expire_ms = expire_ms;
	return RMW_PUT;
}

static enum rmw_action decide_expire(struct eop *e, uint64_t now_ms)
{
	e->result = 0;
	e->reply_int = 0;
	if (!e->found)
		return RMW_FINISH;
	uint64_t at = (uint64_t)e->arg, cur = e->expire_ms; /* cur 0: never */
	if ((e->flags & EXPF_NX) && cur)
		return RMW_FINISH;
	if ((e->flags & EXPF_XX) && !cur)
		return RMW_FINISH;
	if ((e->flags & EXPF_GT) && (!cur || at <= cur))
		return RMW_FINISH;
	if ((e->flags & EXPF_LT) && cur && at >= cur)
		return RMW_FINISH;
	e->reply_int = 1;
	if (at <= now_ms)
		return RMW_DEL; /* Redis deletes a key given a time in the past */
	return rewrite_with_expiry(e, at);
}

static bool parse_expire_flags(struct resp_arg *argv, uint32_t argc, uint32_t *flags, struct resp_buf *rb)
{
	*flags = 0;
	for (uint32_t i = 3; i < argc; i++) {
		if (resp_arg_is(&argv[i], "NX"))
			*flags |= EXPF_NX;
		else if (resp_arg_is(&argv[i], "XX"))
			*flags |= EXPF_XX;
		else if (resp_arg_is(&argv[i], "GT"))
			*flags |= EXPF_GT;
		else if (resp_arg_is(&argv[i], "LT"))
			*flags |= EXPF_LT;
		else {
			resp_add_errorf(rb, "ERR Unsupported option %.*s", (int)(argv[i].len < 32 ? argv[i].len : 32),
					argv[i].ptr);
			return false;
		}
	}
	if ((*flags & EXPF_NX) && (*flags & (EXPF_XX | EXPF_GT | EXPF_LT))) {
		resp_add_error(rb, "ERR NX and XX, GT or LT options at the same time are not compatible");
		return false;
	}
	if ((*flags & EXPF_GT) && (*flags & EXPF_LT)) {
		resp_add_error(rb, "ERR GT and LT options at the same time are not compatible");
		return false;
	}
	return true;
}

static void run_expire_common(struct cmd *cmd, struct resp_arg *argv, uint32_t argc, bool ms, bool absolute,
			      struct resp_buf *rb)
{
	int64_t t;
	uint64_t at;
	uint32_t flags;
	if (resp_arg_i64(&argv[2], &t)) {
		resp_add_error(rb, "ERR value is not an integer or out of range");
		return;
	}
	if (!cmd_expire_at(t, ms, absolute, store_now_ms(), &at)) {
		resp_add_errorf(rb, "ERR invalid expire time in '%s' command", cmd->def->name);
		return;
	}
	if (!parse_expire_flags(argv, argc, &flags, rb) || !cmd_check_key(&argv[1], rb))
		return;
	struct eop *e = prepare_one(cmd, EOP_RMW, &argv[1], NULL, rb);
	if (!e)
		return;
	e->decide = decide_expire;
	e->arg = (int64_t)at;
	e->flags = flags;
}

static void run_expire(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	run_expire_common(cmd, argv, argc, false, false, rb);
}
static void run_pexpire(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	run_expire_common(cmd, argv, argc, true, false, rb);
}
static void run_expireat(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	run_expire_common(cmd, argv, argc, false, true, rb);
}
static void run_pexpireat(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc,
			  struct resp_buf *rb)
{
	run_expire_common(cmd, argv, argc, true, true, rb);
}

static void reply_rmw_int(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	struct eop *e = &cmd->ops[0];
	if (e->result)
		resp_add_error(rb, cmd_store_error(e->result));
	else
		resp_add_int(rb, e->reply_int);
}

static enum rmw_action decide_persist(struct eop *e, uint64_t now_ms)
{
	e->result = 0;
	e->reply_int = 0;
	if (!e->found || e->expire_ms == 0)
		return RMW_FINISH;
	e->reply_int = 1;
	return rewrite_with_expiry(e, 0);
}

static enum rmw_action decide_getdel(struct eop *e, uint64_t now_ms)
{
	e->result = 0;
	return e->found ? RMW_DEL : RMW_FINISH;
}

static void run_rmw_key(struct cmd *cmd, struct resp_arg *argv, eop_decide_fn decide, struct resp_buf *rb)
{
	if (!cmd_check_key(&argv[1], rb))
		return;
	struct eop *e = prepare_one(cmd, EOP_RMW, &argv[1], NULL, rb);
	if (e)
		e->decide = decide;
}

static void run_persist(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	run_rmw_key(cmd, argv, decide_persist, rb);
}

static void run_getdel(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	run_rmw_key(cmd, argv, decide_getdel, rb);
}

static void reply_getdel(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	struct eop *e = &cmd->ops[0];
	if (e->result)
		resp_add_error(rb, cmd_store_error(e->result));
	else if (e->found)
		resp_add_bulk(rb, e->val, e->val_len);
	else
		resp_add_null(rb, c->proto);
}

static void run_unknown(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	resp_add_error(rb, "ERR unknown command");
}

/* ---- the table ---- */

#define R CMDF_READ
#define W CMDF_WRITE
#define RMW (CMDF_RMW | CMDF_WRITE)
#define NA CMDF_NOAUTH

static const struct cmd_def table[] = {
	{"get", 2, R, 1, 1, 1, run_read_keys, reply_get, "value of a key"},
	{"set", -3, W, 1, 1, 1, run_set, reply_set, "set a key [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]"},
	{"setnx", 3, W, 1, 1, 1, run_setnx, reply_applied_count, "set a key if absent"},
	{"setex", 4, W, 1, 1, 1, run_setex, reply_ok, "set a key with a time to live in seconds"},
	{"psetex", 4, W, 1, 1, 1, run_psetex, reply_ok, "set a key with a time to live in milliseconds"},
	{"del", -2, W, 1, -1, 1, run_del, reply_applied_count, "delete keys"},
	{"unlink", -2, W, 1, -1, 1, run_del, reply_applied_count, "delete keys"},
	{"exists", -2, R, 1, -1, 1, run_read_keys, reply_applied_count, "count the keys that exist"},
	{"mget", -2, R, 1, -1, 1, run_read_keys, reply_mget, "values of keys"},
	{"mset", -3, W, 1, -1, 2, run_mset, reply_ok, "set keys (not atomic across keys)"},
	{"type", 2, R, 1, 1, 1, run_read_keys, reply_type, "string or none"},
	{"ttl", 2, R, 1, 1, 1, run_read_keys, reply_ttl, "seconds to live"},
	{"pttl", 2, R, 1, 1, 1, run_read_keys, reply_pttl, "milliseconds to live"},
	{"expire", -3, RMW, 1, 1, 1, run_expire, reply_rmw_int, "set a time to live in seconds"},
	{"pexpire", -3, RMW, 1, 1, 1, run_pexpire, reply_rmw_int, "set a time to live in milliseconds"},
	{"expireat", -3, RMW, 1, 1, 1, run_expireat, reply_rmw_int, "expire at a unix time in seconds"},
	{"pexpireat", -3, RMW, 1, 1, 1, run_pexpireat, reply_rmw_int, "expire at a unix time in milliseconds"},
	{"persist", 2, RMW, 1, 1, 1, run_persist, reply_rmw_int, "remove the time to live"},
	{"getdel", 2, RMW, 1, 1, 1, run_getdel, reply_getdel, "get a value and delete the key"},
	{"ping", -1, 0, 0, 0, 0, cmd_run_ping, NULL, "PONG, or the message"},
	{"echo", 2, 0, 0, 0, 0, cmd_run_echo, NULL, "the message"},
	{"auth", -2, NA, 0, 0, 0, cmd_run_auth, NULL, "authenticate"},
	{"hello", -1, NA, 0, 0, 0, cmd_run_hello, NULL, "handshake: protocol 2 or 3, AUTH, SETNAME"},
	{"select", 2, 0, 0, 0, 0, cmd_run_select_db, NULL, "database 0, or a keyspace in cluster mode"},
	{"quit", -1, NA, 0, 0, 0, cmd_run_quit, NULL, "close the connection"},
	{"client", -2, 0, 0, 0, 0, cmd_run_client, NULL, "SETNAME GETNAME ID INFO LIST SETINFO"},
	{"command", -1, 0, 0, 0, 0, cmd_run_command, NULL, "COUNT INFO DOCS LIST"},
	{"config", -2, 0, 0, 0, 0, cmd_run_config, NULL, "GET parameters"},
	{"dbsize", 1, 0, 0, 0, 0, cmd_run_stats, cmd_reply_dbsize, "number of live keys"},
	{"info", -1, 0, 0, 0, 0, cmd_run_stats, cmd_reply_info, "server, clients, stats, keyspace, storage"},
	{"time", 1, 0, 0, 0, 0, cmd_run_time, NULL, "server time"},
	{"dyn.get", -2, R, 1, 1, 1, cmd_run_dyn_get, cmd_reply_dyn_get, "every sibling value and the causal context"},
	{"dyn.put", -4, W, 1, 1, 1, cmd_run_dyn_put, cmd_reply_dyn_ok, "write a value with a causal context"},
	{"dyn.del", -3, W, 1, 1, 1, cmd_run_dyn_del, cmd_reply_dyn_ok, "delete with a causal context"},
	{"dyn.status", 1, 0, 0, 0, 0, cmd_run_dyn_status, cmd_reply_dyn_view, "this node's view of the cluster"},
	{"dyn.ring", 1, 0, 0, 0, 0, cmd_run_dyn_ring, cmd_reply_dyn_view, "the partition table"},
	{"cluster", -2, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported"},
	{"readonly", 1, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported"},
	{"readwrite", 1, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported"},
	{"unknown", -1, 0, 0, 0, 0, run_unknown, NULL, "(unknown commands and protocol errors)"},
};

#undef R
#undef W
#undef RMW
#undef NA

_Static_assert(sizeof(table) / sizeof(table[0]) <= METRICS_CMDS_MAX, "commands fit the metrics arrays");

const struct cmd_def *cmd_unknown(void) { return &table[sizeof(table) / sizeof(table[0]) - 1]; }
unsigned cmd_count(void) { return (unsigned)(sizeof(table) / sizeof(table[0])); }
const struct cmd_def *cmd_by_index(unsigned i) { return i < cmd_count() ? &table[i] : NULL; }
unsigned cmd_index(const struct cmd_def *d) { return (unsigned)(d - table); }

const struct cmd_def *cmd_lookup(const struct resp_arg *name)
{
	if (name->len == 0 || name->len > 16)
		return NULL;
	/* The hot commands first; the table is small enough to scan. */
	for (unsigned i = 0; i + 1 < cmd_count(); i++)
		if (strlen(table[i].name) == name->len && resp_arg_is(name, table[i].name))
			return &table[i];
	return NULL;
}
