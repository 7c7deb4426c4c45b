/* cmd_int.h - private to cmd*.c: the connection and server commands that
 * cmd.c's table names, and helpers shared by the command files. */
#ifndef DV_SERVER_CMD_INT_H
#define DV_SERVER_CMD_INT_H

#include "server/cmd.h"

#define CMD_RUN_ARGS struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb

void cmd_run_ping(CMD_RUN_ARGS);
void cmd_run_echo(CMD_RUN_ARGS);
void cmd_run_auth(CMD_RUN_ARGS);
void cmd_run_hello(CMD_RUN_ARGS);
void cmd_run_select(CMD_RUN_ARGS);
void cmd_run_quit(CMD_RUN_ARGS);
void cmd_run_client(CMD_RUN_ARGS);
void cmd_run_command(CMD_RUN_ARGS);
void cmd_run_config(CMD_RUN_ARGS);
void cmd_run_time(CMD_RUN_ARGS);
/* DBSIZE and INFO: one engine round trip for the store's stats. */
void cmd_run_stats(CMD_RUN_ARGS);
void cmd_reply_dbsize(struct conn *c, struct cmd *cmd, struct resp_buf *rb);
void cmd_reply_info(struct conn *c, struct cmd *cmd, struct resp_buf *rb);

/* cmd_dyn.c: the Dynamo API and the cluster-mode commands. */
void cmd_run_dyn_get(CMD_RUN_ARGS);
void cmd_run_dyn_put(CMD_RUN_ARGS);
void cmd_run_dyn_del(CMD_RUN_ARGS);
void cmd_run_dyn_status(CMD_RUN_ARGS);
void cmd_run_dyn_ring(CMD_RUN_ARGS);
void cmd_run_select_db(CMD_RUN_ARGS);
void cmd_run_no_cluster(CMD_RUN_ARGS);
void cmd_reply_dyn_get(struct conn *c, struct cmd *cmd, struct resp_buf *rb);
void cmd_reply_dyn_ok(struct conn *c, struct cmd *cmd, struct resp_buf *rb);
void cmd_reply_dyn_view(struct conn *c, struct cmd *cmd, struct resp_buf *rb);

bool cmd_check_key(const struct resp_arg *k, struct resp_buf *rb);
bool cmd_check_value(const struct resp_arg *v, struct resp_buf *rb);
bool cmd_expire_at(int64_t t, bool ms, bool absolute, uint64_t now_ms, uint64_t *out);

#endif
