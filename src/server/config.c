/* config.c - configuration directives, one table for file, flags and CONFIG GET. */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/constants.h"

#define CONFIG_LINE_MAX 1024u
#define CONFIG_LINES_MAX 10000u

enum dir_kind { DIR_STR, DIR_U64, DIR_SIZE, DIR_BOOL, DIR_LOGLEVEL };

struct directive {
	const char *name;
	enum dir_kind kind;
	size_t off;
	unsigned width; /* integer field bytes, or string capacity */
	uint64_t min, max;
	bool secret;
};

#define FIELD(f) offsetof(struct server_config, f), sizeof(((struct server_config *)0)->f)

static const struct directive directives[] = {
	{"bind", DIR_STR, FIELD(bind), 0, 0, false},
	{"port", DIR_U64, FIELD(port), 0, 65535, false},
	{"http-port", DIR_U64, FIELD(http_port), 0, 65535, false},
	{"data", DIR_STR, FIELD(data), 0, 0, false},
	{"size", DIR_SIZE, FIELD(size_bytes), 16ull << 20, 1ull << 50, false},
	{"zone-bytes", DIR_SIZE, FIELD(zone_bytes), 0, DV_ZONE_BYTES_MAX, false},
	{"threads", DIR_U64, FIELD(threads), 1, CONFIG_THREADS_MAX, false},
	{"requirepass", DIR_STR, FIELD(requirepass), 0, 0, true},
	{"protected-mode", DIR_BOOL, FIELD(protected_mode), 0, 1, false},
	{"maxclients", DIR_U64, FIELD(maxclients), 1, 1000000, false},
	{"timeout", DIR_U64, FIELD(timeout_s), 0, 365u * 86400u, false},
	{"auth-timeout", DIR_U64, FIELD(auth_timeout_s), 0, 86400, false},
	{"request-timeout", DIR_U64, FIELD(request_timeout_s), 1, 86400, false},
	{"max-request-bytes", DIR_SIZE, FIELD(max_request_bytes), 64u << 10, 1ull << 30, false},
	{"max-reply-bytes", DIR_SIZE, FIELD(max_reply_bytes), 64u << 10, 1ull << 34, false},
	{"max-pipeline", DIR_U64, FIELD(max_pipeline), 1, 65536, false},
	{"cache-bytes", DIR_SIZE, FIELD(cache_bytes), 0, 1ull << 40, false},
	{"write-batches", DIR_U64, FIELD(write_batches), 1, DV_BATCHES_IN_FLIGHT_MAX, false},
	{"log-level", DIR_LOGLEVEL, FIELD(log_level), 0, 0, false},
};

const char *const config_names[] = {
	"bind", "port", "http-port", "data", "size", "zone-bytes", "threads", "requirepass",
	"protected-mode", "maxclients", "timeout", "auth-timeout", "request-timeout", "max-request-bytes",
	"max-reply-bytes", "max-pipeline", "cache-bytes", "write-batches", "log-level", NULL,
};
_Static_assert(sizeof(config_names) / sizeof(config_names[0]) ==
		       sizeof(directives) / sizeof(directives[0]) + 1,
	       "config_names lists every directive");

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void config_defaults(struct server_config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	*c = (struct server_config){
		.port = 6379,
		.http_port = 7379,
		.size_bytes = 1ull << 30,
		.threads = cpus > 2 ? (unsigned)(cpus / 2 < 4 ? cpus / 2 : 4) : 1,
		.protected_mode = true,
		.maxclients = 10000,
		/* A client that has not authenticated (a password is set) and
		 * sends nothing, or does not read what it is sent, for this
		 * long is closed: it cannot hold a connection for free. */
		.auth_timeout_s = 10,
		.request_timeout_s = 30,
		.max_request_bytes = 4u << 20,
		.max_reply_bytes = 64u << 20,
		.max_pipeline = 1024,
		.cache_bytes = 512ull << 20,
		/* One durable group-commit write at a time: on a device that
		 * serialises flushes (measured: a virtio disk, ~0.85 ms a
		 * write), a second write in flight only splits the waiting
		 * records into smaller batches. */
		.write_batches = 1,
		.log_level = LOG_INFO,
	};
	snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
	snprintf(c->data, sizeof(c->data), "./data/dynvme.img");
	cluster_config_defaults(&c->cluster);
}

static int fail(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct directive *directive_find(const char *name)
{
	for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++)
		if (!strcasecmp(directives[i].name, name))
			return &directives[i];
	return NULL;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end = NULL;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: break;
	}
	if (shift) {
		end++;
		if (*end == 'b' || *end == 'B')
			end++;
	}
	if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static void store_uint(void *field, unsigned width, uint64_t v)
{
	switch (width) {
	case 1: *(uint8_t *)field = (uint8_t)v; break;
	case 2: *(uint16_t *)field = (uint16_t)v; break;
	case 4: *(uint32_t *)field = (uint32_t)v; break;
	default: *(uint64_t *)field = v; break;
	}
}

static uint64_t load_uint(const void *field, unsigned width)
{
	switch (width) {
	case 1: return *(const uint8_t *)field;
	case 2: return *(const uint16_t *)field;
	case 4: return *(const uint32_t *)field;
	default: return *(const uint64_t *)field;
	}
}

