/* peer.c - connections between members on worker 0's io_uring.
 *
 * One connection per peer pair: the lower node id dials the higher, which
 * accepts. A connection's life:
 *
 *   dialler:  DOWN --connect--> CONNECTING --TCP up, HELLO_C--> HANDSHAKE --proof ok--> UP
 *   acceptor: accept --> HANDSHAKE (peer unknown) --proof ok, a member that dials us--> UP
 *   either:   refused (wire error, not a member, wrong direction), handshake timeout,
 *             EOF, I/O error --> dead --(refs 0)--> freed; a dialler retries after a
 *             backoff (100 ms doubling to 5 s, reset by a session that came up)
 *
 * Invariants:
 * 1. A peer has at most one connection (peer->conn); an inbound session
 *    that authenticates as a peer with one replaces it (the peer
 *    restarted: its old connection is dead or about to be).
 * 2. Messages (cnode frames) for an UP session wait unsealed on it until
 *    a send is armed; then every one waiting is sealed, in order, into as
 *    few wire frames as wire_seal_msgs allows (one tag per frame, not per
 *    message: all a loop round produced for the peer, and what piled up
 *    while the previous send was in flight), and the sealed queue is sent
 *    in order, so the implicit frame sequence of the wire matches. Each
 *    message goes out as its piece of the frame (wire_lead bytes before
 *    its data, wire_trail after), straight from the cnode's buffer.
 *    Messages for a peer without a session wait unsealed, bounded in bytes
 *    and for at most PEER_HOLD_MS (a node that just started waits for its
 *    lower-id peers to dial it); beyond, they are dropped and counted: the
 *    cnode's deadlines and read repair cover lost messages.
 * 3. Nothing from a connection reaches the cnode before its session is UP
 *    (wire.h refuses frames before the proofs), and the id it delivers
 *    under is the authenticated, member peer id.
 * 4. A connection is freed only when dead and refs == 0; queued frames are
 *    freed with it (an armed send may be reading them).
 * Every refusal is logged with the peer's address and the reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "base/assert.h"
#include "server/chost_int.h"
#include "server/log.h"
#include "server/server_int.h"

static void *pud(struct peer_ev *ev) { return (void *)((uintptr_t)ev | EV_PEER); }

static void format_sa(const struct sockaddr_storage *ss, char *out, size_t len)
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

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *sa, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &res) || !res)
		return -EINVAL;
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct peer *peer_by_id(struct chost *ch, uint16_t id)
{
	for (unsigned i = 0; i < ch->npeers; i++)
		if (ch->peers[i].id == id)
			return &ch->peers[i];
	return NULL;
}

enum peer_state peer_state(const struct peer *p)
{
	if (!p->conn)
		return PEER_DOWN;
	if (p->conn->up)
		return PEER_UP;
	return p->conn->connect_armed ? PEER_CONNECTING : PEER_HANDSHAKE;
}

const char *peer_state_name(enum peer_state s)
{
	switch (s) {
	case PEER_UP: return "up";
	case PEER_CONNECTING: return "connecting";
	case PEER_HANDSHAKE: return "handshake";
	default: return "down";
	}
}

/* ---- set-up ---- */

