/* chost_int.h - private to chost*.c and peer.c: the cluster host's state.
 * Nothing else includes it (the face is chost.h). Everything here is used
 * by worker 0's thread only: the thread that owns the store, the engine and
 * the cnode (BRIEF decision 3).
 */
#ifndef DV_SERVER_CHOST_INT_H
#define DV_SERVER_CHOST_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "cluster/node.h"
#include "cluster/ring.h"
#include "cluster/wire.h"
#include "server/chost.h"
#include "server/cluster_config.h"
#include "server/engine.h"

#define PEER_HANDSHAKE_MS 3000u          /* TCP connect plus handshake, then the connection is dropped */
#define PEER_BACKOFF_MIN_MS 100u         /* first reconnect delay; doubles up to the max */
#define PEER_BACKOFF_MAX_MS 1000u      /* a restarted peer is dialled again within about a second */
#define PEER_HOLD_MS 2000u             /* frames for a peer without a session wait this long for one */
#define PEER_SENDQ_BYTES_MAX (64u << 20) /* sealed frames queued on one connection; more are dropped */
#define PEER_PENDING_BYTES_MAX (8u << 20) /* frames held while the connection comes up */
#define PEER_INBOUND_MAX 64u             /* connections not yet authenticated, at once (beyond: the oldest is dropped) */
#define PEER_IOV_MAX 256u                /* message pieces in one sendmsg */
#define PEER_IN_BYTES_MIN (64u << 10)
#define PEER_HS_BYTES 256u               /* handshake output of a whole session (80 B each way) */
#define CHOST_BACKLOG_MAX 65536u         /* requests waiting for room in the cnode */
#define CHOST_KEY_BUCKETS 4096u          /* in-flight writes by key */
#define CHOST_FREE_REQS_MAX 4096u

enum peer_ev_kind { PEV_CONNECT = 1, PEV_RECV, PEV_SEND, PEV_ACCEPT, PEV_CANCEL };

/* io_uring user_data anchor (EV_PEER): which connection and which I/O. */
struct peer_ev {
	struct pconn *pc; /* NULL for the listening socket's accept */
	uint8_t kind;     /* enum peer_ev_kind */
} __attribute__((aligned(16)));

/* One TCP connection to a peer, through its wire session. A connection is
 * freed only once dead and no SQE refers to it (refs == 0); frames queued
 * on it belong to the kernel while a send is armed. */
struct pconn {
	struct peer_ev ev_conn, ev_recv, ev_send;
	struct chost *ch;
	struct pconn *prev, *next;  /* chost's list */
	struct peer *peer;          /* connector: the peer dialled; acceptor: NULL until authenticated */
	int fd;
	enum wire_role role;
	struct wire w;
	bool up;                    /* session authenticated and adopted by its peer */
	bool dead;                  /* closed: no more I/O is started */
	bool recv_armed, send_armed, connect_armed;
	unsigned refs;              /* SQEs in flight */
	char addr[72];              /* the other side, "ip:port" */
	uint64_t deadline_ms;       /* handshake deadline; 0 once up */
	struct sockaddr_storage sa;
	socklen_t sa_len;
	uint8_t *in;                /* received, not yet consumed */
	size_t in_len, in_cap;
	uint8_t hs[PEER_HS_BYTES];  /* handshake bytes: appended, never moved */
	size_t hs_len, hs_off;
	struct cnode_frame *u_head, *u_tail; /* messages waiting to be sealed, in order */
	uint64_t u_bytes;           /* their wire bytes at most (each alone in a frame) */
	struct cnode_frame *q_head, *q_tail; /* sealed messages, in seal order */
	size_t q_off;               /* bytes of q_head's piece already sent */
	uint64_t q_bytes;           /* their pieces' bytes */
	struct iovec iov[PEER_IOV_MAX];
	struct msghdr msg;
};

enum peer_state { PEER_DOWN = 0, PEER_CONNECTING, PEER_HANDSHAKE, PEER_UP };

/* Another member. The lower node id dials the higher: one connection per
 * pair. */
