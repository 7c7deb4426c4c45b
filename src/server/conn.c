/* conn.c - one client connection: parse, run, keep replies in order.
 *
 * A connection's life:
 *
 *   accepted --recv--> parse --> run --+--> answered at once (reply to out,
 *      |                               |    or held in a cmd behind others)
 *      |                               +--> cmd in FIFO --eops--> engine
 *      |                                      ... eops back --> reply in order
 *      +-- EOF (once every request received ran) / QUIT / protocol error
 *          --> closing: no more requests; the
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
 * 2. A command never sees the effect of a later command of its client,
 *    and sees every earlier one (read-your-writes): ops reach the engine in
 *    arrival order, and a command waits where the store alone would not
 *    keep this ("read-your-writes and order" below).
 * 3. Memory per connection is bounded: input by max-request-bytes (4 KiB
 *    before AUTH), store ops in flight by NET_CONN_OPS_MAX (a command by
 *    NET_CMD_OPS_CHUNK at once), and what its commands hold (copies, what
 *    their reads may gather, replies not yet sent) by max-reply-bytes
 *    (conn_admit); a client over a bound is not read until it drains, and
 *    one with nothing in flight may always run one command.
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
#include "base/error.h"
#include "server/cmd.h"
#include "server/keydeps.h"
#include "server/log.h"
#include "server/server_int.h"

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
	DV_ASSERT(cmd->ops == NULL && cmd->keys == NULL);
	free(cmd->stash);
	cmd->stash = NULL;
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
	keydeps_init(&c->deps);
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
	keydeps_free(&c->deps);
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

/* A safety net: admission (conn_admit) keeps a client's unsent replies
 * within max-reply-bytes plus what a client with nothing in flight may
 * have before it is paused. */
static bool reply_too_big(const struct conn *c)
{
	return c->out.len > c->w->cfg->max_reply_bytes + NET_OUT_PAUSE_BYTES;
}

static void cmd_finish_stats(struct conn *c, struct cmd *cmd, bool error)
{
	uint64_t ns = c->w->now_ns > cmd->start_ns ? c->w->now_ns - cmd->start_ns : 0;
	metrics_command(c->w->m, cmd_index(cmd->def), ns, error);
}

/* Append a held reply to out: moved, not copied, when out is empty. */
static int out_take(struct conn *c, struct resp_buf *reply)
{
	if (c->out.len == 0) {
		struct resp_buf t = c->out;
		c->out = *reply;
		*reply = t;
		return 0;
	}
	return resp_add_raw(&c->out, reply->data, reply->len);
}

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
		if (!c->dead && cmd->silent) {
			/* CLIENT REPLY OFF/SKIP: nothing goes out */
		} else if (!c->dead) {
			if (cmd->has_reply) {
				if (out_take(c, &cmd->reply))
					conn_close(c, "out of memory for a reply");
			} else {
				cmd->def->reply(c, cmd, &c->out);
			}
		}
		bool error = c->out.len > before && c->out.data[before] == '-';
		cmd_finish_stats(c, cmd, error);
		DV_ASSERT(c->held_bytes >= cmd->cost);
		c->held_bytes -= cmd->cost;
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

