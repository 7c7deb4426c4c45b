/* server_int.h - private to src/server: threads, connections, commands.
 * Nothing outside src/server includes it (the public face is server.h).
 *
 * Threads: `threads` workers, each with its own io_uring for its clients
 * (accept, recv, send on its own SO_REUSEPORT socket). Worker 0 also hosts
 * the engine (the store's thread) and the HTTP endpoint, and catches
 * SIGTERM/SIGINT. Workers hand store operations to the engine and get them
 * back through lock-free lists (mpsc.h); nothing on the request path takes
 * a lock.
 */
#ifndef DV_SERVER_INT_H
#define DV_SERVER_INT_H

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>

#include "resp/resp.h"
#include "server/config.h"
#include "server/engine.h"
#include "server/keydeps.h"
#include "server/metrics.h"
#include "server/mpsc.h"

/* io_uring user_data: a 16-byte aligned pointer with the event type in the
 * low 4 bits. */
enum ev_type {
	EV_ACCEPT = 1,
	EV_RECV,
	EV_SEND,
	EV_WAKE,
	EV_TICK,
	EV_SIGNAL,
	EV_HTTP_ACCEPT,
	EV_HTTP_RECV,
	EV_HTTP_SEND,
	EV_CANCEL,
	EV_PEER,        /* cluster mode, worker 0: a peer connection (struct peer_ev, chost.h) */
};
#define EV_TYPE_MASK 15u

/* Limits of the network layer; see docs/ARCHITECTURE.md "Node server". */
#define NET_ARGS_MAX 262144u          /* args of one request (MSET pairs, MGET keys) */
#define NET_INLINE_BYTES_MAX 65536u   /* one inline command line */
/* Before AUTH when a password is set: Redis's bounds on the count and on
 * one bulk string (its "unauthenticated multibulk/bulk length"), and one
 * on the whole request, so an unauthenticated client holds at most about
 * 21 KiB of input and 16 KiB of replies. */
#define NET_INLINE_COPY_BYTES (NET_INLINE_BYTES_MAX + 2u) /* a line, its CR LF: what an inline parse reads */
#define NET_PREAUTH_ARGS_MAX 10u
#define NET_PREAUTH_ARG_BYTES_MAX 16384u
#define NET_PREAUTH_REQUEST_BYTES_MAX (NET_PREAUTH_ARG_BYTES_MAX + 1024u)
#define NET_PREAUTH_IN_BYTES_MAX (NET_PREAUTH_REQUEST_BYTES_MAX + NET_IN_BYTES_MIN) /* input buffer before AUTH */
#define NET_PREAUTH_OUT_PAUSE_BYTES 16384u /* unsent replies above which a client before AUTH is not read */
#define NET_IN_BYTES_MIN 4096u        /* a connection's first input buffer */
#define NET_OUT_PAUSE_BYTES (1u << 20) /* unsent replies above which a client is not read */
#define NET_RING_ENTRIES 4096u
#define NET_CMD_FREE_MAX 4096u        /* command objects a worker keeps for reuse */
#define NET_SHUTDOWN_GRACE_MS 10000u  /* after SIGTERM: time to finish replies */
#define NET_NAME_BYTES_MAX 64u        /* CLIENT SETNAME */
#define NET_LINGER_MS 2000u           /* after an error reply: drain input before closing */
#define NET_CONN_OPS_MAX 65536u       /* store operations of one client in flight before it is not read */
#define NET_CMD_OPS_CHUNK 4096u       /* store operations of one command in flight */

/* CLIENT REPLY: every reply, none, or none for the next command. */
enum conn_reply { CONN_REPLY_ON = 0, CONN_REPLY_OFF, CONN_REPLY_SKIP };

/* CONFIG SET: the directives a running server may change. Every thread
 * reads them, so they are atomics (relaxed: a new value is taken at the
 * next read, nothing else depends on it); the rest of server_config is
 * fixed at start. */
struct srv_runtime {
	_Atomic uint32_t timeout_s, auth_timeout_s, request_timeout_s, max_pipeline;
};

struct server;
struct worker;
struct conn;
struct cmd_def;
struct cmd_keys;

/* One client command whose reply is not written yet: waiting for its eops
 * or behind an earlier command of the same connection. */
