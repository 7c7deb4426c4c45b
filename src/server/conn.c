/* conn.c - one client connection: parse, run, keep replies in order.
 *
 * A connection's life:
 *
 *   accepted --recv--> parse --> run --+--> answered at once (reply to out,
 *      |                               |    or held in a cmd behind others)
 *      |                               +--> cmd in FIFO --eops--> engine
 *      |                                      ... eops back --> reply in order
 *      +-- EOF / QUIT / protocol error --> closing: no more requests; the
 *          replies owed are sent, then FIN, and input is read and dropped
 *          until the peer's EOF (at most NET_LINGER_MS): closing with
 *          unread input would send RST and the client could lose the
 *          error reply
 *      +-- send error / timeout --> dead: nothing more is sent; freed once
 *          no SQE and no eop refers to it
 *
 * Invariants:
 * 1. Replies leave in the order requests arrived (FIFO of cmds; a command
 *    answered at once writes straight to out only when the FIFO is empty).
 * 2. Read-your-writes on one connection: a command that reads a key waits
 *    until this connection's earlier writes of keys in the same hash bucket
 *    are back; a write waits behind this connection's read-modify-writes of
 *    its bucket. Writes behind writes need no wait: the store orders
 *    mutations of one key.
 * 3. Memory per connection is bounded: input by max-request-bytes, replies
 *    owed by max-pipeline commands and max-reply-bytes each; a client whose
 *    unsent output passes NET_OUT_PAUSE_BYTES is not read until it drains.
 * 4. A conn is freed only when refs == 0 and no cmd is pending.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/hash.h"

#include "base/assert.h"
#include "server/cmd.h"
#include "server/log.h"
#include "server/server_int.h"

uint32_t conn_key_bucket(const void *key, uint32_t len)
{
	return (uint32_t)(dv_key_hash64(key, len) % NET_KEY_BUCKETS);
}

struct cmd *cmd_alloc(struct worker *w)
{
	struct cmd *cmd = w->free_cmds;
	if (cmd) {
		w->free_cmds = cmd->next;
		w->free_count--;
	} else {
		cmd = malloc(sizeof(*cmd));
		if (!cmd)
			return NULL;
		resp_buf_init(&cmd->reply);
	}
	struct resp_buf keep = cmd->reply;
	memset(cmd, 0, offsetof(struct cmd, stats));
	cmd->reply = keep;
	cmd->reply.len = 0;
	return cmd;
}

void cmd_free(struct worker *w, struct cmd *cmd)
{
	DV_ASSERT(cmd->ops == NULL);
	if (w->free_count >= NET_CMD_FREE_MAX || cmd->reply.cap > 4096) {
		resp_buf_free(&cmd->reply);
		if (w->free_count >= NET_CMD_FREE_MAX) {
			free(cmd);
			return;
		}
		resp_buf_init(&cmd->reply);
	}
	cmd->next = w->free_cmds;
	w->free_cmds = cmd;
	w->free_count++;
}

struct conn *conn_new(struct worker *w, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->in = malloc(NET_IN_BYTES_MIN);
	if (!c->in) {
		free(c);
		return NULL;
	}
	c->in_cap = NET_IN_BYTES_MIN;
	c->w = w;
	c->fd = fd;
	c->proto = 2;
	c->authed = w->cfg->requirepass[0] == '\0';
	c->created_ms = c->active_ms = w->now_ms;
	c->last_cmd = "NULL";
	c->id = atomic_fetch_add_explicit(&w->srv->next_conn_id, 1, memory_order_relaxed) + 1;
	resp_buf_init(&c->out);
	resp_buf_init(&c->sending);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	return c;
}

bool conn_reapable(const struct conn *c) { return c->refs == 0 && c->pending == 0 && (c->dead || c->closing); }

void conn_free(struct conn *c)
{
	struct worker *w = c->w;
	DV_ASSERT(conn_reapable(c) && c->head == NULL && !c->dirty);
	if (c->fd >= 0)
		close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub_explicit(&w->srv->clients, 1, memory_order_relaxed);
	metrics_add(&w->m->conns_closed, 1);
	resp_buf_free(&c->out);
	resp_buf_free(&c->sending);
	free(c->in);
	free(c);
}

/* Stop reading; the replies owed still go out (closing), or nothing more
 * does (dead). The socket is shut down so an armed recv/send returns. */
