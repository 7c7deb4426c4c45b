/* server.c - start-up and shutdown of a node.
 *
 *   open device -> recover store -> sockets, rings, engine -> workers run
 *     -> SIGTERM: workers stop accepting and reading, finish in-flight
 *        commands and replies, exit -> worker 0 drains the store -> close
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/error.h"
#include "base/fs.h"
#include "server/chost.h"
#include "server/keymap.h"
#include "server/log.h"
#include "server/server_int.h"

void *worker_main(void *arg);

int server_bind(int fd, const struct sockaddr *sa, socklen_t len, const char *what)
{
	uint64_t start = store_now_ms();
	bool logged = false;
	while (bind(fd, sa, len)) {
		int err = -errno;
		if (err != -EADDRINUSE || store_now_ms() - start >= SERVER_BIND_RETRY_MS)
			return err;
		if (!logged)
			log_warn("address in use, retrying", "what=%s for_ms=%u", what, SERVER_BIND_RETRY_MS);
		logged = true;
		struct timespec ts = {.tv_nsec = 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int listen_on(const char *addr, uint16_t port, bool reuseport, uint16_t *bound, const char *what)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	int gai = getaddrinfo(addr, ps, &hints, &res);
	if (gai) {
		log_error("bad bind address", "bind=%s error=\"%s\"", addr, gai_strerror(gai));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err = fd < 0 ? -errno : 0;
	int one = 1;
	if (!err && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		err = -errno;
	if (!err && reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		err = -errno;
	if (!err)
		err = server_bind(fd, res->ai_addr, res->ai_addrlen, what);
	if (!err && listen(fd, 1024))
		err = -errno;
	freeaddrinfo(res);
	if (err) {
		log_error("cannot listen", "bind=%s port=%u error=\"%s\"", addr, port, strerror(-err));
		if (fd >= 0)
			close(fd);
		return err;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static void raise_fd_limit(const struct server_config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	rlim_t want = (rlim_t)cfg->maxclients + 256;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want <= rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		log_warn("open file limit below maxclients", "limit=%llu maxclients=%u",
			 (unsigned long long)rl.rlim_cur, cfg->maxclients);
}

/* ./data/dynvme.img: create ./data when missing (the embedded default),
 * durably (its parent is synced), before the file that goes in it. */
static int make_parent_dir(const char *path)
{
	char copy[CONFIG_STR_MAX];
	snprintf(copy, sizeof(copy), "%s", path);
	char *dir = dirname(copy);
	struct stat st;
	if (stat(dir, &st) == 0)
		return 0;
	int err = dv_mkdir_durable(dir, 0755);
	if (err == -EEXIST)
		return 0; /* created meanwhile */
	if (err) {
		log_error("cannot create data directory", "dir=%s error=\"%s\"", dir, dv_strerror(err));
		return err;
	}
	log_info("created data directory", "dir=%s", dir);
	return 0;
}

