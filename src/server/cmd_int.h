/* cmd_int.h - private to cmd*.c: the command families, and the helpers
 * they share (keys, store operations, multi-key chunks, argument parsing).
 *
 * Families (each file holds its handlers and, at its end, its table rows;
 * cmd.c looks a name up over all of them):
 *   cmd_string.c   strings: GET, SET family, MGET, MSET, MSETNX, GETSET,
 *                  GETDEL, GETEX, APPEND, STRLEN, GETRANGE, SUBSTR, SETRANGE,
 *                  INCR family, INCRBYFLOAT, SETBIT, GETBIT, BITCOUNT, LCS
 *   cmd_keyspace.c keys: DEL, UNLINK, EXISTS, TOUCH, TYPE, TTL family,
 *                  EXPIRE family, PERSIST, RENAME, RENAMENX, COPY, OBJECT,
 *                  SCAN, KEYS, RANDOMKEY
 *   cmd_server.c   server: DBSIZE, INFO, FLUSHDB, FLUSHALL, COMMAND, CONFIG,
 *                  TIME, FUNCTION
 *   cmd_conn.c     connection: PING, ECHO, AUTH, HELLO, SELECT, QUIT, CLIENT
 *   cmd_dyn.c      the Dynamo API (DYN.*) and the Redis Cluster commands
 * Every key command reaches the store through cmd_prepare_one() or
 * cmd_prepare_keys(): the eops go to the engine, which hands them to the
 * store (one node) or to the cluster host (cluster mode: chost.c), so one
 * path serves both (the keyless FLUSH, SCAN and DBSIZE's count too: the
 * cluster host gives them their cluster meaning).
 */
#ifndef DV_SERVER_CMD_INT_H
#define DV_SERVER_CMD_INT_H

#include "server/cmd.h"

#define CMD_RUN_ARGS struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb
#define CMD_REPLY_ARGS struct conn *c, struct cmd *cmd, struct resp_buf *rb

/* Single-node records' metadata (the cluster's holds versions): one byte
 * for the encoding Redis's object would have where the value alone does
 * not say it (none: what tryObjectEncoding gives the value, cmd_keyspace.c
 * encoding_of). RAW: changed in place (APPEND, SETRANGE, SETBIT); STR: a
 * string never int-encoded, embstr or raw by its length (INCRBYFLOAT's
 * result); INT: an integer of the shared range 0..9999 in an object of its
 * own (COPY's duplicate: REFCOUNT 1). RENAME keeps the byte. */
#define CMD_META_RAW 0x01
#define CMD_META_STR 0x02
#define CMD_META_INT 0x03
/* The byte of a record's metadata (0: none, or cluster mode's versions). */
uint8_t cmd_meta_encoding(const char *meta, uint32_t meta_len);
/* The metadata of one byte b (NULL, 0 for none). */
const char *cmd_meta_bytes(uint8_t b, uint32_t *len);

/* Table row shortcuts. */
#define CMDF_R CMDF_READ
#define CMDF_W CMDF_WRITE
#define CMDF_RW (CMDF_RMW | CMDF_WRITE)

struct cmd_family {
	const struct cmd_def *defs;
	unsigned count;
	const char *group; /* COMMAND DOCS */
};
extern const struct cmd_family cmd_family_string, cmd_family_keyspace, cmd_family_server, cmd_family_conn,
	cmd_family_dyn;

/* Store operations of a multi-key command not yet prepared (cmd.h:
 * chunks): a copy of their args, and what every op gets. */
struct cmd_keys {
	struct resp_arg *args; /* per op: its key, or key and value (step 2), into bytes */
	char *bytes;
	uint64_t bytes_len;
	uint32_t n, next;      /* ops in all; the first not yet prepared */
	uint32_t step;
	enum eop_kind kind;
	enum store_cond cond;  /* PUT: NX (MSETNX) */
	bool no_value, budget;
	bool keep;             /* kept even when one chunk holds them (a later step uses them) */
};

/* ---- keys ---- */

/* The byte the store key starts with (keymap.h), or -1 for none. */
int cmd_key_prefix(const struct conn *c);
bool cmd_cluster_mode(const struct conn *c);
/* A key this node can keep (its length: keymap.h); else the error in rb. */
bool cmd_check_key(const struct conn *c, const struct resp_arg *k, struct resp_buf *rb);
bool cmd_check_value(const struct resp_arg *v, struct resp_buf *rb);
/* The client's key of a store key found by a scan; false when the record
 * is not one of the client's keys (another layout's, metadata). */
bool cmd_user_key(const struct conn *c, const char *skey, uint32_t slen, const char **key, uint32_t *len);

/* ---- store operations ---- */

/* The one op of a single-key command (key: the client's; the store key
 * is made here); NULL when rb has the error. */