/* ---- read-your-writes and order ----
 * Every op of a connection is handed to the engine in the order its
 * commands arrived, and the engine hands them to the store in that order
 * (but for writes of a key waiting behind a read-modify-write of it,
 * engine.h); the store then keeps what store.h promises: a GET sees no
 * write submitted after it, writes of one key apply in order. What the
 * connection adds, per key (keydeps.h: by its 64-bit hash, so different
 * keys never wait for each other):
 *   - a command that reads a key (GET, RMW) waits while this connection
 *     has a write of the key in flight (the store need not show a write
 *     that is not done), except a GET whose key's latest write in flight
 *     is a plain PUT or DEL the engine had not finished (below): it does not
 *     wait (it is parked on that write), and later commands go on; once
 *     the write is back the GET is answered from it (its value, or nil),
 *     and its reply leaves after the write's. If the write failed, nothing
 *     tells what the key holds: the GET goes to the store then, which is
 *     in order because
 *   - a command that writes a key waits while a GET of the key is parked
 *     (so no later write of the key is in flight when a parked GET goes to
 *     the store, and every earlier one is back: writes of a key complete
 *     in order);
 *   - in cluster mode a command that writes a key also waits while a GET
 *     of the key is in flight: no store orders them there, and a read that
 *     asks one more replica late (a silent peer, coord.c's speculative
 *     timer) would find the later write on it (GET k; SET k v pipelined
 *     answered v: tests/cluster/read_order.sh, CI's commands.sh once);
 *   - any command with keys waits behind this connection's read-modify-
 *     writes of its keys (their write step comes later);
 *   - DBSIZE and INFO (a stats op) wait for all its writes in flight;
 *   - a command of more than one chunk of keys runs only alone, and every
 *     later command with keys waits until its last chunk is submitted (a
 *     command of steps, RENAME, COPY, KEYS: until its last step is back);
 *   - a FLUSH waits for its read-modify-writes in flight; in cluster mode
 *     (no store orders ops around it: the cnodes apply it one by one) for
 *     every op in flight, and every later command waits until it is back;
 *   - HELLO (CMDF_BARRIER) waits until every earlier command is answered.
 * A GET is not parked on a write the engine had finished when the GET's
 * bytes came (finished_before_recv): this thread may not have taken it back
 * yet (it parses receives first), and a later write of the key by another
 * client may be acknowledged already (the engine finishes writes of a key
 * in order), so the GET waits for the write to be taken back and reads. */

static bool conn_cluster_mode(const struct conn *c) { return cluster_enabled(&c->w->cfg->cluster); }

static uint64_t eop_key_hash(const struct eop *e) { return dv_key_hash64(e->sop.key, e->sop.key_len); }

static bool eop_is_write(const struct eop *e) { return e->kind == EOP_PUT || e->kind == EOP_DEL || e->kind == EOP_RMW; }

/* A GET in flight in cluster mode (see above): counted per key. */
static void conn_track_read(struct conn *c, const struct eop *e, int dir)
{
	if (dir > 0) {
		struct keydep *d = keydeps_get(&c->deps, eop_key_hash(e));
		DV_ASSERT(d->reads < UINT32_MAX); /* at most ops_pending */
		d->reads++;
		return;
	}
	struct keydep *d = keydeps_find(&c->deps, eop_key_hash(e));
	DV_ASSERT(d && d->reads > 0);
	d->reads--;
	keydeps_put(&c->deps, d);
}

/* Does the connection count op e per key (conn_track)? */
static bool conn_tracks(const struct conn *c, const struct eop *e)
{
	return eop_is_write(e) || (e->kind == EOP_GET && conn_cluster_mode(c));
}

/* Count (dir 1, when submitted; room reserved) or uncount (-1, when back)
 * an op. */
static void conn_track(struct conn *c, struct eop *e, int dir)
{
	if (e->kind == EOP_FLUSH) { /* a write of every key: DBSIZE and INFO wait for it */
		DV_ASSERT(dir > 0 || (c->writes_pending > 0 && c->flushes_pending > 0));
		c->writes_pending = (uint32_t)((int64_t)c->writes_pending + dir);
		c->flushes_pending = (uint32_t)((int64_t)c->flushes_pending + dir);
		return;
	}
	if (e->kind == EOP_GET && conn_cluster_mode(c)) {
		conn_track_read(c, e, dir);
		return;
	}
	if (!eop_is_write(e))
		return;
	if (dir > 0) {
		struct keydep *d = keydeps_get(&c->deps, eop_key_hash(e));
		uint32_t *n = e->kind == EOP_RMW ? &d->rmws : &d->writes;
		DV_ASSERT(*n < UINT32_MAX); /* at most ops_pending: see NET_CONN_OPS_MAX */
		(*n)++;
		c->writes_pending++;
		c->rmws_pending += e->kind == EOP_RMW;
		if (e->kind != EOP_RMW)
			d->last = e;
		return;
	}
	struct keydep *d = keydeps_find(&c->deps, eop_key_hash(e));
	DV_ASSERT(d && c->writes_pending > 0);
	uint32_t *n = e->kind == EOP_RMW ? &d->rmws : &d->writes;
	DV_ASSERT(*n > 0);
	(*n)--;
	c->writes_pending--;
	DV_ASSERT(e->kind != EOP_RMW || c->rmws_pending > 0);
	c->rmws_pending -= e->kind == EOP_RMW;
	if (d->last == e)
		d->last = NULL;
	keydeps_put(&c->deps, d);
}