static void conn_stop(struct conn *c, bool dead, const char *why)
{
	if (!c->closing && !c->dead)
		log_debug("client closed", "id=%llu addr=%s reason=\"%s\"", (unsigned long long)c->id, c->addr, why);
	c->closing = true;
	c->eof = true;
	c->w->maybe_reap = true;
	if (dead && !c->dead) {
		c->dead = true;
		shutdown(c->fd, SHUT_RDWR);
	}
}

void conn_close(struct conn *c, const char *why) { conn_stop(c, true, why); }

/* ---- replies in order ---- */

static bool reply_too_big(const struct conn *c) { return c->out.len > c->w->cfg->max_reply_bytes; }

static void cmd_finish_stats(struct conn *c, struct cmd *cmd, bool error)
{
	uint64_t ns = c->w->now_ns > cmd->start_ns ? c->w->now_ns - cmd->start_ns : 0;
	metrics_command(c->w->m, cmd_index(cmd->def), ns, error);
}

static void track_keys(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, int dir);

/* Write the replies of the complete commands at the head of the FIFO. */
static void conn_deliver(struct conn *c)
{
	struct worker *w = c->w;
	while (c->head && c->head->complete) {
		struct cmd *cmd = c->head;
		c->head = cmd->next;
		if (!c->head)
			c->tail = NULL;
		c->pending--;
		size_t before = c->out.len;
		if (!c->dead) {
			if (cmd->has_reply) {
				if (resp_add_raw(&c->out, cmd->reply.data, cmd->reply.len))
					conn_close(c, "out of memory for a reply");
			} else {
				cmd->def->reply(c, cmd, &c->out);
			}
		}
		bool error = c->out.len > before && c->out.data[before] == '-';
		cmd_finish_stats(c, cmd, error);
		cmd_release_ops(cmd);
		cmd_free(w, cmd);
	}
	if (reply_too_big(c)) {
		log_warn("client reply over max-reply-bytes", "id=%llu addr=%s bytes=%zu", (unsigned long long)c->id,
			 c->addr, c->out.len);
		conn_close(c, "reply over max-reply-bytes");
	}
	if (c->out.len)
		worker_mark_dirty(w, c);
}

void conn_on_eop_done(struct eop *e)
{
	struct cmd *cmd = e->owner;
	struct conn *c = cmd->conn;
	DV_ASSERT(cmd->ops_done < cmd->nops);
	if (++cmd->ops_done < cmd->nops)
		return;
	cmd->complete = true;
	DV_ASSERT(c->ops_pending >= cmd->nops);
	c->ops_pending -= cmd->nops;
	if (cmd->def->flags & (CMDF_WRITE | CMDF_RMW))
		track_keys(c, cmd, NULL, 0, -1);
	conn_deliver(c);
	conn_on_input(c); /* a stalled request may go on, or a closing client close */
}

/* ---- read-your-writes ---- */

static uint32_t key_positions(const struct cmd_def *d, uint32_t argc, uint32_t *last, uint32_t *step)
{
	if (d->first_key <= 0)
		return 0;
	int l = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
	*last = l < 0 ? 0 : (uint32_t)l;
	*step = d->step > 0 ? (uint32_t)d->step : 1;
	return (uint32_t)d->first_key;
}

/* Would this command see or overtake an earlier one of this connection? */
static bool must_wait(struct conn *c, const struct cmd_def *d, struct resp_arg *argv, uint32_t argc)
{
	if (c->pending == 0)
		return false;
	uint32_t last = 0, step = 1;
	uint32_t first = key_positions(d, argc, &last, &step);
	if (!first)
		return false;
	bool reads = d->flags & (CMDF_READ | CMDF_RMW);
	for (uint32_t i = first; i <= last && i < argc; i += step) {
		uint32_t b = conn_key_bucket(argv[i].ptr, argv[i].len);
		if (c->rmw_pending[b] || (reads && c->wr_pending[b]))
			return true;
	}
	return false;
}

