/* cli_resp.c - the CLI's blocking RESP client (contract: cli_resp.h). */
#include "cli/cli_resp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"

static int fail(char *err, size_t err_len, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t err_len, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return code;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int split_hostport(const char *s, char *host, size_t host_len, char *port, size_t port_len)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		return -EINVAL;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (*s == '[' && hl >= 2 && s[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= host_len || strlen(colon + 1) >= port_len)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, port_len, "%s", colon + 1);
	return 0;
}

/* Wait until fd is ready for events, at most until deadline. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int cli_connect(const char *hostport, unsigned timeout_ms, int *fd, char *err, size_t err_len)
{
	char host[256], port[16];
	if (split_hostport(hostport, host, sizeof(host), port, sizeof(port)))
		return fail(err, err_len, -EINVAL, "'%s' is not HOST:PORT", hostport);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai)
		return fail(err, err_len, -EINVAL, "%s: %s", hostport, gai_strerror(gai));
	int s = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int rc = s < 0 ? -errno : 0;
	if (!rc && connect(s, res->ai_addr, res->ai_addrlen) && errno != EINPROGRESS)
		rc = -errno;
	freeaddrinfo(res);
	if (!rc)
		rc = wait_fd(s, POLLOUT, now_ms() + timeout_ms);
	if (!rc) {
		int so = 0;
		socklen_t sl = sizeof(so);
		getsockopt(s, SOL_SOCKET, SO_ERROR, &so, &sl);
		rc = -so;
	}
	if (rc) {
		if (s >= 0)
			close(s);
		return fail(err, err_len, rc, "cannot connect to %s: %s", hostport, strerror(-rc));
	}
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd = s;
	return 0;
}

static void rv_clear(struct rv *v)
{
	for (size_t i = 0; i < v->n; i++)
		rv_clear(&v->el[i]);
	free(v->el);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

void rv_free(struct rv *v)
{
	if (!v)
		return;
	rv_clear(v);
	free(v);
}

/* Parser over a complete buffer: 1 parsed (*pos advanced), 0 need more,
 * negative: malformed. */
struct parser {
	const char *b;
	size_t len, pos;
};

static int parse_line(struct parser *p, const char **line, size_t *n)
{
	const char *s = p->b + p->pos;
	const char *e = memchr(s, '\n', p->len - p->pos);
	if (!e)
		return 0;
	if (e == s || e[-1] != '\r')
		return -EPROTO;
	*line = s;
	*n = (size_t)(e - 1 - s);
	p->pos = (size_t)(e + 1 - p->b);
	return 1;
}

static int parse_int(const char *s, size_t n, int64_t *out)
{
	char buf[24];
	if (n == 0 || n >= sizeof(buf))
		return -EPROTO;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end = NULL;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end)
		return -EPROTO;
	*out = v;
	return 0;
}

static int parse_value(struct parser *p, struct rv *v, unsigned depth);

static int parse_array(struct parser *p, struct rv *v, int64_t n, unsigned depth)
{
	if (n < 0) {
		v->type = '_';
		return 1;
	}
	if (depth >= CLI_REPLY_DEPTH_MAX || (uint64_t)n > CLI_REPLY_BYTES_MAX / 3)
		return -EPROTO; /* each element takes at least 3 bytes */
	v->el = calloc((size_t)n ? (size_t)n : 1, sizeof(*v->el));
	if (!v->el)
		return -ENOMEM;
	v->n = (size_t)n;
	for (size_t i = 0; i < v->n; i++) {
		int r = parse_value(p, &v->el[i], depth + 1);
		if (r <= 0)
			return r;
	}
	return 1;
}