struct cmd {
	struct cmd *next;          /* connection FIFO, or worker free list */
	struct conn *conn;
	const struct cmd_def *def;
	uint32_t nops, ops_done;   /* of the chunk in flight (cmd.h: fold) */
	struct eop *ops;           /* &one, or an array of nops */
	uint64_t start_ns;
	uint64_t cost;             /* bytes reserved for it in conn->held_bytes */
	uint32_t flags;            /* command-specific */
	int err;                   /* multi-key: the first error of its ops */
	int64_t count;             /* multi-key: keys found or changed (MGET: its keys) */
	struct cmd_keys *keys;     /* the keys of its later chunks, or NULL */
	struct eop_budget budget;  /* MGET: value bytes its reply may still take */
	uint8_t db;                /* cluster mode: the connection's keyspace when it ran */
	bool complete;
	bool has_reply;            /* answered at once: reply holds the bytes */
	bool silent;               /* CLIENT REPLY OFF/SKIP: its reply is dropped */
	bool more;                 /* a command of steps: another step follows (cmd.h) */
	uint8_t step;              /* which step is out */
	int64_t n0, n1;            /* command-specific, kept across steps */
	uint64_t u0, u1;
	char *stash;               /* bytes a later step or the reply needs (cmd_stash), freed with the cmd */
	uint32_t stash_len;
	struct resp_buf reply;     /* has_reply; MGET: its reply being built */
	struct store_stats stats;  /* INFO, DBSIZE */
	struct vcache_stats cache_stats;
	struct engine_counters counters;
	struct eop one;
};

struct conn {
	struct conn *prev, *next;  /* worker's list */
	struct conn *dirty_next;   /* worker's list of connections with output */
	struct worker *w;
	int fd;
	uint64_t id;
	char addr[64];             /* ip:port of the peer */
	char laddr[64];
	char name[NET_NAME_BYTES_MAX + 1];
	/* Input: bytes [in_start, in_len) received and not yet executed;
	 * in_need (from the parser) counts from in. */
	char *in;
	size_t in_start, in_len, in_cap, in_need;
	/* Output: replies are appended to out; sending is the kernel's while
	 * send_armed. */
	struct resp_buf out, sending;
	size_t sent;
	/* Commands in arrival order; replies leave in this order. */
	struct cmd *head, *tail;
	unsigned pending;
	unsigned refs;             /* SQEs in flight for this connection */
	struct keydeps deps;       /* its keys with writes in flight, or GETs parked on one (conn.c) */
	uint32_t writes_pending;   /* all its writes in flight (PUT, DEL, RMW) */
	uint32_t rmws_pending;     /* its RMWs in flight (a FLUSH waits for them: their write comes later) */
	uint32_t flushes_pending;  /* its FLUSHes in flight (cluster mode: every later command waits) */
	uint32_t ops_pending;      /* store operations of its commands in flight */
	uint64_t held_bytes;       /* reserved by its commands not yet delivered (cmd->cost) */
	struct cmd *chunking;      /* its command with chunks still to submit, or NULL */
	uint8_t proto;             /* 2 or 3 (HELLO) */
	uint8_t db;                /* SELECT: the keyspace in cluster mode */
	uint8_t reply_mode;        /* CLIENT REPLY: enum conn_reply (SKIP: set by the command running now) */
	bool reply_skip;           /* the reply of the command running now is dropped (SKIP before) */
	bool authed;
	bool recv_armed, send_armed, dirty;
	bool waiting;              /* the next request waits for an earlier command (counted once) */
	bool eof;                  /* no more requests will be parsed */
	bool peer_eof;             /* the peer closed its side (or we stopped reading) */
	bool lingering;            /* replies sent, FIN sent: discarding input until EOF */
	uint64_t linger_deadline_ms;
	bool closing;              /* close once replies are sent */
	bool dead;                 /* close now: send nothing more */
	uint64_t created_ms, active_ms, partial_since_ms;
	uint64_t recv_round;       /* engine_round() when its latest bytes were received */
	const char *last_cmd;
};