/* Room to track cmd's ops (before conn_submit_ops). */
static int conn_reserve_track(struct conn *c, const struct cmd *cmd)
{
	uint32_t tracked = 0;
	for (uint32_t i = 0; i < cmd->nops; i++)
		tracked += conn_tracks(c, &cmd->ops[i]);
	return keydeps_reserve(&c->deps, tracked);
}

/* Did the engine finish w in a hand-back round this thread had seen when
 * it received the connection's latest bytes (c->recv_round; the request
 * came in them or before)? Then a later write of its key by another client
 * may have been acknowledged before the request arrived. (A relaxed load:
 * a value not yet published is a round after recv_round.) */
static bool finished_before_recv(const struct conn *c, const struct eop *w)
{
	uint64_t r = atomic_load_explicit(&w->finished_round, memory_order_relaxed);
	return r != 0 && r <= c->recv_round;
}

static bool same_key(const struct eop *a, const struct eop *b)
{
	return a->sop.key_len == b->sop.key_len && memcmp(a->sop.key, b->sop.key, a->sop.key_len) == 0;
}

/* A write whose outcome tells what its key holds after it. */
static bool write_answers_reads(const struct eop *w)
{
	return (w->kind == EOP_PUT || w->kind == EOP_DEL) && w->sop.cond == STORE_ALWAYS;
}

/* Before running a command: false when it must wait whatever its ops are
 * (conn_plan has the last word): it is not run and undone for nothing. */
static bool conn_may_plan(const struct conn *c, const struct cmd_def *d, const struct resp_arg *argv, uint32_t argc)
{
	if (c->pending == 0)
		return true;
	if (d->flags & CMDF_BARRIER)
		return false;
	if (c->flushes_pending && conn_cluster_mode(c))
		return false; /* conn_plan's rule, before the command runs */
	if (d->first_key <= 0)
		return true;
	if (c->chunking)
		return false;
	if (c->deps.count == 0)
		return true;
	int l = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
	uint32_t step = d->step > 0 ? (uint32_t)d->step : 1;
	bool reads = (d->flags & (CMDF_READ | CMDF_RMW)) && !(d->flags & CMDF_FROM_WRITE);
	bool writes = d->flags & (CMDF_WRITE | CMDF_RMW);
	for (uint32_t i = (uint32_t)d->first_key; (int)i <= l && i < argc; i += step) {
		const struct keydep *k = keydeps_find(&c->deps, dv_key_hash64(argv[i].ptr, argv[i].len));
		if (k && (k->rmws || (reads && k->writes) || (writes && (k->parked || k->reads))))
			return false;
	}
	return true;
}

/* May cmd (run, its ops prepared) be submitted now? false: it must wait.
 * *from: the write it is answered from instead (see above), or NULL. */
static bool conn_plan(struct conn *c, const struct cmd *cmd, struct eop **from)
{
	*from = NULL;
	if (c->pending == 0)
		return true;
	if (c->chunking || cmd->keys)
		return false;
	if (c->flushes_pending && conn_cluster_mode(c))
		return false; /* no store orders ops around a cluster's FLUSH: nothing overtakes it */
	for (uint32_t i = 0; i < cmd->nops; i++) {
		const struct eop *e = &cmd->ops[i];
		if (e->kind == EOP_STATS || e->kind == EOP_SCAN) { /* DBSIZE, INFO, SCAN: see every earlier write */
			if (c->writes_pending)
				return false;
			continue;
		}
		if (e->kind == EOP_FLUSH) {
			/* The store orders it after every earlier op, before every
			 * later one; a parked GET that goes to the store (its write
			 * failed) must still read before it; and an RMW's write is
			 * the engine's later op (INCR n; FLUSHDB pipelined kept n). */
			if (keydeps_any_parked(&c->deps) || c->rmws_pending)
				return false;
			/* On a cluster it overtakes nothing either: every earlier
			 * op is back (an op the cnode takes after the flush point
			 * outlives the flush; one that straddles it is refused
			 * across the epoch). */
			if (c->ops_pending && conn_cluster_mode(c))
				return false;
			continue;
		}
		const struct keydep *k = keydeps_find(&c->deps, eop_key_hash(e));
		if (!k)
			continue;
		if (k->rmws || (eop_is_write(e) && (k->parked || k->reads)))
			return false;
		if ((e->kind == EOP_GET || e->kind == EOP_RMW) && k->writes) {
			struct eop *w = k->last;
			if (cmd->nops == 1 && e->kind == EOP_GET && (cmd->def->flags & CMDF_FROM_WRITE) && w &&
			    write_answers_reads(w) && same_key(w, e) && w->dyn.keyspace == cmd->db &&
			    !finished_before_recv(c, w)) {
				*from = w;
				continue;
			}
			return false;
		}
	}
	return true;
}