static int open_store(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	int err = make_parent_dir(cfg->data);
	if (err)
		return err;
	struct dev_open_opts o = {.create_bytes = cfg->size_bytes, .queue_depth = 1024};
	struct stat fst;
	bool found = stat(cfg->data, &fst) == 0, absent = !found && errno == ENOENT;
	bool empty_file = found && S_ISREG(fst.st_mode) && fst.st_size == 0;
	if (empty_file)
		log_info("data file is empty (0 bytes): sizing and formatting it as a new one", "path=%s bytes=%llu",
			 cfg->data, (unsigned long long)cfg->size_bytes);
	if (absent || empty_file)
		log_info("creating the data file: writing zeros over all of it once (so later writes need no "
			 "file system metadata update); a few seconds per GiB",
			 "path=%s bytes=%llu", cfg->data, (unsigned long long)cfg->size_bytes);
	err = dev_open_path(&srv->dev, cfg->data, &o);
	if (err == -EBUSY) {
		log_error("cannot open data: another process has it open for writing (a dynvme already serving it?)",
			  "path=%s", cfg->data);
		return err;
	}
	if (err) {
		log_error("cannot open data", "path=%s error=\"%s\"", cfg->data, dv_strerror(err));
		return err;
	}
	struct store_config sc = {.zone_bytes = cfg->zone_bytes, .format_if_empty = true,
				  .batches_in_flight = cfg->write_batches};
	err = store_open(&srv->store, srv->dev, &sc);
	if (err == -DV_EFORMAT) {
		/* store.h: only an empty device (zeroes where a superblock goes) is formatted. */
		log_error("refusing to format: the data file or device holds data that is not dynvme's (not "
			  "empty, no dynvme superblock); point --data elsewhere, or empty it yourself to have dynvme format "
			  "it (delete the file; zero the first MiB of a device, e.g. blkdiscard -z -l 1MiB DEVICE)",
			  "path=%s", cfg->data);
		dev_close(srv->dev);
		return err;
	}
	if (err) {
		log_error("cannot open store", "path=%s error=\"%s\"", cfg->data, dv_strerror(err));
		dev_close(srv->dev);
		return err;
	}
	struct store_stats st;
	store_get_stats(srv->store, &st);
	log_info("store open", "path=%s bytes=%llu zones=%u zone_bytes=%llu keys=%llu recovery_ms=%.1f torn_tails=%u",
		 cfg->data, (unsigned long long)dev_info(srv->dev)->size_bytes, st.zones_total,
		 (unsigned long long)st.zone_bytes, (unsigned long long)(st.keys - st.tombstones),
		 (double)st.recovery_us / 1000.0, st.recovery_torn_tails);
	if (st.failed)
		log_error("the store opened failed: the device refused a write at open; serving reads, refusing writes "
			  "(INFO store_failed, /health 503)",
			  "path=%s", cfg->data);
	return 0;
}

static int worker_init(struct server *srv, unsigned idx)
{
	struct worker *w = &srv->workers[idx];
	w->idx = idx;
	w->srv = srv;
	w->cfg = srv->cfg;
	w->host = idx == 0;
	w->http_fd = w->sig_fd = w->listen_fd = -1;
	w->waker.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->sink.waker = &w->waker;
	w->argv = calloc(NET_ARGS_MAX, sizeof(*w->argv));
	w->inline_copy = malloc(NET_INLINE_COPY_BYTES);
	w->m = calloc(1, sizeof(*w->m));
	if (w->waker.efd < 0 || !w->argv || !w->inline_copy || !w->m)
		return -ENOMEM;
	/* One thread submits to this ring and reaps it, so completions can
	 * wait for that thread to enter the kernel (DEFER_TASKRUN) instead of
	 * interrupting it: far less lock traffic than a completion posted from
	 * softirq into a running thread. Disabled until the worker's own thread
	 * enables it (the single issuer). Older kernels: plain ring. */
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
					     IORING_SETUP_R_DISABLED};
	int err = io_uring_queue_init_params(NET_RING_ENTRIES, &w->ring, &p);
	w->ring_disabled = err == 0;
	if (err == -EINVAL)
		err = io_uring_queue_init(NET_RING_ENTRIES, &w->ring, 0);
	if (err) {
		log_error("io_uring setup failed", "error=\"%s\"", strerror(-err));
		return err;
	}
	int fd = listen_on(srv->cfg->bind, srv->port, srv->nworkers > 1, &srv->port, "resp");
	if (fd < 0)
		return fd;
	w->listen_fd = fd;
	return 0;
}

static void worker_fini(struct worker *w)
{
	if (w->ring.ring_fd > 0)
		io_uring_queue_exit(&w->ring);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	if (w->http_fd >= 0)
		close(w->http_fd);
	if (w->sig_fd >= 0)
		close(w->sig_fd);
	if (w->waker.efd >= 0)
		close(w->waker.efd);
	while (w->free_cmds) {
		struct cmd *c = w->free_cmds;
		w->free_cmds = c->next;
		resp_buf_free(&c->reply);
		free(c);
	}
	free(w->argv);
	free(w->inline_copy);
	free(w->m);
}

static int setup_signals(struct worker *w0)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before any thread starts, so every thread inherits it and
	 * the signals reach worker 0's signalfd only. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	w0->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return w0->sig_fd < 0 ? -errno : 0;
}

