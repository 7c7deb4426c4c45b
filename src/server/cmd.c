/* cmd.c - the one lookup over the command families, and what their
 * commands share: keys and the store key layout, store operations, the
 * chunks of multi-key commands and the steps of the others, the reply
 * helpers, Redis's argument rules (integers, subcommands, glob patterns).
 *
 * Semantics over the engine (docs/ARCHITECTURE.md, "Node server"):
 * - Every write is acknowledged only once durable (the store's contract).
 * - Commands that read then write run as engine read-modify-writes:
 *   compare-and-set on the record's sequence number, so no concurrent
 *   write is lost (on one node; cluster mode: chost.h).
 * - Multi-key commands are one store operation per key, not atomic across
 *   keys; each key's operation is.
 */
#include "server/cmd.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/constants.h"
#include "base/error.h"
#include "base/hash.h"
#include "server/cmd_int.h"
#include "server/keymap.h"

/* ---- the table: every family, then the pseudo-command ---- */

static void run_unknown(CMD_RUN_ARGS) { resp_add_error(rb, "ERR unknown command"); }

static const struct cmd_def unknown_defs[] = {
	{"unknown", -1, 0, 0, 0, 0, run_unknown, NULL, "(unknown commands and protocol errors)", NULL, NULL},
};
static const struct cmd_family family_unknown = {unknown_defs, 1, "server"};

/* In this order: the hot commands (strings) are found first when names
 * share a hash slot; "unknown" is last (cmd_unknown). */
static const struct cmd_family *const families[] = {
	&cmd_family_string, &cmd_family_keyspace, &cmd_family_server, &cmd_family_conn, &cmd_family_dyn,
	&family_unknown,
};
#define FAMILIES (sizeof(families) / sizeof(families[0]))

#define LOOKUP_SLOTS 512u /* a power of two, more than twice the commands */
#define CMD_NAME_MAX 16u

static struct {
	const struct cmd_def *slot[LOOKUP_SLOTS];
	const struct cmd_def *by_index[METRICS_CMDS_MAX];
	unsigned count;
	pthread_once_t once;
} cmds = {.once = PTHREAD_ONCE_INIT};

static unsigned name_hash(const char *p, uint32_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a over the lower-cased name */
	for (uint32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		h = (h ^ (unsigned char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch)) * 16777619u;
	}
	return h & (LOOKUP_SLOTS - 1);
}

static void cmds_build(void)
{
	for (unsigned f = 0; f < FAMILIES; f++) {
		for (unsigned i = 0; i < families[f]->count; i++) {
			const struct cmd_def *d = &families[f]->defs[i];
			uint32_t len = (uint32_t)strlen(d->name);
			DV_ASSERT(cmds.count < METRICS_CMDS_MAX && len <= CMD_NAME_MAX);
			cmds.by_index[cmds.count++] = d;
			if (d == unknown_defs)
				continue; /* never found by name */
			unsigned h = name_hash(d->name, len);
			for (unsigned probe = 0; cmds.slot[h]; probe++, h = (h + 1) & (LOOKUP_SLOTS - 1)) {
				DV_ASSERT(probe < LOOKUP_SLOTS && strcmp(cmds.slot[h]->name, d->name) != 0);
			}
			cmds.slot[h] = d;
		}
	}
	DV_ASSERT(cmds.by_index[cmds.count - 1] == unknown_defs && 2 * cmds.count < LOOKUP_SLOTS);
}

static void cmds_init(void) { pthread_once(&cmds.once, cmds_build); }

const struct cmd_def *cmd_lookup(const struct resp_arg *name)
{
	cmds_init();
	if (name->len == 0 || name->len > CMD_NAME_MAX)
		return NULL;
	for (unsigned h = name_hash(name->ptr, name->len), probe = 0; cmds.slot[h] && probe < LOOKUP_SLOTS;
	     h = (h + 1) & (LOOKUP_SLOTS - 1), probe++) {
		const struct cmd_def *d = cmds.slot[h];
		if (strlen(d->name) == name->len && resp_arg_is(name, d->name))
			return d;
	}
	return NULL;
}