static void conn_submit_ops(struct conn *c, struct cmd *cmd);

/* w is back: answer the GETs parked on it, or, when it failed (what the
 * key holds is not known here), send them to the store. */
static void answer_waiters(struct conn *c, struct eop *w)
{
	struct keydep *k = keydeps_find(&c->deps, eop_key_hash(w));
	bool put = w->kind == EOP_PUT && w->result == 0;
	bool del = w->kind == EOP_DEL && (w->result == 0 || w->result == -DV_ENOTFOUND);
	for (struct eop *r = w->waiters, *next; r; r = next) {
		next = r->wait_next;
		r->wait_next = NULL;
		struct cmd *rc = r->owner;
		DV_ASSERT(rc->nops == 1 && rc->ops_done == 0 && k && k->parked > 0);
		k->parked--;
		if (!put && !del) {
			DV_ASSERT(c->held_bytes >= rc->cost);
			c->held_bytes -= rc->cost;
			rc->cost = cmd_cost(rc);
			c->held_bytes += rc->cost;
			conn_submit_ops(c, rc); /* a GET: nothing to track */
			continue;
		}
		if (put && (w->sop.expire_ms == 0 || w->sop.expire_ms > store_now_ms()))
			r->result = eop_set_found(r, w->sop.value, w->sop.val_len, w->sop.out.seq, w->sop.expire_ms);
		else /* expired at once, or deleted (or absent) */
			r->result = -DV_ENOTFOUND;
		rc->ops_done = 1;
		rc->complete = true;
	}
	w->waiters = NULL;
	if (k)
		keydeps_put(&c->deps, k);
}

/* ---- running commands ---- */

/* Hand cmd's ops to the engine (conn_reserve_track first). */
static void conn_submit_ops(struct conn *c, struct cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->nops; i++) {
		struct eop *e = &cmd->ops[i];
		if (e->kind == EOP_FLUSH) /* a later GET must not be answered from a write before it */
			keydeps_forget_last(&c->deps);
		e->owner = cmd;
		e->sink = &c->w->sink;
		e->dyn.keyspace = cmd->db; /* cluster mode: the keyspace when the command ran */
		conn_track(c, e, 1);
		worker_submit_eop(c->w, e);
	}
	c->ops_pending += cmd->nops;
}

/* All ops of cmd's chunk are back: fold them, then the next chunk or done. */
static void cmd_ops_back(struct conn *c, struct cmd *cmd)
{
	if (cmd->def->fold) {
		cmd->def->fold(c, cmd);
		cmd_release_ops(cmd);
		if (cmd_has_more_ops(cmd) && !cmd->err && !c->dead) { /* dead: nobody reads the reply */
			struct resp_buf ignored; /* the error is cmd->err */
			resp_buf_init(&ignored);
			int err = cmd_next_chunk(cmd, &ignored);
			resp_buf_free(&ignored);
			if (!err && (err = conn_reserve_track(c, cmd)) != 0)
				cmd_release_ops(cmd);
			if (!err) {
				conn_submit_ops(c, cmd);
				/* A command of steps (def->next: RENAME, COPY, KEYS)
				 * decides its next step when this one is back: later
				 * commands wait until it is done (RENAME a b; APPEND a
				 * pipelined appended to a before RENAME deleted it). */
				if (!cmd_has_more_ops(cmd) && c->chunking == cmd && !cmd->def->next)
					c->chunking = NULL;
				return;
			}
			cmd->err = err;
		}
		cmd_keys_free(cmd);
		if (c->chunking == cmd)
			c->chunking = NULL;
	}
	cmd->complete = true;
}

