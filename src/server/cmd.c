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
#include "base/hash.h"
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
	cmd->ops_done = 0;
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
	case -E2BIG: return "ERR reply larger than max-reply-bytes";
	/* Cluster mode (chost.c). */
	case -ETIMEDOUT:
		return "TIMEOUT the write may or may not have been applied: fewer than W replicas confirmed it in "
		       "time (read the key to see)";
	case -ETIME: return "TIMEOUT fewer than R replicas answered in time (nothing was written)";
	case -EBADMSG:
		return "ERR invalid context: not one DYN.GET returned for this key (garbage, truncated or altered); "
		       "use \"\" for a key never read";
	case -EXDEV: return "ERR invalid context: it belongs to another cluster";
	case -EMLINK:
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

/* ---- multi-key commands (MGET, EXISTS, DEL, UNLINK, MSET) ----
 * One op per key. A command of more keys than NET_CMD_OPS_CHUNK runs them
 * a chunk at a time (a copy of its keys waits in cmd->keys), so a request
 * of 262,143 keys holds 4096 ops, not 262,143 (848 bytes each). After each
 * chunk, fold() takes its results into the command (count, first error,
 * MGET's reply so far) and its ops are freed; reply() answers from that.
 * Writes drop repeated keys: MSET keeps each key's last value (Redis's
 * MSET is atomic: nobody sees the others), DEL deletes a key once (Redis
 * counts it once): one store write per key, not one per repeat, each of
 * which would wait for the one before it to be durable. */

struct cmd_keys {
	struct resp_arg *args; /* per op: its key, or key and value (step 2), into bytes */
	char *bytes;
	uint64_t bytes_len;
	uint32_t n, next;      /* ops in all; the first not yet prepared */
	uint32_t step;
	enum eop_kind kind;
	bool no_value, budget;
};

void cmd_keys_free(struct cmd *cmd)
{
	if (!cmd->keys)
		return;
	free(cmd->keys->args);
	free(cmd->keys->bytes);
	free(cmd->keys);
	cmd->keys = NULL;
}

bool cmd_has_more_ops(const struct cmd *cmd) { return cmd->keys && cmd->keys->next < cmd->keys->n; }

/* Fill ops[at, at + n) from args (key, or key and value, per op). */
static bool fill_ops(struct cmd *cmd, uint32_t at, const struct resp_arg *const *args, uint32_t n,
		     const struct cmd_keys *spec, struct resp_buf *rb)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct resp_arg *k = args[i];
		if (!fill_op(cmd, at + i, spec->kind, k, spec->step == 2 ? k + 1 : NULL, rb))
			return false;
		cmd->ops[at + i].no_value = spec->no_value;
		cmd->ops[at + i].budget = spec->budget ? &cmd->budget : NULL;
	}
	return true;
}

int cmd_next_chunk(struct cmd *cmd, struct resp_buf *rb)
{
	struct cmd_keys *k = cmd->keys;
	DV_ASSERT(k && k->next < k->n && cmd->nops == 0);
	uint32_t n = k->n - k->next < NET_CMD_OPS_CHUNK ? k->n - k->next : NET_CMD_OPS_CHUNK;
	const struct resp_arg *args[64];
	if (cmd_prepare_ops(cmd, n)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return -ENOMEM;
	}
	for (uint32_t done = 0; done < n; done += 64) {
		uint32_t m = n - done < 64 ? n - done : 64;
		for (uint32_t i = 0; i < m; i++)
			args[i] = &k->args[(size_t)(k->next + done + i) * k->step];
		if (!fill_ops(cmd, done, args, m, k, rb))
			return -ENOMEM; /* fill_op released the ops */
	}
	k->next += n;
	return 0;
}

/* Copy the ops' args (pos[i]: where op i's key is in argv) for chunks. */
static int keep_keys(struct cmd *cmd, const struct resp_arg *argv, const uint32_t *pos, uint32_t n,
		     const struct cmd_keys *spec)
{
	struct cmd_keys *k = malloc(sizeof(*k));
	if (!k)
		return -ENOMEM;
	*k = *spec;
	k->n = n;
	k->next = 0;
	k->bytes_len = 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < spec->step; j++)
			k->bytes_len += argv[pos[i] + j].len;
	k->args = malloc((size_t)n * spec->step * sizeof(*k->args));
	k->bytes = malloc(k->bytes_len ? k->bytes_len : 1);
	if (!k->args || !k->bytes) {
		free(k->args);
		free(k->bytes);
		free(k);
		return -ENOMEM;
	}
	char *p = k->bytes;
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < spec->step; j++) {
			const struct resp_arg *a = &argv[pos[i] + j];
			if (a->len)
				memcpy(p, a->ptr, a->len);
			k->args[(size_t)i * spec->step + j] = (struct resp_arg){.ptr = p, .len = a->len};
			p += a->len;
		}
	}
	cmd->keys = k;
	return 0;
}