/* Count (dir 1) or uncount (dir -1) a write command's keys. Uncounting
 * uses the keys kept in its eops (the input buffer has moved on). */
static void track_keys(struct conn *c, struct cmd *cmd, struct resp_arg *argv, uint32_t argc, int dir)
{
	uint32_t *tab = cmd->def->flags & CMDF_RMW ? c->rmw_pending : c->wr_pending;
	if (dir > 0) {
		uint32_t last = 0, step = 1;
		uint32_t first = key_positions(cmd->def, argc, &last, &step);
		for (uint32_t i = first; first && i <= last && i < argc; i += step) {
			uint32_t b = conn_key_bucket(argv[i].ptr, argv[i].len);
			DV_ASSERT(tab[b] < UINT32_MAX); /* at most ops_pending: see NET_CONN_OPS_MAX */
			tab[b]++;
		}
		return;
	}
	for (uint32_t i = 0; i < cmd->nops; i++) {
		struct eop *e = &cmd->ops[i];
		uint32_t b = conn_key_bucket(e->sop.key, e->sop.key_len);
		DV_ASSERT(tab[b] > 0);
		tab[b]--;
	}
}

/* ---- running commands ---- */

static void cmd_enqueue(struct conn *c, struct cmd *cmd)
{
	cmd->next = NULL;
	if (c->tail)
		c->tail->next = cmd;
	else
		c->head = cmd;
	c->tail = cmd;
	c->pending++;
}

static void reply_unknown(struct resp_buf *rb, struct resp_arg *argv, uint32_t argc)
{
	char args[256];
	size_t n = 0;
	args[0] = '\0';
	for (uint32_t i = 1; i < argc && n < 200; i++) {
		int k = snprintf(args + n, sizeof(args) - n, "'%.*s' ", (int)(argv[i].len < 40 ? argv[i].len : 40),
				 argv[i].ptr);
		if (k > 0)
			n += (size_t)k < sizeof(args) - n ? (size_t)k : sizeof(args) - n - 1;
	}
	resp_add_errorf(rb, "ERR unknown command '%.*s', with args beginning with: %s",
			(int)(argv[0].len < 64 ? argv[0].len : 64), argv[0].ptr, args);
}

/* Checks before a command runs; false when it was answered with an error. */
static bool cmd_admissible(struct conn *c, const struct cmd_def *d, struct resp_arg *argv, uint32_t argc,
			   struct resp_buf *rb)
{
	if (!d) {
		metrics_add(&c->w->m->unknown_commands, 1);
		reply_unknown(rb, argv, argc);
		return false;
	}
	if ((d->arity > 0 && argc != (uint32_t)d->arity) || (d->arity < 0 && argc < (uint32_t)-d->arity)) {
		resp_add_errorf(rb, "ERR wrong number of arguments for '%s' command", d->name);
		return false;
	}
	if (!c->authed && !(d->flags & CMDF_NOAUTH)) {
		resp_add_error(rb, "NOAUTH Authentication required.");
		return false;
	}
	return true;
}

