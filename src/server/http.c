/* http.c - the observability endpoint on worker 0: GET /metrics
 * (Prometheus), /health, /status (JSON). One request per connection,
 * answered then closed; requests over 8 KiB get 400; at most HTTP_CONNS_MAX
 * (64) at once, more get 503; a request not answered within 10 s (a slow
 * client) is dropped.
 * Runs on the engine's host thread, so the store's stats are read directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/assert.h"
#include "server/chost.h"
#include "server/cmd.h"
#include "server/log.h"
#include "server/server.h"
#include "server/server_int.h"

#define HTTP_CONNS_MAX 64u
#define HTTP_TIMEOUT_MS 10000u /* a request and its answer */

/* Shut down the sockets of requests past their deadline: their pending
 * receive or send then fails and frees them. */
void http_tick(struct worker *w)
{
	for (struct http_conn *h = w->http_list; h; h = h->next) {
		if (!h->timed_out && w->now_ms > h->deadline_ms) {
			h->timed_out = true;
			shutdown(h->fd, SHUT_RDWR);
		}
	}
}

static void *hud(struct http_conn *h, enum ev_type t) { return (void *)((uintptr_t)h | t); }

static void http_arm_recv(struct http_conn *h)
{
	struct io_uring_sqe *sqe = worker_get_sqe(h->w);
	io_uring_prep_recv(sqe, h->fd, h->in + h->len, sizeof(h->in) - 1 - h->len, 0);
	io_uring_sqe_set_data(sqe, hud(h, EV_HTTP_RECV));
}

static void http_arm_send(struct http_conn *h)
{
	struct io_uring_sqe *sqe = worker_get_sqe(h->w);
	io_uring_prep_send(sqe, h->fd, h->out.data + h->sent, h->out.len - h->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, hud(h, EV_HTTP_SEND));
}

static void http_free(struct http_conn *h)
{
	DV_ASSERT(h->w->http_conns > 0);
	h->w->http_conns--;
	if (h->prev)
		h->prev->next = h->next;
	else
		h->w->http_list = h->next;
	if (h->next)
		h->next->prev = h->prev;
	close(h->fd);
	resp_buf_free(&h->out);
	free(h);
}

void http_accept(struct worker *w, int fd)
{
	if (w->http_conns >= HTTP_CONNS_MAX) {
		static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		ssize_t r = send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		DV_UNUSED(r);
		close(fd);
		return;
	}
	struct http_conn *h = aligned_alloc(16, sizeof(*h));
	if (!h) {
		close(fd);
		return;
	}
	memset(h, 0, offsetof(struct http_conn, in));
	w->http_conns++;
	h->deadline_ms = w->now_ms + HTTP_TIMEOUT_MS;
	h->next = w->http_list;
	if (w->http_list)
		w->http_list->prev = h;
	w->http_list = h;
	h->w = w;
	h->fd = fd;
	resp_buf_init(&h->out);
	http_arm_recv(h);
}

static void collect_view(struct worker *w, struct metrics_view *v, struct metrics_worker **ms,
			 const char **names, struct store_stats *st, struct vcache_stats *cs)
{
	struct engine_counters ctr;
	engine_get_counters(w->srv->engine, &ctr);
	engine_cache_stats(w->srv->engine, cs);
	struct server *srv = w->srv;
	for (unsigned i = 0; i < srv->nworkers; i++)
		ms[i] = srv->workers[i].m;
	for (unsigned k = 0; k < cmd_count(); k++)
		names[k] = cmd_by_index(k)->name;
	engine_stats(srv->engine, st);
	*v = (struct metrics_view){.workers = ms, .nworkers = srv->nworkers, .cmd_names = names,
				   .ncmds = cmd_count(), .store = st, .cache = cs,
				   .expired_deleted = ctr.expiry_deleted,
				   .clients = atomic_load_explicit(&srv->clients, memory_order_relaxed),
				   .uptime_s = (w->now_ms - srv->start_ms) / 1000,
				   .engine_in_flight = engine_in_flight(srv->engine)};
}