struct http_conn {
	struct worker *w;
	struct http_conn *prev, *next; /* worker's list, for the timeout */
	uint64_t deadline_ms;
	bool timed_out;
	int fd;
	size_t len;
	struct resp_buf out;
	size_t sent;
	char in[8192];
} __attribute__((aligned(16)));

struct worker {
	unsigned idx;
	struct server *srv;
	const struct server_config *cfg;
	struct io_uring ring;
	pthread_t thread;
	int listen_fd;
	int http_fd;               /* worker 0 only, or -1 */
	int sig_fd;                /* worker 0 only */
	struct waker waker;
	struct eop_sink sink;
	bool host;                 /* hosts the engine */
	struct conn *conns;
	unsigned nconns;
	struct conn *dirty;
	struct cmd *free_cmds;
	unsigned free_count;
	struct resp_arg *argv;     /* NET_ARGS_MAX parse slots */
	char *inline_copy;         /* NET_INLINE_COPY_BYTES: an inline request is parsed from a copy */
	struct eop *submit_first, *submit_last; /* handed to the engine at the end of a round */
	struct metrics_worker *m;
	uint64_t now_ms, now_ns;
	bool stopping, accept_armed, http_armed;
	bool ring_disabled;        /* created disabled: the worker's thread enables it */
	bool maybe_reap;           /* a connection may be ready to free */
	unsigned http_conns;       /* HTTP requests being answered (at most HTTP_CONNS_MAX) */
	struct http_conn *http_list;
	uint64_t stop_deadline_ms;
	uint64_t wake_buf;
	struct __kernel_timespec tick_ts;
	struct signalfd_siginfo sig_buf;
	/* user_data anchors for the non-connection events */
	struct { char pad; } __attribute__((aligned(16))) ev_accept, ev_wake, ev_tick, ev_signal, ev_http, ev_cancel;
};

struct server {
	const struct server_config *cfg;
	struct dev *dev;
	struct store *store;
	struct engine *engine;
	struct chost *chost;       /* cluster mode (chost.h), on worker 0; NULL otherwise */
	struct worker *workers;
	unsigned nworkers;
	struct metrics *metrics;
	_Atomic bool stopping;
	_Atomic unsigned workers_running;
	_Atomic uint64_t next_conn_id;
	_Atomic unsigned clients;
	uint64_t start_ms;
	uint16_t port, http_port;  /* bound (port 0 resolved) */
	char run_id[41];
	int16_t key_prefix;        /* keymap.h: the byte before every store key, or -1 */
	struct srv_runtime rt;     /* CONFIG SET: the directives that change at run time */
};

/* server.c */
/* bind() fd to sa, retrying EADDRINUSE for up to SERVER_BIND_RETRY_MS: a
 * process of the same node killed a moment ago still holds its listening
 * sockets while the kernel tears its io_uring down (a few ms, longer under
 * load), so a restart right after kill -9 would fail. 0 or -errno. */
#define SERVER_BIND_RETRY_MS 5000
int server_bind(int fd, const struct sockaddr *sa, socklen_t len, const char *what);

/* worker.c */
/* An SQE of w's ring; when the ring is full, what is queued is submitted
 * first (bounded retries, then an assertion: the ring is sized for it). */
struct io_uring_sqe *worker_get_sqe(struct worker *w);
void worker_arm_recv(struct worker *w, struct conn *c);
void worker_mark_dirty(struct worker *w, struct conn *c);
void worker_submit_eop(struct worker *w, struct eop *e);
uint64_t worker_now_ns(void);

/* conn.c */
struct conn *conn_new(struct worker *w, int fd);
void conn_on_input(struct conn *c);            /* parse and run what arrived */
void conn_on_eop_done(struct eop *e);          /* a store operation came back */
void conn_close(struct conn *c, const char *why);
bool conn_reapable(const struct conn *c);
void conn_free(struct conn *c);
void conn_tick(struct conn *c);                /* timeouts, once a second */
struct cmd *cmd_alloc(struct worker *w);
void cmd_free(struct worker *w, struct cmd *cmd);

/* http.c */
void http_accept(struct worker *w, int fd);
void http_on_recv(struct http_conn *h, int res);
void http_on_send(struct http_conn *h, int res);
void http_tick(struct worker *w);                /* times out slow HTTP clients */

#endif
