/* cmd.h - the command table: names, arity, key positions, and for each
 * command a run() that answers at once or prepares store operations, and
 * a reply() that writes the answer once they are back.
 *
 * Contract:
 * - run(c, cmd, argv, argc, rb) is called on the connection's thread with
 *   arity already checked. It either appends the whole reply to rb, or
 *   calls cmd_prepare_ops(cmd, n) and fills the n eops (the connection
 *   submits them and calls reply() when all are back, in arrival order
 *   with the connection's other replies). run() has no other effect for
 *   a command with eops: the connection may undo it (cmd_release_ops,
 *   cmd_keys_free) and run it again later.
 * - Multi-key commands have a fold(): called each time the ops run so far
 *   are back (at most NET_CMD_OPS_CHUNK at once; cmd_has_more_ops() then
 *   cmd_next_chunk() prepares the next ones), it takes their results into
 *   the cmd before they are freed; reply() answers from what was folded.
 * - Commands of several steps (RENAME: read, write, delete; KEYS: one scan
 *   step after another) have a fold() too and a next(): fold() asks for
 *   another step (cmd_want_more), next() prepares its ops (0, or an error
 *   with nothing held). Until the last step is out the connection runs no
 *   later command with keys (conn.c), so each step sees the ones before.
 * - Every reply is the one Redis 7 gives, byte for byte where Redis's is
 *   deterministic, except where docs/ARCHITECTURE.md ("Redis
 *   compatibility") says otherwise.
 * - Keys of a command are argv[first_key], then every step-th arg up to
 *   last_key (negative: counted from the end), as in Redis's COMMAND INFO.
 */
#ifndef DV_SERVER_CMD_H
#define DV_SERVER_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "resp/resp.h"
#include "server/server_int.h"

enum cmd_flags {
	CMDF_NOAUTH = 1u << 0, /* allowed before AUTH */
	CMDF_WRITE = 1u << 1,  /* writes its keys */
	CMDF_READ = 1u << 2,   /* reads its keys */
	CMDF_RMW = 1u << 3,    /* reads then writes (compare-and-set) */
	CMDF_LOADING = 1u << 4,
	CMDF_FROM_WRITE = 1u << 5, /* GET: may be answered from its client's write in flight */
	CMDF_BARRIER = 1u << 6,    /* runs once its client's earlier commands are answered (HELLO:
				    * their replies are rendered in the protocol they ran under) */
};

struct cmd_def {
	const char *name;
	int arity;
	uint32_t flags;
	int first_key, last_key, step;
	void (*run)(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb);
	void (*reply)(struct conn *c, struct cmd *cmd, struct resp_buf *rb);
	const char *summary;
	void (*fold)(struct conn *c, struct cmd *cmd); /* multi-key commands, else NULL */
	int (*next)(struct conn *c, struct cmd *cmd, struct resp_buf *rb); /* steps, else NULL */
};

const struct cmd_def *cmd_lookup(const struct resp_arg *name);
/* The pseudo-command that unknown names and protocol errors count under. */
const struct cmd_def *cmd_unknown(void);
unsigned cmd_count(void);
const struct cmd_def *cmd_by_index(unsigned i);
unsigned cmd_index(const struct cmd_def *d);
/* Give cmd n eops (inline when n == 1). 0 or -ENOMEM. */
int cmd_prepare_ops(struct cmd *cmd, uint32_t n);
/* Free the eops of cmd (their copies, and the array). */
void cmd_release_ops(struct cmd *cmd);
/* Chunks: whether ops remain to prepare; prepare the next ones (0, or
 * -ENOMEM with the error in rb and nothing held); free the kept keys. */
bool cmd_has_more_ops(const struct cmd *cmd);
int cmd_next_chunk(struct cmd *cmd, struct resp_buf *rb);
void cmd_keys_free(struct cmd *cmd);
/* Bytes the command may hold while it runs: its ops and their copies, and
 * the most its reads may copy (what conn.c reserves for it). */
uint64_t cmd_cost(const struct cmd *cmd);
/* Text of an engine error for a client, with its Redis error code. */
const char *cmd_store_error(int err);

#endif