/* A command of one op is back: what it holds until its reply leaves is
 * known now, and is all that stays reserved for it (admission reserved
 * the most its read could copy, DV_VALUE_BYTES_MAX), so that the commands
 * behind one waiting for a durable write do not hold up admission. */
static void cmd_settle_cost(struct conn *c, struct cmd *cmd)
{
	const struct eop *e = &cmd->ops[0];
	uint64_t held = sizeof(*e) + (e->kv != e->inl ? e->kv_len : 0) + e->val_len + e->meta_len;
	if (held >= cmd->cost)
		return;
	DV_ASSERT(c->held_bytes >= cmd->cost);
	c->held_bytes -= cmd->cost - held;
	cmd->cost = held;
}

void conn_on_eop_done(struct eop *e)
{
	struct cmd *cmd = e->owner;
	struct conn *c = cmd->conn;
	DV_ASSERT(cmd->ops_done < cmd->nops && c->ops_pending > 0 && !e->back);
	e->back = true;
	c->ops_pending--;
	conn_track(c, e, -1);
	bool moved = e->waiters != NULL;
	if (e->waiters)
		answer_waiters(c, e);
	if (e->result == -E2BIG && !cmd->err) {
		/* Its reply is too large: drop what its ops gathered as they
		 * come back (the engine fails the rest without reading). */
		cmd->err = -E2BIG;
		for (uint32_t i = 0; i < cmd->nops; i++)
			if (cmd->ops[i].back)
				eop_drop_result(&cmd->ops[i]);
	}
	if (cmd->err == -E2BIG)
		eop_drop_result(e);
	if (++cmd->ops_done == cmd->nops) {
		cmd_ops_back(c, cmd);
		if (cmd->complete && cmd->nops == 1)
			cmd_settle_cost(c, cmd);
		moved = true;
	}
	if (!moved)
		return; /* nothing to deliver, and a waiting request is tried when a command is back */
	conn_deliver(c);
	conn_on_input(c); /* a stalled request may go on, or a closing client close */
}

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

/* commandCheckExistence's text: the args quoted while the list is under
 * 128 bytes, each cut to what is left of the 128. */