static int listen_internode(struct chost *ch)
{
	const struct cluster_config *cc = ch->cc;
	struct sockaddr_storage sa;
	socklen_t len;
	if (resolve(cc->internode_bind, cc->internode_port, &sa, &len)) {
		log_error("bad internode-bind address", "internode_bind=%s", cc->internode_bind);
		return -EINVAL;
	}
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err = fd < 0 ? -errno : 0;
	int one = 1;
	if (!err && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		err = -errno;
	if (!err)
		err = server_bind(fd, (struct sockaddr *)&sa, len, "internode");
	if (!err && listen(fd, 128))
		err = -errno;
	if (err) {
		log_error("cannot listen for peers", "internode=%s:%u error=\"%s\"", cc->internode_bind,
			  cc->internode_port, strerror(-err));
		if (fd >= 0)
			close(fd);
		return err;
	}
	ch->listen_fd = fd;
	return 0;
}

int peer_setup(struct chost *ch)
{
	const struct cluster_config *cc = ch->cc;
	ch->ev_accept = (struct peer_ev){.kind = PEV_ACCEPT};
	ch->ev_cancel = (struct peer_ev){.kind = PEV_CANCEL};
	for (unsigned i = 0; i < cc->npeers; i++) {
		struct peer *p = &ch->peers[ch->npeers++];
		*p = (struct peer){.id = cc->peers[i].id, .cfg = &cc->peers[i], .dialer = cc->node_id < cc->peers[i].id,
				   .backoff_ms = PEER_BACKOFF_MIN_MS};
		if (resolve(p->cfg->host, p->cfg->port, &p->sa, &p->sa_len)) {
			log_error("bad peer address", "peer=%u addr=%s:%u", p->id, p->cfg->host, p->cfg->port);
			return -EINVAL;
		}
	}
	return listen_internode(ch);
}

static void arm_accept(struct chost *ch)
{
	struct io_uring_sqe *sqe = worker_get_sqe(ch->w);
	io_uring_prep_multishot_accept(sqe, ch->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	io_uring_sqe_set_data(sqe, pud(&ch->ev_accept));
	ch->accept_armed = true;
}

void peer_start(struct chost *ch)
{
	arm_accept(ch);
	ch->timer_ms = 0; /* dial at once */
}

/* ---- frames ---- */

static void frames_free(struct chost *ch, struct cnode_frame *f)
{
	while (f) {
		struct cnode_frame *next = f->next;
		cnode_frame_free(ch->cn, f);
		f = next;
	}
}

static unsigned frames_count(const struct cnode_frame *f)
{
	unsigned n = 0;
	for (; f; f = f->next)
		n++;
	return n;
}

/* Drop the frames a peer held for its session (counted). */
static void pending_drop(struct chost *ch, struct peer *p)
{
	p->frames_dropped += frames_count(p->p_head);
	frames_free(ch, p->p_head);
	p->p_head = p->p_tail = NULL;
	p->p_bytes = 0;
}

/* A message's bytes on the wire at most: alone in its frame. */
static uint64_t wire_bytes_max(const struct cnode_frame *f)
{
	return (uint64_t)f->len + WIRE_SEAL_HEADROOM + WIRE_SEAL_TAILROOM;
}

/* A sealed message's piece of its frame (invariant 2). */
static uint64_t piece_bytes(const struct cnode_frame *f) { return (uint64_t)f->wire_lead + f->len + f->wire_trail; }

/* Queue f on pc's session, unsealed (invariant 2). */
static void pconn_queue(struct pconn *pc, struct cnode_frame *f)
{
	DV_ASSERT(pc->up && wire_up(&pc->w) && pc->peer);
	struct peer *p = pc->peer;
	if (pc->q_bytes + pc->u_bytes + wire_bytes_max(f) > PEER_SENDQ_BYTES_MAX) {
		p->frames_dropped++;
		cnode_frame_free(pc->ch->cn, f);
		return;
	}
	f->next = NULL;
	if (pc->u_tail)
		pc->u_tail->next = f;
	else
		pc->u_head = f;
	pc->u_tail = f;
	pc->u_bytes += wire_bytes_max(f);
	p->frames_out++;
}

/* Every waiting message into sealed frames, in order (invariant 2): a
 * frame takes messages while wire_seal_msgs's bounds allow. */
static void seal_waiting(struct pconn *pc)
{
	DV_ASSERT(pc->up && wire_up(&pc->w));
	uint8_t *msgs[WIRE_BATCH_MSGS_MAX];
	uint32_t lens[WIRE_BATCH_MSGS_MAX];
	struct cnode_frame *f = pc->u_head;
	for (uint64_t guard = 0; f; guard++) {
		DV_ASSERT(guard <= pc->u_bytes); /* each frame takes a message at least */
		struct cnode_frame *first = f, *last = f;
		unsigned n = 0;
		size_t payload = 0;
		for (; f && n < WIRE_BATCH_MSGS_MAX; f = f->next) {
			size_t rec = WIRE_BATCH_HEAD + (size_t)f->len;
			if (n > 0 && payload + rec > WIRE_BATCH_BYTES)
				break; /* a large message starts its own frame */
			msgs[n] = f->data;
			lens[n++] = f->len;
			payload += rec;
			last = f;
		}
		size_t bytes = wire_seal_msgs(&pc->w, msgs, lens, n);
		uint64_t held = 0;
		unsigned i = 0;
		for (struct cnode_frame *g = first;; g = g->next, i++) {
			g->wire_lead = (uint8_t)wire_piece_lead(i);
			g->wire_trail = (uint8_t)wire_piece_trail(i, n);
			held += wire_bytes_max(g);
			if (g == last)
				break;
		}
		DV_ASSERT(i + 1 == n && held <= pc->u_bytes);
		pc->u_bytes -= held;
		last->next = NULL;
		if (pc->q_tail)
			pc->q_tail->next = first;
		else
			pc->q_head = first;
		pc->q_tail = last;
		pc->q_bytes += bytes;
		pc->peer->batches_out++;
	}
	DV_ASSERT(pc->u_bytes == 0);
	pc->u_head = pc->u_tail = NULL;
}

void peer_route_frames(struct chost *ch, struct cnode_frame *f)
{
	uint64_t now = store_now_ms();
	while (f) {
		struct cnode_frame *next = f->next;
		f->next = NULL;
		struct peer *p = peer_by_id(ch, f->to);
		if (!p) {
			ch->frames_no_peer++;
			cnode_frame_free(ch->cn, f);
		} else if (p->conn && p->conn->up) {
			pconn_queue(p->conn, f);
		} else if (!ch->stopping && p->p_bytes + wire_bytes_max(f) <= PEER_PENDING_BYTES_MAX &&
			   (!p->p_head || now - p->p_since_ms < PEER_HOLD_MS)) {
			if (p->p_tail) {
				p->p_tail->next = f;
			} else {
				p->p_head = f;
				p->p_since_ms = now;
				if (ch->timer_ms > now + PEER_HOLD_MS)
					ch->timer_ms = now + PEER_HOLD_MS;
			}
			p->p_tail = f;
			p->p_bytes += wire_bytes_max(f);
		} else {
			p->frames_dropped++;
			cnode_frame_free(ch->cn, f);
		}
		f = next;
	}
}

/* ---- connections ---- */

static struct pconn *pconn_new(struct chost *ch, int fd, enum wire_role role, struct peer *p)
{
	struct pconn *pc = aligned_alloc(16, sizeof(*pc));
	uint8_t *in = malloc(PEER_IN_BYTES_MIN);
	if (!pc || !in) {
		free(pc);
		free(in);
		return NULL;
	}
	memset(pc, 0, sizeof(*pc));
	pc->ev_conn = (struct peer_ev){.pc = pc, .kind = PEV_CONNECT};
	pc->ev_recv = (struct peer_ev){.pc = pc, .kind = PEV_RECV};
	pc->ev_send = (struct peer_ev){.pc = pc, .kind = PEV_SEND};
	pc->ch = ch;
	pc->fd = fd;
	pc->role = role;
	pc->peer = p;
	pc->in = in;
	pc->in_cap = PEER_IN_BYTES_MIN;
	pc->deadline_ms = store_now_ms() + PEER_HANDSHAKE_MS;
	if (ch->timer_ms > pc->deadline_ms)
		ch->timer_ms = pc->deadline_ms;
	uint8_t nonce[WIRE_NONCE_BYTES];
	if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		randombytes_buf(nonce, sizeof(nonce));
	wire_init(&pc->w, role, ch->wire_key, ch->cc->cluster_id, ring_digest(&ch->ring), ch->cc->node_id,
		  p ? p->id : 0, nonce);
	pc->next = ch->conns;
	if (ch->conns)
		ch->conns->prev = pc;
	ch->conns = pc;
	ch->nconns++;
	if (role == WIRE_ACCEPTOR)
		ch->ninbound++;
	return pc;
}

static void pconn_free(struct pconn *pc)
{
	struct chost *ch = pc->ch;
	DV_ASSERT(pc->dead && pc->refs == 0);
	if (pc->fd >= 0)
		close(pc->fd);
	if (pc->prev)
		pc->prev->next = pc->next;
	else
		ch->conns = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	ch->nconns--;
	if (ch->cn) {
		frames_free(ch, pc->q_head);
		frames_free(ch, pc->u_head);
	}
	sodium_memzero(&pc->w, sizeof(pc->w));
	free(pc->in);
	free(pc);
}

static void pconn_maybe_free(struct pconn *pc)
{
	if (pc->dead && pc->refs == 0)
		pconn_free(pc);
}

static void schedule_retry(struct chost *ch, struct peer *p, uint64_t now)
{
	p->retry_at_ms = now + p->backoff_ms;
	p->backoff_ms = p->backoff_ms * 2 > PEER_BACKOFF_MAX_MS ? PEER_BACKOFF_MAX_MS : p->backoff_ms * 2;
	if (ch->timer_ms > p->retry_at_ms)
		ch->timer_ms = p->retry_at_ms;
}

/* Close pc: no more I/O is started; sockets shut down so armed SQEs
 * return; its peer (if it was the peer's) goes down. */
static void pconn_close(struct pconn *pc, enum log_level level, const char *why, const char *detail)
{
	if (pc->dead)
		return;
	struct chost *ch = pc->ch;
	struct peer *p = pc->peer;
	uint64_t now = store_now_ms();
	pc->dead = true;
	if (pc->role == WIRE_ACCEPTOR && !pc->up)
		ch->ninbound--;
	shutdown(pc->fd, SHUT_RDWR);
	bool was_up = pc->up;
	if (p && p->conn == pc) {
		p->conn = NULL;
		if (was_up) {
			p->disconnects++;
			cnode_peer_down(ch->cn, p->id, now); /* node.h: a flush may be done without it now */
		}
		if (p->dialer && !ch->stopping)
			schedule_retry(ch, p, now);
	}
	if (level >= LOG_WARN || was_up || !p || !p->fail_logged)
		log_msg(level, why, "peer=%u addr=%s role=%s%s%s", p ? p->id : 0, pc->addr,
			pc->role == WIRE_CONNECTOR ? "dial" : "accept", detail ? " " : "", detail ? detail : "");
	if (p && !was_up)
		p->fail_logged = true;
	pconn_maybe_free(pc);
}

/* A wire error or a driver refusal: logged as a warning with the reason. */
static void pconn_refuse(struct pconn *pc, const char *reason)
{
	pc->ch->refused_handshakes++;
	if (pc->peer)
		pc->peer->refusals++;
	char d[160];
	snprintf(d, sizeof(d), "reason=\"%s\"", reason);
	pconn_close(pc, LOG_WARN, "peer refused", d);
}

static const char *wire_error_text(int err)
{
	switch (err) {
	case -EACCES: return "authentication failed: wrong cluster secret, or an unexpected node id";
	case -EXDEV: return "another cluster (cluster-id differs)";
	case -ENXIO: return "another partition table (partitions or members differ)";
	case -EPROTO: return "not a dynvme internode peer (bad magic or version), or a reflected hello";
	case -EBADMSG: return "a frame failed its tag (altered, replayed or reordered)";
	case -EMSGSIZE: return "a frame larger than the protocol allows";
	default: return "session error";
	}
}

static void arm_recv(struct pconn *pc)
{
	DV_ASSERT(!pc->recv_armed && !pc->dead && pc->in_cap > pc->in_len);
	struct io_uring_sqe *sqe = worker_get_sqe(pc->ch->w);
	io_uring_prep_recv(sqe, pc->fd, pc->in + pc->in_len, pc->in_cap - pc->in_len, 0);
	io_uring_sqe_set_data(sqe, pud(&pc->ev_recv));
	pc->recv_armed = true;
	pc->refs++;
}

/* Send what is queued: handshake bytes first, then sealed frames (the
 * waiting messages sealed now: invariant 2). */
static void arm_send(struct pconn *pc)
{
	if (pc->send_armed || pc->dead || pc->connect_armed)
		return;
	if (pc->u_head)
		seal_waiting(pc);
	unsigned n = 0;
	if (pc->hs_off < pc->hs_len)
		pc->iov[n++] = (struct iovec){.iov_base = pc->hs + pc->hs_off, .iov_len = pc->hs_len - pc->hs_off};
	size_t off = pc->q_off;
	for (struct cnode_frame *f = pc->q_head; f && n < PEER_IOV_MAX; f = f->next, off = 0)
		pc->iov[n++] = (struct iovec){.iov_base = f->data - f->wire_lead + off,
					      .iov_len = piece_bytes(f) - off};
	if (n == 0)
		return;
	pc->msg = (struct msghdr){.msg_iov = pc->iov, .msg_iovlen = n};
	struct io_uring_sqe *sqe = worker_get_sqe(pc->ch->w);
	io_uring_prep_sendmsg(sqe, pc->fd, &pc->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, pud(&pc->ev_send));
	pc->send_armed = true;
	pc->refs++;
}

void peer_flush(struct chost *ch)
{
	for (struct pconn *pc = ch->conns; pc; pc = pc->next)
		if (!pc->send_armed && (pc->q_head || pc->u_head || pc->hs_off < pc->hs_len))
			arm_send(pc);
}

static void take_handshake(struct pconn *pc)
{
	DV_ASSERT(pc->hs_len + WIRE_HANDSHAKE_OUT_MAX <= sizeof(pc->hs));
	pc->hs_len += wire_handshake_out(&pc->w, pc->hs + pc->hs_len);
}

static void dial(struct chost *ch, struct peer *p)
{
	DV_ASSERT(p->dialer && !p->conn);
	int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_warn("peer socket failed", "peer=%u error=\"%s\"", p->id, strerror(errno));
		schedule_retry(ch, p, store_now_ms());
		return;
	}
	struct pconn *pc = pconn_new(ch, fd, WIRE_CONNECTOR, p);
	if (!pc) {
		close(fd);
		schedule_retry(ch, p, store_now_ms());
		return;
	}
	p->conn = pc;
	memcpy(&pc->sa, &p->sa, p->sa_len);
	pc->sa_len = p->sa_len;
	format_sa(&pc->sa, pc->addr, sizeof(pc->addr));
	struct io_uring_sqe *sqe = worker_get_sqe(ch->w);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&pc->sa, pc->sa_len);
	io_uring_sqe_set_data(sqe, pud(&pc->ev_conn));
	pc->connect_armed = true;
	pc->refs++;
}