const struct cmd_def *cmd_unknown(void) { return unknown_defs; }

unsigned cmd_count(void)
{
	cmds_init();
	return cmds.count;
}

const struct cmd_def *cmd_by_index(unsigned i) { return i < cmd_count() ? cmds.by_index[i] : NULL; }

unsigned cmd_index(const struct cmd_def *d)
{
	cmds_init();
	for (unsigned i = 0; i < cmds.count; i++)
		if (cmds.by_index[i] == d)
			return i;
	DV_ASSERT(!"a command of no family");
	return 0;
}

/* ---- errors ---- */

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
	case -EOPNOTSUPP: return "ERR not supported in cluster mode yet";
	/* Cluster mode (chost.c). */
	case -ETIMEDOUT:
		return "TIMEOUT the write may or may not have been applied: fewer than W replicas confirmed it in "
		       "time (read the key to see)";
	case -ETIME: return "TIMEOUT fewer than R replicas answered in time (nothing was written)";
	case -ENOLINK: return "TIMEOUT no node answered the key count in time (DBSIZE, INFO keyspace)";
	case -EINPROGRESS:
		return "TIMEOUT the flush may or may not be complete: some nodes did not confirm it in time (those "
		       "that have it refuse the others' older data; they apply it when they next reach one)";
	case -EIDRM: /* CNODE_EFLUSHED */
		return "ERR the keyspace was flushed while the request ran: nothing of it is left (not applied, or "
		       "applied before the flush, which removed it); try again";
	case -ENOMSG: /* CNODE_EBEHIND */
		return "TRYAGAIN the context was read after a flush that this node has not applied, and it could not "
		       "learn the flush from its peers in time: not applied; try again, or through another node";
	case -EDEADLK: /* CNODE_ERACED */
		return "TIMEOUT the write may or may not have been applied: it raced writes of the key through other "
		       "nodes (read the key to see)";
	case -ENOTRECOVERABLE: /* CNODE_EFLUSHED_MAYBE */
		return "ERR the keyspace was flushed while the write ran and its nodes did not agree on the flush in "
		       "time: the write may or may not have been applied (read the key to see)";
	case -EBADMSG:
		return "ERR invalid context: not one DYN.GET returned for this key (garbage, truncated or altered); "
		       "use \"\" for a key never read";
	case -EXDEV: return "ERR invalid context: it belongs to another cluster";
	case -EMLINK:
		return "ERR too many siblings or too large a version for this key: read it with DYN.GET and write "
		       "the resolved value with DYN.PUT and its context";
	case -EAGAIN: return "ERR node busy: too many requests in flight; try again";
	case -ENAMETOOLONG: return "ERR key too large for cluster mode (max 1023 bytes)";
	case -EINVAL: return "ERR invalid request (keyspace, R or W, or a key the store keeps for itself)";
	default: return "ERR storage error";
	}
}

bool cmd_op_failed(int r) { return r && r != -DV_ENOTFOUND && r != -EEXIST && r != -ESTALE; }

bool cmd_first_error(const struct cmd *cmd, struct resp_buf *rb)
{
	if (cmd->err) {
		resp_add_error(rb, cmd_store_error(cmd->err));
		return true;
	}
	for (uint32_t i = 0; i < cmd->nops; i++) {
		if (cmd_op_failed(cmd->ops[i].result)) {
			resp_add_error(rb, cmd_store_error(cmd->ops[i].result));
			return true;
		}
	}
	return false;
}

/* DEL, EXISTS, TOUCH: count the keys found (or deleted), keep the first error. */
void cmd_fold_count(struct conn *c, struct cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->nops; i++) {
		int r = cmd->ops[i].result;
		cmd->count += r == 0;
		if (cmd_op_failed(r) && !cmd->err)
			cmd->err = r;
	}
}

void cmd_reply_count(CMD_REPLY_ARGS)
{
	if (cmd->err)
		resp_add_error(rb, cmd_store_error(cmd->err));
	else
		resp_add_int(rb, cmd->count);
}