static void status_json(struct worker *w, const struct metrics_view *v, struct resp_buf *b)
{
	const struct store_stats *st = v->store;
	uint64_t calls = 0;
	for (unsigned k = 0; k < v->ncmds; k++)
		calls += metrics_sum_calls(v, k);
	char buf[1024];
	int n = snprintf(buf, sizeof(buf),
			 "{\"version\":\"%s\",\"run_id\":\"%s\",\"uptime_seconds\":%llu,\"port\":%u,"
			 "\"threads\":%u,\"clients\":%llu,\"commands\":%llu,\"store\":{\"failed\":%s,"
			 "\"keys\":%llu,\"tombstones\":%llu,\"index_bytes\":%llu,\"zones_total\":%u,"
			 "\"zones_empty\":%u,\"zone_bytes\":%llu,\"device_bytes_written\":%llu,"
			 "\"user_bytes\":%llu,\"zone_model\":\"%s\",\"zone_capacity\":%llu,"
			 "\"zone_max_open\":%u,\"zone_max_active\":%u,\"zones_unusable\":%u},\"healthy\":%s",
			 DYNVME_VERSION, w->srv->run_id, (unsigned long long)v->uptime_s, w->srv->port,
			 w->srv->nworkers, (unsigned long long)v->clients, (unsigned long long)calls,
			 st->failed ? "true" : "false", (unsigned long long)(st->keys - st->tombstones),
			 (unsigned long long)st->tombstones, (unsigned long long)st->index_bytes, st->zones_total,
			 st->zones_empty, (unsigned long long)st->zone_bytes,
			 (unsigned long long)st->device_bytes_written, (unsigned long long)st->user_bytes,
			 st->zone_model ? st->zone_model : "emulated", (unsigned long long)st->zone_cap,
			 st->dev_max_open_zones, st->dev_max_active_zones, st->zones_unusable,
			 st->failed ? "false" : "true");
	resp_add_raw(b, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	if (w->srv->chost)
		chost_status_json(w->srv->chost, b);
	resp_add_raw(b, "}\n", 2);
}

static void respond(struct http_conn *h, int code, const char *type, const struct resp_buf *body)
{
	const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed"
					: code == 503 ? "Service Unavailable" : "Bad Request";
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 code, reason, type, body->len);
	h->out.len = 0;
	resp_add_raw(&h->out, head, (size_t)n);
	resp_add_raw(&h->out, body->data ? body->data : "", body->len);
	h->sent = 0;
	if (h->out.len == 0) {
		http_free(h);
		return;
	}
	http_arm_send(h);
}

static void handle(struct http_conn *h)
{
	struct worker *w = h->w;
	struct resp_buf body;
	resp_buf_init(&body);
	char method[8] = "", path[128] = "";
	int code = 200;
	const char *type = "text/plain; charset=utf-8";
	if (sscanf(h->in, "%7s %127s", method, path) != 2) {
		code = 400;
		resp_add_raw(&body, "bad request\n", 12);
	} else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		code = 405;
		resp_add_raw(&body, "only GET\n", 9);
	} else {
		struct metrics_worker *ms[CONFIG_THREADS_MAX];
		const char *names[METRICS_CMDS_MAX];
		struct store_stats st;
		struct vcache_stats cs;
		struct metrics_view v;
		collect_view(w, &v, ms, names, &st, &cs);
		char *q = strchr(path, '?');
		if (q)
			*q = '\0';
		if (!strcmp(path, "/metrics")) {
			type = "text/plain; version=0.0.4; charset=utf-8";
			metrics_render_prometheus(&body, &v);
			if (w->srv->chost)
				chost_metrics(w->srv->chost, &body);
		} else if (!strcmp(path, "/health")) {
			code = st.failed ? 503 : 200;
			resp_add_raw(&body, st.failed ? "store failed\n" : "ok\n", st.failed ? 13 : 3);
		} else if (!strcmp(path, "/status")) {
			type = "application/json";
			status_json(w, &v, &body);
		} else {
			code = 404;
			resp_add_raw(&body, "not found: try /metrics, /health or /status\n", 44);
		}
	}
	respond(h, code, type, &body);
	resp_buf_free(&body);
}

void http_on_recv(struct http_conn *h, int res)
{
	if (res <= 0) {
		http_free(h);
		return;
	}
	h->len += (size_t)res;
	h->in[h->len] = '\0';
	if (strstr(h->in, "\r\n\r\n") || strstr(h->in, "\n\n")) {
		handle(h);
		return;
	}
	if (h->len >= sizeof(h->in) - 1) {
		struct resp_buf body;
		resp_buf_init(&body);
		resp_add_raw(&body, "request too large\n", 18);
		respond(h, 400, "text/plain", &body);
		resp_buf_free(&body);
		return;
	}
	http_arm_recv(h);
}

void http_on_send(struct http_conn *h, int res)
{
	if (res <= 0) {
		http_free(h);
		return;
	}
	h->sent += (size_t)res;
	if (h->sent < h->out.len) {
		http_arm_send(h);
		return;
	}
	shutdown(h->fd, SHUT_WR);
	http_free(h);
}
