/* worker.c - one network thread: its io_uring, its clients, and (worker 0)
 * the engine, the HTTP endpoint and the signals.
 *
 * One round of the loop:
 *   1. reap CQEs: accepts, receives (parse and run at once), sends,
 *      wake-ups, the 1 s tick, signals;
 *   2. worker 0: engine_turn() (store submissions and completions);
 *   3. take the eops the engine gave back, finish their commands;
 *   4. hand this round's new eops to the engine in one push;
 *   5. start sends for connections with new output;
 *   6. sleep in io_uring_submit_and_wait() only when nothing moved and
 *      both lists are empty (waker protocol, mpsc.h); the engine's device
 *      ring signals worker 0's eventfd on every disk completion.
 *
 * Stopping (SIGTERM/SIGINT, server.stopping): accepting stops, clients stop
 * being read, replies owed are sent (at most NET_SHUTDOWN_GRACE_MS), then
 * the worker exits; worker 0 last, after draining the store.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "server/chost.h"
#include "server/cmd.h"
#include "server/log.h"
#include "server/server_int.h"

#define WAIT_IN_FLIGHT_NS 50000000ll /* safety net while the store works */

uint64_t worker_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *ud(void *p, enum ev_type t)
{
	DV_ASSERT(((uintptr_t)p & EV_TYPE_MASK) == 0);
	return (void *)((uintptr_t)p | t);
}

struct io_uring_sqe *worker_get_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	for (unsigned i = 0; !sqe && i < 64; i++) {
		/* SQ full: hand what is queued to the kernel and try again. */
		int r = io_uring_submit(&w->ring);
		DV_ASSERT(r >= 0 || r == -EBUSY || r == -EAGAIN || r == -EINTR);
		sqe = io_uring_get_sqe(&w->ring);
	}
	DV_ASSERT(sqe != NULL);
	return sqe;
}

void worker_arm_recv(struct worker *w, struct conn *c)
{
	DV_ASSERT(!c->recv_armed && c->in_cap > c->in_len);
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	io_uring_sqe_set_data(sqe, ud(c, EV_RECV));
	c->recv_armed = true;
	c->refs++;
}

void worker_mark_dirty(struct worker *w, struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = w->dirty;
	w->dirty = c;
}

void worker_submit_eop(struct worker *w, struct eop *e)
{
	e->link.next = NULL;
	if (w->submit_last)
		w->submit_last->link.next = &e->link;
	else
		w->submit_first = e;
	w->submit_last = e;
}

static void arm_send(struct worker *w, struct conn *c)
{
	DV_ASSERT(!c->send_armed && c->sent < c->sending.len);
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_send(sqe, c->fd, c->sending.data + c->sent, c->sending.len - c->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, ud(c, EV_SEND));
	c->send_armed = true;
	c->refs++;
}

/* Swap the appended output in as the next send. */
static void start_send(struct worker *w, struct conn *c)
{
	if (c->send_armed || c->dead || c->out.len == 0)
		return;
	struct resp_buf t = c->sending;
	c->sending = c->out;
	c->out = t;
	c->out.len = 0;
	c->sent = 0;
	arm_send(w, c);
}

static void flush_dirty(struct worker *w)
{
	struct conn *c = w->dirty;
	w->dirty = NULL;
	while (c) {
		struct conn *next = c->dirty_next;
		c->dirty = false;
		c->dirty_next = NULL;
		start_send(w, c);
		c = next;
	}
}

static void arm_accept(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_multishot_accept(sqe, w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, ud(&w->ev_accept, EV_ACCEPT));
	w->accept_armed = true;
}

static void arm_http_accept(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_multishot_accept(sqe, w->http_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, ud(&w->ev_http, EV_HTTP_ACCEPT));
	w->http_armed = true;
}

static void arm_wake(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_read(sqe, w->waker.efd, &w->wake_buf, sizeof(w->wake_buf), 0);
	io_uring_sqe_set_data(sqe, ud(&w->ev_wake, EV_WAKE));
}

static void arm_tick(struct worker *w)
{
	w->tick_ts = (struct __kernel_timespec){.tv_sec = 1};
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data(sqe, ud(&w->ev_tick, EV_TICK));
}