void cmd_reply_rmw_int(CMD_REPLY_ARGS)
{
	struct eop *e = &cmd->ops[0];
	if (e->result)
		resp_add_error(rb, cmd_store_error(e->result));
	else
		resp_add_int(rb, e->reply_int);
}

/* ---- keys ---- */

bool cmd_cluster_mode(const struct conn *c) { return cluster_enabled(&c->w->cfg->cluster); }

int cmd_key_prefix(const struct conn *c) { return c->w->srv->key_prefix; }

bool cmd_check_key(const struct conn *c, const struct resp_arg *k, struct resp_buf *rb)
{
	/* The store keeps keys of 1..DV_KEY_BYTES_MAX bytes: a prefixed layout
	 * (and cluster mode, whose keyspace byte comes first) has one less. */
	bool whole = !cmd_cluster_mode(c) && cmd_key_prefix(c) < 0;
	uint32_t max = whole ? DV_KEY_BYTES_MAX : DV_KEY_BYTES_MAX - 1;
	if (k->len == 0 && whole) {
		resp_add_error(rb, "ERR empty keys are not supported by this data file (dynvme 0.3 layout)");
		return false;
	}
	if (k->len > max && cmd_cluster_mode(c)) {
		resp_add_error(rb, cmd_store_error(-ENAMETOOLONG)); /* the cluster layer's own wording */
		return false;
	}
	if (k->len > max) {
		resp_add_errorf(rb, "ERR key too large (%u bytes, max %u)", k->len, max);
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

bool cmd_user_key(const struct conn *c, const char *skey, uint32_t slen, const char **key, uint32_t *len)
{
	int prefix = cmd_key_prefix(c);
	if (prefix < 0) {
		*key = skey;
		*len = slen;
		return true;
	}
	if (slen < 1 || (unsigned char)skey[0] != (unsigned)prefix)
		return false;
	*key = skey + 1;
	*len = slen - 1;
	return true;
}

/* ---- store operations ---- */

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

bool cmd_fill_op(struct cmd *cmd, uint32_t i, enum eop_kind kind, const struct resp_arg *key,
		 const struct resp_arg *val, struct resp_buf *rb)
{
	int err = eop_init_key(&cmd->ops[i], kind, cmd_key_prefix(cmd->conn), key->ptr, key->len,
			       val ? val->ptr : NULL, val ? val->len : 0);
	if (err) {
		cmd_release_ops(cmd);
		resp_add_error(rb, cmd_store_error(err));
		return false;
	}
	return true;
}

struct eop *cmd_prepare_one(struct cmd *cmd, enum eop_kind kind, const struct resp_arg *key,
			    const struct resp_arg *val, struct resp_buf *rb)
{
	if (cmd_prepare_ops(cmd, 1)) {
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return NULL;
	}
	return cmd_fill_op(cmd, 0, kind, key, val, rb) ? &cmd->ops[0] : NULL;
}

struct eop *cmd_prepare_keyless(struct cmd *cmd, enum eop_kind kind, struct resp_buf *rb)
{
	if (cmd_prepare_ops(cmd, 1) || eop_init(&cmd->ops[0], kind, NULL, 0, NULL, 0)) {
		cmd_release_ops(cmd);
		resp_add_error(rb, cmd_store_error(-ENOMEM));
		return NULL;
	}
	return &cmd->ops[0];
}

void cmd_want_more(struct cmd *cmd, bool more) { cmd->more = more; }

bool cmd_stash(struct cmd *cmd, const void *p, uint32_t len)
{
	char *n = realloc(cmd->stash, (size_t)cmd->stash_len + len + 1);
	if (!n)
		return false;
	if (len)
		memcpy(n + cmd->stash_len, p, len);
	cmd->stash = n;
	cmd->stash_len += len;
	return true;
}

/* ---- multi-key commands (MGET, EXISTS, DEL, UNLINK, TOUCH, MSET, MSETNX) ----
 * One op per key. A command of more keys than NET_CMD_OPS_CHUNK runs them
 * a chunk at a time (a copy of its keys waits in cmd->keys), so a request
 * of 262,143 keys holds 4096 ops, not 262,143 (848 bytes each). After each
 * chunk, fold() takes its results into the command (count, first error,
 * MGET's reply so far) and its ops are freed; reply() answers from that.
 * Writes drop repeated keys: MSET keeps each key's last value (Redis's
 * MSET is atomic: nobody sees the others), DEL deletes a key once (Redis
 * counts it once): one store write per key, not one per repeat, each of
 * which would wait for the one before it to be durable. */

void cmd_keys_free(struct cmd *cmd)
{
	if (!cmd->keys)
		return;
	free(cmd->keys->args);
	free(cmd->keys->bytes);
	free(cmd->keys);
	cmd->keys = NULL;
}

bool cmd_has_more_ops(const struct cmd *cmd)
{
	return (cmd->keys && cmd->keys->next < cmd->keys->n) || cmd->more;
}

/* Fill ops[at, at + n) from args (key, or key and value, per op). */
static bool fill_ops(struct cmd *cmd, uint32_t at, const struct resp_arg *const *args, uint32_t n,
		     const struct cmd_keys *spec, struct resp_buf *rb)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct resp_arg *k = args[i];
		bool kv = spec->step == 2 && spec->kind == EOP_PUT;
		if (!cmd_fill_op(cmd, at + i, spec->kind, k, kv ? k + 1 : NULL, rb))
			return false;
		cmd->ops[at + i].no_value = spec->no_value;
		cmd->ops[at + i].budget = spec->budget ? &cmd->budget : NULL;
		cmd->ops[at + i].sop.cond = spec->cond;
	}
	return true;
}

