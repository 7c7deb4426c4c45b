/* cmd_keyspace.c - the generic key commands: DEL, UNLINK, EXISTS, TOUCH,
 * TYPE, TTL, PTTL, EXPIRETIME, PEXPIRETIME, EXPIRE, PEXPIRE, EXPIREAT,
 * PEXPIREAT, PERSIST, RENAME, RENAMENX, COPY, OBJECT, SCAN, KEYS,
 * RANDOMKEY, with Redis 7's replies (db.c, expire.c, object.c).
 *
 * What the engine cannot make atomic across keys is done in steps, each
 * key's step atomic (docs/ARCHITECTURE.md):
 *   RENAME src dst: read src; write dst (RENAMENX: only if absent), durable;
 *     then delete src only if it still holds what was read (a write of src
 *     meanwhile is kept). A crash between the two writes leaves both keys,
 *     never neither; a reader in between sees both.
 *   COPY src dst: read src, write dst (only if absent unless REPLACE).
 * SCAN, KEYS and RANDOMKEY walk the key-hash space in bounded steps
 * (EOP_SCAN, engine.h): the SCAN cursor is the hash where the next step
 * starts, so a key present for the whole iteration is returned at least
 * once whatever is written, deleted or moved by GC meanwhile; a key may be
 * returned twice. They and MATCH follow Redis's glob rules (cmd_glob).
 * In cluster mode the steps are the cluster's SCAN (node.h: partitions in
 * key-hash order, each from N - W + 1 replicas, so a key present for the
 * whole scan is returned at least once whatever nodes fail; a step that
 * cannot reach enough replicas of a partition is an error and the cursor
 * stays good); the others run through the cluster host as their
 * single-key parts do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "server/cmd_int.h"

/* ---- DEL, UNLINK, EXISTS, TOUCH ---- */

static void run_del(CMD_RUN_ARGS)
{
	const struct cmd_keys spec = {.step = 1, .kind = EOP_DEL};
	cmd_prepare_keys(cmd, argv, argc, 1, -1, &spec, rb);
}

/* EXISTS and TOUCH count every key named, repeats included (Redis). */
static void run_exists(CMD_RUN_ARGS)
{
	const struct cmd_keys spec = {.step = 1, .kind = EOP_GET, .no_value = true};
	cmd_prepare_keys(cmd, argv, argc, 1, 0, &spec, rb);
}

/* ---- TYPE, TTL, PTTL, EXPIRETIME, PEXPIRETIME ---- */

static void run_probe(CMD_RUN_ARGS)
{
	struct eop *e = cmd_check_key(c, &argv[1], rb) ? cmd_prepare_one(cmd, EOP_GET, &argv[1], NULL, rb) : NULL;
	if (e)
		e->no_value = true;
}

static void reply_type(CMD_REPLY_ARGS)
{
	if (!cmd_first_error(cmd, rb))
		resp_add_simple(rb, cmd->ops[0].result == 0 ? "string" : "none");
}

/* ttlGenericCommand: -2 no key, -1 no expiry, else the time left (or the
 * absolute time), in ms or rounded seconds. */
static void reply_ttl_common(struct conn *c, struct cmd *cmd, struct resp_buf *rb, bool ms, bool absolute)
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
		int64_t t = absolute ? (int64_t)e->expire_ms : e->expire_ms > now ? (int64_t)(e->expire_ms - now) : 0;
		/* t >= 0: rounded as unsigned (a PXAT near 2^63 overflowed the
		 * signed sum: EXPIRETIME answered -9223372036854775) */
		resp_add_int(rb, ms ? t : (int64_t)(((uint64_t)t + 500) / 1000));
	}
}

static void reply_ttl(CMD_REPLY_ARGS) { reply_ttl_common(c, cmd, rb, false, false); }
static void reply_pttl(CMD_REPLY_ARGS) { reply_ttl_common(c, cmd, rb, true, false); }
static void reply_expiretime(CMD_REPLY_ARGS) { reply_ttl_common(c, cmd, rb, false, true); }
static void reply_pexpiretime(CMD_REPLY_ARGS) { reply_ttl_common(c, cmd, rb, true, true); }