static void set_socket_options(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

/* The handlers below keep the completed SQE's reference (refs) until they
 * return, so a close inside them cannot free pc under them (invariant 4). */
static void on_connect(struct pconn *pc, int res)
{
	pc->connect_armed = false;
	if (pc->dead) {
	} else if (res < 0) {
		char d[96];
		snprintf(d, sizeof(d), "error=\"%s\"", strerror(-res));
		pconn_close(pc, LOG_INFO, "peer connect failed", d);
	} else {
		set_socket_options(pc->fd);
		take_handshake(pc); /* HELLO_C */
		arm_send(pc);
		arm_recv(pc);
	}
	pc->refs--;
	pconn_maybe_free(pc);
}

/* The session is up: check the peer, adopt the connection (invariant 1). */
static void on_ready(struct pconn *pc)
{
	struct chost *ch = pc->ch;
	uint16_t id = pc->w.peer_id;
	struct peer *p = peer_by_id(ch, id);
	if (!p) {
		ch->refused_members++;
		char why[96];
		snprintf(why, sizeof(why), "node id %u is not a member of this cluster (no peer directive)", id);
		pconn_refuse(pc, why);
		return;
	}
	if (pc->role == WIRE_ACCEPTOR) {
		if (p->dialer) {
			ch->refused_members++;
			pc->peer = p;
			char why[96];
			snprintf(why, sizeof(why), "node %u dialled us, but the lower id (%u) dials", id, ch->cc->node_id);
			pconn_refuse(pc, why);
			return;
		}
		if (p->conn)
			pconn_close(p->conn, LOG_INFO, "peer connection replaced", "reason=\"the peer reconnected\"");
		ch->ninbound--;
		pc->peer = p;
		p->conn = pc;
	}
	DV_ASSERT(p->conn == pc);
	pc->up = true;
	pc->deadline_ms = 0;
	p->backoff_ms = PEER_BACKOFF_MIN_MS;
	p->fail_logged = false;
	p->sessions++;
	p->up_since_ms = store_now_ms();
	log_info("peer connected", "peer=%u addr=%s role=%s", p->id, pc->addr,
		 pc->role == WIRE_CONNECTOR ? "dial" : "accept");
	cnode_peer_up(ch->cn, id, p->up_since_ms); /* it asks the peer's flush state, resends open flushes */
	struct cnode_frame *f = p->p_head;
	p->p_head = p->p_tail = NULL;
	p->p_bytes = 0;
	while (f) {
		struct cnode_frame *next = f->next;
		pconn_queue(pc, f);
		f = next;
	}
}

/* A verified frame: its batch of messages to the cnode, in order; a
 * frame whose records do not add up (a peer's bug: its tag verified)
 * closes the session before any of it is delivered. */
static void deliver(struct pconn *pc, const uint8_t *payload, size_t len)
{
	struct peer *p = pc->peer;
	DV_ASSERT(pc->up && p && wire_up(&pc->w)); /* invariant 3 */
	int count = wire_batch_count(payload, len);
	if (count < 0) {
		pconn_refuse(pc, "a frame whose message records do not fill it exactly");
		return;
	}
	uint64_t now = store_now_ms();
	size_t off = 0;
	for (int i = 0; i < count; i++) { /* a pass of hints first: the lookups' cache misses overlap */
		const uint8_t *m;
		size_t ml;
		DV_ASSERT(wire_batch_next(payload, len, &off, &m, &ml) == 1);
		cnode_prefetch_message(pc->ch->cn, m, ml);
	}
	off = 0;
	for (int i = 0; i < count; i++) {
		const uint8_t *m;
		size_t ml;
		DV_ASSERT(wire_batch_next(payload, len, &off, &m, &ml) == 1);
		p->frames_in++;
		cnode_on_message(pc->ch->cn, p->id, m, ml, now);
	}
	DV_ASSERT(off == len);
}

/* Room for the next unit (wire_next_bytes), within WIRE_FRAME_BYTES_MAX. */
static bool reserve_input(struct pconn *pc, size_t need)
{
	if (need < pc->in_len + 1)
		need = pc->in_len + 1;
	if (need <= pc->in_cap)
		return true;
	DV_ASSERT(need <= WIRE_FRAME_BYTES_MAX + PEER_IN_BYTES_MIN);
	size_t cap = pc->in_cap;
	while (cap < need)
		cap *= 2;
	uint8_t *n = realloc(pc->in, cap);
	if (!n)
		return false;
	pc->in = n;
	pc->in_cap = cap;
	return true;
}

/* Feed what arrived to the session: handshake steps, frames to the cnode. */
static void consume_input(struct pconn *pc)
{
	size_t pos = 0;
	for (unsigned guard = 0; !pc->dead; guard++) {
		DV_ASSERT(guard <= pc->in_len + 1); /* each step consumes bytes or stops */
		size_t used = 0, plen = 0;
		uint8_t *payload = NULL;
		int ev = wire_feed(&pc->w, pc->in + pos, pc->in_len - pos, &used, &payload, &plen);
		if (ev < 0) {
			pconn_refuse(pc, wire_error_text(ev));
			return;
		}
		pos += used;
		if (ev == WIRE_NEED)
			break;
		if (ev == WIRE_STEP || ev == WIRE_READY)
			take_handshake(pc);
		if (ev == WIRE_READY)
			on_ready(pc);
		else if (ev == WIRE_FRAME)
			deliver(pc, payload, plen);
	}
	if (pc->dead)
		return;
	memmove(pc->in, pc->in + pos, pc->in_len - pos);
	pc->in_len -= pos;
	if (pc->in_len == 0 && pc->in_cap > 4 * PEER_IN_BYTES_MIN) { /* after a large frame */
		uint8_t *n = realloc(pc->in, PEER_IN_BYTES_MIN);
		if (n) {
			pc->in = n;
			pc->in_cap = PEER_IN_BYTES_MIN;
		}
	}
	if (!reserve_input(pc, wire_next_bytes(&pc->w, pc->in, pc->in_len))) {
		pconn_close(pc, LOG_WARN, "peer closed", "reason=\"out of memory for input\"");
		return;
	}
	arm_send(pc);
	arm_recv(pc);
}

static void on_recv_result(struct pconn *pc, int res)
{
	if (pc->dead)
		return;
	if (res <= 0) {
		char d[160];
		if (!pc->up && pc->role == WIRE_ACCEPTOR) { /* it judged our proof, or never spoke the protocol */
			pc->ch->refused_handshakes++;
			snprintf(d, sizeof(d), "reason=\"closed before authenticating: its cluster secret or cluster-id "
					       "differs, or it is not a dynvme peer\"");
			pconn_close(pc, LOG_WARN, "peer handshake failed", d);
			return;
		}
		snprintf(d, sizeof(d), "reason=\"%s\"", res == 0 ? "closed by the peer" : strerror(-res));
		pconn_close(pc, LOG_INFO, "peer disconnected", d);
		return;
	}
	DV_ASSERT((size_t)res <= pc->in_cap - pc->in_len);
	pc->in_len += (size_t)res;
	if (pc->peer && pc->up)
		pc->peer->bytes_in += (uint64_t)res;
	consume_input(pc);
}

static void on_recv(struct pconn *pc, int res)
{
	pc->recv_armed = false;
	on_recv_result(pc, res);
	pc->refs--;
	pconn_maybe_free(pc);
}

static void on_send_result(struct pconn *pc, int res)
{
	if (pc->dead)
		return;
	if (res < 0) {
		char d[96];
		snprintf(d, sizeof(d), "reason=\"send: %s\"", strerror(-res));
		pconn_close(pc, LOG_INFO, "peer disconnected", d);
		return;
	}
	size_t n = (size_t)res;
	size_t hs = pc->hs_len - pc->hs_off < n ? pc->hs_len - pc->hs_off : n;
	pc->hs_off += hs;
	n -= hs;
	if (pc->peer)
		pc->peer->bytes_out += n;
	while (n > 0) {
		struct cnode_frame *f = pc->q_head;
		DV_ASSERT(f != NULL);
		size_t left = piece_bytes(f) - pc->q_off;
		if (n < left) {
			pc->q_off += n;
			break;
		}
		n -= left;
		pc->q_off = 0;
		pc->q_bytes -= piece_bytes(f);
		pc->q_head = f->next;
		if (!pc->q_head)
			pc->q_tail = NULL;
		cnode_frame_free(pc->ch->cn, f);
	}
	arm_send(pc);
}

static void on_send(struct pconn *pc, int res)
{
	pc->send_armed = false;
	on_send_result(pc, res);
	pc->refs--;
	pconn_maybe_free(pc);
}

static void on_accept(struct chost *ch, int fd)
{
	if (ch->stopping) {
		close(fd);
		return;
	}
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	getpeername(fd, (struct sockaddr *)&ss, &len);
	char addr[72];
	format_sa(&ss, addr, sizeof(addr));
	if (ch->ninbound >= PEER_INBOUND_MAX) {
		/* Drop the oldest connection still in handshake for this one:
		 * refusing the new one instead would let anyone holding
		 * PEER_INBOUND_MAX silent connections keep every member out. To
		 * lock a member out now, a flood must open that many within
		 * the member's handshake (a few round trips). Logged once a
		 * second, with the count. */
		struct pconn *old = NULL;
		for (struct pconn *q = ch->conns; q; q = q->next)
			if (q->role == WIRE_ACCEPTOR && !q->up && !q->dead && (!old || q->deadline_ms < old->deadline_ms))
				old = q;
		DV_ASSERT(old);
		ch->inbound_over_limit++;
		ch->over_limit_unlogged++;
		uint64_t now = store_now_ms();
		if (now >= ch->over_limit_logged_ms + 1000) {
			log_warn("peer refused", "addr=%s reason=\"too many connections in handshake (%u): dropped the "
				 "oldest\" dropped=%llu", old->addr, PEER_INBOUND_MAX,
				 (unsigned long long)ch->over_limit_unlogged);
			ch->over_limit_logged_ms = now;
			ch->over_limit_unlogged = 0;
		}
		pconn_close(old, LOG_DEBUG, "peer dropped", "reason=\"too many connections in handshake\"");
	}
	set_socket_options(fd);
	struct pconn *pc = pconn_new(ch, fd, WIRE_ACCEPTOR, NULL);
	if (!pc) {
		close(fd);
		return;
	}
	snprintf(pc->addr, sizeof(pc->addr), "%s", addr);
	arm_recv(pc);
}

void peer_on_event(struct chost *ch, struct peer_ev *ev, int res, unsigned cqe_flags)
{
	switch (ev->kind) {
	case PEV_ACCEPT:
		if (res >= 0)
			on_accept(ch, res);
		else if (res != -ECANCELED)
			log_warn("peer accept failed", "error=\"%s\"", strerror(-res));
		if (!(cqe_flags & IORING_CQE_F_MORE)) {
			ch->accept_armed = false;
			if (!ch->stopping)
				arm_accept(ch);
		}
		break;
	case PEV_CONNECT: on_connect(ev->pc, res); break;
	case PEV_RECV: on_recv(ev->pc, res); break;
	case PEV_SEND: on_send(ev->pc, res); break;
	case PEV_CANCEL: break;
	default: DV_ASSERT(!"unknown peer event");
	}
}

/* ---- time ---- */

void peer_timers(struct chost *ch, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (struct pconn *pc = ch->conns, *nx; pc; pc = nx) {
		nx = pc->next;
		if (pc->dead || !pc->deadline_ms)
			continue;
		if (now >= pc->deadline_ms)
			pconn_close(pc, pc->role == WIRE_ACCEPTOR ? LOG_WARN : LOG_INFO, "peer handshake timed out",
				    NULL);
		else if (pc->deadline_ms < next)
			next = pc->deadline_ms;
	}
	for (unsigned i = 0; i < ch->npeers; i++) {
		struct peer *p = &ch->peers[i];
		if (p->p_head && now - p->p_since_ms >= PEER_HOLD_MS)
			pending_drop(ch, p);
		else if (p->p_head && p->p_since_ms + PEER_HOLD_MS < next)
			next = p->p_since_ms + PEER_HOLD_MS;
		if (!p->dialer || p->conn || ch->stopping)
			continue;
		if (now >= p->retry_at_ms)
			dial(ch, p);
		else if (p->retry_at_ms < next)
			next = p->retry_at_ms;
	}
	/* New connections set their own deadlines into timer_ms (pconn_new). */
	for (struct pconn *pc = ch->conns; pc; pc = pc->next)
		if (!pc->dead && pc->deadline_ms && pc->deadline_ms < next)
			next = pc->deadline_ms;
	ch->timer_ms = next;
}

/* ---- stop ---- */

void peer_close_all(struct chost *ch)
{
	ch->stopping = true;
	if (ch->accept_armed) {
		struct io_uring_sqe *sqe = worker_get_sqe(ch->w);
		io_uring_prep_cancel(sqe, pud(&ch->ev_accept), 0);
		io_uring_sqe_set_data(sqe, pud(&ch->ev_cancel));
	}
	for (struct pconn *pc = ch->conns, *nx; pc; pc = nx) {
		nx = pc->next;
		pconn_close(pc, LOG_DEBUG, "peer closed", "reason=\"shutdown\"");
	}
	for (unsigned i = 0; i < ch->npeers; i++)
		pending_drop(ch, &ch->peers[i]);
	ch->timer_ms = UINT64_MAX;
}

bool peer_all_closed(const struct chost *ch) { return ch->conns == NULL && !ch->accept_armed; }

void peer_free_all(struct chost *ch)
{
	/* The ring is gone: no SQE can refer to a connection any more. */
	while (ch->conns) {
		struct pconn *pc = ch->conns;
		pc->dead = true;
		pc->refs = 0;
		pconn_free(pc);
	}
	if (ch->listen_fd >= 0)
		close(ch->listen_fd);
	ch->listen_fd = -1;
}