int cmd_next_chunk(struct cmd *cmd, struct resp_buf *rb)
{
	struct cmd_keys *k = cmd->keys;
	if (!k || k->next == k->n) { /* a command of steps */
		DV_ASSERT(cmd->more && cmd->def->next && cmd->nops == 0);
		cmd->more = false;
		cmd->step++;
		return cmd->def->next(cmd->conn, cmd, rb);
	}
	DV_ASSERT(k->next < k->n && cmd->nops == 0);
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

void cmd_prepare_keys(struct cmd *cmd, struct resp_arg *argv, uint32_t argc, uint32_t first, int dedupe,
		      const struct cmd_keys *spec, struct resp_buf *rb)
{
	const uint32_t step = spec->step;
	for (uint32_t i = first; i < argc; i += step)
		if (!cmd_check_key(cmd->conn, &argv[i], rb) || (step == 2 && !cmd_check_value(&argv[i + 1], rb)))
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
	if (n > NET_CMD_OPS_CHUNK || spec->keep) {
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
		else if (e->kind == EOP_SCAN) /* the keys of its step */
			reads += (2ull * ENGINE_SCAN_COUNT_MAX + 64) * (DV_KEY_BYTES_MAX + 2u);
	}
	if (cmd->nops && cmd->ops[0].budget) { /* MGET: its reply, at most its budget */
		uint64_t most = (uint64_t)cmd->count * DV_VALUE_BYTES_MAX;
		reads = (most < cmd->budget.left ? most : cmd->budget.left) + 16ull * (uint64_t)cmd->count;
	}
	/* A command of steps holds at most what its largest step does: a
	 * value read, a copy of it kept, a write of it (RENAME, COPY). */
	if (cmd->def->next)
		reads += 2ull * (DV_VALUE_BYTES_MAX + DV_META_BYTES_MAX);
	return bytes + reads;
}

/* ---- arguments ---- */

bool cmd_arg_i64(const struct resp_arg *a, int64_t *out, struct resp_buf *rb)
{
	if (resp_arg_i64(a, out) == 0)
		return true;
	resp_add_error(rb, "ERR value is not an integer or out of range");
	return false;
}

bool cmd_arg_int(const struct resp_arg *a, int64_t *out, struct resp_buf *rb)
{
	if (!cmd_arg_i64(a, out, rb))
		return false;
	if (*out < INT32_MIN || *out > INT32_MAX) {
		resp_add_error(rb, "ERR value is out of range, value must between -2147483648 and 2147483647");
		return false;
	}
	return true;
}

bool cmd_value_ll(const char *p, uint32_t len, long long *out)
{
	if (len == 0 || len > 20)
		return false;
	struct resp_arg a = {.ptr = (char *)p, .len = len};
	int64_t v;
	if (resp_arg_i64(&a, &v))
		return false;
	*out = v;
	return true;
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

int cmd_subcommand(const struct resp_arg *argv, uint32_t argc, const struct cmd_sub *subs, unsigned n,
		   struct resp_buf *rb)
{
	DV_ASSERT(argc >= 2);
	for (unsigned i = 0; i < n; i++) {
		if (!resp_arg_is(&argv[1], subs[i].name))
			continue;
		int a = subs[i].arity;
		if ((a > 0 && argc != (uint32_t)a) || (a < 0 && argc < (uint32_t)-a)) {
			/* Redis names a subcommand "container|sub", lower case. */
			char full[64];
			int len = snprintf(full, sizeof(full), "%.*s|%s", (int)(argv[0].len < 24 ? argv[0].len : 24),
					   argv[0].ptr, subs[i].name);
			for (int j = 0; j < len && j < (int)sizeof(full); j++)
				if (full[j] >= 'A' && full[j] <= 'Z')
					full[j] = (char)(full[j] + 32);
			resp_add_errorf(rb, "ERR wrong number of arguments for '%s' command", full);
			return -1;
		}
		return (int)i;
	}
	char name[32];
	uint32_t nl = argv[0].len < sizeof(name) - 1 ? argv[0].len : (uint32_t)sizeof(name) - 1;
	for (uint32_t j = 0; j < nl; j++)
		name[j] = argv[0].ptr[j] >= 'a' && argv[0].ptr[j] <= 'z' ? (char)(argv[0].ptr[j] - 32) : argv[0].ptr[j];
	name[nl] = '\0';
	resp_add_errorf(rb, "ERR unknown subcommand '%.*s'. Try %s HELP.", (int)(argv[1].len < 128 ? argv[1].len : 128),
			argv[1].ptr, name);
	return -1;
}

void cmd_reply_sub_syntax(const struct resp_arg *argv, struct resp_buf *rb)
{
	char up[32];
	uint32_t nl = argv[0].len < sizeof(up) - 1 ? argv[0].len : (uint32_t)sizeof(up) - 1;
	for (uint32_t j = 0; j < nl; j++)
		up[j] = argv[0].ptr[j] >= 'a' && argv[0].ptr[j] <= 'z' ? (char)(argv[0].ptr[j] - 32) : argv[0].ptr[j];
	up[nl] = '\0';
	resp_add_errorf(rb, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try %s HELP.",
			(int)(argv[1].len < 128 ? argv[1].len : 128), argv[1].ptr, up);
}

void cmd_reply_help(const struct resp_arg *name, const char *const *lines, struct resp_buf *rb)
{
	unsigned n = 0;
	while (lines[n])
		n++;
	char up[32];
	uint32_t nl = name->len < sizeof(up) - 1 ? name->len : (uint32_t)sizeof(up) - 1;
	for (uint32_t j = 0; j < nl; j++)
		up[j] = name->ptr[j] >= 'a' && name->ptr[j] <= 'z' ? (char)(name->ptr[j] - 32) : name->ptr[j];
	up[nl] = '\0';
	resp_add_array(rb, n + 3);
	char head[96];
	snprintf(head, sizeof(head), "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", up);
	resp_add_simple(rb, head);
	for (unsigned i = 0; i < n; i++)
		resp_add_simple(rb, lines[i]);
	resp_add_simple(rb, "HELP");
	resp_add_simple(rb, "    Prints this help.");
}

/* Redis's stringmatchlen (util.c), the same rules: '*' any run (runs of
 * '*' fold), '?' one byte, "[...]" a class with ranges (either order),
 * '^' negation and '\' escapes, '\' escapes any byte outside one. The
 * recursion is on '*' only (a run counts once), and stops at 1000 deep:
 * such a pattern matches nothing here (Redis would recurse on). */
static bool glob_at(const char *p, size_t plen, const char *s, size_t slen, bool nocase, unsigned depth,
		    bool *skip_longer)
{
	while (plen && slen) {
		switch (p[0]) {
		case '*':
			while (plen > 1 && p[1] == '*') {
				p++;
				plen--;
			}
			if (plen == 1)
				return true; /* a last '*' matches the rest */
			if (depth > 1000) { /* a bound on the stack; no real pattern has that many stars */
				*skip_longer = true;
				return false;
			}
			while (slen) {
				if (glob_at(p + 1, plen - 1, s, slen, nocase, depth + 1, skip_longer))
					return true;
				if (*skip_longer)
					return false; /* no later start can match either */
				s++;
				slen--;
			}
			*skip_longer = true;
			return false;
		case '?':
			s++;
			slen--;
			break;
		case '[': {
			p++;
			plen--;
			bool neg = plen && p[0] == '^';
			if (neg) {
				p++;
				plen--;
			}
			bool match = false;
			for (;;) {
				if (plen >= 2 && p[0] == '\\') {
					p++;
					plen--;
					if (p[0] == s[0])
						match = true;
				} else if (plen && p[0] == ']') {
					break;
				} else if (plen == 0) {
					p--; /* unterminated: as Redis, the last byte closes it */
					plen++;
					break;
				} else if (plen >= 3 && p[1] == '-') {
					/* char as Redis compares it (signed here) */
					int a = (signed char)p[0], b = (signed char)p[2], c = (signed char)s[0];
					if (a > b) {
						int t = a;
						a = b;
						b = t;
					}
					if (nocase) {
						a = a >= 'A' && a <= 'Z' ? a + 32 : a;
						b = b >= 'A' && b <= 'Z' ? b + 32 : b;
						c = c >= 'A' && c <= 'Z' ? c + 32 : c;
					}
					p += 2;
					plen -= 2;
					if (c >= a && c <= b)
						match = true;
				} else {
					int a = (unsigned char)p[0], c = (unsigned char)s[0];
					if (nocase) {
						a = a >= 'A' && a <= 'Z' ? a + 32 : a;
						c = c >= 'A' && c <= 'Z' ? c + 32 : c;
					}
					if (a == c)
						match = true;
				}
				p++;
				plen--;
			}
			if (neg)
				match = !match;
			if (!match)
				return false;
			s++;
			slen--;
			break;
		}
		case '\\':
			if (plen >= 2) {
				p++;
				plen--;
			}
			__attribute__((fallthrough));
		default: {
			int a = (unsigned char)p[0], c = (unsigned char)s[0];
			if (nocase) {
				a = a >= 'A' && a <= 'Z' ? a + 32 : a;
				c = c >= 'A' && c <= 'Z' ? c + 32 : c;
			}
			if (a != c)
				return false;
			s++;
			slen--;
			break;
		}
		}
		p++;
		plen--;
		if (slen == 0) {
			while (plen && p[0] == '*') {
				p++;
				plen--;
			}
			break;
		}
	}
	return plen == 0 && slen == 0;
}

bool cmd_glob(const char *pat, size_t plen, const char *s, size_t slen, bool nocase)
{
	bool skip_longer = false;
	return glob_at(pat, plen, s, slen, nocase, 0, &skip_longer);
}

uint8_t cmd_meta_encoding(const char *meta, uint32_t meta_len)
{
	return meta_len == 1 ? (uint8_t)meta[0] : 0;
}

const char *cmd_meta_bytes(uint8_t b, uint32_t *len)
{
	static const char bytes[4] = {0, CMD_META_RAW, CMD_META_STR, CMD_META_INT};
	*len = b && b < sizeof(bytes) ? 1 : 0;
	return *len ? &bytes[b] : NULL;
}
