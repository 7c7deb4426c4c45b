/* cluster_config.c - parsing and validation of the cluster directives
 * (contract: cluster_config.h). */
#include "server/cluster_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void cluster_config_defaults(struct cluster_config *c)
{
	*c = (struct cluster_config){.partitions = CLUSTER_PARTITIONS_DEFAULT, .timeout_ms = CLUSTER_TIMEOUT_MS_DEFAULT};
	snprintf(c->internode_bind, sizeof(c->internode_bind), "127.0.0.1");
}

static const struct cluster_keyspace default_ks[2] = {
	{.defined = true, .name = "default", .n = 3, .r = 2, .w = 2, .policy = CLUSTER_SIBLINGS, .siblings_max = 16},
	{.defined = true, .name = "lww", .n = 3, .r = 2, .w = 2, .policy = CLUSTER_LWW, .siblings_max = 16},
};

const struct cluster_keyspace *cluster_keyspace(const struct cluster_config *c, unsigned i)
{
	if (i >= CLUSTER_KEYSPACES_MAX)
		return NULL;
	if (!c->ks_explicit)
		return i < 2 ? &default_ks[i] : NULL;
	return c->ks[i].defined ? &c->ks[i] : NULL;
}

bool cluster_keyspace_eff(const struct cluster_config *c, unsigned i, struct cluster_keyspace *out)
{
	const struct cluster_keyspace *k = cluster_keyspace(c, i);
	if (!k)
		return false;
	*out = *k;
	unsigned nodes = cluster_nodes(c);
	if (out->n > nodes)
		out->n = (uint8_t)nodes;
	if (out->r > out->n)
		out->r = out->n;
	if (out->w > out->n)
		out->w = out->n;
	return true;
}

/* A whole decimal number in [min, max]. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static bool numeric_host(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

int cluster_parse_hostport(const char *s, char *host, size_t host_len, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return -EINVAL;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (*s == '[') { /* [v6]:port */
		if (hl < 3 || s[hl - 1] != ']')
			return -EINVAL;
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= host_len)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	uint64_t p;
	if (parse_uint(colon + 1, 1, 65535, &p) || !numeric_host(host))
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

