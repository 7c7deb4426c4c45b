/* cmd_string.c - the string commands: GET, SET, SETNX, SETEX, PSETEX,
 * MGET, MSET, MSETNX, GETSET, GETDEL, GETEX, APPEND, STRLEN, GETRANGE,
 * SUBSTR, SETRANGE, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, SETBIT,
 * GETBIT, BITCOUNT, LCS, with Redis 7's replies and errors (t_string.c and
 * bitops.c are the reference).
 *
 * A command that reads its key and writes it (SET GET/KEEPTTL, GETSET,
 * GETDEL, GETEX with an option, APPEND, SETRANGE, SETBIT, the INCR family)
 * is one EOP_RMW: the engine reads the key, calls the command's decide()
 * with what it found, and writes with compare-and-set on the seq it read;
 * it holds the key meanwhile, so the RMWs and writes of one key run one
 * after another (engine.h): on one node no concurrent update is lost (two
 * INCRs always add two), and none fails under contention. In cluster mode the
 * chost runs the same decide() on the value its read picked and writes with
 * the read's context: sequential through one coordinator, concurrent ones
 * through others may become siblings (ARCHITECTURE.md). The INCR family
 * there is the cluster's convergent counter instead (node.h: a PN-counter
 * per node in a siblings keyspace, so concurrent INCRs through any nodes
 * all count; a read-modify-write of the text in an LWW keyspace):
 * EOP_DYN_INCR, the new value back in reply_int. INCRBYFLOAT is a plain
 * read-modify-write there (two through different nodes at once may lose
 * one), over a counter's value too (it becomes a plain value).
 * A decide() that refuses (not an integer, too large, ...) finishes with
 * a positive result code (enum str_err), which the reply turns into
 * Redis's error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "server/cmd_int.h"

enum str_err {
	STR_ERR_TOO_BIG = 1, /* the result would be longer than a value may be */
	STR_ERR_NOT_INT,
	STR_ERR_OVERFLOW,
	STR_ERR_NOT_FLOAT,
	STR_ERR_NAN,
	STR_ERR_NOMEM,
};

static void reply_str_err(int r, struct resp_buf *rb)
{
	switch (r) {
	case STR_ERR_TOO_BIG: resp_add_error(rb, "ERR string exceeds maximum allowed size (proto-max-bulk-len)"); break;
	case STR_ERR_NOT_INT: resp_add_error(rb, "ERR value is not an integer or out of range"); break;
	case STR_ERR_OVERFLOW: resp_add_error(rb, "ERR increment or decrement would overflow"); break;
	case STR_ERR_NOT_FLOAT: resp_add_error(rb, "ERR value is not a valid float"); break;
	case STR_ERR_NAN: resp_add_error(rb, "ERR increment would produce NaN or Infinity"); break;
	default: resp_add_error(rb, cmd_store_error(r > 0 ? -ENOMEM : r)); break;
	}
}

/* decide(): write e->val (resized by the caller) back with the record's
 * expiry kept. enc: Redis's object encoding when the value does not say it
 * (cmd_int.h: CMD_META_*): RAW when changed in place (APPEND, SETRANGE,
 * SETBIT), STR for INCRBYFLOAT's; a new value (INCR's) has none. Cluster
 * mode keeps its own metadata (the version): the chost writes no
 * command's. */
static enum rmw_action put_value_keep_ttl(struct eop *e, uint8_t enc)
{
	e->sop.value = e->val;
	e->sop.val_len = e->val_len;
	e->sop.meta = cmd_meta_bytes(enc, &e->sop.meta_len);
	e->sop.expire_ms = e->found ? e->expire_ms : 0;
	return RMW_PUT;
}

static struct eop *prepare_rmw(struct cmd *cmd, const struct resp_arg *key, const struct resp_arg *val,
			       eop_decide_fn decide, struct resp_buf *rb)
{
	if (!cmd_check_key(cmd->conn, key, rb) || (val && !cmd_check_value(val, rb)))
		return NULL;
	struct eop *e = cmd_prepare_one(cmd, EOP_RMW, key, val, rb);
	if (e)
		e->decide = decide;
	return e;
}

/* The command's argument copied into the eop after its key. */
static const char *eop_arg(const struct eop *e, uint32_t *len)
{
	*len = e->kv_len - e->sop.key_len;
	return e->kv + e->sop.key_len;
}

/* ---- GET, MGET, STRLEN, GETRANGE, GETBIT, BITCOUNT ---- */

static void run_get(CMD_RUN_ARGS)
{
	if (cmd_check_key(c, &argv[1], rb))
		cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb);
}

static void reply_get(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (e->result == 0)
		resp_add_bulk(rb, e->val, e->val_len);
	else if (e->result == -DV_ENOTFOUND)
		resp_add_null(rb, c->proto);
	else
		resp_add_error(rb, cmd_store_error(e->result));
}

/* MGET: its values may take max-reply-bytes less 16 bytes of framing per
 * key (an upper bound on "$<len>\r\n...\r\n"): the engine stops copying
 * them there (eop_budget) and the reply is an error, whatever the keys. */
static void run_mget(CMD_RUN_ARGS)
{
	uint64_t max = c->w->cfg->max_reply_bytes, framing = 16ull * argc;
	if (framing > max) {
		resp_add_errorf(rb, "ERR reply larger than max-reply-bytes (%llu bytes)", (unsigned long long)max);
		return;
	}
	cmd->budget = (struct eop_budget){.left = max - framing};
	cmd->count = argc - 1; /* the reply's array length */
	const struct cmd_keys spec = {.step = 1, .kind = EOP_GET, .budget = true};
	cmd_prepare_keys(cmd, argv, argc, 1, 0, &spec, rb);
}