static int set_number(const struct directive *d, void *field, const char *value, char *err, size_t err_len)
{
	uint64_t v = 0;
	int bad = d->kind == DIR_SIZE ? parse_size(value, &v) : -EINVAL;
	if (d->kind == DIR_U64) {
		char *end = NULL;
		errno = 0;
		unsigned long long u = isdigit((unsigned char)*value) ? strtoull(value, &end, 10) : 0;
		bad = !isdigit((unsigned char)*value) || errno || *end ? -EINVAL : 0;
		v = u;
	}
	if (bad)
		return fail(err, err_len, "%s: '%s' is not a %s", d->name, value,
			    d->kind == DIR_SIZE ? "size (like 4096, 64K, 4M, 1G)" : "whole number");
	if (v < d->min || v > d->max)
		return fail(err, err_len, "%s: %s is out of range [%llu, %llu]", d->name, value,
			    (unsigned long long)d->min, (unsigned long long)d->max);
	store_uint(field, d->width, v);
	return 0;
}

int config_set(struct server_config *c, const char *name, const char *value, char *err, size_t err_len)
{
	const struct directive *d = directive_find(name);
	if (!d) {
		int rc = cluster_config_set(&c->cluster, name, value, err, err_len);
		return rc == -ENOENT ? fail(err, err_len, "unknown directive '%s'", name) : rc;
	}
	void *field = (char *)c + d->off;
	switch (d->kind) {
	case DIR_STR:
		if (strlen(value) >= d->width)
			return fail(err, err_len, "%s: value longer than %u bytes", d->name, d->width - 1);
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case DIR_BOOL:
		if (strcasecmp(value, "yes") && strcasecmp(value, "no"))
			return fail(err, err_len, "%s: expected yes or no, got '%s'", d->name, value);
		*(bool *)field = !strcasecmp(value, "yes");
		return 0;
	case DIR_LOGLEVEL:
		for (unsigned i = 0; i < 4; i++) {
			if (!strcasecmp(value, log_level_names[i])) {
				*(enum log_level *)field = (enum log_level)i;
				return 0;
			}
		}
		return fail(err, err_len, "%s: expected debug, info, warn or error, got '%s'", d->name, value);
	default:
		return set_number(d, field, value, err, err_len);
	}
}

/* Split "name value" where value may be "quoted" with \" and \\ escapes.
 * Returns 0 (name empty: blank or comment line) or -EINVAL. */
static int split_line(char *line, char **name, char **value)
{
	char *p = line;
	while (isspace((unsigned char)*p))
		p++;
	*name = p;
	*value = NULL;
	if (*p == '#' || *p == '\0') {
		**name = '\0';
		return 0;
	}
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (*p)
		*p++ = '\0';
	while (isspace((unsigned char)*p))
		p++;
	char *end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*p != '"') {
		*value = p;
		return *p ? 0 : -EINVAL;
	}
	char *w = ++p;
	*value = w;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		*w++ = *p;
	}
	if (*p != '"' || p[1] != '\0')
		return -EINVAL;
	*w = '\0';
	return 0;
}

int config_load_file(struct server_config *c, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return fail(err, err_len, "config file %s: %s", path, strerror(errno));
	char line[CONFIG_LINE_MAX];
	int rc = 0;
	for (unsigned n = 1; rc == 0 && fgets(line, sizeof(line), f); n++) {
		if (n > CONFIG_LINES_MAX) {
			rc = fail(err, err_len, "%s: more than %u lines", path, CONFIG_LINES_MAX);
			break;
		}
		if (!strchr(line, '\n') && !feof(f)) {
			rc = fail(err, err_len, "%s:%u: line longer than %u bytes", path, n, CONFIG_LINE_MAX - 2);
			break;
		}
		char *name, *value;
		if (split_line(line, &name, &value)) {
			rc = fail(err, err_len, "%s:%u: expected 'directive value'", path, n);
			break;
		}
		if (!*name)
			continue;
		char why[CONFIG_ERR_MAX];
		if (config_set(c, name, value, why, sizeof(why)))
			rc = fail(err, err_len, "%s:%u: %s", path, n, why);
	}
	if (rc == 0 && ferror(f))
		rc = fail(err, err_len, "config file %s: read error", path);
	fclose(f);
	return rc;
}

int config_validate(const struct server_config *c, char *err, size_t err_len)
{
	if (!c->bind[0])
		return fail(err, err_len, "bind: an address is required (127.0.0.1, ::1, 0.0.0.0)");
	if (!c->data[0])
		return fail(err, err_len, "data: a path is required");
	if (c->port == 0 && c->threads > 1)
		return fail(err, err_len, "port 0 (any free port) needs threads 1");
	if (c->http_port && c->http_port == c->port)
		return fail(err, err_len, "http-port must differ from port");
	if (c->max_request_bytes < DV_VALUE_BYTES_MAX + DV_KEY_BYTES_MAX + 1024)
		return fail(err, err_len, "max-request-bytes must allow a largest SET (%u bytes)",
			    DV_VALUE_BYTES_MAX + DV_KEY_BYTES_MAX + 1024);
	if (c->max_reply_bytes < DV_VALUE_BYTES_MAX + 64)
		return fail(err, err_len, "max-reply-bytes must allow a largest value (%u bytes)",
			    DV_VALUE_BYTES_MAX + 64);
	return cluster_config_validate(&c->cluster, c->port, c->http_port, err, err_len);
}

bool config_get(const struct server_config *c, const char *name, char *out, size_t out_len)
{
	const struct directive *d = directive_find(name);
	if (!d)
		return false;
	const void *field = (const char *)c + d->off;
	if (d->secret) {
		snprintf(out, out_len, "%s", "");
		return true;
	}
	switch (d->kind) {
	case DIR_STR: snprintf(out, out_len, "%s", (const char *)field); break;
	case DIR_BOOL: snprintf(out, out_len, "%s", *(const bool *)field ? "yes" : "no"); break;
	case DIR_LOGLEVEL: snprintf(out, out_len, "%s", log_level_names[*(const enum log_level *)field]); break;
	default: snprintf(out, out_len, "%llu", (unsigned long long)load_uint(field, d->width)); break;
	}
	return true;
}