struct peer {
	uint16_t id;
	const struct cluster_peer *cfg;
	struct sockaddr_storage sa;
	socklen_t sa_len;
	bool dialer;                /* we dial it (our id is lower) */
	struct pconn *conn;         /* dialling, handshaking or up; NULL when down */
	uint64_t retry_at_ms;       /* dialer: next attempt */
	uint32_t backoff_ms;
	bool fail_logged;           /* a failed attempt was logged since the last session */
	struct cnode_frame *p_head, *p_tail; /* unsealed frames waiting for the session */
	uint64_t p_bytes;
	uint64_t p_since_ms;        /* when the oldest of them was queued */
	uint64_t up_since_ms;
	/* counters */
	uint64_t bytes_in, bytes_out, frames_in, frames_out, frames_dropped; /* frames_*: messages */
	uint64_t batches_out;       /* wire frames sealed (each a batch of messages) */
	uint64_t sessions, disconnects, refusals;
};

/* A request the router took: one eop, one creq. */
struct chreq {
	struct creq rq;
	struct eop *op;
	struct chost *ch;
	struct chreq *next;         /* backlog, ready list or free list */
	struct chreq *knext;        /* the key's slot: writes of the key after this one */
	struct kslot *ks;           /* writes: the key's slot */
	bool write;                 /* a key's write (kslot), or a write's timeout semantics */
	bool keyless;               /* FLUSH, SCAN, COUNT: no key */
};

/* Writes of one key in flight at this coordinator: head runs, the rest wait
 * in order (so writes through one node apply in arrival order). */
struct kslot {
	struct kslot *next;         /* bucket chain, or free list */
	uint64_t hash;
	uint8_t keyspace;
	struct chreq *head, *tail;
};

struct chost {
	struct server *srv;
	const struct cluster_config *cc;
	struct worker *w;           /* worker 0, once attached */
	struct store *s;
	struct engine *eng;
	struct cnode *cn;
	struct ring ring;
	struct cnode_identity id;
	uint8_t wire_key[WIRE_KEY_BYTES];
	uint8_t nmax;               /* the largest N of the keyspaces (capped): status and ring views */
	/* peers */
	int listen_fd;
	struct peer_ev ev_accept, ev_cancel;
	bool accept_armed;
	struct peer peers[CLUSTER_PEERS_MAX];
	unsigned npeers;
	struct pconn *conns;
	unsigned nconns, ninbound;
	uint64_t timer_ms;          /* earliest retry or handshake deadline */
	/* requests */
	struct chreq *free_reqs;
	unsigned nfree;
	struct chreq *backlog_head, *backlog_tail;
	unsigned nbacklog;
	struct chreq *ready_head, *ready_tail;
	struct kslot *kslots[CHOST_KEY_BUCKETS];
	struct kslot *free_kslots;
	uint64_t reqs_open;
	/* stop */
	bool stopping, peers_closed;
	uint64_t stop_deadline_ms;
	/* counters */
	uint64_t refused_handshakes, refused_members, inbound_over_limit, frames_no_peer;
	uint64_t over_limit_logged_ms, over_limit_unlogged; /* on_accept's warning, once a second */
	uint64_t reqs_total, reqs_busy;
};

/* peer.c */
int peer_setup(struct chost *ch);                 /* resolve addresses, listen (before threads) */
void peer_start(struct chost *ch);                /* worker 0: accept and first dials */
void peer_timers(struct chost *ch, uint64_t now_ms);
void peer_route_frames(struct chost *ch, struct cnode_frame *f);
void peer_flush(struct chost *ch);                /* start sends where frames wait */
void peer_on_event(struct chost *ch, struct peer_ev *ev, int res, unsigned cqe_flags);
void peer_close_all(struct chost *ch);            /* stop: close every connection and the listener */
bool peer_all_closed(const struct chost *ch);
void peer_free_all(struct chost *ch);             /* after the ring is gone */
enum peer_state peer_state(const struct peer *p);
const char *peer_state_name(enum peer_state s);
struct peer *peer_by_id(struct chost *ch, uint16_t id);

/* chost_view.c */
void chost_render_status(struct chost *ch, struct resp_buf *b);
void chost_render_ring(struct chost *ch, struct resp_buf *b);

#endif