/* MGET: the values of these ops, appended to the reply being built. */
static void fold_mget(struct conn *c, struct cmd *cmd)
{
	uint64_t bytes = 16;
	for (uint32_t i = 0; i < cmd->nops && !cmd->err; i++) {
		if (cmd_op_failed(cmd->ops[i].result)) /* -E2BIG: over the budget */
			cmd->err = cmd->ops[i].result;
		bytes += cmd->ops[i].val_len + 16u;
	}
	if (!cmd->err && resp_buf_reserve(&cmd->reply, bytes))
		cmd->err = -ENOMEM;
	if (!cmd->err && cmd->reply.len == 0)
		resp_add_array(&cmd->reply, (size_t)cmd->count);
	if (cmd->err) { /* no reply: free what was gathered */
		resp_buf_free(&cmd->reply);
		resp_buf_init(&cmd->reply);
		return;
	}
	for (uint32_t i = 0; i < cmd->nops; i++) {
		struct eop *e = &cmd->ops[i];
		if (e->result == 0)
			resp_add_bulk(&cmd->reply, e->val, e->val_len);
		else
			resp_add_null(&cmd->reply, c->proto);
	}
}

static void reply_mget(CMD_REPLY_ARGS)
{
	if (cmd->err == -E2BIG) {
		resp_add_errorf(rb, "ERR reply larger than max-reply-bytes (%llu bytes)",
				(unsigned long long)c->w->cfg->max_reply_bytes);
	} else if (cmd->err) {
		resp_add_error(rb, cmd_store_error(cmd->err));
	} else if (rb->len == 0) { /* the usual case: no copy */
		struct resp_buf t = *rb;
		*rb = cmd->reply;
		cmd->reply = t;
	} else if (resp_add_raw(rb, cmd->reply.data, cmd->reply.len)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
	}
}

/* STRLEN: a read that copies no value, only its length. */
static void run_strlen(CMD_RUN_ARGS)
{
	struct eop *e = cmd_check_key(c, &argv[1], rb) ? cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb) : NULL;
	if (e)
		e->no_value = true;
}

static void reply_strlen(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (cmd_op_failed(e->result))
		resp_add_error(rb, cmd_store_error(e->result));
	else
		resp_add_int(rb, e->result == 0 ? e->rec_val_len : 0);
}

/* GETRANGE/SUBSTR key start end: bytes [start, end] (negative from the end). */
static void run_getrange(CMD_RUN_ARGS)
{
	int64_t start, end;
	if (!cmd_arg_i64(&argv[2], &start, rb) || !cmd_arg_i64(&argv[3], &end, rb) || !cmd_check_key(c, &argv[1], rb))
		return;
	if (cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb)) {
		cmd->n0 = start;
		cmd->n1 = end;
	}
}

static void reply_getrange(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (cmd_op_failed(e->result)) {
		resp_add_error(rb, cmd_store_error(e->result));
		return;
	}
	int64_t start = cmd->n0, end = cmd->n1, len = e->result == 0 ? e->val_len : 0;
	if (e->result != 0 || (start < 0 && end < 0 && start > end)) {
		resp_add_bulk(rb, "", 0);
		return;
	}
	if (start < 0)
		start = len + start;
	if (end < 0)
		end = len + end;
	if (start < 0)
		start = 0;
	if (end < 0)
		end = 0;
	if (end >= len)
		end = len - 1;
	if (start > end || len == 0)
		resp_add_bulk(rb, "", 0);
	else
		resp_add_bulk(rb, e->val + start, (size_t)(end - start + 1));
}

/* Redis's bound on a bit offset: inside proto-max-bulk-len (512 MiB). */
#define BIT_OFFSET_BYTES_MAX (512ull << 20)

/* A bit offset as Redis reads one: an integer, not negative, inside Redis's
 * 512 MiB (GETBIT reads 0 past a value's end; SETBIT past dynvme's 1 MiB
 * values is refused by run_setbit as SETRANGE is). */
static bool parse_bit_offset(const struct resp_arg *a, uint64_t *out, struct resp_buf *rb)
{
	int64_t v;
	if (resp_arg_i64(a, &v) || v < 0 || (uint64_t)v >> 3 >= BIT_OFFSET_BYTES_MAX) {
		resp_add_error(rb, "ERR bit offset is not an integer or out of range");
		return false;
	}
	*out = (uint64_t)v;
	return true;
}

static void run_getbit(CMD_RUN_ARGS)
{
	uint64_t off;
	if (!parse_bit_offset(&argv[2], &off, rb) || !cmd_check_key(c, &argv[1], rb))
		return;
	if (cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb))
		cmd->u0 = off;
}

static void reply_getbit(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (cmd_op_failed(e->result)) {
		resp_add_error(rb, cmd_store_error(e->result));
		return;
	}
	uint64_t byte = cmd->u0 >> 3;
	int bit = 7 - (int)(cmd->u0 & 7);
	resp_add_int(rb, e->result == 0 && byte < e->val_len && (((unsigned char)e->val[byte] >> bit) & 1));
}

/* BITCOUNT key [start end [BYTE|BIT]]: Redis looks the key up first (a
 * missing key counts 0 whatever the arguments), so the arguments are
 * judged when the value is back. */
enum bitcount_flags { BC_RANGE = 1, BC_BIT = 2, BC_SYNTAX = 4, BC_NOT_INT = 8 };

static void run_bitcount(CMD_RUN_ARGS)
{
	if (!cmd_check_key(c, &argv[1], rb) || !cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb))
		return;
	uint32_t f = 0;
	if (argc == 4 || argc == 5) {
		f |= BC_RANGE;
		if (resp_arg_i64(&argv[2], &cmd->n0) || resp_arg_i64(&argv[3], &cmd->n1))
			f |= BC_NOT_INT;
		if (argc == 5) {
			if (resp_arg_is(&argv[4], "BIT"))
				f |= BC_BIT;
			else if (!resp_arg_is(&argv[4], "BYTE"))
				f |= BC_SYNTAX;
		}
	} else if (argc != 2) {
		f |= BC_SYNTAX;
	}
	cmd->flags = f;
}