/* Run one parsed request. Returns false when it must wait (nothing done). */
static bool conn_execute(struct conn *c, struct resp_arg *argv, uint32_t argc)
{
	struct worker *w = c->w;
	const struct cmd_def *d = cmd_lookup(&argv[0]);
	if (d && c->authed && must_wait(c, d, argv, argc))
		return false;
	struct cmd *cmd = cmd_alloc(w);
	if (!cmd) {
		conn_close(c, "out of memory for a command");
		return true;
	}
	cmd->conn = c;
	cmd->def = d ? d : cmd_unknown();
	cmd->start_ns = w->now_ns;
	struct resp_buf *rb = c->head ? &cmd->reply : &c->out;
	size_t before = rb->len;
	c->last_cmd = cmd->def->name;
	if (cmd_admissible(c, d, argv, argc, rb))
		d->run(c, cmd, argv, argc, rb);
	if (cmd->nops == 0) {
		if (rb == &c->out) {
			cmd_finish_stats(c, cmd, rb->len > before && rb->data[before] == '-');
			cmd_free(w, cmd);
			if (c->out.len)
				worker_mark_dirty(w, c);
		} else {
			cmd->complete = true;
			cmd->has_reply = true;
			cmd_enqueue(c, cmd);
		}
		return true;
	}
	DV_ASSERT(rb->len == before); /* a command with eops answers in reply() */
	if (d->flags & (CMDF_WRITE | CMDF_RMW))
		track_keys(c, cmd, argv, argc, 1);
	cmd_enqueue(c, cmd);
	c->ops_pending += cmd->nops;
	for (uint32_t i = 0; i < cmd->nops; i++) {
		cmd->ops[i].owner = cmd;
		cmd->ops[i].sink = &w->sink;
		cmd->ops[i].dyn.keyspace = c->db; /* cluster mode: SELECT's keyspace */
		worker_submit_eop(w, &cmd->ops[i]);
	}
	return true;
}

static void conn_limits(const struct conn *c, struct resp_limits *lim)
{
	const struct server_config *cfg = c->w->cfg;
	if (c->authed) {
		*lim = (struct resp_limits){.args_max = NET_ARGS_MAX, .arg_bytes_max = (uint32_t)cfg->max_request_bytes,
					    .inline_bytes_max = NET_INLINE_BYTES_MAX,
					    .request_bytes_max = cfg->max_request_bytes};
	} else {
		*lim = (struct resp_limits){.args_max = NET_PREAUTH_ARGS_MAX,
					    .arg_bytes_max = NET_PREAUTH_ARG_BYTES_MAX,
					    .inline_bytes_max = NET_PREAUTH_REQUEST_BYTES_MAX,
					    .request_bytes_max = NET_PREAUTH_REQUEST_BYTES_MAX};
	}
}

/* Admission: a client with max-pipeline commands, NET_CONN_OPS_MAX store
 * operations (one command may pass it by at most NET_ARGS_MAX) or 1 MiB of
 * unsent replies in flight is not read until they drain. */
static bool conn_may_run(const struct conn *c)
{
	return !c->dead && c->pending < c->w->cfg->max_pipeline && c->ops_pending < NET_CONN_OPS_MAX &&
	       c->out.len + c->sending.len < NET_OUT_PAUSE_BYTES;
}

static void protocol_error(struct conn *c, const char *msg)
{
	metrics_add(&c->w->m->protocol_errors, 1);
	struct resp_buf *rb = &c->out;
	struct cmd *cmd = NULL;
	if (c->head) {
		cmd = cmd_alloc(c->w);
		if (!cmd) {
			conn_close(c, "out of memory");
			return;
		}
		cmd->conn = c;
		cmd->def = cmd_unknown();
		rb = &cmd->reply;
	}
	resp_add_error(rb, msg);
	if (cmd) {
		cmd->complete = cmd->has_reply = true;
		cmd_enqueue(c, cmd);
	} else {
		worker_mark_dirty(c->w, c);
	}
	log_debug("protocol error", "id=%llu addr=%s error=\"%s\"", (unsigned long long)c->id, c->addr, msg);
	conn_stop(c, false, "protocol error");
}

/* Room to receive at least `need` bytes in total; false when over limits. */
static bool conn_reserve_input(struct conn *c, size_t need)
{
	size_t limit = c->w->cfg->max_request_bytes + NET_INLINE_BYTES_MAX;
	if (need < c->in_len + NET_IN_BYTES_MIN)
		need = c->in_len + NET_IN_BYTES_MIN;
	if (need <= c->in_cap)
		return true;
	if (need > limit)
		need = limit;
	size_t cap = c->in_cap;
	while (cap < need)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	if (cap <= c->in_cap)
		return c->in_cap > c->in_len;
	char *p = realloc(c->in, cap);
	if (!p)
		return false;
	c->in = p;
	c->in_cap = cap;
	return true;
}