static void make_run_id(char *out)
{
	unsigned char r[20] = {0};
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		for (unsigned i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(rand() ^ (int)getpid());
	for (unsigned i = 0; i < sizeof(r); i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

static int start(struct server *srv)
{
	srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
	if (!srv->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < srv->nworkers; i++)
		srv->workers[i].waker.efd = srv->workers[i].listen_fd = srv->workers[i].http_fd =
			srv->workers[i].sig_fd = -1;
	int err = 0;
	for (unsigned i = 0; i < srv->nworkers && !err; i++)
		err = worker_init(srv, i);
	if (!err)
		err = setup_signals(&srv->workers[0]);
	if (err)
		return err;
	if (srv->cfg->http_port) {
		int fd = listen_on(srv->cfg->bind, srv->cfg->http_port, false, &srv->http_port, "http");
		if (fd < 0)
			return fd;
		srv->workers[0].http_fd = fd;
	}
	/* Cluster mode: no value cache (a replica's copy changes by other
	 * coordinators' writes, which the cache would not see). */
	uint64_t cache = srv->chost ? 0 : srv->cfg->cache_bytes;
	err = engine_open(&srv->engine, srv->store, &srv->workers[0].waker, cache);
	if (err)
		return err;
	if (srv->chost)
		engine_set_router(srv->engine, chost_route, srv->chost);
	err = dev_notify_fd(srv->dev, srv->workers[0].waker.efd);
	if (err)
		log_warn("device completions cannot wake the loop; polling", "error=\"%s\"", strerror(-err));
	return 0;
}

static int run_workers(struct server *srv)
{
	atomic_store(&srv->workers_running, srv->nworkers);
	unsigned started = 1;
	int err = 0;
	for (unsigned i = 1; i < srv->nworkers; i++, started++) {
		err = -pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
		if (err) {
			log_error("cannot start a thread", "error=\"%s\"", strerror(-err));
			atomic_store(&srv->stopping, true);
			atomic_fetch_sub(&srv->workers_running, srv->nworkers - started);
			break;
		}
	}
	log_info("ready", "bind=%s port=%u http_port=%u threads=%u pid=%d protected_mode=%s auth=%s",
		 srv->cfg->bind, srv->port, srv->http_port, srv->nworkers, (int)getpid(),
		 srv->cfg->protected_mode ? "yes" : "no", srv->cfg->requirepass[0] ? "required" : "none");
	worker_main(&srv->workers[0]);
	for (unsigned i = 1; i < started; i++)
		pthread_join(srv->workers[i].thread, NULL);
	return err;
}

int server_run(const struct server_config *cfg)
{
	log_init(cfg->log_level);
	struct server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->cfg = cfg;
	srv->rt.timeout_s = cfg->timeout_s;
	srv->rt.auth_timeout_s = cfg->auth_timeout_s;
	srv->rt.request_timeout_s = cfg->request_timeout_s;
	srv->rt.max_pipeline = cfg->max_pipeline;
	srv->nworkers = cfg->threads;
	srv->port = cfg->port;
	srv->start_ms = store_now_ms();
	make_run_id(srv->run_id);
	raise_fd_limit(cfg);
	int err = open_store(srv);
	if (err) {
		free(srv);
		return err;
	}
	srv->key_prefix = -1; /* cluster mode: the cluster node adds the keyspace byte */
	if (cluster_enabled(&cfg->cluster))
		err = chost_open(&srv->chost, srv);
	else
		err = keymap_open(srv);
	if (!err)
		err = start(srv);
	if (!err)
		err = run_workers(srv);
	int drain = srv->engine ? engine_drain(srv->engine) : 0;
	if (drain)
		log_error("store drain failed", "error=\"%s\"", dv_strerror(drain));
	chost_close(srv->chost); /* after the drain: no store op of the cnode is left */
	engine_close(srv->engine);
	store_close(srv->store);
	dev_close(srv->dev);
	for (unsigned i = 0; srv->workers && i < srv->nworkers; i++)
		worker_fini(&srv->workers[i]);
	chost_free(srv->chost); /* after the rings: no SQE refers to a peer connection */
	free(srv->workers);
	free(srv);
	if (!err && !drain)
		log_info("shutdown complete", "%s", "");
	return err ? err : drain;
}