static void reply_bitcount(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	uint32_t f = cmd->flags;
	if (cmd_op_failed(e->result)) {
		resp_add_error(rb, cmd_store_error(e->result));
		return;
	}
	if (e->result != 0) {
		resp_add_int(rb, 0);
		return;
	}
	if ((f & BC_SYNTAX) && !(f & BC_RANGE)) {
		resp_add_error(rb, "ERR syntax error");
		return;
	}
	if (f & BC_NOT_INT) {
		resp_add_error(rb, "ERR value is not an integer or out of range");
		return;
	}
	const unsigned char *p = (const unsigned char *)e->val;
	int64_t len = e->val_len, start = 0, end = len - 1;
	unsigned char first_mask = 0, last_mask = 0;
	if (f & BC_RANGE) {
		start = cmd->n0;
		end = cmd->n1;
		if (start < 0 && end < 0 && start > end) {
			resp_add_int(rb, 0);
			return;
		}
		if (f & BC_SYNTAX) {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
		int64_t total = f & BC_BIT ? len << 3 : len;
		if (start < 0)
			start = total + start;
		if (end < 0)
			end = total + end;
		if (start < 0)
			start = 0;
		if (end < 0)
			end = 0;
		if (end >= total)
			end = total - 1;
		if ((f & BC_BIT) && start <= end) {
			first_mask = (unsigned char)(~((1u << (8 - (start & 7))) - 1) & 0xff);
			last_mask = (unsigned char)((1u << (7 - (end & 7))) - 1);
			start >>= 3;
			end >>= 3;
		}
	}
	if (start > end) {
		resp_add_int(rb, 0);
		return;
	}
	int64_t n = 0;
	for (int64_t i = start; i <= end; i++)
		n += __builtin_popcount(p[i]);
	n -= __builtin_popcount(p[start] & first_mask) + __builtin_popcount(p[end] & last_mask);
	resp_add_int(rb, n);
}

/* ---- SET family ---- */

/* Redis's OBJ_* flags of parseExtendedStringArgumentsOrReply (t_string.c). */
enum set_flags {
	SETF_NX = 1u << 0,
	SETF_XX = 1u << 1,
	SETF_EX = 1u << 2,
	SETF_PX = 1u << 3,
	SETF_KEEPTTL = 1u << 4,
	SETF_GET = 1u << 5,
	SETF_EXAT = 1u << 6,
	SETF_PXAT = 1u << 7,
	SETF_PERSIST = 1u << 8,
};
#define SETF_TIME (SETF_EX | SETF_PX | SETF_EXAT | SETF_PXAT)

static bool opt_is(const struct resp_arg *a, const char *lit) { return resp_arg_is(a, lit); }

/* The options of SET (from argv[3]) or GETEX (from argv[2]), with Redis's
 * rules: each is refused only next to one it conflicts with, so a repeat
 * (EX 10 EX 20, NX NX, GET GET) is taken and the last time given wins. */
static bool parse_ext(const struct resp_arg *argv, uint32_t argc, bool set, uint32_t *flags,
		      const struct resp_arg **expire, struct resp_buf *rb)
{
	uint32_t f = 0;
	*expire = NULL;
	for (uint32_t j = set ? 3 : 2; j < argc; j++) {
		const struct resp_arg *a = &argv[j];
		bool next = j + 1 < argc;
		if (set && opt_is(a, "NX") && !(f & SETF_XX)) {
			f |= SETF_NX;
		} else if (set && opt_is(a, "XX") && !(f & SETF_NX)) {
			f |= SETF_XX;
		} else if (set && opt_is(a, "GET")) {
			f |= SETF_GET;
		} else if (set && opt_is(a, "KEEPTTL") && !(f & (SETF_PERSIST | SETF_TIME))) {
			f |= SETF_KEEPTTL;
		} else if (!set && opt_is(a, "PERSIST") && !(f & (SETF_TIME | SETF_KEEPTTL))) {
			f |= SETF_PERSIST;
		} else if (next && opt_is(a, "EX") && !(f & (SETF_KEEPTTL | SETF_PERSIST | SETF_EXAT | SETF_PX | SETF_PXAT))) {
			f |= SETF_EX;
			*expire = &argv[++j];
		} else if (next && opt_is(a, "PX") && !(f & (SETF_KEEPTTL | SETF_PERSIST | SETF_EX | SETF_EXAT | SETF_PXAT))) {
			f |= SETF_PX;
			*expire = &argv[++j];
		} else if (next && opt_is(a, "EXAT") && !(f & (SETF_KEEPTTL | SETF_PERSIST | SETF_EX | SETF_PX | SETF_PXAT))) {
			f |= SETF_EXAT;
			*expire = &argv[++j];
		} else if (next && opt_is(a, "PXAT") && !(f & (SETF_KEEPTTL | SETF_PERSIST | SETF_EX | SETF_EXAT | SETF_PX))) {
			f |= SETF_PXAT;
			*expire = &argv[++j];
		} else {
			resp_add_error(rb, "ERR syntax error");
			return false;
		}
	}
	*flags = f;
	return true;
}

/* getExpireMillisecondsOrReply: the absolute expiry in unix ms of an
 * EX/PX (relative) or EXAT/PXAT time; 0 with the error in rb when it is
 * not an integer, not positive, or overflows. */
static uint64_t expire_ms_of(const struct resp_arg *a, uint32_t flags, const char *name, struct resp_buf *rb)
{
	int64_t ms;
	if (!cmd_arg_i64(a, &ms, rb))
		return 0;
	bool seconds = flags & (SETF_EX | SETF_EXAT);
	uint64_t now = store_now_ms();
	if (ms <= 0 || (seconds && ms > INT64_MAX / 1000))
		goto bad;
	if (seconds)
		ms *= 1000;
	if (flags & (SETF_EX | SETF_PX)) {
		if ((uint64_t)ms > (uint64_t)INT64_MAX - now)
			goto bad;
		ms += (int64_t)now;
	}
	return (uint64_t)ms;
bad:
	resp_add_errorf(rb, "ERR invalid expire time in '%s' command", name);
	return 0;
}

/* RMW decision for SET with GET or KEEPTTL, and GETSET. reply_int: 1
 * when written. The new value is the command's, after the key in kv. */
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
static void run_set(CMD_RUN_ARGS)
{
	uint32_t flags;
	const struct resp_arg *exp;
	uint64_t expire_ms = 0;
	if (!parse_ext(argv, argc, true, &flags, &exp, rb))
		return;
	if (exp && (expire_ms = expire_ms_of(exp, flags, "set", rb)) == 0)
		return;
	if (!cmd_check_key(c, &argv[1], rb) || !cmd_check_value(&argv[2], rb))
		return;
	bool rmw = flags & (SETF_GET | SETF_KEEPTTL);
	struct eop *e = cmd_prepare_one(cmd, rmw ? EOP_RMW : EOP_PUT, &argv[1], &argv[2], rb);
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

static void reply_set(CMD_REPLY_ARGS)
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

/* GETSET key value: SET key value GET (the old value; the TTL goes). */
static void run_getset(CMD_RUN_ARGS)
{
	if (!cmd_check_key(c, &argv[1], rb) || !cmd_check_value(&argv[2], rb))
		return;
	struct eop *e = cmd_prepare_one(cmd, EOP_RMW, &argv[1], &argv[2], rb);
	if (!e)
		return;
	cmd->flags = e->flags = SETF_GET;
	e->decide = decide_set;
}

/* SETEX/PSETEX key time value */
static void run_setex_common(struct conn *c, struct cmd *cmd, struct resp_arg *argv, bool ms, const char *name,
			     struct resp_buf *rb)
{
	uint64_t at = expire_ms_of(&argv[2], ms ? SETF_PX : SETF_EX, name, rb);
	if (at == 0 || !cmd_check_key(c, &argv[1], rb) || !cmd_check_value(&argv[3], rb))
		return;
	struct eop *e = cmd_prepare_one(cmd, EOP_PUT, &argv[1], &argv[3], rb);
	if (e)
		e->sop.expire_ms = at;
}

static void run_setex(CMD_RUN_ARGS) { run_setex_common(c, cmd, argv, false, "setex", rb); }
static void run_psetex(CMD_RUN_ARGS) { run_setex_common(c, cmd, argv, true, "psetex", rb); }

static void run_setnx(CMD_RUN_ARGS)
{
	if (!cmd_check_key(c, &argv[1], rb) || !cmd_check_value(&argv[2], rb))
		return;
	struct eop *e = cmd_prepare_one(cmd, EOP_PUT, &argv[1], &argv[2], rb);
	if (e)
		e->sop.cond = STORE_IF_ABSENT;
}

static void reply_ok(CMD_REPLY_ARGS)
{
	if (!cmd_first_error(cmd, rb))
		resp_add_simple(rb, "OK");
}

/* SETNX: 1 when it wrote. */
static void reply_setnx(CMD_REPLY_ARGS)
{
	if (!cmd_first_error(cmd, rb))
		resp_add_int(rb, cmd->ops[0].result == 0);
}

static void fold_errors(struct conn *c, struct cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->nops && !cmd->err; i++)
		if (cmd_op_failed(cmd->ops[i].result))
			cmd->err = cmd->ops[i].result;
}

static void reply_mset(CMD_REPLY_ARGS)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else
		resp_add_simple(rb, "OK");
}