static void arm_signal(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_read(sqe, w->sig_fd, &w->sig_buf, sizeof(w->sig_buf), 0);
	io_uring_sqe_set_data(sqe, ud(&w->ev_signal, EV_SIGNAL));
}

static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return ss->ss_family == AF_UNIX;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, len, "%s:%u", ip, port);
}

static void reject(int fd, const char *msg)
{
	ssize_t r = send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)r; /* best effort: the client is refused either way */
	close(fd);
}

static const char protected_msg[] =
	"-DENIED dynvme is running in protected mode: no password is set and this client is not on "
	"loopback. Set a password (requirepass, --requirepass) and connect with AUTH, or run with "
	"--protected-mode no on a trusted network.\r\n";

static void on_accept(struct worker *w, int fd)
{
	struct sockaddr_storage peer = {0}, local = {0};
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	getpeername(fd, (struct sockaddr *)&peer, &plen);
	getsockname(fd, (struct sockaddr *)&local, &llen);
	const struct server_config *cfg = w->cfg;
	if (cfg->protected_mode && !cfg->requirepass[0] && !addr_is_loopback(&peer)) {
		char a[64];
		format_addr(&peer, a, sizeof(a));
		log_warn("client refused: protected mode", "addr=%s", a);
		metrics_add(&w->m->conns_rejected, 1);
		reject(fd, protected_msg);
		return;
	}
	unsigned n = atomic_fetch_add_explicit(&w->srv->clients, 1, memory_order_relaxed);
	if (n >= cfg->maxclients) {
		atomic_fetch_sub_explicit(&w->srv->clients, 1, memory_order_relaxed);
		metrics_add(&w->m->conns_rejected, 1);
		reject(fd, "-ERR max number of clients reached\r\n");
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct conn *c = conn_new(w, fd);
	if (!c) {
		atomic_fetch_sub_explicit(&w->srv->clients, 1, memory_order_relaxed);
		reject(fd, "-ERR out of memory\r\n");
		return;
	}
	format_addr(&peer, c->addr, sizeof(c->addr));
	format_addr(&local, c->laddr, sizeof(c->laddr));
	metrics_add(&w->m->conns_accepted, 1);
	worker_arm_recv(w, c);
}

static void on_recv(struct worker *w, struct conn *c, int res)
{
	c->recv_armed = false;
	c->refs--;
	if (res <= 0) {
		if (res < 0 && res != -ECONNRESET && !c->dead)
			log_debug("client recv error", "id=%llu error=\"%s\"", (unsigned long long)c->id, strerror(-res));
		/* EOF: the requests already received still run (conn_on_input
		 * then closes); an error: nothing more is sent. */
		c->peer_eof = true;
		if (res < 0)
			conn_close(c, "recv error");
		conn_on_input(c);
		return;
	}
	if (c->closing) { /* after an error or QUIT: input is dropped */
		conn_on_input(c);
		return;
	}
	DV_ASSERT((size_t)res <= c->in_cap - c->in_len);
	c->recv_round = engine_round(w->srv->engine); /* conn.c: which writes had finished when these bytes came */
	c->in_len += (size_t)res;
	metrics_add(&w->m->bytes_in, (uint64_t)res);
	c->active_ms = w->now_ms;
	conn_on_input(c);
}

static void on_send(struct worker *w, struct conn *c, int res)
{
	c->send_armed = false;
	c->refs--;
	if (res < 0) {
		conn_close(c, "send error");
		return;
	}
	metrics_add(&w->m->bytes_out, (uint64_t)res);
	c->sent += (size_t)res;
	if (c->sent < c->sending.len && !c->dead) {
		arm_send(w, c);
		return;
	}
	c->sending.len = 0;
	c->sent = 0;
	if (c->sending.cap > NET_OUT_PAUSE_BYTES) { /* do not keep a huge buffer per idle client */
		resp_buf_free(&c->sending);
		resp_buf_init(&c->sending);
	}
	start_send(w, c);
	conn_on_input(c); /* output drained: a paused client may be read again */
}

static void begin_stop(struct worker *w)
{
	w->stopping = true;
	w->stop_deadline_ms = w->now_ms + NET_SHUTDOWN_GRACE_MS;
	struct io_uring_sqe *sqe;
	if (w->accept_armed) {
		sqe = worker_get_sqe(w);
		io_uring_prep_cancel(sqe, ud(&w->ev_accept, EV_ACCEPT), 0);
		io_uring_sqe_set_data(sqe, ud(&w->ev_cancel, EV_CANCEL));
	}
	if (w->http_armed) {
		sqe = worker_get_sqe(w);
		io_uring_prep_cancel(sqe, ud(&w->ev_http, EV_HTTP_ACCEPT), 0);
		io_uring_sqe_set_data(sqe, ud(&w->ev_cancel, EV_CANCEL));
	}
	for (struct conn *c = w->conns; c; c = c->next) {
		c->eof = true;
		c->closing = true;
		c->w->maybe_reap = true;
		if (c->recv_armed)
			shutdown(c->fd, SHUT_RD); /* the armed receive returns 0 */
		else
			c->peer_eof = true; /* no more reading at all */
		conn_on_input(c);
	}
}

static void on_tick(struct worker *w)
{
	arm_tick(w);
	for (struct conn *c = w->conns; c; c = c->next)
		conn_tick(c);
	http_tick(w);
	if (w->stopping && w->now_ms > w->stop_deadline_ms) {
		for (struct conn *c = w->conns; c; c = c->next)
			if (!c->dead) {
				log_warn("shutdown: dropping a client that did not read its replies", "id=%llu addr=%s",
					 (unsigned long long)c->id, c->addr);
				conn_close(c, "shutdown grace over");
			}
	}
}

static void on_signal(struct worker *w, int res)
{
	if (res != (int)sizeof(w->sig_buf))
		return; /* re-armed by the caller */
	log_info("shutdown requested", "signal=%u", w->sig_buf.ssi_signo);
	atomic_store(&w->srv->stopping, true);
	for (unsigned i = 0; i < w->srv->nworkers; i++) {
		uint64_t one = 1;
		ssize_t r = write(w->srv->workers[i].waker.efd, &one, sizeof(one));
		(void)r;
	}
}

static void on_event(struct worker *w, struct io_uring_cqe *cqe)
{
	uintptr_t d = (uintptr_t)io_uring_cqe_get_data(cqe);
	void *p = (void *)(d & ~(uintptr_t)EV_TYPE_MASK);
	int res = cqe->res;
	switch ((enum ev_type)(d & EV_TYPE_MASK)) {
	case EV_ACCEPT:
		if (res >= 0)
			on_accept(w, res);
		else if (res != -ECANCELED)
			log_warn("accept failed", "error=\"%s\"", strerror(-res));
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			w->accept_armed = false;
			if (!w->stopping)
				arm_accept(w);
		}
		break;
	case EV_HTTP_ACCEPT:
		if (res >= 0)
			http_accept(w, res);
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			w->http_armed = false;
			if (!w->stopping)
				arm_http_accept(w);
		}
		break;
	case EV_RECV: on_recv(w, p, res); break;
	case EV_SEND: on_send(w, p, res); break;
	case EV_HTTP_RECV: http_on_recv(p, res); break;
	case EV_HTTP_SEND: http_on_send(p, res); break;
	case EV_WAKE: arm_wake(w); break;
	case EV_TICK: on_tick(w); break;
	case EV_SIGNAL: on_signal(w, res); if (!w->stopping) arm_signal(w); break;
	case EV_CANCEL: break;
	case EV_PEER: chost_on_event(w->srv->chost, p, res, cqe->flags); break;
	default: DV_ASSERT(!"unknown io_uring event");
	}
}