/* Up to max words of s (spaces and tabs between) into w[], in place. */
static unsigned split_words(char *s, char **w, unsigned max)
{
	unsigned n = 0;
	for (char *p = s; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (!*p)
			break;
		if (n == max)
			return max + 1;
		w[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return n;
}

static int set_peer(struct cluster_config *c, const char *value, char *err, size_t err_len)
{
	char buf[512];
	if (strlen(value) >= sizeof(buf))
		return fail(err, err_len, "peer: value too long");
	snprintf(buf, sizeof(buf), "%s", value);
	char *w[4];
	unsigned n = split_words(buf, w, 3);
	if (n < 2 || n > 3)
		return fail(err, err_len, "peer: expected 'ID HOST:PORT [CLIENT_HOST:PORT]', got '%s'", value);
	uint64_t id;
	if (parse_uint(w[0], 1, 65535, &id))
		return fail(err, err_len, "peer: node id '%s' is not 1..65535", w[0]);
	struct cluster_peer p = {.id = (uint16_t)id};
	if (cluster_parse_hostport(w[1], p.host, sizeof(p.host), &p.port))
		return fail(err, err_len, "peer %u: '%s' is not a numeric HOST:PORT (like 127.0.0.1:17001)", p.id, w[1]);
	if (n == 3) {
		char h[CLUSTER_HOST_BYTES];
		uint16_t port;
		if (cluster_parse_hostport(w[2], h, sizeof(h), &port))
			return fail(err, err_len, "peer %u: client address '%s' is not a numeric HOST:PORT", p.id, w[2]);
		snprintf(p.client, sizeof(p.client), "%s", w[2]);
	}
	for (unsigned i = 0; i < c->npeers; i++)
		if (c->peers[i].id == p.id)
			return fail(err, err_len, "peer %u: given twice", p.id);
	if (c->npeers == CLUSTER_PEERS_MAX)
		return fail(err, err_len, "peer: at most %u peers (%u nodes)", CLUSTER_PEERS_MAX, CLUSTER_PEERS_MAX + 1);
	c->peers[c->npeers++] = p;
	return 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= CLUSTER_NAME_BYTES)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* One "opt=value" of a keyspace directive into k. */
static int keyspace_option(struct cluster_keyspace *k, const char *opt, char *err, size_t err_len)
{
	const char *eq = strchr(opt, '=');
	if (!eq)
		return fail(err, err_len, "keyspace: expected name=value, got '%s'", opt);
	size_t nl = (size_t)(eq - opt);
	const char *v = eq + 1;
	uint64_t x;
	if (nl == 6 && !strncmp(opt, "policy", nl)) {
		if (!strcmp(v, "siblings"))
			k->policy = CLUSTER_SIBLINGS;
		else if (!strcmp(v, "lww"))
			k->policy = CLUSTER_LWW;
		else
			return fail(err, err_len, "keyspace: policy must be siblings or lww, got '%s'", v);
		return 0;
	}
	if (nl == 12 && !strncmp(opt, "siblings-max", nl)) {
		if (parse_uint(v, 1, CLUSTER_SIBLINGS_MAX, &x))
			return fail(err, err_len, "keyspace: siblings-max must be 1..%u, got '%s'", CLUSTER_SIBLINGS_MAX, v);
		k->siblings_max = (uint16_t)x;
		return 0;
	}
	if (nl == 1 && (*opt == 'n' || *opt == 'r' || *opt == 'w')) {
		if (parse_uint(v, 1, CLUSTER_N_MAX, &x))
			return fail(err, err_len, "keyspace: %c must be 1..%u, got '%s'", *opt, CLUSTER_N_MAX, v);
		*(*opt == 'n' ? &k->n : *opt == 'r' ? &k->r : &k->w) = (uint8_t)x;
		return 0;
	}
	return fail(err, err_len, "keyspace: unknown option '%.*s' (n, r, w, policy, siblings-max)", (int)nl, opt);
}

static int set_keyspace(struct cluster_config *c, const char *value, char *err, size_t err_len)
{
	char buf[512];
	if (strlen(value) >= sizeof(buf))
		return fail(err, err_len, "keyspace: value too long");
	snprintf(buf, sizeof(buf), "%s", value);
	char *w[8];
	unsigned n = split_words(buf, w, 7);
	if (n < 2 || n > 7)
		return fail(err, err_len, "keyspace: expected 'ID NAME [n=3] [r=2] [w=2] [policy=siblings|lww] "
					  "[siblings-max=16]', got '%s'", value);
	uint64_t id;
	if (parse_uint(w[0], 0, CLUSTER_KEYSPACES_MAX - 1, &id))
		return fail(err, err_len, "keyspace: id '%s' is not 0..%u", w[0], CLUSTER_KEYSPACES_MAX - 1);
	if (!valid_name(w[1]))
		return fail(err, err_len, "keyspace %u: name '%s' must be 1..%u letters, digits, _ or -", (unsigned)id,
			    w[1], CLUSTER_NAME_BYTES - 1);
	struct cluster_keyspace k = {.defined = true, .n = 3, .r = 2, .w = 2, .policy = CLUSTER_SIBLINGS,
				     .siblings_max = 16};
	snprintf(k.name, sizeof(k.name), "%s", w[1]);
	for (unsigned i = 2; i < n; i++) {
		int rc = keyspace_option(&k, w[i], err, err_len);
		if (rc)
			return rc;
	}
	if (k.r > k.n || k.w > k.n)
		return fail(err, err_len, "keyspace %u: r and w must not exceed n", (unsigned)id);
	if (c->ks_explicit && c->ks[id].defined)
		return fail(err, err_len, "keyspace %u: given twice", (unsigned)id);
	c->ks[id] = k;
	c->ks_explicit = true;
	return 0;
}

static int set_cluster_id(struct cluster_config *c, const char *value, char *err, size_t err_len)
{
	uint64_t v = 0;
	if (strlen(value) != 16)
		return fail(err, err_len, "cluster-id: expected 16 hex digits, got '%s'", value);
	for (unsigned i = 0; i < 16; i++) {
		int ch = (unsigned char)value[i];
		if (!isxdigit(ch))
			return fail(err, err_len, "cluster-id: expected 16 hex digits, got '%s'", value);
		v = v << 4 | (uint64_t)(isdigit(ch) ? ch - '0' : tolower(ch) - 'a' + 10);
	}
	c->cluster_id = v;
	c->cluster_id_set = true;
	return 0;
}

int cluster_config_set(struct cluster_config *c, const char *name, const char *value, char *err, size_t err_len)
{
	uint64_t v;
	int rc = 0;
	if (!strcasecmp(name, "node-id")) {
		if (parse_uint(value, 1, 65535, &v))
			return fail(err, err_len, "node-id: '%s' is not 1..65535", value);
		c->node_id = (uint16_t)v;
		return 0;
	}
	if (!strcasecmp(name, "cluster-id")) {
		rc = set_cluster_id(c, value, err, err_len);
	} else if (!strcasecmp(name, "cluster-secret-file")) {
		if (!*value || strlen(value) >= sizeof(c->secret_file))
			return fail(err, err_len, "cluster-secret-file: a path shorter than %zu bytes is required",
				    sizeof(c->secret_file));
		snprintf(c->secret_file, sizeof(c->secret_file), "%s", value);
	} else if (!strcasecmp(name, "internode-bind")) {
		if (!numeric_host(value) || strlen(value) >= sizeof(c->internode_bind))
			return fail(err, err_len, "internode-bind: '%s' is not a numeric address", value);
		snprintf(c->internode_bind, sizeof(c->internode_bind), "%s", value);
	} else if (!strcasecmp(name, "internode-port")) {
		if (parse_uint(value, 1, 65535, &v))
			return fail(err, err_len, "internode-port: '%s' is not 1..65535", value);
		c->internode_port = (uint16_t)v;
	} else if (!strcasecmp(name, "peer")) {
		rc = set_peer(c, value, err, err_len);
	} else if (!strcasecmp(name, "partitions")) {
		if (parse_uint(value, 1, 65536, &v) || (v & (v - 1)))
			return fail(err, err_len, "partitions: '%s' is not a power of two 1..65536", value);
		c->partitions = (uint32_t)v;
	} else if (!strcasecmp(name, "keyspace")) {
		rc = set_keyspace(c, value, err, err_len);
	} else if (!strcasecmp(name, "cluster-checked-sets")) {
		if (!strcasecmp(value, "yes") || !strcmp(value, "1"))
			c->checked_sets = true;
		else if (!strcasecmp(value, "no") || !strcmp(value, "0"))
			c->checked_sets = false;
		else
			return fail(err, err_len, "cluster-checked-sets: '%s' is not yes or no", value);
	} else if (!strcasecmp(name, "cluster-timeout-ms")) {
		if (parse_uint(value, 10, 600000, &v))
			return fail(err, err_len, "cluster-timeout-ms: '%s' is not 10..600000", value);
		c->timeout_ms = (uint32_t)v;
	} else {
		return -ENOENT;
	}
	if (rc == 0)
		c->any_set = true;
	return rc;
}

int cluster_config_validate(const struct cluster_config *c, uint16_t client_port, uint16_t http_port, char *err,
			    size_t err_len)
{
	if (!cluster_enabled(c)) {
		if (c->any_set)
			return fail(err, err_len, "cluster directives need node-id (cluster mode is on when node-id is set)");
		return 0;
	}
	if (!c->cluster_id_set)
		return fail(err, err_len, "node-id is set: cluster-id is required (16 hex digits)");
	if (!c->secret_file[0])
		return fail(err, err_len, "node-id is set: cluster-secret-file is required");
	if (!c->internode_port)
		return fail(err, err_len, "node-id is set: internode-port is required");
	if (c->internode_port == client_port || (http_port && c->internode_port == http_port))
		return fail(err, err_len, "internode-port must differ from port and http-port");
	for (unsigned i = 0; i < c->npeers; i++)
		if (c->peers[i].id == c->node_id)
			return fail(err, err_len, "peer %u is this node's own id (node-id)", c->node_id);
	if (c->ks_explicit && !c->ks[0].defined)
		return fail(err, err_len, "keyspace 0 must be defined (clients start in database 0)");
	return 0;
}