/* ---- EXPIRE family, PERSIST ---- */

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
			resp_add_errorf(rb, "ERR Unsupported option %.*s", (int)(argv[i].len < 1024 ? argv[i].len : 1024),
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

/* expireGenericCommand: options first, then the time. */
static void run_expire_common(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, bool ms,
			      bool absolute, struct resp_buf *rb)
{
	int64_t t;
	uint64_t at;
	uint32_t flags;
	if (!parse_expire_flags(argv, argc, &flags, rb) || !cmd_arg_i64(&argv[2], &t, rb))
		return;
	if (!cmd_expire_at(t, ms, absolute, store_now_ms(), &at)) {
		resp_add_errorf(rb, "ERR invalid expire time in '%s' command", cmd->def->name);
		return;
	}
	if (!cmd_check_key(c, &argv[1], rb))
		return;
	struct eop *e = cmd_prepare_one(cmd, EOP_RMW, &argv[1], NULL, rb);
	if (!e)
		return;
	e->decide = decide_expire;
	e->arg = (int64_t)at;
	e->flags = flags;
}

static void run_expire(CMD_RUN_ARGS) { run_expire_common(c, cmd, argv, argc, false, false, rb); }
static void run_pexpire(CMD_RUN_ARGS) { run_expire_common(c, cmd, argv, argc, true, false, rb); }
static void run_expireat(CMD_RUN_ARGS) { run_expire_common(c, cmd, argv, argc, false, true, rb); }
static void run_pexpireat(CMD_RUN_ARGS) { run_expire_common(c, cmd, argv, argc, true, true, rb); }

static enum rmw_action decide_persist(struct eop *e, uint64_t now_ms)
{
	e->result = 0;
	e->reply_int = 0;
	if (!e->found || e->expire_ms == 0)
		return RMW_FINISH;
	e->reply_int = 1;
	return rewrite_with_expiry(e, 0);
}

static void run_persist(CMD_RUN_ARGS)
{
	if (!cmd_check_key(c, &argv[1], rb))
		return;
	struct eop *e = cmd_prepare_one(cmd, EOP_RMW, &argv[1], NULL, rb);
	if (e)
		e->decide = decide_persist;
}

/* ---- RENAME, RENAMENX, COPY: steps over two keys ----
 * stash: u32 len, src, u32 len, dst (then, after the read, the value at
 * u1). n0: the outcome (-1 no such key, 0 not done, 1 done). */

enum two_key_step { STEP_READ = 0, STEP_WRITE, STEP_DELETE };
enum two_key_flags { TK_NX = 1, TK_DELETE = 2, TK_SAME = 4 };

static bool stash_key(struct cmd *cmd, const struct resp_arg *k)
{
	uint32_t len = k->len;
	return cmd_stash(cmd, &len, 4) && cmd_stash(cmd, k->ptr, k->len);
}

static struct resp_arg stashed_key(const struct cmd *cmd, unsigned which)
{
	uint32_t at = 0, len;
	memcpy(&len, cmd->stash, 4);
	if (which == 1) {
		at = 4 + len;
		memcpy(&len, cmd->stash + at, 4);
	}
	return (struct resp_arg){.ptr = cmd->stash + at + 4, .len = len};
}

static bool same_arg(const struct resp_arg *a, const struct resp_arg *b)
{
	return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* cmd->flags above the TK_* bits: the encoding byte (cmd_int.h: CMD_META_*)
 * the copy is written with, on one node. */
#define TK_META_SHIFT 8

static enum rmw_action decide_read_only(struct eop *e, uint64_t now_ms)
{
	e->result = e->found ? 0 : -DV_ENOTFOUND;
	return RMW_FINISH;
}

/* Step READ of src; flags TK_*. On one node the read is a read-only RMW:
 * the record's metadata comes with it (the copy keeps its encoding). */
static void start_two_key(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t flags,
			  struct resp_buf *rb)
{
	if (!cmd_check_key(c, &argv[1], rb) || !cmd_check_key(c, &argv[2], rb))
		return;
	if (!stash_key(cmd, &argv[1]) || !stash_key(cmd, &argv[2])) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	bool meta = !(flags & TK_SAME) && !cmd_cluster_mode(c);
	struct eop *e = cmd_prepare_one(cmd, meta ? EOP_RMW : EOP_GET, &argv[1], NULL, rb);
	if (!e)
		return;
	if (meta)
		e->decide = decide_read_only;
	cmd->flags = flags;
	e->no_value = (flags & TK_SAME) != 0;
	cmd_want_more(cmd, !(flags & TK_SAME));
}

static void run_rename(CMD_RUN_ARGS)
{
	uint32_t f = TK_DELETE | (same_arg(&argv[1], &argv[2]) ? TK_SAME : 0);
	start_two_key(c, cmd, argv, f, rb);
}

static void run_renamenx(CMD_RUN_ARGS)
{
	uint32_t f = TK_DELETE | TK_NX | (same_arg(&argv[1], &argv[2]) ? TK_SAME : 0);
	start_two_key(c, cmd, argv, f, rb);
}

/* COPY source destination [DB destination-db] [REPLACE] */
static void run_copy(CMD_RUN_ARGS)
{
	bool replace = false;
	for (uint32_t j = 3; j < argc; j++) {
		if (resp_arg_is(&argv[j], "REPLACE")) {
			replace = true;
		} else if (resp_arg_is(&argv[j], "DB") && j + 1 < argc) {
			int64_t db;
			if (!cmd_arg_int(&argv[++j], &db, rb))
				return;
			if (db != cmd->db) {
				resp_add_error(rb, cmd_cluster_mode(c) ? "ERR Copying to another database is not allowed "
									 "in cluster mode"
								       : "ERR DB index is out of range");
				return;
			}
		} else {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
	}
	if (same_arg(&argv[1], &argv[2])) {
		resp_add_error(rb, "ERR source and destination objects are the same");
		return;
	}
	start_two_key(c, cmd, argv, replace ? 0 : TK_NX, rb);
}

/* decide() of the DELETE step: src still holds what was copied (value and
 * expiry: the expected ones ride in kv and arg). */
static enum rmw_action decide_delete_same(struct eop *e, uint64_t now_ms)
{
	uint32_t len = e->kv_len - e->sop.key_len;
	const char *want = e->kv + e->sop.key_len;
	e->result = 0;
	e->reply_int = e->found && e->val_len == len && memcmp(e->val, want, len) == 0 &&
		       e->expire_ms == (uint64_t)e->arg;
	return e->reply_int ? RMW_DEL : RMW_FINISH;
}

static void fold_two_key(struct conn *c, struct cmd *cmd)
{
	struct eop *e = &cmd->ops[0];
	cmd_want_more(cmd, false);
	if (cmd_op_failed(e->result)) {
		cmd->err = e->result;
		return;
	}
	switch (cmd->step) {
	case STEP_READ:
		if (e->result == -DV_ENOTFOUND) {
			cmd->n0 = -1;
			return;
		}
		if (cmd->flags & TK_SAME) {
			cmd->n0 = 1;
			return;
		}
		cmd->u0 = e->expire_ms;
		cmd->u1 = cmd->stash_len; /* the value follows the keys */
		if (e->kind == EOP_RMW) {
			/* RENAME moves Redis's object; COPY duplicates it, and the
			 * duplicate of a shared integer is an object of its own */
			uint8_t m = cmd_meta_encoding(e->meta, e->meta_len);
			long long num;
			if (!(cmd->flags & TK_DELETE) && m == 0 && cmd_value_ll(e->val, e->val_len, &num) && num >= 0 &&
			    num < 10000)
				m = CMD_META_INT;
			cmd->flags |= (uint32_t)m << TK_META_SHIFT;
		}
		if (!cmd_stash(cmd, e->val, e->val_len)) {
			cmd->err = -ENOMEM;
			return;
		}
		cmd_want_more(cmd, true);
		return;
	case STEP_WRITE:
		cmd->n0 = e->result == 0; /* -EEXIST: NX and the destination exists */
		cmd_want_more(cmd, e->result == 0 && (cmd->flags & TK_DELETE));
		return;
	default:
		return; /* deleted, or src changed meanwhile (kept) */
	}
}

static int next_two_key(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	struct resp_arg src = stashed_key(cmd, 0), dst = stashed_key(cmd, 1);
	struct resp_arg val = {.ptr = cmd->stash + cmd->u1, .len = (uint32_t)(cmd->stash_len - cmd->u1)};
	if (cmd->step == STEP_WRITE) {
		struct eop *e = cmd_prepare_one(cmd, EOP_PUT, &dst, &val, rb);
		if (!e)
			return -ENOMEM;
		e->sop.expire_ms = cmd->u0;
		e->sop.cond = cmd->flags & TK_NX ? STORE_IF_ABSENT : STORE_ALWAYS;
		e->sop.meta = cmd_meta_bytes((uint8_t)(cmd->flags >> TK_META_SHIFT), &e->sop.meta_len);
		return 0;
	}
	DV_ASSERT(cmd->step == STEP_DELETE);
	struct eop *e = cmd_prepare_one(cmd, EOP_RMW, &src, &val, rb);
	if (!e)
		return -ENOMEM;
	e->decide = decide_delete_same;
	e->arg = (int64_t)cmd->u0;
	return 0;
}

static void reply_rename(CMD_REPLY_ARGS)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else if (cmd->n0 < 0)
		resp_add_error(rb, "ERR no such key");
	else if (cmd->flags & TK_NX)
		resp_add_int(rb, cmd->n0 == 1 && !(cmd->flags & TK_SAME));
	else
		resp_add_simple(rb, "OK");
}

static void reply_copy(CMD_REPLY_ARGS)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else
		resp_add_int(rb, cmd->n0 == 1);
}

/* ---- OBJECT ---- */

enum object_sub { OBJ_ENCODING, OBJ_FREQ, OBJ_IDLETIME, OBJ_REFCOUNT, OBJ_HELP };
static const struct cmd_sub object_subs[] = {
	{"ENCODING", 3}, {"FREQ", 3}, {"IDLETIME", 3}, {"REFCOUNT", 3}, {"HELP", 2},
};
const struct cmd_container cmd_container_object = {"object", object_subs, sizeof(object_subs) / sizeof(object_subs[0])};
static const char *const object_help[] = {
	"ENCODING <key>",
	"    Return the kind of internal representation used in order to store the value",
	"    associated with a <key>.",
	"FREQ <key>",
	"    Return the access frequency index of the <key>. The returned integer is",
	"    proportional to the logarithm of the recent access frequency of the key.",
	"IDLETIME <key>",
	"    Return the idle time of the <key>, that is the approximated number of",
	"    seconds elapsed since the last access to the key.",
	"REFCOUNT <key>",
	"    Return the number of references of the value associated with the specified",
	"    <key>.",
	NULL,
};

static void run_object(CMD_RUN_ARGS)
{
	int sub = cmd_subcommand(argv, argc, object_subs, sizeof(object_subs) / sizeof(object_subs[0]), rb);
	if (sub < 0)
		return;
	if (sub == OBJ_HELP) {
		cmd_reply_help(&argv[0], object_help, rb);
		return;
	}
	if (!cmd_check_key(c, &argv[2], rb))
		return;
	/* ENCODING and REFCOUNT need the record's metadata too: a read-only
	 * RMW (the engine copies what an RMW reads whole). */
	bool meta = sub == OBJ_ENCODING || sub == OBJ_REFCOUNT;
	struct eop *e = cmd_prepare_one(cmd, meta ? EOP_RMW : EOP_GET, &argv[2], NULL, rb);
	if (e) {
		e->no_value = sub == OBJ_FREQ || sub == OBJ_IDLETIME;
		e->decide = decide_read_only;
		cmd->flags = (uint32_t)sub;
	}
}

/* What Redis's tryObjectEncoding gives a string just SET: "int" for an
 * integer that fits a long (and is at most 20 bytes), "embstr" up to 44
 * bytes, "raw" beyond; otherwise what the record's metadata says, on one
 * node (cmd_int.h: CMD_META_*). shared: an object of Redis's shared
 * integers 0..9999 (REFCOUNT). */
static const char *encoding_of(const struct eop *e, bool *shared)
{
	long long num = 0;
	bool is_int = cmd_value_ll(e->val, e->val_len, &num);
	uint8_t m = e->kind == EOP_RMW ? cmd_meta_encoding(e->meta, e->meta_len) : 0;
	*shared = false;
	if (m == CMD_META_RAW)
		return "raw";
	if (m == CMD_META_STR || !is_int)
		return e->val_len <= 44 ? "embstr" : "raw";
	*shared = m != CMD_META_INT && num >= 0 && num < 10000;
	return "int";
}

static void reply_object(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (cmd_op_failed(e->result)) {
		resp_add_error(rb, cmd_store_error(e->result));
		return;
	}
	if (e->result == -DV_ENOTFOUND) {
		resp_add_null(rb, c->proto);
		return;
	}
	bool shared = false;
	const char *enc = cmd->flags == OBJ_ENCODING || cmd->flags == OBJ_REFCOUNT ? encoding_of(e, &shared) : NULL;
	switch (cmd->flags) {
	case OBJ_ENCODING:
		resp_add_bulk_str(rb, enc);
		break;
	case OBJ_FREQ:
		resp_add_error(rb, "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please "
				   "note that when switching between policies at runtime LRU and LFU data will take "
				   "some time to adjust.");
		break;
	case OBJ_IDLETIME:
		resp_add_int(rb, 0); /* access times are not kept */
		break;
	default: /* REFCOUNT: Redis shares the objects of the integers 0..9999 */
		resp_add_int(rb, shared ? 2147483647 : 1);
		break;
	}
}

/* ---- SCAN, KEYS, RANDOMKEY ---- */

/* The keys of a scan step: (u16 length, bytes)*, nkeys of them. */
struct scan_keys {
	const char *p, *end;
};

static bool scan_next_key(const struct conn *c, struct scan_keys *it, const char **key, uint32_t *len)
{
	while (it->p + 2 <= it->end) {
		uint32_t l = (uint32_t)(unsigned char)it->p[0] | (uint32_t)(unsigned char)it->p[1] << 8;
		const char *k = it->p + 2;
		it->p = k + l;
		DV_ASSERT(it->p <= it->end);
		if (cmd_user_key(c, k, l, key, len))
			return true;
	}
	return false;
}

static struct scan_keys scan_keys_of(const struct eop *e)
{
	return (struct scan_keys){.p = e->val, .end = e->val + e->val_len};
}

/* strtoul's cursor, as Redis's parseScanCursorOrReply takes it. */
static bool parse_cursor(const struct resp_arg *a, uint64_t *out, struct resp_buf *rb)
{
	char buf[64];
	if (a->len >= sizeof(buf) || memchr(a->ptr, '\0', a->len)) {
		/* longer than any number: strtoul would say ERANGE, or stop early */
		resp_add_error(rb, "ERR invalid cursor");
		return false;
	}
	memcpy(buf, a->ptr, a->len);
	buf[a->len] = '\0';
	char *end;
	errno = 0;
	unsigned long v = strtoul(buf, &end, 10);
	if (buf[0] == ' ' || (buf[0] >= '\t' && buf[0] <= '\r') || *end != '\0' || errno == ERANGE) {
		resp_add_error(rb, "ERR invalid cursor");
		return false;
	}
	*out = v;
	return true;
}

enum scan_flags { SCAN_MATCH = 1, SCAN_NONE = 2 /* TYPE of another type: nothing matches */ };

static struct eop *prepare_scan(struct cmd *cmd, uint64_t cursor, uint32_t count, struct resp_buf *rb)
{
	struct eop *e = cmd_prepare_keyless(cmd, EOP_SCAN, rb);
	if (e) {
		e->cursor = cursor;
		e->count = count;
	}
	return e;
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] */
static void run_scan(CMD_RUN_ARGS)
{
	uint64_t cursor;
	int64_t count = 10;
	if (!parse_cursor(&argv[1], &cursor, rb))
		return;
	for (uint32_t i = 2; i < argc; i += 2) {
		bool more = i + 1 < argc;
		if (more && resp_arg_is(&argv[i], "COUNT")) {
			if (!cmd_arg_i64(&argv[i + 1], &count, rb))
				return;
			if (count < 1) {
				resp_add_error(rb, "ERR syntax error");
				return;
			}
		} else if (more && resp_arg_is(&argv[i], "MATCH")) {
			/* "*" matches everything: no pattern (Redis) */
			bool all = argv[i + 1].len == 1 && argv[i + 1].ptr[0] == '*';
			cmd->stash_len = 0;
			if (all) {
				cmd->flags &= ~(uint32_t)SCAN_MATCH;
			} else if (!cmd_stash(cmd, argv[i + 1].ptr, argv[i + 1].len)) {
				resp_add_error(rb, cmd_store_error(-ENOMEM));
				return;
			} else {
				cmd->flags |= SCAN_MATCH;
			}
		} else if (more && resp_arg_is(&argv[i], "TYPE")) {
			/* Every key is a string: any other type matches nothing. */
			if (resp_arg_is(&argv[i + 1], "string"))
				cmd->flags &= ~(uint32_t)SCAN_NONE;
			else
				cmd->flags |= SCAN_NONE;
		} else {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
	}
	prepare_scan(cmd, cursor, count > ENGINE_SCAN_COUNT_MAX ? ENGINE_SCAN_COUNT_MAX : (uint32_t)count, rb);
}

static bool key_wanted(const struct cmd *cmd, const char *k, uint32_t len)
{
	if (cmd->flags & SCAN_NONE)
		return false;
	return !(cmd->flags & SCAN_MATCH) || cmd_glob(cmd->stash, cmd->stash_len, k, len, false);
}

static void reply_scan(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (e->result) {
		resp_add_error(rb, cmd_store_error(e->result));
		return;
	}
	uint32_t n = 0;
	const char *k;
	uint32_t len;
	struct scan_keys it = scan_keys_of(e);
	while (scan_next_key(c, &it, &k, &len))
		n += key_wanted(cmd, k, len);
	char cur[24];
	snprintf(cur, sizeof(cur), "%llu", (unsigned long long)e->cursor);
	resp_add_array(rb, 2);
	resp_add_bulk_str(rb, cur);
	resp_add_array(rb, n);
	it = scan_keys_of(e);
	while (scan_next_key(c, &it, &k, &len))
		if (key_wanted(cmd, k, len))
			resp_add_bulk(rb, k, len);
}

/* KEYS pattern: SCAN steps over the whole hash space; the matches build
 * the reply (cmd->reply, without its length until the end: cmd->count),
 * each key once (a step may visit one twice), within max-reply-bytes. */
#define KEYS_STEP_COUNT ENGINE_SCAN_COUNT_MAX

static void run_keys(CMD_RUN_ARGS)
{
	bool all = argv[1].len == 1 && argv[1].ptr[0] == '*';
	if (!all && !cmd_stash(cmd, argv[1].ptr, argv[1].len)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	cmd->flags = all ? 0 : SCAN_MATCH;
	if (prepare_scan(cmd, 0, KEYS_STEP_COUNT, rb))
		cmd_want_more(cmd, true);
}

struct kref {
	const char *p;
	uint32_t len;
};

static int kref_cmp(const void *a, const void *b)
{
	const struct kref *x = a, *y = b;
	uint32_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->p, y->p, n);
	return r ? r : x->len < y->len ? -1 : x->len > y->len;
}

static void fold_keys(struct conn *c, struct cmd *cmd)
{
	struct eop *e = &cmd->ops[0];
	cmd_want_more(cmd, false);
	if (e->result) {
		cmd->err = e->result;
		return;
	}
	struct kref *refs = malloc((size_t)(e->nkeys ? e->nkeys : 1) * sizeof(*refs));
	if (!refs) {
		cmd->err = -ENOMEM;
		return;
	}
	uint32_t n = 0;
	struct scan_keys it = scan_keys_of(e);
	const char *k;
	uint32_t len;
	while (scan_next_key(c, &it, &k, &len))
		if (key_wanted(cmd, k, len))
			refs[n++] = (struct kref){k, len};
	if (n > 1) /* a key seen twice in a step: once (refs may be NULL when empty) */
		qsort(refs, n, sizeof(*refs), kref_cmp);
	for (uint32_t i = 0; i < n && !cmd->err; i++) {
		if (i && kref_cmp(&refs[i - 1], &refs[i]) == 0)
			continue;
		if (resp_add_bulk(&cmd->reply, refs[i].p, refs[i].len))
			cmd->err = -ENOMEM;
		cmd->count++;
	}
	free(refs);
	if (!cmd->err && cmd->reply.len > c->w->cfg->max_reply_bytes)
		cmd->err = -E2BIG;
	cmd->u0 = e->cursor;
	cmd_want_more(cmd, !cmd->err && e->cursor != 0);
}

static int next_scan_step(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	return prepare_scan(cmd, cmd->u0, (uint32_t)cmd->n1 ? (uint32_t)cmd->n1 : KEYS_STEP_COUNT, rb) ? 0 : -ENOMEM;
}

static void reply_keys(CMD_REPLY_ARGS)
{
	if (cmd->err == -E2BIG) {
		resp_add_errorf(rb, "ERR reply larger than max-reply-bytes (%llu bytes)",
				(unsigned long long)c->w->cfg->max_reply_bytes);
	} else if (cmd->err) {
		resp_add_error(rb, cmd_store_error(cmd->err));
	} else {
		resp_add_array(rb, (size_t)cmd->count);
		if (cmd->reply.len && resp_add_raw(rb, cmd->reply.data, cmd->reply.len))
			resp_add_error(rb, cmd_store_error(-ENOMEM));
	}
}

/* RANDOMKEY: steps of a few keys from a random place in the hash space,
 * round it once at most (u0: the next step, u1: where it started; n0: 1
 * once it wrapped past the end), until a step finds a key: one of its keys
 * at random (the stash). Keys are spread evenly over the hash space, so a
 * step is as likely to hold any key. */
#define RANDOMKEY_STEP_COUNT 8u

static uint64_t random_u64(void)
{
	uint64_t x;
	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
		x = store_now_ms() * 0x9E3779B97F4A7C15ull;
	return x;
}

static void run_randomkey(CMD_RUN_ARGS)
{
	cmd->u1 = random_u64();
	cmd->n1 = RANDOMKEY_STEP_COUNT;
	if (prepare_scan(cmd, cmd->u1, RANDOMKEY_STEP_COUNT, rb))
		cmd_want_more(cmd, true);
}

static void fold_randomkey(struct conn *c, struct cmd *cmd)
{
	struct eop *e = &cmd->ops[0];
	cmd_want_more(cmd, false);
	if (e->result) {
		cmd->err = e->result;
		return;
	}
	uint32_t n = 0;
	const char *k;
	uint32_t len;
	struct scan_keys it = scan_keys_of(e);
	while (scan_next_key(c, &it, &k, &len))
		n++;
	if (n) {
		uint32_t pick = (uint32_t)(random_u64() % n), i = 0;
		it = scan_keys_of(e);
		while (scan_next_key(c, &it, &k, &len) && i++ < pick)
			;
		if (!cmd_stash(cmd, k, len))
			cmd->err = -ENOMEM;
		cmd->n0 = 2; /* found */
		return;
	}
	/* None here: on, until back where it started. */
	uint64_t next = e->cursor;
	if (next == 0) {
		if (cmd->u1 == 0 || cmd->n0 == 1)
			return; /* the whole space once: no key */
		cmd->n0 = 1;
	} else if (cmd->n0 == 1 && next > cmd->u1) {
		return;
	}
	cmd->u0 = next;
	cmd_want_more(cmd, true);
}

static void reply_randomkey(CMD_REPLY_ARGS)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else if (cmd->n0 == 2)
		resp_add_bulk(rb, cmd->stash, cmd->stash_len);
	else
		resp_add_null(rb, c->proto);
}

/* ---- the table ---- */

#define R CMDF_R
#define W CMDF_W
#define RMW CMDF_RW

static const struct cmd_def defs[] = {
	{"del", -2, W, 1, -1, 1, run_del, cmd_reply_count, "Deletes one or more keys.", cmd_fold_count, NULL},
	{"unlink", -2, W, 1, -1, 1, run_del, cmd_reply_count, "Asynchronously deletes one or more keys.", cmd_fold_count, NULL},
	{"exists", -2, R, 1, -1, 1, run_exists, cmd_reply_count, "Determines whether one or more keys exist.", cmd_fold_count, NULL},
	{"touch", -2, R, 1, -1, 1, run_exists, cmd_reply_count, "Returns the number of existing keys out of those specified after updating the time they were last accessed.", cmd_fold_count, NULL},
	{"type", 2, R, 1, 1, 1, run_probe, reply_type, "Determines the type of value stored at a key.", NULL, NULL},
	{"ttl", 2, R, 1, 1, 1, run_probe, reply_ttl, "Returns the expiration time in seconds of a key.", NULL, NULL},
	{"pttl", 2, R, 1, 1, 1, run_probe, reply_pttl, "Returns the expiration time in milliseconds of a key.", NULL, NULL},
	{"expiretime", 2, R, 1, 1, 1, run_probe, reply_expiretime, "Returns the expiration time of a key as a Unix timestamp.", NULL, NULL},
	{"pexpiretime", 2, R, 1, 1, 1, run_probe, reply_pexpiretime, "Returns the expiration time of a key as a Unix milliseconds timestamp.", NULL, NULL},
	{"expire", -3, RMW, 1, 1, 1, run_expire, cmd_reply_rmw_int, "Sets the expiration time of a key in seconds.", NULL, NULL},
	{"pexpire", -3, RMW, 1, 1, 1, run_pexpire, cmd_reply_rmw_int, "Sets the expiration time of a key in milliseconds.", NULL, NULL},
	{"expireat", -3, RMW, 1, 1, 1, run_expireat, cmd_reply_rmw_int, "Sets the expiration time of a key to a Unix timestamp.", NULL, NULL},
	{"pexpireat", -3, RMW, 1, 1, 1, run_pexpireat, cmd_reply_rmw_int, "Sets the expiration time of a key to a Unix milliseconds timestamp.", NULL, NULL},
	{"persist", 2, RMW, 1, 1, 1, run_persist, cmd_reply_rmw_int, "Removes the expiration time of a key.", NULL, NULL},
	{"rename", 3, RMW, 1, 2, 1, run_rename, reply_rename, "Renames a key and overwrites the destination.", fold_two_key, next_two_key},
	{"renamenx", 3, RMW, 1, 2, 1, run_renamenx, reply_rename, "Renames a key only when the target key name doesn't exist.", fold_two_key, next_two_key},
	{"copy", -3, RMW, 1, 2, 1, run_copy, reply_copy, "Copies the value of a key to a new key.", fold_two_key, next_two_key},
	{"object", -2, R, 2, 2, 1, run_object, reply_object, "A container for object introspection commands.", NULL, NULL},
	{"scan", -2, R, 0, 0, 0, run_scan, reply_scan, "Iterates over the key names in the database.", NULL, NULL},
	{"keys", 2, R, 0, 0, 0, run_keys, reply_keys, "Returns all key names that match a pattern.", fold_keys, next_scan_step},
	{"randomkey", 1, R, 0, 0, 0, run_randomkey, reply_randomkey, "Returns a random key name from the database.", fold_randomkey, next_scan_step},
};

#undef R
#undef W
#undef RMW

const struct cmd_family cmd_family_keyspace = {defs, sizeof(defs) / sizeof(defs[0]), "generic"};