static void reply_unknown(struct resp_buf *rb, struct resp_arg *argv, uint32_t argc)
{
	char args[128 + 256];
	size_t n = 0;
	args[0] = '\0';
	for (uint32_t i = 1; i < argc && n < 128; i++) {
		size_t room = 128 - n;
		int k = snprintf(args + n, sizeof(args) - n, "'%.*s' ", (int)(argv[i].len < room ? argv[i].len : room),
				 argv[i].ptr);
		if (k > 0)
			n += strlen(args + n);
	}
	resp_add_errorf(rb, "ERR unknown command '%.*s', with args beginning with: %s",
			(int)(argv[0].len < 128 ? argv[0].len : 128), argv[0].ptr, args);
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

/* May a command holding cost bytes and nops ops start now? Always when
 * the client has nothing in flight (so every command runs in the end);
 * else only within its bounds: NET_CONN_OPS_MAX ops, and max-reply-bytes
 * for what its commands hold (copies, what their reads may gather, replies
 * waiting behind others) and its unsent replies together. */
static bool conn_admit(const struct conn *c, uint64_t cost, uint32_t nops)
{
	if (c->ops_pending == 0 && c->held_bytes == 0)
		return true;
	return c->ops_pending + nops <= NET_CONN_OPS_MAX &&
	       c->held_bytes + c->out.len + c->sending.len + cost <= c->w->cfg->max_reply_bytes;
}

/* A command ran: the SKIP of CLIENT REPLY SKIP applies to the next one
 * only (Redis's CLIENT_REPLY_SKIP_NEXT, then CLIENT_REPLY_SKIP). */
static void conn_reply_mode_step(struct conn *c)
{
	c->reply_skip = false;
	if (c->reply_mode == CONN_REPLY_SKIP) {
		c->reply_mode = CONN_REPLY_ON;
		c->reply_skip = true;
	}
}

/* A request waits for an earlier command of its client (counted once). */
static void conn_note_wait(struct conn *c)
{
	if (!c->waiting)
		metrics_add(&c->w->m->pipeline_waits, 1);
	c->waiting = true;
}

/* Run one parsed request. Returns false when it must wait (nothing done:
 * it runs again from its bytes later). */
static bool conn_execute(struct conn *c, struct resp_arg *argv, uint32_t argc)
{
	struct worker *w = c->w;
	const struct cmd_def *d = cmd_lookup(&argv[0]);
	if (d && c->authed && !conn_may_plan(c, d, argv, argc)) {
		conn_note_wait(c);
		return false;
	}
	struct cmd *cmd = cmd_alloc(w);
	if (!cmd) {
		conn_close(c, "out of memory for a command");
		return true;
	}
	cmd->conn = c;
	cmd->db = c->db;
	cmd->def = d ? d : cmd_unknown();
	cmd->start_ns = w->now_ns;
	struct resp_buf *rb = c->head ? &cmd->reply : &c->out;
	size_t before = rb->len;
	if (cmd_admissible(c, d, argv, argc, rb))
		d->run(c, cmd, argv, argc, rb);
	/* CLIENT REPLY OFF (as it is after the command: ON answers), or SKIP
	 * of the command before: its reply is dropped. */
	cmd->silent = c->reply_mode == CONN_REPLY_OFF || c->reply_skip;
	if (cmd->nops == 0) {
		c->last_cmd = cmd->def->name;
		conn_reply_mode_step(c);
		if (cmd->silent)
			rb->len = before;
		if (rb == &c->out) {
			cmd_finish_stats(c, cmd, rb->len > before && rb->data[before] == '-');
			cmd_free(w, cmd);
			if (c->out.len)
				worker_mark_dirty(w, c);
		} else {
			cmd->complete = true;
			cmd->has_reply = true;
			cmd->cost = cmd->reply.len; /* held until the ones before it are answered */
			c->held_bytes += cmd->cost;
			cmd_enqueue(c, cmd);
		}
		return true;
	}
	DV_ASSERT(rb->len == before); /* a command with eops answers in reply() */
	struct eop *from;
	bool go = conn_plan(c, cmd, &from);
	cmd->cost = from ? sizeof(*from) + from->sop.val_len : cmd_cost(cmd);
	bool admit = go && conn_admit(c, cmd->cost, from ? 0 : cmd->nops);
	int err = admit && !from ? conn_reserve_track(c, cmd) : 0;
	if (!admit || err) {
		cmd_release_ops(cmd); /* run() had no other effect: it runs again later */
		cmd_keys_free(cmd);
		cmd_free(w, cmd);
		if (!go)
			conn_note_wait(c);
		if (!err)
			return false;
		conn_close(c, "out of memory for tracking writes");
		return true;
	}
	c->last_cmd = cmd->def->name;
	conn_reply_mode_step(c);
	c->held_bytes += cmd->cost;
	cmd_enqueue(c, cmd);
	if (from) { /* answered once that write is back (answer_waiters) */
		keydeps_find(&c->deps, eop_key_hash(from))->parked++;
		cmd->ops[0].owner = cmd;
		cmd->ops[0].wait_next = from->waiters;
		from->waiters = &cmd->ops[0];
		return true;
	}
	conn_submit_ops(c, cmd);
	if (cmd_has_more_ops(cmd))
		c->chunking = cmd;
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
					    .request_bytes_max = NET_PREAUTH_REQUEST_BYTES_MAX,
					    .unauthenticated = true};
	}
}

/* Admission: a client with max-pipeline commands, NET_CONN_OPS_MAX store
 * operations, or 1 MiB of unsent replies (16 KiB before AUTH), or whose
 * commands hold max-reply-bytes, is not read until they drain; each
 * command with ops then passes conn_admit(). */