static unsigned reap_cqes(struct worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&w->ring, head, cqe)
	{
		on_event(w, cqe);
		n++;
	}
	io_uring_cq_advance(&w->ring, n);
	return n;
}

static bool take_completions(struct worker *w)
{
	struct mpsc_node *n = mpsc_take(&w->sink.done);
	if (!n)
		return false;
	w->now_ns = worker_now_ns();
	while (n) {
		struct mpsc_node *next = n->next;
		conn_on_eop_done((struct eop *)n); /* link is the first member */
		n = next;
	}
	return true;
}

static void reap_conns(struct worker *w)
{
	if (!w->maybe_reap)
		return;
	w->maybe_reap = false;
	struct conn *c = w->conns;
	while (c) {
		struct conn *next = c->next;
		if (conn_reapable(c) && !c->dirty)
			conn_free(c);
		else if (c->closing || c->dead)
			w->maybe_reap = true; /* look again next round */
		c = next;
	}
}

static bool worker_done(struct worker *w)
{
	if (!w->stopping || w->nconns > 0)
		return false;
	if (!w->host)
		return true;
	if (atomic_load(&w->srv->workers_running) != 1 || !engine_idle(w->srv->engine))
		return false;
	return !w->srv->chost || chost_quiesced(w->srv->chost, w->now_ms);
}