static void run_mset(CMD_RUN_ARGS)
{
	if ((argc - 1) % 2) {
		resp_add_errorf(rb, "ERR wrong number of arguments for '%s' command", cmd->def->name);
		return;
	}
	const struct cmd_keys spec = {.step = 2, .kind = EOP_PUT};
	cmd_prepare_keys(cmd, argv, argc, 1, 1, &spec, rb);
}

/* MSETNX k v ...: 0 and nothing written if any key exists, else every key
 * written, 1. Two steps, each key one op: look every key up (no value
 * copied), then write each NX. Not atomic across keys: a client that
 * creates one of the keys between the two steps makes its NX write fail,
 * the others are written, and the reply is 0 (never an overwrite). */
static void run_msetnx(CMD_RUN_ARGS)
{
	if ((argc - 1) % 2) {
		resp_add_errorf(rb, "ERR wrong number of arguments for '%s' command", cmd->def->name);
		return;
	}
	/* The keys are kept for the write step (keep), which may follow. */
	const struct cmd_keys spec = {.step = 2, .kind = EOP_GET, .no_value = true, .keep = true};
	cmd_prepare_keys(cmd, argv, argc, 1, 1, &spec, rb);
	cmd_want_more(cmd, cmd->nops > 0);
}

static void fold_msetnx(struct conn *c, struct cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->nops; i++) {
		int r = cmd->ops[i].result;
		if (cmd_op_failed(r) && !cmd->err)
			cmd->err = r;
		if (cmd->step == 0)
			cmd->count += r == 0; /* found */
		else
			cmd->n0 += r == -EEXIST; /* created meanwhile by another client */
	}
	struct cmd_keys *k = cmd->keys;
	if (!k || k->next < k->n)
		return;
	cmd_want_more(cmd, false);
	if (cmd->step == 0 && cmd->count == 0 && !cmd->err) { /* none exists: write them */
		cmd->step = 1;
		k->next = 0;
		k->kind = EOP_PUT;
		k->cond = STORE_IF_ABSENT;
		k->no_value = false;
	}
}

static void reply_msetnx(CMD_REPLY_ARGS)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else
		resp_add_int(rb, cmd->step == 1 && cmd->n0 == 0);
}

/* ---- GETDEL, GETEX ---- */

static enum rmw_action decide_getdel(struct eop *e, uint64_t now_ms)
{
	e->result = 0;
	return e->found ? RMW_DEL : RMW_FINISH;
}