static bool conn_may_run(const struct conn *c)
{
	const struct server_config *cfg = c->w->cfg;
	size_t unsent = c->out.len + c->sending.len;
	uint32_t max_pipeline = atomic_load_explicit(&c->w->srv->rt.max_pipeline, memory_order_relaxed);
	return !c->dead && c->pending < max_pipeline && c->ops_pending < NET_CONN_OPS_MAX &&
	       unsent < (c->authed ? NET_OUT_PAUSE_BYTES : NET_PREAUTH_OUT_PAUSE_BYTES) &&
	       c->held_bytes + unsent < cfg->max_reply_bytes;
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
	if (c->reply_mode != CONN_REPLY_OFF && !c->reply_skip) /* CLIENT REPLY silences errors too */
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

/* Room to receive at least `need` bytes in total: 0, -ENOSPC when the
 * buffer is as large as a client's may be and full (of requests that wait
 * to run: the parser refuses a request that would not fit), -ENOMEM. */
static int conn_reserve_input(struct conn *c, size_t need)
{
	size_t limit = c->authed ? c->w->cfg->max_request_bytes + NET_INLINE_BYTES_MAX : NET_PREAUTH_IN_BYTES_MAX;
	if (need < c->in_len + NET_IN_BYTES_MIN)
		need = c->in_len + NET_IN_BYTES_MIN;
	if (need <= c->in_cap)
		return 0;
	if (need > limit)
		need = limit;
	size_t cap = c->in_cap;
	while (cap < need)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	if (cap <= c->in_cap)
		return c->in_cap > c->in_len ? 0 : -ENOSPC;
	char *p = realloc(c->in, cap);
	if (!p)
		return -ENOMEM;
	c->in = p;
	c->in_cap = cap;
	return 0;
}

static void conn_arm_input(struct conn *c);

_Static_assert(NET_PREAUTH_REQUEST_BYTES_MAX <= NET_INLINE_BYTES_MAX, "an inline request fits the copy");

/* Parse the request at pos. The parser unescapes inline args in place
 * (resp.h), and a request that must wait is parsed again from its bytes
 * later: an inline one is parsed from a copy of its line, so its bytes in
 * c->in stay as they came. The copy holds as much as the parser may read
 * of it (the line and its end, or inline_bytes_max + 2 bytes: then it
 * fails or waits exactly as on c->in). */
static int conn_parse(struct conn *c, size_t pos, const struct resp_limits *lim, struct resp_request *req)
{
	char *p = c->in + pos;
	size_t len = c->in_len - pos;
	DV_ASSERT(len > 0 && lim->inline_bytes_max + 2u <= NET_INLINE_COPY_BYTES);
	if (p[0] == '*')
		return resp_parse(p, len, lim, req); /* multibulk: args are left untouched */
	size_t max = lim->inline_bytes_max + 2u;
	const char *nl = memchr(p, '\n', len < max ? len : max);
	size_t n = nl ? (size_t)(nl - p) + 1 : len < max ? len : max;
	memcpy(c->w->inline_copy, p, n);
	int r = resp_parse(c->w->inline_copy, n, lim, req);
	DV_ASSERT(r != RESP_OK || req->consumed == n);
	return r;
}

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
		int r = conn_parse(c, pos, &lim, &req);
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
		c->waiting = false;
		pos += req.consumed;
		c->in_need = 0;
		c->active_ms = w->now_ms;
	}
	/* The peer sent its last bytes (half-close): every request received
	 * runs and is answered (above, and when what it waits for is back),
	 * and only then is the connection closing. An incomplete request at
	 * the end can never complete: it is dropped. */
	if (c->peer_eof && !c->closing && (pos == c->in_len || partial || c->in_need > c->in_len)) {
		c->closing = c->eof = true;
		w->maybe_reap = true;
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
	int err = conn_reserve_input(c, c->in_need);
	if (err == -ENOSPC)
		return; /* back-pressure: read again once the requests buffered run */
	if (err) {
		conn_close(c, "out of memory for input");
		return;
	}
	worker_arm_recv(c->w, c);
}

void conn_tick(struct conn *c)
{
	const struct srv_runtime *cfg = &c->w->srv->rt; /* CONFIG SET may change them */
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
	} else if (!c->authed && cfg->auth_timeout_s && now - c->active_ms > (uint64_t)cfg->auth_timeout_s * 1000u) {
		conn_close(c, "auth timeout"); /* logged at debug level: clients may be many */
	} else if (cfg->timeout_s && c->pending == 0 && now - c->active_ms > (uint64_t)cfg->timeout_s * 1000u) {
		conn_close(c, "idle timeout");
	}
}