/* Keys at argv[first], argv[first + step], ...: the places of those that
 * get an op, in request order, into pos (returns how many): every key, or
 * (dedupe) each key once, at its first place (dedupe < 0) or its last
 * (> 0: MSET's last value wins). A hash table of the keys seen (slots, a
 * power of two, at least twice the keys): linear in the keys. */
static uint32_t key_places(const struct resp_arg *argv, uint32_t argc, uint32_t first, uint32_t step, int dedupe,
			   uint32_t *pos, uint32_t *table, uint32_t slots)
{
	uint32_t total = (argc - first) / step, n = 0;
	for (uint32_t i = 0; i < total; i++) {
		uint32_t at = first + (dedupe > 0 ? total - 1 - i : i) * step;
		const struct resp_arg *a = &argv[at];
		bool seen = false;
		if (dedupe) {
			uint32_t mask = slots - 1;
			uint32_t h = (uint32_t)dv_key_hash64(a->ptr, a->len) & mask;
			for (uint32_t probe = 0; table[h] && !seen; probe++, h = (h + 1) & mask) {
				DV_ASSERT(probe < slots); /* at most half full */
				const struct resp_arg *b = &argv[table[h] - 1];
				seen = b->len == a->len && memcmp(b->ptr, a->ptr, a->len) == 0;
			}
			if (!seen)
				table[h] = at + 1;
		}
		if (!seen)
			pos[n++] = at;
	}
	for (uint32_t i = 0; dedupe > 0 && i < n / 2; i++) { /* found from the end: reverse */
		uint32_t t = pos[i];
		pos[i] = pos[n - 1 - i];
		pos[n - 1 - i] = t;
	}
	return n;
}

/* Prepare a multi-key command's ops (its first chunk of them); dedupe as
 * key_places(). On failure rb has the error and nothing is held. */
static void prepare_keys(struct cmd *cmd, struct resp_arg *argv, uint32_t argc, int dedupe,
			 const struct cmd_keys *spec, struct resp_buf *rb)
{
	const uint32_t first = 1, step = spec->step;
	for (uint32_t i = first; i < argc; i += step)
		if (!cmd_check_key(&argv[i], rb) || (step == 2 && !cmd_check_value(&argv[i + 1], rb)))
			return;
	uint32_t total = (argc - first) / step, slots = 0;
	if (dedupe && total > 1)
		for (slots = 4; slots < 2 * total; slots *= 2)
			;
	uint32_t small[64];
	uint32_t *pos = total + slots <= 64 ? small : malloc(((size_t)total + slots) * sizeof(uint32_t));
	if (!pos) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return;
	}
	uint32_t *table = pos + total;
	if (slots)
		memset(table, 0, slots * sizeof(uint32_t));
	uint32_t n = key_places(argv, argc, first, step, slots ? dedupe : 0, pos, table, slots);
	int err = 0;
	if (n > NET_CMD_OPS_CHUNK) {
		err = keep_keys(cmd, argv, pos, n, spec);
		if (!err)
			err = cmd_next_chunk(cmd, rb) ? 1 : 0; /* 1: rb has the error */
	} else {
		err = cmd_prepare_ops(cmd, n);
		const struct resp_arg *args[64];
		for (uint32_t done = 0; !err && done < n; done += 64) {
			uint32_t m = n - done < 64 ? n - done : 64;
			for (uint32_t i = 0; i < m; i++)
				args[i] = &argv[pos[done + i]];
			if (!fill_ops(cmd, done, args, m, spec, rb))
				err = 1;
		}
	}
	if (pos != small)
		free(pos);
	if (err) {
		cmd_release_ops(cmd);
		cmd_keys_free(cmd);
		if (err < 0)
			resp_add_error(rb, cmd_store_error(err));
	}
}

/* An op's result that is an error for its command (not "absent",
 * "condition failed" or "refused compare-and-set"). */
static bool op_failed(int r) { return r && r != -DV_ENOTFOUND && r != -EEXIST && r != -ESTALE; }

static bool first_error(const struct cmd *cmd, struct resp_buf *rb)
{
	for (uint32_t i = 0; i < cmd->nops; i++) {
		if (op_failed(cmd->ops[i].result)) {
			resp_add_error(rb, cmd_store_error(cmd->ops[i].result));
			return true;
		}
	}
	return false;
}

/* DEL, UNLINK, EXISTS: count the keys found or changed. */
static void fold_count(struct conn *c, struct cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->nops; i++) {
		int r = cmd->ops[i].result;
		cmd->count += r == 0;
		if (op_failed(r) && !cmd->err)
			cmd->err = r;
	}
}