static void run_getdel(CMD_RUN_ARGS) { prepare_rmw(cmd, &argv[1], NULL, decide_getdel, rb); }

static void reply_value_or_nil(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (e->result)
		reply_str_err(e->result, rb);
	else if (e->found)
		resp_add_bulk(rb, e->val, e->val_len);
	else
		resp_add_null(rb, c->proto);
}

/* GETEX: the value, and a new expiry (EX/PX/EXAT/PXAT, the key deleted if
 * an absolute one is past) or none (PERSIST); without options a GET. */
static enum rmw_action decide_getex(struct eop *e, uint64_t now_ms)
{
	e->result = 0;
	if (!e->found)
		return RMW_FINISH;
	if (e->flags & (SETF_EXAT | SETF_PXAT) && (uint64_t)e->arg <= now_ms)
		return RMW_DEL;
	if (e->flags & SETF_TIME) {
		e->sop.expire_ms = (uint64_t)e->arg;
	} else { /* PERSIST */
		if (e->expire_ms == 0)
			return RMW_FINISH;
		e->sop.expire_ms = 0;
	}
	e->sop.value = e->val;
	e->sop.val_len = e->val_len;
	e->sop.meta = e->meta;
	e->sop.meta_len = e->meta_len;
	return RMW_PUT;
}

static void run_getex(CMD_RUN_ARGS)
{
	uint32_t flags;
	const struct resp_arg *exp;
	if (!parse_ext(argv, argc, false, &flags, &exp, rb) || !cmd_check_key(c, &argv[1], rb))
		return;
	if (!flags) {
		cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb);
		return;
	}
	/* Redis judges the time only once the key is found: a bad time on a
	 * missing key answers nil. So it is checked here into a scratch
	 * buffer, and the command becomes a plain GET that answers the error
	 * (kept in its stash: cmd->reply is where a pipelined command's run()
	 * answers) when the key is there. */
	uint64_t at = 0;
	if (exp) {
		struct resp_buf err;
		resp_buf_init(&err);
		at = expire_ms_of(exp, flags, "getex", &err);
		if (at == 0) {
			if (cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb)) {
				cmd->ops[0].no_value = true;
				if (!cmd_stash(cmd, err.data, (uint32_t)err.len)) { /* the error to answer if found */
					cmd_release_ops(cmd);
					resp_add_error(rb, cmd_store_error(-ENOMEM));
				}
				cmd->flags = 1;
			}
			resp_buf_free(&err);
			return;
		}
		resp_buf_free(&err);
	}
	struct eop *e = prepare_rmw(cmd, &argv[1], NULL, decide_getex, rb);
	if (e) {
		e->flags = flags;
		e->arg = (int64_t)at;
	}
}

static void reply_getex(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (cmd->flags == 1 && e->result == 0) { /* a bad time for a key that exists */
		resp_add_raw(rb, cmd->stash, cmd->stash_len);
		return;
	}
	if (e->kind == EOP_GET) {
		if (e->result == 0 && cmd->flags != 1)
			resp_add_bulk(rb, e->val, e->val_len);
		else if (e->result == -DV_ENOTFOUND)
			resp_add_null(rb, c->proto);
		else
			resp_add_error(rb, cmd_store_error(e->result));
		return;
	}
	reply_value_or_nil(c, cmd, rb);
}

/* ---- APPEND, SETRANGE, SETBIT ---- */

static enum rmw_action decide_append(struct eop *e, uint64_t now_ms)
{
	uint32_t alen;
	const char *arg = eop_arg(e, &alen);
	uint32_t old = e->found ? e->val_len : 0;
	e->result = 0;
	if ((uint64_t)old + alen > DV_VALUE_BYTES_MAX) {
		e->result = STR_ERR_TOO_BIG;
		return RMW_FINISH;
	}
	if (eop_resize_value(e, old + alen)) {
		e->result = STR_ERR_NOMEM;
		return RMW_FINISH;
	}
	if (alen)
		memcpy(e->val + old, arg, alen);
	e->reply_int = old + alen;
	return put_value_keep_ttl(e, e->found ? CMD_META_RAW : 0);
}

static void run_append(CMD_RUN_ARGS) { prepare_rmw(cmd, &argv[1], &argv[2], decide_append, rb); }

static void reply_rmw_len(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (e->result)
		reply_str_err(e->result, rb);
	else
		resp_add_int(rb, e->reply_int);
}

/* SETRANGE key offset value (offset in e->arg). Nothing to write for an
 * empty value: 0 for a missing key, its length for one that exists. */
static enum rmw_action decide_setrange(struct eop *e, uint64_t now_ms)
{
	uint32_t vlen;
	const char *v = eop_arg(e, &vlen);
	uint64_t off = (uint64_t)e->arg;
	uint32_t old = e->found ? e->val_len : 0;
	e->result = 0;
	if (vlen == 0) {
		e->reply_int = old;
		return RMW_FINISH;
	}
	if (off + vlen > DV_VALUE_BYTES_MAX) {
		e->result = STR_ERR_TOO_BIG;
		return RMW_FINISH;
	}
	uint32_t len = off + vlen > old ? (uint32_t)(off + vlen) : old;
	if (eop_resize_value(e, len)) {
		e->result = STR_ERR_NOMEM;
		return RMW_FINISH;
	}
	memcpy(e->val + off, v, vlen);
	e->reply_int = len;
	return put_value_keep_ttl(e, CMD_META_RAW);
}

static void run_setrange(CMD_RUN_ARGS)
{
	int64_t off;
	if (!cmd_arg_i64(&argv[2], &off, rb))
		return;
	if (off < 0) {
		resp_add_error(rb, "ERR offset is out of range");
		return;
	}
	struct eop *e = prepare_rmw(cmd, &argv[1], &argv[3], decide_setrange, rb);
	if (e)
		e->arg = off;
}