static int parse_value(struct parser *p, struct rv *v, unsigned depth)
{
	const char *line;
	size_t n;
	int r = parse_line(p, &line, &n);
	if (r <= 0)
		return r;
	memset(v, 0, sizeof(*v));
	v->type = line[0];
	int64_t x = 0;
	switch (line[0]) {
	case '+':
	case '-':
		v->s = strndup(line + 1, n - 1);
		v->len = n - 1;
		return v->s ? 1 : -ENOMEM;
	case ':':
		return parse_int(line + 1, n - 1, &v->i) ? -EPROTO : 1;
	case '_':
		return 1;
	case '$':
		if (parse_int(line + 1, n - 1, &x))
			return -EPROTO;
		if (x < 0) {
			v->type = '_';
			return 1;
		}
		if ((uint64_t)x > CLI_REPLY_BYTES_MAX)
			return -EMSGSIZE;
		if (p->len - p->pos < (size_t)x + 2)
			return 0;
		v->s = malloc((size_t)x + 1);
		if (!v->s)
			return -ENOMEM;
		memcpy(v->s, p->b + p->pos, (size_t)x);
		v->s[x] = '\0';
		v->len = (size_t)x;
		p->pos += (size_t)x + 2;
		return 1;
	case '*':
		if (parse_int(line + 1, n - 1, &x))
			return -EPROTO;
		return parse_array(p, v, x, depth);
	default:
		return -EPROTO;
	}
}

static int send_all(int fd, const char *b, size_t len, uint64_t deadline)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, b + off, len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r)
			return r;
	}
	return 0;
}

int cli_call(int fd, unsigned argc, const char *const *argv, unsigned timeout_ms, struct rv **out, char *err,
	     size_t err_len)
{
	uint64_t deadline = now_ms() + timeout_ms;
	char req[4096];
	size_t len = (size_t)snprintf(req, sizeof(req), "*%u\r\n", argc);
	for (unsigned i = 0; i < argc && len < sizeof(req); i++)
		len += (size_t)snprintf(req + len, sizeof(req) - len, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
	if (len >= sizeof(req))
		return fail(err, err_len, -E2BIG, "command too long");
	int rc = send_all(fd, req, len, deadline);
	if (rc)
		return fail(err, err_len, rc, "send: %s", strerror(-rc));
	size_t cap = 65536, have = 0;
	char *buf = malloc(cap);
	struct rv *v = calloc(1, sizeof(*v));
	for (rc = buf && v ? 0 : -ENOMEM; rc == 0;) {
		ssize_t r = recv(fd, buf + have, cap - have, 0);
		if (r == 0) {
			rc = fail(err, err_len, -ECONNRESET, "the server closed the connection");
			break;
		}
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				rc = fail(err, err_len, -errno, "recv: %s", strerror(errno));
			else if ((rc = wait_fd(fd, POLLIN, deadline)))
				rc = fail(err, err_len, rc, "no reply within %u ms", timeout_ms);
			continue;
		}
		have += (size_t)r;
		struct parser p = {.b = buf, .len = have};
		rv_clear(v);
		int pr = parse_value(&p, v, 0);
		if (pr > 0) {
			*out = v;
			free(buf);
			return 0;
		}
		if (pr < 0) {
			rc = fail(err, err_len, pr, "malformed reply");
			break;
		}
		if (have == cap) {
			if (cap >= CLI_REPLY_BYTES_MAX) {
				rc = fail(err, err_len, -EMSGSIZE, "reply larger than %u bytes", CLI_REPLY_BYTES_MAX);
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	free(buf);
	rv_free(v);
	if (rc == -ENOMEM)
		fail(err, err_len, rc, "out of memory");
	return rc;
}

const struct rv *rv_get(const struct rv *pairs, const char *key)
{
	if (!pairs || pairs->type != '*')
		return NULL;
	for (size_t i = 0; i + 1 < pairs->n; i += 2)
		if ((pairs->el[i].type == '$' || pairs->el[i].type == '+') && !strcmp(pairs->el[i].s, key))
			return &pairs->el[i + 1];
	return NULL;
}

int64_t rv_int(const struct rv *pairs, const char *key, int64_t def)
{
	const struct rv *v = rv_get(pairs, key);
	return v && v->type == ':' ? v->i : def;
}

const char *rv_str(const struct rv *pairs, const char *key)
{
	const struct rv *v = rv_get(pairs, key);
	return v && (v->type == '$' || v->type == '+') ? v->s : "";
}