struct eop *cmd_prepare_one(struct cmd *cmd, enum eop_kind kind, const struct resp_arg *key,
			    const struct resp_arg *val, struct resp_buf *rb);
/* One op with no key (STATS, SCAN, FLUSH); NULL when rb has the error. */
struct eop *cmd_prepare_keyless(struct cmd *cmd, enum eop_kind kind, struct resp_buf *rb);
/* Fill op i (cmd_prepare_ops done); on failure every op is released and
 * rb has the error. */
bool cmd_fill_op(struct cmd *cmd, uint32_t i, enum eop_kind kind, const struct resp_arg *key,
		 const struct resp_arg *val, struct resp_buf *rb);
/* A multi-key command's ops (the first chunk of them): keys at
 * argv[first], argv[first + step], ... (step 2: key then value); dedupe
 * < 0 keeps each key's first place, > 0 its last (MSET's last value),
 * 0 every key. On failure rb has the error and nothing is held. */
void cmd_prepare_keys(struct cmd *cmd, struct resp_arg *argv, uint32_t argc, uint32_t first, int dedupe,
		      const struct cmd_keys *spec, struct resp_buf *rb);
/* Append bytes to cmd->stash (what a later step or the reply needs: the
 * request's args are gone once it ran). false when out of memory. */
bool cmd_stash(struct cmd *cmd, const void *p, uint32_t len);
/* A command's more ops: a next phase (run by cmd_next_chunk through the
 * def's next()) once the ops out are back and folded. */
void cmd_want_more(struct cmd *cmd, bool more);

/* Results. */
bool cmd_op_failed(int r); /* an error, not a "found nothing" or a failed condition */
bool cmd_first_error(const struct cmd *cmd, struct resp_buf *rb);
void cmd_fold_count(struct conn *c, struct cmd *cmd);
void cmd_reply_count(CMD_REPLY_ARGS);
void cmd_reply_rmw_int(CMD_REPLY_ARGS);

/* ---- arguments ---- */

/* Redis's integer (string2ll rules) or "ERR value is not an integer or
 * out of range" in rb. */
bool cmd_arg_i64(const struct resp_arg *a, int64_t *out, struct resp_buf *rb);
/* getIntFromObjectOrReply: an integer within int's range, or Redis's
 * error in rb. */
bool cmd_arg_int(const struct resp_arg *a, int64_t *out, struct resp_buf *rb);
/* A value as a long long the way Redis's INCR reads it (string2ll). */
bool cmd_value_ll(const char *p, uint32_t len, long long *out);
bool cmd_expire_at(int64_t t, bool ms, bool absolute, uint64_t now_ms, uint64_t *out);
/* A subcommand of a container command (CLIENT, CONFIG, ...): its index,
 * or -1 with Redis's error in rb (unknown subcommand, wrong arity). */
struct cmd_sub {
	const char *name;
	int arity; /* of the whole request, as COMMAND INFO "client|kill" */
};
int cmd_subcommand(const struct resp_arg *argv, uint32_t argc, const struct cmd_sub *subs, unsigned n,
		   struct resp_buf *rb);
/* A container command's subcommands (COMMAND GETKEYS looks one up as
 * Redis does): OBJECT's (cmd_keyspace.c), CLIENT's (cmd_conn.c), CLUSTER's
 * (cmd_dyn.c); COMMAND's,
 * CONFIG's and FUNCTION's are cmd_server.c's own. */
struct cmd_container {
	const char *name; /* the command, lower case */
	const struct cmd_sub *subs;
	unsigned n;
};
extern const struct cmd_container cmd_container_object, cmd_container_client, cmd_container_cluster;
/* Redis's addReplySubcommandSyntaxError: "unknown subcommand or wrong
 * number of arguments for 'sub'. Try CMD HELP." (argv[1] as sent, argv[0]
 * upper-cased). */
void cmd_reply_sub_syntax(const struct resp_arg *argv, struct resp_buf *rb);
/* "CMD <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", the
 * lines, then HELP: Redis's help reply (argv[0] upper-cased). */
void cmd_reply_help(const struct resp_arg *name, const char *const *lines, struct resp_buf *rb);
/* Redis's stringmatchlen(): glob with *, ?, [a-z], [^...], \ escapes. */
bool cmd_glob(const char *pat, size_t plen, const char *s, size_t slen, bool nocase);

/* cmd_conn.c, used by cmd_dyn.c; cmd_dyn.c's, used by cmd_conn.c */
void cmd_run_select(CMD_RUN_ARGS);
void cmd_run_select_db(CMD_RUN_ARGS);
/* cmd_server.c: DBSIZE and INFO, one engine round trip for the stats */
void cmd_run_stats(CMD_RUN_ARGS);

#endif