static void conn_arm_input(struct conn *c);

void conn_on_input(struct conn *c)
{
	struct worker *w = c->w;
	size_t pos = c->in_start;
	bool partial = false;
	while (pos < c->in_len && conn_may_run(c) && !c->closing) {
		if (c->in_need > c->in_len)
			break; /* the parser said it needs more */
		DV_ASSERT(pos <= c->in_len);
		struct resp_limits lim;
		conn_limits(c, &lim);
		struct resp_request req = {.argv = w->argv, .argv_cap = NET_ARGS_MAX};
		int r = resp_parse(c->in + pos, c->in_len - pos, &lim, &req);
		if (r == RESP_AGAIN) {
			c->in_need = pos + req.need;
			partial = true;
			break;
		}
		if (r == RESP_ERR) {
			protocol_error(c, req.error);
			pos = c->in_len;
			break;
		}
		if (req.argc > 0 && !conn_execute(c, req.argv, req.argc))
			break; /* waits for an earlier write of this connection */
		pos += req.consumed;
		c->in_need = 0;
		c->active_ms = w->now_ms;
	}
	c->in_start = pos;
	/* Executed requests copied what they keep: drop their bytes, but never
	 * while a receive is armed (the kernel writes at the offset it was
	 * given). */
	if (c->in_start && !c->recv_armed) {
		memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
		c->in_len -= c->in_start;
		c->in_need -= c->in_start < c->in_need ? c->in_start : c->in_need;
		c->in_start = 0;
	}
	if (!partial)
		c->partial_since_ms = 0;
	else if (!c->partial_since_ms)
		c->partial_since_ms = w->now_ms;
	if (c->in_len == 0 && c->in_cap > 64 * NET_IN_BYTES_MIN && !c->recv_armed) {
		char *p = realloc(c->in, NET_IN_BYTES_MIN);
		if (p) {
			c->in = p;
			c->in_cap = NET_IN_BYTES_MIN;
		}
	}
	if (c->closing && !c->dead && c->pending == 0 && c->out.len == 0 && c->sending.len == 0 && !c->send_armed) {
		if (c->peer_eof) {
			conn_close(c, "done");
		} else if (!c->lingering) {
			c->lingering = true;
			c->linger_deadline_ms = w->now_ms + NET_LINGER_MS;
			shutdown(c->fd, SHUT_WR);
		}
	}
	conn_arm_input(c);
}

/* Receive again when the client may be read: more requests, or input to
 * drop while closing. */
static void conn_arm_input(struct conn *c)
{
	if (c->dead || c->peer_eof || c->recv_armed)
		return;
	if (c->closing) {
		c->in_start = c->in_len = 0; /* nothing more is parsed */
		worker_arm_recv(c->w, c);
		return;
	}
	if (!conn_may_run(c))
		return;
	if (!conn_reserve_input(c, c->in_need)) {
		conn_close(c, "out of memory for input");
		return;
	}
	worker_arm_recv(c->w, c);
}

void conn_tick(struct conn *c)
{
	const struct server_config *cfg = c->w->cfg;
	uint64_t now = c->w->now_ms;
	if (c->dead)
		return;
	if (c->lingering && now > c->linger_deadline_ms) {
		conn_close(c, "linger over");
		return;
	}
	if (c->partial_since_ms && now - c->partial_since_ms > (uint64_t)cfg->request_timeout_s * 1000u) {
		log_info("client request timed out", "id=%llu addr=%s bytes=%zu", (unsigned long long)c->id, c->addr,
			 c->in_len);
		conn_close(c, "request timeout");
	} else if (cfg->timeout_s && c->pending == 0 && now - c->active_ms > (uint64_t)cfg->timeout_s * 1000u) {
		conn_close(c, "idle timeout");
	}
}