static void reply_count(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else
		resp_add_int(rb, cmd->count);
}

/* MSET: its first error, or OK. */
static void fold_errors(struct conn *c, struct cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->nops && !cmd->err; i++)
		if (op_failed(cmd->ops[i].result))
			cmd->err = cmd->ops[i].result;
}

static void reply_mset(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else
		resp_add_simple(rb, "OK");
}

uint64_t cmd_cost(const struct cmd *cmd)
{
	const struct cmd_keys *k = cmd->keys;
	uint64_t bytes = k ? k->bytes_len + (uint64_t)k->n * k->step * sizeof(*k->args) : 0;
	uint64_t reads = 0;
	for (uint32_t i = 0; i < cmd->nops; i++) {
		const struct eop *e = &cmd->ops[i];
		bytes += sizeof(*e) + (e->kv != e->inl ? e->kv_len : 0);
		if (e->kind == EOP_RMW) /* reads the record, value and metadata */
			reads += DV_VALUE_BYTES_MAX + DV_META_BYTES_MAX;
		else if (e->kind == EOP_GET && !e->no_value && !e->budget)
			reads += DV_VALUE_BYTES_MAX;
	}
	if (cmd->nops && cmd->ops[0].budget) { /* MGET: its reply, at most its budget */
		uint64_t most = (uint64_t)cmd->count * DV_VALUE_BYTES_MAX;
		reads = (most < cmd->budget.left ? most : cmd->budget.left) + 16ull * (uint64_t)cmd->count;
	}
	return bytes + reads;
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

/* GET: the value. */
static void run_get(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	if (cmd_check_key(&argv[1], rb))
		prepare_one(cmd, EOP_GET, &argv[1], NULL, rb);
}

/* TYPE, TTL, PTTL: whether the key exists and its expiry, no value copied. */
static void run_probe(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	struct eop *e = cmd_check_key(&argv[1], rb) ? prepare_one(cmd, EOP_GET, &argv[1], NULL, rb) : NULL;
	if (e)
		e->no_value = true;
}

static void run_exists(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	const struct cmd_keys spec = {.step = 1, .kind = EOP_GET, .no_value = true};
	prepare_keys(cmd, argv, argc, 0, &spec, rb);
}

/* MGET: its values may take max-reply-bytes less 16 bytes of framing per
 * key (an upper bound on "$<len>\r\n...\r\n"): the engine stops copying
 * them there (eop_budget) and the reply is an error, whatever the keys. */
static void run_mget(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	uint64_t max = c->w->cfg->max_reply_bytes, framing = 16ull * argc;
	if (framing > max) {
		resp_add_errorf(rb, "ERR reply larger than max-reply-bytes (%llu bytes)", (unsigned long long)max);
		return;
	}
	cmd->budget = (struct eop_budget){.left = max - framing};
	cmd->count = argc - 1; /* the reply's array length */
	const struct cmd_keys spec = {.step = 1, .kind = EOP_GET, .budget = true};
	prepare_keys(cmd, argv, argc, 0, &spec, rb);
}

/* MGET: the values of these ops, appended to the reply being built. */
static void fold_mget(struct conn *c, struct cmd *cmd)
{
	uint64_t bytes = 16;
	for (uint32_t i = 0; i < cmd->nops && !cmd->err; i++) {
		if (op_failed(cmd->ops[i].result)) /* -E2BIG: over the budget */
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

static void reply_mget(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
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

/* SETNX: 1 when it wrote. */
static void reply_setnx(struct conn *c, struct cmd *cmd, struct resp_buf *rb)
{
	if (!first_error(cmd, rb))
		resp_add_int(rb, cmd->ops[0].result == 0);
}

static void run_mset(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	if ((argc - 1) % 2) {
		resp_add_errorf(rb, "ERR wrong number of arguments for '%s' command", cmd->def->name);
		return;
	}
	const struct cmd_keys spec = {.step = 2, .kind = EOP_PUT};
	prepare_keys(cmd, argv, argc, 1, &spec, rb);
}

static void run_del(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	const struct cmd_keys spec = {.step = 1, .kind = EOP_DEL};
	prepare_keys(cmd, argv, argc, -1, &spec, rb);
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
	{"get", 2, R | CMDF_FROM_WRITE, 1, 1, 1, run_get, reply_get, "value of a key", NULL},
	{"set", -3, W, 1, 1, 1, run_set, reply_set, "set a key [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]", NULL},
	{"setnx", 3, W, 1, 1, 1, run_setnx, reply_setnx, "set a key if absent", NULL},
	{"setex", 4, W, 1, 1, 1, run_setex, reply_ok, "set a key with a time to live in seconds", NULL},
	{"psetex", 4, W, 1, 1, 1, run_psetex, reply_ok, "set a key with a time to live in milliseconds", NULL},
	{"del", -2, W, 1, -1, 1, run_del, reply_count, "delete keys", fold_count},
	{"unlink", -2, W, 1, -1, 1, run_del, reply_count, "delete keys", fold_count},
	{"exists", -2, R, 1, -1, 1, run_exists, reply_count, "count the keys that exist", fold_count},
	{"mget", -2, R, 1, -1, 1, run_mget, reply_mget, "values of keys", fold_mget},
	{"mset", -3, W, 1, -1, 2, run_mset, reply_mset, "set keys (not atomic across keys)", fold_errors},
	{"type", 2, R, 1, 1, 1, run_probe, reply_type, "string or none", NULL},
	{"ttl", 2, R, 1, 1, 1, run_probe, reply_ttl, "seconds to live", NULL},
	{"pttl", 2, R, 1, 1, 1, run_probe, reply_pttl, "milliseconds to live", NULL},
	{"expire", -3, RMW, 1, 1, 1, run_expire, reply_rmw_int, "set a time to live in seconds", NULL},
	{"pexpire", -3, RMW, 1, 1, 1, run_pexpire, reply_rmw_int, "set a time to live in milliseconds", NULL},
	{"expireat", -3, RMW, 1, 1, 1, run_expireat, reply_rmw_int, "expire at a unix time in seconds", NULL},
	{"pexpireat", -3, RMW, 1, 1, 1, run_pexpireat, reply_rmw_int, "expire at a unix time in milliseconds", NULL},
	{"persist", 2, RMW, 1, 1, 1, run_persist, reply_rmw_int, "remove the time to live", NULL},
	{"getdel", 2, RMW, 1, 1, 1, run_getdel, reply_getdel, "get a value and delete the key", NULL},
	{"ping", -1, 0, 0, 0, 0, cmd_run_ping, NULL, "PONG, or the message", NULL},
	{"echo", 2, 0, 0, 0, 0, cmd_run_echo, NULL, "the message", NULL},
	{"auth", -2, NA, 0, 0, 0, cmd_run_auth, NULL, "authenticate", NULL},
	{"hello", -1, NA, 0, 0, 0, cmd_run_hello, NULL, "handshake: protocol 2 or 3, AUTH, SETNAME", NULL},
	{"select", 2, 0, 0, 0, 0, cmd_run_select_db, NULL, "database 0, or a keyspace in cluster mode", NULL},
	{"quit", -1, NA, 0, 0, 0, cmd_run_quit, NULL, "close the connection", NULL},
	{"client", -2, 0, 0, 0, 0, cmd_run_client, NULL, "SETNAME GETNAME ID INFO LIST SETINFO", NULL},
	{"command", -1, 0, 0, 0, 0, cmd_run_command, NULL, "COUNT INFO DOCS LIST", NULL},
	{"config", -2, 0, 0, 0, 0, cmd_run_config, NULL, "GET parameters", NULL},
	{"dbsize", 1, 0, 0, 0, 0, cmd_run_stats, cmd_reply_dbsize, "number of live keys", NULL},
	{"info", -1, 0, 0, 0, 0, cmd_run_stats, cmd_reply_info, "server, clients, stats, keyspace, storage", NULL},
	{"time", 1, 0, 0, 0, 0, cmd_run_time, NULL, "server time", NULL},
	{"dyn.get", -2, R, 1, 1, 1, cmd_run_dyn_get, cmd_reply_dyn_get, "every sibling value and the causal context", NULL},
	{"dyn.put", -4, W, 1, 1, 1, cmd_run_dyn_put, cmd_reply_dyn_ok, "write a value with a causal context", NULL},
	{"dyn.del", -3, W, 1, 1, 1, cmd_run_dyn_del, cmd_reply_dyn_ok, "delete with a causal context", NULL},
	{"dyn.status", 1, 0, 0, 0, 0, cmd_run_dyn_status, cmd_reply_dyn_view, "this node's view of the cluster", NULL},
	{"dyn.ring", 1, 0, 0, 0, 0, cmd_run_dyn_ring, cmd_reply_dyn_view, "the partition table", NULL},
	{"cluster", -2, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported", NULL},
	{"readonly", 1, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported", NULL},
	{"readwrite", 1, 0, 0, 0, 0, cmd_run_no_cluster, NULL, "Redis Cluster protocol: not supported", NULL},
	{"unknown", -1, 0, 0, 0, 0, run_unknown, NULL, "(unknown commands and protocol errors)", NULL},
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
