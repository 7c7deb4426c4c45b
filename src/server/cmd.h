/* cmd.h - the command table: names, arity, key positions, and for each
 * command a run() that answers at once or prepares store operations, and
 * a reply() that writes the answer once they are back.
 *
 * Contract:
 * - run(c, cmd, argv, argc, rb) is called on the connection's thread with
 *   arity already checked. It either appends the whole reply to rb, or
 *   calls cmd_prepare_ops(cmd, n) and fills the n eops (the connection
 *   submits them and calls reply() when all are back, in arrival order
 *   with the connection's other replies).
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
};

struct cmd_def {
	const char *name;
	int arity;
	uint32_t flags;
	int first_key, last_key, step;
	void (*run)(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb);
	void (*reply)(struct conn *c, struct cmd *cmd, struct resp_buf *rb);
	const char *summary;
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
/* Text of an engine error for a client, with its Redis error code. */
const char *cmd_store_error(int err);

#endif