/* SETBIT key offset 0|1: the bit's old value; the value grows (zeros) to
 * hold it; nothing is written when the bit already has that value, unless
 * (on one node: SETBIT_MARK) the value is not marked raw yet: Redis's
 * SETBIT makes the object raw before it looks at the bit. */
#define SETBIT_ON 1u
#define SETBIT_MARK 2u
static enum rmw_action decide_setbit(struct eop *e, uint64_t now_ms)
{
	uint64_t off = (uint64_t)e->arg, byte = off >> 3;
	int bit = 7 - (int)(off & 7), on = (int)(e->flags & SETBIT_ON);
	uint32_t old = e->found ? e->val_len : 0;
	e->result = 0;
	bool grows = !e->found || byte >= old;
	int was = !grows && (((unsigned char)e->val[byte] >> bit) & 1);
	e->reply_int = was;
	if (!grows && was == on &&
	    (!(e->flags & SETBIT_MARK) || cmd_meta_encoding(e->meta, e->meta_len) == CMD_META_RAW))
		return RMW_FINISH;
	if (grows && eop_resize_value(e, (uint32_t)byte + 1)) {
		e->result = STR_ERR_NOMEM;
		return RMW_FINISH;
	}
	unsigned char b = (unsigned char)e->val[byte];
	b = (unsigned char)((b & ~(1u << bit)) | ((unsigned)on << bit));
	e->val[byte] = (char)b;
	return put_value_keep_ttl(e, CMD_META_RAW);
}

static void run_setbit(CMD_RUN_ARGS)
{
	uint64_t off;
	int64_t on;
	if (!parse_bit_offset(&argv[2], &off, rb))
		return;
	if (resp_arg_i64(&argv[3], &on) || (on & ~1)) {
		resp_add_error(rb, "ERR bit is not an integer or out of range");
		return;
	}
	if (off >> 3 >= DV_VALUE_BYTES_MAX) {
		reply_str_err(STR_ERR_TOO_BIG, rb);
		return;
	}
	struct eop *e = prepare_rmw(cmd, &argv[1], NULL, decide_setbit, rb);
	if (e) {
		e->arg = (int64_t)off;
		e->flags = (on ? SETBIT_ON : 0) | (cmd_cluster_mode(c) ? 0 : SETBIT_MARK);
	}
}

/* ---- INCR family ---- */

/* The value as the number of an INCR: written back as its decimal text,
 * with the key's expiry kept (Redis overwrites the value only). */
static enum rmw_action decide_incr(struct eop *e, uint64_t now_ms)
{
	long long v = 0, incr = e->arg;
	e->result = 0;
	if (e->found && !cmd_value_ll(e->val, e->val_len, &v)) {
		e->result = STR_ERR_NOT_INT;
		return RMW_FINISH;
	}
	if ((incr < 0 && v < 0 && incr < INT64_MIN - v) || (incr > 0 && v > 0 && incr > INT64_MAX - v)) {
		e->result = STR_ERR_OVERFLOW;
		return RMW_FINISH;
	}
	v += incr;
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", v);
	if (eop_resize_value(e, (uint32_t)n)) {
		e->result = STR_ERR_NOMEM;
		return RMW_FINISH;
	}
	memcpy(e->val, num, (size_t)n);
	e->reply_int = v;
	return put_value_keep_ttl(e, 0);
}

static void run_incr_by(struct conn *c, struct cmd *cmd, const struct resp_arg *key, int64_t by,
			struct resp_buf *rb)
{
	struct eop *e = prepare_rmw(cmd, key, NULL, decide_incr, rb);
	if (!e)
		return;
	e->arg = by;
	if (cmd_cluster_mode(c))
		e->dyn.op = EOP_DYN_INCR; /* the cluster's counter: decide() is not used */
}

static void run_incr(CMD_RUN_ARGS) { run_incr_by(c, cmd, &argv[1], 1, rb); }
static void run_decr(CMD_RUN_ARGS) { run_incr_by(c, cmd, &argv[1], -1, rb); }

static void run_incrby(CMD_RUN_ARGS)
{
	int64_t by;
	if (cmd_arg_i64(&argv[2], &by, rb))
		run_incr_by(c, cmd, &argv[1], by, rb);
}

static void run_decrby(CMD_RUN_ARGS)
{
	int64_t by;
	if (!cmd_arg_i64(&argv[2], &by, rb))
		return;
	if (by == INT64_MIN) {
		resp_add_error(rb, "ERR decrement would overflow");
		return;
	}
	run_incr_by(c, cmd, &argv[1], -by, rb);
}

/* Redis's string2ld: strtold over exactly the bytes, no leading space, no
 * NaN, no overflow to infinity or underflow to zero. */
static bool parse_ld(const char *p, uint32_t len, long double *out)
{
	char buf[5 * 1024];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	long double v = strtold(buf, &end);
	if (buf[0] == ' ' || (buf[0] >= '\t' && buf[0] <= '\r') || *end != '\0' || (size_t)(end - buf) != len ||
	    (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) || errno == EINVAL ||
	    isnan(v))
		return false;
	*out = v;
	return true;
}

/* Redis's ld2string(LD_STR_HUMAN): %.17Lf less trailing zeros (and a
 * trailing point); "-0" is "0". Returns the length (0: does not fit). */
static int format_ld(char *buf, size_t cap, long double v)
{
	int l = snprintf(buf, cap, "%.17Lf", v);
	if (l < 0 || (size_t)l + 1 > cap)
		return 0;
	if (strchr(buf, '.')) {
		while (l > 0 && buf[l - 1] == '0')
			l--;
		if (l > 0 && buf[l - 1] == '.')
			l--;
	}
	if (l == 2 && buf[0] == '-' && buf[1] == '0') {
		buf[0] = '0';
		l = 1;
	}
	return l;
}