static void sleep_until_work(struct worker *w)
{
	waker_sleep_begin(&w->waker);
	/* After the flag is visible: anything pushed from now on kicks us. */
	bool idle = mpsc_empty(&w->sink.done) && (!w->host || engine_may_sleep(w->srv->engine));
	int64_t wait_ns = -1;
	if (idle && w->host && engine_in_flight(w->srv->engine) > 0)
		wait_ns = WAIT_IN_FLIGHT_NS; /* disk completions signal our eventfd; a safety net */
	if (idle && w->host && w->srv->chost) { /* the cnode's deadlines and peer timers */
		int64_t c = chost_wait_ns(w->srv->chost);
		if (c >= 0 && (wait_ns < 0 || c < wait_ns))
			wait_ns = c;
		idle = wait_ns != 0;
	}
	if (idle && wait_ns >= 0) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
	} else if (idle) {
		io_uring_submit_and_wait(&w->ring, 1);
	} else {
		/* Send what is queued and run deferred completions, no wait. */
		io_uring_submit_and_get_events(&w->ring);
	}
	waker_sleep_end(&w->waker);
}

static void worker_round(struct worker *w, bool *moved)
{
	w->now_ns = worker_now_ns();
	w->now_ms = wall_ms();
	*moved = reap_cqes(w) > 0;
	if (!w->stopping && atomic_load_explicit(&w->srv->stopping, memory_order_relaxed))
		begin_stop(w);
	if (w->submit_first) {
		engine_submit(w->srv->engine, w->submit_first, w->submit_last);
		w->submit_first = w->submit_last = NULL;
		*moved = true;
	}
	struct chost *ch = w->host ? w->srv->chost : NULL;
	if (ch)
		*moved |= chost_before(ch);
	if (w->host)
		*moved |= engine_turn(w->srv->engine);
	if (ch)
		*moved |= chost_after(ch);
	*moved |= take_completions(w);
	if (w->submit_first) { /* commands unblocked by completions */
		engine_submit(w->srv->engine, w->submit_first, w->submit_last);
		w->submit_first = w->submit_last = NULL;
		*moved = true;
	}
	flush_dirty(w);
	reap_conns(w);
}

void *worker_main(void *arg);
void *worker_main(void *arg)
{
	struct worker *w = arg;
	if (w->ring_disabled) {
		/* io_uring_enable_rings() is missing from Debian's liburing 2.3 library. */
		long err = syscall(__NR_io_uring_register, w->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		DV_ASSERT(err == 0); /* a ring we created disabled: only this thread enables it */
		w->ring_disabled = false;
	}
	w->now_ms = wall_ms();
	w->now_ns = worker_now_ns();
	arm_wake(w);
	arm_tick(w);
	arm_accept(w);
	if (w->http_fd >= 0)
		arm_http_accept(w);
	if (w->sig_fd >= 0)
		arm_signal(w);
	if (w->host && w->srv->chost)
		chost_attach(w->srv->chost, w);
	for (uint64_t round = 0;; round++) {
		bool moved = false;
		worker_round(w, &moved);
		if (worker_done(w))
			break;
		/* Blocks only when nothing is pending anywhere; returns at
		 * once when CQEs are already there. */
		sleep_until_work(w);
		DV_UNUSED(moved);
	}
	atomic_fetch_sub(&w->srv->workers_running, 1);
	/* Worker 0 waits for the others: wake it so it sees the count. */
	uint64_t one = 1;
	ssize_t r = write(w->srv->workers[0].waker.efd, &one, sizeof(one));
	(void)r;
	return NULL;
}