static enum rmw_action decide_incrbyfloat(struct eop *e, uint64_t now_ms)
{
	uint32_t alen;
	const char *arg = eop_arg(e, &alen);
	long double v = 0, incr = 0;
	e->result = 0;
	if ((e->found && !parse_ld(e->val, e->val_len, &v)) || !parse_ld(arg, alen, &incr)) {
		e->result = STR_ERR_NOT_FLOAT;
		return RMW_FINISH;
	}
	v += incr;
	if (isnan(v) || isinf(v)) {
		e->result = STR_ERR_NAN;
		return RMW_FINISH;
	}
	char num[5 * 1024];
	int n = format_ld(num, sizeof(num), v);
	if (n == 0 || (uint32_t)n > DV_VALUE_BYTES_MAX) {
		e->result = STR_ERR_TOO_BIG;
		return RMW_FINISH;
	}
	if (eop_resize_value(e, (uint32_t)n)) {
		e->result = STR_ERR_NOMEM;
		return RMW_FINISH;
	}
	memcpy(e->val, num, (size_t)n);
	return put_value_keep_ttl(e, CMD_META_STR);
}

static void run_incrbyfloat(CMD_RUN_ARGS)
{
	long double incr;
	if (!parse_ld(argv[2].ptr, argv[2].len, &incr)) {
		resp_add_error(rb, "ERR value is not a valid float");
		return;
	}
	prepare_rmw(cmd, &argv[1], &argv[2], decide_incrbyfloat, rb);
}

static void reply_rmw_value(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (e->result)
		reply_str_err(e->result, rb);
	else
		resp_add_bulk(rb, e->val, e->val_len);
}

static void reply_incr(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	/* The cluster counter's refusals (node.h): Redis's errors. */
	int r = e->result == -EDOM ? STR_ERR_NOT_INT : e->result == -ERANGE ? STR_ERR_OVERFLOW : e->result;
	if (r)
		reply_str_err(r, rb);
	else
		resp_add_int(rb, e->reply_int);
}

/* ---- LCS ---- */

enum lcs_flags { LCS_LEN = 1, LCS_IDX = 2, LCS_WITHMATCHLEN = 4 };

/* LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: both values
 * read (a missing key is ""), then Redis's dynamic programming table. */
static void run_lcs(CMD_RUN_ARGS)
{
	uint32_t flags = 0;
	int64_t minmatch = 0;
	for (uint32_t j = 3; j < argc; j++) {
		if (resp_arg_is(&argv[j], "IDX")) {
			flags |= LCS_IDX;
		} else if (resp_arg_is(&argv[j], "LEN")) {
			flags |= LCS_LEN;
		} else if (resp_arg_is(&argv[j], "WITHMATCHLEN")) {
			flags |= LCS_WITHMATCHLEN;
		} else if (resp_arg_is(&argv[j], "MINMATCHLEN") && j + 1 < argc) {
			if (!cmd_arg_i64(&argv[++j], &minmatch, rb))
				return;
			if (minmatch < 0)
				minmatch = 0;
		} else {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
	}
	if ((flags & LCS_LEN) && (flags & LCS_IDX)) {
		resp_add_error(rb, "ERR If you want both the length and indexes, please just use IDX.");
		return;
	}
	cmd->u0 = flags;
	cmd->n0 = minmatch;
	const struct cmd_keys spec = {.step = 1, .kind = EOP_GET};
	cmd_prepare_keys(cmd, argv, 3, 1, 0, &spec, rb); /* both, even the same key twice */
}

/* One match range of IDX: a[as..ae] == b[bs..be]. */
struct lcs_range {
	uint32_t as, ae, bs, be;
};

/* The table and the walk back of Redis's lcsCommand (t_string.c), so
 * that the string, its length and the ranges are Redis's, in its order. */
static void reply_lcs(CMD_REPLY_ARGS)
{
	if (cmd_first_error(cmd, rb))
		return;
	DV_ASSERT(cmd->nops == 2);
	const struct eop *ea = &cmd->ops[0], *eb = &cmd->ops[1];
	const char *a = ea->result == 0 ? ea->val : "", *b = eb->result == 0 ? eb->val : "";
	uint32_t alen = ea->result == 0 ? ea->val_len : 0, blen = eb->result == 0 ? eb->val_len : 0;
	uint32_t flags = (uint32_t)cmd->u0;
	uint64_t minmatch = (uint64_t)cmd->n0, cells = (uint64_t)(alen + 1) * (blen + 1);
	uint64_t limit = c->w->cfg->max_reply_bytes;
	if (cells * sizeof(uint32_t) > limit) {
		resp_add_errorf(rb, "ERR Insufficient memory, transient memory for LCS exceeds max-reply-bytes (%llu bytes)",
				(unsigned long long)limit);
		return;
	}
	uint32_t *lcs = malloc(cells * sizeof(uint32_t));
	char *result = malloc(alen < blen ? alen + 1 : blen + 1);
	struct lcs_range *ranges = (flags & LCS_IDX) ? malloc(((alen < blen ? alen : blen) + 1) * sizeof(*ranges)) : NULL;
	if (!lcs || !result || ((flags & LCS_IDX) && !ranges)) {
		resp_add_error(rb, "ERR Insufficient memory, failed allocating transient memory for LCS");
		goto out;
	}
#define LCS(i, j) lcs[(size_t)(j) + (size_t)(i) * (blen + 1)]
	for (uint32_t i = 0; i <= alen; i++)
		for (uint32_t j = 0; j <= blen; j++)
			LCS(i, j) = i == 0 || j == 0	  ? 0
				    : a[i - 1] == b[j - 1] ? LCS(i - 1, j - 1) + 1
				    : LCS(i - 1, j) > LCS(i, j - 1) ? LCS(i - 1, j)
								     : LCS(i, j - 1);
	uint32_t total = LCS(alen, blen), idx = total, nranges = 0;
	uint32_t as = alen, ae = 0, bs = 0, be = 0; /* as == alen: no range open */
	bool walk = (flags & LCS_IDX) || !(flags & LCS_LEN);
	for (uint32_t i = alen, j = blen; walk && i > 0 && j > 0;) {
		bool emit = false;
		if (a[i - 1] == b[j - 1]) {
			result[idx - 1] = a[i - 1];
			if (as == alen) {
				as = ae = i - 1;
				bs = be = j - 1;
			} else if (as == i && bs == j) { /* contiguous: extend it backward */
				as--;
				bs--;
			} else {
				emit = true;
			}
			if (as == 0 || bs == 0)
				emit = true;
			idx--;
			i--;
			j--;
		} else {
			if (LCS(i - 1, j) > LCS(i, j - 1))
				i--;
			else
				j--;
			if (as != alen)
				emit = true;
		}
		if (emit) {
			if (ranges && (minmatch == 0 || (uint64_t)(ae - as + 1) >= minmatch))
				ranges[nranges++] = (struct lcs_range){as, ae, bs, be};
			as = alen;
		}
	}
#undef LCS
	if (flags & LCS_IDX) {
		bool ml = flags & LCS_WITHMATCHLEN;
		resp_add_map(rb, 2, c->proto);
		resp_add_bulk_str(rb, "matches");
		resp_add_array(rb, nranges);
		for (uint32_t k = 0; k < nranges; k++) {
			const struct lcs_range *r = &ranges[k];
			resp_add_array(rb, ml ? 3 : 2);
			resp_add_array(rb, 2);
			resp_add_int(rb, r->as);
			resp_add_int(rb, r->ae);
			resp_add_array(rb, 2);
			resp_add_int(rb, r->bs);
			resp_add_int(rb, r->be);
			if (ml)
				resp_add_int(rb, r->ae - r->as + 1);
		}
		resp_add_bulk_str(rb, "len");
		resp_add_int(rb, total);
	} else if (flags & LCS_LEN) {
		resp_add_int(rb, total);
	} else {
		resp_add_bulk(rb, result, total);
	}
out:
	free(lcs);
	free(result);
	free(ranges);
}

/* ---- the table ---- */

#define R CMDF_R
#define W CMDF_W
#define RMW CMDF_RW

static const struct cmd_def defs[] = {
	{"get", 2, R | CMDF_FROM_WRITE, 1, 1, 1, run_get, reply_get, "Returns the string value of a key.", NULL, NULL},
	{"set", -3, W, 1, 1, 1, run_set, reply_set, "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", NULL, NULL},
	{"setnx", 3, W, 1, 1, 1, run_setnx, reply_setnx, "Set the string value of a key only when the key doesn't exist.", NULL, NULL},
	{"setex", 4, W, 1, 1, 1, run_setex, reply_ok, "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", NULL, NULL},
	{"psetex", 4, W, 1, 1, 1, run_psetex, reply_ok, "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", NULL, NULL},
	{"mget", -2, R, 1, -1, 1, run_mget, reply_mget, "Atomically returns the string values of one or more keys.", fold_mget, NULL},
	{"mset", -3, W, 1, -1, 2, run_mset, reply_mset, "Atomically creates or modifies the string values of one or more keys.", fold_errors, NULL},
	{"msetnx", -3, W, 1, -1, 2, run_msetnx, reply_msetnx, "Atomically modifies the string values of one or more keys only when all keys don't exist.", fold_msetnx, NULL},
	{"getset", 3, RMW, 1, 1, 1, run_getset, reply_set, "Returns the previous string value of a key after setting it to a new value.", NULL, NULL},
	{"getdel", 2, RMW, 1, 1, 1, run_getdel, reply_value_or_nil, "Returns the string value of a key after deleting the key.", NULL, NULL},
	{"getex", -2, RMW, 1, 1, 1, run_getex, reply_getex, "Returns the string value of a key after setting its expiration time.", NULL, NULL},
	{"append", 3, RMW, 1, 1, 1, run_append, reply_rmw_len, "Appends a string to the value of a key. Creates the key if it doesn't exist.", NULL, NULL},
	{"strlen", 2, R, 1, 1, 1, run_strlen, reply_strlen, "Returns the length of a string value.", NULL, NULL},
	{"getrange", 4, R, 1, 1, 1, run_getrange, reply_getrange, "Returns a substring of the string stored at a key.", NULL, NULL},
	{"substr", 4, R, 1, 1, 1, run_getrange, reply_getrange, "Returns a substring from a string value.", NULL, NULL},
	{"setrange", 4, RMW, 1, 1, 1, run_setrange, reply_rmw_len, "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", NULL, NULL},
	{"incr", 2, RMW, 1, 1, 1, run_incr, reply_incr, "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", NULL, NULL},
	{"decr", 2, RMW, 1, 1, 1, run_decr, reply_incr, "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", NULL, NULL},
	{"incrby", 3, RMW, 1, 1, 1, run_incrby, reply_incr, "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", NULL, NULL},
	{"decrby", 3, RMW, 1, 1, 1, run_decrby, reply_incr, "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", NULL, NULL},
	{"incrbyfloat", 3, RMW, 1, 1, 1, run_incrbyfloat, reply_rmw_value, "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", NULL, NULL},
	{"setbit", 4, RMW, 1, 1, 1, run_setbit, cmd_reply_rmw_int, "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", NULL, NULL},
	{"getbit", 3, R, 1, 1, 1, run_getbit, reply_getbit, "Returns a bit value by offset.", NULL, NULL},
	{"bitcount", -2, R, 1, 1, 1, run_bitcount, reply_bitcount, "Counts the number of set bits (population counting) in a string.", NULL, NULL},
	{"lcs", -3, R, 1, 2, 1, run_lcs, reply_lcs, "Finds the longest common substring.", NULL, NULL},
};

#undef R
#undef W
#undef RMW

const struct cmd_family cmd_family_string = {defs, sizeof(defs) / sizeof(defs[0]), "string"};
